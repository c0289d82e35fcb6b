//! Device profiles and the roofline time of every op (issue 16;
//! docs/costs.md, "Time").
//!
//! A profile gives a machine's peak fp32 rate, its memory bandwidths and,
//! when `cnncost calibrate` measured it, the efficiency our runtime reaches
//! per op kind. An op's predicted time is its roofline, the larger of its
//! compute time (FLOPs over the peak rate) and its memory time (bytes read
//! and written over the bandwidths), divided by its kind's efficiency.
//! Ops the runtime fuses (a conv with its BN and ReLU, an add or a BN with
//! its ReLU: `dsl::plan::fusions`) are timed as one, under the group's last
//! op, where `cnncost profile` measures them.

use crate::Analysis;
use dsl::ir::Op;
use dsl::plan::{fused_into, fusions, Fused};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One measured matrix product.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GemmPoint {
    pub m: u64,
    pub n: u64,
    pub k: u64,
    pub gflops: f64,
}

/// A machine's figures: from its datasheet, or measured by `calibrate`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceProfile {
    pub name: String,
    /// `datasheet` or `measured`.
    pub source: String,
    /// Where the figures come from: the datasheet, or the command, CPU and
    /// date of the measurement.
    pub reference: String,
    pub threads: u32,
    /// Peak fp32 rate, an FMA counted as 2 FLOPs, in GFLOP/s.
    pub peak_gflops: f64,
    /// Memory read and write bandwidth, GB/s (10^9 bytes).
    pub read_gbps: f64,
    pub write_gbps: f64,
    /// Matrix products measured at a few shapes (empty for a datasheet).
    #[serde(default)]
    pub gemm: Vec<GemmPoint>,
    /// Per op kind (`conv`, `linear`, `bn`, ...): the roofline time over the
    /// measured time of our runtime's op, measured by `calibrate`; empty for
    /// a datasheet, whose prediction is the bare roofline.
    #[serde(default)]
    pub efficiency: BTreeMap<String, f64>,
}

/// Built-in GPU profiles from their datasheets: (name, profile YAML). The
/// fp32 rates are the non-tensor-core FMA peaks (`threads` the CUDA
/// cores); bandwidth is the memory's, read and write alike.
pub const BUILT_IN: [(&str, &str); 5] = [
    (
        "h100-sxm",
        r#"name: "NVIDIA H100 SXM5 80GB"
source: datasheet
reference: "NVIDIA H100 Tensor Core GPU datasheet (2023): 67 TFLOPS FP32, 3.35 TB/s HBM3"
threads: 16896
peak_gflops: 67000
read_gbps: 3350
write_gbps: 3350
"#,
    ),
    (
        "h200",
        r#"name: "NVIDIA H200 SXM 141GB"
source: datasheet
reference: "NVIDIA H200 Tensor Core GPU datasheet (2024): 67 TFLOPS FP32, 4.8 TB/s HBM3e"
threads: 16896
peak_gflops: 67000
read_gbps: 4800
write_gbps: 4800
"#,
    ),
    (
        "a100",
        r#"name: "NVIDIA A100 SXM4 80GB"
source: datasheet
reference: "NVIDIA A100 Tensor Core GPU datasheet (2021): 19.5 TFLOPS FP32, 2,039 GB/s HBM2e"
threads: 6912
peak_gflops: 19500
read_gbps: 2039
write_gbps: 2039
"#,
    ),
    (
        "l4",
        r#"name: "NVIDIA L4 24GB"
source: datasheet
reference: "NVIDIA L4 Tensor Core GPU datasheet (2023): 30.3 TFLOPS FP32, 300 GB/s GDDR6"
threads: 7424
peak_gflops: 30300
read_gbps: 300
write_gbps: 300
"#,
    ),
    (
        "rtx4090",
        r#"name: "NVIDIA GeForce RTX 4090 24GB"
source: datasheet
reference: "NVIDIA Ada Lovelace architecture whitepaper (2022), RTX 4090: 82.6 TFLOPS FP32, 1,008 GB/s GDDR6X"
threads: 16384
peak_gflops: 82600
read_gbps: 1008
write_gbps: 1008
"#,
    ),
];

impl DeviceProfile {
    /// Reads a profile's YAML; `origin` names it in messages.
    pub fn parse(text: &str, origin: &str) -> Result<DeviceProfile, String> {
        let p: DeviceProfile = serde_yaml::from_str(text).map_err(|e| {
            let at = e
                .location()
                .map_or(String::new(), |l| format!(":{}:{}", l.line(), l.column()));
            // The place is given once, in front.
            let e = e.to_string();
            let what = e.split(" at line ").next().unwrap_or(&e);
            format!("{origin}{at}: not a device profile: {what}")
        })?;
        p.check().map_err(|e| format!("{origin}: {e}"))?;
        Ok(p)
    }

    /// A built-in profile by name (any case).
    pub fn built_in(name: &str) -> Option<DeviceProfile> {
        BUILT_IN
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(n, text)| DeviceProfile::parse(text, n).expect("the built-in profiles parse"))
    }

    fn check(&self) -> Result<(), String> {
        if self.source != "datasheet" && self.source != "measured" {
            return Err(format!(
                "`source: {}`: write `datasheet` or `measured`",
                self.source
            ));
        }
        let positive = |what: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(format!("`{what}: {v}` must be a positive number"))
            }
        };
        positive("peak_gflops", self.peak_gflops)?;
        positive("read_gbps", self.read_gbps)?;
        positive("write_gbps", self.write_gbps)?;
        // Far beyond any device, or below any: a typo, not a machine.
        for (what, v, low, high) in [
            ("peak_gflops", self.peak_gflops, 0.01, 1e7),
            ("read_gbps", self.read_gbps, 0.01, 1e5),
            ("write_gbps", self.write_gbps, 0.01, 1e5),
        ] {
            if !(low..=high).contains(&v) {
                return Err(format!("`{what}: {v:e}` is outside {low:e} to {high:e}: check the unit (GFLOP/s, GB/s)"));
            }
        }
        if self.threads == 0 {
            return Err("`threads: 0` must be at least 1".into());
        }
        for g in &self.gemm {
            positive("gemm gflops", g.gflops)?;
        }
        for (kind, &e) in &self.efficiency {
            if !efficiency_keys().any(|k| k == kind) {
                let hint = dsl::suggest(kind, efficiency_keys())
                    .map_or(String::new(), |s| format!(" (did you mean `{s}`?)"));
                return Err(format!(
                    "`efficiency: {kind}` is not an op kind{hint}: one of {}",
                    efficiency_keys().collect::<Vec<_>>().join(", ")
                ));
            }
            if !(e.is_finite() && e > 0.0 && e <= 4.0) {
                return Err(format!(
                    "`efficiency: {kind}: {e}` must be in (0, 4]: the roofline time over the measured time"
                ));
            }
        }
        Ok(())
    }

    /// The efficiency of an op kind: measured, else the median of the
    /// measured kinds (a calibrated machine's typical op), else 1 (the bare
    /// roofline of a datasheet).
    pub fn efficiency_of(&self, kind: &str) -> f64 {
        if let Some(&e) = self.efficiency.get(kind) {
            return e;
        }
        let mut all: Vec<f64> = self.efficiency.values().copied().collect();
        if all.is_empty() {
            return 1.0;
        }
        all.sort_by(f64::total_cmp);
        all[all.len() / 2]
    }

    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).unwrap_or_default()
    }
}

/// Every op's predicted time on one device.
#[derive(Clone, Debug, PartialEq)]
pub struct Predicted {
    pub profile: DeviceProfile,
    /// By node index.
    pub times: Vec<OpTime>,
    /// A training step's, when the analysis counts one.
    pub step: Option<StepTimes>,
}

/// One op's part of a training step (a fused group's under its last op).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StepOpTime {
    pub forward: OpTime,
    /// The backward but the weight gradients: the input gradient, and BN's
    /// scale and shift gradients, which come out of the same passes.
    pub input_grad: OpTime,
    /// Conv and linear weight and bias gradients.
    pub weight_grad: OpTime,
}

impl StepOpTime {
    pub fn predicted(&self) -> f64 {
        self.forward.predicted + self.input_grad.predicted + self.weight_grad.predicted
    }
}

/// A training step's predicted times, by node index, and the update's.
#[derive(Clone, Debug, PartialEq)]
pub struct StepTimes {
    pub ops: Vec<StepOpTime>,
    pub update: OpTime,
}

impl StepTimes {
    /// Seconds for the whole step: forward, backward and update.
    pub fn total(&self) -> f64 {
        self.ops.iter().map(StepOpTime::predicted).sum::<f64>() + self.update.predicted
    }
}

impl Predicted {
    /// Seconds for the whole forward (inference: `head train` left out).
    pub fn total(&self, a: &Analysis) -> f64 {
        a.layers
            .iter()
            .filter(|l| a.network.graph[l.node].role != dsl::ir::Role::Head { train: true })
            .map(|l| self.times[l.node.index()].predicted)
            .sum()
    }
}

/// The keys an efficiency can have: the ops' keywords, the conv kinds of
/// `kind_key`, and the optimizer's `update`.
pub fn efficiency_keys() -> impl Iterator<Item = &'static str> {
    ["conv_winograd", "conv_1x1", "conv_depthwise", "update"]
        .into_iter()
        .chain(dsl::ops::op_keywords())
        .chain(["concat", "add"])
}

/// Which bound an op's roofline is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    Compute,
    Memory,
}

/// One op's roofline (zero for an op fused into a later one, or one that
/// moves nothing).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct OpTime {
    pub flops: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// Seconds: FLOPs over the peak rate.
    pub compute: f64,
    /// Seconds: bytes over the bandwidths.
    pub memory: f64,
    /// Seconds: the larger of the two over the kind's efficiency.
    pub predicted: f64,
    /// For an op fused into a later one: that op's node index, whose time
    /// includes this op's work.
    pub fused_into: Option<usize>,
}

impl OpTime {
    /// FLOPs per byte moved.
    pub fn intensity(&self) -> f64 {
        let bytes = self.bytes_read + self.bytes_written;
        if bytes == 0 {
            0.0
        } else {
            self.flops as f64 / bytes as f64
        }
    }
    pub fn bound(&self) -> Bound {
        if self.compute >= self.memory {
            Bound::Compute
        } else {
            Bound::Memory
        }
    }
}

/// The roofline of `flops` FLOPs moving the given bytes, for an op `kind`.
pub fn roofline(
    p: &DeviceProfile,
    kind: &str,
    flops: u64,
    bytes_read: u64,
    bytes_written: u64,
) -> OpTime {
    let compute = flops as f64 / (p.peak_gflops * 1e9);
    let memory =
        bytes_read as f64 / (p.read_gbps * 1e9) + bytes_written as f64 / (p.write_gbps * 1e9);
    OpTime {
        flops,
        bytes_read,
        bytes_written,
        compute,
        memory,
        predicted: compute.max(memory) / p.efficiency_of(kind),
        fused_into: None,
    }
}

/// The efficiency key of an op with `in_channels` input channels: its
/// keyword, with convolutions told apart by how our kernels run them:
/// Winograd (`dsl::plan::winograd_applies`: fewer multiplies than the
/// direct count, so above the roofline), depthwise, 1x1, and the rest.
pub fn kind_key(op: &Op, in_channels: u64) -> &'static str {
    if let Op::Conv {
        groups,
        out,
        kernel,
        stride,
        dilation,
        ..
    } = op
    {
        if dsl::plan::winograd_applies(
            [kernel.h, kernel.w],
            [stride.h, stride.w],
            [dilation.h, dilation.w],
            *groups,
            [in_channels, *out],
        ) {
            return "conv_winograd";
        }
        if *groups > 1 && groups == out {
            return "conv_depthwise";
        }
        if kernel.h == 1 && kernel.w == 1 {
            return "conv_1x1";
        }
    }
    op.kind()
}

/// Every op's predicted inference time, by node index: a fused group's
/// under its last op (the others 0), as the runtime runs and `profile`
/// measures it.
pub fn inference_times(a: &Analysis, p: &DeviceProfile) -> Vec<OpTime> {
    group_times(a, p, &fusions(a.network), None)
}

/// A training step's predicted times: the forward with the groups that run
/// in training (a BN is not folded), each op's backward as two rooflines
/// (input gradient; weight gradient, a gemm whatever the forward's path),
/// and the update, which reads each trainable weight, its gradient and its
/// state and writes the weight and the state. `None` without training
/// counts (`with_training`).
pub fn step_times(a: &Analysis, p: &DeviceProfile) -> Option<StepTimes> {
    let t = a.training.as_ref()?;
    let fused: Vec<Option<Fused>> = fusions(a.network)
        .into_iter()
        .map(|f| f.filter(|f| f.in_training()))
        .collect();
    let mut backward = vec![(OpTime::default(), OpTime::default()); a.layers.len()];
    let forward = group_times(a, p, &fused, Some((t, &mut backward)));
    let ops = forward
        .into_iter()
        .zip(backward)
        .map(|(forward, (input_grad, weight_grad))| StepOpTime {
            forward,
            input_grad,
            weight_grad,
        })
        .collect();
    let bytes = a.options.dtype.bytes();
    let state = t.optimizer.state_per_weight();
    let per = |n: u64| t.trainable_params.saturating_mul(n).saturating_mul(bytes);
    Some(StepTimes {
        ops,
        update: roofline(p, "update", 0, per(2 + state), per(1 + state)),
    })
}

/// Every group's predicted forward time under its last op; with training
/// counts, also each group's backward (input and weight gradients) into
/// `backward`.
fn group_times(
    a: &Analysis,
    p: &DeviceProfile,
    fused: &[Option<Fused>],
    mut backward: Option<(&crate::training::Training, &mut [(OpTime, OpTime)])>,
) -> Vec<OpTime> {
    let net = a.network;
    let g = &net.graph;
    let bytes = a.options.dtype.bytes();
    let mut times = vec![OpTime::default(); a.layers.len()];
    let mut taken = vec![false; a.layers.len()];
    for l in &a.layers {
        let i = l.node.index();
        if taken[i] || g[l.node].op == Op::Input {
            continue;
        }
        // The group: this op and the ops it takes over.
        let members: Vec<usize> = match fused[i] {
            Some(f) => std::iter::once(i)
                .chain(f.taken_over().into_iter().flatten())
                .collect(),
            None => vec![i],
        };
        let last = match fused[i] {
            Some(f) => Fused::last(f, i),
            None => i,
        };
        let flops = members
            .iter()
            .map(|&m| a.layers[m].cost.flops)
            .fold(0u64, u64::saturating_add);
        let weights = members
            .iter()
            .map(|&m| {
                let c = &a.layers[m].cost;
                c.params.saturating_add(c.buffers).saturating_mul(bytes)
            })
            .fold(0u64, u64::saturating_add);
        let inputs = net
            .inputs(l.node)
            .iter()
            .map(|&n| a.layer(n).activation_bytes)
            .fold(0u64, u64::saturating_add);
        // A view moves nothing; every other op reads its inputs and
        // weights and writes its output (in place or not).
        let (read, written) = if crate::cost::is_view(&g[l.node].op) {
            (0, 0)
        } else {
            (
                inputs.saturating_add(weights),
                a.layers[last].activation_bytes,
            )
        };
        for &m in &members {
            taken[m] = true;
        }
        let channels = net.input_shapes(l.node).first().map_or(0, |s| s.channels());
        let kind = kind_key(&g[l.node].op, channels);
        times[last] = if read == 0 && written == 0 && flops == 0 {
            OpTime::default()
        } else {
            roofline(p, kind, flops, read, written)
        };
        if let Some((t, out)) = backward.as_mut() {
            // dX: 2 per input MAC for a conv or linear layer, every FLOP of
            // the others' rules; dW: 2 per weight MAC and the bias's sums.
            let (mut dx_flops, mut dw_flops, mut dw_bytes) = (0u64, 0u64, 0u64);
            for &m in &members {
                let b = &t.layers[m].backward;
                let c = &a.layers[m].cost;
                if matches!(g[a.layers[m].node].op, Op::Conv { .. } | Op::Linear { .. }) {
                    dx_flops = dx_flops.saturating_add(b.input_macs.saturating_mul(2));
                    dw_flops = dw_flops
                        .saturating_add(b.flops.saturating_sub(b.input_macs.saturating_mul(2)));
                    if b.weight_macs > 0 {
                        dw_bytes = dw_bytes.saturating_add(c.params.saturating_mul(bytes));
                    }
                } else {
                    dx_flops = dx_flops.saturating_add(b.flops);
                }
            }
            let dy = a.layers[last].activation_bytes;
            if dx_flops > 0 {
                // Reads dY, the saved input and the weights; writes dX.
                out[last].0 = roofline(p, kind, dx_flops, dy.saturating_add(read), inputs);
            }
            if dw_bytes > 0 {
                // Reads the saved input and dY; writes dW.
                out[last].1 = roofline(
                    p,
                    g[l.node].op.kind(),
                    dw_flops,
                    inputs.saturating_add(dy),
                    dw_bytes,
                );
            }
        }
    }
    for (t, into) in times.iter_mut().zip(fused_into(fused)) {
        t.fused_into = into;
    }
    times
}

/// Spearman's rank correlation of two equally long lists (ties share
/// their mean rank); `None` for fewer than 3 pairs or a constant list.
pub fn rank_correlation(x: &[f64], y: &[f64]) -> Option<f64> {
    fn ranks(v: &[f64]) -> Vec<f64> {
        let mut order: Vec<usize> = (0..v.len()).collect();
        order.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
        let mut r = vec![0.0; v.len()];
        let mut i = 0;
        while i < order.len() {
            let mut j = i;
            while j + 1 < order.len() && v[order[j + 1]] == v[order[i]] {
                j += 1;
            }
            for &k in &order[i..=j] {
                r[k] = (i + j) as f64 / 2.0 + 1.0;
            }
            i = j + 1;
        }
        r
    }
    if x.len() != y.len() || x.len() < 3 {
        return None;
    }
    let (rx, ry) = (ranks(x), ranks(y));
    let mean = (x.len() as f64 + 1.0) / 2.0;
    let (mut num, mut dx, mut dy) = (0.0, 0.0, 0.0);
    for (a, b) in rx.iter().zip(&ry) {
        num += (a - mean) * (b - mean);
        dx += (a - mean).powi(2);
        dy += (b - mean).powi(2);
    }
    (dx > 0.0 && dy > 0.0).then(|| num / (dx * dy).sqrt())
}
