#!/usr/bin/env python3
"""The onnxruntime half of `embed_eval`: embeds the aligned faces that
`cargo run --release -p fas-infer --example embed_eval -- --dump DIR` wrote, with the same
ONNX file, one thread, and prints the latency and the largest difference from tract's
embeddings (DIR/tract_embeddings.txt).

    python3 infer/examples/embed_eval_ort.py DIR [ASSETS_DIR] [RUNS]

Needs onnxruntime (the reference: onnxruntime==1.31.1 from PyPI), numpy and pillow, e.g.
in a scratch venv: python3 -m venv /tmp/ort && /tmp/ort/bin/pip install onnxruntime==1.31.1 numpy pillow
"""

import csv
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

MEAN = np.array([122.782, 117.001, 104.298], np.float32)


def main():
    d = Path(sys.argv[1])
    assets = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(__file__).resolve().parents[2] / "assets"
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    rows = list(csv.DictReader(open(d / "faces.tsv"), delimiter="\t"))
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(assets / "dlib_face_resnet.onnx"), so, providers=["CPUExecutionProvider"])
    xs = []
    for r in rows:
        img = np.asarray(Image.open(d / f"{int(r['index']):03d}.png").convert("RGB"), np.float32)
        xs.append(np.ascontiguousarray(((img - MEAN) / 255.0).transpose(2, 0, 1)[None]))
    emb = np.array([sess.run(None, {"input": x})[0][0] for x in xs])
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    tract = np.loadtxt(d / "tract_embeddings.txt", ndmin=2)
    print(f"onnxruntime {ort.__version__}: {len(rows)} faces, max |ort - tract| = {np.abs(emb - tract).max():.2e}")
    for _ in range(10):
        sess.run(None, {"input": xs[0]})
    ms = []
    for _ in range(runs):
        t = time.perf_counter()
        sess.run(None, {"input": xs[0]})
        ms.append((time.perf_counter() - t) * 1e3)
    ms.sort()
    print(
        f"onnxruntime embed (1 thread, {runs} runs): median {ms[len(ms) // 2]:.2f} ms, "
        f"p90 {ms[len(ms) * 9 // 10]:.2f} ms, min {ms[0]:.2f} ms"
    )


if __name__ == "__main__":
    main()
