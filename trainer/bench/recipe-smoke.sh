#!/usr/bin/env bash
# Every recipe's smoke training on one device, with its training throughput: the check to
# run on a CUDA host (DEVICE=cuda), and the same on the CPU for a reference.
#
#   DEVICE=cuda bash trainer/bench/recipe-smoke.sh [OUT] [STEPS]
#
# Trains baseline, dlif, anrl (second-order meta step), d2am and dualstage for STEPS steps
# (default 60) on the first SynthFAS task of their protocol (leave-one-domain-out;
# dual-stage: leave-one-attack-type-out) and prints one row each: device, steps, training
# images/s, wall seconds and the held-out AUC (meaningless at smoke length; it shows the
# run scored end to end). The environment picks the rest:
#   DEVICE=cpu|cuda|cuda:N   where to train (default cpu; cuda fails loudly without a GPU)
#   SIZE=64 WIDTH=0.25 BATCH=24   input size, backbone width, batch (the ablation tables'
#                        settings; on a GPU try SIZE=256 WIDTH=1 BATCH=32, the papers' size)
#   THREADS=1            fas-train --threads on the CPU (0 = libtorch's default)
#   FAS_TRAIN, FAS_SYNTH the binaries (default: the workspace's release builds, built here)
# Needs the environment `cargo xtask setup` prepares (LIBTORCH_USE_PYTORCH=1 and the venv).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-${CARGO_TARGET_DIR:-target}/recipe-smoke}
STEPS=${2:-60}
DEVICE=${DEVICE:-cpu}
SIZE=${SIZE:-64}
source trainer/bench/binaries.sh
DATA="$OUT/data-$SIZE"
if [ ! -f "$DATA/manifest.jsonl" ]; then
  "$FAS_SYNTH" write --out "$DATA" --subjects 8 --frames 4 --size "$SIZE" --seed 7 >/dev/null
fi
COMMON=(--size "$SIZE" --width "${WIDTH:-0.25}" --batch-size "${BATCH:-24}" --steps "$STEPS"
        --val-every "$STEPS" --checkpoint-every "$STEPS" --device "$DEVICE" --quiet)
if [ "${THREADS:-1}" != 0 ]; then COMMON+=(--threads "${THREADS:-1}"); fi

first_task() {
  "$FAS_TRAIN" tasks --manifest "$DATA/manifest.jsonl" --protocol "$1" | awk 'NR == 1 {print $1}'
}

echo "| recipe | device | protocol / task | steps | train img/s | wall s | test AUC |"
echo "|---|---|---|---|---|---|---|"
for recipe in baseline dlif anrl d2am dualstage; do
  protocol=synth-domain
  if [ "$recipe" = dualstage ]; then protocol=synth-attack; fi
  task=$(first_task "$protocol")
  run="$OUT/$recipe-${DEVICE/:/}-$SIZE"
  rm -rf "$run"
  start=$(date +%s)
  if ! "$FAS_TRAIN" train --manifest "$DATA/manifest.jsonl" --protocol "$protocol" \
      --task "$task" --recipe "$recipe" "${COMMON[@]}" --out "$run" > "$run.log" 2>&1; then
    echo "recipe-smoke.sh: $recipe failed on $DEVICE; its log is $run.log:" >&2
    tail -5 "$run.log" >&2
    exit 1
  fi
  wall=$(( $(date +%s) - start ))
  python3 - "$run/metrics.json" "$recipe" "$DEVICE" "$protocol / $task" "$wall" <<'PY'
import json, sys
path, recipe, device, task, wall = sys.argv[1:]
m = json.load(open(path))
t = m["training"]
print(f"| {recipe} | {device} | {task} | {t['steps']} | {t['images_per_s']:.1f} | "
      f"{float(wall):.0f} | {m['test']['frame']['deployable']['auc']:.3f} |")
PY
done
