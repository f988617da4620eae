"""Known answers for the DLIF loss terms in trainer/src/recipe/dlif.rs (tests at its bottom).

Written from the paper's equations (arXiv 2407.08243), independently of the Rust code:
    /work/main/.venv/bin/python trainer/tests/reference/dlif_reference.py
The inputs are closed-form so the Rust tests rebuild them exactly (see `grid` there).
"""
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)


def grid(rows, cols, a, b, c, fn=torch.sin):
    i = torch.arange(rows).unsqueeze(1).double()
    j = torch.arange(cols).unsqueeze(0).double()
    return fn(a * i + b * j + c)


# Eq. 1-2: mean over the BxB matrix of squared cosines between f_u rows and f_v rows.
fu = grid(4, 5, 0.7, 0.3, 0.1)
fv = grid(4, 5, 0.5, -0.2, 0.0, torch.cos)
cos = F.normalize(fu, dim=1) @ F.normalize(fv, dim=1).T
print("ortho", (cos ** 2).mean().item())

# Eq. 3-4: || softmax(logits) - 1/K ||^2, mean over samples.
logits = 2.0 * grid(3, 4, 1.3, 0.7, 0.0)
p = logits.softmax(1)
print("ambiguity_k4", ((p - 0.25) ** 2).sum(1).mean().item())
logits2 = 30.0 * grid(3, 2, 0.4, 0.9, 0.2, torch.cos) / 2.0
p2 = logits2.softmax(1)
print("ambiguity_k2", ((p2 - 0.5) ** 2).sum(1).mean().item())

# Eq. 10: SupCon (Khosla et al. 2020, L_out), tau = 0.07; anchors without positives skipped.
z = F.normalize(grid(6, 4, 0.9, 0.4, 0.2), dim=1)
y = torch.tensor([0, 0, 1, 2, 1, 3])
tau = 0.07
sim = z @ z.T / tau
total, anchors = 0.0, 0
for i in range(6):
    others = [a for a in range(6) if a != i]
    pos = [p for p in others if y[p] == y[i]]
    if not pos:
        continue
    denom = torch.logsumexp(sim[i, others], 0)
    total += -sum((sim[i, p] - denom) for p in pos) / len(pos)
    anchors += 1
print("supcon", (total / anchors).item())

# Eq. 5-7: AdaIN style swap x_i -> sigma_j (x_i - mu_i) / sigma_i + mu_j, biased var + eps.
x = torch.sin(0.37 * torch.arange(4 * 2 * 2 * 3).double() + 0.5).reshape(4, 2, 2, 3)
x = x * torch.tensor([1.0, 2.0, 0.5, 3.0]).reshape(4, 1, 1, 1) + torch.arange(4).double().reshape(4, 1, 1, 1)
partner = torch.tensor([1, 0, 3, 2])
eps = 1e-6
mu = x.mean((2, 3), keepdim=True)
sig = (x.var((2, 3), keepdim=True, unbiased=False) + eps).sqrt()
out = (x - mu) / sig * sig[partner] + mu[partner]
w = torch.arange(out.numel()).double().reshape(out.shape)
print("style_cross_sum", out.sum().item())
print("style_cross_weighted", (out * w).sum().item())
print("style_cross_0_1_1_2", out[0, 1, 1, 2].item())
