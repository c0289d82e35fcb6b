//! Checkpoints: one safetensors file holding the model's weights and
//! buffers under their dotted (state-dict) names, the optimiser's state
//! under `optim.<param>.<state>`, and in the header's metadata everything
//! else a resumed run needs (epoch, step, seed, normalisation statistics,
//! classes, the training settings, a hash of the network source).
//!
//! Every write is atomic: the file is written beside its destination under
//! a temporary name, flushed, then renamed over it, so a crash never leaves
//! a half-written checkpoint in place of the last good one.

use candle_core::{Device, Tensor};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The metadata key that marks a file as a cnncost checkpoint.
pub const FORMAT: &str = "cnncost-checkpoint-1";

/// A loaded weights file: its tensors and, for our own checkpoints, metadata.
pub struct Checkpoint {
    pub path: PathBuf,
    pub tensors: HashMap<String, Tensor>,
    /// Empty for a plain state dict from elsewhere.
    pub meta: BTreeMap<String, String>,
}

impl Checkpoint {
    pub fn is_ours(&self) -> bool {
        self.meta.get("format").map(String::as_str) == Some(FORMAT)
    }
    /// A metadata value parsed as JSON into `T`.
    pub fn meta_json<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<T, String> {
        let text = self
            .meta
            .get(key)
            .ok_or_else(|| format!("{}: the checkpoint has no `{key}`", self.path.display()))?;
        serde_json::from_str(text)
            .map_err(|e| format!("{}: `{key}` is malformed ({e})", self.path.display()))
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
pub fn save(
    path: &Path,
    tensors: &[(String, Tensor)],
    meta: &BTreeMap<String, String>,
) -> Result<(), String> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("checkpoint");
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let views: Vec<(&str, &Tensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let meta: HashMap<String, String> = meta.clone().into_iter().collect();
    let bytes = safetensors::tensor::serialize(views, Some(meta))
        .map_err(|e| format!("{}: cannot serialise the checkpoint: {e}", path.display()))?;
    let bytes = with_sorted_metadata(bytes)
        .map_err(|e| format!("{}: cannot serialise the checkpoint: {e}", path.display()))?;
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("{}: cannot write the checkpoint: {e}", path.display())
    })
}

/// The same file with its `__metadata__` keys in sorted order: safetensors
/// writes them in a `HashMap`'s random order, and one seed must give one
/// checkpoint, byte for byte.
fn with_sorted_metadata(bytes: Vec<u8>) -> Result<Vec<u8>, String> {
    let n = u64::from_le_bytes(bytes[..8].try_into().map_err(|_| "short header")?) as usize;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + n]).map_err(|e| e.to_string())?;
    let mut sorted = serde_json::Map::new();
    for (k, v) in header {
        let v = match (k.as_str(), v) {
            ("__metadata__", serde_json::Value::Object(m)) => {
                let m: BTreeMap<String, serde_json::Value> = m.into_iter().collect();
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
pub fn load(path: &Path) -> Result<Checkpoint, String> {
    let path = if path.is_dir() {
        path.join("checkpoint.safetensors")
    } else {
        path.to_path_buf()
    };
    let shown = path.display().to_string();
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if ext == "pth" || ext == "pt" || ext == "bin" {
        let tensors = candle_core::pickle::read_all(&path)
            .map_err(|e| format!("{shown}: cannot read as a PyTorch file: {e}"))?;
        return Ok(Checkpoint {
            path,
            tensors: tensors.into_iter().collect(),
            meta: BTreeMap::new(),
        });
    }
    let bytes = std::fs::read(&path).map_err(|e| format!("{shown}: cannot read: {e}"))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| {
        format!("{shown}: not a safetensors file, or a damaged one ({e}); give a checkpoint written by `cnncost train`, a safetensors state dict, or a `.pth` file")
    })?;
    let meta: BTreeMap<String, String> = header
        .metadata()
        .clone()
        .map(|m| m.into_iter().collect())
        .unwrap_or_default();
    let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
        .map_err(|e| format!("{shown}: damaged tensor data ({e})"))?;
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
        let mut meta = BTreeMap::new();
        meta.insert("format".to_string(), FORMAT.to_string());
        meta.insert("epoch".to_string(), "3".to_string());
        save(&path, &[("fc.bias".to_string(), t)], &meta).unwrap();
        let c = load(&path).unwrap();
        assert!(c.is_ours());
        assert_eq!(c.meta_json::<u64>("epoch").unwrap(), 3);
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
        let e = load(&path).err().unwrap();
        assert!(e.contains("c.safetensors"), "{e}");
        std::fs::write(&path, b"garbage").unwrap();
        let e = load(&path).err().unwrap();
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
