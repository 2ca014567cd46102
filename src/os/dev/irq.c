/*
 * irq.c — interrupts: the top half (a vms_dev irq hook, deferred while the driver is inside
 * its own register access) and the handler that reads the device's cause register.
 * See dma_impl.h for the state and its invariants.
 */
#include "os/dev/dma_impl.h"

void vmsi_dma_handle_irq(vms_dma_dev *d)
{
    vms_kernel *k = d->k;
    k->dma->st.irqs++;
    d->st.irqs++;
    if (d->nic) {
        uint32_t icr = vmsi_dma_reg_read(d, VMS_NIC_ICR);
        vmsi_nic_clean_rx(d);
        if (icr & (VMS_NIC_ICR_DMAE | VMS_NIC_ICR_RXO)) {
            d->st.rx_errors++;
            vmsi_log(k, VMS_LOG_WARNING, "%s: %s, packet dropped", vms_dev_name(d->dev),
                     icr & VMS_NIC_ICR_DMAE ? "receive DMA error" : "receive overrun");
        }
    } else if (d->blk) {
        vmsi_dma_reg_read(d, VMS_BLK_ICR);
        d->st.last_blk_status = vmsi_dma_reg_read(d, VMS_BLK_STATUS);
    }
    vms_dma_poll_faults(k);
}

/* vms_dev_irq_fn: the top half. Inside a driver's own register access the work is
 * deferred to the end of that access (the device is busy in its callback). */
void vmsi_dma_irq_hook(void *ud, vms_dev *dev, unsigned core, uint8_t vector)
{
    vms_dma_dev *d = ud;
    (void)dev;
    (void)core;
    (void)vector;
    if (d->in_mmio)
        d->irq_pending = true;
    else
        vmsi_dma_handle_irq(d);
}
