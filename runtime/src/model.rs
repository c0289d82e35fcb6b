//! The lowering: an elaborated network becomes a list of steps over candle
//! tensors, with its weights and buffers under the IR's dotted names.
//!
//! One `match` over `Op` (in `Model::run_step`) says how each op runs
//! forward; the backward comes from candle's autodiff, through our own
//! kernels (`crate::kernels`) where candle lacks an op or gets its gradient
//! wrong.

use crate::error::Error;
use crate::init::initial_value;
use crate::kernels::{self, Conv2dGeometry, Pool2dGeometry, PoolMode};
use candle_core::{DType, Device, Tensor, Var, D};
use dsl::ir::{Activation, Network, Op, PoolKind, Shape, TensorKind};
use dsl::plan::Fused;
use rand::Rng;

/// Training or evaluation: BN statistics and dropout differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Batch statistics (and running-statistic updates), dropout on.
    Train,
    /// Running statistics, dropout off.
    Eval,
    /// Evaluation without gradients: nothing is recorded for a backward
    /// pass, so activations are freed as soon as they are read.
    Infer,
}

/// One stored tensor of the model under its state-dict name.
#[derive(Debug)]
pub struct NamedTensor {
    /// `layer1.0.conv1.weight`.
    pub name: String,
    pub var: Var,
    pub kind: TensorKind,
    /// Not trained (transfer learning's `freeze`): no gradient reaches it
    /// and the optimiser leaves it alone.
    pub frozen: bool,
    /// Multiplies the learning rate for this tensor (a backbone trained at a
    /// tenth of the head's rate).
    pub lr_scale: f64,
}

/// What a forward pass gives: the main output and the heads' outputs.
pub struct Outputs {
    pub main: Tensor,
    /// One per `head`, in the order the heads are written.
    pub heads: Vec<Tensor>,
}

#[derive(Debug)]
struct Step {
    op: Op,
    name: String,
    /// Steps whose outputs feed this one, in operand order.
    inputs: Vec<usize>,
    /// Indices into `Model::tensors` of this op's weights and buffers, in
    /// `Op::for_each_tensor` order.
    tensors: Vec<usize>,
    /// How many later steps read this step's output; kept outputs (main and
    /// heads) get one more so they are never freed (`dsl::plan::readers`).
    readers: usize,
    /// Frozen: weights read detached, BN on its running statistics.
    frozen: bool,
    /// A batch norm's tensors by role.
    bn: Option<BnTensors>,
}

/// Indices into `Model::tensors` of a batch norm's weights and buffers,
/// found by their state-dict suffixes rather than their position.
#[derive(Clone, Copy, Debug)]
struct BnTensors {
    weight: usize,
    bias: usize,
    running_mean: usize,
    running_var: usize,
    num_batches_tracked: usize,
}

impl BnTensors {
    /// The roles of `(suffix, tensor index)` pairs; None unless all five
    /// are there.
    fn of(named: &[(&str, usize)]) -> Option<BnTensors> {
        let find = |want: &str| named.iter().find(|(s, _)| *s == want).map(|&(_, i)| i);
        Some(BnTensors {
            weight: find("weight")?,
            bias: find("bias")?,
            running_mean: find("running_mean")?,
            running_var: find("running_var")?,
            num_batches_tracked: find("num_batches_tracked")?,
        })
    }
}

/// A network lowered to candle: steps in execution order and the tensors
/// they own.
pub struct Model {
    pub name: String,
    /// C, H, W of one input image.
    pub input: [usize; 3],
    /// Features of the main output (the classes of a classifier).
    pub outputs: usize,
    pub tensors: Vec<NamedTensor>,
    steps: Vec<Step>,
    /// Per step: the ops after it that run with it ([`Fused`]).
    fusions: Vec<Option<Fused>>,
    main: usize,
    heads: Vec<usize>,
    device: Device,
    dtype: DType,
}

fn usize_of(v: u64, what: &str) -> Result<usize, Error> {
    usize::try_from(v).map_err(|_| Error::Lower(format!("{what} {v} does not fit in memory")))
}

impl Model {
    /// Lowers `net` and initialises every weight from `rng` (the per-op
    /// defaults of `crate::init`), in state-dict order.
    pub fn new(
        net: &Network,
        device: &Device,
        dtype: DType,
        rng: &mut impl Rng,
    ) -> Result<Model, Error> {
        let input = match net.input {
            Shape::Image { c, h, w } => [
                usize_of(c, "input channels")?,
                usize_of(h, "input height")?,
                usize_of(w, "input width")?,
            ],
            Shape::Flat(_) => return Err(Error::Lower("the input must be an image".into())),
        };
        let mut index_of = vec![usize::MAX; net.graph.node_count()];
        // The count the plan's fusions are decided by (steps are the IR's nodes,
        // in order).
        let readers = dsl::plan::readers(net);
        let mut steps: Vec<Step> = Vec::with_capacity(net.graph.node_count());
        let mut tensors = Vec::new();
        for node in net.graph.node_indices() {
            let n = &net.graph[node];
            let inputs: Vec<usize> = net
                .inputs(node)
                .into_iter()
                .map(|i| index_of[i.index()])
                .collect();
            let input_shape = net.input_shapes(node).first().copied();
            let mut own = Vec::new();
            let mut suffixes = Vec::new();
            if let Some(shape) = input_shape {
                let mut specs = Vec::new();
                n.op.for_each_tensor(shape, |suffix, dims, kind| {
                    specs.push((suffix, dims.to_vec(), kind))
                });
                for (suffix, dims, kind) in specs {
                    let dims: Vec<usize> = dims
                        .iter()
                        .map(|&d| usize_of(d, "a tensor dimension"))
                        .collect::<Result<_, _>>()?;
                    let value =
                        initial_value(&n.op, shape, (suffix, &dims, kind), (device, dtype), rng)
                            .map_err(|e| Error::Lower(format!("{}.{suffix}: {e}", n.name)))?;
                    let var = Var::from_tensor(&value)
                        .map_err(|e| Error::Lower(format!("{}.{suffix}: {e}", n.name)))?;
                    suffixes.push((suffix, tensors.len()));
                    own.push(tensors.len());
                    tensors.push(NamedTensor {
                        name: format!("{}.{suffix}", n.name),
                        var,
                        kind,
                        frozen: false,
                        lr_scale: 1.0,
                    });
                }
            }
            index_of[node.index()] = steps.len();
            steps.push(Step {
                op: n.op.clone(),
                name: n.name.to_string(),
                inputs,
                tensors: own,
                readers: readers[node.index()],
                frozen: false,
                bn: matches!(n.op, Op::BatchNorm { .. })
                    .then(|| BnTensors::of(&suffixes))
                    .flatten(),
            });
        }
        let main = index_of[net.output.index()];
        let heads: Vec<usize> = net.heads.iter().map(|h| index_of[h.index()]).collect();
        let outputs = usize_of(
            net.graph[net.output].shape.elements().unwrap_or(0),
            "outputs",
        )?;
        Ok(Model {
            name: net.name.clone(),
            input,
            outputs,
            tensors,
            fusions: dsl::plan::fusions(net),
            steps,
            main,
            heads,
            device: device.clone(),
            dtype,
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The trainable tensors, in state-dict order.
    pub fn params(&self) -> impl Iterator<Item = &NamedTensor> {
        self.tensors.iter().filter(|t| t.kind == TensorKind::Param)
    }

    pub fn tensor(&self, name: &str) -> Option<&NamedTensor> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// Sets every weight and buffer from `source` by name (a checkpoint or
    /// a state dict from elsewhere), converting dtypes. Fails on the first
    /// tensor that is missing or has another shape, naming it; counters
    /// (`num_batches_tracked`) may be missing. Returns the keys of `source`
    /// that no tensor of the model took.
    pub fn load_weights(
        &self,
        source: &std::collections::HashMap<String, Tensor>,
    ) -> Result<Vec<String>, Error> {
        self.load_weights_except(source, &[])
    }

    /// `load_weights`, leaving the tensors named in `skip` as they are
    /// (a head to re-initialise).
    pub fn load_weights_except(
        &self,
        source: &std::collections::HashMap<String, Tensor>,
        skip: &[String],
    ) -> Result<Vec<String>, Error> {
        for t in self.tensors.iter().filter(|t| !skip.contains(&t.name)) {
            let Some(value) = source.get(&t.name) else {
                if t.kind == TensorKind::Counter {
                    continue;
                }
                return Err(Error::Weights(format!(
                    "`{}` is missing (the network expects shape {:?})",
                    t.name,
                    t.var.dims()
                )));
            };
            // A 0-d tensor and a 1-element one are the same counter.
            if value.dims() != t.var.dims() && !(value.elem_count() == 1 && t.var.elem_count() == 1)
            {
                return Err(Error::Weights(format!(
                    "`{}` has shape {:?} in the file, the network expects {:?}",
                    t.name,
                    value.dims(),
                    t.var.dims()
                )));
            }
            let value = value
                .to_device(&self.device)
                .and_then(|v| v.to_dtype(t.var.dtype()))
                .and_then(|v| v.reshape(t.var.dims()))
                .map_err(|e| Error::Weights(format!("`{}`: {e}", t.name)))?;
            t.var
                .set(&value)
                .map_err(|e| Error::Weights(format!("`{}`: {e}", t.name)))?;
        }
        let mut unused: Vec<String> = source
            .keys()
            .filter(|k| self.tensor(k).is_none())
            .cloned()
            .collect();
        unused.sort();
        Ok(unused)
    }

    /// Runs the network on a batch `x` of shape (N, C, H, W). In training
    /// mode BN uses batch statistics and updates its running statistics, and
    /// dropout draws its masks from `rng`.
    pub fn forward(
        &self,
        x: &Tensor,
        mode: Mode,
        rng: &mut impl Rng,
    ) -> candle_core::Result<Outputs> {
        self.forward_observed(x, mode, rng, &mut |_, _| Ok(()))
    }

    /// `forward`, showing `observe` each op's output as it is made, with the
    /// op's index in `Model::steps` (a fused group's output once, under its
    /// last op).
    pub fn forward_observed(
        &self,
        x: &Tensor,
        mode: Mode,
        rng: &mut impl Rng,
        observe: &mut dyn FnMut(usize, &Tensor) -> candle_core::Result<()>,
    ) -> candle_core::Result<Outputs> {
        let mut values: Vec<Option<Tensor>> = vec![None; self.steps.len()];
        let mut readers: Vec<usize> = self.steps.iter().map(|s| s.readers).collect();
        // Steps whose work an earlier step did ([`Fused`]).
        let mut done = vec![false; self.steps.len()];
        for (i, step) in self.steps.iter().enumerate() {
            if done[i] {
                continue;
            }
            let args: Vec<&Tensor> = step
                .inputs
                .iter()
                .map(|&j| {
                    values[j]
                        .as_ref()
                        .expect("an input is computed before its readers")
                })
                .collect();
            // The conv group folds running statistics: inference only.
            let fused = self.fusions[i].filter(|f| f.in_training() || mode == Mode::Infer);
            let out = match fused {
                Some(Fused::Conv { bn, relu }) if mode == Mode::Infer => {
                    self.run_fused_conv(step, bn, relu, args[0])
                }
                // Training: a convolution and its ReLU, recorded as one op.
                Some(Fused::Conv { .. }) => self.run_conv(step, args[0], true, mode),
                Some(Fused::AddRelu { .. }) => kernels::norm::add_relu(args[0], args[1]),
                Some(Fused::BnRelu { .. }) => {
                    let Op::BatchNorm { eps, momentum, .. } = step.op else {
                        unreachable!("a BN + ReLU fusion starts at a batch norm")
                    };
                    self.batch_norm(step, args[0], (eps, momentum), mode, true)
                }
                None => self.run_step(step, x, &args, mode, rng),
            }
            .map_err(|e| e.context(format!("in `{}` ({})", step.name, step.op.kind())))?;
            let at = match fused {
                Some(f) => {
                    // The group's other ops are done: their work is in `out`.
                    for j in f.taken_over().into_iter().flatten() {
                        done[j] = true;
                    }
                    f.last(i)
                }
                None => i,
            };
            drop(args);
            observe(at, &out)?;
            // Free inputs nobody reads any more: peak memory follows the
            // graph's liveness, not its size.
            for &j in &step.inputs {
                readers[j] -= 1;
                if readers[j] == 0 {
                    values[j] = None;
                }
            }
            values[at] = Some(out);
        }
        let take = |values: &mut Vec<Option<Tensor>>, i: usize| {
            values[i].clone().expect("outputs are kept")
        };
        let main = take(&mut values, self.main);
        let heads = self.heads.iter().map(|&h| take(&mut values, h)).collect();
        Ok(Outputs { main, heads })
    }

    /// How many ops the model runs: its steps are the IR's nodes, in order,
    /// so a step's index is its node's.
    pub fn op_count(&self) -> usize {
        self.steps.len()
    }

    /// The ReLUs whose every output is zero on the batch `x` (inference
    /// mode), by op name: dead units, which pass no gradient back, so
    /// nothing before them learns and they do not recover (the lecture's
    /// "dying ReLU").
    pub fn dead_relus(&self, x: &Tensor) -> candle_core::Result<Vec<String>> {
        let mut dead = Vec::new();
        let mut observe = |i: usize, out: &Tensor| {
            if self.steps[i].op == Op::Act(Activation::Relu)
                && out.max_all()?.to_dtype(DType::F32)?.to_scalar::<f32>()? <= 0.0
            {
                dead.push(self.steps[i].name.clone());
            }
            Ok(())
        };
        // Inference draws nothing (dropout is off): any generator will do.
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
        self.forward_observed(x, Mode::Infer, &mut rng, &mut observe)?;
        Ok(dead)
    }

    /// A weight of the step, tracked for gradients unless inferring or
    /// frozen.
    fn param(&self, step: &Step, k: usize, mode: Mode) -> Tensor {
        self.param_at(step, step.tensors[k], mode)
    }

    /// `param` by the tensor's index in `Model::tensors`.
    fn param_at(&self, step: &Step, index: usize, mode: Mode) -> Tensor {
        let var = &self.tensors[index].var;
        match mode {
            _ if step.frozen => var.as_detached_tensor(),
            Mode::Infer => var.as_detached_tensor(),
            Mode::Train | Mode::Eval => var.as_tensor().clone(),
        }
    }

    /// Freezes every op named `p` or `p.*` for a prefix `p` (dotted names:
    /// `layer1` freezes `layer1.0.conv1`, not `layer10`): its weights stop
    /// training and its BN keeps evaluation mode (running statistics, no
    /// updates). Returns how many ops were frozen, per prefix.
    pub fn freeze(&mut self, prefixes: &[String]) -> Vec<usize> {
        let mut counts = vec![0; prefixes.len()];
        for step in &mut self.steps {
            for (i, p) in prefixes.iter().enumerate() {
                if dsl::plan::frozen_by(&step.name, std::slice::from_ref(p)) {
                    counts[i] += 1;
                    step.frozen = true;
                }
            }
            if step.frozen {
                for &t in &step.tensors {
                    self.tensors[t].frozen = true;
                }
            }
        }
        counts
    }

    /// The names of the head's tensors: the last `linear` op before the
    /// main output, the layer `--replace-head` re-initialises.
    pub fn head_tensors(&self) -> Vec<String> {
        let head = self.steps[..=self.main]
            .iter()
            .rev()
            .find(|s| matches!(s.op, Op::Linear { .. }));
        head.map(|s| {
            s.tensors
                .iter()
                .map(|&t| self.tensors[t].name.clone())
                .collect()
        })
        .unwrap_or_default()
    }

    /// One op, forward. The one place that says how each op runs.
    #[deny(clippy::wildcard_enum_match_arm)]
    fn run_step(
        &self,
        step: &Step,
        x: &Tensor,
        args: &[&Tensor],
        mode: Mode,
        rng: &mut impl Rng,
    ) -> candle_core::Result<Tensor> {
        let first = || args[0];
        Ok(match &step.op {
            Op::Input => x.clone(),
            Op::Conv { .. } => self.run_conv(step, first(), false, mode)?,
            Op::Linear { bias, .. } => {
                let w = self.param(step, 0, mode);
                let y = kernels::linear(first(), &w)?;
                if *bias {
                    y.broadcast_add(&self.param(step, 1, mode))?
                } else {
                    y
                }
            }
            Op::Pool {
                kind,
                kernel,
                stride,
                padding,
                ceil,
                exclude_pad,
            } => {
                let mode = match kind {
                    PoolKind::Max => PoolMode::Max,
                    PoolKind::Avg => PoolMode::Avg {
                        count_include_pad: !exclude_pad,
                    },
                };
                let g = Pool2dGeometry {
                    kernel: [kernel.h as usize, kernel.w as usize],
                    stride: [stride.h as usize, stride.w as usize],
                    padding: [padding.h as usize, padding.w as usize],
                    ceil_mode: *ceil,
                };
                kernels::pool2d(first(), mode, &g)?
            }
            Op::GlobalAvgPool => first().mean_keepdim(D::Minus1)?.mean_keepdim(D::Minus2)?,
            Op::AdaptiveAvgPool { out } => {
                kernels::adaptive_avg_pool2d(first(), [out.h as usize, out.w as usize])?
            }
            Op::BatchNorm { eps, momentum, .. } => {
                self.batch_norm(step, first(), (*eps, *momentum), mode, false)?
            }
            Op::Lrn {
                size,
                alpha,
                beta,
                k,
            } => local_response_norm(first(), *size as usize, *alpha, *beta, *k)?,
            Op::Dropout { p } => match mode {
                Mode::Eval | Mode::Infer => first().clone(),
                Mode::Train => dropout(first(), *p, rng)?,
            },
            Op::Act(a) => activation(first(), *a)?,
            Op::Prelu => {
                let v = first();
                let c = v.dim(1)?;
                let mut dims = vec![1usize; v.rank()];
                dims[1] = c;
                let w = self.param(step, 0, mode).reshape(dims)?;
                let zeros = v.zeros_like()?;
                (v.maximum(&zeros)? + v.minimum(&zeros)?.broadcast_mul(&w)?)?
            }
            Op::Flatten => first().flatten_from(1)?,
            Op::Identity => first().clone(),
            Op::Concat => Tensor::cat(args, 1)?,
            Op::Add => {
                let mut sum = args[0].clone();
                for a in &args[1..] {
                    sum = (sum + *a)?;
                }
                sum
            }
            Op::ZeroPad { out, stride } => {
                let v = first();
                let extra = (*out as usize).checked_sub(v.dim(1)?).ok_or_else(|| {
                    candle_core::Error::Msg("zeropad: fewer output channels than input".into())
                })?;
                kernels::shortcut::subsample_pad_channels(
                    v,
                    *stride as usize,
                    extra / 2,
                    extra - extra / 2,
                )?
            }
        })
    }

    /// A convolution, its bias added and (with `relu`) the ReLU after it applied in
    /// its kernel.
    fn run_conv(
        &self,
        step: &Step,
        x: &Tensor,
        relu: bool,
        mode: Mode,
    ) -> candle_core::Result<Tensor> {
        let Op::Conv { out, bias, .. } = step.op else {
            unreachable!("run_conv of a {}", step.op.kind())
        };
        let g = conv_geometry(&step.op);
        let w = self.param(step, 0, mode);
        match (bias, relu) {
            (false, false) => kernels::conv2d(x, &w, &g),
            (true, _) => {
                kernels::conv::conv2d_bias_relu(x, &w, &self.param(step, 1, mode), relu, &g)
            }
            // No bias: zeros, which need no gradient.
            (false, true) => {
                let zeros = Tensor::zeros(out as usize, w.dtype(), w.device())?;
                kernels::conv::conv2d_bias_relu(x, &w, &zeros, true, &g)
            }
        }
    }

    /// A convolution with the batch norm and ReLU after it ([`Fused::Conv`]), in inference:
    /// with s = γ/√(σ²+ε), the weights scaled by s per output channel and the bias
    /// (b − μ)·s + β.
    fn run_fused_conv(
        &self,
        step: &Step,
        bn: Option<usize>,
        relu: Option<usize>,
        x: &Tensor,
    ) -> candle_core::Result<Tensor> {
        let Op::Conv { out, bias, .. } = step.op else {
            unreachable!("only convolutions are fused")
        };
        let mut w = self.param(step, 0, Mode::Infer);
        let mut b = if bias {
            self.param(step, 1, Mode::Infer)
        } else {
            Tensor::zeros(out as usize, w.dtype(), w.device())?
        };
        if let Some(j) = bn {
            let bn = &self.steps[j];
            let Op::BatchNorm { eps, .. } = bn.op else {
                unreachable!("a fusion's bn is a batch norm")
            };
            let roles = bn.bn.expect("a batch norm step has its tensors by role");
            let t = |k: usize| self.tensors[k].var.as_detached_tensor();
            let (gamma, beta, mean, var) = (
                t(roles.weight),
                t(roles.bias),
                t(roles.running_mean),
                t(roles.running_var),
            );
            let scale = (gamma / (var + eps)?.sqrt()?)?;
            w = w.broadcast_mul(&scale.reshape((out as usize, 1, 1, 1))?)?;
            b = ((b - mean)? * &scale)?.add(&beta)?;
        }
        kernels::conv::conv2d_bias_relu(x, &w, &b, relu.is_some(), &conv_geometry(&step.op))
    }

    /// Batch normalisation over every axis but the channels (BN2d on images,
    /// BN1d on flat features), as PyTorch: training normalises with the
    /// biased batch variance and moves the running variance with the
    /// unbiased one.
    fn batch_norm(
        &self,
        step: &Step,
        v: &Tensor,
        (eps, momentum): (f64, f64),
        mode: Mode,
        relu: bool,
    ) -> candle_core::Result<Tensor> {
        let c = v.dim(1)?;
        let mut bshape = vec![1usize; v.rank()];
        bshape[1] = c;
        let roles = step.bn.expect("a batch norm step has its tensors by role");
        let weight = self
            .param_at(step, roles.weight, mode)
            .reshape(bshape.clone())?;
        let bias = self
            .param_at(step, roles.bias, mode)
            .reshape(bshape.clone())?;
        let running_mean = &self.tensors[roles.running_mean].var;
        let running_var = &self.tensors[roles.running_var].var;
        let counter = &self.tensors[roles.num_batches_tracked].var;
        // A frozen BN stays in evaluation mode while the rest trains.
        let mode = if step.frozen && mode == Mode::Train {
            Mode::Eval
        } else {
            mode
        };
        match mode {
            Mode::Eval | Mode::Infer => {
                let mean = running_mean.as_tensor().reshape(bshape.clone())?;
                let var = running_var.as_tensor().reshape(bshape.clone())?;
                let inv_std = (var + eps)?.sqrt()?.recip()?;
                let y = v
                    .broadcast_sub(&mean)?
                    .broadcast_mul(&(inv_std.broadcast_mul(&weight))?)?
                    .broadcast_add(&bias)?;
                if relu {
                    kernels::norm::relu(&y)
                } else {
                    Ok(y)
                }
            }
            Mode::Train => {
                // One value per channel has no variance to normalise by (PyTorch
                // refuses it too).
                if v.elem_count() <= c {
                    candle_core::bail!(
                        "batch norm in training needs more than one value per channel, got input {:?}: use a batch size of at least 2",
                        v.dims()
                    )
                }
                let (y, stats) = kernels::norm::batch_norm_train(
                    v,
                    &self.param_at(step, roles.weight, mode),
                    &self.param_at(step, roles.bias, mode),
                    eps,
                    relu,
                )?;
                let count = v.elem_count() / c;
                // PyTorch moves the running variance with the unbiased one.
                let correction = if count > 1 {
                    count as f64 / (count - 1) as f64
                } else {
                    1.0
                };
                let m = momentum;
                let mean = stats.mean.to_dtype(v.dtype())?;
                let var = (stats.var * correction)?.to_dtype(v.dtype())?;
                running_mean.set(&((running_mean.as_tensor() * (1.0 - m))? + (mean * m)?)?)?;
                running_var.set(&((running_var.as_tensor() * (1.0 - m))? + (var * m)?)?)?;
                counter.set(&(counter.as_tensor() + 1.0)?)?;
                Ok(y)
            }
        }
    }
}

/// AlexNet's local response normalisation across channels, as PyTorch's
/// `LocalResponseNorm`: b = a / (k + alpha/size * sum of a^2 over `size`
/// neighbouring channels)^beta, the window zero-padded at the ends.
pub fn local_response_norm(
    x: &Tensor,
    size: usize,
    alpha: f64,
    beta: f64,
    k: f64,
) -> candle_core::Result<Tensor> {
    let c = x.dim(1)?;
    let sq = x.sqr()?.pad_with_zeros(1, size / 2, (size - 1) / 2)?;
    let mut sum = sq.narrow(1, 0, c)?;
    for i in 1..size {
        sum = (sum + sq.narrow(1, i, c)?)?;
    }
    let denom = ((sum * (alpha / size as f64))? + k)?.powf(beta)?;
    x / denom
}

/// Inverted dropout: zero each element with probability `p`, scale the rest
/// by 1/(1-p), masks from our seeded RNG.
pub fn dropout(x: &Tensor, p: f64, rng: &mut impl Rng) -> candle_core::Result<Tensor> {
    if p <= 0.0 {
        return Ok(x.clone());
    }
    if p >= 1.0 {
        return x.zeros_like();
    }
    let scale = 1.0 / (1.0 - p);
    let mask: Vec<f32> = (0..x.elem_count())
        .map(|_| {
            if rng.random::<f64>() < p {
                0.0
            } else {
                scale as f32
            }
        })
        .collect();
    let mask = Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?;
    kernels::mask::mul_mask(x, &mask)
}

/// SELU's constants, as PyTorch (Klambauer et al. 2017).
const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
const SELU_SCALE: f64 = 1.050_700_987_355_480_5;

/// The kernel's geometry of a `conv` op.
fn conv_geometry(op: &Op) -> Conv2dGeometry {
    let Op::Conv {
        stride,
        padding,
        dilation,
        groups,
        ..
    } = op
    else {
        unreachable!("conv_geometry of a {}", op.kind())
    };
    Conv2dGeometry {
        stride: [stride.h as usize, stride.w as usize],
        pad_begin: [padding.begin.h as usize, padding.begin.w as usize],
        pad_end: [padding.end.h as usize, padding.end.w as usize],
        dilation: [dilation.h as usize, dilation.w as usize],
        groups: *groups as usize,
    }
}

#[deny(clippy::wildcard_enum_match_arm)]
pub fn activation(x: &Tensor, a: Activation) -> candle_core::Result<Tensor> {
    match a {
        Activation::Relu => kernels::norm::relu(x),
        Activation::LeakyRelu { slope } => candle_nn::ops::leaky_relu(x, slope),
        Activation::Elu { alpha } => x.elu(alpha),
        Activation::Selu => x.elu(SELU_ALPHA)? * SELU_SCALE,
        Activation::Gelu => x.gelu_erf(),
        Activation::Sigmoid => candle_nn::ops::sigmoid(x),
        Activation::Tanh => x.tanh(),
        Activation::Softmax => candle_nn::ops::softmax(x, 1),
    }
}
