//! The preprocessing recipe of a model, recorded in its run dir and bundle manifest
//! (ARCHITECTURE.md contract 1) and executed by the same code everywhere.

use serde::{Deserialize, Serialize};

/// Colour space of one group of input channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColorSpace {
    Rgb,
    Bgr,
    Hsv,
    Ycrcb,
}

/// How the face crop is cut out of the frame.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CropSpec {
    /// Similarity-transform alignment of the 5 landmarks onto the reference template,
    /// with `scale` times the template's face extent kept as context
    /// (1.0 tight, 2.7 / 4.0 as deployed FAS models use).
    Aligned { scale: f32 },
    /// Square box around the detector box, enlarged by `scale`, no rotation.
    Box { scale: f32 },
}

/// Per-channel normalisation applied after scaling 8-bit values to [0, 1]:
/// `(v - mean) / std`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalize {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

/// Everything needed to turn a frame + face into the model's input tensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreprocessSpec {
    pub crop: CropSpec,
    /// Output width and height in pixels.
    pub width: u32,
    pub height: u32,
    /// Channel groups in order, each 3 channels (e.g. `[rgb, hsv]` gives 6 channels).
    pub color: Vec<ColorSpace>,
    /// One mean/std per output channel.
    pub normalize: Normalize,
}

use super::SpecError;

/// Largest supported output side, in pixels.
pub const MAX_SIDE: u32 = 16384;

const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

impl CropSpec {
    pub fn scale(&self) -> f32 {
        match *self {
            CropSpec::Aligned { scale } | CropSpec::Box { scale } => scale,
        }
    }
}

impl Normalize {
    /// ImageNet mean/std for each of `groups` RGB-like groups.
    pub fn imagenet(groups: usize) -> Self {
        Self {
            mean: IMAGENET_MEAN.repeat(groups),
            std: IMAGENET_STD.repeat(groups),
        }
    }

    /// `mean` and `std` repeated for `channels` channels.
    pub fn uniform(mean: f32, std: f32, channels: usize) -> Self {
        Self {
            mean: vec![mean; channels],
            std: vec![std; channels],
        }
    }
}

impl PreprocessSpec {
    /// Number of output channels: 3 per colour group.
    pub fn channels(&self) -> usize {
        3 * self.color.len()
    }

    /// Number of floats in one preprocessed face: `channels * height * width`.
    pub fn tensor_len(&self) -> usize {
        self.channels() * self.height as usize * self.width as usize
    }

    /// Checks that the spec can be executed; the error names the field and the fix.
    pub fn validate(&self) -> Result<(), SpecError> {
        let (width, height) = (self.width, self.height);
        if width == 0 || height == 0 {
            return Err(SpecError::ZeroSize { width, height });
        }
        if width > MAX_SIDE || height > MAX_SIDE {
            return Err(SpecError::TooLarge {
                width,
                height,
                max: MAX_SIDE,
            });
        }
        let scale = self.crop.scale();
        if !(scale.is_finite() && scale > 0.0) {
            return Err(SpecError::BadScale { scale });
        }
        if self.color.is_empty() {
            return Err(SpecError::NoColor);
        }
        let expected = self.channels();
        for (field, v) in [("mean", &self.normalize.mean), ("std", &self.normalize.std)] {
            if v.len() != expected {
                return Err(SpecError::NormalizeLength {
                    field,
                    got: v.len(),
                    expected,
                });
            }
            if let Some(index) = v.iter().position(|x| !x.is_finite()) {
                return Err(SpecError::NonFiniteNormalize {
                    field,
                    index,
                    value: v[index],
                });
            }
        }
        if let Some(index) = self.normalize.std.iter().position(|&s| s == 0.0) {
            return Err(SpecError::ZeroStd { index });
        }
        Ok(())
    }

    /// ResNet-style RGB model: aligned crop with 2.7× context, 256×256, ImageNet normalisation.
    pub fn resnet_rgb_256() -> Self {
        Self {
            crop: CropSpec::Aligned { scale: 2.7 },
            width: 256,
            height: 256,
            color: vec![ColorSpace::Rgb],
            normalize: Normalize::imagenet(1),
        }
    }

    /// MiniFASNet (Silent-Face-Anti-Spoofing): box crop ×2.7, 80×80, BGR, raw 0–255
    /// values (std = 1/255 undoes the [0, 1] scaling).
    pub fn minifas_80() -> Self {
        Self {
            crop: CropSpec::Box { scale: 2.7 },
            width: 80,
            height: 80,
            color: vec![ColorSpace::Bgr],
            normalize: Normalize::uniform(0.0, 1.0 / 255.0, 3),
        }
    }

    /// Two-stream RGB + HSV model: aligned ×2.7, 256×256, ImageNet for RGB and
    /// mean 0.5 / std 0.5 for HSV (H scaled by 1/255 like every channel).
    pub fn rgb_hsv_256() -> Self {
        let mut normalize = Normalize::imagenet(1);
        normalize.mean.extend([0.5; 3]);
        normalize.std.extend([0.5; 3]);
        Self {
            crop: CropSpec::Aligned { scale: 2.7 },
            width: 256,
            height: 256,
            color: vec![ColorSpace::Rgb, ColorSpace::Hsv],
            normalize,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_validate() {
        for s in [
            PreprocessSpec::resnet_rgb_256(),
            PreprocessSpec::minifas_80(),
            PreprocessSpec::rgb_hsv_256(),
        ] {
            s.validate().unwrap();
            assert_eq!(s.tensor_len(), s.channels() * (s.width * s.height) as usize);
        }
        assert_eq!(PreprocessSpec::rgb_hsv_256().channels(), 6);
    }

    #[test]
    fn validate_names_the_field() {
        let mut s = PreprocessSpec::resnet_rgb_256();
        s.width = 0;
        assert!(matches!(s.validate(), Err(SpecError::ZeroSize { .. })));
        let mut s = PreprocessSpec::resnet_rgb_256();
        s.normalize.std.pop();
        let e = s.validate().unwrap_err();
        assert!(e.to_string().contains("spec.normalize.std"), "{e}");
        let mut s = PreprocessSpec::resnet_rgb_256();
        s.normalize.std[1] = 0.0;
        assert_eq!(s.validate(), Err(SpecError::ZeroStd { index: 1 }));
        let mut s = PreprocessSpec::resnet_rgb_256();
        s.color.clear();
        assert_eq!(s.validate(), Err(SpecError::NoColor));
        let mut s = PreprocessSpec::minifas_80();
        s.crop = CropSpec::Box { scale: f32::NAN };
        assert!(matches!(s.validate(), Err(SpecError::BadScale { .. })));
        let mut s = PreprocessSpec::minifas_80();
        s.normalize.mean[0] = f32::INFINITY;
        assert!(matches!(
            s.validate(),
            Err(SpecError::NonFiniteNormalize { field: "mean", .. })
        ));
    }

    #[test]
    fn serde_round_trip() {
        let s = PreprocessSpec::rgb_hsv_256();
        let j = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<PreprocessSpec>(&j).unwrap(), s);
    }
}
