#!/usr/bin/env bash
# Golden end-to-end tests of `vmsim replay` on the real traces in examples/traces/:
# byte-identical summaries and JSON across runs, fast path = slow path, the JSON
# contract names, CSV series, --limit, layouts, exit codes 0/1/2 and error messages that
# name the line or byte. Set VMS_UPDATE_GOLDEN=1 to rewrite the golden files.
# Usage: replay.sh PATH/TO/vmsim   (ctest passes it; VMS_SOURCE_DIR points at the tree)
. "$(dirname "$0")/lib/common.sh" "$1"
cd "$src" || exit 1 # golden output names the trace as given: relative paths

# golden NAME ARGS...: stdout must equal tests/golden/NAME.txt byte for byte, exit 0.
golden() {
    local name=$1; shift
    "$vmsim" "$@" >"$tmp/raw" 2>"$tmp/err"
    local rc=$?
    # The build description (git describe) changes with every commit: masked.
    sed -E 's/"build":"[^"]*"/"build":"-"/' "$tmp/raw" >"$tmp/out"
    [ -n "${VMS_UPDATE_GOLDEN:-}" ] && cp "$tmp/out" "$golden/$name.txt"
    if diff -u "$golden/$name.txt" "$tmp/out" >&2 && [ $rc -eq 0 ]; then ok; else
        bad "$name (exit $rc)"; cat "$tmp/err" >&2; fi
}
ex=examples/traces
golden replay_ls replay $ex/ls.vmt
golden replay_true replay $ex/true-all.lackey.xz --preset tiny
golden replay_small_vmt replay $ex/small.vmt
golden replay_ls_json replay $ex/ls.vmt --stats json --set cores=1 --limit 200000

# Determinism and exactness: the same run twice, and with the fast path off, give the
# same bytes (the JSON holds every counter). Each run must succeed and print a JSON
# object with references in it: two empty outputs would compare equal.
# jrun OUT ARGS...: run vmsim ARGS into OUT; false (and a message) unless exit 0 and JSON.
jrun() {
    local out=$1; shift
    "$vmsim" "$@" >"$out" 2>"$tmp/jerr"
    local rc=$?
    if [ $rc -ne 0 ] || ! python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["replay"]["references"] > 0 else 1)' "$out" 2>/dev/null; then
        echo "vmsim $* exited $rc without a JSON result:" >&2; cat "$tmp/jerr" >&2
        return 1
    fi
}
for t in $ex/ls.vmt $ex/true-all.lackey.xz $ex/small.din $ex/small.champsim.xz $ex/small.vmt \
         $ex/sh.vmt; do
    if jrun "$tmp/a" replay "$t" --stats json && jrun "$tmp/b" replay "$t" --stats json &&
        jrun "$tmp/c" replay "$t" --stats json --slow; then
        cmp -s "$tmp/a" "$tmp/b" && ok || bad "$t: not deterministic"
        cmp -s "$tmp/a" "$tmp/c" && ok || bad "$t: fast path differs from --slow"
    else
        bad "$t: a run failed"
    fi
done
for pol in lru fifo random; do
    if jrun "$tmp/a" replay $ex/ls.vmt --stats json --set tlb.policy=$pol --set seed=5 &&
        jrun "$tmp/b" replay $ex/ls.vmt --stats json --set tlb.policy=$pol --set seed=5 --slow; then
        cmp -s "$tmp/a" "$tmp/b" && ok || bad "tlb.policy=$pol: fast path differs from --slow"
    else
        bad "tlb.policy=$pol: a run failed"
    fi
done

# The JSON contract: every name external tools read is there.
"$vmsim" replay $ex/true-all.lackey.xz --stats json >"$tmp/j"
for path in accesses faults.minor faults.major faults.cow faults.segv tlb.l1d.hits \
            tlb.l1d.misses tlb.l2.hits tlb.l2.misses walks walk.mem_refs cycles \
            swap.ins swap.outs replay.references replay.layout; do
    python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): d=d[k]' "$tmp/j" "$path" 2>/dev/null && ok || bad "json name $path"
done

# The fault contract: faults.total = minor + major + segv + sigbus (sh.vmt has populate
# and stack-growth faults; a scenario with segfaults and a kernel EFAULT too).
for t in $ex/sh.vmt $ex/ls.vmt; do
    "$vmsim" replay "$t" --stats json >"$tmp/j" 2>/dev/null
    python3 -c 'import json,sys
f=json.load(open(sys.argv[1]))["faults"]
assert f["total"] > 0 and f["total"] == f["minor"] + f["major"] + f["segv"] + f["sigbus"], f
assert f["cow"] == f["cow_copy"] + f["cow_reuse"], f' "$tmp/j" && ok || bad "$t: faults.total is not the sum"
done

# One reference over many pages resumes at each faulting page (a string instruction):
# 1024 faults and about two translations per page, not 1024 * 1025 / 2 (issue 16 #3).
printf ' L 1000,4194303\n' >"$tmp/long.lackey"
for mode in "" --slow; do
    "$vmsim" replay --format lackey $mode --stats json "$tmp/long.lackey" >"$tmp/j" 2>"$tmp/err"
    python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
assert d["faults"]["total"] == 1024 and d["accesses"] <= 2 * 1024 + 136, (d["faults"], d["accesses"])' \
        "$tmp/j" && ok || bad "long reference $mode: not resumed at the faulting page"
done

# Under memory pressure (2 MiB of RAM, swap, exact LRU) the fast path is still exact,
# and pages go out to swap and come back: a lackey trace writing 4 MiB twice, with
# fetches between the stores.
for round in 1 2; do
    awk 'BEGIN { for (p = 0; p < 1024; p++) printf "I  %x,4\n S %x,8\n", 4194304 + (p % 64) * 4, 268435456 + p * 4096 }'
done >"$tmp/w.lackey"
jrun "$tmp/a" replay "$tmp/w.lackey" --set ram=2M --set swap=16M --set policy=lru --stats json &&
    jrun "$tmp/b" replay "$tmp/w.lackey" --set ram=2M --set swap=16M --set policy=lru --stats json --slow &&
    cmp -s "$tmp/a" "$tmp/b" && ok || bad "swap: fast path differs from --slow (or a run failed)"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(not (d["swap"]["outs"] > 0 and d["swap"]["ins"] > 0))' "$tmp/a" &&
    ok || bad "swap: no swapping under 2 MiB"

# CSV: a header and one row per interval, the last at the end; --limit stops early.
"$vmsim" replay $ex/true-all.lackey.xz --csv "$tmp/s.csv" --interval 50000 >/dev/null
[ "$(head -1 "$tmp/s.csv")" = "references,l1i_miss_rate,l1d_miss_rate,l2_miss_rate,walks,walk_mem_refs,faults,major_faults,cycles" ] &&
    [ "$(wc -l <"$tmp/s.csv")" = 5 ] && [ "$(sed -n 2p "$tmp/s.csv" | cut -d, -f1)" = 50000 ] &&
    ok || bad "csv rows"
"$vmsim" replay $ex/ls.vmt --limit 1000 --stats json | grep -q '"references":1000,' && ok || bad "--limit"
# --csv - is standard output (the summary goes to stderr); an interval without lookups at
# a level has an empty rate, not 0 (loads only: no l1i lookups).
"$vmsim" replay $ex/true-all.lackey.xz --csv - --interval 50000 >"$tmp/o" 2>"$tmp/err" &&
    cmp -s "$tmp/o" "$tmp/s.csv" && grep -q '^references ' "$tmp/err" && [ ! -e ./- ] &&
    ok || bad "--csv -"
awk 'BEGIN { for (p = 0; p < 300; p++) printf " L %x,8\n", 268435456 + p * 64 }' >"$tmp/l.lackey"
"$vmsim" replay "$tmp/l.lackey" --csv "$tmp/l.csv" --interval 100 >/dev/null &&
    [ "$(sed -n 2p "$tmp/l.csv" | cut -d, -f2)" = "" ] &&
    [ -n "$(sed -n 2p "$tmp/l.csv" | cut -d, -f3)" ] && ok || bad "csv empty rate for no lookups"
"$vmsim" replay $ex/ls.vmt --csv - --stats json >/dev/null 2>&1; [ $? -eq 2 ] && ok || bad "--csv - with json"
# No progress line when stderr is not a terminal.
"$vmsim" replay $ex/ls.vmt >/dev/null 2>"$tmp/err"; [ ! -s "$tmp/err" ] && ok || bad "stderr not silent"
# On a terminal (script(1), util-linux) it shows the share of the file read and an ETA
# (issue 16.18): its first line comes at the first million references.
awk 'BEGIN { for (i = 0; i < 1100000; i++) printf " L %x,8\n", 268435456 + (i % 5000) * 64 }' >"$tmp/m.lackey"
script -qec "'$vmsim' replay '$tmp/m.lackey' >/dev/null" /dev/null </dev/null >"$tmp/tty" 2>&1
tr '\r' '\n' <"$tmp/tty" | grep -aqE 'replay: 1\.0M references, [0-9.]+M/s, [0-9]+%, ETA [0-9]+s' && ok ||
    bad "no progress line with an ETA on a terminal: $(tr '\r' '\n' <"$tmp/tty" | head -3)"
rm -f "$tmp/m.lackey"

# Layouts: a native trace with kernel events defaults to recorded; forcing auto works;
# in the recorded layout a lackey trace maps nothing, so its first reference segfaults.
"$vmsim" replay $ex/small.vmt --stats json 2>/dev/null | grep -q '"layout":"recorded"' && ok || bad "default recorded"
"$vmsim" replay $ex/small.vmt --layout auto --stats json 2>/dev/null | grep -q '"layout":"auto"' && ok || bad "--layout auto"
"$vmsim" replay $ex/true-all.lackey.xz --layout recorded --stats json >"$tmp/o" 2>"$tmp/err"; rc=$?
[ $rc -eq 0 ] && grep -q '"segv":1,' "$tmp/o" && grep -q 'segfault at' "$tmp/err" && ok || bad "recorded lackey (exit $rc)"
# A recorded real program (fork, exec, kernel writes): recorded layout, three processes,
# every system call accepted, no segfault (counts depend on the host's files: no golden).
"$vmsim" replay $ex/sh.vmt --stats json >"$tmp/o" 2>"$tmp/err"; rc=$?
[ $rc -eq 0 ] && grep -q '"layout":"recorded"' "$tmp/o" && grep -q '"processes":3,' "$tmp/o" &&
    grep -q '"syscall_errors":0,' "$tmp/o" && grep -q '"segv":0,' "$tmp/o" && grep -q '"kwrites":41,' "$tmp/o" &&
    ok || bad "recorded sh.vmt (exit $rc)"
# A missing host file is a warning naming it, and the segment is mapped anonymous.
"$vmsim" replay $ex/small.vmt >/dev/null 2>"$tmp/err"
grep -q '/usr/bin/demo: not readable on this host' "$tmp/err" && ok || bad "missing file warning"

# Errors: a malformed trace is exit 1 with the line (text) or byte (binary) and nothing
# on stdout; an unreadable file exit 1; usage errors exit 2.
printf 'I  04001000,3\n L 1ffefff000,8\nhello\n' >"$tmp/bad.lackey"
"$vmsim" replay "$tmp/bad.lackey" >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc -eq 1 ] && [ ! -s "$tmp/out" ] && grep -q "bad.lackey:3: expected 'I  ADDR,SIZE'" "$tmp/err" && ok ||
    bad "malformed lackey (exit $rc)"
head -c 300 $ex/ls.vmt >"$tmp/cut.vmt"
"$vmsim" replay "$tmp/cut.vmt" >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc -eq 1 ] && [ ! -s "$tmp/out" ] && grep -q "cut.vmt" "$tmp/err" && ok || bad "truncated native (exit $rc)"
"$vmsim" replay "$tmp/nonexistent" >/dev/null 2>"$tmp/err"; rc=$?
[ $rc -eq 1 ] && grep -q nonexistent "$tmp/err" && ok || bad "missing trace (exit $rc)"
"$vmsim" replay --help | grep -q 'usage: vmsim replay' && ok || bad "replay --help"
for args in "replay" "replay a b" "replay a --format pin" "replay a --layout x" "replay a --stats xml" \
            "replay a --limit 0" "replay a --interval 5" "replay a --set nokey=1" "replay a --bogus"; do
    # shellcheck disable=SC2086
    "$vmsim" $args >/dev/null 2>"$tmp/err"; rc=$?
    if [ $rc -eq 2 ] && [ -s "$tmp/err" ]; then ok; else bad "'$args' exit $rc"; fi
done

# Caches and DRAM (issue 14 contract): off by default (no "cache"/"dram" members), the
# contract names when on, the same run twice byte-identical, and the summary lines.
"$vmsim" replay "$src/$ex/small.vmt" --stats json >"$tmp/off.json"
# (The configuration object names the keys "cache" and "dram"; the stats must not.)
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit("cache" in d or "dram" in d)' \
    "$tmp/off.json" && ok || bad "cache members with cache off"
for hd in "skylake ddr4-3200" "tiny ddr5-4800"; do
    set -- $hd
    "$vmsim" replay "$src/$ex/ls.vmt" --set cache=$1 --set dram=$2 --stats json >"$tmp/c1.json"
    "$vmsim" replay "$src/$ex/ls.vmt" --set cache=$1 --set dram=$2 --stats json >"$tmp/c2.json"
    cmp -s "$tmp/c1.json" "$tmp/c2.json" && ok || bad "cache=$1 not deterministic"
    if command -v python3 >/dev/null; then
        python3 - "$tmp/c1.json" "$tmp/off.json" <<'PY' && ok || bad "cache=$1 json contract"
import json, sys
d = json.load(open(sys.argv[1]))
c, r = d["cache"], d["dram"]
for k in ("hits", "misses"):
    assert c["l1d"][k] >= 0
assert c["l1d"]["hits"] + c["l1d"]["misses"] == c["l1d"]["accesses"] > 0
assert c["llc"]["misses"] > 0 and r["row_hits"] > 0 and r["row_misses"] > 0 and r["refreshes"] > 0
assert r["reads"] == c["llc"]["misses"], (r, c["llc"])
assert sum(c["walk_refs"].values()) == d["walk"]["mem_refs"], (c["walk_refs"], d["walk"])
PY
    fi
done
"$vmsim" replay "$src/$ex/ls.vmt" --set cache=skylake --set dram=ddr4-3200 >"$tmp/sum"
for line in "cache l1d" "cache llc" "walk refs    served by L1" "dram         ddr4-3200"; do
    grep -q "^$line" "$tmp/sum" && ok || bad "summary lacks '$line'"
done
"$vmsim" replay "$src/$ex/ls.vmt" --set cache=skylake --set cache.l1d=64K:8:4 >/dev/null 2>"$tmp/err"
[ $? -ne 0 ] && grep -q "VIPT" "$tmp/err" && ok || bad "VIPT violation not refused"

# kernel.pagecache (issue 16 item 11): cold reads every first-touched file page (major
# faults, pgpgin); warm finds host files resident (no major fault, the same total, all
# minor); a recorded-layout replay defaults to warm (what docs/FIDELITY.md measures against).
for m in cold warm default; do
    set_arg=(--set kernel.pagecache=$m)
    [ $m = default ] && set_arg=()
    "$vmsim" replay "$src/$ex/sh.vmt" --stats json "${set_arg[@]}" >"$tmp/pc_$m" || bad "pagecache $m: replay failed"
done
python3 - "$tmp/pc_cold" "$tmp/pc_warm" "$tmp/pc_default" <<'PY' && ok || bad "kernel.pagecache cold/warm fault kinds"
import json, sys
c, w, d = (json.load(open(p))["faults"] for p in sys.argv[1:])
assert c["major"] == 47 and c["minor"] == 118 and c["total"] == 165, c
assert w["major"] == 0 and w["minor"] == 165 and w["total"] == 165, w
assert d == w, (d, w)
PY

# OPT from the command line (issue 16 item 13, a contract): a first pass builds the
# next-use oracle; under memory pressure on a loop of 600 written pages OPT takes fewer
# major faults than LRU; stdin cannot be read twice.
python3 -c "
for r in range(4):
    for p in range(600): print(' S %x,8' % (0x10000000 + p * 4096))" >"$tmp/loop.lackey"
for p in opt lru; do
    "$vmsim" replay --set policy=$p --set ram=2M --set swap=16M --stats json "$tmp/loop.lackey" \
        >"$tmp/opt_$p" 2>"$tmp/err" || { bad "policy=$p replay failed"; cat "$tmp/err" >&2; }
done
python3 - "$tmp/opt_opt" "$tmp/opt_lru" <<'PY' && ok || bad "policy=opt not better than lru"
import json, sys
o, l = (json.load(open(p)) for p in sys.argv[1:])
assert o["reclaim"]["policy"] == "opt", o["reclaim"]
assert 0 < o["faults"]["major"] < l["faults"]["major"], (o["faults"], l["faults"])
PY
"$vmsim" replay --set policy=opt --set swap=16M - <"$tmp/loop.lackey" >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] && grep -q "not stdin" "$tmp/err" && ok || bad "policy=opt from stdin not refused"

finish "replay"
