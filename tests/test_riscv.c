/*
 * test_riscv.c — RISC-V Sv39/Sv48/Sv57 (src/arch/riscv64): the formats' encodings
 * (PTE decode, mk_pte, Linux's PROT_NONE and swap layouts), the translation algorithm
 * of priv §"Virtual Address Translation Process" step by step on tables written into
 * simulated RAM by hand (each fault with its cause, stval, A/D under Svadu and Svade,
 * SUM/MXR/U-mode rules, global mappings), sfence.vma's four operand combinations and
 * csrw satp, and a seeded differential test: random tables, random modes and accesses
 * through the real core (TLBs, PWC, walker) against a deliberately naive reference walker
 * that follows the spec's steps case by case and re-reads RAM on every access.
 */
#include "harness.h"
#include "vmsim/arch/riscv64.h"
#include "vmsim/core.h"
#include "vmsim/pt.h"
#include "vmsim/rng.h"

#define V VMS_RV_PTE_V
#define R VMS_RV_PTE_R
#define W VMS_RV_PTE_W
#define X VMS_RV_PTE_X
#define U VMS_RV_PTE_U
#define G VMS_RV_PTE_G
#define A VMS_RV_PTE_A
#define D VMS_RV_PTE_D

#define RD VMS_ACC_READ
#define WR VMS_ACC_WRITE
#define EX VMS_ACC_EXEC

/* A machine with one core and a bump allocator of table frames from 1 MiB. */
typedef struct rig {
    vms_machine *m;
    vms_core *c;
    vms_bus *bus;
    uint64_t next_table;
} rig;

static bool rig_init(rig *r, const char *preset, unsigned machine_levels)
{
    vms_machine_config cfg;
    memset(r, 0, sizeof *r);
    if (vms_machine_preset(preset, &cfg, NULL) != VMS_OK)
        return false;
    cfg.levels = machine_levels;
    cfg.ncores = 1;
    if (vms_machine_create(NULL, &cfg, &r->m, NULL) != VMS_OK)
        return false;
    r->c = vms_machine_core(r->m, 0);
    r->bus = vms_machine_bus(r->m);
    r->next_table = UINT64_C(0x100000);
    return true;
}

static void rig_fini(rig *r)
{
    vms_machine_destroy(r->m);
}

/* A zeroed table frame. */
static uint64_t table(rig *r)
{
    uint64_t pa = r->next_table;
    r->next_table += 4096;
    for (unsigned i = 0; i < 512; i++)
        vms_bus_write64(r->bus, pa + 8u * i, 0);
    return pa;
}

static uint64_t ppn(uint64_t pa)
{
    return (pa >> 12) << 10;
}

static uint64_t rd(rig *r, uint64_t pa)
{
    uint64_t v = 0;
    vms_bus_read64(r->bus, pa, &v);
    return v;
}

static void wr(rig *r, uint64_t pa, uint64_t v)
{
    vms_bus_write64(r->bus, pa, v);
}

/* Address of va's entry in the level-`level` table at t (level 1 … 5: VPN[level-1]). */
static uint64_t slot(uint64_t t, uint64_t va, unsigned level)
{
    return t + 8u * ((va >> (12u + 9u * (level - 1u))) & 511u);
}

static void satp(rig *r, unsigned mode, uint16_t asid, uint64_t root)
{
    CHECK_EQ(vms_core_write_satp(r->c, vms_rv_satp_make(mode, asid, root)), VMS_OK);
}

/* Translate; on a fault returns false with *f filled. */
static bool tr(rig *r, uint64_t va, vms_access_kind k, uint64_t *pa, vms_fault *f)
{
    vms_xlate x;
    memset(f, 0, sizeof *f);
    return vms_core_translate(r->c, va, k, &x, pa, f, NULL);
}

/* The page-fault cause of an access that must fault (0xFFFF when it did not). */
static uint32_t pf(rig *r, uint64_t va, vms_access_kind k)
{
    uint64_t pa;
    vms_fault f;
    if (tr(r, va, k, &pa, &f) || f.kind != VMS_FAULT_PF)
        return 0xFFFF;
    CHECK_EQ(f.va, va); /* stval */
    return f.error_code;
}

/* ---- formats and software encodings ---- */

static void test_formats(void)
{
    const vms_pt_format *s39 = vms_format_find("sv39"), *s48 = vms_format_find("sv48"),
                        *s57 = vms_format_find("sv57");
    REQUIRE_VOID(s39 && s48 && s57);
    CHECK_EQ(s39->levels, 3);
    CHECK_EQ(s48->levels, 4);
    CHECK_EQ(s57->levels, 5);
    CHECK_EQ(s39->va_bits, 39);
    CHECK_EQ(s57->va_bits, 57);
    CHECK_STR(s39->root_reg, "satp");
    CHECK_STR(s39->level_name[3], "VPN[2]");
    CHECK(vms_format_riscv64(4) == s48 && vms_format_riscv64(6) == NULL);
    CHECK(vms_rv_mode_format(8) == s39 && vms_rv_mode_format(10) == s57);
    CHECK(vms_rv_mode_format(0) == NULL && vms_rv_mode_format(11) == NULL);
    CHECK_EQ(vms_rv_format_mode(s48), 9);
    /* Canonical: bits 63:38 equal in Sv39. */
    CHECK(vms_fmt_canonical(s39, UINT64_C(0x3FFFFFFFFF)));
    CHECK(!vms_fmt_canonical(s39, UINT64_C(0x4000000000)));
    CHECK(vms_fmt_canonical(s39, UINT64_C(0xFFFFFFC000000000)));
    CHECK(vms_fmt_canonical(s48, UINT64_C(0x4000000000)));

    /* mk_pte and decode: PPN at 53:10, rights as asked, W implies R. */
    uint64_t pte = vms_fmt_mk_pte(s39, 0x12345, 1, VMS_PGPROT_W | VMS_PGPROT_U | VMS_PGPROT_A);
    CHECK_EQ(pte, (UINT64_C(0x12345) << 10) | V | R | W | U | A);
    vms_pte_info info;
    vms_fmt_decode(s39, pte, 1, &info);
    CHECK(info.present && info.leaf && info.rsvd_clear);
    CHECK_EQ(info.pa, UINT64_C(0x12345000));
    CHECK_EQ(info.prot, VMS_PGPROT_R | VMS_PGPROT_W | VMS_PGPROT_U | VMS_PGPROT_A);
    CHECK(vms_fmt_pte_write(s39, pte) && vms_fmt_pte_young(s39, pte));
    CHECK(!vms_fmt_pte_dirty(s39, pte));
    CHECK_EQ(vms_fmt_pte_pfn(s39, pte), 0x12345);
    CHECK_EQ(vms_fmt_pte_wrprotect(s39, pte), pte & ~W);
    CHECK_EQ(vms_fmt_pte_mkold(s39, pte), pte & ~A);
    CHECK_EQ(vms_fmt_pte_mkdirty(s39, pte), pte | D);
    /* An executable-only leaf, a table pointer, reserved encodings. */
    CHECK_EQ(vms_fmt_mk_pte(s39, 1, 1, VMS_PGPROT_X), ppn(0x1000) | V | X);
    CHECK(!vms_fmt_pte_leaf(s39, s39->mk_table(s39, 0x5000, 2), 2));
    CHECK_EQ(s39->mk_table(s39, 0x5000, 2), ppn(0x5000) | V);
    vms_fmt_decode(s39, ppn(0x5000) | V | W, 1, &info);
    CHECK(!info.rsvd_clear); /* W without R */
    vms_fmt_decode(s39, ppn(0x5000) | V | A, 2, &info);
    CHECK(!info.rsvd_clear); /* A in a non-leaf */
    vms_fmt_decode(s39, ppn(0x5000) | V | R | (UINT64_C(1) << 61), 1, &info);
    CHECK(!info.rsvd_clear); /* PBMT without Svpbmt */
    vms_fmt_decode(s39, ppn(0x201000) | V | R, 2, &info);
    CHECK(!info.rsvd_clear); /* misaligned 2 MiB superpage */
    vms_fmt_decode(s39, ppn(0x200000) | V | R, 2, &info);
    CHECK(info.rsvd_clear && info.leaf && info.pa == 0x200000);

    /* PROT_NONE as Linux's riscv: V = 0, _PAGE_PROT_NONE = G; none of R/W/X gives it. */
    uint64_t none = vms_fmt_mk_pte(s39, 0x77, 1, VMS_PGPROT_U);
    CHECK(!(none & V) && (none & G) && (none & R));
    CHECK(vms_fmt_pte_protnone(s39, none) && vms_fmt_pte_mapped(s39, none));
    uint64_t pn = vms_fmt_pte_mkprotnone(s39, pte);
    CHECK(!(pn & V) && (pn & G) && vms_fmt_pte_pfn(s39, pn) == 0x12345);
    CHECK_EQ(vms_fmt_pte_clear_protnone(s39, pn), pte);
    /* Swap entries: type at 11:7, offset at 63:12 (__SWP_TYPE_SHIFT 7, offset shift 12). */
    uint64_t sw = vms_fmt_mk_swap(s39, 3, UINT64_C(0xABCDE));
    CHECK_EQ(sw, (UINT64_C(3) << 7) | (UINT64_C(0xABCDE) << 12) | U);
    CHECK(vms_fmt_is_swap(s39, sw) && !vms_fmt_pte_mapped(s39, sw));
    CHECK_EQ(vms_fmt_swap_type(s39, sw), 3);
    CHECK_EQ(vms_fmt_swap_offset(s39, sw), 0xABCDE);
    CHECK(vms_fmt_is_swap(s39, vms_fmt_mk_swap(s39, 0, 0))); /* not pte_none */
    CHECK(!vms_fmt_is_swap(s39, none) && !vms_fmt_is_swap(s39, 0));
    char buf[64];
    s39->bits_str(pte | G | D | (UINT64_C(2) << 8), 1, buf, sizeof buf);
    CHECK_STR(buf, "V R W U G A D RSW=2");
}

/* ---- the translation steps, one by one ---- */

/* An Sv39 tree: 0x40201234 -> 4K page 0x5000 (R W U A D) via VPN[2]=1, VPN[1]=1,
 * VPN[0]=1. Returns the root; *l2, *l1 the lower tables. */
static uint64_t sv39_tree(rig *r, uint64_t *l2, uint64_t *l1)
{
    uint64_t root = table(r);
    *l2 = table(r);
    *l1 = table(r);
    uint64_t va = UINT64_C(0x40201234);
    wr(r, slot(root, va, 3), ppn(*l2) | V);
    wr(r, slot(*l2, va, 2), ppn(*l1) | V);
    wr(r, slot(*l1, va, 1), ppn(0x5000) | V | R | W | U | A | D);
    return root;
}

static void test_sv39_walk(void)
{
    rig r;
    REQUIRE_VOID(rig_init(&r, "tiny", 4));
    uint64_t l2, l1, root = sv39_tree(&r, &l2, &l1);
    satp(&r, VMS_RV_SATP_SV39, 0, root);
    vms_core_set_user(r.c, true);
    const vms_walk_stats *ws = vms_core_walk_stats(r.c);
    vms_walk_trace t;
    vms_xlate x;
    vms_fault f;
    uint64_t pa;
    /* Steps 1-8: satp.PPN, then VPN[2], VPN[1], VPN[0], one 8-byte read each. */
    CHECK(vms_core_translate(r.c, 0x40201234, RD, &x, &pa, &f, &t));
    CHECK_EQ(pa, 0x5234);
    CHECK_EQ(t.nsteps, 3);
    CHECK_EQ(ws->mem_refs, 3);
    CHECK_EQ(t.step[0].table_pa, root);
    CHECK_EQ(t.step[0].index, 1);
    CHECK_EQ(t.step[0].level, 3);
    CHECK_EQ(t.step[1].ptep, l2 + 8);
    CHECK_EQ(t.step[2].ptep, l1 + 8);
    CHECK(x.size == VMS_PG_4K && x.rw && x.us && !x.nr && x.xd && !x.global);
    /* Again: a TLB hit, no reference. */
    CHECK(vms_core_translate(r.c, 0x40201ff8, WR, &x, &pa, &f, &t));
    CHECK_EQ(t.nsteps, 0);
    CHECK_EQ(ws->mem_refs, 3);

    /* Superpages: a 2 MiB leaf at VPN[1] (2 refs), a 1 GiB leaf at VPN[2] (1 ref). */
    wr(&r, slot(l2, 0x40400000, 2), ppn(0x800000) | V | R | U | A);
    CHECK(tr(&r, 0x40512345, RD, &pa, &f));
    CHECK_EQ(pa, 0x912345);
    CHECK_EQ(ws->mem_refs, 5);
    wr(&r, slot(root, 0x80000000, 3), ppn(0x40000000) | V | R | X | U | A);
    CHECK(tr(&r, 0x80abcdef, EX, &pa, &f));
    CHECK_EQ(pa, 0x40abcdef);
    CHECK_EQ(ws->mem_refs, 6);

    /* Step 6: misaligned superpages (PPN[0] != 0 in a 2M leaf; PPN[1] in a 1G leaf). */
    wr(&r, slot(l2, 0x40600000, 2), ppn(0x801000) | V | R | U | A);
    CHECK_EQ(pf(&r, 0x40600000, RD), VMS_RV_CAUSE_LOAD_PAGE);
    wr(&r, slot(root, 0xC0000000, 3), ppn(0x40200000) | V | R | W | U | A | D);
    CHECK_EQ(pf(&r, 0xC0000010, WR), VMS_RV_CAUSE_STORE_PAGE);
    CHECK_EQ(pf(&r, 0xC0000010, EX), VMS_RV_CAUSE_FETCH_PAGE); /* step 5 first: no X */

    /* Step 3: V = 0 at each level; W without R; reserved 63:54; D/A/U in a pointer. */
    CHECK_EQ(pf(&r, 0x100000000, RD), VMS_RV_CAUSE_LOAD_PAGE); /* root entry 4 empty */
    wr(&r, slot(l1, 0x40202000, 1), ppn(0x6000) | V | W | U | A | D);
    CHECK_EQ(pf(&r, 0x40202000, WR), VMS_RV_CAUSE_STORE_PAGE);
    static const uint64_t rsvd[] = {UINT64_C(1) << 54, UINT64_C(1) << 60, UINT64_C(1) << 61,
                                    UINT64_C(1) << 63};
    for (unsigned i = 0; i < 4; i++) {
        wr(&r, slot(l1, 0x40203000, 1), ppn(0x6000) | V | R | U | A | rsvd[i]);
        CHECK_EQ(pf(&r, 0x40203000, RD), VMS_RV_CAUSE_LOAD_PAGE);
    }
    wr(&r, slot(l1, 0x40203000, 1), ppn(0x6000) | V | R | U | A | (UINT64_C(3) << 8)); /* RSW */
    CHECK(tr(&r, 0x40203000, RD, &pa, &f));
    static const uint64_t ptr_rsvd[] = {A, D, U};
    for (unsigned i = 0; i < 3; i++) {
        wr(&r, slot(root, 0x40201000, 3), ppn(l2) | V | ptr_rsvd[i]);
        vms_core_sfence_vma(r.c, false, 0, false, 0);
        CHECK_EQ(pf(&r, 0x40201000, EX), VMS_RV_CAUSE_FETCH_PAGE);
    }
    wr(&r, slot(root, 0x40201000, 3), ppn(l2) | V);
    /* Step 4: a pointer at the last level. */
    wr(&r, slot(l1, 0x40204000, 1), ppn(0x6000) | V);
    CHECK_EQ(pf(&r, 0x40204000, RD), VMS_RV_CAUSE_LOAD_PAGE);
    /* Step 2: an entry the bus cannot read is an access fault (5), not a page fault. */
    wr(&r, slot(l2, 0x40800000, 2), ppn(UINT64_C(0x200000000)) | V);
    CHECK(!tr(&r, 0x40800000, RD, &pa, &f));
    CHECK(f.kind == VMS_FAULT_BUS && f.error_code == VMS_RV_CAUSE_LOAD_ACCESS);
    CHECK_EQ(f.pa, UINT64_C(0x200000000));
    /* Step 0: non-canonical: a page fault, nothing read. */
    uint64_t refs = ws->mem_refs;
    CHECK_EQ(pf(&r, UINT64_C(0x0000004000000000), RD), VMS_RV_CAUSE_LOAD_PAGE);
    CHECK_EQ(pf(&r, UINT64_C(0x8000000040201234), WR), VMS_RV_CAUSE_STORE_PAGE);
    CHECK_EQ(ws->mem_refs, refs);
    CHECK_EQ(vms_core_regs(r.c)->cr2, UINT64_C(0x8000000040201234)); /* stval */
    rig_fini(&r);
}

/* Step 5: U-mode vs S-mode, SUM, MXR, execute-only pages. */
static void test_rights(void)
{
    rig r;
    REQUIRE_VOID(rig_init(&r, "tiny", 4));
    uint64_t l2, l1, root = sv39_tree(&r, &l2, &l1);
    satp(&r, VMS_RV_SATP_SV39, 0, root);
    uint64_t upage = 0x40201000, spage = 0x40205000, xpage = 0x40206000, uxpage = 0x40207000;
    wr(&r, slot(l1, spage, 1), ppn(0x7000) | V | R | W | X | A | D);
    wr(&r, slot(l1, xpage, 1), ppn(0x8000) | V | X | A);      /* S execute-only */
    wr(&r, slot(l1, uxpage, 1), ppn(0x9000) | V | X | U | A); /* U execute-only */
    uint64_t pa;
    vms_fault f;
    /* U-mode: U pages only. */
    vms_core_set_user(r.c, true);
    CHECK(tr(&r, upage, WR, &pa, &f));
    CHECK_EQ(pf(&r, spage, RD), VMS_RV_CAUSE_LOAD_PAGE);
    CHECK_EQ(pf(&r, spage, EX), VMS_RV_CAUSE_FETCH_PAGE);
    CHECK_EQ(pf(&r, upage, EX), VMS_RV_CAUSE_FETCH_PAGE); /* no X */
    CHECK(tr(&r, uxpage, EX, &pa, &f));
    CHECK_EQ(pf(&r, uxpage, RD), VMS_RV_CAUSE_LOAD_PAGE); /* X-only: not readable … */
    vms_core_write_sstatus(r.c, VMS_RV_SSTATUS_MXR);
    CHECK(tr(&r, uxpage, RD, &pa, &f)); /* … unless MXR */
    CHECK_EQ(pa, 0x9000);
    CHECK_EQ(pf(&r, uxpage, WR), VMS_RV_CAUSE_STORE_PAGE);
    vms_core_write_sstatus(r.c, 0);
    CHECK_EQ(pf(&r, uxpage, RD), VMS_RV_CAUSE_LOAD_PAGE);
    /* S-mode: own pages; U pages only for loads/stores with SUM; never fetch from U. */
    vms_core_set_user(r.c, false);
    CHECK(tr(&r, spage, EX, &pa, &f));
    CHECK_EQ(pf(&r, upage, RD), VMS_RV_CAUSE_LOAD_PAGE);
    CHECK_EQ(pf(&r, upage, WR), VMS_RV_CAUSE_STORE_PAGE);
    vms_core_write_sstatus(r.c, VMS_RV_SSTATUS_SUM);
    CHECK(tr(&r, upage, RD, &pa, &f));
    CHECK(tr(&r, upage, WR, &pa, &f));
    CHECK_EQ(pf(&r, uxpage, EX), VMS_RV_CAUSE_FETCH_PAGE); /* SUM does not allow fetches */
    CHECK_EQ(pf(&r, xpage, RD), VMS_RV_CAUSE_LOAD_PAGE);
    vms_core_write_sstatus(r.c, VMS_RV_SSTATUS_SUM | VMS_RV_SSTATUS_MXR);
    CHECK(tr(&r, xpage, RD, &pa, &f));
    CHECK(tr(&r, uxpage, RD, &pa, &f)); /* SUM + MXR: an X-only U page is readable */
    vms_core_write_sstatus(r.c, 0);
    CHECK_EQ(pf(&r, upage, RD), VMS_RV_CAUSE_LOAD_PAGE); /* SUM is never cached */
    rig_fini(&r);
}

/* Step 7: Svadu sets A (and D on a store) in memory; Svade faults instead. */
static void test_ad(void)
{
    rig r;
    REQUIRE_VOID(rig_init(&r, "tiny", 4));
    uint64_t l2, l1, root = sv39_tree(&r, &l2, &l1);
    satp(&r, VMS_RV_SATP_SV39, 0, root);
    uint64_t va = 0x40209000, ptep = slot(l1, va, 1), clean = ppn(0xA000) | V | R | W;
    wr(&r, ptep, clean);
    uint64_t pa;
    vms_fault f;
    const vms_walk_stats *ws = vms_core_walk_stats(r.c);
    /* Svade (ADUE = 0, the reset value): A clear -> fault of the access; nothing written. */
    CHECK_EQ(pf(&r, va, RD), VMS_RV_CAUSE_LOAD_PAGE);
    CHECK_EQ(rd(&r, ptep), clean);
    wr(&r, ptep, clean | A);
    CHECK(tr(&r, va, RD, &pa, &f));
    CHECK_EQ(pf(&r, va, WR), VMS_RV_CAUSE_STORE_PAGE); /* D clear: the TLB hit re-walks */
    CHECK_EQ(rd(&r, ptep), clean | A);
    wr(&r, ptep, clean | A | D);
    CHECK(tr(&r, va, WR, &pa, &f));
    /* Svadu: the walker sets the bits, one write-back per walk that needs it. */
    vms_core_write_menvcfg(r.c, VMS_RV_MENVCFG_ADUE);
    vms_core_sfence_vma(r.c, true, va, false, 0);
    wr(&r, ptep, clean);
    uint64_t adw = ws->ad_writes;
    CHECK(tr(&r, va, RD, &pa, &f));
    CHECK_EQ(rd(&r, ptep), clean | A);
    CHECK(tr(&r, va, WR, &pa, &f)); /* clean TLB entry: re-walk sets D */
    CHECK_EQ(rd(&r, ptep), clean | A | D);
    CHECK_EQ(ws->ad_writes, adw + 2);
    CHECK(tr(&r, va, WR, &pa, &f)); /* now dirty in the TLB: no walk */
    CHECK_EQ(ws->ad_writes, adw + 2);
    /* A fault before step 7 writes nothing, even under Svadu. */
    wr(&r, ptep, ppn(0xA000) | V | R);
    vms_core_sfence_vma(r.c, true, va, false, 0);
    CHECK_EQ(pf(&r, va, WR), VMS_RV_CAUSE_STORE_PAGE);
    CHECK_EQ(rd(&r, ptep), ppn(0xA000) | V | R);
    /* Pointer entries are never touched. */
    CHECK_EQ(rd(&r, slot(root, va, 3)), ppn(l2) | V);
    rig_fini(&r);
}

/* Sv48 and Sv57 walks: 4 and 5 references; VPN[3]/VPN[4]; leaves above 1 GiB are not
 * modelled and fault; Sv57 needs a 5-level machine. */
static void test_sv48_sv57(void)
{
    rig r;
    REQUIRE_VOID(rig_init(&r, "tiny", 5));
    const vms_walk_stats *ws = vms_core_walk_stats(r.c);
    for (unsigned levels = 4; levels <= 5; levels++) {
        uint64_t va = levels == 5 ? UINT64_C(0x00F0123456789000) : UINT64_C(0x00007F1234567000);
        uint64_t t = table(&r), root = t;
        for (unsigned l = levels; l > 1; l--) {
            uint64_t n = table(&r);
            wr(&r, slot(t, va, l), ppn(n) | V);
            t = n;
        }
        wr(&r, slot(t, va, 1), ppn(0xB000) | V | R | A);
        satp(&r, levels == 5 ? VMS_RV_SATP_SV57 : VMS_RV_SATP_SV48, 1, root);
        vms_core_sfence_vma(r.c, false, 0, false, 0);
        uint64_t refs = ws->mem_refs, pa;
        vms_fault f;
        CHECK(tr(&r, va | 0x123, RD, &pa, &f));
        CHECK_EQ(pa, 0xB123);
        CHECK_EQ(ws->mem_refs - refs, levels);
        /* A leaf at the root level (512 GiB / 256 TiB): a page fault here. */
        uint64_t big = levels == 5 ? UINT64_C(0x0100000000000000) - (UINT64_C(1) << 48)
                                   : UINT64_C(0x0000008000000000);
        wr(&r, slot(root, big, levels), V | R | A);
        CHECK_EQ(pf(&r, big, RD), VMS_RV_CAUSE_LOAD_PAGE);
        CHECK(!vms_fmt_canonical(vms_format_riscv64(levels), va << 8));
    }
    rig_fini(&r);
    REQUIRE_VOID(rig_init(&r, "tiny", 4));
    CHECK_EQ(vms_core_write_satp(r.c, vms_rv_satp_make(VMS_RV_SATP_SV57, 0, 0x100000)),
             VMS_ERR_UNSUPPORTED);
    CHECK_EQ(vms_core_write_satp(r.c, vms_rv_satp_make(VMS_RV_SATP_BARE, 0, 0x100000)),
             VMS_ERR_UNSUPPORTED);
    CHECK(vms_core_regs(r.c)->fmt == NULL); /* no effect */
    CHECK_EQ(vms_core_write_satp(r.c, vms_rv_satp_make(VMS_RV_SATP_SV48, 0xABCD, 0x100000)),
             VMS_OK);
    CHECK_EQ(vms_rv_satp_asid(vms_core_regs(r.c)->satp), 0xABCD); /* ASIDLEN 16 */
    CHECK_EQ(vms_rv_satp_root(vms_core_regs(r.c)->satp), 0x100000);
    rig_fini(&r);
}

/* Global mappings: G in the leaf, or in a pointer above it (and through the PWC). */
static void test_global(void)
{
    rig r;
    REQUIRE_VOID(rig_init(&r, "skylake", 4));
    uint64_t l2, l1, root = sv39_tree(&r, &l2, &l1);
    satp(&r, VMS_RV_SATP_SV39, 5, root);
    uint64_t gl2 = table(&r), gl1 = table(&r), va = UINT64_C(0xFFFFFFFFC0001000);
    wr(&r, slot(root, va, 3), ppn(gl2) | V | G);
    wr(&r, slot(gl2, va, 2), ppn(gl1) | V);
    wr(&r, slot(gl1, va, 1), ppn(0xC000) | V | R | W | A | D);
    wr(&r, slot(gl1, va + 0x1000, 1), ppn(0xD000) | V | R | W | A | D);
    vms_xlate x;
    vms_fault f;
    uint64_t pa;
    CHECK(vms_core_translate(r.c, va, RD, &x, &pa, &f, NULL));
    CHECK(x.global);
    vms_core_write_sstatus(r.c, VMS_RV_SSTATUS_SUM); /* the tree's page is a U page */
    CHECK(vms_core_translate(r.c, 0x40201000, RD, &x, &pa, &f, NULL));
    CHECK(!x.global);
    /* The second page's walk starts from the PWC (the VPN[1] table is cached). */
    const vms_walk_stats *ws = vms_core_walk_stats(r.c);
    uint64_t hits = ws->pwc_hits;
    CHECK(vms_core_translate(r.c, va + 0x1000, RD, &x, &pa, &f, NULL));
    CHECK_EQ(ws->pwc_hits, hits + 1);
    CHECK(x.global);
    CHECK_EQ(pa, 0xD000);
    rig_fini(&r);
}

/* ---- sfence.vma and satp ---- */

/* Is va cached for asid in the L1 dTLB? */
static bool cached(rig *r, uint16_t asid, uint64_t va)
{
    vms_xlate x;
    return vms_tlb_probe(vms_core_tlb(r->c, VMS_TLB_L1D), asid, va, &x);
}

/* Two address spaces (ASID 1 and 2) sharing a global page; each maps va1 and va2. */
static void fence_setup(rig *r)
{
    uint64_t root[2];
    uint64_t gva = UINT64_C(0xFFFFFFFFC0000000);
    uint64_t gl2 = table(r), gl1 = table(r);
    wr(r, slot(gl2, gva, 2), ppn(gl1) | V);
    wr(r, slot(gl1, gva, 1), ppn(0xF000) | V | R | G | A);
    for (unsigned i = 0; i < 2; i++) {
        uint64_t l2 = table(r), l1 = table(r);
        root[i] = table(r);
        wr(r, slot(root[i], 0x1000, 3), ppn(l2) | V);
        wr(r, slot(l2, 0x1000, 2), ppn(l1) | V);
        wr(r, slot(l1, 0x1000, 1), ppn(0x10000 + 0x1000 * i) | V | R | A);
        wr(r, slot(l1, 0x2000, 1), ppn(0x20000 + 0x1000 * i) | V | R | A);
        wr(r, slot(root[i], gva, 3), ppn(gl2) | V);
    }
    for (unsigned i = 0; i < 2; i++) {
        satp(r, VMS_RV_SATP_SV39, (uint16_t)(i + 1), root[i]);
        uint64_t pa;
        vms_fault f;
        CHECK(tr(r, 0x1000, RD, &pa, &f) && pa == 0x10000 + 0x1000 * i);
        CHECK(tr(r, 0x2000, RD, &pa, &f));
        CHECK(tr(r, gva, RD, &pa, &f) && pa == 0xF000);
    }
}

static void test_sfence(void)
{
    uint64_t gva = UINT64_C(0xFFFFFFFFC0000000);
    rig r;
    /* rs1 = va, rs2 = ASID: that page of that ASID; globals and other ASIDs stay. */
    REQUIRE_VOID(rig_init(&r, "tiny", 4));
    fence_setup(&r);
    CHECK(cached(&r, 1, 0x1000) && cached(&r, 2, 0x1000) && cached(&r, 7, gva));
    vms_core_sfence_vma(r.c, true, 0x1000, true, 1);
    CHECK(!cached(&r, 1, 0x1000) && cached(&r, 1, 0x2000) && cached(&r, 2, 0x1000));
    vms_core_sfence_vma(r.c, true, gva, true, 1);
    CHECK(cached(&r, 1, gva)); /* global: not ordered by an ASID fence */
    /* rs1 = va, rs2 = x0: that page in every ASID, globals too. */
    vms_core_sfence_vma(r.c, true, 0x2000, false, 0);
    CHECK(!cached(&r, 1, 0x2000) && !cached(&r, 2, 0x2000) && cached(&r, 2, 0x1000));
    vms_core_sfence_vma(r.c, true, gva, false, 0);
    CHECK(!cached(&r, 3, gva));
    /* A non-canonical rs1: no effect. */
    vms_core_sfence_vma(r.c, true, UINT64_C(0x0000100000001000), false, 0);
    CHECK(cached(&r, 2, 0x1000));
    rig_fini(&r);

    /* rs1 = x0, rs2 = ASID: every non-global entry of the ASID. */
    REQUIRE_VOID(rig_init(&r, "tiny", 4));
    fence_setup(&r);
    vms_core_sfence_vma(r.c, false, 0, true, 2);
    CHECK(!cached(&r, 2, 0x1000) && !cached(&r, 2, 0x2000));
    CHECK(cached(&r, 1, 0x1000) && cached(&r, 2, gva));
    /* rs1 = x0, rs2 = x0: everything. */
    vms_core_sfence_vma(r.c, false, 0, false, 0);
    CHECK(!cached(&r, 1, 0x1000) && !cached(&r, 1, gva));
    CHECK_EQ(vms_tlb_count(vms_core_tlb(r.c, VMS_TLB_L1D)), 0);
    rig_fini(&r);

    /* csrw satp invalidates nothing: a reused ASID sees its stale entries until fenced. */
    REQUIRE_VOID(rig_init(&r, "tiny", 4));
    fence_setup(&r);
    uint64_t other = table(&r), l2 = table(&r), l1 = table(&r), pa;
    wr(&r, slot(other, 0x1000, 3), ppn(l2) | V);
    wr(&r, slot(l2, 0x1000, 2), ppn(l1) | V);
    wr(&r, slot(l1, 0x1000, 1), ppn(0x30000) | V | R | A);
    satp(&r, VMS_RV_SATP_SV39, 1, other);
    vms_fault f;
    CHECK(tr(&r, 0x1000, RD, &pa, &f) && pa == 0x10000); /* stale, as the spec allows */
    vms_core_sfence_vma(r.c, false, 0, true, 1);
    CHECK(tr(&r, 0x1000, RD, &pa, &f) && pa == 0x30000);
    CHECK_EQ(vms_core_get_stats(r.c)->cr3_loads, 3);
    rig_fini(&r);
}

/* ---- differential test against a naive reference ---- */

/* What the reference walker concludes. */
typedef struct ref_result {
    vms_fault_kind kind; /* NONE, PF or BUS */
    uint32_t cause;
    uint64_t pa;
    unsigned level; /* of the leaf */
    bool global, writable, user, exec, readable;
    bool write_back; /* A/D to be set: new leaf value in leaf_new at leaf_ptep */
    uint64_t leaf_ptep, leaf_new;
} ref_result;

typedef struct ref_mode {
    bool user, sum, mxr, adue;
} ref_mode;

/*
 * The spec's algorithm, written out on its own, reading every entry from RAM: no state,
 * no caches. Deliberately plain; the one documented deviation of vmsim (a leaf above
 * level 3 faults) is applied last, where the spec would succeed.
 */
static ref_result ref_walk(rig *r, unsigned levels, uint64_t root, uint64_t va, vms_access_kind k,
                           ref_mode m)
{
    ref_result o = {0};
    uint32_t pfc = k == EX ? 12u : k == WR ? 15u : 13u;
    uint32_t afc = k == EX ? 1u : k == WR ? 7u : 5u;
    unsigned vabits = 12 + 9 * levels;
    int64_t sext = (int64_t)(va << (64 - vabits)) >> (64 - vabits);
    if ((uint64_t)sext != va) {
        o.kind = VMS_FAULT_PF;
        o.cause = pfc;
        return o;
    }
    uint64_t a = root;
    bool global = false;
    int i = (int)levels - 1;
    uint64_t pte, ptep;
    for (;;) {
        ptep = a + ((va >> (12 + 9 * i)) & 0x1ff) * 8;
        if (vms_bus_read64(r->bus, ptep, &pte) != VMS_OK) {
            o.kind = VMS_FAULT_BUS;
            o.cause = afc;
            return o;
        }
        bool v = pte & 1, rr = (pte >> 1) & 1, ww = (pte >> 2) & 1, xx = (pte >> 3) & 1;
        bool leaf = rr || ww || xx;
        bool bad = (pte >> 54) != 0;
        if (!leaf && (pte & (0x10 | 0x40 | 0x80)))
            bad = true;
        if (!v || (!rr && ww) || bad) {
            o.kind = VMS_FAULT_PF;
            o.cause = pfc;
            return o;
        }
        if (rr || xx)
            break;
        if (pte & 0x20)
            global = true;
        i = i - 1;
        if (i < 0) {
            o.kind = VMS_FAULT_PF;
            o.cause = pfc;
            return o;
        }
        a = ((pte >> 10) & ((UINT64_C(1) << 44) - 1)) * 4096;
    }
    bool rr = (pte >> 1) & 1, ww = (pte >> 2) & 1, xx = (pte >> 3) & 1, uu = (pte >> 4) & 1;
    bool allowed;
    if (m.user) {
        if (!uu)
            allowed = false;
        else if (k == RD)
            allowed = rr || (m.mxr && xx);
        else if (k == WR)
            allowed = ww;
        else
            allowed = xx;
    } else {
        if (uu && k == EX)
            allowed = false;
        else if (uu && !m.sum)
            allowed = false;
        else if (k == RD)
            allowed = rr || (m.mxr && xx);
        else if (k == WR)
            allowed = ww;
        else
            allowed = xx;
    }
    if (!allowed) {
        o.kind = VMS_FAULT_PF;
        o.cause = pfc;
        return o;
    }
    uint64_t p = (pte >> 10) & ((UINT64_C(1) << 44) - 1);
    if (i > 0 && (p & ((UINT64_C(1) << (9 * i)) - 1)) != 0) {
        o.kind = VMS_FAULT_PF;
        o.cause = pfc;
        return o;
    }
    bool aa = (pte >> 6) & 1, dd = (pte >> 7) & 1;
    if (!aa || (k == WR && !dd)) {
        if (!m.adue) {
            o.kind = VMS_FAULT_PF;
            o.cause = pfc;
            return o;
        }
        o.write_back = true;
        o.leaf_ptep = ptep;
        o.leaf_new = pte | 0x40 | (k == WR ? 0x80 : 0);
    }
    if (i > 2) { /* vmsim: no page sizes above 1 GiB (docs/arch/riscv64.md) */
        ref_result f = {.kind = VMS_FAULT_PF, .cause = pfc};
        return f;
    }
    uint64_t off = va & ((UINT64_C(1) << (12 + 9 * i)) - 1);
    o.pa = ((p << 12) & ~((UINT64_C(1) << (12 + 9 * i)) - 1)) | off;
    o.level = (unsigned)i + 1;
    o.global = global || (pte & 0x20);
    o.writable = ww;
    o.user = uu;
    o.exec = xx;
    o.readable = rr;
    return o;
}

/* A random entry for level l of the differential test's trees. */
static uint64_t rand_entry(rig *r, vms_rng *g, unsigned l, unsigned *ntables)
{
    uint64_t roll = vms_rng_below(g, 100);
    uint64_t flags = vms_rng_next(g) & 0xFF;
    if (roll < 8)
        return flags & ~V;                      /* not valid, random other bits */
    if (roll < 45 && l > 1 && *ntables < 400) { /* a pointer to a fresh table */
        (*ntables)++;
        uint64_t e = ppn(table(r)) | V | (vms_rng_below(g, 4) == 0 ? G : 0);
        if (vms_rng_below(g, 25) == 0)
            e |= (uint64_t[]){A, D, U}[vms_rng_below(g, 3)]; /* reserved in a pointer */
        if (vms_rng_below(g, 40) == 0)
            e = ppn(UINT64_C(0x300000000)) | V; /* a table the bus cannot read */
        return e;
    }
    if (roll < 50 && l > 1)
        return ppn(UINT64_C(0x1000) * vms_rng_below(g, 16)) | V; /* a pointer to junk */
    /* A leaf: random R/W/X/U/G/A/D (W-only and R=W=X=0 stay possible: reserved, pointer). */
    uint64_t shift = 12 + 9 * (l - 1);
    uint64_t frame = (vms_rng_below(g, 64) << shift) & ((UINT64_C(1) << 40) - 1);
    if (vms_rng_below(g, 6) == 0)
        frame |= vms_rng_below(g, 512) << 12; /* maybe misaligned */
    uint64_t e = ppn(frame) | V | (flags & 0xFE);
    if (vms_rng_below(g, 30) == 0)
        e |= UINT64_C(1) << (54 + vms_rng_below(g, 10)); /* reserved 63:54 */
    if (vms_rng_below(g, 10) == 0)
        e |= vms_rng_below(g, 4) << 8; /* RSW: ignored */
    return e;
}

/* The interesting index values of each level: a small universe so paths collide. */
static uint64_t rand_va(vms_rng *g, unsigned levels)
{
    static const unsigned idx[] = {0, 1, 2, 255, 256, 511};
    uint64_t va = vms_rng_below(g, 4096);
    for (unsigned l = 1; l <= levels; l++)
        va |= (uint64_t)idx[vms_rng_below(g, 6)] << (12 + 9 * (l - 1));
    unsigned vabits = 12 + 9 * levels;
    va = (uint64_t)((int64_t)(va << (64 - vabits)) >> (64 - vabits));
    if (vms_rng_below(g, 25) == 0)
        va ^= UINT64_C(1) << (vabits + vms_rng_below(g, 64 - vabits)); /* non-canonical */
    return va;
}

/* Fill the entries on va's path that are still empty (the tree grows as addresses do). */
static void grow(rig *r, vms_rng *g, unsigned levels, uint64_t root, uint64_t va, unsigned *ntables)
{
    uint64_t t = root;
    for (unsigned l = levels; l >= 1; l--) {
        uint64_t ptep = slot(t, va, l), e = rd(r, ptep);
        if (e == 0) {
            e = rand_entry(r, g, l, ntables);
            wr(r, ptep, e);
        }
        bool pointer = (e & V) && !(e & (R | W | X)) && !(e & (A | D | U)) && (e >> 54) == 0;
        uint64_t next = ((e >> 10) & ((UINT64_C(1) << 44) - 1)) << 12;
        if (!pointer || next < UINT64_C(0x100000) || next >= r->next_table)
            return; /* a leaf, a bad entry, or junk: stop growing here */
        t = next;
    }
}

static void diff_round(vms_rng *g, const char *preset, unsigned levels, unsigned *compared)
{
    rig r;
    REQUIRE_VOID(rig_init(&r, preset, levels == 5 ? 5 : 4));
    uint64_t root = table(&r);
    unsigned ntables = 1;
    uint16_t asid = (uint16_t)vms_rng_below(g, 4096);
    CHECK_EQ(vms_core_write_satp(r.c, vms_rv_satp_make(7 + levels - 2, asid, root)), VMS_OK);
    for (unsigned n = 0; n < 300; n++) {
        uint64_t va = rand_va(g, levels);
        grow(&r, g, levels, root, va, &ntables);
        vms_access_kind k = (vms_access_kind)vms_rng_below(g, 3);
        ref_mode m = {vms_rng_below(g, 2) != 0, vms_rng_below(g, 2) != 0, vms_rng_below(g, 3) == 0,
                      vms_rng_below(g, 2) != 0};
        vms_core_set_user(r.c, m.user);
        vms_core_write_sstatus(r.c,
                               (m.sum ? VMS_RV_SSTATUS_SUM : 0) | (m.mxr ? VMS_RV_SSTATUS_MXR : 0));
        vms_core_write_menvcfg(r.c, m.adue ? VMS_RV_MENVCFG_ADUE : 0);
        ref_result want = ref_walk(&r, levels, root, va, k, m);
        uint64_t before = want.write_back ? rd(&r, want.leaf_ptep) : 0;
        vms_xlate x;
        vms_fault f;
        vms_walk_trace t;
        uint64_t pa;
        memset(&f, 0, sizeof f);
        bool ok = vms_core_translate(r.c, va, k, &x, &pa, &f, &t);
        (*compared)++;
        bool same = ok == (want.kind == VMS_FAULT_NONE);
        if (same && ok)
            same = pa == want.pa && (t.nsteps == 0 || x.size == (vms_pgsize)(want.level - 1)) &&
                   x.global == want.global && x.rw == want.writable && x.us == want.user &&
                   x.xd == !want.exec && x.nr == !want.readable;
        if (same && !ok)
            same = f.kind == want.kind && f.error_code == want.cause && f.va == va;
        if (same && want.write_back && want.kind == VMS_FAULT_NONE)
            same = rd(&r, want.leaf_ptep) == want.leaf_new;
        if (!same) {
            fprintf(stderr,
                    "diff %s Sv%u va 0x%llx kind %d user %d sum %d mxr %d adue %d: model ok %d "
                    "pa 0x%llx fault %d cause %u; reference kind %d cause %u pa 0x%llx "
                    "(leaf before 0x%llx)\n",
                    preset, 12 + 9 * levels, (unsigned long long)va, k, m.user, m.sum, m.mxr,
                    m.adue, ok, (unsigned long long)pa, f.kind, f.error_code, want.kind, want.cause,
                    (unsigned long long)want.pa, (unsigned long long)before);
            CHECK(same);
            break;
        }
        th_passed++;
        if (vms_rng_below(g, 20) == 0) /* sometimes forget everything */
            vms_core_sfence_vma(r.c, false, 0, false, 0);
    }
    rig_fini(&r);
}

static void test_differential(void)
{
    vms_rng g;
    vms_rng_seed(&g, th_seed);
    unsigned compared = 0;
    for (unsigned round = 0; round < 60; round++) {
        unsigned levels = 3 + round % 3;
        diff_round(&g, round % 2 ? "skylake" : "tiny", levels, &compared);
    }
    printf("riscv: differential: %u accesses compared\n", compared);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "riscv");
    test_formats();
    test_sv39_walk();
    test_rights();
    test_ad();
    test_sv48_sv57();
    test_global();
    test_sfence();
    test_differential();
    return th_finish();
}
