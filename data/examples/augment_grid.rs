//! Writes a PNG grid of augmented samples, to look at what a config does:
//! `cargo run -p data --example augment_grid -- SPEC CONFIG.yaml OUT.png [SEED]`
//! with CONFIG.yaml holding the fields of `augment:` (see
//! `data::AugmentConfig`). Row r shows image r as stored, then seven
//! augmented draws of it; with mixup/cutmix set, a last row shows a mixed batch.

use data::{
    batch_rng, grid, load, make_batch, mix_rng, save_png, AugmentConfig, Normalization, Pca,
};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: augment_grid SPEC CONFIG.yaml OUT.png [SEED]");
        std::process::exit(2);
    }
    let seed: u64 = args
        .get(3)
        .map_or(0, |s| s.parse().expect("SEED is a number"));
    let d = load(&args[0]).unwrap_or_else(|e| panic!("{e}"));
    let text = std::fs::read_to_string(&args[1]).expect("cannot read the config");
    let config: AugmentConfig =
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", args[1]));
    config
        .validate()
        .unwrap_or_else(|e| panic!("{}: {e}", args[1]));
    let pca = config
        .needs_pca()
        .then(|| Pca::of(&d.train, d.shape).expect("PCA lighting needs RGB images"));
    let pipeline = config.pipeline(pca.as_ref());
    let (rows, cols) = (6usize, 8usize);
    let mut tiles = Vec::new();
    for r in 0..rows.min(d.train.len()) {
        let src = d.train.image(r, d.shape);
        tiles.push(src.to_vec());
        for k in 1..cols {
            let mut rng = batch_rng(seed, r as u64, k as u64);
            tiles.push(pipeline.apply_u8(src, d.shape, &mut rng));
        }
    }
    if let Some(mix) = config.batch_mix() {
        let n = cols.min(d.train.len());
        let idx: Vec<usize> = (0..n).collect();
        let id = Normalization::identity(d.shape[0]);
        let batch = make_batch(
            &d.train,
            &idx,
            d.shape,
            &id,
            None,
            &mut batch_rng(seed, 0, 0),
        );
        let mixed = mix.apply(&batch, d.shape, &mut mix_rng(seed, 0, 0));
        let len = d.image_len();
        for i in 0..n {
            tiles.push(
                mixed.images[i * len..(i + 1) * len]
                    .iter()
                    .map(|v| (v * 255.0).round().clamp(0.0, 255.0) as u8)
                    .collect(),
            );
        }
        println!("mixed row: lambda {:.3}", mixed.lambda);
    }
    let (rgb, w, h) = grid(&tiles, d.shape, cols);
    save_png(std::path::Path::new(&args[2]), &rgb, w, h).unwrap_or_else(|e| panic!("{e}"));
    println!("{}: {w}x{h}, {} steps", args[2], pipeline.steps.len());
}
