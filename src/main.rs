//! The `cnncost` command line: analyze a network (the default), check its
//! `expect` lines, or draw its graph.

use analyzer::render::{self, Columns};
use analyzer::{analyze, expect, explain, rows, Analysis, Dtype, Options};
use clap::{Args, Parser, Subcommand, ValueEnum};
use dsl::value::{parse_literal, Value};
use dsl::{Network, Overrides};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod compare;
mod plot;
mod run;
mod tune;
mod zoo;

const ABOUT: &str = "Static cost analysis of convolutional networks written in the .net language, and their training";

const LONG_ABOUT: &str = "\
Static cost analysis of convolutional networks written in the .net language,
and their training.

`cnncost FILE.net` checks every shape and prints one row per statement: the
output shape, the activation memory, the parameters and the multiply-adds,
with totals. Nothing is allocated and nothing runs: a ResNet-50 takes a
fifth of a millisecond.

Conventions (docs/costs.md): params are trainable parameters (BN running
statistics are `buffers`, reported apart); MACs are the multiply-accumulates
of conv and linear layers, bias excluded (torchvision's `_ops`, the ResNet
paper's \"FLOPs\"); FLOPs add 2 per MAC and the documented per-element costs;
memory is the output activation, KB = 1024 bytes.

The same file trains and runs on the CPU: `train`, `eval`, `predict`, and
the training practice around them (`augment`, `lr-find`, `plot`, `tune`,
`ensemble`); docs/training.md.

Examples:
  cnncost zoo/alexnet.net
  cnncost zoo/resnet50.net --depth 2 --columns flops,rf
  cnncost zoo/vgg16.net --batch 32 --dtype f16 --format json
  cnncost zoo/resnet50.net --explain layer1.0.conv2
  cnncost check zoo/
  cnncost graph zoo/resnet50.net | dot -Tsvg > resnet50.svg
  cnncost zoo                      (the built-in networks; a zoo name works as a FILE)
  cnncost weights resnet18         (every state-dict name, shape and kind)
  cnncost compare --zoo --plot zoo.svg
  cnncost train lenet5 --data mnist:../shared/data/mnist --epochs 2
  cnncost eval lenet5 --weights runs/lenet5 --data mnist:../shared/data/mnist
  cnncost predict lenet5 --weights runs/lenet5 digit.png";

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
        /// .net files, directories holding them, or zoo names
        #[arg(required_unless_present = "zoo")]
        paths: Vec<PathBuf>,
        /// Check every network of the built-in zoo
        #[arg(long)]
        zoo: bool,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Compare networks side by side, and draw the accuracy/cost chart
    #[command(long_about = "One row per network: params, MACs, FLOPs, stored \
        activations, depth and published top-1 accuracy (`meta top1`). With \
        --plot, draw the lecture's comparison chart: MACs on x (log scale), \
        top-1 on y, bubble area proportional to parameters, each network \
        labelled. Networks without a top-1 figure are listed, not drawn.\n\n\
        Example: cnncost compare --zoo --plot zoo.svg")]
    Compare {
        /// .net files, directories holding them, or zoo names
        #[arg(required_unless_present = "zoo")]
        paths: Vec<PathBuf>,
        /// Compare every network of the built-in zoo
        #[arg(long)]
        zoo: bool,
        /// Draw the chart to FILE.svg or FILE.png
        #[arg(long, value_name = "FILE")]
        plot: Option<PathBuf>,
    },
    /// List the built-in zoo: name, params, MACs, depth and source
    #[command(long_about = "List the networks built into cnncost (the zoo/ folder \
        of the project). A zoo name works wherever a path does: `cnncost resnet50`, \
        `cnncost weights vgg16`.")]
    Zoo {
        /// Print the table as Markdown (docs/zoo.md is this output)
        #[arg(long)]
        markdown: bool,
    },
    /// List every parameter and buffer with its full name, shape and kind
    #[command(long_about = "List every tensor of the network's state dict: its \
        full dotted name (as PyTorch's state_dict names it), shape and kind \
        (param, buffer, or counter for BN's num_batches_tracked). Use it to map \
        weights from other sources.")]
    Weights {
        /// The .net file or zoo name
        file: PathBuf,
        /// Leave out `head train` branches (the inference network)
        #[arg(long)]
        inference: bool,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Train a network on a dataset (checkpoints, metrics, resume)
    #[command(long_about = run::TRAIN_ABOUT)]
    Train(run::TrainArgs),
    /// Evaluate weights on a dataset's test split: top-1, top-5, per class, confusion
    #[command(long_about = "Evaluate a checkpoint (or a state dict from elsewhere, \
        with --mean and --std) on the test split of a dataset: top-1 and top-5 \
        accuracy, mean loss, per-class accuracy and the confusion matrix. \
        --format json prints {\"top1\", \"top5\", \"loss\", \"images\", \"classes\", \
        \"per_class\", \"confusion\"}.\n\n\
        Example: cnncost eval lenet5 --weights runs/lenet5 --data mnist:../shared/data/mnist")]
    Eval(run::EvalArgs),
    /// Classify images with trained weights: the top classes with probabilities
    #[command(long_about = "Classify image files (JPEG or PNG) with a checkpoint: \
        each image is resized (short side, then a centre crop) to the network's \
        input, normalised with the checkpoint's statistics (or --mean/--std), and \
        the top classes are printed with their softmax probabilities.\n\n\
        Example: cnncost predict cifar_small --weights runs/cifar_small cat.png")]
    Predict(run::PredictArgs),
    /// Draw a grid of augmented training images (what a config's augmentation does)
    #[command(long_about = run::AUGMENT_ABOUT)]
    Augment(run::AugmentArgs),
    /// Average several trained models' probabilities: each one's accuracy and the ensemble's
    #[command(
        long_about = "Evaluate an ensemble: every --weights file (same network) \
        on the test split, then the average of their predicted probabilities.\n\n\
        Example: cnncost ensemble cifar_small --weights runs/a runs/b runs/c --data cifar10:DIR"
    )]
    Ensemble(run::EnsembleArgs),
    /// Hyper-parameter search: a short training per trial, in parallel processes, resumable
    #[command(
        long_about = "Search training settings: every trial is a `cnncost train` \
        process with a few epochs (--epochs), --jobs at a time, each in OUT/trial-NNN \
        with its config. A finished trial is skipped and an interrupted one resumed, so \
        running the same command again continues the search. Prints the trials sorted \
        by test accuracy (also OUT/results.csv) and draws test accuracy against each \
        setting (OUT/tune.png). Searchable: lr, wd (weight_decay), momentum, \
        label_smoothing, batch_size, warmup_epochs, min_lr, pct_start, ema.\n\n\
        Examples:\n  \
        cnncost tune cifar_small --data cifar10:DIR --grid 'lr=[0.1,0.01] wd=[1e-4,0]'\n  \
        cnncost tune cifar_small --data cifar10:DIR --random 8 'lr=loguniform(1e-4,1e-1) wd=loguniform(1e-5,1e-2)' --jobs 2"
    )]
    Tune(TuneArgs),
    /// Learning-rate range test: loss against a growing rate, plotted, with a suggestion
    #[command(name = "lr-find", long_about = run::LR_FIND_ABOUT)]
    LrFind(run::LrFindArgs),
    /// Draw a run's training curves and say what they suggest
    #[command(
        long_about = "Draw the curves of a training run from RUN_DIR/metrics.jsonl \
        and RUN_DIR/losses.csv: the training loss of every step (points) with its \
        moving average, and train and test accuracy per epoch. Writes \
        RUN_DIR/curves.png and RUN_DIR/curves.svg (or --out FILE.png|svg) and \
        prints the lecture's reading: a flat start (bad initialisation), a \
        train/test gap (overfitting: regularise or add data), no gap \
        (underfitting: train longer or a bigger model), accuracy still rising \
        (train longer).\n\nExample: cnncost plot runs/cifar_small"
    )]
    Plot {
        /// A run directory written by `cnncost train`
        run: PathBuf,
        /// Write only this file (.png or .svg)
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Write the network's graph in Graphviz DOT (render with `dot -Tsvg`)
    Graph {
        /// The .net file or zoo name
        file: PathBuf,
        #[command(flatten)]
        net: NetArgs,
    },
}

#[derive(Args)]
struct TuneArgs {
    /// The .net file or zoo name
    file: PathBuf,
    #[arg(long, value_name = "SPEC")]
    data: String,
    /// Base training settings (YAML); the searched keys go over them
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Every combination: 'lr=[0.1,0.01] wd=[1e-4,0]'
    #[arg(
        long,
        value_name = "SPACE",
        conflicts_with = "random",
        required_unless_present = "random"
    )]
    grid: Option<String>,
    /// N random trials: --random 8 'lr=loguniform(1e-4,1e-1) momentum=uniform(0.8,0.99)'
    #[arg(long, num_args = 2, value_names = ["N", "SPACE"])]
    random: Vec<String>,
    /// Epochs per trial
    #[arg(long, default_value_t = 2)]
    epochs: u64,
    /// Trials run at once
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Seed of the random search
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Search directory [default: runs/tune-NETWORK]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    #[command(flatten)]
    net: NetArgs,
}

fn run_tune(args: &TuneArgs) -> Result<(), Failed> {
    use run::fail;
    let trials = match (&args.grid, args.random.as_slice()) {
        (Some(g), _) => tune::grid(&tune::parse_spaces(g).map_err(fail)?).map_err(fail)?,
        (None, [n, space]) => {
            let n: usize = n
                .parse()
                .map_err(|_| fail(format!("--random {n}: expected a number of trials")))?;
            tune::random(&tune::parse_spaces(space).map_err(fail)?, n, args.seed)
        }
        _ => return Err(fail("give --grid SPACE or --random N SPACE")),
    };
    let base: serde_yaml::Mapping = match &args.config {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| fail(format!("{}: cannot read: {e}", p.display())))?;
            runtime::config::TrainConfig::from_yaml(&p.display().to_string(), &text)
                .map_err(fail)?;
            serde_yaml::from_str(&text).map_err(|e| fail(format!("{}: {e}", p.display())))?
        }
        None => serde_yaml::Mapping::new(),
    };
    let (name, text) = read_source(&args.file)?;
    let net_name = compile(&name, &text, &args.net)?.name;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(format!("tune-{net_name}")));
    let exe =
        std::env::current_exe().map_err(|e| fail(format!("cannot find this program: {e}")))?;
    let sets: Vec<String> = args
        .net
        .set
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mut pending: Vec<usize> = Vec::new();
    for (i, t) in trials.iter().enumerate() {
        let dir = tune::trial_dir(&out, i);
        if tune::finished(&dir, args.epochs).is_none() {
            std::fs::create_dir_all(&dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
            std::fs::write(
                dir.join("config.yaml"),
                tune::trial_yaml(&base, t, args.epochs),
            )
            .map_err(|e| fail(format!("{}: {e}", dir.display())))?;
            pending.push(i);
        }
    }
    eprintln!(
        "{} trials of {} epochs ({} already done) in {}",
        trials.len(),
        args.epochs,
        trials.len() - pending.len(),
        out.display()
    );
    let mut running: Vec<(usize, std::process::Child)> = Vec::new();
    let mut queue = pending.into_iter();
    loop {
        while running.len() < args.jobs.max(1) {
            let Some(i) = queue.next() else { break };
            let dir = tune::trial_dir(&out, i);
            let mut cmd = std::process::Command::new(&exe);
            cmd.arg("train")
                .arg(&args.file)
                .arg("--quiet")
                .arg("--out")
                .arg(&dir);
            if dir.join(runtime::train::CHECKPOINT).exists() {
                cmd.arg("--resume").arg(&dir);
            } else {
                cmd.arg("--data")
                    .arg(&args.data)
                    .arg("--config")
                    .arg(dir.join("config.yaml"));
            }
            for s in &sets {
                cmd.arg("--set").arg(s);
            }
            let log = std::fs::File::create(dir.join("stderr.txt"))
                .map_err(|e| fail(format!("{}: {e}", dir.display())))?;
            cmd.stderr(log).stdout(std::process::Stdio::null());
            let child = cmd
                .spawn()
                .map_err(|e| fail(format!("cannot start a trial: {e}")))?;
            let settings: Vec<String> = trials[i].iter().map(|(k, v)| format!("{k}={v}")).collect();
            eprintln!("trial {} started: {}", i + 1, settings.join(" "));
            running.push((i, child));
        }
        if running.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        let mut still = Vec::new();
        for (i, mut c) in running {
            match c.try_wait() {
                Ok(Some(status)) => {
                    let acc = tune::finished(&tune::trial_dir(&out, i), args.epochs);
                    match (status.success(), acc) {
                        (true, Some(a)) => eprintln!("trial {} done: {a:.2}%", i + 1),
                        _ => eprintln!(
                            "trial {} failed: see {}",
                            i + 1,
                            tune::trial_dir(&out, i).join("stderr.txt").display()
                        ),
                    }
                }
                Ok(None) => still.push((i, c)),
                Err(e) => return Err(fail(format!("trial {}: {e}", i + 1))),
            }
        }
        running = still;
    }
    let mut rows: Vec<(tune::Trial, f64, usize)> = trials
        .iter()
        .enumerate()
        .filter_map(|(i, t)| {
            tune::finished(&tune::trial_dir(&out, i), args.epochs).map(|a| (t.clone(), a, i))
        })
        .collect();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1));
    let keys: Vec<&str> = trials
        .first()
        .map(|t| t.iter().map(|(k, _)| *k).collect())
        .unwrap_or_default();
    let mut table = format!(
        "{:<5} {:<10} {}  test acc\n",
        "rank",
        "trial",
        keys.iter().map(|k| format!("{k:>14}")).collect::<String>()
    );
    let mut csv = format!("trial,{},test_acc\n", keys.join(","));
    for (rank, (t, a, i)) in rows.iter().enumerate() {
        let vals: String = t.iter().map(|(_, v)| format!("{v:>14.4e}")).collect();
        table.push_str(&format!(
            "{:<5} {:<10} {vals}  {a:.2}%\n",
            rank + 1,
            format!("trial-{:03}", i + 1)
        ));
        csv.push_str(&format!(
            "{},{},{a}\n",
            i + 1,
            t.iter()
                .map(|(_, v)| v.to_string())
                .collect::<Vec<_>>()
                .join(",")
        ));
    }
    let failed = trials.len() - rows.len();
    if failed > 0 {
        table.push_str(&format!(
            "{failed} trial(s) failed (their stderr.txt says why)\n"
        ));
    }
    std::fs::write(out.join("results.csv"), csv)
        .map_err(|e| fail(format!("{}: {e}", out.display())))?;
    if !rows.is_empty() {
        let points: Vec<(tune::Trial, f64)> =
            rows.iter().map(|(t, a, _)| (t.clone(), *a)).collect();
        tune::plot(&out.join("tune.png"), &points).map_err(fail)?;
        table.push_str(&format!(
            "wrote {} and {}\n",
            out.join("results.csv").display(),
            out.join("tune.png").display()
        ));
    }
    emit(&table)?;
    if failed > 0 {
        Err(Failed)
    } else {
        Ok(())
    }
}

/// Options that change the network itself.
#[derive(Args, Clone, Default)]
pub struct NetArgs {
    /// Override a network parameter: `--set classes=10` (repeatable)
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_set)]
    pub set: Vec<(String, Value)>,
    /// Override the input shape, e.g. `--input 3x32x32`
    #[arg(long, value_name = "CxHxW", value_parser = parse_input)]
    pub input: Option<[u64; 3]>,
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

/// A file's text, or a zoo network's when no such file exists.
fn read_source(path: &Path) -> Result<(String, String), Failed> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok((path.display().to_string(), text)),
        Err(e) => match zoo::find(&path.to_string_lossy()) {
            Some((name, text)) => Ok((format!("zoo/{name}.net"), text.to_string())),
            None => {
                eprintln!(
                    "error: cannot read `{}`: {e}\n  (nor is it a zoo network: `cnncost zoo` lists them)",
                    path.display()
                );
                Err(Failed)
            }
        },
    }
}

fn compile(name: &str, text: &str, net: &NetArgs) -> Result<Network, Failed> {
    let overrides = Overrides {
        set: net.set.clone(),
        input: net.input,
        ..Default::default()
    };
    dsl::compile(name, text, &overrides).map_err(|e| {
        eprintln!("{e}");
        Failed
    })
}

fn load(path: &Path, net: &NetArgs) -> Result<Network, Failed> {
    let (name, text) = read_source(path)?;
    compile(&name, &text, net)
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
        Format::Json => serde_json::to_string_pretty(&render::json(&a)).unwrap_or_default() + "\n",
    };
    emit(&text)
}

/// `.net` files under the given paths, directories searched recursively,
/// in sorted order; then, with `all_zoo`, every network of the zoo.
fn net_files(paths: &[PathBuf], all_zoo: bool) -> Result<Vec<PathBuf>, Failed> {
    let mut out = Vec::new();
    if all_zoo {
        out.extend(
            zoo::ZOO
                .iter()
                .map(|(n, _)| PathBuf::from(format!("zoo/{n}.net"))),
        );
    }
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
        } else if p.exists() || zoo::find(&p.to_string_lossy()).is_some() {
            out.push(p.clone());
        } else {
            eprintln!(
                "error: `{}` does not exist, nor is it a zoo network",
                p.display()
            );
            return Err(Failed);
        }
    }
    Ok(out)
}

fn run_check(paths: &[PathBuf], all_zoo: bool, net_args: &NetArgs) -> Result<(), Failed> {
    let files = net_files(paths, all_zoo)?;
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

/// The figures of one network for `compare` and `zoo`.
fn entry(name: &str, net: &Network) -> Result<compare::Entry, Failed> {
    let a = analyzed(net, Options::default())?;
    Ok(compare::Entry {
        name: name.to_string(),
        params: a.totals.params,
        macs: a.totals.macs,
        flops: a.totals.flops,
        activation_bytes: a.totals.activation_bytes,
        depth: a.totals.depth,
        top1: net.meta_number("top1"),
        dataset: net.meta_text("dataset").map(str::to_string),
    })
}

fn run_zoo(markdown: bool) -> Result<(), Failed> {
    let mut table = vec![["name", "params", "MACs", "depth", "top-1 %", "source"]
        .map(String::from)
        .to_vec()];
    for (name, text) in zoo::ZOO {
        let net = compile(&format!("zoo/{name}.net"), text, &NetArgs::default())?;
        let e = entry(name, &net)?;
        let top1 = match (e.top1, &e.dataset) {
            (Some(t), Some(d)) if d != "imagenet" => format!("{t} ({d})"),
            (Some(t), _) => t.to_string(),
            _ => "-".into(),
        };
        table.push(vec![
            name.to_string(),
            render::thousands(e.params),
            render::thousands(e.macs),
            e.depth.to_string(),
            top1,
            net.meta_text("source")
                .map(str::to_string)
                .unwrap_or_else(|| zoo::source_line(text)),
        ]);
    }
    if markdown {
        emit(&format!(
            "# The model zoo\n\n\
             Generated by `cnncost zoo --markdown`; a test fails when this file is out \
             of date. MACs follow docs/costs.md (torchvision's `_ops`); top-1 is the \
             published accuracy in each file's `meta` lines (ImageNet unless noted). \
             Every file's `expect` lines are checked in CI by `cnncost check zoo/`.\n\n{}",
            render::markdown_grid(&table, &[0, 5])
        ))
    } else {
        emit(&render::aligned_grid(&table, &[0, 4, 5]))
    }
}

fn run_compare(paths: &[PathBuf], all_zoo: bool, plot: Option<&Path>) -> Result<(), Failed> {
    let files = net_files(paths, all_zoo)?;
    let mut entries = Vec::new();
    for f in &files {
        let net = load(f, &NetArgs::default())?;
        entries.push(entry(&net.name.clone(), &net)?);
    }
    emit(&render::aligned_grid(&compare::table(&entries), &[0]))?;
    if let Some(path) = plot {
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

fn run_weights(file: &Path, inference: bool, net_args: &NetArgs) -> Result<(), Failed> {
    let net = load(file, net_args)?;
    let mut out = String::new();
    let (mut params, mut buffers) = (0u64, 0u64);
    for n in net.graph.node_indices() {
        let node = &net.graph[n];
        if inference && matches!(node.role, dsl::ir::Role::Head { train: true }) {
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

fn run_plot(dir: &Path, out: Option<&Path>) -> Result<(), Failed> {
    use run::fail;
    let (epochs, mut steps) = plot::read_run(dir).map_err(fail)?;
    let mut title = format!("{} ({} epochs)", dir.display(), epochs.len());
    if steps.is_empty() {
        // A run without losses.csv: its per-epoch training loss stands in.
        steps = epochs
            .iter()
            .map(|m| plot::StepLoss {
                step: m.epoch,
                loss: m.train_loss,
            })
            .collect();
        title.push_str(": no per-step losses, the loss panel shows epochs");
    }
    let files = match out {
        Some(o) => vec![o.to_path_buf()],
        None => vec![dir.join("curves.png"), dir.join("curves.svg")],
    };
    for f in &files {
        plot::draw_curves(f, &title, &epochs, &steps).map_err(fail)?;
    }
    let mut text = format!(
        "wrote {}\n",
        files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    for note in plot::read_curves(&epochs, &steps) {
        text.push_str(&format!("- {note}\n"));
    }
    emit(&text)
}

fn main() -> ExitCode {
    runtime::kernels::configure_process();
    let cli = Cli::parse();
    let result = match &cli.command {
        Some(Command::Check { paths, zoo, net }) => run_check(paths, *zoo, net),
        Some(Command::Zoo { markdown }) => run_zoo(*markdown),
        Some(Command::Compare { paths, zoo, plot }) => run_compare(paths, *zoo, plot.as_deref()),
        Some(Command::Weights {
            file,
            inference,
            net,
        }) => run_weights(file, *inference, net),
        Some(Command::Train(args)) => run::run_train(args),
        Some(Command::Eval(args)) => run::run_eval(args),
        Some(Command::Predict(args)) => run::run_predict(args),
        Some(Command::Augment(args)) => run::run_augment(args),
        Some(Command::LrFind(args)) => run::run_lr_find(args),
        Some(Command::Tune(args)) => run_tune(args),
        Some(Command::Ensemble(args)) => run::run_ensemble(args),
        Some(Command::Plot { run, out }) => run_plot(run, out.as_deref()),
        Some(Command::Graph { file, net }) => load(file, net).and_then(|n| emit(&render::dot(&n))),
        None => run_analyze(&cli.analyze),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failed) => ExitCode::FAILURE,
    }
}
