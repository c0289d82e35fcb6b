//! Graphviz DOT of the IR: one box per op (name, op, output shape), edges
//! in operand order, shortcuts dashed, heads grey.

use dsl::ir::{Network, Role};
use petgraph::visit::EdgeRef;

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

pub fn dot(net: &Network) -> String {
    let g = &net.graph;
    let mut s = format!(
        "digraph {} {{\n  rankdir=TB;\n  node [shape=box, fontname=\"Helvetica\", fontsize=10];\n",
        quote(&net.name)
    );
    for n in g.node_indices() {
        let node = &g[n];
        let style = match node.role {
            Role::Main => "",
            Role::Shortcut => ", style=dashed",
            Role::Head { .. } => ", color=gray50, fontcolor=gray30",
        };
        s.push_str(&format!(
            "  n{} [label={}{}];\n",
            n.index(),
            quote(&format!(
                "{}\n{} -> {}",
                node.name,
                node.op.kind(),
                node.shape
            )),
            style
        ));
    }
    for e in g.edge_references() {
        let many = g
            .edges_directed(e.target(), petgraph::Direction::Incoming)
            .count()
            > 1;
        let label = if many {
            format!(" [label=\"{}\"]", e.weight())
        } else {
            String::new()
        };
        s.push_str(&format!(
            "  n{} -> n{}{};\n",
            e.source().index(),
            e.target().index(),
            label
        ));
    }
    s.push_str("}\n");
    s
}
