//! Percentile calibration: clip the top and bottom `(100 − p) %` of the values. The upper
//! end is the upper edge of the bin where the cumulative count first reaches `p %`, the
//! lower end the lower edge of the bin where the count from the top first does; both are
//! clamped to the observed extremes, so the range never exceeds min/max's.

use super::histogram::Histogram;
use super::range::with_zero;

/// The range keeping the central values up to percentile `p` (in `[50, 100]`) at each end.
pub fn range(h: &Histogram, p: f64) -> [f32; 2] {
    let total = h.total();
    if total == 0 {
        return with_zero(0.0, 0.0);
    }
    let need = (p / 100.0 * total as f64).ceil().max(1.0) as u64;
    let mut cum = 0u64;
    let mut hi = h.max;
    for (k, &c) in h.counts.iter().enumerate() {
        cum += c;
        if cum >= need {
            hi = h.edge(k + 1).min(h.max);
            break;
        }
    }
    let mut cum = 0u64;
    let mut lo = h.min;
    for (k, &c) in h.counts.iter().enumerate().rev() {
        cum += c;
        if cum >= need {
            lo = h.edge(k).max(h.min);
            break;
        }
    }
    with_zero(lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calibrate::minmax;
    use proptest::prelude::*;

    #[test]
    fn exponential_quantile() {
        // x = −ln(1 − u) on a regular grid of u: the p-quantile is −ln(1 − p).
        let n = 200_000;
        let xs: Vec<f32> = (0..n)
            .map(|i| -(1.0 - (i as f64 + 0.5) / n as f64).ln() as f32)
            .collect();
        let h = Histogram::of(&xs, 2048);
        for p in [99.0f64, 99.9, 99.99] {
            // The analytic quantile, and the sample quantile (what a histogram can see).
            let exact = -(1.0 - p / 100.0).ln() as f32;
            let sample = xs[(p / 100.0 * n as f64).ceil() as usize - 1];
            assert!(
                (sample - exact).abs() < 0.03,
                "p {p}: grid {sample} vs {exact}"
            );
            let [lo, hi] = range(&h, p);
            assert_eq!(lo, 0.0);
            // The upper edge of the bin that holds the sample quantile.
            assert!(
                hi >= sample && hi <= sample + h.bin_width() + 1e-5,
                "p {p}: {hi} vs {sample}"
            );
        }
        assert_eq!(range(&h, 100.0), [0.0, h.max]);
    }

    #[test]
    fn uniform_two_sided() {
        let xs: Vec<f32> = (0..=10_000)
            .map(|i| -1.0 + 2.0 * i as f32 / 10_000.0)
            .collect();
        let h = Histogram::of(&xs, 2048);
        let [lo, hi] = range(&h, 99.0);
        assert!((hi - 0.98).abs() <= h.bin_width() + 1e-3, "{hi}");
        assert!((lo + 0.98).abs() <= h.bin_width() + 1e-3, "{lo}");
    }

    proptest! {
        #[test]
        fn inside_minmax_contains_zero(
            xs in prop::collection::vec(-100f32..100.0, 1..300),
            p in 50f64..=100.0,
        ) {
            let h = Histogram::of(&xs, 64);
            let [lo, hi] = range(&h, p);
            let [mlo, mhi] = minmax::range(h.min, h.max);
            prop_assert!(lo.is_finite() && hi.is_finite() && hi > lo);
            prop_assert!(lo <= 0.0 && hi >= 0.0);
            prop_assert!(lo >= mlo && (hi <= mhi || hi - lo <= crate::calibrate::range::MIN_WIDTH));
        }
    }
}
