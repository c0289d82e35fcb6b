//! The optimisers' updates in place: a weight and its state are rewritten element by
//! element with the arithmetic, in the order, of the tensor expressions they replace
//! (candle's `x * c` is `x·c + 0`, `x / c` is `x·(1/c) + 0`, `x + c` is `x·1 + c`), so
//! the results are the same bits, and without the expressions' temporaries: four
//! tensors of the weight's size for SGD with momentum, seven for Adam, alive at once.

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, InplaceOp3, Layout, Result, Tensor};

use super::util::Elem;

/// `x·c + 0`: candle's multiplication by a number.
#[inline(always)]
fn scaled<T: Elem>(x: T, c: f64) -> T {
    x * T::from_f64(c) + T::ZERO
}

/// One update rule: the tensor it rewrites (`dst`) and its two operands (`a`, `b`).
#[derive(Clone, Copy, Debug)]
pub enum Update {
    /// dst = momentum buffer, a = gradient, b = weight:
    /// `buf·m + (g + p·wd)`.
    MomentumBuffer { momentum: f64, weight_decay: f64 },
    /// dst = weight, a = gradient, b = momentum buffer (unread without momentum):
    /// `p − step·lr` with step `g + p·wd` (plain), `buf` (momentum) or
    /// `(g + p·wd) + buf·m` (Nesterov).
    SgdStep {
        lr: f64,
        weight_decay: f64,
        momentum: f64,
        nesterov: bool,
    },
    /// dst = first moment, a = gradient, b = weight: `m·β₁ + g'·(1−β₁)`, with
    /// `g' = g + p·wd` (Adam's L2 decay; 0 for AdamW).
    FirstMoment { beta1: f64, weight_decay: f64 },
    /// dst = second moment, a = gradient, b = weight: `v·β₂ + g'²·(1−β₂)`.
    SecondMoment { beta2: f64, weight_decay: f64 },
    /// dst = weight, a = first moment, b = second moment:
    /// `p·(1 − lr·wd) − m / (√v / √c₂ + ε) · (lr / c₁)`, the decay for AdamW only.
    AdamStep {
        lr: f64,
        decoupled_decay: f64,
        bias1: f64,
        bias2: f64,
        eps: f64,
    },
}

/// Rewrites `dst` by `rule` from `a` and `b` (the roles of [`Update`]'s variants): in
/// place on the CPU; elsewhere (or with the portable ops forced) as the tensor
/// expression the rule stands for, written back into `dst`'s storage.
pub fn apply(dst: &Tensor, a: &Tensor, b: &Tensor, rule: &Update) -> Result<()> {
    if super::portable::applies(dst) {
        return dst.slice_set(&rule.expression(dst, a, b)?, 0, 0);
    }
    dst.inplace_op3(a, b, rule)
}

impl Update {
    /// The rule as candle tensor expressions: the same arithmetic in the same order
    /// as [`Update::apply`], with the temporaries it saves.
    pub fn expression(&self, dst: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        let decayed = |g: &Tensor, p: &Tensor, wd: f64| {
            if wd != 0.0 {
                g + (p * wd)?
            } else {
                Ok(g.clone())
            }
        };
        match *self {
            Update::MomentumBuffer {
                momentum,
                weight_decay,
            } => (dst * momentum)? + decayed(a, b, weight_decay)?,
            Update::SgdStep {
                lr,
                weight_decay,
                momentum,
                nesterov,
            } => {
                let step = match (momentum != 0.0, nesterov) {
                    (false, _) => decayed(a, dst, weight_decay)?,
                    (true, false) => b.clone(),
                    (true, true) => (decayed(a, dst, weight_decay)? + (b * momentum)?)?,
                };
                dst - (step * lr)?
            }
            Update::FirstMoment {
                beta1,
                weight_decay,
            } => (dst * beta1)? + (decayed(a, b, weight_decay)? * (1.0 - beta1))?,
            Update::SecondMoment {
                beta2,
                weight_decay,
            } => (dst * beta2)? + (decayed(a, b, weight_decay)?.sqr()? * (1.0 - beta2))?,
            Update::AdamStep {
                lr,
                decoupled_decay,
                bias1,
                bias2,
                eps,
            } => {
                let w = if decoupled_decay != 0.0 {
                    (dst * (1.0 - lr * decoupled_decay))?
                } else {
                    dst.clone()
                };
                let denom = ((b.sqrt()? * (1.0 / bias2.sqrt()))? + eps)?;
                w - (a.div(&denom)? * (lr / bias1))?
            }
        }
    }

    /// The gradient with L2 decay: `g + p·wd` (as is when wd is 0).
    #[inline(always)]
    fn decayed<T: Elem>(g: T, p: T, wd: f64) -> T {
        if wd != 0.0 {
            g + scaled(p, wd)
        } else {
            g
        }
    }

    fn apply<T: Elem>(&self, dst: &mut [T], a: &[T], b: &[T]) {
        match *self {
            Update::MomentumBuffer {
                momentum,
                weight_decay,
            } => {
                for ((buf, &g), &p) in dst.iter_mut().zip(a).zip(b) {
                    *buf = scaled(*buf, momentum) + Self::decayed(g, p, weight_decay);
                }
            }
            Update::SgdStep {
                lr,
                weight_decay,
                momentum,
                nesterov,
            } => {
                for ((p, &g), &buf) in dst.iter_mut().zip(a).zip(b) {
                    let step = match (momentum != 0.0, nesterov) {
                        (false, _) => Self::decayed(g, *p, weight_decay),
                        (true, false) => buf,
                        (true, true) => Self::decayed(g, *p, weight_decay) + scaled(buf, momentum),
                    };
                    *p -= scaled(step, lr);
                }
            }
            Update::FirstMoment {
                beta1,
                weight_decay,
            } => {
                for ((m, &g), &p) in dst.iter_mut().zip(a).zip(b) {
                    let g = Self::decayed(g, p, weight_decay);
                    *m = scaled(*m, beta1) + scaled(g, 1.0 - beta1);
                }
            }
            Update::SecondMoment {
                beta2,
                weight_decay,
            } => {
                for ((v, &g), &p) in dst.iter_mut().zip(a).zip(b) {
                    let g = Self::decayed(g, p, weight_decay);
                    *v = scaled(*v, beta2) + scaled(g * g, 1.0 - beta2);
                }
            }
            Update::AdamStep {
                lr,
                decoupled_decay,
                bias1,
                bias2,
                eps,
            } => {
                for ((p, &m), &v) in dst.iter_mut().zip(a).zip(b) {
                    let w = if decoupled_decay != 0.0 {
                        scaled(*p, 1.0 - lr * decoupled_decay)
                    } else {
                        *p
                    };
                    let denom = scaled(v.sqrt(), 1.0 / bias2.sqrt()) * T::ONE + T::from_f64(eps);
                    *p = w - scaled(m / denom, lr / bias1);
                }
            }
        }
    }
}

/// The contiguous elements of a storage's layout.
fn range(op: &str, l: &Layout) -> Result<std::ops::Range<usize>> {
    match l.contiguous_offsets() {
        Some((start, end)) => Ok(start..end),
        None => bail!("{op}: expected contiguous tensors, got layout {l:?}"),
    }
}

impl InplaceOp3 for Update {
    fn name(&self) -> &'static str {
        "cnncost-optimizer-update"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<()> {
        let name = self.name();
        let (r1, r2, r3) = (range(name, l1)?, range(name, l2)?, range(name, l3)?);
        if r1.len() != r2.len() || r1.len() != r3.len() {
            bail!(
                "{name}: tensors of {}, {} and {} elements",
                r1.len(),
                r2.len(),
                r3.len()
            )
        }
        match (s1, s2, s3) {
            (CpuStorage::F32(d), CpuStorage::F32(a), CpuStorage::F32(b)) => {
                self.apply(&mut d[r1], &a[r2], &b[r3])
            }
            (CpuStorage::F64(d), CpuStorage::F64(a), CpuStorage::F64(b)) => {
                self.apply(&mut d[r1], &a[r2], &b[r3])
            }
            (d, _, _) => bail!(
                "{name}: expected three f32 or three f64 tensors, got {:?}",
                d.dtype()
            ),
        }
        Ok(())
    }
}

/// Whether every element of a float tensor is finite, read in place (no copy: the
/// optimiser checks each gradient before it updates, at the step's peak memory).
pub fn all_finite(t: &candle_core::Tensor) -> Result<bool> {
    if super::portable::applies(t) {
        return super::portable::all_finite(t);
    }
    let (storage, layout) = t.storage_and_layout();
    let candle_core::Storage::Cpu(cpu) = &*storage else {
        bail!("all_finite: CPU tensors only")
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        bail!("all_finite: expected a contiguous tensor")
    };
    Ok(match cpu {
        CpuStorage::F32(v) => v[start..end].iter().all(|x| x.is_finite()),
        CpuStorage::F64(v) => v[start..end].iter().all(|x| x.is_finite()),
        _ => true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// The tensor expression (what runs on a GPU) gives the in-place rule's bits.
    #[test]
    fn each_rule_as_an_expression_gives_the_same_bits() {
        let t = |seed: f32| {
            let v: Vec<f32> = (0..64)
                .map(|i| ((i as f32 * 0.37 + seed).sin()) * 0.1)
                .collect();
            Tensor::from_vec(v, 64, &Device::Cpu).unwrap()
        };
        let positive = |seed: f32| t(seed).abs().unwrap();
        let rules = [
            Update::MomentumBuffer {
                momentum: 0.9,
                weight_decay: 5e-4,
            },
            Update::SgdStep {
                lr: 0.1,
                weight_decay: 5e-4,
                momentum: 0.0,
                nesterov: false,
            },
            Update::SgdStep {
                lr: 0.1,
                weight_decay: 5e-4,
                momentum: 0.9,
                nesterov: false,
            },
            Update::SgdStep {
                lr: 0.1,
                weight_decay: 5e-4,
                momentum: 0.9,
                nesterov: true,
            },
            Update::FirstMoment {
                beta1: 0.9,
                weight_decay: 1e-2,
            },
            Update::SecondMoment {
                beta2: 0.999,
                weight_decay: 0.0,
            },
            Update::AdamStep {
                lr: 1e-3,
                decoupled_decay: 1e-2,
                bias1: 0.1,
                bias2: 0.001,
                eps: 1e-8,
            },
        ];
        for rule in rules {
            let (dst, a, b) = (t(1.0), t(2.0), positive(3.0));
            let want = rule
                .expression(&dst, &a, &b)
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            dst.inplace_op3(&a, &b, &rule).unwrap();
            let got = dst.to_vec1::<f32>().unwrap();
            let same = got
                .iter()
                .zip(&want)
                .all(|(g, w)| g.to_bits() == w.to_bits());
            assert!(same, "{rule:?}: {got:?} against {want:?}");
        }
    }
}
