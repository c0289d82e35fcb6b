//! MNIST and Fashion-MNIST in IDX format, plain or gzipped.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::{require_dir, DataError, Dataset, Split};

const IMAGES_MAGIC: u32 = 2051;
const LABELS_MAGIC: u32 = 2049;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Mnist,
    Fashion,
}

const FASHION_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

pub(crate) fn load(dir: &Path, kind: Kind) -> Result<Dataset, DataError> {
    require_dir(dir, "the IDX files (train-images-idx3-ubyte[.gz], ...)")?;
    let (train, train_hw) = load_split(dir, "train")?;
    let (test, test_hw) = load_split(dir, "t10k")?;
    if train_hw != test_hw {
        return Err(DataError::at(
            dir,
            format!(
                "training images are {}x{} but test images are {}x{}",
                train_hw.0, train_hw.1, test_hw.0, test_hw.1
            ),
        ));
    }
    let classes = match kind {
        Kind::Mnist => (0..10).map(|d| d.to_string()).collect(),
        Kind::Fashion => FASHION_CLASSES.iter().map(|s| s.to_string()).collect(),
    };
    Ok(Dataset {
        source: String::new(),
        classes,
        shape: [1, train_hw.0, train_hw.1],
        train,
        test,
    })
}

fn load_split(dir: &Path, prefix: &str) -> Result<(Split, (usize, usize)), DataError> {
    let (img_path, img_bytes) = read_idx_file(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let (images, n_images, rows, cols) = parse_images(&img_path, img_bytes)?;
    let (lbl_path, lbl_bytes) = read_idx_file(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let labels = parse_labels(&lbl_path, &lbl_bytes)?;
    if labels.len() != n_images {
        return Err(DataError::at(
            &lbl_path,
            format!(
                "{} labels but {} holds {} images: the two files must come from the same set",
                labels.len(),
                img_path.display(),
                n_images
            ),
        ));
    }
    Ok((Split { images, labels }, (rows, cols)))
}

/// Reads `dir/name`, else `dir/name.gz`; gunzips by content (gzip magic),
/// so a gzipped file without the suffix works too.
fn read_idx_file(dir: &Path, name: &str) -> Result<(PathBuf, Vec<u8>), DataError> {
    let plain = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    let path = if plain.is_file() {
        plain
    } else if gz.is_file() {
        gz
    } else {
        return Err(DataError::at(
            &plain,
            format!("not found (nor {name}.gz): put the IDX files of the set in this directory"),
        ));
    };
    let raw =
        std::fs::read(&path).map_err(|e| DataError::at(&path, format!("cannot read: {e}")))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        // The gzip trailer's ISIZE (size mod 2^32) sizes the buffer once, so
        // the images Vec neither regrows nor keeps slack; capped at deflate's
        // maximum ratio in case the trailer is garbage.
        let isize_hint = raw.len().checked_sub(4).map_or(0, |k| {
            u32::from_le_bytes([raw[k], raw[k + 1], raw[k + 2], raw[k + 3]]) as usize
        });
        let mut out = Vec::with_capacity(isize_hint.min(raw.len().saturating_mul(1032)));
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| {
                DataError::at(
                    &path,
                    format!("cannot decompress (gzip): {e}: the download is probably incomplete"),
                )
            })?;
        out.shrink_to_fit();
        Ok((path, out))
    } else {
        Ok((path, raw))
    }
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn check_magic(path: &Path, bytes: &[u8], want: u32) -> Result<(), DataError> {
    let header = if want == IMAGES_MAGIC { 16 } else { 8 };
    if bytes.len() < 4 {
        return Err(DataError::at(
            path,
            format!(
                "file is {} bytes, shorter than the {header}-byte IDX header",
                bytes.len()
            ),
        ));
    }
    let magic = be_u32(bytes, 0);
    if magic == want {
        return Ok(());
    }
    let (what, hint) = if want == IMAGES_MAGIC {
        ("an IDX image file", "is this a labels file?")
    } else {
        ("an IDX label file", "is this an images file?")
    };
    let other = if want == IMAGES_MAGIC {
        LABELS_MAGIC
    } else {
        IMAGES_MAGIC
    };
    let hint = if magic == other {
        hint
    } else {
        "not an IDX file of unsigned bytes"
    };
    Err(DataError::at(
        path,
        format!("wrong magic number {magic} (expected {want} for {what}): {hint}"),
    ))
}

fn parse_images(
    path: &Path,
    mut bytes: Vec<u8>,
) -> Result<(Vec<u8>, usize, usize, usize), DataError> {
    check_magic(path, &bytes, IMAGES_MAGIC)?;
    if bytes.len() < 16 {
        return Err(DataError::at(
            path,
            format!(
                "file is {} bytes, shorter than the 16-byte IDX header",
                bytes.len()
            ),
        ));
    }
    let n = be_u32(&bytes, 4) as usize;
    let rows = be_u32(&bytes, 8) as usize;
    let cols = be_u32(&bytes, 12) as usize;
    if rows == 0 || cols == 0 {
        return Err(DataError::at(
            path,
            format!("header gives images of {rows}x{cols} pixels: the file is corrupt"),
        ));
    }
    let per = rows * cols;
    let body = bytes.len() - 16;
    let need = n.checked_mul(per).ok_or_else(|| {
        DataError::at(
            path,
            format!("header count {n} of {rows}x{cols} images is absurd: the file is corrupt"),
        )
    })?;
    if body < need {
        return Err(DataError::at(
            path,
            format!(
                "truncated: the header promises {n} images of {rows}x{cols} ({need} bytes after the header) but the file has {body} (image {} is incomplete): download it again",
                body / per
            ),
        ));
    }
    if body > need {
        return Err(DataError::at(
            path,
            format!(
                "{} bytes after image {} (the header says {n} images of {rows}x{cols}): the file is corrupt",
                body - need,
                n.saturating_sub(1)
            ),
        ));
    }
    bytes.drain(..16);
    Ok((bytes, n, rows, cols))
}

fn parse_labels(path: &Path, bytes: &[u8]) -> Result<Vec<u32>, DataError> {
    check_magic(path, bytes, LABELS_MAGIC)?;
    if bytes.len() < 8 {
        return Err(DataError::at(
            path,
            format!(
                "file is {} bytes, shorter than the 8-byte IDX header",
                bytes.len()
            ),
        ));
    }
    let n = be_u32(bytes, 4) as usize;
    let body = &bytes[8..];
    if body.len() < n {
        return Err(DataError::at(
            path,
            format!(
                "truncated: the header promises {n} labels but the file holds {} (label {} is missing): download it again",
                body.len(),
                body.len()
            ),
        ));
    }
    if body.len() > n {
        return Err(DataError::at(
            path,
            format!(
                "{} bytes after label {} (the header says {n} labels): the file is corrupt",
                body.len() - n,
                n.saturating_sub(1)
            ),
        ));
    }
    if let Some(i) = body.iter().position(|&l| l > 9) {
        return Err(DataError::at(
            path,
            format!(
                "record {i}: label {} is out of range (expected 0..=9)",
                body[i]
            ),
        ));
    }
    Ok(body.iter().map(|&l| l as u32).collect())
}
