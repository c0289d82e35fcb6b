//! `cnncost calibrate`: measures this machine into a device profile (the
//! peak fp32 rate, memory bandwidth, matrix products, and the efficiency
//! our runtime reaches per op kind), for `--device-profile` and `profile`.

use crate::common::{fail, Failed};
use analyzer::device::{inference_times, DeviceProfile, GemmPoint};
use analyzer::{analyze, Options};
use candle_core::{DType, Device, Tensor};
use clap::Args;
use rand::SeedableRng;
use runtime::calibrate::{bandwidth, gemm_gflops, op_seconds, peak_gflops};
use runtime::kernels::num_threads;
use runtime::model::Model;
use std::collections::BTreeMap;
use std::path::PathBuf;

pub const LONG_ABOUT: &str = "\
Measure this machine into a device profile (YAML): the peak fp32 rate
(fused multiply-adds on all threads), the memory's read and write
bandwidth, matrix products at a few shapes, the thread count, and per op
kind the efficiency our runtime reaches: the roofline time of a
representative op over its measured time, and the same for the optimizer's
update (SGD with momentum over 8.4M weights). `cnncost NET --device-profile
FILE` and `cnncost profile` predict each op's time from it (docs/costs.md,
\"Time\"). Takes about half a minute; `--quick` a few seconds, less exactly.

Examples:
  cnncost calibrate
  cnncost calibrate --out epyc.yaml && cnncost resnet50 --device-profile epyc.yaml";

/// Where `calibrate` writes and `profile` looks when no profile is given.
pub const DEFAULT_PROFILE: &str = "cnncost-device.yaml";

#[derive(Args)]
pub struct CalibrateArgs {
    /// The profile to write
    #[arg(long, default_value = DEFAULT_PROFILE, value_name = "FILE")]
    out: PathBuf,
    /// Shorter measurements (a few seconds; for tests and a first look)
    #[arg(long)]
    quick: bool,
}

/// The op kinds calibrated, each as a one-op network at batch 8 on
/// ResNet-like shapes.
const KINDS: [(&str, &str); 12] = [
    ("conv_winograd", "input 64x56x56\nconv 64 k=3 p=1"),
    ("conv", "input 16x32x32\nconv 16 k=3 p=1"),
    ("conv_1x1", "input 64x56x56\nconv 256 k=1"),
    ("conv_depthwise", "input 64x56x56\nconv 64 k=3 p=1 g=64"),
    ("linear", "input 2048x1x1\nflatten\nlinear 1000"),
    ("bn", "input 64x56x56\nbn"),
    ("relu", "input 64x56x56\nrelu"),
    ("maxpool", "input 64x56x56\nmaxpool k=3 s=2 p=1"),
    ("avgpool", "input 64x56x56\navgpool k=2"),
    ("gap", "input 512x14x14\ngap"),
    ("add", "input 64x56x56\nadd { {}; {} }"),
    ("concat", "input 64x56x56\nconcat { {}; {} }"),
];

/// The CPU's model name, for the profile's reference.
pub fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// Today's date, UTC, as YYYY-MM-DD (the civil calendar from days since
/// 1970, Hinnant's algorithm).
fn utc_date() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The roofline time over the measured time of a one-op network.
fn efficiency(text: &str, machine: &DeviceProfile, quick: bool) -> Result<f64, String> {
    let source = format!("network calibrate\n{text}\n");
    let net =
        dsl::compile("calibrate.net", &source, &Default::default()).map_err(|e| e.to_string())?;
    let batch = 8;
    let a = analyze(
        &net,
        Options {
            batch,
            ..Options::default()
        },
    )
    .map_err(|d| d.message.clone())?;
    let predicted: f64 = inference_times(&a, machine)
        .iter()
        .map(|t| t.predicted)
        .sum();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let model = Model::new(&net, &Device::Cpu, DType::F32, &mut rng).map_err(|e| e.to_string())?;
    let [c, h, w] = model.input;
    let x = Tensor::randn(0f32, 1.0, (batch as usize, c, h, w), &Device::Cpu)
        .map_err(|e| e.to_string())?;
    let (warmup, iterations) = if quick { (1, 3) } else { (3, 15) };
    let measured: f64 = op_seconds(&model, &x, warmup, iterations)
        .map_err(|e| e.to_string())?
        .iter()
        .sum();
    Ok((predicted / measured.max(1e-9)).min(4.0))
}

/// The optimizer's update (SGD with momentum, `cnncost train`'s default)
/// over 8.4M weights (100 MB of weights, gradients and momentum, far
/// beyond the caches): its memory roofline over its measured time.
fn update_efficiency(machine: &DeviceProfile, quick: bool) -> Result<f64, String> {
    let source = "network calibrate\ninput 4096x1x1\nflatten\nlinear 2048\n";
    let net =
        dsl::compile("calibrate.net", source, &Default::default()).map_err(|e| e.to_string())?;
    let config = runtime::config::TrainConfig::default();
    let a = analyze(
        &net,
        Options {
            batch: 8,
            ..Options::default()
        },
    )
    .map_err(|d| d.message.clone())?;
    let options = analyzer::training::TrainOptions {
        optimizer: config.optimizer_settings().plan(),
        ..Default::default()
    };
    let a = analyzer::with_training(a, &options).map_err(|d| d.message.clone())?;
    let predicted = analyzer::device::step_times(&a, machine)
        .ok_or("no training counts")?
        .update
        .predicted;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let model = Model::new(&net, &Device::Cpu, DType::F32, &mut rng).map_err(|e| e.to_string())?;
    let x = Tensor::randn(0f32, 1.0, (8, 4096, 1, 1), &Device::Cpu).map_err(|e| e.to_string())?;
    let labels = Tensor::new(&[0u32; 8], &Device::Cpu).map_err(|e| e.to_string())?;
    let (warmup, iterations) = if quick { (1, 3) } else { (2, 9) };
    let measured =
        runtime::calibrate::step_seconds(&model, &config, (&x, &labels), (warmup, iterations))
            .map_err(|e| e.to_string())?
            .update;
    Ok((predicted / measured.max(1e-9)).min(4.0))
}

pub fn run(args: &CalibrateArgs) -> Result<(), Failed> {
    let cpu = cpu_name();
    let threads = num_threads();
    eprintln!("calibrating {cpu}, {threads} threads ...");
    let peak = peak_gflops(if args.quick { 0.05 } else { 0.5 });
    eprintln!("  peak fp32: {peak:.1} GFLOP/s");
    let (read, write) = bandwidth(if args.quick { 64 << 20 } else { 512 << 20 });
    eprintln!("  memory: read {read:.1} GB/s, write {write:.1} GB/s");
    let shapes: &[(usize, usize, usize)] = if args.quick {
        &[(256, 256, 256)]
    } else {
        &[
            (256, 256, 256),
            (1024, 1024, 1024),
            (3136, 64, 576),
            (64, 1000, 2048),
        ]
    };
    let mut gemm = Vec::new();
    for &(m, n, k) in shapes {
        let gflops =
            gemm_gflops(m, n, k, 3).map_err(|e| fail(format!("a matrix product failed: {e}")))?;
        eprintln!("  gemm {m}x{k} by {k}x{n}: {gflops:.1} GFLOP/s");
        gemm.push(GemmPoint {
            m: m as u64,
            n: n as u64,
            k: k as u64,
            gflops,
        });
    }
    // A matrix product cannot beat the peak: if one did, the FMA loop fell
    // short on this CPU, and the product's rate is the better bound.
    let best_gemm = gemm.iter().map(|g| g.gflops).fold(0.0, f64::max);
    let peak = if best_gemm > peak {
        eprintln!("  the peak is raised to the best matrix product's {best_gemm:.1} GFLOP/s");
        best_gemm
    } else {
        peak
    };
    let date = utc_date();
    let mut profile = DeviceProfile {
        name: format!("{cpu} ({threads} threads)"),
        source: "measured".into(),
        reference: format!(
            "cnncost calibrate{} on {date}",
            if args.quick { " --quick" } else { "" }
        ),
        threads: threads as u32,
        peak_gflops: peak,
        read_gbps: read,
        write_gbps: write,
        gemm,
        efficiency: BTreeMap::new(),
    };
    // The efficiencies against the bare roofline of the figures above.
    let machine = profile.clone();
    for (kind, text) in KINDS {
        let e = efficiency(text, &machine, args.quick)
            .map_err(|e| fail(format!("calibrating {kind}: {e}")))?;
        eprintln!("  {kind:<15} efficiency {e:.3}");
        profile.efficiency.insert(kind.to_string(), e);
    }
    let e = update_efficiency(&machine, args.quick)
        .map_err(|e| fail(format!("calibrating update: {e}")))?;
    eprintln!("  {:<15} efficiency {e:.3}", "update");
    profile.efficiency.insert("update".to_string(), e);
    std::fs::write(&args.out, profile.to_yaml())
        .map_err(|e| fail(format!("cannot write `{}`: {e}", args.out.display())))?;
    eprintln!("wrote {}", args.out.display());
    Ok(())
}
