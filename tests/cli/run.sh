#!/usr/bin/env bash
# Golden end-to-end tests of `vmsim run` (and `vmsim` alone, the demonstration), exit
# codes, error messages and the JSON contract names.
# Usage: run.sh PATH/TO/vmsim   (ctest passes it; VMS_SOURCE_DIR points at the tree)
. "$(dirname "$0")/lib/common.sh" "$1"

golden run_demo
for s in files threads segv swap smp protect vm vm_arm; do
    golden "run_$s" run "$src/examples/scenarios/$s.scn"
done
# exec of a real program image (issue 16 item 15): /bin/true's segments and ld.so are
# mapped from their files; the first fetch at the entry is a major fault (addresses and
# sizes depend on the host's /bin/true, so no golden).
"$vmsim" run "$src/examples/scenarios/exec.scn" >"$tmp/exec" 2>&1 &&
    grep -q "segments mapped from the file, entry 0x" "$tmp/exec" &&
    grep -q "/lib64/ld-linux-x86-64.so.2" "$tmp/exec" &&
    grep -q "^fetch sh 0x[0-9a-f]*; 1 page fault (major" "$tmp/exec" && ok || { bad "exec.scn"; cat "$tmp/exec" >&2; }
printf 'spawn a\nexec a %s\n' "$src/README.md" >"$tmp/notelf.scn"
"$vmsim" run "$tmp/notelf.scn" >"$tmp/out" 2>&1; rc=$?
[ $rc -ne 0 ] && grep -q "README.md: not an ELF file" "$tmp/out" && ok || { bad "exec of a non-ELF file (exit $rc)"; cat "$tmp/out" >&2; }
# Protection as the kernel uses it: with SMAP off the stray kernel accesses go through
# (their `expect error` fails); without PKE there are no keys (pkey_alloc refused).
"$vmsim" run -q --set kernel.smap=off "$src/examples/scenarios/protect.scn" >"$tmp/p" 2>&1
grep -q 'protect.scn:11: expect failed: expected the call to fail, it succeeded' "$tmp/p" &&
    grep -q 'expected "user data", got "evil data"' "$tmp/p" && ok || bad "kernel.smap=off"
"$vmsim" run -q --set kernel.pke=off "$src/examples/scenarios/protect.scn" >"$tmp/p" 2>&1
grep -q "pkey_alloc: no protection keys" "$tmp/p" && ok || bad "kernel.pke=off"
# A fork out of frames says so (issue 16 item 9): 40 forks of a process filling 2 MiB.
{ printf 'set ram=2M\nspawn a\nmmap a auto 1800K rw as h\ntouch a h 1800K write\n'
  for i in $(seq 1 40); do printf 'fork a c%d\n' "$i"; done; } >"$tmp/forks.scn"
"$vmsim" run "$tmp/forks.scn" >"$tmp/out" 2>&1
grep -q "fork a c40 -> error: fork: out of frames while copying page tables" "$tmp/out" && ok ||
    { bad "fork out of frames"; tail -5 "$tmp/out" >&2; }
# The same run twice is byte-identical (determinism), and a new seed changes addresses.
"$vmsim" >"$tmp/a"; "$vmsim" >"$tmp/b"
cmp -s "$tmp/a" "$tmp/b" && ok || bad "demo not deterministic"
"$vmsim" run --set seed=9 "$src/examples/scenarios/demo.scn" >"$tmp/c"
cmp -s "$tmp/a" "$tmp/c" && bad "seed does not change ASLR" || ok

# The same kernel on RISC-V (Sv39, Sv48, Sv57): every expectation holds and the kernel takes
# the same page faults as on x86-64 (the summary line of -q).
for s in demo files threads segv swap nic_iommu smp; do
    "$vmsim" run -q "$src/examples/scenarios/$s.scn" >"$tmp/x86" 2>&1
    for lv in 3 4 5; do
        "$vmsim" run -q --set arch=riscv64 --set levels=$lv "$src/examples/scenarios/$s.scn" >"$tmp/rv" 2>&1
        rc=$?
        if [ $rc -eq 0 ] && [ "$(grep -- '-- page faults' "$tmp/rv")" = "$(grep -- '-- page faults' "$tmp/x86")" ] &&
            grep -q -- '-- page faults' "$tmp/rv"; then ok; else bad "riscv64 levels $lv $s (exit $rc)"; cat "$tmp/rv" >&2; fi
    done
done

# Sv39's own user layout (TASK_SIZE 2^38): every mapping of the demo lies below it.
"$vmsim" run --preset sifive-u74 "$src/examples/scenarios/demo.scn" >"$tmp/u74" 2>&1 && ok || bad "sifive-u74 demo"
grep -q 'mmap shell auto 64K rw anon private -> 0x3f' "$tmp/u74" && ok || bad "sifive-u74: mmap not in Sv39's user half"

# A failed expectation: exit 1, file:line, expected and actual on stderr.
printf 'spawn a\nmmap a 0x1000000 4K rw\nwrite a 0x1000000 "abc"\nread a 0x1000000 3 expect "abd"\n' >"$tmp/f.scn"
"$vmsim" run "$tmp/f.scn" >/dev/null 2>"$tmp/err"; rc=$?
[ $rc -eq 1 ] && grep -q "f.scn:4: expect failed: read a 0x1000000 3: expected \"abd\", got \"abc\"" "$tmp/err" && ok || bad "failed expect (exit $rc)"
# A syntax error: exit 2 before anything runs (no narration on stdout).
printf 'spawn a\nwrite a 0x1000 "x"\nmmap a 0x1000 4K rq\n' >"$tmp/s.scn"
"$vmsim" run "$tmp/s.scn" >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] && [ ! -s "$tmp/out" ] && grep -q "s.scn:3: expected a protection" "$tmp/err" && ok || bad "syntax error (exit $rc)"
# An unexpected segfault is reported and counted, but the run succeeds.
printf 'spawn a\nwrite a 0x1000 "x"\n' >"$tmp/u.scn"
"$vmsim" run "$tmp/u.scn" >"$tmp/out" 2>&1 && grep -q "1 unexpected faults" "$tmp/out" && ok || bad "unexpected fault"
# Configuration errors name the key; usage errors exit 2.
"$vmsim" run --set ram=16Q "$tmp/u.scn" 2>"$tmp/err" >/dev/null; rc=$?
[ $rc -eq 2 ] && grep -q "bad value '16Q' for ram" "$tmp/err" && ok || bad "bad --set (exit $rc)"
"$vmsim" run --set nokey=1 "$tmp/u.scn" 2>"$tmp/err" >/dev/null; rc=$?
[ $rc -eq 2 ] && grep -q "unknown key 'nokey'" "$tmp/err" && ok || bad "unknown key (exit $rc)"
"$vmsim" run /nonexistent.scn 2>"$tmp/err" >/dev/null; rc=$?
[ $rc -ne 0 ] && grep -q "/nonexistent.scn: cannot open" "$tmp/err" && ok || bad "missing file (exit $rc)"
"$vmsim" run --help | grep -q "usage: vmsim run" && ok || bad "run --help"
# --set ram and seed work; config round trip through a file.
"$vmsim" run --set ram=16M --set seed=3 "$src/examples/scenarios/demo.scn" | grep -q "MemTotal:          16380 kB" && ok || bad "--set ram=16M"
"$vmsim" config --set ram=16M --set tlb.l2=4K+2M:64x8:lru >"$tmp/c.ini" && "$vmsim" config --config "$tmp/c.ini" | cmp -s - "$tmp/c.ini" && ok || bad "config round trip"

# --stats json: only JSON on stdout, with the contract names.
"$vmsim" run --stats json "$src/examples/scenarios/demo.scn" >"$tmp/j" 2>/dev/null
python3 - "$tmp/j" <<'PY' && ok || bad "stats json contract"
import json, sys
d = json.load(open(sys.argv[1]))
for path in ["accesses", "cycles", "walks", "walk.mem_refs", "tlb.l1d.hits", "tlb.l1d.misses",
             "tlb.l2.hits", "tlb.l2.misses", "faults.minor", "faults.major", "faults.cow", "faults.segv"]:
    v = d
    for p in path.split("."):
        v = v[p]
    assert isinstance(v, int), path
assert d["faults"]["segv"] == 1 and d["faults"]["cow"] == 2, d["faults"]
assert d["scenario"]["expects_failed"] == 0
PY

# Many cores (issue 13 contract): config keys cores (up to 256) and kernel.shootdown;
# --stats json keeps tlb_shootdown.ipis and adds tlb_shootdown.broadcasts and .cycles.
printf 'spawn a core 0\nmmap a 0x50000000 16K rw as b\nthread a t1 core 1\nthread a t2 core 2\nwrite a b "x"\nread t1 b 1\nread t2 b 1\nmprotect a b 16K r\n' >"$tmp/smp.scn"
for mode in ipi broadcast auto; do
    "$vmsim" run --stats json --set cores=256 --set kernel.shootdown=$mode "$tmp/smp.scn" >"$tmp/j" 2>/dev/null
    python3 - "$tmp/j" "$mode" <<'PY' && ok || bad "shootdown json ($mode)"
import json, sys
d, mode = json.load(open(sys.argv[1])), sys.argv[2]
s = d["tlb_shootdown"]
assert all(isinstance(s[k], int) for k in ("ipis", "broadcasts", "cycles")), s
assert s["cycles"] > 0, s
if mode == "ipi":
    assert s["ipis"] == 2 and s["broadcasts"] == 0, s
else:  # broadcast, and auto with the mm on 3 cores
    assert s["ipis"] == 0 and s["broadcasts"] == 1, s
assert len(d["cores"]) == 256
PY
done
"$vmsim" run --set cores=257 "$tmp/smp.scn" >/dev/null 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] && grep -q "cores" "$tmp/err" && ok || bad "cores=257 accepted (exit $rc)"
"$vmsim" run --set kernel.shootdown=sometimes "$tmp/smp.scn" >/dev/null 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] && grep -q "kernel.shootdown" "$tmp/err" && ok || bad "kernel.shootdown=sometimes accepted (exit $rc)"

# Memory pressure: the keys `swap` and `policy` and the JSON names swap.ins, swap.outs.
for pol in fifo lru clock random twolist; do
    "$vmsim" run --stats json --set swap=16M --set policy=$pol "$src/examples/scenarios/swap.scn" >"$tmp/j" 2>/dev/null
    python3 - "$tmp/j" "$pol" <<'PY' && ok || bad "swap json ($pol)"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["swap"]["outs"] > 0 and d["swap"]["ins"] >= 1, d["swap"]
assert d["swap"]["total_pages"] == 4095, d["swap"]
assert d["reclaim"]["policy"] == sys.argv[2] and d["reclaim"]["reclaimed"] > 0, d["reclaim"]
assert d["faults"]["major"] >= 1 and 0 <= d["thrashing"]["paging_permille"] <= 1000
assert d["scenario"]["expects_failed"] == 0
PY
done
"$vmsim" run --set swap=0 "$src/examples/scenarios/swap.scn" 2>/dev/null | grep -q "SwapTotal:             0 kB" && ok || bad "swap=0"
"$vmsim" run --set policy=opt "$src/examples/scenarios/swap.scn" >/dev/null 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] && grep -q "policy 'opt' needs the future" "$tmp/err" && ok || bad "policy=opt without an oracle (exit $rc)"
"$vmsim" run --set policy=belady "$tmp/u.scn" 2>"$tmp/err" >/dev/null; rc=$?
[ $rc -eq 2 ] && grep -q "bad value 'belady' for policy" "$tmp/err" && ok || bad "unknown policy (exit $rc)"

# The same kernel on an AArch64 machine (--set arch=aarch64, and the cortex-a76 preset):
# every scenario's expectations hold (rogue_no_iommu pokes x86-64 PTE values, so not it).
for s in demo files threads segv swap nic_iommu rogue_blocked; do
    for how in "--set arch=aarch64" "--set preset=cortex-a76"; do
        # shellcheck disable=SC2086
        "$vmsim" run $how "$src/examples/scenarios/$s.scn" >"$tmp/a64" 2>"$tmp/err"; rc=$?
        if [ $rc -eq 0 ] && grep -q -- "-- .* 0 failed; 0 unexpected faults; 0 errors" "$tmp/a64"; then ok; else bad "aarch64 $s ($how, exit $rc)"; fi
    done
done
"$vmsim" run --set arch=aarch64 "$src/examples/scenarios/demo.scn" >"$tmp/a64"
grep -q "TTBR0_EL1: table" "$tmp/a64" && grep -q "level 3 table .* page AttrIndx" "$tmp/a64" && ok || bad "aarch64 show walk"
grep -q "error code 0x9200004f" "$tmp/a64" && ok || bad "aarch64 SIGSEGV with its ESR_EL1"

finish "run"
