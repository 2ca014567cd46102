#!/usr/bin/env python3
"""Regenerate the small committed trace samples (run from the repository root).

small.champsim(.xz/.gz): 8 ChampSim input_instr records (64 bytes each, little-endian:
ip, is_branch, branch_taken, destination_registers[2], source_registers[4],
destination_memory[2], source_memory[4]; ChampSim inc/trace_instruction.h) with
8 fetches, 7 reads and 4 writes in all. small.din: a Dinero din sample.
true.lackey comes from `valgrind --tool=lackey --trace-mem=yes /bin/true 2>&1 | head -2000`
and small.vmt from `VMS_TRACE_REGEN=1 build/asan/test_trace`.
"""
import gzip, lzma, struct

# (ip, [source_memory...], [destination_memory...])
RECS = [
    (0x401000, [0x7ffd1000], []),
    (0x401004, [], [0x7ffd0ff8]),
    (0x401008, [0x601040, 0x601048], []),
    (0x40100c, [], []),
    (0x401010, [0x7ffd1000], [0x601040]),
    (0x401014, [0x601ffc], [0x602000]),  # a read cut at its line, a write on the next page
    (0x40103e, [0x601050], []),          # fetch cut to 2 bytes at its 64-byte line
    (0x401040, [0x601058], [0x601060]),
]


def record(ip, src, dst):
    src = src + [0] * (4 - len(src))
    dst = dst + [0] * (2 - len(dst))
    return struct.pack("<QBB2B4B2Q4Q", ip, 0, 0, 0, 0, 0, 0, 0, 0, *dst, *src)


data = b"".join(record(*r) for r in RECS)
assert len(data) == 64 * len(RECS)
open("examples/traces/small.champsim", "wb").write(data)
open("examples/traces/small.champsim.xz", "wb").write(lzma.compress(data))
with open("examples/traces/small.champsim.gz", "wb") as f:
    f.write(gzip.compress(data, mtime=0))

open("examples/traces/small.din", "w").write(
    "2 0 instruction fetch at 0 (Dinero's own example)\n"
    "0 1000\n"
    "0 70f60888\n"
    "3 0 escape: unknown access type, skipped\n"
    "2 2cb5\n"
    "4 0 escape: cache flush, skipped\n"
    "1 70f60890\n"
    "1 0x7fffdeadbeef\n")
