//! Learning-rate schedules, evaluated per step (candle has none).
//!
//! Epoch-based schedules (`step`, `multistep`) change the rate at epoch
//! boundaries, as PyTorch's schedulers stepped once per epoch; `cosine` and
//! `onecycle` move every step (PyTorch's `OneCycleLR` formula, cosine
//! annealing). A linear warmup multiplies any of them over its first steps.

use crate::config::TrainConfig;
use serde::{Deserialize, Serialize};
use std::f64::consts::PI;

/// Spelt in settings as in `NAMES` (snake case, as docs/training.md writes
/// them); `cosinerestarts`, the spelling before, is still read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
    Constant,
    Step,
    Multistep,
    Cosine,
    /// Cosine annealing restarted `cycles` times (SGDR, Loshchilov and
    /// Hutter 2017): the snapshot ensembles' schedule.
    #[serde(alias = "cosinerestarts")]
    CosineRestarts,
    Onecycle,
}

impl ScheduleKind {
    pub const NAMES: [(&'static str, ScheduleKind); 6] = [
        ("constant", ScheduleKind::Constant),
        ("step", ScheduleKind::Step),
        ("multistep", ScheduleKind::Multistep),
        ("cosine", ScheduleKind::Cosine),
        ("cosine_restarts", ScheduleKind::CosineRestarts),
        ("onecycle", ScheduleKind::Onecycle),
    ];
}

/// A schedule: a view of the training settings that shape the rate
/// (`schedule`, `lr`, `gamma`, `step_size`, `milestones`, `min_lr`,
/// `pct_start`, `div_factor`, `final_div_factor`, `warmup_epochs`,
/// `cycles`, `cycle_momentum`; `TrainConfig` says what each means).
///
/// `onecycle` with `cycle_momentum` also runs the momentum (Adam's beta1)
/// from the high value down to the low one while the rate rises, and back
/// up while it falls, as PyTorch's OneCycleLR.
#[derive(Clone, Copy, Debug)]
pub struct Schedule<'a> {
    config: &'a TrainConfig,
}

/// PyTorch's `_annealing_cos`: from `start` at pct 0 to `end` at pct 1.
fn annealing_cos(start: f64, end: f64, pct: f64) -> f64 {
    end + (start - end) / 2.0 * ((PI * pct).cos() + 1.0)
}

impl<'a> Schedule<'a> {
    pub fn new(config: &'a TrainConfig) -> Schedule<'a> {
        Schedule { config }
    }

    /// The momentum for step `step` when the schedule cycles it (`onecycle`
    /// with `cycle_momentum`), else None: the optimiser's own.
    pub fn momentum_at(&self, step: u64, total: u64) -> Option<f64> {
        let c = self.config;
        let (base, max) = c.cycle_momentum?;
        if c.schedule != ScheduleKind::Onecycle {
            return None;
        }
        let total = total.max(1);
        let up_end = c.pct_start * total as f64 - 1.0;
        let down_end = total as f64 - 1.0;
        let s = step as f64;
        Some(if s <= up_end {
            annealing_cos(max, base, if up_end > 0.0 { s / up_end } else { 1.0 })
        } else {
            let pct = ((s - up_end) / (down_end - up_end).max(1e-12)).min(1.0);
            annealing_cos(base, max, pct)
        })
    }

    /// The rate for step `step` (0-based) of a run of `total` steps with
    /// `per_epoch` steps per epoch.
    pub fn lr_at(&self, step: u64, per_epoch: u64, total: u64) -> f64 {
        let per_epoch = per_epoch.max(1);
        let total = total.max(1);
        let epoch = step / per_epoch;
        let c = self.config;
        let lr = c.lr();
        let base = match c.schedule {
            ScheduleKind::Constant => lr,
            ScheduleKind::Step => {
                let k = epoch / c.step_size.max(1);
                lr * c.gamma.powi(k.min(i32::MAX as u64) as i32)
            }
            ScheduleKind::Multistep => {
                let k = c.milestones.iter().filter(|&&m| m <= epoch).count();
                lr * c.gamma.powi(k as i32)
            }
            ScheduleKind::Cosine => {
                let t = (step as f64 / total as f64).min(1.0);
                c.min_lr + (lr - c.min_lr) * (1.0 + (PI * t).cos()) / 2.0
            }
            ScheduleKind::CosineRestarts => {
                let per_cycle = (total / c.cycles.max(1)).max(1);
                let t = ((step % per_cycle) as f64 / per_cycle as f64).min(1.0);
                c.min_lr + (lr - c.min_lr) * (1.0 + (PI * t).cos()) / 2.0
            }
            ScheduleKind::Onecycle => {
                let initial = lr / c.div_factor;
                let min = initial / c.final_div_factor;
                let up_end = c.pct_start * total as f64 - 1.0;
                let down_end = total as f64 - 1.0;
                let s = step as f64;
                if s <= up_end {
                    annealing_cos(initial, lr, if up_end > 0.0 { s / up_end } else { 1.0 })
                } else {
                    let pct = ((s - up_end) / (down_end - up_end).max(1e-12)).min(1.0);
                    annealing_cos(lr, min, pct)
                }
            }
        };
        let warmup = (c.warmup_epochs() * per_epoch as f64).round();
        if warmup > 0.0 && (step as f64) < warmup {
            base * (step as f64 + 1.0) / warmup
        } else {
            base
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(kind: ScheduleKind) -> TrainConfig {
        TrainConfig {
            schedule: kind,
            lr: Some(0.1),
            gamma: 0.1,
            step_size: 2,
            milestones: vec![3, 5],
            min_lr: 0.0,
            pct_start: 0.25,
            div_factor: 25.0,
            final_div_factor: 1e4,
            warmup_epochs: Some(0.0),
            cycles: 2,
            cycle_momentum: Some((0.85, 0.95)),
            ..TrainConfig::default()
        }
    }

    #[test]
    fn step_and_multistep_change_at_epoch_boundaries() {
        let s_config = config(ScheduleKind::Step);
        let s = Schedule::new(&s_config);
        // 10 steps per epoch, step_size 2: epochs 0-1 at 0.1, 2-3 at 0.01.
        assert_eq!(s.lr_at(19, 10, 100), 0.1);
        assert!((s.lr_at(20, 10, 100) - 0.01).abs() < 1e-15);
        let m_config = config(ScheduleKind::Multistep);
        let m = Schedule::new(&m_config);
        assert_eq!(m.lr_at(29, 10, 100), 0.1);
        assert!((m.lr_at(30, 10, 100) - 0.01).abs() < 1e-15);
        assert!((m.lr_at(50, 10, 100) - 0.001).abs() < 1e-15);
    }

    #[test]
    fn onecycle_follows_pytorch() {
        // PyTorch OneCycleLR(max_lr=0.1, total_steps=100, pct_start=0.25):
        // starts at max_lr/25 = 0.004, peaks at step 24 (0.25*100 - 1), ends
        // at 0.004/1e4 = 4e-7 on the last step.
        let s_config = config(ScheduleKind::Onecycle);
        let s = Schedule::new(&s_config);
        assert!((s.lr_at(0, 10, 100) - 0.004).abs() < 1e-15);
        assert!((s.lr_at(24, 10, 100) - 0.1).abs() < 1e-15);
        assert!((s.lr_at(99, 10, 100) - 4e-7).abs() < 1e-15);
        // Half-way up the cosine: the mean of start and peak.
        assert!((s.lr_at(12, 10, 100) - 0.052).abs() < 1e-12);
    }

    #[test]
    fn onecycle_cycles_momentum_against_the_rate() {
        // PyTorch: max_momentum at the start, base at the rate's peak,
        // max again at the end.
        let s_config = config(ScheduleKind::Onecycle);
        let s = Schedule::new(&s_config);
        assert!((s.momentum_at(0, 100).unwrap() - 0.95).abs() < 1e-15);
        assert!((s.momentum_at(24, 100).unwrap() - 0.85).abs() < 1e-15);
        assert!((s.momentum_at(99, 100).unwrap() - 0.95).abs() < 1e-15);
        assert!((s.momentum_at(12, 100).unwrap() - 0.90).abs() < 1e-12);
        let cosine = config(ScheduleKind::Cosine);
        assert_eq!(Schedule::new(&cosine).momentum_at(0, 100), None);
    }

    #[test]
    fn settings_spell_every_schedule_as_its_name() {
        // docs/training.md and the parser share one spelling (issue 15, item 8).
        for (name, kind) in ScheduleKind::NAMES {
            let parsed: ScheduleKind = serde_yaml::from_str(name).unwrap();
            assert_eq!(parsed, kind, "{name}");
            assert_eq!(serde_yaml::to_string(&kind).unwrap().trim(), name);
        }
        let old: ScheduleKind = serde_yaml::from_str("cosinerestarts").unwrap();
        assert_eq!(old, ScheduleKind::CosineRestarts);
    }

    #[test]
    fn cosine_restarts_start_each_cycle_at_the_base_rate() {
        let s_config = config(ScheduleKind::CosineRestarts);
        let s = Schedule::new(&s_config);
        // 100 steps in 2 cycles of 50.
        assert_eq!(s.lr_at(0, 10, 100), 0.1);
        assert!((s.lr_at(25, 10, 100) - 0.05).abs() < 1e-15);
        assert!(s.lr_at(49, 10, 100) < 1e-3);
        assert_eq!(s.lr_at(50, 10, 100), 0.1);
    }

    #[test]
    fn cosine_and_warmup() {
        let c_config = config(ScheduleKind::Cosine);
        let c = Schedule::new(&c_config);
        assert_eq!(c.lr_at(0, 10, 100), 0.1);
        assert!((c.lr_at(50, 10, 100) - 0.05).abs() < 1e-15);
        let mut w_config = config(ScheduleKind::Constant);
        w_config.warmup_epochs = Some(1.0);
        let w = Schedule::new(&w_config);
        assert!((w.lr_at(0, 10, 100) - 0.01).abs() < 1e-15);
        assert!((w.lr_at(9, 10, 100) - 0.1).abs() < 1e-15);
        assert_eq!(w.lr_at(10, 10, 100), 0.1);
    }
}
