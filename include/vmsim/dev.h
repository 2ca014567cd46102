/*
 * vmsim/dev.h — devices on the bus: MMIO registers with side effects, a DMA engine that
 * moves bytes through the (optional) IOMMU and the bus, and interrupts to a core
 * (seed 000 "Devices", "DMA", "IOMMU"). Two working devices: a NIC with receive and
 * transmit descriptor rings, and a block device backed by a host file.
 *
 * The life of a DMA (docs/DEVICES.md):
 *
 *   device's DMA engine ── iova, len ──► split at 4 KiB IOVA page boundaries
 *      for each piece:  IOMMU (off: iova is the pa; on: context of the device's BDF,
 *                       IOTLB or a walk of its tables in RAM, rights)
 *                         │ blocked: logged in the IOMMU, the transfer stops, the piece
 *                         │          and everything after it move nothing
 *                         ▼
 *                       bus ──► RAM (bytes move) or another device's registers
 *   then the device updates its registers, sets an interrupt cause and, if unmasked,
 *   sends an interrupt (vector) to a core: vms_core_interrupt counts it; the hook set
 *   with vms_dev_set_irq_hook (a kernel's handler) runs next.
 *
 * Timing: a command runs to completion inside the MMIO write that starts it (a doorbell
 * or a tail-pointer write); packets are received inside vms_nic_receive. The CPU sees
 * the results on its next access. Register accesses are never cached: the bus routes
 * them to the callbacks whether the CPU reached the window through a TLB hit or a walk;
 * the kernel maps the window with PCD|PWT (vms_xlate.pcd / .pwt show it).
 *
 * Registers of both devices are 32 bits wide, little-endian. An 8-byte access at an
 * 8-aligned offset is two 4-byte accesses (low first); 1- and 2-byte accesses are refused
 * (VMS_ERR_BUS: the core reports a bus fault). Unknown offsets read 0 and ignore writes.
 *
 * Lifetimes: a device borrows its machine and IOMMU (NULL: the machine has no IOMMU) and
 * must be destroyed before them; destroying it removes its registers from the bus.
 */
#ifndef VMSIM_DEV_H
#define VMSIM_DEV_H

#include "vmsim/core.h"
#include "vmsim/iommu.h"
#include "vmsim/strbuf.h"

/* ==== the device framework ============================================================ */

typedef struct vms_dev vms_dev;

/* What every device has: a name, a requester ID and (optionally) a register window. */
typedef struct vms_dev_config {
    const char *name;   /* borrowed: static storage, or outliving the device */
    vms_bdf bdf;        /* requester ID on its DMA requests */
    uint64_t mmio_base; /* register window (ignored by vms_dev_create) */
} vms_dev_config;

/* The result of a DMA transfer. A transfer moves page-sized pieces in order and stops at
 * the first piece that is blocked or that the bus cannot route. */
typedef struct vms_dma_result {
    bool ok;               /* every byte moved */
    size_t done;           /* bytes moved before the stop */
    vms_iommu_fault fault; /* reason != VMS_IOMMU_OK: the IOMMU blocked the piece at done */
    vms_status bus;        /* != VMS_OK: the bus refused the piece at done, at pa */
    uint64_t pa;
} vms_dma_result;

typedef struct vms_dev_stats {
    uint64_t dma_reads, dma_writes; /* transfers (memory → device, device → memory) */
    uint64_t dma_bytes_read, dma_bytes_written; /* bytes that moved */
    uint64_t dma_pieces;                        /* page-sized requests issued */
    uint64_t dma_blocked;                       /* transfers the IOMMU stopped */
    uint64_t dma_bus_errors;                    /* transfers the bus stopped */
    uint64_t mmio_reads, mmio_writes;           /* 32-bit register accesses */
    uint64_t interrupts;                        /* interrupts sent to a core */
    uint64_t interrupts_masked;                 /* causes raised while masked or unrouted */
} vms_dev_stats;

/* Called after the core counted an interrupt of this device (the kernel's handler). */
typedef void (*vms_dev_irq_fn)(void *ud, vms_dev *dev, unsigned core, uint8_t vector);

/*
 * Create a bare device: a bus master with requester ID cfg->bdf and a DMA engine but no
 * registers — what tests and examples drive directly, e.g. a buggy or malicious device.
 * io may be NULL. Destroy with vms_dev_destroy.
 */
vms_status vms_dev_create(vms_machine *m, vms_iommu *io, const vms_dev_config *cfg, vms_dev **out,
                          vms_err *err);

/* Destroy a device made by vms_dev_create (NULL accepted). Devices made by vms_nic_create
 * or vms_blk_create are destroyed by their own destroy functions. */
void vms_dev_destroy(vms_dev *dev);

/*
 * The device's DMA engine moves len bytes between iova and buf: VMS_ACC_WRITE writes buf
 * to memory, VMS_ACC_READ (or EXEC) reads memory into buf. Each 4 KiB IOVA page piece is
 * translated by the IOMMU (when there is one and it is on) and then moved by the bus.
 * Never allocates; a blocked or failed piece is data in the result.
 */
vms_dma_result vms_dev_dma(vms_dev *dev, uint64_t iova, void *buf, size_t len,
                           vms_access_kind kind);

/*
 * DMA coherence (docs/CACHES.md, "coherence"). A coherent device (the default, as on
 * x86) snoops the CPU caches: its reads see the CPU's latest bytes, its writes invalidate
 * cached copies. A non-coherent one (many Arm SoCs) reads and writes DRAM only: it does
 * not see bytes still in a dirty cache line, and the CPU keeps reading its stale cached
 * lines after the device wrote, until software cleans / invalidates them (vms_dma_sync_*,
 * vms_machine_cache_clean/_invalidate). Without caches (cache = off) both behave alike.
 */
void vms_dev_set_coherent(vms_dev *dev, bool coherent);
bool vms_dev_coherent(const vms_dev *dev);

/* Route the device's interrupts to core `core` with `vector` (what programming MSI
 * does); VMS_ERR_INVAL when the machine has no such core. Until then causes are only
 * counted as masked. The devices' IVEC registers do the same from the CPU side. */
vms_status vms_dev_set_irq(vms_dev *dev, unsigned core, uint8_t vector);

/* The hook run after each interrupt is counted (NULL: none). ud is passed back. */
void vms_dev_set_irq_hook(vms_dev *dev, vms_dev_irq_fn fn, void *ud);

/* Send the device's interrupt now (counted as masked when not routed). */
void vms_dev_raise_irq(vms_dev *dev);

const char *vms_dev_name(const vms_dev *dev);
vms_bdf vms_dev_bdf(const vms_dev *dev);
uint64_t vms_dev_mmio_base(const vms_dev *dev); /* register window (0: none) */
vms_iommu *vms_dev_iommu(const vms_dev *dev);   /* NULL when the device has none */
const vms_dev_stats *vms_dev_get_stats(const vms_dev *dev);

/* JSON object members (no braces): "name", "bdf", "dma" {…}, "mmio" {…}, "interrupts". */
vms_status vms_dev_stats_json_members(const vms_dev *dev, vms_strbuf *sb);

/* ==== the NIC ========================================================================= */
/*
 * A network card with one receive and one transmit ring of 16-byte descriptors in memory,
 * loosely modelled on the Intel 8254x (e1000) legacy descriptors and ring registers
 * ("PCI/PCI-X Family of Gigabit Ethernet Controllers Software Developer's Manual",
 * §3.2.3 receive descriptor, §3.3.3 legacy transmit descriptor, §3.2.6/§3.4 rings; our
 * register offsets are our own, compressed into 256 bytes).
 *
 * Registers (offset from the window base, default 0xC0000000):
 *
 *   0x00 CTRL    rw  bit 0 RXEN, bit 1 TXEN, bit 31 RST (self-clearing: rings, queue and
 *                    causes reset, registers to defaults)
 *   0x04 STATUS  ro  bit 0 LU (link up, always), 1 RXEN, 2 TXEN, 3 DMAERR (a DMA was
 *                    blocked or failed; sticky until RST)
 *   0x08 ICR     rc  interrupt causes, cleared by reading: bit 0 RXT0 (packet received),
 *                    1 TXDW (transmit descriptor written back), 2 RXO (packet dropped:
 *                    no descriptor and the queue full), 3 DMAE (DMA error)
 *   0x0C IMS     rw  which causes send an interrupt (bits as ICR)
 *   0x10 IVEC    rw  interrupt routing: bit 31 enable, 15:8 core, 7:0 vector
 *   0x14 RBSZ    rw  receive buffer size in bytes, 256 … 16384 (default 2048)
 *   0x20 RDBAL   rw  receive ring base (an IOVA), bits 31:0; must be 16-byte aligned
 *   0x24 RDBAH   rw  … bits 63:32
 *   0x28 RDLEN   rw  ring length in bytes (a multiple of 16, at most 1 MiB)
 *   0x2C RDH     rw  receive head: the next descriptor the NIC fills
 *   0x30 RDT     rw  receive tail: software gives descriptors [RDH, RDT) to the NIC
 *   0x40 TDBAL, 0x44 TDBAH, 0x48 TDLEN, 0x4C TDH, 0x50 TDT   the transmit ring, likewise:
 *                    writing TDT makes the NIC send descriptors [TDH, TDT)
 *   0x60 GPRC    ro  good packets received       0x64 GPTC  ro  packets transmitted
 *   0x68 MPC     ro  missed (dropped) packets
 *
 * A ring holds RDLEN/16 descriptors; head == tail means the NIC owns none. Ring indices
 * are taken modulo the ring size.
 *
 * Receive descriptor (16 bytes, written by software, completed by the NIC):
 *
 *    0                   8          10         12       13       14         16
 *   +--------------------+----------+----------+--------+--------+----------+
 *   | buffer address     | length   | checksum | status | errors | special  |
 *   | (IOVA, 64 bits)    | (NIC)    | (0)      | (NIC)  | (0)    | (0)      |
 *   +--------------------+----------+----------+--------+--------+----------+
 *   status: bit 0 DD (descriptor done), bit 1 EOP (last descriptor of the packet)
 *
 * Transmit descriptor (16 bytes):
 *
 *    0                   8          10    11    12       13    14         16
 *   +--------------------+----------+-----+-----+--------+-----+----------+
 *   | buffer address     | length   | CSO | CMD | STA    | CSS | special  |
 *   +--------------------+----------+-----+-----+--------+-----+----------+
 *   CMD: bit 0 EOP (last descriptor of the packet), bit 3 RS (report status: the NIC
 *   writes DD into STA when done). STA: bit 0 DD. CSO, CSS, special are ignored.
 *
 * Receiving: a packet is spread over as many descriptors as RBSZ requires; for each, the
 * NIC reads the descriptor, writes the bytes to its buffer, then writes back length and
 * status (DD, EOP on the last) — all by DMA. While RXEN is clear or too few descriptors
 * are free, arriving packets wait in a queue of rx_queue_len packets; beyond that they
 * are dropped (MPC, RXO). A blocked DMA drops the packet and sets DMAERR and DMAE; the
 * descriptor it was filling is not consumed.
 */

typedef struct vms_nic vms_nic;

#define VMS_NIC_MMIO_LEN   0x100
#define VMS_NIC_DESC_LEN   16
#define VMS_NIC_MAX_PACKET 16384

enum {
    VMS_NIC_CTRL = 0x00,
    VMS_NIC_STATUS = 0x04,
    VMS_NIC_ICR = 0x08,
    VMS_NIC_IMS = 0x0C,
    VMS_NIC_IVEC = 0x10,
    VMS_NIC_RBSZ = 0x14,
    VMS_NIC_RDBAL = 0x20,
    VMS_NIC_RDBAH = 0x24,
    VMS_NIC_RDLEN = 0x28,
    VMS_NIC_RDH = 0x2C,
    VMS_NIC_RDT = 0x30,
    VMS_NIC_TDBAL = 0x40,
    VMS_NIC_TDBAH = 0x44,
    VMS_NIC_TDLEN = 0x48,
    VMS_NIC_TDH = 0x4C,
    VMS_NIC_TDT = 0x50,
    VMS_NIC_GPRC = 0x60,
    VMS_NIC_GPTC = 0x64,
    VMS_NIC_MPC = 0x68,
};

#define VMS_NIC_CTRL_RXEN     (UINT32_C(1) << 0)
#define VMS_NIC_CTRL_TXEN     (UINT32_C(1) << 1)
#define VMS_NIC_CTRL_RST      (UINT32_C(1) << 31)
#define VMS_NIC_STATUS_LU     (UINT32_C(1) << 0)
#define VMS_NIC_STATUS_RXEN   (UINT32_C(1) << 1)
#define VMS_NIC_STATUS_TXEN   (UINT32_C(1) << 2)
#define VMS_NIC_STATUS_DMAERR (UINT32_C(1) << 3)
#define VMS_NIC_ICR_RXT0      (UINT32_C(1) << 0)
#define VMS_NIC_ICR_TXDW      (UINT32_C(1) << 1)
#define VMS_NIC_ICR_RXO       (UINT32_C(1) << 2)
#define VMS_NIC_ICR_DMAE      (UINT32_C(1) << 3)
#define VMS_DEV_IVEC_EN       (UINT32_C(1) << 31)
#define VMS_NIC_RXD_DD        0x01u
#define VMS_NIC_RXD_EOP       0x02u
#define VMS_NIC_TXD_CMD_EOP   0x01u
#define VMS_NIC_TXD_CMD_RS    0x08u
#define VMS_NIC_TXD_STA_DD    0x01u

/* Build an IVEC register value. */
static inline uint32_t vms_dev_ivec(unsigned core, uint8_t vector)
{
    return VMS_DEV_IVEC_EN | (core & 0xFFu) << 8 | vector;
}

/* A descriptor, unpacked (the 16 bytes above, little-endian). */
typedef struct vms_nic_desc {
    uint64_t addr;    /* buffer IOVA */
    uint16_t length;  /* tx: bytes to send; rx: bytes received (written by the NIC) */
    uint8_t cso;      /* tx: checksum offset (ignored); rx: checksum 7:0 (written 0) */
    uint8_t cmd;      /* tx: CMD; rx: checksum 15:8 (written 0) */
    uint8_t status;   /* DD, and EOP on receive */
    uint8_t css;      /* tx: checksum start (ignored); rx: errors (written 0) */
    uint16_t special; /* ignored; written 0 on receive */
} vms_nic_desc;

/* Pack d into the 16 bytes of a descriptor in memory, and back. */
void vms_nic_desc_pack(const vms_nic_desc *d, uint8_t out[VMS_NIC_DESC_LEN]);
void vms_nic_desc_unpack(const uint8_t in[VMS_NIC_DESC_LEN], vms_nic_desc *d);

typedef struct vms_nic_config {
    vms_dev_config dev;    /* default: "nic", 00:03.0, 0xC0000000 */
    unsigned rx_queue_len; /* packets held while no descriptor is free (default 64) */
} vms_nic_config;

typedef struct vms_nic_stats {
    uint64_t rx_packets, rx_bytes; /* delivered into memory */
    uint64_t rx_dropped;           /* no room (MPC) */
    uint64_t rx_dma_errors;        /* dropped because a DMA was blocked or failed */
    uint64_t tx_packets, tx_bytes; /* sent to the sink */
    uint64_t tx_dma_errors;
    uint64_t tx_lost; /* sent, but not kept in the sink for lack of host memory */
} vms_nic_stats;

void vms_nic_config_default(vms_nic_config *cfg);

/* Create the NIC and register its window on m's bus (VMS_ERR_EXISTS if it overlaps). */
vms_status vms_nic_create(vms_machine *m, vms_iommu *io, const vms_nic_config *cfg, vms_nic **out,
                          vms_err *err);
void vms_nic_destroy(vms_nic *nic); /* NULL accepted */
vms_dev *vms_nic_dev(vms_nic *nic);

/*
 * A packet of len bytes (1 … VMS_NIC_MAX_PACKET) arrives from the wire: it is received
 * into memory now if descriptors allow, else queued or dropped (counted). VMS_ERR_INVAL
 * for a bad length; VMS_ERR_NOMEM if it could not be queued for lack of host memory.
 */
vms_status vms_nic_receive(vms_nic *nic, const void *pkt, size_t len, vms_err *err);

/*
 * Receive the packets of a text file: one packet per line, written as hexadecimal bytes
 * ("de ad be ef" or "deadbeef"; spaces, tabs and ':' separate), '#' starts a comment,
 * blank lines are skipped. *npackets (may be NULL) counts the packets passed on. Bad
 * input returns VMS_ERR_PARSE naming the file and line (packets before it were received);
 * an unreadable file VMS_ERR_IO.
 */
vms_status vms_nic_receive_file(vms_nic *nic, const char *path, unsigned *npackets, vms_err *err);

/* Packets waiting in the receive queue. */
unsigned vms_nic_rx_queued(const vms_nic *nic);

/* The transmit sink: packets the NIC sent, oldest first; the pointer stays valid until
 * vms_nic_tx_clear or destroy. */
size_t vms_nic_tx_count(const vms_nic *nic);
bool vms_nic_tx_packet(const vms_nic *nic, size_t i, const uint8_t **data, size_t *len);
void vms_nic_tx_clear(vms_nic *nic);

const vms_nic_stats *vms_nic_get_stats(const vms_nic *nic);

/* ==== the block device ================================================================ */
/*
 * A disk controller with a 512-byte-sector disk held in a host file, read and written in
 * place. One command at a time, run to completion when the doorbell is written.
 *
 * Registers (offset from the window base, default 0xC0000100):
 *
 *   0x00 CMD        rw  1 READ (disk → memory), 2 WRITE (memory → disk)
 *   0x04 STATUS     ro  bit 0 DONE, bit 1 ERR; bits 15:8 the error code of the last
 *                       command (VMS_BLK_E*); cleared when a command starts
 *   0x08 SECTOR_LO  rw  first sector, bits 31:0     0x0C SECTOR_HI  rw  bits 63:32
 *   0x10 COUNT      rw  number of sectors (>= 1)
 *   0x18 DMA_LO     rw  memory address (an IOVA) bits 31:0    0x1C DMA_HI  bits 63:32
 *   0x20 DOORBELL   wo  any write runs CMD
 *   0x24 ICR        rc  causes, cleared by reading: bit 0 DONE, bit 1 ERR
 *   0x28 IMS        rw  which causes send an interrupt
 *   0x2C IVEC       rw  interrupt routing, as the NIC's
 *   0x30 CAP_LO     ro  capacity in sectors, bits 31:0      0x34 CAP_HI  ro  bits 63:32
 *
 * A READ moves sector by sector: read from the file, then DMA to memory; a WRITE the
 * other way, flushing the file at the end. A blocked DMA stops the command with
 * VMS_BLK_EDMA; sectors before it have moved (as on real hardware).
 */

typedef struct vms_blk vms_blk;

#define VMS_BLK_MMIO_LEN 0x100
#define VMS_BLK_SECTOR   512u

enum {
    VMS_BLK_CMD = 0x00,
    VMS_BLK_STATUS = 0x04,
    VMS_BLK_SECTOR_LO = 0x08,
    VMS_BLK_SECTOR_HI = 0x0C,
    VMS_BLK_COUNT = 0x10,
    VMS_BLK_DMA_LO = 0x18,
    VMS_BLK_DMA_HI = 0x1C,
    VMS_BLK_DOORBELL = 0x20,
    VMS_BLK_ICR = 0x24,
    VMS_BLK_IMS = 0x28,
    VMS_BLK_IVEC = 0x2C,
    VMS_BLK_CAP_LO = 0x30,
    VMS_BLK_CAP_HI = 0x34,
};

#define VMS_BLK_CMD_READ    1u
#define VMS_BLK_CMD_WRITE   2u
#define VMS_BLK_STATUS_DONE (UINT32_C(1) << 0)
#define VMS_BLK_STATUS_ERR  (UINT32_C(1) << 1)
#define VMS_BLK_ICR_DONE    (UINT32_C(1) << 0)
#define VMS_BLK_ICR_ERR     (UINT32_C(1) << 1)

/* Error codes in STATUS bits 15:8. */
enum {
    VMS_BLK_EOK = 0,
    VMS_BLK_ECMD = 1,   /* unknown command */
    VMS_BLK_ERANGE = 2, /* count 0, or sectors beyond the disk */
    VMS_BLK_EDMA = 3,   /* a DMA was blocked by the IOMMU or refused by the bus */
    VMS_BLK_EIO = 4,    /* the host file could not be read or written */
    VMS_BLK_EROFS = 5,  /* WRITE to a read-only disk */
};

typedef struct vms_blk_config {
    vms_dev_config dev; /* default: "disk", 00:04.0, 0xC0000100 */
    const char *path;   /* host file with the sectors (modified in place unless read_only) */
    bool read_only;
} vms_blk_config;

typedef struct vms_blk_stats {
    uint64_t reads, writes;                 /* commands completed */
    uint64_t sectors_read, sectors_written; /* sectors moved */
    uint64_t errors;                        /* commands that ended in ERR */
} vms_blk_stats;

void vms_blk_config_default(vms_blk_config *cfg);

/* Open cfg->path and register the window. VMS_ERR_IO if the file cannot be opened;
 * its size rounded down to whole sectors is the capacity. */
vms_status vms_blk_create(vms_machine *m, vms_iommu *io, const vms_blk_config *cfg, vms_blk **out,
                          vms_err *err);
void vms_blk_destroy(vms_blk *blk); /* closes the file; NULL accepted */
vms_dev *vms_blk_dev(vms_blk *blk);
uint64_t vms_blk_sectors(const vms_blk *blk);
const vms_blk_stats *vms_blk_get_stats(const vms_blk *blk);

#endif
