//! The training peak, predicted and measured. A counting global allocator
//! records every byte the process holds during a real training step of our
//! runtime (forward, loss, backward, optimizer update); `cnncost NET --train`
//! (the `cnncost` policy, the default) predicts that step's peak without
//! allocating a tensor, and must be within 5% of the measurement
//! (issue 14; docs/costs.md, "Training").
//!
//! One test in this file: the allocator counts the whole process, so no
//! other test may run beside it.

use analyzer::training::TrainOptions;
use candle_core::{DType, Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use runtime::config::TrainConfig;
use runtime::loss::training_loss;
use runtime::model::Model;
use runtime::optim::Optimizer;
use runtime::train::{optimizer_step, StepInputs, Stepped};

mod support {
    pub mod counting_alloc;
}
use support::counting_alloc::{live, peak, reset_peak, Counting};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

struct Measured {
    predicted: u64,
    measured: u64,
    predicted_workspace: u64,
    scratch: u64,
    peak_at: String,
}

/// A zoo network at `input` (None: as written), one warm-up step (the
/// optimizer's state and the kernels' scratch exist from then on), then the
/// measured step: its peak over the bytes held before the model existed.
fn measure(name: &str, input: Option<[u64; 3]>, batch: usize) -> Measured {
    let path = format!("zoo/{name}.net");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let overrides = dsl::Overrides {
        input,
        ..Default::default()
    };
    let net = dsl::compile(&path, &text, &overrides).unwrap_or_else(|e| panic!("{e}"));
    let config = TrainConfig::default();
    let a = analyzer::analyze(
        &net,
        analyzer::Options {
            batch: batch as u64,
            dtype: analyzer::Dtype::F32,
        },
    )
    .unwrap();
    let options = TrainOptions {
        optimizer: config.optimizer_settings().plan(),
        host: {
            let (threads, slab) = runtime::kernels::gemm_slabs();
            analyzer::training::HostScratch {
                threads: threads as u64,
                slab_bytes: slab as u64,
            }
        },
        ..TrainOptions::default()
    };
    let a = analyzer::with_training(a, &options).unwrap();
    let t = a.training.as_ref().unwrap();
    let dims = match net.input {
        dsl::Shape::Image { c, h, w } => [batch, c as usize, h as usize, w as usize],
        dsl::Shape::Flat(_) => unreachable!("zoo networks take images"),
    };
    let classes = net.graph[net.output].shape.elements().unwrap() as u32;

    let before = live();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let model = Model::new(&net, &Device::Cpu, DType::F32, &mut rng).unwrap();
    let mut optimizer = Optimizer::new(config.optimizer_settings());
    let x = Tensor::randn(0f32, 1.0, dims.as_slice(), &Device::Cpu).unwrap();
    let labels: Vec<u32> = (0..batch as u32).map(|i| i % classes).collect();
    let labels = Tensor::new(labels.as_slice(), &Device::Cpu).unwrap();
    let mut step = || {
        let done = optimizer_step(
            &model,
            &mut optimizer,
            StepInputs {
                x: &x,
                lr: 0.01,
                clip: None,
                rng: &mut rng,
            },
            |out| {
                training_loss(out, &labels, config.aux_weight, config.label_smoothing)
                    .map_err(runtime::error::Error::tensor("loss"))
            },
            |_| Ok(()),
        )
        .unwrap();
        assert!(matches!(done, Stepped::Done { .. }), "{name}: diverged");
    };
    step();
    reset_peak();
    step();
    let measured = peak() - before;
    if std::env::var("CNNCOST_MEMORY_DEBUG").is_ok() {
        eprintln!(
            "  {name} {batch}: held after the step {} (weights {} state {} workspace {})",
            live() - before,
            t.weights_bytes,
            t.optimizer_state_bytes,
            t.workspace_bytes
        );
    }
    Measured {
        predicted: t.peak_bytes,
        measured: measured as u64,
        predicted_workspace: t.workspace_bytes,
        scratch: runtime::kernels::scratch_bytes() as u64,
        peak_at: t.peak_at.clone(),
    }
}

const CASE_VAR: &str = "CNNCOST_MEMORY_CASE";
const TEST: &str = "predicted_training_peak_is_within_5_percent_of_the_runtime";

/// Each case runs in a process of its own (this test binary, run again with
/// the case in `CNNCOST_MEMORY_CASE`): the kernels' scratch buffers grow and
/// stay per thread, so a case run after another would find them allocated.
#[test]
fn predicted_training_peak_is_within_5_percent_of_the_runtime() {
    if let Ok(case) = std::env::var(CASE_VAR) {
        let (name, batch) = case.split_once(':').expect("NAME:BATCH");
        let m = measure(name, None, batch.parse().expect("a batch size"));
        println!(
            "RESULT {} {} {} {} {}",
            m.predicted, m.measured, m.predicted_workspace, m.scratch, m.peak_at
        );
        return;
    }
    let only = std::env::var("CNNCOST_MEMORY_ONLY").ok();
    let cases: [(&str, [usize; 2]); 4] = [
        ("resnet20", [32, 128]),
        ("resnet18_cifar", [8, 32]),
        ("alexnet_torchvision", [2, 8]),
        ("vgg11", [1, 2]),
    ];
    let exe = std::env::current_exe().expect("the test binary");
    let mut failures = Vec::new();
    for (name, batches) in cases {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        for batch in batches {
            let out = std::process::Command::new(&exe)
                .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
                .env(CASE_VAR, format!("{name}:{batch}"))
                .output()
                .expect("the test binary runs");
            let stdout = String::from_utf8_lossy(&out.stdout);
            let Some(line) = stdout
                .lines()
                .find_map(|l| l.split_once("RESULT ").map(|r| r.1))
            else {
                panic!(
                    "{name} at batch {batch} gave no result:\n{stdout}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            };
            let f: Vec<&str> = line.splitn(5, ' ').collect();
            let num = |i: usize| f[i].parse::<u64>().expect("a number");
            let (predicted, measured) = (num(0), num(1));
            let off = predicted as f64 / measured as f64 - 1.0;
            eprintln!(
                "{name:>20} batch {batch:>3}: predicted {predicted:>13} measured {measured:>13} ({:+.2}%), peak at the {}; workspace predicted {} held {}",
                off * 100.0,
                f[4],
                f[2],
                f[3]
            );
            if off.abs() > 0.05 {
                failures.push(format!("{name} at batch {batch}: {:+.2}%", off * 100.0));
            }
        }
    }
    assert!(failures.is_empty(), "off by more than 5%: {failures:?}");
}
