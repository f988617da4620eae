//! Maximum mean discrepancy with Gaussian kernels (Gretton et al., JMLR 2012), as D²AM's
//! regulariser that pulls a feature distribution towards a prior (Chen et al., AAAI 2021,
//! Eq. 9).
//!
//! `MMD²(X, Y) = mean k(x, x') + mean k(y, y') − 2·mean k(x, y)` (the biased V-statistic,
//! always ≥ 0), with the multi-bandwidth kernel `k(a, b) = Σ_s exp(−‖a − b‖² / (2·s·d))`
//! over bandwidth factors `s` scaled by the feature dimension `d` (so the kernel's reach
//! follows the typical squared distance `2d` between standard-normal samples). All
//! operations are twice differentiable, so the term can sit inside a second-order inner
//! step.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::Tensor;

/// Squared Euclidean distances between the rows of `a [n, d]` and `b [m, d]` → `[n, m]`.
fn sq_dists(a: &Tensor, b: &Tensor) -> Tensor {
    let aa = a
        .pow_tensor_scalar(2)
        .sum_dim_intlist([1i64].as_slice(), true, a.kind());
    let bb = b
        .pow_tensor_scalar(2)
        .sum_dim_intlist([1i64].as_slice(), true, b.kind());
    (aa + bb.transpose(0, 1) - a.matmul(&b.transpose(0, 1)) * 2.0).clamp_min(0.0)
}

fn kernel_mean(a: &Tensor, b: &Tensor, bandwidths: &[f64]) -> Tensor {
    let d2 = sq_dists(a, b);
    let dim = a.size()[1] as f64;
    let mut k = Tensor::zeros_like(&d2);
    for &s in bandwidths {
        k += (&d2 * (-1.0 / (2.0 * s * dim))).exp();
    }
    k.mean(a.kind())
}

/// `MMD²` between the rows of `x [n, d]` and `y [m, d]` (see the module docs).
pub fn mmd2(x: &Tensor, y: &Tensor, bandwidths: &[f64]) -> Tensor {
    kernel_mean(x, x, bandwidths) + kernel_mean(y, y, bandwidths)
        - kernel_mean(x, y, bandwidths) * 2.0
}

/// `[rows, cols]` samples of `N(0, 1)` (Box–Muller on a ChaCha8 stream), a pure function of
/// `seed` — independent of libtorch's global generator, so steps are reproducible whatever
/// else draws random numbers.
pub fn standard_normal(rows: usize, cols: usize, seed: u64) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = rows * cols;
    let mut v = Vec::with_capacity(n + 1);
    while v.len() < n {
        let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
        let u2: f64 = rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt();
        let t = 2.0 * std::f64::consts::PI * u2;
        v.push((r * t.cos()) as f32);
        v.push((r * t.sin()) as f32);
    }
    v.truncate(n);
    Tensor::from_slice(&v).view([rows as i64, cols as i64])
}

/// `MMD²` of `x [n, d]` against `n` samples of the standard normal prior `N(0, I)` drawn
/// with [`standard_normal`] from `seed`.
pub fn mmd2_to_normal(x: &Tensor, bandwidths: &[f64], seed: u64) -> Tensor {
    let s = x.size();
    let prior = standard_normal(s[0] as usize, s[1] as usize, seed)
        .to_kind(x.kind())
        .to_device(x.device());
    mmd2(x, &prior, bandwidths)
}

/// The default bandwidth factors (`s` in the kernel above).
pub const BANDWIDTHS: [f64; 3] = [0.25, 1.0, 4.0];

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn t(v: &[f64], rows: i64) -> Tensor {
        Tensor::from_slice(v).view([rows, -1])
    }

    /// One point each, 1-D, one bandwidth s = 0.5 (so 2·s·d = 1):
    /// `1 + 1 − 2·exp(−1)` for points at distance 1.
    #[test]
    fn mmd_known_answer() {
        let x = t(&[0.0], 1);
        let y = t(&[1.0], 1);
        let v = mmd2(&x, &y, &[0.5]).double_value(&[]);
        assert!((v - (2.0 - 2.0 * (-1.0f64).exp())).abs() < 1e-12, "{v}");
        // Two points against two, 2-D, two bandwidths — written out term by term.
        let x = t(&[0.0, 0.0, 1.0, 0.0], 2);
        let y = t(&[0.0, 2.0, 0.0, 0.0], 2);
        let k = |d2: f64| (-d2 / 4.0f64).exp() + (-d2 / 8.0f64).exp(); // s = 1, 2; d = 2
        let kxx = (2.0 * k(0.0) + 2.0 * k(1.0)) / 4.0;
        let kyy = (2.0 * k(0.0) + 2.0 * k(4.0)) / 4.0;
        let kxy = (k(4.0) + k(0.0) + k(5.0) + k(1.0)) / 4.0;
        let want = kxx + kyy - 2.0 * kxy;
        let v = mmd2(&x, &y, &[1.0, 2.0]).double_value(&[]);
        assert!((v - want).abs() < 1e-12, "{v} vs {want}");
    }

    #[test]
    fn mmd_of_a_set_with_itself_is_zero_and_grows_with_shift() {
        tch::manual_seed(0);
        let x = Tensor::randn([64, 8], (Kind::Double, Device::Cpu));
        assert!(mmd2(&x, &x, &BANDWIDTHS).double_value(&[]).abs() < 1e-12);
        let near = mmd2_to_normal(&x, &BANDWIDTHS, 1).double_value(&[]);
        let far = mmd2_to_normal(&(&x + 3.0), &BANDWIDTHS, 1).double_value(&[]);
        assert!(near >= 0.0 && far > 10.0 * near, "{near} {far}");
    }

    #[test]
    fn standard_normal_is_deterministic_and_standard() {
        let a = standard_normal(200, 50, 7);
        assert!(a.equal(&standard_normal(200, 50, 7)));
        assert!(!a.equal(&standard_normal(200, 50, 8)));
        let mean = a.mean(tch::Kind::Float).double_value(&[]);
        let std = a.std(true).double_value(&[]);
        assert!(
            mean.abs() < 0.03 && (std - 1.0).abs() < 0.03,
            "{mean} {std}"
        );
    }

    /// Twice differentiable: the gradient of the gradient norm exists and is finite.
    #[test]
    fn mmd_has_second_derivatives() {
        tch::manual_seed(1);
        let x = Tensor::randn([6, 3], (Kind::Double, Device::Cpu)).set_requires_grad(true);
        let y = Tensor::randn([6, 3], (Kind::Double, Device::Cpu));
        let l = mmd2(&x, &y, &BANDWIDTHS);
        let g = Tensor::run_backward(&[&l], &[&x], true, true).remove(0);
        let gg = Tensor::run_backward(
            &[&g.pow_tensor_scalar(2).sum(Kind::Double)],
            &[&x],
            false,
            false,
        );
        assert!(gg[0].isfinite().all().int64_value(&[]) == 1);
        assert!(gg[0].abs().sum(Kind::Double).double_value(&[]) > 0.0);
    }
}
