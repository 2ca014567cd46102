#!/usr/bin/env bash
# Page-fault fidelity (docs/FIDELITY.md): for each program, the faults Linux takes when
# the program runs natively (perf's exceptions:page_fault_user/_kernel tracepoints,
# median of 5 runs, page cache warm; and perf's major-faults/minor-faults) against the faults vmsim counts replaying the trace
# `vmsim record` made of the same command.
# Usage: scripts/fidelity.sh [RECORD_VMSIM [REPLAY_VMSIM]]   (default build/release/vmsim)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
rec=${1:-$src/build/release/vmsim}
rep=${2:-$rec}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -O2 -o "$tmp/touch" "$src/bench/fidelity/touch.c"
head -c 1048576 /usr/lib/x86_64-linux-gnu/libc.so.6 > "$tmp/in1m"
head -c 1000000 <(cat /usr/include/*.h) > "$tmp/text"
progs=("/bin/true"
       "/bin/ls -l /usr/include"
       "$tmp/touch"
       "gzip -c $tmp/in1m"
       "sort $tmp/text"
       "/bin/sh -c /bin/true")
names=("true" "ls -l /usr/include" "touch (bench/fidelity/touch.c)" "gzip -c (1 MiB)"
       "sort (1 MB text)" "sh -c true (fork+exec)")

# Median of the perf counts over 5 runs: prints "USER KERNEL MAJOR MINOR".
med() { printf '%s\n' "$@" | sort -n | sed -n 3p; }
native() {
    local u=() k=() M=() m=()
    for _ in 1 2 3 4 5; do
        # shellcheck disable=SC2086
        out=$(perf stat -x, -e exceptions:page_fault_user,exceptions:page_fault_kernel,major-faults,minor-faults -- \
              $1 2>&1 >/dev/null | tail -4)
        u+=("$(echo "$out" | grep page_fault_user | cut -d, -f1)")
        k+=("$(echo "$out" | grep page_fault_kernel | cut -d, -f1)")
        M+=("$(echo "$out" | grep major-faults | cut -d, -f1)")
        m+=("$(echo "$out" | grep minor-faults | cut -d, -f1)")
    done
    echo "$(med "${u[@]}") $(med "${k[@]}") $(med "${M[@]}") $(med "${m[@]}")"
}

echo "| program | Linux user | Linux kernel | Linux total | vmsim total (kernel) | difference | Linux major/minor | vmsim major/minor |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for i in "${!progs[@]}"; do
    p=${progs[$i]}
    # shellcheck disable=SC2086
    $p >/dev/null 2>&1 || true # warm the page cache
    read -r u k lM lm <<< "$(native "$p")"
    # shellcheck disable=SC2086
    "$rec" record -q -o "$tmp/t.vmt" -- $p >/dev/null
    json=$("$rep" replay --layout recorded --stats json "$tmp/t.vmt")
    read -r vt vk vM vm <<< "$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]);
f=d["faults"]; print(f["total"], d["replay"]["kernel_faults"], f["major"], f["minor"])' "$json")"
    t=$((u + k))
    diff=$(python3 -c "print(f'{100.0*($vt-$t)/$t:+.1f}%')")
    echo "| ${names[$i]} | $u | $k | $t | $vt ($vk) | $diff | $lM/$lm | $vM/$vm |"
done
