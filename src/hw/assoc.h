/*
 * assoc.h — the set-associative array behind every modelled translation cache (the
 * TLB partitions and the page-walk-cache levels): sets × ways entries of two words,
 * tagged by a key, a PCID and a global flag, with a replacement policy per array.
 * Set/way/policy/invalidation logic exists only here; the owners decide what a key
 * and the data word mean.
 *
 * Invariants (vmsi_assoc_check): `count` equals the number of valid entries; every
 * valid entry sits in the set its key indexes; no two valid entries of one set
 * conflict (same key and same PCID, or same key and either one global), so a lookup
 * can match at most one way.
 *
 * The lookup path (vmsi_assoc_set, vmsi_assoc_find, vmsi_assoc_touch) is inline and
 * never allocates.
 */
#ifndef VMSIM_HW_ASSOC_H
#define VMSIM_HW_ASSOC_H

#include <assert.h>

#include "vmsim/repl.h"

/*
 * The tag word (the data word's layout belongs to the owner):
 *
 *   63                                          14 13                2    1    0
 *  +----------------------------------------------+-------------------+----+----+
 *  |                 key (50 bits)                |    PCID (12 bits) |  G |  V |
 *  +----------------------------------------------+-------------------+----+----+
 *
 * V: the entry is valid. G: global, matches every PCID (SDM Vol. 3A §4.10.2.4).
 * The set index is key >> index_shift (an owner may keep non-index bits, such as a
 * page size, at the bottom of its key).
 */
#define VMSI_ASSOC_V          (UINT64_C(1) << 0)
#define VMSI_ASSOC_G          (UINT64_C(1) << 1)
#define VMSI_ASSOC_PCID_SHIFT 2
#define VMSI_ASSOC_PCID_MASK  (UINT64_C(0xFFF) << VMSI_ASSOC_PCID_SHIFT)
#define VMSI_ASSOC_KEY_SHIFT  14
#define VMSI_ASSOC_KEY_BITS   50

typedef struct vmsi_assoc_entry {
    uint64_t tag;  /* see the field map above */
    uint64_t data; /* owner-defined payload */
} vmsi_assoc_entry;
_Static_assert(sizeof(vmsi_assoc_entry) == 16, "an assoc entry is two words");

typedef struct vmsi_assoc {
    vmsi_assoc_entry *e;           /* sets * ways entries, set-major */
    uint8_t *state;                /* sets * state_bytes of policy state (NULL if 0) */
    const vms_repl_policy *policy; /* static, from the registry */
    vms_rng *rng;                  /* borrowed from the owner, for "random" */
    unsigned sets, ways;
    uint64_t set_mask; /* sets - 1 when sets is a power of two */
    bool pow2;         /* index by mask rather than modulo */
    unsigned index_shift;
    size_t state_bytes; /* per set */
    unsigned count;     /* valid entries */
} vmsi_assoc;

/* Which entries a scan drops: called with each valid entry's tag and data. */
typedef bool (*vmsi_assoc_pred)(uint64_t tag, uint64_t data, const void *ctx);

/* The valid tag for (key, pcid, global). key < 2^50 and pcid < 4096 (asserted). */
static inline uint64_t vmsi_assoc_tag(uint64_t key, uint16_t pcid, bool global)
{
    assert(key < (UINT64_C(1) << VMSI_ASSOC_KEY_BITS));
    assert(pcid <= 0xFFF);
    return key << VMSI_ASSOC_KEY_SHIFT | (uint64_t)pcid << VMSI_ASSOC_PCID_SHIFT |
           (global ? VMSI_ASSOC_G : 0) | VMSI_ASSOC_V;
}

static inline uint64_t vmsi_assoc_key(uint64_t tag)
{
    return tag >> VMSI_ASSOC_KEY_SHIFT;
}

static inline uint16_t vmsi_assoc_pcid(uint64_t tag)
{
    return (uint16_t)((tag & VMSI_ASSOC_PCID_MASK) >> VMSI_ASSOC_PCID_SHIFT);
}

/* The set that key indexes: by mask when sets is a power of two, else modulo. */
static inline unsigned vmsi_assoc_set(const vmsi_assoc *a, uint64_t key)
{
    uint64_t index = key >> a->index_shift;
    return (unsigned)(a->pow2 ? index & a->set_mask : index % a->sets);
}

/* The entry at (set, way). */
static inline vmsi_assoc_entry *vmsi_assoc_at(const vmsi_assoc *a, unsigned set, unsigned way)
{
    assert(set < a->sets && way < a->ways);
    return &a->e[(size_t)set * a->ways + way];
}

/*
 * Does valid-or-not entry tag `tag` answer a lookup of (key, pcid)? It must be valid,
 * hold the key, and carry the PCID or be global. One XOR compares all three fields.
 */
static inline bool vmsi_assoc_hits(uint64_t tag, uint64_t key, uint16_t pcid)
{
    uint64_t d = tag ^ vmsi_assoc_tag(key, pcid, false);
    return (d & ~(VMSI_ASSOC_PCID_MASK | VMSI_ASSOC_G)) == 0 &&
           ((d & VMSI_ASSOC_PCID_MASK) == 0 || (tag & VMSI_ASSOC_G));
}

/* The way of set `set` that answers (key, pcid), or -1. Changes nothing. */
static inline int vmsi_assoc_find(const vmsi_assoc *a, unsigned set, uint64_t key, uint16_t pcid)
{
    const vmsi_assoc_entry *row = vmsi_assoc_at(a, set, 0);
    for (unsigned w = 0; w < a->ways; w++)
        if (vmsi_assoc_hits(row[w].tag, key, pcid))
            return (int)w;
    return -1;
}

/* Tell the policy that (set, way) was just hit. */
static inline void vmsi_assoc_touch(vmsi_assoc *a, unsigned set, unsigned way)
{
    a->policy->touch(a->state + (size_t)set * a->state_bytes, a->ways, way, true);
}

/*
 * Allocate a sets × ways array using `policy` (all entries invalid, every set's policy
 * state reset). rng is borrowed and must outlive the array. Returns VMS_ERR_NOMEM
 * (with *a left empty, safe to fini) when an allocation fails. Geometry is the
 * caller's to validate: sets >= 1, 1 <= ways <= VMS_REPL_MAX_WAYS.
 */
vms_status vmsi_assoc_init(vmsi_assoc *a, const vms_allocator *alloc, unsigned sets, unsigned ways,
                           unsigned index_shift, const vms_repl_policy *policy, vms_rng *rng);

/* Free what init allocated; a zeroed or failed array is fine. */
void vmsi_assoc_fini(vmsi_assoc *a, const vms_allocator *alloc);

/*
 * Insert (tag, data) in the set tag's key indexes. An entry it conflicts with (same
 * key, and same PCID or either global) is overwritten in place and reported to the
 * policy as a hit (an update is not a new arrival); further conflicting entries are
 * dropped. Otherwise the lowest invalid way is filled, else the policy's victim.
 * Sets *evicted when a valid, non-conflicting entry was replaced. Returns the way.
 */
unsigned vmsi_assoc_fill(vmsi_assoc *a, uint64_t tag, uint64_t data, bool *evicted);

/*
 * Drop every valid entry for which pred(tag, data, ctx) holds, in the `nsets` sets
 * first_set, first_set+1, … (mod sets); nsets >= sets scans all. Returns how many.
 */
unsigned vmsi_assoc_drop_where(vmsi_assoc *a, unsigned first_set, unsigned nsets,
                               vmsi_assoc_pred pred, const void *ctx);

/* The assoc invariants above; true when they hold. */
bool vmsi_assoc_check(const vmsi_assoc *a);

#endif
