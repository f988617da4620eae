//! The model IR (ARCHITECTURE.md contract 2): a small typed graph, stored as `model.json`,
//! from which the trainer builds its tch modules and the exporter writes ONNX, with
//! identical weight names (`"{node}.{suffix}"`, see [`Op::weights`]).
//!
//! Every node has exactly one output value; nodes are in topological order (inputs defined
//! before use).

pub mod backbones;
mod builder;
pub mod fixtures;
mod op;

pub use builder::GraphBuilder;
pub use op::{Op, UpsampleMode};

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

pub const IR_VERSION: u32 = 1;

/// A graph input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueInfo {
    pub name: String,
    /// `[N, C, H, W]` with `N = 1` for deployment.
    pub shape: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    pub name: String,
    pub op: Op,
    pub inputs: Vec<String>,
    /// Exactly one value name (usually the node name).
    pub outputs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Graph {
    pub version: u32,
    pub name: String,
    pub inputs: Vec<ValueInfo>,
    pub nodes: Vec<Node>,
    pub outputs: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum IrError {
    #[error("{file}: cannot {action} it — check the path and its permissions")]
    Io {
        file: String,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("model.json: not a valid model graph ({msg}) — regenerate it with fas-train")]
    Json { msg: String },
    #[error("model.json: field \"version\": {found} is newer than this fas reads (up to {supported}) — written by a newer fas; upgrade")]
    FutureVersion { found: u64, supported: u32 },
    #[error("model.json: name \"{name}\" is defined twice — give every input, node and value a unique name")]
    DuplicateName { name: String },
    #[error("model.json: weight \"{weight}\" of node \"{node}\" collides with another node's weight — rename one of the nodes")]
    DuplicateWeight { node: String, weight: String },
    #[error("model.json: node \"{node}\": input \"{input}\" is not defined before use — reorder nodes or fix the name")]
    UndefinedInput { node: String, input: String },
    #[error("model.json: graph output \"{output}\" is not produced by any node or input — fix \"outputs\"")]
    UnknownOutput { output: String },
    #[error("model.json: node \"{node}\" ({op}): {problem}")]
    Arity {
        node: String,
        op: &'static str,
        problem: String,
    },
    #[error("model.json: node \"{node}\" ({op}): {problem} — fix the layer parameters or the preceding layers")]
    Shape {
        node: String,
        op: &'static str,
        problem: String,
    },
    #[error("model.json: {problem}")]
    Structure { problem: String },
    /// A backbone specification that cannot be built (see [`backbones::BackboneSpec`]).
    #[error("backbone spec: field \"{field}\": {problem}")]
    Spec {
        field: &'static str,
        problem: String,
    },
}

impl IrError {
    /// The node the error concerns, if any.
    pub fn node(&self) -> Option<&str> {
        match self {
            IrError::UndefinedInput { node, .. }
            | IrError::Arity { node, .. }
            | IrError::Shape { node, .. }
            | IrError::DuplicateWeight { node, .. } => Some(node),
            _ => None,
        }
    }
}

impl Graph {
    pub fn new(name: impl Into<String>) -> Graph {
        Graph {
            version: IR_VERSION,
            name: name.into(),
            inputs: vec![],
            nodes: vec![],
            outputs: vec![],
        }
    }

    /// Parse `model.json` and validate it (structure and shapes).
    pub fn from_json(text: &str) -> Result<Graph, IrError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| IrError::Json { msg: e.to_string() })?;
        if let Some(v) = value.get("version").and_then(|v| v.as_u64()) {
            if v > u64::from(IR_VERSION) {
                return Err(IrError::FutureVersion {
                    found: v,
                    supported: IR_VERSION,
                });
            }
        }
        let g: Graph =
            serde_json::from_value(value).map_err(|e| IrError::Json { msg: e.to_string() })?;
        g.infer_shapes()?;
        Ok(g)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a graph always serialises")
    }

    pub fn load(path: impl AsRef<Path>) -> Result<Graph, IrError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| IrError::Io {
            file: path.display().to_string(),
            action: "read",
            source,
        })?;
        Graph::from_json(&text)
    }

    /// Validate, then write atomically.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), IrError> {
        self.infer_shapes()?;
        let path = path.as_ref();
        let mut text = self.to_json();
        text.push('\n');
        crate::atomic::write_atomic(path, text.as_bytes()).map_err(|source| IrError::Io {
            file: path.display().to_string(),
            action: "write",
            source,
        })
    }

    /// Structural checks: version, unique names, inputs defined before use, arity, one
    /// output per node, graph outputs exist, weight names unique.
    pub fn validate(&self) -> Result<(), IrError> {
        if self.version == 0 || self.version > IR_VERSION {
            if self.version > IR_VERSION {
                return Err(IrError::FutureVersion {
                    found: self.version.into(),
                    supported: IR_VERSION,
                });
            }
            return Err(IrError::Structure {
                problem: "field \"version\": 0 is not a version".into(),
            });
        }
        let mut defined: HashSet<&str> = HashSet::new();
        let mut node_names: HashSet<&str> = HashSet::new();
        for i in &self.inputs {
            if !defined.insert(&i.name) {
                return Err(IrError::DuplicateName {
                    name: i.name.clone(),
                });
            }
        }
        let mut weights: HashSet<String> = HashSet::new();
        for n in &self.nodes {
            if n.name.is_empty() {
                return Err(IrError::Structure {
                    problem: "a node has an empty name".into(),
                });
            }
            if !node_names.insert(&n.name) {
                return Err(IrError::DuplicateName {
                    name: n.name.clone(),
                });
            }
            let (lo, hi) = n.op.arity();
            if n.inputs.len() < lo || n.inputs.len() > hi {
                let want = if hi == usize::MAX {
                    format!("at least {lo}")
                } else {
                    format!("{lo}")
                };
                return Err(IrError::Arity {
                    node: n.name.clone(),
                    op: n.op.kind(),
                    problem: format!("takes {want} input(s), has {}", n.inputs.len()),
                });
            }
            if n.outputs.len() != 1 {
                return Err(IrError::Arity {
                    node: n.name.clone(),
                    op: n.op.kind(),
                    problem: format!("must have exactly 1 output, has {}", n.outputs.len()),
                });
            }
            for i in &n.inputs {
                if !defined.contains(i.as_str()) {
                    return Err(IrError::UndefinedInput {
                        node: n.name.clone(),
                        input: i.clone(),
                    });
                }
            }
            for o in &n.outputs {
                if !defined.insert(o) {
                    return Err(IrError::DuplicateName { name: o.clone() });
                }
            }
            for (w, _) in n.op.weights(&n.name) {
                if !weights.insert(w.clone()) {
                    return Err(IrError::DuplicateWeight {
                        node: n.name.clone(),
                        weight: w,
                    });
                }
            }
        }
        if self.outputs.is_empty() {
            return Err(IrError::Structure {
                problem: "the graph has no outputs".into(),
            });
        }
        for o in &self.outputs {
            if !defined.contains(o.as_str()) {
                return Err(IrError::UnknownOutput { output: o.clone() });
            }
        }
        Ok(())
    }

    /// Validate and compute the shape of every value (inputs and node outputs).
    pub fn infer_shapes(&self) -> Result<BTreeMap<String, Vec<usize>>, IrError> {
        self.validate()?;
        let mut shapes: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for i in &self.inputs {
            shapes.insert(i.name.clone(), i.shape.clone());
        }
        for n in &self.nodes {
            let ins: Vec<&[usize]> = n.inputs.iter().map(|i| shapes[i].as_slice()).collect();
            let out = n.op.infer(&ins).map_err(|problem| IrError::Shape {
                node: n.name.clone(),
                op: n.op.kind(),
                problem,
            })?;
            shapes.insert(n.outputs[0].clone(), out);
        }
        Ok(shapes)
    }

    /// Shapes of the graph outputs.
    pub fn output_shapes(&self) -> Result<Vec<Vec<usize>>, IrError> {
        let shapes = self.infer_shapes()?;
        Ok(self.outputs.iter().map(|o| shapes[o].clone()).collect())
    }

    /// Every named weight with its shape, in node order.
    pub fn weights(&self) -> Vec<(String, Vec<usize>)> {
        self.nodes
            .iter()
            .flat_map(|n| n.op.weights(&n.name))
            .collect()
    }

    /// Learnable parameters (BN running statistics excluded, as in PyTorch).
    pub fn num_params(&self) -> usize {
        self.nodes.iter().map(|n| n.op.num_params(&n.name)).sum()
    }

    /// Multiply-accumulate operations (MACs) of one forward pass at the declared input
    /// shapes, batch included — the number mobile-network papers (MobileNet, MobileFaceNet,
    /// MiniFASNet) report as "FLOPs". Counted: every `Conv2d` (`out numel · in/groups · kh ·
    /// kw`), every `Linear` (`out numel · in`), and the two fully connected layers inside
    /// `SqueezeExcite`, `StyleAttention` and the `AdaptiveBnIn` gate. Not counted: biases,
    /// normalisation, activations, pooling, element-wise ops and resampling.
    pub fn flops(&self) -> Result<u64, IrError> {
        let shapes = self.infer_shapes()?;
        Ok(self
            .nodes
            .iter()
            .map(|n| {
                let ins: Vec<&[usize]> = n.inputs.iter().map(|i| shapes[i].as_slice()).collect();
                n.op.macs(&ins, &shapes[&n.outputs[0]])
            })
            .sum())
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }
}

#[cfg(test)]
mod tests;
