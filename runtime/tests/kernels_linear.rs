//! linear (x·Wᵀ): a naive triple loop for the forward, finite differences for the
//! gradients, shape errors.

use candle_core::{DType, Tensor};
use runtime::kernels::gradcheck::{check_gradients, weighted_sum};
use runtime::kernels::linear;

mod common;
use common::{tensor, to_f64};

/// Batches and sizes around gemm's vector width (16 f32) and panel widths, the
/// streaming kernel's blocks (6 rows, 4 samples, 1,024 inputs), and the degenerate ones.
const SHAPES: [(usize, usize, usize); 9] = [
    (1, 1, 1),
    (1, 9, 5),
    (3, 20, 7),
    (16, 64, 33),
    (17, 130, 10),
    (128, 64, 10),
    (5, 300, 257),
    // The streaming kernel's limits: several chunks of inputs with a tail, a partial
    // block of rows and group of samples; and the first batch gemm takes.
    (31, 2100, 13),
    (33, 70, 9),
];

#[test]
fn linear_matches_a_naive_product() {
    for (k, &(n, i, o)) in SHAPES.iter().enumerate() {
        for (dtype, tol) in [(DType::F32, 1e-4), (DType::F64, 1e-12)] {
            let x = tensor(&[n, i], 2 * k as u64, dtype);
            let w = tensor(&[o, i], 2 * k as u64 + 1, dtype);
            let got = to_f64(&linear(&x, &w).unwrap());
            let (xv, wv) = (to_f64(&x), to_f64(&w));
            for b in 0..n {
                for f in 0..o {
                    let want: f64 = (0..i).map(|j| xv[b * i + j] * wv[f * i + j]).sum();
                    let g = got[b * o + f];
                    assert!(
                        (g - want).abs() <= tol * (1.0 + want.abs()),
                        "{dtype:?} n={n} i={i} o={o} at ({b}, {f}): {g} vs {want}"
                    );
                }
            }
        }
    }
}

#[test]
fn linear_gradients_match_finite_differences() {
    for (k, &(n, i, o)) in SHAPES.iter().enumerate().filter(|(_, s)| s.0 * s.1 < 1000) {
        let x = tensor(&[n, i], 10 + k as u64, DType::F64);
        let w = tensor(&[o, i], 20 + k as u64, DType::F64);
        check_gradients(
            &[x, w],
            |t| weighted_sum(&linear(&t[0], &t[1])?, 3 + k as u64),
            1e-7,
        )
        .unwrap_or_else(|e| panic!("n={n} i={i} o={o}: {e}"));
    }
}

#[test]
fn linear_takes_a_transposed_input() {
    let x = tensor(&[6, 4], 1, DType::F32);
    let w = tensor(&[3, 6], 2, DType::F32);
    let xt = x.t().unwrap();
    let want = to_f64(&linear(&xt.contiguous().unwrap(), &w).unwrap());
    assert_eq!(to_f64(&linear(&xt, &w).unwrap()), want);
}

#[test]
fn linear_rejects_bad_shapes() {
    let x = tensor(&[2, 4], 1, DType::F32);
    for (w, what) in [
        (tensor(&[3, 5], 2, DType::F32), "does not match"),
        (tensor(&[3, 4], 2, DType::F64), "does not match"),
        (tensor(&[3, 4, 1], 2, DType::F32), "expected x (N, I)"),
    ] {
        let e = linear(&x, &w).unwrap_err().to_string();
        assert!(e.contains(what), "{e}");
    }
    let x3: Tensor = tensor(&[2, 4, 1], 1, DType::F32);
    let w = tensor(&[3, 4], 2, DType::F32);
    assert!(linear(&x3, &w).is_err());
}
