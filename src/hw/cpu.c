/*
 * cpu.c — a core's control registers and the instructions that invalidate translations
 * (Intel SDM Vol. 3A §4.10.4 "Invalidation of TLBs and paging-structure caches").
 *
 * What each operation drops (TLB entries in every level of this core; PWC entries):
 *
 *   operation                      TLB entries dropped                  PWC entries
 *   MOV CR3, PCIDE=0               all non-global                       all
 *   MOV CR3, PCIDE=1, bit 63 = 0   non-global of the new PCID            of the new PCID
 *   MOV CR3, PCIDE=1, bit 63 = 1   none                                 none
 *   INVLPG va                      va's, current PCID, and va's globals  of current PCID
 *   INVPCID 0 (addr, pcid)         va's in pcid, globals kept            of pcid
 *   INVPCID 1 (context)            non-global of pcid                   of pcid
 *   INVPCID 2 (all incl. global)   all                                  all
 *   INVPCID 3 (all excl. global)   all non-global                       all
 *   MOV CR4 changing PGE, or       all (globals too)                    all
 *   clearing PCIDE, or LA57
 *
 * Only this core is affected: other cores learn of a change through an IPI sent by the
 * kernel (a TLB shootdown), as on real hardware — or through INVLPGB, the broadcast
 * form (AMD APM Vol. 3 "INVLPGB"), which every core of the machine applies to its own
 * TLBs and PWC here, with the same per-core operations as above (bcast_apply):
 *
 *   INVLPGB VA|PCID (count n)      n+1 pages' entries in pcid (+globals  of pcid
 *                                  with GLOBAL)
 *   INVLPGB VA (count n)           n+1 pages' entries in every PCID       all
 *   INVLPGB PCID                   non-global of pcid                    of pcid
 *                                  (PCID|GLOBAL without VA is refused)
 *   INVLPGB (none)                 all non-global (all with GLOBAL)      all
 *
 * The receivers are not interrupted and not charged; the issuer pays cost.invlpgb per
 * instruction and, at TLBSYNC, the wait for the farthest core's completion.
 */
#include "arch/riscv64/riscv64.h"
#include "arch/aarch64/aarch64.h"
#include "arch/mips/mips.h"
#include "hw/core_impl.h"

void vmsi_core_sync(vms_core *c)
{
    if (vmsi_fmt_is_riscv(c->regs.fmt)) { /* tagged by satp.ASID; G always honoured */
        c->ctx = vms_ctx_make(c->vm, (uint32_t)vms_rv_satp_asid(c->regs.satp));
        c->pge = true;
        return;
    }
    c->ctx = vms_ctx_make(c->vm, vms_regs_pcid(&c->regs));
    c->pge = (c->regs.cr4 & VMS_CR4_PGE) != 0;
    if (vmsi_a64_on(&c->regs)) { /* AArch64: the ASID tags entries; nG = 0 is always global */
        c->ctx = vms_ctx_make(c->vm, (uint32_t)vmsi_a64_asid(&c->regs));
        c->pge = true;
    }
}

/* Drop from every TLB level of c the entries selected by the arguments (core_impl.h:
 * the primitives every architecture's invalidation instructions are made of). */
void vmsi_core_tlbs_flush_all(vms_core *c, bool keep_global)
{
    if (c->vm) { /* in a guest: its own entries only (and its own PWC, c->pwc) */
        for (unsigned l = 0; l < VMS_TLB_NLEVELS; l++)
            if (c->tlb[l])
                vms_tlb_flush_vm(c->tlb[l], c->vm, keep_global);
        if (c->pwc)
            vms_pwc_flush_all(c->pwc);
        return;
    }
    for (unsigned l = 0; l < VMS_TLB_NLEVELS; l++)
        if (c->tlb[l])
            vms_tlb_flush_all(c->tlb[l], keep_global);
    if (c->pwc)
        vms_pwc_flush_all(c->pwc);
}

void vmsi_core_tlbs_flush_pcid(vms_core *c, vms_ctx ctx)
{
    for (unsigned l = 0; l < VMS_TLB_NLEVELS; l++)
        if (c->tlb[l])
            vms_tlb_flush_pcid(c->tlb[l], ctx);
    if (c->pwc) /* a guest's PWC is its own, tagged by the guest's PCID alone */
        vms_pwc_flush_pcid(c->pwc, c->vm ? (uint32_t)ctx : ctx);
}

void vmsi_core_tlbs_flush_va(vms_core *c, vms_ctx ctx, uint64_t va, bool with_global)
{
    for (unsigned l = 0; l < VMS_TLB_NLEVELS; l++)
        if (c->tlb[l])
            vms_tlb_flush_va(c->tlb[l], ctx, va, with_global);
    if (c->pwc) /* a guest's PWC is its own, tagged by the guest's PCID alone */
        vms_pwc_flush_pcid(c->pwc, c->vm ? (uint32_t)ctx : ctx);
}

unsigned vms_core_id(const vms_core *c)
{
    return c->id;
}

const vms_regs *vms_core_regs(const vms_core *c)
{
    return &c->regs;
}

vms_machine *vms_core_machine(vms_core *c)
{
    return c->m;
}

void vms_core_set_user(vms_core *c, bool user)
{
    c->regs.user = user;
}

void vms_core_set_ac(vms_core *c, bool ac)
{
    c->regs.ac = ac;
}

void vms_core_write_pkru(vms_core *c, uint32_t pkru)
{
    c->regs.pkru = pkru;
}

void vms_core_write_efer(vms_core *c, uint64_t efer)
{
    c->regs.efer = efer | VMS_EFER_LME | VMS_EFER_LMA; /* long mode stays on */
}

void vmsi_core_report_op(vms_core *c, vms_ev_tlb_op op, uint64_t va, uint32_t pcid, bool flush)
{
    if (!vmsi_tap_on(&c->m->tap))
        return;
    vms_event ev = {.type = VMS_EV_TLB_OP, .tlb_op = {op, va, pcid, flush}};
    vmsi_tap_emit(&c->m->tap, (int)c->id, &ev);
}

void vms_core_write_cr3(vms_core *c, uint64_t cr3)
{
    c->st.cr3_loads++;
    c->cycles += c->m->cfg.cost.cr3_load;
    bool noflush = (cr3 & VMS_CR3_NOFLUSH) != 0;
    c->regs.cr3 = cr3 & ~VMS_CR3_NOFLUSH;
    vmsi_core_sync(c);
    vmsi_core_report_op(c, VMS_EV_OP_CR3, 0, (uint32_t)(c->regs.cr3 & VMS_CR3_PCID_MASK),
                        !(noflush && (c->regs.cr4 & VMS_CR4_PCIDE)));
    if (!(c->regs.cr4 & VMS_CR4_PCIDE)) {
        /* Every entry is PCID 0: drop all but globals, and every PWC entry. */
        vmsi_core_tlbs_flush_all(c, true);
    } else if (noflush) {
        c->st.cr3_noflush++;
    } else {
        vmsi_core_tlbs_flush_pcid(c, c->ctx);
    }
}

vms_status vms_core_write_cr4(vms_core *c, uint64_t cr4)
{
    uint64_t old = c->regs.cr4;
    if ((cr4 & VMS_CR4_PCIDE) && !(old & VMS_CR4_PCIDE) && (c->regs.cr3 & VMS_CR3_PCID_MASK))
        return VMS_ERR_INVAL; /* #GP: CR3[11:0] must be 0 when enabling PCIDs */
    uint64_t changed = old ^ cr4;
    c->regs.cr4 = cr4 | VMS_CR4_PAE;
    vmsi_core_sync(c);
    bool pcide_off = (changed & VMS_CR4_PCIDE) && !(cr4 & VMS_CR4_PCIDE);
    if ((changed & (VMS_CR4_PGE | VMS_CR4_LA57)) || pcide_off) {
        c->st.flushes_all++;
        vmsi_core_report_op(c, VMS_EV_OP_FLUSH_ALL, 0, 0, true);
        vmsi_core_tlbs_flush_all(c, false);
    }
    return VMS_OK;
}

vms_status vms_core_write_cr0(vms_core *c, uint64_t cr0)
{
    if (!(cr0 & VMS_CR0_PG))
        return VMS_ERR_UNSUPPORTED; /* vmsim models long mode only */
    c->regs.cr0 = cr0;
    return VMS_OK;
}

void vms_core_invlpg(vms_core *c, uint64_t va)
{
    c->st.invlpg++;
    c->cycles += c->m->cfg.cost.invlpg;
    vmsi_core_report_op(c, VMS_EV_OP_INVLPG, va, (uint32_t)c->ctx, true);
    vmsi_core_tlbs_flush_va(c, c->ctx, va, true);
}

vms_status vms_core_invpcid(vms_core *c, vms_invpcid_type type, uint16_t pcid, uint64_t va)
{
    if (pcid > VMS_CR3_PCID_MASK)
        return VMS_ERR_INVAL;
    c->st.invpcid++;
    c->cycles += c->m->cfg.cost.invlpg;
    if ((unsigned)type <= VMS_INVPCID_ALL) /* (an invalid type is uncounted below) */
        vmsi_core_report_op(c, VMS_EV_OP_INVPCID, va, pcid, true);
    /* In a guest the PCID is the guest's: its entries are tagged by the VPID too (SDM
     * Vol. 3C §29.4.1: INVPCID in VMX non-root operation acts on the current VPID), so
     * the host's and other VMs' entries with the same PCID stay and the guest's go. */
    vms_ctx ctx = vms_ctx_make(c->vm, pcid);
    switch (type) {
    case VMS_INVPCID_ADDR:
        vmsi_core_tlbs_flush_va(c, ctx, va, false);
        return VMS_OK;
    case VMS_INVPCID_CONTEXT:
        vmsi_core_tlbs_flush_pcid(c, ctx);
        return VMS_OK;
    case VMS_INVPCID_ALL_GLOBAL:
        vmsi_core_tlbs_flush_all(c, false);
        return VMS_OK;
    case VMS_INVPCID_ALL:
        vmsi_core_tlbs_flush_all(c, true);
        return VMS_OK;
    }
    c->st.invpcid--;
    return VMS_ERR_INVAL;
}

/* Drop va's entries of every PCID (an INVLPGB naming an address but no PCID): the PCIDs
 * cached for va are read from the arrays here, inside the hardware. */
static void tlbs_flush_va_any(vms_core *c, uint64_t va, bool with_global)
{
    for (unsigned l = 0; l < VMS_TLB_NLEVELS; l++) {
        vms_tlb *t = c->tlb[l];
        bool again = t != NULL;
        while (again) {
            again = false;
            vms_tlb_entry_info e;
            for (unsigned i = 0; vms_tlb_entry(t, i, &e); i++) {
                uint64_t sz = vms_pgsize_bytes(e.x.size);
                if (va - e.va < sz && (!e.x.global || with_global)) {
                    vms_tlb_flush_va(t, e.ctx, va, with_global);
                    again = true;
                    break;
                }
            }
        }
    }
    if (c->pwc)
        vms_pwc_flush_all(c->pwc);
}

/* One core applies one broadcast invalidation (the receiving side of INVLPGB). */
static void bcast_apply(vms_core *c, unsigned flags, uint64_t va, uint16_t pcid, unsigned count)
{
    c->st.invlpgb_received++;
    vmsi_core_report_op(c, VMS_EV_OP_INVLPGB_RX, va, pcid, true);
    bool global = (flags & VMS_INVLPGB_GLOBAL) != 0;
    if (flags & VMS_INVLPGB_VA) {
        uint64_t step = (flags & VMS_INVLPGB_STRIDE_2M) ? UINT64_C(1) << 21 : VMS_PAGE_SIZE;
        for (unsigned i = 0; i <= count; i++, va += step) {
            if (flags & VMS_INVLPGB_PCID)
                vmsi_core_tlbs_flush_va(c, pcid, va, global);
            else
                tlbs_flush_va_any(c, va, global);
        }
    } else if (flags & VMS_INVLPGB_PCID) {
        vmsi_core_tlbs_flush_pcid(c, pcid);
    } else {
        vmsi_core_tlbs_flush_all(c, !global);
    }
}

vms_status vms_core_invlpgb(vms_core *c, unsigned flags, uint64_t va, uint16_t pcid, unsigned count)
{
    vms_machine *m = c->m;
    /* Not in a guest: a hypervisor does not enable INVLPGB for a VM (KVM leaves it out of
     * the guest's CPUID; executed there it is #UD). Its (address, PCID) would name the
     * host's entries on every core and none of the VM's, whose vCPUs have a VPID each. */
    if (m->cfg.invlpgb_max == 0 || c->vm)
        return VMS_ERR_UNSUPPORTED;
    if ((flags &
         ~(VMS_INVLPGB_VA | VMS_INVLPGB_PCID | VMS_INVLPGB_GLOBAL | VMS_INVLPGB_STRIDE_2M)) ||
        pcid > VMS_CR3_PCID_MASK || count >= m->cfg.invlpgb_max ||
        (count && !(flags & VMS_INVLPGB_VA)) ||
        ((flags & (VMS_INVLPGB_VA | VMS_INVLPGB_PCID | VMS_INVLPGB_GLOBAL)) ==
         (VMS_INVLPGB_PCID | VMS_INVLPGB_GLOBAL)))
        return VMS_ERR_INVAL;
    c->st.invlpgb++;
    c->cycles += m->cfg.cost.invlpgb;
    c->bcast_pending++;
    vmsi_core_report_op(c, VMS_EV_OP_INVLPGB, va, pcid, true);
    for (unsigned i = 0; i < m->ncores; i++)
        bcast_apply(&m->cores[i], flags, va & ~(uint64_t)VMS_PAGE_MASK, pcid, count);
    return VMS_OK;
}

uint64_t vms_core_tlbsync(vms_core *c)
{
    c->st.tlbsync++;
    vmsi_core_report_op(c, VMS_EV_OP_TLBSYNC, 0, 0, c->bcast_pending != 0);
    if (!c->bcast_pending)
        return 0;
    c->bcast_pending = 0;
    unsigned far = 0;
    for (unsigned i = 0; i < c->m->ncores; i++) {
        unsigned h = vms_machine_hops(c->m, c->id, i);
        far = h > far ? h : far;
    }
    uint64_t w = c->m->cfg.cost.tlbsync + (uint64_t)c->m->cfg.cost.tlbsync_hop * far;
    c->cycles += w;
    return w;
}

void vms_core_interrupt(vms_core *c, uint8_t vector)
{
    c->st.interrupts++;
    c->cycles += c->m->cfg.cost.interrupt;
    if (vmsi_tap_on(&c->m->tap)) { /* counted, not dispatched: see core.h */
        vms_event ev = {.type = VMS_EV_INTERRUPT, .interrupt = {vector}};
        vmsi_tap_emit(&c->m->tap, (int)c->id, &ev);
    }
}

void vms_core_add_cycles(vms_core *c, uint64_t n)
{
    c->cycles += n;
}

uint64_t vms_core_cycles(const vms_core *c)
{
    return c->cycles;
}

vms_tlb *vms_core_tlb(vms_core *c, vms_tlb_level level)
{
    return (unsigned)level < VMS_TLB_NLEVELS ? c->tlb[level] : NULL;
}

vms_pwc *vms_core_pwc(vms_core *c)
{
    return c->pwc;
}

const vms_core_stats *vms_core_get_stats(const vms_core *c)
{
    return &c->st;
}

const vms_walk_stats *vms_core_walk_stats(const vms_core *c)
{
    return &c->wstats;
}

/* ---- the kernel's MMU operations, dispatched to the core's format (format.h) ---- */

static const vms_mmu_ops *mmu_ops(const vms_core *c)
{
    if (c->swtlb) /* a software-managed TLB: MIPS's TLB instructions (arch/mips) */
        return &vmsi_mips_mmu_ops;
    return vms_regs_format(&c->regs)->mmu_ops;
}

vms_status vms_core_mmu_boot(vms_core *c, uint64_t root, bool asids)
{
    return mmu_ops(c)->boot(c, root, asids);
}

void vms_core_mmu_load_root(vms_core *c, uint64_t root, uint32_t asid, bool flush)
{
    mmu_ops(c)->load_root(c, root, asid, flush);
}

void vms_core_mmu_flush_page(vms_core *c, uint64_t va)
{
    mmu_ops(c)->flush_page(c, va);
}

void vms_core_mmu_flush_page_asid(vms_core *c, uint32_t asid, uint64_t va)
{
    mmu_ops(c)->flush_page_asid(c, asid, va);
}

void vms_core_mmu_flush_asid(vms_core *c, uint32_t asid)
{
    mmu_ops(c)->flush_asid(c, asid);
}

void vms_core_mmu_flush_all(vms_core *c)
{
    mmu_ops(c)->flush_all(c);
}

bool vms_core_mmu_has_broadcast(const vms_core *c)
{
    const vms_mmu_ops *o = mmu_ops(c);
    return o->flush_broadcast && o->sync && (!o->has_broadcast || o->has_broadcast(c));
}

unsigned vms_core_mmu_flush_broadcast(vms_core *c, uint32_t asid, uint64_t va, uint64_t npages)
{
    if (!vms_core_mmu_has_broadcast(c))
        return 0;
    return mmu_ops(c)->flush_broadcast(c, asid, va & ~(uint64_t)VMS_PAGE_MASK, npages);
}

uint64_t vms_core_mmu_sync(vms_core *c)
{
    return vms_core_mmu_has_broadcast(c) ? mmu_ops(c)->sync(c) : 0;
}
