//! int8 weights: symmetric, per output channel (`scale_c = max|w_c| / 127`, zero point 0),
//! stored as an int8 initializer that a `DequantizeLinear` (per-channel `axis`) turns back
//! into the f32 weight the Conv / Gemm / MatMul reads.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use tract_onnx::pb::{
    attribute_proto::AttributeType, tensor_proto::DataType, AttributeProto, GraphProto, NodeProto,
    TensorProto,
};

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

/// Channels `c0..c1` along `axis` of a row-major tensor.
fn slice_axis<T: Copy>(data: &[T], shape: &[usize], axis: usize, c0: usize, c1: usize) -> Vec<T> {
    let inner: usize = shape[axis + 1..].iter().product();
    let block = shape[axis] * inner;
    data.chunks(block)
        .flat_map(|b| b[c0 * inner..c1 * inner].iter().copied())
        .collect()
}

/// One weight that was replaced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantizedWeight {
    pub name: String,
    /// The op reading it (`Conv`, `Gemm`, `MatMul`).
    pub op: String,
    pub axis: usize,
    pub channels: usize,
    /// Number of `DequantizeLinear` nodes it is split into (see [`TRACT_FOLD_BYTES`]).
    pub chunks: usize,
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

/// tract folds a constant-fed `DequantizeLinear` into an f32 constant at load only when
/// its output fits the constant-folding budget (`tract_core::optim::CONST_FOLD_MEM_BUDGET`,
/// 4 MiB in 0.23.9); a larger weight would be dequantised again on every run (measured:
/// ResNet-18 weight-only 1.4× slower than fp32). Weights above it are dequantised in
/// channel chunks that fit and joined by a `Concat`, which tract folds too.
pub const TRACT_FOLD_BYTES: usize = 4 << 20;

/// [`quantize_weights_with`] with chunks of at most [`TRACT_FOLD_BYTES`].
pub fn quantize_weights(graph: &mut GraphProto) -> Vec<QuantizedWeight> {
    quantize_weights_with(graph, Some(TRACT_FOLD_BYTES))
}

/// Replaces every f32 weight initializer of a Conv / Gemm / MatMul (input 1) by int8 +
/// `DequantizeLinear` — one per chunk of output channels whose f32 size stays within
/// `chunk_bytes` (`None`: one per weight). A weight read by several ops that disagree on
/// the channel axis stays f32. Returns what was replaced, in node order.
pub fn quantize_weights_with(
    graph: &mut GraphProto,
    chunk_bytes: Option<usize>,
) -> Vec<QuantizedWeight> {
    let mut dq_nodes = vec![];
    let mut report = vec![];
    for (w, op, axis) in plan(graph) {
        let i = graph
            .initializer
            .iter()
            .position(|t| t.name == w)
            .expect("planned from the initializers");
        let t = graph.initializer.remove(i);
        let (q, max_rel_error) = quantize_checked(&t, axis);
        let shape: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
        let channels = shape[axis];
        // Channels per DequantizeLinear: all of them, or as many as keep its f32 output
        // within `chunk_bytes`.
        let len = q.data.len();
        let per_chunk = match chunk_bytes {
            Some(b) if len * 4 > b => (b / (4 * len / channels)).max(1),
            _ => channels,
        };
        let chunks = channels.div_ceil(per_chunk);
        dequantize_in_chunks(graph, &mut dq_nodes, &w, &q, &shape, per_chunk);
        report.push(QuantizedWeight {
            name: w,
            op,
            axis,
            channels,
            chunks,
            max_rel_error,
        });
    }
    // They read initializers only, so they go first (topological order holds).
    graph.node.splice(0..0, dq_nodes);
    report
}

/// The weights to quantise, `(initializer, op type, channel axis)` in node order: input 1
/// of each Conv / Gemm / MatMul that is an f32 initializer, unless its readers disagree on
/// the axis.
fn plan(graph: &GraphProto) -> Vec<(String, String, usize)> {
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
    plan
}

/// The f32 initializer `t` quantised per slice along `axis`, and the largest error of its
/// dequantised values relative to their channel's range (`127·scale`).
fn quantize_checked(t: &TensorProto, axis: usize) -> (ChannelQuant, f32) {
    let shape: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
    let data = f32_data(t);
    let q = quantize_per_channel(&data, &shape, axis);
    let back = q.dequantize(&shape);
    let inner: usize = shape[axis + 1..].iter().product();
    let max_rel_error = data
        .iter()
        .zip(&back)
        .enumerate()
        .map(|(k, (a, b))| (a - b).abs() / (q.scales[(k / inner) % shape[axis]] * 127.0))
        .fold(0f32, f32::max);
    (q, max_rel_error)
}

/// The int8 weight `w` back to f32: one `DequantizeLinear` per `per_chunk` channels (its
/// initializers `<w>_quantized`, `<w>_scale`, `<w>_zero_point`, suffixed `_<k>` when there
/// are several), joined by a `Concat` into `w` when there are several.
fn dequantize_in_chunks(
    graph: &mut GraphProto,
    dq_nodes: &mut Vec<NodeProto>,
    w: &str,
    q: &ChannelQuant,
    shape: &[usize],
    per_chunk: usize,
) {
    let axis = q.axis;
    let channels = shape[axis];
    let chunks = channels.div_ceil(per_chunk);
    let mut parts = vec![];
    for k in 0..chunks {
        let (c0, c1) = (k * per_chunk, ((k + 1) * per_chunk).min(channels));
        let suffix = if chunks == 1 {
            String::new()
        } else {
            format!("_{k}")
        };
        let (qn, sn, zn) = (
            format!("{w}_quantized{suffix}"),
            format!("{w}_scale{suffix}"),
            format!("{w}_zero_point{suffix}"),
        );
        let mut part_shape = shape.to_vec();
        part_shape[axis] = c1 - c0;
        graph.initializer.push(tensor_i8(
            &qn,
            &part_shape,
            &slice_axis(&q.data, shape, axis, c0, c1),
        ));
        graph
            .initializer
            .push(tensor_f32(&sn, &[c1 - c0], &q.scales[c0..c1]));
        graph
            .initializer
            .push(tensor_i8(&zn, &[c1 - c0], &vec![0; c1 - c0]));
        let out = if chunks == 1 {
            w.to_string()
        } else {
            format!("{w}_part{k}")
        };
        dq_nodes.push(super::qdq::dequantize_node(&qn, &sn, &zn, &out, Some(axis)));
        parts.push(out);
    }
    if chunks > 1 {
        dq_nodes.push(NodeProto {
            name: format!("{w}_Concat"),
            op_type: "Concat".into(),
            input: parts,
            output: vec![w.to_string()],
            attribute: vec![AttributeProto {
                name: "axis".into(),
                r#type: AttributeType::Int as i32,
                i: axis as i64,
                ..Default::default()
            }],
            ..Default::default()
        });
    }
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
    fn slices_along_either_axis() {
        let d: Vec<i32> = (0..12).collect();
        assert_eq!(
            slice_axis(&d, &[3, 4], 0, 1, 3),
            (4..12).collect::<Vec<_>>()
        );
        assert_eq!(slice_axis(&d, &[3, 4], 1, 1, 3), vec![1, 2, 5, 6, 9, 10]);
    }

    #[test]
    fn large_weights_are_dequantised_in_chunks() {
        use crate::onnx::proto::GraphParts;
        let mut g = GraphParts::default();
        let w: Vec<f32> = (0..40).map(|i| i as f32 - 20.0).collect();
        g.init_f32("w", &[5, 8], &w);
        g.node("MatMul", &["x", "w"], "y", vec![]);
        let mut graph = GraphProto {
            node: g.nodes,
            initializer: g.initializers,
            ..Default::default()
        };
        // 5×8 f32 = 160 bytes; 64-byte chunks hold 3 of the 8 columns (axis 1).
        let r = quantize_weights_with(&mut graph, Some(64));
        assert_eq!((r[0].axis, r[0].channels, r[0].chunks), (1, 8, 3));
        let ops: Vec<&str> = graph.node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(
            ops,
            [
                "DequantizeLinear",
                "DequantizeLinear",
                "DequantizeLinear",
                "Concat",
                "MatMul"
            ]
        );
        let concat = &graph.node[3];
        assert_eq!(concat.output, vec!["w"]);
        assert_eq!(concat.attribute[0].i, 1);
        let dims: Vec<Vec<i64>> = ["w_quantized_0", "w_quantized_1", "w_quantized_2"]
            .iter()
            .map(|n| {
                graph
                    .initializer
                    .iter()
                    .find(|t| &t.name == n)
                    .unwrap()
                    .dims
                    .clone()
            })
            .collect();
        assert_eq!(dims, vec![vec![5, 3], vec![5, 3], vec![5, 2]]);
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
