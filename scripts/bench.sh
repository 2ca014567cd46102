#!/usr/bin/env bash
# Runs every benchmark (release build) and prints its table. Figures and the command
# line that produced them are recorded in docs/PERFORMANCE.md.
set -euo pipefail
cd "$(dirname "$0")/.."
for b in build/release/bench_*; do
    [ -x "$b" ] || continue
    echo "== $(basename "$b") $*"
    "$b" "$@"
done
