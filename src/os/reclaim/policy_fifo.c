/*
 * policy_fifo.c — FIFO page replacement: evict the page that has been resident longest,
 * whatever its use (Silberschatz, Operating System Concepts, §10.4.2). The textbook
 * example of Belady's anomaly: more frames can give more faults.
 *
 * State: one list of resident pages in arrival order, oldest at the head (vmsi_qpol).
 * Cost: O(1) per insert, remove and victim.
 */
#include "os/reclaim/policy_impl.h"

/* Evict the oldest arrival. */
static bool fifo_victim(void *state, const vms_policy_host *host, uint64_t *page)
{
    (void)host;
    return vmsi_qpol_pop_head(state, page);
}

const vms_page_policy vmsi_ppol_fifo = {
    .name = "fifo",
    .desc = "first in, first out: evict the page resident longest",
    .flags = 0,
    .create = vmsi_qpol_create,
    .destroy = vmsi_qpol_destroy,
    .insert = vmsi_qpol_insert,
    .remove = vmsi_qpol_remove,
    .access = NULL,
    .victim = fifo_victim,
    .count = vmsi_qpol_count,
};
