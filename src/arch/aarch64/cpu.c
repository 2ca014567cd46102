/*
 * aarch64/cpu.c — a core's AArch64 system registers for the EL1&0 stage 1 regime and
 * the local TLB maintenance instructions (Arm ARM DDI 0487 §D8.13 "TLB maintenance
 * instructions"; §D5.10 in older issues), on the TLB and page-walk-cache primitives
 * every architecture shares.
 *
 *   operation         TLB entries dropped (every level of this core)   walk-cache entries
 *   MSR TTBRn_EL1     none (entries are tagged by ASID)                 none
 *   TLBI VAE1, Xt     Xt's VA in Xt's ASID, and Xt's VA if global       of that ASID and half
 *   TLBI ASIDE1, Xt   every non-global entry of Xt's ASID               of that ASID
 *   TLBI VMALLE1      every entry, global ones too                      all
 *   MSR TCR_EL1,      none (the Arm ARM lets TLBs cache TCR fields:     none
 *   MSR SCTLR_EL1     software invalidates after changing them)
 *
 * The walk caches are tagged by ASID and TTBR half (aarch64.h); invalidating all of an
 * ASID's walk-cache entries where the instruction names one VA is more than the
 * architecture requires and always permitted. The broadcast (IS) forms, which reach
 * other cores, come with the many-cores work; these affect this core only.
 */
#include "arch/aarch64/aarch64.h"
#include "hw/core_impl.h"
#include "vmsim/pwc.h"
#include "vmsim/tlb.h"

/* Refresh the core's cached context after a register write (vmsi_core_sync does the
 * same, and knows AArch64 state through vmsi_a64_on). */
static void sync(vms_core *c)
{
    vmsi_core_sync(c);
}

/* TCR_EL1 values vmsim models (see aarch64.h for the field list). */
static bool tcr_ok(uint64_t tcr)
{
    uint64_t t0sz = (tcr >> VMS_A64_TCR_T0SZ_SHIFT) & 0x3F,
             t1sz = (tcr >> VMS_A64_TCR_T1SZ_SHIFT) & 0x3F;
    uint64_t tg0 = (tcr >> VMS_A64_TCR_TG0_SHIFT) & 3, tg1 = (tcr >> VMS_A64_TCR_TG1_SHIFT) & 3;
    return t0sz == 16 && t1sz == 16 && tg0 == 0 && tg1 == 2 &&
           !(tcr & (VMS_A64_TCR_TBI0 | VMS_A64_TCR_TBI1)) && (tcr & VMS_A64_TCR_HPD0) &&
           (tcr & VMS_A64_TCR_HPD1);
}

/* Would ttbr's ASID, under tcr, fit the TLB tags (the limit applies to the TTBR that
 * TCR_EL1.A1 makes the ASID holder)? */
static bool asid_ok(const vms_regs *r)
{
    return vmsi_a64_asid(r) <= VMSI_A64_MAX_ASID;
}

/* Drop every TLB entry (global ones too) and every walk-cache entry of c. */
static void flush_all(vms_core *c)
{
    for (unsigned l = 0; l < VMS_TLB_NLEVELS; l++)
        if (c->tlb[l])
            vms_tlb_flush_all(c->tlb[l], false);
    if (c->pwc)
        vms_pwc_flush_all(c->pwc);
}

vms_status vms_core_a64_init(vms_core *c, uint64_t tcr, uint64_t sctlr)
{
    if (!tcr_ok(tcr) || !(sctlr & VMS_A64_SCTLR_M))
        return VMS_ERR_UNSUPPORTED;
    c->regs.fmt = &vmsi_fmt_aarch64;
    c->regs.tcr_el1 = tcr;
    c->regs.sctlr_el1 = sctlr;
    c->regs.ttbr0_el1 = c->regs.ttbr1_el1 = 0;
    c->regs.pan = false;
    c->regs.user = false;
    sync(c);
    flush_all(c); /* a reset: neither counted nor charged */
    return VMS_OK;
}

vms_status vms_core_msr_tcr_el1(vms_core *c, uint64_t tcr)
{
    if (!tcr_ok(tcr))
        return VMS_ERR_UNSUPPORTED;
    vms_regs r = c->regs;
    r.tcr_el1 = tcr;
    if (!asid_ok(&r))
        return VMS_ERR_UNSUPPORTED;
    c->regs.tcr_el1 = tcr;
    sync(c);
    return VMS_OK;
}

vms_status vms_core_msr_sctlr_el1(vms_core *c, uint64_t sctlr)
{
    if (!(sctlr & VMS_A64_SCTLR_M))
        return VMS_ERR_UNSUPPORTED;
    c->regs.sctlr_el1 = sctlr;
    return VMS_OK;
}

/* MSR TTBRn_EL1 for n = ttbr1. */
static vms_status msr_ttbr(vms_core *c, bool ttbr1, uint64_t ttbr)
{
    vms_regs r = c->regs;
    *(ttbr1 ? &r.ttbr1_el1 : &r.ttbr0_el1) = ttbr;
    if (!asid_ok(&r) || (ttbr & UINT64_C(0xFFE)))
        return VMS_ERR_UNSUPPORTED;
    c->st.cr3_loads++; /* the root-register load counter, whatever the architecture */
    c->cycles += c->m->cfg.cost.cr3_load;
    c->regs = r;
    sync(c);
    return VMS_OK;
}

vms_status vms_core_msr_ttbr0_el1(vms_core *c, uint64_t ttbr)
{
    return msr_ttbr(c, false, ttbr);
}

vms_status vms_core_msr_ttbr1_el1(vms_core *c, uint64_t ttbr)
{
    return msr_ttbr(c, true, ttbr);
}

void vms_core_a64_set_pan(vms_core *c, bool pan)
{
    c->regs.pan = pan;
}

/* The ASID operand of a TLBI (Xt[63:48]; Xt[63:56] ignored with 8-bit ASIDs). */
static uint16_t tlbi_asid(const vms_core *c, uint64_t xt)
{
    uint16_t asid = (uint16_t)(xt >> 48);
    return (c->regs.tcr_el1 & VMS_A64_TCR_AS) ? asid : (uint16_t)(asid & 0xFFu);
}

/* The VA a TLBI names: Xt[43:0] is VA[55:12], sign-extended from VA[55] as the VA
 * range of that half has it. */
static uint64_t tlbi_va(uint64_t xt)
{
    uint64_t va = (xt & ((UINT64_C(1) << 44) - 1)) << 12;
    return (va >> 55) & 1u ? va | UINT64_C(0xFF00000000000000) : va;
}

void vms_core_tlbi_vae1(vms_core *c, uint64_t xt)
{
    uint16_t asid = tlbi_asid(c, xt);
    uint64_t va = tlbi_va(xt);
    c->st.invlpg++;
    c->cycles += c->m->cfg.cost.invlpg;
    if (asid > VMSI_A64_MAX_ASID)
        return; /* no entry can carry it (MSR refuses such ASIDs) */
    for (unsigned l = 0; l < VMS_TLB_NLEVELS; l++)
        if (c->tlb[l])
            vms_tlb_flush_va(c->tlb[l], asid, va, true);
    if (c->pwc)
        vms_pwc_flush_pcid(c->pwc, vmsi_a64_pwc_tag(asid, (va >> 55) & 1u));
}

void vms_core_tlbi_aside1(vms_core *c, uint64_t xt)
{
    uint16_t asid = tlbi_asid(c, xt);
    c->st.invpcid++;
    c->cycles += c->m->cfg.cost.invlpg;
    if (asid > VMSI_A64_MAX_ASID)
        return;
    for (unsigned l = 0; l < VMS_TLB_NLEVELS; l++)
        if (c->tlb[l])
            vms_tlb_flush_pcid(c->tlb[l], asid);
    if (c->pwc) {
        vms_pwc_flush_pcid(c->pwc, vmsi_a64_pwc_tag(asid, false));
        vms_pwc_flush_pcid(c->pwc, vmsi_a64_pwc_tag(asid, true));
    }
}

void vms_core_tlbi_vmalle1(vms_core *c)
{
    c->st.flushes_all++;
    c->cycles += c->m->cfg.cost.invlpg;
    flush_all(c);
}
