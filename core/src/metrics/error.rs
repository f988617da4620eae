//! Typed errors of the metrics module: every metric either returns a number in its
//! documented range or one of these — never a silent NaN.

use crate::dataset::Label;
use thiserror::Error;

/// Why a metric could not be computed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum MetricsError {
    /// No samples were given.
    #[error("no samples: metrics need at least one bona fide and one attack sample")]
    Empty,
    /// Only one class is present where the metric needs both (or the missing one).
    /// `present` is the class that *was* found.
    #[error("only {present:?} samples present; this metric needs the other class too")]
    OneClass { present: Label },
    /// A score is NaN or infinite.
    #[error("score at index {index} is not finite ({value})")]
    NonFiniteScore { index: usize, value: f64 },
    /// Parallel inputs (scores, labels, attack types) differ in length.
    #[error("length mismatch: {what} has {got} entries, scores have {expected}")]
    LengthMismatch {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    /// A target rate (APCER, BPCER, FPR) is NaN or outside `[0, 1]`.
    #[error("target rate {0} is not in [0, 1]")]
    InvalidRate(f64),
    /// A decision threshold is NaN (or, where a finite one is required, infinite).
    #[error("threshold {0} is not usable here")]
    InvalidThreshold(f64),
    /// Frames of one video carry different labels.
    #[error("video {video:?} has frames labelled both live and spoof")]
    InconsistentLabel { video: String },
    /// Frames of one video carry different attack types.
    #[error("video {video:?} has frames with attack types {first:?} and {other:?}")]
    InconsistentAttack {
        video: String,
        first: String,
        other: String,
    },
}

/// Result alias of the metrics module.
pub type Result<T> = std::result::Result<T, MetricsError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_problem() {
        let e = MetricsError::NonFiniteScore {
            index: 3,
            value: f64::NAN,
        };
        assert!(e.to_string().contains("index 3"));
        let e = MetricsError::OneClass {
            present: Label::Live,
        };
        assert!(e.to_string().contains("Live"));
    }
}
