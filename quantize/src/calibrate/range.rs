//! A calibrated activation range and the method that chose it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How an activation's quantisation range is chosen from its calibration histogram.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CalibrationMethod {
    /// The observed minimum and maximum ([`super::minmax`]).
    MinMax,
    /// The `p`-th and `(100 − p)`-th percentiles, `p` in `[50, 100]` ([`super::percentile`]).
    Percentile(f64),
    /// The KL-divergence threshold of TensorRT's entropy calibrator ([`super::entropy`]).
    Entropy,
    /// The range with the least expected squared quantisation error ([`super::mse`]).
    Mse,
}

impl CalibrationMethod {
    /// Checks parameters (the percentile).
    pub fn validate(self) -> Result<Self, UnknownMethod> {
        match self {
            CalibrationMethod::Percentile(p) if !(50.0..=100.0).contains(&p) => {
                Err(UnknownMethod(format!(
                    "percentile-{p}: the percentile must lie in [50, 100], e.g. percentile-99.99"
                )))
            }
            m => Ok(m),
        }
    }
}

impl fmt::Display for CalibrationMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CalibrationMethod::MinMax => f.write_str("minmax"),
            CalibrationMethod::Percentile(p) => write!(f, "percentile-{p}"),
            CalibrationMethod::Entropy => f.write_str("entropy"),
            CalibrationMethod::Mse => f.write_str("mse"),
        }
    }
}

/// A calibration method name that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("calibration method \"{0}\" — choose minmax, percentile-P (P in [50, 100], e.g. percentile-99.99), entropy or mse")]
pub struct UnknownMethod(pub String);

impl FromStr for CalibrationMethod {
    type Err = UnknownMethod;

    fn from_str(s: &str) -> Result<Self, UnknownMethod> {
        let m = match s.to_ascii_lowercase().as_str() {
            "minmax" | "min-max" | "min_max" => CalibrationMethod::MinMax,
            "entropy" | "kl" => CalibrationMethod::Entropy,
            "mse" => CalibrationMethod::Mse,
            "percentile" => CalibrationMethod::Percentile(99.99),
            other => {
                let p = other
                    .strip_prefix("percentile-")
                    .or_else(|| other.strip_prefix("percentile"))
                    .and_then(|p| p.parse::<f64>().ok())
                    .ok_or_else(|| UnknownMethod(s.to_string()))?;
                CalibrationMethod::Percentile(p)
            }
        };
        m.validate().map_err(|_| UnknownMethod(s.to_string()))
    }
}

/// The calibrated range of one activation tensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorRange {
    /// The ONNX value name.
    pub tensor: String,
    /// Smallest and largest value seen over the calibration set.
    pub min: f32,
    pub max: f32,
    /// The range quantised to: contains 0, finite, `range[0] < range[1]`.
    pub range: [f32; 2],
    /// [`CalibrationMethod`]'s display name.
    pub method: String,
}

/// The narrowest range any method returns: a tensor that is constant zero still needs a
/// positive quantisation scale.
pub const MIN_WIDTH: f32 = 1e-6;

/// `[lo, hi]` widened to contain 0 and to be at least [`MIN_WIDTH`] wide.
pub fn with_zero(lo: f32, hi: f32) -> [f32; 2] {
    let lo = lo.min(0.0);
    let hi = hi.max(0.0);
    if hi - lo < MIN_WIDTH {
        [lo, lo + MIN_WIDTH]
    } else {
        [lo, hi]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_names_round_trip() {
        for m in [
            CalibrationMethod::MinMax,
            CalibrationMethod::Percentile(99.99),
            CalibrationMethod::Percentile(99.0),
            CalibrationMethod::Entropy,
            CalibrationMethod::Mse,
        ] {
            assert_eq!(m.to_string().parse::<CalibrationMethod>(), Ok(m));
        }
        assert_eq!(
            "percentile".parse::<CalibrationMethod>(),
            Ok(CalibrationMethod::Percentile(99.99))
        );
        assert!("percentile-120".parse::<CalibrationMethod>().is_err());
        assert!("kmeans".parse::<CalibrationMethod>().is_err());
    }

    #[test]
    fn ranges_contain_zero_and_have_width() {
        assert_eq!(with_zero(1.0, 3.0), [0.0, 3.0]);
        assert_eq!(with_zero(-2.0, -1.0), [-2.0, 0.0]);
        assert_eq!(with_zero(0.0, 0.0), [0.0, MIN_WIDTH]);
    }
}
