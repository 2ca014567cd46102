/*
 * vmsim/bus.h — the physical address decoder.
 *
 * Every physical access goes through the bus, which routes it to RAM or to a device's
 * MMIO registers (seed 000, "Physical Memory" and "MMIO"):
 *
 *                 ┌──► RAM     (0x00000000 - 0xBFFFFFFF, and from 4 GiB up)
 *   MMU ──► Bus ──┼──► NIC     (0xC0000000 - 0xC00000FF)
 *                 └──► Disk    (0xC0000100 - 0xC00001FF)
 *
 * Regions never overlap. An address that decodes to nothing is a bus error, returned
 * as VMS_ERR_BUS and counted — never a crash. Accesses that span two regions are split
 * at the boundary; MMIO accesses are passed to the device in naturally sized pieces of
 * at most 8 bytes.
 */
#ifndef VMSIM_BUS_H
#define VMSIM_BUS_H

#include "vmsim/common.h"
#include "vmsim/ram.h"

typedef struct vms_bus vms_bus;

/* A device's register callbacks. `offset` is relative to the region base; size is
 * 1, 2, 4 or 8. A callback may return VMS_ERR_BUS to refuse the access. */
typedef struct vms_mmio_ops {
    vms_status (*read)(void *dev, uint64_t offset, unsigned size, uint64_t *val);
    vms_status (*write)(void *dev, uint64_t offset, unsigned size, uint64_t val);
} vms_mmio_ops;

typedef enum vms_region_kind {
    VMS_REGION_NONE = 0, /* decodes to nothing */
    VMS_REGION_RAM,
    VMS_REGION_MMIO,
} vms_region_kind;

/* One decoded range, as vms_bus_region/vms_bus_decode report it. */
typedef struct vms_region {
    vms_region_kind kind;
    uint64_t base;
    uint64_t len;
    const char *name; /* "ram", or the device's name */
    const vms_mmio_ops *ops;
    void *dev;
} vms_region;

typedef struct vms_bus_stats {
    uint64_t ram_reads, ram_writes;   /* accesses (not bytes) routed to RAM */
    uint64_t mmio_reads, mmio_writes; /* accesses routed to devices */
    uint64_t errors;                  /* accesses that decoded to nothing */
} vms_bus_stats;

/* Create an empty bus in front of ram (borrowed; must outlive the bus). */
vms_status vms_bus_create(const vms_allocator *a, vms_ram *ram, vms_bus **out, vms_err *err);

/* NULL is accepted. Does not destroy the RAM or devices. */
void vms_bus_destroy(vms_bus *bus);

/* Route [base, base+len) to RAM. Must be page aligned, inside the RAM's limit and not
 * overlap another region (VMS_ERR_INVAL / VMS_ERR_RANGE / VMS_ERR_EXISTS). */
vms_status vms_bus_add_ram(vms_bus *bus, uint64_t base, uint64_t len, vms_err *err);

/* Route [base, base+len) to a device. name and ops are borrowed (static storage is
 * typical); dev is passed back to the callbacks. */
vms_status vms_bus_add_mmio(vms_bus *bus, uint64_t base, uint64_t len, const char *name,
                            const vms_mmio_ops *ops, void *dev, vms_err *err);

/* Stop routing the MMIO region that begins at base (a device going away), so that the
 * bus never calls a destroyed device. VMS_ERR_NOTFOUND when no MMIO region begins there. */
vms_status vms_bus_remove_mmio(vms_bus *bus, uint64_t base);

/* Which region holds pa; kind VMS_REGION_NONE (and len 0) when none. */
vms_region vms_bus_decode(const vms_bus *bus, uint64_t pa);

/* Number of regions and the i-th (sorted by base), for listing the layout. */
unsigned vms_bus_nregions(const vms_bus *bus);
vms_region vms_bus_region(const vms_bus *bus, unsigned i);

/* Total bytes routed to RAM. */
uint64_t vms_bus_ram_bytes(const vms_bus *bus);

/* True when every byte of [pa, pa+len) is RAM. */
bool vms_bus_is_ram(const vms_bus *bus, uint64_t pa, uint64_t len);

/*
 * Move len bytes between physical address pa and buf, routing each piece. Returns
 * VMS_OK, VMS_ERR_BUS (some byte decodes to nothing: nothing after it is moved) or a
 * device's status.
 */
vms_status vms_bus_read(vms_bus *bus, uint64_t pa, void *buf, size_t len);
vms_status vms_bus_write(vms_bus *bus, uint64_t pa, const void *buf, size_t len);

/* 8-byte accessors, used by the page walker for paging-structure entries. */
vms_status vms_bus_read64(vms_bus *bus, uint64_t pa, uint64_t *val);
vms_status vms_bus_write64(vms_bus *bus, uint64_t pa, uint64_t val);

/* The RAM behind the bus (borrowed). */
vms_ram *vms_bus_ram(const vms_bus *bus);

/* Counters since creation. */
const vms_bus_stats *vms_bus_get_stats(const vms_bus *bus);

#endif
