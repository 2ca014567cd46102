/*
 * reclaim_impl.h — the memory-pressure district (src/os/reclaim): page-cache entries
 * and the page cache (pagecache.c; shm.c builds on it), the swap device and swap cache
 * (swap.c), reclaim, kswapd and the OOM killer (reclaim.c). The replacement policies
 * have their own policy_impl.h. Nothing outside src/os includes it.
 */
#ifndef VMSIM_OS_RECLAIM_IMPL_H
#define VMSIM_OS_RECLAIM_IMPL_H

#include "os/os_impl.h"

/*
 * Page-cache entries (vms_file.pages, a sparse map by page index): a pfn, 0 (absent), or with bit
 * 63 a swap slot (a shmem page that was swapped out: Linux keeps the swap entry in the mapping's
 * xarray), or with bit 62 a shadow (a file page reclaim dropped: the next read of it is
 * a refault, Linux's workingset shadow entry). Bit 61 with a swap slot: the slot's read
 * failed (poisoned: every later fault of the page is SIGBUS).
 */
#define VMSI_CACHE_SWAP   (UINT64_C(1) << 63)
#define VMSI_CACHE_SHADOW (UINT64_C(1) << 62)
#define VMSI_CACHE_POISON (UINT64_C(1) << 61)
#define VMSI_CACHE_SLOT   ((UINT64_C(1) << 61) - 1)

/* The frame of a page-cache entry, or 0 for absent, swapped and shadow entries. */
static inline uint64_t vmsi_cache_pfn(uint64_t e)
{
    return (e & (VMSI_CACHE_SWAP | VMSI_CACHE_SHADOW)) ? 0 : e;
}

/* The cache entry of page index of f (0: absent). */
static inline uint64_t vmsi_cache_entry(const vms_file *f, uint64_t index)
{
    return vmsi_radix_get(&f->pages, index);
}

/* ---- swap.c ---- */
vms_status vmsi_swap_init(vms_kernel *k, vms_err *err);
void vmsi_swap_destroy(vms_kernel *k);
/* A free slot with one reference; 0 when the device is full or absent. */
uint64_t vmsi_swap_alloc(vms_kernel *k);
/* Slots per cluster (Linux SWAPFILE_CLUSTER with CONFIG_THP_SWAP: HPAGE_PMD_NR). */
#define VMSI_SWAP_CLUSTER UINT64_C(512)
/* A free cluster (512 aligned slots, each with one reference): its first slot, or 0
 * when no cluster is free (get_swap_pages of order 9 failing). */
uint64_t vmsi_swap_alloc_cluster(vms_kernel *k);
/* The cluster at slot0 now holds a huge page swapped out whole (thp_swpin_fallback). */
void vmsi_swap_mark_whole(vms_kernel *k, uint64_t slot0);
/* A fault reads slot back as a 4 KiB page: true (once per huge page) when slot is part
 * of a huge page swapped out whole that nothing swapped in before. */
bool vmsi_swap_whole_swapin(vms_kernel *k, uint64_t slot);
/* One more reference to slot (fork copying a swap PTE). */
void vmsi_swap_dup(vms_kernel *k, uint64_t slot);
/* Drop one reference; at 0 the swap-cache page (if any) leaves the cache, the slot is
 * free. */
void vmsi_swap_free(vms_kernel *k, uint64_t slot);
/* Transfer one page between frame pfn and slot, charging `core` the modelled time.
 * VMS_ERR_IO on a (possibly injected) I/O error; nothing changed in RAM then. */
vms_status vmsi_swap_writepage(vms_kernel *k, uint64_t slot, uint64_t pfn, unsigned core);
vms_status vmsi_swap_readpage(vms_kernel *k, uint64_t slot, uint64_t pfn, unsigned core);
/* Write the 512 frames from pfn to the cluster at slot0 as one request (one latency, 512
 * transfers charged to `core`). VMS_ERR_IO on a (possibly injected) error. */
vms_status vmsi_swap_writecluster(vms_kernel *k, uint64_t slot0, uint64_t pfn, unsigned core);
/* Swap cache: slot -> pfn (the cache takes the reference the caller passes in). */
void vmsi_swapcache_add(vms_kernel *k, uint64_t slot, uint64_t pfn);
void vmsi_swapcache_del(vms_kernel *k, uint64_t slot);
/* SIGBUS every process whose memory holds slot (after a failed read); skip `except`. */
void vmsi_swap_kill_owners(vms_kernel *k, uint64_t slot, vmsi_proc *except);
vms_status vmsi_swap_check(vms_kernel *k, vms_err *err);

/* ---- reclaim.c ---- */
vms_status vmsi_reclaim_init(vms_kernel *k, vms_err *err);
void vmsi_reclaim_destroy(vms_kernel *k);
/* The frame became reclaimable (a new anon or cache page); idempotent. */
void vmsi_lru_add(vms_kernel *k, uint64_t pfn);
/* Take the frame off the policy (freed, mlocked); harmless when not on it. */
void vmsi_lru_del(vms_kernel *k, uint64_t pfn);
/* A user access touched [va, va+len) of mm (for policies needing every reference). */
void vmsi_lru_accessed(vms_kernel *k, vmsi_mm *mm, uint64_t va, size_t len);
/* Before an allocation: wake kswapd below low, reclaim directly below min. */
void vmsi_reclaim_before_alloc(vms_kernel *k);
/* After a failed allocation: direct reclaim; true if it freed something. */
bool vmsi_direct_reclaim(vms_kernel *k, unsigned order);
/* A safe point (no frame held across it): run kswapd if it was woken. */
void vmsi_kswapd(vms_kernel *k);
/* try_to_unmap for an anonymous page (order 0, or a transparent huge page none of whose
 * PMDs is left) whose bytes are in the slots from slot on (subpage i at slot + i): every
 * PTE mapping it becomes its swap entry (one slot reference each), its TLB entries are
 * shot down at the end of the reclaim batch. Frees the frame(s) unless something else
 * holds them. */
void vmsi_unmap_to_swap(vms_kernel *k, uint64_t pfn, uint64_t slot);
/* The OOM killer: choose by badness and kill; returns the victim (may be current). */
vmsi_proc *vmsi_oom_kill(vms_kernel *k, vmsi_proc *current);
uint64_t vmsi_oom_badness(const vmsi_proc *p);

/* ---- pagecache.c / shm.c ---- */
/* The cache page for index, reading it when absent — and then also every uncached page
 * of the readahead window [ra_start, ra_end) (empty: none). *major is set when file I/O
 * happened. VMS_ERR_RANGE beyond EOF, VMS_ERR_NOTFOUND without a free frame. */
vms_status vmsi_filemap_get(vms_kernel *k, vms_file *f, uint64_t index, uint64_t ra_start,
                            uint64_t ra_end, uint64_t *pfn, bool *major, unsigned core,
                            vms_err *err);
uint64_t vmsi_filemap_peek(const vms_file *f, uint64_t index);
vms_status vmsi_file_writeback(vms_kernel *k, vms_file *f, uint64_t first, uint64_t last,
                               unsigned core, vms_err *err);
void vmsi_file_get(vms_file *f);
void vmsi_file_put(vms_kernel *k, vms_file *f);
vms_status vmsi_file_new(vms_kernel *k, vmsi_file_kind kind, uint64_t size, vms_file **out,
                         vms_err *err);
void vmsi_files_destroy(vms_kernel *k);

#endif
