//! Losses shared by the recipes. Labels are `1 = live (bona fide)`, `0 = spoof` everywhere
//! (contract 3: the deployed score is `p_live`).

use serde::{Deserialize, Serialize};
use tch::{Kind, Reduction, Tensor};

/// Binary cross-entropy on one logit per sample (`σ(logit) = p_live`).
pub fn bce(logit: &Tensor, labels: &Tensor) -> Tensor {
    logit.view([-1]).binary_cross_entropy_with_logits::<Tensor>(
        &labels.to_kind(Kind::Float),
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
}
