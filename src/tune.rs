//! `cnncost tune`: hyper-parameter search. Every trial is a `cnncost train`
//! process with its own config file and run directory under OUT, run
//! `--jobs` at a time; a trial whose metrics hold all its epochs is done,
//! so an interrupted search resumes where it stopped. Ends with a table
//! sorted by test accuracy and a scatter plot per hyper-parameter.

use plotters::prelude::*;
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};

/// One searched setting and how its values are drawn.
#[derive(Clone, Debug, PartialEq)]
pub enum Space {
    /// Every listed value (`lr=[0.1,0.01]`).
    List(Vec<f64>),
    /// log-uniform between two positive bounds (`lr=loguniform(1e-4,1e-1)`).
    LogUniform(f64, f64),
    /// uniform between two bounds (`momentum=uniform(0.8,0.99)`).
    Uniform(f64, f64),
}

/// One trial's settings, in the order the search names them.
pub type Trial = Vec<(&'static str, f64)>;

/// The settings `tune` can search: numeric keys of the training config,
/// with `wd` for `weight_decay`.
const KEYS: [&str; 9] = [
    "lr",
    "weight_decay",
    "momentum",
    "label_smoothing",
    "batch_size",
    "warmup_epochs",
    "min_lr",
    "pct_start",
    "ema",
];

fn key_name(k: &str) -> Result<&'static str, String> {
    let k = if k == "wd" { "weight_decay" } else { k };
    KEYS.iter().copied().find(|&x| x == k).ok_or_else(|| {
        format!(
            "`{k}` cannot be searched; use one of wd, {}",
            KEYS.join(", ")
        )
    })
}

/// Parses `lr=[0.1,0.01] wd=loguniform(1e-5,1e-2)`.
pub fn parse_spaces(text: &str) -> Result<Vec<(&'static str, Space)>, String> {
    let mut out = Vec::new();
    for item in text.split_whitespace() {
        let (k, v) = item.split_once('=').ok_or_else(|| {
            format!("`{item}`: expected KEY=[a,b,...], KEY=loguniform(a,b) or KEY=uniform(a,b)")
        })?;
        let key = key_name(k)?;
        let nums = |inner: &str| -> Result<Vec<f64>, String> {
            inner
                .split(',')
                .map(|x| {
                    x.trim()
                        .parse::<f64>()
                        .map_err(|_| format!("`{item}`: `{x}` is not a number"))
                })
                .collect()
        };
        let space = if let Some(inner) = v.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            Space::List(nums(inner)?)
        } else if let Some(inner) = v
            .strip_prefix("loguniform(")
            .and_then(|r| r.strip_suffix(')'))
        {
            match nums(inner)?[..] {
                [a, b] if a > 0.0 && b > a => Space::LogUniform(a, b),
                _ => return Err(format!("`{item}`: loguniform takes two bounds 0 < a < b")),
            }
        } else if let Some(inner) = v.strip_prefix("uniform(").and_then(|r| r.strip_suffix(')')) {
            match nums(inner)?[..] {
                [a, b] if b > a => Space::Uniform(a, b),
                _ => return Err(format!("`{item}`: uniform takes two bounds a < b")),
            }
        } else {
            return Err(format!(
                "`{item}`: expected KEY=[a,b,...], KEY=loguniform(a,b) or KEY=uniform(a,b)"
            ));
        };
        if let Space::List(v) = &space {
            if v.is_empty() {
                return Err(format!("`{item}`: an empty list"));
            }
        }
        out.push((key, space));
    }
    if out.is_empty() {
        return Err("nothing to search: give e.g. 'lr=[0.1,0.01] wd=[1e-4,0]'".into());
    }
    Ok(out)
}

/// The trials of a grid: every combination of the lists, in order.
pub fn grid(spaces: &[(&'static str, Space)]) -> Result<Vec<Trial>, String> {
    let mut trials = vec![Vec::new()];
    for (k, s) in spaces {
        let Space::List(values) = s else {
            return Err(format!(
                "--grid takes lists; `{k}` is a distribution (use --random N)"
            ));
        };
        trials = trials
            .into_iter()
            .flat_map(|t| {
                values.iter().map(move |&v| {
                    let mut t = t.clone();
                    t.push((*k, v));
                    t
                })
            })
            .collect();
    }
    Ok(trials)
}

/// `n` random trials, drawn from `seed` (the same search each time).
pub fn random(
    spaces: &[(&'static str, Space)],
    n: usize,
    seed: u64,
) -> Vec<Vec<(&'static str, f64)>> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            spaces
                .iter()
                .map(|(k, s)| {
                    let v = match s {
                        Space::List(v) => v[rng.random_range(0..v.len())],
                        Space::LogUniform(a, b) => {
                            (a.ln() + rng.random::<f64>() * (b.ln() - a.ln())).exp()
                        }
                        Space::Uniform(a, b) => a + rng.random::<f64>() * (b - a),
                    };
                    (*k, v)
                })
                .collect()
        })
        .collect()
}

/// A trial's config: the base YAML's keys with the trial's settings over them.
pub fn trial_yaml(base: &serde_yaml::Mapping, trial: &[(&str, f64)], epochs: u64) -> String {
    let mut m = base.clone();
    for (k, v) in trial {
        let value = if *k == "batch_size" {
            serde_yaml::Value::from(v.round() as u64)
        } else {
            serde_yaml::Value::from(*v)
        };
        m.insert(serde_yaml::Value::from(*k), value);
    }
    m.insert("epochs".into(), serde_yaml::Value::from(epochs));
    serde_yaml::to_string(&m).unwrap_or_default()
}

/// The final test accuracy of a finished trial (all `epochs` in its metrics).
pub fn finished(dir: &Path, epochs: u64) -> Option<f64> {
    let text = std::fs::read_to_string(dir.join(runtime::train::METRICS)).ok()?;
    let last: runtime::train::EpochMetrics = serde_json::from_str(text.lines().last()?).ok()?;
    (last.epoch >= epochs).then_some(last.test_acc)
}

/// One scatter plot per setting: test accuracy against it.
pub fn plot(path: &Path, rows: &[(Trial, f64)]) -> Result<(), String> {
    let keys: Vec<&str> = rows
        .first()
        .map(|r| r.0.iter().map(|(k, _)| *k).collect())
        .unwrap_or_default();
    let width = 520 * keys.len().max(1) as u32;
    let root = BitMapBackend::new(path, (width, 440)).into_drawing_area();
    let e = |err: DrawingAreaErrorKind<_>| format!("cannot draw {}: {err}", path.display());
    root.fill(&WHITE).map_err(e)?;
    let panels = root.split_evenly((1, keys.len().max(1)));
    let (ymin, ymax) = rows
        .iter()
        .fold((100f64, 0f64), |(a, b), r| (a.min(r.1), b.max(r.1)));
    for (i, (key, panel)) in keys.iter().zip(panels.iter()).enumerate() {
        let xs: Vec<f64> = rows.iter().map(|r| r.0[i].1).collect();
        let positive = xs.iter().all(|&x| x > 0.0);
        let (lo, hi) = xs
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
        let pad = if hi > lo {
            (hi - lo) * 0.1
        } else {
            lo.abs().max(1e-3) * 0.5
        };
        let y = (ymin - 2.0).max(0.0)..(ymax + 2.0).min(100.0);
        let dots = rows.iter().map(|r| (r.0[i].1, r.1));
        let colour = RGBColor(31, 119, 180).filled();
        if positive && hi / lo > 10.0 {
            let mut c = ChartBuilder::on(panel)
                .margin(15)
                .caption(format!("test accuracy against {key}"), ("sans-serif", 18))
                .x_label_area_size(40)
                .y_label_area_size(50)
                .build_cartesian_2d((lo / 1.5..hi * 1.5).log_scale(), y)
                .map_err(e)?;
            c.configure_mesh()
                .x_desc(*key)
                .y_desc("test accuracy (%)")
                .x_label_formatter(&|v| format!("{v:.0e}"))
                .draw()
                .map_err(e)?;
            c.draw_series(dots.map(|p| Circle::new(p, 5, colour)))
                .map_err(e)?;
        } else {
            let mut c = ChartBuilder::on(panel)
                .margin(15)
                .caption(format!("test accuracy against {key}"), ("sans-serif", 18))
                .x_label_area_size(40)
                .y_label_area_size(50)
                .build_cartesian_2d(lo - pad..hi + pad, y)
                .map_err(e)?;
            c.configure_mesh()
                .x_desc(*key)
                .y_desc("test accuracy (%)")
                .draw()
                .map_err(e)?;
            c.draw_series(dots.map(|p| Circle::new(p, 5, colour)))
                .map_err(e)?;
        }
    }
    root.present().map_err(e)?;
    Ok(())
}

/// Where trial `i` lives.
pub fn trial_dir(out: &Path, i: usize) -> PathBuf {
    out.join(format!("trial-{:03}", i + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grids_and_random_searches() {
        let s = parse_spaces("lr=[0.1,0.01] wd=[1e-4,0]").unwrap();
        let g = grid(&s).unwrap();
        assert_eq!(g.len(), 4);
        assert_eq!(g[1], vec![("lr", 0.1), ("weight_decay", 0.0)]);
        let r = parse_spaces("lr=loguniform(1e-4,1e-1) momentum=uniform(0.8,0.99)").unwrap();
        let trials = random(&r, 50, 0);
        assert_eq!(trials.len(), 50);
        assert!(trials
            .iter()
            .all(|t| (1e-4..=1e-1).contains(&t[0].1) && (0.8..=0.99).contains(&t[1].1)));
        // Log-uniform: about half the draws below the geometric mean 3.16e-3.
        let below = trials
            .iter()
            .filter(|t| t[0].1 < (1e-4f64 * 1e-1).sqrt())
            .count();
        assert!((15..=35).contains(&below), "{below}");
        assert_eq!(random(&r, 5, 0), random(&r, 5, 0));
        assert!(grid(&r).is_err());
        assert!(parse_spaces("learning_rate=[1]")
            .unwrap_err()
            .contains("cannot be searched"));
        assert!(parse_spaces("lr=loguniform(0,1)").is_err());
    }
}
