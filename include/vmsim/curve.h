/*
 * vmsim/curve.h — miss-ratio curves in one pass: what an LRU translation cache of every
 * size would miss on the lookups one modelled structure sees (a TLB level of a core, or
 * one level of its page-walk cache), computed beside the real run (docs/CURVE.md).
 *
 * Method. Mattson's stack algorithm (Mattson, Gecsei, Slutz and Traiger, "Evaluation
 * techniques for storage hierarchies", IBM Systems Journal 9(2), 1970): LRU is a stack
 * algorithm, so one recency stack gives every size's hits at once — a lookup at stack
 * depth d hits in every cache of at least d entries. Depths come from a Fenwick tree
 * over last-use times (O(log n) per lookup). Invalidations (INVLPG, CR3 loads, the
 * fault path's flush) leave holes in the stack that the next insertion fills, which
 * keeps the stack exact for every size. Set-associative geometries: one stack per set
 * for each number of sets, the per-set-count form of Hill and Smith's all-associativity
 * simulation ("Evaluating associativity in CPU caches", IEEE Trans. Computers 38(12),
 * 1989), which gives every associativity of a set count in one pass. Sampled curves:
 * SHARDS (Waldspurger, Park, Garthwaite and Ahmad, "Efficient MRC construction with
 * SHARDS", FAST '15): only keys whose hash falls under rate × 2^24 are modelled, and
 * their depths and misses are scaled by 1 / rate.
 *
 * What a curve sees (the contract): the lookups that reach the structure in the real
 * run, in order — for a TLB every lookup (while a curve is attached the TLB's repeat
 * memo stays empty, so each lookup probes its arrays and is shown at its true depth),
 * the fills it receives, and every invalidation it is asked to do; for a PWC
 * level the lookups that reach that level, its fills and flushes. A fault's retry is a
 * second lookup, counted like any other. So the curve's point at the configured size
 * equals the real run's misses when the structure is LRU of that geometry; at other
 * sizes it equals a separate run with that size as long as the lookup stream does not
 * depend on the size (docs/CURVE.md says when it can).
 */
#ifndef VMSIM_CURVE_H
#define VMSIM_CURVE_H

#include "vmsim/common.h"

typedef struct vms_core vms_core;
typedef struct vms_curve vms_curve;

/*
 * A curve model: `sets` sets (1: fully associative) of LRU caches, reporting every
 * associativity 1 … ways (every size 1 … ways when sets is 1). rate in (0, 1]: 1 is
 * exact; below 1 samples keys (SHARDS) with hash seed `seed`. VMS_ERR_INVAL names a bad
 * argument; VMS_ERR_NOMEM. The memory is O(sets × ways) (less when sampled).
 */
vms_status vms_curve_create(const vms_allocator *a, unsigned sets, unsigned ways, double rate,
                            uint64_t seed, vms_curve **out, vms_err *err);

/* Free a curve. It must not be attached any more (vms_core_curve_detach, or the machine
 * destroyed first). NULL is fine. */
void vms_curve_destroy(vms_curve *c);

/*
 * Observe core c's structure `what`: "tlb.l1i", "tlb.l1d", "tlb.l2" (the TLB levels),
 * "pwc.pde", "pwc.pdpte", "pwc.pml4e", "pwc.pml5e" (PWC levels 2 … 5). A structure may
 * carry several curves. The curve is borrowed until detached. VMS_ERR_NOTFOUND when the
 * name is unknown or the core has no such structure.
 */
vms_status vms_core_curve_attach(vms_core *c, const char *what, vms_curve *curve, vms_err *err);

/* Stop observing with curve on every structure of c (a no-op when not attached). */
void vms_core_curve_detach(vms_core *c, vms_curve *curve);

/* The configured geometry of c's structure `what`: total entries, and the sets and ways
 * of its largest partition (TLBs may have one per page size); policy its replacement
 * policy's name. VMS_ERR_NOTFOUND as for attach. */
typedef struct vms_curve_geometry {
    unsigned entries, sets, ways, nparts;
    const char *policy;
} vms_curve_geometry;
vms_status vms_core_curve_geometry(vms_core *c, const char *what, vms_curve_geometry *out,
                                   vms_err *err);

/*
 * Tell a TLB curve where the kernel counts spurious page faults (&vms_kernel_get_stats(k)
 * ->spurious; borrowed). A spurious fault is one a stale TLB entry with fewer rights than
 * the tables caused (the kernel does not flush when it only adds rights, as Linux); a
 * cache too small to still hold the entry walks instead, takes no fault and makes no
 * retry lookup. With the counter the curve leaves that retry out at those sizes;
 * without it, each such fault adds one miss there.
 */
void vms_curve_set_spurious(vms_curve *c, const uint64_t *spurious);

/* Sets, ways (the largest associativity reported) and sampling rate of a curve. */
unsigned vms_curve_sets(const vms_curve *c);
unsigned vms_curve_ways(const vms_curve *c);
double vms_curve_rate(const vms_curve *c);

/*
 * Misses of an LRU structure with the curve's sets and `ways` ways (1 … vms_curve_ways)
 * on the lookups seen so far: exact, or the SHARDS estimate (rounded) when sampled.
 */
uint64_t vms_curve_misses(const vms_curve *c, unsigned ways);

/* Lookups the curve modelled (every lookup of the structure; the sampled ones when
 * sampled). */
uint64_t vms_curve_lookups(const vms_curve *c);

#endif
