/*
 * policy_lru.c — exact LRU page replacement: evict the page whose last reference is the
 * oldest (Silberschatz §10.4.4, the "stack" implementation). Needs every reference
 * (VMS_PPOL_NEEDS_ACCESS), which real hardware does not give a kernel: it is the
 * reference point that CLOCK and the two-list policy approximate from accessed bits.
 *
 * State: one list of resident pages by recency, least recently used at the head.
 * Cost: O(1) per operation (the hash map finds the node to move).
 */
#include "os/reclaim/policy_impl.h"

/* A reference moves the page to the most-recent end. */
static void lru_access(void *state, uint64_t page)
{
    vmsi_qpol *q = state;
    uint32_t i = vmsi_ppool_find(&q->pool, page);
    if (i == VMSI_NIL || i == q->list.tail)
        return;
    vmsi_plist_unlink(q->pool.nodes, &q->list, i);
    vmsi_plist_push_tail(q->pool.nodes, &q->list, i);
}

/* Evict the least recently used page. */
static bool lru_victim(void *state, const vms_policy_host *host, uint64_t *page)
{
    (void)host;
    return vmsi_qpol_pop_head(state, page);
}

const vms_page_policy vmsi_ppol_lru = {
    .name = "lru",
    .desc = "exact least recently used (sees every reference)",
    .flags = VMS_PPOL_NEEDS_ACCESS,
    .create = vmsi_qpol_create,
    .destroy = vmsi_qpol_destroy,
    .insert = vmsi_qpol_insert, /* an arriving page was just referenced: most recent */
    .remove = vmsi_qpol_remove,
    .access = lru_access,
    .victim = lru_victim,
    .count = vmsi_qpol_count,
};
