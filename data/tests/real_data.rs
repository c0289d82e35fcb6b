//! Loaders against the real sets in ../shared/data, checked against facts
//! from the sets' documentation (see shared/data/README.md).

mod common;

use common::{data, mean, TempDir};
use data::{load, load_with, Cache, LoadOptions, Normalization};
use std::time::Instant;

#[test]
fn mnist_matches_documented_facts() {
    let t = Instant::now();
    let d = load(&format!("mnist:{}", data("mnist"))).unwrap();
    eprintln!("mnist load: {:?} (debug build)", t.elapsed());
    assert_eq!(d.shape, [1, 28, 28]);
    assert_eq!(d.train.len(), 60_000);
    assert_eq!(d.test.len(), 10_000);
    assert_eq!(d.train.images.len(), 60_000 * 784);
    assert_eq!(d.test.images.len(), 10_000 * 784);
    assert_eq!(
        d.classes,
        (0..10).map(|i| i.to_string()).collect::<Vec<_>>()
    );
    assert_eq!(
        d.train.label_counts(10),
        vec![5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
    assert!(
        (mean(&d.train) - 0.1307).abs() < 0.00005,
        "{}",
        mean(&d.train)
    );
    let norm = Normalization::of(&d.train, d.shape);
    assert!((norm.mean[0] - 0.1307).abs() < 0.00005, "{:?}", norm);
    // The commonly quoted MNIST std.
    assert!((norm.std[0] - 0.3081).abs() < 0.00005, "{:?}", norm);
    assert!(d.source.starts_with("mnist:"));
}

#[test]
fn fashion_mnist_matches_documented_facts() {
    let d = load(&format!("fashion-mnist:{}", data("fashion-mnist"))).unwrap();
    assert_eq!(d.shape, [1, 28, 28]);
    assert_eq!((d.train.len(), d.test.len()), (60_000, 10_000));
    assert_eq!(d.train.label_counts(10), vec![6000; 10]);
    assert_eq!(d.test.label_counts(10), vec![1000; 10]);
    assert!(
        (mean(&d.train) - 0.2860).abs() < 0.00005,
        "{}",
        mean(&d.train)
    );
    assert_eq!(d.classes[0], "T-shirt/top");
    assert_eq!(d.classes[9], "Ankle boot");
}

#[test]
fn cifar10_bin_matches_documented_facts() {
    let d = load(&format!("cifar10:{}", data("cifar10-bin"))).unwrap();
    assert_eq!(d.shape, [3, 32, 32]);
    assert_eq!((d.train.len(), d.test.len()), (4_000, 1_000));
    assert_eq!(d.train.labels[..10], [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]);
    assert_eq!(d.test.labels[..10], [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]);
    assert_eq!(
        d.classes,
        [
            "airplane",
            "automobile",
            "bird",
            "cat",
            "deer",
            "dog",
            "frog",
            "horse",
            "ship",
            "truck"
        ]
    );
    // A 4,000-image subset's means sit near the full set's 0.4914/0.4822/0.4465.
    let n = Normalization::of(&d.train, d.shape);
    for (m, want) in n.mean.iter().zip([0.4914, 0.4822, 0.4465]) {
        assert!((m - want).abs() < 0.01, "{n:?}");
    }
}

/// Decodes all 60,000 JPEGs once into a private cache, then loads again
/// from the cache.
#[test]
fn cifar10_jpeg_folder_and_cache() {
    let cache = TempDir::new("jpeg-cache");
    let opts = LoadOptions {
        cache: Cache::Dir(cache.path().to_path_buf()),
    };
    let spec = format!("folder:{}", data("cifar10-jpeg"));
    let t = Instant::now();
    let cold = load_with(&spec, &opts).unwrap();
    let cold_time = t.elapsed();
    assert!(!cold.from_cache);
    assert!(cold.notes.is_empty(), "{:?}", cold.notes);
    let t = Instant::now();
    let warm = load_with(&spec, &opts).unwrap();
    let warm_time = t.elapsed();
    eprintln!("folder:cifar10-jpeg cold {cold_time:?}, cached {warm_time:?} (debug build)");
    assert!(warm.from_cache, "{:?}", warm.notes);
    assert!(warm_time < cold_time);

    let d = &cold.dataset;
    assert_eq!(d.shape, [3, 32, 32]);
    assert_eq!((d.train.len(), d.test.len()), (50_000, 10_000));
    assert_eq!(d.train.label_counts(10), vec![5000; 10]);
    assert_eq!(d.test.label_counts(10), vec![1000; 10]);
    assert_eq!(
        d.classes,
        [
            "airplane",
            "automobile",
            "bird",
            "cat",
            "deer",
            "dog",
            "frog",
            "horse",
            "ship",
            "truck"
        ]
    );
    let n = Normalization::of(&d.train, d.shape);
    for (m, want) in n.mean.iter().zip([0.4913, 0.4821, 0.4465]) {
        assert!((m - want).abs() < 0.002, "{n:?}");
    }
    assert_eq!(warm.dataset.classes, d.classes);
    assert_eq!(warm.dataset.shape, d.shape);
    assert!(warm.dataset.train == d.train, "cached train split differs");
    assert!(warm.dataset.test == d.test, "cached test split differs");
}

/// The folder set's test/cat/0000.jpg should be the official test batch's
/// first record (a cat) re-encoded: close in pixels (measured mean abs
/// difference 7.5 of 255), not equal (JPEG), and far from another cat (64).
#[test]
fn jpeg_matches_binary_first_test_cat() {
    let bin = load(&format!("cifar10:{}", data("cifar10-bin"))).unwrap();
    let jpg = data::load_image(
        std::path::Path::new(&data("cifar10-jpeg/test/cat/0000.jpg")),
        [3, 32, 32],
    )
    .unwrap();
    let rec = bin.test.image(0, bin.shape);
    let mad = |a: &[u8], b: &[u8]| {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| (x as i32 - y as i32).unsigned_abs() as f64)
            .sum::<f64>()
            / a.len() as f64
    };
    let same = mad(&jpg, rec);
    // Against another cat of the test batch (record 8 has label 3 too).
    let other = mad(&jpg, bin.test.image(8, bin.shape));
    eprintln!("mean abs diff: same image {same:.2}, other image {other:.2}");
    assert!(same < 12.0, "{same}");
    assert!(other > 3.0 * same, "{other} vs {same}");
}
