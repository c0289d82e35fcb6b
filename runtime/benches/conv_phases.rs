//! Times the three phases of ResNet-18's 3x3 stride-1 convs (64 channels on 32x32 ...
//! 512 on 4x4, the CIFAR variant) separately, as GFLOP/s against the machine's measured
//! fp32 FMA ceiling, next to a raw gemm of the forward's size.
//!
//!     cargo bench -p runtime --bench conv_phases
//!
//! `CNNCOST_BENCH_SHAPES=16x32,32x16,64x8` (channels x side, comma-separated) times
//! other shapes (those are ResNet-20's); `CNNCOST_BENCH_BATCH` sets the batch (128).

use candle_core::{Device, Result, Tensor};
use runtime::kernels::conv::bench_support::{
    conv_backward_data, conv_backward_filter, conv_forward, keep_freed_memory,
};
use runtime::kernels::{num_threads, Conv2dGeometry};
use std::time::Instant;

fn main() -> Result<()> {
    let n: usize = std::env::var("CNNCOST_BENCH_BATCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(128);
    // The runtime's allocator settings (configure_process).
    keep_freed_memory();
    let ceiling = fma_ceiling();
    println!(
        "fp32 FMA ceiling, {} threads: {ceiling:.0} GFLOP/s",
        num_threads()
    );
    // CNNCOST_BENCH_SHAPES=16x32,32x16,64x8 for ResNet-20's.
    let shapes: Vec<(usize, usize)> = std::env::var("CNNCOST_BENCH_SHAPES")
        .ok()
        .map(|v| {
            v.split(',')
                .filter_map(|s| s.split_once('x'))
                .filter_map(|(c, hw)| Some((c.parse().ok()?, hw.parse().ok()?)))
                .collect()
        })
        .unwrap_or_else(|| vec![(64, 32), (128, 16), (256, 8), (512, 4)]);
    for (c, hw) in shapes {
        println!("3x3 conv {c}->{c} on {hw}x{hw}, batch {n}:");
        conv_phases_of(n, c, hw, ceiling)?;
    }
    Ok(())
}

/// This machine's fp32 FMA ceiling in GFLOP/s, measured: every thread runs twelve
/// independent chains of fused multiply-adds at the widest vector width it has
/// (AVX-512, else AVX2). The 230 GFLOP/s is a Zen 4, whose AVX-512 runs on
/// half-width datapaths; a Zen 5 has full-width ones.
fn fma_ceiling() -> f64 {
    const ITERS: u64 = 20_000_000;
    /// Twelve named chains (an array made the compiler rotate registers).
    macro_rules! chains {
        ($fmadd:ident, $set1:ident, $add:ident, $ty:ty) => {{
            let (a, b, one) = ($set1(0.999_999), $set1(1e-7), $set1(1.0));
            let (mut c0, mut c1, mut c2, mut c3) = (one, one, one, one);
            let (mut c4, mut c5, mut c6, mut c7) = (one, one, one, one);
            let (mut c8, mut c9, mut c10, mut c11) = (one, one, one, one);
            for _ in 0..ITERS {
                c0 = $fmadd(c0, a, b);
                c1 = $fmadd(c1, a, b);
                c2 = $fmadd(c2, a, b);
                c3 = $fmadd(c3, a, b);
                c4 = $fmadd(c4, a, b);
                c5 = $fmadd(c5, a, b);
                c6 = $fmadd(c6, a, b);
                c7 = $fmadd(c7, a, b);
                c8 = $fmadd(c8, a, b);
                c9 = $fmadd(c9, a, b);
                c10 = $fmadd(c10, a, b);
                c11 = $fmadd(c11, a, b);
            }
            let s: $ty = [c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11]
                .into_iter()
                .fold(c0, |s, v| $add(s, v));
            std::mem::transmute::<$ty, [f32; std::mem::size_of::<$ty>() / 4]>(s)
                .iter()
                .sum::<f32>()
        }};
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn avx512() -> f32 {
        use std::arch::x86_64::*;
        chains!(_mm512_fmadd_ps, _mm512_set1_ps, _mm512_add_ps, __m512)
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2() -> f32 {
        use std::arch::x86_64::*;
        chains!(_mm256_fmadd_ps, _mm256_set1_ps, _mm256_add_ps, __m256)
    }
    #[cfg(target_arch = "x86_64")]
    let run: Option<(fn() -> f32, f64)> = if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the feature was detected at run time.
        Some((|| unsafe { avx512() }, 12.0 * 16.0 * 2.0))
    } else if std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: as above.
        Some((|| unsafe { avx2() }, 12.0 * 8.0 * 2.0))
    } else {
        None
    };
    #[cfg(not(target_arch = "x86_64"))]
    let run: Option<(fn() -> f32, f64)> = None;
    let Some((f, flops_per_iter)) = run else {
        return f64::NAN;
    };
    let threads = num_threads();
    let t = Instant::now();
    let sink: f32 = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..threads).map(|_| sc.spawn(f)).collect();
        hs.into_iter().map(|h| h.join().unwrap_or(f32::NAN)).sum()
    });
    let secs = t.elapsed().as_secs_f64();
    assert!(sink.is_finite());
    threads as f64 * ITERS as f64 * flops_per_iter / secs / 1e9
}

fn conv_phases_of(n: usize, ch: usize, hw: usize, ceiling: f64) -> Result<()> {
    let dev = Device::Cpu;
    let x = Tensor::randn(0f32, 1., (n, ch, hw, hw), &dev)?;
    let w = Tensor::randn(0f32, 0.05, (ch, ch, 3, 3), &dev)?;
    let g = Conv2dGeometry::uniform(1, 1, 1, 1);
    let flops = 2.0 * (n * ch * hw * hw * ch * 9) as f64;
    // CPU seconds of this process (utime + stime, 100 Hz ticks): robust against other
    // processes sharing the cores, unlike the wall time.
    let cpu = || -> f64 {
        let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let f: Vec<&str> = s
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        (t(11) + t(12)) / 100.0
    };
    let time = |what: &str, f: &dyn Fn() -> Result<Tensor>| -> Result<()> {
        f()?;
        let mut best = f64::INFINITY;
        let (c0, t0) = (cpu(), Instant::now());
        let reps = 8;
        for _ in 0..reps {
            let t = Instant::now();
            f()?;
            best = best.min(t.elapsed().as_secs_f64());
        }
        let (c, wall) = (
            (cpu() - c0) / reps as f64,
            t0.elapsed().as_secs_f64() / reps as f64,
        );
        println!(
            "{what:<12} best {:7.1} ms {:6.1} GFLOP/s ({:3.0}% of {ceiling:.0}) | mean wall {:7.1} ms, cpu {:7.1} ms: {:6.1} GFLOP per cpu-second",
            best * 1e3,
            flops / best / 1e9,
            100.0 * flops / best / 1e9 / ceiling,
            wall * 1e3,
            c * 1e3,
            flops / c / 1e9
        );
        Ok(())
    };
    let a = Tensor::randn(0f32, 1., (ch, ch * 9), &dev)?;
    let b = Tensor::randn(0f32, 1., (n, ch * 9, hw * hw), &dev)?;
    time("raw gemm", &|| a.broadcast_left(n)?.matmul(&b))?;
    let y = conv_forward(&x, &w, g)?;
    time("forward", &|| conv_forward(&x, &w, g))?;
    let x_dims = x.dims4()?;
    time("bwd data", &|| conv_backward_data(&y, &w, g, x_dims))?;
    let w_dims = w.dims4()?;
    time("bwd filter", &|| conv_backward_filter(&x, &y, g, w_dims))?;
    Ok(())
}
