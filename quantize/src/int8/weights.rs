//! int8 weights: symmetric, per output channel (`scale_c = max|w_c| / 127`, zero point 0),
//! stored as an int8 initializer that a `DequantizeLinear` (per-channel `axis`) turns back
//! into the f32 weight the Conv / Gemm / MatMul reads.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use tract_onnx::pb::{tensor_proto::DataType, GraphProto, NodeProto};

use crate::onnx::proto::{f32_data, tensor_f32, tensor_i8};

/// Per-channel int8 weights.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelQuant {
    pub data: Vec<i8>,
    /// One scale per slice along `axis`.
    pub scales: Vec<f32>,
    pub axis: usize,
}

/// Quantises `data` (row-major, `shape`) symmetrically per slice along `axis`.
pub fn quantize_per_channel(data: &[f32], shape: &[usize], axis: usize) -> ChannelQuant {
    let channels = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let channel_of = |i: usize| (i / inner) % channels;
    let mut amax = vec![0f32; channels];
    for (i, &w) in data.iter().enumerate() {
        let c = channel_of(i);
        amax[c] = amax[c].max(w.abs());
    }
    // An all-zero channel quantises to zeros whatever its scale; 1 keeps it positive.
    let scales: Vec<f32> = amax
        .iter()
        .map(|&m| if m > 0.0 { m / 127.0 } else { 1.0 })
        .collect();
    let data = data
        .iter()
        .enumerate()
        .map(|(i, &w)| {
            (w / scales[channel_of(i)])
                .round_ties_even()
                .clamp(-127.0, 127.0) as i8
        })
        .collect();
    ChannelQuant { data, scales, axis }
}

impl ChannelQuant {
    /// The f32 weights the model computes with (`q · scale`).
    pub fn dequantize(&self, shape: &[usize]) -> Vec<f32> {
        let channels = shape[self.axis];
        let inner: usize = shape[self.axis + 1..].iter().product();
        self.data
            .iter()
            .enumerate()
            .map(|(i, &q)| q as f32 * self.scales[(i / inner) % channels])
            .collect()
    }
}

/// One weight that was replaced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantizedWeight {
    pub name: String,
    /// The op reading it (`Conv`, `Gemm`, `MatMul`).
    pub op: String,
    pub axis: usize,
    pub channels: usize,
    /// Largest |w − ŵ| relative to its channel's max |w|.
    pub max_rel_error: f32,
}

/// The weight input of `node` and the axis of its output channels, if it is an op whose
/// weights are quantised.
fn weight_axis(node: &NodeProto, rank: usize) -> Option<usize> {
    let attr = |name: &str| {
        node.attribute
            .iter()
            .find(|a| a.name == name)
            .map_or(0, |a| a.i)
    };
    match node.op_type.as_str() {
        "Conv" if rank >= 3 => Some(0),
        "Gemm" if rank == 2 => Some(if attr("transB") == 1 { 0 } else { 1 }),
        "MatMul" if rank == 2 => Some(1),
        _ => None,
    }
}

/// Replaces every f32 weight initializer of a Conv / Gemm / MatMul (input 1) by int8 +
/// `DequantizeLinear`. A weight read by several ops that disagree on the channel axis stays
/// f32. Returns what was replaced, in node order.
pub fn quantize_weights(graph: &mut GraphProto) -> Vec<QuantizedWeight> {
    let inits: HashMap<String, usize> = graph
        .initializer
        .iter()
        .enumerate()
        .filter(|(_, t)| t.data_type == DataType::Float as i32)
        .map(|(i, t)| (t.name.clone(), i))
        .collect();
    let mut plan: Vec<(String, String, usize)> = vec![];
    let mut conflicting = HashSet::new();
    for n in &graph.node {
        let Some(w) = n.input.get(1) else { continue };
        let Some(&i) = inits.get(w) else { continue };
        let Some(axis) = weight_axis(n, graph.initializer[i].dims.len()) else {
            continue;
        };
        match plan.iter().find(|(name, _, _)| name == w) {
            Some((_, _, a)) if *a != axis => {
                conflicting.insert(w.clone());
            }
            Some(_) => {}
            None => plan.push((w.clone(), n.op_type.clone(), axis)),
        }
    }
    plan.retain(|(w, _, _)| !conflicting.contains(w));
    let mut dq_nodes = vec![];
    let mut report = vec![];
    for (w, op, axis) in plan {
        let i = graph
            .initializer
            .iter()
            .position(|t| t.name == w)
            .expect("planned from the initializers");
        let t = graph.initializer.remove(i);
        let shape: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
        let data = f32_data(&t);
        let q = quantize_per_channel(&data, &shape, axis);
        let back = q.dequantize(&shape);
        let inner: usize = shape[axis + 1..].iter().product();
        let max_rel_error = data
            .iter()
            .zip(&back)
            .enumerate()
            .map(|(k, (a, b))| (a - b).abs() / (q.scales[(k / inner) % shape[axis]] * 127.0))
            .fold(0f32, f32::max);
        let channels = shape[axis];
        let (qn, sn, zn) = (
            format!("{w}_quantized"),
            format!("{w}_scale"),
            format!("{w}_zero_point"),
        );
        graph.initializer.push(tensor_i8(&qn, &shape, &q.data));
        graph
            .initializer
            .push(tensor_f32(&sn, &[channels], &q.scales));
        graph
            .initializer
            .push(tensor_i8(&zn, &[channels], &vec![0; channels]));
        dq_nodes.push(super::qdq::dequantize_node(&qn, &sn, &zn, &w, Some(axis)));
        report.push(QuantizedWeight {
            name: w,
            op,
            axis,
            channels,
            max_rel_error,
        });
    }
    // They read initializers only, so they go first (topological order holds).
    graph.node.splice(0..0, dq_nodes);
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn per_channel_known_answer() {
        // Two output channels of 3 weights each.
        let w = [0.6, -1.0, 0.3, 0.03, 0.01, -0.04];
        let q = quantize_per_channel(&w, &[2, 3], 0);
        assert_eq!(q.scales, vec![1.0 / 127.0, 0.04 / 127.0]);
        // 76.2, −127, 38.1 | 95.25, 31.75, −127
        assert_eq!(q.data, vec![76, -127, 38, 95, 32, -127]);
        // Axis 1 (MatMul weights [in, out]): columns are the channels.
        let q = quantize_per_channel(&w, &[3, 2], 1);
        assert_eq!(q.scales, vec![0.6 / 127.0, 1.0 / 127.0]);
        assert_eq!(q.data[..2], [127, -127]);
    }

    #[test]
    fn zero_channel_stays_zero() {
        let q = quantize_per_channel(&[0.0, 0.0, 1.0, -1.0], &[2, 2], 0);
        assert_eq!(q.data, vec![0, 0, 127, -127]);
        assert!(q.scales.iter().all(|&s| s > 0.0));
    }

    proptest! {
        #[test]
        fn error_at_most_half_a_step(
            w in prop::collection::vec(-3f32..3.0, 12), axis in 0usize..2
        ) {
            let shape = [3, 4];
            let q = quantize_per_channel(&w, &shape, axis);
            let back = q.dequantize(&shape);
            let inner = if axis == 0 { 4 } else { 1 };
            for (k, (a, b)) in w.iter().zip(&back).enumerate() {
                let s = q.scales[(k / inner) % shape[axis]];
                prop_assert!((a - b).abs() <= 0.5 * s * (1.0 + 1e-5));
            }
        }
    }
}
