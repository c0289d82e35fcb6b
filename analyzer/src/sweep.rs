//! `cnncost sweep`: a network's family over its declared parameters, with
//! budgets, and EfficientNet's compound scaling (docs/review.md).

use crate::diff::{split_scale, split_term, terms, Cmp, Quantity, Wording};
use crate::training::{parse_bytes, TrainOptions};
use crate::{analyze, Analysis, Options};
use dsl::value::{parse_literal, Value};
use dsl::Overrides;

/// The name that sweeps the input's height and width (`--input`) when the
/// network declares no parameter of that name.
pub const RESOLUTION: &str = "resolution";

/// At most this many configurations: each is a compile and an analysis.
pub const MAX_CONFIGURATIONS: usize = 10_000;

/// One `--set NAME=VALUE` or `--set NAME=[V1,V2,...]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    pub name: String,
    pub values: Vec<Value>,
}

/// Parses `NAME=VALUE` or `NAME=[V1, V2, ...]`; values are integers,
/// numbers or booleans.
pub fn parse_axis(text: &str) -> Result<Axis, String> {
    let (name, rest) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}`: expected NAME=VALUE or NAME=[V1,V2,...]"))?;
    let name = name.trim();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("`{text}`: `{name}` is not a parameter name"));
    }
    let rest = rest.trim();
    let items: Vec<&str> = match rest.strip_prefix('[') {
        Some(inner) => inner
            .strip_suffix(']')
            .ok_or_else(|| format!("`{text}`: the list has no closing `]`"))?
            .split(',')
            .map(str::trim)
            .collect(),
        None => vec![rest],
    };
    if items.iter().all(|i| i.is_empty()) {
        return Err(format!("`{text}`: give at least one value"));
    }
    let values = items
        .iter()
        .map(|i| {
            parse_literal(i).ok_or_else(|| {
                format!("`{text}`: `{i}` is not an integer, a number, true or false")
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Axis {
        name: name.to_string(),
        values,
    })
}

/// One configuration: a value per axis, in the axes' order.
pub type Configuration = Vec<(String, Value)>;

/// Every combination of the axes' values, the first axis varying slowest.
pub fn combinations(axes: &[Axis]) -> Result<Vec<Configuration>, String> {
    let count = axes
        .iter()
        .try_fold(1usize, |n, a| n.checked_mul(a.values.len()))
        .filter(|&n| n <= MAX_CONFIGURATIONS)
        .ok_or_else(|| {
            format!(
                "the sweep has more than {MAX_CONFIGURATIONS} configurations: give fewer values"
            )
        })?;
    let mut out: Vec<Configuration> = vec![Vec::new()];
    for axis in axes {
        out = out
            .into_iter()
            .flat_map(|c| {
                axis.values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.push((axis.name.clone(), v.clone()));
                    c
                })
            })
            .collect();
    }
    debug_assert_eq!(out.len(), count);
    Ok(out)
}

/// EfficientNet's compound scaling (Tan and Le 2019, "EfficientNet:
/// Rethinking Model Scaling for Convolutional Neural Networks", section 3.3,
/// equation 3): depth scales by ALPHA^phi, width by BETA^phi and resolution
/// by GAMMA^phi, where a grid search at phi = 1 under ALPHA * BETA^2 *
/// GAMMA^2 ~ 2 found these constants (section 4), so each step of phi about
/// doubles the FLOPs.
pub const ALPHA: f64 = 1.2;
pub const BETA: f64 = 1.1;
pub const GAMMA: f64 = 1.15;

/// The scaled depth, width and resolution at `phi`, rounded as
/// EfficientNet's code rounds them: depth (a count of repeats) up, width (a
/// channel count) to the nearest multiple of 8 and never down by more than
/// 10%, resolution to the nearest whole pixel.
/// Each at least 1; the caller bounds phi (the casts saturate).
pub fn compound(phi: f64, depth: i64, width: i64, resolution: u64) -> (i64, i64, u64) {
    let d = ((depth as f64 * ALPHA.powf(phi)).ceil() as i64).max(1);
    let w = width as f64 * BETA.powf(phi);
    let mut rounded = ((w + 4.0) as i64 / 8 * 8).max(8);
    if (rounded as f64) < 0.9 * w {
        rounded = rounded.saturating_add(8);
    }
    let r = ((resolution as f64 * GAMMA.powf(phi)).round() as u64).max(1);
    (d, rounded, r)
}

/// What a configuration costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Figures {
    pub params: u64,
    pub macs: u64,
    /// Peak live activations (inference).
    pub memory: u64,
    /// The training step's peak.
    pub peak: u64,
}

/// The analysis of one configuration, with its training step.
pub fn analysed<'n>(
    net: &'n dsl::Network,
    options: Options,
    train: &TrainOptions,
) -> Result<Analysis<'n>, String> {
    let render = |d: dsl::Diagnostic| d.render(&net.source);
    let a = analyze(net, options).map_err(render)?;
    crate::with_training(a, train).map_err(render)
}

/// The figures of an analysis that has its training step.
pub fn figures(a: &Analysis) -> Figures {
    Figures {
        params: a.totals.params,
        macs: a.totals.macs,
        memory: a.totals.peak_activation_bytes,
        peak: a.training.as_ref().map_or(0, |t| t.peak_bytes),
    }
}

/// The overrides of a configuration: `resolution` sets the input's height
/// and width unless the network declares it.
pub fn overrides(
    config: &Configuration,
    declared: &[String],
    input: [u64; 3],
) -> Result<Overrides, String> {
    let mut o = Overrides::default();
    for (name, value) in config {
        if name == RESOLUTION && !declared.iter().any(|d| d == RESOLUTION) {
            let Value::Int(r @ 1..) = *value else {
                return Err(format!(
                    "resolution {value}: the input's height and width must be a whole number >= 1"
                ));
            };
            o.input = Some([input[0], r as u64, r as u64]);
        } else {
            o.set.push((name.clone(), value.clone()));
        }
    }
    Ok(o)
}

// ---- budgets ----

/// One `--budget` bound: `macs<=600M`, `peak<=16GiB`.
#[derive(Clone, Debug, PartialEq)]
pub struct Bound {
    pub quantity: Quantity,
    pub cmp: Cmp,
    pub value: u64,
    pub text: String,
}

/// The bounds of one `--budget`.
#[derive(Clone, Debug, PartialEq)]
pub struct Budget(pub Vec<Bound>);

const BUDGET: Wording = Wording {
    option: "--budget",
    example: "bounds such as 'macs<=600M params<=5M'",
    comparisons: "<=, <, >= or >",
    value: "a value, such as macs<=600M",
    note: "",
};

/// Parses `--budget`: bounds separated by spaces or commas, each QUANTITY,
/// then <=, <, >= or >, then a number with an optional K, M or G (10^3,
/// 10^6, 10^9), or for bytes (activations, memory, saved, peak) a size
/// such as 16GiB or 512MB.
pub fn parse_budget(text: &str) -> Result<Budget, String> {
    terms(text, &BUDGET)?
        .into_iter()
        .map(parse_bound)
        .collect::<Result<_, _>>()
        .map(Budget)
}

fn parse_bound(term: &str) -> Result<Bound, String> {
    let (quantity, cmp, value) = split_term(term, &BUDGET)?;
    let value = if quantity.is_bytes() {
        parse_bytes(value).map_err(|e| format!("`{term}`: {e}"))?
    } else {
        parse_count(value).ok_or_else(|| {
            format!("`{value}` in `{term}` is not a count: write a number with an optional K, M or G, such as 600M")
        })?
    };
    Ok(Bound {
        quantity,
        cmp,
        value,
        text: term.to_string(),
    })
}

/// `600M`, `5.5M`, `1_000`: a non-negative count.
fn parse_count(text: &str) -> Option<u64> {
    let t = text.trim().replace('_', "");
    let (digits, scale) = split_scale(&t);
    let v: f64 = digits.parse().ok()?;
    let v = v * scale;
    (v.is_finite() && v >= 0.0 && v < u64::MAX as f64).then_some(v.round() as u64)
}

impl Budget {
    /// Whether the analysis is within every bound.
    pub fn admits(&self, a: &Analysis) -> bool {
        self.0.iter().all(|b| {
            let Some(v) = b.quantity.of(a) else {
                return false;
            };
            b.cmp.holds(v, b.value)
        })
    }
}
