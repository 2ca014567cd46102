/*
 * hashed/hashed.h — what the hashed and inverted designs' folder shares with the rest
 * of the library: the design formats and their walkers. The layouts and the table
 * operations are public (include/vmsim/arch/hashed.h).
 */
#ifndef VMSIM_ARCH_HASHED_INTERNAL_H
#define VMSIM_ARCH_HASHED_INTERNAL_H

#include "vmsim/arch/hashed.h"
#include "vmsim/regs.h"
#include "vmsim/walk.h"

extern const vms_pt_format vmsi_fmt_hashed;        /* on 4-level x86-64 (48-bit EA) */
extern const vms_pt_format vmsi_fmt_hashed_la57;   /* on 5-level x86-64 (57-bit EA) */
extern const vms_pt_format vmsi_fmt_inverted;      /* 48-bit */
extern const vms_pt_format vmsi_fmt_inverted_la57; /* 57-bit */

/* The searches (walk.h's vms_walk contract, for regs whose fmt is the design's). */
bool vmsi_hpt_walk(vms_bus *bus, vms_pwc *pwc, const vms_regs *regs, uint64_t va,
                   vms_access_kind kind, vms_xlate *out, vms_fault *fault, vms_walk_stats *stats,
                   vms_walk_trace *trace);
bool vmsi_ipt_walk(vms_bus *bus, vms_pwc *pwc, const vms_regs *regs, uint64_t va,
                   vms_access_kind kind, vms_xlate *out, vms_fault *fault, vms_walk_stats *stats,
                   vms_walk_trace *trace);

/* The EA's bits below va_bits (the sign extension of the upper half dropped). */
static inline uint64_t vmsi_design_ea_bits(uint64_t ea, unsigned va_bits)
{
    return ea & ((UINT64_C(1) << va_bits) - 1);
}

/* The canonical EA whose low va_bits bits are low. */
static inline uint64_t vmsi_design_ea_canon(uint64_t low, unsigned va_bits)
{
    return (uint64_t)((int64_t)(low << (64 - va_bits)) >> (64 - va_bits));
}

/* A hit's translation from the rights the entry holds (PP or RW/US/XD decoded). */
static inline bool vmsi_design_finish(const vms_regs *regs, vms_access_kind kind, uint64_t va,
                                      vms_xlate *x, vms_fault *fault, vms_walk_stats *stats)
{
    uint32_t err = vms_check_access(regs, x, kind);
    if (!err)
        return true;
    *fault =
        (vms_fault){.kind = VMS_FAULT_PF, .va = va, .error_code = err, .level = 1, .flags = err};
    stats->faults++;
    return false;
}

/* The fault of a search that found nothing: not present (x86's P = 0 error code). */
static inline bool vmsi_design_miss(const vms_regs *regs, vms_access_kind kind, uint64_t va,
                                    vms_fault *fault, vms_walk_stats *stats)
{
    uint32_t err = vms_access_error_bits(regs, kind);
    *fault =
        (vms_fault){.kind = VMS_FAULT_PF, .va = va, .error_code = err, .level = 1, .flags = err};
    stats->faults++;
    return false;
}

/* A table read that decoded to nothing (the table is not RAM). */
static inline bool vmsi_design_bus(uint64_t va, uint64_t pa, vms_fault *fault,
                                   vms_walk_stats *stats)
{
    *fault = (vms_fault){.kind = VMS_FAULT_BUS, .va = va, .pa = pa, .level = 1};
    stats->faults++;
    return false;
}

static inline void vmsi_design_step(vms_walk_trace *trace, unsigned level, uint64_t table,
                                    unsigned index, uint64_t ptep, uint64_t pte)
{
    if (trace && trace->nsteps < VMS_WALK_MAX_STEPS)
        trace->step[trace->nsteps++] = (vms_walk_step){level, table, index, ptep, pte};
}

#endif
