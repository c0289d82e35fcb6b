//! The stable JSON format, documented in docs/json.md.

use crate::receptive_field::Axis;
use crate::training::Training;
use crate::{Analysis, Totals};
use dsl::ir::Role;
use serde_json::{json, Value};

fn axis_value(h: f64, w: f64) -> Value {
    if h == w {
        json!(h_num(h))
    } else {
        json!([h_num(h), h_num(w)])
    }
}

/// Integral values as JSON integers.
fn h_num(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        json!(x as i64)
    } else {
        json!(x)
    }
}

fn rf(h: Axis, w: Axis) -> Value {
    json!({
        "size": axis_value(h.size, w.size),
        "stride": axis_value(h.stride, w.stride),
        "start": axis_value(h.start, w.start),
    })
}

fn totals(t: &Totals) -> Value {
    json!({
        "params": t.params,
        "buffers": t.buffers,
        "macs": t.macs,
        "flops": t.flops,
        "activation_bytes": t.activation_bytes,
        "peak_activation_bytes": t.peak_activation_bytes,
        "depth": t.depth,
    })
}

/// The version of this format (docs/json.md): 2 added `format_version`
/// and, with `--train`, the training fields.
pub const FORMAT_VERSION: u32 = 2;

fn training(t: &Training) -> Value {
    json!({
        "optimizer": t.optimizer.name(),
        "saved_policy": t.policy.name(),
        "forward_flops": t.forward_flops,
        "backward_macs": t.backward_macs(),
        "backward_input_macs": t.backward_input_macs,
        "backward_weight_macs": t.backward_weight_macs,
        "backward_flops": t.backward_flops,
        "trainable_params": t.trainable_params,
        "weights_bytes": t.weights_bytes,
        "gradients_bytes": t.gradients_bytes,
        "optimizer_state_bytes": t.optimizer_state_bytes,
        "saved_bytes": t.saved_bytes,
        "workspace_bytes": t.workspace_bytes,
        "peak_bytes": t.peak_bytes,
        "peak_at": t.peak_at,
    })
}

pub fn json(a: &Analysis) -> Value {
    let net = a.network;
    let layers: Vec<Value> = a
        .layers
        .iter()
        .skip(1)
        .map(|l| {
            let n = &net.graph[l.node];
            let loc = net.source.location(n.span.start);
            let mut v = json!({
                "name": n.name,
                "op": n.op.kind(),
                "output": n.shape.dims(),
                "params": l.cost.params,
                "buffers": l.cost.buffers,
                "macs": l.cost.macs,
                "flops": l.cost.flops,
                "activation_bytes": l.activation_bytes,
                "receptive_field": rf(l.receptive_field.h, l.receptive_field.w),
                "role": match n.role {
                    Role::Main => "main",
                    Role::Shortcut => "shortcut",
                    Role::Head { train: false } => "head",
                    Role::Head { train: true } => "train_head",
                },
                "source": {"file": loc.file, "line": loc.line, "col": loc.col},
            });
            if let Some(t) = &a.training {
                let tl = &t.layers[l.node.index()];
                v["backward_macs"] = json!(tl.backward.macs());
                v["backward_flops"] = json!(tl.backward.flops);
                v["saved_bytes"] = json!(tl.saved_bytes);
            }
            v
        })
        .collect();
    let mut v = json!({
        "format_version": FORMAT_VERSION,
        "network": net.name,
        "input": net.input.dims(),
        "batch": a.options.batch,
        "dtype": a.options.dtype.to_string(),
        "layers": layers,
        "totals": totals(&a.totals),
    });
    if a.has_train_heads() {
        v["training_totals"] = totals(&a.train_totals);
    }
    if let Some(t) = &a.training {
        v["training"] = training(t);
    }
    v
}
