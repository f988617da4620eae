//! Choosing a decision threshold on development scores.
//!
//! Candidate thresholds are the distinct scores plus one value just above the highest
//! score (rejects everything); between two distinct scores the error rates are
//! constant, so no other threshold yields a different operating point.

use super::error::Result;
use super::input::check_rate;
use super::operating_point::{operating_point, OperatingPoint};
use super::roc::Roc;
use crate::dataset::Label;
use serde::{Deserialize, Serialize};

/// A chosen threshold (finite) and the error rates it achieves on the scores it was
/// chosen on. Accept as bona fide iff `score >= value`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    pub value: f64,
    pub point: OperatingPoint,
}

impl Threshold {
    fn from_roc_point(roc: &Roc, i: usize) -> Self {
        Self {
            value: roc.usable_threshold(i),
            point: OperatingPoint::from_rates(roc.apcer(i), roc.bpcer(i)),
        }
    }

    /// The EER threshold ([`Roc::eer`]) and the rates actually achieved there (which
    /// may differ from the interpolated EER). Errors as [`Roc::new`].
    pub fn at_eer(scores: &[f64], labels: &[Label]) -> Result<Self> {
        let value = Roc::new(scores, labels)?.eer().threshold;
        Ok(Self {
            value,
            point: operating_point(scores, labels, value)?,
        })
    }

    /// The lowest candidate threshold whose APCER is `<= max_apcer`; it has the lowest
    /// BPCER among those. Errors as [`Roc::new`], plus rate not in `[0, 1]`.
    pub fn at_apcer(scores: &[f64], labels: &[Label], max_apcer: f64) -> Result<Self> {
        let roc = Roc::new(scores, labels)?;
        Self::at_apcer_on(&roc, max_apcer)
    }

    /// [`Threshold::at_apcer`] on an already built curve.
    pub fn at_apcer_on(roc: &Roc, max_apcer: f64) -> Result<Self> {
        let i = roc.last_index_with_fpr_at_most(max_apcer)?;
        Ok(Self::from_roc_point(roc, i))
    }

    /// The highest candidate threshold whose BPCER is `<= max_bpcer`; it has the lowest
    /// APCER among those. Errors as [`Roc::new`], plus rate not in `[0, 1]`.
    pub fn at_bpcer(scores: &[f64], labels: &[Label], max_bpcer: f64) -> Result<Self> {
        let roc = Roc::new(scores, labels)?;
        Self::at_bpcer_on(&roc, max_bpcer)
    }

    /// [`Threshold::at_bpcer`] on an already built curve.
    pub fn at_bpcer_on(roc: &Roc, max_bpcer: f64) -> Result<Self> {
        check_rate(max_bpcer)?;
        let i = (0..roc.len())
            .find(|&i| roc.bpcer(i) <= max_bpcer)
            .expect("the last ROC point has BPCER 0");
        Ok(Self::from_roc_point(roc, i))
    }
}

/// BPCER at APCER = `max_apcer` (e.g. BPCER@APCER=1% with `0.01`): the BPCER of
/// [`Threshold::at_apcer`]. In `[0, 1]`.
pub fn bpcer_at_apcer(scores: &[f64], labels: &[Label], max_apcer: f64) -> Result<f64> {
    Ok(Threshold::at_apcer(scores, labels, max_apcer)?.point.bpcer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::MetricsError;
    use Label::*;

    const S: [f64; 6] = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4];
    const L: [Label; 6] = [Live, Spoof, Live, Live, Spoof, Spoof];

    #[test]
    fn at_apcer() {
        let t = Threshold::at_apcer(&S, &L, 0.0).unwrap();
        assert_eq!(t.value, 0.9);
        assert_eq!(t.point.apcer, 0.0);
        assert_eq!(t.point.bpcer, 2.0 / 3.0);
        let t = Threshold::at_apcer(&S, &L, 0.5).unwrap();
        assert_eq!(
            (t.value, t.point.apcer, t.point.bpcer),
            (0.6, 1.0 / 3.0, 0.0)
        );
        assert_eq!(bpcer_at_apcer(&S, &L, 1.0).unwrap(), 0.0);
        // The achieved point is what applying the threshold gives.
        assert_eq!(t.point, operating_point(&S, &L, t.value).unwrap());
    }

    #[test]
    fn reject_all_is_finite() {
        let t = Threshold::at_apcer(&[0.9, 0.1], &[Spoof, Live], 0.0).unwrap();
        assert!(t.value.is_finite() && t.value > 0.9);
        assert_eq!((t.point.apcer, t.point.bpcer), (0.0, 1.0));
        assert_eq!(
            t.point,
            operating_point(&[0.9, 0.1], &[Spoof, Live], t.value).unwrap()
        );
    }

    #[test]
    fn at_bpcer() {
        let t = Threshold::at_bpcer(&S, &L, 0.0).unwrap();
        assert_eq!(
            (t.value, t.point.apcer, t.point.bpcer),
            (0.6, 1.0 / 3.0, 0.0)
        );
        let t = Threshold::at_bpcer(&S, &L, 0.4).unwrap();
        assert_eq!((t.value, t.point.bpcer), (0.7, 1.0 / 3.0));
        assert_eq!(t.point, operating_point(&S, &L, t.value).unwrap());
    }

    #[test]
    fn at_eer() {
        let t = Threshold::at_eer(&S, &L).unwrap();
        assert_eq!(t.point, operating_point(&S, &L, t.value).unwrap());
        assert_eq!(
            Threshold::at_apcer(&S, &L, -0.1),
            Err(MetricsError::InvalidRate(-0.1))
        );
        assert_eq!(Threshold::at_eer(&[], &[]), Err(MetricsError::Empty));
    }
}
