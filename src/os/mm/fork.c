/*
 * fork.c — copy-on-write duplication of an address space (Linux kernel/fork.c dup_mmap
 * and mm/memory.c copy_page_range).
 *
 * The child gets a copy of every VMA (holding its own object references; mlock is not
 * inherited, as POSIX says) and of every leaf of the parent's page tables:
 *   - private mappings: the entry is write-protected in BOTH parent and child, and the
 *     frame is shared (one more reference, mapcount and rmap entry); the first write by
 *     either side takes a COW fault that copies just that page (fault.c do_wp_page) —
 *     or reuses it when the other side already copied and this PTE holds the only
 *     reference;
 *   - shared mappings (file, shmem): the entry is copied as is: both keep writing the
 *     same frame;
 *   - the zero page is copied as is (never counted);
 *   - a private anonymous page pinned for DMA is copied for the child at once (see
 *     copy_pinned).
 * The caller flushes the parent's TLBs afterwards (its entries may still allow writes).
 * On failure the half-built child is destroyed; the parent keeps some pages
 * write-protected, which only costs a reuse fault later (Linux behaves the same).
 */
#include "os/os_impl.h"
#include "os/mm/mm_impl.h"
#include "os/reclaim/reclaim_impl.h"

typedef struct dup_ctx {
    vmsi_mm *child;
    const vmsi_vma *vma;
    vms_status st;
} dup_ctx;

/*
 * A private anonymous page pinned for DMA is not shared copy-on-write: the child gets a
 * copy now and the parent keeps its writable PTE, so the device keeps writing the page
 * the parent sees (Linux copy_present_page / page_needs_cow_for_dma).
 */
static void copy_pinned(dup_ctx *c, uint64_t va, uint64_t pte, vms_pgsize size, uint64_t pfn,
                        unsigned order)
{
    vms_kernel *k = c->child->k;
    uint64_t cptep, npfn;
    c->st = vmsi_pte_slot(c->child, va, size, true, &cptep, NULL);
    if (c->st == VMS_OK)
        c->st = vmsi_alloc_frames(k, order, VMS_FRAME_ANON | VMS_FRAME_SWAPBACKED, &npfn, NULL);
    if (c->st != VMS_OK)
        return;
    for (uint64_t i = 0; i < (UINT64_C(1) << order) && c->st == VMS_OK; i++)
        c->st = vmsi_ram_copy_frame(k, npfn + i, pfn + i);
    if (c->st == VMS_OK)
        c->st = vmsi_map_page(c->child, va, cptep, npfn, vmsi_pte_set_pfn(k, pte, npfn));
    vms_frames_put(k->fr, npfn, NULL); /* the mapping holds its own reference */
    if (c->st == VMS_OK)
        vmsi_charge(k, 0, (uint64_t)k->cfg.cost.copy_page << order);
}

static void copy_one(vmsi_mm *mm, uint64_t va, uint64_t ptep, uint64_t pte, vms_pgsize size,
                     void *ud)
{
    dup_ctx *c = ud;
    if (c->st != VMS_OK)
        return;
    if (!vmsi_pte_trusted(mm, va, pte, size)) {
        vmsi_panic(mm->k, "Bad page map: pte %llx at va %llx (the kernel did not write it)",
                   (unsigned long long)pte, (unsigned long long)va);
        c->st = VMS_ERR_PANIC;
        return;
    }
    uint64_t cptep;
    if (vmsi_is_swap_pte(mm->k, pte)) { /* swap_duplicate: the child names the same slot */
        c->st = vmsi_pte_slot(c->child, va, size, true, &cptep, NULL);
        if (c->st != VMS_OK)
            return;
        vmsi_swap_dup(mm->k, vmsi_swp_offset(mm->k, pte));
        vmsi_pte_set(c->child, cptep, pte);
        c->child->swapents++;
        return;
    }
    uint64_t pfn = vmsi_pte_head_pfn(mm->k, pte, size);
    /* The page a PTE of a PTE-mapped THP's subpage belongs to (holds and pins are its). */
    uint64_t head = vmsi_is_zero_pfn(mm->k, pfn) ? pfn : vmsi_folio_head(mm->k, pfn);
    if (!(c->vma->flags & VMSI_VM_SHARED) && vmsi_pte_present(mm->k, pte)) {
        vms_frame *f = vmsi_is_zero_pfn(mm->k, pfn) ? NULL : vms_frames_meta(mm->k->fr, head);
        if (f && f->pincount && (f->flags & VMS_FRAME_ANON)) {
            copy_pinned(c, va, pte, size, pfn, f->order); /* pinned: never reclaimed */
            return;
        }
    }
    vms_frames_get(mm->k->fr, head); /* held: the child's tables may need reclaim */
    if (!(c->vma->flags & VMSI_VM_SHARED) && vmsi_pte_write(mm->k, pte)) {
        pte = vmsi_pte_wrprotect(mm->k, pte);
        vmsi_pte_set(mm, ptep, pte);
    }
    c->st = vmsi_pte_slot(c->child, va, size, true, &cptep, NULL);
    if (c->st == VMS_OK)
        c->st = vmsi_map_page_size(c->child, va, cptep, pfn, vmsi_pte_mkold(mm->k, pte), size);
    vmsi_page_put(mm->k, head);
}

vms_status vmsi_dup_mm(vms_kernel *k, vmsi_mm *old, vmsi_mm **out, vms_err *err)
{
    vmsi_mm *mm;
    vms_status st = vmsi_mm_create(k, &mm, err);
    if (st != VMS_OK)
        return st;
    mm->mmap_base = old->mmap_base;
    mm->start_brk = old->start_brk;
    mm->brk = old->brk;
    mm->stack_top = old->stack_top;
    mm->pkey_map = old->pkey_map; /* arch_dup_pkeys */
    for (size_t i = 0; i < old->nvma && st == VMS_OK; i++) {
        vmsi_vma v = old->vma[i];
        v.flags &= ~(unsigned)VMSI_VM_LOCKED;
        if (v.flags & (VMSI_VM_HUGE2M | VMSI_VM_HUGE1G))
            v.flags |= VMSI_VM_NORESERVE; /* the parent owns the reservations (hugetlb.c) */
        st = vmsi_vma_insert(mm, &v, err);
        if (st == VMS_OK && v.file)
            vmsi_file_get(v.file);
    }
    for (size_t i = 0; i < old->nvma && st == VMS_OK; i++) {
        dup_ctx c = {mm, &old->vma[i], VMS_OK};
        vmsi_pte_range(old, old->vma[i].start, old->vma[i].end, copy_one, &c);
        st = c.st;
        if (st == VMS_ERR_PANIC)
            vmsi_panic_status(k, err);
        else if (st != VMS_OK)
            vmsi_err(err, st, "fork: %s while copying page tables",
                     st == VMS_ERR_NOMEM ? "out of host memory" : "out of frames");
    }
    if (st != VMS_OK) {
        vmsi_mm_destroy(mm);
        return st;
    }
    *out = mm;
    return VMS_OK;
}
