#!/usr/bin/env bash
# End-to-end tests of the software-managed TLB (tlb.mode = software, MIPS style):
# `vmsim explain --tlb software` goldens, its JSON counting walk.mem_refs like a radix
# walk, and `vmsim replay TRACE --set tlb.mode=software` next to the hardware walker.
# Usage: swtlb.sh PATH/TO/vmsim   (ctest passes it; VMS_SOURCE_DIR points at the tree)
. "$(dirname "$0")/lib/common.sh" "$1"
golden() {
    local name=$1; shift
    if "$vmsim" "$@" | diff -u "$golden/$name.txt" - >&2; then ok; else bad "$name"; fi
}

# The seeds' two examples, refilled by the kernel's handler: a refill, then (the pages
# are old: A clear) a TLBL Invalid that sets A; the fetch from the rx page likewise.
golden explain_swtlb_default explain --tlb software
# A store to a read-only page passed on as a page fault; a 2 MiB page as 1 MiB halves.
golden explain_swtlb_faults explain --tlb software --preset tiny --map 0x1000=0x2000:r --map 0x7f0000200000=0x40000000/2M:rw --access write 0x1000 0x7f0000212345

# --stats json: a cold read of an old 4 KiB page costs the refill's 4 + 2 loads (the
# levels, then the even/odd pair) and the Invalid handler's 4 + 2 (the walk, the pair
# again): walk.mem_refs 11, with one refill and one invalid.
json=$("$vmsim" explain --tlb software --preset tiny --map 0x5000=0x6000:rw --stats json 0x5000)
echo "$json" | sed -n '/^{/,$p' | python3 -c '
import json, sys
d = json.load(sys.stdin)
s = d["swtlb"]
assert s["refills"] == 1 and s["invalid"] == 1 and s["page_faults"] == 0, s
assert d["walk"]["mem_refs"] == 11, d["walk"]
assert "l2" not in d["tlb"] and d["pwc"]["lookups"] == 0, d
' && ok || bad "explain --tlb software json"
# The hardware walker on the same map: 4 references, no swtlb member.
"$vmsim" explain --preset tiny --map 0x5000=0x6000:rw --stats json 0x5000 | sed -n '/^{/,$p' |
    python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["walk"]["mem_refs"]==4 and "swtlb" not in d, d' &&
    ok || bad "explain hardware json"
# Bad values.
for args in "explain --tlb firmware 0x1" "explain --tlb software --arch riscv64 0x1"; do
    # shellcheck disable=SC2086
    "$vmsim" $args >/dev/null 2>"$tmp/err"
    rc=$?
    if [ $rc -eq 2 ] && [ -s "$tmp/err" ]; then ok; else bad "'$args' exit $rc"; fi
done

# The same trace with the hardware walker and with the refill handler: both complete,
# the software run counts refills and handler cycles, and is deterministic.
trace=$src/examples/traces/ls.vmt
hw=$("$vmsim" replay "$trace" --stats json 2>/dev/null)
sw=$("$vmsim" replay "$trace" --set tlb.mode=software --stats json 2>/dev/null)
sw2=$("$vmsim" replay "$trace" --set tlb.mode=software --stats json 2>/dev/null)
[ "$sw" = "$sw2" ] && ok || bad "software replay is not deterministic"
# The fast path (batches) is the same model as --slow (one access at a time): Random
# reads the clock inside a batch.
slow=$("$vmsim" replay "$trace" --set tlb.mode=software --stats json --slow 2>/dev/null)
[ "$sw" = "$slow" ] && ok || bad "software replay: fast path and --slow differ"
python3 - "$hw" "$sw" <<'PY' && ok || bad "replay software vs hardware"
import json, sys
hw, sw = json.loads(sys.argv[1]), json.loads(sys.argv[2])
assert "swtlb" not in hw and hw["config"].get("tlb.mode") is None, "hardware dump unchanged"
s = sw["swtlb"]
assert sw["config"]["tlb.mode"] == "software" and sw["config"]["tlb.jtlb"] == "48"
assert s["refills"] > 0 and s["refill_cycles"] > 0 and s["modified"] > 0, s
assert sw["accesses"] == hw["accesses"] and sw["replay"]["segv"] == hw["replay"]["segv"] == 0
assert sw["faults"]["cow_copy"] == hw["faults"]["cow_copy"]
assert sw["pwc"]["lookups"] == 0 and "l2" not in sw["tlb"]
PY
sw_wi=$("$vmsim" replay "$trace" --set tlb.mode=software --set kernel.tlb_refill=tlbwi --stats json 2>/dev/null)
echo "$sw_wi" | python3 -c 'import json,sys; s=json.load(sys.stdin)["swtlb"]; assert s["tlbwr"]==0 and s["tlbwi"]>=s["refills"]>0, s' &&
    ok || bad "kernel.tlb_refill=tlbwi"

finish "swtlb.sh"
