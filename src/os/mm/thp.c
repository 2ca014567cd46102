/*
 * thp.c — transparent huge pages, as Linux's mm/huge_memory.c and mm/khugepaged.c do
 * them (docs/HUGEPAGES.md has the state machine with its costs):
 *
 *   fault in an empty PMD of an eligible range   -> do_huge_pmd_anonymous_page: a zeroed
 *                                                   2 MiB page (or the huge zero page for
 *                                                   a read), else fallback to 4 KiB
 *   write to a read-only huge leaf               -> do_huge_pmd_wp_page: reuse when
 *                                                   exclusive; else copy 2 MiB (thp.cow =
 *                                                   copy) or split and copy 4 KiB (split,
 *                                                   Linux); the huge zero page is split
 *                                                   into 512 zero-page PTEs (Linux)
 *   VMA boundary inside a huge page (munmap,     -> __split_huge_pmd: that PMD becomes a
 *   mprotect, mlock, madvise), DONTNEED of part,    table of 512 PTEs into the still-whole
 *   a COW write                                     page (a PTE-mapped THP)
 *   a partial unmap of a PTE-mapped THP          -> deferred_split_folio: on the deferred
 *                                                   split queue, split by its shrinker in
 *                                                   reclaim (split_huge_page), or freed
 *                                                   whole with its last mapping
 *   DMA pin, reclaim                             -> split_huge_page at once
 *   khugepaged (its timer, at kernel entries;    -> collapse 512 PTEs of an eligible range
 *   or called)                                      into one new 2 MiB page
 *
 * Eligible: a private anonymous VMA (not hugetlb) covering the whole 2 MiB-aligned range,
 * accessible, on a format with 2 MiB leaves, and thp = always (unless MADV_NOHUGEPAGE)
 * or madvise with MADV_HUGEPAGE. Invariants (vms_kernel_check): a frame flagged THP is an
 * order-9 anonymous block mapped only by 2 MiB leaves, one rmap entry (mm, haddr) each;
 * the huge zero page is mapped only read-only, never counted, and is freed with its last
 * mapping (huge_zero_maps). A THP's counts live on its head (one rmap entry and one
 * reference per PMD or PTE mapping); a PTE-mapped one has per-subpage mapcounts too
 * (vmsi_thp_folio, mm_impl.h), checked by vmsi_thp_check_folio.
 */
#include <assert.h>

#include "os/os_impl.h"
#include "os/mm/mm_impl.h"
#include "os/reclaim/reclaim_impl.h"

#define HPAGE_SIZE  (UINT64_C(1) << 21)
#define HPAGE_NR    UINT64_C(512)
#define HPAGE_ORDER 9u

/* The core an operation of the kernel charges and flushes from. */
static unsigned work_core(const vms_kernel *k)
{
    if (k->in_khugepaged)
        return k->cfg.khugepaged_core >= 0 ? (unsigned)k->cfg.khugepaged_core : VMSI_NO_CORE;
    if (!k->in_kswapd)
        return k->cur_core;
    return k->cfg.kswapd_core >= 0 ? (unsigned)k->cfg.kswapd_core : VMSI_NO_CORE;
}

/* Whether THP may back v at all (Linux thp_vma_allowable_order, reduced). */
static bool thp_vma_allowed(const vms_kernel *k, const vmsi_vma *v)
{
    if (k->cfg.thp == VMS_THP_NEVER || (v->flags & VMSI_VM_NOHUGEPAGE))
        return false;
    if (k->cfg.thp == VMS_THP_MADVISE && !(v->flags & VMSI_VM_HUGEPAGE))
        return false;
    if (!(v->flags & VMSI_VM_ANON) ||
        (v->flags & (VMSI_VM_SHARED | VMSI_VM_HUGE2M | VMSI_VM_HUGE1G)))
        return false;
    return v->prot != VMS_PROT_NONE && vms_fmt_has_size(k->fmt, VMS_PG_2M);
}

/* Whether the 2 MiB range at haddr may be one huge page of v. */
static bool thp_suitable(const vms_kernel *k, const vmsi_vma *v, uint64_t haddr)
{
    return thp_vma_allowed(k, v) && haddr >= v->start && haddr + HPAGE_SIZE <= v->end;
}

/* The huge zero page, allocated (zeroed, without reclaim) on first use; 0 if no free
 * 2 MiB block exists. The caller maps it (vmsi_map_page counts the mapping). */
static uint64_t huge_zero_get(vms_kernel *k)
{
    if (k->huge_zero_pfn)
        return k->huge_zero_pfn;
    uint64_t pfn;
    /* Linux: GFP_TRANSHUGE & ~__GFP_MOVABLE, an unmovable pageblock */
    if (vms_frames_alloc_mt(k->fr, HPAGE_ORDER, VMS_MT_UNMOVABLE, &pfn, NULL) != VMS_OK)
        return 0;
    vmsi_ram_fill(k, pfn << VMS_PAGE_SHIFT, 0, (size_t)HPAGE_SIZE);
    vms_frames_set_flags(k->fr, pfn, VMS_FRAME_ZERO, 0);
    k->huge_zero_pfn = pfn;
    k->st.thp_zero_page_alloc++;
    return pfn;
}

void vmsi_huge_zero_put(vms_kernel *k)
{
    assert(k->huge_zero_maps > 0);
    if (--k->huge_zero_maps > 0)
        return;
    vms_frames_set_flags(k->fr, k->huge_zero_pfn, 0, VMS_FRAME_ZERO);
    vms_frames_put(k->fr, k->huge_zero_pfn, NULL);
    k->huge_zero_pfn = 0;
}

/* What a failed THP allocation may do (Linux vma_thp_gfp_mask): stall in direct
 * compaction (GFP_TRANSHUGE), or wake kcompactd (__GFP_KSWAPD_RECLAIM). khugepaged always
 * compacts directly (khugepaged/defrag = 1). */
static void defrag_mode(const vms_kernel *k, bool madvised, bool *direct, bool *wake)
{
    vms_thp_defrag d = k->cfg.thp_defrag;
    *direct = k->in_khugepaged || d == VMS_THP_DEFRAG_ALWAYS ||
              (madvised && (d == VMS_THP_DEFRAG_MADVISE || d == VMS_THP_DEFRAG_DEFER_MADVISE));
    *wake = *direct || d == VMS_THP_DEFRAG_DEFER || d == VMS_THP_DEFRAG_DEFER_MADVISE;
}

/*
 * A new transparent huge page: a free order-9 block above the low watermark, without
 * reclaim, zeroed with the cost of 512 page clears charged to `core` when `zero`. When
 * memory is free but fragmented, thp.defrag decides (defrag_mode; `madvised`: the VMA
 * has MADV_HUGEPAGE): direct compaction, and/or kcompactd woken for later when it still
 * failed. VMS_ERR_NOTFOUND when no block is free.
 */
static vms_status alloc_thp(vms_kernel *k, unsigned core, bool zero, bool madvised, uint64_t *pfn)
{
    if (vms_frames_nfree(k->fr) < HPAGE_NR + k->wmark_low)
        return VMS_ERR_NOTFOUND;
    vms_status st = vms_frames_alloc(k->fr, HPAGE_ORDER, pfn, NULL);
    bool direct, wake;
    defrag_mode(k, madvised, &direct, &wake);
    if (st == VMS_ERR_NOTFOUND && direct && !k->in_reclaim && !k->in_kcompactd &&
        vmsi_compact(k, core))
        st = vms_frames_alloc(k->fr, HPAGE_ORDER, pfn, NULL);
    if (st == VMS_ERR_NOTFOUND && wake)
        vmsi_kcompactd_wake(k);
    if (st != VMS_OK)
        return st;
    if (zero) {
        vmsi_ram_fill(k, *pfn << VMS_PAGE_SHIFT, 0, (size_t)HPAGE_SIZE);
        vmsi_charge(k, core, (uint64_t)k->cfg.cost.zero_page * HPAGE_NR);
    }
    vms_frames_set_flags(k->fr, *pfn, VMS_FRAME_ANON | VMS_FRAME_SWAPBACKED | VMSI_FRAME_THP, 0);
    return VMS_OK;
}

/* The PMD slot of the 2 MiB range at haddr (creating the tables above it when create);
 * 0 when a table is missing (and !create) or cannot be made (*st says why). */
static uint64_t pmd_slot(vmsi_mm *mm, uint64_t haddr, bool create, vms_status *st)
{
    uint64_t pmdp = 0;
    *st = vmsi_pte_slot(mm, haddr, VMS_PG_2M, create, &pmdp, NULL);
    return *st == VMS_OK ? pmdp : 0;
}

/* Address of entry i of the table at table_pa. */
static uint64_t table_slot(const vms_kernel *k, uint64_t table_pa, uint64_t i)
{
    return table_pa + (i << k->fmt->entry_shift);
}

/* Fill the new table at table_pa with the 512 4 KiB entries that map what the huge leaf
 * pmd mapped (frames head, head + 1, …, or the 4 KiB zero page for all when zero): the
 * same rights, young and dirty bits, PROT_NONE and its remembered write bit. */
static void fill_table(vmsi_mm *mm, const vmsi_vma *v, uint64_t table_pa, uint64_t pmd,
                       uint64_t head, bool zero)
{
    const vms_kernel *k = mm->k;
    bool w = vmsi_pte_write(k, pmd);
    for (uint64_t i = 0; i < HPAGE_NR; i++) {
        uint64_t pfn = zero ? k->zero_pfn : head + i;
        uint64_t pte = vmsi_mk_pte_size(k, v, pfn, w && !zero, VMS_PG_4K);
        if (vmsi_pte_young(k, pmd))
            pte = vmsi_pte_mkyoung(k, pte);
        if (vmsi_pte_dirty(k, pmd) && !zero)
            pte = vmsi_pte_mkdirty(k, pte);
        if (v->prot == VMS_PROT_NONE && w && !zero)
            pte = vmsi_pte_mkwrite(k, pte); /* remembered, ignored while not present */
        vmsi_pte_set(mm, table_slot(k, table_pa, i), pte);
    }
}

/* __split_huge_zero_page_pmd: the huge zero page's leaf at pmdp becomes a table of 512
 * read-only PTEs mapping the 4 KiB zero page (so a write then COWs 4 KiB, as Linux). */
static vms_status split_zero_pmd(vmsi_mm *mm, uint64_t haddr, uint64_t pmdp, uint64_t pmd)
{
    vms_kernel *k = mm->k;
    vmsi_vma *v = vmsi_vma_lookup(mm, haddr);
    uint64_t table;
    vms_status st = vmsi_alloc_table_frame(k, &table);
    if (st != VMS_OK)
        return st;
    /* Reclaim may have run in the allocation, but it never touches the zero page. */
    mm->nr_ptes++;
    fill_table(mm, v, table << VMS_PAGE_SHIFT, pmd, 0, true);
    vmsi_pte_set(mm, pmdp, vmsi_mk_table(k, table << VMS_PAGE_SHIFT, 2));
    mm->thp_leaves--;
    vmsi_huge_zero_put(k);
    vmsi_flush_tlb_range(k, mm, work_core(k), haddr, haddr + HPAGE_SIZE);
    k->st.thp_split_pmd++;
    return VMS_OK;
}

/* ---- PTE-mapped huge pages and the deferred split queue ------------------------------ */

/* The PTE-mapped state of the THP at head, made on first need with every mapping it has
 * now a PMD (entire = mapcount) and no PTE. NULL without host memory. */
static vmsi_thp_folio *folio_state(vms_kernel *k, uint64_t head)
{
    vmsi_thp_folio *s = vmsi_thp_folio_of(k, head);
    if (s)
        return s;
    s = vmsi_zalloc(k->a, sizeof *s);
    if (!s)
        return NULL;
    s->head = head;
    s->entire = vms_frames_meta(k->fr, head)->mapcount;
    vms_frames_meta(k->fr, head + 1)->owner = (uintptr_t)s;
    k->thp_states++;
    return s;
}

/* Partially mapped: no PMD maps it, and PTEs map some of its subpages but not all. */
static bool partial(const vmsi_thp_folio *s)
{
    return s->entire == 0 && s->nr_mapped > 0 && s->nr_mapped < HPAGE_NR;
}

static void queue_del(vms_kernel *k, vmsi_thp_folio *s)
{
    if (!s->queued)
        return;
    *(s->prev ? &s->prev->next : &k->split_queue) = s->next;
    *(s->next ? &s->next->prev : &k->split_tail) = s->prev;
    s->prev = s->next = NULL;
    s->queued = false;
    k->split_queue_len--;
}

/* deferred_split_folio: onto the queue's tail, once (thp_deferred_split_page when
 * `count`; a page a failed split puts back is not counted again). */
static void queue_add(vms_kernel *k, vmsi_thp_folio *s, bool count)
{
    if (s->queued)
        return;
    s->queued = true;
    s->prev = k->split_tail;
    s->next = NULL;
    *(k->split_tail ? &k->split_tail->next : &k->split_queue) = s;
    k->split_tail = s;
    k->split_queue_len++;
    k->st.thp_deferred_split_page += count ? 1 : 0;
}

vms_status vmsi_thp_pte_mapped(vms_kernel *k, uint64_t head, uint64_t i, bool on)
{
    vmsi_thp_folio *s = folio_state(k, head);
    if (!s)
        return VMS_ERR_NOMEM; /* only when on: a PTE of the page made the state */
    if (on) {
        s->nr_mapped += s->map[i]++ == 0 ? 1 : 0;
        return VMS_OK;
    }
    assert(s->map[i] > 0);
    /* __folio_remove_rmap: a subpage no longer mapped while others are, and no PMD
     * maps the page: partially mapped, queued for a deferred split. */
    if (--s->map[i] == 0 && --s->nr_mapped > 0 && partial(s))
        queue_add(k, s, true);
    return VMS_OK;
}

void vmsi_thp_pmd_mapped(vms_kernel *k, uint64_t head, bool on)
{
    vmsi_thp_folio *s = vmsi_thp_folio_of(k, head);
    if (s) {
        assert(on || s->entire > 0);
        s->entire = on ? s->entire + 1 : s->entire - 1;
    }
    uint32_t entire = s ? s->entire : vms_frames_meta(k->fr, head)->mapcount;
    if (on && entire == 1)
        k->thp_pmd_mapped++;
    if (!on && entire == 0) {
        k->thp_pmd_mapped--;
        if (s && partial(s)) /* the last PMD went; PTEs map part of it elsewhere */
            queue_add(k, s, true);
    }
}

uint32_t vmsi_thp_subpage_mapcount(vms_kernel *k, uint64_t head, uint64_t i)
{
    vmsi_thp_folio *s = vmsi_thp_folio_of(k, head);
    return s ? s->entire + s->map[i] : vms_frames_meta(k->fr, head)->mapcount;
}

void vmsi_thp_folio_free(vms_kernel *k, uint64_t head)
{
    vmsi_thp_folio *s = vmsi_thp_folio_of(k, head);
    if (!s)
        return;
    queue_del(k, s);
    vms_frames_meta(k->fr, head + 1)->owner = 0;
    vmsi_free(k->a, s, sizeof *s);
    k->thp_states--;
}

uint64_t vmsi_thp_unmapped_frames(const vms_kernel *k)
{
    uint64_t n = 0;
    for (const vmsi_thp_folio *s = k->split_queue; s; s = s->next)
        n += HPAGE_NR - s->nr_mapped;
    return n;
}

/* Free a table frame a split allocated and did not use. */
static void table_free(vms_kernel *k, uint64_t table)
{
    vms_frames_set_flags(k->fr, table, 0, VMS_FRAME_PAGETABLE);
    vms_frames_put(k->fr, table, NULL);
}

/*
 * __split_huge_pmd_locked for a THP: the leaf pmd at pmdp (mm, haddr) mapping the page at
 * head becomes the fresh table frame `table`: 512 PTEs with the leaf's rights and A/D
 * bits mapping head + i. The page stays whole: its PMD mapping becomes 512 PTE mappings
 * (511 more references and rmap entries; the PMD's entry (mm, haddr) is subpage 0's
 * now), rss unchanged. The state exists and the reverse map has room (split_pmd).
 */
static void split_thp_pmd(vmsi_mm *mm, uint64_t haddr, uint64_t pmdp, uint64_t pmd, uint64_t head,
                          uint64_t table)
{
    vms_kernel *k = mm->k;
    vms_frame *f = vms_frames_meta(k->fr, head);
    vmsi_thp_folio *s = vmsi_thp_folio_of(k, head);
    fill_table(mm, vmsi_vma_lookup(mm, haddr), table << VMS_PAGE_SHIFT, pmd, head, false);
    vmsi_pte_set(mm, pmdp, vmsi_mk_table(k, table << VMS_PAGE_SHIFT, 2));
    mm->nr_ptes++;
    mm->thp_leaves--;
    for (uint64_t i = 1; i < HPAGE_NR; i++) {
        vms_status st = vmsi_page_add_rmap(k, head, mm, haddr + (i << VMS_PAGE_SHIFT));
        assert(st == VMS_OK); /* reserved */
        (void)st;
        vms_frames_get(k->fr, head);
    }
    f->mapcount += (uint32_t)HPAGE_NR - 1;
    for (uint64_t i = 0; i < HPAGE_NR; i++)
        s->nr_mapped += s->map[i]++ == 0 ? 1 : 0;
    if (--s->entire == 0)
        k->thp_pmd_mapped--;
    vmsi_flush_tlb_range(k, mm, work_core(k), haddr, haddr + HPAGE_SIZE);
    k->st.thp_split_pmd++;
}

/* Split the THP leaf mapping haddr in mm, if there is one (split_thp_pmd), with what it
 * needs made first: a table frame (the page is held meanwhile, so reclaim in the
 * allocation passes it by), the state, room in the reverse map. VMS_ERR_NOTFOUND /
 * VMS_ERR_NOMEM leave the mapping as it was. */
static vms_status split_pmd(vmsi_mm *mm, uint64_t haddr)
{
    vms_kernel *k = mm->k;
    vms_status st;
    uint64_t pmdp = pmd_slot(mm, haddr, false, &st);
    uint64_t pmd = pmdp ? vmsi_pte_get(mm, pmdp) : 0;
    if (!pmdp || !vmsi_pte_mapped(k, pmd) || !vmsi_pte_leaf(k, pmd, 2))
        return VMS_OK;
    uint64_t head = vmsi_pte_head_pfn(k, pmd, VMS_PG_2M), table;
    vms_frames_get(k->fr, head);
    st = vmsi_alloc_table_frame(k, &table);
    if (st == VMS_OK && (!folio_state(k, head) || vmsi_rmap_reserve(k, head, HPAGE_NR - 1))) {
        table_free(k, table);
        st = VMS_ERR_NOMEM;
    }
    if (st == VMS_OK) {
        pmdp = pmd_slot(mm, haddr, false, &st); /* the same: nothing touched a held page */
        assert(pmdp && vms_pt_peek(&mm->pt, pmdp) == pmd); /* a peek: counts nothing */
        split_thp_pmd(mm, haddr, pmdp, pmd, head, table);
    }
    vmsi_page_put(k, head);
    return st;
}

/* A PMD mapping of the page f heads, from its reverse map; false when none is left. */
static bool pmd_entry(vms_kernel *k, const vms_frame *f, vmsi_rmap_ent *out)
{
    for (uint32_t i = 0; i < vmsi_rmap_count(f); i++) {
        vmsi_rmap_ent e = vmsi_rmap_get(f, i);
        uint64_t ptep;
        vms_pgsize size;
        vmsi_leaf_find(e.mm, e.va, &ptep, &size);
        if (size == VMS_PG_2M) {
            *out = e;
            (void)k;
            return true;
        }
    }
    return false;
}

/* Host memory for the reverse maps of the 512 pages a split makes: a record for each
 * subpage that more than one PTE maps (or whose one mapping does not fit inline). */
typedef struct split_res {
    uint32_t n;         /* mappings of the page (entries below) */
    vmsi_rmap_ent *ent; /* a copy of the page's reverse map */
    vmsi_rmap **rec;    /* 512, NULL where the subpage's mapping goes inline or none */
} split_res;

static void split_res_free(vms_kernel *k, split_res *r)
{
    for (uint64_t i = 0; r->rec && i < HPAGE_NR; i++)
        if (r->rec[i]) {
            vmsi_free(k->a, r->rec[i]->e, r->rec[i]->cap * sizeof *r->rec[i]->e);
            vmsi_free(k->a, r->rec[i], sizeof *r->rec[i]);
        }
    if (r->rec)
        vmsi_free(k->a, r->rec, HPAGE_NR * sizeof *r->rec);
    if (r->ent)
        vmsi_free(k->a, r->ent, r->n * sizeof *r->ent);
}

/* The subpage (0 … 511) of the page at head that the PTE of rmap entry e maps. */
static uint64_t entry_subpage(vms_kernel *k, const vmsi_rmap_ent *e, uint64_t head)
{
    uint64_t ptep;
    vms_pgsize size;
    uint64_t pte = vmsi_leaf_find(e->mm, e->va, &ptep, &size);
    assert(size == VMS_PG_4K && vmsi_pte_pfn(k, pte) - head < HPAGE_NR);
    return vmsi_pte_pfn(k, pte) - head;
}

static vms_status split_res_get(vms_kernel *k, uint64_t head, const vmsi_thp_folio *s, split_res *r)
{
    const vms_frame *f = vms_frames_meta(k->fr, head);
    r->n = vmsi_rmap_count(f);
    r->ent = vmsi_calloc(k->a, r->n ? r->n : 1, sizeof *r->ent);
    r->rec = vmsi_calloc(k->a, HPAGE_NR, sizeof *r->rec);
    vms_status st = r->ent && r->rec ? VMS_OK : VMS_ERR_NOMEM;
    for (uint32_t i = 0; st == VMS_OK && i < r->n; i++)
        r->ent[i] = vmsi_rmap_get(f, i);
    bool inline_ok[512];
    for (uint64_t i = 0; i < HPAGE_NR; i++)
        inline_ok[i] = true;
    for (uint32_t i = 0; st == VMS_OK && i < r->n; i++)
        if (r->ent[i].va >= VMSI_RMAP_VA_MAX || ((uintptr_t)r->ent[i].mm & VMSI_RMAP_INLINE))
            inline_ok[entry_subpage(k, &r->ent[i], head)] = false;
    for (uint64_t i = 0; st == VMS_OK && i < HPAGE_NR; i++) {
        if (s->map[i] == 0 || (s->map[i] == 1 && inline_ok[i]))
            continue;
        size_t cap = 0;
        r->rec[i] = vmsi_zalloc(k->a, sizeof *r->rec[i]);
        if (!r->rec[i] || !vmsi_grow_to(k->a, (void **)&r->rec[i]->e, &cap, s->map[i],
                                        sizeof *r->rec[i]->e, s->map[i]))
            st = VMS_ERR_NOMEM;
        else
            r->rec[i]->cap = (uint32_t)cap;
    }
    if (st != VMS_OK)
        split_res_free(k, r);
    return st;
}

/* Give subpage pfn (of the page at head) the mapping e: into its record when it has one,
 * else inline (split_res_get decided which fits). */
static void give_entry(vms_kernel *k, split_res *r, uint64_t i, uint64_t pfn, vmsi_rmap_ent e)
{
    vms_frame *t = vms_frames_meta(k->fr, pfn);
    if (r->rec[i]) {
        r->rec[i]->e[r->rec[i]->n++] = e;
        t->owner = (uintptr_t)r->rec[i];
        return;
    }
    t->owner = (uintptr_t)e.mm | VMSI_RMAP_INLINE;
    vmsi_spare_set(t, e.va);
}

/*
 * __split_huge_page: with no PMD left, the page at head (state s) becomes 512 order-0
 * pages: subpage i gets the mappings of its PTEs (rmap entries, mapcount map[i], one
 * reference each), leaves the THP flag, and goes on the replacement policy (or stays
 * off it when mlocked); a subpage no PTE maps is freed (*freed counts them, the head
 * too when it is one: the caller's hold frees it). The PTEs themselves do not change.
 */
static void split_folio_now(vms_kernel *k, uint64_t head, split_res *r, uint64_t *freed)
{
    vms_frame *f = vms_frames_meta(k->fr, head);
    vmsi_thp_folio *s = vmsi_thp_folio_of(k, head);
    uint32_t map[512];
    memcpy(map, s->map, sizeof map);
    uint32_t total = f->mapcount;
    vmsi_lru_del(k, head);
    vmsi_rmap *old = vmsi_rmap_rec(f); /* the page's reverse map goes to its subpages */
    if (old) {
        vmsi_free(k->a, old->e, old->cap * sizeof *old->e);
        vmsi_free(k->a, old, sizeof *old);
    }
    f->owner = 0;
    memset(f->spare, 0, sizeof f->spare);
    vmsi_thp_folio_free(k, head);
    vms_status st = vms_frames_split(k->fr, head, 1, NULL);
    assert(st == VMS_OK);
    (void)st;
    for (uint32_t j = 0; j < r->n; j++) {
        uint64_t i = entry_subpage(k, &r->ent[j], head);
        give_entry(k, r, i, head + i, r->ent[j]);
    }
    for (uint64_t i = 0; i < HPAGE_NR; i++) {
        r->rec[i] = NULL; /* owned by the subpages now */
        vms_frame *t = vms_frames_meta(k->fr, head + i);
        t->mapcount = map[i];
        vms_frames_set_flags(k->fr, head + i, 0, VMSI_FRAME_THP | VMSI_FRAME_LRU);
        *freed += map[i] == 0 ? 1 : 0;
        /* References: the head kept the page's (one per mapping, and the caller's
         * hold), each tail got one from the split; each subpage keeps one per PTE. */
        if (i == 0) {
            for (uint32_t n = map[0]; n < total; n++)
                vms_frames_put(k->fr, head, NULL);
        } else if (map[i] == 0) {
            vms_frames_put(k->fr, head + i, NULL);
        } else {
            for (uint32_t n = 1; n < map[i]; n++)
                vms_frames_get(k->fr, head + i);
        }
        if (map[i] == 0)
            continue;
        if (t->flags & VMS_FRAME_LOCKED)
            vmsi_update_mlock(k, head + i); /* locked only where a locked VMA maps it */
        else
            vmsi_lru_add(k, head + i);
    }
    k->st.thp_split_page++;
}

/* split_huge_page_to_list: see vmsi_split_huge_page; *freed gets the frames freed. */
static vms_status split_folio(vms_kernel *k, uint64_t head, uint64_t *freed)
{
    vms_frame *f = vms_frames_meta(k->fr, head);
    assert(f && (f->flags & VMSI_FRAME_THP) && f->order == HPAGE_ORDER);
    *freed = 0;
    /* can_split_folio: only its mappings hold it (no pin, nobody mid-allocation). */
    if (f->pincount || f->refcount != f->mapcount)
        return VMS_ERR_INVAL;
    vms_frames_get(k->fr, head); /* held: reclaim in the table allocations passes it by */
    vms_status st = VMS_OK;
    vmsi_rmap_ent e;
    while (st == VMS_OK && pmd_entry(k, f, &e)) /* unmap_folio's TTU_SPLIT_HUGE_PMD */
        st = split_pmd(e.mm, e.va);
    vmsi_thp_folio *s = st == VMS_OK ? folio_state(k, head) : NULL;
    split_res r = {0, NULL, NULL};
    if (st == VMS_OK && (!s || split_res_get(k, head, s, &r) != VMS_OK))
        st = VMS_ERR_NOMEM;
    if (st == VMS_OK) {
        split_folio_now(k, head, &r, freed);
        split_res_free(k, &r);
    }
    vmsi_page_put(k, head);
    return st;
}

vms_status vmsi_split_huge_page(vms_kernel *k, uint64_t head)
{
    uint64_t freed;
    return split_folio(k, head, &freed);
}

uint64_t vmsi_thp_deferred_split(vms_kernel *k, uint64_t nr, uint64_t *nsplit)
{
    uint64_t freed = 0, n = 0;
    for (uint64_t left = k->split_queue_len; k->split_queue && left > 0 && (!nr || n < nr);
         left--) {
        vmsi_thp_folio *s = k->split_queue;
        uint64_t head = s->head, got;
        queue_del(k, s);
        if (split_folio(k, head, &got) != VMS_OK) {
            queue_add(k, s, false); /* busy or no host memory: back on the queue */
            continue;
        }
        n++;
        freed += got;
    }
    k->st.thp_deferred_split_freed += freed;
    if (nsplit)
        *nsplit = n;
    return freed;
}

/*
 * CONFIG_THP_SWAP's path through shrink_folio_list for the whole page at head: add_to_swap
 * (a free cluster, folio_alloc_swap of order 9), try_to_unmap with TTU_SPLIT_HUGE_PMD
 * (every PMD mapping it is split first, __split_huge_pmd: the page stays whole, PTE-
 * mapped), pageout (swap_writepage of the whole folio: one 2 MiB request), then each PTE
 * becomes the swap entry of its subpage (try_to_unmap_one: folio->swap + the subpage's
 * index) and the freed folio gives its 512 frames back at once. Returns SWAPPED, KEEP
 * (no frame for a PMD's table, a write error: counted and logged, the page stays mapped,
 * whole) or SPLIT when no cluster is free (the caller falls back to splitting).
 */
static vmsi_thp_reclaim_ret swap_whole(vms_kernel *k, uint64_t head, unsigned core)
{
    uint64_t slot0 = vmsi_swap_alloc_cluster(k);
    if (!slot0)
        return VMSI_THP_RECLAIM_SPLIT;
    vms_frame *f = vms_frames_meta(k->fr, head);
    vms_frames_get(k->fr, head); /* held: reclaim in the table allocations passes it by */
    vms_status st = VMS_OK;
    vmsi_rmap_ent e;
    while (st == VMS_OK && pmd_entry(k, f, &e)) /* TTU_SPLIT_HUGE_PMD */
        st = split_pmd(e.mm, e.va);
    if (st == VMS_OK && (st = vmsi_swap_writecluster(k, slot0, head, core)) != VMS_OK) {
        k->st.swap_write_errors++;
        vmsi_log(k, VMS_LOG_ERR,
                 "Write-error on swap-device (0:%llu): huge page %llx kept in memory",
                 (unsigned long long)slot0, (unsigned long long)head);
    }
    if (st == VMS_OK) {
        vmsi_swap_mark_whole(k, slot0);
        vmsi_unmap_to_swap(k, head, slot0);
        k->st.pswpout += HPAGE_NR;
        k->st.thp_swpout++;
    }
    for (uint64_t i = 0; i < HPAGE_NR; i++)
        vmsi_swap_free(k, slot0 + i); /* the writer's references: the PTEs hold theirs */
    vmsi_page_put(k, head);           /* swapped: the last reference, the block is free */
    return st == VMS_OK ? VMSI_THP_RECLAIM_SWAPPED : VMSI_THP_RECLAIM_KEEP;
}

vmsi_thp_reclaim_ret vmsi_thp_reclaim(vms_kernel *k, uint64_t head, unsigned core)
{
    vmsi_thp_folio *s = vmsi_thp_folio_of(k, head);
    bool partly = s && s->queued; /* split right away: its unmapped pages need no I/O */
    if (!partly && (vms_frames_meta(k->fr, head)->flags & VMS_FRAME_ANON)) {
        vmsi_thp_reclaim_ret r = k->cfg.thp_swap == VMS_THP_SWAP_WHOLE ? swap_whole(k, head, core)
                                                                       : VMSI_THP_RECLAIM_SPLIT;
        if (r != VMSI_THP_RECLAIM_SPLIT)
            return r;
        /* add_to_swap failed (no CONFIG_THP_SWAP, or no free cluster): split */
        k->st.thp_swpout_fallback++;
    }
    bool head_mapped = vmsi_thp_subpage_mapcount(k, head, 0) > 0;
    if (vmsi_split_huge_page(k, head) != VMS_OK)
        return VMSI_THP_RECLAIM_KEEP;
    return head_mapped ? VMSI_THP_RECLAIM_SPLIT : VMSI_THP_RECLAIM_FREED;
}

vms_status vmsi_thp_split_at(vmsi_mm *mm, uint64_t va)
{
    vms_kernel *k = mm->k;
    uint64_t ptep;
    vms_pgsize size;
    uint64_t pte = vmsi_leaf_find(mm, va, &ptep, &size);
    if (size != VMS_PG_2M || !vmsi_pte_mapped(k, pte))
        return VMS_OK;
    uint64_t head = vmsi_pte_head_pfn(k, pte, VMS_PG_2M);
    if (k->huge_zero_pfn && head == k->huge_zero_pfn)
        return split_zero_pmd(mm, va & ~(HPAGE_SIZE - 1), ptep, pte);
    vms_frame *f = vms_frames_meta(k->fr, head);
    if (!f || !(f->flags & VMSI_FRAME_THP))
        return VMS_OK; /* a hugetlb page: never split */
    return split_pmd(mm, va & ~(HPAGE_SIZE - 1));
}

vms_status vmsi_thp_split_page_at(vmsi_mm *mm, uint64_t va)
{
    vms_kernel *k = mm->k;
    vms_status st = vmsi_thp_split_at(mm, va);
    uint64_t ptep;
    vms_pgsize size;
    uint64_t pte = st == VMS_OK ? vmsi_leaf_find(mm, va, &ptep, &size) : 0;
    if (!vmsi_pte_mapped(k, pte) || size != VMS_PG_4K || vmsi_is_zero_pfn(k, vmsi_pte_pfn(k, pte)))
        return st;
    uint64_t head = vmsi_folio_head(k, vmsi_pte_pfn(k, pte));
    vms_frame *f = vms_frames_meta(k->fr, head);
    return (f->flags & VMSI_FRAME_THP) ? vmsi_split_huge_page(k, head) : VMS_OK;
}

/* ---- the checker ------------------------------------------------------------------------ */

vms_status vmsi_thp_check_folio(vms_kernel *k, uint64_t head, bool *pmd_mapped, vms_err *err)
{
    const vms_frame *f = vms_frames_meta(k->fr, head);
    const vmsi_thp_folio *s = vmsi_thp_folio_of(k, head);
    uint32_t cnt[512] = {0}, pmds = 0;
    for (uint32_t j = 0; j < vmsi_rmap_count(f); j++) {
        vmsi_rmap_ent e = vmsi_rmap_get(f, j);
        uint64_t ptep;
        vms_pgsize size;
        uint64_t pte = vmsi_leaf_find(e.mm, e.va, &ptep, &size);
        if (size == VMS_PG_2M)
            pmds++;
        else
            cnt[vmsi_pte_pfn(k, pte) - head]++; /* within the page: vmsi_rmap_check */
    }
    *pmd_mapped = pmds > 0;
    if (!s)
        return pmds == f->mapcount
                   ? VMS_OK
                   : vmsi_err(err, VMS_ERR_INVAL,
                              "THP %llx: mapped by PTEs but has no PTE-mapped state",
                              (unsigned long long)head);
    uint32_t nr = 0;
    for (uint64_t i = 0; i < HPAGE_NR; i++) {
        if (cnt[i] != s->map[i])
            return vmsi_err(err, VMS_ERR_INVAL, "THP %llx: subpage %llu has %u PTEs, mapcount %u",
                            (unsigned long long)head, (unsigned long long)i, cnt[i], s->map[i]);
        nr += cnt[i] ? 1u : 0u;
    }
    if (s->head != head || s->entire != pmds || s->nr_mapped != nr)
        return vmsi_err(err, VMS_ERR_INVAL,
                        "THP %llx: state says %u PMDs and %u subpages mapped, found %u and %u",
                        (unsigned long long)head, s->entire, s->nr_mapped, pmds, nr);
    if (partial(s) != s->queued && !(s->queued && s->entire == 0))
        return vmsi_err(err, VMS_ERR_INVAL, "THP %llx: %s", (unsigned long long)head,
                        s->queued ? "on the deferred split queue with a PMD"
                                  : "partially mapped but not on the deferred split queue");
    return VMS_OK;
}

vms_status vmsi_thp_check(vms_kernel *k, uint64_t pmd_mapped, vms_err *err)
{
    uint64_t n = 0;
    const vmsi_thp_folio *prev = NULL;
    for (const vmsi_thp_folio *s = k->split_queue; s; prev = s, s = s->next, n++) {
        const vms_frame *f = vms_frames_meta(k->fr, s->head);
        if (!s->queued || s->prev != prev || !f || !(f->flags & VMSI_FRAME_THP) ||
            vmsi_thp_folio_of(k, s->head) != s)
            return vmsi_err(err, VMS_ERR_INVAL, "deferred split queue: a bad entry (THP %llx)",
                            (unsigned long long)s->head);
    }
    if (n != k->split_queue_len || prev != k->split_tail)
        return vmsi_err(err, VMS_ERR_INVAL, "deferred split queue: %llu pages, length says %llu",
                        (unsigned long long)n, (unsigned long long)k->split_queue_len);
    if (pmd_mapped != k->thp_pmd_mapped)
        return vmsi_err(err, VMS_ERR_INVAL, "%llu THPs mapped by a PMD, AnonHugePages counts %llu",
                        (unsigned long long)pmd_mapped, (unsigned long long)k->thp_pmd_mapped);
    return VMS_OK;
}

/* ---- faults ------------------------------------------------------------------------- */

typedef struct thp_ctx {
    vms_kernel *k;
    vms_task *t;
    vmsi_mm *mm;
    vmsi_vma *v;
    uint64_t haddr, pmdp, pmd;
    bool write;
    vmsi_fault_info *fi;
} thp_ctx;

static vmsi_fault_ret from_status(vms_status st)
{
    if (st == VMS_OK)
        return VMSI_FAULT_DONE;
    if (st == VMS_ERR_NOTFOUND)
        return VMSI_FAULT_OOM;
    return st == VMS_ERR_NOMEM ? VMSI_FAULT_NOMEM : VMSI_FAULT_BUS;
}

/* The huge leaf mapping pfn with v's rights (write only when `writable`, dirty then). */
static uint64_t mk_pmd(const thp_ctx *c, uint64_t pfn, bool writable)
{
    uint64_t pmd = vmsi_mk_pte_size(c->k, c->v, pfn, writable, VMS_PG_2M);
    return writable ? vmsi_pte_mkdirty(c->k, pmd) : pmd;
}

/* do_huge_pmd_anonymous_page: the PMD is empty. */
static vmsi_fault_ret huge_anonymous(thp_ctx *c, bool *handled)
{
    vms_kernel *k = c->k;
    if (!c->write && k->cfg.zero_page) {
        uint64_t z = huge_zero_get(k);
        if (!z) {
            k->st.thp_fault_fallback++;
            return VMSI_FAULT_DONE;
        }
        *handled = true;
        k->st.zero_page++;
        return from_status(vmsi_map_page(c->mm, c->haddr, c->pmdp, z, mk_pmd(c, z, false)));
    }
    uint64_t pfn;
    if (alloc_thp(k, c->t->core, true, (c->v->flags & VMSI_VM_HUGEPAGE) != 0, &pfn) != VMS_OK) {
        k->st.thp_fault_fallback++;
        return VMSI_FAULT_DONE;
    }
    *handled = true;
    vms_status st =
        vmsi_map_page_size(c->mm, c->haddr, c->pmdp, pfn, mk_pmd(c, pfn, true), VMS_PG_2M);
    vmsi_page_put(k, pfn);
    if (st == VMS_OK) {
        k->st.anon_alloc++;
        k->st.thp_fault_alloc++;
        k->st.thp_anon_fault_alloc++;
    }
    return from_status(st);
}

/* thp.cow = copy: a new huge page with the old one's bytes in place of the shared one. */
static vms_status copy_huge(thp_ctx *c, uint64_t old)
{
    vms_kernel *k = c->k;
    uint64_t pfn;
    vms_status st = alloc_thp(k, c->t->core, false, (c->v->flags & VMSI_VM_HUGEPAGE) != 0, &pfn);
    for (uint64_t i = 0; st == VMS_OK && i < HPAGE_NR; i++)
        if (vmsi_ram_copy_frame(k, pfn + i, old + i) != VMS_OK) {
            vms_frames_put(k->fr, pfn, NULL);
            return VMS_ERR_NOMEM;
        }
    if (st != VMS_OK)
        return st;
    vmsi_charge(k, c->t->core, (uint64_t)k->cfg.cost.copy_page * HPAGE_NR);
    st = vmsi_map_page_size(c->mm, c->haddr, c->pmdp, pfn, mk_pmd(c, pfn, true), VMS_PG_2M);
    vmsi_page_put(k, pfn);
    if (st != VMS_OK)
        return st;
    vmsi_page_unref(c->mm, c->haddr, c->pmd, VMS_PG_2M);
    vmsi_flush_tlb_range(k, c->mm, c->t->core, c->haddr, c->haddr + HPAGE_SIZE);
    k->st.cow++;
    k->st.cow_copy++;
    k->st.thp_cow_copy++;
    return VMS_OK;
}

/* do_huge_pmd_wp_page: a write to a present read-only huge leaf of a private VMA. */
static vmsi_fault_ret huge_wp(thp_ctx *c, bool *handled)
{
    vms_kernel *k = c->k;
    uint64_t head = vmsi_pte_head_pfn(k, c->pmd, VMS_PG_2M);
    if (head == k->huge_zero_pfn) { /* split to zero-page PTEs; the 4 KiB path COWs */
        vms_status st = split_zero_pmd(c->mm, c->haddr, c->pmdp, c->pmd);
        *handled = st != VMS_OK;
        return from_status(st);
    }
    vms_frame *f = vms_frames_meta(k->fr, head);
    *handled = true;
    if (f->refcount - f->pincount == 1) { /* exclusively ours: reuse */
        vmsi_pte_set(c->mm, c->pmdp, vmsi_pte_mkdirty(k, vmsi_pte_mkwrite(k, c->pmd)));
        k->st.cow++;
        k->st.cow_reuse++;
        return VMSI_FAULT_DONE;
    }
    if (k->cfg.thp_cow == VMS_THP_COW_COPY) {
        vms_frames_get(k->fr, head); /* held across the allocation */
        vms_status st = copy_huge(c, head);
        vmsi_page_put(k, head);
        if (st != VMS_ERR_NOTFOUND)
            return from_status(st);
        k->st.thp_fault_fallback++; /* no free 2 MiB block: split instead */
    }
    /* do_huge_pmd_wp_page's fallback: split the PMD only (the page stays whole, PTE-
     * mapped); the 4 KiB path then copies the written page (do_wp_page). */
    vms_status st = split_pmd(c->mm, c->haddr);
    *handled = st != VMS_OK;
    return from_status(st);
}

vmsi_fault_ret vmsi_thp_fault(vms_kernel *k, vms_task *t, vmsi_vma *v, uint64_t addr, bool write,
                              vmsi_fault_info *fi, bool *handled)
{
    *handled = false;
    /* No huge leaf in the mm and none allowed here: the 4 KiB path (without reading the
     * tables twice, so a run without THP counts exactly what it did before THP). */
    if (!vms_fmt_has_size(k->fmt, VMS_PG_2M) ||
        (!t->proc->mm->thp_leaves && !thp_vma_allowed(k, v)))
        return VMSI_FAULT_DONE;
    thp_ctx c = {k, t, t->proc->mm, v, addr & ~(HPAGE_SIZE - 1), 0, 0, write, fi};
    vms_status st;
    c.pmdp = pmd_slot(c.mm, c.haddr, false, &st);
    c.pmd = c.pmdp ? vmsi_pte_get(c.mm, c.pmdp) : 0;
    if (c.pmd && vmsi_pte_leaf(k, c.pmd, 2)) { /* a huge leaf: whatever the VMA says now */
        *handled = true;
        if (!vmsi_pte_trusted(c.mm, c.haddr, c.pmd, VMS_PG_2M)) {
            vmsi_panic(k, "Bad pmd: %llx at va %llx (the kernel did not write it)",
                       (unsigned long long)c.pmd, (unsigned long long)c.haddr);
            return VMSI_FAULT_PANIC;
        }
        if (!vmsi_pte_present(k, c.pmd)) {
            assert(false && "PROT_NONE pmd in an accessible VMA");
            return VMSI_FAULT_SEGV;
        }
        if (write && !vmsi_pte_write(k, c.pmd))
            return huge_wp(&c, handled);
        k->st.spurious++;
        return VMSI_FAULT_DONE;
    }
    if (c.pmd || !thp_suitable(k, v, c.haddr))
        return VMSI_FAULT_DONE; /* a page table is there, or not eligible: 4 KiB */
    c.pmdp = pmd_slot(c.mm, c.haddr, true, &st);
    if (!c.pmdp) {
        *handled = true;
        return from_status(st);
    }
    if (vmsi_pte_get(c.mm, c.pmdp)) /* the allocation's reclaim cannot fill it; be safe */
        return VMSI_FAULT_DONE;
    return huge_anonymous(&c, handled);
}

/* ---- khugepaged ------------------------------------------------------------------------ */

/* What a collapse of the range at haddr found in its PTE table. */
typedef struct collapse_scan {
    uint64_t table;   /* the PTE table's physical address */
    uint64_t none;    /* empty PTEs (or zero-page PTEs) */
    uint64_t swap;    /* swap PTEs, read back by the collapse */
    uint64_t shared;  /* PTEs mapping a page other mms map too (copied, theirs kept) */
    uint64_t present; /* PTEs mapping a page (exclusive or shared) */
} collapse_scan;

/* Whether the frame a PTE of a collapse candidate maps may be copied and dropped: an
 * order-0 unlocked anonymous page held only by its mappings and the swap cache (no pin,
 * no other holder; Linux is_refcount_suitable). */
static bool collapse_page_ok(const vms_frame *f)
{
    if (!f || !(f->flags & VMS_FRAME_ANON) || f->order || (f->flags & VMS_FRAME_LOCKED))
        return false;
    return f->refcount == f->mapcount + ((f->flags & VMSI_FRAME_SWAPCACHE) ? 1u : 0u);
}

/* hpage_collapse_scan_pmd: whether the 512 PTEs under haddr may collapse — every entry
 * empty, the zero page, a swap entry that reads, or a page collapse_page_ok allows; at
 * most max_ptes_none empty, max_ptes_swap swapped and max_ptes_shared mapped elsewhere
 * too; at least one page. */
static bool collapse_ok(vmsi_mm *mm, uint64_t haddr, collapse_scan *s)
{
    vms_kernel *k = mm->k;
    vms_status st;
    uint64_t pmdp = pmd_slot(mm, haddr, false, &st);
    uint64_t pmd = pmdp ? vmsi_pte_get(mm, pmdp) : 0;
    if (!pmd || !vmsi_pte_present(k, pmd) || vmsi_pte_leaf(k, pmd, 2))
        return false;
    s->table = vms_fmt_pte_addr(k->fmt, pmd);
    s->none = s->swap = s->shared = s->present = 0;
    for (uint64_t i = 0; i < HPAGE_NR; i++) {
        uint64_t pte = vmsi_pte_get(mm, table_slot(k, s->table, i));
        if (!pte || (vmsi_pte_present(k, pte) && vmsi_pte_pfn(k, pte) == k->zero_pfn)) {
            if (++s->none > k->cfg.thp_max_ptes_none)
                return false;
            continue;
        }
        if (vmsi_is_swap_pte(k, pte)) {
            if (k->swap.bad[vmsi_swp_offset(k, pte)] || ++s->swap > k->cfg.thp_max_ptes_swap)
                return false;
            continue;
        }
        if (!vmsi_pte_present(k, pte))
            return false; /* PROT_NONE */
        vms_frame *f = vms_frames_meta(k->fr, vmsi_pte_pfn(k, pte));
        if (!collapse_page_ok(f))
            return false;
        if (f->mapcount > 1 && ++s->shared > k->cfg.thp_max_ptes_shared)
            return false;
        s->present++;
    }
    return s->present + s->swap > 0;
}

/* The bytes of the swap entry pte into frame dst: from the swap cache when the page is
 * there, else read from the device (__collapse_huge_page_swapin, without mapping it). */
static vms_status collapse_swapin(vms_kernel *k, uint64_t pte, uint64_t dst, unsigned core)
{
    uint64_t slot = vmsi_swp_offset(k, pte), cached = k->swap.cache[slot];
    vms_status st =
        cached ? vmsi_ram_copy_frame(k, dst, cached) : vmsi_swap_readpage(k, slot, dst, core);
    if (st == VMS_OK && !cached)
        k->st.pswpin++;
    if (st == VMS_ERR_IO) {
        k->st.swap_read_errors++;
        vmsi_log(k, VMS_LOG_ERR, "Read-error on swap-device (0:%llu)", (unsigned long long)slot);
    }
    return st;
}

/*
 * collapse_huge_page: a new 2 MiB page gets the bytes of every present or swapped page
 * (zeros elsewhere), the old PTEs go (each drops its page, or its swap slot; a shared
 * page stays with its other mappings), the PTE table is freed, the PMD maps the new page
 * (writable when any old PTE was or the new page holds a copy: it is exclusive), and the
 * old translations are shot down. Nothing changes when a copy or a swap read fails.
 * Costs: 512 page clears, a copy per page, the swap reads, to khugepaged's core.
 */
static bool collapse(vmsi_mm *mm, uint64_t haddr, const collapse_scan *s)
{
    vms_kernel *k = mm->k;
    unsigned core = work_core(k);
    uint64_t pfn;
    if (alloc_thp(k, core, true, true, &pfn) != VMS_OK) {
        k->st.thp_collapse_alloc_failed++;
        return false;
    }
    vmsi_vma *v = vmsi_vma_lookup(mm, haddr);
    bool writable = false, dirty = s->swap > 0 || s->shared > 0;
    for (uint64_t i = 0; i < HPAGE_NR; i++) {
        uint64_t ptep = table_slot(k, s->table, i), pte = vmsi_pte_get(mm, ptep);
        if (!pte)
            continue;
        vms_status st = VMS_OK;
        if (vmsi_is_swap_pte(k, pte))
            st = collapse_swapin(k, pte, pfn + i, core);
        else if (vmsi_pte_pfn(k, pte) != k->zero_pfn)
            st = vmsi_ram_copy_frame(k, pfn + i, vmsi_pte_pfn(k, pte));
        if (st != VMS_OK) {
            vms_frames_put(k->fr, pfn, NULL); /* nothing changed yet for the pages left */
            return false;
        }
        writable |= vmsi_pte_write(k, pte);
        dirty |= vmsi_pte_dirty(k, pte);
    }
    writable |= (s->swap > 0 || s->shared > 0) && (v->prot & VMS_PROT_WRITE);
    for (uint64_t i = 0; i < HPAGE_NR; i++) {
        uint64_t ptep = table_slot(k, s->table, i), pte = vmsi_pte_get(mm, ptep);
        if (pte)
            vmsi_zap_pte(mm, haddr + (i << VMS_PAGE_SHIFT), ptep, pte, VMS_PG_4K);
    }
    vmsi_charge(k, core, (uint64_t)k->cfg.cost.copy_page * (s->present + s->swap));
    vms_status st;
    uint64_t pmdp = pmd_slot(mm, haddr, false, &st);
    vmsi_pte_set(mm, pmdp, 0);
    vms_frames_set_flags(k->fr, s->table >> VMS_PAGE_SHIFT, 0, VMS_FRAME_PAGETABLE);
    vms_frames_put(k->fr, s->table >> VMS_PAGE_SHIFT, NULL);
    mm->nr_ptes--;
    uint64_t pmd = vmsi_mk_pte_size(k, v, pfn, writable, VMS_PG_2M);
    pmd = dirty ? vmsi_pte_mkdirty(k, pmd) : pmd;
    st = vmsi_map_page_size(mm, haddr, pmdp, pfn, vmsi_pte_mkyoung(k, pmd), VMS_PG_2M);
    vmsi_page_put(k, pfn);
    vmsi_flush_tlb_mm_range(k, mm, core, haddr, haddr + HPAGE_SIZE, VMSI_FLUSH_FREED);
    if (st != VMS_OK)
        return false; /* host memory for the rmap: the range reads as zeros (never seen) */
    k->st.thp_collapse_alloc++;
    k->st.thp_collapse_swapin += s->swap;
    k->st.thp_collapse_shared += s->shared;
    return true;
}

/* The next mm after the one with id `id` in pid order (the first when none), or NULL. */
static vmsi_mm *next_mm(vms_kernel *k, uint64_t id, bool after)
{
    vmsi_mm *best = NULL;
    for (unsigned i = 0; i < k->nprocs; i++) {
        vmsi_mm *mm = k->procs[i]->mm;
        if (!mm || (after && mm->id <= id) || (!after && mm->id < id))
            continue;
        if (!best || mm->id < best->id)
            best = mm;
    }
    return best;
}

/* The first THP-eligible VMA of mm at or after va with a whole aligned 2 MiB range
 * there (*haddr gets its first one), or NULL. */
static vmsi_vma *next_range(vms_kernel *k, vmsi_mm *mm, uint64_t va, uint64_t *haddr)
{
    for (vmsi_vma *v = vmsi_vma_find(mm, va); v && v < mm->vma + mm->nvma; v++) {
        uint64_t h = (v->start > va ? v->start : va);
        h = (h + HPAGE_SIZE - 1) & ~(HPAGE_SIZE - 1);
        if (thp_vma_allowed(k, v) && h + HPAGE_SIZE <= v->end) {
            *haddr = h;
            return v;
        }
    }
    return NULL;
}

/* khugepaged_has_work: whether any mm has a range khugepaged could collapse (Linux keeps
 * a list of the mms khugepaged_enter registered; this asks the VMAs). */
static bool has_work(vms_kernel *k)
{
    uint64_t h;
    for (unsigned i = 0; i < k->nprocs; i++)
        if (k->procs[i]->mm && next_range(k, k->procs[i]->mm, 0, &h))
            return true;
    return false;
}

uint64_t vmsi_khugepaged(vms_kernel *k)
{
    if (k->cfg.thp == VMS_THP_NEVER || !vms_fmt_has_size(k->fmt, VMS_PG_2M) || k->in_reclaim)
        return 0;
    k->in_khugepaged = true;
    uint64_t budget = k->cfg.khugepaged_pages, got = 0;
    vmsi_mm *mm = next_mm(k, k->khugepaged_mm, false);
    uint64_t va = k->khugepaged_va;
    k->st.thp_khugepaged_scans++;
    while (mm && budget > 0) {
        uint64_t haddr = 0;
        if (!next_range(k, mm, va, &haddr)) {
            mm = next_mm(k, mm->id, true);
            va = 0;
            if (!mm) /* past the last mm: a full scan ends, the next run starts over */
                k->st.thp_khugepaged_full_scans++;
            continue;
        }
        collapse_scan s;
        if (collapse_ok(mm, haddr, &s) && collapse(mm, haddr, &s))
            got++;
        budget = budget > HPAGE_NR ? budget - HPAGE_NR : 0;
        va = haddr + HPAGE_SIZE;
    }
    k->khugepaged_mm = mm ? mm->id : 0;
    k->khugepaged_va = mm ? va : 0;
    k->in_khugepaged = false;
    return got;
}

/* The machine's time: the latest clock of any core. */
static uint64_t machine_now(vms_kernel *k)
{
    uint64_t now = 0;
    for (unsigned c = 0; c < k->ncores; c++) {
        uint64_t t = vmsi_core_clock(k, c);
        now = t > now ? t : now;
    }
    return now;
}

void vmsi_khugepaged_tick(vms_kernel *k)
{
    if (!k->cfg.khugepaged_sleep || k->in_reclaim || k->cfg.thp == VMS_THP_NEVER)
        return;
    uint64_t now = machine_now(k);
    if (now < k->khugepaged_wake)
        return;
    if (has_work(k)) {
        k->st.thp_khugepaged_timer_runs++;
        vmsi_khugepaged(k);
        now = machine_now(k); /* its work may have moved its core's clock */
    }
    k->khugepaged_wake = now + k->cfg.khugepaged_sleep;
}

void vmsi_thp_destroy(vms_kernel *k)
{
    size_t nr;
    const vms_frames_range *r = vms_frames_ranges(k->fr, &nr);
    for (size_t i = 0; i < nr && k->thp_states; i++) /* left by a panic's teardown */
        for (uint64_t pfn = r[i].base_pfn; pfn + 1 < r[i].base_pfn + r[i].npages; pfn++) {
            vms_frame *f = vms_frames_meta(k->fr, pfn);
            if (!f) {
                pfn |= 511;
                continue;
            }
            if ((f->flags & VMSI_FRAME_THP) && (f->flags & VMS_FRAME_HEAD))
                vmsi_thp_folio_free(k, pfn);
        }
    if (k->huge_zero_pfn) { /* only if a mapping leaked (a panic): free it anyway */
        k->huge_zero_maps = 1;
        vmsi_huge_zero_put(k);
    }
}

uint64_t vms_kernel_thp_deferred_split(vms_kernel *k, uint64_t nr, uint64_t *nsplit)
{
    if (nsplit)
        *nsplit = 0;
    return k->panicked ? 0 : vmsi_thp_deferred_split(k, nr, nsplit);
}

uint64_t vms_kernel_khugepaged(vms_kernel *k)
{
    return k->panicked ? 0 : vmsi_khugepaged(k);
}

vms_status vms_kernel_khugepaged_show(vms_kernel *k, vms_strbuf *sb)
{
    const struct {
        const char *name;
        uint64_t v;
    } rows[] = {
        {"pages_to_scan", k->cfg.khugepaged_pages},
        {"scan_sleep_cycles", k->cfg.khugepaged_sleep},
        {"max_ptes_none", k->cfg.thp_max_ptes_none},
        {"max_ptes_swap", k->cfg.thp_max_ptes_swap},
        {"max_ptes_shared", k->cfg.thp_max_ptes_shared},
        {"pages_collapsed", k->st.thp_collapse_alloc},
        {"full_scans", k->st.thp_khugepaged_full_scans},
        {"runs", k->st.thp_khugepaged_scans},
        {"timer_runs", k->st.thp_khugepaged_timer_runs},
        {"next_run", k->cfg.khugepaged_sleep ? k->khugepaged_wake : 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        vms_strbuf_printf(sb, "%-18s %llu\n", rows[i].name, (unsigned long long)rows[i].v);
    return sb->failed ? VMS_ERR_NOMEM : VMS_OK;
}
