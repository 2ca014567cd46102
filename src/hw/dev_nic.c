/*
 * dev_nic.c — a network card with e1000-style descriptor rings (dev.h, "the NIC").
 *
 * Everything the NIC does to memory it does by DMA through the framework (dev.c), so
 * through the IOMMU when the machine has one: it reads descriptors, writes received
 * bytes, writes descriptors back, and reads transmitted bytes. Ring ownership follows
 * the e1000 manual (§3.2.6): the NIC owns descriptors [head, tail) and software owns the
 * rest; head == tail means the NIC owns none.
 *
 * Re-entrancy: a DMA may be aimed (by a buggy or hostile driver) at the NIC's own
 * registers, so a register write can arrive while the NIC is processing a ring. `busy`
 * makes such writes only update registers; the loop in progress sees them. Every loop
 * is bounded (by the queue length or the ring size), so no descriptor layout can make
 * the NIC spin.
 *
 * Invariants: qlen <= qcap; q[(qhead + i) % qcap] for i < qlen hold owned packet copies;
 * rdh, rdt < ring size (or 0 when the ring is empty); txlen <= VMS_NIC_MAX_PACKET.
 */
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>

#include "hw/dev_impl.h"
#include "util/util.h"

/* A packet held by the NIC (queue or sink); data is owned. */
typedef struct pkt {
    uint8_t *data;
    size_t len;
} pkt;

struct vms_nic {
    vms_dev dev; /* first: the framework hands &nic->dev to the register callbacks */
    /* registers */
    uint32_t ctrl, icr, ims, rbsz;
    bool dmaerr;
    uint64_t rdba, tdba;
    uint32_t rdlen, rdh, rdt, tdlen, tdh, tdt;
    uint32_t gprc, gptc, mpc;
    /* receive queue (packets that arrived before descriptors were free) */
    pkt *q;
    unsigned qcap, qhead, qlen;
    /* transmit: the packet being assembled, and the sink */
    uint8_t *txbuf;
    size_t txlen;
    bool txbad; /* the packet being assembled overflowed: dropped at EOP */
    pkt *sink;
    size_t nsink, sinkcap;
    bool busy;
    vms_nic_stats st;
};

_Static_assert(offsetof(vms_nic, dev) == 0, "the device is the NIC's first member");

static vms_nic *nic_of(vms_dev *dev)
{
    return (vms_nic *)dev;
}

/* ---- descriptors --------------------------------------------------------------------- */

/* Byte offsets of the fields in a descriptor (dev.h draws them). */
enum { D_ADDR = 0, D_LEN = 8, D_CSO = 10, D_CMD = 11, D_STA = 12, D_CSS = 13, D_SPECIAL = 14 };
_Static_assert(D_SPECIAL + 2 == VMS_NIC_DESC_LEN, "a descriptor is 16 bytes");

static uint64_t get_le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void vms_nic_desc_pack(const vms_nic_desc *d, uint8_t out[VMS_NIC_DESC_LEN])
{
    put_le(out + D_ADDR, d->addr, 8);
    put_le(out + D_LEN, d->length, 2);
    out[D_CSO] = d->cso;
    out[D_CMD] = d->cmd;
    out[D_STA] = d->status;
    out[D_CSS] = d->css;
    put_le(out + D_SPECIAL, d->special, 2);
}

void vms_nic_desc_unpack(const uint8_t in[VMS_NIC_DESC_LEN], vms_nic_desc *d)
{
    d->addr = get_le(in + D_ADDR, 8);
    d->length = (uint16_t)get_le(in + D_LEN, 2);
    d->cso = in[D_CSO];
    d->cmd = in[D_CMD];
    d->status = in[D_STA];
    d->css = in[D_CSS];
    d->special = (uint16_t)get_le(in + D_SPECIAL, 2);
}

/* Descriptors in a ring of len bytes. */
static uint32_t ring_size(uint32_t len)
{
    return len / VMS_NIC_DESC_LEN;
}

/* The index after idx in a ring of len bytes (0 if the ring was emptied meanwhile: a
 * register write through DMA may do that mid-loop). */
static uint32_t ring_next(uint32_t idx, uint32_t len)
{
    return ring_size(len) ? (idx + 1) % ring_size(len) : 0;
}

/* A DMA of the NIC failed: note it in STATUS and raise DMAE. */
static void dma_error(vms_nic *nic)
{
    nic->dmaerr = true;
    vmsi_dev_cause(&nic->dev, &nic->icr, nic->ims, VMS_NIC_ICR_DMAE);
}

/* ---- receive ------------------------------------------------------------------------- */

/* Descriptors a packet of len bytes needs. */
static uint32_t rx_need(const vms_nic *nic, size_t len)
{
    return (uint32_t)((len + nic->rbsz - 1) / nic->rbsz);
}

/* Descriptors the NIC owns now: [rdh, rdt). */
static uint32_t rx_free(const vms_nic *nic)
{
    uint32_t n = ring_size(nic->rdlen);
    return n ? (nic->rdt + n - nic->rdh) % n : 0;
}

/* Fill the descriptor at rdh with bytes [0, chunk) of data; false on a DMA failure. */
static bool rx_fill_one(vms_nic *nic, const uint8_t *data, size_t chunk, bool last)
{
    uint8_t raw[VMS_NIC_DESC_LEN];
    uint64_t dp = nic->rdba + (uint64_t)nic->rdh * VMS_NIC_DESC_LEN;
    if (!vms_dev_dma(&nic->dev, dp, raw, sizeof raw, VMS_ACC_READ).ok)
        return false;
    vms_nic_desc d;
    vms_nic_desc_unpack(raw, &d);
    uint8_t *buf = (uint8_t *)(uintptr_t)data; /* vms_dev_dma only reads it on a write */
    if (!vms_dev_dma(&nic->dev, d.addr, buf, chunk, VMS_ACC_WRITE).ok)
        return false;
    d = (vms_nic_desc){.addr = d.addr,
                       .length = (uint16_t)chunk,
                       .status = (uint8_t)(VMS_NIC_RXD_DD | (last ? VMS_NIC_RXD_EOP : 0))};
    vms_nic_desc_pack(&d, raw);
    if (!vms_dev_dma(&nic->dev, dp, raw, sizeof raw, VMS_ACC_WRITE).ok)
        return false;
    nic->rdh = ring_next(nic->rdh, nic->rdlen);
    return true;
}

/* Receive one packet into the ring (the caller checked there is room). */
static void rx_deliver(vms_nic *nic, const uint8_t *data, size_t len)
{
    for (size_t off = 0; off < len; off += nic->rbsz) {
        size_t chunk = len - off < nic->rbsz ? len - off : nic->rbsz;
        if (!rx_fill_one(nic, data + off, chunk, off + chunk == len)) {
            nic->st.rx_dma_errors++;
            dma_error(nic);
            return;
        }
    }
    nic->gprc++;
    nic->st.rx_packets++;
    nic->st.rx_bytes += len;
    vmsi_dev_cause(&nic->dev, &nic->icr, nic->ims, VMS_NIC_ICR_RXT0);
}

/* Can a packet of len bytes be received right now? */
static bool rx_ready(const vms_nic *nic, size_t len)
{
    return (nic->ctrl & VMS_NIC_CTRL_RXEN) && rx_need(nic, len) <= rx_free(nic);
}

/* A packet that can never fit (more descriptors than the ring has) or finds no room. */
static void rx_drop(vms_nic *nic)
{
    nic->mpc++;
    nic->st.rx_dropped++;
    vmsi_dev_cause(&nic->dev, &nic->icr, nic->ims, VMS_NIC_ICR_RXO);
}

/* Receive queued packets while descriptors allow, oldest first. */
static void rx_drain(vms_nic *nic)
{
    if (nic->busy)
        return; /* the loop in progress will see the new state */
    nic->busy = true;
    while (nic->qlen > 0 && rx_ready(nic, nic->q[nic->qhead].len)) {
        pkt p = nic->q[nic->qhead];
        nic->qhead = (nic->qhead + 1) % nic->qcap;
        nic->qlen--;
        rx_deliver(nic, p.data, p.len);
        vmsi_free(nic->dev.a, p.data, p.len);
    }
    nic->busy = false;
}

vms_status vms_nic_receive(vms_nic *nic, const void *data, size_t len, vms_err *err)
{
    if (len == 0 || len > VMS_NIC_MAX_PACKET)
        return vmsi_err(err, VMS_ERR_INVAL, "packet of %zu bytes: expected 1 … %u", len,
                        (unsigned)VMS_NIC_MAX_PACKET);
    if (nic->qlen == 0 && !nic->busy && rx_ready(nic, len)) {
        nic->busy = true;
        rx_deliver(nic, data, len);
        nic->busy = false;
        return VMS_OK;
    }
    if (nic->qlen == nic->qcap) {
        rx_drop(nic);
        return VMS_OK;
    }
    uint8_t *copy = vmsi_alloc(nic->dev.a, len);
    if (!copy)
        return vmsi_err(err, VMS_ERR_NOMEM, "no host memory to queue a %zu-byte packet", len);
    memcpy(copy, data, len);
    nic->q[(nic->qhead + nic->qlen) % nic->qcap] = (pkt){copy, len};
    nic->qlen++;
    rx_drain(nic);
    return VMS_OK;
}

unsigned vms_nic_rx_queued(const vms_nic *nic)
{
    return nic->qlen;
}

/* ---- transmit ------------------------------------------------------------------------ */

/* Append the assembled packet to the sink (lost, and counted, without host memory). */
static void tx_emit(vms_nic *nic)
{
    if (!vmsi_grow_to(nic->dev.a, (void **)&nic->sink, &nic->sinkcap, nic->nsink + 1,
                      sizeof *nic->sink, 16)) {
        nic->st.tx_lost++;
        return;
    }
    uint8_t *copy = vmsi_alloc(nic->dev.a, nic->txlen ? nic->txlen : 1);
    if (!copy) {
        nic->st.tx_lost++;
        return;
    }
    memcpy(copy, nic->txbuf, nic->txlen);
    nic->sink[nic->nsink++] = (pkt){copy, nic->txlen};
    nic->gptc++;
    nic->st.tx_packets++;
    nic->st.tx_bytes += nic->txlen;
}

/* Process the descriptor at tdh. Returns 1 if it reported status (RS), 0 if not, -1 on a
 * DMA failure (tdh not advanced, the packet being assembled dropped). */
static int tx_one(vms_nic *nic)
{
    uint8_t raw[VMS_NIC_DESC_LEN];
    uint64_t dp = nic->tdba + (uint64_t)nic->tdh * VMS_NIC_DESC_LEN;
    vms_nic_desc d;
    if (!vms_dev_dma(&nic->dev, dp, raw, sizeof raw, VMS_ACC_READ).ok)
        return -1;
    vms_nic_desc_unpack(raw, &d);
    size_t n = d.length;
    if (nic->txlen + n > VMS_NIC_MAX_PACKET) {
        nic->txbad = true; /* too long: keep consuming descriptors, drop at EOP */
        n = 0;
    }
    if (n && !vms_dev_dma(&nic->dev, d.addr, nic->txbuf + nic->txlen, n, VMS_ACC_READ).ok)
        return -1;
    nic->txlen += n;
    if (d.cmd & VMS_NIC_TXD_CMD_RS) {
        uint8_t sta = (uint8_t)(d.status | VMS_NIC_TXD_STA_DD);
        if (!vms_dev_dma(&nic->dev, dp + D_STA, &sta, 1, VMS_ACC_WRITE).ok)
            return -1;
    }
    if (d.cmd & VMS_NIC_TXD_CMD_EOP) {
        if (!nic->txbad && nic->txlen > 0)
            tx_emit(nic);
        nic->txlen = 0;
        nic->txbad = false;
    }
    nic->tdh = ring_next(nic->tdh, nic->tdlen);
    return (d.cmd & VMS_NIC_TXD_CMD_RS) ? 1 : 0;
}

/* Send descriptors [tdh, tdt), at most one ring's worth per call. */
static void tx_process(vms_nic *nic)
{
    if (nic->busy || !(nic->ctrl & VMS_NIC_CTRL_TXEN))
        return;
    nic->busy = true;
    bool wrote_back = false;
    for (uint32_t left = ring_size(nic->tdlen); left > 0 && nic->tdh != nic->tdt; left--) {
        int r = tx_one(nic);
        if (r < 0) {
            nic->txlen = 0;
            nic->txbad = false;
            nic->st.tx_dma_errors++;
            dma_error(nic);
            break;
        }
        wrote_back |= r > 0;
    }
    if (wrote_back)
        vmsi_dev_cause(&nic->dev, &nic->icr, nic->ims, VMS_NIC_ICR_TXDW);
    nic->busy = false;
}

size_t vms_nic_tx_count(const vms_nic *nic)
{
    return nic->nsink;
}

bool vms_nic_tx_packet(const vms_nic *nic, size_t i, const uint8_t **data, size_t *len)
{
    if (i >= nic->nsink)
        return false;
    *data = nic->sink[i].data;
    *len = nic->sink[i].len;
    return true;
}

void vms_nic_tx_clear(vms_nic *nic)
{
    for (size_t i = 0; i < nic->nsink; i++)
        vmsi_free(nic->dev.a, nic->sink[i].data, nic->sink[i].len ? nic->sink[i].len : 1);
    nic->nsink = 0;
}

/* ---- registers ----------------------------------------------------------------------- */

/* Drop queued packets and put every register in its reset state. */
static void nic_reset(vms_nic *nic)
{
    while (nic->qlen > 0) {
        pkt p = nic->q[nic->qhead];
        vmsi_free(nic->dev.a, p.data, p.len);
        nic->qhead = (nic->qhead + 1) % nic->qcap;
        nic->qlen--;
    }
    nic->qhead = 0;
    nic->ctrl = nic->icr = nic->ims = 0;
    nic->rbsz = 2048;
    nic->dmaerr = false;
    nic->rdba = nic->tdba = 0;
    nic->rdlen = nic->rdh = nic->rdt = nic->tdlen = nic->tdh = nic->tdt = 0;
    nic->gprc = nic->gptc = nic->mpc = 0;
    nic->txlen = 0;
    nic->txbad = false;
}

static uint32_t nic_status(const vms_nic *nic)
{
    return VMS_NIC_STATUS_LU | (nic->ctrl & VMS_NIC_CTRL_RXEN ? VMS_NIC_STATUS_RXEN : 0) |
           (nic->ctrl & VMS_NIC_CTRL_TXEN ? VMS_NIC_STATUS_TXEN : 0) |
           (nic->dmaerr ? VMS_NIC_STATUS_DMAERR : 0);
}

static uint32_t nic_read(vms_dev *dev, uint32_t off)
{
    vms_nic *nic = nic_of(dev);
    uint32_t v;
    switch (off) {
    case VMS_NIC_CTRL:
        return nic->ctrl;
    case VMS_NIC_STATUS:
        return nic_status(nic);
    case VMS_NIC_ICR:
        v = nic->icr;
        nic->icr = 0;
        return v; /* read to clear */
    case VMS_NIC_IMS:
        return nic->ims;
    case VMS_NIC_IVEC:
        return vmsi_dev_ivec_read(dev);
    case VMS_NIC_RBSZ:
        return nic->rbsz;
    case VMS_NIC_RDBAL:
        return (uint32_t)nic->rdba;
    case VMS_NIC_RDBAH:
        return (uint32_t)(nic->rdba >> 32);
    case VMS_NIC_RDLEN:
        return nic->rdlen;
    case VMS_NIC_RDH:
        return nic->rdh;
    case VMS_NIC_RDT:
        return nic->rdt;
    case VMS_NIC_TDBAL:
        return (uint32_t)nic->tdba;
    case VMS_NIC_TDBAH:
        return (uint32_t)(nic->tdba >> 32);
    case VMS_NIC_TDLEN:
        return nic->tdlen;
    case VMS_NIC_TDH:
        return nic->tdh;
    case VMS_NIC_TDT:
        return nic->tdt;
    case VMS_NIC_GPRC:
        return nic->gprc;
    case VMS_NIC_GPTC:
        return nic->gptc;
    case VMS_NIC_MPC:
        return nic->mpc;
    default:
        return 0;
    }
}

/* A ring length as the NIC keeps it: whole descriptors, at most 1 MiB. */
static uint32_t ring_len(uint32_t v)
{
    v &= ~(uint32_t)(VMS_NIC_DESC_LEN - 1);
    return v > (UINT32_C(1) << 20) ? UINT32_C(1) << 20 : v;
}

/* An index register modulo its ring (0 for an empty ring). */
static uint32_t ring_idx(uint32_t v, uint32_t len)
{
    return ring_size(len) ? v % ring_size(len) : 0;
}

static uint64_t set_lo(uint64_t r, uint32_t v)
{
    return (r & ~UINT64_C(0xFFFFFFFF)) | v;
}

static uint64_t set_hi(uint64_t r, uint32_t v)
{
    return (r & UINT64_C(0xFFFFFFFF)) | (uint64_t)v << 32;
}

static void nic_write_ctrl(vms_nic *nic, uint32_t v)
{
    if (v & VMS_NIC_CTRL_RST) {
        nic_reset(nic);
        return;
    }
    nic->ctrl = v & (VMS_NIC_CTRL_RXEN | VMS_NIC_CTRL_TXEN);
    rx_drain(nic);
    tx_process(nic);
}

static void nic_write(vms_dev *dev, uint32_t off, uint32_t v)
{
    vms_nic *nic = nic_of(dev);
    switch (off) {
    case VMS_NIC_CTRL:
        nic_write_ctrl(nic, v);
        break;
    case VMS_NIC_IMS:
        nic->ims = v & 0xFu;
        break;
    case VMS_NIC_IVEC:
        vmsi_dev_ivec_write(dev, v);
        break;
    case VMS_NIC_RBSZ:
        nic->rbsz = v < 256 ? 256 : v > VMS_NIC_MAX_PACKET ? VMS_NIC_MAX_PACKET : v;
        break;
    case VMS_NIC_RDBAL:
        nic->rdba = set_lo(nic->rdba, v & ~15u);
        break;
    case VMS_NIC_RDBAH:
        nic->rdba = set_hi(nic->rdba, v);
        break;
    case VMS_NIC_RDLEN:
        nic->rdlen = ring_len(v);
        nic->rdh = nic->rdt = 0;
        break;
    case VMS_NIC_RDH:
        nic->rdh = ring_idx(v, nic->rdlen);
        break;
    case VMS_NIC_RDT:
        nic->rdt = ring_idx(v, nic->rdlen);
        rx_drain(nic);
        break;
    case VMS_NIC_TDBAL:
        nic->tdba = set_lo(nic->tdba, v & ~15u);
        break;
    case VMS_NIC_TDBAH:
        nic->tdba = set_hi(nic->tdba, v);
        break;
    case VMS_NIC_TDLEN:
        nic->tdlen = ring_len(v);
        nic->tdh = nic->tdt = 0;
        break;
    case VMS_NIC_TDH:
        nic->tdh = ring_idx(v, nic->tdlen);
        break;
    case VMS_NIC_TDT:
        nic->tdt = ring_idx(v, nic->tdlen);
        tx_process(nic);
        break;
    default:
        break; /* read-only or unknown: ignored */
    }
}

static const vmsi_dev_regs nic_regs = {nic_read, nic_write};

/* ---- lifecycle ----------------------------------------------------------------------- */

void vms_nic_config_default(vms_nic_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->dev.name = "nic";
    cfg->dev.bdf = vms_bdf_make(0, 3, 0);
    cfg->dev.mmio_base = VMS_DEVICE_WINDOW_BASE;
    cfg->rx_queue_len = 64;
}

vms_status vms_nic_create(vms_machine *m, vms_iommu *io, const vms_nic_config *cfg, vms_nic **out,
                          vms_err *err)
{
    *out = NULL;
    const vms_allocator *a = vms_machine_allocator(m);
    vms_nic *nic = vmsi_zalloc(a, sizeof *nic);
    if (!nic)
        return vmsi_err(err, VMS_ERR_NOMEM, "no host memory for the NIC");
    nic->dev.a = a;
    nic->qcap = cfg->rx_queue_len ? cfg->rx_queue_len : 1; /* 1 slot, never used if 0 */
    nic->q = vmsi_calloc(a, nic->qcap, sizeof *nic->q);
    nic->txbuf = vmsi_alloc(a, VMS_NIC_MAX_PACKET);
    vms_status st = VMS_OK;
    if (!nic->q || !nic->txbuf)
        st = vmsi_err(err, VMS_ERR_NOMEM, "no host memory for the NIC's buffers");
    if (st == VMS_OK)
        st = vmsi_dev_init(&nic->dev, m, io, &cfg->dev, VMS_NIC_MMIO_LEN, &nic_regs, err);
    if (st != VMS_OK) {
        vmsi_free(a, nic->q, nic->qcap * sizeof *nic->q);
        vmsi_free(a, nic->txbuf, VMS_NIC_MAX_PACKET);
        vmsi_free(a, nic, sizeof *nic);
        return st;
    }
    if (cfg->rx_queue_len == 0)
        nic->qcap = 0; /* drop at once when no descriptor is free */
    nic_reset(nic);
    *out = nic;
    return VMS_OK;
}

void vms_nic_destroy(vms_nic *nic)
{
    if (!nic)
        return;
    const vms_allocator *a = nic->dev.a;
    vmsi_dev_fini(&nic->dev);
    nic_reset(nic);
    vms_nic_tx_clear(nic);
    vmsi_free(a, nic->sink, nic->sinkcap * sizeof *nic->sink);
    vmsi_free(a, nic->q, (nic->qcap ? nic->qcap : 1) * sizeof *nic->q);
    vmsi_free(a, nic->txbuf, VMS_NIC_MAX_PACKET);
    vmsi_free(a, nic, sizeof *nic);
}

vms_dev *vms_nic_dev(vms_nic *nic)
{
    return &nic->dev;
}

const vms_nic_stats *vms_nic_get_stats(const vms_nic *nic)
{
    return &nic->st;
}

/* ---- packets from a file ------------------------------------------------------------- */

/* The parser's state: the packet being read and where. */
typedef struct hexfile {
    const char *path;
    unsigned line;
    uint8_t *buf;
    size_t len;
    int hi; /* a pending high nibble, or -1 */
    bool comment;
} hexfile;

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Take one character of a line (not the newline). */
static vms_status hex_char(hexfile *h, int c, vms_err *err)
{
    if (h->comment)
        return VMS_OK;
    int v = hexval(c);
    if (v >= 0) {
        if (h->hi < 0) {
            h->hi = v;
            return VMS_OK;
        }
        if (h->len == VMS_NIC_MAX_PACKET)
            return vmsi_err(err, VMS_ERR_PARSE, "%s:%u: packet longer than %u bytes", h->path,
                            h->line, (unsigned)VMS_NIC_MAX_PACKET);
        h->buf[h->len++] = (uint8_t)(h->hi << 4 | v);
        h->hi = -1;
        return VMS_OK;
    }
    bool sep = c == ' ' || c == '\t' || c == ':' || c == '\r' || c == '#';
    if (!sep)
        return vmsi_err(err, VMS_ERR_PARSE,
                        "%s:%u: unexpected character 0x%02x (expected "
                        "hexadecimal bytes)",
                        h->path, h->line, (unsigned)(c & 0xFF));
    if (h->hi >= 0)
        return vmsi_err(err, VMS_ERR_PARSE, "%s:%u: a byte needs two hexadecimal digits", h->path,
                        h->line);
    h->comment = c == '#';
    return VMS_OK;
}

/* End of a line: pass the packet on, if the line held one. */
static vms_status hex_eol(vms_nic *nic, hexfile *h, unsigned *n, vms_err *err)
{
    vms_status st = hex_char(h, ' ', err); /* an odd digit count fails here */
    if (st == VMS_OK && h->len > 0) {
        st = vms_nic_receive(nic, h->buf, h->len, err);
        *n += st == VMS_OK;
    }
    h->len = 0;
    h->comment = false;
    h->line++;
    return st;
}

vms_status vms_nic_receive_file(vms_nic *nic, const char *path, unsigned *npackets, vms_err *err)
{
    unsigned n = 0;
    if (npackets)
        *npackets = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return vmsi_err(err, VMS_ERR_IO, "%s: cannot open the packet file", path);
    hexfile h = {path, 1, vmsi_alloc(nic->dev.a, VMS_NIC_MAX_PACKET), 0, -1, false};
    if (!h.buf) {
        fclose(f);
        return vmsi_err(err, VMS_ERR_NOMEM, "no host memory to read %s", path);
    }
    vms_status st = VMS_OK;
    int c = 0;
    while (st == VMS_OK && (c = getc(f)) != EOF)
        st = c == '\n' ? hex_eol(nic, &h, &n, err) : hex_char(&h, c, err);
    if (st == VMS_OK && ferror(f))
        st = vmsi_err(err, VMS_ERR_IO, "%s: read error", path);
    if (st == VMS_OK)
        st = hex_eol(nic, &h, &n, err); /* a last line without a newline */
    vmsi_free(nic->dev.a, h.buf, VMS_NIC_MAX_PACKET);
    fclose(f);
    if (npackets)
        *npackets = n;
    return st;
}
