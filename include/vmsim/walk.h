/*
 * vmsim/walk.h — the hardware page-table walker and the access-rights check.
 *
 * vms_walk runs the walker of the page-table format in force (regs->fmt, format.h;
 * NULL is x86-64, described here). For x86-64 it translates a linear address by reading the paging
 * structures from simulated RAM through the bus, one 8-byte entry per level, exactly as Intel SDM
 * Vol. 3A §4.5 describes; a page-walk cache (pwc.h) may let it start below the root. It checks
 * reserved bits (§4.5.4: bits 51:M, XD without NXE, PS at PML4/PML5, the reserved bits
 * of large leaves), then access rights (§4.6) on the effective rights: RW and US are the
 * AND over every level, XD the OR. On success it sets A in every entry it used and D in
 * the leaf on a write, writing them back to RAM (§4.8). On failure it returns the fault
 * with CR2 and the error code a real #PF would push.
 *
 * Deliberate choices (documented in docs/ARCHITECTURE.md): A/D bits are written only
 * when the whole walk succeeds; PWC entries are filled only from a successful walk;
 * a non-canonical address is reported as VMS_FAULT_GP (real hardware raises #GP).
 */
#ifndef VMSIM_WALK_H
#define VMSIM_WALK_H

#include "vmsim/bus.h"
#include "vmsim/pte.h"
#include "vmsim/regs.h"

typedef struct vms_pwc vms_pwc;

/*
 * A translation: what a successful walk produces and what a TLB entry holds.
 * Rights are the effective ones (combined over all levels).
 */
typedef struct vms_xlate {
    uint64_t page_pa; /* physical base of the page (aligned to its size) */
    vms_pgsize size;  /* the page size the leaf maps */
    uint8_t rw;       /* writable at every level */
    uint8_t us;       /* user-accessible at every level */
    uint8_t xd;       /* execute-disable at some level (only meaningful with NXE) */
    uint8_t global;   /* G in the leaf (only meaningful with CR4.PGE) */
    uint8_t dirty;    /* D in the leaf */
    uint8_t pkey;     /* protection key of the leaf (0 unless CR4.PKE) */
    uint8_t pcd, pwt; /* the leaf's caching bits */
    uint8_t nr;       /* not readable: a RISC-V execute-only leaf (R = 0); loads need MXR */
} vms_xlate;

/* Physical address of va under translation x. */
static inline uint64_t vms_xlate_pa(const vms_xlate *x, uint64_t va)
{
    return x->page_pa | (va & (vms_pgsize_bytes(x->size) - 1));
}

typedef enum vms_fault_kind {
    VMS_FAULT_NONE = 0,
    VMS_FAULT_PF,  /* page fault: cr2 and error_code are set */
    VMS_FAULT_GP,  /* non-canonical linear address (#GP on real hardware) */
    VMS_FAULT_BUS, /* a paging-structure entry's address decodes to nothing, or the
                      data access itself does (machine check on real hardware) */
    VMS_FAULT_S2,  /* in a guest (virt.h): the second stage (EPT, NPT, Stage 2) refused
                      the access: a VM exit for the hypervisor; va is the guest-linear
                      address, pa the guest-physical one */
} vms_fault_kind;

/*
 * A fault. error_code is the architecture's own (x86-64: the #PF error code; other
 * formats document theirs: RISC-V's scause, AArch64's ESR). flags is the same fault
 * described for the kernel in one format-neutral word, which every walker fills; its
 * bits are those of x86's error code (VMS_FAULTF_*), the summary Linux's arch code
 * hands its generic handler too (FAULT_FLAG_WRITE/USER/INSTRUCTION, protection or not).
 */
typedef struct vms_fault {
    vms_fault_kind kind;
    uint64_t va;         /* the faulting linear address (CR2 for #PF) */
    uint32_t error_code; /* the architecture's code (VMS_PFERR_* bits on x86-64) */
    unsigned level;      /* the level at which the walk stopped (0: at a TLB hit) */
    uint64_t pa;         /* for VMS_FAULT_BUS: the physical address that failed */
    uint32_t flags;      /* VMS_FAULTF_*: the neutral summary (== error_code on x86-64) */
} vms_fault;

#define VMS_FAULTF_PROT  VMS_PFERR_P    /* a translation existed but forbade the access */
#define VMS_FAULTF_WRITE VMS_PFERR_W    /* the access was a write */
#define VMS_FAULTF_USER  VMS_PFERR_U    /* made in user mode */
#define VMS_FAULTF_RSVD  VMS_PFERR_RSVD /* an entry had reserved bits (or encodings) set */
#define VMS_FAULTF_EXEC  VMS_PFERR_I    /* an instruction fetch */
#define VMS_FAULTF_PKEY  VMS_PFERR_PK   /* a protection key forbade it */

/* One level of a walk, for narration ("explain") and tests. */
typedef struct vms_walk_step {
    unsigned level;    /* 5 … 1 (hashed designs: 1 primary group or anchor, 2 secondary
                          group or chain) */
    uint64_t table_pa; /* physical address of the table read */
    unsigned index;    /* entry index in that table */
    uint64_t ptep;     /* physical address of the entry */
    uint64_t pte;      /* the raw entry as read (before A/D updates) */
} vms_walk_step;

/* The most entries one walk reads: 5 levels of a radix tree; 16 for a hashed-table
 * search (two groups of 8, or an anchor and a chain; vmsim/arch/hashed.h). */
#define VMS_WALK_MAX_STEPS 16

typedef struct vms_walk_trace {
    unsigned nsteps;
    unsigned pwc_level; /* 0: walk began at the root; L: a PWC supplied the level-L entry
                           and the walk began at level L-1 */
    vms_walk_step step[VMS_WALK_MAX_STEPS];
} vms_walk_trace;

/* Walker counters (a core has one set). */
typedef struct vms_walk_stats {
    uint64_t walks;            /* walks started */
    uint64_t mem_refs;         /* paging-structure entries read from memory */
    uint64_t ad_writes;        /* entries written back to set A and/or D */
    uint64_t faults;           /* walks that ended in a fault */
    uint64_t pwc_hits;         /* walks that a PWC shortened */
    uint64_t refs_by_level[6]; /* entries read, by level */
} vms_walk_stats;

/*
 * Walk the tables rooted at regs' CR3 for an access of `kind` to va, in the privilege
 * level regs->user gives. pwc may be NULL (no page-walk cache). stats (required) is
 * updated; trace may be NULL. On success fills *out and returns true; on failure fills
 * *fault and returns false. Never allocates.
 */
bool vms_walk(vms_bus *bus, vms_pwc *pwc, const vms_regs *regs, uint64_t va, vms_access_kind kind,
              vms_xlate *out, vms_fault *fault, vms_walk_stats *stats, vms_walk_trace *trace);

/*
 * The access-rights check of SDM §4.6 (and §4.6.2 protection keys) for an access of
 * `kind` under translation x in the mode and with the control bits of regs. Returns 0
 * when the access is allowed, otherwise the #PF error code (P set, plus W/U/I/PK as
 * they apply). The walker and the TLB-hit path both use it, so rights are checked by
 * one piece of code.
 */
uint32_t vms_check_access(const vms_regs *regs, const vms_xlate *x, vms_access_kind kind);

/* The format in force for regs: regs->fmt, or the x86-64 format of CR4.LA57's mode. */
const vms_pt_format *vms_regs_format(const vms_regs *regs);

/* The error-code bits that describe the access itself (W, U, I), without P/RSVD/PK. */
uint32_t vms_access_error_bits(const vms_regs *regs, vms_access_kind kind);

#endif
