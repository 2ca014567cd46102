/* test_ram.c — sparse RAM: a 1 TiB RAM, zeros on unwritten frames, cross-frame blocks,
 * range errors, discard/fill/copy, and allocation-failure injection without leaks. */
#include "harness.h"
#include "vmsim/ram.h"
#include "vmsim/rng.h"

#define TIB (UINT64_C(1) << 40)

static void test_create_errors(void)
{
    vms_ram *ram = NULL;
    vms_err err;
    CHECK_EQ(vms_ram_create(NULL, 0, &ram, &err), VMS_ERR_INVAL);
    CHECK_EQ(err.status, VMS_ERR_INVAL);
    CHECK(strstr(err.msg, "4 KiB") != NULL);
    CHECK_EQ(vms_ram_create(NULL, 4097, &ram, NULL), VMS_ERR_INVAL);
    CHECK_EQ(vms_ram_create(NULL, VMS_RAM_MAX_LIMIT + 4096, &ram, NULL), VMS_ERR_INVAL);
    /* The maximum is accepted and cheap enough to create and destroy. */
    CHECK_EQ(vms_ram_create(NULL, VMS_RAM_MAX_LIMIT, &ram, NULL), VMS_OK);
    CHECK_EQ(vms_ram_write64(ram, VMS_RAM_MAX_LIMIT - 8, 42), VMS_OK);
    uint64_t v = 0;
    CHECK_EQ(vms_ram_read64(ram, VMS_RAM_MAX_LIMIT - 8, &v), VMS_OK);
    CHECK_EQ(v, 42);
    vms_ram_destroy(ram);
    vms_ram_destroy(NULL);
}

static void test_sparse_tib(void)
{
    th_failalloc fa;
    const vms_allocator *a = th_failalloc_init(&fa, -1);
    vms_ram *ram;
    REQUIRE_VOID(vms_ram_create(a, TIB, &ram, NULL) == VMS_OK);
    CHECK(fa.live_bytes < (1 << 20)); /* a table of chunk pointers, not 1 TiB */
    CHECK_EQ(vms_ram_limit(ram), TIB);
    CHECK_EQ(vms_ram_resident_frames(ram), 0);

    uint64_t v = 1;
    CHECK_EQ(vms_ram_read64(ram, TIB - 4096, &v), VMS_OK);
    CHECK_EQ(v, 0); /* never written: zeros, and still nothing resident */
    CHECK_EQ(vms_ram_resident_frames(ram), 0);
    CHECK(vms_ram_frame(ram, 12345, false) == NULL);

    CHECK_EQ(vms_ram_write64(ram, TIB - 8, UINT64_C(0x1122334455667788)), VMS_OK);
    CHECK_EQ(vms_ram_write32(ram, UINT64_C(0x7654321000), 0xdeadbeef), VMS_OK);
    CHECK_EQ(vms_ram_write8(ram, 0, 0x5a), VMS_OK);
    CHECK_EQ(vms_ram_resident_frames(ram), 3);
    CHECK_EQ(vms_ram_read64(ram, TIB - 8, &v), VMS_OK);
    CHECK_EQ(v, UINT64_C(0x1122334455667788));
    uint8_t b = 0;
    CHECK_EQ(vms_ram_read8(ram, TIB - 8, &b), VMS_OK);
    CHECK_EQ(b, 0x88); /* little-endian */
    uint32_t w = 0;
    CHECK_EQ(vms_ram_read32(ram, UINT64_C(0x7654321000), &w), VMS_OK);
    CHECK_EQ(w, 0xdeadbeef);
    uint16_t h = 0;
    CHECK_EQ(vms_ram_read16(ram, UINT64_C(0x7654321002), &h), VMS_OK);
    CHECK_EQ(h, 0xdead);

    /* Frame pointers stay valid and alias the bytes. */
    uint8_t *f = vms_ram_frame(ram, 0, false);
    REQUIRE_VOID(f != NULL);
    CHECK_EQ(f[0], 0x5a);
    f[1] = 0x77;
    CHECK_EQ(vms_ram_read8(ram, 1, &b), VMS_OK);
    CHECK_EQ(b, 0x77);

    /* Range errors leave outputs untouched. */
    v = 99;
    CHECK_EQ(vms_ram_read64(ram, TIB - 4, &v), VMS_ERR_RANGE);
    CHECK_EQ(v, 99);
    CHECK_EQ(vms_ram_read64(ram, TIB, &v), VMS_ERR_RANGE);
    CHECK_EQ(vms_ram_write16(ram, TIB - 1, 1), VMS_ERR_RANGE);
    CHECK_EQ(vms_ram_write(ram, UINT64_MAX - 2, &v, 8), VMS_ERR_RANGE);
    CHECK_EQ(vms_ram_read(ram, TIB - 8, &v, 9), VMS_ERR_RANGE);
    CHECK(vms_ram_frame(ram, TIB >> 12, true) == NULL);
    CHECK_EQ(vms_ram_copy_frame(ram, TIB >> 12, 0), VMS_ERR_RANGE);
    CHECK_EQ(vms_ram_resident_frames(ram), 3);

    vms_ram_discard(ram, 0);
    CHECK_EQ(vms_ram_read8(ram, 0, &b), VMS_OK);
    CHECK_EQ(b, 0);
    CHECK_EQ(vms_ram_resident_frames(ram), 2);
    vms_ram_discard(ram, 0);   /* twice is harmless */
    vms_ram_discard(ram, TIB); /* out of range is ignored */
    CHECK_EQ(vms_ram_resident_frames(ram), 2);
    vms_ram_destroy(ram);
    CHECK_EQ(fa.live_bytes, 0);
}

static void test_blocks(void)
{
    vms_ram *ram;
    REQUIRE_VOID(vms_ram_create(NULL, 64 << 20, &ram, NULL) == VMS_OK);
    static uint8_t buf[3 * 4096 + 100], back[sizeof buf];
    vms_rng r;
    vms_rng_seed(&r, th_seed);
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)vms_rng_next(&r);
    /* Starts 50 bytes before a frame boundary: touches 5 frames. */
    uint64_t pa = 0x10000 - 50;
    CHECK_EQ(vms_ram_write(ram, pa, buf, sizeof buf), VMS_OK);
    CHECK_EQ(vms_ram_resident_frames(ram), 5);
    CHECK_EQ(vms_ram_read(ram, pa, back, sizeof back), VMS_OK);
    CHECK(memcmp(buf, back, sizeof buf) == 0);
    /* Unaligned scalar across a frame boundary. */
    CHECK_EQ(vms_ram_write64(ram, 0x30000 - 3, UINT64_C(0x0102030405060708)), VMS_OK);
    uint64_t v = 0;
    CHECK_EQ(vms_ram_read64(ram, 0x30000 - 3, &v), VMS_OK);
    CHECK_EQ(v, UINT64_C(0x0102030405060708));
    CHECK_EQ(vms_ram_resident_frames(ram), 7);
    /* Zero-length accesses at the limit are fine. */
    CHECK_EQ(vms_ram_write(ram, 64 << 20, buf, 0), VMS_OK);

    /* fill: non-zero populates, zero on whole frames discards. */
    CHECK_EQ(vms_ram_fill(ram, 0x100000, 0xab, 2 * 4096), VMS_OK);
    CHECK_EQ(vms_ram_resident_frames(ram), 9);
    uint8_t b = 0;
    CHECK_EQ(vms_ram_read8(ram, 0x101fff, &b), VMS_OK);
    CHECK_EQ(b, 0xab);
    CHECK_EQ(vms_ram_fill(ram, 0x100800, 0, 4096), VMS_OK); /* two partial frames */
    CHECK_EQ(vms_ram_resident_frames(ram), 9);
    CHECK_EQ(vms_ram_read8(ram, 0x1007ff, &b), VMS_OK);
    CHECK_EQ(b, 0xab);
    CHECK_EQ(vms_ram_read8(ram, 0x100800, &b), VMS_OK);
    CHECK_EQ(b, 0);
    CHECK_EQ(vms_ram_read8(ram, 0x101800, &b), VMS_OK);
    CHECK_EQ(b, 0xab);
    CHECK_EQ(vms_ram_fill(ram, 0x100000, 0, 2 * 4096), VMS_OK);
    CHECK_EQ(vms_ram_resident_frames(ram), 7);

    /* copy_frame: bytes, and a zero source discards the destination. */
    CHECK_EQ(vms_ram_copy_frame(ram, 0x200, 0x10), VMS_OK);
    CHECK_EQ(vms_ram_read(ram, 0x200000, back, 4096), VMS_OK);
    CHECK(memcmp(back, buf + 50, 4096) == 0);
    CHECK_EQ(vms_ram_resident_frames(ram), 8);
    CHECK_EQ(vms_ram_copy_frame(ram, 0x200, 0x3000), VMS_OK);
    CHECK_EQ(vms_ram_resident_frames(ram), 7);
    CHECK(vms_ram_frame(ram, 0x200, false) == NULL);
    vms_ram_destroy(ram);
}

/* Fail the Nth host allocation for N = 0, 1, …: each failure returns NOMEM and changes
 * nothing; once it succeeds the data is there; everything is freed afterwards. */
static void test_failalloc(void)
{
    static uint8_t buf[5 * 4096];
    memset(buf, 0xc3, sizeof buf);
    int succeeded = 0;
    for (long n = 0; n < 40 && !succeeded; n++) {
        th_failalloc fa;
        const vms_allocator *a = th_failalloc_init(&fa, n);
        vms_ram *ram = NULL;
        vms_status st = vms_ram_create(a, TIB, &ram, NULL);
        if (st != VMS_OK) {
            CHECK_EQ(st, VMS_ERR_NOMEM);
            CHECK_EQ(fa.live_bytes, 0);
            continue;
        }
        uint64_t before = vms_ram_resident_frames(ram);
        long long live = fa.live_bytes;
        /* Crosses a chunk boundary (32 MiB), so it needs chunks and frames. */
        uint64_t pa = (UINT64_C(1) << 25) - 2 * 4096 - 7;
        st = vms_ram_write(ram, pa, buf, sizeof buf);
        if (st == VMS_OK) {
            succeeded = 1;
            uint8_t back[sizeof buf];
            CHECK_EQ(vms_ram_read(ram, pa, back, sizeof back), VMS_OK);
            CHECK(memcmp(back, buf, sizeof buf) == 0);
            CHECK_EQ(vms_ram_resident_frames(ram), before + 6);
        } else {
            CHECK_EQ(st, VMS_ERR_NOMEM);
            CHECK_EQ(vms_ram_resident_frames(ram), before);
            CHECK_EQ(fa.live_bytes, live); /* partial chunks and frames given back */
            uint8_t z = 1;
            CHECK_EQ(vms_ram_read8(ram, pa + 5000, &z), VMS_OK);
            CHECK_EQ(z, 0);
        }
        vms_ram_destroy(ram);
        CHECK_EQ(fa.live_bytes, 0);
        CHECK(fa.failures > 0 || succeeded);
    }
    CHECK(succeeded);
}

/* Host memory follows the written frames even when they are scattered (page tables in a
 * replay: one frame in ~513): beyond each 4 KiB page a written frame costs at most its
 * leaf (64 frame pointers) and a share of a chunk, and everything goes with the discards. */
static void test_scattered_cost(void)
{
    th_failalloc fa;
    const vms_allocator *a = th_failalloc_init(&fa, -1);
    vms_ram *ram;
    REQUIRE_VOID(vms_ram_create(a, UINT64_C(4) << 30, &ram, NULL) == VMS_OK);
    long long base = fa.live_bytes;
    const uint64_t n = 512, stride = 513; /* 1 GiB of frames */
    for (uint64_t i = 0; i < n; i++)
        CHECK_EQ(vms_ram_write64(ram, (i * stride) << 12, i + 1), VMS_OK);
    CHECK_EQ(vms_ram_resident_frames(ram), n);
    long long per = (fa.live_bytes - base - (long long)(n * 4096)) / (long long)n;
    CHECK(per > 0 && per <= 600); /* a 520-byte leaf each, chunks shared */
    uint64_t v = 0, bad = 0;
    for (uint64_t i = 0; i < n; i++)
        bad += vms_ram_read64(ram, (i * stride) << 12, &v) != VMS_OK || v != i + 1;
    CHECK_EQ(bad, 0);
    for (uint64_t i = 0; i < n; i++)
        vms_ram_discard(ram, i * stride);
    CHECK_EQ(vms_ram_resident_frames(ram), 0);
    CHECK_EQ(fa.live_bytes, base); /* leaves and chunks given back */
    vms_ram_destroy(ram);
    CHECK_EQ(fa.live_bytes, 0);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "ram");
    test_scattered_cost();
    test_create_errors();
    test_sparse_tib();
    test_blocks();
    test_failalloc();
    return th_finish();
}
