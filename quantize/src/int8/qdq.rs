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

/// Values that are not activations: initializers and the outputs of nodes that read only
/// constants (int8 weights: `DequantizeLinear`, and the `Concat` of its chunks).
fn constants(graph: &GraphProto) -> HashSet<String> {
    let mut c: HashSet<String> = graph.initializer.iter().map(|t| t.name.clone()).collect();
    for n in &graph.node {
        if !n.input.is_empty() && n.input.iter().all(|i| i.is_empty() || c.contains(i)) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::proto::GraphParts;
    use tract_onnx::pb::ValueInfoProto;

    /// x → Conv → a; Add(a, b_init) → c; Add(a, c) → d; Concat(a, d) → e; Gemm(e) → y.
    fn graph() -> GraphProto {
        let mut g = GraphParts::default();
        g.init_f32("w", &[2, 2, 1, 1], &[1.0; 4]);
        g.init_f32("b_init", &[1], &[0.5]);
        g.init_f32("g_w", &[4, 1], &[1.0; 4]);
        g.node("Conv", &["x", "w"], "a", vec![]);
        g.node("Add", &["a", "b_init"], "c", vec![]);
        g.node("Add", &["a", "c"], "d", vec![]);
        g.node("Concat", &["a", "d"], "e", vec![]);
        g.node("MatMul", &["e", "g_w"], "y", vec![]);
        GraphProto {
            node: g.nodes,
            initializer: g.initializers,
            input: vec![ValueInfoProto {
                name: "x".into(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn range(t: &str) -> TensorRange {
        TensorRange {
            tensor: t.into(),
            min: -1.0,
            max: 1.0,
            range: [-1.0, 1.0],
            method: "minmax".into(),
        }
    }

    #[test]
    fn plans_compute_inputs_and_activation_joins_only() {
        let g = graph();
        assert_eq!(activation_tensors(&g, false), vec!["x", "e"]);
        // The Add with an initializer (a BN shift, a bias) is not a join.
        assert_eq!(activation_tensors(&g, true), vec!["x", "a", "c", "d", "e"]);
    }

    #[test]
    fn insertion_keeps_topological_order_and_rewires_only_quantised_uses() {
        let mut g = graph();
        crate::int8::quantize_weights(&mut g);
        let ranges: Vec<TensorRange> = ["x", "a", "c", "d", "e"].map(range).to_vec();
        let missing = insert_qdq(&mut g, &ranges[..4], ActivationType::U8, true);
        assert_eq!(missing, vec!["e"]);
        let mut known: HashSet<String> = g.initializer.iter().map(|t| t.name.clone()).collect();
        known.insert("x".into());
        for n in &g.node {
            for i in &n.input {
                assert!(
                    known.contains(i),
                    "{} reads {i} before it is produced",
                    n.name
                );
            }
            known.extend(n.output.iter().cloned());
        }
        let node = |out: &str| g.node.iter().find(|n| n.output[0] == out).unwrap();
        assert_eq!(node("a").input[0], "x_dequantized");
        // The Add with a constant reads the f32 value; the join reads the dequantised one.
        assert_eq!(node("c").input, vec!["a", "b_init"]);
        assert_eq!(node("d").input, vec!["a_dequantized", "c_dequantized"]);
        // No range for "e": the MatMul keeps reading f32.
        assert_eq!(node("y").input[0], "e");
        assert_eq!(
            g.node
                .iter()
                .filter(|n| n.op_type == "QuantizeLinear")
                .count(),
            4
        );
    }
}
