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

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::{bail, Context, Result};
use fas_core::ir::backbones::{self, BackboneKind, BackboneSpec, LiveProbKind, NormKind};
use fas_core::ir::{Graph, GraphBuilder};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Reduction, Tensor};

use super::{cluster, losses, meta, mmd, Deployable, Recipe, Sampling, StepInfo, TrainBatch};
use crate::data::sampler::MetaSplit;
use crate::nn::{Forward, IrModule};
use crate::train::optim::{Adam, AdamConfig};
use crate::train::run::BatchSource;
use crate::train::state::{StateReader, StateWriter};

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

const INPUT: &str = "input";
const STEM: usize = 64;
const BLOCK: [usize; 3] = [128, 196, 128];
const HEAD: [usize; 2] = [128, 64];
/// θ_M, in the order [`head`] takes them.
const META_PARAMS: [&str; 4] = [
    "meta.adapt.weight",
    "meta.adapt.bias",
    "cls.fc.weight",
    "cls.fc.bias",
];

/// Value names of the training graph.
#[derive(Debug, Clone)]
struct Names {
    logit: String,
    features: String,
    depth: String,
    /// Per stage: (F, F⁺, DRLM node name).
    stages: Vec<(String, String, String)>,
}

impl D2amConfig {
    fn ch(&self, c: usize) -> usize {
        BackboneSpec {
            kind: BackboneKind::DepthNet,
            in_channels: self.in_channels,
            input_size: self.input_size,
            norm: NormKind::Batch,
            width: self.width,
        }
        .channels(c)
    }

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

    /// DepthNet with a DRLM after each stage, the depth head on the `F⁺` path, and the
    /// meta-learner M. Training outputs: logit, pooled features, depth; deploy: `p_live`.
    fn graph(&self, deploy: bool) -> Result<(Graph, Names)> {
        let mut b = GraphBuilder::new("d2am-depth_net-drlm");
        let x = b.input(
            INPUT,
            &[1, self.in_channels, self.input_size, self.input_size],
        );
        let x = b.conv("stem.conv", &x, self.ch(STEM), 3, 1, 1);
        let x = b.bn("stem.bn", &x);
        let mut x = b.relu("stem.relu", &x);
        let r = self.drlm_reduction.min(self.ch(BLOCK[2])).max(1);
        let mut stages = Vec::new();
        for blk in 1..=3 {
            for (i, &c) in BLOCK.iter().enumerate() {
                let i = i + 1;
                let y = b.conv(&format!("block{blk}.conv{i}"), &x, self.ch(c), 3, 1, 1);
                let y = b.bn(&format!("block{blk}.bn{i}"), &y);
                x = b.relu(&format!("block{blk}.relu{i}"), &y);
            }
            let f = b.max_pool(&format!("block{blk}.pool"), &x, 3, 2, 1);
            let drlm = format!("block{blk}.drlm");
            let fp = b.se(&drlm, &f, r);
            stages.push((f, fp.clone(), drlm));
            x = fp;
        }
        let low = b.avg_pool("block1.resize", &stages[0].1, 4, 4, 0);
        let mid = b.avg_pool("block2.resize", &stages[1].1, 2, 2, 0);
        let cat = b.concat("concat", &[&low, &mid, &stages[2].1], 1);
        let mut y = cat.clone();
        for (i, &c) in HEAD.iter().enumerate() {
            let i = i + 1;
            let z = b.conv(&format!("head.conv{i}"), &y, self.ch(c), 3, 1, 1);
            let z = b.bn(&format!("head.bn{i}"), &z);
            y = b.relu(&format!("head.relu{i}"), &z);
        }
        let y = b.conv_full("head.conv3", &y, 1, 3, 1, 1, 1, true);
        let depth = b.sigmoid("depth", &y);
        let g = b.global_avg_pool("gap", &cat);
        let features = b.flatten("flatten", &g);
        let h = b.linear("meta.adapt", &features, self.adapt_dim, true);
        let h = b.relu("meta.relu", &h);
        let logit = b.linear("cls.fc", &h, 1, true);
        if deploy {
            let p = backbones::live_prob(&mut b, &logit, LiveProbKind::Sigmoid)?;
            b.output(&p);
        } else {
            b.output(&logit);
            b.output(&features);
            b.output(&depth);
        }
        Ok((
            b.finish()?,
            Names {
                logit,
                features,
                depth,
                stages,
            },
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// The pieces of the objective (pure functions of tensors, tested below)

/// BCE with logits against `labels` (1 = live), in the logit's dtype.
fn bce(logit: &Tensor, labels: &Tensor) -> Tensor {
    logit.view([-1]).binary_cross_entropy_with_logits::<Tensor>(
        &labels.to_kind(logit.kind()),
        None,
        None,
        Reduction::Mean,
    )
}

/// Eq. 7: the mean negative binary entropy `P log P + (1−P) log(1−P)` of `P = σ(logit)`,
/// computed stably with log-sigmoids. Minimum `−ln 2` at `P = ½`, zero as `P → 0` or 1.
pub fn neg_entropy(logit: &Tensor) -> Tensor {
    let p = logit.sigmoid();
    let lp = logit.log_sigmoid();
    let lq = (-logit).log_sigmoid();
    let q: Tensor = 1.0 - &p;
    (&p * lp + q * lq).mean(logit.kind())
}

/// M: adaptation features `h` and the live logit from pooled features and θ_M
/// (order of [`META_PARAMS`]).
pub fn head(features: &Tensor, theta: &[Tensor]) -> (Tensor, Tensor) {
    let h = features.linear(&theta[0], Some(&theta[1]));
    let logit = h.relu().linear(&theta[2], Some(&theta[3]));
    (h, logit)
}

/// The hyper-parameters of the meta objective.
#[derive(Debug, Clone, Copy)]
pub struct MetaParams {
    /// α.
    pub inner_lr: f64,
    /// λ_m.
    pub mmd_weight: f64,
    pub second_order: bool,
}

/// The terms of [`meta_objective`].
pub struct MetaTerms {
    /// `Σᵢ L_cls` on the meta-train domains.
    pub trn_cls: Tensor,
    /// `Σᵢ L_MMD` on the meta-train domains.
    pub trn_mmd: Tensor,
    /// `Σᵢ L_cls(θ_M'ᵢ)` on the meta-test domain (zero without one).
    pub tst_cls: Tensor,
    pub tst_mmd: Tensor,
    /// `Σᵢ (L_cls + λ_m L_MMD)ᵢ + Σᵢ (L_cls + λ_m L_MMD)(θ_M'ᵢ)` (Eq. 11–13's meta part).
    pub total: Tensor,
}

/// Eq. 11–12: `trn` holds `(features, labels)` of every meta-train domain, `tst` those of
/// the meta-test domain; `mmd_to_prior(h)` is `L_MMD` of adaptation features (`None`: the
/// MMD is not computed, its terms stay zero — the "without MMD" ablation). θ_M are
/// `theta` (leaves that require grad, or tensors that depend on such).
pub fn meta_objective(
    theta: &[Tensor],
    trn: &[(Tensor, Tensor)],
    tst: Option<&(Tensor, Tensor)>,
    p: MetaParams,
    mmd_to_prior: Option<&dyn Fn(&Tensor) -> Tensor>,
) -> MetaTerms {
    let like = &theta[0];
    let zero = || Tensor::zeros([], (like.kind(), like.device()));
    let (mut trn_cls, mut trn_mmd, mut tst_cls, mut tst_mmd) = (zero(), zero(), zero(), zero());
    let mut total = zero();
    for (f, y) in trn {
        let (h, logit) = head(f, theta);
        let cls = bce(&logit, y);
        let inner = match mmd_to_prior {
            Some(f) => {
                let m = f(&h);
                trn_mmd += &m;
                &cls + &m * p.mmd_weight
            }
            None => cls.shallow_clone(),
        };
        trn_cls += &cls;
        total += &inner;
        if let Some((ft, yt)) = tst {
            // θ_M'ᵢ = θ_M − α ∇ (L_cls + λ_m L_MMD) (Eq. 11).
            let adapted = meta::inner_step(&inner, theta, p.inner_lr, p.second_order);
            let (ht, lt) = head(ft, &adapted);
            let c = bce(&lt, yt);
            match mmd_to_prior {
                Some(f) => {
                    let m = f(&ht);
                    total += &c + &m * p.mmd_weight;
                    tst_mmd += m;
                }
                None => total += &c,
            }
            tst_cls += c;
        }
    }
    MetaTerms {
        trn_cls,
        trn_mmd,
        tst_cls,
        tst_mmd,
        total,
    }
}

/// Per-channel mean and standard deviation over the spatial dimensions (instance-norm
/// statistics, Eq. 1–2): `[N, C, H, W]` → (`[N, C]`, `[N, C]`).
pub fn channel_stats(x: &Tensor) -> (Tensor, Tensor) {
    let mu = x.mean_dim([2i64, 3].as_slice(), false, x.kind());
    let var = x.var_dim([2i64, 3].as_slice(), false, false);
    (mu, (var + 1e-6).sqrt())
}

// ---------------------------------------------------------------------------------------------
// Pseudo-domains

/// One epoch's pseudo-domain assignment and what is needed to assign unseen rows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Clustering {
    epoch: usize,
    /// `(dataset index, pseudo-domain)`, sorted by index.
    assign: Vec<(usize, usize)>,
    /// Domain features from the pre-DRLM maps `F`, all channels (epoch 0), or from `F⁻`.
    pre_drlm: bool,
    /// Channels per stage that make up `df`.
    channels: Vec<Vec<usize>>,
    /// z-scoring of `df`.
    mean: Vec<f64>,
    std: Vec<f64>,
    /// `centroids[label][domain]` in z-scored `df` space (label 0 = spoof, 1 = live).
    centroids: Vec<Vec<Vec<f64>>>,
}

/// One `[N, C]` tensor as host rows.
type Rows = Vec<Vec<f64>>;
/// Per stage: (channel means, channel stds) of every row, and the DRLM attention.
type StageStats = (Vec<(Rows, Rows)>, Vec<Rows>);

/// Per-sample statistics gathered by the survey.
struct Surveyed {
    index: usize,
    label: usize,
    true_domain: usize,
    /// Per stage: channel means and stds of the map clustering uses.
    stats: Vec<(Vec<f64>, Vec<f64>)>,
    /// Per stage: the DRLM attention `a`.
    attention: Vec<Vec<f64>>,
}

fn rows_f64(t: &Tensor) -> Result<Vec<Vec<f64>>> {
    let t = t.to_kind(Kind::Double).to_device(Device::Cpu).contiguous();
    let c = t.size()[1] as usize;
    let v = Vec::<f64>::try_from(&t.view([-1]))?;
    Ok(v.chunks(c.max(1)).map(<[f64]>::to_vec).collect())
}

/// The "random domains" ablation: the pseudo-domain of dataset sample `index` in `epoch`,
/// uniform in `0..k` — a pure function of `(seed, epoch, index)`, so resumed runs and the
/// survey agree with the training steps.
pub fn random_domain(seed: u64, epoch: usize, index: usize, k: usize) -> usize {
    use rand::{Rng, SeedableRng};
    let mix = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (epoch as u64)
            .wrapping_add(1)
            .wrapping_mul(0xD1B5_4A32_D192_ED03)
        ^ (index as u64)
            .wrapping_add(1)
            .wrapping_mul(0xA24B_AED4_963E_E407);
    rand_chacha::ChaCha8Rng::seed_from_u64(mix).random_range(0..k.max(1))
}

/// The epoch report's NMI with the true domains and the pseudo-domain sizes.
fn report_against_truth(labels: &[usize], truth: &[usize], k: usize) -> Vec<(String, f64)> {
    let mut report = vec![("pseudo_nmi_true".to_string(), cluster::nmi(labels, truth))];
    for d in 0..k {
        let size = labels.iter().filter(|&&l| l == d).count();
        report.push((format!("pseudo_domain_{d}"), size as f64));
    }
    report
}

impl Clustering {
    fn lookup(&self) -> HashMap<usize, usize> {
        self.assign.iter().copied().collect()
    }

    /// `df` of one sample from per-stage stats, z-scored.
    fn df(&self, stats: &[(Vec<f64>, Vec<f64>)]) -> Vec<f64> {
        let mut v = Vec::new();
        for ((mu, sd), ch) in stats.iter().zip(&self.channels) {
            v.extend(ch.iter().map(|&c| mu[c]));
            v.extend(ch.iter().map(|&c| sd[c]));
        }
        v.iter()
            .zip(self.mean.iter().zip(&self.std))
            .map(|(x, (m, s))| (x - m) / s)
            .collect()
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

    /// DRLM attention `a` of stage `k` from its input map (Eq. 4), `[N, C]`.
    fn attention(&self, k: usize, f: &Tensor) -> Result<Tensor> {
        let node = &self.names.stages[k].2;
        let w = |s: &str| {
            self.net
                .tensor(&format!("{node}.{s}"))
                .with_context(|| format!("DRLM weight {node}.{s}"))
        };
        let pooled = f.mean_dim([2i64, 3].as_slice(), false, Kind::Float);
        Ok(pooled
            .linear(w("fc1.weight")?, Some(w("fc1.bias")?))
            .relu()
            .linear(w("fc2.weight")?, Some(w("fc2.bias")?))
            .sigmoid())
    }

    /// Per-stage statistics of the clustering map (`F` pre-DRLM, else `F⁻`) and attention.
    fn stage_stats(&self, out: &BTreeMap<String, Tensor>, pre_drlm: bool) -> Result<StageStats> {
        let mut stats = Vec::new();
        let mut att = Vec::new();
        for (k, (f, fp, _)) in self.names.stages.iter().enumerate() {
            let (f, fp) = (out[f].detach(), out[fp].detach());
            let m = if pre_drlm {
                f.shallow_clone()
            } else {
                &f - &fp
            };
            let (mu, sd) = channel_stats(&m);
            stats.push((rows_f64(&mu)?, rows_f64(&sd)?));
            att.push(rows_f64(&self.attention(k, &f)?)?);
        }
        Ok((stats, att))
    }

    /// Runs the network over the survey (eval mode, no gradients).
    fn survey(&self, data: &dyn BatchSource, pre_drlm: bool) -> Result<Vec<Surveyed>> {
        let it = data.survey(self.cfg.cluster_samples)?.context(
            "D²AM clusters the training set at every epoch start, but this batch source \
             cannot survey it — use the loop's SampledSource with its training pool",
        )?;
        let wants = self.wants();
        let mut all = Vec::new();
        for b in it {
            let b = b.context("loading the D²AM clustering survey")?;
            let labels = Vec::<i64>::try_from(&b.labels.to_device(Device::Cpu))?;
            let doms = Vec::<i64>::try_from(&b.domains.to_device(Device::Cpu))?;
            let (stats, att) = tch::no_grad(|| -> Result<_> {
                let out = self.net.run(&[&b.images], &Forward::eval(), &wants)?;
                self.stage_stats(&out, pre_drlm)
            })?;
            for (i, &index) in b.indices.iter().enumerate() {
                all.push(Surveyed {
                    index,
                    label: labels[i] as usize,
                    true_domain: doms[i] as usize,
                    stats: stats
                        .iter()
                        .map(|(m, s)| (m[i].clone(), s[i].clone()))
                        .collect(),
                    attention: att.iter().map(|a| a[i].clone()).collect(),
                });
            }
        }
        Ok(all)
    }

    /// Whether epoch `epoch` clusters the statistics of all channels of the pre-DRLM maps
    /// `F`: the first epoch (untrained DRLMs), or every epoch without selection.
    fn pre_drlm(&self, epoch: usize) -> bool {
        epoch == 0 || self.cfg.no_selection
    }

    /// `(dataset index, true domain)` of the surveyed samples, without running the network
    /// (the random-domains ablation only reports against them).
    fn survey_domains(&self, data: &dyn BatchSource) -> Result<Vec<(usize, usize)>> {
        let it = data.survey(self.cfg.cluster_samples)?.context(
            "D²AM reports its random pseudo-domains against a survey of the training set, \
             but this batch source cannot survey it — use the loop's SampledSource with its \
             training pool",
        )?;
        let mut all = Vec::new();
        for b in it {
            let b = b.context("loading the D²AM survey")?;
            let doms = Vec::<i64>::try_from(&b.domains.to_device(Device::Cpu))?;
            all.extend(
                b.indices
                    .iter()
                    .copied()
                    .zip(doms.iter().map(|&d| d as usize)),
            );
        }
        Ok(all)
    }

    /// The random-domains ablation's epoch: every surveyed sample's [`random_domain`], and
    /// the same report as clustering (NMI with the previous epoch's and the true domains).
    fn random_epoch(&self, epoch: usize, s: &[(usize, usize)]) -> (Clustering, Vec<(String, f64)>) {
        let k = self.cfg.clusters;
        let labels: Vec<usize> = s
            .iter()
            .map(|&(i, _)| random_domain(self.seed, epoch, i, k))
            .collect();
        let mut report = Vec::new();
        if epoch > 0 {
            let prev: Vec<usize> = s
                .iter()
                .map(|&(i, _)| random_domain(self.seed, epoch - 1, i, k))
                .collect();
            report.push(("pseudo_nmi_prev".to_string(), cluster::nmi(&prev, &labels)));
        }
        let truth: Vec<usize> = s.iter().map(|&(_, d)| d).collect();
        report.extend(report_against_truth(&labels, &truth, k));
        let mut assign: Vec<(usize, usize)> = s.iter().map(|&(i, _)| i).zip(labels).collect();
        assign.sort();
        let cl = Clustering {
            epoch,
            assign,
            ..Clustering::default()
        };
        (cl, report)
    }

    /// Clusters the survey into pseudo-domains (Eq. 1–3, K-means per class, pairing and
    /// alignment by Kuhn–Munkres). Returns the clustering and the epoch report.
    fn cluster(&self, epoch: usize, s: &[Surveyed]) -> Result<(Clustering, Vec<(String, f64)>)> {
        let k = self.cfg.clusters;
        let pre_drlm = self.pre_drlm(epoch);
        let nstages = self.names.stages.len();
        // Channels: all (epoch 0, or no selection), else the C/2 with the lowest mean
        // attention.
        let channels: Vec<Vec<usize>> = (0..nstages)
            .map(|st| {
                let c = s[0].stats[st].0.len();
                if pre_drlm {
                    return (0..c).collect();
                }
                let mut mean_a = vec![0.0; c];
                for x in s {
                    for (m, a) in mean_a.iter_mut().zip(&x.attention[st]) {
                        *m += a / s.len() as f64;
                    }
                }
                let mut order: Vec<usize> = (0..c).collect();
                order.sort_by(|&a, &b| mean_a[a].total_cmp(&mean_a[b]).then(a.cmp(&b)));
                let mut keep: Vec<usize> = order[..(c / 2).max(1)].to_vec();
                keep.sort();
                keep
            })
            .collect();
        let mut cl = Clustering {
            epoch,
            pre_drlm,
            channels,
            ..Clustering::default()
        };
        let raw: Vec<Vec<f64>> = s
            .iter()
            .map(|x| {
                let mut v = Vec::new();
                for ((mu, sd), ch) in x.stats.iter().zip(&cl.channels) {
                    v.extend(ch.iter().map(|&c| mu[c]));
                    v.extend(ch.iter().map(|&c| sd[c]));
                }
                v
            })
            .collect();
        let dim = raw[0].len();
        let n = raw.len() as f64;
        cl.mean = (0..dim)
            .map(|j| raw.iter().map(|r| r[j]).sum::<f64>() / n)
            .collect();
        cl.std = (0..dim)
            .map(|j| {
                let v = raw.iter().map(|r| (r[j] - cl.mean[j]).powi(2)).sum::<f64>() / n;
                if v.sqrt() > 1e-12 {
                    v.sqrt()
                } else {
                    1.0
                }
            })
            .collect();
        let df: Vec<Vec<f64>> = raw
            .iter()
            .map(|r| {
                r.iter()
                    .zip(cl.mean.iter().zip(&cl.std))
                    .map(|(x, (m, sd))| (x - m) / sd)
                    .collect()
            })
            .collect();
        // K-means per class (label 0 = spoof, 1 = live).
        let mut per_class = Vec::new();
        for label in [0usize, 1] {
            let idx: Vec<usize> = (0..s.len()).filter(|&i| s[i].label == label).collect();
            let pts: Vec<Vec<f64>> = idx.iter().map(|&i| df[i].clone()).collect();
            let seed = self
                .seed
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(((epoch as u64) << 1) | label as u64);
            let km =
                cluster::kmeans(&pts, k, self.cfg.kmeans_restarts, seed).with_context(|| {
                    format!(
                        "D²AM clustering of the {} samples",
                        if label == 1 { "live" } else { "spoof" }
                    )
                })?;
            per_class.push((idx, km));
        }
        // Pair spoof clusters with live clusters: live cluster j is domain j.
        let cost: Vec<Vec<f64>> = per_class[1]
            .1
            .centroids
            .iter()
            .map(|l| {
                per_class[0]
                    .1
                    .centroids
                    .iter()
                    .map(|sp| l.iter().zip(sp).map(|(a, b)| (a - b) * (a - b)).sum())
                    .collect()
            })
            .collect();
        let live_to_spoof = cluster::kuhn_munkres(&cost);
        let mut spoof_domain = vec![0; k];
        for (d, &j) in live_to_spoof.iter().enumerate() {
            spoof_domain[j] = d;
        }
        let mut labels = vec![0usize; s.len()];
        for (&i, &c) in per_class[0].0.iter().zip(&per_class[0].1.labels) {
            labels[i] = spoof_domain[c];
        }
        for (&i, &c) in per_class[1].0.iter().zip(&per_class[1].1.labels) {
            labels[i] = c;
        }
        let mut centroids = vec![vec![Vec::new(); k]; 2];
        for (c, cen) in per_class[0].1.centroids.iter().enumerate() {
            centroids[0][spoof_domain[c]] = cen.clone();
        }
        centroids[1] = per_class[1].1.centroids.clone();
        // Align with the previous epoch's ids.
        let mut report = Vec::new();
        let prev: Vec<(usize, usize)> = s
            .iter()
            .zip(&labels)
            .filter_map(|(x, &l)| self.lookup.get(&x.index).map(|&p| (p, l)))
            .collect();
        if !prev.is_empty() {
            let (p, nw): (Vec<usize>, Vec<usize>) = prev.iter().copied().unzip();
            let perm = cluster::align_labels(&p, &nw, k);
            for l in labels.iter_mut() {
                *l = perm[*l];
            }
            for cls in centroids.iter_mut() {
                let old = cls.clone();
                for (d, c) in old.into_iter().enumerate() {
                    cls[perm[d]] = c;
                }
            }
            let nw: Vec<usize> = nw.iter().map(|&l| perm[l]).collect();
            report.push(("pseudo_nmi_prev".to_string(), cluster::nmi(&p, &nw)));
        }
        let truth: Vec<usize> = s.iter().map(|x| x.true_domain).collect();
        report.extend(report_against_truth(&labels, &truth, k));
        let mut assign: Vec<(usize, usize)> = s
            .iter()
            .map(|x| x.index)
            .zip(labels.iter().copied())
            .collect();
        assign.sort();
        cl.assign = assign;
        cl.centroids = centroids;
        Ok((cl, report))
    }

    /// Pseudo-domain of every batch row: the surveyed ones from the map, the rest by the
    /// nearest centroid of their class.
    fn batch_domains(
        &self,
        batch: &TrainBatch,
        labels: &[i64],
        out: &BTreeMap<String, Tensor>,
    ) -> Result<Vec<usize>> {
        let n = labels.len();
        if self.cfg.domains == DomainSource::True {
            let doms = Vec::<i64>::try_from(&batch.domains.to_device(Device::Cpu))?;
            return Ok(doms.into_iter().map(|d| d as usize).collect());
        }
        let cl = self.clustering.as_ref().context(
            "D²AM has no pseudo-domains yet — the loop must call start_epoch_with_data first",
        )?;
        if self.cfg.domains == DomainSource::Random {
            if batch.indices.len() != n {
                bail!(
                    "D²AM random domains are drawn per dataset sample, but this batch has {} \
                     indices for {n} rows",
                    batch.indices.len()
                );
            }
            let k = self.cfg.clusters;
            return Ok(batch
                .indices
                .iter()
                .map(|&i| random_domain(self.seed, cl.epoch, i, k))
                .collect());
        }
        let known: Vec<Option<usize>> = (0..n)
            .map(|i| {
                batch
                    .indices
                    .get(i)
                    .and_then(|ix| self.lookup.get(ix))
                    .copied()
            })
            .collect();
        if known.iter().all(Option::is_some) {
            return Ok(known.into_iter().map(|d| d.expect("checked")).collect());
        }
        let (stats, _) = self.stage_stats(out, cl.pre_drlm)?;
        Ok((0..n)
            .map(|i| {
                known[i].unwrap_or_else(|| {
                    let s: Vec<(Vec<f64>, Vec<f64>)> = stats
                        .iter()
                        .map(|(m, sd)| (m[i].clone(), sd[i].clone()))
                        .collect();
                    cluster::nearest(&cl.centroids[labels[i].clamp(0, 1) as usize], &cl.df(&s))
                })
            })
            .collect())
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

    fn set_clustering(&mut self, cl: Clustering) {
        self.lookup = cl.lookup();
        self.clustering = Some(cl);
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
