//! The custom ops composed of candle's own tensor ops, differentiated by candle's
//! autograd: what runs on a device our kernels do not (CUDA). Each function here has
//! the semantics of the kernel of the same name (PyTorch's), and each public kernel
//! entry point calls it when [`applies`].
//!
//! On the CPU they run only when asked (`CNNCOST_KERNELS=portable`, or [`force`]): the
//! tests run PyTorch's parity fixtures through them there (tests/portable.rs), so a GPU
//! run's failure is a device's, not a composition's.
//!
//! Where candle's own op is wrong or missing they go around it:
//! * pooling: candle's pools take no padding and have no backward when the kernel is
//!   not the stride (its issue #1593); here every window tap is a strided view of the
//!   padded input, and the maximum's gradient goes to the first maximum of each window
//!   (PyTorch's rule) through a one-hot selection (`where_cond`);
//! * convolution: candle's backward sizes the input gradient by the height alone, so
//!   the input is cropped to the rows and columns the windows reach before the conv;
//!   asymmetric padding is explicit; a stride-1 conv's input gradient is a conv
//!   ([`ConvByConvGradients`]), not candle's `conv_transpose2d` kernel;
//! * ReLU: candle's gradient is 1 at 0, PyTorch's 0; here it is `where(x > 0, x, 0)`.

use super::conv::Conv2dGeometry;
use super::norm::BatchMoments;
use super::pool::{self, Pool2dGeometry, PoolMode};
use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

static FORCED: AtomicBool = AtomicBool::new(false);

/// Runs every op of the process through this module, on the CPU too (for tests and for
/// telling a kernel's bug from a device's). There is no way back.
pub fn force() {
    FORCED.store(true, Ordering::Relaxed)
}

/// Whether an op on `x` runs here: off the CPU, or when [`force`]d or asked for by
/// `CNNCOST_KERNELS=portable` (read once).
pub(crate) fn applies(x: &Tensor) -> bool {
    static FROM_ENV: OnceLock<bool> = OnceLock::new();
    !x.device().is_cpu()
        || FORCED.load(Ordering::Relaxed)
        || *FROM_ENV.get_or_init(|| std::env::var("CNNCOST_KERNELS").is_ok_and(|v| v == "portable"))
}

/// `x` along `dim`, `begin` fill values before it and the rest up to `len` after it
/// (or cut to `len` when it is longer).
fn pad_to(x: &Tensor, dim: usize, begin: usize, len: usize, fill: f64) -> Result<Tensor> {
    let have = begin + x.dim(dim)?;
    let x = if have > len {
        x.narrow(dim, 0, len.saturating_sub(begin))?
    } else {
        x.clone()
    };
    let end = len.saturating_sub(begin + x.dim(dim)?);
    if begin == 0 && end == 0 {
        return Ok(x);
    }
    if fill == 0.0 {
        return x.pad_with_zeros(dim, begin, end);
    }
    let block = |n: usize| {
        let mut dims = x.dims().to_vec();
        dims[dim] = n;
        Tensor::full(fill, dims, x.device())?.to_dtype(x.dtype())
    };
    let mut parts = Vec::with_capacity(3);
    if begin > 0 {
        parts.push(block(begin)?);
    }
    parts.push(x.clone());
    if end > 0 {
        parts.push(block(end)?);
    }
    Tensor::cat(&parts, dim)
}

/// The taps of `out` windows of `kernel` with `stride` over `x` (N, C, H, W), padded
/// by `pad` (filled with `fill`): tap (i, j) is the (N, C, OH, OW) tensor of each
/// window's element (i, j), in row-major window order. Strided views come from a
/// reshape (H into blocks of the stride), as candle has no stepped slice.
fn window_taps(
    x: &Tensor,
    [kh, kw]: [usize; 2],
    [sh, sw]: [usize; 2],
    [ph, pw]: [usize; 2],
    [oh, ow]: [usize; 2],
    fill: f64,
) -> Result<Vec<Tensor>> {
    let (n, c, _, _) = x.dims4()?;
    // Enough stride blocks that every tap's view of `out` blocks fits.
    let (qh, qw) = (oh + (kh - 1) / sh, ow + (kw - 1) / sw);
    let xp = pad_to(&pad_to(x, 2, ph, qh * sh, fill)?, 3, pw, qw * sw, fill)?;
    let blocks = xp.reshape((n, c, qh, sh, qw, sw))?;
    let mut taps = Vec::with_capacity(kh * kw);
    for i in 0..kh {
        for j in 0..kw {
            taps.push(
                blocks
                    .narrow(2, i / sh, oh)?
                    .narrow(3, i % sh, 1)?
                    .narrow(4, j / sw, ow)?
                    .narrow(5, j % sw, 1)?
                    .reshape((n, c, oh, ow))?,
            );
        }
    }
    Ok(taps)
}

/// [`super::conv2d`] with candle's conv.
pub fn conv2d(x: &Tensor, w: &Tensor, g: &Conv2dGeometry) -> Result<Tensor> {
    if g.stride[0] != g.stride[1] || g.dilation[0] != g.dilation[1] {
        bail!(
            "conv2d on {:?}: stride {:?} and dilation {:?} must be the same along both axes there (candle's conv takes one of each)",
            x.device().location(),
            g.stride,
            g.dilation
        )
    }
    let (s, d) = (g.stride[0], g.dilation[0]);
    let (_, _, h, wd) = x.dims4()?;
    let (_, _, kh, kw) = w.dims4()?;
    // The padded input, cut to what the windows reach (candle's backward needs the
    // input gradient's size to follow from the output's along both axes).
    let [oh, ow] = g.output_size([h, wd], [kh, kw])?;
    let (rh, rw) = (
        (oh - 1) * s + d * (kh - 1) + 1,
        (ow - 1) * s + d * (kw - 1) + 1,
    );
    let xp = pad_to(
        &pad_to(x, 2, g.pad_begin[0], rh, 0.0)?,
        3,
        g.pad_begin[1],
        rw,
        0.0,
    )?;
    if s == 1 && d == 1 && g.groups == 1 {
        // The product itself, then the op that gives it its backward.
        let y = xp.detach().conv2d(&w.detach(), 0, 1, 1, 1)?;
        return xp.apply_op3(w, &y, ConvByConvGradients);
    }
    xp.conv2d(w, 0, s, d, g.groups)
}

/// A stride-1 conv (no padding: the input comes padded), as `(x, w, y = conv(x, w))
/// -> y`, whose backward takes both gradients as convs: dX = conv(dY padded by k-1,
/// W flipped and transposed), dW as candle's (x and dY with batch and channels
/// swapped). candle's own backward takes dX with its `conv_transpose2d` kernel,
/// which its users report 4-10x slower on CUDA than a conv.
struct ConvByConvGradients;

impl CustomOp3 for ConvByConvGradients {
    fn name(&self) -> &'static str {
        "cnncost-portable-conv"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
        y: &CpuStorage,
        ly: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        Ok((y.try_clone(ly)?, ly.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        _: &candle_core::CudaStorage,
        _: &Layout,
        _: &candle_core::CudaStorage,
        _: &Layout,
        y: &candle_core::CudaStorage,
        ly: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        Ok((y.try_clone(ly)?, ly.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _: &Tensor,
        _: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (_, _, kh, kw) = w.dims4()?;
        let reversed = |k: usize| Tensor::new((0..k as u32).rev().collect::<Vec<_>>(), w.device());
        let flipped = w
            .index_select(&reversed(kh)?, 2)?
            .index_select(&reversed(kw)?, 3)?
            .transpose(0, 1)?
            .contiguous()?;
        let dx = dy
            .pad_with_zeros(2, kh - 1, kh - 1)?
            .pad_with_zeros(3, kw - 1, kw - 1)?
            .conv2d(&flipped, 0, 1, 1, 1)?;
        let dw = x
            .transpose(0, 1)?
            .conv2d(&dy.transpose(0, 1)?, 0, 1, 1, 1)?
            .transpose(0, 1)?;
        Ok((Some(dx), Some(dw), None))
    }
}

/// [`super::conv::conv2d_bias_relu`]: the conv, `bias` per channel, then a ReLU when asked.
pub fn conv2d_bias_relu(
    x: &Tensor,
    w: &Tensor,
    bias: &Tensor,
    relu_after: bool,
    g: &Conv2dGeometry,
) -> Result<Tensor> {
    let y = conv2d(x, w, g)?.broadcast_add(&bias.reshape((1, bias.elem_count(), 1, 1))?)?;
    if relu_after {
        relu(&y)
    } else {
        Ok(y)
    }
}

/// [`super::linear`]: `x · Wᵀ`.
pub fn linear(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    x.matmul(&w.t()?)
}

/// [`super::norm::relu`]: `x` where it is positive, else 0, so the gradient is 0 at 0 as
/// PyTorch's.
pub fn relu(x: &Tensor) -> Result<Tensor> {
    x.gt(0.0)?.where_cond(x, &x.zeros_like()?)
}

/// [`super::norm::add_relu`].
pub fn add_relu(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    relu(&a.add(b)?)
}

/// [`super::mask::mul_mask`]: no gradient for the mask.
pub fn mul_mask(x: &Tensor, mask: &Tensor) -> Result<Tensor> {
    x.mul(&mask.detach())
}

/// [`super::norm::batch_norm_train`].
pub fn batch_norm_train(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
    relu_after: bool,
) -> Result<(Tensor, BatchMoments)> {
    let dims = x.dims().to_vec();
    let (n, c) = (dims[0], dims.get(1).copied().unwrap_or(1));
    let s: usize = dims.iter().skip(2).product();
    let xr = x.reshape((n, c, s))?;
    let per_channel = |t: &Tensor| t.mean_keepdim(2)?.mean_keepdim(0);
    let mean = per_channel(&xr)?;
    let centred = xr.broadcast_sub(&mean)?;
    let var = per_channel(&centred.sqr()?)?;
    let inv_std = (&var + eps)?.sqrt()?.recip()?;
    let y = centred
        .broadcast_mul(&inv_std.broadcast_mul(&gamma.reshape((1, c, 1))?)?)?
        .broadcast_add(&beta.reshape((1, c, 1))?)?
        .reshape(dims)?;
    let y = if relu_after { relu(&y)? } else { y };
    let moments_of = |t: &Tensor| t.detach().flatten_all()?.to_dtype(DType::F64);
    let moments = BatchMoments {
        mean: moments_of(&mean)?,
        var: moments_of(&var)?,
    };
    Ok((y, moments))
}

/// [`super::pool2d`]: each window's taps are strided views of the padded input.
pub fn pool2d(x: &Tensor, mode: PoolMode, g: &Pool2dGeometry) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let out = g.output_size([h, w])?;
    let fill = match mode {
        PoolMode::Max => f64::NEG_INFINITY,
        PoolMode::Avg { .. } => 0.0,
    };
    let taps = window_taps(x, g.kernel, g.stride, g.padding, out, fill)?;
    match mode {
        PoolMode::Max => {
            // The gradient goes to each window's first maximum: a one-hot selection per
            // tap, made in window order (selected, not multiplied: a -inf padding tap
            // times 0 is NaN).
            let max = taps
                .iter()
                .skip(1)
                .try_fold(taps[0].detach(), |m, t| m.maximum(&t.detach()))?;
            let zeros = max.zeros_like()?;
            let mut taken = zeros.to_dtype(DType::U8)?;
            let mut y = zeros.clone();
            for t in &taps {
                let first = t.detach().eq(&max)?.gt(&taken)?;
                taken = taken.maximum(&first)?;
                y = (y + first.where_cond(t, &zeros)?)?;
            }
            Ok(y)
        }
        PoolMode::Avg { count_include_pad } => {
            let sum = taps
                .iter()
                .skip(1)
                .try_fold(taps[0].clone(), |s, t| s.add(t))?;
            let divisor = avg_divisor(g, [h, w], out, count_include_pad);
            let divisor = Tensor::from_vec(divisor, (1, 1, out[0], out[1]), x.device())?
                .to_dtype(x.dtype())?;
            sum.broadcast_div(&divisor)
        }
    }
}

/// The divisor of each average window, row-major: the kernel's own
/// ([`pool::avg_divisor`]).
fn avg_divisor(
    g: &Pool2dGeometry,
    input: [usize; 2],
    [oh, ow]: [usize; 2],
    count_include_pad: bool,
) -> Vec<f64> {
    let along =
        |o: usize, axis: usize| pool::window(o, g.kernel[axis], g.stride[axis], g.padding[axis]);
    (0..oh)
        .flat_map(|oy| {
            (0..ow).map(move |ox| {
                pool::avg_divisor(g, input, along(oy, 0), along(ox, 1), count_include_pad) as f64
            })
        })
        .collect()
}

/// [`super::adaptive_avg_pool2d`]: `A_h · x · A_wᵀ`, where row `i` of `A` averages bin
/// `i` (bins are rectangles, so the average is separable).
pub fn adaptive_avg_pool2d(x: &Tensor, out: [usize; 2]) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let averaging = |len: usize, bins: usize| -> Result<Tensor> {
        let mut a = vec![0f64; bins * len];
        for i in 0..bins {
            let (b0, b1) = pool::bin(i, len, bins);
            for v in &mut a[i * len + b0..i * len + b1] {
                *v = 1.0 / (b1 - b0) as f64;
            }
        }
        Tensor::from_vec(a, (bins, len), x.device())?.to_dtype(x.dtype())
    };
    let rows = averaging(h, out[0])?;
    let cols = averaging(w, out[1])?.t()?;
    rows.broadcast_matmul(&x.broadcast_matmul(&cols)?)
}

/// [`super::shortcut::subsample_pad_channels`]: a 1x1 window with the stride, then zero
/// channels.
pub fn subsample_pad_channels(
    x: &Tensor,
    stride: usize,
    before: usize,
    after: usize,
) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let out = [h.div_ceil(stride), w.div_ceil(stride)];
    let taps = window_taps(x, [1, 1], [stride, stride], [0, 0], out, 0.0)?;
    taps[0].pad_with_zeros(1, before, after)
}

/// [`super::update::all_finite`]: `x − x` sums to 0 unless an element is infinite or NaN.
pub fn all_finite(x: &Tensor) -> Result<bool> {
    let s = x
        .sub(x)?
        .sum_all()?
        .to_dtype(DType::F64)?
        .to_scalar::<f64>()?;
    Ok(s.is_finite())
}

#[cfg(test)]
mod tests {
    //! Each composition against our CPU kernel of the same name (itself checked
    //! against PyTorch and by finite differences): the output and the gradient of
    //! a weighted sum, in f64, over geometries PyTorch's fixtures do not reach
    //! (non-square inputs, ceil mode, padding excluded from averages, asymmetric
    //! padding, strides that leave rows over).
    use super::*;
    use crate::kernels::gradcheck::weighted_sum;
    use candle_core::{Device, Var};

    fn input(dims: &[usize], seed: u64) -> Var {
        let n: usize = dims.iter().product();
        // Distinct values (no ties in a max window), deterministic.
        let v: Vec<f64> = (0..n)
            .map(|i| (((i as u64 * 7919 + seed * 104_729) % 1_000_003) as f64 / 1_000_003.0) - 0.5)
            .collect();
        Var::from_vec(v, dims, &Device::Cpu).unwrap()
    }

    /// Output and input gradients of `f` on `inputs`.
    fn run(f: impl Fn(&[Tensor]) -> Result<Tensor>, inputs: &[Var]) -> (Vec<f64>, Vec<Vec<f64>>) {
        let ts: Vec<Tensor> = inputs.iter().map(|v| v.as_tensor().clone()).collect();
        let y = f(&ts).unwrap();
        let grads = weighted_sum(&y, 3).unwrap().backward().unwrap();
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let g = ts.iter().map(|t| flat(grads.get(t).unwrap())).collect();
        (flat(&y), g)
    }

    fn assert_same(what: &str, a: (Vec<f64>, Vec<Vec<f64>>), b: (Vec<f64>, Vec<Vec<f64>>)) {
        let close = |x: &[f64], y: &[f64]| {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|(p, q)| (p - q).abs() <= 1e-9 * (1.0 + q.abs()))
        };
        assert!(close(&a.0, &b.0), "{what}: outputs differ");
        for (i, (ga, gb)) in a.1.iter().zip(&b.1).enumerate() {
            assert!(close(ga, gb), "{what}: gradients of input {i} differ");
        }
    }

    #[test]
    fn pooling_matches_the_kernel() {
        let x = input(&[2, 3, 9, 7], 1);
        for (k, s, p) in [(3, 2, 1), (2, 2, 0), (3, 1, 1), (3, 3, 0), (2, 3, 1)] {
            for ceil_mode in [false, true] {
                let g = Pool2dGeometry {
                    kernel: [k, k],
                    stride: [s, s],
                    padding: [p, p],
                    ceil_mode,
                };
                for mode in [
                    PoolMode::Max,
                    PoolMode::Avg {
                        count_include_pad: true,
                    },
                    PoolMode::Avg {
                        count_include_pad: false,
                    },
                ] {
                    assert_same(
                        &format!("{mode:?} {g:?}"),
                        run(|t| pool2d(&t[0], mode, &g), std::slice::from_ref(&x)),
                        run(
                            |t| super::super::pool2d(&t[0], mode, &g),
                            std::slice::from_ref(&x),
                        ),
                    );
                }
            }
        }
    }

    #[test]
    fn conv_matches_the_kernel() {
        let x = input(&[2, 4, 9, 6], 2);
        for (k, s, d, pb, pe, groups) in [
            (3, 2, 1, [1, 1], [1, 1], 1),
            (3, 2, 1, [0, 1], [1, 0], 2),
            (2, 1, 1, [0, 0], [1, 1], 1),
            (3, 1, 1, [1, 0], [1, 2], 1),
            (5, 3, 1, [2, 2], [2, 2], 1),
            (3, 1, 2, [2, 2], [2, 2], 4),
        ] {
            let w = input(&[4, 4 / groups, k, k], 3);
            let g = Conv2dGeometry {
                stride: [s, s],
                pad_begin: pb,
                pad_end: pe,
                dilation: [d, d],
                groups,
            };
            let inputs = [x.clone(), w];
            assert_same(
                &format!("{g:?}"),
                run(|t| conv2d(&t[0], &t[1], &g), &inputs),
                run(|t| super::super::conv2d(&t[0], &t[1], &g), &inputs),
            );
        }
    }

    #[test]
    fn the_other_ops_match_the_kernels() {
        let x = input(&[2, 4, 7, 5], 4);
        let one = std::slice::from_ref(&x);
        assert_same(
            "adaptive 3x2",
            run(|t| adaptive_avg_pool2d(&t[0], [3, 2]), one),
            run(|t| super::super::adaptive_avg_pool2d(&t[0], [3, 2]), one),
        );
        assert_same(
            "shortcut",
            run(|t| subsample_pad_channels(&t[0], 2, 1, 3), one),
            run(
                |t| super::super::shortcut::subsample_pad_channels(&t[0], 2, 1, 3),
                one,
            ),
        );
        assert_same(
            "relu",
            run(|t| relu(&t[0]), one),
            run(|t| super::super::norm::relu(&t[0]), one),
        );
        let (gamma, beta) = (input(&[4], 5), input(&[4], 6));
        let bn = [x.clone(), gamma, beta];
        for relu_after in [false, true] {
            assert_same(
                "batch norm",
                run(
                    |t| Ok(batch_norm_train(&t[0], &t[1], &t[2], 1e-5, relu_after)?.0),
                    &bn,
                ),
                run(
                    |t| {
                        Ok(super::super::norm::batch_norm_train(
                            &t[0], &t[1], &t[2], 1e-5, relu_after,
                        )?
                        .0)
                    },
                    &bn,
                ),
            );
        }
        let w = input(&[3, 35], 7);
        let flat = [
            Var::from_tensor(
                &x.as_tensor()
                    .flatten_from(1)
                    .unwrap()
                    .narrow(1, 0, 35)
                    .unwrap()
                    .contiguous()
                    .unwrap(),
            )
            .unwrap(),
            w,
        ];
        assert_same(
            "linear",
            run(|t| linear(&t[0], &t[1]), &flat),
            run(|t| super::super::linear(&t[0], &t[1]), &flat),
        );
    }

    #[test]
    fn finiteness_is_told_apart() {
        let ok = Tensor::new(&[1f32, -2.0, 0.0], &Device::Cpu).unwrap();
        assert!(all_finite(&ok).unwrap());
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let t = Tensor::new(&[1f32, bad, 0.0], &Device::Cpu).unwrap();
            assert!(!all_finite(&t).unwrap(), "{bad} passed");
        }
    }
}
