//! MaxPool2d, AvgPool2d, GlobalAvgPool.

use super::{ints, pads, Lowering, NodeIo};
use crate::onnx::proto::Attr;

pub(super) fn max_pool(
    cx: &mut Lowering,
    n: &NodeIo,
    kernel: &[usize; 2],
    stride: &[usize; 2],
    padding: &[usize; 2],
) {
    let attrs = window(kernel, stride, padding);
    cx.g.node("MaxPool", &[n.x()], n.y, attrs);
}

/// `AveragePool` with padding not counted (`count_include_pad = 0`), as the IR's.
pub(super) fn avg_pool(
    cx: &mut Lowering,
    n: &NodeIo,
    kernel: &[usize; 2],
    stride: &[usize; 2],
    padding: &[usize; 2],
) {
    let mut attrs = window(kernel, stride, padding);
    attrs.push(("count_include_pad", Attr::Int(0)));
    cx.g.node("AveragePool", &[n.x()], n.y, attrs);
}

pub(super) fn global_avg_pool(cx: &mut Lowering, n: &NodeIo) {
    cx.g.node("GlobalAveragePool", &[n.x()], n.y, vec![]);
}

/// A pooling window's `kernel_shape`, `strides`, `pads`.
fn window(
    kernel: &[usize; 2],
    stride: &[usize; 2],
    padding: &[usize; 2],
) -> Vec<(&'static str, Attr)> {
    vec![
        ("kernel_shape", Attr::Ints(ints(kernel))),
        ("strides", Attr::Ints(ints(stride))),
        ("pads", pads(padding)),
    ]
}
