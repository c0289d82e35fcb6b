//! `cnncost weights`: every tensor of the network's state dict with its
//! full name, shape and kind, and the totals.

use crate::common::{emit, load, Failed, NetArgs};
use analyzer::render;
use clap::Args;
use std::path::PathBuf;

pub const LONG_ABOUT: &str = "List every tensor of the network's state dict: its \
        full dotted name (as PyTorch's state_dict names it), shape and kind \
        (param, buffer, or counter for BN's num_batches_tracked). Use it to map \
        weights from other sources.";

#[derive(Args)]
pub struct WeightsArgs {
    /// The .net file or zoo name
    file: PathBuf,
    /// Leave out `head train` branches (the inference network)
    #[arg(long)]
    inference: bool,
    #[command(flatten)]
    net: NetArgs,
}

pub fn run(args: &WeightsArgs) -> Result<(), Failed> {
    let net = load(&args.file, &args.net)?;
    let mut out = String::new();
    let (mut params, mut buffers) = (0u64, 0u64);
    for n in net.graph.node_indices() {
        let node = &net.graph[n];
        if args.inference && matches!(node.role, dsl::ir::Role::Head { train: true }) {
            continue;
        }
        let Some(&input) = net.input_shapes(n).first() else {
            continue;
        };
        for t in node.op.tensors(input) {
            let shape: Vec<String> = t.shape.iter().map(|d| d.to_string()).collect();
            out.push_str(&format!(
                "{}.{}\t[{}]\t{}\n",
                node.name,
                t.suffix,
                shape.join(", "),
                t.kind.name()
            ));
            let elems = t.elements().unwrap_or(u64::MAX);
            match t.kind {
                dsl::ir::TensorKind::Param => params = params.saturating_add(elems),
                dsl::ir::TensorKind::Buffer => buffers = buffers.saturating_add(elems),
                dsl::ir::TensorKind::Counter => {}
            }
        }
    }
    out.push_str(&format!(
        "# {} params, {} buffer elements\n",
        render::thousands(params),
        render::thousands(buffers)
    ));
    emit(&out)
}
