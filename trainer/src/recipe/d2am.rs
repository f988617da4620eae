//! D²AM: "Generalizable Representation Learning for Mixture Domain Face Anti-Spoofing"
//! (Chen et al., AAAI 2021), re-implemented from the paper's description (no reference code
//! was used). Equation numbers follow the paper. No domain labels are used for training: the
//! sources are treated as one mixture and split into pseudo-domains by clustering.
//!
//! * **Feature extractor E** — the DepthNet backbone (as ANRL's, BatchNorm) with a
//!   **Domain Representation Learning Module (DRLM)** after each of its three stages
//!   (Eq. 4–6): a squeeze-excitation gate `a = σ(W₂ ReLU(W₁ pool(F)))` (the IR's
//!   `Op::SqueezeExcite`, exported as-is), `F⁺ = a·F` continues through the network,
//!   `F⁻ = (1−a)·F = F − F⁺` is computed in tch only while training.
//! * **Entropy loss** (Eq. 7) — per stage a live/spoof predictor `P = σ(W_p pool(F⁻))`;
//!   `L_p = mean[P log P + (1−P) log(1−P)]` (negative binary entropy, minimised by E and the
//!   DRLMs, `W_p` held fixed in this term), so `F⁻` carries as little liveness evidence as
//!   possible. `W_p` itself is trained by BCE on the detached `pool(F⁻)` — Eq. 7 alone
//!   would let `W_p → 0` and make the term meaningless. Weight `λ_p = 0.1`.
//! * **Domain features and clustering** (Eq. 1–3) — `df(x)` is the channel-wise mean and
//!   standard deviation (instance-normalisation statistics) of the three stage maps,
//!   restricted to the `C/2` channels of `F⁻` with the lowest mean DRLM attention (the
//!   domain-discriminative half), z-scored per dimension over the surveyed samples. At the
//!   start of every epoch ([`Recipe::start_epoch_with_data`]) up to `cluster_samples`
//!   training samples (un-augmented, [`BatchSource::survey`]) are clustered with K-means
//!   (K = 3, k-means++, deterministic per seed and epoch, [`cluster::kmeans`]) separately for
//!   live and for spoof samples; the live and spoof clusters are paired by Kuhn–Munkres on
//!   centroid distance into K pseudo-domains, and the ids are aligned with the previous
//!   epoch's by Kuhn–Munkres on the contingency table ([`cluster::align_labels`]), so they do
//!   not permute. **First epoch:** the paper uses an ImageNet-pretrained network; no such
//!   weights exist here, so epoch 0 uses the statistics of all channels of the pre-DRLM
//!   stage maps `F` of the randomly initialised (not yet trained) network. A batch row that
//!   was not surveyed (more training samples than `cluster_samples`) goes to the nearest
//!   centroid of its class, from its current features.
//! * **Meta-learner M** — an adaptation layer `h = W_a f + b_a` on the pooled features and
//!   the classifier `logit = W_c ReLU(h) + b_c`, `p_live = σ(logit)`; `L_cls` is BCE.
//!   **MMD** (Eq. 9, [`mmd`]): `L_MMD = MMD²(h, z)`, `z ~ N(0, I)` drawn afresh for every
//!   evaluation from a generator seeded by (run seed, step), Gaussian kernels.
//! * **Depth estimator D** — DepthNet's depth head on the concatenated `F⁺` stages,
//!   `L_dep` pixel-wise MSE against the depth map, zero for spoof (Eq. 10).
//! * **Meta-learning** (Eq. 11–13) — every step the pseudo-domains present in the batch
//!   are split by [`MetaSplit`] into K−1 meta-train and one meta-test domain. For every
//!   meta-train domain `i`: `θ_M'ᵢ = θ_M − α∇_{θ_M}(L_cls + λ_m L_MMD)` on its rows (Eq. 11);
//!   meta-test: `L_tst = Σᵢ (L_cls + λ_m L_MMD)(meta-test rows; θ_M'ᵢ)` (Eq. 12); update
//!   (Eq. 13) of θ_E, θ_M, θ_D (and the DRLMs, `W_p`) with one Adam step on
//!   `Σᵢ L_trnᵢ + L_tst + λ_d L_dep + λ_p L_p` (+ the `W_p` BCE). **Second order**: the
//!   inner gradient is taken with `create_graph`, so the meta-gradient includes the Hessian
//!   terms (checked against finite differences in the tests); `second_order: false` gives
//!   first-order MAML. The backbone runs once per step on the whole batch (θ_M' only changes
//!   the head, so the meta-test pass re-runs just M). α = 1e-3, λ_m = 0.05; the paper's
//!   outer rate β = 1e-4 is the CLI default `--lr` for this recipe.
//!
//! Per epoch the recipe reports the NMI between successive pseudo-domain assignments
//! (`pseudo_nmi_prev`) and against the true source domains (`pseudo_nmi_true`); the true
//! domains are read from the survey for that report only, never for training (the batches'
//! `domains` are ignored; the recipe maps `TrainBatch::indices` to its pseudo-domains).
//!
//! **Ablations** (the paper's Table 4 rows; config fields, `--ablate` / `--clusters` on the
//! CLI): `domains: True` meta-learns over the manifest's real source domains (no survey, no
//! clustering, no epoch report — an NMI against the true labels would be 1 by
//! construction); `domains: Random` gives every sample a uniformly random pseudo-domain in
//! `0..K` per epoch ([`random_domain`]; the epoch report still gives its NMI with the
//! previous epoch and the true domains, ≈ 0); `no_selection` clusters every epoch on all
//! channels of the pre-DRLM `F` (as epoch 0 does) — the DRLM attention then plays no part
//! in the domain features, neither the `F⁻ = (1−a)·F` re-weighting nor the `C/2`
//! lowest-attention channel pick; `no_entropy` drops `L_p` and the `W_p` BCE; `no_mmd`
//! drops `L_MMD`. Dropped terms are not computed and not logged. `clusters` is K.
//!
//! Deployed model: E with the DRLM `F⁺` path + M → `p_live` (sigmoid of the logit); the
//! depth head is in the graph but only `p_live` is an output.
//!
//! [`cluster::kmeans`]: super::cluster::kmeans
//! [`cluster::align_labels`]: super::cluster::align_labels

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use super::{losses, mmd, Deployable, Recipe, Sampling, StepInfo, TrainBatch};
use crate::data::sampler::MetaSplit;
use crate::nn::{Forward, IrModule};
use crate::train::optim::{Adam, AdamConfig};
use crate::train::run::BatchSource;
use crate::train::state::{StateReader, StateWriter};

mod domains;
mod network;
mod objective;

pub use domains::random_domain;
use domains::Clustering;
use network::Names;
use objective::{bce, META_PARAMS};
pub use objective::{channel_stats, head, meta_objective, neg_entropy, MetaParams, MetaTerms};

/// Everything that defines a D²AM model and its optimisation (stored in the run dir).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct D2amConfig {
    /// 6 (RGB + HSV, as the paper) or 3.
    pub in_channels: usize,
    /// 256 in the paper; smaller multiples of 16 for tests.
    pub input_size: usize,
    /// DepthNet channel-width multiplier.
    pub width: f32,
    /// DRLM gate reduction `r` (hidden width `C/r`).
    pub drlm_reduction: usize,
    /// Width of the adaptation layer `h` (the MMD-regularised features).
    pub adapt_dim: usize,
    /// K, the number of pseudo-domains.
    pub clusters: usize,
    /// At most this many training samples are surveyed and clustered per epoch.
    pub cluster_samples: usize,
    /// k-means++ restarts per clustering (the lowest inertia is kept).
    pub kmeans_restarts: usize,
    /// α, the inner step size of θ_M (Eq. 11).
    pub inner_lr: f64,
    /// λ_m, weight of the MMD term (Eq. 9).
    pub mmd_weight: f64,
    /// λ_p, weight of the DRLM entropy loss (Eq. 7).
    pub entropy_weight: f64,
    /// λ_d, weight of the depth loss (Eq. 10).
    pub depth_weight: f64,
    /// Gaussian-kernel bandwidth factors of the MMD ([`mmd`]).
    pub mmd_bandwidths: Vec<f64>,
    /// Differentiate through the inner step (second-order MAML).
    pub second_order: bool,
    /// Where the meta-learning's domains come from (the paper: [`DomainSource::Clusters`]).
    #[serde(default)]
    pub domains: DomainSource,
    /// Ablation "without selection": cluster on the statistics of **all** channels of the
    /// pre-DRLM maps `F` every epoch (what epoch 0 always does), instead of the `C/2`
    /// lowest-attention channels of `F⁻`. Only with [`DomainSource::Clusters`].
    #[serde(default)]
    pub no_selection: bool,
    /// Ablation "without L_p": the DRLM entropy loss (and the BCE that trains its
    /// predictors `W_p`) is not computed; `entropy_weight` is ignored (λ_p = 0).
    #[serde(default)]
    pub no_entropy: bool,
    /// Ablation "without MMD": `L_MMD` is not computed; `mmd_weight` is ignored (λ_m = 0).
    #[serde(default)]
    pub no_mmd: bool,
    pub adam: AdamConfig,
    pub grad_clip: Option<f64>,
}

/// Where D²AM's meta-learning domains come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DomainSource {
    /// Pseudo-domains from clustering every epoch (the paper).
    #[default]
    Clusters,
    /// Ablation: the manifest's real source domains (the batches' `domains`); no
    /// clustering, no survey, `clusters` unused, no NMI report.
    True,
    /// Ablation: every sample gets a uniformly random pseudo-domain in `0..clusters` each
    /// epoch ([`random_domain`]); no clustering.
    Random,
}

impl Default for D2amConfig {
    fn default() -> Self {
        D2amConfig {
            in_channels: 6,
            input_size: 256,
            width: 1.0,
            drlm_reduction: 16,
            adapt_dim: 128,
            clusters: 3,
            cluster_samples: 4096,
            kmeans_restarts: 4,
            inner_lr: 1e-3,
            mmd_weight: 0.05,
            entropy_weight: 0.1,
            depth_weight: 1.0,
            mmd_bandwidths: mmd::BANDWIDTHS.to_vec(),
            second_order: true,
            domains: DomainSource::Clusters,
            no_selection: false,
            no_entropy: false,
            no_mmd: false,
            adam: AdamConfig::default(),
            grad_clip: None,
        }
    }
}

/// The paper's outer learning rate β.
pub const DEFAULT_LR: f64 = 1e-4;

impl D2amConfig {
    fn check(&self) -> Result<()> {
        for (name, v) in [
            ("inner_lr", self.inner_lr),
            ("mmd_weight", self.mmd_weight),
            ("entropy_weight", self.entropy_weight),
            ("depth_weight", self.depth_weight),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                bail!("D²AM {name} must be a finite number ≥ 0, got {v}");
            }
        }
        if self.clusters < 2 {
            bail!(
                "D²AM clusters must be ≥ 2 (one meta-test and at least one meta-train \
                 pseudo-domain; the paper uses 3), got {}",
                self.clusters
            );
        }
        if self.no_selection && self.domains != DomainSource::Clusters {
            bail!(
                "D²AM no_selection changes which features are clustered; it does not apply \
                 with domains = {:?} (no clustering) — drop one of the two",
                self.domains
            );
        }
        if self.cluster_samples < 2 * self.clusters {
            bail!(
                "D²AM cluster_samples ({}) must be at least 2 × clusters ({})",
                self.cluster_samples,
                self.clusters
            );
        }
        if self.input_size < 16 || !self.input_size.is_multiple_of(16) {
            bail!(
                "D²AM input_size must be a multiple of 16 (≥ 16), got {} — e.g. 256 or 32",
                self.input_size
            );
        }
        if self.adapt_dim == 0 || self.drlm_reduction == 0 {
            bail!("D²AM adapt_dim and drlm_reduction must be ≥ 1");
        }
        if self.mmd_bandwidths.is_empty() || self.mmd_bandwidths.iter().any(|&s| s <= 0.0) {
            bail!("D²AM mmd_bandwidths must be non-empty and positive");
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The recipe

/// D²AM recipe state.
pub struct D2am {
    cfg: D2amConfig,
    net: IrModule,
    names: Names,
    /// `W_p`, `b_p` of the per-stage live/spoof predictors on `pool(F⁻)` (training only).
    predictors: Vec<(Tensor, Tensor)>,
    clustering: Option<Clustering>,
    lookup: HashMap<usize, usize>,
    seed: u64,
    opt: Adam,
}

impl D2am {
    pub fn new(cfg: D2amConfig, device: Device, seed: u64) -> Result<D2am> {
        cfg.check()?;
        let (graph, names) = cfg.graph(false)?;
        let net = IrModule::new(graph, device, seed)?;
        let shapes = net.graph().infer_shapes()?;
        tch::manual_seed(seed as i64 ^ 0x0d2a);
        let predictors: Vec<(Tensor, Tensor)> = names
            .stages
            .iter()
            .map(|(f, _, _)| {
                let c = shapes[f][1] as i64;
                let bound = 1.0 / (c as f64).sqrt();
                let w = (Tensor::rand([1, c], (Kind::Float, Device::Cpu)) * 2.0 - 1.0) * bound;
                let b = Tensor::zeros([1], (Kind::Float, Device::Cpu));
                (
                    w.to_device(device).set_requires_grad(true),
                    b.to_device(device).set_requires_grad(true),
                )
            })
            .collect();
        let mut params: Vec<(String, Tensor)> = net
            .parameters()
            .iter()
            .map(|(k, t)| (k.clone(), t.shallow_clone()))
            .collect();
        for (k, (w, b)) in predictors.iter().enumerate() {
            params.push((format!("drlm_p.{k}.weight"), w.shallow_clone()));
            params.push((format!("drlm_p.{k}.bias"), b.shallow_clone()));
        }
        let opt = Adam::new(params, cfg.adam);
        Ok(D2am {
            cfg,
            net,
            names,
            predictors,
            clustering: None,
            lookup: HashMap::new(),
            seed,
            opt,
        })
    }

    pub fn config(&self) -> &D2amConfig {
        &self.cfg
    }

    pub fn network(&self) -> &IrModule {
        &self.net
    }

    /// Side of the depth map the depth estimator predicts (the loader's `depth_size`).
    pub fn depth_size(&self) -> Result<u32> {
        let shapes = self.net.graph().infer_shapes()?;
        Ok(shapes[&self.names.depth][2] as u32)
    }

    /// Loads user-provided backbone weights (IR names); missing ones keep their
    /// initialisation.
    pub fn load_backbone_weights(&mut self, path: &std::path::Path) -> Result<()> {
        self.net.load_safetensors(path, false)
    }

    /// The current pseudo-domain of every surveyed training sample (dataset index → id).
    pub fn pseudo_domains(&self) -> BTreeMap<usize, usize> {
        self.lookup.iter().map(|(&k, &v)| (k, v)).collect()
    }

    fn wants(&self) -> Vec<&str> {
        self.names
            .stages
            .iter()
            .flat_map(|(f, fp, _)| [f.as_str(), fp.as_str()])
            .collect()
    }

    fn theta(&self) -> Result<Vec<Tensor>> {
        META_PARAMS
            .iter()
            .map(|n| {
                self.net
                    .tensor(n)
                    .map(Tensor::shallow_clone)
                    .with_context(|| format!("meta-learner weight {n}"))
            })
            .collect()
    }
}

fn rows(t: &Tensor, idx: &Tensor) -> Tensor {
    t.index_select(0, idx)
}

impl Recipe for D2am {
    fn name(&self) -> &'static str {
        "d2am"
    }

    /// Class-balanced batches from the whole source mixture; the recipe groups the rows by
    /// pseudo-domain itself.
    fn sampling(&self) -> Sampling {
        Sampling::ClassBalanced
    }

    fn start_epoch_with_data(
        &mut self,
        epoch: usize,
        data: &dyn BatchSource,
    ) -> Result<Vec<(String, f64)>> {
        // Resumed inside an epoch: the checkpoint holds this epoch's assignment.
        if self.clustering.as_ref().is_some_and(|c| c.epoch == epoch) {
            return Ok(Vec::new());
        }
        match self.cfg.domains {
            // The batches carry the true domains; nothing to prepare or report.
            DomainSource::True => return Ok(Vec::new()),
            DomainSource::Random => {
                let surveyed = self.survey_domains(data)?;
                if surveyed.is_empty() {
                    bail!("D²AM: the survey of the training set is empty");
                }
                let (cl, report) = self.random_epoch(epoch, &surveyed);
                self.set_clustering(cl);
                return Ok(report);
            }
            DomainSource::Clusters => {}
        }
        let surveyed = self.survey(data, self.pre_drlm(epoch))?;
        if surveyed.is_empty() {
            bail!("D²AM: the clustering survey of the training set is empty");
        }
        let (cl, report) = self.cluster(epoch, &surveyed)?;
        self.set_clustering(cl);
        Ok(report)
    }

    fn step(&mut self, batch: &TrainBatch, info: &StepInfo) -> Result<Vec<(String, f64)>> {
        let device = self.net.device();
        let c = self.cfg.clone();
        let labels = Vec::<i64>::try_from(&batch.labels.to_device(Device::Cpu))?;
        let wants = self.wants();
        self.opt.zero_grad();
        let out = self.net.run(&[&batch.images], &Forward::train(), &wants)?;
        let doms = self.batch_domains(batch, &labels, &out)?;

        // Meta split over the pseudo-domains present (Eq. 11–12).
        let present: BTreeSet<usize> = doms.iter().copied().collect();
        let pick = |d: usize| -> Tensor {
            let idx: Vec<i64> = (0..doms.len() as i64)
                .filter(|&i| doms[i as usize] == d)
                .collect();
            Tensor::from_slice(&idx).to_device(device)
        };
        let (trn_doms, tst_dom): (Vec<usize>, Option<usize>) = if present.len() >= 2 {
            let split = MetaSplit::new(present.iter().map(|d| d.to_string()), 1, self.seed)?
                .split(info.step as u64);
            let parse = |v: &[String]| -> Vec<usize> {
                v.iter()
                    .map(|s| s.parse().expect("meta-split names are pseudo-domain ids"))
                    .collect()
            };
            (
                parse(&split.meta_train),
                parse(&split.meta_test).first().copied(),
            )
        } else {
            // One pseudo-domain in this batch: plain training on it, no meta-test.
            (present.iter().copied().collect(), None)
        };
        let feats = &out[&self.names.features];
        let sub = |d: usize| {
            let idx = pick(d);
            (rows(feats, &idx), rows(&batch.labels, &idx))
        };
        let trn: Vec<(Tensor, Tensor)> = trn_doms.iter().map(|&d| sub(d)).collect();
        let tst = tst_dom.map(sub);
        let theta = self.theta()?;
        let bw = c.mmd_bandwidths.clone();
        // Prior samples: a fresh draw per MMD evaluation, a pure function of (seed, step).
        let draws = std::cell::Cell::new(0u64);
        let base = self.seed ^ 0xD2A3_0000_0000_0000 ^ (info.step as u64).wrapping_mul(0x9E37_79B9);
        let prior_mmd = |h: &Tensor| {
            let k = draws.get();
            draws.set(k + 1);
            mmd::mmd2_to_normal(h, &bw, base.wrapping_add(k.wrapping_mul(0x1_0000_0001)))
        };
        let meta = meta_objective(
            &theta,
            &trn,
            tst.as_ref(),
            MetaParams {
                inner_lr: c.inner_lr,
                mmd_weight: if c.no_mmd { 0.0 } else { c.mmd_weight },
                second_order: c.second_order,
            },
            (!c.no_mmd).then_some(&prior_mmd as &dyn Fn(&Tensor) -> Tensor),
        );

        // Depth (Eq. 10).
        let dep = if c.depth_weight > 0.0 {
            let target = batch.depth.as_ref().context(
                "D²AM supervises depth but the data has no depth maps — give depth maps \
                 (SynthFAS writes them) or set --depth-weight 0",
            )?;
            losses::depth_mse(&out[&self.names.depth], target)
        } else {
            Tensor::zeros([], (Kind::Float, device))
        };
        // DRLM entropy (Eq. 7) and the F⁻ live/spoof predictors.
        // Without L_p neither term is computed (W_p then gets no gradient).
        let mut ent = Tensor::zeros([], (Kind::Float, device));
        let mut pcls = Tensor::zeros([], (Kind::Float, device));
        if !c.no_entropy {
            for ((f, fp, _), (w, b)) in self.names.stages.iter().zip(&self.predictors) {
                let neg = &out[f] - &out[fp];
                let pooled = neg.mean_dim([2i64, 3].as_slice(), false, Kind::Float);
                ent += neg_entropy(&pooled.linear(&w.detach(), Some(&b.detach())));
                pcls += bce(&pooled.detach().linear(w, Some(b)), &batch.labels);
            }
            let nst = self.names.stages.len() as f64;
            (ent, pcls) = (ent / nst, pcls / nst);
        }
        let lambda_p = if c.no_entropy { 0.0 } else { c.entropy_weight };

        let total = &meta.total + &dep * c.depth_weight + &ent * lambda_p + &pcls;
        let value = total.double_value(&[]);
        if !value.is_finite() {
            bail!(
                "D²AM loss is {value} at step {} — lower the learning rate or enable --clip",
                info.step
            );
        }
        total.backward();
        let ntrn = trn.len().max(1) as f64;
        // An ablated term is not logged at all (not as a zero), so a log shows what ran.
        let mut terms = vec![
            ("loss".to_string(), value),
            ("cls".to_string(), meta.trn_cls.double_value(&[]) / ntrn),
        ];
        if !c.no_mmd {
            terms.push(("mmd".to_string(), meta.trn_mmd.double_value(&[]) / ntrn));
        }
        terms.push(("tst_cls".to_string(), meta.tst_cls.double_value(&[]) / ntrn));
        if !c.no_mmd {
            terms.push(("tst_mmd".to_string(), meta.tst_mmd.double_value(&[]) / ntrn));
        }
        terms.push(("depth".to_string(), dep.double_value(&[])));
        if !c.no_entropy {
            terms.push(("entropy".to_string(), ent.double_value(&[])));
            terms.push(("drlm_cls".to_string(), pcls.double_value(&[])));
        }
        terms.push(("pseudo_domains".to_string(), present.len() as f64));
        if let Some(m) = c.grad_clip {
            terms.push(("grad_norm".to_string(), self.opt.clip_grad_norm(m)));
        }
        self.opt.step(info.lr);
        Ok(terms)
    }

    fn score(&self, images: &Tensor) -> Result<Tensor> {
        tch::no_grad(|| {
            let out = self.net.run(&[images], &Forward::eval(), &[])?;
            Ok(out[&self.names.logit].view([-1]).sigmoid())
        })
    }

    fn deployable(&self) -> Result<Deployable> {
        let (graph, _) = self.cfg.graph(true)?;
        graph.infer_shapes().context("the D²AM deployable graph")?;
        let weights = self
            .net
            .named_tensors()
            .into_iter()
            .map(|(k, t)| (k, t.detach()))
            .collect();
        Ok(Deployable { graph, weights })
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let mut w = StateWriter::new();
        w.module("net", &self.net);
        for (k, (pw, pb)) in self.predictors.iter().enumerate() {
            w.tensor(&format!("d2am.p.{k}.weight"), pw)
                .tensor(&format!("d2am.p.{k}.bias"), pb);
        }
        if let Some(cl) = &self.clustering {
            let json = serde_json::to_vec(cl).expect("clustering serialises");
            w.tensor("d2am.clustering", &Tensor::from_slice(&json));
        }
        w.adam("opt", &self.opt).finish()
    }

    fn load_state(&mut self, state: &BTreeMap<String, Tensor>) -> Result<()> {
        let r = StateReader::new("d2am", state);
        r.module("net", &mut self.net)?;
        for (k, (w, b)) in self.predictors.iter().enumerate() {
            r.copy(&format!("d2am.p.{k}.weight"), w)?;
            r.copy(&format!("d2am.p.{k}.bias"), b)?;
        }
        match r.get("d2am.clustering") {
            Some(t) => {
                let bytes = Vec::<u8>::try_from(&t.to_kind(Kind::Uint8).to_device(Device::Cpu))?;
                let cl: Clustering = serde_json::from_slice(&bytes)
                    .context("the checkpoint's \"d2am.clustering\" is not a D²AM clustering")?;
                self.set_clustering(cl);
            }
            None => {
                self.clustering = None;
                self.lookup.clear();
            }
        }
        r.adam("opt", &mut self.opt)
    }
}

pub mod setup;

#[cfg(test)]
mod tests;
