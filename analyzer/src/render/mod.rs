//! Renderers: the table (prettytable), Markdown, CSV, JSON and Graphviz DOT.
//! The table, Markdown and CSV share one grid of cells; CSV keeps exact
//! integers where the others print thousands and millions.

mod dot;
mod json;

pub use dot::dot;
pub use json::json;

use crate::receptive_field::Axis;
use crate::rows::Row;
use crate::{Analysis, Totals};
use prettytable::{format, Cell, Row as PRow, Table};

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
}

impl Columns {
    pub const NAMES: [&'static str; 6] = ["flops", "rf", "buffers", "percent", "backward", "saved"];

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
                "all" => {
                    c = Columns {
                        flops: true,
                        receptive_field: true,
                        buffers: true,
                        percent: true,
                        backward: true,
                        saved: true,
                    }
                }
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

/// `61,100,840`
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// `233.1 MiB`, `1.75 GiB`: bytes for a summary line.
pub fn binary_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= (1u64 << 30) as f64 {
        format!("{:.2} GiB", b / (1u64 << 30) as f64)
    } else {
        format!("{:.1} MiB", b / (1u64 << 20) as f64)
    }
}

/// `72.856` (millions, three decimals).
pub fn millions(n: u64) -> String {
    format!("{:.3}", n as f64 / 1e6)
}

/// Kilobytes (1024 bytes) with at most two decimals: `784`, `182.25`.
pub fn kilobytes(bytes: u64) -> String {
    let s = format!("{:.2}", bytes as f64 / 1024.0);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    match s.split_once('.') {
        Some((int, frac)) => format!("{}.{frac}", thousands(int.parse().unwrap_or(0))),
        None => thousands(s.parse().unwrap_or(0)),
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

/// Header, rows and total lines as strings. `exact`: integers as they are
/// (CSV) rather than in thousands/millions.
fn grid(a: &Analysis, rows: &[Row], cols: Columns, exact: bool) -> Vec<Vec<String>> {
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
    let training = a.training.as_ref().filter(|_| cols.backward || cols.saved);
    if training.is_some() {
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
    let m = |n: u64| if exact { n.to_string() } else { millions(n) };
    let mut out = vec![header];
    for r in rows {
        let mut cells = vec![
            if r.train_only {
                format!("{} (train)", r.name)
            } else {
                r.name.clone()
            },
            r.ops.clone(),
            r.output.to_string(),
            if exact {
                r.output_bytes.to_string()
            } else {
                kilobytes(r.output_bytes)
            },
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
        if let Some(t) = training {
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
                cells.push(if exact {
                    saved.to_string()
                } else {
                    kilobytes(saved)
                });
            }
        }
        out.push(cells);
    }
    let mut total_line = |name: &str, t: &Totals| {
        let mut cells = vec![
            name.to_string(),
            String::new(),
            format!("depth {}", t.depth),
            if exact {
                t.activation_bytes.to_string()
            } else {
                kilobytes(t.activation_bytes)
            },
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
        if let Some(t) = training {
            // The training step's totals go on the training line (or the
            // only one).
            let here = name == "total (training)" || !a.has_train_heads();
            if cols.backward {
                cells.push(if here {
                    m(t.backward_macs())
                } else {
                    String::new()
                });
            }
            if cols.saved {
                cells.push(match (here, exact) {
                    (false, _) => String::new(),
                    (true, true) => t.saved_bytes.to_string(),
                    (true, false) => kilobytes(t.saved_bytes),
                });
            }
        }
        out.push(cells);
    };
    total_line("total", &a.totals);
    if a.has_train_heads() {
        total_line("total (training)", &a.train_totals);
    }
    out
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

pub fn table(a: &Analysis, rows: &[Row], cols: Columns) -> String {
    let g = grid(a, rows, cols, false);
    let mut t = Table::new();
    // Box lines around the table and under the header only: a course's table
    // reads better without a rule between every row.
    let line = |l, m, r| format::LineSeparator::new('─', m, l, r);
    t.set_format(
        format::FormatBuilder::new()
            .column_separator('│')
            .borders('│')
            .separator(format::LinePosition::Top, line('┌', '┬', '┐'))
            .separator(format::LinePosition::Title, line('├', '┼', '┤'))
            .separator(format::LinePosition::Bottom, line('└', '┴', '┘'))
            .padding(1, 1)
            .build(),
    );
    let right_from = 3;
    let totals_from = rows.len() + 1;
    for (i, cells) in g.iter().enumerate() {
        let cells = cells
            .iter()
            .enumerate()
            .map(|(j, c)| {
                let cell = Cell::new(c);
                if i == 0 {
                    cell.style_spec("b")
                } else if j >= right_from || (j == 2 && i >= totals_from) {
                    cell.style_spec("r")
                } else {
                    cell
                }
            })
            .collect();
        if i == 0 {
            t.set_titles(PRow::new(cells));
        } else {
            if i == totals_from {
                // A rule above the totals.
                let widths: Vec<usize> = g
                    .iter()
                    .map(|l| l.iter().map(|c| c.chars().count()).collect::<Vec<_>>())
                    .fold(vec![0; g[0].len()], |acc, w| {
                        acc.iter().zip(w).map(|(a, b)| (*a).max(b)).collect()
                    });
                t.add_row(PRow::new(
                    widths.iter().map(|&w| Cell::new(&"─".repeat(w))).collect(),
                ));
            }
            t.add_row(PRow::new(cells));
        }
    }
    format!("{}\n{}{}\n", conventions(a), t, footer(a))
}

pub fn markdown(a: &Analysis, rows: &[Row], cols: Columns) -> String {
    let g = grid(a, rows, cols, false);
    format!(
        "{}\n\n{}\n{}\n",
        conventions(a).replace('\n', "  \n"),
        markdown_grid(&g, &[0, 1, 2]),
        footer(a).replace('\n', "  \n")
    )
}

/// A Markdown table of a header line and rows; the columns in `left` are
/// left-aligned, the others right-aligned (numbers).
pub fn markdown_grid(g: &[Vec<String>], left: &[usize]) -> String {
    let mut s = String::new();
    for (i, line) in g.iter().enumerate() {
        let cells: Vec<String> = line.iter().map(|c| c.replace('|', "\\|")).collect();
        s.push_str(&format!("| {} |\n", cells.join(" | ")));
        if i == 0 {
            let seps: Vec<&str> = (0..line.len())
                .map(|j| if left.contains(&j) { "---" } else { "---:" })
                .collect();
            s.push_str(&format!("|{}|\n", seps.join("|")));
        }
    }
    s
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
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub fn csv(a: &Analysis, rows: &[Row], cols: Columns) -> String {
    grid(a, rows, cols, true)
        .iter()
        .map(|line| {
            let mut l = line
                .iter()
                .map(|c| csv_field(c))
                .collect::<Vec<_>>()
                .join(",");
            l.push('\n');
            l
        })
        .collect()
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
        assert_eq!(csv_field("a,b"), "\"a,b\"");
    }
}
