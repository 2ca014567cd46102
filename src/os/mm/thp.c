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
 *   VMA boundary inside a huge page (munmap,     -> split_huge_page: every PMD mapping the
 *   mprotect, mlock, madvise), DMA pin, reclaim     page becomes a table of 512 PTEs and
 *                                                   the page 512 pages
 *   khugepaged (its timer, at kernel entries;    -> collapse 512 PTEs of an eligible range
 *   or called)                                      into one new 2 MiB page
 *
 * Eligible: a private anonymous VMA (not hugetlb) covering the whole 2 MiB-aligned range,
 * accessible, on a format with 2 MiB leaves, and thp = always (unless MADV_NOHUGEPAGE)
 * or madvise with MADV_HUGEPAGE. Invariants (vms_kernel_check): a frame flagged THP is an
 * order-9 anonymous block mapped only by 2 MiB leaves, one rmap entry (mm, haddr) each;
 * the huge zero page is mapped only read-only, never counted, and is freed with its last
 * mapping (huge_zero_maps). Simplification: Linux may keep a huge page whole while only
 * its PMD is split (a PTE-mapped THP on the deferred split queue); here splitting a
 * mapping always splits the page too, at once, in every address space mapping it.
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
    if (vms_frames_alloc(k->fr, HPAGE_ORDER, &pfn, NULL) != VMS_OK)
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

/* Host memory for splitting a page mapped n times: n tables and 511 rmap records. */
typedef struct split_res {
    uint64_t n;
    uint64_t *tables;     /* n table frames */
    vmsi_rmap **rm;       /* 512 records ([0] unused: the head keeps its own) */
    vmsi_rmap_ent **ents; /* 512 arrays of n entries */
} split_res;

static void split_res_free(vms_kernel *k, split_res *s, bool tables_too)
{
    for (uint64_t i = 0; s->tables && tables_too && i < s->n; i++)
        if (s->tables[i]) {
            vms_frames_set_flags(k->fr, s->tables[i], 0, VMS_FRAME_PAGETABLE);
            vms_frames_put(k->fr, s->tables[i], NULL);
        }
    for (uint64_t j = 1; s->rm && j < HPAGE_NR; j++) {
        if (s->rm[j])
            vmsi_free(k->a, s->rm[j], sizeof *s->rm[j]);
        if (s->ents[j])
            vmsi_free(k->a, s->ents[j], s->n * sizeof *s->ents[j]);
    }
    if (s->tables)
        vmsi_free(k->a, s->tables, s->n * sizeof *s->tables);
    if (s->rm)
        vmsi_free(k->a, s->rm, HPAGE_NR * sizeof *s->rm);
    if (s->ents)
        vmsi_free(k->a, s->ents, HPAGE_NR * sizeof *s->ents);
}

/* Everything a split needs, before anything changes: VMS_ERR_NOTFOUND without frames for
 * the tables, VMS_ERR_NOMEM without host memory; nothing is left allocated then. */
static vms_status split_res_get(vms_kernel *k, split_res *s)
{
    vms_status st = VMS_OK;
    s->tables = vmsi_calloc(k->a, s->n, sizeof *s->tables);
    s->rm = vmsi_calloc(k->a, HPAGE_NR, sizeof *s->rm);
    s->ents = vmsi_calloc(k->a, HPAGE_NR, sizeof *s->ents);
    if (!s->tables || !s->rm || !s->ents)
        st = VMS_ERR_NOMEM;
    for (uint64_t j = 1; st == VMS_OK && j < HPAGE_NR; j++) {
        s->rm[j] = vmsi_zalloc(k->a, sizeof *s->rm[j]);
        s->ents[j] = vmsi_calloc(k->a, s->n, sizeof *s->ents[j]);
        if (!s->rm[j] || !s->ents[j])
            st = VMS_ERR_NOMEM;
    }
    for (uint64_t i = 0; st == VMS_OK && i < s->n; i++)
        st = vmsi_alloc_table_frame(k, &s->tables[i]);
    if (st != VMS_OK)
        split_res_free(k, s, true);
    return st;
}

/*
 * split_huge_page with its PMDs: for each rmap entry (mm, haddr) of the THP at head, the
 * leaf becomes a table of 512 PTEs (same rights, A and D), then the block becomes 512
 * pages, each with its own references, mapcount and rmap entries (mm, haddr + i * 4 KiB),
 * back on the replacement policy one by one; every old 2 MiB translation is shot down.
 * The counts (rss, mlock, flags) do not change.
 */
vms_status vmsi_split_huge_page(vms_kernel *k, uint64_t head)
{
    vms_frame *f = vms_frames_meta(k->fr, head);
    assert(f && (f->flags & VMSI_FRAME_THP) && f->order == HPAGE_ORDER);
    uint32_t nmaps = vmsi_rmap_count(f); /* a record, or one mapping inline */
    if (f->pincount || nmaps == 0)
        return VMS_ERR_INVAL;    /* DMA splits before it pins (dma.c); callers split mapped pages */
    vms_frames_get(k->fr, head); /* held across the allocations: reclaim passes it by */
    split_res s = {nmaps, NULL, NULL, NULL};
    vms_status st = split_res_get(k, &s);
    if (st != VMS_OK) {
        vmsi_page_put(k, head);
        return st;
    }
    assert(vmsi_rmap_count(f) == s.n); /* nothing maps or unmaps it meanwhile */
    vmsi_lru_del(k, head);
    for (uint32_t i = 0; i < s.n; i++) {
        vmsi_rmap_ent e = vmsi_rmap_get(f, i);
        vmsi_mm *mm = e.mm;
        uint64_t haddr = e.va, pmdp = pmd_slot(mm, haddr, false, &st);
        uint64_t pmd = vmsi_pte_get(mm, pmdp);
        assert(pmdp && vmsi_pte_leaf(k, pmd, 2) && vmsi_pte_head_pfn(k, pmd, VMS_PG_2M) == head);
        fill_table(mm, vmsi_vma_lookup(mm, haddr), s.tables[i] << VMS_PAGE_SHIFT, pmd, head, false);
        vmsi_pte_set(mm, pmdp, vmsi_mk_table(k, s.tables[i] << VMS_PAGE_SHIFT, 2));
        mm->nr_ptes++;
        mm->thp_leaves--;
        for (uint64_t j = 1; j < HPAGE_NR; j++)
            s.ents[j][i] = (vmsi_rmap_ent){mm, haddr + (j << VMS_PAGE_SHIFT)};
    }
    uint32_t n = (uint32_t)s.n;
    vms_status sst = vms_frames_split(k->fr, head, n, NULL);
    assert(sst == VMS_OK);
    (void)sst;
    for (uint64_t j = 0; j < HPAGE_NR; j++) {
        vms_frame *t = vms_frames_meta(k->fr, head + j);
        if (j > 0) {
            t->mapcount = n;
            s.rm[j]->e = s.ents[j];
            s.rm[j]->n = s.rm[j]->cap = n;
            t->owner = (uintptr_t)s.rm[j];
            s.rm[j] = NULL;
            s.ents[j] = NULL;
        }
        vms_frames_set_flags(k->fr, head + j, 0, VMSI_FRAME_THP | VMSI_FRAME_LRU);
        vmsi_lru_add(k, head + j);
    }
    for (uint32_t i = 0; i < s.n; i++) {
        vmsi_rmap_ent e = vmsi_rmap_get(f, i); /* the head keeps its reverse map */
        vmsi_flush_tlb_range(k, e.mm, work_core(k), e.va, e.va + HPAGE_SIZE);
    }
    k->st.thp_split_page++;
    k->st.thp_split_pmd += s.n;
    split_res_free(k, &s, false);
    vmsi_page_put(k, head);
    return VMS_OK;
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
    return vmsi_split_huge_page(k, head);
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
    vms_status st = vmsi_map_page(c->mm, c->haddr, c->pmdp, pfn, mk_pmd(c, pfn, true));
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
    st = vmsi_map_page(c->mm, c->haddr, c->pmdp, pfn, mk_pmd(c, pfn, true));
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
    vms_status st = vmsi_split_huge_page(k, head);
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
    st = vmsi_map_page(mm, haddr, pmdp, pfn, vmsi_pte_mkyoung(k, pmd));
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
        uint64_t t = vms_core_cycles(vmsi_core_clock(k, c));
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
    if (k->huge_zero_pfn) { /* only if a mapping leaked (a panic): free it anyway */
        k->huge_zero_maps = 1;
        vmsi_huge_zero_put(k);
    }
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
