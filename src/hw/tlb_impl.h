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

#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "hw/assoc.h"
#include "vmsim/curve.h"
#include "vmsim/tlb.h"

#define VA_BITS 57
#define VA_MASK ((UINT64_C(1) << VA_BITS) - 1)

_Static_assert(VA_BITS - 12 + 2 <= VMSI_ASSOC_KEY_BITS, "a 4K key fits the tag");

/* Memo slots per TLB (a power of two). */
#define VMSI_TLB_MEMO 16

/* memo_flags: the slot is valid; its way had the latest touch of its set (fresh). */
#define VMSI_MEMO_VALID 0x80u
#define VMSI_MEMO_FRESH 0x40u

/* A memo_key that no 4 KiB page number equals (they are below 2^52). */
#define VMSI_MEMO_NOKEY UINT64_MAX

/* One memo slot (struct vms_tlb). */
typedef struct vmsi_tlb_memo {
    uint64_t vpn; /* va >> 12 of the page looked up */
    vms_ctx ctx;
    vms_xlate x;       /* what the lookup returned */
    uint8_t part, way; /* where the entry sits */
    unsigned set;
} vmsi_tlb_memo;

struct vms_tlb {
    vms_allocator alloc;
    unsigned nparts;
    int8_t part_of[VMS_PG_NSIZES];   /* partition holding size s, or -1 */
    int8_t cached_as[VMS_PG_NSIZES]; /* size a translation of size s is cached as, or -1 */
    unsigned sizes[VMS_TLB_MAX_PARTS];
    vmsi_assoc part[VMS_TLB_MAX_PARTS];
    vms_rng rng; /* drives "random"; the partitions borrow it */
    vms_tlb_stats stats;
    /* Where fills and flushes are reported (tap.h): a core's TLB level, or NULL. */
    const struct vmsi_unit_tap *tap;
    /* Valid entries by cached size (the key's size): a lookup does not probe a size that
     * has none, even in a partition that holds other sizes (the 4K+2M STLB). */
    unsigned nsize[VMS_PG_NSIZES];
    /*
     * The repeat memo, a host-speed shortcut with exactly the modelled result: the last
     * hits, one slot per 4 KiB page number mod VMSI_TLB_MEMO (direct-mapped), each with
     * the entry a probe found for that page and context and where it sits. A slot stays
     * valid while nothing changes this TLB's entries: a fill (whose touch also moves the
     * policy), set_dirty and every flush clear them all (vmsi_tlb_memo_clear); a miss
     * changes nothing and clears nothing. Looking a slot's page up again finds the same
     * entry, so a memo hit counts the hit and touches its way as the probe would — except
     * when the slot is fresh: its way had the latest touch of its set, and a touch of the
     * way touched last changes no policy's state (repl.h: touch is idempotent; a policy's
     * state is per set). Every touch through the memo or the probe makes its slot fresh
     * and the other slots of that set stale (vmsi_tlb_memo_fresh); every other touch is a
     * fill, which clears the memo.
     */
    uint8_t memo_on; /* VMSI_MEMO_VALID when the memo is in use (memo_want, no curve), else 0 */
    bool memo_want;  /* vms_tlb_set_memo's setting */
    /* Per slot: VMSI_MEMO_VALID, VMSI_MEMO_FRESH. One byte a slot, side by side. */
    uint8_t memo_flags[VMSI_TLB_MEMO];
    /* Per slot: a byte of where its set is (vmsi_tlb_memo_sid: the set mod 256 in
     * partition 0), side by side for the same-set test (valid only while the slot is). Two sets may
     * share a byte: the test then finds a slot of another set too, which it only makes stale or
     * clears — a touch or a probe more, never another result. */
    uint8_t memo_sid[VMSI_TLB_MEMO];
    vmsi_tlb_memo memo[VMSI_TLB_MEMO];
    /*
     * The host index of the replay batch (mmu.c), QEMU's and TinyEMU's softmmu TLB in
     * front of the modelled one: memo_key[kind][slot] is the slot's vpn while the slot is
     * fresh and its entry is known to allow kind (vms_access_kind) as a plain hit — the
     * rights check passed under the registers of the vms_core_access_batch in progress,
     * and for a write the entry is dirty — else VMSI_MEMO_NOKEY. So a plain hit is one
     * compare (and the test that the reference stays in the page): no touch, no check, no
     * D walk, one count. The batch clears the keys when it starts (the registers cannot
     * change while it runs) and learns them after a translation; a slot made or gone
     * stale, and every memo clear, clear its keys.
     */
    uint64_t memo_key[3][VMSI_TLB_MEMO];
    /* The slots some of whose keys may be set (bit i: slot i): clears reset only those. */
    uint32_t memo_keyed;
    vms_curve *curve; /* curves observing this TLB (curve.h), or NULL */
    /*
     * The last probe's miss: no entry answers a lookup of (miss_ctx, the 4 KiB page
     * miss_vpn) at any size, while miss_vpn != VMSI_TLB_NO_MISS. Set by a probe that
     * misses, cleared by every fill (the only operation that adds entries: flushes only
     * remove some, set_dirty changes a data word). A fill of that page that is not
     * global then has nothing to supersede, and a flush_va of it in that context drops
     * nothing unless an entry may be a splinter (tlb.c: fill_fresh, flush_va).
     */
    uint64_t miss_vpn;
    vms_ctx miss_ctx;
    bool splintered; /* some entry may be cached smaller than its page (sticky; recount) */
};

#define VMSI_TLB_NO_MISS UINT64_MAX

_Static_assert(VMSI_TLB_MEMO <= 32, "memo_keyed");

/* Clear every key of the slots in mask (a subset of memo_keyed). */
static inline void vmsi_tlb_memo_unkey_mask(vms_tlb *tlb, uint32_t mask)
{
    tlb->memo_keyed &= ~mask;
    for (; mask; mask &= mask - 1) {
        unsigned i = (unsigned)__builtin_ctz(mask);
        for (unsigned k = 0; k < 3; k++)
            tlb->memo_key[k][i] = VMSI_MEMO_NOKEY;
    }
}

/* Clear every key of the batch (mmu.c: when a batch starts; a memo clear). */
static inline void vmsi_tlb_memo_unkey_all(vms_tlb *tlb)
{
    if (tlb->memo_keyed)
        vmsi_tlb_memo_unkey_mask(tlb, tlb->memo_keyed);
}

/* Invalidate the repeat memo (every operation that changes the TLB's entries, or its
 * policy state other than by a memo hit, calls this) and the batch's keys. */
static inline void vmsi_tlb_memo_clear(vms_tlb *tlb)
{
    memset(tlb->memo_flags, 0, sizeof tlb->memo_flags);
    vmsi_tlb_memo_unkey_all(tlb);
}

/* Clear slot i's keys (it is made again, or no longer fresh). */
static inline void vmsi_tlb_memo_unkey(vms_tlb *tlb, unsigned i)
{
    if (tlb->memo_keyed & (1u << i))
        vmsi_tlb_memo_unkey_mask(tlb, 1u << i);
}

/* The byte memo_sid keeps for set `set` of partition `part`. */
static inline uint8_t vmsi_tlb_memo_sid(unsigned part, unsigned set)
{
    return (uint8_t)(set ^ part * 0x47u);
}

/* The slots whose memo_sid is sid, as a mask (bit j: slot j), valid or not: every slot of
 * that set, and maybe others (memo_sid). One SSE2 compare of 16 slots where the host has
 * SSE2 (every x86-64), else a loop. */
static inline unsigned vmsi_tlb_memo_same_set(const vms_tlb *tlb, uint8_t sid)
{
#if defined(__SSE2__)
    _Static_assert(VMSI_TLB_MEMO % 16 == 0 && VMSI_TLB_MEMO <= 32, "vectors of 16 slot ids");
    __m128i k = _mm_set1_epi8((char)sid);
    unsigned m = 0;
    for (unsigned j = 0; j < VMSI_TLB_MEMO; j += 16)
        m |= (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(
                 _mm_loadu_si128((const __m128i *)(const void *)&tlb->memo_sid[j]), k))
             << j;
    return m;
#else
    unsigned m = 0;
    for (unsigned j = 0; j < VMSI_TLB_MEMO; j++)
        m |= (unsigned)(tlb->memo_sid[j] == sid) << j;
    return m;
#endif
}

/* The valid slots, as a mask (bit j: slot j): VMSI_MEMO_VALID is each flag byte's top
 * bit, which one SSE2 instruction gathers for 16 slots. */
static inline unsigned vmsi_tlb_memo_valid(const vms_tlb *tlb)
{
#if defined(__SSE2__)
    _Static_assert(VMSI_MEMO_VALID == 0x80 && VMSI_TLB_MEMO % 16 == 0, "top bits of 16 bytes");
    unsigned m = 0;
    for (unsigned j = 0; j < VMSI_TLB_MEMO; j += 16)
        m |= (unsigned)_mm_movemask_epi8(
                 _mm_loadu_si128((const __m128i *)(const void *)&tlb->memo_flags[j]))
             << j;
    return m;
#else
    unsigned m = 0;
    for (unsigned j = 0; j < VMSI_TLB_MEMO; j++)
        m |= (unsigned)((tlb->memo_flags[j] & VMSI_MEMO_VALID) != 0) << j;
    return m;
#endif
}

/* Slot i's way was just touched (a memo hit or the probe that made it): i is fresh, and
 * every other slot of the same set is stale. */
static inline void vmsi_tlb_memo_fresh(vms_tlb *tlb, unsigned i)
{
    /* (an invalid slot is stale already: marking it again is harmless) */
    unsigned m = vmsi_tlb_memo_same_set(tlb, tlb->memo_sid[i]) & ~(1u << i);
    for (; m; m &= m - 1) {
        unsigned j = (unsigned)__builtin_ctz(m);
        tlb->memo_flags[j] &= (uint8_t)~VMSI_MEMO_FRESH;
        vmsi_tlb_memo_unkey(tlb, j);
    }
    tlb->memo_flags[i] |= VMSI_MEMO_FRESH;
}

/* Slot i was just made (tlb.c: the probe's hit, which touched its way). */
static inline void vmsi_tlb_memo_made(vms_tlb *tlb, unsigned i)
{
    tlb->memo_sid[i] = vmsi_tlb_memo_sid(tlb->memo[i].part, tlb->memo[i].set);
    tlb->memo_flags[i] = VMSI_MEMO_VALID;
    vmsi_tlb_memo_unkey(tlb, i);
    vmsi_tlb_memo_fresh(tlb, i);
}

/* After the memo setting or the curves attached (curve.c) changed: the memo is in use
 * as such only when wanted and no curve observes the TLB; with a curve it keeps only the
 * latest hit, whose repeats are at stack depth 1 (tlb.c: hit_nomemo). Clears it. */
static inline void vmsi_tlb_curve_changed(vms_tlb *tlb)
{
    tlb->memo_on = tlb->memo_want && !tlb->curve ? VMSI_MEMO_VALID : 0;
    vmsi_tlb_memo_clear(tlb);
}

/*
 * The lookup after the memo missed: probe the arrays (counts the hit or the miss,
 * updates the replacement state and, on a hit, the page's memo slot). In tlb.c.
 */
bool vmsi_tlb_lookup_probe(vms_tlb *tlb, vms_ctx ctx, uint64_t va, vms_xlate *out);

/* The flag bits of a TLB entry's data word (tlb.c), in the x86-64 PTE's positions: NR 0
 * (RISC-V execute-only), RW 1, US 2, PWT 3, PCD 4, D 6, the protection key 62:59, XD 63. */
#define VMSI_TLB_ATTRS UINT64_C(0xF80000000000005F)

/*
 * vms_tlb_fill of translation x into l2 and then l1 (either may be NULL), cached global
 * when `global`, with attrs the data word's flag bits already built (VMSI_TLB_ATTRS: the
 * x86-64 walker folds them from the entries, vmsi_x86_walk_attrs; the debug build checks
 * them against x): the walk's two fills in one call, with the same results as two
 * vms_tlb_fill calls (a fresh fill of a bit-PLRU set reads its state once:
 * vmsi_assoc_fill_fresh_plru). Only with no observer: the TLBs' tap is their machine's,
 * which the caller has found off (nothing to report).
 */
void vmsi_tlb_fill2_attrs(vms_tlb *l2, vms_tlb *l1, vms_ctx ctx, uint64_t va, const vms_xlate *x,
                          bool global, uint64_t attrs);

/* The memo slot index of va's 4 KiB page. */
static inline unsigned vmsi_tlb_memo_index(uint64_t va)
{
    return (unsigned)(va >> VMS_PAGE_SHIFT) & (VMSI_TLB_MEMO - 1);
}

/*
 * The memo's part of a fill of an entry of cached size 4 KiB (small) or larger, of key
 * `key` into partition `part`, for va's page. The fill changes that set's ways and policy state
 * only, so it clears the slots of that set (with their keys) and va's own slot, which the
 * new entry may now answer at a smaller size than the slot's entry; an entry larger than
 * 4 KiB may answer any slot's page first, and clears them all. The slots of other sets
 * keep their entries, ways and freshness (a policy's state is per set: repl.h).
 */
static inline __attribute__((always_inline)) void
vmsi_tlb_memo_clear_fill(vms_tlb *tlb, unsigned part, uint64_t key, uint64_t va, bool small)
{
    if (!small) {
        vmsi_tlb_memo_clear(tlb);
        return;
    }
    unsigned valid = vmsi_tlb_memo_valid(tlb); /* (an invalid slot has no keys) */
    if (!valid)
        return;
    uint8_t sid = vmsi_tlb_memo_sid(part, vmsi_assoc_set(&tlb->part[part], key));
    unsigned m = (vmsi_tlb_memo_same_set(tlb, sid) | 1u << vmsi_tlb_memo_index(va)) & valid;
    if (m == valid) {
        vmsi_tlb_memo_clear(tlb);
        return;
    }
    unsigned keyed = m & tlb->memo_keyed;
    for (; m; m &= m - 1)
        tlb->memo_flags[__builtin_ctz(m)] = 0;
    if (keyed)
        vmsi_tlb_memo_unkey_mask(tlb, keyed);
}

/* The memo slot of va's 4 KiB page. */
static inline vmsi_tlb_memo *vmsi_tlb_memo_of(vms_tlb *tlb, uint64_t va)
{
    return &tlb->memo[vmsi_tlb_memo_index(va)];
}

/* A memo hit on va's slot m: touch its way unless the slot is fresh. */
static inline void vmsi_tlb_memo_touch(vms_tlb *tlb, const vmsi_tlb_memo *m, uint64_t va)
{
    unsigned i = vmsi_tlb_memo_index(va);
    if (!(tlb->memo_flags[i] & VMSI_MEMO_FRESH)) {
        vmsi_assoc_touch(&tlb->part[m->part], m->set, m->way);
        vmsi_tlb_memo_fresh(tlb, i);
    }
}

/* vms_tlb_lookup (tlb.h), inline: the memo answers a repeat of a recent hit's 4 KiB page
 * and context; anything else probes the arrays. */
static inline __attribute__((always_inline)) bool vmsi_tlb_lookup(vms_tlb *tlb, vms_ctx ctx,
                                                                  uint64_t va, vms_xlate *out)
{
    tlb->stats.lookups++;
    vmsi_tlb_memo *m = vmsi_tlb_memo_of(tlb, va);
    if ((tlb->memo_flags[vmsi_tlb_memo_index(va)] & VMSI_MEMO_VALID) &&
        va >> VMS_PAGE_SHIFT == m->vpn && ctx == m->ctx) {
        vmsi_tlb_memo_touch(tlb, m, va);
        *out = m->x;
        tlb->stats.hits++;
        tlb->stats.hits_by_size[out->size]++;
        return true;
    }
    return vmsi_tlb_lookup_probe(tlb, ctx, va, out);
}

#endif
