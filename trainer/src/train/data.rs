//! The loop's data: sampler batches loaded by the multi-threaded loader, source-validation
//! scoring, and scoring any manifest split with a deployed model.

use std::sync::Arc;

use anyhow::{Context, Result};
use fas_core::dataset::{Label, Sample};
use fas_core::ir::Graph;
use tch::{Device, Kind, Tensor};

use super::run::{BatchSource, Validator};
use crate::data::loader::{Dataset, Loader, LoaderConfig};
use crate::data::sampler::BatchSampler;
use crate::nn::IrModule;
use crate::recipe::{Recipe, TrainBatch};

/// Training batches: indices from a sampler, decoded and augmented by the loader.
pub struct SampledSource {
    loader: Loader,
    sampler: Box<dyn BatchSampler>,
    batches_per_epoch: usize,
    device: Device,
    /// The training pool, for [`BatchSource::survey`] (set with [`SampledSource::with_pool`]).
    pool: Vec<usize>,
}

impl SampledSource {
    pub fn new(loader: Loader, sampler: Box<dyn BatchSampler>, device: Device) -> Self {
        let batches_per_epoch = sampler.epoch(0).len();
        SampledSource {
            loader,
            sampler,
            batches_per_epoch,
            device,
            pool: Vec::new(),
        }
    }

    /// The training pool the sampler draws from; enables [`BatchSource::survey`].
    pub fn with_pool(mut self, pool: Vec<usize>) -> Self {
        self.pool = pool;
        self
    }
}

/// `max` indices spread evenly over `pool` (all of it when it is not larger), in pool order.
pub fn spread(pool: &[usize], max: usize) -> Vec<usize> {
    if pool.len() <= max {
        return pool.to_vec();
    }
    (0..max).map(|i| pool[i * pool.len() / max]).collect()
}

impl BatchSource for SampledSource {
    fn batches_per_epoch(&self) -> usize {
        self.batches_per_epoch
    }

    fn epoch(
        &self,
        epoch: usize,
        skip: usize,
    ) -> Result<Box<dyn Iterator<Item = Result<TrainBatch>> + '_>> {
        let batches: Vec<Vec<usize>> = self
            .sampler
            .epoch(epoch as u64)
            .into_iter()
            .skip(skip)
            .collect();
        let it = self.loader.batches(batches, epoch as u64)?;
        let device = self.device;
        Ok(Box::new(it.map(move |b| {
            let b = b?;
            let t = b.to_tensors(device);
            Ok(TrainBatch {
                images: t.images,
                labels: t.labels,
                domains: t.domains,
                identities: t.identities,
                depth: t.depth,
                indices: b.indices,
            })
        })))
    }

    fn survey(
        &self,
        max: usize,
    ) -> Result<Option<Box<dyn Iterator<Item = Result<TrainBatch>> + '_>>> {
        if self.pool.is_empty() {
            return Ok(None);
        }
        let cfg = self.loader.config();
        let plain = Loader::new(
            self.loader.dataset().clone(),
            LoaderConfig {
                workers: cfg.workers,
                queue_depth: cfg.queue_depth,
                batch_size: cfg.batch_size,
                seed: cfg.seed,
                ..LoaderConfig::eval(cfg.spec.clone())
            },
        )?;
        let batches: Vec<Vec<usize>> = spread(&self.pool, max)
            .chunks(cfg.batch_size.max(1))
            .map(<[usize]>::to_vec)
            .collect();
        let it = plain.batches(batches, 0)?;
        let device = self.device;
        Ok(Some(Box::new(it.map(move |b| {
            let b = b?;
            let t = b.to_tensors(device);
            Ok(TrainBatch {
                images: t.images,
                labels: t.labels,
                domains: t.domains,
                identities: t.identities,
                depth: None,
                indices: b.indices,
            })
        }))))
    }
}

/// Scores `indices` of the loader's dataset in order with `score` (eval loader: no
/// augmentation).
pub fn score_indices(
    loader: &Loader,
    indices: &[usize],
    batch_size: usize,
    device: Device,
    score: &dyn Fn(&Tensor) -> Result<Tensor>,
) -> Result<Vec<f64>> {
    let batches: Vec<Vec<usize>> = indices
        .chunks(batch_size.max(1))
        .map(<[usize]>::to_vec)
        .collect();
    let mut out = Vec::with_capacity(indices.len());
    for b in loader.batches(batches, 0)? {
        let t = b?.to_tensors(device);
        let s = score(&t.images)?
            .to_kind(Kind::Double)
            .to_device(Device::Cpu)
            .view([-1]);
        out.extend(Vec::<f64>::try_from(&s)?);
    }
    if let Some(bad) = out
        .iter()
        .position(|s| !s.is_finite() || !(0.0..=1.0).contains(s))
    {
        anyhow::bail!(
            "the model scored sample {} as {} — p_live must be in [0, 1] (contract 3)",
            indices[bad],
            out[bad]
        );
    }
    Ok(out)
}

/// Source-validation scoring for the loop.
pub struct SplitValidator {
    pub loader: Loader,
    pub indices: Vec<usize>,
    pub batch_size: usize,
    pub device: Device,
}

impl SplitValidator {
    pub fn dataset(&self) -> &Arc<Dataset> {
        self.loader.dataset()
    }
}

impl Validator for SplitValidator {
    fn score(&self, recipe: &dyn Recipe) -> Result<(Vec<f64>, Vec<Label>)> {
        let scores = score_indices(
            &self.loader,
            &self.indices,
            self.batch_size,
            self.device,
            &|x| recipe.score(x),
        )?;
        let ds = self.loader.dataset();
        let labels = self.indices.iter().map(|&i| ds.sample(i).label).collect();
        Ok((scores, labels))
    }
}

/// A deployed model (run dir `model.json` + `weights.safetensors`) as a scorer.
pub struct DeployedModel {
    pub module: IrModule,
}

impl DeployedModel {
    pub fn load(run: &std::path::Path, device: Device) -> Result<DeployedModel> {
        let dir = fas_core::rundir::RunDir::new(run);
        let g = Graph::load(dir.model()).with_context(|| format!("run dir {}", run.display()))?;
        let mut module = IrModule::new(g, device, 0)?;
        module.load_safetensors(&dir.weights(), true)?;
        Ok(DeployedModel { module })
    }

    /// `p_live [N]`.
    pub fn score(&self, images: &Tensor) -> Result<Tensor> {
        tch::no_grad(|| Ok(self.module.forward(&[images], false)?.remove(0).view([-1])))
    }
}

/// The run dir's scored-sample lines and parity file name ([`fas_core::rundir`] owns them).
pub use fas_core::rundir::{read_scores, write_scores, ScoredSample, PARITY_FILE};

/// Writes `parity.safetensors`: up to `per_class` bona fide and `per_class` attack inputs
/// of the source validation split (real preprocessed crops, `inputs [K, C, H, W]`) and the
/// deployed model's tch outputs (`p_live [K]`), so that fas-quantize can check its ONNX
/// export in tract without libtorch (contract 2).
pub fn write_parity(
    path: &std::path::Path,
    loader: &Loader,
    samples: &[Sample],
    val: &[usize],
    per_class: usize,
    device: Device,
    model: &DeployedModel,
) -> Result<()> {
    let mut chosen = Vec::new();
    for label in [Label::Live, Label::Spoof] {
        chosen.extend(
            val.iter()
                .copied()
                .filter(|&i| samples[i].label == label)
                .take(per_class),
        );
    }
    anyhow::ensure!(
        !chosen.is_empty(),
        "the validation split is empty; cannot write {}",
        path.display()
    );
    let batch = loader
        .batches(vec![chosen], 0)?
        .next()
        .expect("one batch requested")?;
    let images = batch.to_tensors(device).images;
    let p = model.score(&images)?;
    crate::train::checkpoint::write_tensors_atomic(
        path,
        &[("inputs".to_string(), images), ("p_live".to_string(), p)],
    )
}

#[cfg(test)]
mod tests {
    use super::spread;

    #[test]
    fn spread_keeps_small_pools_and_spaces_large_ones_evenly() {
        let pool: Vec<usize> = (100..110).collect();
        assert_eq!(spread(&pool, 20), pool);
        assert_eq!(spread(&pool, 10), pool);
        assert_eq!(spread(&pool, 5), vec![100, 102, 104, 106, 108]);
        assert_eq!(spread(&pool, 3), vec![100, 103, 106]);
        assert!(spread(&pool, 0).is_empty());
    }
}
