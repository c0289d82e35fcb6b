//! CIFAR-10 in the official binary format.

use std::path::Path;

use crate::{require_dir, DataError, Dataset, Split};

const RECORD: usize = 1 + 3 * 32 * 32;
const STANDARD_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

pub(crate) fn load(dir: &Path) -> Result<Dataset, DataError> {
    require_dir(
        dir,
        "CIFAR-10 binary batches (data_batch_N.bin, test_batch.bin)",
    )?;
    let classes = read_classes(dir)?;
    let mut train = Split::default();
    let mut any = false;
    for n in 1..=5 {
        let path = dir.join(format!("data_batch_{n}.bin"));
        if path.is_file() {
            read_batch(&path, &mut train)?;
            any = true;
        }
    }
    if !any {
        return Err(DataError::at(
            dir,
            "no data_batch_N.bin (N = 1..5) here: put the CIFAR-10 binary version's files in this directory",
        ));
    }
    let test_path = dir.join("test_batch.bin");
    if !test_path.is_file() {
        return Err(DataError::at(
            &test_path,
            "not found: the CIFAR-10 test batch is needed too",
        ));
    }
    let mut test = Split::default();
    read_batch(&test_path, &mut test)?;
    Ok(Dataset {
        source: String::new(),
        classes,
        shape: [3, 32, 32],
        train,
        test,
    })
}

fn read_classes(dir: &Path) -> Result<Vec<String>, DataError> {
    let path = dir.join("batches.meta.txt");
    if !path.exists() {
        return Ok(STANDARD_CLASSES.iter().map(|s| s.to_string()).collect());
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| DataError::at(&path, format!("cannot read: {e}")))?;
    let names: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if names.len() != 10 {
        return Err(DataError::at(
            &path,
            format!(
                "{} class names (expected 10, one per line): fix or delete the file",
                names.len()
            ),
        ));
    }
    Ok(names)
}

/// Appends one batch file's records to `split`. The pixel bytes are
/// already CHW planar, so each record copies straight in.
fn read_batch(path: &Path, split: &mut Split) -> Result<(), DataError> {
    let bytes =
        std::fs::read(path).map_err(|e| DataError::at(path, format!("cannot read: {e}")))?;
    if bytes.is_empty() {
        return Err(DataError::at(
            path,
            "empty file: expected 3073-byte records",
        ));
    }
    if bytes.len() % RECORD != 0 {
        return Err(DataError::at(
            path,
            format!(
                "{} bytes is not a whole number of {RECORD}-byte records (record {} is truncated)",
                bytes.len(),
                bytes.len() / RECORD
            ),
        ));
    }
    let n = bytes.len() / RECORD;
    split.images.reserve(n * (RECORD - 1));
    split.labels.reserve(n);
    for (i, rec) in bytes.chunks_exact(RECORD).enumerate() {
        if rec[0] > 9 {
            return Err(DataError::at(
                path,
                format!(
                    "record {i}: label byte {} is out of range (expected 0..=9): is this a CIFAR-100 file?",
                    rec[0]
                ),
            ));
        }
        split.labels.push(rec[0] as u32);
        split.images.extend_from_slice(&rec[1..]);
    }
    Ok(())
}
