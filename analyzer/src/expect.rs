//! `expect` lines: published figures a network must keep. `cnncost check`
//! evaluates them; a failing one makes the command exit 1.

use crate::render::thousands;
use crate::Analysis;
use dsl::ir::{Cmp, ExpectValue, Expectation, Quantity, Shape};
use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub enum Actual {
    Number(u64),
    Shape(Shape),
}

impl fmt::Display for Actual {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actual::Number(n) => f.write_str(&thousands(*n)),
            Actual::Shape(s) => write!(f, "{s}"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Outcome<'a> {
    pub expectation: &'a Expectation,
    pub actual: Actual,
    pub pass: bool,
    /// The allowed interval for `~`, e.g. `± 0.5M`.
    pub allowed: Option<f64>,
}

/// Half a unit of the last digit written: `~ 60M` allows ± 0.5M, `~ 3.8G`
/// ± 0.05G, `~ 0.27M` ± 0.005M. This is the rounding of published figures.
pub fn rounding_of(text: &str) -> f64 {
    let t: String = text.chars().filter(|&c| c != '_').collect();
    let (mantissa, scale) = match t.chars().last() {
        Some('K') => (&t[..t.len() - 1], 1e3),
        Some('M') => (&t[..t.len() - 1], 1e6),
        Some('G') => (&t[..t.len() - 1], 1e9),
        _ => (t.as_str(), 1.0),
    };
    let (digits, exp) = match mantissa.find(['e', 'E']) {
        Some(i) => (
            &mantissa[..i],
            mantissa[i + 1..].parse::<i32>().unwrap_or(0),
        ),
        None => (mantissa, 0),
    };
    let decimals = digits.find('.').map_or(0, |i| digits.len() - i - 1) as i32;
    0.5 * 10f64.powi(exp - decimals) * scale
}

fn actual(a: &Analysis, x: &Expectation) -> Actual {
    let t = if x.train { &a.train_totals } else { &a.totals };
    let per_elem = a.options.dtype.bytes() * a.options.batch.max(1);
    match x.quantity {
        Quantity::Params => Actual::Number(t.params),
        Quantity::Buffers => Actual::Number(t.buffers),
        Quantity::Macs => Actual::Number(t.macs),
        Quantity::Flops => Actual::Number(t.flops),
        Quantity::Depth => Actual::Number(t.depth),
        Quantity::Activations => Actual::Number(t.activation_bytes / per_elem),
        Quantity::Memory => Actual::Number(t.peak_activation_bytes),
        Quantity::Output => Actual::Shape(a.network.graph[a.network.output].shape),
    }
}

/// Evaluates every `expect` line of the analyzed network.
pub fn evaluate<'a>(a: &'a Analysis) -> Vec<Outcome<'a>> {
    a.network
        .expectations
        .iter()
        .map(|x| {
            let actual = actual(a, x);
            let (pass, allowed) = match (&actual, &x.value) {
                (Actual::Shape(s), ExpectValue::Shape(e)) => (s == e, None),
                (Actual::Number(n), ExpectValue::Number { value, text }) => {
                    let n = *n as f64;
                    match x.cmp {
                        Cmp::Eq => (n == *value, None),
                        Cmp::Lt => (n < *value, None),
                        Cmp::Le => (n <= *value, None),
                        Cmp::Gt => (n > *value, None),
                        Cmp::Ge => (n >= *value, None),
                        Cmp::Approx => {
                            let tol = match &x.tolerance {
                                Some(t) if t.percent => value.abs() * t.value / 100.0,
                                Some(t) => t.value,
                                None => rounding_of(text),
                            };
                            // A hair of slack for the float rounding of `tol`.
                            ((n - value).abs() <= tol * (1.0 + 1e-12), Some(tol))
                        }
                    }
                }
                _ => (false, None),
            };
            Outcome {
                expectation: x,
                actual,
                pass,
                allowed,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::rounding_of;

    #[test]
    fn rounding_follows_the_printed_digits() {
        assert_eq!(rounding_of("60M"), 0.5e6);
        assert!((rounding_of("3.8G") - 0.05e9).abs() < 1.0);
        assert!((rounding_of("0.27M") - 5e3).abs() < 1e-6);
        assert_eq!(rounding_of("138_357_544"), 0.5);
    }
}
