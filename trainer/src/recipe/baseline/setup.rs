//! `--recipe baseline`: its registry entry and how it builds itself from the arguments.

use anyhow::{Context, Result};
use fas_core::ir::backbones::BackboneKind;

use super::{Baseline, BaselineConfig, ClsLoss};
use crate::cli::LossName;
use crate::recipe::losses::AmSoftmax;
use crate::recipe::registry::{as_written, Built, Defaults, Entry, Setup};

pub const ENTRY: Entry = Entry {
    name: "baseline",
    about: "One backbone + binary head (optionally depth-supervised)",
    defaults: || Defaults::BASE,
    flags: &[],
    ablations: &[],
    build,
    canonical_model: as_written,
};

fn build(s: &Setup) -> Result<Built> {
    let backbone: BackboneKind = s
        .args
        .backbone
        .as_deref()
        .unwrap_or("resnet18")
        .parse()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    build_with(s, backbone)
}

/// The baseline on `backbone` (`--recipe depthnet` builds it on DepthNet).
pub fn build_with(s: &Setup, backbone: BackboneKind) -> Result<Built> {
    let a = s.args;
    let model = BaselineConfig {
        backbone,
        in_channels: s.in_channels,
        input_size: s.size as usize,
        width: a.width,
        loss: match a.loss.unwrap_or(LossName::Bce) {
            LossName::Bce => ClsLoss::Bce,
            LossName::AmSoftmax => ClsLoss::AmSoftmax(AmSoftmax::default()),
        },
        depth_weight: s.depth_weight,
        adam: s.adam,
        grad_clip: a.clip,
        amp: !a.no_amp,
    };
    let mut r = Baseline::new(model.clone(), s.device, a.seed)?;
    if let Some(w) = &a.init_weights {
        r.load_backbone_weights(w)?;
    }
    let depth_size = if s.depth_weight > 0.0 {
        let g = r.network().graph();
        let shapes = g.infer_shapes()?;
        let d = g.outputs.get(1).context("depth output")?;
        Some(shapes[d][2] as u32)
    } else {
        None
    };
    Ok(Built {
        recipe: Box::new(r),
        model: serde_json::to_value(&model)?,
        depth_size,
    })
}
