/*
 * policy_twolist.c — "twolist", a Linux-style two-list policy: an active and an inactive
 * list with per-page referenced flags, fed by hardware accessed bits. It follows the
 * split LRU of mm/vmscan.c and mm/swap.c (Linux 2.6.28 onwards; see also "Page Frame
 * Reclaiming" in Bovet & Cesati, Understanding the Linux Kernel, ch. 17), reduced to one
 * page at a time. Terms: a list's "old end" is where the scan takes pages (Linux's LRU
 * tail), its "new end" where pages are added (Linux's LRU head).
 *
 * Rules:
 *  1. insert: a new page goes to the new end of the INACTIVE list with PG_referenced
 *     clear (lru_cache_add() / folio_add_lru()).
 *  2. victim, balancing first (inactive_is_low() with inactive_ratio = 1, the ratio Linux
 *     uses below 1 GiB): while active > inactive, take the page at the old end of the
 *     active list and test-and-clear its accessed bit (page_referenced()); if it was
 *     young, rotate it to the new end of the active list (shrink_active_list() keeps
 *     referenced executable pages this way, and kept every referenced page before
 *     2.6.28); otherwise move it to the new end of the inactive list with PG_referenced
 *     clear (deactivation).
 *  3. victim, scanning (shrink_inactive_list() -> page_check_references(), the rule for
 *     mapped file pages): take the page at the old end of the inactive list and
 *     test-and-clear its accessed bit.
 *       - young and PG_referenced set: the second reference — promote it to the new end
 *         of the active list, PG_referenced cleared (PAGEREF_ACTIVATE);
 *       - young, PG_referenced clear: set PG_referenced and rotate it to the new end of
 *         the inactive list (PAGEREF_KEEP);
 *       - not young: evict it (PAGEREF_RECLAIM), whatever PG_referenced says.
 *     Then go back to 2, until a page is evicted.
 *  4. remove: unlink from whichever list holds the page. No access() hook: like a
 *     kernel, the policy sees references only through accessed bits.
 * Every scan step either evicts or consumes one accessed bit, so victim() ends; the cost
 * is O(1) amortized per reference (each accessed bit is set by one reference).
 */
#include "os/reclaim/policy_impl.h"

enum { INACTIVE = 0, ACTIVE = 1 };
#define PG_REFERENCED 0x1u

typedef struct twolist {
    vmsi_ppool pool;     /* node.list = INACTIVE/ACTIVE, node.flags = PG_REFERENCED */
    vmsi_plist lists[2]; /* head = old end, tail = new end */
} twolist;

/* Free an instance (NULL allowed). */
static void tl_destroy(void *state)
{
    twolist *t = state;
    if (!t)
        return;
    const vms_allocator *a = t->pool.a;
    vmsi_ppool_free(&t->pool);
    vmsi_free(a, t, sizeof *t);
}

/* Create an empty instance. */
static vms_status tl_create(const vms_allocator *a, size_t capacity, uint64_t seed, void **state,
                            vms_err *err)
{
    (void)seed;
    twolist *t = vmsi_zalloc(a, sizeof *t);
    if (!t)
        return vmsi_err(err, VMS_ERR_NOMEM, "out of memory creating policy twolist");
    vms_status st = vmsi_ppool_init(&t->pool, a, capacity, err);
    if (st != VMS_OK) {
        tl_destroy(t);
        return st;
    }
    vmsi_plist_init(&t->lists[INACTIVE]);
    vmsi_plist_init(&t->lists[ACTIVE]);
    *state = t;
    return VMS_OK;
}

/* Move node i to the new end of list `to`, setting its PG_referenced flag to `ref`. */
static void move(twolist *t, uint32_t i, uint8_t to, bool ref)
{
    vmsi_pnode *n = &t->pool.nodes[i];
    vmsi_plist_unlink(t->pool.nodes, &t->lists[n->list], i);
    vmsi_plist_push_tail(t->pool.nodes, &t->lists[to], i);
    n->list = to;
    n->flags = ref ? PG_REFERENCED : 0;
}

/* Rule 1: a new page joins the inactive list, unreferenced. */
static vms_status tl_insert(void *state, uint64_t page)
{
    twolist *t = state;
    uint32_t i;
    vms_status st = vmsi_ppool_add(&t->pool, page, &i);
    if (st == VMS_OK)
        vmsi_plist_push_tail(t->pool.nodes, &t->lists[INACTIVE], i);
    return st;
}

/* Rule 4. */
static void tl_remove(void *state, uint64_t page)
{
    twolist *t = state;
    uint32_t i = vmsi_ppool_find(&t->pool, page);
    if (i == VMSI_NIL)
        return;
    vmsi_plist_unlink(t->pool.nodes, &t->lists[t->pool.nodes[i].list], i);
    vmsi_ppool_del(&t->pool, i);
}

/* Read and clear the accessed indication of node i's page. *budget counts the young
 * answers one victim() may still act on: a host whose bits clear, as they must, gives
 * at most one per page per victim() (a rotated page is not referenced again before the
 * scan reaches it), so it never runs out; a host that keeps answering "young" would
 * otherwise spin forever. */
static bool young(const twolist *t, const vms_policy_host *host, uint32_t i, size_t *budget)
{
    if (!host || !host->test_and_clear_young || *budget == 0)
        return false;
    if (!host->test_and_clear_young(host->ud, t->pool.nodes[i].page))
        return false;
    --*budget;
    return true;
}

/* Rule 2: deactivate (or rotate young) pages until active <= inactive. */
static void balance(twolist *t, const vms_policy_host *host, size_t *budget)
{
    while (t->lists[ACTIVE].n > t->lists[INACTIVE].n) {
        uint32_t i = t->lists[ACTIVE].head;
        if (young(t, host, i, budget))
            move(t, i, ACTIVE, false);
        else
            move(t, i, INACTIVE, false);
    }
}

/* Rules 2 and 3: balance, scan the inactive list's old end, until one page is evicted. */
static bool tl_victim(void *state, const vms_policy_host *host, uint64_t *page)
{
    twolist *t = state;
    if (t->pool.count == 0)
        return false;
    size_t budget = t->pool.count;
    for (;;) {
        balance(t, host, &budget);
        uint32_t i = t->lists[INACTIVE].head; /* non-empty: active <= inactive, total > 0 */
        vmsi_pnode *n = &t->pool.nodes[i];
        if (!young(t, host, i, &budget)) {
            *page = n->page;
            vmsi_plist_unlink(t->pool.nodes, &t->lists[INACTIVE], i);
            vmsi_ppool_del(&t->pool, i);
            return true;
        }
        if (n->flags & PG_REFERENCED)
            move(t, i, ACTIVE, false);
        else
            move(t, i, INACTIVE, true);
    }
}

/* Resident pages tracked. */
static size_t tl_count(const void *state)
{
    return ((const twolist *)state)->pool.count;
}

const vms_page_policy vmsi_ppol_twolist = {
    .name = "twolist",
    .desc = "Linux-style active/inactive lists on accessed bits, promote on 2nd reference",
    .flags = VMS_PPOL_USES_YOUNG,
    .create = tl_create,
    .destroy = tl_destroy,
    .insert = tl_insert,
    .remove = tl_remove,
    .access = NULL,
    .victim = tl_victim,
    .count = tl_count,
};
