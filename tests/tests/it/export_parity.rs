//! Contract 2: the tch forward of an IR graph (fas-train) and the ONNX that fas-quantize
//! exports from the same graph and weights, run in tract (fas-infer), agree to
//! max |Δ| ≤ 1e-4 — for every backbone, norm variant, input variant and head, for a
//! graph that uses every IR op, and for each paper recipe's own deployable graph.

use std::collections::BTreeMap;

use fas_core::ir::backbones::{
    self, live_prob, BackboneKind, BackboneSpec, LiveProbKind, NormKind,
};
use fas_core::ir::{Graph, GraphBuilder, Op};
use fas_infer::liveness::LivenessModel;
use fas_quantize::onnx::{export, ExportOptions, Tensor as WTensor, Weights};
use fas_train::nn::IrModule;
use tch::{Device, Kind, Tensor};

const TOL: f32 = 1e-4;

/// An IrModule with its BN running statistics moved away from (0, 1), so that folding is
/// actually exercised.
fn module(graph: Graph, seed: u64) -> IrModule {
    tch::manual_seed(seed as i64);
    let mut m = IrModule::new(graph, Device::Cpu, seed).unwrap();
    let mut stats: BTreeMap<String, Tensor> = m.snapshot();
    for (name, t) in m.buffers() {
        let v = if name.ends_with("running_mean") {
            Tensor::randn(t.size(), (Kind::Float, Device::Cpu)) * 0.3
        } else {
            Tensor::rand(t.size(), (Kind::Float, Device::Cpu)) * 1.5 + 0.25
        };
        stats.insert(name.clone(), v);
    }
    // Non-trivial affine parameters too (init leaves γ = 1, β = 0).
    for (name, t) in m.parameters() {
        if name.ends_with(".weight") && t.dim() == 1 {
            stats.insert(
                name.clone(),
                Tensor::rand(t.size(), (Kind::Float, Device::Cpu)) + 0.5,
            );
        } else if name.ends_with(".bias") && t.dim() == 1 {
            stats.insert(
                name.clone(),
                Tensor::randn(t.size(), (Kind::Float, Device::Cpu)) * 0.1,
            );
        }
    }
    m.load_tensors(&stats, false).unwrap();
    m
}

fn weights_of(m: &IrModule) -> Weights {
    let mut w = Weights::default();
    for (name, t) in m.named_tensors() {
        let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
        let data = Vec::<f32>::try_from(t.flatten(0, -1)).unwrap();
        w.tensors.insert(name, WTensor::new(shape, data));
    }
    w
}

/// Max |tch − tract| over a few random inputs; also checks the output is in [0, 1].
fn parity(graph: Graph, seed: u64) -> f32 {
    let m = module(graph.clone(), seed);
    // Round-trip the weights through safetensors bytes, as the exporter reads them.
    let w = weights_of(&m);
    let w = Weights::from_safetensors(&w.to_safetensors(), std::path::Path::new("mem")).unwrap();
    let onnx = export(&graph, &w, &ExportOptions::default())
        .unwrap_or_else(|e| panic!("{}: {e}", graph.name));
    let shape = onnx.input_shape.clone();
    let mut model = LivenessModel::from_bytes(&onnx.to_bytes(), &shape, &graph.name)
        .unwrap_or_else(|e| panic!("{}: {e}", graph.name));
    let mut worst = 0f32;
    let mut seen = Vec::new();
    for k in 0..3 {
        let x = Tensor::randn(
            shape.iter().map(|&d| d as i64).collect::<Vec<_>>(),
            (Kind::Float, Device::Cpu),
        ) * (1.0 + k as f64);
        let want =
            Vec::<f32>::try_from(m.forward(&[&x], false).unwrap()[0].flatten(0, -1)).unwrap();
        let input = Vec::<f32>::try_from(x.flatten(0, -1)).unwrap();
        let got = model.run_raw(&input).unwrap();
        assert_eq!(got.len(), 1, "{}", graph.name);
        assert!((0.0..=1.0).contains(&got[0]), "{}: {got:?}", graph.name);
        worst = worst.max((got[0] - want[0]).abs());
        seen.push(want[0]);
    }
    // The comparison means something only if the output depends on the input.
    let spread = seen.iter().cloned().fold(f32::MIN, f32::max)
        - seen.iter().cloned().fold(f32::MAX, f32::min);
    assert!(
        spread > 1e-6,
        "{}: output does not vary with the input: {seen:?}",
        graph.name
    );
    worst
}

fn backbone_graph(
    kind: BackboneKind,
    norm: NormKind,
    c: usize,
    size: usize,
    head: LiveProbKind,
) -> Graph {
    let spec = BackboneSpec {
        kind,
        in_channels: c,
        input_size: size,
        norm,
        width: 0.5,
    };
    let mut b = GraphBuilder::new(&format!("{kind:?}-{norm:?}-{c}ch-{head:?}"));
    let x = b.input("input", &[1, c, size, size]);
    let out = backbones::build(&mut b, &x, &spec, "").unwrap();
    let logits = match head {
        LiveProbKind::Sigmoid => b.linear("head", &out.features, 1, true),
        LiveProbKind::Softmax => {
            let n = b.l2_normalize("head_norm", &out.features);
            b.linear("head", &n, 2, false)
        }
        LiveProbKind::DepthMean => out.depth.clone().expect("depth head"),
    };
    let p = live_prob(&mut b, &logits, head).unwrap();
    b.output(&p);
    b.finish().unwrap()
}

#[test]
fn every_backbone_and_head_exports_within_tolerance() {
    let cases = [
        (
            BackboneKind::EdgeNet,
            NormKind::Batch,
            3,
            80,
            LiveProbKind::Softmax,
        ),
        (
            BackboneKind::EdgeNet,
            NormKind::AdaptiveBnIn { reduction: 4 },
            6,
            80,
            LiveProbKind::Sigmoid,
        ),
        (
            BackboneKind::Resnet18,
            NormKind::Batch,
            3,
            64,
            LiveProbKind::Sigmoid,
        ),
        (
            BackboneKind::Resnet18,
            NormKind::AdaptiveBnIn { reduction: 4 },
            6,
            64,
            LiveProbKind::Softmax,
        ),
        (
            BackboneKind::DepthNet,
            NormKind::Batch,
            6,
            64,
            LiveProbKind::DepthMean,
        ),
        (
            BackboneKind::DepthNet,
            NormKind::AdaptiveBnIn { reduction: 4 },
            3,
            64,
            LiveProbKind::Sigmoid,
        ),
    ];
    for (i, (kind, norm, c, size, head)) in cases.into_iter().enumerate() {
        let g = backbone_graph(kind, norm, c, size, head);
        let name = g.name.clone();
        let d = parity(g, 10 + i as u64);
        eprintln!("{name}: max |Δ| = {d:.2e}");
        assert!(d <= TOL, "{name}: max |Δ| = {d:e} > {TOL:e}");
    }
}

/// Every IR op, including the composite ones (ANRL AFNM, DLIF style attention, SE), both
/// upsampling modes, pooling with padding and a standalone BatchNorm.
#[test]
fn every_ir_op_exports_within_tolerance() {
    let graph = fas_core::ir::fixtures::all_ops();
    let d = parity(graph, 3);
    eprintln!("all-ops: max |Δ| = {d:.2e}");
    assert!(d <= TOL, "all-ops: max |Δ| = {d:e}");
}

#[test]
fn batchnorm_after_conv_is_folded_away() {
    let g = backbone_graph(
        BackboneKind::Resnet18,
        NormKind::Batch,
        3,
        64,
        LiveProbKind::Sigmoid,
    );
    let m = module(g.clone(), 1);
    let onnx = export(&g, &weights_of(&m), &ExportOptions::default()).unwrap();
    let ops = onnx.op_histogram();
    assert!(!ops.contains_key("BatchNormalization"), "{ops:?}");
    // ResNet-18 has 20 convs, each with a BN right after: no Mul/Add pairs remain for them.
    assert_eq!(ops["Conv"], 20, "{ops:?}");
    assert!(ops.get("Mul").copied().unwrap_or(0) == 0, "{ops:?}");
}

/// How many nodes of `graph` run an op `is` accepts.
fn count_ops(graph: &Graph, is: impl Fn(&Op) -> bool) -> usize {
    graph.nodes.iter().filter(|n| is(&n.op)).count()
}

/// The deployable graph of a freshly built recipe.
fn deployable_graph<R: fas_train::recipe::Recipe, E: std::fmt::Debug>(
    recipe: Result<R, E>,
) -> Graph {
    recipe.unwrap().deployable().unwrap().graph
}

/// A paper recipe's deployable graph, with random weights, holds to contract 2.
fn assert_recipe_parity(name: &str, graph: Graph, seed: u64) {
    let d = parity(graph, seed);
    eprintln!("{name}: max |Δ| = {d:.2e}");
    assert!(d <= TOL, "{name}: max |Δ| = {d:e} > {TOL:e}");
}

/// DLIF's deployable graph (ResNet-18 + channel-wise style attention + cosine AM-softmax
/// head, `fas_train::recipe::dlif`) exports like the others.
#[test]
fn dlif_deployable_exports_within_tolerance() {
    use fas_train::recipe::dlif::{Dlif, DlifConfig};
    let cfg = DlifConfig {
        input_size: 64,
        width: 0.125,
        no_v: true,
        ..DlifConfig::default()
    };
    let graph = deployable_graph(Dlif::new(cfg, &[], Device::Cpu, 1));
    assert!(count_ops(&graph, |op| matches!(op, Op::StyleAttention { .. })) > 0);
    assert_recipe_parity("dlif", graph, 4);
}

/// ANRL's deployable graph (DepthNet with AFNM, the adaptive BN/IN mix, in every
/// normalisation slot + classifier, `fas_train::recipe::anrl`) exports like the others:
/// instance norm and the per-sample α branch in ONNX.
#[test]
fn anrl_deployable_exports_within_tolerance() {
    use fas_train::recipe::anrl::{Anrl, AnrlConfig};
    let cfg = AnrlConfig {
        input_size: 64,
        width: 0.25,
        ..AnrlConfig::default()
    };
    let graph = deployable_graph(Anrl::new(cfg, 3, Device::Cpu, 1));
    let afnm = count_ops(&graph, |op| matches!(op, Op::AdaptiveBnIn { .. }));
    assert!(afnm >= 5, "{afnm} AFNM nodes");
    assert_recipe_parity("anrl", graph, 5);
}

/// D²AM's deployable graph (DepthNet with a DRLM squeeze-excite after each stage, the
/// meta-learned adaptation layer and classifier, `fas_train::recipe::d2am`) exports like
/// the others.
#[test]
fn d2am_deployable_exports_within_tolerance() {
    use fas_train::recipe::d2am::{D2am, D2amConfig};
    let cfg = D2amConfig {
        input_size: 64,
        width: 0.25,
        ..D2amConfig::default()
    };
    let graph = deployable_graph(D2am::new(cfg, Device::Cpu, 1));
    let drlm = count_ops(&graph, |op| matches!(op, Op::SqueezeExcite { .. }));
    assert_eq!(drlm, 3, "one DRLM after each of the three stages");
    assert_recipe_parity("d2am", graph, 6);
}

/// The dual-stage recipe's deployable graph (E_S + D_map → mean map → `p_live = 1 − mean`,
/// `fas_train::recipe::dualstage`) exports with the recipe's own trained weights, and the
/// ONNX model in tract scores every image like `Recipe::score`.
#[test]
fn dualstage_deployable_exports_and_scores_like_the_recipe() {
    use fas_train::recipe::dualstage::{DualStage, DualStageConfig};
    use fas_train::recipe::{Recipe, StepInfo, TrainBatch};
    let cfg = DualStageConfig {
        input_size: 32,
        channels: 4,
        stage1_steps: 1,
        ..DualStageConfig::default()
    };
    let mut r = DualStage::new(cfg, Device::Cpu, 2).unwrap();
    tch::manual_seed(5);
    let labels = Tensor::from_slice(&[1i64, 1, 0, 0]);
    let spoof = labels.eq(0).to_kind(Kind::Float).view([-1, 1, 1, 1]);
    let images = Tensor::randn([4, 3, 32, 32], (Kind::Float, Device::Cpu)) + spoof;
    let batch = TrainBatch {
        images: images.shallow_clone(),
        labels,
        domains: Tensor::zeros([4], (Kind::Int64, Device::Cpu)),
        identities: Tensor::zeros([4], (Kind::Int64, Device::Cpu)),
        depth: None,
        indices: Vec::new(),
    };
    // One stage-1 and two stage-2 steps: trained weights and moved BN statistics.
    for step in 0..3 {
        r.step(
            &batch,
            &StepInfo {
                step,
                epoch: 0,
                lr: 1e-3,
            },
        )
        .unwrap();
    }
    let want = Vec::<f32>::try_from(r.score(&images).unwrap()).unwrap();
    let d = r.deployable().unwrap();
    let mut w = Weights::default();
    for (name, t) in &d.weights {
        let shape: Vec<usize> = t.size().iter().map(|&s| s as usize).collect();
        let data = Vec::<f32>::try_from(t.flatten(0, -1)).unwrap();
        w.tensors.insert(name.clone(), WTensor::new(shape, data));
    }
    let w = Weights::from_safetensors(&w.to_safetensors(), std::path::Path::new("mem")).unwrap();
    let onnx = export(&d.graph, &w, &ExportOptions::default()).unwrap();
    let shape = onnx.input_shape.clone();
    let mut model = LivenessModel::from_bytes(&onnx.to_bytes(), &shape, &d.graph.name).unwrap();
    let mut worst = 0f32;
    for (i, &p) in want.iter().enumerate() {
        let x = Vec::<f32>::try_from(images.get(i as i64).flatten(0, -1)).unwrap();
        let got = model.run_raw(&x).unwrap();
        assert_eq!(got.len(), 1);
        assert!((0.0..=1.0).contains(&got[0]), "{got:?}");
        worst = worst.max((got[0] - p).abs());
    }
    let spread = want.iter().cloned().fold(f32::MIN, f32::max)
        - want.iter().cloned().fold(f32::MAX, f32::min);
    assert!(spread > 1e-6, "scores do not vary: {want:?}");
    eprintln!("dualstage: max |Δ| = {worst:.2e}");
    assert!(worst <= TOL, "dualstage: max |Δ| = {worst:e}");
}
