//! `cnncost ensemble`: each member's accuracy on the test split, and that
//! of their averaged probabilities.

use crate::common::{
    compile_for_data, emit, fail, load_data, load_weights, lower, normalization, read_source,
    DeviceArgs, Failed, NetArgs, NormArgs,
};
use clap::Args;
use runtime::checkpoint;
use std::path::PathBuf;

pub const LONG_ABOUT: &str = "Evaluate an ensemble: every --weights file (same network) \
        on the test split, then the average of their predicted probabilities.\n\n\
        Example: cnncost ensemble cifar_small --weights runs/a runs/b runs/c --data cifar10:DIR";

#[derive(Args)]
pub struct EnsembleArgs {
    #[command(flatten)]
    device: DeviceArgs,
    /// The .net file or zoo name (every member has this architecture)
    file: PathBuf,
    /// The members' weights: checkpoints (files or run directories) or state dicts
    #[arg(long, value_name = "FILE", num_args = 2.., required = true)]
    weights: Vec<PathBuf>,
    /// Load weights holding NaN or infinite values instead of refusing them
    #[arg(long)]
    allow_nonfinite: bool,
    /// The dataset whose test split is evaluated
    #[arg(long, value_name = "SPEC")]
    data: String,
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
    #[command(flatten)]
    norm: NormArgs,
    #[command(flatten)]
    net: NetArgs,
}

/// `cnncost ensemble`: each member's accuracy and that of their averaged
/// probabilities.
pub fn run(args: &EnsembleArgs) -> Result<(), Failed> {
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
    let device = args.device.open()?;
    for path in &args.weights {
        let c = checkpoint::load_with(path, args.allow_nonfinite).map_err(fail)?;
        let model = lower(&net, &device, 0)?;
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
    emit(&out)
}
