#!/usr/bin/env python3
"""Ablation tables on SynthFAS: rows × tasks × seeds of `fas-train train`, one run dir each,
then a Markdown table (mean ± sd over seeds, per task and averaged over tasks) with both
threshold conventions: HTER at the source-validation EER threshold (deployable) and at the
test EER threshold (oracle, what papers usually report), and the test AUC.

    python3 trainer/bench/ablate.py OUT --protocol synth-domain --seeds 0,1,2 \\
        --row 'baseline=--recipe baseline --backbone depthnet --depth-weight 1' \\
        --row 'anrl=--recipe anrl' --row 'anrl bn=--recipe anrl --ablate bn' \\
        -- --size 64 --width 0.25 --steps 300 --batch-size 24

Everything after `--` goes to every run; `--jobs N` trains N runs at once (worth it only
with `--threads 1` among those arguments). Runs whose `metrics.json` exists are kept, so an
interrupted table resumes where it stopped; `OUT/results.md`, `OUT/results.json` and
`OUT/results.svg` (bar chart, `ablation_plot.py`) are rewritten at the end. A results.json
is also enough to resume from when the run dirs are gone (another machine): `--prior FILE`
(default `OUT/results.json`) reuses its record of a row / task / seed when the protocol,
the common arguments, the data settings and that row's arguments are all the same as now;
the repository keeps each table's results.json in `docs/ablations/`. `--train REGEX`
trains only the rows whose names match; the others are taken as they stand (run dirs with
a metrics.json, else the prior's records) for every seed they are complete for, and left
out of the table when they have none, so a record gains rows without losing the ones it
holds. Binaries:
$FAS_TRAIN / $FAS_SYNTH, else the workspace's release builds
(`cargo build --release -p fas-train -p fas-core --bins`). Needs the environment `cargo
xtask setup` prepares (LIBTORCH_USE_PYTORCH=1 and the venv).
"""

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

from ablation_plot import mean_sd, seed_means, write_atomic, write_svg


def binary(var, name):
    if os.environ.get(var):
        return os.environ[var]
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    return os.path.join(target, "release", name)


def fmt(xs):
    m, s = mean_sd(xs)
    return f"{m:.3f} ± {s:.3f}" if len(xs) > 1 else f"{m:.3f}"


def main():
    argv = sys.argv[1:]
    common = []
    if "--" in argv:
        i = argv.index("--")
        argv, common = argv[:i], argv[i + 1 :]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out")
    p.add_argument("--protocol", default="synth-domain")
    p.add_argument("--tasks", help="comma-separated task names (default: all of the protocol)")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--row", action="append", required=True, help="NAME=train args")
    p.add_argument("--subjects", type=int, default=16)
    p.add_argument("--frames", type=int, default=4)
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--data-seed", type=int, default=7)
    p.add_argument("--prior", help="an earlier results.json whose matching records are reused "
                   "(default: OUT/results.json)")
    p.add_argument("--title", help="title of the bar chart")
    p.add_argument("--train", default="",
                   help="regex: train only the rows whose names match (default: all); the "
                   "others keep what their run dirs or the prior hold, and are left out "
                   "when that is nothing")
    p.add_argument("--jobs", type=int, default=1,
                   help="trainings at once (default 1). With `--threads 1` among the common "
                   "arguments, 2 on 2 cores finish a table about 1.5x sooner; with libtorch's "
                   "default thread count, runs at once spin on each other's cores")
    a = p.parse_args(argv)
    if a.jobs < 1:
        sys.exit(f"--jobs {a.jobs}: give at least 1")
    try:
        train_only = re.compile(a.train)
    except re.error as e:
        sys.exit(f"--train {a.train!r}: not a regular expression ({e})")
    data = {"subjects": a.subjects, "frames": a.frames, "image_size": a.image_size,
            "data_seed": a.data_seed}

    train_bin = binary("FAS_TRAIN", "fas-train")
    synth_bin = binary("FAS_SYNTH", "fas-synth")
    os.makedirs(a.out, exist_ok=True)
    manifest = os.path.join(a.out, "data", "manifest.jsonl")
    if not os.path.exists(manifest):
        subprocess.run(
            [synth_bin, "write", "--out", os.path.join(a.out, "data"),
             "--subjects", str(a.subjects), "--frames", str(a.frames),
             "--size", str(a.image_size), "--seed", str(a.data_seed)],
            check=True, stdout=subprocess.DEVNULL)
    if a.tasks:
        tasks = a.tasks.split(",")
    else:
        out = subprocess.run([train_bin, "tasks", "--manifest", manifest, "--protocol", a.protocol],
                             check=True, capture_output=True, text=True).stdout
        tasks = [l.split()[0] for l in out.splitlines() if l.strip()]
    rows = []
    for r in a.row:
        name, _, args = r.partition("=")
        if not args:
            sys.exit(f"--row {r!r}: write NAME=train arguments")
        rows.append((name.strip(), shlex.split(args)))
    seeds = [int(s) for s in a.seeds.split(",")]
    prior = load_prior(a.prior or os.path.join(a.out, "results.json"), a.protocol, common, data)

    if a.jobs > 1 and "--threads" not in common:
        print(f"ablate.py: --jobs {a.jobs} without --threads among the common arguments: "
              "each run takes libtorch's default thread count and they slow each other down; "
              "pass -- ... --threads 1", file=sys.stderr)

    # Every run of the table in order: a run dir with its metrics.json, the prior's record,
    # or a run dir to train. A row not to train keeps only the seeds whose every task has
    # one of the first two.
    plan, todo, shown = [], [], []
    for name, args in rows:
        trained = train_only.search(name) is not None
        slug = name.replace(" ", "_").replace("/", "-")
        row_plan = []
        for seed in seeds:
            seed_plan = []
            for task in tasks:
                run = os.path.join(a.out, slug, task, f"seed{seed}")
                done = os.path.exists(os.path.join(run, "metrics.json"))
                kept = None if done else prior_record(prior, name, args, task, seed)
                if not (done or kept is not None or trained):
                    break
                seed_plan.append((task, seed, run, done, kept))
            else:
                row_plan += seed_plan
        if not row_plan:
            print(f"{name:>24}: not trained (--train {a.train!r}) and nothing recorded for any "
                  "seed; left out of the table", flush=True)
            continue
        shown.append((name, args))
        for task, seed, run, done, kept in row_plan:
            if kept is not None:
                print(f"{name:>24} {task:>16} seed {seed}: kept from {prior['path']}",
                      flush=True)
            elif not done:
                todo.append((name, args, task, seed, run))
            plan.append((name, task, seed, run, kept))
    if not shown:
        sys.exit("ablate.py: no row to train or report; widen --train")
    rows = shown

    def train(name, args, task, seed, run):
        if os.path.exists(run):
            subprocess.run(["rm", "-rf", run], check=True)
        os.makedirs(os.path.dirname(run), exist_ok=True)
        cmd = [train_bin, "train", "--manifest", manifest, "--protocol", a.protocol,
               "--task", task, *args, *common, "--seed", str(seed), "--quiet", "--out", run]
        t0 = time.time()
        with open(run + ".log", "w") as log:
            r = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
        if r.returncode != 0:
            return (f"{name} / {task} / seed {seed} failed; see {run}.log\n"
                    + " ".join(shlex.quote(c) for c in cmd))
        print(f"{name:>24} {task:>16} seed {seed}: {time.time() - t0:.0f} s", flush=True)
        return None

    # A failed run stops the table: runs not yet started are cancelled, those in flight
    # finish (their run dirs are kept for the resume), then the first failure is reported.
    failure = None
    with ThreadPoolExecutor(max_workers=a.jobs) as pool:
        futures = [pool.submit(train, *job) for job in todo]
        for f in as_completed(futures):
            err = None if f.cancelled() else f.result()
            if err is not None and failure is None:
                failure = err
                for g in futures:
                    g.cancel()
    if failure is not None:
        sys.exit(failure)

    results = {}
    for name, task, seed, run, kept in plan:
        if kept is not None:
            results.setdefault(name, {}).setdefault(task, []).append(kept)
            continue
        m = json.load(open(os.path.join(run, "metrics.json")))
        f = m["test"]["frame"]
        results.setdefault(name, {}).setdefault(task, []).append({
            "seed": seed,
            "auc": f["deployable"]["auc"],
            "hter_deployable": f["deployable"]["hter"],
            "hter_oracle": f["oracle"]["hter"],
            "acer_deployable": f["deployable"]["acer"],
            "apcer_per_attack": f["deployable"].get("apcer_per_attack", {}),
            "auc_per_attack": f["deployable"].get("auc_per_attack", {}),
            "val_auc": m["training"]["best_val_auc"],
            "seconds": m["training"]["seconds"],
        })

    lines = [
        f"Protocol `{a.protocol}`, seeds {a.seeds}; common arguments: `{' '.join(common)}`.",
        "AUC and HTER on the held-out target, frame level; mean ± sd over seeds.",
        "HTER dep. = threshold at the source-validation EER (deployable); "
        "HTER orc. = at the target's own EER (oracle).",
        "",
        "| row | task | test AUC | HTER dep. | HTER orc. | source-val AUC | s/run |",
        "|---|---|---|---|---|---|---|",
    ]
    # Rows kept from earlier runs may hold fewer seeds than asked for: say so under the header.
    short = []
    for name, _ in rows:
        got = sorted({r["seed"] for rs in results[name].values() for r in rs})
        if got != sorted(seeds):
            short.append(f"Row {name}: seeds {','.join(map(str, got))} only (not trained now).")
    lines[3:3] = short
    for name, _ in rows:
        per_task = results[name]
        for task in tasks:
            rs = per_task[task]
            lines.append(
                f"| {name} | {task} | {fmt([r['auc'] for r in rs])} | "
                f"{fmt([r['hter_deployable'] for r in rs])} | {fmt([r['hter_oracle'] for r in rs])} | "
                f"{fmt([r['val_auc'] for r in rs])} | {statistics.fmean(r['seconds'] for r in rs):.0f} |")
        # The task mean per seed, then mean ± sd of those over seeds.
        by_seed = lambda key: seed_means(per_task, tasks, key)
        lines.append(
            f"| **{name}** | **mean** | **{fmt(by_seed('auc'))}** | **{fmt(by_seed('hter_deployable'))}** | "
            f"**{fmt(by_seed('hter_oracle'))}** | {fmt(by_seed('val_auc'))} | |")
    lines += per_attack_table(results, rows, tasks)
    table = "\n".join(lines) + "\n"
    write_atomic(os.path.join(a.out, "results.md"), table)
    summary = {"protocol": a.protocol, "common": common, "data": data, "rows": dict(rows),
               "tasks": tasks, "seeds": seeds, "results": results}
    write_atomic(os.path.join(a.out, "results.json"), json.dumps(summary, indent=1) + "\n")
    print(table)
    write_svg(summary, os.path.join(a.out, "results.svg"), a.title)


def per_attack_table(results, rows, tasks):
    """Markdown lines of the test AUC of live faces against each attack type alone (mean ±
    sd over seeds), for the row/task cells whose runs all recorded it (fas-train writes
    `auc_per_attack` since 2026-12-02); no lines when none did."""
    types = sorted({t for name, _ in rows for rs in results[name].values() for r in rs
                    for t in r.get("auc_per_attack", {})})
    if not types:
        return []
    out = ["", "Test AUC of live faces against each attack type alone (frame level, "
           "mean ± sd over seeds; below 0.5: that attack scores as more live than live faces):",
           "", "| row | task | " + " | ".join(types) + " |", "|---|---|" + "---|" * len(types)]
    for name, _ in rows:
        for task in tasks:
            rs = results[name][task]
            cells = []
            for t in types:
                xs = [r.get("auc_per_attack", {}).get(t) for r in rs]
                cells.append("–" if None in xs else fmt(xs))
            if any(c != "–" for c in cells):
                out.append(f"| {name} | {task} | " + " | ".join(cells) + " |")
    return out


def load_prior(path, protocol, common, data):
    """The earlier results.json at `path` if it was made with the same protocol, common
    arguments and data settings (else None, with a note why)."""
    if not os.path.exists(path):
        return None
    try:
        d = json.load(open(path))
        d["rows"], d["results"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        sys.exit(f"{path}: not a results.json that ablate.py can resume from ({e!r}); "
                 "move it away or fix it")
    for key, now in (("protocol", protocol), ("common", common), ("data", data)):
        if d.get(key) != now:
            print(f"{path}: its {key} ({d.get(key)!r}) differs from this table's ({now!r}); "
                  "none of its records are reused", file=sys.stderr)
            return None
    d["path"] = path
    return d


def prior_record(prior, name, args, task, seed):
    """The prior record of row `name` / `task` / `seed`, if that row had the same arguments."""
    if prior is None or prior["rows"].get(name) != args:
        return None
    for r in prior["results"].get(name, {}).get(task, []):
        if r.get("seed") == seed:
            return r
    return None


if __name__ == "__main__":
    main()
