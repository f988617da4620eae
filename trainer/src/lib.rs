//! fas-train: training on tch (libtorch), CUDA when present, CPU otherwise.

pub mod data;
pub mod device;
pub mod eval;
pub mod prepare;
pub mod train;
