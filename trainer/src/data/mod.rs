//! Turning dataset samples into training tensors.

pub mod tensor;
