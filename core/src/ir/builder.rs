//! Compact construction of IR graphs for backbones.

use std::collections::HashMap;

use super::{Graph, IrError, Node, Op, UpsampleMode, ValueInfo};

/// Builds a [`Graph`] node by node, tracking shapes so layers can take their input channel
/// count from the value they consume. Each method returns the new value's name (= the node
/// name). Parameter-free helpers take an explicit name too, so weight-free nodes keep stable
/// names. The first error is kept and returned by [`GraphBuilder::finish`]; later calls
/// still record nodes so the error points at the real culprit.
///
/// ```
/// use fas_core::ir::GraphBuilder;
/// let mut b = GraphBuilder::new("tiny");
/// let x = b.input("input", &[1, 3, 32, 32]);
/// let x = b.conv("conv1", &x, 8, 3, 1, 1);
/// let x = b.bn("bn1", &x);
/// let x = b.relu("relu1", &x);
/// let x = b.global_avg_pool("gap", &x);
/// let x = b.flatten("flat", &x);
/// let x = b.linear("fc", &x, 2, true);
/// b.output(&x);
/// let g = b.finish().unwrap();
/// assert_eq!(g.output_shapes().unwrap(), vec![vec![1, 2]]);
/// ```
#[derive(Debug)]
pub struct GraphBuilder {
    graph: Graph,
    shapes: HashMap<String, Vec<usize>>,
    error: Option<IrError>,
}

impl GraphBuilder {
    pub fn new(name: &str) -> GraphBuilder {
        GraphBuilder {
            graph: Graph::new(name),
            shapes: HashMap::new(),
            error: None,
        }
    }

    /// Shape of a value built so far (`None` if unknown or after an error upstream).
    pub fn shape(&self, value: &str) -> Option<&[usize]> {
        self.shapes.get(value).map(|s| s.as_slice())
    }

    /// Channel count (axis 1) of a value, 0 if unknown.
    pub fn channels(&self, value: &str) -> usize {
        self.shape(value)
            .and_then(|s| s.get(1).copied())
            .unwrap_or(0)
    }

    pub fn input(&mut self, name: &str, shape: &[usize]) -> String {
        self.graph.inputs.push(ValueInfo {
            name: name.into(),
            shape: shape.to_vec(),
        });
        self.shapes.insert(name.into(), shape.to_vec());
        name.into()
    }

    /// Add any node; its single output is named after it.
    pub fn node(&mut self, name: &str, op: Op, inputs: &[&str]) -> String {
        let ins: Option<Vec<&[usize]>> = inputs.iter().map(|i| self.shape(i)).collect();
        match ins {
            Some(ins) if self.error.is_none() => {
                let (lo, hi) = op.arity();
                if ins.len() < lo || ins.len() > hi {
                    self.error = Some(IrError::Arity {
                        node: name.into(),
                        op: op.kind(),
                        problem: format!("got {} inputs", ins.len()),
                    });
                } else {
                    match op.infer(&ins) {
                        Ok(s) => {
                            self.shapes.insert(name.into(), s);
                        }
                        Err(problem) => {
                            self.error = Some(IrError::Shape {
                                node: name.into(),
                                op: op.kind(),
                                problem,
                            })
                        }
                    }
                }
            }
            None if self.error.is_none() => {
                let missing = inputs.iter().find(|i| self.shape(i).is_none()).unwrap();
                self.error = Some(IrError::UndefinedInput {
                    node: name.into(),
                    input: (*missing).into(),
                });
            }
            _ => {}
        }
        self.graph.nodes.push(Node {
            name: name.into(),
            op,
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            outputs: vec![name.into()],
        });
        name.into()
    }

    /// Square conv without bias (the usual conv-BN pattern), groups 1.
    pub fn conv(
        &mut self,
        name: &str,
        x: &str,
        out: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> String {
        self.conv_full(name, x, out, kernel, stride, padding, 1, false)
    }

    /// Depthwise square conv (groups = channels), no bias.
    pub fn dwconv(
        &mut self,
        name: &str,
        x: &str,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> String {
        let c = self.channels(x);
        self.conv_full(name, x, c, kernel, stride, padding, c.max(1), false)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn conv_full(
        &mut self,
        name: &str,
        x: &str,
        out: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        groups: usize,
        bias: bool,
    ) -> String {
        let op = Op::Conv2d {
            in_channels: self.channels(x),
            out_channels: out,
            kernel: [kernel; 2],
            stride: [stride; 2],
            padding: [padding; 2],
            dilation: [1; 2],
            groups,
            bias,
        };
        self.node(name, op, &[x])
    }

    /// BatchNorm2d with PyTorch defaults (eps 1e-5, momentum 0.1).
    pub fn bn(&mut self, name: &str, x: &str) -> String {
        let op = Op::BatchNorm2d {
            channels: self.channels(x),
            eps: 1e-5,
            momentum: 0.1,
        };
        self.node(name, op, &[x])
    }

    pub fn instance_norm(&mut self, name: &str, x: &str, affine: bool) -> String {
        let op = Op::InstanceNorm2d {
            channels: self.channels(x),
            eps: 1e-5,
            affine,
        };
        self.node(name, op, &[x])
    }

    pub fn adaptive_bn_in(&mut self, name: &str, x: &str, reduction: usize) -> String {
        let op = Op::AdaptiveBnIn {
            channels: self.channels(x),
            reduction,
            eps: 1e-5,
            momentum: 0.1,
        };
        self.node(name, op, &[x])
    }

    pub fn style_attention(&mut self, name: &str, x: &str, reduction: usize) -> String {
        let op = Op::StyleAttention {
            channels: self.channels(x),
            reduction,
        };
        self.node(name, op, &[x])
    }

    pub fn se(&mut self, name: &str, x: &str, reduction: usize) -> String {
        let op = Op::SqueezeExcite {
            channels: self.channels(x),
            reduction,
        };
        self.node(name, op, &[x])
    }

    pub fn relu(&mut self, name: &str, x: &str) -> String {
        self.node(name, Op::Relu, &[x])
    }

    pub fn prelu(&mut self, name: &str, x: &str) -> String {
        let op = Op::PRelu {
            channels: self.channels(x),
        };
        self.node(name, op, &[x])
    }

    pub fn sigmoid(&mut self, name: &str, x: &str) -> String {
        self.node(name, Op::Sigmoid, &[x])
    }

    pub fn softmax(&mut self, name: &str, x: &str, axis: usize) -> String {
        self.node(name, Op::Softmax { axis }, &[x])
    }

    pub fn max_pool(
        &mut self,
        name: &str,
        x: &str,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> String {
        let op = Op::MaxPool2d {
            kernel: [kernel; 2],
            stride: [stride; 2],
            padding: [padding; 2],
        };
        self.node(name, op, &[x])
    }

    pub fn avg_pool(
        &mut self,
        name: &str,
        x: &str,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> String {
        let op = Op::AvgPool2d {
            kernel: [kernel; 2],
            stride: [stride; 2],
            padding: [padding; 2],
        };
        self.node(name, op, &[x])
    }

    pub fn global_avg_pool(&mut self, name: &str, x: &str) -> String {
        self.node(name, Op::GlobalAvgPool, &[x])
    }

    pub fn flatten(&mut self, name: &str, x: &str) -> String {
        self.node(name, Op::Flatten, &[x])
    }

    /// Linear layer taking its input size from `x`'s last axis.
    pub fn linear(&mut self, name: &str, x: &str, out: usize, bias: bool) -> String {
        let in_features = self.shape(x).and_then(|s| s.last().copied()).unwrap_or(0);
        let op = Op::Linear {
            in_features,
            out_features: out,
            bias,
        };
        self.node(name, op, &[x])
    }

    pub fn add(&mut self, name: &str, xs: &[&str]) -> String {
        self.node(name, Op::Add, xs)
    }

    pub fn concat(&mut self, name: &str, xs: &[&str], axis: usize) -> String {
        self.node(name, Op::Concat { axis }, xs)
    }

    pub fn upsample(&mut self, name: &str, x: &str, scale: usize, mode: UpsampleMode) -> String {
        self.node(name, Op::Upsample { scale, mode }, &[x])
    }

    pub fn mean_of_map(&mut self, name: &str, x: &str) -> String {
        self.node(name, Op::MeanOfMap, &[x])
    }

    /// L2 normalisation of `[N, F]` features (eps 1e-12, as `F.normalize`).
    pub fn l2_normalize(&mut self, name: &str, x: &str) -> String {
        self.node(name, Op::L2Normalize { eps: 1e-12 }, &[x])
    }

    pub fn select(&mut self, name: &str, x: &str, axis: usize, index: usize) -> String {
        self.node(name, Op::Select { axis, index }, &[x])
    }

    pub fn dropout(&mut self, name: &str, x: &str, p: f64) -> String {
        self.node(name, Op::Dropout { p }, &[x])
    }

    /// Mark a value as a graph output.
    pub fn output(&mut self, x: &str) {
        self.graph.outputs.push(x.into());
    }

    /// The graph, fully validated (structure and shapes), or the first error.
    pub fn finish(self) -> Result<Graph, IrError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        self.graph.infer_shapes()?;
        Ok(self.graph)
    }
}
