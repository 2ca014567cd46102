/*
 * reclaim.c — memory pressure: page replacement through the policy plug-ins, kswapd and
 * direct reclaim with Linux's watermarks, eviction through the reverse map, and the OOM
 * killer (Linux mm/vmscan.c, mm/rmap.c try_to_unmap, mm/oom_kill.c; much reduced).
 *
 * Which frames the policy tracks (flag LRU): every 4 KiB anonymous frame once mapped,
 * every page-cache page (file and shmem) once cached. A frame leaves the policy when it
 * is freed (vmsi_page_put), when the policy picks it as a victim, or — for mlocked
 * frames found at victim time — until munlock puts it back (Linux's unevictable list).
 * Huge pages, page tables and the zero page are never tracked.
 *
 * Evicting a victim (shrink_page), after checking that nothing but its mappings and its
 * cache hold it (refcount == mapcount + cache + swap cache: a caller holding an extra
 * reference across an allocation makes it "busy", as Linux's folio_ref_freeze fails):
 *   - anonymous: write it to a fresh swap slot (a swap-cache page is already there), then
 *     replace every PTE that maps it — found through the rmap, in every address space
 *     (fork's COW sharers included) — by the swap entry, shooting down the TLBs of each;
 *     the frame is freed. A write error keeps the page resident and mapped;
 *   - shmem: the same, but its PTEs are cleared and the object's cache keeps the slot;
 *   - file: clear its PTEs (collecting D bits), write it back if dirty (to the copy, as
 *     msync does), drop it from the cache leaving a shadow (a later read is a refault);
 *   - mlocked: unevictable; pinned (DMA) or busy: put back ("rotated").
 *
 * Watermarks, in pages (Linux __setup_per_zone_wmarks with watermark_scale_factor 10):
 *   min  = sqrt(16 * RAM in KiB) KiB, clamped to 128 KiB … 256 MiB (min_free_kbytes)
 *   low  = min + max(min / 4, RAM / 1000)
 *   high = low + max(min / 4, RAM / 1000)
 * An allocation that would leave fewer than min free pages first reclaims directly (32
 * pages, SWAP_CLUSTER_MAX); kswapd runs at the next kernel entry (a fault or a system
 * call) whenever free < low and reclaims until free >= high; an allocation that finds no
 * free block reclaims directly, scanning every tracked page if it must. What kswapd does
 * is charged to kswapd_core when configured, else counted only in kswapd_cycles — on a
 * real machine it runs concurrently on some CPU.
 *
 * The policy's host: test_and_clear_young reads and clears the A bit of every PTE that
 * maps the frame (page_referenced) and flushes those TLB entries, so the walker sets A
 * again on the next use (Linux's generic ptep_clear_flush_young; x86 itself skips the
 * flush). For policies that need every reference (lru, opt), the kernel's access path
 * calls access() for each page a user access touched: a simulator oracle — a real
 * kernel never sees individual references. OPT's next_use asks the installed oracle for
 * each (pid, va) that maps the frame and takes the nearest.
 *
 * The OOM killer (oom_badness): points = rss + swap entries + page-table pages; the
 * process with the most points dies (ties: the highest pid), logged as Linux does.
 */
#include <assert.h>
#include <stdio.h>

#include "os/os_impl.h"
#include "os/mm/mm_impl.h"
#include "hw/tap.h"
#include "os/reclaim/reclaim_impl.h"

/* Initial capacity of the page policy's pools (they grow on demand). */
#define POLICY_HINT_PAGES UINT64_C(65536)

#define SWAP_CLUSTER_MAX 32u

/* ---- the policy's bookkeeping ------------------------------------------------------- */

/* Put pfn on the policy: a new page, or (rotated) a victim the scan kept. */
static void lru_put(vms_kernel *k, uint64_t pfn, bool rotated)
{
    vms_frame *f = k->pol ? vms_frames_meta(k->fr, pfn) : NULL;
    if (!f || !(f->flags & VMS_FRAME_HEAD) || (f->order != 0 && !(f->flags & VMSI_FRAME_THP)) ||
        (f->flags & (VMSI_FRAME_LRU | VMS_FRAME_LOCKED)) ||
        !(f->flags & (VMS_FRAME_ANON | VMS_FRAME_FILE)))
        return;
    vms_status (*put)(void *, uint64_t) =
        rotated && k->pol->rotate ? k->pol->rotate : k->pol->insert;
    if (put(k->pol_state, pfn) == VMS_OK) {
        vms_frames_set_flags(k->fr, pfn, VMSI_FRAME_LRU, 0);
        k->thp_lru += (f->flags & VMSI_FRAME_THP) ? 1 : 0;
    }
}

void vmsi_lru_add(vms_kernel *k, uint64_t pfn)
{
    lru_put(k, pfn, false);
}

void vmsi_lru_del(vms_kernel *k, uint64_t pfn)
{
    vms_frame *f = vms_frames_meta(k->fr, pfn);
    if (!f || !(f->flags & VMSI_FRAME_LRU))
        return;
    k->pol->remove(k->pol_state, pfn);
    vms_frames_set_flags(k->fr, pfn, 0, VMSI_FRAME_LRU);
    k->thp_lru -= (f->flags & VMSI_FRAME_THP) ? 1 : 0;
}

void vmsi_page_put(vms_kernel *k, uint64_t pfn)
{
    vms_frame *f = vms_frames_meta(k->fr, pfn);
    if (f->refcount == 1) {
        vmsi_lru_del(k, pfn);
        if (f->flags & VMSI_FRAME_THP) /* freed whole: off the deferred split queue */
            vmsi_thp_folio_free(k, pfn);
    }
    vms_frames_put(k->fr, pfn, NULL);
    if ((f->flags & VMSI_FRAME_HUGETLB) && f->refcount == 1 && f->mapcount == 0)
        vmsi_hugetlb_free(k, pfn); /* only the pool's reference is left */
}

void vmsi_lru_accessed(vms_kernel *k, vmsi_mm *mm, uint64_t va, size_t len)
{
    if (!k->pol || !(k->pol->flags & VMS_PPOL_NEEDS_ACCESS) || !mm)
        return;
    uint64_t end = va + len;
    for (uint64_t p = va & ~VMS_PAGE_MASK; p < end; p += VMS_PAGE_SIZE) {
        vmsi_vma *v = vmsi_vma_lookup(mm, p);
        uint64_t ptep = 0;
        vms_pgsize size;
        if (!v || vmsi_vma_pgsize(v) != VMS_PG_4K)
            continue;
        uint64_t pte = vmsi_leaf_find(mm, p, &ptep, &size); /* 4 KiB, or a THP */
        uint64_t pfn = vmsi_pte_present(k, pte) ? vmsi_pte_head_pfn(k, pte, size) : 0;
        pfn = pfn ? vmsi_folio_head(k, pfn) : 0; /* a PTE-mapped THP's subpage: the page */
        vms_frame *f = pfn ? vms_frames_meta(k->fr, pfn) : NULL;
        if (f && (f->flags & VMSI_FRAME_LRU))
            k->pol->access(k->pol_state, pfn);
    }
}

/* The leaf slot of an rmap entry (4 KiB, or the 2 MiB leaf of a transparent huge page:
 * reclaim splits those before it unmaps them). */
static uint64_t rmap_ptep(const vmsi_rmap_ent *e)
{
    uint64_t ptep = 0;
    vms_pgsize size;
    if (vmsi_pte_slot(e->mm, e->va, VMS_PG_4K, false, &ptep, NULL) == VMS_ERR_EXISTS)
        vmsi_leaf_find(e->mm, e->va, &ptep, &size); /* a 2 MiB leaf above the PTE level */
    return ptep;
}

/* The core an eviction's work is charged to, and that initiates its flushes. */
static unsigned reclaim_core(vms_kernel *k)
{
    if (!k->in_kswapd)
        return k->cur_core;
    return k->cfg.kswapd_core >= 0 ? (unsigned)k->cfg.kswapd_core : VMSI_NO_CORE;
}

/* page_referenced + ptep_clear_flush_young over the rmap. */
static bool host_young(void *ud, uint64_t pfn)
{
    vms_kernel *k = ud;
    vms_frame *f = vms_frames_meta(k->fr, pfn);
    bool young = false;
    for (uint32_t i = 0; f && i < vmsi_rmap_count(f); i++) {
        vmsi_rmap_ent e = vmsi_rmap_get(f, i);
        uint64_t ptep = rmap_ptep(&e);
        uint64_t pte = ptep ? vmsi_pte_get(e.mm, ptep) : 0;
        if (!vmsi_pte_young(k, pte))
            continue;
        vmsi_pte_set(e.mm, ptep, vmsi_pte_mkold(k, pte));
        vmsi_flush_tlb_range(k, e.mm, reclaim_core(k), e.va, e.va + VMS_PAGE_SIZE);
        young = true;
    }
    return young;
}

static int pid_of(vms_kernel *k, const vmsi_mm *mm)
{
    for (unsigned i = 0; i < k->nprocs; i++)
        if (k->procs[i]->mm == mm)
            return k->procs[i]->pid;
    return 0;
}

/* The nearest next use of any (pid, va) mapping the frame; never if unmapped. */
static uint64_t host_next_use(void *ud, uint64_t pfn)
{
    vms_kernel *k = ud;
    vms_frame *f = vms_frames_meta(k->fr, pfn);
    uint64_t best = UINT64_MAX;
    for (uint32_t i = 0; f && i < vmsi_rmap_count(f) && k->cfg.next_use; i++) {
        vmsi_rmap_ent e = vmsi_rmap_get(f, i);
        uint64_t n = k->cfg.next_use(k->cfg.next_use_ud, pid_of(k, e.mm), e.va);
        best = n < best ? n : best;
    }
    return best;
}

/* ---- watermarks and setup ----------------------------------------------------------- */

static uint64_t isqrt(uint64_t n)
{
    uint64_t x = 0;
    for (uint64_t b = UINT64_C(1) << 62; b; b >>= 2) {
        if (n >= x + b) {
            n -= x + b;
            x = (x >> 1) + b;
        } else {
            x >>= 1;
        }
    }
    return x;
}

static void set_watermarks(vms_kernel *k)
{
    vms_frames_stats fs;
    vms_frames_stats_get(k->fr, &fs);
    uint64_t pages = fs.total - fs.reserved;
    uint64_t min_kb = isqrt((pages * 4) * 16);
    min_kb = min_kb < 128 ? 128 : min_kb > 262144 ? 262144 : min_kb;
    uint64_t min = min_kb / 4;
    uint64_t delta = min / 4 > pages / 1000 ? min / 4 : pages / 1000;
    k->wmark_min = k->cfg.wmark_min ? k->cfg.wmark_min >> VMS_PAGE_SHIFT : min;
    k->wmark_low = k->cfg.wmark_low ? k->cfg.wmark_low >> VMS_PAGE_SHIFT : k->wmark_min + delta;
    k->wmark_high = k->cfg.wmark_high ? k->cfg.wmark_high >> VMS_PAGE_SHIFT : k->wmark_low + delta;
}

vms_status vmsi_reclaim_init(vms_kernel *k, vms_err *err)
{
    const char *name = k->cfg.policy && *k->cfg.policy ? k->cfg.policy : "twolist";
    k->pol_host = (vms_policy_host){k, host_young, k->cfg.next_use ? host_next_use : NULL};
    vms_status st = vms_page_policy_select(name, &k->pol_host, &k->pol, err);
    if (st == VMS_ERR_UNSUPPORTED)
        return vmsi_err(err, st,
                        "policy '%s' needs the future: the kernel has no next-use oracle "
                        "(vms_kernel_config.next_use; a trace replay provides one)",
                        name);
    if (st != VMS_OK)
        return st;
    snprintf(k->policy_name, sizeof k->policy_name, "%s", k->pol->name);
    set_watermarks(k);
    vms_frames_stats fs;
    vms_frames_stats_get(k->fr, &fs);
    /* A capacity hint, not a bound: the policy's pools grow as pages become resident, so
     * host memory follows the resident set, not the size of RAM (a 1 TiB machine boots
     * cheaply). */
    uint64_t hint = fs.total < POLICY_HINT_PAGES ? fs.total : POLICY_HINT_PAGES;
    st = k->pol->create(k->a, (size_t)hint, k->cfg.seed, &k->pol_state, err);
    if (st != VMS_OK)
        k->pol = NULL;
    return st;
}

void vmsi_reclaim_destroy(vms_kernel *k)
{
    if (k->pol)
        k->pol->destroy(k->pol_state);
    k->pol = NULL;
    k->pol_state = NULL;
}

/* ---- evicting one frame ------------------------------------------------------------ */

typedef enum shrink_ret {
    SHRINK_RECLAIMED,   /* the frame is free */
    SHRINK_KEEP,        /* still resident: put it back on the policy */
    SHRINK_UNEVICTABLE, /* mlocked (or gone): leave it off the policy */
} shrink_ret;

/* Clear the TLB entries of one rmap entry after its PTE changed: deferred to the end of
 * the batch (Linux's TTU_BATCH_FLUSH; shrink() flushes before any frame is reused). */
static void flush_one(vms_kernel *k, const vmsi_rmap_ent *e)
{
    vmsi_tlb_defer(k, e->mm, reclaim_core(k), e->va);
}

/* try_to_unmap for an anonymous page whose bytes are in the slots from slot on (a
 * transparent huge page's subpage i at slot + i: Linux's page_swap_entry): every PTE
 * mapping it becomes its swap entry (one slot reference each). Frees the frame unless
 * the swap cache (or a caller's hold) keeps it. */
void vmsi_unmap_to_swap(vms_kernel *k, uint64_t pfn, uint64_t slot)
{
    vms_frame *f = vms_frames_meta(k->fr, pfn);
    uint64_t nr = UINT64_C(1) << f->order;
    uint32_t n;
    while ((n = vmsi_rmap_count(f)) > 0) {
        vmsi_rmap_ent e = vmsi_rmap_get(f, n - 1);
        uint64_t ptep = rmap_ptep(&e);
        uint64_t pte = vmsi_pte_get(e.mm, ptep), sub = vmsi_pte_pfn(k, pte) - pfn;
        assert(vmsi_pte_mapped(k, pte) && sub < nr);
        (void)nr;
        vmsi_swap_dup(k, slot + sub);
        vmsi_pte_set(e.mm, ptep, vmsi_swp_entry(k, 0, slot + sub));
        e.mm->swapents++;
        vmsi_page_unref(e.mm, e.va, pte, VMS_PG_4K);
        flush_one(k, &e);
    }
}

/* Clear every PTE mapping a cache page (their D bits mark it DIRTY). */
static void unmap_cache_page(vms_kernel *k, uint64_t pfn)
{
    vms_frame *f = vms_frames_meta(k->fr, pfn);
    uint32_t n;
    while ((n = vmsi_rmap_count(f)) > 0) {
        vmsi_rmap_ent e = vmsi_rmap_get(f, n - 1);
        uint64_t ptep = rmap_ptep(&e);
        vmsi_zap_pte(e.mm, e.va, ptep, vmsi_pte_get(e.mm, ptep), VMS_PG_4K);
        flush_one(k, &e);
    }
}

/* Take an unmapped cache page out of its object, leaving `entry` in its place. */
static void remove_cache_page(vms_kernel *k, uint64_t pfn, uint64_t entry)
{
    vms_frame *f = vms_frames_meta(k->fr, pfn);
    vmsi_rmap *r = (vmsi_rmap *)f->owner;
    vms_file *file = r->file;
    vmsi_radix_set(&file->pages, k->a, r->index, entry); /* replaces: cannot fail */
    file->cached--;
    if (f->flags & VMS_FRAME_SWAPBACKED)
        k->nr_shmem--;
    vmsi_free(k->a, r->e, r->cap * sizeof *r->e);
    vmsi_free(k->a, r, sizeof *r);
    f->owner = 0;
    vms_frames_set_flags(k->fr, pfn, 0, f->flags & ~VMS_FRAME_OWNED_FLAGS);
    vms_frames_put(k->fr, pfn, NULL);
}

/* A fresh slot holding the frame's bytes, or 0 (no slot, or a write error: counted). */
static uint64_t write_to_swap(vms_kernel *k, uint64_t pfn)
{
    uint64_t slot = vmsi_swap_alloc(k);
    if (!slot)
        return 0;
    if (vmsi_swap_writepage(k, slot, pfn, reclaim_core(k)) != VMS_OK) {
        vmsi_swap_free(k, slot);
        k->st.swap_write_errors++;
        vmsi_log(k, VMS_LOG_ERR, "Write-error on swap-device (0:%llu): page %llx kept in memory",
                 (unsigned long long)slot, (unsigned long long)pfn);
        return 0;
    }
    k->st.pswpout++;
    return slot;
}

static shrink_ret shrink_anon(vms_kernel *k, uint64_t pfn, vms_frame *f)
{
    if (f->flags & VMSI_FRAME_SWAPCACHE) {       /* clean: its slot holds the same bytes */
        uint64_t slot = vmsi_rmap_rec(f)->index; /* a swap-cache page has a record */
        vmsi_unmap_to_swap(k, pfn, slot);
        vmsi_swapcache_del(k, slot);
        return SHRINK_RECLAIMED;
    }
    uint64_t slot = write_to_swap(k, pfn);
    if (!slot)
        return SHRINK_KEEP;
    vmsi_unmap_to_swap(k, pfn, slot);
    vmsi_swap_free(k, slot); /* the writer's reference: the PTEs hold theirs */
    return SHRINK_RECLAIMED;
}

static shrink_ret shrink_shmem(vms_kernel *k, uint64_t pfn)
{
    uint64_t slot = write_to_swap(k, pfn);
    if (!slot)
        return SHRINK_KEEP;
    unmap_cache_page(k, pfn);
    remove_cache_page(k, pfn, VMSI_CACHE_SWAP | slot); /* the cache keeps the reference */
    return SHRINK_RECLAIMED;
}

static shrink_ret shrink_file(vms_kernel *k, uint64_t pfn)
{
    vmsi_rmap *r = vmsi_rmap_of(k, pfn);
    vms_file *file = r->file;
    uint64_t index = r->index;
    unmap_cache_page(k, pfn);
    vms_frame *f = vms_frames_meta(k->fr, pfn);
    if (f->flags & VMS_FRAME_DIRTY) {
        unsigned core = reclaim_core(k);
        if (vmsi_file_writeback(k, file, index, index + 1, core, NULL) != VMS_OK)
            return SHRINK_KEEP; /* stays cached, still dirty: nothing lost */
        k->st.pgwriteback++;
    }
    remove_cache_page(k, pfn, VMSI_CACHE_SHADOW);
    return SHRINK_RECLAIMED;
}

/* shrink_folio_list for one frame the policy chose; *nr gets the frames a RECLAIMED
 * freed (512 for a huge page swapped out whole, else 1). */
static shrink_ret shrink_page(vms_kernel *k, uint64_t pfn, uint64_t *nr)
{
    *nr = 1;
    vms_frame *f = vms_frames_meta(k->fr, pfn);
    if (!f || !(f->flags & VMS_FRAME_HEAD) || (f->flags & VMS_FRAME_LOCKED) ||
        !(f->flags & (VMS_FRAME_ANON | VMS_FRAME_FILE)))
        return SHRINK_UNEVICTABLE;
    uint32_t expect = f->mapcount + ((f->flags & VMS_FRAME_FILE) ? 1u : 0u) +
                      ((f->flags & VMSI_FRAME_SWAPCACHE) ? 1u : 0u);
    if ((f->flags & VMS_FRAME_PINNED) || f->refcount != expect)
        return SHRINK_KEEP;
    /* A transparent huge page goes to swap whole (thp.swap = whole: all 512 frames), or
     * is split, then its first page goes like any other and the others return to the
     * policy (Linux shrink_folio_list's split_folio_to_list); a split that freed the
     * first page (no PTE mapped it) reclaimed it already. */
    if (f->flags & VMSI_FRAME_THP) {
        vmsi_thp_reclaim_ret r = vmsi_thp_reclaim(k, pfn, reclaim_core(k));
        *nr = r == VMSI_THP_RECLAIM_SWAPPED ? UINT64_C(1) << 9 : 1;
        if (r != VMSI_THP_RECLAIM_SPLIT)
            return r == VMSI_THP_RECLAIM_KEEP ? SHRINK_KEEP : SHRINK_RECLAIMED;
    }
    if (f->flags & VMS_FRAME_ANON)
        return shrink_anon(k, pfn, f);
    if (f->flags & VMS_FRAME_SWAPBACKED)
        return shrink_shmem(k, pfn);
    return shrink_file(k, pfn);
}

/* Whether any tracked page could be reclaimed at all (file pages, swap room). */
static bool can_reclaim(vms_kernel *k)
{
    if (k->split_queue) /* the deferred split shrinker frees frames without any I/O */
        return true;
    return k->pol && k->pol->count(k->pol_state) > 0 &&
           (k->swap.nfree > 0 || k->swap.ncached > 0 ||
            vms_frames_count(k->fr, VMS_FRAME_FILE) > k->nr_shmem);
}

/* Tell the tap that frame pfn was reclaimed (anon: swap-backed, so swapped out). */
static void report_reclaim(vms_kernel *k, uint64_t pfn, bool anon)
{
    const vmsi_tap *tap = vmsi_machine_tap(k->m);
    if (!vmsi_tap_on(tap))
        return;
    unsigned core = reclaim_core(k);
    vms_event ev = {.type = VMS_EV_RECLAIM, .reclaim = {pfn, anon, k->in_kswapd}};
    vmsi_tap_emit(tap, core == VMSI_NO_CORE ? VMS_EV_NO_CORE : (int)core, &ev);
}

/* Scan up to `budget` victims to free `nr` frames. Returns the number freed. */
static uint64_t shrink(vms_kernel *k, uint64_t nr, uint64_t budget)
{
    if (k->in_reclaim || !can_reclaim(k))
        return 0;
    k->in_reclaim = true;
    uint64_t got = 0, scanned = 0;
    /* The deferred split shrinker (Linux's shrink_slab in the same pass): partially
     * mapped huge pages give back their unmapped subpages without any I/O. */
    uint64_t split_freed = k->split_queue ? vmsi_thp_deferred_split(k, 0, NULL) : 0;
    while (got + split_freed < nr && scanned < budget) {
        uint64_t pfn;
        if (!k->pol->victim(k->pol_state, &k->pol_host, &pfn))
            break;
        vms_frames_set_flags(k->fr, pfn, 0, VMSI_FRAME_LRU);
        scanned++;
        vms_frame *f = vms_frames_meta(k->fr, pfn);
        k->thp_lru -= (f->flags & VMSI_FRAME_THP) ? 1 : 0;
        bool anon = (f->flags & VMS_FRAME_SWAPBACKED) != 0;
        uint64_t nfreed;
        shrink_ret r = shrink_page(k, pfn, &nfreed);
        if (r == SHRINK_RECLAIMED) {
            got += nfreed;
            *(anon ? &k->st.pgsteal_anon : &k->st.pgsteal_file) += nfreed;
            for (uint64_t i = 0; i < nfreed; i++)
                report_reclaim(k, pfn + i, anon);
        } else if (r == SHRINK_KEEP) {
            k->st.pgrotated++;
            lru_put(k, pfn, true);
        }
    }
    vmsi_tlb_defer_flush(k, reclaim_core(k)); /* try_to_unmap_flush */
    *(k->in_kswapd ? &k->st.pgscan_kswapd : &k->st.pgscan_direct) += scanned;
    *(k->in_kswapd ? &k->st.pgsteal_kswapd : &k->st.pgsteal_direct) += got;
    k->in_reclaim = false;
    return got + split_freed;
}

void vmsi_reclaim_before_alloc(vms_kernel *k)
{
    if (!k->pol || k->in_reclaim)
        return;
    if (vms_frames_nfree(k->fr) <= k->wmark_min && can_reclaim(k)) {
        k->st.allocstall++;
        shrink(k, SWAP_CLUSTER_MAX, 2 * SWAP_CLUSTER_MAX);
    }
}

bool vmsi_direct_reclaim(vms_kernel *k, unsigned order)
{
    if (!k->pol || k->in_reclaim || !can_reclaim(k))
        return false;
    k->st.allocstall++;
    uint64_t want = UINT64_C(1) << order;
    want = want > SWAP_CLUSTER_MAX ? want : SWAP_CLUSTER_MAX;
    /* Every tracked page may be scanned once (twice for the referenced-bit policies,
     * whose first look may only clear A bits). */
    uint64_t budget = 2 * (uint64_t)k->pol->count(k->pol_state) + 1;
    return shrink(k, want, budget) > 0;
}

void vmsi_kswapd(vms_kernel *k)
{
    uint64_t nfree = k->pol ? vms_frames_nfree(k->fr) : UINT64_MAX;
    if (nfree >= k->wmark_low || k->in_reclaim || !can_reclaim(k))
        return;
    k->st.kswapd_runs++;
    k->in_kswapd = true;
    uint64_t want = k->wmark_high - nfree;
    shrink(k, want, 4 * want + 2 * SWAP_CLUSTER_MAX);
    k->in_kswapd = false;
}

void vms_kernel_reclaim(vms_kernel *k, uint64_t npages, uint64_t *reclaimed)
{
    uint64_t got = 0;
    if (k->pol && npages) {
        unsigned saved = k->cur_core;
        k->cur_core = 0;
        got = shrink(k, npages, 2 * (uint64_t)k->pol->count(k->pol_state) + 1);
        k->cur_core = saved;
    }
    if (reclaimed)
        *reclaimed = got;
}

/* ---- the OOM killer ------------------------------------------------------------------ */

uint64_t vmsi_oom_badness(const vmsi_proc *p)
{
    const vmsi_mm *mm = p->mm;
    if (!mm)
        return 0;
    return mm->rss_anon + mm->rss_file + mm->rss_shmem + mm->swapents + mm->nr_ptes;
}

vmsi_proc *vmsi_oom_kill(vms_kernel *k, vmsi_proc *current)
{
    vmsi_proc *victim = current;
    uint64_t best = vmsi_oom_badness(current);
    for (unsigned i = 0; i < k->nprocs; i++) {
        vmsi_proc *p = k->procs[i];
        uint64_t pts = vmsi_oom_badness(p);
        if (p->state == VMS_TASK_RUNNING && pts && pts >= best &&
            (pts > best || p->pid > victim->pid)) {
            victim = p;
            best = pts;
        }
    }
    const vmsi_mm *mm = victim->mm;
    uint64_t vm = 0;
    for (size_t i = 0; mm && i < mm->nvma; i++)
        vm += mm->vma[i].end - mm->vma[i].start;
    vmsi_log(k, VMS_LOG_ERR,
             "Out of memory: Killed process %d (%s) total-vm:%llukB, anon-rss:%llukB, "
             "file-rss:%llukB, shmem-rss:%llukB, UID:0 pgtables:%llukB oom_score_adj:0",
             victim->pid, victim->name, (unsigned long long)(vm >> 10),
             (unsigned long long)(mm ? mm->rss_anon * 4 : 0),
             (unsigned long long)(mm ? mm->rss_file * 4 : 0),
             (unsigned long long)(mm ? mm->rss_shmem * 4 : 0),
             (unsigned long long)(mm ? mm->nr_ptes * 4 : 0));
    k->st.oom_kill++;
    if (vmsi_tap_on(vmsi_machine_tap(k->m))) {
        vms_event ev = {.type = VMS_EV_OOM_KILL, .oom_kill = {victim->pid}};
        vmsi_tap_emit_kernel(vmsi_machine_tap(k->m), &ev);
    }
    /* Killing the victim frees nothing while a vfork parent or child still uses its mm:
     * kill them too (Linux oom_kill_process: "processes sharing victim->mm"). When one
     * of them is current, its access sees it dead on the retry. */
    for (unsigned i = 0; mm && i < k->nprocs; i++) {
        vmsi_proc *p = k->procs[i];
        if (p != victim && p != current && p->mm == mm)
            vmsi_proc_kill(k, p, VMS_SIGKILL);
    }
    if (victim != current) {
        if (current->mm == mm)
            vmsi_proc_kill(k, current, VMS_SIGKILL);
        vmsi_proc_kill(k, victim, VMS_SIGKILL);
    }
    return victim;
}

/* ---- public ---------------------------------------------------------------------------- */

vms_status vms_kernel_set_next_use(vms_kernel *k, vms_next_use_fn fn, void *ud, vms_err *err)
{
    if (!fn && k->pol && (k->pol->flags & VMS_PPOL_NEEDS_FUTURE))
        return vmsi_err(err, VMS_ERR_UNSUPPORTED,
                        "policy '%s' needs the future: its next-use oracle cannot be removed",
                        k->pol->name);
    k->cfg.next_use = fn;
    k->cfg.next_use_ud = fn ? ud : NULL;
    k->pol_host.next_use = fn ? host_next_use : NULL;
    return VMS_OK;
}

const char *vms_kernel_policy_name(const vms_kernel *k)
{
    return k->policy_name;
}

void vms_kernel_watermarks(const vms_kernel *k, uint64_t *min, uint64_t *low, uint64_t *high)
{
    *min = k->wmark_min;
    *low = k->wmark_low;
    *high = k->wmark_high;
}
