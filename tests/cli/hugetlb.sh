#!/usr/bin/env bash
# hugetlb from the command line (docs/HUGEPAGES.md "hugetlbfs pools"): the examples against
# their goldens, the boot options as Linux's command line reads them, and syntax errors.
# Usage: hugetlb.sh PATH/TO/vmsim   (ctest passes it; VMS_SOURCE_DIR points at the tree)
. "$(dirname "$0")/lib/common.sh" "$1"

golden run_hugetlb_1g run "$src/examples/scenarios/hugetlb_1g.scn"
golden run_hugetlbfs run "$src/examples/scenarios/hugetlbfs.scn"

# A scenario's hugetlbfs files are the kernel's, never the host's: nothing appears under
# the mount point's path on the host (run from an empty directory).
mkdir "$tmp/cwd" && (cd "$tmp/cwd" && "$vmsim" run "$src/examples/scenarios/hugetlbfs.scn" >/dev/null 2>&1)
[ -z "$(ls -A "$tmp/cwd")" ] && [ ! -e /mnt/huge/buffer ] && ok || bad "hugetlbfs touched the host"

# hugepagesz=1G hugepages=N pairs in --set order, and default_hugepagesz=1G making a plain
# hugepages count 1 GiB pages (meminfo's HugePages_* are then the 1 GiB pool's).
printf '%s\n' 'show hugepages' 'show meminfo' >"$tmp/s.scn"
"$vmsim" run --set ram=4G --set hugepagesz=1G --set hugepages=1 --set hugepagesz=2M \
    --set hugepages=3 "$tmp/s.scn" >"$tmp/out" 2>&1
grep -q "^hugepages-2048kB nr_hugepages 3 " "$tmp/out" &&
    grep -q "^hugepages-1048576kB nr_hugepages 1 " "$tmp/out" &&
    grep -q "^HugePages_Total:       3$" "$tmp/out" && ok || { bad "hugepagesz pairs"; cat "$tmp/out" >&2; }
"$vmsim" run --set ram=4G --set hugepages=2 --set default_hugepagesz=1G "$tmp/s.scn" >"$tmp/out" 2>&1
grep -q "^hugepages-1048576kB nr_hugepages 2 " "$tmp/out" && grep -q "^HugePages_Total:       2$" "$tmp/out" &&
    grep -q "^Hugepagesize:    1048576 kB$" "$tmp/out" && ok || { bad "default_hugepagesz"; cat "$tmp/out" >&2; }
# vm.nr_hugepages is the default pool's; the sysfs file names its pool.
printf '%s\n' 'sysctl vm.nr_hugepages=1' 'sysctl /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages=5' \
    'show hugepages' >"$tmp/s.scn"
"$vmsim" run --set ram=4G --set default_hugepagesz=1G "$tmp/s.scn" >"$tmp/out" 2>&1
grep -q "^sysctl vm.nr_hugepages=1 -> 1 persistent huge page$" "$tmp/out" &&
    grep -q "^sysctl hugepages-2048kB/nr_hugepages=5 -> 5 persistent huge pages$" "$tmp/out" &&
    grep -q "^hugepages-1048576kB nr_hugepages 1 " "$tmp/out" && ok || { bad "sysctl per size"; cat "$tmp/out" >&2; }

# Syntax errors name the file, the line and what was expected.
err_case() { # err_case TEXT EXPECTED-MESSAGE
    printf '%b' "$1" >"$tmp/e.scn"
    "$vmsim" run "$tmp/e.scn" >/dev/null 2>"$tmp/err"; local rc=$?
    [ $rc -eq 2 ] && grep -qF "$2" "$tmp/err" && ok || { bad "error for '$1' (exit $rc)"; cat "$tmp/err" >&2; }
}
err_case 'sysctl /sys/kernel/mm/hugepages/hugepages-4kB/nr_hugepages=1\n' "e.scn:1: expected vm.nr_hugepages"
err_case 'set hugepagesz=4M\n' "bad value '4M' for hugepagesz: expected 2M or 1G"
err_case 'mount tmpfs /mnt\n' "e.scn:1: expected 'mount hugetlbfs PATH [pagesize=2M|1G]'"
err_case 'mount hugetlbfs mnt\n' "e.scn:1: expected an absolute path, got 'mnt'"
err_case 'mount hugetlbfs /mnt pagesize=4K\n' "e.scn:1: expected pagesize=2M or pagesize=1G, got 'pagesize=4K'"
err_case 'truncate /mnt/huge/x\n' "e.scn:1: expected 'truncate PATH LEN'"
err_case 'unlink\n' "e.scn:1: expected 'unlink PATH'"
# Run-time errors: a file off any mount, a second mount, mmap of a 1 GiB file with no pool.
printf '%s\n' 'mount hugetlbfs /mnt/h' 'mount hugetlbfs /mnt/h expect error' 'unlink /tmp/x expect error' \
    'truncate /mnt/h/none 2M expect error' 'mount hugetlbfs /mnt/g pagesize=1G' 'spawn p' \
    'mmap p auto 1G rw file=/mnt/g/f shared expect error' 'mmap p auto 1G rw file=/mnt/g/f shared noreserve as f' \
    'write p f "x"' >"$tmp/r.scn"
"$vmsim" run "$tmp/r.scn" >"$tmp/out" 2>&1; rc=$?
grep -q "^mount hugetlbfs /mnt/h pagesize=2M -> error: hugetlbfs: /mnt/h is already mounted$" "$tmp/out" &&
    grep -q "^unlink /tmp/x -> error: unlink /tmp/x: only files on a hugetlbfs mount$" "$tmp/out" &&
    grep -q "^truncate /mnt/h/none 2M -> error: truncate /mnt/h/none: no such file$" "$tmp/out" &&
    grep -q "mmap: ENOMEM: 1 huge pages to reserve" "$tmp/out" &&
    grep -q "SIGBUS at 0x" "$tmp/out" && ok || { bad "hugetlbfs run-time errors (exit $rc)"; cat "$tmp/out" >&2; }

finish "hugetlb"
