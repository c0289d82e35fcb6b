//! What a training step costs: the backward's work, what is kept for it,
//! the optimiser's state, and the peak of a step from a liveness walk over
//! the forward, the backward and the optimiser's update. The rules are in
//! docs/costs.md ("Training"); what is fused and kept comes from the
//! execution plan (`dsl::plan`), which the runtime executes.

use crate::cost::{backward_cost, product, BackwardCost};
use crate::{Analysis, InputTable};
use dsl::diagnostic::Diagnostic;
use dsl::ir::{Op, Role, TensorKind};
use dsl::plan::{self, GroupRole, Kept, Optimizer, SavedPolicy, Storage};
use petgraph::graph::NodeIndex;

/// What to count.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrainOptions {
    pub optimizer: Optimizer,
    pub policy: SavedPolicy,
    /// `--freeze` prefixes: these ops' weights do not train.
    pub freeze: Vec<String>,
    /// Leave the `head train` branches out (as a network built without its
    /// auxiliary classifiers).
    pub without_train_heads: bool,
    /// The kernels' per-thread memory on the machine that runs the step; the
    /// default, none, gives the machine-free figure the tables print.
    pub host: HostScratch,
}

/// Memory the `gemm` crate keeps per thread, outside any op: one packing slab
/// the size of a core's L2 cache, in every thread that has run a gemm (the
/// pool's threads and the calling one). 3 x 2 MiB on a Xeon with 2 MiB of L2
/// per core: 8% of ResNet-20's step at batch 32.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostScratch {
    pub threads: u64,
    pub slab_bytes: u64,
}

/// One op's share of a training step, for the whole batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LayerTraining {
    pub backward: BackwardCost,
    /// Bytes kept for the backward that this op is the first to keep.
    pub saved_bytes: u64,
    /// What the op keeps, and why (for `--explain`).
    pub kept: Vec<Kept>,
    pub why: &'static str,
    /// Whether the op records a backward (it or an input needs a gradient).
    pub tracked: bool,
    pub frozen: bool,
    /// Left out: a training head, with `without_train_heads`.
    pub excluded: bool,
}

/// The totals of a training step (`"training"` in the JSON).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Training {
    pub optimizer: Optimizer,
    pub policy: SavedPolicy,
    pub layers: Vec<LayerTraining>,
    pub forward_flops: u64,
    pub backward_input_macs: u64,
    pub backward_weight_macs: u64,
    pub backward_flops: u64,
    pub trainable_params: u64,
    pub weights_bytes: u64,
    pub gradients_bytes: u64,
    pub optimizer_state_bytes: u64,
    pub saved_bytes: u64,
    pub workspace_bytes: u64,
    pub peak_bytes: u64,
    /// Where the peak is reached: "forward of X", "backward of X",
    /// "optimizer step".
    pub peak_at: String,
}

impl Training {
    /// Conv and linear multiply-adds of the backward (the quantity PyTorch's
    /// FlopCounterMode counts, halved).
    pub fn backward_macs(&self) -> u64 {
        self.backward_input_macs
            .saturating_add(self.backward_weight_macs)
    }
}

fn overflow(a: &Analysis, what: &str) -> Diagnostic {
    let out = &a.network.graph[a.network.output];
    Diagnostic::new(
        format!(
            "the training {what} of `{}` overflow 64 bits",
            a.network.name
        ),
        out.span,
    )
    .help("check the input size, the channel counts and `--batch`")
}

/// Counts a training step of the analysed network (its batch and dtype).
pub fn training(a: &Analysis, o: &TrainOptions) -> Result<Training, Diagnostic> {
    let net = a.network;
    let g = &net.graph;
    let n = g.node_count();
    let table = InputTable::new(net);
    let batch = a.options.batch;
    let dbytes = a.options.dtype.bytes();
    let ovf = |what: &str| overflow(a, what);
    let excluded: Vec<bool> = g
        .node_weights()
        .map(|node| o.without_train_heads && node.role == Role::Head { train: true })
        .collect();
    let frozen: Vec<bool> = g
        .node_weights()
        .map(|node| plan::frozen_by(&node.name, &o.freeze))
        .collect();
    let tracked = plan::tracked(net, &frozen);
    let roles = plan::group_roles(&plan::fusions(net));
    let readers = plan::readers(net);
    let mut layers: Vec<LayerTraining> = Vec::with_capacity(n);
    // Weights and trainable weights, in elements; the largest trainable
    // tensor (the optimiser's temporaries are its size).
    let (mut weights, mut trainable, mut largest) = (0u64, 0u64, 0u64);
    // Per node, its trainable elements (its weights' gradients).
    let mut trainable_of = vec![0u64; n];
    let mut fwd_flops = 0u64;
    let (mut bw_in, mut bw_w, mut bw_flops) = (0u64, 0u64, 0u64);
    let mut ops = Vec::with_capacity(n);
    for (i, node_ix) in g.node_indices().enumerate() {
        let node = &g[node_ix];
        let inputs = table.of(node_ix);
        let shapes: Vec<_> = inputs.iter().map(|&j| g[j].shape).collect();
        let layer = a.layer(node_ix);
        let input_readers = inputs.first().map_or(0, |&j| readers[j.index()]);
        let op = plan::training_op(
            &node.op,
            &shapes,
            node.shape,
            input_readers,
            o.policy,
            roles[i],
        );
        if excluded[i] {
            layers.push(LayerTraining {
                excluded: true,
                ..LayerTraining::default()
            });
            ops.push(op);
            continue;
        }
        if let Some(&first) = shapes.first() {
            node.op.for_each_tensor(first, |_, dims, kind| {
                let e = product(dims).unwrap_or(u64::MAX);
                match kind {
                    TensorKind::Param | TensorKind::Buffer => {
                        weights = weights.saturating_add(e);
                        if kind == TensorKind::Param && !frozen[i] {
                            trainable = trainable.saturating_add(e);
                            trainable_of[i] = trainable_of[i].saturating_add(e);
                            largest = largest.max(e);
                        }
                    }
                    TensorKind::Counter => {}
                }
            });
        }
        fwd_flops = fwd_flops
            .checked_add(layer.cost.flops)
            .ok_or_else(|| ovf("FLOPs"))?;
        let input_grad = inputs.first().is_some_and(|&j| tracked[j.index()]);
        let one =
            crate::cost::op_cost(&node.op, &shapes, node.shape).ok_or_else(|| ovf("costs"))?;
        let b1 = backward_cost(
            &node.op,
            &shapes,
            node.shape,
            &one,
            input_grad,
            node.op.is_trainable() && !frozen[i],
        )
        .ok_or_else(|| ovf("backward costs"))?;
        // A tensor read by k recorded ops gets k gradients: k − 1 sums.
        let tracked_readers = g
            .neighbors_directed(node_ix, petgraph::Direction::Outgoing)
            .filter(|r| tracked[r.index()] && !excluded[r.index()])
            .count() as u64;
        let sums = if tracked[i] {
            node.shape
                .elements()
                .and_then(|e| e.checked_mul(tracked_readers.saturating_sub(1)))
                .ok_or_else(|| ovf("gradient sums"))?
        } else {
            0
        };
        let scale = |v: u64| v.checked_mul(batch).ok_or_else(|| ovf("backward costs"));
        let backward = BackwardCost {
            input_macs: scale(b1.input_macs)?,
            weight_macs: scale(b1.weight_macs)?,
            flops: scale(b1.flops.checked_add(sums).ok_or_else(|| ovf("FLOPs"))?)?,
        };
        bw_in = bw_in
            .checked_add(backward.input_macs)
            .ok_or_else(|| ovf("MACs"))?;
        bw_w = bw_w
            .checked_add(backward.weight_macs)
            .ok_or_else(|| ovf("MACs"))?;
        bw_flops = bw_flops
            .checked_add(backward.flops)
            .ok_or_else(|| ovf("FLOPs"))?;
        layers.push(LayerTraining {
            backward,
            saved_bytes: 0,
            kept: if tracked[i] { op.kept.clone() } else { vec![] },
            why: op.why,
            tracked: tracked[i],
            frozen: frozen[i],
            excluded: false,
        });
        ops.push(op);
    }
    let bytes = |elems: u64| elems.checked_mul(dbytes).ok_or_else(|| ovf("bytes"));
    let weights_bytes = bytes(weights)?;
    let gradients_bytes = bytes(trainable)?;
    let optimizer_state_bytes = bytes(trainable)?
        .checked_mul(o.optimizer.state_per_weight())
        .ok_or_else(|| ovf("bytes"))?;
    let workspace_bytes = match o.policy {
        SavedPolicy::Cnncost => workspace_elements(a, &table, &excluded)
            .and_then(|e| e.checked_mul(dbytes))
            .and_then(|b| b.checked_add(o.host.threads.checked_mul(o.host.slab_bytes)?))
            .ok_or_else(|| ovf("workspace"))?,
        SavedPolicy::Pytorch => 0,
    };
    let walk = Walk::new(
        a,
        &table,
        (&ops, &roles),
        &layers,
        (&tracked, &excluded, &trainable_of),
        o.policy,
    );
    let saved_bytes = walk.attribute_saved(&mut layers);
    let base =
        u128::from(weights_bytes) + u128::from(optimizer_state_bytes) + u128::from(workspace_bytes);
    let step_temporaries =
        u128::from(bytes(largest)?) * u128::from(o.optimizer.step_temporaries(o.policy));
    let (peak, peak_at) = walk.peak(o.policy, base, step_temporaries);
    let peak_bytes = u64::try_from(peak).map_err(|_| ovf("peak bytes"))?;
    Ok(Training {
        optimizer: o.optimizer,
        policy: o.policy,
        layers,
        forward_flops: fwd_flops,
        backward_input_macs: bw_in,
        backward_weight_macs: bw_w,
        backward_flops: bw_flops,
        trainable_params: trainable,
        weights_bytes,
        gradients_bytes,
        optimizer_state_bytes,
        saved_bytes,
        workspace_bytes,
        peak_bytes,
        peak_at,
    })
}

/// The runtime's convolution scratch: one chunk's column matrix (slot 0)
/// and one chunk's staged output (slot 1), each as large as the largest
/// convolution needs; the slots grow and stay (runtime/src/kernels/util).
fn workspace_elements(a: &Analysis, table: &InputTable, excluded: &[bool]) -> Option<u64> {
    let g = &a.network.graph;
    let (mut cols, mut staged) = (0u64, 0u64);
    for (i, n) in g.node_indices().enumerate() {
        let Op::Conv { out, kernel, .. } = g[n].op else {
            continue;
        };
        if excluded[i] {
            continue;
        }
        let first = *table.of(n).first()?;
        let c = g[first].shape.channels();
        let positions = g[n].shape.elements()? / out.max(1);
        let rows = c.checked_mul(kernel.h)?.checked_mul(kernel.w)?;
        let chunk = plan::im2col_chunk(
            usize::try_from(a.options.batch).ok()?,
            usize::try_from(rows).ok()?,
            usize::try_from(positions).ok()?,
        ) as u64;
        cols = cols.max(rows.checked_mul(chunk)?.checked_mul(positions)?);
        staged = staged.max(out.checked_mul(chunk)?.checked_mul(positions)?);
    }
    cols.checked_add(staged)
}

/// A storage: a node's output, or a tensor an op keeps of its own.
#[derive(Clone, Copy, Debug)]
struct Tensor {
    bytes: u128,
}

/// The liveness walk's state: which storages exist, who keeps them.
struct Walk<'a> {
    names: Vec<&'a str>,
    inputs: Vec<Vec<usize>>,
    /// The storage of each node's output.
    storage_of: Vec<usize>,
    tensors: Vec<Tensor>,
    /// Per node, the storages it keeps for its backward.
    keeps: Vec<Vec<usize>>,
    /// Per node, whether its output is its first operand's storage.
    aliases: Vec<bool>,
    /// Per node, how its backward gives gradients to its operands.
    flow: Vec<Flow>,
    tracked: Vec<bool>,
    excluded: Vec<bool>,
    outputs: Vec<usize>,
    /// Per node, its weights' gradient bytes.
    grad_bytes: Vec<u128>,
    /// Per node, the temporaries its forward and its backward allocate
    /// besides their outputs (our convolutions' weight transforms).
    temporaries: Vec<(u128, u128)>,
    /// The batch's input node.
    input: Option<usize>,
}

impl<'a> Walk<'a> {
    fn new(
        a: &'a Analysis,
        table: &InputTable,
        (ops, roles): (&[plan::TrainingOp], &[GroupRole]),
        layers: &[LayerTraining],
        (tracked, excluded, trainable): (&[bool], &[bool], &[u64]),
        policy: SavedPolicy,
    ) -> Walk<'a> {
        let net = a.network;
        let g = &net.graph;
        let n = g.node_count();
        let batch = u128::from(a.options.batch);
        let dbytes = a.options.dtype.bytes();
        let mut w = Walk {
            names: g.node_weights().map(|x| &*x.name).collect(),
            inputs: g
                .node_indices()
                .map(|x| table.of(x).iter().map(|i| i.index()).collect())
                .collect(),
            storage_of: (0..n).collect(),
            tensors: g
                .node_weights()
                .map(|x| Tensor {
                    bytes: u128::from(x.shape.elements().unwrap_or(u64::MAX))
                        * batch
                        * u128::from(dbytes),
                })
                .collect(),
            keeps: vec![vec![]; n],
            aliases: vec![false; n],
            flow: vec![Flow::NewEach; n],
            tracked: tracked.to_vec(),
            excluded: excluded.to_vec(),
            outputs: std::iter::once(net.output)
                .chain(net.heads.iter().copied())
                .map(NodeIndex::index)
                .filter(|&o| !excluded[o])
                .collect(),
            grad_bytes: trainable
                .iter()
                .map(|&e| u128::from(e) * u128::from(dbytes))
                .collect(),
            temporaries: vec![(0, 0); n],
            input: g.node_weights().position(|x| matches!(x.op, Op::Input)),
        };
        for (i, node) in g.node_weights().enumerate() {
            w.flow[i] = Flow::of(&node.op, roles[i], policy, ops[i].output_is_input);
            if let Some(&first) = w.inputs[i].first() {
                let c = g[NodeIndex::new(first)].shape.channels();
                if let (
                    SavedPolicy::Cnncost,
                    Op::Conv {
                        out,
                        kernel,
                        groups,
                        ..
                    },
                ) = (policy, &node.op)
                {
                    let (f, b) = plan::conv_weight_temporaries(&node.op, c);
                    let weight = u128::from(*out)
                        * u128::from(c / (*groups).max(1))
                        * u128::from(kernel.h)
                        * u128::from(kernel.w)
                        * u128::from(dbytes);
                    // With its ReLU fused, the backward first masks dY (a tensor of
                    // the output's size).
                    let masked = if roles[i] == GroupRole::Head {
                        w.tensors[i].bytes
                    } else {
                        0
                    };
                    w.temporaries[i] = (weight * u128::from(f), weight * u128::from(b) + masked);
                }
                if ops[i].output_is_input {
                    w.aliases[i] = true;
                    w.storage_of[i] = w.storage_of[first];
                }
            }
            for k in &layers[i].kept {
                let s = match k.storage {
                    Storage::Input(j) => w.storage_of[w.inputs[i][j]],
                    Storage::Output => w.storage_of[i],
                    Storage::Own => {
                        let per = if k.per_example { batch } else { 1 };
                        w.tensors.push(Tensor {
                            bytes: u128::from(k.elements) * per * u128::from(k.elem.bytes(dbytes)),
                        });
                        w.tensors.len() - 1
                    }
                };
                if !w.keeps[i].contains(&s) {
                    w.keeps[i].push(s);
                }
            }
        }
        w
    }

    /// Each kept storage's bytes go to the first op that keeps it; returns
    /// the total, each storage once.
    fn attribute_saved(&self, layers: &mut [LayerTraining]) -> u64 {
        let mut seen = vec![false; self.tensors.len()];
        let mut total = 0u128;
        for (i, keeps) in self.keeps.iter().enumerate() {
            for &s in keeps {
                if !seen[s] {
                    seen[s] = true;
                    total += self.tensors[s].bytes;
                    layers[i].saved_bytes = layers[i]
                        .saved_bytes
                        .saturating_add(u64::try_from(self.tensors[s].bytes).unwrap_or(u64::MAX));
                }
            }
        }
        u64::try_from(total).unwrap_or(u64::MAX)
    }

    /// The peak of a step and where it is reached. `base`: weights,
    /// optimiser state and workspace, alive throughout; `step_temporaries`:
    /// the optimiser's temporaries while it updates the largest tensor.
    fn peak(&self, policy: SavedPolicy, base: u128, step_temporaries: u128) -> (u128, String) {
        let n = self.names.len();
        let mut mem = Meter::new(base);
        // Storage lifetimes in the forward: the last op that reads each.
        let mut last_read = vec![0usize; self.tensors.len()];
        for i in 0..n {
            if self.excluded[i] {
                continue;
            }
            last_read[self.storage_of[i]] = last_read[self.storage_of[i]].max(i);
            for &j in &self.inputs[i] {
                let s = self.storage_of[j];
                last_read[s] = last_read[s].max(i);
            }
        }
        // Kept storages, and (PyTorch) the earliest op keeping each: its
        // backward runs last, and frees it.
        let mut kept_until: Vec<Option<usize>> = vec![None; self.tensors.len()];
        for i in (0..n).rev() {
            for &s in &self.keeps[i] {
                kept_until[s] = Some(i);
            }
        }
        let mut pinned = vec![false; self.tensors.len()];
        for &o in &self.outputs {
            pinned[self.storage_of[o]] = true;
        }
        if let Some(x) = self.input {
            pinned[self.storage_of[x]] = true;
        }
        let mut alive = vec![false; self.tensors.len()];
        // Forward.
        for i in 0..n {
            if self.excluded[i] {
                continue;
            }
            if !self.aliases[i] {
                mem.alloc(&mut alive, i, self.tensors[i].bytes);
            }
            for &s in &self.keeps[i] {
                if s >= n && !alive[s] {
                    mem.alloc(&mut alive, s, self.tensors[s].bytes);
                }
            }
            mem.mark_with(self.temporaries[i].0, || {
                format!("forward of {}", self.names[i])
            });
            for &j in self.inputs[i].iter().chain(std::iter::once(&i)) {
                let s = self.storage_of[j];
                if last_read[s] == i && kept_until[s].is_none() && !pinned[s] {
                    mem.free(&mut alive, s, self.tensors[s].bytes);
                }
            }
        }
        // Backward: gradients by storage, with reference counts.
        let mut grads: Vec<Option<usize>> = vec![None; n];
        let mut grad_refs: Vec<u32> = Vec::new();
        let mut grad_sizes: Vec<u128> = Vec::new();
        let new_grad = |refs: &mut Vec<u32>, sizes: &mut Vec<u128>, bytes: u128| {
            refs.push(1);
            sizes.push(bytes);
            refs.len() - 1
        };
        for &o in &self.outputs {
            if self.tracked[o] {
                let id = new_grad(&mut grad_refs, &mut grad_sizes, self.tensors[o].bytes);
                mem.live += self.tensors[o].bytes;
                grads[o] = Some(id);
            }
        }
        mem.mark(|| "loss's gradient".to_string());
        let release = |mem: &mut Meter, refs: &mut Vec<u32>, sizes: &[u128], id: usize| {
            refs[id] -= 1;
            if refs[id] == 0 {
                mem.live -= sizes[id];
            }
        };
        for i in (0..n).rev() {
            if self.excluded[i] || !self.tracked[i] {
                continue;
            }
            let Some(gi) = grads[i] else { continue };
            // The weights' gradients stay until the optimiser has run.
            mem.live += self.grad_bytes[i];
            // One new gradient shared by every operand (a fused sum and
            // ReLU: the masked gradient).
            let shared = match self.flow[i] {
                Flow::Pass => Some(gi),
                Flow::NewShared => {
                    mem.live += self.tensors[i].bytes;
                    let id = new_grad(&mut grad_refs, &mut grad_sizes, self.tensors[i].bytes);
                    grad_refs[id] -= 1;
                    Some(id)
                }
                Flow::NewEach => None,
            };
            for &j in &self.inputs[i] {
                if !self.tracked[j] {
                    continue;
                }
                let id = match shared {
                    Some(id) => {
                        grad_refs[id] += 1;
                        id
                    }
                    None => {
                        mem.live += self.tensors[j].bytes;
                        new_grad(&mut grad_refs, &mut grad_sizes, self.tensors[j].bytes)
                    }
                };
                grads[j] = Some(match grads[j] {
                    None => id,
                    Some(old) => {
                        let in_place = policy == SavedPolicy::Pytorch && grad_refs[old] == 1;
                        if in_place {
                            release(&mut mem, &mut grad_refs, &grad_sizes, id);
                            old
                        } else {
                            // A new tensor for the sum, then both terms go.
                            mem.live += self.tensors[j].bytes;
                            mem.mark(|| format!("backward of {}", self.names[i]));
                            let sum =
                                new_grad(&mut grad_refs, &mut grad_sizes, self.tensors[j].bytes);
                            release(&mut mem, &mut grad_refs, &grad_sizes, old);
                            release(&mut mem, &mut grad_refs, &grad_sizes, id);
                            sum
                        }
                    }
                });
            }
            mem.mark_with(self.temporaries[i].1, || {
                format!("backward of {}", self.names[i])
            });
            release(&mut mem, &mut grad_refs, &grad_sizes, gi);
            grads[i] = None;
            if policy == SavedPolicy::Pytorch {
                for &s in &self.keeps[i] {
                    if kept_until[s] == Some(i) && alive[s] && !pinned[s] {
                        mem.free(&mut alive, s, self.tensors[s].bytes);
                    }
                }
            }
        }
        // The graph goes with the backward: what is still kept, the outputs.
        for s in 0..self.tensors.len() {
            let batch_input = self.input.is_some_and(|x| self.storage_of[x] == s);
            if alive[s] && !batch_input {
                mem.free(&mut alive, s, self.tensors[s].bytes);
            }
        }
        for (id, &r) in grad_refs.iter().enumerate() {
            if r > 0 {
                mem.live -= grad_sizes[id];
            }
        }
        mem.live += step_temporaries;
        mem.mark(|| "optimizer step".to_string());
        (mem.peak, mem.peak_at)
    }
}

/// How an op's backward gives gradients to its operands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    /// Its output's gradient, unchanged or as views: a sum, a view, a
    /// concatenation's slices, a ReLU run by the op before it.
    Pass,
    /// One new tensor for all operands: our fused sum and ReLU.
    NewShared,
    /// A new tensor per operand.
    NewEach,
}

impl Flow {
    #[deny(clippy::wildcard_enum_match_arm)]
    fn of(op: &Op, role: GroupRole, policy: SavedPolicy, output_is_input: bool) -> Flow {
        let runtime = policy == SavedPolicy::Cnncost;
        match op {
            Op::Add if runtime && role == GroupRole::Head => Flow::NewShared,
            Op::Add | Op::Concat | Op::Flatten | Op::Identity => Flow::Pass,
            // In our runtime an op that writes nothing passes the gradient
            // on (a fused ReLU, dropout with p = 0); PyTorch's in-place ReLU
            // writes nothing forward but a new gradient backward.
            Op::Act(_) | Op::Dropout { .. } if runtime && output_is_input => Flow::Pass,
            Op::Input
            | Op::Conv { .. }
            | Op::Linear { .. }
            | Op::Pool { .. }
            | Op::GlobalAvgPool
            | Op::AdaptiveAvgPool { .. }
            | Op::BatchNorm { .. }
            | Op::Lrn { .. }
            | Op::Dropout { .. }
            | Op::Act(_)
            | Op::Prelu
            | Op::ZeroPad { .. } => Flow::NewEach,
        }
    }
}

/// Live bytes and their peak.
struct Meter {
    live: u128,
    peak: u128,
    peak_at: String,
}

impl Meter {
    fn new(base: u128) -> Meter {
        Meter {
            live: base,
            peak: base,
            peak_at: String::new(),
        }
    }
    fn alloc(&mut self, alive: &mut [bool], s: usize, bytes: u128) {
        alive[s] = true;
        self.live += bytes;
    }
    fn free(&mut self, alive: &mut [bool], s: usize, bytes: u128) {
        alive[s] = false;
        self.live -= bytes;
    }
    fn mark(&mut self, at: impl FnOnce() -> String) {
        self.mark_with(0, at);
    }
    /// A candidate peak with `extra` temporary bytes on top of what lives.
    fn mark_with(&mut self, extra: u128, at: impl FnOnce() -> String) {
        if self.live + extra > self.peak {
            self.peak = self.live + extra;
            self.peak_at = at();
        }
    }
}

/// The largest batch whose training peak fits in `budget` bytes, with its
/// analysis; `None` when not even a batch of one fits. The peak grows with
/// the batch, so a doubling search then a bisection finds it in about
/// 2·log₂(batch) analyses.
pub fn fit<'n>(
    net: &'n dsl::Network,
    dtype: crate::Dtype,
    options: &TrainOptions,
    budget: u64,
) -> Result<Option<crate::Analysis<'n>>, Diagnostic> {
    let at = |batch: u64| -> Result<crate::Analysis<'n>, Diagnostic> {
        let a = crate::analyze(net, crate::Options { batch, dtype })?;
        crate::with_training(a, options)
    };
    let fits = |a: &crate::Analysis| a.training.as_ref().is_some_and(|t| t.peak_bytes <= budget);
    let first = at(1)?;
    if !fits(&first) {
        return Ok(None);
    }
    let (mut lo, mut best) = (1u64, first);
    let mut hi = None;
    // Doubling until a batch does not fit (or the counts overflow).
    while hi.is_none() {
        let Some(next) = lo.checked_mul(2) else { break };
        match at(next) {
            Ok(a) if fits(&a) => {
                lo = next;
                best = a;
            }
            Ok(_) | Err(_) => hi = Some(next),
        }
    }
    if let Some(mut hi) = hi {
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            match at(mid) {
                Ok(a) if fits(&a) => {
                    lo = mid;
                    best = a;
                }
                Ok(_) | Err(_) => hi = mid,
            }
        }
    }
    Ok(Some(best))
}

/// `24GiB`, `16GB`, `512MiB`, `1e9`: bytes. GiB/MiB/KiB are powers of 1024,
/// GB/MB/KB powers of 1000 (and said so in `--help`).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a size: write e.g. 24GiB, 16GB or 512MiB"))?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kib" | "k" => 1024.0,
        "mib" | "m" => 1024.0 * 1024.0,
        "gib" | "g" => 1024.0 * 1024.0 * 1024.0,
        "tib" | "t" => 1024f64.powi(4),
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{s}` (B, KiB, MiB, GiB, TiB, or KB, MB, GB, TB)"
            ))
        }
    };
    let bytes = value * scale;
    if !(bytes.is_finite() && bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(format!("`{s}` is not a size between 1 byte and 16 EiB"));
    }
    Ok(bytes as u64)
}
