//! `cnncost check`: evaluates the `expect` lines of networks; the exit
//! status is 1 when one fails or a file does not compile.

use crate::common::{analyzed, emit, load, net_files, Failed, NetArgs};
use analyzer::render;
use analyzer::{expect, Options};
use clap::Args;
use std::path::PathBuf;

pub const LONG_ABOUT: &str = "Evaluate the `expect` lines of .net files: one line per \
        expectation with the expected and actual value. Directories are searched \
        for *.net files. The exit status is 1 if any expectation fails or a file \
        does not compile, so this is the command to run in CI.";

#[derive(Args)]
pub struct CheckArgs {
    /// .net files, directories holding them, or zoo names
    #[arg(required_unless_present = "zoo")]
    paths: Vec<PathBuf>,
    /// Check every network of the built-in zoo
    #[arg(long)]
    zoo: bool,
    #[command(flatten)]
    net: NetArgs,
}

pub fn run(args: &CheckArgs) -> Result<(), Failed> {
    let files = net_files(&args.paths, args.zoo)?;
    let (mut passed, mut failed) = (0usize, 0usize);
    for file in &files {
        let Ok(net) = load(file, &args.net) else {
            failed += 1;
            continue;
        };
        let Ok(a) = analyzed(&net, Options::default()) else {
            failed += 1;
            continue;
        };
        if net.expectations.is_empty() {
            emit(&format!("{}: no expect lines\n", file.display()))?;
        }
        for o in expect::evaluate(&a) {
            let x = o.expectation;
            let (line, _) = net.source.line_col(x.span.start);
            let allowed = o
                .allowed
                .map(|t| {
                    let t = if t.fract() == 0.0 && t < 1e18 {
                        render::thousands(t as u64)
                    } else {
                        render::number(t)
                    };
                    format!(", allowed ± {t}")
                })
                .unwrap_or_default();
            emit(&format!(
                "{} {}:{line}: {}  (actual {}{allowed})\n",
                if o.pass { "ok  " } else { "FAIL" },
                file.display(),
                x.text.trim(),
                o.actual,
            ))?;
            if o.pass {
                passed += 1;
            } else {
                failed += 1;
            }
        }
    }
    emit(&format!("{passed} passed, {failed} failed\n"))?;
    if failed > 0 {
        Err(Failed)
    } else {
        Ok(())
    }
}
