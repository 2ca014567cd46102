#!/usr/bin/env bash
# Golden end-to-end tests of `vmsim explain` and the program's exit codes.
# Usage: explain.sh PATH/TO/vmsim   (ctest passes it; VMS_SOURCE_DIR points at the tree)
. "$(dirname "$0")/lib/common.sh" "$1"

# golden NAME ARGS...: output must equal tests/golden/NAME.txt byte for byte.
golden() {
    local name=$1; shift
    if "$vmsim" "$@" | diff -u "$golden/$name.txt" - >&2; then ok; else bad "$name"; fi
}
golden explain_default explain
golden explain_5level_2m explain --levels 5 --map 0x7f0000200000=0x40000000/2M:rwx --access write 0x7f0000212345
golden explain_fault explain --map 0x1000=0x2000:r --access write 0x1000
golden explain_riscv_default explain --arch riscv64
golden explain_riscv_sv48_2m explain --arch riscv64 --levels 4 --map 0x7f0000200000=0x40000000/2M:rwx --access write 0x7f0000212345
golden explain_riscv_faults explain --arch riscv64 --levels 5 --map 0x1000=0x2000:r --map 0x200000=0x300000:x --map 0xffffffffff000000=0x5000:rwk --access write 0x1000 0x200000 0xffffffffff000000 0x0100000000000000
# AArch64: the Arm ARM's 2 MiB block walk (levels 0-2), the aborts with their ESR_EL1, DBM.
golden explain_a64_default explain --arch aarch64
golden explain_a64_2m_block explain --arch aarch64 --preset tiny --map 0x7f1234a00000=0x40000000/2M:rw --access write 0x7f1234a5b6c7
golden explain_a64_faults explain --arch aarch64 --map 0x1000=0x2000:ro --map 0x3000=0x4000:r --map 0xffff000000200000=0x300000:rwkg --access write 0x1000 0x3000 0x0001000000000000 0xffff000000200010
golden explain_a64_dbm explain --arch aarch64 --ha --hd --map 0x5000=0x6000:rwd --access write 0x5000

# Virtual machines: the two-dimensional walk (guest over EPT / NPT), reference by reference.
golden explain_nested_default explain --nested --preset tiny
golden explain_nested_5x5 explain --nested --preset tiny --levels 5 --host-levels 5 --map 0x7f0000001000=0x3000000 --access write 0x7f0000001abc
golden explain_nested_2m_1g explain --nested --preset tiny --host-page 1G --map 0x7f0000200000=0x40000000/2M:rw 0x7f00002abcde
golden explain_nested_npt_fault explain --nested --s2 npt --map 0x1000=0x2000:r --access write 0x1000 0x5000

# The contract (issue 10): with --preset tiny and 4 KiB pages on both stages, a cold
# walk reports walk.mem_refs 24 for 4+4 and 35 for 5+5, and 4/5 without --nested.
if command -v python3 >/dev/null; then
    for args in "4 --nested --levels 4 --host-levels 4:24" "5 --nested --levels 5 --host-levels 5:35" \
                "4 --nested --levels 4 --host-levels 5:29" "4 --levels 4:4" "5 --levels 5:5"; do
        want=${args##*:}
        set -- ${args%:*}
        shift
        # shellcheck disable=SC2068
        got=$("$vmsim" explain --preset tiny $@ --map 0x12000=0x50000 0x12345 --stats json |
              sed -n '/^{/,$p' | python3 -c 'import json,sys; print(json.load(sys.stdin)["walk"]["mem_refs"])')
        if [ "$got" = "$want" ]; then ok; else bad "explain $* mem_refs $got, want $want"; fi
    done
fi
for args in "explain --nested --levels 3 0x1" "explain --nested --host-page 4M 0x1" \
            "explain --nested --s2 vmx 0x1" "explain --nested --arch riscv64 0x1"; do
    # shellcheck disable=SC2086
    "$vmsim" $args >/dev/null 2>"$tmp/err"
    rc=$?
    if [ $rc -eq 2 ] && [ -s "$tmp/err" ]; then ok; else bad "'$args' exit $rc"; fi
done

# --access is read the same way by the x86-64, AArch64 and nested explainers.
for how in "" "--arch aarch64" "--nested"; do
    # shellcheck disable=SC2086
    "$vmsim" explain $how --access jump 0x1 >/dev/null 2>"$tmp/err"
    rc=$?
    [ $rc -eq 2 ] && grep -q "^vmsim explain: bad --access 'jump': expected read, write or exec$" "$tmp/err" &&
        ok || bad "explain $how --access jump: exit $rc, $(cat "$tmp/err")"
done

# exit codes: 0 for help, 2 for usage errors, with a message on stderr.
"$vmsim" --help >/dev/null && ok || bad "--help exit"
"$vmsim" explain --help | grep -q 'usage: vmsim explain' && ok || bad "explain --help"
"$vmsim" presets | grep -q '1536 entries = 128 sets x 12 ways' && ok || bad "presets skylake STLB"
for args in "nosuch" "explain --map nonsense 0x1" "explain --levels 3 0x1" "explain --access jump 0x1" \
            "explain --preset nonesuch 0x1" "presets nonesuch" "explain --arch nosuch 0x1" \
            "explain --arch riscv64 --levels 6 0x1" "explain --arch riscv64 --levels 2 0x1" \
            "explain --arch aarch64 --map 0x1000=0x2000:z 0x1000" "explain --arch aarch64 --asid 300 0x1"; do
    # shellcheck disable=SC2086
    "$vmsim" $args >/dev/null 2>"$tmp/err"
    rc=$?
    if [ $rc -eq 2 ] && [ -s "$tmp/err" ]; then ok; else bad "'$args' exit $rc"; fi
done

# JSON stats carry the contract names.
json=$("$vmsim" explain --stats json 0x12345 --map 0x12000=0x50000)
for key in '"accesses":' '"cycles":' '"l1d":{' '"hits":' '"misses":' '"walks":' '"mem_refs":'; do
    case $json in *"$key"*) ok ;; *) bad "json lacks $key" ;; esac
done
if command -v python3 >/dev/null; then
    echo "$json" | sed -n '/^{/,$p' | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["walks"]==1 and d["walk"]["mem_refs"]==4, d' && ok || bad "json parse/values"
fi

# With caches and DRAM: each entry read says where it was served; the first walk of the
# default example reads DRAM (cold caches), the second finds the upper entries cached.
out=$("$vmsim" explain --cache skylake --dram ddr4-3200)
case $out in *"read served by DRAM, row miss"*) ok ;; *) bad "explain --cache: no DRAM row miss" ;; esac
case $out in *"read served by DRAM, row hit"*) ok ;; *) bad "explain --cache: no DRAM row hit" ;; esac
case $out in *"read served by L1"*) ok ;; *) bad "explain --cache: no L1 hit" ;; esac
out=$("$vmsim" explain --cache off)
case $out in *"served by"*) bad "explain --cache off narrates caches" ;; *) ok ;; esac
"$vmsim" explain --cache nonesuch >/dev/null 2>&1; [ $? -eq 2 ] && ok || bad "bad --cache not a usage error"
if command -v python3 >/dev/null; then
    "$vmsim" explain --cache tiny --dram ddr5-4800 --stats json | sed -n '/^{/,$p' | python3 -c '
import json,sys; d=json.load(sys.stdin)
for k in ("hits","misses"): assert k in d["cache"]["l1d"], d["cache"]
assert "misses" in d["cache"]["llc"] and "row_hits" in d["dram"] and "row_misses" in d["dram"] and "refreshes" in d["dram"], d
' && ok || bad "explain cache json"
fi
# The contract of issue 9: a cold walk on the tiny preset (no page-walk caches) reads one
# entry per level: Sv39 3, Sv48 4, Sv57 5.
if command -v python3 >/dev/null; then
    for lv in 3 4 5; do
        "$vmsim" explain --arch riscv64 --levels $lv --preset tiny --map 0x12000=0x50000 0x12345 \
            --stats json | sed -n '/^{/,$p' |
            python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["walks"]==1 and d["walk"]["mem_refs"]=='$lv', d' &&
            ok || bad "riscv64 levels $lv: walk.mem_refs"
    done
fi
# The contract: with --preset tiny (no walk caches) a cold AArch64 4 KiB-granule walk
# reads 4 descriptors, a 2 MiB block 3.
a64_refs() { # a64_refs EXPECTED VA MAP
    local json
    json=$("$vmsim" explain --arch aarch64 --preset tiny --stats json "$2" --map "$3")
    echo "$json" | sed -n '/^{/,$p' | python3 -c "import json,sys; d=json.load(sys.stdin); assert d['walks']==1 and d['walk']['mem_refs']==$1, d" && ok || bad "aarch64 json mem_refs $1 for $3"
}
if command -v python3 >/dev/null; then
    a64_refs 4 0x12345 0x12000=0x50000
    a64_refs 3 0x40012345 0x40000000=0x200000/2M
fi
"$vmsim" explain --arch aarch64 --help | grep -q 'usage: vmsim explain --arch aarch64' && ok || bad "aarch64 --help"

# SMEP, SMAP and protection keys (issue 16 item 14): each control denies what it should.
"$vmsim" explain --supervisor 0x12345 | grep -q 'result: physical 0x50345' && ok || bad "supervisor read, no SMAP"
"$vmsim" explain --supervisor --smap 0x12345 | grep -q 'error code 0x1 (P=1 protection)' && ok || bad "--smap"
"$vmsim" explain --supervisor --smap --stac 0x12345 | grep -q 'result: physical 0x50345' && ok || bad "--smap --stac"
"$vmsim" explain --supervisor --smep --access exec --map 0x12000=0x50000:rwx 0x12345 |
    grep -q 'error code 0x11 (P=1 protection I)' && ok || bad "--smep"
"$vmsim" explain --pke --pkru 0x8 --access write --map 0x12000=0x50000:rwp1 0x12345 |
    grep -q 'error code 0x27 (P=1 protection W U PK)' && ok || bad "--pke write-disabled key"
"$vmsim" explain --pke --pkru 0x8 --map 0x12000=0x50000:rwp1 0x12345 | grep -q 'result: physical 0x50345' &&
    ok || bad "--pke read of a write-disabled key"
"$vmsim" explain --pkru 0x8 --access write --map 0x12000=0x50000:rwp1 0x12345 | grep -q 'result: physical' &&
    ok || bad "PKRU without CR4.PKE"
"$vmsim" explain --arch riscv64 --smap 0x12345 >/dev/null 2>&1; [ $? -eq 2 ] && ok || bad "--smap on riscv64"

finish "explain"
