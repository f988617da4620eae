//! Ops that move or combine values: Flatten, Add, Concat, Upsample, MeanOfMap, Select,
//! Dropout.

use fas_core::ir::UpsampleMode;

use super::{axis, reduce_axes, Lowering, NodeIo};
use crate::onnx::proto::Attr;

pub(super) fn flatten(cx: &mut Lowering, n: &NodeIo) {
    cx.g.node("Flatten", &[n.x()], n.y, vec![axis(1)]);
}

/// A chain of two-input `Add`s, `<y>/0`, `<y>/1`, …, the last named `y`.
pub(super) fn add(cx: &mut Lowering, n: &NodeIo) {
    let xs = &n.xs;
    let first = if xs.len() == 2 {
        n.y.to_string()
    } else {
        n.tmp("0")
    };
    let mut acc = cx.g.node("Add", &[n.x(), &xs[1]], &first, vec![]);
    for (i, t) in xs.iter().enumerate().skip(2) {
        let name = if i + 1 == xs.len() {
            n.y.to_string()
        } else {
            n.tmp(&(i - 1).to_string())
        };
        acc = cx.g.node("Add", &[&acc, t], &name, vec![]);
    }
}

pub(super) fn concat(cx: &mut Lowering, n: &NodeIo, a: usize) {
    let refs: Vec<&str> = n.xs.iter().map(String::as_str).collect();
    cx.g.node("Concat", &refs, n.y, vec![axis(a)]);
}

/// `Resize` by `scale` on H and W: nearest (asymmetric, floor) or bilinear (half-pixel).
pub(super) fn upsample(cx: &mut Lowering, n: &NodeIo, scale: usize, mode: &UpsampleMode) {
    let s = scale as f32;
    let scales = cx.g.init_f32(&n.param("scales"), &[4], &[1.0, 1.0, s, s]);
    let attrs = match mode {
        UpsampleMode::Nearest => vec![
            ("mode", Attr::Str("nearest")),
            ("coordinate_transformation_mode", Attr::Str("asymmetric")),
            ("nearest_mode", Attr::Str("floor")),
        ],
        UpsampleMode::Bilinear => vec![
            ("mode", Attr::Str("linear")),
            ("coordinate_transformation_mode", Attr::Str("half_pixel")),
        ],
    };
    cx.g.node("Resize", &[n.x(), "", &scales], n.y, attrs);
}

/// The mean of a map per sample: `Flatten` + `ReduceMean` over axis 1.
pub(super) fn mean_of_map(cx: &mut Lowering, n: &NodeIo) {
    let f =
        cx.g.node("Flatten", &[n.x()], &n.tmp("flat"), vec![axis(1)]);
    cx.g.node("ReduceMean", &[&f], n.y, reduce_axes(&[1]));
}

/// `Slice` of one index on one axis (the axis kept).
pub(super) fn select(cx: &mut Lowering, n: &NodeIo, axis: usize, index: usize) {
    let g = &mut cx.g;
    let st = g.init_i64(&n.param("starts"), &[index as i64]);
    let en = g.init_i64(&n.param("ends"), &[index as i64 + 1]);
    let ax = g.init_i64(&n.param("axes"), &[axis as i64]);
    g.node("Slice", &[n.x(), &st, &en, &ax], n.y, vec![]);
}

/// Nothing at inference: the output is another name for the input.
pub(super) fn dropout(cx: &mut Lowering, n: &NodeIo) {
    cx.alias.insert(n.y.to_string(), n.x().to_string());
}
