/*
 * vmsim/cache.h — data caches below the MMU: one cache level (vms_cache), the hierarchy
 * a machine builds from a vms_cache_config (per core L1d, L1i and L2, one shared LLC),
 * and the counters they keep. docs/CACHES.md describes the model and its limits.
 *
 *   core ─ data ──► L1d ─┐                 ┌─► LLC (shared) ─► memory: DRAM (dram.h)
 *        ─ fetch ─► L1i ─┴─► L2 (private) ─┘                   or a flat latency
 *        ─ walk ──► L1d, or L2 (cache.walk = l2)
 *
 * Every level is physically indexed and tagged, set-associative with any number of sets
 * and 1 … VMS_REPL_MAX_WAYS ways, write-back and write-allocate, and uses a replacement
 * policy of the TLBs' registry (repl.h: lru, plru, fifo, random). An L1 is VIPT on real
 * cores: its index must come from the page offset, so sets × line <= 4096 (checked by
 * vms_cache_validate). A level's latency is its load-to-use latency from the core
 * (a hit in L2 costs l2.latency, not l1d.latency + l2.latency); a miss in every level
 * costs llc.latency plus the memory's latency.
 *
 * Bytes: caches hold tags and state, not data. RAM holds the CPU's view of memory (as
 * the caches of one coherent machine would show it); what DRAM holds apart from that —
 * only a non-coherent DMA can see the difference — is kept per line by the hierarchy
 * (docs/CACHES.md, "coherence").
 */
#ifndef VMSIM_CACHE_H
#define VMSIM_CACHE_H

#include "vmsim/repl.h"
#include "vmsim/strbuf.h"

#define VMS_CACHE_MAX_SETS (UINT32_C(1) << 20)

/* One level's geometry. size 0: the level is absent. */
typedef struct vms_cache_level_config {
    uint64_t size;      /* bytes: sets × ways × line */
    unsigned ways;      /* 1 … VMS_REPL_MAX_WAYS */
    uint32_t latency;   /* load-to-use cycles of a hit in this level */
    const char *policy; /* replacement policy name (NULL: "lru"); static or outliving */
} vms_cache_level_config;

/* The hierarchy. on == false (the default): no caches, every figure as before. */
typedef struct vms_cache_config {
    bool on;
    const char *name; /* preset name, for display */
    unsigned line;    /* line size in bytes, a power of two 16 … 4096 */
    vms_cache_level_config l1i, l1d, l2, llc;
    bool inclusive;       /* LLC inclusive of the private levels (back-invalidation) */
    bool walk_from_l2;    /* the walker's loads start in L2, bypassing L1d */
    uint32_t mem_latency; /* cycles beyond the LLC when DRAM is not modelled */
} vms_cache_config;

/* Which level of the hierarchy an access was served by. */
typedef enum vms_mem_level {
    VMS_MEM_L1 = 0, /* L1d or L1i */
    VMS_MEM_L2,
    VMS_MEM_LLC,
    VMS_MEM_DRAM,
    VMS_MEM_NLEVELS
} vms_mem_level;

/* Per-level counters. */
typedef struct vms_cache_stats {
    uint64_t accesses, hits, misses;
    uint64_t writebacks;    /* dirty lines this level sent down (evicted or cleaned) */
    uint64_t fills;         /* lines allocated (misses and writebacks from above) */
    uint64_t evictions;     /* valid lines replaced */
    uint64_t invalidations; /* lines dropped by snoops, back-invalidation or DMA syncs */
    uint64_t walk_hits;     /* page-walk references this level served */
} vms_cache_stats;
_Static_assert(sizeof(vms_cache_stats) % sizeof(uint64_t) == 0, "cache stats are u64 counters");

/* ---- one level ------------------------------------------------------------------------ */

typedef struct vms_cache vms_cache;

/*
 * Check one level: size a multiple of ways × line, sets (= size / ways / line) in
 * 1 … VMS_CACHE_MAX_SETS, a known policy; with vipt, sets × line <= 4096 (the index
 * must fit in the page offset). VMS_ERR_INVAL names `name` and the problem.
 */
vms_status vms_cache_level_validate(const vms_cache_level_config *lc, unsigned line, bool vipt,
                                    const char *name, vms_err *err);

/* Create a level (lines all invalid). rng is borrowed (for "random") and must outlive it.
 * VMS_ERR_INVAL as vms_cache_level_validate (vipt not checked), VMS_ERR_NOMEM. */
vms_status vms_cache_create(const vms_allocator *a, const vms_cache_level_config *lc, unsigned line,
                            vms_rng *rng, vms_cache **out, vms_err *err);
void vms_cache_destroy(vms_cache *c); /* NULL accepted */

/* Look up pa's line: on a hit the policy is told, the line becomes dirty if write, and
 * true is returned; on a miss nothing changes but the counters. */
bool vms_cache_access(vms_cache *c, uint64_t pa, bool write);

/*
 * Allocate pa's line (it must be absent), dirty or clean, taking the lowest invalid way
 * or the policy's victim. Returns true when a valid line was evicted, with its address
 * (line-aligned) in *victim and its dirty bit in *victim_dirty.
 */
bool vms_cache_fill(vms_cache *c, uint64_t pa, bool dirty, uint64_t *victim, bool *victim_dirty);

/* Is pa's line present (changes nothing)? *dirty (may be NULL) gets its dirty bit. */
bool vms_cache_probe(const vms_cache *c, uint64_t pa, bool *dirty);

/* Set the dirty bit of pa's line if present, without telling the policy; true if present. */
bool vms_cache_mark_dirty(vms_cache *c, uint64_t pa);

/* Drop pa's line; true if it was present, with its dirty bit in *was_dirty (may be NULL). */
bool vms_cache_invalidate(vms_cache *c, uint64_t pa, bool *was_dirty);

/* Clear pa's dirty bit; true if the line was present and dirty (a write-back is due). */
bool vms_cache_clean(vms_cache *c, uint64_t pa);

/* Drop every line (dirty or not); returns how many were dirty. */
uint64_t vms_cache_flush_all(vms_cache *c);

/* Way i (0 … sets × ways - 1, set-major) of c: true if valid, with its line address and
 * dirty bit (either pointer may be NULL). For checkers and listings. */
bool vms_cache_entry(const vms_cache *c, size_t i, uint64_t *pa, bool *dirty);

unsigned vms_cache_sets(const vms_cache *c);
unsigned vms_cache_ways(const vms_cache *c);
unsigned vms_cache_line(const vms_cache *c);
uint64_t vms_cache_valid_lines(const vms_cache *c);
const vms_cache_stats *vms_cache_get_stats(const vms_cache *c);
vms_cache_stats *vmsi_cache_stats_mut(vms_cache *c);
void vms_cache_reset_stats(vms_cache *c);

/* Invariants: every valid line sits in the set its address indexes, no line twice in a
 * set, the valid count matches. */
bool vms_cache_check(const vms_cache *c);

/* ---- hierarchies ---------------------------------------------------------------------- */

/*
 * Fill *cfg with hierarchy preset `name`: "off" (no caches; the geometry is skylake's, for cache.*
 * keys to edit), "skylake" (Intel Skylake client: 32K/8-way L1d and L1i at 4 cycles, 256K/4-way L2
 * at 12, 8M/16-way inclusive LLC at 42; sources in src/hw/cache.c), "tiny" (1K L1s, 8K L2, 32K LLC:
 * small enough to see every eviction in a test). VMS_ERR_NOTFOUND lists the names.
 */
vms_status vms_cache_preset(const char *name, vms_cache_config *cfg, vms_err *err);

/* Check a hierarchy (each level, the VIPT rule for the L1s, a line size). */
vms_status vms_cache_validate(const vms_cache_config *cfg, vms_err *err);

/* Where one access was served: the level, and for DRAM the row-buffer outcome. */
typedef struct vms_mem_where {
    uint8_t level; /* vms_mem_level */
    uint8_t row;   /* vms_dram_row (dram.h) when level is VMS_MEM_DRAM and DRAM is on */
    bool dram;     /* DRAM is modelled (row is meaningful) */
} vms_mem_where;

/* "L1", "L2", "LLC", "DRAM". */
const char *vms_mem_level_name(unsigned level);

/* ---- a machine's hierarchy (machine.h: vms_machine_config.cache / .dram) -------------- */

typedef struct vms_machine vms_machine;
typedef struct vms_dram vms_dram;

typedef enum vms_cache_id {
    VMS_CACHE_L1I = 0,
    VMS_CACHE_L1D,
    VMS_CACHE_L2,
    VMS_CACHE_LLC
} vms_cache_id;

/* Core `core`'s level `id` (the LLC is shared: any core gives it); NULL when the level or
 * the hierarchy is absent. */
const vms_cache *vms_machine_cache(const vms_machine *m, unsigned core, vms_cache_id id);

/* The machine's DRAM model, or NULL. */
const vms_dram *vms_machine_dram(const vms_machine *m);

/*
 * Cache maintenance by physical range over every core's caches, what a driver's DMA
 * syncs do on a non-coherent machine: clean writes every dirty line of [pa, pa+len) back
 * to DRAM (Arm DC CVAC; Linux arch_sync_dma_for_device), invalidate drops every line,
 * dirty data included (DC IVAC; arch_sync_dma_for_cpu), so the CPU reads what DRAM holds.
 * Return the number of lines affected; 0 with caches off.
 */
uint64_t vms_machine_cache_clean(vms_machine *m, uint64_t pa, uint64_t len);
uint64_t vms_machine_cache_invalidate(vms_machine *m, uint64_t pa, uint64_t len);

/* Where each reference of core c's last page walk was served (in walk order); returns how
 * many (0 with caches and DRAM off, or before any walk). */
typedef struct vms_core vms_core;
unsigned vms_core_walk_where(const vms_core *c, vms_mem_where *out, unsigned max);

/* The hierarchy's invariants; VMS_ERR_INVAL names the first violation. */
vms_status vms_machine_cache_check(const vms_machine *m, vms_err *err);

#endif
