#!/usr/bin/env bash
# Breakdowns of replay's counters: by process (always) and by mapping (--breakdown).
# Every column sums to the machine's and kernel's totals, --breakdown changes no other
# counter (it runs reference by reference: the same model), mappings carry the names
# maps shows, and the summary prints the tables.
# Usage: breakdown.sh PATH/TO/vmsim   (ctest passes it; VMS_SOURCE_DIR points at the tree)
. "$(dirname "$0")/lib/common.sh" "$1"
cd "$src" || exit 1
ex=examples/traces

for t in $ex/sh.vmt $ex/ls.vmt $ex/true-all.lackey.xz $ex/small.din; do
    "$vmsim" replay "$t" --stats json >"$tmp/a" 2>/dev/null
    "$vmsim" replay "$t" --stats json --breakdown >"$tmp/b" 2>/dev/null
    python3 - "$tmp/a" "$tmp/b" <<'PY' && ok || bad "$t: breakdown sums or exactness"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
region = b["replay"].pop("by_region")
assert a == b, "--breakdown changed other counters"
for parts in (b["replay"]["by_process"], region):
    assert parts, "empty breakdown"
    for level in ("l1i", "l1d", "l2"):
        assert sum(p["tlb_misses"][level] for p in parts) == b["tlb"][level]["misses"], level
    assert sum(p["walks"] for p in parts) == b["walks"]
    assert sum(p["faults"] for p in parts) == b["faults"]["total"]
    assert sum(p["major_faults"] for p in parts) == b["faults"]["major"]
assert sum(p["accesses"] for p in region) == sum(p["accesses"] for p in b["replay"]["by_process"])
assert len({p["name"] for p in region}) == len(region), "a mapping listed twice"
PY
done

# sh.vmt: three processes (sh forks twice, each child execs true); libc is a mapping.
"$vmsim" replay $ex/sh.vmt --stats json --breakdown >"$tmp/s" 2>/dev/null
python3 - "$tmp/s" <<'PY' && ok || bad "sh.vmt: processes and mappings"
import json, sys
d = json.load(open(sys.argv[1]))
procs = d["replay"]["by_process"]
assert [p["pid"] for p in procs] == [1, 2, 3], procs
assert procs[1]["name"] == "true" and procs[2]["name"] == "true", procs
names = {p["name"] for p in d["replay"]["by_region"]}
assert "/usr/lib/x86_64-linux-gnu/libc.so.6" in names and "[kernel events]" in names, names
assert all(n.startswith("/") or n.startswith("[") for n in names), names
PY
# The auto layout names its regions [anon]; the summary prints both tables.
"$vmsim" replay $ex/small.din --breakdown 2>/dev/null >"$tmp/t"
grep -q '^by mapping ' "$tmp/t" && grep -q ' \[anon\]$' "$tmp/t" && ok || bad "summary by mapping"
"$vmsim" replay $ex/sh.vmt 2>/dev/null | grep -A3 '^by process ' | grep -q ' 2 true$' &&
    ok || bad "summary by process"
"$vmsim" replay $ex/small.din 2>/dev/null | grep -q '^by ' && bad "tables without need" || ok

finish "breakdown"
