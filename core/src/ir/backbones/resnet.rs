//! ResNet-18 (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016) in
//! torchvision's layout, without the final `fc`:
//!
//! ```text
//! conv1 7×7/2 → bn1 → relu → maxpool 3×3/2
//! layer1..4: two BasicBlocks each (64, 128, 256, 512 channels; layer2..4 start with stride 2
//!            and a downsample = conv 1×1/2 + BN on the shortcut)
//!   BasicBlock: conv1 3×3 → bn1 → relu1 → conv2 3×3 → bn2 → add(shortcut) → relu2
//! avgpool (global) → flatten → [N, 512]
//! ```
//!
//! With an empty prefix the weights are named as torchvision's (`conv1.weight`,
//! `layer1.0.bn2.running_var`, `layer4.0.downsample.0.weight`, …), so a torchvision
//! checkpoint maps one-to-one (its `num_batches_tracked` buffers aside). Stages: the outputs
//! of `layer1`, `layer2`, `layer3` (strides 4, 8, 16); `layer4` feeds the features.

use super::{BackboneOut, Scope};

/// Channels of layer1..4 at width 1.
pub const WIDTHS: [usize; 4] = [64, 128, 256, 512];

/// BasicBlocks per layer.
pub const BLOCKS: usize = 2;

pub(crate) fn build(s: &mut Scope<'_>, input: &str) -> BackboneOut {
    let x = s.conv("conv1", input, s.ch(WIDTHS[0]), 7, 2, 3);
    let x = s.norm("bn1", &x);
    let x = s.relu("relu", &x);
    let mut x = s.max_pool("maxpool", &x, 3, 2, 1);
    let mut stages = Vec::new();
    for (li, &w) in WIDTHS.iter().enumerate() {
        let out = s.ch(w);
        for bi in 0..BLOCKS {
            let stride = if li > 0 && bi == 0 { 2 } else { 1 };
            x = basic_block(s, &format!("layer{}.{bi}", li + 1), &x, out, stride);
        }
        if li < 3 {
            stages.push(x.clone());
        }
    }
    let features = s.pool_flatten("avgpool", "flatten", &x);
    BackboneOut {
        features,
        feature_dim: s.ch(WIDTHS[3]),
        stages,
        depth: None,
    }
}

fn basic_block(s: &mut Scope<'_>, p: &str, x: &str, out: usize, stride: usize) -> String {
    let y = s.conv(&format!("{p}.conv1"), x, out, 3, stride, 1);
    let y = s.norm(&format!("{p}.bn1"), &y);
    let y = s.relu(&format!("{p}.relu1"), &y);
    let y = s.conv(&format!("{p}.conv2"), &y, out, 3, 1, 1);
    let y = s.norm(&format!("{p}.bn2"), &y);
    let shortcut = if stride != 1 || s.b.channels(x) != out {
        let d = s.conv(&format!("{p}.downsample.0"), x, out, 1, stride, 0);
        s.norm(&format!("{p}.downsample.1"), &d)
    } else {
        x.to_string()
    };
    let sum = s.add(&format!("{p}.add"), &y, &shortcut);
    s.relu(&format!("{p}.relu2"), &sum)
}
