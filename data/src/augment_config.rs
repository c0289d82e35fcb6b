//! The augmentation section of a training config, as YAML:
//!
//! ```yaml
//! augment:
//!   flip: true
//!   crop_padding: 4
//!   random_resized_crop: {scale: [0.08, 1.0], ratio: [0.75, 1.3333]}
//!   scale_jitter: {min: 256, max: 480}
//!   color_jitter: {brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1}
//!   pca_lighting: 0.1
//!   randaugment: {n: 2, m: 9}
//!   cutout: 16
//!   mixup: 0.2
//!   cutmix: 1.0
//! ```
//!
//! Every key is optional; an absent one is off. The per-image steps run in
//! a fixed order: random_resized_crop, scale_jitter, crop_padding, flip,
//! randaugment, color_jitter, pca_lighting, cutout. mixup and cutmix act
//! on whole batches (both set: one of the two per batch, by a coin).

use serde::{Deserialize, Serialize};

use crate::mix::BatchMix;
use crate::pca::Pca;
use crate::pipeline::{Pipeline, Transform};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AugmentConfig {
    /// Horizontal flip with probability 0.5.
    pub flip: bool,
    /// Zero-pad each side by this many pixels, then crop back at random;
    /// 0 is off.
    pub crop_padding: usize,
    pub random_resized_crop: Option<RandomResizedCropConfig>,
    pub scale_jitter: Option<ScaleJitterConfig>,
    pub color_jitter: Option<ColorJitterConfig>,
    /// AlexNet's PCA lighting: the standard deviation of the alphas (0.1 in the paper).
    pub pca_lighting: Option<f32>,
    pub randaugment: Option<RandAugmentConfig>,
    /// Cutout square side in pixels; 0 is off.
    pub cutout: Option<usize>,
    /// Mixup's Beta(alpha, alpha).
    pub mixup: Option<f32>,
    /// CutMix's Beta(alpha, alpha).
    pub cutmix: Option<f32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RandomResizedCropConfig {
    /// Range of the crop's area as a fraction of the image's.
    pub scale: [f32; 2],
    /// Range of the crop's aspect ratio (width / height).
    pub ratio: [f32; 2],
}

impl Default for RandomResizedCropConfig {
    fn default() -> Self {
        RandomResizedCropConfig {
            scale: [0.08, 1.0],
            ratio: [3.0 / 4.0, 4.0 / 3.0],
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleJitterConfig {
    pub min: usize,
    pub max: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ColorJitterConfig {
    pub brightness: f32,
    pub contrast: f32,
    pub saturation: f32,
    pub hue: f32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RandAugmentConfig {
    /// Operations per image.
    pub n: usize,
    /// Magnitude bin, 0..=30.
    pub m: usize,
}

impl Default for RandAugmentConfig {
    fn default() -> Self {
        RandAugmentConfig { n: 2, m: 9 }
    }
}

impl AugmentConfig {
    /// Checks ranges; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        let finite_nonneg = |v: f32| v.is_finite() && v >= 0.0;
        if let Some(r) = &self.random_resized_crop {
            let [s0, s1] = r.scale;
            if !(s0 > 0.0 && s0 <= s1 && s1 <= 1.0) {
                return Err(format!(
                    "augment.random_resized_crop.scale: need 0 < min <= max <= 1, got [{s0}, {s1}]"
                ));
            }
            let [r0, r1] = r.ratio;
            if !(r0 > 0.0 && r0 <= r1 && r1.is_finite()) {
                return Err(format!(
                    "augment.random_resized_crop.ratio: need 0 < min <= max, got [{r0}, {r1}]"
                ));
            }
        }
        if let Some(s) = &self.scale_jitter {
            if s.min == 0 || s.min > s.max {
                return Err(format!(
                    "augment.scale_jitter: need 0 < min <= max, got min {} max {}",
                    s.min, s.max
                ));
            }
        }
        if let Some(c) = &self.color_jitter {
            for (k, v) in [
                ("brightness", c.brightness),
                ("contrast", c.contrast),
                ("saturation", c.saturation),
            ] {
                if !finite_nonneg(v) {
                    return Err(format!("augment.color_jitter.{k}: need >= 0, got {v}"));
                }
            }
            if !(0.0..=0.5).contains(&c.hue) {
                return Err(format!(
                    "augment.color_jitter.hue: need 0 <= hue <= 0.5, got {}",
                    c.hue
                ));
            }
        }
        if let Some(s) = self.pca_lighting {
            if !finite_nonneg(s) {
                return Err(format!(
                    "augment.pca_lighting: need a standard deviation >= 0, got {s}"
                ));
            }
        }
        if let Some(r) = &self.randaugment {
            if r.m > 30 {
                return Err(format!("augment.randaugment.m: need 0..=30, got {}", r.m));
            }
        }
        for (k, v) in [("mixup", self.mixup), ("cutmix", self.cutmix)] {
            if let Some(a) = v {
                if !(a.is_finite() && a > 0.0) {
                    return Err(format!("augment.{k}: need alpha > 0, got {a}"));
                }
            }
        }
        Ok(())
    }

    /// Whether [`AugmentConfig::pipeline`] needs the training split's [`Pca`].
    pub fn needs_pca(&self) -> bool {
        self.pca_lighting.is_some()
    }

    /// The per-image pipeline (see the module docs for the order). With
    /// only crop_padding and flip set it is `PadCrop` then `Flip`, which
    /// [`crate::make_batch`] runs on its byte path.
    /// Panics if pca_lighting is set and `pca` is None: compute it with
    /// [`Pca::of`] on the training split when [`AugmentConfig::needs_pca`].
    pub fn pipeline(&self, pca: Option<&Pca>) -> Pipeline {
        let mut steps = Vec::new();
        if let Some(r) = &self.random_resized_crop {
            steps.push(Transform::RandomResizedCrop {
                scale: (r.scale[0], r.scale[1]),
                ratio: (r.ratio[0], r.ratio[1]),
            });
        }
        if let Some(s) = &self.scale_jitter {
            steps.push(Transform::ScaleJitter {
                min: s.min,
                max: s.max,
            });
        }
        if self.crop_padding > 0 {
            steps.push(Transform::PadCrop {
                padding: self.crop_padding,
            });
        }
        if self.flip {
            steps.push(Transform::Flip);
        }
        if let Some(r) = &self.randaugment {
            steps.push(Transform::RandAugment { n: r.n, m: r.m });
        }
        if let Some(c) = &self.color_jitter {
            steps.push(Transform::ColorJitter {
                brightness: c.brightness,
                contrast: c.contrast,
                saturation: c.saturation,
                hue: c.hue,
            });
        }
        if let Some(sigma) = self.pca_lighting {
            let pca = pca.expect("pca_lighting needs the training split's Pca (Pca::of)");
            steps.push(Transform::PcaLighting {
                sigma,
                pca: pca.clone(),
            });
        }
        if let Some(size) = self.cutout.filter(|&s| s > 0) {
            steps.push(Transform::Cutout { size });
        }
        Pipeline { steps }
    }

    /// The batch-level mixing, if any.
    pub fn batch_mix(&self) -> Option<BatchMix> {
        match (self.mixup, self.cutmix) {
            (None, None) => None,
            (Some(alpha), None) => Some(BatchMix::Mixup { alpha }),
            (None, Some(alpha)) => Some(BatchMix::CutMix { alpha }),
            (Some(mixup), Some(cutmix)) => Some(BatchMix::Either { mixup, cutmix }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        augment: AugmentConfig,
    }

    const FULL: &str = "augment:
  flip: true
  crop_padding: 4
  random_resized_crop: {scale: [0.08, 1.0], ratio: [0.75, 1.3333]}
  scale_jitter: {min: 256, max: 480}
  color_jitter: {brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1}
  pca_lighting: 0.1
  randaugment: {n: 2, m: 9}
  cutout: 16
  mixup: 0.2
  cutmix: 1.0
";

    fn pca() -> Pca {
        Pca::from_covariance(
            [[1.0, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 0.25]],
            [0.5; 3],
        )
    }

    #[test]
    fn parses_the_full_example() {
        let c = serde_yaml::from_str::<Outer>(FULL).unwrap().augment;
        c.validate().unwrap();
        assert!(c.flip);
        assert_eq!(c.crop_padding, 4);
        assert_eq!(
            c.random_resized_crop.as_ref().unwrap().ratio,
            [0.75, 1.3333]
        );
        assert_eq!(
            c.scale_jitter,
            Some(ScaleJitterConfig { min: 256, max: 480 })
        );
        assert_eq!(c.color_jitter.as_ref().unwrap().hue, 0.1);
        assert_eq!(c.randaugment, Some(RandAugmentConfig { n: 2, m: 9 }));
        assert_eq!(c.cutout, Some(16));
        assert!(c.needs_pca());
        let p = c.pipeline(Some(&pca()));
        let kinds: Vec<&str> = p
            .steps
            .iter()
            .map(|s| match s {
                Transform::RandomResizedCrop { .. } => "rrc",
                Transform::ScaleJitter { .. } => "scale",
                Transform::PadCrop { .. } => "padcrop",
                Transform::Flip => "flip",
                Transform::RandAugment { .. } => "randaugment",
                Transform::ColorJitter { .. } => "jitter",
                Transform::PcaLighting { .. } => "pca",
                Transform::Cutout { .. } => "cutout",
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "rrc",
                "scale",
                "padcrop",
                "flip",
                "randaugment",
                "jitter",
                "pca",
                "cutout"
            ]
        );
        assert_eq!(
            c.batch_mix(),
            Some(BatchMix::Either {
                mixup: 0.2,
                cutmix: 1.0
            })
        );
    }

    #[test]
    fn defaults_and_basic_equivalence() {
        let c: AugmentConfig =
            serde_yaml::from_str("random_resized_crop: {}\nrandaugment: {}\n").unwrap();
        assert_eq!(
            c.random_resized_crop,
            Some(RandomResizedCropConfig::default())
        );
        assert_eq!(c.random_resized_crop.unwrap().scale, [0.08, 1.0]);
        assert_eq!(c.randaugment, Some(RandAugmentConfig { n: 2, m: 9 }));
        let c: AugmentConfig = serde_yaml::from_str("flip: true\ncrop_padding: 4\n").unwrap();
        assert_eq!(
            c.pipeline(None),
            Pipeline {
                steps: vec![Transform::PadCrop { padding: 4 }, Transform::Flip]
            }
        );
        assert_eq!(c.batch_mix(), None);
        let empty: AugmentConfig = serde_yaml::from_str("{}").unwrap();
        assert!(empty.pipeline(None).is_empty());
        let c: AugmentConfig = serde_yaml::from_str("cutmix: 1.0\ncutout: 0\n").unwrap();
        assert_eq!(c.batch_mix(), Some(BatchMix::CutMix { alpha: 1.0 }));
        assert!(c.pipeline(None).is_empty());
    }

    #[test]
    fn rejects_unknown_keys_and_bad_ranges() {
        let e = serde_yaml::from_str::<AugmentConfig>("flip: true\nrotate: 5\n").unwrap_err();
        assert!(e.to_string().contains("unknown field `rotate`"), "{e}");
        let e = serde_yaml::from_str::<AugmentConfig>("randaugment: {n: 1, mag: 3}\n").unwrap_err();
        assert!(e.to_string().contains("unknown field `mag`"), "{e}");
        for (yaml, key) in [
            ("random_resized_crop: {scale: [0.5, 0.2]}", "scale"),
            ("random_resized_crop: {ratio: [0, 1]}", "ratio"),
            ("scale_jitter: {min: 480, max: 256}", "scale_jitter"),
            ("color_jitter: {hue: 0.7}", "hue"),
            ("color_jitter: {brightness: -1}", "brightness"),
            ("randaugment: {m: 31}", "randaugment.m"),
            ("mixup: 0", "mixup"),
            ("pca_lighting: -0.1", "pca_lighting"),
        ] {
            let c: AugmentConfig = serde_yaml::from_str(yaml).unwrap();
            let e = c.validate().unwrap_err();
            assert!(e.contains(key), "{yaml}: {e}");
        }
    }
}
