/*
 * riscv64/riscv64.h — what the RISC-V architecture folder shares with the rest of the
 * library: its format descriptors, its walker and rights check. The architectural bit
 * layouts are public (include/vmsim/arch/riscv64.h).
 */
#ifndef VMSIM_SRC_ARCH_RISCV64_H
#define VMSIM_SRC_ARCH_RISCV64_H

#include "vmsim/arch/riscv64.h"
#include "vmsim/format.h"
#include "vmsim/regs.h"
#include "vmsim/walk.h"

/* Swap entries in a not-present PTE (field map in format.c). */
#define VMSI_RV_SWP_MARK       VMS_RV_PTE_U /* vmsim's marker: bit 4, unused by Linux */
#define VMSI_RV_SWP_TYPE_SHIFT 7
#define VMSI_RV_SWP_TYPE_BITS  5
#define VMSI_RV_SWP_OFF_SHIFT  12
#define VMSI_RV_SWP_OFF_BITS   52

extern const vms_pt_format vmsi_fmt_sv39; /* 3 levels, 39-bit VA */
extern const vms_pt_format vmsi_fmt_sv48; /* 4 levels, 48-bit VA */
extern const vms_pt_format vmsi_fmt_sv57; /* 5 levels, 57-bit VA */

/* The Sv39/48/57 walker (walk.c): vms_walk's contract for regs with an Sv format. */
bool vmsi_rv_walk(vms_bus *bus, vms_pwc *pwc, const vms_regs *regs, uint64_t va,
                  vms_access_kind kind, vms_xlate *out, vms_fault *fault, vms_walk_stats *stats,
                  vms_walk_trace *trace);

/* The rights check (priv §"Virtual Address Translation Process" step 5): 0 when the
 * access of `kind` may use x in regs' mode with SUM/MXR, else its page-fault cause. */
uint32_t vmsi_rv_check_access(const vms_regs *regs, const vms_xlate *x, vms_access_kind kind);

/* The kernel's MMU operations as csrw satp / sfence.vma (cpu.c). */
extern const vms_mmu_ops vmsi_rv_mmu_ops;

/* Is f one of the RISC-V formats? */
static inline bool vmsi_fmt_is_riscv(const vms_pt_format *f)
{
    return f == &vmsi_fmt_sv39 || f == &vmsi_fmt_sv48 || f == &vmsi_fmt_sv57;
}

#endif
