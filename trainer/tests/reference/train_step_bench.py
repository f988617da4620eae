"""PyTorch-eager reference for the training-step benchmark (trainer/examples/train_bench.rs).

Usage: train_step_bench.py <dir> <batch> <steps> <threads>
<dir> holds model.json and weights.safetensors written by fas-train (the training graph: its
first output is the feature vector). Runs the same graph op by op in eager PyTorch
(ir_reference.node_forward) with a BCE head and torch.optim.AdamW, on random inputs and
labels, and prints one JSON line: {"images_per_s": ..., "step_ms": ...}.
"""

import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
import ir_reference as ref  # noqa: E402


def main():
    d = Path(sys.argv[1])
    batch, steps, threads = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    graph = json.loads((d / "model.json").read_text())
    W = ref.read_safetensors(d / "weights.safetensors")
    for k, v in W.items():
        if not (k.endswith("running_mean") or k.endswith("running_var")):
            v.requires_grad_(True)
    shape = graph["inputs"][0]["shape"]
    feat = graph["outputs"][0]
    probe = ref.run(graph, W, [torch.zeros([2] + shape[1:])], True)[feat]
    head_w = (torch.randn(1, probe.shape[1]) * 0.01).requires_grad_(True)
    head_b = torch.zeros(1, requires_grad=True)
    params = [v for v in W.values() if v.requires_grad] + [head_w, head_b]
    opt = torch.optim.AdamW(params, lr=1e-3)
    x = torch.randn([batch] + shape[1:])
    y = (torch.arange(batch) % 2).float()

    def step():
        opt.zero_grad()
        f = ref.run(graph, W, [x], True)[feat]
        loss = F.binary_cross_entropy_with_logits(F.linear(f, head_w, head_b).view(-1), y)
        loss.backward()
        opt.step()

    step()  # warm-up
    t = time.perf_counter()
    for _ in range(steps):
        step()
    dt = (time.perf_counter() - t) / steps
    print(json.dumps({"images_per_s": batch / dt, "step_ms": dt * 1e3}))


if __name__ == "__main__":
    main()
