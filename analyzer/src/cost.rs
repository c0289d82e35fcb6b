//! The cost model: parameters, buffers, MACs and FLOPs of one op for one
//! example. The rules and their sources are in docs/costs.md; every product
//! is checked, so an overflow is reported, never wrapped.

use dsl::ir::{Activation, Op, Shape, TensorKind};

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

/// Whether an op writes a new tensor, or reuses its input's storage: views
/// (flatten, identity), dropout at inference, and element-wise activations
/// run in place (as torchvision's `ReLU(inplace=True)`) when nothing else
/// reads their input. See docs/costs.md, "activation memory".
pub fn reuses_input(op: &Op, input_consumers: usize) -> bool {
    match op {
        Op::Flatten | Op::Identity | Op::Dropout { .. } => true,
        Op::Act(a) => match a {
            Activation::Softmax => false,
            Activation::Relu
            | Activation::LeakyRelu { .. }
            | Activation::Elu { .. }
            | Activation::Selu
            | Activation::Gelu
            | Activation::Sigmoid
            | Activation::Tanh => input_consumers == 1,
        },
        Op::Input
        | Op::Conv { .. }
        | Op::Linear { .. }
        | Op::Pool { .. }
        | Op::GlobalAvgPool
        | Op::AdaptiveAvgPool { .. }
        | Op::BatchNorm { .. }
        | Op::Lrn { .. }
        | Op::Prelu
        | Op::Concat
        | Op::Add
        | Op::ZeroPad { .. } => false,
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
