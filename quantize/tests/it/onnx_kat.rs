//! Known-answer test of the ONNX exporter (and of int8 weight quantisation on its output): graphs that together use every IR op (and every
//! path of its lowering that a valid graph reaches: folded and unfolded BatchNorm, two- and
//! many-input Add, an output renamed to p_live through Identity, an output behind a
//! Dropout) are exported with fixed weights and the bytes hashed. The hashes were captured
//! before the exporter was split into one function per op (issue 28, item 4): a refactor of
//! the lowering must not change a byte. A deliberate change to the ONNX it writes updates
//! them (and says why in the commit).

use fas_core::bundle::sha256_hex;
use fas_core::ir::backbones::{live_prob, LiveProbKind};
use fas_core::ir::{Graph, GraphBuilder};
use fas_quantize::int8::quantize_weights_with;
use fas_quantize::onnx::{export, ExportOptions, Tensor, Weights};

/// Deterministic weights from each tensor's name and index (integer arithmetic, so the
/// values are the same on every machine); variances are positive.
fn weights(graph: &Graph) -> Weights {
    let mut w = Weights::default();
    for (name, shape) in graph.weights() {
        let n: usize = shape.iter().product();
        let seed = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        });
        let data = (0..n as u64)
            .map(|i| {
                let r = (seed ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
                    .wrapping_mul(0x2545_f491_4f6c_dd1d);
                let u = (r >> 40) as f32 / (1u64 << 24) as f32; // [0, 1)
                if name.ends_with("running_var") {
                    0.25 + 1.5 * u
                } else {
                    u - 0.5
                }
            })
            .collect();
        w.tensors.insert(name, Tensor::new(shape, data));
    }
    w
}

/// A conv without bias folded with its BN, a Linear without bias, and an output that is
/// neither named p_live nor produced by a node of its own (sigmoid → dropout).
fn renamed_output() -> Graph {
    let mut b = GraphBuilder::new("renamed");
    let x = b.input("image", &[1, 3, 16, 16]);
    let c = b.conv_full("c", &x, 4, 3, 2, 1, 1, false);
    let c = b.bn("c_bn", &c);
    let c = b.relu("c_act", &c);
    let g = b.global_avg_pool("gap", &c);
    let f = b.flatten("flat", &g);
    let l = b.linear("fc", &f, 1, false);
    let s = b.sigmoid("prob", &l);
    let d = b.dropout("drop_out", &s, 0.1);
    b.output(&d);
    b.finish().unwrap()
}

/// A depth-map head: p_live is the mean of a sigmoid map.
fn depth_head() -> Graph {
    let mut b = GraphBuilder::new("depth");
    let x = b.input("input", &[1, 3, 8, 8]);
    let c = b.conv_full("c", &x, 1, 3, 1, 1, 1, true);
    let c = b.sigmoid("c_sig", &c);
    let p = live_prob(&mut b, &c, LiveProbKind::DepthMean).unwrap();
    b.output(&p);
    b.finish().unwrap()
}

/// sha256 of the exported bytes, with the producer version cleared (a release bump is not
/// a change of the lowering).
fn hash(graph: &Graph, opts: &ExportOptions) -> String {
    let mut m = export(graph, &weights(graph), opts).unwrap();
    m.proto.producer_version.clear();
    sha256_hex(&m.to_bytes())
}

/// sha256 of the all-ops model with int8 weights (`quantize_weights_with`), in chunks of
/// at most `chunk_bytes`.
fn hash_int8_weights(chunk_bytes: Option<usize>) -> String {
    let g = fas_core::ir::fixtures::all_ops();
    let mut m = export(&g, &weights(&g), &ExportOptions::default()).unwrap();
    m.proto.producer_version.clear();
    let graph = m.proto.graph.as_mut().unwrap();
    let report = quantize_weights_with(graph, chunk_bytes);
    assert!(!report.is_empty());
    sha256_hex(&m.to_bytes())
}

fn with_metadata() -> ExportOptions {
    ExportOptions {
        metadata: vec![("fas.recipe".into(), "kat".into())],
        ..ExportOptions::default()
    }
}

#[test]
fn onnx_export_bytes_are_the_known_answers() {
    let unfolded = ExportOptions {
        fold_batchnorm: false,
        ..ExportOptions::default()
    };
    let got = [
        (
            "all-ops",
            hash(&fas_core::ir::fixtures::all_ops(), &with_metadata()),
        ),
        (
            "all-ops unfolded",
            hash(&fas_core::ir::fixtures::all_ops(), &unfolded),
        ),
        (
            "renamed",
            hash(&renamed_output(), &ExportOptions::default()),
        ),
        ("renamed unfolded", hash(&renamed_output(), &unfolded)),
        ("depth", hash(&depth_head(), &ExportOptions::default())),
        ("all-ops int8 weights", hash_int8_weights(None)),
        (
            "all-ops int8 weights, 1 KiB chunks",
            hash_int8_weights(Some(1024)),
        ),
    ];
    let want = [
        (
            "all-ops",
            "01c76f9fa2e31523db57f5c1c420d1c9c2db7ff5bdab30b69f0d0f7f90cf87c0",
        ),
        (
            "all-ops unfolded",
            "77520290f9b078f805351832ed9b0b9d79f50d72d019889bba8261e792a99271",
        ),
        (
            "renamed",
            "f80367208a4a025273fd3d278719a99dbca2273d530e8af7a373a248448c4742",
        ),
        (
            "renamed unfolded",
            "8cd553b47f4c42d143bb64a477156b6bf4c85f054f87a0722db3adb1055f4995",
        ),
        (
            "depth",
            "d3a19afc52ee96bb576bc0d718d1652b0eb969dd3579ca602d204fbd7ab8e430",
        ),
        (
            "all-ops int8 weights",
            "e3aac9267c693e532323d76d0cd1463e492c9c4b63105c3a7220eeed9981bf6e",
        ),
        (
            "all-ops int8 weights, 1 KiB chunks",
            "c116c71fad73eef3873cc68700c2fe60b7140203eadcdb039cc5bd1662c9b3c2",
        ),
    ];
    for (name, g) in &got {
        eprintln!("{name}: {g}");
    }
    for ((name, g), (_, w)) in got.iter().zip(want) {
        assert_eq!(g, w, "{name}: the exported ONNX changed");
    }
}

/// The graphs above do use every IR op.
#[test]
fn the_known_answer_graphs_cover_every_ir_op() {
    let mut seen = std::collections::HashSet::new();
    for g in [
        fas_core::ir::fixtures::all_ops(),
        renamed_output(),
        depth_head(),
    ] {
        for n in &g.nodes {
            seen.insert(std::mem::discriminant(&n.op));
        }
    }
    // Op has 22 variants (core/src/ir/op.rs); a new one must be added here and to a graph.
    assert_eq!(seen.len(), 22, "{} of 22 IR ops covered", seen.len());
}
