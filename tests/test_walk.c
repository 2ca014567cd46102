/*
 * test_walk.c — the hardware page walker (Intel SDM Vol. 3A §4.5-§4.8) on tables really
 * built in simulated RAM: the seeds' worked examples, reference counts per walk, A/D
 * bits in RAM, every fault case with its exact error code, and a seeded differential
 * test against a deliberately naive model (a list of mappings and a list of restrictions
 * on upper-level entries, with its own statement of the rights rules), run through the
 * traced stepwise walker and the untraced fast one (vmsi_x86_walk_attrs), and the two
 * compared on twin rigs with page-walk caches (test_fast_equals_traced). Otherwise no
 * page-walk cache here (pwc = NULL): PWC tests belong with pwc.c.
 */
#include "tpool.h"
#include "vmsim/pwc.h"
#include "vmsim/rng.h"
#include "vmsim/walk.h"

#define RWUS (VMS_PTE_RW | VMS_PTE_US)
#define RD   VMS_ACC_READ
#define WR   VMS_ACC_WRITE
#define EX   VMS_ACC_EXEC

typedef struct rig {
    tpool tp;
    vms_pt pt;
    vms_regs regs;
    vms_walk_stats st;
    vms_xlate x;
    vms_fault f;
    vms_walk_trace tr;
    bool alternate; /* walks alternate between the traced walk and the untraced fast one */
    unsigned nwalks;
} rig;

/* RAM, bus and an empty `levels`-level tree; regs in long mode with WP and NXE, as
 * Linux runs, supervisor, MAXPHYADDR 46. */
static bool rig_init(rig *r, unsigned levels)
{
    memset(r, 0, sizeof *r);
    if (!tp_init(&r->tp) || vms_pt_init(&r->pt, r->tp.bus, levels, &r->tp.ops, NULL))
        return false;
    r->regs.cr0 = VMS_CR0_PG | VMS_CR0_WP;
    r->regs.cr3 = r->pt.root;
    r->regs.cr4 = VMS_CR4_PAE | (levels == 5 ? VMS_CR4_LA57 : 0);
    r->regs.efer = VMS_EFER_LME | VMS_EFER_LMA | VMS_EFER_NXE;
    r->regs.maxphyaddr = 46;
    return true;
}

static void rig_fini(rig *r)
{
    vms_pt_destroy(&r->pt);
    CHECK_EQ(tp_live(&r->tp), 0);
    tp_fini(&r->tp);
}

/* Walk; true on success. */
static bool walk(rig *r, uint64_t va, vms_access_kind kind)
{
    memset(&r->f, 0, sizeof r->f);
    bool traced = !r->alternate || (r->nwalks++ & 1);
    return vms_walk(r->tp.bus, NULL, &r->regs, va, kind, &r->x, &r->f, &r->st,
                    traced ? &r->tr : NULL);
}

/* The #PF error code of a walk that must fault (0xFFFF if it succeeded or was not #PF). */
static uint32_t pf(rig *r, uint64_t va, vms_access_kind kind)
{
    if (walk(r, va, kind) || r->f.kind != VMS_FAULT_PF)
        return 0xFFFF;
    CHECK_EQ(r->f.va, va);
    return r->f.error_code;
}

static uint64_t raw(rig *r, uint64_t ptep)
{
    uint64_t v = 0;
    vms_ram_read64(r->tp.ram, ptep, &v);
    return v;
}

/* Address of va's entry at `level` (the table must exist). */
static uint64_t ep(rig *r, uint64_t va, unsigned level)
{
    uint64_t p = 0;
    CHECK_EQ(vms_pt_entry_addr(&r->pt, va, level, false, &p, NULL), VMS_OK);
    return p;
}

static void test_seed_examples(void)
{
    rig r;
    REQUIRE_VOID(rig_init(&r, 4));
    /* Seed 000: virtual 0x00012345, page 0x12 -> frame 0x50, physical 0x00050345. */
    CHECK_EQ(vms_pt_map(&r.pt, 0x12000, 0x50000, VMS_PG_4K, RWUS, NULL), VMS_OK);
    /* Seed 003: virtual 0x00401234, VPN 0x401 -> PFN 0x8A3, physical 0x8A3234. */
    CHECK_EQ(vms_pt_map(&r.pt, 0x401000, 0x8A3000, VMS_PG_4K, RWUS, NULL), VMS_OK);
    CHECK_EQ(vms_ram_write8(r.tp.ram, 0x50345, 0x42), VMS_OK);

    REQUIRE_VOID(walk(&r, 0x00012345, RD));
    CHECK_EQ(vms_xlate_pa(&r.x, 0x00012345), 0x00050345);
    CHECK_EQ(r.x.size, VMS_PG_4K);
    uint8_t b = 0;
    CHECK_EQ(vms_bus_read(r.tp.bus, vms_xlate_pa(&r.x, 0x12345), &b, 1), VMS_OK);
    CHECK_EQ(b, 0x42);
    /* A cold 4-level walk reads exactly one entry per level. */
    CHECK_EQ(r.st.walks, 1);
    CHECK_EQ(r.st.mem_refs, 4);
    for (unsigned l = 1; l <= 4; l++)
        CHECK_EQ(r.st.refs_by_level[l], 1);
    CHECK_EQ(r.tr.nsteps, 4);
    CHECK_EQ(r.tr.pwc_level, 0);
    CHECK_EQ(r.tr.step[0].level, 4);
    CHECK_EQ(r.tr.step[0].table_pa, r.pt.root);
    CHECK_EQ(r.tr.step[3].level, 1);
    CHECK_EQ(r.tr.step[3].index, 0x12);
    CHECK_EQ(r.tr.step[3].pte, 0x50000 | RWUS | VMS_PTE_P); /* as read, before A */

    REQUIRE_VOID(walk(&r, 0x00401234, WR));
    CHECK_EQ(vms_xlate_pa(&r.x, 0x00401234), 0x8A3234);
    CHECK_EQ(r.tr.step[2].index, 2); /* PD index of 0x401234 */
    CHECK_EQ(r.tr.step[3].index, 1);
    CHECK_EQ(r.st.mem_refs, 8);
    CHECK_EQ(r.st.faults, 0);
    rig_fini(&r);
}

static void test_levels_and_sizes(void)
{
    rig r;
    REQUIRE_VOID(rig_init(&r, 5));
    const uint64_t va5 = UINT64_C(0x00AB000012345000); /* needs 57-bit addressing */
    CHECK_EQ(vms_pt_map(&r.pt, va5, 0x777000, VMS_PG_4K, RWUS, NULL), VMS_OK);
    REQUIRE_VOID(walk(&r, va5 + 0x10, RD));
    CHECK_EQ(vms_xlate_pa(&r.x, va5 + 0x10), 0x777010);
    CHECK_EQ(r.st.mem_refs, 5);
    CHECK_EQ(r.st.refs_by_level[5], 1);
    CHECK_EQ(r.tr.nsteps, 5);
    /* The same address is non-canonical under 4-level paging: #GP, nothing read. */
    r.regs.cr4 &= ~VMS_CR4_LA57;
    CHECK(!walk(&r, va5, RD));
    CHECK_EQ(r.f.kind, VMS_FAULT_GP);
    CHECK_EQ(r.st.mem_refs, 5);
    CHECK_EQ(r.tr.nsteps, 0);
    rig_fini(&r);

    REQUIRE_VOID(rig_init(&r, 4));
    CHECK_EQ(vms_pt_map(&r.pt, 0x40000000, 0x200000, VMS_PG_2M,
                        RWUS | VMS_PTE_PAT_LARGE | VMS_PTE_G | VMS_PTE_PCD, NULL),
             VMS_OK);
    CHECK_EQ(
        vms_pt_map(&r.pt, 0x80000000, UINT64_C(0x3C0000000), VMS_PG_1G, RWUS | VMS_PTE_PWT, NULL),
        VMS_OK);
    REQUIRE_VOID(walk(&r, 0x401ABCDE, RD));
    CHECK_EQ(r.st.mem_refs, 3);
    CHECK_EQ(r.x.size, VMS_PG_2M);
    CHECK_EQ(r.x.page_pa, 0x200000); /* PAT (bit 12) is not an address bit here */
    CHECK_EQ(vms_xlate_pa(&r.x, 0x401ABCDE), 0x3ABCDE);
    CHECK_EQ(r.x.global, 1);
    CHECK_EQ(r.x.pcd, 1);
    CHECK_EQ(r.x.pwt, 0);
    REQUIRE_VOID(walk(&r, 0xBFFFFFFF, EX));
    CHECK_EQ(r.st.mem_refs, 5);
    CHECK_EQ(r.x.size, VMS_PG_1G);
    CHECK_EQ(vms_xlate_pa(&r.x, 0xBFFFFFFF), UINT64_C(0x3FFFFFFFF));
    CHECK_EQ(r.x.pwt, 1);
    CHECK_EQ(r.x.global, 0);
    CHECK_EQ(r.st.refs_by_level[1], 0);
    rig_fini(&r);
}

static void test_accessed_dirty(void)
{
    rig r;
    REQUIRE_VOID(rig_init(&r, 4));
    CHECK_EQ(vms_pt_map(&r.pt, 0x12000, 0x50000, VMS_PG_4K, RWUS, NULL), VMS_OK);
    CHECK_EQ(vms_pt_map(&r.pt, 0x13000, 0x51000, VMS_PG_4K, VMS_PTE_US, NULL), VMS_OK);
    uint64_t e4 = ep(&r, 0x12000, 4), e3 = ep(&r, 0x12000, 3);
    uint64_t e2 = ep(&r, 0x12000, 2), e1 = ep(&r, 0x12000, 1), e1b = ep(&r, 0x13000, 1);

    /* A fault sets nothing (documented choice: A/D only on success). */
    r.regs.user = true;
    CHECK_EQ(pf(&r, 0x13000, WR), VMS_PFERR_P | VMS_PFERR_W | VMS_PFERR_U);
    CHECK_EQ(raw(&r, e4) & VMS_PTE_A, 0);
    CHECK_EQ(raw(&r, e1b) & (VMS_PTE_A | VMS_PTE_D), 0);
    CHECK_EQ(r.st.ad_writes, 0);

    REQUIRE_VOID(walk(&r, 0x12000, RD));
    CHECK_EQ(r.st.ad_writes, 4);
    CHECK(raw(&r, e4) & raw(&r, e3) & raw(&r, e2) & raw(&r, e1) & VMS_PTE_A);
    CHECK_EQ(raw(&r, e1) & VMS_PTE_D, 0);
    CHECK_EQ(r.x.dirty, 0);
    REQUIRE_VOID(walk(&r, 0x12000, RD)); /* nothing left to set */
    CHECK_EQ(r.st.ad_writes, 4);
    REQUIRE_VOID(walk(&r, 0x12000, WR));
    CHECK_EQ(r.st.ad_writes, 5);
    CHECK_EQ(raw(&r, e1), 0x50000 | RWUS | VMS_PTE_P | VMS_PTE_A | VMS_PTE_D);
    CHECK_EQ(r.x.dirty, 1);
    CHECK_EQ(raw(&r, e2) & VMS_PTE_D, 0); /* D only in the leaf */
    /* A sibling reuses the upper entries: only its own PTE gets A. */
    REQUIRE_VOID(walk(&r, 0x13000, RD));
    CHECK_EQ(r.st.ad_writes, 6);
    CHECK_EQ(raw(&r, e1b), 0x51000 | VMS_PTE_US | VMS_PTE_P | VMS_PTE_A);
    rig_fini(&r);
}

static void test_not_present(void)
{
    rig r;
    REQUIRE_VOID(rig_init(&r, 5));
    CHECK_EQ(vms_pt_map(&r.pt, 0x12000, 0x50000, VMS_PG_4K, RWUS, NULL), VMS_OK);
    const struct {
        uint64_t va;
        unsigned level;
    } cases[] = {
        {UINT64_C(1) << 48, 5}, {UINT64_C(1) << 39, 4}, {0x40000000, 3},
        {0x200000, 2},          {0x13000, 1},
    };
    r.regs.user = true;
    for (unsigned i = 0; i < 5; i++) {
        uint64_t refs = r.st.mem_refs;
        CHECK_EQ(pf(&r, cases[i].va, WR), VMS_PFERR_W | VMS_PFERR_U);
        CHECK_EQ(r.f.level, cases[i].level);
        CHECK_EQ(r.st.mem_refs - refs, 6 - cases[i].level);
        CHECK_EQ(r.tr.nsteps, 6 - cases[i].level);
    }
    r.regs.user = false;
    CHECK_EQ(pf(&r, 0x13000, RD), 0);
    CHECK_EQ(pf(&r, 0x13000, EX), VMS_PFERR_I); /* NXE is on */
    r.regs.efer &= ~VMS_EFER_NXE;
    CHECK_EQ(pf(&r, 0x13000, EX), 0); /* neither NXE nor SMEP: no I */
    r.regs.cr4 |= VMS_CR4_SMEP;
    CHECK_EQ(pf(&r, 0x13000, EX), VMS_PFERR_I);
    CHECK_EQ(r.st.faults, 9);
    rig_fini(&r);
}

/* Every rights case of §4.6 and §4.6.2, each with its exact error code. */
static void test_rights(void)
{
    rig r;
    REQUIRE_VOID(rig_init(&r, 4));
    const uint64_t SUP_RW = 0x1000, SUP_RO = 0x2000, USR_RW = 0x3000, USR_RO = 0x4000,
                   USR_XD = 0x5000, SUP_XD = 0x6000, KEY = 0x7000, KEY_RO = 0x8000;
    const uint64_t pk3 = UINT64_C(3) << VMS_PTE_PKEY_SHIFT;
    CHECK_EQ(vms_pt_map(&r.pt, SUP_RW, 0x100000, VMS_PG_4K, VMS_PTE_RW, NULL), VMS_OK);
    CHECK_EQ(vms_pt_map(&r.pt, SUP_RO, 0x101000, VMS_PG_4K, 0, NULL), VMS_OK);
    CHECK_EQ(vms_pt_map(&r.pt, USR_RW, 0x102000, VMS_PG_4K, RWUS, NULL), VMS_OK);
    CHECK_EQ(vms_pt_map(&r.pt, USR_RO, 0x103000, VMS_PG_4K, VMS_PTE_US, NULL), VMS_OK);
    CHECK_EQ(vms_pt_map(&r.pt, USR_XD, 0x104000, VMS_PG_4K, RWUS | VMS_PTE_XD, NULL), VMS_OK);
    CHECK_EQ(vms_pt_map(&r.pt, SUP_XD, 0x105000, VMS_PG_4K, VMS_PTE_RW | VMS_PTE_XD, NULL), VMS_OK);
    CHECK_EQ(vms_pt_map(&r.pt, KEY, 0x106000, VMS_PG_4K, RWUS | pk3, NULL), VMS_OK);
    CHECK_EQ(vms_pt_map(&r.pt, KEY_RO, 0x107000, VMS_PG_4K, VMS_PTE_US | pk3, NULL), VMS_OK);
    const uint32_t P = VMS_PFERR_P, W = VMS_PFERR_W, U = VMS_PFERR_U, I = VMS_PFERR_I,
                   PK = VMS_PFERR_PK, RS = VMS_PFERR_RSVD;

    /* User mode. */
    r.regs.user = true;
    CHECK_EQ(pf(&r, SUP_RW, RD), P | U);
    CHECK_EQ(pf(&r, SUP_RW, WR), P | W | U);
    CHECK_EQ(pf(&r, SUP_RW, EX), P | U | I);
    CHECK_EQ(pf(&r, USR_RO, WR), P | W | U);
    CHECK(walk(&r, USR_RO, RD));
    CHECK(walk(&r, USR_RW, WR));
    CHECK(walk(&r, USR_RW, EX));
    CHECK_EQ(pf(&r, USR_XD, EX), P | U | I);
    CHECK(walk(&r, USR_XD, RD));
    r.regs.cr0 &= ~VMS_CR0_WP; /* WP never relaxes user writes */
    CHECK_EQ(pf(&r, USR_RO, WR), P | W | U);
    r.regs.cr0 |= VMS_CR0_WP;

    /* Supervisor: writes to read-only pages fault only with WP. */
    r.regs.user = false;
    CHECK_EQ(pf(&r, SUP_RO, WR), P | W);
    CHECK(walk(&r, SUP_RO, RD));
    r.regs.cr0 &= ~VMS_CR0_WP;
    CHECK(walk(&r, SUP_RO, WR));
    CHECK(walk(&r, USR_RO, WR));
    r.regs.cr0 |= VMS_CR0_WP;
    CHECK_EQ(pf(&r, USR_RO, WR), P | W);

    /* SMEP: no supervisor fetch from a user page (even a non-XD one). */
    CHECK(walk(&r, USR_RW, EX));
    r.regs.cr4 |= VMS_CR4_SMEP;
    CHECK_EQ(pf(&r, USR_RW, EX), P | I);
    CHECK(walk(&r, SUP_RW, EX));
    r.regs.efer &= ~VMS_EFER_NXE; /* I still reported: SMEP alone suffices */
    CHECK_EQ(pf(&r, USR_RW, EX), P | I);
    r.regs.efer |= VMS_EFER_NXE;
    r.regs.cr4 &= ~VMS_CR4_SMEP;

    /* SMAP: no supervisor data access to user pages unless RFLAGS.AC. */
    r.regs.cr4 |= VMS_CR4_SMAP;
    CHECK_EQ(pf(&r, USR_RW, RD), P);
    CHECK_EQ(pf(&r, USR_RW, WR), P | W);
    CHECK(walk(&r, USR_RW, EX)); /* fetches are SMEP's business */
    CHECK(walk(&r, SUP_RW, WR));
    r.regs.ac = true;
    CHECK(walk(&r, USR_RW, RD));
    CHECK(walk(&r, USR_RW, WR));
    CHECK_EQ(pf(&r, USR_RO, WR), P | W); /* AC lifts SMAP, not WP */
    r.regs.ac = false;
    r.regs.user = true; /* SMAP never affects user mode */
    CHECK(walk(&r, USR_RW, WR));
    r.regs.user = false;
    r.regs.cr4 &= ~VMS_CR4_SMAP;

    /* NX: with NXE an XD page cannot be fetched; without NXE, XD is a reserved bit. */
    CHECK_EQ(pf(&r, SUP_XD, EX), P | I);
    CHECK(walk(&r, SUP_XD, WR));
    CHECK_EQ(r.x.xd, 1);
    r.regs.efer &= ~VMS_EFER_NXE;
    CHECK_EQ(pf(&r, SUP_XD, RD), P | RS);
    CHECK_EQ(r.f.level, 1);
    CHECK_EQ(pf(&r, SUP_XD, EX), P | RS); /* no I: neither NXE nor SMEP */
    r.regs.user = true;
    CHECK_EQ(pf(&r, USR_XD, WR), P | RS | W | U);
    CHECK(walk(&r, USR_RW, EX));
    CHECK_EQ(r.x.xd, 0);
    r.regs.user = false;
    r.regs.efer |= VMS_EFER_NXE;

    /* XD in an upper level makes the whole region non-executable (OR over levels). */
    uint64_t pde = ep(&r, SUP_RW, 2);
    uint64_t old_pde = raw(&r, pde);
    CHECK_EQ(vms_pt_write(&r.pt, pde, old_pde | VMS_PTE_XD), VMS_OK);
    CHECK_EQ(pf(&r, SUP_RW, EX), P | I);
    CHECK_EQ(vms_pt_write(&r.pt, pde, old_pde & ~VMS_PTE_RW), VMS_OK); /* RW: AND */
    CHECK_EQ(pf(&r, USR_RW, WR), P | W);
    CHECK(walk(&r, USR_RW, RD));
    CHECK_EQ(r.x.rw, 0);
    CHECK_EQ(vms_pt_write(&r.pt, pde, old_pde & ~VMS_PTE_US), VMS_OK); /* US: AND */
    r.regs.user = true;
    CHECK_EQ(pf(&r, USR_RW, RD), P | U);
    r.regs.user = false;
    CHECK(walk(&r, USR_RW, RD));
    CHECK_EQ(r.x.us, 0);
    CHECK_EQ(vms_pt_write(&r.pt, pde, old_pde), VMS_OK);

    /* Protection keys (key 3: AD = bit 6, WD = bit 7 of PKRU). */
    const uint32_t AD3 = 1u << 6, WD3 = 1u << 7;
    r.regs.pkru = AD3 | WD3;
    r.regs.user = true;
    CHECK(walk(&r, KEY, WR)); /* PKE off: keys ignored */
    CHECK_EQ(r.x.pkey, 0);
    r.regs.cr4 |= VMS_CR4_PKE;
    CHECK_EQ(pf(&r, KEY, RD), P | U | PK);
    CHECK_EQ(pf(&r, KEY, WR), P | W | U | PK);
    CHECK(walk(&r, KEY, EX)); /* fetches are not checked */
    CHECK_EQ(r.x.pkey, 3);
    r.regs.pkru = WD3;
    CHECK(walk(&r, KEY, RD));
    CHECK_EQ(pf(&r, KEY, WR), P | W | U | PK);
    CHECK_EQ(pf(&r, KEY_RO, WR), P | W | U | PK); /* both rights and key: PK still set */
    r.regs.pkru = ~(AD3 | WD3);                   /* every other key denied */
    CHECK(walk(&r, KEY, WR));
    r.regs.pkru = WD3;
    r.regs.user = false;
    CHECK_EQ(pf(&r, KEY, WR), P | W | PK); /* supervisor, WP = 1 */
    r.regs.cr0 &= ~VMS_CR0_WP;
    CHECK(walk(&r, KEY, WR)); /* supervisor, WP = 0: WD ignored */
    r.regs.cr0 |= VMS_CR0_WP;
    r.regs.pkru = AD3;
    CHECK_EQ(pf(&r, KEY, RD), P | PK); /* AD applies to supervisor accesses too */
    r.regs.pkru = UINT32_MAX;
    CHECK(walk(&r, SUP_RW, WR)); /* supervisor pages have no key check */
    r.regs.cr4 &= ~VMS_CR4_PKE;
    r.regs.pkru = 0;
    rig_fini(&r);
}

/* Reserved bits (§4.5.4): P=1, RSVD=1, at the level of the offending entry. */
static void test_reserved(void)
{
    rig r;
    REQUIRE_VOID(rig_init(&r, 4));
    const uint32_t P = VMS_PFERR_P, RS = VMS_PFERR_RSVD, W = VMS_PFERR_W, U = VMS_PFERR_U;
    CHECK_EQ(vms_pt_map(&r.pt, 0x12000, 0x50000, VMS_PG_4K, RWUS, NULL), VMS_OK);
    CHECK_EQ(vms_pt_map(&r.pt, 0x400000, 0x600000, VMS_PG_2M, RWUS, NULL), VMS_OK);
    CHECK_EQ(vms_pt_map(&r.pt, 0x80000000, 0xC0000000, VMS_PG_1G, RWUS, NULL), VMS_OK);
    uint64_t pte = ep(&r, 0x12000, 1), pde2m = ep(&r, 0x400000, 2);
    uint64_t pdpte1g = ep(&r, 0x80000000, 3), pml4e = ep(&r, 0x12000, 4);
    uint64_t v = raw(&r, pte);

    /* Bits 51:M of a leaf: with M = 46 bit 46 is reserved, bit 45 is an address bit. */
    CHECK_EQ(vms_pt_write(&r.pt, pte, v | (UINT64_C(1) << 46)), VMS_OK);
    CHECK_EQ(pf(&r, 0x12000, RD), P | RS);
    CHECK_EQ(r.f.level, 1);
    CHECK_EQ(vms_pt_write(&r.pt, pte, v | (UINT64_C(1) << 51)), VMS_OK);
    r.regs.user = true;
    CHECK_EQ(pf(&r, 0x12000, WR), P | RS | W | U);
    r.regs.user = false;
    CHECK_EQ(vms_pt_write(&r.pt, pte, v | (UINT64_C(1) << 45)), VMS_OK);
    REQUIRE_VOID(walk(&r, 0x12000, RD));
    CHECK_EQ(r.x.page_pa, (UINT64_C(1) << 45) | 0x50000);
    r.regs.maxphyaddr = 40; /* a smaller machine: now bit 45 is reserved too */
    CHECK_EQ(pf(&r, 0x12000, RD), P | RS);
    r.regs.maxphyaddr = 46;
    CHECK_EQ(vms_pt_write(&r.pt, pte, v), VMS_OK);

    /* In a table-pointing entry: the walk stops there (A set nowhere). */
    uint64_t pml4v = raw(&r, pml4e);
    CHECK_EQ(vms_pt_write(&r.pt, pml4e, pml4v | (UINT64_C(1) << 50)), VMS_OK);
    uint64_t refs = r.st.mem_refs;
    CHECK_EQ(pf(&r, 0x12000, RD), P | RS);
    CHECK_EQ(r.f.level, 4);
    CHECK_EQ(r.st.mem_refs - refs, 1);
    /* PS at PML4 is reserved. */
    CHECK_EQ(vms_pt_write(&r.pt, pml4e, pml4v | VMS_PTE_PS), VMS_OK);
    CHECK_EQ(pf(&r, 0x12000, RD), P | RS);
    CHECK_EQ(r.f.level, 4);
    CHECK_EQ(vms_pt_write(&r.pt, pml4e, pml4v), VMS_OK);

    /* 2M leaf: bits 20:13 reserved, bit 12 (PAT) not. */
    uint64_t d = raw(&r, pde2m);
    CHECK_EQ(vms_pt_write(&r.pt, pde2m, d | (UINT64_C(1) << 13)), VMS_OK);
    CHECK_EQ(pf(&r, 0x400000, RD), P | RS);
    CHECK_EQ(r.f.level, 2);
    CHECK_EQ(vms_pt_write(&r.pt, pde2m, d | (UINT64_C(1) << 20)), VMS_OK);
    CHECK_EQ(pf(&r, 0x400000, RD), P | RS);
    CHECK_EQ(vms_pt_write(&r.pt, pde2m, d | (UINT64_C(1) << 21)), VMS_OK); /* address bit */
    CHECK(walk(&r, 0x400000, RD));
    CHECK_EQ(vms_pt_write(&r.pt, pde2m, d | VMS_PTE_PAT_LARGE), VMS_OK);
    REQUIRE_VOID(walk(&r, 0x400000, RD));
    CHECK_EQ(r.x.page_pa, 0x600000);
    /* 1G leaf: bits 29:13 reserved. */
    uint64_t g = raw(&r, pdpte1g);
    CHECK_EQ(vms_pt_write(&r.pt, pdpte1g, g | (UINT64_C(1) << 29)), VMS_OK);
    CHECK_EQ(pf(&r, 0x80000000, EX), P | RS | VMS_PFERR_I);
    CHECK_EQ(r.f.level, 3);
    CHECK_EQ(vms_pt_write(&r.pt, pdpte1g, g | (UINT64_C(1) << 21)), VMS_OK);
    CHECK_EQ(pf(&r, 0x80000000, RD), P | RS);
    CHECK_EQ(vms_pt_write(&r.pt, pdpte1g, g), VMS_OK);
    CHECK(walk(&r, 0x80000000, RD));
    /* A not-present entry's other bits are ignored (no RSVD). */
    CHECK_EQ(vms_pt_write(&r.pt, ep(&r, 0x13000, 1), UINT64_C(0xFFF0000000000000)), VMS_OK);
    CHECK_EQ(pf(&r, 0x13000, RD), 0);
    rig_fini(&r);

    /* PS at PML5. */
    REQUIRE_VOID(rig_init(&r, 5));
    CHECK_EQ(vms_pt_map(&r.pt, 0x12000, 0x50000, VMS_PG_4K, RWUS, NULL), VMS_OK);
    CHECK_EQ(vms_pt_write(&r.pt, r.pt.root, raw(&r, r.pt.root) | VMS_PTE_PS), VMS_OK);
    CHECK_EQ(pf(&r, 0x12000, RD), P | RS);
    CHECK_EQ(r.f.level, 5);
    CHECK_EQ(vms_pt_write(&r.pt, r.pt.root, raw(&r, r.pt.root) & ~VMS_PTE_PS), VMS_OK);
    rig_fini(&r);
}

/* A table address that decodes to nothing: VMS_FAULT_BUS with the entry's address. */
static void test_bus_fault(void)
{
    rig r;
    REQUIRE_VOID(rig_init(&r, 4));
    CHECK_EQ(vms_pt_map(&r.pt, 0x12000, 0x50000, VMS_PG_4K, RWUS, NULL), VMS_OK);
    uint64_t pde = ep(&r, 0x12000, 2), d = raw(&r, pde);
    const uint64_t hole = UINT64_C(16) << 30; /* above the 4 GiB of RAM */
    CHECK_EQ(vms_pt_write(&r.pt, pde, hole | VMS_PTE_P | RWUS), VMS_OK);
    CHECK(!walk(&r, 0x12345, RD));
    CHECK_EQ(r.f.kind, VMS_FAULT_BUS);
    CHECK_EQ(r.f.pa, hole + 8 * 0x12);
    CHECK_EQ(r.f.level, 1);
    CHECK_EQ(r.st.faults, 1);
    CHECK_EQ(r.st.mem_refs, 3);
    CHECK_EQ(raw(&r, pde) & VMS_PTE_A, 0);
    CHECK_EQ(vms_pt_write(&r.pt, pde, d), VMS_OK);
    /* CR3 itself pointing nowhere. */
    r.regs.cr3 = hole;
    CHECK(!walk(&r, 0x12345, RD));
    CHECK_EQ(r.f.kind, VMS_FAULT_BUS);
    CHECK_EQ(r.f.pa, hole);
    CHECK_EQ(r.f.level, 4);
    rig_fini(&r);
}

/* ---------------- differential test ---------------- */

/* The naive model: a list of leaves and a list of upper-entry restrictions. */
typedef struct ref_leaf {
    uint64_t va, pa, flags; /* flags: RW/US/XD/G/PCD/PWT/pkey and maybe a poisoned bit */
    vms_pgsize size;
    bool dirty; /* a write succeeded since it was mapped or protected */
} ref_leaf;

typedef struct ref_restrict {
    unsigned level; /* of the table-pointing entry */
    uint64_t base;  /* va of the region that entry covers */
    uint64_t clear; /* RW and/or US cleared in it */
    bool xd;        /* XD set in it */
} ref_restrict;

typedef struct model {
    ref_leaf leaf[600];
    int nleaf;
    ref_restrict rs[64];
    int nrs;
} model;

#define POISON (UINT64_C(1) << 50) /* reserved with MAXPHYADDR 46 */

/* Bytes a level-`level` entry covers (4K at PT … 256T at PML5). */
static uint64_t region_bytes(unsigned level)
{
    return UINT64_C(1) << (12 + 9 * (level - 1));
}

/* Do [a, a+alen) and [b, b+blen) overlap? (Inclusive ends: a region may end at 2^64.) */
static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a <= b + (blen - 1) && b <= a + (alen - 1);
}

/* Index of the leaf covering [va, va+len), or -1. */
static int model_find(const model *m, uint64_t va, uint64_t len)
{
    for (int i = 0; i < m->nleaf; i++)
        if (overlaps(va, len, m->leaf[i].va, vms_pgsize_bytes(m->leaf[i].size)))
            return i;
    return -1;
}

/* Is the level-`level` entry for va present? With tables freed when empty, exactly when
 * some leaf lies in the region it covers (page-table pages exist only for mappings). */
static bool model_entry_present(const model *m, uint64_t va, unsigned level)
{
    uint64_t bytes = region_bytes(level);
    return model_find(m, va & ~(bytes - 1), bytes) >= 0;
}

/* Drop restrictions whose table no longer exists (no smaller leaf in their region). */
static void model_prune(model *m)
{
    for (int i = 0; i < m->nrs;) {
        ref_restrict *r = &m->rs[i];
        /* Any leaf in the region is below it: a leaf as large would sit in the entry. */
        if (model_find(m, r->base, region_bytes(r->level)) >= 0)
            i++;
        else
            m->rs[i] = m->rs[--m->nrs];
    }
}

typedef struct expect {
    bool ok;
    uint32_t ec;
    unsigned level; /* fault level or leaf level */
    vms_xlate x;
} expect;

/* The rights rules, stated the plain way (SDM §4.6 tables, in words). */
static uint32_t model_rights(const vms_regs *g, bool rw, bool us, bool xd, unsigned key,
                             vms_access_kind k)
{
    bool user = g->user, wp = g->cr0 & VMS_CR0_WP, nxe = g->efer & VMS_EFER_NXE;
    bool smep = g->cr4 & VMS_CR4_SMEP, smap = g->cr4 & VMS_CR4_SMAP;
    bool pke = g->cr4 & VMS_CR4_PKE;
    bool fetch = k == EX, write = k == WR;
    bool denied = false;
    if (user && !us)
        denied = true; /* user code touching kernel memory */
    if (user && write && !rw)
        denied = true;
    if (!user && write && !rw && wp)
        denied = true;
    if (!user && us && fetch && smep)
        denied = true;
    if (!user && us && !fetch && smap && !g->ac)
        denied = true;
    if (fetch && xd && nxe)
        denied = true;
    bool ad = (g->pkru >> (2 * key)) & 1, wd = (g->pkru >> (2 * key + 1)) & 1;
    bool pk = pke && us && !fetch && (ad || (write && wd && (user || wp)));
    if (!denied && !pk)
        return 0;
    uint32_t ec = VMS_PFERR_P;
    ec |= write ? VMS_PFERR_W : 0;
    ec |= user ? VMS_PFERR_U : 0;
    ec |= fetch && (nxe || smep) ? VMS_PFERR_I : 0;
    ec |= pk ? VMS_PFERR_PK : 0;
    return ec;
}

/* What a walk of va must do according to the model. */
static expect model_walk(const model *m, const vms_regs *g, unsigned levels, uint64_t va,
                         vms_access_kind k)
{
    expect e = {0};
    bool nxe = g->efer & VMS_EFER_NXE;
    uint32_t acc = (k == WR ? VMS_PFERR_W : 0) | (g->user ? VMS_PFERR_U : 0) |
                   (k == EX && (nxe || (g->cr4 & VMS_CR4_SMEP)) ? VMS_PFERR_I : 0);
    int li = model_find(m, va, 1);
    unsigned leaf_level = li >= 0 ? vms_pgsize_level(m->leaf[li].size) : 0;
    bool rw = true, us = true, xd = false;
    for (unsigned l = levels; l >= 1; l--) {
        if (l > leaf_level && !model_entry_present(m, va, l)) {
            e.ec = acc;
            e.level = l;
            return e;
        }
        bool entry_xd = false, leaf_poison = false;
        uint64_t clear = 0;
        if (l == leaf_level) {
            const ref_leaf *f = &m->leaf[li];
            entry_xd = f->flags & VMS_PTE_XD;
            leaf_poison = f->flags & POISON;
            clear =
                (f->flags & VMS_PTE_RW ? 0 : VMS_PTE_RW) | (f->flags & VMS_PTE_US ? 0 : VMS_PTE_US);
        } else {
            for (int i = 0; i < m->nrs; i++) {
                const ref_restrict *r = &m->rs[i];
                if (r->level == l && (va & ~(region_bytes(l) - 1)) == r->base) {
                    entry_xd |= r->xd;
                    clear |= r->clear;
                }
            }
        }
        if (leaf_poison || (entry_xd && !nxe)) {
            e.ec = VMS_PFERR_P | VMS_PFERR_RSVD | acc;
            e.level = l;
            return e;
        }
        rw = rw && !(clear & VMS_PTE_RW);
        us = us && !(clear & VMS_PTE_US);
        xd = xd || (entry_xd && nxe);
        if (l == leaf_level)
            break;
    }
    const ref_leaf *f = &m->leaf[li];
    unsigned key = (unsigned)((f->flags >> VMS_PTE_PKEY_SHIFT) & 15);
    e.level = leaf_level;
    e.ec = model_rights(g, rw, us, xd, key, k);
    e.ok = e.ec == 0;
    e.x.page_pa = f->pa;
    e.x.size = f->size;
    e.x.rw = rw;
    e.x.us = us;
    e.x.xd = xd;
    e.x.global = (f->flags & VMS_PTE_G) != 0;
    e.x.pkey = (g->cr4 & VMS_CR4_PKE) ? (uint8_t)key : 0;
    e.x.pcd = (f->flags & VMS_PTE_PCD) != 0;
    e.x.pwt = (f->flags & VMS_PTE_PWT) != 0;
    e.x.dirty = f->dirty || k == WR;
    return e;
}

static uint64_t random_flags(vms_rng *r)
{
    static const uint64_t bits[] = {VMS_PTE_RW, VMS_PTE_US,  VMS_PTE_XD,
                                    VMS_PTE_G,  VMS_PTE_PCD, VMS_PTE_PWT};
    uint64_t f = 0;
    for (unsigned i = 0; i < sizeof bits / sizeof bits[0]; i++)
        if (vms_rng_below(r, 3))
            f |= bits[i];
    if (vms_rng_below(r, 2))
        f |= vms_rng_below(r, 16) << VMS_PTE_PKEY_SHIFT;
    return f;
}

static void random_regs(vms_rng *r, vms_regs *g)
{
    uint64_t c = vms_rng_next(r);
    g->cr0 = VMS_CR0_PG | ((c & 1) ? VMS_CR0_WP : 0);
    g->cr4 = (g->cr4 & VMS_CR4_LA57) | VMS_CR4_PAE | ((c & 2) ? VMS_CR4_SMEP : 0) |
             ((c & 4) ? VMS_CR4_SMAP : 0) | ((c & 8) ? VMS_CR4_PKE : 0);
    g->efer = VMS_EFER_LME | VMS_EFER_LMA | ((c & 0x30) ? VMS_EFER_NXE : 0);
    g->user = (c >> 6) & 1;
    g->ac = ((c >> 7) & 3) == 0;
    /* PKRU: mostly sparse, so that some keys allow and some deny. */
    g->pkru = (uint32_t)(vms_rng_next(r) & vms_rng_next(r));
}

static bool xlate_eq(const vms_xlate *a, const vms_xlate *b)
{
    return a->page_pa == b->page_pa && a->size == b->size && a->rw == b->rw && a->us == b->us &&
           a->xd == b->xd && a->global == b->global && a->dirty == b->dirty && a->pkey == b->pkey &&
           a->pcd == b->pcd && a->pwt == b->pwt;
}

/* One probe: walk va and compare everything with the model; returns mismatches. */
static unsigned probe(rig *rg, model *m, uint64_t va, vms_access_kind k)
{
    unsigned levels = vms_regs_levels(&rg->regs);
    expect e = model_walk(m, &rg->regs, levels, va, k);
    uint64_t refs = rg->st.mem_refs;
    bool ok = walk(rg, va, k);
    unsigned bad = 0;
    bad += ok != e.ok;
    if (ok && e.ok) {
        bad += !xlate_eq(&rg->x, &e.x);
        bad += rg->st.mem_refs - refs != levels - e.level + 1;
        uint64_t pte;
        bad += !vms_pt_lookup(&rg->pt, va, &pte, NULL, NULL);
        bad += !(pte & VMS_PTE_A) || (k == WR && !(pte & VMS_PTE_D));
    } else if (!ok && !e.ok) {
        bad += rg->f.kind != VMS_FAULT_PF || rg->f.error_code != e.ec || rg->f.level != e.level ||
               rg->f.va != va;
        bad += rg->st.mem_refs - refs != levels - e.level + 1;
    }
    int li = model_find(m, va, 1);
    if (ok && k == WR)
        m->leaf[li].dirty = true;
    /* The kernel's software walk agrees on what is mapped. */
    uint64_t pte;
    vms_pgsize sz;
    bool found = vms_pt_lookup(&rg->pt, va, &pte, NULL, &sz);
    bad += found != (li >= 0);
    if (found && li >= 0) {
        const ref_leaf *f = &m->leaf[li];
        uint64_t want = f->pa | f->flags | VMS_PTE_P | (f->size ? VMS_PTE_PS : 0);
        bad += (pte & ~(VMS_PTE_A | VMS_PTE_D)) != want || sz != f->size;
        if ((pte & ~(VMS_PTE_A | VMS_PTE_D)) != want)
            fprintf(stderr, "diff: pte 0x%" PRIx64 ", model 0x%" PRIx64 "\n", pte, want);
    }
    if (bad)
        fprintf(stderr,
                "diff: va 0x%" PRIx64 " kind %d user %d: walk ok %d ec 0x%x lvl %u, model ok %d "
                "ec 0x%x lvl %u\n",
                va, (int)k, (int)rg->regs.user, (int)ok, rg->f.error_code, rg->f.level, (int)e.ok,
                e.ec, e.level);
    return bad;
}

/* A random va in the window: [0, 4 GiB) in the lower half or its mirror in the upper. */
static uint64_t random_va(vms_rng *r, uint64_t align)
{
    uint64_t va = vms_rng_below(r, UINT64_C(4) << 30) & ~(align - 1);
    return vms_rng_below(r, 4) ? va : va | UINT64_C(0xFFFF800000000000);
}

static unsigned diff_op(rig *rg, model *m, vms_rng *r)
{
    unsigned what = (unsigned)vms_rng_below(r, 20), bad = 0;
    if (what < 10 && m->nleaf < 600) { /* map */
        vms_pgsize size = vms_rng_below(r, 8) ? VMS_PG_4K : (vms_pgsize)(1 + vms_rng_below(r, 2));
        uint64_t bytes = vms_pgsize_bytes(size);
        uint64_t va = random_va(r, bytes);
        uint64_t pa = vms_rng_below(r, UINT64_C(1) << 40) & ~(bytes - 1);
        uint64_t flags = random_flags(r);
        vms_status st = vms_pt_map(&rg->pt, va, pa, size, flags, NULL);
        bool clash = model_find(m, va, bytes) >= 0;
        bad += st != (clash ? VMS_ERR_EXISTS : VMS_OK);
        if (st == VMS_OK)
            m->leaf[m->nleaf++] = (ref_leaf){va, pa, flags, size, false};
    } else if (what < 14 && m->nleaf) { /* unmap a mapped page */
        int i = (int)vms_rng_below(r, (uint64_t)m->nleaf);
        bad += vms_pt_unmap(&rg->pt, m->leaf[i].va, true, NULL) != VMS_OK;
        m->leaf[i] = m->leaf[--m->nleaf];
        model_prune(m);
    } else if (what < 15) { /* unmap anywhere */
        uint64_t va = random_va(r, 4096);
        int i = model_find(m, va, 1);
        bad += vms_pt_unmap(&rg->pt, va, true, NULL) != (i >= 0 ? VMS_OK : VMS_ERR_NOTFOUND);
        if (i >= 0) {
            m->leaf[i] = m->leaf[--m->nleaf];
            model_prune(m);
        }
    } else if (what < 18 && m->nleaf) { /* protect: new rights, key, maybe poison */
        int i = (int)vms_rng_below(r, (uint64_t)m->nleaf);
        uint64_t keep = (VMS_PTE_ADDR_MASK & ~POISON) | VMS_PTE_P | VMS_PTE_PS;
        uint64_t nf = random_flags(r) | (vms_rng_below(r, 30) ? 0 : POISON);
        ref_leaf *f = &m->leaf[i];
        bad += vms_pt_protect(&rg->pt, f->va, nf, ~keep, NULL) != VMS_OK;
        f->flags = nf;
        f->dirty = false;  /* ~keep clears A and D too */
    } else if (m->nleaf) { /* restrict an upper-level entry above a mapped page */
        int i = (int)vms_rng_below(r, (uint64_t)m->nleaf);
        ref_leaf *f = &m->leaf[i];
        unsigned levels = rg->pt.levels, leaf = vms_pgsize_level(f->size);
        if (leaf < levels && m->nrs < 64) {
            unsigned l = leaf + 1 + (unsigned)vms_rng_below(r, levels - leaf);
            ref_restrict rs = {l, f->va & ~(region_bytes(l) - 1), 0, false};
            unsigned c = (unsigned)vms_rng_below(r, 3);
            rs.clear = c == 0 ? VMS_PTE_RW : c == 1 ? VMS_PTE_US : 0;
            rs.xd = c == 2;
            uint64_t ptep, v;
            bad += vms_pt_entry_addr(&rg->pt, f->va, l, false, &ptep, NULL) != VMS_OK;
            bad += vms_pt_read(&rg->pt, ptep, &v) != VMS_OK;
            v = (v & ~rs.clear) | (rs.xd ? VMS_PTE_XD : 0);
            bad += vms_pt_write(&rg->pt, ptep, v) != VMS_OK;
            m->rs[m->nrs++] = rs;
        }
    }
    /* Invariant: every table page in the tree came from the pool and is counted. */
    bad += vms_pt_count_tables(&rg->pt) != (uint64_t)tp_live(&rg->tp);
    bad += rg->tp.bad_frees;
    return bad;
}

static void test_differential(unsigned levels, bool alternate)
{
    rig rg;
    REQUIRE_VOID(rig_init(&rg, levels));
    rg.alternate = alternate; /* both walkers against the model */
    static model m;
    memset(&m, 0, sizeof m);
    vms_rng r;
    vms_rng_seed(&r, th_seed + levels);
    unsigned bad = 0, probes = 0, faults = 0;
    for (int op = 0; op < 2500 && !bad; op++) {
        bad += diff_op(&rg, &m, &r);
        for (int k = 0; k < 6 && !bad; k++) {
            uint64_t va;
            if (m.nleaf && vms_rng_below(&r, 3)) {
                const ref_leaf *f = &m.leaf[vms_rng_below(&r, (uint64_t)m.nleaf)];
                va = f->va + (vms_rng_next(&r) & (vms_pgsize_bytes(f->size) - 1));
            } else {
                va = random_va(&r, 1) | vms_rng_below(&r, 4096);
            }
            random_regs(&r, &rg.regs);
            bad += probe(&rg, &m, va, (vms_access_kind)vms_rng_below(&r, 3));
            probes++;
            faults += rg.f.kind != VMS_FAULT_NONE;
        }
        if (bad)
            fprintf(stderr, "differential (%u levels): mismatch at op %d\n", levels, op);
    }
    CHECK_EQ(bad, 0);
    CHECK(probes > 10000);
    CHECK(faults > probes / 10 && faults < probes - probes / 10); /* both outcomes seen */
    CHECK(m.nleaf > 100);
    rig_fini(&rg);
}

/* Compare two walks' everything; returns the mismatches (and says which). */
static unsigned twin_diff(const rig *a, const rig *b, bool oka, bool okb, const vms_pwc *pa,
                          const vms_pwc *pb)
{
    unsigned bad = 0;
    bad += oka != okb;
    if (oka && okb)
        bad += !xlate_eq(&a->x, &b->x) || a->x.nr != b->x.nr;
    if (!oka && !okb)
        bad += memcmp(&a->f, &b->f, sizeof a->f) != 0;
    bad += memcmp(&a->st, &b->st, sizeof a->st) != 0;
    bad += memcmp(vms_pwc_get_stats(pa), vms_pwc_get_stats(pb), sizeof(vms_pwc_stats)) != 0;
    for (unsigned l = 2; l <= 5; l++)
        bad += vms_pwc_count(pa, l) != vms_pwc_count(pb, l);
    bad += memcmp(vms_bus_get_stats(a->tp.bus), vms_bus_get_stats(b->tp.bus),
                  sizeof(vms_bus_stats)) != 0;
    return bad;
}

/*
 * The untraced walk (vmsi_x86_walk_attrs: levels unrolled, rights as bit masks) against
 * the traced stepwise walk, which is the plain path: twin rigs with page-walk caches, the
 * same random mappings, protections, upper-level restrictions, registers and walks (the
 * PWC sometimes flushed), one walking with a trace and the other without. Everything
 * must agree: the result, the translation or the fault, every walker counter, the PWC's
 * counters and occupancy, the bus's reads and writes, and the entries in RAM (A/D).
 */
static void test_fast_equals_traced(unsigned levels)
{
    rig a, b;
    REQUIRE_VOID(rig_init(&a, levels) && rig_init(&b, levels));
    vms_pwc_config pc;
    memset(&pc, 0, sizeof pc);
    for (unsigned l = 2; l <= levels; l++)
        pc.level[l] = (vms_pwc_level_config){l == 2 ? 16 : 4, l == 2 ? 4 : 2, NULL};
    vms_pwc *pa = NULL, *pb = NULL;
    REQUIRE_VOID(vms_pwc_create(NULL, &pc, levels, 1, &pa, NULL) == VMS_OK &&
                 vms_pwc_create(NULL, &pc, levels, 1, &pb, NULL) == VMS_OK);
    static model ma, mb;
    memset(&ma, 0, sizeof ma);
    memset(&mb, 0, sizeof mb);
    vms_rng ra, rb, r;
    vms_rng_seed(&ra, th_seed + 10 + levels);
    rb = ra;
    vms_rng_seed(&r, th_seed + 20 + levels);
    unsigned bad = 0, walks = 0, oks = 0, hits = 0;
    for (int op = 0; op < 2000 && !bad; op++) {
        bad += diff_op(&a, &ma, &ra) + diff_op(&b, &mb, &rb);
        if (vms_rng_below(&r, 50) == 0) {
            vms_pwc_flush_all(pa);
            vms_pwc_flush_all(pb);
        }
        for (int k = 0; k < 6 && !bad; k++) {
            uint64_t va;
            if (ma.nleaf && vms_rng_below(&r, 3)) {
                const ref_leaf *f = &ma.leaf[vms_rng_below(&r, (uint64_t)ma.nleaf)];
                va = f->va + (vms_rng_next(&r) & (vms_pgsize_bytes(f->size) - 1));
            } else {
                va = random_va(&r, 1) | vms_rng_below(&r, 4096);
            }
            if (vms_rng_below(&r, 200) == 0)
                va ^= UINT64_C(1) << 50; /* non-canonical: #GP */
            random_regs(&r, &a.regs);
            b.regs = a.regs;
            vms_access_kind kind = (vms_access_kind)vms_rng_below(&r, 3);
            memset(&a.f, 0, sizeof a.f);
            memset(&b.f, 0, sizeof b.f);
            bool oka = vms_walk(a.tp.bus, pa, &a.regs, va, kind, &a.x, &a.f, &a.st, &a.tr);
            bool okb = vms_walk(b.tp.bus, pb, &b.regs, va, kind, &b.x, &b.f, &b.st, NULL);
            unsigned d = twin_diff(&a, &b, oka, okb, pa, pb);
            if (oka) {
                uint64_t pte_a = 0, pte_b = 0;
                vms_pt_lookup(&a.pt, va, &pte_a, NULL, NULL);
                vms_pt_lookup(&b.pt, va, &pte_b, NULL, NULL);
                d += pte_a != pte_b;
            }
            if (d)
                fprintf(stderr,
                        "fast vs traced (%u levels): op %d va 0x%" PRIx64 " kind %d: ok %d/%d "
                        "ec 0x%x/0x%x\n",
                        levels, op, va, (int)kind, (int)oka, (int)okb, a.f.error_code,
                        b.f.error_code);
            bad += d;
            walks++;
            oks += oka;
        }
    }
    hits = (unsigned)a.st.pwc_hits;
    CHECK_EQ(bad, 0);
    CHECK(walks > 10000);
    CHECK(oks > walks / 10 && oks < walks - walks / 10); /* both outcomes */
    CHECK(hits > walks / 20);                            /* the PWC shortened walks */
    CHECK(a.st.ad_writes > 100);
    vms_pwc_destroy(pa);
    vms_pwc_destroy(pb);
    rig_fini(&a);
    rig_fini(&b);
}

/*
 * Allocation failure (issue 16): the walker never allocates. RAM, bus and page-walk
 * caches come from an allocator that fails every request once the tables are built;
 * walks that read every level, set A and D in RAM and fill and hit the walk caches still
 * translate, and no allocation was even attempted.
 */
static void test_no_allocation(void)
{
    th_failalloc fa;
    const vms_allocator *a = th_failalloc_init(&fa, -1);
    tpool tp;
    memset(&tp, 0, sizeof tp);
    tp.fail_after = -1;
    tp.ops = (vms_pt_ops){tp_alloc, tp_free, &tp};
    REQUIRE_VOID(vms_ram_create(a, TP_RAM_BYTES, &tp.ram, NULL) == VMS_OK);
    REQUIRE_VOID(vms_bus_create(a, tp.ram, &tp.bus, NULL) == VMS_OK);
    REQUIRE_VOID(vms_bus_add_ram(tp.bus, 0, TP_RAM_BYTES, NULL) == VMS_OK);
    vms_pt pt;
    REQUIRE_VOID(vms_pt_init(&pt, tp.bus, 4, &tp.ops, NULL) == VMS_OK);
    for (uint64_t i = 0; i < 64; i++)
        CHECK_EQ(vms_pt_map(&pt, 0x400000 + i * 4096, 0x10000000 + i * 4096, VMS_PG_4K, RWUS, NULL),
                 VMS_OK);
    CHECK_EQ(vms_pt_map(&pt, 0x40000000, 0x20000000, VMS_PG_2M, RWUS, NULL), VMS_OK);
    vms_pwc_config pc;
    memset(&pc, 0, sizeof pc);
    for (unsigned l = 2; l <= 4; l++)
        pc.level[l] = (vms_pwc_level_config){8, 2, NULL};
    vms_pwc *pwc = NULL;
    REQUIRE_VOID(vms_pwc_create(a, &pc, 4, 1, &pwc, NULL) == VMS_OK);
    vms_regs regs;
    memset(&regs, 0, sizeof regs);
    regs.cr0 = VMS_CR0_PG | VMS_CR0_WP;
    regs.cr3 = pt.root;
    regs.cr4 = VMS_CR4_PAE;
    regs.efer = VMS_EFER_LME | VMS_EFER_LMA | VMS_EFER_NXE;
    regs.maxphyaddr = 46;
    fa.budget = 0; /* from here on every allocation fails */
    vms_walk_stats st;
    memset(&st, 0, sizeof st);
    unsigned ok = 0;
    for (unsigned round = 0; round < 2; round++)
        for (uint64_t i = 0; i < 64; i++) {
            vms_xlate x;
            vms_fault f;
            memset(&f, 0, sizeof f);
            uint64_t va = 0x400000 + i * 4096 + 8;
            ok += vms_walk(tp.bus, pwc, &regs, va, round ? WR : RD, &x, &f, &st, NULL) &&
                  x.page_pa == 0x10000000 + i * 4096;
        }
    vms_xlate x;
    vms_fault f;
    ok +=
        vms_walk(tp.bus, pwc, &regs, 0x40012345, WR, &x, &f, &st, NULL) && x.page_pa == 0x20000000;
    CHECK_EQ(ok, 129);
    CHECK(st.ad_writes >= 64 + 1); /* the walks did write A/D into RAM */
    CHECK(st.pwc_hits > 0);
    CHECK_EQ(fa.failures, 0); /* nothing asked for memory */
    vms_pwc_destroy(pwc);
    vms_pt_destroy(&pt);
    vms_bus_destroy(tp.bus);
    vms_ram_destroy(tp.ram);
    CHECK_EQ(fa.live_bytes, 0);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "walk");
    test_seed_examples();
    test_levels_and_sizes();
    test_accessed_dirty();
    test_not_present();
    test_rights();
    test_reserved();
    test_bus_fault();
    test_differential(4, false);
    test_differential(5, false);
    test_differential(4, true);
    test_differential(5, true);
    test_fast_equals_traced(4);
    test_fast_equals_traced(5);
    test_no_allocation();
    return th_finish();
}
