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
//! * **Meta-learning** (the paper's meta-train / meta-test / meta-optimisation loop, Alg. 1)
//!   — every iteration splits the source domains of the batch into meta-train and meta-test
//!   sets with [`MetaSplit`] (one meta-test domain by default). Meta-train:
//!   `L_trn = L_cls + λ_d·L_dep + λ_ics·L_ICS` on the meta-train domains, and their global
//!   centroids are updated (Eq. 7). Inner update of the AFNM gate parameters only,
//!   `θ_A' = θ_A − α·∇_{θ_A} L_trn` ([`meta::inner_step`]). Meta-test with `θ_A'` as explicit
//!   parameter tensors of the IR's functional forward (running statistics untouched):
//!   `L_tst = L_cls + λ_d·L_dep + λ_ics·L_ICS + λ_idc·L_IDC`. Meta-optimisation: every
//!   parameter (extractor, gates, depth estimator, classifier) steps on `L_trn + L_tst`.
//!
//! **Second order** (default, as Alg. 1): the inner gradient is taken with `create_graph`,
//! so the meta-gradient of `L_tst(θ_F, θ_A')` includes the Hessian-vector terms — through
//! `∂θ_A'/∂θ_A = I − α∇²_{AA}L_trn` for the gates and the mixed `−α∇²_{FA}L_trn` for every
//! other parameter; the tests check it against central finite differences of the whole
//! objective in f64. `second_order: false` (`--first-order`) detaches the inner gradient
//! (first-order MAML). On the CPU one step of a small configuration (12 × 6×64×64, width 0.5,
//! one thread, `step_cost_first_vs_second_order`) costs ×1.9 second order (two runs on a
//! shared machine: 1.35 → 2.63 s and 0.86 → 1.65 s): the double backward runs through every
//! AFNM of DepthNet. The data path is the same either way.
//!
//! **Ablations** (the paper's ablation rows, `--ablate`, recorded in the model config of
//! `run.json`): `norm: batch` / `instance` (`bn`, `in`) put plain BatchNorm / affine
//! InstanceNorm in every slot — no gate, so the deployed model is the plain network, and
//! those slots' affine weights take the gates' place as θ_A; `no_meta` drops the split and
//! the inner step: one ordinary step on the whole batch with
//! `L_cls + λ_d·L_dep + λ_ics·L_ICS + λ_idc·L_IDC`, where IDC is kept (it has its own switch)
//! and computed for every domain of the batch against the global centroids of the batch's
//! other domains (all updated first) — each domain plays the meta-test domain once;
//! `no_idc` / `no_ics` set the term's weight to 0 and do not compute it (nor log it).
//!
//! The deployed model is DepthNet-AFNM (-BN, -IN under those ablations) + classifier →
//! `p_live` ([`backbones::live_prob`], sigmoid); the depth head is exported too but only `p_live` is an output.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context, Result};
use fas_core::ir::backbones::{self, BackboneKind, BackboneSpec, LiveProbKind, NormKind};
use fas_core::ir::{Graph, GraphBuilder, Op};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use super::losses::{self, DomainCentroids};
use super::{meta, Deployable, Recipe, Sampling, StepInfo, TrainBatch};
use crate::data::sampler::MetaSplit;
use crate::nn::{is_buffer, Forward, IrModule};
use crate::train::optim::{Adam, AdamConfig};
use crate::train::state::{StateReader, StateWriter};

/// What fills every normalisation slot of the feature extractor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnrlNorm {
    /// The paper's AFNM (adaptive BN/IN mix with a learned gate).
    #[default]
    Afnm,
    /// Ablation: plain BatchNorm, no IN branch, no gate.
    Batch,
    /// Ablation: affine InstanceNorm only.
    Instance,
}

impl AnrlNorm {
    fn tag(self) -> &'static str {
        match self {
            AnrlNorm::Afnm => "afnm",
            AnrlNorm::Batch => "bn",
            AnrlNorm::Instance => "in",
        }
    }
}

fn yes() -> bool {
    true
}

/// Everything that defines an ANRL model and its optimisation (stored in the run dir). The
/// fields after `meta_test_domains` default when absent, so run dirs written before they
/// existed still load (and resume).
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
    /// Differentiate through the inner step (the paper's Alg. 1); `false` is first-order
    /// MAML (`--first-order`).
    #[serde(default = "yes")]
    pub second_order: bool,
    /// Normalisation in every slot (`--ablate bn` / `in` replace AFNM).
    #[serde(default)]
    pub norm: AnrlNorm,
    /// Ablation `no-meta`: no meta-train/meta-test split, one ordinary step per batch.
    #[serde(default)]
    pub no_meta: bool,
    /// Ablation `no-idc`: no Inter-Domain Compatible loss (not computed).
    #[serde(default)]
    pub no_idc: bool,
    /// Ablation `no-ics`: no Inter-Class Separable loss (not computed).
    #[serde(default)]
    pub no_ics: bool,
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
            second_order: true,
            norm: AnrlNorm::Afnm,
            no_meta: false,
            no_idc: false,
            no_ics: false,
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
            norm: match self.norm {
                AnrlNorm::Afnm => NormKind::AdaptiveBnIn {
                    reduction: self.afnm_reduction,
                },
                AnrlNorm::Batch => NormKind::Batch,
                AnrlNorm::Instance => NormKind::Instance,
            },
            width: self.width,
        }
    }

    /// `λ_ics`, 0 under `no-ics`.
    fn ics(&self) -> f64 {
        if self.no_ics {
            0.0
        } else {
            self.ics_weight
        }
    }

    /// `λ_idc`, 0 under `no-idc`.
    fn idc(&self) -> f64 {
        if self.no_idc {
            0.0
        } else {
            self.idc_weight
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
        let mut b = GraphBuilder::new(&format!("anrl-depth_net-{}", self.norm.tag()));
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

/// θ_A, the inner-loop parameters: the AFNM gates; under the BN / IN ablations (no gate)
/// the affine parameters of the normalisation slots take their place.
fn inner_parameters(graph: &Graph, norm: AnrlNorm) -> Vec<String> {
    graph
        .nodes
        .iter()
        .filter(|n| {
            matches!(
                (&n.op, norm),
                (Op::AdaptiveBnIn { .. }, AnrlNorm::Afnm)
                    | (Op::BatchNorm2d { .. }, AnrlNorm::Batch)
                    | (Op::InstanceNorm2d { .. }, AnrlNorm::Instance)
            )
        })
        .flat_map(|n| n.op.weights(&n.name))
        .map(|(w, _)| w)
        .filter(|w| !is_buffer(w) && (norm != AnrlNorm::Afnm || w.contains(".gate.")))
        .collect()
}

/// ANRL recipe state.
pub struct Anrl {
    cfg: AnrlConfig,
    net: IrModule,
    logit: String,
    features: String,
    depth: String,
    /// θ_A: the inner-loop parameters ([`inner_parameters`]).
    inner: Vec<String>,
    centroids: DomainCentroids,
    /// Built from the domain indices of the first batch (sorted); rebuilt if they change.
    split: Option<(BTreeSet<i64>, MetaSplit)>,
    seed: u64,
    opt: Adam,
}

/// Some rows of a batch.
struct Part {
    images: Tensor,
    labels: Tensor,
    depth: Option<Tensor>,
    domains: Tensor,
}

impl Part {
    fn rows(batch: &TrainBatch, idx: &Tensor) -> Part {
        Part {
            images: rows(&batch.images, idx),
            labels: rows(&batch.labels, idx),
            depth: batch.depth.as_ref().map(|d| rows(d, idx)),
            domains: rows(&batch.domains, idx),
        }
    }
}

/// The loss terms of one forward pass.
struct Terms {
    cls: Tensor,
    depth: Tensor,
    /// `None` when `λ_ics` is 0 (not computed).
    ics: Option<Tensor>,
    /// L2-normalised features.
    feats: Tensor,
}

/// The pieces of the meta objective `L_trn(θ) + L_tst(θ_A')`.
struct MetaTerms {
    trn: Tensor,
    tst: Tensor,
    tr: Terms,
    te: Terms,
    /// `None` when `λ_idc` is 0 (not computed).
    idc: Option<Tensor>,
}

impl Anrl {
    /// `domains` is the size of the domain index space of the batches
    /// ([`crate::data::loader::Dataset::domain_names`]).
    pub fn new(cfg: AnrlConfig, domains: usize, device: Device, seed: u64) -> Result<Anrl> {
        cfg.check()?;
        let (graph, [logit, features, depth], feature_dim) = cfg.graph(false)?;
        let inner = inner_parameters(&graph, cfg.norm);
        if inner.is_empty() {
            bail!(
                "the ANRL graph ({:?} normalisation) has no inner-loop parameters",
                cfg.norm
            );
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
            inner,
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

    /// θ_A, the inner-loop parameter names: the AFNM gates, or under the BN / IN ablations
    /// the normalisation slots' affine parameters.
    pub fn inner_parameters(&self) -> &[String] {
        &self.inner
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

    fn terms(&self, part: &Part, f: &Forward<'_>) -> Result<Terms> {
        let out = self.net.run(&[&part.images], f, &[])?;
        let cls = losses::bce(&out[&self.logit], &part.labels);
        let depth = if self.cfg.depth_weight > 0.0 {
            let target = part.depth.as_ref().context(
                "ANRL supervises depth but the data has no depth maps — give depth maps \
                 (SynthFAS writes them) or set --depth-weight 0",
            )?;
            losses::depth_mse(&out[&self.depth], target)
        } else {
            Tensor::zeros([], (Kind::Float, part.images.device()))
        };
        let feats = losses::l2_normalize(&out[&self.features]);
        let ics = (self.cfg.ics() > 0.0)
            .then(|| losses::inter_class_separable(&feats, &part.labels, self.cfg.ics_margin));
        Ok(Terms {
            cls,
            depth,
            ics,
            feats,
        })
    }

    /// `L_cls + λ_d·L_dep + λ_ics·L_ICS` of one pass.
    fn objective(&self, t: &Terms) -> Tensor {
        let mut l = &t.cls + &t.depth * self.cfg.depth_weight;
        if let Some(ics) = &t.ics {
            l += ics * self.cfg.ics();
        }
        l
    }

    /// Eq. 6–7: the global centroids of `domains` from the (detached) features of `part`.
    fn update_centroids(&mut self, feats: &Tensor, part: &Part, domains: &[i64]) {
        tch::no_grad(|| {
            let f = feats.detach();
            for &d in domains {
                let idx = part.domains.eq(d).nonzero().view([-1]);
                let (local, present) =
                    losses::class_centroids(&rows(&f, &idx), &rows(&part.labels, &idx));
                self.centroids.update(d, &local, &present);
            }
        });
    }

    /// A weight by IR name: from `base` when given there, else the module's own.
    fn weight(&self, base: Option<&BTreeMap<String, Tensor>>, name: &str) -> Result<Tensor> {
        base.and_then(|b| b.get(name))
            .or_else(|| self.net.tensor(name))
            .map(Tensor::shallow_clone)
            .with_context(|| format!("ANRL weight {name}"))
    }

    /// Alg. 1's meta objective `L_trn(θ) + L_tst(θ_F, θ_A')` with
    /// `θ_A' = θ_A − α∇_{θ_A} L_trn` (second order through the inner step unless
    /// configured first-order). `base` replaces module weights by explicit tensors (the
    /// gradient check runs the whole objective in f64 this way). With `update` the meta-train
    /// pass updates the running statistics and the meta-train domains' global centroids
    /// (Eq. 7, before the meta-test uses them); without it the objective is a pure function
    /// of the weights.
    fn meta_objective(
        &mut self,
        base: Option<&BTreeMap<String, Tensor>>,
        trn: &Part,
        tst: &Part,
        trn_domains: &[i64],
        update: bool,
    ) -> Result<MetaTerms> {
        let f = Forward {
            train: true,
            update_stats: update,
            params: base,
            hook: None,
        };
        let tr = self.terms(trn, &f)?;
        let l_trn = self.objective(&tr);
        if update {
            self.update_centroids(&tr.feats, trn, trn_domains);
        }
        let theta = self
            .inner
            .iter()
            .map(|n| self.weight(base, n))
            .collect::<Result<Vec<_>>>()?;
        let stepped = meta::inner_step(&l_trn, &theta, self.cfg.inner_lr, self.cfg.second_order);
        let mut adapted: BTreeMap<String, Tensor> = base
            .map(|b| {
                b.iter()
                    .map(|(k, t)| (k.clone(), t.shallow_clone()))
                    .collect()
            })
            .unwrap_or_default();
        adapted.extend(self.inner.iter().cloned().zip(stepped));
        // Meta-test with θ_A', running statistics untouched.
        let f = Forward {
            train: true,
            update_stats: false,
            params: Some(&adapted),
            hook: None,
        };
        let te = self.terms(tst, &f)?;
        let mut l_tst = self.objective(&te);
        let idc = (self.cfg.idc() > 0.0).then(|| {
            let (local, present) = losses::class_centroids(&te.feats, &tst.labels);
            self.centroids
                .inter_domain_compatible(&local, &present, trn_domains)
        });
        if let Some(idc) = &idc {
            l_tst += idc * self.cfg.idc();
        }
        Ok(MetaTerms {
            trn: l_trn,
            tst: l_tst,
            tr,
            te,
            idc,
        })
    }

    /// The meta-learning step's objective and its logged terms.
    fn meta_loss(
        &mut self,
        batch: &TrainBatch,
        info: &StepInfo,
    ) -> Result<(Tensor, Vec<(String, f64)>)> {
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
        let p_trn = Part::rows(batch, &pick(&trn));
        let p_tst = Part::rows(batch, &pick(&tst));
        let m = self.meta_objective(None, &p_trn, &p_tst, &trn, true)?;
        let mean = |a: &Tensor, b: &Tensor| (a + b).double_value(&[]) / 2.0;
        let mut terms = vec![
            ("trn".to_string(), m.trn.double_value(&[])),
            ("tst".to_string(), m.tst.double_value(&[])),
            ("cls".to_string(), mean(&m.tr.cls, &m.te.cls)),
            ("depth".to_string(), mean(&m.tr.depth, &m.te.depth)),
        ];
        if let (Some(a), Some(b)) = (&m.tr.ics, &m.te.ics) {
            terms.push(("ics".to_string(), mean(a, b)));
        }
        if let Some(idc) = &m.idc {
            terms.push(("idc".to_string(), idc.double_value(&[])));
        }
        Ok((&m.trn + &m.tst, terms))
    }

    /// The `no-meta` ablation: one ordinary step on the whole batch,
    /// `L_cls + λ_d·L_dep + λ_ics·L_ICS + λ_idc·L_IDC`, where every domain of the batch
    /// plays the meta-test domain of the IDC term against the global centroids of the
    /// batch's other domains (all of which are updated first, Eq. 7).
    fn plain_loss(&mut self, batch: &TrainBatch) -> Result<(Tensor, Vec<(String, f64)>)> {
        let dom: Vec<i64> = Vec::<i64>::try_from(&batch.domains.to_device(Device::Cpu))?;
        let present: Vec<i64> = dom
            .iter()
            .copied()
            .collect::<BTreeSet<i64>>()
            .into_iter()
            .collect();
        let all = Part {
            images: batch.images.shallow_clone(),
            labels: batch.labels.shallow_clone(),
            depth: batch.depth.as_ref().map(Tensor::shallow_clone),
            domains: batch.domains.shallow_clone(),
        };
        let t = self.terms(&all, &Forward::train())?;
        let mut total = self.objective(&t);
        self.update_centroids(&t.feats, &all, &present);
        let mut terms = vec![
            ("cls".to_string(), t.cls.double_value(&[])),
            ("depth".to_string(), t.depth.double_value(&[])),
        ];
        if let Some(ics) = &t.ics {
            terms.push(("ics".to_string(), ics.double_value(&[])));
        }
        if self.cfg.idc() > 0.0 {
            let per_domain: Vec<Tensor> = present
                .iter()
                .map(|&d| {
                    let idx = all.domains.eq(d).nonzero().view([-1]);
                    let (local, flags) =
                        losses::class_centroids(&rows(&t.feats, &idx), &rows(&all.labels, &idx));
                    let others: Vec<i64> = present.iter().copied().filter(|&o| o != d).collect();
                    self.centroids
                        .inter_domain_compatible(&local, &flags, &others)
                })
                .collect();
            let idc = Tensor::stack(&per_domain, 0).mean(Kind::Float);
            terms.push(("idc".to_string(), idc.double_value(&[])));
            total += idc * self.cfg.idc();
        }
        Ok((total, terms))
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
        self.opt.zero_grad();
        let (total, parts) = if self.cfg.no_meta {
            self.plain_loss(batch)?
        } else {
            self.meta_loss(batch, info)?
        };
        // Meta-optimisation: every parameter steps on the total.
        let value = total.double_value(&[]);
        if !value.is_finite() {
            bail!(
                "ANRL loss is {value} at step {} — lower the learning rate or enable --clip",
                info.step
            );
        }
        total.backward();
        let mut terms = vec![("loss".to_string(), value)];
        terms.extend(parts);
        if let Some(m) = self.cfg.grad_clip {
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
        StateWriter::new()
            .module("net", &self.net)
            .part("anrl", self.centroids.state())
            .adam("opt", &self.opt)
            .finish()
    }

    fn load_state(&mut self, state: &BTreeMap<String, Tensor>) -> Result<()> {
        let r = StateReader::new("anrl", state);
        r.module("net", &mut self.net)?;
        r.copy("anrl.centroids", self.centroids.centroids())?;
        r.copy("anrl.centroid_seen", self.centroids.seen())?;
        r.adam("opt", &mut self.opt)
    }
}

pub mod setup;

#[cfg(test)]
mod tests;
