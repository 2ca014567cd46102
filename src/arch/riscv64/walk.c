/*
 * riscv64/walk.c — the RISC-V Sv39/Sv48/Sv57 hardware page-table walker and rights
 * check, behind vms_walk (walk.h) when regs->fmt is an Sv format (format.c).
 *
 * Models priv §"Virtual Address Translation Process" step by step (the Sv32 algorithm,
 * with LEVELS = 3/4/5 and PTESIZE = 8 for Sv39/48/57; the spec's level i is vmsim's
 * level i+1):
 *
 *  0. (§"Sv39": "bits 63-39 must all equal bit 38, or else a page-fault exception
 *     will occur") a non-canonical va is a page fault; nothing is read.
 *  1. a = satp.PPN × 4096, i = LEVELS − 1 (a page-walk cache may give a lower table).
 *  2. pte = the 8 bytes at a + va.VPN[i] × 8, read through the bus (counted like x86's
 *     references). A read the bus cannot serve is an access fault (cause 1/5/7).
 *  3. V = 0, W = 1 with R = 0, or a reserved bit set (63:54, since Svnapot/Svpbmt are
 *     not implemented; D/A/U in a non-leaf): page fault.
 *  4. R = X = 0: a pointer; i = i − 1 (i < 0: page fault), a = pte.PPN × 4096, step 2.
 *  5. A leaf: the access must be allowed by R/W/X/U in the current mode with
 *     sstatus.SUM and MXR (vmsi_rv_check_access): page fault if not.
 *  6. i > 0 and pte.PPN[i−1:0] ≠ 0: a misaligned superpage, page fault.
 *  7. A = 0, or a store with D = 0: with menvcfg.ADUE (Svadu) the walker sets A (and D
 *     on a store) in memory, as one atomic update; without it (Svade) a page fault.
 *  8. Success: pa = pte.PPN[LEVELS−1:i] : va.VPN[i−1:0] : va.offset.
 *
 * Page faults carry the cause of the original access in error_code — 12 instruction,
 * 13 load, 15 store/AMO — and stval (= va) in fault.va. A mapping is global when G is
 * set in the leaf or in any non-leaf above it ("for non-leaf PTEs, the global setting
 * implies that all mappings in the subsequent levels of the page table are global").
 *
 * Documented limitation: vmsim's page sizes stop at 1 GiB, so a leaf at level 4 (Sv48/
 * Sv57 512 GiB) or 5 (Sv57 256 TiB) raises the page fault of its access instead of
 * translating (docs/arch/riscv64.md). M-mode, MPRV, PMP/PMA checks and Bare mode are not
 * modelled.
 */
#include <assert.h>

#include "arch/riscv64/riscv64.h"
#include "vmsim/pwc.h"

/* The largest level vmsim's page sizes (4K/2M/1G) can express as a leaf. */
#define MAX_LEAF_LEVEL 3u

uint32_t vmsi_rv_check_access(const vms_regs *regs, const vms_xlate *x, vms_access_kind kind)
{
    bool ok;
    if (regs->user)
        ok = x->us; /* U-mode may use U pages only */
    else            /* S-mode: never fetch from a U page; load/store one only with SUM */
        ok = !x->us || (kind != VMS_ACC_EXEC && (regs->sstatus & VMS_RV_SSTATUS_SUM));
    if (ok) {
        switch (kind) {
        case VMS_ACC_READ: /* MXR: loads from pages marked R or X succeed */
            ok = !x->nr || ((regs->sstatus & VMS_RV_SSTATUS_MXR) && !x->xd);
            break;
        case VMS_ACC_WRITE:
            ok = x->rw;
            break;
        case VMS_ACC_EXEC:
            ok = !x->xd;
            break;
        }
    }
    return ok ? 0 : vms_rv_page_fault_cause(kind);
}

/* The state of one walk in progress. */
typedef struct walk_state {
    uint64_t table;                    /* physical address of the table to read next */
    unsigned level;                    /* its level (the spec's i + 1) */
    unsigned first;                    /* level of the first entry read from memory */
    bool global;                       /* G seen in a non-leaf above */
    uint64_t ptep[6], pte[6], next[6]; /* by level: entry address, value, table below */
    uint8_t g_at[6];                   /* global so far, down to each level */
} walk_state;

/*
 * The kernel's format-neutral summary of a fault (walk.h VMS_FAULTF_*): the access (W,
 * U, I) plus what went wrong — PROT when a leaf forbade the access (step 5), RSVD for a
 * malformed entry (reserved bits or encodings, a misaligned superpage, a pointer at the
 * last level, a leaf size vmsim does not model). A not-valid entry, a non-canonical
 * address and Svade's A/D faults add neither.
 */
enum { WHY_NONE = 0, WHY_PROT = VMS_FAULTF_PROT, WHY_RSVD = VMS_FAULTF_RSVD };

static uint32_t access_flags(const vms_regs *regs, vms_access_kind kind)
{
    return (kind == VMS_ACC_WRITE ? VMS_FAULTF_WRITE : 0) | (regs->user ? VMS_FAULTF_USER : 0) |
           (kind == VMS_ACC_EXEC ? VMS_FAULTF_EXEC : 0);
}

/* Record a fault and count it; returns false so callers can `return fail(...)`. */
static bool fail(vms_fault *f, vms_walk_stats *stats, const vms_regs *regs, vms_access_kind acc,
                 vms_fault_kind kind, uint32_t cause, uint32_t why, uint64_t va, unsigned level,
                 uint64_t pa)
{
    *f = (vms_fault){.kind = kind,
                     .va = va,
                     .error_code = cause,
                     .level = level,
                     .pa = pa,
                     .flags = access_flags(regs, acc) | why};
    stats->faults++;
    return false;
}

/* A page fault of the access (cause 12/13/15) at `level`. */
#define PAGE_FAULT(WHY, LEVEL)                                                                     \
    fail(fault, stats, regs, kind, VMS_FAULT_PF, vms_rv_page_fault_cause(kind), WHY, va, LEVEL, 0)

/*
 * PWC entries of a RISC-V walk. A non-leaf PTE carries no rights (R = W = X = 0, U
 * reserved), so rw/us are always 1; the xd slot carries instead whether a G bit was
 * seen down to this level, which the leaf's global attribute needs when the cache
 * skips those levels.
 */
static vms_pwc_entry pwc_entry(uint64_t table_pa, bool global)
{
    return (vms_pwc_entry){table_pa, 1, 1, global ? 1 : 0};
}

/* Step 1: begin at satp's root, or below the deepest level a PWC holds for (ASID, va). */
static void start(walk_state *w, vms_pwc *pwc, const vms_regs *regs, uint64_t va,
                  vms_walk_stats *stats, vms_walk_trace *trace)
{
    w->table = vms_rv_satp_root(regs->satp);
    w->level = regs->fmt->levels;
    w->global = false;
    vms_pwc_entry e;
    unsigned hit = pwc ? vms_pwc_lookup(pwc, vms_rv_satp_asid(regs->satp), va, &e) : 0;
    if (hit) {
        assert(hit >= 2 && hit <= w->level);
        w->table = e.table_pa;
        w->level = hit - 1;
        w->global = e.xd != 0;
        stats->pwc_hits++;
    }
    w->first = w->level;
    if (trace)
        trace->pwc_level = hit;
}

/* Step 3's reserved bits and encodings of a valid entry. */
static bool reserved(uint64_t pte)
{
    if (pte & VMS_RV_PTE_RSVD_MASK)
        return true; /* 63:54: N, PBMT and the reserved field */
    if ((pte & (VMS_RV_PTE_R | VMS_RV_PTE_W)) == VMS_RV_PTE_W)
        return true; /* W without R */
    return !(pte & VMS_RV_PTE_LEAF) && (pte & (VMS_RV_PTE_D | VMS_RV_PTE_A | VMS_RV_PTE_U));
}

/*
 * Steps 2-4 at w->level: read the entry and fold it in. Returns 1 at a leaf, 0 to go on
 * to the next level, -1 on a fault (filled in).
 */
static int step(vms_bus *bus, const vms_regs *regs, uint64_t va, vms_access_kind kind,
                walk_state *w, vms_fault *fault, vms_walk_stats *stats, vms_walk_trace *trace)
{
    const vms_pt_format *f = regs->fmt;
    unsigned l = w->level;
    unsigned idx = vms_fmt_index(f, va, l);
    uint64_t ptep = w->table + 8u * idx, pte;
    if (vms_bus_read64(bus, ptep, &pte) != VMS_OK)
        return fail(fault, stats, regs, kind, VMS_FAULT_BUS, vms_rv_access_fault_cause(kind),
                    WHY_NONE, va, l, ptep),
               -1;
    stats->mem_refs++;
    stats->refs_by_level[l]++;
    if (trace)
        trace->step[trace->nsteps++] = (vms_walk_step){l, w->table, idx, ptep, pte};
    w->ptep[l] = ptep;
    w->pte[l] = pte;
    if (!(pte & VMS_RV_PTE_V))
        return PAGE_FAULT(WHY_NONE, l), -1;
    if (reserved(pte))
        return PAGE_FAULT(WHY_RSVD, l), -1;
    if (pte & VMS_RV_PTE_LEAF)
        return 1;
    if (l == 1) /* a pointer at the last level: i < 0 */
        return PAGE_FAULT(WHY_RSVD, l), -1;
    w->global = w->global || (pte & VMS_RV_PTE_G);
    w->g_at[l] = w->global;
    w->next[l] = vms_fmt_pte_addr(f, pte);
    w->table = w->next[l];
    w->level = l - 1;
    return 0;
}

/* The translation the leaf pte at `level` gives (before steps 6-7). */
static vms_xlate make_xlate(const walk_state *w, uint64_t pte, unsigned level)
{
    vms_xlate x = {0};
    x.size = (vms_pgsize)(level - 1);
    x.page_pa = (((pte & VMS_RV_PTE_PPN_MASK) >> VMS_RV_PTE_PPN_SHIFT) << 12) &
                ~(vms_pgsize_bytes(x.size) - 1);
    x.rw = (pte & VMS_RV_PTE_W) != 0;
    x.us = (pte & VMS_RV_PTE_U) != 0;
    x.xd = !(pte & VMS_RV_PTE_X);
    x.nr = !(pte & VMS_RV_PTE_R);
    x.global = w->global || (pte & VMS_RV_PTE_G);
    x.dirty = (pte & VMS_RV_PTE_D) != 0;
    return x;
}

/* Step 6: is a leaf at `level` a superpage whose PPN[level-2:0] is not zero? */
static bool misaligned(uint64_t pte, unsigned level)
{
    uint64_t low = (UINT64_C(1) << (9u * (level - 1u))) - 1;
    return ((pte >> VMS_RV_PTE_PPN_SHIFT) & low) != 0;
}

/* Remember each pointer entry this walk read (levels 2 and up). */
static void fill_pwc(vms_pwc *pwc, const vms_regs *regs, uint64_t va, const walk_state *w,
                     unsigned leaf)
{
    for (unsigned l = w->first; l > leaf && l >= 2; l--) {
        vms_pwc_entry e = pwc_entry(w->next[l], w->g_at[l]);
        vms_pwc_fill(pwc, vms_rv_satp_asid(regs->satp), va, l, &e);
    }
}

bool vmsi_rv_walk(vms_bus *bus, vms_pwc *pwc, const vms_regs *regs, uint64_t va,
                  vms_access_kind kind, vms_xlate *out, vms_fault *fault, vms_walk_stats *stats,
                  vms_walk_trace *trace)
{
    const vms_pt_format *f = regs->fmt;
    assert(vmsi_fmt_is_riscv(f));
    stats->walks++;
    if (trace)
        trace->nsteps = trace->pwc_level = 0;
    if (!vms_fmt_canonical(f, va))
        return PAGE_FAULT(WHY_NONE, f->levels);
    walk_state w;
    start(&w, pwc, regs, va, stats, trace);
    int r;
    while ((r = step(bus, regs, va, kind, &w, fault, stats, trace)) == 0)
        ;
    if (r < 0)
        return false;
    unsigned leaf = w.level;
    uint64_t pte = w.pte[leaf];
    if (leaf > MAX_LEAF_LEVEL) /* 512 GiB / 256 TiB leaves: not modelled (see top) */
        return PAGE_FAULT(WHY_RSVD, leaf);
    vms_xlate x = make_xlate(&w, pte, leaf);
    if (vmsi_rv_check_access(regs, &x, kind)) /* step 5 */
        return PAGE_FAULT(WHY_PROT, leaf);
    if (leaf > 1 && misaligned(pte, leaf)) /* step 6 */
        return PAGE_FAULT(WHY_RSVD, leaf);
    bool store = kind == VMS_ACC_WRITE;
    if (!(pte & VMS_RV_PTE_A) || (store && !(pte & VMS_RV_PTE_D))) { /* step 7 */
        if (!(regs->menvcfg & VMS_RV_MENVCFG_ADUE))
            return PAGE_FAULT(WHY_NONE, leaf); /* Svade */
        uint64_t v = pte | VMS_RV_PTE_A | (store ? VMS_RV_PTE_D : 0);
        if (vms_bus_write64(bus, w.ptep[leaf], v) != VMS_OK)
            return fail(fault, stats, regs, kind, VMS_FAULT_BUS, vms_rv_access_fault_cause(kind),
                        WHY_NONE, va, leaf, w.ptep[leaf]);
        stats->ad_writes++;
        pte = v;
    }
    x.dirty = (pte & VMS_RV_PTE_D) != 0;
    if (pwc)
        fill_pwc(pwc, regs, va, &w, leaf);
    *out = x;
    return true;
}
