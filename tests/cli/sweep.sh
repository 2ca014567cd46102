#!/usr/bin/env bash
# `vmsim sweep`: the task list (cartesian product, numbered from 0, last key fastest),
# --task lines equal to what a full run writes and to `vmsim replay --stats json` with
# the same settings, -j independence, shards covering the list exactly once (also from
# Slurm's SLURM_ARRAY_TASK_* variables), resuming with -o, --missing, merge, the GNU
# parallel recipe of docs/SWEEP.md on the local login (":"), and SPEC errors.
# Usage: sweep.sh PATH/TO/vmsim   (ctest passes it; VMS_SOURCE_DIR points at the tree)
set -u
vmsim=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
src=${VMS_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$src" || exit 1
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
ex=examples/traces
spec=$tmp/spec.ini
cat >"$spec" <<SPEC
# two traces x three L1 dTLBs, one core
trace = $ex/small.vmt | $ex/small.din
cores = 1
[tlb]
l1d = 4K:16x4:lru | 4K:2x2:lru | 4K:1x1:lru
SPEC

# --list: 6 tasks, numbered 0..5, the last key varying fastest; distinct keys.
"$vmsim" sweep "$spec" --list >"$tmp/list" || bad "--list exit"
[ "$(wc -l <"$tmp/list")" = 6 ] && ok || bad "--list: $(wc -l <"$tmp/list") tasks, expected 6"
[ "$(cut -f1 "$tmp/list" | tr '\n' ' ')" = "0 1 2 3 4 5 " ] && ok || bad "--list numbering"
[ "$(cut -f2 "$tmp/list" | sort -u | wc -l)" = 6 ] && ok || bad "--list keys not distinct"
[ "$(sed -n 2p "$tmp/list" | cut -f3-)" = "$(printf 'trace=%s\tcores=1\ttlb.l1d=4K:2x2:lru' $ex/small.vmt)" ] &&
    ok || bad "--list task 1: $(sed -n 2p "$tmp/list")"
[ "$(sed -n 4p "$tmp/list" | cut -f3)" = "trace=$ex/small.din" ] && ok || bad "--list task 3"
"$vmsim" sweep "$spec" --list | cmp -s - "$tmp/list" && ok || bad "--list not deterministic"

# A full run on 2 processes and on 1 give the same bytes, one line per task, in order.
"$vmsim" sweep "$spec" -j 2 >"$tmp/all2" 2>/dev/null || bad "sweep -j 2 exit"
"$vmsim" sweep "$spec" -j 1 >"$tmp/all1" 2>/dev/null || bad "sweep -j 1 exit"
cmp -s "$tmp/all1" "$tmp/all2" && ok || bad "-j 1 and -j 2 differ"
[ "$(wc -l <"$tmp/all2")" = 6 ] && ok || bad "full run: not 6 lines"

# --task I prints line I of the full run; its stats equal vmsim replay's with the same
# settings (the sweep member aside).
for i in 0 4 5; do
    "$vmsim" sweep "$spec" --task $i >"$tmp/t$i" 2>/dev/null || bad "--task $i exit"
    sed -n "$((i + 1))p" "$tmp/all2" | cmp -s - "$tmp/t$i" && ok || bad "--task $i differs from the full run"
done
"$vmsim" replay $ex/small.din --stats json --set cores=1 --set tlb.l1d=4K:2x2:lru >"$tmp/r4" 2>/dev/null
sed -E 's/^\{"sweep":\{[^}]*\{[^}]*\}\},/{/' "$tmp/t4" | cmp -s - "$tmp/r4" && ok || bad "--task 4 != vmsim replay"
python3 - "$tmp/all2" <<'PY' && ok || bad "result lines: sweep member, contract names"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
for i, d in enumerate(lines):
    s = d["sweep"]
    assert s["task"] == i and len(s["key"]) == 16 and s["settings"]["cores"] == "1"
    assert "version" in d and "config" in d and d["config"]["cores"] == "1"
    assert d["config"]["tlb.l1d"] == s["settings"]["tlb.l1d"]
# smaller L1 dTLBs miss more (same trace): the alternatives really reach the machine
m = [d["tlb"]["l1d"]["misses"] for d in lines]
assert m[0] <= m[1] <= m[2] and m[0] < m[2], m
PY

# Shards: 0/3, 1/3, 2/3 together are the full run, each task once.
for s in 0 1 2; do "$vmsim" sweep "$spec" --shard $s/3 -j 1 >"$tmp/sh$s" 2>/dev/null; done
[ "$(wc -l <"$tmp/sh0")" = 2 ] && ok || bad "shard 0/3 size"
cat "$tmp/sh0" "$tmp/sh1" "$tmp/sh2" | sort | cmp -s - <(sort "$tmp/all2") && ok || bad "shards != full run"
# Slurm: the array task's id and count pick the shard (the id offset by the array's minimum).
SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_COUNT=3 "$vmsim" sweep "$spec" --shard slurm -j 1 2>/dev/null |
    cmp -s - "$tmp/sh1" && ok || bad "--shard slurm (id 1 of 3)"
SLURM_ARRAY_TASK_ID=12 SLURM_ARRAY_TASK_MIN=10 SLURM_ARRAY_TASK_MAX=12 "$vmsim" sweep "$spec" --shard slurm -j 1 2>/dev/null |
    cmp -s - "$tmp/sh2" && ok || bad "--shard slurm (id 12 of 10-12)"
env -u SLURM_ARRAY_TASK_ID "$vmsim" sweep "$spec" --shard slurm >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] && grep -q SLURM_ARRAY_TASK_ID "$tmp/err" && ok || bad "--shard slurm outside an array"

# Resuming: with -o, only what is missing runs; an interrupted (partial) line is redone.
head -3 "$tmp/all2" >"$tmp/res.jsonl"
sed -n 4p "$tmp/all2" | head -c 100 >>"$tmp/res.jsonl"
"$vmsim" sweep "$spec" --list --missing "$tmp/res.jsonl" | cut -f1 | tr '\n' ' ' >"$tmp/miss"
[ "$(cat "$tmp/miss")" = "3 4 5 " ] && ok || bad "--missing: $(cat "$tmp/miss")"
"$vmsim" sweep "$spec" -o "$tmp/res.jsonl" 2>"$tmp/err" || bad "resume exit"
grep -q '3 tasks already in' "$tmp/err" && ok || bad "resume: $(cat "$tmp/err")"
"$vmsim" sweep "$spec" -o "$tmp/res.jsonl" 2>"$tmp/err"
grep -q '6 tasks already in .*, 0 to run' "$tmp/err" && ok || bad "second resume ran something"

# merge: one row per key in task order whatever the files' order and duplicates; the
# partial line is skipped with a warning naming the file and line.
"$vmsim" sweep merge "$tmp/all2" >"$tmp/m1" || bad "merge exit"
"$vmsim" sweep merge "$tmp/sh2" "$tmp/res.jsonl" "$tmp/sh0" >"$tmp/m2" 2>"$tmp/err"
cmp -s "$tmp/m1" "$tmp/m2" && ok || bad "merge of shards+resumed != merge of the full run"
grep -q "res.jsonl:4: not a sweep result" "$tmp/err" && ok || bad "merge: partial line warning"
[ "$(wc -l <"$tmp/m1")" = 7 ] && head -1 "$tmp/m1" | grep -q '^task,key,trace,cores,tlb.l1d,references,' &&
    ok || bad "merge table shape"
python3 - "$tmp/m1" "$tmp/all2" <<'PY' && ok || bad "merge values"
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1])))
lines = [json.loads(l) for l in open(sys.argv[2])]
for r, d in zip(rows, lines):
    assert int(r["task"]) == d["sweep"]["task"] and r["key"] == d["sweep"]["key"]
    assert int(r["l1d_misses"]) == d["tlb"]["l1d"]["misses"]
    assert abs(float(r["l1d_miss_rate"]) - d["tlb"]["l1d"]["misses"] / d["tlb"]["l1d"]["lookups"]) < 1e-6
    assert int(r["cycles"]) == d["cycles"] and int(r["references"]) == d["replay"]["references"]
    assert r["tlb.l1d"] == d["sweep"]["settings"]["tlb.l1d"]
PY

# The GNU parallel recipe (docs/SWEEP.md), on the local login ":" only.
if command -v parallel >/dev/null; then
    "$vmsim" sweep "$spec" --list | cut -f1 |
        parallel --will-cite --sshlogin : "$vmsim" sweep "$spec" --task {} >"$tmp/par.jsonl" 2>/dev/null
    "$vmsim" sweep merge "$tmp/par.jsonl" | cmp -s - "$tmp/m1" && ok || bad "GNU parallel recipe"
else
    bad "GNU parallel is not installed (scripts/deps.sh installs it)"
fi

# SPEC errors name the file and line, before anything runs.
err() { # err EXPECTED-TEXT SPEC-TEXT
    printf '%b' "$2" >"$tmp/bad.ini"
    "$vmsim" sweep "$tmp/bad.ini" --list >/dev/null 2>"$tmp/err"
    [ $? -eq 2 ] && grep -q -- "$1" "$tmp/err" && ok || bad "spec error '$1': $(cat "$tmp/err")"
}
err "bad.ini:2: .*tlb.l1d" "trace = $ex/small.vmt\ntlb.l1d = 4K:16x4:lru | 4K:banana\n"
err "bad.ini:2: .*nosuchkey" "trace = $ex/small.vmt\nnosuchkey = 1\n"
err "bad.ini:1: trace = an empty alternative\|bad.ini:1: trace: an empty alternative" "trace = $ex/small.vmt |  | x\n"
err "no trace key" "cores = 1 | 2\n"
err "bad.ini:1: trace /nonexistent.vmt: cannot be read" "trace = /nonexistent.vmt\n"
err "bad.ini:3: cores is already set on line 1" "cores = 1\ntrace = $ex/small.vmt\ncores = 2\n"
err "bad.ini:2: expected KEY = VALUE" "trace = $ex/small.vmt\njunk\n"
"$vmsim" sweep "$spec" --task 6 >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] && grep -q "tasks 0 to 5" "$tmp/err" && ok || bad "--task out of range"
"$vmsim" sweep "$spec" --shard 3/3 >/dev/null 2>&1; [ $? -eq 2 ] && ok || bad "--shard 3/3 accepted"

echo "sweep: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
