/*
 * dma_impl.h — the insides of src/os/dev: the kernel's DMA API and IOMMU driver (Linux
 * kernel/dma/mapping.c, mm/gup.c pin_user_pages, drivers/iommu/intel/iommu.c, mm/ioremap.c) and two
 * tiny device drivers (an e1000-like NIC, a block device). See include/vmsim/dma.h for the contract
 * and docs/DEVICES.md for "the life of a DMA from the kernel's side". One file per concern: dma.c
 * (state, fault log), ioremap.c (register access), irq.c, domain.c (domains, IOVA allocation),
 * pin.c, map.c (mappings, syncs), attach.c, nic.c, blk.c (the drivers), view.c, check.c.
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
#ifndef VMSIM_OS_DEV_DMA_IMPL_H
#define VMSIM_OS_DEV_DMA_IMPL_H

#include "os/os_impl.h"
#include "os/dev/dev_impl.h"
#include "os/mm/mm_impl.h"
#include "os/reclaim/reclaim_impl.h"
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
    unsigned index;      /* interrupt vector = VMSI_IRQ_VECTOR + index */
    uint16_t did;        /* translated: domain id */
    vms_pt pt;           /* translated: the domain's tables (pt.root 0: none) */
    vmsi_table_ops tops; /* … their frames (the ops' ud), counted in table_pages */
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

/* ---- dma.c ---- */
/* The kernel's DMA state, created on first use; NULL on host failure. */
vmsi_dma *vmsi_dma_state(vms_kernel *k);
/* The IOMMU in front of d as its kernel sees it: the device's, except for a kernel on a
 * platform (a guest kernel: no virtual IOMMU is modelled, so it sees none, and its DMA
 * addresses are guest-physical, translated by the host's IOMMU with the VM's mappings). */
vms_iommu *vmsi_dma_iommu(const vms_dma_dev *d);
/* Install (fn non-NULL) or remove the kernel's interrupt handler of dev: on the device
 * itself, or through the platform's irq_handler (a hypervisor delivers it). */
void vmsi_dma_set_irq_hook(vms_kernel *k, vms_dev *dev, vms_dev_irq_fn fn, void *ud);
/* Charge core the cycles of DMA work, counted in the DMA stats too. */
void vmsi_dma_charge(vms_kernel *k, unsigned core, uint64_t cycles);

/* ---- ioremap.c ---- */
/* Map the device page `page` uncached in init_mm (one more reference when it is mapped
 * already); VMS_ERR_NOTFOUND past VMSI_MAX_IOREMAP pages or without a table frame. */
vms_status vmsi_ioremap_page(vms_kernel *k, uint64_t page, vms_err *err);
/*
 * Drop a reference; the last one clears the PTE and frees the tables it leaves empty
 * (Linux keeps them; we give them back so that a detached machine has every frame free
 * again). A freed table may sit in a page-walk cache, so every core then flushes
 * everything, globals included (INVPCID type 2), as flush_tlb_kernel_range would.
 */
void vmsi_iounmap_page(vms_kernel *k, uint64_t page);
/* The driver's 32-bit register accesses at offset off of d's window (core 0,
 * supervisor); a read that faults returns 0. An interrupt raised meanwhile is handled
 * at the end of the access. */
void vmsi_dma_reg_write(vms_dma_dev *d, unsigned off, uint32_t v);
uint32_t vmsi_dma_reg_read(vms_dma_dev *d, unsigned off);

/* ---- irq.c ---- */
/* The interrupt handler: read the cause, complete NIC receives or note the block
 * status, then read the IOMMU fault log. */
void vmsi_dma_handle_irq(vms_dma_dev *d);
/* vms_dev_irq_fn: the top half. Inside a driver's own register access the work is
 * deferred to the end of that access (the device is busy in its callback). */
void vmsi_dma_irq_hook(void *ud, vms_dev *dev, unsigned core, uint8_t vector);

/* ---- domain.c ---- */
/* Give d its context: a fresh domain (id + tables) or passthrough. */
vms_status vmsi_dma_dom_init(vms_dma_dev *d, vms_err *err);
/* Undo vmsi_dma_dom_init: clear the context, invalidate and free the domain's tables. */
void vmsi_dma_dom_fini(vms_dma_dev *d);
/* First fit of npages of IOVA in d's sorted mappings: the IOVA and the insert
 * position; false when [VMSI_IOVA_BASE, VMSI_IOVA_LIMIT) has no room. */
bool vmsi_iova_alloc(const vms_dma_dev *d, uint64_t npages, uint64_t *iova, size_t *pos);

/* ---- pin.c ---- */
/* Release the pins of m's first n pages (marking device-written file pages dirty). */
void vmsi_dma_unpin_pages(vms_kernel *k, const dmap *m, uint64_t n, unsigned core);
/* Check that every page of [va, va+len) is in a VMA allowing dir's accesses. */
vms_status vmsi_dma_check_vmas(vmsi_mm *mm, uint64_t va, uint64_t len, vms_dma_dir dir,
                               vms_err *err);
/* Fault in and pin every page of m (m->va, m->npages); on failure unpin what was pinned. */
vms_status vmsi_dma_pin_user(vms_kernel *k, vms_task *t, dmap *m, vms_err *err);

/* ---- map.c ---- */
/* Remove mapping i of d: clear, invalidate, unpin, free. */
void vmsi_dma_unmap_at(vms_dma_dev *d, size_t i, unsigned core);
/* Index of d's mapping returned as dma_addr (containing: whose segments contain it);
 * -1 when none. */
long vmsi_dma_find_map(const vms_dma_dev *d, uint64_t dma_addr, bool containing);
/* A kernel buffer for the device (dma_alloc_coherent): one zeroed frame flagged KERNEL,
 * mapped bidirectionally. */
vms_status vmsi_dma_alloc_coherent(vms_dma_dev *d, uint64_t *pa, uint64_t *dma, vms_err *err);

/* ---- nic.c ---- */
/* NIC: complete every descriptor the NIC has written back (DD), packet by packet. */
void vmsi_nic_clean_rx(vms_dma_dev *d);
/* Bring up an attached NIC: the receive ring, buffer size, interrupt mask and vector. */
vms_status vmsi_nic_probe(vms_dma_dev *d, vms_err *err);

/* ---- blk.c ---- */
/* Bring up an attached block device: interrupt mask and vector. */
vms_status vmsi_blk_probe(vms_dma_dev *d);

#endif
