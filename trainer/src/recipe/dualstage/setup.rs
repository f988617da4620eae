//! `--recipe dualstage`: its registry entry and how it builds itself from the arguments.

use anyhow::{bail, Result};

use super::{DualStage, DualStageConfig, DEFAULT_STAGE1_FRACTION};
use crate::cli::{Ablation, OptimizerName, ScheduleName};
use crate::data::sampler::{BatchSampler, ClassBalanced, ClassBalancedConfig, EpochLength};
use crate::recipe::registry::{as_written, Built, Defaults, Entry, Setup};

pub const ENTRY: Entry = Entry {
    name: "dualstage",
    about: "Dual-stage disentanglement (Wang et al., WACV 2022): a live autoencoder (stage \
            1), then a frozen live encoder + spoof encoder, LSGAN reconstruction, spoof-map \
            decoder with triplet, live-map and auxiliary-classifier losses; deploys E_S + D_map",
    defaults: || Defaults {
        size: 256,
        optimizer: OptimizerName::Adam,
        lr: DualStageConfig::default().lr,
        schedule: ScheduleName::Constant,
        ..Defaults::BASE
    },
    flags: &["--stage1-fraction"],
    ablations: &[Ablation::SingleStage, Ablation::NoTriplet, Ablation::NoAux],
    build,
    canonical_model: as_written,
};

fn build(s: &Setup) -> Result<Built> {
    let model = config(s)?;
    let r = DualStage::new(model.clone(), s.device, s.args.seed)?;
    Ok(Built {
        recipe: Box::new(r),
        model: serde_json::to_value(&model)?,
        depth_size: None,
    })
}

/// Refuses the shared settings the dual-stage model has no use for.
fn refuse(s: &Setup) -> Result<()> {
    let a = s.args;
    if let Some(b) = a.backbone.as_deref() {
        bail!(
            "--recipe dualstage uses its own conv encoders/decoders (--width scales \
             them); drop --backbone {b}"
        );
    }
    if a.loss.is_some() {
        bail!(
            "--recipe dualstage scores with its spoof map (no classifier loss to \
             choose); drop --loss"
        );
    }
    if s.depth_weight > 0.0 {
        bail!("--recipe dualstage has no depth head; drop --depth-weight");
    }
    if a.init_weights.is_some() {
        bail!("--recipe dualstage has no pretrained backbone to load; drop --init-weights");
    }
    Ok(())
}

/// The model configuration from the arguments: refuses what does not apply and turns
/// `--stage1-fraction` into a step count (the same total the loop uses: the class-balanced
/// sampler's epoch length × `--epochs`, or `--steps`).
fn config(s: &Setup) -> Result<DualStageConfig> {
    refuse(s)?;
    let a = s.args;
    let fraction = a.stage1_fraction.unwrap_or(DEFAULT_STAGE1_FRACTION);
    if !(0.0..1.0).contains(&fraction) {
        bail!("--stage1-fraction {fraction}: must be in [0, 1) (default 0.3)");
    }
    let bpe = ClassBalanced::new(
        s.dataset.samples(),
        s.train,
        ClassBalancedConfig {
            batch_size: a.batch_size,
            length: EpochLength::Largest,
            seed: a.seed,
        },
    )?
    .epoch(0)
    .len();
    let total = a.steps.unwrap_or(a.epochs * bpe).max(1);
    let d = DualStageConfig::default();
    Ok(DualStageConfig {
        in_channels: s.in_channels,
        input_size: s.size as usize,
        channels: ((d.channels as f32 * a.width).round() as usize).max(1),
        stage1_steps: (fraction * total as f64).round() as usize,
        single_stage: s.ablated(Ablation::SingleStage),
        no_triplet: s.ablated(Ablation::NoTriplet),
        no_aux: s.ablated(Ablation::NoAux),
        adam: s.adam,
        grad_clip: a.clip,
        ..d
    })
}
