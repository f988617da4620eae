//! Entropy calibration, TensorRT's algorithm (Migacz, "8-bit Inference with TensorRT",
//! GTC 2017): on the `|x|` histogram, for every candidate threshold bin `i ≥ levels`,
//! P = the first `i` bins with all counts beyond folded into bin `i − 1`; Q = the first `i`
//! bins merged into `levels` groups and spread back evenly over each group's non-empty
//! bins; the threshold is the upper edge of the `i` with the least KL(P ‖ Q). Zero bins are
//! smoothed with ε = 1e-4 before the divergence (as MXNet's and onnxruntime's versions do).

use super::histogram::Histogram;
use super::range::with_zero;

/// Quantised levels on one side of zero (int8: 128).
pub const DEFAULT_LEVELS: usize = 128;

const EPS: f64 = 1e-4;

/// The clipping threshold (in units of `x`) for the `|x|` histogram `abs` whose bins are
/// `width` wide.
pub fn threshold(abs: &[u64], width: f32, levels: usize) -> f32 {
    let n = abs.len();
    let last = abs.iter().rposition(|&c| c > 0).map_or(0, |k| k + 1);
    if n <= levels || last <= levels {
        return last.max(1) as f32 * width;
    }
    let mut p = vec![0f64; n];
    let mut q = vec![0f64; n];
    let mut best = (f64::INFINITY, last);
    let mut beyond: u64 = abs[levels..].iter().sum();
    for i in levels..=last {
        // Counts from bin i on (the outliers P folds into bin i − 1).
        if i > levels {
            beyond -= abs[i - 1];
        }
        for k in 0..i {
            p[k] = abs[k] as f64;
        }
        p[i - 1] += beyond as f64;
        let group = i / levels;
        for j in 0..levels {
            let start = j * group;
            let end = if j + 1 == levels { i } else { start + group };
            let bins = &abs[start..end];
            let sum: u64 = bins.iter().sum();
            let nonzero = bins.iter().filter(|&&c| c > 0).count();
            for (k, &c) in bins.iter().enumerate() {
                q[start + k] = if c > 0 {
                    sum as f64 / nonzero as f64
                } else {
                    0.0
                };
            }
        }
        if let Some(kl) = kl_divergence(&mut p[..i], &mut q[..i]) {
            if kl < best.0 {
                best = (kl, i);
            }
        }
    }
    best.1 as f32 * width
}

/// KL(P ‖ Q) after normalising and smoothing both; `None` when either cannot be smoothed.
fn kl_divergence(p: &mut [f64], q: &mut [f64]) -> Option<f64> {
    normalise_and_smooth(p)?;
    normalise_and_smooth(q)?;
    Some(
        p.iter()
            .zip(q.iter())
            .filter(|(&a, _)| a > 0.0)
            .map(|(&a, &b)| a * (a / b).ln())
            .sum(),
    )
}

fn normalise_and_smooth(d: &mut [f64]) -> Option<()> {
    let sum: f64 = d.iter().sum();
    if sum <= 0.0 {
        return None;
    }
    let zeros = d.iter().filter(|&&v| v == 0.0).count();
    let nonzeros = d.len() - zeros;
    let take = EPS * zeros as f64 / nonzeros as f64;
    if take >= 1.0 {
        return None;
    }
    for v in d.iter_mut() {
        *v = if *v == 0.0 { EPS } else { *v / sum - take };
    }
    Some(())
}

/// The range `[max(min, −T), min(max, T)]` (widened to contain 0).
pub fn range(h: &Histogram, levels: usize) -> [f32; 2] {
    let t = threshold(&h.abs_counts(), h.bin_width(), levels);
    with_zero(h.min.max(-t), h.max.min(t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calibrate::minmax;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};

    fn gaussian(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let u: f64 = rng.random::<f64>().max(1e-12);
                let v: f64 = rng.random();
                ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
            })
            .collect()
    }

    #[test]
    fn gaussian_with_outliers_is_clipped_well_below_the_max() {
        let mut xs = gaussian(100_000, 7);
        xs.extend([40.0, -38.0, 35.0, 39.5, -40.0]);
        let h = Histogram::of(&xs, 2048);
        let [lo, hi] = range(&h, DEFAULT_LEVELS);
        eprintln!("gaussian + outliers: range [{lo}, {hi}], max {}", h.max);
        assert!(hi > 2.5 && hi < 8.0, "threshold {hi}");
        assert_eq!(lo, -hi);
        assert!(hi < 0.25 * h.max);
    }

    #[test]
    fn uniform_data_is_not_clipped() {
        let xs: Vec<f32> = (0..50_000).map(|i| i as f32 / 50_000.0).collect();
        let h = Histogram::of(&xs, 2048);
        let [lo, hi] = range(&h, DEFAULT_LEVELS);
        assert_eq!(lo, 0.0);
        assert!(hi >= 0.95, "threshold {hi}");
    }

    #[test]
    fn few_bins_cannot_clip() {
        // With no more bins than levels every candidate keeps everything.
        assert_eq!(threshold(&[3, 0, 1, 2], 0.5, 8), 2.0);
        assert_eq!(threshold(&[0, 0, 0, 0], 0.5, 8), 0.5);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn inside_minmax_contains_zero(xs in prop::collection::vec(-50f32..50.0, 1..400)) {
            let h = Histogram::of(&xs, 256);
            let [lo, hi] = range(&h, 32);
            let [mlo, mhi] = minmax::range(h.min, h.max);
            prop_assert!(lo.is_finite() && hi.is_finite() && hi > lo);
            prop_assert!(lo <= 0.0 && hi >= 0.0);
            prop_assert!(lo >= mlo && (hi <= mhi || hi - lo <= crate::calibrate::range::MIN_WIDTH));
        }
    }
}
