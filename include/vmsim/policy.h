/*
 * vmsim/policy.h — page-replacement policies as plug-ins, and the policy-replay mode.
 *
 * A page-replacement policy decides which resident page leaves memory when a new one must
 * come in. The same plug-ins serve two environments:
 *
 *   - the kernel's reclaim, which passes frame numbers and answers "was this frame
 *     referenced?" by reading and clearing the accessed (A) bits of the PTEs that map it,
 *     as Linux's page_referenced() does (mm/rmap.c);
 *   - the replay mode (vms_policy_replay), which runs a reference string of page numbers
 *     through a given number of frames, sets a per-page referenced bit on every reference
 *     as the hardware sets A bits, and knows the future (for OPT).
 *
 * Pages are opaque 64-bit ids. A policy instance tracks the set of resident pages it was
 * told about. Its host memory follows the resident pages, not the capacity hint: insert()
 * may allocate (the built-in policies grow their node array past the hint, and index page
 * ids below 2^36 — frame numbers — directly, a leaf per 256 consecutive ids, freed with
 * its last page), and may then fail with VMS_ERR_NOMEM (nothing changed); remove() and
 * victim() never allocate.
 *
 * Call protocol (the environment's side of the contract):
 *   insert(p)   p became resident, and was just referenced (a fault brings a page in
 *               for a reference). p must not be resident already (VMS_ERR_EXISTS).
 *   access(p)   p, resident, was referenced again. Called only when the policy sets
 *               VMS_PPOL_NEEDS_ACCESS; ignored for a non-resident page.
 *   remove(p)   p left residency other than by eviction (freed, unmapped). Harmless
 *               for a page that is not resident.
 *   victim(h)   choose a resident page, forget it and return it in *page; false when
 *               nothing is resident. Policies that work from hardware referenced bits
 *               ask the environment through the host h.
 *
 * Determinism: every policy is deterministic given its seed and the call sequence.
 * Adding a policy: one file in src/os/ defining a const vms_page_policy, and one line
 * in the list VMSI_PAGE_POLICIES in src/os/reclaim/policy_impl.h. Policies and their exact rules:
 * docs/POLICIES.md.
 */
#ifndef VMSIM_POLICY_H
#define VMSIM_POLICY_H

#include "vmsim/common.h"

/*
 * What a policy asks of its environment at victim() time. Either function may be NULL:
 * a NULL test_and_clear_young means "no referenced bits" (always false: CLOCK degrades
 * to FIFO); a NULL next_use means "the future is unknown", and policies that need it
 * (VMS_PPOL_NEEDS_FUTURE) are refused by vms_page_policy_select().
 */
typedef struct vms_policy_host {
    void *ud;
    /* Was `page` referenced since the last call for it? Clears the indication (A bits). */
    bool (*test_and_clear_young)(void *ud, uint64_t page);
    /* Position of the next reference to `page` (larger is later); UINT64_MAX if never.
     * OPT assumes a page's next use changes only when the page is referenced. */
    uint64_t (*next_use)(void *ud, uint64_t page);
} vms_policy_host;

/* Policy flags. */
#define VMS_PPOL_NEEDS_ACCESS 0x1u /* access() must be called on every reference */
#define VMS_PPOL_NEEDS_FUTURE 0x2u /* victim() calls host->next_use (OPT) */
#define VMS_PPOL_USES_YOUNG   0x4u /* victim() calls host->test_and_clear_young */

/* A page-replacement policy: a const table of functions over an opaque state. */
typedef struct vms_page_policy {
    const char *name; /* "fifo", "lru", … */
    const char *desc; /* one line, for listings and --help */
    unsigned flags;   /* VMS_PPOL_* */
    /* Create an empty instance sized for about `capacity` resident pages, allocating
     * through `a` (borrowed: must outlive the instance). VMS_ERR_NOMEM or VMS_ERR_INVAL
     * (capacity above 2^32 - 2) with *state untouched and nothing leaked. */
    vms_status (*create)(const vms_allocator *a, size_t capacity, uint64_t seed, void **state,
                         vms_err *err);
    /* Free an instance; NULL is allowed. */
    void (*destroy)(void *state);
    /* `page` became resident (and was referenced). VMS_ERR_EXISTS if already resident,
     * VMS_ERR_NOMEM if growing failed (state unchanged). */
    vms_status (*insert)(void *state, uint64_t page);
    /* `page` left residency other than by eviction; no-op if it is not resident. */
    void (*remove)(void *state, uint64_t page);
    /* `page` was referenced (only called for VMS_PPOL_NEEDS_ACCESS; may be NULL). */
    void (*access)(void *state, uint64_t page);
    /* Choose a resident page to evict, forget it, store it in *page; false if empty. */
    bool (*victim)(void *state, const vms_policy_host *host, uint64_t *page);
    /* Number of resident pages the instance tracks. */
    size_t (*count)(const void *state);
    /* `page`, just returned by victim, could not be evicted (busy, pinned, no swap room):
     * it stays resident and goes back to the policy. NULL: insert (LRU order: a rotated
     * page is the most recent). OPT sets it so that a scan tries each page once. */
    vms_status (*rotate)(void *state, uint64_t page);
} vms_page_policy;

/* The built-in policy named `name` (exact match), or NULL. */
const vms_page_policy *vms_page_policy_find(const char *name);

/* Number of built-in policies, and the i-th (NULL past the end), in a fixed order. */
unsigned vms_page_policy_count(void);
const vms_page_policy *vms_page_policy_get(unsigned i);

/*
 * Find policy `name` and check that `host` (NULL allowed: no referenced bits, no future)
 * gives what it needs. VMS_ERR_NOTFOUND naming the known policies, or VMS_ERR_UNSUPPORTED
 * when the policy needs the future (OPT) and host->next_use is NULL.
 */
vms_status vms_page_policy_select(const char *name, const vms_policy_host *host,
                                  const vms_page_policy **out, vms_err *err);

/* ---- Replay mode ------------------------------------------------------------------ */

/* One reference of a replay. */
typedef struct vms_policy_step {
    size_t index;    /* position in the reference string, from 0 */
    uint64_t page;   /* the page referenced */
    bool hit;        /* resident before the reference */
    bool evicted;    /* a miss with all frames full: `victim` left */
    uint64_t victim; /* valid when evicted */
} vms_policy_step;

/*
 * Called after every reference with the step and the resident set after it: frames[i]
 * is the page in frame i, for i < nframes_used (a new page takes the frame its victim
 * left, otherwise the lowest free frame; as in textbook tables). Borrowed for the call.
 */
typedef void (*vms_policy_step_fn)(void *ud, const vms_policy_step *step, const uint64_t *frames,
                                   size_t nframes_used);

/* Totals of a replay. */
typedef struct vms_policy_totals {
    uint64_t references, hits, misses, evictions;
    double hit_rate; /* hits / references; 0 for an empty string */
} vms_policy_totals;

/* Options of a replay. */
typedef struct vms_policy_replay_opts {
    const char *policy;         /* a name from the registry */
    size_t frames;              /* >= 1 */
    uint64_t seed;              /* for "random" */
    vms_policy_step_fn on_step; /* NULL: totals only */
    void *ud;                   /* passed to on_step */
    const vms_allocator *alloc; /* NULL: vms_allocator_default() */
} vms_policy_replay_opts;

/*
 * Replay the reference string refs[0..nrefs) through opts->frames frames under the
 * policy opts->policy, and fill *out. Each reference sets the page's referenced bit
 * (read and cleared by the policy through test_and_clear_young); next_use comes from a
 * precomputed next-occurrence array, so OPT is available. Host memory O(nrefs + frames).
 * VMS_ERR_NOTFOUND (unknown policy, message lists the names), VMS_ERR_INVAL (frames 0),
 * VMS_ERR_NOMEM; on failure *out is zeroed.
 */
vms_status vms_policy_replay(const uint64_t *refs, size_t nrefs, const vms_policy_replay_opts *opts,
                             vms_policy_totals *out, vms_err *err);

/*
 * Parse a reference string: page numbers (decimal or 0x hex) separated by commas and/or
 * whitespace (runs of separators count as one). On success *refs (allocated through
 * `a`, NULL: the default; free it with vms_policy_refs_free) and *nrefs >= 1. VMS_ERR_PARSE naming
 * the 1-based position and text of the first bad token, or "no references" for empty input;
 * VMS_ERR_NOMEM.
 */
vms_status vms_policy_refs_parse(const char *text, const vms_allocator *a, uint64_t **refs,
                                 size_t *nrefs, vms_err *err);

/* Free a reference array from vms_policy_refs_parse (NULL allowed). */
void vms_policy_refs_free(const vms_allocator *a, uint64_t *refs, size_t nrefs);

#endif
