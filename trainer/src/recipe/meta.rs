//! The inner (meta-train) update shared by the meta-learning recipes (ANRL, D²AM):
//! `θ' = θ − α∇_θ L`, MAML-style.

use tch::Tensor;

/// `θ' = θ − α∇_θ L` for the tensors `theta` (leaves that require grad, or tensors that
/// depend on such). The graph of `loss` is kept for the outer backward pass. With
/// `second_order` the gradient is taken with `create_graph`, so `θ'` stays differentiable
/// through `∇_θ L` and the outer gradient includes the Hessian-vector terms; without it the
/// gradient is a constant (`∂θ'/∂θ = I`, first-order MAML).
pub fn inner_step(loss: &Tensor, theta: &[Tensor], lr: f64, second_order: bool) -> Vec<Tensor> {
    let refs: Vec<&Tensor> = theta.iter().collect();
    let grads = Tensor::run_backward(&[loss], &refs, true, second_order);
    theta
        .iter()
        .zip(grads)
        .map(|(t, g)| {
            let g = if second_order { g } else { g.detach() };
            t - g * lr
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    /// `L(θ) = Σθ³`: `θ' = θ − 3αθ²`; the outer gradient of `Σθ'` is `1 − 6αθ` second
    /// order and `1` first order.
    #[test]
    fn second_order_differentiates_through_the_gradient() {
        let theta = Tensor::from_slice(&[1.0f64, -2.0]).set_requires_grad(true);
        let loss = theta.pow_tensor_scalar(3).sum(Kind::Double);
        for (second, want) in [(true, [1.0 - 0.6, 1.0 + 1.2]), (false, [1.0, 1.0])] {
            let adapted = inner_step(&loss, &[theta.shallow_clone()], 0.1, second);
            let v = Vec::<f64>::try_from(&adapted[0].detach()).unwrap();
            assert!(
                (v[0] - 0.7).abs() < 1e-12 && (v[1] + 3.2).abs() < 1e-12,
                "{v:?}"
            );
            let g = Tensor::run_backward(&[&adapted[0].sum(Kind::Double)], &[&theta], true, false);
            let g = Vec::<f64>::try_from(&g[0]).unwrap();
            for (a, b) in g.iter().zip(want) {
                assert!((a - b).abs() < 1e-12, "second order {second}: {g:?}");
            }
        }
    }
}
