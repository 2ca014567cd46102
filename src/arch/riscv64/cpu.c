/*
 * riscv64/cpu.c — the RISC-V core operations on translation state: csrw satp,
 * sfence.vma (priv §"Supervisor Memory-Management Fence Instruction"), and the CSR bits
 * translation reads (sstatus.SUM/MXR, menvcfg.ADUE). Contracts in
 * include/vmsim/arch/riscv64.h.
 *
 * The TLB and PWC context tag of a RISC-V core is satp.ASID (vmsi_core_sync), and G is
 * always honoured (there is no CR4.PGE). Only this core is affected: other harts learn
 * of a change through the kernel's IPIs (SBI remote fences on real systems).
 *
 * The kernel's MMU operations (format.h vms_mmu_ops) as RISC-V instructions, the way
 * Linux's riscv port issues them (arch/riscv/mm/context.c, tlbflush.h):
 *
 *   boot             menvcfg.ADUE = 1 (Svadu: the kernel, like x86's, expects hardware
 *                    A/D), sstatus.SUM = 1 (S-mode may touch user pages, as x86 with
 *                    SMAP off), csrw satp = MODE | ASID 0 | root, sfence.vma x0, x0
 *   load_root        csrw satp = MODE | asid | root; with flush, sfence.vma x0, asid
 *   flush_page       sfence.vma va, x0 (Linux's local_flush_tlb_page: every ASID)
 *   flush_page_asid  sfence.vma va, asid
 *   flush_asid       sfence.vma x0, asid
 *   flush_all        sfence.vma x0, x0
 */
#include "arch/riscv64/riscv64.h"
#include "hw/core_impl.h"

#define ASID_MASK ((UINT64_C(1) << VMS_RV_ASIDLEN) - 1)

vms_status vms_core_write_satp(vms_core *c, uint64_t satp)
{
    const vms_pt_format *f = vms_rv_mode_format(vms_rv_satp_mode(satp));
    /* The modes the machine implements: up to its format's levels (an Sv48 machine has
     * Sv39 too; Sv57 needs a PWC keyed on 57 VA bits, i.e. a 5-level machine). */
    if (!f || f->levels > vms_machine_format(c->m)->levels)
        return VMS_ERR_UNSUPPORTED; /* the write has no effect */
    uint64_t asid = vms_rv_satp_asid(satp) & ASID_MASK;
    c->regs.fmt = f;
    c->regs.satp = (satp & ~VMS_RV_SATP_ASID_MASK) | asid << VMS_RV_SATP_ASID_SHIFT;
    vmsi_core_sync(c);
    c->st.cr3_loads++;
    vmsi_core_report_op(c, VMS_EV_OP_CR3, 0, 0, true); /* the event tap */
    c->cycles += c->m->cfg.cost.cr3_load;
    return VMS_OK;
}

void vms_core_sfence_vma(vms_core *c, bool has_va, uint64_t va, bool has_asid, uint16_t asid)
{
    asid = (uint16_t)(asid & ASID_MASK);
    if (has_va && c->regs.fmt && !vms_fmt_canonical(c->regs.fmt, va))
        return; /* "not a valid virtual address": no effect */
    if (has_va)
        c->st.invlpg++;
    else
        c->st.invpcid++;
    vmsi_core_report_op(c, has_va ? VMS_EV_OP_INVLPG : VMS_EV_OP_INVPCID, va, asid, true);
    c->cycles += c->m->cfg.cost.invlpg;
    for (unsigned l = 0; l < VMS_TLB_NLEVELS; l++) {
        vms_tlb *t = c->tlb[l];
        if (!t)
            continue;
        if (has_va && has_asid)
            vms_tlb_flush_va(t, asid, va, false); /* globals are not ordered */
        else if (has_va)
            vms_tlb_flush_va_any(t, va);
        else if (has_asid)
            vms_tlb_flush_pcid(t, asid); /* non-global entries of the ASID */
        else
            vms_tlb_flush_all(t, false);
    }
    if (c->pwc) {
        if (has_asid)
            vms_pwc_flush_pcid(c->pwc, asid);
        else
            vms_pwc_flush_all(c->pwc);
    }
}

void vms_core_write_sstatus(vms_core *c, uint64_t sstatus)
{
    c->regs.sstatus = sstatus;
}

void vms_core_write_menvcfg(vms_core *c, uint64_t menvcfg)
{
    c->regs.menvcfg = menvcfg;
}

/* ---- the kernel's MMU operations (format.h vms_mmu_ops) ---- */

/* satp for the core's format (or the machine's) with asid and root. */
static uint64_t satp_for(vms_core *c, uint64_t root, uint32_t asid)
{
    const vms_pt_format *f = c->regs.fmt ? c->regs.fmt : vms_machine_format(c->m);
    return vms_rv_satp_make(vms_rv_format_mode(f), (uint16_t)(asid & ASID_MASK), root);
}

static vms_status rv_boot(vms_core *c, uint64_t root, bool asids)
{
    (void)asids; /* ASIDs are always there; the kernel passes 0 when it uses none */
    vms_core_write_menvcfg(c, c->regs.menvcfg | VMS_RV_MENVCFG_ADUE);
    vms_core_write_sstatus(c, c->regs.sstatus | VMS_RV_SSTATUS_SUM);
    vms_status st = vms_core_write_satp(c, satp_for(c, root, 0));
    if (st == VMS_OK)
        vms_core_sfence_vma(c, false, 0, false, 0);
    return st;
}

static void rv_load_root(vms_core *c, uint64_t root, uint32_t asid, bool flush)
{
    if (vms_core_write_satp(c, satp_for(c, root, asid)) == VMS_OK && flush)
        vms_core_sfence_vma(c, false, 0, true, (uint16_t)asid);
}

static void rv_flush_page(vms_core *c, uint64_t va)
{
    vms_core_sfence_vma(c, true, va, false, 0);
}

static void rv_flush_page_asid(vms_core *c, uint32_t asid, uint64_t va)
{
    vms_core_sfence_vma(c, true, va, true, (uint16_t)asid);
}

static void rv_flush_asid(vms_core *c, uint32_t asid)
{
    vms_core_sfence_vma(c, false, 0, true, (uint16_t)asid);
}

static void rv_flush_all(vms_core *c)
{
    vms_core_sfence_vma(c, false, 0, false, 0);
}

/* No broadcast: RISC-V has no instruction that reaches other harts' TLBs. */
const vms_mmu_ops vmsi_rv_mmu_ops = {
    .boot = rv_boot,
    .load_root = rv_load_root,
    .flush_page = rv_flush_page,
    .flush_page_asid = rv_flush_page_asid,
    .flush_asid = rv_flush_asid,
    .flush_all = rv_flush_all,
};
