/*
 * repl_fifo.c — first-in first-out as a round-robin pointer per set.
 *
 * State: one byte, the next way to evict. A fill of way w moves the pointer to w+1
 * (mod ways), so after the cache fills its invalid ways in order the oldest fill is
 * evicted first; hits do not move it (FIFO ignores use). The cache reports an in-place
 * update of an existing entry as a hit, so an update does not make the entry young.
 */
#include "vmsim/repl.h"

/* One byte: the round-robin pointer (ways <= 256). */
static size_t fifo_state_bytes(unsigned ways)
{
    (void)ways;
    return 1;
}

/* The pointer starts at way 0. */
static void fifo_reset(uint8_t *state, unsigned ways)
{
    (void)ways;
    state[0] = 0;
}

/* A fill of `way` makes the way after it the next victim; hits change nothing. */
static void fifo_touch(uint8_t *state, unsigned ways, unsigned way, bool hit)
{
    if (!hit)
        state[0] = (uint8_t)((way + 1u) % ways);
}

/* The way the pointer names. */
static unsigned fifo_victim(uint8_t *state, unsigned ways, vms_rng *rng)
{
    (void)rng;
    return state[0] % ways;
}

const vms_repl_policy vmsi_repl_fifo = {"fifo", fifo_state_bytes, fifo_reset, fifo_touch,
                                        fifo_victim};
