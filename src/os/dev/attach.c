/*
 * attach.c — attaching a device to the DMA layer and detaching it: its domain, its register
 * window, its interrupt, the driver's probe; and turning the IOMMU on or off.
 * See dma_impl.h for the state and its invariants.
 */
#include <inttypes.h>
#include <string.h>

#include "os/dev/dma_impl.h"

vms_dma_dev *vms_dma_find(vms_kernel *k, const vms_dev *dev)
{
    for (size_t i = 0; k->dma && i < k->dma->ndevs; i++)
        if (k->dma->devs[i]->dev == dev)
            return k->dma->devs[i];
    return NULL;
}

vms_dev *vms_dma_device(const vms_dma_dev *d)
{
    return d->dev;
}

static vms_status add_dev(vms_kernel *k, vms_dma_dev *d, vms_err *err)
{
    vmsi_dma *D = k->dma;
    if (!vmsi_grow_to(k->a, (void **)&D->devs, &D->cap, D->ndevs + 1, sizeof *D->devs, 4))
        return vmsi_err(err, VMS_ERR_NOMEM, "dma attach: out of host memory");
    D->devs[D->ndevs++] = d;
    return VMS_OK;
}

static void remove_dev(vms_kernel *k, vms_dma_dev *d)
{
    vmsi_dma *D = k->dma;
    for (size_t i = 0; i < D->ndevs; i++)
        if (D->devs[i] == d) {
            D->devs[i] = D->devs[--D->ndevs];
            return;
        }
}

static vms_status attach(vms_kernel *k, vms_dev *dev, vms_nic *nic, vms_blk *blk, vms_dma_mode mode,
                         vms_dma_dev **out, vms_err *err)
{
    *out = NULL;
    if (!vmsi_dma_state(k))
        return vmsi_err(err, VMS_ERR_NOMEM, "dma attach: out of host memory");
    vmsi_dma *D = k->dma;
    vms_iommu *io = k->on_plat ? NULL : vms_dev_iommu(dev); /* a guest drives no IOMMU */
    if (vms_dma_find(k, dev))
        return vmsi_err(err, VMS_ERR_EXISTS, "dma attach: %s is attached already",
                        vms_dev_name(dev));
    if (io && D->io && io != D->io)
        return vmsi_err(err, VMS_ERR_UNSUPPORTED, "dma attach: %s is behind another IOMMU",
                        vms_dev_name(dev));
    if ((unsigned)mode > VMS_DMA_PASSTHROUGH)
        return vmsi_err(err, VMS_ERR_INVAL, "dma attach: bad mode %d", (int)mode);
    vms_dma_dev *d = vmsi_zalloc(k->a, sizeof *d);
    if (!d)
        return vmsi_err(err, VMS_ERR_NOMEM, "dma attach: out of host memory");
    *d = (vms_dma_dev){
        .k = k, .dev = dev, .nic = nic, .blk = blk, .mode = mode, .index = D->next_index};
    vms_status st = add_dev(k, d, err);
    if (st != VMS_OK) {
        vmsi_free(k->a, d, sizeof *d);
        return st;
    }
    if (io && !D->io)
        D->io = io;
    st = vmsi_dma_dom_init(d, err);
    if (st == VMS_OK && (nic || blk)) {
        d->mmio_pa = vms_dev_mmio_base(dev);
        d->mmio_len = nic ? VMS_NIC_MMIO_LEN : VMS_BLK_MMIO_LEN;
        st = vmsi_ioremap_page(k, d->mmio_pa & ~VMS_PAGE_MASK, err);
        if (st != VMS_OK)
            d->mmio_len = 0;
    }
    if (st == VMS_OK) {
        vmsi_dma_set_irq_hook(k, dev, vmsi_dma_irq_hook, d);
        if (!nic && !blk)
            st = vms_dev_set_irq(dev, 0, (uint8_t)(VMSI_IRQ_VECTOR + d->index));
    }
    if (st == VMS_OK)
        st = nic ? vmsi_nic_probe(d, err) : blk ? vmsi_blk_probe(d) : VMS_OK;
    if (st != VMS_OK) {
        vms_dma_detach(k, d);
        return st;
    }
    D->next_index = (D->next_index + 1) % 128;
    vms_bdf b = vms_dev_bdf(dev);
    if (d->pt.root)
        vmsi_log(k, VMS_LOG_INFO, "DMAR: %s [%02x:%02x.%u]: IOMMU domain %u, tables at 0x%" PRIx64,
                 vms_dev_name(dev), vms_bdf_bus(b), vms_bdf_dev(b), vms_bdf_fn(b), d->did,
                 d->pt.root);
    else
        vmsi_log(k, VMS_LOG_INFO, "DMAR: %s [%02x:%02x.%u]: %s", vms_dev_name(dev), vms_bdf_bus(b),
                 vms_bdf_dev(b), vms_bdf_fn(b),
                 !io ? "not behind the IOMMU: DMA to physical addresses"
                     : "passthrough (identity) domain");
    *out = d;
    return VMS_OK;
}

vms_status vms_dma_attach(vms_kernel *k, vms_dev *dev, vms_dma_mode mode, vms_dma_dev **out,
                          vms_err *err)
{
    return attach(k, dev, NULL, NULL, mode, out, err);
}

vms_status vms_dma_attach_nic(vms_kernel *k, vms_nic *nic, vms_dma_mode mode, vms_dma_dev **out,
                              vms_err *err)
{
    return attach(k, vms_nic_dev(nic), nic, NULL, mode, out, err);
}

vms_status vms_dma_attach_blk(vms_kernel *k, vms_blk *blk, vms_dma_mode mode, vms_dma_dev **out,
                              vms_err *err)
{
    return attach(k, vms_blk_dev(blk), NULL, blk, mode, out, err);
}

void vms_dma_detach(vms_kernel *k, vms_dma_dev *d)
{
    if (!d)
        return;
    if (d->nic && d->mmio_len)
        vmsi_dma_reg_write(d, VMS_NIC_CTRL, VMS_NIC_CTRL_RST); /* quiesce before the ring goes */
    if (d->mmio_len && (d->nic || d->blk))
        vmsi_dma_reg_write(d, d->nic ? VMS_NIC_IMS : VMS_BLK_IMS, 0);
    vmsi_dma_set_irq_hook(k, d->dev, NULL, NULL);
    while (d->nmaps)
        vmsi_dma_unmap_at(d, d->nmaps - 1, 0);
    if (d->mmio_len)
        vmsi_iounmap_page(k, d->mmio_pa & ~VMS_PAGE_MASK);
    vmsi_dma_dom_fini(d);
    remove_dev(k, d);
    vms_dma_poll_faults(k);
    vmsi_free(k->a, d->maps, d->cap * sizeof *d->maps);
    vmsi_free(k->a, d, sizeof *d);
}

void vms_dma_detach_all(vms_kernel *k)
{
    if (!k->dma)
        return;
    while (k->dma->ndevs)
        vms_dma_detach(k, k->dma->devs[k->dma->ndevs - 1]);
    k->dma->io = NULL;
}

unsigned vms_dma_domain(const vms_dma_dev *d)
{
    return d->pt.root ? d->did : 0;
}

/* vms_kernel_destroy: detach everything, free the state. */
void vmsi_dma_shutdown(vms_kernel *k)
{
    if (!k->dma)
        return;
    vms_dma_detach_all(k);
    vmsi_free(k->a, k->dma->devs, k->dma->cap * sizeof *k->dma->devs);
    vmsi_free(k->a, k->dma, sizeof *k->dma);
    k->dma = NULL;
}

vms_status vms_dma_iommu_enable(vms_kernel *k, vms_iommu *io, bool on, vms_err *err)
{
    if (!vmsi_dma_state(k))
        return vmsi_err(err, VMS_ERR_NOMEM, "iommu: out of host memory");
    vmsi_dma *D = k->dma;
    if (D->io && io != D->io)
        return vmsi_err(err, VMS_ERR_UNSUPPORTED, "iommu: the kernel drives another IOMMU");
    for (size_t i = 0; i < D->ndevs; i++)
        if (D->devs[i]->nmaps && vmsi_dma_iommu(D->devs[i]))
            return vmsi_err(err, VMS_ERR_INVAL,
                            "iommu: %s has live DMA mappings (unmap or detach it first)",
                            vms_dev_name(D->devs[i]->dev));
    D->io = io;
    vms_iommu_set_enabled(io, on);
    vms_iommu_inv_global(io);
    vmsi_log(k, VMS_LOG_INFO, "DMAR: IOMMU %s", on ? "enabled" : "disabled");
    return VMS_OK;
}
