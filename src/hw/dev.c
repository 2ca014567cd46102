/*
 * dev.c — the device framework (dev.h): register windows on the bus, the DMA engine
 * every device uses, and interrupt delivery to a core.
 *
 * DMA (seed 000 "DMA": "the device has its own logic to increment addresses and move
 * data"): a transfer is cut at 4 KiB IOVA page boundaries into requests, as PCIe cuts a
 * transfer into TLPs that never cross a 4 KiB boundary (PCIe Base Spec §2.2.7). Each
 * request is translated by the IOMMU (if any and on), then moved by the bus, in order;
 * the first blocked or unroutable request ends the transfer and nothing after it moves.
 *
 * Registers: the bus calls mmio_read/mmio_write with 1-, 2-, 4- or 8-byte naturally
 * aligned pieces; 4 bytes is one register, 8 bytes two (low first), smaller pieces are
 * refused with VMS_ERR_BUS so a driver bug shows up as a bus fault on the core.
 */
#include <inttypes.h>

#include "hw/dev_impl.h"
#include "hw/memside.h"
#include "hw/tap.h"
#include "util/util.h"

/* ---- registers ----------------------------------------------------------------------- */

static vms_status mmio_read(void *opaque, uint64_t off, unsigned size, uint64_t *val)
{
    vms_dev *dev = opaque;
    if (size < 4)
        return VMS_ERR_BUS;
    uint64_t v = 0;
    for (unsigned i = 0; i < size / 4; i++) {
        dev->st.mmio_reads++;
        v |= (uint64_t)dev->regs->read(dev, (uint32_t)(off + 4 * i)) << (32 * i);
    }
    *val = v;
    return VMS_OK;
}

static vms_status mmio_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    vms_dev *dev = opaque;
    if (size < 4)
        return VMS_ERR_BUS;
    for (unsigned i = 0; i < size / 4; i++) {
        dev->st.mmio_writes++;
        dev->regs->write(dev, (uint32_t)(off + 4 * i), (uint32_t)(val >> (32 * i)));
    }
    return VMS_OK;
}

static const vms_mmio_ops reg_ops = {mmio_read, mmio_write};

vms_status vmsi_dev_init(vms_dev *dev, vms_machine *m, vms_iommu *io, const vms_dev_config *cfg,
                         uint64_t mmio_len, const vmsi_dev_regs *regs, vms_err *err)
{
    dev->m = m;
    dev->bus = vms_machine_bus(m);
    dev->io = io;
    dev->a = vms_machine_allocator(m);
    dev->name = cfg->name ? cfg->name : "device";
    dev->bdf = cfg->bdf;
    dev->regs = regs;
    if (mmio_len == 0)
        return VMS_OK;
    if (cfg->mmio_base & 7)
        return vmsi_err(err, VMS_ERR_INVAL,
                        "device %s: register window 0x%" PRIx64 " is not 8-byte aligned", dev->name,
                        cfg->mmio_base);
    vms_status st =
        vms_bus_add_mmio(dev->bus, cfg->mmio_base, mmio_len, dev->name, &reg_ops, dev, err);
    if (st == VMS_OK) {
        dev->mmio_base = cfg->mmio_base;
        dev->mmio_len = mmio_len;
    }
    return st;
}

void vmsi_dev_fini(vms_dev *dev)
{
    if (dev->mmio_len)
        vms_bus_remove_mmio(dev->bus, dev->mmio_base);
    dev->mmio_len = 0;
}

/* ---- bare devices -------------------------------------------------------------------- */

vms_status vms_dev_create(vms_machine *m, vms_iommu *io, const vms_dev_config *cfg, vms_dev **out,
                          vms_err *err)
{
    *out = NULL;
    vms_dev *dev = vmsi_zalloc(vms_machine_allocator(m), sizeof *dev);
    if (!dev)
        return vmsi_err(err, VMS_ERR_NOMEM, "no host memory for device %s",
                        cfg->name ? cfg->name : "device");
    vms_status st = vmsi_dev_init(dev, m, io, cfg, 0, NULL, err);
    if (st != VMS_OK) {
        vmsi_free(vms_machine_allocator(m), dev, sizeof *dev);
        return st;
    }
    dev->bare = true;
    *out = dev;
    return VMS_OK;
}

void vms_dev_destroy(vms_dev *dev)
{
    if (!dev)
        return;
    if (!dev->bare)
        return; /* embedded in a NIC or block device: their destroy frees it */
    vmsi_dev_fini(dev);
    vmsi_free(dev->a, dev, sizeof *dev);
}

/* ---- DMA ----------------------------------------------------------------------------- */

/* Translate the request at iova: true with *pa and *room, or false with r->fault set. */
static bool dma_translate(vms_dev *dev, uint64_t iova, vms_access_kind kind, uint64_t *pa,
                          uint64_t *room, vms_dma_result *r)
{
    if (dev->io)
        return vms_iommu_translate(dev->io, dev->bdf, iova, kind, pa, room, &r->fault);
    *pa = iova; /* no IOMMU: device addresses are physical addresses */
    *room = VMS_PAGE_SIZE - (iova & VMS_PAGE_MASK);
    return true;
}

vms_dma_result vms_dev_dma(vms_dev *dev, uint64_t iova, void *buf, size_t len, vms_access_kind kind)
{
    vms_dma_result r = {.ok = true};
    bool write = kind == VMS_ACC_WRITE;
    uint8_t *p = buf;
    if (write)
        dev->st.dma_writes++;
    else
        dev->st.dma_reads++;
    while (r.done < len) {
        uint64_t cur = iova + r.done, pa = 0, room = 0;
        /* A request never crosses a 4 KiB IOVA boundary, whatever the page size. */
        uint64_t in4k = VMS_PAGE_SIZE - (cur & VMS_PAGE_MASK);
        dev->st.dma_pieces++;
        if (!dma_translate(dev, cur, kind, &pa, &room, &r)) {
            dev->st.dma_blocked++;
            r.ok = false;
            break;
        }
        size_t n = len - r.done;
        if (n > in4k)
            n = (size_t)in4k;
        if (n > room)
            n = (size_t)room;
        vmsi_memside *ms = vmsi_machine_memside(dev->m);
        if (ms && vms_bus_is_ram(dev->bus, pa, n)) /* snooping, or DRAM only */
            r.bus = vmsi_memside_dma(ms, !dev->noncoherent, pa, p + r.done, n, write);
        else
            r.bus = write ? vms_bus_write(dev->bus, pa, p + r.done, n)
                          : vms_bus_read(dev->bus, pa, p + r.done, n);
        if (r.bus != VMS_OK) {
            dev->st.dma_bus_errors++;
            r.pa = pa;
            r.ok = false;
            break;
        }
        r.done += n;
    }
    if (write)
        dev->st.dma_bytes_written += r.done;
    else
        dev->st.dma_bytes_read += r.done;
    const vmsi_tap *tap = vmsi_machine_tap(dev->m);
    if (vmsi_tap_on(tap)) {
        uint32_t vm =
            dev->io && vms_iommu_enabled(dev->io) ? vms_iommu_context_vm(dev->io, dev->bdf) : 0;
        vms_event ev = {.type = VMS_EV_DMA, .dma = {dev->bdf, iova, len, r.done, write, r.ok, vm}};
        vmsi_tap_emit_kernel(tap, &ev);
    }
    return r;
}

void vms_dev_set_coherent(vms_dev *dev, bool coherent)
{
    dev->noncoherent = !coherent;
    vmsi_memside *ms = vmsi_machine_memside(dev->m);
    if (ms && !coherent)
        vmsi_memside_track(ms); /* DRAM's own bytes matter from now on */
}

bool vms_dev_coherent(const vms_dev *dev)
{
    return !dev->noncoherent;
}

/* ---- interrupts ---------------------------------------------------------------------- */

vms_status vms_dev_set_irq(vms_dev *dev, unsigned core, uint8_t vector)
{
    if (core >= vms_machine_ncores(dev->m))
        return VMS_ERR_INVAL;
    dev->irq_on = true;
    dev->irq_core = core;
    dev->irq_vector = vector;
    return VMS_OK;
}

void vms_dev_set_irq_hook(vms_dev *dev, vms_dev_irq_fn fn, void *ud)
{
    dev->hook = fn;
    dev->hook_ud = ud;
}

void vms_dev_raise_irq(vms_dev *dev)
{
    vms_core *c = dev->irq_on ? vms_machine_core(dev->m, dev->irq_core) : NULL;
    if (!c) {
        dev->st.interrupts_masked++;
        return;
    }
    dev->st.interrupts++;
    vms_core_interrupt(c, dev->irq_vector);
    if (dev->hook)
        dev->hook(dev->hook_ud, dev, dev->irq_core, dev->irq_vector);
}

uint32_t vmsi_dev_ivec_read(const vms_dev *dev)
{
    uint32_t v = (uint32_t)(dev->irq_core & 0xFFu) << 8 | dev->irq_vector;
    return dev->irq_on ? v | VMS_DEV_IVEC_EN : v;
}

void vmsi_dev_ivec_write(vms_dev *dev, uint32_t val)
{
    /* A core that does not exist leaves the interrupt unrouted (counted as masked). */
    dev->irq_core = (val >> 8) & 0xFFu;
    dev->irq_vector = (uint8_t)val;
    dev->irq_on = (val & VMS_DEV_IVEC_EN) && dev->irq_core < vms_machine_ncores(dev->m);
}

void vmsi_dev_cause(vms_dev *dev, uint32_t *icr, uint32_t ims, uint32_t cause)
{
    *icr |= cause;
    if (cause & ims)
        vms_dev_raise_irq(dev);
    else
        dev->st.interrupts_masked++;
}

/* ---- accessors ----------------------------------------------------------------------- */

const char *vms_dev_name(const vms_dev *dev)
{
    return dev->name;
}

vms_bdf vms_dev_bdf(const vms_dev *dev)
{
    return dev->bdf;
}

uint64_t vms_dev_mmio_base(const vms_dev *dev)
{
    return dev->mmio_len ? dev->mmio_base : 0;
}

vms_iommu *vms_dev_iommu(const vms_dev *dev)
{
    return dev->io;
}

const vms_dev_stats *vms_dev_get_stats(const vms_dev *dev)
{
    return &dev->st;
}

vms_status vms_dev_stats_json_members(const vms_dev *dev, vms_strbuf *sb)
{
    const vms_dev_stats *s = &dev->st;
    vms_strbuf_printf(sb,
                      "\"name\":\"%s\",\"bdf\":\"%02x:%02x.%x\",\"dma\":{\"reads\":%" PRIu64
                      ",\"writes\":%" PRIu64 ",\"bytes_read\":%" PRIu64
                      ",\"bytes_written\":%" PRIu64 ",\"requests\":%" PRIu64 ",\"blocked\":%" PRIu64
                      ",\"bus_errors\":%" PRIu64 "}",
                      dev->name, vms_bdf_bus(dev->bdf), vms_bdf_dev(dev->bdf), vms_bdf_fn(dev->bdf),
                      s->dma_reads, s->dma_writes, s->dma_bytes_read, s->dma_bytes_written,
                      s->dma_pieces, s->dma_blocked, s->dma_bus_errors);
    vms_strbuf_printf(sb,
                      ",\"mmio\":{\"reads\":%" PRIu64 ",\"writes\":%" PRIu64
                      "},\"interrupts\":%" PRIu64 ",\"interrupts_masked\":%" PRIu64,
                      s->mmio_reads, s->mmio_writes, s->interrupts, s->interrupts_masked);
    return sb->failed ? VMS_ERR_NOMEM : VMS_OK;
}
