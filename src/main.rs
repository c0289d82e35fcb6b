//! The `cnncost` command line: analyze a network (the default), check its
//! `expect` lines, or draw its graph.

use analyzer::render::{self, Columns};
use analyzer::{analyze, expect, explain, rows, Analysis, Dtype, Options};
use clap::{Args, Parser, Subcommand, ValueEnum};
use dsl::value::{parse_literal, Value};
use dsl::{Network, Overrides};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const ABOUT: &str = "Static cost analysis of convolutional networks written in the .net language";

const LONG_ABOUT: &str = "\
Static cost analysis of convolutional networks written in the .net language.

`cnncost FILE.net` checks every shape and prints one row per statement: the
output shape, the activation memory, the parameters and the multiply-adds,
with totals. Nothing is allocated and nothing runs: a ResNet-50 takes about a
millisecond.

Conventions (docs/costs.md): params are trainable parameters (BN running
statistics are `buffers`, reported apart); MACs are the multiply-accumulates
of conv and linear layers, bias excluded (torchvision's `_ops`, the ResNet
paper's \"FLOPs\"); FLOPs add 2 per MAC and the documented per-element costs;
memory is the output activation, KB = 1024 bytes.

Examples:
  cnncost zoo/alexnet.net
  cnncost zoo/resnet50.net --depth 2 --columns flops,rf
  cnncost zoo/vgg16.net --batch 32 --dtype f16 --format json
  cnncost zoo/resnet50.net --explain layer1.0.conv2
  cnncost check zoo/
  cnncost graph zoo/resnet50.net | dot -Tsvg > resnet50.svg";

#[derive(Parser)]
#[command(
    name = "cnncost",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    analyze: AnalyzeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Evaluate the `expect` lines of networks (exit status 1 if any fails)
    #[command(
        long_about = "Evaluate the `expect` lines of .net files: one line per \
        expectation with the expected and actual value. Directories are searched \
        for *.net files. The exit status is 1 if any expectation fails or a file \
        does not compile, so this is the command to run in CI."
    )]
    Check {
        /// .net files or directories holding them
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Write the network's graph in Graphviz DOT (render with `dot -Tsvg`)
    Graph {
        /// The .net file
        file: PathBuf,
        #[command(flatten)]
        net: NetArgs,
    },
}

/// Options that change the network itself.
#[derive(Args, Clone, Default)]
struct NetArgs {
    /// Override a network parameter: `--set classes=10` (repeatable)
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_set)]
    set: Vec<(String, Value)>,
    /// Override the input shape, e.g. `--input 3x32x32`
    #[arg(long, value_name = "CxHxW", value_parser = parse_input)]
    input: Option<[u64; 3]>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
    Csv,
    Markdown,
}

#[derive(Args)]
struct AnalyzeArgs {
    /// The .net file to analyze
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

fn parse_set(s: &str) -> Result<(String, Value), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=VALUE, found `{s}`"))?;
    let v = parse_literal(value)
        .ok_or_else(|| format!("`{value}` is not an integer, a number, true or false"))?;
    Ok((name.trim().to_string(), v))
}

fn parse_input(s: &str) -> Result<[u64; 3], String> {
    let parts: Vec<&str> = s.split('x').collect();
    let dims: Option<Vec<u64>> = parts.iter().map(|p| p.trim().parse::<u64>().ok()).collect();
    match dims.as_deref() {
        Some(&[c, h, w]) if c > 0 && h > 0 && w > 0 => Ok([c, h, w]),
        _ => Err(format!(
            "expected CxHxW with positive sizes, e.g. 3x224x224, found `{s}`"
        )),
    }
}

/// A failure already explained to the user.
struct Failed;

/// Writes to stdout. A closed pipe (`cnncost big.net | head`) ends the
/// output quietly instead of panicking as `print!` would.
fn emit(text: &str) -> Result<(), Failed> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => {
            eprintln!("error: cannot write the output: {e}");
            Err(Failed)
        }
    }
}

fn load(path: &Path, net: &NetArgs) -> Result<Network, Failed> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        eprintln!("error: cannot read `{}`: {e}", path.display());
        Failed
    })?;
    let overrides = Overrides {
        set: net.set.clone(),
        input: net.input,
    };
    dsl::compile(&path.display().to_string(), &text, &overrides).map_err(|e| {
        eprintln!("{e}");
        Failed
    })
}

fn analyzed<'n>(net: &'n Network, options: Options) -> Result<Analysis<'n>, Failed> {
    analyze(net, options).map_err(|d| {
        eprint!("{}", d.render(&net.source));
        Failed
    })
}

fn run_analyze(args: &AnalyzeArgs) -> Result<(), Failed> {
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
        Format::Json => {
            serde_json::to_string_pretty(&render::json(&a)).unwrap_or_default() + "\n"
        }
    };
    emit(&text)
}

/// `.net` files under the given paths, directories searched recursively,
/// in sorted order.
fn net_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Failed> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut stack = vec![p.clone()];
            let mut found = Vec::new();
            while let Some(dir) = stack.pop() {
                let entries = std::fs::read_dir(&dir).map_err(|e| {
                    eprintln!("error: cannot read directory `{}`: {e}", dir.display());
                    Failed
                })?;
                for e in entries.flatten() {
                    let path = e.path();
                    if path.is_dir() {
                        stack.push(path);
                    } else if path.extension().is_some_and(|x| x == "net") {
                        found.push(path);
                    }
                }
            }
            if found.is_empty() {
                eprintln!("warning: no .net files in `{}`", p.display());
            }
            found.sort();
            out.extend(found);
        } else if p.exists() {
            out.push(p.clone());
        } else {
            eprintln!("error: `{}` does not exist", p.display());
            return Err(Failed);
        }
    }
    Ok(out)
}

fn run_check(paths: &[PathBuf], net_args: &NetArgs) -> Result<(), Failed> {
    let files = net_files(paths)?;
    let (mut passed, mut failed) = (0usize, 0usize);
    for file in &files {
        let Ok(net) = load(file, net_args) else {
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
                .map(|t| format!(", allowed ± {}", render::thousands(t.round() as u64)))
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Some(Command::Check { paths, net }) => run_check(paths, net),
        Some(Command::Graph { file, net }) => {
            load(file, net).and_then(|n| emit(&render::dot(&n)))
        }
        None => run_analyze(&cli.analyze),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failed) => ExitCode::FAILURE,
    }
}
