//! The training loop: epochs of shuffled, augmented minibatches, an
//! optimiser step per batch with the scheduled rate, an evaluation on the
//! test split after each epoch, `metrics.jsonl`, and an atomic checkpoint
//! per epoch.
//!
//! Every random draw comes from a seed: data order from (seed, epoch),
//! augmentation from (seed, epoch, batch), dropout from (seed, step). So a
//! run resumed from an epoch's checkpoint replays exactly what the
//! uninterrupted run did next, and two runs with one seed write identical
//! checkpoints.

use crate::checkpoint::{self, Checkpoint, FORMAT};
use crate::config::TrainConfig;
use crate::evaluate::{evaluate, images_tensor};
use crate::loss::{correct_top1_topk, mixed_training_loss, scalar, training_loss};
use crate::model::{Mode, Model};
use crate::optim::Optimizer;
use candle_core::Tensor;
use data::{Dataset, Loader, Normalization, Pca};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// The checkpoint's file name inside the run directory.
pub const CHECKPOINT: &str = "checkpoint.safetensors";
/// One JSON line per epoch.
pub const METRICS: &str = "metrics.jsonl";
/// The training loss of every step: `step,epoch,loss,lr` (for `cnncost plot`).
pub const LOSSES: &str = "losses.csv";

/// One line of `metrics.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based.
    pub epoch: u64,
    pub train_loss: f64,
    /// Percent, on the augmented training batches as they were trained.
    pub train_acc: f64,
    pub test_loss: f64,
    pub test_acc: f64,
    pub test_top5: f64,
    /// The rate of the epoch's last step.
    pub lr: f64,
    /// Training images per second (forward, backward, step; the evaluation
    /// is not counted).
    pub images_per_s: f64,
    /// Wall time of the epoch, evaluation included.
    pub seconds: f64,
    /// With `ema`: test accuracy of the averaged weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ema_test_acc: Option<f64>,
}

/// What a training run needs.
pub struct TrainJob<'a> {
    pub model: &'a Model,
    /// The network's source text, fingerprinted into the checkpoint.
    pub source: &'a str,
    pub dataset: &'a Dataset,
    pub config: TrainConfig,
    pub out: PathBuf,
    /// A checkpoint of this run to continue from.
    pub resume: Option<Checkpoint>,
    pub progress: bool,
    /// Stop after this many epochs of this invocation, as if interrupted
    /// (for tests of resuming).
    pub stop_after: Option<u64>,
}

/// The stream of dropout masks for one step.
fn step_rng(seed: u64, step: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_d20f_0000_0001);
    rng.set_stream(step);
    rng
}

/// Gradients rescaled so that their global L2 norm is at most `max`.
fn clip(grads: Vec<Option<Tensor>>, max: f64) -> candle_core::Result<Vec<Option<Tensor>>> {
    let mut sq = 0f64;
    for g in grads.iter().flatten() {
        sq += scalar(&g.sqr()?.sum_all()?)?;
    }
    let norm = sq.sqrt();
    if norm <= max {
        return Ok(grads);
    }
    let scale = max / (norm + 1e-6);
    grads
        .into_iter()
        .map(|g| g.map(|g| g * scale).transpose())
        .collect()
}

fn err(context: &str) -> impl Fn(candle_core::Error) -> String + '_ {
    move |e| format!("{context}: {e}")
}

/// The metadata of a checkpoint after `epoch` epochs and `step` steps.
fn metadata(
    job: &TrainJob,
    norm: &Normalization,
    epoch: u64,
    step: u64,
    optimizer_steps: u64,
) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    m.insert("format".into(), FORMAT.into());
    m.insert("network".into(), job.model.name.clone());
    m.insert("source_hash".into(), checkpoint::source_hash(job.source));
    m.insert("epoch".into(), epoch.to_string());
    m.insert("step".into(), step.to_string());
    m.insert("optimizer_steps".into(), optimizer_steps.to_string());
    m.insert("seed".into(), job.config.seed.to_string());
    m.insert("mean".into(), json(&norm.mean));
    m.insert("std".into(), json(&norm.std));
    m.insert("classes".into(), json(&job.dataset.classes));
    m.insert("input".into(), json(&job.model.input.to_vec()));
    m.insert("data".into(), job.dataset.source.clone());
    m.insert("config".into(), json(&job.config));
    m
}

fn json<T: Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Normalisation statistics stored in a checkpoint.
pub fn checkpoint_normalization(c: &Checkpoint) -> Result<Normalization, String> {
    Ok(Normalization {
        mean: c.meta_json("mean")?,
        std: c.meta_json("std")?,
    })
}

/// Trains `job.model` in place. Returns the metrics of the epochs run.
pub fn train(job: &TrainJob) -> Result<Vec<EpochMetrics>, String> {
    let model = job.model;
    let config = &job.config;
    config.validate()?;
    std::fs::create_dir_all(&job.out).map_err(|e| {
        format!(
            "{}: cannot create the run directory: {e}",
            job.out.display()
        )
    })?;
    let ckpt_path = job.out.join(CHECKPOINT);
    let metrics_path = job.out.join(METRICS);
    let train_split = Arc::new(job.dataset.train.clone());
    let test_split = Arc::new(job.dataset.test.clone());
    if train_split.is_empty() {
        return Err(format!(
            "{}: the training split is empty",
            job.dataset.source
        ));
    }
    let mut optimizer = Optimizer::new(config.optimizer_settings());
    let (norm, first_epoch, mut step) = match &job.resume {
        None => (Normalization::of(&train_split, job.dataset.shape), 0, 0),
        Some(c) => {
            let hash = c.meta.get("source_hash").cloned().unwrap_or_default();
            if hash != checkpoint::source_hash(job.source) {
                return Err(format!(
                    "{}: the checkpoint was trained from another network source (its hash {hash} is not this file's); resume with the same .net file and --set values",
                    c.path.display()
                ));
            }
            model
                .load_weights(&c.tensors)
                .map_err(|e| format!("{}: {e}", c.path.display()))?;
            let epoch: u64 = c.meta_json("epoch")?;
            let step: u64 = c.meta_json("step")?;
            optimizer
                .load_state(model, &c.tensors, c.meta_json("optimizer_steps")?)
                .map_err(|e| format!("{}: {e}", c.path.display()))?;
            (checkpoint_normalization(c)?, epoch, step)
        }
    };
    // Keep the metrics of the epochs the checkpoint holds, drop any later
    // (an interrupted run's) lines.
    let mut kept = String::new();
    if first_epoch > 0 {
        if let Ok(text) = std::fs::read_to_string(&metrics_path) {
            for line in text.lines() {
                if let Ok(m) = serde_json::from_str::<EpochMetrics>(line) {
                    if m.epoch <= first_epoch {
                        kept.push_str(line);
                        kept.push('\n');
                    }
                }
            }
        }
    }
    std::fs::write(&metrics_path, kept)
        .map_err(|e| format!("{}: cannot write: {e}", metrics_path.display()))?;
    let losses_path = job.out.join(LOSSES);
    let mut kept = String::from("step,epoch,loss,lr\n");
    if first_epoch > 0 {
        if let Ok(text) = std::fs::read_to_string(&losses_path) {
            for line in text.lines().skip(1) {
                let s: Option<u64> = line.split(',').next().and_then(|v| v.parse().ok());
                if s.is_some_and(|s| s <= step) {
                    kept.push_str(line);
                    kept.push('\n');
                }
            }
        }
    }
    std::fs::write(&losses_path, kept)
        .map_err(|e| format!("{}: cannot write: {e}", losses_path.display()))?;

    // PCA lighting needs the training split's colour covariance; it is a
    // function of the data, so a resumed run recomputes the same one.
    let pca = if config.augment.needs_pca() {
        Some(Pca::of(&train_split, job.dataset.shape).ok_or_else(|| {
            format!(
                "{}: PCA lighting needs RGB training images",
                job.dataset.source
            )
        })?)
    } else {
        None
    };
    let pipeline = config.augment.pipeline(pca.as_ref());
    let pipeline = (!pipeline.is_empty()).then_some(pipeline);
    let batch_mix = config.augment.batch_mix();
    let per_epoch = data::num_batches(train_split.len(), config.batch_size, false) as u64;
    let total = per_epoch * config.epochs;
    let schedule = config.schedule();
    let classes = job.dataset.classes.len();
    let mut ema = match config.ema {
        Some(decay) => {
            let mut e = crate::ema::Ema::new(model, decay).map_err(err("ema"))?;
            if let Some(c) = &job.resume {
                e.load(model, &c.tensors).map_err(err("ema"))?;
            }
            Some(e)
        }
        None => None,
    };
    let mut all = Vec::new();
    let last_epoch = match job.stop_after {
        Some(n) => (first_epoch + n).min(config.epochs),
        None => config.epochs,
    };
    for epoch in first_epoch..last_epoch {
        let started = Instant::now();
        let loader = Loader::with_pipeline(
            train_split.clone(),
            job.dataset.shape,
            norm.clone(),
            pipeline.clone(),
            config.batch_size,
            true,
            false,
            config.seed,
            epoch,
            0,
        );
        let bar = if job.progress {
            let b = ProgressBar::new(per_epoch);
            b.set_style(
                ProgressStyle::with_template("{prefix} [{bar:25}] {pos}/{len} {msg} ETA {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            b.set_prefix(format!("epoch {}/{}", epoch + 1, config.epochs));
            b
        } else {
            ProgressBar::hidden()
        };
        let (mut loss_sum, mut correct, mut seen) = (0f64, 0f64, 0usize);
        let mut losses = String::new();
        let mut lr = schedule.lr_at(step, per_epoch, total);
        let mut train_time = 0f64;
        for (b, batch) in loader.enumerate() {
            let t0 = Instant::now();
            lr = schedule.lr_at(step, per_epoch, total);
            let mixed = batch_mix.as_ref().map(|m| {
                m.apply(
                    &batch,
                    job.dataset.shape,
                    &mut data::mix_rng(config.seed, epoch, b as u64),
                )
            });
            let images = match &mixed {
                Some(m) => m.images.clone(),
                None => batch.images.clone(),
            };
            let x = images_tensor(model, images, batch.len).map_err(err("batch"))?;
            let tensor_of =
                |labels: &[u32]| Tensor::new(labels, model.device()).map_err(err("labels"));
            let labels = tensor_of(&batch.labels)?;
            let mut rng = step_rng(config.seed, step);
            let out = model
                .forward(&x, Mode::Train, &mut rng)
                .map_err(err("forward"))?;
            let loss = match &mixed {
                None => training_loss(&out, &labels, config.aux_weight, config.label_smoothing)
                    .map_err(err("loss"))?,
                Some(m) => mixed_training_loss(
                    &out,
                    &tensor_of(&m.labels_a)?,
                    &tensor_of(&m.labels_b)?,
                    f64::from(m.lambda),
                    config.aux_weight,
                    config.label_smoothing,
                )
                .map_err(err("loss"))?,
            };
            let loss_value = scalar(&loss).map_err(err("loss"))?;
            if !loss_value.is_finite() {
                bar.abandon();
                let kept = if first_epoch > 0 || epoch > 0 {
                    format!(
                        "the last good checkpoint ({} after epoch {epoch}) is kept",
                        ckpt_path.display()
                    )
                } else {
                    "no checkpoint had been written yet".to_string()
                };
                return Err(format!(
                    "the training loss became {loss_value} at epoch {} step {} (learning rate {lr:.3e}); {kept}. Try a lower --lr, a warmup (warmup_epochs), or clip_grad_norm in the config",
                    epoch + 1,
                    step + 1
                ));
            }
            let grads = loss.backward().map_err(err("backward"))?;
            let mut g: Vec<Option<Tensor>> = model
                .params()
                .map(|p| grads.get(p.var.as_tensor()).cloned())
                .collect();
            drop(grads);
            if let Some(max) = config.clip_grad_norm {
                g = clip(g, max).map_err(err("clipping"))?;
            }
            if let Some(m) = schedule.momentum_at(step, total) {
                match optimizer.settings.kind {
                    crate::optim::OptimizerKind::Sgd => optimizer.settings.momentum = m,
                    _ => optimizer.settings.betas.0 = m,
                }
            }
            optimizer.step(model, &g, lr).map_err(err("optimizer"))?;
            if let Some(e) = ema.as_mut() {
                e.update(model).map_err(err("ema"))?;
            }
            // On a mixed batch, accuracy is the lambda-weighted hit rate on
            // both label sets.
            let hits = |labels: &[u32]| -> Result<f64, String> {
                Ok(correct_top1_topk(&out.main, labels, 1)
                    .map_err(err("accuracy"))?
                    .0 as f64)
            };
            let hit = match &mixed {
                None => hits(&batch.labels)?,
                Some(m) => {
                    let l = f64::from(m.lambda);
                    l * hits(&m.labels_a)? + (1.0 - l) * hits(&m.labels_b)?
                }
            };
            loss_sum += loss_value * batch.len as f64;
            correct += hit;
            seen += batch.len;
            step += 1;
            losses.push_str(&format!("{step},{},{loss_value},{lr}\n", epoch + 1));
            train_time += t0.elapsed().as_secs_f64();
            bar.inc(1);
            let status = format!(
                "loss {:.4} acc {:.1}% {:.0} img/s",
                loss_sum / seen as f64,
                100.0 * correct / seen as f64,
                seen as f64 / train_time.max(1e-9)
            );
            // Without a terminal the bar is hidden: a log gets a line per
            // tenth of an epoch instead.
            let done = step - epoch * per_epoch;
            if job.progress && bar.is_hidden() && done.is_multiple_of((per_epoch / 10).max(1)) {
                eprintln!(
                    "epoch {}/{} {done}/{per_epoch}: {status}",
                    epoch + 1,
                    config.epochs
                );
            }
            bar.set_message(status);
        }
        bar.finish_and_clear();
        let report = evaluate(model, &test_split, &norm, classes, config.eval_batch_size)
            .map_err(err("evaluation"))?;
        let ema_test_acc = match &ema {
            Some(e) => Some(
                e.with_averaged(model, || {
                    evaluate(model, &test_split, &norm, classes, config.eval_batch_size)
                })
                .map_err(err("ema evaluation"))?
                .top1,
            ),
            None => None,
        };
        let m = EpochMetrics {
            epoch: epoch + 1,
            train_loss: loss_sum / seen.max(1) as f64,
            train_acc: 100.0 * correct / seen.max(1) as f64,
            test_loss: report.loss,
            test_acc: report.top1,
            test_top5: report.top5,
            lr,
            images_per_s: seen as f64 / train_time.max(1e-9),
            seconds: started.elapsed().as_secs_f64(),
            ema_test_acc,
        };
        // Checkpoint first, then the metrics line: a metrics line always has
        // its checkpoint.
        let mut tensors: Vec<(String, Tensor)> = model
            .tensors
            .iter()
            .map(|t| (t.name.clone(), t.var.as_tensor().clone()))
            .collect();
        tensors.extend(optimizer.state_tensors());
        if let Some(e) = &ema {
            tensors.extend(e.tensors(model));
        }
        checkpoint::save(
            &ckpt_path,
            &tensors,
            &metadata(job, &norm, epoch + 1, step, optimizer.steps),
        )?;
        if config.snapshots
            && (epoch + 1).is_multiple_of((config.epochs / config.cycles.max(1)).max(1))
        {
            let k = (epoch + 1) / (config.epochs / config.cycles.max(1)).max(1);
            let weights: Vec<(String, Tensor)> = model
                .tensors
                .iter()
                .map(|t| (t.name.clone(), t.var.as_tensor().clone()))
                .collect();
            checkpoint::save(
                &job.out.join(format!("snapshot-{k}.safetensors")),
                &weights,
                &metadata(job, &norm, epoch + 1, step, optimizer.steps),
            )?;
        }
        append_line(&metrics_path, &m)?;
        append_text(&losses_path, &losses)?;
        if job.progress {
            eprintln!(
                "epoch {}/{}: train loss {:.4} acc {:.2}% | test loss {:.4} acc {:.2}% top-5 {:.2}% | lr {:.2e} | {:.0} img/s | {:.1} s",
                m.epoch,
                config.epochs,
                m.train_loss,
                m.train_acc,
                m.test_loss,
                m.test_acc,
                m.test_top5,
                m.lr,
                m.images_per_s,
                m.seconds
            );
            if let Some(a) = m.ema_test_acc {
                eprintln!("  moving average of the weights: test acc {a:.2}%");
            }
        }
        all.push(m);
    }
    Ok(all)
}

fn append_line(path: &Path, m: &EpochMetrics) -> Result<(), String> {
    let line = serde_json::to_string(m).map_err(|e| e.to_string())?;
    append_text(path, &format!("{line}\n"))
}

fn append_text(path: &Path, text: &str) -> Result<(), String> {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
    f.write_all(text.as_bytes())
        .map_err(|e| format!("{}: cannot write: {e}", path.display()))
}
