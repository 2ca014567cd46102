/*
 * vmsim/dma.h — the kernel's DMA API (Linux's dma_map_single / dma_unmap_single over
 * pin_user_pages, the intel-iommu driver's domains, ioremap, and two small drivers), the
 * software half of seed 000's "DMA" and "IOMMU" (docs/DEVICES.md, "the life of a DMA
 * from the kernel's side").
 *
 *   vms_dma_attach*  ── a domain per device: domain id, IOMMU tables in RAM (frames from
 *        │              the frame allocator, flagged PAGETABLE), an IOVA allocator; or an
 *        │              identity (passthrough) context; or nothing (no IOMMU)
 *   vms_dma_map ────── fault the buffer in, PIN every page (vms_frames_pin: reclaim and
 *        │              migration must leave it in place), allocate an IOVA range, write
 *        │              the device's IOMMU entries (read: US, write: RW), return the IOVA
 *   device DMA ──────── translated by the IOMMU; blocked attempts are logged by the
 *        │              kernel as "DMAR: [DMA Write NO_PASID] Request device [00:03.0] …"
 *   vms_dma_unmap ──── clear the entries, ALWAYS invalidate the IOTLB for the range (so a
 *                       caller never sees a stale translation), free the IOVAs, unpin
 *
 * DMA addresses. With the device translated (the IOMMU on and the device in its own
 * domain) a mapping is one contiguous IOVA range: the buffer's offset in its first page
 * is kept, as dma_map_single does. Without translation (passthrough, a device outside
 * the IOMMU, or the IOMMU switched off) DMA addresses are physical and a buffer is as
 * many segments as it has physically contiguous runs (dma_map_sg); the mapping is
 * named by its first segment's address.
 *
 * Pinned pages. A pinned page stays the mapping's until it is unmapped, whatever the
 * process does: fork gives the child a copy of a pinned private page instead of sharing
 * it copy-on-write (Linux's page_needs_cow_for_dma), a write fault on a pinned
 * exclusive page reuses it, and munmap/exit leave the frame pinned (and the device's
 * DMA goes to it, no longer to the process) until the unmap. A buffer in a private
 * writable mapping is faulted in for writing, so the pinned page is exclusive (never
 * the zero page or a COW-shared page); the shared zero page itself is never pinned.
 *
 * Register access. A device with registers is mapped into init_mm's ioremap area
 * (0xffffc90000000000 + pa with 4-level paging, 0xffa0000000000000 + pa with 5)
 * supervisor-only with PCD|PWT; a new top-level entry is copied into every process's
 * root (sync_global_pgds). The drivers load and store its registers through core 0's MMU.
 *
 * Interrupts go to core 0 (vector 0x40 + the device's index); the kernel's handler is
 * installed with vms_dev_set_irq_hook. IOMMU faults are collected from the IOMMU's fault
 * log after every DMA-API call and every interrupt, and by vms_dma_poll_faults (the
 * model has no IOMMU fault interrupt): each is one kernel log line, counted per device.
 *
 * Lifetimes: the kernel borrows devices and the IOMMU; detach a device before destroying
 * it (vms_kernel_destroy detaches whatever is still attached, so the hardware must
 * outlive the kernel or be detached first). Costs go to the calling task's core (core 0
 * when there is none).
 */
#ifndef VMSIM_DMA_H
#define VMSIM_DMA_H

#include "vmsim/dev.h"
#include "vmsim/proc.h"

typedef struct vms_dma_dev vms_dma_dev;

/* How the kernel attaches a device. */
typedef enum vms_dma_mode {
    VMS_DMA_TRANSLATE = 0, /* own IOMMU domain (iommu=on): IOVAs, tables, protection */
    VMS_DMA_PASSTHROUGH,   /* identity context (iommu=pt): DMA addresses are physical */
} vms_dma_mode;

/* Direction of a mapping (Linux enum dma_data_direction). */
typedef enum vms_dma_dir {
    VMS_DMA_BIDIRECTIONAL = 0, /* the device reads and writes: IOMMU US|RW */
    VMS_DMA_TO_DEVICE = 1,     /* the device reads memory: US only */
    VMS_DMA_FROM_DEVICE = 2,   /* the device writes memory: RW only */
} vms_dma_dir;

/* One physically (or IOVA-) contiguous piece of a mapping. */
typedef struct vms_dma_seg {
    uint64_t addr; /* DMA address: IOVA, or physical address without translation */
    uint64_t len;
} vms_dma_seg;

/* Cycles charged to the calling core for kernel DMA work. */
typedef struct vms_dma_cost {
    uint32_t pin_page;   /* pinning one 4 KiB page (beyond faulting it in) */
    uint32_t unpin_page; /* unpinning one page */
    uint32_t map_page;   /* writing one IOMMU leaf entry */
    uint32_t unmap_page; /* clearing one IOMMU leaf entry */
    uint32_t iotlb_inv;  /* one IOTLB invalidation command and its wait */
} vms_dma_cost;

typedef struct vms_dma_stats {
    uint64_t maps, unmaps;            /* successful vms_dma_map / vms_dma_unmap */
    uint64_t map_failures;            /* vms_dma_map calls that failed */
    uint64_t pins, unpins;            /* 4 KiB page pins taken and released */
    uint64_t pinned_pages;            /* pins held now */
    uint64_t iova_pages;              /* IOVA pages allocated now (all domains) */
    uint64_t iommu_ptes_set;          /* IOMMU leaf entries written */
    uint64_t iommu_ptes_cleared;      /* … and cleared */
    uint64_t iotlb_invalidations;     /* range invalidations the DMA API issued */
    uint64_t table_pages;             /* IOMMU table frames held now (all domains) */
    uint64_t irqs;                    /* device interrupts handled */
    uint64_t iommu_faults;            /* IOMMU faults reported in the log */
    uint64_t mmio_reads, mmio_writes; /* register accesses by the drivers */
    uint64_t cycles;                  /* cycles charged for DMA-API work */
} vms_dma_stats;

/* Per-device driver counters. */
typedef struct vms_dma_dev_stats {
    uint64_t maps, unmaps;
    uint64_t mapped_pages; /* pages mapped now */
    uint64_t irqs;
    uint64_t iommu_faults;
    uint64_t rx_posted;            /* NIC: receive buffers given to the ring */
    uint64_t rx_packets, rx_bytes; /* NIC: packets completed */
    uint64_t rx_errors;            /* NIC: DMA errors and drops reported by ICR */
    uint64_t last_rx_addr;         /* NIC: DMA address of the last packet's first buffer */
    uint64_t last_rx_len;
    uint64_t blk_cmds, blk_errors; /* block device: commands issued, ended in ERR */
    uint32_t last_blk_status;      /* block device: STATUS after the last command */
} vms_dma_dev_stats;

/*
 * Default costs: pin 100 and unpin 50 cycles per page (get_user_pages' walk and
 * refcounting), 30 per IOMMU entry written or cleared, 500 per IOTLB invalidation
 * (a queued-invalidation descriptor and its wait descriptor).
 */
void vms_dma_cost_default(vms_dma_cost *c);
void vms_dma_set_cost(vms_kernel *k, const vms_dma_cost *c);

/*
 * Attach a device to the kernel. mode is honoured when the device sits behind an IOMMU;
 * a device without one (vms_dev_iommu NULL) always gets physical DMA addresses. Every
 * attached device must use the same IOMMU (the kernel manages one; VMS_ERR_UNSUPPORTED
 * otherwise). TRANSLATE allocates a domain id and a table root; PASSTHROUGH sets an
 * identity context. VMS_ERR_EXISTS if dev is attached already, VMS_ERR_NOTFOUND when no
 * frame or domain id is free, VMS_ERR_NOMEM on host failure (nothing changes).
 * vms_dma_attach_nic / _blk also run the driver's probe: map the register window into
 * init_mm (PCD|PWT), route the interrupt, and for the NIC allocate and map a 256-entry
 * receive ring in kernel memory (RBSZ 256) and enable receive.
 */
vms_status vms_dma_attach(vms_kernel *k, vms_dev *dev, vms_dma_mode mode, vms_dma_dev **out,
                          vms_err *err);
vms_status vms_dma_attach_nic(vms_kernel *k, vms_nic *nic, vms_dma_mode mode, vms_dma_dev **out,
                              vms_err *err);
vms_status vms_dma_attach_blk(vms_kernel *k, vms_blk *blk, vms_dma_mode mode, vms_dma_dev **out,
                              vms_err *err);

/* Unmap every mapping of d (as vms_dma_unmap), quiesce and unmap its registers, free its
 * domain and tables, clear its context, remove the IRQ hook. NULL accepted. */
void vms_dma_detach(vms_kernel *k, vms_dma_dev *d);

/* Detach every device (as vms_dma_detach) and forget the IOMMU: call it before
 * destroying the hardware while the kernel lives on. Counters are kept. */
void vms_dma_detach_all(vms_kernel *k);

/*
 * A domain id of k's IOMMU driver for a device k does not drive itself: a device a
 * hypervisor assigns to a VM (VFIO takes the domain from the host's IOMMU driver), so
 * that no domain of k's own devices shares its IOTLB tag. io becomes k's IOMMU when k
 * drives none yet (its fault log is then k's to read and log); VMS_ERR_UNSUPPORTED if k
 * drives another, VMS_ERR_NOTFOUND when no id is free, VMS_ERR_NOMEM on host failure.
 * vms_dma_domain_free gives it back.
 */
vms_status vms_dma_domain_alloc(vms_kernel *k, vms_iommu *io, uint16_t *did, vms_err *err);
void vms_dma_domain_free(vms_kernel *k, uint16_t did);

/* The domain id of a translated device (0: passthrough or no IOMMU). */
unsigned vms_dma_domain(const vms_dma_dev *d);

/* The attached device of dev, or NULL. */
vms_dma_dev *vms_dma_find(vms_kernel *k, const vms_dev *dev);
vms_dev *vms_dma_device(const vms_dma_dev *d);

/* Whether d's DMA is translated now (IOMMU present and on, and not passthrough). */
bool vms_dma_translated(const vms_dma_dev *d);

/*
 * Switch the machine's IOMMU io on or off (intel_iommu=on/off; VT-d GCMD.TE) and
 * invalidate the whole IOTLB; io becomes the kernel's IOMMU. Refused (VMS_ERR_INVAL)
 * while a device behind it has any mapping (a NIC's ring counts: detach it first),
 * since DMA addresses would change meaning; VMS_ERR_UNSUPPORTED if the kernel already
 * drives another IOMMU.
 */
vms_status vms_dma_iommu_enable(vms_kernel *k, vms_iommu *io, bool on, vms_err *err);

/*
 * dma_map for a user buffer: len bytes (>= 1) at va of t's process, for direction dir.
 * Faults every page in (a write fault in private writable mappings), pins it, allocates
 * IOVAs (translated: page-granular, first fit from 1 MiB, below 2^32 — a 32-bit DMA
 * mask) and writes the IOMMU entries. *dma_addr gets the DMA address of va's byte.
 * Errors (nothing stays pinned or mapped): VMS_ERR_RANGE if part of the range is not
 * mapped or lacks the rights the direction needs (read: PROT_READ, device writes:
 * PROT_WRITE) — Linux's -EFAULT; VMS_ERR_INVAL for len 0 or a dead task;
 * VMS_ERR_NOTFOUND when out of frames (faulting in, tables) or IOVA space; VMS_ERR_NOMEM
 * on host failure.
 */
vms_status vms_dma_map(vms_kernel *k, vms_dma_dev *d, vms_task *t, uint64_t va, uint64_t len,
                       vms_dma_dir dir, uint64_t *dma_addr, vms_err *err);

/*
 * dma_unmap: the mapping of d whose DMA address is dma_addr (as vms_dma_map returned
 * it). Clears the IOMMU entries, invalidates the IOTLB for the range, frees the IOVAs
 * and unpins every page (a page the device may have written is marked dirty).
 * VMS_ERR_NOTFOUND if d has no mapping at dma_addr.
 */
vms_status vms_dma_unmap(vms_kernel *k, vms_dma_dev *d, uint64_t dma_addr, vms_err *err);

/*
 * dma_sync_single_for_device / dma_sync_single_for_cpu for the mapping of d containing
 * dma_addr, over [dma_addr, dma_addr + len) (clipped to the mapping). On a non-coherent
 * device (vms_dev_set_coherent) for_device cleans the CPU caches over the buffer (dirty
 * lines reach DRAM, where the device reads) and for_cpu invalidates them (the CPU's next
 * reads fetch what the device wrote; not for a TO_DEVICE mapping); on a coherent device
 * both do nothing, as Linux's dma-direct. vms_dma_map does for_device and vms_dma_unmap
 * for_cpu themselves; a driver that keeps a mapping across transfers (a NIC's receive
 * buffers) calls them around each one. *lines (may be NULL) gets the cache lines cleaned
 * or invalidated. VMS_ERR_NOTFOUND when no mapping contains dma_addr.
 */
vms_status vms_dma_sync_for_device(vms_kernel *k, vms_dma_dev *d, uint64_t dma_addr, uint64_t len,
                                   uint64_t *lines, vms_err *err);
vms_status vms_dma_sync_for_cpu(vms_kernel *k, vms_dma_dev *d, uint64_t dma_addr, uint64_t len,
                                uint64_t *lines, vms_err *err);

/* The segments of the mapping of d containing dma_addr, from its start, into out[0..max);
 * returns how many the mapping has (0: no mapping contains dma_addr). */
size_t vms_dma_segments(const vms_dma_dev *d, uint64_t dma_addr, vms_dma_seg *out, size_t max);

/* Number of live mappings of d. */
size_t vms_dma_mapping_count(const vms_dma_dev *d);

/*
 * NIC driver: give the receive ring the buffers of the mapping containing dma_addr, from
 * dma_addr to the mapping's end, cut into 256-byte receive buffers (a tail shorter than
 * 256 bytes is not posted), then write RDT. *nbufs (may be NULL) gets the number posted.
 * VMS_ERR_INVAL if d is not a NIC attached with vms_dma_attach_nic, VMS_ERR_NOTFOUND if
 * no mapping contains dma_addr, VMS_ERR_RANGE if the ring has too little room.
 */
vms_status vms_dma_nic_post(vms_kernel *k, vms_dma_dev *d, uint64_t dma_addr, unsigned *nbufs,
                            vms_err *err);

/*
 * Block driver: READ (write = false) or WRITE count sectors from `sector` through the
 * DMA address dma_addr. When dma_addr lies in a mapping of d, the transfer follows the
 * mapping's segments from there (one command per segment; each must hold whole sectors);
 * otherwise one command is issued at dma_addr as given (what a buggy driver would do).
 * *status (may be NULL) gets the STATUS register after the last command. Returns VMS_OK
 * when every command completed without ERR; VMS_ERR_IO (the device's error code in the
 * message) otherwise; VMS_ERR_INVAL if d is not a block device attached with
 * vms_dma_attach_blk or count is 0.
 */
vms_status vms_dma_blk_rw(vms_kernel *k, vms_dma_dev *d, bool write, uint64_t sector,
                          uint32_t count, uint64_t dma_addr, uint32_t *status, vms_err *err);

/* Read the IOMMU's fault log, report each record in the kernel log and clear it.
 * Returns the number reported. */
unsigned vms_dma_poll_faults(vms_kernel *k);

/* Counters: kernel-wide and per device. */
const vms_dma_stats *vms_dma_get_stats(const vms_kernel *k);
const vms_dma_dev_stats *vms_dma_dev_get_stats(const vms_dma_dev *d);

/*
 * A text view (the kind of thing /sys/kernel/debug/iommu shows): the IOMMU's state and
 * IOTLB counters, then per attached device its mode, domain, table root and pages, and
 * every mapping (DMA address range, direction, the process and virtual address it maps,
 * the pinned frames). VMS_ERR_NOMEM if sb could not grow.
 */
vms_status vms_dma_show(vms_kernel *k, vms_strbuf *sb);

/*
 * JSON object members (no braces): "dma": {"maps", "unmaps", "map_failures", "pins",
 * "unpins", "pinned_pages", "iova_pages", "iommu_ptes_set", "iommu_ptes_cleared",
 * "iotlb_invalidations", "table_pages", "irqs", "iommu_faults", "mmio_reads",
 * "mmio_writes", "cycles", "devices": [{"name", "bdf", "mode", "domain", "mappings",
 * "mapped_pages", "irqs", "iommu_faults", "rx_packets", "rx_bytes", "blk_cmds"} …]} and,
 * while the IOMMU exists, "iommu": {vms_iommu_stats_json_members}. Adds a leading comma
 * when sb already holds text not ending in '{' or ','.
 */
vms_status vms_dma_stats_json_members(vms_kernel *k, vms_strbuf *sb);

/*
 * Check the DMA layer's invariants (also run by vms_kernel_check): every frame's
 * pincount equals the number of mapping pages that pin it (nothing else pins); every
 * translated mapping's IOVA pages are mapped in its domain's tables to its pinned frames
 * with exactly the direction's rights, and no other IOMMU leaf exists; IOVA ranges are
 * disjoint; the table-page and IOVA counts agree. VMS_ERR_INVAL names the first
 * violation.
 */
vms_status vms_dma_check(vms_kernel *k, vms_err *err);

#endif
