//! ONNX export: the model IR + its weights → an ONNX model whose one output is `p_live`
//! (contracts 2 and 3), written with the ONNX protobuf types that tract-onnx generates
//! with `prost`.

mod lower;
pub mod proto;
mod weights;

pub use lower::{bn_affine, export, ExportError, ExportOptions, OnnxModel, OUTPUT_NAME};
pub use weights::{Tensor, Weights, WeightsError};
