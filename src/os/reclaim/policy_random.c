/*
 * policy_random.c — random page replacement: evict a resident page chosen uniformly by
 * the seeded generator (vms_rng, xoshiro256**), so a run is repeatable from its seed.
 *
 * Exact semantics (tests replay them with a naive model sharing the generator): the
 * resident pages sit in an array in which a new page is appended; a removed or evicted
 * page's slot is filled by the last one (swap-remove). The victim is
 * slots[vms_rng_below(rng, n)] — one draw per victim() call.
 *
 * Cost: O(1) per operation.
 */
#include "os/reclaim/policy_impl.h"

typedef struct rnd {
    vmsi_ppool pool; /* node.aux = index in slots */
    uint32_t *slots; /* node indices of resident pages */
    uint32_t nslots, cap;
    vms_rng rng;
} rnd;

/* Free an instance (NULL allowed). */
static void rnd_destroy(void *state)
{
    rnd *r = state;
    if (!r)
        return;
    const vms_allocator *a = r->pool.a;
    vmsi_free(a, r->slots, (size_t)r->cap * sizeof *r->slots);
    vmsi_ppool_free(&r->pool);
    vmsi_free(a, r, sizeof *r);
}

/* Create an empty instance drawing from a generator seeded with `seed`. */
static vms_status rnd_create(const vms_allocator *a, size_t capacity, uint64_t seed, void **state,
                             vms_err *err)
{
    rnd *r = vmsi_zalloc(a, sizeof *r);
    if (!r)
        return vmsi_err(err, VMS_ERR_NOMEM, "out of memory creating policy random");
    vms_status st = vmsi_ppool_init(&r->pool, a, capacity, err);
    if (st == VMS_OK && !vmsi_grow_u32(a, &r->slots, &r->cap, r->pool.cap))
        st = vmsi_err(err, VMS_ERR_NOMEM, "out of memory creating policy random");
    if (st != VMS_OK) {
        r->pool.a = a;
        rnd_destroy(r);
        return st;
    }
    vms_rng_seed(&r->rng, seed);
    *state = r;
    return VMS_OK;
}

/* A page arrived: append it to the slots. */
static vms_status rnd_insert(void *state, uint64_t page)
{
    rnd *r = state;
    if (!vmsi_grow_u32(r->pool.a, &r->slots, &r->cap, r->nslots + 1))
        return VMS_ERR_NOMEM;
    uint32_t i;
    vms_status st = vmsi_ppool_add(&r->pool, page, &i);
    if (st != VMS_OK)
        return st;
    r->pool.nodes[i].aux = r->nslots;
    r->slots[r->nslots++] = i;
    return VMS_OK;
}

/* Drop node i: the last slot fills its hole. */
static void drop(rnd *r, uint32_t i)
{
    uint32_t k = r->pool.nodes[i].aux, last = r->slots[--r->nslots];
    r->slots[k] = last;
    r->pool.nodes[last].aux = k;
    vmsi_ppool_del(&r->pool, i);
}

/* A page left other than by eviction. */
static void rnd_remove(void *state, uint64_t page)
{
    rnd *r = state;
    uint32_t i = vmsi_ppool_find(&r->pool, page);
    if (i != VMSI_NIL)
        drop(r, i);
}

/* Evict a uniformly chosen resident page. */
static bool rnd_victim(void *state, const vms_policy_host *host, uint64_t *page)
{
    (void)host;
    rnd *r = state;
    if (r->nslots == 0)
        return false;
    uint32_t i = r->slots[vms_rng_below(&r->rng, r->nslots)];
    *page = r->pool.nodes[i].page;
    drop(r, i);
    return true;
}

/* Resident pages tracked. */
static size_t rnd_count(const void *state)
{
    return ((const rnd *)state)->nslots;
}

const vms_page_policy vmsi_ppol_random = {
    .name = "random",
    .desc = "evict a uniformly random resident page (seeded, repeatable)",
    .flags = 0,
    .create = rnd_create,
    .destroy = rnd_destroy,
    .insert = rnd_insert,
    .remove = rnd_remove,
    .access = NULL,
    .victim = rnd_victim,
    .count = rnd_count,
};
