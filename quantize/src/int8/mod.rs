//! int8 post-training quantisation of an exported fp32 model (`OnnxModel → Quantized`).
//!
//! * [`Encoding::Int8WeightOnly`]: Conv / Gemm / MatMul weights become int8, symmetric per
//!   output channel ([`weights`]); activations stay f32 — no calibration needed.
//! * [`Encoding::Int8Qdq`]: the same weights plus Q/DQ pairs on the activations those ops
//!   read ([`qdq`]), with per-tensor ranges calibrated in tract ([`crate::calibrate`]).
//!
//! The result is loaded and run in tract before it is returned ([`verify`]): a model the
//! edge could not run is an error here, never a file.

pub mod qdq;
pub mod verify;
pub mod weights;

use fas_core::bundle::{Calibration, Encoding};
use tract_onnx::pb::{ModelProto, StringStringEntryProto};

use crate::calibrate::{calibrate, CalibrationError, CalibrationOptions, TensorRange};
use crate::onnx::OnnxModel;

pub use verify::{verify_runs, TractRefusal, VerifyError};
pub use weights::{
    quantize_per_channel, quantize_weights, quantize_weights_with, ChannelQuant, QuantizedWeight,
    TRACT_FOLD_BYTES,
};

/// What to produce.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizeConfig {
    /// `Int8Qdq` or `Int8WeightOnly`.
    pub encoding: Encoding,
    /// Activation calibration (QDQ only).
    pub calibration: CalibrationOptions,
    /// QDQ: also quantise the inputs of Add / Concat whose inputs are all activations.
    pub quantize_joins: bool,
    /// Split weights whose f32 size exceeds this into several `DequantizeLinear`s
    /// ([`TRACT_FOLD_BYTES`]: tract then folds every weight at load); `None`: one each.
    pub dequantize_chunk_bytes: Option<usize>,
}

impl Default for QuantizeConfig {
    fn default() -> Self {
        QuantizeConfig {
            encoding: Encoding::Int8Qdq,
            calibration: CalibrationOptions::default(),
            quantize_joins: true,
            dequantize_chunk_bytes: Some(TRACT_FOLD_BYTES),
        }
    }
}

/// A quantised model, checked to run in tract.
#[derive(Debug, Clone)]
pub struct Quantized {
    pub onnx_bytes: Vec<u8>,
    pub proto: ModelProto,
    pub encoding: Encoding,
    /// Calibrated activation ranges (empty for weight-only).
    pub ranges: Vec<TensorRange>,
    pub weights: Vec<QuantizedWeight>,
    /// For the bundle manifest (`None` for weight-only: nothing was calibrated).
    pub calibration: Option<Calibration>,
    /// `p_live` of the first calibration sample (or of zeros) from the tract check.
    pub check_score: f32,
}

#[derive(Debug, thiserror::Error)]
pub enum QuantizeError {
    #[error("quantize: encoding {0:?} is not int8 — choose int8-qdq or int8-weight-only (fp32 needs no quantisation)")]
    Encoding(Encoding),
    #[error("quantize: the model has no graph — export it with fas-quantize export")]
    NoGraph,
    #[error(
        "quantize: the model has no Conv, Gemm or MatMul weights to quantise — ship it as fp32"
    )]
    NothingToQuantize,
    #[error("quantize: calibration sample {index} has {found} values, the model input {shape:?} needs {expected} — preprocess with the model's own spec")]
    SampleLen {
        index: usize,
        found: usize,
        expected: usize,
        shape: Vec<usize>,
    },
    #[error(transparent)]
    Calibration(#[from] CalibrationError),
    #[error("quantize: no range for activation \"{0}\" — internal: calibration and QDQ disagree on the tensors")]
    MissingRange(String),
    #[error(transparent)]
    Verify(#[from] VerifyError),
}

/// Quantises `model` as `cfg` says, calibrating on `calib` (preprocessed `[1, C, H, W]`
/// crops; required for QDQ, optional for weight-only), and checks the result runs in tract.
pub fn quantize(
    model: &OnnxModel,
    calib: &[Vec<f32>],
    cfg: &QuantizeConfig,
) -> Result<Quantized, QuantizeError> {
    if !matches!(cfg.encoding, Encoding::Int8Qdq | Encoding::Int8WeightOnly) {
        return Err(QuantizeError::Encoding(cfg.encoding));
    }
    let shape = model.input_shape.clone();
    let expected: usize = shape.iter().product();
    if let Some((index, s)) = calib.iter().enumerate().find(|(_, s)| s.len() != expected) {
        return Err(QuantizeError::SampleLen {
            index,
            found: s.len(),
            expected,
            shape,
        });
    }
    let mut proto = model.proto.clone();
    let graph = proto.graph.as_mut().ok_or(QuantizeError::NoGraph)?;
    let fp32_graph = graph.clone();
    let weights = quantize_weights_with(graph, cfg.dequantize_chunk_bytes);
    if weights.is_empty() {
        return Err(QuantizeError::NothingToQuantize);
    }
    let mut ranges = vec![];
    let mut calibration = None;
    if cfg.encoding == Encoding::Int8Qdq {
        let tensors = qdq::activation_tensors(&fp32_graph, cfg.quantize_joins);
        ranges = calibrate(&model.to_bytes(), &shape, &tensors, calib, &cfg.calibration)?;
        let missing = qdq::insert_qdq(
            graph,
            &ranges,
            cfg.calibration.activation_type,
            cfg.quantize_joins,
        );
        if let Some(t) = missing.into_iter().next() {
            return Err(QuantizeError::MissingRange(t));
        }
        calibration = Some(Calibration {
            method: cfg.calibration.method.to_string(),
            samples: calib.len() as u32,
        });
    }
    let mut meta = vec![("fas.encoding", encoding_name(cfg.encoding).to_string())];
    if let Some(c) = &calibration {
        meta.push(("fas.calibration", c.method.clone()));
        meta.push((
            "fas.activation_type",
            cfg.calibration.activation_type.to_string(),
        ));
    }
    for (k, v) in meta {
        proto.metadata_props.retain(|p| p.key != k);
        proto.metadata_props.push(StringStringEntryProto {
            key: k.into(),
            value: v,
        });
    }
    let onnx_bytes = {
        use prost::Message;
        proto.encode_to_vec()
    };
    let zeros;
    let sample = match calib.first() {
        Some(s) => s.as_slice(),
        None => {
            zeros = vec![0f32; expected];
            &zeros
        }
    };
    let check_score = verify_runs(&onnx_bytes, &proto, &shape, sample)?;
    Ok(Quantized {
        onnx_bytes,
        proto,
        encoding: cfg.encoding,
        ranges,
        weights,
        calibration,
        check_score,
    })
}

/// The manifest's name of an encoding (serde kebab-case).
pub fn encoding_name(e: Encoding) -> &'static str {
    match e {
        Encoding::Fp32 => "fp32",
        Encoding::Fp16 => "fp16",
        Encoding::Int8Qdq => "int8-qdq",
        Encoding::Int8WeightOnly => "int8-weight-only",
    }
}
