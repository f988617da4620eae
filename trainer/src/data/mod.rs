//! Turning dataset samples into training tensors.

pub mod augment;
pub mod loader;
pub mod protocol;
pub mod sampler;
pub mod tensor;
