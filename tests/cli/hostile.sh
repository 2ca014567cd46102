#!/usr/bin/env bash
# Hostile and careless inputs (issue 16): each case checks the exit status, the message,
# and that no host file outside the test's own directory changed. "Outside" is modelled by
# a directory of the user's files ($home: a file a scenario names as its swap file, a
# shared-mapped document, a disk image) that every case may try to write; the scenarios
# live in their own directory ($scn) and vmsim runs in a third one ($cwd), whose contents
# must not change either. ctest runs it with the ASan+UBSan build.
# Usage: hostile.sh PATH/TO/vmsim   (ctest passes it; VMS_SOURCE_DIR points at the tree)
. "$(dirname "$0")/lib/common.sh" "$1"
home=$tmp/home scn=$tmp/scn cwd=$tmp/cwd
mkdir -p "$home" "$scn" "$cwd"
seed=${VMS_TEST_SEED:-20261122} # the random bytes of the ChampSim case (16.6)
echo "hostile: seed $seed"

# The user's files, and a fingerprint of everything outside $scn.
echo "my thesis, do not lose" > "$home/thesis.txt"
printf 'the users document, one page at least%4000s\n' . > "$home/doc.txt"
head -c 4096 /dev/zero | tr '\0' 'D' > "$home/disk.img"
fingerprint() { (cd "$tmp" && find home cwd -type f -exec sha256sum {} + | sort; find home cwd | sort); }
fingerprint > "$tmp/before"

# run NAME EXPECTED_STATUS MESSAGE [vmsim args…]: run in $cwd, check status and stderr.
run() {
    local name=$1 want=$2 msg=$3
    shift 3
    (cd "$cwd" && "$vmsim" "$@") >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    if [ $rc -ne "$want" ]; then
        bad "$name: exit $rc, expected $want"; cat "$tmp/err" >&2; return
    fi
    if [ -n "$msg" ] && ! grep -qF -- "$msg" "$tmp/err"; then
        bad "$name: no '$msg' in:"; cat "$tmp/err" >&2; return
    fi
    ok
}

# 16.1 A scenario never names a host file vmsim writes.
printf 'set ram=16M\nset swap=4M\nset swap.file=%s\nspawn a\n' "$home/thesis.txt" > "$scn/swap.scn"
run "set swap.file" 2 "swap.scn:3: swap.file names a host file vmsim would write" run "$scn/swap.scn"
printf 'set kernel.writeback_in_place=on\nspawn a\nmmap a auto 8K rw file=%s shared as d\nwrite a d "PWNED"\nmsync a d 4K\n' \
    "$home/doc.txt" > "$scn/inplace.scn"
run "set writeback_in_place" 2 "inplace.scn:1: kernel.writeback_in_place names a host file" \
    run "$scn/inplace.scn"
printf 'set kernel.writeback_dir=%s\nspawn a\n' "$home" > "$scn/wbdir.scn"
run "set writeback_dir" 2 "wbdir.scn:1: kernel.writeback_dir names a host file" run "$scn/wbdir.scn"
# Shared-file writeback without a writeback_dir: a temporary directory, nothing in . or
# next to the file, the original untouched (it used to write ./doc.txt).
printf 'spawn a\nmmap a auto 8K rw file=%s shared as d\nwrite a d "PWNED"\nmsync a d 4K\nexit a\n' \
    "$home/doc.txt" > "$scn/shared.scn"
run "shared writeback" 0 "" run -q "$scn/shared.scn"
[ -z "$(ls -A "$cwd")" ] && ok || bad "writeback left files in the current directory"
[ "$(ls "$scn")" = "$(printf 'inplace.scn\nshared.scn\nswap.scn\nwbdir.scn')" ] && ok ||
    bad "writeback left files next to the scenario"
# A writable disk image needs the command line's permission.
printf 'spawn p\nmmap p 0x1000000 4K rw as buf\nwrite p buf "EVIL"\ndevice blk d %s writable\ndma map d p buf 4K read as io\nblk write d 0 1 io\n' \
    "$home/disk.img" > "$scn/disk.scn"
run "writable disk" 2 "disk.scn:4: device blk d: a scenario may not write the host file" \
    run "$scn/disk.scn"
cp "$home/disk.img" "$tmp/mine.img"
run "writable disk allowed" 0 "" run -q --writable "$tmp/mine.img" \
    "$(sed "s|$home/disk.img|$tmp/mine.img|" "$scn/disk.scn" > "$tmp/mine.scn"; echo "$tmp/mine.scn")"
[ "$(head -c 4 "$tmp/mine.img")" = EVIL ] && ok || bad "--writable did not let the disk be written"
rm -f "$tmp/mine.img" "$tmp/mine.scn"
# Reading host files stays allowed.
printf 'spawn a\nmmap a auto 4K r file=%s private as t\nread a t 8 expect "my thesi"\n' \
    "$home/thesis.txt" > "$tmp/read.scn"
run "read a host file" 0 "" run -q "$tmp/read.scn"
rm -f "$tmp/read.scn"

# 16.2 convert never destroys its input or an existing output.
cp "$src/examples/traces/true.lackey" "$home/t.lackey"
fingerprint > "$tmp/before" # t.lackey is the user's now
run "convert IN IN" 2 "are the same file" convert "$home/t.lackey" "$home/t.lackey" --to lackey
printf 'I  10,4\nhello\n' > "$tmp/bad.lackey"
run "convert failure keeps OUT" 1 "bad.lackey:2:" convert "$tmp/bad.lackey" "$home/thesis.txt"

# 16.3 host work and memory follow the simulated work: a 64 MiB lackey reference resumes at
# each faulting page (16,384 faults; restarting from its first page was quadratic, 32 s),
# a 256 MiB scenario read streams (it allocated and zeroed 256 MiB of host memory), a
# read far beyond any mapping is a SIGSEGV at once (it ended in "out of memory").
maxrss() { # maxrss CMD…: run it in $cwd; prints its exit status and peak RSS in KiB
    (cd "$cwd" && python3 -c 'import resource, subprocess, sys
r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)' "$@")
}
printf ' L 1000,67108864\n' > "$tmp/long.lackey"
run "64 MiB reference" 0 "" replay --stats json "$tmp/long.lackey"
python3 -c 'import json, sys; f = json.load(open(sys.argv[1]))["faults"]; assert f["total"] == 16384, f' \
    "$tmp/out" && ok || bad "64 MiB reference: not 16384 faults"
printf 'spawn a\nmmap a auto 256M r as m\nread a m 256M\n' > "$tmp/read.scn"
read -r rc rss < <(maxrss "$vmsim" run -q "$tmp/read.scn")
[ "$rc" = 0 ] && [ "$rss" -lt 131072 ] && ok || bad "256M read: exit $rc, peak RSS $rss KiB"
printf 'spawn a\nread a 0x0 400000000000\n' > "$tmp/far.scn"
run "read far beyond the mappings" 0 "" run "$tmp/far.scn"
grep -q "SIGSEGV at 0x0" "$tmp/out" && ok || bad "far read: no SIGSEGV"
printf 'spawn a\nread a 0x0 400000000000000\n' > "$tmp/huge.scn"
run "read above the address space" 2 "huge.scn:2:" run "$tmp/huge.scn"

# 16.4 a file's size does not drive host memory; only regular files map.
truncate -s 1T "$tmp/sparse.bin"
printf 'spawn a\nmmap a auto 1T r file=%s private as f\nread a f+0xfffffffff0 8 expect ok\n' \
    "$tmp/sparse.bin" > "$tmp/sparse.scn"
read -r rc rss < <(maxrss "$vmsim" run -q "$tmp/sparse.scn")
[ "$rc" = 0 ] && [ "$rss" -lt 131072 ] && ok || bad "1 TiB sparse file: exit $rc, peak RSS $rss KiB"
rm -f "$tmp/sparse.bin"
printf 'spawn a\nmmap a auto 4K r file=%s private as f\n' "$home" > "$tmp/dir.scn"
run "a directory as file=" 1 "dir.scn:2: $home: not a regular file (a directory)" run "$tmp/dir.scn"

# 16.5 a rogue DMA with the IOMMU off that rewrites a PTE is a simulated kernel panic
# (exit 3, the output so far), never a host crash (tests/cli/devices.sh has more cases).
printf 'iommu off\ndevice raw rogue\nspawn v\nmmap v 0x10000000 8K rw as s\nwrite v s "x"\ndma rogue 0x8000 write 0x67f0ff0000000080\nmunmap v s 8K\n' \
    > "$tmp/rogue.scn"
run "rogue DMA" 3 "rogue.scn:7: Kernel panic - not syncing" run "$tmp/rogue.scn"
grep -q "^\[kernel\] Kernel panic" "$tmp/out" && ok || bad "rogue DMA: no panic in the output"

# 16.6 a flipped bit in a native trace is an error; random bytes are not ChampSim.
"$vmsim" convert --raw "$src/examples/traces/true.lackey" "$tmp/t.vmt" 2>/dev/null
size=$(stat -c %s "$tmp/t.vmt")
printf '\x01' | dd of="$tmp/t.vmt" bs=1 seek=$((size / 2)) conv=notrunc status=none
cmp -s "$tmp/t.vmt" <("$vmsim" convert --raw "$src/examples/traces/true.lackey" - 2>/dev/null) &&
    bad "the bit flip did not change the trace"
run "flipped bit" 1 "byte " replay "$tmp/t.vmt"
[ ! -s "$tmp/out" ] && ok || bad "a corrupted trace printed results"
# Seeded, so a failure replays: VMS_TEST_SEED=N bash hostile.sh vmsim.
python3 -c 'import random, sys; sys.stdout.buffer.write(random.Random(int(sys.argv[1])).randbytes(65536))' \
    "$seed" > "$tmp/random.bin"
[ "$(stat -c %s "$tmp/random.bin")" -eq 65536 ] && ok || bad "no random bytes (seed $seed)"
run "random bytes (seed $seed)" 1 "not a plausible ChampSim record" replay "$tmp/random.bin"

# 16.7 config files.
run "--config DIR" 2 "is a directory, not a config file" run --config "$home" "$src/examples/scenarios/demo.scn"
long=$tmp/$(printf 'p%.0s' $(seq 1 300))
(cd "$cwd" && "$vmsim" config --set "swap.file=$long") > "$tmp/long.ini"
run "long lines load back" 0 "" config --config "$tmp/long.ini"
cmp -s "$tmp/out" "$tmp/long.ini" && ok || bad "vmsim config output does not load back"
printf 'ram = 16M\ncores = 2\0junk\n' > "$tmp/nul.ini"
run "NUL byte" 2 "nul.ini:2: NUL byte in the line" config --config "$tmp/nul.ini"

# 16.8 numbers that would be cut are refused with the line.
printf 'spawn p\ncore p 4294967296\n' > "$tmp/core.scn"
run "core 2^32" 2 "core.scn:2: expected a core number from 0 to 255, got '4294967296'" run "$tmp/core.scn"
printf 'spawn a\nmmap a auto 4K rw as b\nread a b+0xffffffffffffff00 1\n' > "$tmp/wrap.scn"
run "LABEL+OFFSET wrap" 2 "wrap.scn:3: offset in 'b+0xffffffffffffff00' beyond the 57-bit" run "$tmp/wrap.scn"

# 16.9 messages: the same status for a missing scenario and a missing config; ranges;
# control bytes escaped.
run "missing scenario" 2 "cannot open scenario file: No such file" run "$tmp/none.scn"
run "missing config" 2 "cannot open config file: No such file" run --config "$tmp/none.ini" "$src/examples/scenarios/demo.scn"
run "ram range" 2 "expected a size from 1M to 32T" config --set ram=64T
grep -qF "RAM must fit in the physical address space, 2^maxphyaddr bytes" "$tmp/err" && ok ||
    bad "ram range: no reason given"
# The user's key names, never the internal ones (fault_around_pages, kswapd_core).
run "fault_around range" 2 "bad value '3' for kernel.fault_around: expected a number from 1 to 512, a power of two" \
    config --set kernel.fault_around=3
run "kswapd.core beyond the cores" 2 "kswapd.core 9: the machine has 4 cores" \
    run --set kswapd.core=9 "$src/examples/scenarios/demo.scn"
grep -q "fault_around_pages\|kswapd_core" "$tmp/err" && bad "an internal name in a message" || ok
run "a directory as the scenario" 2 "is a directory, not a scenario file" run "$home"
# A read error gives its reason (reading /proc/self/mem at offset 0 fails with EIO).
run "scenario read error" 2 "/proc/self/mem: read error: Input/output error" run /proc/self/mem
run "config read error" 2 "/proc/self/mem:1: read error: Input/output error" config --config /proc/self/mem
printf 'echo "\x1b[2J\x1b]0;owned\x07"\n' > "$tmp/esc.scn"
run "escape bytes" 0 "" run "$tmp/esc.scn"
grep -q $'\x1b' "$tmp/out" && bad "a control byte reached the terminal" || ok
grep -qF '\x1b[2J' "$tmp/out" && ok || bad "escaped bytes not shown"

# 16.18 --csv - is standard output, not a file named "-".
run "--csv -" 0 "" replay --csv - --interval 10 "$src/examples/traces/true.lackey"
[ ! -e "$cwd/-" ] && grep -q '^references,' "$tmp/out" && ok || bad "--csv - did not write stdout"

# Nothing outside the scenarios' directory changed.
fingerprint > "$tmp/after"
diff "$tmp/before" "$tmp/after" >&2 && ok || bad "host files outside the test directory changed"

finish "hostile"
