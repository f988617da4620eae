//! ANRL: "Adaptive Normalized Representation Learning for Generalizable Face Anti-Spoofing"
//! (Liu et al., ACM MM 2021), re-implemented from the paper's description (no reference code
//! was used). Equation numbers follow the paper; where its exact form is not restated here
//! (distance measures, margins, which stage carries which term), the choice is the one
//! documented on the loss functions in [`losses`].
//!
//! * **Feature extractor** — the DepthNet backbone with the Adaptive Feature Normalization
//!   Module (AFNM) in every normalisation slot: a per-channel gate
//!   `λ = σ(fc2(relu(fc1(gap(x)))))` mixes batch and instance normalisation,
//!   `λ·BN(x) + (1−λ)·IN(x)`. The gate's last layer starts at zero, so the mix starts at
//!   exactly 0.5 (the IR initialisation does this).
//! * **Depth estimator** — the backbone's depth head, supervised by the face depth map for
//!   live faces and zeros for attacks (`L_dep`, pixel-wise MSE).
//! * **Classifier** — one linear logit on the pooled features, `p_live = σ(logit)`,
//!   binary cross-entropy (`L_cls`).
//! * **Dual Calibration Constraints** on L2-normalised features:
//!   the Inter-Domain Compatible loss (Eq. 6–8, [`DomainCentroids`]) pulls the meta-test
//!   domain's class centroids towards the momentum (γ = 0.9) global class centroids of the
//!   meta-train domains; the Inter-Class Separable loss (Eq. 9–11,
//!   [`losses::inter_class_separable`]) makes live features compact and pushes attacks away
//!   from the live centroid by a margin.
//! * **Meta-learning** (the paper's meta-train / meta-test / meta-optimisation loop) — every iteration splits the source domains of the
//!   batch into meta-train and meta-test sets with [`MetaSplit`] (one meta-test domain by
//!   default). Meta-train: `L_trn = L_cls + λ_d·L_dep + λ_ics·L_ICS` on the meta-train
//!   domains, and the global centroids are updated (Eq. 7). Inner update of the AFNM gate
//!   parameters only, `θ_A' = θ_A − α·∇_{θ_A} L_trn`. Meta-test with `θ_A'` (through the IR's
//!   functional-parameter forward, running statistics untouched):
//!   `L_tst = L_cls + λ_d·L_dep + λ_ics·L_ICS + λ_idc·L_IDC`. Meta-optimisation: every
//!   parameter (extractor, gates, depth estimator, classifier) steps on `L_trn + L_tst`.
//!
//! **First-order**: the inner gradient is detached (`create_graph = false`), so
//! `∂θ_A'/∂θ_A = I` and the meta-gradient omits the Hessian term (first-order MAML). A
//! second-order step would double-backpropagate through every AFNM of DepthNet, which is
//! too slow for CPU training; the data path is the same either way.
//!
//! The deployed model is DepthNet-AFNM + classifier → `p_live` ([`backbones::live_prob`],
//! sigmoid); the depth head is exported too but only `p_live` is an output.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context, Result};
use fas_core::ir::backbones::{self, BackboneKind, BackboneSpec, LiveProbKind, NormKind};
use fas_core::ir::{Graph, GraphBuilder, Op};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use super::losses::{self, DomainCentroids};
use super::{Deployable, Recipe, Sampling, StepInfo, TrainBatch};
use crate::data::sampler::MetaSplit;
use crate::nn::{Forward, IrModule};
use crate::train::optim::{Adam, AdamConfig};

/// Everything that defines an ANRL model and its optimisation (stored in the run dir).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnrlConfig {
    /// 6 (RGB + HSV, as the paper) or 3.
    pub in_channels: usize,
    /// 256 in the paper; smaller sizes (multiples of 16) for tests.
    pub input_size: usize,
    /// DepthNet channel-width multiplier.
    pub width: f32,
    /// AFNM gate reduction `r` (hidden width `C/r`).
    pub afnm_reduction: usize,
    /// `λ_d`, weight of the depth loss.
    pub depth_weight: f64,
    /// `λ_idc`, weight of the Inter-Domain Compatible loss (Eq. 8).
    pub idc_weight: f64,
    /// `λ_ics`, weight of the Inter-Class Separable loss (Eq. 11).
    pub ics_weight: f64,
    /// Margin of the separability term (Eq. 10), in L2-normalised feature space.
    pub ics_margin: f64,
    /// γ of the global centroid update (Eq. 7).
    pub centroid_momentum: f64,
    /// α, the inner (meta-train) step size of the AFNM gates.
    pub inner_lr: f64,
    /// Meta-test domains per iteration.
    pub meta_test_domains: usize,
    pub adam: AdamConfig,
    pub grad_clip: Option<f64>,
}

impl Default for AnrlConfig {
    fn default() -> Self {
        AnrlConfig {
            in_channels: 6,
            input_size: 256,
            width: 1.0,
            afnm_reduction: 16,
            depth_weight: 1.0,
            idc_weight: 1.0,
            ics_weight: 1.0,
            ics_margin: 1.0,
            centroid_momentum: 0.9,
            inner_lr: 1e-3,
            meta_test_domains: MetaSplit::DEFAULT_META_TEST,
            adam: AdamConfig::default(),
            grad_clip: None,
        }
    }
}

const INPUT: &str = "input";
const CLS: &str = "cls";

impl AnrlConfig {
    fn spec(&self) -> BackboneSpec {
        BackboneSpec {
            kind: BackboneKind::DepthNet,
            in_channels: self.in_channels,
            input_size: self.input_size,
            norm: NormKind::AdaptiveBnIn {
                reduction: self.afnm_reduction,
            },
            width: self.width,
        }
    }

    fn check(&self) -> Result<()> {
        let finite_nonneg = [
            ("depth_weight", self.depth_weight),
            ("idc_weight", self.idc_weight),
            ("ics_weight", self.ics_weight),
            ("ics_margin", self.ics_margin),
            ("inner_lr", self.inner_lr),
        ];
        for (name, v) in finite_nonneg {
            if !(v.is_finite() && v >= 0.0) {
                bail!("ANRL {name} must be a finite number ≥ 0, got {v}");
            }
        }
        if !(0.0..1.0).contains(&self.centroid_momentum) {
            bail!(
                "ANRL centroid_momentum must be in [0, 1), got {} (the paper uses 0.9)",
                self.centroid_momentum
            );
        }
        if self.meta_test_domains == 0 {
            bail!("ANRL meta_test_domains must be ≥ 1 (the paper uses 1)");
        }
        Ok(())
    }

    /// The network: backbone → classifier logit `[N, 1]`, with the features `[N, F]` and
    /// the depth map as further outputs (training) or `p_live` as the only output (deploy).
    /// Returns the graph and the names of (logit, features, depth, feature_dim).
    fn graph(&self, deploy: bool) -> Result<(Graph, [String; 3], usize)> {
        let mut b = GraphBuilder::new("anrl-depth_net-afnm");
        let x = b.input(
            INPUT,
            &[1, self.in_channels, self.input_size, self.input_size],
        );
        let out = backbones::build(&mut b, &x, &self.spec(), "")?;
        let depth = out.depth.clone().context("DepthNet has a depth head")?;
        let logit = backbones::head(&mut b, &out.features, out.feature_dim, 1, CLS);
        if deploy {
            let p = backbones::live_prob(&mut b, &logit, LiveProbKind::Sigmoid)?;
            b.output(&p);
        } else {
            b.output(&logit);
            b.output(&out.features);
            b.output(&depth);
        }
        Ok((b.finish()?, [logit, out.features, depth], out.feature_dim))
    }
}

/// ANRL recipe state.
pub struct Anrl {
    cfg: AnrlConfig,
    net: IrModule,
    logit: String,
    features: String,
    depth: String,
    /// θ_A: the AFNM gate parameters (inner-loop parameters).
    gates: Vec<String>,
    centroids: DomainCentroids,
    /// Built from the domain indices of the first batch (sorted); rebuilt if they change.
    split: Option<(BTreeSet<i64>, MetaSplit)>,
    seed: u64,
    opt: Adam,
}

/// The loss terms of one forward pass.
struct Terms {
    cls: Tensor,
    depth: Tensor,
    ics: Tensor,
    /// L2-normalised features.
    feats: Tensor,
}

impl Anrl {
    /// `domains` is the size of the domain index space of the batches
    /// ([`crate::data::loader::Dataset::domain_names`]).
    pub fn new(cfg: AnrlConfig, domains: usize, device: Device, seed: u64) -> Result<Anrl> {
        cfg.check()?;
        let (graph, [logit, features, depth], feature_dim) = cfg.graph(false)?;
        let gates: Vec<String> = graph
            .nodes
            .iter()
            .filter(|n| matches!(n.op, Op::AdaptiveBnIn { .. }))
            .flat_map(|n| n.op.weights(&n.name))
            .map(|(w, _)| w)
            .filter(|w| w.contains(".gate."))
            .collect();
        if gates.is_empty() {
            bail!("the ANRL graph has no AFNM gates — the backbone did not use AdaptiveBnIn");
        }
        let net = IrModule::new(graph, device, seed)?;
        let opt = Adam::new(
            net.parameters()
                .iter()
                .map(|(k, t)| (k.clone(), t.shallow_clone())),
            cfg.adam,
        );
        let centroids = DomainCentroids::new(domains, feature_dim, cfg.centroid_momentum, device);
        Ok(Anrl {
            cfg,
            net,
            logit,
            features,
            depth,
            gates,
            centroids,
            split: None,
            seed,
            opt,
        })
    }

    pub fn config(&self) -> &AnrlConfig {
        &self.cfg
    }

    pub fn network(&self) -> &IrModule {
        &self.net
    }

    /// Side of the depth map the depth estimator predicts (the loader's `depth_size`).
    pub fn depth_size(&self) -> Result<u32> {
        let shapes = self.net.graph().infer_shapes()?;
        Ok(shapes[&self.depth][2] as u32)
    }

    /// The AFNM gate parameter names (θ_A).
    pub fn gate_parameters(&self) -> &[String] {
        &self.gates
    }

    /// Loads user-provided backbone weights (IR names); missing ones (e.g. the classifier)
    /// keep their initialisation.
    pub fn load_backbone_weights(&mut self, path: &std::path::Path) -> Result<()> {
        self.net.load_safetensors(path, false)
    }

    fn meta_split(&mut self, present: BTreeSet<i64>) -> Result<&MetaSplit> {
        if self.split.as_ref().map(|(s, _)| s) != Some(&present) {
            if present.len() <= self.cfg.meta_test_domains {
                bail!(
                    "ANRL needs more source domains in every batch than meta-test domains \
                     ({}); this batch has {} domain(s) — use a protocol with several source \
                     domains (e.g. ocim or synth-domain) and the per-domain sampler",
                    self.cfg.meta_test_domains,
                    present.len()
                );
            }
            let m = MetaSplit::new(
                present.iter().map(|d| d.to_string()),
                self.cfg.meta_test_domains,
                self.seed,
            )?;
            self.split = Some((present, m));
        }
        Ok(&self.split.as_ref().expect("just set").1)
    }

    fn terms(
        &self,
        images: &Tensor,
        labels: &Tensor,
        depth: Option<&Tensor>,
        f: &Forward<'_>,
    ) -> Result<Terms> {
        let out = self.net.run(&[images], f, &[])?;
        let cls = losses::bce(&out[&self.logit], labels);
        let depth = if self.cfg.depth_weight > 0.0 {
            let target = depth.context(
                "ANRL supervises depth but the data has no depth maps — give depth maps \
                 (SynthFAS writes them) or set --depth-weight 0",
            )?;
            losses::depth_mse(&out[&self.depth], target)
        } else {
            Tensor::zeros([], (Kind::Float, images.device()))
        };
        let feats = losses::l2_normalize(&out[&self.features]);
        let ics = losses::inter_class_separable(&feats, labels, self.cfg.ics_margin);
        Ok(Terms {
            cls,
            depth,
            ics,
            feats,
        })
    }
}

fn rows(t: &Tensor, idx: &Tensor) -> Tensor {
    t.index_select(0, idx)
}

impl Recipe for Anrl {
    fn name(&self) -> &'static str {
        "anrl"
    }

    fn sampling(&self) -> Sampling {
        Sampling::PerDomain
    }

    fn step(&mut self, batch: &TrainBatch, info: &StepInfo) -> Result<Vec<(String, f64)>> {
        let device = self.net.device();
        let dom: Vec<i64> = Vec::<i64>::try_from(&batch.domains.to_device(Device::Cpu))?;
        let present: BTreeSet<i64> = dom.iter().copied().collect();
        let sets = self.meta_split(present)?.split(info.step as u64);
        let parse = |v: &[String]| -> Vec<i64> {
            v.iter()
                .map(|s| s.parse().expect("meta-split names are domain indices"))
                .collect()
        };
        let (trn, tst) = (parse(&sets.meta_train), parse(&sets.meta_test));
        let pick = |set: &[i64]| -> Tensor {
            let idx: Vec<i64> = (0..dom.len() as i64)
                .filter(|&i| set.contains(&dom[i as usize]))
                .collect();
            Tensor::from_slice(&idx).to_device(device)
        };
        let (i_trn, i_tst) = (pick(&trn), pick(&tst));
        let sub = |idx: &Tensor| {
            (
                rows(&batch.images, idx),
                rows(&batch.labels, idx),
                batch.depth.as_ref().map(|d| rows(d, idx)),
                rows(&batch.domains, idx),
            )
        };
        let (x_trn, y_trn, d_trn, dom_trn) = sub(&i_trn);
        let (x_tst, y_tst, d_tst, _) = sub(&i_tst);
        let c = self.cfg.clone();

        self.opt.zero_grad();
        // Meta-train.
        let tr = self.terms(&x_trn, &y_trn, d_trn.as_ref(), &Forward::train())?;
        let l_trn = &tr.cls + &tr.depth * c.depth_weight + &tr.ics * c.ics_weight;
        // Global centroids of the meta-train domains (Eq. 6–7).
        tch::no_grad(|| {
            let f = tr.feats.detach();
            for &d in &trn {
                let idx = dom_trn.eq(d).nonzero().view([-1]);
                let (local, present) =
                    losses::class_centroids(&rows(&f, &idx), &rows(&y_trn, &idx));
                self.centroids.update(d, &local, &present);
            }
        });
        // Inner update of θ_A (first-order: the gradient is a constant).
        let theta: Vec<Tensor> = self
            .gates
            .iter()
            .map(|n| self.net.tensor(n).expect("gate weight").shallow_clone())
            .collect();
        let grads = Tensor::run_backward(&[&l_trn], &theta, true, false);
        let adapted: BTreeMap<String, Tensor> = self
            .gates
            .iter()
            .zip(theta.iter().zip(&grads))
            .map(|(n, (t, g))| (n.clone(), t - g.detach() * c.inner_lr))
            .collect();
        // Meta-test with θ_A', running statistics untouched.
        let f = Forward {
            train: true,
            update_stats: false,
            params: Some(&adapted),
            hook: None,
        };
        let te = self.terms(&x_tst, &y_tst, d_tst.as_ref(), &f)?;
        let (local, present) = losses::class_centroids(&te.feats, &y_tst);
        let idc = self
            .centroids
            .inter_domain_compatible(&local, &present, &trn);
        let l_tst =
            &te.cls + &te.depth * c.depth_weight + &te.ics * c.ics_weight + &idc * c.idc_weight;
        // Meta-optimisation.
        let total = &l_trn + &l_tst;
        let value = total.double_value(&[]);
        if !value.is_finite() {
            bail!(
                "ANRL loss is {value} at step {} — lower the learning rate or enable --clip",
                info.step
            );
        }
        total.backward();
        let mut terms = vec![
            ("loss".to_string(), value),
            ("trn".to_string(), l_trn.double_value(&[])),
            ("tst".to_string(), l_tst.double_value(&[])),
            (
                "cls".to_string(),
                (&tr.cls + &te.cls).double_value(&[]) / 2.0,
            ),
            (
                "depth".to_string(),
                (&tr.depth + &te.depth).double_value(&[]) / 2.0,
            ),
            (
                "ics".to_string(),
                (&tr.ics + &te.ics).double_value(&[]) / 2.0,
            ),
            ("idc".to_string(), idc.double_value(&[])),
        ];
        if let Some(m) = c.grad_clip {
            terms.push(("grad_norm".to_string(), self.opt.clip_grad_norm(m)));
        }
        self.opt.step(info.lr);
        Ok(terms)
    }

    fn score(&self, images: &Tensor) -> Result<Tensor> {
        tch::no_grad(|| {
            let out = self.net.run(&[images], &Forward::eval(), &[])?;
            Ok(out[&self.logit].view([-1]).sigmoid())
        })
    }

    fn deployable(&self) -> Result<Deployable> {
        let (graph, _, _) = self.cfg.graph(true)?;
        graph.infer_shapes().context("the ANRL deployable graph")?;
        let weights = self
            .net
            .named_tensors()
            .into_iter()
            .map(|(k, t)| (k, t.detach()))
            .collect();
        Ok(Deployable { graph, weights })
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let mut v: Vec<(String, Tensor)> = self
            .net
            .named_tensors()
            .into_iter()
            .map(|(k, t)| (format!("net.{k}"), t))
            .collect();
        v.extend(
            self.centroids
                .state()
                .into_iter()
                .map(|(k, t)| (format!("anrl.{k}"), t)),
        );
        v.extend(
            self.opt
                .state()
                .into_iter()
                .map(|(k, t)| (format!("opt.{k}"), t)),
        );
        v
    }

    fn load_state(&mut self, state: &BTreeMap<String, Tensor>) -> Result<()> {
        let strip = |prefix: &str| -> BTreeMap<String, Tensor> {
            state
                .iter()
                .filter_map(|(k, t)| {
                    k.strip_prefix(prefix)
                        .map(|s| (s.to_string(), t.shallow_clone()))
                })
                .collect()
        };
        self.net.load_tensors(&strip("net."), true)?;
        self.centroids.load_state(&strip("anrl."))?;
        self.opt.load_state(&strip("opt."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> AnrlConfig {
        AnrlConfig {
            in_channels: 6,
            input_size: 32,
            width: 0.25,
            ..AnrlConfig::default()
        }
    }

    /// Two live and two spoof samples in each of three domains, with flat/bumpy depth.
    fn batch(seed: i64) -> TrainBatch {
        tch::manual_seed(seed);
        let labels = Tensor::from_slice(&[1i64, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0]);
        let domains = Tensor::from_slice(&[0i64, 0, 0, 0, 2, 2, 2, 2, 3, 3, 3, 3]);
        let lf = labels.to_kind(Kind::Float).view([-1, 1, 1, 1]);
        let images = Tensor::randn([12, 6, 32, 32], (Kind::Float, Device::Cpu)) + &lf * 0.5;
        let depth = Tensor::ones([12, 1, 8, 8], (Kind::Float, Device::Cpu)) * 0.7 * &lf;
        TrainBatch {
            images,
            labels,
            identities: domains.shallow_clone(),
            domains,
            depth: Some(depth),
            indices: Vec::new(),
        }
    }

    fn info(step: usize) -> StepInfo {
        StepInfo {
            step,
            epoch: 0,
            lr: 1e-3,
        }
    }

    #[test]
    fn gates_are_the_inner_parameters() {
        let r = Anrl::new(cfg(), 4, Device::Cpu, 1).unwrap();
        assert!(!r.gate_parameters().is_empty());
        for g in r.gate_parameters() {
            assert!(g.contains(".gate.fc"), "{g}");
            assert!(r.network().tensor(g).unwrap().requires_grad());
        }
    }

    /// The exported graph validates and computes exactly what the recipe scores with.
    #[test]
    fn deployable_graph_scores_like_the_recipe() {
        let mut r = Anrl::new(cfg(), 4, Device::Cpu, 1).unwrap();
        let b = batch(0);
        for step in 0..2 {
            r.step(&b, &info(step)).unwrap();
        }
        let want = r.score(&b.images).unwrap();
        let d = r.deployable().unwrap();
        assert_eq!(d.graph.outputs.len(), 1);
        let mut m = IrModule::new(d.graph, Device::Cpu, 9).unwrap();
        let w: BTreeMap<String, Tensor> = d.weights.into_iter().collect();
        m.load_tensors(&w, true).unwrap();
        let got = tch::no_grad(|| m.forward(&[&b.images], false).unwrap().remove(0));
        assert_eq!(got.size(), vec![12, 1]);
        let diff = (got.view([-1]) - &want).abs().max().double_value(&[]);
        assert!(diff < 1e-5, "{diff}");
    }

    /// Every loss term is reported and finite, and the meta-train domains' global centroids
    /// are set.
    #[test]
    fn a_step_reports_finite_terms_and_updates_centroids() {
        let mut r = Anrl::new(cfg(), 4, Device::Cpu, 2).unwrap();
        let terms = r.step(&batch(1), &info(0)).unwrap();
        let names: Vec<&str> = terms.iter().map(|(k, _)| k.as_str()).collect();
        for want in ["loss", "trn", "tst", "cls", "depth", "ics", "idc"] {
            assert!(names.contains(&want), "{names:?}");
        }
        assert!(terms.iter().all(|(_, v)| v.is_finite()), "{terms:?}");
        // Two meta-train domains saw both classes.
        let seen = r.centroids.seen().sum(Kind::Float).double_value(&[]);
        assert_eq!(seen, 4.0);
    }

    #[test]
    fn one_domain_is_refused() {
        let mut r = Anrl::new(cfg(), 4, Device::Cpu, 2).unwrap();
        let mut b = batch(1);
        b.domains = Tensor::zeros([12], (Kind::Int64, Device::Cpu));
        let e = r.step(&b, &info(0)).err().unwrap().to_string();
        assert!(e.contains("source domains"), "{e}");
    }

    /// Saving the state and loading it into a fresh recipe continues identically.
    #[test]
    fn state_round_trip_continues_identically() {
        let mut a = Anrl::new(cfg(), 4, Device::Cpu, 3).unwrap();
        let b = batch(2);
        a.step(&b, &info(0)).unwrap();
        let saved: BTreeMap<String, Tensor> = a
            .state()
            .into_iter()
            .map(|(k, t)| (k, t.detach().copy()))
            .collect();
        // Same seed (the run's seed also fixes the meta-split order); the weights still come
        // from the state, since `a` has stepped away from its initialisation.
        let mut c = Anrl::new(cfg(), 4, Device::Cpu, 3).unwrap();
        c.load_state(&saved).unwrap();
        let la = a.step(&b, &info(1)).unwrap();
        let lc = c.step(&b, &info(1)).unwrap();
        assert_eq!(la, lc);
        assert!(a
            .score(&b.images)
            .unwrap()
            .equal(&c.score(&b.images).unwrap()));
    }
    /// Training on one fixed batch lowers the total loss: the mean over the first round
    /// of meta-splits (3 steps, every domain meta-test once) against the last round.
    #[test]
    fn training_reduces_the_loss() {
        let mut r = Anrl::new(cfg(), 4, Device::Cpu, 5).unwrap();
        let b = batch(4);
        let losses: Vec<f64> = (0..15)
            .map(|s| {
                let t = r.step(&b, &info(s)).unwrap();
                t.iter().find(|(k, _)| k == "loss").unwrap().1
            })
            .collect();
        assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
        let first: f64 = losses[..3].iter().sum::<f64>() / 3.0;
        let last: f64 = losses[12..].iter().sum::<f64>() / 3.0;
        assert!(last < 0.8 * first, "{losses:?}");
    }
}
