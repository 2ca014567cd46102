/*
 * compaction.c — memory compaction (Linux mm/compaction.c and mm/migrate.c, reduced to
 * order 9): make a free 2 MiB block by migrating movable pages out of pageblocks at the
 * bottom of RAM into free frames at its top.
 *
 *   compact_zone, per RAM range: the migrate scanner walks pageblocks (512 frames,
 *   2 MiB-aligned) up from the range's start, the free scanner walks them down from its
 *   end. A pageblock whose used frames are all movable has each of them migrated to a
 *   free frame the free scanner takes (vms_frames_alloc_at); a pageblock holding an
 *   unmovable frame is skipped whole (Linux's skip_on_failure for order-aligned blocks).
 *   It ends with COMPACT_SUCCESS as soon as a free block of order >= 9 exists (Linux
 *   compact_finished), or COMPACT_COMPLETE when the scanners meet.
 *
 * Who runs it: direct compaction (vmsi_compact, a transparent huge page allocation that
 * may stall: thp.defrag, docs/HUGEPAGES.md) and kcompactd (vmsi_kcompactd, woken by an
 * allocation that may not stall, run at the next kernel entry, its work charged to
 * kcompactd.core). Both first ask compaction_suitable: free memory at least the low
 * watermark plus compact_gap (2 << 9 pages), else it is skipped (reclaim's job).
 *
 * Movable: an order-0 anonymous or page-cache frame that is not pinned, not mlocked and
 * has no holder beyond its mappings and caches (refcount == mapcount + cache + swap
 * cache). Unmovable: page tables, kernel buffers, the zero pages, hugetlb and
 * transparent huge pages, pinned or locked pages, frames the caller holds. Migrating a
 * page: the new frame gets its bytes, flags, references and reverse map; every PTE
 * mapping it is rewritten to the new frame and its translation shot down; the cache slot
 * (page cache, swap cache) names the new frame; the old frame is freed. Bytes, rmap and
 * counts are preserved (vms_kernel_check). Costs: `copy_page` per page migrated.
 *
 * With mobility grouping (kernel.mobility_grouping, frames.h) the pageblock types count
 * too: the free scanner takes targets only in movable pageblocks or in free blocks of
 * 2 MiB or more (Linux's suitable_migration_target), and direct compaction's migrate
 * scanner skips pageblocks that are not movable (suitable_migration_source, Linux's rule
 * for its first, asynchronous direct attempt); kcompactd and compact_memory, synchronous
 * in Linux, scan them too. Without grouping every pageblock is movable.
 * Not modelled: the scanners' positions cached between runs (each run starts at the
 * range's ends), the sync retry of direct compaction, deferred compaction, proactive
 * compaction (vm.compaction_proactiveness), orders other than 9.
 */
#include <assert.h>

#include "os/mm/mm_impl.h"
#include "os/os_impl.h"
#include "os/reclaim/reclaim_impl.h"

#define REGION   UINT64_C(512) /* a pageblock: pageblock_order 9 */
#define HPAGE_NR UINT64_C(512)

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

/* Free frames of the pageblock at base, or -1 when a used frame there is not movable. */
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

/* Move the page at old to the free frame pfn (allocated by the caller, refcount 1).
 * False (old unchanged, pfn freed) when the host has no memory for the copy. */
static bool migrate_page(vms_kernel *k, uint64_t old, uint64_t pfn, unsigned core)
{
    if (vmsi_ram_copy_frame(k, pfn, old) != VMS_OK) {
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

/* Whether the allocator holds a free block of order 9 or more (compact_finished). */
static bool have_block(const vms_kernel *k)
{
    vms_frames_stats fs;
    vms_frames_stats_get(k->fr, &fs);
    for (unsigned o = 9; o < VMS_FRAMES_NORDERS; o++)
        if (fs.free_blocks[o])
            return true;
    return false;
}

/* compaction_suitable: enough free memory that compaction, not reclaim, can help. */
static bool suitable(const vms_kernel *k)
{
    return vms_frames_nfree(k->fr) >= k->wmark_low + 2 * HPAGE_NR;
}

/* The two scanners over one RAM range (Linux struct compact_control). */
typedef struct compact_control {
    vms_kernel *k;
    unsigned core;
    bool direct;          /* direct compaction: migrate only from movable pageblocks */
    uint64_t migrate_pfn; /* the pageblock the migrate scanner is at */
    uint64_t free_pfn;    /* the pageblock the free scanner is at (above migrate_pfn) */
    uint64_t free_cur;    /* the next frame it looks at in that pageblock */
    uint64_t base;        /* the range's first frame */
} compact_control;

/* suitable_migration_target: a pageblock the free scanner may take frames from: a
 * movable one, or one inside a free block of order >= 9 (always, without grouping). */
static bool target_ok(const vms_kernel *k, uint64_t pb)
{
    unsigned order;
    return vms_frames_pageblock_type(k->fr, pb) == VMS_MT_MOVABLE ||
           (vms_frames_free_block(k->fr, pb, NULL, &order) && order >= 9);
}

/* isolate_freepages: the next free frame, taken from the free scanner's pageblock (or
 * the next one down), never at or below the migrate scanner's. False when they met. */
static bool next_free(compact_control *c, uint64_t *pfn)
{
    vms_kernel *k = c->k;
    while (c->free_pfn > c->migrate_pfn) {
        if (c->free_cur == c->free_pfn && !target_ok(k, c->free_pfn))
            c->free_cur = c->free_pfn + REGION; /* not a target: the next one down */
        for (; c->free_cur < c->free_pfn + REGION; c->free_cur++) {
            k->st.compact_free_scanned++;
            if (vms_frames_is_free(k->fr, c->free_cur) &&
                vms_frames_alloc_at(k->fr, c->free_cur, NULL) == VMS_OK) {
                *pfn = c->free_cur++;
                return true;
            }
        }
        if (c->free_pfn < c->base + REGION)
            break;
        c->free_pfn -= REGION;
        c->free_cur = c->free_pfn;
    }
    return false;
}

/* compact_zone over range rg: true (COMPACT_SUCCESS) once a free 2 MiB block exists;
 * with `full` (compact_memory, Linux's order -1) on until the scanners meet. */
static bool compact_range(vms_kernel *k, unsigned core, const vms_frames_range *rg, bool full,
                          bool direct)
{
    uint64_t lo = (rg->base_pfn + REGION - 1) & ~(REGION - 1);
    uint64_t hi = (rg->base_pfn + rg->npages) & ~(REGION - 1); /* end of the last block */
    if (hi < lo + 2 * REGION)
        return have_block(k);
    compact_control c = {k, core, direct, lo, hi - REGION, hi - REGION, lo};
    for (; c.migrate_pfn < c.free_pfn; c.migrate_pfn += REGION) {
        if (!full && have_block(k))
            return true;
        if (direct && vms_frames_pageblock_type(k->fr, c.migrate_pfn) != VMS_MT_MOVABLE)
            continue; /* suitable_migration_source: not scanned */
        k->st.compact_migrate_scanned += REGION;
        int64_t nf = region_free(k, c.migrate_pfn);
        if (nf < 0 || nf == (int64_t)REGION)
            continue; /* an unmovable frame: this block cannot be made free */
        for (uint64_t p = c.migrate_pfn; p < c.migrate_pfn + REGION; p++) {
            vms_frame *f = vms_frames_meta(k->fr, p);
            uint64_t to;
            if (!f || !(f->flags & VMS_FRAME_ALLOC))
                continue;
            if (!next_free(&c, &to) || !migrate_page(k, p, to, core))
                return have_block(k); /* the scanners met (or no host memory) */
        }
    }
    return have_block(k);
}

/* compact_node: every RAM range in turn until one holds a free 2 MiB block (all of them
 * wholly with `full`); `direct` for direct compaction. */
static bool compact_all(vms_kernel *k, unsigned core, bool full, bool direct)
{
    size_t nr;
    bool ok = false;
    const vms_frames_range *rg = vms_frames_ranges(k->fr, &nr);
    for (size_t i = 0; i < nr && (full || !ok); i++)
        ok |= compact_range(k, core, &rg[i], full, direct);
    return ok || have_block(k);
}

bool vmsi_compact(vms_kernel *k, unsigned core)
{
    if (!suitable(k))
        return false; /* COMPACT_SKIPPED: not a stall */
    k->st.compact_stall++;
    bool ok = compact_all(k, core, false, true);
    *(ok ? &k->st.compact_success : &k->st.compact_fail) += 1;
    return ok;
}

void vmsi_kcompactd_wake(vms_kernel *k)
{
    k->kcompactd_pending = true;
}

void vmsi_kcompactd(vms_kernel *k)
{
    if (!k->kcompactd_pending || k->in_reclaim || k->in_kcompactd)
        return;
    k->kcompactd_pending = false;
    if (!suitable(k) || have_block(k))
        return; /* kcompactd_node_suitable: nothing it can or need do */
    k->st.kcompactd_wake++;
    k->in_kcompactd = true;
    unsigned core = k->cfg.kcompactd_core >= 0 ? (unsigned)k->cfg.kcompactd_core : VMSI_NO_CORE;
    if (compact_all(k, core, false, false))
        k->st.kcompactd_success++;
    k->in_kcompactd = false;
}

uint64_t vms_kernel_compact(vms_kernel *k)
{
    if (k->panicked)
        return 0;
    uint64_t before = k->st.compact_migrate;
    k->st.compact_manual++;
    compact_all(k, VMSI_NO_CORE, true, false); /* no core: counted in kernel_cycles only */
    return k->st.compact_migrate - before;
}
