//! Preprocessing: frame + detected face → the model's input tensor. One implementation
//! shared by the trainer, the calibrator and the edge device; [`preprocess`] is the
//! entry point.

pub mod align;
pub mod color;
pub mod error;
pub mod image;
pub mod resize;
pub mod spec;
pub mod tensor;

pub use align::{
    aligned_template, alignment_matrix, crop_face, crop_inverse_map, estimate_similarity, warp,
    Affine2, ARCFACE_TEMPLATE_112,
};
pub use color::{convert, convert_pixel, rgb_to_hsv, rgb_to_ycrcb};
pub use error::{PreprocessError, SpecError};
pub use image::{Face, RgbImage};
pub use resize::resize_bilinear;
pub use spec::*;
pub use tensor::{denormalize, normalize_into, preprocess, preprocess_batch, preprocess_into};
