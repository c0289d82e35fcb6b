//! conv2d: parity with candle's conv2d, a naive reference for per-axis geometry,
//! finite-difference gradients, non-contiguous inputs, dtype errors.

use candle_core::{DType, Device, Result, Tensor};
use runtime::kernels::gradcheck::{check_gradients, weighted_sum};
use runtime::kernels::{conv2d, Conv2dGeometry};

mod common;
use common::{tensor, to_f64};

/// Naive direct-loop convolution (f64) with per-axis geometry, written independently of the
/// kernel: zero padding by bounds checks.
fn naive_conv(x: &Tensor, w: &Tensor, g: &Conv2dGeometry) -> (Vec<f64>, [usize; 4]) {
    let (n, c, h, wd) = x.dims4().unwrap();
    let (o, cg, kh, kw) = w.dims4().unwrap();
    let (xv, wv) = (to_f64(x), to_f64(w));
    let oh = (h + g.pad_begin[0] + g.pad_end[0] - g.dilation[0] * (kh - 1) - 1) / g.stride[0] + 1;
    let ow = (wd + g.pad_begin[1] + g.pad_end[1] - g.dilation[1] * (kw - 1) - 1) / g.stride[1] + 1;
    let og = o / g.groups;
    let mut y = vec![0.0; n * o * oh * ow];
    for b in 0..n {
        for oc in 0..o {
            let grp = oc / og;
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = 0.0;
                    for icg in 0..cg {
                        let ic = grp * cg + icg;
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (oy * g.stride[0] + ky * g.dilation[0]) as isize
                                    - g.pad_begin[0] as isize;
                                let ix = (ox * g.stride[1] + kx * g.dilation[1]) as isize
                                    - g.pad_begin[1] as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                    continue;
                                }
                                acc += xv[((b * c + ic) * h + iy as usize) * wd + ix as usize]
                                    * wv[((oc * cg + icg) * kh + ky) * kw + kx];
                            }
                        }
                    }
                    y[((b * o + oc) * oh + oy) * ow + ox] = acc;
                }
            }
        }
    }
    (y, [n, o, oh, ow])
}

fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!(
            (a - b).abs() <= tol * 1f64.max(b.abs()),
            "{what}: element {i}: got {a}, want {b}"
        );
    }
}

/// conv2d and the inference conv with `bias` and ReLU against the naive loop, within
/// `tol` (relative to max(1, |want|)).
fn check_plain_and_fused(
    x: &Tensor,
    w: &Tensor,
    bias: &Tensor,
    g: &Conv2dGeometry,
    tol: f64,
    what: &str,
) {
    let (want, dims) = naive_conv(x, w, g);
    let got = conv2d(x, w, g).unwrap();
    assert_eq!(got.dims(), dims, "{what}");
    assert_close(&to_f64(&got), &want, tol, what);
    let fused = runtime::kernels::conv::conv2d_bias_relu(x, w, bias, true, g).unwrap();
    let b = to_f64(bias);
    let plane = dims[2] * dims[3];
    let want: Vec<f64> = want
        .iter()
        .enumerate()
        .map(|(k, v)| (v + b[(k / plane) % dims[1]]).max(0.0))
        .collect();
    assert_close(&to_f64(&fused), &want, tol, &format!("fused {what}"));
}

fn geom(
    stride: [usize; 2],
    pad_begin: [usize; 2],
    pad_end: [usize; 2],
    dilation: [usize; 2],
    groups: usize,
) -> Conv2dGeometry {
    Conv2dGeometry {
        stride,
        pad_begin,
        pad_end,
        dilation,
        groups,
    }
}

/// (x dims, weight dims, padding, stride, dilation, groups) for square-geometry cases.
type SquareCase = ([usize; 4], [usize; 4], usize, usize, usize, usize);

const SQUARE_CASES: &[SquareCase] = &[
    ([2, 4, 9, 11], [6, 4, 3, 3], 1, 1, 1, 1),
    ([2, 4, 9, 11], [6, 4, 3, 3], 0, 2, 2, 1),
    ([3, 3, 16, 16], [8, 3, 5, 5], 2, 2, 1, 1),
    ([2, 4, 8, 7], [6, 2, 3, 3], 1, 1, 1, 2),
    ([2, 6, 10, 10], [6, 1, 3, 3], 1, 2, 1, 6),
    ([2, 6, 10, 10], [12, 1, 3, 3], 1, 1, 2, 6),
    ([2, 8, 7, 7], [16, 8, 1, 1], 0, 1, 1, 1),
    ([2, 8, 7, 7], [16, 8, 1, 1], 0, 2, 1, 1),
    ([1, 3, 33, 31], [4, 3, 7, 7], 3, 2, 1, 1),
    // Many samples with a tiny map: several samples per gemm chunk.
    ([40, 5, 3, 3], [7, 5, 3, 3], 1, 1, 1, 1),
    // Enough samples for whole chunks per thread: one sample per chunk, and grouped.
    ([8, 3, 16, 16], [5, 3, 3, 3], 1, 1, 1, 1),
    ([8, 4, 16, 16], [6, 2, 3, 3], 1, 1, 1, 2),
];

fn parity_with_candle(dtype: DType, tol: f64) {
    for (i, &(xd, wd, pad, stride, dil, groups)) in SQUARE_CASES.iter().enumerate() {
        let x = tensor(&xd, 1 + i as u64, dtype);
        let w = tensor(&wd, 100 + i as u64, dtype);
        let ours = conv2d(&x, &w, &Conv2dGeometry::uniform(stride, pad, dil, groups)).unwrap();
        let theirs = x.conv2d(&w, pad, stride, dil, groups).unwrap();
        assert_eq!(ours.dims(), theirs.dims(), "case {i}");
        assert_eq!(ours.dtype(), dtype);
        assert_close(
            &to_f64(&ours),
            &to_f64(&theirs),
            tol,
            &format!("case {i} {dtype:?}"),
        );
    }
}

#[test]
fn conv2d_matches_candle_f32() {
    parity_with_candle(DType::F32, 1e-5);
}

#[test]
fn conv2d_matches_candle_f64() {
    parity_with_candle(DType::F64, 1e-12);
}

/// Per-axis geometry candle cannot express, against the naive loop.
fn per_axis_cases() -> Vec<([usize; 4], [usize; 4], Conv2dGeometry)> {
    vec![
        // Inception's 1x7 and 7x1 with padding (0, 3) / (3, 0).
        (
            [2, 4, 9, 9],
            [5, 4, 1, 7],
            geom([1, 1], [0, 3], [0, 3], [1, 1], 1),
        ),
        (
            [2, 4, 9, 9],
            [5, 4, 7, 1],
            geom([1, 1], [3, 0], [3, 0], [1, 1], 1),
        ),
        // padding='same' with an even kernel: PyTorch pads (k-1)//2 before, the rest after.
        (
            [2, 3, 8, 9],
            [4, 3, 2, 2],
            geom([1, 1], [0, 0], [1, 1], [1, 1], 1),
        ),
        (
            [2, 3, 8, 9],
            [4, 3, 4, 4],
            geom([1, 1], [1, 1], [2, 2], [1, 1], 1),
        ),
        // (h, w) strides, dilations and asymmetric padding, with groups.
        (
            [2, 6, 11, 10],
            [6, 2, 3, 2],
            geom([2, 1], [1, 0], [0, 2], [1, 2], 3),
        ),
        (
            [1, 4, 12, 13],
            [8, 4, 3, 5],
            geom([1, 3], [2, 1], [0, 3], [2, 1], 1),
        ),
        (
            [3, 4, 7, 9],
            [4, 1, 3, 3],
            geom([3, 2], [0, 2], [2, 0], [1, 1], 4),
        ),
    ]
}

#[test]
fn conv2d_per_axis_geometry_matches_naive() {
    for dtype in [DType::F32, DType::F64] {
        let tol = if dtype == DType::F32 { 1e-5 } else { 1e-12 };
        for (i, (xd, wd, g)) in per_axis_cases().into_iter().enumerate() {
            let x = tensor(&xd, 10 + i as u64, dtype);
            let w = tensor(&wd, 20 + i as u64, dtype);
            let ours = conv2d(&x, &w, &g).unwrap();
            let (want, dims) = naive_conv(&x, &w, &g);
            assert_eq!(ours.dims(), dims, "case {i}");
            assert_close(&to_f64(&ours), &want, tol, &format!("case {i} {dtype:?}"));
        }
    }
}

#[test]
fn conv2d_output_size_formula() {
    // OH = (H + top + bottom - dil*(KH-1) - 1)/stride + 1:
    // (10 + 1 + 2 - 2*2 - 1)/2 + 1 = 5, OW = (7 + 0 + 0 - 1*0 - 1)/3 + 1 = 3.
    let g = geom([2, 3], [1, 0], [2, 0], [2, 1], 1);
    assert_eq!(g.output_size([10, 7], [3, 1]).unwrap(), [5, 3]);
    let x = Tensor::zeros((1, 1, 10, 7), DType::F32, &Device::Cpu).unwrap();
    let w = Tensor::zeros((2, 1, 3, 1), DType::F32, &Device::Cpu).unwrap();
    assert_eq!(conv2d(&x, &w, &g).unwrap().dims(), [1, 2, 5, 3]);
    // A kernel larger than the padded input is an error, not a panic.
    let w = Tensor::zeros((2, 1, 20, 1), DType::F32, &Device::Cpu).unwrap();
    assert!(conv2d(&x, &w, &g).is_err());
}

#[test]
fn conv2d_gradients_match_finite_differences() {
    let mut cases = per_axis_cases();
    cases.push((
        [2, 4, 6, 7],
        [6, 2, 3, 3],
        Conv2dGeometry::uniform(2, 1, 1, 2),
    ));
    cases.push((
        [2, 3, 7, 7],
        [3, 1, 3, 3],
        Conv2dGeometry::uniform(1, 2, 2, 3),
    ));
    cases.push((
        [5, 2, 3, 3],
        [3, 2, 3, 3],
        Conv2dGeometry::uniform(1, 1, 1, 1),
    ));
    for (i, (xd, wd, g)) in cases.into_iter().enumerate() {
        // Keep the finite-difference work small.
        let xd = [xd[0].min(2), xd[1], xd[2].min(8), xd[3].min(8)];
        let x = tensor(&xd, 30 + i as u64, DType::F64);
        let w = tensor(&wd, 40 + i as u64, DType::F64);
        check_gradients(
            &[x, w],
            |t| weighted_sum(&conv2d(&t[0], &t[1], &g)?, 7 + i as u64),
            1e-7,
        )
        .unwrap_or_else(|e| panic!("case {i} {g:?}: {e}"));
    }
}

/// The batch is split into chunks, run whole on each thread when the maps are small
/// and the batch large (the finite-difference check above keeps to 2 samples): the
/// gradients of a batch must be the per-sample gradients (input) and their sum (weight).
#[test]
fn conv2d_batch_gradients_are_per_sample_gradients() {
    let cases = [
        (
            [8, 3, 16, 16],
            [5, 3, 3, 3],
            Conv2dGeometry::uniform(1, 1, 1, 1),
        ),
        (
            [8, 4, 16, 16],
            [6, 2, 3, 3],
            Conv2dGeometry::uniform(1, 1, 1, 2),
        ),
        (
            [40, 5, 3, 3],
            [7, 5, 3, 3],
            Conv2dGeometry::uniform(1, 1, 1, 1),
        ),
        (
            [9, 4, 12, 12],
            [6, 4, 3, 3],
            Conv2dGeometry::uniform(2, 1, 1, 1),
        ),
    ];
    for (i, (xd, wd, g)) in cases.into_iter().enumerate() {
        let x = candle_core::Var::from_tensor(&tensor(&xd, 50 + i as u64, DType::F64)).unwrap();
        let w = candle_core::Var::from_tensor(&tensor(&wd, 60 + i as u64, DType::F64)).unwrap();
        let loss = weighted_sum(&conv2d(&x, &w, &g).unwrap(), 9 + i as u64).unwrap();
        let grads = loss.backward().unwrap();
        let (dx, dw) = (grads.get(&x).unwrap(), grads.get(&w).unwrap());
        let y_dims = conv2d(&x, &w, &g).unwrap().dims().to_vec();
        // The same weighted sum, one sample at a time.
        let weights = {
            let y = Tensor::zeros(y_dims.as_slice(), DType::F64, &Device::Cpu).unwrap();
            let v = candle_core::Var::from_tensor(&y).unwrap();
            let s = weighted_sum(&v, 9 + i as u64).unwrap();
            s.backward().unwrap().get(&v).unwrap().clone()
        };
        let mut dw_sum = vec![0.0; w.elem_count()];
        for s in 0..xd[0] {
            let xs = candle_core::Var::from_tensor(&x.narrow(0, s, 1).unwrap()).unwrap();
            let ws = candle_core::Var::from_tensor(w.as_tensor()).unwrap();
            let y = conv2d(&xs, &ws, &g).unwrap();
            let loss = (y * weights.narrow(0, s, 1).unwrap())
                .unwrap()
                .sum_all()
                .unwrap();
            let grads = loss.backward().unwrap();
            assert_close(
                &to_f64(grads.get(&xs).unwrap()),
                &to_f64(&dx.narrow(0, s, 1).unwrap()),
                1e-12,
                &format!("case {i} dx sample {s}"),
            );
            for (a, b) in dw_sum.iter_mut().zip(to_f64(grads.get(&ws).unwrap())) {
                *a += b;
            }
        }
        assert_close(&to_f64(dw), &dw_sum, 1e-12, &format!("case {i} dw"));
    }
}

#[test]
fn conv2d_gradient_through_non_contiguous_inputs() {
    let x = tensor(&[2, 3, 5, 6], 3, DType::F64);
    let w = tensor(&[4, 3, 3, 2], 4, DType::F64);
    let g = geom([1, 2], [1, 0], [0, 1], [1, 1], 1);
    check_gradients(
        &[x, w],
        |t| {
            let x = t[0].transpose(2, 3)?;
            let w = t[1].transpose(2, 3)?;
            weighted_sum(&conv2d(&x, &w, &g)?, 5)
        },
        1e-7,
    )
    .unwrap();
}

#[test]
fn conv2d_non_contiguous_equals_contiguous_copy() {
    for dtype in [DType::F32, DType::F64] {
        let x = tensor(&[2, 3, 7, 9], 5, dtype).transpose(2, 3).unwrap();
        let w = tensor(&[4, 3, 3, 3], 6, dtype).narrow(0, 1, 3).unwrap();
        assert!(!x.is_contiguous());
        let g = geom([2, 1], [1, 0], [0, 1], [1, 1], 1);
        let a = conv2d(&x, &w, &g).unwrap();
        let b = conv2d(&x.contiguous().unwrap(), &w.contiguous().unwrap(), &g).unwrap();
        assert_eq!(to_f64(&a), to_f64(&b));
    }
}

#[test]
fn conv2d_rejects_bad_inputs() {
    let x = tensor(&[1, 4, 5, 5], 1, DType::F32);
    let w = tensor(&[2, 4, 3, 3], 2, DType::F32);
    let g = Conv2dGeometry::uniform(1, 1, 1, 1);
    // Mixed dtypes.
    let err = conv2d(&x, &w.to_dtype(DType::F64).unwrap(), &g).unwrap_err();
    assert!(err.to_string().contains("F64"), "{err}");
    // Unsupported dtype.
    let err = conv2d(
        &x.to_dtype(DType::F16).unwrap(),
        &w.to_dtype(DType::F16).unwrap(),
        &g,
    )
    .unwrap_err();
    assert!(err.to_string().contains("F16"), "{err}");
    // Groups that do not divide the channels, weight channels that do not match.
    assert!(conv2d(&x, &w, &Conv2dGeometry::uniform(1, 1, 1, 3)).is_err());
    assert!(conv2d(&x, &tensor(&[2, 3, 3, 3], 2, DType::F32), &g).is_err());
    // Zero stride.
    assert!(conv2d(&x, &w, &Conv2dGeometry::uniform(0, 1, 1, 1)).is_err());
}

/// The weight gradient is computed even when x is plain data, and the input gradient too
/// when x comes out of another op.
#[test]
fn conv2d_backward_through_a_chain() -> Result<()> {
    let x = tensor(&[2, 3, 6, 6], 8, DType::F64);
    let w1 = candle_core::Var::from_tensor(&tensor(&[4, 3, 3, 3], 9, DType::F64))?;
    let w2 = candle_core::Var::from_tensor(&tensor(&[2, 4, 3, 3], 10, DType::F64))?;
    let g = Conv2dGeometry::uniform(1, 1, 1, 1);
    let h = conv2d(&x, w1.as_tensor(), &g)?.relu()?;
    let y = conv2d(&h, w2.as_tensor(), &g)?.sum_all()?;
    let grads = y.backward()?;
    // The same through candle's own conv2d.
    let h2 = x.conv2d(w1.as_tensor(), 1, 1, 1, 1)?.relu()?;
    let y2 = h2.conv2d(w2.as_tensor(), 1, 1, 1, 1)?.sum_all()?;
    let grads2 = y2.backward()?;
    for w in [&w1, &w2] {
        let a = to_f64(grads.get(w.as_tensor()).unwrap());
        let b = to_f64(grads2.get(w.as_tensor()).unwrap());
        assert_close(&a, &b, 1e-12, "chain weight grad");
    }
    Ok(())
}

/// Large maps (one image's column matrix of several MB, each gemm split across the
/// threads): forward and the inference conv with bias and ReLU, same-width (shifted
/// im2col) and strided, one and several samples, against the naive loop.
#[test]
fn conv2d_on_large_maps_matches_naive() {
    let cases = [
        (
            [1, 8, 128, 128],
            [4, 8, 3, 3],
            Conv2dGeometry::uniform(1, 1, 1, 1),
        ),
        (
            [3, 8, 128, 128],
            [4, 8, 3, 3],
            Conv2dGeometry::uniform(1, 1, 1, 1),
        ),
        // Strided, dilated and grouped.
        (
            [1, 32, 128, 128],
            [6, 16, 3, 3],
            geom([2, 2], [2, 1], [1, 2], [2, 1], 2),
        ),
    ];
    for (i, (xd, wd, g)) in cases.into_iter().enumerate() {
        let x = tensor(&xd, 60 + i as u64, DType::F32);
        let w = tensor(&wd, 70 + i as u64, DType::F32);
        let bias = tensor(&[wd[0]], 80 + i as u64, DType::F32);
        check_plain_and_fused(&x, &w, &bias, &g, 1e-4, &format!("large case {i}"));
    }
}

/// 3x3 stride-1 convolutions with at least 32 channels in and out run Winograd's
/// F(4x4, 3x3): maps that are and are not multiples of the 4x4 tile, channel counts
/// that are and are not multiples of the 16-lane step, zero, one, two and asymmetric
/// padding, a batch large enough to run whole chunks per thread; the plain convolution
/// and the inference conv with bias and ReLU, f32 and f64, against the naive loop.
#[test]
fn conv2d_winograd_shapes_match_naive() {
    let cases = [
        (
            [2, 32, 8, 8],
            [32, 32, 3, 3],
            Conv2dGeometry::uniform(1, 1, 1, 1),
        ),
        (
            [3, 33, 7, 9],
            [35, 33, 3, 3],
            Conv2dGeometry::uniform(1, 1, 1, 1),
        ),
        (
            [1, 48, 5, 6],
            [32, 48, 3, 3],
            Conv2dGeometry::uniform(1, 0, 1, 1),
        ),
        (
            [2, 32, 3, 3],
            [32, 32, 3, 3],
            Conv2dGeometry::uniform(1, 2, 1, 1),
        ),
        (
            [2, 32, 6, 5],
            [40, 32, 3, 3],
            geom([1, 1], [2, 0], [0, 2], [1, 1], 1),
        ),
        (
            [1, 48, 1, 1],
            [33, 48, 3, 3],
            Conv2dGeometry::uniform(1, 1, 1, 1),
        ),
        // 2,240 tiles: whole chunks on each of two threads.
        (
            [140, 32, 16, 16],
            [32, 32, 3, 3],
            Conv2dGeometry::uniform(1, 1, 1, 1),
        ),
    ];
    check_cases_against_naive(&cases, 90, "winograd");
}

/// [`check_plain_and_fused`] on each case in f32 (2e-5 relative, scaled by the square
/// root of the sum's length: the error of a sum of unit-scale products grows with it)
/// and in f64 (batches up to 8), inputs seeded from `seed`.
fn check_cases_against_naive(
    cases: &[([usize; 4], [usize; 4], Conv2dGeometry)],
    seed: u64,
    what: &str,
) {
    for (i, (xd, wd, g)) in cases.iter().enumerate() {
        for (dtype, tol) in [(DType::F32, 2e-5), (DType::F64, 1e-12)] {
            if dtype == DType::F64 && xd[0] > 8 {
                continue;
            }
            let i = i as u64;
            let x = tensor(xd, seed + i, dtype);
            let w = tensor(wd, seed + 20 + i, dtype);
            let bias = tensor(&[wd[0]], seed + 40 + i, dtype);
            let scale = ((wd[1] * wd[2] * wd[3]) as f64).sqrt();
            check_plain_and_fused(
                &x,
                &w,
                &bias,
                g,
                tol * scale,
                &format!("{what} case {i} {dtype:?}"),
            );
        }
    }
}

/// Strided convolutions whose kernel spans 2-3 strides (AlexNet's 11x11 stride-4 stem)
/// run their forward as a stride-1 3x3 convolution over the input's phases: AlexNet's
/// stem on a small map (padding 2, odd sizes), a 5x5 stride-2 one whose kernel ends
/// inside its last block, asymmetric padding, and one too narrow for Winograd and a
/// stride-1 one (both stay on im2col); plain and fused, f32 and f64, against the naive
/// loop.
#[test]
fn conv2d_space_to_depth_shapes_match_naive() {
    let cases = [
        (
            [2, 3, 35, 39],
            [32, 3, 11, 11],
            Conv2dGeometry::uniform(4, 2, 1, 1),
        ),
        (
            [1, 8, 13, 12],
            [33, 8, 5, 5],
            Conv2dGeometry::uniform(2, 1, 1, 1),
        ),
        (
            [1, 3, 30, 31],
            [40, 3, 11, 11],
            geom([4, 4], [3, 0], [1, 2], [1, 1], 1),
        ),
        (
            [1, 3, 30, 30],
            [16, 3, 11, 11],
            Conv2dGeometry::uniform(4, 2, 1, 1),
        ),
        // Stride 1 stays on im2col.
        (
            [1, 8, 11, 13],
            [36, 8, 5, 5],
            Conv2dGeometry::uniform(1, 2, 1, 1),
        ),
    ];
    check_cases_against_naive(&cases, 150, "space-to-depth");
}

/// The input gradient of a 3x3 stride-1 convolution runs as a convolution of dY with
/// the flipped kernel, which is Winograd's when both channel counts are 32 or more:
/// finite differences (f64) check it on such shapes.
#[test]
fn conv2d_winograd_input_gradient_matches_finite_differences() {
    for (i, (xd, wd, g)) in [
        (
            [1, 32, 5, 6],
            [32, 32, 3, 3],
            Conv2dGeometry::uniform(1, 1, 1, 1),
        ),
        (
            [1, 33, 6, 4],
            [34, 33, 3, 3],
            Conv2dGeometry::uniform(1, 0, 1, 1),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let x = tensor(&xd, 150 + i as u64, DType::F64);
        let w = tensor(&wd, 160 + i as u64, DType::F64);
        check_gradients(
            &[x],
            |t| weighted_sum(&conv2d(&t[0], &w, &g)?, 170 + i as u64),
            // The sum over 32 channels' outputs is larger than the other cases', and so is
            // the rounding in its central differences (2e-7 here); a broken transform is
            // off by O(1).
            1e-6,
        )
        .unwrap_or_else(|e| panic!("case {i} {g:?}: {e}"));
    }
}

/// 3x3 stride-1 convolutions with fewer than 32 channels on rows that fill its strips
/// of 32 outputs run the direct kernel (f32 on AVX-512; elsewhere these check im2col):
/// widths that fill one strip, most of one, and several; output channels that are and are not a multiple of its block of 8; zero,
/// one, two and asymmetric padding; the plain and the fused conv, f32 and f64.
#[test]
fn conv2d_direct_shapes_match_naive() {
    let cases = [
        (
            [3, 16, 32, 32],
            [16, 16, 3, 3],
            Conv2dGeometry::uniform(1, 1, 1, 1),
        ),
        (
            [2, 3, 17, 28],
            [64, 3, 3, 3],
            Conv2dGeometry::uniform(1, 1, 1, 1),
        ),
        (
            [1, 5, 9, 58],
            [11, 5, 3, 3],
            Conv2dGeometry::uniform(1, 0, 1, 1),
        ),
        (
            [2, 7, 6, 26],
            [9, 7, 3, 3],
            Conv2dGeometry::uniform(1, 2, 1, 1),
        ),
        (
            [1, 16, 5, 88],
            [24, 16, 3, 3],
            geom([1, 1], [0, 2], [2, 1], [1, 1], 1),
        ),
        (
            [1, 40, 4, 60],
            [3, 40, 3, 3],
            Conv2dGeometry::uniform(1, 1, 1, 1),
        ),
    ];
    for (i, (xd, wd, g)) in cases.into_iter().enumerate() {
        for (dtype, tol) in [(DType::F32, 1e-5), (DType::F64, 1e-12)] {
            let x = tensor(&xd, 190 + i as u64, dtype);
            let w = tensor(&wd, 210 + i as u64, dtype);
            let bias = tensor(&[wd[0]], 230 + i as u64, dtype);
            check_plain_and_fused(
                &x,
                &w,
                &bias,
                &g,
                tol,
                &format!("direct case {i} {dtype:?}"),
            );
        }
    }
}

/// The gradients of a narrow 3x3 stride-1 convolution on wide rows run the direct
/// kernels (the input gradient through the flipped-kernel conv, and the weight
/// gradient's own), which are f32-only: the f32 gradients against the f64 ones
/// (im2col), which the finite-difference tests check. An odd number of output channels
/// (the weight gradient pairs them), padding 0 and 1, one strip and several, several
/// samples per thread.
#[test]
fn conv2d_direct_gradients_match_f64() {
    let cases = [
        (
            [2, 12, 5, 30],
            [9, 12, 3, 3],
            Conv2dGeometry::uniform(1, 1, 1, 1),
        ),
        (
            [5, 3, 4, 58],
            [16, 3, 3, 3],
            Conv2dGeometry::uniform(1, 0, 1, 1),
        ),
    ];
    for (i, (xd, wd, g)) in cases.into_iter().enumerate() {
        let grads = |dtype: DType| -> Vec<Vec<f64>> {
            let x = candle_core::Var::from_tensor(&tensor(&xd, 250 + i as u64, dtype)).unwrap();
            let w = candle_core::Var::from_tensor(&tensor(&wd, 260 + i as u64, dtype)).unwrap();
            let y = conv2d(x.as_tensor(), w.as_tensor(), &g).unwrap();
            let gs = weighted_sum(&y, 270 + i as u64)
                .unwrap()
                .backward()
                .unwrap();
            [x.as_tensor(), w.as_tensor()]
                .map(|t| to_f64(gs.get(t).unwrap()))
                .to_vec()
        };
        let (single, double) = (grads(DType::F32), grads(DType::F64));
        assert_close(
            &single[0],
            &double[0],
            1e-5,
            &format!("case {i} input gradient"),
        );
        assert_close(
            &single[1],
            &double[1],
            1e-4,
            &format!("case {i} weight gradient"),
        );
    }
}

/// An empty batch through every 3x3 path (Winograd, direct, im2col): an empty output of
/// the right shape and empty gradients, no panic.
#[test]
fn conv2d_empty_batch_on_every_path() {
    let g = Conv2dGeometry::uniform(1, 1, 1, 1);
    for (xd, wd) in [
        ([0, 32, 8, 8], [32, 32, 3, 3]),
        ([0, 16, 4, 32], [16, 16, 3, 3]),
        ([0, 3, 5, 5], [4, 3, 3, 3]),
    ] {
        let x = candle_core::Var::from_tensor(&tensor(&xd, 1, DType::F32)).unwrap();
        let w = candle_core::Var::from_tensor(&tensor(&wd, 2, DType::F32)).unwrap();
        let y = conv2d(x.as_tensor(), w.as_tensor(), &g).unwrap();
        assert_eq!(y.dims(), [0, wd[0], xd[2], xd[3]]);
        let bias = tensor(&[wd[0]], 3, DType::F32);
        let fused =
            runtime::kernels::conv::conv2d_bias_relu(x.as_tensor(), w.as_tensor(), &bias, true, &g)
                .unwrap();
        assert_eq!(fused.dims(), y.dims());
        let grads = y.sum_all().unwrap().backward().unwrap();
        let dw = to_f64(grads.get(w.as_tensor()).unwrap());
        assert!(
            dw.iter().all(|&v| v == 0.0),
            "{xd:?}: weight gradient of nothing"
        );
    }
}
