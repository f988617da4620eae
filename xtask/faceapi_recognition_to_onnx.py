#!/usr/bin/env python3
"""Builds an ONNX file from face-api.js's face recognition weights (the TF.js port of dlib's
`dlib_face_recognition_resnet_model_v1`, a 29-layer ResNet giving 128 values).

Run by `cargo xtask assets`. face-api ships only the weights (a TF.js weights manifest
and a binary shard, mostly uint8-quantised); the network is code in its
`src/faceRecognitionNet/` (FaceRecognitionNet.ts, residualLayer.ts, convLayer.ts,
scaleLayer.ts). This script writes that network as ONNX, opset 13, NCHW, with the helpers
of tfjs_to_onnx.py (standard-library Python only; the same inputs give the same bytes).

    faceapi_recognition_to_onnx.py MANIFEST_JSON OUT_ONNX WEIGHT_FILE...

Graph: input "input" [1, 3, 150, 150] float, already normalised by the caller as
face-api does: RGB, (v - [122.782, 117.001, 104.298]) / 255. Output "embedding" [1, 128]
(not normalised). Layers, as in FaceRecognitionNet.forwardInput:
  conv 7x7/2 valid (+bias, *scale +shift, relu), maxpool 3x3/2 valid,
  residual x3 (32), residual-down + residual x3 (64), residual-down + residual x2 (128),
  residual-down + residual x2 (256), residual-down (256), global mean, matmul fc.
A residual block is conv3x3 same + relu, conv3x3 same, + x, relu; a residual-down block
is conv3x3/2 valid + relu, conv3x3 same, + avgpool2x2/2(x) (zero-padded in channels when
they differ; the conv branch zero-padded by one row and column at the end when the pooled
map is larger), relu. Weights are dequantised as value * scale + min.
"""

import json
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tfjs_to_onnx import FLOAT, INT64, attr_int, attr_ints, f_bytes, f_varint, node, tensor, value_info  # noqa: E402

SIZE = 150


def fail(msg):
    sys.exit(f"faceapi_recognition_to_onnx: {msg}")


def load(manifest_path, files):
    manifest = json.load(open(manifest_path))
    blob = b"".join(open(f, "rb").read() for f in files)
    weights, off = {}, 0
    for group in manifest:
        for w in group["weights"]:
            n = 1
            for d in w["shape"]:
                n *= d
            q = w.get("quantization")
            if w["dtype"] != "float32":
                fail(f"weight {w['name']}: dtype {w['dtype']} is not supported")
            if q is None:
                vals = list(struct.unpack_from(f"<{n}f", blob, off))
                off += 4 * n
            elif q.get("dtype") == "uint8":
                raw = blob[off : off + n]
                scale, lo = q["scale"], q["min"]
                # Rounded to float32 as TF.js holds them.
                vals = list(struct.unpack(f"<{n}f", struct.pack(f"<{n}f", *(b * scale + lo for b in raw))))
                off += n
            else:
                fail(f"weight {w['name']}: quantisation {q} is not supported")
            weights[w["name"]] = (w["shape"], vals)
    if off != len(blob):
        fail(f"weight files hold {len(blob)} bytes, the manifest describes {off}")
    return weights


class Builder:
    def __init__(self, weights):
        self.w = weights
        self.nodes, self.inits = [], []
        self.n = 0

    def name(self, base):
        self.n += 1
        return f"{base}__{self.n}"

    def const(self, base, dims, vals, dtype=FLOAT):
        nm = self.name(base)
        raw = struct.pack(f"<{len(vals)}f", *vals) if dtype == FLOAT else struct.pack(f"<{len(vals)}q", *vals)
        self.inits.append(tensor(nm, dims, dtype, raw))
        return nm

    def get(self, key):
        if key not in self.w:
            fail(f"weight {key} is missing from the manifest")
        return self.w[key]

    def op(self, op, inputs, base, attrs=()):
        out = self.name(base)
        self.nodes.append(node(op, inputs, [out], out, attrs))
        return out

    def conv_layer(self, x, size, prefix, stride, relu, same):
        """conv + bias, * scale.weights + scale.biases, optional relu; returns (value, size)."""
        (kh, kw, cin, cout), vals = self.get(prefix + "/conv/filters")
        wt = [vals[((y * kw + xx) * cin + i) * cout + o] for o in range(cout) for i in range(cin) for y in range(kh) for xx in range(kw)]
        wn = self.const(prefix + "/conv/filters", [cout, cin, kh, kw], wt)
        _, b = self.get(prefix + "/conv/bias")
        bn = self.const(prefix + "/conv/bias", [cout], b)
        if same:
            out = (size + stride - 1) // stride
            total = max((out - 1) * stride + kh - size, 0)
            pads = [total // 2, total // 2, total - total // 2, total - total // 2]
        else:
            out = (size - kh) // stride + 1
            pads = [0, 0, 0, 0]
        attrs = [attr_ints("kernel_shape", [kh, kw]), attr_ints("strides", [stride, stride]), attr_ints("pads", pads)]
        y = self.op("Conv", [x, wn, bn], prefix + "/conv", attrs)
        _, s = self.get(prefix + "/scale/weights")
        _, t = self.get(prefix + "/scale/biases")
        y = self.op("Mul", [y, self.const(prefix + "/scale/weights", [cout, 1, 1], s)], prefix + "/scale/mul")
        y = self.op("Add", [y, self.const(prefix + "/scale/biases", [cout, 1, 1], t)], prefix + "/scale/add")
        if relu:
            y = self.op("Relu", [y], prefix + "/relu")
        return y, out, cout

    def residual(self, x, size, prefix):
        y, _, _ = self.conv_layer(x, size, prefix + "/conv1", 1, True, True)
        y, _, _ = self.conv_layer(y, size, prefix + "/conv2", 1, False, True)
        y = self.op("Add", [y, x], prefix + "/add")
        return self.op("Relu", [y], prefix + "/relu"), size

    def residual_down(self, x, size, channels, prefix):
        y, out, cout = self.conv_layer(x, size, prefix + "/conv1", 2, True, False)
        y, _, _ = self.conv_layer(y, out, prefix + "/conv2", 1, False, True)
        pooled = self.op("AveragePool", [x], prefix + "/avgpool", [attr_ints("kernel_shape", [2, 2]), attr_ints("strides", [2, 2])])
        psize = size // 2
        if psize != out:
            if psize != out + 1:
                fail(f"{prefix}: pooled map {psize} vs conv map {out}")
            pads = self.const(prefix + "/pad_hw", [8], [0, 0, 0, 0, 0, 0, 1, 1], INT64)
            y = self.op("Pad", [y, pads], prefix + "/pad_hw")
        if channels != cout:
            pads = self.const(prefix + "/pad_c", [8], [0, 0, 0, 0, 0, cout - channels, 0, 0], INT64)
            pooled = self.op("Pad", [pooled, pads], prefix + "/pad_c")
        y = self.op("Add", [pooled, y], prefix + "/add")
        return self.op("Relu", [y], prefix + "/relu"), psize, cout


def build(weights):
    b = Builder(weights)
    x, size, c = b.conv_layer("input", SIZE, "conv32_down", 2, True, False)
    x = b.op("MaxPool", [x], "maxpool", [attr_ints("kernel_shape", [3, 3]), attr_ints("strides", [2, 2])])
    size = (size - 3) // 2 + 1
    for blk in ["conv32_1", "conv32_2", "conv32_3"]:
        x, size = b.residual(x, size, blk)
    for down, blocks in [
        ("conv64_down", ["conv64_1", "conv64_2", "conv64_3"]),
        ("conv128_down", ["conv128_1", "conv128_2"]),
        ("conv256_down", ["conv256_1", "conv256_2"]),
        ("conv256_down_out", []),
    ]:
        x, size, c = b.residual_down(x, size, c, down)
        for blk in blocks:
            x, size = b.residual(x, size, blk)
    x = b.op("ReduceMean", [x], "global_mean", [attr_ints("axes", [2, 3]), attr_int("keepdims", 0)])
    dims, vals = b.get("fc")
    fc = b.const("fc", dims, vals)
    b.nodes.append(node("MatMul", [x, fc], ["embedding"], "fc"))
    used = b.n
    del used
    graph = b"".join(f_bytes(1, n) for n in b.nodes)
    graph += f_bytes(2, "faceapi_recognition")
    graph += b"".join(f_bytes(5, t) for t in b.inits)
    graph += f_bytes(11, value_info("input", [1, 3, SIZE, SIZE]))
    graph += f_bytes(12, value_info("embedding", [1, dims[1]]))
    opset = f_bytes(1, "") + f_varint(2, 13)
    return f_varint(1, 7) + f_bytes(2, "fas-xtask faceapi_recognition_to_onnx.py") + f_bytes(7, graph) + f_bytes(8, opset)


def main(argv):
    if len(argv) < 4:
        fail("usage: faceapi_recognition_to_onnx.py MANIFEST_JSON OUT_ONNX WEIGHT_FILE...")
    weights = load(argv[1], argv[3:])
    onnx = build(weights)
    with open(argv[2], "wb") as f:
        f.write(onnx)


if __name__ == "__main__":
    main(sys.argv)
