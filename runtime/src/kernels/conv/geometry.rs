//! The sizes of a convolution: the public [`Conv2dGeometry`] (stride, padding,
//! dilation, groups) with its output size, [`Dims`] (every size of one call, checked),
//! [`Conv3x3`] (what the fast 3x3 paths take) and [`valid_range`] (which outputs of an
//! axis read inside the input).

use candle_core::{bail, Result};

/// Geometry of a 2-D convolution; every pair is `[h, w]` (padding: `[top, left]` and
/// `[bottom, right]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dGeometry {
    pub stride: [usize; 2],
    pub pad_begin: [usize; 2],
    pub pad_end: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
}

impl Conv2dGeometry {
    /// The same stride, padding (on all four sides) and dilation on both axes, like
    /// candle's `Tensor::conv2d`.
    pub fn uniform(stride: usize, padding: usize, dilation: usize, groups: usize) -> Self {
        Self {
            stride: [stride; 2],
            pad_begin: [padding; 2],
            pad_end: [padding; 2],
            dilation: [dilation; 2],
            groups,
        }
    }

    /// Output size `[OH, OW]` for an `[H, W]` input and a `[KH, KW]` kernel, or an error when
    /// the (dilated) kernel does not fit in the padded input.
    pub fn output_size(&self, input: [usize; 2], kernel: [usize; 2]) -> Result<[usize; 2]> {
        let mut out = [0; 2];
        for a in 0..2 {
            if self.stride[a] == 0 || self.dilation[a] == 0 || kernel[a] == 0 {
                bail!("conv2d: stride, dilation and kernel size must be positive, got {self:?} and kernel {kernel:?}")
            }
            let padded = input[a] + self.pad_begin[a] + self.pad_end[a];
            let span = self.dilation[a] * (kernel[a] - 1) + 1;
            if padded < span {
                bail!(
                    "conv2d: the kernel {kernel:?} (dilation {:?}) is larger than the padded input {input:?}",
                    self.dilation
                )
            }
            out[a] = (padded - span) / self.stride[a] + 1;
        }
        Ok(out)
    }
}

/// All sizes of one convolution.
#[derive(Clone, Copy, Debug)]
pub(super) struct Dims {
    pub(super) n: usize,
    pub(super) c: usize,
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) o: usize,
    pub(super) kh: usize,
    pub(super) kw: usize,
    pub(super) oh: usize,
    pub(super) ow: usize,
    pub(super) g: Conv2dGeometry,
}

impl Dims {
    pub(super) fn new(x: &[usize], w: &[usize], g: &Conv2dGeometry) -> Result<Self> {
        let (&[n, c, h, wd], &[o, cg, kh, kw]) = (x, w) else {
            bail!("conv2d: expected x (N, C, H, W) and weight (O, C/groups, KH, KW), got {x:?} and {w:?}")
        };
        if g.groups == 0 || c % g.groups != 0 || o % g.groups != 0 || cg * g.groups != c {
            bail!(
                "conv2d: groups {} do not fit x {x:?} and weight {w:?} (need C and O divisible by groups, weight dim 1 = C/groups)",
                g.groups
            )
        }
        let [oh, ow] = g.output_size([h, wd], [kh, kw])?;
        Ok(Self {
            n,
            c,
            h,
            w: wd,
            o,
            kh,
            kw,
            oh,
            ow,
            g: *g,
        })
    }
    pub(super) fn p(&self) -> usize {
        self.oh * self.ow
    }
    pub(super) fn kk(&self) -> usize {
        self.kh * self.kw
    }
    pub(super) fn chw(&self) -> usize {
        self.c * self.h * self.w
    }
    pub(super) fn cgkk(&self) -> usize {
        self.c / self.g.groups * self.kk()
    }
    pub(super) fn og(&self) -> usize {
        self.o / self.g.groups
    }
}

/// The sizes of a 3x3, stride-1, undilated, single-group convolution: what the fast 3x3
/// paths ([`winograd`](super::winograd), [`direct`](super::direct)) take.
#[derive(Clone, Copy, Debug)]
pub(super) struct Conv3x3 {
    pub(super) n: usize,
    pub(super) c: usize,
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) k: usize,
    pub(super) oh: usize,
    pub(super) ow: usize,
    /// Padding at the top and left (the bottom and right follow from OH, OW).
    pub(super) pad: [usize; 2],
}

/// The output positions `[lo, hi)` along one axis whose input index
/// `o*stride + k_off - pad` lies in `[0, len)`.
pub(super) fn valid_range(
    k_off: usize,
    pad: usize,
    stride: usize,
    len: usize,
    out: usize,
) -> (usize, usize) {
    let lo = if pad > k_off {
        (pad - k_off).div_ceil(stride)
    } else {
        0
    };
    let hi = if len + pad > k_off {
        (len + pad - k_off).div_ceil(stride)
    } else {
        0
    };
    let hi = hi.min(out);
    (lo.min(hi), hi)
}

#[cfg(test)]
mod tests {
    use super::valid_range;

    #[test]
    fn valid_range_matches_brute_force() {
        for k_off in 0..6 {
            for pad in 0..4 {
                for stride in 1..4 {
                    for len in 1..7 {
                        for out in 0..8 {
                            let ok: Vec<usize> = (0..out)
                                .filter(|&o| {
                                    let i = (o * stride + k_off) as isize - pad as isize;
                                    i >= 0 && i < len as isize
                                })
                                .collect();
                            let (lo, hi) = valid_range(k_off, pad, stride, len, out);
                            let got: Vec<usize> = (lo..hi).collect();
                            assert_eq!(
                                ok, got,
                                "k_off {k_off} pad {pad} s {stride} len {len} out {out}"
                            );
                        }
                    }
                }
            }
        }
    }
}
