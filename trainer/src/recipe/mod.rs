//! Training recipes. A [`Recipe`] owns its networks and optimisers and knows how to take
//! one optimisation step on a batch; the loop ([`crate::train::run`]) owns everything else
//! (data order, schedules, validation on the source split, checkpoints, logs, the run dir).
//!
//! The baseline lives here; the paper recipes (DLIF, D²AM, dual-stage, ANRL) implement the
//! same trait in their own files.

pub mod anrl;
pub mod baseline;
pub mod cluster;
pub mod d2am;
pub mod depthnet;
pub mod dlif;
pub mod dualstage;
pub mod losses;
pub mod meta;
pub mod mmd;
pub mod registry;

#[cfg(test)]
mod conformance;

use std::collections::BTreeMap;

use anyhow::Result;
use fas_core::ir::Graph;
use serde::{Deserialize, Serialize};
use tch::Tensor;

/// One training batch on the recipe's device.
pub struct TrainBatch {
    /// `[N, C, H, W]` normalised images.
    pub images: Tensor,
    /// `[N]` i64, 1 = live, 0 = spoof.
    pub labels: Tensor,
    /// `[N]` i64 domain index (dataset, or pseudo-domain).
    pub domains: Tensor,
    /// `[N]` i64 identity index (the manifest's `(domain, subject)`,
    /// [`crate::data::loader::Dataset::identity_names`]); DLIF's finer domains.
    pub identities: Tensor,
    /// `[N, 1, d, d]` target depth in [0, 1] (zeros for spoof), when the data has it.
    pub depth: Option<Tensor>,
    /// Dataset (manifest) index of every row, in row order (D²AM maps them to its
    /// pseudo-domains); empty when the batch does not come from a dataset.
    pub indices: Vec<usize>,
}

/// Where the loop stands when it asks for a step.
#[derive(Debug, Clone, Copy)]
pub struct StepInfo {
    pub step: usize,
    pub epoch: usize,
    /// Learning rate from the schedule for this step.
    pub lr: f64,
}

/// How the recipe wants its batches drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sampling {
    /// Half live, half spoof.
    ClassBalanced,
    /// The same number of samples from every source domain.
    PerDomain,
    /// DLIF: k identities per source dataset × n live + n spoof each.
    Identity { identities: usize, per_class: usize },
}

/// The deployable model: an IR graph whose single output is `p_live [N, 1]` (contract 3)
/// and its weights, named as the graph names them.
pub struct Deployable {
    pub graph: Graph,
    pub weights: Vec<(String, Tensor)>,
}

/// A training method.
pub trait Recipe {
    /// `baseline`, `dlif`, `d2am`, `dualstage`, `anrl`.
    fn name(&self) -> &'static str;

    fn sampling(&self) -> Sampling;

    /// One optimisation step; returns the named loss terms (for the logs).
    fn step(&mut self, batch: &TrainBatch, info: &StepInfo) -> Result<Vec<(String, f64)>>;

    /// `p_live` `[N]` for a batch of images, inference mode, no gradients.
    fn score(&self, images: &Tensor) -> Result<Tensor>;

    /// The deployable part, as exported (its `p_live` must equal [`Recipe::score`]).
    fn deployable(&self) -> Result<Deployable>;

    /// Everything needed to resume: weights of every network, optimiser states.
    fn state(&self) -> Vec<(String, Tensor)>;

    fn load_state(&mut self, state: &BTreeMap<String, Tensor>) -> Result<()>;

    /// Called by the loop at the start of every epoch, with the training data, for recipes
    /// that look at the training set between epochs (D²AM clusters it,
    /// [`crate::train::run::BatchSource::survey`]). Returns epoch-level terms for the log
    /// (written as one `log.jsonl` line with `"epoch_start": true`; nothing if empty).
    fn start_epoch_with_data(
        &mut self,
        _epoch: usize,
        _data: &dyn crate::train::run::BatchSource,
    ) -> Result<Vec<(String, f64)>> {
        Ok(Vec::new())
    }
}
