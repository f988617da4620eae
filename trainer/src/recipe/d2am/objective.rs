//! The pieces of D²AM's objective (pure functions of tensors, tested in `tests.rs`).

use tch::{Reduction, Tensor};

use crate::recipe::meta;

/// θ_M, in the order [`head`] takes them.
pub(super) const META_PARAMS: [&str; 4] = [
    "meta.adapt.weight",
    "meta.adapt.bias",
    "cls.fc.weight",
    "cls.fc.bias",
];

/// BCE with logits against `labels` (1 = live), in the logit's dtype.
pub(super) fn bce(logit: &Tensor, labels: &Tensor) -> Tensor {
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
