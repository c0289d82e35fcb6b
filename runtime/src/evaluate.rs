//! Evaluation on a split: loss, top-1, top-5, per-class accuracy and the
//! confusion matrix; and prediction for single images.

use crate::loss::{correct_top1_topk, cross_entropy};
use crate::model::{Mode, Model};
use crate::Error;
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

/// Test-time augmentation: predictions averaged (as probabilities) over
/// several views of each test image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tta {
    /// The image as it is.
    None,
    /// The image and its mirror.
    Flip,
    /// The lecture's 10 crops: the image enlarged by 8/7 (as 256 is to 224),
    /// its 4 corner crops and centre crop at the input size, and their
    /// mirrors.
    TenCrop,
    /// The image at 7/8, 1 and 5/4 of its size, and mirrored: for networks
    /// whose classifier follows global pooling, so any size goes through.
    MultiScale,
}

/// The views of one batch `x` (N, C, H, W) for `tta`.
fn views(x: &Tensor, tta: Tta) -> candle_core::Result<Vec<Tensor>> {
    let (n, c, h, w) = x.dims4()?;
    let mirror = |t: &Tensor| -> candle_core::Result<Tensor> {
        let w = t.dim(3)?;
        let idx: Vec<u32> = (0..w as u32).rev().collect();
        t.index_select(&Tensor::new(idx.as_slice(), t.device())?, 3)
    };
    // Bilinear resizing through the data crate's image ops (normalised
    // values resize like pixels: the map is linear).
    let resize = |t: &Tensor, oh: usize, ow: usize| -> candle_core::Result<Tensor> {
        let values: Vec<f32> = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
        let mut out = Vec::with_capacity(n * c * oh * ow);
        for img in values.chunks(c * h * w) {
            let image = data::Image {
                c,
                h,
                w,
                data: img.to_vec(),
            };
            out.extend(data::ops::resize(&image, oh, ow).data);
        }
        Tensor::from_vec(out, (n, c, oh, ow), t.device())?.to_dtype(t.dtype())
    };
    Ok(match tta {
        Tta::None => vec![x.clone()],
        Tta::Flip => vec![x.clone(), mirror(x)?],
        Tta::TenCrop => {
            let (bh, bw) = ((h * 8).div_ceil(7), (w * 8).div_ceil(7));
            let big = resize(x, bh, bw)?;
            let mut v = Vec::new();
            for (top, left) in [
                (0, 0),
                (0, bw - w),
                (bh - h, 0),
                (bh - h, bw - w),
                ((bh - h) / 2, (bw - w) / 2),
            ] {
                let crop = big.narrow(2, top, h)?.narrow(3, left, w)?.contiguous()?;
                v.push(mirror(&crop)?);
                v.push(crop);
            }
            v
        }
        Tta::MultiScale => {
            let mut v = Vec::new();
            for (num, den) in [(7, 8), (1, 1), (5, 4)] {
                let s = if num == den {
                    x.clone()
                } else {
                    resize(x, (h * num).div_ceil(den), (w * num).div_ceil(den))?
                };
                v.push(mirror(&s)?);
                v.push(s);
            }
            v
        }
    })
}

/// Runs the model in evaluation mode over the whole split.
pub fn evaluate(
    model: &Model,
    split: &Arc<Split>,
    norm: &Normalization,
    classes: usize,
    batch_size: usize,
) -> candle_core::Result<EvalReport> {
    evaluate_tta(model, split, norm, classes, batch_size, Tta::None)
}

/// The batches of `split` in order, normalised, unaugmented: what every
/// evaluation reads.
fn in_order(
    model: &Model,
    split: &Arc<Split>,
    norm: &Normalization,
    batch_size: usize,
) -> data::Loader {
    data::Loader::new(
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
    )
}

/// `evaluate` with test-time augmentation: the loss and accuracies are
/// those of the mean probabilities over the views.
pub fn evaluate_tta(
    model: &Model,
    split: &Arc<Split>,
    norm: &Normalization,
    classes: usize,
    batch_size: usize,
    tta: Tta,
) -> candle_core::Result<EvalReport> {
    let loader = in_order(model, split, norm, batch_size);
    let mut confusion = vec![vec![0u64; classes]; classes];
    let (mut top1, mut top5, mut images) = (0usize, 0usize, 0usize);
    let mut loss_sum = 0f64;
    // Evaluation draws no random numbers (no dropout when inferring).
    let mut no_rng = unused_rng();
    for batch in loader {
        let x = images_tensor(model, batch.images, batch.len)?;
        let labels = Tensor::new(batch.labels.as_slice(), model.device())?;
        // One view: the logits as they are (exactly what training saw);
        // several: log of the mean probability, so that cross-entropy and
        // the rankings are those of the averaged prediction.
        let vs = views(&x, tta)?;
        let scores = if vs.len() == 1 {
            model.forward(&vs[0], Mode::Infer, &mut no_rng)?.main
        } else {
            let mut sum: Option<Tensor> = None;
            for v in &vs {
                let p =
                    candle_nn::ops::softmax(&model.forward(v, Mode::Infer, &mut no_rng)?.main, 1)?;
                sum = Some(match sum {
                    None => p,
                    Some(s) => (s + p)?,
                });
            }
            let mean = (sum.expect("at least one view") / vs.len() as f64)?;
            mean.clamp(1e-30, 1.0)?.log()?
        };
        let loss = cross_entropy(&scores, &labels, 0.0)?
            .to_dtype(DType::F64)?
            .to_scalar::<f64>()?;
        loss_sum += loss * batch.len as f64;
        let (a, b) = correct_top1_topk(&scores, &batch.labels, 5)?;
        top1 += a;
        top5 += b;
        let predicted = scores.argmax(1)?.to_vec1::<u32>()?;
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

/// The softmax of the main output for every image of `split`, row by row
/// (N x classes, flattened): what an ensemble averages.
pub fn probabilities(
    model: &Model,
    split: &Arc<Split>,
    norm: &Normalization,
    batch_size: usize,
) -> candle_core::Result<Vec<f32>> {
    let loader = in_order(model, split, norm, batch_size);
    let mut out = Vec::new();
    let mut rng = unused_rng();
    for batch in loader {
        let x = images_tensor(model, batch.images, batch.len)?;
        let logits = model.forward(&x, Mode::Infer, &mut rng)?.main;
        out.extend(
            candle_nn::ops::softmax(&logits, 1)?
                .to_dtype(DType::F32)?
                .flatten_all()?
                .to_vec1::<f32>()?,
        );
    }
    Ok(out)
}

/// Top-1 and top-5 accuracy (%) of probability rows against labels.
pub fn accuracy_of(probs: &[f32], labels: &[u32], classes: usize) -> (f64, f64) {
    let (top1, top5) = crate::loss::correct_in_rows(probs, classes, labels, 5);
    let n = labels.len().max(1) as f64;
    (100.0 * top1 as f64 / n, 100.0 * top5 as f64 / n)
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

impl Tta {
    /// Whether this augmentation can run on `net`; the error says why not.
    /// Multiscale feeds other image sizes, which reach a flatten unchanged
    /// only after global pooling.
    pub fn applies_to(self, net: &dsl::Network) -> Result<(), Error> {
        if self != Tta::MultiScale {
            return Ok(());
        }
        let spatial_flatten = net.graph.node_indices().any(|n| {
            matches!(net.graph[n].op, dsl::Op::Flatten)
                && net
                    .input_shapes(n)
                    .first()
                    .is_some_and(|s| matches!(s, dsl::Shape::Image { h, w, .. } if h * w > 1))
        });
        if spatial_flatten {
            return Err(Error::Config(format!(
                "--tta multiscale feeds the network other image sizes, but {} flattens a spatial map into a fixed-size linear layer; use a network whose classifier follows global pooling (`gap`), or --tta flip / 10crop",
                net.name
            )));
        }
        Ok(())
    }
}

impl EvalReport {
    /// `eval --format json`: the report with the class names, per-class
    /// accuracies keyed by class.
    pub fn to_json(&self, classes: &[String]) -> serde_json::Value {
        let per_class: serde_json::Map<String, serde_json::Value> = classes
            .iter()
            .zip(&self.per_class)
            .map(|(c, a)| (c.clone(), serde_json::json!(a)))
            .collect();
        serde_json::json!({
            "top1": self.top1,
            "top5": self.top5,
            "loss": self.loss,
            "images": self.images,
            "classes": classes,
            "per_class": per_class,
            "confusion": self.confusion,
        })
    }

    /// `eval`'s table: a heading naming the network and the data, the
    /// accuracies and loss, the per-class accuracies and the confusion
    /// matrix.
    pub fn to_table(&self, network: &str, data: &str, classes: &[String]) -> String {
        let mut s = format!(
            "{network} on {data} (test split, {} images)\ntop-1 {:.2}%  top-5 {:.2}%  loss {:.4}\n\nper class:\n",
            self.images, self.top1, self.top5, self.loss
        );
        let width = classes.iter().map(|c| c.len()).max().unwrap_or(5).max(5);
        for (c, a) in classes.iter().zip(&self.per_class) {
            let a = a.map_or("-".to_string(), |a| format!("{a:.2}%"));
            s.push_str(&format!("  {c:<width$}  {a:>7}\n"));
        }
        s.push_str("\nconfusion (rows: true class, columns: predicted):\n");
        for (i, row) in self.confusion.iter().enumerate() {
            let cells: Vec<String> = row.iter().map(|n| format!("{n:>5}")).collect();
            s.push_str(&format!("  {:<width$} {}\n", classes[i], cells.join("")));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn tta_views_are_mirrors_crops_and_scales() {
        // One 1x7x7 image whose value is its column index.
        let x = Tensor::from_vec(
            (0..49).map(|i| (i % 7) as f32).collect::<Vec<_>>(),
            (1, 1, 7, 7),
            &Device::Cpu,
        )
        .unwrap();
        let flip = views(&x, Tta::Flip).unwrap();
        assert_eq!(flip.len(), 2);
        let row: Vec<f32> = flip[1].flatten_all().unwrap().to_vec1::<f32>().unwrap()[..7].to_vec();
        assert_eq!(row, vec![6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.0]);
        // 10 crops: the 7x7 image enlarged to 8x8, 5 crops of 7x7 and their mirrors.
        let ten = views(&x, Tta::TenCrop).unwrap();
        assert_eq!(ten.len(), 10);
        assert!(ten.iter().all(|v| v.dims() == [1, 1, 7, 7]));
        // A constant image stays constant in every view.
        let c = Tensor::full(3f32, (2, 3, 7, 7), &Device::Cpu).unwrap();
        for v in views(&c, Tta::TenCrop)
            .unwrap()
            .into_iter()
            .chain(views(&c, Tta::MultiScale).unwrap())
        {
            let vals: Vec<f32> = v.flatten_all().unwrap().to_vec1().unwrap();
            assert!(vals.iter().all(|&a| (a - 3.0).abs() < 1e-5));
        }
        let ms: Vec<Vec<usize>> = views(&x, Tta::MultiScale)
            .unwrap()
            .iter()
            .map(|v| v.dims().to_vec())
            .collect();
        assert_eq!(
            ms,
            vec![
                vec![1, 1, 7, 7],
                vec![1, 1, 7, 7],
                vec![1, 1, 7, 7],
                vec![1, 1, 7, 7],
                vec![1, 1, 9, 9],
                vec![1, 1, 9, 9]
            ]
        );
    }

    fn net(text: &str) -> dsl::Network {
        dsl::compile("t.net", text, &Default::default()).unwrap()
    }

    #[test]
    fn multiscale_needs_no_spatial_flatten() {
        // Global pooling leaves 1x1 maps: any input size reaches the classifier.
        let pooled = net("network pooled\ninput 3x8x8\nconv 4 k=3 p=1\ngap\nflatten\nlinear 2\n");
        // A flatten of 4x8x8 fixes the linear layer to 256 inputs.
        let spatial = net("network spatial\ninput 3x8x8\nconv 4 k=3 p=1\nflatten\nlinear 2\n");
        for tta in [Tta::None, Tta::Flip, Tta::TenCrop, Tta::MultiScale] {
            assert!(tta.applies_to(&pooled).is_ok(), "{tta:?}");
        }
        for tta in [Tta::None, Tta::Flip, Tta::TenCrop] {
            assert!(tta.applies_to(&spatial).is_ok(), "{tta:?}");
        }
        let e = Tta::MultiScale
            .applies_to(&spatial)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(
                "--tta multiscale feeds the network other image sizes, but spatial flattens"
            ),
            "{e}"
        );
    }

    #[test]
    fn reports_render_as_table_and_json() {
        // 3 images of class `a` (2 right), 1 of `bb` (right), none of `c`.
        let r = EvalReport {
            top1: 75.0,
            top5: 100.0,
            loss: 0.5,
            images: 4,
            per_class: vec![Some(200.0 / 3.0), Some(100.0), None],
            confusion: vec![vec![2, 1, 0], vec![0, 1, 0], vec![0, 0, 0]],
        };
        let classes: Vec<String> = ["a", "bb", "c"].map(String::from).to_vec();
        assert_eq!(
            r.to_table("net", "synthetic:4", &classes),
            "net on synthetic:4 (test split, 4 images)\n\
             top-1 75.00%  top-5 100.00%  loss 0.5000\n\n\
             per class:\n\
            \x20 a       66.67%\n\
            \x20 bb     100.00%\n\
            \x20 c            -\n\n\
             confusion (rows: true class, columns: predicted):\n\
            \x20 a         2    1    0\n\
            \x20 bb        0    1    0\n\
            \x20 c         0    0    0\n"
        );
        let j = r.to_json(&classes);
        assert_eq!(j["top1"], 75.0);
        assert_eq!(j["images"], 4);
        assert_eq!(j["classes"], serde_json::json!(["a", "bb", "c"]));
        assert_eq!(j["per_class"]["bb"], 100.0);
        assert!(j["per_class"]["c"].is_null());
        assert_eq!(j["confusion"][0], serde_json::json!([2, 1, 0]));
        let keys: Vec<&String> = j.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "top1",
                "top5",
                "loss",
                "images",
                "classes",
                "per_class",
                "confusion"
            ]
        );
    }
}
