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
 * faults and COW copies take unreserved pages. The owner's address space keeps a
 * private mapping's resv_map (mm->hresv, by va >> 21): an entry means the page's
 * reservation was consumed, so resv == Σ owner pages without an entry + Σ files'
 * reserved indices without a page (vmsi_hugetlb_check).
 */
#include <assert.h>
#include <string.h>

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
static void mounts_free(vms_kernel *k);

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
    mounts_free(k);
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
    reserved = reserved && h->resv > 0; /* a guard: the resv_maps keep this exact */
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

/* Whether v holds reservations of its own (a private mapping that made them, Linux's
 * HPAGE_RESV_OWNER); a shared file mapping's are its file's. */
static bool resv_owner(const vms_kernel *k, const vmsi_vma *v)
{
    vms_pgsize size = vmsi_vma_pgsize(v);
    return size != VMS_PG_4K && !(v->flags & VMSI_VM_NORESERVE) && vmsi_hugetlb_pooled(k, size) &&
           !((v->flags & VMSI_VM_SHARED) && v->file);
}

/* region_count + region_del over the mm's resv_map: the huge pages of [start, end)
 * whose reservation a fault consumed, their entries removed (hugetlb_vm_op_close). */
static uint64_t resv_consumed(vmsi_mm *mm, uint64_t start, uint64_t end)
{
    uint64_t n = 0;
    for (uint64_t i = start >> 21, v; vmsi_radix_next(&mm->hresv, &i, &v) && i < end >> 21; i++) {
        vmsi_radix_set(&mm->hresv, mm->k->a, i, 0); /* removing never fails */
        n++;
    }
    return n;
}

/* munmap / exit of [start, end): each private mapping that made reservations gives back
 * those of its huge pages there that no fault consumed (Linux's hugetlb_vm_op_close:
 * the pages minus region_count of its resv_map). A page a fault consumed stays consumed
 * after MADV_DONTNEED or a truncate took it away. */
void vmsi_hugetlb_unmap(vmsi_mm *mm, uint64_t start, uint64_t end)
{
    vms_kernel *k = mm->k;
    for (vmsi_vma *v = vmsi_vma_find(mm, start); v && v < mm->vma + mm->nvma && v->start < end;
         v++) {
        vms_pgsize size = vmsi_vma_pgsize(v);
        if (!resv_owner(k, v))
            continue; /* a shared mapping's reservations are its file's (resv_map) */
        uint64_t s = v->start > start ? v->start : start, e = v->end < end ? v->end : end;
        uint64_t pages = (e - s) / vms_pgsize_bytes(size);
        uint64_t unfaulted = pages - resv_consumed(mm, s, e);
        vmsi_hpool *h = &k->hpool[pool_of(size)];
        h->resv -= unfaulted < h->resv ? unfaulted : h->resv;
        drop_unused_surplus(k, pool_of(size));
    }
}

/* Process i's address space, or NULL when it has none or an earlier process shares it
 * (threads, CLONE_VM): each address space once over k->procs. */
static vmsi_mm *first_of_mm(vms_kernel *k, unsigned i)
{
    vmsi_mm *mm = k->procs[i]->mm;
    for (unsigned j = 0; j < i && mm; j++)
        if (k->procs[j]->mm == mm)
            return NULL;
    return mm;
}

vms_status vmsi_hugetlb_check(vms_kernel *k, vms_err *err)
{
    uint64_t want[2] = {0, 0}; /* the reservations every resv_map accounts for */
    for (unsigned i = 0; i < k->nprocs; i++) {
        vmsi_mm *mm = first_of_mm(k, i);
        for (size_t n = 0; mm && n < mm->nvma; n++) {
            const vmsi_vma *v = &mm->vma[n];
            if (!resv_owner(k, v))
                continue;
            uint64_t hb = vms_pgsize_bytes(vmsi_vma_pgsize(v)), used = 0;
            for (uint64_t x = v->start >> 21, e;
                 vmsi_radix_next(&mm->hresv, &x, &e) && x < v->end >> 21; x++)
                used++;
            want[pool_of(vmsi_vma_pgsize(v))] += (v->end - v->start) / hb - used;
        }
    }
    for (vms_file *f = k->files; f; f = f->next)
        for (uint64_t x = 0, e; f->kind == VMSI_FILE_HTLBFS && vmsi_radix_next(&f->resv, &x, &e);
             x++)
            want[pool_of(f->hpage)] += !vmsi_radix_get(&f->pages, x);
    for (unsigned p = 0; p < 2; p++)
        if (want[p] != k->hpool[p].resv)
            return vmsi_err(err, VMS_ERR_INVAL,
                            "hugetlb: %llu pages reserved in the %s pool, the mappings' and "
                            "files' resv_maps account for %llu",
                            (unsigned long long)k->hpool[p].resv, p ? "1 GiB" : "2 MiB",
                            (unsigned long long)want[p]);
    return VMS_OK;
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

/* ---- hugetlbfs: mounts and files ------------------------------------------------------ */
/*
 * A hugetlbfs file (VMSI_FILE_HTLBFS) keeps its pages in f->pages by huge-page index
 * (a pool page each, with an rmap record naming (f, index); the cache holds one
 * reference besides the pool's), and Linux's resv_map in f->resv: the indices a shared
 * mapping reserved or a fault instantiated. So an index in resv without a cached page
 * holds one reservation of the pool (HugePages_Rsvd); truncate and the last reference of
 * an unlinked file give those back and free the pages (remove_inode_hugepages,
 * hugetlb_unreserve_pages). Private mappings reserve per mapping as MAP_HUGETLB does
 * (the VMA that made them owns them) and never add pages to the file: a private fault
 * of a page the file lacks takes a page of its own, a write to a cached one copies it.
 */

typedef struct hmount {
    char *path;
    size_t len;
    vms_pgsize size;
} hmount;

struct vmsi_hugetlbfs {
    hmount *m;
    size_t n, cap;
};

/* The mount PATH lies on, as MOUNT/NAME with NAME non-empty and without '/'; or NULL. */
static const hmount *mount_of(const vms_kernel *k, const char *path)
{
    const struct vmsi_hugetlbfs *fs = k->hugetlbfs;
    for (size_t i = 0; fs && path && i < fs->n; i++) {
        const hmount *m = &fs->m[i];
        if (!strncmp(path, m->path, m->len) && path[m->len] == '/' && path[m->len + 1] &&
            !strchr(path + m->len + 1, '/'))
            return m;
    }
    return NULL;
}

bool vms_hugetlbfs_is(const vms_kernel *k, const char *path)
{
    return mount_of(k, path) != NULL;
}

vms_status vms_hugetlbfs_mount(vms_kernel *k, const char *path, vms_pgsize pagesize, vms_err *err)
{
    if (pagesize == VMS_PG_4K)
        pagesize = k->cfg.default_hugepagesz;
    if (pagesize != VMS_PG_2M && pagesize != VMS_PG_1G)
        return vmsi_err(err, VMS_ERR_INVAL, "hugetlbfs: pagesize: expected 2M or 1G");
    size_t n = path ? strlen(path) : 0;
    if (n < 2 || n > 200 || path[0] != '/' || path[n - 1] == '/')
        return vmsi_err(err, VMS_ERR_INVAL,
                        "hugetlbfs: mount point '%s': expected an absolute path such as /mnt/huge",
                        path ? path : "(null)");
    struct vmsi_hugetlbfs *fs = k->hugetlbfs;
    for (size_t i = 0; fs && i < fs->n; i++)
        if (!strcmp(fs->m[i].path, path))
            return vmsi_err(err, VMS_ERR_EXISTS, "hugetlbfs: %s is already mounted", path);
    if (!fs && !(fs = k->hugetlbfs = vmsi_zalloc(k->a, sizeof *fs)))
        return vmsi_err(err, VMS_ERR_NOMEM, "hugetlbfs: out of host memory");
    char *copy = vmsi_alloc(k->a, n + 1);
    if (!copy || !vmsi_grow_to(k->a, (void **)&fs->m, &fs->cap, fs->n + 1, sizeof *fs->m, 4)) {
        if (copy)
            vmsi_free(k->a, copy, n + 1);
        return vmsi_err(err, VMS_ERR_NOMEM, "hugetlbfs: out of host memory");
    }
    memcpy(copy, path, n + 1);
    fs->m[fs->n++] = (hmount){copy, n, pagesize};
    return VMS_OK;
}

static void mounts_free(vms_kernel *k)
{
    struct vmsi_hugetlbfs *fs = k->hugetlbfs;
    if (!fs)
        return;
    for (size_t i = 0; i < fs->n; i++)
        vmsi_free(k->a, fs->m[i].path, fs->m[i].len + 1);
    if (fs->m)
        vmsi_free(k->a, fs->m, fs->cap * sizeof *fs->m);
    vmsi_free(k->a, fs, sizeof *fs);
    k->hugetlbfs = NULL;
}

/* The named (not unlinked) hugetlbfs file at path, or NULL. */
static vms_file *file_lookup(vms_kernel *k, const char *path)
{
    for (vms_file *f = k->files; f; f = f->next)
        if (f->kind == VMSI_FILE_HTLBFS && f->path && !f->unlinked && !strcmp(f->path, path))
            return f;
    return NULL;
}

vms_status vmsi_hugetlbfs_new(vms_kernel *k, vms_pgsize size, uint64_t len, vms_file **out,
                              vms_err *err)
{
    vms_status st = vmsi_file_new(k, VMSI_FILE_HTLBFS, len, out, err);
    if (st == VMS_OK)
        (*out)->hpage = size;
    return st;
}

vms_status vms_hugetlbfs_open(vms_kernel *k, const char *path, bool create, vms_file **out,
                              vms_err *err)
{
    *out = NULL;
    const hmount *m = mount_of(k, path);
    if (!m)
        return vmsi_err(err, VMS_ERR_NOTFOUND, "%s: not a file on a hugetlbfs mount",
                        path ? path : "(null)");
    vms_file *f = file_lookup(k, path);
    if (f) {
        vmsi_file_get(f);
        *out = f;
        return VMS_OK;
    }
    if (!create)
        return vmsi_err(err, VMS_ERR_NOTFOUND, "%s: no such file", path);
    vms_status st = vmsi_hugetlbfs_new(k, m->size, 0, &f, err);
    if (st != VMS_OK)
        return st;
    size_t n = strlen(path) + 1;
    if (!(f->path = vmsi_alloc(k->a, n))) {
        vmsi_file_put(k, f);
        return vmsi_err(err, VMS_ERR_NOMEM, "hugetlbfs: out of host memory");
    }
    memcpy(f->path, path, n);
    vmsi_file_get(f); /* the name's reference (its directory entry) */
    *out = f;
    return VMS_OK;
}

uint64_t vmsi_hugetlbfs_find(const vms_file *f, uint64_t index)
{
    return vmsi_radix_get(&f->pages, index);
}

bool vmsi_hugetlbfs_reserved(const vms_file *f, uint64_t index)
{
    return vmsi_radix_get(&f->resv, index) && !vmsi_radix_get(&f->pages, index);
}

vms_status vmsi_hugetlbfs_add(vms_kernel *k, vms_file *f, uint64_t index, uint64_t pfn)
{
    vmsi_rmap *r = vmsi_zalloc(k->a, sizeof *r);
    bool had = vmsi_radix_get(&f->resv, index) != 0;
    if (!r || vmsi_radix_set(&f->pages, k->a, index, pfn) != VMS_OK ||
        (!had && vmsi_radix_set(&f->resv, k->a, index, 1) != VMS_OK)) {
        vmsi_radix_set(&f->pages, k->a, index, 0); /* removing never fails */
        if (r)
            vmsi_free(k->a, r, sizeof *r);
        return VMS_ERR_NOMEM;
    }
    r->file = f;
    r->index = index;
    vms_frame *fm = vms_frames_meta(k->fr, pfn);
    assert(!fm->owner);
    fm->owner = (uintptr_t)r;
    vms_frames_get(k->fr, pfn); /* the cache's */
    f->cached++;
    return VMS_OK;
}

/* Take the cached page at index out of f (it is mapped nowhere any more): its record
 * goes, the cache's reference is dropped, so the page goes back to its pool. */
static void cache_del(vms_kernel *k, vms_file *f, uint64_t index, uint64_t pfn)
{
    vms_frame *fm = vms_frames_meta(k->fr, pfn);
    vmsi_rmap *r = vmsi_rmap_rec(fm);
    assert(r && r->file == f && r->n == 0 && fm->mapcount == 0);
    if (r->e)
        vmsi_free(k->a, r->e, r->cap * sizeof *r->e);
    vmsi_free(k->a, r, sizeof *r);
    fm->owner = 0;
    vmsi_radix_set(&f->pages, k->a, index, 0);
    f->cached--;
    vmsi_page_put(k, pfn);
}

static void zap_cb(vmsi_mm *mm, uint64_t va, uint64_t ptep, uint64_t pte, vms_pgsize size, void *ud)
{
    (void)ud;
    vmsi_zap_pte(mm, va, ptep, pte, size);
}

/* hugetlb_vmdelete_list: unmap the pages of f from index `from` on in every address
 * space (shared mappings and private copies alike), shooting down their translations. */
static void unmap_from(vms_kernel *k, vms_file *f, uint64_t from)
{
    uint64_t hb = vms_pgsize_bytes(f->hpage);
    for (unsigned i = 0; i < k->nprocs; i++) {
        vmsi_mm *mm = first_of_mm(k, i);
        for (size_t n = 0; mm && n < mm->nvma; n++) {
            const vmsi_vma *v = &mm->vma[n];
            uint64_t off = v->pgoff << VMS_PAGE_SHIFT, cut = from * hb;
            if (v->file != f || off + (v->end - v->start) <= cut)
                continue;
            uint64_t s = cut > off ? v->start + (cut - off) : v->start;
            vmsi_pte_range(mm, s, v->end, zap_cb, NULL);
            vmsi_flush_tlb_range(k, mm, k->cur_core, s, v->end);
        }
    }
}

/* remove_inode_hugepages + hugetlb_unreserve_pages from index `from` on. */
static void shrink(vms_kernel *k, vms_file *f, uint64_t from)
{
    unmap_from(k, f, from);
    unsigned pool = pool_of(f->hpage);
    vmsi_hpool *h = &k->hpool[pool];
    for (uint64_t i = from, e; vmsi_radix_next(&f->resv, &i, &e); i++) {
        uint64_t pfn = vmsi_radix_get(&f->pages, i);
        if (pfn) {
            cache_del(k, f, i, pfn);
        } else {
            assert(h->resv > 0);
            h->resv--; /* reserved, never instantiated */
        }
        vmsi_radix_set(&f->resv, k->a, i, 0);
    }
    assert(f->cached == 0 || from > 0);
    drop_unused_surplus(k, pool);
}

void vmsi_hugetlbfs_evict(vms_kernel *k, vms_file *f)
{
    shrink(k, f, 0);
    vmsi_radix_free(&f->pages, k->a);
    vmsi_radix_free(&f->resv, k->a);
}

/* The file of a truncate/unlink: on a mount, and existing. */
static vms_status path_file(vms_kernel *k, const char *what, const char *path, vms_file **f,
                            vms_err *err)
{
    if (!mount_of(k, path))
        return vmsi_err(err, VMS_ERR_UNSUPPORTED, "%s %s: only files on a hugetlbfs mount", what,
                        path ? path : "(null)");
    if (!(*f = file_lookup(k, path)))
        return vmsi_err(err, VMS_ERR_NOTFOUND, "%s %s: no such file", what, path);
    return VMS_OK;
}

vms_status vms_sys_truncate(vms_kernel *k, const char *path, uint64_t len, vms_err *err)
{
    vms_file *f;
    vms_status st = path_file(k, "truncate", path, &f, err);
    if (st != VMS_OK)
        return st;
    uint64_t hb = vms_pgsize_bytes(f->hpage);
    if (len % hb || len > vmsi_task_size(k))
        return vmsi_err(err, VMS_ERR_INVAL,
                        "truncate %s: EINVAL: %llu is not a multiple of the huge page size %llu",
                        path, (unsigned long long)len, (unsigned long long)hb);
    if (len < f->size)
        shrink(k, f, len / hb);
    f->size = len;
    f->npages = len >> VMS_PAGE_SHIFT;
    return VMS_OK;
}

vms_status vms_sys_unlink(vms_kernel *k, const char *path, vms_err *err)
{
    vms_file *f;
    vms_status st = path_file(k, "unlink", path, &f, err);
    if (st != VMS_OK)
        return st;
    f->unlinked = true;
    vmsi_file_put(k, f); /* the name's reference: the last one frees it (evict) */
    return VMS_OK;
}

/* ---- shared mappings' reservations (hugetlb_reserve_pages, VM_MAYSHARE) ---------------- */

/* Commit (keep) or undo the pending marks of [first, first + n): the indices an mmap of f
 * was reserving. Returns how many there were. */
static uint64_t pending(vms_kernel *k, vms_file *f, uint64_t first, uint64_t n, bool keep)
{
    uint64_t got = 0;
    for (uint64_t i = first, e; vmsi_radix_next(&f->resv, &i, &e) && i < first + n; i++)
        if (e == 2) {
            vmsi_radix_set(&f->resv, k->a, i, keep ? 1 : 0); /* a replacement: never fails */
            got++;
        }
    return got;
}

vms_status vmsi_hugetlbfs_reserve(vms_kernel *k, vms_file *f, uint64_t first, uint64_t n,
                                  vms_err *err)
{
    uint64_t have = 0, end = first + n;
    for (uint64_t i = first, e; vmsi_radix_next(&f->resv, &i, &e) && i < end; i++)
        have++;
    uint64_t chg = n - have; /* region_chg */
    vms_status st = vmsi_hugetlb_reserve(k, f->hpage, (int64_t)chg, err);
    for (uint64_t i = first; st == VMS_OK && i < end;) {
        uint64_t j = i, e;
        uint64_t next = vmsi_radix_next(&f->resv, &j, &e) && j < end ? j : end;
        for (; i < next && st == VMS_OK; i++)
            st = vmsi_radix_set(&f->resv, k->a, i, 2);
        i = next + 1;
    }
    if (st == VMS_ERR_NOMEM) { /* only a reservation made can get here */
        pending(k, f, first, n, false);
        vmsi_hugetlb_reserve(k, f->hpage, -(int64_t)chg, NULL);
        return vmsi_err(err, VMS_ERR_NOMEM, "mmap: out of host memory");
    }
    return st;
}

void vmsi_hugetlbfs_reserve_done(vms_kernel *k, vms_file *f, uint64_t first, uint64_t n, bool keep)
{
    uint64_t got = pending(k, f, first, n, keep);
    if (!keep)
        vmsi_hugetlb_reserve(k, f->hpage, -(int64_t)got, NULL);
}
