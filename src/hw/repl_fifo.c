/*
 * repl_fifo.c — first-in first-out: the victim is the way filled longest ago.
 *
 * State: one byte per way, its fill rank. The ranks of a set are always a permutation
 * of 0 … ways-1; rank 0 is the way filled last and rank ways-1 the one filled first,
 * which is the victim. A fill moves the way to rank 0 and ages every way filled after
 * it by one; hits change nothing (FIFO ignores use). The cache fills invalid ways first
 * (lowest first) and asks for a victim only when every way is valid, so every way's
 * rank then dates its current entry: the order is the order of insertion whatever
 * invalidations (INVLPG, a flush by PCID) emptied ways in between. A round-robin pointer
 * is not: refilling a hole moved the pointer past it and scrambled the order. The cache
 * reports an in-place update of an existing entry as a hit, so an update does not make
 * the entry young. Up to 8 ways the same bytes hold the order matrix of repl_impl.h
 * instead, touched on fills only (the same victims).
 */
#include <assert.h>

#include "hw/repl_impl.h"
#include "vmsim/repl.h"

/* One rank byte per way (ranks fit a byte because ways <= VMS_REPL_MAX_WAYS = 256). */
static size_t fifo_state_bytes(unsigned ways)
{
    return ways;
}

/* Way i gets rank i: in an empty set way ways-1 counts as the oldest fill. */
static void fifo_reset(uint8_t *state, unsigned ways)
{
    if (ways <= VMSI_REPL_MAT_WAYS) {
        vmsi_repl_mat_reset(state, ways);
        return;
    }
    for (unsigned i = 0; i < ways; i++)
        state[i] = (uint8_t)i;
}

/* A fill of `way` makes it the youngest; hits change nothing. */
static void fifo_touch(uint8_t *state, unsigned ways, unsigned way, bool hit)
{
    if (hit)
        return;
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

/* The way with the largest rank (ways-1): the first filled. */
static unsigned fifo_victim(uint8_t *state, unsigned ways, vms_rng *rng)
{
    (void)rng;
    if (ways <= VMSI_REPL_MAT_WAYS)
        return vmsi_repl_mat_victim(state, ways);
    for (unsigned i = 0; i < ways; i++)
        if (state[i] == ways - 1)
            return i;
    assert(false && "fifo: ranks are not a permutation");
    return 0;
}

const vms_repl_policy vmsi_repl_fifo = {"fifo", fifo_state_bytes, fifo_reset, fifo_touch,
                                        fifo_victim};
