#!/usr/bin/env bash
# End-to-end tests of `vmsim replay --pipeline` (the trace decoded on a thread of its own,
# docs/REPLAY.md): its stdout, stderr and exit status equal the plain replay's byte for
# byte in every case — each trace format and compression, summaries and --stats json,
# --limit (also just before a malformed line, which then is never read), malformed input
# mid-trace (text line, native record, checksum, truncation), stdin, --csv, --curve,
# memory pressure under every policy (OPT's first pass too), --slow, --breakdown,
# --events, --vm with the guest kernel and the pager.
# Usage: pipeline.sh PATH/TO/vmsim   (ctest passes it; VMS_SOURCE_DIR points at the tree)
. "$(dirname "$0")/lib/common.sh" "$1"
cd "$src" || exit 1
ex=examples/traces

# run TAG ARGS...: vmsim ARGS with stdout, stderr and the exit status in $tmp/TAG.*
run() {
    local tag=$1
    shift
    "$vmsim" "$@" >"$tmp/$tag.out" 2>"$tmp/$tag.err"
    echo $? >"$tmp/$tag.rc"
}

# same WANT ARGS...: `vmsim ARGS` and `vmsim ARGS --pipeline` give the same stdout, stderr
# and exit status, and that status is WANT (0: with some stdout; 1: with a message).
same() {
    local want=$1
    shift
    run a "$@"
    run b "$@" --pipeline
    local rc
    rc=$(cat "$tmp/a.rc")
    if [ "$rc" != "$want" ]; then
        bad "vmsim $*: exit $rc, expected $want"
        head -3 "$tmp/a.err" >&2
        return
    fi
    if [ "$want" = 0 ] && [ ! -s "$tmp/a.out" ]; then
        bad "vmsim $*: no output"
        return
    fi
    if [ "$want" != 0 ] && [ ! -s "$tmp/a.err" ]; then
        bad "vmsim $*: failed without a message"
        return
    fi
    if cmp -s "$tmp/a.out" "$tmp/b.out" && cmp -s "$tmp/a.err" "$tmp/b.err" &&
        cmp -s "$tmp/a.rc" "$tmp/b.rc"; then
        ok
    else
        bad "vmsim $* --pipeline differs from the plain replay"
        diff "$tmp/a.out" "$tmp/b.out" | head -5 >&2
        diff "$tmp/a.err" "$tmp/b.err" | head -5 >&2
    fi
}

# Every format and compression, the summary and the JSON.
for t in $ex/ls.vmt $ex/sh.vmt $ex/small.vmt $ex/small.din $ex/true.lackey \
    $ex/true-all.lackey.xz $ex/small.champsim $ex/small.champsim.gz $ex/small.champsim.xz; do
    same 0 replay "$t"
    same 0 replay "$t" --stats json
done
same 0 replay $ex/small.din --format din --stats json
same 0 replay $ex/ls.vmt --stats json --set cores=1 --limit 200000
same 0 replay $ex/sh.vmt --stats json --limit 1
# stdin: each run reads the file from its own redirection
run a replay - --stats json <$ex/ls.vmt
run b replay - --stats json --pipeline <$ex/ls.vmt
if [ "$(cat "$tmp/a.rc")" = 0 ] && [ -s "$tmp/a.out" ] && cmp -s "$tmp/a.out" "$tmp/b.out" &&
    cmp -s "$tmp/a.err" "$tmp/b.err" && cmp -s "$tmp/a.rc" "$tmp/b.rc"; then ok; else
    bad "replay - --pipeline differs from the plain replay of stdin"; fi

# A din trace of 60000 references, longer than the ring (4 chunks of 8192), with a
# malformed line at line 40001; the same as native, raw and compressed.
python3 -c '
import sys
w = sys.stdout.write
for i in range(60000):
    if i == 40000:
        w("7 1000\n")
    w("%d %x\n" % (i % 3, 0x7f0000000000 + (i * 7919 % 5000) * 64))
' >"$tmp/bad.din"
head -n 40000 "$tmp/bad.din" >"$tmp/good.din"
same 1 replay "$tmp/bad.din" --stats json
grep -q ':40001: ' "$tmp/a.err" && ok || bad "bad.din: the message names line 40001"
same 0 replay "$tmp/bad.din" --stats json --limit 40000 # the bad line is never read
same 0 replay "$tmp/bad.din" --limit 39999
same 1 replay "$tmp/bad.din" --limit 40001
same 0 replay "$tmp/bad.din" --limit 20000 --csv - --interval 1000
same 1 replay "$tmp/bad.din" --csv - --interval 7000
"$vmsim" convert "$tmp/good.din" "$tmp/good.vmt" >/dev/null 2>&1 &&
    "$vmsim" convert "$tmp/good.din" "$tmp/raw.vmt" --raw >/dev/null 2>&1 || bad "convert failed"
same 0 replay "$tmp/good.vmt" --stats json
size=$(wc -c <"$tmp/good.vmt")
head -c $((size / 2)) "$tmp/good.vmt" >"$tmp/cut.vmt" # the zstd stream ends mid-way
same 1 replay "$tmp/cut.vmt" --stats json
size=$(wc -c <"$tmp/raw.vmt")
head -c $((size * 2 / 3)) "$tmp/raw.vmt" >"$tmp/cut_raw.vmt" # a record cut short
same 1 replay "$tmp/cut_raw.vmt"
# a flipped byte two thirds in: the block's CHECK record fails, at the same byte
python3 -c '
import sys
d = bytearray(open(sys.argv[1], "rb").read())
d[len(d) * 2 // 3] ^= 0x10
open(sys.argv[2], "wb").write(d)
' "$tmp/raw.vmt" "$tmp/flip.vmt"
same 1 replay "$tmp/flip.vmt" --stats json
grep -q 'byte' "$tmp/a.err" && ok || bad "flip.vmt: the message names the byte"

# Curves, memory pressure under every policy, the slow path, breakdowns, events.
same 0 replay $ex/ls.vmt --stats json --curve tlb.l1d --curve pwc.pde --curve-sample 0.5
same 0 replay $ex/ls.vmt --curve tlb.l2
for pol in lru fifo clock random opt; do
    same 0 replay $ex/sh.vmt --stats json --set ram=2M --set swap=16M --set policy=$pol
done
same 0 replay $ex/ls.vmt --stats json --slow --set tlb.policy=random --set seed=3
same 0 replay $ex/sh.vmt --stats json --breakdown
same 0 replay $ex/small.vmt --events -
same 0 replay $ex/ls.vmt --stats json --set thp=always

# Inside a virtual machine: the guest kernel (vms_replay) and the demand pager.
same 0 replay --vm $ex/ls.vmt --stats json
same 0 replay --vm $ex/sh.vmt --limit 100000
same 0 replay --vm $ex/ls.vmt --guest pager --stats json
same 1 replay --vm "$tmp/bad.din" --guest pager
same 1 replay --vm "$tmp/flip.vmt"

# Documented: --help names the option (and --vm's).
"$vmsim" replay --help | grep -q -- '--pipeline' && ok || bad "replay --help lacks --pipeline"
"$vmsim" replay --vm --help | grep -q -- '--pipeline' && ok || bad "replay --vm --help lacks it"
finish pipeline
