//! Graphs for tests: one graph that uses every IR op, shared by the exporter's
//! known-answer test (`quantize/tests/it/onnx_kat.rs`) and the tch / ONNX / tract parity
//! test (`tests/tests/it/export_parity.rs`), so both check the same graph.

use super::backbones::{live_prob, LiveProbKind};
use super::{Graph, GraphBuilder, Op, UpsampleMode};

/// Every IR op in one deployable graph (input `[1, 6, 24, 24]`, softmax `p_live`): strided,
/// dilated and grouped convolution, BN before and after, AFNM, both instance norms, style
/// attention, squeeze-excite, a 3-input Add, both poolings with padding, concat, both
/// upsampling modes, a sigmoid depth map and its mean, dropout, L2 normalisation.
pub fn all_ops() -> Graph {
    let mut b = GraphBuilder::new("all-ops");
    let x = b.input("input", &[1, 6, 24, 24]);
    let c1 = b.conv_full("c1", &x, 16, 3, 1, 1, 1, true);
    let c1 = b.bn("c1_bn", &c1);
    let c1 = b.prelu("c1_act", &c1);
    let dw = b.node(
        "dw",
        Op::Conv2d {
            in_channels: 16,
            out_channels: 16,
            kernel: [3, 3],
            stride: [2, 2],
            padding: [2, 2],
            dilation: [2, 2],
            groups: 16,
            bias: false,
        },
        &[&c1],
    );
    let dw = b.adaptive_bn_in("dw_afnm", &dw, 4);
    let dw = b.relu("dw_act", &dw);
    let inn = b.instance_norm("in_affine", &dw, true);
    let inn2 = b.instance_norm("in_plain", &dw, false);
    let sa = b.style_attention("sa", &inn, 4);
    let se = b.se("se", &inn2, 4);
    let sum = b.add("sum3", &[&sa, &se, &dw]);
    let sum = b.bn("sum_bn", &sum);
    let mp = b.max_pool("mp", &sum, 3, 2, 1);
    let ap = b.avg_pool("ap", &sum, 3, 2, 1);
    let cat = b.concat("cat", &[&mp, &ap], 1);
    let up_n = b.upsample("up_nearest", &cat, 2, UpsampleMode::Nearest);
    let up_b = b.upsample("up_bilinear", &cat, 2, UpsampleMode::Bilinear);
    let both = b.add("ups", &[&up_n, &up_b]);
    let dm = b.conv_full("depth", &both, 1, 3, 1, 1, 1, true);
    let dm = b.sigmoid("depth_sig", &dm);
    let dmean = b.mean_of_map("depth_mean", &dm);
    let g = b.global_avg_pool("gap", &both);
    let f = b.flatten("flat", &g);
    let f = b.dropout("drop", &f, 0.5);
    let h = b.linear("fc", &f, 8, true);
    let h = b.relu("fc_act", &h);
    let joined = b.concat("joined", &[&h, &dmean], 1);
    let n = b.l2_normalize("norm", &joined);
    let logits = b.linear("cls", &n, 3, false);
    let p = live_prob(&mut b, &logits, LiveProbKind::Softmax).unwrap();
    b.output(&p);
    b.finish().unwrap()
}
