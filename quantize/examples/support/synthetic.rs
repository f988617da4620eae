//! Test and benchmark models without libtorch: an IR backbone with deterministic random
//! weights (BatchNorm statistics included), its head scaled so `p_live` spreads over
//! (0, 1) on real-looking inputs, and SynthFAS face crops made by fas-core's
//! preprocessing (contract 1). Shared by `tests/int8.rs` and `examples/int8_bench.rs`.

#![allow(dead_code)]

use fas_core::dataset::Label;
use fas_core::ir::backbones::{
    self, live_prob, BackboneKind, BackboneSpec, LiveProbKind, NormKind,
};
use fas_core::ir::{Graph, GraphBuilder};
use fas_core::preprocess::{ColorSpace, CropSpec, Normalize, PreprocessSpec, RgbImage};
use fas_core::synthfas::{Generator, SynthConfig};
use fas_quantize::calibrate::input::CalibrationBatch;
use fas_quantize::calibrate::Probe;
use fas_quantize::onnx::{export, ExportOptions, OnnxModel, Tensor, Weights};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The name of the linear head node (its output is the live logit).
pub const HEAD: &str = "head";

/// `kind` at `size`² RGB, BatchNorm, `width`, a linear head and a sigmoid.
pub fn backbone_graph(kind: BackboneKind, size: usize, width: f32) -> Graph {
    let spec = BackboneSpec {
        kind,
        in_channels: 3,
        input_size: size,
        norm: NormKind::Batch,
        width,
    };
    let mut b = GraphBuilder::new(&format!("{kind}-{size}"));
    let x = b.input("input", &[1, 3, size, size]);
    let out = backbones::build(&mut b, &x, &spec, "").expect("valid backbone spec");
    let logit = b.linear(HEAD, &out.features, 1, true);
    let p = live_prob(&mut b, &logit, LiveProbKind::Sigmoid).expect("sigmoid head");
    b.output(&p);
    b.finish().expect("backbone graph")
}

fn normal(r: &mut ChaCha8Rng) -> f32 {
    let u: f64 = r.random::<f64>().max(1e-12);
    let v: f64 = r.random();
    ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
}

/// He-normal conv / linear weights, BN γ ∈ [0.5, 1.5), β and running means ~ N(0, 0.1²),
/// running variances ∈ [0.5, 1.5), PReLU slopes ∈ [0.1, 0.3). The last BN of each residual
/// branch (EdgeNet `stage*.project.bn`, ResNet `layer*.bn2`) gets γ × 0.2, as trained
/// residual networks (and zero-γ initialisation, Goyal et al. 2017) have it: with full-size
/// random branches the network is chaotic and amplifies any perturbation layer after layer.
pub fn random_weights(graph: &Graph, seed: u64) -> Weights {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    let mut w = Weights::default();
    for (name, shape) in graph.weights() {
        let n: usize = shape.iter().product();
        let prelu = graph.nodes.iter().any(|node| {
            name == format!("{}.weight", node.name)
                && matches!(node.op, fas_core::ir::Op::PRelu { .. })
        });
        let data: Vec<f32> = if shape.len() >= 2 {
            let fan_in: usize = shape[1..].iter().product();
            let s = (2.0 / fan_in as f32).sqrt();
            (0..n).map(|_| normal(&mut r) * s).collect()
        } else if name.ends_with("running_var") {
            (0..n).map(|_| 0.5 + r.random::<f32>()).collect()
        } else if prelu {
            (0..n).map(|_| 0.1 + 0.2 * r.random::<f32>()).collect()
        } else if name.ends_with(".weight") {
            let residual = (name.starts_with("stage") && name.ends_with("project.bn.weight"))
                || (name.starts_with("layer") && name.ends_with("bn2.weight"));
            let k = if residual { 0.2 } else { 1.0 };
            (0..n).map(|_| k * (0.5 + r.random::<f32>())).collect()
        } else {
            (0..n).map(|_| 0.1 * normal(&mut r)).collect()
        };
        w.tensors.insert(name, Tensor::new(shape, data));
    }
    w
}

/// Sets the head as a trained linear probe would sit on these features: along the
/// difference of the live and spoof feature means over `inputs`, centred, scaled so the
/// live logit has standard deviation `spread` (a random head mostly reads the features'
/// common component and saturates or ignores the input).
pub fn fit_head(graph: &Graph, weights: &mut Weights, inputs: &[(Vec<f32>, Label)], spread: f32) {
    let onnx = export(graph, weights, &ExportOptions::default()).expect("export");
    let features = graph.node(HEAD).expect("head node").inputs[0].clone();
    let mut probe = Probe::new(&onnx.to_bytes(), &onnx.input_shape, &[features], "fit")
        .expect("probe the features");
    let fs: Vec<(Vec<f32>, Label)> = inputs
        .iter()
        .map(|(x, l)| (probe.run(x).expect("run").remove(0), *l))
        .collect();
    let dim = fs[0].0.len();
    let class_mean = |label: Label| {
        let mut m = vec![0f64; dim];
        let members: Vec<&Vec<f32>> = fs
            .iter()
            .filter(|(_, l)| *l == label)
            .map(|(f, _)| f)
            .collect();
        for f in &members {
            for (a, &b) in m.iter_mut().zip(f.iter()) {
                *a += b as f64 / members.len().max(1) as f64;
            }
        }
        m
    };
    let (live, spoof) = (class_mean(Label::Live), class_mean(Label::Spoof));
    let w: Vec<f64> = live.iter().zip(&spoof).map(|(a, b)| a - b).collect();
    let logits: Vec<f64> = fs
        .iter()
        .map(|(f, _)| f.iter().zip(&w).map(|(&a, b)| a as f64 * b).sum())
        .collect();
    let n = logits.len() as f64;
    let mean = logits.iter().sum::<f64>() / n;
    let sd = (logits.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / n).sqrt();
    let k = spread as f64 / sd.max(1e-12);
    weights
        .tensors
        .get_mut(&format!("{HEAD}.weight"))
        .expect("head weight")
        .data = w.iter().map(|v| (v * k) as f32).collect();
    weights
        .tensors
        .get_mut(&format!("{HEAD}.bias"))
        .expect("head bias")
        .data = vec![(-mean * k) as f32];
}

/// The preprocessing used for the synthetic models: box crop ×1.6, `size`², RGB, ImageNet
/// normalisation.
pub fn spec(size: usize) -> PreprocessSpec {
    PreprocessSpec {
        crop: CropSpec::Box { scale: 1.6 },
        width: size as u32,
        height: size as u32,
        color: vec![ColorSpace::Rgb],
        normalize: Normalize::imagenet(1),
    }
}

/// `n` SynthFAS face crops (all presentations, two domains) with their labels.
pub fn face_crops(size: usize, n: usize, seed: u64) -> Vec<(Vec<f32>, Label)> {
    let cfg = SynthConfig {
        seed,
        domains: fas_core::synthfas::DomainSpec::defaults()[..2].to_vec(),
        subjects_per_domain: 4,
        frames_per_video: 4,
        image_size: 128,
        write_depth: false,
        ..SynthConfig::default()
    };
    let g = Generator::new(cfg).expect("synthfas config");
    let samples = g.samples();
    let step = (samples.len() / n.max(1)).max(1);
    let mut batch = CalibrationBatch::new(spec(size)).expect("spec");
    let mut labels = vec![];
    for s in samples.iter().step_by(step).take(n) {
        let r = g.render(s);
        let (w, h) = r.rgb.dimensions();
        let frame = RgbImage::new(w, h, r.rgb.into_raw()).expect("rgb frame");
        batch.push(&frame, &r.face.into()).expect("crop");
        labels.push(r.meta.label);
    }
    batch
        .as_slice()
        .chunks(3 * size * size)
        .map(<[f32]>::to_vec)
        .zip(labels)
        .collect()
}

/// An exported model of `kind`: random weights, the head fitted on `inputs`.
pub fn model(
    kind: BackboneKind,
    size: usize,
    width: f32,
    seed: u64,
    inputs: &[(Vec<f32>, Label)],
) -> (Graph, Weights, OnnxModel) {
    let g = backbone_graph(kind, size, width);
    let mut w = random_weights(&g, seed);
    fit_head(&g, &mut w, inputs, 2.0);
    let onnx = export(&g, &w, &ExportOptions::default()).expect("export");
    (g, w, onnx)
}
