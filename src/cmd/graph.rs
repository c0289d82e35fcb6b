//! `cnncost graph`: the network's graph in Graphviz DOT.

use crate::common::{emit, load, Failed, NetArgs};
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct GraphArgs {
    /// The .net file or zoo name
    file: PathBuf,
    #[command(flatten)]
    net: NetArgs,
}

pub fn run(args: &GraphArgs) -> Result<(), Failed> {
    let net = load(&args.file, &args.net)?;
    emit(&analyzer::render::dot(&net))
}
