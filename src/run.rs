//! The commands that run a network: `train`, `eval` and `predict`.

use crate::{read_source, Failed, NetArgs};
use candle_core::{DType, Device};
use clap::{Args, ValueEnum};
use data::{Dataset, Normalization};
use dsl::value::Value;
use dsl::{Network, Overrides};
use runtime::checkpoint::{self, Checkpoint};
use runtime::config::TrainConfig;
use runtime::model::Model;
use runtime::optim::OptimizerKind;
use runtime::train::{self, TrainJob};
use std::path::{Path, PathBuf};

pub const TRAIN_ABOUT: &str = "\
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
    pub file: PathBuf,
    /// The dataset: cifar10:DIR, mnist:DIR, fashion-mnist:DIR, folder:DIR or synthetic:N
    #[arg(long, value_name = "SPEC", required_unless_present = "resume")]
    pub data: Option<String>,
    /// Training settings in YAML (the flags below override it)
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Epochs to train [config default: 10]
    #[arg(long)]
    pub epochs: Option<u64>,
    /// Images per training step [config default: 128]
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Base learning rate (the peak for the onecycle schedule)
    #[arg(long)]
    pub lr: Option<f64>,
    /// Optimiser [config default: sgd, momentum 0.9, weight decay 5e-4]
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerArg>,
    /// Seed of initialisation, data order, augmentation and dropout
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run directory for the checkpoint and metrics [default: runs/NETWORK]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Continue the run in DIR from its checkpoint (same network, data and settings)
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
    /// cpu, or cuda / cuda:N with the `cuda` build feature
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// No progress bar or per-epoch lines
    #[arg(long)]
    pub quiet: bool,
    /// Transfer learning: start from these weights (checkpoint or state dict)
    #[arg(long, value_name = "FILE")]
    pub init: Option<String>,
    /// With --init: re-initialise the last linear layer (a new number of classes)
    #[arg(long)]
    pub replace_head: bool,
    /// Keep these ops' weights fixed, by dotted name prefix (repeatable or comma-separated)
    #[arg(long, value_name = "PREFIX", value_delimiter = ',')]
    pub freeze: Vec<String>,
    /// Learning-rate factor for everything but the last linear layer (e.g. 0.1)
    #[arg(long, value_name = "X")]
    pub backbone_lr_scale: Option<f64>,
    /// Sanity check instead of training: the loss at initialisation against ln(classes)
    #[arg(long)]
    pub check_init: bool,
    /// Sanity check instead of training: overfit N minibatches (no augmentation or decay) to 100%
    #[arg(long, value_name = "N")]
    pub overfit: Option<usize>,
    /// Step budget for --overfit
    #[arg(long, default_value_t = 500, value_name = "STEPS")]
    pub overfit_steps: u64,
    #[command(flatten)]
    pub net: NetArgs,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum OptimizerArg {
    Sgd,
    Adam,
    Adamw,
}

#[derive(Args)]
pub struct EvalArgs {
    /// The .net file or zoo name
    pub file: PathBuf,
    /// A checkpoint (file or run directory), or a state dict (.safetensors, .pth)
    #[arg(long, value_name = "FILE")]
    pub weights: PathBuf,
    /// The dataset whose test split is evaluated
    #[arg(long, value_name = "SPEC")]
    pub data: String,
    #[arg(long, value_enum, default_value = "table")]
    pub format: EvalFormat,
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    /// Test-time augmentation: average the predictions over the image and its mirror (flip),
    /// 4 corner + centre crops of the image enlarged by 8/7 and their mirrors (10crop), or
    /// 3 scales and their mirrors (multiscale; for networks ending in global pooling)
    #[arg(long, value_enum, default_value = "none")]
    pub tta: TtaArg,
    /// Evaluate the checkpoint's moving average of the weights (a run with `ema:`)
    #[arg(long)]
    pub ema: bool,
    #[command(flatten)]
    pub norm: NormArgs,
    #[arg(long, default_value = "cpu")]
    pub device: String,
    #[command(flatten)]
    pub net: NetArgs,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum TtaArg {
    None,
    Flip,
    #[value(name = "10crop")]
    TenCrop,
    Multiscale,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum EvalFormat {
    Table,
    Json,
}

#[derive(Args)]
pub struct PredictArgs {
    /// The .net file or zoo name
    pub file: PathBuf,
    /// A checkpoint (file or run directory), or a state dict (.safetensors, .pth)
    #[arg(long, value_name = "FILE")]
    pub weights: PathBuf,
    /// Image files (JPEG or PNG)
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// How many classes to show per image
    #[arg(long, default_value_t = 5)]
    pub top: usize,
    #[command(flatten)]
    pub norm: NormArgs,
    #[arg(long, default_value = "cpu")]
    pub device: String,
    #[command(flatten)]
    pub net: NetArgs,
}

/// Normalisation for weights that carry none (a state dict from elsewhere).
#[derive(Args)]
pub struct NormArgs {
    /// Per-channel mean on the [0,1] scale: one value, or one per channel (0.485,0.456,0.406)
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pub mean: Vec<f32>,
    /// Per-channel standard deviation: one value, or one per channel
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pub std: Vec<f32>,
}

fn device(spec: &str) -> Result<Device, Failed> {
    let d = match spec {
        "cpu" => Ok(Device::Cpu),
        s if s == "cuda" || s.starts_with("cuda:") => {
            let n = s.strip_prefix("cuda:").unwrap_or("0");
            match n.parse::<usize>() {
                Ok(n) => Device::new_cuda(n).map_err(|e| {
                    format!("cannot use {s}: {e} (CUDA needs a build with `--features cuda`)")
                }),
                Err(_) => Err(format!("`{s}`: expected cuda:N with N a GPU number")),
            }
        }
        s => Err(format!("unknown device `{s}`: use cpu, cuda or cuda:N")),
    };
    d.map_err(|e| {
        eprintln!("error: {e}");
        Failed
    })
}

/// Training settings from a YAML file, or the defaults without one.
fn config_file(path: Option<&Path>) -> Result<TrainConfig, Failed> {
    let Some(path) = path else {
        return Ok(TrainConfig::default());
    };
    let yaml = std::fs::read_to_string(path)
        .map_err(|e| fail(format!("{}: cannot read: {e}", path.display())))?;
    TrainConfig::from_yaml(&path.display().to_string(), &yaml).map_err(fail)
}

/// Says `msg` as an error; the caller returns the `Failed`.
pub(crate) fn fail(msg: impl std::fmt::Display) -> Failed {
    eprintln!("error: {msg}");
    Failed
}

fn load_data(spec: &str) -> Result<Dataset, Failed> {
    let loaded = data::load_with(spec, &Default::default()).map_err(fail)?;
    for note in &loaded.notes {
        eprintln!("note: {note}");
    }
    Ok(loaded.dataset)
}

/// [`compile_for`] the images and classes of `dataset`.
fn compile_for_data(
    name: &str,
    text: &str,
    net: &NetArgs,
    dataset: &data::Dataset,
) -> Result<Network, Failed> {
    compile_for(name, text, net, dataset.shape, Some(dataset.classes.len()))
}

/// Compiles the network for images of `shape` (C, H, W) and `classes`
/// classes: the input follows the data, and a `classes` parameter is set
/// unless the user set it. The output must then have one value per class.
fn compile_for(
    name: &str,
    text: &str,
    net: &NetArgs,
    shape: [usize; 3],
    classes: Option<usize>,
) -> Result<Network, Failed> {
    let shape64 = shape.map(|d| d as u64);
    if let Some(given) = net.input {
        if given != shape64 {
            return Err(fail(format!(
                "--input {}x{}x{} does not match the data's images ({}x{}x{}); leave --input out, the network's input follows the data",
                given[0], given[1], given[2], shape[0], shape[1], shape[2]
            )));
        }
    }
    let net = dsl::compile(
        name,
        text,
        &Overrides {
            set: net.set.clone(),
            defaults: classes
                .map(|k| ("classes".to_string(), Value::Int(k as i64)))
                .into_iter()
                .collect(),
            input: Some(shape64),
        },
    )
    .map_err(|e| {
        eprintln!("{e}");
        Failed
    })?;
    if let Some(k) = classes {
        let outputs = net.graph[net.output].shape.elements().unwrap_or(0);
        if outputs != k as u64 {
            return Err(fail(format!(
                "{name}: the network outputs {outputs} values but the data has {k} classes; use --set classes={k} or make the last linear layer {k} wide"
            )));
        }
    }
    Ok(net)
}

fn lower(net: &Network, device: &Device, seed: u64) -> Result<Model, Failed> {
    let mut rng: rand_chacha::ChaCha8Rng = rand::SeedableRng::seed_from_u64(seed);
    Model::new(net, device, DType::F32, &mut rng).map_err(|e| fail(format!("{}: {e}", net.name)))
}

pub fn run_train(args: &TrainArgs) -> Result<(), Failed> {
    let (name, text) = read_source(&args.file)?;
    let resume = match &args.resume {
        Some(dir) => Some(checkpoint::load(dir).map_err(fail)?),
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
    let device = device(&args.device)?;
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
        progress: !args.quiet,
        stop_after: None,
    };
    train::train(&job).map_err(fail)?;
    Ok(())
}

/// The normalisation for a weights file: its own, else --mean/--std.
fn normalization(
    c: &Checkpoint,
    args: &NormArgs,
    channels: usize,
) -> Result<Normalization, Failed> {
    if args.mean.is_empty() && args.std.is_empty() && c.is_ours() {
        return train::checkpoint_normalization(c).map_err(fail);
    }
    if args.mean.is_empty() || args.std.is_empty() {
        return Err(fail(format!(
            "{}: the weights carry no normalisation statistics; give --mean and --std (one value, or one per channel; ImageNet's are --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225)",
            c.path.display()
        )));
    }
    let widen = |v: &[f32], what: &str| -> Result<Vec<f32>, Failed> {
        match v.len() {
            1 => Ok(vec![v[0]; channels]),
            n if n == channels => Ok(v.to_vec()),
            n => Err(fail(format!(
                "--{what} has {n} values; give 1 or {channels} (one per channel)"
            ))),
        }
    };
    let std = widen(&args.std, "std")?;
    if std.iter().any(|&s| s.is_nan() || s <= 0.0) {
        return Err(fail("--std values must be positive"));
    }
    Ok(Normalization {
        mean: widen(&args.mean, "mean")?,
        std,
    })
}

fn load_weights(model: &Model, c: &Checkpoint) -> Result<(), Failed> {
    let unused = model
        .load_weights(&c.tensors)
        .map_err(|e| fail(format!("{}: {e}", c.path.display())))?;
    let stray: Vec<&String> = unused
        .iter()
        .filter(|k| !k.starts_with("optim.") && !k.starts_with(runtime::ema::PREFIX))
        .collect();
    if !stray.is_empty() {
        eprintln!(
            "warning: {}: {} tensor(s) not used by the network, first `{}`",
            c.path.display(),
            stray.len(),
            stray[0]
        );
    }
    Ok(())
}

pub fn run_eval(args: &EvalArgs) -> Result<(), Failed> {
    let (name, text) = read_source(&args.file)?;
    let c = checkpoint::load(&args.weights).map_err(fail)?;
    let dataset = load_data(&args.data)?;
    let net = compile_for_data(&name, &text, &args.net, &dataset)?;
    let device = device(&args.device)?;
    let model = lower(&net, &device, 0)?;
    let mut c = c;
    if args.ema {
        let averaged: std::collections::HashMap<String, candle_core::Tensor> = c
            .tensors
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(runtime::ema::PREFIX)
                    .map(|k| (k.to_string(), v.clone()))
            })
            .collect();
        if averaged.is_empty() {
            return Err(fail(format!(
                "{}: no averaged weights in this checkpoint (train with `ema: 0.999` in the config)",
                c.path.display()
            )));
        }
        // Counters are not averaged: take them from the raw weights.
        for t in &model.tensors {
            if let (false, Some(v)) = (averaged.contains_key(&t.name), c.tensors.get(&t.name)) {
                c.tensors
                    .insert(format!("{}{}", runtime::ema::PREFIX, t.name), v.clone());
            }
        }
        c.tensors = c
            .tensors
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(runtime::ema::PREFIX)
                    .map(|k| (k.to_string(), v.clone()))
            })
            .collect();
    }
    load_weights(&model, &c)?;
    let norm = normalization(&c, &args.norm, dataset.shape[0])?;
    let test = std::sync::Arc::new(dataset.test.clone());
    use runtime::evaluate::Tta;
    if matches!(args.tta, TtaArg::Multiscale) {
        // Other sizes reach a flatten unchanged only after global pooling.
        let spatial_flatten = net.graph.node_indices().any(|n| {
            matches!(net.graph[n].op, dsl::Op::Flatten)
                && net
                    .input_shapes(n)
                    .first()
                    .is_some_and(|s| matches!(s, dsl::Shape::Image { h, w, .. } if h * w > 1))
        });
        if spatial_flatten {
            return Err(fail(format!(
                "--tta multiscale feeds the network other image sizes, but {} flattens a spatial map into a fixed-size linear layer; use a network whose classifier follows global pooling (`gap`), or --tta flip / 10crop",
                net.name
            )));
        }
    }
    let tta = match args.tta {
        TtaArg::None => Tta::None,
        TtaArg::Flip => Tta::Flip,
        TtaArg::TenCrop => Tta::TenCrop,
        TtaArg::Multiscale => Tta::MultiScale,
    };
    let r = runtime::evaluate::evaluate_tta(
        &model,
        &test,
        &norm,
        dataset.classes.len(),
        args.batch_size.max(1),
        tta,
    )
    .map_err(|e| match tta {
        Tta::MultiScale => fail(format!(
            "{e}\n  (multiscale evaluation feeds other image sizes: it needs a network whose classifier follows global pooling, `gap`)"
        )),
        _ => fail(e),
    })?;
    let text = match args.format {
        EvalFormat::Json => {
            let per_class: serde_json::Map<String, serde_json::Value> = dataset
                .classes
                .iter()
                .zip(&r.per_class)
                .map(|(c, a)| (c.clone(), serde_json::json!(a)))
                .collect();
            let v = serde_json::json!({
                "top1": r.top1,
                "top5": r.top5,
                "loss": r.loss,
                "images": r.images,
                "classes": dataset.classes,
                "per_class": per_class,
                "confusion": r.confusion,
            });
            format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default())
        }
        EvalFormat::Table => {
            let mut s = format!(
                "{} on {} (test split, {} images)\ntop-1 {:.2}%  top-5 {:.2}%  loss {:.4}\n\nper class:\n",
                net.name, args.data, r.images, r.top1, r.top5, r.loss
            );
            let width = dataset
                .classes
                .iter()
                .map(|c| c.len())
                .max()
                .unwrap_or(5)
                .max(5);
            for (c, a) in dataset.classes.iter().zip(&r.per_class) {
                let a = a.map_or("-".to_string(), |a| format!("{a:.2}%"));
                s.push_str(&format!("  {c:<width$}  {a:>7}\n"));
            }
            s.push_str("\nconfusion (rows: true class, columns: predicted):\n");
            for (i, row) in r.confusion.iter().enumerate() {
                let cells: Vec<String> = row.iter().map(|n| format!("{n:>5}")).collect();
                s.push_str(&format!(
                    "  {:<width$} {}\n",
                    dataset.classes[i],
                    cells.join("")
                ));
            }
            s
        }
    };
    crate::emit(&text)
}

pub fn run_predict(args: &PredictArgs) -> Result<(), Failed> {
    let (name, text) = read_source(&args.file)?;
    let c = checkpoint::load(&args.weights).map_err(fail)?;
    // The input and classes the weights were trained for, where known.
    let input: Option<Vec<usize>> = c.meta.input.clone();
    let classes: Option<Vec<String>> = c.meta.classes.clone();
    let net = match &input {
        Some(i) if i.len() == 3 => compile_for(
            &name,
            &text,
            &args.net,
            [i[0], i[1], i[2]],
            classes.as_ref().map(Vec::len),
        )?,
        _ => crate::compile(&name, &text, &args.net)?,
    };
    let device = device(&args.device)?;
    let model = lower(&net, &device, 0)?;
    load_weights(&model, &c)?;
    let norm = normalization(&c, &args.norm, model.input[0])?;
    let mut out = String::new();
    for path in &args.images {
        let image = data::load_image(path, model.input).map_err(fail)?;
        let probs = runtime::evaluate::predict(&model, &image, &norm).map_err(fail)?;
        let mut order: Vec<usize> = (0..probs.len()).collect();
        order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
        out.push_str(&format!("{}\n", path.display()));
        for &k in order.iter().take(args.top.max(1)) {
            let label = classes
                .as_ref()
                .and_then(|c| c.get(k).cloned())
                .unwrap_or_else(|| format!("class {k}"));
            out.push_str(&format!("  {:>6.2}%  {label}\n", 100.0 * probs[k]));
        }
    }
    crate::emit(&out)
}

pub const AUGMENT_ABOUT: &str = "\
Write a grid of augmented training images, to see what a config's
augmentation does before training with it. Row i shows training image i
(first column, unaugmented) and then --variants augmented copies; with
Mixup or CutMix configured, each column is mixed as one batch. The network
is compiled for the data (as `train` does) so the input shape is the one
training would use.

Example:
  cnncost augment cifar_small --data folder:../shared/data/cifar10-jpeg --config docs/pictures/augment_grid.yaml --out grid.png";

#[derive(Args)]
pub struct AugmentArgs {
    /// The .net file or zoo name
    pub file: PathBuf,
    #[arg(long, value_name = "SPEC")]
    pub data: String,
    /// Training settings in YAML; its `augment:` section is what is drawn
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The PNG to write
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Training images, one per row
    #[arg(long, default_value_t = 8)]
    pub images: usize,
    /// Augmented copies of each
    #[arg(long, default_value_t = 7)]
    pub variants: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub net: NetArgs,
}

pub fn run_augment(args: &AugmentArgs) -> Result<(), Failed> {
    let (name, text) = read_source(&args.file)?;
    let config = config_file(args.config.as_deref())?;
    let dataset = load_data(&args.data)?;
    compile_for_data(&name, &text, &args.net, &dataset)?;
    let shape = dataset.shape;
    let n = args.images.clamp(1, dataset.train.len().max(1));
    let pca = if config.augment.needs_pca() {
        Some(
            data::Pca::of(&dataset.train, shape)
                .ok_or_else(|| fail("PCA lighting needs RGB images"))?,
        )
    } else {
        None
    };
    let pipeline = config.augment.pipeline(pca.as_ref());
    let mix = config.augment.batch_mix();
    let identity = Normalization::identity(shape[0]);
    let indices: Vec<usize> = (0..n).collect();
    let to_bytes = |v: &[f32]| -> Vec<u8> {
        v.iter()
            .map(|x| (x * 255.0).round().clamp(0.0, 255.0) as u8)
            .collect()
    };
    let size = shape.iter().product::<usize>();
    let mut columns: Vec<Vec<Vec<u8>>> = vec![indices
        .iter()
        .map(|&i| dataset.train.image(i, shape).to_vec())
        .collect()];
    for v in 0..args.variants {
        let mut rng = data::batch_rng(args.seed, 0, v as u64);
        let batch = data::make_batch(
            &dataset.train,
            &indices,
            shape,
            &identity,
            Some(&pipeline),
            &mut rng,
        );
        let images = match &mix {
            Some(m) => {
                m.apply(&batch, shape, &mut data::mix_rng(args.seed, 0, v as u64))
                    .images
            }
            None => batch.images,
        };
        columns.push(images.chunks(size).map(to_bytes).collect());
    }
    // Row-major: image i's original, then its variants.
    let cols = columns.len();
    let tiles: Vec<Vec<u8>> = (0..n)
        .flat_map(|i| columns.iter().map(move |c| c[i].clone()))
        .collect();
    let (rgb, w, h) = data::grid(&tiles, shape, cols);
    // Small images (CIFAR's 32 pixels) are enlarged, nearest neighbour, to
    // be seen: each tile about 128 pixels.
    let k = (128 / shape[1].max(shape[2]).max(1)).max(1);
    let (rgb, w, h) = if k > 1 {
        let mut big = vec![0u8; rgb.len() * k * k];
        for y in 0..h * k {
            for x in 0..w * k {
                let src = ((y / k) * w + x / k) * 3;
                big[(y * w * k + x) * 3..][..3].copy_from_slice(&rgb[src..src + 3]);
            }
        }
        (big, w * k, h * k)
    } else {
        (rgb, w, h)
    };
    data::save_png(&args.out, &rgb, w, h).map_err(fail)?;
    eprintln!(
        "wrote {} ({n} images x {} augmented copies, {w}x{h} pixels)",
        args.out.display(),
        args.variants
    );
    Ok(())
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
    crate::emit(&out)?;
    if ok {
        Ok(())
    } else {
        Err(Failed)
    }
}

pub const LR_FIND_ABOUT: &str = "\
A learning-rate range test (Smith 2017): train from initialisation while the
rate grows exponentially from --min to --max, one step per batch, and record
the smoothed loss; stop when it exceeds 4x its best. Draws loss against rate
(log scale) and suggests the rate where the loss fell fastest before its
minimum.

Example:
  cnncost lr-find cifar_small --data folder:../shared/data/cifar10-jpeg --out lr.png";

#[derive(Args)]
pub struct LrFindArgs {
    /// The .net file or zoo name
    pub file: PathBuf,
    #[arg(long, value_name = "SPEC")]
    pub data: String,
    /// Training settings in YAML (optimizer, momentum, batch size, seed)
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[arg(long, default_value_t = 1e-6)]
    pub min: f64,
    #[arg(long, default_value_t = 1.0)]
    pub max: f64,
    #[arg(long, default_value_t = 100)]
    pub steps: u64,
    /// The plot to write (.png or .svg)
    #[arg(long, value_name = "FILE", default_value = "lr_find.png")]
    pub out: PathBuf,
    #[command(flatten)]
    pub net: NetArgs,
}

pub fn run_lr_find(args: &LrFindArgs) -> Result<(), Failed> {
    if !(args.min > 0.0 && args.max > args.min) {
        return Err(fail("give 0 < --min < --max"));
    }
    let (name, text) = read_source(&args.file)?;
    let config = config_file(args.config.as_deref())?;
    let dataset = load_data(&args.data)?;
    let net = compile_for_data(&name, &text, &args.net, &dataset)?;
    let model = lower(&net, &Device::Cpu, config.seed)?;
    let norm = Normalization::of(&dataset.train, dataset.shape);
    // As many epochs as the steps need, each in its own order (every epoch
    // yields a batch: the split is not empty and the last batch is kept).
    if dataset.train.is_empty() {
        return Err(fail(format!("{}: the training split is empty", args.data)));
    }
    let train = std::sync::Arc::new(dataset.train.clone());
    let (shape, batch, seed) = (dataset.shape, config.batch_size, config.seed);
    let mut loader = (0u64..).flat_map(move |epoch| {
        data::Loader::new(
            train.clone(),
            shape,
            norm.clone(),
            None,
            batch,
            true,
            false,
            seed,
            epoch,
            0,
        )
    });
    let r = runtime::sanity::lr_find(
        &model,
        &mut loader,
        config.optimizer_settings(),
        (args.min, args.max, args.steps),
    )
    .map_err(fail)?;
    if r.points.len() < 2 {
        return Err(fail("the loss diverged at once: lower --min"));
    }
    crate::plot::draw_lr_find(&args.out, &net.name, &r.points, r.suggested).map_err(fail)?;
    crate::emit(&format!(
        "wrote {} ({} steps, rates {:.1e} to {:.1e})\nsuggested learning rate: {:.2e}\n",
        args.out.display(),
        r.points.len(),
        r.points[0].0,
        r.points[r.points.len() - 1].0,
        r.suggested
    ))
}

#[derive(Args)]
pub struct EnsembleArgs {
    /// The .net file or zoo name (every member has this architecture)
    pub file: PathBuf,
    /// The members' weights: checkpoints (files or run directories) or state dicts
    #[arg(long, value_name = "FILE", num_args = 2.., required = true)]
    pub weights: Vec<PathBuf>,
    /// The dataset whose test split is evaluated
    #[arg(long, value_name = "SPEC")]
    pub data: String,
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    #[command(flatten)]
    pub norm: NormArgs,
    #[command(flatten)]
    pub net: NetArgs,
}

/// `cnncost ensemble`: each member's accuracy and that of their averaged
/// probabilities.
pub fn run_ensemble(args: &EnsembleArgs) -> Result<(), Failed> {
    let (name, text) = read_source(&args.file)?;
    let dataset = load_data(&args.data)?;
    let net = compile_for_data(&name, &text, &args.net, &dataset)?;
    let classes = dataset.classes.len();
    let test = std::sync::Arc::new(dataset.test.clone());
    let mut sum: Vec<f32> = Vec::new();
    let mut out = format!(
        "{} on {} (test split, {} images)\n",
        net.name,
        args.data,
        test.len()
    );
    for path in &args.weights {
        let c = checkpoint::load(path).map_err(fail)?;
        let model = lower(&net, &Device::Cpu, 0)?;
        load_weights(&model, &c)?;
        let norm = normalization(&c, &args.norm, dataset.shape[0])?;
        let p = runtime::evaluate::probabilities(&model, &test, &norm, args.batch_size.max(1))
            .map_err(fail)?;
        let (t1, t5) = runtime::evaluate::accuracy_of(&p, &test.labels, classes);
        out.push_str(&format!(
            "  {:<40} top-1 {t1:6.2}%  top-5 {t5:6.2}%\n",
            c.path.display()
        ));
        if sum.is_empty() {
            sum = p;
        } else {
            sum.iter_mut().zip(&p).for_each(|(a, b)| *a += b);
        }
    }
    let (t1, t5) = runtime::evaluate::accuracy_of(&sum, &test.labels, classes);
    out.push_str(&format!(
        "  {:<40} top-1 {t1:6.2}%  top-5 {t5:6.2}%\n",
        format!("ensemble of {} (mean probability)", args.weights.len())
    ));
    crate::emit(&out)
}
