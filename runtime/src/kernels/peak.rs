//! Loops that reach a core's limits, for `cnncost calibrate`: independent
//! fused multiply-add chains (the peak fp32 rate) and a streaming sum (the
//! read bandwidth), each compiled for the widest vectors this CPU has.

use super::util::vectorised;

vectorised! {
    fn fma_loop[const N: usize](iterations: u64, acc: &mut [f32; N]) = fma_loop_body;
}

#[inline(always)]
fn fma_loop_body<const N: usize>(iterations: u64, acc: &mut [f32; N]) {
    let mut a = *acc;
    // x -> x * m + c stays finite and never denormal for any run length.
    let (m, c) = (0.999_999_9f32, 1e-6f32);
    for _ in 0..iterations {
        for x in a.iter_mut() {
            *x = x.mul_add(m, c);
        }
    }
    *acc = a;
}

/// `iterations` rounds of `N` FMA chains: FLOPs done (2 per FMA) and a
/// value that depends on every chain (so the work is not optimised away).
fn chains<const N: usize>(iterations: u64) -> (u64, f32) {
    let mut acc = [1.0f32; N];
    fma_loop(iterations, &mut acc);
    (iterations * N as u64 * 2, acc.iter().sum())
}

/// Runs `iterations` rounds of FMA chains on this thread: twelve vector
/// registers of independent chains (AVX2: 96 floats in 12 of its 16 ymm;
/// AVX-512: 192 in 12 of 32 zmm), enough to cover the FMA latency on two
/// pipes while leaving registers for the constants (128 floats spilt on
/// AVX2). Returns the FLOPs done and a value depending on the work.
pub fn fma_flops(iterations: u64) -> (u64, f32) {
    match super::util::simd() {
        super::util::Simd::Avx512 => chains::<192>(iterations),
        super::util::Simd::Avx2 | super::util::Simd::Baseline => chains::<96>(iterations),
    }
}

vectorised! {
    fn sum_block[](x: &[f32]) -> f32 = sum_body;
}

#[inline(always)]
fn sum_body(x: &[f32]) -> f32 {
    // Sixteen partial sums: the adds do not wait on each other.
    let mut s = [0f32; 16];
    let chunks = x.chunks_exact(16);
    let rest = chunks.remainder();
    for c in chunks {
        for (s, &v) in s.iter_mut().zip(c) {
            *s += v;
        }
    }
    s.iter().sum::<f32>() + rest.iter().sum::<f32>()
}

/// The sum of `x`, read once at the memory's speed.
pub fn stream_sum(x: &[f32]) -> f32 {
    sum_block(x)
}
