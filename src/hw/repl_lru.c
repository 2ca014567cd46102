/*
 * repl_lru.c — exact least-recently-used replacement by age ranks.
 *
 * State: one byte per way, its age rank. The ranks of a set are always a permutation
 * of 0 … ways-1; rank 0 is the most recently used way and rank ways-1 the least
 * recently used, which is the victim. A touch (hit or fill alike) moves the way to
 * rank 0 and ages every way that was younger than it by one. O(ways) per touch, which
 * for the ≤ 64-way caches modelled here beats a linked list on cache behaviour. Up to
 * 8 ways the same bytes hold the order matrix of repl_impl.h instead (O(1) in words;
 * the same victims), which the set-associative array also handles inline (assoc.h).
 */
#include <assert.h>

#include "hw/repl_impl.h"
#include "vmsim/repl.h"

/* One rank byte per way (ranks fit a byte because ways <= VMS_REPL_MAX_WAYS = 256). */
static size_t lru_state_bytes(unsigned ways)
{
    return ways;
}

/* Way i gets rank i: way ways-1 starts as the least recently used. */
static void lru_reset(uint8_t *state, unsigned ways)
{
    if (ways <= VMSI_REPL_MAT_WAYS) {
        vmsi_repl_mat_reset(state, ways);
        return;
    }
    for (unsigned i = 0; i < ways; i++)
        state[i] = (uint8_t)i;
}

/* Make `way` the most recently used; hits and fills are treated alike. */
static void lru_touch(uint8_t *state, unsigned ways, unsigned way, bool hit)
{
    (void)hit;
    if (ways <= VMSI_REPL_MAT_WAYS) {
        vmsi_repl_mat_touch(state, ways, way);
        return;
    }
    uint8_t r = state[way];
    for (unsigned i = 0; i < ways; i++)
        if (state[i] < r)
            state[i]++;
    state[way] = 0;
}

/* The way with the largest rank (ways-1): the least recently used. */
static unsigned lru_victim(uint8_t *state, unsigned ways, vms_rng *rng)
{
    (void)rng;
    if (ways <= VMSI_REPL_MAT_WAYS)
        return vmsi_repl_mat_victim(state, ways);
    for (unsigned i = 0; i < ways; i++)
        if (state[i] == ways - 1)
            return i;
    assert(false && "lru: ranks are not a permutation");
    return 0;
}

const vms_repl_policy vmsi_repl_lru = {"lru", lru_state_bytes, lru_reset, lru_touch, lru_victim};
