/*
 * rmap.c — the reverse map: from a frame to the PTEs that map it, and the bookkeeping
 * of mapping and unmapping a frame (Linux mm/rmap.c, much simplified: one list per
 * frame instead of anon_vma chains and the file's interval tree).
 *
 * vms_frame.owner of a mapped block's head holds its reverse map: one mapping inline in
 * the frame (mm_impl.h: no host allocation, the common case of an anonymous page mapped
 * once), or a vmsi_rmap record — the (mm, va) of every PTE that maps the block, plus
 * (for page-cache pages) the object and page index. A record is made by a second
 * mapping (or by the page or swap cache) and freed with its last entry. Invariants
 * (vmsi_rmap_check): for every frame, rmap entries == PTEs that map it == head mapcount;
 * each mapping PTE holds one reference; the zero page is never in the rmap (Linux's
 * vm_normal_page is NULL for it). Huge leaves map a block's head and count once.
 * Reclaim (reclaim.c) walks these lists to unmap a frame from every address space. A
 * swap-cache page keeps its record while cached, naming its slot (swapcache, index).
 */
#include <assert.h>

#include "os/os_impl.h"
#include "os/mm/mm_impl.h"
#include "os/reclaim/reclaim_impl.h"

vmsi_rmap *vmsi_rmap_of(vms_kernel *k, uint64_t pfn)
{
    vms_frame *f = vms_frames_meta(k->fr, pfn);
    return f ? vmsi_rmap_rec(f) : NULL;
}

/* Keep (mm, va) inline in f (which has no reverse map yet). */
static void set_inline(vms_frame *f, vmsi_mm *mm, uint64_t va)
{
    f->owner = (uintptr_t)mm | VMSI_RMAP_INLINE;
    vmsi_spare_set(f, va);
}

/* Add (mm, va) to the head frame pfn's reverse map: inline when it is the first and fits,
 * else in a record (made from the inline mapping if there is one). VMS_ERR_NOMEM on host
 * failure (nothing changed). */
/* f's reverse-map record, made now when it has none: an inline mapping moves into it as
 * its first entry, with room for `room` entries. NULL: no host memory (f unchanged). */
static vmsi_rmap *rec_get(vms_kernel *k, vms_frame *f, size_t room)
{
    vmsi_rmap *r = vmsi_rmap_rec(f);
    if (r)
        return r;
    r = vmsi_zalloc(k->a, sizeof *r);
    if (!r)
        return NULL;
    if (f->owner) { /* the inline mapping becomes the record's first entry */
        vmsi_rmap_ent first = vmsi_rmap_get(f, 0);
        size_t cap = 0;
        if (!vmsi_grow_to(k->a, (void **)&r->e, &cap, room, sizeof *r->e, 2)) {
            vmsi_free(k->a, r, sizeof *r);
            return NULL;
        }
        r->cap = (uint32_t)cap;
        r->e[r->n++] = first;
        memset(f->spare, 0, sizeof f->spare);
    }
    f->owner = (uintptr_t)r;
    return r;
}

/* After a failed grow: a record left with no entry goes, unless a file or the swap cache
 * holds it (their records stay without mappings). */
static void rec_drop_empty(vms_kernel *k, vms_frame *f, vmsi_rmap *r)
{
    if (r->n == 0 && !r->file && !r->swapcache) {
        vmsi_free(k->a, r->e, r->cap * sizeof *r->e);
        vmsi_free(k->a, r, sizeof *r);
        f->owner = 0;
    }
}

vms_status vmsi_page_add_rmap(vms_kernel *k, uint64_t pfn, vmsi_mm *mm, uint64_t va)
{
    vms_frame *f = vms_frames_meta(k->fr, pfn);
    if (!f->owner && va < VMSI_RMAP_VA_MAX && !((uintptr_t)mm & VMSI_RMAP_INLINE)) {
        set_inline(f, mm, va);
        return VMS_OK;
    }
    vmsi_rmap *r = rec_get(k, f, 2);
    if (!r)
        return VMS_ERR_NOMEM;
    size_t cap = r->cap; /* uint32_t in the record: one per mapped frame */
    if (r->n == UINT32_MAX ||
        !vmsi_grow_to(k->a, (void **)&r->e, &cap, (size_t)r->n + 1, sizeof *r->e, 2)) {
        rec_drop_empty(k, f, r);
        return VMS_ERR_NOMEM;
    }
    r->cap = (uint32_t)cap;
    r->e[r->n++] = (vmsi_rmap_ent){mm, va};
    return VMS_OK;
}

vms_status vmsi_rmap_reserve(vms_kernel *k, uint64_t pfn, uint32_t extra)
{
    vms_frame *f = vms_frames_meta(k->fr, pfn);
    vmsi_rmap *r = rec_get(k, f, (size_t)extra + 1);
    if (!r)
        return VMS_ERR_NOMEM;
    size_t cap = r->cap;
    if ((uint64_t)r->n + extra > UINT32_MAX ||
        !vmsi_grow_to(k->a, (void **)&r->e, &cap, (size_t)r->n + extra, sizeof *r->e, 2)) {
        rec_drop_empty(k, f, r);
        return VMS_ERR_NOMEM;
    }
    r->cap = (uint32_t)cap;
    return VMS_OK;
}

/* Remove (mm, va) from pfn's list; the list is freed when empty and not a cache page's
 * identity holder (file pages keep theirs while cached: see pagecache.c). */
void vmsi_page_remove_rmap(vms_kernel *k, uint64_t pfn, vmsi_mm *mm, uint64_t va)
{
    vms_frame *f = vms_frames_meta(k->fr, pfn);
    if (f->owner & VMSI_RMAP_INLINE) {
        vmsi_rmap_ent e = vmsi_rmap_get(f, 0);
        assert(e.mm == mm && e.va == va && "rmap entry missing");
        (void)e;
        f->owner = 0;
        memset(f->spare, 0, sizeof f->spare);
        return;
    }
    vmsi_rmap *r = (vmsi_rmap *)f->owner;
    for (uint32_t i = 0; r && i < r->n; i++) {
        if (r->e[i].mm == mm && r->e[i].va == va) {
            r->e[i] = r->e[r->n - 1];
            r->n--;
            if (r->n == 0 && !r->file && !r->swapcache) {
                vmsi_free(k->a, r->e, r->cap * sizeof *r->e);
                vmsi_free(k->a, r, sizeof *r);
                f->owner = 0;
            }
            return;
        }
    }
    assert(false && "rmap entry missing");
}

static void rss_add(vmsi_mm *mm, uint32_t fflags, vms_pgsize size, int sign)
{
    uint64_t n = vms_pgsize_bytes(size) >> VMS_PAGE_SHIFT;
    uint64_t *c = (fflags & VMS_FRAME_ANON)         ? &mm->rss_anon
                  : (fflags & VMS_FRAME_SWAPBACKED) ? &mm->rss_shmem
                                                    : &mm->rss_file;
    *c = sign > 0 ? *c + n : *c - n;
}

/*
 * Install pte (which maps pfn) at ptep for va, taking a reference, a mapcount and an
 * rmap entry for the frame (nothing for the zero page). The slot must be empty or hold
 * only a protnone/none entry of no frame. VMS_ERR_NOMEM leaves everything unchanged.
 */
vms_status vmsi_map_page_size(vmsi_mm *mm, uint64_t va, uint64_t ptep, uint64_t pfn, uint64_t pte,
                              vms_pgsize size)
{
    vms_kernel *k = mm->k;
    if (k->huge_zero_pfn && pfn == k->huge_zero_pfn) {
        k->huge_zero_maps++; /* not counted otherwise: thp.c frees it with the last */
        mm->thp_leaves++;
    } else if (pfn != k->zero_pfn) {
        /* A PTE of a transparent huge page's subpage counts on the page's head. */
        vms_frame *f;
        uint64_t head = vmsi_folio_head_meta(k, pfn, &f);
        bool thp = (f->flags & VMSI_FRAME_THP) != 0, pmd = thp && size == VMS_PG_2M;
        if (thp && !pmd && vmsi_thp_pte_mapped(k, head, pfn - head, true) != VMS_OK)
            return VMS_ERR_NOMEM;
        if (vmsi_page_add_rmap(k, head, mm, va) != VMS_OK) {
            if (thp && !pmd)
                vmsi_thp_pte_mapped(k, head, pfn - head, false);
            return VMS_ERR_NOMEM;
        }
        vms_frames_get(k->fr, head);
        if (f->mapcount++ == 0 && (f->flags & VMS_FRAME_FILE))
            k->nr_mapped_file += UINT64_C(1) << f->order;
        if (pmd) {
            mm->thp_leaves++;
            vmsi_thp_pmd_mapped(k, head, true);
        }
        rss_add(mm, f->flags, size, +1);
        vmsi_vma *v = vmsi_vma_lookup(mm, va);
        if (v && (v->flags & VMSI_VM_LOCKED) && !(f->flags & VMS_FRAME_LOCKED))
            vms_frames_set_flags(k->fr, head, VMS_FRAME_LOCKED, 0);
        vmsi_lru_add(k, head); /* a new anonymous page becomes reclaimable */
    }
    vmsi_pte_set(mm, ptep, pte);
    return VMS_OK;
}

vms_status vmsi_map_page(vmsi_mm *mm, uint64_t va, uint64_t ptep, uint64_t pfn, uint64_t pte)
{
    /* The page size is the VMA's (a leaf's level, not a bit of every format). */
    vmsi_vma *v = vmsi_vma_lookup(mm, va);
    return vmsi_map_page_size(mm, va, ptep, pfn, pte, v ? vmsi_vma_pgsize(v) : VMS_PG_4K);
}

/*
 * Drop what a leaf entry pte (mapping va, page size `size`) held, without touching the
 * entry itself: the rmap entry, the mapcount and the reference (freeing the frame if it
 * was the last), or the swap slot reference of a swap entry. A dirty file page is
 * marked DIRTY for writeback.
 */
bool vmsi_pte_trusted(vmsi_mm *mm, uint64_t va, uint64_t pte, vms_pgsize size)
{
    vms_kernel *k = mm->k;
    if (vmsi_is_swap_pte(k, pte)) {
        uint64_t slot = vmsi_swp_offset(k, pte);
        return slot > 0 && slot < k->swap.nslots && k->swap.count[slot] > 0;
    }
    if (!vmsi_pte_mapped(k, pte))
        return pte == 0; /* the kernel writes no other unmapped, non-swap value */
    uint64_t pfn = vmsi_pte_head_pfn(k, pte, size);
    if (vmsi_is_zero_pfn(k, pfn))
        return true;
    vms_frame *f;
    vmsi_folio_head_meta(k, pfn, &f);
    uint32_t n = f ? vmsi_rmap_count(f) : 0;
    for (uint32_t i = 0; i < n; i++) {
        vmsi_rmap_ent e = vmsi_rmap_get(f, i);
        if (e.mm == mm && e.va == va)
            return true;
    }
    return false;
}

/* Panic for a leaf the kernel did not write (see vmsi_pte_trusted). */
static void bad_page_map(vmsi_mm *mm, uint64_t va, uint64_t pte)
{
    vmsi_panic(mm->k, "Bad page map: pte %llx at va %llx (the kernel did not write it)",
               (unsigned long long)pte, (unsigned long long)va);
}

void vmsi_page_unref(vmsi_mm *mm, uint64_t va, uint64_t pte, vms_pgsize size)
{
    vms_kernel *k = mm->k;
    if (!vmsi_pte_trusted(mm, va, pte, size)) {
        bad_page_map(mm, va, pte); /* drop nothing it did not take */
        return;
    }
    if (vmsi_is_swap_pte(k, pte)) {
        mm->swapents--;
        vmsi_swap_free(k, vmsi_swp_offset(k, pte));
        return;
    }
    if (!vmsi_pte_mapped(k, pte))
        return;
    uint64_t pfn = vmsi_pte_head_pfn(k, pte, size);
    if (pfn == k->zero_pfn)
        return;
    if (k->huge_zero_pfn && pfn == k->huge_zero_pfn) {
        mm->thp_leaves--;
        vmsi_huge_zero_put(k);
        return;
    }
    vms_frame *f;
    uint64_t head = vmsi_folio_head_meta(k, pfn, &f); /* a subpage of a PTE-mapped THP: its head */
    vmsi_page_remove_rmap(k, head, mm, va);
    rss_add(mm, f->flags, size, -1);
    if (--f->mapcount == 0 && (f->flags & VMS_FRAME_FILE))
        k->nr_mapped_file -= UINT64_C(1) << f->order;
    if (f->flags & VMSI_FRAME_THP) {
        if (size == VMS_PG_2M) {
            mm->thp_leaves--;
            vmsi_thp_pmd_mapped(k, head, false);
        } else {
            vmsi_thp_pte_mapped(k, head, pfn - head, false);
        }
    }
    if (vmsi_pte_dirty(k, pte) && (f->flags & VMS_FRAME_FILE) && vmsi_pte_write(k, pte))
        vms_frames_set_flags(k->fr, head, VMS_FRAME_DIRTY, 0);
    if (f->flags & VMS_FRAME_LOCKED)
        vmsi_update_mlock(k, head);
    vmsi_page_put(k, head);
}

/* Clear the leaf at ptep and drop what it held (vmsi_page_unref). The caller flushes
 * TLBs afterwards. */
void vmsi_zap_pte(vmsi_mm *mm, uint64_t va, uint64_t ptep, uint64_t pte, vms_pgsize size)
{
    vmsi_pte_set(mm, ptep, 0);
    vmsi_page_unref(mm, va, pte, size);
}

/* ---- the checker ------------------------------------------------------------------------ */

typedef struct check_ctx {
    vms_kernel *k;
    vms_err *err;
    vms_status st;
    uint64_t ptes; /* frame-mapping PTEs seen */
} check_ctx;

/* Whether a 2 MiB leaf in the 4 KiB VMA v maps a transparent huge page or the huge zero
 * page, wholly inside v. */
static bool thp_leaf(vms_kernel *k, const vmsi_vma *v, uint64_t va, uint64_t pte, vms_pgsize size)
{
    if (size != VMS_PG_2M || vmsi_vma_pgsize(v) != VMS_PG_4K || !vmsi_pte_mapped(k, pte) ||
        va + vms_pgsize_bytes(size) > v->end)
        return false;
    uint64_t pfn = vmsi_pte_head_pfn(k, pte, size);
    vms_frame *f = vms_frames_meta(k->fr, pfn);
    return (k->huge_zero_pfn && pfn == k->huge_zero_pfn) || (f && (f->flags & VMSI_FRAME_THP));
}

static void check_pte(vmsi_mm *mm, uint64_t va, uint64_t ptep, uint64_t pte, vms_pgsize size,
                      void *ud)
{
    check_ctx *c = ud;
    (void)ptep;
    if (c->st != VMS_OK)
        return;
    vmsi_vma *v = vmsi_vma_lookup(mm, va);
    if (!v || (vmsi_vma_pgsize(v) != size && !thp_leaf(c->k, v, va, pte, size))) {
        c->st = vmsi_err(c->err, VMS_ERR_INVAL, "pte at %llx outside any VMA of its size",
                         (unsigned long long)va);
        return;
    }
    if (vmsi_pte_present(c->k, pte) && vmsi_pte_write(c->k, pte) && !(v->prot & VMS_PROT_WRITE)) {
        c->st = vmsi_err(c->err, VMS_ERR_INVAL, "pte at %llx writable in a read-only VMA",
                         (unsigned long long)va);
        return;
    }
    if (!vmsi_pte_mapped(c->k, pte))
        return;
    uint64_t pfn = vmsi_pte_head_pfn(c->k, pte, size);
    if (vmsi_is_zero_pfn(c->k, pfn)) {
        if (vmsi_pte_write(c->k, pte))
            c->st = vmsi_err(c->err, VMS_ERR_INVAL, "zero page writable at %llx",
                             (unsigned long long)va);
        return;
    }
    c->ptes++;
    pfn = vmsi_folio_head(c->k, pfn); /* a PTE of a THP's subpage: the page's head */
    if ((vms_frames_meta(c->k->fr, pfn)->flags & VMSI_FRAME_SWAPCACHE) &&
        vmsi_pte_write(c->k, pte)) {
        c->st = vmsi_err(c->err, VMS_ERR_INVAL, "swap-cache page writable at %llx",
                         (unsigned long long)va);
        return;
    }
    vms_frame *f = vms_frames_meta(c->k->fr, pfn);
    for (uint32_t i = 0; i < vmsi_rmap_count(f); i++) {
        vmsi_rmap_ent e = vmsi_rmap_get(f, i);
        if (e.mm == mm && e.va == va)
            return;
    }
    c->st = vmsi_err(c->err, VMS_ERR_INVAL, "pte at %llx (pfn %llx) has no rmap entry",
                     (unsigned long long)va, (unsigned long long)pfn);
}

/* Every rmap entry of the frame at pfn must be a PTE that maps it; count == mapcount. */
static vms_status check_frame(vms_kernel *k, uint64_t pfn, vms_frame *f, uint64_t *n,
                              uint64_t *thp_pmd, vms_err *err)
{
    vmsi_rmap *r = vmsi_rmap_rec(f);
    uint32_t cnt = vmsi_rmap_count(f);
    if (cnt != f->mapcount)
        return vmsi_err(err, VMS_ERR_INVAL, "pfn %llx: mapcount %u, rmap has %u",
                        (unsigned long long)pfn, f->mapcount, cnt);
    uint32_t cache_ref = (f->flags & VMS_FRAME_FILE) ? 1u : 0u;
    uint32_t swap_ref = (f->flags & VMSI_FRAME_SWAPCACHE) ? 1u : 0u;
    cache_ref += (f->flags & VMSI_FRAME_HUGETLB) ? 1u : 0u; /* the pool's (hugetlb.c) */
    cache_ref += (f->flags & VMSI_FRAME_HUGETLB) && r && r->file ? 1u : 0u; /* hugetlbfs's */
    /* Each DMA pin holds a reference too (vms_dma_check matches pins with mappings). */
    if (f->refcount != f->mapcount + cache_ref + swap_ref + f->pincount)
        return vmsi_err(err, VMS_ERR_INVAL, "pfn %llx: refcount %u, mapcount %u%s%s, pins %u",
                        (unsigned long long)pfn, f->refcount, f->mapcount,
                        cache_ref ? " + page cache" : "", swap_ref ? " + swap cache" : "",
                        f->pincount);
    if (swap_ref && (!r || !r->swapcache))
        return vmsi_err(err, VMS_ERR_INVAL, "pfn %llx: swap-cache frame without its slot",
                        (unsigned long long)pfn);
    if (r && r->n == 0 && !r->file && !r->swapcache)
        return vmsi_err(err, VMS_ERR_INVAL, "pfn %llx: an empty reverse-map record",
                        (unsigned long long)pfn);
    if ((f->owner & VMSI_RMAP_INLINE) && (f->flags & (VMS_FRAME_FILE | VMSI_FRAME_SWAPCACHE)))
        return vmsi_err(err, VMS_ERR_INVAL, "pfn %llx: a cache page without its record",
                        (unsigned long long)pfn);
    for (uint32_t i = 0; i < cnt; i++) {
        vmsi_rmap_ent e = vmsi_rmap_get(f, i);
        uint64_t ptep = 0;
        vms_pgsize size;
        uint64_t pte = vmsi_leaf_find(e.mm, e.va, &ptep, &size);
        uint64_t mask = ~((UINT64_C(1) << f->order) - 1);
        if (!vmsi_vma_lookup(e.mm, e.va) || !vmsi_pte_mapped(e.mm->k, pte) ||
            (vmsi_pte_pfn(e.mm->k, pte) & mask) != pfn)
            return vmsi_err(err, VMS_ERR_INVAL, "pfn %llx: rmap entry va %llx not mapped there",
                            (unsigned long long)pfn, (unsigned long long)e.va);
        /* A THP: by a 2 MiB leaf, or by the PTE of subpage i at offset i of its range
         * when the page is PTE-mapped (its state then counts the PTEs, below). */
        bool thp = (f->flags & VMSI_FRAME_THP) != 0;
        uint64_t sub = vmsi_pte_pfn(k, pte) - pfn;
        bool bad_pte = thp && size != VMS_PG_2M &&
                       (!vmsi_thp_folio_of(k, pfn) || ((e.va >> VMS_PAGE_SHIFT) & 511) != sub);
        if (thp && (f->order != 9 || bad_pte))
            return vmsi_err(err, VMS_ERR_INVAL, "pfn %llx: huge page mapped at va %llx by a %s",
                            (unsigned long long)pfn, (unsigned long long)e.va,
                            f->order != 9 ? "block not of order 9" : "stray 4 KiB entry");
    }
    *n += cnt;
    if (!(f->flags & VMSI_FRAME_THP))
        return VMS_OK;
    bool pmd;
    vms_status st = vmsi_thp_check_folio(k, pfn, &pmd, err);
    *thp_pmd += pmd ? 1 : 0;
    return st;
}

vms_status vmsi_rmap_check(vms_kernel *k, vms_err *err)
{
    check_ctx c = {k, err, VMS_OK, 0};
    for (unsigned i = 0; i < k->nprocs && c.st == VMS_OK; i++) {
        vmsi_mm *mm = k->procs[i]->mm;
        /* Threads share one mm: visit each mm once (its first live process entry). */
        bool seen = false;
        for (unsigned j = 0; j < i && mm; j++)
            seen |= k->procs[j]->mm == mm;
        if (mm && !seen)
            vmsi_pte_range(mm, 0, vmsi_task_size(k), check_pte, &c);
    }
    if (c.st != VMS_OK)
        return c.st;
    uint64_t rmap_total = 0, thp_pmd = 0;
    size_t nr;
    const vms_frames_range *r = vms_frames_ranges(k->fr, &nr);
    for (size_t i = 0; i < nr; i++) {
        for (uint64_t pfn = r[i].base_pfn; pfn < r[i].base_pfn + r[i].npages; pfn++) {
            vms_frame *f = vms_frames_meta(k->fr, pfn);
            if (!f) {
                pfn |= 511; /* a chunk without metadata: all free */
                continue;
            }
            if (!(f->flags & VMS_FRAME_HEAD) || vmsi_is_zero_pfn(k, pfn) ||
                (f->flags & (VMS_FRAME_PAGETABLE | VMS_FRAME_KERNEL)))
                continue;
            vms_status st = check_frame(k, pfn, f, &rmap_total, &thp_pmd, err);
            if (st != VMS_OK)
                return st;
        }
    }
    if (rmap_total != c.ptes)
        return vmsi_err(err, VMS_ERR_INVAL, "%llu rmap entries but %llu mapping PTEs",
                        (unsigned long long)rmap_total, (unsigned long long)c.ptes);
    return vmsi_thp_check(k, thp_pmd, err);
}

/* Recompute a frame's LOCKED flag: set while some mapping of it lies in a locked VMA
 * (Linux keeps an mlock_count; one pass over the rmap gives the same answer). */
void vmsi_update_mlock(vms_kernel *k, uint64_t pfn)
{
    pfn = vmsi_folio_head(k, pfn);
    vms_frame *f = vms_frames_meta(k->fr, pfn);
    bool locked = false;
    for (uint32_t i = 0; i < vmsi_rmap_count(f) && !locked; i++) {
        vmsi_rmap_ent e = vmsi_rmap_get(f, i);
        vmsi_vma *v = vmsi_vma_lookup(e.mm, e.va);
        locked = v && (v->flags & VMSI_VM_LOCKED);
    }
    vms_frames_set_flags(k->fr, pfn, locked ? VMS_FRAME_LOCKED : 0, locked ? 0 : VMS_FRAME_LOCKED);
    if (!locked)
        vmsi_lru_add(k, pfn); /* back from the unevictable set */
}
