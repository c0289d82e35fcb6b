//! `cnncost eval`: evaluates weights on a dataset's test split (top-1,
//! top-5, loss, per class, confusion), with test-time augmentation or the
//! checkpoint's moving average of the weights.

use crate::common::{
    compile_for_data, emit, fail, load_data, load_weights, lower, normalization, read_source,
    DeviceArgs, Failed, NetArgs, NormArgs,
};
use clap::{Args, ValueEnum};
use runtime::checkpoint;
use runtime::evaluate::Tta;
use std::path::PathBuf;

pub const LONG_ABOUT: &str = "Evaluate a checkpoint (or a state dict from elsewhere, \
        with --mean and --std) on the test split of a dataset: top-1 and top-5 \
        accuracy, mean loss, per-class accuracy and the confusion matrix. \
        --format json prints {\"top1\", \"top5\", \"loss\", \"images\", \"classes\", \
        \"per_class\", \"confusion\"}.\n\n\
        Example: cnncost eval lenet5 --weights runs/lenet5 --data mnist:../shared/data/mnist";

#[derive(Args)]
pub struct EvalArgs {
    /// The .net file or zoo name
    file: PathBuf,
    /// A checkpoint (file or run directory), or a state dict (.safetensors, .pth)
    #[arg(long, value_name = "FILE")]
    weights: PathBuf,
    /// Load weights holding NaN or infinite values instead of refusing them
    #[arg(long)]
    allow_nonfinite: bool,
    /// The dataset whose test split is evaluated
    #[arg(long, value_name = "SPEC")]
    data: String,
    #[arg(long, value_enum, default_value = "table")]
    format: EvalFormat,
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
    /// Test-time augmentation: average the predictions over the image and its mirror (flip),
    /// 4 corner + centre crops of the image enlarged by 8/7 and their mirrors (10crop), or
    /// 3 scales and their mirrors (multiscale; for networks ending in global pooling)
    #[arg(long, value_enum, default_value = "none")]
    tta: TtaArg,
    /// Evaluate the checkpoint's moving average of the weights (a run with `ema:`)
    #[arg(long)]
    ema: bool,
    #[command(flatten)]
    norm: NormArgs,
    #[command(flatten)]
    device: DeviceArgs,
    #[command(flatten)]
    net: NetArgs,
}

#[derive(Clone, Copy, ValueEnum)]
enum TtaArg {
    None,
    Flip,
    #[value(name = "10crop")]
    TenCrop,
    Multiscale,
}

#[derive(Clone, Copy, ValueEnum)]
enum EvalFormat {
    Table,
    Json,
}

pub fn run(args: &EvalArgs) -> Result<(), Failed> {
    let (name, text) = read_source(&args.file)?;
    let mut c = checkpoint::load_with(&args.weights, args.allow_nonfinite).map_err(fail)?;
    let dataset = load_data(&args.data)?;
    if let Some(trained) = c.meta.data.as_deref().filter(|d| *d != args.data) {
        eprintln!(
            "warning: {} was trained on {trained}; evaluating it on {} (another data set, or the same one elsewhere)",
            c.path.display(),
            args.data
        );
    }
    let net = compile_for_data(&name, &text, &args.net, &dataset)?;
    let device = args.device.open()?;
    let model = lower(&net, &device, 0)?;
    if args.ema {
        c.tensors = runtime::ema::averaged_state_dict(&c.tensors, &model).ok_or_else(|| {
            fail(format!(
                "{}: no averaged weights in this checkpoint (train with `ema: 0.999` in the config)",
                c.path.display()
            ))
        })?;
    }
    load_weights(&model, &c)?;
    let norm = normalization(&c, &args.norm, dataset.shape[0])?;
    let test = std::sync::Arc::new(dataset.test.clone());
    let tta = match args.tta {
        TtaArg::None => Tta::None,
        TtaArg::Flip => Tta::Flip,
        TtaArg::TenCrop => Tta::TenCrop,
        TtaArg::Multiscale => Tta::MultiScale,
    };
    tta.applies_to(&net).map_err(fail)?;
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
        EvalFormat::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&r.to_json(&dataset.classes)).unwrap_or_default()
        ),
        EvalFormat::Table => r.to_table(&net.name, &args.data, &dataset.classes),
    };
    emit(&text)
}
