//! Linear and L2Normalize (the layers of a classifier head).

use super::{reduce_axes, Lowering, NodeIo};
use crate::onnx::proto::Attr;

/// `Gemm` on a `[N, in]` input; on more axes, `MatMul` with the transposed weight + `Add`.
/// Without a bias the bias is zeros.
pub(super) fn linear(
    cx: &mut Lowering,
    n: &NodeIo,
    in_features: usize,
    out_features: usize,
    bias: bool,
) {
    let wt = cx.w(n, "weight");
    let b = if bias {
        cx.w(n, "bias").data.clone()
    } else {
        vec![0.0; out_features]
    };
    let rank = cx.shapes[&n.ir.inputs[0]].len();
    let g = &mut cx.g;
    let wn = g.init_f32(&n.param("weight"), &[out_features, in_features], &wt.data);
    let bn = g.init_f32(&n.param("bias"), &[out_features], &b);
    if rank == 2 {
        g.node(
            "Gemm",
            &[n.x(), &wn, &bn],
            n.y,
            vec![("transB", Attr::Int(1))],
        );
    } else {
        // [.., in] · Wᵀ + b on the last axis.
        let wt_t = transpose(&wt.data, out_features, in_features);
        g.take_initializer(&wn);
        let wn = g.init_f32(&n.param("weight_t"), &[in_features, out_features], &wt_t);
        let mm = g.node("MatMul", &[n.x(), &wn], &n.tmp("matmul"), vec![]);
        g.node("Add", &[&mm, &bn], n.y, vec![]);
    }
}

/// `x / max(‖x‖₂, eps)` over axis 1.
pub(super) fn l2_normalize(cx: &mut Lowering, n: &NodeIo, eps: f64) {
    let g = &mut cx.g;
    let norm = g.node("ReduceL2", &[n.x()], &n.tmp("norm"), reduce_axes(&[1]));
    let e = g.init_f32(&n.param("eps"), &[1], &[eps as f32]);
    let clamped = g.node("Max", &[&norm, &e], &n.tmp("norm_clamped"), vec![]);
    g.node("Div", &[n.x(), &clamped], n.y, vec![]);
}

fn transpose(w: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0f32; w.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = w[r * cols + c];
        }
    }
    t
}
