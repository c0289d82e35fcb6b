//! Part of a dataset, named after its spec: `SPEC?classes=dog,cat&train=0.1`.
//! Written in the spec so that every command taking `--data` (train, eval,
//! ensemble, tune, ...) sees the same part; transfer learning's "train on five
//! classes, move to the other five with a tenth of their data" is two specs.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::{DataError, Dataset, Split};

/// What to keep of a dataset.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Subset {
    /// Classes to keep, by name or index, in their new label order.
    pub classes: Option<Vec<String>>,
    /// Fraction of each class's training images to keep, in (0, 1].
    pub train: Option<f64>,
}

impl Subset {
    /// Parses `classes=a,b,c&train=0.1` (either key optional).
    pub fn parse(query: &str) -> Result<Subset, DataError> {
        let mut s = Subset::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let Some((key, value)) = pair.split_once('=') else {
                return Err(DataError::new(format!(
                    "dataset option '{pair}' has no value: write classes=NAME,NAME,... or train=FRACTION"
                )));
            };
            match key {
                "classes" => {
                    let names: Vec<String> = value
                        .split(',')
                        .map(|n| n.trim().to_string())
                        .filter(|n| !n.is_empty())
                        .collect();
                    if names.is_empty() {
                        return Err(DataError::new(
                            "dataset option 'classes=' names no class: list names or indices, e.g. classes=cat,dog or classes=0,1",
                        ));
                    }
                    s.classes = Some(names);
                }
                "train" => {
                    let f: f64 = value.parse().map_err(|_| {
                        DataError::new(format!(
                            "dataset option 'train={value}' is not a number: give the fraction of training images to keep, e.g. train=0.1"
                        ))
                    })?;
                    if !(f > 0.0 && f <= 1.0) {
                        return Err(DataError::new(format!(
                            "dataset option 'train={value}' must lie in (0, 1]: it is the fraction of each class's training images kept"
                        )));
                    }
                    s.train = Some(f);
                }
                _ => {
                    return Err(DataError::new(format!(
                    "unknown dataset option '{key}': use classes=NAME,NAME,... or train=FRACTION"
                )))
                }
            }
        }
        Ok(s)
    }

    /// Keeps the chosen classes (relabelled 0.. in the order given) in both
    /// splits and, per class, a fixed random `train` fraction of the training
    /// images (at least one; the same images for every run and seed, so runs
    /// compare on the same data). The test split is kept whole.
    pub fn apply(&self, mut ds: Dataset) -> Result<Dataset, DataError> {
        let n = ds.image_len();
        if let Some(f) = self.train {
            let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); ds.classes.len()];
            for (i, &l) in ds.train.labels.iter().enumerate() {
                if let Some(c) = by_class.get_mut(l as usize) {
                    c.push(i);
                }
            }
            let mut chosen = vec![false; ds.train.len()];
            for (class, mut idx) in (0u64..).zip(by_class) {
                let k = ((idx.len() as f64 * f).round() as usize).clamp(1, idx.len().max(1));
                // one fixed stream per original class (the fraction is taken
                // before classes= relabels): a class's images do not depend on
                // which other classes are kept, or in what order
                idx.shuffle(&mut ChaCha8Rng::seed_from_u64(class));
                for &i in idx.iter().take(k) {
                    chosen[i] = true;
                }
            }
            ds.train = keep(&ds.train, n, |i, l| chosen[i].then_some(l));
        }
        if let Some(names) = &self.classes {
            // new label of each old label
            let mut relabel: Vec<Option<u32>> = vec![None; ds.classes.len()];
            let mut kept = Vec::with_capacity(names.len());
            for name in names {
                let old = match ds.classes.iter().position(|c| c == name) {
                    Some(i) => i,
                    None => match name.parse::<usize>() {
                        Ok(i) if i < ds.classes.len() => i,
                        _ => {
                            return Err(DataError::new(format!(
                                "dataset option classes: no class '{name}'; the classes are {} (or their indices 0..{})",
                                ds.classes.join(", "),
                                ds.classes.len().saturating_sub(1)
                            )))
                        }
                    },
                };
                if relabel[old].is_some() {
                    return Err(DataError::new(format!(
                        "dataset option classes: '{name}' ({}) is listed twice",
                        ds.classes[old]
                    )));
                }
                relabel[old] = Some(kept.len() as u32);
                kept.push(ds.classes[old].clone());
            }
            ds.train = keep(&ds.train, n, |_, l| relabel[l as usize]);
            ds.test = keep(&ds.test, n, |_, l| relabel[l as usize]);
            ds.classes = kept;
        }
        for (split, what) in [(&ds.train, "training"), (&ds.test, "test")] {
            if split.is_empty() {
                return Err(DataError::new(format!(
                    "dataset options leave no {what} images: check classes= names the classes present"
                )));
            }
        }
        Ok(ds)
    }
}

/// The images of `split` for which `label_of(index, label)` gives a new label.
fn keep(split: &Split, n: usize, label_of: impl Fn(usize, u32) -> Option<u32>) -> Split {
    let mut out = Split::default();
    for (i, &l) in split.labels.iter().enumerate() {
        if let Some(new) = label_of(i, l) {
            out.images
                .extend_from_slice(&split.images[i * n..(i + 1) * n]);
            out.labels.push(new);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three classes, image i is i repeated over 2 bytes (len <= 256); labels i % 3.
    fn toy(len: usize) -> Dataset {
        Dataset {
            source: "toy".into(),
            classes: vec!["a".into(), "b".into(), "c".into()],
            shape: [1, 1, 2],
            train: Split {
                images: (0..len).flat_map(|i| [i as u8; 2]).collect(),
                labels: (0..len as u32).map(|i| i % 3).collect(),
            },
            test: Split {
                images: (0..6).flat_map(|i| [i as u8; 2]).collect(),
                labels: (0..6).map(|i| i % 3).collect(),
            },
        }
    }

    #[test]
    fn classes_keep_and_relabel_in_given_order() {
        let s = Subset::parse("classes=c,0").unwrap();
        let ds = s.apply(toy(9)).unwrap();
        assert_eq!(ds.classes, vec!["c", "a"]);
        // old c (2, 5, 8) -> 0, old a (0, 3, 6) -> 1, order of the split kept
        assert_eq!(ds.train.labels, vec![1, 0, 1, 0, 1, 0]);
        assert_eq!(ds.train.images, vec![0, 0, 2, 2, 3, 3, 5, 5, 6, 6, 8, 8]);
        assert_eq!(ds.test.labels, vec![1, 0, 1, 0]);
    }

    #[test]
    fn train_fraction_is_per_class_and_fixed() {
        let s = Subset::parse("train=0.2").unwrap();
        let a = s.apply(toy(150)).unwrap();
        assert_eq!(a.train.label_counts(3), vec![10, 10, 10]);
        assert_eq!(a.test.len(), 6, "the test split is kept whole");
        // each kept image still carries its own label
        for (i, &l) in a.train.labels.iter().enumerate() {
            assert_eq!(u32::from(a.train.images[2 * i]) % 3, l);
        }
        assert_eq!(a.train, s.apply(toy(150)).unwrap().train);
        // not simply the first images of each class
        assert!(a.train.images.iter().any(|&b| b >= 30));
        // a class's choice does not depend on the other classes kept
        let only_b = Subset::parse("classes=b&train=0.2")
            .unwrap()
            .apply(toy(150))
            .unwrap();
        let b_images: Vec<u8> = a
            .train
            .labels
            .iter()
            .enumerate()
            .filter(|&(_, &l)| l == 1)
            .flat_map(|(i, _)| [a.train.images[2 * i]; 2])
            .collect();
        assert_eq!(only_b.train.images, b_images);
        assert_eq!(only_b.train.labels, vec![0; 10]);
        // at least one image per class
        let tiny = Subset::parse("train=0.001")
            .unwrap()
            .apply(toy(30))
            .unwrap();
        assert_eq!(tiny.train.label_counts(3), vec![1, 1, 1]);
    }

    #[test]
    fn bad_options_say_what_to_write() {
        for (q, want) in [
            ("classes=", "names no class"),
            ("classes=a,a", "listed twice"),
            ("classes=z", "no class 'z'; the classes are a, b, c"),
            ("classes=3", "no class '3'"),
            ("train=0", "must lie in (0, 1]"),
            ("train=1.5", "must lie in (0, 1]"),
            ("train=x", "not a number"),
            ("train", "has no value"),
            ("colour=red", "unknown dataset option 'colour'"),
        ] {
            let e = Subset::parse(q)
                .and_then(|s| s.apply(toy(9)))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{q}: {e}");
        }
    }
}
