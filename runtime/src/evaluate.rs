//! Evaluation on a split: loss, top-1, top-5, per-class accuracy and the
//! confusion matrix; and prediction for single images.

use crate::loss::{correct_top1_topk, cross_entropy};
use crate::model::{Mode, Model};
use candle_core::{DType, Tensor};
use data::{Normalization, Split};
use serde::Serialize;
use std::sync::Arc;

/// What `cnncost eval` reports (`--format json` prints it as is).
#[derive(Clone, Debug, Serialize)]
pub struct EvalReport {
    /// Percentages.
    pub top1: f64,
    pub top5: f64,
    /// Mean cross-entropy.
    pub loss: f64,
    pub images: usize,
    /// Per class (in the dataset's class order): percentage of its images
    /// classified correctly; null for a class with no images.
    pub per_class: Vec<Option<f64>>,
    /// confusion[true][predicted] = number of images.
    pub confusion: Vec<Vec<u64>>,
}

/// An RNG for calls that draw nothing (evaluation mode, no augmentation).
fn unused_rng() -> rand_chacha::ChaCha8Rng {
    rand::SeedableRng::seed_from_u64(0)
}

/// A batch of normalised images as an (N, C, H, W) tensor on the model's device.
pub fn images_tensor(model: &Model, images: Vec<f32>, n: usize) -> candle_core::Result<Tensor> {
    let [c, h, w] = model.input;
    Tensor::from_vec(images, (n, c, h, w), model.device())?.to_dtype(model.dtype())
}

/// Runs the model in evaluation mode over the whole split.
pub fn evaluate(
    model: &Model,
    split: &Arc<Split>,
    norm: &Normalization,
    classes: usize,
    batch_size: usize,
) -> candle_core::Result<EvalReport> {
    let loader = data::Loader::new(
        split.clone(),
        model.input,
        norm.clone(),
        None,
        batch_size,
        false,
        false,
        0,
        0,
        0,
    );
    let mut confusion = vec![vec![0u64; classes]; classes];
    let (mut top1, mut top5, mut images) = (0usize, 0usize, 0usize);
    let mut loss_sum = 0f64;
    // Evaluation draws no random numbers (no dropout when inferring).
    let mut no_rng = unused_rng();
    for batch in loader {
        let x = images_tensor(model, batch.images, batch.len)?;
        let out = model.forward(&x, Mode::Infer, &mut no_rng)?;
        let labels = Tensor::new(batch.labels.as_slice(), model.device())?;
        let loss = cross_entropy(&out.main, &labels, 0.0)?
            .to_dtype(DType::F64)?
            .to_scalar::<f64>()?;
        loss_sum += loss * batch.len as f64;
        let (a, b) = correct_top1_topk(&out.main, &batch.labels, 5)?;
        top1 += a;
        top5 += b;
        let predicted = out.main.argmax(1)?.to_vec1::<u32>()?;
        for (&t, &p) in batch.labels.iter().zip(&predicted) {
            if (t as usize) < classes && (p as usize) < classes {
                confusion[t as usize][p as usize] += 1;
            }
        }
        images += batch.len;
    }
    let pct = |a: usize, n: usize| {
        if n == 0 {
            0.0
        } else {
            100.0 * a as f64 / n as f64
        }
    };
    let per_class = confusion
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let n: u64 = row.iter().sum();
            (n > 0).then(|| 100.0 * row[i] as f64 / n as f64)
        })
        .collect();
    Ok(EvalReport {
        top1: pct(top1, images),
        top5: pct(top5, images),
        loss: if images == 0 {
            0.0
        } else {
            loss_sum / images as f64
        },
        images,
        per_class,
        confusion,
    })
}

/// Class probabilities (softmax of the main output) for one image's bytes
/// (CHW, the model's input shape).
pub fn predict(model: &Model, image: &[u8], norm: &Normalization) -> candle_core::Result<Vec<f32>> {
    let split = Split {
        images: image.to_vec(),
        labels: vec![0],
    };
    let batch = data::make_batch(&split, &[0], model.input, norm, None, &mut unused_rng());
    let x = images_tensor(model, batch.images, 1)?;
    let out = model.forward(&x, Mode::Infer, &mut unused_rng())?;
    candle_nn::ops::softmax(&out.main, 1)?
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1()
}
