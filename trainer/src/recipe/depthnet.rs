//! `--recipe depthnet`: the baseline on the DepthNet backbone, depth-supervised by default,
//! on the inputs ANRL and D²AM use (RGB+HSV at 256 px) — the plain network those recipes
//! add their domain-generalisation machinery to. The same model as `--recipe baseline
//! --backbone depthnet --input rgb-hsv --size 256 --depth-weight 1`.

use anyhow::{bail, Result};
use fas_core::ir::backbones::BackboneKind;

use super::baseline::setup::build_with;
use super::registry::{as_written, Built, Defaults, Entry, Setup};
use crate::cli::InputKind;

pub const ENTRY: Entry = Entry {
    name: "depthnet",
    about: "The baseline on DepthNet with depth supervision (RGB+HSV, 256 px): the network \
            ANRL and D²AM build on, without their domain generalisation",
    defaults: || Defaults {
        input: InputKind::RgbHsv,
        size: 256,
        depth_weight: 1.0,
        ..Defaults::BASE
    },
    flags: &[],
    ablations: &[],
    build,
    canonical_model: as_written,
};

fn build(s: &Setup) -> Result<Built> {
    if let Some(b) = s.args.backbone.as_deref() {
        if b.parse::<BackboneKind>().ok() != Some(BackboneKind::DepthNet) {
            bail!(
                "--recipe depthnet is the DepthNet baseline; drop --backbone {b}, or use \
                 --recipe baseline --backbone {b}"
            );
        }
    }
    build_with(s, BackboneKind::DepthNet)
}
