//! AlexNet's PCA colour augmentation ("fancy PCA", Krizhevsky et al.
//! 2012, section 4.1): the principal components of the training set's RGB
//! pixel values, and a per-image colour offset along them.

use rand::Rng;
use rand_distr::{Distribution, Normal};

use crate::ops::Image;
use crate::Split;

/// Eigen-decomposition of the 3x3 covariance of RGB pixel values on the
/// [0,1] scale.
#[derive(Clone, Debug, PartialEq)]
pub struct Pca {
    /// Per-channel means (on the [0,1] scale).
    pub mean: [f64; 3],
    /// The covariance the decomposition is of.
    pub covariance: [[f64; 3]; 3],
    /// Eigenvalues, largest first.
    pub eigenvalues: [f64; 3],
    /// `eigenvectors[i]` is the unit eigenvector of `eigenvalues[i]`.
    pub eigenvectors: [[f64; 3]; 3],
}

impl Pca {
    /// The covariance of every pixel of `split` (3-channel images of
    /// `shape`), from exact integer sums. None for non-RGB shapes or an
    /// empty split.
    pub fn of(split: &Split, shape: [usize; 3]) -> Option<Pca> {
        let [c, h, w] = shape;
        let plane = h * w;
        if c != 3 || split.is_empty() || plane == 0 {
            return None;
        }
        let mut sum = [0u64; 3];
        let mut prod = [[0u64; 3]; 3];
        for image in split.images.chunks_exact(3 * plane) {
            let (r, rest) = image.split_at(plane);
            let (g, b) = rest.split_at(plane);
            for k in 0..plane {
                let px = [r[k] as u64, g[k] as u64, b[k] as u64];
                for i in 0..3 {
                    sum[i] += px[i];
                    for j in i..3 {
                        prod[i][j] += px[i] * px[j];
                    }
                }
            }
        }
        let n = (split.len() * plane) as f64;
        let mean: [f64; 3] = std::array::from_fn(|i| sum[i] as f64 / n);
        let mut cov = [[0f64; 3]; 3];
        for i in 0..3 {
            for j in i..3 {
                let v = (prod[i][j] as f64 / n - mean[i] * mean[j]) / (255.0 * 255.0);
                cov[i][j] = v;
                cov[j][i] = v;
            }
        }
        Some(Pca::from_covariance(cov, mean.map(|m| m / 255.0)))
    }

    /// Decomposes a symmetric covariance.
    pub fn from_covariance(covariance: [[f64; 3]; 3], mean: [f64; 3]) -> Pca {
        let (eigenvalues, eigenvectors) = symmetric_eigen3(covariance);
        Pca {
            mean,
            covariance,
            eigenvalues,
            eigenvectors,
        }
    }

    /// sum_i alpha_i * lambda_i * p_i: the [0,1]-scale RGB offset for
    /// coefficients `alpha`.
    #[allow(clippy::needless_range_loop)] // matrix indices read better
    pub fn offset(&self, alpha: [f64; 3]) -> [f64; 3] {
        let mut o = [0f64; 3];
        for i in 0..3 {
            for (ch, o) in o.iter_mut().enumerate() {
                *o += alpha[i] * self.eigenvalues[i] * self.eigenvectors[i][ch];
            }
        }
        o
    }
}

/// Eigenvalues (descending) and unit eigenvectors (rows) of a symmetric
/// 3x3 matrix, by cyclic Jacobi rotations.
#[allow(clippy::needless_range_loop)] // matrix indices read better
pub fn symmetric_eigen3(m: [[f64; 3]; 3]) -> ([f64; 3], [[f64; 3]; 3]) {
    let mut a = m;
    // Columns of v are the eigenvectors.
    let mut v = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    let scale: f64 = a.iter().flatten().map(|x| x * x).sum::<f64>().sqrt();
    for _sweep in 0..64 {
        let off = a[0][1].powi(2) + a[0][2].powi(2) + a[1][2].powi(2);
        if off.sqrt() <= 1e-300 || off.sqrt() <= 1e-17 * scale {
            break;
        }
        for (p, q) in [(0, 1), (0, 2), (1, 2)] {
            if a[p][q] == 0.0 {
                continue;
            }
            // The rotation that zeroes a[p][q] (Numerical Recipes' jacobi).
            let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
            let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
            let t = if theta == 0.0 { 1.0 } else { t };
            let c = 1.0 / (t * t + 1.0).sqrt();
            let s = t * c;
            // a <- J^T a J with J the rotation in the (p, q) plane.
            for k in 0..3 {
                let (akp, akq) = (a[k][p], a[k][q]);
                a[k][p] = c * akp - s * akq;
                a[k][q] = s * akp + c * akq;
            }
            for k in 0..3 {
                let (apk, aqk) = (a[p][k], a[q][k]);
                a[p][k] = c * apk - s * aqk;
                a[q][k] = s * apk + c * aqk;
            }
            for row in v.iter_mut() {
                let (vp, vq) = (row[p], row[q]);
                row[p] = c * vp - s * vq;
                row[q] = s * vp + c * vq;
            }
        }
    }
    let mut order = [0usize, 1, 2];
    order.sort_by(|&i, &j| a[j][j].total_cmp(&a[i][i]));
    let values = order.map(|i| a[i][i]);
    let vectors = order.map(|i| {
        let mut e = [v[0][i], v[1][i], v[2][i]];
        // A fixed sign: the largest component positive.
        let big = e
            .iter()
            .copied()
            .fold(0f64, |m, x| if x.abs() > m.abs() { x } else { m });
        if big < 0.0 {
            e.iter_mut().for_each(|x| *x = -*x);
        }
        e
    });
    (values, vectors)
}

/// Draws alpha_i ~ N(0, sigma) (three draws, in order) and adds
/// sum_i alpha_i lambda_i p_i (times 255, as `img` is on the pixel scale)
/// to every pixel; no clamping. Returns the pixel-scale offset added.
/// Panics unless `img` has 3 channels.
pub fn pca_lighting<R: Rng + ?Sized>(
    img: &mut Image,
    pca: &Pca,
    sigma: f32,
    rng: &mut R,
) -> [f32; 3] {
    assert_eq!(img.c, 3, "PCA lighting needs RGB images");
    let alpha: [f64; 3] = if sigma > 0.0 {
        let normal = Normal::new(0.0, sigma as f64).expect("sigma is finite and positive");
        std::array::from_fn(|_| normal.sample(rng))
    } else {
        [0.0; 3]
    };
    let off = pca.offset(alpha).map(|o| (o * 255.0) as f32);
    let plane = img.h * img.w;
    if plane > 0 {
        for (ch, values) in img.data.chunks_exact_mut(plane).enumerate() {
            values.iter_mut().for_each(|v| *v += off[ch]);
        }
    }
    off
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn mul(a: [[f64; 3]; 3], x: [f64; 3]) -> [f64; 3] {
        std::array::from_fn(|i| (0..3).map(|j| a[i][j] * x[j]).sum())
    }

    fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
        (0..3).map(|i| a[i] * b[i]).sum()
    }

    fn check_decomposition(m: [[f64; 3]; 3]) {
        let (vals, vecs) = symmetric_eigen3(m);
        assert!(vals[0] >= vals[1] && vals[1] >= vals[2], "{vals:?}");
        for i in 0..3 {
            for j in 0..3 {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((dot(vecs[i], vecs[j]) - want).abs() < 1e-12, "{vecs:?}");
            }
            // M p = lambda p.
            let mp = mul(m, vecs[i]);
            for k in 0..3 {
                assert!((mp[k] - vals[i] * vecs[i][k]).abs() < 1e-12, "{m:?}");
            }
        }
        // sum lambda p p^T reconstructs M.
        for r in 0..3 {
            for c in 0..3 {
                let s: f64 = (0..3).map(|i| vals[i] * vecs[i][r] * vecs[i][c]).sum();
                assert!((s - m[r][c]).abs() < 1e-12, "{m:?} [{r}][{c}] {s}");
            }
        }
    }

    #[test]
    fn jacobi_decomposes_symmetric_matrices() {
        check_decomposition([[2.0, 1.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 3.0]]);
        check_decomposition([[4.0, -2.0, 0.5], [-2.0, 3.0, 1.5], [0.5, 1.5, 1.0]]);
        check_decomposition([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]);
        check_decomposition([[0.0; 3]; 3]);
        // ImageNet-like: strongly correlated channels.
        check_decomposition([
            [0.0680, 0.0620, 0.0560],
            [0.0620, 0.0640, 0.0600],
            [0.0560, 0.0600, 0.0690],
        ]);
        let (vals, _) = symmetric_eigen3([[2.0, 1.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 3.0]]);
        assert!((vals[0] - 3.0).abs() < 1e-12 && (vals[1] - 3.0).abs() < 1e-12);
        assert!((vals[2] - 1.0).abs() < 1e-12);
    }

    /// A split whose pixels vary only in red (values 0 and 255, G=B=100).
    fn red_only() -> Split {
        let plane = 4;
        let mut images = Vec::new();
        for red in [[0u8, 255, 0, 255], [255, 255, 0, 0]] {
            images.extend(red);
            images.extend([100u8; 4]);
            images.extend([100u8; 4]);
        }
        assert_eq!(images.len(), 2 * 3 * plane);
        Split {
            images,
            labels: vec![0, 1],
        }
    }

    #[test]
    fn covariance_of_a_split() {
        let pca = Pca::of(&red_only(), [3, 2, 2]).unwrap();
        // Red is 0 or 1 half the time: mean 0.5, variance 0.25.
        assert!((pca.mean[0] - 0.5).abs() < 1e-12);
        assert!((pca.mean[1] - 100.0 / 255.0).abs() < 1e-12);
        assert!((pca.covariance[0][0] - 0.25).abs() < 1e-12);
        for (i, j) in [(0, 1), (1, 1), (1, 2), (2, 2), (0, 2)] {
            assert!(pca.covariance[i][j].abs() < 1e-12);
        }
        assert!((pca.eigenvalues[0] - 0.25).abs() < 1e-12);
        assert!(pca.eigenvalues[1].abs() < 1e-12);
        assert!((pca.eigenvectors[0][0] - 1.0).abs() < 1e-12);
        assert!(Pca::of(&red_only(), [1, 2, 6]).is_none());
        assert!(Pca::of(&Split::default(), [3, 2, 2]).is_none());
    }

    #[test]
    fn lighting_offset_is_along_the_components() {
        // 1-D covariance: the offset is purely red.
        let pca = Pca::of(&red_only(), [3, 2, 2]).unwrap();
        let mut img = Image::from_u8(&[50; 12], [3, 2, 2]);
        let off = pca_lighting(&mut img, &pca, 0.1, &mut ChaCha8Rng::seed_from_u64(1));
        assert!(off[0].abs() > 1e-4, "{off:?}");
        assert!(off[1].abs() < 1e-9 && off[2].abs() < 1e-9, "{off:?}");
        assert!(img.data[..4].iter().all(|&v| v == 50.0 + off[0]));
        assert!(img.data[4..].iter().all(|&v| v == 50.0));

        // General covariance: the offset is exactly sum alpha_i lambda_i p_i
        // for the alphas the same seed draws.
        let pca = Pca::from_covariance(
            [[0.07, 0.06, 0.05], [0.06, 0.065, 0.06], [0.05, 0.06, 0.07]],
            [0.5; 3],
        );
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        // The same sigma as the transform uses (0.1 as f32, widened).
        let normal = Normal::new(0.0, 0.1f32 as f64).unwrap();
        let alpha: [f64; 3] = std::array::from_fn(|_| normal.sample(&mut rng));
        let want = pca.offset(alpha);
        let mut img = Image::from_u8(&(0..12).collect::<Vec<u8>>(), [3, 2, 2]);
        let before = img.clone();
        let off = pca_lighting(&mut img, &pca, 0.1, &mut ChaCha8Rng::seed_from_u64(7));
        for ch in 0..3 {
            assert_eq!(off[ch], (want[ch] * 255.0) as f32);
            for k in 0..4 {
                assert_eq!(img.data[ch * 4 + k], before.data[ch * 4 + k] + off[ch]);
            }
        }
        // Its coordinates in the eigenbasis are alpha_i lambda_i.
        for i in 0..3 {
            let coord = dot(want, pca.eigenvectors[i]);
            assert!((coord - alpha[i] * pca.eigenvalues[i]).abs() < 1e-12);
        }
        // Seeded: same seed same offset, another seed another.
        let again = pca_lighting(
            &mut before.clone(),
            &pca,
            0.1,
            &mut ChaCha8Rng::seed_from_u64(7),
        );
        let other = pca_lighting(
            &mut before.clone(),
            &pca,
            0.1,
            &mut ChaCha8Rng::seed_from_u64(8),
        );
        assert_eq!(again, off);
        assert_ne!(other, off);
    }
}
