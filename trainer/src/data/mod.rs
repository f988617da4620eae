//! Turning dataset samples into training tensors.

pub mod protocol;
pub mod sampler;
pub mod tensor;
