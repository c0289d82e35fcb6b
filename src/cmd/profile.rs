//! `cnncost profile NET`: runs our runtime on synthetic data and times
//! every row of the table, beside the device profile's prediction.

use crate::cmd::calibrate::DEFAULT_PROFILE;
use crate::common::{
    analyzed, device_profile, emit, fail, load, lower, CostArgs, Failed, Format, NetArgs,
};
use analyzer::device::rank_correlation;
use analyzer::render::{aligned_grid, csv_field, markdown_grid};
use analyzer::{rows, with_device};
use candle_core::{Device, Tensor};
use clap::Args;
use runtime::calibrate::op_seconds;
use serde_json::json;
use std::path::{Path, PathBuf};

pub const LONG_ABOUT: &str = "\
Run the network on synthetic data with our runtime (inference, CPU) and
time every row of the table: the median of --iters passes after two
warm-up passes. Beside each measured row: the prediction of a device
profile (`--device-profile`, by default the cnncost-device.yaml that
`cnncost calibrate` writes), its error, the achieved GFLOP/s and GB/s, and
the row's share of the pass. Under the table: the whole pass measured and
predicted, and the rank correlation of the rows' times (docs/costs.md,
\"Time\"). The conv, BN and ReLU that run as one are timed as one, under
the last of them.

Examples:
  cnncost calibrate && cnncost profile resnet20
  cnncost profile resnet18_cifar --batch 32 --depth 2 --format json";

#[derive(Args)]
pub struct ProfileArgs {
    /// The .net file or zoo name
    file: PathBuf,
    #[command(flatten)]
    net: NetArgs,
    #[command(flatten)]
    cost: CostArgs,
    /// Timed passes (the median is given)
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    iters: u64,
    /// Table rows at block level N
    #[arg(long, default_value_t = 1, value_name = "N")]
    depth: u32,
    /// The device profile to predict with: a file or a built-in name
    #[arg(long, value_name = "FILE|NAME")]
    device_profile: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Draw each row's predicted time against its measured time to FILE.svg or FILE.png
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
}

pub fn run(args: &ProfileArgs) -> Result<(), Failed> {
    if args.cost.dtype != analyzer::Dtype::F32 {
        return Err(fail(
            "the runtime runs f32 on the CPU: profile without --dtype",
        ));
    }
    if let Some(plot) = &args.plot {
        crate::plot::check_image_path(plot).map_err(fail)?;
    }
    let net = load(&args.file, &args.net)?;
    let a = analyzed(&net, args.cost.options())?;
    let profile = match &args.device_profile {
        Some(p) => Some(device_profile(p)?),
        None if Path::new(DEFAULT_PROFILE).is_file() => Some(device_profile(DEFAULT_PROFILE)?),
        None => {
            eprintln!(
                "note: no device profile: measured times only (`cnncost calibrate` writes {DEFAULT_PROFILE}, or give --device-profile)"
            );
            None
        }
    };
    let a = match &profile {
        Some(p) => with_device(a, p),
        None => a,
    };
    if let Some(p) = profile.as_ref().filter(|p| p.source == "datasheet") {
        eprintln!(
            "note: {} is a datasheet profile of another device: its predictions are not this CPU's times (`cnncost calibrate` measures this machine)",
            p.name
        );
    }
    // The pass's live activations, counted before a byte is allocated.
    data::memory::check_fits(
        a.totals.peak_activation_bytes,
        &format!("{}'s activations at batch {}", net.name, args.cost.batch),
    )
    .map_err(|e| fail(format!("{e}; lower --batch")))?;
    let model = lower(&net, &Device::Cpu, 0)?;
    let [c, h, w] = model.input;
    let x = Tensor::randn(0f32, 1.0, (args.cost.batch as usize, c, h, w), &Device::Cpu)
        .map_err(|e| fail(format!("cannot make the input: {e}")))?;
    eprintln!(
        "profiling {} at batch {}: {} passes after 2 warm-up passes ...",
        net.name, args.cost.batch, args.iters
    );
    let measured = op_seconds(&model, &x, 2, args.iters as usize)
        .map_err(|e| fail(format!("the forward pass failed: {e}")))?;

    struct Line {
        name: String,
        ops: String,
        measured: f64,
        predicted: Option<f64>,
        flops: u64,
        bytes: u64,
        /// Every op's work is done by a later row's (a conv whose BN and
        /// ReLU come after it).
        fused: bool,
    }
    let fused_into = dsl::plan::fused_into(&dsl::plan::fusions(&net));
    let lines: Vec<Line> = rows::rows(&a, args.depth)
        .iter()
        .map(|r| {
            let sum = |f: &dyn Fn(usize) -> f64| r.nodes.iter().map(|n| f(n.index())).sum::<f64>();
            Line {
                name: r.name.to_string(),
                ops: r.ops.to_string(),
                measured: sum(&|i| measured[i]),
                predicted: a.device.as_ref().map(|d| sum(&|i| d.times[i].predicted)),
                // A fused group's FLOPs are where its time is.
                flops: a.device.as_ref().map_or(r.cost.flops, |d| {
                    r.nodes
                        .iter()
                        .map(|n| d.times[n.index()].flops)
                        .fold(0u64, u64::saturating_add)
                }),
                bytes: a.device.as_ref().map_or(0, |d| {
                    r.nodes
                        .iter()
                        .map(|n| {
                            let t = d.times[n.index()];
                            t.bytes_read.saturating_add(t.bytes_written)
                        })
                        .fold(0u64, u64::saturating_add)
                }),
                // The group's time is under its last op, which is in
                // another row.
                fused: r.nodes.iter().all(|n| fused_into[n.index()].is_some()),
            }
        })
        .collect();
    let total_measured: f64 = measured.iter().sum();
    if let Some(path) = &args.plot {
        let rows: Vec<(String, f64, f64)> = lines
            .iter()
            .map(|l| (l.name.clone(), l.measured, l.predicted.unwrap_or(0.0)))
            .collect();
        let title = format!(
            "{} at batch {}: predicted against measured, per row",
            net.name, args.cost.batch
        );
        crate::plot::draw_profile(path, &title, &rows).map_err(fail)?;
        eprintln!("wrote {}", path.display());
    }
    let total_predicted = a.device.as_ref().map(|d| d.total(&a));
    let timed: Vec<&Line> = lines.iter().filter(|l| l.measured > 0.0).collect();
    let correlation = rank_correlation(
        &timed.iter().map(|l| l.measured).collect::<Vec<_>>(),
        &timed
            .iter()
            .map(|l| l.predicted.unwrap_or(0.0))
            .collect::<Vec<_>>(),
    )
    .filter(|_| total_predicted.is_some());
    // A row predicted to take no time (a view) has no error to speak of.
    let error = |m: f64, p: Option<f64>| {
        p.filter(|&p| m > 0.0 && p > 0.0)
            .map(|p| (p / m - 1.0) * 100.0)
    };

    if let Format::Json = args.format {
        let rows: Vec<serde_json::Value> = lines
            .iter()
            .map(|l| {
                json!({
                    "name": l.name,
                    "fused_into_next": l.fused,
                    "measured_seconds": l.measured,
                    "predicted_seconds": l.predicted,
                    "error_percent": error(l.measured, l.predicted),
                    "flops": l.flops,
                    "bytes": l.bytes,
                    "share": if total_measured > 0.0 { l.measured / total_measured } else { 0.0 },
                })
            })
            .collect();
        let doc = json!({
            "format_version": 1,
            "network": net.name,
            "batch": args.cost.batch,
            "iterations": args.iters,
            "device": profile.as_ref().map(|p| json!({"name": p.name, "source": p.source, "reference": p.reference})),
            "rows": rows,
            "totals": {
                "measured_seconds": total_measured,
                "predicted_seconds": total_predicted,
                "error_percent": error(total_measured, total_predicted),
                "rank_correlation": correlation,
            },
        });
        return emit(&(serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"));
    }
    let exact = matches!(args.format, Format::Csv);
    let us = |s: f64| {
        if exact {
            format!("{s:e}")
        } else {
            analyzer::render::micros(s)
        }
    };
    let header = if exact {
        [
            "layer",
            "op",
            "measured_seconds",
            "predicted_seconds",
            "error_percent",
            "gflops_per_second",
            "gbytes_per_second",
            "share_percent",
        ]
    } else {
        [
            "layer",
            "op",
            "measured (µs)",
            "predicted (µs)",
            "error %",
            "GFLOP/s",
            "GB/s",
            "share %",
        ]
    };
    let mut g = vec![header.map(String::from).to_vec()];
    let rate = |x: f64, s: f64| {
        if s > 0.0 {
            format!("{:.1}", x / s / 1e9)
        } else {
            "-".into()
        }
    };
    for l in &lines {
        if l.fused && !exact {
            let mut cells = vec![
                l.name.clone(),
                l.ops.clone(),
                "fused".into(),
                "fused".into(),
            ];
            cells.extend(std::iter::repeat_n("-".to_string(), 4));
            g.push(cells);
            continue;
        }
        g.push(vec![
            l.name.clone(),
            l.ops.clone(),
            us(l.measured),
            l.predicted.map_or("-".into(), us),
            error(l.measured, l.predicted).map_or("-".into(), |e| format!("{e:+.0}")),
            rate(l.flops as f64, l.measured),
            if l.bytes > 0 {
                rate(l.bytes as f64, l.measured)
            } else {
                "-".into()
            },
            if total_measured > 0.0 {
                format!("{:.1}", l.measured / total_measured * 100.0)
            } else {
                "-".into()
            },
        ]);
    }
    let total_flops: u64 = lines.iter().map(|l| l.flops).fold(0, u64::saturating_add);
    g.push(vec![
        "total".into(),
        String::new(),
        us(total_measured),
        total_predicted.map_or("-".into(), us),
        error(total_measured, total_predicted).map_or("-".into(), |e| format!("{e:+.0}")),
        rate(total_flops as f64, total_measured),
        String::new(),
        "100.0".into(),
    ]);
    let text = match args.format {
        Format::Markdown => markdown_grid(&g, &[0, 1]),
        Format::Csv => g
            .iter()
            .map(|l| l.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(",") + "\n")
            .collect(),
        Format::Table | Format::Json => aligned_grid(&g, &[0, 1]),
    };
    let footer = match (&profile, correlation) {
        (Some(p), Some(rho)) => format!(
            "\npredicted on {} ({}: {}); rank correlation of the rows' times {rho:.3}\n",
            p.name, p.source, p.reference
        ),
        (Some(p), None) => format!(
            "\npredicted on {} ({}: {})\n",
            p.name, p.source, p.reference
        ),
        (None, _) => String::new(),
    };
    let heading = format!(
        "{}: batch {}, inference, median of {} passes, {} threads\n",
        net.name,
        args.cost.batch,
        args.iters,
        runtime::kernels::num_threads()
    );
    // CSV is data: its heading and footer go to stderr.
    if exact {
        eprint!("{heading}{footer}");
        return emit(&text);
    }
    emit(&format!("{heading}\n{text}{footer}"))
}
