#!/usr/bin/env python3
# ostep_ref.py — an independent reference for `vmsim ostep … --json`, written for vmsim's
# tests (not the OSTEP scripts themselves): it draws from the real CPython `random` in the
# order each homework script draws (vm-paging, vm-smalltables, vm-segmentation,
# vm-mechanism) and answers with plain arithmetic on Python lists, no page tables in
# memory. tests/cli/ostep.sh compares its JSON with vmsim's, field by field.
#   ostep_ref.py MACHINE SEED [key=value …]   (keys: asize psize pagesize num used
#                                              allocated base0 len0 base1 len1)
import json
import random
import sys


def multilevel(seed, allocated=64, num=10):
    random.seed(seed)
    mem = [0] * 4096
    used = [0] * 128

    def free():
        assert sum(used) < 128, "out of physical pages"  # the script's assertion
        look = int(random.random() * 128)
        while used[look]:
            look = int(random.random() * 128)
        used[look] = 1
        return look

    pd = free()
    mem[pd * 32:pd * 32 + 32] = [0x7f] * 32
    vps, taken = [], set()
    for _ in range(allocated):
        vp = int(random.random() * 1024)
        while vp in taken:
            vp = int(random.random() * 1024)
        taken.add(vp)
        vps.append(vp)
        pp = free()
        pde = pd * 32 + (vp >> 5)
        if not mem[pde] & 0x80:
            pt = free()
            mem[pde] = 0x80 | pt
            mem[pt * 32:pt * 32 + 32] = [0x7f] * 32
        mem[(mem[pde] & 0x7f) * 32 + (vp & 31)] = 0x80 | pp
        for j in range(32):
            mem[pp * 32 + j] = int(random.random() * 31)
    out = []
    for i in range(num):
        if random.random() * 100 > 50.0 or i >= len(vps):
            va = int(random.random() * 1024 * 32)
        else:
            va = (vps[i] << 5) | int(random.random() * 32)
        pde = mem[pd * 32 + (va >> 10)]
        if not pde & 0x80:
            out.append(dict(va=va, result="pde_fault", pa=None, value=None))
            continue
        pte = mem[(pde & 0x7f) * 32 + ((va >> 5) & 31)]
        if not pte & 0x80:
            out.append(dict(va=va, result="pte_fault", pa=None, value=None))
            continue
        pa = (pte & 0x7f) << 5 | (va & 31)
        out.append(dict(va=va, result="ok", pa=pa, value=mem[pa]))
    memory = ["".join("%02x" % b for b in mem[p * 32:p * 32 + 32]) for p in range(128)]
    return dict(pdbr=pd, memory=memory, translations=out)


def linear(seed, asize=16384, psize=65536, pagesize=4096, num=5, used=50):
    random.seed(seed)
    pages, vpages = psize // pagesize, asize // pagesize
    taken, pt = [0] * pages, []
    for _ in range(vpages):
        while True:
            if random.random() * 100.0 > 100.0 - float(used):
                u = int(pages * random.random())
                if taken[u]:
                    continue
                taken[u] = 1
                pt.append(u)
            else:
                pt.append(-1)
            break
    out = []
    for _ in range(num):
        va = int(asize * random.random())
        vpn = va // pagesize
        ok = pt[vpn] >= 0
        out.append(dict(va=va, vpn=vpn, valid=ok,
                        pa=pt[vpn] * pagesize + va % pagesize if ok else None))
    table = [0x80000000 | u if u >= 0 else 0 for u in pt]
    return dict(page_table=table, translations=out)


def rand_len(asize):
    return int(asize / 4.0 + (asize / 4.0 * random.random()))


def segmentation(seed, asize=1024, psize=16384, num=5, base0=-1, len0=-1, base1=-1, len1=-1):
    random.seed(seed)
    if len0 == -1:
        len0 = rand_len(asize)
    if len1 == -1:
        len1 = rand_len(asize)
    if base0 == -1:
        while True:
            base0 = int(psize * random.random())
            if base0 + len0 < psize:
                break
    if base1 == -1:
        while True:
            base1 = int(psize * random.random())
            if base1 + len1 < psize and (base1 > base0 + len0 or base1 + len1 < base0):
                break
    else:
        base1 -= len1
    out = []
    for _ in range(num):
        va = int(asize * random.random())
        if va >= asize / 2:
            pa = base1 + len1 + (va - asize)
            ok = pa >= base1
            out.append(dict(va=va, valid=ok, segment=1, pa=pa if ok else None))
        else:
            ok = va < len0
            out.append(dict(va=va, valid=ok, segment=0, pa=va + base0 if ok else None))
    segs = [dict(base=base0, limit=len0, grows="positive"),
            dict(base=base1 + len1, limit=len1, grows="negative")]
    return dict(segments=segs, translations=out)


def relocation(seed, asize=1024, psize=16384, num=5, base0=-1, len0=-1):
    random.seed(seed)
    limit = rand_len(asize) if len0 == -1 else len0
    base = base0
    if base == -1:
        while True:
            base = int(psize * random.random())
            if base + limit < psize:
                break
    out = []
    for _ in range(num):
        va = int(asize * random.random())
        ok = va < limit
        out.append(dict(va=va, valid=ok, pa=va + base if ok else None))
    return dict(base=base, limit=limit, translations=out)


if __name__ == "__main__":
    machine, seed = sys.argv[1], int(sys.argv[2])
    kw = {k: int(v) for k, v in (a.split("=") for a in sys.argv[3:])}
    print(json.dumps(globals()[machine](seed, **kw), sort_keys=True))
