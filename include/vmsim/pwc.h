/*
 * vmsim/pwc.h — page-walk caches (Intel's "paging-structure caches", SDM Vol. 3A
 * §4.10.3): small caches of upper-level paging-structure entries that let a walk skip
 * levels.
 *
 * A level-L cache holds level-L entries that point to tables (never leaves): the PDE
 * cache (L = 2) maps VA[47:21] to the physical address of a page table, the PDPTE cache
 * (L = 3) maps VA[47:30] to a page directory, the PML4E cache (L = 4) maps VA[47:39]
 * to a PDPT, and with 5-level paging the PML5E cache (L = 5) maps VA[56:48] to a PML4
 * table (VA bits up to 56 then take part in every tag). Each entry also carries the
 * rights combined over the levels above and including it (RW and US ANDed, XD ORed), as
 * the SDM specifies, and is tagged with its context (vms_ctx: VM and PCID/ASID).
 * Entries are not global.
 *
 * A walk asks for the deepest level cached for its address (PDE first) and continues
 * below it. Invalidation follows the SDM: INVLPG and single-address INVPCID drop all
 * entries of the PCID concerned (not only those for the address); CR3 loads that flush
 * and single-context INVPCID drop a PCID's entries; the all-context forms drop all.
 */
#ifndef VMSIM_PWC_H
#define VMSIM_PWC_H

#include "vmsim/common.h"

typedef struct vms_pwc vms_pwc;

/* Geometry of one level's cache; entries 0 means no cache for that level. */
typedef struct vms_pwc_level_config {
    unsigned entries;   /* total entries; must be a multiple of ways */
    unsigned ways;      /* ways per set; ways == entries is fully associative */
    const char *policy; /* replacement policy name (repl.h); NULL means "lru" */
} vms_pwc_level_config;

typedef struct vms_pwc_config {
    vms_pwc_level_config level[6]; /* indexed by SDM level; only 2..5 are used */
} vms_pwc_config;

/* What a PWC entry gives a walk. */
typedef struct vms_pwc_entry {
    uint64_t table_pa;  /* physical address of the next-lower table */
    uint8_t rw, us, xd; /* combined rights of the levels down to and including this one */
} vms_pwc_entry;

typedef struct vms_pwc_stats {
    uint64_t lookups;
    uint64_t hits[6]; /* by level of the entry found */
    uint64_t misses;  /* lookups that found no level */
    uint64_t fills;
    uint64_t invalidations; /* entries dropped by invalidation */
} vms_pwc_stats;

/*
 * Create page-walk caches for a walker using `levels` (3, 4 or 5) paging levels. Validates
 * the geometry (VMS_ERR_INVAL names the level and what was wrong). seed drives "random".
 */
vms_status vms_pwc_create(const vms_allocator *a, const vms_pwc_config *cfg, unsigned levels,
                          uint64_t seed, vms_pwc **out, vms_err *err);
void vms_pwc_destroy(vms_pwc *pwc);

/*
 * The deepest cached entry for (ctx, va): returns its level (2 … 5) and fills *out, or
 * returns 0 on a miss. Updates replacement state and stats. Never allocates.
 */
unsigned vms_pwc_lookup(vms_pwc *pwc, vms_ctx ctx, uint64_t va, vms_pwc_entry *out);

/*
 * Turn the lookup's and fill's shortcuts on (the default) or off. On, a level answers a
 * lookup of the key and context it touched last without scanning its set (and without
 * a touch that would change nothing), and a PWC with no observer tests one word for it.
 * The results (hits, entries, replacement state, counters) are identical by
 * construction; tests run the same stream both ways and compare.
 */
void vms_pwc_set_fast(vms_pwc *pwc, bool on);

/* Remember the level-`level` entry used for va (a no-op when that level has no cache). */
void vms_pwc_fill(vms_pwc *pwc, vms_ctx ctx, uint64_t va, unsigned level, const vms_pwc_entry *e);

/* Drop every entry of context ctx (a PCID/ASID of the host, or of a VM). */
void vms_pwc_flush_pcid(vms_pwc *pwc, vms_ctx ctx);

/* Drop every entry. */
void vms_pwc_flush_all(vms_pwc *pwc);

/* Number of valid entries at a level (for invariant checks and display). */
unsigned vms_pwc_count(const vms_pwc *pwc, unsigned level);

const vms_pwc_stats *vms_pwc_get_stats(const vms_pwc *pwc);

/* Check internal invariants (valid counts, entries in their sets, no duplicate tags,
 * none global, hits + misses == lookups). True when they hold; tests call it after
 * every step. */
bool vms_pwc_check(const vms_pwc *pwc);

#endif
