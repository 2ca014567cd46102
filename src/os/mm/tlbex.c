/*
 * tlbex.c — the kernel's TLB exception handlers for a software-managed TLB (swtlb.h),
 * in the shape of Linux's arch/mips/mm/tlbex.c (which generates them at boot):
 *
 *   refill (build_r4000_tlb_refill_handler)
 *       walk the radix tables at KScratch (pgd_current) for BadVAddr: one load per
 *       level; at the leaf table load the even and the odd PTE of the pair; build
 *       EntryLo0/1 from them (a missing entry gives EntryLo = 0, as Linux's loads from
 *       invalid_pte_table do; a missing table an invalid pair of 1 MiB halves over the
 *       2 MiB block) and write the pair with TLBWR — or TLBWI at a
 *       round-robin slot, Wired … N-1 (kernel.tlb_refill = tlbwi). Never fails: an
 *       invalid pair is written and the retried access takes TLBL/TLBS Invalid.
 *   TLBL / TLBS invalid, TLB modified, TLBXI (build_r4000_tlb_load/store/modify_handler)
 *       walk again to va's entry; if it is present and allows the access, set A (and D
 *       for a store) in it in RAM, reload the pair, TLBP for its slot and TLBWI there;
 *       otherwise pass the exception on: the kernel's ordinary page fault
 *       (vmsi_handle_mm_fault through the caller's fault loop), with the flags the
 *       x86 walker would have reported (not present; or PROT with WRITE / EXEC / USER).
 *
 * EntryLo from a PTE (Linux's MIPS PTE keeps _PAGE_VALID = present and young, and
 * _PAGE_DIRTY = writable and dirty, so that the TLB's V and D emulate A and D):
 *   V  = present, a leaf, no reserved bits, young (A), and user-accessible at every level
 *        when va is a user-segment address (MIPS has no U bit: useg pages are user
 *        pages, so a supervisor-only page in the user half — which vmsim's kernel never
 *        makes — is invalid to kernel accesses too)
 *   D  = V and writable at every level and dirty (D)
 *   XI = execute-disable at some level;  G = the leaf's G;  C = uncached for PCD pages
 *   PFN = the page's frame; for a 2 MiB or 1 GiB leaf, PageMask gives 1 MiB halves and
 *        the pair maps the 2 MiB-aligned block around va (Linux's huge-page TLB entries).
 *
 * Costs: kernel.tlb_refill_cycles per refill, kernel.tlb_exc_cycles per other
 * exception (the handlers' instructions, TLB instructions included), plus every table
 * load (vms_mips_kload: cost.walk_ref, or the cache hierarchy's latency) and every A/D
 * store (vms_mips_kstore: cost.ad_write). The default 12 is the size of the classic
 * refill handler (R4000 User's Manual, ch. 5: MFC0 Context, two loads, two MTC0,
 * TLBWR, ERET, plus the loads of the upper levels); 40 is an estimate for Linux's
 * slow-path handlers (TLBP, the walk, the PTE update, TLBWI), about three times as long.
 */
#include <string.h>

#include "vmsim/core.h"
#include "vmsim/swtlb.h"

void vms_tlbex_config_default(vms_tlbex_config *cfg)
{
    cfg->refill_cycles = 12;
    cfg->exc_cycles = 40;
    cfg->tlbwi = false;
}

/* What a walk found for va: the leaf (or where it stopped) and the effective rights. */
typedef struct leaf {
    bool found;        /* a present leaf without reserved bits */
    unsigned level;    /* its level (or the level of the entry that stopped the walk) */
    uint64_t table_pa; /* the table holding it */
    uint64_t ptep, pte;
    bool w, u, xd; /* writable and user at every level above the leaf, XD at one */
} leaf;

/* Walk f's tables at root for va down to the leaf level, loading each entry (counted).
 * stop_above_1: stop at the level-1 table without loading its entry (the refill loads
 * the pair itself). */
static void walk(vms_core *c, const vms_pt_format *f, uint64_t root, uint64_t va, bool stop_above_1,
                 leaf *out)
{
    memset(out, 0, sizeof *out);
    out->w = out->u = true;
    uint64_t table = root;
    for (unsigned l = f->levels; l >= 1; l--) {
        out->level = l;
        out->table_pa = table;
        if (l == 1 && stop_above_1)
            return;
        out->ptep = vms_fmt_entry_pa(f, table, va, l);
        vms_mips_kload(c, out->ptep, l, &out->pte);
        vms_pte_info pi;
        vms_fmt_decode(f, out->pte, l, &pi);
        if (!pi.present || !pi.rsvd_clear)
            return;
        if (pi.leaf) {
            out->found = true;
            return;
        }
        /* x86-64 tables: RW, US and XD count at every level (SDM §4.6); the leaf's own
         * bits are entrylo's, so that the pair's two leaves each use theirs. */
        out->w &= vms_fmt_bit(f->write, out->pte) || !f->write.mask;
        out->u &= vms_fmt_bit(f->user, out->pte) || !f->user.mask;
        out->xd |= vms_fmt_bit(f->exec_never, out->pte);
        table = pi.pa;
    }
}

/* EntryLo of the 4 KiB page `pte` maps at level 1 (or of a half at pa of a large leaf),
 * with the upper levels' rights w, u, xd; user: va is a user-segment address. */
static uint64_t entrylo(const vms_pt_format *f, uint64_t pte, unsigned level, uint64_t pa, bool w,
                        bool u, bool xd, bool user)
{
    vms_pte_info pi;
    vms_fmt_decode(f, pte, level, &pi);
    if (!pi.present || !pi.leaf || !pi.rsvd_clear)
        return 0;
    w &= (pi.prot & VMS_PGPROT_W) != 0;
    u &= (pi.prot & VMS_PGPROT_U) != 0;
    xd |= !(pi.prot & VMS_PGPROT_X);
    bool v = (pi.prot & VMS_PGPROT_A) && (u || !user);
    if (!v)
        return 0;
    unsigned cca = pi.prot & VMS_PGPROT_NOCACHE ? VMS_MIPS_C_UNCACHED : VMS_MIPS_C_CACHED;
    return ((pa >> 12) << VMS_MIPS_LO_PFN_SHIFT) | (uint64_t)cca << VMS_MIPS_LO_C_SHIFT |
           VMS_MIPS_LO_V | (w && (pi.prot & VMS_PGPROT_D) ? VMS_MIPS_LO_D : 0) |
           (xd ? VMS_MIPS_LO_XI : 0) | (pi.prot & VMS_PGPROT_G ? VMS_MIPS_LO_G : 0);
}

/* The upper levels' rights of a walk that stopped at the level-1 table (l->w, u, xd
 * include nothing of level 1 then) and the pair for va: EntryLo0/1 and PageMask. The
 * leaf at level >= 2 maps both halves; at level 1 the even and odd entries are loaded. */
static void load_pair(vms_core *c, const vms_pt_format *f, const leaf *l, uint64_t va,
                      vms_mips_cp0 *r)
{
    bool user = (va >> 63) == 0;
    r->entrylo[0] = r->entrylo[1] = 0;
    r->pagemask = VMS_MIPS_PM_4K;
    if (l->level >= 2 && l->found) { /* a 2 MiB or 1 GiB leaf: 1 MiB halves */
        vms_pte_info pi;
        vms_fmt_decode(f, l->pte, l->level, &pi);
        uint64_t size = UINT64_C(1) << vms_fmt_level_shift(f, l->level);
        uint64_t base = pi.pa + (va & (size - 1) & ~((UINT64_C(1) << 21) - 1));
        r->pagemask = VMS_MIPS_PM_1M;
        for (unsigned h = 0; h < 2; h++)
            r->entrylo[h] = entrylo(f, l->pte, l->level, base + h * (UINT64_C(1) << 20), l->w, l->u,
                                    l->xd, user);
        return;
    }
    if (l->level != 1) {
        /* A missing table: an invalid pair over the 2 MiB block, so that a block or a
         * table mapped there later replaces this one entry and never overlaps it (a
         * TLBP then finds it; several matching entries would be a Machine Check). */
        r->pagemask = VMS_MIPS_PM_1M;
        return;
    }
    unsigned even = vms_fmt_index(f, va, 1) & ~1u;
    for (unsigned h = 0; h < 2; h++) {
        uint64_t ptep = l->table_pa + ((uint64_t)(even + h) << f->entry_shift), pte;
        vms_mips_kload(c, ptep, 1, &pte);
        r->entrylo[h] = entrylo(f, pte, 1, vms_fmt_pte_addr(f, pte), l->w, l->u, l->xd, user);
    }
}

/* The refill handler: load the pair for va and write it (TLBWR, or TLBWI round-robin). */
static bool refill(vms_tlbex *h, vms_core *c, const vms_pt_format *f, uint64_t va)
{
    vms_mips_cp0 *r = vms_core_mips_cp0(c);
    vms_core_add_cycles(c, h->cfg.refill_cycles);
    leaf l;
    walk(c, f, r->kscratch, va, true, &l);
    load_pair(c, f, &l, va, r);
    if (!h->cfg.tlbwi) {
        vms_mips_tlbwr(c);
        return true;
    }
    unsigned n = vms_mips_tlb_size(c);
    if (h->next < r->wired || h->next >= n)
        h->next = r->wired;
    r->index = h->next++;
    vms_mips_tlbwi(c);
    return true;
}

/* The Invalid / Modified / XI handlers: see the top of the file. */
static bool fixup(vms_tlbex *h, vms_core *c, const vms_pt_format *f, uint64_t va,
                  vms_access_kind kind, vms_fault *fault)
{
    vms_mips_cp0 *r = vms_core_mips_cp0(c);
    vms_core_add_cycles(c, h->cfg.exc_cycles);
    bool user_seg = (va >> 63) == 0;
    leaf l;
    walk(c, f, r->kscratch, va, false, &l);
    vms_pte_info pi;
    vms_fmt_decode(f, l.pte, l.level, &pi);
    if (!l.found)
        return false; /* not present: fault->flags already say the access */
    bool w = l.w && (pi.prot & VMS_PGPROT_W), u = l.u && (pi.prot & VMS_PGPROT_U);
    bool xd = l.xd || !(pi.prot & VMS_PGPROT_X);
    if ((user_seg && !u) || (kind == VMS_ACC_WRITE && !w) || (kind == VMS_ACC_EXEC && xd)) {
        fault->flags |= VMS_FAULTF_PROT;
        return false;
    }
    uint64_t pte = vms_fmt_pte_mkyoung(f, l.pte);
    if (kind == VMS_ACC_WRITE)
        pte = vms_fmt_pte_mkdirty(f, pte);
    if (pte != l.pte) {
        vms_mips_kstore(c, l.ptep, pte);
        l.pte = pte;
    }
    load_pair(c, f, &l, va, r); /* at level 1 the buddy is loaded, and va's entry again */
    vms_mips_write_entryhi(c, va & ~UINT64_C(0x1FFF), r->asid);
    vms_mips_tlbp(c);
    if (r->index & VMS_MIPS_INDEX_P)
        vms_mips_tlbwr(c);
    else
        vms_mips_tlbwi(c);
    return true;
}

/* The hook (swtlb.h vms_mips_handler). */
static bool handler(void *ctx, vms_core *c, vms_mips_exc exc, uint64_t va, vms_access_kind kind,
                    vms_fault *fault)
{
    vms_tlbex *h = ctx;
    const vms_pt_format *f = vms_regs_format(vms_core_regs(c));
    if (exc == VMS_MIPS_EXC_REFILL)
        return refill(h, c, f, va);
    return fixup(h, c, f, va, kind, fault);
}

vms_status vms_tlbex_attach(vms_core *c, vms_tlbex *h, const vms_tlbex_config *cfg)
{
    if (!vms_core_swtlb(c))
        return VMS_ERR_INVAL;
    h->cfg = *cfg;
    h->next = 0;
    vms_core_mips_set_handler(c, handler, h);
    return VMS_OK;
}
