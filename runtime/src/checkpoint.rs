//! Checkpoints: one safetensors file holding the model's weights and
//! buffers under their dotted (state-dict) names, the optimiser's state
//! under `optim.<param>.<state>`, and in the header's metadata everything
//! else a resumed run needs (epoch, step, seed, normalisation statistics,
//! classes, the training settings, a hash of the network source).
//!
//! Every write is atomic: the file is written beside its destination under
//! a temporary name, flushed, then renamed over it, so a crash never leaves
//! a half-written checkpoint in place of the last good one.

use crate::config::TrainConfig;
use crate::error::{Error, Result};
use candle_core::{Device, Tensor};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The metadata value that marks a file as a cnncost checkpoint.
pub const FORMAT: &str = "cnncost-checkpoint-1";

/// A loaded weights file: its tensors and, for our own checkpoints, metadata.
pub struct Checkpoint {
    pub path: PathBuf,
    pub tensors: HashMap<String, Tensor>,
    /// Every field `None` for a plain state dict from elsewhere.
    pub meta: CheckpointMeta,
}

/// What a checkpoint's header says besides its tensors. On disk each field
/// is one key of the safetensors `__metadata__` string map (`format`,
/// `network`, `source_hash` and `data` as plain text, the others as JSON),
/// so files written before this type existed read back the same. A field
/// is `None` when the file lacks its key.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CheckpointMeta {
    /// [`FORMAT`] for our checkpoints.
    pub format: Option<String>,
    /// The network's name.
    pub network: Option<String>,
    /// [`source_hash`] of the network source it was trained from.
    pub source_hash: Option<String>,
    /// Epochs done.
    pub epoch: Option<u64>,
    /// Training steps done.
    pub step: Option<u64>,
    /// The optimiser's own step count (its bias corrections).
    pub optimizer_steps: Option<u64>,
    pub seed: Option<u64>,
    /// The normalisation statistics the weights were trained with.
    pub mean: Option<Vec<f32>>,
    pub std: Option<Vec<f32>>,
    pub classes: Option<Vec<String>>,
    /// C, H, W of one input image.
    pub input: Option<Vec<usize>>,
    /// The dataset spec (`cifar10:DIR`).
    pub data: Option<String>,
    pub config: Option<TrainConfig>,
}

impl CheckpointMeta {
    /// The header's string map: one key per present field.
    fn to_map(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        let mut text = |key: &str, v: &Option<String>| {
            if let Some(v) = v {
                m.insert(key.to_string(), v.clone());
            }
        };
        text("format", &self.format);
        text("network", &self.network);
        text("source_hash", &self.source_hash);
        text("data", &self.data);
        put_json(&mut m, "epoch", &self.epoch);
        put_json(&mut m, "step", &self.step);
        put_json(&mut m, "optimizer_steps", &self.optimizer_steps);
        put_json(&mut m, "seed", &self.seed);
        put_json(&mut m, "mean", &self.mean);
        put_json(&mut m, "std", &self.std);
        put_json(&mut m, "classes", &self.classes);
        put_json(&mut m, "input", &self.input);
        put_json(&mut m, "config", &self.config);
        m
    }

    /// Reads the header's string map; a key that is there but does not
    /// parse is an error naming it.
    fn from_map(path: &Path, m: &BTreeMap<String, String>) -> Result<CheckpointMeta> {
        let text = |key: &str| m.get(key).cloned();
        Ok(CheckpointMeta {
            format: text("format"),
            network: text("network"),
            source_hash: text("source_hash"),
            data: text("data"),
            epoch: parse_json(path, m, "epoch")?,
            step: parse_json(path, m, "step")?,
            optimizer_steps: parse_json(path, m, "optimizer_steps")?,
            seed: parse_json(path, m, "seed")?,
            mean: parse_json(path, m, "mean")?,
            std: parse_json(path, m, "std")?,
            classes: parse_json(path, m, "classes")?,
            input: parse_json(path, m, "input")?,
            config: parse_json(path, m, "config")?,
        })
    }
}

/// `v` as JSON under `key`, if present.
fn put_json<T: Serialize>(m: &mut BTreeMap<String, String>, key: &str, v: &Option<T>) {
    if let Some(v) = v {
        m.insert(
            key.to_string(),
            serde_json::to_string(v).unwrap_or_default(),
        );
    }
}

/// The JSON value under `key`, if the map has it.
fn parse_json<T: DeserializeOwned>(
    path: &Path,
    m: &BTreeMap<String, String>,
    key: &str,
) -> Result<Option<T>> {
    m.get(key)
        .map(|text| {
            serde_json::from_str(text)
                .map_err(|e| Error::checkpoint(path, format!("`{key}` is malformed ({e})")))
        })
        .transpose()
}

impl Checkpoint {
    pub fn is_ours(&self) -> bool {
        self.meta.format.as_deref() == Some(FORMAT)
    }

    /// A metadata field the caller cannot do without: an error naming the
    /// file and `key` when it is missing.
    pub fn required<'a, T>(&self, field: &'a Option<T>, key: &str) -> Result<&'a T> {
        field
            .as_ref()
            .ok_or_else(|| Error::checkpoint(&self.path, format!("the checkpoint has no `{key}`")))
    }
}

/// 64-bit FNV-1a: a stable fingerprint of the network source, so a resume
/// can tell that the file describes the same network.
pub fn source_hash(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Writes `tensors` and `meta` to `path` atomically.
pub fn save(path: &Path, tensors: &[(String, Tensor)], meta: &CheckpointMeta) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("checkpoint");
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let views: Vec<(&str, &Tensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let meta: HashMap<String, String> = meta.to_map().into_iter().collect();
    let bytes = safetensors::tensor::serialize(views, Some(meta))
        .map_err(|e| Error::checkpoint(path, format!("cannot serialise the checkpoint: {e}")))?;
    let bytes = with_sorted_metadata(bytes)
        .map_err(|e| Error::checkpoint(path, format!("cannot serialise the checkpoint: {e}")))?;
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, "cannot write the checkpoint")(e)
    })
}

/// The header key of the tensor data's checksum.
pub const CHECKSUM: &str = "data_crc32";

/// The CRC-32 of a checkpoint's tensor data, as its header stores it.
fn data_checksum(data: &[u8]) -> String {
    format!("{:08x}", crc32fast::hash(data))
}

/// The same file with its `__metadata__` keys in sorted order (safetensors
/// writes them in a `HashMap`'s random order, and one seed must give one
/// checkpoint, byte for byte), and the tensor data's checksum added.
fn with_sorted_metadata(bytes: Vec<u8>) -> std::result::Result<Vec<u8>, String> {
    let n = u64::from_le_bytes(bytes[..8].try_into().map_err(|_| "short header")?) as usize;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + n]).map_err(|e| e.to_string())?;
    let checksum = serde_json::Value::String(data_checksum(&bytes[8 + n..]));
    let mut sorted = serde_json::Map::new();
    for (k, v) in header {
        let v = match (k.as_str(), v) {
            ("__metadata__", serde_json::Value::Object(m)) => {
                let mut m: BTreeMap<String, serde_json::Value> = m.into_iter().collect();
                m.insert(CHECKSUM.to_string(), checksum.clone());
                serde_json::Value::Object(m.into_iter().collect())
            }
            (_, v) => v,
        };
        sorted.insert(k, v);
    }
    let mut text = serde_json::to_vec(&sorted).map_err(|e| e.to_string())?;
    // The data must start 8-byte aligned, as safetensors pads it.
    text.resize(text.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + text.len() + bytes.len() - 8 - n);
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(&text);
    out.extend_from_slice(&bytes[8 + n..]);
    Ok(out)
}

/// Reads a weights file: our checkpoints and plain state dicts in
/// safetensors, or PyTorch `.pth`/`.pt` pickles (as candle reads them).
/// A directory means its `checkpoint.safetensors`.
pub fn load(path: &Path) -> Result<Checkpoint> {
    load_with(path, false)
}

/// [`load`], and with `allow_nonfinite` (`--allow-nonfinite`) weights that
/// are NaN or infinite are let through instead of refused.
pub fn load_with(path: &Path, allow_nonfinite: bool) -> Result<Checkpoint> {
    let c = read_file(path)?;
    if !allow_nonfinite {
        refuse_nonfinite(&c)?;
    }
    Ok(c)
}

/// The first tensor (by name) holding NaN or infinite values is an error:
/// evaluating or training on from it gives silently wrong results.
fn refuse_nonfinite(c: &Checkpoint) -> Result<()> {
    let mut names: Vec<&String> = c.tensors.keys().collect();
    names.sort();
    for name in names {
        let t = &c.tensors[name];
        if !t.dtype().is_float() {
            continue;
        }
        let values = t
            .flatten_all()
            .and_then(|v| v.to_dtype(candle_core::DType::F64))
            .and_then(|v| v.to_vec1::<f64>())
            .map_err(|e| Error::checkpoint(&c.path, format!("{name}: {e}")))?;
        let bad = values.iter().filter(|v| !v.is_finite()).count();
        if bad > 0 {
            return Err(Error::checkpoint(
                &c.path,
                format!(
                    "{name} has {bad} NaN or infinite value(s) of {}: these weights would give wrong results; \
                     retrain from an earlier checkpoint, or pass --allow-nonfinite to load them anyway",
                    values.len()
                ),
            ));
        }
    }
    Ok(())
}

fn read_file(path: &Path) -> Result<Checkpoint> {
    let path = if path.is_dir() {
        path.join("checkpoint.safetensors")
    } else {
        path.to_path_buf()
    };
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if ext == "pth" || ext == "pt" || ext == "bin" {
        let tensors = candle_core::pickle::read_all(&path)
            .map_err(|e| Error::checkpoint(&path, format!("cannot read as a PyTorch file: {e}")))?;
        return Ok(Checkpoint {
            path,
            tensors: tensors.into_iter().collect(),
            meta: CheckpointMeta::default(),
        });
    }
    let bytes = std::fs::read(&path).map_err(Error::io(&path, "cannot read"))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| {
        Error::checkpoint(&path, format!("not a safetensors file, or a damaged one ({e}); give a checkpoint written by `cnncost train`, a safetensors state dict, or a `.pth` file"))
    })?;
    let meta: BTreeMap<String, String> = header
        .metadata()
        .clone()
        .map(|m| m.into_iter().collect())
        .unwrap_or_default();
    if let Some(stored) = meta.get(CHECKSUM) {
        let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap_or_default()) as usize;
        let found = data_checksum(bytes.get(8 + header_len..).unwrap_or_default());
        if *stored != found {
            return Err(Error::checkpoint(
                &path,
                format!(
                    "damaged: its tensor data's checksum is {found}, not the {stored} it was written with \
                     (the file changed after it was written); use an earlier checkpoint or snapshot"
                ),
            ));
        }
    }
    let meta = CheckpointMeta::from_map(&path, &meta)?;
    let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
        .map_err(|e| Error::checkpoint(&path, format!("damaged tensor data ({e})")))?;
    Ok(Checkpoint {
        path,
        tensors,
        meta,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_checkpoint_reads_back_with_its_metadata() {
        let dir = std::env::temp_dir().join(format!("cnncost-ckpt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.safetensors");
        let t = Tensor::new(&[1f32, 2., 3.], &Device::Cpu).unwrap();
        let meta = CheckpointMeta {
            format: Some(FORMAT.to_string()),
            epoch: Some(3),
            ..CheckpointMeta::default()
        };
        save(&path, &[("fc.bias".to_string(), t)], &meta).unwrap();
        let c = load(&path).unwrap();
        assert!(c.is_ours());
        assert_eq!(c.meta.epoch, Some(3));
        assert_eq!(c.meta, meta);
        assert_eq!(
            c.tensors["fc.bias"].to_vec1::<f32>().unwrap(),
            vec![1., 2., 3.]
        );
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        // A damaged file is an error that names it, not a panic.
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let e = load(&path).err().unwrap().to_string();
        assert!(e.contains("c.safetensors"), "{e}");
        std::fs::write(&path, b"garbage").unwrap();
        let e = load(&path).err().unwrap().to_string();
        assert!(e.contains("not a safetensors file"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_source_hash_is_fnv1a() {
        // FNV-1a 64 test vectors (Fowler, Noll, Vo: "" and "a").
        assert_eq!(source_hash(""), "cbf29ce484222325");
        assert_eq!(source_hash("a"), "af63dc4c8601ec8c");
    }
}
