//! The elaborated network: a petgraph graph of ops with dotted names.
//!
//! Built once by `elaborate`, then only read (by the analyzer and, later, the
//! runtime). Nodes are added in execution order, so `node_indices()` is a
//! topological order. Edge weights are input positions: the order of the
//! operands of `concat` and `add` is kept.

use crate::diagnostic::{Source, Span};
use crate::ops::OpKind;
use petgraph::graph::DiGraph;
pub use petgraph::graph::NodeIndex;
use petgraph::visit::EdgeRef;
use petgraph::Direction;
use std::fmt;
use std::rc::Rc;

/// The shape of one example's activation (the batch is never part of it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shape {
    /// Channels x height x width.
    Image { c: u64, h: u64, w: u64 },
    /// A flat feature vector.
    Flat(u64),
}

impl Shape {
    /// Number of elements, or `None` on overflow.
    pub fn elements(&self) -> Option<u64> {
        match *self {
            Shape::Image { c, h, w } => c.checked_mul(h)?.checked_mul(w),
            Shape::Flat(n) => Some(n),
        }
    }
    /// Channels (features for a flat shape).
    pub fn channels(&self) -> u64 {
        match *self {
            Shape::Image { c, .. } => c,
            Shape::Flat(n) => n,
        }
    }
    pub fn dims(&self) -> Vec<u64> {
        match *self {
            Shape::Image { c, h, w } => vec![c, h, w],
            Shape::Flat(n) => vec![n],
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Image { c, h, w } => write!(f, "{c}x{h}x{w}"),
            Shape::Flat(n) => write!(f, "{n}"),
        }
    }
}

/// Height and width of a kernel, stride, padding or dilation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pair {
    pub h: u64,
    pub w: u64,
}

impl Pair {
    pub fn square(v: u64) -> Pair {
        Pair { h: v, w: v }
    }
}

impl fmt::Display for Pair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.h == self.w {
            write!(f, "{}", self.h)
        } else {
            write!(f, "{}x{}", self.h, self.w)
        }
    }
}

/// A conv's padding, before (top, left) and after (bottom, right) the input.
/// `same` is resolved into these numbers once, when the op is built, so
/// every concern (shape, cost, explain, lowering) reads the same pads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Padding {
    pub begin: Pair,
    pub end: Pair,
    /// Written `p=same`: kept for display and for the stride-1 check.
    pub same: bool,
}

impl Padding {
    /// The same padding on every side (`p=1`, `p=0x3`).
    pub fn explicit(p: Pair) -> Padding {
        Padding {
            begin: p,
            end: p,
            same: false,
        }
    }

    /// PyTorch's `padding='same'` (stride 1 only): output size = input size,
    /// a total of `d*(k-1)` per axis; an odd total puts the extra row/column
    /// after.
    pub(crate) fn same(kernel: Pair, dilation: Pair) -> Padding {
        let total = |k: u64, d: u64| d.saturating_mul(k.saturating_sub(1));
        let (th, tw) = (total(kernel.h, dilation.h), total(kernel.w, dilation.w));
        Padding {
            begin: Pair {
                h: th / 2,
                w: tw / 2,
            },
            end: Pair {
                h: th - th / 2,
                w: tw - tw / 2,
            },
            same: true,
        }
    }
}

/// Weight initialisation of a conv or linear layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Init {
    /// `init=kaiming`, the default: PyTorch's own reset for conv and linear
    /// (Kaiming uniform with a = sqrt(5), bias uniform in 1/sqrt(fan_in)).
    Kaiming,
    KaimingNormal {
        fan_out: bool,
    },
    KaimingUniform {
        fan_out: bool,
    },
    Xavier,
    Zeros,
}

impl Init {
    /// The spellings of `init=`, and what each means.
    pub const NAMES: [(&'static str, Init); 7] = [
        ("kaiming", Init::Kaiming),
        ("kaiming_normal", Init::KaimingNormal { fan_out: false }),
        ("kaiming_uniform", Init::KaimingUniform { fan_out: false }),
        (
            "kaiming_normal_fan_out",
            Init::KaimingNormal { fan_out: true },
        ),
        (
            "kaiming_uniform_fan_out",
            Init::KaimingUniform { fan_out: true },
        ),
        ("xavier", Init::Xavier),
        ("zeros", Init::Zeros),
    ];
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Relu,
    LeakyRelu { slope: f64 },
    Elu { alpha: f64 },
    Selu,
    Gelu,
    Sigmoid,
    Tanh,
    Softmax,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    Max,
    Avg,
}

/// Every op of the language. A closed enum: each concern (shape, cost,
/// lowering) is one `match` over it, so an op's rules stay in view.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// The network's image input.
    Input,
    Conv {
        out: u64,
        kernel: Pair,
        stride: Pair,
        padding: Padding,
        dilation: Pair,
        groups: u64,
        bias: bool,
        init: Init,
    },
    Linear {
        out: u64,
        bias: bool,
        init: Init,
    },
    Pool {
        kind: PoolKind,
        kernel: Pair,
        stride: Pair,
        padding: Pair,
        ceil: bool,
        /// avgpool: leave padded zeros out of the mean (PyTorch's
        /// `count_include_pad=False`).
        exclude_pad: bool,
    },
    /// Global average pool to Cx1x1.
    GlobalAvgPool,
    AdaptiveAvgPool {
        out: Pair,
    },
    BatchNorm {
        eps: f64,
        momentum: f64,
        gamma: f64,
    },
    Lrn {
        size: u64,
        alpha: f64,
        beta: f64,
        k: f64,
    },
    /// Inverted dropout; `p` is the probability of dropping.
    Dropout {
        p: f64,
    },
    Act(Activation),
    /// One learned slope per channel.
    Prelu,
    Flatten,
    Identity,
    /// Joins its inputs along channels, in edge order.
    Concat,
    /// Sums its inputs.
    Add,
    /// ResNet option A shortcut: subsample by `stride`, pad the new channels
    /// with zeros (half before, half after).
    ZeroPad {
        out: u64,
        stride: u64,
    },
}

impl Op {
    /// The op's keyword in the language (`conv`, `maxpool`, ...), from
    /// the one table of keywords, `ops::OPS`.
    pub fn kind(&self) -> &'static str {
        crate::ops::keyword(self.op_kind())
    }

    /// Which row of `ops::OPS` the op is.
    pub fn op_kind(&self) -> OpKind {
        match self {
            Op::Input => OpKind::Input,
            Op::Conv { .. } => OpKind::Conv,
            Op::Linear { .. } => OpKind::Linear,
            Op::Pool { kind, .. } => match kind {
                PoolKind::Max => OpKind::MaxPool,
                PoolKind::Avg => OpKind::AvgPool,
            },
            Op::GlobalAvgPool => OpKind::GlobalAvgPool,
            Op::AdaptiveAvgPool { .. } => OpKind::AdaptiveAvgPool,
            Op::BatchNorm { .. } => OpKind::BatchNorm,
            Op::Lrn { .. } => OpKind::Lrn,
            Op::Dropout { .. } => OpKind::Dropout,
            Op::Act(a) => match a {
                Activation::Relu => OpKind::Relu,
                Activation::LeakyRelu { .. } => OpKind::LeakyRelu,
                Activation::Elu { .. } => OpKind::Elu,
                Activation::Selu => OpKind::Selu,
                Activation::Gelu => OpKind::Gelu,
                Activation::Sigmoid => OpKind::Sigmoid,
                Activation::Tanh => OpKind::Tanh,
                Activation::Softmax => OpKind::Softmax,
            },
            Op::Prelu => OpKind::Prelu,
            Op::Flatten => OpKind::Flatten,
            Op::Identity => OpKind::Identity,
            Op::Concat => OpKind::Concat,
            Op::Add => OpKind::Add,
            Op::ZeroPad { .. } => OpKind::ZeroPad,
        }
    }

    /// Whether the op has trainable weights (conv, linear, batch norm's
    /// scale and shift, PReLU's slopes): its output needs a gradient in
    /// training unless it is frozen.
    pub fn is_trainable(&self) -> bool {
        match self {
            Op::Conv { .. } | Op::Linear { .. } | Op::BatchNorm { .. } | Op::Prelu => true,
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
            | Op::ZeroPad { .. } => false,
        }
    }

    /// Whether the op has weights: conv and linear, the layers papers count
    /// in a network's depth.
    pub fn is_weight_layer(&self) -> bool {
        match self {
            Op::Conv { .. } | Op::Linear { .. } => true,
            Op::Input
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
            | Op::ZeroPad { .. } => false,
        }
    }
}

/// The op as the language writes it, arguments evaluated and defaults left
/// out: `conv 64 k=3 s=2 p=1`, `maxpool k=3 s=2`, `dropout 0.5`. Two ops
/// that print the same are the same op (what `cnncost diff` shows).
impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = self.kind();
        let init = |init: Init| {
            Init::NAMES
                .iter()
                .find(|(_, i)| *i == init && init != Init::Kaiming)
                .map_or(String::new(), |(n, _)| format!(" init={n}"))
        };
        let bias = |bias: bool| if bias { "" } else { " bias=false" };
        match *self {
            Op::Conv {
                out,
                kernel,
                stride,
                padding,
                dilation,
                groups,
                bias: b,
                init: i,
            } => {
                write!(f, "{kind} {out} k={kernel}")?;
                if stride != Pair::square(1) {
                    write!(f, " s={stride}")?;
                }
                if padding.same {
                    write!(f, " p=same")?;
                } else if padding.begin != Pair::square(0) {
                    write!(f, " p={}", padding.begin)?;
                }
                if dilation != Pair::square(1) {
                    write!(f, " d={dilation}")?;
                }
                if groups != 1 {
                    write!(f, " g={groups}")?;
                }
                write!(f, "{}{}", bias(b), init(i))
            }
            Op::Linear {
                out,
                bias: b,
                init: i,
            } => {
                write!(f, "{kind} {out}{}{}", bias(b), init(i))
            }
            Op::Pool {
                kernel,
                stride,
                padding,
                ceil,
                exclude_pad,
                ..
            } => {
                write!(f, "{kind} k={kernel}")?;
                if stride != kernel {
                    write!(f, " s={stride}")?;
                }
                if padding != Pair::square(0) {
                    write!(f, " p={padding}")?;
                }
                if ceil {
                    write!(f, " ceil")?;
                }
                if exclude_pad {
                    write!(f, " exclude_pad")?;
                }
                Ok(())
            }
            Op::AdaptiveAvgPool { out } => write!(f, "{kind} {}x{}", out.h, out.w),
            Op::BatchNorm {
                eps,
                momentum,
                gamma,
            } => {
                write!(f, "{kind}")?;
                for (name, value, default) in [
                    ("eps", eps, 1e-5),
                    ("momentum", momentum, 0.1),
                    ("gamma", gamma, 1.0),
                ] {
                    if value != default {
                        write!(f, " {name}={value}")?;
                    }
                }
                Ok(())
            }
            Op::Lrn {
                size,
                alpha,
                beta,
                k,
            } => write!(f, "{kind} size={size} alpha={alpha} beta={beta} k={k}"),
            Op::Dropout { p } => write!(f, "{kind} {p}"),
            Op::Act(Activation::LeakyRelu { slope: a } | Activation::Elu { alpha: a }) => {
                write!(f, "{kind} a={a}")
            }
            Op::ZeroPad { out, stride } => write!(f, "{kind} {out} s={stride}"),
            Op::Act(
                Activation::Relu
                | Activation::Selu
                | Activation::Gelu
                | Activation::Sigmoid
                | Activation::Tanh
                | Activation::Softmax,
            )
            | Op::Input
            | Op::GlobalAvgPool
            | Op::Prelu
            | Op::Flatten
            | Op::Identity
            | Op::Concat
            | Op::Add => f.write_str(kind),
        }
    }
}

/// Which part of the network a node belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Main,
    /// Inside a residual's `project` shortcut (left out of depth).
    Shortcut,
    /// Inside a `head`; `train` heads count in training totals only.
    Head {
        train: bool,
    },
}

/// A block call on the way to a node: `bottleneck` called at a place, giving
/// the scope `layer1.0`.
#[derive(Clone, Debug, PartialEq)]
pub struct CallSite {
    pub block: String,
    pub span: Span,
    pub scope: Name,
}

/// The block calls that led to a node: a shared list, so that a call adds
/// one link whatever its depth (a copied list per call would make deep call
/// chains cost memory quadratic in their depth, per node).
#[derive(Clone, Debug, Default)]
pub struct CallChain(Option<Rc<CallLink>>);

#[derive(Debug)]
struct CallLink {
    site: CallSite,
    outer: CallChain,
}

impl CallChain {
    /// This chain with one more (innermost) call.
    pub fn push(&self, site: CallSite) -> CallChain {
        CallChain(Some(Rc::new(CallLink {
            site,
            outer: self.clone(),
        })))
    }
    /// The chain without its innermost call.
    pub fn outer(&self) -> CallChain {
        self.0
            .as_ref()
            .map_or_else(CallChain::default, |l| l.outer.clone())
    }
    /// The calls, innermost first.
    pub fn iter(&self) -> impl Iterator<Item = &CallSite> {
        std::iter::successors(self.0.as_deref(), |l| l.outer.0.as_deref()).map(|l| &l.site)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }
    /// The calls, outermost first.
    pub fn to_vec(&self) -> Vec<CallSite> {
        let mut v: Vec<CallSite> = self.iter().cloned().collect();
        v.reverse();
        v
    }
}

impl Drop for CallChain {
    /// Unlinks iteratively: a long chain dropped recursively could overflow
    /// the stack.
    fn drop(&mut self) {
        let mut next = self.0.take();
        while let Some(link) = next {
            match Rc::try_unwrap(link) {
                Ok(mut l) => next = l.outer.0.take(),
                Err(_) => break,
            }
        }
    }
}

/// A dotted full name, stored once: a node, its statement's row and the
/// elaborator's table of taken names share one allocation.
pub type Name = Rc<str>;

#[derive(Clone, Debug)]
pub struct Node {
    pub op: Op,
    /// Dotted full name: the table row, and the parameter prefix
    /// (`layer1.0.conv1` owns `layer1.0.conv1.weight`).
    pub name: Name,
    /// The op's text in the source.
    pub span: Span,
    /// Output shape for one example.
    pub shape: Shape,
    pub role: Role,
    /// The innermost statement that produced the node (index into
    /// `Network::statements`).
    pub statement: u32,
    /// The block calls that led here.
    pub calls: CallChain,
}

/// A statement instance, for the table's rows: statements nest (a block call
/// holds its body's statements), and `--depth N` cuts this tree at level N.
#[derive(Clone, Debug)]
pub struct Statement {
    /// Row name: the label's full name, or the first op's name (then the
    /// same allocation as the node's).
    pub name: Name,
    pub parent: Option<u32>,
    /// 1 for top-level statements.
    pub level: u32,
    pub span: Span,
}

/// A parsed `expect` line, kept for the analyzer to evaluate.
#[derive(Clone, Debug, PartialEq)]
pub struct Expectation {
    pub train: bool,
    pub quantity: Quantity,
    pub cmp: Cmp,
    pub value: ExpectValue,
    pub tolerance: Option<Tolerance>,
    pub span: Span,
    /// The line as written, for reports.
    pub text: String,
}

/// The comparison of an `expect` line (`=`, `<`, `<=`, `>`, `>=`, `~`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
    Approx,
}

impl Cmp {
    pub fn symbol(self) -> &'static str {
        match self {
            Cmp::Eq => "=",
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
            Cmp::Approx => "~",
        }
    }
}

/// `± 0.5%` (relative) or `± 1M` (absolute).
#[derive(Clone, Debug, PartialEq)]
pub struct Tolerance {
    pub value: f64,
    pub percent: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quantity {
    Params,
    Buffers,
    Macs,
    Flops,
    Depth,
    /// Total activation elements (see docs/costs.md).
    Activations,
    /// Peak live activation bytes.
    Memory,
    /// The main output's shape.
    Output,
}

impl Quantity {
    pub const ALL: [(&'static str, Quantity); 8] = [
        ("params", Quantity::Params),
        ("buffers", Quantity::Buffers),
        ("macs", Quantity::Macs),
        ("flops", Quantity::Flops),
        ("depth", Quantity::Depth),
        ("activations", Quantity::Activations),
        ("memory", Quantity::Memory),
        ("output", Quantity::Output),
    ];
    pub fn name(self) -> &'static str {
        Quantity::ALL
            .iter()
            .find(|(_, q)| *q == self)
            .map_or("?", |(n, _)| n)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExpectValue {
    /// A number; `text` as written fixes the rounding that `~` allows.
    Number {
        value: f64,
        text: String,
    },
    Shape(Shape),
}

/// The value of a `meta` line.
#[derive(Clone, Debug, PartialEq)]
pub enum MetaValue {
    Text(String),
    /// A number; `text` as written.
    Number {
        value: f64,
        text: String,
    },
}

#[derive(Clone, Debug)]
pub struct Network {
    pub name: String,
    pub source: Source,
    pub input: Shape,
    /// Network parameters after `--set`, in header order.
    pub params: Vec<(String, crate::value::Value)>,
    pub graph: DiGraph<Node, u32>,
    /// The main output.
    pub output: NodeIndex,
    /// Side outputs of `head` statements.
    pub heads: Vec<NodeIndex>,
    pub statements: Vec<Statement>,
    pub expectations: Vec<Expectation>,
    /// `meta` lines, in file order.
    pub meta: Vec<(String, MetaValue)>,
}

impl Network {
    /// A `meta` value that is a number (`meta top1 = 76.13`).
    pub fn meta_number(&self, key: &str) -> Option<f64> {
        self.meta
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| match v {
                MetaValue::Number { value, .. } => Some(*value),
                MetaValue::Text(_) => None,
            })
    }

    /// A `meta` value that is a string (`meta dataset = "imagenet"`).
    pub fn meta_text(&self, key: &str) -> Option<&str> {
        self.meta
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| match v {
                MetaValue::Text(t) => Some(t.as_str()),
                MetaValue::Number { .. } => None,
            })
    }

    /// A node's inputs, in operand order.
    pub fn inputs(&self, node: NodeIndex) -> Vec<NodeIndex> {
        let mut edges: Vec<(u32, NodeIndex)> = self
            .graph
            .edges_directed(node, Direction::Incoming)
            .map(|e| (*e.weight(), e.source()))
            .collect();
        edges.sort_unstable_by_key(|e| e.0);
        edges.into_iter().map(|e| e.1).collect()
    }

    /// The input shapes of a node, in operand order.
    pub fn input_shapes(&self, node: NodeIndex) -> Vec<Shape> {
        self.inputs(node)
            .into_iter()
            .map(|n| self.graph[n].shape)
            .collect()
    }

    pub fn node_by_name(&self, name: &str) -> Option<NodeIndex> {
        self.graph
            .node_indices()
            .find(|&n| &*self.graph[n].name == name)
    }
}

/// What a stored tensor of an op is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorKind {
    /// Trainable (counted in `params`).
    Param,
    /// A float buffer such as BN's running statistics (counted in `buffers`).
    Buffer,
    /// An integer counter (BN's `num_batches_tracked`): listed, not counted.
    Counter,
}

impl TensorKind {
    pub fn name(self) -> &'static str {
        match self {
            TensorKind::Param => "param",
            TensorKind::Buffer => "buffer",
            TensorKind::Counter => "counter",
        }
    }
}

/// One stored tensor of an op, named as PyTorch's `state_dict` names it
/// (the op's full name, a dot, then `suffix`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSpec {
    pub suffix: &'static str,
    pub shape: Vec<u64>,
    pub kind: TensorKind,
}

impl TensorSpec {
    pub fn elements(&self) -> Option<u64> {
        self.shape.iter().try_fold(1u64, |a, &b| a.checked_mul(b))
    }
}

impl Op {
    /// Calls `f(suffix, shape, kind)` for each of the op's weights and
    /// buffers, in PyTorch's `state_dict` order, given its (first) input
    /// shape. The one list of an op's tensors: parameter counts and the
    /// state-dict names both come from it. No allocation, so the analyzer
    /// can count a million ops quickly.
    pub fn for_each_tensor(
        &self,
        input: Shape,
        mut f: impl FnMut(&'static str, &[u64], TensorKind),
    ) {
        use TensorKind::{Buffer, Counter, Param};
        match *self {
            Op::Conv {
                out,
                kernel,
                groups,
                bias,
                ..
            } => {
                f(
                    "weight",
                    &[out, input.channels() / groups.max(1), kernel.h, kernel.w],
                    Param,
                );
                if bias {
                    f("bias", &[out], Param);
                }
            }
            Op::Linear { out, bias, .. } => {
                f("weight", &[out, input.channels()], Param);
                if bias {
                    f("bias", &[out], Param);
                }
            }
            Op::BatchNorm { .. } => {
                let c = input.channels();
                f("weight", &[c], Param);
                f("bias", &[c], Param);
                f("running_mean", &[c], Buffer);
                f("running_var", &[c], Buffer);
                f("num_batches_tracked", &[], Counter);
            }
            Op::Prelu => f("weight", &[input.channels()], Param),
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
            | Op::ZeroPad { .. } => {}
        }
    }

    /// The op's weights and buffers as a list (see `for_each_tensor`).
    pub fn tensors(&self, input: Shape) -> Vec<TensorSpec> {
        let mut v = Vec::new();
        self.for_each_tensor(input, |suffix, shape, kind| {
            v.push(TensorSpec {
                suffix,
                shape: shape.to_vec(),
                kind,
            })
        });
        v
    }
}

impl Network {
    /// `note:` lines giving the chain of block calls that made a node.
    pub fn call_notes(&self, calls: &CallChain) -> Vec<String> {
        call_notes(&self.source, calls)
    }
}

/// `in block `bottleneck` called at file:21:9 (layer1.0)`, innermost first.
pub fn call_notes(source: &Source, calls: &CallChain) -> Vec<String> {
    calls
        .iter()
        .map(|c| {
            format!(
                "in block `{}` called at {} ({})",
                c.block,
                source.location(c.span.start),
                c.scope
            )
        })
        .collect()
}
