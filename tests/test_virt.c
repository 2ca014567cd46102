/*
 * test_virt.c — the second-stage formats (EPT, NPT, Arm Stage 2), the two-dimensional
 * walk and the composed TLB (src/virt/).
 *
 *  - formats: entries the page-table editor builds have the manuals' bit layouts;
 *  - counts: a cold walk of G guest over H host levels reads (G+1)(H+1)-1 entries
 *    (24 for 4+4, 35 for 5+5), for EPT, NPT and Arm;
 *  - the grid: guest {4K,2M,1G} x host {4K,2M,1G}: the composed page is the smaller,
 *    its address the composition, the references (n+1)(m+1)-1 for the levels used;
 *  - A/D in both stages (EPT with and without EPTP.AD);
 *  - faults at each stage: guest #PF vs EPT violation with the GPA and qualification;
 *  - a seeded differential test of the core's two-stage MMU (TLB, guest PWC, nested
 *    TLB) against a naive reference composing two naive walkers that re-read the tables
 *    on every access, over random mixed-size mappings, invalidations (INVLPG in the
 *    guest, INVEPT, INVVPID) and two VMs on one core (with and without VPIDs).
 */
#include "harness.h"
#include "vmsim/arch/aarch64.h"
#include "vmsim/core.h"
#include "vmsim/iommu.h"
#include "vmsim/machine.h"
#include "vmsim/rng.h"
#include "vmsim/virt.h"

#define GTAB_AT  UINT64_C(0x1000000) /* guest tables from GPA 16 MiB */
#define S2TAB_AT UINT64_C(0x100000)  /* second-stage tables from HPA 1 MiB */
#define HOST_AT  (UINT64_C(4) << 30) /* backing memory from HPA 4 GiB */
#define HOST_END (UINT64_C(4) << 30) + (UINT64_C(5) << 30)

/* A machine of the "tiny" preset (no PWC) with 8 GiB of RAM, or "skylake". */
static vms_machine *machine(const char *preset)
{
    vms_machine_config cfg;
    vms_machine *m = NULL;
    if (vms_machine_preset(preset, &cfg, NULL) != VMS_OK)
        return NULL;
    cfg.ram_bytes = UINT64_C(8) << 30;
    cfg.ncores = 1;
    if (vms_machine_create(NULL, &cfg, &m, NULL) != VMS_OK)
        return NULL;
    return m;
}

/* One guest on machine m: second stage of `kind` with `hlevels`, guest tables of
 * `glevels`, host pages of hsize. */
typedef struct guest {
    vms_machine *m;
    vms_gspace gs;
    vms_s2_regs s2;
    vms_nested *n;
    vms_pt gpt;
    vms_regs regs;
} guest;

static bool guest_init(guest *g, vms_machine *m, vms_s2_kind kind, unsigned hlevels,
                       unsigned glevels, vms_pgsize hsize, bool ad, const vms_nested_config *cfg,
                       uint64_t s2tab_at, uint64_t host_at)
{
    memset(g, 0, sizeof *g);
    g->m = m;
    vms_bus *bus = vms_machine_bus(m);
    const vms_pt_format *f = kind == VMS_S2_EPT   ? vms_format_ept(hlevels)
                             : kind == VMS_S2_NPT ? vms_format_npt(hlevels)
                                                  : vms_format_stage2(hlevels);
    unsigned prot = VMS_PGPROT_R | VMS_PGPROT_W | VMS_PGPROT_X | VMS_PGPROT_U;
    if (kind == VMS_S2_ARM)
        prot |= VMS_PGPROT_A | VMS_PGPROT_D;
    if (vms_gspace_init(&g->gs, bus, f, s2tab_at, host_at, host_at + (UINT64_C(5) << 30), hsize,
                        prot, GTAB_AT, NULL) != VMS_OK)
        return false;
    g->s2.kind = kind;
    g->s2.eptp = vms_eptp_make(g->gs.s2.root, hlevels, VMS_EPT_MT_WB, ad);
    g->s2.ncr3 = g->gs.s2.root;
    g->s2.npt_levels = hlevels;
    g->s2.vttbr = vms_vttbr_make(g->gs.s2.root, 1);
    g->s2.vtcr = vms_vtcr_make(hlevels, ad, ad);
    if (vms_nested_create(NULL, bus, &g->s2, cfg, &g->n, NULL) != VMS_OK)
        return false;
    vms_pt_ops ops = vms_gspace_table_ops(&g->gs);
    if (vms_pt_init(&g->gpt, vms_nested_guest_bus(g->n), glevels, &ops, NULL) != VMS_OK)
        return false;
    g->regs = *vms_core_regs(vms_machine_core(m, 0));
    g->regs.fmt = NULL;
    g->regs.cr3 = g->gpt.root;
    g->regs.cr4 = (g->regs.cr4 & ~VMS_CR4_LA57 & ~VMS_CR4_PCIDE) | VMS_CR4_PAE |
                  (glevels == 5 ? VMS_CR4_LA57 : 0);
    g->regs.cr0 |= VMS_CR0_WP | VMS_CR0_PG;
    g->regs.efer |= VMS_EFER_NXE | VMS_EFER_LME | VMS_EFER_LMA;
    g->regs.user = true;
    return true;
}

static void guest_free(guest *g)
{
    vms_nested_destroy(g->n);
}

/* Map gva -> gpa (size gsize, user rwx unless flags) in the guest and back gpa. */
static bool guest_map(guest *g, uint64_t gva, uint64_t gpa, vms_pgsize gsize, uint64_t flags)
{
    if (vms_pt_map(&g->gpt, gva, gpa, gsize, flags, NULL) != VMS_OK)
        return false;
    return vms_gspace_back(&g->gs, gpa, NULL, NULL) == VMS_OK;
}

#define URW (VMS_PTE_US | VMS_PTE_RW)

/* ---- formats ---- */

static void test_formats(void)
{
    const vms_pt_format *e4 = vms_format_ept(4), *e5 = vms_format_ept(5);
    CHECK(e4 && e5 && !vms_format_ept(3));
    CHECK_EQ(e4->levels, 4u);
    CHECK_EQ(e5->levels, 5u);
    /* A 2 MiB RW leaf: R W at 1:0, MT = WB (6) at 5:3, PS at 7, frame at 51:21. */
    uint64_t pte = vms_fmt_mk_pte(e4, 0x40000000 >> 12, 2, VMS_PGPROT_R | VMS_PGPROT_W);
    CHECK_EQ(pte, UINT64_C(0x40000000) | 0x3 | (6u << 3) | 0x80);
    vms_pte_info info;
    vms_fmt_decode(e4, pte, 2, &info);
    CHECK(info.present && info.leaf && info.rsvd_clear);
    CHECK_EQ(info.pa, UINT64_C(0x40000000));
    CHECK_EQ(info.prot & (VMS_PGPROT_R | VMS_PGPROT_W | VMS_PGPROT_X), VMS_PGPROT_R | VMS_PGPROT_W);
    /* Misconfigurations: W without R, memory type 2, reserved bits of a 2 MiB leaf. */
    vms_fmt_decode(e4, UINT64_C(0x5000) | VMS_EPT_W, 1, &info);
    CHECK(info.present && !info.rsvd_clear);
    vms_fmt_decode(e4, UINT64_C(0x5000) | VMS_EPT_R | (2u << 3), 1, &info);
    CHECK(!info.rsvd_clear);
    vms_fmt_decode(e4, UINT64_C(0x40001000) | VMS_EPT_R | VMS_EPT_PS | (6u << 3), 2, &info);
    CHECK(!info.rsvd_clear);
    /* An execute-only entry is present to the hardware. */
    vms_fmt_decode(e4, UINT64_C(0x5000) | VMS_EPT_X | (6u << 3), 1, &info);
    CHECK(info.present && info.rsvd_clear);
    CHECK_EQ(info.prot & (VMS_PGPROT_R | VMS_PGPROT_X), VMS_PGPROT_X);
    /* A table entry: RWX, no memory type. */
    CHECK_EQ(e4->mk_table(e4, 0x7000, 3), UINT64_C(0x7007));

    /* EPTP: memory type 2:0, walk length - 1 at 5:3, AD at 6. */
    uint64_t eptp = vms_eptp_make(0x123000, 4, VMS_EPT_MT_WB, true);
    CHECK_EQ(eptp, UINT64_C(0x123000) | 6 | (3u << 3) | (1u << 6));
    CHECK_EQ(vms_eptp_levels(eptp), 4u);
    CHECK_EQ(vms_eptp_levels(vms_eptp_make(0x1000, 5, 0, false)), 5u);

    /* NPT is the x86-64 format. */
    CHECK(vms_format_npt(4) == vms_format_x86_64(4));
    CHECK(vms_format_npt(5) == vms_format_x86_64(5));

    /* Arm stage 2: a 4 KiB page readable only: type 11, S2AP = 01 (bit 6), AF, XN,
     * MemAttr 0b1111, SH inner. */
    const vms_pt_format *s2 = vms_format_stage2(4);
    CHECK(s2 && vms_format_stage2(3) && !vms_format_stage2(5));
    pte = vms_fmt_mk_pte(s2, 0x8000 >> 12, 1, VMS_PGPROT_R | VMS_PGPROT_A);
    CHECK_EQ(pte, UINT64_C(0x8000) | 3 | (0xFu << 2) | (1u << 6) | (3u << 8) | (1u << 10) |
                      (UINT64_C(1) << 54));
    /* A writable-clean 2 MiB block: S2AP[1] = 0 with DBM. */
    pte = vms_fmt_mk_pte(s2, 0x200000 >> 12, 2, VMS_PGPROT_R | VMS_PGPROT_W | VMS_PGPROT_X);
    CHECK((pte & 3) == 1 && (pte & VMS_S2_DBM) && !(pte & VMS_S2_S2AP_W) && !(pte & VMS_S2_XN));
    CHECK_EQ(vms_vttbr_make(0x5000, 7), (UINT64_C(7) << 48) | 0x5000);

    /* The editor builds EPT trees: map, look up, unmap. */
    vms_machine *m = machine("tiny");
    CHECK(m != NULL);
    if (!m)
        return;
    vms_pt_bump b = {vms_machine_ram(m), 0x100000, 0, 0, 0};
    vms_pt_ops ops = vms_pt_bump_ops(&b);
    vms_pt pt;
    CHECK_EQ(vms_pt_init_format(&pt, vms_machine_bus(m), e4, &ops, NULL), VMS_OK);
    CHECK_EQ(vms_pt_map_prot(&pt, 0x40000000, 0x80000000, VMS_PG_1G, VMS_PGPROT_R, NULL), VMS_OK);
    CHECK_EQ(vms_pt_map_prot(&pt, 0x40000000, 0x80000000, VMS_PG_4K, VMS_PGPROT_R, NULL),
             VMS_ERR_EXISTS);
    uint64_t lpte, lptep;
    vms_pgsize sz;
    CHECK(vms_pt_lookup(&pt, 0x40001234, &lpte, &lptep, &sz));
    CHECK_EQ(sz, VMS_PG_1G);
    CHECK((lpte & VMS_EPT_PS) && (lpte & VMS_EPT_RWX) == VMS_EPT_R);
    CHECK_EQ(vms_pt_unmap(&pt, 0x40000000, true, NULL), VMS_OK);
    CHECK(!vms_pt_lookup(&pt, 0x40001234, NULL, NULL, NULL));
    vms_machine_destroy(m);
}

/* ---- counts ---- */

/* A cold 2D walk of gva through core 0 in a guest; returns the entries it read. */
static uint64_t cold_refs(guest *g, uint64_t gva, vms_access_kind kind, uint64_t *pa, vms_fault *f)
{
    vms_core *c = vms_machine_core(g->m, 0);
    uint64_t before = vms_core_walk_stats(c)->mem_refs;
    if (vms_core_vm_enter(c, g->n, 1, &g->regs) != VMS_OK)
        return UINT64_MAX;
    vms_xlate x;
    vms_fault fl;
    uint64_t p = 0;
    bool ok = vms_core_translate(c, gva, kind, &x, &p, f ? f : &fl, NULL);
    vms_core_vm_exit(c);
    if (pa)
        *pa = ok ? p : UINT64_MAX;
    return vms_core_walk_stats(c)->mem_refs - before;
}

static void test_counts(void)
{
    static const vms_s2_kind kinds[] = {VMS_S2_EPT, VMS_S2_NPT, VMS_S2_ARM};
    for (unsigned k = 0; k < 3; k++)
        for (unsigned gl = 4; gl <= 5; gl++)
            for (unsigned hl = 3; hl <= 5; hl++) {
                if ((kinds[k] == VMS_S2_ARM) != (hl == 3) && !(kinds[k] == VMS_S2_ARM && hl == 4))
                    continue;
                if (kinds[k] == VMS_S2_ARM && hl == 5)
                    continue;
                vms_machine *m = machine("tiny");
                guest g;
                CHECK(m && guest_init(&g, m, kinds[k], hl, gl, VMS_PG_4K, true, NULL, S2TAB_AT,
                                      HOST_AT));
                CHECK(guest_map(&g, 0x7f0000001000, 0x3000000, VMS_PG_4K, URW));
                uint64_t pa, hpa;
                CHECK_EQ(vms_gspace_back(&g.gs, 0x3000000, &hpa, NULL), VMS_OK);
                uint64_t refs = cold_refs(&g, 0x7f0000001234, VMS_ACC_READ, &pa, NULL);
                CHECK_EQ(refs, (uint64_t)((gl + 1) * (hl + 1) - 1));
                CHECK_EQ(pa, hpa + 0x234);
                if (gl == 4 && hl == 4)
                    CHECK_EQ(refs, 24u);
                if (gl == 5 && hl == 5)
                    CHECK_EQ(refs, 35u);
                /* Warm: the TLB holds the composed translation (VPID-tagged). */
                CHECK_EQ(cold_refs(&g, 0x7f0000001238, VMS_ACC_READ, &pa, NULL), 0u);
                CHECK_EQ(pa, hpa + 0x238);
                const vms_nested_stats *ns = vms_nested_get_stats(g.n);
                CHECK_EQ(ns->walks, 1u);
                CHECK_EQ(ns->guest_refs, gl);
                CHECK_EQ(ns->s2_refs, (uint64_t)(gl + 1) * hl);
                CHECK_EQ(ns->s2_refs_tables, (uint64_t)gl * hl);
                guest_free(&g);
                vms_machine_destroy(m);
            }
}

/* The whole grid: every guest page size over every host page size. */
static void test_grid(void)
{
    for (unsigned gs = 0; gs < 3; gs++)
        for (unsigned hs = 0; hs < 3; hs++) {
            vms_machine *m = machine("tiny");
            guest g;
            CHECK(m && guest_init(&g, m, VMS_S2_EPT, 4, 4, (vms_pgsize)hs, true, NULL, S2TAB_AT,
                                  HOST_AT));
            uint64_t gsz = vms_pgsize_bytes((vms_pgsize)gs);
            uint64_t gva = UINT64_C(0x7f0040000000), gpa = UINT64_C(0x80000000);
            CHECK(guest_map(&g, gva, gpa, (vms_pgsize)gs, URW));
            /* An offset deep in the guest page: its GPA must be backed too. */
            uint64_t off = (gsz - 1) & UINT64_C(0x2bcdef123);
            uint64_t hpa;
            CHECK_EQ(vms_gspace_back(&g.gs, gpa + off, &hpa, NULL), VMS_OK);
            uint64_t pa;
            vms_fault f;
            uint64_t refs = cold_refs(&g, gva + off, VMS_ACC_WRITE, &pa, &f);
            unsigned n = 4 - gs, mm = 4 - hs;
            CHECK_EQ(refs, (uint64_t)((n + 1) * (mm + 1) - 1));
            CHECK_EQ(pa, hpa);
            /* The composed TLB entry is the smaller page. */
            vms_tlb *l2 = vms_core_tlb(vms_machine_core(m, 0), VMS_TLB_L2);
            vms_tlb *l1 = vms_core_tlb(vms_machine_core(m, 0), VMS_TLB_L1D);
            vms_xlate x;
            vms_tlb *t = l2 ? l2 : l1;
            bool hit = t && vms_tlb_probe(t, vms_ctx_make(1, 0), gva + off, &x);
            CHECK(hit);
            if (hit) {
                vms_pgsize want = gs < hs ? (vms_pgsize)gs : (vms_pgsize)hs;
                /* the TLB may splinter further, never cache a larger page */
                CHECK(x.size <= want);
                CHECK_EQ(vms_xlate_pa(&x, gva + off), hpa);
            }
            /* The host's context never sees the guest's entry. */
            CHECK(!t || !vms_tlb_probe(t, vms_ctx_make(0, 0), gva + off, &x));
            guest_free(&g);
            vms_machine_destroy(m);
        }
}

/* ---- A/D in both stages ---- */

static void test_ad(void)
{
    for (int ad = 0; ad <= 1; ad++) {
        vms_machine *m = machine("tiny");
        guest g;
        CHECK(m && guest_init(&g, m, VMS_S2_EPT, 4, 4, VMS_PG_4K, ad, NULL, S2TAB_AT, HOST_AT));
        CHECK(guest_map(&g, 0x400000, 0x3000000, VMS_PG_4K, URW));
        CHECK(cold_refs(&g, 0x400010, VMS_ACC_WRITE, NULL, NULL) == 24);
        uint64_t pte, ptep;
        vms_pgsize sz;
        /* The guest's leaf has A and D, written through the second stage. */
        CHECK(vms_pt_lookup(&g.gpt, 0x400000, &pte, &ptep, &sz));
        CHECK((pte & VMS_PTE_A) && (pte & VMS_PTE_D));
        /* The EPT leaf of the data page: A and D with EPTP.AD, neither without. */
        CHECK(vms_pt_lookup(&g.gs.s2, 0x3000000, &pte, &ptep, &sz));
        CHECK_EQ((pte & (VMS_EPT_A | VMS_EPT_D)) != 0, ad != 0);
        if (ad)
            CHECK((pte & VMS_EPT_A) && (pte & VMS_EPT_D));
        /* A guest table page's EPT leaf: guest table accesses count as writes (§29.3.5). */
        CHECK(vms_pt_lookup(&g.gs.s2, GTAB_AT, &pte, &ptep, &sz));
        CHECK_EQ((pte & VMS_EPT_D) != 0, ad != 0);
        guest_free(&g);
        vms_machine_destroy(m);
    }
    /* NPT: A in every nested entry used; D on the data page written, and on the guest
     * table pages whose A/D bits the walk wrote. */
    vms_machine *m = machine("tiny");
    guest g;
    CHECK(m && guest_init(&g, m, VMS_S2_NPT, 4, 4, VMS_PG_4K, true, NULL, S2TAB_AT, HOST_AT));
    CHECK(guest_map(&g, 0x400000, 0x3000000, VMS_PG_4K, URW));
    CHECK(cold_refs(&g, 0x400010, VMS_ACC_READ, NULL, NULL) == 24);
    uint64_t pte, ptep;
    vms_pgsize sz;
    CHECK(vms_pt_lookup(&g.gs.s2, 0x3000000, &pte, &ptep, &sz));
    CHECK((pte & VMS_PTE_A) && !(pte & VMS_PTE_D));
    CHECK(vms_pt_lookup(&g.gs.s2, GTAB_AT, &pte, &ptep, &sz));
    CHECK((pte & VMS_PTE_A) && (pte & VMS_PTE_D));
    guest_free(&g);
    vms_machine_destroy(m);
}

/* ---- faults at each stage ---- */

static void test_faults(void)
{
    vms_machine *m = machine("tiny");
    guest g;
    CHECK(m && guest_init(&g, m, VMS_S2_EPT, 4, 4, VMS_PG_4K, false, NULL, S2TAB_AT, HOST_AT));
    CHECK(guest_map(&g, 0x400000, 0x3000000, VMS_PG_4K, URW));
    CHECK_EQ(vms_pt_map(&g.gpt, 0x600000, 0x5000000, VMS_PG_4K, URW, NULL), VMS_OK); /* unbacked */
    vms_fault f;
    uint64_t pa;
    /* A guest page that is not mapped: a guest #PF (no exit), its own error code. */
    cold_refs(&g, 0x800000, VMS_ACC_WRITE, &pa, &f);
    CHECK_EQ(f.kind, VMS_FAULT_PF);
    CHECK_EQ(f.va, UINT64_C(0x800000));
    CHECK_EQ(f.error_code, VMS_PFERR_W | VMS_PFERR_U);
    /* Mapped by the guest, not backed: an EPT violation on the final GPA. */
    cold_refs(&g, 0x600008, VMS_ACC_READ, &pa, &f);
    CHECK_EQ(f.kind, VMS_FAULT_S2);
    CHECK_EQ(f.pa, UINT64_C(0x5000008));
    CHECK_EQ(f.va, UINT64_C(0x600008));
    const vms_s2_fault *e = vms_nested_last_exit(g.n);
    CHECK_EQ(e->kind, VMS_S2F_VIOLATION);
    CHECK(!e->table);
    CHECK_EQ(e->qual, VMS_EPTQ_READ | VMS_EPTQ_GLA_VALID | VMS_EPTQ_GLA_XLATE);
    CHECK_EQ(vms_nested_get_stats(g.n)->exits_violation, 1u);
    CHECK_EQ(vms_nested_get_stats(g.n)->guest_faults, 1u);
    /* A read-only data page written: readable set, writable clear. */
    CHECK_EQ(vms_pt_protect(&g.gs.s2, 0x3000000, 0, VMS_EPT_W | VMS_EPT_X, NULL), VMS_OK);
    cold_refs(&g, 0x400000, VMS_ACC_WRITE, &pa, &f);
    CHECK_EQ(f.kind, VMS_FAULT_S2);
    CHECK_EQ(vms_nested_last_exit(g.n)->qual,
             VMS_EPTQ_WRITE | VMS_EPTQ_READABLE | VMS_EPTQ_GLA_VALID | VMS_EPTQ_GLA_XLATE);
    /* A guest table page whose backing is taken away: a violation on the guest
     * paging-structure access, with the entry's GPA (qualification bit 8 clear). */
    uint64_t pml4e_gpa = g.gpt.root + 8u * ((UINT64_C(0x400000) >> 39) & 511u);
    CHECK_EQ(vms_pt_unmap(&g.gs.s2, g.gpt.root, false, NULL), VMS_OK);
    vms_core_invept(vms_machine_core(m, 0), VMS_INVEPT_SINGLE, 1, g.n);
    cold_refs(&g, 0x400000, VMS_ACC_READ, &pa, &f);
    CHECK_EQ(f.kind, VMS_FAULT_S2);
    CHECK_EQ(f.pa, pml4e_gpa);
    e = vms_nested_last_exit(g.n);
    CHECK(e->table);
    CHECK_EQ(e->qual, VMS_EPTQ_READ | VMS_EPTQ_GLA_VALID);
    guest_free(&g);
    vms_machine_destroy(m);

    /* EPT with A/D: a read-only guest table page faults as a write (bits 0 and 1). */
    m = machine("tiny");
    CHECK(m && guest_init(&g, m, VMS_S2_EPT, 4, 4, VMS_PG_4K, true, NULL, S2TAB_AT, HOST_AT));
    CHECK(guest_map(&g, 0x400000, 0x3000000, VMS_PG_4K, URW));
    CHECK_EQ(vms_pt_protect(&g.gs.s2, g.gpt.root, 0, VMS_EPT_W, NULL), VMS_OK);
    cold_refs(&g, 0x400000, VMS_ACC_READ, &pa, &f);
    CHECK_EQ(f.kind, VMS_FAULT_S2);
    CHECK_EQ(vms_nested_last_exit(g.n)->qual, VMS_EPTQ_READ | VMS_EPTQ_WRITE | VMS_EPTQ_READABLE |
                                                  VMS_EPTQ_EXECUTABLE | VMS_EPTQ_GLA_VALID);
    guest_free(&g);
    vms_machine_destroy(m);

    /* NPT: EXITINFO1 is the nested walk's #PF error code with bit 32 or 33. */
    m = machine("tiny");
    CHECK(m && guest_init(&g, m, VMS_S2_NPT, 4, 4, VMS_PG_4K, true, NULL, S2TAB_AT, HOST_AT));
    CHECK_EQ(vms_pt_map(&g.gpt, 0x600000, 0x5000000, VMS_PG_4K, URW, NULL), VMS_OK);
    cold_refs(&g, 0x600000, VMS_ACC_WRITE, &pa, &f);
    CHECK_EQ(f.kind, VMS_FAULT_S2);
    CHECK_EQ(vms_nested_last_exit(g.n)->qual, VMS_NPF_FINAL | VMS_PFERR_W | VMS_PFERR_U);
    guest_free(&g);
    vms_machine_destroy(m);

    /* Arm: a stage 2 Translation fault, level 3, on the final IPA (DFSC 0b000111). */
    m = machine("tiny");
    CHECK(m && guest_init(&g, m, VMS_S2_ARM, 4, 4, VMS_PG_4K, true, NULL, S2TAB_AT, HOST_AT));
    CHECK(guest_map(&g, 0x400000, 0x3000000, VMS_PG_4K, URW));
    CHECK_EQ(vms_pt_map(&g.gpt, 0x600000, 0x3001000, VMS_PG_4K, URW, NULL), VMS_OK);
    cold_refs(&g, 0x600000, VMS_ACC_READ, &pa, &f);
    CHECK_EQ(f.kind, VMS_FAULT_S2);
    CHECK_EQ(vms_nested_last_exit(g.n)->qual & 0x3F, 0x07u);
    CHECK_EQ(vms_nested_last_exit(g.n)->qual >> 26, 0x24u);
    guest_free(&g);
    vms_machine_destroy(m);
}

/* ---- the differential test ---- */

/* The naive EPT walker: re-reads every entry from RAM, R/W/X ANDed, PS leaves. */
typedef struct naive_s2 {
    bool ok;
    uint64_t hpa;
    vms_pgsize size;
} naive_s2;

static naive_s2 naive_ept(vms_ram *ram, uint64_t eptp, bool ad, uint64_t gpa, vms_access_kind kind,
                          bool table)
{
    naive_s2 r = {0};
    unsigned levels = vms_eptp_levels(eptp);
    uint64_t t = eptp & VMS_EPTP_ADDR_MASK, pte = 0;
    unsigned rr = 1, ww = 1, xx = 1, l;
    if (gpa >> (12 + 9 * levels))
        return r;
    for (l = levels; l >= 1; l--) {
        if (vms_ram_read64(ram, t + 8 * ((gpa >> (12 + 9 * (l - 1))) & 511), &pte) != VMS_OK)
            return r;
        if (!(pte & 7))
            return r;
        rr &= pte & 1;
        ww &= (pte >> 1) & 1;
        xx &= (pte >> 2) & 1;
        if (l == 1 || ((l == 2 || l == 3) && (pte & 0x80)))
            break;
        t = pte & VMS_EPT_ADDR_MASK;
    }
    bool need_w = kind == VMS_ACC_WRITE || (table && ad);
    if ((need_w && !ww) || (kind == VMS_ACC_READ && !rr) || (table && !rr) ||
        (kind == VMS_ACC_EXEC && !table && !xx))
        return r;
    uint64_t bytes = UINT64_C(1) << (12 + 9 * (l - 1));
    r.ok = true;
    r.size = (vms_pgsize)(l - 1);
    r.hpa = (pte & VMS_EPT_ADDR_MASK & ~(bytes - 1)) | (gpa & (bytes - 1));
    return r;
}

/* The expected outcome of a guest access: 0 ok (pa), 1 guest #PF, 2 VM exit (gpa). */
typedef struct naive_res {
    int kind;
    uint64_t pa, gpa;
} naive_res;

static naive_res naive_2d(vms_ram *ram, const guest *g, uint64_t gva, vms_access_kind kind)
{
    naive_res r = {0};
    bool ad = g->s2.eptp & VMS_EPTP_AD;
    unsigned levels = vms_regs_levels(&g->regs);
    uint64_t t = g->gpt.root, pte = 0;
    bool rw = true, us = true, xd = false;
    unsigned l;
    for (l = levels; l >= 1; l--) {
        uint64_t gpa = t + 8 * ((gva >> (12 + 9 * (l - 1))) & 511);
        naive_s2 h = naive_ept(ram, g->s2.eptp, ad, gpa, VMS_ACC_READ, true);
        if (!h.ok)
            return (naive_res){2, 0, gpa};
        if (vms_ram_read64(ram, h.hpa, &pte) != VMS_OK || !(pte & VMS_PTE_P))
            return (naive_res){1, 0, 0};
        rw &= (pte & VMS_PTE_RW) != 0;
        us &= (pte & VMS_PTE_US) != 0;
        xd |= (pte & VMS_PTE_XD) != 0;
        if (l == 1 || ((l == 2 || l == 3) && (pte & VMS_PTE_PS)))
            break;
        t = pte & VMS_PTE_ADDR_MASK;
    }
    if (!us || (kind == VMS_ACC_WRITE && !rw) || (kind == VMS_ACC_EXEC && xd))
        return (naive_res){1, 0, 0};
    uint64_t bytes = UINT64_C(1) << (12 + 9 * (l - 1));
    uint64_t gpa = (pte & VMS_PTE_ADDR_MASK & ~(bytes - 1)) | (gva & (bytes - 1));
    naive_s2 h = naive_ept(ram, g->s2.eptp, ad, gpa, kind, false);
    if (!h.ok)
        return (naive_res){2, 0, gpa};
    r.pa = h.hpa;
    r.gpa = gpa;
    return r;
}

#define NSLOTS 24

/* Random guest pages of mixed sizes in a few 1 GiB regions; GPAs in 16 GiB. */
static void random_guest(guest *g, vms_rng *rng, uint64_t *gvas, vms_pgsize *sizes)
{
    for (unsigned i = 0; i < NSLOTS; i++) {
        vms_pgsize s = (vms_pgsize)(vms_rng_below(rng, 8) == 0 ? 2 : vms_rng_below(rng, 2));
        uint64_t bytes = vms_pgsize_bytes(s);
        uint64_t gva = (UINT64_C(0x10) + vms_rng_below(rng, 4)) << 30 |
                       (vms_rng_below(rng, UINT64_C(1) << 30) & ~(bytes - 1));
        uint64_t gpa = (UINT64_C(1) + vms_rng_below(rng, 15)) << 30 |
                       (vms_rng_below(rng, UINT64_C(1) << 30) & ~(bytes - 1));
        uint64_t flags = VMS_PTE_US | (vms_rng_below(rng, 4) ? VMS_PTE_RW : 0) |
                         (vms_rng_below(rng, 3) ? 0 : VMS_PTE_XD);
        gvas[i] = 0;
        if (vms_pt_map(&g->gpt, gva, gpa, s, flags, NULL) == VMS_OK) {
            gvas[i] = gva;
            sizes[i] = s;
        }
    }
}

/* Back gpa's page with a host page of a random size (smaller when a larger one cannot
 * be placed), with random rights now and then. */
static void random_back(guest *g, vms_rng *rng, uint64_t gpa)
{
    static const unsigned rights[] = {VMS_PGPROT_R | VMS_PGPROT_W | VMS_PGPROT_X,
                                      VMS_PGPROT_R | VMS_PGPROT_W, VMS_PGPROT_R,
                                      VMS_PGPROT_R | VMS_PGPROT_X};
    unsigned s = vms_rng_below(rng, 16) == 0 ? 2 : (unsigned)vms_rng_below(rng, 2);
    g->gs.prot = vms_rng_below(rng, 4) ? rights[0] : rights[vms_rng_below(rng, 4)];
    for (int k = (int)s; k >= 0; k--) {
        g->gs.host_page = (vms_pgsize)k;
        if (vms_gspace_back(&g->gs, gpa, NULL, NULL) == VMS_OK)
            break;
    }
    g->gs.host_page = VMS_PG_4K;
    g->gs.prot = rights[0];
}

/* One differential run: two VMs (vpid 1 and 2, or both untagged with flushes at every
 * entry when !vpids) on one core, random accesses compared with the naive reference. */
static void diff_run(uint64_t seed, bool vpids, bool ad, const char *preset)
{
    vms_rng rng;
    vms_rng_seed(&rng, seed);
    vms_machine *m = machine(preset);
    CHECK(m != NULL);
    if (!m)
        return;
    vms_ram *ram = vms_machine_ram(m);
    vms_core *c = vms_machine_core(m, 0);
    vms_tlb_config ntlb = {1, {{VMS_TLB_SIZES_ALL, 4, 4, NULL}}};
    vms_pwc_config gpwc = {{{0}, {0}, {8, 8, NULL}, {4, 4, NULL}, {2, 2, NULL}, {0}}};
    vms_nested_config cfg = {&ntlb, &gpwc, 4, seed};
    guest g[2];
    uint64_t gvas[2][NSLOTS];
    vms_pgsize sizes[2][NSLOTS];
    for (unsigned v = 0; v < 2; v++) {
        CHECK(guest_init(&g[v], m, VMS_S2_EPT, 4, 4, VMS_PG_4K, ad, &cfg,
                         S2TAB_AT + (uint64_t)v * (UINT64_C(16) << 20),
                         HOST_AT + (uint64_t)v * (UINT64_C(5) << 30) / 2));
        g[v].gs.host_end = g[v].gs.host_next + (UINT64_C(5) << 30) / 2;
        random_guest(&g[v], &rng, gvas[v], sizes[v]);
    }
    unsigned mismatches = 0, exits = 0, pfs = 0, oks = 0;
    for (unsigned step = 0; step < 3000; step++) {
        unsigned v = (unsigned)vms_rng_below(&rng, 2);
        guest *gg = &g[v];
        uint32_t tag = vpids ? v + 1 : 1;
        if (!vpids)
            vms_core_invvpid(c, VMS_INVVPID_SINGLE, 1, 0); /* no VPIDs: flush at entry */
        CHECK_EQ(vms_core_vm_enter(c, gg->n, tag, &gg->regs), VMS_OK);
        unsigned burst = 1 + (unsigned)vms_rng_below(&rng, 8);
        for (unsigned b = 0; b < burst; b++) {
            unsigned i = (unsigned)vms_rng_below(&rng, NSLOTS);
            uint64_t gva = gvas[v][i];
            if (!gva || vms_rng_below(&rng, 10) == 0)
                gva = (UINT64_C(0x10) + vms_rng_below(&rng, 5)) << 30 |
                      vms_rng_below(&rng, UINT64_C(1) << 30);
            else
                gva += vms_rng_below(&rng, vms_pgsize_bytes(sizes[v][i]));
            vms_access_kind kind = (vms_access_kind)vms_rng_below(&rng, 3);
            naive_res want = naive_2d(ram, gg, gva, kind);
            vms_xlate x;
            vms_fault f;
            uint64_t pa = 0;
            bool ok = vms_core_translate(c, gva, kind, &x, &pa, &f, NULL);
            bool same = want.kind == 0   ? ok && pa == want.pa
                        : want.kind == 1 ? !ok && f.kind == VMS_FAULT_PF
                                         : !ok && f.kind == VMS_FAULT_S2 && f.pa == want.gpa;
            if (!same && mismatches++ < 5)
                fprintf(stderr,
                        "diff seed %" PRIu64 " step %u vm %u gva 0x%" PRIx64
                        " kind %d: want %d pa 0x%" PRIx64 " gpa 0x%" PRIx64
                        ", got ok %d pa 0x%" PRIx64 " fault %d pa 0x%" PRIx64 "\n",
                        seed, step, v, gva, (int)kind, want.kind, want.pa, want.gpa, ok, pa,
                        (int)f.kind, f.pa);
            oks += want.kind == 0;
            pfs += want.kind == 1;
            if (want.kind == 2) {
                exits++;
                /* The hypervisor handles most exits by backing the page (lazily). */
                if (vms_rng_below(&rng, 4))
                    random_back(gg, &rng, want.gpa);
            }
        }
        /* Invalidations, as a guest and as the hypervisor do them. */
        unsigned op = (unsigned)vms_rng_below(&rng, 40);
        unsigned i = (unsigned)vms_rng_below(&rng, NSLOTS);
        if (op == 0 && gvas[v][i]) { /* the guest unmaps a page, then INVLPG */
            vms_pt_unmap(&gg->gpt, gvas[v][i], false, NULL);
            vms_core_invlpg(c, gvas[v][i]);
            gvas[v][i] = 0;
        } else if (op == 1 && gvas[v][i]) { /* the guest write-protects, INVLPG */
            vms_pt_protect(&gg->gpt, gvas[v][i], 0, VMS_PTE_RW, NULL);
            vms_core_invlpg(c, gvas[v][i]);
        }
        vms_core_vm_exit(c);
        if (op == 2 || op == 3) { /* the hypervisor takes a backing page away + INVEPT */
            uint64_t pte, gpa = (UINT64_C(1) + vms_rng_below(&rng, 15)) << 30;
            if (gvas[v][i] && vms_pt_lookup(&gg->gpt, gvas[v][i], &pte, NULL, NULL))
                gpa = pte & VMS_PTE_ADDR_MASK & ~(vms_pgsize_bytes(sizes[v][i]) - 1);
            if (vms_pt_unmap(&gg->gs.s2, gpa, false, NULL) == VMS_OK) {
                if (op == 2)
                    vms_core_invept(c, VMS_INVEPT_SINGLE, tag, gg->n);
                else
                    vms_core_invept(c, VMS_INVEPT_ALL, 0, gg->n);
                if (!vpids || vms_rng_below(&rng, 2)) /* the other VM's EPT is untouched */
                    continue;
            }
        } else if (op == 4) { /* INVVPID of one VPID (the other's entries must stay right) */
            vms_core_invvpid(c, VMS_INVVPID_SINGLE, tag, 0);
        } else if (op == 5) { /* the host itself flushes everything */
            vms_core_invpcid(c, VMS_INVPCID_ALL_GLOBAL, 0, 0);
        }
    }
    CHECK_EQ(mismatches, 0u);
    CHECK(oks > 100 && pfs > 10 && exits > 10); /* every outcome was exercised */
    printf("  diff %s vpids=%d ad=%d: %u ok, %u guest #PF, %u exits, %u mismatches\n", preset,
           vpids, ad, oks, pfs, exits, mismatches);
    for (unsigned v = 0; v < 2; v++)
        guest_free(&g[v]);
    vms_machine_destroy(m);
}

/* A guest's own flush-everything (INVPCID type 2) drops its entries, never the other
 * VM's nor the host's. */
static void test_isolation(void)
{
    vms_machine *m = machine("tiny");
    guest a, b;
    CHECK(m && guest_init(&a, m, VMS_S2_EPT, 4, 4, VMS_PG_4K, true, NULL, S2TAB_AT, HOST_AT));
    CHECK(guest_init(&b, m, VMS_S2_EPT, 4, 4, VMS_PG_4K, true, NULL, S2TAB_AT + (8u << 20),
                     HOST_AT + (UINT64_C(2) << 30)));
    CHECK(guest_map(&a, 0x400000, 0x3000000, VMS_PG_4K, URW));
    CHECK(guest_map(&b, 0x400000, 0x3000000, VMS_PG_4K, URW));
    vms_core *c = vms_machine_core(m, 0);
    vms_xlate x;
    vms_fault f;
    uint64_t pa_a, pa_b, pa;
    CHECK(vms_core_vm_enter(c, a.n, 1, &a.regs) == VMS_OK);
    CHECK(vms_core_translate(c, 0x400000, VMS_ACC_READ, &x, &pa_a, &f, NULL));
    vms_core_vm_exit(c);
    CHECK(vms_core_vm_enter(c, b.n, 2, &b.regs) == VMS_OK);
    CHECK(vms_core_translate(c, 0x400000, VMS_ACC_READ, &x, &pa_b, &f, NULL));
    CHECK(pa_a != pa_b); /* same GVA and GPA, different host frames */
    CHECK_EQ(vms_core_invpcid(c, VMS_INVPCID_ALL_GLOBAL, 0, 0), VMS_OK);
    vms_core_vm_exit(c);
    vms_tlb *t = vms_core_tlb(c, VMS_TLB_L1D);
    CHECK(t && vms_tlb_probe(t, vms_ctx_make(1, 0), 0x400000, &x)); /* VM 1 kept */
    CHECK(!vms_tlb_probe(t, vms_ctx_make(2, 0), 0x400000, &x));     /* VM 2 flushed */
    CHECK(vms_core_vm_enter(c, a.n, 1, &a.regs) == VMS_OK);
    uint64_t before = vms_core_walk_stats(c)->mem_refs;
    CHECK(vms_core_translate(c, 0x400000, VMS_ACC_READ, &x, &pa, &f, NULL));
    CHECK_EQ(pa, pa_a);
    CHECK_EQ(vms_core_walk_stats(c)->mem_refs, before); /* a TLB hit */
    vms_core_vm_exit(c);
    guest_free(&a);
    guest_free(&b);
    vms_machine_destroy(m);
}

/* The hypervisor: guest faults go to the guest's pager (no exit), second-stage
 * violations are exits that back guest memory, each charged exit_cycles. */
static void test_vm(void)
{
    vms_machine *m = machine("skylake");
    CHECK(m != NULL);
    if (!m)
        return;
    vms_vm_config vc = {.kind = VMS_S2_EPT,
                        .host_page = VMS_PG_2M,
                        .ad = true,
                        .guest_mem = UINT64_C(1) << 30,
                        .s2_tables_at = S2TAB_AT,
                        .host_at = HOST_AT,
                        .host_end = HOST_AT + (UINT64_C(1) << 30),
                        .vpid = 3,
                        .exit_cycles = 1000};
    vms_vm *vm;
    vms_core *c = vms_machine_core(m, 0);
    CHECK_EQ(vms_vm_create(m, &vc, &vm, NULL), VMS_OK);
    CHECK_EQ(vms_vm_enter(vm, c), VMS_OK);
    vms_fault f;
    uint64_t cyc = vms_core_cycles(c);
    CHECK(vms_vm_access(vm, c, 0x400000, VMS_ACC_WRITE, 8, &f));
    const vms_vm_stats *s = vms_vm_get_stats(vm);
    CHECK_EQ(s->guest_faults, 1u);
    /* The guest's tables were backed as the pager built them; the new data frame's GPA
     * is then the one exit (its 2 MiB region was not yet backed). */
    CHECK_EQ(s->exits, 1u);
    CHECK(vms_core_cycles(c) - cyc >= 1000);
    CHECK(vms_vm_access(vm, c, 0x401000, VMS_ACC_READ, 8, &f)); /* same 2 MiB host page */
    CHECK_EQ(s->guest_faults, 2u);
    CHECK_EQ(s->exits, 1u);
    uint64_t walks = vms_nested_get_stats(vms_vm_nested(vm))->walks;
    CHECK(vms_vm_access(vm, c, 0x400010, VMS_ACC_READ, 8, &f)); /* a TLB hit */
    CHECK_EQ(vms_nested_get_stats(vms_vm_nested(vm))->walks, walks);
    uint64_t pte;
    CHECK(vms_pt_lookup(vms_vm_guest_pt(vm), 0x400000, &pte, NULL, NULL));
    CHECK(vms_pt_lookup(vms_vm_s2_pt(vm), pte & VMS_PTE_ADDR_MASK, NULL, NULL, NULL));
    vms_vm_leave(vm, c);
    vms_vm_destroy(vm);
    vms_machine_destroy(m);
}

/* An Arm guest: AArch64 stage 1 tables in guest memory over Stage 2 (VTTBR_EL2 with the
 * VMID): the guest's pager handles its Translation faults (no exit), stage 2 Translation
 * faults are exits the hypervisor backs; the bytes written read back, a cold walk of a
 * fresh page reads (4+1)(4+1)-1 entries, and the mapping composes both stages. */
static void test_vm_arm(void)
{
    vms_machine_config cfg;
    vms_machine *m = NULL;
    CHECK_EQ(vms_machine_preset("cortex-a76", &cfg, NULL), VMS_OK);
    cfg.ram_bytes = UINT64_C(8) << 30;
    cfg.ncores = 1;
    memset(&cfg.mmu.pwc, 0, sizeof cfg.mmu.pwc); /* no walk caches: every reference counts */
    REQUIRE_VOID(vms_machine_create(NULL, &cfg, &m, NULL) == VMS_OK);
    vms_vm_config vc = {.kind = VMS_S2_ARM,
                        .host_levels = 4,
                        .host_page = VMS_PG_4K,
                        .ad = true,
                        .guest_mem = UINT64_C(1) << 30,
                        .s2_tables_at = S2TAB_AT,
                        .host_at = HOST_AT,
                        .host_end = HOST_AT + (UINT64_C(1) << 30),
                        .vpid = 7,
                        .exit_cycles = 1000};
    vms_vm *vm = NULL;
    vms_core *c = vms_machine_core(m, 0);
    CHECK_EQ(vms_vm_create(m, &vc, &vm, NULL), VMS_OK);
    REQUIRE_VOID(vm != NULL);
    vc.kind = VMS_S2_EPT; /* an x86 second stage on an Arm machine is refused */
    vms_vm *bad = NULL;
    CHECK_EQ(vms_vm_create(m, &vc, &bad, NULL), VMS_ERR_INVAL);
    CHECK_EQ(vms_nested_s2(vms_vm_nested(vm))->vttbr >> VMS_VTTBR_VMID_SHIFT, 7u);
    CHECK_EQ(vms_vm_enter(vm, c), VMS_OK);
    vms_fault f;
    char out[16] = {0}, in[16] = "arm guest";
    CHECK(vms_vm_access_data(vm, c, 0x400000, VMS_ACC_WRITE, in, 9, &f));
    const vms_vm_stats *s = vms_vm_get_stats(vm);
    CHECK_EQ(s->guest_faults, 1u);
    CHECK_EQ(s->exits, 1u); /* the new data frame's IPA; the tables were backed as built */
    CHECK(vms_vm_access_data(vm, c, 0x400000, VMS_ACC_READ, out, 9, &f));
    CHECK(!memcmp(out, "arm guest", 9));
    /* A fresh page far away: new guest tables at levels 0-2 (backed as the pager builds
     * them) and a fresh frame; once both are in place, the walk that completes reads
     * every level of both stages: 4 guest descriptors, 4 x 4 stage 2 descriptors for
     * their tables' IPAs and 4 for the data's. */
    CHECK(vms_vm_access(vm, c, UINT64_C(0x7f0000000000), VMS_ACC_READ, 8, &f));
    vms_nested_trace tr;
    vms_nested_set_trace(vms_vm_nested(vm), &tr);
    uint64_t refs = vms_core_walk_stats(c)->mem_refs;
    vms_core_tlbi_vmalle1(c);
    CHECK(vms_vm_access(vm, c, UINT64_C(0x7f0000000000), VMS_ACC_READ, 8, &f));
    CHECK_EQ(vms_core_walk_stats(c)->mem_refs - refs, 24u);
    CHECK_EQ(tr.nrefs, 24u);
    vms_nested_set_trace(vms_vm_nested(vm), NULL);
    uint64_t pte, spte;
    vms_pgsize sz;
    CHECK(vms_pt_lookup(vms_vm_guest_pt(vm), 0x400000, &pte, NULL, &sz));
    vms_pte_info gi, hi;
    vms_fmt_decode(vms_format_aarch64(), pte, 1, &gi);
    CHECK(vms_pt_lookup(vms_vm_s2_pt(vm), gi.pa, &spte, NULL, &sz));
    vms_fmt_decode(vms_format_stage2(4), spte, 1, &hi);
    uint64_t hbuf = 0;
    CHECK_EQ(vms_ram_read(vms_machine_ram(m), hi.pa, &hbuf, 8), VMS_OK);
    CHECK(!memcmp(&hbuf, "arm gues", 8)); /* the bytes sit at the composed host address */
    vms_vm_leave(vm, c);
    vms_vm_destroy(vm);
    vms_machine_destroy(m);
}

/* The host address the VM's own records give va: the guest's leaf (its format), then
 * the hypervisor's second-stage leaf. False when either does not map it. */
static bool composed_hpa(const vms_vm *vm, uint64_t va, uint64_t *hpa, uint64_t *gpa_out)
{
    const vms_pt *g = vms_vm_guest_pt(vm), *h = vms_vm_s2_pt(vm);
    uint64_t pte;
    vms_pgsize sz;
    vms_pte_info gi, hi;
    if (!vms_pt_lookup(g, va, &pte, NULL, &sz))
        return false;
    vms_fmt_decode(g->fmt, pte, vms_fmt_size_level(sz), &gi);
    uint64_t gpa = gi.pa | (va & (vms_pgsize_bytes(sz) - 1));
    if (!vms_pt_lookup(h, gpa, &pte, NULL, &sz))
        return false;
    vms_fmt_decode(h->fmt, pte, vms_fmt_size_level(sz), &hi);
    *hpa = hi.pa | (gpa & (vms_pgsize_bytes(sz) - 1));
    if (gpa_out)
        *gpa_out = gpa;
    return true;
}

/*
 * Shadow paging against the hardware second stage, on x86-64 (EPT) and AArch64 (Arm
 * Stage 2): the same workload — writes of random values, reads, fetches, and unmaps by
 * the guest's pager (a cleared leaf and INVLPG / TLBI VAE1) after which the page reads
 * back zero — run under both gives the process the same bytes (checked against a model
 * of what it wrote) and the guest the same tables; every translation is the composition
 * of the guest's mapping and the hypervisor's backing. Under shadow paging the guest's
 * tables are read-only in the second-stage record, each pager store to them exits, each
 * shadow miss exits, each invalidation exits; the walks are one-dimensional (fewer
 * references than the 2D walks). The figures are printed.
 */
static void shadow_arch(const char *preset)
{
    vms_machine *mm[2];
    vms_vm *vm[2];
    vms_rng rng;
    bool arm = !strcmp(preset, "cortex-a76");
    for (unsigned k = 0; k < 2; k++) {
        mm[k] = machine(preset);
        CHECK(mm[k] != NULL);
        if (!mm[k])
            return;
        vms_vm_config vc = {.kind = arm ? VMS_S2_ARM : VMS_S2_EPT,
                            .ad = true,
                            .guest_mem = UINT64_C(2) << 30,
                            .s2_tables_at = S2TAB_AT,
                            .host_at = HOST_AT,
                            .host_end = HOST_AT + (UINT64_C(1) << 30),
                            .vpid = 1,
                            .shadow = k == 1};
        CHECK_EQ(vms_vm_create(mm[k], &vc, &vm[k], NULL), VMS_OK);
        CHECK_EQ(vms_vm_enter(vm[k], vms_machine_core(mm[k], 0)), VMS_OK);
    }
    uint64_t vas[64], model[64] = {0};
    vms_rng_seed(&rng, th_seed);
    for (unsigned i = 0; i < 64; i++)
        vas[i] = ((UINT64_C(0x7f00) << 28) + vms_rng_below(&rng, UINT64_C(1) << 26)) & ~UINT64_C(7);
    unsigned bad = 0, wrong = 0, unmaps = 0;
    for (unsigned step = 0; step < 2000; step++) {
        unsigned i = (unsigned)vms_rng_below(&rng, 64), op = (unsigned)vms_rng_below(&rng, 20);
        uint64_t va = vas[i], val = vms_rng_next(&rng);
        bool unmap = op == 0;
        for (unsigned k = 0; k < 2; k++) {
            vms_fault f;
            vms_core *c = vms_machine_core(mm[k], 0);
            if (unmap) { /* not mapped yet is fine: nothing to drop */
                vms_status st = vms_vm_unmap(vm[k], c, va);
                CHECK(st == VMS_OK || st == VMS_ERR_NOTFOUND);
                continue;
            }
            uint64_t got = 0;
            vms_access_kind kind = op < 8 ? VMS_ACC_WRITE : op < 17 ? VMS_ACC_READ : VMS_ACC_EXEC;
            void *buf = kind == VMS_ACC_WRITE ? (void *)&val : kind == VMS_ACC_READ ? &got : NULL;
            if (!vms_vm_access_data(vm[k], c, va, kind, buf, 8, &f)) {
                bad++;
                continue;
            }
            if (kind == VMS_ACC_READ && got != model[i])
                wrong++; /* the process sees what it wrote, or 0 since the unmap */
            /* the core's translation = the guest's GPA, then the backing's HPA */
            uint64_t hpa = 0, pa = 1;
            vms_xlate x;
            CHECK(composed_hpa(vm[k], va, &hpa, NULL));
            CHECK(vms_core_translate(c, va, VMS_ACC_READ, &x, &pa, &f, NULL));
            CHECK_EQ(pa, hpa);
        }
        if (unmap) {
            model[i] = 0;
            unmaps++;
        } else if (op < 8) {
            model[i] = val;
        }
        uint64_t p0, p1;
        bool m0 = vms_pt_lookup(vms_vm_guest_pt(vm[0]), va, &p0, NULL, NULL);
        bool m1 = vms_pt_lookup(vms_vm_guest_pt(vm[1]), va, &p1, NULL, NULL);
        CHECK_EQ(m0, m1);
        if (m0 && m1) /* the same guest tables */
            CHECK_EQ(vms_fmt_pte_addr(vms_vm_guest_pt(vm[0])->fmt, p0),
                     vms_fmt_pte_addr(vms_vm_guest_pt(vm[1])->fmt, p1));
    }
    CHECK_EQ(bad, 0u);
    CHECK_EQ(wrong, 0u);
    CHECK(unmaps > 20);
    const vms_vm_stats *n = vms_vm_get_stats(vm[0]), *s = vms_vm_get_stats(vm[1]);
    CHECK_EQ(n->guest_faults, s->guest_faults);
    CHECK_EQ(s->injected, s->guest_faults);
    CHECK_EQ(s->exits, s->exits_pf + s->exits_ptwrite + s->exits_tlbi);
    /* each guest fault writes at least a leaf, each unmap clears one: all trapped */
    CHECK(s->exits_ptwrite >= s->guest_faults + s->exits_tlbi);
    CHECK(s->exits_tlbi > 0 && s->exits_tlbi <= unmaps);
    CHECK_EQ(n->exits_tlbi + n->exits_ptwrite + n->exits_pf, 0u); /* nested: no such exits */
    CHECK(s->exits > n->exits);
    /* the guest's tables: read-only in the shadow VM's second-stage record only */
    for (unsigned k = 0; k < 2; k++) {
        const vms_pt *h = vms_vm_s2_pt(vm[k]);
        uint64_t pte;
        vms_pgsize sz;
        vms_pte_info info;
        CHECK(vms_pt_lookup(h, vms_vm_guest_pt(vm[k])->root, &pte, NULL, &sz));
        vms_fmt_decode(h->fmt, pte, vms_fmt_size_level(sz), &info);
        CHECK_EQ((info.prot & VMS_PGPROT_W) != 0, k == 0);
    }
    const vms_walk_stats *wn = vms_core_walk_stats(vms_machine_core(mm[0], 0));
    const vms_walk_stats *ws = vms_core_walk_stats(vms_machine_core(mm[1], 0));
    CHECK(ws->mem_refs < wn->mem_refs); /* one dimension against two */
    printf("  shadow %s: %" PRIu64 " exits (%" PRIu64 " #PF, %" PRIu64 " PT writes, %" PRIu64
           " TLBI), %" PRIu64 " walk refs, %" PRIu64 " cycles; nested: %" PRIu64 " exits, %" PRIu64
           " walk refs, %" PRIu64 " cycles\n",
           arm ? "aarch64" : "x86-64", s->exits, s->exits_pf, s->exits_ptwrite, s->exits_tlbi,
           ws->mem_refs, vms_core_cycles(vms_machine_core(mm[1], 0)), n->exits, wn->mem_refs,
           vms_core_cycles(vms_machine_core(mm[0], 0)));
    for (unsigned k = 0; k < 2; k++) {
        vms_vm_leave(vm[k], vms_machine_core(mm[k], 0));
        vms_vm_destroy(vm[k]);
        vms_machine_destroy(mm[k]);
    }
}

static void test_shadow(void)
{
    shadow_arch("skylake");
    shadow_arch("cortex-a76");
}

/* Passthrough DMA: a device assigned to a VM issues guest-physical addresses; the IOMMU
 * translates them with the VM's mappings (NPT: the nested tables themselves; EPT: a
 * mirror kept in step; Arm: an SMMU stage 2 context on the VM's Stage 2, tagged by its
 * VMID), blocks and logs what the VM does not own. Two VMs: each device reaches only
 * its own VM's host memory. */
static void test_passthrough(void)
{
    for (unsigned kind = VMS_S2_EPT; kind <= VMS_S2_ARM; kind++) {
        bool arm = kind == VMS_S2_ARM;
        vms_machine *m = machine(arm ? "cortex-a76" : "skylake");
        CHECK(m != NULL);
        if (!m)
            return;
        vms_iommu_config icfg;
        vms_iommu_config_default(&icfg);
        vms_iommu *io;
        CHECK_EQ(vms_iommu_create(m, &icfg, &io, NULL), VMS_OK);
        vms_vm *vm[2];
        vms_core *c = vms_machine_core(m, 0);
        for (unsigned v = 0; v < 2; v++) {
            vms_vm_config vc = {.kind = (vms_s2_kind)kind,
                                .host_page = VMS_PG_2M,
                                .ad = true,
                                .guest_mem = UINT64_C(1) << 30,
                                .s2_tables_at = S2TAB_AT + v * (UINT64_C(64) << 20),
                                .host_at = HOST_AT + v * (UINT64_C(1) << 30),
                                .host_end = HOST_AT + (v + 1) * (UINT64_C(1) << 30),
                                .vpid = v + 1};
            CHECK_EQ(vms_vm_create(m, &vc, &vm[v], NULL), VMS_OK);
            CHECK_EQ(vms_vm_enter(vm[v], c), VMS_OK);
            vms_fault f;
            CHECK(vms_vm_access(vm[v], c, 0x400000, VMS_ACC_WRITE, 8, &f));
            vms_vm_leave(vm[v], c);
            CHECK_EQ(vms_vm_assign_device(
                         vm[v], io, (uint16_t)(0x100 + v), (uint16_t)(5 + v),
                         S2TAB_AT + (UINT64_C(32) << 20) + v * (UINT64_C(64) << 20), NULL),
                     VMS_OK);
            if (arm) { /* an SMMU stage 2 context on the VM's Stage 2 itself, S2VMID 5 + v */
                vms_iommu_context ic;
                CHECK(vms_iommu_get_context(io, (vms_bdf)(0x100 + v), &ic));
                CHECK(ic.root == vms_vm_s2_pt(vm[v])->root && ic.did == 5 + v);
                CHECK(vms_iommu_context_format(io, (vms_bdf)(0x100 + v)) == vms_format_stage2(4));
            }
        }
        for (unsigned v = 0; v < 2; v++) {
            uint64_t pte, gpa, pa, room;
            const vms_pt *gpt = vms_vm_guest_pt(vm[v]);
            CHECK(vms_pt_lookup(gpt, 0x400000, &pte, NULL, NULL));
            gpa = vms_fmt_pte_addr(gpt->fmt, pte) + 0x18;
            vms_pte_info info;
            vms_pgsize sz;
            CHECK(vms_pt_lookup(vms_vm_s2_pt(vm[v]), gpa, &pte, NULL, &sz));
            vms_fmt_decode(vms_vm_s2_pt(vm[v])->fmt, pte, vms_fmt_size_level(sz), &info);
            uint64_t hpa = info.pa | (gpa & (vms_pgsize_bytes(sz) - 1));
            vms_iommu_fault fl;
            CHECK(
                vms_iommu_translate(io, (vms_bdf)(0x100 + v), gpa, VMS_ACC_WRITE, &pa, &room, &fl));
            CHECK_EQ(pa, hpa);
            uint64_t lo = HOST_AT + v * (UINT64_C(1) << 30), hi = lo + (UINT64_C(1) << 30);
            CHECK(pa >= lo && pa < hi); /* inside its own VM's host memory only */
            /* Unbacked guest memory and addresses beyond the VM: blocked and logged. */
            uint64_t before = vms_iommu_get_stats(io)->faults;
            CHECK(!vms_iommu_translate(io, (vms_bdf)(0x100 + v), UINT64_C(0x30000000), VMS_ACC_READ,
                                       &pa, &room, &fl));
            CHECK_EQ(fl.iova, UINT64_C(0x30000000));
            CHECK(!vms_iommu_translate(io, (vms_bdf)(0x100 + v), UINT64_C(3) << 30, VMS_ACC_WRITE,
                                       &pa, &room, &fl));
            CHECK_EQ(vms_iommu_get_stats(io)->faults, before + 2);
            /* Backing made after the assignment is visible to the device (in step). */
            vms_fault f;
            CHECK_EQ(vms_vm_enter(vm[v], c), VMS_OK);
            for (unsigned i = 0; i < 600; i++) /* the guest pager crosses a 2 MiB region */
                CHECK(vms_vm_access(vm[v], c, 0x800000 + (uint64_t)i * 4096, VMS_ACC_WRITE, 8, &f));
            vms_vm_leave(vm[v], c);
            CHECK(vms_pt_lookup(gpt, 0x800000 + 599 * 4096, &pte, NULL, NULL));
            gpa = vms_fmt_pte_addr(gpt->fmt, pte);
            CHECK(
                vms_iommu_translate(io, (vms_bdf)(0x100 + v), gpa, VMS_ACC_READ, &pa, &room, &fl));
            CHECK(pa >= lo && pa < hi);
        }
        for (unsigned v = 0; v < 2; v++)
            vms_vm_destroy(vm[v]);
        vms_iommu_destroy(io);
        vms_machine_destroy(m);
    }
}

/* ---- the data caches under the 2D walk ---- */

/* A "tiny" machine (no PWC) with skylake's cache hierarchy and 8 GiB of RAM. */
static vms_machine *cached_machine(void)
{
    vms_machine_config cfg;
    vms_machine *m = NULL;
    if (vms_machine_preset("tiny", &cfg, NULL) != VMS_OK ||
        vms_cache_preset("skylake", &cfg.cache, NULL) != VMS_OK)
        return NULL;
    cfg.ram_bytes = UINT64_C(8) << 30;
    cfg.ncores = 1;
    if (vms_machine_create(NULL, &cfg, &m, NULL) != VMS_OK)
        return NULL;
    return m;
}

/* The counters of core 0's L1d, L2 and the LLC, end to end. */
static void cache_counts(const vms_machine *m, vms_cache_stats out[3])
{
    static const vms_cache_id ids[3] = {VMS_CACHE_L1D, VMS_CACHE_L2, VMS_CACHE_LLC};
    for (unsigned i = 0; i < 3; i++) {
        const vms_cache *c = vms_machine_cache(m, 0, ids[i]);
        memset(&out[i], 0, sizeof out[i]);
        if (c)
            out[i] = *vms_cache_get_stats(c);
    }
}

static bool cache_same_delta(const vms_cache_stats a0[3], const vms_cache_stats a1[3],
                             const vms_cache_stats b0[3], const vms_cache_stats b1[3])
{
    for (unsigned i = 0; i < 3; i++) {
        const uint64_t *x0 = (const uint64_t *)&a0[i], *x1 = (const uint64_t *)&a1[i];
        const uint64_t *y0 = (const uint64_t *)&b0[i], *y1 = (const uint64_t *)&b1[i];
        for (size_t k = 0; k < sizeof a0[i] / sizeof(uint64_t); k++)
            if (x1[k] - x0[k] != y1[k] - y0[k])
                return false;
    }
    return true;
}

/*
 * The 2D walk's references go through the data caches as a native walk's do. Against
 * bare metal: a guest whose second stage is the identity (1 GiB host leaves from HPA 0,
 * so its tables sit at the same host addresses as native tables built the same way),
 * with a nested TLB that holds every GPA after a first walk. Cold, the guest's walks make
 * exactly the native walks' cache accesses plus one per second-stage reference; warm
 * (TLBs flushed, caches emptied, the nested TLB kept) every cache counter and the
 * walk's cycles equal bare metal's.
 */
static void test_cache_identity(void)
{
    vms_machine *ma = cached_machine(), *mb = cached_machine();
    CHECK(ma && mb);
    if (!ma || !mb) {
        vms_machine_destroy(ma);
        vms_machine_destroy(mb);
        return;
    }
    vms_core *ca = vms_machine_core(ma, 0), *cb = vms_machine_core(mb, 0);
    /* bare metal: tables from HPA GTAB_AT, as the guest's come from GPA GTAB_AT */
    vms_pt_bump bump = {vms_machine_ram(ma), GTAB_AT, 0, 0, 0};
    vms_pt_ops ops = vms_pt_bump_ops(&bump);
    vms_pt pt;
    CHECK_EQ(vms_pt_init(&pt, vms_machine_bus(ma), 4, &ops, NULL), VMS_OK);
    vms_tlb_config ntlb = {1, {{VMS_TLB_SIZES_ALL, 1, 64, NULL}}};
    vms_nested_config ncfg = {&ntlb, NULL, 4, 1};
    guest g;
    CHECK(guest_init(&g, mb, VMS_S2_EPT, 4, 4, VMS_PG_1G, false, &ncfg, UINT64_C(6) << 30, 0));
    static const uint64_t vas[] = {0x12000, 0x13000, 0x7f0000000000, 0x40200000};
    for (unsigned i = 0; i < 4; i++) {
        uint64_t gpa = UINT64_C(0x2000000) + i * UINT64_C(0x1000);
        CHECK_EQ(vms_pt_map(&pt, vas[i], gpa, VMS_PG_4K, URW, NULL), VMS_OK);
        CHECK(guest_map(&g, vas[i], gpa, VMS_PG_4K, URW));
    }
    CHECK_EQ(g.gpt.root, pt.root);
    uint64_t hpa;
    CHECK(vms_gspace_back(&g.gs, GTAB_AT, &hpa, NULL) == VMS_OK && hpa == GTAB_AT);
    vms_core_write_cr3(ca, pt.root);
    vms_core_set_user(ca, true);
    CHECK_EQ(vms_core_vm_enter(cb, g.n, 1, &g.regs), VMS_OK);
    for (unsigned pass = 0; pass < 2; pass++) {
        vms_cache_stats a0[3], a1[3], b0[3], b1[3];
        cache_counts(ma, a0);
        cache_counts(mb, b0);
        uint64_t ra = vms_core_walk_stats(ca)->mem_refs, rb = vms_core_walk_stats(cb)->mem_refs;
        uint64_t s2 = vms_nested_get_stats(g.n)->s2_refs;
        uint64_t cyca = vms_core_cycles(ca), cycb = vms_core_cycles(cb);
        for (unsigned i = 0; i < 4; i++) {
            vms_xlate x;
            vms_fault f;
            uint64_t pa, pb;
            CHECK(vms_core_translate(ca, vas[i], VMS_ACC_READ, &x, &pa, &f, NULL));
            CHECK(vms_core_translate(cb, vas[i], VMS_ACC_READ, &x, &pb, &f, NULL));
            CHECK_EQ(pa, pb); /* the identity */
        }
        cache_counts(ma, a1);
        cache_counts(mb, b1);
        ra = vms_core_walk_stats(ca)->mem_refs - ra;
        rb = vms_core_walk_stats(cb)->mem_refs - rb;
        s2 = vms_nested_get_stats(g.n)->s2_refs - s2;
        CHECK(ra > 0);
        if (pass == 0) {
            /* cold: every second-stage entry read is one more walk load in L1d */
            CHECK(s2 > 0);
            CHECK_EQ(rb, ra + s2);
            CHECK_EQ(b1[0].accesses - b0[0].accesses, a1[0].accesses - a0[0].accesses + s2);
            CHECK(vms_core_cycles(cb) - cycb > vms_core_cycles(ca) - cyca);
        } else {
            /* warm nested TLB: the guest's walks are bare metal's, counter for counter */
            CHECK_EQ(s2, 0u);
            CHECK_EQ(rb, ra);
            CHECK(cache_same_delta(a0, a1, b0, b1));
            CHECK_EQ(vms_core_cycles(cb) - cycb, vms_core_cycles(ca) - cyca);
        }
        /* for the next pass: no TLB entries, no cached lines of either side's tables */
        for (unsigned i = 0; i < 4; i++)
            vms_core_invlpg(ca, vas[i]);
        CHECK_EQ(vms_core_invvpid(cb, VMS_INVVPID_SINGLE, 1, 0), VMS_OK);
        vms_machine_cache_invalidate(ma, GTAB_AT, UINT64_C(1) << 20);
        vms_machine_cache_invalidate(mb, GTAB_AT, UINT64_C(1) << 20);
        vms_machine_cache_invalidate(mb, UINT64_C(6) << 30, UINT64_C(1) << 20);
    }
    CHECK_EQ(vms_machine_cache_check(mb, NULL), VMS_OK);
    vms_core_vm_exit(cb);
    guest_free(&g);
    vms_machine_destroy(ma);
    vms_machine_destroy(mb);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "virt");
    test_formats();
    test_counts();
    test_grid();
    test_ad();
    test_faults();
    test_isolation();
    test_vm();
    test_vm_arm();
    test_shadow();
    test_passthrough();
    test_cache_identity();
    for (unsigned r = 0; r < 4; r++)
        diff_run(th_seed + r, r & 1, (r >> 1) & 1, r < 2 ? "tiny" : "skylake");
    return th_finish();
}
