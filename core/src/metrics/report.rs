//! Everything a model evaluation reports, bundled for printing and `metrics.json`.

use super::attack::{apcer_per_attack, auc_per_attack};
use super::error::{MetricsError, Result};
use super::operating_point::operating_point;
use super::roc::Roc;
use super::threshold::Threshold;
use crate::dataset::Label;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Target rates [`Report::compute`] evaluates BPCER@APCER and TPR@FPR at: 1%, 5%, 10%.
pub const DEFAULT_TARGET_RATES: [f64; 3] = [0.01, 0.05, 0.10];

/// An operating point chosen for a target rate: BPCER@APCER=`target`
/// (or TPR@FPR=`target`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AtTarget {
    /// The target APCER (= FPR).
    pub target: f64,
    /// Threshold chosen by [`Threshold::at_apcer`].
    pub threshold: f64,
    /// APCER achieved there (`<= target`).
    pub apcer: f64,
    /// BPCER achieved there; TPR = 1 − `bpcer`.
    pub bpcer: f64,
}

/// Threshold-free metrics (AUC, EER, BPCER@APCER) plus the error rates at one decision
/// threshold. Every rate is in `[0, 1]`, every number finite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub n_bona_fide: usize,
    pub n_attack: usize,
    /// Area under the ROC curve (bona fide = positive).
    pub auc: f64,
    /// AUC of bona fide against each attack type alone (see
    /// [`auc_per_attack`](super::auc_per_attack)). Absent in reports written before it
    /// existed; those read back with an empty map.
    #[serde(default)]
    pub auc_per_attack: BTreeMap<String, f64>,
    /// Interpolated equal error rate.
    pub eer: f64,
    /// Threshold where the EER occurs.
    pub eer_threshold: f64,
    /// The decision threshold the rates below are computed at.
    pub threshold: f64,
    /// Worst (maximum) per-attack-type APCER: the ISO/IEC 30107-3 APCER.
    pub apcer: f64,
    /// The attack type achieving `apcer`.
    pub worst_attack: String,
    /// APCER of every attack type.
    pub apcer_per_attack: BTreeMap<String, f64>,
    /// APCER pooled over all attacks.
    pub apcer_pooled: f64,
    /// BPCER at `threshold`.
    pub bpcer: f64,
    /// `(apcer + bpcer) / 2` (worst-type APCER).
    pub acer: f64,
    /// `(apcer_pooled + bpcer) / 2`.
    pub hter: f64,
    /// BPCER@APCER=target for each target rate.
    pub bpcer_at_apcer: Vec<AtTarget>,
}

impl Report {
    /// Computes every metric on `scores` / `labels` / `attacks` at the finite decision
    /// `threshold`, with BPCER@APCER at [`DEFAULT_TARGET_RATES`]. Errors: those of
    /// [`Roc::new`] and [`apcer_per_attack`], and a non-finite threshold.
    pub fn compute<S: AsRef<str>>(
        scores: &[f64],
        labels: &[Label],
        attacks: &[S],
        threshold: f64,
    ) -> Result<Self> {
        Self::compute_with_targets(scores, labels, attacks, threshold, &DEFAULT_TARGET_RATES)
    }

    /// [`Report::compute`] with chosen target APCERs (each in `[0, 1]`).
    pub fn compute_with_targets<S: AsRef<str>>(
        scores: &[f64],
        labels: &[Label],
        attacks: &[S],
        threshold: f64,
        targets: &[f64],
    ) -> Result<Self> {
        if !threshold.is_finite() {
            return Err(MetricsError::InvalidThreshold(threshold));
        }
        let roc = Roc::new(scores, labels)?;
        let per = apcer_per_attack(scores, labels, attacks, threshold)?;
        let point = operating_point(scores, labels, threshold)?;
        let eer = roc.eer();
        let bpcer_at_apcer = targets
            .iter()
            .map(|&target| {
                let t = Threshold::at_apcer_on(&roc, target)?;
                Ok(AtTarget {
                    target,
                    threshold: t.value,
                    apcer: t.point.apcer,
                    bpcer: t.point.bpcer,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            n_bona_fide: roc.n_bona_fide(),
            n_attack: roc.n_attack(),
            auc: roc.auc(),
            auc_per_attack: auc_per_attack(scores, labels, attacks)?,
            eer: eer.eer,
            eer_threshold: eer.threshold,
            threshold,
            apcer: per.worst,
            worst_attack: per.worst_attack,
            apcer_per_attack: per.per_attack,
            apcer_pooled: per.pooled,
            bpcer: point.bpcer,
            acer: (per.worst + point.bpcer) / 2.0,
            hter: point.hter,
            bpcer_at_apcer,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Label::*;

    const S: [f64; 7] = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3];
    const L: [Label; 7] = [Live, Spoof, Spoof, Live, Spoof, Spoof, Spoof];
    const A: [&str; 7] = ["none", "print", "replay", "none", "print", "replay", "mask"];

    #[test]
    fn bundles_consistent_numbers() {
        let r = Report::compute(&S, &L, &A, 0.55).unwrap();
        assert_eq!((r.n_bona_fide, r.n_attack), (2, 5));
        assert_eq!(r.auc, crate::metrics::auc(&S, &L).unwrap());
        assert_eq!(r.apcer, 0.5);
        assert_eq!(r.worst_attack, "print");
        assert_eq!(r.apcer_pooled, 0.4);
        assert_eq!(r.bpcer, 0.0);
        assert_eq!(r.acer, 0.25);
        assert_eq!(r.hter, 0.2);
        assert_eq!(r.bpcer_at_apcer.len(), 3);
        assert_eq!(r.bpcer_at_apcer[0].apcer, 0.0);
        assert_eq!(r.bpcer_at_apcer[0].bpcer, 0.5);
        assert_eq!(r.auc_per_attack, auc_per_attack(&S, &L, &A).unwrap());
        let json = serde_json::to_string(&r).unwrap();
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn reads_reports_written_before_auc_per_attack() {
        let r = Report::compute(&S, &L, &A, 0.55).unwrap();
        let mut json = serde_json::to_value(&r).unwrap();
        json.as_object_mut().unwrap().remove("auc_per_attack");
        let back: Report = serde_json::from_value(json).unwrap();
        assert!(back.auc_per_attack.is_empty());
        assert_eq!(back.auc, r.auc);
    }

    #[test]
    fn errors() {
        assert!(matches!(
            Report::compute(&S, &L, &A, f64::INFINITY),
            Err(MetricsError::InvalidThreshold(_))
        ));
        assert_eq!(
            Report::compute(&S, &L, &A[..2], 0.5),
            Err(MetricsError::LengthMismatch {
                what: "attacks",
                expected: 7,
                got: 2
            })
        );
        assert_eq!(
            Report::compute(&S[..1], &L[..1], &A[..1], 0.5),
            Err(MetricsError::OneClass { present: Live })
        );
    }
}
