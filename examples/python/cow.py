#!/usr/bin/env python3
"""Copy-on-write from Python: a parent writes a page, forks, the child writes the same
page; each sees its own bytes and the kernel counts one COW fault.

    python3 examples/python/cow.py
"""
import vmsim

k = vmsim.Kernel(vmsim.Config(preset="tiny"))
parent = k.spawn("parent")
va = parent.mmap(4096)
parent.write(va, b"parent")
child = parent.fork()
info = child.write(va, b"child!")
print("child's write took %d fault(s)" % info["faults"])
print("parent reads %r, child reads %r" % (parent.read(va, 6), child.read(va, 6)))
faults = k.stats()["faults"]
print("faults: %d total, %d copy-on-write" % (faults["total"], faults["cow"]))
assert parent.read(va, 6) == b"parent" and child.read(va, 6) == b"child!"
