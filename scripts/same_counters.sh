#!/usr/bin/env bash
# same_counters.sh OLD NEW — replay a fixed set of traces and configurations with two
# vmsim binaries (say main's release build and a branch's) and compare their --stats json
# output, every member but "build". A shortcut may change how fast, never what is
# counted (docs/PERFORMANCE.md): run this before quoting a speed-up.
#
# The set: ls.vmt and sh.vmt (real programs), a 200,000-reference random trace over
# 1 GiB (native and din), swap pressure under each page policy, each TLB policy, THP,
# fully associative and odd-geometry L1 dTLBs, PWC variants, a curve, the plain path
# (--slow), a VM replay (nested and shadow) and AArch64/RISC-V. Generated traces live in
# a temporary directory removed at the end. Exit status: 0 when every output is
# identical, 1 when one differs (each difference is named), 2 on bad usage.
set -uo pipefail
if [ $# -ne 2 ] || [ ! -x "$1" ] || [ ! -x "$2" ]; then
    echo "usage: scripts/same_counters.sh OLD_VMSIM NEW_VMSIM (two executables)" >&2
    exit 2
fi
old=$(realpath "$1") new=$(realpath "$2")
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 "$src/bench/replay_rand_trace.py" 200000 >"$tmp/rand.din"
"$old" convert "$tmp/rand.din" "$tmp/rand.vmt" >/dev/null
ls=$src/examples/traces/ls.vmt sh=$src/examples/traces/sh.vmt

runs=()
add() { runs+=("$*"); }
for t in "$ls" "$sh" "$tmp/rand.vmt" "$tmp/rand.din"; do add "$t"; done
for p in fifo lru clock random opt twolist; do
    add "$sh --set ram=2M --set swap=16M --set policy=$p"
done
for tp in lru plru fifo random; do
    add "$ls --set tlb.policy=$tp"
    add "$tmp/rand.vmt --set tlb.policy=$tp"
done
add "$sh --set thp=always"
add "$sh --set thp=always --set ram=4M --set swap=16M"
add "$ls --set tlb.l1d=4K:1x64:lru --set tlb.l2=none"
add "$ls --set tlb.l1d=4K:1x64:plru"
add "$ls --set tlb.l1d=4K:1x64:fifo"
add "$tmp/rand.vmt --set tlb.l1d=4K:1x64:lru"
add "$ls --set tlb.l1d=4K:7x9:lru"
add "$tmp/rand.vmt --set tlb.l1d=4K:5x13:plru"
add "$tmp/rand.vmt --set pwc.pde=32x4:fifo --set pwc.pdpte=4x4:random"
add "$tmp/rand.vmt --set pwc.pde=none --set pwc.pdpte=none --set pwc.pml4e=none"
add "$tmp/rand.vmt --set pwc.pde=32x32:lru"
add "$ls --curve tlb.l1d"
add "$tmp/rand.vmt --curve pwc.pde"
add "$ls --slow"
add "$tmp/rand.vmt --slow"
add "$sh --slow --set ram=2M --set swap=16M"
add "$ls --vm"
add "$ls --vm --shadow"
add "$ls --vm --arch aarch64"
add "$ls --set arch=aarch64"
add "$ls --set arch=riscv64"
add "$tmp/rand.vmt --set arch=riscv64 --set ram=64M --set swap=256M"

bad=0 n=0
for r in "${runs[@]}"; do
    n=$((n + 1))
    # shellcheck disable=SC2086 # the run's words are split on purpose
    "$old" replay $r --stats json 2>"$tmp/old.err" | sed -E 's/"build":"[^"]*",//' >"$tmp/old.json"
    # shellcheck disable=SC2086
    "$new" replay $r --stats json 2>"$tmp/new.err" | sed -E 's/"build":"[^"]*",//' >"$tmp/new.json"
    if ! cmp -s "$tmp/old.json" "$tmp/new.json" || ! cmp -s "$tmp/old.err" "$tmp/new.err"; then
        echo "DIFFERENT: replay ${r//$tmp\//} --stats json"
        diff <(tr ',' '\n' <"$tmp/old.json") <(tr ',' '\n' <"$tmp/new.json") | head -8
        bad=1
    elif [ ! -s "$tmp/old.json" ]; then
        echo "NO OUTPUT: replay ${r//$tmp\//} ($(head -c 200 "$tmp/old.err"))"
        bad=1
    fi
done
[ $bad = 0 ] && echo "same_counters: $n configurations, every --stats json identical but build"
exit $bad
