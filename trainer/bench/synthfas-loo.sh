#!/usr/bin/env bash
# SynthFAS leave-one-domain-out baseline table: generates a SynthFAS set, trains the
# baseline recipe on each synth-domain task and prints frame-level AUC / HTER with both
# thresholds (source-val EER = deployable; test EER = oracle, what papers often report).
#
#   bash trainer/bench/synthfas-loo.sh [out-dir] [steps] [backbone] [width]
#
# Needs the environment `cargo xtask setup` prepares (LIBTORCH_USE_PYTORCH=1 and the venv).
set -euo pipefail
OUT=${1:-target/synthfas-loo}
STEPS=${2:-400}
BACKBONE=${3:-resnet18}
WIDTH=${4:-0.5}
# FAS_TRAIN / FAS_SYNTH: the binaries; by default the workspace's release builds.
source "$(dirname "${BASH_SOURCE[0]}")/binaries.sh"
mkdir -p "$OUT"
if [ ! -f "$OUT/data/manifest.jsonl" ]; then
  "$FAS_SYNTH" write --out "$OUT/data" --subjects 16 --frames 4 --size 128 --seed 7
fi
TASKS=$("$FAS_TRAIN" tasks --manifest "$OUT/data/manifest.jsonl" --protocol synth-domain | awk '{print $1}')
for t in $TASKS; do
  if [ ! -f "$OUT/$t/metrics.json" ]; then
    "$FAS_TRAIN" train --manifest "$OUT/data/manifest.jsonl" --protocol synth-domain --task "$t" \
      --backbone "$BACKBONE" --width "$WIDTH" --size 128 --batch-size 32 --steps "$STEPS" \
      --lr 3e-3 --val-every 100 --checkpoint-every 100 --device auto --quiet --out "$OUT/$t" \
      > "$OUT/$t.log" 2>&1
  fi
done
echo "| task | best step | source-val AUC | test AUC | HTER @ source-val EER thr | HTER @ test EER thr (oracle) | video AUC |"
echo "|---|---|---|---|---|---|---|"
for t in $TASKS; do
  python3 - "$OUT/$t/metrics.json" "$t" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
f, v, tr = m["test"]["frame"], m["test"]["video"], m["training"]
print(f"| {sys.argv[2]} | {tr['best_step']} | {tr['best_val_auc']:.3f} | {f['deployable']['auc']:.3f} | "
      f"{f['deployable']['hter']:.3f} | {f['oracle']['hter']:.3f} | {v['deployable']['auc']:.3f} |")
PY
done
