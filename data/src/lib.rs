//! Datasets: loaders for the standard formats, per-channel statistics,
//! augmentation and batching. Pure Rust over bytes; the runtime turns
//! batches into tensors.

#![forbid(unsafe_code)]

use std::fmt;
use std::path::{Path, PathBuf};

mod augment;
mod augment_config;
mod cifar;
mod folder;
mod grid;
mod idx;
mod image_file;
mod loader;
pub mod memory;
mod mix;
pub mod ops;
mod pca;
mod pipeline;
mod stats;
mod subset;
mod synthetic;

pub use augment::{batch_rng, epoch_order, mix_rng, Batch};
pub use augment_config::{
    AugmentConfig, ColorJitterConfig, RandAugmentConfig, RandomResizedCropConfig, ScaleJitterConfig,
};
pub use grid::{grid, save_png};
pub use image_file::load_image;
pub use loader::{num_batches, Loader};
pub use mix::{cutmix, cutmix_box, mixup, BatchMix, MixedBatch};
pub use ops::Image;
pub use pca::{pca_lighting, symmetric_eigen3, Pca};
pub use pipeline::{
    color_jitter, cutout, make_batch, rand_augment, rrc_params, scale_jitter, Pipeline, RandOp,
    Transform,
};
pub use stats::Normalization;
pub use subset::Subset;

/// The schemes `load` understands, for error messages.
pub const SCHEMES: &[&str] = &["cifar10", "mnist", "fashion-mnist", "folder", "synthetic"];

/// A loaded dataset: both splits in memory as CHW bytes.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// The spec as given, e.g. "mnist:../shared/data/mnist".
    pub source: String,
    pub classes: Vec<String>,
    /// C, H, W of every image.
    pub shape: [usize; 3],
    pub train: Split,
    pub test: Split,
}

impl Dataset {
    pub fn num_classes(&self) -> usize {
        self.classes.len()
    }

    /// Bytes per image (C*H*W).
    pub fn image_len(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Images (N*C*H*W bytes, each image CHW planar) and their labels.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Split {
    pub images: Vec<u8>,
    pub labels: Vec<u32>,
}

impl Split {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Image `i` as CHW bytes. Panics if `i` is out of range.
    pub fn image(&self, i: usize, shape: [usize; 3]) -> &[u8] {
        let n = shape[0] * shape[1] * shape[2];
        &self.images[i * n..(i + 1) * n]
    }

    /// How many examples carry each label, for labels `0..num_classes`.
    pub fn label_counts(&self, num_classes: usize) -> Vec<usize> {
        let mut counts = vec![0; num_classes];
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(l as usize) {
                *c += 1;
            }
        }
        counts
    }
}

// Printing megabytes of pixels helps nobody.
impl fmt::Debug for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Split")
            .field("len", &self.len())
            .field("image_bytes", &self.images.len())
            .finish()
    }
}

/// Something wrong with a dataset: the file (or folder) at fault and what
/// is wrong with it; the message names the record or image where one is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataError {
    pub path: Option<PathBuf>,
    pub message: String,
}

impl DataError {
    pub fn new(message: impl Into<String>) -> Self {
        DataError {
            path: None,
            message: message.into(),
        }
    }

    pub fn at(path: impl AsRef<Path>, message: impl Into<String>) -> Self {
        DataError {
            path: Some(path.as_ref().to_path_buf()),
            message: message.into(),
        }
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(p) => write!(f, "{}: {}", p.display(), self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for DataError {}

/// Where the folder loader keeps its decoded cache.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Cache {
    /// `$CNNCOST_CACHE`, else `$XDG_CACHE_HOME/cnncost`, else `$HOME/.cache/cnncost`.
    #[default]
    Env,
    /// This directory (created if missing).
    Dir(PathBuf),
    /// Never read or write a cache.
    Off,
}

/// Options for [`load_with`].
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    pub cache: Cache,
}

/// A dataset plus what happened while loading it.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub dataset: Dataset,
    /// True when the decoded images came from the cache.
    pub from_cache: bool,
    /// Things worth telling the user but not fatal, e.g. a cache that could not be written.
    pub notes: Vec<String>,
}

/// Loads a dataset from a spec such as "mnist:DIR", "cifar10:DIR",
/// "fashion-mnist:DIR", "folder:DIR" or "synthetic:N", optionally followed by
/// `?classes=NAME,...&train=FRACTION` to keep part of it (see [`Subset`]).
pub fn load(spec: &str) -> Result<Dataset, DataError> {
    load_with(spec, &LoadOptions::default()).map(|l| l.dataset)
}

/// [`load`] with explicit options (cache location).
pub fn load_with(spec: &str, opts: &LoadOptions) -> Result<Loaded, DataError> {
    let Some((scheme, arg)) = spec.split_once(':') else {
        return Err(DataError::new(format!(
            "dataset '{spec}' has no scheme: write SCHEME:ARG with SCHEME one of {} (e.g. mnist:data/mnist, synthetic:1000)",
            SCHEMES.join(", ")
        )));
    };
    let (arg, subset) = match arg.split_once('?') {
        Some((arg, query)) => (arg, Some(Subset::parse(query)?)),
        None => (arg, None),
    };
    let plain = |dataset: Result<Dataset, DataError>| {
        dataset.map(|dataset| Loaded {
            dataset,
            from_cache: false,
            notes: Vec::new(),
        })
    };
    let mut loaded = match scheme {
        "cifar10" => plain(cifar::load(Path::new(arg)))?,
        "mnist" => plain(idx::load(Path::new(arg), idx::Kind::Mnist))?,
        "fashion-mnist" => plain(idx::load(Path::new(arg), idx::Kind::Fashion))?,
        "folder" => folder::load(Path::new(arg), &opts.cache)?,
        "synthetic" => plain(synthetic::load(arg))?,
        _ => {
            return Err(DataError::new(format!(
                "dataset '{spec}': unknown scheme '{scheme}': use one of {}",
                SCHEMES.join(", ")
            )))
        }
    };
    if let Some(subset) = subset {
        loaded.dataset = subset.apply(loaded.dataset)?;
    }
    loaded.dataset.source = spec.to_string();
    Ok(loaded)
}

/// Checks a directory argument exists, so a typo reads as such rather than
/// as a missing file inside it.
fn require_dir(dir: &Path, what: &str) -> Result<(), DataError> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(DataError::at(
            dir,
            format!("not a directory (expected a directory holding {what})"),
        )),
        Err(e) => Err(DataError::at(
            dir,
            format!("cannot open directory: {e} (expected a directory holding {what})"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_without_scheme_lists_schemes() {
        let e = load("../data/mnist").unwrap_err().to_string();
        assert!(e.contains("no scheme"), "{e}");
        for s in SCHEMES {
            assert!(e.contains(s), "{e}");
        }
    }

    #[test]
    fn unknown_scheme_lists_schemes() {
        let e = load("imagenet:/x").unwrap_err().to_string();
        assert!(e.contains("unknown scheme 'imagenet'"), "{e}");
        assert!(
            e.contains("cifar10, mnist, fashion-mnist, folder, synthetic"),
            "{e}"
        );
    }

    #[test]
    fn spec_options_select_part_of_the_data() {
        let all = load("synthetic:40").unwrap();
        let part = load("synthetic:40?classes=1,0&train=0.5").unwrap();
        assert_eq!(
            part.classes,
            vec![all.classes[1].clone(), all.classes[0].clone()]
        );
        assert_eq!(part.source, "synthetic:40?classes=1,0&train=0.5");
        let want_test = all.test.labels.iter().filter(|&&l| l < 2).count();
        assert_eq!(part.test.len(), want_test);
        let per_class = all.train.label_counts(2);
        let got = part.train.label_counts(2);
        assert_eq!(got[0], (per_class[1] as f64 * 0.5).round() as usize);
        assert_eq!(got[1], (per_class[0] as f64 * 0.5).round() as usize);
        let e = load("synthetic:40?train=2").unwrap_err().to_string();
        assert!(e.contains("(0, 1]"), "{e}");
    }

    #[test]
    fn split_accessors() {
        let s = Split {
            images: (0..12).collect(),
            labels: vec![0, 1],
        };
        assert_eq!(s.len(), 2);
        assert!(!s.is_empty());
        assert_eq!(s.image(1, [2, 1, 3]), &[6, 7, 8, 9, 10, 11]);
        assert_eq!(s.label_counts(3), vec![1, 1, 0]);
        assert!(Split::default().is_empty());
    }
}
