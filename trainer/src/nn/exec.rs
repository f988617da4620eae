//! The forward pass: one tch expression per IR op, with the semantics documented on
//! [`fas_core::ir::Op`] (the ONNX exporter implements the same ones).

use std::collections::{BTreeMap, HashMap};

use anyhow::{anyhow, bail, Context, Result};
use fas_core::ir::{Node, Op, UpsampleMode};
use tch::Tensor;

use super::{real_kind, IrModule};

/// A per-node hook: gets the node name and its output, may return a replacement
/// (training-time feature operations such as DLIF's Style Cross between stages).
pub type Hook<'a> = &'a dyn Fn(&str, &Tensor) -> Option<Tensor>;

/// How to run the graph.
#[derive(Clone, Copy)]
pub struct Forward<'a> {
    /// Training mode: batch statistics in BatchNorm/AFNM, dropout active.
    pub train: bool,
    /// In training mode, update the running statistics (off for meta-test passes and
    /// functional copies, which must not disturb the stored statistics).
    pub update_stats: bool,
    /// Explicit parameter tensors by IR name, used instead of the module's own ones
    /// (functional forward with θ' for second-order meta-learning). Names not in the map
    /// fall back to the module's parameters.
    pub params: Option<&'a BTreeMap<String, Tensor>>,
    pub hook: Option<Hook<'a>>,
}

impl Default for Forward<'_> {
    fn default() -> Self {
        Forward {
            train: false,
            update_stats: true,
            params: None,
            hook: None,
        }
    }
}

impl Forward<'_> {
    pub fn eval() -> Self {
        Forward::default()
    }

    pub fn train() -> Self {
        Forward {
            train: true,
            ..Forward::default()
        }
    }
}

fn i2(v: [usize; 2]) -> [i64; 2] {
    [v[0] as i64, v[1] as i64]
}

pub(super) fn run(
    m: &IrModule,
    inputs: &[&Tensor],
    f: &Forward<'_>,
    want: &[&str],
) -> Result<BTreeMap<String, Tensor>> {
    let g = &m.graph;
    if inputs.len() != g.inputs.len() {
        bail!(
            "model \"{}\" takes {} input(s), got {}",
            g.name,
            g.inputs.len(),
            inputs.len()
        );
    }
    // Values still needed after each node: free the rest early (matters in eval mode).
    let mut last_use: HashMap<&str, usize> = HashMap::new();
    for (i, n) in g.nodes.iter().enumerate() {
        for x in &n.inputs {
            last_use.insert(x.as_str(), i);
        }
    }
    let keep = |name: &str| g.outputs.iter().any(|o| o == name) || want.contains(&name);

    let mut values: HashMap<String, Tensor> = HashMap::new();
    for (info, t) in g.inputs.iter().zip(inputs) {
        let got = t.size();
        let expect: Vec<i64> = info.shape.iter().map(|&d| d as i64).collect();
        if got.len() != expect.len() || got[1..] != expect[1..] {
            bail!(
                "model \"{}\": input \"{}\" must be [N, {}], got {got:?}",
                g.name,
                info.name,
                expect[1..]
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        values.insert(info.name.clone(), t.shallow_clone());
    }
    let mut out = BTreeMap::new();
    for w in want {
        if let Some(v) = values.get(*w) {
            out.insert(w.to_string(), v.shallow_clone());
        }
    }

    for (i, node) in g.nodes.iter().enumerate() {
        let xs: Vec<&Tensor> = node.inputs.iter().map(|x| &values[x]).collect();
        let y = op(m, node, &xs, f).with_context(|| {
            format!(
                "model \"{}\", node \"{}\" ({})",
                g.name,
                node.name,
                node.op.kind()
            )
        })?;
        let y = match f.hook.and_then(|h| h(&node.name, &y)) {
            Some(r) => r,
            None => y,
        };
        for x in &node.inputs {
            if last_use.get(x.as_str()) == Some(&i) && !keep(x) {
                values.remove(x);
            }
        }
        let name = &node.outputs[0];
        if keep(name) {
            out.insert(name.clone(), y.shallow_clone());
        }
        values.insert(name.clone(), y);
    }
    for o in &g.outputs {
        if !out.contains_key(o) {
            let v = values
                .get(o)
                .ok_or_else(|| anyhow!("output \"{o}\" was not computed"))?;
            out.insert(o.clone(), v.shallow_clone());
        }
    }
    Ok(out)
}

fn op(m: &IrModule, node: &Node, xs: &[&Tensor], f: &Forward<'_>) -> Result<Tensor> {
    let p = |suffix: &str| -> Result<Tensor> {
        let name = format!("{}.{suffix}", node.name);
        if let Some(t) = f.params.and_then(|p| p.get(&name)) {
            return Ok(t.shallow_clone());
        }
        m.tensor(&name)
            .map(Tensor::shallow_clone)
            .ok_or_else(|| anyhow!("weight \"{name}\" missing"))
    };
    // Running statistics: used in eval; updated in train unless told not to.
    let stats = |on: bool| -> Result<(Option<Tensor>, Option<Tensor>)> {
        if !f.train || (f.update_stats && on) {
            Ok((Some(p("running_mean")?), Some(p("running_var")?)))
        } else {
            Ok((None, None))
        }
    };
    let fc = |x: &Tensor, prefix: &str| -> Result<Tensor> {
        Ok(x.f_linear(
            &p(&format!("{prefix}weight"))?,
            Some(p(&format!("{prefix}bias"))?),
        )?)
    };
    let x = xs[0];
    let cudnn = tch::Cuda::cudnn_is_available();
    Ok(match node.op {
        Op::Conv2d {
            stride,
            padding,
            dilation,
            groups,
            bias,
            ..
        } => {
            let b = if bias { Some(p("bias")?) } else { None };
            x.f_conv2d(
                &p("weight")?,
                b,
                i2(stride),
                i2(padding),
                i2(dilation),
                groups as i64,
            )?
        }
        Op::BatchNorm2d { eps, momentum, .. } => {
            let (rm, rv) = stats(true)?;
            x.f_batch_norm(
                Some(p("weight")?),
                Some(p("bias")?),
                rm,
                rv,
                f.train,
                momentum,
                eps,
                cudnn,
            )?
        }
        Op::InstanceNorm2d { eps, affine, .. } => {
            let (w, b) = if affine {
                (Some(p("weight")?), Some(p("bias")?))
            } else {
                (None, None)
            };
            x.f_instance_norm(w, b, None::<Tensor>, None, true, 0.1, eps, cudnn)?
        }
        Op::AdaptiveBnIn {
            channels,
            eps,
            momentum,
            ..
        } => {
            let c = channels as i64;
            let pooled = x.f_mean_dim([2i64, 3].as_slice(), false, real_kind(x))?;
            let rho = fc(&fc(&pooled, "gate.fc1.")?.relu(), "gate.fc2.")?
                .sigmoid()
                .view([-1, c, 1, 1]);
            let (rm, rv) = stats(true)?;
            let bn = x.f_batch_norm(None::<Tensor>, None, rm, rv, f.train, momentum, eps, cudnn)?;
            let inorm =
                x.f_instance_norm(None::<Tensor>, None, None, None, true, 0.1, eps, cudnn)?;
            let mixed = &rho * bn + (1.0 - &rho) * inorm;
            mixed * p("weight")?.view([1, c, 1, 1]) + p("bias")?.view([1, c, 1, 1])
        }
        Op::StyleAttention { channels, .. } => {
            let c = channels as i64;
            let mu = x.f_mean_dim([2i64, 3].as_slice(), false, real_kind(x))?;
            let var = x.f_var_dim([2i64, 3].as_slice(), false, false)?;
            let style = Tensor::f_cat(&[mu, var], 1)?;
            let a = fc(&fc(&style, "fc1.")?.relu(), "fc2.")?
                .sigmoid()
                .view([-1, c, 1, 1]);
            x * a + x
        }
        Op::SqueezeExcite { channels, .. } => {
            let c = channels as i64;
            let pooled = x.f_mean_dim([2i64, 3].as_slice(), false, real_kind(x))?;
            let s = fc(&fc(&pooled, "fc1.")?.relu(), "fc2.")?
                .sigmoid()
                .view([-1, c, 1, 1]);
            x * s
        }
        Op::Relu => x.relu(),
        Op::PRelu { .. } => x.f_prelu(&p("weight")?)?,
        Op::Sigmoid => x.sigmoid(),
        Op::Softmax { axis } => x.f_softmax(axis as i64, real_kind(x))?,
        Op::MaxPool2d {
            kernel,
            stride,
            padding,
        } => x.f_max_pool2d(i2(kernel), i2(stride), i2(padding), [1i64, 1], false)?,
        Op::AvgPool2d {
            kernel,
            stride,
            padding,
        } => x.f_avg_pool2d(i2(kernel), i2(stride), i2(padding), false, false, None)?,
        Op::GlobalAvgPool => x.f_mean_dim([2i64, 3].as_slice(), true, real_kind(x))?,
        Op::Flatten => x.f_flatten(1, -1)?,
        Op::Linear { bias, .. } => {
            let b = if bias { Some(p("bias")?) } else { None };
            x.f_linear(&p("weight")?, b)?
        }
        Op::Add => {
            let mut acc = xs[0] + xs[1];
            for t in &xs[2..] {
                acc += *t;
            }
            acc
        }
        Op::Concat { axis } => Tensor::f_cat(xs, axis as i64)?,
        Op::Upsample { scale, mode } => {
            let s = x.size();
            let out = [s[2] * scale as i64, s[3] * scale as i64];
            match mode {
                UpsampleMode::Nearest => x.f_upsample_nearest2d(out, None, None)?,
                UpsampleMode::Bilinear => x.f_upsample_bilinear2d(out, false, None, None)?,
            }
        }
        Op::MeanOfMap => x
            .f_flatten(1, -1)?
            .f_mean_dim([1i64].as_slice(), true, real_kind(x))?,
        Op::L2Normalize { eps } => {
            let norm = x
                .f_norm_scalaropt_dim(2, [1i64].as_slice(), true)?
                .clamp_min(eps);
            x / norm
        }
        Op::Select { axis, index } => x.f_narrow(axis as i64, index as i64, 1)?,
        Op::Dropout { p: prob } => x.f_dropout(prob, f.train)?,
    })
}
