//! Training settings: a YAML file (`--config train.yaml`), then the
//! command line's flags over it. Unknown keys are errors, so a typo cannot
//! silently leave a default in place.

use crate::error::{Error, Result};
use crate::optim::{OptimizerKind, OptimizerSettings};
use crate::schedule::{Schedule, ScheduleKind};
pub use data::AugmentConfig;
use serde::{Deserialize, Serialize};

/// serde_yaml's message, where it misleads, said plainly: a number too
/// large for a float (`1e400`) reaches serde as a string.
fn explain_yaml_error(message: &str) -> String {
    let quoted = message
        .split_once("invalid type: string \"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(s, _)| s);
    match quoted {
        Some(s) if s.parse::<f64>().is_ok_and(f64::is_infinite) => {
            let at = message.rsplit_once(" at line ").map_or("", |(_, at)| at);
            format!(
                "`{s}` is too large for a number (the largest is about 1.8e308){}",
                if at.is_empty() {
                    String::new()
                } else {
                    format!(", at line {at}")
                }
            )
        }
        _ => message.to_string(),
    }
}

/// Settings problems (`; `-joined, each naming its `key`), one per line,
/// each at `NAME:LINE` where the file `name` (text `text`) sets the key: the
/// place to change.
fn located(problems: &str, name: &str, text: &str) -> String {
    problems
        .split("; ")
        .map(|p| {
            let key = p.split('`').nth(1);
            let line = key.and_then(|k| {
                text.lines().position(|l| {
                    l.trim_start()
                        .strip_prefix(k)
                        .is_some_and(|r| r.trim_start().starts_with(':'))
                })
            });
            match line {
                Some(i) => format!("{name}:{}: {p}", i + 1),
                None => format!("{name}: {p}"),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The default warmup, in epochs: with `cnncost train`'s default recipe
/// (SGD 0.1, momentum 0.9, cosine, batch 128), LeNet-5 on MNIST failed to
/// learn in one epoch on 1 seed of 10 without it (11.35%, the loss stuck at
/// ln 10) and learned on all 10 with it (docs/training.md, "Defaults").
pub const DEFAULT_WARMUP_EPOCHS: f64 = 0.2;

/// Every training setting, with its default. docs/training.md explains each.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    pub epochs: u64,
    pub batch_size: usize,
    /// Batch size for the evaluation after each epoch.
    pub eval_batch_size: usize,
    pub seed: u64,
    pub optimizer: OptimizerKind,
    /// Base (or peak, for `onecycle`) learning rate; by default 0.1 for SGD
    /// and 0.001 for Adam and AdamW.
    pub lr: Option<f64>,
    pub momentum: f64,
    pub nesterov: bool,
    /// L2 decay for SGD and Adam, decoupled decay for AdamW; by default 5e-4
    /// for SGD, 0 for Adam, 0.01 for AdamW (PyTorch's AdamW default).
    pub weight_decay: Option<f64>,
    pub betas: (f64, f64),
    pub eps: f64,
    pub schedule: ScheduleKind,
    /// `step` and `multistep`: the factor at each milestone.
    pub gamma: f64,
    /// `step`: epochs between decays.
    pub step_size: u64,
    /// `multistep`: the epochs at which the rate is multiplied by `gamma`.
    pub milestones: Vec<u64>,
    /// `cosine`: the final rate.
    pub min_lr: f64,
    /// `onecycle`: the fraction of steps spent warming up to the peak.
    pub pct_start: f64,
    /// `onecycle`: the starting rate is lr / div_factor ...
    pub div_factor: f64,
    /// ... and the final one that over final_div_factor.
    pub final_div_factor: f64,
    /// `onecycle`: cycle the momentum (Adam's beta1) inversely to the rate
    /// between these two values, as PyTorch's OneCycleLR does by default;
    /// `null` keeps it fixed.
    pub cycle_momentum: Option<(f64, f64)>,
    /// A linear warmup over this many epochs, on top of any schedule; by
    /// default [`DEFAULT_WARMUP_EPOCHS`], none for `onecycle` (which rises
    /// from a low rate itself).
    pub warmup_epochs: Option<f64>,
    /// `cosine_restarts`: cycles of cosine annealing; `epochs` must be a
    /// multiple. With `snapshots`, the weights at each cycle's end are kept.
    pub cycles: u64,
    /// Keep `snapshot-K.safetensors` at the end of every cycle (snapshot
    /// ensembles, Huang et al. 2017).
    pub snapshots: bool,
    pub label_smoothing: f64,
    /// Rescale the gradients when their global L2 norm exceeds this.
    pub clip_grad_norm: Option<f64>,
    /// Weight of each auxiliary head's loss (GoogLeNet's 0.3).
    pub aux_weight: f64,
    /// Keep an exponential moving average of the weights with this decay
    /// (0.999), evaluated beside the raw weights after each epoch.
    pub ema: Option<f64>,
    /// Transfer learning: start from these weights (a checkpoint, or a
    /// safetensors / .pth state dict under the network's names) instead of
    /// the initialisation; ignored when resuming.
    pub init: Option<String>,
    /// Leave the last linear layer at its fresh initialisation (a new
    /// number of classes) when loading `init`.
    pub replace_head: bool,
    /// Ops (by dotted name prefix) whose weights stay fixed; their BN keeps
    /// evaluation mode.
    pub freeze: Vec<String>,
    /// Learning-rate factor for everything but the last linear layer (0.1:
    /// fine-tune the backbone at a tenth of the head's rate).
    pub backbone_lr_scale: f64,
    /// Training-split augmentation (the data crate's pipeline: flip, crop,
    /// random resized crop, scale jitter, colour jitter, PCA lighting,
    /// RandAugment, Cutout, and Mixup or CutMix per batch).
    pub augment: AugmentConfig,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            batch_size: 128,
            eval_batch_size: 256,
            seed: 0,
            optimizer: OptimizerKind::Sgd,
            lr: None,
            momentum: 0.9,
            nesterov: false,
            weight_decay: None,
            betas: (0.9, 0.999),
            eps: 1e-8,
            schedule: ScheduleKind::Cosine,
            gamma: 0.1,
            step_size: 30,
            milestones: Vec::new(),
            min_lr: 0.0,
            pct_start: 0.3,
            div_factor: 25.0,
            final_div_factor: 1e4,
            cycle_momentum: Some((0.85, 0.95)),
            warmup_epochs: None,
            cycles: 1,
            snapshots: false,
            label_smoothing: 0.0,
            clip_grad_norm: None,
            aux_weight: 0.3,
            ema: None,
            init: None,
            replace_head: false,
            freeze: Vec::new(),
            backbone_lr_scale: 1.0,
            augment: AugmentConfig::default(),
        }
    }
}

impl TrainConfig {
    /// Reads a YAML file; errors name the file and, from serde_yaml, the
    /// line and column.
    pub fn from_yaml(name: &str, text: &str) -> Result<TrainConfig> {
        let c: TrainConfig = serde_yaml::from_str(text).map_err(|e| {
            Error::Config(format!("{name}: {}", explain_yaml_error(&e.to_string())))
        })?;
        c.validate()
            .map_err(|e| Error::Config(located(&e.to_string(), name, text)))?;
        Ok(c)
    }

    pub fn lr(&self) -> f64 {
        self.lr.unwrap_or(match self.optimizer {
            OptimizerKind::Sgd => 0.1,
            OptimizerKind::Adam | OptimizerKind::Adamw => 1e-3,
        })
    }

    /// The warmup in epochs, the default resolved.
    pub fn warmup_epochs(&self) -> f64 {
        self.warmup_epochs.unwrap_or(match self.schedule {
            ScheduleKind::Onecycle => 0.0,
            ScheduleKind::Constant
            | ScheduleKind::Step
            | ScheduleKind::Multistep
            | ScheduleKind::Cosine
            | ScheduleKind::CosineRestarts => DEFAULT_WARMUP_EPOCHS,
        })
    }

    pub fn weight_decay(&self) -> f64 {
        self.weight_decay.unwrap_or(match self.optimizer {
            OptimizerKind::Sgd => 5e-4,
            OptimizerKind::Adam => 0.0,
            OptimizerKind::Adamw => 0.01,
        })
    }

    /// Settings that make no sense, said before a run starts.
    pub fn validate(&self) -> Result<()> {
        let mut problems = Vec::new();
        if self.epochs == 0 {
            problems.push("`epochs` must be at least 1".to_string());
        }
        if self.batch_size == 0 || self.eval_batch_size == 0 {
            problems.push("batch sizes must be at least 1".to_string());
        }
        let lr = self.lr();
        if !(lr.is_finite() && lr > 0.0) {
            problems.push(format!("`lr` must be a positive number, not {lr}"));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            problems.push(format!(
                "`momentum` must be in [0, 1), not {}",
                self.momentum
            ));
        }
        if self.nesterov && self.momentum == 0.0 {
            problems.push("`nesterov` needs a non-zero `momentum`".to_string());
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            problems.push(format!(
                "`label_smoothing` must be in [0, 1), not {}",
                self.label_smoothing
            ));
        }
        if !(self.pct_start > 0.0 && self.pct_start < 1.0) {
            problems.push(format!(
                "`pct_start` must be in (0, 1), not {}",
                self.pct_start
            ));
        }
        let wd = self.weight_decay();
        if !(wd.is_finite() && wd >= 0.0) {
            problems.push(format!("`weight_decay` must be a number >= 0, not {wd}"));
        }
        if !(self.gamma.is_finite() && self.gamma > 0.0) {
            problems.push(format!(
                "`gamma` must be a positive number, not {}",
                self.gamma
            ));
        }
        if self.schedule == ScheduleKind::Step && self.step_size == 0 {
            problems.push("`step_size` must be at least 1 epoch".to_string());
        }
        if self.milestones.windows(2).any(|w| w[0] >= w[1]) {
            problems.push(format!(
                "`milestones` must increase, epoch after epoch: {:?}",
                self.milestones
            ));
        }
        if !(self.min_lr.is_finite() && self.min_lr >= 0.0) {
            problems.push(format!(
                "`min_lr` must be a number >= 0, not {}",
                self.min_lr
            ));
        }
        let warmup = self.warmup_epochs();
        if !(warmup.is_finite() && warmup >= 0.0) {
            problems.push(format!(
                "`warmup_epochs` must be a number >= 0, not {warmup}"
            ));
        } else if warmup >= self.epochs as f64 && self.epochs > 0 {
            problems.push(format!(
                "`warmup_epochs` ({warmup}) must be shorter than the run (`epochs`: {})",
                self.epochs
            ));
        }
        for (name, v) in [
            ("div_factor", self.div_factor),
            ("final_div_factor", self.final_div_factor),
        ] {
            if !(v.is_finite() && v >= 1.0) {
                problems.push(format!("`{name}` must be a number >= 1, not {v}"));
            }
        }
        if let Some(c) = self.clip_grad_norm {
            if c.is_nan() || c <= 0.0 {
                problems.push(format!("`clip_grad_norm` must be positive, not {c}"));
            }
        }
        if !(self.backbone_lr_scale >= 0.0 && self.backbone_lr_scale.is_finite()) {
            problems.push(format!(
                "`backbone_lr_scale` must be a number >= 0, not {}",
                self.backbone_lr_scale
            ));
        }
        if self.schedule == ScheduleKind::CosineRestarts
            && (self.cycles == 0 || !self.epochs.is_multiple_of(self.cycles))
        {
            problems.push(format!(
                "`cosine_restarts` needs `epochs` ({}) to be a multiple of `cycles` ({})",
                self.epochs, self.cycles
            ));
        }
        if self.snapshots && self.schedule != ScheduleKind::CosineRestarts {
            problems.push("`snapshots` needs `schedule: cosine_restarts`".to_string());
        }
        if let Some((a, b)) = self.cycle_momentum {
            if !(0.0..1.0).contains(&a) || !(0.0..1.0).contains(&b) || a > b {
                problems.push(format!(
                    "`cycle_momentum` must be [low, high] with 0 <= low <= high < 1, not [{a}, {b}]"
                ));
            }
        }
        if let Some(d) = self.ema {
            if !(0.0..1.0).contains(&d) {
                problems.push(format!("`ema` must be in [0, 1), not {d}"));
            }
        }
        if let Err(e) = self.augment.validate() {
            problems.push(format!("augment: {e}"));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Config(problems.join("; ")))
        }
    }

    pub fn optimizer_settings(&self) -> OptimizerSettings {
        OptimizerSettings {
            kind: self.optimizer,
            momentum: self.momentum,
            nesterov: self.nesterov,
            weight_decay: self.weight_decay(),
            betas: self.betas,
            eps: self.eps,
        }
    }

    pub fn schedule(&self) -> Schedule<'_> {
        Schedule::new(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_too_large_is_named_a_number() {
        let e = TrainConfig::from_yaml("t.yaml", "epochs: 2\nlr: 1e400\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("`1e400` is too large for a number"), "{e}");
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn settings_out_of_range_are_each_named() {
        // Issue 15, item 7: each of these ran before, to a diverged or a
        // meaningless run.
        for (yaml, named) in [
            ("weight_decay: -1", "`weight_decay`"),
            ("schedule: step\nstep_size: 0", "`step_size`"),
            ("schedule: multistep\nmilestones: [30, 10]", "`milestones`"),
            ("epochs: 5\nwarmup_epochs: 5", "`warmup_epochs`"),
            ("gamma: 0", "`gamma`"),
            ("schedule: onecycle\ndiv_factor: 0.5", "`div_factor`"),
        ] {
            let e = TrainConfig::from_yaml("t.yaml", yaml)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            let line = yaml.lines().count();
            assert!(
                e.contains(&format!("t.yaml:{line}: {named}")),
                "{yaml}: {e}"
            );
        }
        TrainConfig::default().validate().unwrap();
    }

    #[test]
    fn the_analyzers_default_optimizer_is_trains() {
        // `cnncost NET --train` counts what `cnncost train` runs by default.
        assert_eq!(
            TrainConfig::default().optimizer_settings().plan(),
            dsl::plan::Optimizer::default()
        );
    }

    #[test]
    fn yaml_sets_what_it_names_and_defaults_the_rest() {
        let c = TrainConfig::from_yaml(
            "t.yaml",
            "epochs: 3\noptimizer: adamw\nschedule: onecycle\naugment:\n  flip: true\n",
        )
        .unwrap();
        assert_eq!(c.epochs, 3);
        assert_eq!(c.optimizer, OptimizerKind::Adamw);
        assert_eq!(c.lr(), 1e-3);
        assert_eq!(c.weight_decay(), 0.01);
        assert!(c.augment.flip);
        assert_eq!(c.augment.crop_padding, 0);
        assert_eq!(c.batch_size, 128);
        assert_eq!(c.cycle_momentum, Some((0.85, 0.95)));
        let fixed =
            TrainConfig::from_yaml("t.yaml", "schedule: onecycle\ncycle_momentum: null\n").unwrap();
        assert_eq!(fixed.cycle_momentum, None);
        let own = TrainConfig::from_yaml("t.yaml", "cycle_momentum: [0.8, 0.9]\n").unwrap();
        assert_eq!(own.cycle_momentum, Some((0.8, 0.9)));
        assert!(TrainConfig::from_yaml("t.yaml", "cycle_momentum: [0.9, 0.8]\n").is_err());
    }

    #[test]
    fn a_misspelt_key_is_an_error_with_its_place() {
        let e = TrainConfig::from_yaml("t.yaml", "epochs: 3\nlearning_rate: 0.1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `learning_rate`"), "{e}");
        assert!(e.contains("t.yaml") && e.contains("line 2"), "{e}");
        let e = TrainConfig::from_yaml("t.yaml", "optimizer: sgdd\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("sgdd"), "{e}");
        let e = TrainConfig::from_yaml("t.yaml", "lr: -1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`lr` must be a positive number"), "{e}");
    }
}
