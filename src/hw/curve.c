/*
 * curve.c — one-pass miss-ratio curves of LRU translation caches (curve.h,
 * docs/CURVE.md): Mattson's recency stack per set, with holes for invalidations, depths
 * by a Fenwick tree over last-use times, optional SHARDS sampling.
 *
 * The stack of one set. Every modelled entry carries its last-use time ts; a set's stack
 * is its marked times in decreasing order, and a lookup's depth is the number of marked
 * times >= its entry's (a Fenwick tree `bit` counts them in O(log T)). A cache of n ways
 * holds exactly the entries at depths 1 … n, so a lookup at depth d misses in every
 * cache of fewer than d ways (hist[d]++), and one of no depth (absent) misses in all.
 *
 * Holes. An invalidated entry leaves a ghost at its time (still marked, also counted in
 * `gbit`): caches that held it now have a free way, those that did not are unchanged,
 * and the depths of the entries below it stay what every cache's contents say. The next
 * entry that arrives at the top — a new one, or one moved up from below the ghost —
 * takes the topmost ghost (it is the free way that every cache deep enough to have one
 * uses; a moved entry leaves its own time as the new ghost). Only the top `bound`
 * markers matter to caches of at most `bound` ways, so a set keeps no more: the lowest
 * marker falls off when a new entry arrives into a full stack without a ghost.
 *
 * Times are 0 … tsize-1 per set; when they run out the set's markers are renumbered in
 * order (at most bound <= tsize/4 of them) and the trees rebuilt in O(tsize), so each
 * operation is O(log tsize) amortized.
 *
 * Outcomes. A TLB lookup that hits in the real structure touches it; in a smaller cache
 * the same lookup missed, and the translation is filled from the next level or a walk —
 * unless the access faults, which drops it. So a lookup's move to the top waits for the
 * next operation: an invalidation of the same entry by a page fault of the same access
 * (the fault path's flush: the core's access counter has not moved, its page-fault
 * counter has) drops it in
 * place, unless the next TLB level holds the page, from which a smaller cache would have
 * refilled it before the rights check (then it moves up first, as that fill would have).
 * A PWC lookup is resolved by the walk's outcome: a walk that fails fills nothing, so a
 * cache that missed is unchanged (the entry stays where it was); one that succeeds
 * fills or touched it (moves up).
 */
#include "hw/core_impl.h"
#include "hw/curve_impl.h"
#include "hw/tlb_impl.h"
#include "util/util.h"

#define AT_EMPTY (-1)
#define AT_GHOST (-2)

typedef enum curve_mode { MODE_FREE, MODE_TLB, MODE_PWC } curve_mode;

/* A modelled entry: the owner's three words, its time, its set. tag 0: a free slot. */
typedef struct cslot {
    vmsi_assoc_entry e;
    uint32_t ts, set;
} cslot;

/* A set's stack: the next time, markers (entries + ghosts) and ghosts. */
typedef struct cset {
    uint32_t clock, marked, ghosts;
} cset;

struct vms_curve {
    vms_allocator alloc;
    unsigned sets, ways; /* the geometry reported: every associativity 1 … ways */
    unsigned bound;      /* markers kept per set (ways, fewer when sampled) */
    unsigned tsize;      /* times per set, a power of two >= 4 * bound */
    unsigned shift;      /* set index = (key >> shift) % sets, as the owner indexes */
    double rate;
    uint32_t threshold; /* sampled keys: hash & 0xFFFFFF < threshold */
    uint64_t salt;
    cset *cs;
    uint32_t *bit, *gbit; /* per set: Fenwick trees of tsize + 1 (1-based) */
    int32_t *at;          /* per set: the slot at each time, AT_EMPTY, AT_GHOST */
    cslot *slot;          /* sets * bound */
    uint32_t *freel;
    unsigned nfree;
    uint32_t *hash; /* open addressing by key: slot + 1, 0 empty */
    unsigned hmask;
    uint64_t *hist;       /* hist[d], d = 1 … ways; hist[ways + 1]: deeper or absent */
    uint64_t lookups;     /* modelled (sampled) lookups */
    uint64_t all_lookups; /* every lookup seen, sampled or not */
    /* the attachment (curve.h), and the lookup whose outcome is pending */
    curve_mode mode;
    const uint64_t *mark;  /* TLB: the core's accesses; PWC: its failed walks */
    const uint64_t *fault; /* TLB: the core's page faults */
    const vms_tlb *next;   /* TLB L1: the L2 a smaller L1 would refill from */
    int32_t pend;          /* the modelled entry the lookup found, or -1 */
    bool pend_new;         /* none, but the real structure hit pend_e */
    vmsi_assoc_entry pend_e;
    uint64_t pend_mark, pend_fault, pend_va, pend_ctx, pend_bucket;
    const uint64_t *spur; /* the kernel's spurious faults (vms_curve_set_spurious), or NULL */
    bool retry;           /* a fault dropped the pending entry in place: its retry is next */
    uint64_t retry_bucket, retry_spur;
    vms_curve *chain; /* the next curve on the same structure */
};

/* ---- Fenwick trees (1-based inside, 0-based times outside) ---- */

static void fw_add(uint32_t *t, unsigned n, unsigned i, int d)
{
    for (i++; i <= n; i += i & -i)
        t[i] = (uint32_t)((int64_t)t[i] + d);
}

/* Markers at times 0 … i. */
static uint32_t fw_sum(const uint32_t *t, unsigned i)
{
    uint32_t s = 0;
    for (i++; i; i -= i & -i)
        s += t[i];
    return s;
}

/* The time of the k-th marker (k >= 1 and at most the total); n is a power of two. */
static unsigned fw_kth(const uint32_t *t, unsigned n, uint32_t k)
{
    unsigned pos = 0;
    for (unsigned step = n; step; step >>= 1) {
        if (pos + step <= n && t[pos + step] < k) {
            pos += step;
            k -= t[pos];
        }
    }
    return pos;
}

static inline uint32_t *bit_of(vms_curve *c, unsigned set)
{
    return c->bit + (size_t)set * (c->tsize + 1);
}

static inline uint32_t *gbit_of(vms_curve *c, unsigned set)
{
    return c->gbit + (size_t)set * (c->tsize + 1);
}

static inline int32_t *at_of(vms_curve *c, unsigned set)
{
    return c->at + (size_t)set * c->tsize;
}

/* ---- creation ---- */

static uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 27;
    x *= UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

static unsigned pow2_at_least(unsigned n)
{
    unsigned p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

vms_status vms_curve_create(const vms_allocator *a, unsigned sets, unsigned ways, double rate,
                            uint64_t seed, vms_curve **out, vms_err *err)
{
    *out = NULL;
    if (sets == 0 || ways == 0 || (uint64_t)sets * ways > (UINT64_C(1) << 24))
        return vmsi_err(err, VMS_ERR_INVAL,
                        "curve: %u sets x %u ways: both must be >= 1, at most 2^24 entries", sets,
                        ways);
    if (!(rate > 0.0 && rate <= 1.0))
        return vmsi_err(err, VMS_ERR_INVAL, "curve: sampling rate %g is not in (0, 1]", rate);
    if (!a)
        a = vms_allocator_default();
    vms_curve *c = vmsi_zalloc(a, sizeof *c);
    if (!c)
        return vmsi_err(err, VMS_ERR_NOMEM, "curve: out of host memory");
    c->alloc = *a;
    c->sets = sets;
    c->ways = ways;
    c->rate = rate;
    c->threshold = rate >= 1.0 ? (UINT32_C(1) << 24) : (uint32_t)(rate * (double)(1u << 24) + 0.5);
    if (c->threshold == 0)
        c->threshold = 1;
    c->salt = mix(seed ^ UINT64_C(0x5348415244530000)); /* "SHARDS" */
    /* Sampled: about rate x ways of a set's entries are sampled; keep twice that. */
    c->bound = rate >= 1.0 ? ways : (unsigned)((double)ways * rate * 2.0) + 16;
    if (c->bound > ways)
        c->bound = ways;
    c->tsize = pow2_at_least(4 * c->bound); /* renumbering costs O(tsize) per 3/4 tsize */
    c->pend = -1;
    size_t nslots = (size_t)sets * c->bound, nt = (size_t)sets * (c->tsize + 1);
    c->hmask = pow2_at_least((unsigned)(2 * nslots)) - 1;
    c->cs = vmsi_calloc(a, sets, sizeof *c->cs);
    c->bit = vmsi_calloc(a, nt, sizeof *c->bit);
    c->gbit = vmsi_calloc(a, nt, sizeof *c->gbit);
    c->at = vmsi_calloc(a, (size_t)sets * c->tsize, sizeof *c->at);
    c->slot = vmsi_calloc(a, nslots, sizeof *c->slot);
    c->freel = vmsi_calloc(a, nslots, sizeof *c->freel);
    c->hash = vmsi_calloc(a, (size_t)c->hmask + 1, sizeof *c->hash);
    c->hist = vmsi_calloc(a, (size_t)ways + 2, sizeof *c->hist);
    if (!c->cs || !c->bit || !c->gbit || !c->at || !c->slot || !c->freel || !c->hash || !c->hist) {
        vms_curve_destroy(c);
        return vmsi_err(err, VMS_ERR_NOMEM, "curve: out of host memory (%u x %u)", sets, ways);
    }
    for (size_t i = 0; i < (size_t)sets * c->tsize; i++)
        c->at[i] = AT_EMPTY;
    for (size_t i = 0; i < nslots; i++)
        c->freel[i] = (uint32_t)(nslots - 1 - i);
    c->nfree = (unsigned)nslots;
    *out = c;
    return VMS_OK;
}

void vms_curve_destroy(vms_curve *c)
{
    if (!c)
        return;
    vms_allocator a = c->alloc;
    size_t nslots = (size_t)c->sets * c->bound, nt = (size_t)c->sets * (c->tsize + 1);
    vmsi_free(&a, c->cs, c->sets * sizeof *c->cs);
    vmsi_free(&a, c->bit, nt * sizeof *c->bit);
    vmsi_free(&a, c->gbit, nt * sizeof *c->gbit);
    vmsi_free(&a, c->at, (size_t)c->sets * c->tsize * sizeof *c->at);
    vmsi_free(&a, c->slot, nslots * sizeof *c->slot);
    vmsi_free(&a, c->freel, nslots * sizeof *c->freel);
    vmsi_free(&a, c->hash, ((size_t)c->hmask + 1) * sizeof *c->hash);
    vmsi_free(&a, c->hist, ((size_t)c->ways + 2) * sizeof *c->hist);
    vmsi_free(&a, c, sizeof *c);
}

/* ---- the index of modelled entries by key ---- */

static inline unsigned hslot(const vms_curve *c, uint64_t key)
{
    return (unsigned)mix(key) & c->hmask;
}

static void hash_insert(vms_curve *c, uint32_t si)
{
    unsigned h = hslot(c, vmsi_assoc_key(c->slot[si].e.tag));
    while (c->hash[h])
        h = (h + 1) & c->hmask;
    c->hash[h] = si + 1;
}

/* Remove slot si from the index (linear probing, backward-shift deletion). */
static void hash_remove(vms_curve *c, uint32_t si)
{
    unsigned h = hslot(c, vmsi_assoc_key(c->slot[si].e.tag));
    while (c->hash[h] != si + 1) {
        assert(c->hash[h] != 0);
        h = (h + 1) & c->hmask;
    }
    for (unsigned j = (h + 1) & c->hmask; c->hash[j]; j = (j + 1) & c->hmask) {
        unsigned home = hslot(c, vmsi_assoc_key(c->slot[c->hash[j] - 1].e.tag));
        /* the entry at j may move to the hole at h when h lies on its probe path */
        if (((j - home) & c->hmask) >= ((j - h) & c->hmask)) {
            c->hash[h] = c->hash[j];
            h = j;
        }
    }
    c->hash[h] = 0;
}

/* The modelled entry answering (key, ctx) as assoc_find would, or -1. */
static int32_t find(const vms_curve *c, uint64_t key, uint64_t ctx)
{
    uint64_t want = vmsi_assoc_tag(key, false);
    for (unsigned h = hslot(c, key); c->hash[h]; h = (h + 1) & c->hmask) {
        uint32_t si = c->hash[h] - 1;
        if (vmsi_assoc_hits(&c->slot[si].e, want, ctx))
            return (int32_t)si;
    }
    return -1;
}

/* Would entries e and n both answer some lookup (assoc.c's conflict rule)? */
static bool conflict(const vmsi_assoc_entry *e, const vmsi_assoc_entry *n)
{
    if (vmsi_assoc_key(e->tag ^ n->tag) != 0)
        return false;
    return e->ctx == n->ctx ||
           (((e->tag | n->tag) & VMSI_ASSOC_G) && vmsi_ctx_same_vm(e->ctx, n->ctx));
}

/* A modelled entry other than `skip` that conflicts with n, or -1. */
static int32_t find_conflict(const vms_curve *c, const vmsi_assoc_entry *n, int32_t skip)
{
    for (unsigned h = hslot(c, vmsi_assoc_key(n->tag)); c->hash[h]; h = (h + 1) & c->hmask) {
        int32_t si = (int32_t)c->hash[h] - 1;
        if (si != skip && conflict(&c->slot[si].e, n))
            return si;
    }
    return -1;
}

/* ---- the stacks ---- */

/* Renumber set's markers 0 … m-1 in order and rebuild its trees. */
static void compact(vms_curve *c, unsigned set)
{
    int32_t *at = at_of(c, set);
    uint32_t *bit = bit_of(c, set), *gbit = gbit_of(c, set);
    cset *s = &c->cs[set];
    uint32_t j = 0;
    for (uint32_t i = 0; i < s->clock; i++) {
        if (at[i] == AT_EMPTY)
            continue;
        at[j] = at[i];
        if (at[j] >= 0)
            c->slot[at[j]].ts = j;
        j++;
    }
    for (uint32_t i = j; i < c->tsize; i++)
        at[i] = AT_EMPTY;
    memset(bit, 0, (c->tsize + 1) * sizeof *bit);
    memset(gbit, 0, (c->tsize + 1) * sizeof *gbit);
    for (uint32_t i = 0; i < j; i++) {
        bit[i + 1] = 1;
        gbit[i + 1] = at[i] == AT_GHOST;
    }
    for (uint32_t i = 1; i <= c->tsize; i++) { /* build both trees in O(tsize) */
        uint32_t up = i + (i & -i);
        if (up <= c->tsize) {
            bit[up] += bit[i];
            gbit[up] += gbit[i];
        }
    }
    s->clock = j;
}

/* A fresh time in set (renumbering first when they ran out). */
static uint32_t new_ts(vms_curve *c, unsigned set)
{
    if (c->cs[set].clock == c->tsize)
        compact(c, set);
    assert(c->cs[set].clock < c->tsize);
    return c->cs[set].clock++;
}

/* Depth of slot si in its set: 1 at the top. */
static uint32_t depth(vms_curve *c, uint32_t si)
{
    const cslot *s = &c->slot[si];
    return c->cs[s->set].marked - fw_sum(bit_of(c, s->set), s->ts) + 1;
}

/* The topmost ghost's time; the set must have one. */
static uint32_t top_ghost(vms_curve *c, unsigned set)
{
    return fw_kth(gbit_of(c, set), c->tsize, c->cs[set].ghosts);
}

/* Unmark the ghost at time g. */
static void consume_ghost(vms_curve *c, unsigned set, uint32_t g)
{
    assert(at_of(c, set)[g] == AT_GHOST);
    fw_add(bit_of(c, set), c->tsize, g, -1);
    fw_add(gbit_of(c, set), c->tsize, g, -1);
    at_of(c, set)[g] = AT_EMPTY;
    c->cs[set].ghosts--;
    c->cs[set].marked--;
}

static void free_slot(vms_curve *c, uint32_t si)
{
    hash_remove(c, si);
    c->slot[si].e.tag = 0;
    c->freel[c->nfree++] = si;
}

/* Slot si was used now: move it to the top of its set. */
static void move_top(vms_curve *c, uint32_t si)
{
    unsigned set = c->slot[si].set;
    uint32_t now = new_ts(c, set), old = c->slot[si].ts;
    int32_t *at = at_of(c, set);
    cset *s = &c->cs[set];
    if (s->ghosts > 0 && top_ghost(c, set) > old) {
        consume_ghost(c, set, top_ghost(c, set));
        at[old] = AT_GHOST; /* the entry's old place is the free way now */
        fw_add(gbit_of(c, set), c->tsize, old, 1);
        s->ghosts++;
    } else {
        fw_add(bit_of(c, set), c->tsize, old, -1);
        at[old] = AT_EMPTY;
        s->marked--;
    }
    at[now] = (int32_t)si;
    fw_add(bit_of(c, set), c->tsize, now, 1);
    s->marked++;
    c->slot[si].ts = now;
}

/* A new entry arrives at the top of its set. */
static void insert(vms_curve *c, const vmsi_assoc_entry *e)
{
    unsigned set = (unsigned)((vmsi_assoc_key(e->tag) >> c->shift) % c->sets);
    uint32_t now = new_ts(c, set);
    cset *s = &c->cs[set];
    int32_t *at = at_of(c, set);
    if (s->ghosts > 0) {
        consume_ghost(c, set, top_ghost(c, set));
    } else if (s->marked == c->bound) {
        uint32_t low = fw_kth(bit_of(c, set), c->tsize, 1);
        assert(at[low] >= 0);
        free_slot(c, (uint32_t)at[low]);
        fw_add(bit_of(c, set), c->tsize, low, -1);
        at[low] = AT_EMPTY;
        s->marked--;
    }
    assert(c->nfree > 0);
    uint32_t si = c->freel[--c->nfree];
    c->slot[si] = (cslot){*e, now, set};
    hash_insert(c, si);
    at[now] = (int32_t)si;
    fw_add(bit_of(c, set), c->tsize, now, 1);
    s->marked++;
}

/* Drop slot si where it stands: its time becomes a ghost. */
static void ghost(vms_curve *c, uint32_t si)
{
    unsigned set = c->slot[si].set;
    uint32_t ts = c->slot[si].ts;
    at_of(c, set)[ts] = AT_GHOST;
    fw_add(gbit_of(c, set), c->tsize, ts, 1);
    c->cs[set].ghosts++;
    free_slot(c, si);
}

/* ---- outcomes and hooks ---- */

static bool sampled(const vms_curve *c, uint64_t key)
{
    return c->threshold >= (UINT32_C(1) << 24) || (mix(key ^ c->salt) & 0xFFFFFFu) < c->threshold;
}

/* Put entry n at the top as a fill does: an update of a conflicting entry (reported as a
 * use, assoc_fill) that drops further conflicting ones, else a new arrival. */
static void put(vms_curve *c, const vmsi_assoc_entry *n)
{
    int32_t first = find_conflict(c, n, -1);
    if (first < 0) {
        insert(c, n);
        return;
    }
    c->slot[first].e = *n;
    move_top(c, (uint32_t)first);
    for (int32_t o; (o = find_conflict(c, n, first)) >= 0;)
        ghost(c, (uint32_t)o);
}

/* The pending lookup's entry was used: caches that held it touched it, the others
 * filled it (the real structure's entry, when the model had none). */
static void use_pending(vms_curve *c)
{
    if (c->pend >= 0)
        move_top(c, (uint32_t)c->pend);
    else if (c->pend_new)
        put(c, &c->pend_e);
}

/* Settle the pending lookup: a TLB lookup that was not dropped by a fault of its access,
 * or a PWC lookup whose walk succeeded, used its entry. */
static void resolve(vms_curve *c)
{
    if (c->pend < 0 && !c->pend_new)
        return;
    if (c->mode != MODE_PWC || *c->mark == c->pend_mark)
        use_pending(c);
    c->pend = -1;
    c->pend_new = false;
}

static void lookup1(vms_curve *c, const uint64_t *keys, unsigned n, uint64_t ctx, uint64_t va,
                    const vmsi_assoc_entry *real)
{
    if (c->retry) {
        /* The fault before this retry was spurious (a stale entry with fewer rights than
         * the tables): caches that no longer held the entry walked, took no fault and
         * make no retry, so the first lookup's miss there is this one's. */
        c->retry = false;
        if (*c->spur != c->retry_spur)
            c->hist[c->retry_bucket]--;
    }
    resolve(c);
    c->all_lookups++;
    int32_t si = -1;
    for (unsigned i = 0; i < n && si < 0; i++)
        si = find(c, keys[i], ctx);
    if (si < 0 && !sampled(c, real ? vmsi_assoc_key(real->tag) : keys[0]))
        return; /* not a sampled key (modelled entries all are) */
    c->lookups++;
    uint64_t d = si < 0 ? UINT64_MAX : depth(c, (uint32_t)si);
    if (d != UINT64_MAX && c->rate < 1.0) /* SHARDS: the d - 1 sampled entries above this
                                               one stand for (d - 1) / rate entries */
        d = 1 + (uint64_t)((double)(d - 1) / c->rate + 0.5);
    c->pend_bucket = d > c->ways ? c->ways + 1 : d;
    c->hist[c->pend_bucket]++;
    /* The real structure hit an entry the model lacks (it is not LRU of this geometry):
     * every modelled size missed and fills that entry, unless the access faults. */
    c->pend = si;
    c->pend_new = si < 0 && real;
    if (c->pend_new)
        c->pend_e = *real;
    c->pend_mark = *c->mark;
    c->pend_fault = c->fault ? *c->fault : 0;
    c->pend_va = va;
    c->pend_ctx = ctx;
    if (c->mode == MODE_FREE)
        resolve(c);
}

void vmsi_curve_lookup(vms_curve *c, const uint64_t *keys, unsigned n, uint64_t ctx, uint64_t va,
                       const vmsi_assoc_entry *real)
{
    for (; c; c = c->chain)
        lookup1(c, keys, n, ctx, va, real);
}

static void fill1(vms_curve *c, uint64_t tag, uint64_t ctx, uint64_t data)
{
    const vmsi_assoc_entry n = {tag, data, ctx};
    if (c->pend >= 0 && c->mode != MODE_PWC && conflict(&c->slot[c->pend].e, &n)) {
        /* the fill after the lookup that found this entry (an L1 refilled from the L2, a
         * dirty re-walk): one move to the top does for both */
        int32_t first = c->pend;
        c->pend = -1;
        c->slot[first].e = n;
        move_top(c, (uint32_t)first);
        for (int32_t o; (o = find_conflict(c, &n, first)) >= 0;)
            ghost(c, (uint32_t)o);
        return;
    }
    resolve(c);
    if (!sampled(c, vmsi_assoc_key(tag)))
        return;
    put(c, &n);
}

void vmsi_curve_fill(vms_curve *c, uint64_t tag, uint64_t ctx, uint64_t data)
{
    for (; c; c = c->chain)
        fill1(c, tag, ctx, data);
}

static void drop1(vms_curve *c, vmsi_assoc_pred pred, const void *arg)
{
    const vmsi_assoc_entry *pe = c->pend >= 0  ? &c->slot[c->pend].e
                                 : c->pend_new ? &c->pend_e
                                               : NULL;
    if (pe && c->mode == MODE_TLB && *c->mark == c->pend_mark && *c->fault != c->pend_fault &&
        pred(pe, arg)) {
        /* The access of the pending lookup faulted: a cache that missed either refilled
         * from the next level before the rights check (then lost the entry) or walked
         * and filled nothing. */
        vms_xlate x;
        if (c->next && vms_tlb_probe(c->next, c->pend_ctx, c->pend_va, &x)) {
            use_pending(c);
        } else if (c->spur) {
            c->retry = true;
            c->retry_bucket = c->pend_bucket;
            c->retry_spur = *c->spur;
        }
        c->pend = -1;
        c->pend_new = false;
    }
    resolve(c);
    size_t nslots = (size_t)c->sets * c->bound;
    for (size_t i = 0; i < nslots; i++)
        if ((c->slot[i].e.tag & VMSI_ASSOC_V) && pred(&c->slot[i].e, arg))
            ghost(c, (uint32_t)i);
}

void vmsi_curve_drop(vms_curve *c, vmsi_assoc_pred pred, const void *arg)
{
    for (; c; c = c->chain)
        drop1(c, pred, arg);
}

void vms_curve_set_spurious(vms_curve *c, const uint64_t *spurious)
{
    c->spur = spurious;
}

/* ---- results ---- */

unsigned vms_curve_sets(const vms_curve *c)
{
    return c->sets;
}

unsigned vms_curve_ways(const vms_curve *c)
{
    return c->ways;
}

double vms_curve_rate(const vms_curve *c)
{
    return c->rate;
}

uint64_t vms_curve_lookups(const vms_curve *c)
{
    return c->lookups;
}

uint64_t vms_curve_misses(const vms_curve *c, unsigned ways)
{
    assert(ways >= 1 && ways <= c->ways);
    uint64_t m = 0;
    for (unsigned d = ways + 1; d <= c->ways + 1; d++)
        m += c->hist[d];
    if (c->rate < 1.0 && c->lookups) /* scaled by the rate actually sampled (SHARDS-adj) */
        return (uint64_t)((double)m * (double)c->all_lookups / (double)c->lookups + 0.5);
    return m;
}

/* ---- attaching to a core ---- */

/* The structure `what` names: a TLB level (*tlb) or a PWC level (*level). */
static bool parse_what(const char *what, int *tlb, unsigned *level)
{
    static const char *const tlbs[VMS_TLB_NLEVELS] = {"tlb.l1i", "tlb.l1d", "tlb.l2"};
    static const char *const pwcs[4] = {"pwc.pde", "pwc.pdpte", "pwc.pml4e", "pwc.pml5e"};
    *tlb = -1;
    *level = 0;
    for (int i = 0; i < VMS_TLB_NLEVELS; i++)
        if (!strcmp(what, tlbs[i]))
            *tlb = i;
    for (unsigned i = 0; i < 4; i++)
        if (!strcmp(what, pwcs[i]))
            *level = i + 2;
    return *tlb >= 0 || *level > 0;
}

/* The chain head for `what` on core c, or NULL with an error. */
static vms_curve **slot_of(vms_core *c, const char *what, vms_err *err)
{
    int t;
    unsigned level;
    if (!parse_what(what, &t, &level)) {
        vmsi_err(err, VMS_ERR_NOTFOUND,
                 "unknown structure '%s': expected tlb.l1i, tlb.l1d, tlb.l2, pwc.pde, "
                 "pwc.pdpte, pwc.pml4e or pwc.pml5e",
                 what);
        return NULL;
    }
    vms_curve **p = NULL;
    if (t >= 0 && c->tlb[t])
        p = &c->tlb[t]->curve;
    else if (t < 0 && c->pwc)
        p = vmsi_pwc_curve_slot(c->pwc, level);
    if (!p)
        vmsi_err(err, VMS_ERR_NOTFOUND, "%s: core %u has no such structure (it is not configured)",
                 what, c->id);
    return p;
}

vms_status vms_core_curve_attach(vms_core *c, const char *what, vms_curve *curve, vms_err *err)
{
    vms_curve **p = slot_of(c, what, err);
    if (!p)
        return VMS_ERR_NOTFOUND;
    int t;
    unsigned level;
    parse_what(what, &t, &level);
    curve->mode = t >= 0 ? MODE_TLB : MODE_PWC;
    curve->mark = t >= 0 ? &c->st.accesses : &c->wstats.faults;
    curve->fault = t >= 0 ? &c->st.faults_pf : NULL;
    curve->next = t == VMS_TLB_L1I || t == VMS_TLB_L1D ? c->tlb[VMS_TLB_L2] : NULL;
    curve->shift = t >= 0 ? 2 : 0; /* TLB keys carry the page size in two low bits */
    curve->pend = -1;
    curve->pend_new = false;
    curve->chain = *p;
    *p = curve;
    /* A TLB with a curve keeps its repeat memo empty (tlb.c: probe), so that every lookup
     * is shown at its true depth: drop what the memo holds now. */
    if (t >= 0)
        vmsi_tlb_memo_clear(c->tlb[t]);
    return VMS_OK;
}

/* Unlink curve from the chain at *p. */
static void unlink_from(vms_curve **p, vms_curve *curve)
{
    for (; *p; p = &(*p)->chain)
        if (*p == curve) {
            *p = curve->chain;
            curve->chain = NULL;
            return;
        }
}

void vms_core_curve_detach(vms_core *c, vms_curve *curve)
{
    for (unsigned t = 0; t < VMS_TLB_NLEVELS; t++)
        if (c->tlb[t])
            unlink_from(&c->tlb[t]->curve, curve);
    for (unsigned l = 2; c->pwc && l <= 5; l++) {
        vms_curve **p = vmsi_pwc_curve_slot(c->pwc, l);
        if (p)
            unlink_from(p, curve);
    }
}

vms_status vms_core_curve_geometry(vms_core *c, const char *what, vms_curve_geometry *out,
                                   vms_err *err)
{
    if (!slot_of(c, what, err))
        return VMS_ERR_NOTFOUND;
    int t;
    unsigned level;
    parse_what(what, &t, &level);
    *out = (vms_curve_geometry){0};
    if (t >= 0) {
        const vms_tlb *tlb = c->tlb[t];
        out->nparts = tlb->nparts;
        for (unsigned i = 0; i < tlb->nparts; i++) {
            const vmsi_assoc *a = &tlb->part[i];
            out->entries += a->sets * a->ways;
            if (a->sets * a->ways > out->sets * out->ways) {
                out->sets = a->sets;
                out->ways = a->ways;
                out->policy = a->policy->name;
            }
        }
        return VMS_OK;
    }
    const vms_machine_config *mc = &c->m->cfg;
    const vms_pwc_level_config *lc = &mc->mmu.pwc.level[level];
    out->nparts = 1;
    out->entries = lc->entries;
    out->ways = lc->ways;
    out->sets = lc->ways ? lc->entries / lc->ways : 0;
    out->policy = lc->policy ? lc->policy : "lru";
    return VMS_OK;
}
