/*
 * dma.c — the kernel's DMA API and IOMMU driver (Linux kernel/dma/mapping.c,
 * mm/gup.c pin_user_pages, drivers/iommu/intel/iommu.c, mm/ioremap.c) and two tiny
 * device drivers (an e1000-like NIC, a block device). See include/vmsim/dma.h for the
 * contract and docs/DEVICES.md for "the life of a DMA from the kernel's side".
 *
 * The kernel talks to the hardware only architecturally: it writes IOMMU tables in
 * simulated RAM (pt.h over frames it allocated), sets context entries, issues IOTLB
 * invalidations, reads and clears the fault log, loads and stores device registers
 * through its own uncached mapping, and writes descriptor rings in its own memory.
 *
 * State. One vmsi_dma per kernel (created by the first attach): the IOMMU it drives,
 * the attached devices, the domain-id bitmap and the ioremap page references. Each
 * device holds its mappings, sorted by IOVA when translated; a mapping records the
 * process, va, direction and one pinned pfn per 4 KiB page (the zero page is recorded
 * but never pinned), plus its segments (one when translated).
 *
 * Invariants (vms_dma_check): Σ over mappings of the pages pinning frame F == F's
 * pincount; every translated mapping page is a leaf of its domain's tables with exactly
 * its rights and nothing else is mapped there; IOVA ranges of a domain are disjoint and
 * inside [VMSI_IOVA_BASE, VMSI_IOVA_LIMIT); stats.pinned_pages, iova_pages and
 * table_pages equal recounts.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "os/os_impl.h"
#include "os/mm/mm_impl.h"
#include "os/reclaim/reclaim_impl.h"
#include "os/dev/dev_impl.h"
#include "vmsim/dma.h"

#define VMSI_IOVA_BASE    (UINT64_C(1) << 20) /* first IOVA handed out (0 stays unmapped) */
#define VMSI_IOVA_LIMIT   (UINT64_C(1) << 32) /* a 32-bit DMA mask */
#define VMSI_IOREMAP_4L   UINT64_C(0xffffc90000000000) /* Linux's VMALLOC_START, 4-level */
#define VMSI_IOREMAP_5L   UINT64_C(0xffa0000000000000) /* … 5-level */
#define VMSI_IOREMAP_SV39 UINT64_C(0xffffffc800000000) /* riscv vm-layout.rst: Sv39 */
#define VMSI_IRQ_VECTOR   0x40u
#define VMSI_NIC_RING     256u /* descriptors in the receive ring: one 4 KiB frame */
#define VMSI_NIC_RBSZ     256u /* receive buffer size the driver programs */
#define VMSI_MAX_IOREMAP  64u

/* One mapping. */
typedef struct dmap {
    uint64_t dma_addr; /* what map returned: iova + offset, or the first segment */
    uint64_t iova;     /* translated: first IOVA page; else 0 */
    uint64_t va, len;
    uint64_t npages;
    vms_dma_dir dir;
    bool translated;
    bool kernel; /* a kernel buffer (the NIC ring): its frame is not pinned */
    int pid;
    char comm[16];
    uint64_t *pfns; /* npages */
    vms_dma_seg *segs;
    size_t nsegs;
} dmap;

struct vms_dma_dev {
    vms_kernel *k;
    vms_dev *dev;
    vms_nic *nic;
    vms_blk *blk;
    vms_dma_mode mode;
    unsigned index; /* interrupt vector = VMSI_IRQ_VECTOR + index */
    uint16_t did;   /* translated: domain id */
    vms_pt pt;      /* translated: the domain's tables (pt.root 0: none) */
    uint64_t table_pages;
    dmap *maps;
    size_t nmaps, cap;
    uint64_t mmio_pa, mmio_len; /* register window (len 0: none) */
    bool in_mmio;               /* a driver register access is in progress */
    bool irq_pending;           /* an interrupt arrived during it: handle after */
    uint64_t ring_dma, ring_pa; /* NIC: receive ring */
    unsigned tail, clean;       /* NIC: next free, next to complete */
    vms_dma_dev_stats st;
};

typedef struct ioremap_ref {
    uint64_t page; /* physical page of a device window */
    unsigned refs;
} ioremap_ref;

struct vmsi_dma {
    vms_iommu *io;
    vms_dma_dev **devs;
    size_t ndevs, cap;
    uint8_t did_used[VMS_IOMMU_MAX_DID + 1];
    unsigned next_index;
    vms_dma_cost cost;
    vms_dma_stats st;
    ioremap_ref ioremap[VMSI_MAX_IOREMAP];
    unsigned nioremap;
};

/* ---- helpers ------------------------------------------------------------------------ */

void vms_dma_cost_default(vms_dma_cost *c)
{
    c->pin_page = 100;
    c->unpin_page = 50;
    c->map_page = 30;
    c->unmap_page = 30;
    c->iotlb_inv = 500;
}

/* The kernel's DMA state, created on first use; NULL on host failure. */
static vmsi_dma *dma_state(vms_kernel *k)
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
    if (dma_state(k))
        k->dma->cost = *c;
}

static void charge(vms_kernel *k, unsigned core, uint64_t cycles)
{
    vmsi_charge(k, core, cycles);
    k->dma->st.cycles += cycles;
}

static uint64_t ioremap_base(const vms_kernel *k)
{
    if (k->fmt->va_bits < 48)
        return VMSI_IOREMAP_SV39;
    return k->levels == 5 ? VMSI_IOREMAP_5L : VMSI_IOREMAP_4L;
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

/* ---- register access through init_mm's uncached mapping ----------------------------- */

static void sync_pgd(vms_kernel *k, uint64_t kva);

/* Free the empty tables on kva's path in init_mm, bottom up (what a failed vms_pt_map
 * leaves behind), and resync the top-level entry. Nothing was mapped through them, so
 * no TLB or PWC can hold them. */
static void prune_tables(vms_kernel *k, uint64_t kva)
{
    for (unsigned l = 1; l < k->levels; l++) {
        uint64_t parent = 0, e = 0;
        if (vms_pt_entry_addr(&k->init_pt, kva, l + 1, false, &parent, NULL) != VMS_OK)
            continue; /* no table at this level: look higher */
        vms_pt_read(&k->init_pt, parent, &e);
        if (!vmsi_pte_present(k, e))
            continue;
        if (vmsi_pte_leaf(k, e, l + 1))
            break;
        uint64_t table = vms_fmt_pte_addr(k->fmt, e);
        for (unsigned i = 0; i < vms_fmt_entries(k->fmt); i++) {
            uint64_t x = 0;
            vms_pt_read(&k->init_pt, table + ((uint64_t)i << k->fmt->entry_shift), &x);
            if (x)
                goto done;
        }
        vms_pt_write(&k->init_pt, parent, 0);
        vms_frames_set_flags(k->fr, table >> VMS_PAGE_SHIFT, 0, VMS_FRAME_PAGETABLE);
        vms_frames_put(k->fr, table >> VMS_PAGE_SHIFT, NULL);
    }
done:
    sync_pgd(k, kva);
}

static vms_status ioremap_page(vms_kernel *k, uint64_t page, vms_err *err)
{
    vmsi_dma *D = k->dma;
    for (unsigned i = 0; i < D->nioremap; i++)
        if (D->ioremap[i].page == page) {
            D->ioremap[i].refs++;
            return VMS_OK;
        }
    if (D->nioremap == VMSI_MAX_IOREMAP)
        return vmsi_err(err, VMS_ERR_NOTFOUND, "ioremap: more than %u device pages",
                        VMSI_MAX_IOREMAP);
    uint64_t kva = ioremap_base(k) + page;
    unsigned prot = VMS_PGPROT_R | VMS_PGPROT_W | VMS_PGPROT_G | VMS_PGPROT_A | VMS_PGPROT_D |
                    VMS_PGPROT_NOCACHE; /* supervisor, no execute, uncached */
    vms_status st = vms_pt_map_prot(&k->init_pt, kva, page, VMS_PG_4K, prot, err);
    if (st != VMS_OK) {
        prune_tables(k, kva);
        return st;
    }
    sync_pgd(k, kva); /* a new top-level kernel entry reaches every existing root */
    st = vmsi_hash_map_kernel(k, kva, err); /* hashed designs: bolted (src/os/mm/hashfill.c) */
    if (st != VMS_OK) {
        vms_pt_unmap(&k->init_pt, kva, true, NULL);
        return st;
    }
    D->ioremap[D->nioremap++] = (ioremap_ref){page, 1};
    return VMS_OK;
}

/* Copy init_mm's top-level entry for kva into every process's root (sync_global_pgds). */
static void sync_pgd(vms_kernel *k, uint64_t kva)
{
    uint64_t e = 0;
    vms_pt_read(&k->init_pt, vms_fmt_entry_pa(k->fmt, k->init_pt.root, kva, k->levels), &e);
    for (unsigned i = 0; i < k->nprocs; i++) {
        vmsi_mm *mm = k->procs[i]->mm;
        if (mm)
            vms_pt_write(&mm->pt, vms_fmt_entry_pa(k->fmt, mm->pt.root, kva, k->levels), e);
    }
}

/*
 * Drop a reference; the last one clears the PTE and frees the tables it leaves empty
 * (Linux keeps them; we give them back so that a detached machine has every frame free
 * again). A freed table may sit in a page-walk cache, so every core then flushes
 * everything, globals included (INVPCID type 2), as flush_tlb_kernel_range would.
 */
static void iounmap_page(vms_kernel *k, uint64_t page)
{
    vmsi_dma *D = k->dma;
    for (unsigned i = 0; i < D->nioremap; i++) {
        if (D->ioremap[i].page != page || --D->ioremap[i].refs)
            continue;
        uint64_t kva = ioremap_base(k) + page;
        vms_pt_unmap(&k->init_pt, kva, true, NULL);
        sync_pgd(k, kva);
        vmsi_hash_unmap_kernel(k, kva);
        for (unsigned c = 0; c < k->ncores; c++)
            vms_core_mmu_flush_all(vmsi_core(k, c));
        D->ioremap[i] = D->ioremap[--D->nioremap];
        return;
    }
}

static void handle_irq(vms_dma_dev *d);

/* A 32-bit register access by the driver on core 0, supervisor mode. false on a fault
 * or bus error (the window is mapped, so that is a kernel bug or a missing device). */
static bool reg_access(vms_dma_dev *d, unsigned off, bool write, uint32_t *val)
{
    vms_kernel *k = d->k;
    vms_core *c = vmsi_core(k, 0);
    vms_core_set_user(c, false);
    bool nested = d->in_mmio;
    d->in_mmio = true;
    vms_access_result r = vms_core_access(c, ioremap_base(k) + d->mmio_pa + off,
                                          write ? VMS_ACC_WRITE : VMS_ACC_READ, val, 4);
    d->in_mmio = nested;
    if (write)
        k->dma->st.mmio_writes++;
    else
        k->dma->st.mmio_reads++;
    if (!nested && d->irq_pending) {
        d->irq_pending = false;
        handle_irq(d);
    }
    return r.ok;
}

static void reg_write(vms_dma_dev *d, unsigned off, uint32_t v)
{
    reg_access(d, off, true, &v);
}

static uint32_t reg_read(vms_dma_dev *d, unsigned off)
{
    uint32_t v = 0;
    return reg_access(d, off, false, &v) ? v : 0;
}

/* ---- interrupts ---------------------------------------------------------------------- */

/* NIC: complete every descriptor the NIC has written back (DD), packet by packet. */
static void nic_clean_rx(vms_dma_dev *d)
{
    vms_kernel *k = d->k;
    bool first = true;
    for (unsigned n = 0; n < VMSI_NIC_RING && d->clean != d->tail; n++) {
        uint64_t pa = d->ring_pa + (uint64_t)d->clean * VMS_NIC_DESC_LEN;
        uint8_t raw[VMS_NIC_DESC_LEN];
        vms_nic_desc desc;
        vms_ram_read(k->ram, pa, raw, sizeof raw);
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
        vms_ram_fill(k->ram, pa, 0, VMS_NIC_DESC_LEN);
        d->clean = (d->clean + 1) % VMSI_NIC_RING;
    }
}

static void handle_irq(vms_dma_dev *d)
{
    vms_kernel *k = d->k;
    k->dma->st.irqs++;
    d->st.irqs++;
    if (d->nic) {
        uint32_t icr = reg_read(d, VMS_NIC_ICR);
        nic_clean_rx(d);
        if (icr & (VMS_NIC_ICR_DMAE | VMS_NIC_ICR_RXO)) {
            d->st.rx_errors++;
            vmsi_log(k, VMS_LOG_WARNING, "%s: %s, packet dropped", vms_dev_name(d->dev),
                     icr & VMS_NIC_ICR_DMAE ? "receive DMA error" : "receive overrun");
        }
    } else if (d->blk) {
        reg_read(d, VMS_BLK_ICR);
        d->st.last_blk_status = reg_read(d, VMS_BLK_STATUS);
    }
    vms_dma_poll_faults(k);
}

/* vms_dev_irq_fn: the top half. Inside a driver's own register access the work is
 * deferred to the end of that access (the device is busy in its callback). */
static void irq_hook(void *ud, vms_dev *dev, unsigned core, uint8_t vector)
{
    vms_dma_dev *d = ud;
    (void)dev;
    (void)core;
    (void)vector;
    if (d->in_mmio)
        d->irq_pending = true;
    else
        handle_irq(d);
}

/* ---- domains ------------------------------------------------------------------------- */

static vms_status dom_alloc_table(void *ud, uint64_t *pa)
{
    vms_dma_dev *d = ud;
    uint64_t pfn = 0;
    vms_status st = vmsi_alloc_table_frame(d->k, &pfn);
    *pa = pfn << VMS_PAGE_SHIFT;
    if (st == VMS_OK) {
        d->table_pages++;
        d->k->dma->st.table_pages++;
    }
    return st;
}

static void dom_free_table(void *ud, uint64_t pa)
{
    vms_dma_dev *d = ud;
    uint64_t pfn = pa >> VMS_PAGE_SHIFT;
    vms_frames_set_flags(d->k->fr, pfn, 0, VMS_FRAME_PAGETABLE);
    vms_frames_put(d->k->fr, pfn, NULL);
    d->table_pages--;
    d->k->dma->st.table_pages--;
}

bool vms_dma_translated(const vms_dma_dev *d)
{
    vms_iommu *io = vms_dev_iommu(d->dev);
    return io && vms_iommu_enabled(io) && d->mode == VMS_DMA_TRANSLATE;
}

/* Give d its context: a fresh domain (id + tables) or passthrough. */
static vms_status dom_init(vms_dma_dev *d, vms_err *err)
{
    vms_kernel *k = d->k;
    vms_iommu *io = vms_dev_iommu(d->dev);
    if (!io)
        return VMS_OK;
    vms_iommu_context ctx = {VMS_IOMMU_PASSTHROUGH, 0, 0, 0};
    if (d->mode == VMS_DMA_TRANSLATE) {
        unsigned did = 1;
        while (did <= VMS_IOMMU_MAX_DID && k->dma->did_used[did])
            did++;
        if (did > VMS_IOMMU_MAX_DID)
            return vmsi_err(err, VMS_ERR_NOTFOUND, "dma: no free IOMMU domain id");
        vms_pt_ops ops = {dom_alloc_table, dom_free_table, d};
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

static void dom_fini(vms_dma_dev *d)
{
    vms_iommu *io = vms_dev_iommu(d->dev);
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

/* ---- IOVA allocation: first fit over the device's sorted mappings --------------------- */

static bool iova_alloc(const vms_dma_dev *d, uint64_t npages, uint64_t *iova, size_t *pos)
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

/* ---- mappings ------------------------------------------------------------------------ */

static void dmap_free(vms_kernel *k, dmap *m)
{
    vmsi_free(k->a, m->pfns, m->npages * sizeof *m->pfns);
    vmsi_free(k->a, m->segs, m->npages * sizeof *m->segs);
}

/* Clear the IOMMU entries of m's first n pages and invalidate them. */
static void iommu_clear(vms_dma_dev *d, const dmap *m, uint64_t n, unsigned core)
{
    vms_kernel *k = d->k;
    if (!m->translated || !n)
        return;
    for (uint64_t i = 0; i < n; i++)
        if (vms_pt_unmap(&d->pt, m->iova + (i << VMS_PAGE_SHIFT), true, NULL) == VMS_OK)
            k->dma->st.iommu_ptes_cleared++;
    charge(k, core, (uint64_t)k->dma->cost.unmap_page * n);
    /* Always, even for entries a device never used: no caller sees a stale IOTLB entry. */
    vms_iommu_inv_range(vms_dev_iommu(d->dev), d->did, m->iova, n << VMS_PAGE_SHIFT);
    k->dma->st.iotlb_invalidations++;
    charge(k, core, k->dma->cost.iotlb_inv);
}

/* Release the pins of m's first n pages (marking device-written file pages dirty). */
static void unpin_pages(vms_kernel *k, const dmap *m, uint64_t n, unsigned core)
{
    if (m->kernel)
        return;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t pfn = m->pfns[i];
        if (pfn == k->zero_pfn)
            continue;
        vms_frame *f = vms_frames_meta(k->fr, pfn);
        uint64_t head;
        vms_frames_head(k->fr, pfn, &head, NULL);
        f = vms_frames_meta(k->fr, head);
        if (m->dir != VMS_DMA_TO_DEVICE && (f->flags & VMS_FRAME_FILE))
            vms_frames_set_flags(k->fr, head, VMS_FRAME_DIRTY, 0);
        if (f->refcount == 1) /* the last reference: off the replacement policy first */
            vmsi_lru_del(k, head);
        vms_frames_unpin(k->fr, pfn, NULL);
        k->dma->st.unpins++;
        k->dma->st.pinned_pages--;
    }
    charge(k, core, (uint64_t)k->dma->cost.unpin_page * n);
}

/* Check that every page of [va, va+len) is in a VMA allowing dir's accesses. */
static vms_status check_vmas(vmsi_mm *mm, uint64_t va, uint64_t len, vms_dma_dir dir, vms_err *err)
{
    uint64_t end = va + len;
    for (uint64_t a = va & ~VMS_PAGE_MASK; a < end;) {
        vmsi_vma *v = vmsi_vma_lookup(mm, a);
        if (!v)
            return vmsi_err(err, VMS_ERR_RANGE, "dma map: 0x%" PRIx64 " is not mapped", a);
        bool need_r = dir != VMS_DMA_FROM_DEVICE, need_w = dir != VMS_DMA_TO_DEVICE;
        if ((need_r && !(v->prot & VMS_PROT_READ)) || (need_w && !(v->prot & VMS_PROT_WRITE)))
            return vmsi_err(err, VMS_ERR_RANGE,
                            "dma map: 0x%" PRIx64 " does not allow the device to %s", a,
                            need_w && !(v->prot & VMS_PROT_WRITE) ? "write" : "read");
        a = v->end;
    }
    return VMS_OK;
}

/* The 4 KiB pfn mapping va in mm, or 0 when not present. */
static uint64_t user_pfn(vmsi_mm *mm, uint64_t va)
{
    vmsi_vma *v = vmsi_vma_lookup(mm, va);
    if (!v)
        return 0;
    vms_pgsize size = vmsi_vma_pgsize(v);
    uint64_t base = va & ~(vms_pgsize_bytes(size) - 1), ptep = 0;
    vmsi_pte_slot(mm, base, size, false, &ptep, NULL);
    uint64_t pte = ptep ? vmsi_pte_get(mm, ptep) : 0;
    if (!vmsi_pte_present(mm->k, pte)) /* the CPU's tables: the machine's format */
        return 0;
    return vmsi_pte_pfn(mm->k, pte) + ((va - base) >> VMS_PAGE_SHIFT);
}

/* Fault in and pin every page of m (m->va, m->npages); on failure unpin what was pinned. */
static vms_status pin_user(vms_kernel *k, vms_task *t, dmap *m, vms_err *err)
{
    uint64_t start = m->va & ~VMS_PAGE_MASK, end = start + (m->npages << VMS_PAGE_SHIFT);
    vmsi_fault_ret r = vmsi_populate(k, t, start, end);
    if (r == VMSI_FAULT_NOMEM)
        return vmsi_err(err, VMS_ERR_NOMEM, "dma map: out of host memory faulting in");
    if (r == VMSI_FAULT_OOM)
        return vmsi_err(err, VMS_ERR_NOTFOUND, "dma map: out of frames faulting in");
    if (r != VMSI_FAULT_DONE)
        return vmsi_err(err, VMS_ERR_RANGE, "dma map: the buffer cannot be faulted in");
    for (uint64_t i = 0; i < m->npages; i++) {
        uint64_t pfn = user_pfn(t->proc->mm, start + (i << VMS_PAGE_SHIFT));
        if (!pfn) {
            unpin_pages(k, m, i, t->core);
            return vmsi_err(err, VMS_ERR_RANGE, "dma map: page 0x%" PRIx64 " not present",
                            start + (i << VMS_PAGE_SHIFT));
        }
        m->pfns[i] = pfn;
        if (pfn == k->zero_pfn)
            continue; /* never pinned (Linux's gup skips the shared zero page) */
        vms_frames_pin(k->fr, pfn);
        k->dma->st.pins++;
        k->dma->st.pinned_pages++;
    }
    charge(k, t->core, (uint64_t)k->dma->cost.pin_page * m->npages);
    return VMS_OK;
}

/* Physical segments of m: runs of contiguous frames. */
static void phys_segments(dmap *m)
{
    uint64_t off = m->va & VMS_PAGE_MASK, left = m->len;
    m->nsegs = 0;
    for (uint64_t i = 0; i < m->npages; i++) {
        uint64_t pa = (m->pfns[i] << VMS_PAGE_SHIFT) + off;
        uint64_t n = VMS_PAGE_SIZE - off < left ? VMS_PAGE_SIZE - off : left;
        vms_dma_seg *last = m->nsegs ? &m->segs[m->nsegs - 1] : NULL;
        if (last && last->addr + last->len == pa)
            last->len += n;
        else
            m->segs[m->nsegs++] = (vms_dma_seg){pa, n};
        left -= n;
        off = 0;
    }
    m->dma_addr = m->segs[0].addr;
}

/* Write m's IOMMU entries at m->iova; on failure clear what was written. */
static vms_status iommu_fill(vms_dma_dev *d, dmap *m, unsigned core, vms_err *err)
{
    vms_kernel *k = d->k;
    uint64_t flags = (m->dir != VMS_DMA_FROM_DEVICE ? VMS_PTE_US : 0) |
                     (m->dir != VMS_DMA_TO_DEVICE ? VMS_PTE_RW : 0);
    for (uint64_t i = 0; i < m->npages; i++) {
        vms_status st = vms_pt_map(&d->pt, m->iova + (i << VMS_PAGE_SHIFT),
                                   m->pfns[i] << VMS_PAGE_SHIFT, VMS_PG_4K, flags, err);
        if (st != VMS_OK) {
            iommu_clear(d, m, i, core);
            if (st == VMS_ERR_NOTFOUND || st == VMS_ERR_NOMEM) /* table frame: no RAM/host */
                return vmsi_err(err, st, "dma map: no frame for an IOMMU table");
            return st;
        }
        k->dma->st.iommu_ptes_set++;
    }
    charge(k, core, (uint64_t)k->dma->cost.map_page * m->npages);
    m->segs[0] = (vms_dma_seg){m->iova + (m->va & VMS_PAGE_MASK), m->len};
    m->nsegs = 1;
    m->dma_addr = m->segs[0].addr;
    return VMS_OK;
}

/* Insert m into d's sorted array at pos (translated) or at the end. */
static vms_status insert_map(vms_dma_dev *d, const dmap *m, size_t pos, vms_err *err)
{
    vms_kernel *k = d->k;
    if (d->nmaps == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        dmap *n = k->a->realloc(k->a->ud, d->maps, d->cap * sizeof *n, cap * sizeof *n);
        if (!n)
            return vmsi_err(err, VMS_ERR_NOMEM, "dma map: out of host memory");
        d->maps = n;
        d->cap = cap;
    }
    memmove(&d->maps[pos + 1], &d->maps[pos], (d->nmaps - pos) * sizeof *m);
    d->maps[pos] = *m;
    d->nmaps++;
    return VMS_OK;
}

/*
 * The common half of map: m has va, len, npages, dir and pfns filled (pinned unless
 * kernel). Give it IOVAs and IOMMU entries (translated) or physical segments, and
 * record it. On failure the caller still owns the pins.
 */
static vms_status map_pages(vms_dma_dev *d, dmap *m, unsigned core, vms_err *err)
{
    size_t pos = d->nmaps;
    m->translated = vms_dma_translated(d);
    if (!m->translated) {
        phys_segments(m);
    } else {
        if (!iova_alloc(d, m->npages, &m->iova, &pos))
            return vmsi_err(err, VMS_ERR_NOTFOUND, "dma map: %s: out of IOVA space",
                            vms_dev_name(d->dev));
        vms_status st = iommu_fill(d, m, core, err);
        if (st != VMS_OK)
            return st;
    }
    vms_status st = insert_map(d, m, pos, err);
    if (st != VMS_OK) {
        iommu_clear(d, m, m->npages, core);
        return st;
    }
    if (m->translated)
        d->k->dma->st.iova_pages += m->npages;
    d->st.mapped_pages += m->npages;
    return VMS_OK;
}

static vms_status dmap_alloc(vms_kernel *k, dmap *m, vms_err *err)
{
    m->pfns = vmsi_calloc(k->a, m->npages, sizeof *m->pfns);
    m->segs = vmsi_calloc(k->a, m->npages, sizeof *m->segs);
    if (!m->pfns || !m->segs) {
        dmap_free(k, m);
        return vmsi_err(err, VMS_ERR_NOMEM, "dma map: out of host memory");
    }
    return VMS_OK;
}

vms_status vms_dma_map(vms_kernel *k, vms_dma_dev *d, vms_task *t, uint64_t va, uint64_t len,
                       vms_dma_dir dir, uint64_t *dma_addr, vms_err *err)
{
    *dma_addr = 0;
    if (!t || !t->proc->mm || !len || va + len < va || va + len > vmsi_task_size(k) ||
        (unsigned)dir > VMS_DMA_FROM_DEVICE) {
        k->dma->st.map_failures++;
        return vmsi_err(err, VMS_ERR_INVAL, "dma map: %s",
                        !t || !t->proc->mm ? "the task is not running" : "bad range or direction");
    }
    dmap m = {.va = va, .len = len, .dir = dir, .pid = t->proc->pid};
    memcpy(m.comm, t->proc->name, sizeof m.comm);
    m.npages =
        (((va + len + VMS_PAGE_MASK) & ~VMS_PAGE_MASK) - (va & ~VMS_PAGE_MASK)) >> VMS_PAGE_SHIFT;
    vmsi_charge(k, t->core, k->cfg.cost.syscall);
    vms_status st = check_vmas(t->proc->mm, va, len, dir, err);
    if (st == VMS_OK)
        st = dmap_alloc(k, &m, err);
    if (st != VMS_OK) {
        k->dma->st.map_failures++;
        return st;
    }
    st = pin_user(k, t, &m, err);
    if (st == VMS_OK) {
        st = map_pages(d, &m, t->core, err);
        if (st != VMS_OK)
            unpin_pages(k, &m, m.npages, t->core);
    }
    if (st != VMS_OK) {
        dmap_free(k, &m);
        k->dma->st.map_failures++;
        vms_dma_poll_faults(k);
        return st;
    }
    k->dma->st.maps++;
    d->st.maps++;
    *dma_addr = m.dma_addr;
    /* dma_map_single: the device owns the buffer now; clean the CPU's dirty lines. */
    (void)vms_dma_sync_for_device(k, d, m.dma_addr, m.len, NULL, NULL);
    vms_dma_poll_faults(k);
    return VMS_OK;
}

/* ---- cache maintenance for non-coherent devices (Linux kernel/dma/direct.h) ---------- */

/*
 * Clean (for the device) or invalidate (for the CPU) the caches over the bytes
 * [dma_addr, dma_addr + len) of mapping m, page piece by page piece, as
 * arch_sync_dma_for_device / arch_sync_dma_for_cpu do by physical address. Byte o of a
 * mapping is the byte at va + o (its segments follow the buffer in order). Returns the
 * cache lines affected.
 */
static uint64_t sync_range(vms_kernel *k, const dmap *m, uint64_t dma_addr, uint64_t len,
                           bool for_cpu)
{
    uint64_t off = 0, n = 0;
    for (size_t s = 0; s < m->nsegs; s++) {
        if (dma_addr >= m->segs[s].addr && dma_addr - m->segs[s].addr < m->segs[s].len) {
            off += dma_addr - m->segs[s].addr;
            break;
        }
        off += m->segs[s].len;
    }
    if (off >= m->len)
        return 0;
    if (len > m->len - off)
        len = m->len - off;
    while (len) {
        uint64_t va = m->va + off, in_page = VMS_PAGE_SIZE - (va & VMS_PAGE_MASK);
        uint64_t piece = len < in_page ? len : in_page;
        uint64_t idx = (va >> VMS_PAGE_SHIFT) - (m->va >> VMS_PAGE_SHIFT);
        uint64_t pa = m->pfns[idx] << VMS_PAGE_SHIFT | (va & VMS_PAGE_MASK);
        n += for_cpu ? vms_machine_cache_invalidate(k->m, pa, piece)
                     : vms_machine_cache_clean(k->m, pa, piece);
        off += piece;
        len -= piece;
    }
    return n;
}

/* dma_sync_single_for_{device,cpu}: nothing for a coherent device (dev_is_dma_coherent);
 * for the CPU nothing when the device only read (DMA_TO_DEVICE). */
static vms_status dma_sync(vms_kernel *k, vms_dma_dev *d, uint64_t dma_addr, uint64_t len,
                           bool for_cpu, uint64_t *lines, vms_err *err)
{
    if (lines)
        *lines = 0;
    long i = -1;
    for (size_t j = 0; j < d->nmaps && i < 0; j++)
        for (size_t s = 0; s < d->maps[j].nsegs; s++)
            if (dma_addr >= d->maps[j].segs[s].addr &&
                dma_addr - d->maps[j].segs[s].addr < d->maps[j].segs[s].len)
                i = (long)j;
    if (i < 0)
        return vmsi_err(err, VMS_ERR_NOTFOUND, "dma sync: %s has no mapping at 0x%" PRIx64,
                        vms_dev_name(d->dev), dma_addr);
    const dmap *m = &d->maps[i];
    if (vms_dev_coherent(d->dev) || (for_cpu && m->dir == VMS_DMA_TO_DEVICE))
        return VMS_OK;
    uint64_t n = sync_range(k, m, dma_addr, len, for_cpu);
    if (lines)
        *lines = n;
    return VMS_OK;
}

vms_status vms_dma_sync_for_device(vms_kernel *k, vms_dma_dev *d, uint64_t dma_addr, uint64_t len,
                                   uint64_t *lines, vms_err *err)
{
    return dma_sync(k, d, dma_addr, len, false, lines, err);
}

vms_status vms_dma_sync_for_cpu(vms_kernel *k, vms_dma_dev *d, uint64_t dma_addr, uint64_t len,
                                uint64_t *lines, vms_err *err)
{
    return dma_sync(k, d, dma_addr, len, true, lines, err);
}

/* Remove mapping i of d: clear, invalidate, unpin, free. */
static void unmap_at(vms_dma_dev *d, size_t i, unsigned core)
{
    vms_kernel *k = d->k;
    dmap m = d->maps[i];
    memmove(&d->maps[i], &d->maps[i + 1], (d->nmaps - i - 1) * sizeof m);
    d->nmaps--;
    iommu_clear(d, &m, m.npages, core);
    if (m.translated)
        k->dma->st.iova_pages -= m.npages;
    d->st.mapped_pages -= m.npages;
    unpin_pages(k, &m, m.npages, core);
    if (m.kernel && m.pfns[0]) {
        vms_frames_set_flags(k->fr, m.pfns[0], 0, VMS_FRAME_KERNEL);
        vms_frames_put(k->fr, m.pfns[0], NULL);
    }
    dmap_free(k, &m);
}

static long find_map(const vms_dma_dev *d, uint64_t dma_addr, bool containing)
{
    for (size_t i = 0; i < d->nmaps; i++) {
        const dmap *m = &d->maps[i];
        if (!containing && m->dma_addr == dma_addr && !m->kernel)
            return (long)i;
        for (size_t s = 0; containing && s < m->nsegs; s++)
            if (dma_addr >= m->segs[s].addr && dma_addr - m->segs[s].addr < m->segs[s].len)
                return (long)i;
    }
    return -1;
}

vms_status vms_dma_unmap(vms_kernel *k, vms_dma_dev *d, uint64_t dma_addr, vms_err *err)
{
    long i = find_map(d, dma_addr, false);
    if (i < 0)
        return vmsi_err(err, VMS_ERR_NOTFOUND, "dma unmap: %s has no mapping at 0x%" PRIx64,
                        vms_dev_name(d->dev), dma_addr);
    /* dma_unmap_single: the CPU owns the buffer again; drop its stale lines. */
    (void)vms_dma_sync_for_cpu(k, d, dma_addr, d->maps[i].len, NULL, NULL);
    unmap_at(d, (size_t)i, 0);
    k->dma->st.unmaps++;
    d->st.unmaps++;
    vms_dma_poll_faults(k);
    return VMS_OK;
}

size_t vms_dma_segments(const vms_dma_dev *d, uint64_t dma_addr, vms_dma_seg *out, size_t max)
{
    long i = find_map(d, dma_addr, true);
    if (i < 0)
        return 0;
    const dmap *m = &d->maps[i];
    for (size_t s = 0; s < m->nsegs && s < max; s++)
        out[s] = m->segs[s];
    return m->nsegs;
}

size_t vms_dma_mapping_count(const vms_dma_dev *d)
{
    size_t n = 0;
    for (size_t i = 0; i < d->nmaps; i++)
        n += !d->maps[i].kernel;
    return n;
}

/* ---- attach / detach ----------------------------------------------------------------- */

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

/* A kernel buffer for the device (dma_alloc_coherent): one zeroed frame flagged KERNEL,
 * mapped bidirectionally. */
static vms_status alloc_coherent(vms_dma_dev *d, uint64_t *pa, uint64_t *dma, vms_err *err)
{
    vms_kernel *k = d->k;
    dmap m = {.len = VMS_PAGE_SIZE, .npages = 1, .dir = VMS_DMA_BIDIRECTIONAL, .kernel = true};
    memcpy(m.comm, "kernel", 7);
    vms_status st = dmap_alloc(k, &m, err);
    if (st != VMS_OK)
        return st;
    st = vmsi_alloc_table_frame(k, &m.pfns[0]); /* zeroed, host bytes present */
    if (st != VMS_OK) {
        dmap_free(k, &m);
        return vmsi_err(err, st, "dma: no frame for a coherent buffer");
    }
    vms_frames_set_flags(k->fr, m.pfns[0], VMS_FRAME_KERNEL, VMS_FRAME_PAGETABLE);
    st = map_pages(d, &m, 0, err);
    if (st != VMS_OK) {
        vms_frames_set_flags(k->fr, m.pfns[0], 0, VMS_FRAME_KERNEL);
        vms_frames_put(k->fr, m.pfns[0], NULL);
        dmap_free(k, &m);
        return st;
    }
    *pa = m.pfns[0] << VMS_PAGE_SHIFT;
    *dma = m.dma_addr;
    return VMS_OK;
}

static vms_status nic_probe(vms_dma_dev *d, vms_err *err)
{
    vms_status st = alloc_coherent(d, &d->ring_pa, &d->ring_dma, err);
    if (st != VMS_OK)
        return st;
    reg_write(d, VMS_NIC_CTRL, VMS_NIC_CTRL_RST);
    reg_write(d, VMS_NIC_RBSZ, VMSI_NIC_RBSZ);
    reg_write(d, VMS_NIC_RDBAL, (uint32_t)d->ring_dma);
    reg_write(d, VMS_NIC_RDBAH, (uint32_t)(d->ring_dma >> 32));
    reg_write(d, VMS_NIC_RDLEN, VMSI_NIC_RING * VMS_NIC_DESC_LEN);
    reg_write(d, VMS_NIC_IMS, VMS_NIC_ICR_RXT0 | VMS_NIC_ICR_RXO | VMS_NIC_ICR_DMAE);
    reg_write(d, VMS_NIC_IVEC, vms_dev_ivec(0, (uint8_t)(VMSI_IRQ_VECTOR + d->index)));
    reg_write(d, VMS_NIC_CTRL, VMS_NIC_CTRL_RXEN);
    return VMS_OK;
}

static vms_status blk_probe(vms_dma_dev *d)
{
    reg_write(d, VMS_BLK_IMS, VMS_BLK_ICR_DONE | VMS_BLK_ICR_ERR);
    reg_write(d, VMS_BLK_IVEC, vms_dev_ivec(0, (uint8_t)(VMSI_IRQ_VECTOR + d->index)));
    return VMS_OK;
}

static vms_status add_dev(vms_kernel *k, vms_dma_dev *d, vms_err *err)
{
    vmsi_dma *D = k->dma;
    if (D->ndevs == D->cap) {
        size_t cap = D->cap ? D->cap * 2 : 4;
        vms_dma_dev **n = k->a->realloc(k->a->ud, D->devs, D->cap * sizeof *n, cap * sizeof *n);
        if (!n)
            return vmsi_err(err, VMS_ERR_NOMEM, "dma attach: out of host memory");
        D->devs = n;
        D->cap = cap;
    }
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
    if (!dma_state(k))
        return vmsi_err(err, VMS_ERR_NOMEM, "dma attach: out of host memory");
    vmsi_dma *D = k->dma;
    vms_iommu *io = vms_dev_iommu(dev);
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
    st = dom_init(d, err);
    if (st == VMS_OK && (nic || blk)) {
        d->mmio_pa = vms_dev_mmio_base(dev);
        d->mmio_len = nic ? VMS_NIC_MMIO_LEN : VMS_BLK_MMIO_LEN;
        st = ioremap_page(k, d->mmio_pa & ~VMS_PAGE_MASK, err);
        if (st != VMS_OK)
            d->mmio_len = 0;
    }
    if (st == VMS_OK) {
        vms_dev_set_irq_hook(dev, irq_hook, d);
        if (!nic && !blk)
            st = vms_dev_set_irq(dev, 0, (uint8_t)(VMSI_IRQ_VECTOR + d->index));
    }
    if (st == VMS_OK)
        st = nic ? nic_probe(d, err) : blk ? blk_probe(d) : VMS_OK;
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
        reg_write(d, VMS_NIC_CTRL, VMS_NIC_CTRL_RST); /* quiesce before the ring goes */
    if (d->mmio_len && (d->nic || d->blk))
        reg_write(d, d->nic ? VMS_NIC_IMS : VMS_BLK_IMS, 0);
    vms_dev_set_irq_hook(d->dev, NULL, NULL);
    while (d->nmaps)
        unmap_at(d, d->nmaps - 1, 0);
    if (d->mmio_len)
        iounmap_page(k, d->mmio_pa & ~VMS_PAGE_MASK);
    dom_fini(d);
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
    if (!dma_state(k))
        return vmsi_err(err, VMS_ERR_NOMEM, "iommu: out of host memory");
    vmsi_dma *D = k->dma;
    if (D->io && io != D->io)
        return vmsi_err(err, VMS_ERR_UNSUPPORTED, "iommu: the kernel drives another IOMMU");
    for (size_t i = 0; i < D->ndevs; i++)
        if (D->devs[i]->nmaps && vms_dev_iommu(D->devs[i]->dev))
            return vmsi_err(err, VMS_ERR_INVAL,
                            "iommu: %s has live DMA mappings (unmap or detach it first)",
                            vms_dev_name(D->devs[i]->dev));
    D->io = io;
    vms_iommu_set_enabled(io, on);
    vms_iommu_inv_global(io);
    vmsi_log(k, VMS_LOG_INFO, "DMAR: IOMMU %s", on ? "enabled" : "disabled");
    return VMS_OK;
}

/* ---- drivers ------------------------------------------------------------------------- */

vms_status vms_dma_nic_post(vms_kernel *k, vms_dma_dev *d, uint64_t dma_addr, unsigned *nbufs,
                            vms_err *err)
{
    if (nbufs)
        *nbufs = 0;
    if (!d->nic || !d->mmio_len)
        return vmsi_err(err, VMS_ERR_INVAL, "nic post: %s is not an attached NIC",
                        vms_dev_name(d->dev));
    long i = find_map(d, dma_addr, true);
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
            vms_ram_write(k->ram, d->ring_pa + (uint64_t)d->tail * VMS_NIC_DESC_LEN, raw,
                          sizeof raw);
            d->tail = (d->tail + 1) % VMSI_NIC_RING;
        }
    }
    d->st.rx_posted += n;
    reg_write(d, VMS_NIC_RDT, d->tail);
    if (nbufs)
        *nbufs = n;
    vms_dma_poll_faults(k);
    return VMS_OK;
}

/* One block command; returns the STATUS after it. */
static uint32_t blk_cmd(vms_dma_dev *d, bool write, uint64_t sector, uint32_t count, uint64_t addr)
{
    d->st.last_blk_status = 0;
    reg_write(d, VMS_BLK_SECTOR_LO, (uint32_t)sector);
    reg_write(d, VMS_BLK_SECTOR_HI, (uint32_t)(sector >> 32));
    reg_write(d, VMS_BLK_COUNT, count);
    reg_write(d, VMS_BLK_DMA_LO, (uint32_t)addr);
    reg_write(d, VMS_BLK_DMA_HI, (uint32_t)(addr >> 32));
    reg_write(d, VMS_BLK_CMD, write ? VMS_BLK_CMD_WRITE : VMS_BLK_CMD_READ);
    reg_write(d, VMS_BLK_DOORBELL, 1);
    d->st.blk_cmds++;
    /* The interrupt handler read STATUS; without an interrupt, poll it. */
    uint32_t status = d->st.last_blk_status ? d->st.last_blk_status : reg_read(d, VMS_BLK_STATUS);
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
    long i = find_map(d, dma_addr, true);
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

/* ---- views --------------------------------------------------------------------------- */

const vms_dma_stats *vms_dma_get_stats(const vms_kernel *k)
{
    static const vms_dma_stats zero;
    return k->dma ? &k->dma->st : &zero;
}

const vms_dma_dev_stats *vms_dma_dev_get_stats(const vms_dma_dev *d)
{
    return &d->st;
}

static const char *dir_str(vms_dma_dir dir)
{
    return dir == VMS_DMA_TO_DEVICE     ? "to-device"
           : dir == VMS_DMA_FROM_DEVICE ? "from-device"
                                        : "bidirectional";
}

static const char *mode_str(const vms_dma_dev *d)
{
    if (!vms_dev_iommu(d->dev))
        return "no-iommu";
    if (!vms_iommu_enabled(vms_dev_iommu(d->dev)))
        return "iommu-off";
    return d->mode == VMS_DMA_PASSTHROUGH ? "passthrough" : "translate";
}

static void show_map(vms_strbuf *sb, const dmap *m)
{
    if (m->kernel)
        vms_strbuf_printf(sb, "    0x%09" PRIx64 "-0x%09" PRIx64 " %-13s kernel buffer (rx ring)",
                          m->dma_addr, m->dma_addr + m->len, dir_str(m->dir));
    else
        vms_strbuf_printf(sb, "    0x%09" PRIx64 "-0x%09" PRIx64 " %-13s pid %d (%s) va 0x%" PRIx64,
                          m->dma_addr, m->dma_addr + m->len, dir_str(m->dir), m->pid, m->comm,
                          m->va);
    vms_strbuf_printf(sb, " pfn");
    for (uint64_t i = 0; i < m->npages && i < 8; i++)
        vms_strbuf_printf(sb, "%s0x%" PRIx64, i ? "," : " ", m->pfns[i]);
    vms_strbuf_printf(sb, "%s%s\n", m->npages > 8 ? ",…" : "", m->kernel ? "" : " pinned");
    if (!m->translated && m->nsegs > 1)
        for (size_t s = 0; s < m->nsegs; s++)
            vms_strbuf_printf(sb, "      segment 0x%" PRIx64 " len %" PRIu64 "\n", m->segs[s].addr,
                              m->segs[s].len);
}

vms_status vms_dma_show(vms_kernel *k, vms_strbuf *sb)
{
    vmsi_dma *D = k->dma;
    if (!D) {
        vms_strbuf_printf(sb, "no device attached\n");
        return sb->failed ? VMS_ERR_NOMEM : VMS_OK;
    }
    if (D->io) {
        const vms_iommu_stats *is = vms_iommu_get_stats(D->io);
        const vms_tlb_stats *ts = vms_tlb_get_stats(vms_iommu_iotlb(D->io));
        vms_strbuf_printf(sb,
                          "IOMMU %s: %" PRIu64 " translations, IOTLB %" PRIu64 " hits %" PRIu64
                          " misses (%u entries valid), %" PRIu64 " walks reading %" PRIu64
                          " entries, %" PRIu64 " faults, %" PRIu64 " invalidations\n",
                          vms_iommu_enabled(D->io) ? "on" : "off", is->translations, ts->hits,
                          ts->misses, vms_tlb_count(vms_iommu_iotlb(D->io)), is->walks,
                          is->walk_refs, is->faults,
                          is->inv_global + is->inv_domain + is->inv_device + is->inv_range);
    } else {
        vms_strbuf_printf(sb, "no IOMMU\n");
    }
    vms_strbuf_printf(sb,
                      "DMA API: %" PRIu64 " maps, %" PRIu64 " unmaps, %" PRIu64
                      " pages pinned, %" PRIu64 " IOMMU table pages, %" PRIu64 " interrupts\n",
                      D->st.maps, D->st.unmaps, D->st.pinned_pages, D->st.table_pages, D->st.irqs);
    for (size_t i = 0; i < D->ndevs; i++) {
        const vms_dma_dev *d = D->devs[i];
        vms_bdf b = vms_dev_bdf(d->dev);
        vms_strbuf_printf(sb, "%s %02x:%02x.%u %s", vms_dev_name(d->dev), vms_bdf_bus(b),
                          vms_bdf_dev(b), vms_bdf_fn(b), mode_str(d));
        if (d->pt.root)
            vms_strbuf_printf(sb, " domain %u root 0x%" PRIx64 " (%" PRIu64 " table pages)", d->did,
                              d->pt.root, d->table_pages);
        vms_strbuf_printf(sb, ", %zu mapping%s, %" PRIu64 " faults\n", vms_dma_mapping_count(d),
                          vms_dma_mapping_count(d) == 1 ? "" : "s", d->st.iommu_faults);
        for (size_t j = 0; j < d->nmaps; j++)
            show_map(sb, &d->maps[j]);
    }
    return sb->failed ? VMS_ERR_NOMEM : VMS_OK;
}

vms_status vms_dma_stats_json_members(vms_kernel *k, vms_strbuf *sb)
{
    const vms_dma_stats *s = vms_dma_get_stats(k);
    if (sb->len && sb->data[sb->len - 1] != '{' && sb->data[sb->len - 1] != ',')
        vms_strbuf_printf(sb, ",");
    vms_strbuf_printf(
        sb,
        "\"dma\":{\"maps\":%" PRIu64 ",\"unmaps\":%" PRIu64 ",\"map_failures\":%" PRIu64
        ",\"pins\":%" PRIu64 ",\"unpins\":%" PRIu64 ",\"pinned_pages\":%" PRIu64
        ",\"iova_pages\":%" PRIu64 ",\"iommu_ptes_set\":%" PRIu64 ",\"iommu_ptes_cleared\":%" PRIu64
        ",\"iotlb_invalidations\":%" PRIu64 ",\"table_pages\":%" PRIu64 ",\"irqs\":%" PRIu64
        ",\"iommu_faults\":%" PRIu64 ",\"mmio_reads\":%" PRIu64 ",\"mmio_writes\":%" PRIu64
        ",\"cycles\":%" PRIu64 ",\"devices\":[",
        s->maps, s->unmaps, s->map_failures, s->pins, s->unpins, s->pinned_pages, s->iova_pages,
        s->iommu_ptes_set, s->iommu_ptes_cleared, s->iotlb_invalidations, s->table_pages, s->irqs,
        s->iommu_faults, s->mmio_reads, s->mmio_writes, s->cycles);
    for (size_t i = 0; k->dma && i < k->dma->ndevs; i++) {
        const vms_dma_dev *d = k->dma->devs[i];
        vms_bdf b = vms_dev_bdf(d->dev);
        vms_strbuf_printf(
            sb,
            "%s{\"name\":\"%s\",\"bdf\":\"%02x:%02x.%u\",\"mode\":\"%s\",\"domain\":%u,"
            "\"mappings\":%zu,\"mapped_pages\":%" PRIu64 ",\"irqs\":%" PRIu64
            ",\"iommu_faults\":%" PRIu64 ",\"rx_packets\":%" PRIu64 ",\"rx_bytes\":%" PRIu64
            ",\"blk_cmds\":%" PRIu64 "}",
            i ? "," : "", vms_dev_name(d->dev), vms_bdf_bus(b), vms_bdf_dev(b), vms_bdf_fn(b),
            mode_str(d), d->pt.root ? d->did : 0u, vms_dma_mapping_count(d), d->st.mapped_pages,
            d->st.irqs, d->st.iommu_faults, d->st.rx_packets, d->st.rx_bytes, d->st.blk_cmds);
    }
    vms_strbuf_printf(sb, "]}");
    if (k->dma && k->dma->io) {
        vms_strbuf_printf(sb, ",\"iommu\":{");
        vms_iommu_stats_json_members(k->dma->io, sb);
        vms_strbuf_printf(sb, "}");
    }
    return sb->failed ? VMS_ERR_NOMEM : VMS_OK;
}

/* ---- the checker --------------------------------------------------------------------- */

typedef struct leaf_ctx {
    uint64_t n;
} leaf_ctx;

static bool count_leaf(void *ud, uint64_t va, uint64_t ptep, uint64_t pte, vms_pgsize size)
{
    (void)va;
    (void)ptep;
    (void)size;
    if (pte & VMS_PTE_P)
        ((leaf_ctx *)ud)->n++;
    return true;
}

static vms_status check_dev(vms_kernel *k, const vms_dma_dev *d, vms_err *err)
{
    uint64_t pages = 0, prev_end = 0;
    for (size_t i = 0; i < d->nmaps; i++) {
        const dmap *m = &d->maps[i];
        if (!m->translated)
            continue;
        if (m->iova < VMSI_IOVA_BASE || m->iova < prev_end ||
            m->iova + (m->npages << VMS_PAGE_SHIFT) > VMSI_IOVA_LIMIT)
            return vmsi_err(err, VMS_ERR_INVAL, "dma: %s: IOVA 0x%" PRIx64 " overlaps or escapes",
                            vms_dev_name(d->dev), m->iova);
        prev_end = m->iova + (m->npages << VMS_PAGE_SHIFT);
        uint64_t want = (m->dir != VMS_DMA_FROM_DEVICE ? VMS_PTE_US : 0) |
                        (m->dir != VMS_DMA_TO_DEVICE ? VMS_PTE_RW : 0) | VMS_PTE_P;
        for (uint64_t p = 0; p < m->npages; p++) {
            uint64_t pte = 0;
            if (!vms_pt_lookup(&d->pt, m->iova + (p << VMS_PAGE_SHIFT), &pte, NULL, NULL) ||
                vms_pte_pfn(pte) != m->pfns[p] ||
                (pte & (VMS_PTE_P | VMS_PTE_US | VMS_PTE_RW)) != want)
                return vmsi_err(err, VMS_ERR_INVAL,
                                "dma: %s: IOVA 0x%" PRIx64 " not mapped to pfn 0x%" PRIx64
                                " with the direction's rights",
                                vms_dev_name(d->dev), m->iova + (p << VMS_PAGE_SHIFT), m->pfns[p]);
        }
        pages += m->npages;
    }
    if (d->pt.root) {
        leaf_ctx c = {0};
        vms_pt_foreach(&d->pt, 0, UINT64_C(1) << 47, count_leaf, &c);
        if (c.n != pages)
            return vmsi_err(err, VMS_ERR_INVAL,
                            "dma: %s: %" PRIu64 " IOMMU leaves, %" PRIu64 " mapped pages",
                            vms_dev_name(d->dev), c.n, pages);
        if (vms_pt_count_tables(&d->pt) != d->table_pages)
            return vmsi_err(err, VMS_ERR_INVAL, "dma: %s: table pages miscounted",
                            vms_dev_name(d->dev));
    }
    (void)k;
    return VMS_OK;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

vms_status vms_dma_check(vms_kernel *k, vms_err *err)
{
    vmsi_dma *D = k->dma;
    uint64_t n = 0, iova = 0, tables = 0;
    for (size_t i = 0; D && i < D->ndevs; i++) {
        vms_status st = check_dev(k, D->devs[i], err);
        if (st != VMS_OK)
            return st;
        tables += D->devs[i]->table_pages;
        for (size_t j = 0; j < D->devs[i]->nmaps; j++) {
            const dmap *m = &D->devs[i]->maps[j];
            iova += m->translated ? m->npages : 0;
            for (uint64_t p = 0; !m->kernel && p < m->npages; p++)
                n += m->pfns[p] != k->zero_pfn;
        }
    }
    uint64_t *heads = n ? vmsi_calloc(k->a, n, sizeof *heads) : NULL;
    if (n && !heads)
        return vmsi_err(err, VMS_ERR_NOMEM, "dma check: out of host memory");
    size_t h = 0;
    for (size_t i = 0; D && i < D->ndevs; i++)
        for (size_t j = 0; j < D->devs[i]->nmaps; j++) {
            const dmap *m = &D->devs[i]->maps[j];
            for (uint64_t p = 0; !m->kernel && p < m->npages; p++)
                if (m->pfns[p] != k->zero_pfn)
                    vms_frames_head(k->fr, m->pfns[p], &heads[h++], NULL);
        }
    if (h)
        qsort(heads, h, sizeof *heads, cmp_u64);
    vms_status st = VMS_OK;
    uint64_t pinned_frames = 0;
    for (size_t i = 0; i < h && st == VMS_OK;) {
        size_t j = i;
        while (j < h && heads[j] == heads[i])
            j++;
        vms_frame *f = vms_frames_meta(k->fr, heads[i]);
        if (!f || f->pincount != j - i)
            st = vmsi_err(err, VMS_ERR_INVAL, "dma: pfn 0x%" PRIx64 " pinned %u times, %zu by DMA",
                          heads[i], f ? f->pincount : 0, j - i);
        pinned_frames += f ? UINT64_C(1) << f->order : 0;
        i = j;
    }
    vmsi_free(k->a, heads, n * sizeof *heads);
    if (st != VMS_OK)
        return st;
    if (vms_frames_count(k->fr, VMS_FRAME_PINNED) != pinned_frames)
        return vmsi_err(err, VMS_ERR_INVAL, "dma: %" PRIu64 " frames pinned, %" PRIu64 " by DMA",
                        vms_frames_count(k->fr, VMS_FRAME_PINNED), pinned_frames);
    if (D && (D->st.pinned_pages != n || D->st.iova_pages != iova || D->st.table_pages != tables))
        return vmsi_err(err, VMS_ERR_INVAL, "dma: pinned/IOVA/table counters disagree");
    return VMS_OK;
}
