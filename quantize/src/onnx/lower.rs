//! IR graph + weights → ONNX (opset 17, static shapes, batch 1).
//!
//! * BatchNorm directly after a convolution (whose output nothing else reads) is folded into
//!   the convolution's weights and bias, in f64; other BatchNorms become one per-channel
//!   `Mul` + `Add` with folded constants.
//! * Composite IR ops (ANRL's adaptive BN/IN, DLIF's style attention, SE) are written as
//!   standard ONNX ops with every constant precomputed, so tract and onnxruntime load them.
//! * The graph output is `p_live [1, 1]` (contract 3); the exporter checks that the IR
//!   head guarantees a value in `[0, 1]` (sigmoid, softmax + select, or the mean of a
//!   sigmoid map) and refuses anything else.

use std::collections::{BTreeMap, HashMap};

use fas_core::ir::{Graph, IrError, Node, Op, UpsampleMode};
use tract_onnx::pb::{ModelProto, OperatorSetIdProto, StringStringEntryProto};

use super::proto::{value_info, Attr, GraphParts, IR_VERSION, OPSET};
use super::weights::{Weights, WeightsError};

/// The name of the exported output (contract 3).
pub const OUTPUT_NAME: &str = "p_live";

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Graph(#[from] IrError),
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error("model.json: {problem}")]
    Unsupported { problem: String },
}

#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Fold BatchNorm into the preceding convolution (default on; off only to debug).
    pub fold_batchnorm: bool,
    /// Extra `metadata_props` (e.g. the run's model/weights hashes, recipe, preprocessing).
    pub metadata: Vec<(String, String)>,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            fold_batchnorm: true,
            metadata: vec![],
        }
    }
}

/// An exported model.
#[derive(Debug, Clone)]
pub struct OnnxModel {
    pub proto: ModelProto,
    /// The one input's name and `[1, C, H, W]` shape.
    pub input_name: String,
    pub input_shape: Vec<usize>,
}

impl OnnxModel {
    pub fn to_bytes(&self) -> Vec<u8> {
        use prost::Message;
        self.proto.encode_to_vec()
    }

    /// Counts of each ONNX op type (for reports and tests).
    pub fn op_histogram(&self) -> BTreeMap<String, usize> {
        let mut h = BTreeMap::new();
        for n in &self.proto.graph.as_ref().expect("graph").node {
            *h.entry(n.op_type.clone()).or_insert(0) += 1;
        }
        h
    }
}

fn unsupported(problem: String) -> ExportError {
    ExportError::Unsupported { problem }
}

/// Does the value `v` hold a probability in `[0, 1]`?
fn is_probability(graph: &Graph, v: &str) -> bool {
    let Some(n) = graph.nodes.iter().find(|n| n.outputs[0] == v) else {
        return false;
    };
    match &n.op {
        Op::Sigmoid => true,
        Op::Select { .. } => graph
            .nodes
            .iter()
            .find(|m| m.outputs[0] == n.inputs[0])
            .is_some_and(|m| matches!(m.op, Op::Softmax { .. })),
        Op::MeanOfMap | Op::Dropout { .. } | Op::Flatten => is_probability(graph, &n.inputs[0]),
        _ => false,
    }
}

/// Lowers `graph` with `weights` to ONNX.
pub fn export(
    graph: &Graph,
    weights: &Weights,
    opts: &ExportOptions,
) -> Result<OnnxModel, ExportError> {
    graph.validate()?;
    weights.check(graph)?;
    if graph.inputs.len() != 1 {
        return Err(unsupported(format!(
            "the deployed model must have exactly one image input, found {} — export the deployable graph (fas-train writes it as model.json)",
            graph.inputs.len()
        )));
    }
    if graph.outputs.len() != 1 {
        return Err(unsupported(format!(
            "the deployed model must have exactly one output (p_live), found {:?}",
            graph.outputs
        )));
    }
    let out = &graph.outputs[0];
    let mut shapes = graph.infer_shapes()?;
    let input = &graph.inputs[0];
    let batch = input.shape[0];
    if input.shape.len() != 4 {
        return Err(unsupported(format!(
            "input \"{}\" has shape {:?}; expected [N, C, H, W]",
            input.name, input.shape
        )));
    }
    let out_shape = shapes[out].clone();
    if out_shape != [batch, 1] {
        return Err(unsupported(format!(
            "output \"{out}\" has shape {out_shape:?}; contract 3 wants one p_live per face ([N, 1]) — end the head with live_prob()"
        )));
    }
    if !is_probability(graph, out) {
        return Err(unsupported(format!(
            "output \"{out}\" is not guaranteed to lie in [0, 1] (it must come from a sigmoid, a softmax + select, or the mean of a sigmoid map) — end the head with live_prob()"
        )));
    }
    // Export at batch 1: rewrite the leading dimension of every shape.
    for s in shapes.values_mut() {
        if !s.is_empty() {
            s[0] = 1;
        }
    }
    let mut consumers: HashMap<&str, usize> = HashMap::new();
    for n in &graph.nodes {
        for i in &n.inputs {
            *consumers.entry(i.as_str()).or_default() += 1;
        }
    }
    let producer: HashMap<&str, &Node> = graph
        .nodes
        .iter()
        .map(|n| (n.outputs[0].as_str(), n))
        .collect();

    let mut g = GraphParts::default();
    // IR value name → ONNX value name (differs where nodes vanish: Dropout, folded BN).
    let mut alias: HashMap<String, String> = HashMap::new();
    let name_of = |alias: &HashMap<String, String>, v: &str| -> String {
        alias.get(v).cloned().unwrap_or_else(|| v.to_string())
    };
    let mut folded_convs: HashMap<String, (Vec<f32>, Vec<f32>)> = HashMap::new();
    if opts.fold_batchnorm {
        for n in &graph.nodes {
            if let Op::BatchNorm2d { eps, .. } = n.op {
                let src = n.inputs[0].as_str();
                let Some(conv) = producer.get(src) else {
                    continue;
                };
                if !matches!(conv.op, Op::Conv2d { .. })
                    || consumers.get(src) != Some(&1)
                    || graph.outputs.iter().any(|o| o == src)
                {
                    continue;
                }
                folded_convs.insert(conv.name.clone(), fold_conv_bn(weights, conv, n, eps));
            }
        }
    }
    let folded_bn: HashMap<&str, &str> = graph
        .nodes
        .iter()
        .filter(|n| matches!(n.op, Op::BatchNorm2d { .. }))
        .filter_map(|n| {
            let conv = producer.get(n.inputs[0].as_str())?;
            folded_convs
                .contains_key(&conv.name)
                .then_some((n.name.as_str(), conv.name.as_str()))
        })
        .collect();

    for n in &graph.nodes {
        let xs: Vec<String> = n.inputs.iter().map(|i| name_of(&alias, i)).collect();
        let x = xs[0].as_str();
        let y = n.outputs[0].as_str();
        let w = |suffix: &str| weights.get(&format!("{}.{suffix}", n.name));
        let in_shape = shapes[&n.inputs[0]].clone();
        match &n.op {
            Op::Conv2d {
                stride,
                padding,
                dilation,
                groups,
                bias,
                out_channels,
                ..
            } => {
                let wt = w("weight");
                let (wdata, bdata) = match folded_convs.get(&n.name) {
                    Some((fw, fb)) => (fw.clone(), Some(fb.clone())),
                    None => (wt.data.clone(), bias.then(|| w("bias").data.clone())),
                };
                let wname = g.init_f32(&format!("{}.weight", n.name), &wt.shape, &wdata);
                let mut inputs = vec![x.to_string(), wname];
                if let Some(b) = bdata {
                    inputs.push(g.init_f32(&format!("{}.bias", n.name), &[*out_channels], &b));
                }
                let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
                g.node(
                    "Conv",
                    &inputs,
                    y,
                    vec![
                        (
                            "kernel_shape",
                            Attr::Ints(wt.shape[2..].iter().map(|&k| k as i64).collect()),
                        ),
                        ("strides", Attr::Ints(ints(stride))),
                        (
                            "pads",
                            Attr::Ints(vec![
                                padding[0] as i64,
                                padding[1] as i64,
                                padding[0] as i64,
                                padding[1] as i64,
                            ]),
                        ),
                        ("dilations", Attr::Ints(ints(dilation))),
                        ("group", Attr::Int(*groups as i64)),
                    ],
                );
            }
            Op::BatchNorm2d { channels, eps, .. } => {
                if let Some(conv) = folded_bn.get(n.name.as_str()) {
                    // The conv already computes BN(conv(x)); its output is this node's.
                    let conv_out = &producer_by_name(graph, conv).outputs[0];
                    rename_last_output(&mut g, conv_out, y);
                    continue;
                }
                let (scale, shift) = bn_affine(
                    &w("weight").data,
                    &w("bias").data,
                    &w("running_mean").data,
                    &w("running_var").data,
                    *eps,
                );
                let c = *channels;
                let s = g.init_f32(&format!("{}.scale", n.name), &[c, 1, 1], &scale);
                let t = g.init_f32(&format!("{}.shift", n.name), &[c, 1, 1], &shift);
                let m = g.node("Mul", &[x, &s], &format!("{y}/mul"), vec![]);
                g.node("Add", &[&m, &t], y, vec![]);
            }
            Op::InstanceNorm2d {
                channels,
                eps,
                affine,
            } => {
                let c = *channels;
                let (sc, bi) = if *affine {
                    (w("weight").data.clone(), w("bias").data.clone())
                } else {
                    (vec![1.0; c], vec![0.0; c])
                };
                let s = g.init_f32(&format!("{}.weight", n.name), &[c], &sc);
                let b = g.init_f32(&format!("{}.bias", n.name), &[c], &bi);
                g.node(
                    "InstanceNormalization",
                    &[x, &s, &b],
                    y,
                    vec![("epsilon", Attr::Float(*eps as f32))],
                );
            }
            Op::AdaptiveBnIn { channels, eps, .. } => {
                let c = *channels;
                let p = &n.name;
                // ρ = σ(fc2(relu(fc1(gap(x))))) as [1, C, 1, 1].
                let rho = gate(
                    &mut g,
                    weights,
                    x,
                    &format!("{p}.gate."),
                    &format!("{y}/rho"),
                    None,
                );
                // BN with running stats, no affine: x·s + t.
                let (s, t) = bn_affine(
                    &vec![1.0; c],
                    &vec![0.0; c],
                    &w("running_mean").data,
                    &w("running_var").data,
                    *eps,
                );
                let s = g.init_f32(&format!("{p}.bn_scale"), &[c, 1, 1], &s);
                let t = g.init_f32(&format!("{p}.bn_shift"), &[c, 1, 1], &t);
                let bn = g.node("Mul", &[x, &s], &format!("{y}/bn_mul"), vec![]);
                let bn = g.node("Add", &[&bn, &t], &format!("{y}/bn"), vec![]);
                let ones = g.init_f32(&format!("{p}.in_scale"), &[c], &vec![1.0; c]);
                let zeros = g.init_f32(&format!("{p}.in_bias"), &[c], &vec![0.0; c]);
                let inorm = g.node(
                    "InstanceNormalization",
                    &[x, &ones, &zeros],
                    &format!("{y}/in"),
                    vec![("epsilon", Attr::Float(*eps as f32))],
                );
                // ρ·BN + (1−ρ)·IN = IN + ρ·(BN − IN)
                let d = g.node("Sub", &[&bn, &inorm], &format!("{y}/diff"), vec![]);
                let rd = g.node("Mul", &[&rho, &d], &format!("{y}/rho_diff"), vec![]);
                let mixed = g.node("Add", &[&inorm, &rd], &format!("{y}/mixed"), vec![]);
                let wa = g.init_f32(&format!("{p}.weight"), &[c, 1, 1], &w("weight").data);
                let ba = g.init_f32(&format!("{p}.bias"), &[c, 1, 1], &w("bias").data);
                let m = g.node("Mul", &[&mixed, &wa], &format!("{y}/affine"), vec![]);
                g.node("Add", &[&m, &ba], y, vec![]);
            }
            Op::StyleAttention { .. } => {
                let p = &n.name;
                let axes = Attr::Ints(vec![2, 3]);
                let mu = g.node(
                    "ReduceMean",
                    &[x],
                    &format!("{y}/mean"),
                    vec![("axes", axes), ("keepdims", Attr::Int(1))],
                );
                let d = g.node("Sub", &[x, &mu], &format!("{y}/centred"), vec![]);
                let d2 = g.node("Mul", &[&d, &d], &format!("{y}/sq"), vec![]);
                let var = g.node(
                    "ReduceMean",
                    &[&d2],
                    &format!("{y}/var"),
                    vec![("axes", Attr::Ints(vec![2, 3])), ("keepdims", Attr::Int(1))],
                );
                let style = g.node(
                    "Concat",
                    &[&mu, &var],
                    &format!("{y}/style"),
                    vec![("axis", Attr::Int(1))],
                );
                let a = gate(
                    &mut g,
                    weights,
                    &style,
                    &format!("{p}."),
                    &format!("{y}/attn"),
                    Some(()),
                );
                let one = g.init_f32(&format!("{p}.one"), &[1], &[1.0]);
                let a1 = g.node("Add", &[&a, &one], &format!("{y}/attn_plus_one"), vec![]);
                g.node("Mul", &[x, &a1], y, vec![]);
            }
            Op::SqueezeExcite { .. } => {
                let p = &n.name;
                let a = gate(
                    &mut g,
                    weights,
                    x,
                    &format!("{p}."),
                    &format!("{y}/attn"),
                    None,
                );
                g.node("Mul", &[x, &a], y, vec![]);
            }
            Op::Relu => {
                g.node("Relu", &[x], y, vec![]);
            }
            Op::PRelu { channels } => {
                let s = g.init_f32(
                    &format!("{}.weight", n.name),
                    &[*channels, 1, 1],
                    &w("weight").data,
                );
                g.node("PRelu", &[x, &s], y, vec![]);
            }
            Op::Sigmoid => {
                g.node("Sigmoid", &[x], y, vec![]);
            }
            Op::Softmax { axis } => {
                g.node("Softmax", &[x], y, vec![("axis", Attr::Int(*axis as i64))]);
            }
            Op::MaxPool2d {
                kernel,
                stride,
                padding,
            }
            | Op::AvgPool2d {
                kernel,
                stride,
                padding,
            } => {
                let mut attrs = vec![
                    ("kernel_shape", Attr::Ints(ints(kernel))),
                    ("strides", Attr::Ints(ints(stride))),
                    (
                        "pads",
                        Attr::Ints(vec![
                            padding[0] as i64,
                            padding[1] as i64,
                            padding[0] as i64,
                            padding[1] as i64,
                        ]),
                    ),
                ];
                let op = if matches!(n.op, Op::MaxPool2d { .. }) {
                    "MaxPool"
                } else {
                    attrs.push(("count_include_pad", Attr::Int(0)));
                    "AveragePool"
                };
                g.node(op, &[x], y, attrs);
            }
            Op::GlobalAvgPool => {
                g.node("GlobalAveragePool", &[x], y, vec![]);
            }
            Op::Flatten => {
                g.node("Flatten", &[x], y, vec![("axis", Attr::Int(1))]);
            }
            Op::Linear {
                in_features,
                out_features,
                bias,
            } => {
                let wt = w("weight");
                let wn = g.init_f32(
                    &format!("{}.weight", n.name),
                    &[*out_features, *in_features],
                    &wt.data,
                );
                let b = bias
                    .then(|| w("bias").data.clone())
                    .unwrap_or_else(|| vec![0.0; *out_features]);
                let bn = g.init_f32(&format!("{}.bias", n.name), &[*out_features], &b);
                if in_shape.len() == 2 {
                    g.node("Gemm", &[x, &wn, &bn], y, vec![("transB", Attr::Int(1))]);
                } else {
                    // [.., in] · Wᵀ + b on the last axis.
                    let wt_t = transpose(&wt.data, *out_features, *in_features);
                    g.take_initializer(&wn);
                    let wn = g.init_f32(
                        &format!("{}.weight_t", n.name),
                        &[*in_features, *out_features],
                        &wt_t,
                    );
                    let mm = g.node("MatMul", &[x, &wn], &format!("{y}/matmul"), vec![]);
                    g.node("Add", &[&mm, &bn], y, vec![]);
                }
            }
            Op::Add => {
                let mut acc = g.node(
                    "Add",
                    &[x, &xs[1]],
                    &if xs.len() == 2 {
                        y.to_string()
                    } else {
                        format!("{y}/0")
                    },
                    vec![],
                );
                for (i, t) in xs.iter().enumerate().skip(2) {
                    let name = if i + 1 == xs.len() {
                        y.to_string()
                    } else {
                        format!("{y}/{}", i - 1)
                    };
                    acc = g.node("Add", &[&acc, t], &name, vec![]);
                }
            }
            Op::Concat { axis } => {
                let refs: Vec<&str> = xs.iter().map(String::as_str).collect();
                g.node("Concat", &refs, y, vec![("axis", Attr::Int(*axis as i64))]);
            }
            Op::Upsample { scale, mode } => {
                let s = *scale as f32;
                let scales = g.init_f32(&format!("{}.scales", n.name), &[4], &[1.0, 1.0, s, s]);
                let attrs = match mode {
                    UpsampleMode::Nearest => vec![
                        ("mode", Attr::Str("nearest")),
                        ("coordinate_transformation_mode", Attr::Str("asymmetric")),
                        ("nearest_mode", Attr::Str("floor")),
                    ],
                    UpsampleMode::Bilinear => vec![
                        ("mode", Attr::Str("linear")),
                        ("coordinate_transformation_mode", Attr::Str("half_pixel")),
                    ],
                };
                g.node("Resize", &[x, "", &scales], y, attrs);
            }
            Op::L2Normalize { eps } => {
                let norm = g.node(
                    "ReduceL2",
                    &[x],
                    &format!("{y}/norm"),
                    vec![("axes", Attr::Ints(vec![1])), ("keepdims", Attr::Int(1))],
                );
                let e = g.init_f32(&format!("{}.eps", n.name), &[1], &[*eps as f32]);
                let clamped = g.node("Max", &[&norm, &e], &format!("{y}/norm_clamped"), vec![]);
                g.node("Div", &[x, &clamped], y, vec![]);
            }
            Op::MeanOfMap => {
                let f = g.node(
                    "Flatten",
                    &[x],
                    &format!("{y}/flat"),
                    vec![("axis", Attr::Int(1))],
                );
                g.node(
                    "ReduceMean",
                    &[&f],
                    y,
                    vec![("axes", Attr::Ints(vec![1])), ("keepdims", Attr::Int(1))],
                );
            }
            Op::Select { axis, index } => {
                let st = g.init_i64(&format!("{}.starts", n.name), &[*index as i64]);
                let en = g.init_i64(&format!("{}.ends", n.name), &[*index as i64 + 1]);
                let ax = g.init_i64(&format!("{}.axes", n.name), &[*axis as i64]);
                g.node("Slice", &[x, &st, &en, &ax], y, vec![]);
            }
            Op::Dropout { .. } => {
                alias.insert(y.to_string(), x.to_string());
            }
        }
    }
    // The graph output is always named p_live.
    let final_value = name_of(&alias, out);
    if final_value != OUTPUT_NAME {
        if g.nodes.iter().any(|n| n.output[0] == OUTPUT_NAME) || input.name == OUTPUT_NAME {
            return Err(unsupported(format!(
                "a value named \"{OUTPUT_NAME}\" exists but is not the output — rename it"
            )));
        }
        g.node("Identity", &[&final_value], OUTPUT_NAME, vec![]);
    }

    let mut in_shape = input.shape.clone();
    in_shape[0] = 1;
    let mut metadata = vec![
        ("fas.score".to_string(), "p_live".to_string()),
        ("fas.model".to_string(), graph.name.clone()),
    ];
    metadata.extend(opts.metadata.iter().cloned());
    let proto = ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        producer_name: "fas-quantize".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(tract_onnx::pb::GraphProto {
            name: graph.name.clone(),
            node: g.nodes,
            initializer: g.initializers,
            input: vec![value_info(&input.name, &in_shape)],
            output: vec![value_info(OUTPUT_NAME, &[1, 1])],
            ..Default::default()
        }),
        metadata_props: metadata
            .into_iter()
            .map(|(key, value)| StringStringEntryProto { key, value })
            .collect(),
        ..Default::default()
    };
    Ok(OnnxModel {
        proto,
        input_name: input.name.clone(),
        input_shape: in_shape,
    })
}

fn ints(v: &[usize; 2]) -> Vec<i64> {
    v.iter().map(|&x| x as i64).collect()
}

fn producer_by_name<'a>(graph: &'a Graph, name: &str) -> &'a Node {
    graph
        .nodes
        .iter()
        .find(|n| n.name == name)
        .expect("producer exists")
}

/// Renames the output of the node that produces `from` to `to` (used when a folded BN's
/// output takes over the conv's).
fn rename_last_output(g: &mut GraphParts, from: &str, to: &str) {
    for n in g.nodes.iter_mut().rev() {
        if n.output[0] == from {
            n.output[0] = to.to_string();
            n.name = to.to_string();
            return;
        }
    }
    unreachable!("folded conv {from} was written before its BN");
}

/// Per-channel `scale`, `shift` of inference BN: `y = x·scale + shift`, computed in f64.
pub fn bn_affine(
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    eps: f64,
) -> (Vec<f32>, Vec<f32>) {
    let mut s = Vec::with_capacity(gamma.len());
    let mut t = Vec::with_capacity(gamma.len());
    for c in 0..gamma.len() {
        let k = gamma[c] as f64 / (var[c] as f64 + eps).sqrt();
        s.push(k as f32);
        t.push((beta[c] as f64 - mean[c] as f64 * k) as f32);
    }
    (s, t)
}

/// Conv weights/bias with the following BN folded in (f64 arithmetic).
fn fold_conv_bn(weights: &Weights, conv: &Node, bn: &Node, eps: f64) -> (Vec<f32>, Vec<f32>) {
    let cw = weights.get(&format!("{}.weight", conv.name));
    let out = cw.shape[0];
    let per = cw.data.len() / out;
    let cb = weights
        .tensors
        .get(&format!("{}.bias", conv.name))
        .map(|t| t.data.clone())
        .unwrap_or_else(|| vec![0.0; out]);
    let g = &weights.get(&format!("{}.weight", bn.name)).data;
    let b = &weights.get(&format!("{}.bias", bn.name)).data;
    let m = &weights.get(&format!("{}.running_mean", bn.name)).data;
    let v = &weights.get(&format!("{}.running_var", bn.name)).data;
    let mut w = vec![0f32; cw.data.len()];
    let mut bias = vec![0f32; out];
    for o in 0..out {
        let k = g[o] as f64 / (v[o] as f64 + eps).sqrt();
        for i in 0..per {
            w[o * per + i] = (cw.data[o * per + i] as f64 * k) as f32;
        }
        bias[o] = ((cb[o] as f64 - m[o] as f64) * k + b[o] as f64) as f32;
    }
    (w, bias)
}

/// `σ(fc2(relu(fc1(pool(x)))))` reshaped to `[1, C, 1, 1]`; `pool` is GAP unless `x` is
/// already `[N, K, 1, 1]` (`already_pooled`).
fn gate(
    g: &mut GraphParts,
    weights: &Weights,
    x: &str,
    prefix: &str,
    y: &str,
    already_pooled: Option<()>,
) -> String {
    let pooled = match already_pooled {
        Some(()) => x.to_string(),
        None => g.node("GlobalAveragePool", &[x], &format!("{y}/gap"), vec![]),
    };
    let flat = g.node(
        "Flatten",
        &[&pooled],
        &format!("{y}/flat"),
        vec![("axis", Attr::Int(1))],
    );
    let mut h = flat;
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

fn transpose(w: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0f32; w.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = w[r * cols + c];
        }
    }
    t
}

impl OnnxModel {
    /// Reads an ONNX file written by [`export`] (one input `[1, C, H, W]`).
    pub fn from_bytes(bytes: &[u8]) -> Result<OnnxModel, ExportError> {
        use prost::Message;
        let proto = ModelProto::decode(bytes).map_err(|e| {
            unsupported(format!(
                "not an ONNX model ({e}) — pass the liveness.onnx that `fas-quantize export` wrote"
            ))
        })?;
        let g = proto
            .graph
            .as_ref()
            .ok_or_else(|| unsupported("the ONNX model has no graph".into()))?;
        let init: std::collections::HashSet<&str> =
            g.initializer.iter().map(|t| t.name.as_str()).collect();
        let inputs: Vec<_> = g
            .input
            .iter()
            .filter(|i| !init.contains(i.name.as_str()))
            .collect();
        let [input] = inputs.as_slice() else {
            return Err(unsupported(format!(
                "the model has {} inputs; a liveness model has one",
                inputs.len()
            )));
        };
        use tract_onnx::pb::{tensor_shape_proto::dimension::Value, type_proto};
        let shape: Option<Vec<usize>> = match input.r#type.as_ref().and_then(|t| t.value.as_ref()) {
            Some(type_proto::Value::TensorType(t)) => t.shape.as_ref().map(|s| {
                s.dim
                    .iter()
                    .map(|d| match d.value {
                        Some(Value::DimValue(v)) if v > 0 => v as usize,
                        _ => 0,
                    })
                    .collect()
            }),
            _ => None,
        };
        let shape = shape
            .filter(|s| s.len() == 4 && s.iter().all(|&d| d > 0))
            .ok_or_else(|| {
                unsupported(format!(
                    "input \"{}\" has no static [1, C, H, W] shape",
                    input.name
                ))
            })?;
        Ok(OnnxModel {
            input_name: input.name.clone(),
            input_shape: shape,
            proto,
        })
    }
}
