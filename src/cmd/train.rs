//! `cnncost train`: trains a network on a dataset (checkpoints, metrics,
//! resume), or runs the sanity checks before a long run (`--check-init`,
//! `--overfit N`).

use crate::common::{
    compile_for_data, config_file, emit, fail, load_data, lower, read_source, DeviceArgs, Failed,
    NetArgs,
};
use clap::{Args, ValueEnum};
use data::Dataset;
use runtime::checkpoint;
use runtime::config::TrainConfig;
use runtime::model::Model;
use runtime::optim::OptimizerKind;
use runtime::train::{self, TrainJob};
use std::path::{Path, PathBuf};

pub const LONG_ABOUT: &str = "\
Train a network on a dataset, on CPU (or CUDA with the `cuda` feature).

The network's input adapts to the data (its `input` line is replaced by the
data's image shape) and a `classes` parameter is set from the data unless
--set gives it. Settings come from --config (YAML, docs/training.md lists
every key) with the flags below over it. Each epoch ends with an evaluation
on the test split, a line in OUT/metrics.jsonl and an atomic checkpoint
OUT/checkpoint.safetensors (weights under their state-dict names, optimizer
state, epoch, seed, normalisation statistics). The same seed gives the same
run, bit for bit; --resume OUT continues an interrupted run exactly.

Data: cifar10:DIR (binary batches), mnist:DIR, fashion-mnist:DIR (IDX, .gz
or not), folder:DIR (DIR/train/<class>/*.jpg|png and DIR/test/<class>/...),
synthetic:N (for smoke tests). Append ?classes=NAME,...&train=FRACTION to keep
some classes (relabelled in the order given) and a fixed part of each class's
training images, e.g. folder:DIR?classes=dog,frog&train=0.1.

Examples:
  cnncost train lenet5 --data mnist:../shared/data/mnist --epochs 2
  cnncost train cifar_small --data folder:../shared/data/cifar10-jpeg --epochs 5 --out runs/cifar
  cnncost train resnet20 --data cifar10:DIR --config train.yaml --lr 0.2
  cnncost train resnet20 --resume runs/resnet20";

#[derive(Args)]
pub struct TrainArgs {
    /// The .net file or zoo name
    file: PathBuf,
    /// The dataset: cifar10:DIR, mnist:DIR, fashion-mnist:DIR, folder:DIR or synthetic:N
    #[arg(long, value_name = "SPEC", required_unless_present = "resume")]
    data: Option<String>,
    /// Training settings in YAML (the flags below override it)
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Epochs to train [config default: 10]
    #[arg(long)]
    epochs: Option<u64>,
    /// Images per training step [config default: 128]
    #[arg(long)]
    batch_size: Option<usize>,
    /// Base learning rate (the peak for the onecycle schedule)
    #[arg(long)]
    lr: Option<f64>,
    /// Optimiser [config default: sgd, momentum 0.9, weight decay 5e-4]
    #[arg(long, value_enum)]
    optimizer: Option<OptimizerArg>,
    /// Seed of initialisation, data order, augmentation and dropout
    #[arg(long)]
    seed: Option<u64>,
    /// Run directory for the checkpoint and metrics [default: runs/NETWORK]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Continue the run in DIR from its checkpoint (same network, data and settings)
    #[arg(long, value_name = "DIR")]
    resume: Option<PathBuf>,
    /// Load weights holding NaN or infinite values instead of refusing them
    #[arg(long)]
    allow_nonfinite: bool,
    /// Start a fresh run in a directory that holds one, replacing its
    /// checkpoint and logs (without it, such a directory is refused); with
    /// --resume, continue with settings or data that differ from the run's
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    device: DeviceArgs,
    /// No progress bar or per-epoch lines
    #[arg(long)]
    quiet: bool,
    /// Transfer learning: start from these weights (checkpoint or state dict)
    #[arg(long, value_name = "FILE")]
    init: Option<String>,
    /// With --init: re-initialise the last linear layer (a new number of classes)
    #[arg(long)]
    replace_head: bool,
    /// Keep these ops' weights fixed, by dotted name prefix (repeatable or comma-separated)
    #[arg(long, value_name = "PREFIX", value_delimiter = ',')]
    freeze: Vec<String>,
    /// Learning-rate factor for everything but the last linear layer (e.g. 0.1)
    #[arg(long, value_name = "X")]
    backbone_lr_scale: Option<f64>,
    /// Sanity check instead of training: the loss at initialisation against ln(classes)
    #[arg(long)]
    check_init: bool,
    /// Sanity check instead of training: overfit N minibatches (no augmentation or decay) to 100%
    #[arg(long, value_name = "N", value_parser = positive_count)]
    overfit: Option<usize>,
    /// Step budget for --overfit
    #[arg(long, default_value_t = 500, value_name = "STEPS", value_parser = clap::value_parser!(u64).range(1..))]
    overfit_steps: u64,
    #[command(flatten)]
    net: NetArgs,
}

#[derive(Clone, Copy, ValueEnum)]
enum OptimizerArg {
    Sgd,
    Adam,
    Adamw,
}

pub fn run(args: &TrainArgs) -> Result<(), Failed> {
    let (name, text) = read_source(&args.file)?;
    let resume = match &args.resume {
        Some(dir) => Some(checkpoint::load_with(dir, args.allow_nonfinite).map_err(fail)?),
        None => None,
    };
    let mut config = match (&resume, &args.config) {
        (Some(c), None) => c.required(&c.meta.config, "config").map_err(fail)?.clone(),
        (_, path) => config_file(path.as_deref())?,
    };
    if let Some(v) = args.epochs {
        config.epochs = v;
    }
    if let Some(v) = args.batch_size {
        config.batch_size = v;
    }
    if let Some(v) = args.lr {
        config.lr = Some(v);
    }
    if let Some(v) = args.optimizer {
        config.optimizer = match v {
            OptimizerArg::Sgd => OptimizerKind::Sgd,
            OptimizerArg::Adam => OptimizerKind::Adam,
            OptimizerArg::Adamw => OptimizerKind::Adamw,
        };
    }
    if let Some(v) = args.seed {
        config.seed = v;
    }
    if args.init.is_some() {
        config.init = args.init.clone();
    }
    if args.replace_head {
        config.replace_head = true;
    }
    if !args.freeze.is_empty() {
        config.freeze = args.freeze.clone();
    }
    if let Some(v) = args.backbone_lr_scale {
        config.backbone_lr_scale = v;
    }
    config.validate().map_err(fail)?;
    if let Some(c) = &resume {
        resume_matches(c, &config, args)?;
    }
    let spec = match (&args.data, &resume) {
        (Some(d), _) => d.clone(),
        (None, Some(c)) => c
            .meta
            .data
            .clone()
            .ok_or_else(|| fail("the checkpoint does not say its data; give --data"))?,
        (None, None) => return Err(fail("give --data SPEC")),
    };
    let dataset = load_data(&spec)?;
    let net = compile_for_data(&name, &text, &args.net, &dataset)?;
    let device = args.device.open()?;
    check_training_fits(&net, &config)?;
    let mut model = lower(&net, &device, config.seed)?;
    let notes = runtime::transfer::prepare(&mut model, &config, resume.is_some()).map_err(fail)?;
    if !args.quiet {
        for n in notes {
            eprintln!("note: {n}");
        }
    }
    if args.check_init || args.overfit.is_some() {
        return sanity_checks(args, &model, &dataset, &config);
    }
    let out = match (&args.out, &args.resume) {
        (Some(o), _) => o.clone(),
        (None, Some(r)) if r.is_dir() => r.clone(),
        (None, Some(r)) => r.parent().map(Path::to_path_buf).unwrap_or_default(),
        (None, None) => PathBuf::from("runs").join(&net.name),
    };
    if !args.quiet {
        eprintln!(
            "training {} on {} ({} train / {} test images, {} classes, input {}x{}x{}) -> {}",
            net.name,
            spec,
            dataset.train.len(),
            dataset.test.len(),
            dataset.classes.len(),
            dataset.shape[0],
            dataset.shape[1],
            dataset.shape[2],
            out.display()
        );
    }
    let job = TrainJob {
        model: &model,
        source: &text,
        dataset: &dataset,
        config,
        out,
        resume,
        force: args.force,
        progress: !args.quiet,
        stop_after: None,
    };
    train::train(&job).map_err(fail)?;
    Ok(())
}

/// A count of at least 1.
fn positive_count(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("`{s}` is not a count of at least 1")),
    }
}

/// A training step whose predicted peak (`cnncost NET --train`) is larger
/// than the memory available is refused before anything is allocated.
fn check_training_fits(
    net: &dsl::Network,
    config: &runtime::config::TrainConfig,
) -> Result<(), Failed> {
    let batch = config.batch_size as u64;
    let a = crate::common::analyzed(
        net,
        analyzer::Options {
            batch,
            dtype: analyzer::Dtype::F32,
        },
    )?;
    let options = analyzer::training::TrainOptions {
        optimizer: config.optimizer_settings().plan(),
        freeze: config.freeze.clone(),
        host: crate::common::host_scratch(),
        ..Default::default()
    };
    let Ok(a) = analyzer::with_training(a, &options) else {
        return Err(fail(format!(
            "{}: a training step at batch {batch} is too large to count; lower --batch-size",
            net.name
        )));
    };
    let peak = a.training.as_ref().map_or(0, |t| t.peak_bytes);
    data::memory::check_fits(
        peak,
        &format!(
            "training {} at batch {batch} (its peak: `cnncost {} --train --batch {batch}`)",
            net.name, net.name
        ),
    )
    .map_err(|e| {
        fail(format!(
            "{e}; lower --batch-size, or see `cnncost {} --train --fit SIZE`",
            net.name
        ))
    })
}

/// A resumed run continues with the data and the settings it was trained
/// with: any that differ (but `epochs`, which may be raised to train longer)
/// are named, and refused unless `--force`.
fn resume_matches(
    c: &runtime::checkpoint::Checkpoint,
    config: &runtime::config::TrainConfig,
    args: &TrainArgs,
) -> Result<(), Failed> {
    let mut differ = Vec::new();
    if let (Some(theirs), Some(ours)) = (&c.meta.data, &args.data) {
        if theirs != ours {
            differ.push(format!("data {theirs} -> {ours}"));
        }
    }
    if let Some(theirs) = &c.meta.config {
        let as_map = |cfg: &runtime::config::TrainConfig| match serde_json::to_value(cfg) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        let (before, now) = (as_map(theirs), as_map(config));
        for (key, was) in &before {
            let is = now.get(key).unwrap_or(&serde_json::Value::Null);
            if key != "epochs" && was != is {
                differ.push(format!("{key} {was} -> {is}"));
            }
        }
    }
    if differ.is_empty() || args.force {
        return Ok(());
    }
    Err(fail(format!(
        "{}: --resume continues a run with its own data and settings, and these differ: {}; drop them to continue the run as it was, or pass --force to continue with the new ones",
        c.path.display(),
        differ.join(", ")
    )))
}

/// `train --check-init` and `train --overfit N`: the lecture's checks
/// before a long run. Exit status 1 when a check fails.
fn sanity_checks(
    args: &TrainArgs,
    model: &Model,
    data: &Dataset,
    config: &TrainConfig,
) -> Result<(), Failed> {
    use runtime::sanity;
    let mut ok = true;
    let mut out = String::new();
    if args.check_init {
        let batches = sanity::fixed_batches(data, config.batch_size, 4, config.seed);
        let c = sanity::check_init(model, &batches, data.classes.len()).map_err(fail)?;
        out.push_str(&format!(
            "loss at initialisation: {:.4} (ln({}) = {:.4}, over {} images)\n  {}\n",
            c.loss,
            data.classes.len(),
            c.expected,
            batches.iter().map(|b| b.len).sum::<usize>(),
            c.verdict
        ));
        ok &= c.ok;
    }
    if let Some(n) = args.overfit {
        let batches = sanity::fixed_batches(data, config.batch_size, n, config.seed);
        let c = sanity::overfit(
            model,
            &batches,
            config.optimizer_settings(),
            config.lr(),
            args.overfit_steps,
        )
        .map_err(fail)?;
        out.push_str(&format!(
            "overfitting {n} minibatch(es) of {}: loss {:.4} -> {:.4}, training accuracy {:.1}%\n  {}\n",
            config.batch_size, c.first_loss, c.last_loss, c.last_accuracy, c.verdict
        ));
        ok &= c.ok;
    }
    emit(&out)?;
    if ok {
        Ok(())
    } else {
        Err(Failed)
    }
}
