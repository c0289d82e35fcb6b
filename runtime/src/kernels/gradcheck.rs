//! Finite-difference gradient checking for tests of differentiable ops.

use candle_core::{DType, Device, Result, Tensor, Var};

/// Checks candle's gradients of `f` (a scalar-valued function of the given input tensors,
/// evaluated on CPU in f64) against central finite differences with step 1e-6, for every
/// element of every input. Returns `Err` describing the worst element (input, flat index,
/// analytic and numeric value) when a relative error `|a-n| / max(1, |a|, |n|)` exceeds
/// `tol`. Inputs are converted to f64 CPU tensors first. `f` must give a tensor with one
/// element (any rank); see [`weighted_sum`] for reducing an op's output to a scalar.
pub fn check_gradients(
    inputs: &[Tensor],
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
    tol: f64,
) -> std::result::Result<(), String> {
    const EPS: f64 = 1e-6;
    let err = |e: candle_core::Error| format!("candle error: {e}");
    let base: Vec<Tensor> = inputs
        .iter()
        .map(|t| t.to_device(&Device::Cpu)?.to_dtype(DType::F64))
        .collect::<Result<_>>()
        .map_err(err)?;
    let vars: Vec<Var> = base
        .iter()
        .map(Var::from_tensor)
        .collect::<Result<_>>()
        .map_err(err)?;
    let var_tensors: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let eval = |ts: &[Tensor]| -> std::result::Result<f64, String> {
        let out = f(ts).map_err(err)?;
        if out.elem_count() != 1 {
            return Err(format!(
                "f must return a single element, got shape {:?}",
                out.dims()
            ));
        }
        out.flatten_all()
            .and_then(|o| o.to_dtype(DType::F64))
            .and_then(|o| o.to_vec1::<f64>())
            .map(|v| v[0])
            .map_err(err)
    };
    let out = f(&var_tensors).map_err(err)?;
    if out.elem_count() != 1 {
        return Err(format!(
            "f must return a single element, got shape {:?}",
            out.dims()
        ));
    }
    let grads = out.backward().map_err(err)?;
    // (input, index, analytic, numeric, relative error)
    let mut worst: Option<(usize, usize, f64, f64, f64)> = None;
    for (i, var) in vars.iter().enumerate() {
        let analytic: Vec<f64> = match grads.get(var.as_tensor()) {
            Some(g) => g
                .to_dtype(DType::F64)
                .and_then(|g| g.flatten_all())
                .and_then(|g| g.to_vec1())
                .map_err(err)?,
            None => vec![0.0; base[i].elem_count()],
        };
        let values: Vec<f64> = base[i]
            .flatten_all()
            .and_then(|t| t.to_vec1())
            .map_err(err)?;
        let mut args = base.clone();
        for (j, &a) in analytic.iter().enumerate() {
            let mut at = |delta: f64| -> std::result::Result<f64, String> {
                let mut v = values.clone();
                v[j] += delta;
                args[i] = Tensor::from_vec(v, base[i].shape(), &Device::Cpu).map_err(err)?;
                eval(&args)
            };
            let numeric = (at(EPS)? - at(-EPS)?) / (2.0 * EPS);
            let rel = (a - numeric).abs() / 1f64.max(a.abs()).max(numeric.abs());
            if !rel.is_finite() || worst.is_none_or(|w| rel > w.4) {
                worst = Some((i, j, a, numeric, rel));
            }
        }
        args[i] = base[i].clone();
    }
    match worst {
        Some((i, j, a, n, rel)) if rel > tol || rel.is_nan() => Err(format!(
            "gradient mismatch: input {i} (shape {:?}) flat index {j}: analytic {a:e}, numeric {n:e}, relative error {rel:e} > {tol:e}",
            base[i].dims()
        )),
        _ => Ok(()),
    }
}

/// `Σ t ⊙ w` with fixed pseudo-random weights `w` in [0.5, 1.5) · ±1 derived from `seed`,
/// so that every element of `t` influences the scalar (and gradients differ per element).
pub fn weighted_sum(t: &Tensor, seed: u64) -> Result<Tensor> {
    let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
    let w: Vec<f64> = (0..t.elem_count())
        .map(|_| {
            // splitmix64
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            let u = (z >> 11) as f64 / (1u64 << 53) as f64;
            let sign = if z & 1 == 0 { 1.0 } else { -1.0 };
            sign * (0.5 + u)
        })
        .collect();
    let w = Tensor::from_vec(w, t.shape(), t.device())?.to_dtype(t.dtype())?;
    (t * w)?.sum_all()
}
