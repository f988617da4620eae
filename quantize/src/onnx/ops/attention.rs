//! DLIF's channel-wise StyleAttention, SqueezeExcite, and the gate
//! `σ(fc2(relu(fc1(·))))` they (and ANRL's AdaptiveBnIn) share.

use super::{axis, reduce_axes, Lowering, NodeIo};
use crate::onnx::proto::Attr;

/// `y = x·(a + 1)` with `a` the gate over the per-channel `[mean, variance]`.
pub(super) fn style_attention(cx: &mut Lowering, n: &NodeIo) {
    let x = n.x();
    let g = &mut cx.g;
    let mu = g.node("ReduceMean", &[x], &n.tmp("mean"), reduce_axes(&[2, 3]));
    let d = g.node("Sub", &[x, &mu], &n.tmp("centred"), vec![]);
    let d2 = g.node("Mul", &[&d, &d], &n.tmp("sq"), vec![]);
    let var = g.node("ReduceMean", &[&d2], &n.tmp("var"), reduce_axes(&[2, 3]));
    let style = g.node("Concat", &[&mu, &var], &n.tmp("style"), vec![axis(1)]);
    let a = gate(cx, &style, &n.param(""), &n.tmp("attn"), true);
    let g = &mut cx.g;
    let one = g.init_f32(&n.param("one"), &[1], &[1.0]);
    let a1 = g.node("Add", &[&a, &one], &n.tmp("attn_plus_one"), vec![]);
    g.node("Mul", &[x, &a1], n.y, vec![]);
}

/// `y = x·a` with `a` the gate over the global average of `x`.
pub(super) fn squeeze_excite(cx: &mut Lowering, n: &NodeIo) {
    let a = gate(cx, n.x(), &n.param(""), &n.tmp("attn"), false);
    cx.g.node("Mul", &[n.x(), &a], n.y, vec![]);
}

/// `σ(fc2(relu(fc1(pool(x)))))` reshaped to `[1, C, 1, 1]`, the weights named
/// `<prefix>fc1.weight` etc.; `pool` is GAP unless `x` is already `[N, K, 1, 1]`
/// (`already_pooled`). Its values are named `<y>/<step>`, its output `y`.
pub(super) fn gate(
    cx: &mut Lowering,
    x: &str,
    prefix: &str,
    y: &str,
    already_pooled: bool,
) -> String {
    let weights = cx.weights;
    let g = &mut cx.g;
    let pooled = if already_pooled {
        x.to_string()
    } else {
        g.node("GlobalAveragePool", &[x], &format!("{y}/gap"), vec![])
    };
    let mut h = g.node("Flatten", &[&pooled], &format!("{y}/flat"), vec![axis(1)]);
    for (i, fc) in ["fc1", "fc2"].iter().enumerate() {
        let wt = weights.get(&format!("{prefix}{fc}.weight"));
        let b = weights.get(&format!("{prefix}{fc}.bias"));
        let wn = g.init_f32(&format!("{prefix}{fc}.weight"), &wt.shape, &wt.data);
        let bn = g.init_f32(&format!("{prefix}{fc}.bias"), &b.shape, &b.data);
        h = g.node(
            "Gemm",
            &[&h, &wn, &bn],
            &format!("{y}/{fc}"),
            vec![("transB", Attr::Int(1))],
        );
        if i == 0 {
            h = g.node("Relu", &[&h], &format!("{y}/relu"), vec![]);
        }
    }
    let s = g.node("Sigmoid", &[&h], &format!("{y}/sigmoid"), vec![]);
    let axes = g.init_i64(&format!("{y}/axes"), &[2, 3]);
    g.node("Unsqueeze", &[&s, &axes], y, vec![])
}
