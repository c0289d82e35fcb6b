//! The training loop: epochs of shuffled, augmented minibatches, an
//! optimiser step per batch with the scheduled rate, an evaluation on the
//! test split after each epoch, `metrics.jsonl`, and an atomic checkpoint
//! per epoch.
//!
//! A [`Trainer`] holds one run's state; its parts are the run's phases:
//! starting or resuming (`Trainer::new`), a step per batch, the end of an
//! epoch (evaluation, checkpoint, log lines) and the progress display.
//!
//! Every random draw comes from a seed: data order from (seed, epoch),
//! augmentation from (seed, epoch, batch), dropout from (seed, step). So a
//! run resumed from an epoch's checkpoint replays exactly what the
//! uninterrupted run did next, and two runs with one seed write identical
//! checkpoints.

use crate::checkpoint::{self, Checkpoint, CheckpointMeta, FORMAT};
use crate::config::TrainConfig;
use crate::ema::Ema;
use crate::error::{Error, Result};
use crate::evaluate::{evaluate, images_tensor};
use crate::loss::{correct_top1_topk, mixed_training_loss, scalar, training_loss};
use crate::model::{Mode, Model, Outputs};
use crate::optim::{Optimizer, OptimizerKind};
use crate::run_dir::{Intent, RunDir};
use crate::schedule::Schedule;
use candle_core::Tensor;
use data::{Batch, BatchMix, Dataset, Loader, MixedBatch, Normalization, Pca, Pipeline, Split};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
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
    /// Start a fresh run even where `out` holds one (`train --force`).
    pub force: bool,
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

/// Normalisation statistics stored in a checkpoint.
/// What one optimiser step is given besides the model and the optimiser.
pub struct StepInputs<'a, R: rand::Rng> {
    pub x: &'a Tensor,
    pub lr: f64,
    /// Clip the gradients' global norm to this.
    pub clip: Option<f64>,
    /// Dropout's masks.
    pub rng: &'a mut R,
}

/// How an optimiser step ended.
pub enum Stepped<T> {
    /// The loss, and what `read` took from the outputs.
    Done { loss: f64, read: T },
    /// The loss was not a number: nothing was updated.
    Diverged(f64),
    /// A gradient or a weight held NaN or infinite values (the loss can stay
    /// finite: a ReLU turns NaN into 0): which one, in words.
    NonFinite(String),
}

/// One optimiser step: forward in training mode, `loss` of the outputs,
/// backward, gradient clipping, update. `read` sees the outputs before the
/// forward's graph is dropped, which happens before the optimiser runs, so
/// the step's peak is the larger of the backward's and the update's
/// (docs/costs.md, "Training"; `cnncost NET --train` predicts it).
pub fn optimizer_step<R: rand::Rng, T>(
    model: &Model,
    optimizer: &mut Optimizer,
    inputs: StepInputs<R>,
    loss: impl FnOnce(&Outputs) -> Result<Tensor>,
    read: impl FnOnce(&Outputs) -> Result<T>,
) -> Result<Stepped<T>> {
    let out = model
        .forward(inputs.x, Mode::Train, inputs.rng)
        .map_err(Error::tensor("forward"))?;
    let loss = loss(&out)?;
    let loss_value = scalar(&loss).map_err(Error::tensor("loss"))?;
    if !loss_value.is_finite() {
        return Ok(Stepped::Diverged(loss_value));
    }
    let read = read(&out)?;
    let grads = loss.backward().map_err(Error::tensor("backward"))?;
    // The forward's graph (every tensor it recorded) goes before the
    // optimiser allocates.
    drop(loss);
    drop(out);
    let mut g: Vec<Option<Tensor>> = model
        .params()
        .map(|p| grads.get(p.var.as_tensor()).cloned())
        .collect();
    drop(grads);
    for (p, g) in model.params().zip(&g) {
        if let Some(g) = g {
            if !crate::kernels::update::all_finite(g).map_err(Error::tensor("gradient check"))? {
                return Ok(Stepped::NonFinite(format!("the gradient of {}", p.name)));
            }
        }
    }
    if let Some(max) = inputs.clip {
        g = clip(g, max).map_err(Error::tensor("clipping"))?;
    }
    optimizer
        .step(model, &g, inputs.lr)
        .map_err(Error::tensor("optimizer"))?;
    for p in model.params().filter(|p| !p.frozen) {
        if !crate::kernels::update::all_finite(p.var.as_tensor())
            .map_err(Error::tensor("weight check"))?
        {
            return Ok(Stepped::NonFinite(format!("the weight {}", p.name)));
        }
    }
    Ok(Stepped::Done {
        loss: loss_value,
        read,
    })
}

pub fn checkpoint_normalization(c: &Checkpoint) -> Result<Normalization> {
    Ok(Normalization {
        mean: c.required(&c.meta.mean, "mean")?.clone(),
        std: c.required(&c.meta.std, "std")?.clone(),
    })
}

/// Trains `job.model` in place. Returns the metrics of the epochs run.
pub fn train(job: &TrainJob) -> Result<Vec<EpochMetrics>> {
    Trainer::new(job)?.run()
}

/// Where a run starts: the normalisation, and the epochs and steps done.
struct Start {
    norm: Normalization,
    epoch: u64,
    step: u64,
}

/// One epoch's running totals.
struct EpochTally {
    loss_sum: f64,
    /// Hits; fractional on mixed batches.
    correct: f64,
    seen: usize,
    /// The epoch's lines of `losses.csv`.
    losses: String,
    /// Each step's loss, in order.
    step_losses: Vec<f64>,
    /// The rate of the last step.
    lr: f64,
    /// Seconds in forward, backward and step.
    train_time: f64,
}

/// One training run: the job, what was derived from its settings and data,
/// and the state that moves with each step.
pub struct Trainer<'a> {
    job: &'a TrainJob<'a>,
    /// The run directory, locked while the trainer lives.
    _dir: RunDir,
    config: &'a TrainConfig,
    schedule: Schedule<'a>,
    train_split: Arc<Split>,
    test_split: Arc<Split>,
    norm: Normalization,
    pipeline: Option<Pipeline>,
    batch_mix: Option<BatchMix>,
    optimizer: Optimizer,
    ema: Option<Ema>,
    per_epoch: u64,
    /// Steps of the whole run.
    total: u64,
    /// Epochs done before this invocation (a resumed run's checkpoint).
    first_epoch: u64,
    /// Steps done so far.
    step: u64,
    progress: Progress,
}

impl<'a> Trainer<'a> {
    /// Prepares a run: checks the settings, creates the run directory,
    /// resumes from `job.resume` if given, and trims the logs to the
    /// epochs that the starting point holds.
    pub fn new(job: &'a TrainJob<'a>) -> Result<Trainer<'a>> {
        let config = &job.config;
        config.validate()?;
        if let Some(c) = config.augment.cutout {
            let [_, h, w] = job.dataset.shape;
            if c > h.max(w) {
                return Err(Error::Config(format!(
                    "`cutout` ({c}) is larger than the images ({h}x{w}): it would blank every image"
                )));
            }
        }
        let intent = match job.resume {
            Some(_) => Intent::Resume,
            None => Intent::Fresh { force: job.force },
        };
        let dir = RunDir::open(&job.out, intent)?;
        let train_split = Arc::new(job.dataset.train.clone());
        let test_split = Arc::new(job.dataset.test.clone());
        if train_split.is_empty() {
            return Err(Error::Data(format!(
                "{}: the training split is empty",
                job.dataset.source
            )));
        }
        let mut optimizer = Optimizer::new(config.optimizer_settings());
        let start = match &job.resume {
            None => Start {
                norm: Normalization::of(&train_split, job.dataset.shape),
                epoch: 0,
                step: 0,
            },
            Some(c) => resume(job, c, &mut optimizer)?,
        };
        trim_logs(&job.out, start.epoch, start.step)?;
        // PCA lighting needs the training split's colour covariance; it is a
        // function of the data, so a resumed run recomputes the same one.
        let pca = if config.augment.needs_pca() {
            Some(Pca::of(&train_split, job.dataset.shape).ok_or_else(|| {
                Error::Data(format!(
                    "{}: PCA lighting needs RGB training images",
                    job.dataset.source
                ))
            })?)
        } else {
            None
        };
        let pipeline = config.augment.pipeline(pca.as_ref());
        let per_epoch = data::num_batches(train_split.len(), config.batch_size, false) as u64;
        let ema = match config.ema {
            Some(decay) => {
                let mut e = Ema::new(job.model, decay).map_err(Error::tensor("ema"))?;
                if let Some(c) = &job.resume {
                    e.load(job.model, &c.tensors)
                        .map_err(Error::tensor("ema"))?;
                }
                Some(e)
            }
            None => None,
        };
        Ok(Trainer {
            job,
            _dir: dir,
            config,
            schedule: config.schedule(),
            train_split,
            test_split,
            norm: start.norm,
            pipeline: (!pipeline.is_empty()).then_some(pipeline),
            batch_mix: config.augment.batch_mix(),
            optimizer,
            ema,
            per_epoch,
            total: per_epoch * config.epochs,
            first_epoch: start.epoch,
            step: start.step,
            progress: Progress {
                on: job.progress,
                epochs: config.epochs,
                per_epoch,
            },
        })
    }

    /// Runs the remaining epochs (up to `job.stop_after` of them).
    pub fn run(mut self) -> Result<Vec<EpochMetrics>> {
        let last_epoch = match self.job.stop_after {
            Some(n) => (self.first_epoch + n).min(self.config.epochs),
            None => self.config.epochs,
        };
        let mut all = Vec::new();
        for epoch in self.first_epoch..last_epoch {
            all.push(self.run_epoch(epoch)?);
        }
        Ok(all)
    }

    /// One epoch over the shuffled, augmented training split, then its end.
    fn run_epoch(&mut self, epoch: u64) -> Result<EpochMetrics> {
        let started = Instant::now();
        let loader = Loader::new(
            self.train_split.clone(),
            self.job.dataset.shape,
            self.norm.clone(),
            self.pipeline.clone(),
            self.config.batch_size,
            true,
            false,
            self.config.seed,
            epoch,
            0,
        );
        let bar = self.progress.bar(epoch);
        let mut tally = EpochTally {
            loss_sum: 0.0,
            correct: 0.0,
            seen: 0,
            losses: String::new(),
            step_losses: Vec::new(),
            lr: self.schedule.lr_at(self.step, self.per_epoch, self.total),
            train_time: 0.0,
        };
        let mut last = None;
        for (b, batch) in loader.enumerate() {
            let t0 = Instant::now();
            match self.train_step(epoch, b as u64, &batch, &mut tally) {
                Err(e @ Error::Diverged(_)) => {
                    bar.abandon();
                    return Err(e);
                }
                result => result?,
            }
            tally.train_time += t0.elapsed().as_secs_f64();
            self.progress
                .step(&bar, epoch, self.step - epoch * self.per_epoch, &tally);
            // The probe for dead ReLUs takes a full batch: on a last batch
            // of one image a narrow layer can be all zero without being
            // dead.
            if last.as_ref().is_none_or(|l: &Batch| batch.len >= l.len) {
                last = Some(batch);
            }
        }
        bar.finish_and_clear();
        let m = self.end_epoch(epoch, &tally, started)?;
        let classes = self.job.dataset.classes.len();
        if let Some(w) = stuck_at_chance(&tally.step_losses, classes, epoch) {
            eprintln!("warning: {w}");
        }
        if let Some(batch) = last {
            let model = self.job.model;
            let x =
                images_tensor(model, batch.images, batch.len).map_err(Error::tensor("batch"))?;
            let dead = model.dead_relus(&x).map_err(Error::tensor("probe"))?;
            if let Some(w) = dead_relus_warning(&dead, batch.len, epoch) {
                eprintln!("warning: {w}");
            }
        }
        Ok(m)
    }

    /// One optimiser step on `batch`, the `b`-th of `epoch`.
    fn train_step(
        &mut self,
        epoch: u64,
        b: u64,
        batch: &Batch,
        tally: &mut EpochTally,
    ) -> Result<()> {
        let (model, config, step) = (self.job.model, self.config, self.step);
        let lr = self.schedule.lr_at(step, self.per_epoch, self.total);
        tally.lr = lr;
        let mixed = self.batch_mix.as_ref().map(|m| {
            m.apply(
                batch,
                self.job.dataset.shape,
                &mut data::mix_rng(config.seed, epoch, b),
            )
        });
        let images = match &mixed {
            Some(m) => m.images.clone(),
            None => batch.images.clone(),
        };
        let x = images_tensor(model, images, batch.len).map_err(Error::tensor("batch"))?;
        if let Some(m) = self.schedule.momentum_at(step, self.total) {
            match self.optimizer.settings.kind {
                OptimizerKind::Sgd => self.optimizer.settings.momentum = m,
                _ => self.optimizer.settings.betas.0 = m,
            }
        }
        // On a mixed batch, accuracy is the lambda-weighted hit rate on
        // both label sets.
        let hit_rate = |main: &Tensor| -> Result<f64> {
            let hits = |labels: &[u32]| -> Result<f64> {
                Ok(correct_top1_topk(main, labels, 1)
                    .map_err(Error::tensor("accuracy"))?
                    .0 as f64)
            };
            match &mixed {
                None => hits(&batch.labels),
                Some(m) => {
                    let l = f64::from(m.lambda);
                    Ok(l * hits(&m.labels_a)? + (1.0 - l) * hits(&m.labels_b)?)
                }
            }
        };
        let done = optimizer_step(
            model,
            &mut self.optimizer,
            StepInputs {
                x: &x,
                lr,
                clip: config.clip_grad_norm,
                rng: &mut step_rng(config.seed, step),
            },
            |out| Self::loss((model, config), out, batch, mixed.as_ref()),
            |out| hit_rate(&out.main),
        )?;
        let (loss_value, hit) = match done {
            Stepped::Done { loss, read } => (loss, read),
            Stepped::Diverged(loss) => return Err(self.diverged(loss, epoch, lr)),
            Stepped::NonFinite(what) => {
                return Err(self.diverged_in(&format!("{what} became NaN or infinite"), epoch, lr))
            }
        };
        if let Some(e) = self.ema.as_mut() {
            e.update(model).map_err(Error::tensor("ema"))?;
        }
        tally.loss_sum += loss_value * batch.len as f64;
        tally.step_losses.push(loss_value);
        tally.correct += hit;
        tally.seen += batch.len;
        self.step += 1;
        tally
            .losses
            .push_str(&format!("{},{},{loss_value},{lr}\n", self.step, epoch + 1));
        Ok(())
    }

    /// The training loss of `out` on `batch`, or on its mixed version.
    fn loss(
        (model, config): (&Model, &TrainConfig),
        out: &Outputs,
        batch: &Batch,
        mixed: Option<&MixedBatch>,
    ) -> Result<Tensor> {
        let tensor_of =
            |labels: &[u32]| Tensor::new(labels, model.device()).map_err(Error::tensor("labels"));
        let labels = tensor_of(&batch.labels)?;
        match mixed {
            None => training_loss(out, &labels, config.aux_weight, config.label_smoothing),
            Some(m) => mixed_training_loss(
                out,
                &tensor_of(&m.labels_a)?,
                &tensor_of(&m.labels_b)?,
                f64::from(m.lambda),
                config.aux_weight,
                config.label_smoothing,
            ),
        }
        .map_err(Error::tensor("loss"))
    }

    /// The error for a loss that stopped being a number at `epoch`.
    fn diverged(&self, loss_value: f64, epoch: u64, lr: f64) -> Error {
        self.diverged_in(&format!("the training loss became {loss_value}"), epoch, lr)
    }

    /// The error for a training step that met `what` (a non-finite loss or
    /// gradient) at `epoch`.
    fn diverged_in(&self, what: &str, epoch: u64, lr: f64) -> Error {
        let kept = if self.first_epoch > 0 || epoch > 0 {
            format!(
                "the last good checkpoint ({} after epoch {epoch}) is kept",
                self.job.out.join(CHECKPOINT).display()
            )
        } else {
            "no checkpoint had been written yet".to_string()
        };
        Error::Diverged(format!(
            "{what} at epoch {} step {} (learning rate {lr:.3e}); {kept}. Try a lower --lr, a warmup (warmup_epochs), or clip_grad_norm in the config",
            epoch + 1,
            self.step + 1
        ))
    }

    /// The end of `epoch`: evaluation, checkpoint (and snapshot), then the
    /// log lines.
    fn end_epoch(&self, epoch: u64, tally: &EpochTally, started: Instant) -> Result<EpochMetrics> {
        let (model, config) = (self.job.model, self.config);
        let classes = self.job.dataset.classes.len();
        let eval = || {
            evaluate(
                model,
                &self.test_split,
                &self.norm,
                classes,
                config.eval_batch_size,
            )
        };
        let report = eval().map_err(Error::tensor("evaluation"))?;
        let ema_test_acc = match &self.ema {
            Some(e) => Some(
                e.with_averaged(model, eval)
                    .map_err(Error::tensor("ema evaluation"))?
                    .top1,
            ),
            None => None,
        };
        let seen = tally.seen;
        let m = EpochMetrics {
            epoch: epoch + 1,
            train_loss: tally.loss_sum / seen.max(1) as f64,
            train_acc: 100.0 * tally.correct / seen.max(1) as f64,
            test_loss: report.loss,
            test_acc: report.top1,
            test_top5: report.top5,
            lr: tally.lr,
            images_per_s: seen as f64 / tally.train_time.max(1e-9),
            seconds: started.elapsed().as_secs_f64(),
            ema_test_acc,
        };
        // Checkpoint first, then the metrics line: a metrics line always has
        // its checkpoint.
        self.save_checkpoints(epoch)?;
        let out = &self.job.out;
        append_line(&out.join(METRICS), &m)?;
        append_text(&out.join(LOSSES), &tally.losses)?;
        self.progress.epoch_done(&m);
        Ok(m)
    }

    /// The checkpoint after `epoch`, and with `snapshots` at a cycle's end
    /// the weights alone as `snapshot-K.safetensors`.
    fn save_checkpoints(&self, epoch: u64) -> Result<()> {
        let (model, config) = (self.job.model, self.config);
        let weights: Vec<(String, Tensor)> = model
            .tensors
            .iter()
            .map(|t| (t.name.clone(), t.var.as_tensor().clone()))
            .collect();
        let mut tensors = weights.clone();
        tensors.extend(self.optimizer.state_tensors());
        if let Some(e) = &self.ema {
            tensors.extend(e.tensors(model));
        }
        let meta = self.metadata(epoch + 1);
        checkpoint::save(&self.job.out.join(CHECKPOINT), &tensors, &meta)?;
        let per_cycle = (config.epochs / config.cycles.max(1)).max(1);
        if config.snapshots && (epoch + 1).is_multiple_of(per_cycle) {
            let k = (epoch + 1) / per_cycle;
            checkpoint::save(
                &self.job.out.join(format!("snapshot-{k}.safetensors")),
                &weights,
                &meta,
            )?;
        }
        Ok(())
    }

    /// The metadata of a checkpoint after `epoch` epochs.
    fn metadata(&self, epoch: u64) -> CheckpointMeta {
        let job = self.job;
        CheckpointMeta {
            format: Some(FORMAT.into()),
            network: Some(job.model.name.clone()),
            source_hash: Some(checkpoint::source_hash(job.source)),
            epoch: Some(epoch),
            step: Some(self.step),
            optimizer_steps: Some(self.optimizer.steps),
            seed: Some(self.config.seed),
            mean: Some(self.norm.mean.clone()),
            std: Some(self.norm.std.clone()),
            classes: Some(job.dataset.classes.clone()),
            input: Some(job.model.input.to_vec()),
            data: Some(job.dataset.source.clone()),
            config: Some(self.config.clone()),
        }
    }
}

/// Restores the model, optimiser and position of the checkpoint `c`, which
/// must come from the same network source.
fn resume(job: &TrainJob, c: &Checkpoint, optimizer: &mut Optimizer) -> Result<Start> {
    let hash = c.meta.source_hash.clone().unwrap_or_default();
    if hash != checkpoint::source_hash(job.source) {
        return Err(Error::checkpoint(&c.path, format!(
            "the checkpoint was trained from another network source (its hash {hash} is not this file's); resume with the same .net file and --set values"
        )));
    }
    job.model
        .load_weights(&c.tensors)
        .map_err(|e| Error::checkpoint(&c.path, e))?;
    let epoch = *c.required(&c.meta.epoch, "epoch")?;
    let step = *c.required(&c.meta.step, "step")?;
    let optimizer_steps = *c.required(&c.meta.optimizer_steps, "optimizer_steps")?;
    optimizer
        .load_state(job.model, &c.tensors, optimizer_steps)
        .map_err(|e| Error::checkpoint(&c.path, e))?;
    Ok(Start {
        norm: checkpoint_normalization(c)?,
        epoch,
        step,
    })
}

/// The lecture's remedies for a network that does not learn.
const REMEDIES: &str = "Try a lower --lr, a longer warmup (warmup_epochs: 0.5 in a --config \
     file), or check the initialisation (`cnncost train NET --check-init`)";

/// The lecture's first reading of a loss curve: a cross-entropy that ends
/// an epoch at ln C (C classes) means the network predicts uniformly,
/// learning nothing. "Ends" is the mean over the epoch's last tenth of
/// steps: the epoch's mean hides it when the first steps at a too-high rate
/// blew the loss up (PyTorch's runs of the default recipe without warmup,
/// tests/reference/pytorch_seeds.json, averaged 5.30 and 2.43 over epochs
/// that ended at ln 10). Within 3% of ln C is "at".
pub fn stuck_at_chance(step_losses: &[f64], classes: usize, epoch: u64) -> Option<String> {
    if classes < 2 || step_losses.is_empty() {
        return None;
    }
    let tail = &step_losses[step_losses.len() - step_losses.len().div_ceil(10)..];
    let loss = tail.iter().sum::<f64>() / tail.len() as f64;
    let chance = (classes as f64).ln();
    (loss >= 0.97 * chance && loss <= 1.03 * chance).then(|| {
        format!(
            "epoch {} ended with a training loss of {loss:.3} ({}), ln {classes} = {chance:.3}: \
             the loss of uniform guessing, the network is not learning. {REMEDIES}",
            epoch + 1,
            match tail.len() {
                1 => "its last step".to_string(),
                n => format!("the mean of its last {n} steps"),
            }
        )
    })
}

/// The warning for ReLUs whose every output was zero on the epoch's last
/// batch of `images` ([`Model::dead_relus`]); `None` when there are none.
pub fn dead_relus_warning(dead: &[String], images: usize, epoch: u64) -> Option<String> {
    let (first, rest) = dead.split_first()?;
    let names = match rest {
        [] => format!("`{first}` outputs"),
        _ => format!(
            "{} ReLU layers output ({})",
            dead.len(),
            dead.iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    Some(format!(
        "after epoch {}, {names} only zeros on the epoch's last full batch ({images} images): dead \
         ReLUs, which pass no gradient back and do not recover (often a rate too high for the \
         first steps). {REMEDIES}",
        epoch + 1
    ))
}

/// Rewrites `metrics.jsonl` and `losses.csv` in `out` keeping only the
/// lines of the first `epoch` epochs (`step` steps): a resumed run drops an
/// interrupted run's later lines; a fresh run starts them empty.
fn trim_logs(out: &Path, epoch: u64, step: u64) -> Result<()> {
    let metrics_path = out.join(METRICS);
    let mut kept = String::new();
    if epoch > 0 {
        // A log that exists but does not read (not UTF-8) is an error: dropping
        // it would lose the earlier epochs without a word.
        let text =
            match std::fs::read_to_string(&metrics_path) {
                Ok(text) => Some(text),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(Error::io(
                    &metrics_path,
                    "cannot read the run's metrics to continue them (repair or remove the file)",
                )(e)),
            };
        if let Some(text) = text {
            for line in text.lines() {
                if let Ok(m) = serde_json::from_str::<EpochMetrics>(line) {
                    if m.epoch <= epoch {
                        kept.push_str(line);
                        kept.push('\n');
                    }
                }
            }
        }
    }
    std::fs::write(&metrics_path, kept).map_err(Error::io(&metrics_path, "cannot write"))?;
    let losses_path = out.join(LOSSES);
    let mut kept = String::from("step,epoch,loss,lr\n");
    if epoch > 0 {
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
    std::fs::write(&losses_path, kept).map_err(Error::io(&losses_path, "cannot write"))
}

/// What the user sees while training: a bar per epoch on a terminal (a
/// line per tenth of an epoch in a log), and a summary per epoch.
struct Progress {
    /// Off: nothing is shown.
    on: bool,
    epochs: u64,
    per_epoch: u64,
}

impl Progress {
    fn bar(&self, epoch: u64) -> ProgressBar {
        if !self.on {
            return ProgressBar::hidden();
        }
        let b = ProgressBar::new(self.per_epoch);
        b.set_style(
            ProgressStyle::with_template("{prefix} [{bar:25}] {pos}/{len} {msg} ETA {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        b.set_prefix(format!("epoch {}/{}", epoch + 1, self.epochs));
        b
    }

    /// After a step: `done` steps of `epoch` so far.
    fn step(&self, bar: &ProgressBar, epoch: u64, done: u64, tally: &EpochTally) {
        bar.inc(1);
        let seen = tally.seen as f64;
        let status = format!(
            "loss {:.4} acc {:.1}% {:.0} img/s",
            tally.loss_sum / seen,
            100.0 * tally.correct / seen,
            seen / tally.train_time.max(1e-9)
        );
        // Without a terminal the bar is hidden: a log gets a line per
        // tenth of an epoch instead.
        let per_epoch = self.per_epoch;
        if self.on && bar.is_hidden() && done.is_multiple_of((per_epoch / 10).max(1)) {
            eprintln!(
                "epoch {}/{} {done}/{per_epoch}: {status}",
                epoch + 1,
                self.epochs
            );
        }
        bar.set_message(status);
    }

    fn epoch_done(&self, m: &EpochMetrics) {
        if !self.on {
            return;
        }
        eprintln!(
            "epoch {}/{}: train loss {:.4} acc {:.2}% | test loss {:.4} acc {:.2}% top-5 {:.2}% | lr {:.2e} | {:.0} img/s | {:.1} s",
            m.epoch,
            self.epochs,
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
}

fn append_line(path: &Path, m: &EpochMetrics) -> Result<()> {
    let line = serde_json::to_string(m)
        .map_err(|e| Error::io(path, "cannot write")(std::io::Error::other(e)))?;
    append_text(path, &format!("{line}\n"))
}

fn append_text(path: &Path, text: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(Error::io(path, "cannot write"))?;
    f.write_all(text.as_bytes())
        .map_err(Error::io(path, "cannot write"))
}
