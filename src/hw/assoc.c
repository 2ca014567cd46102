/*
 * assoc.c — the set-associative array shared by the TLB and the page-walk caches:
 * allocation, fills with replacement, predicate-driven invalidation and the invariant
 * checker. The lookup path is inline in assoc.h.
 */
#include "hw/assoc.h"

#include "util/util.h"

vms_status vmsi_assoc_init(vmsi_assoc *a, const vms_allocator *alloc, unsigned sets, unsigned ways,
                           unsigned index_shift, const vms_repl_policy *policy, vms_rng *rng)
{
    assert(sets >= 1 && ways >= 1 && ways <= VMS_REPL_MAX_WAYS);
    memset(a, 0, sizeof *a);
    a->sets = sets;
    a->ways = ways;
    a->pow2 = (sets & (sets - 1)) == 0;
    a->set_mask = (uint64_t)sets - 1;
    a->index_shift = index_shift;
    a->policy = policy;
    a->rng = rng;
    a->state_bytes = policy->state_bytes(ways);
    if (policy == &vmsi_repl_plru && ways <= 16)
        a->kind = VMSI_ASSOC_PLRU16;
    else if (policy == &vmsi_repl_lru && ways <= VMSI_REPL_MAT_WAYS)
        a->kind = VMSI_ASSOC_LRU8;
    else if (policy == &vmsi_repl_fifo && ways <= VMSI_REPL_MAT_WAYS)
        a->kind = VMSI_ASSOC_FIFO8;
    else if (policy == &vmsi_repl_random)
        a->kind = VMSI_ASSOC_NOSTATE;
    else
        a->kind = VMSI_ASSOC_CALL;
    a->e = vmsi_calloc(alloc, (size_t)sets * ways, sizeof *a->e);
    if (!a->e)
        return VMS_ERR_NOMEM;
    /* A policy without state (random) gets no block: a zero-size request is a free. */
    if (a->state_bytes) {
        a->state = vmsi_calloc(alloc, sets, a->state_bytes);
        if (!a->state) {
            vmsi_assoc_fini(a, alloc);
            return VMS_ERR_NOMEM;
        }
    }
    for (unsigned s = 0; s < sets; s++)
        policy->reset(a->state + (size_t)s * a->state_bytes, ways);
    return VMS_OK;
}

void vmsi_assoc_fini(vmsi_assoc *a, const vms_allocator *alloc)
{
    if (a->e)
        vmsi_free(alloc, a->e, (size_t)a->sets * a->ways * sizeof *a->e);
    if (a->state)
        vmsi_free(alloc, a->state, (size_t)a->sets * a->state_bytes);
    a->e = NULL;
    a->state = NULL;
    a->count = 0;
}

void vmsi_assoc_touch_hit(vmsi_assoc *a, unsigned set, unsigned way)
{
    vmsi_assoc_touch_as(a, set, way, true);
}

/*
 * The way a fill of entry `n` takes in `row` by superseding: the first conflicting
 * entry (later conflicting ones are dropped, as a global fill may cover several
 * contexts' entries for one page), else -1; and in the same pass *free, the lowest
 * invalid way (-1 when the set is full; used only when nothing conflicts, so the
 * drops cannot have made it).
 */
static int supersede(vmsi_assoc *a, vmsi_assoc_entry *row, const vmsi_assoc_entry *n, int *free)
{
    int found = -1;
    *free = -1;
    for (unsigned w = 0; w < a->ways; w++) {
        if (!(row[w].tag & VMSI_ASSOC_V)) {
            if (*free < 0)
                *free = (int)w;
            continue;
        }
        if (!vmsi_assoc_conflict(&row[w], n))
            continue;
        if (found < 0) {
            found = (int)w;
        } else {
            row[w].tag = 0;
            a->count--;
        }
    }
    return found;
}

unsigned vmsi_assoc_fill(vmsi_assoc *a, uint64_t tag, uint64_t ctx, uint64_t data, bool *evicted,
                         uint64_t *victim)
{
    const vmsi_assoc_entry n = {tag, data, ctx};
    assert(tag & VMSI_ASSOC_V);
    unsigned set = vmsi_assoc_set(a, vmsi_assoc_key(tag));
    vmsi_assoc_entry *row = vmsi_assoc_at(a, set, 0);
    int free;
    int way = supersede(a, row, &n, &free);
    return vmsi_assoc_fill_at(a, set, row, n, way, free, evicted, victim);
}

unsigned vmsi_assoc_fill_fresh(vmsi_assoc *a, uint64_t tag, uint64_t ctx, uint64_t data,
                               bool *evicted, uint64_t *victim)
{
    return vmsi_assoc_fill_fresh_inline(a, tag, ctx, data, evicted, victim);
}

/* Check one set: placement of every valid entry and no conflicting pair. */
static bool check_set(const vmsi_assoc *a, unsigned set, unsigned *valid)
{
    const vmsi_assoc_entry *row = vmsi_assoc_at(a, set, 0);
    for (unsigned w = 0; w < a->ways; w++) {
        if (!(row[w].tag & VMSI_ASSOC_V))
            continue;
        (*valid)++;
        if (vmsi_assoc_set(a, vmsi_assoc_key(row[w].tag)) != set)
            return false;
        for (unsigned u = w + 1; u < a->ways; u++)
            if (vmsi_assoc_conflict(&row[w], &row[u]))
                return false;
    }
    return true;
}

bool vmsi_assoc_check(const vmsi_assoc *a)
{
    unsigned valid = 0;
    for (unsigned s = 0; s < a->sets; s++)
        if (!check_set(a, s, &valid))
            return false;
    return valid == a->count;
}
