//! `cnncost FILE.net` (no command): the cost table, or JSON, CSV,
//! Markdown, or the formulas of one op (`--explain`).

use crate::common::{analyzed, emit, load, Failed, NetArgs};
use analyzer::render::{self, Columns};
use analyzer::{explain, rows, Dtype, Options};
use clap::{Args, ValueEnum};
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
    #[arg(long, value_name = "NAME")]
    explain: Option<String>,
}

pub fn run(args: &AnalyzeArgs) -> Result<(), Failed> {
    let Some(file) = &args.file else {
        eprintln!(
            "error: no network given\n\nUsage: cnncost FILE.net [OPTIONS]\n       cnncost check PATH...\n\nFor more information, try '--help'."
        );
        return Err(Failed);
    };
    let net = load(file, &args.net)?;
    let a = analyzed(
        &net,
        Options {
            batch: args.batch,
            dtype: args.dtype,
        },
    )?;
    if let Some(name) = &args.explain {
        return match explain::explain(&a, name) {
            Ok(text) => emit(&text),
            Err(msg) => {
                eprintln!("error: {msg}");
                Err(Failed)
            }
        };
    }
    let cols = args.columns.unwrap_or_default();
    let rows = rows::rows(&a, args.depth);
    let text = match args.format {
        Format::Table => render::table(&a, &rows, cols),
        Format::Markdown => render::markdown(&a, &rows, cols),
        Format::Csv => render::csv(&a, &rows, cols),
        Format::Json => serde_json::to_string_pretty(&render::json(&a)).unwrap_or_default() + "\n",
    };
    emit(&text)
}
