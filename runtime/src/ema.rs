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
                *s = v
                    .to_device(t.var.device())?
                    .to_dtype(t.var.dtype())?
                    .reshape(t.var.shape())?;
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

/// The state dict of the averaged weights in a checkpoint's `tensors`
/// (`eval --ema`): each `ema.<name>` under its own name, and the raw
/// tensor for the model's tensors that are not averaged (BN's counters), so
/// it loads like any state dict. `None` when there are no averaged tensors
/// (a run without `ema:`).
pub fn averaged_state_dict(
    tensors: &HashMap<String, Tensor>,
    model: &Model,
) -> Option<HashMap<String, Tensor>> {
    let mut averaged: HashMap<String, Tensor> = tensors
        .iter()
        .filter_map(|(k, v)| k.strip_prefix(PREFIX).map(|k| (k.to_string(), v.clone())))
        .collect();
    if averaged.is_empty() {
        return None;
    }
    for t in &model.tensors {
        if let (false, Some(v)) = (averaged.contains_key(&t.name), tensors.get(&t.name)) {
            averaged.insert(t.name.clone(), v.clone());
        }
    }
    Some(averaged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    fn tiny() -> Model {
        let net = dsl::compile(
            "tiny.net",
            "network tiny\ninput 1x4x4\nbn1: bn\nflatten\nfc: linear 2\n",
            &Default::default(),
        )
        .unwrap();
        let mut rng: rand_chacha::ChaCha8Rng = rand::SeedableRng::seed_from_u64(0);
        Model::new(&net, &Device::Cpu, DType::F32, &mut rng).unwrap()
    }

    fn value(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    #[test]
    fn the_averaged_state_dict_takes_averages_and_raw_counters() {
        let model = tiny();
        let names: Vec<&str> = model.tensors.iter().map(|t| t.name.as_str()).collect();
        assert!(names.contains(&"bn1.num_batches_tracked"), "{names:?}");
        // Raw tensors are 1, averaged ones 2; the counter has no average.
        let mut tensors = HashMap::new();
        for t in &model.tensors {
            let ones = Tensor::ones(t.var.shape(), DType::F32, &Device::Cpu).unwrap();
            if t.kind != TensorKind::Counter {
                tensors.insert(format!("{PREFIX}{}", t.name), (&ones * 2.0).unwrap());
            }
            tensors.insert(t.name.clone(), ones);
        }
        tensors.insert(
            "optim.fc.weight.m".into(),
            Tensor::new(&[5f32], &Device::Cpu).unwrap(),
        );
        let averaged = averaged_state_dict(&tensors, &model).unwrap();
        let mut keys: Vec<&String> = averaged.keys().collect();
        keys.sort();
        let mut expected: Vec<&String> = model.tensors.iter().map(|t| &t.name).collect();
        expected.sort();
        assert_eq!(keys, expected);
        for t in &model.tensors {
            let v = value(&averaged[&t.name]);
            let want = if t.kind == TensorKind::Counter {
                1.0
            } else {
                2.0
            };
            assert!(v.iter().all(|&x| x == want), "{}: {v:?}", t.name);
        }
    }

    #[test]
    fn no_averaged_tensors_no_state_dict() {
        let model = tiny();
        let tensors: HashMap<String, Tensor> = model
            .tensors
            .iter()
            .map(|t| (t.name.clone(), t.var.as_detached_tensor()))
            .collect();
        assert!(averaged_state_dict(&tensors, &model).is_none());
    }
}
