//! Training and inference speed of the runtime on the cases of
//! ../shared/bench/torch_baseline.py (ResNet-20 for CIFAR, option A, and
//! ResNet-18 adapted to CIFAR: training at batch 128 with SGD momentum 0.9,
//! weight decay 5e-4, forward, cross-entropy, backward and step; inference at
//! batch 256) and of bench/torch_imagenet_infer.py (torchvision's AlexNet at
//! 224, batch 16, and VGG-16, batch 8: inference only). Prints one JSON line
//! per case and mode in the baselines' format, so `bench/vs_pytorch.sh` can set
//! them side by side. `resnet50` (224, training and inference at batch 64) is the
//! GPU script's (scripts/gpu-check.sh), with `--device cuda`.
//!
//!     cargo bench --bench train_speed -- [--cases resnet20,resnet18_cifar,alexnet,vgg16]
//!         [--train-batch N] [--infer-batch N] [--iters 8] [--device cpu|cuda[:N]]
//!
//! The zoo is read from `CNNCOST_ROOT` (a copy of the checkout elsewhere, as on the
//! GPU machine), else from the checkout it was built in.

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

fn random_batch(n: usize, side: usize, rng: &mut ChaCha8Rng, device: &Device) -> (Tensor, Tensor) {
    let x: Vec<f32> = (0..n * 3 * side * side)
        .map(|_| rng.random::<f32>() * 2.0 - 1.0)
        .collect();
    let y: Vec<u32> = (0..n).map(|_| rng.random_range(0..10)).collect();
    (
        Tensor::from_vec(x, (n, 3, side, side), device).unwrap(),
        Tensor::from_vec(y, n, device).unwrap(),
    )
}

/// A benchmark case: the zoo file, the input side, and the batches of the
/// baselines (no training batch: inference only).
struct Case {
    zoo: &'static str,
    side: usize,
    train_batch: Option<usize>,
    infer_batch: usize,
}

fn case(name: &str) -> Case {
    let (zoo, side, train_batch, infer_batch) = match name {
        "resnet20" => ("resnet20", 32, Some(128), 256),
        "resnet18_cifar" => ("resnet18_cifar", 32, Some(128), 256),
        "alexnet" => ("alexnet_torchvision", 224, None, 16),
        "vgg16" => ("vgg16", 224, None, 8),
        "resnet50" => ("resnet50", 224, Some(64), 64),
        _ => panic!("unknown case {name}: resnet20, resnet18_cifar, alexnet, vgg16, resnet50"),
    };
    Case {
        zoo,
        side,
        train_batch,
        infer_batch,
    }
}

fn main() {
    runtime::kernels::configure_process();
    let args: Vec<String> = std::env::args().collect();
    let cases = arg(&args, "--cases", "resnet20,resnet18_cifar,alexnet,vgg16");
    let train_batch: Option<usize> = args
        .iter()
        .any(|a| a == "--train-batch")
        .then(|| arg(&args, "--train-batch", "").parse().unwrap());
    let infer_batch: Option<usize> = args
        .iter()
        .any(|a| a == "--infer-batch")
        .then(|| arg(&args, "--infer-batch", "").parse().unwrap());
    let iters: usize = arg(&args, "--iters", "8").parse().unwrap();
    let threads = runtime::kernels::num_threads();
    let device =
        runtime::device::open(&arg(&args, "--device", "cpu")).unwrap_or_else(|e| panic!("{e}"));
    let root = std::env::var("CNNCOST_ROOT").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into());
    for name in cases.split(',') {
        let c = case(name);
        let path = format!("{root}/zoo/{}.net", c.zoo);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let net = dsl::compile(&path, &text, &Default::default()).unwrap_or_else(|e| panic!("{e}"));
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let model = Model::new(&net, &device, DType::F32, &mut rng).unwrap();
        if let Some(batch) = c.train_batch.map(|b| train_batch.unwrap_or(b)) {
            let mut opt = Optimizer::new(OptimizerSettings {
                kind: OptimizerKind::Sgd,
                momentum: 0.9,
                nesterov: false,
                weight_decay: 5e-4,
                betas: (0.9, 0.999),
                eps: 1e-8,
            });
            let (x, y) = random_batch(batch, c.side, &mut rng, &device);
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
                "{{\"framework\": \"cnncost\", \"case\": \"{name}\", \"mode\": \"train\", \"batch\": {batch}, \"threads\": {threads}, \"images_per_s\": {:.2}}}",
                batch as f64 / s
            );
        }
        let batch = infer_batch.unwrap_or(c.infer_batch);
        let (xi, _) = random_batch(batch, c.side, &mut rng, &device);
        let s = timed(
            || {
                model.forward(&xi, Mode::Infer, &mut rng).unwrap();
                // A GPU returns before its work is done.
                device.synchronize().unwrap();
            },
            2,
            (iters / 2).max(3),
        );
        println!(
            "{{\"framework\": \"cnncost\", \"case\": \"{name}\", \"mode\": \"infer\", \"batch\": {batch}, \"threads\": {threads}, \"images_per_s\": {:.2}}}",
            batch as f64 / s
        );
    }
}
