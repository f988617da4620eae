//! Conv2d.

use super::{ints, pads, Lowering, NodeIo};
use crate::onnx::proto::Attr;

/// The Conv2d attributes the lowering needs.
pub(super) struct Conv {
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
    pub bias: bool,
    pub out_channels: usize,
}

/// `Conv`, with the weights and bias of a BatchNorm folded into it where the plan says so.
pub(super) fn conv2d(cx: &mut Lowering, n: &NodeIo, c: &Conv) {
    let wt = cx.w(n, "weight");
    let (wdata, bdata) = match cx.folds.conv(&n.ir.name) {
        Some((fw, fb)) => (fw.clone(), Some(fb.clone())),
        None => (
            wt.data.clone(),
            c.bias.then(|| cx.w(n, "bias").data.clone()),
        ),
    };
    let kernel_shape: Vec<i64> = wt.shape[2..].iter().map(|&k| k as i64).collect();
    let wname = cx.g.init_f32(&n.param("weight"), &wt.shape, &wdata);
    let mut inputs = vec![n.x().to_string(), wname];
    if let Some(b) = bdata {
        inputs.push(cx.g.init_f32(&n.param("bias"), &[c.out_channels], &b));
    }
    let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    cx.g.node(
        "Conv",
        &inputs,
        n.y,
        vec![
            ("kernel_shape", Attr::Ints(kernel_shape)),
            ("strides", Attr::Ints(ints(&c.stride))),
            ("pads", pads(&c.padding)),
            ("dilations", Attr::Ints(ints(&c.dilation))),
            ("group", Attr::Int(c.groups as i64)),
        ],
    );
}
