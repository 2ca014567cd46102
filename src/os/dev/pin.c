/*
 * pin.c — pinning user pages for DMA (Linux mm/gup.c pin_user_pages): check the VMAs allow the
 * direction, fault the buffer in, pin every 4 KiB page but the zero page, and release the
 * pins.
 * See dma_impl.h for the state and its invariants.
 */
#include <inttypes.h>

#include "os/dev/dma_impl.h"

/* Release the pins of m's first n pages (marking device-written file pages dirty). */
void vmsi_dma_unpin_pages(vms_kernel *k, const dmap *m, uint64_t n, unsigned core)
{
    if (m->kernel)
        return;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t pfn = m->pfns[i];
        if (pfn == k->zero_pfn)
            continue;
        vms_frame *f = vms_frames_meta(k->fr, pfn);
        uint64_t head;
        vms_frames_head(k->fr, pfn, &head, NULL);
        f = vms_frames_meta(k->fr, head);
        if (m->dir != VMS_DMA_TO_DEVICE && (f->flags & VMS_FRAME_FILE))
            vms_frames_set_flags(k->fr, head, VMS_FRAME_DIRTY, 0);
        if (f->refcount == 1) /* the last reference: off the replacement policy first */
            vmsi_lru_del(k, head);
        vms_frames_unpin(k->fr, pfn, NULL);
        k->dma->st.unpins++;
        k->dma->st.pinned_pages--;
    }
    vmsi_dma_charge(k, core, (uint64_t)k->dma->cost.unpin_page * n);
}

/* Check that every page of [va, va+len) is in a VMA allowing dir's accesses. */
vms_status vmsi_dma_check_vmas(vmsi_mm *mm, uint64_t va, uint64_t len, vms_dma_dir dir,
                               vms_err *err)
{
    uint64_t end = va + len;
    for (uint64_t a = va & ~VMS_PAGE_MASK; a < end;) {
        vmsi_vma *v = vmsi_vma_lookup(mm, a);
        if (!v)
            return vmsi_err(err, VMS_ERR_RANGE, "dma map: 0x%" PRIx64 " is not mapped", a);
        bool need_r = dir != VMS_DMA_FROM_DEVICE, need_w = dir != VMS_DMA_TO_DEVICE;
        if ((need_r && !(v->prot & VMS_PROT_READ)) || (need_w && !(v->prot & VMS_PROT_WRITE)))
            return vmsi_err(err, VMS_ERR_RANGE,
                            "dma map: 0x%" PRIx64 " does not allow the device to %s", a,
                            need_w && !(v->prot & VMS_PROT_WRITE) ? "write" : "read");
        a = v->end;
    }
    return VMS_OK;
}

/* The 4 KiB pfn mapping va in mm, or 0 when not present. */
static uint64_t user_pfn(vmsi_mm *mm, uint64_t va)
{
    vmsi_vma *v = vmsi_vma_lookup(mm, va);
    if (!v)
        return 0;
    uint64_t ptep = 0;
    vms_pgsize size;
    uint64_t pte = vmsi_leaf_find(mm, va, &ptep, &size);
    /* A transparent huge page, PMD- or PTE-mapped: pins split it (thp.c). */
    if ((size != vmsi_vma_pgsize(v) || vmsi_pte_mapped(mm->k, pte)) &&
        vmsi_thp_split_page_at(mm, va) != VMS_OK)
        return 0;
    pte = vmsi_leaf_find(mm, va, &ptep, &size);
    uint64_t base = va & ~(vms_pgsize_bytes(size) - 1);
    if (!vmsi_pte_present(mm->k, pte)) /* the CPU's tables: the machine's format */
        return 0;
    return vmsi_pte_pfn(mm->k, pte) + ((va - base) >> VMS_PAGE_SHIFT);
}

/* Fault in and pin every page of m (m->va, m->npages); on failure unpin what was pinned. */
vms_status vmsi_dma_pin_user(vms_kernel *k, vms_task *t, dmap *m, vms_err *err)
{
    uint64_t start = m->va & ~VMS_PAGE_MASK, end = start + (m->npages << VMS_PAGE_SHIFT);
    vmsi_fault_ret r = vmsi_populate(k, t, start, end);
    if (r == VMSI_FAULT_NOMEM)
        return vmsi_err(err, VMS_ERR_NOMEM, "dma map: out of host memory faulting in");
    if (r == VMSI_FAULT_OOM)
        return vmsi_err(err, VMS_ERR_NOTFOUND, "dma map: out of frames faulting in");
    if (r != VMSI_FAULT_DONE)
        return vmsi_err(err, VMS_ERR_RANGE, "dma map: the buffer cannot be faulted in");
    for (uint64_t i = 0; i < m->npages; i++) {
        uint64_t pfn = user_pfn(t->proc->mm, start + (i << VMS_PAGE_SHIFT));
        if (!pfn) {
            vmsi_dma_unpin_pages(k, m, i, t->core);
            return vmsi_err(err, VMS_ERR_RANGE, "dma map: page 0x%" PRIx64 " not present",
                            start + (i << VMS_PAGE_SHIFT));
        }
        m->pfns[i] = pfn;
        if (pfn == k->zero_pfn)
            continue; /* never pinned (Linux's gup skips the shared zero page) */
        vms_frames_pin(k->fr, pfn);
        k->dma->st.pins++;
        k->dma->st.pinned_pages++;
    }
    vmsi_dma_charge(k, t->core, (uint64_t)k->dma->cost.pin_page * m->npages);
    return VMS_OK;
}
