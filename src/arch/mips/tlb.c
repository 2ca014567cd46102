/*
 * mips/tlb.c — a software-managed TLB, MIPS style (swtlb.h): the joint TLB (JTLB) of
 * paired entries, the CP0 registers of translation, TLBWR/TLBWI/TLBP/TLBR, the TLB
 * exceptions, and the kernel's MMU operations expressed with them. References: MIPS
 * Architecture For Programmers Vol. III, the MIPS32/MIPS64 Privileged Resource
 * Architecture (MD00090/MD00091), chapters "The MIPS MMU" (TLB organisation, address
 * translation, TLB exceptions) and "CP0 Registers" (EntryHi, EntryLo0/1, PageMask,
 * Index, Random, Wired, BadVAddr, KScratch); the MIPS R4000 Microprocessor User's
 * Manual (Heinrich, 2nd ed.), chapter 5 "TLB exceptions" (refill servicing: EXL=0 goes
 * to the refill vector, a miss inside the handler to the general one).
 *
 * The life of an access on a software-TLB core (mmu.c is unchanged up to the walk):
 *
 *   va ─► micro-TLB (the L1 iTLB/dTLB, tagged by ASID) ─hit─► rights ─► pa
 *            │miss  (mmu.c calls vmsi_mips_miss where it would walk)
 *            ▼
 *         JTLB: the entry whose VPN2 (under its PageMask) and ASID (or G) match ─►
 *            │ the half that va's bit (12 or 20) selects: V, D, XI checked ─► refill
 *            │                                                    the micro-TLB ─► pa
 *            │ no entry: TLB Refill       V = 0: TLBL/TLBS Invalid
 *            │ store, D = 0: TLB Modified fetch, XI: TLBXI
 *            ▼
 *         BadVAddr, EntryHi.VPN2 := va; the kernel's handler (swtlb.h vms_mips_handler)
 *         reads its tables and writes an entry (TLBWR / TLBWI) ─► retry (ERET)
 *            │ or passes the exception on
 *            ▼
 *         page fault (error_code = ExcCode): the kernel's ordinary fault path
 *
 * The micro-TLBs hold only what the JTLB holds: every TLBWR/TLBWI drops the micro-TLB
 * entries of the pair it overwrites and of the pair it writes (real micro-TLBs are
 * flushed at least this often), so a micro-TLB hit is always the JTLB's answer. Their
 * entries keep D in `dirty` (a store hitting a clean one re-enters here through
 * mmu.c's dirty re-walk and raises TLB Modified), XI in `xd`, and rw = 1: MIPS has no
 * write-protect bit besides D. A user access to a kernel-segment address (VA bit 63)
 * is an address error before any lookup; its micro-TLB entries are supervisor-only
 * (us = 0), so the rights check of mmu.c refuses them to user mode too.
 *
 * Random counts down once per cycle of the core's clock from N-1 to Wired and wraps
 * (PRA: "decremented by one almost every clock"), restarting at N-1 when Wired is
 * written; so it is deterministic and never names a wired entry.
 */
#include <assert.h>

#include "arch/mips/mips.h"

#include "hw/core_impl.h"
#include "hw/memside.h"
#include "util/util.h"

#define VPN2_LOW    UINT64_C(0x1FFF) /* VA bits 12:0 are below VPN2 */
#define HALF_1M     (UINT64_C(1) << 20)
#define PAGE_2M     (UINT64_C(1) << 21)
#define MAX_RETRIES 4 /* refill, invalid, modified: an access needs at most three */

/* ---- creation ---- */

vms_status vmsi_swtlb_validate(const vms_swtlb_config *cfg, const vms_pt_format *fmt, vms_err *err)
{
    if (!cfg->on)
        return VMS_OK;
    if (cfg->entries < 1 || cfg->entries > VMS_SWTLB_MAX_ENTRIES)
        return vmsi_err(err, VMS_ERR_INVAL, "tlb.jtlb %u: expected 1 … %u entries", cfg->entries,
                        VMS_SWTLB_MAX_ENTRIES);
    if (cfg->wired >= cfg->entries)
        return vmsi_err(err, VMS_ERR_INVAL,
                        "tlb.wired %u: expected 0 … %u (below tlb.jtlb, %u entries)", cfg->wired,
                        cfg->entries - 1, cfg->entries);
    if (fmt && strcmp(fmt->arch, "x86_64") != 0)
        return vmsi_err(err, VMS_ERR_INVAL,
                        "tlb.mode software: the refill handler reads x86_64 tables; arch %s is "
                        "not supported with it",
                        fmt->arch);
    return VMS_OK;
}

/* An entry that never matches (EntryHi.EHINV). */
static const vms_mips_tlb_entry invalid_entry = {.ehinv = true};

vms_status vmsi_swtlb_create(const vms_allocator *a, const vms_swtlb_config *cfg, vmsi_swtlb **out)
{
    vmsi_swtlb *s = vmsi_zalloc(a, sizeof *s);
    if (!s)
        return VMS_ERR_NOMEM;
    s->e = vmsi_calloc(a, cfg->entries, sizeof *s->e);
    if (!s->e) {
        vmsi_free(a, s, sizeof *s);
        return VMS_ERR_NOMEM;
    }
    s->n = cfg->entries;
    for (unsigned i = 0; i < s->n; i++)
        s->e[i] = invalid_entry;
    s->cp0.wired = cfg->wired;
    *out = s;
    return VMS_OK;
}

void vmsi_swtlb_destroy(const vms_allocator *a, vmsi_swtlb *s)
{
    if (!s)
        return;
    vmsi_free(a, s->e, s->n * sizeof *s->e);
    vmsi_free(a, s, sizeof *s);
}

/* ---- entries ---- */

/* log2 of an entry's half (12 for 4 KiB pages, 20 for 1 MiB): Mask's ones widen it. */
static inline unsigned half_shift(uint64_t pagemask)
{
    return 12u + (unsigned)__builtin_popcountll(pagemask);
}

/* Does e translate va for asid (VPN2 under its mask; the ASID, or G)? */
static inline bool matches(const vms_mips_tlb_entry *e, uint64_t va, uint32_t asid)
{
    return !e->ehinv && (va & ~(VPN2_LOW | e->pagemask)) == e->vpn2 && (e->g || e->asid == asid);
}

/* The lowest-numbered entry matching (va, asid), or -1. */
static int match(const vmsi_swtlb *s, uint64_t va, uint32_t asid)
{
    for (unsigned i = 0; i < s->n; i++)
        if (matches(&s->e[i], va, asid))
            return (int)i;
    return -1;
}

/* Physical base of an EntryLo's half. */
static inline uint64_t lo_pa(uint64_t lo)
{
    return ((lo & VMS_MIPS_LO_PFN_MASK) >> VMS_MIPS_LO_PFN_SHIFT) << 12;
}

/* Drop from c's micro-TLBs what entry e may have put there (drop_pair's contract: a
 * pair of 4 KiB halves was cached as two 4 KiB pages, a pair of 1 MiB halves as one
 * 2 MiB page; other masks are never cached there). */
static void drop_pair(vms_core *c, const vms_mips_tlb_entry *e)
{
    if (e->ehinv)
        return;
    for (unsigned l = 0; l < VMS_TLB_L2; l++) {
        if (!c->tlb[l])
            continue;
        vms_tlb_flush_va_any(c->tlb[l], e->vpn2);
        if (e->pagemask == VMS_MIPS_PM_4K)
            vms_tlb_flush_va_any(c->tlb[l], e->vpn2 | UINT64_C(0x1000));
    }
}

/* Write the registers into entry i (TLBWR/TLBWI's common body). */
static void write_entry(vms_core *c, unsigned i, bool random)
{
    vmsi_swtlb *s = c->swtlb;
    const vms_mips_cp0 *r = &s->cp0;
    drop_pair(c, &s->e[i]);
    vms_mips_tlb_entry *e = &s->e[i];
    e->pagemask = r->pagemask;
    e->vpn2 = r->entryhi & ~(VPN2_LOW | r->pagemask);
    e->asid = r->asid;
    e->g = (r->entrylo[0] & r->entrylo[1] & VMS_MIPS_LO_G) != 0;
    e->ehinv = (r->entryhi & VMS_MIPS_HI_EHINV) != 0;
    e->lo[0] = r->entrylo[0];
    e->lo[1] = r->entrylo[1];
    drop_pair(c, e);
    if (s->tr.nexc) {
        vms_mips_trace_exc *t = &s->tr.exc[s->tr.nexc - 1];
        t->wrote = true;
        t->random = random;
        t->windex = i;
        t->random_reg = random ? i : vms_mips_random(c);
        t->written = *e;
    }
}

/* ---- the registers and instructions (swtlb.h) ---- */

bool vms_core_swtlb(const vms_core *c)
{
    return c->swtlb != NULL;
}

void vms_core_mips_set_handler(vms_core *c, vms_mips_handler fn, void *ctx)
{
    if (!c->swtlb)
        return;
    c->swtlb->fn = fn;
    c->swtlb->fn_ctx = ctx;
}

vms_mips_cp0 *vms_core_mips_cp0(vms_core *c)
{
    return c->swtlb ? &c->swtlb->cp0 : NULL;
}

unsigned vms_mips_tlb_size(const vms_core *c)
{
    return c->swtlb ? c->swtlb->n : 0;
}

void vms_mips_write_entryhi(vms_core *c, uint64_t entryhi, uint32_t asid)
{
    vmsi_swtlb *s = c->swtlb;
    s->cp0.entryhi = entryhi;
    s->cp0.asid = asid;
    c->ctx = vms_ctx_make(0, asid); /* the micro-TLBs' tag follows EntryHi.ASID */
}

uint32_t vms_mips_random(const vms_core *c)
{
    const vmsi_swtlb *s = c->swtlb;
    uint32_t span = s->n - s->cp0.wired; /* >= 1: Wired < N */
    return s->n - 1 - (uint32_t)((c->cycles - s->random_epoch) % span);
}

vms_status vms_mips_write_wired(vms_core *c, uint32_t wired)
{
    vmsi_swtlb *s = c->swtlb;
    if (wired >= s->n)
        return VMS_ERR_INVAL;
    s->cp0.wired = wired;
    s->random_epoch = c->cycles; /* Random := N-1 */
    return VMS_OK;
}

void vms_mips_tlbwr(vms_core *c)
{
    c->swtlb->st.tlbwr++;
    write_entry(c, vms_mips_random(c), true);
}

vms_status vms_mips_tlbwi(vms_core *c)
{
    vmsi_swtlb *s = c->swtlb;
    uint32_t i = s->cp0.index & ~VMS_MIPS_INDEX_P;
    if (i >= s->n)
        return VMS_ERR_INVAL;
    s->st.tlbwi++;
    write_entry(c, i, false);
    return VMS_OK;
}

void vms_mips_tlbp(vms_core *c)
{
    vmsi_swtlb *s = c->swtlb;
    s->st.tlbp++;
    int i = match(s, s->cp0.entryhi & ~VPN2_LOW, s->cp0.asid);
    s->cp0.index = i < 0 ? VMS_MIPS_INDEX_P : (uint32_t)i;
}

vms_status vms_mips_tlbr(vms_core *c)
{
    vmsi_swtlb *s = c->swtlb;
    uint32_t i = s->cp0.index & ~VMS_MIPS_INDEX_P;
    if (i >= s->n)
        return VMS_ERR_INVAL;
    s->st.tlbr++;
    const vms_mips_tlb_entry *e = &s->e[i];
    s->cp0.pagemask = e->pagemask;
    s->cp0.entrylo[0] = e->lo[0];
    s->cp0.entrylo[1] = e->lo[1];
    /* EntryHi.ASID is loaded too, as on MIPS: software saves and restores it. */
    vms_mips_write_entryhi(c, e->vpn2 | (e->ehinv ? VMS_MIPS_HI_EHINV : 0), e->asid);
    return VMS_OK;
}

bool vms_mips_tlb_entry_at(const vms_core *c, unsigned i, vms_mips_tlb_entry *out)
{
    if (!c->swtlb || i >= c->swtlb->n)
        return false;
    *out = c->swtlb->e[i];
    return true;
}

void vms_mips_last_trace(const vms_core *c, vms_mips_trace *out)
{
    if (c->swtlb)
        *out = c->swtlb->tr;
    else
        memset(out, 0, sizeof *out);
}

const vms_swtlb_stats *vms_core_swtlb_stats(const vms_core *c)
{
    return c->swtlb ? &c->swtlb->st : NULL;
}

/* ---- the handler's memory references ---- */

bool vms_mips_kload(vms_core *c, uint64_t pa, unsigned level, uint64_t *val)
{
    c->wstats.mem_refs++;
    if (level < 6)
        c->wstats.refs_by_level[level]++;
    if (c->m->ms)
        c->cycles +=
            vmsi_memside_access(c->m->ms, c->id, c->cycles, pa, 8, VMS_ACC_READ, true, NULL);
    else
        c->cycles += c->m->cfg.cost.walk_ref;
    bool ok = vms_bus_read64(c->m->bus, pa, val) == VMS_OK;
    if (!ok)
        *val = 0;
    if (vmsi_tap_on(&c->m->tap)) { /* the tap: a step of the handler's walk */
        vms_event ev = {.type = VMS_EV_WALK_STEP,
                        .walk_step = {.va = c->swtlb ? c->swtlb->cp0.badvaddr : 0,
                                      .level = level,
                                      .table_pa = pa & ~UINT64_C(0xFFF),
                                      .index = (unsigned)((pa & 0xFFF) >> 3),
                                      .ptep = pa,
                                      .pte = *val}};
        vmsi_tap_emit(&c->m->tap, (int)c->id, &ev);
    }
    vms_mips_trace *t = c->swtlb ? &c->swtlb->tr : NULL;
    if (t && t->nexc && t->nloads < VMS_MIPS_TRACE_LOADS) {
        t->load[t->nloads++] =
            (vms_walk_step){level, pa & ~UINT64_C(0xFFF), (unsigned)((pa & 0xFFF) >> 3), pa, *val};
        t->exc[t->nexc - 1].nloads++;
    }
    return ok;
}

bool vms_mips_kstore(vms_core *c, uint64_t pa, uint64_t val)
{
    c->wstats.ad_writes++;
    c->cycles += c->m->cfg.cost.ad_write;
    if (c->swtlb && c->swtlb->tr.nexc)
        c->swtlb->tr.exc[c->swtlb->tr.nexc - 1].nstores++;
    if (c->m->ms) {
        vmsi_memside_cpu_store(c->m->ms, pa, 8);
        (void)vmsi_memside_access(c->m->ms, c->id, c->cycles, pa, 8, VMS_ACC_WRITE, false, NULL);
    }
    return vms_bus_write64(c->m->bus, pa, val) == VMS_OK;
}

/* ---- the micro-TLB miss and the TLB exceptions ---- */

/* Fill the micro-TLB with the half of entry e that va selects (see drop_pair). */
static void fill_micro(vms_core *c, vms_tlb *l1, const vms_mips_tlb_entry *e, uint64_t va,
                       const vms_xlate *x)
{
    if (!l1)
        return;
    if (e->pagemask == VMS_MIPS_PM_4K) {
        vms_tlb_fill(l1, c->ctx, va, x);
        return;
    }
    /* 1 MiB halves of one 2 MiB block, alike in everything but the frame: a 2 MiB page. */
    uint64_t pa0 = lo_pa(e->lo[0]), diff = e->lo[0] ^ e->lo[1];
    if (e->pagemask != VMS_MIPS_PM_1M || (diff & ~VMS_MIPS_LO_PFN_MASK) ||
        lo_pa(e->lo[1]) != pa0 + HALF_1M || (pa0 & (PAGE_2M - 1)))
        return;
    vms_xlate big = *x;
    big.size = VMS_PG_2M;
    big.page_pa = pa0;
    vms_tlb_fill(l1, c->ctx, va, &big);
}

/* The translation half lo gives va (its frame cut to va's 4 KiB page). */
static void xlate_of(uint64_t lo, uint64_t pagemask, uint64_t va, bool g, vms_xlate *x)
{
    uint64_t half = (UINT64_C(1) << half_shift(pagemask)) - 1;
    memset(x, 0, sizeof *x);
    x->page_pa = lo_pa(lo) + (va & half & ~UINT64_C(0xFFF));
    x->size = VMS_PG_4K;
    x->rw = 1; /* D decides (x->dirty); MIPS has no other write-protect bit */
    x->us = (va >> 63) == 0;
    x->xd = (lo & VMS_MIPS_LO_XI) != 0;
    x->nr = (lo & VMS_MIPS_LO_RI) != 0;
    x->global = g;
    x->dirty = (lo & VMS_MIPS_LO_D) != 0;
    x->pcd = ((lo & VMS_MIPS_LO_C_MASK) >> VMS_MIPS_LO_C_SHIFT) == VMS_MIPS_C_UNCACHED;
}

/* The ExcCode an exception reports for an access of `kind`. */
static uint32_t exccode(vms_mips_exc exc, vms_access_kind kind)
{
    if (exc == VMS_MIPS_EXC_MOD)
        return VMS_MIPS_EXCCODE_MOD;
    if (exc == VMS_MIPS_EXC_XI)
        return VMS_MIPS_EXCCODE_TLBXI;
    return kind == VMS_ACC_WRITE ? VMS_MIPS_EXCCODE_TLBS : VMS_MIPS_EXCCODE_TLBL;
}

/* The neutral summary of an access (VMS_FAULTF_WRITE/USER/EXEC). */
static uint32_t access_flags(const vms_core *c, vms_access_kind kind)
{
    return (kind == VMS_ACC_WRITE ? VMS_FAULTF_WRITE : 0) |
           (kind == VMS_ACC_EXEC ? VMS_FAULTF_EXEC : 0) | (c->regs.user ? VMS_FAULTF_USER : 0);
}

/* Look va up in the JTLB: the exception it raises, or -1 with *x filled on a hit. */
static int lookup(vms_core *c, uint64_t va, vms_access_kind kind, vms_tlb *l1, vms_xlate *x)
{
    vmsi_swtlb *s = c->swtlb;
    s->st.lookups++;
    c->cycles += c->m->cfg.cost.l2_hit; /* the JTLB is the second level here */
    int i = match(s, va, s->cp0.asid);
    if (i < 0)
        return VMS_MIPS_EXC_REFILL;
    const vms_mips_tlb_entry *e = &s->e[i];
    uint64_t lo = e->lo[(va >> half_shift(e->pagemask)) & 1];
    if (!(lo & VMS_MIPS_LO_V))
        return VMS_MIPS_EXC_INVALID;
    if (kind == VMS_ACC_EXEC && (lo & VMS_MIPS_LO_XI))
        return VMS_MIPS_EXC_XI;
    if (kind == VMS_ACC_WRITE && !(lo & VMS_MIPS_LO_D))
        return VMS_MIPS_EXC_MOD;
    s->st.hits++;
    xlate_of(lo, e->pagemask, va, e->g, x);
    fill_micro(c, l1, e, va, x);
    return -1;
}

/* Count exception exc and load BadVAddr and EntryHi.VPN2 as the hardware does. */
static void take(vmsi_swtlb *s, vms_mips_exc exc, uint32_t code, uint64_t va)
{
    uint64_t *count[] = {&s->st.refills, &s->st.invalid, &s->st.modified, &s->st.xi};
    (*count[exc])++;
    if (s->tr.nexc < VMS_MIPS_TRACE_EXC)
        s->tr.exc[s->tr.nexc++] =
            (vms_mips_trace_exc){.exc = exc, .exccode = code, .load0 = s->tr.nloads};
    s->cp0.badvaddr = va;
    s->cp0.entryhi = va & ~VPN2_LOW;
}

bool vmsi_mips_miss(vms_core *c, uint64_t va, vms_access_kind kind, vms_tlb *l1, vms_xlate *x,
                    vms_fault *fault)
{
    vmsi_swtlb *s = c->swtlb;
    memset(&s->tr, 0, sizeof s->tr);
    if (c->regs.user && (va >> 63)) { /* AdEL/AdES: a kernel segment from user mode */
        *fault = (vms_fault){.kind = VMS_FAULT_PF,
                             .va = va,
                             .error_code = kind == VMS_ACC_WRITE ? VMS_MIPS_EXCCODE_ADES
                                                                 : VMS_MIPS_EXCCODE_ADEL,
                             .flags = VMS_FAULTF_PROT | access_flags(c, kind)};
        s->cp0.badvaddr = va;
        return false;
    }
    for (unsigned tries = 0;; tries++) {
        int exc = lookup(c, va, kind, l1, x);
        if (exc < 0) {
            s->tr.hit = true;
            return true;
        }
        take(s, (vms_mips_exc)exc, exccode((vms_mips_exc)exc, kind), va);
        *fault = (vms_fault){.kind = VMS_FAULT_PF,
                             .va = va,
                             .error_code = exccode((vms_mips_exc)exc, kind),
                             .flags = access_flags(c, kind)};
        bool retry = false;
        if (s->fn && tries < MAX_RETRIES) {
            uint64_t c0 = c->cycles, refs = c->wstats.mem_refs, adw = c->wstats.ad_writes;
            c->wstats.walks++;
            retry = s->fn(s->fn_ctx, c, (vms_mips_exc)exc, va, kind, fault);
            if (vmsi_tap_on(&c->m->tap)) { /* the tap: the handler's walk, as a walk */
                vms_event ev = {.type = VMS_EV_WALK,
                                .walk = {.va = va,
                                         .kind = kind,
                                         .reason = VMS_EV_WALK_MISS,
                                         .ok = retry,
                                         .refs = (unsigned)(c->wstats.mem_refs - refs),
                                         .ad_writes = (unsigned)(c->wstats.ad_writes - adw)}};
                vmsi_tap_emit(&c->m->tap, (int)c->id, &ev);
            }
            *(exc == VMS_MIPS_EXC_REFILL ? &s->st.refill_cycles : &s->st.exc_cycles) +=
                c->cycles - c0;
            s->tr.exc[s->tr.nexc - 1].cycles = c->cycles - c0;
        }
        assert((retry || !s->fn || tries < MAX_RETRIES) && "a TLB handler that never resolves");
        if (!retry) {
            fault->kind = VMS_FAULT_PF;
            fault->va = va;
            fault->error_code = exccode((vms_mips_exc)exc, kind);
            s->st.page_faults++;
            c->wstats.faults++;
            s->tr.exc[s->tr.nexc - 1].passed_on = true;
            return false;
        }
    }
}

/* ---- the kernel's MMU operations (format.h), as Linux's MIPS port issues them ---- */

/* Invalidate entry i (Linux writes a unique EntryHi; here EHINV) and its micro-TLB. */
static void invalidate(vms_core *c, unsigned i)
{
    drop_pair(c, &c->swtlb->e[i]);
    c->swtlb->e[i] = invalid_entry;
}

/* Invalidate every entry matching va for asid (TLBP finds them; G entries match too). */
static void flush_va(vms_core *c, uint32_t asid, uint64_t va)
{
    vmsi_swtlb *s = c->swtlb;
    for (unsigned i = 0; i < s->n; i++)
        if (matches(&s->e[i], va, asid))
            invalidate(c, i);
}

/* boot: KScratch = the root, ASID 0, every non-wired entry invalid (local_flush_tlb_all). */
static vms_status mips_boot(vms_core *c, uint64_t root, bool asids)
{
    (void)asids; /* every MIPS TLB entry carries an ASID */
    vmsi_swtlb *s = c->swtlb;
    s->cp0.kscratch = root;
    c->regs.cr3 = root; /* kept for code that prints the root (and the format's mode) */
    vms_mips_write_entryhi(c, 0, 0);
    for (unsigned i = s->cp0.wired; i < s->n; i++)
        invalidate(c, i);
    s->random_epoch = c->cycles;
    return VMS_OK;
}

/* switch_mm: KScratch = root, EntryHi.ASID = asid; flush: drop asid's entries first. */
static void mips_load_root(vms_core *c, uint64_t root, uint32_t asid, bool flush)
{
    vmsi_swtlb *s = c->swtlb;
    c->st.cr3_loads++;
    c->cycles += c->m->cfg.cost.cr3_load;
    vmsi_core_report_op(c, VMS_EV_OP_CR3, 0, asid, flush); /* the event tap */
    if (flush) {
        for (unsigned i = 0; i < s->n; i++)
            if (!s->e[i].ehinv && !s->e[i].g && s->e[i].asid == asid)
                invalidate(c, i);
        for (unsigned l = 0; l < VMS_TLB_L2; l++)
            if (c->tlb[l])
                vms_tlb_flush_pcid(c->tlb[l], vms_ctx_make(0, asid));
    } else {
        c->st.cr3_noflush++;
    }
    s->cp0.kscratch = root;
    c->regs.cr3 = root;
    vms_mips_write_entryhi(c, 0, asid);
}

/* local_flush_tlb_page: TLBP for va in the current ASID, invalidate what matches. */
static void mips_flush_page(vms_core *c, uint64_t va)
{
    c->st.invlpg++;
    vmsi_core_report_op(c, VMS_EV_OP_INVLPG, va, c->swtlb->cp0.asid, true); /* the event tap */
    c->cycles += c->m->cfg.cost.invlpg;
    flush_va(c, c->swtlb->cp0.asid, va);
}

static void mips_flush_page_asid(vms_core *c, uint32_t asid, uint64_t va)
{
    c->st.invpcid++;
    vmsi_core_report_op(c, VMS_EV_OP_INVPCID, va, asid, true); /* the event tap */
    c->cycles += c->m->cfg.cost.invlpg;
    flush_va(c, asid, va);
}

/* Every non-global entry of asid (Linux would take a new ASID instead: the same effect). */
static void mips_flush_asid(vms_core *c, uint32_t asid)
{
    vmsi_swtlb *s = c->swtlb;
    c->st.invpcid++;
    vmsi_core_report_op(c, VMS_EV_OP_INVPCID, 0, 0, true); /* the event tap */
    c->cycles += c->m->cfg.cost.invlpg;
    for (unsigned i = 0; i < s->n; i++)
        if (!s->e[i].ehinv && !s->e[i].g && s->e[i].asid == asid)
            invalidate(c, i);
}

/* local_flush_tlb_all: every entry from Wired up (wired entries stay). */
static void mips_flush_all(vms_core *c)
{
    vmsi_swtlb *s = c->swtlb;
    c->st.invpcid++;
    vmsi_core_report_op(c, VMS_EV_OP_INVPCID, 0, 0, true); /* the event tap */
    c->cycles += c->m->cfg.cost.invlpg;
    for (unsigned i = s->cp0.wired; i < s->n; i++)
        invalidate(c, i);
    for (unsigned l = 0; l < VMS_TLB_L2; l++)
        if (c->tlb[l])
            vms_tlb_flush_all(c->tlb[l], false);
}

/* No broadcast invalidation: MIPS kernels shoot down other cores' entries by IPIs. */
const vms_mmu_ops vmsi_mips_mmu_ops = {
    .boot = mips_boot,
    .load_root = mips_load_root,
    .flush_page = mips_flush_page,
    .flush_page_asid = mips_flush_page_asid,
    .flush_asid = mips_flush_asid,
    .flush_all = mips_flush_all,
};

/* ---- counters ---- */

_Static_assert(sizeof(vms_swtlb_stats) % sizeof(uint64_t) == 0, "swtlb stats are u64 counters");

void vmsi_swtlb_json(const vms_machine *m, vms_strbuf *sb)
{
    vms_swtlb_stats t;
    memset(&t, 0, sizeof t);
    bool any = false;
    for (unsigned i = 0; i < m->ncores; i++) {
        const vmsi_swtlb *s = m->cores[i].swtlb;
        if (!s)
            continue;
        any = true;
        const uint64_t *src = (const uint64_t *)&s->st;
        uint64_t *dst = (uint64_t *)&t;
        for (size_t k = 0; k < sizeof t / sizeof(uint64_t); k++)
            dst[k] += src[k];
    }
    if (!any)
        return;
    vms_strbuf_printf(
        sb,
        ",\"swtlb\":{\"lookups\":%llu,\"hits\":%llu,\"refills\":%llu,\"invalid\":%llu,"
        "\"modified\":%llu,\"xi\":%llu,\"page_faults\":%llu,\"refill_cycles\":%llu,"
        "\"exc_cycles\":%llu,\"tlbwr\":%llu,\"tlbwi\":%llu,\"tlbp\":%llu,"
        "\"tlbr\":%llu}",
        (unsigned long long)t.lookups, (unsigned long long)t.hits, (unsigned long long)t.refills,
        (unsigned long long)t.invalid, (unsigned long long)t.modified, (unsigned long long)t.xi,
        (unsigned long long)t.page_faults, (unsigned long long)t.refill_cycles,
        (unsigned long long)t.exc_cycles, (unsigned long long)t.tlbwr, (unsigned long long)t.tlbwi,
        (unsigned long long)t.tlbp, (unsigned long long)t.tlbr);
}

void vmsi_swtlb_reset_stats(vmsi_swtlb *s)
{
    memset(&s->st, 0, sizeof s->st);
}
