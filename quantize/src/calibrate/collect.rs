//! Activation calibration over a calibration set: the fp32 model runs in tract with the
//! tensors to quantise as extra outputs; a first pass records each tensor's min/max, a
//! second fills its histogram over `[−amax, amax]` (skipped for min/max), and the chosen
//! method turns each histogram into a [`TensorRange`].

use serde::{Deserialize, Serialize};

use super::grid::ActivationType;
use super::histogram::{Histogram, DEFAULT_BINS};
use super::probe::{Probe, ProbeError};
use super::range::{CalibrationMethod, TensorRange};
use super::{entropy, minmax, mse, percentile};

/// How ranges are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CalibrationOptions {
    pub method: CalibrationMethod,
    /// The grid the activations are quantised to (MSE measures its error).
    pub activation_type: ActivationType,
    /// Histogram bins per side of zero.
    pub bins: usize,
    /// Entropy: quantised levels per side (128 for int8).
    pub entropy_levels: usize,
    /// MSE: number of candidate ranges.
    pub mse_candidates: usize,
}

impl Default for CalibrationOptions {
    fn default() -> Self {
        CalibrationOptions {
            method: CalibrationMethod::Percentile(99.99),
            activation_type: ActivationType::U8,
            bins: DEFAULT_BINS,
            entropy_levels: entropy::DEFAULT_LEVELS,
            mse_candidates: mse::DEFAULT_CANDIDATES,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CalibrationError {
    #[error("calibration: no samples — give at least one preprocessed face crop (a few hundred are typical)")]
    NoSamples,
    #[error("calibration: {0}")]
    Method(super::range::UnknownMethod),
    #[error("calibration: cannot run the fp32 model on the calibration faces")]
    Probe(#[from] ProbeError),
    #[error("calibration: tensor \"{tensor}\" holds a non-finite value on sample {sample} — the fp32 model overflows on this input; check the preprocessing and the weights")]
    NonFinite { tensor: String, sample: usize },
}

// The inner error is this one's own text (a field path and its fix), not a cause: it is
// part of the message and not a `source()`, so a printed chain says it once.
impl From<super::range::UnknownMethod> for CalibrationError {
    fn from(e: super::range::UnknownMethod) -> Self {
        CalibrationError::Method(e)
    }
}

/// Ranges of `tensors` (ONNX value names of the fp32 model `bytes`, input `shape`) over
/// `samples` (each one preprocessed `[1, C, H, W]` crop).
pub fn calibrate(
    bytes: &[u8],
    shape: &[usize],
    tensors: &[String],
    samples: &[Vec<f32>],
    opts: &CalibrationOptions,
) -> Result<Vec<TensorRange>, CalibrationError> {
    let method = opts.method.validate()?;
    if samples.is_empty() {
        return Err(CalibrationError::NoSamples);
    }
    if tensors.is_empty() {
        return Ok(vec![]);
    }
    let mut probe = Probe::new(bytes, shape, tensors, "fp32 model (calibration)")?;
    let mut min = vec![f32::INFINITY; tensors.len()];
    let mut max = vec![f32::NEG_INFINITY; tensors.len()];
    for (s, x) in samples.iter().enumerate() {
        for (t, v) in probe.run(x)?.iter().enumerate() {
            for &a in v {
                if !a.is_finite() {
                    return Err(CalibrationError::NonFinite {
                        tensor: tensors[t].clone(),
                        sample: s,
                    });
                }
                min[t] = min[t].min(a);
                max[t] = max[t].max(a);
            }
        }
    }
    let ranges: Vec<[f32; 2]> = if method == CalibrationMethod::MinMax {
        (0..tensors.len())
            .map(|t| minmax::range(min[t], max[t]))
            .collect()
    } else {
        let mut hists: Vec<Histogram> = (0..tensors.len())
            .map(|t| Histogram::new(min[t], max[t], opts.bins))
            .collect();
        for x in samples {
            for (t, v) in probe.run(x)?.iter().enumerate() {
                hists[t].add(v);
            }
        }
        hists
            .iter()
            .map(|h| match method {
                CalibrationMethod::MinMax => minmax::range(h.min, h.max),
                CalibrationMethod::Percentile(p) => percentile::range(h, p),
                CalibrationMethod::Entropy => entropy::range(h, opts.entropy_levels),
                CalibrationMethod::Mse => mse::range(h, opts.activation_type, opts.mse_candidates),
            })
            .collect()
    };
    Ok(tensors
        .iter()
        .zip(ranges)
        .enumerate()
        .map(|(t, (name, range))| TensorRange {
            tensor: name.clone(),
            min: min[t],
            max: max[t],
            range,
            method: method.to_string(),
        })
        .collect())
}
