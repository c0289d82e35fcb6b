//! Renderers: the table, Markdown, CSV, JSON and Graphviz DOT. The table,
//! Markdown and CSV share one grid of cells, produced a line at a time so
//! that every format streams (a million-op network's output is written as
//! it is made); CSV keeps exact integers where the others print thousands
//! and millions.

mod dot;
mod json;

pub use dot::dot;
pub use json::{json, write_json};

use crate::receptive_field::Axis;
use crate::rows::Row;
use crate::{Analysis, Totals};
use std::io::{self, Write};

/// Optional columns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Columns {
    pub flops: bool,
    pub receptive_field: bool,
    pub buffers: bool,
    pub percent: bool,
    /// Backward MACs (with `--train`).
    pub backward: bool,
    /// Bytes kept for the backward (with `--train`).
    pub saved: bool,
    /// Predicted time, arithmetic intensity and bound (with
    /// `--device-profile`).
    pub time: bool,
}

impl Columns {
    pub const NAMES: [&'static str; 7] = [
        "flops", "rf", "buffers", "percent", "backward", "saved", "time",
    ];

    /// `--columns all`: each column the analysis has figures for.
    pub const ALL: Columns = Columns {
        flops: true,
        receptive_field: true,
        buffers: true,
        percent: true,
        backward: true,
        saved: true,
        time: true,
    };

    /// `--train`'s default: the backward's MACs and the bytes kept for it.
    pub fn training() -> Columns {
        Columns {
            backward: true,
            saved: true,
            ..Columns::default()
        }
    }

    /// Parses `flops,rf` or `all`.
    pub fn parse(list: &str) -> Result<Columns, String> {
        let mut c = Columns::default();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match name {
                "flops" => c.flops = true,
                "rf" | "receptive_field" => c.receptive_field = true,
                "buffers" => c.buffers = true,
                "percent" | "%" => c.percent = true,
                "backward" => c.backward = true,
                "saved" => c.saved = true,
                "time" => c.time = true,
                "all" => c = Columns::ALL,
                other => {
                    return Err(format!(
                        "unknown column `{other}` (choose from {}, or all)",
                        Columns::NAMES.join(", ")
                    ))
                }
            }
        }
        Ok(c)
    }
}

/// Appends `n` in decimal, as `Display` prints it but without the
/// formatting machinery (a million-op table prints millions of numbers).
pub(crate) fn push_u64(buf: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.push_str(std::str::from_utf8(&digits[i..]).unwrap_or("0"));
}

/// Appends `n` with thousands separators: `61,100,840`.
fn push_thousands(buf: &mut String, n: u64) {
    let mut digits = String::with_capacity(20);
    push_u64(&mut digits, n);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            buf.push(',');
        }
        buf.push(ch);
    }
}

/// `61,100,840`
pub fn thousands(n: u64) -> String {
    let mut out = String::with_capacity(26);
    push_thousands(&mut out, n);
    out
}

/// `233.1 MiB`, `1.75 GiB`, `192.0 KiB`: bytes for a summary line.
pub fn binary_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= (1u64 << 30) as f64 {
        format!("{:.2} GiB", b / (1u64 << 30) as f64)
    } else if b >= (1u64 << 20) as f64 {
        format!("{:.1} MiB", b / (1u64 << 20) as f64)
    } else {
        format!("{:.1} KiB", b / 1024.0)
    }
}

/// `n * scale / den` rounded to the nearest integer in integer arithmetic,
/// where that is exactly what the float formatting of the quotient prints
/// (it is a tenth of a million-op table's time): `None` at an exact tie,
/// which the float formatting breaks on the binary value, and beyond f64's
/// exact integers.
fn rounded_ratio(n: u64, scale: u128, den: u128) -> Option<u64> {
    let scaled = u128::from(n) * scale;
    let (q, r) = (scaled / den, scaled % den);
    (2 * r != den && n < 1 << 53).then(|| (q + u128::from(2 * r > den)) as u64)
}

/// `72.856` (millions, three decimals).
pub fn millions(n: u64) -> String {
    match rounded_ratio(n, 1, 1000) {
        Some(k) => {
            let mut out = String::with_capacity(24);
            push_u64(&mut out, k / 1000);
            out.push('.');
            let frac = k % 1000;
            out.push_str(if frac < 10 {
                "00"
            } else if frac < 100 {
                "0"
            } else {
                ""
            });
            push_u64(&mut out, frac);
            out
        }
        None => format!("{:.3}", n as f64 / 1e6),
    }
}

/// `bytes / 1024` with two decimals, as `format!("{:.2}")` prints it.
fn kib_two_decimals(bytes: u64) -> String {
    match rounded_ratio(bytes, 100, 1024) {
        Some(k) => format!("{}.{:02}", k / 100, k % 100),
        None => format!("{:.2}", bytes as f64 / 1024.0),
    }
}

/// Kilobytes (1024 bytes) with at most two decimals: `784`, `182.25`.
pub fn kilobytes(bytes: u64) -> String {
    if let Some(k) = rounded_ratio(bytes, 100, 1024) {
        let mut out = String::with_capacity(24);
        push_thousands(&mut out, k / 100);
        match k % 100 {
            0 => {}
            f if f % 10 == 0 => {
                out.push('.');
                push_u64(&mut out, f / 10);
            }
            f => {
                out.push_str(if f < 10 { ".0" } else { "." });
                push_u64(&mut out, f);
            }
        }
        return out;
    }
    let s = kib_two_decimals(bytes);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    match s.split_once('.') {
        Some((int, frac)) => format!("{}.{frac}", thousands(int.parse().unwrap_or(0))),
        None => thousands(s.parse().unwrap_or(0)),
    }
}

/// Seconds as microseconds with three significant digits at least:
/// `1234.5`, `12.3`, `0.0123`.
pub fn micros(seconds: f64) -> String {
    let us = seconds * 1e6;
    if us == 0.0 || us >= 100.0 {
        format!("{us:.1}")
    } else {
        let decimals = (2.0 - us.log10().floor()).clamp(1.0, 9.0) as usize;
        format!("{us:.decimals$}")
    }
}

/// A number as JSON and tables print it: an integer when it is one.
pub fn number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

fn rf_cell(h: Axis, w: Axis) -> String {
    if h == w {
        format!("{} /{}", number(h.size), number(h.stride))
    } else {
        format!(
            "{}x{} /{}x{}",
            number(h.size),
            number(w.size),
            number(h.stride),
            number(w.stride)
        )
    }
}

/// The conventions behind the figures, printed above every table.
pub fn conventions(a: &Analysis) -> String {
    let net = a.network;
    format!(
        "{name}: input {input}, batch {batch}, {dtype}\n\
         params: trainable (buffers apart); MACs: conv and linear multiply-accumulates, \
         bias excluded; memory: output activations, KB = 1024 bytes (docs/costs.md)",
        name = net.name,
        input = net.input,
        batch = a.options.batch,
        dtype = a.options.dtype,
    )
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.1}", part as f64 * 100.0 / whole as f64)
    }
}

/// The grid's lines one at a time: the header, a line per row, then the
/// totals (two lines with a `head train`). `exact`: integers as they are
/// (CSV) rather than in thousands and millions. Nothing is kept, so output
/// for a million-op network streams; a renderer that needs the columns'
/// widths reads the lines twice.
fn lines<'r>(
    a: &'r Analysis,
    rows: &'r [Row],
    cols: Columns,
    exact: bool,
) -> impl Iterator<Item = Vec<String>> + 'r {
    let totals = std::iter::once(("total", &a.totals)).chain(
        a.has_train_heads()
            .then_some(("total (training)", &a.train_totals)),
    );
    std::iter::once(header(a, cols, exact))
        .chain(rows.iter().map(move |r| row_cells(a, r, cols, exact)))
        .chain(totals.map(move |(name, t)| total_cells(a, name, t, cols, exact)))
}

/// The training figures shown in columns, if any are asked for.
fn shown_training<'a>(a: &'a Analysis, cols: Columns) -> Option<&'a crate::training::Training> {
    a.training.as_ref().filter(|_| cols.backward || cols.saved)
}

fn header(a: &Analysis, cols: Columns, exact: bool) -> Vec<String> {
    let mut header: Vec<String> = ["layer", "op", "output"].map(String::from).to_vec();
    if exact {
        header.extend(["memory_bytes", "params", "macs"].map(String::from));
    } else {
        header.extend(["memory (KB)", "params (M)", "MACs (M)"].map(String::from));
    }
    if cols.flops {
        header.push(if exact { "flops" } else { "FLOPs (M)" }.into());
    }
    if cols.buffers {
        header.push("buffers".into());
    }
    if cols.receptive_field {
        if exact {
            header.extend(["rf_size", "rf_stride", "rf_start"].map(String::from));
        } else {
            header.push("RF /stride".into());
        }
    }
    if cols.percent {
        header.extend(["% params", "% MACs"].map(String::from));
    }
    if shown_training(a, cols).is_some() {
        if cols.backward {
            header.push(
                if exact {
                    "backward_macs"
                } else {
                    "bwd MACs (M)"
                }
                .into(),
            );
        }
        if cols.saved {
            header.push(if exact { "saved_bytes" } else { "saved (KB)" }.into());
        }
    }
    if shown_device(a, cols).is_some() {
        if exact {
            header.extend(["predicted_seconds", "flops_per_byte", "bound"].map(String::from));
        } else {
            header.extend(["time (µs)", "FLOP/B", "bound"].map(String::from));
        }
    }
    header
}

/// The predicted times shown in columns, if asked for.
fn shown_device<'a>(a: &'a Analysis, cols: Columns) -> Option<&'a crate::device::Predicted> {
    a.device.as_ref().filter(|_| cols.time)
}

/// Time, intensity and bound cells of a set of ops: their summed time,
/// FLOPs over bytes, and the bound of the slowest.
fn time_cells(times: &[crate::device::OpTime], exact: bool) -> [String; 3] {
    let seconds: f64 = times.iter().map(|t| t.predicted).sum();
    let flops: u64 = times.iter().map(|t| t.flops).fold(0, u64::saturating_add);
    let bytes: u64 = times
        .iter()
        .map(|t| t.bytes_read.saturating_add(t.bytes_written))
        .fold(0, u64::saturating_add);
    let slowest = times
        .iter()
        .filter(|t| t.predicted > 0.0)
        .max_by(|x, y| x.predicted.total_cmp(&y.predicted));
    let bound = slowest.map_or("-", |t| match t.bound() {
        crate::device::Bound::Compute => "compute",
        crate::device::Bound::Memory => "memory",
    });
    let intensity = if bytes == 0 {
        0.0
    } else {
        flops as f64 / bytes as f64
    };
    // Ops whose work a later op does (a conv and the BN and ReLU after it).
    if !exact && seconds == 0.0 && times.iter().any(|t| t.fused_into.is_some()) {
        return ["fused".into(), "-".into(), "-".into()];
    }
    if exact {
        [
            format!("{seconds:e}"),
            format!("{intensity:.3}"),
            bound.to_string(),
        ]
    } else {
        [
            micros(seconds),
            format!("{intensity:.1}"),
            bound.to_string(),
        ]
    }
}

fn count(n: u64, exact: bool) -> String {
    if exact {
        n.to_string()
    } else {
        millions(n)
    }
}

fn bytes_cell(n: u64, exact: bool) -> String {
    if exact {
        n.to_string()
    } else {
        kilobytes(n)
    }
}

fn row_cells(a: &Analysis, r: &Row, cols: Columns, exact: bool) -> Vec<String> {
    let m = |n: u64| count(n, exact);
    let mut cells = vec![
        if r.train_only {
            format!("{} (train)", r.name)
        } else {
            r.name.to_string()
        },
        r.ops.to_string(),
        r.output.to_string(),
        bytes_cell(r.output_bytes, exact),
        m(r.cost.params),
        m(r.cost.macs),
    ];
    if cols.flops {
        cells.push(m(r.cost.flops));
    }
    if cols.buffers {
        cells.push(if exact {
            r.cost.buffers.to_string()
        } else {
            thousands(r.cost.buffers)
        });
    }
    if cols.receptive_field {
        let rf = r.receptive_field;
        if exact {
            cells.push(number(rf.h.size));
            cells.push(number(rf.h.stride));
            cells.push(number(rf.h.start));
        } else {
            cells.push(rf_cell(rf.h, rf.w));
        }
    }
    if cols.percent {
        let t = if r.train_only {
            a.train_totals
        } else {
            a.totals
        };
        cells.push(percent(r.cost.params, t.params));
        cells.push(percent(r.cost.macs, t.macs));
    }
    if let Some(t) = shown_training(a, cols) {
        let (macs, saved) = r.nodes.iter().fold((0u64, 0u64), |(m, s), n| {
            let l = &t.layers[n.index()];
            (
                m.saturating_add(l.backward.macs()),
                s.saturating_add(l.saved_bytes),
            )
        });
        if cols.backward {
            cells.push(m(macs));
        }
        if cols.saved {
            cells.push(bytes_cell(saved, exact));
        }
    }
    if let Some(d) = shown_device(a, cols) {
        let times: Vec<crate::device::OpTime> =
            r.nodes.iter().map(|n| d.times[n.index()]).collect();
        cells.extend(time_cells(&times, exact));
    }
    cells
}

fn total_cells(a: &Analysis, name: &str, t: &Totals, cols: Columns, exact: bool) -> Vec<String> {
    let m = |n: u64| count(n, exact);
    let mut cells = vec![
        name.to_string(),
        String::new(),
        format!("depth {}", t.depth),
        bytes_cell(t.activation_bytes, exact),
        m(t.params),
        m(t.macs),
    ];
    if cols.flops {
        cells.push(m(t.flops));
    }
    if cols.buffers {
        cells.push(if exact {
            t.buffers.to_string()
        } else {
            thousands(t.buffers)
        });
    }
    if cols.receptive_field {
        cells.extend(std::iter::repeat_n(
            String::new(),
            if exact { 3 } else { 1 },
        ));
    }
    if cols.percent {
        cells.extend(["100.0".to_string(), "100.0".to_string()]);
    }
    if let Some(t) = shown_training(a, cols) {
        // The training step's totals go on the training line (or the only
        // one).
        let here = name == "total (training)" || !a.has_train_heads();
        if cols.backward {
            cells.push(if here {
                m(t.backward_macs())
            } else {
                String::new()
            });
        }
        if cols.saved {
            cells.push(if here {
                bytes_cell(t.saved_bytes, exact)
            } else {
                String::new()
            });
        }
    }
    if let Some(d) = shown_device(a, cols) {
        // Inference: the training heads only on the training line.
        let train = name == "total (training)";
        let times: Vec<crate::device::OpTime> = a
            .layers
            .iter()
            .filter(|l| {
                train || a.network.graph[l.node].role != dsl::ir::Role::Head { train: true }
            })
            .map(|l| d.times[l.node.index()])
            .collect();
        cells.extend(time_cells(&times, exact));
    }
    cells
}

/// Lines under the table: exact totals and the peak memory.
fn footer(a: &Analysis) -> String {
    let t = &a.totals;
    let mut s = format!(
        "params {} (buffers {}), MACs {}, FLOPs {}, depth {}\n\
         activations stored {} KB (input included), peak live {} KB",
        thousands(t.params),
        thousands(t.buffers),
        thousands(t.macs),
        thousands(t.flops),
        t.depth,
        kilobytes(t.activation_bytes),
        kilobytes(t.peak_activation_bytes),
    );
    if a.has_train_heads() {
        let tt = &a.train_totals;
        s.push_str(&format!(
            "\ntraining (with `head train`): params {}, MACs {}",
            thousands(tt.params),
            thousands(tt.macs)
        ));
    }
    if let Some(t) = &a.training {
        s.push('\n');
        s.push_str(&training_summary(a, t));
    }
    if let Some(d) = &a.device {
        s.push_str(&format!(
            "\npredicted on {} ({}: {}): forward {} µs at batch {} (the roofline of each op over its kind's efficiency; docs/costs.md, \"Time\")",
            d.profile.name,
            d.profile.source,
            d.profile.reference,
            micros(d.total(a)),
            a.options.batch
        ));
    }
    s
}

/// The training step under the table: the backward's work, the memory by
/// kind, and the peak.
pub fn training_summary(a: &Analysis, t: &crate::training::Training) -> String {
    format!(
        "training step (batch {batch}, {dtype}, optimizer {opt}, saved tensors as {policy} keeps them):\n\
         \x20 FLOPs: forward {fwd}, backward {bwd} (conv/linear MACs: input gradients {bin}, weight gradients {bw})\n\
         \x20 memory: weights {w}, gradients {g}, optimizer state {s}, saved for backward {saved}, workspace {ws}\n\
         \x20 peak {peak} ({peak_b} bytes), at the {at}",
        batch = a.options.batch,
        dtype = a.options.dtype,
        opt = t.optimizer,
        policy = t.policy,
        fwd = thousands(t.forward_flops),
        bwd = thousands(t.backward_flops),
        bin = thousands(t.backward_input_macs),
        bw = thousands(t.backward_weight_macs),
        w = binary_bytes(t.weights_bytes),
        g = binary_bytes(t.gradients_bytes),
        s = binary_bytes(t.optimizer_state_bytes),
        saved = binary_bytes(t.saved_bytes),
        ws = binary_bytes(t.workspace_bytes),
        peak = binary_bytes(t.peak_bytes),
        peak_b = thousands(t.peak_bytes),
        at = t.peak_at,
    )
}

/// The table, box-drawn: the conventions above it, a rule above the
/// totals, the exact totals under it. Written line by line: the columns'
/// widths come from a first pass over the cells, which keeps none.
pub fn write_table(
    out: &mut dyn Write,
    a: &Analysis,
    rows: &[Row],
    cols: Columns,
) -> io::Result<()> {
    let mut widths: Vec<usize> = Vec::new();
    for line in lines(a, rows, cols, false) {
        widths.resize(widths.len().max(line.len()), 0);
        for (w, c) in widths.iter_mut().zip(&line) {
            *w = (*w).max(c.chars().count());
        }
    }
    let rule = |out: &mut dyn Write, (l, m, r): (char, char, char)| -> io::Result<()> {
        let parts: Vec<String> = widths.iter().map(|&w| "─".repeat(w + 2)).collect();
        writeln!(out, "{l}{}{r}", parts.join(&m.to_string()))
    };
    // Numbers are right-aligned: the columns from `memory` on, and the
    // `depth N` of the totals.
    let right_from = 3;
    let totals_from = rows.len() + 1;
    let mut buf = String::new();
    let mut line_of = |out: &mut dyn Write, cells: &[String], i: usize| -> io::Result<()> {
        buf.clear();
        buf.push('│');
        for (j, w) in widths.iter().enumerate() {
            let c = cells.get(j).map_or("", String::as_str);
            let pad = w - c.chars().count();
            buf.push(' ');
            let right = i > 0 && (j >= right_from || (j == 2 && i >= totals_from));
            if right {
                buf.extend(std::iter::repeat_n(' ', pad));
            }
            buf.push_str(c);
            if !right {
                buf.extend(std::iter::repeat_n(' ', pad));
            }
            buf.push_str(" │");
        }
        buf.push('\n');
        out.write_all(buf.as_bytes())
    };
    writeln!(out, "{}", conventions(a))?;
    rule(out, ('┌', '┬', '┐'))?;
    for (i, cells) in lines(a, rows, cols, false).enumerate() {
        if i == totals_from {
            let rule_cells: Vec<String> = widths.iter().map(|&w| "─".repeat(w)).collect();
            line_of(out, &rule_cells, i)?;
        }
        line_of(out, &cells, i)?;
        if i == 0 {
            rule(out, ('├', '┼', '┤'))?;
        }
    }
    rule(out, ('└', '┴', '┘'))?;
    writeln!(out, "{}", footer(a))
}

/// `write_table` into a string.
pub fn table(a: &Analysis, rows: &[Row], cols: Columns) -> String {
    to_string(|out| write_table(out, a, rows, cols))
}

/// What a writer writes, as a string.
fn to_string(write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> String {
    let mut buf = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = write(&mut buf);
    String::from_utf8(buf).unwrap_or_default()
}

/// The table in Markdown, line by line.
pub fn write_markdown(
    out: &mut dyn Write,
    a: &Analysis,
    rows: &[Row],
    cols: Columns,
) -> io::Result<()> {
    writeln!(out, "{}\n", conventions(a).replace('\n', "  \n"))?;
    for (i, line) in lines(a, rows, cols, false).enumerate() {
        write_markdown_line(out, &line, i == 0, &[0, 1, 2])?;
    }
    writeln!(out)?;
    writeln!(out, "{}", footer(a).replace('\n', "  \n"))
}

/// `write_markdown` into a string.
pub fn markdown(a: &Analysis, rows: &[Row], cols: Columns) -> String {
    to_string(|out| write_markdown(out, a, rows, cols))
}

/// One line of a Markdown table; after the header, the line of column
/// alignments (the columns in `left` left-aligned, the others right).
fn write_markdown_line(
    out: &mut dyn Write,
    line: &[String],
    header: bool,
    left: &[usize],
) -> io::Result<()> {
    let cells: Vec<String> = line.iter().map(|c| c.replace('|', "\\|")).collect();
    writeln!(out, "| {} |", cells.join(" | "))?;
    if header {
        let seps: Vec<&str> = (0..line.len())
            .map(|j| if left.contains(&j) { "---" } else { "---:" })
            .collect();
        writeln!(out, "|{}|", seps.join("|"))?;
    }
    Ok(())
}

/// A Markdown table of a header line and rows; the columns in `left` are
/// left-aligned, the others right-aligned (numbers).
pub fn markdown_grid(g: &[Vec<String>], left: &[usize]) -> String {
    to_string(|out| {
        for (i, line) in g.iter().enumerate() {
            write_markdown_line(out, line, i == 0, left)?;
        }
        Ok(())
    })
}

/// Plain aligned columns for a terminal: the columns in `left` are
/// left-aligned, the others right-aligned (numbers).
pub fn aligned_grid(g: &[Vec<String>], left: &[usize]) -> String {
    let cols = g.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|j| {
            g.iter()
                .filter_map(|r| r.get(j))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in g {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(j, c)| {
                if left.contains(&j) {
                    format!("{c:<w$}", w = widths[j])
                } else {
                    format!("{c:>w$}", w = widths[j])
                }
            })
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// RFC 4180: quote fields that hold a comma, a quote or a line break.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The grid as CSV (RFC 4180), exact integers, line by line.
pub fn write_csv(out: &mut dyn Write, a: &Analysis, rows: &[Row], cols: Columns) -> io::Result<()> {
    for line in lines(a, rows, cols, true) {
        let fields: Vec<String> = line.iter().map(|c| csv_field(c)).collect();
        writeln!(out, "{}", fields.join(","))?;
    }
    Ok(())
}

/// `write_csv` into a string.
pub fn csv(a: &Analysis, rows: &[Row], cols: Columns) -> String {
    to_string(|out| write_csv(out, a, rows, cols))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(thousands(61100840), "61,100,840");
        assert_eq!(thousands(100), "100");
        assert_eq!(kilobytes(802816), "784");
        assert_eq!(kilobytes(186624), "182.25");
        assert_eq!(kilobytes(4000), "3.91");
        assert_eq!(kilobytes(112_406_436), "109,771.91");
        assert_eq!(millions(72855552), "72.856");
        // The integer paths print what the float formatting prints.
        for n in (0..200_000u64)
            .step_by(7)
            .chain([1 << 40, 999_999_499, 123_456_789_012])
        {
            assert_eq!(millions(n), format!("{:.3}", n as f64 / 1e6), "{n}");
            assert_eq!(
                kib_two_decimals(n),
                format!("{:.2}", n as f64 / 1024.0),
                "{n}"
            );
            let float = format!("{:.2}", n as f64 / 1024.0);
            let float = float.trim_end_matches('0').trim_end_matches('.');
            let (int, frac) = float.split_once('.').unwrap_or((float, ""));
            let mut expected = thousands(int.parse().unwrap());
            if !frac.is_empty() {
                expected = format!("{expected}.{frac}");
            }
            assert_eq!(kilobytes(n), expected, "{n}");
        }
        assert_eq!(binary_bytes(196_608), "192.0 KiB");
        assert_eq!(micros(0.0012345), "1234.5");
        assert_eq!(micros(1.2345e-5), "12.3");
        assert_eq!(micros(1.2345e-8), "0.0123");
        assert_eq!(micros(0.0), "0.0");
        assert_eq!(binary_bytes(3 << 20), "3.0 MiB");
        assert_eq!(binary_bytes(3 << 30), "3.00 GiB");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
    }
}
