//! Per-image augmentation pipelines: a list of seeded random transforms,
//! applied in order, each drawing only from the RNG it is given; and
//! [`make_batch`], the one way to turn a split's images into a batch.

use rand::seq::SliceRandom;
use rand::Rng;

use crate::augment::{make_batch_bytes, Batch, PadCropFlip};
use crate::ops::{self, Image};
use crate::pca::{pca_lighting, Pca};
use crate::{Normalization, Split};

/// One random per-image transform. Geometric transforms fill uncovered
/// pixels with 0 and keep the image's size.
#[derive(Clone, Debug, PartialEq)]
pub enum Transform {
    /// Horizontal flip with probability 0.5 (one draw).
    Flip,
    /// Zero padding by `padding` on each side, then a random crop back to
    /// HxW (draws y then x offset); 0 draws nothing.
    PadCrop { padding: usize },
    /// torchvision's RandomResizedCrop back to the image's HxW: area
    /// fraction from `scale`, aspect ratio log-uniform in `ratio`; up to 10
    /// attempts, then the centre-crop fallback; antialiased bilinear resize.
    RandomResizedCrop {
        scale: (f32, f32),
        ratio: (f32, f32),
    },
    /// ResNet's scale augmentation: the short side resized to a uniform
    /// integer L in min..=max (aspect kept), then a random HxW crop.
    ScaleJitter { min: usize, max: usize },
    /// torchvision's ColorJitter: factors uniform in [max(0, 1-b), 1+b]
    /// (brightness, contrast, saturation) and hue shift in [-hue, hue],
    /// applied in a random order per image; a 0 disables that one.
    ColorJitter {
        brightness: f32,
        contrast: f32,
        saturation: f32,
        hue: f32,
    },
    /// AlexNet's PCA lighting with alpha ~ N(0, sigma).
    PcaLighting { sigma: f32, pca: Pca },
    /// RandAugment(N, M) over the 14 operations of [`RandOp`].
    RandAugment { n: usize, m: usize },
    /// Cutout: one `size` x `size` square at a uniformly random centre,
    /// clipped at the border, set to the cutout fill (0 after
    /// normalisation in [`make_batch`], as DeVries and Taylor).
    Cutout { size: usize },
}

/// The transforms applied to every training image, in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pipeline {
    pub steps: Vec<Transform>,
}

impl Pipeline {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The pipeline as the byte path's settings, when it is at most a
    /// `PadCrop` then a `Flip` (the draws the byte path makes, in its order).
    pub(crate) fn pad_crop_flip(&self) -> Option<PadCropFlip> {
        let mut fast = PadCropFlip::default();
        let mut rest = self.steps.as_slice();
        if let [Transform::PadCrop { padding }, tail @ ..] = rest {
            fast.crop_padding = *padding;
            rest = tail;
        }
        if let [Transform::Flip, tail @ ..] = rest {
            fast.flip = true;
            rest = tail;
        }
        rest.is_empty().then_some(fast)
    }

    /// Applies every step; Cutout fills with pixel value 0.
    pub fn apply<R: Rng + ?Sized>(&self, img: Image, rng: &mut R) -> Image {
        self.apply_with_fill(img, &[], rng)
    }

    /// As [`Pipeline::apply`], Cutout filling channel `ch` with
    /// `cutout_fill[ch]` (0 where absent).
    pub fn apply_with_fill<R: Rng + ?Sized>(
        &self,
        mut img: Image,
        cutout_fill: &[f32],
        rng: &mut R,
    ) -> Image {
        for step in &self.steps {
            img = step.apply(img, cutout_fill, rng);
        }
        img
    }

    /// Convenience for previews: CHW bytes in, rounded CHW bytes out.
    pub fn apply_u8<R: Rng + ?Sized>(
        &self,
        bytes: &[u8],
        shape: [usize; 3],
        rng: &mut R,
    ) -> Vec<u8> {
        self.apply(Image::from_u8(bytes, shape), rng).to_u8()
    }
}

/// A uniform draw in [lo, hi] (one draw even when lo == hi).
fn uniform<R: Rng + ?Sized>(rng: &mut R, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * rng.random::<f32>()
}

impl Transform {
    fn apply<R: Rng + ?Sized>(&self, img: Image, fill: &[f32], rng: &mut R) -> Image {
        match self {
            Transform::Flip => {
                if rng.random_bool(0.5) {
                    ops::flip_h(&img)
                } else {
                    img
                }
            }
            &Transform::PadCrop { padding } => {
                if padding == 0 {
                    return img;
                }
                let p = padding as u32;
                let dy = rng.random_range(0..=2 * p) as isize - p as isize;
                let dx = rng.random_range(0..=2 * p) as isize - p as isize;
                ops::shift(&img, dy, dx)
            }
            &Transform::RandomResizedCrop { scale, ratio } => {
                let (top, left, h, w) = rrc_params(img.h, img.w, scale, ratio, rng);
                ops::resized_crop(&img, top, left, h, w, img.h, img.w)
            }
            &Transform::ScaleJitter { min, max } => scale_jitter(&img, min, max, rng),
            &Transform::ColorJitter {
                brightness,
                contrast,
                saturation,
                hue,
            } => color_jitter(&img, brightness, contrast, saturation, hue, rng),
            Transform::PcaLighting { sigma, pca } => {
                let mut img = img;
                pca_lighting(&mut img, pca, *sigma, rng);
                img
            }
            &Transform::RandAugment { n, m } => rand_augment(&img, n, m, rng),
            &Transform::Cutout { size } => {
                let mut img = img;
                cutout(&mut img, size, fill, rng);
                img
            }
        }
    }
}

/// torchvision's `RandomResizedCrop.get_params` for an h x w image:
/// (top, left, height, width) of the crop. Each attempt draws the area
/// fraction, the log aspect ratio and, when the box fits, top then left.
pub fn rrc_params<R: Rng + ?Sized>(
    h: usize,
    w: usize,
    scale: (f32, f32),
    ratio: (f32, f32),
    rng: &mut R,
) -> (usize, usize, usize, usize) {
    let area = (h * w) as f64;
    let (lr0, lr1) = ((ratio.0 as f64).ln(), (ratio.1 as f64).ln());
    for _ in 0..10 {
        let target = area * uniform(rng, scale.0, scale.1) as f64;
        let aspect = (lr0 + (lr1 - lr0) * rng.random::<f64>()).exp();
        let cw = (target * aspect).sqrt().round() as usize;
        let ch = (target / aspect).sqrt().round() as usize;
        if 0 < cw && cw <= w && 0 < ch && ch <= h {
            let top = rng.random_range(0..=h - ch);
            let left = rng.random_range(0..=w - cw);
            return (top, left, ch, cw);
        }
    }
    // Centre crop, the aspect clamped to the ratio range.
    let in_ratio = w as f64 / h as f64;
    let (rmin, rmax) = (ratio.0.min(ratio.1) as f64, ratio.0.max(ratio.1) as f64);
    let (ch, cw) = if in_ratio < rmin {
        (((w as f64 / rmin).round() as usize).clamp(1, h), w)
    } else if in_ratio > rmax {
        (h, ((h as f64 * rmax).round() as usize).clamp(1, w))
    } else {
        (h, w)
    };
    ((h - ch) / 2, (w - cw) / 2, ch, cw)
}

/// Short side to L uniform in min..=max (long side rounded), then a
/// random crop of the original HxW (top then left drawn); zero fill where
/// the resized image is smaller than HxW.
pub fn scale_jitter<R: Rng + ?Sized>(img: &Image, min: usize, max: usize, rng: &mut R) -> Image {
    let (lo, hi) = (min.min(max).max(1), max.max(min).max(1));
    let l = rng.random_range(lo..=hi);
    let (h, w) = (img.h, img.w);
    let (nh, nw) = if h <= w {
        (l, ((w * l) as f64 / h as f64).round().max(1.0) as usize)
    } else {
        (((h * l) as f64 / w as f64).round().max(1.0) as usize, l)
    };
    let resized = ops::resize(img, nh, nw);
    let top = rng.random_range(0..=nh.saturating_sub(h)) as isize;
    let left = rng.random_range(0..=nw.saturating_sub(w)) as isize;
    // Centre a crop that is larger than the resized image.
    let top = if nh < h {
        -(((h - nh) / 2) as isize)
    } else {
        top
    };
    let left = if nw < w {
        -(((w - nw) / 2) as isize)
    } else {
        left
    };
    ops::crop(&resized, top, left, h, w)
}

/// torchvision's ColorJitter: draws a permutation of the four adjustments,
/// then each enabled factor (brightness, contrast, saturation, hue, in that
/// order), and applies the enabled ones in the permuted order.
pub fn color_jitter<R: Rng + ?Sized>(
    img: &Image,
    brightness: f32,
    contrast: f32,
    saturation: f32,
    hue: f32,
    rng: &mut R,
) -> Image {
    let mut order = [0usize, 1, 2, 3];
    order.shuffle(rng);
    let factor = |rng: &mut R, v: f32| (v > 0.0).then(|| uniform(rng, (1.0 - v).max(0.0), 1.0 + v));
    let b = factor(rng, brightness);
    let c = factor(rng, contrast);
    let s = factor(rng, saturation);
    let h = (hue > 0.0).then(|| uniform(rng, -hue, hue));
    let mut out = img.clone();
    for k in order {
        out = match (k, b, c, s, h) {
            (0, Some(f), ..) => ops::adjust_brightness(&out, f),
            (1, _, Some(f), ..) => ops::adjust_contrast(&out, f),
            (2, _, _, Some(f), _) => ops::adjust_saturation(&out, f),
            (3, .., Some(f)) => ops::adjust_hue(&out, f),
            _ => out,
        };
    }
    out
}

/// Cutout: draws the centre row then column uniformly over the image; the
/// `size` x `size` square with top-left (cy - size/2, cx - size/2),
/// clipped at the border, is set to `fill` (per channel, 0 where absent).
/// Returns the number of pixels per channel covered.
pub fn cutout<R: Rng + ?Sized>(img: &mut Image, size: usize, fill: &[f32], rng: &mut R) -> usize {
    if size == 0 || img.h == 0 || img.w == 0 {
        return 0;
    }
    let cy = rng.random_range(0..img.h) as isize;
    let cx = rng.random_range(0..img.w) as isize;
    let half = (size / 2) as isize;
    ops::fill_box(img, cy - half, cx - half, size, size, fill)
}

/// The 14 operations of RandAugment (Cubuk et al. 2019) as torchvision
/// lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RandOp {
    Identity,
    ShearX,
    ShearY,
    TranslateX,
    TranslateY,
    Rotate,
    Brightness,
    Color,
    Contrast,
    Sharpness,
    Posterize,
    Solarize,
    AutoContrast,
    Equalize,
}

impl RandOp {
    /// In torchvision's order (the index a uniform draw picks).
    pub const ALL: [RandOp; 14] = [
        RandOp::Identity,
        RandOp::ShearX,
        RandOp::ShearY,
        RandOp::TranslateX,
        RandOp::TranslateY,
        RandOp::Rotate,
        RandOp::Brightness,
        RandOp::Color,
        RandOp::Contrast,
        RandOp::Sharpness,
        RandOp::Posterize,
        RandOp::Solarize,
        RandOp::AutoContrast,
        RandOp::Equalize,
    ];

    /// Bins of the magnitude scale: M runs over 0..=30.
    pub const MAX_MAGNITUDE: usize = 30;

    /// The unsigned magnitude at bin `m` (0..=30) for an h x w image, and
    /// whether the op takes a random sign; torchvision's
    /// `_augmentation_space(31, (h, w))`.
    pub fn magnitude(self, m: usize, h: usize, w: usize) -> (f64, bool) {
        let m = m.min(Self::MAX_MAGNITUDE);
        let lin = |max: f64| max * m as f64 / Self::MAX_MAGNITUDE as f64;
        match self {
            RandOp::Identity | RandOp::AutoContrast | RandOp::Equalize => (0.0, false),
            RandOp::ShearX | RandOp::ShearY => (lin(0.3), true),
            RandOp::TranslateX => (lin(150.0 / 331.0 * w as f64), true),
            RandOp::TranslateY => (lin(150.0 / 331.0 * h as f64), true),
            RandOp::Rotate => (lin(30.0), true),
            RandOp::Brightness | RandOp::Color | RandOp::Contrast | RandOp::Sharpness => {
                (lin(0.9), true)
            }
            // 8 - round(m / 7.5): 8 bits at M=0 down to 4 at M=30.
            RandOp::Posterize => (8.0 - (m as f64 / 7.5).round(), false),
            RandOp::Solarize => (255.0 - lin(255.0), false),
        }
    }

    /// Applies the op with a (signed) magnitude, as torchvision's `_apply_op`
    /// (nearest neighbour, fill 0).
    pub fn apply(self, img: &Image, magnitude: f64) -> Image {
        match self {
            RandOp::Identity => img.clone(),
            RandOp::ShearX => ops::shear_x(img, magnitude),
            RandOp::ShearY => ops::shear_y(img, magnitude),
            // torchvision's int(): truncation toward zero.
            RandOp::TranslateX => ops::translate_x(img, magnitude.trunc() as isize),
            RandOp::TranslateY => ops::translate_y(img, magnitude.trunc() as isize),
            RandOp::Rotate => ops::rotate(img, magnitude),
            RandOp::Brightness => ops::adjust_brightness(img, 1.0 + magnitude as f32),
            RandOp::Color => ops::adjust_saturation(img, 1.0 + magnitude as f32),
            RandOp::Contrast => ops::adjust_contrast(img, 1.0 + magnitude as f32),
            RandOp::Sharpness => ops::adjust_sharpness(img, 1.0 + magnitude as f32),
            RandOp::Posterize => ops::posterize(img, magnitude as u32),
            RandOp::Solarize => ops::solarize(img, magnitude as f32),
            RandOp::AutoContrast => ops::auto_contrast(img),
            RandOp::Equalize => ops::equalize(img),
        }
    }
}

/// RandAugment(N, M): N times, draws an op uniformly from the 14 and, for
/// signed ops, a fair coin for a negative sign; applies it at bin M.
pub fn rand_augment<R: Rng + ?Sized>(img: &Image, n: usize, m: usize, rng: &mut R) -> Image {
    let mut out = img.clone();
    for _ in 0..n {
        let op = RandOp::ALL[rng.random_range(0..RandOp::ALL.len())];
        let (mut mag, signed) = op.magnitude(m, out.h, out.w);
        if signed && rng.random_bool(0.5) {
            mag = -mag;
        }
        out = op.apply(&out, mag);
    }
    out
}

/// One batch as normalised f32 NCHW ((pixel/255 - mean)/std), each image
/// through `pipeline` with `rng` (none: as stored, nothing drawn). Cutout
/// fills with the channel mean (0 after normalisation). A pipeline of at
/// most a padded crop then a flip takes the byte path, which gives the same
/// draws and the same values. Panics if an index is out of range, `norm`
/// has the wrong channel count or a step changes the image's shape.
pub fn make_batch(
    split: &Split,
    indices: &[usize],
    shape: [usize; 3],
    norm: &Normalization,
    pipeline: Option<&Pipeline>,
    rng: &mut impl Rng,
) -> Batch {
    match pipeline {
        None => make_batch_bytes(split, indices, shape, norm, None, rng),
        Some(p) => match p.pad_crop_flip() {
            Some(fast) => make_batch_bytes(split, indices, shape, norm, Some(&fast), rng),
            None => make_batch_float(split, indices, shape, norm, p, rng),
        },
    }
}

/// [`make_batch`] through the transforms on float images.
pub(crate) fn make_batch_float(
    split: &Split,
    indices: &[usize],
    shape: [usize; 3],
    norm: &Normalization,
    pipeline: &Pipeline,
    rng: &mut impl Rng,
) -> Batch {
    let [c, h, w] = shape;
    crate::augment::assert_channels(norm, c);
    let fill: Vec<f32> = norm.mean.iter().map(|m| m * 255.0).collect();
    let plane = h * w;
    let mut images = Vec::with_capacity(indices.len() * c * plane);
    let mut labels = Vec::with_capacity(indices.len());
    for &i in indices {
        labels.push(split.labels[i]);
        let img =
            pipeline.apply_with_fill(Image::from_u8(split.image(i, shape), shape), &fill, rng);
        assert_eq!(
            img.shape(),
            shape,
            "an augmentation step changed the image size"
        );
        for (ch, values) in img.data.chunks_exact(plane.max(1)).enumerate().take(c) {
            let (m, s) = (norm.mean[ch], norm.std[ch]);
            images.extend(values.iter().map(|&v| (v / 255.0 - m) / s));
        }
    }
    Batch {
        images,
        labels,
        len: indices.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::augment::batch_rng;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn rng(s: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(s)
    }

    /// A c x h x w image with varied, distinct-ish values.
    fn varied(c: usize, h: usize, w: usize) -> Image {
        Image {
            c,
            h,
            w,
            data: (0..c * h * w)
                .map(|k| ((k * 37 + 11) % 256) as f32)
                .collect(),
        }
    }

    /// An RNG that must not be drawn from.
    struct NoDraw;
    impl rand::RngCore for NoDraw {
        fn next_u32(&mut self) -> u32 {
            panic!("drew from the rng")
        }
        fn next_u64(&mut self) -> u64 {
            panic!("drew from the rng")
        }
        fn fill_bytes(&mut self, _: &mut [u8]) {
            panic!("drew from the rng")
        }
    }

    fn pca() -> Pca {
        Pca::from_covariance(
            [[0.07, 0.06, 0.05], [0.06, 0.065, 0.06], [0.05, 0.06, 0.07]],
            [0.5; 3],
        )
    }

    fn every_transform() -> Vec<Transform> {
        vec![
            Transform::Flip,
            Transform::PadCrop { padding: 2 },
            Transform::RandomResizedCrop {
                scale: (0.08, 1.0),
                ratio: (0.75, 4.0 / 3.0),
            },
            Transform::ScaleJitter { min: 12, max: 20 },
            Transform::ColorJitter {
                brightness: 0.4,
                contrast: 0.4,
                saturation: 0.4,
                hue: 0.1,
            },
            Transform::PcaLighting {
                sigma: 0.1,
                pca: pca(),
            },
            Transform::RandAugment { n: 2, m: 9 },
            Transform::Cutout { size: 4 },
        ]
    }

    #[test]
    fn every_transform_is_seeded_and_random() {
        let img = varied(3, 10, 10);
        for t in every_transform() {
            let p = Pipeline {
                steps: vec![t.clone()],
            };
            let mut distinct: Vec<Image> = Vec::new();
            for s in 0..12 {
                let a = p.apply(img.clone(), &mut rng(s));
                let b = p.apply(img.clone(), &mut rng(s));
                assert_eq!(a, b, "{t:?} seed {s}");
                assert_eq!(a.shape(), img.shape(), "{t:?}");
                if !distinct.contains(&a) {
                    distinct.push(a);
                }
            }
            assert!(distinct.len() >= 2, "{t:?} gave one output for 12 seeds");
        }
        // The whole chain too.
        let all = Pipeline {
            steps: every_transform(),
        };
        assert_eq!(
            all.apply(img.clone(), &mut rng(5)),
            all.apply(img.clone(), &mut rng(5))
        );
        assert_ne!(
            all.apply(img.clone(), &mut rng(5)),
            all.apply(img, &mut rng(6))
        );
    }

    #[test]
    fn the_byte_path_matches_the_float_path() {
        let d = crate::load("synthetic:40").unwrap();
        let norm = Normalization::of(&d.train, d.shape);
        let idx: Vec<usize> = (0..d.train.len()).rev().collect();
        for (pad, flip) in [(0, false), (0, true), (4, false), (4, true), (1, true)] {
            let aug = PadCropFlip {
                crop_padding: pad,
                flip,
            };
            let mut steps = Vec::new();
            if pad > 0 {
                steps.push(Transform::PadCrop { padding: pad });
            }
            if flip {
                steps.push(Transform::Flip);
            }
            let p = Pipeline { steps };
            assert_eq!(p.pad_crop_flip(), Some(aug.clone()));
            for s in 0..3 {
                let want = make_batch_bytes(
                    &d.train,
                    &idx,
                    d.shape,
                    &norm,
                    Some(&aug),
                    &mut batch_rng(s, 1, 2),
                );
                let got =
                    make_batch_float(&d.train, &idx, d.shape, &norm, &p, &mut batch_rng(s, 1, 2));
                assert_eq!(got, want, "pad {pad} flip {flip} seed {s}");
                let public = make_batch(
                    &d.train,
                    &idx,
                    d.shape,
                    &norm,
                    Some(&p),
                    &mut batch_rng(s, 1, 2),
                );
                assert_eq!(public, want, "pad {pad} flip {flip} seed {s}");
            }
        }
        let want = make_batch_bytes(&d.train, &idx, d.shape, &norm, None, &mut NoDraw);
        assert_eq!(
            make_batch(&d.train, &idx, d.shape, &norm, None, &mut NoDraw),
            want
        );
        // An empty pipeline draws nothing and changes nothing.
        let empty = Pipeline::default();
        assert_eq!(
            make_batch_float(&d.train, &idx, d.shape, &norm, &empty, &mut NoDraw),
            want
        );
        assert_eq!(
            make_batch(&d.train, &idx, d.shape, &norm, Some(&empty), &mut NoDraw),
            want
        );
        // A flip before the crop draws in another order: not the byte path.
        let flipped_first = Pipeline {
            steps: vec![Transform::Flip, Transform::PadCrop { padding: 2 }],
        };
        assert_eq!(flipped_first.pad_crop_flip(), None);
    }

    #[test]
    fn flip_and_padcrop_steps() {
        let img = varied(2, 3, 4);
        let mut seen = Vec::new();
        for s in 0..40 {
            let out = Pipeline {
                steps: vec![Transform::Flip],
            }
            .apply(img.clone(), &mut rng(s));
            assert!(out == img || out == ops::flip_h(&img));
            if !seen.contains(&out) {
                seen.push(out);
            }
        }
        assert_eq!(seen.len(), 2);
        let mut shifts = Vec::new();
        for s in 0..100 {
            let out = Pipeline {
                steps: vec![Transform::PadCrop { padding: 1 }],
            }
            .apply(img.clone(), &mut rng(s));
            let found = (-1..=1)
                .flat_map(|dy| (-1..=1).map(move |dx| (dy, dx)))
                .find(|&(dy, dx)| ops::shift(&img, dy, dx) == out)
                .expect("not a padded shift");
            if !shifts.contains(&found) {
                shifts.push(found);
            }
        }
        assert_eq!(shifts.len(), 9);
    }

    #[test]
    fn random_resized_crop_full_scale_unit_ratio_is_identity() {
        let img = varied(3, 9, 9);
        let t = Transform::RandomResizedCrop {
            scale: (1.0, 1.0),
            ratio: (1.0, 1.0),
        };
        let p = Pipeline { steps: vec![t] };
        for s in 0..5 {
            assert_eq!(p.apply(img.clone(), &mut rng(s)), img);
        }
        // A non-square image with the ratio at its own aspect.
        let img = varied(1, 6, 8);
        let p = Pipeline {
            steps: vec![Transform::RandomResizedCrop {
                scale: (1.0, 1.0),
                ratio: (4.0 / 3.0, 4.0 / 3.0),
            }],
        };
        assert_eq!(p.apply(img.clone(), &mut rng(0)), img);
    }

    #[test]
    fn random_resized_crop_params() {
        for s in 0..200 {
            let (t, l, h, w) = rrc_params(32, 48, (0.08, 1.0), (0.75, 4.0 / 3.0), &mut rng(s));
            assert!(t + h <= 32 && l + w <= 48 && h > 0 && w > 0);
            let frac = (h * w) as f64 / (32.0 * 48.0);
            let fallback = (t, l, h, w) == (0, 4, 32, 40) || (h, w) == (32, 48);
            if !fallback {
                // Rounding of each side loosens the bounds a little.
                assert!(frac > 0.05 && frac <= 1.0, "{frac}");
                let r = w as f64 / h as f64;
                assert!(r > 0.6 && r < 1.6, "{r}");
            }
        }
        // Unreachable ratio: all attempts fail, then the centre crop with
        // the aspect clamped to the range.
        assert_eq!(
            rrc_params(8, 8, (1.0, 1.0), (2.0, 2.0), &mut rng(0)),
            (2, 0, 4, 8)
        );
        assert_eq!(
            rrc_params(8, 8, (1.0, 1.0), (0.5, 0.5), &mut rng(0)),
            (0, 2, 8, 4)
        );
        assert_eq!(
            rrc_params(4, 6, (1.0, 1.0), (1.0, 1.0), &mut rng(0)),
            (0, 1, 4, 4)
        );
    }

    #[test]
    fn scale_jitter_is_a_crop_of_the_resized_image() {
        let img = varied(2, 8, 8);
        assert_eq!(scale_jitter(&img, 8, 8, &mut rng(0)), img);
        let big = ops::resize(&img, 16, 16);
        let mut offsets = Vec::new();
        for s in 0..30 {
            let out = scale_jitter(&img, 16, 16, &mut rng(s));
            let found = (0..=8)
                .flat_map(|t| (0..=8).map(move |l| (t, l)))
                .find(|&(t, l)| ops::crop(&big, t, l, 8, 8) == out)
                .expect("not a crop of the resized image");
            if !offsets.contains(&found) {
                offsets.push(found);
            }
        }
        assert!(offsets.len() > 5);
        // Non-square: short side to L, long side in proportion.
        let wide = varied(1, 4, 8);
        let mut r = rng(3);
        let out = scale_jitter(&wide, 6, 6, &mut r);
        assert_eq!(out.shape(), [1, 4, 8]);
    }

    #[test]
    fn color_jitter_zero_is_identity_and_brightness_scales() {
        let img = varied(3, 5, 5);
        for s in 0..5 {
            assert_eq!(color_jitter(&img, 0.0, 0.0, 0.0, 0.0, &mut rng(s)), img);
        }
        let mut factors = Vec::new();
        for s in 0..10 {
            let out = color_jitter(&img, 0.5, 0.0, 0.0, 0.0, &mut rng(s));
            // One factor f in [0.5, 1.5] for all pixels, clipped at 255.
            let k = img
                .data
                .iter()
                .position(|&v| v > 20.0 && v < 150.0)
                .unwrap();
            let f = out.data[k] / img.data[k];
            assert!((0.5..=1.5).contains(&f), "{f}");
            assert_eq!(out, ops::adjust_brightness(&img, f_exact(&img, &out)));
            factors.push(f);
        }
        factors.dedup();
        assert!(factors.len() > 1);
        // Grayscale images: saturation and hue are no-ops.
        let g = varied(1, 4, 4);
        assert_eq!(color_jitter(&g, 0.0, 0.0, 0.9, 0.5, &mut rng(1)), g);
    }

    /// The brightness factor the jitter drew, recovered exactly.
    fn f_exact(img: &Image, out: &Image) -> f32 {
        // The largest unclipped pixel gives the best estimate; step through
        // nearby f32s to the one that reproduces the output exactly.
        let k = img
            .data
            .iter()
            .enumerate()
            .filter(|(k, _)| out.data[*k] < 255.0)
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0;
        let est = out.data[k] / img.data[k];
        let mut f = f32::from_bits(est.to_bits() - 32);
        for _ in 0..64 {
            if ops::adjust_brightness(img, f) == *out {
                return f;
            }
            f = f32::from_bits(f.to_bits() + 1);
        }
        est
    }

    #[test]
    fn color_jitter_applies_in_a_random_order() {
        // Re-derive the draws: a permutation of the four, then b and c.
        let img = varied(3, 6, 6);
        let (mut b_first, mut c_first) = (0, 0);
        for s in 0..40 {
            let out = color_jitter(&img, 0.8, 0.8, 0.0, 0.0, &mut rng(s));
            let mut r = rng(s);
            let mut order = [0usize, 1, 2, 3];
            order.shuffle(&mut r);
            let b = uniform(&mut r, 1.0 - 0.8, 1.0 + 0.8);
            let c = uniform(&mut r, 1.0 - 0.8, 1.0 + 0.8);
            let bc = ops::adjust_contrast(&ops::adjust_brightness(&img, b), c);
            let cb = ops::adjust_brightness(&ops::adjust_contrast(&img, c), b);
            assert_ne!(bc, cb, "seed {s}: orders indistinguishable");
            let brightness_first =
                order.iter().position(|&k| k == 0) < order.iter().position(|&k| k == 1);
            if brightness_first {
                assert_eq!(out, bc, "seed {s}");
                b_first += 1;
            } else {
                assert_eq!(out, cb, "seed {s}");
                c_first += 1;
            }
        }
        assert!(b_first > 0 && c_first > 0);
    }

    #[test]
    fn randaugment_magnitudes_follow_torchvision() {
        let m = |op: RandOp, bin| op.magnitude(bin, 32, 64);
        assert_eq!(m(RandOp::ShearX, 30), (0.3, true));
        assert!((m(RandOp::ShearY, 9).0 - 0.09).abs() < 1e-12);
        assert!((m(RandOp::TranslateX, 30).0 - 150.0 / 331.0 * 64.0).abs() < 1e-9);
        assert!((m(RandOp::TranslateY, 30).0 - 150.0 / 331.0 * 32.0).abs() < 1e-9);
        assert!((m(RandOp::Rotate, 9).0 - 9.0).abs() < 1e-12);
        assert!((m(RandOp::Brightness, 9).0 - 0.27).abs() < 1e-12);
        assert_eq!(m(RandOp::Posterize, 0), (8.0, false));
        assert_eq!(m(RandOp::Posterize, 9), (7.0, false));
        assert_eq!(m(RandOp::Posterize, 30), (4.0, false));
        assert_eq!(m(RandOp::Solarize, 0), (255.0, false));
        assert_eq!(m(RandOp::Solarize, 30), (0.0, false));
        assert_eq!(m(RandOp::Equalize, 30), (0.0, false));
        assert_eq!(RandOp::ALL.len(), 14);
        // Magnitude-0 geometric and enhancement ops are identities.
        let img = varied(3, 7, 7);
        for op in RandOp::ALL {
            if !matches!(
                op,
                RandOp::AutoContrast | RandOp::Equalize | RandOp::Solarize | RandOp::Posterize
            ) {
                assert_eq!(op.apply(&img, 0.0), img, "{op:?}");
            }
        }
        assert_eq!(RandOp::Posterize.apply(&img, 8.0), img);
        assert_eq!(RandOp::Solarize.apply(&img, 256.0), img);
    }

    #[test]
    fn randaugment_n0_identity_and_seeded() {
        let img = varied(3, 8, 8);
        assert_eq!(rand_augment(&img, 0, 9, &mut NoDraw), img);
        let a = rand_augment(&img, 2, 9, &mut rng(1));
        assert_eq!(a, rand_augment(&img, 2, 9, &mut rng(1)));
        let outs: Vec<Image> = (0..10)
            .map(|s| rand_augment(&img, 2, 9, &mut rng(s)))
            .collect();
        assert!(outs.iter().any(|o| *o != a));
        // N=1 output is always one of the 14 ops at +-magnitude.
        for s in 0..30 {
            let out = rand_augment(&img, 1, 15, &mut rng(s));
            let ok = RandOp::ALL.iter().any(|&op| {
                let (mag, _) = op.magnitude(15, 8, 8);
                op.apply(&img, mag) == out || op.apply(&img, -mag) == out
            });
            assert!(ok, "seed {s}");
        }
    }

    #[test]
    fn cutout_zeros_a_clipped_square() {
        let ones = Image {
            c: 2,
            h: 12,
            w: 12,
            data: vec![1.0; 288],
        };
        let (mut inside, mut border) = (0, 0);
        for s in 0..100 {
            let mut img = ones.clone();
            let n = cutout(&mut img, 4, &[], &mut rng(s));
            let mut r = rng(s);
            let cy = r.random_range(0..12) as isize;
            let cx = r.random_range(0..12) as isize;
            let fits = cy >= 2 && cy + 2 <= 12 && cx >= 2 && cx + 2 <= 12;
            let zeros = img.data[..144].iter().filter(|&&v| v == 0.0).count();
            assert_eq!(zeros, n);
            assert_eq!(img.data[144..].iter().filter(|&&v| v == 0.0).count(), n);
            for y in 0..12isize {
                for x in 0..12isize {
                    let cut = (cy - 2..cy + 2).contains(&y) && (cx - 2..cx + 2).contains(&x);
                    assert_eq!(img.at(0, y as usize, x as usize) == 0.0, cut);
                }
            }
            if fits {
                assert_eq!(n, 16);
                inside += 1;
            } else {
                assert!(n < 16 && n > 0, "{n}");
                border += 1;
            }
        }
        assert!(inside > 0 && border > 0);
        // In a batch the square is 0 after normalisation.
        let split = Split {
            images: vec![200; 3 * 64],
            labels: vec![1],
        };
        let norm = Normalization {
            mean: vec![0.3, 0.5, 0.7],
            std: vec![0.2, 0.2, 0.2],
        };
        let p = Pipeline {
            steps: vec![Transform::Cutout { size: 4 }],
        };
        let b = make_batch(&split, &[0], [3, 8, 8], &norm, Some(&p), &mut rng(2));
        let near_zero = b.images.iter().filter(|v| v.abs() < 1e-5).count();
        assert!(near_zero >= 3 && near_zero % 3 == 0, "{near_zero}");
    }

    #[test]
    fn pca_step_in_a_batch_shifts_channels() {
        let split = Split {
            images: (0..2 * 3 * 16).map(|k| (k * 5 % 256) as u8).collect(),
            labels: vec![0, 1],
        };
        let norm = Normalization::identity(3);
        let p = Pipeline {
            steps: vec![Transform::PcaLighting {
                sigma: 0.1,
                pca: pca(),
            }],
        };
        let plain = make_batch(&split, &[0, 1], [3, 4, 4], &norm, None, &mut NoDraw);
        let lit = make_batch(&split, &[0, 1], [3, 4, 4], &norm, Some(&p), &mut rng(4));
        // Per image and channel, one constant offset.
        for img in 0..2 {
            for ch in 0..3 {
                let o = (img * 3 + ch) * 16;
                let d0 = lit.images[o] - plain.images[o];
                assert!(d0.abs() > 1e-6);
                for k in 0..16 {
                    assert!((lit.images[o + k] - plain.images[o + k] - d0).abs() < 1e-5);
                }
            }
        }
    }
}
