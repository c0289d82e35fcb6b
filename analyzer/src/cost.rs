//! The cost model: parameters, buffers, MACs and FLOPs of one op for one
//! example. The rules and their sources are in docs/costs.md; every product
//! is checked, so an overflow is reported, never wrapped.

use dsl::ir::{Activation, Op, PoolKind, Shape, TensorKind};

/// Costs of one op for one example (batch 1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpCost {
    pub params: u64,
    pub buffers: u64,
    pub macs: u64,
    pub flops: u64,
}

/// The checked product of some numbers.
pub fn product(xs: &[u64]) -> Option<u64> {
    xs.iter().try_fold(1u64, |a, &b| a.checked_mul(b))
}

/// Per-element FLOPs of ops that are not conv or linear (docs/costs.md).
pub fn flops_per_element(op: &Op) -> u64 {
    match op {
        // Inference BN is a scale and a shift.
        Op::BatchNorm { .. } => 2,
        // Sum of squares over the window (2*size), then scale, add k,
        // power and divide.
        Op::Lrn { size, .. } => size.saturating_mul(2).saturating_add(4),
        Op::Act(a) => match a {
            Activation::Softmax => 3,
            Activation::Relu
            | Activation::LeakyRelu { .. }
            | Activation::Elu { .. }
            | Activation::Selu
            | Activation::Gelu
            | Activation::Sigmoid
            | Activation::Tanh => 1,
        },
        Op::Prelu => 1,
        // Counted by their own rules in `op_cost`.
        Op::Conv { .. }
        | Op::Linear { .. }
        | Op::Pool { .. }
        | Op::GlobalAvgPool
        | Op::AdaptiveAvgPool { .. }
        | Op::Add => 0,
        // No arithmetic: copies, views, joins and the input.
        Op::Input
        | Op::Dropout { .. }
        | Op::Flatten
        | Op::Identity
        | Op::Concat
        | Op::ZeroPad { .. } => 0,
    }
}

/// Sum over output positions of the adaptive-pool window lengths along one
/// axis (PyTorch's windows: [floor(i*n/o), ceil((i+1)*n/o))).
pub fn adaptive_window_sum(n: u64, o: u64) -> Option<u64> {
    let mut sum = 0u64;
    for i in 0..o {
        let start = i.checked_mul(n)? / o;
        let end = (i + 1).checked_mul(n)?.div_ceil(o);
        sum = sum.checked_add(end - start)?;
    }
    Some(sum)
}

/// The cost of `op` with `inputs` (operand order) and output `out`, or `None`
/// if a count does not fit in 64 bits.
pub fn op_cost(op: &Op, inputs: &[Shape], out: Shape) -> Option<OpCost> {
    let mut c = OpCost::default();
    if let Some(&first) = inputs.first() {
        let mut overflow = false;
        op.for_each_tensor(first, |_, shape, kind| {
            let total = match kind {
                TensorKind::Param => &mut c.params,
                TensorKind::Buffer => &mut c.buffers,
                TensorKind::Counter => return,
            };
            match product(shape).and_then(|n| total.checked_add(n)) {
                Some(t) => *total = t,
                None => overflow = true,
            }
        });
        if overflow {
            return None;
        }
    }
    let out_elems = out.elements()?;
    match op {
        Op::Conv {
            kernel,
            groups,
            bias,
            ..
        } => {
            let cin = inputs.first()?.channels() / groups;
            c.macs = product(&[out_elems, cin, kernel.h, kernel.w])?;
            c.flops = c
                .macs
                .checked_mul(2)?
                .checked_add(if *bias { out_elems } else { 0 })?;
        }
        Op::Linear { bias, .. } => {
            c.macs = product(&[inputs.first()?.channels(), out_elems])?;
            c.flops = c
                .macs
                .checked_mul(2)?
                .checked_add(if *bias { out_elems } else { 0 })?;
        }
        // The lecture's count: one operation per window element.
        Op::Pool { kernel, .. } => c.flops = product(&[out_elems, kernel.h, kernel.w])?,
        Op::GlobalAvgPool => c.flops = inputs.first()?.elements()?,
        Op::AdaptiveAvgPool { out: o } => {
            let Shape::Image { c: ch, h, w } = *inputs.first()? else {
                return None;
            };
            c.flops = product(&[
                ch,
                adaptive_window_sum(h, o.h)?,
                adaptive_window_sum(w, o.w)?,
            ])?;
        }
        Op::Add => c.flops = product(&[out_elems, inputs.len().saturating_sub(1) as u64])?,
        Op::Input
        | Op::BatchNorm { .. }
        | Op::Lrn { .. }
        | Op::Dropout { .. }
        | Op::Act(_)
        | Op::Prelu
        | Op::Flatten
        | Op::Identity
        | Op::Concat
        | Op::ZeroPad { .. } => c.flops = product(&[out_elems, flops_per_element(op)])?,
    }
    Some(c)
}

/// The backward pass of one op for one example: multiply-adds of the input
/// and weight gradients (conv and linear only) and all FLOPs. The rules and
/// their sources are in docs/costs.md ("Training").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackwardCost {
    /// dX of conv and linear: the transposed product, as many MACs as the
    /// forward.
    pub input_macs: u64,
    /// dW of conv and linear: as many MACs as the forward.
    pub weight_macs: u64,
    /// Every FLOP: 2 per MAC above, the bias gradient's sums, and the
    /// element-wise rules of the other ops.
    pub flops: u64,
}

impl BackwardCost {
    pub fn macs(&self) -> u64 {
        self.input_macs.saturating_add(self.weight_macs)
    }
}

/// The backward of `op` (forward cost `fwd`, one example): `input_grad`
/// whether its first operand needs a gradient, `weights_train` whether its
/// weights do (not frozen). `None` on overflow.
pub fn backward_cost(
    op: &Op,
    inputs: &[Shape],
    out: Shape,
    fwd: &OpCost,
    input_grad: bool,
    weights_train: bool,
) -> Option<BackwardCost> {
    let mut b = BackwardCost::default();
    let out_elems = out.elements()?;
    let in_elems = inputs.first().map_or(Some(0), Shape::elements)?;
    // FLOPs per input element of an element-wise rule, when the input
    // needs a gradient.
    let per_input = |k: u64| -> Option<u64> {
        if input_grad {
            in_elems.checked_mul(k)
        } else {
            Some(0)
        }
    };
    match op {
        Op::Conv { bias, .. } | Op::Linear { bias, .. } => {
            b.input_macs = if input_grad { fwd.macs } else { 0 };
            b.weight_macs = if weights_train { fwd.macs } else { 0 };
            // The bias gradient sums dY over every output position.
            let bias_flops = if *bias && weights_train { out_elems } else { 0 };
            b.flops = b.macs().checked_mul(2)?.checked_add(bias_flops)?;
        }
        // Max pool routes each output's gradient to its argmax (one add per
        // output); average pool spreads it over the window (one per window
        // element, as the forward).
        Op::Pool { kind, .. } => {
            b.flops = if !input_grad {
                0
            } else {
                match kind {
                    PoolKind::Max => out_elems,
                    PoolKind::Avg => fwd.flops,
                }
            }
        }
        Op::GlobalAvgPool | Op::AdaptiveAvgPool { .. } => {
            b.flops = if input_grad { fwd.flops } else { 0 };
        }
        // dβ = Σdy (1); dγ = Σdy·x̂ with x̂ = (x−μ)/σ (4); dx = γ/σ·(dy −
        // Σdy/M − x̂·Σdy·x̂/M) (4): 9 per element with every gradient, 5
        // for dγ and dβ alone.
        Op::BatchNorm { .. } => {
            let k = match (input_grad, weights_train) {
                (true, _) => 9,
                (false, true) => 5,
                (false, false) => 0,
            };
            b.flops = in_elems.checked_mul(k)?;
        }
        // The forward's arithmetic again for the window sums, then the
        // chain rule through the power and the division: twice the forward.
        Op::Lrn { .. } => {
            b.flops = if input_grad {
                fwd.flops.checked_mul(2)?
            } else {
                0
            }
        }
        Op::Dropout { .. } => b.flops = per_input(1)?,
        Op::Act(a) => {
            b.flops = per_input(match a {
                // A select on the sign.
                Activation::Relu | Activation::LeakyRelu { .. } => 1,
                // dy·f'(x) with f' from the result: 2 (ELU, SELU: y + α·s).
                Activation::Elu { .. } | Activation::Selu => 2,
                // dy·y·(1−y), dy·(1−y²): 3.
                Activation::Sigmoid | Activation::Tanh => 3,
                // dy·(Φ(x) + x·φ(x)), φ an exponential: 6.
                Activation::Gelu => 6,
                // y·(dy − Σdy·y): 4.
                Activation::Softmax => 4,
            })?;
        }
        // dx = dy·(x>0 ? 1 : a) (1) and da = Σ dy·min(x,0) (2).
        Op::Prelu => {
            let w = if weights_train {
                in_elems.checked_mul(2)?
            } else {
                0
            };
            b.flops = per_input(1)?.checked_add(w)?;
        }
        // Gradients pass through (add, views) or are sliced and copied
        // (concat, zero padding): no arithmetic.
        Op::Input | Op::Flatten | Op::Identity | Op::Concat | Op::Add | Op::ZeroPad { .. } => {}
    }
    Some(b)
}

/// Whether an op's output is its input at inference, with no work done:
/// views (flatten, identity) and dropout.
pub fn is_view(op: &Op) -> bool {
    match op {
        Op::Flatten | Op::Identity | Op::Dropout { .. } => true,
        Op::Input
        | Op::Conv { .. }
        | Op::Linear { .. }
        | Op::Pool { .. }
        | Op::GlobalAvgPool
        | Op::AdaptiveAvgPool { .. }
        | Op::BatchNorm { .. }
        | Op::Lrn { .. }
        | Op::Act(_)
        | Op::Prelu
        | Op::Concat
        | Op::Add
        | Op::ZeroPad { .. } => false,
    }
}

/// Whether an op writes a new tensor, or reuses its input's storage: views
/// (`is_view`), and element-wise activations run in place (as
/// torchvision's `ReLU(inplace=True)`) when nothing else reads their
/// input. See docs/costs.md, "activation memory".
pub fn reuses_input(op: &Op, input_consumers: usize) -> bool {
    if is_view(op) {
        return true;
    }
    let Op::Act(a) = op else {
        return false;
    };
    match a {
        Activation::Softmax => false,
        Activation::Relu
        | Activation::LeakyRelu { .. }
        | Activation::Elu { .. }
        | Activation::Selu
        | Activation::Gelu
        | Activation::Sigmoid
        | Activation::Tanh => input_consumers == 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adaptive_windows_match_pytorch() {
        // 13 -> 6 in PyTorch: windows [0,3) [2,5) [4,7) [6,9) [8,11) [10,13): 6 x 3
        assert_eq!(adaptive_window_sum(13, 6), Some(18));
        // 6 -> 6 is the identity
        assert_eq!(adaptive_window_sum(6, 6), Some(6));
        // 7 -> 1 is a global pool
        assert_eq!(adaptive_window_sum(7, 1), Some(7));
    }

    #[test]
    fn overflow_is_none() {
        assert_eq!(product(&[u64::MAX, 2]), None);
        assert_eq!(product(&[3, 4]), Some(12));
    }
}
