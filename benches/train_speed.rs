//! Training and inference speed of the runtime on the cases of
//! ../shared/bench/torch_baseline.py: ResNet-20 (CIFAR, option A) and
//! ResNet-18 adapted to CIFAR, training at batch 128 (SGD momentum 0.9,
//! weight decay 5e-4: forward, cross-entropy, backward, step) and inference
//! at batch 256. Prints one JSON line per case in the baseline's format, so
//! `bench/vs_pytorch.sh` can set them side by side.
//!
//!     cargo bench --bench train_speed -- [--cases resnet20,resnet18_cifar]
//!         [--train-batch 128] [--infer-batch 256] [--iters 8]

use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use runtime::loss::training_loss;
use runtime::model::{Mode, Model};
use runtime::optim::{Optimizer, OptimizerKind, OptimizerSettings};
use std::time::Instant;

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

/// Median seconds of `iters` timed calls after `warm` untimed ones.
fn timed(mut f: impl FnMut(), warm: usize, iters: usize) -> f64 {
    for _ in 0..warm {
        f();
    }
    let mut ts: Vec<f64> = (0..iters)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    ts.sort_by(f64::total_cmp);
    ts[ts.len() / 2]
}

fn random_batch(n: usize, rng: &mut ChaCha8Rng) -> (Tensor, Tensor) {
    let x: Vec<f32> = (0..n * 3 * 32 * 32)
        .map(|_| rng.random::<f32>() * 2.0 - 1.0)
        .collect();
    let y: Vec<u32> = (0..n).map(|_| rng.random_range(0..10)).collect();
    (
        Tensor::from_vec(x, (n, 3, 32, 32), &Device::Cpu).unwrap(),
        Tensor::from_vec(y, n, &Device::Cpu).unwrap(),
    )
}

fn main() {
    runtime::kernels::configure_process();
    let args: Vec<String> = std::env::args().collect();
    let cases = arg(&args, "--cases", "resnet20,resnet18_cifar");
    let train_batch: usize = arg(&args, "--train-batch", "128").parse().unwrap();
    let infer_batch: usize = arg(&args, "--infer-batch", "256").parse().unwrap();
    let iters: usize = arg(&args, "--iters", "8").parse().unwrap();
    let threads = runtime::kernels::num_threads();
    for case in cases.split(',') {
        let path = format!("{}/zoo/{case}.net", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let net = dsl::compile(&path, &text, &Default::default()).unwrap_or_else(|e| panic!("{e}"));
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let model = Model::new(&net, &Device::Cpu, DType::F32, &mut rng).unwrap();
        let mut opt = Optimizer::new(OptimizerSettings {
            kind: OptimizerKind::Sgd,
            momentum: 0.9,
            nesterov: false,
            weight_decay: 5e-4,
            betas: (0.9, 0.999),
            eps: 1e-8,
        });
        let (x, y) = random_batch(train_batch, &mut rng);
        let s = timed(
            || {
                let out = model.forward(&x, Mode::Train, &mut rng).unwrap();
                let loss = training_loss(&out, &y, 0.3, 0.0).unwrap();
                let grads = loss.backward().unwrap();
                let g: Vec<Option<Tensor>> = model
                    .params()
                    .map(|p| grads.get(p.var.as_tensor()).cloned())
                    .collect();
                opt.step(&model, &g, 0.05).unwrap();
                loss.to_scalar::<f32>().unwrap();
            },
            3,
            iters,
        );
        println!(
            "{{\"framework\": \"cnncost\", \"case\": \"{case}\", \"mode\": \"train\", \"batch\": {train_batch}, \"threads\": {threads}, \"images_per_s\": {:.2}}}",
            train_batch as f64 / s
        );
        let (xi, _) = random_batch(infer_batch, &mut rng);
        let s = timed(
            || {
                model.forward(&xi, Mode::Infer, &mut rng).unwrap();
            },
            2,
            (iters / 2).max(3),
        );
        println!(
            "{{\"framework\": \"cnncost\", \"case\": \"{case}\", \"mode\": \"infer\", \"batch\": {infer_batch}, \"threads\": {threads}, \"images_per_s\": {:.2}}}",
            infer_batch as f64 / s
        );
    }
}
