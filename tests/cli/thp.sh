#!/usr/bin/env bash
# Huge pages from the command line (docs/HUGEPAGES.md): the khugepaged and fragmentation
# examples against their goldens, and the scenario commands' syntax errors.
# Usage: thp.sh PATH/TO/vmsim   (ctest passes it; VMS_SOURCE_DIR points at the tree)
. "$(dirname "$0")/lib/common.sh" "$1"

for s in thp_khugepaged thp_fragment; do
    golden "run_$s" run "$src/examples/scenarios/$s.scn"
done
# The mobility example, without grouping (its default) and with it.
golden run_thp_mobility run "$src/examples/scenarios/thp_mobility.scn"
golden run_thp_mobility_on run --set kernel.mobility_grouping=on "$src/examples/scenarios/thp_mobility.scn"

# khugepaged's timer off: the scenario's own `khugepaged` still collapses, the timer none.
"$vmsim" run --set khugepaged.sleep=0 "$src/examples/scenarios/thp_khugepaged.scn" >"$tmp/out" 2>&1
grep -q "^timer_runs *0$" "$tmp/out" && grep -q "^pages_collapsed *1$" "$tmp/out" && ok ||
    { bad "khugepaged.sleep=0"; cat "$tmp/out" >&2; }

# The same story on Sv39 and AArch64: two collapses, the second by the timer (which runs
# twice: the next run finds nothing left).
for how in "--set arch=riscv64 --set levels=3" "--set arch=aarch64"; do
    # shellcheck disable=SC2086
    "$vmsim" run $how "$src/examples/scenarios/thp_khugepaged.scn" >"$tmp/out" 2>&1
    grep -q "^timer_runs *2$" "$tmp/out" && grep -q "^pages_collapsed *2$" "$tmp/out" && ok ||
        { bad "thp_khugepaged $how"; cat "$tmp/out" >&2; }
done

# The fragmentation example under each thp.defrag mode (--stats json): defer falls back
# once and kcompactd makes the block; madvise compacts directly for both faults; never
# falls back twice and compacts nothing.
frag_case() { # frag_case MODE FAULT_ALLOC FAULT_FALLBACK STALL KCOMPACTD_WAKE
    "$vmsim" run --stats json --set thp.defrag=$1 "$src/examples/scenarios/thp_fragment.scn" 2>/dev/null |
        tail -1 >"$tmp/j"
    grep -q "\"fault_alloc\":$2,\"fault_fallback\":$3," "$tmp/j" &&
        grep -q "\"compaction\":{\"stall\":$4,.*\"kcompactd_wake\":$5," "$tmp/j" && ok ||
        { bad "thp_fragment thp.defrag=$1"; tr ',' '\n' <"$tmp/j" | grep -A12 '"compaction"' >&2; }
}
frag_case defer 1 1 0 1
frag_case madvise 2 0 2 0
frag_case never 0 2 0 0
frag_case always 2 0 2 0
frag_case defer+madvise 2 0 2 0

# The mobility example's two writes (--stats json): without grouping a page table in every
# pageblock makes both direct compactions fail; with it both succeed.
mob_case() { # mob_case GROUPING FAULT_ALLOC FAULT_FALLBACK SUCCESS FAIL
    "$vmsim" run --stats json --set kernel.mobility_grouping=$1 \
        "$src/examples/scenarios/thp_mobility.scn" 2>/dev/null | tail -1 >"$tmp/j"
    grep -q "\"fault_alloc\":$2,\"fault_fallback\":$3," "$tmp/j" &&
        grep -q "\"compaction\":{\"stall\":2,\"success\":$4,\"migrated\":[0-9]*,\"fail\":$5," "$tmp/j" &&
        ok || { bad "thp_mobility grouping $1"; tr ',' '\n' <"$tmp/j" | grep -A12 '"compaction"' >&2; }
}
mob_case off 0 2 0 2
mob_case on 2 0 2 0

# Swapping huge pages (thp_swap.scn): split swaps 4 KiB pages of split huge pages; whole
# swaps all four out whole (one cluster each) and reads them back 4 KiB at a time.
swap_case() { # swap_case MODE SWPOUT FALLBACK SWPIN_FALLBACK MAJOR_FAULTS
    "$vmsim" run --stats json --set thp.swap=$1 "$src/examples/scenarios/thp_swap.scn" 2>/dev/null |
        tail -1 >"$tmp/j"
    grep -q "\"swpout\":$2,\"swpout_fallback\":$3,\"swpin\":0,\"swpin_fallback\":$4}" "$tmp/j" &&
        grep -q "\"major\":$5," "$tmp/j" && ok ||
        { bad "thp_swap thp.swap=$1"; tr ',' '\n' <"$tmp/j" | grep -A24 '"thp"' >&2; }
}
swap_case split 0 4 0 4
swap_case whole 4 0 4 2048

# hugetlb pools at run time: sysctl vm.nr_hugepages grows the pool, a MAP_HUGETLB mapping
# reserves from it; without a pool the mmap is refused (ENOMEM), as Linux does.
printf '%s\n' 'spawn db' 'mmap db auto 4M rw huge=2M expect error' 'sysctl vm.nr_hugepages=3' \
    'mmap db auto 4M rw huge=2M as h' 'write db h "x"' 'show meminfo' 'sysctl vm.nr_overcommit_hugepages=1' \
    'mmap db auto 4M rw huge=2M' 'show meminfo' 'sysctl vm.compact_memory=1' >"$tmp/h.scn"
"$vmsim" run "$tmp/h.scn" >"$tmp/out" 2>&1; rc=$?
[ $rc -eq 0 ] && grep -q "^sysctl vm.nr_hugepages=3 -> 3 persistent huge pages$" "$tmp/out" &&
    grep -q "^HugePages_Total:       3$" "$tmp/out" && grep -q "^HugePages_Rsvd:        1$" "$tmp/out" &&
    grep -q "^HugePages_Total:       4$" "$tmp/out" && grep -q "^HugePages_Surp:        1$" "$tmp/out" &&
    grep -q "^compact: [0-9]* pages\? migrated$" "$tmp/out" && ok || { bad "sysctl hugetlb (exit $rc)"; cat "$tmp/out" >&2; }

# Syntax errors name the file, the line and what was expected.
err_case() { # err_case TEXT EXPECTED-MESSAGE
    printf '%b' "$1" >"$tmp/e.scn"
    "$vmsim" run "$tmp/e.scn" >/dev/null 2>"$tmp/err"; local rc=$?
    [ $rc -eq 2 ] && grep -qF "$2" "$tmp/err" && ok || { bad "error for '$1' (exit $rc)"; cat "$tmp/err" >&2; }
}
err_case 'khugepaged 0\n' "e.scn:1: expected a count of runs from 1 to 1000000, got '0'"
err_case 'khugepaged x\n' "e.scn:1: expected a count of runs from 1 to 1000000, got 'x'"
err_case 'khugepaged 1 2\n' "e.scn:1: expected 'khugepaged [RUNS]'"
err_case 'sysctl vm.swappiness=1\n' "expected vm.nr_hugepages, vm.nr_overcommit_hugepages, vm.compact_memory or /sys/kernel/mm/hugepages/hugepages-2048kB|1048576kB/nr_hugepages|nr_overcommit_hugepages before '=', got 'vm.swappiness'"
err_case 'sysctl vm.compact_memory=2\n' "expected 1 after 'vm.compact_memory=', got '2'"
err_case 'sysctl vm.nr_hugepages\n' "e.scn:1: expected 'sysctl vm.nr_hugepages=N"
err_case 'compact now\n' "e.scn:1: expected 'compact'"
err_case 'show buddy\n' "khugepaged, buddyinfo, hugepages or pagetypeinfo, got 'buddy'"

finish "thp"
