//! Direct 3x3 stride-1 convolution for few channels (ResNet-20's 16-channel stage, the
//! stems on RGB input), f32 on AVX-512: 32 output pixels of one row for 8 output
//! channels (16 accumulator registers) gather the products of every input channel and
//! tap, each input vector loaded once for the 8 channels. im2col copies each input
//! pixel nine times into a column matrix that the gemm copies again; with 16 channels
//! those copies cost more than the arithmetic, and Winograd's transforms do too.
//!
//! Per sample: the input is copied into a zero-bordered buffer (each row as wide as the
//! strips need), so the taps read without bounds checks; then every (output row, strip
//! of 32 columns, block of 8 output channels) is one register-blocked kernel call.
//!
//! The weight gradient ([`weight_grad3x3`]) runs the same way: per sample, for a pair
//! of output channels and one input channel, 18 accumulators (2 channels x 9 taps) take
//! dY's row vectors times the shifted input rows; each thread keeps its accumulators
//! across its samples and reduces them at the end.
//!
//! Written with intrinsics: as plain loops over arrays the compiler kept the
//! accumulators in memory and reached them with gathers and scatters (10x slower).
//! Elsewhere (no AVX-512, f64) im2col runs instead: the entry points take any [`Elem`]
//! and return None for f64, seen through candle's `CpuStorageRef` (no specialisation,
//! no unsafe casts).

use super::geometry::Conv3x3;
use crate::kernels::util::simd::{simd, Simd};
use crate::kernels::util::{as_f32, from_f32, num_threads, transpose, with_scratch, Elem};
use std::mem::MaybeUninit;

/// Output columns per vector.
const LANES: usize = 16;
/// Output columns per strip: two vectors.
const STRIP: usize = 2 * LANES;
/// Output channels per kernel call.
const KB: usize = 8;

/// Whether rows of `ow` outputs fill at least three quarters of the strips that cover
/// them: on 16-wide rows half of every vector is wasted and im2col ran 1.4x faster
/// (ResNet-20's 32-channel stage).
pub(super) fn fills_strips(ow: usize) -> bool {
    ow >= 24 && 4 * ow >= 3 * ow.div_ceil(STRIP) * STRIP
}

impl Conv3x3 {
    fn strips(&self) -> usize {
        self.ow.div_ceil(STRIP)
    }
    /// Row length of the bordered input: every strip's 32 + 2 columns.
    fn bordered_cols(&self) -> usize {
        self.strips() * STRIP + 2
    }
    /// Rows of the bordered input: every output row's 3.
    fn bordered_rows(&self) -> usize {
        self.oh + 2
    }
}

/// `relu(conv(x, w) + bias[k])` (no bias: none; no ReLU: no clamp) of `x` (N, C, H, W)
/// with `w` (K, C, 3, 3), stride 1, dilation 1, one group; (N, K, OH, OW). None for f64
/// and without AVX-512.
pub(super) fn conv3x3<T: Elem>(
    x: &[T],
    w: &[T],
    s: &Conv3x3,
    bias: Option<&[T]>,
    relu: bool,
) -> Option<Vec<T>> {
    let bias = match bias {
        Some(b) => Some(as_f32(b)?),
        None => None,
    };
    from_f32(conv3x3_f32(as_f32(x)?, as_f32(w)?, s, bias, relu)?)
}

/// dW (K, C, 3, 3) of `relu`-free conv3x3 from `x` (N, C, H, W) and `dy` (N, K, OH, OW).
/// None for f64 and without AVX-512.
pub(super) fn weight_grad3x3<T: Elem>(x: &[T], dy: &[T], s: &Conv3x3) -> Option<Vec<T>> {
    from_f32(weight_grad3x3_f32(as_f32(x)?, as_f32(dy)?, s)?)
}

/// [`conv3x3`] on f32 data.
fn conv3x3_f32(
    x: &[f32],
    w: &[f32],
    s: &Conv3x3,
    bias: Option<&[f32]>,
    relu: bool,
) -> Option<Vec<f32>> {
    use rayon::prelude::*;
    if simd() != Simd::Avx512 {
        return None;
    }
    // (K, C, 3, 3) -> (C, 3, 3, K): a tap's output channels side by side.
    let mut wt = vec![0.0; w.len()];
    transpose(w, s.k, s.c * 9, &mut wt);
    let out_len = s.k * s.oh * s.ow;
    // Written once, row by row: never zeroed first.
    let len = s.n * out_len;
    let mut y: Vec<f32> = Vec::with_capacity(len);
    let plane = s.h * s.w;
    y.spare_capacity_mut()[..len]
        .par_chunks_mut(out_len.max(1))
        .enumerate()
        .for_each(|(n, y)| {
            let x = &x[n * s.c * plane..][..s.c * plane];
            with_scratch(
                2,
                s.c * s.bordered_rows() * s.bordered_cols(),
                |xp: &mut [f32]| {
                    border(x, s, xp);
                    sample(xp, &wt, s, bias, relu, y)
                },
            )
        });
    // SAFETY: each sample's rows, strips and channel blocks cover its (K, OH, OW).
    unsafe { y.set_len(len) };
    Some(y)
}

/// xp[c][r][q] = x[c][r − pad_top][q − pad_left], zero outside the input: output
/// (oy, ox) reads rows oy..oy+3 and columns ox..ox+3.
fn border(x: &[f32], s: &Conv3x3, xp: &mut [f32]) {
    let (hp, wp) = (s.bordered_rows(), s.bordered_cols());
    xp.fill(0.0);
    let lead = s.pad[1].min(wp);
    let cols = s.w.min(wp - lead);
    for c in 0..s.c {
        for r in 0..hp {
            let iy = r as isize - s.pad[0] as isize;
            if iy < 0 || iy >= s.h as isize {
                continue;
            }
            let src = &x[(c * s.h + iy as usize) * s.w..][..cols];
            // SAFETY: AVX-512 was detected by the callers.
            unsafe { copy_row(src, &mut xp[(c * hp + r) * wp + lead..][..cols]) };
        }
    }
}

/// dst = src (equal lengths) in 16-float vectors: the rows are short (32 floats on
/// ResNet-20), and as `copy_from_slice` each was a call into libc's memmove, a third of
/// the bordering's time.
///
/// # Safety
/// AVX-512F must be available.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn copy_row(src: &[f32], dst: &mut [f32]) {
    use std::arch::x86_64::*;
    assert_eq!(src.len(), dst.len());
    let mut i = 0;
    while i + LANES <= src.len() {
        // SAFETY: i + 16 ≤ len on both sides; AVX-512F is the caller's contract.
        unsafe {
            _mm512_storeu_ps(
                dst.as_mut_ptr().add(i),
                _mm512_loadu_ps(src.as_ptr().add(i)),
            )
        };
        i += LANES;
    }
    let rest = src.len() - i;
    if rest > 0 {
        let m: __mmask16 = (1u16 << rest) - 1;
        // SAFETY: the mask covers only the `rest` elements left on both sides.
        unsafe {
            let v = _mm512_maskz_loadu_ps(m, src.as_ptr().add(i));
            _mm512_mask_storeu_ps(dst.as_mut_ptr().add(i), m, v);
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn copy_row(src: &[f32], dst: &mut [f32]) {
    dst.copy_from_slice(src)
}

/// One sample's (K, OH, OW) output `y` from its bordered input.
fn sample(
    xp: &[f32],
    wt: &[f32],
    s: &Conv3x3,
    bias: Option<&[f32]>,
    relu: bool,
    y: &mut [MaybeUninit<f32>],
) {
    assert!(y.len() >= s.k * s.oh * s.ow);
    if let Some(b) = bias {
        assert!(b.len() >= s.k);
    }
    for oy in 0..s.oh {
        for strip in 0..s.strips() {
            let x0 = strip * STRIP;
            for k0 in (0..s.k).step_by(KB) {
                let kb = KB.min(s.k - k0);
                // SAFETY: AVX-512 was detected (conv3x3); block's reads stay inside xp and
                // wt (bordered rows of wp ≥ x0 + 34 columns, hp ≥ oy + 3 rows; taps
                // k0..k0+kb of each), bias (K, asserted), and its writes inside y (rows
                // oy of channels k0..k0+kb, columns x0..min(x0 + 32, OW); asserted).
                unsafe { block(xp, wt, s, oy, x0, k0, kb, bias, relu, y) };
            }
        }
    }
}

/// y[k0 + i][oy][x0..x0 + 32] (clipped at OW) = Σ_c Σ_taps w[k0 + i][c][ky][kx] ·
/// xp[c][oy + ky][x0 + kx ..] (+ bias[k0 + i], clamped at 0 with `relu`) for the `kb` ≤ 8
/// output channels k0..k0+kb: the sums go from the registers to the output, bias and
/// ReLU applied on the way (through a row buffer and a plain loop they were an eighth
/// of the kernel's time).
///
/// # Safety
/// AVX-512F must be available; see the caller for the extents.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn block(
    xp: &[f32],
    wt: &[f32],
    s: &Conv3x3,
    oy: usize,
    x0: usize,
    k0: usize,
    kb: usize,
    bias: Option<&[f32]>,
    relu: bool,
    y: &mut [MaybeUninit<f32>],
) {
    use std::arch::x86_64::*;
    let (hp, wp, k) = (s.bordered_rows(), s.bordered_cols(), s.k);
    debug_assert!(x0 + STRIP + 2 <= wp && oy + 3 <= hp && y.len() >= s.k * s.oh * s.ow);
    // SAFETY: AVX-512F and the extents (xp's bordered rows, wt's taps k0..k0 + kb, y's
    // rows, bias's K) are the caller's contract; every pointer below stays inside them.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); 2]; KB];
        // Taps of a partial block read 8 channels from a padded copy.
        let mut taps8 = [0.0f32; KB];
        for c in 0..s.c {
            for ky in 0..3 {
                let line = xp.as_ptr().add((c * hp + oy + ky) * wp + x0);
                for kx in 0..3 {
                    let v0 = _mm512_loadu_ps(line.add(kx));
                    let v1 = _mm512_loadu_ps(line.add(kx + LANES));
                    let at = ((c * 3 + ky) * 3 + kx) * k + k0;
                    let taps = if kb == KB {
                        wt.as_ptr().add(at)
                    } else {
                        taps8[..kb].copy_from_slice(&wt[at..at + kb]);
                        taps8.as_ptr()
                    };
                    for (i, acc) in acc.iter_mut().enumerate() {
                        let t = _mm512_set1_ps(*taps.add(i));
                        acc[0] = _mm512_fmadd_ps(t, v0, acc[0]);
                        acc[1] = _mm512_fmadd_ps(t, v1, acc[1]);
                    }
                }
            }
        }
        // Columns x0.. of the row: the first vector's lanes, then the second's.
        let width = STRIP.min(s.ow - x0);
        let masks: [__mmask16; 2] = [
            (((1u32 << width.min(LANES)) - 1) & 0xffff) as __mmask16,
            (((1u32 << width.saturating_sub(LANES)) - 1) & 0xffff) as __mmask16,
        ];
        let plane = s.oh * s.ow;
        let zero = _mm512_setzero_ps();
        for (i, acc) in acc.iter().enumerate().take(kb) {
            let b = _mm512_set1_ps(bias.map_or(0.0, |b| b[k0 + i]));
            let dst = y.as_mut_ptr().add((k0 + i) * plane + oy * s.ow + x0) as *mut f32;
            for (j, &v) in acc.iter().enumerate() {
                let v = _mm512_add_ps(v, b);
                let v = if relu { _mm512_max_ps(v, zero) } else { v };
                if masks[j] != 0 {
                    _mm512_mask_storeu_ps(dst.add(j * LANES), masks[j], v);
                }
            }
        }
    }
}

/// Never reached: conv3x3_f32 returns None before (no AVX-512 off x86-64).
#[cfg(not(target_arch = "x86_64"))]
#[allow(clippy::too_many_arguments)]
unsafe fn block(
    _: &[f32],
    _: &[f32],
    _: &Conv3x3,
    _: usize,
    _: usize,
    _: usize,
    _: usize,
    _: Option<&[f32]>,
    _: bool,
    _: &mut [MaybeUninit<f32>],
) {
    unreachable!("the direct kernel needs AVX-512")
}

/// Output channels per weight-gradient task.
const KG: usize = 2;

/// [`weight_grad3x3`] on f32 data. The batch splits into one fixed block of samples per
/// thread, whose sums add in order: the same bits every run.
fn weight_grad3x3_f32(x: &[f32], dy: &[f32], s: &Conv3x3) -> Option<Vec<f32>> {
    use rayon::prelude::*;
    if simd() != Simd::Avx512 {
        return None;
    }
    let threads = num_threads().min(s.n).max(1);
    let per = s.n.div_ceil(threads);
    let tasks = s.k.div_ceil(KG) * s.c;
    // Per task: KG·9 accumulator vectors.
    let acc_len = tasks * KG * 9 * LANES;
    let blocks: Vec<Vec<f32>> = (0..threads)
        .into_par_iter()
        .map(|t| {
            let mut acc = vec![0f32; acc_len];
            let (n0, n1) = (t * per, ((t + 1) * per).min(s.n));
            with_scratch(
                2,
                s.c * s.bordered_rows() * s.bordered_cols(),
                |xp: &mut [f32]| {
                    with_scratch(3, s.k * s.oh * s.strips() * STRIP, |dyp: &mut [f32]| {
                        for n in n0..n1 {
                            let plane = s.h * s.w;
                            border(&x[n * s.c * plane..][..s.c * plane], s, xp);
                            let oplane = s.oh * s.ow;
                            pad_rows(&dy[n * s.k * oplane..][..s.k * oplane], s, dyp);
                            // SAFETY: AVX-512 was detected above; the extents are the
                            // bordered buffers' (see weight_sample).
                            unsafe { weight_sample(xp, dyp, s, &mut acc) };
                        }
                    })
                },
            );
            // Horizontal sums: dW[k][c][tap] per thread.
            let mut dw = vec![0f32; s.k * s.c * 9];
            for k0 in (0..s.k).step_by(KG) {
                for c in 0..s.c {
                    let task = (k0 / KG) * s.c + c;
                    for i in 0..KG.min(s.k - k0) {
                        for tap in 0..9 {
                            let v = &acc[((task * KG + i) * 9 + tap) * LANES..][..LANES];
                            dw[((k0 + i) * s.c + c) * 9 + tap] = v.iter().sum();
                        }
                    }
                }
            }
            dw
        })
        .collect();
    let mut blocks = blocks.into_iter();
    let mut dw = blocks.next().unwrap_or_else(|| vec![0f32; s.k * s.c * 9]);
    for b in blocks {
        for (a, b) in dw.iter_mut().zip(b) {
            *a += b;
        }
    }
    Some(dw)
}

/// dyp[k][oy][q] = dy[k][oy][q] for q < OW, zero up to the strips' width.
fn pad_rows(dy: &[f32], s: &Conv3x3, dyp: &mut [f32]) {
    let wq = s.strips() * STRIP;
    for (src, dst) in dy.chunks_exact(s.ow).zip(dyp.chunks_exact_mut(wq)) {
        dst[..s.ow].copy_from_slice(src);
        dst[s.ow..].fill(0.0);
    }
}

/// One sample's products into the accumulators: for each pair of output channels and
/// each input channel, Σ over rows and strips of dY·(shifted input).
///
/// # Safety
/// AVX-512F must be available; `xp` is the sample's bordered input, `dyp` its padded dY
/// (K·OH rows of strips·32), `acc` holds every task's 18 vectors.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn weight_sample(xp: &[f32], dyp: &[f32], s: &Conv3x3, acc: &mut [f32]) {
    use std::arch::x86_64::*;
    let (hp, wp) = (s.bordered_rows(), s.bordered_cols());
    let wq = s.strips() * STRIP;
    assert!(xp.len() >= s.c * hp * wp && dyp.len() >= s.k * s.oh * wq);
    assert!(acc.len() >= s.k.div_ceil(KG) * s.c * KG * 9 * LANES);
    // SAFETY: AVX-512F is the caller's contract; the extents were asserted above and
    // every pointer below stays inside them.
    unsafe {
        for k0 in (0..s.k).step_by(KG) {
            // A lone last channel pairs with itself; its second set is dropped.
            let k1 = (k0 + 1).min(s.k - 1);
            for c in 0..s.c {
                let task = (k0 / KG) * s.c + c;
                let a = acc.as_mut_ptr().add(task * KG * 9 * LANES);
                let mut r: [[__m512; 9]; KG] = std::array::from_fn(|i| {
                    std::array::from_fn(|t| _mm512_loadu_ps(a.add((i * 9 + t) * LANES)))
                });
                for oy in 0..s.oh {
                    let g0 = dyp.as_ptr().add((k0 * s.oh + oy) * wq);
                    let g1 = dyp.as_ptr().add((k1 * s.oh + oy) * wq);
                    for q in (0..wq).step_by(LANES) {
                        let (d0, d1) = (_mm512_loadu_ps(g0.add(q)), _mm512_loadu_ps(g1.add(q)));
                        for ky in 0..3 {
                            let line = xp.as_ptr().add((c * hp + oy + ky) * wp + q);
                            for kx in 0..3 {
                                let v = _mm512_loadu_ps(line.add(kx));
                                let t = ky * 3 + kx;
                                r[0][t] = _mm512_fmadd_ps(d0, v, r[0][t]);
                                r[1][t] = _mm512_fmadd_ps(d1, v, r[1][t]);
                            }
                        }
                    }
                }
                for (i, r) in r.iter().enumerate() {
                    for (t, &v) in r.iter().enumerate() {
                        _mm512_storeu_ps(a.add((i * 9 + t) * LANES), v);
                    }
                }
            }
        }
    }
}

/// Never reached: weight_grad3x3_f32 returns None before (no AVX-512 off x86-64).
#[cfg(not(target_arch = "x86_64"))]
unsafe fn weight_sample(_: &[f32], _: &[f32], _: &Conv3x3, _: &mut [f32]) {
    unreachable!("the direct kernel needs AVX-512")
}
