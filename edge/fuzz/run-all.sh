#!/usr/bin/env bash
# Every fuzz target for SECONDS each (default 60) on a copy of its committed corpus;
# prints executions and whether it crashed. Needs nightly + cargo-fuzz (see README.md).
set -uo pipefail
cd "$(dirname "$0")"
secs=${SECONDS_PER_TARGET:-60}
cargo +nightly fuzz build -O >/dev/null || exit 1
status=0
for t in $(cargo +nightly fuzz list); do
    work=$(mktemp -d)
    cp -r "corpus/$t/." "$work/" 2>/dev/null
    log=$(cargo +nightly fuzz run -O "$t" "$work" -- -max_total_time="$secs" 2>&1)
    rc=$?
    execs=$(printf '%s\n' "$log" | grep -o 'stat::number_of_executed_units: [0-9]*' | grep -o '[0-9]*$')
    [ -z "$execs" ] && execs=$(printf '%s\n' "$log" | grep -oE '^#[0-9]+' | tail -1 | tr -d '#')
    if [ $rc -eq 0 ]; then echo "$t: ${execs:-?} executions in ${secs} s, no crash"
    else echo "$t: CRASH after ${execs:-?} executions"; printf '%s\n' "$log" | tail -30; status=1; fi
    rm -rf "$work"
done
exit $status
