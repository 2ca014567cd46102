#!/usr/bin/env bash
# Runs every libFuzzer target (build/fuzz/fuzz_*, built by `make fuzz`), or the TARGETs
# named (scripts/fuzz.sh SECONDS oracle elf), for SECONDS each (default 60), starting
# from a scratch copy of its committed corpus fuzz/corpus/<parser>/.
# New interesting inputs stay in build/fuzz/corpus/<parser>/; findings are written to
# build/fuzz/crash-<parser>-*; exits non-zero if any target found one. With FUZZ_LOG_DIR
# set, libFuzzer's whole output of each target is also kept in FUZZ_LOG_DIR/<parser>.log.
# FUZZ_TIMEOUT (default 10) is libFuzzer's -timeout: seconds of wall-clock time one input
# may take. On a shared, loaded machine a nice'd fuzzer can wait that long for a CPU on an
# input that needs milliseconds: raise it there, and time a timeout-* artifact alone.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
targets=("$@")
status=0
# UBSan findings fail (the build also uses -fno-sanitize-recover=all); ASan stops at the first.
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=halt_on_error=1
for f in build/fuzz/fuzz_*; do
    [ -x "$f" ] || continue
    parser=${f##*/fuzz_}
    if [ ${#targets[@]} -gt 0 ] && [[ " ${targets[*]} " != *" $parser "* ]]; then continue; fi
    work=build/fuzz/corpus/$parser
    mkdir -p "$work"
    cp -n fuzz/corpus/"$parser"/* "$work"/ 2>/dev/null || true
    len=4096
    [ "$parser" = oracle ] && len=32768 # its seeds loop over more pages than the RAM holds
    echo "== fuzz $parser for ${secs}s"
    "$f" -max_total_time="$secs" -max_len=$len -timeout="${FUZZ_TIMEOUT:-10}" -rss_limit_mb=1024 \
        -artifact_prefix="build/fuzz/crash-$parser-" -print_final_stats=1 "$work" \
        2>&1 | tee "${FUZZ_LOG_DIR:-/dev/null}${FUZZ_LOG_DIR:+/$parser.log}" | grep -E '^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY)' \
        || status=1
    # A finding: a crash, leak, timeout or out-of-memory input (a slow-unit-* is only a note).
    for kind in crash leak timeout oom; do
        compgen -G "build/fuzz/crash-$parser-$kind-*" >/dev/null && status=1
    done
done
exit $status
