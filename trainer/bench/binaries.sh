# Sourced by the benchmark scripts beside it: sets and exports FAS_TRAIN and FAS_SYNTH, the
# binaries they run. Each one the caller left unset is the workspace's release build, built
# here first (only what is missing is built). Works from any directory: the workspace is
# found from this file's place, the build goes to CARGO_TARGET_DIR or the workspace's target/.
fas_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
fas_release=${CARGO_TARGET_DIR:-$fas_root/target}/release
fas_build=()
if [ -z "${FAS_TRAIN:-}" ]; then
  fas_build+=(-p fas-train --bin fas-train)
  FAS_TRAIN=$fas_release/fas-train
fi
if [ -z "${FAS_SYNTH:-}" ]; then
  fas_build+=(-p fas-core --bin fas-synth)
  FAS_SYNTH=$fas_release/fas-synth
fi
if [ ${#fas_build[@]} -gt 0 ]; then
  cargo build -q --release --manifest-path "$fas_root/Cargo.toml" "${fas_build[@]}"
fi
export FAS_TRAIN FAS_SYNTH
unset fas_root fas_release fas_build
