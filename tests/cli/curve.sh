#!/usr/bin/env bash
# `vmsim replay --curve`: the contract (issue 11) — "curve": {"tlb.l1d": [{"entries": N,
# "misses": M}, …]} for every size 1 … the configured entries, every existing JSON member
# unchanged (the same JSON with the curve members removed), the default output unchanged;
# the configured point equals the real misses of a fully associative LRU L1 dTLB; points
# equal separate runs; curve_sets for a set-associative structure, curve_sample with its
# error; pwc.pde and tlb.l2 names; errors for unknown or absent structures.
# Usage: curve.sh PATH/TO/vmsim   (ctest passes it; VMS_SOURCE_DIR points at the tree)
. "$(dirname "$0")/lib/common.sh" "$1"
cd "$src" || exit 1
t=examples/traces/ls.vmt

"$vmsim" replay $t --stats json > "$tmp/plain.json" || bad "plain replay"
"$vmsim" replay $t --stats json --curve tlb.l1d > "$tmp/c.json" || bad "curve replay"
"$vmsim" replay $t > "$tmp/plain.txt" 2>/dev/null || bad "plain summary"
"$vmsim" replay $t --curve tlb.l1d > "$tmp/c.txt" 2>/dev/null || bad "curve summary"
# The default output is unchanged; with --curve it only gains curve lines at the end.
head -n "$(wc -l < "$tmp/plain.txt")" "$tmp/c.txt" | cmp -s - "$tmp/plain.txt" && ok ||
    bad "the summary changed before the curve lines"
grep -q '^curve tlb.l1d' "$tmp/c.txt" && ok || bad "no curve line in the summary"
python3 - "$tmp/plain.json" "$tmp/c.json" <<'PY' && ok || bad "JSON contract"
import json, sys
plain, c = (json.load(open(p)) for p in sys.argv[1:])
pts = c.pop("curve")["tlb.l1d"]
c.pop("curve_sets", None)                    # skylake's L1 dTLB is set-associative
assert c == plain, "members other than curve* changed"
cfg = plain["config"]
assert [p["entries"] for p in pts] == list(range(1, len(pts) + 1))
assert len(pts) == 64 + 32 + 4, len(pts)     # 4K:16x4 + 2M:8x4 + 1G:4x1
m = [p["misses"] for p in pts]
assert all(a >= b for a, b in zip(m, m[1:])), "LRU never misses more with more entries"
assert m[0] <= plain["tlb"]["l1d"]["lookups"]
PY
# A fully associative LRU L1 dTLB: the configured point is the real run's misses, and
# points equal separate runs (8 and 33 entries here; tests/test_curve.c does more).
fa="--set tlb.l1d=4K:1x64:lru"
"$vmsim" replay $t --stats json $fa --curve tlb.l1d --curve tlb.l2 --curve pwc.pde \
    > "$tmp/fa.json" || bad "fa curve"
for n in 8 33; do
    "$vmsim" replay $t --stats json --set tlb.l1d=4K:1x$n:lru > "$tmp/fa$n.json" || bad "fa $n"
done
python3 - "$tmp/fa.json" "$tmp/fa8.json" "$tmp/fa33.json" <<'PY' && ok || bad "fa points"
import json, sys
j, j8, j33 = (json.load(open(p)) for p in sys.argv[1:])
c = {p["entries"]: p["misses"] for p in j["curve"]["tlb.l1d"]}
assert len(c) == 64 and "curve_sets" not in j or "tlb.l1d" not in j.get("curve_sets", {})
assert c[64] == j["tlb"]["l1d"]["misses"], (c[64], j["tlb"]["l1d"]["misses"])
assert c[8] == j8["tlb"]["l1d"]["misses"] and c[33] == j33["tlb"]["l1d"]["misses"]
l2 = j["curve"]["tlb.l2"]
assert len(l2) == 1536 + 16
assert l2[-1]["misses"] <= j["tlb"]["l2"]["lookups"]
pde = j["curve"]["pwc.pde"]
assert len(pde) == 32 and pde[-1]["misses"] == j["pwc"]["lookups"] - j["pwc"]["hits_pde"]
PY
# Set-associative: one curve per number of sets, the configured geometry among them.
"$vmsim" replay $t --stats json --set tlb.l1d=4K:16x4:lru --curve tlb.l1d > "$tmp/sa.json" ||
    bad "sa curve"
python3 - "$tmp/sa.json" <<'PY' && ok || bad "curve_sets"
import json, sys
j = json.load(open(sys.argv[1]))
s = j["curve_sets"]["tlb.l1d"]
assert {p["sets"] for p in s} == {2, 4, 8, 16}
p = [p for p in s if p["sets"] == 16 and p["ways"] == 4][0]
assert p["entries"] == 64 and p["misses"] == j["tlb"]["l1d"]["misses"]
PY
# Sampled: the estimate and its error against the exact curve.
"$vmsim" replay $t --stats json --curve tlb.l1d:512 --curve-sample 0.25 > "$tmp/s.json" ||
    bad "sampled curve"
python3 - "$tmp/s.json" <<'PY' && ok || bad "curve_sample"
import json, sys
j = json.load(open(sys.argv[1]))
s = j["curve_sample"]["tlb.l1d"]
assert s["rate"] == 0.25 and len(s["points"]) == 512 and len(j["curve"]["tlb.l1d"]) == 512
assert 0 <= s["mean_abs_error"] <= s["max_abs_error"] < 1
assert 0 < s["sampled_lookups"] < s["lookups"]
PY
# Determinism, and errors.
"$vmsim" replay $t --stats json --curve tlb.l1d > "$tmp/c2.json"
cmp -s "$tmp/c.json" "$tmp/c2.json" && ok || bad "not deterministic"
"$vmsim" replay $t --curve tlb.l3 > /dev/null 2> "$tmp/e1"; [ $? = 2 ] && grep -q "unknown structure 'tlb.l3'" "$tmp/e1" && ok ||
    bad "unknown structure"
"$vmsim" replay $t --set tlb.l2=none --curve tlb.l2 > /dev/null 2> "$tmp/e2"; [ $? = 2 ] && grep -q "not configured" "$tmp/e2" && ok ||
    bad "absent structure"
"$vmsim" replay $t --curve-sample 0.1 > /dev/null 2>&1; [ $? = 2 ] && ok || bad "--curve-sample alone"
"$vmsim" replay $t --curve tlb.l1d --curve-sample 2 > /dev/null 2>&1; [ $? = 2 ] && ok || bad "bad rate"
finish "cli curve"
