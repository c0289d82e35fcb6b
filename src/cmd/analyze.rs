//! `cnncost FILE.net` (no command): the cost table, or JSON, CSV,
//! Markdown, or the formulas of one op (`--explain`); with `--train`, a
//! training step's costs too, and with `--fit`, the largest batch that fits.

use crate::common::{
    analyzed, device_profile, emit, emit_with, load, CostArgs, Failed, Format, NetArgs,
};
use analyzer::render::{self, Columns};
use analyzer::training::{self, TrainOptions};
use analyzer::{explain, rows, Analysis, Options};
use clap::Args;
use dsl::plan::{Optimizer, SavedPolicy};
use std::path::PathBuf;

#[derive(Args)]
pub struct AnalyzeArgs {
    /// The .net file to analyze, or a zoo name (`cnncost zoo` lists them)
    file: Option<PathBuf>,
    #[command(flatten)]
    net: NetArgs,
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    #[command(flatten)]
    cost: CostArgs,
    /// Table rows at block level N (1: top-level statements; 2: inside them, ...)
    #[arg(long, default_value_t = 1, value_name = "N")]
    depth: u32,
    /// Extra columns: flops, rf (receptive field), buffers, percent, or all
    #[arg(long, value_name = "LIST", value_parser = Columns::parse)]
    columns: Option<Columns>,
    /// Print the formulas for one op (or every op of a block) with its numbers
    /// (with --train: the backward's formulas and what is saved, and why)
    #[arg(long, value_name = "NAME")]
    explain: Option<String>,
    /// Count a training step: backward MACs and FLOPs (input and weight
    /// gradients), bytes saved for the backward, weights, gradients, optimizer
    /// state, workspace and the peak of the step (docs/costs.md, "Training")
    #[arg(long)]
    train: bool,
    /// The optimizer whose state and step are counted (with --train): sgd,
    /// momentum (`cnncost train`'s default), nesterov, adam or adamw
    #[arg(
        long,
        default_value = "momentum",
        value_name = "NAME",
        requires = "train"
    )]
    optimizer: Optimizer,
    /// What is saved for the backward: `cnncost` (what our runtime keeps, the
    /// default) or `pytorch` (PyTorch autograd's rules)
    #[arg(
        long,
        default_value = "cnncost",
        value_name = "POLICY",
        requires = "train"
    )]
    saved: SavedPolicy,
    /// Freeze the ops named PREFIX or PREFIX.* as `train --freeze` does: no
    /// weight gradients, and no input gradients in front of them (repeatable)
    #[arg(long, value_name = "PREFIX", requires = "train")]
    freeze: Vec<String>,
    /// Print the largest batch whose training peak fits in SIZE (24GiB,
    /// 16GB, 512MiB; GiB = 2^30 bytes, GB = 10^9), with its table
    #[arg(long, value_name = "SIZE", value_parser = training::parse_bytes, requires = "train", conflicts_with = "batch")]
    fit: Option<u64>,
    /// Predict each op's time on a device: a built-in profile (h100-sxm,
    /// h200, a100, l4, rtx4090; datasheet figures) or a file from `cnncost
    /// calibrate`. Adds the time, the arithmetic intensity and the bound
    #[arg(long, value_name = "FILE|NAME")]
    device_profile: Option<String>,
}

pub fn run(args: &AnalyzeArgs) -> Result<(), Failed> {
    let Some(file) = &args.file else {
        eprintln!(
            "error: no network given\n\nUsage: cnncost FILE.net [OPTIONS]\n       cnncost check PATH...\n\nFor more information, try '--help'."
        );
        return Err(Failed);
    };
    let net = load(file, &args.net)?;
    let train = TrainOptions {
        optimizer: args.optimizer,
        policy: args.saved,
        freeze: args.freeze.clone(),
        without_train_heads: false,
        // The machine-free figure: the table reads the same on every machine.
        host: Default::default(),
    };
    let failed = |d: dsl::Diagnostic| {
        eprint!("{}", d.render(&net.source));
        Failed
    };
    let mut fit_line = None;
    let a: Analysis = match args.fit {
        Some(budget) => {
            match training::fit(&net, args.cost.dtype, &train, budget).map_err(failed)? {
                Some(a) => {
                    let t = a.training.as_ref().map_or(0, |t| t.peak_bytes);
                    fit_line = Some(format!(
                        "fits: batch {} (peak {} of {})\n",
                        a.options.batch,
                        render::binary_bytes(t),
                        render::binary_bytes(budget)
                    ));
                    a
                }
                None => {
                    let a1 = analyzer::with_training(
                        analyzed(
                            &net,
                            Options {
                                batch: 1,
                                dtype: args.cost.dtype,
                            },
                        )?,
                        &train,
                    )
                    .map_err(failed)?;
                    let peak = a1.training.as_ref().map_or(0, |t| t.peak_bytes);
                    eprintln!(
                    "error: not even a batch of 1 fits in {}: its training peak is {}\n  (try --dtype f16, --optimizer sgd, or --freeze)",
                    render::binary_bytes(args.fit.unwrap_or(0)),
                    render::binary_bytes(peak)
                );
                    return Err(Failed);
                }
            }
        }
        None => {
            let a = analyzed(&net, args.cost.options())?;
            if args.train {
                analyzer::with_training(a, &train).map_err(failed)?
            } else {
                a
            }
        }
    };
    let a = match &args.device_profile {
        Some(p) => analyzer::with_device(a, &device_profile(p)?),
        None => a,
    };
    if let Some(name) = &args.explain {
        return match explain::explain(&a, name) {
            Ok(text) => emit(&text),
            Err(msg) => {
                eprintln!("error: {msg}");
                Err(Failed)
            }
        };
    }
    let mut cols = args.columns.unwrap_or(if args.train {
        Columns::training()
    } else {
        Columns::default()
    });
    cols.time |= args.columns.is_none() && args.device_profile.is_some();
    let asked_for_time = args.columns.is_some_and(|c| c.time && c != Columns::ALL);
    if asked_for_time && args.device_profile.is_none() {
        eprintln!(
            "error: the `time` column needs --device-profile FILE|NAME (a built-in GPU, or the file `cnncost calibrate` writes)"
        );
        return Err(Failed);
    }
    // JSON lists ops, not rows.
    let rows = match args.format {
        Format::Json => Vec::new(),
        Format::Table | Format::Markdown | Format::Csv => rows::rows(&a, args.depth),
    };
    // The fitting batch heads a table; with data formats it goes to stderr.
    if let (Some(line), Format::Json | Format::Csv) = (&fit_line, args.format) {
        eprint!("{line}");
    }
    let written = emit_with(|out| {
        if let (Some(line), Format::Table | Format::Markdown) = (&fit_line, args.format) {
            out.write_all(line.as_bytes())?;
        }
        match args.format {
            Format::Table => render::write_table(out, &a, &rows, cols),
            Format::Markdown => render::write_markdown(out, &a, &rows, cols),
            Format::Csv => render::write_csv(out, &a, &rows, cols),
            Format::Json => render::write_json(out, &a),
        }
    });
    // The process ends here: freeing a million-op network node by node
    // took a tenth of its run; the system takes the pages back at once.
    std::mem::forget(rows);
    std::mem::forget(a);
    std::mem::forget(net);
    written
}
