//! A small deterministic, learnable dataset for smoke tests.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{DataError, Dataset, Split};

const SHAPE: [usize; 3] = [3, 32, 32];
const CLASSES: [&str; 10] = [
    "red", "green", "blue", "yellow", "cyan", "magenta", "orange", "purple", "grey", "teal",
];
const PALETTE: [[i32; 3]; 10] = [
    [200, 40, 40],
    [40, 180, 40],
    [40, 60, 200],
    [210, 200, 40],
    [40, 190, 200],
    [190, 40, 190],
    [230, 130, 30],
    [110, 40, 150],
    [128, 128, 128],
    [30, 120, 120],
];

pub(crate) fn load(arg: &str) -> Result<Dataset, DataError> {
    let n: usize = arg.trim().parse().map_err(|_| {
        DataError::new(format!(
            "synthetic:{arg}: expected a number of training images, e.g. synthetic:1000"
        ))
    })?;
    if n == 0 {
        return Err(DataError::new(
            "synthetic:0: need at least 1 training image",
        ));
    }
    // The training images and a fifth as many test images, a byte per value.
    let bytes = (n as u64)
        .saturating_add(n as u64 / 5)
        .saturating_mul(SHAPE.iter().product::<usize>() as u64);
    crate::memory::check_fits(bytes, &format!("synthetic:{n}"))
        .map_err(|e| DataError::new(format!("{e}; ask for fewer images")))?;
    Ok(Dataset {
        source: String::new(),
        classes: CLASSES.iter().map(|s| s.to_string()).collect(),
        shape: SHAPE,
        train: generate(n, 0x5eed_0001),
        test: generate((n / 5).max(1), 0x5eed_0002),
    })
}

/// Each class is a colour plus a stripe pattern of its own orientation and
/// period, under uniform noise: easy to learn, not trivially constant.
fn generate(n: usize, seed: u64) -> Split {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let [c, h, w] = SHAPE;
    let mut images = Vec::with_capacity(n * c * h * w);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let class = i % 10;
        labels.push(class as u32);
        let period = 2 + class % 4;
        for (ch, base) in PALETTE[class].iter().enumerate() {
            for y in 0..h {
                for x in 0..w {
                    let t = if class < 5 { y } else { x } + ch;
                    let stripe = if (t / period) % 2 == 0 { 30 } else { -30 };
                    let noise = rng.random_range(-25..=25);
                    images.push((base + stripe + noise).clamp(0, 255) as u8);
                }
            }
        }
    }
    Split { images, labels }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_determinism() {
        let a = load("12").unwrap();
        assert_eq!(a.shape, [3, 32, 32]);
        assert_eq!(a.train.len(), 12);
        assert_eq!(a.test.len(), 2);
        assert_eq!(a.train.images.len(), 12 * 3072);
        assert_eq!(a.classes.len(), 10);
        let b = load("12").unwrap();
        assert_eq!(a.train, b.train);
        assert_eq!(a.test, b.test);
        assert_ne!(a.train.image(0, a.shape), a.train.image(10, a.shape));
        assert_eq!(load("3").unwrap().test.len(), 1);
    }

    #[test]
    fn classes_differ_in_mean_colour() {
        let d = load("100").unwrap();
        let mean_red = |class: u32| {
            let (mut s, mut k) = (0u64, 0u64);
            for i in (0..d.train.len()).filter(|&i| d.train.labels[i] == class) {
                s += d.train.image(i, d.shape)[..1024]
                    .iter()
                    .map(|&v| v as u64)
                    .sum::<u64>();
                k += 1024;
            }
            s as f64 / k as f64
        };
        assert!(mean_red(0) > 150.0 && mean_red(1) < 90.0);
    }

    #[test]
    fn bad_counts() {
        assert!(crate::load("synthetic:0")
            .unwrap_err()
            .to_string()
            .contains("at least 1"));
        assert!(crate::load("synthetic:x")
            .unwrap_err()
            .to_string()
            .contains("synthetic:x"));
    }
}
