//! The fused elementwise ops: ReLU and a residual sum with its ReLU, against the plain
//! formulas and finite differences.

use candle_core::DType;
use runtime::kernels::gradcheck::{check_gradients, weighted_sum};
use runtime::kernels::norm::{add_relu, batch_norm_train, relu};

mod common;
use common::{tensor, to_f64};

/// Sizes below and above the parallel split (2^15 elements) and not multiples of the
/// vector width.
const SIZES: [&[usize]; 3] = [&[3, 5], &[2, 4, 9, 9], &[4, 8, 33, 35]];

#[test]
fn relu_and_add_relu_match_the_formulas() {
    for (k, dims) in SIZES.iter().enumerate() {
        for dtype in [DType::F32, DType::F64] {
            let a = tensor(dims, 2 * k as u64, dtype);
            let b = tensor(dims, 2 * k as u64 + 1, dtype);
            let (av, bv) = (to_f64(&a), to_f64(&b));
            let got = to_f64(&relu(&a).unwrap());
            let want: Vec<f64> = av.iter().map(|&x| x.max(0.0)).collect();
            assert_eq!(got, want, "relu {dims:?} {dtype:?}");
            let got = to_f64(&add_relu(&a, &b).unwrap());
            for (i, g) in got.iter().enumerate() {
                // The sum is rounded in the tensor's dtype before the clamp.
                let sum = match dtype {
                    DType::F32 => (av[i] as f32 + bv[i] as f32) as f64,
                    _ => av[i] + bv[i],
                };
                assert_eq!(*g, sum.max(0.0), "add_relu {dims:?} {dtype:?} at {i}");
            }
        }
    }
}

#[test]
fn add_relu_gradients_match_finite_differences() {
    // Small sizes for the finite differences; values in [-1, 1) rarely land within the
    // step of the kink at 0.
    let a = tensor(&[2, 3, 4, 5], 7, DType::F64);
    let b = tensor(&[2, 3, 4, 5], 8, DType::F64);
    check_gradients(
        &[a.clone(), b.clone()],
        |t| weighted_sum(&add_relu(&t[0], &t[1])?, 3),
        1e-7,
    )
    .unwrap();
    check_gradients(&[a], |t| weighted_sum(&relu(&t[0])?, 4), 1e-7).unwrap();
}

#[test]
fn add_relu_rejects_different_shapes() {
    let a = tensor(&[2, 3], 1, DType::F32);
    let b = tensor(&[3, 2], 2, DType::F32);
    let e = add_relu(&a, &b).unwrap_err().to_string();
    assert!(e.contains("differ"), "{e}");
}

/// Batch norm with its ReLU fused equals the ReLU of the plain batch norm, forward and
/// backward (the gradient through the fused op against finite differences).
#[test]
fn batch_norm_relu_is_relu_of_batch_norm() {
    let x = tensor(&[4, 3, 5, 6], 21, DType::F64);
    let gamma = tensor(&[3], 22, DType::F64);
    let beta = tensor(&[3], 23, DType::F64);
    let (plain, stats) = batch_norm_train(&x, &gamma, &beta, 1e-5, false).unwrap();
    let (fused, fused_stats) = batch_norm_train(&x, &gamma, &beta, 1e-5, true).unwrap();
    let want: Vec<f64> = to_f64(&plain).iter().map(|v| v.max(0.0)).collect();
    assert_eq!(to_f64(&fused), want);
    assert_eq!(to_f64(&stats.mean), to_f64(&fused_stats.mean));
    assert_eq!(to_f64(&stats.var), to_f64(&fused_stats.var));
    check_gradients(
        &[x, gamma, beta],
        |t| weighted_sum(&batch_norm_train(&t[0], &t[1], &t[2], 1e-5, true)?.0, 5),
        1e-6,
    )
    .unwrap();
}

/// The batch statistics come from one pass of shifted sums: on data whose mean is far
/// larger than its spread (1000 ± 0.01, where Σx² − (Σx)²/m in f32 or unshifted would
/// cancel to noise), mean and variance match the two-pass formulas in f64.
#[test]
fn batch_statistics_survive_a_large_mean() {
    let (n, c, s) = (3, 2, 37);
    let raw = common::rnd(n * c * s, 5);
    let vals: Vec<f64> = raw.iter().map(|v| 1000.0 + 0.01 * v).collect();
    let x = candle_core::Tensor::from_vec(vals.clone(), (n, c, s), &candle_core::Device::Cpu)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap();
    let ones = candle_core::Tensor::ones(c, DType::F32, &candle_core::Device::Cpu).unwrap();
    let zeros = ones.zeros_like().unwrap();
    let (_, st) = batch_norm_train(&x, &ones, &zeros, 1e-5, false).unwrap();
    let (st_mean, st_var) = (to_f64(&st.mean), to_f64(&st.var));
    let xs = to_f64(&x);
    for ch in 0..c {
        let v: Vec<f64> = (0..n)
            .flat_map(|i| xs[(i * c + ch) * s..][..s].to_vec())
            .collect();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
        assert!(
            (st_mean[ch] - mean).abs() <= 1e-9 * mean.abs(),
            "channel {ch} mean"
        );
        assert!(
            (st_var[ch] - var).abs() <= 1e-6 * var,
            "channel {ch}: variance {} against {var}",
            st_var[ch]
        );
    }
}

/// Batch norm in f32 (whose per-row sums run in AVX-512 where the CPU has it) against
/// f64 (the generic loops, which the finite-difference test above checks): the
/// statistics, the output and the three gradients, with and without the fused ReLU, on
/// rows shorter than a vector, with a tail after whole vectors, and of whole vectors.
#[test]
fn batch_norm_f32_matches_f64() {
    for (i, dims) in [[3, 2, 1, 5], [4, 3, 5, 7], [2, 3, 8, 8]]
        .into_iter()
        .enumerate()
    {
        for relu in [false, true] {
            let run = |dtype: DType| -> Vec<Vec<f64>> {
                let seed = 40 + 4 * i as u64;
                let x = candle_core::Var::from_tensor(&tensor(&dims, seed, dtype)).unwrap();
                let gamma =
                    candle_core::Var::from_tensor(&tensor(&[dims[1]], seed + 1, dtype)).unwrap();
                let beta =
                    candle_core::Var::from_tensor(&tensor(&[dims[1]], seed + 2, dtype)).unwrap();
                let (y, st) = batch_norm_train(
                    x.as_tensor(),
                    gamma.as_tensor(),
                    beta.as_tensor(),
                    1e-5,
                    relu,
                )
                .unwrap();
                let grads = weighted_sum(&y, seed + 3).unwrap().backward().unwrap();
                let mut out = vec![to_f64(&y), to_f64(&st.mean), to_f64(&st.var)];
                for v in [&x, &gamma, &beta] {
                    out.push(to_f64(grads.get(v.as_tensor()).unwrap()));
                }
                out
            };
            let (single, double) = (run(DType::F32), run(DType::F64));
            for (what, (a, b)) in ["y", "mean", "var", "dx", "dgamma", "dbeta"]
                .iter()
                .zip(single.iter().zip(&double))
            {
                assert_eq!(a.len(), b.len());
                for (k, (a, b)) in a.iter().zip(b).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-4 * b.abs().max(1.0),
                        "{dims:?} relu {relu}: {what}[{k}] = {a}, f64 gives {b}"
                    );
                }
            }
        }
    }
}
