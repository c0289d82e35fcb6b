//! Batch-level mixing: Mixup (Zhang et al. 2018) and CutMix (Yun et al.
//! 2019). Each mixes a batch with a random permutation of itself and
//! yields soft labels.

use rand::seq::SliceRandom;
use rand::Rng;
use rand_distr::{Beta, Distribution};

use crate::augment::Batch;

/// A mixed batch: `images` (normalised NCHW, like [`Batch::images`]) and,
/// per example i, the two labels it mixes with weights `lambda` and
/// `1 - lambda`.
#[derive(Clone, Debug, PartialEq)]
pub struct MixedBatch {
    pub images: Vec<f32>,
    pub labels_a: Vec<u32>,
    pub labels_b: Vec<u32>,
    /// Weight of `labels_a`; one value for the whole batch.
    pub lambda: f32,
    pub len: usize,
    /// The permutation: example i was mixed with example `partner[i]`.
    pub partner: Vec<usize>,
}

impl MixedBatch {
    /// Soft targets, `len` rows of `classes`: lambda at labels_a[i] plus
    /// 1 - lambda at labels_b[i]; each row sums to 1. Panics on a label
    /// >= classes.
    pub fn target(&self, classes: usize) -> Vec<f32> {
        let mut t = vec![0f32; self.len * classes];
        for (i, row) in t
            .chunks_exact_mut(classes.max(1))
            .enumerate()
            .take(self.len)
        {
            row[self.labels_a[i] as usize] += self.lambda;
            row[self.labels_b[i] as usize] += 1.0 - self.lambda;
        }
        t
    }

    /// A batch mixed with nothing: lambda 1, partner itself.
    pub fn unmixed(batch: &Batch) -> MixedBatch {
        MixedBatch {
            images: batch.images.clone(),
            labels_a: batch.labels.clone(),
            labels_b: batch.labels.clone(),
            lambda: 1.0,
            len: batch.len,
            partner: (0..batch.len).collect(),
        }
    }
}

/// Which batch-level mixing to apply.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BatchMix {
    Mixup {
        alpha: f32,
    },
    CutMix {
        alpha: f32,
    },
    /// One of the two, chosen by a fair coin per batch (as timm's Mixup
    /// with both enabled and switch probability 0.5).
    Either {
        mixup: f32,
        cutmix: f32,
    },
}

impl BatchMix {
    /// Mixes `batch` (images of `shape`) as configured.
    pub fn apply<R: Rng + ?Sized>(
        &self,
        batch: &Batch,
        shape: [usize; 3],
        rng: &mut R,
    ) -> MixedBatch {
        match *self {
            BatchMix::Mixup { alpha } => mixup(batch, alpha, rng),
            BatchMix::CutMix { alpha } => cutmix(batch, shape, alpha, rng),
            BatchMix::Either {
                mixup: a,
                cutmix: b,
            } => {
                if rng.random_bool(0.5) {
                    cutmix(batch, shape, b, rng)
                } else {
                    mixup(batch, a, rng)
                }
            }
        }
    }
}

/// lambda ~ Beta(alpha, alpha); 1 (no draw) when alpha <= 0 or not finite.
fn draw_lambda<R: Rng + ?Sized>(alpha: f32, rng: &mut R) -> f32 {
    if alpha > 0.0 && alpha.is_finite() {
        Beta::new(alpha, alpha)
            .expect("alpha is positive")
            .sample(rng)
    } else {
        1.0
    }
}

fn permutation<R: Rng + ?Sized>(n: usize, rng: &mut R) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    p.shuffle(rng);
    p
}

/// Mixup: draws lambda ~ Beta(alpha, alpha), then a permutation; image i
/// becomes lambda * x_i + (1 - lambda) * x_perm(i).
pub fn mixup<R: Rng + ?Sized>(batch: &Batch, alpha: f32, rng: &mut R) -> MixedBatch {
    let lambda = draw_lambda(alpha, rng);
    let perm = permutation(batch.len, rng);
    let n = batch.images.len().checked_div(batch.len).unwrap_or(0);
    let mut images = vec![0f32; batch.images.len()];
    for (i, &j) in perm.iter().enumerate() {
        let (a, b) = (
            &batch.images[i * n..(i + 1) * n],
            &batch.images[j * n..(j + 1) * n],
        );
        for (o, (&x, &y)) in images[i * n..(i + 1) * n].iter_mut().zip(a.iter().zip(b)) {
            *o = lambda * x + (1.0 - lambda) * y;
        }
    }
    MixedBatch {
        images,
        labels_a: batch.labels.clone(),
        labels_b: perm.iter().map(|&j| batch.labels[j]).collect(),
        lambda,
        len: batch.len,
        partner: perm,
    }
}

/// The CutMix box for an h x w image and a drawn lambda: side ratios
/// sqrt(1 - lambda) (truncated to pixels), centre row then column drawn
/// uniformly, clipped at the border. Returns (y0, y1, x0, x1), half open.
pub fn cutmix_box<R: Rng + ?Sized>(
    h: usize,
    w: usize,
    lambda: f32,
    rng: &mut R,
) -> (usize, usize, usize, usize) {
    let cut = (1.0 - lambda as f64).max(0.0).sqrt();
    let (ch, cw) = ((h as f64 * cut) as isize, (w as f64 * cut) as isize);
    let cy = rng.random_range(0..h.max(1)) as isize;
    let cx = rng.random_range(0..w.max(1)) as isize;
    let clip = |v: isize, hi: usize| v.clamp(0, hi as isize) as usize;
    (
        clip(cy - ch / 2, h),
        clip(cy + ch / 2, h),
        clip(cx - cw / 2, w),
        clip(cx + cw / 2, w),
    )
}

/// CutMix: draws lambda ~ Beta(alpha, alpha), a permutation, then the box
/// ([`cutmix_box`]); the box of image i (all channels) is replaced by that
/// of image perm(i); lambda is then set to 1 - box area / (H*W), the exact
/// fraction of image i left.
pub fn cutmix<R: Rng + ?Sized>(
    batch: &Batch,
    shape: [usize; 3],
    alpha: f32,
    rng: &mut R,
) -> MixedBatch {
    let [c, h, w] = shape;
    let n = c * h * w;
    assert_eq!(
        batch.images.len(),
        batch.len * n,
        "batch is not of shape {shape:?}"
    );
    let drawn = draw_lambda(alpha, rng);
    let perm = permutation(batch.len, rng);
    let (y0, y1, x0, x1) = cutmix_box(h, w, drawn, rng);
    let mut images = batch.images.clone();
    for (i, &j) in perm.iter().enumerate() {
        for ch in 0..c {
            for y in y0..y1 {
                let row = (ch * h + y) * w;
                let (dst, src) = (i * n + row, j * n + row);
                images[dst + x0..dst + x1].copy_from_slice(&batch.images[src + x0..src + x1]);
            }
        }
    }
    let area = ((y1 - y0) * (x1 - x0)) as f64;
    let lambda = if h * w == 0 {
        1.0
    } else {
        (1.0 - area / (h * w) as f64) as f32
    };
    MixedBatch {
        images,
        labels_a: batch.labels.clone(),
        labels_b: perm.iter().map(|&j| batch.labels[j]).collect(),
        lambda,
        len: batch.len,
        partner: perm,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// n images of shape 2x4x5, image i filled with distinct values.
    fn batch(n: usize) -> (Batch, [usize; 3]) {
        let shape = [2, 4, 5];
        let len = 40;
        let b = Batch {
            images: (0..n * len).map(|k| (k as f32) * 0.01 - 1.0).collect(),
            labels: (0..n as u32).map(|i| i % 3).collect(),
            len: n,
        };
        (b, shape)
    }

    fn rng(s: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(s)
    }

    #[test]
    fn mixup_is_a_convex_combination() {
        let (b, _) = batch(6);
        let m = mixup(&b, 0.4, &mut rng(3));
        assert!(m.lambda > 0.0 && m.lambda < 1.0, "{}", m.lambda);
        assert_ne!(m.partner, (0..6).collect::<Vec<_>>(), "not permuted");
        let mut sorted = m.partner.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..6).collect::<Vec<_>>());
        for i in 0..6 {
            let j = m.partner[i];
            for k in 0..40 {
                let want =
                    m.lambda * b.images[i * 40 + k] + (1.0 - m.lambda) * b.images[j * 40 + k];
                assert_eq!(m.images[i * 40 + k], want);
            }
            assert_eq!(m.labels_a[i], b.labels[i]);
            assert_eq!(m.labels_b[i], b.labels[j]);
        }
        let t = m.target(3);
        assert_eq!(t.len(), 18);
        for row in t.chunks(3) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6, "{row:?}");
        }
        // Row 0: lambda on labels_a[0], 1 - lambda on labels_b[0].
        let mut want = [0f32; 3];
        want[m.labels_a[0] as usize] += m.lambda;
        want[m.labels_b[0] as usize] += 1.0 - m.lambda;
        assert_eq!(t[..3], want);
        // Seeded.
        assert_eq!(mixup(&b, 0.4, &mut rng(3)), m);
        assert_ne!(mixup(&b, 0.4, &mut rng(4)), m);
    }

    #[test]
    fn cutmix_replaces_one_box_and_lambda_is_its_area() {
        let (b, shape) = batch(5);
        let mut boxes_seen = 0;
        for s in 0..20 {
            let m = cutmix(&b, shape, 1.0, &mut rng(s));
            // Re-derive the box from the same draws.
            let mut r = rng(s);
            let drawn = draw_lambda(1.0, &mut r);
            let _ = permutation(5, &mut r);
            let (y0, y1, x0, x1) = cutmix_box(4, 5, drawn, &mut r);
            let area = (y1 - y0) * (x1 - x0);
            assert_eq!(m.lambda, (1.0 - area as f64 / 20.0) as f32);
            if area > 0 {
                boxes_seen += 1;
            }
            for i in 0..5 {
                let j = m.partner[i];
                for ch in 0..2 {
                    for y in 0..4 {
                        for x in 0..5 {
                            let k = ch * 20 + y * 5 + x;
                            let inside = (y0..y1).contains(&y) && (x0..x1).contains(&x);
                            let src = if inside { j } else { i };
                            assert_eq!(m.images[i * 40 + k], b.images[src * 40 + k]);
                        }
                    }
                }
            }
            for row in m.target(3).chunks(3) {
                assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
            }
            assert_eq!(cutmix(&b, shape, 1.0, &mut rng(s)), m);
        }
        assert!(boxes_seen > 10, "{boxes_seen}");
    }

    #[test]
    fn either_and_degenerate_cases() {
        let (b, shape) = batch(4);
        let mix = BatchMix::Either {
            mixup: 0.2,
            cutmix: 1.0,
        };
        let outs: Vec<MixedBatch> = (0..20).map(|s| mix.apply(&b, shape, &mut rng(s))).collect();
        // A CutMix output keeps some pixels exact; a Mixup one (lambda < 1) does not.
        let cut = outs
            .iter()
            .filter(|m| m.images.iter().zip(&b.images).any(|(x, y)| x == y))
            .count();
        assert!(cut > 0 && cut < 20, "{cut}");
        let m = mixup(&b, 0.0, &mut rng(0));
        assert_eq!(m.lambda, 1.0);
        assert_eq!(m.images, b.images);
        let e = Batch {
            images: vec![],
            labels: vec![],
            len: 0,
        };
        assert_eq!(mixup(&e, 1.0, &mut rng(0)).len, 0);
        assert_eq!(cutmix(&e, shape, 1.0, &mut rng(0)).len, 0);
        let u = MixedBatch::unmixed(&b);
        assert_eq!(u.target(3)[..3], [1.0, 0.0, 0.0]);
    }
}
