//! Backbones as IR builders: each adds its layers to a [`GraphBuilder`] under a name prefix,
//! so the trainer (tch) and the ONNX exporter see the same layers and weight names.
//!
//! | kind | layout | features at default width | stages (low, mid, high) |
//! |---|---|---|---|
//! | [`BackboneKind::Resnet18`] | torchvision ResNet-18 without `fc` ([`resnet`]) | 512 | `layer1`, `layer2`, `layer3` |
//! | [`BackboneKind::DepthNet`] | CDCN-style depth network with plain 3×3 convs ([`depthnet`]) | 384 | `block1`, `block2`, `block3` |
//! | [`BackboneKind::EdgeNet`] | MiniFASNet-size depthwise-separable net ([`edgenet`]) | 128 | `stage1`, `stage2`, `stage3` |
//!
//! Node names are `"{prefix}.{local}"` (just `"{local}"` for an empty prefix); weight names
//! follow as `"{node}.{suffix}"` ([`super::Op::weights`]). With an empty prefix ResNet-18's
//! weights carry torchvision's names (`layer1.0.conv1.weight`, `layer2.0.downsample.1.bias`).
//!
//! [`NormKind::AdaptiveBnIn`] puts ANRL's adaptive BN/IN module (AFNM) in every
//! normalisation slot, keeping the node names, so the BN weights keep their names and the
//! gate adds `"{node}.gate.fc{1,2}.{weight,bias}"`.

pub mod depthnet;
pub mod edgenet;
pub mod resnet;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{GraphBuilder, IrError, Op};

/// Which backbone to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackboneKind {
    Resnet18,
    DepthNet,
    EdgeNet,
}

impl BackboneKind {
    pub const ALL: [BackboneKind; 3] = [
        BackboneKind::Resnet18,
        BackboneKind::DepthNet,
        BackboneKind::EdgeNet,
    ];

    /// The name used in configs and on the command line (the serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            BackboneKind::Resnet18 => "resnet18",
            BackboneKind::DepthNet => "depth_net",
            BackboneKind::EdgeNet => "edge_net",
        }
    }

    /// The input side length the backbone is designed for.
    pub fn default_input_size(self) -> usize {
        match self {
            BackboneKind::Resnet18 => 224,
            BackboneKind::DepthNet => 256,
            BackboneKind::EdgeNet => 80,
        }
    }
}

impl fmt::Display for BackboneKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A backbone name that is not one of [`BackboneKind::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown backbone \"{0}\" — choose one of: resnet18, depth_net, edge_net")]
pub struct UnknownBackbone(pub String);

impl FromStr for BackboneKind {
    type Err = UnknownBackbone;

    fn from_str(s: &str) -> Result<BackboneKind, UnknownBackbone> {
        // `depthnet` / `edge-net` etc. are accepted too: users type the paper names.
        let norm = |x: &str| x.to_ascii_lowercase().replace(['_', '-'], "");
        BackboneKind::ALL
            .into_iter()
            .find(|k| norm(k.as_str()) == norm(s))
            .ok_or_else(|| UnknownBackbone(s.to_string()))
    }
}

/// What fills every normalisation slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum NormKind {
    /// BatchNorm2d (PyTorch defaults).
    Batch,
    /// Affine InstanceNorm2d (per-sample statistics in training and inference alike, no
    /// running statistics). Slots whose map is 1×1 keep BatchNorm, as for
    /// [`NormKind::AdaptiveBnIn`].
    Instance,
    /// ANRL's adaptive BN/IN fusion (AFNM, [`Op::AdaptiveBnIn`]) with this gate reduction.
    /// Slots whose map is 1×1 (EdgeNet's embedding tail) keep BatchNorm: instance statistics
    /// of a single pixel are degenerate.
    AdaptiveBnIn { reduction: usize },
}

/// What to build. `in_channels` is 3 (RGB) or 6 (RGB + HSV); the input value must be
/// `[N, in_channels, input_size, input_size]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackboneSpec {
    pub kind: BackboneKind,
    pub in_channels: usize,
    pub input_size: usize,
    pub norm: NormKind,
    /// Channel multiplier applied to every hidden channel count (feature dimension
    /// included): `max(1, round(c · width))`. 1.0 is the published size.
    pub width: f32,
}

impl BackboneSpec {
    /// RGB input at the kind's default size, BatchNorm, width 1.
    pub fn new(kind: BackboneKind) -> BackboneSpec {
        BackboneSpec {
            kind,
            in_channels: 3,
            input_size: kind.default_input_size(),
            norm: NormKind::Batch,
            width: 1.0,
        }
    }

    /// `c` scaled by `width`, at least 1.
    pub fn channels(&self, c: usize) -> usize {
        ((c as f64 * f64::from(self.width)).round() as usize).max(1)
    }

    /// The smallest input side the kind accepts and the multiple it must be of.
    fn size_rule(&self) -> (usize, usize) {
        match self.kind {
            BackboneKind::Resnet18 => (32, 1),
            // Three exact halvings, then the earlier blocks are pooled by 4 and 2.
            BackboneKind::DepthNet => (32, 8),
            BackboneKind::EdgeNet => (16, 1),
        }
    }

    /// Channel count of the narrowest normalised layer (bounds the AFNM reduction).
    fn narrowest_norm(&self) -> usize {
        match self.kind {
            BackboneKind::Resnet18 => self.channels(resnet::WIDTHS[0]),
            BackboneKind::DepthNet => self.channels(depthnet::NARROWEST),
            BackboneKind::EdgeNet => self.channels(edgenet::NARROWEST),
        }
    }

    /// Check the spec on its own (not against an input value).
    pub fn validate(&self) -> Result<(), IrError> {
        let spec = |field, problem: String| Err(IrError::Spec { field, problem });
        if self.in_channels == 0 {
            return spec(
                "in_channels",
                "is 0 — use 3 for RGB or 6 for RGB+HSV".into(),
            );
        }
        if !(self.width.is_finite() && self.width > 0.0) {
            return spec(
                "width",
                format!(
                    "{} is not a positive channel multiplier — use e.g. 1.0 or 0.5",
                    self.width
                ),
            );
        }
        let (min, multiple) = self.size_rule();
        if self.input_size < min || !self.input_size.is_multiple_of(multiple) {
            let rule = if multiple > 1 {
                format!("a multiple of {multiple} that is at least {min}")
            } else {
                format!("at least {min}")
            };
            return spec(
                "input_size",
                format!(
                    "{} does not fit {}: it must be {rule} (default {})",
                    self.input_size,
                    self.kind,
                    self.kind.default_input_size()
                ),
            );
        }
        if self.kind == BackboneKind::EdgeNet
            && self.channels(edgenet::STAGES[0].channels) < edgenet::SE_REDUCTION
        {
            return spec(
                "width",
                format!(
                    "{} leaves EdgeNet's blocks narrower than its SE reduction {} — use a width of at least 0.0625",
                    self.width,
                    edgenet::SE_REDUCTION
                ),
            );
        }
        if let NormKind::AdaptiveBnIn { reduction } = self.norm {
            let narrowest = self.narrowest_norm();
            if reduction == 0 || reduction > narrowest {
                return spec(
                    "norm.reduction",
                    format!(
                        "{reduction} must be in 1..={narrowest} (the narrowest normalised layer of {} at width {} has {narrowest} channels) — use e.g. 16 or less",
                        self.kind, self.width
                    ),
                );
            }
        }
        Ok(())
    }
}

/// Value names produced by [`build`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackboneOut {
    /// `[N, feature_dim]` features for a classifier.
    pub features: String,
    pub feature_dim: usize,
    /// Low-, mid- and high-level feature maps `[N, C, H, W]` (for style ops and depth).
    pub stages: Vec<String>,
    /// `[N, 1, h, w]` depth map in `[0, 1]` (sigmoid); DepthNet only.
    pub depth: Option<String>,
}

/// `"{prefix}.{local}"`, or `local` when the prefix is empty.
pub fn scoped(prefix: &str, local: &str) -> String {
    if prefix.is_empty() {
        local.to_string()
    } else {
        format!("{prefix}.{local}")
    }
}

/// Add the backbone described by `spec` to `b`, reading `input`
/// (`[N, in_channels, input_size, input_size]`), with every node name under `prefix`.
///
/// Errors: the spec is invalid ([`BackboneSpec::validate`]) or `input` does not match it.
/// Layer-level shape problems (none are expected for a valid spec) are reported by
/// [`GraphBuilder::finish`] with the failing node.
pub fn build(
    b: &mut GraphBuilder,
    input: &str,
    spec: &BackboneSpec,
    prefix: &str,
) -> Result<BackboneOut, IrError> {
    spec.validate()?;
    let shape = b.shape(input).map(<[usize]>::to_vec);
    let want = |n: usize| vec![n, spec.in_channels, spec.input_size, spec.input_size];
    match shape {
        Some(s) if s.len() == 4 && s == want(s[0]) => {}
        Some(s) => {
            return Err(IrError::Spec {
                field: "in_channels/input_size",
                problem: format!(
                    "input \"{input}\" has shape {s:?} but the spec wants {:?} — make the input and the spec agree",
                    want(s.first().copied().unwrap_or(1))
                ),
            })
        }
        None => {
            return Err(IrError::Structure {
                problem: format!(
                    "backbone input \"{input}\" is not a value of this graph — add it with GraphBuilder::input first"
                ),
            })
        }
    }
    let mut s = Scope {
        b,
        prefix: prefix.to_string(),
        spec: *spec,
    };
    let out = match spec.kind {
        BackboneKind::Resnet18 => resnet::build(&mut s, input),
        BackboneKind::DepthNet => depthnet::build(&mut s, input),
        BackboneKind::EdgeNet => edgenet::build(&mut s, input),
    };
    match s.b.shape(&out.features) {
        Some([_, f]) if *f == out.feature_dim => Ok(out),
        _ => Err(IrError::Structure {
            problem: format!(
                "backbone {} did not build (a layer failed; GraphBuilder::finish names it)",
                spec.kind
            ),
        }),
    }
}

/// A linear classification head on `[N, feature_dim]` features, node `"{prefix}.fc"` (or
/// `"fc"`): logits `[N, classes]`. A `features` value of another width is reported by
/// [`GraphBuilder::finish`].
pub fn head(
    b: &mut GraphBuilder,
    features: &str,
    feature_dim: usize,
    classes: usize,
    prefix: &str,
) -> String {
    let op = Op::Linear {
        in_features: feature_dim,
        out_features: classes,
        bias: true,
    };
    b.node(&scoped(prefix, "fc"), op, &[features])
}

/// How a model's native output becomes `p_live` (contract 3: live is class 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LiveProbKind {
    /// Logits `[N, K]`, `K ≥ 2`: softmax over classes, keep class 1.
    Softmax,
    /// One logit `[N, 1]` for "live": sigmoid.
    Sigmoid,
    /// A depth map `[N, 1, h, w]` in `[0, 1]` (live faces have depth, attacks are flat):
    /// its mean.
    DepthMean,
}

/// Append the nodes that turn `logits` into `p_live [N, 1]`; the last node is named
/// `"p_live"`. Errors if `logits` has the wrong shape for `kind`.
pub fn live_prob(
    b: &mut GraphBuilder,
    logits: &str,
    kind: LiveProbKind,
) -> Result<String, IrError> {
    let shape = b.shape(logits).map(<[usize]>::to_vec).ok_or_else(|| IrError::Structure {
        problem: format!(
            "p_live: value \"{logits}\" is unknown (undefined, or an earlier layer failed; GraphBuilder::finish names it)"
        ),
    })?;
    let fits = match kind {
        LiveProbKind::Softmax => shape.len() == 2 && shape[1] >= 2,
        LiveProbKind::Sigmoid => shape.len() == 2 && shape[1] == 1,
        LiveProbKind::DepthMean => shape.len() == 4 && shape[1] == 1,
    };
    if !fits {
        let want = match kind {
            LiveProbKind::Softmax => "[N, K] logits with K ≥ 2 (class 1 = live)",
            LiveProbKind::Sigmoid => "[N, 1] (one live logit)",
            LiveProbKind::DepthMean => "[N, 1, h, w] (a depth map)",
        };
        return Err(IrError::Structure {
            problem: format!(
                "p_live ({kind:?}): \"{logits}\" has shape {shape:?}, expected {want} — pick the LiveProbKind matching the head"
            ),
        });
    }
    Ok(match kind {
        LiveProbKind::Softmax => {
            let p = b.softmax("live_softmax", logits, 1);
            b.select("p_live", &p, 1, 1)
        }
        LiveProbKind::Sigmoid => b.sigmoid("p_live", logits),
        LiveProbKind::DepthMean => b.mean_of_map("p_live", logits),
    })
}

/// The builder, the name prefix and the spec, with the layer helpers shared by the
/// backbones.
pub(crate) struct Scope<'a> {
    pub b: &'a mut GraphBuilder,
    pub prefix: String,
    pub spec: BackboneSpec,
}

impl Scope<'_> {
    pub fn name(&self, local: &str) -> String {
        scoped(&self.prefix, local)
    }

    pub fn ch(&self, c: usize) -> usize {
        self.spec.channels(c)
    }

    /// The spec's normalisation in slot `local`.
    pub fn norm(&mut self, local: &str, x: &str) -> String {
        let name = self.name(local);
        match self.spec.norm {
            NormKind::Batch => self.b.bn(&name, x),
            NormKind::Instance => self.b.instance_norm(&name, x, true),
            NormKind::AdaptiveBnIn { reduction } => self.b.adaptive_bn_in(&name, x, reduction),
        }
    }

    /// BatchNorm regardless of the spec (for 1×1 maps, see [`NormKind::AdaptiveBnIn`]).
    pub fn batch_norm(&mut self, local: &str, x: &str) -> String {
        let name = self.name(local);
        self.b.bn(&name, x)
    }

    /// Square conv, no bias, groups 1.
    pub fn conv(
        &mut self,
        local: &str,
        x: &str,
        out: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> String {
        let name = self.name(local);
        self.b.conv(&name, x, out, kernel, stride, padding)
    }

    /// Depthwise square conv, no bias.
    pub fn dwconv(
        &mut self,
        local: &str,
        x: &str,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> String {
        let name = self.name(local);
        self.b.dwconv(&name, x, kernel, stride, padding)
    }

    pub fn relu(&mut self, local: &str, x: &str) -> String {
        let name = self.name(local);
        self.b.relu(&name, x)
    }

    pub fn prelu(&mut self, local: &str, x: &str) -> String {
        let name = self.name(local);
        self.b.prelu(&name, x)
    }

    pub fn max_pool(
        &mut self,
        local: &str,
        x: &str,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> String {
        let name = self.name(local);
        self.b.max_pool(&name, x, kernel, stride, padding)
    }

    pub fn avg_pool(&mut self, local: &str, x: &str, kernel: usize, stride: usize) -> String {
        let name = self.name(local);
        self.b.avg_pool(&name, x, kernel, stride, 0)
    }

    pub fn add(&mut self, local: &str, a: &str, c: &str) -> String {
        let name = self.name(local);
        self.b.add(&name, &[a, c])
    }

    /// Global average pool then flatten: `[N, C, H, W]` → `[N, C]`.
    pub fn pool_flatten(&mut self, pool: &str, flatten: &str, x: &str) -> String {
        let (p, f) = (self.name(pool), self.name(flatten));
        let x = self.b.global_avg_pool(&p, x);
        self.b.flatten(&f, &x)
    }
}

#[cfg(test)]
mod tests;
