#!/usr/bin/env bash
# The hashed and inverted translation designs from the command line (docs/arch/hashed.md,
# docs/arch/inverted.md): `vmsim explain --design` goldens and its JSON references, the
# `design` key on replay and config, and its errors.
# Usage: design.sh PATH/TO/vmsim   (ctest passes it; VMS_SOURCE_DIR points at the tree)
. "$(dirname "$0")/lib/common.sh" "$1"
ex=$src/examples/traces
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

golden() {
    local name=$1; shift
    if "$vmsim" "$@" | diff -u "$golden/$name.txt" - >&2; then ok; else bad "$name"; fi
}
# The seeds' two pages, each found in its primary group's slot 0; a write to a read-only
# page (the kernel refuses to enter it) and an unmapped page (16 references, a fault).
golden explain_design_hashed explain --design hashed --preset tiny
golden explain_design_hashed_faults explain --design hashed --preset tiny --map 0x7000=0x9000:r --access write 0x7010 0x8000
golden explain_design_inverted explain --design inverted --preset tiny

# walk.mem_refs counts the searches' entries as the radix walks count theirs: with the
# tiny preset (no PWC) a cold radix walk reads 4; a hit in slot 0 reads 1; the IPT reads
# the anchor and one chain entry, 2; a miss of the HPT reads both groups, 16.
refs() { sed -n '/^{/,$p' | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["walks"], d["walk"]["mem_refs"])'; }
[ "$("$vmsim" explain --preset tiny --stats json 0x12345 --map 0x12000=0x50000 | refs)" = "1 4" ] && ok || bad "radix refs"
[ "$("$vmsim" explain --design hashed --preset tiny --stats json 0x12345 --map 0x12000=0x50000 | refs)" = "1 1" ] && ok || bad "hashed refs"
[ "$("$vmsim" explain --design inverted --preset tiny --stats json 0x12345 --map 0x12000=0x50000 | refs)" = "1 2" ] && ok || bad "inverted refs"
[ "$("$vmsim" explain --design hashed --preset tiny --stats json 0x5000 --map 0x12000=0x50000 | refs)" = "1 16" ] && ok || bad "hashed miss refs"

# replay: the same trace under each design; the radix JSON has no design object (as
# before the designs), the others report their table and references per walk.
for d in radix hashed inverted; do
    "$vmsim" replay "$ex/ls.vmt" --set design=$d --stats json >"$tmp/$d.json" || bad "replay design=$d"
done
python3 - "$tmp" <<'PY' && ok || bad "replay designs"
import json, sys
r = {d: json.load(open(f"{sys.argv[1]}/{d}.json")) for d in ("radix", "hashed", "inverted")}
assert "design" not in r["radix"] and "design" not in r["radix"]["config"]
for d in ("hashed", "inverted"):
    x = r[d]["design"]
    assert x["name"] == d and r[d]["config"]["design"] == d, x
    assert x["walks"] == r[d]["walks"] and x["walk_mem_refs"] == r[d]["walk"]["mem_refs"], x
    assert x["table_bytes"] > 0 and x["fills"] > 0, x
    # the same program: the same accesses and page faults, whatever the walker reads
    assert r[d]["accesses"] == r["radix"]["accesses"], d
    assert r[d]["faults"]["total"] == r["radix"]["faults"]["total"], d
PY
"$vmsim" config --set design=inverted | grep -qx 'design = inverted' && ok || bad "config lists design"
"$vmsim" config | grep -q '^design' && bad "config lists design=radix" || ok
"$vmsim" config --keys | grep -q '^design ' && ok || bad "config --keys lacks design"

# The kernel's own mappings: a NIC's registers (ioremap) are bolted into the HPT, so the
# device scenario runs as under radix; the inverted table has no entry for them.
"$vmsim" run --set design=hashed "$src/examples/scenarios/nic_iommu.scn" >"$tmp/nic" 2>&1 &&
    grep -q '8 expectations met, 0 failed' "$tmp/nic" && ok || bad "nic_iommu under hashed"
"$vmsim" run --set design=inverted "$src/examples/scenarios/nic_iommu.scn" >"$tmp/nic" 2>&1
grep -q 'design inverted: an inverted page table has one entry per frame of RAM' "$tmp/nic" && ok ||
    bad "nic_iommu under inverted: $(head -3 "$tmp/nic")"
# With caches the searches' entries go through the hierarchy as a radix walk's do.
for d in hashed inverted; do
    "$vmsim" replay "$ex/ls.vmt" --set design=$d --set cache=skylake --stats json >"$tmp/c.json" &&
        python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["design"]["walk_mem_refs"] > 0' "$tmp/c.json" &&
        ok || bad "replay design=$d cache=skylake"
done

# errors: a bad name, a design on another architecture, a design without PCIDs.
for args in "explain --design hash 0x1" "explain --design hashed --arch riscv64 0x1"; do
    # shellcheck disable=SC2086
    "$vmsim" $args >/dev/null 2>"$tmp/err"
    rc=$?
    if [ $rc -eq 2 ] && [ -s "$tmp/err" ]; then ok; else bad "'$args' exit $rc"; fi
done
"$vmsim" replay "$ex/ls.vmt" --set design=hashed --set kernel.pcid=off >/dev/null 2>"$tmp/err" && bad "design without pcid ran" || ok
grep -q 'kernel.pcid' "$tmp/err" && ok || bad "design without pcid: $(cat "$tmp/err")"
"$vmsim" replay "$ex/ls.vmt" --set arch=riscv64 --set design=hashed >/dev/null 2>"$tmp/err" && bad "design on riscv64 ran" || ok
grep -q 'x86_64' "$tmp/err" && ok || bad "design on riscv64: $(cat "$tmp/err")"

"$vmsim" replay "$ex/ls.vmt" --set tlb.mode=software --set design=hashed >/dev/null 2>"$tmp/err" && bad "design with a software TLB ran" || ok
grep -q 'software-managed TLB' "$tmp/err" && ok || bad "design with tlb.mode=software: $(cat "$tmp/err")"

finish "design"
