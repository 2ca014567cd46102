/*
 * policy_opt.c — OPT, Bélády's optimal replacement (Bélády, "A study of replacement
 * algorithms for a virtual-storage computer", IBM Systems Journal 5(2), 1966): evict the
 * resident page whose next reference is farthest in the future. Needs the future, which
 * only a replay has (host->next_use; VMS_PPOL_NEEDS_FUTURE): the lower bound on misses
 * that every other policy is measured against.
 *
 * Ties: pages that are never used again all have next use UINT64_MAX; among pages with
 * equal next use the one with the LOWEST PAGE ID is evicted. (Any choice gives the same
 * miss count; this one is independent of history, so naive models agree easily.)
 *
 * State: a binary max-heap of resident pages keyed by (next use, -page id), and a
 * "stale" list of pages inserted or referenced since the last victim() — their cached
 * next use is out of date. victim() asks the host for the next use of each stale page,
 * re-sifts it, then pops the root. A page's next use changes only when it is referenced,
 * so the other keys stay valid. Cost: O(log n) amortized per reference.
 *
 * A victim the kernel could not evict (busy, pinned, no swap room) comes back through
 * rotate: it waits on a "rotated" list with key 0 (tried last) until the workload moves
 * on (the next insert or access), when its key is refreshed like a stale one. So one scan
 * tries the pages in OPT order, each once; with insert instead it would come back as the
 * farthest again and the scan would try the same page over and over (found by
 * fuzz_oracle: a replay that never got past one unevictable page, for minutes).
 */
#include <assert.h>

#include "os/reclaim/policy_impl.h"

#define STALE   0x1u
#define ROTATED 0x2u

typedef struct opt {
    vmsi_ppool pool; /* node.aux = heap position */
    uint64_t *key;   /* by node index: the cached next use */
    size_t kcap;
    uint32_t *heap; /* node indices */
    uint32_t n, cap;
    vmsi_plist stale;   /* nodes whose key must be refreshed (flags & STALE) */
    vmsi_plist rotated; /* victims kept this scan (flags & ROTATED), key 0 */
} opt;

/* Should node a be evicted before node b? Farther next use first, then lower page. */
static bool before(const opt *o, uint32_t a, uint32_t b)
{
    if (o->key[a] != o->key[b])
        return o->key[a] > o->key[b];
    return o->pool.nodes[a].page < o->pool.nodes[b].page;
}

/* Put node i at heap position k. */
static void place(opt *o, uint32_t k, uint32_t i)
{
    o->heap[k] = i;
    o->pool.nodes[i].aux = k;
}

/* Move the node at position k up or down until the heap order holds. */
static void sift(opt *o, uint32_t k)
{
    uint32_t i = o->heap[k];
    while (k > 0 && before(o, i, o->heap[(k - 1) / 2])) {
        place(o, k, o->heap[(k - 1) / 2]);
        k = (k - 1) / 2;
    }
    for (;;) {
        uint32_t c = 2 * k + 1;
        if (c >= o->n)
            break;
        if (c + 1 < o->n && before(o, o->heap[c + 1], o->heap[c]))
            c++;
        if (!before(o, o->heap[c], i))
            break;
        place(o, k, o->heap[c]);
        k = c;
    }
    place(o, k, i);
}

/* Free an instance (NULL allowed). */
static void opt_destroy(void *state)
{
    opt *o = state;
    if (!o)
        return;
    const vms_allocator *a = o->pool.a;
    vmsi_free(a, o->heap, (size_t)o->cap * sizeof *o->heap);
    vmsi_free(a, o->key, o->kcap * sizeof *o->key);
    vmsi_ppool_free(&o->pool);
    vmsi_free(a, o, sizeof *o);
}

/* Create an empty instance (the seed is unused: OPT is deterministic). */
static vms_status opt_create(const vms_allocator *a, size_t capacity, uint64_t seed, void **state,
                             vms_err *err)
{
    (void)seed;
    opt *o = vmsi_zalloc(a, sizeof *o);
    if (!o)
        return vmsi_err(err, VMS_ERR_NOMEM, "out of memory creating policy opt");
    vms_status st = vmsi_ppool_init(&o->pool, a, capacity, err);
    if (st == VMS_OK && !vmsi_grow_u32(a, &o->heap, &o->cap, o->pool.cap))
        st = vmsi_err(err, VMS_ERR_NOMEM, "out of memory creating policy opt");
    if (st != VMS_OK) {
        opt_destroy(o);
        return st;
    }
    vmsi_plist_init(&o->stale);
    vmsi_plist_init(&o->rotated);
    *state = o;
    return VMS_OK;
}

/* Mark node i stale: its next use changed (it was just referenced). */
static void mark_stale(opt *o, uint32_t i)
{
    if (o->pool.nodes[i].flags & STALE)
        return;
    o->pool.nodes[i].flags |= STALE;
    vmsi_plist_push_tail(o->pool.nodes, &o->stale, i);
}

/* The scan is over: the pages it kept get their keys refreshed (stale). */
static void end_scan(opt *o)
{
    while (o->rotated.head != VMSI_NIL) {
        uint32_t i = o->rotated.head;
        vmsi_plist_unlink(o->pool.nodes, &o->rotated, i);
        o->pool.nodes[i].flags &= (uint8_t)~ROTATED;
        mark_stale(o, i);
    }
}

/* Add page to the heap with key 0. */
static vms_status add(opt *o, uint64_t page, uint32_t *out)
{
    if (!vmsi_grow_u32(o->pool.a, &o->heap, &o->cap, o->n + 1))
        return VMS_ERR_NOMEM;
    /* A new node's index is at most `used` (the free list's are below it). */
    if (!vmsi_grow_to(o->pool.a, (void **)&o->key, &o->kcap, (size_t)o->pool.used + 1,
                      sizeof *o->key, 16))
        return VMS_ERR_NOMEM;
    vms_status st = vmsi_ppool_add(&o->pool, page, out);
    if (st != VMS_OK)
        return st;
    o->key[*out] = 0;
    place(o, o->n++, *out);
    sift(o, o->n - 1);
    return VMS_OK;
}

/* A page arrived (and was referenced): it joins the heap, stale. */
static vms_status opt_insert(void *state, uint64_t page)
{
    opt *o = state;
    end_scan(o);
    uint32_t i;
    vms_status st = add(o, page, &i);
    if (st == VMS_OK)
        mark_stale(o, i); /* refreshed before the next victim choice */
    return st;
}

/* A victim was kept: back with key 0 (tried after every other page) until the scan ends. */
static vms_status opt_rotate(void *state, uint64_t page)
{
    opt *o = state;
    uint32_t i;
    vms_status st = add(o, page, &i);
    if (st == VMS_OK) {
        o->pool.nodes[i].flags |= ROTATED;
        vmsi_plist_push_tail(o->pool.nodes, &o->rotated, i);
    }
    return st;
}

/* A page was referenced: its next use moved on. */
static void opt_access(void *state, uint64_t page)
{
    opt *o = state;
    end_scan(o);
    uint32_t i = vmsi_ppool_find(&o->pool, page);
    if (i != VMSI_NIL)
        mark_stale(o, i);
}

/* Take node i out of the heap and the stale list and free it. */
static void drop(opt *o, uint32_t i)
{
    if (o->pool.nodes[i].flags & STALE)
        vmsi_plist_unlink(o->pool.nodes, &o->stale, i);
    if (o->pool.nodes[i].flags & ROTATED)
        vmsi_plist_unlink(o->pool.nodes, &o->rotated, i);
    uint32_t k = o->pool.nodes[i].aux, last = o->heap[--o->n];
    if (k < o->n) {
        place(o, k, last);
        sift(o, k);
    }
    vmsi_ppool_del(&o->pool, i);
}

/* A page left other than by eviction. */
static void opt_remove(void *state, uint64_t page)
{
    opt *o = state;
    uint32_t i = vmsi_ppool_find(&o->pool, page);
    if (i != VMSI_NIL)
        drop(o, i);
}

/* Evict the page used farthest in the future (ties: lowest page id). */
static bool opt_victim(void *state, const vms_policy_host *host, uint64_t *page)
{
    opt *o = state;
    assert(host && host->next_use); /* vms_page_policy_select refuses OPT without it */
    while (o->stale.head != VMSI_NIL) {
        uint32_t i = o->stale.head;
        vmsi_plist_unlink(o->pool.nodes, &o->stale, i);
        o->pool.nodes[i].flags &= (uint8_t)~STALE;
        o->key[i] = host->next_use(host->ud, o->pool.nodes[i].page);
        sift(o, o->pool.nodes[i].aux);
    }
    if (o->n == 0)
        return false;
    uint32_t i = o->heap[0];
    *page = o->pool.nodes[i].page;
    drop(o, i);
    return true;
}

/* Resident pages tracked. */
static size_t opt_count(const void *state)
{
    return ((const opt *)state)->n;
}

const vms_page_policy vmsi_ppol_opt = {
    .name = "opt",
    .desc = "Belady's optimal: evict the page used farthest in the future (replay only)",
    .flags = VMS_PPOL_NEEDS_ACCESS | VMS_PPOL_NEEDS_FUTURE,
    .create = opt_create,
    .destroy = opt_destroy,
    .insert = opt_insert,
    .remove = opt_remove,
    .access = opt_access,
    .victim = opt_victim,
    .count = opt_count,
    .rotate = opt_rotate,
};
