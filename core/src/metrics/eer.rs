//! Equal error rate: where APCER (FAR) and BPCER (FRR) cross on the ROC curve.

use super::error::Result;
use super::roc::Roc;
use crate::dataset::Label;
use serde::{Deserialize, Serialize};

/// Equal error rate and the (interpolated) threshold where it occurs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Eer {
    /// The rate where APCER = BPCER on the piecewise-linear ROC curve; in `[0, 1]`.
    pub eer: f64,
    /// Threshold interpolated the same way (finite; see [`Roc::usable_threshold`]).
    /// Because error rates are step functions of the threshold, the rates actually
    /// obtained at this threshold may differ from `eer`.
    pub threshold: f64,
}

impl Roc {
    /// Equal error rate by linear interpolation between ROC points.
    ///
    /// With `d_i = BPCER_i − APCER_i` (non-increasing, `d_0 = 1`, `d_last = −1`), let
    /// `k` be the first point with `d_k <= 0`. If `d_k == 0` the EER is `APCER_k` at
    /// threshold `t_k`; otherwise, with `α = d_{k−1} / (d_{k−1} − d_k)`,
    /// `EER = APCER_{k−1} + α (APCER_k − APCER_{k−1})` and
    /// `threshold = t_{k−1} + α (t_k − t_{k−1})`, where `t_i` is
    /// [`Roc::usable_threshold`]. This is the unique point where the ROC polyline meets
    /// the line TPR = 1 − FPR.
    pub fn eer(&self) -> Eer {
        let d = |i: usize| self.bpcer(i) - self.apcer(i);
        let k = (1..self.len())
            .find(|&i| d(i) <= 0.0)
            .expect("the last ROC point has BPCER 0 and APCER 1");
        let (dk, dp) = (d(k), d(k - 1));
        if dk == 0.0 {
            return Eer {
                eer: self.apcer(k),
                threshold: self.usable_threshold(k),
            };
        }
        let alpha = dp / (dp - dk);
        let (ap, ak) = (self.apcer(k - 1), self.apcer(k));
        let (tp, tk) = (self.usable_threshold(k - 1), self.usable_threshold(k));
        Eer {
            eer: ap + alpha * (ak - ap),
            threshold: tp + alpha * (tk - tp),
        }
    }
}

/// Equal error rate of `scores` against `labels`; see [`Roc::eer`]. Errors as
/// [`Roc::new`].
pub fn eer(scores: &[f64], labels: &[Label]) -> Result<Eer> {
    Ok(Roc::new(scores, labels)?.eer())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::MetricsError;
    use Label::*;

    #[test]
    fn exact_crossing() {
        // thresholds 0.9 .. 0.4; at 0.7: APCER 1/3, BPCER 1/3.
        let e = eer(
            &[0.9, 0.8, 0.7, 0.6, 0.5, 0.4],
            &[Live, Spoof, Live, Spoof, Live, Spoof],
        )
        .unwrap();
        assert!((e.eer - 1.0 / 3.0).abs() < 1e-15);
        assert_eq!(e.threshold, 0.7);
    }

    #[test]
    fn interpolated_crossing() {
        // Points: (apcer,bpcer) = (0,1) t=inf, (0,.5) t=.9, (1,.5) t=.8, (1,0) t=.7
        let e = eer(&[0.9, 0.8, 0.7], &[Live, Spoof, Live]).unwrap();
        // Segment (0,.5)->(1,.5): d = .5 -> -.5, alpha = .5
        assert_eq!(e.eer, 0.5);
        assert!((e.threshold - 0.85).abs() < 1e-15);
    }

    #[test]
    fn separable_and_inverted() {
        let e = eer(&[0.9, 0.8, 0.2, 0.1], &[Live, Live, Spoof, Spoof]).unwrap();
        assert_eq!(e.eer, 0.0);
        assert_eq!(e.threshold, 0.8);
        let e = eer(&[0.1, 0.2, 0.8, 0.9], &[Live, Live, Spoof, Spoof]).unwrap();
        assert_eq!(e.eer, 1.0);
    }

    #[test]
    fn all_tied_is_half_at_the_score() {
        let e = eer(&[0.5; 4], &[Live, Spoof, Spoof, Live]).unwrap();
        assert_eq!(e.eer, 0.5);
        assert!(e.threshold >= 0.5 && e.threshold <= 0.5 + 1e-15);
    }

    #[test]
    fn one_class_is_an_error() {
        assert_eq!(
            eer(&[0.5, 0.4], &[Live, Live]),
            Err(MetricsError::OneClass { present: Live })
        );
    }
}
