/*
 * nic.c — the NIC driver (an e1000-like receive path): the receive ring in a coherent buffer,
 * posting receive buffers from a mapping, and completing descriptors the device wrote back.
 * See dma_impl.h for the state and its invariants.
 */
#include <inttypes.h>

#include "os/dev/dma_impl.h"

/* NIC: complete every descriptor the NIC has written back (DD), packet by packet. */
void vmsi_nic_clean_rx(vms_dma_dev *d)
{
    vms_kernel *k = d->k;
    bool first = true;
    for (unsigned n = 0; n < VMSI_NIC_RING && d->clean != d->tail; n++) {
        uint64_t pa = d->ring_pa + (uint64_t)d->clean * VMS_NIC_DESC_LEN;
        uint8_t raw[VMS_NIC_DESC_LEN];
        vms_nic_desc desc;
        vmsi_ram_read(k, pa, raw, sizeof raw);
        vms_nic_desc_unpack(raw, &desc);
        if (!(desc.status & VMS_NIC_RXD_DD))
            break;
        if (first) {
            d->st.last_rx_addr = desc.addr;
            d->st.last_rx_len = 0;
            first = false;
        }
        d->st.last_rx_len += desc.length;
        d->st.rx_bytes += desc.length;
        if (desc.status & VMS_NIC_RXD_EOP) {
            d->st.rx_packets++;
            first = true;
        }
        vmsi_ram_fill(k, pa, 0, VMS_NIC_DESC_LEN);
        d->clean = (d->clean + 1) % VMSI_NIC_RING;
    }
}

vms_status vmsi_nic_probe(vms_dma_dev *d, vms_err *err)
{
    vms_status st = vmsi_dma_alloc_coherent(d, &d->ring_pa, &d->ring_dma, err);
    if (st != VMS_OK)
        return st;
    vmsi_dma_reg_write(d, VMS_NIC_CTRL, VMS_NIC_CTRL_RST);
    vmsi_dma_reg_write(d, VMS_NIC_RBSZ, VMSI_NIC_RBSZ);
    vmsi_dma_reg_write(d, VMS_NIC_RDBAL, (uint32_t)d->ring_dma);
    vmsi_dma_reg_write(d, VMS_NIC_RDBAH, (uint32_t)(d->ring_dma >> 32));
    vmsi_dma_reg_write(d, VMS_NIC_RDLEN, VMSI_NIC_RING * VMS_NIC_DESC_LEN);
    vmsi_dma_reg_write(d, VMS_NIC_IMS, VMS_NIC_ICR_RXT0 | VMS_NIC_ICR_RXO | VMS_NIC_ICR_DMAE);
    vmsi_dma_reg_write(d, VMS_NIC_IVEC, vms_dev_ivec(0, (uint8_t)(VMSI_IRQ_VECTOR + d->index)));
    vmsi_dma_reg_write(d, VMS_NIC_CTRL, VMS_NIC_CTRL_RXEN);
    return VMS_OK;
}

vms_status vms_dma_nic_post(vms_kernel *k, vms_dma_dev *d, uint64_t dma_addr, unsigned *nbufs,
                            vms_err *err)
{
    if (nbufs)
        *nbufs = 0;
    if (!d->nic || !d->mmio_len)
        return vmsi_err(err, VMS_ERR_INVAL, "nic post: %s is not an attached NIC",
                        vms_dev_name(d->dev));
    long i = vmsi_dma_find_map(d, dma_addr, true);
    if (i < 0 || d->maps[i].kernel)
        return vmsi_err(err, VMS_ERR_NOTFOUND, "nic post: no mapping of %s contains 0x%" PRIx64,
                        vms_dev_name(d->dev), dma_addr);
    const dmap *m = &d->maps[i];
    unsigned room = (d->clean + VMSI_NIC_RING - d->tail - 1) % VMSI_NIC_RING, n = 0;
    uint64_t want = 0;
    for (size_t s = 0; s < m->nsegs; s++) {
        uint64_t a = m->segs[s].addr, e = a + m->segs[s].len;
        if (dma_addr > a && dma_addr < e)
            a = dma_addr;
        else if (dma_addr >= e)
            continue;
        want += (e - a) / VMSI_NIC_RBSZ;
    }
    if (want == 0 || want > room)
        return vmsi_err(err, VMS_ERR_RANGE,
                        "nic post: %" PRIu64 " receive buffers of %u bytes, ring has room for %u",
                        want, VMSI_NIC_RBSZ, room);
    for (size_t s = 0; s < m->nsegs; s++) {
        uint64_t a = m->segs[s].addr, e = a + m->segs[s].len;
        if (dma_addr >= e)
            continue;
        if (dma_addr > a)
            a = dma_addr;
        for (; a + VMSI_NIC_RBSZ <= e; a += VMSI_NIC_RBSZ, n++) {
            uint8_t raw[VMS_NIC_DESC_LEN];
            vms_nic_desc desc = {.addr = a};
            vms_nic_desc_pack(&desc, raw);
            vmsi_ram_write(k, d->ring_pa + (uint64_t)d->tail * VMS_NIC_DESC_LEN, raw, sizeof raw);
            d->tail = (d->tail + 1) % VMSI_NIC_RING;
        }
    }
    d->st.rx_posted += n;
    vmsi_dma_reg_write(d, VMS_NIC_RDT, d->tail);
    if (nbufs)
        *nbufs = n;
    vms_dma_poll_faults(k);
    return VMS_OK;
}
