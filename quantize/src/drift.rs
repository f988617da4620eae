//! The accuracy gate between an fp32 model and its int8 version, measured in tract on a
//! held-out set: AUC of both, HTER of both at the fp32 EER threshold, and the |p_live|
//! drift per face. Over the bound, the error lists the layers whose activations drift
//! most (relative L2 error of each Conv / Gemm / MatMul output on a few samples).

use std::collections::HashSet;
use std::fmt;

use fas_core::bundle::Drift;
use fas_core::dataset::Label;
use fas_core::metrics::{auc, eer, hter, MetricsError};
use fas_infer::liveness::{LivenessError, LivenessModel};
use prost::Message;
use serde::{Deserialize, Serialize};
use tract_onnx::pb::ModelProto;

use crate::calibrate::{Probe, ProbeError};

/// Limits the int8 model must stay within.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftBound {
    /// Largest allowed |p_live(int8) − p_live(fp32)| on any held-out face.
    pub max_abs: f64,
    /// Largest allowed AUC(fp32) − AUC(int8).
    pub max_auc_drop: f64,
    /// Held-out samples used for the per-layer comparison (0: skip it).
    pub layer_samples: usize,
    /// Layers listed in the report's error.
    pub worst_layers: usize,
}

impl Default for DriftBound {
    fn default() -> Self {
        DriftBound {
            max_abs: 0.05,
            max_auc_drop: 0.005,
            layer_samples: 4,
            worst_layers: 5,
        }
    }
}

/// Relative error of one layer's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerDrift {
    /// ONNX value name of the layer's output.
    pub tensor: String,
    /// ONNX op type.
    pub op: String,
    /// ‖int8 − fp32‖₂ / ‖fp32‖₂ over the compared samples.
    pub rel_error: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    pub samples: usize,
    pub auc_fp32: f64,
    pub auc_int8: f64,
    /// The fp32 EER threshold, and the HTER of each model at it.
    pub threshold: f64,
    pub hter_fp32: f64,
    pub hter_int8: f64,
    pub max_abs: f64,
    pub mean_abs: f64,
    /// Per-layer drift, worst first.
    pub layers: Vec<LayerDrift>,
}

impl DriftReport {
    /// The manifest's `quantization.drift`.
    pub fn to_drift(&self) -> Drift {
        Drift {
            max_abs: self.max_abs,
            mean_abs: self.mean_abs,
            auc_fp32: self.auc_fp32,
            auc_int8: self.auc_int8,
        }
    }
}

impl fmt::Display for DriftReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} faces: AUC fp32 {:.4} int8 {:.4}; HTER at fp32 EER threshold {:.4}: fp32 {:.4} int8 {:.4}; |Δp_live| max {:.4} mean {:.4}",
            self.samples,
            self.auc_fp32,
            self.auc_int8,
            self.threshold,
            self.hter_fp32,
            self.hter_int8,
            self.max_abs,
            self.mean_abs
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DriftError {
    #[error("drift: the held-out set is empty — give labelled faces of both classes")]
    Empty,
    #[error(
        "drift: held-out sample {index} has {found} values, the input {shape:?} needs {expected}"
    )]
    SampleLen {
        index: usize,
        found: usize,
        expected: usize,
        shape: Vec<usize>,
    },
    #[error("drift: {which} model: cannot load it")]
    Model {
        which: &'static str,
        #[source]
        source: LivenessError,
    },
    #[error("drift: {which} model: not ONNX ({msg})")]
    Decode { which: &'static str, msg: String },
    #[error("drift: the per-layer comparison failed")]
    Probe(#[from] ProbeError),
    #[error(
        "drift: cannot compute the held-out metrics — the held-out set needs live and spoof faces"
    )]
    Metrics(#[from] MetricsError),
    #[error("drift: int8 model exceeds the bound: {} ({report}); layers drifting most: {} — calibrate with more or more representative faces, another method (percentile, entropy), or ship int8-weight-only", reasons.join("; "), worst(report))]
    Exceeded {
        report: Box<DriftReport>,
        reasons: Vec<String>,
    },
}

fn worst(r: &DriftReport) -> String {
    if r.layers.is_empty() {
        return "(not measured)".into();
    }
    r.layers
        .iter()
        .map(|l| format!("{} \"{}\" {:.3}", l.op, l.tensor, l.rel_error))
        .collect::<Vec<_>>()
        .join(", ")
}

fn scores(
    bytes: &[u8],
    shape: &[usize],
    which: &'static str,
    held_out: &[(Vec<f32>, Label)],
) -> Result<Vec<f64>, DriftError> {
    let model_err = |source| DriftError::Model { which, source };
    let mut m = LivenessModel::from_bytes(bytes, shape, which).map_err(model_err)?;
    held_out
        .iter()
        .map(|(x, _)| m.score(x).map(f64::from).map_err(model_err))
        .collect()
}

/// Compares `fp32` and `int8` (ONNX bytes, input `shape`) on `held_out`; an error when the
/// int8 model leaves `bound`.
pub fn drift(
    fp32: &[u8],
    int8: &[u8],
    shape: &[usize],
    held_out: &[(Vec<f32>, Label)],
    bound: &DriftBound,
) -> Result<DriftReport, DriftError> {
    if held_out.is_empty() {
        return Err(DriftError::Empty);
    }
    let expected: usize = shape.iter().product();
    if let Some((index, (x, _))) = held_out
        .iter()
        .enumerate()
        .find(|(_, (x, _))| x.len() != expected)
    {
        return Err(DriftError::SampleLen {
            index,
            found: x.len(),
            expected,
            shape: shape.to_vec(),
        });
    }
    let labels: Vec<Label> = held_out.iter().map(|(_, l)| *l).collect();
    let a = scores(fp32, shape, "fp32", held_out)?;
    let b = scores(int8, shape, "int8", held_out)?;
    let threshold = eer(&a, &labels)?.threshold;
    let d: Vec<f64> = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).collect();
    let mut report = DriftReport {
        samples: held_out.len(),
        auc_fp32: auc(&a, &labels)?,
        auc_int8: auc(&b, &labels)?,
        threshold,
        hter_fp32: hter(&a, &labels, threshold)?,
        hter_int8: hter(&b, &labels, threshold)?,
        max_abs: d.iter().copied().fold(0.0, f64::max),
        mean_abs: d.iter().sum::<f64>() / d.len() as f64,
        layers: vec![],
    };
    let take = bound.layer_samples.min(held_out.len());
    if take > 0 {
        let xs: Vec<&[f32]> = held_out[..take].iter().map(|(x, _)| x.as_slice()).collect();
        report.layers = layer_drift(fp32, int8, shape, &xs)?;
    }
    let mut reasons = vec![];
    if report.max_abs > bound.max_abs {
        reasons.push(format!(
            "max |Δp_live| {:.4} > {}",
            report.max_abs, bound.max_abs
        ));
    }
    let drop = report.auc_fp32 - report.auc_int8;
    if drop > bound.max_auc_drop {
        reasons.push(format!("AUC drop {drop:.4} > {}", bound.max_auc_drop));
    }
    if reasons.is_empty() {
        Ok(report)
    } else {
        report.layers.truncate(bound.worst_layers);
        Err(DriftError::Exceeded {
            report: Box::new(report),
            reasons,
        })
    }
}

fn decode(bytes: &[u8], which: &'static str) -> Result<ModelProto, DriftError> {
    ModelProto::decode(bytes).map_err(|e| DriftError::Decode {
        which,
        msg: e.to_string(),
    })
}

/// Relative L2 error of every Conv / Gemm / MatMul output present in both models, worst
/// first.
pub fn layer_drift(
    fp32: &[u8],
    int8: &[u8],
    shape: &[usize],
    xs: &[&[f32]],
) -> Result<Vec<LayerDrift>, DriftError> {
    let pa = decode(fp32, "fp32")?;
    let pb = decode(int8, "int8")?;
    let outputs_b: HashSet<&str> = pb
        .graph
        .iter()
        .flat_map(|g| g.node.iter())
        .flat_map(|n| n.output.iter().map(String::as_str))
        .collect();
    let layers: Vec<(String, String)> = pa
        .graph
        .iter()
        .flat_map(|g| g.node.iter())
        .filter(|n| matches!(n.op_type.as_str(), "Conv" | "Gemm" | "MatMul"))
        .filter(|n| outputs_b.contains(n.output[0].as_str()))
        .map(|n| (n.output[0].clone(), n.op_type.clone()))
        .collect();
    if layers.is_empty() {
        return Ok(vec![]);
    }
    let names: Vec<String> = layers.iter().map(|(t, _)| t.clone()).collect();
    let mut a = Probe::new(fp32, shape, &names, "fp32 model (layer drift)")?;
    let mut b = Probe::new(int8, shape, &names, "int8 model (layer drift)")?;
    let mut err = vec![0f64; names.len()];
    let mut norm = vec![0f64; names.len()];
    for x in xs {
        let (va, vb) = (a.run(x)?, b.run(x)?);
        for (t, (u, v)) in va.iter().zip(&vb).enumerate() {
            for (p, q) in u.iter().zip(v) {
                err[t] += ((p - q) as f64).powi(2);
                norm[t] += (*p as f64).powi(2);
            }
        }
    }
    let mut out: Vec<LayerDrift> = layers
        .into_iter()
        .enumerate()
        .map(|(t, (tensor, op))| LayerDrift {
            tensor,
            op,
            rel_error: (err[t] / norm[t].max(f64::MIN_POSITIVE)).sqrt(),
        })
        .collect();
    out.sort_by(|x, y| y.rel_error.total_cmp(&x.rel_error));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_held_out_sets_are_refused_before_loading() {
        let b = DriftBound::default();
        assert!(matches!(
            drift(b"", b"", &[1, 3, 2, 2], &[], &b),
            Err(DriftError::Empty)
        ));
        let e = drift(b"", b"", &[1, 3, 2, 2], &[(vec![0.0; 11], Label::Live)], &b).unwrap_err();
        assert!(matches!(
            e,
            DriftError::SampleLen {
                index: 0,
                found: 11,
                expected: 12,
                ..
            }
        ));
        let e = drift(
            b"nope",
            b"",
            &[1, 3, 2, 2],
            &[(vec![0.0; 12], Label::Live)],
            &b,
        )
        .unwrap_err();
        assert!(e.to_string().contains("fp32 model"), "{e}");
    }

    #[test]
    fn report_maps_to_the_manifest_drift() {
        let r = DriftReport {
            samples: 4,
            auc_fp32: 0.99,
            auc_int8: 0.98,
            threshold: 0.5,
            hter_fp32: 0.02,
            hter_int8: 0.03,
            max_abs: 0.04,
            mean_abs: 0.01,
            layers: vec![],
        };
        assert_eq!(
            r.to_drift(),
            Drift {
                max_abs: 0.04,
                mean_abs: 0.01,
                auc_fp32: 0.99,
                auc_int8: 0.98
            }
        );
        let e = DriftError::Exceeded {
            report: Box::new(r),
            reasons: vec!["AUC drop 0.0100 > 0.005".into()],
        };
        assert!(e.to_string().contains("AUC drop 0.0100 > 0.005"), "{e}");
        assert!(e.to_string().contains("(not measured)"), "{e}");
    }
}
