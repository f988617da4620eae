//! `--recipe anrl`: its registry entry and how it builds itself from the arguments.

use anyhow::{bail, Result};
use fas_core::ir::backbones::BackboneKind;

use super::{Anrl, AnrlConfig, AnrlNorm};
use crate::cli::{Ablation, InputKind, LossName};
use crate::recipe::registry::{Built, Defaults, Entry, Setup};

pub const ENTRY: Entry = Entry {
    name: "anrl",
    about: "ANRL (Liu et al., ACM MM 2021): DepthNet with adaptive BN/IN (AFNM), depth + \
            classifier, dual calibration losses, meta-learning over the source domains",
    defaults: || Defaults {
        input: InputKind::RgbHsv,
        size: 256,
        depth_weight: 1.0,
        ..Defaults::BASE
    },
    flags: &["--first-order"],
    ablations: &[
        Ablation::Bn,
        Ablation::In,
        Ablation::NoMeta,
        Ablation::NoIdc,
        Ablation::NoIcs,
    ],
    build,
    canonical_model,
};

/// Refuses a backbone other than DepthNet and a loss other than bce (the ANRL and D²AM
/// networks are DepthNet with a bce classifier).
pub fn depthnet_only(s: &Setup, recipe: &str) -> Result<()> {
    if let Some(b) = s.args.backbone.as_deref() {
        if b.parse::<BackboneKind>().ok() != Some(BackboneKind::DepthNet) {
            bail!("--recipe {recipe} uses the DepthNet backbone; drop --backbone {b}");
        }
    }
    if s.args.loss.is_some_and(|l| l != LossName::Bce) {
        bail!("--recipe {recipe} trains its classifier with bce; drop --loss");
    }
    Ok(())
}

fn build(s: &Setup) -> Result<Built> {
    depthnet_only(s, "anrl")?;
    let a = s.args;
    let norm = match (s.ablated(Ablation::Bn), s.ablated(Ablation::In)) {
        (true, true) => bail!("--ablate bn and in both replace ANRL's AFNM; give one of them"),
        (true, false) => AnrlNorm::Batch,
        (false, true) => AnrlNorm::Instance,
        (false, false) => AnrlNorm::Afnm,
    };
    // The AFNM gate reduction must fit DepthNet's narrowest layer at this width.
    let narrowest = ((64.0 * a.width).round() as usize).max(1);
    let model = AnrlConfig {
        in_channels: s.in_channels,
        input_size: s.size as usize,
        width: a.width,
        afnm_reduction: AnrlConfig::default().afnm_reduction.min(narrowest),
        depth_weight: s.depth_weight,
        second_order: !a.first_order,
        norm,
        no_meta: s.ablated(Ablation::NoMeta),
        no_idc: s.ablated(Ablation::NoIdc),
        no_ics: s.ablated(Ablation::NoIcs),
        adam: s.adam,
        grad_clip: a.clip,
        ..AnrlConfig::default()
    };
    let domains = s.dataset.domain_names().len();
    let mut r = Anrl::new(model.clone(), domains, s.device, a.seed)?;
    if let Some(w) = &a.init_weights {
        r.load_backbone_weights(w)?;
    }
    let depth_size = (s.depth_weight > 0.0).then(|| r.depth_size()).transpose()?;
    Ok(Built {
        recipe: Box::new(r),
        model: serde_json::to_value(&model)?,
        depth_size,
    })
}

/// Through [`AnrlConfig`]: fields added since compare equal at their defaults.
fn canonical_model(m: &serde_json::Value) -> Result<serde_json::Value> {
    Ok(serde_json::to_value(serde_json::from_value::<AnrlConfig>(
        m.clone(),
    )?)?)
}
