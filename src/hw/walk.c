/*
 * walk.c — the hardware walker's front door (walk.h): every walk and rights check goes
 * to the walker of the page-table format in force (regs->fmt; NULL is x86-64). Each
 * architecture's walker lives in its folder (src/arch/NAME/walk.c), compiled for its
 * format, so the per-level loop pays no indirect call; the only dispatch is here, once
 * per walk.
 */
#include "arch/x86_64/x86_64.h"

bool vms_walk(vms_bus *bus, vms_pwc *pwc, const vms_regs *regs, uint64_t va, vms_access_kind kind,
              vms_xlate *out, vms_fault *fault, vms_walk_stats *stats, vms_walk_trace *trace)
{
    if (!regs->fmt)
        return vmsi_x86_walk(bus, pwc, regs, va, kind, out, fault, stats, trace);
    return regs->fmt->walk(bus, pwc, regs, va, kind, out, fault, stats, trace);
}

const vms_pt_format *vms_regs_format(const vms_regs *regs)
{
    return regs->fmt ? regs->fmt : vms_format_x86_64(vms_regs_levels(regs));
}
