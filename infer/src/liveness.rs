//! A liveness model (ONNX, one `[1, C, H, W]` input, one `p_live [1, 1]` output — contract
//! 3) loaded into tract once and run on preprocessed face crops.
//!
//! The model is typed and optimised for its static input shape at load time, so a model
//! that tract cannot run fails at start-up, not at the door.

use std::path::Path;

use tract_onnx::prelude::*;

#[derive(Debug, thiserror::Error)]
pub enum LivenessError {
    #[error("{origin}: cannot load the liveness model: {detail} — re-export it with fas-quantize export")]
    Load { origin: String, detail: String },
    #[error("{origin}: input has shape {found:?}; the bundle manifest says {expected:?} — the manifest and the model disagree, rebuild the bundle")]
    InputShape {
        origin: String,
        found: Vec<usize>,
        expected: Vec<usize>,
    },
    #[error("{origin}: got {found} input values for a {expected}-value face crop — the crop was made with another preprocessing spec")]
    InputLen {
        origin: String,
        found: usize,
        expected: usize,
    },
    #[error("{origin}: inference failed: {detail}")]
    Run { origin: String, detail: String },
    #[error("{origin}: output {found:?} is not one p_live in [0, 1] — the model breaks contract 3; re-export it")]
    BadOutput { origin: String, found: Vec<f32> },
}

/// A loaded, optimised liveness model with its run state (buffers reused between calls).
pub struct LivenessModel {
    state: TypedSimpleState,
    shape: Vec<usize>,
    origin: String,
}

fn load_err(origin: &str, e: impl std::fmt::Display) -> LivenessError {
    LivenessError::Load {
        origin: origin.to_string(),
        detail: format!("{e:#}"),
    }
}

impl LivenessModel {
    /// Loads ONNX bytes; `shape` is the `[1, C, H, W]` input the caller will feed (from the
    /// bundle manifest). `origin` names the model in messages (a path or `bundle:file`).
    pub fn from_bytes(bytes: &[u8], shape: &[usize], origin: &str) -> Result<Self, LivenessError> {
        let mut model = tract_onnx::onnx()
            .model_for_read(&mut std::io::Cursor::new(bytes))
            .map_err(|e| load_err(origin, e))?;
        let declared = model
            .input_fact(0)
            .ok()
            .and_then(|f| f.shape.as_concrete_finite().ok().flatten())
            .map(|s| s.to_vec());
        if let Some(d) = &declared {
            if d.as_slice() != shape {
                return Err(LivenessError::InputShape {
                    origin: origin.to_string(),
                    found: d.clone(),
                    expected: shape.to_vec(),
                });
            }
        }
        model
            .set_input_fact(0, f32::fact(shape).into())
            .map_err(|e| load_err(origin, e))?;
        let state = model
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .and_then(|plan| TypedSimpleState::new(&plan))
            .map_err(|e| load_err(origin, e))?;
        Ok(LivenessModel {
            state,
            shape: shape.to_vec(),
            origin: origin.to_string(),
        })
    }

    pub fn load(path: &Path, shape: &[usize]) -> Result<Self, LivenessError> {
        let origin = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| load_err(&origin, e))?;
        Self::from_bytes(&bytes, shape, &origin)
    }

    pub fn input_shape(&self) -> &[usize] {
        &self.shape
    }

    /// `p_live` of one preprocessed crop (`C·H·W` values, NCHW). Anything but one finite
    /// value in `[0, 1]` is an error (the door treats it as an inference error).
    pub fn score(&mut self, input: &[f32]) -> Result<f32, LivenessError> {
        let out = self.run_raw(input)?;
        match out.as_slice() {
            [p] if p.is_finite() && (0.0..=1.0).contains(p) => Ok(*p),
            _ => Err(LivenessError::BadOutput {
                origin: self.origin.clone(),
                found: out,
            }),
        }
    }

    /// The raw output values (parity tests compare these).
    pub fn run_raw(&mut self, input: &[f32]) -> Result<Vec<f32>, LivenessError> {
        let n: usize = self.shape.iter().product();
        if input.len() != n {
            return Err(LivenessError::InputLen {
                origin: self.origin.clone(),
                found: input.len(),
                expected: n,
            });
        }
        let origin = &self.origin;
        let run_err = |e: TractError| LivenessError::Run {
            origin: origin.clone(),
            detail: format!("{e:#}"),
        };
        let t = tract_ndarray::ArrayD::from_shape_vec(self.shape.clone(), input.to_vec())
            .expect("length checked");
        let out = self
            .state
            .run(tvec!(Tensor::from(t).into()))
            .map_err(run_err)?;
        let v = out[0].to_plain_array_view::<f32>().map_err(run_err)?;
        Ok(v.iter().copied().collect())
    }
}

/// The `metadata_props` of an ONNX model (the exporter records the preprocessing, the
/// recipe and the run's hashes there).
pub fn metadata(
    bytes: &[u8],
) -> Result<std::collections::BTreeMap<String, String>, prost::DecodeError> {
    use prost::Message;
    let m = tract_onnx::pb::ModelProto::decode(bytes)?;
    Ok(m.metadata_props
        .into_iter()
        .map(|p| (p.key, p.value))
        .collect())
}
