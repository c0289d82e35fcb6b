//! `cnncost sweep NET --set 'width=[16,32]' --set 'depth=[3,5]'`: the
//! network's family over its declared parameters, a budget's choice among
//! them, and EfficientNet's compound scaling.

use crate::common::{emit, fail, parse_input, read_source, CostArgs, Failed, Format};
use analyzer::render::{aligned_grid, binary_bytes, csv_field, markdown_grid, thousands};
use analyzer::sweep::{
    self, combinations, compound, parse_axis, parse_budget, Axis, Budget, Configuration, Figures,
    RESOLUTION,
};
use analyzer::training::TrainOptions;
use clap::Args;
use dsl::plan::Optimizer;
use dsl::value::Value;
use serde_json::json;
use std::path::PathBuf;

pub const LONG_ABOUT: &str = "\
Analyse a network for every combination of values of its declared
parameters: params, MACs, peak live activations and the training step's
peak memory, per configuration (docs/review.md).

`--set NAME=[V1,V2,...]` sweeps a parameter over a list (repeatable; the
first varies slowest); `--set NAME=V` fixes one. `resolution` sets the
input's height and width (as --input does) unless the network declares a
parameter of that name.

`--budget` keeps the configurations within bounds on their totals, each
QUANTITY then <=, <, >= or > then a value (counts with K, M, G = 10^3,
10^6, 10^9; bytes as 16GiB or 512MB), and marks the largest (the most
MACs, then the most params). The exit status is 1 when none fits.

`--compound PHI[,PHI...]` applies EfficientNet's compound scaling (Tan and
Le 2019): depth x 1.2^phi (rounded up), width x 1.1^phi (to a multiple of
8) and resolution x 1.15^phi, for a network that declares `width` and
`depth` parameters.

Examples:
  cnncost sweep resnet_cifar --set 'depth=[3,5,7,9,18]' --set 'width=[16,32]'
  cnncost sweep resnet_cifar --set 'depth=[3,5,7,9]' --budget 'params<=0.5M'
  cnncost sweep resnet_cifar --compound 0,1,2,3 --plot family.svg";

#[derive(Args)]
pub struct SweepArgs {
    /// The .net file or zoo name
    file: PathBuf,
    /// A parameter's values: NAME=[V1,V2,...] to sweep, NAME=V to fix (repeatable)
    #[arg(long = "set", value_name = "NAME=[V,...]", value_parser = parse_axis)]
    set: Vec<Axis>,
    /// Override the input shape, e.g. `--input 3x32x32`
    #[arg(long, value_name = "CxHxW", value_parser = parse_input)]
    input: Option<[u64; 3]>,
    /// EfficientNet's compound scaling at each PHI (needs `width` and `depth` parameters)
    #[arg(
        long,
        value_name = "PHI",
        value_delimiter = ',',
        allow_negative_numbers = true
    )]
    compound: Vec<f64>,
    /// Bounds on the totals: 'macs<=600M params<=5M peak<=16GiB'
    #[arg(long, value_name = "BOUNDS", value_parser = parse_budget)]
    budget: Option<Budget>,
    #[command(flatten)]
    cost: CostArgs,
    /// The optimizer of the training step whose peak is given
    #[arg(long, default_value = "momentum", value_name = "NAME")]
    optimizer: Optimizer,
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Draw params, MACs, memory and the training peak per configuration to FILE.svg or FILE.png
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
}

/// One configuration and what it costs (or why it does not compile).
pub struct Point {
    pub config: Configuration,
    pub figures: Result<Figures, String>,
    pub within: bool,
}

/// The integer value of parameter `name` in a compiled network.
fn declared_int(net: &dsl::Network, name: &str) -> Option<i64> {
    match net.params.iter().find(|(n, _)| n == name).map(|(_, v)| v) {
        Some(Value::Int(i)) => Some(*i),
        _ => None,
    }
}

/// The largest |PHI| taken: 1.2^20 is 38x the depth, already far beyond
/// any family's range.
const MAX_PHI: f64 = 20.0;

pub fn run(args: &SweepArgs) -> Result<(), Failed> {
    let (file_name, text) = read_source(&args.file)?;
    if let Some(plot) = &args.plot {
        crate::plot::check_image_path(plot).map_err(fail)?;
    }
    // The header and input line, read without compiling: the defaults need
    // not compile for the swept values to.
    let (file, _) = dsl::parser::parse(text.strip_prefix('\u{feff}').unwrap_or(&text));
    let net_name = file
        .header
        .as_ref()
        .map_or(file_name.clone(), |h| h.name.name.clone());
    let declared: Vec<String> = file
        .header
        .iter()
        .flat_map(|h| h.params.iter().map(|p| p.name.name.clone()))
        .collect();
    for (i, axis) in args.set.iter().enumerate() {
        if args.set[..i].iter().any(|a| a.name == axis.name) {
            return Err(fail(format!(
                "`--set {}` is given twice: give it once",
                axis.name
            )));
        }
        if axis.name != RESOLUTION && !declared.contains(&axis.name) {
            return Err(fail(format!(
                "`{}` is not a parameter of `{net_name}`: it declares {} (and `resolution` sets the input's height and width)",
                axis.name,
                if declared.is_empty() {
                    "none".to_string()
                } else {
                    declared.join(", ")
                }
            )));
        }
    }
    let input = match (args.input, file.input.as_ref().map(|i| i.dims.as_slice())) {
        (Some(i), _) => i,
        (None, Some(&[c, h, w])) => [c, h, w],
        (None, _) => {
            return Err(fail(format!(
                "`{file_name}` has no `input CxHxW` line: give --input"
            )))
        }
    };
    let configs: Vec<Configuration> = if args.compound.is_empty() {
        combinations(&args.set).map_err(fail)?
    } else {
        if let Some(a) = args.set.iter().find(|a| a.values.len() > 1) {
            return Err(fail(format!(
                "--compound chooses depth, width and resolution itself: `--set {}=[...]` sweeps beside it; fix it to one value",
                a.name
            )));
        }
        if let Some(phi) = args
            .compound
            .iter()
            .find(|p| p.is_nan() || p.abs() > MAX_PHI)
        {
            return Err(fail(format!(
                "--compound {phi}: give coefficients between -{MAX_PHI} and {MAX_PHI}"
            )));
        }
        let fixed: Configuration = args
            .set
            .iter()
            .map(|a| (a.name.clone(), a.values[0].clone()))
            .collect();
        // The base: the defaults with the fixed values.
        let base_overrides = sweep::overrides(&fixed, &declared, input).map_err(fail)?;
        let base = dsl::compile(&file_name, &text, &base_overrides).map_err(|e| {
            eprintln!("{e}");
            fail("--compound scales the network with its defaults (and the fixed --set values), which do not compile")
        })?;
        let (Some(depth), Some(width)) =
            (declared_int(&base, "depth"), declared_int(&base, "width"))
        else {
            return Err(fail(format!(
                "--compound needs whole-number `width` and `depth` parameters; `{net_name}` declares {}{}",
                if declared.is_empty() { "none".to_string() } else { declared.join(", ") },
                if fixed.iter().any(|(n, _)| n == "width" || n == "depth") {
                    " (and the --set values must be whole numbers)"
                } else {
                    ""
                }
            )));
        };
        // The resolution scaled: a declared parameter's value, else the
        // input's height (after --set resolution).
        let resolution = declared_int(&base, RESOLUTION)
            .map(|r| r.max(1) as u64)
            .unwrap_or(match base.input {
                dsl::Shape::Image { h, .. } => h,
                dsl::Shape::Flat(_) => 1,
            });
        args.compound
            .iter()
            .map(|&phi| {
                let (d, w, r) = compound(phi, depth, width, resolution);
                let mut c: Configuration = vec![
                    ("depth".into(), Value::Int(d)),
                    ("width".into(), Value::Int(w)),
                    (RESOLUTION.into(), Value::Int(r as i64)),
                ];
                c.extend(
                    fixed
                        .iter()
                        .filter(|(n, _)| !["depth", "width", RESOLUTION].contains(&n.as_str()))
                        .cloned(),
                );
                c
            })
            .collect()
    };
    let options = args.cost.options();
    let train = TrainOptions {
        optimizer: args.optimizer,
        ..TrainOptions::default()
    };
    let mut points: Vec<Point> = configs
        .into_iter()
        .map(|config| {
            let figures_and_within = sweep::overrides(&config, &declared, input).and_then(|o| {
                let net = dsl::compile(&file_name, &text, &o).map_err(|e| e.to_string())?;
                let a = sweep::analysed(&net, options, &train)?;
                let within = args.budget.as_ref().is_none_or(|b| b.admits(&a));
                Ok((sweep::figures(&a), within))
            });
            let (figures, within) = match figures_and_within {
                Ok((f, w)) => (Ok(f), w),
                Err(e) => (Err(first_error_line(&e)), false),
            };
            Point {
                config,
                figures,
                within,
            }
        })
        .collect();
    let largest = args.budget.as_ref().and_then(|_| {
        points
            .iter()
            .enumerate()
            .filter(|(_, p)| p.within)
            .filter_map(|(i, p)| p.figures.as_ref().ok().map(|f| (i, f)))
            .max_by_key(|(_, f)| (f.macs, f.params))
            .map(|(i, _)| i)
    });
    if args.budget.is_none() {
        for p in &mut points {
            p.within = p.figures.is_ok();
        }
    }
    let phis: Option<&[f64]> = (!args.compound.is_empty()).then_some(&args.compound);
    let text_out = render(args.format, &points, phis, args.budget.is_some(), largest);
    emit(&text_out)?;
    if let Some(path) = &args.plot {
        crate::plot::draw_sweep(path, &net_name, &points, largest).map_err(fail)?;
        eprintln!("wrote {}", path.display());
    }
    if points.iter().all(|p| p.figures.is_err()) {
        return Err(fail("no configuration compiles"));
    }
    if args.budget.is_some() && largest.is_none() {
        eprintln!("no configuration is within the budget");
        std::process::exit(crate::common::EXIT_CONDITION);
    }
    Ok(())
}

/// A compile error's message line (`error: ...`), for a row.
fn first_error_line(e: &str) -> String {
    e.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("error")
        .trim_start_matches("error: ")
        .to_string()
}

fn render(
    format: Format,
    points: &[Point],
    phis: Option<&[f64]>,
    budget: bool,
    largest: Option<usize>,
) -> String {
    let names: Vec<&str> = points
        .first()
        .map(|p| p.config.iter().map(|(n, _)| n.as_str()).collect())
        .unwrap_or_default();
    let mark = |i: usize, p: &Point| match (p.within, largest == Some(i)) {
        (_, true) => "largest",
        (true, false) => "yes",
        (false, false) => "no",
    };
    if let Format::Json = format {
        let rows: Vec<serde_json::Value> = points
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let settings: serde_json::Map<String, serde_json::Value> = p
                    .config
                    .iter()
                    .map(|(n, v)| (n.clone(), json!(v.to_string())))
                    .collect();
                let mut v = json!({ "settings": settings });
                if let Some(phis) = phis {
                    v["phi"] = json!(phis[i]);
                }
                match &p.figures {
                    Ok(f) => {
                        v["params"] = json!(f.params);
                        v["macs"] = json!(f.macs);
                        v["memory_bytes"] = json!(f.memory);
                        v["training_peak_bytes"] = json!(f.peak);
                    }
                    Err(e) => v["error"] = json!(e),
                }
                if budget {
                    v["within_budget"] = json!(p.within);
                    v["largest"] = json!(largest == Some(i));
                }
                v
            })
            .collect();
        return serde_json::to_string_pretty(
            &json!({ "format_version": 1, "configurations": rows }),
        )
        .unwrap_or_default()
            + "\n";
    }
    let exact = matches!(format, Format::Csv);
    let mut header: Vec<String> = Vec::new();
    if phis.is_some() {
        header.push("phi".into());
    }
    header.extend(names.iter().map(|n| n.to_string()));
    header.extend(
        if exact {
            ["params", "macs", "memory_bytes", "training_peak_bytes"]
        } else {
            ["params", "MACs", "memory", "training peak"]
        }
        .map(String::from),
    );
    if budget {
        header.push("within budget".into());
    }
    let mut g = vec![header];
    for (i, p) in points.iter().enumerate() {
        let mut cells: Vec<String> = Vec::new();
        if let Some(phis) = phis {
            cells.push(phis[i].to_string());
        }
        cells.extend(p.config.iter().map(|(_, v)| v.to_string()));
        match &p.figures {
            Ok(f) if exact => {
                cells.extend([f.params, f.macs, f.memory, f.peak].map(|n| n.to_string()))
            }
            Ok(f) => cells.extend([
                thousands(f.params),
                thousands(f.macs),
                binary_bytes(f.memory),
                binary_bytes(f.peak),
            ]),
            Err(e) => {
                cells.push(format!("error: {e}"));
                cells.extend(std::iter::repeat_n(String::new(), 3));
            }
        }
        if budget {
            cells.push(mark(i, p).into());
        }
        g.push(cells);
    }
    let keys = phis.map_or(0, |_| 1) + names.len();
    let left: Vec<usize> = (0..keys).collect();
    match format {
        Format::Markdown => markdown_grid(&g, &left),
        Format::Csv => g
            .iter()
            .map(|l| {
                let fields: Vec<String> = l.iter().map(|c| csv_field(c)).collect();
                fields.join(",") + "\n"
            })
            .collect(),
        Format::Table | Format::Json => aligned_grid(&g, &left),
    }
}
