//! MSE calibration: among ranges `α · [lo, hi]` (the min/max range shrunk by
//! `α = k / K, k = 1..=K`), pick the one whose quantiser (the actual u8/i8 grid) has the
//! least expected squared error `Σ_bins count · E[(x̂ − x)²]`, the expectation taken over a
//! few evenly spaced points inside each bin (values spread uniformly within a bin).

use super::grid::ActivationType;
use super::histogram::Histogram;
use super::minmax;
use super::range::with_zero;

/// Number of shrink factors tried.
pub const DEFAULT_CANDIDATES: usize = 256;
/// Points per bin at which the error is evaluated.
const POINTS_PER_BIN: usize = 4;

/// Expected squared error of quantising the histogram's values on `range`.
pub fn expected_error(h: &Histogram, ty: ActivationType, range: [f32; 2]) -> f64 {
    let q = ty.params(range);
    let w = h.bin_width();
    let mut err = 0f64;
    for (k, &c) in h.counts.iter().enumerate() {
        if c == 0 {
            continue;
        }
        let e = h.edge(k);
        let mut s = 0f64;
        for j in 0..POINTS_PER_BIN {
            let x = (e + (j as f32 + 0.5) / POINTS_PER_BIN as f32 * w).clamp(h.min, h.max);
            let d = (q.fake_quant(x) - x) as f64;
            s += d * d;
        }
        err += c as f64 * s / POINTS_PER_BIN as f64;
    }
    err
}

/// The candidate range with the least [`expected_error`].
pub fn range(h: &Histogram, ty: ActivationType, candidates: usize) -> [f32; 2] {
    let [lo, hi] = minmax::range(h.min, h.max);
    let mut best = (f64::INFINITY, [lo, hi]);
    for k in 1..=candidates.max(1) {
        let a = k as f32 / candidates.max(1) as f32;
        let r = with_zero(lo * a, hi * a);
        let e = expected_error(h, ty, r);
        if e < best.0 {
            best = (e, r);
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};

    fn exact_error(xs: &[f32], ty: ActivationType, r: [f32; 2]) -> f64 {
        let q = ty.params(r);
        xs.iter()
            .map(|&x| ((q.fake_quant(x) - x) as f64).powi(2))
            .sum()
    }

    #[test]
    fn matches_brute_force_on_small_data() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        // Laplace values (heavy tails) plus a few outliers.
        let mut xs: Vec<f32> = (0..3000)
            .map(|_| {
                let u: f32 = rng.random::<f32>() - 0.5;
                -u.signum() * (1.0 - 2.0 * u.abs()).max(1e-9).ln()
            })
            .collect();
        xs.extend([60.0, -45.0, 52.0]);
        for ty in [ActivationType::I8, ActivationType::U8] {
            let k = 64;
            let h = Histogram::of(&xs, 2048);
            let chosen = range(&h, ty, k);
            let [lo, hi] = minmax::range(h.min, h.max);
            let brute = (1..=k)
                .map(|i| {
                    let a = i as f32 / k as f32;
                    exact_error(&xs, ty, with_zero(lo * a, hi * a))
                })
                .fold(f64::INFINITY, f64::min);
            let got = exact_error(&xs, ty, chosen);
            eprintln!("{ty}: chosen {chosen:?}, error {got:.4} vs brute-force best {brute:.4}");
            assert!(got <= brute * 1.02, "{ty}: {got} > {brute}");
            assert!(chosen[1] <= h.max && chosen[0] >= h.min.min(0.0));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn inside_minmax_contains_zero(
            xs in prop::collection::vec(-50f32..50.0, 1..200), u8 in any::<bool>()
        ) {
            let ty = if u8 { ActivationType::U8 } else { ActivationType::I8 };
            let h = Histogram::of(&xs, 128);
            let [lo, hi] = range(&h, ty, 32);
            let [mlo, mhi] = minmax::range(h.min, h.max);
            prop_assert!(lo.is_finite() && hi.is_finite() && hi > lo);
            prop_assert!(lo <= 0.0 && hi >= 0.0);
            prop_assert!(lo >= mlo && (hi <= mhi || hi - lo <= crate::calibrate::range::MIN_WIDTH));
        }
    }
}
