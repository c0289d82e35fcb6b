//! `cnncost tune`: a hyper-parameter search (`crate::tune`) from the
//! command line: reads the space and the base settings, runs the trials,
//! prints and writes the results.

use crate::common::{compile, emit, fail, read_source, Failed, NetArgs};
use crate::tune::report::Results;
use crate::tune::scheduler::Search;
use crate::tune::space;
use clap::Args;
use std::path::PathBuf;

pub const LONG_ABOUT: &str = "Search training settings: every trial is a `cnncost train` \
        process with a few epochs (--epochs), --jobs at a time, each in OUT/trial-NNN \
        with its config. A finished trial is skipped and an interrupted one resumed, so \
        running the same command again continues the search. Prints the trials sorted \
        by test accuracy (also OUT/results.csv) and draws test accuracy against each \
        setting (OUT/tune.png). Searchable: lr, wd (weight_decay), momentum, \
        label_smoothing, batch_size, warmup_epochs, min_lr, pct_start, ema.\n\n\
        Examples:\n  \
        cnncost tune cifar_small --data cifar10:DIR --grid 'lr=[0.1,0.01] wd=[1e-4,0]'\n  \
        cnncost tune cifar_small --data cifar10:DIR --random 8 'lr=loguniform(1e-4,1e-1) wd=loguniform(1e-5,1e-2)' --jobs 2";

#[derive(Args)]
pub struct TuneArgs {
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

pub fn run(args: &TuneArgs) -> Result<(), Failed> {
    let trials = match (&args.grid, args.random.as_slice()) {
        (Some(g), _) => space::grid(&space::parse_spaces(g).map_err(fail)?).map_err(fail)?,
        (None, [n, spaces]) => {
            let n: usize = n
                .parse()
                .map_err(|_| fail(format!("--random {n}: expected a number of trials")))?;
            space::random(&space::parse_spaces(spaces).map_err(fail)?, n, args.seed)
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
    let search = Search {
        exe: &exe,
        network: &args.file,
        data: &args.data,
        sets: &sets,
        out: &out,
        epochs: args.epochs,
        trials: &trials,
    };
    let pending = search.prepare(&base).map_err(fail)?;
    eprintln!(
        "{} trials of {} epochs ({} already done) in {}",
        trials.len(),
        args.epochs,
        trials.len() - pending.len(),
        out.display()
    );
    search.run(pending, args.jobs).map_err(fail)?;
    let results = Results::collect(&trials, &out, args.epochs);
    let mut table = results.table();
    std::fs::write(out.join("results.csv"), results.csv())
        .map_err(|e| fail(format!("{}: {e}", out.display())))?;
    if !results.is_empty() {
        results.plot(&out.join("tune.png")).map_err(fail)?;
        table.push_str(&format!(
            "wrote {} and {}\n",
            out.join("results.csv").display(),
            out.join("tune.png").display()
        ));
    }
    emit(&table)?;
    if results.failed > 0 {
        Err(Failed)
    } else {
        Ok(())
    }
}
