#!/usr/bin/env python3
"""replay_rand_trace.py N [SEED] > rand.din: the miss-path trace of docs/PERFORMANCE.md
("Replay hot path"): N uniform 8-byte-aligned references over 1 GiB (at 0x7f0000000000),
30% writes, din format, seeded (Python's random: the same file on every run)."""
import random
import sys

n = int(sys.argv[1])
seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
rng = random.Random(seed)
base = 0x7F0000000000
w = sys.stdout.write
for _ in range(n):
    a = base + (rng.getrandbits(27) << 3)
    w("%d %x\n" % (1 if rng.random() < 0.3 else 0, a))
