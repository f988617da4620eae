//! A model loaded into tract with chosen intermediate values as its outputs: how the
//! calibrator sees activations and the drift gate compares layers.

use tract_onnx::prelude::*;

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{origin}: tract cannot load the model with outputs {names:?}: {detail}")]
    Load {
        origin: String,
        names: Vec<String>,
        detail: String,
    },
    #[error("{origin}: input has {found} values, the model's [1, C, H, W] input needs {expected} — preprocess with the model's own spec")]
    InputLen {
        origin: String,
        found: usize,
        expected: usize,
    },
    #[error("{origin}: inference failed: {detail}")]
    Run { origin: String, detail: String },
}

/// The model with outputs `names` (ONNX value names; the graph input's name works too).
pub struct Probe {
    state: TypedSimpleState,
    names: Vec<String>,
    shape: Vec<usize>,
    origin: String,
}

impl Probe {
    /// Loads ONNX `bytes` for input `shape`; `origin` names the model in messages.
    pub fn new(
        bytes: &[u8],
        shape: &[usize],
        names: &[String],
        origin: &str,
    ) -> Result<Probe, ProbeError> {
        let load = |e: TractError| ProbeError::Load {
            origin: origin.to_string(),
            names: names.to_vec(),
            detail: format!("{e:#}"),
        };
        let mut model = tract_onnx::onnx()
            .model_for_read(&mut std::io::Cursor::new(bytes))
            .map_err(load)?;
        model
            .set_input_fact(0, f32::fact(shape).into())
            .map_err(load)?;
        model.select_outputs_by_name(names).map_err(load)?;
        let state = model
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .and_then(|plan| TypedSimpleState::new(&plan))
            .map_err(load)?;
        Ok(Probe {
            state,
            names: names.to_vec(),
            shape: shape.to_vec(),
            origin: origin.to_string(),
        })
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// One flat `Vec` per output name, in order.
    pub fn run(&mut self, input: &[f32]) -> Result<Vec<Vec<f32>>, ProbeError> {
        let n: usize = self.shape.iter().product();
        if input.len() != n {
            return Err(ProbeError::InputLen {
                origin: self.origin.clone(),
                found: input.len(),
                expected: n,
            });
        }
        let origin = &self.origin;
        let run_err = |e: TractError| ProbeError::Run {
            origin: origin.clone(),
            detail: format!("{e:#}"),
        };
        let t = tract_ndarray::ArrayD::from_shape_vec(self.shape.clone(), input.to_vec())
            .expect("length checked");
        let outs = self
            .state
            .run(tvec!(Tensor::from(t).into()))
            .map_err(run_err)?;
        outs.iter()
            .map(|o| {
                let o = o.cast_to::<f32>().map_err(run_err)?;
                Ok(o.to_plain_array_view::<f32>()
                    .map_err(run_err)?
                    .iter()
                    .copied()
                    .collect())
            })
            .collect()
    }
}
