#!/usr/bin/env bash
# `vmsim sweep`: the task list (cartesian product, numbered from 0, last key fastest),
# --task lines equal to what a full run writes and to `vmsim replay --stats json` with
# the same settings, -j independence, shards covering the list exactly once (also from
# Slurm's SLURM_ARRAY_TASK_* variables), resuming with -o, --missing, merge, the GNU
# parallel recipe of docs/SWEEP.md on the local login (":"), SPEC errors, and
# `vmsim replay TRACE --sweep KEY=V1|V2` (the same tasks from the command line, one pass).
# Usage: sweep.sh PATH/TO/vmsim   (ctest passes it; VMS_SOURCE_DIR points at the tree)
. "$(dirname "$0")/lib/common.sh" "$1"
cd "$src" || exit 1
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
    assert s["task"] == i and len(s["key"]) == 16 and s["settings"]["cores"] == "1", (i, s)
    assert "version" in d and "config" in d and d["config"]["cores"] == "1", (i, d.get("config"))
    assert d["config"]["tlb.l1d"] == s["settings"]["tlb.l1d"], (i, d["config"], s)
# smaller L1 dTLBs miss more (same trace): the alternatives really reach the machine
m = [d["tlb"]["l1d"]["misses"] for d in lines]
assert m[0] <= m[1] <= m[2] and m[0] < m[2], m
assert len(lines) == 6, len(lines)
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

# The Slurm script of docs/SWEEP.md (examples/sweep/slurm.sh), run as two array tasks
# would run it (sbatch sets the variables; here we do), then merged.
# Trace paths are relative to the current directory: this spec names them absolutely,
# as a job running elsewhere needs; the keys (trace digests) are the same as before.
mkdir -p "$tmp/slurm"
sed "s|$ex/|$src/$ex/|g" "$spec" >"$tmp/abs.ini"
for id in 0 1; do
    (cd "$tmp/slurm" && PATH="$(dirname "$vmsim"):$PATH" SLURM_ARRAY_TASK_ID=$id SLURM_ARRAY_TASK_MIN=0 \
        SLURM_ARRAY_TASK_COUNT=2 SLURM_CPUS_PER_TASK=2 bash "$src/examples/sweep/slurm.sh" "$tmp/abs.ini" 2>/dev/null) ||
        bad "slurm.sh as array task $id"
done
[ "$(wc -l <"$tmp/slurm/results/shard-0.jsonl")" = 3 ] && ok || bad "slurm shard 0 size"
"$vmsim" sweep merge "$tmp/slurm/results/"*.jsonl | cut -d, -f1,2,4- >"$tmp/slurm.csv"
"$vmsim" sweep merge "$tmp/all2" | cut -d, -f1,2,4- | cmp -s - "$tmp/slurm.csv" &&
    ok || bad "slurm.sh shards merged != full run (keys and counters)"
# The example spec expands as documented.
[ "$("$vmsim" sweep examples/sweep/tlb.ini --list | wc -l)" = 6 ] && ok || bad "examples/sweep/tlb.ini"

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

# Hostile result files: truncated lines, deep nesting, bad escapes, binary bytes, a
# valid line cut at every byte. merge skips what is not a result and never crashes.
python3 - "$tmp/all2" "$tmp/junk.jsonl" <<'PY'
import random, sys
line = open(sys.argv[1]).readline().rstrip("\n")
rng = random.Random(7)
out = [line[:n] for n in range(0, len(line), max(1, len(line) // 300))]
out += ["[" * 5000, "{" * 100 + "}" * 100, '{"sweep":{"key":"\\u12', '"\\x"', "nul\x00l", "1e999999"]
out += ["".join(chr(rng.randrange(1, 256)) for _ in range(200)) for _ in range(50)]
out.append(line)
open(sys.argv[2], "w", encoding="latin-1").write("\n".join(out) + "\n")
PY
"$vmsim" sweep merge "$tmp/junk.jsonl" >"$tmp/junk.csv" 2>"$tmp/err"
[ $? -eq 0 ] && [ "$(wc -l <"$tmp/junk.csv")" = 2 ] && grep -q "not a sweep result" "$tmp/err" &&
    ok || bad "merge of hostile lines: $(tail -2 "$tmp/err")"

# The GNU parallel recipe (docs/SWEEP.md), on the local login ":" only.
if command -v parallel >/dev/null; then
    "$vmsim" sweep "$spec" --list | cut -f1 |
        parallel --will-cite --sshlogin : "$vmsim" sweep "$spec" --task {} >"$tmp/par.jsonl" 2>/dev/null
    "$vmsim" sweep merge "$tmp/par.jsonl" | cmp -s - "$tmp/m1" && ok || bad "GNU parallel recipe"
else
    bad "GNU parallel is not installed (scripts/deps.sh installs it)"
fi

# --one-pass: one pass of the reader, the configurations on threads; every line equals
# the task's separate run (processes, one reader each), whatever -j; also with limits,
# both layouts, two cores, and a trace that is malformed after some references (every
# task fails the same way, except one whose limit stops before the bad line).
printf 'trace = %s | %s\nlimit = 30000 | 0\ncores = 1 | 2\n[tlb]\nl1d = 4K:8x4:lru | 4K:1x16:lru\n' \
    "$ex/ls.vmt" "$ex/sh.vmt" > "$tmp/op.ini"
"$vmsim" sweep "$tmp/op.ini" -j 2 > "$tmp/op-sep.jsonl" 2>/dev/null || bad "separate sweep"
for j in 1 3; do
    "$vmsim" sweep "$tmp/op.ini" -j $j --one-pass > "$tmp/op-$j.jsonl" 2>"$tmp/op.err" ||
        bad "one-pass -j $j: $(cat "$tmp/op.err")"
    cmp -s "$tmp/op-sep.jsonl" "$tmp/op-$j.jsonl" && ok || bad "one-pass -j $j differs"
done
[ "$(wc -l < "$tmp/op-1.jsonl")" -eq 16 ] && ok || bad "one-pass: not 16 lines"
{ head -c 4000 "$ex/small.din"; printf '0 1000\n0 2000\nzz not an address\n0 3000\n'; } > "$tmp/bad.din"
printf 'trace = %s\nformat = din\nlimit = 1 | 0\ntlb.l1d = 4K:1x8:lru | 4K:1x4:lru\n' "$tmp/bad.din" > "$tmp/opb.ini"
"$vmsim" sweep "$tmp/opb.ini" > "$tmp/opb-sep.jsonl" 2>"$tmp/opb-sep.err"; rs=$?
"$vmsim" sweep "$tmp/opb.ini" --one-pass > "$tmp/opb-one.jsonl" 2>"$tmp/opb-one.err"; ro=$?
[ $rs -eq 1 ] && [ $ro -eq 1 ] && cmp -s "$tmp/opb-sep.jsonl" "$tmp/opb-one.jsonl" &&
    [ "$(wc -l < "$tmp/opb-one.jsonl")" -eq 2 ] && grep -q "bad.din:11: expected" "$tmp/opb-one.err" && ok ||
    bad "one-pass on a malformed trace: $rs $ro $(cat "$tmp/opb-one.err")"

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

# vmsim replay TRACE --sweep KEY=V1|V2 …: the same tasks as the spec with those keys in
# that order (the preset first), in one pass; each line's stats equal the separate replay
# with the same settings; -j does not change the bytes.
"$vmsim" replay $ex/small.vmt --set cores=1 --sweep 'tlb.l1d=4K:16x4:lru|4K:2x2:lru | 4K:1x1:lru' \
    --sweep 'pwc.pde=none|32x4:lru' -j 2 >"$tmp/rs2" 2>"$tmp/rs.err" || bad "replay --sweep exit: $(cat "$tmp/rs.err")"
"$vmsim" replay $ex/small.vmt --set cores=1 --sweep 'tlb.l1d=4K:16x4:lru|4K:2x2:lru | 4K:1x1:lru' \
    --sweep 'pwc.pde=none|32x4:lru' -j 1 >"$tmp/rs1" 2>/dev/null
[ "$(wc -l <"$tmp/rs2")" = 6 ] && cmp -s "$tmp/rs1" "$tmp/rs2" && ok || bad "replay --sweep: 6 lines, -j 1 = -j 2"
i=0
for l1 in 4K:16x4:lru 4K:2x2:lru 4K:1x1:lru; do
    for pde in none 32x4:lru; do
        i=$((i + 1))
        "$vmsim" replay $ex/small.vmt --stats json --set cores=1 --set tlb.l1d=$l1 --set pwc.pde=$pde >"$tmp/rr" 2>/dev/null
        sed -n "${i}p" "$tmp/rs2" | sed -E 's/^\{"sweep":\{[^}]*\{[^}]*\}\},/{/' | cmp -s - "$tmp/rr" && ok ||
            bad "replay --sweep line $i != replay --set tlb.l1d=$l1 --set pwc.pde=$pde"
    done
done
python3 - "$tmp/rs2" "$ex/small.vmt" <<'PY' && ok || bad "replay --sweep: sweep members"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
for i, d in enumerate(lines):
    s = d["sweep"]
    assert s["task"] == i and s["spec"] == "replay" and len(s["key"]) == 16, s
    assert list(s["settings"]) == ["trace", "cores", "tlb.l1d", "pwc.pde"], s
    assert s["settings"]["trace"] == sys.argv[2], s
assert [d["sweep"]["settings"]["pwc.pde"] for d in lines[:2]] == ["none", "32x4:lru"]
m = [d["tlb"]["l1d"]["misses"] for d in lines[::2]]
assert m[0] <= m[1] <= m[2] and m[0] < m[2], m
PY
# The same keys as a spec file give the same tasks (keys, stats), its name aside.
printf 'trace = %s\ncores = 1\ntlb.l1d = 4K:16x4:lru | 4K:2x2:lru | 4K:1x1:lru\npwc.pde = none | 32x4:lru\n' \
    $ex/small.vmt >"$tmp/rs.ini"
"$vmsim" sweep "$tmp/rs.ini" --one-pass 2>/dev/null | sed "s#\"spec\":\"$tmp/rs.ini\"#\"spec\":\"replay\"#" |
    cmp -s - "$tmp/rs2" && ok || bad "replay --sweep != the same spec's sweep"
# Errors name the argument; options that a sweep task cannot take are refused.
rerr() { # rerr EXPECTED-TEXT ARGS…
    local want=$1
    shift
    "$vmsim" replay "$@" >/dev/null 2>"$tmp/err"
    [ $? -eq 2 ] && grep -q -- "$want" "$tmp/err" && ok || bad "replay --sweep error '$want': $(cat "$tmp/err")"
}
rerr "vmsim replay: tlb.l1d=4K:1x1:lru|4K:banana: .*tlb.l1d" $ex/small.vmt --sweep 'tlb.l1d=4K:1x1:lru|4K:banana'
rerr "an empty alternative" $ex/small.vmt --sweep 'cores=1||2'
rerr "expected KEY=VALUE" $ex/small.vmt --sweep 'cores'
rerr "cores is already given by cores=1" $ex/small.vmt --set cores=1 --sweep 'cores=1|2'
rerr "'--curve' does not go with --sweep" $ex/small.vmt --sweep 'cores=1|2' --curve tlb.l1d
rerr "'--vm' does not go with --sweep" $ex/small.vmt --vm --sweep 'cores=1|2'
rerr "no TRACE given" --sweep 'cores=1|2'
rerr "stdin cannot be swept" - --sweep 'cores=1|2'
rerr "/nonexistent.vmt: cannot be read" /nonexistent.vmt --sweep 'cores=1|2'

finish "sweep"
