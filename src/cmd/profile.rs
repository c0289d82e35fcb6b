//! `cnncost profile NET`: runs our runtime on synthetic data and times
//! every row of the table, beside the device profile's prediction.

use crate::cmd::calibrate::DEFAULT_PROFILE;
use crate::common::{
    analyzed, device_profile, emit, fail, load, lower, CostArgs, DeviceArgs, Failed, Format,
    NetArgs,
};
use analyzer::device::{rank_correlation, DeviceProfile};
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
warm-up passes. With --train: training steps (SGD with momentum, as
`cnncost train` runs by default), each row's forward, input gradient and
weight gradient, and the optimizer's update.

Beside each measured row: the prediction of a device profile
(`--device-profile`, by default the cnncost-device.yaml that `cnncost
calibrate` writes), its error, the achieved GFLOP/s and GB/s, and the
row's share of the pass or step. Under the table: the whole pass or step
measured and predicted, and the rank correlation of the rows' times
(docs/costs.md, \"Time\"). The ops that run as one (a conv and its ReLU, a
BN or an add and its ReLU; in inference also a conv's BN) are timed as
one, under the last of them.

Examples:
  cnncost calibrate && cnncost profile resnet20
  cnncost profile resnet20 --train
  cnncost profile resnet18_cifar --batch 32 --depth 2 --format json";

#[derive(Args)]
pub struct ProfileArgs {
    #[command(flatten)]
    device: DeviceArgs,
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
    /// Time training steps: forward, backward (input and weight gradients) and the update
    #[arg(long)]
    train: bool,
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
    let config = runtime::config::TrainConfig::default();
    let a = if args.train {
        let options = analyzer::training::TrainOptions {
            optimizer: config.optimizer_settings().plan(),
            host: crate::common::host_scratch(),
            ..Default::default()
        };
        analyzer::with_training(a, &options).map_err(|d| {
            eprint!("{}", d.render(&net.source));
            Failed
        })?
    } else {
        a
    };
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
    // The pass's (or the step's) memory, counted before a byte is allocated.
    let (needed, what) = match &a.training {
        Some(t) => (t.peak_bytes, "training step"),
        None => (a.totals.peak_activation_bytes, "activations"),
    };
    data::memory::check_fits(
        needed,
        &format!("{}'s {what} at batch {}", net.name, args.cost.batch),
    )
    .map_err(|e| fail(format!("{e}; lower --batch")))?;
    let device = args.device.open()?;
    if args.train {
        if !device.is_cpu() {
            // The backward is split by op from marks our CPU kernels leave; the
            // portable ops that run on a GPU leave none.
            return Err(fail(format!(
                "profile --train times the backward op by op on the CPU only; on {} profile inference (without --train), or time whole steps with `cnncost train --device {}`",
                args.device.name, args.device.name
            )));
        }
        return run_train(args, &net, &a, profile.as_ref(), &config);
    }
    let model = lower(&net, &device, 0)?;
    let [c, h, w] = model.input;
    let x = Tensor::randn(0f32, 1.0, (args.cost.batch as usize, c, h, w), &device)
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

    if let Format::Json = args.format {
        let rows: Vec<serde_json::Value> = lines
            .iter()
            .map(|l| {
                json!({
                    "name": l.name,
                    "fused_into_next": l.fused,
                    "measured_seconds": l.measured,
                    "predicted_seconds": l.predicted,
                    "error_percent": error_percent(l.measured, l.predicted),
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
                "error_percent": error_percent(total_measured, total_predicted),
                "rank_correlation": correlation,
            },
        });
        return emit(&(serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"));
    }
    let exact = matches!(args.format, Format::Csv);
    let us = |s: f64| seconds_cell(exact, s);
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
            error_percent(l.measured, l.predicted).map_or("-".into(), |e| format!("{e:+.0}")),
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
        error_percent(total_measured, total_predicted).map_or("-".into(), |e| format!("{e:+.0}")),
        rate(total_flops as f64, total_measured),
        String::new(),
        "100.0".into(),
    ]);
    let footer = footer(profile.as_ref(), correlation, "");
    let heading = format!(
        "{}: batch {}, inference, median of {} passes, {} threads\n",
        net.name,
        args.cost.batch,
        args.iters,
        runtime::kernels::num_threads()
    );
    emit_grid(args.format, &g, &heading, &footer)
}

/// `profile --train`: training steps, timed by part.
fn run_train(
    args: &ProfileArgs,
    net: &dsl::Network,
    a: &analyzer::Analysis,
    profile: Option<&analyzer::device::DeviceProfile>,
    config: &runtime::config::TrainConfig,
) -> Result<(), Failed> {
    let model = lower(net, &Device::Cpu, 0)?;
    let [c, h, w] = model.input;
    let batch = args.cost.batch as usize;
    let x = Tensor::randn(0f32, 1.0, (batch, c, h, w), &Device::Cpu)
        .map_err(|e| fail(format!("cannot make the input: {e}")))?;
    let classes = net.graph[net.output].shape.elements().unwrap_or(1).max(1) as u32;
    let labels: Vec<u32> = (0..batch as u32).map(|i| i % classes).collect();
    let labels = Tensor::new(labels.as_slice(), &Device::Cpu)
        .map_err(|e| fail(format!("cannot make the labels: {e}")))?;
    eprintln!(
        "profiling {} training at batch {}: {} steps after 2 warm-up steps ...",
        net.name, args.cost.batch, args.iters
    );
    let measured =
        runtime::calibrate::step_seconds(&model, config, (&x, &labels), (2, args.iters as usize))
            .map_err(|e| fail(format!("the training step failed: {e}")))?;
    let step = a.device.as_ref().and_then(|d| d.step.as_ref());
    let fused_into = dsl::plan::fused_into(
        &dsl::plan::fusions(net)
            .into_iter()
            .map(|f| f.filter(|f| f.in_training()))
            .collect::<Vec<_>>(),
    );

    /// One row: measured and predicted forward, input and weight gradient.
    struct Line {
        name: String,
        ops: String,
        measured: [f64; 3],
        predicted: Option<[f64; 3]>,
        flops: u64,
        bytes: u64,
        fused: bool,
    }
    let lines: Vec<Line> = rows::rows(a, args.depth)
        .iter()
        .map(|r| {
            let sum = |v: &[f64]| r.nodes.iter().map(|n| v[n.index()]).sum::<f64>();
            let parts = |i: usize| {
                let s = step.map(|s| s.ops[i]).unwrap_or_default();
                [s.forward, s.input_grad, s.weight_grad]
            };
            let fold = |f: &dyn Fn(&analyzer::device::OpTime) -> u64| {
                r.nodes
                    .iter()
                    .flat_map(|n| parts(n.index()))
                    .map(|t| f(&t))
                    .fold(0u64, u64::saturating_add)
            };
            Line {
                name: r.name.to_string(),
                ops: r.ops.to_string(),
                measured: [
                    sum(&measured.forward),
                    sum(&measured.input_grad),
                    sum(&measured.weight_grad),
                ],
                predicted: step.map(|_| {
                    let mut p = [0.0; 3];
                    for n in &r.nodes {
                        for (p, t) in p.iter_mut().zip(parts(n.index())) {
                            *p += t.predicted;
                        }
                    }
                    p
                }),
                flops: fold(&|t| t.flops),
                bytes: fold(&|t| t.bytes_read.saturating_add(t.bytes_written)),
                fused: r.nodes.iter().all(|n| fused_into[n.index()].is_some()),
            }
        })
        .collect();
    let ops_measured: f64 = lines.iter().map(|l| l.measured.iter().sum::<f64>()).sum();
    let total_measured = ops_measured + measured.loss + measured.update;
    let total_predicted = step.map(|s| s.total());
    let update_predicted = step.map(|s| s.update.predicted);
    let timed: Vec<&Line> = lines
        .iter()
        .filter(|l| l.measured.iter().sum::<f64>() > 0.0)
        .collect();
    let correlation = rank_correlation(
        &timed
            .iter()
            .map(|l| l.measured.iter().sum())
            .collect::<Vec<f64>>(),
        &timed
            .iter()
            .map(|l| l.predicted.map_or(0.0, |p| p.iter().sum()))
            .collect::<Vec<f64>>(),
    )
    .filter(|_| total_predicted.is_some());
    if let Some(path) = &args.plot {
        let rows: Vec<(String, f64, f64)> = lines
            .iter()
            .map(|l| {
                let p = l.predicted.map_or(0.0, |p| p.iter().sum());
                (l.name.clone(), l.measured.iter().sum(), p)
            })
            .collect();
        let title = format!(
            "{} training at batch {}: predicted against measured, per row",
            net.name, args.cost.batch
        );
        crate::plot::draw_profile(path, &title, &rows).map_err(fail)?;
        eprintln!("wrote {}", path.display());
    }
    let share = |s: f64| {
        if total_measured > 0.0 {
            s / total_measured
        } else {
            0.0
        }
    };

    if let Format::Json = args.format {
        let rows: Vec<serde_json::Value> = lines
            .iter()
            .map(|l| {
                let m: f64 = l.measured.iter().sum();
                json!({
                    "name": l.name,
                    "fused_into_next": l.fused,
                    "forward_seconds": l.measured[0],
                    "input_grad_seconds": l.measured[1],
                    "weight_grad_seconds": l.measured[2],
                    "measured_seconds": m,
                    "predicted_forward_seconds": l.predicted.map(|p| p[0]),
                    "predicted_input_grad_seconds": l.predicted.map(|p| p[1]),
                    "predicted_weight_grad_seconds": l.predicted.map(|p| p[2]),
                    "predicted_seconds": l.predicted.map(|p| p.iter().sum::<f64>()),
                    "error_percent": error_percent(m, l.predicted.map(|p| p.iter().sum())),
                    "flops": l.flops,
                    "bytes": l.bytes,
                    "share": share(m),
                })
            })
            .collect();
        let doc = json!({
            "format_version": 1,
            "network": net.name,
            "batch": args.cost.batch,
            "mode": "train",
            "optimizer": config.optimizer_settings().plan().to_string(),
            "iterations": args.iters,
            "device": profile.map(|p| json!({"name": p.name, "source": p.source, "reference": p.reference})),
            "rows": rows,
            "loss": {"measured_seconds": measured.loss},
            "update": {"measured_seconds": measured.update, "predicted_seconds": update_predicted},
            "totals": {
                "measured_seconds": total_measured,
                "predicted_seconds": total_predicted,
                "error_percent": error_percent(total_measured, total_predicted),
                "rank_correlation": correlation,
            },
        });
        return emit(&(serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"));
    }
    let exact = matches!(args.format, Format::Csv);
    let us = |s: f64| seconds_cell(exact, s);
    let header: [&str; 13] = if exact {
        [
            "layer",
            "op",
            "forward_seconds",
            "predicted_forward_seconds",
            "input_grad_seconds",
            "predicted_input_grad_seconds",
            "weight_grad_seconds",
            "predicted_weight_grad_seconds",
            "measured_seconds",
            "error_percent",
            "gflops_per_second",
            "gbytes_per_second",
            "share_percent",
        ]
    } else {
        [
            "layer", "op", "fwd µs", "pred", "dX µs", "pred", "dW µs", "pred", "step µs",
            "error %", "GFLOP/s", "GB/s", "share %",
        ]
    };
    let opt = |v: Option<f64>| v.map_or("-".into(), us);
    let mut g = vec![header.map(String::from).to_vec()];
    for l in &lines {
        let m: f64 = l.measured.iter().sum();
        if l.fused && !exact {
            let mut cells = vec![l.name.clone(), l.ops.clone()];
            cells.extend(std::iter::repeat_n("fused".to_string(), 7));
            cells.extend(std::iter::repeat_n("-".to_string(), 4));
            g.push(cells);
            continue;
        }
        let p = |k: usize| l.predicted.map(|p| p[k]);
        g.push(vec![
            l.name.clone(),
            l.ops.clone(),
            us(l.measured[0]),
            opt(p(0)),
            us(l.measured[1]),
            opt(p(1)),
            us(l.measured[2]),
            opt(p(2)),
            us(m),
            error_percent(m, l.predicted.map(|p| p.iter().sum()))
                .map_or("-".into(), |e| format!("{e:+.0}")),
            rate(l.flops as f64, m),
            rate(l.bytes as f64, m),
            format!("{:.1}", share(m) * 100.0),
        ]);
    }
    let blank = || String::from("-");
    g.push(vec![
        "loss".into(),
        String::new(),
        blank(),
        blank(),
        blank(),
        blank(),
        blank(),
        blank(),
        us(measured.loss),
        blank(),
        blank(),
        blank(),
        format!("{:.1}", share(measured.loss) * 100.0),
    ]);
    g.push(vec![
        "update".into(),
        config.optimizer_settings().plan().to_string(),
        blank(),
        blank(),
        blank(),
        blank(),
        blank(),
        blank(),
        us(measured.update),
        error_percent(measured.update, update_predicted).map_or("-".into(), |e| format!("{e:+.0}")),
        blank(),
        blank(),
        format!("{:.1}", share(measured.update) * 100.0),
    ]);
    let total_flops: u64 = lines.iter().map(|l| l.flops).fold(0, u64::saturating_add);
    let col = |k: usize| lines.iter().map(|l| l.measured[k]).sum::<f64>();
    let pcol = |k: usize| {
        step.map(|s| {
            s.ops
                .iter()
                .map(|o| [o.forward, o.input_grad, o.weight_grad][k].predicted)
                .sum::<f64>()
        })
    };
    g.push(vec![
        "total".into(),
        String::new(),
        us(col(0)),
        opt(pcol(0)),
        us(col(1)),
        opt(pcol(1)),
        us(col(2)),
        opt(pcol(2)),
        us(total_measured),
        error_percent(total_measured, total_predicted).map_or("-".into(), |e| format!("{e:+.0}")),
        rate(total_flops as f64, total_measured),
        String::new(),
        "100.0".into(),
    ]);
    let footer = footer(profile, correlation, "; the step total includes the update");
    let heading = format!(
        "{}: batch {}, training step ({}), median of {} steps, {} threads\n",
        net.name,
        args.cost.batch,
        config.optimizer_settings().plan(),
        args.iters,
        runtime::kernels::num_threads()
    );
    emit_grid(args.format, &g, &heading, &footer)
}

/// A row's error against the measurement, in percent; none for a row
/// predicted or measured to take no time (a view).
fn error_percent(measured: f64, predicted: Option<f64>) -> Option<f64> {
    predicted
        .filter(|&p| measured > 0.0 && p > 0.0)
        .map(|p| (p / measured - 1.0) * 100.0)
}

/// The line under the table: the profile predicted with and, when there is
/// one, `note` and the rows' rank correlation; nothing without a profile.
fn footer(profile: Option<&DeviceProfile>, correlation: Option<f64>, note: &str) -> String {
    let Some(p) = profile else {
        return String::new();
    };
    let rho = correlation.map_or(String::new(), |rho| {
        format!("{note}; rank correlation of the rows' times {rho:.3}")
    });
    format!(
        "\npredicted on {} ({}: {}){rho}\n",
        p.name, p.source, p.reference
    )
}

/// Seconds as a cell: exact for CSV, microseconds for people.
fn seconds_cell(exact: bool, s: f64) -> String {
    if exact {
        format!("{s:e}")
    } else {
        analyzer::render::micros(s)
    }
}

/// `x` units per second, in billions; "-" where nothing was done or timed.
fn rate(x: f64, s: f64) -> String {
    if s > 0.0 && x > 0.0 {
        format!("{:.1}", x / s / 1e9)
    } else {
        "-".into()
    }
}

/// The grid in `format` under `heading`, `footer` after it. CSV is data:
/// its heading and footer go to stderr.
fn emit_grid(format: Format, g: &[Vec<String>], heading: &str, footer: &str) -> Result<(), Failed> {
    let text: String = match format {
        Format::Markdown => markdown_grid(g, &[0, 1]),
        Format::Csv => g
            .iter()
            .map(|l| l.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(",") + "\n")
            .collect(),
        Format::Table | Format::Json => aligned_grid(g, &[0, 1]),
    };
    if let Format::Csv = format {
        eprint!("{heading}{footer}");
        return emit(&text);
    }
    emit(&format!("{heading}\n{text}{footer}"))
}
