/* test_pt.c — page-table editing in simulated RAM: map/unmap/protect/lookup/entry_addr/
 * foreach/count/destroy on 4- and 5-level trees, 4K/2M/1G leaves, every error case of
 * pt.h, allocation failure, and a seeded random sequence checked against a plain list
 * with table accounting after every operation. */
#include "tpool.h"
#include "vmsim/rng.h"

#define RWUS (VMS_PTE_RW | VMS_PTE_US)

/* Read the raw entry at ptep straight from RAM (not through the code under test). */
static uint64_t raw(tpool *tp, uint64_t ptep)
{
    uint64_t v = 0;
    vms_ram_read64(tp->ram, ptep, &v);
    return v;
}

static void test_basic(void)
{
    tpool tp;
    REQUIRE_VOID(tp_init(&tp));
    vms_pt pt;
    vms_err err;
    CHECK_EQ(vms_pt_init(&pt, tp.bus, 3, &tp.ops, &err), VMS_ERR_INVAL);
    REQUIRE_VOID(vms_pt_init(&pt, tp.bus, 4, &tp.ops, &err) == VMS_OK);
    CHECK_EQ(vms_pt_count_tables(&pt), 1);

    /* Seed 000's example: page 0x12 -> frame 0x50. */
    CHECK_EQ(vms_pt_map(&pt, 0x12000, 0x50000, VMS_PG_4K, RWUS, &err), VMS_OK);
    CHECK_EQ(vms_pt_count_tables(&pt), 4);
    CHECK_EQ(tp_live(&tp), 4);
    uint64_t pte = 0, ptep = 0;
    vms_pgsize sz = VMS_PG_1G;
    CHECK(vms_pt_lookup(&pt, 0x12345, &pte, &ptep, &sz));
    CHECK_EQ(pte, 0x50000 | RWUS | VMS_PTE_P);
    CHECK_EQ(sz, VMS_PG_4K);
    CHECK_EQ(raw(&tp, ptep), pte);
    CHECK_EQ(ptep & 0xfff, 8 * 0x12);
    /* The intermediate entries are P|RW|US, each pointing to the next table. */
    uint64_t e = raw(&tp, pt.root);
    CHECK_EQ(e & 0xfff, VMS_PTE_P | RWUS);
    uint64_t pdpt = vms_pte_addr(e);
    uint64_t e_addr = 0;
    CHECK_EQ(vms_pt_entry_addr(&pt, 0x12000, 3, false, &e_addr, NULL), VMS_OK);
    CHECK_EQ(e_addr, pdpt);
    CHECK_EQ(vms_pt_entry_addr(&pt, 0x12000, 1, false, &e_addr, NULL), VMS_OK);
    CHECK_EQ(e_addr, ptep);
    CHECK_EQ(vms_pt_entry_addr(&pt, 0x12000, 0, false, &e_addr, NULL), VMS_ERR_INVAL);
    CHECK_EQ(vms_pt_entry_addr(&pt, 0x12000, 5, false, &e_addr, NULL), VMS_ERR_INVAL);
    CHECK_EQ(vms_pt_entry_addr(&pt, UINT64_C(1) << 39, 1, false, &e_addr, &err), VMS_ERR_NOTFOUND);
    CHECK_EQ(err.status, VMS_ERR_NOTFOUND);

    /* Errors: every one changes nothing. */
    CHECK_EQ(vms_pt_map(&pt, 0x12000, 0x60000, VMS_PG_4K, 0, &err), VMS_ERR_EXISTS);
    CHECK_EQ(vms_pt_map(&pt, 0, 0x200000, VMS_PG_2M, 0, NULL), VMS_ERR_EXISTS); /* table */
    CHECK_EQ(vms_pt_map(&pt, 0, 0x40000000, VMS_PG_1G, 0, NULL), VMS_ERR_EXISTS);
    CHECK_EQ(vms_pt_map(&pt, 0x13001, 0x60000, VMS_PG_4K, 0, NULL), VMS_ERR_INVAL);
    CHECK_EQ(vms_pt_map(&pt, 0x13000, 0x60800, VMS_PG_4K, 0, NULL), VMS_ERR_INVAL);
    CHECK_EQ(vms_pt_map(&pt, 0x200000, 0x301000, VMS_PG_2M, 0, NULL), VMS_ERR_INVAL);
    CHECK_EQ(vms_pt_map(&pt, 0x13000, UINT64_C(1) << 52, VMS_PG_4K, 0, NULL), VMS_ERR_INVAL);
    CHECK_EQ(vms_pt_map(&pt, 0x13000, 0x60000, VMS_PG_4K, 0x5000, NULL), VMS_ERR_INVAL);
    CHECK_EQ(vms_pt_map(&pt, UINT64_C(0x0000800000000000), 0, VMS_PG_4K, 0, &err), VMS_ERR_INVAL);
    CHECK(strstr(err.msg, "canonical") != NULL);
    CHECK_EQ(vms_pt_map(&pt, 0x13000, 0x60000, (vms_pgsize)3, 0, NULL), VMS_ERR_INVAL);
    CHECK_EQ(vms_pt_count_tables(&pt), 4);

    /* A 2M leaf (PAT bit 12 allowed there) next to it, and a 1G leaf at 1 GiB. */
    CHECK_EQ(vms_pt_map(&pt, 0x200000, 0x600000, VMS_PG_2M, VMS_PTE_RW | VMS_PTE_PAT_LARGE, NULL),
             VMS_OK);
    CHECK_EQ(vms_pt_map(&pt, 0x40000000, 0x80000000, VMS_PG_1G, VMS_PTE_XD, NULL), VMS_OK);
    CHECK_EQ(vms_pt_count_tables(&pt), 4);
    CHECK(vms_pt_lookup(&pt, 0x3fffff, &pte, &ptep, &sz));
    CHECK_EQ(sz, VMS_PG_2M);
    CHECK_EQ(pte, 0x600000 | VMS_PTE_PAT_LARGE | VMS_PTE_PS | VMS_PTE_RW | VMS_PTE_P);
    CHECK(vms_pt_lookup(&pt, 0x7fffffff, &pte, NULL, &sz));
    CHECK_EQ(sz, VMS_PG_1G);
    CHECK_EQ(pte, UINT64_C(0x80000000) | VMS_PTE_XD | VMS_PTE_PS | VMS_PTE_P);
    /* Smaller pages under a large leaf, and entry_addr below one: EXISTS. */
    CHECK_EQ(vms_pt_map(&pt, 0x201000, 0x1000, VMS_PG_4K, 0, NULL), VMS_ERR_EXISTS);
    CHECK_EQ(vms_pt_map(&pt, 0x40200000, 0x200000, VMS_PG_2M, 0, NULL), VMS_ERR_EXISTS);
    CHECK_EQ(vms_pt_entry_addr(&pt, 0x40001000, 1, true, &e_addr, NULL), VMS_ERR_EXISTS);
    CHECK_EQ(vms_pt_count_tables(&pt), 4);

    /* Not-present lookups: the entry where the walk stopped. */
    CHECK(!vms_pt_lookup(&pt, 0x13000, &pte, &ptep, &sz));
    CHECK_EQ(vms_pt_entry_addr(&pt, 0x13000, 1, false, &e_addr, NULL), VMS_OK);
    CHECK_EQ(ptep, e_addr); /* the empty PTE slot, ready for the kernel to fill */
    CHECK_EQ(sz, VMS_PG_4K);
    CHECK_EQ(pte, 0);
    CHECK(!vms_pt_lookup(&pt, 0x800000, &pte, &ptep, &sz));
    CHECK_EQ(ptep, 0); /* no page table below that PDE */
    CHECK_EQ(sz, VMS_PG_2M);
    CHECK(!vms_pt_lookup(&pt, UINT64_C(0x0000800000000000), &pte, &ptep, &sz));

    /* protect. */
    uint64_t old = 0;
    CHECK_EQ(vms_pt_protect(&pt, 0x12fff, VMS_PTE_XD, VMS_PTE_RW, &old), VMS_OK);
    CHECK_EQ(old, 0x50000 | RWUS | VMS_PTE_P);
    CHECK(vms_pt_lookup(&pt, 0x12000, &pte, NULL, NULL));
    CHECK_EQ(pte, 0x50000 | VMS_PTE_US | VMS_PTE_P | VMS_PTE_XD);
    CHECK_EQ(vms_pt_protect(&pt, 0x13000, VMS_PTE_RW, 0, NULL), VMS_ERR_NOTFOUND);

    /* unmap: without freeing, the tables stay; with, empty ones go (root stays). */
    CHECK_EQ(vms_pt_unmap(&pt, 0x13000, true, NULL), VMS_ERR_NOTFOUND);
    CHECK_EQ(vms_pt_unmap(&pt, 0x40000000, true, &old), VMS_OK);
    CHECK_EQ(old, UINT64_C(0x80000000) | VMS_PTE_XD | VMS_PTE_PS | VMS_PTE_P);
    CHECK_EQ(vms_pt_count_tables(&pt), 4); /* PDPT still holds the PD */
    CHECK_EQ(vms_pt_unmap(&pt, 0x12000, false, NULL), VMS_OK);
    CHECK_EQ(vms_pt_count_tables(&pt), 4);
    CHECK(!vms_pt_lookup(&pt, 0x12000, NULL, NULL, NULL));
    CHECK_EQ(vms_pt_map(&pt, 0x12000, 0x50000, VMS_PG_4K, 0, NULL), VMS_OK);
    CHECK_EQ(vms_pt_unmap(&pt, 0x12000, true, NULL), VMS_OK);
    CHECK_EQ(vms_pt_count_tables(&pt), 3); /* the PT went; the PD still holds the 2M */
    CHECK_EQ(vms_pt_unmap(&pt, 0x200000, true, NULL), VMS_OK);
    CHECK_EQ(vms_pt_count_tables(&pt), 1);
    CHECK_EQ(raw(&tp, pt.root), 0);
    CHECK_EQ(tp_live(&tp), 1);

    vms_pt_destroy(&pt);
    vms_pt_destroy(&pt); /* twice is harmless */
    CHECK_EQ(tp_live(&tp), 0);
    CHECK_EQ(tp.bad_frees, 0);
    tp_fini(&tp);
}

typedef struct seen {
    unsigned n;
    uint64_t va[16];
    vms_pgsize size[16];
    unsigned stop_after;
} seen;

static bool record(void *ud, uint64_t va, uint64_t ptep, uint64_t pte, vms_pgsize size)
{
    seen *s = ud;
    (void)ptep;
    (void)pte;
    if (s->n < 16) {
        s->va[s->n] = va;
        s->size[s->n] = size;
    }
    s->n++;
    return s->n != s->stop_after;
}

static void test_foreach_5level(void)
{
    tpool tp;
    REQUIRE_VOID(tp_init(&tp));
    vms_pt pt;
    REQUIRE_VOID(vms_pt_init(&pt, tp.bus, 5, &tp.ops, NULL) == VMS_OK);
    const uint64_t hi = UINT64_C(0xFF00000000000000); /* canonical only with 5 levels */
    const uint64_t top = UINT64_C(0xFFFFFFFFFFFFF000);
    const uint64_t mid = UINT64_C(0x00FFFFFFC0000000); /* PML5 index 255, canonical */
    CHECK_EQ(vms_pt_map(&pt, top, 0x1000, VMS_PG_4K, 0, NULL), VMS_OK);
    CHECK_EQ(vms_pt_map(&pt, hi, 0x200000, VMS_PG_2M, 0, NULL), VMS_OK);
    CHECK_EQ(vms_pt_map(&pt, mid, 0x40000000, VMS_PG_1G, 0, NULL), VMS_OK);
    CHECK_EQ(vms_pt_map(&pt, 0x5000, 0x2000, VMS_PG_4K, 0, NULL), VMS_OK);
    CHECK_EQ(vms_pt_map(&pt, UINT64_C(0x0100000000000000), 0, VMS_PG_4K, 0, NULL), VMS_ERR_INVAL);
    /* Tables: root + top (PML4, PDPT, PD, PT) + hi (PML4, PDPT, PD) + mid (PML4, PDPT)
     * + low (PML4, PDPT, PD, PT). */
    CHECK_EQ(vms_pt_count_tables(&pt), 1 + 4 + 3 + 2 + 4);
    CHECK_EQ(tp_live(&tp), 14);

    seen s = {0};
    CHECK_EQ(vms_pt_foreach(&pt, 0, UINT64_MAX, record, &s), VMS_OK);
    CHECK_EQ(s.n, 4);
    CHECK_EQ(s.va[0], 0x5000);
    CHECK_EQ(s.va[1], mid);
    CHECK_EQ(s.size[1], VMS_PG_1G);
    CHECK_EQ(s.va[2], hi);
    CHECK_EQ(s.size[2], VMS_PG_2M);
    CHECK_EQ(s.va[3], top);
    memset(&s, 0, sizeof s);
    s.stop_after = 2;
    CHECK_EQ(vms_pt_foreach(&pt, 0, UINT64_MAX, record, &s), VMS_OK);
    CHECK_EQ(s.n, 2);
    memset(&s, 0, sizeof s);
    /* Range: pages that start inside it (the 1G page starts before 'mid + 4K'). */
    CHECK_EQ(vms_pt_foreach(&pt, mid + 0x1000, top, record, &s), VMS_OK);
    CHECK_EQ(s.n, 1);
    CHECK_EQ(s.va[0], hi);

    uint64_t pte;
    vms_pgsize sz;
    CHECK(vms_pt_lookup(&pt, hi + 0x1234, &pte, NULL, &sz));
    CHECK_EQ(sz, VMS_PG_2M);
    /* A not-present PML5E reports the clamped size 1G and ptep 0. */
    uint64_t ptep = 1;
    CHECK(!vms_pt_lookup(&pt, UINT64_C(0x0080000000000000), &pte, &ptep, &sz));
    CHECK_EQ(ptep, 0);
    CHECK_EQ(sz, VMS_PG_1G);
    vms_pt_destroy(&pt);
    CHECK_EQ(tp_live(&tp), 0);
    CHECK_EQ(tp.bad_frees, 0);
    tp_fini(&tp);
}

/* Allocation failure at each step of a deep map: NOMEM, the tables made so far stay
 * empty, nothing maps va, and destroy frees everything. */
static void test_nomem(void)
{
    for (long n = 0; n <= 5; n++) {
        tpool tp;
        REQUIRE_VOID(tp_init(&tp));
        vms_pt pt;
        tp.fail_after = n;
        vms_status st = vms_pt_init(&pt, tp.bus, 5, &tp.ops, NULL);
        if (n == 0) {
            CHECK_EQ(st, VMS_ERR_NOMEM);
            CHECK_EQ(tp_live(&tp), 0);
            tp_fini(&tp);
            continue;
        }
        REQUIRE_VOID(st == VMS_OK);
        vms_err err;
        st = vms_pt_map(&pt, 0x7f0000001000, 0x3000, VMS_PG_4K, RWUS, &err);
        CHECK_EQ(st, n == 5 ? VMS_OK : VMS_ERR_NOMEM);
        CHECK_EQ(vms_pt_lookup(&pt, 0x7f0000001000, NULL, NULL, NULL), n == 5);
        CHECK_EQ(vms_pt_count_tables(&pt), (uint64_t)tp_live(&tp));
        CHECK_EQ(tp_live(&tp), n);
        vms_pt_destroy(&pt);
        CHECK_EQ(tp_live(&tp), 0);
        CHECK_EQ(tp.bad_frees, 0);
        tp_fini(&tp);
    }
}

/* A table address that decodes to nothing: the helpers report VMS_ERR_BUS. */
static void test_bus_error(void)
{
    tpool tp;
    REQUIRE_VOID(tp_init(&tp));
    vms_pt pt;
    REQUIRE_VOID(vms_pt_init(&pt, tp.bus, 4, &tp.ops, NULL) == VMS_OK);
    CHECK_EQ(vms_pt_map(&pt, 0x1000, 0x1000, VMS_PG_4K, 0, NULL), VMS_OK);
    uint64_t pdpte = raw(&tp, pt.root);
    uint64_t pdpt = vms_pte_addr(pdpte);
    /* Point the PML4E at 8 GiB (no RAM there). */
    CHECK_EQ(vms_pt_write(&pt, pt.root, (UINT64_C(8) << 30) | VMS_PTE_P), VMS_OK);
    uint64_t e = 0;
    CHECK_EQ(vms_pt_entry_addr(&pt, 0x1000, 1, false, &e, NULL), VMS_ERR_BUS);
    CHECK_EQ(vms_pt_map(&pt, 0x2000, 0x1000, VMS_PG_4K, 0, NULL), VMS_ERR_BUS);
    CHECK(!vms_pt_lookup(&pt, 0x1000, NULL, NULL, NULL));
    CHECK_EQ(vms_pt_unmap(&pt, 0x1000, true, NULL), VMS_ERR_NOTFOUND);
    CHECK_EQ(vms_pt_write(&pt, pt.root, pdpte), VMS_OK);
    (void)pdpt;
    vms_pt_destroy(&pt);
    CHECK_EQ(tp_live(&tp), 0);
    tp_fini(&tp);
}

/* The reference: a plain list of (va, size, pa, flags). */
typedef struct ref_map {
    uint64_t va, pa, flags;
    vms_pgsize size;
} ref_map;

static int ref_find(const ref_map *m, int n, uint64_t va, uint64_t len)
{
    for (int i = 0; i < n; i++) {
        uint64_t mlen = vms_pgsize_bytes(m[i].size);
        if (va < m[i].va + mlen && m[i].va < va + len)
            return i;
    }
    return -1;
}

static bool count_leaf(void *ud, uint64_t va, uint64_t ptep, uint64_t pte, vms_pgsize size)
{
    (void)va, (void)ptep, (void)pte, (void)size;
    (*(unsigned *)ud)++;
    return true;
}

/* Random map/unmap/protect in a 4 GiB window; after every operation the tree agrees
 * with the list (lookup of each mapping, foreach count) and tables are accounted. */
static void test_random(void)
{
    tpool tp;
    REQUIRE_VOID(tp_init(&tp));
    vms_pt pt;
    REQUIRE_VOID(vms_pt_init(&pt, tp.bus, 4, &tp.ops, NULL) == VMS_OK);
    vms_rng r;
    vms_rng_seed(&r, th_seed ^ 0x7074);
    static ref_map m[512];
    int n = 0;
    unsigned bad = 0;
    for (int op = 0; op < 2000; op++) {
        vms_pgsize size = (vms_pgsize)(vms_rng_below(&r, 10) < 7 ? 0 : vms_rng_below(&r, 3));
        uint64_t bytes = vms_pgsize_bytes(size);
        uint64_t va = (vms_rng_below(&r, UINT64_C(4) << 30) & ~(bytes - 1)) |
                      (vms_rng_below(&r, 2) ? UINT64_C(0xFFFF800000000000) : 0);
        uint64_t pa = vms_rng_below(&r, UINT64_C(1) << 30) & ~(bytes - 1);
        int hit = ref_find(m, n, va, bytes);
        unsigned what = (unsigned)vms_rng_below(&r, 3);
        if (what == 0 && n < 512) {
            vms_status st = vms_pt_map(&pt, va, pa, size, VMS_PTE_RW, NULL);
            bad += st != (hit >= 0 ? VMS_ERR_EXISTS : VMS_OK);
            if (st == VMS_OK)
                m[n++] = (ref_map){va, pa, VMS_PTE_RW, size};
        } else if (what == 1) {
            hit = ref_find(m, n, va, 1);
            /* Always free empty tables: then a table exists exactly where a smaller page
             * is mapped, and the list predicts EXISTS for large maps (free_tables=false
             * is covered by test_basic). */
            vms_status st = vms_pt_unmap(&pt, va, true, NULL);
            bad += st != (hit >= 0 ? VMS_OK : VMS_ERR_NOTFOUND);
            if (hit >= 0)
                m[hit] = m[--n];
        } else {
            hit = ref_find(m, n, va, 1);
            vms_status st = vms_pt_protect(&pt, va, VMS_PTE_XD, VMS_PTE_RW, NULL);
            bad += st != (hit >= 0 ? VMS_OK : VMS_ERR_NOTFOUND);
            if (hit >= 0)
                m[hit].flags = VMS_PTE_XD;
        }
        bad += vms_pt_count_tables(&pt) != (uint64_t)tp_live(&tp);
        /* Full sweeps (foreach, every mapping looked up) every 8th operation: they are
         * the slow part under the sanitizers. */
        bool sweep = op % 8 == 0 || op == 1999;
        unsigned leaves = 0;
        if (sweep)
            vms_pt_foreach(&pt, 0, UINT64_MAX, count_leaf, &leaves);
        bad += sweep && leaves != (unsigned)n;
        for (int i = 0; i < n && sweep; i++) {
            uint64_t pte;
            vms_pgsize sz;
            uint64_t probe = m[i].va + (vms_rng_next(&r) & (vms_pgsize_bytes(m[i].size) - 1));
            bool ok = vms_pt_lookup(&pt, probe, &pte, NULL, &sz);
            uint64_t want = m[i].pa | m[i].flags | VMS_PTE_P | (m[i].size ? VMS_PTE_PS : 0);
            bad += !ok || sz != m[i].size || pte != want;
        }
        if (bad) {
            fprintf(stderr, "random pt: first mismatch at op %d\n", op);
            break;
        }
    }
    CHECK_EQ(bad, 0);
    CHECK(n > 20);
    vms_pt_destroy(&pt);
    CHECK_EQ(tp_live(&tp), 0);
    CHECK_EQ(tp.bad_frees, 0);
    tp_fini(&tp);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "pt");
    test_basic();
    test_foreach_5level();
    test_nomem();
    test_bus_error();
    test_random();
    return th_finish();
}
