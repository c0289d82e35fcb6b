//! What the commands share: the `Failed` outcome and how errors and output
//! are written, reading and compiling a network (`NetArgs`), compiling it
//! for a dataset, the device, data, settings, weights and normalisation
//! that `train`, `eval`, `predict` and the rest load.

use crate::zoo;
use analyzer::{analyze, Analysis, Options};
use candle_core::{DType, Device};
use clap::Args;
use data::{Dataset, Normalization};
use dsl::value::{parse_literal, Value};
use dsl::{Network, Overrides};
use runtime::checkpoint::Checkpoint;
use runtime::config::TrainConfig;
use runtime::model::Model;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A failure already explained to the user.
pub struct Failed;

/// Says `msg` as an error; the caller returns the `Failed`.
pub fn fail(msg: impl std::fmt::Display) -> Failed {
    eprintln!("error: {msg}");
    Failed
}

/// Writes to stdout. A closed pipe (`cnncost big.net | head`) ends the
/// output quietly instead of panicking as `print!` would.
pub fn emit(text: &str) -> Result<(), Failed> {
    emit_with(|out| out.write_all(text.as_bytes()))
}

/// Lets `write` write to stdout, buffered, as it goes (a million-op
/// network's table streams); a closed pipe ends it quietly, as in `emit`.
pub fn emit_with(write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<(), Failed> {
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    match write(&mut out).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => {
            eprintln!("error: cannot write the output: {e}");
            Err(Failed)
        }
    }
}

/// The output formats of the commands that print a table (`cnncost NET`,
/// `sweep`, `profile`).
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Markdown,
    Csv,
    Json,
}

/// The exit status when a check on costs fails (`diff --fail-if`, `sweep
/// --budget` with nothing within it), told apart from errors (1) and usage
/// errors (2) so that CI can tell a budget overrun from a broken network.
pub const EXIT_CONDITION: i32 = 3;

/// What the costs are counted for: the batch and the activations' type
/// (`cnncost NET`, `diff`, `sweep`).
#[derive(Args, Clone, Copy)]
pub struct CostArgs {
    /// Batch size: scales MACs, FLOPs and memory (not params)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch: u64,
    /// Element type of activations: f32, f16 or bf16
    #[arg(long, default_value = "f32")]
    pub dtype: analyzer::Dtype,
}

impl CostArgs {
    pub fn options(self) -> analyzer::Options {
        analyzer::Options {
            batch: self.batch,
            dtype: self.dtype,
        }
    }
}

/// A device profile: a built-in name (`h100-sxm`, `a100`, ...) or a YAML
/// file written by `cnncost calibrate`.
pub fn device_profile(arg: &str) -> Result<analyzer::device::DeviceProfile, Failed> {
    if let Some(p) = analyzer::device::DeviceProfile::built_in(arg) {
        return Ok(p);
    }
    let path = Path::new(arg);
    let text = match read_bounded(path) {
        Ok(Ok(text)) => text,
        Ok(Err(why)) => return Err(fail(format!("cannot read `{arg}`: {why}"))),
        Err(e) => {
            let names: Vec<&str> = analyzer::device::BUILT_IN.iter().map(|(n, _)| *n).collect();
            return Err(fail(format!(
                "cannot read `{arg}`: {e}\n  (nor is it a built-in profile: {}; `cnncost calibrate --out FILE` measures this machine)",
                names.join(", ")
            )));
        }
    };
    analyzer::device::DeviceProfile::parse(&text, arg).map_err(fail)
}

/// Options that change the network itself.
#[derive(Args, Clone, Default)]
pub struct NetArgs {
    /// Override a network parameter: `--set classes=10` (repeatable)
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_set)]
    pub set: Vec<(String, Value)>,
    /// Override the input shape, e.g. `--input 3x32x32`
    #[arg(long, value_name = "CxHxW", value_parser = parse_input)]
    pub input: Option<[u64; 3]>,
}

fn parse_set(s: &str) -> Result<(String, Value), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=VALUE, found `{s}`"))?;
    let v = parse_literal(value)
        .ok_or_else(|| format!("`{value}` is not an integer, a number, true or false"))?;
    Ok((name.trim().to_string(), v))
}

pub fn parse_input(s: &str) -> Result<[u64; 3], String> {
    let parts: Vec<&str> = s.split('x').collect();
    let dims: Option<Vec<u64>> = parts.iter().map(|p| p.trim().parse::<u64>().ok()).collect();
    match dims.as_deref() {
        Some(&[c, h, w]) if c > 0 && h > 0 && w > 0 => Ok([c, h, w]),
        _ => Err(format!(
            "expected CxHxW with positive sizes, e.g. 3x224x224, found `{s}`"
        )),
    }
}

use dsl::MAX_SOURCE_BYTES;

/// A regular file's text, at most `MAX_SOURCE_BYTES`: a device (`/dev/zero`),
/// a directory or a larger file is an error, not an endless read.
fn read_bounded(path: &Path) -> std::io::Result<Result<String, String>> {
    use std::io::Read;
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Ok(Err("not a regular file (a directory or a device)".into()));
    }
    let too_big = || {
        format!(
            "larger than {} MiB, the limit for a .net file (docs/language.md, \"Limits\"); use `repeat` and blocks",
            MAX_SOURCE_BYTES >> 20
        )
    };
    if meta.len() > MAX_SOURCE_BYTES {
        return Ok(Err(too_big()));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_SOURCE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_SOURCE_BYTES {
        return Ok(Err(too_big()));
    }
    Ok(String::from_utf8(bytes).map_err(|e| {
        format!(
            "not UTF-8 text (byte {} is invalid); save it as UTF-8",
            e.utf8_error().valid_up_to()
        )
    }))
}

/// Standard input's text (`git show REV:net.net | cnncost diff - net.net`),
/// at most `MAX_SOURCE_BYTES`.
fn read_stdin() -> Result<String, Failed> {
    use std::io::Read;
    let mut bytes = Vec::new();
    if let Err(e) = std::io::stdin()
        .lock()
        .take(MAX_SOURCE_BYTES + 1)
        .read_to_end(&mut bytes)
    {
        return Err(fail(format!("cannot read standard input: {e}")));
    }
    if bytes.len() as u64 > MAX_SOURCE_BYTES {
        return Err(fail(format!(
            "standard input is larger than {} MiB, the limit for a .net file",
            MAX_SOURCE_BYTES >> 20
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        fail(format!(
            "standard input is not UTF-8 text (byte {} is invalid)",
            e.utf8_error().valid_up_to()
        ))
    })
}

/// A file's text, or a zoo network's when no such file exists; `-` is
/// standard input.
pub fn read_source(path: &Path) -> Result<(String, String), Failed> {
    if path == Path::new("-") {
        return read_stdin().map(|text| ("<stdin>".to_string(), text));
    }
    match read_bounded(path) {
        Ok(Ok(text)) => Ok((path.display().to_string(), text)),
        Ok(Err(why)) => {
            eprintln!("error: cannot read `{}`: {why}", path.display());
            Err(Failed)
        }
        Err(e) => match zoo::find(&path.to_string_lossy()) {
            Some((name, text)) => Ok((format!("zoo/{name}.net"), text.to_string())),
            None => {
                eprintln!(
                    "error: cannot read `{}`: {e}\n  (nor is it a zoo network: `cnncost zoo` lists them)",
                    path.display()
                );
                Err(Failed)
            }
        },
    }
}

pub fn compile(name: &str, text: &str, net: &NetArgs) -> Result<Network, Failed> {
    let overrides = Overrides {
        set: net.set.clone(),
        input: net.input,
        ..Default::default()
    };
    compile_with(name, text, &overrides)
}

/// Compiles the network, printing its errors.
fn compile_with(name: &str, text: &str, overrides: &Overrides) -> Result<Network, Failed> {
    dsl::compile(name, text, overrides).map_err(|e| {
        eprintln!("{e}");
        Failed
    })
}

pub fn load(path: &Path, net: &NetArgs) -> Result<Network, Failed> {
    let (name, text) = read_source(path)?;
    compile(&name, &text, net)
}

pub fn analyzed<'n>(net: &'n Network, options: Options) -> Result<Analysis<'n>, Failed> {
    analyze(net, options).map_err(|d| {
        eprint!("{}", d.render(&net.source));
        Failed
    })
}

/// `.net` files under the given paths, directories searched recursively,
/// in sorted order; then, with `all_zoo`, every network of the zoo.
pub fn net_files(paths: &[PathBuf], all_zoo: bool) -> Result<Vec<PathBuf>, Failed> {
    let mut out = Vec::new();
    if all_zoo {
        out.extend(
            zoo::ZOO
                .iter()
                .map(|(n, _)| PathBuf::from(format!("zoo/{n}.net"))),
        );
    }
    for p in paths {
        if p.is_dir() {
            let mut stack = vec![p.clone()];
            let mut found = Vec::new();
            while let Some(dir) = stack.pop() {
                let entries = std::fs::read_dir(&dir).map_err(|e| {
                    eprintln!("error: cannot read directory `{}`: {e}", dir.display());
                    Failed
                })?;
                for e in entries.flatten() {
                    let path = e.path();
                    if path.is_dir() {
                        stack.push(path);
                    } else if path.extension().is_some_and(|x| x == "net") {
                        found.push(path);
                    }
                }
            }
            if found.is_empty() {
                eprintln!("warning: no .net files in `{}`", p.display());
            }
            found.sort();
            out.extend(found);
        } else if p.exists() || zoo::find(&p.to_string_lossy()).is_some() {
            out.push(p.clone());
        } else {
            eprintln!(
                "error: `{}` does not exist, nor is it a zoo network",
                p.display()
            );
            return Err(Failed);
        }
    }
    Ok(out)
}

/// Where a command's network runs.
#[derive(Args, Clone)]
pub struct DeviceArgs {
    /// cpu, or cuda / cuda:N (a build with `--features cuda`: docs/training.md, "CUDA")
    #[arg(long = "device", value_name = "DEVICE", default_value = "cpu")]
    pub name: String,
}

impl DeviceArgs {
    pub fn open(&self) -> Result<Device, Failed> {
        device(&self.name)
    }
}

fn device(spec: &str) -> Result<Device, Failed> {
    runtime::device::open(spec).map_err(|e| {
        eprintln!("error: {e}");
        Failed
    })
}

/// Training settings from a YAML file, or the defaults without one.
pub fn config_file(path: Option<&Path>) -> Result<TrainConfig, Failed> {
    let Some(path) = path else {
        return Ok(TrainConfig::default());
    };
    let yaml = std::fs::read_to_string(path)
        .map_err(|e| fail(format!("{}: cannot read: {e}", path.display())))?;
    TrainConfig::from_yaml(&path.display().to_string(), &yaml).map_err(fail)
}

pub fn load_data(spec: &str) -> Result<Dataset, Failed> {
    let loaded = data::load_with(spec, &Default::default()).map_err(fail)?;
    for note in &loaded.notes {
        eprintln!("note: {note}");
    }
    Ok(loaded.dataset)
}

/// [`compile_for`] the images and classes of `dataset`.
pub fn compile_for_data(
    name: &str,
    text: &str,
    net: &NetArgs,
    dataset: &data::Dataset,
) -> Result<Network, Failed> {
    compile_for(name, text, net, dataset.shape, Some(dataset.classes.len()))
}

/// Compiles the network for images of `shape` (C, H, W) and `classes`
/// classes: the input follows the data, and a `classes` parameter, where the
/// network declares one, is set unless the user set it. The output must then
/// have one value per class.
pub fn compile_for(
    name: &str,
    text: &str,
    net: &NetArgs,
    shape: [usize; 3],
    classes: Option<usize>,
) -> Result<Network, Failed> {
    let shape64 = shape.map(|d| d as u64);
    if let Some(given) = net.input {
        if given != shape64 {
            return Err(fail(format!(
                "--input {}x{}x{} does not match the data's images ({}x{}x{}); leave --input out, the network's input follows the data",
                given[0], given[1], given[2], shape[0], shape[1], shape[2]
            )));
        }
    }
    let net = compile_with(
        name,
        text,
        &Overrides {
            set: net.set.clone(),
            defaults: classes
                .map(|k| ("classes".to_string(), Value::Int(k as i64)))
                .into_iter()
                .collect(),
            input: Some(shape64),
        },
    )?;
    if let Some(k) = classes {
        let outputs = net.graph[net.output].shape.elements().unwrap_or(0);
        if outputs != k as u64 {
            return Err(fail(format!(
                "{name}: the network outputs {outputs} values but the data has {k} classes; use --set classes={k} or make the last linear layer {k} wide"
            )));
        }
    }
    Ok(net)
}

pub fn lower(net: &Network, device: &Device, seed: u64) -> Result<Model, Failed> {
    // The weights, counted before a byte is allocated: a layer too large for
    // the machine is an error, not an abort.
    let a = analyzed(net, Options::default())?;
    let weights = a
        .totals
        .params
        .max(a.train_totals.params)
        .saturating_add(a.train_totals.buffers)
        .saturating_mul(4);
    data::memory::check_fits(weights, &format!("{}'s weights", net.name)).map_err(|e| {
        fail(format!(
            "{e}; check the layer sizes (`cnncost {}` counts them)",
            net.name
        ))
    })?;
    let mut rng: rand_chacha::ChaCha8Rng = rand::SeedableRng::seed_from_u64(seed);
    Model::new(net, device, DType::F32, &mut rng).map_err(|e| fail(format!("{}: {e}", net.name)))
}

/// Normalisation for weights that carry none (a state dict from elsewhere).
#[derive(Args)]
pub struct NormArgs {
    /// Per-channel mean on the [0,1] scale: one value, or one per channel (0.485,0.456,0.406)
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pub mean: Vec<f32>,
    /// Per-channel standard deviation: one value, or one per channel
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pub std: Vec<f32>,
}

/// The normalisation for a weights file: its own, else --mean/--std.
pub fn normalization(
    c: &Checkpoint,
    args: &NormArgs,
    channels: usize,
) -> Result<Normalization, Failed> {
    if args.mean.is_empty() && args.std.is_empty() && c.is_ours() {
        return runtime::train::checkpoint_normalization(c).map_err(fail);
    }
    if args.mean.is_empty() || args.std.is_empty() {
        return Err(fail(format!(
            "{}: the weights carry no normalisation statistics; give --mean and --std (one value, or one per channel; ImageNet's are --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225)",
            c.path.display()
        )));
    }
    let widen = |v: &[f32], what: &str| -> Result<Vec<f32>, Failed> {
        match v.len() {
            1 => Ok(vec![v[0]; channels]),
            n if n == channels => Ok(v.to_vec()),
            n if channels == 1 => Err(fail(format!(
                "--{what} has {n} values; the images have one channel: give one value"
            ))),
            n => Err(fail(format!(
                "--{what} has {n} values; give 1 or {channels} (one per channel)"
            ))),
        }
    };
    let std = widen(&args.std, "std")?;
    if std.iter().any(|&s| s.is_nan() || s <= 0.0) {
        return Err(fail("--std values must be positive"));
    }
    Ok(Normalization {
        mean: widen(&args.mean, "mean")?,
        std,
    })
}

/// Loads the checkpoint's weights into `model`, warning about tensors the
/// network does not use (optimizer state and averaged weights aside).
pub fn load_weights(model: &Model, c: &Checkpoint) -> Result<(), Failed> {
    let unused = model
        .load_weights(&c.tensors)
        .map_err(|e| fail(format!("{}: {e}", c.path.display())))?;
    let stray: Vec<&String> = unused
        .iter()
        .filter(|k| !k.starts_with("optim.") && !k.starts_with(runtime::ema::PREFIX))
        .collect();
    if !stray.is_empty() {
        eprintln!(
            "warning: {}: {} tensor(s) not used by the network, first `{}`",
            c.path.display(),
            stray.len(),
            stray[0]
        );
    }
    Ok(())
}

/// The kernels' per-thread memory on this machine, for predictions of a step
/// that runs here (analyzer::training::HostScratch).
pub fn host_scratch() -> analyzer::training::HostScratch {
    let (threads, slab) = runtime::kernels::gemm_slabs();
    analyzer::training::HostScratch {
        threads: threads as u64,
        slab_bytes: slab as u64,
    }
}
