/*
 * mips/mips.h — what the software-managed TLB (MIPS style, tlb.c) shares with the rest
 * of the hardware model: the per-core JTLB and CP0 state, the micro-TLB miss path that
 * mmu.c calls instead of the walker, the kernel's MMU operations as MIPS instructions,
 * and the JSON counters. The public side is include/vmsim/swtlb.h.
 */
#ifndef VMSIM_SRC_ARCH_MIPS_H
#define VMSIM_SRC_ARCH_MIPS_H

#include "vmsim/format.h"
#include "vmsim/strbuf.h"
#include "vmsim/swtlb.h"
#include "vmsim/tlb.h"

typedef struct vms_machine vms_machine;

/* One core's software-managed TLB: the JTLB, the CP0 registers, the exception hook. */
typedef struct vmsi_swtlb {
    unsigned n;            /* JTLB entries */
    vms_mips_tlb_entry *e; /* n entries */
    vms_mips_cp0 cp0;      /* the registers */
    uint64_t random_epoch; /* the core cycle Random last restarted at N-1 */
    vms_mips_handler fn;   /* the kernel's exception handler, or NULL */
    void *fn_ctx;
    vms_swtlb_stats st;
    vms_mips_trace tr; /* the last micro-TLB miss, for narration */
} vmsi_swtlb;

/* Create / destroy a core's JTLB (cfg->on; entries and wired validated by the caller). */
vms_status vmsi_swtlb_create(const vms_allocator *a, const vms_swtlb_config *cfg, vmsi_swtlb **out);
void vmsi_swtlb_destroy(const vms_allocator *a, vmsi_swtlb *s);

/* VMS_ERR_INVAL (with a message) for a configuration the hardware cannot have. */
vms_status vmsi_swtlb_validate(const vms_swtlb_config *cfg, const vms_pt_format *fmt, vms_err *err);

/*
 * The micro-TLB miss of core c (mmu.c's walk_and_fill on a software-TLB core): look va
 * up in the JTLB; on a hit that allows the access fill the micro-TLB l1 (may be NULL)
 * and *x and return true; otherwise raise the TLB exception to the kernel's handler and
 * retry after it returns, or return false with *fault (a VMS_FAULT_PF whose error_code
 * is Cause.ExcCode) when the handler passes it on.
 */
bool vmsi_mips_miss(vms_core *c, uint64_t va, vms_access_kind kind, vms_tlb *l1, vms_xlate *x,
                    vms_fault *fault);

/* The kernel's MMU operations (format.h vms_mmu_ops) on a software-TLB core. */
extern const vms_mmu_ops vmsi_mips_mmu_ops;

/* JSON member ,"swtlb":{…} summed over the machine's cores (nothing on hardware TLBs). */
void vmsi_swtlb_json(const vms_machine *m, vms_strbuf *sb);
void vmsi_swtlb_reset_stats(vmsi_swtlb *s);

#endif
