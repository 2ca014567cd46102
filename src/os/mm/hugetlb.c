/*
 * hugetlb.c — hugetlbfs pools (Linux mm/hugetlb.c, much reduced): pages of 2 MiB and
 * 1 GiB reserved from the buddy allocator at boot (hugepages=N, hugepagesz=1G
 * hugepages=N: kernel.hugepages, kernel.hugepages_1g), handed to MAP_HUGETLB mappings.
 *
 *   mmap(MAP_HUGETLB) of n pages   -> reserve n pages (HugePages_Rsvd); fewer free
 *                                     unreserved pages than n: ENOMEM (VMS_ERR_NOTFOUND),
 *                                     unless MAP_NORESERVE
 *   first fault of a page          -> a zeroed pool page (consuming a reservation when the
 *                                     VMA holds them); none free: SIGBUS (overcommitted)
 *   last unmap of a page           -> back to the pool's free list
 *   munmap / exit of a VMA part    -> its reservations of pages never faulted go back
 *
 * Invariants: every pool page is an allocated block of order 9 (18) flagged HUGETLB and
 * ANON; the pool holds one reference on each (so refcount == mapcount + 1, and a free
 * pool page has refcount 1); nfree counts the pages with refcount 1, resv <= nfree.
 * Reservations belong to the VMA that made them (VMSI_VM_HUGE* without NORESERVE);
 * a forked child's copy holds none (Linux HPAGE_RESV_OWNER), so its faults and COW
 * copies take unreserved pages. With no pool configured for a size (total 0), explicit
 * huge pages come from the buddy allocator at fault time as before pools existed
 * (docs/HUGEPAGES.md; Linux would fail the mmap).
 */
#include <assert.h>

#include "os/os_impl.h"
#include "os/mm/mm_impl.h"
#include "os/reclaim/reclaim_impl.h"

static unsigned pool_of(vms_pgsize size)
{
    return size == VMS_PG_1G ? 1u : 0u;
}

static unsigned order_of(unsigned pool)
{
    return pool ? VMS_FRAMES_ORDER_1G : VMS_FRAMES_ORDER_2M;
}

/* Fill one pool with n pages from the buddy allocator (as many as there are). */
static vms_status pool_fill(vms_kernel *k, unsigned pool, uint64_t n, vms_err *err)
{
    vmsi_hpool *h = &k->hpool[pool];
    if (!n)
        return VMS_OK;
    h->free = vmsi_calloc(k->a, n, sizeof *h->free);
    h->cap = n;
    if (!h->free)
        return vmsi_err(err, VMS_ERR_NOMEM, "hugetlb: out of host memory");
    for (uint64_t i = 0; i < n; i++) {
        uint64_t pfn;
        if (vms_frames_alloc(k->fr, order_of(pool), &pfn, NULL) != VMS_OK) {
            vmsi_log(k, VMS_LOG_WARNING,
                     "HugeTLB: allocating %llu of page size %s failed.  Only allocated %llu "
                     "hugepages.",
                     (unsigned long long)n, pool ? "1.00 GiB" : "2.00 MiB", (unsigned long long)i);
            break;
        }
        vms_frames_set_flags(k->fr, pfn, VMSI_FRAME_HUGETLB | VMS_FRAME_ANON, 0);
        h->free[h->nfree++] = pfn;
        h->total++;
    }
    return VMS_OK;
}

vms_status vmsi_hugetlb_init(vms_kernel *k, vms_err *err)
{
    vms_status st = pool_fill(k, 0, k->cfg.hugepages, err);
    return st == VMS_OK ? pool_fill(k, 1, k->cfg.hugepages_1g, err) : st;
}

void vmsi_hugetlb_destroy(vms_kernel *k)
{
    for (unsigned p = 0; p < 2; p++) {
        vmsi_hpool *h = &k->hpool[p];
        for (uint64_t i = 0; i < h->nfree; i++) {
            vms_frames_set_flags(k->fr, h->free[i], 0, VMSI_FRAME_HUGETLB | VMS_FRAME_ANON);
            vms_frames_put(k->fr, h->free[i], NULL);
        }
        if (h->free)
            vmsi_free(k->a, h->free, h->cap * sizeof *h->free);
        *h = (vmsi_hpool){0, 0, 0, 0, NULL};
    }
}

bool vmsi_hugetlb_pooled(const vms_kernel *k, vms_pgsize size)
{
    return size != VMS_PG_4K && k->hpool[pool_of(size)].total > 0;
}

vms_status vmsi_hugetlb_reserve(vms_kernel *k, vms_pgsize size, int64_t npages, vms_err *err)
{
    vmsi_hpool *h = &k->hpool[pool_of(size)];
    if (npages < 0) {
        assert(h->resv >= (uint64_t)-npages);
        h->resv -= (uint64_t)-npages;
        return VMS_OK;
    }
    if (h->nfree - h->resv < (uint64_t)npages)
        return vmsi_err(err, VMS_ERR_NOTFOUND,
                        "mmap: ENOMEM: %lld huge pages to reserve, %llu free and unreserved",
                        (long long)npages, (unsigned long long)(h->nfree - h->resv));
    h->resv += (uint64_t)npages;
    return VMS_OK;
}

uint64_t vmsi_hugetlb_alloc(vms_kernel *k, vms_pgsize size, bool reserved)
{
    vmsi_hpool *h = &k->hpool[pool_of(size)];
    reserved = reserved && h->resv > 0; /* a VMA refaulting a page it zapped: unreserved */
    if (h->nfree == 0 || (!reserved && h->nfree <= h->resv))
        return 0; /* the free pages are all promised to others */
    uint64_t pfn = h->free[--h->nfree];
    if (reserved)
        h->resv--;
    vms_frames_get(k->fr, pfn); /* the caller's; the pool keeps its own */
    vmsi_ram_fill(k, pfn << VMS_PAGE_SHIFT, 0, (size_t)vms_pgsize_bytes(size));
    return pfn;
}

bool vmsi_hugetlb_free(vms_kernel *k, uint64_t pfn)
{
    vms_frame *f = vms_frames_meta(k->fr, pfn);
    if (!f || !(f->flags & VMSI_FRAME_HUGETLB) || f->refcount != 1)
        return false;
    vmsi_hpool *h = &k->hpool[f->order == VMS_FRAMES_ORDER_1G ? 1 : 0];
    assert(h->nfree < h->total);
    vms_frames_set_flags(k->fr, pfn, 0, VMS_FRAME_DIRTY | VMS_FRAME_LOCKED);
    h->free[h->nfree++] = pfn;
    return true;
}

static void count_leaf(vmsi_mm *mm, uint64_t va, uint64_t ptep, uint64_t pte, vms_pgsize size,
                       void *ud)
{
    (void)va;
    (void)ptep;
    if (size != VMS_PG_4K && vmsi_pte_mapped(mm->k, pte))
        (*(uint64_t *)ud)++;
}

uint64_t vmsi_hugetlb_count(vmsi_mm *mm, uint64_t start, uint64_t end)
{
    uint64_t n = 0;
    vmsi_pte_range(mm, start, end, count_leaf, &n);
    return n;
}

void vmsi_hugetlb_unmap(vmsi_mm *mm, uint64_t start, uint64_t end)
{
    vms_kernel *k = mm->k;
    for (vmsi_vma *v = vmsi_vma_find(mm, start); v && v < mm->vma + mm->nvma && v->start < end;
         v++) {
        vms_pgsize size = vmsi_vma_pgsize(v);
        if (size == VMS_PG_4K || (v->flags & VMSI_VM_NORESERVE) || !vmsi_hugetlb_pooled(k, size))
            continue;
        uint64_t s = v->start > start ? v->start : start, e = v->end < end ? v->end : end;
        uint64_t pages = (e - s) / vms_pgsize_bytes(size);
        uint64_t unfaulted = pages - vmsi_hugetlb_count(mm, s, e);
        vmsi_hpool *h = &k->hpool[pool_of(size)];
        h->resv -= unfaulted < h->resv ? unfaulted : h->resv;
    }
}
