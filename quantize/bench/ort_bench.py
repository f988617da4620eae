#!/usr/bin/env python3
"""onnxruntime timings of the models written by `int8_bench` (same files, same inputs).

    cargo run --release -p fas-quantize --example int8_bench -- target/int8-bench
    python3 quantize/bench/ort_bench.py target/int8-bench [RUNS]

Needs `onnxruntime` and `numpy` (pip install onnxruntime). Prints one table row per model,
encoding and thread count (1 and 2 intra-op threads): median latency after warm-up, ratio
to fp32 at the same thread count, and |p_live − p_live(fp32)| on the timing input.
"""

import sys
import time
from pathlib import Path

try:
    import numpy as np
    import onnxruntime as ort
except ImportError as e:  # pragma: no cover - depends on the machine
    sys.exit(f"ort_bench: {e} — install with: pip install onnxruntime numpy")

MODELS = {"edgenet-80": 80, "resnet18-128": 128}
ENCODINGS = ["fp32", "int8-weight-only", "int8-weight-only-1dq", "int8-qdq", "int8-qdq-1dq"]
WARMUP = 5


def session(path: Path, threads: int) -> ort.InferenceSession:
    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    o.inter_op_num_threads = 1
    o.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), o, providers=["CPUExecutionProvider"])


def median_ms(s: ort.InferenceSession, feed: dict, runs: int) -> float:
    for _ in range(WARMUP):
        s.run(None, feed)
    t = []
    for _ in range(runs):
        a = time.perf_counter()
        s.run(None, feed)
        t.append((time.perf_counter() - a) * 1e3)
    return float(np.median(t))


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    d = Path(sys.argv[1])
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    print(f"onnxruntime {ort.__version__}")
    print(f"| model | encoding | threads | ORT median ms ({runs} runs) | × fp32 | |Δp_live| |")
    print("|---|---|---|---|---|---|")
    for name, size in MODELS.items():
        raw = d / f"{name}-input.f32"
        if not raw.exists():
            sys.exit(f"ort_bench: {raw} missing — run the int8_bench example with {d} first")
        x = np.fromfile(raw, dtype="<f4").reshape(1, 3, size, size)
        for threads in (1, 2):
            base_ms = base_p = None
            for enc in ENCODINGS:
                path = d / f"{name}-{enc}.onnx"
                if not path.exists():  # the -1dq variants exist only where chunking applied
                    continue
                s = session(path, threads)
                feed = {s.get_inputs()[0].name: x}
                p = float(s.run(None, feed)[0].reshape(-1)[0])
                ms = median_ms(s, feed, runs)
                if base_ms is None:
                    base_ms, base_p = ms, p
                print(
                    f"| {name} | {enc} | {threads} | {ms:.2f} | {ms / base_ms:.2f} | {abs(p - base_p):.4f} |"
                )


if __name__ == "__main__":
    main()
