/*
 * test_hashed.c — the hashed (PowerPC HPT) and inverted page-table designs
 * (vmsim/arch/hashed.h, src/arch/hashed/, src/os/hashfill.c):
 *
 *  - hand-computed examples: a VSID, its primary and secondary hash and groups, an
 *    entry's two dwords, the IPT's anchor; a search's references counted one per entry;
 *  - a full primary and secondary group: the 17th page evicts the primary group's slot
 *    0 (the cursor's first value), then slot 1; the evicted page misses (16 references);
 *  - a stale entry is a data leak: with the radix PTE gone and the TLB flushed, the
 *    entry alone still translates; the kernel's invalidation removes it;
 *  - a seeded differential test: random mappings, remappings and rights changes in radix
 *    tables, random accesses in both modes, each compared with a naive reference that
 *    re-reads the radix tables on every access (pa, or the fault and its error code);
 *  - the kernel workload (spawn, fork, COW, threads, mmap, munmap, mprotect, DONTNEED,
 *    swap under a tiny RAM) under each design against a byte model of every address
 *    space, every byte read compared, and after every operation every valid table entry
 *    checked against the radix tables: no entry may map what its PTE no longer does.
 */
#include <stdio.h>

#include "harness.h"
#include "vmsim/arch/hashed.h"
#include "vmsim/core.h"
#include "vmsim/frames.h"
#include "vmsim/kernel.h"
#include "vmsim/machine.h"
#include "vmsim/mman.h"
#include "vmsim/proc.h"
#include "vmsim/pt.h"
#include "vmsim/rng.h"

#define HTAB UINT64_C(0x4000000) /* the tests' table, 64 MiB up */

/* ---- a bare machine: radix tables by hand, the design's table at HTAB ---- */

typedef struct rig {
    vms_machine *m;
    vms_core *c;
    vms_bus *bus;
    vms_pt_bump bump;
    vms_pt pt;
    vms_design d;
    vms_hpt hpt;
    vms_ipt ipt;
    uint32_t cursor;
} rig;

static void rig_init(rig *r, vms_design d, const char *preset)
{
    memset(r, 0, sizeof *r);
    vms_machine_config mc;
    vms_machine_preset(preset, &mc, NULL);
    mc.ram_bytes = UINT64_C(256) << 20;
    mc.ncores = 1;
    mc.design = d;
    REQUIRE_VOID(vms_machine_create(NULL, &mc, &r->m, NULL) == VMS_OK);
    r->d = d;
    r->c = vms_machine_core(r->m, 0);
    r->bus = vms_machine_bus(r->m);
    r->bump = (vms_pt_bump){vms_machine_ram(r->m), UINT64_C(0x100000), 0, 0, 0};
    vms_pt_ops ops = vms_pt_bump_ops(&r->bump);
    REQUIRE_VOID(vms_pt_init(&r->pt, r->bus, 4, &ops, NULL) == VMS_OK);
    r->hpt = (vms_hpt){HTAB, VMS_HPT_MIN_GROUPS - 1, 48};
    /* 256 MiB of RAM: 65536 frames, 2^16 anchors after the entries. */
    r->ipt = (vms_ipt){HTAB, 65536, HTAB + 65536u * 16u, 16, 48};
    if (d == VMS_DESIGN_HASHED)
        vms_core_set_hpt(r->c, &r->hpt);
    else
        vms_core_set_ipt(r->c, &r->ipt);
    CHECK_EQ(vms_core_mmu_boot(r->c, r->pt.root, true), VMS_OK);
    vms_core_mmu_load_root(r->c, r->pt.root, 1, true); /* PCID 1: context 1 */
    vms_core_set_user(r->c, true);
}

static void rig_fini(rig *r)
{
    vms_machine_destroy(r->m);
}

/* The kernel's hash_page on the rig: the radix walk, then an insert. */
static bool fill(rig *r, uint64_t va, vms_access_kind kind)
{
    vms_regs regs = *vms_core_regs(r->c);
    regs.fmt = NULL;
    vms_walk_stats ws = {0};
    vms_xlate x;
    vms_fault f;
    if (!vms_walk(r->bus, NULL, &regs, va, kind, &x, &f, &ws, NULL))
        return false;
    uint64_t pa = vms_xlate_pa(&x, va) & ~UINT64_C(0xfff), ea = va & ~UINT64_C(0xfff);
    unsigned prot = (x.rw && x.dirty ? VMS_PGPROT_W : 0) | (x.us ? VMS_PGPROT_U : 0) |
                    (x.xd ? 0 : VMS_PGPROT_X);
    uint32_t ctx = vms_design_ctx(&regs, va);
    if (r->d == VMS_DESIGN_HASHED) {
        vms_hpt_slot s;
        CHECK_EQ(vms_hpt_insert(r->bus, &r->hpt, ctx, ea,
                                vms_hpt_mk_r(pa, prot, x.pkey, x.pcd, x.pwt), &r->cursor, &s),
                 VMS_OK);
    } else {
        vms_ipt_slot s;
        CHECK_EQ(vms_ipt_insert(r->bus, &r->ipt, ctx, ea, pa >> 12,
                                vms_ipt_mk_d0(&r->ipt, ea, prot, x.pkey, x.pcd, x.pwt), &s),
                 VMS_OK);
    }
    return true;
}

/* The kernel's invalidation after a radix PTE of va changed: the table, then the TLB. */
static void invalidate(rig *r, uint64_t va)
{
    uint32_t ctx = vms_design_ctx(vms_core_regs(r->c), va);
    if (r->d == VMS_DESIGN_HASHED)
        vms_hpt_invalidate(r->bus, &r->hpt, ctx, va);
    else
        vms_ipt_invalidate(r->bus, &r->ipt, ctx, va);
    vms_core_mmu_flush_page(r->c, va);
}

static uint64_t refs(rig *r)
{
    return vms_core_walk_stats(r->c)->mem_refs;
}

/* ---- hand-computed examples ---- */

static void test_hash_examples(void)
{
    /* Context 1, EA 0x12345000 (48-bit): ESID = EA >> 28 = 1, proto-VSID = 1 << 20 | 1 =
     * 0x100001 = 1048577; VSID = 1048577 * 12538073 = 12538073 * 2^20 + 12538073 =
     * 13147134972121 = 0xBF5_0E4F_50D9 (below 2^49 - 1: no reduction). Page index in the
     * segment = 0x2345; VSID ^ 0x2345 = 0xBF50E4F739C, its low 39 bits the primary hash
     * 0x750E4F739C; with 2048 groups (mask 0x7FF) the primary group is 0x39C, the
     * secondary ~hash & 0x7FF = 0x463. */
    CHECK_EQ(vms_hpt_vsid(1, 0x12345000, 48), UINT64_C(13147134972121));
    CHECK_EQ(vms_hpt_vsid(1, 0x12345000, 48), UINT64_C(0xBF50E4F50D9));
    uint64_t h = vms_hpt_hash(UINT64_C(0xBF50E4F50D9), 0x12345000);
    CHECK_EQ(h, UINT64_C(0x750E4F739C));
    vms_hpt t = {HTAB, 0x7FF, 48};
    CHECK_EQ(vms_hpt_group_pa(&t, h, false), HTAB + 0x39Cu * 128u);
    CHECK_EQ(vms_hpt_group_pa(&t, h, true), HTAB + 0x463u * 128u);
    /* dword 0: AVA = VA[77:23] = VSID << 5 | EA[27:23] (0x12345000 >> 23 & 31 = 4),
     * shifted to bit 7, V = 1; the secondary placement sets H (bit 1). */
    uint64_t ava = UINT64_C(0xBF50E4F50D9) << 5 | 4;
    CHECK_EQ(vms_hpt_mk_v(UINT64_C(0xBF50E4F50D9), 0x12345000, false), ava << 7 | 1);
    CHECK_EQ(vms_hpt_mk_v(UINT64_C(0xBF50E4F50D9), 0x12345000, true), ava << 7 | 3);
    /* dword 1 of a user read-write page at 0x8A3000: RPN, M, PP = 10, no N (executable). */
    CHECK_EQ(vms_hpt_mk_r(0x8A3000, VMS_PGPROT_U | VMS_PGPROT_W | VMS_PGPROT_X, 0, false, false),
             UINT64_C(0x8A3000) | VMS_HPTE_R_M | 2);
    /* A kernel read-only no-execute page: PP0 | PP = 110, N. */
    CHECK_EQ(vms_hpt_mk_r(0x5000, 0, 0, false, false),
             UINT64_C(0x5000) | VMS_HPTE_R_PP0 | 2 | VMS_HPTE_R_N | VMS_HPTE_R_M);
    /* The entry gives back its context and EA from where it sits (group 0x39C). */
    uint32_t ctx;
    uint64_t ea;
    vms_hpt_entry_va(&t, 0x39C, ava << 7 | 1, &ctx, &ea);
    CHECK_EQ(ctx, 1);
    CHECK_EQ(ea, 0x12345000);
    vms_hpt_entry_va(&t, 0x463, ava << 7 | 3, &ctx, &ea);
    CHECK_EQ(ea, 0x12345000);
    /* The kernel half is context 0 and comes back sign-extended. */
    uint64_t kva = UINT64_C(0xffff888000123000);
    uint64_t kv = vms_hpt_vsid(0, kva, 48), kh = vms_hpt_hash(kv, kva);
    vms_hpt_entry_va(&t, kh & 0x7FF, vms_hpt_mk_v(kv, kva, false), &ctx, &ea);
    CHECK_EQ(ctx, 0);
    CHECK_EQ(ea, kva);
    /* 57-bit EAs: a PCID of 4095 and the top segment still map 1:1 (41-bit proto). */
    uint64_t v57 = vms_hpt_vsid(4095, UINT64_C(0x00fffffff0000000), 57);
    vms_hpt t57 = {HTAB, 0x7FF, 57};
    uint64_t h57 = vms_hpt_hash(v57, UINT64_C(0x00fffffff0000000));
    vms_hpt_entry_va(&t57, h57 & 0x7FF, vms_hpt_mk_v(v57, UINT64_C(0x00fffffff0000000), false),
                     &ctx, &ea);
    CHECK_EQ(ctx, 4095);
    CHECK_EQ(ea, UINT64_C(0x00fffffff0000000));

    /* The IPT's anchor: VPN = 0x12345, x = VPN ^ 1 << 45 = 0x200000012345;
     * x * 0x9E3779B97F4A7C15 mod 2^64 = 0x03D44AB0FA1F50A9, top 16 bits 0x3D4. */
    vms_ipt it = {HTAB, 65536, HTAB + 65536u * 16u, 16, 48};
    CHECK_EQ(vms_ipt_hash(&it, 1, 0x12345000), 0x3D4);
    CHECK_EQ(vms_ipt_mk_d0(&it, 0x12345000, VMS_PGPROT_U | VMS_PGPROT_W, 3, false, false),
             VMS_IPTE_V | UINT64_C(0x12345000) | VMS_IPTE_RW | VMS_IPTE_US | VMS_IPTE_XD |
                 UINT64_C(3) << 7);
}

/* One search, narrated by its references: a hit in the primary group's slot 0 reads one
 * entry; a miss reads both groups, 16. The walk sets R, and C on a write. */
static void test_search_refs(void)
{
    rig r;
    rig_init(&r, VMS_DESIGN_HASHED, "tiny");
    CHECK_EQ(vms_pt_map(&r.pt, 0x12345000, 0x8A3000, VMS_PG_4K, VMS_PTE_RW | VMS_PTE_US, NULL),
             VMS_OK);
    vms_xlate x;
    vms_fault f;
    uint64_t pa, r0 = refs(&r);
    CHECK(!vms_core_translate(r.c, 0x12345678, VMS_ACC_READ, &x, &pa, &f, NULL));
    CHECK_EQ(refs(&r) - r0, 16);
    CHECK_EQ(f.kind, VMS_FAULT_PF);
    CHECK_EQ(f.error_code, VMS_PFERR_U); /* P = 0: not found */
    CHECK(fill(&r, 0x12345678, VMS_ACC_READ));
    r0 = refs(&r);
    vms_walk_trace tr;
    CHECK(vms_core_translate(r.c, 0x12345678, VMS_ACC_READ, &x, &pa, &f, &tr));
    CHECK_EQ(pa, 0x8A3678);
    CHECK_EQ(refs(&r) - r0, 1);
    CHECK_EQ(tr.nsteps, 1);
    CHECK_EQ(tr.step[0].ptep, HTAB + 0x39Cu * 128u); /* the hand-computed group, slot 0 */
    uint64_t rw = 0;
    vms_bus_read64(r.bus, HTAB + 0x39Cu * 128u + 8, &rw);
    CHECK(rw & VMS_HPTE_R_R);
    CHECK(!(rw & VMS_HPTE_R_C));
    /* The radix PTE was clean: the entry is read-only (a store faults, P = 1). */
    CHECK(!x.rw);
    CHECK(!vms_core_translate(r.c, 0x12345678, VMS_ACC_WRITE, &x, &pa, &f, NULL));
    CHECK_EQ(f.error_code, VMS_PFERR_P | VMS_PFERR_W | VMS_PFERR_U);
    CHECK(fill(&r, 0x12345678, VMS_ACC_WRITE)); /* sets D in the radix PTE: now writable */
    CHECK(vms_core_translate(r.c, 0x12345678, VMS_ACC_WRITE, &x, &pa, &f, NULL));
    vms_bus_read64(r.bus, HTAB + 0x39Cu * 128u + 8, &rw);
    CHECK(rw & VMS_HPTE_R_C);
    uint64_t pte = 0;
    CHECK(vms_pt_lookup(&r.pt, 0x12345000, &pte, NULL, NULL));
    CHECK((pte & VMS_PTE_D) && (pte & VMS_PTE_A));
    rig_fini(&r);

    /* The IPT: the anchor, then the chain's one entry: 2 references; frame 0x8A3's entry. */
    rig_init(&r, VMS_DESIGN_INVERTED, "tiny");
    CHECK_EQ(vms_pt_map(&r.pt, 0x12345000, 0x8A3000, VMS_PG_4K, VMS_PTE_RW | VMS_PTE_US, NULL),
             VMS_OK);
    r0 = refs(&r);
    CHECK(!vms_core_translate(r.c, 0x12345678, VMS_ACC_READ, &x, &pa, &f, NULL));
    CHECK_EQ(refs(&r) - r0, 1); /* an empty anchor */
    CHECK(fill(&r, 0x12345678, VMS_ACC_READ));
    r0 = refs(&r);
    CHECK(vms_core_translate(r.c, 0x12345678, VMS_ACC_READ, &x, &pa, &f, &tr));
    CHECK_EQ(pa, 0x8A3678);
    CHECK_EQ(refs(&r) - r0, 2);
    CHECK_EQ(tr.nsteps, 2);
    CHECK_EQ(tr.step[0].ptep, (HTAB + 65536u * 16u + 0x3D4u * 4u) & ~UINT64_C(7));
    CHECK_EQ(tr.step[1].ptep, HTAB + 0x8A3u * 16u);
    rig_fini(&r);
}

/* 17 pages of one segment whose page indices differ only above the group mask share
 * their primary (and secondary) group: 8 fill the primary, 8 the secondary, the 17th
 * evicts the primary group's slot 0 (the cursor starts at 0), the 18th slot 1. */
static void test_group_full(void)
{
    rig r;
    rig_init(&r, VMS_DESIGN_HASHED, "tiny");
    uint64_t base = 0x10000000; /* segment 1 */
    uint64_t va[18];
    for (unsigned j = 0; j < 18; j++) {
        va[j] = base + (uint64_t)j * 2048u * 4096u;
        CHECK_EQ(vms_pt_map(&r.pt, va[j], 0x1000000 + j * 0x1000u, VMS_PG_4K, VMS_PTE_US, NULL),
                 VMS_OK);
    }
    uint64_t vsid = vms_hpt_vsid(1, base, 48), h = vms_hpt_hash(vsid, base);
    for (unsigned j = 1; j < 18; j++)
        CHECK_EQ(vms_hpt_hash(vms_hpt_vsid(1, va[j], 48), va[j]) & 0x7FF, h & 0x7FF);
    for (unsigned j = 0; j < 16; j++) {
        vms_hpt_slot s;
        CHECK_EQ(vms_hpt_insert(r.bus, &r.hpt, 1, va[j],
                                vms_hpt_mk_r(0x1000000 + j * 0x1000u, VMS_PGPROT_U, 0, 0, 0),
                                &r.cursor, &s),
                 VMS_OK);
        CHECK_EQ(s.secondary, j >= 8);
        CHECK_EQ(s.slot, j % 8);
        CHECK(!s.evicted);
    }
    vms_hpt_slot s;
    CHECK_EQ(vms_hpt_insert(r.bus, &r.hpt, 1, va[16],
                            vms_hpt_mk_r(0x1010000, VMS_PGPROT_U, 0, 0, 0), &r.cursor, &s),
             VMS_OK);
    CHECK(s.evicted && !s.secondary);
    CHECK_EQ(s.slot, 0);
    CHECK_EQ(s.evicted_ctx, 1);
    CHECK_EQ(s.evicted_ea, va[0]);
    CHECK_EQ(vms_hpt_insert(r.bus, &r.hpt, 1, va[17],
                            vms_hpt_mk_r(0x1011000, VMS_PGPROT_U, 0, 0, 0), &r.cursor, &s),
             VMS_OK);
    CHECK(s.evicted);
    CHECK_EQ(s.slot, 1);
    CHECK_EQ(s.evicted_ea, va[1]);
    /* Searches: va[16] in slot 0 (1 reference), va[8] secondary slot 0 (9), va[15]
     * secondary slot 7 (16, a hit), va[0] evicted (16, a miss). */
    vms_xlate x;
    vms_fault f;
    uint64_t pa, r0 = refs(&r);
    CHECK(vms_core_translate(r.c, va[16], VMS_ACC_READ, &x, &pa, &f, NULL));
    CHECK_EQ(pa, 0x1010000);
    CHECK_EQ(refs(&r) - r0, 1);
    r0 = refs(&r);
    CHECK(vms_core_translate(r.c, va[8], VMS_ACC_READ, &x, &pa, &f, NULL));
    CHECK_EQ(refs(&r) - r0, 9);
    r0 = refs(&r);
    CHECK(vms_core_translate(r.c, va[15], VMS_ACC_READ, &x, &pa, &f, NULL));
    CHECK_EQ(pa, 0x100F000);
    CHECK_EQ(refs(&r) - r0, 16);
    r0 = refs(&r);
    CHECK(!vms_core_translate(r.c, va[0], VMS_ACC_READ, &x, &pa, &f, NULL));
    CHECK_EQ(refs(&r) - r0, 16);
    /* Bolted entries (the kernel's ioremap pages) are passed by: with slots 2 and 3 of the
     * primary group bolted, the next eviction (cursor 2) takes slot 4. */
    for (unsigned j = 2; j < 4; j++) {
        uint64_t epa = HTAB + (h & 0x7FF) * 128u + j * 16u, v = 0;
        vms_bus_read64(r.bus, epa, &v);
        vms_bus_write64(r.bus, epa, v | VMS_HPTE_V_BOLTED);
    }
    uint64_t va18 = base + 18u * 2048u * 4096u;
    CHECK_EQ(vms_hpt_insert(r.bus, &r.hpt, 1, va18, vms_hpt_mk_r(0x1012000, VMS_PGPROT_U, 0, 0, 0),
                            &r.cursor, &s),
             VMS_OK);
    CHECK(s.evicted && !s.secondary);
    CHECK_EQ(s.slot, 4);
    CHECK_EQ(s.evicted_ea, va[4]);
    /* A scan of every context keeps bolted entries (flush_all); a context's scan does not. */
    CHECK_EQ(vms_hpt_invalidate_range(r.bus, &r.hpt, 0, true, base, base + 2 * 2048u * 4096u), 0);
    /* A whole-table scan finds the 16 live entries of context 1 in the segment. */
    CHECK_EQ(vms_hpt_invalidate_range(r.bus, &r.hpt, 2, false, 0, UINT64_MAX), 0);
    CHECK_EQ(vms_hpt_invalidate_range(r.bus, &r.hpt, 1, false, base, base + (1u << 28)), 16);
    rig_fini(&r);
}

/* A stale entry is a data leak: it keeps translating after its radix PTE is gone. */
static void test_stale_is_a_leak(vms_design d)
{
    rig r;
    rig_init(&r, d, "tiny");
    CHECK_EQ(vms_pt_map(&r.pt, 0x400000, 0x777000, VMS_PG_4K, VMS_PTE_US | VMS_PTE_RW, NULL),
             VMS_OK);
    CHECK(fill(&r, 0x400000, VMS_ACC_READ));
    vms_xlate x;
    vms_fault f;
    uint64_t pa;
    CHECK(vms_core_translate(r.c, 0x400010, VMS_ACC_READ, &x, &pa, &f, NULL));
    CHECK_EQ(vms_pt_unmap(&r.pt, 0x400000, false, NULL), VMS_OK);
    vms_core_mmu_flush_page(r.c, 0x400000); /* the TLB forgets: the table does not */
    CHECK(vms_core_translate(r.c, 0x400010, VMS_ACC_READ, &x, &pa, &f, NULL));
    CHECK_EQ(pa, 0x777010); /* the freed frame, still reachable */
    invalidate(&r, 0x400000);
    CHECK(!vms_core_translate(r.c, 0x400010, VMS_ACC_READ, &x, &pa, &f, NULL));
    CHECK_EQ(f.kind, VMS_FAULT_PF);
    rig_fini(&r);
}

/* ---- the seeded differential test ---- */

static uint64_t diff_va(vms_rng *g)
{
    /* Two segments; pages whose indices collide in a group (j * 2048) and neighbours. */
    uint64_t seg = 0x10000000u * (1 + vms_rng_below(g, 2));
    return seg + (vms_rng_below(g, 24) * 2048u + vms_rng_below(g, 3)) * 4096u;
}

static void diff_round(vms_design d, vms_rng *g, unsigned *compared, unsigned *faults)
{
    rig r;
    rig_init(&r, d, "skylake");
    for (unsigned op = 0; op < 3000; op++) {
        unsigned what = (unsigned)vms_rng_below(g, 10);
        uint64_t va = diff_va(g);
        if (what < 3) { /* map, or remap to another frame with other rights */
            uint64_t flags = (vms_rng_below(g, 2) ? VMS_PTE_RW : 0) |
                             (vms_rng_below(g, 4) ? VMS_PTE_US : 0) |
                             (vms_rng_below(g, 2) ? VMS_PTE_XD : 0);
            uint64_t frame = 0x1000000 + vms_rng_below(g, 4096) * 4096u;
            if (vms_pt_unmap(&r.pt, va, false, NULL) == VMS_OK)
                invalidate(&r, va);
            CHECK_EQ(vms_pt_map(&r.pt, va, frame, VMS_PG_4K, flags, NULL), VMS_OK);
        } else if (what < 4) {
            if (vms_pt_unmap(&r.pt, va, false, NULL) == VMS_OK)
                invalidate(&r, va);
        } else if (what < 5) { /* take write away, or give it */
            bool give = vms_rng_below(g, 2);
            if (vms_pt_protect(&r.pt, va, give ? VMS_PTE_RW : 0, give ? 0 : VMS_PTE_RW, NULL) ==
                    VMS_OK &&
                !give)
                invalidate(&r, va); /* an upgrade needs none: the stale entry only refaults */
        } else {                    /* an access, compared with the naive reference */
            vms_access_kind kind = (vms_access_kind)vms_rng_below(g, 3);
            vms_core_set_user(r.c, vms_rng_below(g, 5) != 0);
            uint64_t a = va + vms_rng_below(g, 4096);
            vms_regs ref = *vms_core_regs(r.c);
            ref.fmt = NULL;
            vms_walk_stats ws = {0};
            vms_xlate rx, x;
            vms_fault rf, f;
            bool rok = vms_walk(r.bus, NULL, &ref, a, kind, &rx, &rf, &ws, NULL);
            uint64_t pa = 0;
            bool ok = false;
            uint32_t code = 0;
            for (unsigned tries = 0; tries < 3; tries++) {
                if ((ok = vms_core_translate(r.c, a, kind, &x, &pa, &f, NULL)))
                    break;
                code = f.error_code;
                if (f.kind != VMS_FAULT_PF || !fill(&r, a, kind))
                    break;
            }
            CHECK_EQ(ok, rok);
            if (ok && rok)
                CHECK_EQ(pa, vms_xlate_pa(&rx, a));
            if (!ok && !rok) {
                /* The system's last fault came from the design's table: a rights fault
                 * of an entry (P = 1) must be the radix tables' fault exactly (an entry
                 * never allows less than its PTE, and never more); a miss (P = 0) is the
                 * same access (W, U, I) that the radix tables refuse, not present or not
                 * allowed (the kernel then handles it with the radix walk's code). */
                if (code & VMS_PFERR_P)
                    CHECK_EQ(code, rf.error_code);
                else
                    CHECK_EQ(code & ~VMS_PFERR_P, rf.error_code & ~(VMS_PFERR_P | VMS_PFERR_PK));
                (*faults)++;
            }
            (*compared)++;
        }
    }
    rig_fini(&r);
}

static void test_differential(void)
{
    for (unsigned d = VMS_DESIGN_HASHED; d <= VMS_DESIGN_INVERTED; d++) {
        unsigned compared = 0, faults = 0;
        for (unsigned s = 0; th_soak_more("VMS_HASHED_SOAK", 3, s); s++) {
            vms_rng g;
            vms_rng_seed(&g, th_seed * 7919u + s * 31u + d);
            diff_round((vms_design)d, &g, &compared, &faults);
        }
        fprintf(stderr, "differential %s: %u accesses compared, %u faults\n",
                vms_design_name((vms_design)d), compared, faults);
        CHECK(compared > 1000);
        CHECK(faults > 50);
    }
}

/* ---- the kernel workload ---- */

#define ARENA  UINT64_C(0x10000000)
#define NPAGES 48u
#define MAXP   5

typedef struct model {
    int refs;
    uint8_t bytes[NPAGES * 4096];
    int8_t prot[NPAGES]; /* -1: unmapped */
} model;

typedef struct sproc {
    vms_task *task[2];
    unsigned ntask;
    model *mm;
    bool hog; /* HOG_PAGES pages at HOG hold their known words (memory pressure) */
} sproc;

#define HOG       UINT64_C(0x40000000)
#define HOG_PAGES 160u

typedef struct world {
    vms_kernel *k;
    vms_machine *m;
    vms_design d;
    bool swap;
    vms_rng r;
    sproc p[MAXP];
    unsigned np;
    unsigned long ops, reads, segvs, entries_checked;
} world;

static uint64_t rnd(world *w, uint64_t n)
{
    return vms_rng_below(&w->r, n);
}

static model *model_new(void)
{
    model *m = calloc(1, sizeof *m);
    m->refs = 1;
    memset(m->prot, -1, sizeof m->prot);
    return m;
}

static void drop_proc(world *w, unsigned i)
{
    vms_proc_exit(w->k, w->p[i].task[0]);
    free(w->p[i].mm);
    w->p[i] = w->p[--w->np];
}

/* Does the radix tree at root still give (va -> frame) with at least these rights? */
static bool radix_allows(world *w, uint64_t root, uint64_t va, uint64_t frame, bool rw, bool us,
                         bool x)
{
    vms_pt pt = {vms_machine_bus(w->m), vms_machine_format(w->m), 4, root, {0}};
    uint64_t pte = 0;
    vms_pgsize size;
    if (!vms_pt_lookup(&pt, va, &pte, NULL, &size))
        return false;
    uint64_t pa =
        (vms_pte_addr(pte) & ~(vms_pgsize_bytes(size) - 1)) | (va & (vms_pgsize_bytes(size) - 1));
    if ((pa >> 12) != frame)
        return false;
    if (rw && !((pte & VMS_PTE_RW) && (pte & VMS_PTE_D)))
        return false;
    if (us && !(pte & VMS_PTE_US))
        return false;
    return !(x && (pte & VMS_PTE_XD));
}

/* The root of the live address space with PCID ctx, or 0. */
static uint64_t root_of(world *w, uint32_t ctx)
{
    for (unsigned i = 0; i < w->np; i++) {
        vms_task_info ti;
        vms_task_get_info(w->p[i].task[0], &ti);
        if (ti.pcid == ctx)
            return ti.cr3 & VMS_CR3_ADDR_MASK;
    }
    return 0;
}

/* Every valid entry of the design's table maps what its radix PTE maps. */
static bool check_table(world *w)
{
    vms_core *c = vms_machine_core(w->m, 0);
    vms_bus *bus = vms_machine_bus(w->m);
    unsigned bad = 0;
    if (w->d == VMS_DESIGN_HASHED) {
        vms_hpt t;
        vms_core_get_hpt(c, &t);
        for (uint64_t g = 0; g <= t.mask; g++)
            for (unsigned s = 0; s < 8; s++) {
                uint64_t v = 0, rr = 0, pa = t.base + g * 128 + s * 16u;
                vms_bus_read64(bus, pa, &v);
                if (!(v & VMS_HPTE_V_VALID))
                    continue;
                vms_bus_read64(bus, pa + 8, &rr);
                uint32_t ctx;
                uint64_t ea;
                vms_hpt_entry_va(&t, g, v, &ctx, &ea);
                unsigned pp = (unsigned)(rr & 3) | ((rr >> 63) ? 4u : 0u);
                uint64_t root = root_of(w, ctx);
                w->entries_checked++;
                if (!root ||
                    !radix_allows(w, root, ea, (rr & VMS_HPTE_R_RPN) >> 12, pp == 0 || pp == 2,
                                  pp >= 1 && pp <= 3, !(rr & VMS_HPTE_R_N))) {
                    if (bad++ < 5)
                        fprintf(stderr, "op %lu: stale HPTE ctx %u ea %llx -> %llx\n", w->ops, ctx,
                                (unsigned long long)ea, (unsigned long long)(rr >> 12));
                }
            }
    } else {
        vms_ipt t;
        vms_core_get_ipt(c, &t);
        /* The chains: every link inside the table, every entry on its own anchor's chain,
         * no chain longer than VMS_IPT_MAX_CHAIN, and every valid entry on one. */
        uint64_t linked = 0, valid = 0;
        for (uint64_t h = 0; h < (UINT64_C(1) << t.hat_bits); h++) {
            uint32_t link = 0;
            vms_bus_read(bus, t.hat + h * 4, &link, 4);
            for (unsigned n = 0; link; n++) {
                uint64_t d0 = 0, d1 = 0;
                if (link - 1u >= t.nframes || n >= VMS_IPT_MAX_CHAIN) {
                    if (bad++ < 5)
                        fprintf(stderr, "op %lu: anchor %llx: bad chain (link %u, %u long)\n",
                                w->ops, (unsigned long long)h, link, n);
                    break;
                }
                vms_bus_read64(bus, t.base + (link - 1u) * 16u, &d0);
                vms_bus_read64(bus, t.base + (link - 1u) * 16u + 8, &d1);
                if (!(d0 & VMS_IPTE_V) ||
                    vms_ipt_hash(&t, (uint32_t)(d1 >> 32), d0 & VMS_IPTE_VPN) != h) {
                    if (bad++ < 5)
                        fprintf(stderr, "op %lu: anchor %llx: frame %u does not belong\n", w->ops,
                                (unsigned long long)h, link - 1u);
                    break;
                }
                linked++;
                link = (uint32_t)d1;
            }
        }
        for (uint64_t f = 0; f < t.nframes; f++) {
            uint64_t d0 = 0;
            vms_bus_read64(bus, t.base + f * 16, &d0);
            valid += (d0 & VMS_IPTE_V) != 0;
        }
        if (linked != valid && bad++ < 5)
            fprintf(stderr, "op %lu: %llu valid entries, %llu on chains\n", w->ops,
                    (unsigned long long)valid, (unsigned long long)linked);
        for (uint64_t f = 0; f < t.nframes; f++) {
            uint64_t d0 = 0, d1 = 0;
            vms_bus_read64(bus, t.base + f * 16, &d0);
            if (!(d0 & VMS_IPTE_V))
                continue;
            vms_bus_read64(bus, t.base + f * 16 + 8, &d1);
            uint64_t ea = d0 & VMS_IPTE_VPN;
            uint64_t root = root_of(w, (uint32_t)(d1 >> 32));
            w->entries_checked++;
            if (!root || !radix_allows(w, root, ea, f, d0 & VMS_IPTE_RW, d0 & VMS_IPTE_US,
                                       !(d0 & VMS_IPTE_XD))) {
                if (bad++ < 5)
                    fprintf(stderr, "op %lu: stale IPT entry of frame %llx ea %llx\n", w->ops,
                            (unsigned long long)f, (unsigned long long)ea);
            }
        }
    }
    CHECK_EQ(bad, 0);
    return bad == 0;
}

static void op_spawn(world *w)
{
    if (w->np == MAXP)
        return;
    sproc *p = &w->p[w->np];
    memset(p, 0, sizeof *p);
    CHECK_EQ(vms_proc_spawn(w->k, "hash", (unsigned)rnd(w, 2), &p->task[0], NULL), VMS_OK);
    p->ntask = 1;
    p->mm = model_new();
    w->np++;
}

static void op_fork(world *w, unsigned i)
{
    if (w->np == MAXP)
        return;
    sproc *c = &w->p[w->np];
    memset(c, 0, sizeof *c);
    CHECK_EQ(vms_proc_fork(w->k, w->p[i].task[rnd(w, w->p[i].ntask)], &c->task[0], NULL), VMS_OK);
    c->ntask = 1;
    c->mm = model_new();
    memcpy(c->mm, w->p[i].mm, sizeof *c->mm);
    c->mm->refs = 1;
    c->hog = w->p[i].hog;
    w->np++;
}

static void range(world *w, unsigned *a, unsigned *b)
{
    *a = (unsigned)rnd(w, NPAGES);
    *b = *a + 1 + (unsigned)rnd(w, 12);
    if (*b > NPAGES)
        *b = NPAGES;
}

static void op_mmap(world *w, unsigned i)
{
    static const unsigned prots[] = {VMS_PROT_READ | VMS_PROT_WRITE, VMS_PROT_READ,
                                     VMS_PROT_READ | VMS_PROT_WRITE | VMS_PROT_EXEC};
    unsigned a, b, prot = prots[rnd(w, 3)];
    range(w, &a, &b);
    uint64_t va;
    CHECK_EQ(vms_sys_mmap(w->k, w->p[i].task[0], ARENA + a * 4096u, (b - a) * 4096u, prot,
                          VMS_MAP_PRIVATE | VMS_MAP_ANONYMOUS | VMS_MAP_FIXED, NULL, 0, &va, NULL),
             VMS_OK);
    memset(w->p[i].mm->bytes + a * 4096u, 0, (b - a) * 4096u);
    for (unsigned p = a; p < b; p++)
        w->p[i].mm->prot[p] = (int8_t)prot;
}

static void op_munmap(world *w, unsigned i)
{
    unsigned a, b;
    range(w, &a, &b);
    CHECK_EQ(vms_sys_munmap(w->k, w->p[i].task[0], ARENA + a * 4096u, (b - a) * 4096u, NULL),
             VMS_OK);
    memset(w->p[i].mm->bytes + a * 4096u, 0, (b - a) * 4096u);
    for (unsigned p = a; p < b; p++)
        w->p[i].mm->prot[p] = -1;
}

static void op_mprotect(world *w, unsigned i)
{
    unsigned a, b;
    range(w, &a, &b);
    unsigned prot = rnd(w, 2) ? VMS_PROT_READ : VMS_PROT_READ | VMS_PROT_WRITE;
    model *m = w->p[i].mm;
    for (unsigned p = a; p < b; p++)
        if (m->prot[p] < 0)
            return;
    CHECK_EQ(
        vms_sys_mprotect(w->k, w->p[i].task[0], ARENA + a * 4096u, (b - a) * 4096u, prot, NULL),
        VMS_OK);
    for (unsigned p = a; p < b; p++)
        m->prot[p] = (int8_t)prot;
}

static void op_dontneed(world *w, unsigned i)
{
    unsigned a, b;
    range(w, &a, &b);
    model *m = w->p[i].mm;
    for (unsigned p = a; p < b; p++)
        if (m->prot[p] < 0)
            return;
    CHECK_EQ(vms_sys_madvise(w->k, w->p[i].task[0], ARENA + a * 4096u, (b - a) * 4096u,
                             VMS_MADV_DONTNEED, NULL),
             VMS_OK);
    memset(m->bytes + a * 4096u, 0, (b - a) * 4096u);
}

static void op_access(world *w, unsigned i, bool write)
{
    sproc *p = &w->p[i];
    model *m = p->mm;
    unsigned cand[NPAGES], nc = 0;
    for (unsigned pg = 0; pg < NPAGES; pg++)
        if (m->prot[pg] > 0 && (!write || (m->prot[pg] & VMS_PROT_WRITE)))
            cand[nc++] = pg;
    uint64_t off = (nc && rnd(w, 16) != 0) ? cand[rnd(w, nc)] * UINT64_C(4096) + rnd(w, 4096)
                                           : rnd(w, NPAGES * 4096u - 1);
    size_t len = 1 + (size_t)rnd(w, rnd(w, 4) == 0 ? 2 * 4096 : 64);
    if (off + len > NPAGES * 4096u)
        len = NPAGES * 4096u - off;
    bool ok = true;
    for (uint64_t pg = off / 4096; pg <= (off + len - 1) / 4096; pg++)
        ok &= write ? (m->prot[pg] >= 0 && (m->prot[pg] & VMS_PROT_WRITE)) : (m->prot[pg] > 0);
    static uint8_t buf[2 * 4096 + 64];
    for (size_t j = 0; j < len; j++)
        buf[j] = write ? (uint8_t)rnd(w, 256) : 0xEE;
    vms_access_info info;
    vms_err err = {0};
    vms_status st = vms_proc_access(w->k, p->task[rnd(w, p->ntask)], ARENA + off,
                                    write ? VMS_ACC_WRITE : VMS_ACC_READ, buf, len, &info, &err);
    if (st != VMS_OK)
        fprintf(stderr, "op %lu: access: %s\n", w->ops, err.msg);
    CHECK_EQ(st, VMS_OK);
    CHECK_EQ(info.outcome, ok ? VMS_ACCESS_OK : VMS_ACCESS_SEGV);
    if (info.outcome != VMS_ACCESS_OK) {
        w->segvs++;
        drop_proc(w, i);
        return;
    }
    if (write) {
        memcpy(m->bytes + off, buf, len);
        return;
    }
    w->reads++;
    bool same = memcmp(m->bytes + off, buf, len) == 0;
    if (!same)
        fprintf(stderr, "op %lu: %s read of %zu bytes at %llx differs from the model\n", w->ops,
                vms_design_name(w->d), len, (unsigned long long)(ARENA + off));
    CHECK(same);
}

/* Map and fill the hog (first time), else read every word of it back: with 1 MiB of
 * RAM the hogs of a few processes swap. A process's hog is private, so fork copies it. */
static void op_hog(world *w, unsigned i)
{
    sproc *p = &w->p[i];
    if (!p->hog) {
        uint64_t va;
        CHECK_EQ(
            vms_sys_mmap(w->k, p->task[0], HOG, HOG_PAGES * 4096u, VMS_PROT_READ | VMS_PROT_WRITE,
                         VMS_MAP_PRIVATE | VMS_MAP_ANONYMOUS | VMS_MAP_FIXED, NULL, 0, &va, NULL),
            VMS_OK);
        for (unsigned pg = 0; pg < HOG_PAGES; pg++) {
            uint64_t v = pg * UINT64_C(0x9E3779B97F4A7C15);
            vms_access_info info;
            CHECK_EQ(vms_proc_access(w->k, p->task[0], HOG + pg * 4096u + (pg % 512) * 8,
                                     VMS_ACC_WRITE, &v, 8, &info, NULL),
                     VMS_OK);
            CHECK_EQ(info.outcome, VMS_ACCESS_OK);
        }
        p->hog = true;
        return;
    }
    unsigned wrong = 0;
    for (unsigned pg = 0; pg < HOG_PAGES; pg++) {
        uint64_t v = 0;
        vms_access_info info;
        CHECK_EQ(vms_proc_access(w->k, p->task[0], HOG + pg * 4096u + (pg % 512) * 8, VMS_ACC_READ,
                                 &v, 8, &info, NULL),
                 VMS_OK);
        wrong += info.outcome != VMS_ACCESS_OK || v != pg * UINT64_C(0x9E3779B97F4A7C15);
    }
    if (wrong)
        fprintf(stderr, "op %lu: %u hog words wrong\n", w->ops, wrong);
    CHECK_EQ(wrong, 0);
}

static void step(world *w)
{
    w->ops++;
    if (w->np == 0 || rnd(w, 40) == 0) {
        op_spawn(w);
        return;
    }
    unsigned i = (unsigned)rnd(w, w->np), r = (unsigned)rnd(w, 100);
    if (r < 5)
        op_fork(w, i);
    else if (r < 7 && w->p[i].ntask == 1) {
        CHECK_EQ(vms_proc_clone_thread(w->k, w->p[i].task[0], 1, &w->p[i].task[1], NULL), VMS_OK);
        w->p[i].ntask = 2;
    } else if (r < 9)
        drop_proc(w, i);
    else if (r < 20)
        op_mmap(w, i);
    else if (r < 26)
        op_munmap(w, i);
    else if (r < 32)
        op_mprotect(w, i);
    else if (r < 35)
        op_dontneed(w, i);
    else if (r < 38 && w->swap)
        op_hog(w, i);
    else
        op_access(w, i, r < 65);
}

static void workload(vms_design d, uint64_t seed, uint64_t ram, bool swap, unsigned nops)
{
    vms_machine_config mc;
    vms_machine_preset("skylake", &mc, NULL);
    mc.ram_bytes = ram;
    mc.ncores = 2;
    mc.seed = seed;
    mc.design = d;
    world w;
    memset(&w, 0, sizeof w);
    w.d = d;
    w.swap = swap;
    REQUIRE_VOID(vms_machine_create(NULL, &mc, &w.m, NULL) == VMS_OK);
    vms_kernel_config kc;
    vms_kernel_config_default(&kc);
    kc.seed = seed;
    kc.pcid = true;
    if (swap) {
        kc.swap_bytes = UINT64_C(16) << 20;
        kc.policy = "clock";
    }
    vms_rng_seed(&w.r, seed);
    vms_err err = {0};
    if (vms_kernel_create(w.m, &kc, &w.k, &err) != VMS_OK) {
        fprintf(stderr, "boot: %s\n", err.msg);
        CHECK(false);
        vms_machine_destroy(w.m);
        return;
    }
    uint64_t free0 = vms_frames_nfree(vms_kernel_frames(w.k));
    for (unsigned n = 0; n < nops; n++) {
        step(&w);
        vms_status st = vms_kernel_check(w.k, &err);
        if (st != VMS_OK)
            fprintf(stderr, "op %lu: %s\n", w.ops, err.msg);
        CHECK_EQ(st, VMS_OK);
        if (st != VMS_OK)
            break;
        if (!check_table(&w))
            break;
    }
    const vms_kernel_stats *ks = vms_kernel_get_stats(w.k);
    fprintf(stderr,
            "%s%s: %lu ops, %lu reads, %lu segvs, %lu entries checked; forks %llu cow %llu "
            "swap-outs %llu swap-ins %llu; hash faults %llu fills %llu evictions %llu "
            "invalidations %llu\n",
            vms_design_name(d), swap ? " (swap)" : "", w.ops, w.reads, w.segvs, w.entries_checked,
            (unsigned long long)ks->forks, (unsigned long long)ks->cow_copy,
            (unsigned long long)ks->pswpout, (unsigned long long)ks->pswpin,
            (unsigned long long)ks->hash_faults, (unsigned long long)ks->hash_fills,
            (unsigned long long)ks->hash_evictions, (unsigned long long)ks->hash_invalidations);
    CHECK(w.entries_checked > 0);
    CHECK(ks->hash_fills > 0 && ks->hash_invalidations > 0);
    if (swap)
        CHECK(ks->pswpout > 0 && ks->pswpin > 0);
    CHECK(ks->cow_copy > 0);
    while (w.np)
        drop_proc(&w, 0);
    check_table(&w);
    CHECK_EQ(vms_frames_nfree(vms_kernel_frames(w.k)), free0);
    vms_kernel_destroy(w.k);
    vms_machine_destroy(w.m);
}

static void test_kernel(void)
{
    for (unsigned d = VMS_DESIGN_HASHED; d <= VMS_DESIGN_INVERTED; d++) {
        workload((vms_design)d, th_seed * 1000003u + d, UINT64_C(64) << 20, false, 1500);
        /* 1 MiB of RAM: five processes of up to 48 pages swap. */
        workload((vms_design)d, th_seed * 1000003u + 17 + d, UINT64_C(1) << 20, true, 1500);
    }
}

/* A design needs PCIDs, and x86-64; the radix design is the default. */
static void test_config(void)
{
    vms_machine_config mc;
    vms_machine_preset("skylake", &mc, NULL);
    CHECK_EQ(mc.design, VMS_DESIGN_RADIX);
    mc.design = VMS_DESIGN_HASHED;
    mc.ram_bytes = UINT64_C(16) << 20;
    vms_machine *m;
    REQUIRE_VOID(vms_machine_create(NULL, &mc, &m, NULL) == VMS_OK);
    vms_kernel_config kc;
    vms_kernel_config_default(&kc);
    kc.pcid = false;
    vms_kernel *k;
    vms_err err = {0};
    CHECK_EQ(vms_kernel_create(m, &kc, &k, &err), VMS_ERR_INVAL);
    CHECK(strstr(err.msg, "kernel.pcid") != NULL);
    vms_machine_destroy(m);
    vms_machine_preset("sifive-u74", &mc, NULL);
    mc.design = VMS_DESIGN_INVERTED;
    CHECK_EQ(vms_machine_create(NULL, &mc, &m, &err), VMS_ERR_INVAL);
    vms_design d;
    CHECK(vms_design_parse("inverted", &d) && d == VMS_DESIGN_INVERTED);
    CHECK(!vms_design_parse("hash", &d));
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "hashed");
    test_hash_examples();
    test_search_refs();
    test_group_full();
    test_stale_is_a_leak(VMS_DESIGN_HASHED);
    test_stale_is_a_leak(VMS_DESIGN_INVERTED);
    test_differential();
    test_kernel();
    test_config();
    return th_finish();
}
