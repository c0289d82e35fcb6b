//! Timing of the kernels against candle's own ops (ignored by default). Run with
//! `cargo test -p runtime --release --test kernels_bench -- --ignored --nocapture`;
//! `CNNCOST_BENCH_BATCH=32` picks another batch size.

use std::time::Instant;

use candle_core::{Device, Result, Tensor, Var};
use runtime::kernels::{conv2d, pool2d, Conv2dGeometry, Pool2dGeometry, PoolMode};

fn best_of<F: FnMut() -> Result<()>>(reps: usize, mut f: F) -> Result<f64> {
    f()?; // warm-up
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let t = Instant::now();
        f()?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(best)
}

fn report(what: &str, secs: f64, flops: f64) {
    println!(
        "{what:<44} {:>9.1} ms  {:>7.1} GFLOP/s",
        secs * 1e3,
        flops / secs / 1e9
    );
}

#[test]
#[ignore]
fn bench_resnet_cifar_conv_and_pool() -> Result<()> {
    let n: usize = std::env::var("CNNCOST_BENCH_BATCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(128);
    let dev = Device::Cpu;
    let (c, o, h, w, k) = (64, 64, 32, 32, 3);
    let x = Var::from_tensor(&Tensor::randn(0f32, 1., (n, c, h, w), &dev)?)?;
    let wt = Var::from_tensor(&Tensor::randn(0f32, 0.05, (o, c, k, k), &dev)?)?;
    let g = Conv2dGeometry::uniform(1, 1, 1, 1);
    let macs = (n * o * h * w * c * k * k) as f64;
    let fwd = 2.0 * macs;
    println!(
        "ResNet-18-CIFAR conv 3x3 64->64 on 32x32, batch {n}, f32, {} threads",
        candle_core::utils::get_num_threads()
    );

    let reps = 3;
    let t = best_of(reps, || {
        conv2d(x.as_tensor(), wt.as_tensor(), &g).map(|_| ())
    })?;
    report("ours   forward", t, fwd);
    let t = best_of(reps, || {
        x.as_tensor().conv2d(wt.as_tensor(), 1, 1, 1, 1).map(|_| ())
    })?;
    report("candle forward", t, fwd);
    let t = best_of(reps, || {
        let y = conv2d(x.as_tensor(), wt.as_tensor(), &g)?;
        y.sum_all()?.backward().map(|_| ())
    })?;
    report("ours   forward+backward (dx, dw)", t, 3.0 * fwd);
    let t = best_of(reps, || {
        let y = x.as_tensor().conv2d(wt.as_tensor(), 1, 1, 1, 1)?;
        y.sum_all()?.backward().map(|_| ())
    })?;
    report("candle forward+backward (dx, dw)", t, 3.0 * fwd);
    // A first layer: x is data, so only the weight gradient is computed.
    let xd = x.as_tensor().detach();
    let t = best_of(reps, || {
        let y = conv2d(&xd, wt.as_tensor(), &g)?;
        y.sum_all()?.backward().map(|_| ())
    })?;
    report("ours   forward+backward (dw only)", t, 2.0 * fwd);

    // Deep layer: 3x3 512->512 on 4x4.
    let x4 = Var::from_tensor(&Tensor::randn(0f32, 1., (n, 512, 4, 4), &dev)?)?;
    let w4 = Var::from_tensor(&Tensor::randn(0f32, 0.05, (512, 512, 3, 3), &dev)?)?;
    let fwd4 = 2.0 * (n * 512 * 16 * 512 * 9) as f64;
    let t = best_of(reps, || {
        let y = conv2d(x4.as_tensor(), w4.as_tensor(), &g)?;
        y.sum_all()?.backward().map(|_| ())
    })?;
    report("ours   512->512 4x4 forward+backward", t, 3.0 * fwd4);
    let t = best_of(reps, || {
        let y = x4.as_tensor().conv2d(w4.as_tensor(), 1, 1, 1, 1)?;
        y.sum_all()?.backward().map(|_| ())
    })?;
    report("candle 512->512 4x4 forward+backward", t, 3.0 * fwd4);

    // Max pool 3x3/2 forward + backward on (n, 64, 32, 32).
    let pg = Pool2dGeometry {
        kernel: [3, 3],
        stride: [2, 2],
        padding: [0, 0],
        ceil_mode: false,
    };
    let t = best_of(reps, || {
        pool2d(x.as_tensor(), PoolMode::Max, &pg).map(|_| ())
    })?;
    report("ours   max-pool 3x3/2 forward", t, 0.0);
    let t = best_of(reps, || {
        let y = pool2d(x.as_tensor(), PoolMode::Max, &pg)?;
        y.sum_all()?.backward().map(|_| ())
    })?;
    report("ours   max-pool 3x3/2 forward+backward", t, 0.0);
    let t = best_of(reps, || {
        x.as_tensor().max_pool2d_with_stride(3, 2).map(|_| ())
    })?;
    report("candle max-pool 3x3/2 forward", t, 0.0);
    Ok(())
}

/// Our conv forward+backward alone in a loop, for `perf record`.
#[test]
#[ignore]
fn profile_conv_backward() -> Result<()> {
    let dev = Device::Cpu;
    let x = Var::from_tensor(&Tensor::randn(0f32, 1., (32, 64, 32, 32), &dev)?)?;
    let wt = Var::from_tensor(&Tensor::randn(0f32, 0.05, (64, 64, 3, 3), &dev)?)?;
    let g = Conv2dGeometry::uniform(1, 1, 1, 1);
    for _ in 0..10 {
        let y = conv2d(x.as_tensor(), wt.as_tensor(), &g)?;
        y.sum_all()?.backward()?;
    }
    // The ideal: one gemm of the forward's size.
    let a = Tensor::randn(0f32, 1., (64, 576), &dev)?;
    let b = Tensor::randn(0f32, 1., (576, 32 * 1024), &dev)?;
    let t = best_of(5, || a.matmul(&b).map(|_| ()))?;
    report(
        "raw gemm 64x576 . 576x32768",
        t,
        2.0 * (64 * 576 * 32 * 1024) as f64,
    );
    let b = Tensor::randn(0f32, 1., (576, 2048), &dev)?;
    let t = best_of(5, || {
        for _ in 0..16 {
            a.matmul(&b)?;
        }
        Ok(())
    })?;
    report(
        "raw gemm 16 x (64x576 . 576x2048)",
        t,
        2.0 * (64 * 576 * 32 * 1024) as f64,
    );
    Ok(())
}

/// Our max-pool forward+backward alone in a loop, for `perf record`.
#[test]
#[ignore]
fn profile_max_pool() -> Result<()> {
    let x = Var::from_tensor(&Tensor::randn(0f32, 1., (128, 64, 32, 32), &Device::Cpu)?)?;
    let pg = Pool2dGeometry {
        kernel: [3, 3],
        stride: [2, 2],
        padding: [0, 0],
        ceil_mode: false,
    };
    for _ in 0..20 {
        let y = pool2d(x.as_tensor(), PoolMode::Max, &pg)?;
        y.sum_all()?.backward()?;
    }
    Ok(())
}
