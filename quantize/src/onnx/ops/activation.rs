//! Relu, PRelu, Sigmoid, Softmax.

use super::{axis, Lowering, NodeIo};

pub(super) fn relu(cx: &mut Lowering, n: &NodeIo) {
    cx.g.node("Relu", &[n.x()], n.y, vec![]);
}

/// `PRelu` with the per-channel slope as `[C, 1, 1]`.
pub(super) fn prelu(cx: &mut Lowering, n: &NodeIo, channels: usize) {
    let slope = cx.w(n, "weight");
    let s =
        cx.g.init_f32(&n.param("weight"), &[channels, 1, 1], &slope.data);
    cx.g.node("PRelu", &[n.x(), &s], n.y, vec![]);
}

pub(super) fn sigmoid(cx: &mut Lowering, n: &NodeIo) {
    cx.g.node("Sigmoid", &[n.x()], n.y, vec![]);
}

pub(super) fn softmax(cx: &mut Lowering, n: &NodeIo, a: usize) {
    cx.g.node("Softmax", &[n.x()], n.y, vec![axis(a)]);
}
