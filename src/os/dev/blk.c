/*
 * blk.c — the block-device driver: one command per physical segment of a mapping, status read
 * by the interrupt handler or polled.
 * See dma_impl.h for the state and its invariants.
 */
#include <inttypes.h>

#include "os/dev/dma_impl.h"

vms_status vmsi_blk_probe(vms_dma_dev *d)
{
    vmsi_dma_reg_write(d, VMS_BLK_IMS, VMS_BLK_ICR_DONE | VMS_BLK_ICR_ERR);
    vmsi_dma_reg_write(d, VMS_BLK_IVEC, vms_dev_ivec(0, (uint8_t)(VMSI_IRQ_VECTOR + d->index)));
    return VMS_OK;
}

/* One block command; returns the STATUS after it. */
static uint32_t blk_cmd(vms_dma_dev *d, bool write, uint64_t sector, uint32_t count, uint64_t addr)
{
    d->st.last_blk_status = 0;
    vmsi_dma_reg_write(d, VMS_BLK_SECTOR_LO, (uint32_t)sector);
    vmsi_dma_reg_write(d, VMS_BLK_SECTOR_HI, (uint32_t)(sector >> 32));
    vmsi_dma_reg_write(d, VMS_BLK_COUNT, count);
    vmsi_dma_reg_write(d, VMS_BLK_DMA_LO, (uint32_t)addr);
    vmsi_dma_reg_write(d, VMS_BLK_DMA_HI, (uint32_t)(addr >> 32));
    vmsi_dma_reg_write(d, VMS_BLK_CMD, write ? VMS_BLK_CMD_WRITE : VMS_BLK_CMD_READ);
    vmsi_dma_reg_write(d, VMS_BLK_DOORBELL, 1);
    d->st.blk_cmds++;
    /* The interrupt handler read STATUS; without an interrupt, poll it. */
    uint32_t status =
        d->st.last_blk_status ? d->st.last_blk_status : vmsi_dma_reg_read(d, VMS_BLK_STATUS);
    d->st.last_blk_status = status;
    if (status & VMS_BLK_STATUS_ERR)
        d->st.blk_errors++;
    return status;
}

vms_status vms_dma_blk_rw(vms_kernel *k, vms_dma_dev *d, bool write, uint64_t sector,
                          uint32_t count, uint64_t dma_addr, uint32_t *status, vms_err *err)
{
    if (status)
        *status = 0;
    if (!d->blk || !d->mmio_len || !count)
        return vmsi_err(err, VMS_ERR_INVAL, "blk: %s",
                        count ? "not an attached block device" : "count 0");
    long i = vmsi_dma_find_map(d, dma_addr, true);
    uint32_t st = 0;
    if (i < 0) {
        st = blk_cmd(d, write, sector, count, dma_addr);
    } else {
        const dmap *m = &d->maps[i];
        uint32_t left = count;
        for (size_t s = 0; s < m->nsegs && left && !(st & VMS_BLK_STATUS_ERR); s++) {
            uint64_t a = m->segs[s].addr, e = a + m->segs[s].len;
            if (dma_addr >= e)
                continue;
            if (dma_addr > a)
                a = dma_addr;
            uint64_t n = (e - a) / VMS_BLK_SECTOR;
            if ((e - a) % VMS_BLK_SECTOR && n < left)
                return vmsi_err(err, VMS_ERR_INVAL,
                                "blk: segment at 0x%" PRIx64 " does not hold whole sectors", a);
            uint32_t c = n < left ? (uint32_t)n : left;
            st = blk_cmd(d, write, sector, c, a);
            sector += c;
            left -= c;
        }
        if (left && !(st & VMS_BLK_STATUS_ERR)) {
            vms_dma_poll_faults(k);
            return vmsi_err(err, VMS_ERR_RANGE, "blk: %u sectors do not fit the mapping", left);
        }
    }
    if (status)
        *status = st;
    vms_dma_poll_faults(k);
    if (st & VMS_BLK_STATUS_ERR)
        return vmsi_err(err, VMS_ERR_IO, "blk: %s failed with error code %u",
                        write ? "write" : "read", (st >> 8) & 0xFFu);
    return VMS_OK;
}
