//! The multi-level depth-regression network of the CDCN family — CDCN (Yu et al., "Searching
//! Central Difference Convolutional Networks for Face Anti-Spoofing", CVPR 2020), also the
//! backbone of RFM, D²AM and ANRL (Liu et al., "Adaptive Normalized Representation Learning
//! for Generalizable Face Anti-Spoofing", ACM MM 2021) — built from plain 3×3 convolutions
//! (no central-difference term, so it exports as standard ONNX).
//!
//! Sizes at the default 256×256 input (each conv is 3×3/1, pad 1, no bias, followed by the
//! normalisation and ReLU, except the last head conv):
//!
//! ```text
//! stem      conv 64                                   [N,  64, 256, 256]
//! block1    conv 128 → conv 196 → conv 128 → maxpool 3/2  [N, 128, 128, 128]  (stage low)
//! block2    same                                      [N, 128,  64,  64]  (stage mid)
//! block3    same                                      [N, 128,  32,  32]  (stage high)
//! resize    block1 avgpool 4/4, block2 avgpool 2/2    both [N, 128, 32, 32]
//! concat    block1 ⧺ block2 ⧺ block3                  [N, 384, 32, 32]
//! head      conv 128 → conv 64 → conv 1 (with bias) → sigmoid = depth [N, 1, 32, 32]
//! features  global avgpool of the concatenation → flatten [N, 384]
//! ```
//!
//! CDCN resizes the earlier blocks with bilinear interpolation; exact 4× and 2× average
//! pooling is what bilinear downsampling by an integer factor approximates and keeps the graph
//! to pooling ops. CDCN ends the head in ReLU; the sigmoid keeps the map in `[0, 1]`, the
//! range of the binary/pseudo-depth targets, so `p_live` can be its mean.

use super::{BackboneOut, Scope};

/// Channels of the stem, of the three convs of a block, and of the two head convs.
pub const STEM: usize = 64;
pub const BLOCK: [usize; 3] = [128, 196, 128];
pub const HEAD: [usize; 2] = [128, 64];

/// The narrowest normalised layer at width 1 (stem and second head conv).
pub const NARROWEST: usize = 64;

pub(crate) fn build(s: &mut Scope<'_>, input: &str) -> BackboneOut {
    let x = s.conv("stem.conv", input, s.ch(STEM), 3, 1, 1);
    let x = s.norm("stem.bn", &x);
    let mut x = s.relu("stem.relu", &x);
    let mut stages = Vec::new();
    for blk in 1..=3 {
        for (i, &c) in BLOCK.iter().enumerate() {
            let p = format!("block{blk}.");
            let i = i + 1;
            let y = s.conv(&format!("{p}conv{i}"), &x, s.ch(c), 3, 1, 1);
            let y = s.norm(&format!("{p}bn{i}"), &y);
            x = s.relu(&format!("{p}relu{i}"), &y);
        }
        x = s.max_pool(&format!("block{blk}.pool"), &x, 3, 2, 1);
        stages.push(x.clone());
    }
    let low = s.avg_pool("block1.resize", &stages[0], 4, 4);
    let mid = s.avg_pool("block2.resize", &stages[1], 2, 2);
    let name = s.name("concat");
    let cat = s.b.concat(&name, &[&low, &mid, &stages[2]], 1);

    let mut y = cat.clone();
    for (i, &c) in HEAD.iter().enumerate() {
        let i = i + 1;
        let z = s.conv(&format!("head.conv{i}"), &y, s.ch(c), 3, 1, 1);
        let z = s.norm(&format!("head.bn{i}"), &z);
        y = s.relu(&format!("head.relu{i}"), &z);
    }
    let name = s.name("head.conv3");
    let y = s.b.conv_full(&name, &y, 1, 3, 1, 1, 1, true);
    let name = s.name("depth");
    let depth = s.b.sigmoid(&name, &y);

    let features = s.pool_flatten("gap", "flatten", &cat);
    BackboneOut {
        features,
        feature_dim: 3 * s.ch(BLOCK[2]),
        stages,
        depth: Some(depth),
    }
}
