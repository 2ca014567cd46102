#!/usr/bin/env python3
"""gen.py [DIR] - makes the small example input of `vmsim vmm` in DIR (default: this
directory, where it is committed; running it again writes the same bytes):

  backing.bin    a 65,536-byte backing store: 256 pages of 256 bytes; the byte at offset i
                 is (i * 37 + i // 256) mod 256, read by vmsim as a signed char
  addresses.txt  1,000 logical addresses, one decimal number per line: a seeded mix of
                 a hot set of 24 pages (locality, so the TLB hits) and uniform addresses

The textbook's own files (BACKING_STORE.bin, addresses.txt, correct.txt) come with the
book (Silberschatz, Galvin, Gagne, Operating System Concepts, ch. 10 project); these are
a stand-in with the same shapes, so the example runs from a fresh checkout.
"""
import os
import random
import sys

here = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "backing.bin"), "wb") as f:
    f.write(bytes((i * 37 + i // 256) % 256 for i in range(65536)))
rng = random.Random(16)
hot = [rng.randrange(256) for _ in range(24)]
with open(os.path.join(here, "addresses.txt"), "w") as f:
    for _ in range(1000):
        page = rng.choice(hot) if rng.random() < 0.8 else rng.randrange(256)
        f.write("%d\n" % (page * 256 + rng.randrange(256)))
