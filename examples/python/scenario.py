#!/usr/bin/env python3
"""Run a scenario (the demonstration by default) and print its result and a few
counters; the narration is in r["narration"].

    python3 examples/python/scenario.py [SCENARIO]
"""
import os
import sys

import vmsim

here = os.path.dirname(os.path.abspath(__file__))
path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "scenarios", "demo.scn")
r = vmsim.Scenario(path=path).run()
print(r["result"])
print("page faults:", r["stats"]["faults"]["total"], "TLB l1d misses:",
      r["stats"]["tlb"]["l1d"]["misses"])
sys.exit(0 if r["result"]["expects_failed"] == 0 and r["result"]["errors"] == 0 else 1)
