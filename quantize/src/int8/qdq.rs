//! QDQ activations: a `QuantizeLinear → DequantizeLinear` pair (per-tensor scale and zero
//! point from the calibrated range) on every activation input of Conv / Gemm / MatMul —
//! and, optionally, of Add / Concat whose inputs are all activations (residual joins).
//! Consumers of other kinds keep reading the f32 value.

use std::collections::{HashMap, HashSet};

use tract_onnx::pb::{attribute_proto::AttributeType, AttributeProto, GraphProto, NodeProto};

use crate::calibrate::{ActivationType, TensorRange};
use crate::onnx::proto::{tensor_f32, tensor_i8, tensor_u8};

/// Ops whose activation inputs are always quantised.
const COMPUTE_OPS: [&str; 3] = ["Conv", "Gemm", "MatMul"];
/// Ops quantised on request, when all their inputs are activations.
const JOIN_OPS: [&str; 2] = ["Add", "Concat"];

/// Values that are not activations: initializers and outputs of `DequantizeLinear` nodes
/// fed by initializers (int8 weights).
fn constants(graph: &GraphProto) -> HashSet<String> {
    let mut c: HashSet<String> = graph.initializer.iter().map(|t| t.name.clone()).collect();
    for n in &graph.node {
        if n.op_type == "DequantizeLinear" && n.input.first().is_some_and(|i| c.contains(i)) {
            c.extend(n.output.iter().cloned());
        }
    }
    c
}

/// Indices of the inputs of `node` that get a Q/DQ pair.
fn quantised_inputs(node: &NodeProto, constants: &HashSet<String>, joins: bool) -> Vec<usize> {
    let is_act = |i: &String| !i.is_empty() && !constants.contains(i);
    let op = node.op_type.as_str();
    if COMPUTE_OPS.contains(&op) {
        // Conv/Gemm: X (input 0); MatMul: either side when it is an activation.
        let n = if op == "MatMul" { 2 } else { 1 };
        (0..n.min(node.input.len()))
            .filter(|&k| is_act(&node.input[k]))
            .collect()
    } else if joins && JOIN_OPS.contains(&op) && node.input.iter().all(is_act) {
        (0..node.input.len()).collect()
    } else {
        vec![]
    }
}

/// The activation tensors that QDQ quantises, in first-use order (what calibration must
/// measure).
pub fn activation_tensors(graph: &GraphProto, joins: bool) -> Vec<String> {
    let c = constants(graph);
    let mut seen = HashSet::new();
    let mut out = vec![];
    for n in &graph.node {
        for k in quantised_inputs(n, &c, joins) {
            if seen.insert(n.input[k].clone()) {
                out.push(n.input[k].clone());
            }
        }
    }
    out
}

/// A `DequantizeLinear` node (`axis` for per-channel parameters).
pub fn dequantize_node(
    x: &str,
    scale: &str,
    zero_point: &str,
    y: &str,
    axis: Option<usize>,
) -> NodeProto {
    NodeProto {
        name: format!("{y}_DequantizeLinear"),
        op_type: "DequantizeLinear".into(),
        input: vec![x.into(), scale.into(), zero_point.into()],
        output: vec![y.into()],
        attribute: axis
            .map(|a| AttributeProto {
                name: "axis".into(),
                r#type: AttributeType::Int as i32,
                i: a as i64,
                ..Default::default()
            })
            .into_iter()
            .collect(),
        ..Default::default()
    }
}

/// Inserts a Q/DQ pair for every range and points the quantised consumers at it.
/// Returns the names of tensors that were planned but had no range (left f32).
pub fn insert_qdq(
    graph: &mut GraphProto,
    ranges: &[TensorRange],
    ty: ActivationType,
    joins: bool,
) -> Vec<String> {
    let by_name: HashMap<&str, &TensorRange> =
        ranges.iter().map(|r| (r.tensor.as_str(), r)).collect();
    let c = constants(graph);
    let planned = activation_tensors(graph, joins);
    let missing: Vec<String> = planned
        .iter()
        .filter(|t| !by_name.contains_key(t.as_str()))
        .cloned()
        .collect();
    // Q/DQ nodes, keyed by the tensor they follow.
    let mut pairs: HashMap<String, [NodeProto; 2]> = HashMap::new();
    for t in planned.iter().filter(|t| by_name.contains_key(t.as_str())) {
        let p = ty.params(by_name[t.as_str()].range);
        let (sn, zn) = (format!("{t}_scale"), format!("{t}_zero_point"));
        graph.initializer.push(tensor_f32(&sn, &[], &[p.scale]));
        graph.initializer.push(match ty {
            ActivationType::U8 => tensor_u8(&zn, &[], &[p.zero_point as u8]),
            ActivationType::I8 => tensor_i8(&zn, &[], &[p.zero_point as i8]),
        });
        let (qn, dqn) = (format!("{t}_quantized"), format!("{t}_dequantized"));
        let q = NodeProto {
            name: format!("{t}_QuantizeLinear"),
            op_type: "QuantizeLinear".into(),
            input: vec![t.clone(), sn.clone(), zn.clone()],
            output: vec![qn.clone()],
            ..Default::default()
        };
        pairs.insert(t.clone(), [q, dequantize_node(&qn, &sn, &zn, &dqn, None)]);
    }
    let old = std::mem::take(&mut graph.node);
    let mut nodes = Vec::with_capacity(old.len() + 2 * pairs.len());
    for input in &graph.input {
        if let Some(p) = pairs.remove(&input.name) {
            nodes.extend(p);
        }
    }
    for mut n in old {
        for k in quantised_inputs(&n, &c, joins) {
            let t = &n.input[k];
            if by_name.contains_key(t.as_str()) {
                n.input[k] = format!("{t}_dequantized");
            }
        }
        let outs = n.output.clone();
        nodes.push(n);
        for o in outs {
            if let Some(p) = pairs.remove(&o) {
                nodes.extend(p);
            }
        }
    }
    graph.node = nodes;
    missing
}
