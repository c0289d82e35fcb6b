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
//! Written with intrinsics: as plain loops over arrays the compiler kept the
//! accumulators in memory and reached them with gathers and scatters (10x slower).
//! Elsewhere (no AVX-512, f64) im2col runs instead.

use super::util::{relu_of, simd, with_scratch, Simd};

/// Output columns per vector.
const LANES: usize = 16;
/// Output columns per strip: two vectors.
const STRIP: usize = 2 * LANES;
/// Output channels per kernel call.
const KB: usize = 8;

/// Whether rows of `ow` outputs fill at least three quarters of the strips that cover
/// them: on 16-wide rows half of every vector is wasted and im2col ran 1.4x faster
/// (ResNet-20's 32-channel stage).
pub(crate) fn fills_strips(ow: usize) -> bool {
    ow >= 24 && 4 * ow >= 3 * ow.div_ceil(STRIP) * STRIP
}

/// The sizes of one 3x3 stride-1 convolution that runs here.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Direct3x3 {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub k: usize,
    pub oh: usize,
    pub ow: usize,
    /// Padding at the top and left (the bottom and right follow from OH, OW).
    pub pad: [usize; 2],
}

impl Direct3x3 {
    fn strips(&self) -> usize {
        self.ow.div_ceil(STRIP)
    }
    /// Row length of the bordered input: every strip's 32 + 2 columns.
    fn wp(&self) -> usize {
        self.strips() * STRIP + 2
    }
    /// Rows of the bordered input: every output row's 3.
    fn hp(&self) -> usize {
        self.oh + 2
    }
}

/// `relu(conv(x, w) + bias[k])` (no bias: none; no ReLU: no clamp) of `x` (N, C, H, W)
/// with `w` (K, C, 3, 3), stride 1, dilation 1, one group; (N, K, OH, OW). None without
/// AVX-512.
pub(crate) fn conv3x3(
    x: &[f32],
    w: &[f32],
    s: &Direct3x3,
    bias: Option<&[f32]>,
    relu: bool,
) -> Option<Vec<f32>> {
    use rayon::prelude::*;
    if simd() != Simd::Avx512 {
        return None;
    }
    // (K, C, 3, 3) -> (C, 3, 3, K): a tap's output channels side by side.
    let mut wt = vec![0.0; w.len()];
    super::util::transpose(w, s.k, s.c * 9, &mut wt);
    let out_len = s.k * s.oh * s.ow;
    let mut y = vec![0.0; s.n * out_len];
    let plane = s.h * s.w;
    y.par_chunks_mut(out_len.max(1))
        .enumerate()
        .for_each(|(n, y)| {
            let x = &x[n * s.c * plane..][..s.c * plane];
            with_scratch(2, s.c * s.hp() * s.wp(), |xp: &mut [f32]| {
                with_scratch(3, KB * STRIP, |row: &mut [f32]| {
                    border(x, s, xp);
                    sample(xp, &wt, s, bias, relu, row, y)
                })
            })
        });
    Some(y)
}

/// xp[c][r][q] = x[c][r − pad_top][q − pad_left], zero outside the input: output
/// (oy, ox) reads rows oy..oy+3 and columns ox..ox+3.
fn border(x: &[f32], s: &Direct3x3, xp: &mut [f32]) {
    let (hp, wp) = (s.hp(), s.wp());
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
            xp[(c * hp + r) * wp + lead..][..cols].copy_from_slice(src);
        }
    }
}

fn sample(
    xp: &[f32],
    wt: &[f32],
    s: &Direct3x3,
    bias: Option<&[f32]>,
    relu: bool,
    row: &mut [f32],
    y: &mut [f32],
) {
    let plane = s.oh * s.ow;
    for oy in 0..s.oh {
        for strip in 0..s.strips() {
            let x0 = strip * STRIP;
            let width = STRIP.min(s.ow - x0);
            for k0 in (0..s.k).step_by(KB) {
                let kb = KB.min(s.k - k0);
                // SAFETY: AVX-512 was detected (conv3x3); block's reads stay inside xp and
                // wt (bordered rows of wp ≥ x0 + 34 columns, hp ≥ oy + 3 rows; taps
                // k0..k0+kb of each) and its writes inside row (kb·32).
                unsafe { block(xp, wt, s, oy, x0, k0, kb, row) };
                for i in 0..kb {
                    let add = bias.map_or(0.0, |b| b[k0 + i]);
                    let dst = &mut y[(k0 + i) * plane + oy * s.ow + x0..][..width];
                    for (d, &v) in dst.iter_mut().zip(&row[i * STRIP..][..width]) {
                        *d = if relu { relu_of(v + add) } else { v + add };
                    }
                }
            }
        }
    }
}

/// row[i][0..32] = Σ_c Σ_taps w[k0 + i][c][ky][kx] · xp[c][oy + ky][x0 + kx ..] for the
/// `kb` ≤ 8 output channels k0..k0+kb.
///
/// # Safety
/// AVX-512F must be available; see the caller for the extents.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn block(
    xp: &[f32],
    wt: &[f32],
    s: &Direct3x3,
    oy: usize,
    x0: usize,
    k0: usize,
    kb: usize,
    row: &mut [f32],
) {
    use std::arch::x86_64::*;
    let (hp, wp, k) = (s.hp(), s.wp(), s.k);
    debug_assert!(x0 + STRIP + 2 <= wp && oy + 3 <= hp && row.len() >= kb * STRIP);
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
    for (i, acc) in acc.iter().enumerate().take(kb) {
        _mm512_storeu_ps(row.as_mut_ptr().add(i * STRIP), acc[0]);
        _mm512_storeu_ps(row.as_mut_ptr().add(i * STRIP + LANES), acc[1]);
    }
}

/// Never reached: conv3x3 returns None before (no AVX-512 off x86-64).
#[cfg(not(target_arch = "x86_64"))]
#[allow(clippy::too_many_arguments)]
unsafe fn block(
    _: &[f32],
    _: &[f32],
    _: &Direct3x3,
    _: usize,
    _: usize,
    _: usize,
    _: usize,
    _: &mut [f32],
) {
    unreachable!("the direct kernel needs AVX-512")
}
