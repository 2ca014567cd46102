#!/usr/bin/env python3
"""How the L1 dTLB's size changes misses and cycles on a real trace (ls, recorded with
vmsim record): one replay per geometry, results as dicts. Run from the checkout:

    python3 examples/python/tlb_sizes.py [TRACE]
"""
import os
import sys

import vmsim

here = os.path.dirname(os.path.abspath(__file__))
trace = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "traces", "ls.vmt")
print("%-14s %10s %10s %12s" % ("tlb.l1d", "lookups", "misses", "cycles/ref"))
for sets in (16, 4, 1):
    geometry = "4K:%dx4:lru" % sets
    r = vmsim.replay(trace, vmsim.Config(cores=1, **{"tlb.l1d": geometry}))
    l1d = r["tlb"]["l1d"]
    print("%-14s %10d %10d %12.3f" % (geometry, l1d["lookups"], l1d["misses"],
                                       r["cycles"] / r["replay"]["references"]))
