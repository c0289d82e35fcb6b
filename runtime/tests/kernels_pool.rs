//! pool2d and adaptive_avg_pool2d: PyTorch output sizes, a naive reference, gradients,
//! tie-breaking in the max backward, non-contiguous inputs.

use candle_core::{DType, Device, Tensor, Var};
use runtime::kernels::gradcheck::{check_gradients, weighted_sum};
use runtime::kernels::{adaptive_avg_pool2d, pool2d, Pool2dGeometry, PoolMode};

mod common;
use common::to_f64;

/// Distinct values in (-1, 1) (a scrambled permutation of 0..n, scaled) so max pooling has
/// no ties; gaps of 2/n stay far above the finite-difference step.
fn distinct(dims: &[usize], seed: u64, dtype: DType) -> Tensor {
    let n: usize = dims.iter().product();
    let mut idx: Vec<usize> = (0..n).collect();
    let mut s = seed | 1;
    for i in (1..n).rev() {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        idx.swap(i, (s >> 33) as usize % (i + 1));
    }
    let v: Vec<f64> = idx
        .iter()
        .map(|&k| (k as f64 + 0.5) / n as f64 * 2.0 - 1.0)
        .collect();
    Tensor::from_vec(v, dims, &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

fn pg(k: usize, s: usize, p: usize, ceil_mode: bool) -> Pool2dGeometry {
    Pool2dGeometry {
        kernel: [k; 2],
        stride: [s; 2],
        padding: [p; 2],
        ceil_mode,
    }
}

const AVG_PAD: PoolMode = PoolMode::Avg {
    count_include_pad: true,
};
const AVG_NOPAD: PoolMode = PoolMode::Avg {
    count_include_pad: false,
};

/// Naive reference written from PyTorch's documentation: the output size by
/// `pooling_output_shape` (integer form: (L + 2p - k + (ceil ? s-1 : 0)) / s + 1, then the
/// ceil-mode correction), windows over a conceptually padded input.
fn reference(x: &Tensor, mode: PoolMode, g: &Pool2dGeometry) -> (Vec<f64>, [usize; 4]) {
    let (n, c, h, w) = x.dims4().unwrap();
    let xv = to_f64(x);
    let out_len = |len: usize, a: usize| {
        let (k, s, p) = (g.kernel[a], g.stride[a], g.padding[a]);
        let extra = if g.ceil_mode { s - 1 } else { 0 };
        let mut o = (len + 2 * p - k + extra) / s + 1;
        if g.ceil_mode && (o - 1) * s >= len + p {
            o -= 1;
        }
        o
    };
    let (oh, ow) = (out_len(h, 0), out_len(w, 1));
    let mut y = Vec::new();
    for pl in 0..n * c {
        for oy in 0..oh {
            for ox in 0..ow {
                let ys = (oy * g.stride[0]) as isize - g.padding[0] as isize;
                let xs = (ox * g.stride[1]) as isize - g.padding[1] as isize;
                let mut best = f64::NEG_INFINITY;
                let (mut sum, mut real, mut padded) = (0.0, 0usize, 0usize);
                for dy in 0..g.kernel[0] as isize {
                    for dx in 0..g.kernel[1] as isize {
                        let (iy, ix) = (ys + dy, xs + dx);
                        // Inside the padded input (for count_include_pad)?
                        if iy < h as isize + g.padding[0] as isize
                            && ix < w as isize + g.padding[1] as isize
                        {
                            padded += 1;
                        }
                        if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                            continue;
                        }
                        let v = xv[(pl * h + iy as usize) * w + ix as usize];
                        best = best.max(v);
                        sum += v;
                        real += 1;
                    }
                }
                y.push(match mode {
                    PoolMode::Max => best,
                    PoolMode::Avg { count_include_pad } => {
                        sum / if count_include_pad { padded } else { real } as f64
                    }
                });
            }
        }
    }
    (y, [n, c, oh, ow])
}

fn cases() -> Vec<(&'static str, [usize; 4], PoolMode, Pool2dGeometry)> {
    vec![
        (
            "alexnet max 3x3/2",
            [2, 3, 13, 13],
            PoolMode::Max,
            pg(3, 2, 0, false),
        ),
        (
            "googlenet max 3x3/2 ceil",
            [1, 2, 14, 14],
            PoolMode::Max,
            pg(3, 2, 0, true),
        ),
        (
            "max 3x3/2 ceil odd",
            [1, 2, 15, 11],
            PoolMode::Max,
            pg(3, 2, 0, true),
        ),
        (
            "max 3x3/1 p1 ceil",
            [2, 2, 7, 6],
            PoolMode::Max,
            pg(3, 1, 1, true),
        ),
        ("max 2x2/2", [2, 3, 8, 8], PoolMode::Max, pg(2, 2, 0, false)),
        (
            "max 2x2/2 odd",
            [1, 2, 7, 9],
            PoolMode::Max,
            pg(2, 2, 0, false),
        ),
        (
            "max 3x3/2 p1",
            [1, 2, 9, 8],
            PoolMode::Max,
            pg(3, 2, 1, false),
        ),
        // Last window would start in the right padding: 5 -> 3, not 4.
        (
            "max 2x2/2 p1 ceil edge",
            [1, 2, 5, 5],
            PoolMode::Max,
            pg(2, 2, 1, true),
        ),
        (
            "avg 3x3/2 p1 incl",
            [2, 2, 9, 10],
            AVG_PAD,
            pg(3, 2, 1, false),
        ),
        (
            "avg 3x3/2 p1 excl",
            [2, 2, 9, 10],
            AVG_NOPAD,
            pg(3, 2, 1, false),
        ),
        (
            "avg 3x3/2 p1 ceil incl",
            [1, 2, 8, 8],
            AVG_PAD,
            pg(3, 2, 1, true),
        ),
        (
            "avg 3x3/2 p1 ceil excl",
            [1, 2, 8, 8],
            AVG_NOPAD,
            pg(3, 2, 1, true),
        ),
        (
            "avg 2x2/2 p1 ceil edge incl",
            [1, 2, 5, 5],
            AVG_PAD,
            pg(2, 2, 1, true),
        ),
        ("avg 2x2/2", [2, 3, 8, 8], AVG_PAD, pg(2, 2, 0, false)),
        ("avg 2x2/2 odd", [1, 2, 7, 5], AVG_NOPAD, pg(2, 2, 0, false)),
        (
            "max rect 3x2 / (2,1) p(1,0)",
            [1, 2, 7, 6],
            PoolMode::Max,
            Pool2dGeometry {
                kernel: [3, 2],
                stride: [2, 1],
                padding: [1, 0],
                ceil_mode: true,
            },
        ),
        (
            "avg rect 2x3 / (1,2) p(0,1)",
            [1, 2, 6, 7],
            AVG_PAD,
            Pool2dGeometry {
                kernel: [2, 3],
                stride: [1, 2],
                padding: [0, 1],
                ceil_mode: false,
            },
        ),
    ]
}

#[test]
fn pool2d_matches_naive_reference() {
    for dtype in [DType::F32, DType::F64] {
        for (i, (name, dims, mode, g)) in cases().into_iter().enumerate() {
            let x = distinct(&dims, 1 + i as u64, dtype);
            let y = pool2d(&x, mode, &g).unwrap();
            let (want, wdims) = reference(&x, mode, &g);
            assert_eq!(y.dims(), wdims, "{name}");
            assert_eq!(y.dtype(), dtype);
            for (j, (a, b)) in to_f64(&y).iter().zip(&want).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-5 * 1f64.max(b.abs()),
                    "{name} {dtype:?}: element {j}: got {a}, want {b}"
                );
            }
        }
    }
}

#[test]
fn pool2d_output_sizes_match_pytorch() {
    let size = |g: Pool2dGeometry, h: usize| g.output_size([h, h]).unwrap()[0];
    // MaxPool2d(3, 2, ceil_mode=True): ceil((L - 3)/2) + 1, start check (out-1)*2 >= L.
    // 112: ceil(109/2) + 1 = 55 + 1 = 56; 55*2 = 110 < 112, kept.
    assert_eq!(size(pg(3, 2, 0, true), 112), 56);
    // 55: ceil(52/2) + 1 = 27; 26*2 = 52 < 55.
    assert_eq!(size(pg(3, 2, 0, true), 55), 27);
    // 56: ceil(53/2) + 1 = 28; 27*2 = 54 < 56.
    assert_eq!(size(pg(3, 2, 0, true), 56), 28);
    // Floor mode on 56: floor(53/2) + 1 = 27.
    assert_eq!(size(pg(3, 2, 0, false), 56), 27);
    // AlexNet 55 -> 27, 27 -> 13, 13 -> 6 (floor).
    assert_eq!(size(pg(3, 2, 0, false), 55), 27);
    assert_eq!(size(pg(3, 2, 0, false), 27), 13);
    assert_eq!(size(pg(3, 2, 0, false), 13), 6);
    // GoogLeNet ceil-mode chain: 28 -> ceil(25/2)+1 = 14, 14 -> ceil(11/2)+1 = 7.
    assert_eq!(size(pg(3, 2, 0, true), 28), 14);
    assert_eq!(size(pg(3, 2, 0, true), 14), 7);
    // MaxPool2d(3, 1, padding=1, ceil_mode=True) keeps the size: ceil((L+2-3)/1)+1 = L.
    assert_eq!(size(pg(3, 1, 1, true), 28), 28);
    // ResNet stem MaxPool2d(3, 2, 1): floor((112 + 2 - 3)/2) + 1 = 56.
    assert_eq!(size(pg(3, 2, 1, false), 112), 56);
    // MaxPool2d(2, 2, padding=1, ceil_mode=True) on 5: ceil((5+2-2)/2)+1 = 4, but window 3
    // would start at 3*2 - 1 = 5 >= 5 (in the right padding), so 3.
    assert_eq!(size(pg(2, 2, 1, true), 5), 3);
    // Invalid: padding over half the kernel, window larger than the padded input.
    assert!(pg(2, 2, 2, false).output_size([8, 8]).is_err());
    assert!(pg(5, 1, 0, false).output_size([4, 4]).is_err());
}

#[test]
fn pool2d_gradients_match_finite_differences() {
    for (i, (name, dims, mode, g)) in cases().into_iter().enumerate() {
        let x = distinct(&dims, 50 + i as u64, DType::F64);
        check_gradients(
            &[x],
            |t| weighted_sum(&pool2d(&t[0], mode, &g)?, i as u64),
            1e-7,
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// Ties: the gradient goes to the first maximum in row-major window order (PyTorch), and
/// overlapping windows add up.
#[test]
fn max_pool_backward_ties_and_overlaps() {
    // One 2x2 window of equal values: all of the gradient to the top-left element.
    let x =
        Var::from_tensor(&Tensor::ones((1, 1, 2, 2), DType::F64, &Device::Cpu).unwrap()).unwrap();
    let y = pool2d(x.as_tensor(), PoolMode::Max, &pg(2, 2, 0, false)).unwrap();
    let grads = y.sum_all().unwrap().backward().unwrap();
    assert_eq!(
        to_f64(grads.get(x.as_tensor()).unwrap()),
        [1.0, 0.0, 0.0, 0.0]
    );

    // 3x3 stride 2 on a 3x5 plateau: windows at columns 0..3 and 2..5; each window's first
    // maximum is its own top-left corner, (0,0) and (0,2).
    let x =
        Var::from_tensor(&Tensor::ones((1, 1, 3, 5), DType::F64, &Device::Cpu).unwrap()).unwrap();
    let y = pool2d(x.as_tensor(), PoolMode::Max, &pg(3, 2, 0, false)).unwrap();
    assert_eq!(y.dims(), [1, 1, 1, 2]);
    let grads = y.sum_all().unwrap().backward().unwrap();
    let mut want = vec![0.0; 15];
    want[0] = 1.0;
    want[2] = 1.0;
    assert_eq!(to_f64(grads.get(x.as_tensor()).unwrap()), want);

    // A unique maximum in the shared column (1, 2) wins both windows: gradient 2 + 3.
    let mut v = vec![0.0; 15];
    v[7] = 10.0;
    let x = Var::from_tensor(&Tensor::from_vec(v, (1, 1, 3, 5), &Device::Cpu).unwrap()).unwrap();
    let y = pool2d(x.as_tensor(), PoolMode::Max, &pg(3, 2, 0, false)).unwrap();
    let dy = Tensor::from_vec(vec![2.0, 3.0], (1, 1, 1, 2), &Device::Cpu).unwrap();
    let grads = (y * dy).unwrap().sum_all().unwrap().backward().unwrap();
    let mut want = vec![0.0; 15];
    want[7] = 5.0;
    assert_eq!(to_f64(grads.get(x.as_tensor()).unwrap()), want);

    // Padding never wins, even against all-negative inputs.
    let x = Tensor::from_vec(vec![-5.0f32, -6.0, -7.0, -8.0], (1, 1, 2, 2), &Device::Cpu).unwrap();
    let y = pool2d(&x, PoolMode::Max, &pg(3, 1, 1, false)).unwrap();
    assert_eq!(to_f64(&y), [-5.0, -5.0, -5.0, -5.0]);
}

#[test]
fn avg_pool_divisors() {
    // 3x3 ones, AvgPool2d(3, 1, padding=1): corner windows hold 4 real pixels of 9.
    let x = Tensor::ones((1, 1, 3, 3), DType::F64, &Device::Cpu).unwrap();
    let incl = pool2d(&x, AVG_PAD, &pg(3, 1, 1, false)).unwrap();
    assert_eq!(
        to_f64(&incl),
        [
            4. / 9.,
            6. / 9.,
            4. / 9.,
            6. / 9.,
            1.,
            6. / 9.,
            4. / 9.,
            6. / 9.,
            4. / 9.
        ]
    );
    let excl = pool2d(&x, AVG_NOPAD, &pg(3, 1, 1, false)).unwrap();
    assert_eq!(to_f64(&excl), [1.0; 9]);
    // Ceil mode: a window hanging past the right padding divides by the clipped window
    // only. AvgPool2d(2, 2, padding=1, ceil_mode=True) on 1x4: out ceil((4+2-2)/2)+1 = 3,
    // (3-1)*2 = 4 < 5 kept; windows [-1,1), [1,3), [3,5): divisors 2, 2, 2 (the last is
    // clipped to the padded input end 5).
    let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], (1, 1, 1, 4), &Device::Cpu).unwrap();
    let g = Pool2dGeometry {
        kernel: [1, 2],
        stride: [1, 2],
        padding: [0, 1],
        ceil_mode: true,
    };
    let y = pool2d(&x, AVG_PAD, &g).unwrap();
    assert_eq!(to_f64(&y), [0.5, 2.5, 2.0]);
}

#[test]
fn pool2d_non_contiguous_equals_contiguous_copy() {
    for (name, dims, mode, g) in cases() {
        let x = distinct(&dims, 9, DType::F32).transpose(2, 3).unwrap();
        let a = pool2d(&x, mode, &g).unwrap();
        let b = pool2d(&x.contiguous().unwrap(), mode, &g).unwrap();
        assert_eq!(to_f64(&a), to_f64(&b), "{name}");
    }
    let x = distinct(&[2, 3, 7, 6], 9, DType::F64)
        .transpose(2, 3)
        .unwrap();
    let a = adaptive_avg_pool2d(&x, [4, 3]).unwrap();
    let b = adaptive_avg_pool2d(&x.contiguous().unwrap(), [4, 3]).unwrap();
    assert_eq!(to_f64(&a), to_f64(&b));
}

/// Reference adaptive average pooling.
fn adaptive_reference(x: &Tensor, out: [usize; 2]) -> Vec<f64> {
    let (n, c, h, w) = x.dims4().unwrap();
    let xv = to_f64(x);
    let mut y = Vec::new();
    for pl in 0..n * c {
        for i in 0..out[0] {
            let (y0, y1) = (i * h / out[0], ((i + 1) * h).div_ceil(out[0]));
            for j in 0..out[1] {
                let (x0, x1) = (j * w / out[1], ((j + 1) * w).div_ceil(out[1]));
                let mut s = 0.0;
                for yy in y0..y1 {
                    for xx in x0..x1 {
                        s += xv[(pl * h + yy) * w + xx];
                    }
                }
                y.push(s / ((y1 - y0) * (x1 - x0)) as f64);
            }
        }
    }
    y
}

#[test]
fn adaptive_avg_pool_values() {
    // 3x3 (0..9) -> 2x2: bins [0,2) and [1,3) overlap in the middle row / column.
    let x = Tensor::arange(0f64, 9., &Device::Cpu)
        .unwrap()
        .reshape((1, 1, 3, 3))
        .unwrap();
    let y = adaptive_avg_pool2d(&x, [2, 2]).unwrap();
    // mean(0,1,3,4) = 2, mean(1,2,4,5) = 3, mean(3,4,6,7) = 5, mean(4,5,7,8) = 6.
    assert_eq!(to_f64(&y), [2.0, 3.0, 5.0, 6.0]);

    // 7x7 -> 7x7 is the identity.
    let x = distinct(&[2, 3, 7, 7], 3, DType::F32);
    assert_eq!(
        to_f64(&adaptive_avg_pool2d(&x, [7, 7]).unwrap()),
        to_f64(&x)
    );

    // 5x5 -> 1x1 is the global mean.
    let x = distinct(&[2, 3, 5, 5], 4, DType::F64);
    let y = adaptive_avg_pool2d(&x, [1, 1]).unwrap();
    let mean = x.mean_keepdim(3).unwrap().mean_keepdim(2).unwrap();
    for (a, b) in to_f64(&y).iter().zip(to_f64(&mean)) {
        assert!((a - b).abs() < 1e-12);
    }

    // 6x6 -> 4x4: bins [0,2), [1,3), [3,5), [4,6); and a non-square case.
    for (dims, out) in [
        ([1, 2, 6, 6], [4, 4]),
        ([2, 2, 7, 10], [3, 4]),
        ([1, 1, 4, 4], [6, 5]),
    ] {
        let x = distinct(&dims, 5, DType::F64);
        let y = adaptive_avg_pool2d(&x, out).unwrap();
        assert_eq!(y.dims(), [dims[0], dims[1], out[0], out[1]]);
        for (a, b) in to_f64(&y).iter().zip(adaptive_reference(&x, out)) {
            assert!((a - b).abs() < 1e-12, "{dims:?} -> {out:?}: {a} vs {b}");
        }
    }
    // The 6 -> 4 bins literally: row bin 1 of a plane whose value is its row index.
    let rows = Tensor::arange(0f64, 6., &Device::Cpu)
        .unwrap()
        .reshape((1, 1, 6, 1))
        .unwrap()
        .broadcast_as((1, 1, 6, 6))
        .unwrap();
    let y = adaptive_avg_pool2d(&rows, [4, 4]).unwrap();
    let col0: Vec<f64> = to_f64(&y).into_iter().step_by(4).collect();
    assert_eq!(col0, [0.5, 1.5, 3.5, 4.5]);
}

#[test]
fn adaptive_avg_pool_gradients_match_finite_differences() {
    for (dims, out) in [
        ([1, 2, 3, 3], [2, 2]),
        ([1, 2, 6, 6], [4, 4]),
        ([2, 1, 5, 5], [1, 1]),
        ([1, 2, 7, 5], [3, 2]),
        ([1, 1, 3, 4], [5, 6]),
    ] {
        let x = distinct(&dims, 11, DType::F64);
        check_gradients(
            &[x],
            |t| weighted_sum(&adaptive_avg_pool2d(&t[0], out)?, 3),
            1e-7,
        )
        .unwrap_or_else(|e| panic!("{dims:?} -> {out:?}: {e}"));
    }
}

#[test]
fn pool_rejects_unsupported_dtype() {
    let x = Tensor::ones((1, 1, 4, 4), DType::F16, &Device::Cpu).unwrap();
    let err = pool2d(&x, PoolMode::Max, &pg(2, 2, 0, false)).unwrap_err();
    assert!(err.to_string().contains("F16"), "{err}");
    assert!(adaptive_avg_pool2d(&x, [2, 2]).is_err());
}

/// The checker itself must be able to fail: a deliberately wrong gradient is caught.
#[test]
fn gradcheck_catches_a_wrong_gradient() {
    let x = distinct(&[1, 1, 4, 4], 1, DType::F64);
    // detach() drops the gradient path for half of the function: analytic != numeric.
    let r = check_gradients(
        &[x],
        |t| {
            let a = weighted_sum(&t[0], 1)?;
            let b = weighted_sum(&t[0].detach(), 2)?;
            a + b
        },
        1e-6,
    );
    assert!(r.is_err());
    assert!(r.unwrap_err().contains("gradient mismatch"));
}

/// NaN propagates through max pooling, as in PyTorch.
#[test]
fn max_pool_propagates_nan() {
    let x = Tensor::from_vec(
        vec![1.0f32, f32::NAN, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
        (1, 1, 2, 4),
        &Device::Cpu,
    )
    .unwrap();
    let y = to_f64(&pool2d(&x, PoolMode::Max, &pg(2, 2, 0, false)).unwrap());
    assert!(y[0].is_nan());
    assert_eq!(y[1], 8.0);
}

/// The backward of a window holding a NaN routes the gradient to the NaN.
#[test]
fn max_pool_backward_routes_to_nan() {
    let x = Tensor::from_vec(vec![1.0f64, 9.0, f64::NAN, 4.0], (1, 1, 2, 2), &Device::Cpu).unwrap();
    let x = Var::from_tensor(&x).unwrap();
    let y = pool2d(x.as_tensor(), PoolMode::Max, &pg(2, 2, 0, false)).unwrap();
    let dy = Tensor::ones((1, 1, 1, 1), DType::F64, &Device::Cpu).unwrap();
    let grads = (y * dy).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(
        to_f64(grads.get(x.as_tensor()).unwrap()),
        [0.0, 0.0, 1.0, 0.0]
    );
}
