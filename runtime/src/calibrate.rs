//! Measurements of this machine for `cnncost calibrate` and `cnncost
//! profile` (issue 16): the peak fp32 rate on all threads, the memory's
//! read and write bandwidth, matrix products, and the time of every op of
//! a model's forward pass and of a training step.

use crate::config::TrainConfig;
use crate::kernels::timeline::{self, Mark};
use crate::kernels::{num_threads, peak};
use crate::loss::training_loss;
use crate::model::{Mode, Model};
use crate::optim::Optimizer;
use candle_core::{Device, Tensor, TensorId};
use std::time::Instant;

/// The peak fp32 rate, FMA chains on every thread, in GFLOP/s (2 per
/// FMA): the best of three runs of about `seconds` each.
pub fn peak_gflops(seconds: f64) -> f64 {
    let threads = num_threads();
    // Rounds per thread for the time asked, from a short trial.
    let trial = 200_000u64;
    let t = Instant::now();
    std::hint::black_box(peak::fma_flops(trial));
    let per_round = t.elapsed().as_secs_f64() / trial as f64;
    let rounds = ((seconds / per_round.max(1e-12)) as u64).max(trial);
    (0..3)
        .map(|_| {
            let t = Instant::now();
            let flops: u64 = std::thread::scope(|s| {
                let handles: Vec<_> = (0..threads)
                    .map(|_| s.spawn(move || std::hint::black_box(peak::fma_flops(rounds)).0))
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
            });
            flops as f64 / t.elapsed().as_secs_f64() / 1e9
        })
        .fold(0.0, f64::max)
}

/// Memory read and write bandwidth in GB/s (10^9 bytes) on every thread,
/// over a buffer of `bytes` (far larger than the caches): the best of five
/// passes each.
pub fn bandwidth(bytes: usize) -> (f64, f64) {
    let threads = num_threads();
    let mut buf = vec![1.0f32; bytes / 4];
    let chunk = buf.len().div_ceil(threads);
    let best = |f: &mut dyn FnMut() -> f64| (0..5).map(|_| f()).fold(0.0, f64::max);
    let read = best(&mut || {
        let t = Instant::now();
        let total: f32 = std::thread::scope(|s| {
            let handles: Vec<_> = buf
                .chunks(chunk)
                .map(|c| s.spawn(move || peak::stream_sum(c)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or(0.0)).sum()
        });
        std::hint::black_box(total);
        bytes as f64 / t.elapsed().as_secs_f64() / 1e9
    });
    let write = best(&mut || {
        let t = Instant::now();
        std::thread::scope(|s| {
            for c in buf.chunks_mut(chunk) {
                s.spawn(move || c.fill(std::hint::black_box(2.0)));
            }
        });
        bytes as f64 / t.elapsed().as_secs_f64() / 1e9
    });
    (read, write)
}

/// The rate of an (m x k) by (k x n) fp32 matrix product, GFLOP/s: the
/// best of `reps` after one warm-up.
pub fn gemm_gflops(m: usize, n: usize, k: usize, reps: usize) -> candle_core::Result<f64> {
    let a = Tensor::randn(0f32, 1.0, (m, k), &Device::Cpu)?;
    let b = Tensor::randn(0f32, 1.0, (k, n), &Device::Cpu)?;
    a.matmul(&b)?;
    let mut best = 0f64;
    for _ in 0..reps {
        let t = Instant::now();
        std::hint::black_box(a.matmul(&b)?);
        best = best.max(2.0 * (m * n * k) as f64 / t.elapsed().as_secs_f64() / 1e9);
    }
    Ok(best)
}

/// The forward time of every op of `model` on the batch `x` (inference),
/// by step: the median of `iterations` passes after `warmup` ones. A fused
/// group's time is under its last op, the others' 0.
pub fn op_seconds(
    model: &Model,
    x: &Tensor,
    warmup: usize,
    iterations: usize,
) -> candle_core::Result<Vec<f64>> {
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
    let mut runs: Vec<Vec<f64>> = Vec::with_capacity(iterations);
    for pass in 0..warmup + iterations {
        let mut times = vec![0f64; model.op_count()];
        let mut last = Instant::now();
        let mut observe = |i: usize, y: &Tensor| {
            // A GPU runs ops asynchronously: an op's time ends when it is done.
            y.device().synchronize()?;
            let now = Instant::now();
            times[i] += (now - last).as_secs_f64();
            last = now;
            Ok(())
        };
        model.forward_observed(x, Mode::Infer, &mut rng, &mut observe)?;
        if pass >= warmup {
            runs.push(times);
        }
    }
    Ok(medians(&runs))
}

/// Per position, the median over the runs.
fn medians(runs: &[Vec<f64>]) -> Vec<f64> {
    let len = runs.first().map_or(0, Vec::len);
    (0..len)
        .map(|i| median(runs.iter().map(|r| r[i]).collect()))
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// The times of one training step, by op index (a fused group's under its
/// last op, the others' 0), each the median over the timed steps.
#[derive(Clone, Debug, Default)]
pub struct StepTimes {
    pub forward: Vec<f64>,
    /// The backward of each op but its weight gradients: the input
    /// gradient, and the gradients of BN's scale and shift, which come
    /// out of the same passes.
    pub input_grad: Vec<f64>,
    /// The weight (and bias) gradients of convolutions and linear layers.
    pub weight_grad: Vec<f64>,
    /// The loss, forward and backward, up to the first op's backward.
    pub loss: f64,
    /// The optimiser's update.
    pub update: f64,
}

/// Times training steps of `model` on the batch `x` and its `labels` with
/// `config`'s optimizer and loss (`cnncost train`'s recipe) at a tiny rate,
/// so that the weights stay near their start and every step is alike:
/// `warmup` untimed steps, then the median of `iterations`. The backward is one call
/// into candle; its time is split between the ops by the marks our ops'
/// backward functions leave ([`timeline`]). An op candle differentiates
/// itself (a view, a plain sum, a concatenation) leaves none: its time is
/// counted with the op whose backward ran just before it, the op after it
/// in the forward.
pub fn step_seconds(
    model: &Model,
    config: &TrainConfig,
    (x, labels): (&Tensor, &Tensor),
    (warmup, iterations): (usize, usize),
) -> candle_core::Result<StepTimes> {
    const LR: f64 = 1e-6;
    let mut optimizer = Optimizer::new(config.optimizer_settings());
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
    let ops = model.op_count();
    let mut runs: [Vec<Vec<f64>>; 3] = Default::default();
    let (mut loss_runs, mut update_runs) = (Vec::new(), Vec::new());
    for pass in 0..warmup + iterations {
        let mut forward = vec![0f64; ops];
        let mut made_by: Vec<(TensorId, usize)> = Vec::new();
        let mut last = Instant::now();
        let mut observe = |i: usize, t: &Tensor| {
            let now = Instant::now();
            forward[i] += (now - last).as_secs_f64();
            made_by.push((t.id(), i));
            last = now;
            Ok(())
        };
        let out = model.forward_observed(x, Mode::Train, &mut rng, &mut observe)?;
        let loss_start = Instant::now();
        let l = training_loss(&out, labels, config.aux_weight, config.label_smoothing)?;
        let loss_forward = loss_start.elapsed().as_secs_f64();
        let start = Instant::now();
        let (grads, marks) = timeline::record_backward(|| l.backward());
        let grads = grads?;
        let end = Instant::now();
        drop((l, out));
        let (input_grad, weight_grad, loss_backward) =
            split_backward(&marks, made_by, ops, start, end);
        let g: Vec<Option<Tensor>> = model
            .params()
            .map(|p| grads.get(p.var.as_tensor()).cloned())
            .collect();
        drop(grads);
        let t = Instant::now();
        optimizer.step(model, &g, LR)?;
        let update = t.elapsed().as_secs_f64();
        if pass >= warmup {
            runs[0].push(forward);
            runs[1].push(input_grad);
            runs[2].push(weight_grad);
            loss_runs.push(loss_forward + loss_backward);
            update_runs.push(update);
        }
    }
    let [forward, input_grad, weight_grad] = runs.map(|r| medians(&r));
    Ok(StepTimes {
        forward,
        input_grad,
        weight_grad,
        loss: median(loss_runs),
        update: median(update_runs),
    })
}

/// The backward from `start` to `end`, split by its marks: per op its input
/// and weight gradient seconds, and the seconds before the first op's mark
/// (the loss's backward). `made_by`: each op's output, in the forward's
/// order; a mark of a tensor made inside an op (a fused group's inner
/// output, a linear layer's product before its bias) belongs to the op
/// whose output was the first made after it (ids count up).
fn split_backward(
    marks: &[Mark],
    mut made_by: Vec<(TensorId, usize)>,
    ops: usize,
    start: Instant,
    end: Instant,
) -> (Vec<f64>, Vec<f64>, f64) {
    let (mut input, mut weight) = (vec![0f64; ops], vec![0f64; ops]);
    let mut before_first = 0.0;
    // The op now running, and when its segment began.
    let mut current: Option<usize> = None;
    let mut since = start;
    let mut close = |current: Option<usize>, since: Instant, until: Instant| {
        let s = (until - since).as_secs_f64();
        match current {
            Some(i) => input[i] += s,
            None => before_first += s,
        }
    };
    let mut weight_marks: Vec<(Option<usize>, f64)> = Vec::new();
    made_by.sort_unstable();
    for m in marks {
        match *m {
            Mark::Op(id, at) => {
                close(current, since, at);
                since = at;
                if let Some(&(_, i)) = made_by.get(made_by.partition_point(|&(o, _)| o < id)) {
                    current = Some(i);
                }
            }
            Mark::WeightGrad(s) => weight_marks.push((current, s)),
        }
    }
    close(current, since, end);
    // A weight gradient's time was counted in its op's segment: move it.
    for (op, s) in weight_marks {
        if let Some(i) = op {
            input[i] -= s;
            weight[i] += s;
        } else {
            before_first -= s;
        }
    }
    (input, weight, before_first)
}
