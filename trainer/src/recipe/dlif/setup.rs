//! `--recipe dlif`: its registry entry and how it builds itself from the arguments.

use std::collections::BTreeSet;

use anyhow::{bail, Result};
use fas_core::ir::backbones::BackboneKind;

use super::{Dlif, DlifConfig, Flow, Level};
use crate::cli::{Ablation, LossName, OptimizerName, ScheduleName, StyleFlow, StyleLevel};
use crate::recipe::registry::{as_written, Built, Defaults, Entry, Setup};

pub const ENTRY: Entry = Entry {
    name: "dlif",
    about: "DLIF (arXiv 2407.08243): identities as domains, liveness and identity ResNet-18 \
            encoders disentangled (orthogonality, ambiguity), Style Cross, channel-wise style \
            attention, AAIC contrastive loss, asymmetric AM-softmax",
    // The paper's: Adam at 5e-4, halved every 50 epochs.
    defaults: || Defaults {
        optimizer: OptimizerName::Adam,
        lr: DlifConfig::default().lr,
        schedule: ScheduleName::Step,
        step_every_epochs: Some(DlifConfig::default().lr_halve_every_epochs),
        ..Defaults::BASE
    },
    flags: &["--style-cross-levels", "--style-cross-flow"],
    ablations: &[Ablation::NoStyleCross, Ablation::NoCwsa, Ablation::NoV],
    build,
    canonical_model: as_written,
};

/// Refuses the shared settings DLIF has no use for.
fn refuse(s: &Setup) -> Result<()> {
    let a = s.args;
    if let Some(b) = a.backbone.as_deref() {
        if b.parse::<BackboneKind>().ok() != Some(BackboneKind::Resnet18) {
            bail!("--recipe dlif uses ResNet-18 encoders; drop --backbone {b}");
        }
    }
    if a.loss == Some(LossName::Bce) {
        bail!("--recipe dlif trains its classifier with asymmetric AM-softmax; drop --loss");
    }
    if s.depth_weight > 0.0 {
        bail!("--recipe dlif has no depth head; drop --depth-weight");
    }
    Ok(())
}

/// `--style-cross-levels` and `--style-cross-flow` over the paper's Style Cross.
fn style_cross(s: &Setup) -> super::StyleCrossConfig {
    let a = s.args;
    let mut style_cross = DlifConfig::default().style_cross;
    if !a.style_cross_levels.is_empty() {
        style_cross.levels = a
            .style_cross_levels
            .iter()
            .map(|l| match l {
                StyleLevel::Low => Level::Low,
                StyleLevel::Mid => Level::Mid,
                StyleLevel::High => Level::High,
            })
            .collect();
    }
    if let Some(f) = a.style_cross_flow {
        style_cross.flow = match f {
            StyleFlow::Cascade => Flow::Cascade,
            StyleFlow::Parallel => Flow::Parallel,
        };
    }
    style_cross
}

fn build(s: &Setup) -> Result<Built> {
    refuse(s)?;
    let a = s.args;
    let d = DlifConfig::default();
    // k identities per source domain × (n live + n spoof), as close to --batch-size as
    // that allows (at least one identity per domain).
    let samples = s.dataset.samples();
    let sources: BTreeSet<&str> = s
        .train
        .iter()
        .map(|&i| samples[i].domain.as_str())
        .collect();
    let per_domain = sources.len().max(1) * 2 * d.samples_per_class;
    let model = DlifConfig {
        in_channels: s.in_channels,
        input_size: s.size as usize,
        width: a.width,
        style_cross: style_cross(s),
        no_style_cross: s.ablated(Ablation::NoStyleCross),
        no_cwsa: s.ablated(Ablation::NoCwsa),
        no_v: s.ablated(Ablation::NoV),
        identities_per_domain: (a.batch_size / per_domain).max(1),
        adam: s.adam,
        grad_clip: a.clip,
        ..d
    };
    let identities: BTreeSet<usize> = s
        .train
        .iter()
        .map(|&i| s.dataset.identity_index(i))
        .collect();
    let identities: Vec<usize> = identities.into_iter().collect();
    let mut r = Dlif::new(model.clone(), &identities, s.device, a.seed)?;
    if let Some(w) = &a.init_weights {
        r.load_backbone_weights(w)?;
    }
    Ok(Built {
        recipe: Box::new(r),
        model: serde_json::to_value(&model)?,
        depth_size: None,
    })
}
