#!/usr/bin/env bash
# Huge pages from the command line (docs/HUGEPAGES.md): the khugepaged and fragmentation
# examples against their goldens, and the scenario commands' syntax errors.
# Usage: thp.sh PATH/TO/vmsim   (ctest passes it; VMS_SOURCE_DIR points at the tree)
set -u
vmsim=$1
src=${VMS_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
golden=$src/tests/golden
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }

# golden NAME ARGS...: stdout must equal tests/golden/NAME.txt byte for byte, exit 0.
golden() {
    local name=$1; shift
    "$vmsim" "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    if diff -u "$golden/$name.txt" "$tmp/out" >&2 && [ $rc -eq 0 ]; then ok; else bad "$name (exit $rc)"; cat "$tmp/err" >&2; fi
}
for s in thp_khugepaged; do
    golden "run_$s" run "$src/examples/scenarios/$s.scn"
done

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

# Syntax errors name the file, the line and what was expected.
err_case() { # err_case TEXT EXPECTED-MESSAGE
    printf '%b' "$1" >"$tmp/e.scn"
    "$vmsim" run "$tmp/e.scn" >/dev/null 2>"$tmp/err"; local rc=$?
    [ $rc -eq 2 ] && grep -qF "$2" "$tmp/err" && ok || { bad "error for '$1' (exit $rc)"; cat "$tmp/err" >&2; }
}
err_case 'khugepaged 0\n' "e.scn:1: expected a count of runs from 1 to 1000000, got '0'"
err_case 'khugepaged x\n' "e.scn:1: expected a count of runs from 1 to 1000000, got 'x'"
err_case 'khugepaged 1 2\n' "e.scn:1: expected 'khugepaged [RUNS]'"
err_case 'show buddy\n' "khugepaged or buddyinfo after 'show', got 'buddy'"

echo "thp: $pass passed, $fail failed"
[ $fail -eq 0 ]
