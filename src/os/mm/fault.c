/*
 * fault.c — the page-fault handler, in Linux's grammar (mm/memory.c, arch/x86/mm/fault.c):
 *
 *   handle_mm_fault(addr, error code)
 *     user access to a kernel address, PK, no VMA, bad rights      -> SIGSEGV
 *     address just below a grows-down VMA                           -> expand_stack
 *     explicit huge-page VMA                                        -> hugetlb_fault
 *     handle_pte_fault
 *       not present, anonymous      -> do_anonymous_page (zero page on read, a zeroed
 *                                      frame on write)
 *       not present, file/shmem     -> do_read_fault (with fault-around) /
 *                                      do_cow_fault (private write) / do_shared_fault
 *       swap entry                  -> do_swap_page (read back from swap, or take the
 *                                      page from the swap cache)
 *       present, write to read-only -> do_wp_page (COW: copy, or reuse the sole
 *                                      reference) / wp_page_shared (mark dirty)
 *       present, allowed            -> spurious (a stale TLB entry; the #PF dropped it)
 *
 * Each fault charges cost.fault_entry, plus zero-fill, copy and file-read costs for the
 * work it does, to the faulting task's core. A fault returns VMSI_FAULT_DONE when the
 * access should be retried; a fatal outcome is data for the access loop (proc.c).
 *
 * Fault-around and readahead (Linux do_fault_around / filemap_map_pages, and a fixed
 * readahead window in place of Linux's adaptive one): the window is the
 * fault_around_pages-aligned block of virtual pages around the faulting address,
 * clipped to the VMA, to the 2 MiB page table and to the end of the file. A read fault
 * whose page is not cached reads that page and every uncached page of the window from
 * the host file (one major fault); then every cached page of the window whose PTE is
 * empty is mapped read-only. So a first read of a cold 16-page file mapping maps all 16
 * pages with one fault. Write faults do no fault-around, as in Linux.
 *
 * Frames and reclaim: any allocation may reclaim (kernel.c vmsi_alloc_frames), evicting
 * frames that nothing but their mappings and caches hold. A handler that keeps a frame
 * across an allocation (the page it copies from, the cache page it is about to map)
 * holds a reference on it meanwhile, which makes reclaim pass it by.
 */
#include <assert.h>

#include "os/os_impl.h"
#include "os/mm/mm_impl.h"
#include "os/reclaim/reclaim_impl.h"
#include "hw/tap.h"

typedef struct fault_ctx {
    vms_kernel *k;
    vms_task *t;
    vmsi_mm *mm;
    vmsi_vma *vma;
    uint64_t addr; /* faulting address */
    uint64_t va;   /* its page (at the VMA's page size) */
    vms_pgsize size;
    bool write;
    uint64_t ptep, pte; /* the leaf slot and its value */
    vmsi_fault_info *fi;
} fault_ctx;

static vmsi_fault_ret from_status(vms_status st)
{
    if (st == VMS_OK)
        return VMSI_FAULT_DONE;
    if (st == VMS_ERR_NOTFOUND)
        return VMSI_FAULT_OOM;
    if (st == VMS_ERR_NOMEM)
        return VMSI_FAULT_NOMEM;
    return VMSI_FAULT_BUS; /* I/O error, beyond EOF */
}

static uint64_t npages_of(vms_pgsize size)
{
    return vms_pgsize_bytes(size) >> VMS_PAGE_SHIFT;
}

static unsigned order_of(vms_pgsize size)
{
    return 9u * (unsigned)size;
}

/* A new anonymous block for this fault, zeroed (cost charged): from the hugetlb pool
 * for a huge VMA when the pool has pages (`reserved`: the VMA made reservations for its
 * pages, HPAGE_RESV_OWNER), where none free is VMS_ERR_IO (SIGBUS, as Linux's
 * VM_FAULT_SIGBUS). The mm's resv_map says whether this page's reservation is still
 * there: the first fault of a page consumes it and records the page, so a refault after
 * MADV_DONTNEED or a truncate takes an unreserved page (Linux's vma_needs_reservation /
 * vma_commit_reservation for a private mapping: an entry means "consumed"). */
static vms_status alloc_anon_pool(fault_ctx *c, uint64_t *pfn, bool reserved)
{
    vms_status st;
    if (vmsi_hugetlb_pooled(c->k, c->size)) {
        uint64_t key = (c->va & ~(vms_pgsize_bytes(c->size) - 1)) >> 21;
        bool fresh = reserved && !vmsi_radix_get(&c->mm->hresv, key);
        if (fresh && vmsi_radix_set(&c->mm->hresv, c->k->a, key, 1) != VMS_OK)
            return VMS_ERR_NOMEM;
        *pfn = vmsi_hugetlb_alloc(c->k, c->size, fresh);
        st = *pfn ? VMS_OK : VMS_ERR_IO;
        if (!*pfn && fresh) /* vma_end_reservation: not consumed after all */
            vmsi_radix_set(&c->mm->hresv, c->k->a, key, 0);
        if (!*pfn)
            c->k->st.hugetlb_sigbus++;
    } else {
        st = vmsi_alloc_frames(c->k, order_of(c->size), VMS_FRAME_ANON | VMS_FRAME_SWAPBACKED, pfn,
                               NULL);
    }
    if (st == VMS_OK)
        vmsi_charge(c->k, c->t->core, (uint64_t)c->k->cfg.cost.zero_page * npages_of(c->size));
    return st;
}

static vms_status alloc_anon(fault_ctx *c, uint64_t *pfn)
{
    return alloc_anon_pool(c, pfn, false);
}

/* Map a block this fault allocated (its allocation reference is then dropped). */
static vmsi_fault_ret map_new(fault_ctx *c, uint64_t pfn, uint64_t pte)
{
    vms_status st = vmsi_map_page(c->mm, c->va, c->ptep, pfn, pte);
    vmsi_page_put(c->k, pfn);
    return from_status(st);
}

/* The leaf value mapping pfn with the VMA's rights (write only when `writable`). */
static uint64_t mk_pte(const fault_ctx *c, uint64_t pfn, bool writable)
{
    uint64_t pte = vmsi_vma_mk_pte(c->k, c->vma, pfn, writable);
    return writable && c->write ? vmsi_pte_mkdirty(c->k, pte) : pte;
}

/* do_anonymous_page: the shared zero page for a read, a zeroed frame for a write. */
static vmsi_fault_ret do_anonymous_page(fault_ctx *c)
{
    if (!c->write && c->k->cfg.zero_page && c->size == VMS_PG_4K) {
        vmsi_pte_set(c->mm, c->ptep, mk_pte(c, c->k->zero_pfn, false));
        c->k->st.zero_page++;
        return VMSI_FAULT_DONE;
    }
    uint64_t pfn;
    vms_status st = alloc_anon_pool(c, &pfn, !(c->vma->flags & VMSI_VM_NORESERVE));
    if (st != VMS_OK)
        return from_status(st);
    c->k->st.anon_alloc++;
    if (c->size != VMS_PG_4K)
        c->k->st.thp_fault_alloc++;
    return map_new(c, pfn, mk_pte(c, pfn, true));
}

/* Whether only mm maps the THP f heads, by PTEs (nothing else holds it): its subpages
 * are exclusively ours (Linux's PageAnonExclusive; see docs/HUGEPAGES.md). */
static bool thp_exclusive(vmsi_mm *mm, const vms_frame *f)
{
    if (f->refcount != f->mapcount)
        return false;
    for (uint32_t i = 0; i < vmsi_rmap_count(f); i++)
        if (vmsi_rmap_get(f, i).mm != mm)
            return false;
    return true;
}

/*
 * do_wp_page: a write to a present, read-only page of a private writable VMA. Reuse the
 * frame when it is anonymous and this PTE holds its only reference besides DMA pins
 * (wp_page_reuse; Linux's PageAnonExclusive),
 * otherwise copy it — or zero-fill when it is the zero page (wp_page_copy) — and
 * shoot down the old translation everywhere.
 */
static vmsi_fault_ret do_wp_page(fault_ctx *c)
{
    vms_kernel *k = c->k;
    uint64_t old = vmsi_pte_pfn(k, c->pte) & ~(npages_of(c->size) - 1);
    /* A subpage of a PTE-mapped THP: the page's head holds its counts. */
    uint64_t head = vmsi_is_zero_pfn(k, old) ? old : vmsi_folio_head(k, old);
    vms_frame *f = vmsi_is_zero_pfn(k, old) ? NULL : vms_frames_meta(k->fr, head);
    k->st.cow++;
    /* Pins (DMA) hold references but never share the page: a pinned exclusive page is
     * reused, or the device would keep writing a page the process no longer sees. */
    uint32_t pool = f && (f->flags & VMSI_FRAME_HUGETLB) ? 1u : 0u; /* the pool's reference */
    if (f && (f->flags & VMS_FRAME_ANON) &&
        ((f->flags & VMSI_FRAME_THP) ? thp_exclusive(c->mm, f)
                                     : f->refcount - f->pincount - pool == 1)) {
        vmsi_pte_set(c->mm, c->ptep, vmsi_pte_mkdirty(k, vmsi_pte_mkwrite(k, c->pte)));
        k->st.cow_reuse++;
        return VMSI_FAULT_DONE;
    }
    uint64_t pfn;
    if (f)
        vms_frames_get(k->fr, head); /* held across the allocation (reclaim skips it) */
    /* A private copy of a hugetlbfs file's page is the first page of this VMA's own there:
     * the VMA that made the mapping pays with its reservation (hugetlb_wp). */
    const vmsi_rmap *rec = pool ? vmsi_rmap_of(k, old) : NULL;
    vms_status st =
        alloc_anon_pool(c, &pfn, rec && rec->file && !(c->vma->flags & VMSI_VM_NORESERVE));
    if (st == VMS_OK && f) {
        for (uint64_t i = 0; i < npages_of(c->size) && st == VMS_OK; i++)
            st = vmsi_ram_copy_frame(k, pfn + i, old + i);
        if (st != VMS_OK) { /* the host could not store the copy */
            vms_frames_put(k->fr, pfn, NULL);
            st = VMS_ERR_NOMEM;
        } else {
            vmsi_charge(k, c->t->core, (uint64_t)k->cfg.cost.copy_page * npages_of(c->size));
        }
    }
    vmsi_fault_ret r = st == VMS_OK ? map_new(c, pfn, mk_pte(c, pfn, true)) : from_status(st);
    if (r == VMSI_FAULT_DONE) {
        vmsi_page_unref(c->mm, c->va, c->pte, c->size);
        vmsi_flush_tlb_range(k, c->mm, c->t->core, c->va, c->va + vms_pgsize_bytes(c->size));
        k->st.cow_copy++;
    }
    if (f)
        vmsi_page_put(k, head);
    return r;
}

/* wp_page_shared: the first write to a shared page mapped read-only: make it writable
 * and mark the page dirty for writeback. */
static vmsi_fault_ret wp_page_shared(fault_ctx *c)
{
    uint64_t pfn = vmsi_pte_pfn(c->k, c->pte);
    vms_frames_set_flags(c->k->fr, pfn, VMS_FRAME_DIRTY, 0);
    vmsi_pte_set(c->mm, c->ptep, vmsi_pte_mkdirty(c->k, vmsi_pte_mkwrite(c->k, c->pte)));
    return VMSI_FAULT_DONE;
}

/* Object page index of va in the VMA. */
static uint64_t vma_index(const vmsi_vma *v, uint64_t va)
{
    return v->pgoff + ((va - v->start) >> VMS_PAGE_SHIFT);
}

/* The cache page for the faulting address, reading [ra_start, ra_end) too when absent.
 * The page comes with a reference the caller drops (vmsi_page_put). */
static vms_status get_cache_page(fault_ctx *c, uint64_t ra_start, uint64_t ra_end, uint64_t *pfn)
{
    bool major = false;
    vms_status st = vmsi_filemap_get(c->k, c->vma->file, vma_index(c->vma, c->va), ra_start, ra_end,
                                     pfn, &major, c->t->core, NULL);
    c->fi->major |= major;
    return st;
}

/* Map the cached pages of [from, to) whose slot is empty, read-only. Returns how many. */
static uint64_t map_pages(fault_ctx *c, uint64_t from, uint64_t to)
{
    uint64_t n = 0;
    for (uint64_t va = from; va < to; va += VMS_PAGE_SIZE) {
        uint64_t ptep = 0; /* the slot first: creating a table may reclaim cache pages */
        if (vmsi_pte_slot(c->mm, va, VMS_PG_4K, true, &ptep, NULL) != VMS_OK)
            continue;
        uint64_t pfn = vmsi_filemap_peek(c->vma->file, vma_index(c->vma, va));
        if (!pfn)
            continue;
        if (vmsi_pte_get(c->mm, ptep))
            continue;
        uint64_t pte = vmsi_vma_mk_pte(c->k, c->vma, pfn, false);
        if (vmsi_map_page(c->mm, va, ptep, pfn, pte) == VMS_OK)
            n++;
    }
    return n;
}

/* do_read_fault with do_fault_around (see the top of this file). */
static vmsi_fault_ret do_read_fault(fault_ctx *c)
{
    vms_kernel *k = c->k;
    const vmsi_vma *v = c->vma;
    uint64_t win = (uint64_t)k->cfg.fault_around_pages << VMS_PAGE_SHIFT;
    uint64_t pmd = vms_pgsize_bytes(VMS_PG_2M);
    uint64_t from = c->va & ~(win - 1), to = from + win;
    from = from > v->start ? from : v->start;
    from = from > (c->va & ~(pmd - 1)) ? from : (c->va & ~(pmd - 1));
    to = to < v->end ? to : v->end;
    to = to < (c->va & ~(pmd - 1)) + pmd ? to : (c->va & ~(pmd - 1)) + pmd;
    uint64_t eof = v->file->npages; /* clip to the file */
    uint64_t last = vma_index(v, to - VMS_PAGE_SIZE);
    if (last >= eof)
        to -= (last + 1 - eof) << VMS_PAGE_SHIFT;
    uint64_t pfn;
    vms_status st = get_cache_page(c, vma_index(v, from), vma_index(v, to), &pfn);
    if (st != VMS_OK)
        return from_status(st);
    uint64_t n = map_pages(c, from, to);
    vmsi_fault_ret r = VMSI_FAULT_DONE;
    if (!vmsi_pte_get(c->mm, c->ptep)) /* the faulting page itself could not be mapped */
        r = from_status(vmsi_map_page(c->mm, c->va, c->ptep, pfn, mk_pte(c, pfn, false)));
    else
        k->st.fault_around += n ? n - 1 : 0;
    vmsi_page_put(k, pfn);
    return r;
}

/* do_cow_fault: a write to a private file/shmem mapping: copy the cache page into a new
 * anonymous frame. */
static vmsi_fault_ret do_cow_fault(fault_ctx *c)
{
    uint64_t src, pfn;
    vms_status st = get_cache_page(c, 0, 0, &src);
    if (st != VMS_OK)
        return from_status(st);
    st = alloc_anon(c, &pfn);
    if (st == VMS_OK && vmsi_ram_copy_frame(c->k, pfn, src) != VMS_OK) {
        vms_frames_put(c->k->fr, pfn, NULL);
        st = VMS_ERR_NOMEM;
    }
    vmsi_page_put(c->k, src);
    if (st != VMS_OK)
        return from_status(st);
    vmsi_charge(c->k, c->t->core, c->k->cfg.cost.copy_page);
    /* Not a COW fault in the stats: the page was not present, so the error code had no P
     * bit (Linux counts it nowhere as COW either); cow counts write-protect faults. */
    c->k->st.private_copy++;
    return map_new(c, pfn, mk_pte(c, pfn, true));
}

/* do_shared_fault: a write to a shared mapping: map the cache page writable, dirty. */
static vmsi_fault_ret do_shared_fault(fault_ctx *c)
{
    uint64_t pfn;
    vms_status st = get_cache_page(c, 0, 0, &pfn);
    if (st != VMS_OK)
        return from_status(st);
    vms_frames_set_flags(c->k->fr, pfn, VMS_FRAME_DIRTY, 0);
    st = vmsi_map_page(c->mm, c->va, c->ptep, pfn, mk_pte(c, pfn, true));
    vmsi_page_put(c->k, pfn);
    return from_status(st);
}

/*
 * hugetlb_no_page for a VMA of a hugetlbfs file (hugetlb.c keeps the file's pages and
 * reservations). Beyond the file's size: SIGBUS. A shared mapping maps the file's page,
 * allocating it when absent (with the index's reservation if it has one, else an
 * unreserved or surplus page, else SIGBUS) and adding it to the file. A private mapping
 * maps a cached page read-only, copying it at once for a write (hugetlb_wp), and takes a
 * page of its own where the file has none (never added to the file).
 */
static vmsi_fault_ret hugetlb_file_fault(fault_ctx *c)
{
    vms_kernel *k = c->k;
    vms_file *f = c->vma->file;
    uint64_t off = (c->vma->pgoff << VMS_PAGE_SHIFT) + (c->va - c->vma->start);
    uint64_t idx = off / vms_pgsize_bytes(c->size);
    bool shared = c->vma->flags & VMSI_VM_SHARED;
    if (off >= f->size)
        return VMSI_FAULT_BUS;
    uint64_t pfn = vmsi_hugetlbfs_find(f, idx);
    if (!pfn && !shared)
        return do_anonymous_page(c);
    if (!pfn) {
        pfn = vmsi_hugetlb_alloc(k, c->size, vmsi_hugetlbfs_reserved(f, idx));
        if (!pfn) {
            k->st.hugetlb_sigbus++;
            return VMSI_FAULT_BUS;
        }
        vmsi_charge(k, c->t->core, (uint64_t)k->cfg.cost.zero_page * npages_of(c->size));
        if (vmsi_hugetlbfs_add(k, f, idx, pfn) != VMS_OK) {
            vmsi_page_put(k, pfn);
            return VMSI_FAULT_NOMEM;
        }
        k->st.thp_fault_alloc++; /* "huge page" in the fault's breakdown, as MAP_HUGETLB's */
        return map_new(c, pfn, mk_pte(c, pfn, true));
    }
    c->pte = mk_pte(c, pfn, shared);
    vms_status st = vmsi_map_page(c->mm, c->va, c->ptep, pfn, c->pte);
    if (st != VMS_OK || shared || !c->write)
        return from_status(st);
    return do_wp_page(c); /* a private write: the copy, in the same fault */
}

static vmsi_fault_ret do_fault(fault_ctx *c)
{
    if (vma_index(c->vma, c->va) >= c->vma->file->npages)
        return VMSI_FAULT_BUS; /* beyond EOF: SIGBUS, as Linux */
    if (!c->write)
        return do_read_fault(c);
    if (!(c->vma->flags & VMSI_VM_SHARED))
        return do_cow_fault(c);
    return do_shared_fault(c);
}

/*
 * do_swap_page: the PTE holds a swap entry. The page comes from the swap cache when
 * another PTE already read it back (no I/O: a minor fault), else from the device into a
 * new frame that enters the swap cache (a major fault). It is mapped writable only when
 * this PTE was the slot's last holder and no other PTE maps the frame (the page is
 * exclusively ours); otherwise read-only, so a write takes a COW fault, as after fork.
 * A read error kills every process holding the slot with SIGBUS (this one by the
 * return value, the others at once).
 */
static vmsi_fault_ret do_swap_page(fault_ctx *c)
{
    vms_kernel *k = c->k;
    uint64_t slot = vmsi_swp_offset(k, c->pte), pfn = k->swap.cache[slot];
    if (k->swap.bad[slot])
        return VMSI_FAULT_BUS;
    if (pfn) {
        vms_frames_get(k->fr, pfn);
        k->st.swapcache_hits++;
    } else {
        vms_status st = vmsi_alloc_frames(k, 0, VMS_FRAME_ANON | VMS_FRAME_SWAPBACKED, &pfn, NULL);
        if (st != VMS_OK)
            return from_status(st);
        st = vmsi_swap_readpage(k, slot, pfn, c->t->core);
        vmsi_rmap *r = st == VMS_OK ? vmsi_zalloc(k->a, sizeof *r) : NULL;
        if (!r) {
            vms_frames_put(k->fr, pfn, NULL);
            if (st != VMS_ERR_IO)
                return VMSI_FAULT_NOMEM;
            k->st.swap_read_errors++;
            vmsi_log(k, VMS_LOG_ERR, "Read-error on swap-device (0:%llu)",
                     (unsigned long long)slot);
            vmsi_swap_kill_owners(k, slot, c->t->proc);
            return VMSI_FAULT_BUS;
        }
        vms_frames_meta(k->fr, pfn)->owner = (uintptr_t)r;
        vmsi_swapcache_add(k, slot, pfn); /* the cache takes the allocation's reference */
        vms_frames_get(k->fr, pfn);       /* ours, until mapped */
        k->st.pswpin++;
        k->st.refault_anon++;
        /* A page of a huge page swapped out whole comes back as 4 KiB (Linux 6.x: no PMD
         * swap entry, and do_swap_page's alloc_swap_folio tries only orders below
         * PMD_ORDER): thp_swpin_fallback counts each such huge page once. */
        k->st.thp_swpin_fallback += vmsi_swap_whole_swapin(k, slot) ? 1 : 0;
        c->fi->major = true;
    }
    bool exclusive = k->swap.count[slot] == 1 && vms_frames_meta(k->fr, pfn)->mapcount == 0;
    vms_status st = vmsi_map_page(c->mm, c->va, c->ptep, pfn, mk_pte(c, pfn, exclusive));
    if (st == VMS_OK) {
        c->mm->swapents--;
        vmsi_swap_free(k, slot); /* at the last holder the page leaves the swap cache */
    }
    vmsi_page_put(k, pfn);
    return from_status(st);
}

/* handle_pte_fault (and hugetlb_fault, which differs only in the page size). */
static vmsi_fault_ret handle_pte_fault(fault_ctx *c)
{
    vms_status st = vmsi_pte_slot(c->mm, c->va, c->size, true, &c->ptep, NULL);
    if (st != VMS_OK)
        return from_status(st);
    c->pte = vmsi_pte_get(c->mm, c->ptep);
    if (!vmsi_pte_trusted(c->mm, c->va, c->pte, c->size)) {
        vmsi_panic(c->k, "Bad page map: pte %llx at va %llx (the kernel did not write it)",
                   (unsigned long long)c->pte, (unsigned long long)c->va);
        return VMSI_FAULT_PANIC;
    }
    if (!vmsi_pte_present(c->k, c->pte)) {
        if (vmsi_is_swap_pte(c->k, c->pte))
            return do_swap_page(c);
        if (vmsi_pte_protnone(c->k, c->pte)) {
            assert(false && "PROT_NONE pte in an accessible VMA");
            return VMSI_FAULT_SEGV;
        }
        if (c->vma->flags & VMSI_VM_ANON)
            return do_anonymous_page(c);
        if (c->size != VMS_PG_4K) /* a huge VMA with an object: a hugetlbfs file */
            return hugetlb_file_fault(c);
        return do_fault(c);
    }
    if (c->write && !vmsi_pte_write(c->k, c->pte)) {
        if (c->vma->flags & VMSI_VM_SHARED)
            return wp_page_shared(c);
        return do_wp_page(c);
    }
    c->k->st.spurious++; /* the #PF already dropped the stale TLB entry */
    return VMSI_FAULT_DONE;
}

/* Linux arch/x86/mm/fault.c access_error(). */
static bool access_error(uint32_t ec, const vmsi_vma *v)
{
    if (ec & VMS_FAULTF_WRITE)
        return !(v->prot & VMS_PROT_WRITE);
    if (ec & VMS_FAULTF_EXEC)
        return !(v->prot & VMS_PROT_EXEC);
    if (ec & VMS_FAULTF_PROT)
        return true; /* read of a present page: a protection fault */
    return !(v->prot & (VMS_PROT_READ | VMS_PROT_WRITE | VMS_PROT_EXEC));
}

/* expand_stack: grow the grows-down VMA v down to addr's page, within RLIMIT_STACK and
 * keeping stack_guard_gap from the VMA below. */
static bool expand_stack(vms_kernel *k, vmsi_mm *mm, vmsi_vma *v, uint64_t addr)
{
    uint64_t start = addr & ~VMS_PAGE_MASK;
    if (v->end - start > k->cfg.stack_limit)
        return false;
    size_t i = (size_t)(v - mm->vma);
    if (i > 0 && mm->vma[i - 1].end + VMSI_STACK_GUARD_GAP > start)
        return false;
    v->pgoff -= (v->start - start) >> VMS_PAGE_SHIFT;
    v->start = start;
    k->st.stack_expand++;
    return true;
}

/*
 * The auto-anonymous layout (vms_proc_set_auto_anon): addr lies in no VMA, so create an
 * anonymous private rwx VMA over the mm->auto_anon-aligned block holding addr, clipped
 * to the gap between the neighbouring VMAs (and TASK_SIZE). Returns it, or NULL when the
 * VMA array cannot grow (the fault then ends as it would have: SIGSEGV).
 */
static vmsi_vma *auto_anon_area(vms_kernel *k, vmsi_mm *mm, uint64_t addr)
{
    uint64_t start = addr & ~(mm->auto_anon - 1), end = start + mm->auto_anon;
    vmsi_vma *next = vmsi_vma_find(mm, addr); /* first VMA above addr, or NULL */
    size_t i = next ? (size_t)(next - mm->vma) : mm->nvma;
    if (i > 0 && mm->vma[i - 1].end > start)
        start = mm->vma[i - 1].end;
    if (next && next->start < end)
        end = next->start;
    if (end > vmsi_task_size(k) || end < start)
        end = vmsi_task_size(k);
    vmsi_vma v = {start,        end,  VMS_PROT_READ | VMS_PROT_WRITE | VMS_PROT_EXEC,
                  VMSI_VM_ANON, NULL, 0};
    if (vmsi_vma_insert(mm, &v, NULL) != VMS_OK)
        return NULL;
    k->st.auto_anon_vmas++;
    vmsi_vma_merge_around(mm, start, end);
    return vmsi_vma_lookup(mm, addr);
}

/* Find the VMA for addr (growing a stack, or creating one in the auto-anonymous
 * layout) and check rights; NULL means SIGSEGV. */
static vmsi_vma *good_area(vms_kernel *k, vmsi_mm *mm, uint64_t addr, uint32_t ec,
                           vmsi_fault_info *fi)
{
    fi->si_code = VMS_SEGV_MAPERR;
    if (addr >= vmsi_task_size(k))
        return NULL; /* a user access to the kernel half */
    if (ec & VMS_FAULTF_PKEY) {
        fi->si_code = VMS_SEGV_PKUERR;
        return NULL;
    }
    vmsi_vma *v = vmsi_vma_find(mm, addr);
    bool grown =
        v && v->start > addr && (v->flags & VMSI_VM_GROWSDOWN) && expand_stack(k, mm, v, addr);
    if (!grown && (!v || v->start > addr)) {
        if (!mm->auto_anon)
            return NULL;
        if (!(v = auto_anon_area(k, mm, addr)))
            return NULL;
    }
    fi->si_code = VMS_SEGV_ACCERR;
    if (access_error(ec, v))
        return NULL;
    /* arch_vma_access_permitted: the VMA's key against the thread's PKRU, before any
     * page is brought in (data accesses only). */
    unsigned key = vmsi_vma_pkey(v->flags);
    uint32_t pkru = vms_core_regs(vmsi_core(k, k->cur_core))->pkru;
    if (k->pke && key && !(ec & VMS_FAULTF_EXEC) &&
        (vms_pkru_ad(pkru, key) || ((ec & VMS_FAULTF_WRITE) && vms_pkru_wd(pkru, key)))) {
        fi->si_code = VMS_SEGV_PKUERR;
        return NULL;
    }
    return v;
}

static vmsi_fault_ret fault_vma(vms_kernel *k, vms_task *t, vmsi_vma *v, uint64_t addr, bool write,
                                vmsi_fault_info *fi)
{
    fault_ctx c = {k, t, t->proc->mm, v, addr, 0, vmsi_vma_pgsize(v), write, 0, 0, fi};
    if (c.size == VMS_PG_4K) { /* a transparent huge page first (thp.c) */
        bool handled;
        vmsi_fault_ret r = vmsi_thp_fault(k, t, v, addr, write, fi, &handled);
        if (handled)
            return r;
    }
    c.va = addr & ~(vms_pgsize_bytes(c.size) - 1);
    return handle_pte_fault(&c);
}

/*
 * Count a fault by its end, in exactly one category (as Linux's rusage counts min_flt and
 * maj_flt): resolved with I/O (major) or without (minor: stack growth, populate, spurious
 * faults, COW and the zero page included), or ended with VM_FAULT_SIGSEGV / VM_FAULT_SIGBUS
 * (for a kernel access to user memory, EFAULT instead of the signal). pgfault is their
 * sum. A fault that needed the OOM killer is counted when its retry ends; one whose
 * process the killer chose is an OOM kill (oom_kill), and one the host could not serve
 * (NOMEM) stops the run. cow, zero_page, stack_expand, … are breakdowns of these.
 */
/* What the tap is told a fault did is what moved while it ran: the counters, and the
 * swap-backed frames (a new shared-memory page is one, and no counter's). */
typedef struct fault_snap {
    vms_kernel_stats st;
    uint64_t swapbacked;
} fault_snap;

/* Snapshot into *s when the tap is on; returns s, or NULL (nothing to report). */
static const fault_snap *snap_take(vms_kernel *k, fault_snap *s)
{
    if (!vmsi_tap_on(vmsi_machine_tap(k->m)))
        return NULL;
    s->st = k->st;
    s->swapbacked = vms_frames_count(k->fr, VMS_FRAME_SWAPBACKED);
    return s;
}

/* What a fault did, for the tap: the breakdown counters that moved since `b`. */
static uint32_t how_of(const vms_kernel_stats *b, const vms_kernel_stats *a, bool swapbacked)
{
    return (a->zero_page != b->zero_page ? VMS_EV_HOW_ZERO_PAGE : 0u) |
           (a->anon_alloc != b->anon_alloc ? VMS_EV_HOW_ANON : 0u) |
           (a->cow_copy != b->cow_copy ? VMS_EV_HOW_COW_COPY : 0u) |
           (a->cow_reuse != b->cow_reuse ? VMS_EV_HOW_COW_REUSE : 0u) |
           (a->private_copy != b->private_copy ? VMS_EV_HOW_PRIVATE_COPY : 0u) |
           (a->pgpgin != b->pgpgin ? VMS_EV_HOW_FILE : 0u) |
           (a->pswpin != b->pswpin ? VMS_EV_HOW_SWAP_IN : 0u) |
           (a->swapcache_hits != b->swapcache_hits ? VMS_EV_HOW_SWAPCACHE : 0u) |
           (a->spurious != b->spurious ? VMS_EV_HOW_SPURIOUS : 0u) |
           (a->stack_expand != b->stack_expand ? VMS_EV_HOW_STACK : 0u) |
           (a->thp_fault_alloc != b->thp_fault_alloc ? VMS_EV_HOW_THP : 0u) |
           (a->oom_kill != b->oom_kill ? VMS_EV_HOW_OOM : 0u) |
           (swapbacked ? VMS_EV_HOW_SWAPBACKED : 0u);
}

/* Tell the tap how a counted fault at addr (flags ec) of task t ended; `before` is the
 * kernel's counters when it began. */
static void report_fault(vms_kernel *k, const vms_task *t, uint64_t addr, uint32_t ec,
                         vms_ev_fault_result res, const fault_snap *snap)
{
    vms_event ev = {
        .type = VMS_EV_FAULT_RESOLVED,
        .fault_resolved = {
            .pid = t->proc->pid,
            .va = addr,
            .flags = ec,
            .result = res,
            .how = how_of(&snap->st, &k->st,
                          vms_frames_count(k->fr, VMS_FRAME_SWAPBACKED) > snap->swapbacked),
            .fault_around = (unsigned)(k->st.fault_around - snap->st.fault_around)}};
    vmsi_tap_emit(vmsi_machine_tap(k->m), (int)t->core, &ev);
}

/*
 * Count a fault by its end, in exactly one category (as Linux's rusage counts min_flt and
 * maj_flt): resolved with I/O (major) or without (minor: stack growth, populate, spurious
 * faults, COW and the zero page included), or ended with VM_FAULT_SIGSEGV / VM_FAULT_SIGBUS
 * (for a kernel access to user memory, EFAULT instead of the signal). pgfault is their
 * sum. A fault that needed the OOM killer is counted when its retry ends; one whose
 * process the killer chose is an OOM kill (oom_kill), and one the host could not serve
 * (NOMEM) stops the run. cow, zero_page, stack_expand, … are breakdowns of these.
 * before: the counters when the fault began, when the tap is on (else NULL): a counted
 * fault is reported (task t, address addr, flags ec).
 */
static vmsi_fault_ret account(vms_kernel *k, vmsi_fault_ret r, const vmsi_fault_info *fi,
                              const fault_snap *before, const vms_task *t, uint64_t addr,
                              uint32_t ec)
{
    uint64_t *cat = NULL;
    vms_ev_fault_result res = VMS_EV_FAULT_MINOR;
    if (r == VMSI_FAULT_DONE) {
        cat = fi->major ? &k->st.pgmajfault : &k->st.minor;
        res = fi->major ? VMS_EV_FAULT_MAJOR : VMS_EV_FAULT_MINOR;
    } else if (r == VMSI_FAULT_SEGV) {
        cat = &k->st.segv;
        res = VMS_EV_FAULT_SEGV;
    } else if (r == VMSI_FAULT_BUS) {
        cat = &k->st.sigbus;
        res = VMS_EV_FAULT_SIGBUS;
    }
    if (cat) {
        (*cat)++;
        k->st.pgfault++;
        if (before)
            report_fault(k, t, addr, ec, res, before);
    }
    return r;
}

vmsi_fault_ret vmsi_handle_mm_fault(vms_kernel *k, vms_task *t, uint64_t addr, uint32_t ec,
                                    vmsi_fault_info *fi)
{
    k->cur_core = t->core;
    k->cur_proc = t->proc;
    fault_snap snap; /* for the tap: what the fault will move */
    const fault_snap *before = snap_take(k, &snap);
    vmsi_charge(k, t->core, k->cfg.cost.fault_entry);
    vmsi_hash_ret h = k->hash ? vmsi_hash_page(k, t->core, addr, &ec) : VMSI_HASH_FAULT;
    if (h != VMSI_HASH_FAULT) /* hashfill.c: a hash-table miss the radix tables allow */
        return h == VMSI_HASH_FILLED  ? (k->st.hash_faults++, VMSI_FAULT_DONE)
               : h == VMSI_HASH_PANIC ? VMSI_FAULT_PANIC
                                      : account(k, VMSI_FAULT_BUS, fi, before, t, addr, ec);
    if (ec & VMS_FAULTF_RSVD) { /* pgtable_bad(): the kernel never writes a reserved bit,
                                   so something else did (a device with the IOMMU off) */
        vmsi_panic(k,
                   "Bad pagetable: a reserved bit in the entry for va %llx (error code %x; "
                   "the kernel did not write it)",
                   (unsigned long long)addr, (unsigned)ec);
        return account(k, VMSI_FAULT_PANIC, fi, before, t, addr, ec);
    }
    vmsi_vma *v = good_area(k, t->proc->mm, addr, ec, fi);
    if (!v)
        return account(k, VMSI_FAULT_SEGV, fi, before, t, addr, ec);
    vmsi_fault_ret r = fault_vma(k, t, v, addr, (ec & VMS_FAULTF_WRITE) != 0, fi);
    if (k->hash && r == VMSI_FAULT_DONE)
        vmsi_hash_preload(k, t->core, addr, ec); /* update_mmu_cache */
    return account(k, r, fi, before, t, addr, ec);
}

/* populate_vma_page_range: fault in [start, end) of VMAs in the range; a write fault for
 * private writable VMAs (breaking COW), a read otherwise; PROT_NONE VMAs are skipped. */
vmsi_fault_ret vmsi_populate(vms_kernel *k, vms_task *t, uint64_t start, uint64_t end)
{
    vmsi_mm *mm = t->proc->mm;
    k->cur_core = t->core;
    k->cur_proc = t->proc;
    for (uint64_t va = start; va < end;) {
        vmsi_vma *v = vmsi_vma_find(mm, va);
        if (!v || v->start >= end)
            break;
        va = va > v->start ? va : v->start;
        bool write = (v->prot & VMS_PROT_WRITE) && !(v->flags & VMSI_VM_SHARED);
        uint64_t stop = v->end < end ? v->end : end;
        while (va < stop && v->prot != VMS_PROT_NONE) {
            /* Step by the leaf's size: a huge page (hugetlb or transparent) at once. */
            uint64_t ptep = 0;
            vms_pgsize size;
            uint64_t pte = vmsi_leaf_find(mm, va, &ptep, &size);
            /* As GUP's faultin_page loop: fault again while a write still finds the page
             * read-only — a swap-in of a page other PTEs still share maps it read-only,
             * and only the write-protect fault that follows gives this mm its own copy
             * (without it a DMA pin took the swap-cache page the other processes would
             * swap in: found by test_kernel_diff's mixed sequences). */
            for (unsigned tries = 0;
                 tries < 2 && (!vmsi_pte_present(k, pte) || (write && !vmsi_pte_write(k, pte)));
                 tries++) {
                vmsi_fault_info fi = {0, false};
                fault_snap snap; /* for the tap */
                const fault_snap *before = snap_take(k, &snap);
                vmsi_fault_ret r =
                    account(k, fault_vma(k, t, v, va, write, &fi), &fi, before, t, va,
                            write ? VMS_FAULTF_WRITE | VMS_FAULTF_USER : VMS_FAULTF_USER);
                if (r != VMSI_FAULT_DONE)
                    return r;
                v = vmsi_vma_lookup(mm, va); /* the array may not move, but be safe */
                pte = vmsi_leaf_find(mm, va, &ptep, &size);
                if (!vmsi_pte_present(k, pte))
                    size = vmsi_vma_pgsize(v);
            }
            uint64_t step = vms_pgsize_bytes(size);
            va = (va & ~(step - 1)) + step;
        }
        va = stop;
    }
    return VMSI_FAULT_DONE;
}
