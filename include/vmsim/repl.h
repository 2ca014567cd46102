/*
 * vmsim/repl.h — replacement policies for set-associative hardware caches (TLBs, page-
 * walk caches, IOTLBs), as plug-ins.
 *
 * A policy keeps `state_bytes(ways)` bytes of state per set and answers three calls.
 * Invalid ways are always filled first by the cache itself; the policy chooses only
 * among valid ways. Adding a policy: write one file in src/hw/ with a const
 * vms_repl_policy and add one line to the table in src/hw/repl.c.
 *
 * Built in: "lru" (exact, age ranks), "plru" (bit-PLRU / MRU bits: works for any number
 * of ways, e.g. 12), "fifo" (insertion order per set), "random" (seeded).
 */
#ifndef VMSIM_REPL_H
#define VMSIM_REPL_H

#include "vmsim/common.h"
#include "vmsim/rng.h"

/* Largest way count a policy must handle (state such as LRU ranks fits a byte). */
#define VMS_REPL_MAX_WAYS 256

typedef struct vms_repl_policy {
    const char *name;
    /* Bytes of state one set needs for `ways` ways. */
    size_t (*state_bytes)(unsigned ways);
    /* Put a set's state in its initial condition (all ways invalid/oldest). */
    void (*reset)(uint8_t *state, unsigned ways);
    /* Way `way` was just hit (hit = true) or filled (hit = false). Must be idempotent:
     * a hit on the way that was touched last (hit or fill) leaves the state unchanged —
     * the TLB's repeat memo relies on it, and test_repl checks it for every policy. */
    void (*touch)(uint8_t *state, unsigned ways, unsigned way, bool hit);
    /* Choose the way to evict from a full set. */
    unsigned (*victim)(uint8_t *state, unsigned ways, vms_rng *rng);
} vms_repl_policy;

/* The built-in policy named `name`, or NULL. */
const vms_repl_policy *vms_repl_find(const char *name);

/* Number of built-in policies and the i-th, for listings and --help. */
unsigned vms_repl_count(void);
const vms_repl_policy *vms_repl_get(unsigned i);

#endif
