//! Static analysis of an elaborated network: per-op costs, receptive fields,
//! depth and peak activation memory; rows for the table; renderers; `expect`
//! checks. Nothing here allocates a tensor.

#![forbid(unsafe_code)]
#![deny(clippy::wildcard_enum_match_arm)]

pub mod cost;
pub mod device;
pub mod diff;
pub mod expect;
pub mod explain;
pub mod receptive_field;
pub mod render;
pub mod rows;
pub mod sweep;
pub mod training;

use cost::{op_cost, reuses_input, OpCost};
use dsl::diagnostic::Diagnostic;
use dsl::ir::{Network, Role, Shape};
use petgraph::graph::NodeIndex;
use petgraph::visit::EdgeRef;
use petgraph::Direction;
use receptive_field::{propagate, ReceptiveField};
use std::fmt;
use std::str::FromStr;

/// Element type of activations, for memory figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Dtype {
    #[default]
    F32,
    F16,
    Bf16,
}

impl Dtype {
    pub fn bytes(self) -> u64 {
        match self {
            Dtype::F32 => 4,
            Dtype::F16 | Dtype::Bf16 => 2,
        }
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dtype::F32 => "f32",
            Dtype::F16 => "f16",
            Dtype::Bf16 => "bf16",
        })
    }
}

impl FromStr for Dtype {
    type Err = String;
    fn from_str(s: &str) -> Result<Dtype, String> {
        match s {
            "f32" | "float32" => Ok(Dtype::F32),
            "f16" | "float16" | "half" => Ok(Dtype::F16),
            "bf16" | "bfloat16" => Ok(Dtype::Bf16),
            _ => Err(format!("unknown dtype `{s}` (f32, f16 or bf16)")),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    pub batch: u64,
    pub dtype: Dtype,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            batch: 1,
            dtype: Dtype::F32,
        }
    }
}

/// Everything computed about one op.
#[derive(Clone, Debug)]
pub struct Layer {
    pub node: NodeIndex,
    /// Costs for the whole batch (params and buffers do not scale).
    pub cost: OpCost,
    /// Bytes of the op's output for the batch.
    pub activation_bytes: u64,
    /// Whether the output is a new tensor (else it reuses its input's).
    pub stores_output: bool,
    pub receptive_field: ReceptiveField,
    /// Conv and linear layers on the longest path from the input (papers'
    /// depth), up to and including this op.
    pub depth: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub params: u64,
    pub buffers: u64,
    pub macs: u64,
    pub flops: u64,
    /// Stored activations, input included (docs/costs.md).
    pub activation_bytes: u64,
    /// The most activation bytes alive at once (a liveness walk).
    pub peak_activation_bytes: u64,
    pub depth: u64,
}

#[derive(Clone, Debug)]
pub struct Analysis<'n> {
    pub network: &'n Network,
    pub options: Options,
    /// One entry per IR node, input first, in execution order.
    pub layers: Vec<Layer>,
    /// Inference: `head train` branches left out.
    pub totals: Totals,
    /// Training: every head counted. Equal to `totals` when there is no
    /// training-only head.
    pub train_totals: Totals,
    /// A training step's costs, when asked for (`with_training`).
    pub training: Option<training::Training>,
    /// Every op's predicted time on a device, when asked for
    /// (`with_device`).
    pub device: Option<device::Predicted>,
}

impl Analysis<'_> {
    pub fn layer(&self, n: NodeIndex) -> &Layer {
        &self.layers[n.index()]
    }
    pub fn has_train_heads(&self) -> bool {
        self.network
            .graph
            .node_weights()
            .any(|n| n.role == Role::Head { train: true })
    }
}

fn overflow(net: &Network, node: NodeIndex, what: &str) -> Diagnostic {
    let n = &net.graph[node];
    let mut d = Diagnostic::new(format!("{what} of `{}` overflow 64 bits", n.name), n.span)
        .label("the count is larger than 18,446,744,073,709,551,615")
        .help("check the input size, the channel counts and `--batch`");
    d.notes = net.call_notes(&n.calls);
    d
}

/// Every node's inputs in operand order, gathered once into one array
/// (networks of a million ops are analyzed in well under a second).
pub(crate) struct InputTable {
    start: Vec<usize>,
    flat: Vec<NodeIndex>,
}

impl InputTable {
    pub(crate) fn new(net: &Network) -> InputTable {
        let g = &net.graph;
        let mut start = Vec::with_capacity(g.node_count() + 1);
        let mut flat = Vec::with_capacity(g.edge_count());
        let mut edges: Vec<(u32, NodeIndex)> = Vec::new();
        for n in g.node_indices() {
            start.push(flat.len());
            edges.clear();
            edges.extend(
                g.edges_directed(n, Direction::Incoming)
                    .map(|e| (*e.weight(), e.source())),
            );
            edges.sort_unstable_by_key(|e| e.0);
            flat.extend(edges.iter().map(|e| e.1));
        }
        start.push(flat.len());
        InputTable { start, flat }
    }
    pub(crate) fn of(&self, n: NodeIndex) -> &[NodeIndex] {
        &self.flat[self.start[n.index()]..self.start[n.index() + 1]]
    }
}

/// Analyzes a network. The only error is an overflow of a count.
pub fn analyze(net: &Network, options: Options) -> Result<Analysis<'_>, Diagnostic> {
    let g = &net.graph;
    let table = InputTable::new(net);
    let mut layers: Vec<Layer> = Vec::with_capacity(g.node_count());
    let elem_bytes = options.dtype.bytes().checked_mul(options.batch);
    let mut shapes: Vec<Shape> = Vec::new();
    let mut rf_inputs: Vec<(ReceptiveField, Shape)> = Vec::new();
    for n in g.node_indices() {
        let node = &g[n];
        let inputs = table.of(n);
        shapes.clear();
        shapes.extend(inputs.iter().map(|&i| g[i].shape));
        let one =
            op_cost(&node.op, &shapes, node.shape).ok_or_else(|| overflow(net, n, "costs"))?;
        let batch = |v: u64| v.checked_mul(options.batch);
        let cost = OpCost {
            params: one.params,
            buffers: one.buffers,
            macs: batch(one.macs).ok_or_else(|| overflow(net, n, "MACs"))?,
            flops: batch(one.flops).ok_or_else(|| overflow(net, n, "FLOPs"))?,
        };
        let activation_bytes = node
            .shape
            .elements()
            .and_then(|e| e.checked_mul(elem_bytes?))
            .ok_or_else(|| overflow(net, n, "activation bytes"))?;
        let stores_output = match inputs.first() {
            Some(&i) => !reuses_input(
                &node.op,
                g.neighbors_directed(i, Direction::Outgoing).count(),
            ),
            None => true,
        };
        rf_inputs.clear();
        rf_inputs.extend(
            inputs
                .iter()
                .map(|&i| (layers[i.index()].receptive_field, g[i].shape)),
        );
        let receptive_field = if inputs.is_empty() {
            ReceptiveField::PIXEL
        } else {
            propagate(&node.op, &rf_inputs)
        };
        let counts = node.op.is_weight_layer() && node.role != Role::Shortcut;
        let depth = inputs
            .iter()
            .map(|&i| layers[i.index()].depth)
            .max()
            .unwrap_or(0)
            + counts as u64;
        layers.push(Layer {
            node: n,
            cost,
            activation_bytes,
            stores_output,
            receptive_field,
            depth,
        });
    }
    let totals = totals_for(net, &table, &layers, false)?;
    let has_train_heads = g
        .node_weights()
        .any(|n| n.role == Role::Head { train: true });
    let train_totals = if has_train_heads {
        totals_for(net, &table, &layers, true)?
    } else {
        totals
    };
    Ok(Analysis {
        network: net,
        options,
        layers,
        totals,
        train_totals,
        training: None,
        device: None,
    })
}

/// The analysis with a training step's costs (`cnncost NET --train`).
pub fn with_training<'n>(
    mut a: Analysis<'n>,
    options: &training::TrainOptions,
) -> Result<Analysis<'n>, Diagnostic> {
    a.training = Some(training::training(&a, options)?);
    Ok(a)
}

/// Adds every op's predicted inference time on the profile's device.
pub fn with_device<'n>(mut a: Analysis<'n>, profile: &device::DeviceProfile) -> Analysis<'n> {
    a.device = Some(device::Predicted {
        times: device::inference_times(&a, profile),
        step: device::step_times(&a, profile),
        profile: profile.clone(),
    });
    a
}

fn included(role: Role, train: bool) -> bool {
    train || role != Role::Head { train: true }
}

fn totals_for(
    net: &Network,
    table: &InputTable,
    layers: &[Layer],
    train: bool,
) -> Result<Totals, Diagnostic> {
    let g = &net.graph;
    let mut t = Totals::default();
    for l in layers {
        let node = &g[l.node];
        if !included(node.role, train) {
            continue;
        }
        let add = |a: u64, b: u64, what: &str| {
            a.checked_add(b).ok_or_else(|| overflow(net, l.node, what))
        };
        t.params = add(t.params, l.cost.params, "total params")?;
        t.buffers = add(t.buffers, l.cost.buffers, "total buffers")?;
        t.macs = add(t.macs, l.cost.macs, "total MACs")?;
        t.flops = add(t.flops, l.cost.flops, "total FLOPs")?;
        if l.stores_output {
            t.activation_bytes = add(
                t.activation_bytes,
                l.activation_bytes,
                "total activation bytes",
            )?;
        }
    }
    t.depth = layers[net.output.index()].depth;
    t.peak_activation_bytes = peak_memory(net, table, layers, train);
    Ok(t)
}

/// The most activation bytes alive at once when the ops run in order: a
/// stored tensor lives from the op that writes it to the last op that reads
/// it (through any in-place op that reuses it); outputs live to the end.
fn peak_memory(net: &Network, table: &InputTable, layers: &[Layer], train: bool) -> u64 {
    let g = &net.graph;
    let n = layers.len();
    // Which stored tensor each node's output lives in.
    let mut storage: Vec<usize> = (0..n).collect();
    let mut last_use: Vec<usize> = (0..n).collect();
    for l in layers {
        let i = l.node.index();
        if !included(g[l.node].role, train) {
            continue;
        }
        for input in table.of(l.node) {
            let s = storage[input.index()];
            last_use[s] = last_use[s].max(i);
        }
        if !l.stores_output {
            if let Some(first) = table.of(l.node).first() {
                storage[i] = storage[first.index()];
            }
        }
    }
    for out in std::iter::once(net.output).chain(net.heads.iter().copied()) {
        if included(g[out].role, train) {
            last_use[storage[out.index()]] = n;
        }
    }
    // Sweep: +bytes at creation, -bytes after the last use.
    let mut delta = vec![0i128; n + 2];
    for l in layers {
        let i = l.node.index();
        if l.stores_output && included(g[l.node].role, train) {
            delta[i] += l.activation_bytes as i128;
            delta[last_use[i] + 1] -= l.activation_bytes as i128;
        }
    }
    let (mut live, mut peak) = (0i128, 0i128);
    for d in delta {
        live += d;
        peak = peak.max(live);
    }
    u64::try_from(peak).unwrap_or(u64::MAX)
}
