#!/usr/bin/env bash
# Golden end-to-end tests of the device scenarios (docs/SCENARIO.md "Devices and DMA"):
# a NIC receiving into a process buffer through the IOMMU, a rogue device stopped by the
# IOMMU, the same device with the IOMMU off rewriting a page table; plus syntax errors,
# failed DMA expectations and the JSON members.
# Usage: devices.sh PATH/TO/vmsim   (ctest passes it; VMS_SOURCE_DIR points at the tree)
. "$(dirname "$0")/lib/common.sh" "$1"

for s in nic_iommu nic_noncoherent rogue_blocked rogue_no_iommu vm_passthrough vm_passthrough_arm; do
    "$vmsim" run "$src/examples/scenarios/$s.scn" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if diff -u "$golden/run_$s.txt" "$tmp/out" >&2 && [ $rc -eq 0 ]; then ok; else bad "$s (exit $rc)"; cat "$tmp/err" >&2; fi
done
# The kernel log lines are dmesg's DMAR format.
grep -q '^\[kernel\] DMAR: \[DMA Write NO_PASID\] Request device \[00:03.0\] fault addr 0x8000 \[fault reason 0x05\] PTE Write access is not set$' \
    "$golden/run_rogue_blocked.txt" && ok || bad "DMAR line format"

# Syntax errors name the line (exit 2, nothing runs).
printf 'device nic eth0\ndma map eth1 p 0x1000 4K\n' >"$tmp/s1.scn"
"$vmsim" run "$tmp/s1.scn" >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] && [ ! -s "$tmp/out" ] && grep -q "s1.scn:2: expected a device name defined by 'device', got 'eth1'" "$tmp/err" && ok || bad "unknown device (exit $rc)"
printf 'device raw r\nnic receive r "x"\n' >"$tmp/s2.scn"
"$vmsim" run "$tmp/s2.scn" >/dev/null 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] && grep -q "s2.scn:2: expected a nic device, 'r' is a raw" "$tmp/err" && ok || bad "wrong kind (exit $rc)"
printf 'device gpu g\n' >"$tmp/s3.scn"
"$vmsim" run "$tmp/s3.scn" >/dev/null 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] && grep -q "s3.scn:1: expected a device kind nic, blk or raw, got 'gpu'" "$tmp/err" && ok || bad "bad kind (exit $rc)"

# A failed DMA expectation: exit 1 with file:line.
printf 'device raw r\ndma r 0x1000 write "x" expect ok\n' >"$tmp/f.scn"
"$vmsim" run "$tmp/f.scn" >/dev/null 2>"$tmp/err"; rc=$?
[ $rc -eq 1 ] && grep -q "f.scn:2: expect failed: expected the DMA to be allowed, it was blocked" "$tmp/err" && ok || bad "failed dma expect (exit $rc)"
# Switching the IOMMU off with a live mapping is refused.
printf 'device raw r\nspawn p\nmmap p 0x1000000 4K rw\ndma map r p 0x1000000 4K as b\niommu off expect error\ndma unmap r b\niommu off\n' >"$tmp/o.scn"
"$vmsim" run "$tmp/o.scn" >"$tmp/out" 2>&1 && grep -q "live DMA mappings" "$tmp/out" && ok || bad "iommu off with mappings"

# The block device: read a file's sectors into a process buffer (zero copy).
printf 'hello from sector zero' >"$tmp/disk.img"; truncate -s 4096 "$tmp/disk.img"
printf 'device blk d %s\nspawn p\nmmap p 0x1000000 8K rw as buf\ndma map d p buf 8K write as io\nblk read d 0 2 io\nread p buf 22 expect "hello from sector zero"\nblk write d 0 1 io expect error\n' "$tmp/disk.img" >"$tmp/b.scn"
"$vmsim" run "$tmp/b.scn" >"$tmp/out" 2>&1 && grep -q 'blk read d sectors 0-1 into 0x100000 -> STATUS 0x1, interrupt on core 0' "$tmp/out" && ok || { bad "blk read"; cat "$tmp/out" >&2; }

# --stats json has the dma and (while devices exist) iommu members.
"$vmsim" run --stats json "$src/examples/scenarios/nic_iommu.scn" >"$tmp/j" 2>/dev/null
python3 - "$tmp/j" <<'PY' && ok || bad "stats json dma members"
import json, sys
d = json.load(open(sys.argv[1]))
m = d["dma"]
assert m["maps"] == 1 and m["unmaps"] == 1 and m["pinned_pages"] == 0, m
assert m["iotlb_invalidations"] >= 1 and m["iommu_faults"] == 3 and m["irqs"] == 2, m
assert m["table_pages"] == 0 and m["devices"] == [], m
assert d["faults"]["segv"] == 0
PY

# A rogue DMA with the IOMMU off corrupts what the kernel relies on: a PTE beyond RAM, a
# PTE to a free frame, a PTE to another page, a bogus page-directory entry. The kernel
# meets it where it consumes the entry and panics (simulated): "Kernel panic" in the
# log, exit 3, the narration up to the panicking command — never a host crash (a
# SIGSEGV in the release build, a UBSan error in rmap.c before: issue 16 #5).
for c in "0x8000 0x67f0ff0000000080:munmap victim secret 8K" \
         "0x8000 0x6700050000000080:munmap victim secret 8K" \
         "0x8000 0x67a0000000000080:exit victim" \
         "0x7400 0x2700050000000000:munmap victim secret 8K" \
         "0x8000 0x6700050000000080:fork victim child" \
         "0x8000 0x0200000000000000:munmap victim secret 8K"; do
    dma=${c%%:*} cmd=${c#*:}
    addr=${dma% *} pte=${dma#* }
    cat >"$tmp/panic.scn" <<X
iommu off
device raw rogue
spawn victim
mmap victim 0x10000000 8K rw as secret
write victim secret "password=hunter2"
write victim secret+4096 "page two"
dma rogue $addr write $pte
$cmd
echo "not reached"
X
    "$vmsim" run "$tmp/panic.scn" >"$tmp/out" 2>"$tmp/err"; rc=$?
    [ $rc -eq 3 ] && grep -q "^\[kernel\] Kernel panic - not syncing: Bad p" "$tmp/out" &&
        grep -q "^${cmd%% *} victim" "$tmp/out" && ! grep -q "not reached" "$tmp/out" &&
        grep -q "panic.scn:8: Kernel panic - not syncing" "$tmp/err" &&
        ! grep -q "Sanitizer\|runtime error" "$tmp/err" && ok ||
        { bad "rogue DMA $c: exit $rc"; cat "$tmp/err" >&2; }
done

# A rewritten table entry the kernel meets only when the processes left at the end exit
# (a PDE pointing at another table: munmap of one page frees nothing there): the panic
# at that teardown still gives exit status 3 and says so (it printed the panic, exit 0).
cat >"$tmp/teardown.scn" <<X
iommu off
device raw rogue
spawn victim
mmap victim 0x10000000 8K rw as secret
write victim secret "password=hunter2"
dma rogue 0x6000 write 0x66f0ff0000000080
munmap victim secret 4K
X
"$vmsim" run "$tmp/teardown.scn" >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc -eq 3 ] && grep -q "^-- 7 commands" "$tmp/out" &&
    grep -q "^\[kernel\] Kernel panic - not syncing: mm: 2 page-table pages left on freeing mm" "$tmp/out" &&
    grep -q "^vmsim run: Kernel panic - not syncing: mm: 2 page-table pages left .*(while the processes left at the end exited)" "$tmp/err" &&
    ! grep -q "Sanitizer\|runtime error" "$tmp/err" && ok ||
    { bad "rogue DMA found at teardown: exit $rc"; cat "$tmp/out" "$tmp/err" >&2; }
"$vmsim" run -q "$tmp/teardown.scn" >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc -eq 3 ] && grep -q "page-table pages left" "$tmp/err" && ok || bad "teardown panic with -q: exit $rc"

finish "devices"
