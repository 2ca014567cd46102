/* test_bus.c — the physical address decoder: RAM and MMIO routing, a toy device whose
 * registers have side effects, bus errors as data, overlap rejection, split accesses. */
#include "harness.h"
#include "vmsim/bus.h"

/*
 * A toy device with 32 bytes of registers:
 *   0x00 SCRATCH  8 bytes, read/write storage
 *   0x08 TICKET   read: returns the count of reads so far, then increments (side effect)
 *   0x10 DOORBELL write: adds the value to `rung`; reads as 0
 *   0x18 BAD      refuses every access (VMS_ERR_BUS)
 * It logs every piece it is handed so the test can see how the bus cut an access.
 */
typedef struct toy {
    uint8_t scratch[8];
    uint64_t ticket, rung;
    unsigned npieces;
    struct {
        uint64_t off;
        unsigned size;
    } piece[64];
} toy;

static void toy_log(toy *t, uint64_t off, unsigned size)
{
    if (t->npieces < 64) {
        t->piece[t->npieces].off = off;
        t->piece[t->npieces].size = size;
    }
    t->npieces++;
}

static vms_status toy_read(void *dev, uint64_t off, unsigned size, uint64_t *val)
{
    toy *t = dev;
    toy_log(t, off, size);
    if (off >= 0x18)
        return VMS_ERR_BUS;
    if (off < 8) {
        uint64_t v = 0;
        memcpy(&v, t->scratch + off, size);
        *val = v;
    } else if (off == 8) {
        *val = t->ticket++;
    } else {
        *val = 0;
    }
    return VMS_OK;
}

static vms_status toy_write(void *dev, uint64_t off, unsigned size, uint64_t val)
{
    toy *t = dev;
    toy_log(t, off, size);
    if (off >= 0x18)
        return VMS_ERR_BUS;
    if (off < 8)
        memcpy(t->scratch + off, &val, size);
    else if (off == 0x10)
        t->rung += val;
    return VMS_OK;
}

static const vms_mmio_ops toy_ops = {toy_read, toy_write};

/* The seed's layout: RAM below 3 GiB and from 4 GiB, a device at 0xC0000000. */
static void test_layout(void)
{
    vms_ram *ram;
    vms_bus *bus;
    REQUIRE_VOID(vms_ram_create(NULL, UINT64_C(8) << 30, &ram, NULL) == VMS_OK);
    REQUIRE_VOID(vms_bus_create(NULL, ram, &bus, NULL) == VMS_OK);
    toy t = {0};
    vms_err err;
    CHECK_EQ(vms_bus_add_ram(bus, UINT64_C(4) << 30, UINT64_C(4) << 30, NULL), VMS_OK);
    CHECK_EQ(vms_bus_add_ram(bus, 0, UINT64_C(0xC0000000), NULL), VMS_OK);
    CHECK_EQ(vms_bus_add_mmio(bus, 0xC0000000, 0x20, "toy", &toy_ops, &t, NULL), VMS_OK);
    CHECK_EQ(vms_bus_nregions(bus), 3);
    CHECK_EQ(vms_bus_region(bus, 0).base, 0);
    CHECK_EQ(vms_bus_region(bus, 1).kind, VMS_REGION_MMIO);
    CHECK_STR(vms_bus_region(bus, 1).name, "toy");
    CHECK_EQ(vms_bus_region(bus, 2).base, UINT64_C(4) << 30);
    CHECK_EQ(vms_bus_ram_bytes(bus), (UINT64_C(7) << 30));

    /* Rejections: overlap, misalignment, beyond the RAM, empty, missing ops. */
    CHECK_EQ(vms_bus_add_mmio(bus, 0xBFFFFFF8, 0x10, "x", &toy_ops, &t, &err), VMS_ERR_EXISTS);
    CHECK(strstr(err.msg, "overlaps") != NULL);
    CHECK_EQ(vms_bus_add_mmio(bus, 0xC000001F, 1, "x", &toy_ops, &t, NULL), VMS_ERR_EXISTS);
    CHECK_EQ(vms_bus_add_ram(bus, UINT64_C(0xFFFFF000), 0x2000, NULL), VMS_ERR_EXISTS);
    CHECK_EQ(vms_bus_add_ram(bus, 0xC0001000, 0x800, NULL), VMS_ERR_INVAL);
    CHECK_EQ(vms_bus_add_ram(bus, UINT64_C(8) << 30, 0x1000, NULL), VMS_ERR_RANGE);
    CHECK_EQ(vms_bus_add_ram(bus, 0xC0001000, 0, NULL), VMS_ERR_INVAL);
    CHECK_EQ(vms_bus_add_mmio(bus, 0xD0000000, 8, "x", NULL, &t, NULL), VMS_ERR_INVAL);
    CHECK_EQ(vms_bus_add_mmio(bus, UINT64_MAX - 3, 8, "x", &toy_ops, &t, NULL), VMS_ERR_INVAL);
    CHECK_EQ(vms_bus_nregions(bus), 3);

    /* Decode. */
    CHECK_EQ(vms_bus_decode(bus, 0xBFFFFFFF).kind, VMS_REGION_RAM);
    CHECK_EQ(vms_bus_decode(bus, 0xC0000010).kind, VMS_REGION_MMIO);
    vms_region hole = vms_bus_decode(bus, 0xC0000020);
    CHECK_EQ(hole.kind, VMS_REGION_NONE);
    CHECK_EQ(hole.len, 0);
    CHECK(vms_bus_is_ram(bus, 0, 0x1000));
    CHECK(!vms_bus_is_ram(bus, 0xBFFFF000, 0x2000));
    CHECK(!vms_bus_is_ram(bus, 0xF0000000, 8));

    /* RAM through the bus is the RAM. */
    CHECK_EQ(vms_bus_write64(bus, 0x5000, 0xfeed), VMS_OK);
    uint64_t v = 0;
    CHECK_EQ(vms_ram_read64(ram, 0x5000, &v), VMS_OK);
    CHECK_EQ(v, 0xfeed);
    CHECK_EQ(vms_bus_read64(bus, UINT64_C(0x100000000) + 8, &v), VMS_OK);
    CHECK_EQ(v, 0);
    CHECK(vms_bus_ram(bus) == ram);

    /* Device side effects: each 8-byte read of TICKET takes a new ticket. */
    CHECK_EQ(vms_bus_read64(bus, 0xC0000008, &v), VMS_OK);
    CHECK_EQ(v, 0);
    CHECK_EQ(vms_bus_read64(bus, 0xC0000008, &v), VMS_OK);
    CHECK_EQ(v, 1);
    CHECK_EQ(vms_bus_write64(bus, 0xC0000010, 5), VMS_OK);
    CHECK_EQ(vms_bus_write64(bus, 0xC0000010, 7), VMS_OK);
    CHECK_EQ(t.rung, 12);

    /* A device that refuses: its status comes back, nothing crashes. */
    CHECK_EQ(vms_bus_read64(bus, 0xC0000018, &v), VMS_ERR_BUS);

    /* Undecoded addresses are bus errors, counted, and leave the output alone. */
    const vms_bus_stats *s = vms_bus_get_stats(bus);
    uint64_t errors = s->errors;
    v = 77;
    CHECK_EQ(vms_bus_read64(bus, 0xC0000100, &v), VMS_ERR_BUS);
    CHECK_EQ(v, 77);
    CHECK_EQ(vms_bus_write64(bus, UINT64_C(1) << 40, 1), VMS_ERR_BUS);
    uint8_t buf[16];
    CHECK_EQ(vms_bus_read(bus, 0xF0000000, buf, sizeof buf), VMS_ERR_BUS);
    CHECK_EQ(s->errors, errors + 3);

    /* Split: 16 bytes from the last 4 of RAM into the device: 4 go to RAM, then the
     * device gets naturally aligned pieces: 8 bytes at offset 0, 4 at offset 8. */
    CHECK_EQ(vms_ram_write32(ram, 0xBFFFFFFC, 0xa1a2a3a4), VMS_OK);
    memset(t.scratch, 0x11, 8);
    t.npieces = 0;
    uint64_t ticket = t.ticket;
    CHECK_EQ(vms_bus_read(bus, 0xBFFFFFFC, buf, 16), VMS_OK);
    CHECK_EQ(buf[0], 0xa4);
    CHECK_EQ(buf[3], 0xa1);
    CHECK_EQ(buf[4], 0x11);
    CHECK_EQ(buf[11], 0x11);
    CHECK_EQ(buf[12], ticket & 0xff);
    CHECK_EQ(t.npieces, 2);
    CHECK_EQ(t.piece[0].off, 0);
    CHECK_EQ(t.piece[0].size, 8);
    CHECK_EQ(t.piece[1].off, 8);
    CHECK_EQ(t.piece[1].size, 4);

    /* An unaligned 7-byte write at offset 1 arrives as 1 + 2 + 4. */
    t.npieces = 0;
    uint8_t seven[7] = {1, 2, 3, 4, 5, 6, 7};
    CHECK_EQ(vms_bus_write(bus, 0xC0000001, seven, 7), VMS_OK);
    CHECK_EQ(t.npieces, 3);
    CHECK_EQ(t.piece[0].size, 1);
    CHECK_EQ(t.piece[1].off, 2);
    CHECK_EQ(t.piece[1].size, 2);
    CHECK_EQ(t.piece[2].off, 4);
    CHECK_EQ(t.piece[2].size, 4);
    CHECK(memcmp(t.scratch + 1, seven, 7) == 0);

    /* A write running off the device's end into the hole: the device part happens, then
     * the bus error (nothing after the undecoded byte is moved). */
    uint64_t rung = t.rung;
    uint8_t ones[16];
    memset(ones, 1, sizeof ones);
    CHECK_EQ(vms_bus_write(bus, 0xC0000010, ones, 8), VMS_OK);
    CHECK_EQ(t.rung, rung + UINT64_C(0x0101010101010101));
    CHECK_EQ(vms_bus_write(bus, 0xC0000018, ones, 16), VMS_ERR_BUS); /* device refuses */

    /* Counters. */
    CHECK(s->ram_reads > 0 && s->ram_writes > 0);
    CHECK(s->mmio_reads >= 5 && s->mmio_writes >= 7);

    vms_bus_destroy(bus);
    vms_bus_destroy(NULL);
    vms_ram_destroy(ram);
}

/* Many regions inserted out of order stay sorted; the RAM fast path follows changes. */
static void test_many_regions(void)
{
    th_failalloc fa;
    const vms_allocator *a = th_failalloc_init(&fa, -1);
    vms_ram *ram;
    vms_bus *bus;
    REQUIRE_VOID(vms_ram_create(a, 1 << 30, &ram, NULL) == VMS_OK);
    REQUIRE_VOID(vms_bus_create(a, ram, &bus, NULL) == VMS_OK);
    for (unsigned i = 0; i < 40; i++) {
        unsigned k = (i * 17) % 40; /* a permutation of 0..39 */
        CHECK_EQ(vms_bus_add_ram(bus, (uint64_t)k << 21, UINT64_C(1) << 20, NULL), VMS_OK);
    }
    CHECK_EQ(vms_bus_nregions(bus), 40);
    int sorted = 1;
    for (unsigned i = 1; i < 40; i++)
        sorted &= vms_bus_region(bus, i - 1).base < vms_bus_region(bus, i).base;
    CHECK(sorted);
    uint64_t v;
    for (unsigned k = 0; k < 40; k++) {
        CHECK_EQ(vms_bus_write64(bus, ((uint64_t)k << 21) + 0xff8, k), VMS_OK);
        CHECK_EQ(vms_bus_read64(bus, ((uint64_t)k << 21) + (1 << 20), &v), VMS_ERR_BUS);
    }
    for (unsigned k = 40; k-- > 0;) {
        CHECK_EQ(vms_bus_read64(bus, ((uint64_t)k << 21) + 0xff8, &v), VMS_OK);
        CHECK_EQ(v, k);
    }
    /* An 8-byte access straddling the end of a RAM region is a bus error, not a crash. */
    CHECK_EQ(vms_bus_read64(bus, (UINT64_C(1) << 20) - 4, &v), VMS_ERR_BUS);
    vms_bus_destroy(bus);
    vms_ram_destroy(ram);
    CHECK_EQ(fa.live_bytes, 0);

    /* Growing the region array can fail: NOMEM, nothing added, no leak. */
    th_failalloc_init(&fa, -1);
    REQUIRE_VOID(vms_ram_create(a, 1 << 30, &ram, NULL) == VMS_OK);
    REQUIRE_VOID(vms_bus_create(a, ram, &bus, NULL) == VMS_OK);
    fa.budget = 0;
    CHECK_EQ(vms_bus_add_ram(bus, 0, 4096, NULL), VMS_ERR_NOMEM);
    CHECK_EQ(vms_bus_nregions(bus), 0);
    CHECK_EQ(vms_bus_ram_bytes(bus), 0);
    fa.budget = -1;
    vms_bus_destroy(bus);
    vms_ram_destroy(ram);
    CHECK_EQ(fa.live_bytes, 0);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "bus");
    test_layout();
    test_many_regions();
    return th_finish();
}
