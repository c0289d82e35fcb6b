//! `cnncost predict`: classifies image files with trained weights and
//! prints the top classes with their probabilities.

use crate::common::{
    compile, compile_for, emit, fail, load_weights, lower, normalization, read_source, DeviceArgs,
    Failed, NetArgs, NormArgs,
};
use clap::Args;
use runtime::checkpoint;
use std::path::PathBuf;

pub const LONG_ABOUT: &str = "Classify image files (JPEG or PNG) with a checkpoint: \
        each image is resized (short side, then a centre crop) to the network's \
        input, normalised with the checkpoint's statistics (or --mean/--std), and \
        the top classes are printed with their softmax probabilities.\n\n\
        Example: cnncost predict cifar_small --weights runs/cifar_small cat.png";

#[derive(Args)]
pub struct PredictArgs {
    /// The .net file or zoo name
    file: PathBuf,
    /// A checkpoint (file or run directory), or a state dict (.safetensors, .pth)
    #[arg(long, value_name = "FILE")]
    weights: PathBuf,
    /// Load weights holding NaN or infinite values instead of refusing them
    #[arg(long)]
    allow_nonfinite: bool,
    /// Image files (JPEG or PNG)
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// How many classes to show per image (at least 1)
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    top: u64,
    #[command(flatten)]
    norm: NormArgs,
    #[command(flatten)]
    device: DeviceArgs,
    #[command(flatten)]
    net: NetArgs,
}

pub fn run(args: &PredictArgs) -> Result<(), Failed> {
    let (name, text) = read_source(&args.file)?;
    let c = checkpoint::load_with(&args.weights, args.allow_nonfinite).map_err(fail)?;
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
        _ => compile(&name, &text, &args.net)?,
    };
    let device = args.device.open()?;
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
        for &k in order.iter().take(args.top as usize) {
            let label = classes
                .as_ref()
                .and_then(|c| c.get(k).cloned())
                .unwrap_or_else(|| format!("class {k}"));
            out.push_str(&format!("  {:>6.2}%  {label}\n", 100.0 * probs[k]));
        }
    }
    emit(&out)
}
