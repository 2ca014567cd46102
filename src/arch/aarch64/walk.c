/*
 * aarch64/walk.c — the AArch64 stage 1 walker (EL1&0 regime, 4 KiB granule, 48-bit VA)
 * and its access-rights check, behind vms_walk (walk.h) for the "aarch64" format.
 *
 * Models the Arm ARM (DDI 0487), chapter D8 (D4 in issues before H):
 *  - VA range and TTBR selection ("Selection between TTBR0_ELx and TTBR1_ELx"; the
 *    pseudocode's AArch64.GetVARange and AArch64.VAIsOutOfRange): VA[55] selects TTBR1;
 *    with T0SZ = T1SZ = 16 and TBI0 = TBI1 = 0 bits 63:48 must all equal VA[55], else a
 *    Translation fault, level 0, and nothing is read. TCR_EL1.EPDn = 1 disables walks
 *    for that half (Translation fault, level 0).
 *  - the lookup (AArch64.S1Walk): one 8-byte descriptor read through the bus per level,
 *    levels 0 … 3; an invalid descriptor (or type 01 at level 0 or 3) is a Translation
 *    fault at that level; an output or table address above the PA size TCR_EL1.IPS
 *    gives is an Address size fault at that level (the TTBR's base: level 0).
 *  - the Access flag (§D8.5 "Hardware updates of the translation tables", FEAT_HAFDBS):
 *    AF = 0 in the leaf is an Access flag fault at the leaf's level unless TCR_EL1.HA,
 *    in which case the walker sets AF. It is checked in the walk, before permissions,
 *    as AArch64.S1Walk does. With HA and HD, a write to a leaf with DBM = 1 and AP[2] = 1
 *    is permitted and clears AP[2] (the dirty state); the update is written back only
 *    when the access succeeds (AArch64.S1Translate).
 *  - permissions (§D8.4 "Memory access control", AArch64.S1CheckPermissions with direct
 *    permissions): AP[2:1], UXN, PXN, PXN implied for EL0-writable regions,
 *    SCTLR_EL1.WXN, PSTATE.PAN (EL1 data accesses to EL0-accessible pages). A failure is
 *    a Permission fault at the leaf's level.
 *  - the walk caches (pwc.h), tagged by ASID and the TTBR half; and the TLB (the MMU)
 *    tagged by ASID, nG = 0 entries matching every ASID.
 *
 * The fault record: kind VMS_FAULT_PF for every MMU fault (VMS_FAULT_BUS for a table
 * read that hits no device: a synchronous External abort on the walk), error_code the
 * ESR_EL1 value (EC, IL, WnR, DFSC/IFSC), va the FAR_EL1 value, level vmsim's level of
 * the lookup that faulted (4 - Arm level; 4 for the level 0 range checks).
 *
 * Not modelled: hierarchical attributes (TCR_EL1.HPD0/1 must be 1), TBI, E0PD, FEAT_LPA2,
 * FEAT_BTI (GP), PIE/POE, the translation-table walks' own memory attributes, and
 * misprogramming of the contiguous hint (its range is not checked).
 */
#include <assert.h>

#include "arch/aarch64/aarch64.h"
#include "vmsim/pwc.h"

/* The PA width TCR_EL1.IPS names (0b000 … 0b101: 32, 36, 40, 42, 44, 48 bits). */
static unsigned ips_bits(const vms_regs *regs)
{
    static const unsigned bits[8] = {32, 36, 40, 42, 44, 48, 48, 48};
    return bits[(regs->tcr_el1 >> VMS_A64_TCR_IPS_SHIFT) & 7u];
}

uint32_t vmsi_a64_esr(const vms_regs *regs, vms_access_kind kind, unsigned fsc)
{
    unsigned ec = kind == VMS_ACC_EXEC ? (regs->user ? VMS_A64_EC_IABT_LOW : VMS_A64_EC_IABT_CUR)
                                       : (regs->user ? VMS_A64_EC_DABT_LOW : VMS_A64_EC_DABT_CUR);
    return (uint32_t)ec << VMS_A64_ESR_EC_SHIFT | VMS_A64_ESR_IL |
           (kind == VMS_ACC_WRITE ? VMS_A64_ESR_WNR : 0) | (fsc & VMS_A64_ESR_FSC_MASK);
}

/*
 * §D8.4: may this access use translation x? Direct permissions of stage 1 EL1&0:
 *   EL0  read AP[1]; write AP[1] and writable; execute !UXN (and not WXN-writable)
 *   EL1  read always (not PAN-blocked); write writable (not PAN-blocked); execute
 *        !PXN and not EL0-writable (and not WXN-writable)
 * "writable" (x->rw) already reflects AP[2] = 0 or DBM with TCR_EL1.HD.
 */
static bool a64_allowed(const vms_regs *regs, const vms_xlate *x, vms_access_kind kind)
{
    bool el0 = x->us, wr = x->rw, wxn = (regs->sctlr_el1 & VMS_A64_SCTLR_WXN) != 0;
    bool pxn = (x->pkey & VMSI_A64_PKEY_PXN) != 0;
    if (regs->user) {
        if (kind == VMS_ACC_EXEC)
            return !x->xd && !(wxn && el0 && wr);
        return el0 && (kind == VMS_ACC_READ || wr);
    }
    if (kind == VMS_ACC_EXEC)
        return !pxn && !(el0 && wr) && !(wxn && wr);
    if (regs->pan && el0)
        return false; /* PSTATE.PAN: no EL1 data access to EL0-accessible memory */
    return kind == VMS_ACC_READ || wr;
}

uint32_t vmsi_a64_check_access(const vms_regs *regs, const vms_xlate *x, vms_access_kind kind)
{
    if (a64_allowed(regs, x, kind))
        return 0;
    unsigned arm_level = (x->pkey >> VMSI_A64_PKEY_LEVEL_SHIFT) & 3u;
    return vmsi_a64_esr(regs, kind, VMS_A64_FSC_PERM + arm_level);
}

uint32_t vmsi_a64_fault_flags(uint32_t esr, bool user)
{
    unsigned ec = vms_a64_esr_ec(esr), fsc = vms_a64_esr_fsc(esr) & ~3u;
    bool exec = ec == VMS_A64_EC_IABT_LOW || ec == VMS_A64_EC_IABT_CUR;
    uint32_t fl = (user ? VMS_FAULTF_USER : 0) | (exec ? VMS_FAULTF_EXEC : 0) |
                  (!exec && (esr & VMS_A64_ESR_WNR) ? VMS_FAULTF_WRITE : 0);
    if (fsc == VMS_A64_FSC_PERM)
        fl |= VMS_FAULTF_PROT;
    else if (fsc == VMS_A64_FSC_ADDR_SIZE)
        fl |= VMS_FAULTF_RSVD; /* an address no table may hold: as x86's reserved bits */
    return fl;                 /* translation and Access flag faults: "no usable entry" */
}

/* Record a fault and count it; returns false so callers can `return fail(...)`. */
static bool fail(vms_fault *f, vms_walk_stats *stats, const vms_regs *regs, vms_fault_kind kind,
                 uint64_t va, uint32_t esr, unsigned level, uint64_t pa)
{
    *f = (vms_fault){.kind = kind,
                     .va = va,
                     .error_code = esr,
                     .level = level,
                     .pa = pa,
                     .flags = vmsi_a64_fault_flags(esr, regs->user)};
    stats->faults++;
    return false;
}

/* A fault with status fsc + the Arm level of vmsim level `level`. */
static bool fail_at(vms_fault *f, vms_walk_stats *stats, const vms_regs *regs, uint64_t va,
                    vms_access_kind kind, unsigned fsc, unsigned level)
{
    return fail(f, stats, regs, VMS_FAULT_PF, va,
                vmsi_a64_esr(regs, kind, fsc + vms_a64_arm_level(level)), level, 0);
}

/* The translation a leaf descriptor at vmsim level `level` gives. */
static vms_xlate make_xlate(const vms_regs *regs, uint64_t pte, unsigned level)
{
    vms_xlate x = {0};
    bool hd = (regs->tcr_el1 & VMS_A64_TCR_HA) && (regs->tcr_el1 & VMS_A64_TCR_HD);
    x.size = (vms_pgsize)(level - 1);
    x.page_pa = pte & VMS_A64_ADDR_MASK & ~(vms_pgsize_bytes(x.size) - 1);
    x.rw = !(pte & VMS_A64_AP2) || (hd && (pte & VMS_A64_DBM));
    x.us = (pte & VMS_A64_AP1) != 0;
    x.xd = (pte & VMS_A64_UXN) != 0;
    x.pkey = (uint8_t)((pte & VMS_A64_PXN ? VMSI_A64_PKEY_PXN : 0) |
                       vms_a64_arm_level(level) << VMSI_A64_PKEY_LEVEL_SHIFT);
    x.dirty = !(pte & VMS_A64_AP2);
    x.global = !(pte & VMS_A64_NG);
    x.pcd = ((pte & VMS_A64_ATTRINDX_MASK) >> VMS_A64_ATTRINDX_SHIFT) == 4u;
    x.pwt = (pte & VMS_A64_CONT) != 0;
    return x;
}

/* Is the descriptor valid at vmsim level `level`, and is it a leaf there? */
static bool desc_valid(uint64_t pte, unsigned level)
{
    if (!(pte & VMS_A64_VALID))
        return false;
    return (pte & VMS_A64_TYPE) || level == 2 || level == 3;
}

static bool desc_leaf(uint64_t pte, unsigned level)
{
    return level == 1 || !(pte & VMS_A64_TYPE);
}

/* Remember the table descriptors this walk read (levels `first` … leaf+1, >= 2). */
static void fill_pwc(vms_pwc *pwc, vms_ctx tag, uint64_t va, const uint64_t next[6], unsigned first,
                     unsigned leaf)
{
    for (unsigned l = first; l > leaf && l >= 2; l--) {
        vms_pwc_entry e = {next[l], 1, 1, 0}; /* rights: hierarchical controls disabled */
        vms_pwc_fill(pwc, tag, va, l, &e);
    }
}

bool vmsi_a64_walk(vms_bus *bus, vms_pwc *pwc, const vms_regs *regs, uint64_t va,
                   vms_access_kind kind, vms_xlate *out, vms_fault *fault, vms_walk_stats *stats,
                   vms_walk_trace *trace)
{
    stats->walks++;
    if (trace)
        trace->nsteps = trace->pwc_level = 0;
    bool hi = (va >> 55) & 1u;
    if ((va >> 48) != (hi ? UINT64_C(0xFFFF) : 0))
        return fail_at(fault, stats, regs, va, kind, VMS_A64_FSC_TRANS, 4);
    if (regs->tcr_el1 & (hi ? VMS_A64_TCR_EPD1 : VMS_A64_TCR_EPD0))
        return fail_at(fault, stats, regs, va, kind, VMS_A64_FSC_TRANS, 4);
    uint64_t pa_limit = UINT64_C(1) << ips_bits(regs);
    uint64_t table = (hi ? regs->ttbr1_el1 : regs->ttbr0_el1) & VMS_A64_TTBR_BADDR_MASK;
    if (table >= pa_limit)
        return fail_at(fault, stats, regs, va, kind, VMS_A64_FSC_ADDR_SIZE, 4);

    vms_ctx tag = vmsi_a64_pwc_tag(regs, vmsi_a64_asid(regs), hi);
    unsigned level = 4;
    vms_pwc_entry e;
    unsigned hit = pwc ? vms_pwc_lookup(pwc, tag, va, &e) : 0;
    if (hit) {
        assert(hit >= 2 && hit <= 4);
        table = e.table_pa;
        level = hit - 1;
        stats->pwc_hits++;
    }
    if (trace)
        trace->pwc_level = hit;
    unsigned first = level;
    uint64_t next[6] = {0}, pte, ptep;
    for (;; level--) {
        unsigned idx = (unsigned)((va >> (12u + 9u * (level - 1u))) & 511u);
        ptep = table + 8u * idx;
        if (vms_bus_read64(bus, ptep, &pte) != VMS_OK)
            return fail(fault, stats, regs, VMS_FAULT_BUS, va,
                        vmsi_a64_esr(regs, kind, VMS_A64_FSC_SEA_WALK + vms_a64_arm_level(level)),
                        level, ptep);
        stats->mem_refs++;
        stats->refs_by_level[level]++;
        if (trace)
            trace->step[trace->nsteps++] = (vms_walk_step){level, table, idx, ptep, pte};
        if (!desc_valid(pte, level))
            return fail_at(fault, stats, regs, va, kind, VMS_A64_FSC_TRANS, level);
        if ((pte & VMS_A64_ADDR_MASK) >= pa_limit)
            return fail_at(fault, stats, regs, va, kind, VMS_A64_FSC_ADDR_SIZE, level);
        if (desc_leaf(pte, level))
            break;
        next[level] = table = pte & VMS_A64_ADDR_MASK;
    }

    bool ha = (regs->tcr_el1 & VMS_A64_TCR_HA) != 0;
    if (!(pte & VMS_A64_AF) && !ha)
        return fail_at(fault, stats, regs, va, kind, VMS_A64_FSC_ACCESS, level);
    vms_xlate x = make_xlate(regs, pte, level);
    uint32_t esr = vmsi_a64_check_access(regs, &x, kind);
    if (esr)
        return fail(fault, stats, regs, VMS_FAULT_PF, va, esr, level, 0);

    /* Hardware updates, only for an access that succeeds: AF with HA; AP[2] cleared for
     * a write through a DBM entry with HA and HD (x.rw already allowed it). */
    uint64_t v = pte | (ha ? VMS_A64_AF : 0);
    if (kind == VMS_ACC_WRITE && (v & VMS_A64_AP2) && x.rw)
        v &= ~VMS_A64_AP2;
    if (v != pte) {
        if (vms_bus_write64(bus, ptep, v) != VMS_OK)
            return fail(fault, stats, regs, VMS_FAULT_BUS, va, 0, level, ptep);
        stats->ad_writes++;
        x.dirty = !(v & VMS_A64_AP2);
    }
    if (pwc)
        fill_pwc(pwc, tag, va, next, first, level);
    *out = x;
    return true;
}
