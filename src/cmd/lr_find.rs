//! `cnncost lr-find`: the learning-rate range test, plotted, with a
//! suggested rate.

use crate::common::{
    compile_for_data, config_file, emit, fail, load_data, lower, read_source, DeviceArgs, Failed,
    NetArgs,
};
use crate::plot;
use clap::Args;
use data::Normalization;
use std::path::PathBuf;

pub const LONG_ABOUT: &str = "\
A learning-rate range test (Smith 2017): train from initialisation while the
rate grows exponentially from --min to --max, one step per batch, and record
the smoothed loss; stop when it exceeds 4x its best. Draws loss against rate
(log scale) and suggests the rate where the loss fell fastest before its
minimum.

Example:
  cnncost lr-find cifar_small --data folder:../shared/data/cifar10-jpeg --out lr.png";

#[derive(Args)]
pub struct LrFindArgs {
    #[command(flatten)]
    device: DeviceArgs,
    /// The .net file or zoo name
    file: PathBuf,
    #[arg(long, value_name = "SPEC")]
    data: String,
    /// Training settings in YAML (optimizer, momentum, batch size, seed)
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[arg(long, default_value_t = 1e-6)]
    min: f64,
    #[arg(long, default_value_t = 1.0)]
    max: f64,
    #[arg(long, default_value_t = 100)]
    steps: u64,
    /// The plot to write (.png or .svg)
    #[arg(long, value_name = "FILE", default_value = "lr_find.png")]
    out: PathBuf,
    #[command(flatten)]
    net: NetArgs,
}

pub fn run(args: &LrFindArgs) -> Result<(), Failed> {
    if !(args.min > 0.0 && args.max > args.min) {
        return Err(fail("give 0 < --min < --max"));
    }
    let (name, text) = read_source(&args.file)?;
    let config = config_file(args.config.as_deref())?;
    let dataset = load_data(&args.data)?;
    let net = compile_for_data(&name, &text, &args.net, &dataset)?;
    let model = lower(&net, &args.device.open()?, config.seed)?;
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
    let Some(suggested) = r.suggested else {
        return Err(fail(format!(
            "the loss never fell: it rose from the first rate ({:.1e}) on, so every rate tried is already too high; lower --min and --max",
            r.points[0].0
        )));
    };
    plot::draw_lr_find(&args.out, &net.name, &r.points, suggested).map_err(fail)?;
    emit(&format!(
        "wrote {} ({} steps, rates {:.1e} to {:.1e})\nsuggested learning rate: {:.2e}\n",
        args.out.display(),
        r.points.len(),
        r.points[0].0,
        r.points[r.points.len() - 1].0,
        suggested
    ))
}
