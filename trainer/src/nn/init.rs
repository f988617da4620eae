//! Deterministic weight initialisation. Each tensor draws from its own ChaCha stream keyed
//! by (seed, weight name), so adding a node to a graph does not change the initial values of
//! the others, and the numbers do not depend on libtorch's RNG or the device.

use fas_core::ir::Op;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::Tensor;

pub(crate) struct Init {
    seed: u64,
}

fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Init {
    pub(crate) fn new(seed: u64) -> Init {
        Init { seed }
    }

    fn rng(&self, name: &str) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(self.seed ^ fnv1a(name).rotate_left(17))
    }

    fn uniform(&self, name: &str, n: usize, bound: f32) -> Vec<f32> {
        let mut r = self.rng(name);
        (0..n).map(|_| r.random_range(-bound..bound)).collect()
    }

    fn normal(&self, name: &str, n: usize, std: f32) -> Vec<f32> {
        let mut r = self.rng(name);
        let mut out = Vec::with_capacity(n + 1);
        while out.len() < n {
            // Box–Muller: two independent standard normals per pair of uniforms.
            let u1: f64 = 1.0 - r.random::<f64>();
            let u2: f64 = r.random::<f64>();
            let rad = (-2.0 * u1.ln()).sqrt();
            let th = std::f64::consts::TAU * u2;
            out.push((rad * th.cos()) as f32 * std);
            out.push((rad * th.sin()) as f32 * std);
        }
        out.truncate(n);
        out
    }

    /// The initial value of weight `name` (of a node with `op`) with `shape`.
    pub(crate) fn tensor(&mut self, op: &Op, node: &str, name: &str, shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        let suffix = name.rsplit('.').next().unwrap_or("");
        let fill = |v: f32| Tensor::full(&dims, f64::from(v), (tch::Kind::Float, tch::Device::Cpu));
        let values = |v: Vec<f32>| Tensor::from_slice(&v).view(dims.as_slice());
        let is_gate_out = name.contains(".gate.fc2.");
        match (op, suffix) {
            (Op::Conv2d { .. }, "weight") => {
                // Kaiming normal, fan_out, ReLU gain (torchvision ResNet).
                let fan_out = shape[0] * shape[2] * shape[3];
                values(self.normal(name, n, (2.0 / fan_out as f32).sqrt()))
            }
            (Op::Conv2d { .. }, "bias") => fill(0.0),
            (_, "running_mean") => fill(0.0),
            (_, "running_var") => fill(1.0),
            (Op::PRelu { .. }, "weight") => fill(0.25),
            // The AFNM gate's output layer starts at zero: ρ = σ(0) = 0.5 for every sample.
            (Op::AdaptiveBnIn { .. }, _) if is_gate_out => fill(0.0),
            (
                Op::BatchNorm2d { .. } | Op::InstanceNorm2d { .. } | Op::AdaptiveBnIn { .. },
                "weight",
            ) => fill(1.0),
            (
                Op::BatchNorm2d { .. } | Op::InstanceNorm2d { .. } | Op::AdaptiveBnIn { .. },
                "bias",
            ) => fill(0.0),
            // Linear layers (incl. SE / style-attention / gate FCs): PyTorch's default,
            // U(−1/√fan_in, 1/√fan_in) for weight and bias.
            (_, "weight") if shape.len() == 2 => {
                let bound = 1.0 / (shape[1] as f32).sqrt();
                values(self.uniform(name, n, bound))
            }
            (_, "bias") => {
                // Same bound as the matching weight: 1/√fan_in.
                let weight = format!("{}weight", name.strip_suffix("bias").unwrap_or(name));
                let fan_in = op
                    .weights(node)
                    .into_iter()
                    .find(|(w, _)| *w == weight)
                    .and_then(|(_, s)| s.get(1).copied())
                    .unwrap_or(1);
                values(self.uniform(name, n, 1.0 / (fan_in.max(1) as f32).sqrt()))
            }
            _ => values(self.normal(name, n, 0.02)),
        }
    }
}
