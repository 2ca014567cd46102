/*
 * bus.c — the physical address decoder (bus.h).
 *
 * The bus holds a sorted array of non-overlapping regions. A RAM region routes physical
 * address pa to the same address in the RAM (the bus does not relocate); an MMIO region
 * routes it to its device at offset pa - base. Decoding is a binary search; the walker's
 * 8-byte reads first try the last RAM region that matched, which is nearly always the
 * right one (page tables live in RAM).
 *
 * Counting: each vms_bus_read/write call counts one RAM access per RAM region it
 * touches, one MMIO access per device callback made (an access is cut into naturally
 * aligned pieces of 1, 2, 4 or 8 bytes), and one error if it meets an undecoded byte.
 *
 * The 8-byte accessors also keep the table-frame cache (bus_impl.h): a few RAM frames'
 * host pages, so that a walker's entry access skips the decode and the frame lookup.
 *
 * Invariants: regions sorted by base, len > 0, region[i].base + len <= region[i+1].base;
 * last_ram < nregions and names a RAM region, or is NO_REGION; a cache slot made under
 * the RAM's current generation names a frame inside a RAM region and its host page.
 */
#include "hw/bus_impl.h"

#include <assert.h>

#include "hw/tap.h"
#include "util/util.h"

#define NO_REGION UINT32_MAX

/* Empty every slot of the table-frame cache. */
static void ptec_clear(vms_bus *bus)
{
    for (unsigned i = 0; i < VMSI_PTEC_SLOTS; i++)
        bus->ptec[i] = (vmsi_ptec_slot){VMSI_PTEC_EMPTY, 0, NULL, 0};
}

const vmsi_tap *vmsi_bus_tap(const vms_bus *bus)
{
    return bus->tap;
}

void vmsi_bus_set_tap(vms_bus *bus, const vmsi_tap *t)
{
    bus->tap = t;
}

vms_status vms_bus_create(const vms_allocator *a, vms_ram *ram, vms_bus **out, vms_err *err)
{
    if (!a)
        a = vms_allocator_default();
    if (!ram)
        return vmsi_err(err, VMS_ERR_INVAL, "a bus needs a RAM behind it");
    vms_bus *bus = vmsi_zalloc(a, sizeof *bus);
    if (!bus)
        return vmsi_err(err, VMS_ERR_NOMEM, "no host memory for the bus");
    bus->a = a;
    bus->ram = ram;
    bus->last_ram = NO_REGION;
    bus->ram_gen = vmsi_ram_generation(ram);
    ptec_clear(bus);
    *out = bus;
    return VMS_OK;
}

void vms_bus_destroy(vms_bus *bus)
{
    if (!bus)
        return;
    vmsi_free(bus->a, bus->region, bus->cap * sizeof *bus->region);
    vmsi_free(bus->a, bus, sizeof *bus);
}

/* Index of the first region whose end is above pa (== nregions when none). */
static uint32_t lower_bound(const vms_bus *bus, uint64_t pa)
{
    uint32_t lo = 0, hi = bus->nregions;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const vms_region *r = &bus->region[mid];
        if (r->base + (r->len - 1) < pa)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Index of the region holding pa, or NO_REGION. */
static uint32_t find(const vms_bus *bus, uint64_t pa)
{
    uint32_t i = lower_bound(bus, pa);
    return i < bus->nregions && bus->region[i].base <= pa ? i : NO_REGION;
}

/* Insert r in order; EXISTS if it overlaps a region, NOMEM if the array cannot grow. */
static vms_status insert(vms_bus *bus, const vms_region *r, vms_err *err)
{
    uint32_t i = lower_bound(bus, r->base);
    if (i < bus->nregions && bus->region[i].base <= r->base + (r->len - 1))
        return vmsi_err(err, VMS_ERR_EXISTS,
                        "bus region %s [0x%llx, +0x%llx) overlaps %s at 0x%llx", r->name,
                        (unsigned long long)r->base, (unsigned long long)r->len,
                        bus->region[i].name, (unsigned long long)bus->region[i].base);
    if (bus->nregions == bus->cap) {
        uint32_t cap = bus->cap ? 2 * bus->cap : 8;
        vms_region *n =
            bus->a->realloc(bus->a->ud, bus->region, bus->cap * sizeof *n, cap * sizeof *n);
        if (!n)
            return vmsi_err(err, VMS_ERR_NOMEM, "no host memory for %u bus regions", cap);
        bus->region = n;
        bus->cap = cap;
    }
    memmove(&bus->region[i + 1], &bus->region[i], (bus->nregions - i) * sizeof *r);
    bus->region[i] = *r;
    bus->nregions++;
    bus->last_ram = NO_REGION; /* indices moved */
    ptec_clear(bus);           /* the map changed */
    return VMS_OK;
}

vms_status vms_bus_add_ram(vms_bus *bus, uint64_t base, uint64_t len, vms_err *err)
{
    if (len == 0 || ((base | len) & VMS_PAGE_MASK))
        return vmsi_err(err, VMS_ERR_INVAL,
                        "RAM region [0x%llx, +0x%llx): expected non-empty and page aligned",
                        (unsigned long long)base, (unsigned long long)len);
    uint64_t limit = vms_ram_limit(bus->ram);
    if (len > limit || base > limit - len)
        return vmsi_err(
            err, VMS_ERR_RANGE, "RAM region [0x%llx, +0x%llx) is beyond the RAM limit 0x%llx",
            (unsigned long long)base, (unsigned long long)len, (unsigned long long)limit);
    vms_region r = {VMS_REGION_RAM, base, len, "ram", NULL, NULL};
    vms_status st = insert(bus, &r, err);
    if (st == VMS_OK)
        bus->ram_bytes += len;
    return st;
}

vms_status vms_bus_add_mmio(vms_bus *bus, uint64_t base, uint64_t len, const char *name,
                            const vms_mmio_ops *ops, void *dev, vms_err *err)
{
    if (!name || !ops || !ops->read || !ops->write)
        return vmsi_err(err, VMS_ERR_INVAL, "MMIO region needs a name and read/write ops");
    if (len == 0 || base + (len - 1) < base)
        return vmsi_err(err, VMS_ERR_INVAL, "MMIO region %s [0x%llx, +0x%llx): bad length", name,
                        (unsigned long long)base, (unsigned long long)len);
    vms_region r = {VMS_REGION_MMIO, base, len, name, ops, dev};
    return insert(bus, &r, err);
}

vms_status vms_bus_remove_mmio(vms_bus *bus, uint64_t base)
{
    uint32_t i = find(bus, base);
    if (i == NO_REGION || bus->region[i].kind != VMS_REGION_MMIO || bus->region[i].base != base)
        return VMS_ERR_NOTFOUND;
    memmove(&bus->region[i], &bus->region[i + 1], (bus->nregions - i - 1) * sizeof *bus->region);
    bus->nregions--;
    bus->last_ram = NO_REGION; /* indices moved */
    ptec_clear(bus);           /* the map changed */
    return VMS_OK;
}

vms_region vms_bus_decode(const vms_bus *bus, uint64_t pa)
{
    uint32_t i = find(bus, pa);
    if (i == NO_REGION)
        return (vms_region){VMS_REGION_NONE, 0, 0, NULL, NULL, NULL};
    return bus->region[i];
}

unsigned vms_bus_nregions(const vms_bus *bus)
{
    return bus->nregions;
}

vms_region vms_bus_region(const vms_bus *bus, unsigned i)
{
    assert(i < bus->nregions);
    return bus->region[i];
}

uint64_t vms_bus_ram_bytes(const vms_bus *bus)
{
    return bus->ram_bytes;
}

bool vms_bus_is_ram(const vms_bus *bus, uint64_t pa, uint64_t len)
{
    while (len) {
        uint32_t i = find(bus, pa);
        if (i == NO_REGION || bus->region[i].kind != VMS_REGION_RAM)
            return false;
        const vms_region *r = &bus->region[i];
        uint64_t avail = r->base + (r->len - 1) - pa + 1; /* 0 only if r reaches 2^64 */
        if (avail == 0 || avail >= len)
            return true;
        pa += avail;
        len -= avail;
    }
    return true;
}

/* Largest naturally aligned piece (1, 2, 4 or 8 bytes) at offset off of at most len. */
static unsigned mmio_piece(uint64_t off, uint64_t len)
{
    unsigned size = 8;
    while (size > len || (off & (size - 1)))
        size >>= 1;
    return size;
}

/* Read len bytes of a device's registers into buf, piece by piece (little-endian). */
static vms_status mmio_read(vms_bus *bus, const vms_region *r, uint64_t off, uint8_t *buf,
                            uint64_t len)
{
    while (len) {
        unsigned size = mmio_piece(off, len);
        uint64_t v = 0;
        bus->stats.mmio_reads++;
        vms_status st = r->ops->read(r->dev, off, size, &v);
        if (st != VMS_OK)
            return st;
        memcpy(buf, &v, size);
        buf += size;
        off += size;
        len -= size;
    }
    return VMS_OK;
}

/* Write len bytes from buf to a device's registers, piece by piece. */
static vms_status mmio_write(vms_bus *bus, const vms_region *r, uint64_t off, const uint8_t *buf,
                             uint64_t len)
{
    while (len) {
        unsigned size = mmio_piece(off, len);
        uint64_t v = 0;
        memcpy(&v, buf, size);
        bus->stats.mmio_writes++;
        vms_status st = r->ops->write(r->dev, off, size, v);
        if (st != VMS_OK)
            return st;
        buf += size;
        off += size;
        len -= size;
    }
    return VMS_OK;
}

/*
 * Move len bytes at pa, region by region. write selects the direction; buf is read
 * from (write) or written to (read). Stops at the first undecoded byte (VMS_ERR_BUS,
 * counted) or the first failing device or RAM access.
 */
static vms_status route(vms_bus *bus, uint64_t pa, uint8_t *buf, size_t len, bool write)
{
    while (len) {
        uint32_t i = find(bus, pa);
        if (i == NO_REGION) {
            bus->stats.errors++;
            return VMS_ERR_BUS;
        }
        const vms_region *r = &bus->region[i];
        uint64_t avail = r->base + (r->len - 1) - pa + 1;
        size_t n = (avail == 0 || avail >= len) ? len : (size_t)avail;
        vms_status st;
        if (r->kind == VMS_REGION_RAM) {
            if (write)
                bus->stats.ram_writes++;
            else
                bus->stats.ram_reads++;
            st = write ? vms_ram_write(bus->ram, pa, buf, n) : vms_ram_read(bus->ram, pa, buf, n);
        } else {
            st = write ? mmio_write(bus, r, pa - r->base, buf, n)
                       : mmio_read(bus, r, pa - r->base, buf, n);
        }
        if (st != VMS_OK)
            return st;
        buf += n;
        pa += n;
        len -= n;
    }
    return VMS_OK;
}

vms_status vms_bus_read(vms_bus *bus, uint64_t pa, void *buf, size_t len)
{
    return route(bus, pa, buf, len, false);
}

vms_status vms_bus_write(vms_bus *bus, uint64_t pa, const void *buf, size_t len)
{
    /* route() only reads from buf when write is true. */
    union {
        const void *c;
        uint8_t *p;
    } u = {buf};
    return route(bus, pa, u.p, len, true);
}

/*
 * True when [pa, pa+8) lies in the RAM region that served the last 8-byte access, or
 * (updating that cache) in some RAM region. The walker's fast path.
 */
static inline bool ram8(vms_bus *bus, uint64_t pa)
{
    uint32_t i = bus->last_ram;
    if (i != NO_REGION) {
        const vms_region *r = &bus->region[i];
        if (pa >= r->base && pa - r->base <= r->len - 8)
            return true;
    }
    i = find(bus, pa);
    if (i == NO_REGION || bus->region[i].kind != VMS_REGION_RAM)
        return false;
    const vms_region *r = &bus->region[i];
    if (pa - r->base > r->len - 8)
        return false;
    bus->last_ram = i;
    return true;
}

/*
 * Make a cache slot for pa's frame if it may have one: pa is in a RAM region (ram8 just
 * said so), the frame has a host page, and the cache is on. The slot carries the current
 * generation: it serves until some frame loses its host page.
 */
static void ptec_fill(vms_bus *bus, uint64_t pa)
{
    if (bus->ptec_off)
        return;
    uint64_t pfn = pa >> VMS_PAGE_SHIFT;
    uint8_t *host = vms_ram_frame(bus->ram, pfn, false);
    if (host)
        bus->ptec[pfn & (VMSI_PTEC_SLOTS - 1)] = (vmsi_ptec_slot){pfn, *bus->ram_gen, host, 0};
}

vms_status vmsi_bus_read64_slow(vms_bus *bus, uint64_t pa, uint64_t *val)
{
    if (ram8(bus, pa)) {
        bus->stats.ram_reads++;
        vms_status st = vms_ram_read64(bus->ram, pa, val);
        if (st == VMS_OK)
            ptec_fill(bus, pa);
        return st;
    }
    uint64_t v;
    vms_status st = route(bus, pa, (uint8_t *)&v, sizeof v, false);
    if (st == VMS_OK)
        *val = v;
    return st;
}

vms_status vmsi_bus_write64_slow(vms_bus *bus, uint64_t pa, uint64_t val)
{
    if (ram8(bus, pa)) {
        bus->stats.ram_writes++;
        vms_status st = vms_ram_write64(bus->ram, pa, val);
        if (st == VMS_OK)
            ptec_fill(bus, pa);
        return st;
    }
    return route(bus, pa, (uint8_t *)&val, sizeof val, true);
}

vms_status vms_bus_read64(vms_bus *bus, uint64_t pa, uint64_t *val)
{
    return vmsi_bus_read64(bus, pa, val);
}

vms_status vms_bus_write64(vms_bus *bus, uint64_t pa, uint64_t val)
{
    return vmsi_bus_write64(bus, pa, val);
}

void vmsi_bus_set_ptec(vms_bus *bus, bool on)
{
    bus->ptec_off = !on;
    ptec_clear(bus);
}

unsigned vmsi_bus_ptec_live(const vms_bus *bus)
{
    unsigned n = 0;
    for (unsigned i = 0; i < VMSI_PTEC_SLOTS; i++)
        n += bus->ptec[i].pfn != VMSI_PTEC_EMPTY && bus->ptec[i].gen == *bus->ram_gen;
    return n;
}

vms_status vmsi_bus_ptec_check(const vms_bus *bus, vms_err *err)
{
    for (unsigned i = 0; i < VMSI_PTEC_SLOTS; i++) {
        const vmsi_ptec_slot *s = &bus->ptec[i];
        if (s->pfn == VMSI_PTEC_EMPTY || s->gen != *bus->ram_gen)
            continue; /* (an older generation's slot is never used) */
        uint64_t pa = s->pfn << VMS_PAGE_SHIFT;
        uint32_t r = find(bus, pa);
        if ((s->pfn & (VMSI_PTEC_SLOTS - 1)) != i || r == NO_REGION ||
            bus->region[r].kind != VMS_REGION_RAM || bus->ptec_off ||
            s->host != vms_ram_frame(bus->ram, s->pfn, false))
            return vmsi_err(err, VMS_ERR_INVAL, "table-frame cache slot %u (pfn 0x%llx) is stale",
                            i, (unsigned long long)s->pfn);
    }
    return VMS_OK;
}

vms_ram *vms_bus_ram(const vms_bus *bus)
{
    return bus->ram;
}

const vms_bus_stats *vms_bus_get_stats(const vms_bus *bus)
{
    return &bus->stats;
}
