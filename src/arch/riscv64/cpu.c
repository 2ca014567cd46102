/*
 * riscv64/cpu.c — the RISC-V core operations on translation state: csrw satp,
 * sfence.vma (priv §"Supervisor Memory-Management Fence Instruction"), and the CSR bits
 * translation reads (sstatus.SUM/MXR, menvcfg.ADUE). Contracts in
 * include/vmsim/arch/riscv64.h.
 *
 * The TLB and PWC context tag of a RISC-V core is satp.ASID (vmsi_core_sync), and G is
 * always honoured (there is no CR4.PGE). Only this core is affected: other harts learn
 * of a change through the kernel's IPIs (SBI remote fences on real systems).
 */
#include "arch/riscv64/riscv64.h"
#include "hw/core_impl.h"

#define ASID_MASK ((UINT64_C(1) << VMS_RV_ASIDLEN) - 1)

vms_status vms_core_write_satp(vms_core *c, uint64_t satp)
{
    const vms_pt_format *f = vms_rv_mode_format(vms_rv_satp_mode(satp));
    /* Sv57 keys the PWC on 57 VA bits: the machine must have been built for 5 levels. */
    if (!f || f->levels > (c->m->cfg.levels > 4 ? 5u : 4u))
        return VMS_ERR_UNSUPPORTED; /* the write has no effect */
    uint64_t asid = vms_rv_satp_asid(satp) & ASID_MASK;
    c->regs.fmt = f;
    c->regs.satp = (satp & ~VMS_RV_SATP_ASID_MASK) | asid << VMS_RV_SATP_ASID_SHIFT;
    vmsi_core_sync(c);
    c->st.cr3_loads++;
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
