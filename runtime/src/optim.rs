//! Optimisers with PyTorch's update rules and state we can checkpoint
//! (candle's SGD has no momentum or weight decay, and its AdamW keeps its
//! state private).
//!
//! - SGD: g = grad + wd*p; buf = g on the first step, else momentum*buf + g;
//!   the step is buf, or g + momentum*buf with Nesterov; p -= lr*step.
//! - Adam: L2 decay added to the gradient; AdamW: p *= 1 - lr*wd first
//!   (decoupled, Loshchilov and Hutter). Both: m, v with bias correction,
//!   p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps), as PyTorch.

use crate::error::Error;
use crate::kernels::update::{self, Update};
use crate::model::Model;
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Sgd,
    Adam,
    Adamw,
}

impl OptimizerKind {
    pub const NAMES: [(&'static str, OptimizerKind); 3] = [
        ("sgd", OptimizerKind::Sgd),
        ("adam", OptimizerKind::Adam),
        ("adamw", OptimizerKind::Adamw),
    ];
    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("?", |(n, _)| n)
    }
}

/// An optimiser's settings (the learning rate comes from the schedule).
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerSettings {
    pub kind: OptimizerKind,
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    pub betas: (f64, f64),
    pub eps: f64,
}

/// The names of a parameter's state tensors in a checkpoint.
impl OptimizerSettings {
    /// The optimiser as the execution plan names it, for the analyzer's
    /// count of its state and step (`cnncost NET --train --optimizer`).
    pub fn plan(&self) -> dsl::plan::Optimizer {
        use dsl::plan::Optimizer as P;
        match self.kind {
            OptimizerKind::Sgd if self.momentum == 0.0 => P::Sgd,
            OptimizerKind::Sgd if self.nesterov => P::Nesterov,
            OptimizerKind::Sgd => P::Momentum,
            OptimizerKind::Adam => P::Adam,
            OptimizerKind::Adamw => P::Adamw,
        }
    }
}

fn state_names(kind: OptimizerKind) -> &'static [&'static str] {
    match kind {
        OptimizerKind::Sgd => &["momentum_buffer"],
        OptimizerKind::Adam | OptimizerKind::Adamw => &["exp_avg", "exp_avg_sq"],
    }
}

pub struct Optimizer {
    pub settings: OptimizerSettings,
    /// Steps taken (Adam's t).
    pub steps: u64,
    /// Per parameter name, its state tensors (see `state_names`).
    state: HashMap<String, Vec<Tensor>>,
}

impl Optimizer {
    pub fn new(settings: OptimizerSettings) -> Optimizer {
        Optimizer {
            settings,
            steps: 0,
            state: HashMap::new(),
        }
    }

    /// One update of every parameter that has a gradient. `grads[i]` is the
    /// gradient of the i-th of `model.params()`.
    pub fn step(
        &mut self,
        model: &Model,
        grads: &[Option<Tensor>],
        lr: f64,
    ) -> candle_core::Result<()> {
        self.steps += 1;
        let s = self.settings.clone();
        let t = self.steps as i32;
        for (param, grad) in model.params().zip(grads) {
            let Some(grad) = grad else { continue };
            if param.frozen {
                continue;
            }
            let lr = lr * param.lr_scale;
            let p = param.var.as_tensor();
            let grad = grad.detach().contiguous()?;
            // The state starts at zero: the in-place rules then give PyTorch's first
            // step exactly (buf = g; m = g·(1−β₁); v = g²·(1−β₂)).
            let fresh = || Tensor::zeros_like(p);
            let wd = s.weight_decay;
            match s.kind {
                OptimizerKind::Sgd => {
                    let buf = if s.momentum != 0.0 {
                        let state = match self.state.remove(&param.name) {
                            Some(st) => st,
                            None => vec![fresh()?],
                        };
                        update::apply(
                            &state[0],
                            &grad,
                            p,
                            &Update::MomentumBuffer {
                                momentum: s.momentum,
                                weight_decay: wd,
                            },
                        )?;
                        Some(state)
                    } else {
                        None
                    };
                    // Without momentum the step reads no buffer: the gradient stands in.
                    let b = buf.as_ref().map_or(&grad, |st| &st[0]);
                    update::apply(
                        p,
                        &grad,
                        b,
                        &Update::SgdStep {
                            lr,
                            weight_decay: wd,
                            momentum: s.momentum,
                            nesterov: s.nesterov,
                        },
                    )?;
                    if let Some(st) = buf {
                        self.state.insert(param.name.clone(), st);
                    }
                }
                OptimizerKind::Adam | OptimizerKind::Adamw => {
                    let (b1, b2) = s.betas;
                    let l2 = if s.kind == OptimizerKind::Adam {
                        wd
                    } else {
                        0.0
                    };
                    let st = match self.state.remove(&param.name) {
                        Some(st) => st,
                        None => vec![fresh()?, fresh()?],
                    };
                    update::apply(
                        &st[0],
                        &grad,
                        p,
                        &Update::FirstMoment {
                            beta1: b1,
                            weight_decay: l2,
                        },
                    )?;
                    update::apply(
                        &st[1],
                        &grad,
                        p,
                        &Update::SecondMoment {
                            beta2: b2,
                            weight_decay: l2,
                        },
                    )?;
                    update::apply(
                        p,
                        &st[0],
                        &st[1],
                        &Update::AdamStep {
                            lr,
                            decoupled_decay: if s.kind == OptimizerKind::Adamw {
                                wd
                            } else {
                                0.0
                            },
                            bias1: 1.0 - b1.powi(t),
                            bias2: 1.0 - b2.powi(t),
                            eps: s.eps,
                        },
                    )?;
                    self.state.insert(param.name.clone(), st);
                }
            }
        }
        Ok(())
    }

    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let names = state_names(self.settings.kind);
        let mut out: Vec<(String, Tensor)> = self
            .state
            .iter()
            .flat_map(|(param, ts)| {
                ts.iter()
                    .zip(names)
                    .map(move |(t, n)| (format!("optim.{param}.{n}"), t.clone()))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Restores the state saved by `state_tensors` from `tensors` (the
    /// other keys are ignored); every parameter's state must be whole.
    pub fn load_state(
        &mut self,
        model: &Model,
        tensors: &HashMap<String, Tensor>,
        steps: u64,
    ) -> Result<(), Error> {
        self.steps = steps;
        self.state.clear();
        let names = state_names(self.settings.kind);
        for p in model.params() {
            let found: Vec<Option<&Tensor>> = names
                .iter()
                .map(|n| tensors.get(&format!("optim.{}.{n}", p.name)))
                .collect();
            if found.iter().all(Option::is_none) {
                continue;
            }
            let mut state = Vec::new();
            for (t, n) in found.into_iter().zip(names) {
                let t =
                    t.ok_or_else(|| Error::Weights(format!("optim.{}.{n} is missing", p.name)))?;
                if t.dims() != p.var.dims() {
                    return Err(Error::Weights(format!(
                        "optim.{}.{n} has shape {:?}, the parameter has {:?}",
                        p.name,
                        t.dims(),
                        p.var.dims()
                    )));
                }
                // Checkpoints load on the CPU; the state lives beside its parameter.
                let t = t
                    .to_device(p.var.device())
                    .map_err(|e| Error::Weights(format!("optim.{}.{n}: {e}", p.name)))?;
                state.push(t);
            }
            self.state.insert(p.name.clone(), state);
        }
        Ok(())
    }
}
