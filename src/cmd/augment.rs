//! `cnncost augment`: a grid of augmented training images, to see what a
//! config's augmentation does.

use crate::common::{compile_for_data, config_file, fail, load_data, read_source, Failed, NetArgs};
use clap::Args;
use data::Normalization;
use std::path::PathBuf;

pub const LONG_ABOUT: &str = "\
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
    file: PathBuf,
    #[arg(long, value_name = "SPEC")]
    data: String,
    /// Training settings in YAML; its `augment:` section is what is drawn
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The PNG to write
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Training images, one per row
    #[arg(long, default_value_t = 8)]
    images: usize,
    /// Augmented copies of each
    #[arg(long, default_value_t = 7)]
    variants: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    net: NetArgs,
}

pub fn run(args: &AugmentArgs) -> Result<(), Failed> {
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
