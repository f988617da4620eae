//! A small network for boards, the size of MiniFASNetV2-SE (minivision "Silent-Face
//! Anti-Spoofing", 2020: ~0.43 M parameters, ~80 M multiply-adds at 80×80), built from
//! MobileFaceNet-style blocks (Chen et al., "MobileFaceNets", CCBR 2018): 1×1 expansion →
//! depthwise 3×3 → linear 1×1 projection, BN after each conv, PReLU after the first two,
//! squeeze-and-excitation (reduction 4) on every residual branch, and a global depthwise
//! convolution (GDC) instead of average pooling. The channel plan is this crate's own.
//!
//! Sizes at the default 80×80 input:
//!
//! ```text
//! stem     conv 3×3/2 → 32, dw 3×3 (stem_dw)                          [N,  32, 40, 40]
//! down1    expand 128 → dw 3×3/2 → project 64                         [N,  64, 20, 20]
//! stage1   5 × residual (expand 192, SE)                              [N,  64, 20, 20]  low
//! down2    expand 192 → dw 3×3/2 → project 64                         [N,  64, 10, 10]
//! stage2   3 × residual (expand 128, SE)                              [N,  64, 10, 10]  mid
//! down3    expand 128 → dw 3×3/2 → project 64                         [N,  64,  5,  5]
//! stage3   2 × residual (expand 128, SE)                              [N,  64,  5,  5]  high
//! sep      conv 1×1 → 512, BN, PReLU                                  [N, 512,  5,  5]
//! gdc      depthwise conv over the whole map (5×5, valid), BN         [N, 512,  1,  1]
//! embed    conv 1×1 → 128, BN → flatten                               [N, 128]
//! ```
//!
//! At 80×80 RGB: 426,976 parameters and 79.2 M multiply-adds ([`crate::ir::Graph::flops`]).
//! `gdc.bn` and `embed.bn` act on 1×1 maps and stay BatchNorm under
//! [`super::NormKind::AdaptiveBnIn`].

use super::{BackboneOut, Scope};

/// One downsampling block followed by residual blocks.
#[derive(Debug, Clone, Copy)]
pub struct Stage {
    /// Expansion of the stride-2 block that enters the stage.
    pub down_expand: usize,
    pub channels: usize,
    pub blocks: usize,
    /// Expansion of the residual blocks.
    pub expand: usize,
}

pub const STEM: usize = 32;
pub const STAGES: [Stage; 3] = [
    Stage {
        down_expand: 128,
        channels: 64,
        blocks: 5,
        expand: 192,
    },
    Stage {
        down_expand: 192,
        channels: 64,
        blocks: 3,
        expand: 128,
    },
    Stage {
        down_expand: 128,
        channels: 64,
        blocks: 2,
        expand: 128,
    },
];
pub const SEP: usize = 512;
pub const EMBEDDING: usize = 128;
pub const SE_REDUCTION: usize = 4;

/// The narrowest normalised layer at width 1 (the stem).
pub const NARROWEST: usize = STEM;

pub(crate) fn build(s: &mut Scope<'_>, input: &str) -> BackboneOut {
    let x = s.conv("stem.conv", input, s.ch(STEM), 3, 2, 1);
    let x = s.norm("stem.bn", &x);
    let x = s.prelu("stem.prelu", &x);
    let x = s.dwconv("stem_dw.conv", &x, 3, 1, 1);
    let x = s.norm("stem_dw.bn", &x);
    let mut x = s.prelu("stem_dw.prelu", &x);
    let mut stages = Vec::new();
    for (i, st) in STAGES.iter().enumerate() {
        let n = i + 1;
        x = bottleneck(
            s,
            &format!("down{n}"),
            &x,
            s.ch(st.down_expand),
            s.ch(st.channels),
            2,
        );
        for blk in 0..st.blocks {
            let p = format!("stage{n}.{blk}");
            let y = bottleneck(s, &p, &x, s.ch(st.expand), s.ch(st.channels), 1);
            let name = s.name(&format!("{p}.se"));
            let y = s.b.se(&name, &y, SE_REDUCTION);
            x = s.add(&format!("{p}.add"), &x, &y);
        }
        stages.push(x.clone());
    }
    let y = s.conv("sep.conv", &x, s.ch(SEP), 1, 1, 0);
    let y = s.norm("sep.bn", &y);
    let y = s.prelu("sep.prelu", &y);
    // GDC: a depthwise kernel as large as the remaining map (5×5 at 80×80 input).
    let k = s.b.shape(&y).map_or(1, |sh| sh[2]);
    let y = s.dwconv("gdc.conv", &y, k, 1, 0);
    let y = s.batch_norm("gdc.bn", &y);
    let y = s.conv("embed.conv", &y, s.ch(EMBEDDING), 1, 1, 0);
    let y = s.batch_norm("embed.bn", &y);
    let name = s.name("flatten");
    let features = s.b.flatten(&name, &y);
    BackboneOut {
        features,
        feature_dim: s.ch(EMBEDDING),
        stages,
        depth: None,
    }
}

/// expand 1×1 → norm → PReLU → depthwise 3×3/`stride` → norm → PReLU → project 1×1 → norm.
fn bottleneck(
    s: &mut Scope<'_>,
    p: &str,
    x: &str,
    expand: usize,
    out: usize,
    stride: usize,
) -> String {
    let y = s.conv(&format!("{p}.expand.conv"), x, expand, 1, 1, 0);
    let y = s.norm(&format!("{p}.expand.bn"), &y);
    let y = s.prelu(&format!("{p}.expand.prelu"), &y);
    let y = s.dwconv(&format!("{p}.dw.conv"), &y, 3, stride, 1);
    let y = s.norm(&format!("{p}.dw.bn"), &y);
    let y = s.prelu(&format!("{p}.dw.prelu"), &y);
    let y = s.conv(&format!("{p}.project.conv"), &y, out, 1, 1, 0);
    s.norm(&format!("{p}.project.bn"), &y)
}
