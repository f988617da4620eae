//! fas-quantize: ONNX export, int8 calibration and signed bundles. Never links libtorch.
//!
//! * [`bundle`]: key generation, writing and signing `.fasb` bundles.

pub mod bundle;
pub mod calibrate;
pub mod drift;
pub mod export;
pub mod int8;
pub mod onnx;
