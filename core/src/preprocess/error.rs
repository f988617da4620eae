//! Typed errors of the preprocessing pipeline. Every message names the offending
//! field and says how to fix it.

use thiserror::Error;

/// A [`PreprocessSpec`](super::PreprocessSpec) that cannot be executed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SpecError {
    #[error("spec.width/spec.height is {width}x{height}: both must be at least 1 pixel")]
    ZeroSize { width: u32, height: u32 },
    #[error(
        "spec.width/spec.height is {width}x{height}: at most {max} pixels per side are supported"
    )]
    TooLarge { width: u32, height: u32, max: u32 },
    #[error("spec.color is empty: list at least one colour space, e.g. [\"rgb\"]")]
    NoColor,
    #[error(
        "spec.crop scale is {scale}: it must be finite and > 0 (1.0 tight, 2.7 / 4.0 zoomed out)"
    )]
    BadScale { scale: f32 },
    #[error(
        "spec.normalize.{field} has {got} values but spec.color gives {expected} channels: \
         give one {field} per output channel (3 per colour space)"
    )]
    NormalizeLength {
        field: &'static str,
        got: usize,
        expected: usize,
    },
    #[error("spec.normalize.{field}[{index}] is {value}: it must be finite")]
    NonFiniteNormalize {
        field: &'static str,
        index: usize,
        value: f32,
    },
    #[error("spec.normalize.std[{index}] is 0: a std of 0 divides by zero; use 1.0 to leave the channel unscaled")]
    ZeroStd { index: usize },
}

/// Why a frame + face could not be turned into a tensor.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PreprocessError {
    #[error("invalid preprocessing spec: {0}")]
    Spec(SpecError),
    #[error("frame is empty ({width}x{height}): decode a non-empty frame before preprocessing")]
    EmptyImage { width: u32, height: u32 },
    #[error("frame.data has {got} bytes but {width}x{height} RGB8 needs {expected}: pass tightly packed RGB rows")]
    ImageDataLength {
        width: u32,
        height: u32,
        expected: usize,
        got: usize,
    },
    #[error("face.landmarks[{index}] is not finite: drop this detection")]
    NonFiniteLandmarks { index: usize },
    #[error("face.bbox is not finite: drop this detection")]
    NonFiniteBox,
    #[error("face.landmarks are degenerate (all points coincide): no similarity transform exists; drop this detection or use a box crop")]
    DegenerateLandmarks,
    #[error("output buffer has {got} floats but the spec needs {expected}: size it with PreprocessSpec::tensor_len()")]
    OutputLength { expected: usize, got: usize },
}

// The inner error is this one's own text (a field path and its fix), not a cause: it is
// part of the message and not a `source()`, so a printed chain says it once.
impl From<SpecError> for PreprocessError {
    fn from(e: SpecError) -> Self {
        PreprocessError::Spec(e)
    }
}
