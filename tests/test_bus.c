/* test_bus.c — the physical address decoder: RAM and MMIO routing, a toy device whose
 * registers have side effects, bus errors as data, overlap rejection, split accesses. */
#include "harness.h"
#include "hw/bus_impl.h"
#include "vmsim/bus.h"
#include "vmsim/rng.h"

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

/*
 * The table-frame cache (bus_impl.h) against a naive model of RAM: random 8-byte reads
 * and writes over more frames than the cache has slots, discards, whole-frame zero fills,
 * copies from a never-written frame (a discard), block writes and map changes. After
 * every step the value read equals the model's, the cache names no stale host page, and
 * a twin bus with the cache off made the same RAM accesses. Returns the mismatches.
 */
#define PT_FRAMES (VMSI_PTEC_SLOTS * 3 / 2) /* more than slots: shared and replaced */
static unsigned ptec_round(uint64_t seed, unsigned steps)
{
    vms_ram *ram, *ram2;
    vms_bus *bus, *bus2;
    if (!(vms_ram_create(NULL, UINT64_C(1) << 30, &ram, NULL) == VMS_OK))
        return 1;
    if (!(vms_ram_create(NULL, UINT64_C(1) << 30, &ram2, NULL) == VMS_OK))
        return 1;
    if (!(vms_bus_create(NULL, ram, &bus, NULL) == VMS_OK))
        return 1;
    if (!(vms_bus_create(NULL, ram2, &bus2, NULL) == VMS_OK))
        return 1;
    if (!(vms_bus_add_ram(bus, 0, UINT64_C(1) << 29, NULL) == VMS_OK))
        return 1;
    if (!(vms_bus_add_ram(bus2, 0, UINT64_C(1) << 29, NULL) == VMS_OK))
        return 1;
    vmsi_bus_set_ptec(bus2, false);
    static uint64_t model[PT_FRAMES][512];
    memset(model, 0, sizeof model);
    vms_rng g;
    vms_rng_seed(&g, seed);
    toy t = {0};
    unsigned bad = 0;
    vms_err err = {0};
    for (unsigned i = 0; i < steps; i++) {
        uint64_t f = vms_rng_below(&g, PT_FRAMES), w = vms_rng_below(&g, 512);
        uint64_t pfn = f * 7 + 3; /* spread: not every frame in its own slot */
        uint64_t pa = (pfn << 12) + 8 * w, v = vms_rng_next(&g), got = 0, got2 = 0;
        unsigned op = (unsigned)vms_rng_below(&g, 100);
        if (op < 40) { /* read */
            bad += vms_bus_read64(bus, pa, &got) != VMS_OK || got != model[f][w];
            bad += vms_bus_read64(bus2, pa, &got2) != VMS_OK || got2 != model[f][w];
        } else if (op < 80) { /* write */
            bad += vms_bus_write64(bus, pa, v) != VMS_OK || vms_bus_write64(bus2, pa, v) != VMS_OK;
            model[f][w] = v;
        } else if (op < 88) { /* the frame loses its host page */
            vms_ram_discard(ram, pfn);
            vms_ram_discard(ram2, pfn);
            memset(model[f], 0, sizeof model[f]);
        } else if (op < 92) { /* a whole-frame zero fill is a discard too */
            bad += vms_ram_fill(ram, pfn << 12, 0, 4096) != VMS_OK;
            bad += vms_ram_fill(ram2, pfn << 12, 0, 4096) != VMS_OK;
            memset(model[f], 0, sizeof model[f]);
        } else if (op < 95) { /* COW of a zero frame: the destination is discarded */
            bad += vms_ram_copy_frame(ram, pfn, UINT64_C(1) << 17) != VMS_OK;
            bad += vms_ram_copy_frame(ram2, pfn, UINT64_C(1) << 17) != VMS_OK;
            memset(model[f], 0, sizeof model[f]);
        } else if (op < 98) { /* a block write beside the bus */
            bad +=
                vms_ram_write(ram, pa, &v, 8) != VMS_OK || vms_ram_write(ram2, pa, &v, 8) != VMS_OK;
            model[f][w] = v;
        } else { /* the map changes (a device comes and goes above the RAM) */
            bad +=
                vms_bus_add_mmio(bus, UINT64_C(1) << 29, 0x20, "toy", &toy_ops, &t, NULL) != VMS_OK;
            bad += vms_bus_remove_mmio(bus, UINT64_C(1) << 29) != VMS_OK;
        }
        if (vmsi_bus_ptec_check(bus, &err) != VMS_OK) {
            if (!bad)
                fprintf(stderr, "step %u: %s\n", i, err.msg);
            bad++;
        }
    }
    bad += vmsi_bus_ptec_live(bus2) != 0;
    const vms_bus_stats *a = vms_bus_get_stats(bus), *b = vms_bus_get_stats(bus2);
    bad += a->ram_reads != b->ram_reads || a->ram_writes != b->ram_writes || a->errors != b->errors;
    vms_bus_destroy(bus);
    vms_bus_destroy(bus2);
    vms_ram_destroy(ram);
    vms_ram_destroy(ram2);
    return bad;
}

static void test_ptec_exact(void)
{
    for (uint64_t round = 0; th_soak_more("VMS_BUS_SOAK", 3, round); round++)
        CHECK_EQ(ptec_round(th_seed + round, 20000), 0);
}

/*
 * Each invalidation, one by one: a cached frame that loses its host page and is written
 * again (a new host page) must read the new value, not the freed page's. Under ASan a
 * stale slot is a use after free; without it, the old value.
 */
static void test_ptec_invalidation(void)
{
    vms_ram *ram;
    vms_bus *bus;
    REQUIRE_VOID(vms_ram_create(NULL, UINT64_C(1) << 24, &ram, NULL) == VMS_OK);
    REQUIRE_VOID(vms_bus_create(NULL, ram, &bus, NULL) == VMS_OK);
    REQUIRE_VOID(vms_bus_add_ram(bus, 0, UINT64_C(1) << 24, NULL) == VMS_OK);
    uint64_t v = 0, pa = 0x5008;
    for (unsigned how = 0; how < 3; how++) {
        CHECK_EQ(vms_bus_write64(bus, pa, 0x1111 + how), VMS_OK);
        CHECK_EQ(vms_bus_read64(bus, pa, &v), VMS_OK);
        CHECK_EQ(v, 0x1111 + how);
        CHECK_EQ(vmsi_bus_ptec_live(bus), 1); /* the frame is cached */
        if (how == 0)
            vms_ram_discard(ram, pa >> 12);
        else if (how == 1)
            CHECK_EQ(vms_ram_fill(ram, pa & ~UINT64_C(0xfff), 0, 4096), VMS_OK);
        else
            CHECK_EQ(vms_ram_copy_frame(ram, pa >> 12, 0x100), VMS_OK); /* 0x100: zeros */
        CHECK_EQ(vmsi_bus_ptec_live(bus), 0);
        CHECK_EQ(vms_ram_write64(ram, pa + 8, 0x2222), VMS_OK); /* a new host page */
        CHECK_EQ(vms_bus_read64(bus, pa, &v), VMS_OK);
        CHECK_EQ(v, 0); /* the discard cleared it */
        CHECK_EQ(vms_bus_read64(bus, pa + 8, &v), VMS_OK);
        CHECK_EQ(v, 0x2222);
        CHECK_EQ(vmsi_bus_ptec_check(bus, NULL), VMS_OK);
    }
    /* A discard of another frame retires every slot (by generation, nothing emptied);
     * the next read of a frame remakes its slot under the new generation. */
    CHECK_EQ(vms_bus_write64(bus, 0x7000, 0x33), VMS_OK);
    CHECK_EQ(vms_bus_write64(bus, 0x8000, 0x44), VMS_OK);
    CHECK(vmsi_bus_ptec_live(bus) >= 2);
    vms_ram_discard(ram, 0x8);
    CHECK_EQ(vmsi_bus_ptec_live(bus), 0);
    CHECK_EQ(vms_bus_read64(bus, 0x7000, &v), VMS_OK);
    CHECK_EQ(v, 0x33);
    CHECK_EQ(vmsi_bus_ptec_live(bus), 1);
    CHECK_EQ(vmsi_bus_ptec_check(bus, NULL), VMS_OK);
    /* A never-written frame is not cached; a write through the bus caches it. */
    CHECK_EQ(vms_bus_read64(bus, 0x9000, &v), VMS_OK);
    CHECK_EQ(v, 0);
    unsigned live = vmsi_bus_ptec_live(bus);
    CHECK_EQ(vms_bus_write64(bus, 0x9000, 5), VMS_OK);
    CHECK_EQ(vmsi_bus_ptec_live(bus), live + 1);
    /* An access crossing the frame's end goes the slow way (and is exact). */
    CHECK_EQ(vms_bus_write64(bus, 0xa000, 0x77), VMS_OK);
    CHECK_EQ(vms_bus_read64(bus, 0x9ffc, &v), VMS_OK);
    CHECK_EQ(v, UINT64_C(0x7700000000));
    /* Turning the cache off empties it and keeps it empty. */
    vmsi_bus_set_ptec(bus, false);
    CHECK_EQ(vms_bus_read64(bus, 0x9000, &v), VMS_OK);
    CHECK_EQ(v, 5);
    CHECK_EQ(vmsi_bus_ptec_live(bus), 0);
    vms_bus_destroy(bus);
    vms_ram_destroy(ram);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "bus");
    test_layout();
    test_many_regions();
    test_ptec_exact();
    test_ptec_invalidation();
    return th_finish();
}
