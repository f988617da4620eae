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
