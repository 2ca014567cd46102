#!/usr/bin/env bash
# End-to-end tests of `vmsim policy` (the command form is a contract: see cli/cmd_policy.c).
# Usage: policy.sh PATH/TO/vmsim   (ctest passes it). Exits non-zero on any failure.
. "$(dirname "$0")/lib/common.sh" "$1"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

belady=1,2,3,4,1,2,5,1,2,3,4,5
silb=7,0,1,2,0,3,0,4,2,3,0,3,2,1,2,0,1,7,0,1

# jnum JSON KEY: the top-level integer value of "KEY".
jnum() { printf '%s\n' "$1" | sed -n "s/^  \"$2\": \([0-9][0-9]*\),*\$/\1/p"; }

# expect POLICY FRAMES REFS HITS MISSES: the JSON totals must match.
expect() {
    local json
    json=$("$vmsim" policy --policy "$1" --frames "$2" --refs "$3" --stats json)
    local rc=$? h m
    h=$(jnum "$json" hits) m=$(jnum "$json" misses)
    if [ $rc -eq 0 ] && [ "$h" = "$4" ] && [ "$m" = "$5" ]; then ok
    else bad "$1 frames=$2: hits=$h misses=$m rc=$rc, expected hits=$4 misses=$5"; fi
}
expect fifo 3 $belady 3 9   # Belady's anomaly: 9 faults with 3 frames,
expect fifo 4 $belady 2 10  # 10 with 4
expect fifo 3 $silb 5 15    # Silberschatz: FIFO 15 faults,
expect opt 3 $silb 11 9     # OPT 9,
expect lru 3 $silb 8 12     # LRU 12
expect twolist 100 $silb 14 6  # more frames than pages: only the 6 cold misses

# Every policy: valid JSON (when python3 is there) with consistent totals.
for p in fifo lru clock random opt twolist; do
    json=$("$vmsim" policy --policy $p --frames 3 --refs $silb --stats json) || { bad "$p rc"; continue; }
    h=$(jnum "$json" hits) m=$(jnum "$json" misses)
    [ $((h + m)) -eq 20 ] && ok || bad "$p: hits+misses=$((h + m))"
    if command -v python3 >/dev/null; then
        printf '%s' "$json" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["policy"] == sys.argv[1] and d["frames"] == 3 and d["references"] == 20
assert len(d["steps"]) == 20 and sum(not s["hit"] for s in d["steps"]) == d["misses"]
assert all(len(s["frames"]) <= 3 for s in d["steps"])' $p && ok || bad "$p: json"
    fi
done

# --refs-file (whitespace and commas) gives the same as --refs; --opt=value works.
printf '7 0 1\n2,0,3, 0\t4 2 3 0 3 2 1 2 0 1 7 0 1\n' >"$tmp/refs"
a=$("$vmsim" policy --policy lru --frames 3 --refs-file "$tmp/refs" --stats json)
b=$("$vmsim" policy --policy=lru --frames=3 --refs=$silb --stats=json)
[ -n "$a" ] && [ "$a" = "$b" ] && ok || bad "--refs-file differs from --refs"

# random is repeatable with its seed, and the seed matters somewhere.
long=$(seq 1 400 | awk '{ printf "%s%d", (NR > 1 ? "," : ""), ($1 * 7919) % 23 }')
r1=$("$vmsim" policy --policy random --frames 5 --seed 42 --refs "$long" --stats json)
r2=$("$vmsim" policy --policy random --frames 5 --seed 42 --refs "$long" --stats json)
r3=$("$vmsim" policy --policy random --frames 5 --seed 43 --refs "$long" --stats json)
[ "$r1" = "$r2" ] && ok || bad "random: same seed, different output"
[ "$r1" != "$r3" ] && ok || bad "random: seed ignored"

# The human table: one row per reference and the totals.
out=$("$vmsim" policy --policy fifo --frames 3 --refs $belady)
[ "$(printf '%s\n' "$out" | grep -cE '^ +[0-9]+ +[0-9]+ +(hit|miss) ')" -eq 12 ] && ok || bad "table rows"
printf '%s\n' "$out" | grep -qE '^ +4 +4 +miss +4 +2 +3 +1$' && ok || bad "row 4 (4 replaces 1)"
printf '%s\n' "$out" | grep -q '3 hits, 9 misses' && ok || bad "table totals"
"$vmsim" policy --help | grep -q 'twolist' && ok || bad "--help lists the policies"

# Usage errors: exit 2 and a message on stderr naming the problem.
err() {  # err PATTERN ARGS...
    local pat=$1; shift
    "$vmsim" policy "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    if [ $rc -eq 2 ] && grep -q -- "$pat" "$tmp/err" && [ ! -s "$tmp/out" ]; then ok
    else bad "'$*': rc=$rc stderr=$(cat "$tmp/err")"; fi
}
err "fifo, lru, clock, random, opt, twolist" --policy mru --frames 3 --refs 1,2
err "frames" --policy fifo --frames 0 --refs 1,2
err "frames" --policy fifo --frames -3 --refs 1,2
err "reference 3: bad token 'x'" --policy fifo --frames 3 --refs 1,2,x,4
err "reference 2: bad token '-5'" --policy lru --frames 3 --refs 1,-5
err "no references" --policy lru --frames 3 --refs ,
err "missing --policy" --frames 3 --refs 1
err "missing --frames" --policy fifo --refs 1
err "json" --policy fifo --frames 3 --refs 1 --stats xml
err "unknown argument" --policy fifo --frames 3 --refs 1 --frobnicate
err "needs a value" --policy fifo --frames
"$vmsim" policy --policy fifo --frames 3 --refs-file "$tmp/nonexistent" 2>/dev/null
[ $? -ne 0 ] && ok || bad "unreadable --refs-file accepted"

finish "policy"
