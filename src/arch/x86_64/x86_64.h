/*
 * x86_64/x86_64.h — what the x86-64 architecture folder shares with the rest of the
 * library: its format descriptors, its walker, and the kernel's software bits.
 * The architectural bit layouts are public (include/vmsim/pte.h, regs.h).
 */
#ifndef VMSIM_ARCH_X86_64_H
#define VMSIM_ARCH_X86_64_H

#include "vmsim/format.h"
#include "vmsim/pte.h"
#include "vmsim/regs.h"
#include "vmsim/walk.h"

/* Swap entries in a not-present PTE (field map in format.c). */
#define VMSI_X86_SWP_TYPE_SHIFT 59
#define VMSI_X86_SWP_TYPE_BITS  5
#define VMSI_X86_SWP_OFF_SHIFT  12
#define VMSI_X86_SWP_OFF_BITS   40

extern const vms_pt_format vmsi_fmt_x86_64;      /* 4-level, 48-bit */
extern const vms_pt_format vmsi_fmt_x86_64_la57; /* 5-level, 57-bit */

/* The SDM walker (walk.c): vms_walk's contract, for regs in an x86-64 paging mode. */
bool vmsi_x86_walk(vms_bus *bus, vms_pwc *pwc, const vms_regs *regs, uint64_t va,
                   vms_access_kind kind, vms_xlate *out, vms_fault *fault, vms_walk_stats *stats,
                   vms_walk_trace *trace);

/* The kernel's MMU operations as x86-64 instructions (cpu.c). */
extern const vms_mmu_ops vmsi_x86_mmu_ops;

/* The P|RW|US|XD|G|A|D|PCD|PWT bits that VMS_PGPROT_* prot asks for (no PS, no frame). */
uint64_t vmsi_x86_prot_bits(unsigned prot);

#endif
