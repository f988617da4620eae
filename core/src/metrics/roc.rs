//! Receiver operating characteristic and the area under it.
//!
//! Positive class = bona fide ([`Label::Live`]); a sample is accepted as bona fide when
//! `score >= threshold`. So TPR = 1 − BPCER and FPR = APCER at each threshold.

use super::error::Result;
use super::input::{check_rate, next_up, validate_both};
use crate::dataset::Label;

/// A ROC curve with one point per distinct score, exactly like scikit-learn's
/// `roc_curve(y, s, drop_intermediate=False)` with `pos_label = live`:
///
/// * `thresholds()[0] == +inf` and the first point is `(fpr, tpr) = (0, 0)`;
/// * `thresholds()[1..]` are the distinct scores in strictly decreasing order (equal
///   scores form one group, so ties yield one diagonal segment);
/// * point `i` counts samples with `score >= thresholds()[i]`; the last is `(1, 1)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Roc {
    thresholds: Vec<f64>,
    accepted_attacks: Vec<usize>,
    accepted_bona_fide: Vec<usize>,
    n_bona_fide: usize,
    n_attack: usize,
}

impl Roc {
    /// Builds the curve. Errors: length mismatch, empty, non-finite score, one class.
    pub fn new(scores: &[f64], labels: &[Label]) -> Result<Self> {
        let counts = validate_both(scores, labels)?;
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        let mut thresholds = vec![f64::INFINITY];
        let (mut fps, mut tps) = (vec![0], vec![0]);
        let (mut fp, mut tp) = (0usize, 0usize);
        for (k, &i) in order.iter().enumerate() {
            match labels[i] {
                Label::Live => tp += 1,
                Label::Spoof => fp += 1,
            }
            // Close the group when the next score differs (scores are finite, and
            // -0.0 == 0.0 is one group as in numpy).
            let last_of_group = order.get(k + 1).is_none_or(|&j| scores[j] != scores[i]);
            if last_of_group {
                thresholds.push(scores[i]);
                fps.push(fp);
                tps.push(tp);
            }
        }
        Ok(Self {
            thresholds,
            accepted_attacks: fps,
            accepted_bona_fide: tps,
            n_bona_fide: counts.bona_fide,
            n_attack: counts.attack,
        })
    }

    /// Number of points (distinct scores + 1).
    pub fn len(&self) -> usize {
        self.thresholds.len()
    }

    /// Always false: a curve has at least the `(0,0)` and `(1,1)` points.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Thresholds, strictly decreasing; the first is `+inf`.
    pub fn thresholds(&self) -> &[f64] {
        &self.thresholds
    }

    /// False positive rate (= APCER) at each threshold, non-decreasing from 0 to 1.
    pub fn fpr(&self) -> Vec<f64> {
        (0..self.len()).map(|i| self.apcer(i)).collect()
    }

    /// True positive rate (= 1 − BPCER) at each threshold, non-decreasing from 0 to 1.
    pub fn tpr(&self) -> Vec<f64> {
        (0..self.len())
            .map(|i| self.accepted_bona_fide[i] as f64 / self.n_bona_fide as f64)
            .collect()
    }

    /// Number of attack samples accepted at each threshold.
    pub fn accepted_attacks(&self) -> &[usize] {
        &self.accepted_attacks
    }

    /// Number of bona fide samples accepted at each threshold.
    pub fn accepted_bona_fide(&self) -> &[usize] {
        &self.accepted_bona_fide
    }

    /// Number of bona fide (live) samples.
    pub fn n_bona_fide(&self) -> usize {
        self.n_bona_fide
    }

    /// Number of attack (spoof) samples.
    pub fn n_attack(&self) -> usize {
        self.n_attack
    }

    /// APCER (= FPR) at point `i`: accepted attacks / attacks.
    pub fn apcer(&self, i: usize) -> f64 {
        self.accepted_attacks[i] as f64 / self.n_attack as f64
    }

    /// BPCER (= 1 − TPR) at point `i`, computed as rejected bona fide / bona fide.
    pub fn bpcer(&self, i: usize) -> f64 {
        (self.n_bona_fide - self.accepted_bona_fide[i]) as f64 / self.n_bona_fide as f64
    }

    /// A finite threshold that realises point `i`: `thresholds()[i]`, except for
    /// point 0 (`+inf`), which becomes the smallest `f64` above the highest score
    /// (rejects everything, as `+inf` does).
    pub fn usable_threshold(&self, i: usize) -> f64 {
        if i == 0 {
            next_up(self.thresholds[1])
        } else {
            self.thresholds[i]
        }
    }

    /// Area under the curve by the trapezoid rule. Equals the Mann–Whitney
    /// probability P(score_live > score_spoof) + ½·P(equal); in [0, 1]. Computed from
    /// integer counts, so it is exact up to the final division.
    pub fn auc(&self) -> f64 {
        let mut twice_area: u128 = 0;
        for i in 1..self.len() {
            let dfp = (self.accepted_attacks[i] - self.accepted_attacks[i - 1]) as u128;
            let tp_sum = (self.accepted_bona_fide[i] + self.accepted_bona_fide[i - 1]) as u128;
            twice_area += dfp * tp_sum;
        }
        twice_area as f64 / (2.0 * self.n_bona_fide as f64 * self.n_attack as f64)
    }

    /// Index of the last point (lowest threshold) whose FPR (= APCER) is `<= max_fpr`.
    /// Point 0 always qualifies. Errors: `max_fpr` not in `[0, 1]`.
    pub fn last_index_with_fpr_at_most(&self, max_fpr: f64) -> Result<usize> {
        check_rate(max_fpr)?;
        Ok((0..self.len())
            .rev()
            .find(|&i| self.apcer(i) <= max_fpr)
            .unwrap_or(0))
    }

    /// TPR at FPR = `max_fpr`: the highest TPR among points with FPR `<= max_fpr`
    /// (step function, no interpolation). Errors: `max_fpr` not in `[0, 1]`.
    pub fn tpr_at_fpr(&self, max_fpr: f64) -> Result<f64> {
        let i = self.last_index_with_fpr_at_most(max_fpr)?;
        Ok(self.accepted_bona_fide[i] as f64 / self.n_bona_fide as f64)
    }
}

/// ROC curve of `scores` (higher = bona fide) against `labels`; see [`Roc`].
pub fn roc_curve(scores: &[f64], labels: &[Label]) -> Result<Roc> {
    Roc::new(scores, labels)
}

/// Area under the ROC curve; see [`Roc::auc`]. Errors as [`Roc::new`].
pub fn auc(scores: &[f64], labels: &[Label]) -> Result<f64> {
    Ok(Roc::new(scores, labels)?.auc())
}

/// TPR at FPR = `max_fpr`; see [`Roc::tpr_at_fpr`].
pub fn tpr_at_fpr(scores: &[f64], labels: &[Label], max_fpr: f64) -> Result<f64> {
    Roc::new(scores, labels)?.tpr_at_fpr(max_fpr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::MetricsError;
    use Label::*;

    #[test]
    fn small_curve_with_ties() {
        // scores: 0.9 L, 0.8 S, 0.8 L, 0.3 S
        let roc = Roc::new(&[0.9, 0.8, 0.8, 0.3], &[Live, Spoof, Live, Spoof]).unwrap();
        assert_eq!(roc.thresholds()[0], f64::INFINITY);
        assert_eq!(&roc.thresholds()[1..], &[0.9, 0.8, 0.3]);
        assert_eq!(roc.fpr(), vec![0.0, 0.0, 0.5, 1.0]);
        assert_eq!(roc.tpr(), vec![0.0, 0.5, 1.0, 1.0]);
        // pairs: (0.9>0.8)=1, (0.9>0.3)=1, (0.8=0.8)=.5, (0.8>0.3)=1 → 3.5/4
        assert_eq!(roc.auc(), 0.875);
        assert_eq!(roc.bpcer(1), 0.5);
        assert!(roc.usable_threshold(0) > 0.9);
    }

    #[test]
    fn separable_and_inverted() {
        assert_eq!(auc(&[0.9, 0.8, 0.1], &[Live, Live, Spoof]).unwrap(), 1.0);
        assert_eq!(auc(&[0.1, 0.2, 0.9], &[Live, Live, Spoof]).unwrap(), 0.0);
        assert_eq!(auc(&[0.5; 4], &[Live, Spoof, Spoof, Live]).unwrap(), 0.5);
    }

    #[test]
    fn tpr_at_fpr_is_a_step() {
        let s = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4];
        let l = [Live, Spoof, Live, Live, Spoof, Spoof];
        let roc = roc_curve(&s, &l).unwrap();
        assert_eq!(roc.tpr_at_fpr(0.0).unwrap(), 1.0 / 3.0);
        assert_eq!(roc.tpr_at_fpr(0.34).unwrap(), 1.0);
        assert_eq!(tpr_at_fpr(&s, &l, 1.0).unwrap(), 1.0);
        assert_eq!(roc.tpr_at_fpr(1.5), Err(MetricsError::InvalidRate(1.5)));
    }

    #[test]
    fn typed_errors() {
        assert_eq!(auc(&[], &[]), Err(MetricsError::Empty));
        assert_eq!(
            auc(&[0.2, 0.3], &[Spoof, Spoof]),
            Err(MetricsError::OneClass { present: Spoof })
        );
        assert!(matches!(
            auc(&[f64::NAN, 0.3], &[Live, Spoof]),
            Err(MetricsError::NonFiniteScore { index: 0, .. })
        ));
    }
}
