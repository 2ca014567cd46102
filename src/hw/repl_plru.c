/*
 * repl_plru.c — bit-PLRU, also called MRU-bits or "not recently used" (Malamy et al.,
 * US patent 5,353,425; the scheme used where tree-PLRU needs a power of two).
 *
 * State: one MRU bit per way, packed little-endian into (ways+7)/8 bytes. A touch sets
 * the way's bit; when that would make every bit 1, all other bits are cleared so the
 * set always keeps at least one candidate. The victim is the lowest-numbered way whose
 * bit is 0. Works for any way count (e.g. 12), unlike tree-PLRU.
 */
#include <assert.h>

#include "vmsim/repl.h"

/* One bit per way, rounded up to whole bytes. */
static size_t plru_state_bytes(unsigned ways)
{
    return (ways + 7u) / 8u;
}

/* All MRU bits clear: every way is an equal candidate. */
static void plru_reset(uint8_t *state, unsigned ways)
{
    for (size_t i = 0; i < plru_state_bytes(ways); i++)
        state[i] = 0;
}

/* The MRU bit of way. */
static bool bit(const uint8_t *state, unsigned way)
{
    return (state[way / 8u] >> (way % 8u)) & 1u;
}

/* True when every way's MRU bit is set. */
static bool all_set(const uint8_t *state, unsigned ways)
{
    for (unsigned i = 0; i < ways; i++)
        if (!bit(state, i))
            return false;
    return true;
}

/* Set way's MRU bit; if that fills the set, clear every other bit. */
static void plru_touch(uint8_t *state, unsigned ways, unsigned way, bool hit)
{
    (void)hit;
    state[way / 8u] |= (uint8_t)(1u << (way % 8u));
    if (all_set(state, ways)) {
        plru_reset(state, ways);
        state[way / 8u] |= (uint8_t)(1u << (way % 8u));
    }
}

/* The lowest way whose MRU bit is clear (one always is, see plru_touch). */
static unsigned plru_victim(uint8_t *state, unsigned ways, vms_rng *rng)
{
    (void)rng;
    for (unsigned i = 0; i < ways; i++)
        if (!bit(state, i))
            return i;
    assert(ways == 1); /* a 1-way set has its only bit set after any touch */
    return 0;
}

const vms_repl_policy vmsi_repl_plru = {"plru", plru_state_bytes, plru_reset, plru_touch,
                                        plru_victim};
