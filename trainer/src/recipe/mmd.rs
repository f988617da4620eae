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

use tch::Tensor;

/// Squared Euclidean distances between the rows of `a [n, d]` and `b [m, d]` → `[n, m]`.
fn sq_dists(a: &Tensor, b: &Tensor) -> Tensor {
    let aa = a.pow_tensor_scalar(2).sum_dim_intlist([1i64].as_slice(), true, a.kind());
    let bb = b.pow_tensor_scalar(2).sum_dim_intlist([1i64].as_slice(), true, b.kind());
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

/// `MMD²` of `x [n, d]` against as many samples of the standard normal prior `N(0, I)`
/// (drawn from libtorch's generator, which the training loop seeds per step).
pub fn mmd2_to_normal(x: &Tensor, bandwidths: &[f64]) -> Tensor {
    let prior = Tensor::randn(x.size(), (x.kind(), x.device()));
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
        let near = mmd2_to_normal(&x, &BANDWIDTHS).double_value(&[]);
        let far = mmd2_to_normal(&(&x + 3.0), &BANDWIDTHS).double_value(&[]);
        assert!(near >= 0.0 && far > 10.0 * near, "{near} {far}");
    }

    /// Twice differentiable: the gradient of the gradient norm exists and is finite.
    #[test]
    fn mmd_has_second_derivatives() {
        tch::manual_seed(1);
        let x = Tensor::randn([6, 3], (Kind::Double, Device::Cpu)).set_requires_grad(true);
        let y = Tensor::randn([6, 3], (Kind::Double, Device::Cpu));
        let l = mmd2(&x, &y, &BANDWIDTHS);
        let g = Tensor::run_backward(&[&l], &[&x], true, true).remove(0);
        let gg = Tensor::run_backward(&[&g.pow_tensor_scalar(2).sum(Kind::Double)], &[&x], false, false);
        assert!(gg[0].isfinite().all().int64_value(&[]) == 1);
        assert!(gg[0].abs().sum(Kind::Double).double_value(&[]) > 0.0);
    }
}
