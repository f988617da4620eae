//! ONNX export: the model IR + its weights → an ONNX model whose one output is `p_live`
//! (contracts 2 and 3), written with the ONNX protobuf types that tract-onnx generates
//! with `prost`. `lower` is the driver, `ops` holds one lowering function per IR op.

mod lower;
mod ops;
pub mod proto;
mod weights;

pub use lower::{export, ExportError, ExportOptions, OnnxModel, OUTPUT_NAME};
pub use ops::bn_affine;
pub use weights::{Tensor, Weights, WeightsError};
