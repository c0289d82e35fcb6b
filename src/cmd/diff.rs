//! `cnncost diff A B`: which ops a change to a network moved, and what it
//! costs in total; `--fail-if` turns budgets into an exit status for CI.

use crate::common::{analyzed, emit, fail, load, CostArgs, Failed, NetArgs};
use analyzer::diff::{self, parse_conditions, Condition, Conditions};
use analyzer::training::TrainOptions;
use clap::{Args, ValueEnum};
use dsl::plan::Optimizer;
use std::path::PathBuf;

pub const LONG_ABOUT: &str = "\
Compare two networks op by op and in total: which ops were added, removed,
changed (op, arguments, output shape, params, MACs, memory), renamed or
moved, and how the totals changed, absolute and in percent.

Ops are aligned by dotted name; ops whose names changed, and ops named by
their position (`3`, `features.0`), are matched by structure (the same op
with the same arguments, in order).
A and B are files, zoo names, or `-` for standard input.

`--fail-if` sets the exit status for CI: conditions on the change of a
total, separated by spaces or commas, each QUANTITY then >, >=, < or <=
then a signed change, absolute (+0, -1M) or in percent of A (+5%). The exit
status is 3 when any holds (1 is an error, 2 a usage error). Quantities: params, buffers, macs, flops,
activations (stored activation bytes), memory (peak live activations),
depth, and with a training step (implied when named) backward_macs, saved
and peak (the step's peak memory).

Examples:
  cnncost diff resnet50 resnet50_v1
  git show HEAD:net.net | cnncost diff - net.net --format markdown
  cnncost diff old.net new.net --fail-if 'macs>+5% params>+0 peak>+10%'
  cnncost diff resnet20 resnet56 --train --batch 128";

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Markdown,
    Json,
}

#[derive(Args)]
pub struct DiffArgs {
    /// The network before: a .net file, a zoo name, or `-` (standard input)
    a: PathBuf,
    /// The network after: a .net file, a zoo name, or `-` (standard input)
    b: PathBuf,
    #[command(flatten)]
    net: NetArgs,
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    #[command(flatten)]
    cost: CostArgs,
    /// Compare a training step too: backward MACs, saved bytes, the peak
    #[arg(long)]
    train: bool,
    /// The optimizer of the training step (with --train)
    #[arg(long, default_value = "momentum", value_name = "NAME")]
    optimizer: Optimizer,
    /// List every op, the unchanged ones too
    #[arg(long)]
    all: bool,
    /// Exit with status 1 when a condition on the totals' change holds:
    /// 'macs>+5% params>+0 peak>+10%'
    #[arg(long, value_name = "CONDITIONS", value_parser = parse_conditions)]
    fail_if: Option<Conditions>,
}

pub fn run(args: &DiffArgs) -> Result<(), Failed> {
    if args.a == args.b && args.a.as_os_str() == "-" {
        return Err(fail("only one of A and B can be `-` (standard input)"));
    }
    let conditions = args.fail_if.clone().map_or_else(Vec::new, |c| c.0);
    let train = args.train || conditions.iter().any(|c| c.quantity.is_training());
    let options = args.cost.options();
    let (net_a, net_b) = (load(&args.a, &args.net)?, load(&args.b, &args.net)?);
    let analysed = |net| -> Result<analyzer::Analysis, Failed> {
        let a = analyzed(net, options)?;
        if !train {
            return Ok(a);
        }
        let t = TrainOptions {
            optimizer: args.optimizer,
            ..TrainOptions::default()
        };
        analyzer::with_training(a, &t).map_err(|d| {
            eprint!("{}", d.render(&net.source));
            Failed
        })
    };
    let (a, b) = (analysed(&net_a)?, analysed(&net_b)?);
    let d = diff::diff(&a, &b);
    if d.structure_skipped {
        eprintln!(
            "note: over 4,000 ops on each side differ in name: they are not matched by structure (renamed ops show as removed and added)"
        );
    }
    let text = match args.format {
        Format::Table => diff::table(&d, args.all),
        Format::Markdown => diff::markdown(&d, args.all),
        Format::Json => {
            serde_json::to_string_pretty(&diff::json(&d, args.all)).unwrap_or_default() + "\n"
        }
    };
    emit(&text)?;
    let held: Vec<&Condition> = conditions
        .iter()
        .filter(|c| c.holds(&d) == Some(true))
        .collect();
    if held.is_empty() {
        return Ok(());
    }
    for c in &held {
        let t = d
            .total(c.quantity)
            .expect("a condition that holds has its total");
        eprintln!(
            "fail-if: `{}` holds: {} {} -> {} ({})",
            c.text,
            c.quantity.name(),
            diff::value_text(c.quantity, t.a),
            diff::value_text(c.quantity, t.b),
            diff::signed_percent(t.percent())
        );
    }
    std::process::exit(crate::common::EXIT_CONDITION)
}
