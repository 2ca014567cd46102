/*
 * x86_64/walk.c — the x86-64 hardware page-table walker and access-rights check: the
 * walker and check of the x86-64 formats (format.c), behind vms_walk (walk.h).
 *
 * Models Intel SDM Vol. 3A:
 *  §4.5   4-level and 5-level paging: CR3 -> [PML5 ->] PML4 -> PDPT -> PD -> PT, one
 *         8-byte entry read per level through the bus (inline through its table-frame
 *         cache of host pages, bus_impl.h: the same bytes of simulated RAM, counted); PS=1 in a
 * PDPTE maps 1 GiB, in a PDE 2 MiB; a PTE always maps 4 KiB. §4.5.4 reserved bits: set in a present
 * entry, they raise #PF with P=1 and RSVD=1. §4.6   access rights, on the rights combined over
 * every level (RW and US ANDed, XD ORed when EFER.NXE=1), with CR0.WP, CR4.SMEP, CR4.SMAP and
 * RFLAGS.AC. §4.6.2 protection keys (CR4.PKE): PKRU's AD/WD for data accesses to user pages. §4.7
 * the #PF error code. §4.8   A in every entry used, D in the leaf on a write. §4.10.3
 * paging-structure caches (pwc.h), consulted first when one is given.
 *
 * Documented choices (walk.h): A/D bits and PWC fills happen only when the whole walk
 * succeeds, rights check included; a non-canonical address is VMS_FAULT_GP and reads
 * nothing; a table entry whose address decodes to nothing is VMS_FAULT_BUS.
 */
#include <assert.h>

#include "arch/x86_64/x86_64.h"
#include "hw/bus_impl.h"
#include "vmsim/pwc.h"

/*
 * Reserved bits of a present level-`level` entry (§4.5.4, Tables 4-15 … 4-20):
 *
 *   all levels          bits 51:M (M = MAXPHYADDR); bit 63 (XD) when EFER.NXE = 0
 *   PML5E, PML4E        bit 7 (PS)
 *   PDPTE with PS = 1   bits 29:13 (1 GiB page: the frame is 51:30; bit 12 is PAT)
 *   PDE with PS = 1     bits 20:13 (2 MiB page: the frame is 51:21; bit 12 is PAT)
 */
/* Every reserved bit of a present level-`level` entry pte under regs. */
static uint64_t rsvd_mask(const vms_regs *regs, uint64_t pte, unsigned level)
{
    uint64_t m = VMS_PTE_ADDR_MASK & ~((UINT64_C(1) << regs->maxphyaddr) - 1);
    if (!(regs->efer & VMS_EFER_NXE))
        m |= VMS_PTE_XD;
    return m | vmsi_x86_struct_rsvd(pte, level);
}

_Static_assert(UINT64_C(0x3FFFE000) == ((UINT64_C(1) << 30) - (UINT64_C(1) << 13)),
               "1 GiB leaf reserved bits are 29:13");
_Static_assert(UINT64_C(0x1FE000) == ((UINT64_C(1) << 21) - (UINT64_C(1) << 13)),
               "2 MiB leaf reserved bits are 20:13");

uint32_t vms_access_error_bits(const vms_regs *regs, vms_access_kind kind)
{
    uint32_t ec = 0;
    if (kind == VMS_ACC_WRITE)
        ec |= VMS_PFERR_W;
    if (regs->user)
        ec |= VMS_PFERR_U;
    /* I is reported only when fetches can fault for their own sake (§4.7). */
    if (kind == VMS_ACC_EXEC && (regs->efer & VMS_EFER_NXE || regs->cr4 & VMS_CR4_SMEP))
        ec |= VMS_PFERR_I;
    return ec;
}

/* §4.6.1: may a supervisor-mode (CPL < 3) access of `kind` use translation x? */
static bool supervisor_ok(const vms_regs *regs, const vms_xlate *x, vms_access_kind kind)
{
    bool wp = regs->cr0 & VMS_CR0_WP;
    if (kind == VMS_ACC_EXEC) {
        if (x->us && (regs->cr4 & VMS_CR4_SMEP))
            return false; /* SMEP: no fetch from a user page, whatever XD says */
        return !(x->xd && (regs->efer & VMS_EFER_NXE));
    }
    /* Explicit data access to a user page under SMAP: allowed only with RFLAGS.AC. */
    if (x->us && (regs->cr4 & VMS_CR4_SMAP) && !regs->ac)
        return false;
    if (kind == VMS_ACC_WRITE && wp && !x->rw)
        return false; /* CR0.WP=0 lets the kernel write read-only pages */
    return true;
}

/* §4.6.1: may a user-mode (CPL 3) access of `kind` use translation x? */
static bool user_ok(const vms_regs *regs, const vms_xlate *x, vms_access_kind kind)
{
    if (!x->us)
        return false;
    if (kind == VMS_ACC_WRITE)
        return x->rw;
    if (kind == VMS_ACC_EXEC)
        return !(x->xd && (regs->efer & VMS_EFER_NXE));
    return true;
}

/*
 * §4.6.2: does PKRU forbid this access? Only data accesses to user pages with CR4.PKE:
 * AD forbids any of them; WD forbids writes from user mode, and from supervisor mode
 * when CR0.WP = 1. Fetches are never checked.
 */
static bool pkey_denies(const vms_regs *regs, const vms_xlate *x, vms_access_kind kind)
{
    if (!(regs->cr4 & VMS_CR4_PKE) || !x->us || kind == VMS_ACC_EXEC)
        return false;
    if (vms_pkru_ad(regs->pkru, x->pkey))
        return true;
    return kind == VMS_ACC_WRITE && vms_pkru_wd(regs->pkru, x->pkey) &&
           (regs->user || (regs->cr0 & VMS_CR0_WP));
}

/* vms_check_access, inline for the walkers here. */
static inline __attribute__((always_inline)) uint32_t
check_access(const vms_regs *regs, const vms_xlate *x, vms_access_kind kind)
{
    bool ok = regs->user ? user_ok(regs, x, kind) : supervisor_ok(regs, x, kind);
    /* The SDM sets PK whenever the key forbids the access, even if the paging rights
     * forbid it too (§4.7, "PK flag"). */
    bool pk = pkey_denies(regs, x, kind);
    if (ok && !pk)
        return 0;
    return VMS_PFERR_P | vms_access_error_bits(regs, kind) | (pk ? VMS_PFERR_PK : 0);
}

uint32_t vms_check_access(const vms_regs *regs, const vms_xlate *x, vms_access_kind kind)
{
    return check_access(regs, x, kind);
}

/* check_access on the rights a walk folded — r: RW and US in their PTE positions when
 * every level allows, XD when a level forbids execution — and the leaf entry's protection
 * key, without building the translation: the same rules, term by term (the debug build
 * compares the two on every walk). */
static inline __attribute__((always_inline)) uint32_t
check_bits(const vms_regs *regs, uint64_t r, uint64_t leaf_pte, vms_access_kind kind)
{
    bool us = (r & VMS_PTE_US) != 0, rw = (r & VMS_PTE_RW) != 0;
    bool xd = (r & VMS_PTE_XD) && (regs->efer & VMS_EFER_NXE);
    bool ok;
    if (regs->user)
        ok = us && (kind == VMS_ACC_WRITE ? rw : kind != VMS_ACC_EXEC || !xd);
    else if (kind == VMS_ACC_EXEC)
        ok = !(us && (regs->cr4 & VMS_CR4_SMEP)) && !xd;
    else
        ok = !(us && (regs->cr4 & VMS_CR4_SMAP) && !regs->ac) &&
             !(kind == VMS_ACC_WRITE && (regs->cr0 & VMS_CR0_WP) && !rw);
    bool pk = false;
    if ((regs->cr4 & VMS_CR4_PKE) && us && kind != VMS_ACC_EXEC) {
        unsigned key = vms_pte_pkey(leaf_pte);
        pk = vms_pkru_ad(regs->pkru, key) ||
             (kind == VMS_ACC_WRITE && vms_pkru_wd(regs->pkru, key) &&
              (regs->user || (regs->cr0 & VMS_CR0_WP)));
    }
    if (ok && !pk)
        return 0;
    return VMS_PFERR_P | vms_access_error_bits(regs, kind) | (pk ? VMS_PFERR_PK : 0);
}

/* The state of one walk in progress. */
typedef struct walk_state {
    uint64_t table;                       /* physical address of the table to read next */
    unsigned level;                       /* its level */
    unsigned first;                       /* level of the first entry read from memory */
    uint8_t rw, us, xd;                   /* rights combined over the levels so far */
    uint64_t rsvd;                        /* rsvd_mask's part common to every level */
    uint64_t xd_bit;                      /* VMS_PTE_XD when EFER.NXE = 1 (XD counts), else 0 */
    uint64_t ptep[6], pte[6], next[6];    /* by level: entry address, value, table below */
    uint8_t rw_at[6], us_at[6], xd_at[6]; /* combined rights down to each level */
} walk_state;

/* Record a fault and count it; returns false so callers can `return fail(...)`. */
static bool fail(vms_fault *f, vms_walk_stats *stats, vms_fault_kind kind, uint64_t va, uint32_t ec,
                 unsigned level, uint64_t pa)
{
    *f = (vms_fault){kind, va, ec, level, pa, ec};
    stats->faults++;
    return false;
}

/* Begin at the root, or below the deepest level a PWC holds for (pcid, va). */
static void start(walk_state *w, vms_pwc *pwc, const vms_regs *regs, uint64_t va,
                  vms_walk_stats *stats, vms_walk_trace *trace)
{
    w->table = vms_regs_root(regs);
    w->level = vms_regs_levels(regs);
    w->rw = w->us = 1;
    w->xd = 0;
    w->rsvd = rsvd_mask(regs, 0, VMS_LEVEL_PT); /* (a PT entry has no level-dependent bits) */
    w->xd_bit = (regs->efer & VMS_EFER_NXE) ? VMS_PTE_XD : 0;
    vms_pwc_entry e;
    unsigned hit = pwc ? vms_pwc_lookup(pwc, vms_regs_pcid(regs), va, &e) : 0;
    if (hit) {
        assert(hit >= VMS_LEVEL_PD && hit <= w->level);
        w->table = e.table_pa;
        w->level = hit - 1;
        w->rw = e.rw;
        w->us = e.us;
        w->xd = e.xd;
        stats->pwc_hits++;
    }
    w->first = w->level;
    if (trace) {
        trace->nsteps = 0;
        trace->pwc_level = hit;
    }
}

/* Set A in every entry read (and D in the leaf on a write), writing back only the
 * entries that change. Returns false (with *pa) if a write-back fails on the bus. */
static bool set_accessed_dirty(vms_bus *bus, walk_state *w, unsigned leaf, bool write,
                               vms_walk_stats *stats, uint64_t *pa)
{
    for (unsigned l = w->first; l >= leaf; l--) {
        uint64_t v = w->pte[l] | VMS_PTE_A | (l == leaf && write ? VMS_PTE_D : 0);
        if (v == w->pte[l])
            continue;
        if (vmsi_bus_write64(bus, w->ptep[l], v) != VMS_OK) {
            *pa = w->ptep[l];
            return false;
        }
        w->pte[l] = v;
        stats->ad_writes++;
    }
    return true;
}

/* Remember each table-pointing entry this walk read, with its combined rights. */
static void fill_pwc(vms_pwc *pwc, const vms_regs *regs, uint64_t va, const walk_state *w,
                     unsigned leaf)
{
    for (unsigned l = w->first; l > leaf && l >= VMS_LEVEL_PD; l--) {
        vms_pwc_entry e = {w->next[l], w->rw_at[l], w->us_at[l], w->xd_at[l]};
        vms_pwc_fill(pwc, vms_regs_pcid(regs), va, l, &e);
    }
}

/* The translation a leaf at `level` gives, with the rights combined in w. */
static vms_xlate make_xlate(const vms_regs *regs, const walk_state *w, uint64_t pte, unsigned level)
{
    vms_xlate x;
    x.size = (vms_pgsize)(level - 1);
    x.page_pa = vms_pte_addr(pte) & ~(vms_pgsize_bytes(x.size) - 1);
    x.rw = w->rw;
    x.us = w->us;
    x.xd = w->xd;
    x.global = (pte & VMS_PTE_G) != 0;
    x.dirty = (pte & VMS_PTE_D) != 0;
    x.pkey = (regs->cr4 & VMS_CR4_PKE) ? (uint8_t)vms_pte_pkey(pte) : 0;
    x.pcd = (pte & VMS_PTE_PCD) != 0;
    x.pwt = (pte & VMS_PTE_PWT) != 0;
    x.nr = 0;
    return x;
}

/*
 * Read one entry at w->level and fold it in. Returns 1 at a leaf, 0 to go on to the
 * next level, -1 on a fault (filled in).
 */
static int step(vms_bus *bus, const vms_regs *regs, uint64_t va, vms_access_kind kind,
                walk_state *w, vms_fault *fault, vms_walk_stats *stats, vms_walk_trace *trace)
{
    unsigned l = w->level;
    unsigned idx = vms_va_index(va, l);
    uint64_t ptep = w->table + 8u * idx, pte;
    if (vmsi_bus_read64(bus, ptep, &pte) != VMS_OK) /* simulated RAM (bus_impl.h) */
        return fail(fault, stats, VMS_FAULT_BUS, va, 0, l, ptep), -1;
    stats->mem_refs++;
    stats->refs_by_level[l]++;
    if (trace)
        trace->step[trace->nsteps++] = (vms_walk_step){l, w->table, idx, ptep, pte};
    w->ptep[l] = ptep;
    w->pte[l] = pte;
    /* (the error code's access bits are computed only for a fault) */
    if (!vms_pte_present(pte))
        return fail(fault, stats, VMS_FAULT_PF, va, vms_access_error_bits(regs, kind), l, 0), -1;
    if (pte & (w->rsvd | vmsi_x86_struct_rsvd(pte, l)))
        return fail(fault, stats, VMS_FAULT_PF, va,
                    vms_access_error_bits(regs, kind) | VMS_PFERR_P | VMS_PFERR_RSVD, l, 0),
               -1;
    w->rw &= (pte & VMS_PTE_RW) != 0;
    w->us &= (pte & VMS_PTE_US) != 0;
    w->xd |= (pte & w->xd_bit) != 0;
    w->rw_at[l] = w->rw;
    w->us_at[l] = w->us;
    w->xd_at[l] = w->xd;
    if (vms_pte_leaf(pte, l))
        return 1;
    w->next[l] = vms_pte_addr(pte);
    w->table = w->next[l];
    w->level = l - 1;
    return 0;
}

/*
 * The walk without a trace, specialised for the x86-64 radix tree: the same reads, checks,
 * A/D write-backs, PWC operations, counters and faults as the stepwise walk above (which
 * serves walks with a trace), with the levels unrolled so that each level's shift,
 * reserved bits and leaf test are constants, the state in locals, and the rights folded
 * as PTE bits: RW and US stay set while every level sets them, XD is set once a level
 * sets it (counted only with EFER.NXE). tests/test_walk.c runs both against its model.
 */
typedef struct fast_state {
    uint64_t ptep[6], pte[6], next[6]; /* by level: entry address, value, table below */
    uint64_t rat[6];                   /* the rights folded down to each level */
} fast_state;

/* Read and fold the level-L entry of the table at *table. Returns 1 at a leaf, 0 to go
 * on (with *table the next table), -1 on a fault (filled in). */
static inline __attribute__((always_inline)) int
fast_step(vms_bus *bus, const vms_regs *regs, uint64_t va, vms_access_kind kind, fast_state *s,
          uint64_t *table, uint64_t *r, uint64_t *all, uint64_t rsvd, uint64_t xd_bit,
          const unsigned L, vms_fault *fault, vms_walk_stats *stats)
{
    uint64_t ptep = *table + 8u * vms_va_index(va, L), pte;
    if (vmsi_bus_read64(bus, ptep, &pte) != VMS_OK)
        return fail(fault, stats, VMS_FAULT_BUS, va, 0, L, ptep), -1;
    stats->mem_refs++;
    stats->refs_by_level[L]++;
    s->ptep[L] = ptep;
    s->pte[L] = pte;
    if (!vms_pte_present(pte))
        return fail(fault, stats, VMS_FAULT_PF, va, vms_access_error_bits(regs, kind), L, 0), -1;
    if (pte & (rsvd | vmsi_x86_struct_rsvd(pte, L)))
        return fail(fault, stats, VMS_FAULT_PF, va,
                    vms_access_error_bits(regs, kind) | VMS_PFERR_P | VMS_PFERR_RSVD, L, 0),
               -1;
    *r = (*r & (pte | VMS_PTE_XD)) | (pte & xd_bit);
    *all &= pte;
    s->rat[L] = *r;
    if (vms_pte_leaf(pte, L))
        return 1;
    *table = s->next[L] = vms_pte_addr(pte);
    return 0;
}

/* The untraced walk; canonical: the caller has checked that va is canonical. */
static inline __attribute__((always_inline)) bool
walk_attrs(vms_bus *bus, vms_pwc *pwc, const vms_regs *regs, uint64_t va, vms_access_kind kind,
           vms_xlate *out, uint64_t *attrs, vms_fault *fault, vms_walk_stats *stats,
           const bool canonical)
{
    assert(regs->maxphyaddr >= 12 && regs->maxphyaddr <= 52);
    stats->walks++;
    unsigned levels = vms_regs_levels(regs);
    assert(!canonical || vms_va_canonical(va, levels));
    if (!canonical && !vms_va_canonical(va, levels))
        return fail(fault, stats, VMS_FAULT_GP, va, 0, levels, 0);
    uint16_t pcid = vms_regs_pcid(regs);
    uint64_t table = vms_regs_root(regs), r = VMS_PTE_RW | VMS_PTE_US;
    uint64_t xd_bit = (regs->efer & VMS_EFER_NXE) ? VMS_PTE_XD : 0;
    uint64_t rsvd = rsvd_mask(regs, 0, VMS_LEVEL_PT); /* (a PT entry has no level-dependent bits) */
    unsigned first = levels;
    vms_pwc_entry e;
    unsigned hit = pwc ? vms_pwc_lookup(pwc, pcid, va, &e) : 0;
    if (hit) {
        assert(hit >= VMS_LEVEL_PD && hit <= levels);
        table = e.table_pa;
        first = hit - 1;
        r = (e.rw ? VMS_PTE_RW : 0) | (e.us ? VMS_PTE_US : 0) | (e.xd ? VMS_PTE_XD : 0);
        stats->pwc_hits++;
    }
    fast_state s;
    uint64_t all = ~UINT64_C(0); /* the bits every entry read has */
    unsigned leaf;
    int st;
#define STEP(L)                                                                                    \
    st = fast_step(bus, regs, va, kind, &s, &table, &r, &all, rsvd, xd_bit, L, fault, stats);      \
    if (st < 0)                                                                                    \
        return false;                                                                              \
    if (st > 0) {                                                                                  \
        leaf = L;                                                                                  \
        goto at_leaf;                                                                              \
    }
    switch (first) {
    case 5:
        STEP(5) /* fallthrough */
    case 4:
        STEP(4) /* fallthrough */
    case 3:
        STEP(3) /* fallthrough */
    case 2:
        STEP(2) /* fallthrough */
    default:
        assert(first >= 1);
        STEP(1)
    }
#undef STEP
    return false; /* (not reached: a PT entry is always a leaf) */
at_leaf:;
    uint64_t pte = s.pte[leaf];
    /* The leaf's translation, as make_xlate builds it (D is set below). */
#define LEAF_XLATE(X)                                                                              \
    do {                                                                                           \
        (X).size = (vms_pgsize)(leaf - 1);                                                         \
        (X).page_pa = vms_pte_addr(pte) & ~(vms_pgsize_bytes((X).size) - 1);                       \
        (X).rw = (r & VMS_PTE_RW) != 0;                                                            \
        (X).us = (r & VMS_PTE_US) != 0;                                                            \
        (X).xd = (r & VMS_PTE_XD) != 0;                                                            \
        (X).global = (pte & VMS_PTE_G) != 0;                                                       \
        (X).dirty = (pte & VMS_PTE_D) != 0;                                                        \
        (X).pkey = (regs->cr4 & VMS_CR4_PKE) ? (uint8_t)vms_pte_pkey(pte) : 0;                     \
        (X).pcd = (pte & VMS_PTE_PCD) != 0;                                                        \
        (X).pwt = (pte & VMS_PTE_PWT) != 0;                                                        \
        (X).nr = 0;                                                                                \
    } while (0)
    uint32_t ec = check_bits(regs, r, pte, kind);
#ifndef NDEBUG
    {
        vms_xlate dx;
        LEAF_XLATE(dx);
        assert(ec == check_access(regs, &dx, kind) && "check_bits is check_access");
    }
#endif
    if (ec)
        return fail(fault, stats, VMS_FAULT_PF, va, ec, leaf, 0);
    /* A in every entry read, D in the leaf on a write; only the entries that change (none
     * when every entry read has A and, for a write, the leaf has D). */
    if (!(all & VMS_PTE_A) || (kind == VMS_ACC_WRITE && !(pte & VMS_PTE_D))) {
        for (unsigned l = first; l >= leaf; l--) {
            uint64_t v =
                s.pte[l] | VMS_PTE_A | (l == leaf && kind == VMS_ACC_WRITE ? VMS_PTE_D : 0);
            if (v == s.pte[l])
                continue;
            if (vmsi_bus_write64(bus, s.ptep[l], v) != VMS_OK)
                return fail(fault, stats, VMS_FAULT_BUS, va, 0, leaf, s.ptep[l]);
            s.pte[l] = v;
            stats->ad_writes++;
        }
        pte = s.pte[leaf];
    }
    if (pwc)
        for (unsigned l = first; l > leaf && l >= VMS_LEVEL_PD; l--) {
            uint64_t ra = s.rat[l];
            vms_pwc_entry pe = {s.next[l], (uint8_t)(ra >> 1 & 1), (uint8_t)(ra >> 2 & 1),
                                (uint8_t)(ra >> 63)};
            vms_pwc_fill(pwc, pcid, va, l, &pe);
        }
    LEAF_XLATE(*out);
#undef LEAF_XLATE
    *attrs = r | (pte & (VMS_PTE_PWT | VMS_PTE_PCD | VMS_PTE_D)) |
             ((regs->cr4 & VMS_CR4_PKE) ? pte & VMS_PTE_PKEY_MASK : 0);
    return true;
}

bool vmsi_x86_walk_attrs(vms_bus *bus, vms_pwc *pwc, const vms_regs *regs, uint64_t va,
                         vms_access_kind kind, vms_xlate *out, uint64_t *attrs, vms_fault *fault,
                         vms_walk_stats *stats)
{
    return walk_attrs(bus, pwc, regs, va, kind, out, attrs, fault, stats, false);
}

bool vmsi_x86_walk_canonical(vms_bus *bus, vms_pwc *pwc, const vms_regs *regs, uint64_t va,
                             vms_access_kind kind, vms_xlate *out, uint64_t *attrs,
                             vms_fault *fault, vms_walk_stats *stats)
{
    return walk_attrs(bus, pwc, regs, va, kind, out, attrs, fault, stats, true);
}

bool vmsi_x86_walk(vms_bus *bus, vms_pwc *pwc, const vms_regs *regs, uint64_t va,
                   vms_access_kind kind, vms_xlate *out, vms_fault *fault, vms_walk_stats *stats,
                   vms_walk_trace *trace)
{
    if (!trace) {
        uint64_t attrs;
        return vmsi_x86_walk_attrs(bus, pwc, regs, va, kind, out, &attrs, fault, stats);
    }
    assert(regs->maxphyaddr >= 12 && regs->maxphyaddr <= 52);
    stats->walks++;
    unsigned levels = vms_regs_levels(regs);
    if (trace) {
        trace->nsteps = 0;
        trace->pwc_level = 0;
    }
    if (!vms_va_canonical(va, levels))
        return fail(fault, stats, VMS_FAULT_GP, va, 0, levels, 0);
    walk_state w;
    start(&w, pwc, regs, va, stats, trace);
    int r;
    while ((r = step(bus, regs, va, kind, &w, fault, stats, trace)) == 0)
        ;
    if (r < 0)
        return false;
    unsigned leaf = w.level;
    vms_xlate x = make_xlate(regs, &w, w.pte[leaf], leaf);
    uint32_t ec = check_access(regs, &x, kind);
    if (ec)
        return fail(fault, stats, VMS_FAULT_PF, va, ec, leaf, 0);
    uint64_t bad_pa = 0;
    if (!set_accessed_dirty(bus, &w, leaf, kind == VMS_ACC_WRITE, stats, &bad_pa))
        return fail(fault, stats, VMS_FAULT_BUS, va, 0, leaf, bad_pa);
    x.dirty = (w.pte[leaf] & VMS_PTE_D) != 0;
    if (pwc)
        fill_pwc(pwc, regs, va, &w, leaf);
    *out = x;
    return true;
}
