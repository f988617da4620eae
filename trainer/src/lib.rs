//! fas-train: training on tch (libtorch), CUDA when present, CPU otherwise.

pub mod app;
pub mod cli;
pub mod data;
pub mod device;
pub mod eval;
pub mod import;
pub mod nn;
pub mod prepare;
pub mod recipe;
pub mod train;
