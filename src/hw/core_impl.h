/*
 * core_impl.h — the insides of a machine and its cores, shared by the files of the
 * hardware model (machine.c, cpu.c, mmu.c, stats.c). Nothing outside src/hw uses it.
 */
#ifndef VMSIM_CORE_IMPL_H
#define VMSIM_CORE_IMPL_H

#include "hw/tap.h"
#include "vmsim/core.h"
#include "vmsim/machine.h"

struct vms_core {
    vms_machine *m;
    unsigned id;
    vms_regs regs;
    vms_ctx ctx;                   /* the context tag now: VM << 32 | PCID/ASID (cached) */
    bool pge;                      /* cached CR4.PGE: fill global entries only when set */
    vms_tlb *tlb[VMS_TLB_NLEVELS]; /* NULL when a level is absent */
    vms_pwc *pwc;                  /* NULL when no level has a cache */
    vms_walk_stats wstats;
    vms_core_stats st;
    uint64_t cycles;
    vms_mem_where walk_where[VMS_WALK_MAX_STEPS]; /* where the last walk's references were served */
    unsigned walk_nwhere;
    unsigned bcast_pending;   /* INVLPGBs issued since the last TLBSYNC */
    struct vmsi_swtlb *swtlb; /* tlb.mode = software: the JTLB (src/arch/mips); else NULL */
    /* In a guest (virt.h vms_core_vm_enter): the two-stage MMU, the VM's tag (ctx bits
     * 63:32), and the host state the VM exit restores. nested is NULL natively. */
    struct vms_nested *nested;
    uint32_t vm;
    vms_regs host_regs;
    vms_pwc *host_pwc;
    /* A vCPU (vms_core_vm_run): where the exit saves the guest's registers (NULL: not
     * saved), and the hypervisor's handler of second-stage exits (NULL: the access
     * fails with VMS_FAULT_S2, as before). */
    vms_regs *vm_save;
    bool (*vm_exit_fn)(void *ud, vms_core *c, const vms_fault *f);
    void *vm_exit_ud;
    /* Where this core's TLB levels and PWC report to the event tap (tap.h): fixed at
     * creation, [VMS_TLB_NLEVELS] is the PWC's. */
    vmsi_unit_tap utap[VMS_TLB_NLEVELS + 1];
    /* Walks take the plain path: the stepwise walker (with a trace) and the TLB fills from
     * the translation, never mmu.c's fused x86-64 walk and fills (tests compare them). */
    bool walk_plain;
};

struct vms_machine {
    const vms_allocator *alloc;
    vms_machine_config cfg;
    vms_ram *ram;
    vms_bus *bus;
    unsigned ncores;
    vms_core *cores;         /* array of ncores */
    struct vmsi_memside *ms; /* caches and DRAM (memside.h); NULL when both are off */
    vmsi_tap tap;            /* the event tap (events.h): tap.fn NULL when no observer */
};

/* The 2D walk of a core in a guest and the fills it makes (src/virt/vcpu.c): what
 * walk_and_fill does natively. */
bool vmsi_nested_walk_and_fill(vms_core *c, uint64_t va, vms_access_kind kind, vms_tlb *l1,
                               vms_xlate *x, vms_fault *fault);

/* A broadcast invalidation from n's VM reaching the guest walk caches of every vCPU of
 * that VM (vms_nested_link, src/virt/nested.c): the entries tagged tag (a guest ASID,
 * with its TTBR1 bit), or all of them. */
void vmsi_nested_pwc_flush_vm(struct vms_nested *n, uint32_t tag, bool all);

/* Tell the tap (if any) of an invalidating instruction on c (events.h "tlb_op"). */
void vmsi_core_report_op(vms_core *c, vms_ev_tlb_op op, uint64_t va, uint32_t pcid, bool flush);

/* Recompute the cached fields of a core after a register change. */
void vmsi_core_sync(vms_core *c);

/* With caches or DRAM on: run the entries a walk read (trace) through core c's hierarchy
 * and return their cycles; the entries the walker then wrote (A/D) are stores. */
uint64_t vmsi_core_walk_mem(vms_core *c, const vms_walk_trace *t, bool ok);

/* The invalidation primitives (cpu.c), on every TLB level of c and its PWC: drop all
 * entries (globals kept when keep_global), the non-global entries of context ctx (a
 * PCID, an ASID on other architectures, within a VM), or va's entries of ctx (and va's
 * globals of ctx's VM when with_global; the PWC drops ctx's entries). Each architecture's
 * instructions are built from these. */
void vmsi_core_tlbs_flush_all(vms_core *c, bool keep_global);
void vmsi_core_tlbs_flush_pcid(vms_core *c, vms_ctx ctx);
void vmsi_core_tlbs_flush_va(vms_core *c, vms_ctx ctx, uint64_t va, bool with_global);

#endif
