//! BatchNorm2d, InstanceNorm2d and ANRL's AdaptiveBnIn, and the plan of which BatchNorms
//! are folded into the convolution before them.

use std::collections::HashMap;

use fas_core::ir::{Graph, Node, Op};

use super::{attention::gate, Lowering, NodeIo};
use crate::onnx::proto::{Attr, GraphParts};
use crate::onnx::weights::Weights;

/// Which BatchNorms vanish into the convolution before them: those directly after a
/// convolution whose output nothing else reads (and that is not a graph output).
#[derive(Default)]
pub(in crate::onnx) struct BnFolds {
    /// Conv node name → its weights and bias with the BN folded in.
    convs: HashMap<String, (Vec<f32>, Vec<f32>)>,
    /// Folded BN node name → the output of its convolution.
    bns: HashMap<String, String>,
}

impl BnFolds {
    /// The folds of `graph` (none unless `enabled`).
    pub fn plan(graph: &Graph, weights: &Weights, enabled: bool) -> BnFolds {
        let mut folds = BnFolds::default();
        if !enabled {
            return folds;
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
        for n in &graph.nodes {
            let Op::BatchNorm2d { eps, .. } = n.op else {
                continue;
            };
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
            let folded = fold_conv_bn(weights, conv, n, eps);
            folds.convs.insert(conv.name.clone(), folded);
            folds.bns.insert(n.name.clone(), conv.outputs[0].clone());
        }
        folds
    }

    /// The folded weights and bias of the conv node `name`, if a BN is folded into it.
    pub fn conv(&self, name: &str) -> Option<&(Vec<f32>, Vec<f32>)> {
        self.convs.get(name)
    }
}

/// `Mul` + `Add` with the folded per-channel scale and shift, or nothing where the BN is
/// folded into its convolution (whose output then takes this node's name).
pub(super) fn batch_norm(cx: &mut Lowering, n: &NodeIo, channels: usize, eps: f64) {
    if let Some(conv_out) = cx.folds.bns.get(n.ir.name.as_str()) {
        // The conv already computes BN(conv(x)); its output is this node's.
        rename_last_output(&mut cx.g, conv_out, n.y);
        return;
    }
    let (scale, shift) = bn_affine(
        &cx.w(n, "weight").data,
        &cx.w(n, "bias").data,
        &cx.w(n, "running_mean").data,
        &cx.w(n, "running_var").data,
        eps,
    );
    let c = channels;
    let s = cx.g.init_f32(&n.param("scale"), &[c, 1, 1], &scale);
    let t = cx.g.init_f32(&n.param("shift"), &[c, 1, 1], &shift);
    let m = cx.g.node("Mul", &[n.x(), &s], &n.tmp("mul"), vec![]);
    cx.g.node("Add", &[&m, &t], n.y, vec![]);
}

/// `InstanceNormalization` (scale 1 and bias 0 without `affine`).
pub(super) fn instance_norm(
    cx: &mut Lowering,
    n: &NodeIo,
    channels: usize,
    eps: f64,
    affine: bool,
) {
    let c = channels;
    let (sc, bi) = if affine {
        (cx.w(n, "weight").data.clone(), cx.w(n, "bias").data.clone())
    } else {
        (vec![1.0; c], vec![0.0; c])
    };
    let s = cx.g.init_f32(&n.param("weight"), &[c], &sc);
    let b = cx.g.init_f32(&n.param("bias"), &[c], &bi);
    cx.g.node(
        "InstanceNormalization",
        &[n.x(), &s, &b],
        n.y,
        vec![("epsilon", Attr::Float(eps as f32))],
    );
}

/// ANRL's AFNM: `weight·(IN + ρ·(BN − IN)) + bias` with the gate ρ, BN from running stats.
pub(super) fn adaptive_bn_in(cx: &mut Lowering, n: &NodeIo, channels: usize, eps: f64) {
    let c = channels;
    let x = n.x();
    // ρ = σ(fc2(relu(fc1(gap(x))))) as [1, C, 1, 1].
    let rho = gate(cx, x, &n.param("gate."), &n.tmp("rho"), false);
    // BN with running stats, no affine: x·s + t.
    let (s, t) = bn_affine(
        &vec![1.0; c],
        &vec![0.0; c],
        &cx.w(n, "running_mean").data,
        &cx.w(n, "running_var").data,
        eps,
    );
    let g = &mut cx.g;
    let s = g.init_f32(&n.param("bn_scale"), &[c, 1, 1], &s);
    let t = g.init_f32(&n.param("bn_shift"), &[c, 1, 1], &t);
    let bn = g.node("Mul", &[x, &s], &n.tmp("bn_mul"), vec![]);
    let bn = g.node("Add", &[&bn, &t], &n.tmp("bn"), vec![]);
    let ones = g.init_f32(&n.param("in_scale"), &[c], &vec![1.0; c]);
    let zeros = g.init_f32(&n.param("in_bias"), &[c], &vec![0.0; c]);
    let inorm = g.node(
        "InstanceNormalization",
        &[x, &ones, &zeros],
        &n.tmp("in"),
        vec![("epsilon", Attr::Float(eps as f32))],
    );
    // ρ·BN + (1−ρ)·IN = IN + ρ·(BN − IN)
    let d = g.node("Sub", &[&bn, &inorm], &n.tmp("diff"), vec![]);
    let rd = g.node("Mul", &[&rho, &d], &n.tmp("rho_diff"), vec![]);
    let mixed = g.node("Add", &[&inorm, &rd], &n.tmp("mixed"), vec![]);
    let wa = cx.w(n, "weight");
    let ba = cx.w(n, "bias");
    let g = &mut cx.g;
    let wa = g.init_f32(&n.param("weight"), &[c, 1, 1], &wa.data);
    let ba = g.init_f32(&n.param("bias"), &[c, 1, 1], &ba.data);
    let m = g.node("Mul", &[&mixed, &wa], &n.tmp("affine"), vec![]);
    g.node("Add", &[&m, &ba], n.y, vec![]);
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
