/*
 * policy_core.c — the data structures under every page-replacement policy: a u64 -> u32
 * hash map (open addressing with linear probing; deletion shifts the following run back
 * instead of leaving tombstones, Knuth TAOCP vol. 3 §6.4 algorithm R), a pool of page
 * nodes addressed by index, and intrusive doubly linked lists of nodes.
 *
 * Invariants: the map has at most half its slots in use, so probes stay short; every
 * key sits in the run that starts at its home slot; pool nodes below `used` are either
 * in the map (in use) or on the free list.
 */
#include <assert.h>

#include "os/reclaim/policy_impl.h"

/* Fibonacci hashing of a 64-bit key onto the map's slots (Knuth §6.4, multiplicative). */
static inline size_t home(const vmsi_u64map *m, uint64_t key)
{
    uint64_t h = key * UINT64_C(0x9E3779B97F4A7C15);
    return (size_t)(h ^ (h >> 29)) & m->mask;
}

/* Allocate arrays for `slots` slots (a power of two) into m; false on NOMEM. */
static bool alloc_slots(vmsi_u64map *m, size_t slots)
{
    uint64_t *keys = vmsi_calloc(m->a, slots, sizeof *keys);
    uint32_t *vals = vmsi_calloc(m->a, slots, sizeof *vals);
    if (!keys || !vals) {
        vmsi_free(m->a, keys, slots * sizeof *keys);
        vmsi_free(m->a, vals, slots * sizeof *vals);
        return false;
    }
    memset(vals, 0xff, slots * sizeof *vals); /* all VMSI_NIL: empty */
    m->keys = keys;
    m->vals = vals;
    m->mask = slots - 1;
    return true;
}

/* Smallest power of two >= 2 * n, at least 16. */
static size_t slots_for(size_t n)
{
    size_t s = 16;
    while (s < 2 * n)
        s *= 2;
    return s;
}

vms_status vmsi_u64map_init(vmsi_u64map *m, const vms_allocator *a, size_t hint)
{
    memset(m, 0, sizeof *m);
    m->a = a;
    return alloc_slots(m, slots_for(hint)) ? VMS_OK : VMS_ERR_NOMEM;
}

void vmsi_u64map_free(vmsi_u64map *m)
{
    if (m->keys) {
        vmsi_free(m->a, m->keys, (m->mask + 1) * sizeof *m->keys);
        vmsi_free(m->a, m->vals, (m->mask + 1) * sizeof *m->vals);
    }
    m->keys = NULL;
    m->vals = NULL;
    m->count = 0;
}

/* Slot holding key, or the empty slot where it would go. */
static size_t probe(const vmsi_u64map *m, uint64_t key)
{
    size_t i = home(m, key);
    while (m->vals[i] != VMSI_NIL && m->keys[i] != key)
        i = (i + 1) & m->mask;
    return i;
}

uint32_t vmsi_u64map_get(const vmsi_u64map *m, uint64_t key)
{
    return m->vals[probe(m, key)];
}

/* Rehash into twice the slots; false (map unchanged) on NOMEM. */
static bool grow(vmsi_u64map *m)
{
    vmsi_u64map old = *m;
    if (!alloc_slots(m, (old.mask + 1) * 2)) {
        *m = old;
        return false;
    }
    for (size_t i = 0; i <= old.mask; i++) {
        if (old.vals[i] == VMSI_NIL)
            continue;
        size_t j = probe(m, old.keys[i]);
        m->keys[j] = old.keys[i];
        m->vals[j] = old.vals[i];
    }
    vmsi_u64map_free(&old);
    return true;
}

vms_status vmsi_u64map_put(vmsi_u64map *m, uint64_t key, uint32_t val)
{
    assert(val != VMSI_NIL);
    size_t i = probe(m, key);
    if (m->vals[i] == VMSI_NIL) {
        if (2 * (m->count + 1) > m->mask + 1) {
            if (!grow(m))
                return VMS_ERR_NOMEM;
            i = probe(m, key);
        }
        m->count++;
        m->keys[i] = key;
    }
    m->vals[i] = val;
    return VMS_OK;
}

uint32_t vmsi_u64map_del(vmsi_u64map *m, uint64_t key)
{
    size_t i = probe(m, key);
    uint32_t val = m->vals[i];
    if (val == VMSI_NIL)
        return VMSI_NIL;
    /* Backward shift: move later members of the run into the hole when their home slot
     * does not lie cyclically in (hole, j]. */
    for (size_t j = (i + 1) & m->mask; m->vals[j] != VMSI_NIL; j = (j + 1) & m->mask) {
        size_t h = home(m, m->keys[j]);
        bool stays = (i <= j) ? (i < h && h <= j) : (i < h || h <= j);
        if (stays)
            continue;
        m->keys[i] = m->keys[j];
        m->vals[i] = m->vals[j];
        i = j;
    }
    m->vals[i] = VMSI_NIL;
    m->count--;
    return val;
}

/* ---- page node pool ----------------------------------------------------------------- */

vms_status vmsi_ppool_init(vmsi_ppool *p, const vms_allocator *a, size_t capacity, vms_err *err)
{
    memset(p, 0, sizeof *p);
    p->a = a;
    p->freelist = VMSI_NIL;
    if (capacity > VMSI_MAX_PAGES)
        return vmsi_err(err, VMS_ERR_INVAL, "page policy capacity %zu exceeds %u pages", capacity,
                        VMSI_MAX_PAGES);
    if (capacity == 0)
        capacity = 1;
    p->nodes = vmsi_calloc(a, capacity, sizeof *p->nodes);
    p->cap = p->nodes ? (uint32_t)capacity : 0; /* before any free: sizes must match */
    /* The map starts small: the kernel's ids (frame numbers) all go to the direct index. */
    if (!p->nodes || vmsi_u64map_init(&p->map, a, 0) != VMS_OK) {
        vmsi_ppool_free(p);
        return vmsi_err(err, VMS_ERR_NOMEM, "out of memory creating a page policy for %zu pages",
                        capacity);
    }
    return VMS_OK;
}

void vmsi_ppool_free(vmsi_ppool *p)
{
    vmsi_free(p->a, p->nodes, (size_t)p->cap * sizeof *p->nodes);
    p->nodes = NULL;
    p->cap = p->used = p->count = 0;
    vmsi_u64map_free(&p->map);
    for (uint64_t i = 0, v; vmsi_radix_next(&p->dense, &i, &v); i++)
        vmsi_free(p->a, (void *)(uintptr_t)v, sizeof(vmsi_dleaf));
    vmsi_radix_free(&p->dense, p->a);
    p->last_leaf = NULL;
}

/* Index page -> i (i != VMSI_NIL; page not indexed yet). VMS_ERR_NOMEM: nothing changed. */
static vms_status index_put(vmsi_ppool *p, uint64_t page, uint32_t i)
{
    if (page >= VMSI_DENSE_LIMIT)
        return vmsi_u64map_put(&p->map, page, i);
    uint64_t li = page >> VMSI_DLEAF_SHIFT;
    vmsi_dleaf *l = vmsi_ppool_leaf(p, li);
    if (!l) {
        l = p->a->realloc(p->a->ud, NULL, 0, sizeof *l);
        if (!l)
            return VMS_ERR_NOMEM;
        l->used = 0;
        memset(l->idx, 0xff, sizeof l->idx); /* all VMSI_NIL */
        if (vmsi_radix_set(&p->dense, p->a, li, (uint64_t)(uintptr_t)l) != VMS_OK) {
            vmsi_free(p->a, l, sizeof *l);
            return VMS_ERR_NOMEM;
        }
    }
    l->idx[page & (VMSI_DLEAF - 1)] = i;
    l->used++;
    p->last_leaf = l;
    p->last_li = li;
    return VMS_OK;
}

/* Forget page's index entry; returns the node it named (VMSI_NIL if none). A leaf goes
 * with its last entry (removing from the radix never allocates). */
static uint32_t index_del(vmsi_ppool *p, uint64_t page)
{
    if (page >= VMSI_DENSE_LIMIT)
        return vmsi_u64map_del(&p->map, page);
    uint64_t li = page >> VMSI_DLEAF_SHIFT;
    vmsi_dleaf *l = vmsi_ppool_leaf(p, li);
    uint32_t *e = l ? &l->idx[page & (VMSI_DLEAF - 1)] : NULL;
    if (!e || *e == VMSI_NIL)
        return VMSI_NIL;
    uint32_t got = *e;
    *e = VMSI_NIL;
    p->last_leaf = l;
    p->last_li = li;
    if (--l->used == 0) {
        vmsi_radix_set(&p->dense, p->a, li, 0);
        vmsi_free(p->a, l, sizeof *l);
        p->last_leaf = NULL; /* freed: a later leaf li is a new one */
    }
    return got;
}

/* Make room for one more node beyond `used`; false on NOMEM or at the index limit. */
static bool reserve_node(vmsi_ppool *p)
{
    if (p->used < p->cap)
        return true;
    if (p->cap >= VMSI_MAX_PAGES)
        return false;
    /* Grow by an eighth (at least 16): the slack stays ~3 bytes a page (issue 11 item 4);
     * realloc's copies cost ~8 node moves per node over the pool's life. */
    uint32_t step = p->cap / 8 > 16 ? p->cap / 8 : 16;
    uint32_t ncap = p->cap > VMSI_MAX_PAGES - step ? VMSI_MAX_PAGES : p->cap + step;
    vmsi_pnode *n =
        p->a->realloc(p->a->ud, p->nodes, (size_t)p->cap * sizeof *n, (size_t)ncap * sizeof *n);
    if (!n)
        return false;
    p->nodes = n;
    p->cap = ncap;
    return true;
}

vms_status vmsi_ppool_add(vmsi_ppool *p, uint64_t page, uint32_t *idx)
{
    if (vmsi_ppool_find(p, page) != VMSI_NIL)
        return VMS_ERR_EXISTS;
    if (p->freelist == VMSI_NIL && !reserve_node(p))
        return VMS_ERR_NOMEM;
    uint32_t i = p->freelist != VMSI_NIL ? p->freelist : p->used;
    if (index_put(p, page, i) != VMS_OK)
        return VMS_ERR_NOMEM;
    if (i == p->freelist)
        p->freelist = p->nodes[i].next;
    else
        p->used++;
    p->nodes[i] = (vmsi_pnode){.page = page, .prev = VMSI_NIL, .next = VMSI_NIL};
    p->count++;
    *idx = i;
    return VMS_OK;
}

void vmsi_ppool_del(vmsi_ppool *p, uint32_t idx)
{
    assert(idx < p->used && p->count > 0);
    uint32_t got = index_del(p, p->nodes[idx].page);
    assert(got == idx);
    (void)got;
    p->nodes[idx].next = p->freelist;
    p->freelist = idx;
    p->count--;
}

/* ---- intrusive lists ------------------------------------------------------------------ */

void vmsi_plist_push_tail(vmsi_pnode *nodes, vmsi_plist *l, uint32_t i)
{
    nodes[i].prev = l->tail;
    nodes[i].next = VMSI_NIL;
    if (l->tail != VMSI_NIL)
        nodes[l->tail].next = i;
    else
        l->head = i;
    l->tail = i;
    l->n++;
}

void vmsi_plist_push_head(vmsi_pnode *nodes, vmsi_plist *l, uint32_t i)
{
    nodes[i].next = l->head;
    nodes[i].prev = VMSI_NIL;
    if (l->head != VMSI_NIL)
        nodes[l->head].prev = i;
    else
        l->tail = i;
    l->head = i;
    l->n++;
}

void vmsi_plist_unlink(vmsi_pnode *nodes, vmsi_plist *l, uint32_t i)
{
    assert(l->n > 0);
    uint32_t p = nodes[i].prev, n = nodes[i].next;
    if (p != VMSI_NIL)
        nodes[p].next = n;
    else
        l->head = n;
    if (n != VMSI_NIL)
        nodes[n].prev = p;
    else
        l->tail = p;
    nodes[i].prev = nodes[i].next = VMSI_NIL;
    l->n--;
}

bool vmsi_plist_check(const vmsi_pnode *nodes, const vmsi_plist *l)
{
    uint32_t n = 0, prev = VMSI_NIL;
    for (uint32_t i = l->head; i != VMSI_NIL; i = nodes[i].next) {
        if (nodes[i].prev != prev || ++n > l->n)
            return false;
        prev = i;
    }
    return n == l->n && l->tail == prev;
}

/* ---- one-list policies ------------------------------------------------------------- */

vms_status vmsi_qpol_create(const vms_allocator *a, size_t capacity, uint64_t seed, void **state,
                            vms_err *err)
{
    (void)seed;
    vmsi_qpol *q = vmsi_zalloc(a, sizeof *q);
    if (!q)
        return vmsi_err(err, VMS_ERR_NOMEM, "out of memory creating a page policy");
    vms_status st = vmsi_ppool_init(&q->pool, a, capacity, err);
    if (st != VMS_OK) {
        vmsi_free(a, q, sizeof *q);
        return st;
    }
    vmsi_plist_init(&q->list);
    *state = q;
    return VMS_OK;
}

void vmsi_qpol_destroy(void *state)
{
    vmsi_qpol *q = state;
    if (!q)
        return;
    const vms_allocator *a = q->pool.a;
    vmsi_ppool_free(&q->pool);
    vmsi_free(a, q, sizeof *q);
}

vms_status vmsi_qpol_insert(void *state, uint64_t page)
{
    vmsi_qpol *q = state;
    uint32_t i;
    vms_status st = vmsi_ppool_add(&q->pool, page, &i);
    if (st == VMS_OK)
        vmsi_plist_push_tail(q->pool.nodes, &q->list, i);
    return st;
}

void vmsi_qpol_remove(void *state, uint64_t page)
{
    vmsi_qpol *q = state;
    uint32_t i = vmsi_ppool_find(&q->pool, page);
    if (i == VMSI_NIL)
        return;
    vmsi_plist_unlink(q->pool.nodes, &q->list, i);
    vmsi_ppool_del(&q->pool, i);
}

size_t vmsi_qpol_count(const void *state)
{
    return ((const vmsi_qpol *)state)->pool.count;
}

bool vmsi_qpol_pop_head(vmsi_qpol *q, uint64_t *page)
{
    uint32_t i = q->list.head;
    if (i == VMSI_NIL)
        return false;
    *page = q->pool.nodes[i].page;
    vmsi_plist_unlink(q->pool.nodes, &q->list, i);
    vmsi_ppool_del(&q->pool, i);
    return true;
}

bool vmsi_grow_u32(const vms_allocator *a, uint32_t **arr, uint32_t *cap, uint32_t need)
{
    if (need <= *cap)
        return true;
    uint32_t ncap = *cap ? *cap : 1;
    while (ncap < need)
        ncap = ncap > UINT32_MAX / 2 ? UINT32_MAX : ncap * 2;
    uint32_t *n = a->realloc(a->ud, *arr, (size_t)*cap * sizeof *n, (size_t)ncap * sizeof *n);
    if (!n)
        return false;
    *arr = n;
    *cap = ncap;
    return true;
}
