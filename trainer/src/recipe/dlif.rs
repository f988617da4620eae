//! DLIF: "Generalized Face Anti-spoofing via Finer Domain Partition and Disentangling
//! Liveness-irrelevant Factors" (arXiv 2407.08243), re-implemented from the paper's
//! description (no reference code was used). Equation numbers follow the paper.
//!
//! * **Finer domains** — every identity (a manifest `(domain, subject)`) is a domain; batches
//!   hold `k` identities per source dataset × `n` live + `n` spoof samples each
//!   ([`Sampling::Identity`], [`crate::data::sampler::IdentitySampler`]).
//! * **Two encoders** (ResNet-18 from the IR): `U` extracts liveness features `f_u`, read by
//!   the liveness classifier `C` (asymmetric AM-softmax, Eq. 11); `V` extracts identity
//!   features `f_v`, read by the identity classifier `D` (`n_id` training identities, a
//!   linear layer with bias on `Norm(f_v)`, cross-entropy).
//! * **Disentanglement** — [`ortho_loss`] (Eq. 1–2) decorrelates `f_u` and `f_v`;
//!   [`ambiguity_loss`] (Eq. 3–4) makes `D` unable to tell identities from `Norm(f_u)`
//!   (`L_idamb`) and `C` unable to tell liveness from `Norm(f_v)` (`L_liamb`).
//! * **Style Cross** (Eq. 5–7, [`style_cross`]) — parameter-free AdaIN swaps of channel-wise
//!   mean/std between samples with the same liveness label in `U` (LISC) and the same
//!   identity in `V` (IISC), after the low/mid/high ResNet stages (`layer1..3`), in one
//!   cascaded flow (×: one style-crossed copy of the batch, swapped at every chosen level) or
//!   parallel flows (+: one copy per level). Training only.
//! * **Channel-wise Style Attention** (Eq. 8–9) — [`fas_core::ir::Op::StyleAttention`] on `U`'s last
//!   feature map, `a = σ(W2 ReLU(W1 [μ, σ²]))`, `X̂ = a·X + X`; it is part of the deployed
//!   model (and of its ONNX export).
//! * **AAIC** (Eq. 10, [`sup_con`]) — supervised contrastive learning, τ = 0.07, over the
//!   original and style-crossed samples: in `U` every live sample shares one label and each
//!   spoof instance shares a label only with its own style-crossed copies
//!   ([`aaic_fas_labels`]); in `V` all samples of one identity share a label.
//! * **Optimisation** — two Adam optimisers stepped on every batch: `U`+`C` on
//!   `L_FAS = L_cls + L_AAIC^u + L_ortho + L_idamb` (Eq. 12) and `V`+`D` on
//!   `L_FR = L_id + L_AAIC^v + L_ortho + L_liamb` (Eq. 14), all λ = 1 by default. A term
//!   that reads the other branch's network uses it frozen (detached): `L_idamb` moves `U`,
//!   not `D`; `L_liamb` moves `V`, not `C`; each copy of `L_ortho` moves its own encoder.
//!   The paper's schedule (Adam, lr 5e-4 halved every 50 epochs, weight decay 5e-4) is the
//!   CLI default for `--recipe dlif`.
//!
//! Choices where the paper leaves room (documented on the items): the ambiguity terms
//! compare **softmax** probabilities with the uniform distribution (the targets 1/n_id and
//! 1/2 are probabilities, so the outputs must be too; raw logits have no scale to compare);
//! the Style Cross statistics are detached (as MixStyle does), so the swap is a pure
//! augmentation and does not back-propagate into the partner's statistics; `L_ortho` uses
//! the original (not style-crossed) rows, whose `f_u`/`f_v` come from the same image, while
//! `L_cls`, `L_id`, AAIC and the ambiguity terms use every row (original and style-crossed);
//! one CWSA module sits on `U`'s last map (ResNet-18 `layer4`, before pooling; our
//! placement, the description we work from does not fix the stage); `D` is a plain linear layer (with
//! bias) on `Norm(f_v)` trained with cross-entropy.
//!
//! The deployed model is `U` + CWSA + `C` → `p_live = softmax(s·cos θ)[live]` (contract 3).

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use fas_core::ir::backbones::{self, BackboneKind, BackboneSpec, LiveProbKind, NormKind};
use fas_core::ir::{Graph, GraphBuilder};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use super::losses::{self, AmSoftmax};
use super::{Deployable, Recipe, Sampling, StepInfo, TrainBatch};
use crate::nn::{Forward, IrModule};
use crate::train::optim::{Adam, AdamConfig};
use crate::train::state::{StateReader, StateWriter};

/// A Style Cross level: after ResNet-18's `layer1` (low), `layer2` (mid), `layer3` (high).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Low,
    Mid,
    High,
}

impl Level {
    fn index(self) -> usize {
        match self {
            Level::Low => 0,
            Level::Mid => 1,
            Level::High => 2,
        }
    }
}

/// How several Style Cross levels combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flow {
    /// `×`: one style-crossed copy of the batch, crossed at every level in turn.
    Cascade,
    /// `+`: one style-crossed copy per level, each crossed at its level only.
    Parallel,
}

/// Style Cross settings (Eq. 5–7). The paper's best is mid + high.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StyleCrossConfig {
    pub levels: Vec<Level>,
    pub flow: Flow,
    /// Added to the variance before the square root (σ = √(var + ε)).
    pub eps: f64,
}

impl Default for StyleCrossConfig {
    fn default() -> Self {
        StyleCrossConfig {
            levels: vec![Level::Mid, Level::High],
            flow: Flow::Cascade,
            eps: 1e-6,
        }
    }
}

/// Everything that defines a DLIF model and its optimisation (stored in the run dir).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DlifConfig {
    /// 3 (RGB) or 6 (RGB + HSV).
    pub in_channels: usize,
    /// 224 for ResNet-18; smaller sizes (≥ 32) for tests.
    pub input_size: usize,
    /// ResNet-18 channel-width multiplier (both encoders).
    pub width: f32,
    /// CWSA reduction `r` (hidden width `C/r`, capped at the channel count).
    pub cwsa_reduction: usize,
    pub style_cross: StyleCrossConfig,
    /// Ablation: no Style Cross (no augmented copies; AAIC over the originals only).
    pub no_style_cross: bool,
    /// Ablation: no channel-wise style attention in `U`.
    pub no_cwsa: bool,
    /// Ablation: no identity branch (`V`, `D`) and so no `L_ortho`, ambiguity or IISC terms.
    pub no_v: bool,
    /// The classifier `C` (Eq. 11).
    pub am_softmax: AmSoftmax,
    /// AAIC temperature τ (Eq. 10).
    pub tau: f64,
    pub aaic_weight: f64,
    pub ortho_weight: f64,
    pub idamb_weight: f64,
    pub liamb_weight: f64,
    /// `k`: identities per source domain in each batch.
    pub identities_per_domain: usize,
    /// `n`: live samples, and again spoof samples, per identity in each batch.
    pub samples_per_class: usize,
    /// The paper's learning rate (the CLI default for `--recipe dlif`).
    pub lr: f64,
    /// The paper halves the rate every this many epochs (the CLI default).
    pub lr_halve_every_epochs: usize,
    /// Both optimisers.
    pub adam: AdamConfig,
    pub grad_clip: Option<f64>,
}

impl Default for DlifConfig {
    fn default() -> Self {
        DlifConfig {
            in_channels: 3,
            input_size: 224,
            width: 1.0,
            cwsa_reduction: 16,
            style_cross: StyleCrossConfig::default(),
            no_style_cross: false,
            no_cwsa: false,
            no_v: false,
            am_softmax: AmSoftmax::default(),
            tau: 0.07,
            aaic_weight: 1.0,
            ortho_weight: 1.0,
            idamb_weight: 1.0,
            liamb_weight: 1.0,
            identities_per_domain: 4,
            samples_per_class: 4,
            lr: 5e-4,
            lr_halve_every_epochs: 50,
            adam: AdamConfig {
                weight_decay: 5e-4,
                decoupled: false,
                ..AdamConfig::default()
            },
            grad_clip: None,
        }
    }
}

const INPUT: &str = "input";
const HEAD: &str = "head";
/// ResNet-18's last feature map (the input of its global pooling).
const LAST_MAP: &str = "layer4.1.relu2";

/// One encoder's graph and the names the recipe reads.
struct Encoder {
    net: IrModule,
    features: String,
    feature_dim: usize,
    /// Low, mid, high stage outputs (node names).
    stages: Vec<String>,
}

impl DlifConfig {
    fn spec(&self) -> BackboneSpec {
        BackboneSpec {
            kind: BackboneKind::Resnet18,
            in_channels: self.in_channels,
            input_size: self.input_size,
            norm: NormKind::Batch,
            width: self.width,
        }
    }

    fn check(&self) -> Result<()> {
        for (name, v) in [
            ("aaic_weight", self.aaic_weight),
            ("ortho_weight", self.ortho_weight),
            ("idamb_weight", self.idamb_weight),
            ("liamb_weight", self.liamb_weight),
            ("style_cross.eps", self.style_cross.eps),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                bail!("DLIF {name} must be a finite number ≥ 0, got {v}");
            }
        }
        if !(self.tau.is_finite() && self.tau > 0.0) {
            bail!(
                "DLIF tau must be > 0, got {} (the paper uses 0.07)",
                self.tau
            );
        }
        if self.cwsa_reduction == 0 {
            bail!("DLIF cwsa_reduction must be ≥ 1 (e.g. 16)");
        }
        if self.identities_per_domain == 0 || self.samples_per_class == 0 {
            bail!("DLIF identities_per_domain and samples_per_class must be ≥ 1 (paper: 4, 4)");
        }
        if !self.no_style_cross && self.style_cross.levels.is_empty() {
            bail!("DLIF style_cross.levels is empty — give levels (e.g. mid, high) or set no_style_cross");
        }
        Ok(())
    }

    /// `U` (with CWSA unless ablated, and the classifier head when `deploy`) or `V`.
    /// Returns the graph, the feature value, its width and the stage names.
    fn graph(
        &self,
        name: &str,
        cwsa: bool,
        deploy: bool,
    ) -> Result<(Graph, String, usize, Vec<String>)> {
        let mut b = GraphBuilder::new(name);
        let x = b.input(
            INPUT,
            &[1, self.in_channels, self.input_size, self.input_size],
        );
        let out = backbones::build(&mut b, &x, &self.spec(), "")?;
        let features = if cwsa {
            let c = b.channels(LAST_MAP);
            let y = b.style_attention("cwsa", LAST_MAP, self.cwsa_reduction.min(c));
            let p = b.global_avg_pool("cwsa_pool", &y);
            b.flatten("cwsa_flatten", &p)
        } else {
            out.features.clone()
        };
        if deploy {
            // s·cos θ = Linear(normalize(f)) with weight s·w/‖w‖ (see `deployable`).
            let n = b.l2_normalize("head_norm", &features);
            let logits = b.linear(HEAD, &n, 2, false);
            let p = backbones::live_prob(&mut b, &logits, LiveProbKind::Softmax)?;
            b.output(&p);
        } else {
            b.output(&features);
        }
        let mut g = b.finish()?;
        prune(&mut g);
        g.infer_shapes()
            .with_context(|| format!("the DLIF graph \"{name}\""))?;
        Ok((g, features, out.feature_dim, out.stages))
    }

    fn encoder(&self, name: &str, cwsa: bool, device: Device, seed: u64) -> Result<Encoder> {
        let (graph, features, feature_dim, stages) = self.graph(name, cwsa, false)?;
        Ok(Encoder {
            net: IrModule::new(graph, device, seed)?,
            features,
            feature_dim,
            stages,
        })
    }

    /// The style-crossed copies: for each, the stage indices crossed in it.
    fn copies(&self) -> Vec<Vec<usize>> {
        if self.no_style_cross {
            return Vec::new();
        }
        let mut levels: Vec<usize> = self.style_cross.levels.iter().map(|l| l.index()).collect();
        levels.sort_unstable();
        levels.dedup();
        match self.style_cross.flow {
            Flow::Cascade => vec![levels],
            Flow::Parallel => levels.into_iter().map(|l| vec![l]).collect(),
        }
    }
}

/// Drops nodes no graph output depends on (the backbone's own pooling when CWSA replaces it).
fn prune(g: &mut Graph) {
    let mut needed: std::collections::HashSet<String> = g.outputs.iter().cloned().collect();
    let mut keep = vec![false; g.nodes.len()];
    for (i, n) in g.nodes.iter().enumerate().rev() {
        if n.outputs.iter().any(|o| needed.contains(o)) {
            keep[i] = true;
            needed.extend(n.inputs.iter().cloned());
        }
    }
    let mut k = keep.into_iter();
    g.nodes.retain(|_| k.next().expect("one flag per node"));
}

// ---------------------------------------------------------------------------------------------
// Loss terms and Style Cross (public for the known-answer tests)

/// `L_ortho` (Eq. 1–2): the mean over the `B×B` matrix of squared cosine similarities
/// between every `f_u` row and every `f_v` row (both `[B, F]`, normalised here).
pub fn ortho_loss(fu: &Tensor, fv: &Tensor) -> Tensor {
    let cos = losses::l2_normalize(fu).matmul(&losses::l2_normalize(fv).tr());
    let k = cos.kind();
    cos.square().mean(k)
}

/// The ambiguity losses `L_idamb`, `L_liamb` (Eq. 3–4): `mean_i ‖softmax(z_i) − 1/K‖²` for
/// logits `z [N, K]` of a classifier applied to the other branch's normalised features.
/// Softmax is applied because the target, the uniform distribution `1/K`, is a probability
/// vector: the term is minimal exactly when the classifier cannot prefer any class.
pub fn ambiguity_loss(logits: &Tensor) -> Tensor {
    let (k, kind) = (logits.size()[1] as f64, logits.kind());
    (logits.softmax(1, kind) - 1.0 / k)
        .square()
        .sum_dim_intlist([1i64].as_slice(), false, kind)
        .mean(kind)
}

/// Supervised contrastive loss (Khosla et al. 2020, the `L_out` form) used by AAIC
/// (Eq. 10): on normalised `z [N, F]`, for each anchor `i` with positives
/// `P(i) = {p ≠ i : y_p = y_i}`,
/// `ℓ_i = −1/|P(i)| Σ_p log( exp(z_i·z_p/τ) / Σ_{a≠i} exp(z_i·z_a/τ) )`; the loss is the mean
/// over anchors that have a positive (0 when none has).
pub fn sup_con(z: &Tensor, labels: &Tensor, tau: f64) -> Tensor {
    let n = z.size()[0];
    let z = losses::l2_normalize(z);
    let kind = z.kind();
    let eye = Tensor::eye(n, (Kind::Bool, z.device()));
    let sim = (z.matmul(&z.tr()) / tau).masked_fill(&eye, -1e9);
    let logp = sim.log_softmax(1, kind);
    let same = labels.unsqueeze(1).eq_tensor(&labels.unsqueeze(0));
    let pos = same.logical_and(&eye.logical_not()).to_kind(kind);
    let count = pos.sum_dim_intlist([1i64].as_slice(), false, kind);
    let per = -(&pos * logp).sum_dim_intlist([1i64].as_slice(), false, kind) / count.clamp_min(1.0);
    let has = count.gt(0.0).to_kind(kind);
    (per * &has).sum(kind) / has.sum(kind).clamp_min(1.0)
}

/// AAIC labels for `U` over `copies` stacked copies of a batch with liveness `labels [B]`
/// (row `a·B + i` is copy `a` of sample `i`): every live row gets 0, every row of spoof
/// sample `i` gets `1 + i` (an instance shared only with its own style-crossed copies).
pub fn aaic_fas_labels(labels: &Tensor, copies: i64) -> Tensor {
    let b = labels.size()[0];
    let inst = Tensor::arange_start(1, b + 1, (Kind::Int64, labels.device()));
    let one = labels.eq(1);
    inst.masked_fill(&one, 0).repeat([copies])
}

/// Style Cross (Eq. 5–7): AdaIN of each sample onto its partner's style,
/// `x̂_i = σ_j · (x_i − μ_i) / σ_i + μ_j` with `j = partner[i]` and the channel-wise spatial
/// mean `μ` and `σ = √(var + ε)` (biased variance) of `x [N, C, H, W]`. The statistics are
/// detached (a pure feature augmentation, as MixStyle); content gradients flow through `x`.
pub fn style_cross(x: &Tensor, partner: &Tensor, eps: f64) -> Tensor {
    let dims = [2i64, 3].as_slice();
    let mu = x.mean_dim(dims, true, x.kind()).detach();
    let sig = (x.var_dim(dims, false, true) + eps).sqrt().detach();
    let content = (x - &mu) / &sig;
    content * sig.index_select(0, partner) + mu.index_select(0, partner)
}

/// A random partner for every sample among the other samples of its group (`groups [N]`:
/// liveness labels for LISC, identities for IISC): each group is shuffled and every member
/// takes the style of the next one in the cycle, so nobody keeps its own style unless it is
/// alone in its group.
pub fn partners(groups: &[i64], rng: &mut ChaCha8Rng) -> Vec<i64> {
    let mut by: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, &g) in groups.iter().enumerate() {
        by.entry(g).or_default().push(i);
    }
    let mut out = vec![0i64; groups.len()];
    for (_, mut members) in by {
        members.shuffle(rng);
        for (k, &i) in members.iter().enumerate() {
            out[i] = members[(k + 1) % members.len()] as i64;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The recipe

/// The identity branch: `V` and the identity classifier `D`.
struct IdBranch {
    enc: Encoder,
    d_w: Tensor,
    d_b: Tensor,
    opt: Adam,
}

/// DLIF recipe state.
pub struct Dlif {
    cfg: DlifConfig,
    u: Encoder,
    /// `C`: class weights `[2, F]` (row 0 spoof, 1 live) of the cosine classifier.
    c_w: Tensor,
    opt_u: Adam,
    v: Option<IdBranch>,
    /// Dataset identity index → dense training identity (D's class).
    id_index: BTreeMap<i64, i64>,
    seed: u64,
}

fn linear_init(
    rows: i64,
    cols: i64,
    seed: u64,
    bias: bool,
    device: Device,
) -> (Tensor, Option<Tensor>) {
    tch::manual_seed(seed as i64);
    let bound = 1.0 / (cols as f64).sqrt();
    let opts = (Kind::Float, Device::Cpu);
    let w = (Tensor::rand([rows, cols], opts) * (2.0 * bound) - bound)
        .to_device(device)
        .set_requires_grad(true);
    let b = bias.then(|| {
        (Tensor::rand([rows], opts) * (2.0 * bound) - bound)
            .to_device(device)
            .set_requires_grad(true)
    });
    (w, b)
}

fn params(enc: &Encoder, extra: &[(&str, &Tensor)]) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = enc
        .net
        .parameters()
        .iter()
        .map(|(k, t)| (k.clone(), t.shallow_clone()))
        .collect();
    v.extend(
        extra
            .iter()
            .map(|(k, t)| (k.to_string(), t.shallow_clone())),
    );
    v
}

impl Dlif {
    /// `identities`: the dataset identity indices of the training split
    /// ([`crate::data::loader::Dataset::identity_index`]); `D` has one class per distinct one.
    pub fn new(cfg: DlifConfig, identities: &[usize], device: Device, seed: u64) -> Result<Dlif> {
        cfg.check()?;
        let u = cfg.encoder("dlif-u-resnet18", !cfg.no_cwsa, device, seed)?;
        let f = u.feature_dim as i64;
        let (c_w, _) = linear_init(2, f, seed ^ 0xc1a5, false, device);
        let opt_u = Adam::new(params(&u, &[("c.weight", &c_w)]), cfg.adam);
        let mut ids: Vec<usize> = identities.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let id_index: BTreeMap<i64, i64> = ids
            .iter()
            .enumerate()
            .map(|(k, &g)| (g as i64, k as i64))
            .collect();
        let v = if cfg.no_v {
            None
        } else {
            if ids.len() < 2 {
                bail!(
                    "DLIF's identity branch needs at least 2 training identities, the training \
                     split has {} — check the manifest's subject fields or set no_v",
                    ids.len()
                );
            }
            let enc = cfg.encoder("dlif-v-resnet18", false, device, seed ^ 0x0076)?;
            let (d_w, d_b) = linear_init(
                ids.len() as i64,
                enc.feature_dim as i64,
                seed ^ 0xd,
                true,
                device,
            );
            let d_b = d_b.expect("bias requested");
            let opt = Adam::new(
                params(&enc, &[("d.weight", &d_w), ("d.bias", &d_b)]),
                cfg.adam,
            );
            Some(IdBranch { enc, d_w, d_b, opt })
        };
        Ok(Dlif {
            cfg,
            u,
            c_w,
            opt_u,
            v,
            id_index,
            seed,
        })
    }

    pub fn config(&self) -> &DlifConfig {
        &self.cfg
    }

    /// `U` (with CWSA).
    pub fn liveness_encoder(&self) -> &IrModule {
        &self.u.net
    }

    /// `V`, absent with `no_v`.
    pub fn identity_encoder(&self) -> Option<&IrModule> {
        self.v.as_ref().map(|v| &v.enc.net)
    }

    /// Number of identity classes of `D` (0 with `no_v`).
    pub fn identity_classes(&self) -> usize {
        self.v.as_ref().map_or(0, |_| self.id_index.len())
    }

    /// Loads user-provided ResNet-18 weights (IR / torchvision names) into both encoders;
    /// weights the file lacks (CWSA, heads) keep their initialisation.
    pub fn load_backbone_weights(&mut self, path: &std::path::Path) -> Result<()> {
        let src = crate::train::checkpoint::read_tensors(path)?;
        let mut nets = vec![&mut self.u.net];
        if let Some(v) = &mut self.v {
            nets.push(&mut v.enc.net);
        }
        for net in nets {
            let mut all: BTreeMap<String, Tensor> = net.named_tensors().into_iter().collect();
            for (k, t) in &src {
                if all.contains_key(k) {
                    all.insert(k.clone(), t.shallow_clone());
                }
            }
            net.load_tensors(&all, false)
                .with_context(|| format!("loading {}", path.display()))?;
        }
        Ok(())
    }

    fn dense_ids(&self, identities: &Tensor) -> Result<Vec<i64>> {
        let global = Vec::<i64>::try_from(&identities.to_device(Device::Cpu))?;
        global
            .iter()
            .map(|g| {
                self.id_index.get(g).copied().with_context(|| {
                    format!(
                        "batch identity {g} is not a training identity of this DLIF model — \
                         the batches must come from the training split it was built for"
                    )
                })
            })
            .collect()
    }

    /// The Style Cross plan of one branch: `(copy, stage, partner)` for every swap, with
    /// partners drawn within `groups` from a stream keyed by (seed, step, branch).
    fn plan(&self, groups: &[i64], step: usize, branch: u64) -> Vec<(i64, usize, Tensor)> {
        let key = self.seed ^ (step as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (branch << 56);
        let mut rng = ChaCha8Rng::seed_from_u64(key);
        let device = self.u.net.device();
        let mut out = Vec::new();
        for (a, stages) in self.cfg.copies().into_iter().enumerate() {
            for s in stages {
                let p = partners(groups, &mut rng);
                out.push((a as i64 + 1, s, Tensor::from_slice(&p).to_device(device)));
            }
        }
        out
    }

    /// One training forward of an encoder over `copies` stacked copies of `x` (copy 0 the
    /// original) with the Style Cross swaps of `plan` applied in the hook after each stage:
    /// features `[copies·B, F]`.
    fn features(
        &self,
        enc: &Encoder,
        x: &Tensor,
        copies: i64,
        plan: &[(i64, usize, Tensor)],
    ) -> Result<Tensor> {
        let eps = self.cfg.style_cross.eps;
        let hook = |node: &str, y: &Tensor| -> Option<Tensor> {
            let stage = enc.stages.iter().position(|s| s == node)?;
            let mut parts = y.chunk(copies, 0);
            let mut hit = false;
            for (a, s, partner) in plan {
                if *s == stage {
                    let a = *a as usize;
                    parts[a] = style_cross(&parts[a], partner, eps);
                    hit = true;
                }
            }
            hit.then(|| Tensor::cat(&parts, 0))
        };
        let f = Forward {
            train: true,
            update_stats: true,
            params: None,
            hook: Some(&hook),
        };
        let x_all = if copies > 1 {
            x.repeat([copies, 1, 1, 1])
        } else {
            x.shallow_clone()
        };
        let out = enc.net.run(&[&x_all], &f, &[])?;
        Ok(out[&enc.features].shallow_clone())
    }
}

impl Recipe for Dlif {
    fn name(&self) -> &'static str {
        "dlif"
    }

    fn sampling(&self) -> Sampling {
        Sampling::Identity {
            identities: self.cfg.identities_per_domain,
            per_class: self.cfg.samples_per_class,
        }
    }

    fn step(&mut self, batch: &TrainBatch, info: &StepInfo) -> Result<Vec<(String, f64)>> {
        let c = self.cfg.clone();
        let b = batch.labels.size()[0];
        let copies = 1 + c.copies().len() as i64;
        let device = self.u.net.device();
        let labels_cpu = Vec::<i64>::try_from(&batch.labels.to_device(Device::Cpu))?;
        self.opt_u.zero_grad();
        if let Some(v) = &self.v {
            v.opt.zero_grad();
        }

        // U with LISC (Eq. 5–6).
        let plan_u = self.plan(&labels_cpu, info.step, 1);
        let fu = self.features(&self.u, &batch.images, copies, &plan_u)?;
        let zu = losses::l2_normalize(&fu);
        let labels_all = batch.labels.repeat([copies]);
        let cls = c
            .am_softmax
            .loss(&AmSoftmax::cosine(&fu, &self.c_w), &labels_all);
        let aaic_u = sup_con(&zu, &aaic_fas_labels(&batch.labels, copies), c.tau);
        let mut l_fas = &cls + &aaic_u * c.aaic_weight;
        let mut terms = vec![
            ("cls".to_string(), cls.double_value(&[])),
            ("aaic_u".to_string(), aaic_u.double_value(&[])),
        ];

        let mut l_fr = None;
        if let Some(v) = &self.v {
            let ids = self.dense_ids(&batch.identities)?;
            // V with IISC (Eq. 7).
            let plan_v = self.plan(&ids, info.step, 2);
            let fv = self.features(&v.enc, &batch.images, copies, &plan_v)?;
            let zv = losses::l2_normalize(&fv);
            let ids_t = Tensor::from_slice(&ids).to_device(device);
            let ids_all = ids_t.repeat([copies]);
            let id = zv
                .linear(&v.d_w, Some(&v.d_b))
                .cross_entropy_for_logits(&ids_all);
            let aaic_v = sup_con(&zv, &ids_all, c.tau);
            // Original rows: f_u and f_v of the same image (Eq. 1–2); each encoder moves
            // only through its own copy of the term.
            let (zu0, zv0) = (zu.narrow(0, 0, b), zv.narrow(0, 0, b));
            let ortho_u = ortho_loss(&zu0, &zv0.detach());
            let ortho_v = ortho_loss(&zu0.detach(), &zv0);
            // Eq. 3: D (frozen) should not recognise identities from Norm(f_u).
            let idamb = ambiguity_loss(&zu.linear(&v.d_w.detach(), Some(&v.d_b.detach())));
            // Eq. 4: C (frozen) should not recognise liveness from Norm(f_v).
            let c_w = losses::l2_normalize(&self.c_w.detach());
            let liamb = ambiguity_loss(&(zv.matmul(&c_w.tr()) * c.am_softmax.scale));
            l_fas = l_fas + &ortho_u * c.ortho_weight + &idamb * c.idamb_weight;
            l_fr = Some(
                &id + &aaic_v * c.aaic_weight + &ortho_v * c.ortho_weight + &liamb * c.liamb_weight,
            );
            terms.extend([
                ("id".to_string(), id.double_value(&[])),
                ("aaic_v".to_string(), aaic_v.double_value(&[])),
                ("ortho".to_string(), ortho_u.double_value(&[])),
                ("idamb".to_string(), idamb.double_value(&[])),
                ("liamb".to_string(), liamb.double_value(&[])),
            ]);
        }
        let fas_value = l_fas.double_value(&[]);
        let fr_value = l_fr.as_ref().map_or(0.0, |l| l.double_value(&[]));
        let value = fas_value + fr_value;
        if !value.is_finite() {
            bail!(
                "DLIF loss is {value} at step {} — lower the learning rate or enable --clip",
                info.step
            );
        }
        // The cross terms are detached, so one backward gives each optimiser exactly the
        // gradient of its own objective (Eq. 12 for U+C, Eq. 14 for V+D).
        let total = match &l_fr {
            Some(fr) => &l_fas + fr,
            None => l_fas.shallow_clone(),
        };
        total.backward();
        let mut head = vec![("loss".to_string(), value), ("fas".to_string(), fas_value)];
        if l_fr.is_some() {
            head.push(("fr".to_string(), fr_value));
        }
        if let Some(m) = c.grad_clip {
            terms.push(("grad_norm_u".to_string(), self.opt_u.clip_grad_norm(m)));
            if let Some(v) = &self.v {
                terms.push(("grad_norm_v".to_string(), v.opt.clip_grad_norm(m)));
            }
        }
        self.opt_u.step(info.lr);
        if let Some(v) = &mut self.v {
            v.opt.step(info.lr);
        }
        head.extend(terms);
        Ok(head)
    }

    fn score(&self, images: &Tensor) -> Result<Tensor> {
        tch::no_grad(|| {
            let out = self.u.net.run(&[images], &Forward::eval(), &[])?;
            let cos = AmSoftmax::cosine(&out[&self.u.features], &self.c_w);
            Ok(self.cfg.am_softmax.p_live(&cos))
        })
    }

    fn deployable(&self) -> Result<Deployable> {
        let (graph, _, _, _) = self.cfg.graph("dlif-resnet18", !self.cfg.no_cwsa, true)?;
        let mut weights: Vec<(String, Tensor)> = self
            .u
            .net
            .named_tensors()
            .into_iter()
            .map(|(k, t)| (k, t.detach()))
            .collect();
        let w = losses::l2_normalize(&self.c_w.detach()) * self.cfg.am_softmax.scale;
        weights.push((format!("{HEAD}.weight"), w));
        Ok(Deployable { graph, weights })
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let mut w = StateWriter::new();
        w.module("u", &self.u.net)
            .tensor("c.weight", &self.c_w)
            .adam("opt_u", &self.opt_u);
        if let Some(br) = &self.v {
            w.module("v", &br.enc.net)
                .tensor("d.weight", &br.d_w)
                .tensor("d.bias", &br.d_b)
                .adam("opt_v", &br.opt);
        }
        w.finish()
    }

    fn load_state(&mut self, state: &BTreeMap<String, Tensor>) -> Result<()> {
        let r = StateReader::new("dlif", state);
        r.module("u", &mut self.u.net)?;
        r.copy("c.weight", &self.c_w)?;
        r.adam("opt_u", &mut self.opt_u)?;
        if let Some(br) = &mut self.v {
            r.module("v", &mut br.enc.net)?;
            r.copy("d.weight", &br.d_w)?;
            r.copy("d.bias", &br.d_b)?;
            r.adam("opt_v", &mut br.opt)?;
        }
        Ok(())
    }
}

pub mod setup;

#[cfg(test)]
mod tests;
