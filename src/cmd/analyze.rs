//! `cnncost FILE.net` (no command): the cost table, or JSON, CSV,
//! Markdown, or the formulas of one op (`--explain`); with `--train`, a
//! training step's costs too, and with `--fit`, the largest batch that fits.

use crate::common::{analyzed, emit, load, Failed, NetArgs};
use analyzer::render::{self, Columns};
use analyzer::training::{self, TrainOptions};
use analyzer::{explain, rows, Analysis, Dtype, Options};
use clap::{Args, ValueEnum};
use dsl::plan::{Optimizer, SavedPolicy};
use std::path::PathBuf;

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
    Csv,
    Markdown,
}

#[derive(Args)]
pub struct AnalyzeArgs {
    /// The .net file to analyze, or a zoo name (`cnncost zoo` lists them)
    file: Option<PathBuf>,
    #[command(flatten)]
    net: NetArgs,
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Batch size: scales MACs, FLOPs and memory (not params)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    batch: u64,
    /// Element type of activations: f32, f16 or bf16
    #[arg(long, default_value = "f32")]
    dtype: Dtype,
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
    };
    let failed = |d: dsl::Diagnostic| {
        eprint!("{}", d.render(&net.source));
        Failed
    };
    let mut fit_line = None;
    let a: Analysis = match args.fit {
        Some(budget) => match training::fit(&net, args.dtype, &train, budget).map_err(failed)? {
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
                            dtype: args.dtype,
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
        },
        None => {
            let a = analyzed(
                &net,
                Options {
                    batch: args.batch,
                    dtype: args.dtype,
                },
            )?;
            if args.train {
                analyzer::with_training(a, &train).map_err(failed)?
            } else {
                a
            }
        }
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
    let cols = args.columns.unwrap_or(if args.train {
        Columns::training()
    } else {
        Columns::default()
    });
    let rows = rows::rows(&a, args.depth);
    let text = match args.format {
        Format::Table => render::table(&a, &rows, cols),
        Format::Markdown => render::markdown(&a, &rows, cols),
        Format::Csv => render::csv(&a, &rows, cols),
        Format::Json => serde_json::to_string_pretty(&render::json(&a)).unwrap_or_default() + "\n",
    };
    match (fit_line, args.format) {
        (Some(line), Format::Table | Format::Markdown) => emit(&format!("{line}{text}")),
        (Some(line), Format::Json | Format::Csv) => {
            eprint!("{line}");
            emit(&text)
        }
        (None, _) => emit(&text),
    }
}
