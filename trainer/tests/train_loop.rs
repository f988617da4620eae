//! The training loop on in-memory data: resume continues bit-identically, the best model is
//! chosen on the source validation split, the run dir holds what the exporter needs.

use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::Result;
use fas_core::dataset::Label;
use fas_core::ir::backbones::BackboneKind;
use fas_core::ir::Graph;
use fas_train::recipe::baseline::{Baseline, BaselineConfig, ClsLoss};
use fas_train::recipe::{Recipe, TrainBatch};
use fas_train::train::checkpoint::read_tensors;
use fas_train::train::optim::Schedule;
use fas_train::train::run::{train, BatchSource, LoopConfig, RunDir, RunDirExt, Validator};
use tch::{Device, Kind, Tensor};

/// Live images are brighter in the red channel: learnable in a few steps.
fn images(seed: i64, n: i64) -> (Tensor, Tensor) {
    tch::manual_seed(seed);
    let labels = Tensor::arange(n, (Kind::Int64, Device::Cpu)).remainder(2);
    let x = Tensor::randn([n, 3, 32, 32], (Kind::Float, Device::Cpu));
    let shift = labels.to_kind(Kind::Float).view([n, 1, 1, 1]) * 3.0;
    let red = Tensor::from_slice(&[1.0f32, 0.0, 0.0]).view([1, 3, 1, 1]);
    (x + shift * red, labels)
}

struct Synthetic {
    batches: usize,
}

impl BatchSource for Synthetic {
    fn batches_per_epoch(&self) -> usize {
        self.batches
    }
    fn epoch(
        &self,
        epoch: usize,
        skip: usize,
    ) -> Result<Box<dyn Iterator<Item = Result<TrainBatch>> + '_>> {
        Ok(Box::new((skip..self.batches).map(move |i| {
            let (images, labels) = images((epoch * 1000 + i) as i64, 8);
            Ok(TrainBatch {
                images,
                labels,
                domains: Tensor::zeros([8], (Kind::Int64, Device::Cpu)),
                identities: Tensor::zeros([8], (Kind::Int64, Device::Cpu)),
                depth: None,
                indices: Vec::new(),
            })
        })))
    }
}

struct Val;
impl Validator for Val {
    fn score(&self, recipe: &dyn Recipe) -> Result<(Vec<f64>, Vec<Label>)> {
        let (x, y) = images(-1, 32);
        let s = recipe.score(&x)?;
        let scores = Vec::<f64>::try_from(s.to_kind(Kind::Double))?;
        let labels = Vec::<i64>::try_from(y)?
            .into_iter()
            .map(|l| if l == 1 { Label::Live } else { Label::Spoof })
            .collect();
        Ok((scores, labels))
    }
}

/// libtorch's RNG is process-global (the loop re-seeds it every step, the data here is drawn
/// from it): tests of this file must not interleave, or their runs are not reproducible.
static GLOBAL_RNG: Mutex<()> = Mutex::new(());

fn recipe() -> Baseline {
    let cfg = BaselineConfig {
        backbone: BackboneKind::EdgeNet,
        in_channels: 3,
        input_size: 32,
        width: 0.25,
        loss: ClsLoss::Bce,
        ..BaselineConfig::default()
    };
    Baseline::new(cfg, Device::Cpu, 5).unwrap()
}

fn loop_cfg(steps: usize) -> LoopConfig {
    LoopConfig {
        steps,
        lr: 3e-3,
        schedule: Schedule::Cosine {
            total: 12,
            min_lr: 1e-4,
        },
        val_every: 3,
        checkpoint_every: 3,
        log_every: 1,
        seed: 42,
        progress: false,
    }
}

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("fas-train-loop-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn log_losses(d: &RunDir) -> Vec<String> {
    std::fs::read_to_string(d.log())
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("images_per_s");
            v.to_string()
        })
        .collect()
}

#[test]
fn resume_continues_bit_identically_and_the_run_dir_is_complete() {
    let _rng = GLOBAL_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let data = Synthetic { batches: 4 };
    // Uninterrupted: 12 steps over 3 epochs.
    let da = RunDir::create(&dir("a")).unwrap();
    let mut ra = recipe();
    let sa = train(&mut ra, &data, &Val, &loop_cfg(12), &da, false).unwrap();
    assert_eq!(sa.steps, 12);
    // Best = highest source-val AUC among the validations (ties: lower EER).
    let top = sa
        .validations
        .iter()
        .map(|v| v.auc)
        .fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(sa.best_val_auc, top, "{sa:?}");
    assert!(sa.best_val_auc > 0.75, "learns the toy task: {sa:?}");

    // Interrupted after 6 steps (mid-epoch 1), resumed in a fresh process state.
    let db = RunDir::create(&dir("b")).unwrap();
    let mut rb = recipe();
    train(&mut rb, &data, &Val, &loop_cfg(6), &db, false).unwrap();
    let mut rb2 = recipe();
    let sb = train(&mut rb2, &data, &Val, &loop_cfg(12), &db, true).unwrap();
    assert_eq!(sb.resumed_from, Some(6));

    let wa = read_tensors(&da.checkpoint().tensors).unwrap();
    let wb = read_tensors(&db.checkpoint().tensors).unwrap();
    assert_eq!(wa.len(), wb.len());
    for (k, t) in &wa {
        assert!(t.equal(&wb[k]), "{k} differs after resume");
    }
    assert_eq!(log_losses(&da), log_losses(&db), "logs differ after resume");
    assert_eq!(sa.best_step, sb.best_step);

    // The run dir holds a valid deployable model whose weights load into it.
    let g = Graph::load(da.model()).unwrap();
    assert_eq!(g.output_shapes().unwrap(), vec![vec![1, 1]]);
    let w = read_tensors(&da.weights()).unwrap();
    let mut m = fas_train::nn::IrModule::new(g, Device::Cpu, 0).unwrap();
    m.load_tensors(&w, true).unwrap();
    for d in [da, db] {
        std::fs::remove_dir_all(&d.root).ok();
    }
}

#[test]
fn resume_without_a_checkpoint_says_so() {
    let _rng = GLOBAL_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let d = RunDir::create(&dir("none")).unwrap();
    let mut r = recipe();
    let e = train(
        &mut r,
        &Synthetic { batches: 2 },
        &Val,
        &loop_cfg(2),
        &d,
        true,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("no checkpoint"), "{e}");
    std::fs::remove_dir_all(&d.root).ok();
}
