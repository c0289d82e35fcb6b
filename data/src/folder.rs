//! Image folders (DIR/train/<class>/*, DIR/test/<class>/*) with a decoded cache.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::UNIX_EPOCH;

use crate::image_file::{decode, fit_exact, is_grayscale, write_chw};
use crate::{require_dir, Cache, DataError, Dataset, Loaded, Split};

const CACHE_MAGIC: &[u8; 8] = b"CNNCDSET";
const CACHE_VERSION: u32 = 1;
/// Images handed to a worker at a time: big enough to amortise the lock,
/// small enough to balance two cores.
const CHUNK: usize = 32;

struct Entry {
    path: PathBuf,
    label: u32,
    size: u64,
    mtime_ns: u128,
}

struct Listing {
    classes: Vec<String>,
    train: Vec<Entry>,
    test: Vec<Entry>,
}

pub(crate) fn load(dir: &Path, cache: &Cache) -> Result<Loaded, DataError> {
    require_dir(dir, "train/<class>/ and test/<class>/ image folders")?;
    let listing = list(dir)?;
    let mut notes = Vec::new();
    let cache_file = cache_dir(cache).map(|d| {
        let (path_hash, key) = cache_key(dir, &listing);
        (
            d.clone(),
            d.join(format!("folder-{path_hash:016x}-{key:032x}.bin")),
            path_hash,
            key,
        )
    });
    if let Some((_, file, _, key)) = &cache_file {
        if file.exists() {
            match read_cache(file, *key, &listing) {
                Ok(dataset) => {
                    return Ok(Loaded {
                        dataset,
                        from_cache: true,
                        notes,
                    })
                }
                Err(why) => notes.push(format!(
                    "ignored cache file {} ({why}); decoding the images again",
                    file.display()
                )),
            }
        }
    }
    let dataset = decode_all(&listing)?;
    if let Some((dir, file, path_hash, key)) = &cache_file {
        if let Err(why) = write_cache(dir, file, *path_hash, *key, &dataset) {
            notes.push(format!(
                "could not write the image cache in {} ({why}); continuing without it",
                dir.display()
            ));
        }
    }
    Ok(Loaded {
        dataset,
        from_cache: false,
        notes,
    })
}

// ---------------------------------------------------------------- listing

fn sub_dir(dir: &Path, name: &str) -> Result<PathBuf, DataError> {
    let p = dir.join(name);
    if !p.is_dir() {
        return Err(DataError::at(
            &p,
            "not found: a folder dataset needs DIR/train/<class>/ and DIR/test/<class>/ holding JPEG or PNG images",
        ));
    }
    Ok(p)
}

fn visible_entries(dir: &Path) -> Result<Vec<(String, PathBuf)>, DataError> {
    let rd = std::fs::read_dir(dir)
        .map_err(|e| DataError::at(dir, format!("cannot list directory: {e}")))?;
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| DataError::at(dir, format!("cannot list directory: {e}")))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // Hidden files (.DS_Store, ._foo) are never dataset content.
        if !name.starts_with('.') {
            out.push((name, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

fn class_dirs(split_dir: &Path) -> Result<Vec<(String, PathBuf)>, DataError> {
    Ok(visible_entries(split_dir)?
        .into_iter()
        .filter(|(_, p)| p.is_dir())
        .collect())
}

fn list(dir: &Path) -> Result<Listing, DataError> {
    let train_dir = sub_dir(dir, "train")?;
    let test_dir = sub_dir(dir, "test")?;
    let train_classes = class_dirs(&train_dir)?;
    if train_classes.is_empty() {
        return Err(DataError::at(
            &train_dir,
            "no class folders: put each class's images in train/<class>/",
        ));
    }
    let classes: Vec<String> = train_classes.iter().map(|(n, _)| n.clone()).collect();
    let test_classes = class_dirs(&test_dir)?;
    let test_names: Vec<&String> = test_classes.iter().map(|(n, _)| n).collect();
    if let Some(missing) = classes.iter().find(|c| !test_names.contains(c)) {
        return Err(DataError::at(
            &test_dir,
            format!("missing class folder '{missing}' (train/ has it): test/ must hold the same class folders as train/"),
        ));
    }
    if let Some(extra) = test_names.iter().find(|c| !classes.contains(c)) {
        return Err(DataError::at(
            test_dir.join(extra.as_str()),
            "class folder not in train/: test/ must hold the same class folders as train/",
        ));
    }
    Ok(Listing {
        train: list_files(&train_classes)?,
        test: list_files(&test_classes)?,
        classes,
    })
}

fn list_files(class_dirs: &[(String, PathBuf)]) -> Result<Vec<Entry>, DataError> {
    let mut out = Vec::new();
    for (label, (_, cdir)) in class_dirs.iter().enumerate() {
        let before = out.len();
        for (_, path) in visible_entries(cdir)? {
            // metadata follows symlinks, so linked images count.
            let meta = std::fs::metadata(&path)
                .map_err(|e| DataError::at(&path, format!("cannot stat: {e}")))?;
            if meta.is_dir() {
                return Err(DataError::at(
                    &path,
                    "a folder inside a class folder: images are read from the class folder itself, not below it; move them up, or remove the folder",
                ));
            }
            if !meta.is_file() {
                continue;
            }
            let mtime_ns = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            out.push(Entry {
                path,
                label: label as u32,
                size: meta.len(),
                mtime_ns,
            });
        }
        if out.len() == before {
            return Err(DataError::at(
                cdir,
                "class folder holds no images: add some or remove the folder (from train/ and test/)",
            ));
        }
    }
    Ok(out)
}

// --------------------------------------------------------------- decoding

fn decode_all(listing: &Listing) -> Result<Dataset, DataError> {
    let first = &listing.train[0];
    let bytes = std::fs::read(&first.path)
        .map_err(|e| DataError::at(&first.path, format!("cannot read: {e}")))?;
    let img = decode(&first.path, &bytes)?;
    let c = if is_grayscale(&img) { 1 } else { 3 };
    let (w, h) = common_size(&listing.train).unwrap_or((img.width(), img.height()));
    let shape = [c, h as usize, w as usize];
    if shape[1] == 0 || shape[2] == 0 {
        return Err(DataError::at(&first.path, "image has no pixels"));
    }
    Ok(Dataset {
        source: String::new(),
        classes: listing.classes.clone(),
        shape,
        train: decode_split(&listing.train, shape)?,
        test: decode_split(&listing.test, shape)?,
    })
}

/// The size most training images have, from their headers: the images of
/// another size are resized to it (one odd image sorted first used to set
/// the size of all).
fn common_size(entries: &[Entry]) -> Option<(u32, u32)> {
    let mut counts: std::collections::BTreeMap<(u32, u32), usize> = Default::default();
    for e in entries {
        if let Ok(size) = image::image_dimensions(&e.path) {
            *counts.entry(size).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .max_by_key(|&(size, n)| (n, std::cmp::Reverse(size)))
        .map(|(size, _)| size)
}

fn decode_one(entry: &Entry, shape: [usize; 3], out: &mut [u8]) -> Result<(), DataError> {
    let bytes = std::fs::read(&entry.path)
        .map_err(|e| DataError::at(&entry.path, format!("cannot read: {e}")))?;
    let img = decode(&entry.path, &bytes)?;
    let img = fit_exact(img, shape[0], shape[2] as u32, shape[1] as u32);
    write_chw(img, shape[0], out);
    Ok(())
}

/// Decodes every entry on all cores into one preallocated buffer; each
/// worker reads one file at a time, so only a few encoded files are ever
/// in memory. Of several bad files, the first in listing order is reported
/// among those seen before the workers stopped.
fn decode_split(entries: &[Entry], shape: [usize; 3]) -> Result<Split, DataError> {
    let img_len = shape.iter().product::<usize>();
    let mut images = vec![0u8; entries.len() * img_len];
    let work = Mutex::new(images.chunks_mut(CHUNK * img_len).enumerate());
    let failed = AtomicBool::new(false);
    let error: Mutex<Option<(usize, DataError)>> = Mutex::new(None);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let Some((ci, slab)) = work.lock().unwrap().next() else {
                        return;
                    };
                    for (j, slot) in slab.chunks_exact_mut(img_len).enumerate() {
                        let i = ci * CHUNK + j;
                        if let Err(e) = decode_one(&entries[i], shape, slot) {
                            failed.store(true, Ordering::Relaxed);
                            let mut err = error.lock().unwrap();
                            if err.as_ref().is_none_or(|(k, _)| i < *k) {
                                *err = Some((i, e));
                            }
                            return;
                        }
                    }
                }
            });
        }
    });
    if let Some((_, e)) = error.into_inner().unwrap() {
        return Err(e);
    }
    Ok(Split {
        images,
        labels: entries.iter().map(|e| e.label).collect(),
    })
}

// ------------------------------------------------------------------ cache

fn cache_dir(cache: &Cache) -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    match cache {
        Cache::Off => None,
        Cache::Dir(d) => Some(d.clone()),
        Cache::Env => var("CNNCOST_CACHE")
            .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("cnncost")))
            .or_else(|| var("HOME").map(|d| d.join(".cache").join("cnncost"))),
    }
}

/// FNV-1a, 128-bit: stable across builds and platforms (std's hasher is not
/// guaranteed to be), and wide enough that collisions need not be handled.
struct Fnv(u128);

impl Fnv {
    fn new() -> Self {
        Fnv(0x6c62272e07bb014262b821756295c58d)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= b as u128;
            self.0 = self.0.wrapping_mul(0x0000000001000000000000000000013B);
        }
    }
    fn field(&mut self, bytes: &[u8]) {
        // Length-prefixed, so ("ab","c") and ("a","bc") differ.
        self.write(&(bytes.len() as u64).to_le_bytes());
        self.write(bytes);
    }
}

/// (hash of the canonical DIR, hash of DIR plus every file's path, size and mtime).
fn cache_key(dir: &Path, listing: &Listing) -> (u64, u128) {
    let canon = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let canon = canon.to_string_lossy();
    let mut h = Fnv::new();
    h.field(canon.as_bytes());
    let path_hash = h.0 as u64 ^ (h.0 >> 64) as u64;
    h.field(&CACHE_VERSION.to_le_bytes());
    for (name, entries) in [("train", &listing.train), ("test", &listing.test)] {
        h.field(name.as_bytes());
        h.field(&(entries.len() as u64).to_le_bytes());
        for e in entries {
            let rel = e.path.strip_prefix(dir).unwrap_or(&e.path);
            h.field(rel.to_string_lossy().as_bytes());
            h.write(&e.label.to_le_bytes());
            h.write(&e.size.to_le_bytes());
            h.write(&e.mtime_ns.to_le_bytes());
        }
    }
    (path_hash, h.0)
}

fn write_cache(
    dir: &Path,
    file: &Path,
    path_hash: u64,
    key: u128,
    d: &Dataset,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{nanos}",
        file.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let f = std::fs::File::create(&tmp)?;
        let mut w = flate2::CrcWriter::new(BufWriter::with_capacity(1 << 20, f));
        w.write_all(CACHE_MAGIC)?;
        w.write_all(&CACHE_VERSION.to_le_bytes())?;
        w.write_all(&key.to_le_bytes())?;
        for s in d.shape {
            w.write_all(&(s as u32).to_le_bytes())?;
        }
        w.write_all(&(d.classes.len() as u32).to_le_bytes())?;
        for c in &d.classes {
            w.write_all(&(c.len() as u32).to_le_bytes())?;
            w.write_all(c.as_bytes())?;
        }
        w.write_all(&(d.train.len() as u64).to_le_bytes())?;
        w.write_all(&(d.test.len() as u64).to_le_bytes())?;
        for split in [&d.train, &d.test] {
            let labels: Vec<u8> = split.labels.iter().flat_map(|l| l.to_le_bytes()).collect();
            w.write_all(&labels)?;
            w.write_all(&split.images)?;
        }
        let crc = w.crc().sum();
        let mut inner = w.into_inner();
        inner.write_all(&crc.to_le_bytes())?;
        inner.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, file)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    // Older caches of the same folder are stale now; remove them.
    let prefix = format!("folder-{path_hash:016x}-");
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) && e.path() != file {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    Ok(())
}

fn read_u32(r: &mut impl Read) -> std::io::Result<u32> {
    let mut b = [0; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

fn read_u64(r: &mut impl Read) -> std::io::Result<u64> {
    let mut b = [0; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

/// Reads a cache file, trusting nothing: magic, version, key, sizes against
/// the file length, the listing's classes and counts, labels in range and a
/// CRC over everything. Any mismatch is a reason to rebuild.
fn read_cache(file: &Path, key: u128, listing: &Listing) -> Result<Dataset, String> {
    let io = |e: std::io::Error| e.to_string();
    let f = std::fs::File::open(file).map_err(io)?;
    let file_len = f.metadata().map_err(io)?.len();
    let mut r = flate2::CrcReader::new(BufReader::with_capacity(1 << 20, f));
    let mut magic = [0; 8];
    r.read_exact(&mut magic).map_err(io)?;
    if &magic != CACHE_MAGIC || read_u32(&mut r).map_err(io)? != CACHE_VERSION {
        return Err("not a cache file of this version".into());
    }
    let mut k = [0; 16];
    r.read_exact(&mut k).map_err(io)?;
    if u128::from_le_bytes(k) != key {
        return Err("made for other files".into());
    }
    let mut shape = [0usize; 3];
    for s in &mut shape {
        *s = read_u32(&mut r).map_err(io)? as usize;
    }
    let n_classes = read_u32(&mut r).map_err(io)? as usize;
    if n_classes != listing.classes.len() {
        return Err("class count differs from the folder".into());
    }
    let mut header_len = 8 + 4 + 16 + 12 + 4 + 16;
    let mut classes = Vec::with_capacity(n_classes);
    for _ in 0..n_classes {
        let len = read_u32(&mut r).map_err(io)? as usize;
        if len > 4096 {
            return Err("corrupt class name".into());
        }
        let mut b = vec![0; len];
        r.read_exact(&mut b).map_err(io)?;
        classes.push(String::from_utf8(b).map_err(|_| "corrupt class name")?);
        header_len += 4 + len as u64;
    }
    if classes != listing.classes {
        return Err("class names differ from the folder".into());
    }
    let n_train = read_u64(&mut r).map_err(io)?;
    let n_test = read_u64(&mut r).map_err(io)?;
    if n_train != listing.train.len() as u64 || n_test != listing.test.len() as u64 {
        return Err("image counts differ from the folder".into());
    }
    let img_len = shape.iter().try_fold(1u64, |a, &s| a.checked_mul(s as u64));
    let expected = img_len
        .and_then(|l| (n_train + n_test).checked_mul(l + 4))
        .and_then(|b| b.checked_add(header_len + 4));
    if shape[0] != 1 && shape[0] != 3 || expected != Some(file_len) {
        return Err(format!("{file_len} bytes, not the size its header implies"));
    }
    let img_len = img_len.unwrap_or(0) as usize;
    let mut read_split = |n: usize| -> Result<Split, String> {
        let mut lb = vec![0u8; n * 4];
        r.read_exact(&mut lb).map_err(io)?;
        let labels: Vec<u32> = lb
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if labels.iter().any(|&l| l as usize >= n_classes) {
            return Err("label out of range".into());
        }
        let mut images = vec![0u8; n * img_len];
        r.read_exact(&mut images).map_err(io)?;
        Ok(Split { images, labels })
    };
    let train = read_split(n_train as usize)?;
    let test = read_split(n_test as usize)?;
    let crc = r.crc().sum();
    if read_u32(r.get_mut()).map_err(io)? != crc {
        return Err("checksum mismatch".into());
    }
    Ok(Dataset {
        source: String::new(),
        classes,
        shape,
        train,
        test,
    })
}
