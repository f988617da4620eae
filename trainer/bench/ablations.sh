#!/usr/bin/env bash
# The README's ablation tables, one command each: the exact rows and arguments every table
# was run with, so a table can be rerun, extended with seeds, or rerun at full size on a GPU.
#
#   bash trainer/bench/ablations.sh TABLE [OUT-ROOT]
#
# TABLE: dlif | anrl | d2am | dualstage | dualstage-1000. Runs go to OUT-ROOT/TABLE
# (default target/ablations/TABLE). The environment picks what runs:
#   SEEDS=0,1,2          seeds (default 0,1,2)
#   ROWS='baseline|D²AM' train only the rows whose names match this regex (default all);
#                        the other rows keep what DOC.json (or their run dirs) hold for
#                        them, so a record gains rows or seeds without losing the others
#   TASKS=a,b            only these tasks of the protocol (default all)
#   THREADS=1            fas-train --threads (default 1: on 2 cores twice as fast as
#                        libtorch's default; 0 = libtorch's default, which the tables made
#                        before 2026-12-01 used — results differ in the last bits with it)
#   JOBS=2               trainings at once (default 1); with THREADS=1 two at once on
#                        2 cores finish a table about 1.5x sooner (measured 2026-12-02)
#   DOC=docs/ablations/TABLE  where the table's record lives (DOC.json, DOC.svg)
#   FAS_TRAIN, FAS_SYNTH the binaries (default: the workspace's release builds, built here)
# The record DOC.json is reused as ablate.py's --prior, so runs already recorded there with
# the same settings are not repeated, and on success DOC.json and DOC.svg are replaced by
# the new table (the README quotes them).
#
# Needs the environment `cargo xtask setup` prepares (LIBTORCH_USE_PYTORCH=1 and the venv).
# With THREADS=0 keep JOBS=1: two trainings at libtorch's default thread count on 2 cores
# run 4–10× slower (OpenMP threads spin on each other's cores).
set -euo pipefail
cd "$(dirname "$0")/../.."
TABLE=${1:?usage: ablations.sh dlif|anrl|d2am|dualstage|dualstage-1000 [OUT-ROOT]}
OUT=${2:-${CARGO_TARGET_DIR:-target}/ablations}/$TABLE
source trainer/bench/binaries.sh

# Every table: 64 px crops of a 16-subjects-per-domain SynthFAS set, width 0.25, batch 24.
SMALL=(--size 64 --width 0.25 --batch-size 24)
if [ "${THREADS:-1}" != 0 ]; then SMALL+=(--threads "${THREADS:-1}"); fi
DEPTHNET='--recipe baseline --backbone depthnet --input rgb-hsv --depth-weight 1'
# The leave-one-domain-out tables (dlif, anrl, d2am) share protocol, steps and title.
PROTOCOL=synth-domain
COMMON=("${SMALL[@]}" --steps 200)
LOO_TITLE="ablation, SynthFAS leave-one-domain-out (64 px, 200 steps)"
case "$TABLE" in
  dlif)
    TITLE="DLIF $LOO_TITLE"
    ROW=('baseline=--recipe baseline'
         'DLIF=--recipe dlif'
         'w/o SC=--recipe dlif --ablate no-style-cross'
         'w/o CWSA=--recipe dlif --ablate no-cwsa'
         'w/o V=--recipe dlif --ablate no-v') ;;
  anrl)
    TITLE="ANRL $LOO_TITLE"
    ROW=("baseline (DepthNet, depth, RGB+HSV)=$DEPTHNET"
         'ANRL=--recipe anrl'
         'BN only=--recipe anrl --ablate bn'
         'IN only=--recipe anrl --ablate in'
         'AFNM w/o meta=--recipe anrl --ablate no-meta'
         'w/o IDC=--recipe anrl --ablate no-idc'
         'w/o ICS=--recipe anrl --ablate no-ics') ;;
  d2am)
    TITLE="D²AM $LOO_TITLE"
    ROW=("baseline (DepthNet, depth, RGB+HSV)=$DEPTHNET"
         'D²AM=--recipe d2am'
         '2 pseudo-domains=--recipe d2am --clusters 2'
         '4 pseudo-domains=--recipe d2am --clusters 4'
         'true domains=--recipe d2am --ablate true-domains'
         'random domains=--recipe d2am --ablate random-domains'
         'w/o selection=--recipe d2am --ablate no-selection'
         'w/o L_p=--recipe d2am --ablate no-entropy'
         'w/o MMD=--recipe d2am --ablate no-mmd') ;;
  dualstage | dualstage-1000)
    PROTOCOL=synth-attack
    if [ "$TABLE" = dualstage ]; then
      COMMON=("${SMALL[@]}" --steps 150)
      TITLE="Dual-stage ablation, SynthFAS leave-one-attack-out (64 px, 150 steps)"
    else
      COMMON=("${SMALL[@]}" --steps 1000 --val-every 100 --checkpoint-every 100)
      TITLE="Dual-stage ablation, SynthFAS leave-one-attack-out (64 px, 1000 steps)"
    fi
    ROW=('dual-stage=--recipe dualstage'
         'baseline=--recipe baseline'
         'single-stage=--recipe dualstage --ablate single-stage'
         'no L_t=--recipe dualstage --ablate no-triplet'
         'no C_aux=--recipe dualstage --ablate no-aux') ;;
  *)
    echo "ablations.sh: unknown table '$TABLE' (dlif, anrl, d2am, dualstage, dualstage-1000)" >&2
    exit 2 ;;
esac

ARGS=()
MATCHED=0
for r in "${ROW[@]}"; do
  ARGS+=(--row "$r")
  if [[ "${r%%=*}" =~ ${ROWS:-.} ]]; then MATCHED=$((MATCHED + 1)); fi
done
if [ "$MATCHED" -eq 0 ]; then
  echo "ablations.sh: no row of '$TABLE' matches ROWS='$ROWS'" >&2
  exit 2
fi
DOC=${DOC:-docs/ablations/$TABLE}
PRIOR=()
if [ -f "$DOC.json" ]; then PRIOR=(--prior "$DOC.json"); fi
if [ -n "${TASKS:-}" ]; then PRIOR+=(--tasks "$TASKS"); fi
python3 trainer/bench/ablate.py "$OUT" --protocol "$PROTOCOL" --seeds "${SEEDS:-0,1,2}" \
  --jobs "${JOBS:-1}" --train "${ROWS:-.}" "${PRIOR[@]}" --title "$TITLE" "${ARGS[@]}" -- "${COMMON[@]}"
cp "$OUT/results.json" "$DOC.json.tmp" && mv "$DOC.json.tmp" "$DOC.json"
cp "$OUT/results.svg" "$DOC.svg.tmp" && mv "$DOC.svg.tmp" "$DOC.svg"
echo "ablations.sh: $DOC.json and $DOC.svg updated; the table is $OUT/results.md"
