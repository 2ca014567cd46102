# shellcheck shell=bash
# What every end-to-end test of the CLI (tests/cli/*.sh) starts with. Each sources it first:
#     . "$(dirname "$0")/lib/common.sh" "$1"
# with $1 the vmsim binary (ctest passes it; VMS_SOURCE_DIR points at the tree). It sets
#     vmsim   the binary, as an absolute path (a test may cd)
#     src     the source tree; golden: its tests/golden
#     tmp     a scratch directory, removed when the test exits
#     pass, fail and ok/bad to count checks (bad prints FAIL: and its arguments)
# and defines golden and finish below. (It lives in lib/ so that ctest's glob of
# tests/cli/*.sh does not take it for a test.)
set -u
if [ $# -lt 1 ] || [ ! -x "$1" ]; then
    echo "usage: $(basename "$0") PATH/TO/vmsim" >&2
    exit 2
fi
vmsim=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
src=${VMS_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}
golden=$src/tests/golden
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() {
    fail=$((fail + 1))
    echo "FAIL: $*" >&2
}

# golden NAME ARGS...: `vmsim ARGS` exits 0 and its stdout equals tests/golden/NAME.txt byte
# for byte (on a difference: the diff and its stderr). VMS_UPDATE_GOLDEN=1 rewrites the file.
golden() {
    local name=$1
    shift
    "$vmsim" "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    [ -n "${VMS_UPDATE_GOLDEN:-}" ] && cp "$tmp/out" "$golden/$name.txt"
    if diff -u "$golden/$name.txt" "$tmp/out" >&2 && [ $rc -eq 0 ]; then ok; else
        bad "$name (exit $rc)"
        cat "$tmp/err" >&2
    fi
}

# finish NAME: the summary line ("NAME: P passed, F failed[, S skipped]"), and the test's
# exit status (0 when nothing failed). Use it as the script's last command.
finish() {
    echo "$1: $pass passed, $fail failed${skip:+, $skip skipped}"
    [ "$fail" -eq 0 ]
}
