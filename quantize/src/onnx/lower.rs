//! IR graph + weights → ONNX (opset 17, static shapes, batch 1).
//!
//! * BatchNorm directly after a convolution (whose output nothing else reads) is folded into
//!   the convolution's weights and bias, in f64; other BatchNorms become one per-channel
//!   `Mul` + `Add` with folded constants.
//! * Composite IR ops (ANRL's adaptive BN/IN, DLIF's style attention, SE) are written as
//!   standard ONNX ops with every constant precomputed, so tract and onnxruntime load them.
//! * The graph output is `p_live [1, 1]` (contract 3); the exporter checks that the IR
//!   head guarantees a value in `[0, 1]` (sigmoid, softmax + select, or the mean of a
//!   sigmoid map) and refuses anything else.

//!
//! [`export`] checks the graph is deployable, plans the BatchNorm folds, lowers each node
//! with its op's function (`super::ops`, one per IR op), names the output `p_live` and
//! wraps the graph in a model.

use std::collections::{BTreeMap, HashMap};

use fas_core::ir::{Graph, IrError, Op};
use tract_onnx::pb::{ModelProto, OperatorSetIdProto, StringStringEntryProto};

use super::ops::{lower_node, BnFolds, Lowering};
use super::proto::{value_info, GraphParts, IR_VERSION, OPSET};
use super::weights::{Weights, WeightsError};

/// The name of the exported output (contract 3).
pub const OUTPUT_NAME: &str = "p_live";

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Graph(#[from] IrError),
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error("model.json: {problem}")]
    Unsupported { problem: String },
}

#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Fold BatchNorm into the preceding convolution (default on; off only to debug).
    pub fold_batchnorm: bool,
    /// Extra `metadata_props` (e.g. the run's model/weights hashes, recipe, preprocessing).
    pub metadata: Vec<(String, String)>,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            fold_batchnorm: true,
            metadata: vec![],
        }
    }
}

/// An exported model.
#[derive(Debug, Clone)]
pub struct OnnxModel {
    pub proto: ModelProto,
    /// The one input's name and `[1, C, H, W]` shape.
    pub input_name: String,
    pub input_shape: Vec<usize>,
}

impl OnnxModel {
    pub fn to_bytes(&self) -> Vec<u8> {
        use prost::Message;
        self.proto.encode_to_vec()
    }

    /// Counts of each ONNX op type (for reports and tests).
    pub fn op_histogram(&self) -> BTreeMap<String, usize> {
        let mut h = BTreeMap::new();
        for n in &self.proto.graph.as_ref().expect("graph").node {
            *h.entry(n.op_type.clone()).or_insert(0) += 1;
        }
        h
    }
}

fn unsupported(problem: String) -> ExportError {
    ExportError::Unsupported { problem }
}

/// Does the value `v` hold a probability in `[0, 1]`?
fn is_probability(graph: &Graph, v: &str) -> bool {
    let Some(n) = graph.nodes.iter().find(|n| n.outputs[0] == v) else {
        return false;
    };
    match &n.op {
        Op::Sigmoid => true,
        Op::Select { .. } => graph
            .nodes
            .iter()
            .find(|m| m.outputs[0] == n.inputs[0])
            .is_some_and(|m| matches!(m.op, Op::Softmax { .. })),
        Op::MeanOfMap | Op::Dropout { .. } | Op::Flatten => is_probability(graph, &n.inputs[0]),
        _ => false,
    }
}

/// Lowers `graph` with `weights` to ONNX.
pub fn export(
    graph: &Graph,
    weights: &Weights,
    opts: &ExportOptions,
) -> Result<OnnxModel, ExportError> {
    let shapes = check_deployable(graph, weights)?;
    let mut cx = Lowering {
        g: GraphParts::default(),
        alias: HashMap::new(),
        weights,
        shapes: &shapes,
        folds: BnFolds::plan(graph, weights, opts.fold_batchnorm),
    };
    for n in &graph.nodes {
        lower_node(&mut cx, n);
    }
    name_output(&mut cx, graph)?;
    Ok(model(graph, cx.g, opts))
}

/// Checks that `graph` and `weights` make a deployable model: valid, one `[N, C, H, W]`
/// input, one output `[N, 1]` that is a probability. Returns the shapes of its values.
fn check_deployable(
    graph: &Graph,
    weights: &Weights,
) -> Result<BTreeMap<String, Vec<usize>>, ExportError> {
    graph.validate()?;
    weights.check(graph)?;
    if graph.inputs.len() != 1 {
        return Err(unsupported(format!(
            "the deployed model must have exactly one image input, found {} — export the deployable graph (fas-train writes it as model.json)",
            graph.inputs.len()
        )));
    }
    if graph.outputs.len() != 1 {
        return Err(unsupported(format!(
            "the deployed model must have exactly one output (p_live), found {:?}",
            graph.outputs
        )));
    }
    let out = &graph.outputs[0];
    let shapes = graph.infer_shapes()?;
    let input = &graph.inputs[0];
    let batch = input.shape[0];
    if input.shape.len() != 4 {
        return Err(unsupported(format!(
            "input \"{}\" has shape {:?}; expected [N, C, H, W]",
            input.name, input.shape
        )));
    }
    let out_shape = &shapes[out];
    if out_shape != &[batch, 1] {
        return Err(unsupported(format!(
            "output \"{out}\" has shape {out_shape:?}; contract 3 wants one p_live per face ([N, 1]) — end the head with live_prob()"
        )));
    }
    if !is_probability(graph, out) {
        return Err(unsupported(format!(
            "output \"{out}\" is not guaranteed to lie in [0, 1] (it must come from a sigmoid, a softmax + select, or the mean of a sigmoid map) — end the head with live_prob()"
        )));
    }
    Ok(shapes)
}

/// The graph output is always named p_live: an `Identity` renames the last value unless
/// it is already called so.
fn name_output(cx: &mut Lowering, graph: &Graph) -> Result<(), ExportError> {
    let final_value = cx.name_of(&graph.outputs[0]);
    if final_value == OUTPUT_NAME {
        return Ok(());
    }
    if cx.g.nodes.iter().any(|n| n.output[0] == OUTPUT_NAME) || graph.inputs[0].name == OUTPUT_NAME
    {
        return Err(unsupported(format!(
            "a value named \"{OUTPUT_NAME}\" exists but is not the output — rename it"
        )));
    }
    cx.g.node("Identity", &[&final_value], OUTPUT_NAME, vec![]);
    Ok(())
}

/// The model around the lowered graph `g`: opset, batch-1 input, output `p_live [1, 1]`,
/// metadata.
fn model(graph: &Graph, g: GraphParts, opts: &ExportOptions) -> OnnxModel {
    let input = &graph.inputs[0];
    let mut in_shape = input.shape.clone();
    in_shape[0] = 1;
    let mut metadata = vec![
        ("fas.score".to_string(), "p_live".to_string()),
        ("fas.model".to_string(), graph.name.clone()),
    ];
    metadata.extend(opts.metadata.iter().cloned());
    let proto = ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        producer_name: "fas-quantize".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(tract_onnx::pb::GraphProto {
            name: graph.name.clone(),
            node: g.nodes,
            initializer: g.initializers,
            input: vec![value_info(&input.name, &in_shape)],
            output: vec![value_info(OUTPUT_NAME, &[1, 1])],
            ..Default::default()
        }),
        metadata_props: metadata
            .into_iter()
            .map(|(key, value)| StringStringEntryProto { key, value })
            .collect(),
        ..Default::default()
    };
    OnnxModel {
        proto,
        input_name: input.name.clone(),
        input_shape: in_shape,
    }
}

impl OnnxModel {
    /// Reads an ONNX file written by [`export`] (one input `[1, C, H, W]`).
    pub fn from_bytes(bytes: &[u8]) -> Result<OnnxModel, ExportError> {
        use prost::Message;
        let proto = ModelProto::decode(bytes).map_err(|e| {
            unsupported(format!(
                "not an ONNX model ({e}) — pass the liveness.onnx that `fas-quantize export` wrote"
            ))
        })?;
        let g = proto
            .graph
            .as_ref()
            .ok_or_else(|| unsupported("the ONNX model has no graph".into()))?;
        let init: std::collections::HashSet<&str> =
            g.initializer.iter().map(|t| t.name.as_str()).collect();
        let inputs: Vec<_> = g
            .input
            .iter()
            .filter(|i| !init.contains(i.name.as_str()))
            .collect();
        let [input] = inputs.as_slice() else {
            return Err(unsupported(format!(
                "the model has {} inputs; a liveness model has one",
                inputs.len()
            )));
        };
        use tract_onnx::pb::{tensor_shape_proto::dimension::Value, type_proto};
        let shape: Option<Vec<usize>> = match input.r#type.as_ref().and_then(|t| t.value.as_ref()) {
            Some(type_proto::Value::TensorType(t)) => t.shape.as_ref().map(|s| {
                s.dim
                    .iter()
                    .map(|d| match d.value {
                        Some(Value::DimValue(v)) if v > 0 => v as usize,
                        _ => 0,
                    })
                    .collect()
            }),
            _ => None,
        };
        let shape = shape
            .filter(|s| s.len() == 4 && s.iter().all(|&d| d > 0))
            .ok_or_else(|| {
                unsupported(format!(
                    "input \"{}\" has no static [1, C, H, W] shape",
                    input.name
                ))
            })?;
        Ok(OnnxModel {
            input_name: input.name.clone(),
            input_shape: shape,
            proto,
        })
    }
}
