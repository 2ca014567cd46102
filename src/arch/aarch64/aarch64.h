/*
 * aarch64/aarch64.h — what the AArch64 architecture folder shares with the rest of the
 * library: its format descriptor, its walker and rights check, and the helpers the
 * walker and the core operations share. The architectural layouts are public
 * (include/vmsim/arch/aarch64.h).
 */
#ifndef VMSIM_ARCH_AARCH64_IMPL_H
#define VMSIM_ARCH_AARCH64_IMPL_H

#include "vmsim/arch/aarch64.h"
#include "vmsim/regs.h"
#include "vmsim/walk.h"

extern const vms_pt_format vmsi_fmt_aarch64; /* 4 KiB granule, 48-bit VA, 4 levels */

/* Is regs in AArch64 state (the "aarch64" format in force)? */
static inline bool vmsi_a64_on(const vms_regs *regs)
{
    return regs->fmt == &vmsi_fmt_aarch64;
}

/* The ASID in force: TTBR1_EL1's with TCR_EL1.A1, else TTBR0_EL1's; 8 bits unless
 * TCR_EL1.AS (Arm ARM: with AS = 0 the upper 8 bits of the field are ignored). */
static inline uint16_t vmsi_a64_asid(const vms_regs *regs)
{
    uint64_t ttbr = (regs->tcr_el1 & VMS_A64_TCR_A1) ? regs->ttbr1_el1 : regs->ttbr0_el1;
    uint16_t asid = (uint16_t)(ttbr >> VMS_A64_TTBR_ASID_SHIFT);
    return (regs->tcr_el1 & VMS_A64_TCR_AS) ? asid : (uint16_t)(asid & 0xFFu);
}

/* The walk-cache context bit of the TTBR1 half when the two TTBRs hold different
 * trees: above the 16 ASID bits, inside the address-space half of vms_ctx. */
#define VMSI_A64_PWC_TTBR1 (UINT32_C(1) << 16)

/* Do TTBR0_EL1 and TTBR1_EL1 point to different level 0 tables? */
static inline bool vmsi_a64_split(const vms_regs *regs)
{
    return ((regs->ttbr0_el1 ^ regs->ttbr1_el1) & VMS_A64_TTBR_BADDR_MASK) != 0;
}

/*
 * The walk-cache tag of a walk of the half `ttbr1`: the ASID, with VMSI_A64_PWC_TTBR1
 * set for the TTBR1 half when the two TTBRs hold different trees, since the PWC keys on VA[47:x]
 * only and the halves share those bits. One tree serving both halves (as vmsim's kernel
 * uses it: user space below, the kernel above, x86's layout) needs no split.
 */
static inline vms_ctx vmsi_a64_pwc_tag(const vms_regs *regs, uint16_t asid, bool ttbr1)
{
    return asid | (ttbr1 && vmsi_a64_split(regs) ? VMSI_A64_PWC_TTBR1 : 0u);
}

/* The kernel's MMU operations (format.h) as MSR TTBRn_EL1 and TLBI (cpu.c). */
extern const vms_mmu_ops vmsi_a64_mmu_ops;

/* The walker (walk.c): vms_walk's contract for regs in AArch64 state. */
bool vmsi_a64_walk(vms_bus *bus, vms_pwc *pwc, const vms_regs *regs, uint64_t va,
                   vms_access_kind kind, vms_xlate *out, vms_fault *fault, vms_walk_stats *stats,
                   vms_walk_trace *trace);

/* The rights check of a cached translation (vms_check_access's contract): 0, or the
 * ESR_EL1 value of the Permission fault (level from the page size). */
uint32_t vmsi_a64_check_access(const vms_regs *regs, const vms_xlate *x, vms_access_kind kind);

/* vms_fault.flags (VMS_FAULTF_*) for an abort with syndrome esr taken from EL0 (user)
 * or EL1: WRITE for a data abort with WnR, EXEC for an instruction abort, PROT for a
 * Permission fault, RSVD for an Address size fault; Translation and Access flag faults
 * are "no usable entry" (Linux arm64 hands both to handle_mm_fault, which sets AF). */
uint32_t vmsi_a64_fault_flags(uint32_t esr, bool user);

/* The ESR_EL1 value for fault status code fsc on an access of `kind` (EC from the
 * exception level regs->user gives, WnR for writes). */
uint32_t vmsi_a64_esr(const vms_regs *regs, vms_access_kind kind, unsigned fsc);

/*
 * How vms_xlate carries an AArch64 translation (its fields are x86-named, and the TLB
 * packs rw/us/xd/dirty/pcd/pwt as single bits and pkey as 4 bits):
 *   rw      writable now or by hardware dirty-state update (AP[2] = 0, or DBM with HD)
 *   us      AP[1]: EL0 access
 *   xd      UXN
 *   pkey    bit 0 PXN; bits 2:1 the Arm lookup level of the leaf (1, 2 or 3), so that a
 *           Permission fault on a TLB hit reports the level even for a splintered block
 *   dirty   AP[2] = 0 (a write to a DBM entry cached clean walks again to clear AP[2])
 *   global  nG = 0
 *   pcd     AttrIndx names Device memory (Linux's MT_DEVICE_nGnRE, index 4)
 *   pwt     the contiguous hint
 */
#define VMSI_A64_PKEY_PXN         1u
#define VMSI_A64_PKEY_LEVEL_SHIFT 1

#endif
