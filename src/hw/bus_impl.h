/*
 * bus_impl.h — the bus's insides, for the walkers' inline 8-byte entry accesses (bus.c
 * owns the structure; only the page-table walkers and the tests include this).
 *
 * The table-frame cache. A walker reads a paging-structure entry through the bus on
 * every step: decode the address (the last RAM region), then find the frame's host page
 * in the RAM's two-level radix, two calls deep. The cache remembers, for a few recently
 * used frames, the host page that backs a RAM frame, so that an entry read is a compare
 * and a load from host memory — still a read of simulated RAM, the same bytes at the
 * same moment, counted as the bus counts it (one RAM read or write).
 *
 *   slot = ptec[pfn % VMSI_PTEC_SLOTS] = {pfn, gen, host}   (pfn UINT64_MAX: empty)
 *
 * A slot is made only by the slow path, only for a frame that lies in a RAM region
 * (RAM regions are page aligned, so the whole frame does) and already has a host page
 * (a never-written frame reads as zeros and is not cached). It stays exact because:
 *   - a host page changes only when the RAM discards the frame (vms_ram_discard, and the
 *     whole-frame zero fills and zero copies that call it) or is destroyed: the RAM
 *     bumps its discard generation, and a slot is used only while the generation it was
 *     made under (its gen) equals the RAM's: a discard retires every slot at once, with
 *     nothing to empty (the slow path remakes a slot when its frame is read again);
 *   - the bus map changes only by adding a region (which may not overlap RAM) or removing
 *     an MMIO region: both empty every slot too, though neither can turn a cached RAM
 *     frame into something else (RAM regions are never removed).
 * vmsi_bus_ptec_check compares every live slot with a fresh decode and frame lookup.
 */
#ifndef VMSIM_HW_BUS_IMPL_H
#define VMSIM_HW_BUS_IMPL_H

#include <string.h>

#include "vmsim/bus.h"

/* A power of two. 1024 slots (32 KiB) remember 4 MiB of tables: the 512 page tables of a
 * 1 GiB region (docs/PERFORMANCE.md, "Fifth round (h12walk)": with 256 slots a third of
 * the PT reads of rand.vmt missed) plus the directories above them. */
#define VMSI_PTEC_SLOTS 1024u
#define VMSI_PTEC_EMPTY UINT64_MAX

typedef struct vmsi_ptec_slot {
    uint64_t pfn;  /* RAM frame number, or VMSI_PTEC_EMPTY */
    uint64_t gen;  /* the RAM's discard generation when the slot was made */
    uint8_t *host; /* its host page (vms_ram_frame) */
    uint64_t pad;  /* (32 bytes: the slot's address is a shift of its index) */
} vmsi_ptec_slot;
_Static_assert(sizeof(vmsi_ptec_slot) == 32, "a slot is a power of two of bytes");

struct vms_bus {
    const vms_allocator *a;
    vms_ram *ram;
    vms_region *region;
    uint32_t nregions, cap;
    uint32_t last_ram; /* index of the RAM region that served the last fast-path access */
    bool ptec_off;     /* the table-frame cache disabled (tests and benchmarks compare) */
    uint64_t ram_bytes;
    vms_bus_stats stats;
    const uint64_t *ram_gen; /* the RAM's discard generation (vmsi_ram_generation) */
    vmsi_ptec_slot ptec[VMSI_PTEC_SLOTS];
    const struct vmsi_tap *tap; /* the owning machine's event tap (tap.h), or NULL */
};

/* ram.c: the RAM's discard generation, bumped whenever a frame loses its host page. */
const uint64_t *vmsi_ram_generation(const vms_ram *ram);

/* The slow paths (bus.c): decode, access, and make a slot when the frame qualifies. */
vms_status vmsi_bus_read64_slow(vms_bus *bus, uint64_t pa, uint64_t *val);
vms_status vmsi_bus_write64_slow(vms_bus *bus, uint64_t pa, uint64_t val);

/* The slot that holds pa's frame and may serve an 8-byte access at pa, or NULL. */
static inline vmsi_ptec_slot *vmsi_bus_ptec_hit(vms_bus *bus, uint64_t pa)
{
    uint64_t pfn = pa >> VMS_PAGE_SHIFT;
    vmsi_ptec_slot *s = &bus->ptec[pfn & (VMSI_PTEC_SLOTS - 1)];
    if (s->pfn != pfn || (pa & VMS_PAGE_MASK) > VMS_PAGE_SIZE - 8 || s->gen != *bus->ram_gen)
        return NULL;
    return s;
}

/* vms_bus_read64 / vms_bus_write64, inline for the walkers: same result and counters. */
static inline vms_status vmsi_bus_read64(vms_bus *bus, uint64_t pa, uint64_t *val)
{
    const vmsi_ptec_slot *s = vmsi_bus_ptec_hit(bus, pa);
    if (!s)
        return vmsi_bus_read64_slow(bus, pa, val);
    bus->stats.ram_reads++;
    memcpy(val, s->host + (pa & VMS_PAGE_MASK), sizeof *val);
    return VMS_OK;
}

static inline vms_status vmsi_bus_write64(vms_bus *bus, uint64_t pa, uint64_t val)
{
    vmsi_ptec_slot *s = vmsi_bus_ptec_hit(bus, pa);
    if (!s)
        return vmsi_bus_write64_slow(bus, pa, val);
    bus->stats.ram_writes++;
    memcpy(s->host + (pa & VMS_PAGE_MASK), &val, sizeof val);
    return VMS_OK;
}

/* Turn the table-frame cache off (every entry access takes the slow path) or on. */
void vmsi_bus_set_ptec(vms_bus *bus, bool on);

/* Live slots of the cache (for tests). */
unsigned vmsi_bus_ptec_live(const vms_bus *bus);

/* Check every live slot against a fresh decode and frame lookup: VMS_ERR_INVAL naming the
 * first stale one. */
vms_status vmsi_bus_ptec_check(const vms_bus *bus, vms_err *err);

#endif
