/*
 * dev_impl.h — the insides of a device, shared by the device framework (dev.c) and the
 * devices built on it (dev_nic.c, dev_blk.c). Nothing outside src/hw uses it.
 *
 * A concrete device embeds a vms_dev as its first member and gives the framework a
 * table of 32-bit register callbacks; the framework turns bus accesses into register
 * accesses (8 bytes = two registers, low first; 1/2 bytes refused), runs DMA through the
 * IOMMU and the bus, and routes interrupts to a core.
 */
#ifndef VMSIM_DEV_IMPL_H
#define VMSIM_DEV_IMPL_H

#include "vmsim/dev.h"

/* A device's 32-bit registers: offsets are from the window base, 4-byte aligned. */
typedef struct vmsi_dev_regs {
    uint32_t (*read)(vms_dev *dev, uint32_t off);
    void (*write)(vms_dev *dev, uint32_t off, uint32_t val);
} vmsi_dev_regs;

struct vms_dev {
    vms_machine *m;
    vms_bus *bus;
    vms_iommu *io; /* NULL: no IOMMU on this machine */
    const vms_allocator *a;
    const char *name;
    vms_bdf bdf;
    uint64_t mmio_base, mmio_len; /* len 0: no registers */
    const vmsi_dev_regs *regs;
    bool bare;        /* made by vms_dev_create (vms_dev_destroy frees it) */
    bool irq_on;      /* routed (IVEC.EN / vms_dev_set_irq) */
    bool noncoherent; /* DMA does not snoop the CPU caches (vms_dev_set_coherent) */
    unsigned irq_core;
    uint8_t irq_vector;
    vms_dev_irq_fn hook;
    void *hook_ud;
    vms_dev_stats st;
};

/*
 * Fill dev's common part and, when mmio_len > 0, register its window on m's bus with
 * regs as its registers. Fails like vms_bus_add_mmio (nothing registered then).
 */
vms_status vmsi_dev_init(vms_dev *dev, vms_machine *m, vms_iommu *io, const vms_dev_config *cfg,
                         uint64_t mmio_len, const vmsi_dev_regs *regs, vms_err *err);

/* Remove dev's window from the bus (if it has one). */
void vmsi_dev_fini(vms_dev *dev);

/* The IVEC register: read back, and write (route or unroute the interrupt). */
uint32_t vmsi_dev_ivec_read(const vms_dev *dev);
void vmsi_dev_ivec_write(vms_dev *dev, uint32_t val);

/*
 * Interrupt-cause logic shared by the devices: set `cause` bits in *icr and, if any of
 * them is enabled in ims, send the interrupt (else count it as masked).
 */
void vmsi_dev_cause(vms_dev *dev, uint32_t *icr, uint32_t ims, uint32_t cause);

#endif
