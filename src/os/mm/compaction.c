/*
 * compaction.c — memory compaction (Linux mm/compaction.c and mm/migrate.c, much
 * reduced): make a free 2 MiB block by migrating the movable pages out of one 2 MiB
 * region. Direct compaction runs when a transparent huge page allocation finds no free
 * block in a VMA given MADV_HUGEPAGE (Linux's defrag = madvise).
 *
 * Movable: an order-0 anonymous or page-cache frame that is not pinned, not mlocked and
 * has no holder beyond its mappings and caches (refcount == mapcount + cache + swap
 * cache). Unmovable: page tables, kernel buffers, the zero pages, hugetlb and
 * transparent huge pages, pinned or locked pages, frames the caller holds. The region
 * chosen is the 2 MiB-aligned block with the most free frames among those whose used
 * frames are all movable (Linux scans with two pointers; the choice differs, the
 * migration is the same). Migrating a page: a new frame outside the region gets its
 * bytes, flags, references and reverse map; every PTE mapping it is rewritten to the new
 * frame and its translation shot down; the cache slot (page cache, swap cache) names the
 * new frame; the old frame is freed. Bytes, rmap and counts are preserved
 * (vms_kernel_check). Costs: `copy_page` per page migrated, to the faulting core.
 */
#include <assert.h>

#include "os/mm/mm_impl.h"
#include "os/os_impl.h"
#include "os/reclaim/reclaim_impl.h"

#define REGION UINT64_C(512)

/* Whether the frame at pfn can be migrated (see the top of this file). */
static bool movable(const vms_frame *f)
{
    if (!(f->flags & VMS_FRAME_HEAD) || f->order != 0 || f->pincount ||
        (f->flags & (VMS_FRAME_LOCKED | VMS_FRAME_PAGETABLE | VMS_FRAME_KERNEL | VMS_FRAME_ZERO |
                     VMSI_FRAME_HUGETLB | VMSI_FRAME_THP | VMS_FRAME_RESERVED)) ||
        !(f->flags & (VMS_FRAME_ANON | VMS_FRAME_FILE)))
        return false;
    uint32_t expect = f->mapcount + ((f->flags & VMS_FRAME_FILE) ? 1u : 0u) +
                      ((f->flags & VMSI_FRAME_SWAPCACHE) ? 1u : 0u);
    return f->refcount == expect;
}

/* Free frames of the region at base, or -1 when a used frame there is not movable. */
static int64_t region_free(vms_kernel *k, uint64_t base)
{
    int64_t nfree = 0;
    for (uint64_t p = base; p < base + REGION; p++) {
        vms_frame *f = vms_frames_meta(k->fr, p);
        if (!f)
            return REGION; /* no metadata chunk: all free (and then coalesced already) */
        if (!(f->flags & VMS_FRAME_ALLOC) && !(f->flags & VMS_FRAME_RESERVED)) {
            nfree++;
            continue;
        }
        if (!movable(f))
            return -1;
    }
    return nfree;
}

/* Move the page at old to a free frame outside [lo, lo + REGION). False (nothing
 * changed) when no such frame or no host memory for the copy. */
static bool migrate_page(vms_kernel *k, uint64_t old, uint64_t lo, unsigned core)
{
    uint64_t held[REGION], nheld = 0, pfn = 0;
    bool ok = false;
    while (nheld < REGION && vms_frames_alloc(k->fr, 0, &pfn, NULL) == VMS_OK) {
        if (pfn < lo || pfn >= lo + REGION) {
            ok = true;
            break;
        }
        held[nheld++] = pfn; /* inside the region: keep it out of the way meanwhile */
    }
    for (uint64_t i = 0; i < nheld; i++)
        vms_frames_put(k->fr, held[i], NULL);
    if (!ok)
        return false;
    if (vms_ram_copy_frame(k->ram, pfn, old) != VMS_OK) {
        vms_frames_put(k->fr, pfn, NULL);
        return false;
    }
    vms_frame *f = vms_frames_meta(k->fr, old), *n = vms_frames_meta(k->fr, pfn);
    bool lru = (f->flags & VMSI_FRAME_LRU) != 0;
    vmsi_lru_del(k, old);
    vms_frames_set_flags(k->fr, pfn, f->flags & ~(uint32_t)VMS_FRAME_OWNED_FLAGS, 0);
    for (uint32_t i = 1; i < f->refcount; i++)
        vms_frames_get(k->fr, pfn);
    n->mapcount = f->mapcount;
    vmsi_rmap_move(n, f);                               /* the record, or the inline mapping */
    for (uint32_t i = 0; i < vmsi_rmap_count(n); i++) { /* remove_migration_ptes */
        vmsi_rmap_ent e = vmsi_rmap_get(n, i);
        uint64_t ptep;
        vms_pgsize size;
        uint64_t pte = vmsi_leaf_find(e.mm, e.va, &ptep, &size);
        assert(ptep && vmsi_pte_pfn(k, pte) == old);
        vmsi_pte_set(e.mm, ptep, vmsi_pte_set_pfn(k, pte, pfn));
        vmsi_flush_tlb_range(k, e.mm, core, e.va, e.va + VMS_PAGE_SIZE);
    }
    vmsi_rmap *r = vmsi_rmap_rec(n);
    if (r && r->file) /* the page cache (file or shmem) names the new frame */
        vmsi_radix_set(&r->file->pages, k->a, r->index, pfn);
    else if (r && r->swapcache)
        k->swap.cache[r->index] = pfn;
    f->mapcount = 0;
    vms_frames_set_flags(k->fr, old, 0, f->flags & ~(uint32_t)VMS_FRAME_OWNED_FLAGS);
    while (f->refcount > 1)
        vms_frames_put(k->fr, old, NULL);
    vms_frames_put(k->fr, old, NULL);
    if (lru)
        vmsi_lru_add(k, pfn);
    vmsi_charge(k, core, k->cfg.cost.copy_page);
    k->st.compact_migrate++;
    return true;
}

bool vmsi_compact(vms_kernel *k, unsigned core)
{
    k->st.compact_stall++;
    size_t nr;
    const vms_frames_range *rg = vms_frames_ranges(k->fr, &nr);
    uint64_t best = 0;
    int64_t best_free = -1;
    for (size_t i = 0; i < nr; i++) {
        uint64_t lo = (rg[i].base_pfn + REGION - 1) & ~(REGION - 1);
        for (uint64_t b = lo; b + REGION <= rg[i].base_pfn + rg[i].npages; b += REGION) {
            int64_t nf = region_free(k, b);
            if (nf > best_free && nf < (int64_t)REGION) {
                best_free = nf;
                best = b;
            }
        }
    }
    uint64_t need = REGION - (uint64_t)(best_free < 0 ? 0 : best_free);
    if (best_free < 0 || vms_frames_nfree(k->fr) < (uint64_t)best_free + need)
        return false;
    for (uint64_t p = best; p < best + REGION; p++) {
        vms_frame *f = vms_frames_meta(k->fr, p);
        if (f && (f->flags & VMS_FRAME_ALLOC) && !migrate_page(k, p, best, core))
            return false;
    }
    k->st.compact_success++;
    return true;
}
