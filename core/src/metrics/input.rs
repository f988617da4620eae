//! Validation shared by every metric: lengths, emptiness, finiteness, class counts.

use super::error::{MetricsError, Result};
use crate::dataset::Label;

/// How many bona fide (live) and attack (spoof) samples a validated input holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassCounts {
    pub bona_fide: usize,
    pub attack: usize,
}

impl ClassCounts {
    /// `Ok` iff both classes are present, else [`MetricsError::OneClass`].
    pub fn require_both(self) -> Result<Self> {
        match (self.bona_fide, self.attack) {
            (0, 0) => Err(MetricsError::Empty),
            (0, _) => Err(MetricsError::OneClass {
                present: Label::Spoof,
            }),
            (_, 0) => Err(MetricsError::OneClass {
                present: Label::Live,
            }),
            _ => Ok(self),
        }
    }
}

/// Checks that `scores` and `labels` have equal length, are non-empty and all scores
/// are finite; returns the class counts (either may be zero).
pub fn validate(scores: &[f64], labels: &[Label]) -> Result<ClassCounts> {
    if labels.len() != scores.len() {
        return Err(MetricsError::LengthMismatch {
            what: "labels",
            expected: scores.len(),
            got: labels.len(),
        });
    }
    if scores.is_empty() {
        return Err(MetricsError::Empty);
    }
    if let Some((index, &value)) = scores.iter().enumerate().find(|(_, s)| !s.is_finite()) {
        return Err(MetricsError::NonFiniteScore { index, value });
    }
    let bona_fide = labels.iter().filter(|&&l| l == Label::Live).count();
    Ok(ClassCounts {
        bona_fide,
        attack: labels.len() - bona_fide,
    })
}

/// [`validate`] plus [`ClassCounts::require_both`].
pub fn validate_both(scores: &[f64], labels: &[Label]) -> Result<ClassCounts> {
    validate(scores, labels)?.require_both()
}

/// `Ok(rate)` iff `rate` is in `[0, 1]`.
pub fn check_rate(rate: f64) -> Result<f64> {
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(MetricsError::InvalidRate(rate))
    }
}

/// `Ok(threshold)` iff it is not NaN (±inf are meaningful: accept all / reject all).
pub fn check_threshold(threshold: f64) -> Result<f64> {
    if threshold.is_nan() {
        Err(MetricsError::InvalidThreshold(threshold))
    } else {
        Ok(threshold)
    }
}

/// The smallest `f64` strictly greater than finite `x` (`f64::next_up`, which needs
/// Rust 1.86, while the workspace supports 1.85).
pub fn next_up(x: f64) -> f64 {
    debug_assert!(x.is_finite());
    if x == 0.0 {
        return f64::from_bits(1);
    }
    let bits = x.to_bits();
    if x > 0.0 {
        f64::from_bits(bits + 1)
    } else {
        f64::from_bits(bits - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Label::*;

    #[test]
    fn errors_in_order() {
        assert_eq!(
            validate(&[0.1], &[]),
            Err(MetricsError::LengthMismatch {
                what: "labels",
                expected: 1,
                got: 0
            })
        );
        assert_eq!(validate(&[], &[]), Err(MetricsError::Empty));
        assert_eq!(
            validate(&[0.1, f64::INFINITY], &[Live, Spoof]),
            Err(MetricsError::NonFiniteScore {
                index: 1,
                value: f64::INFINITY
            })
        );
        assert!(matches!(
            validate(&[f64::NAN], &[Live]),
            Err(MetricsError::NonFiniteScore { index: 0, .. })
        ));
        assert_eq!(
            validate_both(&[0.1, 0.2], &[Live, Live]),
            Err(MetricsError::OneClass { present: Live })
        );
        assert_eq!(
            validate_both(&[0.1], &[Spoof]),
            Err(MetricsError::OneClass { present: Spoof })
        );
        assert_eq!(
            validate_both(&[0.1, 0.2, 0.3], &[Spoof, Live, Live]),
            Ok(ClassCounts {
                bona_fide: 2,
                attack: 1
            })
        );
    }

    #[test]
    fn rates_and_thresholds() {
        assert!(check_rate(0.0).is_ok() && check_rate(1.0).is_ok());
        assert!(check_rate(-0.01).is_err() && check_rate(f64::NAN).is_err());
        assert!(check_threshold(f64::INFINITY).is_ok());
        assert!(check_threshold(f64::NAN).is_err());
    }

    #[test]
    fn next_up_is_adjacent() {
        for x in [0.0, 1.0, -1.0, 0.5, -3.25e-300, 1e300] {
            let y = next_up(x);
            assert!(y > x);
            assert!((x + y) / 2.0 == x || (x + y) / 2.0 == y);
        }
    }
}
