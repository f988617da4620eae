#!/usr/bin/env python3
"""Grouped bar chart of an ablation table (`ablate.py`'s results.json) as a standalone SVG:
one panel for the test AUC and one for the deployable HTER (threshold at the
source-validation EER), a group of bars per task plus the task mean, one bar per row,
error bars = ± sd over seeds (none for a single seed).

    python3 trainer/bench/ablation_plot.py OUT/results.json OUT/results.svg [title]

Only the standard library: the SVG is written by hand, so nothing needs installing.
"""

import json
import math
import os
import statistics
import sys
from xml.sax.saxutils import escape

COLOURS = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860",
           "#da8bc3", "#8c8c8c", "#ccb974", "#64b5cd"]


def mean_sd(xs):
    """Mean and sample sd (0 for one value, NaN for none); shared with ablate.py."""
    if not xs:
        return float("nan"), float("nan")
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def seed_means(per_task, tasks, key):
    """The mean of `key` over `tasks` for each seed (in seed order): a row's task mean per
    seed, whose mean ± sd the tables and charts report; shared with ablate.py."""
    seeds = sorted({r["seed"] for t in tasks for r in per_task[t]})
    return [statistics.fmean(r[key] for t in tasks for r in per_task[t] if r["seed"] == s)
            for s in seeds]


def panel_values(d, key):
    """{row: [(mean, sd) per task..., (mean, sd) of the per-seed task means]}."""
    out = {}
    for row in d["rows"]:
        per_task = d["results"][row]
        vals = [mean_sd([r[key] for r in per_task[t]]) for t in d["tasks"]]
        vals.append(mean_sd(seed_means(per_task, d["tasks"], key)))
        out[row] = vals
    return out


def svg(d, title):
    rows = list(d["rows"])
    # Task names without their common prefix ("unseen-synth-a" … → "a" …).
    tasks = list(d["tasks"])
    prefix = os.path.commonprefix(tasks) if len(tasks) > 1 else ""
    prefix = prefix[: prefix.rfind("-") + 1]
    groups = [t[len(prefix):] for t in tasks] + ["mean"]
    panels = [("test AUC (higher is better; axis from near chance)", "auc", 0.5, 1.0),
              ("HTER, source-val threshold (lower is better)", "hter_deployable", 0.0, 0.6)]
    bar_w = 12
    group_w = bar_w * len(rows) + 18
    left, top, plot_h, gap = 60, 70, 220, 70
    width = max(left + group_w * len(groups) + 30, int(7.5 * len(title)) + 40)
    # A long title makes the chart wider than its bars need: spread the groups over it.
    group_w = max(group_w, (width - left - 30) / len(groups))
    bar_w = min(32, (group_w - 18) / len(rows))
    # Legend columns: as many as the longest name (about 6.5 px a character) leaves room for.
    cols = max(1, min(3, int((width - left) // (30 + 6.5 * max(len(r) for r in rows)))))
    legend_h = 18 * ((len(rows) + cols - 1) // cols)
    height = top + len(panels) * (plot_h + gap) + legend_h + 10
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="DejaVu Sans, sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14">{escape(title)}</text>',
           f'<text x="{width / 2}" y="36" text-anchor="middle" fill="#555">seeds '
           f'{", ".join(map(str, d["seeds"]))}; error bars ± sd over seeds'
           f'{"; tasks " + escape(prefix) + "…" if prefix else ""}</text>']
    for p, (name, key, lo, hi) in enumerate(panels):
        y0 = top + p * (plot_h + gap)
        vals = panel_values(d, key)
        finite = [(m, s) for v in vals.values() for m, s in v if m == m]
        hi = min(1.0, max(hi, max((math.ceil((m + s) * 10) / 10 for m, s in finite), default=hi)))
        lo = min(lo, min((int((m - s) * 10) / 10 for m, s in finite), default=lo))
        y = lambda v: y0 + plot_h - (v - lo) / (hi - lo) * plot_h
        out.append(f'<text x="{left}" y="{y0 - 6}">{escape(name)}</text>')
        for i in range(6):
            v = lo + (hi - lo) * i / 5
            out.append(f'<line x1="{left}" x2="{width - 20}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                       f'stroke="#ddd"/>')
            out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.2f}</text>')
        for g, group in enumerate(groups):
            gx = left + 10 + g * group_w + (group_w - 18 - bar_w * len(rows)) / 2
            bold = ' font-weight="bold"' if group == "mean" else ""
            out.append(f'<text x="{gx + bar_w * len(rows) / 2:.1f}" y="{y0 + plot_h + 16}" '
                       f'text-anchor="middle"{bold}>{escape(group)}</text>')
            for r, row in enumerate(rows):
                m, s = vals[row][g]
                if m != m:
                    continue
                x = round(gx + r * bar_w, 1)
                top_y = y(min(max(m, lo), hi))
                out.append(f'<rect x="{x}" y="{top_y:.1f}" width="{bar_w - 2:.1f}" '
                           f'height="{y(lo) - top_y:.1f}" fill="{COLOURS[r % len(COLOURS)]}">'
                           f'<title>{escape(row)} / {escape(group)}: {m:.3f} ± {s:.3f}</title></rect>')
                if s > 0:
                    cx = round(x + (bar_w - 2) / 2, 1)
                    out.append(f'<line x1="{cx}" x2="{cx}" y1="{y(max(m - s, lo)):.1f}" y2="{y(min(m + s, hi)):.1f}" '
                               f'stroke="black"/>')
        out.append(f'<line x1="{left}" x2="{width - 20}" y1="{y(lo):.1f}" y2="{y(lo):.1f}" stroke="black"/>')
    ly = top + len(panels) * (plot_h + gap) - 20
    col_w = (width - left) / cols
    for r, row in enumerate(rows):
        x = left + (r % cols) * col_w
        yy = ly + (r // cols) * 18
        out.append(f'<rect x="{x}" y="{yy - 10}" width="12" height="12" fill="{COLOURS[r % len(COLOURS)]}"/>')
        out.append(f'<text x="{x + 18}" y="{yy}">{escape(row)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    src, dst = sys.argv[1], sys.argv[2]
    try:
        d = json.load(open(src))
        for k in ("rows", "tasks", "seeds", "results"):
            if k not in d:
                sys.exit(f"{src}: no '{k}' field; give the results.json that ablate.py writes")
    except (OSError, json.JSONDecodeError) as e:
        sys.exit(f"{src}: {e}")
    write_svg(d, dst, sys.argv[3] if len(sys.argv) == 4 else None)
    print(f"wrote {dst}")


def write_svg(d, dst, title=None):
    """Writes the chart of results `d` (ablate.py's results.json, loaded) to `dst`,
    atomically."""
    write_atomic(dst, svg(d, title or f"Ablation, protocol {d.get('protocol', '?')}"))


def write_atomic(path, text):
    """Writes `text` to `path` through a temporary file and a rename; shared with ablate.py."""
    with open(path + ".tmp", "w") as fh:
        fh.write(text)
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main()
