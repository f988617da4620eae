//! The model IR (`fas_core::ir`, ARCHITECTURE.md contract 2) executed on tch.
//!
//! [`IrModule`] owns one tensor per IR weight, named exactly as [`fas_core::ir::Op::weights`]
//! names it (`"{node}.{suffix}"`), so `weights.safetensors` written here is what the ONNX
//! exporter reads. The forward pass is functional: parameters can be swapped for explicit
//! tensors ([`Forward::params`]) so meta-learning recipes can run a second-order inner step
//! (θ' = θ − β∇L with `create_graph`) through the same code. Training-only parts of a recipe
//! (identity encoders, discriminators) are separate IR graphs or plain tch code in the recipe.
//!
//! Initialisation follows PyTorch conventions: convolutions Kaiming-normal (fan-out, ReLU) as
//! torchvision's ResNet, linear layers PyTorch's default uniform, norms weight 1 / bias 0,
//! running mean 0 / var 1, PReLU 0.25; the AFNM gate's last layer starts at zero so the BN/IN
//! balance starts at exactly 0.5 (ANRL §3.2).

mod exec;
mod init;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{bail, Context, Result};
use fas_core::ir::Graph;
use tch::{Device, Kind, Tensor};

pub use exec::Forward;

/// The floating kind to compute reductions of `t` in: `Double` for f64 tensors (gradient
/// checks), `Float` otherwise (f32, and f16 under autocast, reduce in f32 as before).
pub fn real_kind(t: &Tensor) -> Kind {
    if t.kind() == Kind::Double {
        Kind::Double
    } else {
        Kind::Float
    }
}

/// Is this IR weight a running statistic (a buffer, not trained by the optimiser)?
pub fn is_buffer(name: &str) -> bool {
    name.ends_with(".running_mean") || name.ends_with(".running_var")
}

/// An IR graph with its weights, runnable on tch.
pub struct IrModule {
    graph: Graph,
    /// Trainable parameters in graph weight order.
    params: Vec<(String, Tensor)>,
    /// BatchNorm / AFNM running statistics in graph weight order.
    buffers: Vec<(String, Tensor)>,
    index: HashMap<String, (bool, usize)>,
    device: Device,
}

impl std::fmt::Debug for IrModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IrModule")
            .field("graph", &self.graph.name)
            .field("params", &self.params.len())
            .field("buffers", &self.buffers.len())
            .field("device", &self.device)
            .finish()
    }
}

impl IrModule {
    /// Validates `graph` and creates freshly initialised weights (deterministic per `seed`,
    /// generated on the CPU so CPU and CUDA runs start from the same numbers).
    pub fn new(graph: Graph, device: Device, seed: u64) -> Result<IrModule> {
        graph
            .infer_shapes()
            .with_context(|| format!("model graph \"{}\"", graph.name))?;
        let mut rng = init::Init::new(seed);
        let mut params = Vec::new();
        let mut buffers = Vec::new();
        let mut index = HashMap::new();
        for node in &graph.nodes {
            for (name, shape) in node.op.weights(&node.name) {
                let t = rng
                    .tensor(&node.op, &node.name, &name, &shape)
                    .to_device(device);
                if is_buffer(&name) {
                    index.insert(name.clone(), (true, buffers.len()));
                    buffers.push((name, t));
                } else {
                    let t = t.set_requires_grad(true);
                    index.insert(name.clone(), (false, params.len()));
                    params.push((name, t));
                }
            }
        }
        Ok(IrModule {
            graph,
            params,
            buffers,
            index,
            device,
        })
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    pub fn device(&self) -> Device {
        self.device
    }

    /// Trainable parameters (shallow handles: the optimiser updates them in place).
    pub fn parameters(&self) -> &[(String, Tensor)] {
        &self.params
    }

    /// Running statistics.
    pub fn buffers(&self) -> &[(String, Tensor)] {
        &self.buffers
    }

    /// Number of trainable scalars.
    pub fn num_params(&self) -> i64 {
        self.params.iter().map(|(_, t)| t.numel() as i64).sum()
    }

    /// One weight by its IR name.
    pub fn tensor(&self, name: &str) -> Option<&Tensor> {
        self.index.get(name).map(|&(buf, i)| {
            if buf {
                &self.buffers[i].1
            } else {
                &self.params[i].1
            }
        })
    }

    /// Every weight (parameters and buffers) in graph order, as written to
    /// `weights.safetensors`.
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let mut order: Vec<(String, Tensor)> = Vec::new();
        for node in &self.graph.nodes {
            for (name, _) in node.op.weights(&node.name) {
                let t = self.tensor(&name).expect("every IR weight has a tensor");
                order.push((name, t.shallow_clone()));
            }
        }
        order
    }

    /// Copies weights from `src` into this module. Every IR weight must be present with
    /// its exact shape; with `strict`, names `src` has that the graph does not are an error
    /// too (a checkpoint of a different model).
    pub fn load_tensors(&mut self, src: &BTreeMap<String, Tensor>, strict: bool) -> Result<()> {
        let mut missing = Vec::new();
        for (name, shape) in self.graph.weights() {
            let Some(t) = src.get(&name) else {
                missing.push(name);
                continue;
            };
            let want: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
            if t.size() != want {
                bail!(
                    "weight \"{name}\" has shape {:?}, the model \"{}\" needs {want:?} — \
                     the weights belong to a different architecture",
                    t.size(),
                    self.graph.name
                );
            }
            let dst = self.tensor(&name).expect("graph weight").shallow_clone();
            tch::no_grad(|| {
                let mut dst = dst;
                dst.copy_(&t.to_kind(Kind::Float).to_device(self.device));
            });
        }
        if !missing.is_empty() {
            bail!(
                "{} weight(s) of model \"{}\" missing, e.g. \"{}\" — the weights belong to a \
                 different architecture",
                missing.len(),
                self.graph.name,
                missing[0]
            );
        }
        if strict {
            let extra: Vec<&String> = src
                .keys()
                .filter(|k| !self.index.contains_key(*k))
                .collect();
            if let Some(first) = extra.first() {
                bail!(
                    "{} unexpected weight(s), e.g. \"{first}\", not in model \"{}\" — the \
                     weights belong to a different architecture",
                    extra.len(),
                    self.graph.name
                );
            }
        }
        Ok(())
    }

    /// Loads user-provided or previously trained weights from a safetensors file.
    pub fn load_safetensors(&mut self, path: &Path, strict: bool) -> Result<()> {
        let src = crate::train::checkpoint::read_tensors(path)?;
        self.load_tensors(&src, strict)
            .with_context(|| format!("loading {}", path.display()))
    }

    /// Writes every weight atomically as safetensors.
    pub fn save_safetensors(&self, path: &Path) -> Result<()> {
        crate::train::checkpoint::write_tensors_atomic(path, &self.named_tensors())
    }

    /// Moves all weights to `device` (parameters stay leaves that require grad).
    pub fn to_device(&mut self, device: Device) {
        for (_, t) in &mut self.params {
            *t = t.detach().to_device(device).set_requires_grad(true);
        }
        for (_, t) in &mut self.buffers {
            *t = t.to_device(device);
        }
        self.device = device;
    }

    /// Inference/training forward of the graph outputs with the module's own parameters.
    pub fn forward(&self, inputs: &[&Tensor], train: bool) -> Result<Vec<Tensor>> {
        let f = Forward {
            train,
            ..Forward::default()
        };
        let mut v = self.run(inputs, &f, &[])?;
        Ok(self
            .graph
            .outputs
            .iter()
            .map(|o| v.remove(o).expect("graph outputs are computed"))
            .collect())
    }

    /// Runs the graph and returns the graph outputs plus the values named in `want`
    /// (intermediate feature maps for recipes that need them).
    pub fn run(
        &self,
        inputs: &[&Tensor],
        f: &Forward<'_>,
        want: &[&str],
    ) -> Result<BTreeMap<String, Tensor>> {
        exec::run(self, inputs, f, want)
    }

    /// Sets every weight from a different module of the same graph (e.g. an EMA or a
    /// best-model snapshot).
    pub fn copy_from(&mut self, other: &IrModule) -> Result<()> {
        let src: BTreeMap<String, Tensor> = other.named_tensors().into_iter().collect();
        self.load_tensors(&src, true)
    }

    /// Detached copies of every weight on the CPU (for best-model snapshots).
    pub fn snapshot(&self) -> BTreeMap<String, Tensor> {
        self.named_tensors()
            .into_iter()
            .map(|(k, t)| (k, t.detach().to_device(Device::Cpu).copy()))
            .collect()
    }
}

#[cfg(test)]
mod tests;
