/*
 * repl_impl.h — the order matrix that exact LRU (repl_lru.c) and FIFO (repl_fifo.c) keep
 * for sets of up to 8 ways, inline so that the set-associative array (assoc.h) touches
 * and picks victims without a call.
 *
 * State: one byte per way (state_bytes(ways) == ways, as with the ranks kept above 8
 * ways). Byte i is row i of the order matrix: bit j is set when way i was touched more
 * recently than way j. A touch of way w clears column w in every row and sets row w to
 * every other way; the least recent way is the one whose row is zero, and exactly one
 * row is (the rows describe a total order). O(1) in words, against O(ways) for ranks.
 * Reset: row i = the ways above i, so that the last way is the oldest (as the ranks).
 * LRU touches on hits and fills, FIFO on fills only; both answer exactly as the ranks.
 */
#ifndef VMSIM_HW_REPL_IMPL_H
#define VMSIM_HW_REPL_IMPL_H

#include <string.h>

#include "vmsim/common.h"

#define VMSI_REPL_MAT_WAYS 8u /* the matrix is used up to this many ways */

/* The rows of a set as one word (byte i = row i; bytes from ways on are zero). */
static inline uint64_t vmsi_repl_mat_load(const uint8_t *s, unsigned ways)
{
    uint64_t v = 0;
    if (ways == 8) {
        memcpy(&v, s, 8);
    } else if (ways == 4) {
        uint32_t x;
        memcpy(&x, s, 4);
        v = x;
    } else {
        for (unsigned i = 0; i < ways; i++)
            v |= (uint64_t)s[i] << (8 * i);
    }
    return v;
}

static inline void vmsi_repl_mat_store(uint8_t *s, unsigned ways, uint64_t v)
{
    if (ways == 8) {
        memcpy(s, &v, 8);
    } else if (ways == 4) {
        uint32_t x = (uint32_t)v;
        memcpy(s, &x, 4);
    } else {
        for (unsigned i = 0; i < ways; i++)
            s[i] = (uint8_t)(v >> (8 * i));
    }
}

static inline void vmsi_repl_mat_reset(uint8_t *s, unsigned ways)
{
    uint64_t v = 0;
    unsigned all = (1u << ways) - 1;
    for (unsigned i = 0; i < ways; i++)
        v |= (uint64_t)(all & ~((2u << i) - 1)) << (8 * i);
    vmsi_repl_mat_store(s, ways, v);
}

static inline void vmsi_repl_mat_touch(uint8_t *s, unsigned ways, unsigned way)
{
    uint64_t v = vmsi_repl_mat_load(s, ways);
    v &= ~(UINT64_C(0x0101010101010101) << way);                     /* column way */
    v |= (uint64_t)(((1u << ways) - 1) & ~(1u << way)) << (8 * way); /* row way */
    vmsi_repl_mat_store(s, ways, v);
}

/* The least recent way: the lowest zero byte (the rows beyond ways are zero too, but the
 * zero row below them comes first). */
static inline unsigned vmsi_repl_mat_victim(const uint8_t *s, unsigned ways)
{
    uint64_t v = vmsi_repl_mat_load(s, ways);
    uint64_t z = (v - UINT64_C(0x0101010101010101)) & ~v & UINT64_C(0x8080808080808080);
    return (unsigned)__builtin_ctzll(z) >> 3;
}

#endif
