//! `cnncost compare`: networks side by side, and the accuracy/cost chart.

use crate::common::{analyzed, emit, load, net_files, Failed, NetArgs};
use crate::compare::{self, Entry};
use analyzer::{render, Options};
use clap::Args;
use std::path::PathBuf;

pub const LONG_ABOUT: &str = "One row per network: params, MACs, FLOPs, stored \
        activations, depth and published top-1 accuracy (`meta top1`). With \
        --plot, draw the lecture's comparison chart: MACs on x (log scale), \
        top-1 on y, bubble area proportional to parameters, each network \
        labelled. Networks without a top-1 figure are listed, not drawn.\n\n\
        Example: cnncost compare --zoo --plot zoo.svg";

#[derive(Args)]
pub struct CompareArgs {
    /// .net files, directories holding them, or zoo names
    #[arg(required_unless_present = "zoo")]
    paths: Vec<PathBuf>,
    /// Compare every network of the built-in zoo
    #[arg(long)]
    zoo: bool,
    /// Draw the chart to FILE.svg or FILE.png
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
}

pub fn run(args: &CompareArgs) -> Result<(), Failed> {
    let files = net_files(&args.paths, args.zoo)?;
    let mut entries = Vec::new();
    for f in &files {
        let net = load(f, &NetArgs::default())?;
        let a = analyzed(&net, Options::default())?;
        entries.push(Entry::of(&net.name, &net, &a));
    }
    emit(&render::aligned_grid(&compare::table(&entries), &[0]))?;
    if let Some(path) = &args.plot {
        match compare::plot(&entries, path) {
            Ok((n, dataset)) => eprintln!(
                "wrote {}: {n} of {} networks have a published {dataset} top-1 figure",
                path.display(),
                entries.len()
            ),
            Err(msg) => {
                eprintln!("error: {msg}");
                return Err(Failed);
            }
        }
    }
    Ok(())
}
