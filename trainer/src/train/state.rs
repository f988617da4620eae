//! A recipe's resumable state ([`crate::recipe::Recipe::state`] and
//! [`crate::recipe::Recipe::load_state`]), written once for every recipe: networks,
//! optimisers and loose tensors are named under prefixes (`net.<weight>`, `opt.<moment>`)
//! by a [`StateWriter`] and loaded back by a [`StateReader`], with one shape check and one
//! error that names the tensor, both shapes and the fix.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use tch::Tensor;

use crate::nn::IrModule;
use crate::train::optim::Adam;

/// What the reader's errors tell the user to do.
const FIX: &str = "resume with the original settings (recipe, size, width, ablations, \
                   data), or start a new --out";

/// Collects named tensors under prefixes, in the order given.
#[derive(Default)]
pub struct StateWriter(Vec<(String, Tensor)>);

impl StateWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every tensor of `tensors` as `<prefix>.<name>`.
    pub fn part(&mut self, prefix: &str, tensors: Vec<(String, Tensor)>) -> &mut Self {
        self.0.extend(
            tensors
                .into_iter()
                .map(|(k, t)| (format!("{prefix}.{k}"), t)),
        );
        self
    }

    /// A network's weights and buffers under `prefix`.
    pub fn module(&mut self, prefix: &str, net: &IrModule) -> &mut Self {
        self.part(prefix, net.named_tensors())
    }

    /// An optimiser's moments and step under `prefix`.
    pub fn adam(&mut self, prefix: &str, opt: &Adam) -> &mut Self {
        self.part(prefix, opt.state())
    }

    /// One tensor under its full name.
    pub fn tensor(&mut self, name: &str, t: &Tensor) -> &mut Self {
        self.0.push((name.to_string(), t.shallow_clone()));
        self
    }

    pub fn finish(&mut self) -> Vec<(String, Tensor)> {
        std::mem::take(&mut self.0)
    }
}

/// Reads back what a [`StateWriter`] collected, for the recipe named `recipe` (in errors).
pub struct StateReader<'a> {
    recipe: &'static str,
    state: &'a BTreeMap<String, Tensor>,
}

impl<'a> StateReader<'a> {
    pub fn new(recipe: &'static str, state: &'a BTreeMap<String, Tensor>) -> Self {
        Self { recipe, state }
    }

    /// The tensors under `prefix`, the prefix stripped.
    pub fn part(&self, prefix: &str) -> BTreeMap<String, Tensor> {
        let prefix = format!("{prefix}.");
        self.state
            .iter()
            .filter_map(|(k, t)| {
                k.strip_prefix(&prefix)
                    .map(|s| (s.to_string(), t.shallow_clone()))
            })
            .collect()
    }

    /// The context for a part that does not fit.
    pub fn misfit(&self, prefix: &str) -> String {
        format!(
            "checkpoint part \"{prefix}\" does not fit this {} model — {FIX}",
            self.recipe
        )
    }

    /// Loads a network from `prefix` (every weight present with its shape, nothing extra).
    pub fn module(&self, prefix: &str, net: &mut IrModule) -> Result<()> {
        self.module_from(prefix, self.part(prefix), net)
    }

    /// [`StateReader::module`] from a part the caller has already taken loose tensors out of.
    pub fn module_from(
        &self,
        prefix: &str,
        part: BTreeMap<String, Tensor>,
        net: &mut IrModule,
    ) -> Result<()> {
        net.load_tensors(&part, true)
            .with_context(|| self.misfit(prefix))
    }

    /// Loads an optimiser's state from `prefix`.
    pub fn adam(&self, prefix: &str, opt: &mut Adam) -> Result<()> {
        opt.load_state(&self.part(prefix))
            .with_context(|| self.misfit(prefix))
    }

    /// A tensor by its full name, if the checkpoint has it.
    pub fn get(&self, name: &str) -> Option<&'a Tensor> {
        self.state.get(name)
    }

    /// A tensor the checkpoint must have.
    pub fn require(&self, name: &str) -> Result<&'a Tensor> {
        self.get(name).with_context(|| {
            format!(
                "the checkpoint has no \"{name}\": it is not a {} run with these settings — {FIX}",
                self.recipe
            )
        })
    }

    /// Copies the tensor `name` into `dst` (in place, on `dst`'s device and kind) after
    /// checking its shape.
    pub fn copy(&self, name: &str, dst: &Tensor) -> Result<()> {
        let src = self.require(name)?;
        if src.size() != dst.size() {
            bail!(
                "the checkpoint's \"{name}\" has shape {:?}, this {} model needs {:?} — {FIX}",
                src.size(),
                self.recipe,
                dst.size()
            );
        }
        tch::no_grad(|| {
            let mut d = dst.shallow_clone();
            d.copy_(&src.to_device(d.device()));
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_one_clear_error() {
        let a = Tensor::from_slice(&[1.0f32, 2.0, 3.0]);
        let state: BTreeMap<String, Tensor> = StateWriter::new()
            .part("opt", vec![("m.x".into(), a.shallow_clone())])
            .tensor("head.weight", &a)
            .finish()
            .into_iter()
            .collect();
        let keys: Vec<&str> = state.keys().map(String::as_str).collect();
        assert_eq!(keys, ["head.weight", "opt.m.x"]);
        let r = StateReader::new("test", &state);
        assert_eq!(r.part("opt").keys().collect::<Vec<_>>(), ["m.x"]);
        let dst = Tensor::zeros([3], (tch::Kind::Float, tch::Device::Cpu));
        r.copy("head.weight", &dst).unwrap();
        assert_eq!(Vec::<f32>::try_from(&dst).unwrap(), [1.0, 2.0, 3.0]);
        let wrong = Tensor::zeros([2], (tch::Kind::Float, tch::Device::Cpu));
        let e = r.copy("head.weight", &wrong).unwrap_err().to_string();
        assert!(
            e.contains("\"head.weight\"") && e.contains("[3]") && e.contains("[2]"),
            "{e}"
        );
        assert!(e.contains("resume with the original settings"), "{e}");
        let e = r.require("nope").unwrap_err().to_string();
        assert!(e.contains("\"nope\"") && e.contains("test run"), "{e}");
    }
}
