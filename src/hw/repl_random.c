/*
 * repl_random.c — uniformly random replacement, drawn from the cache's seeded
 * generator (so the same seed gives the same evictions). Keeps no per-set state.
 */
#include <assert.h>

#include "vmsim/repl.h"

/* No state. */
static size_t random_state_bytes(unsigned ways)
{
    (void)ways;
    return 0;
}

static void random_reset(uint8_t *state, unsigned ways)
{
    (void)state;
    (void)ways;
}

static void random_touch(uint8_t *state, unsigned ways, unsigned way, bool hit)
{
    (void)state;
    (void)ways;
    (void)way;
    (void)hit;
}

/* A uniform way in [0, ways) from rng (required). */
static unsigned random_victim(uint8_t *state, unsigned ways, vms_rng *rng)
{
    (void)state;
    assert(rng);
    return (unsigned)vms_rng_below(rng, ways);
}

const vms_repl_policy vmsi_repl_random = {"random", random_state_bytes, random_reset, random_touch,
                                          random_victim};
