//! A model's named weights (`weights.safetensors` of a trainer run dir), checked against the
//! IR graph that names them (contract 2: identical names in trainer and exporter).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use fas_core::ir::Graph;

/// One f32 tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Tensor {
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Tensor {
        assert_eq!(shape.iter().product::<usize>(), data.len(), "tensor size");
        Tensor { shape, data }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error(
        "{file}: cannot read it — check the path (a trainer run dir holds weights.safetensors)"
    )]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: not a safetensors file ({msg}) — was it written by fas-train?")]
    Format { file: PathBuf, msg: String },
    #[error("{file}: tensor \"{name}\" has dtype {dtype}; the exporter reads F32 only — save the weights as float32")]
    Dtype {
        file: PathBuf,
        name: String,
        dtype: String,
    },
    #[error("{file}: weight \"{name}\" (needed by node \"{node}\" of the model graph) is missing — the weights belong to another model.json")]
    Missing {
        file: PathBuf,
        name: String,
        node: String,
    },
    #[error("{file}: weight \"{name}\" has shape {found:?}, the model graph expects {expected:?} — the weights belong to another model.json")]
    Shape {
        file: PathBuf,
        name: String,
        found: Vec<usize>,
        expected: Vec<usize>,
    },
    #[error("{file}: weight \"{name}\" holds a non-finite value at index {index} — the training run diverged; export an earlier checkpoint")]
    NonFinite {
        file: PathBuf,
        name: String,
        index: usize,
    },
}

/// Name → tensor, in name order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Weights {
    pub tensors: BTreeMap<String, Tensor>,
    /// Where they came from (for messages).
    pub origin: PathBuf,
}

impl Weights {
    pub fn load(path: impl AsRef<Path>) -> Result<Weights, WeightsError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| WeightsError::Io {
            file: path.to_path_buf(),
            source,
        })?;
        Weights::from_safetensors(&bytes, path)
    }

    pub fn from_safetensors(bytes: &[u8], origin: &Path) -> Result<Weights, WeightsError> {
        let st =
            safetensors::SafeTensors::deserialize(bytes).map_err(|e| WeightsError::Format {
                file: origin.to_path_buf(),
                msg: e.to_string(),
            })?;
        let mut tensors = BTreeMap::new();
        for (name, view) in st.tensors() {
            if view.dtype() != safetensors::Dtype::F32 {
                return Err(WeightsError::Dtype {
                    file: origin.to_path_buf(),
                    name,
                    dtype: format!("{:?}", view.dtype()),
                });
            }
            let data: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            tensors.insert(name, Tensor::new(view.shape().to_vec(), data));
        }
        Ok(Weights {
            tensors,
            origin: origin.to_path_buf(),
        })
    }

    /// Serialises to safetensors bytes (tests and tools that write weights without tch).
    pub fn to_safetensors(&self) -> Vec<u8> {
        let raw: Vec<(String, Vec<usize>, Vec<u8>)> = self
            .tensors
            .iter()
            .map(|(n, t)| {
                (
                    n.clone(),
                    t.shape.clone(),
                    t.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
                )
            })
            .collect();
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = raw
            .iter()
            .map(|(n, s, b)| {
                (
                    n.clone(),
                    safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                        .expect("sizes match by construction"),
                )
            })
            .collect();
        safetensors::serialize(views, None).expect("in-memory serialisation")
    }

    /// Every weight the graph names is present with its shape and finite values. Extra
    /// tensors (training-only parts such as an identity encoder) are ignored.
    pub fn check(&self, graph: &Graph) -> Result<(), WeightsError> {
        for node in &graph.nodes {
            for (name, expected) in node.op.weights(&node.name) {
                let t = self
                    .tensors
                    .get(&name)
                    .ok_or_else(|| WeightsError::Missing {
                        file: self.origin.clone(),
                        name: name.clone(),
                        node: node.name.clone(),
                    })?;
                if t.shape != expected {
                    return Err(WeightsError::Shape {
                        file: self.origin.clone(),
                        name,
                        found: t.shape.clone(),
                        expected,
                    });
                }
                if let Some(index) = t.data.iter().position(|v| !v.is_finite()) {
                    return Err(WeightsError::NonFinite {
                        file: self.origin.clone(),
                        name,
                        index,
                    });
                }
            }
        }
        Ok(())
    }

    pub fn get(&self, name: &str) -> &Tensor {
        &self.tensors[name]
    }
}
