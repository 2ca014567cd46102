/*
 * mmu.c — the memory-management unit of a core: the path every access takes.
 *
 *   va ─► L1 TLB (iTLB for fetches, dTLB for data) ─hit─► rights check ─► pa
 *            │miss
 *            ▼
 *         L2 TLB (shared by i and d) ─hit─► fill L1 ─► rights check ─► pa
 *            │miss
 *            ▼
 *         walker (PWC, entries read from RAM, A/D set) ─► fill L2, L1 ─► pa
 *            │fails
 *            ▼
 *         fault: CR2, error code, TLB entries for va dropped (SDM §4.10.4.1)
 *
 * Rights are checked by the format's check (vms_check_access on x86-64) on the effective rights the
 * TLB cached, with the control bits and PKRU in force now (PKRU is never cached). A write that hits
 * an entry cached clean walks again so the walker sets D in memory, as Intel cores do; that walk
 * sees the tables as they are now. Costs: each step adds its configured cycles to the core's clock;
 * every step is counted.
 */
#include <string.h>

#include "arch/mips/mips.h"
#include "arch/x86_64/x86_64.h"
#include "hw/core_impl.h"
#include "hw/memside.h"
#include "hw/tlb_impl.h"

/* The rights check of the format in force (x86-64's when regs.fmt is NULL). */
static inline uint32_t check_access(const vms_core *c, const vms_xlate *x, vms_access_kind kind)
{
    if (!c->regs.fmt)
        return vms_check_access(&c->regs, x, kind);
    return c->regs.fmt->check_access(&c->regs, x, kind);
}

/* The neutral summary (VMS_FAULTF_*) of a rights fault on a TLB hit: x86's error code
 * is one; other formats' codes are their own (ESR, scause), and a fault on a cached
 * translation is always a protection fault of this access. */
static inline uint32_t hit_fault_flags(const vms_core *c, vms_access_kind kind, uint32_t err)
{
    if (!c->regs.fmt)
        return err;
    return VMS_FAULTF_PROT | (kind == VMS_ACC_WRITE ? VMS_FAULTF_WRITE : 0) |
           (kind == VMS_ACC_EXEC ? VMS_FAULTF_EXEC : 0) | (c->regs.user ? VMS_FAULTF_USER : 0);
}

/* Tell the tap of fault f (tlb_hit: raised on cached rights, no walk). */
static void report_fault(vms_core *c, const vms_fault *f, bool tlb_hit)
{
    vms_event ev = {.type = VMS_EV_FAULT,
                    .fault = {.kind = f->kind,
                              .va = f->va,
                              .error_code = f->error_code,
                              .flags = f->flags,
                              .level = f->level,
                              .pa = f->pa,
                              .tlb_hit = tlb_hit}};
    vmsi_tap_emit(&c->m->tap, (int)c->id, &ev);
}

/* Raise a fault on core c: record CR2 for #PF, drop va's TLB entries, count it.
 * tlb_hit: raised on the rights a TLB entry cached (for the tap). */
static void deliver(vms_core *c, const vms_fault *f, bool tlb_hit)
{
    c->cycles += c->m->cfg.cost.fault;
    if (vmsi_tap_on(&c->m->tap))
        report_fault(c, f, tlb_hit);
    switch (f->kind) {
    case VMS_FAULT_PF:
        c->regs.cr2 = f->va;
        c->st.faults_pf++;
        for (unsigned l = 0; l < VMS_TLB_NLEVELS; l++)
            if (c->tlb[l])
                vms_tlb_flush_va(c->tlb[l], c->ctx, f->va, true);
        break;
    case VMS_FAULT_GP:
        c->st.faults_gp++;
        break;
    case VMS_FAULT_S2: /* a VM exit: the two-stage MMU counts it (virt.h) */
        break;
    default:
        c->st.faults_bus++;
        break;
    }
}

/* The entry at ptep as it is now, read from RAM without a bus access or a count. */
static uint64_t peek_entry(const vms_core *c, uint64_t ptep)
{
    size_t n = c->regs.fmt ? (size_t)1 << c->regs.fmt->entry_shift : 8;
    uint8_t b[8] = {0};
    uint64_t v = 0;
    if (n > sizeof b || !vms_bus_is_ram(c->m->bus, ptep, n) ||
        vms_ram_read(c->m->ram, ptep, b, n) != VMS_OK)
        return 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)b[i] << (8 * i);
    return v;
}

/*
 * Tell the tap of a walk that just ended: each entry it read (walk_step, with the bits it
 * wrote back since), then the walk (refs, A/D writes: the walker's counters since refs0,
 * adw0). ok/x/fault are the walk's result.
 */
static void report_walk(vms_core *c, uint64_t va, vms_access_kind kind, vms_ev_walk_reason why,
                        bool ok, const vms_xlate *x, const vms_fault *fault,
                        const vms_walk_trace *t, uint64_t refs0, uint64_t adw0)
{
    const vmsi_tap *tap = &c->m->tap;
    for (unsigned i = 0; i < t->nsteps; i++) {
        const vms_walk_step *s = &t->step[i];
        vms_event ev = {.type = VMS_EV_WALK_STEP,
                        .walk_step = {.va = va,
                                      .level = s->level,
                                      .table_pa = s->table_pa,
                                      .index = s->index,
                                      .ptep = s->ptep,
                                      .pte = s->pte,
                                      .set = ok ? peek_entry(c, s->ptep) & ~s->pte : 0}};
        vmsi_tap_emit(tap, (int)c->id, &ev);
    }
    vms_event ev = {.type = VMS_EV_WALK,
                    .walk = {.va = va,
                             .kind = kind,
                             .reason = why,
                             .ok = ok,
                             .refs = (unsigned)(c->wstats.mem_refs - refs0),
                             .ad_writes = (unsigned)(c->wstats.ad_writes - adw0),
                             .pwc_level = t->pwc_level,
                             .size = ok ? x->size : VMS_PG_4K,
                             .page_pa = ok ? x->page_pa : 0,
                             .fault_level = ok ? 0 : fault->level}};
    vmsi_tap_emit(tap, (int)c->id, &ev);
}

/* walk_and_fill on the plain path: any format, a software TLB, a guest, caches, a tap,
 * a trace wanted. */
static __attribute__((noinline)) bool
walk_and_fill_plain(vms_core *c, uint64_t va, vms_access_kind kind, vms_tlb *l1, vms_xlate *x,
                    vms_fault *fault, vms_walk_trace *trace, vms_ev_walk_reason why)
{
    if (c->swtlb) /* software-managed: the JTLB and the kernel's refill (arch/mips) */
        return vmsi_mips_miss(c, va, kind, l1, x, fault);
    if (c->nested) { /* in a guest: the two-dimensional walk (told as one walk, no steps) */
        uint64_t refs0 = c->wstats.mem_refs, adw0 = c->wstats.ad_writes;
        bool ok = vmsi_nested_walk_and_fill(c, va, kind, l1, x, fault);
        if (vmsi_tap_on(&c->m->tap)) {
            vms_walk_trace none = {0};
            report_walk(c, va, kind, why, ok, x, fault, &none, refs0, adw0);
        }
        return ok;
    }
    const vms_cost_config *cost = &c->m->cfg.cost;
    uint64_t refs = c->wstats.mem_refs, adw = c->wstats.ad_writes, pwch = c->wstats.pwc_hits;
    bool tap = vmsi_tap_on(&c->m->tap);
    vms_walk_trace local; /* with caches on, a tap, or the plain path: the entries read */
    if ((c->m->ms || tap || c->walk_plain) && !trace) {
        trace = &local;
        local.nsteps = local.pwc_level = 0;
    }
    bool ok = vms_walk(c->m->bus, c->pwc, &c->regs, va, kind, x, fault, &c->wstats, trace);
    c->cycles += (c->m->ms ? vmsi_core_walk_mem(c, trace, ok)
                           : (c->wstats.mem_refs - refs) * cost->walk_ref) +
                 (c->wstats.ad_writes - adw) * cost->ad_write +
                 (c->wstats.pwc_hits - pwch) * cost->pwc_hit;
    if (tap)
        report_walk(c, va, kind, why, ok, x, fault, trace, refs, adw);
    if (!ok)
        return false;
    vms_xlate fill = *x;
    fill.global = fill.global && c->pge; /* G is ignored unless CR4.PGE */
    if (c->tlb[VMS_TLB_L2])
        vms_tlb_fill(c->tlb[VMS_TLB_L2], c->ctx, va, &fill);
    if (l1)
        vms_tlb_fill(l1, c->ctx, va, &fill);
    return true;
}

/*
 * walk_and_fill's fused x86-64 path: the walker without a trace (vmsi_x86_walk_attrs),
 * which also gives the TLB entries' flag bits, then both fills in one call
 * (vmsi_tlb_fill2_attrs), with no copy of the translation. The same walk, counters,
 * cycles and fills as the plain path (tests/test_replay.c compares them: walk_plain).
 */
static __attribute__((noinline)) bool walk_and_fill_x86(vms_core *c, uint64_t va,
                                                        vms_access_kind kind, vms_tlb *l1,
                                                        vms_xlate *x, vms_fault *fault)
{
    const vms_cost_config *cost = &c->m->cfg.cost;
    uint64_t refs = c->wstats.mem_refs, adw = c->wstats.ad_writes, pwch = c->wstats.pwc_hits;
    uint64_t attrs;
    /* (translate_body found va canonical before any lookup) */
    bool ok = vmsi_x86_walk_canonical(c->m->bus, c->pwc, &c->regs, va, kind, x, &attrs, fault,
                                      &c->wstats);
    c->cycles += (c->wstats.mem_refs - refs) * cost->walk_ref +
                 (c->wstats.ad_writes - adw) * cost->ad_write +
                 (c->wstats.pwc_hits - pwch) * cost->pwc_hit;
    if (!ok)
        return false;
    /* G is ignored unless CR4.PGE */
    vmsi_tlb_fill2_attrs(c->tlb[VMS_TLB_L2], l1, c->ctx, va, x, x->global && c->pge, attrs);
    return true;
}

/* Walk for va and, on success, fill the L2 and L1 TLBs. Charges the walk's cycles. why:
 * the reason, for the tap. The fused path when the core translates x86-64 natively (no
 * software TLB, no guest) with no caches, no tap and no trace wanted, else the plain one. */
static inline bool walk_and_fill(vms_core *c, uint64_t va, vms_access_kind kind, vms_tlb *l1,
                                 vms_xlate *x, vms_fault *fault, vms_walk_trace *trace,
                                 vms_ev_walk_reason why)
{
    if (!c->regs.fmt && !c->swtlb && !c->nested && !c->m->ms && !trace && !c->walk_plain &&
        !vmsi_tap_on(&c->m->tap))
        return walk_and_fill_x86(c, va, kind, l1, x, fault);
    return walk_and_fill_plain(c, va, kind, l1, x, fault, trace, why);
}

/* Tell the tap of an access beginning, and of a TLB level's lookup. */
static void report_access(vms_core *c, uint64_t va, vms_access_kind kind)
{
    vms_event ev = {.type = VMS_EV_ACCESS, .access = {va, kind, c->regs.user}};
    vmsi_tap_emit(&c->m->tap, (int)c->id, &ev);
}

static void report_lookup(vms_core *c, vms_tlb_level level, uint64_t va, bool hit,
                          const vms_xlate *x)
{
    vms_event ev = {.type = VMS_EV_TLB_LOOKUP,
                    .tlb_lookup = {.level = level,
                                   .va = va,
                                   .ctx = c->ctx,
                                   .hit = hit,
                                   .size = hit ? x->size : VMS_PG_4K,
                                   .page_pa = hit ? x->page_pa : 0}};
    vmsi_tap_emit(&c->m->tap, (int)c->id, &ev);
}

/* A lookup of TLB level `level` (t), reported when obs. */
static inline __attribute__((always_inline)) bool
lookup(vms_core *c, vms_tlb *t, vms_tlb_level level, uint64_t va, vms_xlate *x, const bool obs)
{
    bool hit = vmsi_tlb_lookup(t, c->ctx, va, x);
    if (obs)
        report_lookup(c, level, va, hit, x);
    return hit;
}

/*
 * The translation path (vms_core_translate's contract), inline so that the single
 * access and the batch share one copy of the model: lookups go through
 * vmsi_tlb_lookup, whose first step is the TLB's repeat memo. obs (a constant at each
 * instantiation): tell the tap of the access and of each lookup; translate() takes the
 * observed copy when an observer is installed, so without one the path pays a branch.
 */
static inline __attribute__((always_inline)) bool
translate_body(vms_core *c, uint64_t va, vms_access_kind kind, vms_xlate *xout, uint64_t *pa,
               vms_fault *fault, vms_walk_trace *trace, const bool obs)
{
    const vms_cost_config *cost = &c->m->cfg.cost;
    vms_tlb_level l1lvl = kind == VMS_ACC_EXEC ? VMS_TLB_L1I : VMS_TLB_L1D;
    vms_tlb *l1 = c->tlb[l1lvl];
    vms_tlb *l2 = c->tlb[VMS_TLB_L2];
    vms_xlate x;
    c->st.accesses++;
    c->st.by_kind[kind]++;
    if (obs)
        report_access(c, va, kind);
    if (trace)
        trace->nsteps = trace->pwc_level = 0;
    if (c->regs.fmt ? !vms_fmt_canonical(c->regs.fmt, va)
                    : !vms_va_canonical(va, vms_regs_levels(&c->regs))) {
        /* #GP before any lookup (SDM Vol. 1 §3.3.7.1): TLB tags keep only VA bits 56:0,
         * so a non-canonical alias of a cached page must never reach the TLBs. Other
         * formats fault in their own terms (AArch64: a Translation fault, level 0),
         * which their walker reports without reading memory. */
        if (c->regs.fmt) {
            vms_xlate none;
            vms_walk_trace local;
            uint64_t refs = c->wstats.mem_refs, adw = c->wstats.ad_writes;
            if (obs && !trace)
                trace = &local;
            bool ok =
                vms_walk(c->m->bus, c->pwc, &c->regs, va, kind, &none, fault, &c->wstats, trace);
            assert(!ok && "a format's walker accepted an address outside its range");
            if (obs)
                report_walk(c, va, kind, VMS_EV_WALK_RANGE, ok, &none, fault, trace, refs, adw);
            (void)ok;
            deliver(c, fault, false);
            return false;
        }
        *fault = (vms_fault){.kind = VMS_FAULT_GP, .va = va, .level = vms_regs_levels(&c->regs)};
        deliver(c, fault, false);
        return false;
    }

    if (l1 && lookup(c, l1, l1lvl, va, &x, obs)) {
        c->cycles += cost->l1_hit;
    } else if (l2 && lookup(c, l2, VMS_TLB_L2, va, &x, obs)) {
        c->cycles += cost->l2_hit;
        if (l1)
            vms_tlb_fill(l1, c->ctx, va, &x);
    } else {
        if (!walk_and_fill(c, va, kind, l1, &x, fault, trace, VMS_EV_WALK_MISS)) {
            deliver(c, fault, false);
            return false;
        }
        goto done; /* the walker checked the rights */
    }

    uint32_t err = check_access(c, &x, kind);
    if (err && c->nested) {
        /* A composed entry holds both stages' rights: which stage refuses is the walk's
         * answer (a guest #PF, or a VM exit with the guest-physical address). */
        if (!walk_and_fill(c, va, kind, l1, &x, fault, trace, VMS_EV_WALK_MISS)) {
            deliver(c, fault, false);
            return false;
        }
        goto done;
    }
    if (err) {
        c->st.tlb_hit_faults++;
        *fault = (vms_fault){.kind = VMS_FAULT_PF,
                             .va = va,
                             .error_code = err,
                             .flags = hit_fault_flags(c, kind, err)};
        deliver(c, fault, true);
        return false;
    }
    if (kind == VMS_ACC_WRITE && !x.dirty) {
        /* Set D in memory: a walk of the current tables (which may now fault). */
        c->st.dirty_rewalks++;
        if (obs) {
            vms_event ev = {.type = VMS_EV_DIRTY_REWALK, .dirty_rewalk = {va}};
            vmsi_tap_emit(&c->m->tap, (int)c->id, &ev);
        }
        if (!walk_and_fill(c, va, kind, l1, &x, fault, trace, VMS_EV_WALK_DIRTY)) {
            deliver(c, fault, false);
            return false;
        }
    }
done:
    if (xout)
        *xout = x;
    *pa = vms_xlate_pa(&x, va);
    return true;
}

/* The observed copy of the translation path (out of line: it is the rare one). */
static __attribute__((noinline)) bool translate_observed(vms_core *c, uint64_t va,
                                                         vms_access_kind kind, vms_xlate *xout,
                                                         uint64_t *pa, vms_fault *fault,
                                                         vms_walk_trace *trace)
{
    return translate_body(c, va, kind, xout, pa, fault, trace, true);
}

/* The path without an observer (the replay batch takes it when it knows there is none). */
static inline bool translate_quiet(vms_core *c, uint64_t va, vms_access_kind kind, vms_xlate *xout,
                                   uint64_t *pa, vms_fault *fault, vms_walk_trace *trace)
{
    return translate_body(c, va, kind, xout, pa, fault, trace, false);
}

/* The translation path: the observed copy when an observer is installed (one branch). */
static inline bool translate(vms_core *c, uint64_t va, vms_access_kind kind, vms_xlate *xout,
                             uint64_t *pa, vms_fault *fault, vms_walk_trace *trace)
{
    if (vmsi_tap_on(&c->m->tap))
        return translate_observed(c, va, kind, xout, pa, fault, trace);
    return translate_quiet(c, va, kind, xout, pa, fault, trace);
}

bool vms_core_translate(vms_core *c, uint64_t va, vms_access_kind kind, vms_xlate *xout,
                        uint64_t *pa, vms_fault *fault, vms_walk_trace *trace)
{
    return translate(c, va, kind, xout, pa, fault, trace);
}

/* Up to this many page pieces are translated before any byte moves (see core.h). */
#define MAX_PIECES 16

typedef struct piece {
    uint64_t pa;
    size_t len;
} piece;

/* Move the bytes of translated pieces through the bus; a bus error is a fault. */
static bool move(vms_core *c, const piece *p, unsigned n, vms_access_kind kind, uint8_t *buf,
                 vms_fault *fault)
{
    for (unsigned i = 0; i < n; i++) {
        if (c->m->ms && kind == VMS_ACC_WRITE)
            vmsi_memside_cpu_store(c->m->ms, p[i].pa, p[i].len); /* DRAM keeps the old bytes */
        vms_status st = kind == VMS_ACC_WRITE ? vms_bus_write(c->m->bus, p[i].pa, buf, p[i].len)
                                              : vms_bus_read(c->m->bus, p[i].pa, buf, p[i].len);
        if (st != VMS_OK) {
            *fault = (vms_fault){.kind = VMS_FAULT_BUS, .pa = p[i].pa};
            deliver(c, fault, false);
            return false;
        }
        buf += p[i].len;
    }
    return true;
}

_Static_assert(MAX_PIECES == 16, "vms_access_is_string (core.h) knows MAX_PIECES");

vms_access_result vms_core_access(vms_core *c, uint64_t va, vms_access_kind kind, void *buf,
                                  size_t len)
{
    vms_access_result r = {.ok = true};
    uint8_t *bytes = buf;
    bool first = true, string = vms_access_is_string(va, len);
    while (len > 0) {
        piece p[MAX_PIECES];
        unsigned n = 0;
        size_t done = 0;
        for (; n < MAX_PIECES && done < len; n++) {
            vms_xlate x;
            uint64_t cur = va + done;
            if (!translate(c, cur, kind, &x, &p[n].pa, &r.fault, NULL)) {
                r.ok = false;
                if (!string)
                    return r; /* one group, nothing moved: r.done is 0 */
                /* A string instruction completes the elements before the faulting one
                 * (REP MOVS updates RSI/RDI/RCX as it goes): their bytes move and r.done
                 * says how far it got, so the retry resumes at the faulting page. */
                vms_fault f = r.fault;
                if (bytes && n > 0 && !move(c, p, n, kind, bytes, &r.fault))
                    return r;
                r.fault = f;
                r.done += done;
                return r;
            }
            uint64_t room = vms_pgsize_bytes(x.size) - (cur & (vms_pgsize_bytes(x.size) - 1));
            p[n].len = len - done < room ? len - done : (size_t)room;
            done += p[n].len;
            c->cycles += c->m->cfg.cost.mem_access;
            if (c->m->ms && !x.pcd)
                c->cycles += vmsi_memside_access(c->m->ms, c->id, c->cycles, p[n].pa, p[n].len,
                                                 kind, false, NULL);
        }
        if (first)
            r.pa = p[0].pa;
        first = false;
        if (bytes) {
            if (!move(c, p, n, kind, bytes, &r.fault)) {
                r.ok = false;
                return r;
            }
            bytes += done;
        }
        r.done += done;
        va += done;
        len -= done;
    }
    return r;
}

/* The plain hits of a batch, counted by kind and page size and added to the counters
 * once (hits_of). */
typedef struct hits {
    uint64_t n[3][VMS_PG_NSIZES];
} hits;

/*
 * Add the batch's plain hits to the counters, as translate() counts each hit: the
 * core's accesses and accesses by kind, the L1 TLB's lookups, hits and hits by size,
 * and l1_hit + mem_access cycles each.
 */
static void hits_of(vms_core *c, vms_tlb *const *l1, const hits *h)
{
    const vms_cost_config *cost = &c->m->cfg.cost;
    uint64_t any = 0;
    for (unsigned k = 0; k < 3; k++)
        for (unsigned s = 0; s < VMS_PG_NSIZES; s++)
            any |= h->n[k][s];
    if (!any)
        return;
    for (unsigned k = 0; k < 3; k++) {
        uint64_t sum = 0;
        for (unsigned s = 0; s < VMS_PG_NSIZES; s++) {
            sum += h->n[k][s];
            if (l1[k])
                l1[k]->stats.hits_by_size[s] += h->n[k][s];
        }
        if (!sum)
            continue;
        c->st.accesses += sum;
        c->st.by_kind[k] += sum;
        l1[k]->stats.lookups += sum;
        l1[k]->stats.hits += sum;
        c->cycles += sum * (cost->l1_hit + cost->mem_access);
    }
}

/*
 * The replay batch's plain hits (batch below), by kind and memo slot since the slot's key
 * was learnt, and the slot's page size then: a key is valid only while its slot is
 * unchanged (every change of a slot clears its keys, tlb_impl.h), so each hit counted
 * under a key is one of that size. The keys are cleared when the batch starts, so every
 * hit is under a key learnt in this batch: `learnt` says which counters are in use (bit
 * kind * VMSI_TLB_MEMO + slot); they are set up, and h cleared, only then. A key learnt
 * again adds its slot's count to h first; the end adds the rest (fold).
 */
typedef struct bhits {
    uint64_t cnt[3][VMSI_TLB_MEMO];
    uint64_t learnt;
    hits h;
    uint8_t csize[3][VMSI_TLB_MEMO];
} bhits;
_Static_assert(3 * VMSI_TLB_MEMO <= 64, "bhits.learnt");

/* The batch's end: the hits by slot into h, then the counters (nothing when no key was
 * learnt: no hit was counted). */
static inline void fold(vms_core *c, vms_tlb *const *l1, bhits *b)
{
    if (!b->learnt)
        return;
    for (uint64_t m = b->learnt; m; m &= m - 1) {
        unsigned i = (unsigned)__builtin_ctzll(m), k = i / VMSI_TLB_MEMO, s = i % VMSI_TLB_MEMO;
        b->h.n[k][b->csize[k][s]] += b->cnt[k][s];
    }
    hits_of(c, l1, &b->h);
}

/* Learn the key of kind for memo slot mi of t: its page is a plain hit of that kind until
 * the key is cleared. */
static inline void learn(vms_tlb *t, bhits *b, vms_access_kind kind, unsigned mi)
{
    uint64_t bit = UINT64_C(1) << (kind * VMSI_TLB_MEMO + mi);
    if (!b->learnt)
        memset(&b->h, 0, sizeof b->h);
    else if (b->learnt & bit)
        b->h.n[kind][b->csize[kind][mi]] += b->cnt[kind][mi];
    b->learnt |= bit;
    b->cnt[kind][mi] = 0;
    b->csize[kind][mi] = (uint8_t)t->memo[mi].x.size;
    t->memo_key[kind][mi] = t->memo[mi].vpn;
    t->memo_keyed |= 1u << mi;
}

/*
 * One reference of the batch the long way: its pieces through translate(), each adding
 * cost.mem_access (and what the memory side charges). With the memo (memo = !ms &&
 * !plain), first the case of a fresh slot on its page that has no key of its kind yet:
 * translate() would find the slot (no touch: it is fresh), pass the rights check and need
 * no D walk — a plain hit, counted and keyed without the translation; and after a
 * translation that leaves a fresh slot on a piece's page, the last step was an L1 hit of
 * that entry whose check passed (a miss is followed by a fill or a fault, and a fill, a
 * walk or a D walk clears the memo), so the key is learnt. False on a fault (*fault).
 */
static inline __attribute__((always_inline)) bool one_ref(vms_core *c, vms_tlb *t, bhits *b,
                                                          uint64_t va, uint64_t len,
                                                          vms_access_kind kind, vms_fault *fault,
                                                          vmsi_memside *ms, const bool plain)
{
    const bool memo = !ms && !plain;
    unsigned slot = vmsi_tlb_memo_index(va);
    if (memo && t && (t->memo_flags[slot] & VMSI_MEMO_FRESH) &&
        t->memo[slot].vpn == va >> VMS_PAGE_SHIFT && t->memo[slot].ctx == c->ctx &&
        (va ^ (va + len - 1)) < VMS_PAGE_SIZE && (kind != VMS_ACC_WRITE || t->memo[slot].x.dirty) &&
        check_access(c, &t->memo[slot].x, kind) == 0) {
        learn(t, b, kind, slot);
        b->cnt[kind][slot]++;
        return true;
    }
    const uint64_t mem_access = c->m->cfg.cost.mem_access;
    for (;;) {
        vms_xlate xl;
        uint64_t pa;
        /* plain: the observed path (batch_plain runs only with an observer, and none comes
         * or goes while the batch runs: observers never call back in); else the path
         * without the branch. */
        if (!(plain  ? translate_observed(c, va, kind, &xl, &pa, fault, NULL)
              : memo ? translate_body(c, va, kind, &xl, &pa, fault, NULL, false) /* inline */
                     : translate_quiet(c, va, kind, &xl, &pa, fault, NULL)))
            return false;
        unsigned mi = vmsi_tlb_memo_index(va); /* (va: this piece) */
        if (memo && t && (t->memo_flags[mi] & VMSI_MEMO_FRESH) &&
            t->memo[mi].vpn == va >> VMS_PAGE_SHIFT)
            learn(t, b, kind, mi);
        c->cycles += mem_access;
        uint64_t room = vms_pgsize_bytes(xl.size) - (va & (vms_pgsize_bytes(xl.size) - 1));
        if (ms && !xl.pcd)
            c->cycles += vmsi_memside_access(ms, c->id, c->cycles, pa, len < room ? len : room,
                                             kind, false, NULL);
        if (len <= room)
            return true;
        va += room;
        len -= room;
    }
}

/* one_ref of the memo's batch, out of line: the batch's hit loop keeps its registers. */
static __attribute__((noinline)) bool one_ref_memo(vms_core *c, vms_tlb *t, bhits *b, uint64_t va,
                                                   uint64_t len, vms_access_kind kind,
                                                   vms_fault *fault)
{
    return one_ref(c, t, b, va, len, kind, fault, NULL, false);
}

/*
 * The batch is vms_core_access with buf == NULL, reference after reference: pieces are
 * translated in order and each adds cost.mem_access (and, with caches, what the
 * hierarchy charges); without bytes to move, the grouping into 16 pieces makes no
 * difference (vms_core_access moves nothing between groups), so one loop over the
 * pieces is the same model. The speed comes from inlining: one call per batch instead
 * of four per piece. `ms` is the machine's memory side or NULL: the body is inlined
 * twice, so that the loop without caches carries no test for them.
 *
 * Without caches, a reference inside the 4 KiB page of a fresh slot of its L1 TLB's
 * repeat memo whose key allows its kind (tlb_impl.h: memo_key) is a plain hit:
 * translate() would find the slot (and not touch its way: it is fresh), pass the rights
 * check, need no D walk and count one L1 hit — so the batch only counts it (bhits,
 * added at the end: nothing reads those counters while the batch runs, and the cycles
 * only the memory side would read). The keys are cleared here at the start (the
 * registers may have changed since the last batch) and learnt by one_ref.
 */
static inline __attribute__((always_inline)) size_t batch(vms_core *c, const vms_ref *refs,
                                                          size_t n, vms_fault *fault,
                                                          vmsi_memside *ms, const bool plain)
{
    const bool memo = !ms && !plain; /* plain hits are answered from the memo */
    vms_tlb *const l1[3] = {c->tlb[VMS_TLB_L1D], c->tlb[VMS_TLB_L1D], c->tlb[VMS_TLB_L1I]};
    _Static_assert(VMS_ACC_READ == 0 && VMS_ACC_WRITE == 1 && VMS_ACC_EXEC == 2, "l1[] by kind");
    /* The keys of each kind's L1 TLB (none without one: this never matches). */
    uint64_t nokeys[VMSI_TLB_MEMO];
    for (unsigned k = 0; k < VMSI_TLB_MEMO; k++)
        nokeys[k] = VMSI_MEMO_NOKEY;
    const uint64_t *const keys[3] = {l1[0] ? l1[0]->memo_key[0] : nokeys,
                                     l1[1] ? l1[1]->memo_key[1] : nokeys,
                                     l1[2] ? l1[2]->memo_key[2] : nokeys};
    bhits b;
    b.learnt = 0;
    if (memo)
        for (unsigned k = 1; k < 3; k++)
            if (l1[k])
                vmsi_tlb_memo_unkey_all(l1[k]);
    const vms_ref *x = refs, *const xend = refs + n;
    for (; x < xend; x++) {
        uint64_t va = x->va, len = x->len;
        vms_access_kind kind = (vms_access_kind)x->kind;
        assert(kind <= VMS_ACC_EXEC && len > 0);
        uint64_t vpn = va >> VMS_PAGE_SHIFT;
        unsigned slot = (unsigned)vpn & (VMSI_TLB_MEMO - 1);
        /* (va ^ last) < 4 KiB: the reference's last byte is in va's page */
        if (memo && keys[kind][slot] == vpn && (va ^ (va + len - 1)) < VMS_PAGE_SIZE) {
            assert(l1[kind] && (l1[kind]->memo_flags[slot] & VMSI_MEMO_FRESH) &&
                   l1[kind]->memo[slot].vpn == vpn && l1[kind]->memo[slot].ctx == c->ctx &&
                   l1[kind]->memo[slot].x.size == b.csize[kind][slot]);
            b.cnt[kind][slot]++;
            continue;
        }
        if (!(memo ? one_ref_memo(c, l1[kind], &b, va, len, kind, fault)
                   : one_ref(c, l1[kind], &b, va, len, kind, fault, ms, plain))) {
            if (memo)
                fold(c, l1, &b);
            return (size_t)(x - refs);
        }
    }
    if (memo)
        fold(c, l1, &b);
    return n;
}

/* The batch with an observer: every reference through translate() (the plain path), so
 * that the tap hears of every lookup; the counters are the same (tests/test_events.c). */
static __attribute__((noinline)) size_t batch_plain(vms_core *c, const vms_ref *refs, size_t n,
                                                    vms_fault *fault)
{
    return batch(c, refs, n, fault, c->m->ms, true);
}

size_t vms_core_access_batch(vms_core *c, const vms_ref *refs, size_t n, vms_fault *fault)
{
    if (vmsi_tap_on(&c->m->tap))
        return batch_plain(c, refs, n, fault);
    return c->m->ms ? batch(c, refs, n, fault, c->m->ms, false)
                    : batch(c, refs, n, fault, NULL, false);
}
