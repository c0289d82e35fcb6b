//! The lecture's sanity checks before a long run: the loss at
//! initialisation against ln(classes), overfitting a few minibatches, and
//! a learning-rate range test.

use crate::evaluate::images_tensor;
use crate::loss::{correct_top1_topk, scalar, training_loss};
use crate::model::{Mode, Model};
use crate::optim::{Optimizer, OptimizerSettings};
use candle_core::Tensor;
use data::{Batch, Dataset, Normalization};
use serde::Serialize;

/// `batches` fixed minibatches of the training split: the first examples
/// of epoch 0's order, unaugmented, normalised with the split's statistics.
pub fn fixed_batches(data: &Dataset, batch_size: usize, batches: usize, seed: u64) -> Vec<Batch> {
    let norm = Normalization::of(&data.train, data.shape);
    let order = data::epoch_order(data.train.len(), seed, 0);
    order
        .chunks(batch_size.max(1))
        .take(batches.max(1))
        .map(|idx| {
            data::make_batch(
                &data.train,
                idx,
                data.shape,
                &norm,
                None,
                &mut data::batch_rng(seed, 0, 0),
            )
        })
        .collect()
}

/// The loss at initialisation, and the lecture's verdict.
#[derive(Debug, Serialize)]
pub struct InitCheck {
    pub loss: f64,
    /// ln(classes): what a network that spreads its bets evenly scores.
    pub expected: f64,
    pub verdict: String,
    pub ok: bool,
}

/// Mean cross-entropy over `batches` at initialisation (training-mode BN,
/// dropout drawn as in training, no label smoothing: regularisation off).
pub fn check_init(
    model: &Model,
    batches: &[Batch],
    classes: usize,
) -> candle_core::Result<InitCheck> {
    let mut sum = 0.0;
    let mut n = 0usize;
    let mut rng: rand_chacha::ChaCha8Rng = rand::SeedableRng::seed_from_u64(0);
    for b in batches {
        let x = images_tensor(model, b.images.clone(), b.len)?;
        let y = Tensor::new(b.labels.as_slice(), model.device())?;
        let out = model.forward(&x, Mode::Train, &mut rng)?;
        // Main output only: heads are regularisers too.
        let main = crate::model::Outputs {
            main: out.main,
            heads: vec![],
        };
        sum += scalar(&training_loss(&main, &y, 0.0, 0.0)?)? * b.len as f64;
        n += b.len;
    }
    let loss = sum / n.max(1) as f64;
    let expected = (classes.max(1) as f64).ln();
    let ratio = loss / expected;
    let (ok, verdict) = if !loss.is_finite() {
        (false, "the loss is not finite at initialisation: look for a division by zero or an exploding layer".to_string())
    } else if (0.9..=1.1).contains(&ratio) {
        (true, format!("as expected: within 10% of ln({classes}) = {expected:.3}, the loss of even guesses"))
    } else if ratio > 1.1 {
        (false, format!("{:.1}x ln({classes}): the initial outputs are too confident; the last layer's weights are too large (lower its init scale) or the inputs are not normalised", ratio))
    } else {
        (false, format!("below ln({classes}) before any training ({:.2}x): the network may see the labels, or the classes are unbalanced", ratio))
    };
    Ok(InitCheck {
        loss,
        expected,
        verdict,
        ok,
    })
}

/// What overfitting a few minibatches showed.
#[derive(Debug, Serialize)]
pub struct OverfitCheck {
    /// Steps to reach 100% training accuracy on the batches, if reached.
    pub steps_to_100: Option<u64>,
    pub first_loss: f64,
    pub last_loss: f64,
    pub last_accuracy: f64,
    pub verdict: String,
    pub ok: bool,
}

/// Trains on `batches` alone (cycled, no augmentation, no weight decay)
/// until every example is classified right or `max_steps` pass.
pub fn overfit(
    model: &Model,
    batches: &[Batch],
    mut settings: OptimizerSettings,
    lr: f64,
    max_steps: u64,
) -> candle_core::Result<OverfitCheck> {
    settings.weight_decay = 0.0;
    let mut opt = Optimizer::new(settings);
    let mut rng: rand_chacha::ChaCha8Rng = rand::SeedableRng::seed_from_u64(0);
    let tensors: Vec<(Tensor, Tensor)> = batches
        .iter()
        .map(|b| {
            Ok((
                images_tensor(model, b.images.clone(), b.len)?,
                Tensor::new(b.labels.as_slice(), model.device())?,
            ))
        })
        .collect::<candle_core::Result<_>>()?;
    let (mut first, mut last, mut acc) = (f64::NAN, f64::NAN, 0.0);
    let mut reached = None;
    for step in 0..max_steps {
        let (x, y) = &tensors[step as usize % tensors.len()];
        let out = model.forward(x, Mode::Train, &mut rng)?;
        let loss = training_loss(&out, y, 0.3, 0.0)?;
        let value = scalar(&loss)?;
        if step == 0 {
            first = value;
        }
        last = value;
        if !value.is_finite() || value > 10.0 * first.max(1e-3) {
            break;
        }
        let grads = loss.backward()?;
        let g: Vec<Option<Tensor>> = model
            .params()
            .map(|p| grads.get(p.var.as_tensor()).cloned())
            .collect();
        opt.step(model, &g, lr)?;
        // Every so often, and at the end of a pass, the accuracy on all batches.
        if (step + 1) % tensors.len() as u64 == 0 {
            let (mut hit, mut n) = (0usize, 0usize);
            for (b, (x, _)) in batches.iter().zip(&tensors) {
                let out = model.forward(x, Mode::Infer, &mut rng)?;
                hit += correct_top1_topk(&out.main, &b.labels, 1)?.0;
                n += b.len;
            }
            acc = 100.0 * hit as f64 / n.max(1) as f64;
            if hit == n {
                reached = Some(step + 1);
                break;
            }
        }
    }
    let (ok, verdict) = match reached {
        Some(s) => (true, format!("reached 100% training accuracy on the batches in {s} steps: the network can learn; now regularise and train on everything")),
        None if !last.is_finite() || last > 10.0 * first.max(1e-3) => (false, format!("the loss exploded ({first:.3} -> {last:.3}): the learning rate {lr:.2e} is too high")),
        None if last > 0.9 * first => (false, format!("the loss did not fall ({first:.3} -> {last:.3}) in {max_steps} steps: the learning rate {lr:.2e} is too low, or gradients do not reach the weights")),
        None => (false, format!("the loss fell ({first:.3} -> {last:.3}) but accuracy stopped at {acc:.1}% after {max_steps} steps: train longer (--overfit-steps), raise the rate, or use a bigger model")),
    };
    Ok(OverfitCheck {
        steps_to_100: reached,
        first_loss: first,
        last_loss: last,
        last_accuracy: acc,
        verdict,
        ok,
    })
}

/// A learning-rate range test (Smith 2017): the rate grows exponentially
/// from `min` to `max` over `steps` steps; the loss is smoothed.
#[derive(Debug, Serialize)]
pub struct LrFind {
    /// (rate, smoothed loss) per step, until the loss diverged.
    pub points: Vec<(f64, f64)>,
    /// The rate where the smoothed loss fell fastest (steepest negative
    /// slope against log rate) before its minimum; `None` when it never fell
    /// (it rose from the first rates: they are already too high).
    pub suggested: Option<f64>,
}

pub fn lr_find(
    model: &Model,
    batches: &mut dyn Iterator<Item = Batch>,
    settings: OptimizerSettings,
    (min, max, steps): (f64, f64, u64),
) -> candle_core::Result<LrFind> {
    let mut opt = Optimizer::new(settings);
    let mut rng: rand_chacha::ChaCha8Rng = rand::SeedableRng::seed_from_u64(0);
    let factor = (max / min).powf(1.0 / steps.max(2).saturating_sub(1) as f64);
    let mut points = Vec::new();
    let (mut avg, mut best) = (0.0, f64::INFINITY);
    let beta: f64 = 0.9;
    for step in 0..steps {
        let Some(b) = batches.next() else { break };
        let lr = min * factor.powi(step as i32);
        let x = images_tensor(model, b.images, b.len)?;
        let y = Tensor::new(b.labels.as_slice(), model.device())?;
        let out = model.forward(&x, Mode::Train, &mut rng)?;
        let loss = training_loss(&out, &y, 0.3, 0.0)?;
        let value = scalar(&loss)?;
        if !value.is_finite() {
            break;
        }
        avg = beta * avg + (1.0 - beta) * value;
        let smoothed = avg / (1.0 - beta.powi(step as i32 + 1));
        if smoothed > 4.0 * best {
            break;
        }
        best = best.min(smoothed);
        points.push((lr, smoothed));
        let grads = loss.backward()?;
        let g: Vec<Option<Tensor>> = model
            .params()
            .map(|p| grads.get(p.var.as_tensor()).cloned())
            .collect();
        opt.step(model, &g, lr)?;
    }
    let suggested = suggest(&points);
    Ok(LrFind { points, suggested })
}

/// The steepest descent of the smoothed loss against log(lr), over a window
/// of a tenth of the points, before the loss's minimum: past the minimum the
/// run is already diverging, and a recovery there says nothing about the
/// rate. `None` when the loss never fell.
pub fn suggest(points: &[(f64, f64)]) -> Option<f64> {
    let lowest = points
        .iter()
        .enumerate()
        .min_by(|a, b| a.1 .1.total_cmp(&b.1 .1))
        .map_or(0, |(i, _)| i);
    let w = (points.len() / 10).max(1);
    let mut best: Option<(f64, f64)> = None;
    for i in w..=lowest.min(points.len().saturating_sub(1)) {
        let slope = (points[i].1 - points[i - w].1) / (points[i].0.ln() - points[i - w].0.ln());
        if slope < best.map_or(0.0, |b| b.0) {
            best = Some((slope, points[i - w / 2].0));
        }
    }
    best.map(|(_, rate)| rate)
}

#[cfg(test)]
mod tests {
    #[test]
    fn no_rate_is_suggested_when_the_loss_never_fell() {
        // Issue 15, item 7: rising from the first rate on.
        let rising: Vec<(f64, f64)> = (0..20)
            .map(|i| (1e-3 * 1.5f64.powi(i), 2.3 + i as f64))
            .collect();
        assert_eq!(super::suggest(&rising), None);
        // Falling fastest around 1e-2, lowest at 1e-1, then rising.
        let curve: Vec<(f64, f64)> = (0..40)
            .map(|i| {
                let lr = 1e-4 * 10f64.powf(i as f64 / 10.0);
                let x = lr.log10() + 2.0;
                (
                    lr,
                    if lr < 0.1 {
                        2.3 - 1.0 / (1.0 + (-4.0 * x).exp())
                    } else {
                        1.3 + (lr - 0.1) * 50.0
                    },
                )
            })
            .collect();
        let s = super::suggest(&curve).expect("a descent");
        assert!((3e-3..3e-2).contains(&s), "{s}");
    }
}
