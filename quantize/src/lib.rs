//! fas-quantize: ONNX export, int8 calibration and signed bundles. Never links libtorch.

pub mod calibrate;
pub mod drift;
pub mod int8;
pub mod onnx;
