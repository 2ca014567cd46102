/*
 * assoc.h — the set-associative array behind every modelled translation cache (the
 * TLB partitions and the page-walk-cache levels): sets × ways entries of three words,
 * tagged by a key, a context and a global flag, with a replacement policy per array.
 * Set/way/policy/invalidation logic exists only here; the owners decide what a key
 * and the data word mean.
 *
 * Invariants (vmsi_assoc_check): `count` equals the number of valid entries; every
 * valid entry sits in the set its key indexes; no two valid entries of one set
 * conflict (same key and same context, or same key, the same VM and either one
 * global), so a lookup can match at most one way.
 *
 * The lookup path (vmsi_assoc_set, vmsi_assoc_find, vmsi_assoc_touch) is inline and
 * never allocates.
 */
#ifndef VMSIM_HW_ASSOC_H
#define VMSIM_HW_ASSOC_H

#include <assert.h>

#include "hw/repl_impl.h"
#include "vmsim/repl.h"

/*
 * The tag word (the data word's layout belongs to the owner):
 *
 *   63                                                                  2    1    0
 *  +----------------------------------------------------------------------+----+----+
 *  |                            key (62 bits)                             |  G |  V |
 *  +----------------------------------------------------------------------+----+----+
 *
 * V: the entry is valid. G: global. The set index is key >> index_shift (an owner may
 * keep non-index bits, such as a page size, at the bottom of its key).
 *
 * The context word says whose translation it is (vmsim/common.h, vms_ctx): the VM in
 * bits 63:32 (VPID, VMID; 0 for the host) and the address space inside it in bits 31:0
 * (PCID, ASID, an IOMMU domain, plus any flag bits a format needs). A lookup for
 * context c matches an entry of the same context, or a global entry of the same VM:
 * global translations are shared by a VM's address spaces, never across VMs (SDM
 * Vol. 3A §4.10.2.4 for G, §28.3.1 for translations cached per VPID).
 */
#define VMSI_ASSOC_V         (UINT64_C(1) << 0)
#define VMSI_ASSOC_G         (UINT64_C(1) << 1)
#define VMSI_ASSOC_KEY_SHIFT 2
#define VMSI_ASSOC_KEY_BITS  62

typedef struct vmsi_assoc_entry {
    uint64_t tag;  /* see the field map above */
    uint64_t data; /* owner-defined payload */
    uint64_t ctx;  /* the context (vms_ctx) the entry belongs to */
} vmsi_assoc_entry;
_Static_assert(sizeof(vmsi_assoc_entry) == 24, "an assoc entry is three words");

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
    uint8_t kind;       /* how the policy is dispatched (VMSI_ASSOC_*) */
} vmsi_assoc;

/*
 * How touches and victims reach the policy: through its function pointers (CALL), or
 * inline on the same state bytes — bit-PLRU up to 16 ways (PLRU16, repl_plru.c), exact
 * LRU and FIFO up to 8 ways (LRU8, FIFO8: the order matrix of repl_impl.h), random
 * (NOSTATE: touches do nothing; its victim is still a call, once per eviction). The
 * inline forms are the policies' own code or the same bits, so the results are equal.
 */
enum { VMSI_ASSOC_CALL, VMSI_ASSOC_PLRU16, VMSI_ASSOC_LRU8, VMSI_ASSOC_FIFO8, VMSI_ASSOC_NOSTATE };

extern const vms_repl_policy vmsi_repl_plru, vmsi_repl_lru, vmsi_repl_fifo, vmsi_repl_random;

/* The MRU bits of a plru16 set (1 or 2 state bytes, little-endian). */
static inline unsigned vmsi_assoc_plru_get(const vmsi_assoc *a, const uint8_t *s)
{
    return s[0] | (a->state_bytes > 1 ? (unsigned)s[1] << 8 : 0u);
}

static inline void vmsi_assoc_plru_put(const vmsi_assoc *a, uint8_t *s, unsigned x)
{
    s[0] = (uint8_t)x;
    if (a->state_bytes > 1)
        s[1] = (uint8_t)(x >> 8);
}

/* plru_touch for plru16: set the way's bit; when every bit would be set, only it. */
static inline void vmsi_assoc_plru_touch(const vmsi_assoc *a, uint8_t *s, unsigned way)
{
    unsigned x = vmsi_assoc_plru_get(a, s) | 1u << way;
    vmsi_assoc_plru_put(a, s, x == (1u << a->ways) - 1 ? 1u << way : x);
}

/* plru_victim for plru16: the lowest way whose bit is clear (way 0 of a 1-way set). */
static inline unsigned vmsi_assoc_plru_victim(const vmsi_assoc *a, const uint8_t *s)
{
    unsigned free = ~vmsi_assoc_plru_get(a, s) & ((1u << a->ways) - 1);
    return free ? (unsigned)__builtin_ctz(free) : 0;
}

/* Which entries a scan drops: called with each valid entry. */
typedef bool (*vmsi_assoc_pred)(const vmsi_assoc_entry *e, const void *arg);

/* The valid tag for (key, global). key < 2^62 (asserted). */
static inline uint64_t vmsi_assoc_tag(uint64_t key, bool global)
{
    assert(key < (UINT64_C(1) << VMSI_ASSOC_KEY_BITS));
    return key << VMSI_ASSOC_KEY_SHIFT | (global ? VMSI_ASSOC_G : 0) | VMSI_ASSOC_V;
}

static inline uint64_t vmsi_assoc_key(uint64_t tag)
{
    return tag >> VMSI_ASSOC_KEY_SHIFT;
}

/* Do contexts a and b belong to the same VM? */
static inline bool vmsi_ctx_same_vm(uint64_t a, uint64_t b)
{
    return ((a ^ b) >> 32) == 0;
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
 * Does entry e (valid or not) answer a lookup of `want` (vmsi_assoc_tag(key, false))
 * in context ctx? It must be valid and hold the key, and carry the context or be a
 * global entry of the same VM.
 */
static inline bool vmsi_assoc_hits(const vmsi_assoc_entry *e, uint64_t want, uint64_t ctx)
{
    uint64_t d = e->ctx ^ ctx;
    return ((e->tag ^ want) & ~VMSI_ASSOC_G) == 0 &&
           (d == 0 || ((e->tag & VMSI_ASSOC_G) && (d >> 32) == 0));
}

/* The way of set `set` that answers (key, ctx), or -1. Changes nothing. (vmsi_assoc_hits
 * with its tag test as one OR and compare: ((t ^ want) & ~G) == 0 is (t | G) == (want | G);
 * the context rule only for a way holding the key.) */
static inline int vmsi_assoc_find(const vmsi_assoc *a, unsigned set, uint64_t key, uint64_t ctx)
{
    const vmsi_assoc_entry *row = vmsi_assoc_at(a, set, 0);
    uint64_t wantg = vmsi_assoc_tag(key, false) | VMSI_ASSOC_G;
    for (unsigned w = 0; w < a->ways; w++)
        if ((row[w].tag | VMSI_ASSOC_G) == wantg) {
            uint64_t d = row[w].ctx ^ ctx;
            if (d == 0 || ((row[w].tag & VMSI_ASSOC_G) && (d >> 32) == 0))
                return (int)w;
        }
    return -1;
}

/* Tell the policy that (set, way) was just hit (hit) or filled (!hit). */
static inline __attribute__((always_inline)) void vmsi_assoc_touch_as(vmsi_assoc *a, unsigned set,
                                                                      unsigned way, bool hit)
{
    uint8_t *s = a->state + (size_t)set * a->state_bytes;
    switch (a->kind) {
    case VMSI_ASSOC_PLRU16:
        vmsi_assoc_plru_touch(a, s, way);
        break;
    case VMSI_ASSOC_FIFO8:
        if (hit)
            break;
        /* fallthrough */
    case VMSI_ASSOC_LRU8:
        vmsi_repl_mat_touch(s, a->ways, way);
        break;
    case VMSI_ASSOC_NOSTATE:
        break;
    default:
        a->policy->touch(s, a->ways, way, hit);
    }
}

/* A hit on (set, way) of an array that is not plru16 (assoc.c; a direct call). */
void vmsi_assoc_touch_hit(vmsi_assoc *a, unsigned set, unsigned way);

/* Tell the policy that (set, way) was just hit. Small, for the TLB's hit path: bit-PLRU
 * (every preset TLB) inline, the other policies in one direct call. */
static inline void vmsi_assoc_touch(vmsi_assoc *a, unsigned set, unsigned way)
{
    if (a->kind == VMSI_ASSOC_PLRU16)
        vmsi_assoc_plru_touch(a, a->state + (size_t)set * a->state_bytes, way);
    else
        vmsi_assoc_touch_hit(a, set, way);
}

/* The policy's victim in a full set. */
static inline unsigned vmsi_assoc_victim(vmsi_assoc *a, unsigned set)
{
    uint8_t *s = a->state + (size_t)set * a->state_bytes;
    switch (a->kind) {
    case VMSI_ASSOC_PLRU16:
        return vmsi_assoc_plru_victim(a, s);
    case VMSI_ASSOC_LRU8:
    case VMSI_ASSOC_FIFO8:
        return vmsi_repl_mat_victim(s, a->ways);
    default:
        return a->policy->victim(s, a->ways, a->rng);
    }
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
 * Insert (tag, ctx, data) in the set tag's key indexes. An entry it conflicts with
 * (same key, and same context, or the same VM and either global) is overwritten in place and
 * reported to the policy as a hit (an update is not a new arrival); further conflicting entries are
 * dropped. Otherwise the lowest invalid way is filled, else the policy's victim.
 * Sets *evicted when a valid, non-conflicting entry was replaced, and then *victim (when
 * not NULL) to that entry's tag. Returns the way.
 */
unsigned vmsi_assoc_fill(vmsi_assoc *a, uint64_t tag, uint64_t ctx, uint64_t data, bool *evicted,
                         uint64_t *victim);

/*
 * vmsi_assoc_fill when the caller knows that no valid entry conflicts with the new one
 * (a lookup of its key and context just missed and nothing was filled since, and it is
 * not global): the lowest invalid way, else the policy's victim, without the conflict
 * scan (none when the array is full). Same result as vmsi_assoc_fill in that case.
 */
unsigned vmsi_assoc_fill_fresh(vmsi_assoc *a, uint64_t tag, uint64_t ctx, uint64_t data,
                               bool *evicted, uint64_t *victim);

/* Would entries e and f both answer some lookup? (Same key; same context, or the
 * same VM and either global.) */
static inline bool vmsi_assoc_conflict(const vmsi_assoc_entry *e, const vmsi_assoc_entry *f)
{
    uint64_t t = e->tag, u = f->tag;
    if ((t & u & VMSI_ASSOC_V) == 0 || vmsi_assoc_key(t ^ u) != 0)
        return false;
    return e->ctx == f->ctx || (((t | u) & VMSI_ASSOC_G) && vmsi_ctx_same_vm(e->ctx, f->ctx));
}

/* The tail of a fill of entry n into row (set's) once the conflicting way (or -1) and
 * the lowest free way (or -1) are known. Returns the way. */
static inline __attribute__((always_inline)) unsigned
vmsi_assoc_fill_at(vmsi_assoc *a, unsigned set, vmsi_assoc_entry *row, const vmsi_assoc_entry n,
                   int way, int free, bool *evicted, uint64_t *victim)
{
    bool hit = way >= 0;
    *evicted = false;
    if (way < 0) {
        way = free;
        if (way >= 0) {
            a->count++;
        } else {
            way = (int)vmsi_assoc_victim(a, set);
            assert((unsigned)way < a->ways);
            *evicted = true;
            if (victim)
                *victim = row[way].tag;
        }
    }
    row[way] = n;
    vmsi_assoc_touch_as(a, set, (unsigned)way, hit);
    return (unsigned)way;
}

/* A fresh fill's set and row for n (the debug build checks the caller's claim that no
 * way conflicts with it). */
static inline __attribute__((always_inline)) vmsi_assoc_entry *
vmsi_assoc_fresh_row(vmsi_assoc *a, const vmsi_assoc_entry *n, unsigned *set)
{
    assert((n->tag & VMSI_ASSOC_V) && !(n->tag & VMSI_ASSOC_G));
    *set = vmsi_assoc_set(a, vmsi_assoc_key(n->tag));
    vmsi_assoc_entry *row = vmsi_assoc_at(a, *set, 0);
#ifndef NDEBUG
    for (unsigned w = 0; w < a->ways; w++)
        assert(!vmsi_assoc_conflict(&row[w], n) &&
               "fill_fresh: the caller's claim of no conflict is wrong");
#endif
    return row;
}

/* vmsi_assoc_fill_fresh inline, for the fill paths of the TLB and the PWC (one call
 * less per fill; the same code). */
static inline __attribute__((always_inline)) unsigned
vmsi_assoc_fill_fresh_inline(vmsi_assoc *a, uint64_t tag, uint64_t ctx, uint64_t data,
                             bool *evicted, uint64_t *victim)
{
    const vmsi_assoc_entry n = {tag, data, ctx};
    unsigned set;
    vmsi_assoc_entry *row = vmsi_assoc_fresh_row(a, &n, &set);
    int free = -1;
    if (a->count < a->sets * a->ways) /* a full array has no invalid way */
        for (unsigned w = 0; w < a->ways; w++)
            if (!(row[w].tag & VMSI_ASSOC_V)) {
                free = (int)w;
                break;
            }
    return vmsi_assoc_fill_at(a, set, row, n, -1, free, evicted, victim);
}

/*
 * vmsi_assoc_fill_fresh_inline for the TLB's fills after a walk (tlb.c): the same result;
 * a bit-PLRU set of up to 16 ways (every preset TLB) reads its MRU bits once for both the
 * victim and the fill's touch (plru_victim and plru_touch on the same bits).
 */
static inline __attribute__((always_inline)) unsigned
vmsi_assoc_fill_fresh_plru(vmsi_assoc *a, uint64_t tag, uint64_t ctx, uint64_t data, bool *evicted,
                           uint64_t *victim)
{
    if (a->kind != VMSI_ASSOC_PLRU16)
        return vmsi_assoc_fill_fresh_inline(a, tag, ctx, data, evicted, victim);
    const vmsi_assoc_entry n = {tag, data, ctx};
    unsigned set;
    vmsi_assoc_entry *row = vmsi_assoc_fresh_row(a, &n, &set);
    uint8_t *s = a->state + (size_t)set * a->state_bytes;
    unsigned bits = vmsi_assoc_plru_get(a, s), full = (1u << a->ways) - 1;
    int way = -1;
    if (a->count < a->sets * a->ways) /* a full array has no invalid way */
        for (unsigned w = 0; w < a->ways; w++)
            if (!(row[w].tag & VMSI_ASSOC_V)) {
                way = (int)w;
                break;
            }
    if (way >= 0) {
        a->count++;
        *evicted = false;
    } else {
        unsigned free = ~bits & full; /* plru_victim */
        way = free ? __builtin_ctz(free) : 0;
        *evicted = true;
        if (victim)
            *victim = row[way].tag;
    }
    row[way] = n;
    unsigned x = bits | 1u << way; /* plru_touch */
    vmsi_assoc_plru_put(a, s, x == full ? 1u << way : x);
    return (unsigned)way;
}

/*
 * Drop every valid entry e for which pred(e, arg) holds, in the `nsets` sets
 * first_set, first_set+1, … (mod sets); nsets >= sets scans all. Returns how many.
 */
static inline __attribute__((always_inline)) unsigned
vmsi_assoc_drop_where(vmsi_assoc *a, unsigned first_set, unsigned nsets, vmsi_assoc_pred pred,
                      const void *arg)
{
    /* Inline, so that a constant pred is inlined too (no call per entry); an empty array
     * is not scanned, and the sets are stepped without a division. */
    unsigned dropped = 0;
    if (a->count == 0)
        return 0;
    if (nsets > a->sets)
        nsets = a->sets;
    unsigned set = first_set % a->sets;
    for (unsigned i = 0; i < nsets; i++) {
        vmsi_assoc_entry *row = vmsi_assoc_at(a, set, 0);
        for (unsigned w = 0; w < a->ways; w++) {
            if ((row[w].tag & VMSI_ASSOC_V) && pred(&row[w], arg)) {
                row[w].tag = 0;
                dropped++;
            }
        }
        set = set + 1 == a->sets ? 0 : set + 1;
    }
    a->count -= dropped;
    return dropped;
}

/* The assoc invariants above; true when they hold. */
bool vmsi_assoc_check(const vmsi_assoc *a);

#endif
