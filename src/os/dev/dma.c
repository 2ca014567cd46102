/*
 * dma.c — the DMA layer's state and costs, and the IOMMU fault log read back as Linux's DMAR
 * messages (drivers/iommu/intel/dmar.c).
 * See dma_impl.h for the state and its invariants.
 */
#include <inttypes.h>

#include "os/dev/dma_impl.h"

void vms_dma_cost_default(vms_dma_cost *c)
{
    c->pin_page = 100;
    c->unpin_page = 50;
    c->map_page = 30;
    c->unmap_page = 30;
    c->iotlb_inv = 500;
}

/* The kernel's DMA state, created on first use; NULL on host failure. */
vmsi_dma *vmsi_dma_state(vms_kernel *k)
{
    if (!k->dma) {
        k->dma = vmsi_zalloc(k->a, sizeof *k->dma);
        if (k->dma) {
            vms_dma_cost_default(&k->dma->cost);
            k->dma->did_used[0] = 1; /* domain 0 is reserved (VT-d caching mode) */
        }
    }
    return k->dma;
}

void vms_dma_set_cost(vms_kernel *k, const vms_dma_cost *c)
{
    if (vmsi_dma_state(k))
        k->dma->cost = *c;
}

vms_iommu *vmsi_dma_iommu(const vms_dma_dev *d)
{
    return d->k->on_plat ? NULL : vms_dev_iommu(d->dev);
}

void vmsi_dma_set_irq_hook(vms_kernel *k, vms_dev *dev, vms_dev_irq_fn fn, void *ud)
{
    if (k->on_plat && k->plat.irq_handler)
        k->plat.irq_handler(k->plat.ud, dev, fn, ud);
    else
        vms_dev_set_irq_hook(dev, fn, ud);
}

void vmsi_dma_charge(vms_kernel *k, unsigned core, uint64_t cycles)
{
    vmsi_charge(k, core, cycles);
    k->dma->st.cycles += cycles;
}

/* VT-d fault reason code and Linux's text for it (drivers/iommu/intel/dmar.c). */
static unsigned vtd_reason(const vms_iommu_fault *f, const char **text)
{
    bool write = f->kind == VMS_ACC_WRITE;
    switch (f->reason) {
    case VMS_IOMMU_NO_CONTEXT:
        *text = "Present bit in context entry is clear";
        return 0x02;
    case VMS_IOMMU_ADDR_WIDTH:
        *text = "Access beyond MGAW";
        return 0x04;
    case VMS_IOMMU_TABLE_BUS:
        *text = "Next page table ptr is invalid";
        return 0x07;
    case VMS_IOMMU_RSVD:
        *text = "non-zero reserved fields in PTE";
        return 0x0c;
    case VMS_IOMMU_NO_READ:
        *text = "PTE Read access is not set";
        return 0x06;
    case VMS_IOMMU_NO_WRITE:
        *text = "PTE Write access is not set";
        return 0x05;
    default: /* not present: VT-d reports the missing right of the access */
        *text = write ? "PTE Write access is not set" : "PTE Read access is not set";
        return write ? 0x05 : 0x06;
    }
}

unsigned vms_dma_poll_faults(vms_kernel *k)
{
    vmsi_dma *D = k->dma;
    if (!D || !D->io)
        return 0;
    unsigned n = vms_iommu_fault_count(D->io);
    for (unsigned i = 0; i < n; i++) {
        vms_iommu_fault f;
        if (!vms_iommu_fault_get(D->io, i, &f))
            continue;
        const char *text;
        unsigned code = vtd_reason(&f, &text);
        vmsi_log(k, VMS_LOG_ERR,
                 "DMAR: [%s NO_PASID] Request device [%02x:%02x.%u] fault addr 0x%" PRIx64
                 " [fault reason 0x%02x] %s",
                 f.kind == VMS_ACC_WRITE ? "DMA Write" : "DMA Read", vms_bdf_bus(f.bdf),
                 vms_bdf_dev(f.bdf), vms_bdf_fn(f.bdf), f.iova, code, text);
        D->st.iommu_faults++;
        for (size_t j = 0; j < D->ndevs; j++)
            if (vms_dev_bdf(D->devs[j]->dev) == f.bdf)
                D->devs[j]->st.iommu_faults++;
    }
    if (n)
        vms_iommu_fault_clear(D->io);
    return n;
}
