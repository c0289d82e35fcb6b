//! Per-channel statistics for normalisation.

use crate::Split;

/// Per-channel mean and standard deviation on the [0,1] scale (pixel/255).
#[derive(Clone, Debug, PartialEq)]
pub struct Normalization {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Normalization {
    /// Population mean and std of every pixel of `split`, per channel.
    /// Counts a histogram per channel, so the sums are exact integers and
    /// the f64 moments carry no accumulated rounding. A constant channel
    /// (std 0) gets std 1 so that normalising never divides by zero; an
    /// empty split gives the identity.
    pub fn of(split: &Split, shape: [usize; 3]) -> Normalization {
        let [c, h, w] = shape;
        let plane = h * w;
        if split.is_empty() || plane == 0 {
            return Normalization::identity(c);
        }
        let mut hist = vec![[0u64; 256]; c];
        for image in split.images.chunks_exact(c * plane) {
            for (ch, pixels) in image.chunks_exact(plane).enumerate() {
                let hist = &mut hist[ch];
                for &p in pixels {
                    hist[p as usize] += 1;
                }
            }
        }
        let mut mean = Vec::with_capacity(c);
        let mut std = Vec::with_capacity(c);
        for hist in &hist {
            let n: u64 = hist.iter().sum();
            let sum: u64 = hist.iter().enumerate().map(|(v, &k)| v as u64 * k).sum();
            let m = sum as f64 / n as f64 / 255.0;
            let var = hist
                .iter()
                .enumerate()
                .map(|(v, &k)| {
                    let d = v as f64 / 255.0 - m;
                    d * d * k as f64
                })
                .sum::<f64>()
                / n as f64;
            mean.push(m as f32);
            let s = var.sqrt() as f32;
            std.push(if s > 0.0 { s } else { 1.0 });
        }
        Normalization { mean, std }
    }

    /// Mean 0, std 1 for `c` channels: batches get plain pixel/255.
    pub fn identity(c: usize) -> Self {
        Normalization {
            mean: vec![0.0; c],
            std: vec![1.0; c],
        }
    }

    pub fn channels(&self) -> usize {
        self.mean.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_on_tiny_split() {
        // Two 2-channel 1x2 images. Channel 0 pixels: 0, 255, 255, 0 ->
        // mean 0.5, population std 0.5. Channel 1: 51 everywhere -> mean
        // 0.2, std 0 (reported as 1).
        let split = Split {
            images: vec![0, 255, 51, 51, 255, 0, 51, 51],
            labels: vec![0, 1],
        };
        let n = Normalization::of(&split, [2, 1, 2]);
        assert_eq!(n.mean, vec![0.5, 0.2]);
        assert_eq!(n.std, vec![0.5, 1.0]);
    }

    #[test]
    fn exact_on_uneven_values() {
        // One channel, pixels 0, 51, 102 -> 0, 0.2, 0.4: mean 0.2,
        // population variance (0.04 + 0 + 0.04) / 3.
        let split = Split {
            images: vec![0, 51, 102],
            labels: vec![0],
        };
        let n = Normalization::of(&split, [1, 1, 3]);
        assert!((n.mean[0] - 0.2).abs() < 1e-7);
        assert!((n.std[0] - (0.08f32 / 3.0).sqrt()).abs() < 1e-7);
    }

    #[test]
    fn identity_and_empty() {
        let id = Normalization::identity(3);
        assert_eq!(id.mean, vec![0.0; 3]);
        assert_eq!(id.std, vec![1.0; 3]);
        assert_eq!(Normalization::of(&Split::default(), [3, 2, 2]), id);
    }
}
