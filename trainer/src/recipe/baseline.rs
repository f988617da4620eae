//! The baseline recipe: one backbone from the IR, a binary head trained with binary
//! cross-entropy or asymmetric AM-softmax, and optional pixel-wise depth supervision
//! (DepthNet backbones; live target = the face's depth map, spoof target = zeros, as in the
//! depth-supervised FAS literature). The deployed model is backbone + head → `p_live`.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use fas_core::ir::backbones::{self, BackboneKind, BackboneSpec, NormKind};
use fas_core::ir::{Graph, GraphBuilder};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use super::losses::{self, AmSoftmax};
use super::{Deployable, Recipe, Sampling, StepInfo, TrainBatch};
use crate::nn::{Forward, IrModule};
use crate::train::optim::{Adam, AdamConfig};
use crate::train::state::{StateReader, StateWriter};

/// The classification loss of the head.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ClsLoss {
    /// One logit, `p_live = σ(logit)`.
    Bce,
    /// Two cosine logits with class margins, `p_live = softmax(s·cos)[live]`.
    AmSoftmax(AmSoftmax),
}

/// Everything that defines a baseline model and its optimisation (stored in the run dir).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineConfig {
    pub backbone: BackboneKind,
    /// 3 (RGB) or 6 (RGB+HSV).
    pub in_channels: usize,
    pub input_size: usize,
    /// Channel-width multiplier of the backbone.
    pub width: f32,
    pub loss: ClsLoss,
    /// Weight of the depth loss; 0 disables it. Needs a backbone with a depth head.
    pub depth_weight: f64,
    pub adam: AdamConfig,
    /// Clip the global gradient norm to this value.
    pub grad_clip: Option<f64>,
    /// Mixed precision (autocast) on CUDA; ignored on the CPU.
    pub amp: bool,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        BaselineConfig {
            backbone: BackboneKind::Resnet18,
            in_channels: 3,
            input_size: 224,
            width: 1.0,
            loss: ClsLoss::Bce,
            depth_weight: 0.0,
            adam: AdamConfig::default(),
            grad_clip: None,
            amp: true,
        }
    }
}

const INPUT: &str = "input";
const HEAD: &str = "head";

impl BaselineConfig {
    fn spec(&self) -> BackboneSpec {
        BackboneSpec {
            kind: self.backbone,
            in_channels: self.in_channels,
            input_size: self.input_size,
            norm: NormKind::Batch,
            width: self.width,
        }
    }

    /// The training graph: backbone features (and depth map when supervised).
    pub fn train_graph(&self) -> Result<(Graph, String, Option<String>, usize)> {
        let mut b = GraphBuilder::new(&format!("baseline-{}", self.backbone.as_str()));
        let x = b.input(
            INPUT,
            &[1, self.in_channels, self.input_size, self.input_size],
        );
        let out = backbones::build(&mut b, &x, &self.spec(), "")?;
        b.output(&out.features);
        let depth = if self.depth_weight > 0.0 {
            match &out.depth {
                Some(d) => {
                    b.output(d);
                    Some(d.clone())
                }
                None => bail!(
                    "depth supervision (--depth-weight {}) needs a backbone with a depth head; \
                     {} has none — use --backbone depthnet or --depth-weight 0",
                    self.depth_weight,
                    self.backbone.as_str()
                ),
            }
        } else {
            None
        };
        Ok((b.finish()?, out.features, depth, out.feature_dim))
    }
}

/// Baseline recipe state.
pub struct Baseline {
    cfg: BaselineConfig,
    net: IrModule,
    features: String,
    depth: Option<String>,
    feature_dim: usize,
    head_w: Tensor,
    head_b: Option<Tensor>,
    opt: Adam,
}

impl Baseline {
    pub fn new(cfg: BaselineConfig, device: Device, seed: u64) -> Result<Baseline> {
        if cfg.depth_weight < 0.0 || !cfg.depth_weight.is_finite() {
            bail!("--depth-weight must be ≥ 0, got {}", cfg.depth_weight);
        }
        let (graph, features, depth, feature_dim) = cfg.train_graph()?;
        let net = IrModule::new(graph, device, seed)?;
        let f = feature_dim as i64;
        let (classes, bias) = match cfg.loss {
            ClsLoss::Bce => (1, true),
            ClsLoss::AmSoftmax(_) => (2, false),
        };
        // PyTorch's default linear init, from the same seed.
        tch::manual_seed(seed as i64 ^ 0x5eed);
        let bound = 1.0 / (f as f64).sqrt();
        let opts = (Kind::Float, Device::Cpu);
        let head_w = (Tensor::rand([classes, f], opts) * (2.0 * bound) - bound)
            .to_device(device)
            .set_requires_grad(true);
        let head_b = bias.then(|| {
            (Tensor::rand([classes], opts) * (2.0 * bound) - bound)
                .to_device(device)
                .set_requires_grad(true)
        });
        let mut params: Vec<(String, Tensor)> = net
            .parameters()
            .iter()
            .map(|(k, t)| (k.clone(), t.shallow_clone()))
            .collect();
        params.push((format!("{HEAD}.weight"), head_w.shallow_clone()));
        if let Some(b) = &head_b {
            params.push((format!("{HEAD}.bias"), b.shallow_clone()));
        }
        let opt = Adam::new(params, cfg.adam);
        Ok(Baseline {
            cfg,
            net,
            features,
            depth,
            feature_dim,
            head_w,
            head_b,
            opt,
        })
    }

    pub fn config(&self) -> &BaselineConfig {
        &self.cfg
    }

    pub fn network(&self) -> &IrModule {
        &self.net
    }

    /// Loads user-provided backbone weights (safetensors with the IR's weight names, e.g.
    /// converted from a torchvision checkpoint); the head stays freshly initialised.
    pub fn load_backbone_weights(&mut self, path: &std::path::Path) -> Result<()> {
        self.net.load_safetensors(path, false)
    }

    fn head(&self, feats: &Tensor) -> Tensor {
        match self.cfg.loss {
            ClsLoss::Bce => feats.linear(&self.head_w, self.head_b.as_ref()),
            ClsLoss::AmSoftmax(_) => AmSoftmax::cosine(feats, &self.head_w),
        }
    }

    fn p_live_of(&self, head_out: &Tensor) -> Tensor {
        match self.cfg.loss {
            ClsLoss::Bce => head_out.view([-1]).sigmoid(),
            ClsLoss::AmSoftmax(am) => am.p_live(head_out),
        }
    }

    fn use_amp(&self) -> bool {
        self.cfg.amp && self.net.device().is_cuda()
    }
}

impl Recipe for Baseline {
    fn name(&self) -> &'static str {
        "baseline"
    }

    fn sampling(&self) -> Sampling {
        Sampling::ClassBalanced
    }

    fn step(&mut self, batch: &TrainBatch, info: &StepInfo) -> Result<Vec<(String, f64)>> {
        self.opt.zero_grad();
        let want: Vec<&str> = self.depth.iter().map(|s| s.as_str()).collect();
        let out = tch::autocast(self.use_amp(), || {
            self.net.run(&[&batch.images], &Forward::train(), &want)
        })?;
        let feats = out[&self.features].to_kind(Kind::Float);
        let head = self.head(&feats);
        let cls = match self.cfg.loss {
            ClsLoss::Bce => losses::bce(&head, &batch.labels),
            ClsLoss::AmSoftmax(am) => am.loss(&head, &batch.labels),
        };
        let mut terms = vec![("cls".to_string(), cls.double_value(&[]))];
        let mut total = cls;
        if let Some(d) = &self.depth {
            let target = batch.depth.as_ref().context(
                "depth supervision is on but the data has no depth maps — give depth maps \
                 (SynthFAS writes them) or set --depth-weight 0",
            )?;
            let dl = losses::depth_mse(&out[d].to_kind(Kind::Float), target);
            terms.push(("depth".to_string(), dl.double_value(&[])));
            total += dl * self.cfg.depth_weight;
        }
        let value = total.double_value(&[]);
        if !value.is_finite() {
            bail!(
                "loss is {value} at step {} — lower the learning rate or enable --grad-clip",
                info.step
            );
        }
        total.backward();
        if let Some(c) = self.cfg.grad_clip {
            let n = self.opt.clip_grad_norm(c);
            terms.push(("grad_norm".to_string(), n));
        }
        self.opt.step(info.lr);
        terms.insert(0, ("loss".to_string(), value));
        Ok(terms)
    }

    fn score(&self, images: &Tensor) -> Result<Tensor> {
        tch::no_grad(|| {
            let out = self.net.run(&[images], &Forward::eval(), &[])?;
            let head = self.head(&out[&self.features]);
            Ok(self.p_live_of(&head))
        })
    }

    fn deployable(&self) -> Result<Deployable> {
        let mut b = GraphBuilder::new(&format!("{}-{}", self.name(), self.cfg.backbone.as_str()));
        let c = &self.cfg;
        let x = b.input(INPUT, &[1, c.in_channels, c.input_size, c.input_size]);
        let out = backbones::build(&mut b, &x, &c.spec(), "")?;
        let mut weights: Vec<(String, Tensor)> = self
            .net
            .named_tensors()
            .into_iter()
            .map(|(k, t)| (k, t.detach()))
            .collect();
        let p = match c.loss {
            ClsLoss::Bce => {
                let logit = b.linear(HEAD, &out.features, 1, true);
                weights.push((format!("{HEAD}.weight"), self.head_w.detach()));
                weights.push((
                    format!("{HEAD}.bias"),
                    self.head_b.as_ref().expect("bce head has a bias").detach(),
                ));
                b.sigmoid("p_live", &logit)
            }
            ClsLoss::AmSoftmax(am) => {
                // s·cos θ = Linear(normalize(f)) with weight s·w/‖w‖.
                let n = b.l2_normalize("head_norm", &out.features);
                let logits = b.linear(HEAD, &n, 2, false);
                let w = losses::l2_normalize(&self.head_w.detach()) * am.scale;
                weights.push((format!("{HEAD}.weight"), w));
                let sm = b.softmax("head_softmax", &logits, 1);
                b.select("p_live", &sm, 1, 1)
            }
        };
        b.output(&p);
        let graph = b.finish()?;
        debug_assert_eq!(self.feature_dim, graph.infer_shapes()?[&out.features][1]);
        Ok(Deployable { graph, weights })
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let mut w = StateWriter::new();
        w.module("net", &self.net)
            .tensor(&format!("net.{HEAD}.weight"), &self.head_w);
        if let Some(b) = &self.head_b {
            w.tensor(&format!("net.{HEAD}.bias"), b);
        }
        w.adam("opt", &self.opt).finish()
    }

    fn load_state(&mut self, state: &BTreeMap<String, Tensor>) -> Result<()> {
        let r = StateReader::new("baseline", state);
        let (weight, bias) = (format!("net.{HEAD}.weight"), format!("net.{HEAD}.bias"));
        let mut net = r.part("net");
        net.retain(|k, _| *k != format!("{HEAD}.weight") && *k != format!("{HEAD}.bias"));
        r.module_from("net", net, &mut self.net)?;
        r.copy(&weight, &self.head_w)?;
        match (&self.head_b, r.get(&bias)) {
            (Some(dst), _) => r.copy(&bias, dst)?,
            (None, None) => {}
            (None, Some(_)) => bail!(
                "the checkpoint's head has a bias, this model's (--loss am-softmax) has none \
                 — resume with the original --loss"
            ),
        }
        r.adam("opt", &mut self.opt)
    }
}

pub mod setup;

#[cfg(test)]
mod tests {
    use super::*;
    use fas_core::ir::backbones::BackboneKind;

    fn cfg(loss: ClsLoss) -> BaselineConfig {
        BaselineConfig {
            backbone: BackboneKind::EdgeNet,
            in_channels: 3,
            input_size: 32,
            width: 0.25,
            loss,
            ..BaselineConfig::default()
        }
    }

    /// The exported graph computes exactly what the recipe scores with (contract 3).
    #[test]
    fn deployable_graph_scores_like_the_recipe() {
        for loss in [ClsLoss::Bce, ClsLoss::AmSoftmax(AmSoftmax::default())] {
            let mut r = Baseline::new(cfg(loss), Device::Cpu, 1).unwrap();
            let x = Tensor::randn([4, 3, 32, 32], (Kind::Float, Device::Cpu));
            let batch = TrainBatch {
                images: x.shallow_clone(),
                labels: Tensor::from_slice(&[1i64, 0, 1, 0]),
                domains: Tensor::zeros([4], (Kind::Int64, Device::Cpu)),
                identities: Tensor::zeros([4], (Kind::Int64, Device::Cpu)),
                depth: None,
                indices: Vec::new(),
            };
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
            let want = r.score(&x).unwrap();
            let d = r.deployable().unwrap();
            let mut m = IrModule::new(d.graph, Device::Cpu, 9).unwrap();
            let w: BTreeMap<String, Tensor> = d.weights.into_iter().collect();
            m.load_tensors(&w, true).unwrap();
            let got = tch::no_grad(|| m.forward(&[&x], false).unwrap().remove(0));
            assert_eq!(got.size(), vec![4, 1]);
            let diff = (got.view([-1]) - &want).abs().max().double_value(&[]);
            assert!(diff < 1e-5, "{loss:?}: {diff}");
        }
    }

    #[test]
    fn depth_supervision_needs_a_depth_head() {
        let mut c = cfg(ClsLoss::Bce);
        c.depth_weight = 1.0;
        let e = Baseline::new(c, Device::Cpu, 1).err().unwrap().to_string();
        assert!(e.contains("depth_net") || e.contains("depthnet"), "{e}");
    }

    /// Saving the state and loading it into a fresh recipe continues identically.
    #[test]
    fn state_round_trip_continues_identically() {
        let c = cfg(ClsLoss::AmSoftmax(AmSoftmax::default()));
        let mut a = Baseline::new(c.clone(), Device::Cpu, 3).unwrap();
        let x = Tensor::randn([4, 3, 32, 32], (Kind::Float, Device::Cpu));
        let batch = TrainBatch {
            images: x.shallow_clone(),
            labels: Tensor::from_slice(&[1i64, 0, 0, 1]),
            domains: Tensor::zeros([4], (Kind::Int64, Device::Cpu)),
            identities: Tensor::zeros([4], (Kind::Int64, Device::Cpu)),
            depth: None,
            indices: Vec::new(),
        };
        let info = |step| StepInfo {
            step,
            epoch: 0,
            lr: 1e-3,
        };
        a.step(&batch, &info(0)).unwrap();
        let saved: BTreeMap<String, Tensor> = a
            .state()
            .into_iter()
            .map(|(k, t)| (k, t.detach().copy()))
            .collect();
        let mut b = Baseline::new(c, Device::Cpu, 99).unwrap();
        b.load_state(&saved).unwrap();
        let la = a.step(&batch, &info(1)).unwrap();
        let lb = b.step(&batch, &info(1)).unwrap();
        assert_eq!(la, lb);
        assert!(a.score(&x).unwrap().equal(&b.score(&x).unwrap()));
    }
}
