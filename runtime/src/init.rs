//! Initial values of weights and buffers, per op, as torchvision's models
//! start them (docs/runtime.md lists them), drawn from our own seeded RNG
//! so that one seed gives one network, bit for bit.
//!
//! - `conv`, `linear` with `init=kaiming` (the default): PyTorch's own
//!   `reset_parameters`: weight Kaiming-uniform with a = sqrt(5), i.e.
//!   U(-1/sqrt(fan_in), 1/sqrt(fan_in)); bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
//! - `kaiming_normal[_fan_out]`: N(0, 2/fan) (ReLU gain), bias 0 (torchvision's
//!   ResNet and VGG).
//! - `kaiming_uniform[_fan_out]`: U(-sqrt(6/fan), sqrt(6/fan)), bias 0.
//! - `xavier`: U(-sqrt(6/(fan_in+fan_out)), ...), bias 0.
//! - `zeros`: weight and bias 0.
//! - `bn`: weight `gamma` (1 unless `gamma=0` for zero-init), bias 0,
//!   running mean 0, running variance 1, counter 0.
//! - `prelu`: 0.25 per channel (PyTorch's default).

// Matches over `Op` name every variant: a new op needs its initial values.
#![deny(clippy::wildcard_enum_match_arm)]

use candle_core::{DType, Device, Tensor};
use dsl::ir::{Init, Op, Shape, TensorKind};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// fan_in and fan_out of a conv or linear weight of shape (out, in/groups, kh, kw)
/// or (out, in), as PyTorch computes them.
fn fans(dims: &[usize]) -> (f64, f64) {
    let receptive: usize = dims.iter().skip(2).product();
    let fan_in = dims.get(1).copied().unwrap_or(1) * receptive;
    let fan_out = dims.first().copied().unwrap_or(1) * receptive;
    (fan_in.max(1) as f64, fan_out.max(1) as f64)
}

fn uniform(n: usize, bound: f64, rng: &mut impl Rng) -> Vec<f64> {
    (0..n)
        .map(|_| (rng.random::<f64>() * 2.0 - 1.0) * bound)
        .collect()
}

fn normal(n: usize, std: f64, rng: &mut impl Rng) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let z: f64 = StandardNormal.sample(rng);
            z * std
        })
        .collect()
}

/// The starting value of the op's tensor `suffix` with shape `dims` and
/// kind `kind`, for an op whose (first) input has shape `input`: `dtype` on
/// `device`, except counters, which are I64 as PyTorch's.
pub fn initial_value(
    op: &Op,
    input: Shape,
    (suffix, dims, kind): (&str, &[usize], TensorKind),
    (device, dtype): (&Device, DType),
    rng: &mut impl Rng,
) -> candle_core::Result<Tensor> {
    let n: usize = dims.iter().product();
    if kind == TensorKind::Counter {
        return Tensor::zeros(dims, DType::I64, device);
    }
    let values: Vec<f64> = match op {
        Op::Conv { init, .. } | Op::Linear { init, .. } => match suffix {
            "weight" => {
                let (fan_in, fan_out) = fans(dims);
                match init {
                    Init::Kaiming => uniform(n, 1.0 / fan_in.sqrt(), rng),
                    Init::KaimingNormal { fan_out: fo } => {
                        let fan = if *fo { fan_out } else { fan_in };
                        normal(n, (2.0 / fan).sqrt(), rng)
                    }
                    Init::KaimingUniform { fan_out: fo } => {
                        let fan = if *fo { fan_out } else { fan_in };
                        uniform(n, (6.0 / fan).sqrt(), rng)
                    }
                    Init::Xavier => uniform(n, (6.0 / (fan_in + fan_out)).sqrt(), rng),
                    Init::Zeros => vec![0.0; n],
                }
            }
            "bias" => match init {
                Init::Kaiming => uniform(n, 1.0 / layer_fan_in(op, input).sqrt(), rng),
                Init::KaimingNormal { .. }
                | Init::KaimingUniform { .. }
                | Init::Xavier
                | Init::Zeros => vec![0.0; n],
            },
            _ => vec![0.0; n],
        },
        Op::BatchNorm { gamma, .. } => match suffix {
            "weight" => vec![*gamma; n],
            "running_var" => vec![1.0; n],
            // bias, running_mean
            _ => vec![0.0; n],
        },
        Op::Prelu => vec![0.25; n],
        // Ops without tensors (`Op::for_each_tensor` lists none).
        Op::Input
        | Op::Pool { .. }
        | Op::GlobalAvgPool
        | Op::AdaptiveAvgPool { .. }
        | Op::Lrn { .. }
        | Op::Dropout { .. }
        | Op::Act(_)
        | Op::Flatten
        | Op::Identity
        | Op::Concat
        | Op::Add
        | Op::ZeroPad { .. } => vec![0.0; n],
    };
    Tensor::from_vec(values, dims, device)?.to_dtype(dtype)
}

/// fan_in of a conv or linear layer: what its bias bound uses.
fn layer_fan_in(op: &Op, input: Shape) -> f64 {
    match *op {
        Op::Conv { kernel, groups, .. } => {
            (input.channels() / groups.max(1) * kernel.h * kernel.w).max(1) as f64
        }
        // Only conv and linear have a bias; the others never ask.
        Op::Linear { .. }
        | Op::Input
        | Op::Pool { .. }
        | Op::GlobalAvgPool
        | Op::AdaptiveAvgPool { .. }
        | Op::BatchNorm { .. }
        | Op::Lrn { .. }
        | Op::Dropout { .. }
        | Op::Act(_)
        | Op::Prelu
        | Op::Flatten
        | Op::Identity
        | Op::Concat
        | Op::Add
        | Op::ZeroPad { .. } => input.channels().max(1) as f64,
    }
}
