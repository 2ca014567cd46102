/*
 * dev_blk.c — a disk controller over a host file of 512-byte sectors (dev.h, "the block
 * device").
 *
 * A command is programmed in registers (CMD, SECTOR, COUNT, DMA) and run to completion
 * when DOORBELL is written: sector by sector, the bytes move between the host file and
 * memory by DMA through the framework (so through the IOMMU when there is one). The
 * host file is the disk: READ reads it, WRITE writes it in place and flushes at the end,
 * so the bytes are on the host when the completion interrupt arrives.
 *
 * Invariants: f is open for the device's lifetime ("rb" when read-only, "r+b" else);
 * nsectors = file size / 512 at creation (the disk does not grow); a command in progress
 * (busy) ignores a second doorbell rung by its own DMA.
 */
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>

#include "hw/dev_impl.h"
#include "util/util.h"

struct vms_blk {
    vms_dev dev; /* first: the framework hands &blk->dev to the register callbacks */
    FILE *f;
    bool read_only;
    uint64_t nsectors;
    /* registers */
    uint32_t cmd, status, count, icr, ims;
    uint64_t sector, dma;
    bool busy;
    vms_blk_stats st;
};

_Static_assert(offsetof(vms_blk, dev) == 0, "the device is the block device's first member");

static vms_blk *blk_of(vms_dev *dev)
{
    return (vms_blk *)dev;
}

/* Position the file at sector s (the caller checked the range). */
static bool seek_sector(vms_blk *b, uint64_t s)
{
    uint64_t off = s * VMS_BLK_SECTOR;
    return off <= (uint64_t)LONG_MAX && fseek(b->f, (long)off, SEEK_SET) == 0;
}

/* Move sector i of the command between the file and memory; an error code or EOK. */
static int move_sector(vms_blk *b, uint64_t i)
{
    uint8_t buf[VMS_BLK_SECTOR];
    uint64_t iova = b->dma + i * VMS_BLK_SECTOR;
    if (!seek_sector(b, b->sector + i))
        return VMS_BLK_EIO;
    if (b->cmd == VMS_BLK_CMD_READ) {
        if (fread(buf, 1, sizeof buf, b->f) != sizeof buf)
            return VMS_BLK_EIO;
        if (!vms_dev_dma(&b->dev, iova, buf, sizeof buf, VMS_ACC_WRITE).ok)
            return VMS_BLK_EDMA;
        b->st.sectors_read++;
        return VMS_BLK_EOK;
    }
    if (!vms_dev_dma(&b->dev, iova, buf, sizeof buf, VMS_ACC_READ).ok)
        return VMS_BLK_EDMA;
    if (fwrite(buf, 1, sizeof buf, b->f) != sizeof buf)
        return VMS_BLK_EIO;
    b->st.sectors_written++;
    return VMS_BLK_EOK;
}

/* Check the programmed command; an error code or EOK. */
static int check_cmd(const vms_blk *b)
{
    if (b->cmd != VMS_BLK_CMD_READ && b->cmd != VMS_BLK_CMD_WRITE)
        return VMS_BLK_ECMD;
    if (b->cmd == VMS_BLK_CMD_WRITE && b->read_only)
        return VMS_BLK_EROFS;
    if (b->count == 0 || b->sector >= b->nsectors || b->count > b->nsectors - b->sector)
        return VMS_BLK_ERANGE;
    return VMS_BLK_EOK;
}

/* Run the programmed command to completion, then report it (STATUS, ICR, interrupt). */
static void run(vms_blk *b)
{
    if (b->busy)
        return;
    b->busy = true;
    b->status = 0;
    int e = check_cmd(b);
    for (uint64_t i = 0; e == VMS_BLK_EOK && i < b->count; i++)
        e = move_sector(b, i);
    if (e == VMS_BLK_EOK && b->cmd == VMS_BLK_CMD_WRITE && fflush(b->f) != 0)
        e = VMS_BLK_EIO;
    if (e == VMS_BLK_EOK) {
        b->status = VMS_BLK_STATUS_DONE;
        if (b->cmd == VMS_BLK_CMD_READ)
            b->st.reads++;
        else
            b->st.writes++;
        vmsi_dev_cause(&b->dev, &b->icr, b->ims, VMS_BLK_ICR_DONE);
    } else {
        b->status = VMS_BLK_STATUS_DONE | VMS_BLK_STATUS_ERR | (uint32_t)e << 8;
        b->st.errors++;
        vmsi_dev_cause(&b->dev, &b->icr, b->ims, VMS_BLK_ICR_ERR);
    }
    b->busy = false;
}

static uint32_t blk_read(vms_dev *dev, uint32_t off)
{
    vms_blk *b = blk_of(dev);
    uint32_t v;
    switch (off) {
    case VMS_BLK_CMD:
        return b->cmd;
    case VMS_BLK_STATUS:
        return b->status;
    case VMS_BLK_SECTOR_LO:
        return (uint32_t)b->sector;
    case VMS_BLK_SECTOR_HI:
        return (uint32_t)(b->sector >> 32);
    case VMS_BLK_COUNT:
        return b->count;
    case VMS_BLK_DMA_LO:
        return (uint32_t)b->dma;
    case VMS_BLK_DMA_HI:
        return (uint32_t)(b->dma >> 32);
    case VMS_BLK_ICR:
        v = b->icr;
        b->icr = 0;
        return v; /* read to clear */
    case VMS_BLK_IMS:
        return b->ims;
    case VMS_BLK_IVEC:
        return vmsi_dev_ivec_read(dev);
    case VMS_BLK_CAP_LO:
        return (uint32_t)b->nsectors;
    case VMS_BLK_CAP_HI:
        return (uint32_t)(b->nsectors >> 32);
    default:
        return 0;
    }
}

static uint64_t set_half(uint64_t r, uint32_t v, bool hi)
{
    return hi ? (r & UINT64_C(0xFFFFFFFF)) | (uint64_t)v << 32 : (r & ~UINT64_C(0xFFFFFFFF)) | v;
}

static void blk_write(vms_dev *dev, uint32_t off, uint32_t v)
{
    vms_blk *b = blk_of(dev);
    switch (off) {
    case VMS_BLK_CMD:
        b->cmd = v;
        break;
    case VMS_BLK_SECTOR_LO:
        b->sector = set_half(b->sector, v, false);
        break;
    case VMS_BLK_SECTOR_HI:
        b->sector = set_half(b->sector, v, true);
        break;
    case VMS_BLK_COUNT:
        b->count = v;
        break;
    case VMS_BLK_DMA_LO:
        b->dma = set_half(b->dma, v, false);
        break;
    case VMS_BLK_DMA_HI:
        b->dma = set_half(b->dma, v, true);
        break;
    case VMS_BLK_DOORBELL:
        run(b);
        break;
    case VMS_BLK_IMS:
        b->ims = v & 3u;
        break;
    case VMS_BLK_IVEC:
        vmsi_dev_ivec_write(dev, v);
        break;
    default:
        break; /* read-only or unknown: ignored */
    }
}

static const vmsi_dev_regs blk_regs = {blk_read, blk_write};

void vms_blk_config_default(vms_blk_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->dev.name = "disk";
    cfg->dev.bdf = vms_bdf_make(0, 4, 0);
    cfg->dev.mmio_base = VMS_DEVICE_WINDOW_BASE + 0x100;
}

/* Open the backing file and measure it in whole sectors. */
static vms_status open_disk(vms_blk *b, const vms_blk_config *cfg, vms_err *err)
{
    if (!cfg->path)
        return vmsi_err(err, VMS_ERR_INVAL, "block device %s: no backing file",
                        cfg->dev.name ? cfg->dev.name : "disk");
    b->f = fopen(cfg->path, cfg->read_only ? "rb" : "r+b");
    if (!b->f)
        return vmsi_err(err, VMS_ERR_IO, "%s: cannot open the disk image %s", cfg->path,
                        cfg->read_only ? "for reading" : "for reading and writing");
    long size = -1;
    if (fseek(b->f, 0, SEEK_END) == 0)
        size = ftell(b->f);
    if (size < 0)
        return vmsi_err(err, VMS_ERR_IO, "%s: cannot measure the disk image", cfg->path);
    b->nsectors = (uint64_t)size / VMS_BLK_SECTOR;
    b->read_only = cfg->read_only;
    return VMS_OK;
}

vms_status vms_blk_create(vms_machine *m, vms_iommu *io, const vms_blk_config *cfg, vms_blk **out,
                          vms_err *err)
{
    *out = NULL;
    const vms_allocator *a = vms_machine_allocator(m);
    vms_blk *b = vmsi_zalloc(a, sizeof *b);
    if (!b)
        return vmsi_err(err, VMS_ERR_NOMEM, "no host memory for the block device");
    vms_status st = open_disk(b, cfg, err);
    if (st == VMS_OK)
        st = vmsi_dev_init(&b->dev, m, io, &cfg->dev, VMS_BLK_MMIO_LEN, &blk_regs, err);
    if (st != VMS_OK) {
        if (b->f)
            fclose(b->f);
        vmsi_free(a, b, sizeof *b);
        return st;
    }
    *out = b;
    return VMS_OK;
}

void vms_blk_destroy(vms_blk *b)
{
    if (!b)
        return;
    vmsi_dev_fini(&b->dev);
    fclose(b->f);
    vmsi_free(b->dev.a, b, sizeof *b);
}

vms_dev *vms_blk_dev(vms_blk *b)
{
    return &b->dev;
}

uint64_t vms_blk_sectors(const vms_blk *b)
{
    return b->nsectors;
}

const vms_blk_stats *vms_blk_get_stats(const vms_blk *b)
{
    return &b->st;
}
