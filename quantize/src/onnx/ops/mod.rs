//! One function per IR op, as tract's ONNX loader has one per ONNX op: each lowers one
//! node of the IR graph to ONNX nodes and initializers. [`lower_node`] picks the function;
//! the driver, [`super::lower::export`], calls it on each node in graph order.
//!
//! * `conv`: Conv2d (with a folded BatchNorm's weights where there is one).
//! * `norm`: BatchNorm2d, InstanceNorm2d, ANRL's AdaptiveBnIn; the BN folding plan.
//! * `attention`: DLIF's StyleAttention, SqueezeExcite and the gate they share.
//! * `activation`: Relu, PRelu, Sigmoid, Softmax.
//! * `pool`: MaxPool2d, AvgPool2d, GlobalAvgPool.
//! * `dense`: Linear, L2Normalize.
//! * `tensor`: Flatten, Add, Concat, Upsample, MeanOfMap, Select, Dropout.
//!
//! Shared here: the lowering state ([`Lowering`]), one node's names ([`NodeIo`]) and the
//! attribute builders.

mod activation;
mod attention;
mod conv;
mod dense;
mod norm;
mod pool;
mod tensor;

use std::collections::{BTreeMap, HashMap};

use fas_core::ir::{Node, Op};

use super::proto::{Attr, GraphParts};
use super::weights::{Tensor, Weights};

pub use norm::bn_affine;
pub(super) use norm::BnFolds;

/// The ONNX graph under construction and what lowering a node may read.
pub(super) struct Lowering<'a> {
    pub g: GraphParts,
    /// IR value name → ONNX value name (differs where nodes vanish: Dropout, folded BN).
    pub alias: HashMap<String, String>,
    pub weights: &'a Weights,
    pub shapes: &'a BTreeMap<String, Vec<usize>>,
    pub folds: BnFolds,
}

impl<'a> Lowering<'a> {
    /// The ONNX name of the IR value `v`.
    pub fn name_of(&self, v: &str) -> String {
        self.alias.get(v).cloned().unwrap_or_else(|| v.to_string())
    }

    /// The weight `<node>.<suffix>`.
    fn w(&self, n: &NodeIo, suffix: &str) -> &'a Tensor {
        self.weights.get(&n.param(suffix))
    }
}

/// One IR node's names: its inputs as ONNX names, its output.
struct NodeIo<'n> {
    ir: &'n Node,
    xs: Vec<String>,
    y: &'n str,
}

impl NodeIo<'_> {
    /// The first input.
    fn x(&self) -> &str {
        &self.xs[0]
    }

    /// The name of the node's parameter `suffix` (a weight or a constant): `<node>.<suffix>`.
    fn param(&self, suffix: &str) -> String {
        format!("{}.{suffix}", self.ir.name)
    }

    /// The name of an intermediate value of the node's lowering: `<output>/<step>`.
    fn tmp(&self, step: &str) -> String {
        format!("{}/{step}", self.y)
    }
}

/// Lowers the IR node `ir` into `cx`.
pub(super) fn lower_node(cx: &mut Lowering, ir: &Node) {
    let n = NodeIo {
        ir,
        xs: ir.inputs.iter().map(|i| cx.name_of(i)).collect(),
        y: ir.outputs[0].as_str(),
    };
    match &ir.op {
        Op::Conv2d {
            stride,
            padding,
            dilation,
            groups,
            bias,
            out_channels,
            ..
        } => conv::conv2d(
            cx,
            &n,
            &conv::Conv {
                stride: *stride,
                padding: *padding,
                dilation: *dilation,
                groups: *groups,
                bias: *bias,
                out_channels: *out_channels,
            },
        ),
        Op::BatchNorm2d { channels, eps, .. } => norm::batch_norm(cx, &n, *channels, *eps),
        Op::InstanceNorm2d {
            channels,
            eps,
            affine,
        } => norm::instance_norm(cx, &n, *channels, *eps, *affine),
        Op::AdaptiveBnIn { channels, eps, .. } => norm::adaptive_bn_in(cx, &n, *channels, *eps),
        Op::StyleAttention { .. } => attention::style_attention(cx, &n),
        Op::SqueezeExcite { .. } => attention::squeeze_excite(cx, &n),
        Op::Relu => activation::relu(cx, &n),
        Op::PRelu { channels } => activation::prelu(cx, &n, *channels),
        Op::Sigmoid => activation::sigmoid(cx, &n),
        Op::Softmax { axis } => activation::softmax(cx, &n, *axis),
        Op::MaxPool2d {
            kernel,
            stride,
            padding,
        } => pool::max_pool(cx, &n, kernel, stride, padding),
        Op::AvgPool2d {
            kernel,
            stride,
            padding,
        } => pool::avg_pool(cx, &n, kernel, stride, padding),
        Op::GlobalAvgPool => pool::global_avg_pool(cx, &n),
        Op::Flatten => tensor::flatten(cx, &n),
        Op::Linear {
            in_features,
            out_features,
            bias,
        } => dense::linear(cx, &n, *in_features, *out_features, *bias),
        Op::Add => tensor::add(cx, &n),
        Op::Concat { axis } => tensor::concat(cx, &n, *axis),
        Op::Upsample { scale, mode } => tensor::upsample(cx, &n, *scale, mode),
        Op::L2Normalize { eps } => dense::l2_normalize(cx, &n, *eps),
        Op::MeanOfMap => tensor::mean_of_map(cx, &n),
        Op::Select { axis, index } => tensor::select(cx, &n, *axis, *index),
        Op::Dropout { .. } => tensor::dropout(cx, &n),
    }
}

/// `[a, b]` as ONNX ints.
fn ints(v: &[usize; 2]) -> Vec<i64> {
    v.iter().map(|&x| x as i64).collect()
}

/// ONNX `pads` for a symmetric 2-D padding: `[top, left, bottom, right]`.
fn pads(padding: &[usize; 2]) -> Attr {
    Attr::Ints(vec![
        padding[0] as i64,
        padding[1] as i64,
        padding[0] as i64,
        padding[1] as i64,
    ])
}

/// `axis = a`.
fn axis(a: usize) -> (&'static str, Attr) {
    ("axis", Attr::Int(a as i64))
}

/// `axes = a, keepdims = 1` of the ONNX reductions.
fn reduce_axes(a: &[i64]) -> Vec<(&'static str, Attr)> {
    vec![("axes", Attr::Ints(a.to_vec())), ("keepdims", Attr::Int(1))]
}
