/*
 * domain.c — IOMMU domains (Linux drivers/iommu/intel/iommu.c): a domain id and the domain's
 * tables per translated device, passthrough otherwise; and IOVA allocation, first fit over the
 * device's sorted mappings inside [VMSI_IOVA_BASE, VMSI_IOVA_LIMIT).
 * See dma_impl.h for the state and its invariants.
 */
#include "os/dev/dma_impl.h"

bool vms_dma_translated(const vms_dma_dev *d)
{
    vms_iommu *io = vmsi_dma_iommu(d);
    return io && vms_iommu_enabled(io) && d->mode == VMS_DMA_TRANSLATE;
}

/* Give d its context: a fresh domain (id + tables) or passthrough. */
vms_status vmsi_dma_dom_init(vms_dma_dev *d, vms_err *err)
{
    vms_kernel *k = d->k;
    vms_iommu *io = vmsi_dma_iommu(d);
    if (!io)
        return VMS_OK;
    vms_iommu_context ctx = {VMS_IOMMU_PASSTHROUGH, 0, 0, 0};
    if (d->mode == VMS_DMA_TRANSLATE) {
        unsigned did = 1;
        while (did <= VMS_IOMMU_MAX_DID && k->dma->did_used[did])
            did++;
        if (did > VMS_IOMMU_MAX_DID)
            return vmsi_err(err, VMS_ERR_NOTFOUND, "dma: no free IOMMU domain id");
        /* Table frames counted per device and in the DMA stats. */
        d->tops = (vmsi_table_ops){k, {&d->table_pages, &k->dma->st.table_pages}};
        vms_pt_ops ops = vmsi_table_pt_ops(&d->tops);
        /* The IOMMU's own (x86-style) tables: 4 levels under a 3-level CPU format. */
        unsigned iolevels = k->levels < 4 ? 4u : k->levels;
        vms_status st = vms_pt_init(&d->pt, k->bus, iolevels, &ops, err);
        if (st != VMS_OK) {
            d->pt.root = 0;
            return st;
        }
        d->did = (uint16_t)did;
        k->dma->did_used[did] = 1;
        ctx = (vms_iommu_context){VMS_IOMMU_TRANSLATE, d->did, d->pt.root, iolevels};
    }
    return vms_iommu_set_context(io, vms_dev_bdf(d->dev), &ctx, err);
}

void vmsi_dma_dom_fini(vms_dma_dev *d)
{
    vms_iommu *io = vmsi_dma_iommu(d);
    if (io)
        vms_iommu_set_context(io, vms_dev_bdf(d->dev), NULL, NULL);
    if (d->pt.root) {
        if (io)
            vms_iommu_inv_domain(io, d->did);
        vms_pt_destroy(&d->pt);
        d->pt.root = 0;
        d->k->dma->did_used[d->did] = 0;
    }
}

bool vmsi_iova_alloc(const vms_dma_dev *d, uint64_t npages, uint64_t *iova, size_t *pos)
{
    uint64_t at = VMSI_IOVA_BASE, len = npages << VMS_PAGE_SHIFT;
    size_t i = 0;
    for (; i < d->nmaps; i++) {
        const dmap *m = &d->maps[i];
        if (at + len <= m->iova)
            break;
        at = m->iova + (m->npages << VMS_PAGE_SHIFT);
    }
    if (at + len > VMSI_IOVA_LIMIT)
        return false;
    *iova = at;
    *pos = i;
    return true;
}

vms_status vms_dma_domain_alloc(vms_kernel *k, vms_iommu *io, uint16_t *did, vms_err *err)
{
    if (!vmsi_dma_state(k))
        return vmsi_err(err, VMS_ERR_NOMEM, "dma: out of host memory");
    vmsi_dma *D = k->dma;
    if (D->io && D->io != io)
        return vmsi_err(err, VMS_ERR_UNSUPPORTED, "dma: the kernel drives another IOMMU");
    unsigned id = 1;
    while (id <= VMS_IOMMU_MAX_DID && D->did_used[id])
        id++;
    if (id > VMS_IOMMU_MAX_DID)
        return vmsi_err(err, VMS_ERR_NOTFOUND, "dma: no free IOMMU domain id");
    D->io = io;
    D->did_used[id] = 1;
    *did = (uint16_t)id;
    return VMS_OK;
}

void vms_dma_domain_free(vms_kernel *k, uint16_t did)
{
    if (k->dma && did)
        k->dma->did_used[did] = 0;
}
