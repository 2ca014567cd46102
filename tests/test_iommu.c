/*
 * test_iommu.c — the IOMMU (iommu.h, src/hw/iommu.c; the SMMUv3 stream table entry of
 * src/hw/iommu_smmu.c in test_smmu_stage2) and DMA through it (vms_dev_dma): translation and
 * its reasons for blocking, the fault log, IOTLB hits, staleness and every invalidation
 * granularity, passthrough and the IOMMU switched off, large pages, costs and JSON, bad
 * contexts, allocation failures, and a seeded differential test of random mappings,
 * DMAs and invalidations against a naive reference model (per domain: what is mapped,
 * what the IOTLB may still hold; a byte image of the RAM the devices can reach).
 */
#include "harness.h"
#include "vmsim/dev.h"
#include "vmsim/pt.h"
#include "vmsim/rng.h"
#include "vmsim/virt.h"

/* ---- fixtures ------------------------------------------------------------------------ */

/* REQUIRE for void test functions: count a failure and leave the test. */
#define NEED(cond)                                                                                 \
    do {                                                                                           \
        if (cond) {                                                                                \
            th_passed++;                                                                           \
        } else {                                                                                   \
            th_failed++;                                                                           \
            fprintf(stderr, "%s:%d: NEED failed: %s\n", __FILE__, __LINE__, #cond);                \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define TABLE_BASE UINT64_C(0x1000000) /* IOMMU table frames come from here up */
#define DATA_BASE  UINT64_C(0x2000000) /* frames devices may reach */

typedef struct bump {
    vms_ram *ram;
    uint64_t next, allocated;
} bump;

static vms_status bump_alloc(void *ud, uint64_t *pa)
{
    bump *b = ud;
    *pa = b->next;
    b->next += VMS_PAGE_SIZE;
    b->allocated++;
    return vms_ram_fill(b->ram, *pa, 0, VMS_PAGE_SIZE);
}

static void bump_free(void *ud, uint64_t pa)
{
    (void)ud;
    (void)pa;
}

typedef struct fixture {
    vms_machine *m;
    vms_iommu *io;
    bump b;
    vms_pt pt; /* domain 1's tables */
} fixture;

/* A "tiny" machine, an IOMMU with cfg (NULL: default) and one empty 4-level table tree. */
static bool fx_init(fixture *f, const vms_allocator *a, const vms_iommu_config *cfg)
{
    vms_machine_config mc;
    vms_err err = {0};
    memset(f, 0, sizeof *f);
    vms_machine_preset("tiny", &mc, &err);
    if (vms_machine_create(a, &mc, &f->m, &err) != VMS_OK)
        return false;
    vms_iommu_config def;
    vms_iommu_config_default(&def);
    if (vms_iommu_create(f->m, cfg ? cfg : &def, &f->io, &err) != VMS_OK) {
        vms_machine_destroy(f->m);
        f->m = NULL;
        return false;
    }
    f->b = (bump){vms_machine_ram(f->m), TABLE_BASE, 0};
    vms_pt_ops ops = {bump_alloc, bump_free, &f->b};
    return vms_pt_init(&f->pt, vms_machine_bus(f->m), 4, &ops, &err) == VMS_OK;
}

static void fx_fini(fixture *f)
{
    vms_iommu_destroy(f->io);
    vms_machine_destroy(f->m);
}

static vms_status attach(fixture *f, vms_bdf bdf, uint16_t did, const vms_pt *pt)
{
    vms_iommu_context c = {VMS_IOMMU_TRANSLATE, did, pt->root, pt->levels};
    return vms_iommu_set_context(f->io, bdf, &c, NULL);
}

#define BDF_A vms_bdf_make(0, 3, 0)
#define BDF_B vms_bdf_make(0, 4, 0)
#define R     VMS_PTE_US /* read permission */
#define W     VMS_PTE_RW /* write permission */

/* Translate and return the reason (VMS_IOMMU_OK on success, with *pa). */
static vms_iommu_reason xl(fixture *f, vms_bdf bdf, uint64_t iova, vms_access_kind k, uint64_t *pa)
{
    uint64_t dummy_pa, room;
    vms_iommu_fault flt = {0};
    if (vms_iommu_translate(f->io, bdf, iova, k, pa ? pa : &dummy_pa, &room, &flt))
        return VMS_IOMMU_OK;
    return flt.reason;
}

/* ---- translation and permissions ----------------------------------------------------- */

static void test_bdf(void)
{
    vms_bdf b = vms_bdf_make(0x12, 0x1f, 7);
    CHECK_EQ(b, 0x12ff);
    CHECK_EQ(vms_bdf_bus(b), 0x12);
    CHECK_EQ(vms_bdf_dev(b), 0x1f);
    CHECK_EQ(vms_bdf_fn(b), 7);
    CHECK_EQ(vms_bdf_make(0, 3, 0), 0x18);
}

static void test_translate_rights(void)
{
    fixture f;
    NEED(fx_init(&f, NULL, NULL));
    CHECK_EQ(attach(&f, BDF_A, 1, &f.pt), VMS_OK);
    /* Seed 000's table: 0x0000 -> 0x50000 read/write, 0x1000 -> 0x51000 read only,
     * 0x2000 blocked. Plus a write-only page and a present page with no rights. */
    CHECK_EQ(vms_pt_map(&f.pt, 0x0000, 0x50000, VMS_PG_4K, R | W, NULL), VMS_OK);
    CHECK_EQ(vms_pt_map(&f.pt, 0x1000, 0x51000, VMS_PG_4K, R, NULL), VMS_OK);
    CHECK_EQ(vms_pt_map(&f.pt, 0x3000, 0x53000, VMS_PG_4K, W, NULL), VMS_OK);
    CHECK_EQ(vms_pt_map(&f.pt, 0x4000, 0x54000, VMS_PG_4K, 0, NULL), VMS_OK);
    uint64_t pa = 0;
    CHECK_EQ(xl(&f, BDF_A, 0x0123, VMS_ACC_READ, &pa), VMS_IOMMU_OK);
    CHECK_EQ(pa, 0x50123);
    CHECK_EQ(xl(&f, BDF_A, 0x0123, VMS_ACC_WRITE, &pa), VMS_IOMMU_OK);
    CHECK_EQ(xl(&f, BDF_A, 0x1008, VMS_ACC_READ, &pa), VMS_IOMMU_OK);
    CHECK_EQ(pa, 0x51008);
    CHECK_EQ(xl(&f, BDF_A, 0x1008, VMS_ACC_WRITE, NULL), VMS_IOMMU_NO_WRITE);
    CHECK_EQ(xl(&f, BDF_A, 0x2000, VMS_ACC_READ, NULL), VMS_IOMMU_NOT_PRESENT);
    CHECK_EQ(xl(&f, BDF_A, 0x3000, VMS_ACC_WRITE, &pa), VMS_IOMMU_OK);
    CHECK_EQ(pa, 0x53000);
    CHECK_EQ(xl(&f, BDF_A, 0x3000, VMS_ACC_READ, NULL), VMS_IOMMU_NO_READ);
    CHECK_EQ(xl(&f, BDF_A, 0x4000, VMS_ACC_READ, NULL), VMS_IOMMU_NO_READ);
    CHECK_EQ(xl(&f, BDF_A, 0x4000, VMS_ACC_WRITE, NULL), VMS_IOMMU_NO_WRITE);
    CHECK_EQ(xl(&f, BDF_A, 0x1000, VMS_ACC_EXEC, NULL), VMS_IOMMU_OK); /* a read */
    /* Far away: the PML4 entry is absent, the walk stops at level 4. */
    vms_iommu_fault flt;
    uint64_t room;
    CHECK(!vms_iommu_translate(f.io, BDF_A, UINT64_C(0x100000000000), VMS_ACC_READ, &pa, &room,
                               &flt));
    CHECK_EQ(flt.reason, VMS_IOMMU_NOT_PRESENT);
    CHECK_EQ(flt.level, 4);
    CHECK_EQ(xl(&f, BDF_A, UINT64_C(1) << 47, VMS_ACC_READ, NULL), VMS_IOMMU_ADDR_WIDTH);
    /* An unknown requester ID has no context. */
    CHECK(!vms_iommu_translate(f.io, BDF_B, 0, VMS_ACC_READ, &pa, &room, &flt));
    CHECK_EQ(flt.reason, VMS_IOMMU_NO_CONTEXT);
    CHECK_EQ(flt.bdf, BDF_B);
    /* Intermediate rights are ANDed: clear RW in the PML4 entry for 0x0000. */
    uint64_t ptep;
    CHECK_EQ(vms_pt_entry_addr(&f.pt, 0, 4, false, &ptep, NULL), VMS_OK);
    uint64_t pte;
    vms_pt_read(&f.pt, ptep, &pte);
    vms_pt_write(&f.pt, ptep, pte & ~W);
    vms_iommu_inv_global(f.io);
    CHECK_EQ(xl(&f, BDF_A, 0x0000, VMS_ACC_WRITE, NULL), VMS_IOMMU_NO_WRITE);
    CHECK_EQ(xl(&f, BDF_A, 0x0000, VMS_ACC_READ, NULL), VMS_IOMMU_OK);
    /* Translation never writes the tables (no A/D). */
    vms_pt_read(&f.pt, ptep, &pte);
    CHECK(!(pte & VMS_PTE_A));
    uint64_t leaf;
    CHECK(vms_pt_lookup(&f.pt, 0, &leaf, NULL, NULL));
    CHECK(!(leaf & (VMS_PTE_A | VMS_PTE_D)));
    fx_fini(&f);
}

static void test_fault_log(void)
{
    vms_iommu_config cfg;
    vms_iommu_config_default(&cfg);
    cfg.fault_log_len = 3;
    fixture f;
    NEED(fx_init(&f, NULL, &cfg));
    CHECK_EQ(attach(&f, BDF_A, 7, &f.pt), VMS_OK);
    CHECK_EQ(vms_pt_map(&f.pt, 0x5000, 0x55000, VMS_PG_4K, R, NULL), VMS_OK);
    CHECK_EQ(xl(&f, BDF_A, 0x5010, VMS_ACC_WRITE, NULL), VMS_IOMMU_NO_WRITE);
    CHECK_EQ(vms_iommu_fault_count(f.io), 1);
    vms_iommu_fault r;
    CHECK(vms_iommu_fault_get(f.io, 0, &r));
    CHECK_EQ(r.bdf, BDF_A);
    CHECK_EQ(r.did, 7);
    CHECK_EQ(r.iova, 0x5010);
    CHECK_EQ(r.kind, VMS_ACC_WRITE);
    CHECK_EQ(r.reason, VMS_IOMMU_NO_WRITE);
    CHECK(!vms_iommu_fault_get(f.io, 1, &r));
    vms_strbuf sb;
    vms_strbuf_init(&sb, NULL);
    vms_iommu_fault_format(&r, &sb);
    CHECK_STR(vms_strbuf_str(&sb), "DMAR: [DMA Write] Request device [00:03.0] domain 7 fault "
                                   "addr 0x5010: no write permission");
    vms_strbuf_free(&sb);
    /* The log holds three; the fourth and fifth are counted as overflow. */
    for (int i = 0; i < 4; i++)
        xl(&f, BDF_B, (uint64_t)i << 12, VMS_ACC_READ, NULL);
    CHECK_EQ(vms_iommu_fault_count(f.io), 3);
    CHECK_EQ(vms_iommu_get_stats(f.io)->fault_log_overflows, 2);
    CHECK_EQ(vms_iommu_get_stats(f.io)->faults, 5);
    CHECK_EQ(vms_iommu_get_stats(f.io)->faults_by_reason[VMS_IOMMU_NO_CONTEXT], 4);
    CHECK(vms_iommu_fault_get(f.io, 2, &r));
    CHECK_EQ(r.iova, 0x1000); /* oldest kept, newest dropped, as VT-d's overflow */
    vms_iommu_fault_clear(f.io);
    CHECK_EQ(vms_iommu_fault_count(f.io), 0);
    for (unsigned i = 0; i <= VMS_IOMMU_NREASONS; i++)
        CHECK(vms_iommu_reason_str((vms_iommu_reason)i) != NULL);
    fx_fini(&f);
}

/* ---- IOTLB, staleness, invalidation --------------------------------------------------- */

static void test_iotlb_and_costs(void)
{
    fixture f;
    NEED(fx_init(&f, NULL, NULL));
    CHECK_EQ(attach(&f, BDF_A, 1, &f.pt), VMS_OK);
    CHECK_EQ(vms_pt_map(&f.pt, 0x7000, 0x57000, VMS_PG_4K, R | W, NULL), VMS_OK);
    const vms_iommu_stats *s = vms_iommu_get_stats(f.io);
    const vms_tlb_stats *t = vms_tlb_get_stats(vms_iommu_iotlb(f.io));
    CHECK_EQ(xl(&f, BDF_A, 0x7000, VMS_ACC_READ, NULL), VMS_IOMMU_OK);
    CHECK_EQ(s->walks, 1);
    CHECK_EQ(s->walk_refs, 4); /* a cold 4-level walk */
    CHECK_EQ(t->misses, 1);
    CHECK_EQ(xl(&f, BDF_A, 0x7ff8, VMS_ACC_WRITE, NULL), VMS_IOMMU_OK);
    CHECK_EQ(s->walks, 1); /* an IOTLB hit */
    CHECK_EQ(t->hits, 1);
    CHECK_EQ(s->cycles, 4 * 25 + 1);
    CHECK_EQ(s->translations, 2);
    /* JSON carries the members tools read. */
    vms_strbuf sb;
    vms_strbuf_init(&sb, NULL);
    CHECK_EQ(vms_iommu_stats_json_members(f.io, &sb), VMS_OK);
    const char *js = vms_strbuf_str(&sb);
    CHECK(strstr(js, "\"enabled\":true") != NULL);
    CHECK(strstr(js, "\"iotlb\":{\"lookups\":2,\"hits\":1,\"misses\":1") != NULL);
    CHECK(strstr(js, "\"walk_refs\":4") != NULL);
    CHECK(strstr(js, "\"no_write\":0") != NULL);
    CHECK(strstr(js, "\"cycles\":101") != NULL);
    vms_strbuf_free(&sb);
    vms_iommu_reset_stats(f.io);
    CHECK_EQ(s->translations, 0);
    CHECK_EQ(t->lookups, 0);
    fx_fini(&f);
}

/* Map page p of domain pt to pa with rights, then return what the device sees. */
static void test_stale_and_invalidation(void)
{
    fixture f;
    NEED(fx_init(&f, NULL, NULL));
    vms_pt pt2;
    vms_pt_ops ops = {bump_alloc, bump_free, &f.b};
    NEED(vms_pt_init(&pt2, vms_machine_bus(f.m), 4, &ops, NULL) == VMS_OK);
    vms_bdf c = vms_bdf_make(0, 4, 1); /* shares domain 2 with B */
    CHECK_EQ(attach(&f, BDF_A, 1, &f.pt), VMS_OK);
    CHECK_EQ(attach(&f, BDF_B, 2, &pt2), VMS_OK);
    CHECK_EQ(attach(&f, c, 2, &pt2), VMS_OK);
    for (uint64_t p = 0; p < 4; p++) {
        vms_pt_map(&f.pt, p << 12, 0x60000 + (p << 12), VMS_PG_4K, R | W, NULL);
        vms_pt_map(&pt2, p << 12, 0x70000 + (p << 12), VMS_PG_4K, R | W, NULL);
    }
    uint64_t pa;
    for (uint64_t p = 0; p < 4; p++) {
        xl(&f, BDF_A, p << 12, VMS_ACC_READ, &pa);
        xl(&f, BDF_B, p << 12, VMS_ACC_READ, &pa);
    }
    CHECK_EQ(vms_tlb_count(vms_iommu_iotlb(f.io)), 8);
    /* B's fills serve C: same domain. */
    uint64_t walks = vms_iommu_get_stats(f.io)->walks;
    CHECK_EQ(xl(&f, c, 0x2000, VMS_ACC_READ, &pa), VMS_IOMMU_OK);
    CHECK_EQ(pa, 0x72000);
    CHECK_EQ(vms_iommu_get_stats(f.io)->walks, walks);
    /* Unmap without invalidating: the stale entry is still used. */
    for (uint64_t p = 0; p < 4; p++) {
        vms_pt_unmap(&f.pt, p << 12, false, NULL);
        vms_pt_unmap(&pt2, p << 12, false, NULL);
    }
    CHECK_EQ(xl(&f, BDF_A, 0x1000, VMS_ACC_WRITE, &pa), VMS_IOMMU_OK);
    CHECK_EQ(pa, 0x61000);
    /* Range: pages 1-2 of domain 1 only. */
    vms_iommu_inv_range(f.io, 1, 0x1800, 0x1000);
    CHECK_EQ(xl(&f, BDF_A, 0x1000, VMS_ACC_READ, NULL), VMS_IOMMU_NOT_PRESENT);
    CHECK_EQ(xl(&f, BDF_A, 0x2000, VMS_ACC_READ, NULL), VMS_IOMMU_NOT_PRESENT);
    CHECK_EQ(xl(&f, BDF_A, 0x3000, VMS_ACC_READ, NULL), VMS_IOMMU_OK);
    CHECK_EQ(xl(&f, BDF_B, 0x1000, VMS_ACC_READ, NULL), VMS_IOMMU_OK);
    /* Device: C's domain is 2, which drops B's entries too. */
    vms_iommu_inv_device(f.io, c);
    CHECK_EQ(xl(&f, BDF_B, 0x0000, VMS_ACC_READ, NULL), VMS_IOMMU_NOT_PRESENT);
    CHECK_EQ(xl(&f, BDF_A, 0x0000, VMS_ACC_READ, NULL), VMS_IOMMU_OK);
    /* Domain, then global. */
    vms_iommu_inv_domain(f.io, 1);
    CHECK_EQ(xl(&f, BDF_A, 0x0000, VMS_ACC_READ, NULL), VMS_IOMMU_NOT_PRESENT);
    vms_pt_map(&f.pt, 0x0000, 0x60000, VMS_PG_4K, R | W, NULL);
    xl(&f, BDF_A, 0x0000, VMS_ACC_READ, NULL);
    CHECK(vms_tlb_count(vms_iommu_iotlb(f.io)) > 0);
    vms_iommu_inv_global(f.io);
    CHECK_EQ(vms_tlb_count(vms_iommu_iotlb(f.io)), 0);
    /* A large range is dropped by a scan: same effect. */
    for (uint64_t p = 0; p < 4; p++)
        vms_pt_map(&f.pt, p << 12, 0x60000 + (p << 12), VMS_PG_4K, R | W, NULL);
    for (uint64_t p = 0; p < 4; p++)
        xl(&f, BDF_A, p << 12, VMS_ACC_READ, NULL);
    vms_iommu_inv_range(f.io, 1, 0x2000, UINT64_C(1) << 40);
    CHECK_EQ(vms_tlb_count(vms_iommu_iotlb(f.io)), 2);
    vms_iommu_inv_range(f.io, 1, 0, UINT64_MAX);
    CHECK_EQ(vms_tlb_count(vms_iommu_iotlb(f.io)), 0);
    /* A rights upgrade without invalidation: the cached read-only entry faults (and is
     * dropped); the retry walks and succeeds. */
    vms_pt_protect(&f.pt, 0x1000, 0, W, NULL);
    CHECK_EQ(xl(&f, BDF_A, 0x1000, VMS_ACC_READ, NULL), VMS_IOMMU_OK);
    vms_pt_protect(&f.pt, 0x1000, W, 0, NULL);
    CHECK_EQ(xl(&f, BDF_A, 0x1000, VMS_ACC_WRITE, NULL), VMS_IOMMU_NO_WRITE);
    CHECK_EQ(vms_iommu_get_stats(f.io)->iotlb_hit_faults, 1);
    CHECK_EQ(xl(&f, BDF_A, 0x1000, VMS_ACC_WRITE, NULL), VMS_IOMMU_OK);
    const vms_iommu_stats *s = vms_iommu_get_stats(f.io);
    CHECK_EQ(s->inv_range, 3);
    CHECK_EQ(s->inv_device, 1);
    CHECK_EQ(s->inv_domain, 1);
    CHECK_EQ(s->inv_global, 1);
    CHECK(vms_tlb_check(vms_iommu_iotlb(f.io)));
    fx_fini(&f);
}

/* ---- modes, page sizes, errors ------------------------------------------------------- */

static void test_passthrough_and_off(void)
{
    fixture f;
    NEED(fx_init(&f, NULL, NULL));
    vms_iommu_context pt = {.mode = VMS_IOMMU_PASSTHROUGH};
    CHECK_EQ(vms_iommu_set_context(f.io, BDF_A, &pt, NULL), VMS_OK);
    uint64_t pa = 0, room = 0;
    CHECK(vms_iommu_translate(f.io, BDF_A, 0x123456, VMS_ACC_WRITE, &pa, &room, NULL));
    CHECK_EQ(pa, 0x123456);
    CHECK_EQ(room, 0x1000 - 0x456);
    CHECK_EQ(vms_iommu_get_stats(f.io)->passthrough, 1);
    vms_iommu_inv_device(f.io, BDF_A); /* nothing to drop */
    vms_iommu_context got;
    CHECK(vms_iommu_get_context(f.io, BDF_A, &got));
    CHECK_EQ(got.mode, VMS_IOMMU_PASSTHROUGH);
    CHECK(!vms_iommu_get_context(f.io, BDF_B, &got));
    /* Clearing the context blocks the device. */
    CHECK_EQ(vms_iommu_set_context(f.io, BDF_A, NULL, NULL), VMS_OK);
    CHECK_EQ(xl(&f, BDF_A, 0x123456, VMS_ACC_READ, NULL), VMS_IOMMU_NO_CONTEXT);
    CHECK_EQ(vms_iommu_set_context(f.io, BDF_B, NULL, NULL), VMS_OK); /* nothing there */
    /* Off: everything passes untranslated, and is counted as bypassed. */
    vms_iommu_set_enabled(f.io, false);
    CHECK(!vms_iommu_enabled(f.io));
    CHECK_EQ(xl(&f, BDF_B, 0x9000, VMS_ACC_WRITE, &pa), VMS_IOMMU_OK);
    CHECK_EQ(pa, 0x9000);
    CHECK_EQ(vms_iommu_get_stats(f.io)->bypassed, 1);
    vms_iommu_set_enabled(f.io, true);
    CHECK_EQ(xl(&f, BDF_B, 0x9000, VMS_ACC_WRITE, &pa), VMS_IOMMU_NO_CONTEXT);
    fx_fini(&f);
}

static void test_large_pages_and_bad_entries(void)
{
    fixture f;
    NEED(fx_init(&f, NULL, NULL));
    CHECK_EQ(attach(&f, BDF_A, 3, &f.pt), VMS_OK);
    CHECK_EQ(vms_pt_map(&f.pt, 0x200000, 0x400000, VMS_PG_2M, R | W, NULL), VMS_OK);
    CHECK_EQ(vms_pt_map(&f.pt, 0x40000000, 0x80000000, VMS_PG_1G, R, NULL), VMS_OK);
    uint64_t pa, room;
    CHECK(vms_iommu_translate(f.io, BDF_A, 0x212345, VMS_ACC_WRITE, &pa, &room, NULL));
    CHECK_EQ(pa, 0x412345);
    CHECK_EQ(room, 0x200000 - 0x12345);
    CHECK_EQ(vms_iommu_get_stats(f.io)->walk_refs, 3); /* a PD leaf */
    CHECK(vms_iommu_translate(f.io, BDF_A, 0x7fff0000, VMS_ACC_READ, &pa, &room, NULL));
    CHECK_EQ(pa, 0xbfff0000);
    CHECK_EQ(xl(&f, BDF_A, 0x40000000, VMS_ACC_WRITE, NULL), VMS_IOMMU_NO_WRITE);
    /* Both are cached at their size: hits anywhere in the page. */
    uint64_t walks = vms_iommu_get_stats(f.io)->walks;
    CHECK_EQ(xl(&f, BDF_A, 0x3ff000, VMS_ACC_READ, &pa), VMS_IOMMU_OK);
    CHECK_EQ(pa, 0x5ff000);
    CHECK_EQ(vms_iommu_get_stats(f.io)->walks, walks);
    /* A reserved bit (PS in a PML4 entry) and a table that decodes to nothing. */
    uint64_t ptep, pte;
    CHECK_EQ(vms_pt_entry_addr(&f.pt, 0x200000, 4, false, &ptep, NULL), VMS_OK);
    vms_pt_read(&f.pt, ptep, &pte);
    vms_pt_write(&f.pt, ptep, pte | VMS_PTE_PS);
    vms_iommu_inv_global(f.io);
    CHECK_EQ(xl(&f, BDF_A, 0x200000, VMS_ACC_READ, NULL), VMS_IOMMU_RSVD);
    vms_pt_write(&f.pt, ptep, vms_pte_mk(0xC0001000, VMS_PTE_P | R | W));
    CHECK_EQ(xl(&f, BDF_A, 0x200000, VMS_ACC_READ, NULL), VMS_IOMMU_TABLE_BUS);
    vms_pt_write(&f.pt, ptep, pte); /* restore, so the tree can be destroyed */
    CHECK_EQ(vms_iommu_get_stats(f.io)->faults_by_reason[VMS_IOMMU_RSVD], 1);
    /* 5-level tables translate 56-bit IOVAs. */
    vms_pt pt5;
    vms_pt_ops ops = {bump_alloc, bump_free, &f.b};
    NEED(vms_pt_init(&pt5, vms_machine_bus(f.m), 5, &ops, NULL) == VMS_OK);
    CHECK_EQ(attach(&f, BDF_B, 4, &pt5), VMS_OK);
    uint64_t high = UINT64_C(0x00F0000000001000);
    CHECK_EQ(vms_pt_map(&pt5, high, 0x90000, VMS_PG_4K, R, NULL), VMS_OK);
    CHECK_EQ(xl(&f, BDF_B, high + 8, VMS_ACC_READ, &pa), VMS_IOMMU_OK);
    CHECK_EQ(pa, 0x90008);
    CHECK_EQ(xl(&f, BDF_B, UINT64_C(1) << 56, VMS_ACC_READ, NULL), VMS_IOMMU_ADDR_WIDTH);
    fx_fini(&f);
}

/* Domain ids are 16 bits: 1 and 4097 (equal in their low 12 bits) and 65535 are three
 * domains; invalidating one leaves the others' IOTLB entries. */
static void test_wide_domain_ids(void)
{
    fixture f;
    NEED(fx_init(&f, NULL, NULL));
    vms_pt pt2, pt3;
    vms_pt_ops ops = {bump_alloc, bump_free, &f.b};
    NEED(vms_pt_init(&pt2, vms_machine_bus(f.m), 4, &ops, NULL) == VMS_OK);
    NEED(vms_pt_init(&pt3, vms_machine_bus(f.m), 4, &ops, NULL) == VMS_OK);
    vms_bdf c = vms_bdf_make(0, 5, 0);
    CHECK_EQ(attach(&f, BDF_A, 1, &f.pt), VMS_OK);
    CHECK_EQ(attach(&f, BDF_B, 4097, &pt2), VMS_OK);
    CHECK_EQ(attach(&f, c, 65535, &pt3), VMS_OK);
    vms_pt_map(&f.pt, 0x1000, 0x61000, VMS_PG_4K, R, NULL);
    vms_pt_map(&pt2, 0x1000, 0x71000, VMS_PG_4K, R, NULL);
    vms_pt_map(&pt3, 0x1000, 0x81000, VMS_PG_4K, R, NULL);
    uint64_t pa;
    CHECK(xl(&f, BDF_A, 0x1000, VMS_ACC_READ, &pa) == VMS_IOMMU_OK && pa == 0x61000);
    CHECK(xl(&f, BDF_B, 0x1000, VMS_ACC_READ, &pa) == VMS_IOMMU_OK && pa == 0x71000);
    CHECK(xl(&f, c, 0x1000, VMS_ACC_READ, &pa) == VMS_IOMMU_OK && pa == 0x81000);
    CHECK_EQ(vms_tlb_count(vms_iommu_iotlb(f.io)), 3);
    vms_iommu_inv_domain(f.io, 4097);
    CHECK_EQ(vms_tlb_count(vms_iommu_iotlb(f.io)), 2);
    vms_iommu_inv_range(f.io, 65535, 0x1000, 0x1000);
    CHECK_EQ(vms_tlb_count(vms_iommu_iotlb(f.io)), 1);
    CHECK(xl(&f, BDF_A, 0x1000, VMS_ACC_READ, &pa) == VMS_IOMMU_OK && pa == 0x61000);
    fx_fini(&f);
}

static void test_bad_config(void)
{
    fixture f;
    NEED(fx_init(&f, NULL, NULL));
    vms_err err = {0};
    vms_iommu_context c = {VMS_IOMMU_TRANSLATE, 1, f.pt.root, 3};
    CHECK_EQ(vms_iommu_set_context(f.io, BDF_A, &c, &err), VMS_ERR_INVAL);
    c = (vms_iommu_context){VMS_IOMMU_TRANSLATE, 1, f.pt.root + 8, 4};
    CHECK_EQ(vms_iommu_set_context(f.io, BDF_A, &c, &err), VMS_ERR_INVAL);
    c = (vms_iommu_context){(vms_iommu_mode)9, 1, f.pt.root, 4};
    CHECK_EQ(vms_iommu_set_context(f.io, BDF_A, &c, &err), VMS_ERR_INVAL);
    CHECK(!vms_iommu_get_context(f.io, BDF_A, NULL));
    vms_iommu_config cfg;
    vms_iommu_config_default(&cfg);
    cfg.fault_log_len = 0;
    vms_iommu *io = NULL;
    CHECK_EQ(vms_iommu_create(f.m, &cfg, &io, &err), VMS_ERR_INVAL);
    CHECK(io == NULL);
    vms_iommu_config_default(&cfg);
    cfg.iotlb.part[0].ways = 0;
    CHECK_EQ(vms_iommu_create(f.m, &cfg, &io, &err), VMS_ERR_INVAL);
    /* No IOTLB at all: every translation walks. */
    vms_iommu_config_default(&cfg);
    cfg.iotlb.nparts = 0;
    CHECK_EQ(vms_iommu_create(f.m, &cfg, &io, &err), VMS_OK);
    vms_iommu_context ok = {VMS_IOMMU_TRANSLATE, 1, f.pt.root, 4};
    CHECK_EQ(vms_iommu_set_context(io, BDF_A, &ok, &err), VMS_OK);
    vms_pt_map(&f.pt, 0, 0x50000, VMS_PG_4K, R, NULL);
    uint64_t pa, room;
    for (int i = 0; i < 3; i++)
        CHECK(vms_iommu_translate(io, BDF_A, 0, VMS_ACC_READ, &pa, &room, NULL));
    CHECK_EQ(vms_iommu_get_stats(io)->walks, 3);
    vms_iommu_destroy(io);
    vms_iommu_destroy(NULL);
    fx_fini(&f);
}

/* ---- DMA through the IOMMU ------------------------------------------------------------ */

static void test_dma_pieces(void)
{
    fixture f;
    NEED(fx_init(&f, NULL, NULL));
    vms_dev *d = NULL;
    vms_dev_config dc = {"dma", BDF_A, 0};
    NEED(vms_dev_create(f.m, f.io, &dc, &d, NULL) == VMS_OK);
    CHECK_EQ(attach(&f, BDF_A, 1, &f.pt), VMS_OK);
    /* Two IOVA-contiguous pages on scattered frames, then a hole. */
    vms_pt_map(&f.pt, 0x10000, 0x300000, VMS_PG_4K, R | W, NULL);
    vms_pt_map(&f.pt, 0x11000, 0x100000, VMS_PG_4K, R | W, NULL);
    uint8_t buf[3 * 4096], back[3 * 4096];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(i * 7 + 1);
    vms_dma_result r = vms_dev_dma(d, 0x10800, buf, 6000, VMS_ACC_WRITE);
    CHECK(r.ok);
    CHECK_EQ(r.done, 6000);
    vms_ram *ram = vms_machine_ram(f.m);
    vms_ram_read(ram, 0x300800, back, 2048);
    CHECK(memcmp(back, buf, 2048) == 0);
    vms_ram_read(ram, 0x100000, back, 6000 - 2048);
    CHECK(memcmp(back, buf + 2048, 6000 - 2048) == 0);
    memset(back, 0, sizeof back);
    r = vms_dev_dma(d, 0x10800, back, 6000, VMS_ACC_READ);
    CHECK(r.ok && memcmp(back, buf, 6000) == 0);
    /* Running into the hole: the first two pages move, the third is blocked. */
    r = vms_dev_dma(d, 0x10000, buf, sizeof buf, VMS_ACC_WRITE);
    CHECK(!r.ok);
    CHECK_EQ(r.done, 8192);
    CHECK_EQ(r.fault.reason, VMS_IOMMU_NOT_PRESENT);
    CHECK_EQ(r.fault.iova, 0x12000);
    CHECK_EQ(vms_iommu_fault_count(f.io), 1);
    const vms_dev_stats *s = vms_dev_get_stats(d);
    CHECK_EQ(s->dma_blocked, 1);
    CHECK_EQ(s->dma_bytes_written, 6000 + 8192);
    CHECK_EQ(s->dma_pieces, 2 + 2 + 3); /* a request never crosses a 4 KiB IOVA page */
    /* A mapping to an address with nothing on the bus is a bus error, not a fault. */
    vms_pt_map(&f.pt, 0x20000, 0xD0000000, VMS_PG_4K, R | W, NULL);
    r = vms_dev_dma(d, 0x20000, buf, 16, VMS_ACC_READ);
    CHECK(!r.ok);
    CHECK_EQ(r.bus, VMS_ERR_BUS);
    CHECK_EQ(r.pa, 0xD0000000);
    CHECK_EQ(r.fault.reason, VMS_IOMMU_OK);
    CHECK_EQ(s->dma_bus_errors, 1);
    vms_strbuf sb;
    vms_strbuf_init(&sb, NULL);
    CHECK_EQ(vms_dev_stats_json_members(d, &sb), VMS_OK);
    CHECK(strstr(vms_strbuf_str(&sb), "\"bdf\":\"00:03.0\"") != NULL);
    CHECK(strstr(vms_strbuf_str(&sb), "\"blocked\":1") != NULL);
    vms_strbuf_free(&sb);
    vms_dev_destroy(d);
    fx_fini(&f);
}

/* ---- the differential test ------------------------------------------------------------ */

#define NPAGES    32                 /* IOVA pages per domain */
#define NFRAMES   48                 /* data frames devices may reach */
#define IOVA_BASE UINT64_C(0x7f0000) /* not page-table aligned: crosses a PT boundary */
#define NDEV      5

typedef struct ref_map {
    bool valid;
    unsigned frame;
    bool r, w;
} ref_map;

typedef struct diff {
    fixture f;
    vms_rng rng;
    vms_pt pt[3];       /* [1], [2]: domains 1 and 2 */
    vms_dev *dev[NDEV]; /* 0: dom 1, 1 and 2: dom 2, 3: passthrough, 4: no context */
    ref_map map[3][NPAGES];
    ref_map tlb[3][NPAGES]; /* what the IOTLB may still hold */
    uint8_t *ram;           /* reference image of the data frames */
    uint64_t hits, misses, faults, stale_hits, blocked_dmas, moved;
    unsigned mismatches;
} diff;

static const unsigned dev_dom[NDEV] = {1, 2, 2, 0, 0};

static void mismatch(diff *d, int step, const char *what)
{
    if (d->mismatches++ < 5)
        fprintf(stderr, "diff step %d: %s\n", step, what);
}

/* The reference translation of one request: the frame and offset, or a reason. */
static vms_iommu_reason ref_xlate(diff *d, unsigned dom, uint64_t iova, bool write, uint64_t *off)
{
    uint64_t page = (iova - IOVA_BASE) >> 12;
    if (iova < IOVA_BASE || page >= NPAGES) {
        d->misses++; /* an IOTLB miss and a walk that finds nothing */
        return VMS_IOMMU_NOT_PRESENT;
    }
    ref_map *c = &d->tlb[dom][page];
    if (c->valid) {
        d->hits++;
        ref_map *m = &d->map[dom][page];
        d->stale_hits += !m->valid || m->frame != c->frame || m->r != c->r || m->w != c->w;
        if (write ? !c->w : !c->r) {
            c->valid = false;
            return write ? VMS_IOMMU_NO_WRITE : VMS_IOMMU_NO_READ;
        }
    } else {
        d->misses++;
        const ref_map *m = &d->map[dom][page];
        if (!m->valid)
            return VMS_IOMMU_NOT_PRESENT;
        if (write ? !m->w : !m->r)
            return write ? VMS_IOMMU_NO_WRITE : VMS_IOMMU_NO_READ;
        *c = *m;
    }
    *off = (uint64_t)c->frame * 4096 + (iova & 4095);
    return VMS_IOMMU_OK;
}

/* A random DMA by device i, checked against the reference. */
static void diff_dma(diff *d, int step, unsigned i)
{
    bool write = vms_rng_below(&d->rng, 2);
    /* Half short, half up to three pages (crossing one or two page boundaries). */
    size_t max = vms_rng_below(&d->rng, 2) ? 512 : 3 * 4096;
    size_t len = 1 + (size_t)vms_rng_below(&d->rng, max);
    uint64_t iova;
    if (i == 3) /* passthrough: physical addresses inside the data frames */
        iova = DATA_BASE + vms_rng_below(&d->rng, NFRAMES * 4096 - len);
    else
        iova = IOVA_BASE - 4096 + vms_rng_below(&d->rng, (NPAGES + 2) * 4096);
    static uint8_t buf[3 * 4096], want[3 * 4096];
    for (size_t k = 0; k < len; k++)
        buf[k] = (uint8_t)vms_rng_next(&d->rng);
    /* The reference: page pieces in order until the first block. */
    size_t done = 0;
    vms_iommu_reason why = VMS_IOMMU_OK;
    while (done < len) {
        uint64_t cur = iova + done, off = cur - DATA_BASE;
        size_t n = 4096 - (size_t)(cur & 4095);
        n = n < len - done ? n : len - done;
        if (i == 4)
            why = VMS_IOMMU_NO_CONTEXT;
        else if (i != 3)
            why = ref_xlate(d, dev_dom[i], cur, write, &off);
        if (why != VMS_IOMMU_OK)
            break;
        if (write)
            memcpy(d->ram + off, buf + done, n);
        else
            memcpy(want + done, d->ram + off, n);
        done += n;
    }
    d->faults += why != VMS_IOMMU_OK;
    static uint8_t got[3 * 4096];
    uint8_t *io_buf = buf;
    if (!write) { /* reads land in a clean buffer */
        memset(got, 0, len);
        io_buf = got;
    }
    vms_dma_result r =
        vms_dev_dma(d->dev[i], iova, io_buf, len, write ? VMS_ACC_WRITE : VMS_ACC_READ);
    if (r.done != done || r.ok != (why == VMS_IOMMU_OK) || r.fault.reason != why)
        mismatch(d, step, "transfer length or verdict differs");
    if (!write && memcmp(io_buf, want, r.done < done ? r.done : done) != 0)
        mismatch(d, step, "read data differs");
    unsigned logged = vms_iommu_fault_count(d->f.io);
    vms_iommu_fault lf;
    if (logged != (why != VMS_IOMMU_OK))
        mismatch(d, step, "fault log count differs");
    else if (logged && (!vms_iommu_fault_get(d->f.io, 0, &lf) || lf.reason != why ||
                        lf.iova != iova + done || lf.bdf != vms_dev_bdf(d->dev[i]) ||
                        lf.kind != (write ? VMS_ACC_WRITE : VMS_ACC_READ)))
        mismatch(d, step, "fault record differs");
    vms_iommu_fault_clear(d->f.io);
    d->blocked_dmas += why != VMS_IOMMU_OK;
    d->moved += done;
}

/* Change a random mapping of a random domain (map, unmap or protect). */
static void diff_edit(diff *d, unsigned dom, unsigned page, unsigned op)
{
    vms_pt *pt = &d->pt[dom];
    uint64_t iova = IOVA_BASE + (uint64_t)page * 4096;
    ref_map *m = &d->map[dom][page];
    bool r = vms_rng_below(&d->rng, 8) != 0, w = vms_rng_below(&d->rng, 4) != 0;
    uint64_t rights = (r ? R : 0) | (w ? W : 0);
    if (op == 0) { /* map or remap */
        unsigned frame = (unsigned)vms_rng_below(&d->rng, NFRAMES);
        uint64_t ptep;
        if (vms_pt_entry_addr(pt, iova, 1, true, &ptep, NULL) != VMS_OK)
            return;
        vms_pt_write(pt, ptep, vms_pte_mk(DATA_BASE + frame * UINT64_C(4096), VMS_PTE_P | rights));
        *m = (ref_map){true, frame, r, w};
    } else if (op == 1) {
        vms_pt_unmap(pt, iova, vms_rng_below(&d->rng, 2), NULL);
        m->valid = false;
    } else if (m->valid) {
        vms_pt_protect(pt, iova, rights, R | W, NULL);
        m->r = r;
        m->w = w;
    }
}

/* Invalidate something (or nothing), in the IOMMU and in the reference. */
static void diff_inval(diff *d, unsigned dom, unsigned page)
{
    unsigned how = (unsigned)vms_rng_below(&d->rng, 20);
    if (how < 8) {
        return; /* none: stale entries stay */
    } else if (how < 17) {
        unsigned n = 1 + (unsigned)vms_rng_below(&d->rng, 3);
        vms_iommu_inv_range(d->f.io, (uint16_t)dom, IOVA_BASE + page * UINT64_C(4096) + 5,
                            n * UINT64_C(4096) - 5);
        for (unsigned p = page; p < page + n && p < NPAGES; p++)
            d->tlb[dom][p].valid = false;
    } else if (how == 17) {
        vms_iommu_inv_domain(d->f.io, (uint16_t)dom);
        memset(d->tlb[dom], 0, sizeof d->tlb[dom]);
    } else if (how == 18) {
        vms_iommu_inv_device(d->f.io, vms_dev_bdf(d->dev[dom == 1 ? 0 : 2]));
        memset(d->tlb[dom], 0, sizeof d->tlb[dom]);
    } else {
        vms_iommu_inv_global(d->f.io);
        memset(d->tlb, 0, sizeof d->tlb);
    }
}

/* Whole data region against the reference. */
static bool diff_ram_ok(diff *d)
{
    static uint8_t img[NFRAMES * 4096];
    vms_ram_read(vms_machine_ram(d->f.m), DATA_BASE, img, sizeof img);
    return memcmp(img, d->ram, sizeof img) == 0;
}

static bool diff_setup(diff *d)
{
    vms_iommu_config cfg;
    vms_iommu_config_default(&cfg);
    /* Big enough that nothing is evicted: staleness is then exactly predictable. */
    cfg.iotlb = (vms_tlb_config){1, {{VMS_TLB_SIZES_ALL, 64, 64, "lru"}}};
    if (!fx_init(&d->f, NULL, &cfg))
        return false;
    vms_rng_seed(&d->rng, th_seed ^ 0x10aaull);
    d->pt[1] = d->f.pt;
    vms_pt_ops ops = {bump_alloc, bump_free, &d->f.b};
    if (vms_pt_init(&d->pt[2], vms_machine_bus(d->f.m), 4, &ops, NULL) != VMS_OK)
        return false;
    for (unsigned i = 0; i < NDEV; i++) {
        vms_dev_config dc = {"dev", vms_bdf_make(1, i, 0), 0};
        if (vms_dev_create(d->f.m, d->f.io, &dc, &d->dev[i], NULL) != VMS_OK)
            return false;
        if (dev_dom[i])
            attach(&d->f, dc.bdf, (uint16_t)dev_dom[i], &d->pt[dev_dom[i]]);
    }
    vms_iommu_context pass = {.mode = VMS_IOMMU_PASSTHROUGH};
    vms_iommu_set_context(d->f.io, vms_dev_bdf(d->dev[3]), &pass, NULL);
    /* Fill the data frames with a pattern, and the reference with the same. */
    d->ram = calloc(NFRAMES, 4096);
    for (size_t k = 0; k < NFRAMES * 4096; k++)
        d->ram[k] = (uint8_t)(k * 13 + 5);
    vms_ram_write(vms_machine_ram(d->f.m), DATA_BASE, d->ram, NFRAMES * 4096);
    return true;
}

static void test_diff(void)
{
    static diff d;
    memset(&d, 0, sizeof d);
    NEED(diff_setup(&d));
    vms_ram *ram = vms_machine_ram(d.f.m);
    for (int step = 0; step < 20000; step++) {
        unsigned op = (unsigned)vms_rng_below(&d.rng, 100);
        unsigned dom = 1 + (unsigned)vms_rng_below(&d.rng, 2);
        unsigned page = (unsigned)vms_rng_below(&d.rng, NPAGES);
        uint64_t resident = vms_ram_resident_frames(ram);
        if (op < 16) {
            diff_edit(&d, dom, page, op < 10 ? 0 : op < 12 ? 1 : 2);
            diff_inval(&d, dom, page);
        } else {
            uint64_t tables = d.f.b.next - TABLE_BASE;
            uint8_t *before = malloc(tables);
            bool snap = step % 16 == 0;
            if (snap)
                vms_ram_read(ram, TABLE_BASE, before, tables);
            /* Mostly the translated devices; passthrough and no-context now and then. */
            unsigned w = (unsigned)vms_rng_below(&d.rng, 20);
            diff_dma(&d, step, w < 6 ? 0 : w < 12 ? 1 : w < 17 ? 2 : w < 19 ? 3 : 4);
            if (vms_ram_resident_frames(ram) != resident)
                mismatch(&d, step, "a DMA touched a frame outside the data region");
            if (snap) {
                uint8_t *after = malloc(tables);
                vms_ram_read(ram, TABLE_BASE, after, tables);
                if (memcmp(before, after, tables) != 0)
                    mismatch(&d, step, "a DMA changed the IOMMU's tables");
                free(after);
            }
            free(before);
        }
        if (step % 256 == 0 && !diff_ram_ok(&d))
            mismatch(&d, step, "data region differs from the reference");
    }
    CHECK_EQ(d.mismatches, 0);
    CHECK(diff_ram_ok(&d));
    /* Costs: every reference hit is an IOTLB hit, every miss one walk. */
    const vms_iommu_stats *s = vms_iommu_get_stats(d.f.io);
    const vms_tlb_stats *t = vms_tlb_get_stats(vms_iommu_iotlb(d.f.io));
    CHECK_EQ(t->hits, d.hits);
    CHECK_EQ(t->misses, d.misses);
    CHECK_EQ(s->walks, d.misses);
    CHECK_EQ(s->faults, d.faults);
    CHECK_EQ(t->evictions, 0);
    CHECK_EQ(s->cycles, t->hits * 1 + s->walk_refs * 25);
    CHECK(vms_tlb_check(vms_iommu_iotlb(d.f.io)));
    /* The run must exercise everything: hits, stale hits, blocks, moves. */
    CHECK(d.hits > 1000);
    CHECK(d.stale_hits > 100);
    CHECK(d.blocked_dmas > 1000);
    CHECK(d.moved > 1000000);
    CHECK(s->faults_by_reason[VMS_IOMMU_NO_READ] > 0);
    CHECK(s->faults_by_reason[VMS_IOMMU_NO_WRITE] > 0);
    CHECK(s->faults_by_reason[VMS_IOMMU_NO_CONTEXT] > 0);
    CHECK(s->passthrough > 0);
    printf("iommu: diff: %" PRIu64 " hits (%" PRIu64 " stale), %" PRIu64 " misses, %" PRIu64
           " blocked DMAs, %" PRIu64 " bytes moved\n",
           d.hits, d.stale_hits, d.misses, d.blocked_dmas, d.moved);
    for (unsigned i = 0; i < NDEV; i++)
        vms_dev_destroy(d.dev[i]);
    free(d.ram);
    fx_fini(&d.f);
}

/* ---- allocation failures ------------------------------------------------------------- */

/* Build a machine, an IOMMU, a context on two buses and a device; -1 when the budget ran
 * out somewhere (everything built so far destroyed), 0 when all of it worked. */
static int build_all(const vms_allocator *a)
{
    fixture f;
    if (!fx_init(&f, a, NULL)) {
        fx_fini(&f); /* whatever was built */
        return -1;
    }
    int rc = -1;
    vms_dev *d = NULL;
    vms_dev_config dc = {"dma", BDF_A, 0};
    if (attach(&f, BDF_A, 1, &f.pt) == VMS_OK &&
        attach(&f, vms_bdf_make(9, 0, 0), 1, &f.pt) == VMS_OK &&
        vms_dev_create(f.m, f.io, &dc, &d, NULL) == VMS_OK) {
        vms_pt_map(&f.pt, 0, 0x50000, VMS_PG_4K, R | W, NULL);
        uint8_t b[64] = {1};
        rc = vms_dev_dma(d, 0, b, sizeof b, VMS_ACC_WRITE).ok ? 0 : -1;
    }
    vms_dev_destroy(d);
    fx_fini(&f);
    return rc;
}

static void test_alloc_failures(void)
{
    int ok_at = -1;
    for (long budget = 0; budget < 200 && ok_at < 0; budget++) {
        th_failalloc fa;
        const vms_allocator *a = th_failalloc_init(&fa, budget);
        int rc = build_all(a);
        CHECK_EQ(fa.live_bytes, 0); /* nothing leaks, whatever failed */
        if (rc == 0)
            ok_at = (int)budget;
    }
    CHECK(ok_at > 0);
}

/* ---- an SMMUv3 stage 2 context (Arm stage 2 tables, iommu.h) ------------------------ */

/* The STE's fields at their spec positions (IHI 0070 §5.2): Config, S2VMID, S2T0SZ,
 * S2SL0, S2AA64, S2AFFD, S2TTB; the IOMMU walks the Arm stage 2 tables it names through
 * the format (S2AP read/write, invalid descriptors, blocks, the IPA size), tags the
 * IOTLB with the VMID (two streams, two VMs, one IOVA), and refuses STEs it does not
 * model with the field named. */
static void test_smmu_stage2(void)
{
    for (unsigned levels = 3; levels <= 4; levels++) {
        fixture f;
        NEED(fx_init(&f, NULL, NULL));
        vms_pt s2[2];
        vms_pt_ops ops = {bump_alloc, bump_free, &f.b};
        for (unsigned v = 0; v < 2; v++)
            NEED(vms_pt_init_format(&s2[v], vms_machine_bus(f.m), vms_format_stage2(levels), &ops,
                                    NULL) == VMS_OK);
        unsigned rw = VMS_PGPROT_R | VMS_PGPROT_W | VMS_PGPROT_A | VMS_PGPROT_D;
        CHECK_EQ(vms_pt_map_prot(&s2[0], 0x5000, DATA_BASE, VMS_PG_4K, rw, NULL), VMS_OK);
        CHECK_EQ(vms_pt_map_prot(&s2[0], 0x6000, DATA_BASE + 0x1000, VMS_PG_4K,
                                 VMS_PGPROT_R | VMS_PGPROT_A, NULL),
                 VMS_OK); /* S2AP = R- */
        CHECK_EQ(vms_pt_map_prot(&s2[0], 0x200000, DATA_BASE + 0x200000, VMS_PG_2M, rw, NULL),
                 VMS_OK);
        CHECK_EQ(vms_pt_map_prot(&s2[1], 0x5000, DATA_BASE + 0x3000, VMS_PG_4K, rw, NULL), VMS_OK);
        uint64_t top = (UINT64_C(1) << (levels == 4 ? 47 : 38)) + 0x5000; /* the IPA's top half */
        CHECK_EQ(vms_pt_map_prot(&s2[0], top, DATA_BASE + 0x4000, VMS_PG_4K, rw, NULL), VMS_OK);
        uint64_t ste[VMS_SMMU_STE_DWORDS];
        vms_smmu_ste_s2(ste, s2[0].root, 0x1234, levels);
        CHECK_EQ(ste[0], UINT64_C(0xD));                             /* V, Config 0b110 */
        CHECK_EQ(ste[2] & 0xFFFF, 0x1234u);                          /* S2VMID 143:128 */
        CHECK_EQ((ste[2] >> 32) & 0x3F, levels == 4 ? 16u : 25u);    /* S2T0SZ 165:160 */
        CHECK_EQ((ste[2] >> 38) & 3, levels == 4 ? 2u : 1u);         /* S2SL0 167:166 */
        CHECK_EQ((ste[2] >> 51) & 1, 1u);                            /* S2AA64 179 */
        CHECK_EQ((ste[2] >> 53) & 1, 1u);                            /* S2AFFD 181 */
        CHECK_EQ(ste[3] & UINT64_C(0x000FFFFFFFFFFFF0), s2[0].root); /* S2TTB 243:196 */
        CHECK_EQ(vms_iommu_set_ste(f.io, BDF_A, ste, NULL), VMS_OK);
        vms_smmu_ste_s2(ste, s2[1].root, 0x99, levels);
        CHECK_EQ(vms_iommu_set_ste(f.io, BDF_B, ste, NULL), VMS_OK);
        vms_iommu_context c;
        CHECK(vms_iommu_get_context(f.io, BDF_A, &c));
        CHECK(c.did == 0x1234 && c.root == s2[0].root && c.levels == levels);
        CHECK(vms_iommu_context_format(f.io, BDF_A) == vms_format_stage2(levels));
        uint64_t pa = 0, refs = vms_iommu_get_stats(f.io)->walk_refs;
        CHECK_EQ(xl(&f, BDF_A, 0x5010, VMS_ACC_WRITE, &pa), VMS_IOMMU_OK);
        CHECK_EQ(pa, DATA_BASE + 0x10);
        CHECK_EQ(vms_iommu_get_stats(f.io)->walk_refs - refs, levels); /* a 4 KiB page */
        CHECK_EQ(xl(&f, BDF_B, 0x5010, VMS_ACC_READ, &pa), VMS_IOMMU_OK);
        CHECK_EQ(pa, DATA_BASE + 0x3010); /* the other VMID's entry, same IOVA */
        CHECK_EQ(xl(&f, BDF_A, 0x5010, VMS_ACC_READ, &pa), VMS_IOMMU_OK);
        CHECK_EQ(pa, DATA_BASE + 0x10); /* an IOTLB hit, tagged by VMID 0x1234 */
        CHECK_EQ(xl(&f, BDF_A, 0x6008, VMS_ACC_READ, &pa), VMS_IOMMU_OK);
        CHECK_EQ(xl(&f, BDF_A, 0x6008, VMS_ACC_WRITE, &pa), VMS_IOMMU_NO_WRITE);
        refs = vms_iommu_get_stats(f.io)->walk_refs;
        CHECK_EQ(xl(&f, BDF_A, 0x2ff008, VMS_ACC_WRITE, &pa), VMS_IOMMU_OK);
        CHECK_EQ(pa, DATA_BASE + 0x2ff008); /* a 2 MiB block */
        CHECK_EQ(vms_iommu_get_stats(f.io)->walk_refs - refs, levels - 1);
        CHECK_EQ(xl(&f, BDF_A, 0x7000, VMS_ACC_READ, &pa), VMS_IOMMU_NOT_PRESENT);
        CHECK_EQ(xl(&f, BDF_B, 0x6000, VMS_ACC_READ, &pa), VMS_IOMMU_NOT_PRESENT);
        CHECK_EQ(xl(&f, BDF_A, top + 8, VMS_ACC_READ, &pa), VMS_IOMMU_OK); /* unsigned IPAs */
        CHECK_EQ(pa, DATA_BASE + 0x4008);
        CHECK_EQ(xl(&f, BDF_A, UINT64_C(1) << (levels == 4 ? 48 : 39), VMS_ACC_READ, &pa),
                 VMS_IOMMU_ADDR_WIDTH);
        vms_iommu_fault fl;
        CHECK(vms_iommu_fault_get(f.io, vms_iommu_fault_count(f.io) - 1, &fl));
        CHECK_EQ(fl.did, 0x1234); /* logged with the VMID */
        /* what is not modelled is refused, naming the field */
        vms_err err = {0};
        vms_smmu_ste_s2(ste, s2[0].root, 1, levels);
        ste[2] |= UINT64_C(1) << 56; /* S2HA */
        CHECK_EQ(vms_iommu_set_ste(f.io, BDF_A, ste, &err), VMS_ERR_INVAL);
        CHECK(strstr(err.msg, "S2HA") != NULL);
        vms_smmu_ste_s2(ste, s2[0].root, 1, levels);
        ste[2] ^= UINT64_C(3) << 38; /* S2SL0 against S2T0SZ */
        CHECK_EQ(vms_iommu_set_ste(f.io, BDF_A, ste, &err), VMS_ERR_INVAL);
        CHECK(strstr(err.msg, "S2SL0") != NULL);
        vms_smmu_ste_s2(ste, s2[0].root, 1, levels);
        ste[0] = VMS_SMMU_STE_V | (UINT64_C(4) << 1); /* bypass */
        CHECK_EQ(vms_iommu_set_ste(f.io, BDF_A, ste, &err), VMS_ERR_INVAL);
        CHECK(strstr(err.msg, "Config = 0b100") != NULL);
        ste[0] = 0;
        CHECK_EQ(vms_iommu_set_ste(f.io, BDF_A, ste, &err), VMS_ERR_INVAL);
        CHECK(vms_iommu_context_format(f.io, BDF_A) == vms_format_stage2(levels)); /* kept */
        fx_fini(&f);
    }
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "iommu");
    test_bdf();
    test_translate_rights();
    test_fault_log();
    test_iotlb_and_costs();
    test_stale_and_invalidation();
    test_passthrough_and_off();
    test_large_pages_and_bad_entries();
    test_wide_domain_ids();
    test_bad_config();
    test_dma_pieces();
    th_soak("VMS_IOMMU_SOAK", test_diff);
    test_alloc_failures();
    test_smmu_stage2();
    return th_finish();
}
