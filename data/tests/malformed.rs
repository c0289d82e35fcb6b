//! Malformed input: every case is an error naming the file (and record or
//! image where one is at fault), never a panic or a silent skip.

mod common;

use common::TempDir;
use data::{load, load_with, Cache, LoadOptions};
use flate2::write::GzEncoder;
use image::{GrayImage, Luma, Rgb, RgbImage};
use std::io::Write;
use std::path::Path;

fn err(spec: &str) -> String {
    match load(spec) {
        Ok(_) => panic!("{spec} loaded, expected an error"),
        Err(e) => e.to_string(),
    }
}

fn assert_has(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "message lacks {p:?}: {msg}");
    }
}

// ------------------------------------------------------------------- IDX

fn idx_images(n: u32, rows: u32, cols: u32, pixels: usize) -> Vec<u8> {
    let mut v = Vec::new();
    for x in [2051, n, rows, cols] {
        v.extend_from_slice(&x.to_be_bytes());
    }
    v.extend((0..pixels).map(|i| i as u8));
    v
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&2049u32.to_be_bytes());
    v.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    v.extend_from_slice(labels);
    v
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A valid tiny MNIST-like set: 3 train and 2 test images of 2x2, the
/// train files plain and the test files gzipped.
fn idx_set(dir: &Path) {
    std::fs::write(dir.join("train-images-idx3-ubyte"), idx_images(3, 2, 2, 12)).unwrap();
    std::fs::write(dir.join("train-labels-idx1-ubyte"), idx_labels(&[0, 9, 4])).unwrap();
    std::fs::write(
        dir.join("t10k-images-idx3-ubyte.gz"),
        gz(&idx_images(2, 2, 2, 8)),
    )
    .unwrap();
    std::fs::write(
        dir.join("t10k-labels-idx1-ubyte.gz"),
        gz(&idx_labels(&[1, 2])),
    )
    .unwrap();
}

#[test]
fn idx_valid_tiny_set_plain_and_gz() {
    let t = TempDir::new("idx-ok");
    idx_set(t.path());
    let d = load(&format!("mnist:{}", t.path().display())).unwrap();
    assert_eq!(d.shape, [1, 2, 2]);
    assert_eq!(d.train.labels, vec![0, 9, 4]);
    assert_eq!(d.train.images, (0..12).collect::<Vec<u8>>());
    assert_eq!(d.test.labels, vec![1, 2]);
    assert_eq!(d.test.image(1, d.shape), &[4, 5, 6, 7]);
}

#[test]
fn idx_wrong_magic() {
    let t = TempDir::new("idx-magic");
    idx_set(t.path());
    // A labels file where the images should be.
    std::fs::write(t.join("train-images-idx3-ubyte"), idx_labels(&[0, 1, 2])).unwrap();
    let e = err(&format!("mnist:{}", t.path().display()));
    assert_has(
        &e,
        &[
            "train-images-idx3-ubyte: wrong magic number 2049 (expected 2051 for an IDX image file)",
            "labels file",
        ],
    );
    // And images where the labels should be, gzipped.
    idx_set(t.path());
    std::fs::write(
        t.join("t10k-labels-idx1-ubyte.gz"),
        gz(&idx_images(2, 2, 2, 8)),
    )
    .unwrap();
    let e = err(&format!("fashion-mnist:{}", t.path().display()));
    assert_has(
        &e,
        &["t10k-labels-idx1-ubyte.gz: wrong magic number 2051 (expected 2049"],
    );
}

#[test]
fn idx_truncated_images_and_labels() {
    let t = TempDir::new("idx-trunc");
    idx_set(t.path());
    // Header says 3 images of 2x2 but only 10 pixel bytes: image 2 is incomplete.
    std::fs::write(t.join("train-images-idx3-ubyte"), idx_images(3, 2, 2, 10)).unwrap();
    let e = err(&format!("mnist:{}", t.path().display()));
    assert_has(
        &e,
        &[
            "train-images-idx3-ubyte: truncated",
            "image 2 is incomplete",
        ],
    );

    idx_set(t.path());
    let mut labels = idx_labels(&[0, 9, 4]);
    labels.pop();
    std::fs::write(t.join("train-labels-idx1-ubyte"), labels).unwrap();
    let e = err(&format!("mnist:{}", t.path().display()));
    assert_has(
        &e,
        &["train-labels-idx1-ubyte: truncated", "label 2 is missing"],
    );

    // Shorter than a header.
    std::fs::write(t.join("train-labels-idx1-ubyte"), [0, 0, 8]).unwrap();
    let e = err(&format!("mnist:{}", t.path().display()));
    assert_has(&e, &["train-labels-idx1-ubyte: file is 3 bytes"]);
}

#[test]
fn idx_truncated_gzip() {
    let t = TempDir::new("idx-gz");
    idx_set(t.path());
    let whole = gz(&idx_images(2, 2, 2, 8));
    std::fs::write(
        t.join("t10k-images-idx3-ubyte.gz"),
        &whole[..whole.len() / 2],
    )
    .unwrap();
    let e = err(&format!("mnist:{}", t.path().display()));
    assert_has(&e, &["t10k-images-idx3-ubyte.gz: cannot decompress"]);
}

#[test]
fn idx_trailing_bytes() {
    let t = TempDir::new("idx-trail");
    idx_set(t.path());
    std::fs::write(t.join("train-images-idx3-ubyte"), idx_images(3, 2, 2, 13)).unwrap();
    let e = err(&format!("mnist:{}", t.path().display()));
    assert_has(&e, &["train-images-idx3-ubyte: 1 bytes after image 2"]);
}

#[test]
fn idx_label_out_of_range_names_record() {
    let t = TempDir::new("idx-label");
    idx_set(t.path());
    std::fs::write(t.join("train-labels-idx1-ubyte"), idx_labels(&[0, 12, 4])).unwrap();
    let e = err(&format!("mnist:{}", t.path().display()));
    assert_has(
        &e,
        &["train-labels-idx1-ubyte: record 1: label 12 is out of range"],
    );
}

#[test]
fn idx_count_mismatch() {
    let t = TempDir::new("idx-count");
    idx_set(t.path());
    std::fs::write(t.join("train-labels-idx1-ubyte"), idx_labels(&[0, 1])).unwrap();
    let e = err(&format!("mnist:{}", t.path().display()));
    assert_has(
        &e,
        &[
            "train-labels-idx1-ubyte: 2 labels but",
            "train-images-idx3-ubyte holds 3 images",
        ],
    );
}

#[test]
fn idx_missing_file_and_dir() {
    let t = TempDir::new("idx-missing");
    idx_set(t.path());
    std::fs::remove_file(t.join("t10k-labels-idx1-ubyte.gz")).unwrap();
    let e = err(&format!("mnist:{}", t.path().display()));
    assert_has(
        &e,
        &["t10k-labels-idx1-ubyte: not found (nor t10k-labels-idx1-ubyte.gz)"],
    );
    let e = err(&format!("mnist:{}/nope", t.path().display()));
    assert_has(&e, &["nope: cannot open directory"]);
}

// ----------------------------------------------------------------- CIFAR

fn cifar_records(labels: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    for &l in labels {
        v.push(l);
        v.extend((0..3072).map(|i| (i % 251) as u8));
    }
    v
}

fn cifar_set(dir: &Path) {
    std::fs::write(dir.join("data_batch_1.bin"), cifar_records(&[1, 2])).unwrap();
    std::fs::write(dir.join("data_batch_3.bin"), cifar_records(&[3])).unwrap();
    std::fs::write(dir.join("test_batch.bin"), cifar_records(&[9])).unwrap();
}

#[test]
fn cifar_valid_tiny_set_takes_batches_present_in_order() {
    let t = TempDir::new("cifar-ok");
    cifar_set(t.path());
    let d = load(&format!("cifar10:{}", t.path().display())).unwrap();
    assert_eq!(d.train.labels, vec![1, 2, 3]);
    assert_eq!(d.test.labels, vec![9]);
    assert_eq!(d.classes[0], "airplane");
    assert_eq!(d.train.image(2, d.shape)[..3], [0, 1, 2]);
    std::fs::write(
        t.join("batches.meta.txt"),
        "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n\n",
    )
    .unwrap();
    let d = load(&format!("cifar10:{}", t.path().display())).unwrap();
    assert_eq!(d.classes[9], "j");
}

#[test]
fn cifar_partial_record() {
    let t = TempDir::new("cifar-partial");
    cifar_set(t.path());
    let mut b = cifar_records(&[1, 2, 3]);
    b.truncate(2 * 3073 + 1000);
    std::fs::write(t.join("data_batch_3.bin"), b).unwrap();
    let e = err(&format!("cifar10:{}", t.path().display()));
    assert_has(
        &e,
        &["data_batch_3.bin: 7146 bytes is not a whole number of 3073-byte records (record 2 is truncated)"],
    );
}

#[test]
fn cifar_label_out_of_range() {
    let t = TempDir::new("cifar-label");
    cifar_set(t.path());
    std::fs::write(t.join("test_batch.bin"), cifar_records(&[0, 10])).unwrap();
    let e = err(&format!("cifar10:{}", t.path().display()));
    assert_has(
        &e,
        &["test_batch.bin: record 1: label byte 10 is out of range"],
    );
}

#[test]
fn cifar_missing_files_and_bad_meta() {
    let t = TempDir::new("cifar-missing");
    cifar_set(t.path());
    std::fs::remove_file(t.join("test_batch.bin")).unwrap();
    assert_has(
        &err(&format!("cifar10:{}", t.path().display())),
        &["test_batch.bin: not found"],
    );
    cifar_set(t.path());
    std::fs::remove_file(t.join("data_batch_1.bin")).unwrap();
    std::fs::remove_file(t.join("data_batch_3.bin")).unwrap();
    assert_has(
        &err(&format!("cifar10:{}", t.path().display())),
        &["no data_batch_N.bin"],
    );
    cifar_set(t.path());
    std::fs::write(t.join("batches.meta.txt"), "cat\ndog\n").unwrap();
    assert_has(
        &err(&format!("cifar10:{}", t.path().display())),
        &["batches.meta.txt: 2 class names (expected 10"],
    );
    assert_has(
        &err(&format!("cifar10:{}/absent", t.path().display())),
        &["absent: cannot open directory"],
    );
}

// ---------------------------------------------------------------- folder

fn png(path: &Path, w: u32, h: u32, seed: u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    RgbImage::from_fn(w, h, |x, y| Rgb([seed, x as u8 * 10, y as u8 * 10]))
        .save_with_format(path, image::ImageFormat::Png)
        .unwrap();
}

/// Classes a, b; 2 train + 1 test images each, 4x3 RGB PNGs.
fn folder_set(dir: &Path) {
    for (k, class) in ["a", "b"].iter().enumerate() {
        for i in 0..2 {
            png(
                &dir.join(format!("train/{class}/{i}.png")),
                4,
                3,
                (k * 10 + i) as u8,
            );
        }
        png(
            &dir.join(format!("test/{class}/0.png")),
            4,
            3,
            100 + k as u8,
        );
    }
}

fn no_cache() -> LoadOptions {
    LoadOptions { cache: Cache::Off }
}

fn folder_err(dir: &Path) -> String {
    match load_with(&format!("folder:{}", dir.display()), &no_cache()) {
        Ok(_) => panic!("{} loaded, expected an error", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn folder_valid_tiny_set() {
    let t = TempDir::new("folder-ok");
    folder_set(t.path());
    // A larger image is resized to the first image's size; a hidden file is ignored.
    png(&t.join("test/b/1.jpg"), 8, 6, 7);
    std::fs::write(t.join("train/a/.DS_Store"), b"junk").unwrap();
    let d = load_with(&format!("folder:{}", t.path().display()), &no_cache())
        .unwrap()
        .dataset;
    assert_eq!(d.classes, ["a", "b"]);
    assert_eq!(d.shape, [3, 3, 4]);
    assert_eq!(d.train.labels, vec![0, 0, 1, 1]);
    assert_eq!(d.test.labels, vec![0, 1, 1]);
    // train/b/1.png: R plane all 11, G = 10x, B = 10y.
    let img = d.train.image(3, d.shape);
    assert_eq!(img[..12], [11; 12]);
    assert_eq!(img[12..16], [0, 10, 20, 30]);
    assert_eq!(img[24..], [0, 0, 0, 0, 10, 10, 10, 10, 20, 20, 20, 20]);
    assert_eq!(d.test.image(2, d.shape)[..12], [7; 12]);
}

#[test]
fn folder_grayscale_gives_one_channel() {
    let t = TempDir::new("folder-gray");
    for split in ["train", "test"] {
        for class in ["x", "y"] {
            let p = t.join(&format!("{split}/{class}/0.png"));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            GrayImage::from_fn(2, 2, |x, y| Luma([(x + 2 * y) as u8 * 50]))
                .save(&p)
                .unwrap();
        }
    }
    let d = load_with(&format!("folder:{}", t.path().display()), &no_cache())
        .unwrap()
        .dataset;
    assert_eq!(d.shape, [1, 2, 2]);
    assert_eq!(d.train.image(1, d.shape), &[0, 50, 100, 150]);
}

#[test]
fn folder_unreadable_image_names_it() {
    let t = TempDir::new("folder-bad");
    folder_set(t.path());
    std::fs::write(
        t.join("train/b/0001.jpg"),
        b"\xff\xd8\xff\xe0 not really a jpeg",
    )
    .unwrap();
    let e = folder_err(t.path());
    assert_has(&e, &["train/b/0001.jpg: cannot decode image"]);
}

#[test]
fn folder_empty_class() {
    let t = TempDir::new("folder-empty");
    folder_set(t.path());
    std::fs::create_dir_all(t.join("train/c")).unwrap();
    std::fs::create_dir_all(t.join("test/c")).unwrap();
    png(&t.join("test/c/0.png"), 4, 3, 1);
    let e = folder_err(t.path());
    assert_has(&e, &["train/c: class folder holds no images"]);
}

#[test]
fn folder_test_missing_or_extra_class() {
    let t = TempDir::new("folder-classes");
    folder_set(t.path());
    std::fs::remove_dir_all(t.join("test/b")).unwrap();
    let e = folder_err(t.path());
    assert_has(&e, &["test: missing class folder 'b' (train/ has it)"]);
    folder_set(t.path());
    png(&t.join("test/z/0.png"), 4, 3, 1);
    let e = folder_err(t.path());
    assert_has(&e, &["test/z: class folder not in train/"]);
}

#[test]
fn folder_missing_dirs() {
    let t = TempDir::new("folder-missing");
    let e = folder_err(&t.join("nowhere"));
    assert_has(&e, &["nowhere: cannot open directory"]);
    std::fs::create_dir_all(t.join("train/a")).unwrap();
    let e = folder_err(t.path());
    assert_has(&e, &["/test: not found"]);
}

#[test]
fn folder_cache_hit_invalidate_and_corruption() {
    let t = TempDir::new("folder-cache-data");
    let cache = TempDir::new("folder-cache");
    folder_set(t.path());
    let spec = format!("folder:{}", t.path().display());
    let opts = LoadOptions {
        cache: Cache::Dir(cache.path().to_path_buf()),
    };
    let first = load_with(&spec, &opts).unwrap();
    assert!(!first.from_cache);
    let files: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let second = load_with(&spec, &opts).unwrap();
    assert!(second.from_cache);
    assert_eq!(second.dataset.train, first.dataset.train);
    assert_eq!(second.dataset.test, first.dataset.test);
    assert_eq!(second.dataset.classes, first.dataset.classes);
    assert_eq!(second.dataset.source, spec);

    // Flip one pixel byte in the cache: the checksum catches it.
    let cache_file = &files[0];
    let mut bytes = std::fs::read(cache_file).unwrap();
    let k = bytes.len() - 10;
    bytes[k] ^= 0xff;
    std::fs::write(cache_file, &bytes).unwrap();
    let third = load_with(&spec, &opts).unwrap();
    assert!(!third.from_cache);
    assert!(
        third.notes.iter().any(|n| n.contains("checksum")),
        "{:?}",
        third.notes
    );
    assert_eq!(third.dataset.train, first.dataset.train);
    // It was rewritten, whole.
    assert!(load_with(&spec, &opts).unwrap().from_cache);

    // Truncated.
    let bytes = std::fs::read(cache_file).unwrap();
    std::fs::write(cache_file, &bytes[..bytes.len() / 2]).unwrap();
    let fourth = load_with(&spec, &opts).unwrap();
    assert!(!fourth.from_cache);
    assert_eq!(fourth.dataset.test, first.dataset.test);

    // A new image changes the key: decoded afresh, the stale cache replaced.
    png(&t.join("train/a/2.png"), 4, 3, 55);
    let fifth = load_with(&spec, &opts).unwrap();
    assert!(!fifth.from_cache);
    assert_eq!(fifth.dataset.train.len(), 5);
    let files: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "stale cache kept: {files:?}");
    assert_ne!(&files[0], cache_file);
}

#[test]
fn folder_unwritable_cache_dir_is_a_note() {
    let t = TempDir::new("folder-nocache");
    folder_set(t.path());
    // A cache "directory" below a regular file can never be created.
    let blocker = t.join("blocker");
    std::fs::write(&blocker, b"").unwrap();
    let opts = LoadOptions {
        cache: Cache::Dir(blocker.join("cache")),
    };
    let l = load_with(&format!("folder:{}", t.path().display()), &opts).unwrap();
    assert!(!l.from_cache);
    assert_eq!(l.dataset.train.len(), 4);
    assert!(
        l.notes
            .iter()
            .any(|n| n.contains("could not write the image cache")),
        "{:?}",
        l.notes
    );
}

/// Issue 15, item 9: one small image sorted first no longer sets the size of
/// all (the size most images have does); a folder inside a class folder is
/// an error naming it, not images silently left out.
#[test]
fn folder_size_is_the_common_one_and_nested_folders_are_named() {
    let t = TempDir::new("folder-odd-first");
    folder_set(t.path());
    // Sorted first in train/a, and smaller than the rest.
    png(&t.join("train/a/!small.png"), 2, 2, 9);
    let d = load_with(&format!("folder:{}", t.path().display()), &no_cache())
        .unwrap()
        .dataset;
    assert_eq!(d.shape, [3, 3, 4], "the common size, not the first image's");
    assert_eq!(d.train.labels.len(), 5);

    let t = TempDir::new("folder-nested");
    folder_set(t.path());
    png(&t.join("train/a/more/0.png"), 4, 3, 1);
    assert_has(&folder_err(t.path()), &["more", "inside a class folder"]);
}
