#!/usr/bin/env bash
# End-to-end tests of `vmsim replay --vm` (a trace replayed as a guest process inside a
# VM, issue 10): the same references as natively, more walk references (the 2D walk),
# VM exits counted, the nested TLB saving second-stage references.
# Usage: virt.sh PATH/TO/vmsim   (ctest passes it; VMS_SOURCE_DIR points at the tree)
. "$(dirname "$0")/lib/common.sh" "$1"
trace=$src/examples/traces/ls.vmt

if command -v python3 >/dev/null; then
    run() { "$vmsim" replay --vm --limit 100000 --stats json "$@" "$trace"; }
    native=$(run --s2 none) ept=$(run --s2 ept) npt=$(run --s2 npt) ntlb=$(run --nested-tlb 64)
    ept2m=$(run --host-page 2M) shadow=$(run --shadow)
    python3 - "$native" "$ept" "$npt" "$ntlb" "$ept2m" "$shadow" <<'PY' && ok || bad "replay --vm values"
import json, sys
n, e, p, t, h, s = (json.loads(a) for a in sys.argv[1:])
assert n["references"] == e["references"] == 100000 and n["failed"] == e["failed"] == 0, (n, e)
assert n["virt"] is None and e["virt"]["exits"] > 0, e["virt"]
# every guest page faults once in the guest's pager, natively as in the VM
assert e["virt"]["guest_faults"] == n["pager_faults"] > 0
# the 2D walk reads more entries than the native one, on the same trace
assert e["walk"]["mem_refs"] > n["walk"]["mem_refs"], (e["walk"], n["walk"])
assert e["walk"]["mem_refs"] == e["virt"]["guest_refs"] + e["virt"]["s2_refs"]
assert e["cycles"] > n["cycles"]
# NPT is the same walk in x86-64 format: the same counts
assert p["walk"]["mem_refs"] == e["walk"]["mem_refs"] and p["virt"]["exits"] == e["virt"]["exits"]
# a nested TLB answers second-stage lookups: fewer second-stage references
assert t["virt"]["s2_tlb_hits"] > 0 and t["virt"]["s2_refs"] < e["virt"]["s2_refs"]
# 2 MiB host pages: fewer exits (one per 2 MiB region backed)
assert h["virt"]["exits"] < e["virt"]["exits"]
# shadow paging: one-dimensional walks (fewer references than nested), many more exits
# (every shadow miss, every guest page-table write), the same guest faults
sv = s["virt"]
assert s["references"] == 100000 and s["failed"] == 0 and sv["shadow"] is True
assert s["walk"]["mem_refs"] < e["walk"]["mem_refs"] and sv["exits"] > e["virt"]["exits"]
assert sv["exits"] == sv["exits_pf"] + sv["exits_ptwrite"] + sv["exits_tlbi"]
assert sv["guest_faults"] == e["virt"]["guest_faults"] == sv["injected"]
PY
fi
# the vm.* keys are the flags' defaults: the same run either way
same() { # same DESCRIPTION "ARGS A" "ARGS B"
    local a b
    # shellcheck disable=SC2086
    a=$("$vmsim" replay --vm --limit 30000 --stats json $2 "$trace") b=$("$vmsim" replay --vm --limit 30000 --stats json $3 "$trace")
    [ -n "$a" ] && [ "$a" = "$b" ] && ok || bad "$1: '$2' and '$3' differ"
}
same "nested TLB" "--nested-tlb 64" "--set vm.nested_tlb=64"
same "host page" "--host-page 2M" "--set vm.host_page=2M"
same "second stage" "--s2 npt" "--set vm.s2=npt"
same "levels" "--levels 5 --host-levels 5" "--set vm.levels=5 --set vm.host_levels=5"
same "shadow" "--shadow" "--set vm.shadow=on"
same "flag over key" "--nested-tlb 0" "--set vm.nested_tlb=64 --nested-tlb 0"
printf 'vm.nested_tlb = 16\nvm.pwc.pde = none\n' > "$tmp/vm.ini"
same "config file" "--nested-tlb 16 --set vm.pwc.pde=none" "--config $tmp/vm.ini"
# the guest's page-walk caches and the exit cost are keys, and they change the counts
a=$("$vmsim" replay --vm --limit 30000 --stats json "$trace")
b=$("$vmsim" replay --vm --limit 30000 --stats json --set vm.pwc.pde=none --set vm.pwc.pdpte=none --set vm.pwc.pml4e=none "$trace")
c=$("$vmsim" replay --vm --limit 30000 --stats json --set vm.cost.exit=5000 "$trace")
if command -v python3 >/dev/null; then
    python3 - "$a" "$b" "$c" <<'PY' && ok || bad "vm.pwc.* / vm.cost.exit"
import json, sys
a, b, c = (json.loads(x) for x in sys.argv[1:])
assert b["walk"]["pwc_hits"] == 0 < a["walk"]["pwc_hits"], (a["walk"], b["walk"])
assert b["virt"]["guest_refs"] > a["virt"]["guest_refs"]
assert c["virt"]["exit_cycles"] == 5000 * c["virt"]["exits"] and a["virt"]["exit_cycles"] == 1200 * a["virt"]["exits"]
assert b["config"]["vm.pwc.pde"] == "none" and a["config"]["vm.pwc.pde"] == a["config"]["pwc.pde"]
PY
fi
# with data caches, every walk reference (guest and second-stage) is a cache access:
# cache.walk_refs adds up to walk.mem_refs, natively, nested and under shadow paging
if command -v python3 >/dev/null; then
    cn=$("$vmsim" replay --vm --limit 30000 --stats json --set cache=skylake --s2 none "$trace")
    ce=$("$vmsim" replay --vm --limit 30000 --stats json --set cache=skylake "$trace")
    ct=$("$vmsim" replay --vm --limit 30000 --stats json --set cache=skylake --nested-tlb 64 "$trace")
    cs=$("$vmsim" replay --vm --limit 30000 --stats json --set cache=skylake --shadow "$trace")
    python3 - "$cn" "$ce" "$ct" "$cs" "$a" <<'PY' && ok || bad "replay --vm with caches"
import json, sys
n, e, t, s, plain = (json.loads(x) for x in sys.argv[1:])
for r in (n, e, t, s):
    assert sum(r["cache"]["walk_refs"].values()) == r["walk"]["mem_refs"] > 0, (r["cache"]["walk_refs"], r["walk"])
assert e["walk"]["mem_refs"] == e["virt"]["guest_refs"] + e["virt"]["s2_refs"]
assert sum(e["cache"]["walk_refs"].values()) > sum(n["cache"]["walk_refs"].values())
assert sum(t["cache"]["walk_refs"].values()) < sum(e["cache"]["walk_refs"].values())
# the same walks as without caches; only their cost differs
assert e["walk"] == plain["walk"] and e["cycles"] != plain["cycles"], (e["walk"], plain["walk"])
PY
fi
# Arm guests: AArch64 stage 1 over Arm Stage 2, in explain and replay
nopwc="--set vm.pwc.pde=none --set vm.pwc.pdpte=none --set vm.pwc.pml4e=none"
# shellcheck disable=SC2086
a64=$("$vmsim" explain --nested --arch aarch64 $nopwc --stats json)
grep -q 'VTTBR_EL2 = 0x0001' <<<"$a64" && grep -q 'guest level 0 descriptor @IPA' <<<"$a64" &&
    grep -q 'S2 L3 *entry' <<<"$a64" && grep -q '"mem_refs":24' <<<"$a64" && ok || bad "explain --nested --arch aarch64 (4+4: 24)"
# shellcheck disable=SC2086
"$vmsim" explain --nested --arch aarch64 --host-levels 3 $nopwc --stats json | grep -q '"mem_refs":19' && ok ||
    bad "explain --nested --arch aarch64 --host-levels 3 (4+3: 19)"
"$vmsim" explain --nested --arch aarch64 --map 0x12000=0x50000:r --access write 0x12345 | grep -q 'guest stage 1 abort.*permission fault' &&
    ok || bad "explain --nested --arch aarch64: a guest permission fault"
"$vmsim" explain --nested --s2 arm >/dev/null 2>&1; [ $? -eq 2 ] && ok || bad "--s2 arm on x86-64 accepted"
if command -v python3 >/dev/null; then
    ra=$("$vmsim" replay --vm --arch aarch64 --limit 30000 --stats json "$trace")
    rb=$("$vmsim" replay --vm --arch aarch64 --host-levels 3 --limit 30000 --stats json "$trace")
    rc2=$("$vmsim" replay --vm --arch aarch64 --limit 30000 --stats json --set cache=skylake --nested-tlb 64 "$trace")
    rn=$("$vmsim" replay --vm --arch aarch64 --s2 none --limit 30000 --stats json "$trace")
    rs=$("$vmsim" replay --vm --arch aarch64 --shadow --limit 30000 --stats json "$trace")
    python3 - "$ra" "$rb" "$rc2" "$rn" "$rs" <<'PY' && ok || bad "replay --vm --arch aarch64"
import json, sys
a, b, c, n, s = (json.loads(v) for v in sys.argv[1:])
# shadow paging on AArch64: one dimension (fewer references than Stage 2), more exits
# (shadow misses and trapped stores to the write-protected guest tables), the same faults
sv = s["virt"]
assert s["references"] == 30000 and s["failed"] == 0 and sv["shadow"] is True
assert s["config"]["arch"] == "aarch64" and s["walk"]["mem_refs"] < a["walk"]["mem_refs"]
assert sv["exits"] == sv["exits_pf"] + sv["exits_ptwrite"] + sv["exits_tlbi"] > a["virt"]["exits"]
assert sv["exits_ptwrite"] > 0 and sv["guest_faults"] == a["virt"]["guest_faults"] == sv["injected"]
# the native AArch64 baseline: the same pager on TTBR0_EL1 tables, one stage
assert n["config"]["arch"] == "aarch64" and n["virt"] is None and n["failed"] == 0
assert n["pager_faults"] == a["virt"]["guest_faults"] > 0
assert 0 < n["walk"]["mem_refs"] <= 4 * n["walks"] < a["walk"]["mem_refs"], (n["walk"], a["walk"])
for r in (a, b, c):
    assert r["references"] == 30000 and r["failed"] == 0, r["failed"]
    assert r["config"]["arch"] == "aarch64" and r["config"]["vm.s2"] == "arm"
    assert r["virt"]["exits"] > 0 and r["virt"]["guest_faults"] > 0
    assert r["walk"]["mem_refs"] == r["virt"]["guest_refs"] + r["virt"]["s2_refs"]
# a 3-level stage 2 reads fewer second-stage entries than a 4-level one
assert b["virt"]["s2_refs"] < a["virt"]["s2_refs"], (b["virt"], a["virt"])
assert sum(c["cache"]["walk_refs"].values()) == c["walk"]["mem_refs"] and c["virt"]["s2_tlb_hits"] > 0
PY
fi
"$vmsim" replay --vm --arch aarch64 --s2 ept "$trace" >/dev/null 2>&1; [ $? -eq 2 ] && ok || bad "replay --vm --arch aarch64 --s2 ept accepted"
"$vmsim" replay --vm --arch aarch64 --s2 none --levels 5 "$trace" >/dev/null 2>&1; [ $? -eq 2 ] && ok ||
    bad "replay --vm --arch aarch64 --s2 none --levels 5 accepted"
cfg=$("$vmsim" config --set vm.nested_tlb=32x4 --set vm.s2=npt)
for k in "vm.s2 = npt" "vm.nested_tlb = 32x4:lru" "vm.pwc.pde = " "vm.levels = 4" "vm.host_page = 4K" "vm.cost.exit = 1200"; do
    grep -q "^$k" <<<"$cfg" && ok || bad "vmsim config lacks '$k'"
done
"$vmsim" config --keys | grep -q '^vm.nested_tlb' && ok || bad "config --keys lacks vm.nested_tlb"
"$vmsim" config --set vm.host_page=3K >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] && grep -q "vm.host_page" "$tmp/err" && ok || bad "bad vm.host_page accepted"
"$vmsim" replay --vm --set vm.bogus=1 "$trace" >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] && grep -q "vm.bogus" "$tmp/err" && ok || bad "unknown vm key accepted"
# explain --nested takes the keys too: 2 MiB host pages read 19 entries cold on tiny
"$vmsim" explain --nested --preset tiny --set vm.host_page=2M --stats json | grep -q '"mem_refs":19' && ok || bad "explain --nested --set vm.host_page=2M"
# deterministic: the same run twice is byte-identical
a=$("$vmsim" replay --vm --limit 20000 --stats json "$trace") b=$("$vmsim" replay --vm --limit 20000 --stats json "$trace")
[ "$a" = "$b" ] && ok || bad "replay --vm not deterministic"
"$vmsim" replay --vm --help | grep -q 'usage: vmsim replay --vm' && ok || bad "replay --vm --help"
for args in "replay --vm --s2 vmx $trace" "replay --vm --levels 3 $trace" "replay --vm --host-page 3K $trace" \
            "replay --vm" "replay --vm /nonexistent/trace.vmt"; do
    # shellcheck disable=SC2086
    "$vmsim" $args >/dev/null 2>"$tmp/err"
    rc=$?
    if [ $rc -ne 0 ] && [ -s "$tmp/err" ]; then ok; else bad "'$args' exit $rc"; fi
done
finish "virt"
