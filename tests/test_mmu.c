/*
 * test_mmu.c — the MMU of a core as a whole: TLB hierarchy + PWC + walker, invalidation
 * semantics, costs, faults, data through the bus, and two seeded differential tests
 * against a deliberately naive model (a reference walker that re-reads the tables from
 * RAM on every access, with its own rights rules, plus an explicit map of what the TLB
 * may still hold when the test changes tables without invalidating).
 */
#include "harness.h"
#include "hw/core_impl.h"
#include "hw/tlb_impl.h" /* VMSI_TLB_MEMO */
#include "vmsim/core.h"
#include "vmsim/pt.h"
#include "vmsim/rng.h"

/* ---- fixtures --------------------------------------------------------------------- */

typedef struct fixture {
    vms_machine *m;
    vms_core *c;
    vms_pt_bump b;
    vms_pt pt;
} fixture;

static bool fx_init(fixture *f, vms_machine_config *cfg)
{
    vms_err err = {0};
    if (vms_machine_create(NULL, cfg, &f->m, &err) != VMS_OK) {
        fprintf(stderr, "machine: %s\n", err.msg);
        return false;
    }
    f->c = vms_machine_core(f->m, 0);
    f->b = (vms_pt_bump){vms_machine_ram(f->m), UINT64_C(0x1000000), 0, 0, 0};
    vms_pt_ops ops = vms_pt_bump_ops(&f->b);
    if (vms_pt_init(&f->pt, vms_machine_bus(f->m), cfg->levels, &ops, &err) != VMS_OK)
        return false;
    vms_core_write_cr3(f->c, f->pt.root);
    vms_core_set_user(f->c, true);
    return true;
}

static void preset(const char *name, vms_machine_config *cfg)
{
    vms_err err;
    vms_status st = vms_machine_preset(name, cfg, &err);
    (void)st;
}

static uint64_t refs(fixture *f)
{
    return vms_core_walk_stats(f->c)->mem_refs;
}

static bool xl(fixture *f, uint64_t va, vms_access_kind k, uint64_t *pa, vms_fault *flt)
{
    vms_fault dummy;
    return vms_core_translate(f->c, va, k, NULL, pa, flt ? flt : &dummy, NULL);
}

#define USER_RW (VMS_PTE_US | VMS_PTE_RW)

/* ---- the seeds' worked examples ---------------------------------------------------- */

static void test_seed_examples(void)
{
    fixture f;
    vms_machine_config cfg;
    preset("tiny", &cfg);
    if (!fx_init(&f, &cfg)) {
        CHECK(0);
        return;
    }
    uint64_t pa = 0;
    /* Seed 000: virtual 0x00012345, page 0x12 -> frame 0x50 gives 0x00050345. */
    CHECK_EQ(vms_pt_map(&f.pt, 0x12000, 0x50000, VMS_PG_4K, USER_RW, NULL), VMS_OK);
    /* Seed 003: 0x00401234, VPN 0x401 -> PFN 0x8A3 gives 0x8A3234. */
    CHECK_EQ(vms_pt_map(&f.pt, 0x401000, 0x8A3000, VMS_PG_4K, VMS_PTE_US, NULL), VMS_OK);
    uint64_t r0 = refs(&f);
    CHECK(xl(&f, 0x00012345, VMS_ACC_READ, &pa, NULL));
    CHECK_EQ(pa, 0x00050345);
    CHECK_EQ(refs(&f) - r0, 4); /* a cold 4-level walk without PWC reads 4 entries */
    r0 = refs(&f);
    CHECK(xl(&f, 0x00012345, VMS_ACC_READ, &pa, NULL));
    CHECK_EQ(refs(&f) - r0, 0); /* TLB hit */
    CHECK(xl(&f, 0x00401234, VMS_ACC_EXEC, &pa, NULL));
    CHECK_EQ(pa, 0x8A3234);
    vms_machine_destroy(f.m);

    /* A cold 5-level walk reads 5. */
    cfg.levels = 5;
    if (!fx_init(&f, &cfg)) {
        CHECK(0);
        return;
    }
    CHECK(vms_regs_levels(vms_core_regs(f.c)) == 5);
    CHECK_EQ(vms_pt_map(&f.pt, 0x12000, 0x50000, VMS_PG_4K, USER_RW, NULL), VMS_OK);
    r0 = refs(&f);
    CHECK(xl(&f, 0x00012345, VMS_ACC_READ, &pa, NULL));
    CHECK_EQ(pa, 0x00050345);
    CHECK_EQ(refs(&f) - r0, 5);
    vms_machine_destroy(f.m);
}

/* ---- TLB hierarchy, PWC and costs --------------------------------------------------- */

static void test_hierarchy_and_pwc(void)
{
    fixture f;
    vms_machine_config cfg;
    preset("skylake", &cfg);
    cfg.ncores = 1;
    if (!fx_init(&f, &cfg)) {
        CHECK(0);
        return;
    }
    for (uint64_t i = 0; i < 4; i++)
        CHECK_EQ(
            vms_pt_map(&f.pt, 0x400000 + i * 4096, 0x800000 + i * 4096, VMS_PG_4K, USER_RW, NULL),
            VMS_OK);
    uint64_t pa, r0 = refs(&f);
    CHECK(xl(&f, 0x400000, VMS_ACC_READ, &pa, NULL));
    CHECK_EQ(refs(&f) - r0, 4);
    /* Next page shares every table: the PDE cache holds the PT's address -> 1 read. */
    r0 = refs(&f);
    CHECK(xl(&f, 0x401000, VMS_ACC_READ, &pa, NULL));
    CHECK_EQ(refs(&f) - r0, 1);
    CHECK_EQ(vms_core_walk_stats(f.c)->pwc_hits, 1);
    /* L1 dTLB miss but L2 hit: fetch through the iTLB of a page cached by a data access. */
    const vms_tlb_stats *l2 = vms_tlb_get_stats(vms_core_tlb(f.c, VMS_TLB_L2));
    uint64_t l2hits = l2->hits;
    vms_pt_protect(&f.pt, 0x400000, 0, VMS_PTE_XD, NULL);
    uint64_t cyc = vms_core_cycles(f.c);
    r0 = refs(&f);
    CHECK(xl(&f, 0x400000, VMS_ACC_EXEC, &pa, NULL));
    CHECK_EQ(refs(&f) - r0, 0);
    CHECK_EQ(l2->hits, l2hits + 1);
    CHECK_EQ(vms_core_cycles(f.c) - cyc, cfg.cost.l2_hit);
    /* L1 hit costs l1_hit. */
    cyc = vms_core_cycles(f.c);
    CHECK(xl(&f, 0x400000, VMS_ACC_READ, &pa, NULL));
    CHECK_EQ(vms_core_cycles(f.c) - cyc, cfg.cost.l1_hit);
    /* A cold walk costs its references (and A/D write-backs). */
    vms_core_invpcid(f.c, VMS_INVPCID_ALL_GLOBAL, 0, 0);
    cyc = vms_core_cycles(f.c);
    uint64_t adw = vms_core_walk_stats(f.c)->ad_writes;
    CHECK(xl(&f, 0x402000, VMS_ACC_READ, &pa, NULL));
    CHECK_EQ(vms_core_cycles(f.c) - cyc,
             4u * cfg.cost.walk_ref +
                 (vms_core_walk_stats(f.c)->ad_writes - adw) * cfg.cost.ad_write);
    /* JSON has the contract names. */
    vms_strbuf sb;
    vms_strbuf_init(&sb, NULL);
    CHECK_EQ(vms_machine_stats_json(f.m, &sb), VMS_OK);
    const char *js = vms_strbuf_str(&sb);
    CHECK(strstr(js, "\"accesses\":") && strstr(js, "\"cycles\":") &&
          strstr(js, "\"l1d\":{\"lookups\"") && strstr(js, "\"l2\":{") &&
          strstr(js, "\"walks\":") && strstr(js, "\"mem_refs\":"));
    vms_strbuf_free(&sb);
    vms_machine_destroy(f.m);
}

/* ---- stale translations and every invalidation form --------------------------------- */

static void test_invalidation(void)
{
    fixture f;
    vms_machine_config cfg;
    preset("skylake", &cfg);
    cfg.ncores = 2;
    if (!fx_init(&f, &cfg)) {
        CHECK(0);
        return;
    }
    uint64_t va = 0x7000, pa;
    CHECK_EQ(vms_pt_map(&f.pt, va, 0x100000, VMS_PG_4K, USER_RW, NULL), VMS_OK);
    CHECK(xl(&f, va, VMS_ACC_READ, &pa, NULL) && pa == 0x100000);
    /* Remap without invalidation: the stale translation is used. */
    uint64_t ptep;
    CHECK(vms_pt_lookup(&f.pt, va, NULL, &ptep, NULL));
    vms_pt_write(&f.pt, ptep, vms_pte_mk(0x200000, VMS_PTE_P | USER_RW));
    CHECK(xl(&f, va, VMS_ACC_READ, &pa, NULL) && pa == 0x100000);
    vms_core_invlpg(f.c, va);
    CHECK(xl(&f, va, VMS_ACC_READ, &pa, NULL) && pa == 0x200000);

    /* Another core keeps its own stale entry until it invalidates (no shootdown here). */
    vms_core *c1 = vms_machine_core(f.m, 1);
    vms_core_write_cr3(c1, f.pt.root);
    vms_core_set_user(c1, true);
    vms_fault flt;
    CHECK(vms_core_translate(c1, va, VMS_ACC_READ, NULL, &pa, &flt, NULL) && pa == 0x200000);
    vms_pt_write(&f.pt, ptep, vms_pte_mk(0x300000, VMS_PTE_P | USER_RW));
    vms_core_invlpg(f.c, va);
    CHECK(xl(&f, va, VMS_ACC_READ, &pa, NULL) && pa == 0x300000);
    CHECK(vms_core_translate(c1, va, VMS_ACC_READ, NULL, &pa, &flt, NULL) && pa == 0x200000);

    /* Without PCIDs, a CR3 load drops non-global entries but keeps globals. */
    uint64_t gva = 0x9000;
    CHECK_EQ(vms_pt_map(&f.pt, gva, 0x400000, VMS_PG_4K, USER_RW | VMS_PTE_G, NULL), VMS_OK);
    CHECK(xl(&f, gva, VMS_ACC_READ, &pa, NULL));
    uint64_t gptep;
    CHECK(vms_pt_lookup(&f.pt, gva, NULL, &gptep, NULL));
    vms_pt_write(&f.pt, gptep, vms_pte_mk(0x500000, VMS_PTE_P | USER_RW | VMS_PTE_G));
    vms_pt_write(&f.pt, ptep, vms_pte_mk(0x600000, VMS_PTE_P | USER_RW));
    vms_core_write_cr3(f.c, f.pt.root);
    CHECK(xl(&f, gva, VMS_ACC_READ, &pa, NULL) && pa == 0x400000); /* global survives */
    CHECK(xl(&f, va, VMS_ACC_READ, &pa, NULL) && pa == 0x600000);  /* non-global refreshed */
    /* INVPCID type 3 keeps globals, type 2 drops them. */
    vms_core_invpcid(f.c, VMS_INVPCID_ALL, 0, 0);
    CHECK(xl(&f, gva, VMS_ACC_READ, &pa, NULL) && pa == 0x400000);
    vms_core_invpcid(f.c, VMS_INVPCID_ALL_GLOBAL, 0, 0);
    CHECK(xl(&f, gva, VMS_ACC_READ, &pa, NULL) && pa == 0x500000);
    /* INVLPG drops a global entry for its address. */
    vms_pt_write(&f.pt, gptep, vms_pte_mk(0x400000, VMS_PTE_P | USER_RW | VMS_PTE_G));
    vms_core_invlpg(f.c, gva);
    CHECK(xl(&f, gva, VMS_ACC_READ, &pa, NULL) && pa == 0x400000);
    /* Toggling CR4.PGE drops globals too. */
    vms_pt_write(&f.pt, gptep, vms_pte_mk(0x500000, VMS_PTE_P | USER_RW | VMS_PTE_G));
    uint64_t cr4 = vms_core_regs(f.c)->cr4;
    CHECK_EQ(vms_core_write_cr4(f.c, cr4 & ~VMS_CR4_PGE), VMS_OK);
    CHECK_EQ(vms_core_write_cr4(f.c, cr4), VMS_OK);
    CHECK(xl(&f, gva, VMS_ACC_READ, &pa, NULL) && pa == 0x500000);
    /* With PGE off, G is ignored: a CR3 load drops the entry. */
    CHECK_EQ(vms_core_write_cr4(f.c, cr4 & ~VMS_CR4_PGE), VMS_OK);
    CHECK(xl(&f, gva, VMS_ACC_READ, &pa, NULL) && pa == 0x500000);
    vms_pt_write(&f.pt, gptep, vms_pte_mk(0x400000, VMS_PTE_P | USER_RW | VMS_PTE_G));
    vms_core_write_cr3(f.c, f.pt.root);
    CHECK(xl(&f, gva, VMS_ACC_READ, &pa, NULL) && pa == 0x400000);
    CHECK_EQ(vms_core_write_cr4(f.c, cr4), VMS_OK);

    /* PCIDs: entries of PCID 1 survive a switch to PCID 2 and back with no-flush. */
    CHECK_EQ(vms_core_write_cr4(f.c, cr4 | VMS_CR4_PCIDE), VMS_OK);
    vms_pt_write(&f.pt, ptep, vms_pte_mk(0x100000, VMS_PTE_P | USER_RW));
    vms_core_write_cr3(f.c, f.pt.root | 1);
    CHECK(xl(&f, va, VMS_ACC_READ, &pa, NULL) && pa == 0x100000);
    vms_pt_write(&f.pt, ptep, vms_pte_mk(0x200000, VMS_PTE_P | USER_RW));
    vms_core_write_cr3(f.c, f.pt.root | 2);
    CHECK(xl(&f, va, VMS_ACC_READ, &pa, NULL) && pa == 0x200000); /* PCID 2: fresh walk */
    vms_core_write_cr3(f.c, f.pt.root | 1 | VMS_CR3_NOFLUSH);
    CHECK(xl(&f, va, VMS_ACC_READ, &pa, NULL) && pa == 0x100000); /* PCID 1's entry kept */
    CHECK_EQ(vms_core_regs(f.c)->cr3 & VMS_CR3_NOFLUSH, 0);
    vms_core_write_cr3(f.c, f.pt.root | 1); /* flushing load of PCID 1 */
    CHECK(xl(&f, va, VMS_ACC_READ, &pa, NULL) && pa == 0x200000);
    /* INVPCID type 0 and 1 act on the named PCID only. */
    vms_pt_write(&f.pt, ptep, vms_pte_mk(0x300000, VMS_PTE_P | USER_RW));
    CHECK_EQ(vms_core_invpcid(f.c, VMS_INVPCID_ADDR, 2, va), VMS_OK);
    CHECK(xl(&f, va, VMS_ACC_READ, &pa, NULL) && pa == 0x200000);
    CHECK_EQ(vms_core_invpcid(f.c, VMS_INVPCID_CONTEXT, 1, 0), VMS_OK);
    CHECK(xl(&f, va, VMS_ACC_READ, &pa, NULL) && pa == 0x300000);
    CHECK_EQ(vms_core_invpcid(f.c, (vms_invpcid_type)7, 1, 0), VMS_ERR_INVAL);
    CHECK_EQ(vms_core_invpcid(f.c, VMS_INVPCID_ADDR, 4096, 0), VMS_ERR_INVAL);
    /* Enabling PCIDE with CR3[11:0] != 0 is refused. */
    CHECK_EQ(vms_core_write_cr4(f.c, cr4), VMS_OK);
    vms_core_write_cr3(f.c, f.pt.root);
    CHECK_EQ(vms_core_write_cr4(f.c, cr4), VMS_OK);
    vms_machine_destroy(f.m);
}

/* ---- A/D, dirty re-walk, faults on TLB-cached rights, data ------------------------- */

static void test_dirty_faults_data(void)
{
    fixture f;
    vms_machine_config cfg;
    preset("skylake", &cfg);
    cfg.ncores = 1;
    if (!fx_init(&f, &cfg)) {
        CHECK(0);
        return;
    }
    uint64_t va = 0x10000, pa, pte, ptep;
    CHECK_EQ(vms_pt_map(&f.pt, va, 0x300000, VMS_PG_4K, USER_RW, NULL), VMS_OK);
    CHECK(xl(&f, va, VMS_ACC_READ, &pa, NULL));
    CHECK(vms_pt_lookup(&f.pt, va, &pte, &ptep, NULL));
    CHECK((pte & VMS_PTE_A) && !(pte & VMS_PTE_D));
    CHECK(xl(&f, va, VMS_ACC_WRITE, &pa, NULL)); /* hits a clean entry: re-walk sets D */
    CHECK_EQ(vms_core_get_stats(f.c)->dirty_rewalks, 1);
    CHECK(vms_pt_lookup(&f.pt, va, &pte, NULL, NULL) && (pte & VMS_PTE_D));
    CHECK(xl(&f, va, VMS_ACC_WRITE, &pa, NULL));
    CHECK_EQ(vms_core_get_stats(f.c)->dirty_rewalks, 1);

    /* Read-only cached, then made writable without invalidation: the write faults on
     * the cached rights (spurious fault), the entry is dropped, the retry succeeds. */
    uint64_t ro = 0x20000;
    CHECK_EQ(vms_pt_map(&f.pt, ro, 0x301000, VMS_PG_4K, VMS_PTE_US, NULL), VMS_OK);
    CHECK(xl(&f, ro, VMS_ACC_READ, &pa, NULL));
    vms_pt_protect(&f.pt, ro, VMS_PTE_RW, 0, NULL);
    vms_fault flt;
    CHECK(!xl(&f, ro + 8, VMS_ACC_WRITE, &pa, &flt));
    CHECK_EQ(flt.kind, VMS_FAULT_PF);
    CHECK_EQ(flt.error_code, VMS_PFERR_P | VMS_PFERR_W | VMS_PFERR_U);
    CHECK_EQ(vms_core_regs(f.c)->cr2, ro + 8);
    CHECK_EQ(vms_core_get_stats(f.c)->tlb_hit_faults, 1);
    CHECK(xl(&f, ro + 8, VMS_ACC_WRITE, &pa, NULL));

    /* Not present: error code 0|U; supervisor page from user mode: P|U. */
    CHECK(!xl(&f, 0x5000000, VMS_ACC_READ, &pa, &flt));
    CHECK_EQ(flt.error_code, VMS_PFERR_U);
    CHECK_EQ(vms_pt_map(&f.pt, 0x30000, 0x302000, VMS_PG_4K, VMS_PTE_RW, NULL), VMS_OK);
    CHECK(!xl(&f, 0x30000, VMS_ACC_WRITE, &pa, &flt));
    CHECK_EQ(flt.error_code, VMS_PFERR_P | VMS_PFERR_W | VMS_PFERR_U);
    /* Non-canonical: #GP — also for an alias of a page the TLB holds (tags keep VA bits
     * 56:0 only, so the check must come before the lookup). */
    CHECK(!xl(&f, UINT64_C(0x0000800000000000), VMS_ACC_READ, &pa, &flt));
    CHECK_EQ(flt.kind, VMS_FAULT_GP);
    CHECK(xl(&f, va, VMS_ACC_READ, &pa, NULL));
    CHECK(!xl(&f, va | (UINT64_C(1) << 60), VMS_ACC_READ, &pa, &flt));
    CHECK_EQ(flt.kind, VMS_FAULT_GP);

    /* Bytes move through the MMU and the bus into RAM, across a page boundary. */
    CHECK_EQ(vms_pt_map(&f.pt, 0x11000, 0x500000, VMS_PG_4K, USER_RW, NULL), VMS_OK);
    char msg[] = "hello, page boundary";
    vms_access_result r = vms_core_access(f.c, 0x10ffa, VMS_ACC_WRITE, msg, sizeof msg);
    CHECK(r.ok);
    CHECK_EQ(r.pa, 0x300ffa);
    char back[sizeof msg] = {0};
    CHECK(vms_core_access(f.c, 0x10ffa, VMS_ACC_READ, back, sizeof back).ok);
    CHECK(memcmp(back, msg, sizeof msg) == 0);
    char ram6[6] = {0};
    vms_ram_read(vms_machine_ram(f.m), 0x300ffa, ram6, 6);
    CHECK(memcmp(ram6, "hello,", 6) == 0);
    vms_ram_read(vms_machine_ram(f.m), 0x500000, ram6, 6);
    CHECK(memcmp(ram6, " page ", 6) == 0);
    /* A write crossing into an unmapped page faults and moves nothing. */
    r = vms_core_access(f.c, 0x11ffc, VMS_ACC_WRITE, msg, 8);
    CHECK(!r.ok && r.fault.kind == VMS_FAULT_PF && r.fault.va == 0x12000);
    char tail[4];
    vms_ram_read(vms_machine_ram(f.m), 0x500ffc, tail, 4);
    CHECK(memcmp(tail, "\0\0\0\0", 4) == 0);
    /* A page mapped to the device window with nothing there is a bus error, as data. */
    CHECK_EQ(vms_pt_map(&f.pt, 0x40000, 0xC0000000, VMS_PG_4K, USER_RW | VMS_PTE_PCD, NULL),
             VMS_OK);
    r = vms_core_access(f.c, 0x40000, VMS_ACC_READ, back, 4);
    CHECK(!r.ok && r.fault.kind == VMS_FAULT_BUS && r.fault.pa == 0xC0000000);
    /* Address-only access: no data, still translated and counted. */
    uint64_t acc = vms_core_get_stats(f.c)->accesses;
    CHECK(vms_core_access(f.c, 0x10000, VMS_ACC_READ, NULL, 8).ok);
    CHECK_EQ(vms_core_get_stats(f.c)->accesses, acc + 1);
    vms_machine_destroy(f.m);
}

/* ---- differential tests ------------------------------------------------------------ */

/* The naive reference: read the entries from RAM level by level, every time. */
typedef struct ref_result {
    bool ok;
    uint64_t pa;
    uint32_t err;
    vms_xlate x;
} ref_result;

static uint32_t ref_access_bits(const vms_regs *r, vms_access_kind k)
{
    uint32_t e = 0;
    if (k == VMS_ACC_WRITE)
        e |= VMS_PFERR_W;
    if (r->user)
        e |= VMS_PFERR_U;
    if (k == VMS_ACC_EXEC && ((r->efer & VMS_EFER_NXE) || (r->cr4 & VMS_CR4_SMEP)))
        e |= VMS_PFERR_I;
    return e;
}

/* Rights, written out case by case (user/supervisor x read/write/exec). */
static uint32_t ref_rights(const vms_regs *r, const vms_xlate *x, vms_access_kind k)
{
    bool nx = (r->efer & VMS_EFER_NXE) && x->xd;
    bool deny = false, pk = false;
    if (r->user) {
        if (!x->us)
            deny = true;
        else if (k == VMS_ACC_WRITE && !x->rw)
            deny = true;
        else if (k == VMS_ACC_EXEC && nx)
            deny = true;
    } else {
        if (k == VMS_ACC_EXEC) {
            deny = nx || (x->us && (r->cr4 & VMS_CR4_SMEP));
        } else {
            if (x->us && (r->cr4 & VMS_CR4_SMAP) && !r->ac)
                deny = true;
            if (k == VMS_ACC_WRITE && !x->rw && (r->cr0 & VMS_CR0_WP))
                deny = true;
        }
    }
    if (!deny && k != VMS_ACC_EXEC && x->us && (r->cr4 & VMS_CR4_PKE)) {
        if (vms_pkru_ad(r->pkru, x->pkey))
            pk = true;
        else if (k == VMS_ACC_WRITE && vms_pkru_wd(r->pkru, x->pkey) &&
                 (r->user || (r->cr0 & VMS_CR0_WP)))
            pk = true;
    }
    if (!deny && !pk)
        return 0;
    return VMS_PFERR_P | ref_access_bits(r, k) | (pk ? VMS_PFERR_PK : 0);
}

static ref_result ref_walk(vms_ram *ram, const vms_regs *r, uint64_t va, vms_access_kind k)
{
    ref_result res = {.ok = false};
    uint64_t table = vms_regs_root(r);
    vms_xlate x = {.rw = 1, .us = 1, .xd = 0};
    for (unsigned level = vms_regs_levels(r); level >= 1; level--) {
        uint64_t pte = 0;
        vms_ram_read64(ram, table + 8 * vms_va_index(va, level), &pte);
        if (!(pte & VMS_PTE_P)) {
            res.err = ref_access_bits(r, k);
            return res;
        }
        x.rw &= (pte & VMS_PTE_RW) != 0;
        x.us &= (pte & VMS_PTE_US) != 0;
        x.xd |= (pte & VMS_PTE_XD) != 0;
        if (level == 1 || (level <= 3 && (pte & VMS_PTE_PS))) {
            x.size = (vms_pgsize)(level - 1);
            uint64_t mask = vms_pgsize_bytes(x.size) - 1;
            x.page_pa = pte & VMS_PTE_ADDR_MASK & ~mask;
            x.global = (pte & VMS_PTE_G) != 0;
            x.pkey = (uint8_t)vms_pte_pkey(pte);
            x.dirty = (pte & VMS_PTE_D) != 0 || k == VMS_ACC_WRITE;
            res.err = ref_rights(r, &x, k);
            res.ok = res.err == 0;
            res.x = x;
            res.pa = x.page_pa | (va & mask);
            return res;
        }
        table = pte & VMS_PTE_ADDR_MASK;
    }
    return res;
}

/* Mode A: realistic geometry (evictions, PWC), every change invalidated at once.
 * Every translation must equal the reference walk of the current tables. */
static void test_diff_invalidated(void)
{
    vms_rng rng;
    vms_rng_seed(&rng, th_seed);
    fixture f;
    vms_machine_config cfg;
    preset("skylake", &cfg);
    cfg.ncores = 1;
    if (!fx_init(&f, &cfg)) {
        CHECK(0);
        return;
    }
    vms_ram *ram = vms_machine_ram(f.m);
    unsigned mismatches = 0, compared = 0, faults = 0;
    for (int step = 0; step < 20000; step++) {
        unsigned op = (unsigned)vms_rng_below(&rng, 100);
        /* 512 4K pages in [0, 2M), a few 2M pages in [1G, 1G+32M), a 1G page at 8G. */
        uint64_t page = vms_rng_below(&rng, 512);
        uint64_t va4 = page << 12, va2 = (UINT64_C(1) << 30) + (vms_rng_below(&rng, 16) << 21);
        uint64_t va1 = UINT64_C(8) << 30;
        uint64_t va = op % 7 == 0 ? va2 : op % 13 == 0 ? va1 : va4;
        vms_pgsize size = va == va2 ? VMS_PG_2M : va == va1 ? VMS_PG_1G : VMS_PG_4K;
        uint64_t flags = (vms_rng_below(&rng, 4) ? VMS_PTE_US : 0) |
                         (vms_rng_below(&rng, 2) ? VMS_PTE_RW : 0) |
                         (vms_rng_below(&rng, 3) ? 0 : VMS_PTE_XD);
        if (op < 20) {
            uint64_t pa = size == VMS_PG_4K
                              ? (UINT64_C(0x4000000) + (vms_rng_below(&rng, 4096) << 12))
                              : (UINT64_C(1) << 31) + (vms_rng_below(&rng, 2) << 30);
            if (vms_pt_map(&f.pt, va, pa, size, flags, NULL) == VMS_OK)
                vms_core_invlpg(f.c, va);
        } else if (op < 30) {
            if (vms_pt_unmap(&f.pt, va, true, NULL) == VMS_OK)
                vms_core_write_cr3(f.c, f.pt.root); /* tables may be freed: full flush */
        } else if (op < 38) {
            if (vms_pt_protect(&f.pt, va, flags, VMS_PTE_RW | VMS_PTE_US | VMS_PTE_XD, NULL) ==
                VMS_OK)
                vms_core_invlpg(f.c, va);
        } else if (op < 41) {
            /* Control bits that are checked live, never cached. */
            vms_core_set_user(f.c, vms_rng_below(&rng, 3) != 0);
            vms_core_set_ac(f.c, vms_rng_below(&rng, 2));
            uint64_t cr4 = vms_core_regs(f.c)->cr4 & ~(VMS_CR4_SMEP | VMS_CR4_SMAP);
            cr4 |= vms_rng_below(&rng, 2) ? VMS_CR4_SMEP : 0;
            cr4 |= vms_rng_below(&rng, 2) ? VMS_CR4_SMAP : 0;
            vms_core_write_cr4(f.c, cr4);
            uint64_t cr0 = vms_core_regs(f.c)->cr0 & ~VMS_CR0_WP;
            vms_core_write_cr0(f.c, cr0 | (vms_rng_below(&rng, 2) ? VMS_CR0_WP : 0));
        } else {
            vms_access_kind k = (vms_access_kind)vms_rng_below(&rng, 3);
            uint64_t a = va + (vms_rng_below(&rng, 4096) & ~UINT64_C(7));
            vms_regs regs = *vms_core_regs(f.c);
            ref_result want = ref_walk(ram, &regs, a, k);
            uint64_t pa = 0;
            vms_fault flt = {0};
            bool ok = xl(&f, a, k, &pa, &flt);
            compared++;
            faults += !ok;
            if (ok != want.ok || (ok && pa != want.pa) ||
                (!ok && (flt.kind != VMS_FAULT_PF || flt.error_code != want.err))) {
                if (mismatches++ < 5)
                    fprintf(stderr,
                            "step %d: va 0x%llx %s: got ok=%d pa=0x%llx err=0x%x, want ok=%d "
                            "pa=0x%llx err=0x%x\n",
                            step, (unsigned long long)a, vms_access_name(k), ok,
                            (unsigned long long)pa, flt.error_code, want.ok,
                            (unsigned long long)want.pa, want.err);
            }
        }
    }
    CHECK_EQ(mismatches, 0);
    CHECK(compared > 5000 && faults > 100 && faults < compared);
    CHECK_EQ(vms_pt_count_tables(&f.pt), f.b.allocated - f.b.freed);
    for (unsigned l = 0; l < VMS_TLB_NLEVELS; l++)
        CHECK(vms_tlb_check(vms_core_tlb(f.c, l)));
    vms_machine_destroy(f.m);
}

/* Mode B: TLBs big enough never to evict, tables never freed, changes sometimes NOT
 * invalidated. The reference also remembers what the TLB may hold per (PCID, page):
 * a stale entry must be used until invalidated. */
#define NPAGES 32
typedef struct cached {
    bool valid;
    vms_xlate x;
} cached;

static void test_diff_stale(void)
{
    vms_rng rng;
    vms_rng_seed(&rng, th_seed ^ 0x5eed);
    fixture f;
    vms_machine_config cfg;
    preset("skylake", &cfg);
    cfg.ncores = 1;
    vms_tlb_config big = {1, {{VMS_TLB_SIZES_ALL, 64, 64, "lru"}}};
    cfg.mmu.l1i = cfg.mmu.l1d = cfg.mmu.l2 = big;
    if (!fx_init(&f, &cfg)) {
        CHECK(0);
        return;
    }
    vms_core_write_cr4(f.c, vms_core_regs(f.c)->cr4 | VMS_CR4_PCIDE);
    vms_pt pts[3];
    pts[0] = f.pt;
    vms_pt_ops ops = vms_pt_bump_ops(&f.b);
    vms_pt_init(&pts[1], vms_machine_bus(f.m), 4, &ops, NULL);
    vms_pt_init(&pts[2], vms_machine_bus(f.m), 4, &ops, NULL);
    static cached tlb[3][NPAGES]; /* [pcid][page] what the TLB may hold */
    memset(tlb, 0, sizeof tlb);
    unsigned pcid = 0, mismatches = 0, stale_hits = 0, cached_hits = 0;
    vms_core_write_cr3(f.c, pts[0].root);
    vms_ram *ram = vms_machine_ram(f.m);
    for (int step = 0; step < 20000; step++) {
        unsigned op = (unsigned)vms_rng_below(&rng, 100);
        unsigned page = (unsigned)vms_rng_below(&rng, NPAGES);
        uint64_t va = (uint64_t)page << 12;
        vms_pt *pt = &pts[vms_rng_below(&rng, 3)];
        unsigned tpcid = (unsigned)(pt - pts);
        bool inval = vms_rng_below(&rng, 2);
        uint64_t flags = VMS_PTE_US | (vms_rng_below(&rng, 2) ? VMS_PTE_RW : 0);
        if (op < 25) {
            uint64_t pa = UINT64_C(0x8000000) + (vms_rng_below(&rng, 1024) << 12);
            uint64_t ptep;
            if (vms_pt_entry_addr(pt, va, 1, true, &ptep, NULL) == VMS_OK)
                vms_pt_write(pt, ptep, vms_pte_mk(pa, VMS_PTE_P | flags));
        } else if (op < 35) {
            vms_pt_unmap(pt, va, false, NULL);
        } else if (op < 45) {
            vms_pt_protect(pt, va, flags, VMS_PTE_RW, NULL);
        } else if (op < 47) {
            pcid = tpcid;
            bool noflush = vms_rng_below(&rng, 2);
            vms_core_write_cr3(f.c, pts[pcid].root | pcid | (noflush ? VMS_CR3_NOFLUSH : 0));
            if (!noflush)
                memset(tlb[pcid], 0, sizeof tlb[pcid]);
            continue;
        } else if (op < 50) {
            vms_core_set_user(f.c, vms_rng_below(&rng, 4) != 0);
            continue;
        } else {
            vms_access_kind k = vms_rng_below(&rng, 2) ? VMS_ACC_WRITE : VMS_ACC_READ;
            vms_regs regs = *vms_core_regs(f.c);
            cached *e = &tlb[pcid][page];
            ref_result want;
            if (e->valid) {
                uint32_t err = ref_rights(&regs, &e->x, k);
                if (err) {
                    want = (ref_result){.ok = false, .err = err};
                    e->valid = false; /* a fault drops the entry */
                } else if (k == VMS_ACC_WRITE && !e->x.dirty) {
                    want = ref_walk(ram, &regs, va, k); /* re-walk to set D */
                    e->valid = want.ok;
                    e->x = want.x;
                } else {
                    want = (ref_result){.ok = true, .pa = e->x.page_pa, .x = e->x};
                    ref_result now = ref_walk(ram, &regs, va, k);
                    cached_hits++;
                    stale_hits += !now.ok || now.pa != want.pa; /* differs from memory */
                }
            } else {
                want = ref_walk(ram, &regs, va, k);
                e->valid = want.ok;
                e->x = want.x;
            }
            uint64_t pa = 0;
            vms_fault flt = {0};
            bool ok = xl(&f, va, k, &pa, &flt);
            if (ok != want.ok || (ok && pa != want.pa) || (!ok && flt.error_code != want.err)) {
                if (mismatches++ < 5)
                    fprintf(stderr,
                            "stale step %d: pcid %u va 0x%llx %s: got ok=%d pa=0x%llx "
                            "err=0x%x, want ok=%d pa=0x%llx err=0x%x\n",
                            step, pcid, (unsigned long long)va, vms_access_name(k), ok,
                            (unsigned long long)pa, flt.error_code, want.ok,
                            (unsigned long long)want.pa, want.err);
                e->valid = false; /* resynchronise */
                vms_core_invlpg(f.c, va);
            }
            continue;
        }
        if (inval && tpcid == pcid) {
            vms_core_invlpg(f.c, va);
            tlb[pcid][page].valid = false;
        } else if (inval) {
            vms_core_invpcid(f.c, VMS_INVPCID_ADDR, (uint16_t)tpcid, va);
            tlb[tpcid][page].valid = false;
        }
    }
    CHECK_EQ(mismatches, 0);
    /* The run must exercise both: TLB hits, and hits that are stale w.r.t. memory. */
    CHECK(cached_hits > 1000);
    CHECK(stale_hits > 100);
    for (unsigned l = 0; l < VMS_TLB_NLEVELS; l++)
        CHECK(vms_tlb_check(vms_core_tlb(f.c, l)));
    vms_machine_destroy(f.m);
}

/* ---- configuration and host failures ----------------------------------------------- */

static void test_machine_config(void)
{
    vms_machine_config cfg;
    vms_err err = {0};
    CHECK_EQ(vms_machine_preset("nonesuch", &cfg, &err), VMS_ERR_NOTFOUND);
    CHECK(strstr(err.msg, "skylake") != NULL);
    preset("skylake", &cfg);
    CHECK_EQ(cfg.mmu.l2.part[0].sets * cfg.mmu.l2.part[0].ways, 1536);
    CHECK_EQ(cfg.mmu.l1d.part[0].sets * cfg.mmu.l1d.part[0].ways, 64);
    vms_machine *m = NULL;
    vms_machine_config bad = cfg;
    bad.ram_bytes = 12345;
    CHECK_EQ(vms_machine_create(NULL, &bad, &m, &err), VMS_ERR_INVAL);
    CHECK(m == NULL && strstr(err.msg, "4096"));
    bad = cfg;
    bad.levels = 3;
    CHECK_EQ(vms_machine_create(NULL, &bad, &m, &err), VMS_ERR_INVAL);
    bad = cfg;
    bad.ncores = 0;
    CHECK_EQ(vms_machine_create(NULL, &bad, &m, &err), VMS_ERR_INVAL);
    bad = cfg;
    bad.mmu.l2.part[0].ways = 0;
    CHECK_EQ(vms_machine_create(NULL, &bad, &m, &err), VMS_ERR_INVAL);
    bad = cfg;
    bad.mmu.l1d.part[0].policy = "mru-ish";
    CHECK_EQ(vms_machine_create(NULL, &bad, &m, &err), VMS_ERR_INVAL);
    CHECK(strstr(err.msg, "mru-ish") != NULL);
    /* 1 TiB of RAM is cheap until touched; the layout puts RAM low and above 4 GiB. */
    bad = cfg;
    bad.ram_bytes = UINT64_C(1) << 40;
    CHECK_EQ(vms_machine_create(NULL, &bad, &m, &err), VMS_OK);
    if (m) {
        vms_bus *bus = vms_machine_bus(m);
        CHECK_EQ(vms_bus_ram_bytes(bus), UINT64_C(1) << 40);
        CHECK(vms_bus_is_ram(bus, 0, 4096));
        CHECK(!vms_bus_is_ram(bus, 0xC0000000, 4096));
        CHECK(vms_bus_is_ram(bus, UINT64_C(0x100000000), 4096));
        CHECK_EQ(vms_ram_resident_frames(vms_machine_ram(m)), 0);
        vms_machine_destroy(m);
    }
    /* Fail the Nth host allocation of machine creation: an error, never a leak. */
    unsigned failures = 0;
    for (long n = 0; n < 200; n++) {
        th_failalloc fa;
        const vms_allocator *a = th_failalloc_init(&fa, n);
        vms_status st = vms_machine_create(a, &cfg, &m, &err);
        if (st == VMS_OK) {
            vms_machine_destroy(m);
            CHECK_EQ(fa.live_bytes, 0);
            break;
        }
        failures++;
        CHECK_EQ(st, VMS_ERR_NOMEM);
        CHECK(m == NULL);
        CHECK_EQ(fa.live_bytes, 0);
    }
    CHECK(failures > 3);
}

/* ---- the TLB repeat memo gives exactly the modelled results ------------------------- */

static void set_policy(vms_tlb_config *t, const char *pol)
{
    for (unsigned i = 0; i < t->nparts; i++)
        t->part[i].policy = pol;
}

/* Run one seeded stream of accesses with strong locality on machines with and without the
 * memo; every translation, every counter (the whole JSON) and every TLB entry must agree. */
static void test_memo_exact(void)
{
    static const char *const pols[] = {"lru", "plru", "fifo", "random"};
    for (unsigned pi = 0; pi < 4; pi++) {
        fixture f[2];
        vms_machine_config cfg;
        preset("skylake", &cfg);
        cfg.ncores = 1;
        set_policy(&cfg.mmu.l1i, pols[pi]);
        set_policy(&cfg.mmu.l1d, pols[pi]);
        set_policy(&cfg.mmu.l2, pols[pi]);
        bool ok = true;
        for (int i = 0; i < 2; i++) {
            ok = ok && fx_init(&f[i], &cfg);
            for (uint64_t pg = 0; ok && pg < 600; pg++)
                vms_pt_map(&f[i].pt, pg << 12, UINT64_C(0x4000000) + (pg << 12), VMS_PG_4K, USER_RW,
                           NULL);
        }
        if (!ok) {
            CHECK(0);
            return;
        }
        for (unsigned l = 0; l < VMS_TLB_NLEVELS; l++)
            vms_tlb_set_memo(vms_core_tlb(f[1].c, l), false);
        vms_rng rng;
        vms_rng_seed(&rng, th_seed + pi);
        uint64_t page = 0;
        unsigned diffs = 0;
        for (int step = 0; step < 30000; step++) {
            unsigned r = (unsigned)vms_rng_below(&rng, 100);
            if (r < 30)
                page = vms_rng_below(&rng, 600); /* jump; otherwise stay on the page */
            vms_access_kind k = (vms_access_kind)vms_rng_below(&rng, 3);
            uint64_t va = (page << 12) | (vms_rng_below(&rng, 512) << 3);
            uint64_t pa[2] = {0, 0};
            bool res[2];
            for (int i = 0; i < 2; i++) {
                if (r == 99)
                    vms_core_invlpg(f[i].c, va);
                else if (r == 98)
                    vms_core_write_cr3(f[i].c, f[i].pt.root);
                res[i] = xl(&f[i], va, k, &pa[i], NULL);
            }
            diffs += res[0] != res[1] || pa[0] != pa[1];
        }
        CHECK_EQ(diffs, 0);
        vms_strbuf sb[2];
        for (int i = 0; i < 2; i++) {
            vms_strbuf_init(&sb[i], NULL);
            vms_machine_stats_json(f[i].m, &sb[i]);
        }
        CHECK_STR(vms_strbuf_str(&sb[0]), vms_strbuf_str(&sb[1]));
        for (unsigned l = 0; l < VMS_TLB_NLEVELS; l++) {
            vms_tlb *a = vms_core_tlb(f[0].c, l), *b = vms_core_tlb(f[1].c, l);
            CHECK_EQ(vms_tlb_count(a), vms_tlb_count(b));
            unsigned same = 0;
            for (unsigned i = 0; i < vms_tlb_count(a); i++) {
                vms_tlb_entry_info ea, eb;
                vms_tlb_entry(a, i, &ea);
                vms_tlb_entry(b, i, &eb);
                same += ea.va == eb.va && ea.set == eb.set && ea.way == eb.way &&
                        ea.x.page_pa == eb.x.page_pa && ea.x.dirty == eb.x.dirty;
            }
            CHECK_EQ(same, vms_tlb_count(a));
        }
        for (int i = 0; i < 2; i++) {
            vms_strbuf_free(&sb[i]);
            vms_machine_destroy(f[i].m);
        }
    }
}

/* One random reference of the batch test: mostly on the current page, some crossing into
 * the next, a few on the 2 MiB page. */
/* Pages of the batch test: more than the L1 dTLB holds, so that replacement matters. */
#define BATCH_PAGES 160

static vms_ref batch_ref(vms_rng *g, uint64_t *page)
{
    unsigned r = (unsigned)vms_rng_below(g, 100);
    if (r < 20)
        *page = vms_rng_below(g, BATCH_PAGES);
    vms_ref x = {.kind = (uint8_t)vms_rng_below(g, 3), .len = 1u << vms_rng_below(g, 4)};
    if (r < 3)
        x.va = UINT64_C(0x40000000) + (vms_rng_below(g, 512) << 12) + vms_rng_below(g, 4088);
    else if (r < 6)
        x.va = (*page << 12) + 4096 - 3; /* crosses into the next page */
    else
        x.va = (*page << 12) + (vms_rng_below(g, 512) << 3);
    return x;
}

/*
 * vms_core_access_batch (memo on: its plain-hit path; walks through the fused x86-64 walk
 * and fills) against vms_core_access reference by reference (memo off, walks on the
 * plain path: walk_plain), on twin machines under every TLB policy: between batches the
 * test changes what the memo's "allowed kinds" fold in — PKRU, CR0.WP, EFER.NXE, the
 * privilege level — and what the TLBs cache: PTE rights and D bits with and without
 * INVLPG (stale entries are the model), unmaps, CR3 loads, INVPCID. Every batch must stop
 * at the same reference with the same fault, and at the end every counter and every TLB
 * entry must agree. Twice: on the skylake geometry, and with every L1 partition fully
 * associative (one set), where memo slots share a set and a touch of one makes the others
 * stale. (Each invalidation of the batch's keys and of the memo's freshness — at the
 * batch's start, at a new memo, at every memo clear, when a slot goes stale — was removed
 * on purpose once: this test fails.)
 */
static void test_batch_exact(void)
{
    static const char *const pols[] = {"lru", "plru", "fifo", "random"};
    for (unsigned pi = 0; pi < 8; pi++) {
        fixture f[2];
        vms_machine_config cfg;
        preset("skylake", &cfg);
        cfg.ncores = 1;
        set_policy(&cfg.mmu.l1i, pols[pi % 4]);
        set_policy(&cfg.mmu.l1d, pols[pi % 4]);
        set_policy(&cfg.mmu.l2, pols[pi % 4]);
        for (unsigned p = 0; pi >= 4 && p < cfg.mmu.l1d.nparts; p++)
            cfg.mmu.l1d.part[p].sets = 1;
        for (unsigned p = 0; pi >= 4 && p < cfg.mmu.l1i.nparts; p++)
            cfg.mmu.l1i.part[p].sets = 1;
        vms_rng g;
        vms_rng_seed(&g, th_seed * 31 + pi);
        bool ok = true;
        uint64_t flags[BATCH_PAGES + 1];
        for (unsigned pg = 0; pg <= BATCH_PAGES; pg++) /* rights, keys; the last never mapped */
            flags[pg] = VMS_PTE_US | (vms_rng_below(&g, 4) ? VMS_PTE_RW : 0) |
                        (vms_rng_below(&g, 5) ? 0 : VMS_PTE_XD) |
                        (vms_rng_below(&g, 4) << VMS_PTE_PKEY_SHIFT);
        for (int i = 0; i < 2; i++) {
            ok = ok && fx_init(&f[i], &cfg);
            ok = ok &&
                 vms_core_write_cr4(f[i].c, vms_core_regs(f[i].c)->cr4 | VMS_CR4_PKE) == VMS_OK;
            for (uint64_t pg = 0; ok && pg < BATCH_PAGES; pg++)
                ok = vms_pt_map(&f[i].pt, pg << 12, UINT64_C(0x4000000) + (pg << 12), VMS_PG_4K,
                                flags[pg], NULL) == VMS_OK;
            ok = ok && vms_pt_map(&f[i].pt, UINT64_C(0x40000000), UINT64_C(0x8000000), VMS_PG_2M,
                                  USER_RW, NULL) == VMS_OK;
        }
        REQUIRE_VOID(ok);
        for (unsigned l = 0; l < VMS_TLB_NLEVELS; l++)
            vms_tlb_set_memo(vms_core_tlb(f[1].c, l), false);
        f[1].c->walk_plain = true; /* the traced walker and the plain fills (mmu.c) */
        uint64_t page = 0;
        unsigned diffs = 0, faults = 0, batches = 0;
        for (int step = 0; step < 6000; step++) {
            unsigned r = (unsigned)vms_rng_below(&g, 100);
            uint64_t pg = vms_rng_below(&g, BATCH_PAGES), va = pg << 12;
            uint32_t pkru = (uint32_t)vms_rng_below(&g, 256);
            bool flag = vms_rng_below(&g, 2);
            for (int i = 0; i < 2 && r < 30; i++) {
                vms_core *c = f[i].c;
                const vms_regs *rg = vms_core_regs(c);
                if (r < 5) {
                    vms_core_write_pkru(c, pkru);
                } else if (r < 7) {
                    vms_core_set_user(c, flag);
                } else if (r < 9) {
                    ok = ok && vms_core_write_cr0(c, flag ? rg->cr0 | VMS_CR0_WP
                                                          : rg->cr0 & ~VMS_CR0_WP) == VMS_OK;
                } else if (r < 11) {
                    vms_core_write_efer(c,
                                        flag ? rg->efer | VMS_EFER_NXE : rg->efer & ~VMS_EFER_NXE);
                } else if (r < 17) { /* rights or D change, invalidated half the time */
                    uint64_t set = flag ? VMS_PTE_RW : 0, clear = flag ? 0 : VMS_PTE_RW | VMS_PTE_D;
                    ok = ok && vms_pt_protect(&f[i].pt, va, set, clear, NULL) == VMS_OK;
                    if (r & 1)
                        vms_core_invlpg(c, va);
                } else if (r < 20) { /* an unmap and a remap */
                    vms_pt_unmap(&f[i].pt, va, false, NULL);
                    vms_core_invlpg(c, va);
                    ok = ok && vms_pt_map(&f[i].pt, va, UINT64_C(0x4000000) + (pg << 12), VMS_PG_4K,
                                          flags[pg], NULL) == VMS_OK;
                } else if (r < 23) {
                    vms_core_write_cr3(c, f[i].pt.root);
                } else if (r < 26) {
                    ok = ok && vms_core_invpcid(c, flag ? VMS_INVPCID_ALL_GLOBAL : VMS_INVPCID_ADDR,
                                                0, va) == VMS_OK;
                } else {
                    vms_core_invlpg(c, va);
                }
            }
            if (r < 30)
                continue;
            vms_ref refs[32];
            size_t n = 1 + (size_t)vms_rng_below(&g, 32);
            for (size_t j = 0; j < n; j++)
                refs[j] = batch_ref(&g, &page);
            batches++;
            size_t at = 0; /* run both until the end, skipping faulting references */
            while (at < n) {
                vms_fault fa = {0};
                size_t ran = vms_core_access_batch(f[0].c, refs + at, n - at, &fa);
                size_t j = at;
                vms_access_result rb = {.ok = true};
                for (; j < n; j++) {
                    rb = vms_core_access(f[1].c, refs[j].va, (vms_access_kind)refs[j].kind, NULL,
                                         refs[j].len);
                    if (!rb.ok)
                        break;
                }
                diffs += at + ran != j;
                if (j < n) {
                    faults++;
                    diffs += fa.kind != rb.fault.kind || fa.va != rb.fault.va ||
                             fa.error_code != rb.fault.error_code;
                }
                at = (at + ran > j ? at + ran : j) + 1;
            }
        }
        REQUIRE_VOID(ok);
        CHECK_EQ(diffs, 0);
        CHECK(faults > 100 && batches > 3000); /* the stream exercised both outcomes */
        vms_strbuf sb[2];
        for (int i = 0; i < 2; i++) {
            vms_strbuf_init(&sb[i], NULL);
            vms_machine_stats_json(f[i].m, &sb[i]);
        }
        CHECK_STR(vms_strbuf_str(&sb[0]), vms_strbuf_str(&sb[1]));
        for (unsigned l = 0; l < VMS_TLB_NLEVELS; l++) {
            vms_tlb *a = vms_core_tlb(f[0].c, l), *b = vms_core_tlb(f[1].c, l);
            CHECK_EQ(vms_tlb_count(a), vms_tlb_count(b));
            unsigned same = 0;
            for (unsigned i = 0; i < vms_tlb_count(a); i++) {
                vms_tlb_entry_info ea, eb;
                vms_tlb_entry(a, i, &ea);
                vms_tlb_entry(b, i, &eb);
                same += ea.va == eb.va && ea.set == eb.set && ea.way == eb.way &&
                        ea.x.page_pa == eb.x.page_pa && ea.x.dirty == eb.x.dirty &&
                        ea.x.rw == eb.x.rw && ea.x.pkey == eb.x.pkey;
            }
            CHECK_EQ(same, vms_tlb_count(a));
        }
        for (int i = 0; i < 2; i++) {
            vms_strbuf_free(&sb[i]);
            vms_machine_destroy(f[i].m);
        }
    }
}

/*
 * The batch's keys and the memo's freshness on crafted sequences, each run as one batch on
 * a machine with the memo and reference by reference on its twin without: a fully
 * associative 4-way LRU L1 dTLB (every memo slot in the one set), then fills of new
 * pages, so that a touch the batch skipped changes which entry is evicted. Each sequence
 * targets one invalidation (and fails without it):
 *  - a slot made again for another page drops the keys of the page it held (A read, E
 *    write: E takes A's slot; A read again must probe and touch A);
 *  - a touch through one slot makes the slots of the same set stale (A, B, A: the second
 *    A touches A's way, which B's touch made older).
 */
static void test_batch_keys_crafted(void)
{
    /* (A and E share a memo slot: VMSI_TLB_MEMO slots, direct-mapped by 4 KiB page) */
    const uint64_t A = 0x10000, B = 0x11000, C = 0x12000, D = 0x13000,
                   E = A + ((uint64_t)VMSI_TLB_MEMO << 12), F = 0x15000;
    const uint64_t pages[6] = {A, B, C, D, E, F};
    static const vms_ref seqs[][8] = {
        {{A, 8, VMS_ACC_READ, {0}},
         {E, 8, VMS_ACC_WRITE, {0}},
         {A, 8, VMS_ACC_READ, {0}},
         {B, 8, VMS_ACC_READ, {0}},
         {C, 8, VMS_ACC_READ, {0}},
         {D, 8, VMS_ACC_READ, {0}},
         {F, 8, VMS_ACC_READ, {0}},
         {A, 8, VMS_ACC_READ, {0}}},
        {{A, 8, VMS_ACC_READ, {0}},
         {B, 8, VMS_ACC_READ, {0}},
         {A, 8, VMS_ACC_READ, {0}},
         {C, 8, VMS_ACC_READ, {0}},
         {D, 8, VMS_ACC_READ, {0}},
         {F, 8, VMS_ACC_READ, {0}},
         {E, 8, VMS_ACC_READ, {0}},
         {A, 8, VMS_ACC_READ, {0}}},
    };
    for (unsigned q = 0; q < sizeof seqs / sizeof seqs[0]; q++) {
        fixture f[2];
        vms_machine_config cfg;
        preset("skylake", &cfg);
        cfg.ncores = 1;
        cfg.mmu.l1d.nparts = 1;
        cfg.mmu.l1d.part[0] = (vms_tlb_part_config){1u << VMS_PG_4K, 1, 4, "lru"};
        cfg.mmu.l2.nparts = 0; /* misses walk: the L1's contents are the whole story */
        bool ok = true;
        for (int i = 0; i < 2; i++) {
            ok = ok && fx_init(&f[i], &cfg);
            for (unsigned j = 0; ok && j < 6; j++)
                ok = vms_pt_map(&f[i].pt, pages[j], UINT64_C(0x4000000) + pages[j], VMS_PG_4K,
                                USER_RW | VMS_PTE_D, NULL) == VMS_OK;
        }
        REQUIRE_VOID(ok);
        for (unsigned l = 0; l < VMS_TLB_NLEVELS; l++)
            if (vms_core_tlb(f[1].c, l))
                vms_tlb_set_memo(vms_core_tlb(f[1].c, l), false);
        /* Warm both: A and E (and B) in the L1, every later reference of the batch a hit
         * or a fill, never a fault. */
        const vms_ref warm[3] = {
            {A, 8, VMS_ACC_READ, {0}}, {E, 8, VMS_ACC_WRITE, {0}}, {B, 8, VMS_ACC_READ, {0}}};
        vms_fault fa;
        CHECK_EQ(vms_core_access_batch(f[0].c, warm, 3, &fa), 3);
        CHECK_EQ(vms_core_access_batch(f[0].c, seqs[q], 8, &fa), 8);
        for (unsigned j = 0; j < 3; j++)
            CHECK(vms_core_access(f[1].c, warm[j].va, (vms_access_kind)warm[j].kind, NULL, 8).ok);
        for (unsigned j = 0; j < 8; j++)
            CHECK(vms_core_access(f[1].c, seqs[q][j].va, (vms_access_kind)seqs[q][j].kind, NULL, 8)
                      .ok);
        vms_tlb *ta = vms_core_tlb(f[0].c, VMS_TLB_L1D), *tb = vms_core_tlb(f[1].c, VMS_TLB_L1D);
        unsigned same = vms_tlb_count(ta) == vms_tlb_count(tb);
        for (unsigned i = 0; same && i < vms_tlb_count(ta); i++) {
            vms_tlb_entry_info ea, eb;
            vms_tlb_entry(ta, i, &ea);
            vms_tlb_entry(tb, i, &eb);
            same = ea.va == eb.va && ea.way == eb.way;
        }
        CHECK(same);
        vms_strbuf sb[2];
        for (int i = 0; i < 2; i++) {
            vms_strbuf_init(&sb[i], NULL);
            vms_machine_stats_json(f[i].m, &sb[i]);
        }
        CHECK_STR(vms_strbuf_str(&sb[0]), vms_strbuf_str(&sb[1]));
        for (int i = 0; i < 2; i++) {
            vms_strbuf_free(&sb[i]);
            vms_machine_destroy(f[i].m);
        }
    }
}

/*
 * The batch counts its plain hits by memo slot and learns each slot's page size with its
 * key (mmu.c): one batch where a slot holds a 4 KiB page's entry, then a 2 MiB page's
 * (another page number of the same slot), then the 4 KiB page's again, each hit a few
 * times by reads and writes, against the twin reference by reference (memo off). The
 * hits by size must agree: a count carried over to the next key, or the old size kept,
 * would not.
 */
static void test_batch_sizes_crafted(void)
{
    const uint64_t A = 0x10000, P = UINT64_C(0x40000000) + ((uint64_t)VMSI_TLB_MEMO << 12) * 3;
    _Static_assert(VMSI_TLB_MEMO * 3 < 512, "P stays inside the 2 MiB page");
    const vms_ref seq[] = {
        {A, 8, VMS_ACC_READ, {0}},      {A + 8, 8, VMS_ACC_READ, {0}},
        {A, 4, VMS_ACC_WRITE, {0}},     {A + 64, 8, VMS_ACC_WRITE, {0}},
        {P, 8, VMS_ACC_READ, {0}},      {P + 8, 8, VMS_ACC_READ, {0}},
        {P + 16, 8, VMS_ACC_READ, {0}}, {P, 8, VMS_ACC_WRITE, {0}},
        {P, 8, VMS_ACC_WRITE, {0}},     {A, 8, VMS_ACC_READ, {0}},
        {A + 8, 8, VMS_ACC_READ, {0}},  {A, 8, VMS_ACC_WRITE, {0}},
        {P, 8, VMS_ACC_READ, {0}},      {P + 8, 8, VMS_ACC_READ, {0}},
    };
    enum { NSEQ = sizeof seq / sizeof seq[0] };
    CHECK_EQ((A >> 12) % VMSI_TLB_MEMO, (P >> 12) % VMSI_TLB_MEMO); /* one slot */
    fixture f[2];
    vms_machine_config cfg;
    preset("skylake", &cfg);
    cfg.ncores = 1;
    bool ok = true;
    for (int i = 0; i < 2; i++) {
        ok = ok && fx_init(&f[i], &cfg);
        ok = ok && vms_pt_map(&f[i].pt, A, UINT64_C(0x4000000), VMS_PG_4K, USER_RW | VMS_PTE_D,
                              NULL) == VMS_OK;
        ok = ok && vms_pt_map(&f[i].pt, UINT64_C(0x40000000), UINT64_C(0x8000000), VMS_PG_2M,
                              USER_RW | VMS_PTE_D, NULL) == VMS_OK;
    }
    REQUIRE_VOID(ok);
    for (unsigned l = 0; l < VMS_TLB_NLEVELS; l++)
        if (vms_core_tlb(f[1].c, l))
            vms_tlb_set_memo(vms_core_tlb(f[1].c, l), false);
    for (int round = 0; round < 2; round++) { /* cold, then with both pages cached */
        vms_fault fa;
        CHECK_EQ(vms_core_access_batch(f[0].c, seq, NSEQ, &fa), NSEQ);
        for (unsigned j = 0; j < NSEQ; j++)
            CHECK(vms_core_access(f[1].c, seq[j].va, (vms_access_kind)seq[j].kind, NULL, seq[j].len)
                      .ok);
    }
    const vms_tlb_stats *sa = vms_tlb_get_stats(vms_core_tlb(f[0].c, VMS_TLB_L1D)),
                        *sb = vms_tlb_get_stats(vms_core_tlb(f[1].c, VMS_TLB_L1D));
    CHECK_EQ(sa->hits_by_size[VMS_PG_4K], sb->hits_by_size[VMS_PG_4K]);
    CHECK_EQ(sa->hits_by_size[VMS_PG_2M], sb->hits_by_size[VMS_PG_2M]);
    CHECK(sb->hits_by_size[VMS_PG_2M] >= 10 && sb->hits_by_size[VMS_PG_4K] >= 10);
    vms_strbuf sj[2];
    for (int i = 0; i < 2; i++) {
        vms_strbuf_init(&sj[i], NULL);
        vms_machine_stats_json(f[i].m, &sj[i]);
    }
    CHECK_STR(vms_strbuf_str(&sj[0]), vms_strbuf_str(&sj[1]));
    for (int i = 0; i < 2; i++) {
        vms_strbuf_free(&sj[i]);
        vms_machine_destroy(f[i].m);
    }
}

/*
 * A fresh memo slot made under one address space is no plain hit in another: with
 * CR4.PCIDE, a batch reads page A under PCID 1, CR3 switches to PCID 2 without a flush
 * (the slot stays valid and fresh: nothing changed the TLB), and the next batch reads A
 * again — a miss of the L1 TLB for PCID 2, not a hit of PCID 1's entry. Against the twin
 * reference by reference (memo off).
 */
static void test_batch_ctx_crafted(void)
{
    const uint64_t A = 0x10000;
    const vms_ref reads[3] = {
        {A, 8, VMS_ACC_READ, {0}}, {A + 8, 8, VMS_ACC_READ, {0}}, {A + 16, 8, VMS_ACC_READ, {0}}};
    fixture f[2];
    vms_machine_config cfg;
    preset("skylake", &cfg);
    cfg.ncores = 1;
    bool ok = true;
    for (int i = 0; i < 2; i++) {
        ok = ok && fx_init(&f[i], &cfg);
        ok = ok && vms_pt_map(&f[i].pt, A, UINT64_C(0x4000000), VMS_PG_4K, USER_RW | VMS_PTE_D,
                              NULL) == VMS_OK;
        vms_core_write_cr3(f[i].c, f[i].pt.root);
        ok = ok && vms_core_write_cr4(f[i].c, vms_core_regs(f[i].c)->cr4 | VMS_CR4_PCIDE) == VMS_OK;
        vms_core_write_cr3(f[i].c, f[i].pt.root | 1);
    }
    REQUIRE_VOID(ok);
    for (unsigned l = 0; l < VMS_TLB_NLEVELS; l++)
        if (vms_core_tlb(f[1].c, l))
            vms_tlb_set_memo(vms_core_tlb(f[1].c, l), false);
    for (int pcid = 1; pcid <= 2; pcid++) {
        for (int i = 0; i < 2; i++)
            vms_core_write_cr3(f[i].c, f[i].pt.root | (uint64_t)pcid | VMS_CR3_NOFLUSH);
        vms_fault fa;
        CHECK_EQ(vms_core_access_batch(f[0].c, reads, 3, &fa), 3);
        for (unsigned j = 0; j < 3; j++)
            CHECK(vms_core_access(f[1].c, reads[j].va, VMS_ACC_READ, NULL, 8).ok);
    }
    const vms_tlb_stats *sb = vms_tlb_get_stats(vms_core_tlb(f[1].c, VMS_TLB_L1D));
    CHECK_EQ(sb->misses, 2); /* A under each PCID */
    vms_strbuf sj[2];
    for (int i = 0; i < 2; i++) {
        vms_strbuf_init(&sj[i], NULL);
        vms_machine_stats_json(f[i].m, &sj[i]);
    }
    CHECK_STR(vms_strbuf_str(&sj[0]), vms_strbuf_str(&sj[1]));
    for (int i = 0; i < 2; i++) {
        vms_strbuf_free(&sj[i]);
        vms_machine_destroy(f[i].m);
    }
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "mmu");
    test_seed_examples();
    test_hierarchy_and_pwc();
    test_invalidation();
    test_dirty_faults_data();
    th_soak("VMS_MMU_SOAK", test_diff_invalidated);
    th_soak("VMS_MMU_SOAK", test_diff_stale);
    test_machine_config();
    test_memo_exact();
    test_batch_exact();
    test_batch_keys_crafted();
    test_batch_sizes_crafted();
    test_batch_ctx_crafted();
    return th_finish();
}
