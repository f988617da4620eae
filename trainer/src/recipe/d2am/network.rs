//! D²AM's network: DepthNet with a DRLM after each stage, the depth head on the `F⁺` path
//! and the meta-learner M, as the training graph and as the deployed graph.

use anyhow::Result;
use fas_core::ir::backbones::{self, BackboneKind, BackboneSpec, LiveProbKind, NormKind};
use fas_core::ir::{Graph, GraphBuilder};

use super::D2amConfig;

const INPUT: &str = "input";
const STEM: usize = 64;
const BLOCK: [usize; 3] = [128, 196, 128];
const HEAD: [usize; 2] = [128, 64];
/// Value names of the training graph.
#[derive(Debug, Clone)]
pub(super) struct Names {
    pub(super) logit: String,
    pub(super) features: String,
    pub(super) depth: String,
    /// Per stage: (F, F⁺, DRLM node name).
    pub(super) stages: Vec<(String, String, String)>,
}

impl D2amConfig {
    fn ch(&self, c: usize) -> usize {
        BackboneSpec {
            kind: BackboneKind::DepthNet,
            in_channels: self.in_channels,
            input_size: self.input_size,
            norm: NormKind::Batch,
            width: self.width,
        }
        .channels(c)
    }

    /// DepthNet with a DRLM after each stage, the depth head on the `F⁺` path, and the
    /// meta-learner M. Training outputs: logit, pooled features, depth; deploy: `p_live`.
    pub(super) fn graph(&self, deploy: bool) -> Result<(Graph, Names)> {
        let mut b = GraphBuilder::new("d2am-depth_net-drlm");
        let x = b.input(
            INPUT,
            &[1, self.in_channels, self.input_size, self.input_size],
        );
        let x = b.conv("stem.conv", &x, self.ch(STEM), 3, 1, 1);
        let x = b.bn("stem.bn", &x);
        let mut x = b.relu("stem.relu", &x);
        let r = self.drlm_reduction.min(self.ch(BLOCK[2])).max(1);
        let mut stages = Vec::new();
        for blk in 1..=3 {
            for (i, &c) in BLOCK.iter().enumerate() {
                let i = i + 1;
                let y = b.conv(&format!("block{blk}.conv{i}"), &x, self.ch(c), 3, 1, 1);
                let y = b.bn(&format!("block{blk}.bn{i}"), &y);
                x = b.relu(&format!("block{blk}.relu{i}"), &y);
            }
            let f = b.max_pool(&format!("block{blk}.pool"), &x, 3, 2, 1);
            let drlm = format!("block{blk}.drlm");
            let fp = b.se(&drlm, &f, r);
            stages.push((f, fp.clone(), drlm));
            x = fp;
        }
        let low = b.avg_pool("block1.resize", &stages[0].1, 4, 4, 0);
        let mid = b.avg_pool("block2.resize", &stages[1].1, 2, 2, 0);
        let cat = b.concat("concat", &[&low, &mid, &stages[2].1], 1);
        let mut y = cat.clone();
        for (i, &c) in HEAD.iter().enumerate() {
            let i = i + 1;
            let z = b.conv(&format!("head.conv{i}"), &y, self.ch(c), 3, 1, 1);
            let z = b.bn(&format!("head.bn{i}"), &z);
            y = b.relu(&format!("head.relu{i}"), &z);
        }
        let y = b.conv_full("head.conv3", &y, 1, 3, 1, 1, 1, true);
        let depth = b.sigmoid("depth", &y);
        let g = b.global_avg_pool("gap", &cat);
        let features = b.flatten("flatten", &g);
        let h = b.linear("meta.adapt", &features, self.adapt_dim, true);
        let h = b.relu("meta.relu", &h);
        let logit = b.linear("cls.fc", &h, 1, true);
        if deploy {
            let p = backbones::live_prob(&mut b, &logit, LiveProbKind::Sigmoid)?;
            b.output(&p);
        } else {
            b.output(&logit);
            b.output(&features);
            b.output(&depth);
        }
        Ok((
            b.finish()?,
            Names {
                logit,
                features,
                depth,
                stages,
            },
        ))
    }
}
