//! Measurements of this machine for `cnncost calibrate` and `cnncost
//! profile` (issue 16): the peak fp32 rate on all threads, the memory's
//! read and write bandwidth, matrix products, and the time of every op of
//! a model's forward pass.

use crate::kernels::{num_threads, peak};
use crate::model::{Mode, Model};
use candle_core::{Device, Tensor};
use std::time::Instant;

/// The peak fp32 rate, FMA chains on every thread, in GFLOP/s (2 per
/// FMA): the best of three runs of about `seconds` each.
pub fn peak_gflops(seconds: f64) -> f64 {
    let threads = num_threads();
    // Rounds per thread for the time asked, from a short trial.
    let trial = 200_000u64;
    let t = Instant::now();
    std::hint::black_box(peak::fma_flops(trial));
    let per_round = t.elapsed().as_secs_f64() / trial as f64;
    let rounds = ((seconds / per_round.max(1e-12)) as u64).max(trial);
    (0..3)
        .map(|_| {
            let t = Instant::now();
            let flops: u64 = std::thread::scope(|s| {
                let handles: Vec<_> = (0..threads)
                    .map(|_| s.spawn(move || std::hint::black_box(peak::fma_flops(rounds)).0))
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
            });
            flops as f64 / t.elapsed().as_secs_f64() / 1e9
        })
        .fold(0.0, f64::max)
}

/// Memory read and write bandwidth in GB/s (10^9 bytes) on every thread,
/// over a buffer of `bytes` (far larger than the caches): the best of five
/// passes each.
pub fn bandwidth(bytes: usize) -> (f64, f64) {
    let threads = num_threads();
    let mut buf = vec![1.0f32; bytes / 4];
    let chunk = buf.len().div_ceil(threads);
    let best = |f: &mut dyn FnMut() -> f64| (0..5).map(|_| f()).fold(0.0, f64::max);
    let read = best(&mut || {
        let t = Instant::now();
        let total: f32 = std::thread::scope(|s| {
            let handles: Vec<_> = buf
                .chunks(chunk)
                .map(|c| s.spawn(move || peak::stream_sum(c)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or(0.0)).sum()
        });
        std::hint::black_box(total);
        bytes as f64 / t.elapsed().as_secs_f64() / 1e9
    });
    let write = best(&mut || {
        let t = Instant::now();
        std::thread::scope(|s| {
            for c in buf.chunks_mut(chunk) {
                s.spawn(move || c.fill(std::hint::black_box(2.0)));
            }
        });
        bytes as f64 / t.elapsed().as_secs_f64() / 1e9
    });
    (read, write)
}

/// The rate of an (m x k) by (k x n) fp32 matrix product, GFLOP/s: the
/// best of `reps` after one warm-up.
pub fn gemm_gflops(m: usize, n: usize, k: usize, reps: usize) -> candle_core::Result<f64> {
    let a = Tensor::randn(0f32, 1.0, (m, k), &Device::Cpu)?;
    let b = Tensor::randn(0f32, 1.0, (k, n), &Device::Cpu)?;
    a.matmul(&b)?;
    let mut best = 0f64;
    for _ in 0..reps {
        let t = Instant::now();
        std::hint::black_box(a.matmul(&b)?);
        best = best.max(2.0 * (m * n * k) as f64 / t.elapsed().as_secs_f64() / 1e9);
    }
    Ok(best)
}

/// The forward time of every op of `model` on the batch `x` (inference),
/// by step: the median of `iterations` passes after `warmup` ones. A fused
/// group's time is under its last op, the others' 0.
pub fn op_seconds(
    model: &Model,
    x: &Tensor,
    warmup: usize,
    iterations: usize,
) -> candle_core::Result<Vec<f64>> {
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
    let mut runs: Vec<Vec<f64>> = Vec::with_capacity(iterations);
    for pass in 0..warmup + iterations {
        let mut times = vec![0f64; model.op_count()];
        let mut last = Instant::now();
        let mut observe = |i: usize, _: &Tensor| {
            let now = Instant::now();
            times[i] += (now - last).as_secs_f64();
            last = now;
            Ok(())
        };
        model.forward_observed(x, Mode::Infer, &mut rng, &mut observe)?;
        if pass >= warmup {
            runs.push(times);
        }
    }
    Ok((0..model.op_count())
        .map(|i| {
            let mut v: Vec<f64> = runs.iter().map(|r| r[i]).collect();
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or(0.0)
        })
        .collect())
}
