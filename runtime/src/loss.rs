//! The training loss: cross-entropy (with optional label smoothing) on the
//! main output, plus the auxiliary heads' cross-entropies weighted as
//! GoogLeNet's (0.3 by default).

use crate::model::Outputs;
use candle_core::{Tensor, D};

/// Mean cross-entropy of `logits` (N, K) against class indices `labels`
/// (N, u32). With smoothing e the target is (1-e) on the label plus e/K on
/// every class, as PyTorch's `label_smoothing`.
pub fn cross_entropy(
    logits: &Tensor,
    labels: &Tensor,
    smoothing: f64,
) -> candle_core::Result<Tensor> {
    let log_p = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let nll = candle_nn::loss::nll(&log_p, labels)?;
    if smoothing == 0.0 {
        return Ok(nll);
    }
    let k = logits.dim(D::Minus1)? as f64;
    let uniform = (log_p.sum(D::Minus1)?.mean_all()?.neg()? / k)?;
    (nll * (1.0 - smoothing))? + (uniform * smoothing)?
}

/// CE(main) + aux_weight * sum of CE(head) over the heads.
pub fn training_loss(
    out: &Outputs,
    labels: &Tensor,
    aux_weight: f64,
    smoothing: f64,
) -> candle_core::Result<Tensor> {
    let mut loss = cross_entropy(&out.main, labels, smoothing)?;
    for head in &out.heads {
        loss = (loss + (cross_entropy(head, labels, smoothing)? * aux_weight)?)?;
    }
    Ok(loss)
}

/// The loss of a Mixup/CutMix batch: lambda times the loss against the
/// first labels plus (1 - lambda) times the loss against their partners'
/// (Zhang et al. 2018), heads included.
pub fn mixed_training_loss(
    out: &Outputs,
    labels_a: &Tensor,
    labels_b: &Tensor,
    lambda: f64,
    aux_weight: f64,
    smoothing: f64,
) -> candle_core::Result<Tensor> {
    let a = training_loss(out, labels_a, aux_weight, smoothing)?;
    let b = training_loss(out, labels_b, aux_weight, smoothing)?;
    (a * lambda)? + (b * (1.0 - lambda))?
}

/// How many of `logits`' rows have their largest value at the label, and
/// how many have the label among their `k` largest.
pub fn correct_top1_topk(
    logits: &Tensor,
    labels: &[u32],
    k: usize,
) -> candle_core::Result<(usize, usize)> {
    let classes = logits.dim(candle_core::D::Minus1)?;
    let scores: Vec<f32> = logits
        .to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_vec1()?;
    Ok(correct_in_rows(&scores, classes, labels, k))
}

/// `correct_top1_topk` over score rows of `classes` values, flattened (logits
/// or probabilities: only the order counts). A row whose label scores NaN
/// counts as wrong.
pub fn correct_in_rows(scores: &[f32], classes: usize, labels: &[u32], k: usize) -> (usize, usize) {
    let mut top1 = 0;
    let mut topk = 0;
    for (row, &label) in scores.chunks(classes.max(1)).zip(labels) {
        let mine = row[label as usize];
        if mine.is_nan() {
            continue;
        }
        // The label's place in a stable sort by score: classes scoring
        // higher, and equal ones listed before it (argmax picks the first).
        let rank = row
            .iter()
            .enumerate()
            .filter(|&(j, &v)| v > mine || (v == mine && j < label as usize))
            .count();
        if rank == 0 {
            top1 += 1;
        }
        if rank < k {
            topk += 1;
        }
    }
    (top1, topk)
}

/// A one-element tensor (a loss, a norm) as an f64.
pub(crate) fn scalar(t: &Tensor) -> candle_core::Result<f64> {
    t.to_dtype(candle_core::DType::F64)?
        .reshape(())?
        .to_scalar::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn a_mixed_loss_interpolates_the_two_labels_losses() {
        let logits = Tensor::new(&[[2.0f64, 0.5, -1.0], [0.1, 0.2, 0.3]], &Device::Cpu).unwrap();
        let out = Outputs {
            main: logits,
            heads: vec![],
        };
        let a = Tensor::new(&[0u32, 2], &Device::Cpu).unwrap();
        let b = Tensor::new(&[1u32, 0], &Device::Cpu).unwrap();
        let la = training_loss(&out, &a, 0.3, 0.0)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        let lb = training_loss(&out, &b, 0.3, 0.0)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        let mixed = |l: f64| {
            mixed_training_loss(&out, &a, &b, l, 0.3, 0.0)
                .unwrap()
                .to_scalar::<f64>()
                .unwrap()
        };
        assert!((mixed(1.0) - la).abs() < 1e-12);
        assert!((mixed(0.0) - lb).abs() < 1e-12);
        assert!((mixed(0.25) - (0.25 * la + 0.75 * lb)).abs() < 1e-12);
        // Cross-entropy by hand for row 0, label 0: logsumexp - logit.
        let lse0 = (2f64.exp() + 0.5f64.exp() + (-1f64).exp()).ln();
        let lse1 = (0.1f64.exp() + 0.2f64.exp() + 0.3f64.exp()).ln();
        assert!((la - ((lse0 - 2.0) + (lse1 - 0.3)) / 2.0).abs() < 1e-12);
    }
}
