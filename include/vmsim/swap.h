/*
 * vmsim/swap.h — memory pressure: the swap device, reclaim and the OOM killer.
 *
 * When RAM runs short the kernel reclaims frames (src/os/reclaim/reclaim.c): the page-replacement
 * policy chosen by vms_kernel_config.policy (policy.h: fifo, lru, clock, random, opt,
 * twolist) names a victim frame; anonymous and shmem pages are written to the swap
 * device and every PTE that mapped them (found through the reverse map) becomes a swap
 * entry or is cleared, with the TLBs that may hold them shot down; clean file pages are
 * dropped and dirty ones written back first; mlocked and pinned frames stay. The next
 * touch of a swapped page takes a major fault that reads it back (swap-in).
 *
 * The swap device is a real host file (a temporary one by default) holding the page
 * bytes, with a latency/throughput model (SSD and HDD presets). Its I/O can be made to
 * fail on demand (vms_swap_inject_error or the swap.fail_* keys):
 *   - a failed write loses nothing: the page stays resident and mapped, the error is
 *     counted (swap_write_errors) and logged;
 *   - a failed read kills every process whose memory held that swap slot with SIGBUS
 *     (counted in swap_read_errors and sigbus), and only those.
 * Nothing is lost otherwise: every byte a process wrote reads back the same.
 *
 * Watermarks (Linux's min/low/high): kswapd wakes when free memory drops below low and
 * reclaims until it reaches high; an allocation that would go below min reclaims
 * directly first; an allocation that finds no frame reclaims directly and, if that fails
 * in a page fault, the OOM killer chooses a victim by its badness (rss + swap entries +
 * page-table pages) and kills it. Full description: docs/SWAP.md.
 */
#ifndef VMSIM_SWAP_H
#define VMSIM_SWAP_H

#include "vmsim/kernel.h"

/* The state of the swap device. */
typedef struct vms_swap_info {
    uint64_t total_pages; /* usable slots (slot 0 is the header, never used) */
    uint64_t free_pages;  /* free slots */
    uint64_t cache_pages; /* frames in the swap cache (read back, slot still referenced) */
    uint64_t reads, writes;
    uint64_t read_cycles; /* modelled cost of one random page read / write */
    uint64_t write_cycles;
    const char *path; /* the host file ("" when no swap); valid while the kernel is */
} vms_swap_info;

/* Describe the swap device. */
void vms_swap_get_info(const vms_kernel *k, vms_swap_info *out);

typedef enum vms_swap_io {
    VMS_SWAP_IO_READ = 0,
    VMS_SWAP_IO_WRITE = 1,
} vms_swap_io;

/*
 * Make swap I/O of kind `io` fail: after `after` more successful page transfers of that
 * kind, the next `count` fail (count 0 cancels). Deterministic, for tests. VMS_ERR_INVAL
 * for an unknown kind.
 */
vms_status vms_swap_inject_error(vms_kernel *k, vms_swap_io io, uint64_t after, uint64_t count,
                                 vms_err *err);

/*
 * Reclaim up to npages frames now, as direct reclaim would (charged to core 0), like
 * writing to Linux's memory.reclaim. *reclaimed (may be NULL) gets the number freed.
 */
void vms_kernel_reclaim(vms_kernel *k, uint64_t npages, uint64_t *reclaimed);

/*
 * Install (fn non-NULL) or remove OPT's next-use oracle (see vms_next_use_fn). Removing
 * it while the kernel runs opt is refused (VMS_ERR_UNSUPPORTED), as selecting opt without
 * an oracle is at vms_kernel_create.
 */
vms_status vms_kernel_set_next_use(vms_kernel *k, vms_next_use_fn fn, void *ud, vms_err *err);

/* The name of the page-replacement policy the kernel's reclaim uses. */
const char *vms_kernel_policy_name(const vms_kernel *k);

/* The watermarks in pages (after automatic sizing). */
void vms_kernel_watermarks(const vms_kernel *k, uint64_t *min, uint64_t *low, uint64_t *high);

#endif
