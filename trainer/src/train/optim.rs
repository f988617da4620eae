//! Adam / AdamW written out on tensors, so the whole optimiser state is ours to checkpoint
//! and resume bit-identically (libtorch's C++ optimiser state is not reachable from tch).
//!
//! Update (Kingma & Ba 2015, Alg. 1; decoupled weight decay: Loshchilov & Hutter 2019):
//! `m ← β1 m + (1−β1) g`, `v ← β2 v + (1−β2) g²`, `p ← p − lr · m̂ / (√v̂ + ε)` with bias
//! corrections `m̂ = m / (1−β1ᵗ)`, `v̂ = v / (1−β2ᵗ)`; Adam adds `wd · p` to `g`, AdamW
//! subtracts `lr · wd · p` from `p`.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// AdamW (decoupled) when true, Adam with L2 in the gradient when false.
    pub decoupled: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: true,
        }
    }
}

/// Optimiser over a fixed, named set of parameters.
pub struct Adam {
    cfg: AdamConfig,
    params: Vec<(String, Tensor)>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    step: i64,
}

impl Adam {
    /// `params`: name → trainable tensor (e.g. from `VarStore::variables()`); sorted by name
    /// so the state layout does not depend on hash order.
    pub fn new(params: impl IntoIterator<Item = (String, Tensor)>, cfg: AdamConfig) -> Self {
        let mut params: Vec<(String, Tensor)> = params
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let m = params.iter().map(|(_, p)| p.zeros_like()).collect();
        let v = params.iter().map(|(_, p)| p.zeros_like()).collect();
        Self {
            cfg,
            params,
            m,
            v,
            step: 0,
        }
    }

    pub fn steps_taken(&self) -> i64 {
        self.step
    }

    pub fn zero_grad(&self) {
        for (_, p) in &self.params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.detach_().zero_();
            }
        }
    }

    /// Scales gradients so their global L2 norm is at most `max`; returns the norm before.
    pub fn clip_grad_norm(&self, max: f64) -> f64 {
        let grads: Vec<Tensor> = self
            .params
            .iter()
            .map(|(_, p)| p.grad())
            .filter(Tensor::defined)
            .collect();
        if grads.is_empty() {
            return 0.0;
        }
        let total = tch::no_grad(|| {
            let sq: Vec<Tensor> = grads
                .iter()
                .map(|g| g.to_kind(Kind::Float).square().sum(Kind::Float))
                .collect();
            Tensor::stack(&sq, 0)
                .sum(Kind::Float)
                .sqrt()
                .double_value(&[])
        });
        if total > max && total.is_finite() {
            let scale = max / (total + 1e-6);
            tch::no_grad(|| {
                for g in &grads {
                    let _ = g.shallow_clone().g_mul_scalar_(scale);
                }
            });
        }
        total
    }

    /// One update with learning rate `lr`. Parameters without a gradient are left alone
    /// (their moments too), as in PyTorch.
    pub fn step(&mut self, lr: f64) {
        self.step += 1;
        let c = self.cfg;
        let bc1 = 1.0 - c.beta1.powi(self.step as i32);
        let bc2 = 1.0 - c.beta2.powi(self.step as i32);
        tch::no_grad(|| {
            for (i, (_, p)) in self.params.iter().enumerate() {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let mut p = p.shallow_clone();
                let g = if c.weight_decay != 0.0 && !c.decoupled {
                    &g + &p * c.weight_decay
                } else {
                    g
                };
                if c.weight_decay != 0.0 && c.decoupled {
                    let _ = p.g_mul_scalar_(1.0 - lr * c.weight_decay);
                }
                // In-place, in PyTorch's single-tensor order: m ← lerp(m, g, 1−β1);
                // v ← β2 v + (1−β2) g²; p ← p − (lr/bc1) · m / (√v/√bc2 + ε).
                let _ = self.m[i].lerp_(&g, 1.0 - c.beta1);
                let _ = self.v[i].g_mul_scalar_(c.beta2);
                let _ = self.v[i].addcmul_(&(&g * (1.0 - c.beta2)), &g);
                let mut denom = self.v[i].sqrt();
                let _ = denom.g_div_scalar_(bc2.sqrt());
                let _ = denom.g_add_scalar_(c.eps);
                let _ = denom.g_div_scalar_(-(lr / bc1));
                let _ = p.addcdiv_(&self.m[i], &denom);
            }
        });
    }

    /// State tensors for a checkpoint: `optim.m.<param>`, `optim.v.<param>`, `optim.step`.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(2 * self.params.len() + 1);
        for (i, (name, _)) in self.params.iter().enumerate() {
            out.push((format!("optim.m.{name}"), self.m[i].shallow_clone()));
            out.push((format!("optim.v.{name}"), self.v[i].shallow_clone()));
        }
        out.push(("optim.step".into(), Tensor::from_slice(&[self.step])));
        out
    }

    /// Restores what [`Adam::state`] saved; every parameter's moments must be present with
    /// matching shapes.
    pub fn load_state(&mut self, state: &BTreeMap<String, Tensor>) -> Result<()> {
        for (i, (name, p)) in self.params.iter().enumerate() {
            for (kind, slot) in [("m", &mut self.m[i]), ("v", &mut self.v[i])] {
                let key = format!("optim.{kind}.{name}");
                let Some(t) = state.get(&key) else {
                    bail!("checkpoint has no optimiser state `{key}`: it was written for another model");
                };
                if t.size() != p.size() {
                    bail!(
                        "checkpoint `{key}` has shape {:?}, parameter has {:?}",
                        t.size(),
                        p.size()
                    );
                }
                tch::no_grad(|| slot.copy_(&t.to_device(p.device())));
            }
        }
        let Some(step) = state.get("optim.step") else {
            bail!("checkpoint has no `optim.step`")
        };
        self.step = step.int64_value(&[0]);
        Ok(())
    }
}

/// Learning-rate schedule, evaluated per optimiser step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Schedule {
    Constant,
    /// Multiply by `gamma` every `every` steps.
    Step {
        every: usize,
        gamma: f64,
    },
    /// Cosine from the base rate to `min_lr` over `total` steps (then `min_lr`).
    Cosine {
        total: usize,
        min_lr: f64,
    },
}

impl Schedule {
    pub fn lr(&self, base: f64, step: usize) -> f64 {
        match *self {
            Schedule::Constant => base,
            Schedule::Step { every, gamma } => base * gamma.powi((step / every.max(1)) as i32),
            Schedule::Cosine { total, min_lr } => {
                let t = (step as f64 / total.max(1) as f64).min(1.0);
                min_lr + 0.5 * (base - min_lr) * (1.0 + (std::f64::consts::PI * t).cos())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known answer: one Adam step moves every coordinate by exactly lr·sign(g) (bias
    /// correction makes m̂/√v̂ = g/|g| at t = 1, up to ε).
    #[test]
    fn first_step_moves_by_lr_times_sign() {
        let p = Tensor::from_slice(&[1.0f32, -2.0, 3.0]).set_requires_grad(true);
        let mut opt = Adam::new(
            [("p".to_string(), p.shallow_clone())],
            AdamConfig::default(),
        );
        let loss = (&p * Tensor::from_slice(&[2.0f32, -0.5, 0.0])).sum(Kind::Float);
        loss.backward();
        opt.step(0.1);
        let got = Vec::<f32>::try_from(&p.detach()).unwrap();
        assert!((got[0] - 0.9).abs() < 1e-6 && (got[1] - -1.9).abs() < 1e-6);
        assert_eq!(got[2], 3.0, "zero gradient: no move");
    }

    /// Matches PyTorch's torch.optim.AdamW on a quadratic (values from
    /// `torch.optim.AdamW([p], lr=0.05, weight_decay=0.1)` with loss = sum((p - 1)^2),
    /// p0 = [0.5, -1.0] in float64, 3 steps, computed with the venv's torch 2.13:
    /// `p=torch.tensor([0.5,-1.0],dtype=torch.float64,requires_grad=True);
    /// o=torch.optim.AdamW([p],lr=0.05,weight_decay=0.1)`, then 3 × zero_grad / backward / step).
    #[test]
    fn adamw_matches_pytorch_known_answer() {
        let p = Tensor::from_slice(&[0.5f64, -1.0]).set_requires_grad(true);
        let cfg = AdamConfig {
            weight_decay: 0.1,
            ..AdamConfig::default()
        };
        let mut opt = Adam::new([("p".to_string(), p.shallow_clone())], cfg);
        for _ in 0..3 {
            opt.zero_grad();
            (&p - 1.0).square().sum(Kind::Double).backward();
            opt.step(0.05);
        }
        let got = Vec::<f64>::try_from(&p.detach()).unwrap();
        let want = [0.6410554314881529, -0.8359757276454386];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn state_round_trip_resumes_identically() {
        let run = |split: Option<usize>| {
            let p = Tensor::from_slice(&[0.3f32, 0.7, -0.2]).set_requires_grad(true);
            let mut opt = Adam::new(
                [("w".to_string(), p.shallow_clone())],
                AdamConfig::default(),
            );
            for s in 0..6 {
                if Some(s) == split {
                    let saved: BTreeMap<String, Tensor> = opt
                        .state()
                        .into_iter()
                        .map(|(k, t)| (k, t.copy()))
                        .collect();
                    opt = Adam::new(
                        [("w".to_string(), p.shallow_clone())],
                        AdamConfig::default(),
                    );
                    opt.load_state(&saved).unwrap();
                }
                opt.zero_grad();
                (&p * &p * (s as f64 + 1.0)).sum(Kind::Float).backward();
                opt.step(0.01);
            }
            Vec::<f32>::try_from(&p.detach()).unwrap()
        };
        assert_eq!(run(None), run(Some(3)));
    }

    #[test]
    fn clipping_bounds_the_global_norm() {
        let p = Tensor::from_slice(&[0.0f32, 0.0]).set_requires_grad(true);
        let opt = Adam::new(
            [("p".to_string(), p.shallow_clone())],
            AdamConfig::default(),
        );
        (&p * Tensor::from_slice(&[3.0f32, 4.0]))
            .sum(Kind::Float)
            .backward();
        let before = opt.clip_grad_norm(1.0);
        assert!((before - 5.0).abs() < 1e-6);
        let g = Vec::<f32>::try_from(&p.grad()).unwrap();
        assert!(((g[0] * g[0] + g[1] * g[1]).sqrt() - 1.0).abs() < 1e-4);
    }

    #[test]
    fn schedules() {
        assert_eq!(Schedule::Constant.lr(0.1, 1000), 0.1);
        let s = Schedule::Step {
            every: 50,
            gamma: 0.5,
        };
        assert_eq!(s.lr(1.0, 49), 1.0);
        assert_eq!(s.lr(1.0, 100), 0.25);
        let c = Schedule::Cosine {
            total: 100,
            min_lr: 0.0,
        };
        assert!((c.lr(1.0, 0) - 1.0).abs() < 1e-12);
        assert!((c.lr(1.0, 50) - 0.5).abs() < 1e-12);
        assert!(c.lr(1.0, 100).abs() < 1e-12 && c.lr(1.0, 200).abs() < 1e-12);
    }
}
