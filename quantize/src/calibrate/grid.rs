//! The int8 grid an activation range is mapped onto (ONNX `QuantizeLinear` semantics:
//! `q = saturate(round_half_even(x / scale) + zero_point)`, `x̂ = (q − zero_point) · scale`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Element type of quantised activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActivationType {
    /// uint8, asymmetric: the range `[lo, hi]` maps onto 0..=255 with a zero point.
    U8,
    /// int8, symmetric: `±max(|lo|, |hi|)` maps onto −127..=127, zero point 0.
    I8,
}

/// Scale and zero point of one per-tensor quantiser.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QParams {
    pub scale: f32,
    pub zero_point: i32,
    pub qmin: i32,
    pub qmax: i32,
}

impl ActivationType {
    /// The quantiser for `range` (which contains 0 and has positive width, see
    /// [`super::range::with_zero`]).
    pub fn params(self, range: [f32; 2]) -> QParams {
        let [lo, hi] = range;
        match self {
            ActivationType::U8 => {
                let scale = (hi - lo) / 255.0;
                let zero_point = (-lo / scale).round_ties_even().clamp(0.0, 255.0) as i32;
                QParams {
                    scale,
                    zero_point,
                    qmin: 0,
                    qmax: 255,
                }
            }
            ActivationType::I8 => QParams {
                scale: (-lo).max(hi) / 127.0,
                zero_point: 0,
                qmin: -127,
                qmax: 127,
            },
        }
    }
}

impl QParams {
    pub fn quantize(&self, x: f32) -> i32 {
        ((x / self.scale).round_ties_even() as i32 + self.zero_point).clamp(self.qmin, self.qmax)
    }

    pub fn dequantize(&self, q: i32) -> f32 {
        (q - self.zero_point) as f32 * self.scale
    }

    /// `dequantize(quantize(x))`.
    pub fn fake_quant(&self, x: f32) -> f32 {
        self.dequantize(self.quantize(x))
    }
}

impl fmt::Display for ActivationType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ActivationType::U8 => "u8",
            ActivationType::I8 => "i8",
        })
    }
}

impl FromStr for ActivationType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "u8" | "uint8" => Ok(ActivationType::U8),
            "i8" | "s8" | "int8" => Ok(ActivationType::I8),
            _ => Err(format!(
                "activation type \"{s}\" — choose u8 (asymmetric) or i8 (symmetric)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn u8_maps_range_ends_onto_the_grid_ends() {
        let p = ActivationType::U8.params([-1.0, 3.0]);
        assert_eq!(p.zero_point, 64);
        assert_eq!(p.quantize(0.0), 64);
        assert_eq!(p.quantize(3.0), 255);
        assert_eq!(p.quantize(-1.0), 0);
        assert_eq!(p.quantize(100.0), 255);
        assert_eq!(p.fake_quant(0.0), 0.0);
    }

    #[test]
    fn i8_is_symmetric() {
        let p = ActivationType::I8.params([-0.5, 2.54]);
        assert_eq!(p.zero_point, 0);
        assert!((p.scale - 0.02).abs() < 1e-7);
        assert_eq!(p.quantize(-10.0), -127);
        assert_eq!(p.quantize(0.01), 0); // 0.5 rounds to even
        assert_eq!(p.quantize(0.03), 2); // 1.5 rounds to even
    }

    proptest! {
        #[test]
        fn in_range_error_is_at_most_half_a_step(
            lo in -10f32..0.0, w in 0.01f32..20.0, t in 0f32..1.0, u8 in any::<bool>()
        ) {
            let hi = lo + w;
            let ty = if u8 { ActivationType::U8 } else { ActivationType::I8 };
            let p = ty.params([lo.min(0.0), hi.max(0.0)]);
            let x = lo + t * w;
            let x = x.clamp(lo.max(-p.scale * (p.zero_point - p.qmin) as f32),
                            hi.min(p.scale * (p.qmax - p.zero_point) as f32));
            prop_assert!((p.fake_quant(x) - x).abs() <= 0.5 * p.scale * (1.0 + 1e-4) + 1e-6);
        }
    }
}
