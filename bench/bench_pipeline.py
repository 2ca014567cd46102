#!/usr/bin/env python3
"""Wall-clock time of `vmsim replay TRACE` against `vmsim replay TRACE --pipeline`.

The pipelined replay decodes the trace on a thread of its own (docs/REPLAY.md), so it
can only gain wall-clock time, never CPU time: this measures both, side by side, in
interleaved runs (plain, pipelined, plain, ...), and gives the medians. Every run's
stdout must equal the first plain run's byte for byte (the "build" member aside, which
is the same binary anyway): a difference is an error, not a result.

Usage: bench/bench_pipeline.py [--vmsim build/release/vmsim] [--runs 5] TRACE... [-- ARGS...]
(ARGS are passed to every replay, e.g. -- --stats json). Run it with `nice -n 19` on a
shared machine; a second free core is what the pipeline needs.
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import time


def run(cmd):
    """Run cmd; return (stdout bytes, wall seconds, user+sys CPU seconds)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        sys.exit("%s: exit %d: %s" % (" ".join(cmd), p.returncode, p.stderr.decode()[:300]))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return p.stdout, wall, cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vmsim", default="build/release/vmsim")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("traces", nargs="+")
    argv = sys.argv[1:]
    extra = []
    if "--" in argv:
        extra = argv[argv.index("--") + 1:]
        argv = argv[: argv.index("--")]  # the traces come before "--"
    a = ap.parse_args(argv)
    print("%-40s %10s %10s %8s %10s %10s" % ("trace (median of %d)" % a.runs, "wall plain",
                                              "wall pipe", "speedup", "cpu plain", "cpu pipe"))
    for t in a.traces:
        plain = [a.vmsim, "replay", t] + extra
        piped = plain + ["--pipeline"]
        ref, _, _ = run(plain)  # a warm-up, and the output every run must give
        w = {0: [], 1: []}
        c = {0: [], 1: []}
        for _ in range(a.runs):
            for k, cmd in ((0, plain), (1, piped)):
                out, wall, cpu = run(cmd)
                if out != ref:
                    sys.exit("%s: the output differs from the plain replay's" % " ".join(cmd))
                w[k].append(wall)
                c[k].append(cpu)
        mw = [statistics.median(w[k]) for k in (0, 1)]
        mc = [statistics.median(c[k]) for k in (0, 1)]
        print("%-40s %9.3fs %9.3fs %7.2fx %9.3fs %9.3fs" % (os.path.basename(t), mw[0], mw[1],
                                                            mw[0] / mw[1], mc[0], mc[1]))


if __name__ == "__main__":
    main()
