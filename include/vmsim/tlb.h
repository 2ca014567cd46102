/*
 * vmsim/tlb.h — one modelled TLB: set-associative arrays of translations tagged by context
 * and page size, with a pluggable replacement policy.
 *
 * A TLB is one or more partitions; each holds some page sizes (a bit mask of
 * vms_pgsize) in sets × ways entries, any geometry (a 1536-entry, 12-way STLB is 128
 * sets × 12 ways; sets need not be a power of two). A page size is held by at most one
 * partition. The set of a translation is its virtual page number (at its size) modulo
 * the number of sets. Lookup probes every partition, each at its own sizes.
 *
 * Tags follow SDM Vol. 3A §4.10.2: an entry matches va when the page numbers agree and
 * either the entry's context (vms_ctx: VM and PCID/ASID) equals the current one or the
 * entry is global and of the same VM. A cached translation is used even when the page
 * tables changed since it was filled: stale entries live until invalidated, as on real
 * hardware (§4.10.4).
 *
 * Splintering: when no partition holds a translation's page size, the TLB caches the
 * largest smaller size it holds (the part of the page that contains va), as CPUs do
 * for e.g. 1 GiB pages in an iTLB without 1 GiB entries.
 */
#ifndef VMSIM_TLB_H
#define VMSIM_TLB_H

#include "vmsim/common.h"
#include "vmsim/walk.h"

typedef struct vms_tlb vms_tlb;

#define VMS_TLB_MAX_PARTS   4
#define VMS_TLB_MAX_WAYS    64
#define VMS_TLB_MAX_ENTRIES (UINT32_C(1) << 20)

typedef struct vms_tlb_part_config {
    unsigned sizes;     /* bit (1u << vms_pgsize) per page size held */
    unsigned sets;      /* >= 1 */
    unsigned ways;      /* 1 … VMS_TLB_MAX_WAYS */
    const char *policy; /* replacement policy name (repl.h); NULL means "lru" */
} vms_tlb_part_config;

typedef struct vms_tlb_config {
    unsigned nparts; /* 0 means this TLB level is absent: lookups miss, fills fail */
    vms_tlb_part_config part[VMS_TLB_MAX_PARTS];
} vms_tlb_config;

#define VMS_TLB_SIZE_BIT(s) (1u << (unsigned)(s))
#define VMS_TLB_SIZES_ALL                                                                          \
    (VMS_TLB_SIZE_BIT(VMS_PG_4K) | VMS_TLB_SIZE_BIT(VMS_PG_2M) | VMS_TLB_SIZE_BIT(VMS_PG_1G))

typedef struct vms_tlb_stats {
    uint64_t lookups;
    uint64_t hits;
    uint64_t misses;
    uint64_t hits_by_size[VMS_PG_NSIZES];
    uint64_t fills;
    uint64_t evictions;     /* valid entries replaced by a fill */
    uint64_t invalidations; /* valid entries dropped by invlpg/INVPCID/flushes */
} vms_tlb_stats;

/* One valid entry, as vms_tlb_entry reports it. */
typedef struct vms_tlb_entry_info {
    unsigned part, set, way;
    uint64_t va; /* virtual base of the cached page */
    vms_ctx ctx; /* the context it belongs to (VM << 32 | PCID/ASID) */
    vms_xlate x; /* the cached translation (x.size is the cached size) */
} vms_tlb_entry_info;

/* Validate cfg and create the TLB (VMS_ERR_INVAL names the partition and the problem:
 * zero sets/ways, too many entries, overlapping sizes, unknown policy). */
vms_status vms_tlb_create(const vms_allocator *a, const vms_tlb_config *cfg, uint64_t seed,
                          vms_tlb **out, vms_err *err);
void vms_tlb_destroy(vms_tlb *tlb);

/*
 * Look va up in context ctx. On a hit fills *out, updates the replacement state and returns
 * true. Counts a lookup and a hit or miss. Never allocates.
 */
bool vms_tlb_lookup(vms_tlb *tlb, vms_ctx ctx, uint64_t va, vms_xlate *out);

/*
 * Turn the repeat memo on (the default) or off. The memo answers a lookup of the same
 * 4 KiB page and context as the previous lookup, when that one hit and nothing else touched
 * the TLB since, without probing the arrays: a host-speed shortcut whose results (hits,
 * translations, replacement state, counters) are identical by construction; tests run
 * the same stream both ways and compare every counter.
 */
void vms_tlb_set_memo(vms_tlb *tlb, bool on);

/* Like lookup but changes nothing (no stats, no replacement update): for display/tests. */
bool vms_tlb_probe(const vms_tlb *tlb, vms_ctx ctx, uint64_t va, vms_xlate *out);

/*
 * Cache translation x of va for ctx (an entry with x->global set matches any PCID/ASID
 * of ctx's VM). Replaces an existing entry for the same page and context, else an invalid way, else
 * the policy's victim. Returns false when the TLB holds no size <= x->size.
 */
bool vms_tlb_fill(vms_tlb *tlb, vms_ctx ctx, uint64_t va, const vms_xlate *x);

/* Mark the entry for va (ctx, or global) dirty after the walker set D in memory. */
void vms_tlb_set_dirty(vms_tlb *tlb, vms_ctx ctx, uint64_t va);

/* Drop entries that translate va: those of ctx and, if with_global, global ones of its VM
 * (INVLPG: with_global = true; INVPCID type 0: false). Every page size is checked. */
void vms_tlb_flush_va(vms_tlb *tlb, vms_ctx ctx, uint64_t va, bool with_global);

/* Drop the entries that translate va in every PCID/ASID of the host, global ones too (RISC-V
 * sfence.vma with an address and rs2 = x0). */
void vms_tlb_flush_va_any(vms_tlb *tlb, uint64_t va);

/* Drop the entries that translate va in every address space of VM vm, global ones too
 * (INVVPID individual-address). */
void vms_tlb_flush_va_vm(vms_tlb *tlb, uint32_t vm, uint64_t va);

/* Drop every entry of VM vm (context bits 63:32), global ones unless keep_global; vm
 * VMS_TLB_ALL_VMS: of every VM but the host (0). INVVPID/INVEPT, and a guest's own
 * all-context flushes, which never reach another VM's entries. */
#define VMS_TLB_ALL_VMS UINT32_MAX
void vms_tlb_flush_vm(vms_tlb *tlb, uint32_t vm, bool keep_global);

/* Drop every non-global entry of ctx (CR3 load, INVPCID type 1). */
void vms_tlb_flush_pcid(vms_tlb *tlb, vms_ctx ctx);

/* Drop every entry; keep global ones when keep_global (INVPCID types 2/3, CR4.PGE toggle). */
void vms_tlb_flush_all(vms_tlb *tlb, bool keep_global);

/* Total entries (capacity) and valid entries. */
unsigned vms_tlb_capacity(const vms_tlb *tlb);
unsigned vms_tlb_count(const vms_tlb *tlb);

/* The i-th valid entry in (part, set, way) order, i < vms_tlb_count; false past the end. */
bool vms_tlb_entry(const vms_tlb *tlb, unsigned i, vms_tlb_entry_info *out);

/* Check internal invariants (no duplicate tags in a set, sizes in their partitions,
 * valid count matches). Returns true when they hold; tests call it after every step. */
bool vms_tlb_check(const vms_tlb *tlb);

const vms_tlb_stats *vms_tlb_get_stats(const vms_tlb *tlb);

/* Zero the counters (not the contents). */
void vms_tlb_reset_stats(vms_tlb *tlb);

#endif
