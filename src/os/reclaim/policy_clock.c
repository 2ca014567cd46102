/*
 * policy_clock.c — CLOCK (second chance) page replacement on the accessed bit
 * (Corbató 1968; Silberschatz §10.4.5.2; Tanenbaum, Modern Operating Systems §3.4.5).
 *
 * The resident pages sit on a circle in arrival order; the hand points at the oldest.
 * To choose a victim, look at the page under the hand: if its referenced bit is set
 * (host->test_and_clear_young, which clears it), give it a second chance — the hand
 * moves past it — otherwise evict it. A new page takes the evicted page's place just
 * behind the hand, i.e. it is the last the hand will reach. If every bit is set, one
 * full turn clears them all and the page the hand started on goes: CLOCK degrades to
 * FIFO (also when the host has no referenced bits).
 *
 * Whether an arriving page's bit is set is up to the environment: real hardware sets A
 * on the access that follows the fault, and so does the replay mode (DESIGN: the
 * reference that faulted is a reference).
 *
 * State: the circle as a list from the hand (head) round to the newest page (tail);
 * passing a page = moving it from head to tail. Cost: O(1) per insert/remove; victim
 * is O(1) amortized — each second chance consumes one referenced bit set by a reference.
 */
#include "os/reclaim/policy_impl.h"

/* Is `page` young? Reads and clears the host's indication; no host bits: never. */
static bool young(const vms_policy_host *host, uint64_t page)
{
    return host && host->test_and_clear_young && host->test_and_clear_young(host->ud, page);
}

/* Sweep the hand until it finds a page whose referenced bit is clear, and evict it. */
static bool clock_victim(void *state, const vms_policy_host *host, uint64_t *page)
{
    vmsi_qpol *q = state;
    /* At most one full turn of second chances: after it every bit is clear. */
    for (uint32_t turn = 0; q->list.n > 0 && turn < q->list.n; turn++) {
        uint32_t i = q->list.head;
        if (!young(host, q->pool.nodes[i].page))
            break;
        vmsi_plist_unlink(q->pool.nodes, &q->list, i);
        vmsi_plist_push_tail(q->pool.nodes, &q->list, i);
    }
    return vmsi_qpol_pop_head(q, page);
}

const vms_page_policy vmsi_ppol_clock = {
    .name = "clock",
    .desc = "second chance: sweep a hand, sparing pages whose accessed bit is set",
    .flags = VMS_PPOL_USES_YOUNG,
    .create = vmsi_qpol_create,
    .destroy = vmsi_qpol_destroy,
    .insert = vmsi_qpol_insert, /* just behind the hand */
    .remove = vmsi_qpol_remove,
    .access = NULL,
    .victim = clock_victim,
    .count = vmsi_qpol_count,
};
