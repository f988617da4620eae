//! APCER, BPCER and HTER of one decision threshold (ISO/IEC 30107-3).

use super::error::Result;
use super::input::{check_threshold, validate_both};
use crate::dataset::Label;
use serde::{Deserialize, Serialize};

/// Error rates at one threshold. All three are in `[0, 1]` and
/// `hter == (apcer + bpcer) / 2`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OperatingPoint {
    /// Attack presentation classification error rate: attacks with `score >= t`
    /// / attacks (pooled over all attack types).
    pub apcer: f64,
    /// Bona fide presentation classification error rate: bona fide with
    /// `score < t` / bona fide.
    pub bpcer: f64,
    /// Half total error rate, `(apcer + bpcer) / 2`.
    pub hter: f64,
}

impl OperatingPoint {
    /// Builds a point from its two rates; `hter` is their mean.
    pub fn from_rates(apcer: f64, bpcer: f64) -> Self {
        Self {
            apcer,
            bpcer,
            hter: (apcer + bpcer) / 2.0,
        }
    }
}

/// Error rates of accepting as bona fide every sample with `score >= threshold`.
/// `threshold` may be ±inf; errors: NaN threshold, length mismatch, empty,
/// non-finite score, one class only.
pub fn operating_point(scores: &[f64], labels: &[Label], threshold: f64) -> Result<OperatingPoint> {
    let counts = validate_both(scores, labels)?;
    check_threshold(threshold)?;
    let (mut accepted_attacks, mut rejected_bona_fide) = (0usize, 0usize);
    for (&s, &l) in scores.iter().zip(labels) {
        match l {
            Label::Spoof if s >= threshold => accepted_attacks += 1,
            Label::Live if s < threshold => rejected_bona_fide += 1,
            _ => {}
        }
    }
    Ok(OperatingPoint::from_rates(
        accepted_attacks as f64 / counts.attack as f64,
        rejected_bona_fide as f64 / counts.bona_fide as f64,
    ))
}

/// Half total error rate at `threshold`: `(APCER + BPCER) / 2`; see [`operating_point`].
pub fn hter(scores: &[f64], labels: &[Label], threshold: f64) -> Result<f64> {
    Ok(operating_point(scores, labels, threshold)?.hter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::MetricsError;
    use Label::*;

    const S: [f64; 6] = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4];
    const L: [Label; 6] = [Live, Spoof, Live, Live, Spoof, Spoof];

    #[test]
    fn counts_at_threshold() {
        let p = operating_point(&S, &L, 0.7).unwrap();
        assert_eq!(p.apcer, 1.0 / 3.0); // 0.8 accepted
        assert_eq!(p.bpcer, 1.0 / 3.0); // 0.6 rejected
        assert_eq!(p.hter, 1.0 / 3.0);
        // The threshold itself is accepted.
        assert_eq!(operating_point(&S, &L, 0.8).unwrap().apcer, 1.0 / 3.0);
        assert_eq!(hter(&S, &L, f64::INFINITY).unwrap(), 0.5);
        assert_eq!(hter(&S, &L, f64::NEG_INFINITY).unwrap(), 0.5);
        assert_eq!(hter(&S, &L, 0.0).unwrap(), 0.5);
    }

    #[test]
    fn errors() {
        assert!(matches!(
            hter(&S, &L, f64::NAN),
            Err(MetricsError::InvalidThreshold(t)) if t.is_nan()
        ));
        assert_eq!(hter(&[], &[], 0.5), Err(MetricsError::Empty));
        assert_eq!(
            hter(&[0.1], &[Live], 0.5),
            Err(MetricsError::OneClass { present: Live })
        );
    }
}
