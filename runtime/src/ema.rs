//! Polyak / exponential moving average of the weights (`ema: 0.999`):
//! after every step, shadow = decay * shadow + (1 - decay) * weight, for
//! every float tensor of the state dict (BN's running statistics included,
//! as timm's ModelEmaV2 does). Evaluated beside the raw weights each epoch.

use crate::model::Model;
use candle_core::Tensor;
use dsl::ir::TensorKind;
use std::collections::HashMap;

/// The checkpoint prefix of the averaged tensors.
pub const PREFIX: &str = "ema.";

pub struct Ema {
    pub decay: f64,
    shadow: Vec<Option<Tensor>>,
}

impl Ema {
    /// Starts at the model's current weights.
    pub fn new(model: &Model, decay: f64) -> candle_core::Result<Ema> {
        let shadow = model
            .tensors
            .iter()
            .map(|t| match t.kind {
                TensorKind::Counter => Ok(None),
                _ => t.var.as_detached_tensor().copy().map(Some),
            })
            .collect::<candle_core::Result<_>>()?;
        Ok(Ema { decay, shadow })
    }

    /// One update from the model's current weights.
    pub fn update(&mut self, model: &Model) -> candle_core::Result<()> {
        for (s, t) in self.shadow.iter_mut().zip(&model.tensors) {
            if let Some(s) = s {
                *s = ((&*s * self.decay)? + (t.var.as_detached_tensor() * (1.0 - self.decay))?)?;
            }
        }
        Ok(())
    }

    /// The averaged tensors under `ema.<name>`, for the checkpoint.
    pub fn tensors(&self, model: &Model) -> Vec<(String, Tensor)> {
        self.shadow
            .iter()
            .zip(&model.tensors)
            .filter_map(|(s, t)| {
                s.as_ref()
                    .map(|s| (format!("{PREFIX}{}", t.name), s.clone()))
            })
            .collect()
    }

    /// Restores the averages from a checkpoint; a tensor missing there
    /// starts again from the model's weight.
    pub fn load(
        &mut self,
        model: &Model,
        source: &HashMap<String, Tensor>,
    ) -> candle_core::Result<()> {
        for (s, t) in self.shadow.iter_mut().zip(&model.tensors) {
            if let (Some(s), Some(v)) = (s.as_mut(), source.get(&format!("{PREFIX}{}", t.name))) {
                *s = v.to_dtype(t.var.dtype())?.reshape(t.var.shape())?;
            }
        }
        Ok(())
    }

    /// Runs `f` with the averaged weights in the model, then puts the raw
    /// weights back.
    pub fn with_averaged<R>(
        &self,
        model: &Model,
        f: impl FnOnce() -> candle_core::Result<R>,
    ) -> candle_core::Result<R> {
        let raw: Vec<Tensor> = model
            .tensors
            .iter()
            .map(|t| t.var.as_detached_tensor().copy())
            .collect::<candle_core::Result<_>>()?;
        for (s, t) in self.shadow.iter().zip(&model.tensors) {
            if let Some(s) = s {
                t.var.set(s)?;
            }
        }
        let r = f();
        for (v, t) in raw.iter().zip(&model.tensors) {
            t.var.set(v)?;
        }
        r
    }
}
