//! `--explain NAME`: the formulas of docs/costs.md for one op, with its
//! numbers filled in, so every figure in the table can be checked by hand.

use crate::cost::{adaptive_window_sum, flops_per_element};
use crate::render::{number, thousands};
use crate::training::Training;
use crate::Analysis;
use dsl::ir::{Op, Shape};
use petgraph::graph::NodeIndex;
use std::fmt::Write;

/// The explanation of the op named `name`, or of every op under a block
/// named `name`; `Err` lists close names when there is none.
pub fn explain(a: &Analysis, name: &str) -> Result<String, String> {
    let net = a.network;
    if let Some(n) = net.node_by_name(name) {
        return Ok(explain_op(a, n));
    }
    let prefix = format!("{name}.");
    let inside: Vec<NodeIndex> = net
        .graph
        .node_indices()
        .filter(|&n| net.graph[n].name.starts_with(&prefix))
        .collect();
    if !inside.is_empty() {
        let mut s = format!("{name}: {} ops\n\n", inside.len());
        let (mut params, mut macs) = (0u64, 0u64);
        for &n in &inside {
            s.push_str(&explain_op(a, n));
            s.push('\n');
            params = params.saturating_add(a.layer(n).cost.params);
            macs = macs.saturating_add(a.layer(n).cost.macs);
        }
        let _ = writeln!(
            s,
            "{name} in all: params {}, MACs {}",
            thousands(params),
            thousands(macs)
        );
        return Ok(s);
    }
    let names = net.graph.node_weights().map(|n| &*n.name);
    Err(match dsl::suggest(name, names) {
        Some(s) => format!("no op or block named `{name}`; did you mean `{s}`?"),
        None => format!("no op or block named `{name}` (the JSON output lists every name)"),
    })
}

fn shape_hw(s: Shape) -> (u64, u64, u64) {
    match s {
        Shape::Image { c, h, w } => (c, h, w),
        Shape::Flat(n) => (n, 1, 1),
    }
}

fn explain_op(a: &Analysis, n: NodeIndex) -> String {
    let net = a.network;
    let node = &net.graph[n];
    let layer = a.layer(n);
    let inputs = net.input_shapes(n);
    let input = inputs.first().copied().unwrap_or(node.shape);
    let (cin, h, w) = shape_hw(input);
    let (cout, oh, ow) = shape_hw(node.shape);
    let b = a.options.batch;
    let loc = net.source.location(node.span.start);
    let text = &net.source.text[node.span.start..node.span.end.min(net.source.text.len())];
    let mut s = String::new();
    let _ = writeln!(s, "{}: {}   ({loc})", node.name, text.trim());
    let ins: Vec<String> = inputs.iter().map(|s| s.to_string()).collect();
    let _ = writeln!(s, "  input {} -> output {}", ins.join(" + "), node.shape);
    let batch_note = if b > 1 {
        format!(" x batch {b}")
    } else {
        String::new()
    };
    match &node.op {
        Op::Conv {
            kernel,
            stride,
            padding,
            dilation,
            groups,
            bias,
            ..
        } => {
            // `p=same` shows as such; explicit pads are equal on both sides.
            let (ph, pw) = (padding.begin.h as f64, padding.begin.w as f64);
            if padding.same {
                let _ = writeln!(s, "  p=same: output size = input size (stride 1)");
            } else {
                let _ = writeln!(
                    s,
                    "  H' = floor((H + 2p - d(k-1) - 1)/s) + 1 = floor(({h} + 2*{} - {}*({}-1) - 1)/{}) + 1 = {oh}",
                    number(ph), dilation.h, kernel.h, stride.h
                );
                let _ = writeln!(
                    s,
                    "  W' = floor(({w} + 2*{} - {}*({}-1) - 1)/{}) + 1 = {ow}",
                    number(pw),
                    dilation.w,
                    kernel.w,
                    stride.w
                );
            }
            let cg = cin / groups;
            let bias_txt = if *bias {
                format!(" + {cout}")
            } else {
                String::new()
            };
            let _ = writeln!(
                s,
                "  params = Cout*(Cin/g)*kh*kw{} = {cout}*{cg}*{}*{}{bias_txt} = {}",
                if *bias { " + Cout" } else { "" },
                kernel.h,
                kernel.w,
                thousands(layer.cost.params)
            );
            let _ = writeln!(
                s,
                "  MACs = Cout*H'*W'*(Cin/g)*kh*kw = {cout}*{oh}*{ow}*{cg}*{}*{}{batch_note} = {}",
                kernel.h,
                kernel.w,
                thousands(layer.cost.macs)
            );
            let _ = writeln!(
                s,
                "  FLOPs = 2*MACs{} = {}",
                if *bias {
                    " + Cout*H'*W' (bias adds)"
                } else {
                    ""
                },
                thousands(layer.cost.flops)
            );
        }
        Op::Linear { out, bias, .. } => {
            let bias_txt = if *bias {
                format!(" + {out}")
            } else {
                String::new()
            };
            let _ = writeln!(
                s,
                "  params = in*out{} = {cin}*{out}{bias_txt} = {}",
                if *bias { " + out" } else { "" },
                thousands(layer.cost.params)
            );
            let _ = writeln!(
                s,
                "  MACs = in*out = {cin}*{out}{batch_note} = {}",
                thousands(layer.cost.macs)
            );
            let _ = writeln!(
                s,
                "  FLOPs = 2*MACs{} = {}",
                if *bias { " + out (bias adds)" } else { "" },
                thousands(layer.cost.flops)
            );
        }
        Op::Pool {
            kernel,
            stride,
            padding,
            ceil,
            ..
        } => {
            let round = if *ceil { "ceil" } else { "floor" };
            let _ =
                writeln!(
                s,
                "  H' = {round}((H + 2p - k)/s) + 1 = {round}(({h} + 2*{} - {})/{}) + 1 = {oh}{}",
                padding.h, kernel.h, stride.h,
                if *ceil { " (a last window starting in the padding is dropped)" } else { "" }
            );
            let _ = writeln!(
                s,
                "  W' = {round}(({w} + 2*{} - {})/{}) + 1 = {ow}",
                padding.w, kernel.w, stride.w
            );
            let _ = writeln!(s, "  params = 0, MACs = 0");
            let _ = writeln!(
                s,
                "  FLOPs = C*H'*W'*kh*kw (one per window element) = {cout}*{oh}*{ow}*{}*{}{batch_note} = {}",
                kernel.h, kernel.w,
                thousands(layer.cost.flops)
            );
        }
        Op::AdaptiveAvgPool { out } => {
            let _ = writeln!(
                s,
                "  FLOPs = C * (sum of window heights) * (sum of window widths) = {cin}*{}*{}{batch_note} = {}",
                adaptive_window_sum(h, out.h).unwrap_or(0),
                adaptive_window_sum(w, out.w).unwrap_or(0),
                thousands(layer.cost.flops)
            );
        }
        Op::GlobalAvgPool => {
            let _ = writeln!(
                s,
                "  FLOPs = C*H*W = {cin}*{h}*{w}{batch_note} = {}",
                thousands(layer.cost.flops)
            );
        }
        Op::BatchNorm { .. } => {
            let _ = writeln!(
                s,
                "  params = 2*C (gamma, beta) = 2*{cin} = {}",
                thousands(layer.cost.params)
            );
            let _ = writeln!(
                s,
                "  buffers = 2*C (running mean, var) = {}",
                thousands(layer.cost.buffers)
            );
            let _ = writeln!(
                s,
                "  FLOPs = 2 per element (scale and shift) = {}",
                thousands(layer.cost.flops)
            );
        }
        Op::Add => {
            let _ = writeln!(
                s,
                "  FLOPs = (inputs - 1) per element = {}*{}{batch_note} = {}",
                inputs.len().saturating_sub(1),
                node.shape.elements().unwrap_or(0),
                thousands(layer.cost.flops)
            );
        }
        op @ (Op::Input
        | Op::Lrn { .. }
        | Op::Dropout { .. }
        | Op::Act(_)
        | Op::Prelu
        | Op::Flatten
        | Op::Identity
        | Op::Concat
        | Op::ZeroPad { .. }) => {
            let per = flops_per_element(op);
            if layer.cost.params > 0 {
                let _ = writeln!(s, "  params = C = {}", thousands(layer.cost.params));
            }
            let _ = writeln!(
                s,
                "  FLOPs = {per} per output element{} = {}",
                if per == 0 { " (no arithmetic)" } else { "" },
                thousands(layer.cost.flops)
            );
        }
    }
    let _ = writeln!(
        s,
        "  memory = {}*{}*{} elements * {} bytes{batch_note} = {} bytes = {} KB{}",
        cout,
        oh,
        ow,
        a.options.dtype.bytes(),
        thousands(layer.activation_bytes),
        crate::render::kilobytes(layer.activation_bytes),
        if layer.stores_output {
            ""
        } else {
            " (reuses its input's storage)"
        }
    );
    let rf = layer.receptive_field;
    let _ = writeln!(
        s,
        "  receptive field {} px, stride {}, first centre at {}",
        if rf.h.size == rf.w.size {
            number(rf.h.size)
        } else {
            format!("{}x{}", number(rf.h.size), number(rf.w.size))
        },
        number(rf.h.stride),
        number(rf.h.start)
    );
    if let Some(t) = &a.training {
        explain_training(&mut s, a, t, n);
    }
    s
}

/// The backward's formulas with their numbers, and what is kept and why.
fn explain_training(s: &mut String, a: &Analysis, t: &Training, n: NodeIndex) {
    let l = &t.layers[n.index()];
    let node = &a.network.graph[n];
    let fwd = a.layer(n).cost.macs;
    let _ = writeln!(s, "  training ({} policy):", t.policy);
    if l.excluded {
        let _ = writeln!(s, "    left out (a training head)");
        return;
    }
    if !l.tracked {
        let _ = writeln!(
            s,
            "    no backward: neither its input nor its weights need a gradient{}",
            if l.frozen { " (frozen)" } else { "" }
        );
        return;
    }
    let b = &l.backward;
    if node.op.is_weight_layer() {
        let _ = writeln!(
            s,
            "    dX = dY * W^T (the transposed product): {} MACs{}",
            thousands(b.input_macs),
            if b.input_macs == 0 {
                " (its input needs no gradient: the network's input, or frozen layers before it)"
            } else {
                " (as many as the forward's)"
            }
        );
        let _ = writeln!(
            s,
            "    dW = X^T * dY summed over the batch: {} MACs{}",
            thousands(b.weight_macs),
            if b.weight_macs == 0 { " (frozen)" } else { "" }
        );
        let _ = writeln!(
            s,
            "    backward FLOPs = 2 x {} MACs{} = {}   (forward MACs {})",
            thousands(b.macs()),
            if b.flops > b.macs().saturating_mul(2) {
                " + bias gradient and gradient sums"
            } else {
                ""
            },
            thousands(b.flops),
            thousands(fwd)
        );
    } else {
        let _ = writeln!(
            s,
            "    backward FLOPs {} (docs/costs.md, \"Training\")",
            thousands(b.flops)
        );
    }
    if l.kept.is_empty() {
        let _ = writeln!(s, "    keeps nothing: {}", l.why);
    } else {
        let what: Vec<&str> = l.kept.iter().map(|k| k.what).collect();
        let _ = writeln!(s, "    keeps {}: {}", what.join(", "), l.why);
        let _ = writeln!(
            s,
            "    {} bytes ({} KB) first kept here (storage shared with an earlier keeper counts there)",
            thousands(l.saved_bytes),
            crate::render::kilobytes(l.saved_bytes)
        );
    }
}
