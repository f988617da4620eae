//! The training loop: schedules, source-validation model selection, checkpoints that resume
//! bit-identically, JSONL logs, progress, and the run dir.
//!
//! Run dir layout: [`fas_core::rundir`] (`model.json`, the IR of the deployable part,
//! output `p_live`; `weights.safetensors`, its weights at the best step on the source
//! validation split; `metrics.json`, `run.json`, `log.jsonl`,
//! `checkpoint/last.{safetensors,json}` and `plots/`).
//!
//! Bit-identical resume: batch order and augmentation are pure functions of (seed, epoch,
//! position), libtorch's RNG is re-seeded from (seed, step) before every step, and the
//! recipe's complete state (weights, running statistics, optimiser moments and step count)
//! is in the checkpoint. So steps k+1.. after a resume from step k compute exactly what the
//! uninterrupted run computed.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use fas_core::dataset::Label;
use fas_core::metrics;
use serde::{Deserialize, Serialize};

use super::checkpoint::{CheckpointPaths, LoopState, CHECKPOINT_FORMAT};
use super::optim::Schedule;
use crate::recipe::{Recipe, StepInfo, TrainBatch};

/// Source of training batches, deterministic per (epoch, position).
pub trait BatchSource {
    fn batches_per_epoch(&self) -> usize;
    /// The batches of `epoch` from position `skip` on, in order.
    fn epoch(
        &self,
        epoch: usize,
        skip: usize,
    ) -> Result<Box<dyn Iterator<Item = Result<TrainBatch>> + '_>>;

    /// Up to `max` training samples without augmentation, spread evenly over the training
    /// pool, in a fixed order (`TrainBatch::indices` set, true domains in `domains`), for
    /// recipes that look at the training set between epochs (D²AM's pseudo-domain
    /// clustering). `None` when the source cannot provide it.
    fn survey(
        &self,
        _max: usize,
    ) -> Result<Option<Box<dyn Iterator<Item = Result<TrainBatch>> + '_>>> {
        Ok(None)
    }
}

/// Scores the source validation split with the recipe in its current state.
pub trait Validator {
    /// `(p_live, label)` per validation sample.
    fn score(&self, recipe: &dyn Recipe) -> Result<(Vec<f64>, Vec<Label>)>;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoopConfig {
    /// Total optimisation steps.
    pub steps: usize,
    pub lr: f64,
    pub schedule: Schedule,
    /// Validate (and maybe keep as best) every this many steps, and at the end.
    pub val_every: usize,
    pub checkpoint_every: usize,
    pub log_every: usize,
    pub seed: u64,
    /// Show an indicatif progress bar on stderr.
    pub progress: bool,
}

/// One validation of the model on the source validation split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValPoint {
    pub step: usize,
    pub auc: f64,
    pub eer: f64,
}

/// What the loop returns and writes into `metrics.json` (`training` section).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainSummary {
    pub steps: usize,
    pub best_step: usize,
    pub best_val_auc: f64,
    pub best_val_eer: f64,
    pub validations: Vec<ValPoint>,
    pub images_per_s: f64,
    pub seconds: f64,
    pub resumed_from: Option<usize>,
}

/// The run dir; its layout is [`fas_core::rundir`]'s.
pub use fas_core::rundir::RunDir;

/// The trainer's view of a [`RunDir`]: its checkpoint, read and written with libtorch.
pub trait RunDirExt {
    /// `checkpoint/last.{safetensors,json}`.
    fn checkpoint(&self) -> CheckpointPaths;
}

impl RunDirExt for RunDir {
    fn checkpoint(&self) -> CheckpointPaths {
        CheckpointPaths::in_dir(&self.checkpoint_dir(), fas_core::rundir::CHECKPOINT_NAME)
    }
}

/// Writes the recipe's deployable model (graph + weights) into the run dir, atomically.
pub fn write_deployable(recipe: &dyn Recipe, dir: &RunDir) -> Result<()> {
    let d = recipe.deployable()?;
    super::checkpoint::write_tensors_atomic(&dir.weights(), &d.weights)?;
    d.graph
        .save(dir.model())
        .with_context(|| format!("writing {}", dir.model().display()))?;
    Ok(())
}

fn validate(v: &dyn Validator, recipe: &dyn Recipe, step: usize) -> Result<ValPoint> {
    let (scores, labels) = v.score(recipe)?;
    let roc = metrics::Roc::new(&scores, &labels).context("source validation split")?;
    Ok(ValPoint {
        step,
        auc: roc.auc(),
        eer: roc.eer().eer,
    })
}

/// Better on the source validation split: higher AUC, then lower EER.
fn better(a: &ValPoint, best: Option<(f64, f64)>) -> bool {
    match best {
        None => true,
        Some((auc, eer)) => a.auc > auc || (a.auc == auc && a.eer < eer),
    }
}

struct Log {
    file: std::fs::File,
}

impl Log {
    /// Opens `log.jsonl`; on resume drops lines after the resumed step (they belong to the
    /// interrupted part that is about to be recomputed).
    fn open(path: &Path, resume_step: Option<usize>) -> Result<Log> {
        match resume_step {
            Some(step) if path.exists() => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let kept: String = text
                    .lines()
                    .filter(|l| {
                        let Ok(v) = serde_json::from_str::<serde_json::Value>(l) else {
                            return false;
                        };
                        let epoch_start = v.get("epoch_start").is_some();
                        // An epoch-start line at the resume step is written again.
                        v.get("step").and_then(|s| s.as_u64()).is_some_and(|s| {
                            (s as usize) < step || (s as usize == step && !epoch_start)
                        })
                    })
                    .map(|l| format!("{l}\n"))
                    .collect();
                fas_core::atomic::write_atomic(path, kept.as_bytes())
                    .with_context(|| format!("rewriting {}", path.display()))?;
            }
            None => {
                let _ = std::fs::remove_file(path);
            }
            _ => {}
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(Log { file })
    }

    fn write(&mut self, v: serde_json::Value) -> Result<()> {
        writeln!(self.file, "{v}").context("writing log.jsonl")
    }
}

/// Trains `recipe` for `cfg.steps` steps. With `resume`, continues from the run dir's last
/// checkpoint (an error if there is none).
pub fn train(
    recipe: &mut dyn Recipe,
    data: &dyn BatchSource,
    val: &dyn Validator,
    cfg: &LoopConfig,
    dir: &RunDir,
    resume: bool,
) -> Result<TrainSummary> {
    let bpe = data.batches_per_epoch();
    if bpe == 0 {
        bail!("the training split yields no batch — too few samples for the batch size");
    }
    let ckpt = dir.checkpoint();
    let mut state = LoopState {
        format: CHECKPOINT_FORMAT,
        step: 0,
        best_step: None,
        best_metric: None,
    };
    let mut best_eer = f64::INFINITY;
    let mut validations: Vec<ValPoint> = Vec::new();
    let mut resumed_from = None;
    if resume {
        if !ckpt.exists() {
            bail!(
                "--resume: no checkpoint in {} — start without --resume",
                dir.checkpoint_dir().display()
            );
        }
        let (tensors, s) = ckpt.load()?;
        recipe.load_state(&tensors)?;
        if s.step > cfg.steps {
            bail!(
                "--resume: the checkpoint is at step {} but --steps is {} — raise the step count",
                s.step,
                cfg.steps
            );
        }
        resumed_from = Some(s.step);
        state = s;
        if let Ok(text) = std::fs::read_to_string(dir.validations()) {
            validations = serde_json::from_str(&text).unwrap_or_default();
            validations.retain(|v| v.step <= state.step);
        }
        if let Some(b) = state.best_step {
            if let Some(v) = validations.iter().find(|v| v.step == b) {
                best_eer = v.eer;
            }
        }
    }
    let mut log = Log::open(&dir.log(), resumed_from)?;
    let bar = if cfg.progress {
        let b = indicatif::ProgressBar::new(cfg.steps as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        b.set_position(state.step as u64);
        b
    } else {
        indicatif::ProgressBar::hidden()
    };

    let t0 = Instant::now();
    let mut images = 0usize;
    let mut window = (Instant::now(), 0usize);
    let mut step = state.step;
    while step < cfg.steps {
        let epoch = step / bpe;
        let skip = step % bpe;
        let report = recipe.start_epoch_with_data(epoch, data)?;
        if !report.is_empty() {
            let mut line = serde_json::json!({
                "step": step, "epoch": epoch, "epoch_start": true,
            });
            for (k, v) in &report {
                line[k] = serde_json::json!(v);
            }
            log.write(line)?;
        }
        let mut it = data.epoch(epoch, skip)?;
        while step < cfg.steps {
            let Some(batch) = it.next() else { break };
            let batch = batch.with_context(|| format!("loading batch of step {}", step + 1))?;
            let n = batch.images.size()[0] as usize;
            let lr = cfg.schedule.lr(cfg.lr, step);
            tch::manual_seed(
                (cfg.seed ^ 0x9E37_79B9_7F4A_7C15u64.wrapping_mul(step as u64 + 1)) as i64,
            );
            let terms = recipe.step(&batch, &StepInfo { step, epoch, lr })?;
            step += 1;
            images += n;
            window.1 += n;
            bar.set_position(step as u64);
            if step.is_multiple_of(cfg.log_every.max(1)) || step == cfg.steps {
                let secs = window.0.elapsed().as_secs_f64().max(1e-9);
                let ips = window.1 as f64 / secs;
                window = (Instant::now(), 0);
                let loss = terms.first().map(|t| t.1).unwrap_or(f64::NAN);
                bar.set_message(format!("loss {loss:.4}  {ips:.1} img/s"));
                let mut line = serde_json::json!({
                    "step": step, "epoch": epoch, "lr": lr, "images_per_s": ips,
                });
                for (k, v) in &terms {
                    line[k] = serde_json::json!(v);
                }
                log.write(line)?;
            }
            let last = step == cfg.steps;
            if step.is_multiple_of(cfg.val_every.max(1)) || last {
                let v = validate(val, recipe, step)?;
                let improved = better(&v, state.best_metric.map(|a| (a, best_eer)));
                log.write(serde_json::json!({
                    "step": step, "val_auc": v.auc, "val_eer": v.eer, "best": improved,
                }))?;
                bar.println(format!(
                    "step {step}: source-val AUC {:.4}  EER {:.4}{}",
                    v.auc,
                    v.eer,
                    if improved { "  (best)" } else { "" }
                ));
                if improved {
                    state.best_step = Some(step);
                    state.best_metric = Some(v.auc);
                    best_eer = v.eer;
                    write_deployable(recipe, dir)?;
                }
                validations.push(v);
            }
            if step.is_multiple_of(cfg.checkpoint_every.max(1)) || last {
                state.step = step;
                ckpt.save(&recipe.state(), &state)?;
                fas_core::atomic::write_atomic(
                    &dir.validations(),
                    serde_json::to_string(&validations)?.as_bytes(),
                )
                .context("writing checkpoint/validations.json")?;
            }
        }
    }
    bar.finish_and_clear();
    let seconds = t0.elapsed().as_secs_f64();
    let best_step = state.best_step.context("training ran no step")?;
    let best = validations
        .iter()
        .find(|v| v.step == best_step)
        .cloned()
        .context("best validation point missing")?;
    Ok(TrainSummary {
        steps: step,
        best_step,
        best_val_auc: best.auc,
        best_val_eer: best.eer,
        validations,
        images_per_s: images as f64 / seconds.max(1e-9),
        seconds,
        resumed_from,
    })
}
