/*
 * vmsim/core.h — one CPU core: its control registers and its MMU.
 *
 * The MMU of a core (DESIGN.md "the life of a memory access"): an access looks up the
 * L1 TLB for its kind (iTLB for fetches, dTLB for data), then the shared L2 TLB, tagged
 * with the current PCID; a hit whose cached rights permit the access gives the physical
 * address. On a miss the walker reads the tables from RAM (a PWC may skip levels), checks
 * rights, sets A/D in RAM and fills the L2 and L1 TLBs. A write that hits an entry cached
 * clean re-walks to set D in memory (as Intel cores do). A failed check raises a fault:
 * CR2 and the error code are recorded and, as SDM §4.10.4.1 says, the TLB entries for the
 * faulting address are dropped. Every step adds its cycles and counters.
 *
 * The kernel changes translations only as a real kernel does: it writes entries to RAM
 * and then uses the invalidation operations here (INVLPG, INVPCID, MOV to CR3, CR4.PGE
 * toggles). Until it does, stale translations are used.
 */
#ifndef VMSIM_CORE_H
#define VMSIM_CORE_H

#include "vmsim/machine.h"
#include "vmsim/regs.h"
#include "vmsim/walk.h"

/* INVPCID types (SDM Vol. 2 INVPCID). */
typedef enum vms_invpcid_type {
    VMS_INVPCID_ADDR = 0,       /* one address in one PCID, globals kept */
    VMS_INVPCID_CONTEXT = 1,    /* every non-global entry of one PCID */
    VMS_INVPCID_ALL_GLOBAL = 2, /* everything, globals included */
    VMS_INVPCID_ALL = 3,        /* everything but globals */
} vms_invpcid_type;

typedef enum vms_tlb_level {
    VMS_TLB_L1I = 0,
    VMS_TLB_L1D = 1,
    VMS_TLB_L2 = 2,
} vms_tlb_level;
#define VMS_TLB_NLEVELS 3

/* Counters of one core, beyond those its TLBs, PWC and walker keep. */
typedef struct vms_core_stats {
    uint64_t accesses;   /* accesses translated (each page piece counts) */
    uint64_t by_kind[3]; /* reads, writes, fetches */
    uint64_t faults_pf, faults_gp, faults_bus;
    uint64_t dirty_rewalks;  /* writes that hit a clean TLB entry and re-walked to set D */
    uint64_t tlb_hit_faults; /* faults raised on TLB-cached rights (entries then dropped) */
    uint64_t invlpg, invpcid, cr3_loads, cr3_noflush, flushes_all;
    uint64_t interrupts;       /* external interrupts delivered (vms_core_interrupt) */
    uint64_t invlpgb;          /* INVLPGBs this core issued */
    uint64_t invlpgb_received; /* broadcast invalidations applied to this core's TLBs */
    uint64_t tlbsync;          /* TLBSYNCs this core executed */
} vms_core_stats;

/* The result of vms_core_access: data moved, or a fault (with CR2/error code). */
typedef struct vms_access_result {
    bool ok;
    vms_fault fault; /* kind VMS_FAULT_NONE when ok */
    uint64_t pa;     /* physical address of the first byte (when ok) */
    size_t done;     /* bytes completed before the fault (string accesses only, below) */
} vms_access_result;

unsigned vms_core_id(const vms_core *c);
const vms_regs *vms_core_regs(const vms_core *c);

/* Privilege level for the accesses that follow: user (CPL 3) or supervisor. */
void vms_core_set_user(vms_core *c, bool user);

/* RFLAGS.AC (SMAP override for supervisor accesses). */
void vms_core_set_ac(vms_core *c, bool ac);

/* PKRU (takes effect immediately: it is not cached in TLBs). */
void vms_core_write_pkru(vms_core *c, uint32_t pkru);

/*
 * MOV to CR3 (SDM §4.10.4.1). Without CR4.PCIDE every non-global TLB entry and all PWC
 * entries are dropped; with PCIDE, bit 63 set means "no flush" (nothing is dropped; the
 * bit is not stored), clear means the new PCID's non-global entries are dropped.
 */
void vms_core_write_cr3(vms_core *c, uint64_t cr3);

/*
 * MOV to CR4. Changing PGE or clearing PCIDE drops every entry (globals too); changing
 * LA57 changes the paging mode and drops everything. Setting PCIDE while CR3[11:0] != 0
 * is refused with VMS_ERR_INVAL (#GP on real hardware).
 */
vms_status vms_core_write_cr4(vms_core *c, uint64_t cr4);

/* MOV to CR0 (WP matters; PG cannot be cleared: VMS_ERR_UNSUPPORTED). */
vms_status vms_core_write_cr0(vms_core *c, uint64_t cr0);

/* WRMSR IA32_EFER (NXE matters). */
void vms_core_write_efer(vms_core *c, uint64_t efer);

/* INVLPG: drop the TLB entries for va (current PCID and globals) and the current PCID's
 * PWC entries. */
void vms_core_invlpg(vms_core *c, uint64_t va);

/* INVPCID of the given type (pcid and va as the type needs). On a core running a vCPU
 * the PCID is the guest's: the entries dropped are the vCPU's (its VPID with that PCID),
 * as in VMX non-root operation. VMS_ERR_INVAL for a bad type or a PCID above 4095. */
vms_status vms_core_invpcid(vms_core *c, vms_invpcid_type type, uint16_t pcid, uint64_t va);

/*
 * INVLPGB (AMD APM Vol. 3): a broadcast invalidation that every core of the machine
 * (the issuer included) applies to its own TLBs and page-walk caches, without an
 * interrupt and without charging the receivers. What it selects:
 *   VA      va and the next `count` pages (4 KiB apart, or 2 MiB with STRIDE_2M)
 *   PCID    only entries tagged pcid (else every PCID)
 *   GLOBAL  global entries too (else globals are kept)
 * Without VA: every entry of pcid (PCID), or every entry (neither). The page-walk
 * caches of the selected PCID (every PCID without PCID) are dropped as well. The
 * operation is posted: its completion is awaited by TLBSYNC on the issuing core.
 * VMS_ERR_INVAL for count >= the machine's invlpgb_max, a count without VA, PCID|GLOBAL
 * without VA, a PCID above 4095 or an unknown flag; VMS_ERR_UNSUPPORTED when the
 * machine has no INVLPGB (invlpgb_max 0) or the core runs a vCPU (a hypervisor does not
 * offer INVLPGB to a guest: KVM leaves it out of the guest's CPUID, so the guest kernel
 * shoots down by IPIs). Costs cost.invlpgb on the issuer.
 */
#define VMS_INVLPGB_VA        1u
#define VMS_INVLPGB_PCID      2u
#define VMS_INVLPGB_GLOBAL    4u
#define VMS_INVLPGB_STRIDE_2M 8u
vms_status vms_core_invlpgb(vms_core *c, unsigned flags, uint64_t va, uint16_t pcid,
                            unsigned count);

/* TLBSYNC: wait until this core's INVLPGBs completed on every core. Charges
 * cost.tlbsync + cost.tlbsync_hop * (hops to the farthest core) when any is pending,
 * nothing otherwise; returns the cycles it waited. */
uint64_t vms_core_tlbsync(vms_core *c);

/*
 * The kernel's operations on this core's MMU, in the words of no architecture (format.h
 * vms_mmu_ops): the core's format maps each to its instructions. On x86-64: boot =
 * MOV CR3 (root) then CR4.PCIDE as asids says; load_root = MOV CR3 with the PCID, bit 63
 * (no flush) unless flush; flush_page = INVLPG; flush_page_asid = INVPCID type 0;
 * flush_asid = INVPCID type 1; flush_all = INVPCID type 2.
 */
vms_status vms_core_mmu_boot(vms_core *c, uint64_t root, bool asids);
void vms_core_mmu_load_root(vms_core *c, uint64_t root, uint32_t asid, bool flush);
void vms_core_mmu_flush_page(vms_core *c, uint64_t va);
void vms_core_mmu_flush_page_asid(vms_core *c, uint32_t asid, uint64_t va);
void vms_core_mmu_flush_asid(vms_core *c, uint32_t asid);
void vms_core_mmu_flush_all(vms_core *c);

/*
 * Broadcast invalidation through the core's format (vms_mmu_ops): has_broadcast says
 * whether this machine has one (x86-64 with INVLPGB, every AArch64 machine; never
 * RISC-V). flush_broadcast drops on every core the non-global entries tagged asid of
 * npages pages from va (npages 0: all of asid's) and returns the instructions issued
 * (INVLPGB on x86-64, TLBI VAE1IS / ASIDE1IS on AArch64; 0 and nothing done without
 * a broadcast); sync waits for their completion everywhere (TLBSYNC, DSB ISH) and
 * returns the cycles waited.
 */
bool vms_core_mmu_has_broadcast(const vms_core *c);
unsigned vms_core_mmu_flush_broadcast(vms_core *c, uint32_t asid, uint64_t va, uint64_t npages);
uint64_t vms_core_mmu_sync(vms_core *c);

/*
 * Translate va for an access of `kind` through the TLBs and, on a miss, the walker.
 * Returns true and fills *x (may be NULL) and *pa on success; on a fault returns false,
 * fills *fault, sets CR2 (for #PF) and drops TLB entries for va. trace (may be NULL)
 * receives the walk when one happens (trace->nsteps is 0 after a TLB hit). Never allocates.
 */
bool vms_core_translate(vms_core *c, uint64_t va, vms_access_kind kind, vms_xlate *x, uint64_t *pa,
                        vms_fault *fault, vms_walk_trace *trace);

/*
 * A memory access of len bytes (len >= 1) at va: every page the range touches is
 * translated first (an access crossing a page boundary is split), then the bytes move
 * through the bus (buf is read for writes, filled for reads and fetches). If any piece
 * faults, nothing moves and the fault of the first failing piece is returned, as an
 * instruction that faults has no effect. An access spanning more than 16 4 KiB pages is a
 * restartable string instruction (REP MOVS): on a fault the pages before the faulting one
 * have moved, r.done says how many bytes, and the caller resumes at va + r.done (buf +
 * r.done, len - r.done) once the fault is resolved, so a long access costs in proportion
 * to its pages, not their square (the rest is an access of its own: once 16 pages or
 * fewer remain, it is one instruction, retried whole). buf may be NULL for an address-only access
 * (trace replay): translation and costs only. len 0 does nothing and succeeds.
 */
vms_access_result vms_core_access(vms_core *c, uint64_t va, vms_access_kind kind, void *buf,
                                  size_t len);

/* Whether an access of len (>= 1) bytes at va is a string access (spans more than 16
 * 4 KiB pages) in the sense of vms_core_access. */
static inline bool vms_access_is_string(uint64_t va, uint64_t len)
{
    return ((va + len - 1) >> 12) - (va >> 12) >= 16;
}

/* vms_ref, one address-only reference of a batch, is in common.h (trace readers fill it). */

/*
 * Run refs[0..n) in order as address-only accesses: exactly what n calls of
 * vms_core_access(c, va, kind, NULL, len) would do (the same translations, counters,
 * cycles, TLB, PWC and A/D state), with the per-call work minimised. Stops at the first
 * reference that faults and returns its index (n when none did); *fault then holds that
 * fault, delivered as vms_core_access delivers it (CR2, TLB entries dropped), and the
 * pieces of that reference before the faulting one have been translated and counted,
 * as vms_core_access does. The caller resolves the fault and resumes at the returned
 * index: from the reference's start, or for a string reference (vms_access_is_string)
 * at the faulting page fault->va, as vms_core_access's r.done says. Never allocates. The
 * trace-replay fast path (docs/REPLAY.md).
 */
size_t vms_core_access_batch(vms_core *c, const vms_ref *refs, size_t n, vms_fault *fault);

/*
 * An external interrupt (a device's MSI) arrives with `vector`: the core counts it and
 * charges cost.interrupt cycles. The core runs no handler: whoever raised it (dev.h) calls
 * the kernel's hook afterwards. Vectors 0-31 are exceptions on x86; devices use 32-255,
 * but any vector is counted.
 */
void vms_core_interrupt(vms_core *c, uint8_t vector);

/* Add n cycles to the core's clock (kernel work: fault handling, copies, …). */
void vms_core_add_cycles(vms_core *c, uint64_t n);
uint64_t vms_core_cycles(const vms_core *c);

/* This core's TLB at a level (NULL when the level is absent), PWC and counters. */
vms_tlb *vms_core_tlb(vms_core *c, vms_tlb_level level);
vms_pwc *vms_core_pwc(vms_core *c);
const vms_core_stats *vms_core_get_stats(const vms_core *c);
const vms_walk_stats *vms_core_walk_stats(const vms_core *c);

/* The machine this core belongs to. */
vms_machine *vms_core_machine(vms_core *c);

#endif
