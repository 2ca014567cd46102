/*
 * hugetlb.c — hugetlbfs pools (Linux mm/hugetlb.c, much reduced): pages of 2 MiB and
 * 1 GiB from the buddy allocator, reserved at boot (hugepages=N, hugepagesz=1G
 * hugepages=N: kernel.hugepages, kernel.hugepages_1g) or at run time (nr_hugepages),
 * handed to MAP_HUGETLB mappings.
 *
 *   mmap(MAP_HUGETLB) of n pages   -> reserve n pages (HugePages_Rsvd); fewer free
 *                                     unreserved pages than n: surplus pages from the
 *                                     buddy allocator while nr_overcommit_hugepages
 *                                     allows (gather_surplus_pages), else ENOMEM
 *                                     (VMS_ERR_NOTFOUND) — also with no pool at all;
 *                                     MAP_NORESERVE reserves nothing
 *   first fault of a page          -> a zeroed pool page (consuming a reservation when the
 *                                     VMA holds them); none free: a surplus page if
 *                                     overcommit allows, else SIGBUS
 *   last unmap of a page           -> back to the pool's free list; a surplus page back to
 *                                     the buddy allocator
 *   munmap / exit of a VMA part    -> its reservations of pages never faulted go back (and
 *                                     surplus pages no longer needed to the buddy)
 *   nr_hugepages = N (run time)    -> set_max_huge_pages: surplus pages become persistent,
 *                                     then new ones from the buddy allocator; shrinking
 *                                     frees free unreserved pages, and pages still in use
 *                                     above N become surplus
 *
 * Invariants: every pool page is an allocated block of order 9 (18) flagged HUGETLB and
 * ANON; the pool holds one reference on each (so refcount == mapcount + 1, and a free
 * pool page has refcount 1); nfree counts the pages with refcount 1, resv <= nfree,
 * surplus <= total. Reservations belong to the VMA that made them (VMSI_VM_HUGE*
 * without NORESERVE); a forked child's copy holds none (Linux HPAGE_RESV_OWNER), so its
 * faults and COW copies take unreserved pages.
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

/* One new page from the buddy allocator onto pool's free list: false when no block is
 * free (or no host memory for the list). */
static bool pool_add(vms_kernel *k, unsigned pool)
{
    vmsi_hpool *h = &k->hpool[pool];
    uint64_t pfn;
    if (!vmsi_grow_to(k->a, (void **)&h->free, &h->cap, (size_t)h->nfree + 1, sizeof *h->free,
                      16) ||
        vms_frames_alloc(k->fr, order_of(pool), &pfn, NULL) != VMS_OK)
        return false;
    vms_frames_set_flags(k->fr, pfn, VMSI_FRAME_HUGETLB | VMS_FRAME_ANON, 0);
    h->free[h->nfree++] = pfn;
    h->total++;
    return true;
}

/* A free pool page (the top of the stack) back to the buddy allocator. */
static void pool_drop(vms_kernel *k, unsigned pool)
{
    vmsi_hpool *h = &k->hpool[pool];
    assert(h->nfree > 0 && h->total > 0);
    uint64_t pfn = h->free[--h->nfree];
    vms_frames_set_flags(k->fr, pfn, 0, VMSI_FRAME_HUGETLB | VMS_FRAME_ANON);
    vms_frames_put(k->fr, pfn, NULL);
    h->total--;
}

/* return_unused_surplus_pages: free surplus pages no reservation needs any more. */
static void drop_unused_surplus(vms_kernel *k, unsigned pool)
{
    vmsi_hpool *h = &k->hpool[pool];
    while (h->surplus > 0 && h->nfree > h->resv) {
        pool_drop(k, pool);
        h->surplus--;
    }
}

/* Fill one pool with n pages at boot (as many as there are, logged as Linux does). */
static void pool_fill(vms_kernel *k, unsigned pool, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        if (!pool_add(k, pool)) {
            vmsi_log(k, VMS_LOG_WARNING,
                     "HugeTLB: allocating %llu of page size %s failed.  Only allocated %llu "
                     "hugepages.",
                     (unsigned long long)n, pool ? "1.00 GiB" : "2.00 MiB", (unsigned long long)i);
            return;
        }
}

/*
 * The pools at boot, as Linux reads its command line: hugepages=N before any
 * hugepagesz= counts pages of the default size (kernel.hugepages) and wins over a
 * hugepagesz=SIZE hugepages=N pair for that size (hugepages_2m, hugepages_1g); the
 * default pool's surplus limit is nr_overcommit_hugepages, the 1 GiB pool's
 * nr_overcommit_hugepages_1g when set.
 */
vms_status vmsi_hugetlb_init(vms_kernel *k, vms_err *err)
{
    (void)err;
    unsigned dflt = pool_of(k->cfg.default_hugepagesz);
    uint64_t n[2] = {k->cfg.hugepages_2m, k->cfg.hugepages_1g};
    if (k->cfg.hugepages)
        n[dflt] = k->cfg.hugepages;
    pool_fill(k, 0, n[0]);
    pool_fill(k, 1, n[1]);
    k->hpool[dflt].overcommit = k->cfg.nr_overcommit_hugepages;
    if (k->cfg.nr_overcommit_hugepages_1g)
        k->hpool[1].overcommit = k->cfg.nr_overcommit_hugepages_1g;
    return VMS_OK;
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
        *h = (vmsi_hpool){0, 0, 0, 0, 0, 0, NULL};
    }
}

bool vmsi_hugetlb_pooled(const vms_kernel *k, vms_pgsize size)
{
    (void)k;
    return size != VMS_PG_4K; /* every explicit huge page comes from a pool, as in Linux */
}

vms_status vmsi_hugetlb_reserve(vms_kernel *k, vms_pgsize size, int64_t npages, vms_err *err)
{
    unsigned pool = pool_of(size);
    vmsi_hpool *h = &k->hpool[pool];
    if (npages < 0) {
        assert(h->resv >= (uint64_t)-npages);
        h->resv -= (uint64_t)-npages;
        drop_unused_surplus(k, pool);
        return VMS_OK;
    }
    uint64_t avail = h->nfree - h->resv, need = (uint64_t)npages > avail ? npages - avail : 0;
    if (need > 0 && h->surplus + need <= h->overcommit) {
        uint64_t got = 0;
        while (got < need && pool_add(k, pool))
            got++;
        h->surplus += got;
        if (got < need) /* the buddy allocator ran out: give them back */
            drop_unused_surplus(k, pool);
        else
            need = 0;
    }
    if (need > 0)
        return vmsi_err(err, VMS_ERR_NOTFOUND,
                        "mmap: ENOMEM: %lld huge pages to reserve, %llu free and unreserved "
                        "(nr_hugepages %llu, surplus %llu of nr_overcommit_hugepages %llu)",
                        (long long)npages, (unsigned long long)avail,
                        (unsigned long long)(h->total - h->surplus), (unsigned long long)h->surplus,
                        (unsigned long long)h->overcommit);
    h->resv += (uint64_t)npages;
    return VMS_OK;
}

uint64_t vmsi_hugetlb_alloc(vms_kernel *k, vms_pgsize size, bool reserved)
{
    unsigned pool = pool_of(size);
    vmsi_hpool *h = &k->hpool[pool];
    reserved = reserved && h->resv > 0; /* a VMA refaulting a page it zapped: unreserved */
    if (!reserved && h->nfree <= h->resv && h->surplus < h->overcommit && pool_add(k, pool))
        h->surplus++; /* alloc_surplus_hugetlb_folio */
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
    unsigned pool = f->order == VMS_FRAMES_ORDER_1G ? 1 : 0;
    vmsi_hpool *h = &k->hpool[pool];
    assert(h->nfree < h->total && h->nfree < h->cap);
    vms_frames_set_flags(k->fr, pfn, 0, VMS_FRAME_DIRTY | VMS_FRAME_LOCKED);
    h->free[h->nfree++] = pfn;
    if (h->surplus > 0) { /* free_huge_folio of a surplus page: back to the buddy */
        pool_drop(k, pool);
        h->surplus--;
    }
    return true;
}

vms_status vms_kernel_set_hugepages(vms_kernel *k, vms_pgsize size, uint64_t n, uint64_t *total)
{
    if (size != VMS_PG_2M && size != VMS_PG_1G)
        return VMS_ERR_INVAL;
    unsigned pool = pool_of(size);
    vmsi_hpool *h = &k->hpool[pool];
    /* Grow: surplus pages in use become persistent first, then new pages. */
    while (h->surplus > 0 && h->total - h->surplus < n)
        h->surplus--;
    while (h->total - h->surplus < n && pool_add(k, pool))
        ;
    /* Shrink: free pages nobody reserved go back; pages in use above n become surplus. */
    while (h->total - h->surplus > n && h->nfree > h->resv)
        pool_drop(k, pool);
    while (h->total - h->surplus > n)
        h->surplus++;
    if (total)
        *total = h->total - h->surplus;
    return VMS_OK;
}

vms_status vms_kernel_set_overcommit_hugepages_size(vms_kernel *k, vms_pgsize size, uint64_t n)
{
    if (size != VMS_PG_2M && size != VMS_PG_1G)
        return VMS_ERR_INVAL;
    k->hpool[pool_of(size)].overcommit = n;
    return VMS_OK;
}

vms_status vms_kernel_set_overcommit_hugepages(vms_kernel *k, uint64_t n)
{
    return vms_kernel_set_overcommit_hugepages_size(k, k->cfg.default_hugepagesz, n);
}

vms_pgsize vms_kernel_default_hugepagesz(const vms_kernel *k)
{
    return k->cfg.default_hugepagesz;
}

vms_status vms_kernel_hugepages_info(const vms_kernel *k, vms_pgsize size, vms_hugepages_info *out)
{
    if (size != VMS_PG_2M && size != VMS_PG_1G)
        return VMS_ERR_INVAL;
    const vmsi_hpool *h = &k->hpool[pool_of(size)];
    *out =
        (vms_hugepages_info){h->total - h->surplus, h->nfree, h->resv, h->surplus, h->overcommit};
    return VMS_OK;
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
        drop_unused_surplus(k, pool_of(size));
    }
}

vms_status vms_kernel_hugepages_show(vms_kernel *k, vms_strbuf *sb)
{
    for (unsigned p = 0; p < 2; p++) {
        vms_hugepages_info hi;
        vms_kernel_hugepages_info(k, p ? VMS_PG_1G : VMS_PG_2M, &hi);
        vms_strbuf_printf(sb,
                          "hugepages-%skB nr_hugepages %llu free_hugepages %llu resv_hugepages "
                          "%llu surplus_hugepages %llu nr_overcommit_hugepages %llu\n",
                          p ? "1048576" : "2048", (unsigned long long)hi.nr_hugepages,
                          (unsigned long long)hi.free_hugepages,
                          (unsigned long long)hi.resv_hugepages,
                          (unsigned long long)hi.surplus_hugepages,
                          (unsigned long long)hi.nr_overcommit_hugepages);
    }
    return sb->failed ? VMS_ERR_NOMEM : VMS_OK;
}
