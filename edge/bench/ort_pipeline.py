#!/usr/bin/env python3
"""The door's per-frame algorithm in Python + onnxruntime: the reference that
`edge/examples/pipeline_bench.rs` writes its inputs for and runs in the same process tree
(same frames, same models, same CPU).

    python3 edge/bench/ort_pipeline.py DIR

DIR holds `meta.json`, `frames.yuyv`, `detector.onnx` and `liveness.onnx` from the Rust
benchmark. Per frame: YUYV -> RGB (the same 8.8 fixed-point BT.601 formula), RetinaFace
(BGR minus (104, 117, 123), NCHW, the same priors, box/landmark decoding and greedy NMS),
faces kept at `min_score`, exactly one face -> aligned crop (Umeyama similarity onto the
ArcFace template, inverse-mapped bilinear warp with black outside, rounded to 8 bits) or
box crop, normalised per channel, liveness ONNX -> p_live. Vectorised with numpy; each
session has one intra-op thread. No quality gates, no tracker, no policy.

Prints one JSON line: per-stage milliseconds of the timed frames, p_live per frame (null
when no single face), library versions.
"""

import json
import os
import sys
import time
from pathlib import Path

# One core, as the Rust side: no BLAS or OpenMP thread pools (set before numpy loads).
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np
import onnxruntime as ort

TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ]
)
MIN_SIZES = [[16.0, 32.0], [64.0, 128.0], [256.0, 512.0]]
STEPS = [8, 16, 32]
VARIANCE = (0.1, 0.2)
BGR_MEAN = np.array([104.0, 117.0, 123.0], np.float32)


def session(path):
    o = ort.SessionOptions()
    o.intra_op_num_threads = 1
    o.inter_op_num_threads = 1
    o.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), o, providers=["CPUExecutionProvider"])


def yuyv_to_rgb(buf, w, h):
    p = buf.reshape(h, w // 2, 4).astype(np.int32)
    y = np.empty((h, w), np.int32)
    y[:, 0::2], y[:, 1::2] = p[:, :, 0], p[:, :, 2]
    d = np.repeat(p[:, :, 1], 2, axis=1) - 128
    e = np.repeat(p[:, :, 3], 2, axis=1) - 128
    c = 298 * (y - 16) + 128
    rgb = np.stack([c + 409 * e, c - 100 * d - 208 * e, c + 516 * d], axis=-1)
    return np.clip(rgb >> 8, 0, 255).astype(np.uint8)


def priors(w, h):
    out = []
    for step, sizes in zip(STEPS, MIN_SIZES):
        rows, cols = -(-h // step), -(-w // step)
        jj, ii = np.meshgrid(np.arange(cols), np.arange(rows))
        cx = ((jj + 0.5) * step / w).astype(np.float32)
        cy = ((ii + 0.5) * step / h).astype(np.float32)
        for_cell = [
            np.stack([cx, cy, np.full_like(cx, m / w), np.full_like(cy, m / h)], -1)
            for m in sizes
        ]
        out.append(np.stack(for_cell, axis=2).reshape(-1, 4))
    return np.concatenate(out).astype(np.float32)


def triangle_weights(n_in, n_out):
    """The resampling matrix of the `image` crate's Triangle filter (support 1, widened
    by the downscale ratio, sample centres at (o + 0.5) * ratio - 0.5, weights normalised
    per output pixel, taps clamped to the image)."""
    ratio = n_in / n_out
    s = max(ratio, 1.0)
    m = np.zeros((n_out, n_in), np.float32)
    for o in range(n_out):
        centre = (o + 0.5) * ratio
        left = min(max(int(np.floor(centre - s)), 0), n_in - 1)
        right = min(max(int(np.ceil(centre + s)), left + 1), n_in)
        taps = np.arange(left, right)
        w = np.maximum(0.0, 1.0 - np.abs((taps - (centre - 0.5)) / s))
        m[o, left:right] = w / w.sum()
    return m


def iou(a, b):
    iw = max(min(a[2], b[2]) - max(a[0], b[0]), 0.0)
    ih = max(min(a[3], b[3]) - max(a[1], b[1]), 0.0)
    inter = iw * ih
    area = lambda r: max(r[2] - r[0], 0.0) * max(r[3] - r[1], 0.0)
    union = area(a) + area(b) - inter
    return inter / union if union > 0 else 0.0


class Detector:
    def __init__(self, path, cfg, w, h):
        self.s = session(path)
        self.name = self.s.get_inputs()[0].name
        self.cfg = cfg
        long = max(w, h)
        self.size = None
        if long > cfg["max_side"]:
            # As fas-infer: the long side scaled to max_side, aspect kept, a triangle
            # (bilinear, widened when downscaling) filter.
            k = cfg["max_side"] / long
            self.size = (min(max(round(w * k), 1), cfg["max_side"]), min(max(round(h * k), 1), cfg["max_side"]))
        self.w, self.h = w, h
        iw, ih = self.size or (w, h)
        self.priors = priors(iw, ih)
        self.wy, self.wx = triangle_weights(h, ih), triangle_weights(w, iw)

    def resize(self, rgb):
        h, w, _ = rgb.shape
        t = self.wy @ rgb.reshape(h, w * 3).astype(np.float32)
        t = self.wx @ t.reshape(-1, w, 3).transpose(1, 0, 2).reshape(w, -1)
        t = t.reshape(self.wx.shape[0], self.wy.shape[0], 3).transpose(1, 0, 2)
        return np.clip(np.round(t), 0, 255).astype(np.uint8)

    def __call__(self, rgb):
        if self.size:
            rgb = self.resize(rgb)
        x = rgb[:, :, ::-1].astype(np.float32) - BGR_MEAN
        x = np.ascontiguousarray(x.transpose(2, 0, 1)[None])
        loc, conf, lm = self.s.run(["loc", "conf", "landmarks"], {self.name: x})
        loc, conf, lm = loc[0], conf[0], lm[0]
        score = conf[:, 1]
        idx = np.nonzero(score >= self.cfg["score_threshold"])[0]
        idx = idx[np.argsort(-score[idx], kind="stable")][: self.cfg["pre_nms_top_k"]]
        p = self.priors[idx]
        l = loc[idx]
        cx = p[:, 0] + l[:, 0] * VARIANCE[0] * p[:, 2]
        cy = p[:, 1] + l[:, 1] * VARIANCE[0] * p[:, 3]
        bw = p[:, 2] * np.exp(np.clip(l[:, 2] * VARIANCE[1], -30, 30))
        bh = p[:, 3] * np.exp(np.clip(l[:, 3] * VARIANCE[1], -30, 30))
        sx, sy = np.float32(self.w), np.float32(self.h)
        boxes = np.stack([(cx - 0.5 * bw) * sx, (cy - 0.5 * bh) * sy, (cx + 0.5 * bw) * sx, (cy + 0.5 * bh) * sy], -1)
        pts = lm[idx].reshape(-1, 5, 2)
        marks = np.stack(
            [
                (p[:, None, 0] + pts[:, :, 0] * VARIANCE[0] * p[:, None, 2]) * sx,
                (p[:, None, 1] + pts[:, :, 1] * VARIANCE[0] * p[:, None, 3]) * sy,
            ],
            -1,
        )
        kept = []
        for k in range(len(idx)):
            if len(kept) >= self.cfg["top_k"]:
                break
            if all(iou(boxes[j], boxes[k]) <= self.cfg["nms_iou"] for j in kept):
                kept.append(k)
        return [(boxes[k], marks[k], float(score[idx[k]])) for k in kept]


def umeyama(src, dst):
    ms, md = src.mean(0), dst.mean(0)
    s, d = src - ms, dst - md
    var = (s**2).sum()
    a = (s * d).sum() / var
    b = (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum() / var
    t = md - np.array([a * ms[0] - b * ms[1], b * ms[0] + a * ms[1]])
    return np.array([[a, -b, t[0]], [b, a, t[1]]])


def invert(m):
    a = m[:, :2]
    inv = np.linalg.inv(a)
    return np.hstack([inv, -inv @ m[:, 2:]])


class Cropper:
    def __init__(self, spec):
        self.spec = spec
        self.w, self.h = spec["width"], spec["height"]
        for c in spec["color"]:
            if c not in ("rgb", "bgr"):
                raise SystemExit(f"colour space {c} is not implemented in the Python reference")
        ys, xs = np.mgrid[0 : self.h, 0 : self.w].astype(np.float64)
        self.grid = np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)])
        mean = np.array(spec["normalize"]["mean"], np.float32)
        std = np.array(spec["normalize"]["std"], np.float32)
        v = np.arange(256, dtype=np.float32) / np.float32(255.0)
        self.lut = [(v - m) / s for m, s in zip(mean, std)]

    def inverse_map(self, box, marks):
        crop = self.spec["crop"]
        if crop["kind"] == "aligned":
            k = min(self.w, self.h) / 112.0 / crop["scale"]
            dst = (TEMPLATE - 56.0) * k + np.array([self.w / 2.0, self.h / 2.0])
            return invert(umeyama(marks.astype(np.float64), dst))
        x1, y1, x2, y2 = (float(v) for v in box)
        side = float(np.float32(crop["scale"])) * max(abs(x2 - x1), abs(y2 - y1))
        ax, ay = side / self.w, side / self.h
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        return np.array([[ax, 0, cx - side / 2 + 0.5 * ax - 0.5], [0, ay, cy - side / 2 + 0.5 * ay - 0.5]])

    def __call__(self, rgb, box, marks):
        sx, sy = self.inverse_map(box, marks) @ self.grid
        ih, iw = rgb.shape[:2]
        x0, y0 = np.floor(sx), np.floor(sy)
        fx, fy = sx - x0, sy - y0
        x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
        img = rgb.astype(np.float64)
        acc = np.zeros((sx.size, 3))
        for dy, wy in ((0, 1 - fy), (1, fy)):
            for dx, wx in ((0, 1 - fx), (1, fx)):
                X, Y = x0 + dx, y0 + dy
                ok = (X >= 0) & (X < iw) & (Y >= 0) & (Y < ih)
                acc[ok] += (wx * wy)[ok, None] * img[Y[ok], X[ok]]
        px = np.clip(np.floor(acc + 0.5), 0, 255).astype(np.uint8)
        chans = []
        for g, space in enumerate(self.spec["color"]):
            q = px if space == "rgb" else px[:, ::-1]
            for c in range(3):
                chans.append(self.lut[3 * g + c][q[:, c]])
        return np.stack(chans).reshape(1, len(chans), self.h, self.w)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    d = Path(sys.argv[1])
    meta = json.loads((d / "meta.json").read_text())
    w, h, n = meta["width"], meta["height"], meta["frames"]
    frames = np.fromfile(d / "frames.yuyv", np.uint8).reshape(n, h * w * 2)
    det = Detector(d / "detector.onnx", meta["detector"], w, h)
    crop = Cropper(meta["preprocess"])
    live = session(d / "liveness.onnx")
    live_in = live.get_inputs()[0].name
    min_score = meta["detector"]["min_score"]
    stages = {k: [] for k in ("convert", "detect", "crop", "score")}
    p_live = []
    for i in range(n):
        t = [time.perf_counter()]
        rgb = yuyv_to_rgb(frames[i], w, h)
        t.append(time.perf_counter())
        faces = [f for f in det(rgb) if f[2] >= min_score]
        t.append(time.perf_counter())
        p = None
        if len(faces) == 1:
            x = crop(rgb, faces[0][0], faces[0][1])
            t.append(time.perf_counter())
            p = float(live.run(None, {live_in: x})[0].reshape(-1)[0])
            t.append(time.perf_counter())
        else:
            t += [t[-1], t[-1]]
        p_live.append(p)
        if i >= meta["warmup"]:
            for k, name in enumerate(stages):
                stages[name].append((t[k + 1] - t[k]) * 1e3)
    print(json.dumps({"stages": stages, "p_live": p_live, "onnxruntime": ort.__version__, "numpy": np.__version__}))


if __name__ == "__main__":
    main()
