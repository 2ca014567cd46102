/*
 * test_aarch64.c — the AArch64 4 KiB-granule stage 1 format, walker and TLB maintenance
 * (src/arch/aarch64/).
 *
 *  - the format: registry, level names, Linux's encodings (leaf attributes, PROT_NONE,
 *    swap entries) and decode round trips;
 *  - the Arm ARM's walk with a 2 MiB block (level 0 -> 1 -> 2, three descriptors read)
 *    and with a 4 KiB page (four), TTBR1 for the upper half;
 *  - every fault kind with its ESR_EL1 (EC, WnR, DFSC/IFSC with the level) and FAR;
 *  - hardware Access flag and dirty-state updates (FEAT_HAFDBS) against the faults
 *    raised without them;
 *  - ASIDs, global entries and TLBI VAE1 / ASIDE1 / VMALLE1, walk caches included;
 *  - a seeded differential test against a deliberately naive reference walker that
 *    re-reads RAM on every access and is written case by case from the Arm ARM, over
 *    random tables, EL0/EL1, AF on/off, DBM, PAN, WXN, blocks, both TTBRs, out-of-range
 *    addresses and faults compared by their ESR values.
 */
#include "harness.h"
#include "vmsim/arch/aarch64.h"
#include "vmsim/core.h"
#include "vmsim/machine.h"
#include "vmsim/pt.h"
#include "vmsim/pwc.h"
#include "vmsim/rng.h"
#include "vmsim/tlb.h"

#define M_BIT  VMS_A64_SCTLR_M
#define TBL    VMS_A64_DESC_TABLE
#define NORMAL (VMS_A64_SH_INNER | VMS_A64_AF) /* AttrIndx 0, inner shareable, AF */

/* ---- a machine in AArch64 state, tables written by hand ---------------------------- */

typedef struct rig {
    vms_machine *m;
    vms_core *c;
    vms_bus *bus;
    uint64_t next_frame; /* bump allocator for table frames */
} rig;

static bool rig_init(rig *r, const char *preset, uint64_t tcr)
{
    vms_machine_config cfg;
    vms_err err = {0};
    if (vms_machine_preset(preset, &cfg, &err) != VMS_OK)
        return false;
    cfg.ncores = 1;
    if (vms_machine_create(NULL, &cfg, &r->m, &err) != VMS_OK) {
        fprintf(stderr, "machine: %s\n", err.msg);
        return false;
    }
    r->c = vms_machine_core(r->m, 0);
    r->bus = vms_machine_bus(r->m);
    r->next_frame = UINT64_C(0x100000);
    return vms_core_a64_init(r->c, tcr, M_BIT) == VMS_OK;
}

static void rig_free(rig *r)
{
    vms_machine_destroy(r->m);
}

/* A fresh zeroed 4 KiB table frame. */
static uint64_t new_table(rig *r)
{
    uint64_t pa = r->next_frame;
    r->next_frame += 4096;
    for (unsigned i = 0; i < 512; i++)
        vms_bus_write64(r->bus, pa + 8u * i, 0);
    return pa;
}

static uint64_t rd(rig *r, uint64_t pa)
{
    uint64_t v = 0;
    vms_bus_read64(r->bus, pa, &v);
    return v;
}

/* Arm level n's index of va (level 0: VA[47:39] … level 3: VA[20:12]). */
static unsigned idx(uint64_t va, unsigned arm_level)
{
    return (unsigned)((va >> (39 - 9 * arm_level)) & 511);
}

/* Ensure tables down to Arm level `leaf_level` for va under root; returns the
 * address of va's descriptor at that level. */
static uint64_t desc_at(rig *r, uint64_t root, uint64_t va, unsigned leaf_level)
{
    uint64_t table = root;
    for (unsigned l = 0; l < leaf_level; l++) {
        uint64_t ptep = table + 8u * idx(va, l), d = rd(r, ptep);
        if ((d & 3) != TBL) {
            d = new_table(r) | TBL;
            vms_bus_write64(r->bus, ptep, d);
        }
        table = d & VMS_A64_ADDR_MASK;
    }
    return table + 8u * idx(va, leaf_level);
}

/* Map a page (Arm level 3), 2 MiB block (level 2) or 1 GiB block (level 1). */
static uint64_t map(rig *r, uint64_t root, uint64_t va, uint64_t pa, unsigned arm_level,
                    uint64_t attrs)
{
    uint64_t ptep = desc_at(r, root, va, arm_level);
    vms_bus_write64(r->bus, ptep, pa | attrs | (arm_level == 3 ? 3u : 1u));
    return ptep;
}

static bool xl(rig *r, uint64_t va, vms_access_kind k, uint64_t *pa, vms_fault *f)
{
    return vms_core_translate(r->c, va, k, NULL, pa, f, NULL);
}

static uint64_t refs(rig *r)
{
    return vms_core_walk_stats(r->c)->mem_refs;
}

static uint64_t tcr_plain(void)
{
    return vms_a64_tcr(48, false, false, false, false);
}

/* ---- the format ------------------------------------------------------------------- */

static void test_format(void)
{
    const vms_pt_format *f = vms_format_find("aarch64");
    REQUIRE_VOID(f && f == vms_format_aarch64());
    CHECK_STR(f->arch, "aarch64");
    CHECK_EQ(f->levels, 4);
    CHECK_STR(f->level_name[4], "level 0");
    CHECK_STR(f->level_name[1], "level 3");
    CHECK(vms_fmt_has_size(f, VMS_PG_4K) && vms_fmt_has_size(f, VMS_PG_2M) &&
          vms_fmt_has_size(f, VMS_PG_1G));
    /* Both halves are "canonical" to the format; a gap address is not. */
    CHECK(vms_fmt_canonical(f, UINT64_C(0x0000FFFFFFFFF000)));
    CHECK(vms_fmt_canonical(f, UINT64_C(0xFFFF000000000000)));
    CHECK(!vms_fmt_canonical(f, UINT64_C(0x0001000000000000)));
    CHECK(!vms_fmt_canonical(f, UINT64_C(0xFF7F000000000000)));

    /* Linux's user rw page, clean: page type, AP=11 with DBM (PTE_WRITE), AF, nG, SH=11,
     * PXN, UXN (PAGE_SHARED); the hardware may write it with TCR_EL1.HD. */
    unsigned prot = VMS_PGPROT_R | VMS_PGPROT_W | VMS_PGPROT_U | VMS_PGPROT_A;
    uint64_t pte = vms_fmt_mk_pte(f, 0x12345, 1, prot);
    CHECK_EQ(pte, UINT64_C(0x12345000) | 3 | VMS_A64_AP1 | VMS_A64_AP2 | VMS_A64_DBM | VMS_A64_AF |
                      VMS_A64_NG | VMS_A64_SH_INNER | VMS_A64_PXN | VMS_A64_UXN);
    vms_pte_info in;
    vms_fmt_decode(f, pte, 1, &in);
    CHECK(in.present && in.leaf && in.pa == UINT64_C(0x12345000));
    CHECK_EQ(in.prot, prot);
    CHECK(vms_fmt_pte_write(f, pte) && vms_fmt_pte_young(f, pte) && !vms_fmt_pte_dirty(f, pte));
    /* Hardware dirty (AP[2] cleared through DBM) is dirty; wrprotect keeps it in PTE_DIRTY. */
    uint64_t hw = pte & ~VMS_A64_AP2;
    CHECK(vms_fmt_pte_dirty(f, hw));
    uint64_t ro = vms_fmt_pte_wrprotect(f, hw);
    CHECK(!vms_fmt_pte_write(f, ro) && (ro & VMS_A64_AP2) && !(ro & VMS_A64_DBM));
    CHECK(vms_fmt_pte_dirty(f, ro) && (ro & VMS_A64_SW_DIRTY));
    /* mkdirty never grants write; on a writable page it clears AP[2]. */
    CHECK(vms_fmt_pte_mkdirty(f, ro) & VMS_A64_AP2);
    CHECK(!(vms_fmt_pte_mkdirty(f, pte) & VMS_A64_AP2));
    /* mkwrite of a software-dirty page makes it hardware-writable; of a clean one not. */
    CHECK(!(vms_fmt_pte_mkwrite(f, ro) & VMS_A64_AP2));
    CHECK(vms_fmt_pte_mkwrite(f, vms_fmt_pte_wrprotect(f, pte)) & VMS_A64_AP2);
    /* mkclean: clean and read-only to the hardware until DBM lets it be dirtied again. */
    uint64_t cl = vms_fmt_pte_mkclean(f, vms_fmt_pte_mkdirty(f, pte));
    CHECK(!vms_fmt_pte_dirty(f, cl) && (cl & VMS_A64_AP2) && vms_fmt_pte_write(f, cl));
    CHECK(!(vms_fmt_pte_mkold(f, pte) & VMS_A64_AF));
    /* Every edit keeps the invariant AP[2] = 0 => DBM = 1 ("writable" is exactly DBM). */
    for (unsigned e = 0; e < 64; e++) {
        uint64_t v = pte;
        for (unsigned k = 0; k < 6; k++) {
            switch ((e >> k) % 4) {
            case 0:
                v = vms_fmt_pte_mkwrite(f, v);
                break;
            case 1:
                v = vms_fmt_pte_wrprotect(f, v);
                break;
            case 2:
                v = vms_fmt_pte_mkdirty(f, v);
                break;
            default:
                v = vms_fmt_pte_mkclean(f, v);
                break;
            }
            CHECK((v & VMS_A64_AP2) || (v & VMS_A64_DBM));
        }
    }
    /* Writable and dirty from mk_pte: AP[2] = 0, DBM, PTE_DIRTY. */
    uint64_t wd = vms_fmt_mk_pte(f, 0x12345, 1, prot | VMS_PGPROT_D);
    CHECK(!(wd & VMS_A64_AP2) && (wd & VMS_A64_DBM) && (wd & VMS_A64_SW_DIRTY));
    /* A kernel executable global 2 MiB block: block type, no nG, UXN only. */
    uint64_t k =
        vms_fmt_mk_pte(f, 0x40000, 2, VMS_PGPROT_R | VMS_PGPROT_X | VMS_PGPROT_G | VMS_PGPROT_A);
    CHECK_EQ(k & 3, 1);
    CHECK(!(k & VMS_A64_NG) && (k & VMS_A64_UXN) && !(k & VMS_A64_PXN) && (k & VMS_A64_AP2));
    vms_fmt_decode(f, k, 2, &in);
    CHECK(in.leaf && (in.prot & VMS_PGPROT_X) && (in.prot & VMS_PGPROT_G) &&
          !(in.prot & VMS_PGPROT_U));
    /* Type 01 is a block at Arm levels 1 and 2 only; a table at 0..2. */
    vms_fmt_decode(f, UINT64_C(0x5000) | 1, 4, &in);
    CHECK(!in.present);
    vms_fmt_decode(f, UINT64_C(0x5000) | 1, 1, &in);
    CHECK(!in.present);
    vms_fmt_decode(f, UINT64_C(0x5000) | 3, 3, &in);
    CHECK(in.present && !in.leaf && in.pa == 0x5000);

    /* PROT_NONE: PTE_VALID clear, PTE_PROT_NONE (bit 58) set, frame kept; mk_pte with
     * no rights builds it too (Linux PAGE_NONE), keeping the block type. */
    uint64_t none = vms_fmt_mk_pte(f, 0x400, 2, 0);
    CHECK(vms_fmt_pte_protnone(f, none) && vms_fmt_pte_pfn(f, none) == 0x400);
    CHECK_EQ(vms_fmt_pte_clear_protnone(f, none) & 3, 1);
    CHECK(vms_fmt_pte_clear_protnone(f, vms_fmt_mk_pte(f, 9, 1, 0)) & VMS_A64_AP2);
    uint64_t pn = vms_fmt_pte_mkprotnone(f, pte);
    CHECK(!vms_fmt_pte_present(f, pn) && vms_fmt_pte_protnone(f, pn) && (pn >> 58 & 1));
    CHECK_EQ(vms_fmt_pte_pfn(f, pn), 0x12345);
    CHECK(!vms_fmt_is_swap(f, pn));
    CHECK_EQ(vms_fmt_pte_clear_protnone(f, pn), pte);
    /* Swap entries: type 7:3, offset 57:8, exactly Linux's __swp_entry. */
    uint64_t sw = vms_fmt_mk_swap(f, 5, UINT64_C(0x3456789));
    CHECK_EQ(sw, (UINT64_C(5) << 3) | (UINT64_C(0x3456789) << 8));
    CHECK(vms_fmt_is_swap(f, sw) && !vms_fmt_pte_present(f, sw));
    CHECK_EQ(vms_fmt_swap_type(f, sw), 5);
    CHECK_EQ(vms_fmt_swap_offset(f, sw), 0x3456789);
    CHECK(!vms_fmt_is_swap(f, 0));
    char buf[128];
    f->bits_str(pte | VMS_A64_CONT, 1, buf, sizeof buf);
    CHECK_STR(buf, "page AttrIndx=0 AP=11 SH=11 AF nG DBM Cont PXN UXN");
    CHECK_STR(vms_a64_fsc_name(0x0A), "access flag fault, level 2");
}

/* A tree built with the generic page-table editor (pt.h) in this format walks. */
static void test_pt_editor(void)
{
    rig r; /* the kernel's configuration: hardware AF and dirty state */
    REQUIRE_VOID(rig_init(&r, "tiny", vms_a64_tcr(48, true, false, true, true)));
    vms_pt_bump b = {vms_machine_ram(r.m), UINT64_C(0x200000), 0, 0, 0};
    vms_pt_ops ops = vms_pt_bump_ops(&b);
    vms_pt pt;
    vms_err err = {0};
    REQUIRE_VOID(vms_pt_init_format(&pt, r.bus, vms_format_aarch64(), &ops, &err) == VMS_OK);
    unsigned rw = VMS_PGPROT_R | VMS_PGPROT_W | VMS_PGPROT_U | VMS_PGPROT_A;
    CHECK(vms_pt_map_prot(&pt, 0x400000, 0x800000, VMS_PG_4K, rw, &err) == VMS_OK);
    CHECK(vms_pt_map_prot(&pt, UINT64_C(0x0000800000200000), 0x1000000, VMS_PG_2M, rw, &err) ==
          VMS_OK);
    CHECK(vms_core_msr_ttbr0_el1(r.c, pt.root | UINT64_C(1) << 48) == VMS_OK);
    vms_core_set_user(r.c, true);
    uint64_t pa = 0;
    vms_fault f;
    CHECK(xl(&r, 0x400123, VMS_ACC_WRITE, &pa, &f) && pa == 0x800123);
    uint64_t pte = 0;
    CHECK(vms_pt_lookup(&pt, 0x400000, &pte, NULL, NULL));
    CHECK(vms_fmt_pte_dirty(vms_format_aarch64(), pte)); /* AP[2] cleared by the write */
    /* Write-protected (fork's COW): a write faults, and the dirt is kept. */
    uint64_t ptep = 0;
    vms_pt_lookup(&pt, 0x400000, &pte, &ptep, NULL);
    vms_pt_write(&pt, ptep, vms_fmt_pte_wrprotect(vms_format_aarch64(), pte));
    vms_core_tlbi_vae1(r.c, UINT64_C(1) << 48 | 0x400);
    CHECK(!xl(&r, 0x400123, VMS_ACC_WRITE, &pa, &f));
    CHECK_EQ(f.error_code, (0x24u << 26) | VMS_A64_ESR_IL | VMS_A64_ESR_WNR | 0x0F);
    CHECK(f.flags == (VMS_FAULTF_PROT | VMS_FAULTF_WRITE | VMS_FAULTF_USER));
    /* VA[47] = 1 is still TTBR0's range on AArch64 (not "non-canonical" as on x86). */
    CHECK(xl(&r, UINT64_C(0x0000800000234567), VMS_ACC_READ, &pa, &f) && pa == 0x1034567);
    CHECK(!xl(&r, 0x400123, VMS_ACC_EXEC, &pa, &f)); /* UXN */
    CHECK_EQ(f.error_code, (0x20u << 26) | VMS_A64_ESR_IL | 0x0F);
    rig_free(&r);
}

/* ---- the manual's walks ------------------------------------------------------------ */

/*
 * The Arm ARM's 4 KiB-granule, 48-bit stage 1 lookup ("Overview of VMSAv8-64 address
 * translation using the 4KB translation granule"): VA[47:39] indexes the level 0
 * table, VA[38:30] level 1, VA[29:21] level 2; a block descriptor at level 2 maps
 * 2 MiB, so OA = block OA[47:21] : VA[20:0] and the walk reads three descriptors.
 */
static void test_manual_2m_block(void)
{
    rig r;
    REQUIRE_VOID(rig_init(&r, "tiny", tcr_plain()));
    uint64_t root = new_table(&r);
    uint64_t va = UINT64_C(0x00007F1234A5B6C7); /* L0 254, L1 72, L2 421, offset 0x5B6C7 */
    CHECK_EQ(idx(va, 0), 254);
    CHECK_EQ(idx(va, 1), 72);
    CHECK_EQ(idx(va, 2), 421);
    map(&r, root, va & ~UINT64_C(0x1FFFFF), UINT64_C(0x40000000), 2,
        NORMAL | VMS_A64_AP1 | VMS_A64_NG | VMS_A64_PXN);
    CHECK(vms_core_msr_ttbr0_el1(r.c, root | UINT64_C(7) << 48) == VMS_OK);
    vms_core_set_user(r.c, true);
    vms_walk_trace tr;
    vms_xlate x;
    vms_fault f;
    uint64_t pa = 0, before = refs(&r);
    CHECK(vms_core_translate(r.c, va, VMS_ACC_WRITE, &x, &pa, &f, &tr));
    CHECK_EQ(pa, UINT64_C(0x40000000) | (va & 0x1FFFFF));
    CHECK_EQ(x.size, VMS_PG_2M);
    CHECK_EQ(refs(&r) - before, 3);
    REQUIRE_VOID(tr.nsteps == 3);
    CHECK_EQ(tr.step[0].level, 4); /* vmsim level 4 = Arm level 0 */
    CHECK_EQ(tr.step[0].table_pa, root);
    CHECK_EQ(tr.step[0].index, 254);
    CHECK_EQ(tr.step[1].index, 72);
    CHECK_EQ(tr.step[2].index, 421);
    CHECK_EQ(tr.step[2].level, 2);
    CHECK_EQ(vms_core_walk_stats(r.c)->refs_by_level[2], 1);
    /* The 2 MiB block's TLB entry answers the whole block. */
    before = refs(&r);
    CHECK(xl(&r, va ^ 0x100, VMS_ACC_READ, &pa, &f) && refs(&r) == before);
    /* "tiny" caches 4 KiB entries only: another part of the block is a new walk. */
    CHECK(xl(&r, va ^ 0x1F0000, VMS_ACC_READ, &pa, &f) && refs(&r) == before + 3);
    CHECK_EQ(pa, UINT64_C(0x40000000) | ((va ^ 0x1F0000) & 0x1FFFFF));

    /* A 4 KiB page reads four descriptors; a 1 GiB block two. */
    uint64_t va4 = UINT64_C(0x0000000012345678);
    map(&r, root, va4 & ~UINT64_C(0xFFF), 0x777000, 3, NORMAL | VMS_A64_AP1 | VMS_A64_NG);
    before = refs(&r);
    CHECK(xl(&r, va4, VMS_ACC_READ, &pa, &f) && pa == 0x777678);
    CHECK_EQ(refs(&r) - before, 4);
    uint64_t va1 = UINT64_C(0x0000008040000000) | 0x1234567;
    map(&r, root, va1 & ~UINT64_C(0x3FFFFFFF), UINT64_C(0x80000000), 1, NORMAL | VMS_A64_AP1);
    before = refs(&r);
    CHECK(xl(&r, va1, VMS_ACC_READ, &pa, &f) && pa == UINT64_C(0x81234567));
    CHECK_EQ(refs(&r) - before, 2);

    /* The upper half goes through TTBR1_EL1, with its own tables. */
    uint64_t root1 = new_table(&r), kva = UINT64_C(0xFFFF000000001000) | 0x7FF0000000ULL;
    map(&r, root1, kva, 0x999000, 3, NORMAL | VMS_A64_UXN); /* kernel rw, global */
    CHECK(vms_core_msr_ttbr1_el1(r.c, root1) == VMS_OK);
    vms_core_set_user(r.c, false);
    CHECK(xl(&r, kva | 0x10, VMS_ACC_WRITE, &pa, &f) && pa == 0x999010);
    /* Same VA[47:0] in the lower half is a different tree (nothing mapped there). */
    CHECK(!xl(&r, kva & UINT64_C(0x0000FFFFFFFFFFFF), VMS_ACC_READ, &pa, &f));
    CHECK_EQ(f.error_code & 0x3F, 0x04 + 1); /* translation fault, level 1 */
    rig_free(&r);
}

/* ---- faults ----------------------------------------------------------------------- */

static uint32_t esr(unsigned ec, bool wnr, unsigned fsc)
{
    return (uint32_t)ec << 26 | VMS_A64_ESR_IL | (wnr ? VMS_A64_ESR_WNR : 0) | fsc;
}

static void test_faults(void)
{
    rig r;
    REQUIRE_VOID(rig_init(&r, "tiny", tcr_plain()));
    uint64_t root = new_table(&r);
    CHECK(vms_core_msr_ttbr0_el1(r.c, root) == VMS_OK);
    vms_core_set_user(r.c, true);
    uint64_t pa, before;
    vms_fault f;

    /* Translation faults at each level, with FAR = va. */
    uint64_t va = UINT64_C(0x0000123456789000);
    CHECK(!xl(&r, va, VMS_ACC_READ, &pa, &f));
    CHECK_EQ(f.kind, VMS_FAULT_PF);
    CHECK_EQ(f.error_code, esr(0x24, false, 0x04));
    CHECK_EQ(f.va, va);
    desc_at(&r, root, va, 1);
    CHECK(!xl(&r, va, VMS_ACC_WRITE, &pa, &f) && f.error_code == esr(0x24, true, 0x05));
    desc_at(&r, root, va, 2);
    CHECK(!xl(&r, va, VMS_ACC_READ, &pa, &f) && f.error_code == esr(0x24, false, 0x06));
    uint64_t ptep = desc_at(&r, root, va, 3);
    CHECK(!xl(&r, va, VMS_ACC_EXEC, &pa, &f) && f.error_code == esr(0x20, false, 0x07));
    /* Type 01 at level 3 is reserved: a translation fault too. */
    vms_bus_write64(r.bus, ptep, 0x5000 | NORMAL | VMS_A64_AP1 | 1);
    CHECK(!xl(&r, va, VMS_ACC_READ, &pa, &f) && f.error_code == esr(0x24, false, 0x07));

    /* Out of both ranges: bits 63:48 not all equal to VA[55]. Nothing is read. */
    before = refs(&r);
    CHECK(!xl(&r, UINT64_C(0x0001000000000000), VMS_ACC_READ, &pa, &f));
    CHECK_EQ(f.error_code, esr(0x24, false, 0x04));
    CHECK(!xl(&r, UINT64_C(0xFF80000000000000), VMS_ACC_READ, &pa, &f)); /* VA[55]=1 */
    CHECK_EQ(f.error_code, esr(0x24, false, 0x04));
    CHECK(!xl(&r, UINT64_C(0x7FFF000000000000), VMS_ACC_READ, &pa, &f)); /* VA[55]=0 */
    CHECK_EQ(refs(&r), before);
    CHECK_EQ(vms_core_get_stats(r.c)->faults_gp, 0);

    /* Access flag fault (no FEAT_HAFDBS update): AF = 0 in a page. */
    vms_bus_write64(r.bus, ptep, 0x5000 | VMS_A64_SH_INNER | VMS_A64_AP1 | 3);
    CHECK(!xl(&r, va, VMS_ACC_READ, &pa, &f) && f.error_code == esr(0x24, false, 0x0B));
    /* ... which comes before a permission fault (EL0 write to read-only). */
    vms_bus_write64(r.bus, ptep, 0x5000 | VMS_A64_AP2 | VMS_A64_AP1 | 3);
    CHECK(!xl(&r, va, VMS_ACC_WRITE, &pa, &f) && f.error_code == esr(0x24, true, 0x0B));
    /* Permission faults, level 3. */
    vms_bus_write64(r.bus, ptep, 0x5000 | NORMAL | VMS_A64_AP2 | VMS_A64_AP1 | 3);
    CHECK(xl(&r, va, VMS_ACC_READ, &pa, &f) && pa == 0x5000);
    CHECK(!xl(&r, va, VMS_ACC_WRITE, &pa, &f) && f.error_code == esr(0x24, true, 0x0F));
    CHECK(vms_core_get_stats(r.c)->tlb_hit_faults == 1); /* checked on the cached entry */
    vms_bus_write64(r.bus, ptep, 0x5000 | NORMAL | 3);   /* AP=00: EL1 only */
    vms_core_tlbi_vmalle1(r.c);
    CHECK(!xl(&r, va, VMS_ACC_READ, &pa, &f) && f.error_code == esr(0x24, false, 0x0F));
    vms_core_set_user(r.c, false);
    CHECK(xl(&r, va, VMS_ACC_WRITE, &pa, &f));
    CHECK(xl(&r, va, VMS_ACC_EXEC, &pa, &f)); /* PXN = 0 */
    /* EL1 may not execute what EL0 may write. */
    vms_bus_write64(r.bus, ptep, 0x5000 | NORMAL | VMS_A64_AP1 | 3);
    vms_core_tlbi_vmalle1(r.c);
    CHECK(!xl(&r, va, VMS_ACC_EXEC, &pa, &f) && f.error_code == esr(0x21, false, 0x0F));
    /* PAN: no EL1 data access to EL0-accessible memory. */
    vms_core_a64_set_pan(r.c, true);
    CHECK(!xl(&r, va, VMS_ACC_READ, &pa, &f) && f.error_code == esr(0x25, false, 0x0F));
    vms_core_a64_set_pan(r.c, false);
    CHECK(xl(&r, va, VMS_ACC_READ, &pa, &f));
    /* WXN: writable implies execute-never, at EL0 too. */
    vms_bus_write64(r.bus, ptep, 0x5000 | NORMAL | 3);
    vms_core_tlbi_vmalle1(r.c);
    CHECK(xl(&r, va, VMS_ACC_EXEC, &pa, &f));
    CHECK(vms_core_msr_sctlr_el1(r.c, M_BIT | VMS_A64_SCTLR_WXN) == VMS_OK);
    CHECK(!xl(&r, va, VMS_ACC_EXEC, &pa, &f) && f.error_code == esr(0x21, false, 0x0F));
    CHECK(vms_core_msr_sctlr_el1(r.c, M_BIT) == VMS_OK);
    /* Permission fault at level 2 on a block, and the level survives the TLB. */
    uint64_t bva = UINT64_C(0x0000000040000000);
    map(&r, root, bva, 0x600000, 2, NORMAL | VMS_A64_AP2 | VMS_A64_AP1);
    vms_core_set_user(r.c, true);
    CHECK(xl(&r, bva, VMS_ACC_READ, &pa, &f));
    uint64_t hf = vms_core_get_stats(r.c)->tlb_hit_faults;
    CHECK(!xl(&r, bva, VMS_ACC_WRITE, &pa, &f) && f.error_code == esr(0x24, true, 0x0E));
    CHECK_EQ(vms_core_get_stats(r.c)->tlb_hit_faults, hf + 1); /* on the cached splinter */
    CHECK(!xl(&r, bva + 0x1000, VMS_ACC_WRITE, &pa, &f) && f.error_code == esr(0x24, true, 0x0E));
    /* Address size fault: an output address above TCR_EL1.IPS (40 bits here). */
    CHECK(vms_core_msr_tcr_el1(r.c, vms_a64_tcr(40, false, false, false, false)) == VMS_OK);
    map(&r, root, bva + 0x200000, UINT64_C(1) << 41, 2, NORMAL | VMS_A64_AP1);
    vms_core_tlbi_vmalle1(r.c);
    CHECK(!xl(&r, bva + 0x200000, VMS_ACC_READ, &pa, &f) && f.error_code == esr(0x24, false, 0x02));
    /* EPD0: walks of the lower half are disabled. */
    CHECK(vms_core_msr_tcr_el1(r.c, tcr_plain() | VMS_A64_TCR_EPD0) == VMS_OK);
    vms_core_tlbi_vmalle1(r.c);
    CHECK(!xl(&r, bva, VMS_ACC_READ, &pa, &f) && f.error_code == esr(0x24, false, 0x04));
    /* Unmodelled TCR values are refused. */
    CHECK_EQ(vms_core_msr_tcr_el1(r.c, tcr_plain() & ~VMS_A64_TCR_HPD0), VMS_ERR_UNSUPPORTED);
    CHECK_EQ(vms_core_msr_tcr_el1(r.c, (tcr_plain() & ~UINT64_C(0x3F)) | 25), VMS_ERR_UNSUPPORTED);
    rig_free(&r);
}

/* FEAT_HAFDBS: the walker sets AF (HA) and clears AP[2] of DBM entries on a write (HD). */
static void test_hafdbs(void)
{
    rig r;
    REQUIRE_VOID(rig_init(&r, "tiny", vms_a64_tcr(48, false, false, true, true)));
    uint64_t root = new_table(&r), pa;
    CHECK(vms_core_msr_ttbr0_el1(r.c, root) == VMS_OK);
    vms_core_set_user(r.c, true);
    vms_fault f;
    uint64_t va = 0x10000;
    uint64_t d = 0x7000 | VMS_A64_SH_INNER | VMS_A64_AP1 | VMS_A64_AP2 | VMS_A64_DBM | 3;
    uint64_t ptep = map(&r, root, va, 0x7000, 3, d & ~UINT64_C(3) & ~UINT64_C(0x7000));
    CHECK_EQ(rd(&r, ptep), d);
    CHECK(xl(&r, va, VMS_ACC_READ, &pa, &f));
    CHECK_EQ(rd(&r, ptep), d | VMS_A64_AF); /* AF set, still clean */
    uint64_t w0 = vms_core_get_stats(r.c)->dirty_rewalks;
    CHECK(xl(&r, va, VMS_ACC_WRITE, &pa, &f)); /* hits clean: walks again, clears AP[2] */
    CHECK_EQ(rd(&r, ptep), (d | VMS_A64_AF) & ~VMS_A64_AP2);
    CHECK_EQ(vms_core_get_stats(r.c)->dirty_rewalks, w0 + 1);
    CHECK(xl(&r, va, VMS_ACC_WRITE, &pa, &f));
    CHECK_EQ(vms_core_get_stats(r.c)->dirty_rewalks, w0 + 1); /* now cached dirty */
    /* Without DBM a read-only page faults whatever HD says. */
    uint64_t p2 = map(&r, root, 0x11000, 0x8000, 3, VMS_A64_SH_INNER | VMS_A64_AP1 | VMS_A64_AP2);
    CHECK(!xl(&r, 0x11000, VMS_ACC_WRITE, &pa, &f) && f.error_code == esr(0x24, true, 0x0F));
    CHECK(!(rd(&r, p2) & VMS_A64_AF)); /* no update on a faulting access */
    /* HA alone: AF is set, DBM is ignored. */
    CHECK(vms_core_msr_tcr_el1(r.c, vms_a64_tcr(48, false, false, true, false)) == VMS_OK);
    vms_core_tlbi_vmalle1(r.c);
    uint64_t p3 = map(&r, root, 0x12000, 0x9000, 3,
                      VMS_A64_SH_INNER | VMS_A64_AP1 | VMS_A64_AP2 | VMS_A64_DBM);
    CHECK(!xl(&r, 0x12000, VMS_ACC_WRITE, &pa, &f) && f.error_code == esr(0x24, true, 0x0F));
    CHECK(xl(&r, 0x12000, VMS_ACC_READ, &pa, &f) && (rd(&r, p3) & VMS_A64_AF));
    rig_free(&r);
}

/* ---- ASIDs, global entries, TLBI -------------------------------------------------- */

static void test_tlbi(const char *preset)
{
    rig r;
    REQUIRE_VOID(rig_init(&r, preset, tcr_plain()));
    uint64_t root = new_table(&r), pa;
    vms_fault f;
    uint64_t va = 0x200000, gva = 0x400000;
    uint64_t ptep = map(&r, root, va, 0x10000, 3, NORMAL | VMS_A64_AP1 | VMS_A64_NG);
    uint64_t gptep = map(&r, root, gva, 0x20000, 3, NORMAL | VMS_A64_AP1); /* global */
    vms_core_set_user(r.c, true);
    CHECK(vms_core_msr_ttbr0_el1(r.c, root | UINT64_C(1) << 48) == VMS_OK);
    CHECK(xl(&r, va, VMS_ACC_READ, &pa, &f) && pa == 0x10000);
    CHECK(xl(&r, gva, VMS_ACC_READ, &pa, &f) && pa == 0x20000);
    /* Change both leaves without maintenance: ASID 1 keeps using the cached entries. */
    vms_bus_write64(r.bus, ptep, 0x30000 | NORMAL | VMS_A64_AP1 | VMS_A64_NG | 3);
    vms_bus_write64(r.bus, gptep, 0x40000 | NORMAL | VMS_A64_AP1 | 3);
    CHECK(xl(&r, va, VMS_ACC_READ, &pa, &f) && pa == 0x10000);
    /* ASID 2 (same tables): the nG entry is not its own, the global one is. */
    CHECK(vms_core_msr_ttbr0_el1(r.c, root | UINT64_C(2) << 48) == VMS_OK);
    CHECK(xl(&r, va, VMS_ACC_READ, &pa, &f) && pa == 0x30000);
    CHECK(xl(&r, gva, VMS_ACC_READ, &pa, &f) && pa == 0x20000);
    /* Back in ASID 1, still stale; TLBI ASIDE1 drops ASID 1's nG entries only. */
    CHECK(vms_core_msr_ttbr0_el1(r.c, root | UINT64_C(1) << 48) == VMS_OK);
    CHECK(xl(&r, va, VMS_ACC_READ, &pa, &f) && pa == 0x10000);
    vms_core_tlbi_aside1(r.c, UINT64_C(1) << 48);
    CHECK(xl(&r, va, VMS_ACC_READ, &pa, &f) && pa == 0x30000);
    CHECK(xl(&r, gva, VMS_ACC_READ, &pa, &f) && pa == 0x20000); /* global survives */
    /* TLBI VAE1 names an ASID, but drops global entries of the VA too. */
    vms_core_tlbi_vae1(r.c, UINT64_C(9) << 48 | gva >> 12);
    CHECK(xl(&r, gva, VMS_ACC_READ, &pa, &f) && pa == 0x40000);
    /* VAE1 in another ASID leaves ASID 1's nG entry; in ASID 1 it drops it. */
    vms_bus_write64(r.bus, ptep, 0x50000 | NORMAL | VMS_A64_AP1 | VMS_A64_NG | 3);
    vms_core_tlbi_vae1(r.c, UINT64_C(2) << 48 | va >> 12);
    CHECK(xl(&r, va, VMS_ACC_READ, &pa, &f) && pa == 0x30000);
    vms_core_tlbi_vae1(r.c, UINT64_C(1) << 48 | va >> 12);
    CHECK(xl(&r, va, VMS_ACC_READ, &pa, &f) && pa == 0x50000);
    /* With 8-bit ASIDs, Xt[63:56] is ignored: ASID 0x101 is ASID 1. */
    vms_bus_write64(r.bus, ptep, 0x60000 | NORMAL | VMS_A64_AP1 | VMS_A64_NG | 3);
    vms_core_tlbi_vae1(r.c, UINT64_C(0x101) << 48 | va >> 12);
    CHECK(xl(&r, va, VMS_ACC_READ, &pa, &f) && pa == 0x60000);
    /* VMALLE1 drops everything, globals included. */
    vms_bus_write64(r.bus, gptep, 0x70000 | NORMAL | VMS_A64_AP1 | 3);
    CHECK(xl(&r, gva, VMS_ACC_READ, &pa, &f) && pa == 0x40000);
    vms_core_tlbi_vmalle1(r.c);
    CHECK(xl(&r, gva, VMS_ACC_READ, &pa, &f) && pa == 0x70000);
    /* 16-bit ASIDs (TCR_EL1.AS): all of them are held, none truncated: ASID 0x1FFF
     * and 0x0FFF are different address spaces. */
    CHECK_EQ(vms_core_msr_tcr_el1(r.c, vms_a64_tcr(48, true, false, false, false)), VMS_OK);
    CHECK_EQ(vms_core_msr_ttbr1_el1(r.c, root), VMS_OK);
    CHECK_EQ(vms_core_msr_ttbr0_el1(r.c, root | UINT64_C(0x1FFF) << 48), VMS_OK);
    CHECK(xl(&r, va, VMS_ACC_READ, &pa, &f) && pa == 0x60000); /* walks, fills 0x1FFF */
    vms_bus_write64(r.bus, ptep, 0x61000 | NORMAL | VMS_A64_AP1 | VMS_A64_NG | 3);
    CHECK(xl(&r, va, VMS_ACC_READ, &pa, &f) && pa == 0x60000); /* 0x1FFF's stale entry */
    CHECK_EQ(vms_core_msr_ttbr0_el1(r.c, root | UINT64_C(0x0FFF) << 48), VMS_OK);
    CHECK(xl(&r, va, VMS_ACC_READ, &pa, &f) && pa == 0x61000); /* 0x0FFF walks anew */
    vms_bus_write64(r.bus, ptep, 0x60000 | NORMAL | VMS_A64_AP1 | VMS_A64_NG | 3);
    /* Two trees with the top ASID: the walk caches keep the halves apart. */
    CHECK_EQ(vms_core_msr_ttbr0_el1(r.c, root | UINT64_C(0xFFFF) << 48), VMS_OK);
    CHECK_EQ(vms_core_msr_ttbr1_el1(r.c, 0), VMS_OK);
    CHECK(xl(&r, va, VMS_ACC_READ, &pa, &f) && pa == 0x60000); /* ASID 0xFFFF walks */
    CHECK(vms_tlb_check(vms_core_tlb(r.c, VMS_TLB_L1D)));
    rig_free(&r);
}

/* Walk caches: a changed table descriptor is used only after a TLBI; the two halves
 * never share walk-cache entries although VA[47:0] agree. */
static void test_walk_cache(void)
{
    rig r;
    REQUIRE_VOID(rig_init(&r, "skylake", tcr_plain()));
    REQUIRE_VOID(vms_core_pwc(r.c) != NULL);
    uint64_t root0 = new_table(&r), root1 = new_table(&r), pa;
    vms_fault f;
    uint64_t lo = UINT64_C(0x0000001000000000), hi = lo | UINT64_C(0xFFFF000000000000);
    for (unsigned i = 0; i < 4; i++) {
        map(&r, root0, lo + 0x1000u * i, 0x100000u + 0x1000u * i, 3, NORMAL | VMS_A64_AP1);
        map(&r, root1, hi + 0x1000u * i, 0x900000u + 0x1000u * i, 3, NORMAL);
    }
    CHECK(vms_core_msr_ttbr0_el1(r.c, root0) == VMS_OK);
    CHECK(vms_core_msr_ttbr1_el1(r.c, root1) == VMS_OK);
    uint64_t h0 = vms_core_walk_stats(r.c)->pwc_hits;
    for (unsigned i = 0; i < 4; i++) {
        CHECK(xl(&r, lo + 0x1000u * i, VMS_ACC_READ, &pa, &f) && pa == 0x100000u + 0x1000u * i);
        CHECK(xl(&r, hi + 0x1000u * i, VMS_ACC_READ, &pa, &f) && pa == 0x900000u + 0x1000u * i);
    }
    CHECK(vms_core_walk_stats(r.c)->pwc_hits - h0 >= 6); /* later walks start low */
    /* Repoint the level 2 table descriptor of the lower half to a new level 3 table. */
    uint64_t l3 = new_table(&r);
    vms_bus_write64(r.bus, l3 + 8u * idx(lo + 0x5000, 3), 0xA05000 | NORMAL | VMS_A64_AP1 | 3);
    uint64_t l2e = desc_at(&r, root0, lo, 2);
    vms_bus_write64(r.bus, l2e, l3 | TBL);
    CHECK(!xl(&r, lo + 0x5000, VMS_ACC_READ, &pa, &f)); /* walk cache: the old table */
    CHECK_EQ(f.error_code & 0x3F, 0x07);
    vms_core_tlbi_vae1(r.c, (lo + 0x5000) >> 12);
    CHECK(xl(&r, lo + 0x5000, VMS_ACC_READ, &pa, &f) && pa == 0xA05000);
    CHECK(vms_pwc_check(vms_core_pwc(r.c)));
    rig_free(&r);
}

/* ---- the differential test -------------------------------------------------------- */

/*
 * The reference: Arm ARM D8 read literally, one case per level and per rule, re-reading
 * RAM for every access and knowing nothing of TLBs or walk caches. Returns true with
 * *pa on success (and the descriptor's new value in *newd at *ptep), false with the
 * ESR value in *esr_out.
 */
typedef struct ref_out {
    bool ok;
    uint64_t pa;
    uint32_t esr;
    uint64_t ptep, newd; /* the leaf and what it must hold afterwards (ok only) */
} ref_out;

static uint32_t ref_esr(bool el0, vms_access_kind k, unsigned fsc)
{
    unsigned ec;
    if (k == VMS_ACC_EXEC)
        ec = el0 ? 0x20 : 0x21;
    else
        ec = el0 ? 0x24 : 0x25;
    return (uint32_t)ec << 26 | 1u << 25 | (k == VMS_ACC_WRITE ? 1u << 6 : 0) | fsc;
}

static ref_out ref_fault(bool el0, vms_access_kind k, unsigned fsc)
{
    ref_out o = {0};
    o.esr = ref_esr(el0, k, fsc);
    return o;
}

/* The kernel's neutral summary of a fault (walk.h VMS_FAULTF_*): the access, plus PROT
 * for a Permission fault and RSVD for an Address size fault. */
static uint32_t ref_flags(bool el0, vms_access_kind k, unsigned fsc)
{
    uint32_t fl = el0 ? VMS_FAULTF_USER : 0;
    if (k == VMS_ACC_WRITE)
        fl |= VMS_FAULTF_WRITE;
    if (k == VMS_ACC_EXEC)
        fl |= VMS_FAULTF_EXEC;
    if (fsc >= 0x0C && fsc <= 0x0F)
        fl |= VMS_FAULTF_PROT;
    if (fsc <= 0x03)
        fl |= VMS_FAULTF_RSVD;
    return fl;
}

static ref_out ref_walk(rig *r, const vms_regs *g, uint64_t va, vms_access_kind k)
{
    bool el0 = g->user;
    uint64_t tcr = g->tcr_el1;
    uint64_t top16 = va >> 48;
    uint64_t ttbr;
    if (top16 == 0x0000) {
        if (tcr & (UINT64_C(1) << 7))
            return ref_fault(el0, k, 0x04);
        ttbr = g->ttbr0_el1;
    } else if (top16 == 0xFFFF) {
        if (tcr & (UINT64_C(1) << 23))
            return ref_fault(el0, k, 0x04);
        ttbr = g->ttbr1_el1;
    } else {
        return ref_fault(el0, k, 0x04);
    }
    unsigned ips = (unsigned)((tcr >> 32) & 7);
    unsigned pabits = ips == 0   ? 32
                      : ips == 1 ? 36
                      : ips == 2 ? 40
                      : ips == 3 ? 42
                      : ips == 4 ? 44
                                 : 48;
    uint64_t base = ttbr & UINT64_C(0x0000FFFFFFFFF000);
    if (base >> pabits)
        return ref_fault(el0, k, 0x00);
    uint64_t d = 0, ptep = 0;
    unsigned lvl;
    uint64_t blockmask = 0;
    for (lvl = 0; lvl <= 3; lvl++) {
        unsigned shift = lvl == 0 ? 39 : lvl == 1 ? 30 : lvl == 2 ? 21 : 12;
        ptep = base + ((va >> shift) & 0x1FF) * 8;
        d = rd(r, ptep);
        uint64_t oa = d & UINT64_C(0x0000FFFFFFFFF000);
        unsigned type = (unsigned)(d & 3);
        if (type == 0 || type == 2)
            return ref_fault(el0, k, 0x04 + lvl);
        if (type == 1 && (lvl == 0 || lvl == 3))
            return ref_fault(el0, k, 0x04 + lvl);
        if (oa >> pabits)
            return ref_fault(el0, k, 0x00 + lvl);
        if (type == 1) { /* block at level 1 or 2 */
            blockmask = lvl == 1 ? UINT64_C(0x3FFFFFFF) : UINT64_C(0x1FFFFF);
            break;
        }
        if (lvl == 3) { /* page */
            blockmask = 0xFFF;
            break;
        }
        base = oa;
    }
    bool ha = (tcr >> 39) & 1, hd = ((tcr >> 40) & 1) && ha;
    if (!((d >> 10) & 1) && !ha)
        return ref_fault(el0, k, 0x08 + lvl);
    bool ap1 = (d >> 6) & 1, ap2 = (d >> 7) & 1, dbm = (d >> 51) & 1;
    bool pxn = (d >> 53) & 1, uxn = (d >> 54) & 1;
    bool wxn = (g->sctlr_el1 >> 19) & 1;
    bool writable = !ap2 || (hd && dbm);
    /* EL0 and EL1 permissions from AP[2:1]: 00 EL1 rw; 01 both rw; 10 EL1 ro; 11 both ro. */
    bool el0_r = ap1, el0_w = ap1 && writable;
    bool el1_r = true, el1_w = writable;
    bool el0_x = !uxn, el1_x = !pxn && !el0_w;
    if (wxn) {
        if (el0_w)
            el0_x = false;
        if (el1_w)
            el1_x = false;
    }
    if (g->pan && ap1) {
        el1_r = false;
        el1_w = false;
    }
    bool allowed;
    if (k == VMS_ACC_READ)
        allowed = el0 ? el0_r : el1_r;
    else if (k == VMS_ACC_WRITE)
        allowed = el0 ? el0_w : el1_w;
    else
        allowed = el0 ? el0_x : el1_x;
    if (!allowed)
        return ref_fault(el0, k, 0x0C + lvl);
    ref_out o = {0};
    o.ok = true;
    o.pa = (d & UINT64_C(0x0000FFFFFFFFF000) & ~blockmask) | (va & blockmask);
    o.ptep = ptep;
    o.newd = d;
    if (ha)
        o.newd |= UINT64_C(1) << 10;
    if (k == VMS_ACC_WRITE && ap2 && hd && dbm)
        o.newd &= ~(UINT64_C(1) << 7);
    return o;
}

/* The VA slots the random tables populate (so most accesses reach deep levels). */
static const unsigned L0S[] = {0, 1, 511}, L1S[] = {0, 3, 511}, L2S[] = {0, 1, 7},
                      L3S[] = {0, 1, 2, 5};
#define NSLOT(a) (sizeof(a) / sizeof(a[0]))

typedef struct dtree {
    uint64_t root[2];
    uint64_t tdesc[64]; /* addresses of table descriptors written (for mutation) */
    unsigned ntdesc;
    uint64_t leaf[512]; /* addresses of leaf-or-invalid descriptors, and their VA */
    uint64_t leaf_va[512];
    unsigned leaf_level[512];
    unsigned nleaf;
} dtree;

static uint64_t rnd_leaf(vms_rng *g, unsigned lvl, uint64_t pabits_max)
{
    uint64_t d = vms_rng_next(g) &
                 (UINT64_C(0xFFC) | UINT64_C(0x00FF000000000000) | UINT64_C(0x7800000000000000));
    d &= ~(UINT64_C(0x6) << 2); /* keep AttrIndx small, 0 or 1 */
    if (vms_rng_below(g, 10) < 7)
        d |= VMS_A64_AF;
    uint64_t oa = vms_rng_below(g, 20) ? vms_rng_below(g, UINT64_C(1) << 30)
                                       : vms_rng_below(g, UINT64_C(1) << pabits_max);
    if (vms_rng_below(g, 4)) /* mostly aligned; otherwise RES0 low bits set */
        oa &= ~((UINT64_C(1) << (lvl == 3 ? 12 : lvl == 2 ? 21 : 30)) - 1);
    d |= oa & VMS_A64_ADDR_MASK;
    unsigned t = (unsigned)vms_rng_below(g, 16);
    if (t == 0)
        return d & ~UINT64_C(3); /* invalid, attributes left in place */
    if (t == 1)
        return d | (lvl == 3 ? 1 : 2); /* 01 at level 3 (reserved) / 10 invalid */
    return d | (lvl == 3 ? 3 : 1);
}

/* Build tables at the slots: every entry is a table, a block or invalid at random. */
static void build_level(rig *r, dtree *t, vms_rng *g, uint64_t table, uint64_t va_base,
                        unsigned lvl)
{
    static const unsigned *const slots[] = {L0S, L1S, L2S, L3S};
    static const unsigned nslots[] = {NSLOT(L0S), NSLOT(L1S), NSLOT(L2S), NSLOT(L3S)};
    unsigned shift = 39 - 9 * lvl;
    for (unsigned i = 0; i < nslots[lvl]; i++) {
        uint64_t va = va_base | (uint64_t)slots[lvl][i] << shift, ptep = table + 8u * slots[lvl][i];
        unsigned what = (unsigned)vms_rng_below(g, 10);
        bool table_ok = lvl < 3, block_ok = lvl == 1 || lvl == 2;
        if (table_ok && (what < 7 || !block_ok)) {
            if (what == 9) { /* an invalid or 01 descriptor at a table level */
                uint64_t d = vms_rng_below(g, 2) ? 0 : (new_table(r) | 1);
                vms_bus_write64(r->bus, ptep, d);
                if (t->nleaf < 512) {
                    t->leaf[t->nleaf] = ptep;
                    t->leaf_va[t->nleaf] = va;
                    t->leaf_level[t->nleaf++] = lvl;
                }
                continue;
            }
            uint64_t next = new_table(r);
            /* upper attributes of a table are ignored (HPD): set some at random */
            uint64_t ign = vms_rng_next(g) & UINT64_C(0xF800000000000FFC);
            vms_bus_write64(r->bus, ptep, next | TBL | ign);
            if (t->ntdesc < 64)
                t->tdesc[t->ntdesc++] = ptep;
            build_level(r, t, g, next, va, lvl + 1);
        } else {
            vms_bus_write64(r->bus, ptep, rnd_leaf(g, lvl, 46));
            if (t->nleaf < 512) {
                t->leaf[t->nleaf] = ptep;
                t->leaf_va[t->nleaf] = va;
                t->leaf_level[t->nleaf++] = lvl;
            }
        }
    }
}

static uint64_t rnd_va(vms_rng *g)
{
    unsigned w = (unsigned)vms_rng_below(g, 40);
    if (w == 0)
        return vms_rng_next(g); /* anywhere, mostly out of range */
    uint64_t va = (uint64_t)L0S[vms_rng_below(g, NSLOT(L0S))] << 39 |
                  (uint64_t)L1S[vms_rng_below(g, NSLOT(L1S))] << 30 |
                  (uint64_t)L2S[vms_rng_below(g, NSLOT(L2S))] << 21 |
                  (uint64_t)L3S[vms_rng_below(g, NSLOT(L3S))] << 12 | vms_rng_below(g, 4096);
    if (w == 1)
        va |= vms_rng_below(g, 0x200000); /* elsewhere in the block */
    return vms_rng_below(g, 2) ? va : va | UINT64_C(0xFFFF000000000000);
}

static uint64_t rnd_tcr(vms_rng *g)
{
    static const unsigned pab[] = {40, 44, 48};
    uint64_t t = vms_a64_tcr(pab[vms_rng_below(g, 3)], false, vms_rng_below(g, 2),
                             vms_rng_below(g, 2), vms_rng_below(g, 2));
    if (vms_rng_below(g, 12) == 0)
        t |= vms_rng_below(g, 2) ? VMS_A64_TCR_EPD0 : VMS_A64_TCR_EPD1;
    return t;
}

#define NASID 4

/* Invalidate what changing the descriptor at t->leaf[i] needs: VAE1 in every ASID. */
static void inval_leaf(rig *r, uint64_t va)
{
    for (uint64_t a = 0; a < NASID; a++)
        vms_core_tlbi_vae1(r->c, a << 48 | ((va >> 12) & ((UINT64_C(1) << 44) - 1)));
}

static void test_diff(const char *preset, unsigned steps)
{
    rig r;
    vms_rng g;
    vms_rng_seed(&g, th_seed ^ (preset[0] == 's' ? 0x5eed : 0));
    REQUIRE_VOID(rig_init(&r, preset, rnd_tcr(&g)));
    dtree t = {0};
    t.root[0] = new_table(&r);
    t.root[1] = new_table(&r);
    build_level(&r, &t, &g, t.root[0], 0, 0);
    build_level(&r, &t, &g, t.root[1], UINT64_C(0xFFFF000000000000), 0);
    unsigned asid = 0;
    CHECK(vms_core_msr_ttbr0_el1(r.c, t.root[0]) == VMS_OK);
    CHECK(vms_core_msr_ttbr1_el1(r.c, t.root[1]) == VMS_OK);
    uint64_t last_va = 0;
    unsigned bad = 0, n_ok = 0, n_fsc[64] = {0}, n_hit = 0, n_tlbi = 0;
    for (unsigned s = 0; s < steps; s++) {
        unsigned op = (unsigned)vms_rng_below(&g, 100);
        if (op < 4 && t.nleaf) { /* rewrite a leaf (or invalid) descriptor */
            unsigned i = (unsigned)vms_rng_below(&g, t.nleaf);
            vms_bus_write64(r.bus, t.leaf[i], rnd_leaf(&g, t.leaf_level[i], 46));
            inval_leaf(&r, t.leaf_va[i]);
            n_tlbi++;
            continue;
        }
        if (op < 6 && t.ntdesc) { /* make a table descriptor invalid (1 in 5) or valid */
            unsigned i = (unsigned)vms_rng_below(&g, t.ntdesc);
            uint64_t d = rd(&r, t.tdesc[i]) & ~UINT64_C(1);
            vms_bus_write64(r.bus, t.tdesc[i], d | (vms_rng_below(&g, 5) ? 1u : 0u));
            vms_core_tlbi_vmalle1(r.c);
            continue;
        }
        if (op < 8) { /* new TCR (cached fields: software invalidates) */
            uint64_t tcr = rnd_tcr(&g);
            CHECK(vms_core_msr_tcr_el1(r.c, tcr) == VMS_OK);
            vms_core_tlbi_vmalle1(r.c);
            continue;
        }
        if (op < 11) { /* switch ASID in whichever TTBR holds it */
            asid = (unsigned)vms_rng_below(&g, NASID);
            uint64_t a = (uint64_t)asid << 48;
            CHECK(vms_core_msr_ttbr0_el1(r.c, t.root[0] | a) == VMS_OK);
            CHECK(vms_core_msr_ttbr1_el1(r.c, t.root[1] | a) == VMS_OK);
            continue;
        }
        if (op < 13) {
            vms_core_a64_set_pan(r.c, vms_rng_below(&g, 3) == 0);
            CHECK(vms_core_msr_sctlr_el1(
                      r.c, M_BIT | (vms_rng_below(&g, 4) == 0 ? VMS_A64_SCTLR_WXN : 0)) == VMS_OK);
            continue;
        }
        vms_core_set_user(r.c, vms_rng_below(&g, 2));
        vms_access_kind k = (vms_access_kind)vms_rng_below(&g, 3);
        /* a third of the accesses revisit the last address: TLB hits, other rights */
        uint64_t va = s && vms_rng_below(&g, 3) == 0 ? last_va : rnd_va(&g);
        last_va = va;
        ref_out want = ref_walk(&r, vms_core_regs(r.c), va, k);
        uint64_t pa = 0, w0 = vms_core_walk_stats(r.c)->walks;
        vms_fault f;
        bool ok = xl(&r, va, k, &pa, &f);
        if (vms_core_walk_stats(r.c)->walks == w0)
            n_hit++;
        bool same = ok == want.ok;
        if (same && ok)
            same = pa == want.pa && rd(&r, want.ptep) == want.newd;
        if (same && !ok)
            same = f.kind == VMS_FAULT_PF && f.error_code == want.esr && f.va == va &&
                   f.flags == ref_flags(vms_core_regs(r.c)->user, k, want.esr & 0x3F);
        if (!same && bad++ < 5)
            fprintf(stderr,
                    "diff %s step %u: va 0x%" PRIx64 " kind %d el%d: mmu %d pa 0x%" PRIx64
                    " esr 0x%x; ref %d pa 0x%" PRIx64 " esr 0x%x\n",
                    preset, s, va, (int)k, vms_core_regs(r.c)->user ? 0 : 1, ok, pa,
                    ok ? 0 : f.error_code, want.ok, want.pa, want.esr);
        if (ok)
            n_ok++;
        else
            n_fsc[f.error_code & 0x3F]++;
    }
    CHECK_EQ(bad, 0);
    /* The run covered what it claims to: successes, TLB hits, every fault kind. */
    CHECK(n_ok > steps / 50 && n_hit > 0 && n_tlbi > 0);
    unsigned trans = 0, af = 0, perm = 0;
    for (unsigned l = 0; l < 4; l++) {
        trans += n_fsc[0x04 + l];
        af += n_fsc[0x08 + l];
        perm += n_fsc[0x0C + l];
    }
    CHECK(n_fsc[0x04] > 0 && n_fsc[0x07] > 0 && trans > 0 && af > 0 && perm > 0);
    CHECK(n_fsc[0x0E] + n_fsc[0x0D] > 0); /* block permission faults */
    printf("diff %s: %u steps, %u ok, %u TLB hits, translation %u (L0 %u L1 %u L2 %u L3 %u), "
           "access flag %u, permission %u, address size %u\n",
           preset, steps, n_ok, n_hit, trans, n_fsc[4], n_fsc[5], n_fsc[6], n_fsc[7], af, perm,
           n_fsc[0] + n_fsc[1] + n_fsc[2] + n_fsc[3]);
    CHECK(vms_tlb_check(vms_core_tlb(r.c, VMS_TLB_L1D)));
    if (vms_core_pwc(r.c))
        CHECK(vms_pwc_check(vms_core_pwc(r.c)));
    rig_free(&r);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "aarch64");
    test_format();
    test_pt_editor();
    test_manual_2m_block();
    test_faults();
    test_hafdbs();
    test_tlbi("tiny");
    test_tlbi("skylake");
    test_walk_cache();
    const char *env = getenv("VMS_SOAK");
    unsigned steps = env ? 400000u : 40000u;
    test_diff("tiny", steps);
    test_diff("skylake", steps);
    return th_finish();
}
