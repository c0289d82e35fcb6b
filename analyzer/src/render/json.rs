//! The stable JSON format, documented in docs/json.md.

use super::push_u64;
use crate::training::Training;
use crate::{Analysis, Totals};
use dsl::ir::Role;
use serde_json::{json, Value};
use std::io::{self, Write};

/// Integral values as JSON integers.
fn h_num(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        json!(x as i64)
    } else {
        json!(x)
    }
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

/// The document without its layers (`"layers": []`), which `write_json`
/// fills in.
fn frame(a: &Analysis) -> Value {
    let net = a.network;
    let mut v = json!({
        "format_version": FORMAT_VERSION,
        "network": net.name,
        "input": net.input.dims(),
        "batch": a.options.batch,
        "dtype": a.options.dtype.to_string(),
        "layers": [],
        "totals": totals(&a.totals),
    });
    if a.has_train_heads() {
        v["training_totals"] = totals(&a.train_totals);
    }
    if let Some(t) = &a.training {
        v["training"] = training(t);
    }
    if let Some(d) = &a.device {
        v["device"] = json!({
            "name": d.profile.name,
            "source": d.profile.source,
            "reference": d.profile.reference,
            "predicted_seconds": d.total(a),
        });
    }
    v
}

/// The whole document as one value (for a small network, or a test): what
/// `write_json` writes, read back.
pub fn json(a: &Analysis) -> Value {
    let mut buf = Vec::new();
    // Writing into a Vec cannot fail, and what is written is JSON.
    let _ = write_json(&mut buf, a);
    serde_json::from_slice(&buf).unwrap_or(Value::Null)
}

/// The document, pretty-printed as serde_json prints it, written a layer at
/// a time: a million-op network's JSON streams, and each layer is written
/// field by field rather than built as a value (that took 5 of a 1M-op
/// document's 7 seconds).
pub fn write_json(out: &mut dyn Write, a: &Analysis) -> io::Result<()> {
    const MARK: &str = "\"layers\": []";
    let text = serde_json::to_string_pretty(&frame(a))?;
    let (before, after) = text
        .split_once(MARK)
        .expect("the frame has an empty layers field");
    out.write_all(before.as_bytes())?;
    let mut layers = a.layers.iter().skip(1).peekable();
    if layers.peek().is_none() {
        out.write_all(MARK.as_bytes())?;
    } else {
        out.write_all(b"\"layers\": [\n")?;
        let file = serde_json::to_string(&a.network.source.name)?;
        let mut buf = String::new();
        while let Some(l) = layers.next() {
            buf.clear();
            push_layer(&mut buf, a, l, &file);
            buf.push_str(if layers.peek().is_some() { ",\n" } else { "\n" });
            out.write_all(buf.as_bytes())?;
        }
        out.write_all(b"  ]")?;
    }
    out.write_all(after.as_bytes())?;
    out.write_all(b"\n")
}

/// `,\n`, the indentation, `"key": ` and a number.
fn push_field(buf: &mut String, indent: &str, key: &str, n: u64) {
    buf.push_str(",\n");
    buf.push_str(indent);
    buf.push('"');
    buf.push_str(key);
    buf.push_str("\": ");
    push_u64(buf, n);
}

/// A value of the receptive field: a number, or `[h, w]` when they differ,
/// at the indentation of the field (`indent`).
fn push_axis(buf: &mut String, h: f64, w: f64, indent: &str) {
    let number = |x: f64, buf: &mut String| {
        let v = h_num(x);
        match v.as_u64() {
            Some(n) => push_u64(buf, n),
            None => buf.push_str(&v.to_string()),
        }
    };
    if h == w {
        number(h, buf);
    } else {
        buf.push_str("[\n");
        buf.push_str(indent);
        buf.push_str("  ");
        number(h, buf);
        buf.push_str(",\n");
        buf.push_str(indent);
        buf.push_str("  ");
        number(w, buf);
        buf.push('\n');
        buf.push_str(indent);
        buf.push(']');
    }
}

/// One op's object in `layers` (indented as an element of it), appended to
/// `buf`; `file` is the source's name, already a JSON string.
fn push_layer(buf: &mut String, a: &Analysis, l: &crate::Layer, file: &str) {
    const IN: &str = "      ";
    let net = a.network;
    let n = &net.graph[l.node];
    let (line, col) = net.source.line_col(n.span.start);
    buf.push_str("    {\n      \"name\": ");
    // A name is a plain string: serde_json escapes it.
    buf.push_str(&serde_json::to_string(&*n.name).unwrap_or_default());
    buf.push_str(",\n      \"op\": \"");
    buf.push_str(n.op.kind());
    buf.push_str("\",\n      \"output\": [");
    for (i, d) in n.shape.dims().into_iter().enumerate() {
        buf.push_str(if i == 0 { "\n" } else { ",\n" });
        buf.push_str(IN);
        buf.push_str("  ");
        push_u64(buf, d);
    }
    buf.push('\n');
    buf.push_str(IN);
    buf.push(']');
    push_field(buf, IN, "params", l.cost.params);
    push_field(buf, IN, "buffers", l.cost.buffers);
    push_field(buf, IN, "macs", l.cost.macs);
    push_field(buf, IN, "flops", l.cost.flops);
    push_field(buf, IN, "activation_bytes", l.activation_bytes);
    let (h, w) = (l.receptive_field.h, l.receptive_field.w);
    let deeper = "        ";
    buf.push_str(",\n      \"receptive_field\": {\n        \"size\": ");
    push_axis(buf, h.size, w.size, deeper);
    buf.push_str(",\n        \"stride\": ");
    push_axis(buf, h.stride, w.stride, deeper);
    buf.push_str(",\n        \"start\": ");
    push_axis(buf, h.start, w.start, deeper);
    buf.push_str("\n      },\n      \"role\": \"");
    buf.push_str(match n.role {
        Role::Main => "main",
        Role::Shortcut => "shortcut",
        Role::Head { train: false } => "head",
        Role::Head { train: true } => "train_head",
    });
    buf.push_str("\",\n      \"source\": {\n        \"file\": ");
    buf.push_str(file);
    push_field(buf, deeper, "line", line as u64);
    push_field(buf, deeper, "col", col as u64);
    buf.push_str("\n      }");
    if let Some(t) = &a.training {
        let tl = &t.layers[l.node.index()];
        push_field(buf, IN, "backward_macs", tl.backward.macs());
        push_field(buf, IN, "backward_flops", tl.backward.flops);
        push_field(buf, IN, "saved_bytes", tl.saved_bytes);
    }
    if let Some(d) = &a.device {
        let t = &d.times[l.node.index()];
        let float = |buf: &mut String, key: &str, x: f64| {
            buf.push_str(",\n      \"");
            buf.push_str(key);
            buf.push_str("\": ");
            buf.push_str(&json!(x).to_string());
        };
        float(buf, "predicted_seconds", t.predicted);
        float(buf, "arithmetic_intensity", t.intensity());
        // An op that takes no time of its own has no bound; one fused into
        // a later op names it.
        buf.push_str(",\n      \"bound\": ");
        buf.push_str(match (t.predicted > 0.0, t.bound()) {
            (false, _) => "null",
            (true, crate::device::Bound::Compute) => "\"compute\"",
            (true, crate::device::Bound::Memory) => "\"memory\"",
        });
        buf.push_str(",\n      \"fused_into\": ");
        match t.fused_into {
            Some(n) => {
                let name = &net.graph[dsl::ir::NodeIndex::new(n)].name;
                buf.push_str(&serde_json::to_string(&**name).unwrap_or_default());
            }
            None => buf.push_str("null"),
        }
    }
    buf.push_str("\n    }");
}
