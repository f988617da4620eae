//! Per-tensor activation histogram: `2 · bins` equal bins over `[−amax, amax]`, where
//! `amax = max(|min|, |max|)` is known from a first (min/max) pass over the calibration set.
//! The symmetric layout lets [`Histogram::abs_counts`] fold it exactly into the `|x|`
//! histogram (`bins` bins over `[0, amax]`) that the entropy calibrator works on.

/// Default bins per side.
pub const DEFAULT_BINS: usize = 2048;

#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// Half-width of the binned interval (> 0).
    pub amax: f32,
    /// `2 · bins` counts; bin `k` covers `[−amax + k·w, −amax + (k+1)·w)`, `w = amax / bins`
    /// (the last one includes `amax`).
    pub counts: Vec<u64>,
    /// Observed extremes (over every value added, and the first pass).
    pub min: f32,
    pub max: f32,
}

impl Histogram {
    /// An empty histogram for values known to lie in `[min, max]`.
    pub fn new(min: f32, max: f32, bins: usize) -> Histogram {
        assert!(bins > 0, "histogram needs bins");
        let amax = min.abs().max(max.abs());
        let amax = if amax > 0.0 && amax.is_finite() {
            amax
        } else {
            super::range::MIN_WIDTH
        };
        Histogram {
            amax,
            counts: vec![0; 2 * bins],
            min,
            max,
        }
    }

    /// Histogram of a slice, both passes at once (tests, small data).
    pub fn of(xs: &[f32], bins: usize) -> Histogram {
        let min = xs.iter().copied().fold(f32::INFINITY, f32::min);
        let max = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut h = Histogram::new(min.min(0.0), max.max(0.0), bins);
        h.add(xs);
        h.min = min;
        h.max = max;
        h
    }

    /// Bins per side.
    pub fn bins(&self) -> usize {
        self.counts.len() / 2
    }

    pub fn bin_width(&self) -> f32 {
        self.amax / self.bins() as f32
    }

    /// Lower edge of bin `k` of the signed histogram (`k` may be `2·bins`: the upper end).
    pub fn edge(&self, k: usize) -> f32 {
        -self.amax + k as f32 * self.bin_width()
    }

    /// Centre of bin `k`.
    pub fn centre(&self, k: usize) -> f32 {
        -self.amax + (k as f32 + 0.5) * self.bin_width()
    }

    /// Adds values (finite ones; the caller rejects non-finite activations). Values outside
    /// `[−amax, amax]` land in the end bins.
    pub fn add(&mut self, xs: &[f32]) {
        let n = self.counts.len();
        let k = n as f32 / (2.0 * self.amax);
        for &x in xs {
            let b = ((x + self.amax) * k) as isize;
            self.counts[b.clamp(0, n as isize - 1) as usize] += 1;
        }
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The `|x|` histogram: `bins` counts over `[0, amax]`.
    pub fn abs_counts(&self) -> Vec<u64> {
        let b = self.bins();
        (0..b)
            .map(|i| self.counts[b + i] + self.counts[b - 1 - i])
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_land_in_their_bins() {
        let h = Histogram::of(&[-1.0, -0.3, 0.0, 0.24, 1.0], 4);
        // amax 1, w 0.25: bins [-1,-.75) [-.75,-.5) [-.5,-.25) [-.25,0) [0,.25) .. [.75,1]
        assert_eq!(h.counts, vec![1, 0, 1, 0, 2, 0, 0, 1]);
        assert_eq!(h.abs_counts(), vec![2, 1, 0, 2]);
        assert_eq!(h.total(), 5);
        assert_eq!((h.min, h.max), (-1.0, 1.0));
        assert_eq!(h.edge(8), 1.0);
    }

    #[test]
    fn constant_zero_tensor_gets_a_positive_width() {
        let h = Histogram::of(&[0.0; 10], 8);
        assert!(h.amax > 0.0);
        assert_eq!(h.total(), 10);
    }
}
