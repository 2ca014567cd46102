#!/usr/bin/env bash
# End-to-end tests of `--events FILE` (docs/EVENTS.md): the JSON lines of a small scenario
# against a golden file, one object with a "type" per line, the narration and the stats
# unchanged by it, and a replay's counters rebuilt from its events.
# Usage: events.sh PATH/TO/vmsim (ctest passes it). VMS_UPDATE_GOLDEN=1 rewrites the golden.
. "$(dirname "$0")/lib/common.sh" "$1"
scn=$src/tests/cli/events_small.scn

# The golden stream: every event of a zero-fill, a hit, a fork and a COW fault.
"$vmsim" run "$scn" --events "$tmp/e.jsonl" >"$tmp/narr" 2>"$tmp/err"; rc=$?
[ -n "${VMS_UPDATE_GOLDEN:-}" ] && cp "$tmp/e.jsonl" "$golden/events_small.jsonl"
if [ $rc -eq 0 ] && diff -u "$golden/events_small.jsonl" "$tmp/e.jsonl" >&2; then ok; else
    bad "events_small.jsonl (exit $rc)"; cat "$tmp/err" >&2; fi
# The same bytes again (determinism), and the narration as without --events.
"$vmsim" run "$scn" --events "$tmp/e2.jsonl" >/dev/null 2>&1
cmp -s "$tmp/e.jsonl" "$tmp/e2.jsonl" && ok || bad "events are not deterministic"
"$vmsim" run "$scn" >"$tmp/narr0" 2>&1
cmp -s "$tmp/narr" "$tmp/narr0" && ok || bad "--events changed the narration"
"$vmsim" run "$scn" --stats json >"$tmp/s0" 2>&1
"$vmsim" run "$scn" --stats json --events "$tmp/e3.jsonl" >"$tmp/s1" 2>&1
cmp -s "$tmp/s0" "$tmp/s1" && ok || bad "--events changed run's --stats json"

# Every line one JSON object whose first member is its type, with cycle and core.
python3 - "$tmp/e.jsonl" <<'PY' && ok || bad "events are not JSON lines with a type"
import json, sys
n = 0
for line in open(sys.argv[1]):
    d = json.loads(line)
    assert list(d)[:3] == ["type", "cycle", "core"], d
    n += 1
assert n > 20, n
PY

# A replay: --stats json is the same with --events, and the events rebuild its counters.
trace=$src/examples/traces/ls.vmt
"$vmsim" replay "$trace" --limit 20000 --stats json >"$tmp/r0.json" 2>/dev/null
"$vmsim" replay "$trace" --limit 20000 --stats json --events "$tmp/r.jsonl" >"$tmp/r1.json" 2>/dev/null
cmp -s "$tmp/r0.json" "$tmp/r1.json" && ok || bad "--events changed replay's --stats json"
python3 - "$tmp/r1.json" "$tmp/r.jsonl" <<'PY' && ok || bad "replay counters from the events"
import json, sys
st = json.load(open(sys.argv[1]))
ev = [json.loads(l) for l in open(sys.argv[2])]
def count(t, **kw):
    return sum(1 for e in ev if e["type"] == t and all(e.get(k) == v for k, v in kw.items()))
got = {
    "accesses": count("access"),
    "walks": count("walk"),
    "walk.mem_refs": count("walk_step"),
    "walk.pwc_hits": sum(1 for e in ev if e["type"] == "walk" and e["pwc_level"]),
    "faults.total": count("fault_resolved"),
    "exceptions.page_faults": count("fault", kind="pf"),
    "invalidations.invlpg": count("tlb_op", op="invlpg"),
    "invalidations.cr3_loads": count("tlb_op", op="cr3_load"),
}
for lvl in ("l1i", "l1d", "l2"):
    got["tlb.%s.hits" % lvl] = count("tlb_lookup", level=lvl, hit=True)
    got["tlb.%s.misses" % lvl] = count("tlb_lookup", level=lvl, hit=False)
    got["tlb.%s.fills" % lvl] = count("tlb_fill", level=lvl)
    got["tlb.%s.evictions" % lvl] = count("tlb_fill", level=lvl, evicted=True)
    got["tlb.%s.invalidations" % lvl] = sum(e["count"] for e in ev
                                             if e["type"] == "tlb_invalidate" and e["level"] == lvl)
want = {}
for k in got:
    v = st
    for p in k.split("."):
        v = v[p]
    want[k] = v
bad = {k: (got[k], want[k]) for k in got if got[k] != want[k]}
assert not bad, bad
assert got["walks"] > 0 and got["faults.total"] > 0, got
PY
# "-" writes to standard output (replay); it cannot share it with --stats json.
"$vmsim" replay "$trace" --limit 100 --events - 2>/dev/null | grep -q '^{"type":"access",' && ok ||
    bad "replay --events -"
"$vmsim" replay "$trace" --limit 100 --events - --stats json >/dev/null 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] && grep -q "both want standard output" "$tmp/err" && ok || bad "--events - with --stats json (exit $rc)"
# run's standard output holds the narration; an uncreatable file is a clear error.
"$vmsim" run "$scn" --events - >/dev/null 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] && grep -q "standard output holds the narration" "$tmp/err" && ok || bad "run --events - (exit $rc)"
"$vmsim" run "$scn" --events "$tmp/no/such/dir/e.jsonl" >/dev/null 2>"$tmp/err"; rc=$?
[ $rc -eq 1 ] && grep -q "no/such/dir/e.jsonl: cannot create the events file" "$tmp/err" && ok ||
    bad "run --events into a missing directory (exit $rc)"

finish "events.sh"
