//! The search space (`lr=[0.1,0.01] wd=loguniform(1e-5,1e-2)`) and the
//! trials drawn from it: every combination of lists (`--grid`) or random
//! draws from a seed (`--random N`).

use rand::{Rng, SeedableRng};

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
pub fn random(spaces: &[(&'static str, Space)], n: usize, seed: u64) -> Vec<Trial> {
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
