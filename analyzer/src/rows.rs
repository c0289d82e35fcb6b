//! The table's rows: statements cut at a nesting level (`--depth N`), each
//! with the summed costs of the ops it made.

use crate::cost::OpCost;
use crate::receptive_field::ReceptiveField;
use crate::Analysis;
use dsl::ir::{Role, Shape};
use petgraph::graph::NodeIndex;
use std::collections::HashMap;

#[derive(Clone, Debug)]
pub struct Row {
    /// Full dotted name of the statement (a label, or the first op's name).
    pub name: dsl::ir::Name,
    /// The statement as written (after its label), shortened; shared by
    /// the rows of one statement's copies (`repeat`, block calls).
    pub ops: std::rc::Rc<str>,
    pub nodes: Vec<NodeIndex>,
    /// Output of the row: the last op of its main flow.
    pub output: Shape,
    /// Bytes of that output for the batch: the lecture's "memory".
    pub output_bytes: u64,
    /// Summed costs (saturating: totals are checked separately).
    pub cost: OpCost,
    pub receptive_field: ReceptiveField,
    /// A `head train` row: left out of inference totals.
    pub train_only: bool,
    pub statement: u32,
}

/// The longest `ops` description before it is cut with `…`.
const OPS_WIDTH: usize = 44;

/// Rows at nesting level `depth` (1: top-level statements). The input is
/// not a row.
pub fn rows(a: &Analysis, depth: u32) -> Vec<Row> {
    let net = a.network;
    let depth = depth.max(1);
    // The row statement of each statement: its ancestor at `depth`.
    let mut row_of: Vec<u32> = Vec::with_capacity(net.statements.len());
    for (i, s) in net.statements.iter().enumerate() {
        let r = match s.parent {
            Some(p) if s.level > depth => row_of[p as usize],
            _ => i as u32,
        };
        row_of.push(r);
    }
    let mut rows: Vec<Row> = Vec::new();
    // The row of each row statement, by statement (no hashing: a million
    // ops make half a million rows).
    const NONE: usize = usize::MAX;
    let mut index: Vec<usize> = vec![NONE; net.statements.len()];
    let mut described: HashMap<usize, std::rc::Rc<str>> = HashMap::new();
    for l in a.layers.iter().skip(1) {
        let node = &net.graph[l.node];
        let st = row_of[node.statement as usize];
        if index[st as usize] == NONE {
            let s = &net.statements[st as usize];
            rows.push(Row {
                name: s.name.clone(),
                ops: described
                    .entry(s.span.start)
                    .or_insert_with(|| describe(&net.source.text, s.span.start).into())
                    .clone(),
                nodes: Vec::new(),
                output: node.shape,
                output_bytes: 0,
                cost: OpCost::default(),
                receptive_field: l.receptive_field,
                train_only: true,
                statement: st,
            });
            index[st as usize] = rows.len() - 1;
        }
        let i = index[st as usize];
        let r = &mut rows[i];
        r.nodes.push(l.node);
        r.cost.params = r.cost.params.saturating_add(l.cost.params);
        r.cost.buffers = r.cost.buffers.saturating_add(l.cost.buffers);
        r.cost.macs = r.cost.macs.saturating_add(l.cost.macs);
        r.cost.flops = r.cost.flops.saturating_add(l.cost.flops);
        r.train_only &= node.role == Role::Head { train: true };
    }
    for r in &mut rows {
        // The row's output: its last op outside any head (a head inside a
        // block leaves the block's output unchanged).
        let main_role = |n: &NodeIndex| !matches!(net.graph[*n].role, Role::Head { .. });
        let last = r
            .nodes
            .iter()
            .rev()
            .find(|n| main_role(n))
            .or(r.nodes.last())
            .copied();
        if let Some(n) = last {
            r.output = net.graph[n].shape;
            r.output_bytes = a.layer(n).activation_bytes;
            r.receptive_field = a.layer(n).receptive_field;
        }
    }
    rows
}

/// The statement's text after its label, up to the end of its line or of
/// the statement (a `;`, or a `}` closing an enclosing block).
fn describe(text: &str, start: usize) -> String {
    let line = text.get(start..).unwrap_or("").lines().next().unwrap_or("");
    let mut depth = 0i32;
    let end = line
        .char_indices()
        .find(|&(_, c)| {
            match c {
                '(' | '{' => depth += 1,
                ')' | '}' => depth -= 1,
                _ => {}
            }
            depth < 0 || c == '#' || (c == ';' && depth == 0)
        })
        .map_or(line.len(), |(i, _)| i);
    let line = line[..end].trim();
    // Drop a leading `label:` (not the `:` of a `?:` inside an argument).
    let body = match line.find(':') {
        Some(i) if !line[..i].contains([' ', '(', '=']) => line[i + 1..].trim(),
        _ => line,
    };
    let body = if body == "{" || body.is_empty() {
        "{ ... }"
    } else {
        body
    };
    let body = body
        .strip_suffix('{')
        .map_or(body.to_string(), |b| format!("{}{{ ... }}", b));
    if body.chars().count() > OPS_WIDTH {
        let cut: String = body.chars().take(OPS_WIDTH - 1).collect();
        format!("{}…", cut.trim_end())
    } else {
        body
    }
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn descriptions() {
        assert_eq!(
            describe("conv1: conv 64 k=11 | relu\n", 0),
            "conv 64 k=11 | relu"
        );
        assert_eq!(describe("features: {\n", 0), "{ ... }");
        assert_eq!(
            describe("layer1: stage(64, 3, 1) # comment", 0),
            "stage(64, 3, 1)"
        );
        assert_eq!(describe("residual {", 0), "residual { ... }");
        assert_eq!(describe("bottleneck(width) }", 0), "bottleneck(width)");
        assert_eq!(describe("conv 64 k=1; relu", 0), "conv 64 k=1");
    }
}
