/*
 * test_format.c — the page-table format descriptors (format.h, src/arch/registry.c,
 * src/arch/x86_64/format.c): the registry finds every format by name and by
 * (architecture, levels); the x86-64 descriptor's shape, decode and Linux-named kernel
 * helpers give exactly the bits the SDM and Linux's x86 port define (checked against
 * raw bit arithmetic written out here, not through the descriptor); swap and PROT_NONE
 * encodings round-trip and never alias a present or empty entry; and pt.c edits a tree
 * of a non-x86 shape (1-byte entries, 5-bit indexes: a textbook machine) purely through
 * the descriptor, with entries read back from RAM byte by byte.
 */
#include "tpool.h"
#include "vmsim/format.h"
#include "vmsim/rng.h"
#include "vmsim/walk.h"

static void test_registry(void)
{
    const vms_pt_format *f4 = vms_format_find("x86_64");
    const vms_pt_format *f5 = vms_format_find("x86_64-la57");
    REQUIRE_VOID(f4 && f5);
    CHECK(vms_format_x86_64(4) == f4);
    CHECK(vms_format_x86_64(5) == f5);
    CHECK(vms_format_x86_64(3) == NULL);
    CHECK(vms_format_for("x86_64", 4) == f4);
    CHECK(vms_format_for("x86_64", 5) == f5);
    CHECK(vms_format_for("x86_64", 0) == f4); /* the first is the default */
    CHECK(vms_format_for("x86_64", 3) == NULL);
    CHECK(vms_format_for("no-such-arch", 0) == NULL);
    CHECK(vms_format_find("no-such-format") == NULL);
    CHECK(vms_format_find(NULL) == NULL);
    bool seen4 = false, seen5 = false;
    for (unsigned i = 0; i < vms_format_count(); i++) {
        const vms_pt_format *f = vms_format_at(i);
        REQUIRE_VOID(f && f->name && f->arch && f->decode && f->mk_leaf && f->mk_table &&
                     f->mk_raw && f->is_leaf && f->walk && f->check_access && f->mmu_ops);
        CHECK(vms_format_find(f->name) == f); /* names are unique */
        seen4 |= f == f4;
        seen5 |= f == f5;
    }
    CHECK(seen4 && seen5);
    CHECK(vms_format_at(vms_format_count()) == NULL);
}

/* The shape: the SDM's index bits and canonical widths. */
static void test_x86_shape(void)
{
    const vms_pt_format *f = vms_format_x86_64(4), *f5 = vms_format_x86_64(5);
    CHECK_EQ(f->levels, 4);
    CHECK_EQ(f5->levels, 5);
    CHECK_EQ(vms_fmt_entries(f), 512);
    CHECK_EQ(vms_fmt_table_bytes(f), 4096);
    for (unsigned l = 1; l <= 5; l++)
        CHECK_EQ(vms_fmt_level_shift(f5, l), vms_level_shift(l));
    uint64_t va = UINT64_C(0x00007f8c29940123);
    for (unsigned l = 1; l <= 4; l++)
        CHECK_EQ(vms_fmt_index(f, va, l), (va >> (12 + 9 * (l - 1))) & 511);
    CHECK_EQ(vms_fmt_entry_pa(f, 0x5000, va, 4), 0x5000 + 8 * ((va >> 39) & 511));
    CHECK(vms_fmt_canonical(f, UINT64_C(0x00007fffffffffff)));
    CHECK(!vms_fmt_canonical(f, UINT64_C(0x0000800000000000)));
    CHECK(vms_fmt_canonical(f, UINT64_C(0xffff800000000000)));
    CHECK(vms_fmt_canonical(f5, UINT64_C(0x00ffffffffffffff)));
    CHECK(!vms_fmt_canonical(f5, UINT64_C(0x0100000000000000)));
    CHECK(!vms_fmt_canonical(f, UINT64_C(0x00ffffffffffffff)));
    CHECK_EQ(vms_fmt_sign_extend(f, UINT64_C(0x0000800000000000)), UINT64_C(0xffff800000000000));
    CHECK(vms_fmt_has_size(f, VMS_PG_4K) && vms_fmt_has_size(f, VMS_PG_2M) &&
          vms_fmt_has_size(f, VMS_PG_1G));
    CHECK_STR(f->level_name[4], "PML4");
    CHECK_STR(f5->level_name[5], "PML5");
}

/* Leaves built from neutral rights are the SDM's bits, level by level. */
static void test_x86_mk(void)
{
    const vms_pt_format *f = vms_format_x86_64(4);
    uint64_t pfn = 0x1234;
    unsigned rwu = VMS_PGPROT_R | VMS_PGPROT_W | VMS_PGPROT_U;
    CHECK_EQ(vms_fmt_mk_pte(f, pfn, 1, rwu),
             (pfn << 12) | VMS_PTE_P | VMS_PTE_RW | VMS_PTE_US | VMS_PTE_XD);
    CHECK_EQ(vms_fmt_mk_pte(f, pfn, 1, rwu | VMS_PGPROT_X), (pfn << 12) | 0x7);
    CHECK_EQ(vms_fmt_mk_pte(f, 0x200, 2, VMS_PGPROT_R | VMS_PGPROT_X),
             (UINT64_C(0x200) << 12) | VMS_PTE_P | VMS_PTE_PS);
    CHECK_EQ(
        vms_fmt_mk_pte(f, 0x40000, 3,
                       VMS_PGPROT_R | VMS_PGPROT_W | VMS_PGPROT_G | VMS_PGPROT_A | VMS_PGPROT_D),
        (UINT64_C(0x40000) << 12) | VMS_PTE_P | VMS_PTE_RW | VMS_PTE_G | VMS_PTE_A | VMS_PTE_D |
            VMS_PTE_PS | VMS_PTE_XD);
    CHECK_EQ(vms_fmt_mk_pte(f, pfn, 1, VMS_PGPROT_R | VMS_PGPROT_NOCACHE),
             (pfn << 12) | VMS_PTE_P | VMS_PTE_PCD | VMS_PTE_PWT | VMS_PTE_XD);
    /* prot 0 is the kernel's PROT_NONE entry: not present, SW1, frame and PS kept. */
    CHECK_EQ(vms_fmt_mk_pte(f, pfn, 1, 0), (pfn << 12) | VMS_PTE_SW1);
    CHECK_EQ(vms_fmt_mk_pte(f, 0x200, 2, 0), (UINT64_C(0x200) << 12) | VMS_PTE_SW1 | VMS_PTE_PS);
    CHECK_EQ(f->mk_table(f, 0x5000, 4), 0x5000 | VMS_PTE_P | VMS_PTE_RW | VMS_PTE_US);
    CHECK_EQ(f->mk_raw(f, 0x200000, 2, VMS_PTE_RW), 0x200000 | VMS_PTE_RW | VMS_PTE_P | VMS_PTE_PS);
}

/* Each helper against the raw bit operation it replaces, on random entries. */
static void test_x86_helpers(void)
{
    const vms_pt_format *f = vms_format_x86_64(4);
    vms_rng rng;
    vms_rng_seed(&rng, th_seed);
    for (int i = 0; i < 20000; i++) {
        uint64_t pte = vms_rng_next(&rng);
        CHECK_EQ(vms_fmt_pte_present(f, pte), (pte & VMS_PTE_P) != 0);
        CHECK_EQ(vms_fmt_pte_write(f, pte), (pte & VMS_PTE_RW) != 0);
        CHECK_EQ(vms_fmt_pte_dirty(f, pte), (pte & VMS_PTE_D) != 0);
        CHECK_EQ(vms_fmt_pte_young(f, pte), (pte & VMS_PTE_A) != 0);
        CHECK_EQ(vms_fmt_pte_mkwrite(f, pte), pte | VMS_PTE_RW);
        CHECK_EQ(vms_fmt_pte_wrprotect(f, pte), pte & ~VMS_PTE_RW);
        CHECK_EQ(vms_fmt_pte_mkdirty(f, pte), pte | VMS_PTE_D);
        CHECK_EQ(vms_fmt_pte_mkclean(f, pte), pte & ~VMS_PTE_D);
        CHECK_EQ(vms_fmt_pte_mkyoung(f, pte), pte | VMS_PTE_A);
        CHECK_EQ(vms_fmt_pte_mkold(f, pte), pte & ~VMS_PTE_A);
        CHECK_EQ(vms_fmt_pte_pfn(f, pte), vms_pte_pfn(pte));
        CHECK_EQ(vms_fmt_pte_addr(f, pte), vms_pte_addr(pte));
        CHECK_EQ(vms_fmt_pte_set_pfn(f, pte, 0x777),
                 (pte & ~VMS_PTE_ADDR_MASK) | (UINT64_C(0x777) << 12));
        for (unsigned l = 1; l <= 4; l++)
            CHECK_EQ(vms_fmt_pte_leaf(f, pte, l), vms_pte_leaf(pte, l));
        CHECK_EQ(vms_fmt_pte_protnone(f, pte), (pte & (VMS_PTE_P | VMS_PTE_SW1)) == VMS_PTE_SW1);
        CHECK_EQ(vms_fmt_is_swap(f, pte),
                 (pte & (VMS_PTE_P | VMS_PTE_SW1 | VMS_PTE_SW2)) == VMS_PTE_SW2);
    }
}

/* Swap entries: the field map of format.c, round trips, and no aliasing. */
static void test_x86_swap(void)
{
    const vms_pt_format *f = vms_format_x86_64(4);
    uint64_t e = vms_fmt_mk_swap(f, 3, 0x12345);
    CHECK_EQ(e, (UINT64_C(3) << 59) | (UINT64_C(0x12345) << 12) | VMS_PTE_SW2);
    vms_rng rng;
    vms_rng_seed(&rng, th_seed + 1);
    for (int i = 0; i < 5000; i++) {
        unsigned type = (unsigned)vms_rng_below(&rng, 32);
        uint64_t off = vms_rng_next(&rng) & ((UINT64_C(1) << 40) - 1);
        uint64_t s = vms_fmt_mk_swap(f, type, off);
        CHECK(vms_fmt_is_swap(f, s));
        CHECK(!vms_fmt_pte_present(f, s) && !vms_fmt_pte_protnone(f, s) && s != 0);
        CHECK(!vms_fmt_pte_write(f, s) && !vms_fmt_pte_young(f, s) && !vms_fmt_pte_dirty(f, s));
        CHECK_EQ(vms_fmt_swap_type(f, s), type);
        CHECK_EQ(vms_fmt_swap_offset(f, s), off);
        /* fork's write-protect and mkold leave a swap entry unchanged. */
        CHECK_EQ(vms_fmt_pte_mkold(f, vms_fmt_pte_wrprotect(f, s)), s);
    }
    /* PROT_NONE and back keeps the frame and every other bit. */
    uint64_t pte = vms_fmt_mk_pte(f, 0x4321, 1, VMS_PGPROT_R | VMS_PGPROT_W | VMS_PGPROT_U);
    uint64_t pn = vms_fmt_pte_mkprotnone(f, pte);
    CHECK(vms_fmt_pte_protnone(f, pn) && vms_fmt_pte_mapped(f, pn) && !vms_fmt_is_swap(f, pn));
    CHECK_EQ(vms_fmt_pte_pfn(f, pn), 0x4321);
    CHECK_EQ(vms_fmt_pte_clear_protnone(f, pn), pte);
}

/* decode: the walker's view of entries at each level. */
static void test_x86_decode(void)
{
    const vms_pt_format *f = vms_format_x86_64(4);
    vms_pte_info in;
    vms_fmt_decode(f, 0, 1, &in);
    CHECK(!in.present && !in.leaf && in.pa == 0);
    vms_fmt_decode(f, 0x5000 | VMS_PTE_P | VMS_PTE_RW | VMS_PTE_US, 4, &in);
    CHECK(in.present && !in.leaf && in.rsvd_clear);
    CHECK_EQ(in.pa, 0x5000);
    vms_fmt_decode(f, 0x5000 | VMS_PTE_P | VMS_PTE_PS, 4, &in); /* PS at PML4: reserved */
    CHECK(in.present && !in.rsvd_clear);
    /* A 2 MiB leaf with PAT (bit 12) set: the frame is bits 51:21. */
    vms_fmt_decode(f, 0x40000000 | VMS_PTE_PAT_LARGE | VMS_PTE_P | VMS_PTE_PS | VMS_PTE_RW, 2, &in);
    CHECK(in.present && in.leaf && in.rsvd_clear);
    CHECK_EQ(in.pa, 0x40000000);
    CHECK_EQ(in.prot, VMS_PGPROT_R | VMS_PGPROT_W | VMS_PGPROT_X);
    vms_fmt_decode(f, 0x40002000 | VMS_PTE_P | VMS_PTE_PS, 2, &in); /* bit 13: reserved */
    CHECK(!in.rsvd_clear);
    uint64_t leaf = 0x9000 | VMS_PTE_P | VMS_PTE_US | VMS_PTE_A | VMS_PTE_D | VMS_PTE_G |
                    VMS_PTE_XD | (UINT64_C(5) << VMS_PTE_PKEY_SHIFT);
    vms_fmt_decode(f, leaf, 1, &in);
    CHECK(in.leaf);
    CHECK_EQ(in.prot, VMS_PGPROT_R | VMS_PGPROT_U | VMS_PGPROT_A | VMS_PGPROT_D | VMS_PGPROT_G);
    CHECK_EQ(in.pkey, 5);
    char buf[64];
    f->bits_str(leaf, 1, buf, sizeof buf);
    CHECK_STR(buf, "P US A D G XD");
    f->bits_str(0x5000 | VMS_PTE_P | VMS_PTE_PS, 2, buf, sizeof buf);
    CHECK_STR(buf, "P PS");
}

/*
 * A format of another shape, built here: 15-bit addresses, 32-byte pages, two levels of
 * 32 one-byte entries (valid bit 7, a 7-bit frame number) — OSTEP's multilevel machine.
 * pt.c must place, read and free its entries through the descriptor alone.
 */
static bool tiny_is_leaf(uint64_t pte, unsigned level)
{
    (void)pte;
    return level == 1;
}

static void tiny_decode(const vms_pt_format *f, uint64_t pte, unsigned level, vms_pte_info *out)
{
    memset(out, 0, sizeof *out);
    out->present = (pte & 0x80) != 0;
    out->leaf = out->present && level == 1;
    out->pa = out->present ? vms_fmt_pte_addr(f, pte) : 0;
    out->rsvd_clear = true;
    out->prot = out->leaf ? VMS_PGPROT_R | VMS_PGPROT_W | VMS_PGPROT_U : 0;
}

static uint64_t tiny_mk(const vms_pt_format *f, uint64_t pa, unsigned level, unsigned prot)
{
    (void)f, (void)level, (void)prot;
    return 0x80 | (pa >> 5);
}

static uint64_t tiny_table(const vms_pt_format *f, uint64_t pa, unsigned level)
{
    return tiny_mk(f, pa, level, 0);
}

static uint64_t tiny_raw(const vms_pt_format *f, uint64_t pa, unsigned level, uint64_t flags)
{
    (void)f, (void)level;
    return 0x80 | (pa >> 5) | flags;
}

static const vms_pt_format tiny = {
    .name = "test-tiny",
    .arch = "test",
    .title = "test",
    .levels = 2,
    .page_shift = 5,
    .index_bits = 5,
    .entry_shift = 0,
    .va_bits = 15,
    .va_unsigned = true,
    .leaf_levels = 1u << 1,
    .addr_mask = 0x7f,
    .addr_shift = 0,
    .present = {0x80, 0x80},
    .decode = tiny_decode,
    .mk_leaf = tiny_mk,
    .mk_raw = tiny_raw,
    .mk_table = tiny_table,
    .is_leaf = tiny_is_leaf,
};

/* Tables of 32 bytes handed out from frame 64 up (the machine has 128 frames). */
typedef struct tiny_pool {
    vms_ram *ram;
    uint64_t next;
    long allocs, frees;
} tiny_pool;

static vms_status tiny_alloc(void *ud, uint64_t *pa)
{
    tiny_pool *p = ud;
    if (p->next >= 128 * 32)
        return VMS_ERR_NOMEM;
    *pa = p->next;
    p->next += 32;
    p->allocs++;
    return vms_ram_fill(p->ram, *pa, 0, 32);
}

static void tiny_free(void *ud, uint64_t pa)
{
    tiny_pool *p = ud;
    vms_ram_fill(p->ram, pa, 0xee, 32); /* scribbled: a use after free shows */
    p->frees++;
}

static void test_other_shape(void)
{
    tpool tp;
    REQUIRE_VOID(tp_init(&tp));
    tiny_pool tpl = {tp.ram, 64 * 32, 0, 0};
    vms_pt_ops ops = {tiny_alloc, tiny_free, &tpl};
    vms_pt pt;
    REQUIRE_VOID(vms_pt_init_format(&pt, tp.bus, &tiny, &ops, NULL) == VMS_OK);
    CHECK(pt.fmt == &tiny && pt.levels == 2);
    CHECK_EQ(pt.root, 64 * 32);
    /* Map va 0x611c's page (PD index 0x18, PT index 0x08) to frame 5. */
    uint64_t va = 0x611c & ~UINT64_C(31), pa = 0xa0;
    CHECK_EQ(vms_pt_map_prot(&pt, va, pa, VMS_PG_4K, VMS_PGPROT_R, NULL), VMS_OK);
    uint64_t pte = 0, ptep = 0;
    CHECK(vms_pt_lookup(&pt, 0x611c, &pte, &ptep, NULL));
    CHECK_EQ(pte, 0x85);
    /* Entries are single bytes: the PDE at root + 0x18, the PTE at its table + 0x08. */
    uint8_t pde = 0;
    vms_ram_read(tp.ram, pt.root + 0x18, &pde, 1);
    CHECK_EQ(pde & 0x80, 0x80);
    uint64_t pt_pa = (uint64_t)(pde & 0x7f) << 5;
    CHECK_EQ(ptep, pt_pa + 0x08);
    uint8_t b = 0;
    vms_ram_read(tp.ram, ptep, &b, 1);
    CHECK_EQ(b, 0x85);
    uint8_t neighbour = 0xff;
    vms_ram_read(tp.ram, ptep + 1, &neighbour, 1); /* one byte per entry: nothing spilled */
    CHECK_EQ(neighbour, 0);
    CHECK_EQ(vms_pt_count_tables(&pt), 2);
    uint64_t old = 0;
    CHECK_EQ(vms_pt_unmap(&pt, va, true, &old), VMS_OK);
    CHECK_EQ(old, 0x85);
    CHECK_EQ(vms_pt_count_tables(&pt), 1);
    /* A size the format does not have, and an address it cannot hold, are refused. */
    CHECK_EQ(vms_pt_map_prot(&pt, 0, 0, VMS_PG_2M, VMS_PGPROT_R, NULL), VMS_ERR_INVAL);
    CHECK_EQ(vms_pt_map_prot(&pt, 0x20, 0x1000, VMS_PG_4K, VMS_PGPROT_R, NULL), VMS_ERR_INVAL);
    CHECK_EQ(vms_pt_map_prot(&pt, 0x21, 0x40, VMS_PG_4K, VMS_PGPROT_R, NULL), VMS_ERR_INVAL);
    CHECK_EQ(vms_pt_map_prot(&pt, 0x8000, 0x40, VMS_PG_4K, VMS_PGPROT_R, NULL), VMS_ERR_INVAL);
    vms_pt_destroy(&pt);
    CHECK_EQ(tpl.allocs, 2);
    CHECK_EQ(tpl.allocs, tpl.frees);
    tp_fini(&tp);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "format");
    test_registry();
    test_x86_shape();
    test_x86_mk();
    test_x86_helpers();
    test_x86_swap();
    test_x86_decode();
    test_other_shape();
    return th_finish();
}
