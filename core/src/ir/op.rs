//! Operators of the model IR, their named weights and their shape rules.

use serde::{Deserialize, Serialize};

/// Upsampling interpolation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpsampleMode {
    Nearest,
    /// Bilinear, `align_corners = false` (PyTorch and ONNX `half_pixel`).
    Bilinear,
}

/// One operator with its hyper-parameters. Shapes are NCHW (`[N, C, H, W]`) for image ops,
/// `[N, F]` for vectors. Weight names are `"{node}.{suffix}"`, identical in the trainer and
/// the ONNX exporter (contract 2); [`Op::weights`] lists them with their shapes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    /// 2-D convolution. Weights: `weight [out, in/groups, kh, kw]`, `bias [out]` if `bias`.
    Conv2d {
        in_channels: usize,
        out_channels: usize,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
        groups: usize,
        bias: bool,
    },
    /// Batch norm (inference uses running stats).
    /// Weights: `weight`, `bias`, `running_mean`, `running_var`, all `[C]`.
    BatchNorm2d {
        channels: usize,
        eps: f64,
        momentum: f64,
    },
    /// Instance norm (per-sample, per-channel statistics, no running stats).
    /// Weights if `affine`: `weight`, `bias` `[C]`.
    InstanceNorm2d {
        channels: usize,
        eps: f64,
        affine: bool,
    },
    /// ANRL's adaptive feature normalisation (AFNM): a learned, input-dependent per-channel
    /// gate `ρ = σ(fc2(relu(fc1(gap(x)))))` mixes batch and instance statistics,
    /// `y = weight·(ρ·BN(x) + (1−ρ)·IN(x)) + bias` with `BN` using running stats.
    /// Weights: `gate.fc1.weight [C/r, C]`, `gate.fc1.bias [C/r]`, `gate.fc2.weight [C, C/r]`,
    /// `gate.fc2.bias [C]`, `weight`, `bias`, `running_mean`, `running_var` `[C]`.
    AdaptiveBnIn {
        channels: usize,
        reduction: usize,
        eps: f64,
        momentum: f64,
    },
    /// DLIF channel-wise style attention (arXiv 2407.08243, Eq. 8–9): per-channel spatial
    /// mean and biased variance, concatenated `[μ, σ²]` `[N, 2C]` → `fc1` → ReLU → `fc2` →
    /// sigmoid gives `a [N, C]`; `y = a · x + x`.
    /// Weights: `fc1.weight [C/r, 2C]`, `fc1.bias [C/r]`, `fc2.weight [C, C/r]`, `fc2.bias [C]`.
    StyleAttention {
        channels: usize,
        reduction: usize,
    },
    /// Squeeze-and-excitation: `y = x · σ(fc2(relu(fc1(gap(x)))))`.
    /// Weights: `fc1.weight [C/r, C]`, `fc1.bias [C/r]`, `fc2.weight [C, C/r]`, `fc2.bias [C]`.
    SqueezeExcite {
        channels: usize,
        reduction: usize,
    },
    Relu,
    /// Per-channel PReLU. Weights: `weight [C]`.
    PRelu {
        channels: usize,
    },
    Sigmoid,
    Softmax {
        axis: usize,
    },
    MaxPool2d {
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
    },
    /// Average pooling, padding not counted in the average (`count_include_pad = false`).
    AvgPool2d {
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
    },
    /// `[N, C, H, W]` → `[N, C, 1, 1]`.
    GlobalAvgPool,
    /// `[N, ...]` → `[N, prod(...)]`.
    Flatten,
    /// Fully connected on the last axis. Weights: `weight [out, in]`, `bias [out]` if `bias`.
    Linear {
        in_features: usize,
        out_features: usize,
        bias: bool,
    },
    /// Element-wise sum of two or more inputs of identical shape.
    Add,
    Concat {
        axis: usize,
    },
    /// Integer-factor spatial upsampling.
    Upsample {
        scale: usize,
        mode: UpsampleMode,
    },
    /// L2 normalisation along axis 1 of `[N, F]`: `y = x / max(‖x‖₂, eps)` (PyTorch
    /// `F.normalize`); cosine classifiers (AM-softmax heads) deploy as this + `Linear`.
    L2Normalize {
        eps: f64,
    },
    /// Mean over every non-batch axis: `[N, ...]` → `[N, 1]` (a depth/spoof map to a score).
    MeanOfMap,
    /// Keep `index` of `axis` (keeping the axis, size 1), e.g. the live class of a softmax.
    Select {
        axis: usize,
        index: usize,
    },
    /// Identity at inference (kept so trainer and IR agree on structure).
    Dropout {
        p: f64,
    },
}

/// A shape-rule violation, before the node name is attached.
pub type ShapeProblem = String;

fn rank(s: &[usize], want: usize, what: &str) -> Result<(), ShapeProblem> {
    if s.len() != want {
        return Err(format!("{what} must be rank {want}, got {s:?}"));
    }
    Ok(())
}

fn channels_at(s: &[usize], c: usize) -> Result<(), ShapeProblem> {
    if s.len() < 2 || s[1] != c {
        return Err(format!("expects {c} channels (axis 1), got input {s:?}"));
    }
    Ok(())
}

fn window(
    size: usize,
    k: usize,
    s: usize,
    p: usize,
    d: usize,
    axis: &str,
) -> Result<usize, ShapeProblem> {
    if k == 0 || s == 0 || d == 0 {
        return Err(format!("kernel, stride and dilation must be ≥ 1 ({axis})"));
    }
    let span = d * (k - 1) + 1;
    if size + 2 * p < span {
        return Err(format!(
            "{axis} {size} with padding {p} is smaller than the kernel span {span}"
        ));
    }
    Ok((size + 2 * p - span) / s + 1)
}

impl Op {
    /// The `type` tag as written in `model.json`.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Conv2d { .. } => "conv2d",
            Op::BatchNorm2d { .. } => "batch_norm2d",
            Op::InstanceNorm2d { .. } => "instance_norm2d",
            Op::AdaptiveBnIn { .. } => "adaptive_bn_in",
            Op::StyleAttention { .. } => "style_attention",
            Op::SqueezeExcite { .. } => "squeeze_excite",
            Op::Relu => "relu",
            Op::PRelu { .. } => "p_relu",
            Op::Sigmoid => "sigmoid",
            Op::Softmax { .. } => "softmax",
            Op::MaxPool2d { .. } => "max_pool2d",
            Op::AvgPool2d { .. } => "avg_pool2d",
            Op::GlobalAvgPool => "global_avg_pool",
            Op::Flatten => "flatten",
            Op::Linear { .. } => "linear",
            Op::Add => "add",
            Op::Concat { .. } => "concat",
            Op::Upsample { .. } => "upsample",
            Op::L2Normalize { .. } => "l2_normalize",
            Op::MeanOfMap => "mean_of_map",
            Op::Select { .. } => "select",
            Op::Dropout { .. } => "dropout",
        }
    }

    /// How many inputs the op takes: `(min, max)`.
    pub fn arity(&self) -> (usize, usize) {
        match self {
            Op::Add => (2, usize::MAX),
            Op::Concat { .. } => (1, usize::MAX),
            _ => (1, 1),
        }
    }

    /// Named weights of a node with this op: `("{node}.{suffix}", shape)`, in a fixed order.
    pub fn weights(&self, node: &str) -> Vec<(String, Vec<usize>)> {
        let w = |suffix: &str, shape: Vec<usize>| (format!("{node}.{suffix}"), shape);
        let fc_pair = |prefix: &str, c_in: usize, c: usize, r: usize| {
            let hidden = (c / r.max(1)).max(1);
            vec![
                w(&format!("{prefix}fc1.weight"), vec![hidden, c_in]),
                w(&format!("{prefix}fc1.bias"), vec![hidden]),
                w(&format!("{prefix}fc2.weight"), vec![c, hidden]),
                w(&format!("{prefix}fc2.bias"), vec![c]),
            ]
        };
        match *self {
            Op::Conv2d {
                in_channels,
                out_channels,
                kernel,
                groups,
                bias,
                ..
            } => {
                let mut v = vec![w(
                    "weight",
                    vec![
                        out_channels,
                        in_channels / groups.max(1),
                        kernel[0],
                        kernel[1],
                    ],
                )];
                if bias {
                    v.push(w("bias", vec![out_channels]));
                }
                v
            }
            Op::BatchNorm2d { channels: c, .. } => vec![
                w("weight", vec![c]),
                w("bias", vec![c]),
                w("running_mean", vec![c]),
                w("running_var", vec![c]),
            ],
            Op::InstanceNorm2d {
                channels: c,
                affine: true,
                ..
            } => vec![w("weight", vec![c]), w("bias", vec![c])],
            Op::InstanceNorm2d { affine: false, .. } => vec![],
            Op::AdaptiveBnIn {
                channels: c,
                reduction: r,
                ..
            } => {
                let mut v = fc_pair("gate.", c, c, r);
                v.extend([
                    w("weight", vec![c]),
                    w("bias", vec![c]),
                    w("running_mean", vec![c]),
                    w("running_var", vec![c]),
                ]);
                v
            }
            Op::StyleAttention {
                channels: c,
                reduction: r,
            } => fc_pair("", 2 * c, c, r),
            Op::SqueezeExcite {
                channels: c,
                reduction: r,
            } => fc_pair("", c, c, r),
            Op::PRelu { channels } => vec![w("weight", vec![channels])],
            Op::Linear {
                in_features,
                out_features,
                bias,
            } => {
                let mut v = vec![w("weight", vec![out_features, in_features])];
                if bias {
                    v.push(w("bias", vec![out_features]));
                }
                v
            }
            Op::Relu
            | Op::Sigmoid
            | Op::Softmax { .. }
            | Op::MaxPool2d { .. }
            | Op::AvgPool2d { .. }
            | Op::GlobalAvgPool
            | Op::Flatten
            | Op::Add
            | Op::Concat { .. }
            | Op::Upsample { .. }
            | Op::MeanOfMap
            | Op::L2Normalize { .. }
            | Op::Select { .. }
            | Op::Dropout { .. } => vec![],
        }
    }

    /// Learnable parameters, excluding BN running statistics (as PyTorch counts them).
    pub fn num_params(&self, node: &str) -> usize {
        self.weights(node)
            .iter()
            .filter(|(n, _)| !n.ends_with(".running_mean") && !n.ends_with(".running_var"))
            .map(|(_, s)| s.iter().product::<usize>())
            .sum()
    }

    /// Multiply-accumulate operations of one node, given its input shapes and its output
    /// shape (see [`super::Graph::flops`] for what is counted). Bias additions, norms,
    /// activations, pooling and element-wise ops count 0.
    pub fn macs(&self, inputs: &[&[usize]], output: &[usize]) -> u64 {
        let numel = |s: &[usize]| s.iter().map(|&d| d as u64).product::<u64>();
        let batch = inputs
            .first()
            .and_then(|s| s.first())
            .map_or(0, |&n| n as u64);
        // A gate/SE pair: fc1 `c_in → hidden`, fc2 `hidden → c`, once per sample.
        let fc_pair = |c_in: usize, c: usize, r: usize| {
            let hidden = (c / r.max(1)).max(1) as u64;
            batch * (c_in as u64 * hidden + hidden * c as u64)
        };
        match *self {
            Op::Conv2d {
                in_channels,
                kernel,
                groups,
                ..
            } => {
                let per_output =
                    (in_channels / groups.max(1)) as u64 * kernel[0] as u64 * kernel[1] as u64;
                numel(output) * per_output
            }
            Op::Linear { in_features, .. } => numel(output) * in_features as u64,
            Op::SqueezeExcite {
                channels: c,
                reduction: r,
            }
            | Op::AdaptiveBnIn {
                channels: c,
                reduction: r,
                ..
            } => fc_pair(c, c, r),
            Op::StyleAttention {
                channels: c,
                reduction: r,
            } => fc_pair(2 * c, c, r),
            Op::BatchNorm2d { .. }
            | Op::InstanceNorm2d { .. }
            | Op::Relu
            | Op::PRelu { .. }
            | Op::Sigmoid
            | Op::Softmax { .. }
            | Op::MaxPool2d { .. }
            | Op::AvgPool2d { .. }
            | Op::GlobalAvgPool
            | Op::Flatten
            | Op::Add
            | Op::Concat { .. }
            | Op::Upsample { .. }
            | Op::MeanOfMap
            | Op::L2Normalize { .. }
            | Op::Select { .. }
            | Op::Dropout { .. } => 0,
        }
    }

    /// Output shape from input shapes (arity already checked).
    pub fn infer(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, ShapeProblem> {
        let x = inputs[0];
        match *self {
            Op::Conv2d {
                in_channels,
                out_channels,
                kernel,
                stride,
                padding,
                dilation,
                groups,
                ..
            } => {
                rank(x, 4, "input")?;
                channels_at(x, in_channels)?;
                if groups == 0 || in_channels % groups != 0 || out_channels % groups != 0 {
                    return Err(format!(
                        "groups {groups} must divide in_channels {in_channels} and out_channels {out_channels}"
                    ));
                }
                if out_channels == 0 {
                    return Err("out_channels is 0".into());
                }
                let h = window(
                    x[2],
                    kernel[0],
                    stride[0],
                    padding[0],
                    dilation[0],
                    "height",
                )?;
                let w = window(x[3], kernel[1], stride[1], padding[1], dilation[1], "width")?;
                Ok(vec![x[0], out_channels, h, w])
            }
            Op::BatchNorm2d { channels, .. }
            | Op::InstanceNorm2d { channels, .. }
            | Op::AdaptiveBnIn { channels, .. }
            | Op::StyleAttention { channels, .. }
            | Op::SqueezeExcite { channels, .. } => {
                rank(x, 4, "input")?;
                channels_at(x, channels)?;
                if let Op::AdaptiveBnIn { reduction, .. }
                | Op::StyleAttention { reduction, .. }
                | Op::SqueezeExcite { reduction, .. } = *self
                {
                    if reduction == 0 || reduction > channels {
                        return Err(format!("reduction {reduction} must be in 1..={channels}"));
                    }
                }
                Ok(x.to_vec())
            }
            Op::PRelu { channels } => {
                channels_at(x, channels)?;
                Ok(x.to_vec())
            }
            Op::Relu | Op::Sigmoid | Op::Dropout { .. } => Ok(x.to_vec()),
            Op::Softmax { axis } => {
                if axis >= x.len() {
                    return Err(format!("axis {axis} out of range for {x:?}"));
                }
                Ok(x.to_vec())
            }
            Op::MaxPool2d {
                kernel,
                stride,
                padding,
            }
            | Op::AvgPool2d {
                kernel,
                stride,
                padding,
            } => {
                rank(x, 4, "input")?;
                if padding[0] * 2 > kernel[0] || padding[1] * 2 > kernel[1] {
                    return Err(format!(
                        "padding {padding:?} must be at most half the kernel {kernel:?}"
                    ));
                }
                let h = window(x[2], kernel[0], stride[0], padding[0], 1, "height")?;
                let w = window(x[3], kernel[1], stride[1], padding[1], 1, "width")?;
                Ok(vec![x[0], x[1], h, w])
            }
            Op::GlobalAvgPool => {
                rank(x, 4, "input")?;
                Ok(vec![x[0], x[1], 1, 1])
            }
            Op::Flatten => {
                if x.is_empty() {
                    return Err("cannot flatten a scalar".into());
                }
                Ok(vec![x[0], x[1..].iter().product()])
            }
            Op::Linear {
                in_features,
                out_features,
                ..
            } => {
                rank(x, 2, "input")?;
                if x[1] != in_features {
                    return Err(format!(
                        "expects {in_features} input features, got input {x:?}"
                    ));
                }
                Ok(vec![x[0], out_features])
            }
            Op::Add => {
                if let Some(o) = inputs.iter().find(|s| **s != x) {
                    return Err(format!("input shapes differ: {x:?} vs {o:?}"));
                }
                Ok(x.to_vec())
            }
            Op::Concat { axis } => {
                if axis >= x.len() {
                    return Err(format!("axis {axis} out of range for {x:?}"));
                }
                let mut out = x.to_vec();
                for s in &inputs[1..] {
                    let same = s.len() == x.len()
                        && s.iter()
                            .zip(x)
                            .enumerate()
                            .all(|(i, (a, b))| i == axis || a == b);
                    if !same {
                        return Err(format!("inputs {x:?} and {s:?} differ outside axis {axis}"));
                    }
                    out[axis] += s[axis];
                }
                Ok(out)
            }
            Op::Upsample { scale, .. } => {
                rank(x, 4, "input")?;
                if scale == 0 {
                    return Err("scale must be ≥ 1".into());
                }
                Ok(vec![x[0], x[1], x[2] * scale, x[3] * scale])
            }
            Op::L2Normalize { eps } => {
                rank(x, 2, "input")?;
                if eps.is_nan() || eps <= 0.0 {
                    return Err(format!("eps must be > 0, got {eps}"));
                }
                Ok(x.to_vec())
            }
            Op::MeanOfMap => {
                if x.len() < 2 {
                    return Err(format!("needs a batch axis and a map, got {x:?}"));
                }
                Ok(vec![x[0], 1])
            }
            Op::Select { axis, index } => {
                if axis >= x.len() || index >= x[axis] {
                    return Err(format!(
                        "index {index} on axis {axis} out of range for {x:?}"
                    ));
                }
                let mut out = x.to_vec();
                out[axis] = 1;
                Ok(out)
            }
        }
    }
}
