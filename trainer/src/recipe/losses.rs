//! Losses shared by the recipes. Labels are `1 = live (bona fide)`, `0 = spoof` everywhere
//! (contract 3: the deployed score is `p_live`).

use serde::{Deserialize, Serialize};
use tch::{Kind, Reduction, Tensor};

use crate::nn::real_kind;

/// Binary cross-entropy on one logit per sample (`σ(logit) = p_live`).
pub fn bce(logit: &Tensor, labels: &Tensor) -> Tensor {
    logit.view([-1]).binary_cross_entropy_with_logits::<Tensor>(
        &labels.to_kind(real_kind(logit)),
        None,
        None,
        Reduction::Mean,
    )
}

/// Asymmetric additive-margin softmax (AM-softmax, Wang et al. 2018, with a separate margin
/// for each class as FAS methods use it — e.g. DLIF Eq. 11): on cosine logits
/// `cos θ = ⟨f/‖f‖, w_c/‖w_c‖⟩`, the target class's cosine is reduced by its class margin
/// before scaling by `s`: `L = CE(s·(cos θ − m_y·onehot(y)), y)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AmSoftmax {
    pub scale: f64,
    pub margin_live: f64,
    pub margin_spoof: f64,
}

impl Default for AmSoftmax {
    fn default() -> Self {
        AmSoftmax {
            scale: 30.0,
            margin_live: 0.4,
            margin_spoof: 0.1,
        }
    }
}

impl AmSoftmax {
    /// Cosine logits `[N, 2]` (column 0 spoof, 1 live) of features `[N, F]` against class
    /// weights `[2, F]`.
    pub fn cosine(features: &Tensor, weight: &Tensor) -> Tensor {
        let f = l2_normalize(features);
        let w = l2_normalize(weight);
        f.matmul(&w.tr())
    }

    /// The loss from cosine logits `[N, 2]`.
    pub fn loss(&self, cos: &Tensor, labels: &Tensor) -> Tensor {
        let onehot = labels.one_hot(2).to_kind(Kind::Float);
        // Margin of each sample's own class.
        let live = labels.to_kind(Kind::Float);
        let m: Tensor = &live * self.margin_live + (1.0 - &live) * self.margin_spoof;
        let logits = (cos - onehot * m.unsqueeze(1)) * self.scale;
        logits.cross_entropy_for_logits(labels)
    }

    /// Inference: `p_live = softmax(s · cos θ)[live]` (no margins).
    pub fn p_live(&self, cos: &Tensor) -> Tensor {
        (cos * self.scale).softmax(1, Kind::Float).select(1, 1)
    }
}

/// `x / max(‖x‖₂, 1e-12)` along axis 1 (PyTorch `F.normalize`).
pub fn l2_normalize(x: &Tensor) -> Tensor {
    let n = x
        .norm_scalaropt_dim(2, [1i64].as_slice(), true)
        .clamp_min(1e-12);
    x / n
}

/// Pixel-wise squared error between a predicted depth map and the target (zeros for spoof,
/// as in the depth-supervised FAS literature), resized to the prediction's size.
pub fn depth_mse(pred: &Tensor, target: &Tensor) -> Tensor {
    let s = pred.size();
    let t = if target.size()[2..] != s[2..] {
        target.upsample_bilinear2d([s[2], s[3]], false, None, None)
    } else {
        target.shallow_clone()
    };
    pred.mse_loss(&t, Reduction::Mean)
}

// ---------------------------------------------------------------------------------------------
// ANRL Dual Calibration Constraints (Liu et al., ACM MM 2021, §3.3)

/// Per-class centroids of a batch (ANRL Eq. 6): `[2, F]` (row 0 spoof, row 1 live) of
/// `features [N, F]`, and `[2]` float flags, 1 where the class occurs in the batch (a class
/// that does not occur gets a zero row).
pub fn class_centroids(features: &Tensor, labels: &Tensor) -> (Tensor, Tensor) {
    let onehot = labels.one_hot(2).to_kind(features.kind());
    let counts = onehot.sum_dim_intlist([0i64].as_slice(), false, features.kind());
    let sums = onehot.tr().matmul(features);
    let centroids = sums / counts.clamp_min(1.0).unsqueeze(1);
    (centroids, counts.gt(0.0).to_kind(Kind::Float))
}

/// ANRL's global class centroids of every domain, updated with momentum γ (Eq. 7):
/// `C_d^k ← γ·C_d^k + (1−γ)·c_d^k` for each class `k` present in domain `d`'s batch, and
/// `C_d^k ← c_d^k` the first time the pair is seen.
#[derive(Debug)]
pub struct DomainCentroids {
    momentum: f64,
    /// `[D, 2, F]`.
    centroids: Tensor,
    /// `[D, 2]` float, 1 once the pair has a centroid.
    seen: Tensor,
}

impl DomainCentroids {
    pub fn new(domains: usize, dim: usize, momentum: f64, device: tch::Device) -> Self {
        let opts = (Kind::Float, device);
        DomainCentroids {
            momentum,
            centroids: Tensor::zeros([domains as i64, 2, dim as i64], opts),
            seen: Tensor::zeros([domains as i64, 2], opts),
        }
    }

    /// `[D, 2, F]` global centroids (rows not yet seen are zero).
    pub fn centroids(&self) -> &Tensor {
        &self.centroids
    }

    /// `[D, 2]`, 1 where a centroid exists.
    pub fn seen(&self) -> &Tensor {
        &self.seen
    }

    /// Eq. 7 for domain `domain` with local centroids and presence flags from
    /// [`class_centroids`] (detached: the global centroids carry no gradient).
    pub fn update(&mut self, domain: i64, local: &Tensor, present: &Tensor) {
        tch::no_grad(|| {
            let local = local.detach().to_kind(Kind::Float);
            let mut old = self.centroids.get(domain);
            let mut seen = self.seen.get(domain);
            let s = seen.unsqueeze(1);
            let p = present.unsqueeze(1);
            let mixed =
                &s * (&old * self.momentum + &local * (1.0 - self.momentum)) + (1.0 - &s) * &local;
            let new = &p * mixed + (1.0 - &p) * &old;
            old.copy_(&new);
            let now = seen.maximum(present);
            seen.copy_(&now);
        });
    }

    /// The Inter-Domain Compatible loss (Eq. 8): the mean squared distance between the
    /// meta-test batch's class centroids `local [2, F]` (flags `present [2]`) and the global
    /// centroids of the same class of each meta-train domain in `domains`; pairs without a
    /// centroid on either side are skipped (zero, with a graph, when none is left).
    pub fn inter_domain_compatible(
        &self,
        local: &Tensor,
        present: &Tensor,
        domains: &[i64],
    ) -> Tensor {
        let k_real = real_kind(local);
        let mut terms = Vec::new();
        for &d in domains {
            for k in 0..2i64 {
                let both =
                    present.double_value(&[k]) > 0.0 && self.seen.double_value(&[d, k]) > 0.0;
                if both {
                    let g = self.centroids.get(d).get(k);
                    terms.push((local.get(k) - g).square().sum(k_real));
                }
            }
        }
        if terms.is_empty() {
            return local.sum(k_real) * 0.0;
        }
        Tensor::stack(&terms, 0).mean(k_real)
    }

    /// `centroids` and `seen`, for checkpoints.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        vec![
            ("centroids".to_string(), self.centroids.shallow_clone()),
            ("centroid_seen".to_string(), self.seen.shallow_clone()),
        ]
    }
}

/// The Inter-Class Separable loss (ANRL Eq. 9–11) on `features [N, F]`: compactness of the
/// live features only, the mean squared distance to their centroid `c_r` (Eq. 9), plus
/// separability, `mean over attacks of max(0, margin − ‖f − c_r‖)²` (Eq. 10), summed
/// (Eq. 11). Zero (with a graph) when the batch has no live sample; the separability term is
/// zero without attacks.
pub fn inter_class_separable(features: &Tensor, labels: &Tensor, margin: f64) -> Tensor {
    let kind = real_kind(features);
    let live = labels.eq(1).nonzero().view([-1]);
    if live.size()[0] == 0 {
        return features.sum(kind) * 0.0;
    }
    let real = features.index_select(0, &live);
    let c = real.mean_dim([0i64].as_slice(), true, kind);
    let compact = (&real - &c)
        .square()
        .sum_dim_intlist([1i64].as_slice(), false, kind)
        .mean(kind);
    let spoof = labels.ne(1).nonzero().view([-1]);
    if spoof.size()[0] == 0 {
        return compact;
    }
    let dist = (features.index_select(0, &spoof) - &c)
        .square()
        .sum_dim_intlist([1i64].as_slice(), false, kind)
        .clamp_min(1e-12)
        .sqrt();
    let sep = (-dist + margin).relu().square().mean(kind);
    compact + sep
}

/// LSGAN discriminator loss (Mao et al. 2017, with targets a = 0 for fakes, b = 1 for
/// reals): `½·mean((D(x) − 1)²) + ½·mean(D(G(z))²)` over the discriminator's outputs (any
/// shape, e.g. patch scores; dual-stage Eq. 2).
pub fn lsgan_d(real: &Tensor, fake: &Tensor) -> Tensor {
    (real - 1.0).square().mean(Kind::Float) * 0.5 + fake.square().mean(Kind::Float) * 0.5
}

/// LSGAN generator loss (target c = 1): `½·mean((D(G(z)) − 1)²)` (dual-stage Eq. 3).
pub fn lsgan_g(fake: &Tensor) -> Tensor {
    (fake - 1.0).square().mean(Kind::Float) * 0.5
}

/// Euclidean distances `[N, N]` between the rows of `f [N, F]`, with `√max(d², 1e-12)` so the
/// gradient stays finite for coincident rows.
fn pairwise_distances(f: &Tensor) -> Tensor {
    let sq = f
        .square()
        .sum_dim_intlist([1i64].as_slice(), true, Kind::Float);
    let d2 = &sq + sq.tr() - f.matmul(&f.tr()) * 2.0;
    d2.clamp_min(1e-12).sqrt()
}

/// Live-anchor masks of a batch: `pos [N, N]` (anchor live, other live sample) and
/// `neg [N, N]` (anchor live, spoof sample), as floats.
fn live_anchor_masks(labels: &Tensor, n: i64, device: tch::Device) -> (Tensor, Tensor) {
    let live = labels.to_kind(Kind::Float).view([-1]);
    let not_self = 1.0 - Tensor::eye(n, (Kind::Float, device));
    let pos = live.unsqueeze(1) * live.unsqueeze(0) * not_self;
    let neg = live.unsqueeze(1) * (1.0 - live.unsqueeze(0));
    (pos, neg)
}

/// Triplet loss with live anchors over every valid triplet (dual-stage Eq. 5): for each
/// live anchor `a`, other live sample `p` and spoof sample `n`,
/// `max(0, ‖f_a − f_p‖ − ‖f_a − f_n‖ + margin)`, averaged over the triplets. Zero (with a
/// graph) when the batch has no such triplet (fewer than two live samples or no spoof).
pub fn triplet_live_anchor(f: &Tensor, labels: &Tensor, margin: f64) -> Tensor {
    let n = f.size()[0];
    let d = pairwise_distances(f);
    let (pos, neg) = live_anchor_masks(labels, n, f.device());
    // [a, p, n]
    let hinge = (d.unsqueeze(2) - d.unsqueeze(1) + margin).relu();
    let valid = pos.unsqueeze(2) * neg.unsqueeze(1);
    let count = valid.sum(Kind::Float);
    (hinge * &valid).sum(Kind::Float) / count.clamp_min(1.0)
}

/// Batch-hard triplet loss with live anchors (dual-stage Eq. 6, hard mining as Hermans et
/// al. 2017): for each live anchor, its farthest other live sample and its nearest spoof
/// sample, `max(0, max_p ‖f_a − f_p‖ − min_n ‖f_a − f_n‖ + margin)`, averaged over the
/// anchors that have both. Zero (with a graph) when none has.
pub fn triplet_hard_live_anchor(f: &Tensor, labels: &Tensor, margin: f64) -> Tensor {
    let n = f.size()[0];
    let d = pairwise_distances(f);
    let (pos, neg) = live_anchor_masks(labels, n, f.device());
    // Distances are ≥ 0, so masking positives to 0 keeps the max among real positives;
    // non-negatives are pushed above every real distance before the min.
    let big = d.max().detach() + 1.0;
    let hardest_pos = (&d * &pos).amax([1i64].as_slice(), false);
    let not_neg: Tensor = 1.0 - &neg;
    let hardest_neg = (&d + not_neg * &big).amin([1i64].as_slice(), false);
    let has = |m: &Tensor| {
        m.sum_dim_intlist([1i64].as_slice(), false, Kind::Float)
            .gt(0.0)
    };
    let valid = has(&pos).logical_and(&has(&neg)).to_kind(Kind::Float);
    let hinge = (hardest_pos - hardest_neg + margin).relu();
    (hinge * &valid).sum(Kind::Float) / valid.sum(Kind::Float).clamp_min(1.0)
}

/// Spoof-map regulariser on live samples (dual-stage Eq. 8): `‖M‖₁` of each live sample's
/// map `[N, 1, h, w]`, normalised by its pixel count (so the weight does not depend on the
/// map size), averaged over the live samples. Zero (with a graph) without live samples.
pub fn live_map_l1(map: &Tensor, labels: &Tensor) -> Tensor {
    let per = map
        .abs()
        .flatten(1, -1)
        .mean_dim([1i64].as_slice(), false, Kind::Float);
    let live = labels.to_kind(Kind::Float).view([-1]);
    (per * &live).sum(Kind::Float) / live.sum(Kind::Float).clamp_min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn t(v: &[f32], shape: &[i64]) -> Tensor {
        Tensor::from_slice(v).view(shape)
    }

    /// Known answer: BCE with logits 0 is ln 2 whatever the label; logit 2 on live is
    /// ln(1 + e^-2), on spoof ln(1 + e^2).
    #[test]
    fn bce_known_answer() {
        let l = bce(
            &t(&[0.0, 2.0, 2.0], &[3, 1]),
            &Tensor::from_slice(&[1i64, 1, 0]),
        );
        let want = ((2f64).ln() + (1.0 + (-2f64).exp()).ln() + (1.0 + 2f64.exp()).ln()) / 3.0;
        assert!((l.double_value(&[]) - want).abs() < 1e-6);
    }

    /// Known answer computed by hand: cos = [[0.2, 0.6]] for a live sample, s = 10,
    /// m_live = 0.4 → logits [2, 2] → loss ln 2; for a spoof sample with cos [0.6, 0.2],
    /// m_spoof = 0.1 → logits [5, 2] → loss ln(1 + e^-3).
    #[test]
    fn am_softmax_known_answer() {
        let am = AmSoftmax {
            scale: 10.0,
            margin_live: 0.4,
            margin_spoof: 0.1,
        };
        let live = am.loss(&t(&[0.2, 0.6], &[1, 2]), &Tensor::from_slice(&[1i64]));
        assert!((live.double_value(&[]) - 2f64.ln()).abs() < 1e-5);
        let spoof = am.loss(&t(&[0.6, 0.2], &[1, 2]), &Tensor::from_slice(&[0i64]));
        assert!((spoof.double_value(&[]) - (1.0 + (-3f64).exp()).ln()).abs() < 1e-5);
        let p = am.p_live(&t(&[0.2, 0.6], &[1, 2]));
        let want = 1.0 / (1.0 + (-4f64).exp());
        assert!((p.double_value(&[0]) - want).abs() < 1e-6);
    }

    #[test]
    fn cosine_logits_are_scale_invariant_and_bounded() {
        let f = Tensor::randn([6, 5], (Kind::Float, Device::Cpu));
        let w = Tensor::randn([2, 5], (Kind::Float, Device::Cpu));
        let a = AmSoftmax::cosine(&f, &w);
        let b = AmSoftmax::cosine(&(&f * 7.0), &(&w * 0.3));
        assert!((&a - &b).abs().max().double_value(&[]) < 1e-6);
        assert!(a.abs().max().double_value(&[]) <= 1.0 + 1e-6);
    }

    #[test]
    fn depth_mse_resizes_the_target() {
        let pred = Tensor::zeros([2, 1, 4, 4], (Kind::Float, Device::Cpu));
        let target = Tensor::ones([2, 1, 8, 8], (Kind::Float, Device::Cpu)) * 0.5;
        let l = depth_mse(&pred, &target);
        assert!((l.double_value(&[]) - 0.25).abs() < 1e-7);
    }
    /// Known answer (hand-computed): live features (0,0), (2,0) → live centroid (1,0),
    /// compactness (1 + 1)/2 = 1; attacks at distance 0.5 and 3 with margin 1 →
    /// ((1 − 0.5)² + 0)/2 = 0.125; total 1.125.
    #[test]
    fn inter_class_separable_known_answer() {
        let f = t(&[0.0, 0.0, 2.0, 0.0, 1.0, 0.5, 4.0, 0.0], &[4, 2]);
        let y = Tensor::from_slice(&[1i64, 1, 0, 0]);
        let l = inter_class_separable(&f, &y, 1.0).double_value(&[]);
        assert!((l - 1.125).abs() < 1e-6, "{l}");
        // Only live samples: compactness alone; none: zero.
        let l = inter_class_separable(&f.narrow(0, 0, 2), &y.narrow(0, 0, 2), 1.0);
        assert!((l.double_value(&[]) - 1.0).abs() < 1e-6);
        let l = inter_class_separable(&f.narrow(0, 2, 2), &y.narrow(0, 2, 2), 1.0);
        assert_eq!(l.double_value(&[]), 0.0);
    }

    /// Known answers for Eq. 6–8: centroids of a small batch; first update copies, the
    /// second mixes with γ = 0.9 ((1,0) then (3,0) → 0.9·(1,0) + 0.1·(3,0) = (1.2, 0)); the
    /// compatible loss averages squared centroid distances over seen pairs.
    #[test]
    fn domain_centroids_known_answer() {
        let f = t(&[1.0, 0.0, 0.0, 1.0, 0.0, 3.0], &[3, 2]);
        let (c, p) = class_centroids(&f, &Tensor::from_slice(&[1i64, 0, 0]));
        assert!(c.allclose(&t(&[0.0, 2.0, 1.0, 0.0], &[2, 2]), 1e-7, 1e-7, false));
        assert!(p.equal(&t(&[1.0, 1.0], &[2])));
        let (c1, p1) = class_centroids(&t(&[3.0, 0.0], &[1, 2]), &Tensor::from_slice(&[1i64]));
        assert!(p1.equal(&t(&[0.0, 1.0], &[2])));

        let mut g = DomainCentroids::new(3, 2, 0.9, Device::Cpu);
        g.update(1, &c, &p);
        assert!(g.seen().equal(&t(&[0.0, 0.0, 1.0, 1.0, 0.0, 0.0], &[3, 2])));
        g.update(1, &c1, &p1);
        let want = t(&[0.0, 2.0, 1.2, 0.0], &[2, 2]);
        assert!(g.centroids().get(1).allclose(&want, 1e-6, 1e-6, false));

        // Meta-test centroids: spoof (0,0) → distance² 4 to (0,2); live (1.2,1) → 1.
        // Domain 0 and 2 have nothing yet and are skipped.
        let local = t(&[0.0, 0.0, 1.2, 1.0], &[2, 2]);
        let ones = t(&[1.0, 1.0], &[2]);
        let l = g.inter_domain_compatible(&local, &ones, &[0, 1, 2]);
        assert!((l.double_value(&[]) - 2.5).abs() < 1e-6);
        let l = g.inter_domain_compatible(&local, &t(&[0.0, 1.0], &[2]), &[1]);
        assert!((l.double_value(&[]) - 1.0).abs() < 1e-6);
        assert_eq!(
            g.inter_domain_compatible(&local, &ones, &[0, 2])
                .double_value(&[]),
            0.0
        );
    }

    proptest::proptest! {
        /// ICS depends on distances only: translating every feature changes nothing; it is
        /// never negative.
        #[test]
        fn inter_class_separable_is_translation_invariant(
            v in proptest::collection::vec(-3.0f32..3.0, 18),
            shift in proptest::collection::vec(-5.0f32..5.0, 3),
            margin in 0.0f64..2.0,
        ) {
            let f = t(&v, &[6, 3]);
            let y = Tensor::from_slice(&[1i64, 0, 1, 0, 0, 1]);
            let a = inter_class_separable(&f, &y, margin).double_value(&[]);
            let b = inter_class_separable(&(&f + t(&shift, &[1, 3])), &y, margin).double_value(&[]);
            proptest::prop_assert!(a >= 0.0);
            proptest::prop_assert!((a - b).abs() < 1e-3 * (1.0 + a.abs()), "{} vs {}", a, b);
        }

        /// Eq. 7: after n updates with the same local centroid c from C₀,
        /// C = c + γⁿ·(C₀ − c) (the first update copies C₀).
        #[test]
        fn momentum_update_converges_geometrically(
            c0 in proptest::collection::vec(-3.0f32..3.0, 4),
            c in proptest::collection::vec(-3.0f32..3.0, 4),
            gamma in 0.0f64..0.99,
            n in 1usize..8,
        ) {
            let (c0, c) = (t(&c0, &[2, 2]), t(&c, &[2, 2]));
            let ones = t(&[1.0, 1.0], &[2]);
            let mut g = DomainCentroids::new(1, 2, gamma, Device::Cpu);
            g.update(0, &c0, &ones);
            for _ in 0..n {
                g.update(0, &c, &ones);
            }
            let want = &c + (&c0 - &c) * gamma.powi(n as i32);
            let err = (g.centroids().get(0) - want).abs().max().double_value(&[]);
            proptest::prop_assert!(err < 1e-5, "{}", err);
        }
    }

    /// Known answers (by hand): D(x) = [1, 0], D(G(z)) = [0.5, 1] →
    /// L_D = ½·(0 + 1)/2 + ½·(0.25 + 1)/2 = 0.5625; L_G = ½·(0.25 + 0)/2 = 0.0625.
    #[test]
    fn lsgan_known_answers() {
        let real = t(&[1.0, 0.0], &[2, 1]);
        let fake = t(&[0.5, 1.0], &[2, 1]);
        assert!((lsgan_d(&real, &fake).double_value(&[]) - 0.5625).abs() < 1e-7);
        assert!((lsgan_g(&fake).double_value(&[]) - 0.0625).abs() < 1e-7);
    }

    /// Four 1-D features: live at 0 and 1, spoof at 3 and 0.5, margin 1.
    /// Anchor 0: p = 1 (d 1), n ∈ {3, 0.5} → hinges 1−3+1 = 0 and 1−0.5+1 = 1.5.
    /// Anchor 1: p = 0 (d 1), n ∈ {3 (d 2), 0.5 (d 0.5)} → 0 and 1.5.
    /// All-triplet mean = 3/4 = 0.75; batch-hard per anchor = 1.5 (nearest spoof 0.5) → 1.5.
    #[test]
    fn triplet_known_answers() {
        let f = t(&[0.0, 1.0, 3.0, 0.5], &[4, 1]);
        let y = Tensor::from_slice(&[1i64, 1, 0, 0]);
        let all = triplet_live_anchor(&f, &y, 1.0).double_value(&[]);
        assert!((all - 0.75).abs() < 1e-5, "{all}");
        let hard = triplet_hard_live_anchor(&f, &y, 1.0).double_value(&[]);
        assert!((hard - 1.5).abs() < 1e-5, "{hard}");
        // Spoof rows far away: every hinge is 0.
        let far = t(&[0.0, 1.0, 10.0, -10.0], &[4, 1]);
        assert!(triplet_live_anchor(&far, &y, 1.0).double_value(&[]).abs() < 1e-6);
        assert!(
            triplet_hard_live_anchor(&far, &y, 1.0)
                .double_value(&[])
                .abs()
                < 1e-6
        );
        // A single live sample has no positive: no triplet, zero loss.
        let one = Tensor::from_slice(&[1i64, 0, 0, 0]);
        assert_eq!(triplet_live_anchor(&f, &one, 1.0).double_value(&[]), 0.0);
        assert_eq!(
            triplet_hard_live_anchor(&f, &one, 1.0).double_value(&[]),
            0.0
        );
    }

    /// Live maps mean |m| 0.25 and 1.0 (→ mean 0.625); the spoof map is ignored.
    #[test]
    fn live_map_l1_known_answer() {
        let m = t(
            &[0.5, -0.5, 0.0, 0.0, 1.0, 1.0, -1.0, 1.0, 9.0, 9.0, 9.0, 9.0],
            &[3, 1, 2, 2],
        );
        let y = Tensor::from_slice(&[1i64, 1, 0]);
        assert!((live_map_l1(&m, &y).double_value(&[]) - 0.625).abs() < 1e-7);
        let none = Tensor::from_slice(&[0i64, 0, 0]);
        assert_eq!(live_map_l1(&m, &none).double_value(&[]), 0.0);
    }
}
