//! Load and batching timings on the real sets:
//! `cargo run --release -p data --example timings [DATA_DIR]`.

use data::{
    batch_rng, epoch_order, load, load_with, make_batch, Cache, LoadOptions, Loader, Normalization,
    Pipeline, Transform,
};
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let root = std::env::args()
        .nth(1)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data").to_string());
    for spec in [
        format!("mnist:{root}/mnist"),
        format!("fashion-mnist:{root}/fashion-mnist"),
        format!("cifar10:{root}/cifar10-bin"),
    ] {
        let t = Instant::now();
        let d = load(&spec).unwrap();
        println!(
            "{spec}: {:?} ({} + {} images)",
            t.elapsed(),
            d.train.len(),
            d.test.len()
        );
    }
    let cache = std::env::temp_dir().join(format!("cnncost-timings-{}", std::process::id()));
    let opts = LoadOptions {
        cache: Cache::Dir(cache.clone()),
    };
    let spec = format!("folder:{root}/cifar10-jpeg");
    let t = Instant::now();
    let cold = load_with(&spec, &opts).unwrap();
    println!(
        "{spec} cold (decode + write cache): {:?} notes {:?}",
        t.elapsed(),
        cold.notes
    );
    let t = Instant::now();
    let warm = load_with(&spec, &opts).unwrap();
    println!(
        "{spec} cached: {:?} (from_cache {})",
        t.elapsed(),
        warm.from_cache
    );
    let t = Instant::now();
    let _ = load_with(&spec, &LoadOptions { cache: Cache::Off }).unwrap();
    println!("{spec} decode only, no cache: {:?}", t.elapsed());
    let _ = std::fs::remove_dir_all(&cache);

    let d = warm.dataset;
    let t = Instant::now();
    let norm = Normalization::of(&d.train, d.shape);
    println!("Normalization::of 50k CIFAR: {:?} {norm:?}", t.elapsed());
    let aug = Pipeline {
        steps: vec![Transform::PadCrop { padding: 4 }, Transform::Flip],
    };
    let order = epoch_order(d.train.len(), 1, 0);
    let nb = 200;
    let t = Instant::now();
    let mut sink = 0f32;
    for b in 0..nb {
        let idx = &order[b * 128..(b + 1) * 128];
        let batch = make_batch(
            &d.train,
            idx,
            d.shape,
            &norm,
            Some(&aug),
            &mut batch_rng(1, 0, b as u64),
        );
        sink += batch.images[0];
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "make_batch crop+flip 3x32x32 bs128, one thread: {:.0} images/s ({sink})",
        (nb * 128) as f64 / s
    );
    let split = Arc::new(d.train);
    let t = Instant::now();
    let n = Loader::new(split, d.shape, norm, Some(aug), 128, true, false, 1, 0, 0)
        .map(|b| b.len)
        .sum::<usize>();
    println!(
        "Loader epoch (2 workers): {n} images in {:?} = {:.0} images/s",
        t.elapsed(),
        n as f64 / t.elapsed().as_secs_f64()
    );
}
