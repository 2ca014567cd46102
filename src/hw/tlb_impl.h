/*
 * tlb_impl.h — the insides of a modelled TLB (tlb.c), shared with the MMU (mmu.c) so
 * that the lookup's first step, the repeat memo, inlines into the translation path.
 * Nothing outside src/hw uses it.
 *
 * The memo is part of the lookup, not a second TLB: vmsi_tlb_lookup is the only lookup
 * (vms_tlb_lookup calls it), so every caller — the reference-by-reference path and the
 * replay batch alike — gets the same results and counters by construction.
 */
#ifndef VMSIM_TLB_IMPL_H
#define VMSIM_TLB_IMPL_H

#include "hw/assoc.h"
#include "vmsim/tlb.h"

#define VA_BITS 57
#define VA_MASK ((UINT64_C(1) << VA_BITS) - 1)

_Static_assert(VA_BITS - 12 + 2 <= VMSI_ASSOC_KEY_BITS, "a 4K key fits the tag");

struct vms_tlb {
    vms_allocator alloc;
    unsigned nparts;
    int8_t part_of[VMS_PG_NSIZES];   /* partition holding size s, or -1 */
    int8_t cached_as[VMS_PG_NSIZES]; /* size a translation of size s is cached as, or -1 */
    unsigned sizes[VMS_TLB_MAX_PARTS];
    vmsi_assoc part[VMS_TLB_MAX_PARTS];
    vms_rng rng; /* drives "random"; the partitions borrow it */
    vms_tlb_stats stats;
    /* Valid entries by cached size (the key's size): a lookup does not probe a size that
     * has none, even in a partition that holds other sizes (the 4K+2M STLB). */
    unsigned nsize[VMS_PG_NSIZES];
    /*
     * The repeat memo, a host-speed shortcut with exactly the modelled result: the 4 KiB
     * page and PCID of the last lookup, when it hit and nothing has touched this TLB
     * since. Looking the same page up again would find the same entry (contents are
     * unchanged) and touch the way that was touched last, which changes no policy's
     * state (repl.h: touch is idempotent), so only the counters move. Every other
     * operation — a lookup of another page, a miss, a fill, set_dirty, any flush —
     * clears it.
     */
    bool memo_on;
    bool memo_valid;
    /*
     * The kinds (bit 1 << vms_access_kind) the memo's entry is known to allow as a plain
     * hit — the rights check passed and, for a write, the entry is dirty — under the
     * registers of the vms_core_access_batch in progress: the batch clears it when it
     * starts (the registers cannot change while it runs), a new memo starts it empty,
     * and every memo invalidation clears it (vmsi_tlb_memo_clear). The batch answers a
     * reference of an allowed kind within the memo's 4 KiB page with a compare and a
     * count (mmu.c).
     */
    uint8_t memo_allow;
    vms_ctx memo_ctx;
    uint64_t memo_vpn;
    vms_xlate memo_x;
};

/* Invalidate the repeat memo (every operation that changes the TLB, or its policy
 * state other than the memo's own repeat, calls this). */
static inline void vmsi_tlb_memo_clear(vms_tlb *tlb)
{
    tlb->memo_valid = false;
    tlb->memo_allow = 0;
}

/*
 * The lookup after the memo missed: probe the arrays (counts the hit or the miss,
 * updates the replacement state and the memo). In tlb.c.
 */
bool vmsi_tlb_lookup_probe(vms_tlb *tlb, vms_ctx ctx, uint64_t va, vms_xlate *out);

/* vms_tlb_lookup (tlb.h), inline: the memo answers a repeat of the last hit's 4 KiB page
 * and context; anything else probes the arrays. */
static inline bool vmsi_tlb_lookup(vms_tlb *tlb, vms_ctx ctx, uint64_t va, vms_xlate *out)
{
    tlb->stats.lookups++;
    if (tlb->memo_valid && va >> VMS_PAGE_SHIFT == tlb->memo_vpn && ctx == tlb->memo_ctx) {
        *out = tlb->memo_x;
        tlb->stats.hits++;
        tlb->stats.hits_by_size[out->size]++;
        return true;
    }
    return vmsi_tlb_lookup_probe(tlb, ctx, va, out);
}

#endif
