//! The execution plan of a training step, derived from the IR: which ops the
//! runtime runs as one ([`fusions`]), which ops record a backward ([`tracked`]),
//! what each op keeps for its backward under each policy ([`kept`]), and what
//! the optimiser keeps and allocates ([`Optimizer`]).
//!
//! It sits below the analyzer and the runtime: the runtime executes these
//! decisions and the analyzer counts them, so the two cannot drift apart. The
//! rules and their sources are in docs/costs.md ("Training").

use crate::ir::{Activation, Network, Op, Shape};
use petgraph::Direction;
use std::fmt;
use std::str::FromStr;

/// Ops that run as one because the second is the first's only reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fused {
    /// A convolution with the batch norm and/or ReLU after it: in inference
    /// only (nothing recorded for a backward), the BN folded into the
    /// weights, the ReLU applied while the output is in cache.
    Conv {
        bn: Option<usize>,
        relu: Option<usize>,
    },
    /// A two-operand residual sum with its ReLU (every mode).
    AddRelu { relu: usize },
    /// A batch norm with its ReLU (every mode).
    BnRelu { relu: usize },
}

impl Fused {
    /// Whether the group runs in a training step: a conv group with a batch
    /// norm folds running statistics into the weights, so it runs in
    /// inference only; a conv and its ReLU run as one in training too.
    pub fn in_training(self) -> bool {
        match self {
            Fused::Conv { bn, .. } => bn.is_none(),
            Fused::AddRelu { .. } | Fused::BnRelu { .. } => true,
        }
    }

    /// The ops after the first that the group runs.
    pub fn taken_over(self) -> [Option<usize>; 2] {
        match self {
            Fused::Conv { bn, relu } => [bn, relu],
            Fused::AddRelu { relu } | Fused::BnRelu { relu } => [Some(relu), None],
        }
    }

    /// The op whose output the group gives (the last one it takes over).
    pub fn last(self, first: usize) -> usize {
        match self {
            Fused::Conv { bn, relu } => relu.or(bn).unwrap_or(first),
            Fused::AddRelu { relu } | Fused::BnRelu { relu } => relu,
        }
    }
}

/// For each op of a fused group but its last, the last's index: where the
/// group's output, and in inference its work, is (`fusions`' groups, as
/// the runtime's inference runs them; `cnncost profile` measures them
/// there).
pub fn fused_into(fused: &[Option<Fused>]) -> Vec<Option<usize>> {
    let mut into = vec![None; fused.len()];
    for (i, f) in fused.iter().enumerate() {
        let Some(f) = *f else { continue };
        let last = f.last(i);
        for m in std::iter::once(i).chain(f.taken_over().into_iter().flatten()) {
            if m != last {
                into[m] = Some(last);
            }
        }
    }
    into
}

/// The part an op can play in a [`Fused`] group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FusionPart {
    Conv,
    BatchNorm,
    Relu,
    Add,
}

/// Every op named, so that a new op is placed here (most play no part).
#[deny(clippy::wildcard_enum_match_arm)]
fn fusion_part(op: &Op) -> Option<FusionPart> {
    match op {
        Op::Conv { .. } => Some(FusionPart::Conv),
        Op::BatchNorm { .. } => Some(FusionPart::BatchNorm),
        Op::Act(a) => match a {
            Activation::Relu => Some(FusionPart::Relu),
            Activation::LeakyRelu { .. }
            | Activation::Elu { .. }
            | Activation::Selu
            | Activation::Gelu
            | Activation::Sigmoid
            | Activation::Tanh
            | Activation::Softmax => None,
        },
        Op::Add => Some(FusionPart::Add),
        Op::Input
        | Op::Linear { .. }
        | Op::Pool { .. }
        | Op::GlobalAvgPool
        | Op::AdaptiveAvgPool { .. }
        | Op::Lrn { .. }
        | Op::Dropout { .. }
        | Op::Prelu
        | Op::Flatten
        | Op::Identity
        | Op::Concat
        | Op::ZeroPad { .. } => None,
    }
}

/// Per node (by index), its inputs in operand order.
pub fn operands(net: &Network) -> Vec<Vec<usize>> {
    net.graph
        .node_indices()
        .map(|n| net.inputs(n).iter().map(|i| i.index()).collect())
        .collect()
}

/// Per node, how many ops read its output; the main output and the heads
/// count one reader more (the loss), so they are never freed.
pub fn readers(net: &Network) -> Vec<usize> {
    let g = &net.graph;
    let mut r: Vec<usize> = g
        .node_indices()
        .map(|n| g.neighbors_directed(n, Direction::Outgoing).count())
        .collect();
    for out in std::iter::once(net.output).chain(net.heads.iter().copied()) {
        r[out.index()] += 1;
    }
    r
}

/// Per node, the fusion group that starts there.
pub fn fusions(net: &Network) -> Vec<Option<Fused>> {
    let ops: Vec<&Op> = net.graph.node_weights().map(|n| &n.op).collect();
    let inputs = operands(net);
    let readers = readers(net);
    let mut only_reader = vec![None; ops.len()];
    for (i, ins) in inputs.iter().enumerate() {
        for &j in ins {
            only_reader[j] = (readers[j] == 1).then_some(i);
        }
    }
    let follower = |i: usize, wanted: FusionPart| {
        only_reader[i].filter(|&j| inputs[j] == [i] && fusion_part(ops[j]) == Some(wanted))
    };
    (0..ops.len())
        .map(|i| match fusion_part(ops[i])? {
            FusionPart::Conv => {
                let bn = follower(i, FusionPart::BatchNorm);
                let relu = follower(bn.unwrap_or(i), FusionPart::Relu);
                (bn.is_some() || relu.is_some()).then_some(Fused::Conv { bn, relu })
            }
            FusionPart::Add if inputs[i].len() == 2 => {
                follower(i, FusionPart::Relu).map(|relu| Fused::AddRelu { relu })
            }
            FusionPart::BatchNorm => {
                follower(i, FusionPart::Relu).map(|relu| Fused::BnRelu { relu })
            }
            FusionPart::Add | FusionPart::Relu => None,
        })
        .collect()
}

/// Whether an op's name is `p` or under `p.` for a `--freeze` prefix `p`
/// (`layer1` freezes `layer1.0.conv1`, not `layer10`).
pub fn frozen_by(name: &str, prefixes: &[String]) -> bool {
    prefixes
        .iter()
        .any(|p| name == p || (name.starts_with(p.as_str()) && name[p.len()..].starts_with('.')))
}

/// Per node, whether its output needs a gradient: it has trainable weights
/// (not frozen) or an input that needs one. An op none of whose inputs or
/// weights need a gradient records no backward and keeps nothing.
pub fn tracked(net: &Network, frozen: &[bool]) -> Vec<bool> {
    let inputs = operands(net);
    let mut t = vec![false; inputs.len()];
    for (i, n) in net.graph.node_weights().enumerate() {
        let trains = n.op.is_trainable() && !frozen[i];
        t[i] = trains || inputs[i].iter().any(|&j| t[j]);
    }
    t
}

/// Which tensors are kept for the backward: PyTorch autograd's rules, or
/// what our runtime really keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SavedPolicy {
    /// PyTorch autograd's saved tensors, from its derivative definitions
    /// (tools/autograd/derivatives.yaml), with torchvision's in-place ReLUs.
    Pytorch,
    /// Our runtime: candle's graph holds every operand of every recorded op
    /// until the backward ends, plus the ops' own intermediates.
    #[default]
    Cnncost,
}

impl SavedPolicy {
    pub const NAMES: [(&'static str, SavedPolicy); 2] = [
        ("pytorch", SavedPolicy::Pytorch),
        ("cnncost", SavedPolicy::Cnncost),
    ];
    pub fn name(self) -> &'static str {
        match self {
            SavedPolicy::Pytorch => "pytorch",
            SavedPolicy::Cnncost => "cnncost",
        }
    }
}

impl fmt::Display for SavedPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SavedPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<SavedPolicy, String> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, p)| *p)
            .ok_or_else(|| format!("unknown policy `{s}` (pytorch or cnncost)"))
    }
}

/// The element type of a kept tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elem {
    /// The activations' type (`--dtype`).
    Activation,
    /// Max-pool indices in PyTorch.
    I64,
    /// Per-channel batch statistics in PyTorch (f32 whatever the input).
    F32,
    /// Per-channel batch statistics in our runtime.
    F64,
}

impl Elem {
    /// Bytes per element, given the activations' size.
    pub fn bytes(self, activation: u64) -> u64 {
        match self {
            Elem::Activation => activation,
            Elem::I64 | Elem::F64 => 8,
            Elem::F32 => 4,
        }
    }
}

/// Which storage a kept tensor is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    /// Operand `k`'s storage (shared with whoever else keeps it).
    Input(usize),
    /// The op's own output.
    Output,
    /// A tensor of the op's own: indices, a mask, statistics, an
    /// intermediate.
    Own,
}

/// One tensor an op keeps from its forward until its backward.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kept {
    pub what: &'static str,
    pub storage: Storage,
    /// Elements per example (`per_example`), or for the whole batch.
    pub elements: u64,
    pub per_example: bool,
    pub elem: Elem,
}

impl Kept {
    fn input(k: usize, elements: u64) -> Kept {
        Kept {
            what: "input",
            storage: Storage::Input(k),
            elements,
            per_example: true,
            elem: Elem::Activation,
        }
    }
    fn output(elements: u64) -> Kept {
        Kept {
            what: "output",
            storage: Storage::Output,
            elements,
            per_example: true,
            elem: Elem::Activation,
        }
    }
    fn own(what: &'static str, elements: u64, elem: Elem) -> Kept {
        Kept {
            what,
            storage: Storage::Own,
            elements,
            per_example: true,
            elem,
        }
    }
    fn per_channel(what: &'static str, elements: u64, elem: Elem) -> Kept {
        Kept {
            what,
            storage: Storage::Own,
            elements,
            per_example: false,
            elem,
        }
    }
}

/// How one op runs in a training step under a policy.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrainingOp {
    /// The op writes no new tensor: its output is its first operand's
    /// storage (a view, an in-place op, or the ReLU of a fused group).
    pub output_is_input: bool,
    /// What it keeps for its backward (empty when it is not tracked).
    pub kept: Vec<Kept>,
    /// Why, in a sentence (for `--explain --train`).
    pub why: &'static str,
}

/// Where a node stands in a fusion group of the runtime (training only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupRole {
    Alone,
    /// The first op of a group: it writes the group's output.
    Head,
    /// The ReLU of a group: it writes nothing, the head did.
    Tail,
}

/// Per node, its role in the training step's fusion groups.
pub fn group_roles(fused: &[Option<Fused>]) -> Vec<GroupRole> {
    let mut roles = vec![GroupRole::Alone; fused.len()];
    for (i, f) in fused.iter().enumerate() {
        if let Some(f) = f.filter(|f| f.in_training()) {
            roles[i] = GroupRole::Head;
            roles[f.last(i)] = GroupRole::Tail;
        }
    }
    roles
}

/// What `op` keeps for its backward and whether it writes a new tensor, for
/// one example, under `policy`. `inputs` are the operands' shapes, `readers`
/// how many ops read the first operand (PyTorch's in-place ReLU needs it to
/// be the only one), `role` the op's place in a runtime fusion group.
#[deny(clippy::wildcard_enum_match_arm)]
pub fn training_op(
    op: &Op,
    inputs: &[Shape],
    out: Shape,
    input_readers: usize,
    policy: SavedPolicy,
    role: GroupRole,
) -> TrainingOp {
    let elems = |s: &Shape| s.elements().unwrap_or(u64::MAX);
    let out_n = elems(&out);
    let in_n = inputs.first().map_or(0, elems);
    let channels = inputs.first().map_or(0, Shape::channels);
    let all_inputs = || -> Vec<Kept> {
        inputs
            .iter()
            .enumerate()
            .map(|(k, s)| Kept::input(k, elems(s)))
            .collect()
    };
    let t = |output_is_input: bool, kept: Vec<Kept>, why: &'static str| TrainingOp {
        output_is_input,
        kept,
        why,
    };
    match policy {
        SavedPolicy::Pytorch => match op {
            Op::Input => t(false, vec![], "the input keeps nothing"),
            Op::Conv { .. } => t(
                false,
                vec![Kept::input(0, in_n)],
                "convolution_backward needs the input for the weight gradient (the weight is a parameter)",
            ),
            Op::Linear { .. } => t(
                false,
                vec![Kept::input(0, in_n)],
                "addmm/mm keep the input for the weight gradient (the weight is a parameter)",
            ),
            Op::Pool { kind, .. } => match kind {
                crate::ir::PoolKind::Max => t(
                    false,
                    vec![
                        Kept::input(0, in_n),
                        Kept::own("indices (int64)", out_n, Elem::I64),
                    ],
                    "max_pool2d_with_indices keeps its input and the argmax indices",
                ),
                crate::ir::PoolKind::Avg => t(
                    false,
                    vec![Kept::input(0, in_n)],
                    "avg_pool2d_backward reads the input",
                ),
            },
            // PyTorch runs a 1x1 adaptive pool as a mean, which keeps only
            // sizes.
            Op::GlobalAvgPool => t(false, vec![], "a mean keeps only sizes"),
            Op::AdaptiveAvgPool { out: o } => {
                if o.h == 1 && o.w == 1 {
                    t(false, vec![], "a 1x1 adaptive pool runs as a mean, which keeps only sizes")
                } else {
                    t(
                        false,
                        vec![Kept::input(0, in_n)],
                        "_adaptive_avg_pool2d_backward reads the input",
                    )
                }
            }
            Op::BatchNorm { .. } => t(
                false,
                vec![
                    Kept::input(0, in_n),
                    Kept::per_channel("batch mean and 1/std (f32)", channels.saturating_mul(2), Elem::F32),
                ],
                "native_batch_norm keeps its input and the batch mean and inverse std",
            ),
            Op::Lrn { size, .. } => t(
                false,
                vec![
                    Kept::input(0, in_n),
                    Kept::own("squares, padded", in_n.saturating_add(size.saturating_sub(1).saturating_mul(in_n / channels.max(1))), Elem::Activation),
                    Kept::own("window means, power (base and result)", in_n.saturating_mul(2), Elem::Activation),
                ],
                "local_response_norm is composite: the pooled squares, the power and the division keep their operands",
            ),
            // On CUDA, native_dropout keeps a boolean mask (1 byte).
            Op::Dropout { .. } => t(
                false,
                vec![Kept::own("mask", out_n, Elem::Activation)],
                "on the CPU, dropout is input * noise: the product keeps the noise, a mask of the activations' type",
            ),
            Op::Act(a) => {
                let in_place = input_readers == 1;
                match a {
                    Activation::Relu => t(
                        in_place,
                        vec![Kept::output(out_n)],
                        "threshold_backward reads the result (in place, as torchvision's ReLU(inplace=True))",
                    ),
                    Activation::Sigmoid | Activation::Tanh => t(
                        in_place,
                        vec![Kept::output(out_n)],
                        "the derivative is a function of the result",
                    ),
                    Activation::Softmax => t(
                        false,
                        vec![Kept::output(out_n)],
                        "_softmax_backward_data reads the result",
                    ),
                    Activation::LeakyRelu { .. }
                    | Activation::Elu { .. }
                    | Activation::Selu
                    | Activation::Gelu => t(
                        false,
                        vec![Kept::input(0, in_n)],
                        "the derivative is a function of the input",
                    ),
                }
            }
            Op::Prelu => t(
                false,
                vec![Kept::input(0, in_n)],
                "prelu keeps its input (and its weight, a parameter)",
            ),
            Op::Flatten | Op::Identity => t(true, vec![], "a view keeps nothing"),
            Op::Concat => t(false, vec![], "cat keeps only sizes"),
            Op::Add => t(false, vec![], "add keeps nothing"),
            Op::ZeroPad { .. } => t(false, vec![], "a strided view and constant_pad_nd keep only sizes"),
        },
        SavedPolicy::Cnncost => {
            let fused_tail = role == GroupRole::Tail;
            match op {
                Op::Input => t(false, vec![], "the input keeps nothing"),
                Op::Conv { .. } => t(
                    false,
                    all_inputs(),
                    "the convolution keeps its input for the weight gradient (its bias and a ReLU after it run in the same kernel)",
                ),
                Op::Linear { bias, .. } => {
                    let mut k = all_inputs();
                    if *bias {
                        k.push(Kept::own("output before the bias", out_n, Elem::Activation));
                    }
                    t(
                        false,
                        k,
                        if *bias {
                            "the product keeps its input; the bias is a second op, which keeps the product"
                        } else {
                            "the product keeps its input for the weight gradient"
                        },
                    )
                }
                Op::Pool { .. } | Op::AdaptiveAvgPool { .. } | Op::ZeroPad { .. } => t(
                    false,
                    all_inputs(),
                    "our kernel's backward reads the input (max pool finds the argmax again)",
                ),
                Op::GlobalAvgPool => {
                    let h = match inputs.first() {
                        Some(Shape::Image { h, .. }) => *h,
                        _ => 1,
                    };
                    t(
                        false,
                        {
                            let mut k = all_inputs();
                            // A mean over the width, then over the height: a sum
                            // and its scaling each.
                            k.push(Kept::own(
                                "partial means",
                                channels.saturating_mul(h).saturating_mul(2).saturating_add(channels),
                                Elem::Activation,
                            ));
                            k
                        },
                        "two means over the axes, each a sum and a scaling, kept by the graph",
                    )
                }
                Op::BatchNorm { .. } => {
                    let mut k = all_inputs();
                    k.push(Kept::per_channel("batch mean and variance (f64)", channels.saturating_mul(2), Elem::F64));
                    t(
                        false,
                        k,
                        "our kernel keeps its input and the batch statistics; with a fused ReLU it also reads its output",
                    )
                }
                Op::Lrn { size, .. } => {
                    let c = channels.max(1);
                    let plane = in_n / c;
                    let padded = in_n.saturating_add(size.saturating_sub(1).saturating_mul(plane));
                    let mut k = all_inputs();
                    k.push(Kept::own(
                        "squares, padded squares, running sums, scaled, shifted, powered",
                        in_n.saturating_mul(size.saturating_add(3)).saturating_add(padded),
                        Elem::Activation,
                    ));
                    t(false, k, "composite candle ops: every intermediate is kept by the graph")
                }
                Op::Dropout { p } => {
                    if *p <= 0.0 {
                        t(true, vec![], "dropout with p = 0 is the identity")
                    } else {
                        let mut k = all_inputs();
                        k.push(Kept::own("mask (scaled, activation type)", out_n, Elem::Activation));
                        t(false, k, "the output is the input times a mask; the product keeps both")
                    }
                }
                Op::Act(a) => {
                    if fused_tail {
                        return t(true, vec![], "run inside the op before it (one kernel)");
                    }
                    let extra = match a {
                        Activation::Relu
                        | Activation::Elu { .. }
                        | Activation::Gelu
                        | Activation::Sigmoid
                        | Activation::Tanh => 0,
                        Activation::LeakyRelu { .. } | Activation::Selu => 1,
                        Activation::Softmax => 2,
                    };
                    let mut k = all_inputs();
                    if extra > 0 {
                        k.push(Kept::own("intermediates", out_n.saturating_mul(extra), Elem::Activation));
                    }
                    t(false, k, "the graph keeps the input of every recorded op")
                }
                Op::Prelu => {
                    let mut k = all_inputs();
                    k.push(Kept::own("zeros, max, min, scaled min", out_n.saturating_mul(4), Elem::Activation));
                    t(false, k, "composite candle ops: every intermediate is kept by the graph")
                }
                Op::Flatten | Op::Identity => t(true, all_inputs(), "a view of its input"),
                Op::Concat | Op::Add => t(false, all_inputs(), "the graph keeps the operands"),
            }
        }
    }
}

/// The optimiser of a training step: what it keeps per weight, and the
/// temporaries its step allocates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Optimizer {
    Sgd,
    /// SGD with momentum: `cnncost train`'s default (momentum 0.9, weight
    /// decay 5e-4).
    #[default]
    Momentum,
    Nesterov,
    Adam,
    Adamw,
}

impl Optimizer {
    pub const NAMES: [(&'static str, Optimizer); 5] = [
        ("sgd", Optimizer::Sgd),
        ("momentum", Optimizer::Momentum),
        ("nesterov", Optimizer::Nesterov),
        ("adam", Optimizer::Adam),
        ("adamw", Optimizer::Adamw),
    ];

    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, o)| *o == self)
            .map_or("?", |(n, _)| n)
    }

    /// Tensors of a weight's size kept between steps: the momentum buffer,
    /// or Adam's two moments.
    pub fn state_per_weight(self) -> u64 {
        match self {
            Optimizer::Sgd => 0,
            Optimizer::Momentum | Optimizer::Nesterov => 1,
            Optimizer::Adam | Optimizer::Adamw => 2,
        }
    }

    /// The most temporaries of one weight tensor's size alive at once while
    /// the step updates that tensor, with each optimiser's default weight
    /// decay (5e-4 for the SGD family, none for Adam, 0.01 decoupled for
    /// AdamW). `Cnncost`: none, our kernels update the weight and its state
    /// in place (runtime/src/kernels/update.rs); `Pytorch`: torch.optim's
    /// single-tensor loops (the CPU default), which update in place but for
    /// the decayed gradient and Adam's denominator.
    pub fn step_temporaries(self, policy: SavedPolicy) -> u64 {
        match policy {
            SavedPolicy::Cnncost => 0,
            SavedPolicy::Pytorch => match self {
                // d_p = d_p.add(p, alpha=wd); the rest in place.
                Optimizer::Sgd | Optimizer::Momentum => 1,
                // d_p.add(buf, alpha=momentum) beside the decayed d_p.
                Optimizer::Nesterov => 2,
                // denom = exp_avg_sq.sqrt() / c: two tensors.
                Optimizer::Adam | Optimizer::Adamw => 2,
            },
        }
    }
}

impl fmt::Display for Optimizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Optimizer {
    type Err = String;
    fn from_str(s: &str) -> Result<Optimizer, String> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, o)| *o)
            .ok_or_else(|| {
                format!("unknown optimizer `{s}` (sgd, momentum, nesterov, adam or adamw)")
            })
    }
}

/// Samples per chunk of an im2col convolution run chunk after chunk (the
/// runtime's `Split::Within`): enough columns for an efficient gemm (2048),
/// a column matrix of at most 4 MiB elements. `n` samples, `rows` = C·KH·KW,
/// `positions` = OH·OW. The runtime's kernels and the analyzer's workspace
/// both take it from here.
pub fn im2col_chunk(n: usize, rows: usize, positions: usize) -> usize {
    let p = positions.max(1);
    let by_cols = 2048usize.div_ceil(p);
    let by_mem = ((4usize << 20) / (rows.max(1) * p)).max(1);
    by_cols.min(by_mem).clamp(1, n.max(1))
}

/// Fewer channels than this (in or out) run im2col even where Winograd applies: with
/// 16 channels its 36 products are too thin for the gemm and the transforms dominate
/// (ResNet-20's first stage ran at 0.75x im2col's speed; 32 channels at 1.1-1.2x, 64 at
/// 1.8x; `conv_phases`).
pub const WINOGRAD_MIN_CHANNELS: u64 = 32;

/// Whether a convolution runs Winograd F(4x4, 3x3) in our kernels: 3x3, stride
/// 1, no dilation, no groups, at least [`WINOGRAD_MIN_CHANNELS`] channels in and
/// out (unless `CNNCOST_WINOGRAD=0` switches the fast paths off at run time).
pub fn winograd_applies(
    kernel: [u64; 2],
    stride: [u64; 2],
    dilation: [u64; 2],
    groups: u64,
    channels: [u64; 2],
) -> bool {
    kernel == [3, 3]
        && stride == [1, 1]
        && dilation == [1, 1]
        && groups == 1
        && channels[0].min(channels[1]) >= WINOGRAD_MIN_CHANNELS
}

/// The temporaries of a weight's size that our convolution allocates, in
/// multiples of its weight: forward and backward. Winograd transposes the
/// weights (1) and transforms them into 36 taps for 9 (4); the input
/// gradient of a stride-1 convolution is a convolution with the flipped
/// kernel (1), which may itself take Winograd (5). The im2col paths work in
/// the per-thread scratch instead (the workspace).
pub fn conv_weight_temporaries(op: &Op, in_channels: u64) -> (u64, u64) {
    let Op::Conv {
        out,
        kernel,
        stride,
        padding,
        dilation,
        groups,
        ..
    } = op
    else {
        return (0, 0);
    };
    let winograd = winograd_applies(
        [kernel.h, kernel.w],
        [stride.h, stride.w],
        [dilation.h, dilation.w],
        *groups,
        [in_channels, *out],
    );
    let reach = [
        dilation.h * kernel.h.saturating_sub(1),
        dilation.w * kernel.w.saturating_sub(1),
    ];
    let flips = [stride.h, stride.w] == [1, 1]
        && padding.begin.h <= reach[0]
        && padding.end.h <= reach[0]
        && padding.begin.w <= reach[1]
        && padding.end.w <= reach[1];
    let forward = if winograd { 5 } else { 0 };
    let backward = match (flips, winograd) {
        (true, true) => 6,
        (true, false) => 1,
        (false, _) => 0,
    };
    (forward, backward)
}
