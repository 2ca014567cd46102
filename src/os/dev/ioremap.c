/*
 * ioremap.c — device registers through init_mm's uncached mapping (Linux mm/ioremap.c): one
 * reference-counted page per device window, mapped in the kernel half and synced into every
 * root; the drivers' 32-bit register accesses.
 * See dma_impl.h for the state and its invariants.
 */
#include "os/dev/dma_impl.h"

static uint64_t ioremap_base(const vms_kernel *k)
{
    if (k->fmt->va_bits < 48)
        return VMSI_IOREMAP_SV39;
    return k->levels == 5 ? VMSI_IOREMAP_5L : VMSI_IOREMAP_4L;
}

/* Copy init_mm's top-level entry for kva into every process's root (sync_global_pgds). */
static void sync_pgd(vms_kernel *k, uint64_t kva)
{
    uint64_t e = 0;
    vms_pt_read(&k->init_pt, vms_fmt_entry_pa(k->fmt, k->init_pt.root, kva, k->levels), &e);
    for (unsigned i = 0; i < k->nprocs; i++) {
        vmsi_mm *mm = k->procs[i]->mm;
        if (mm)
            vms_pt_write(&mm->pt, vms_fmt_entry_pa(k->fmt, mm->pt.root, kva, k->levels), e);
    }
}

/* Free the empty tables on kva's path in init_mm, bottom up (what a failed vms_pt_map
 * leaves behind), and resync the top-level entry. Nothing was mapped through them, so
 * no TLB or PWC can hold them. */
static void prune_tables(vms_kernel *k, uint64_t kva)
{
    for (unsigned l = 1; l < k->levels; l++) {
        uint64_t parent = 0, e = 0;
        if (vms_pt_entry_addr(&k->init_pt, kva, l + 1, false, &parent, NULL) != VMS_OK)
            continue; /* no table at this level: look higher */
        vms_pt_read(&k->init_pt, parent, &e);
        if (!vmsi_pte_present(k, e))
            continue;
        if (vmsi_pte_leaf(k, e, l + 1))
            break;
        uint64_t table = vms_fmt_pte_addr(k->fmt, e);
        for (unsigned i = 0; i < vms_fmt_entries(k->fmt); i++) {
            uint64_t x = 0;
            vms_pt_read(&k->init_pt, table + ((uint64_t)i << k->fmt->entry_shift), &x);
            if (x)
                goto done;
        }
        vms_pt_write(&k->init_pt, parent, 0);
        vms_frames_set_flags(k->fr, table >> VMS_PAGE_SHIFT, 0, VMS_FRAME_PAGETABLE);
        vms_frames_put(k->fr, table >> VMS_PAGE_SHIFT, NULL);
    }
done:
    sync_pgd(k, kva);
}

vms_status vmsi_ioremap_page(vms_kernel *k, uint64_t page, vms_err *err)
{
    vmsi_dma *D = k->dma;
    for (unsigned i = 0; i < D->nioremap; i++)
        if (D->ioremap[i].page == page) {
            D->ioremap[i].refs++;
            return VMS_OK;
        }
    if (D->nioremap == VMSI_MAX_IOREMAP)
        return vmsi_err(err, VMS_ERR_NOTFOUND, "ioremap: more than %u device pages",
                        VMSI_MAX_IOREMAP);
    uint64_t kva = ioremap_base(k) + page;
    unsigned prot = VMS_PGPROT_R | VMS_PGPROT_W | VMS_PGPROT_G | VMS_PGPROT_A | VMS_PGPROT_D |
                    VMS_PGPROT_NOCACHE; /* supervisor, no execute, uncached */
    vms_status st = vms_pt_map_prot(&k->init_pt, kva, page, VMS_PG_4K, prot, err);
    if (st != VMS_OK) {
        prune_tables(k, kva);
        return st;
    }
    sync_pgd(k, kva); /* a new top-level kernel entry reaches every existing root */
    st = vmsi_hash_map_kernel(k, kva, err); /* hashed designs: bolted (src/os/mm/hashfill.c) */
    if (st != VMS_OK) {
        vms_pt_unmap(&k->init_pt, kva, true, NULL);
        return st;
    }
    D->ioremap[D->nioremap++] = (ioremap_ref){page, 1};
    return VMS_OK;
}

/*
 * Drop a reference; the last one clears the PTE and frees the tables it leaves empty
 * (Linux keeps them; we give them back so that a detached machine has every frame free
 * again). A freed table may sit in a page-walk cache, so every core then flushes
 * everything, globals included (INVPCID type 2), as flush_tlb_kernel_range would.
 */
void vmsi_iounmap_page(vms_kernel *k, uint64_t page)
{
    vmsi_dma *D = k->dma;
    for (unsigned i = 0; i < D->nioremap; i++) {
        if (D->ioremap[i].page != page || --D->ioremap[i].refs)
            continue;
        uint64_t kva = ioremap_base(k) + page;
        vms_pt_unmap(&k->init_pt, kva, true, NULL);
        sync_pgd(k, kva);
        vmsi_hash_unmap_kernel(k, kva);
        for (unsigned c = 0; c < k->ncores; c++)
            vms_core_mmu_flush_all(vmsi_core(k, c));
        D->ioremap[i] = D->ioremap[--D->nioremap];
        return;
    }
}

/* A 32-bit register access by the driver on core 0, supervisor mode. false on a fault
 * or bus error (the window is mapped, so that is a kernel bug or a missing device). */
static bool reg_access(vms_dma_dev *d, unsigned off, bool write, uint32_t *val)
{
    vms_kernel *k = d->k;
    vms_core *c = vmsi_core(k, 0);
    vms_core_set_user(c, false);
    bool nested = d->in_mmio;
    d->in_mmio = true;
    vms_access_result r = vms_core_access(c, ioremap_base(k) + d->mmio_pa + off,
                                          write ? VMS_ACC_WRITE : VMS_ACC_READ, val, 4);
    d->in_mmio = nested;
    if (write)
        k->dma->st.mmio_writes++;
    else
        k->dma->st.mmio_reads++;
    if (!nested && d->irq_pending) {
        d->irq_pending = false;
        vmsi_dma_handle_irq(d);
    }
    return r.ok;
}

void vmsi_dma_reg_write(vms_dma_dev *d, unsigned off, uint32_t v)
{
    reg_access(d, off, true, &v);
}

uint32_t vmsi_dma_reg_read(vms_dma_dev *d, unsigned off)
{
    uint32_t v = 0;
    return reg_access(d, off, false, &v) ? v : 0;
}
