//! int8 quantisation end to end, in tract: per-channel Q/DQ semantics, a QDQ conv model
//! against a Rust reference of the same fake-quantised computation, weight-only and QDQ
//! EdgeNet models through the drift gate, and refusal of what tract cannot run.

#[path = "../../examples/support/synthetic.rs"]
mod synthetic;

use std::time::Instant;

use fas_core::bundle::Encoding;
use fas_core::dataset::Label;
use fas_core::ir::backbones::BackboneKind;
use fas_infer::liveness::LivenessModel;
use fas_quantize::calibrate::{
    calibrate, ActivationType, CalibrationMethod, CalibrationOptions, TensorRange,
};
use fas_quantize::drift::{drift, DriftBound, DriftError};
use fas_quantize::int8::{
    qdq, quantize, quantize_weights, verify_runs, QuantizeConfig, QuantizeError, VerifyError,
};
use fas_quantize::onnx::proto::{tensor_i8, value_info, Attr, GraphParts, IR_VERSION, OPSET};
use fas_quantize::onnx::OnnxModel;
use prost::Message;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tract_onnx::pb::{GraphProto, ModelProto, OperatorSetIdProto};

fn model_proto(g: GraphParts, input: (&str, &[usize]), output: (&str, &[usize])) -> ModelProto {
    ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        graph: Some(GraphProto {
            name: "test".into(),
            node: g.nodes,
            initializer: g.initializers,
            input: vec![value_info(input.0, input.1)],
            output: vec![value_info(output.0, output.1)],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn run(proto: &ModelProto, shape: &[usize], x: &[f32]) -> Vec<f32> {
    LivenessModel::from_bytes(&proto.encode_to_vec(), shape, "test")
        .unwrap()
        .run_raw(x)
        .unwrap()
}

/// tract ≤ 0.23.7 used only scale[0] of a per-channel DequantizeLinear; the workspace pins
/// a version that applies each channel's scale, on either axis.
#[test]
fn tract_dequantize_linear_is_per_channel() {
    let q: Vec<i8> = vec![10, -20, 30, 40, -50, 60];
    for (axis, scales) in [(0usize, vec![0.5f32, 0.25, 2.0]), (1, vec![0.125, 4.0])] {
        let mut g = GraphParts::default();
        g.initializers.push(tensor_i8("w_q", &[3, 2], &q));
        let s = g.init_f32("w_scale", &[scales.len()], &scales);
        g.initializers
            .push(tensor_i8("w_zp", &[scales.len()], &vec![0; scales.len()]));
        g.nodes
            .push(qdq::dequantize_node("w_q", &s, "w_zp", "w", Some(axis)));
        g.node("Add", &["x", "w"], "y", vec![]);
        let p = model_proto(g, ("x", &[3, 2]), ("y", &[3, 2]));
        let x = [0.0, 1.0, 0.0, 1.0, 0.0, 1.0];
        let got = run(&p, &[3, 2], &x);
        let want: Vec<f32> = (0..6)
            .map(|i| {
                let c = if axis == 0 { i / 2 } else { i % 2 };
                x[i] + q[i] as f32 * scales[c]
            })
            .collect();
        assert_eq!(got, want, "axis {axis}");
    }
}

// ---- A QDQ conv model against a Rust reference -------------------------------------

struct ConvSpec {
    w: Vec<f32>,
    b: Vec<f32>,
    out: usize,
    cin: usize,
    k: usize,
    stride: usize,
    pad: usize,
}

/// Direct convolution (f64 accumulation); returns the output and its height and width.
fn conv_ref(x: &[f32], h: usize, w: usize, s: &ConvSpec) -> (Vec<f32>, usize, usize) {
    let ho = (h + 2 * s.pad - s.k) / s.stride + 1;
    let wo = (w + 2 * s.pad - s.k) / s.stride + 1;
    let c = s.cin;
    let mut y = vec![0f32; s.out * ho * wo];
    for o in 0..s.out {
        for i in 0..ho {
            for j in 0..wo {
                let mut acc = s.b[o] as f64;
                for ci in 0..c {
                    for ki in 0..s.k {
                        for kj in 0..s.k {
                            let yy = (i * s.stride + ki) as isize - s.pad as isize;
                            let xx = (j * s.stride + kj) as isize - s.pad as isize;
                            if yy < 0 || xx < 0 || yy >= h as isize || xx >= w as isize {
                                continue;
                            }
                            let xv = x[(ci * h + yy as usize) * w + xx as usize];
                            let wv = s.w[((o * c + ci) * s.k + ki) * s.k + kj];
                            acc += xv as f64 * wv as f64;
                        }
                    }
                }
                y[(o * ho + i) * wo + j] = acc as f32;
            }
        }
    }
    (y, ho, wo)
}

/// Per-output-channel symmetric int8 fake quantisation, written from the definition.
fn fake_quant_weights(w: &[f32], out: usize) -> Vec<f32> {
    let per = w.len() / out;
    let mut r = vec![0f32; w.len()];
    for o in 0..out {
        let ch = &w[o * per..(o + 1) * per];
        let s = ch.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
        for (k, v) in ch.iter().enumerate() {
            r[o * per + k] = (v / s).round_ties_even().clamp(-127.0, 127.0) * s;
        }
    }
    r
}

/// uint8 asymmetric fake quantisation of one value on `[lo, hi]`, from the ONNX spec.
fn fake_quant_u8(x: f32, lo: f32, hi: f32) -> f32 {
    let s = (hi - lo) / 255.0;
    let zp = (-lo / s).round_ties_even().clamp(0.0, 255.0);
    let q = ((x / s).round_ties_even() + zp).clamp(0.0, 255.0);
    (q - zp) * s
}

fn conv_node(g: &mut GraphParts, name: &str, x: &str, s: &ConvSpec) -> String {
    let w = g.init_f32(&format!("{name}.weight"), &[s.out, s.cin, s.k, s.k], &s.w);
    let b = g.init_f32(&format!("{name}.bias"), &[s.out], &s.b);
    let p = s.pad as i64;
    g.node(
        "Conv",
        &[x, &w, &b],
        name,
        vec![
            ("kernel_shape", Attr::Ints(vec![s.k as i64; 2])),
            ("strides", Attr::Ints(vec![s.stride as i64; 2])),
            ("pads", Attr::Ints(vec![p; 4])),
        ],
    )
}

fn random_conv(r: &mut ChaCha8Rng, out: usize, cin: usize, stride: usize) -> ConvSpec {
    let n = out * cin * 9;
    ConvSpec {
        // Channels of very different magnitude: one per-tensor weight scale would flatten
        // the small ones.
        w: (0..n)
            .map(|i| (r.random::<f32>() - 0.5) * (1.0 + 10.0 * ((i / (cin * 9)) % 3) as f32))
            .collect(),
        b: (0..out).map(|_| r.random::<f32>() - 0.5).collect(),
        out,
        cin,
        k: 3,
        stride,
        pad: 1,
    }
}

/// x → Conv → Relu → Conv → y, input [1, 3, 10, 10].
fn two_conv_model(seed: u64) -> (OnnxModel, ConvSpec, ConvSpec) {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    let c1 = random_conv(&mut r, 6, 3, 1);
    let c2 = random_conv(&mut r, 4, 6, 2);
    let mut g = GraphParts::default();
    let a = conv_node(&mut g, "conv1", "x", &c1);
    let a = g.node("Relu", &[&a], "relu1", vec![]);
    conv_node(&mut g, "conv2", &a, &c2);
    let proto = model_proto(g, ("x", &[1, 3, 10, 10]), ("conv2", &[1, 4, 5, 5]));
    let model = OnnxModel {
        proto,
        input_name: "x".into(),
        input_shape: vec![1, 3, 10, 10],
    };
    (model, c1, c2)
}

/// int8 symmetric fake quantisation of one value on `[−a, a]`, `a = max(|lo|, |hi|)`.
fn fake_quant_i8(x: f32, lo: f32, hi: f32) -> f32 {
    let s = (-lo).max(hi) / 127.0;
    (x / s).round_ties_even().clamp(-127.0, 127.0) * s
}

/// `fake_quant(x, lo, hi)` of one activation type.
type FakeQuant = fn(f32, f32, f32) -> f32;

fn reference(
    x: &[f32],
    c1: &ConvSpec,
    c2: &ConvSpec,
    fq: FakeQuant,
    rx: [f32; 2],
    ra: [f32; 2],
) -> Vec<f32> {
    let xq: Vec<f32> = x.iter().map(|&v| fq(v, rx[0], rx[1])).collect();
    let c1q = ConvSpec {
        w: fake_quant_weights(&c1.w, c1.out),
        b: c1.b.clone(),
        ..*c1
    };
    let c2q = ConvSpec {
        w: fake_quant_weights(&c2.w, c2.out),
        b: c2.b.clone(),
        ..*c2
    };
    let (a, h, w) = conv_ref(&xq, 10, 10, &c1q);
    let aq: Vec<f32> = a.iter().map(|&v| fq(v.max(0.0), ra[0], ra[1])).collect();
    conv_ref(&aq, h, w, &c2q).0
}

fn inputs(n: usize, len: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| (0..len).map(|_| 2.5 * (r.random::<f32>() - 0.5)).collect())
        .collect()
}

/// Max |a − b| and how many elements differ by more than `tol`.
fn compare(a: &[f32], b: &[f32], tol: f32) -> (f32, usize) {
    assert_eq!(a.len(), b.len());
    let d: Vec<f32> = a.iter().zip(b).map(|(x, y)| (x - y).abs()).collect();
    (
        d.iter().copied().fold(0f32, f32::max),
        d.iter().filter(|&&v| v > tol).count(),
    )
}

fn fixed(t: &str, r: [f32; 2]) -> TensorRange {
    TensorRange {
        tensor: t.into(),
        min: r[0],
        max: r[1],
        range: r,
        method: "fixed".into(),
    }
}

#[test]
fn qdq_conv_matches_rust_reference() {
    let (model, c1, c2) = two_conv_model(5);
    let xs = inputs(3, 300, 9);
    // Power-of-two scales: tract multiplies by 1/scale where the spec divides by scale;
    // the two agree exactly when 1/scale is exact.
    let cases: [(ActivationType, FakeQuant, [f32; 2], [f32; 2]); 2] = [
        // u8: x scale 2⁻⁶ with zero point 128; post-ReLU scale 2⁻¹ with zero point 0.
        (
            ActivationType::U8,
            fake_quant_u8,
            [-2.0, 127.0 / 64.0],
            [0.0, 127.5],
        ),
        // i8: symmetric, scales 2⁻⁶ and 2⁻¹ (the ReLU output clips at 63.5).
        (
            ActivationType::I8,
            fake_quant_i8,
            [-127.0 / 64.0, 1.0],
            [0.0, 63.5],
        ),
    ];
    for (ty, fq, rx, ra) in cases {
        let mut proto = model.proto.clone();
        let g = proto.graph.as_mut().unwrap();
        let fp32_graph = g.clone();
        let w = quantize_weights(g);
        assert_eq!(w.len(), 2);
        assert_eq!(
            qdq::activation_tensors(&fp32_graph, true),
            vec!["x".to_string(), "relu1".to_string()]
        );
        let missing = qdq::insert_qdq(g, &[fixed("x", rx), fixed("relu1", ra)], ty, true);
        assert!(missing.is_empty());
        let mut flips = 0;
        for x in &xs {
            let want = reference(x, &c1, &c2, fq, rx, ra);
            let got = run(&proto, &[1, 3, 10, 10], x);
            let fp32 = run(&model.proto, &[1, 3, 10, 10], x);
            // f32 accumulation order: relative noise; a flip is a whole step times a weight.
            let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
            let tol = 1e-5 + 2e-6 * scale;
            let (d, n) = compare(&got, &want, tol);
            let (d_fp32, _) = compare(&fp32, &want, tol);
            eprintln!(
                "{ty}: int8 vs reference: max |Δ| {d:.2e} ({n} > {tol:.1e}); fp32 vs reference {d_fp32:.2e}"
            );
            // An f32 sum within rounding noise of a step boundary of the second quantiser
            // may round the other way (one step times a weight).
            flips += n;
            assert!(
                d_fp32 > 1e-2,
                "the reference is not sensitive to quantisation"
            );
        }
        assert!(
            flips <= 2,
            "{ty}: {flips} outputs differ from the reference"
        );
    }
}

/// The same model with calibrated (min/max) ranges, against the same reference; the other
/// methods give ranges inside min/max.
#[test]
fn calibrated_qdq_conv_matches_reference() {
    let (model, c1, c2) = two_conv_model(6);
    let xs = inputs(8, 300, 10);
    let opts = CalibrationOptions {
        method: CalibrationMethod::MinMax,
        ..Default::default()
    };
    let bytes = model.to_bytes();
    let names = ["x".to_string(), "relu1".to_string()];
    let ranges = calibrate(&bytes, &model.input_shape, &names, &xs, &opts).unwrap();
    let xmin = xs.iter().flatten().copied().fold(f32::INFINITY, f32::min);
    let xmax = xs
        .iter()
        .flatten()
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    assert_eq!(ranges[0].range, [xmin, xmax]);
    assert_eq!(ranges[1].range[0], 0.0);
    assert!(ranges[1].range[1] > 1.0);
    let mut proto = model.proto.clone();
    let g = proto.graph.as_mut().unwrap();
    quantize_weights(g);
    qdq::insert_qdq(g, &ranges, ActivationType::U8, true);
    for x in &xs[..3] {
        let want = reference(x, &c1, &c2, fake_quant_u8, ranges[0].range, ranges[1].range);
        let got = run(&proto, &[1, 3, 10, 10], x);
        let (d, n) = compare(&got, &want, 1e-3);
        eprintln!("calibrated int8 vs reference: max |Δ| {d:.2e} ({n} > 1e-3)");
        // Non-power-of-two scales: tract's x·(1/s) can land one step away from the spec's
        // x/s at a tie; a handful of outputs at most.
        assert!(n <= 6, "{n} outputs differ, max {d}");
    }
    for m in [
        CalibrationMethod::Percentile(99.9),
        CalibrationMethod::Entropy,
        CalibrationMethod::Mse,
    ] {
        let o = CalibrationOptions { method: m, ..opts };
        let rs = calibrate(&bytes, &model.input_shape, &names, &xs, &o).unwrap();
        for (r, mm) in rs.iter().zip(&ranges) {
            assert_eq!(r.method, m.to_string());
            assert!(r.range[0] <= 0.0 && r.range[1] >= 0.0 && r.range[1] > r.range[0]);
            assert!(
                r.range[0] >= mm.range[0] && r.range[1] <= mm.range[1],
                "{m}: {r:?}"
            );
        }
    }
}

// ---- EdgeNet through quantize() and the drift gate -----------------------------------

struct Fixture {
    onnx: OnnxModel,
    calib: Vec<Vec<f32>>,
    held_out: Vec<(Vec<f32>, Label)>,
}

/// EdgeNet ×0.5 at 80², random weights; labels of the held-out set are the fp32 model's
/// own ranking (upper half live), so its AUC is 1 and the int8 AUC measures agreement.
fn edgenet() -> Fixture {
    let crops = synthetic::face_crops(80, 40, 1);
    let (calib, held) = crops.split_at(16);
    let (_, _, onnx) = synthetic::model(BackboneKind::EdgeNet, 80, 0.5, 3, calib);
    let calib: Vec<Vec<f32>> = calib.iter().map(|(x, _)| x.clone()).collect();
    let mut m = LivenessModel::from_bytes(&onnx.to_bytes(), &onnx.input_shape, "fp32").unwrap();
    let scores: Vec<f32> = held.iter().map(|(x, _)| m.score(x).unwrap()).collect();
    let mut sorted = scores.clone();
    sorted.sort_by(f32::total_cmp);
    let median = sorted[sorted.len() / 2];
    assert!(
        sorted[sorted.len() - 1] - sorted[0] > 0.2,
        "p_live does not spread: {sorted:?}"
    );
    let held_out = held
        .iter()
        .zip(&scores)
        .map(|((x, _), &s)| {
            let l = if s >= median {
                Label::Live
            } else {
                Label::Spoof
            };
            (x.clone(), l)
        })
        .collect();
    Fixture {
        onnx,
        calib,
        held_out,
    }
}

fn count(p: &ModelProto, op: &str) -> usize {
    p.graph
        .as_ref()
        .unwrap()
        .node
        .iter()
        .filter(|n| n.op_type == op)
        .count()
}

/// The bound for this random-weight model (a trained one drifts less; the default bound is
/// tighter): measured max |Δp_live| 0.007 weight-only, 0.04 QDQ.
fn bound() -> DriftBound {
    DriftBound {
        max_abs: 0.1,
        max_auc_drop: 0.1,
        ..DriftBound::default()
    }
}

#[test]
fn edgenet_int8_encodings_pass_the_drift_gate() {
    let t = Instant::now();
    let f = edgenet();
    let fp32 = f.onnx.to_bytes();
    let shape = f.onnx.input_shape.clone();
    let weights = count(&f.onnx.proto, "Conv") + count(&f.onnx.proto, "Gemm");

    // Weight-only: one DequantizeLinear per weight, no calibration, a smaller file (not 4×:
    // depthwise kernels carry a scale and zero point per 9 weights).
    let wo = quantize(
        &f.onnx,
        &[],
        &QuantizeConfig {
            encoding: Encoding::Int8WeightOnly,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(count(&wo.proto, "DequantizeLinear"), weights);
    assert_eq!(count(&wo.proto, "QuantizeLinear"), 0);
    assert!(wo.calibration.is_none() && wo.ranges.is_empty());
    let ratio = fp32.len() as f64 / wo.onnx_bytes.len() as f64;
    assert!(ratio > 2.0, "file only {ratio:.2}× smaller");
    let r = drift(&fp32, &wo.onnx_bytes, &shape, &f.held_out, &bound()).unwrap();
    eprintln!("weight-only: {r}; file {ratio:.2}× smaller");
    assert!(r.max_abs < 0.02);

    // QDQ, percentile calibration on u8 activations.
    let q = quantize(&f.onnx, &f.calib, &QuantizeConfig::default()).unwrap();
    let c = q.calibration.as_ref().unwrap();
    assert_eq!((c.method.as_str(), c.samples), ("percentile-99.99", 16));
    assert_eq!(count(&q.proto, "QuantizeLinear"), q.ranges.len());
    assert_eq!(
        count(&q.proto, "DequantizeLinear"),
        weights + q.ranges.len()
    );
    for n in &q.proto.graph.as_ref().unwrap().node {
        if n.op_type == "Conv" || n.op_type == "Gemm" {
            assert!(n.input[0].ends_with("_dequantized"), "{}", n.name);
        }
    }
    let json = serde_json::to_string(&q.ranges).unwrap();
    let back: Vec<TensorRange> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, q.ranges);
    for r in &q.ranges {
        assert!(r.range[0] <= 0.0 && r.range[1] > 0.0 && r.range[1].is_finite());
        assert!(r.range[0] >= r.min.min(0.0) && r.range[1] <= r.max.max(0.0) + 1e-6);
    }
    let r = drift(&fp32, &q.onnx_bytes, &shape, &f.held_out, &bound()).unwrap();
    eprintln!("qdq: {r}");
    eprintln!("qdq worst layers: {:?}", &r.layers[..3]);
    let d = r.to_drift();
    assert_eq!((d.max_abs, d.auc_int8), (r.max_abs, r.auc_int8));
    assert_eq!(r.auc_fp32, 1.0);
    assert!(r.layers.len() >= weights - 1);
    assert!(r
        .layers
        .windows(2)
        .all(|w| w[0].rel_error >= w[1].rel_error));
    assert!(r.layers[0].rel_error > 0.0 && r.layers[0].rel_error < 0.5);

    // Deliberately broken ranges (1 % of the calibrated ones: everything clips): the gate
    // refuses and names the layers.
    let mut proto = f.onnx.proto.clone();
    let g = proto.graph.as_mut().unwrap();
    quantize_weights(g);
    let shrunk: Vec<TensorRange> = q
        .ranges
        .iter()
        .map(|r| TensorRange {
            range: [r.range[0] * 0.01, r.range[1] * 0.01],
            ..r.clone()
        })
        .collect();
    qdq::insert_qdq(g, &shrunk, ActivationType::U8, true);
    let bad = proto.encode_to_vec();
    match drift(&fp32, &bad, &shape, &f.held_out, &bound()) {
        Err(e @ DriftError::Exceeded { .. }) => {
            let msg = e.to_string();
            eprintln!("{msg}");
            assert!(msg.contains("max |Δp_live|"), "{msg}");
            let DriftError::Exceeded { report, .. } = e else {
                unreachable!()
            };
            assert_eq!(report.layers.len(), bound().worst_layers);
            assert!(msg.contains(&format!("\"{}\"", report.layers[0].tensor)));
            assert!(report.layers[0].rel_error > 0.5);
        }
        other => panic!("expected the gate to refuse, got {other:?}"),
    }
    eprintln!("edgenet test: {:.1} s", t.elapsed().as_secs_f64());
}

#[test]
fn what_tract_cannot_run_is_refused_by_name() {
    let (model, _, _) = two_conv_model(7);
    let mut proto = model.proto.clone();
    let g = proto.graph.as_mut().unwrap();
    quantize_weights(g);
    // Blocked quantisation (opset 21) is not implemented in tract.
    let dq = g
        .node
        .iter_mut()
        .find(|n| n.op_type == "DequantizeLinear")
        .unwrap();
    dq.attribute.push(tract_onnx::pb::AttributeProto {
        name: "block_size".into(),
        r#type: tract_onnx::pb::attribute_proto::AttributeType::Int as i32,
        i: 2,
        ..Default::default()
    });
    let name = dq.name.clone();
    let bytes = proto.encode_to_vec();
    let e = match verify_runs(&bytes, &proto, &model.input_shape, &[0.0; 300]) {
        Err(VerifyError::Refused(e)) => e,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert_eq!(e.op, "DequantizeLinear", "{e}");
    assert_eq!(e.node, name);
    assert!(e.to_string().contains("not written"), "{e}");
}

#[test]
fn bad_requests_are_typed_errors() {
    let (model, _, _) = two_conv_model(8);
    let cfg = |encoding| QuantizeConfig {
        encoding,
        ..Default::default()
    };
    assert!(matches!(
        quantize(&model, &[], &cfg(Encoding::Fp32)),
        Err(QuantizeError::Encoding(Encoding::Fp32))
    ));
    assert!(matches!(
        quantize(&model, &[vec![0.0; 299]], &cfg(Encoding::Int8Qdq)),
        Err(QuantizeError::SampleLen {
            index: 0,
            found: 299,
            expected: 300,
            ..
        })
    ));
    let e = quantize(&model, &[], &cfg(Encoding::Int8Qdq)).unwrap_err();
    assert!(e.to_string().contains("no samples"), "{e}");
    // The output is a feature map, not p_live: the tract check refuses to ship it.
    let e = quantize(&model, &[], &cfg(Encoding::Int8WeightOnly)).unwrap_err();
    assert!(
        matches!(e, QuantizeError::Verify(VerifyError::Output(_))),
        "{e}"
    );
    assert!(e.to_string().contains("not one p_live"), "{e}");
}
