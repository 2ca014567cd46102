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
    vms_ctx memo_ctx;
    uint64_t memo_vpn;
    vms_xlate memo_x;
};

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
