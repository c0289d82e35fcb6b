//! A strided convolution as a stride-1 3x3 one over more channels ("space to depth"),
//! for the forward of AlexNet's 11x11 stride-4 stem: the input's s x s phases become
//! channels (3 -> 48) and the kernel's taps a 3x3 grid of s x s blocks (11x11 padded to
//! 12x12). Winograd then takes it (`Dims::winograd`): 4x fewer multiplications than the
//! direct form, for 1.19x more taps. Through im2col the stem gathered every input pixel
//! 121 times at stride 4; on a Xeon this ran it 1.6-1.9x faster (20-24 ms to 11-14 ms
//! at batch 16).
//!
//! Tap ky = s·t + p splits into a tap t < 3 of the 3x3 and a phase p < s:
//! y[o][oy][ox] = Σ_c Σ_(ky,kx) w[o][c][ky][kx] · xpad[c][s·oy + ky][s·ox + kx]
//! = Σ_(c,py,px) Σ_(ty,tx) w'[o][(c,py,px)][ty][tx] · x'[(c,py,px)][oy + ty][ox + tx]
//! with x'[(c,py,px)][i][j] = xpad[c][s·i + py][s·j + px] (zero outside the input) and
//! w' the kernel's taps, zero where s·t + p is past the kernel.
//!
//! Tried and dropped: the same for stride-1 5x5 convs, the kernel's 3x3 blocks as
//! channels (AlexNet's 64 -> 256): Winograd over 256 channels ran no faster than im2col.

use super::geometry::{Conv2dGeometry, Dims};
use crate::kernels::util::Elem;

/// The stride-1 3x3 convolution `d` becomes, where it applies and Winograd takes the
/// result: one group, no dilation, equal strides s ≥ 2 and square kernels of more than
/// 2·s and at most 3·s taps (smaller ones would waste most of the 3x3).
pub(super) fn transformed(d: &Dims) -> Option<Dims> {
    let (s, k) = (d.g.stride[0], d.kh);
    let applies = d.g.groups == 1
        && d.g.dilation == [1, 1]
        && d.g.stride == [s, s]
        && d.kw == k
        && s >= 2
        && 2 * s < k
        && k <= 3 * s;
    if !applies {
        return None;
    }
    let c = d.c * s * s;
    let t = Dims::new(
        &[d.n, c, d.oh + 2, d.ow + 2],
        &[d.o, c, 3, 3],
        &Conv2dGeometry::uniform(1, 0, 1, 1),
    )
    .ok()?;
    t.winograd().map(|_| t)
}

/// x' (N, C·s², OH + 2, OW + 2) of `x` (N, C, H, W), zero outside the input.
pub(super) fn input<T: Elem>(x: &[T], d: &Dims, t: &Dims) -> Vec<T> {
    use rayon::prelude::*;
    let s = d.g.stride[0];
    let [top, left] = d.g.pad_begin;
    let mut xt = vec![T::ZERO; t.n * t.chw()];
    let plane = t.h * t.w;
    xt.par_chunks_mut(plane).enumerate().for_each(|(i, out)| {
        // Plane i is sample n, channel c, phases (py, px).
        let (n, ch) = (i / t.c, i % t.c);
        let (c, py, px) = (ch / (s * s), ch / s % s, ch % s);
        let src = &x[(n * d.c + c) * d.h * d.w..][..d.h * d.w];
        // Column j of x' reads input column s·j + px − left: inside for j in j0..j1.
        let j0 = left.saturating_sub(px).div_ceil(s).min(t.w);
        let j1 = (d.w + left).saturating_sub(px).div_ceil(s).clamp(j0, t.w);
        for r in 0..t.h {
            let Some(iy) = (s * r + py).checked_sub(top).filter(|&iy| iy < d.h) else {
                continue;
            };
            let row = &src[iy * d.w..][..d.w];
            let out = &mut out[r * t.w..][j0..j1];
            let first = s * j0 + px - left;
            for (j, o) in out.iter_mut().enumerate() {
                *o = row[first + s * j];
            }
        }
    });
    xt
}

/// w' (O, C·s², 3, 3) of `w` (O, C, K, K).
pub(super) fn weight<T: Elem>(w: &[T], d: &Dims, t: &Dims) -> Vec<T> {
    let s = d.g.stride[0];
    let mut wt = vec![T::ZERO; t.o * t.c * 9];
    for o in 0..d.o {
        for c in 0..d.c {
            for ky in 0..d.kh {
                let (ty, py) = (ky / s, ky % s);
                for kx in 0..d.kw {
                    let (tx, px) = (kx / s, kx % s);
                    let ch = (c * s + py) * s + px;
                    wt[(o * t.c + ch) * 9 + ty * 3 + tx] =
                        w[((o * d.c + c) * d.kh + ky) * d.kw + kx];
                }
            }
        }
    }
    wt
}
