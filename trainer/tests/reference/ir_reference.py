"""Independent PyTorch reference for the fas model IR (ARCHITECTURE.md contract 2).

Reads <dir>/model.json, <dir>/weights.safetensors and <dir>/input.safetensors, evaluates the
graph op by op with torch.nn.functional following the semantics documented on
fas_core::ir::Op, and writes <dir>/reference.safetensors with "eval/<output>" and
"train/<output>" (training mode: batch statistics, running statistics not used).

Only needs the `torch` wheel that `cargo xtask setup` installs; safetensors is read and
written by hand (the format is an 8-byte length, a JSON header and raw little-endian data).
"""

import json
import struct
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64}


def read_safetensors(path):
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    body = raw[8 + n :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        t = torch.frombuffer(bytearray(body[a:b]), dtype=DTYPES[info["dtype"]])
        out[name] = t.reshape(info["shape"]).clone()
    return out


def write_safetensors(path, tensors):
    header, chunks, offset = {}, [], 0
    for name, t in tensors.items():
        # No numpy in the venv: go through a uint8 view of the float32 storage.
        data = bytes(t.detach().contiguous().to(torch.float32).flatten().view(torch.uint8).tolist())
        header[name] = {
            "dtype": "F32",
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    Path(path).write_bytes(struct.pack("<Q", len(h)) + h + b"".join(chunks))


def fc(x, w, prefix):
    return F.linear(x, w[prefix + "weight"], w[prefix + "bias"])


def node_forward(op, name, xs, W, train):
    w = {k[len(name) + 1 :]: v for k, v in W.items() if k.startswith(name + ".")}
    x = xs[0]
    t = op["type"]
    if t == "conv2d":
        return F.conv2d(
            x,
            w["weight"],
            w.get("bias") if op["bias"] else None,
            stride=op["stride"],
            padding=op["padding"],
            dilation=op["dilation"],
            groups=op["groups"],
        )
    if t == "batch_norm2d":
        if train:
            return F.batch_norm(x, None, None, w["weight"], w["bias"], True, 0.0, op["eps"])
        return F.batch_norm(
            x, w["running_mean"], w["running_var"], w["weight"], w["bias"], False, 0.0, op["eps"]
        )
    if t == "instance_norm2d":
        if op["affine"]:
            return F.instance_norm(x, weight=w["weight"], bias=w["bias"], eps=op["eps"])
        return F.instance_norm(x, eps=op["eps"])
    if t == "adaptive_bn_in":
        rho = torch.sigmoid(fc(F.relu(fc(x.mean(dim=(2, 3)), w, "gate.fc1.")), w, "gate.fc2."))
        rho = rho[:, :, None, None]
        if train:
            bn = F.batch_norm(x, None, None, None, None, True, 0.0, op["eps"])
        else:
            bn = F.batch_norm(x, w["running_mean"], w["running_var"], None, None, False, 0.0, op["eps"])
        inn = F.instance_norm(x, eps=op["eps"])
        y = rho * bn + (1 - rho) * inn
        return y * w["weight"][None, :, None, None] + w["bias"][None, :, None, None]
    if t == "style_attention":
        mu = x.mean(dim=(2, 3))
        var = x.var(dim=(2, 3), unbiased=False)
        a = torch.sigmoid(fc(F.relu(fc(torch.cat([mu, var], 1), w, "fc1.")), w, "fc2."))
        return a[:, :, None, None] * x + x
    if t == "squeeze_excite":
        s = torch.sigmoid(fc(F.relu(fc(x.mean(dim=(2, 3)), w, "fc1.")), w, "fc2."))
        return x * s[:, :, None, None]
    if t == "relu":
        return F.relu(x)
    if t == "p_relu":
        return F.prelu(x, w["weight"])
    if t == "sigmoid":
        return torch.sigmoid(x)
    if t == "softmax":
        return torch.softmax(x, dim=op["axis"])
    if t == "max_pool2d":
        return F.max_pool2d(x, op["kernel"], op["stride"], op["padding"])
    if t == "avg_pool2d":
        return F.avg_pool2d(x, op["kernel"], op["stride"], op["padding"], count_include_pad=False)
    if t == "global_avg_pool":
        return x.mean(dim=(2, 3), keepdim=True)
    if t == "flatten":
        return torch.flatten(x, 1)
    if t == "linear":
        return F.linear(x, w["weight"], w.get("bias") if op["bias"] else None)
    if t == "add":
        y = xs[0]
        for other in xs[1:]:
            y = y + other
        return y
    if t == "concat":
        return torch.cat(xs, dim=op["axis"])
    if t == "upsample":
        if op["mode"] == "nearest":
            return F.interpolate(x, scale_factor=op["scale"], mode="nearest")
        return F.interpolate(x, scale_factor=op["scale"], mode="bilinear", align_corners=False)
    if t == "mean_of_map":
        return torch.flatten(x, 1).mean(dim=1, keepdim=True)
    if t == "l2_normalize":
        return F.normalize(x, p=2.0, dim=1, eps=op["eps"])
    if t == "select":
        return x.narrow(op["axis"], op["index"], 1)
    if t == "dropout":
        return x  # compared only where dropout is inactive (eval) or p = 0
    raise SystemExit(f"ir_reference.py: op {t} has no reference implementation")


def run(graph, W, inputs, train):
    values = dict(zip([i["name"] for i in graph["inputs"]], inputs))
    for n in graph["nodes"]:
        xs = [values[i] for i in n["inputs"]]
        values[n["outputs"][0]] = node_forward(n["op"], n["name"], xs, W, train)
    return {o: values[o] for o in graph["outputs"]}


def main():
    d = Path(sys.argv[1])
    graph = json.loads((d / "model.json").read_text())
    W = read_safetensors(d / "weights.safetensors")
    X = read_safetensors(d / "input.safetensors")
    inputs = [X[i["name"]] for i in graph["inputs"]]
    torch.use_deterministic_algorithms(True)
    out = {}
    with torch.no_grad():
        for mode, train in (("eval", False), ("train", True)):
            for k, v in run(graph, W, inputs, train).items():
                out[f"{mode}/{k}"] = v
    write_safetensors(d / "reference.safetensors", out)


if __name__ == "__main__":
    main()
