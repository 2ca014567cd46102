/*
 * test_swtlb.c — the software-managed TLB (MIPS style: src/arch/mips/tlb.c) and the
 * kernel's refill handler (src/os/tlbex.c).
 *
 *  - the registers and instructions: Random counts down between Wired and N-1, TLBWR
 *    never writes a wired entry, Wired restarts Random, local_flush_tlb_all keeps
 *    wired entries, TLBP/TLBR/TLBWI, G = EntryLo0.G AND EntryLo1.G, EHINV;
 *  - the TLB Modified exception: a store to a clean writable page sets D in the PTE
 *    and retries; to a read-only page it becomes a page fault (PROT|WRITE, ExcCode Mod);
 *  - a seeded differential test over random mappings (4 KiB and 2 MiB, every right,
 *    A and D clear or set), on two machines built alike, one with the hardware walker
 *    and one with the refill handler: every translation's outcome, physical address
 *    and fault flags agree, through unmaps, write-protects and frame changes (COW)
 *    each followed by the invalidation a kernel issues; after every step each valid
 *    JTLB half must equal what a naive walker (re-reading the tables) gives for it —
 *    what the hardware walker would have cached — so a stale entry fails the test
 *    (checked below: a change without the invalidation is reported);
 *  - the batch (trace replay's fast path) equals one access at a time, every cycle;
 *  - the same kernel on both machines: random mmap/munmap/mprotect/fork/COW/exit and
 *    reads, writes and fetches agree byte for byte and fault for fault, with the JTLB
 *    check after every operation.
 * VMS_SWTLB_SOAK=N runs N differential sequences instead of the default.
 */
#include <stdio.h>

#include "harness.h"
#include "vmsim/core.h"
#include "vmsim/frames.h"
#include "vmsim/kernel.h"
#include "vmsim/mman.h"
#include "vmsim/proc.h"
#include "vmsim/pt.h"
#include "vmsim/rng.h"
#include "vmsim/swtlb.h"
#include "vmsim/virt.h"

static vms_machine *new_machine(bool sw, unsigned entries, unsigned wired, unsigned ncores,
                                uint64_t seed)
{
    vms_machine_config mc;
    vms_machine_preset("skylake", &mc, NULL);
    mc.ram_bytes = UINT64_C(128) << 20;
    mc.ncores = ncores;
    mc.seed = seed;
    mc.mmu.swtlb.on = sw;
    mc.mmu.swtlb.entries = entries;
    mc.mmu.swtlb.wired = wired;
    vms_machine *m = NULL;
    vms_err err = {0};
    if (vms_machine_create(NULL, &mc, &m, &err) != VMS_OK)
        fprintf(stderr, "machine: %s\n", err.msg);
    return m;
}

/* ---- the naive reference: the tables re-read, rights combined as SDM §4.6 ---- */

typedef struct ref_xlate {
    bool ok;
    uint64_t pa;
    bool w, u, xd, g, dirty, young;
} ref_xlate;

static ref_xlate ref_walk(vms_bus *bus, uint64_t root, uint64_t va)
{
    ref_xlate r = {.w = true, .u = true};
    uint64_t table = root;
    for (unsigned l = 4; l >= 1; l--) {
        uint64_t pte = 0;
        vms_bus_read64(bus, table + (uint64_t)vms_va_index(va, l) * 8, &pte);
        if (!(pte & VMS_PTE_P))
            return r;
        r.w &= (pte & VMS_PTE_RW) != 0;
        r.u &= (pte & VMS_PTE_US) != 0;
        r.xd |= (pte & VMS_PTE_XD) != 0;
        if (l == 1 || (pte & VMS_PTE_PS)) {
            unsigned shift = 12 + 9 * (l - 1);
            r.ok = true;
            r.pa = (vms_pte_addr(pte) & ~((UINT64_C(1) << shift) - 1)) |
                   (va & ((UINT64_C(1) << shift) - 1));
            r.g = (pte & VMS_PTE_G) != 0;
            r.dirty = (pte & VMS_PTE_D) != 0;
            r.young = (pte & VMS_PTE_A) != 0;
            return r;
        }
        table = vms_pte_addr(pte);
    }
    return r;
}

/* The root of the tables that entries tagged asid on core c translate with, or 0 when
 * no live address space has that ASID (stale entries of a dead one are allowed). */
typedef uint64_t (*root_fn)(void *ctx, vms_core *c, uint32_t asid, bool global);

/* Every valid JTLB half of every core of m against the reference: the frame, D only
 * when writable and dirty, XI = XD, G, user access only to user pages; no two valid
 * entries overlap in one address space. Returns the number of mismatches (printed). */
static unsigned check_jtlb(vms_machine *m, root_fn rootof, void *ctx)
{
    unsigned bad = 0;
    for (unsigned ci = 0; ci < vms_machine_ncores(m); ci++) {
        vms_core *c = vms_machine_core(m, ci);
        unsigned n = vms_mips_tlb_size(c);
        for (unsigned i = 0; i < n; i++) {
            vms_mips_tlb_entry e;
            vms_mips_tlb_entry_at(c, i, &e);
            if (e.ehinv)
                continue;
            uint64_t root = rootof(ctx, c, e.asid, e.g);
            unsigned hs = 12u + (unsigned)__builtin_popcountll(e.pagemask);
            for (unsigned j = 0; root && j < i; j++) {
                vms_mips_tlb_entry o;
                vms_mips_tlb_entry_at(c, j, &o);
                uint64_t span = UINT64_C(2) << hs,
                         ospan = UINT64_C(2) << (12 + __builtin_popcountll(o.pagemask));
                bool same_as = o.g || e.g || o.asid == e.asid;
                if (!o.ehinv && same_as && e.vpn2 < o.vpn2 + ospan && o.vpn2 < e.vpn2 + span) {
                    fprintf(stderr, "core %u: entries %u and %u overlap at %llx\n", ci, j, i,
                            (unsigned long long)e.vpn2);
                    bad++;
                }
            }
            for (unsigned h = 0; root && h < 2; h++) {
                uint64_t lo = e.lo[h];
                if (!(lo & VMS_MIPS_LO_V))
                    continue;
                uint64_t half = UINT64_C(1) << hs;
                uint64_t va = e.vpn2 + h * half;
                uint64_t pa = ((lo & VMS_MIPS_LO_PFN_MASK) >> VMS_MIPS_LO_PFN_SHIFT) << 12;
                /* The first and the last 4 KiB page of the half. */
                for (uint64_t off = 0; off < half; off += half - 4096 ? half - 4096 : 4096) {
                    ref_xlate r = ref_walk(vms_machine_bus(m), root, va + off);
                    bool user = (va >> 63) == 0;
                    bool d = (lo & VMS_MIPS_LO_D) != 0, xi = (lo & VMS_MIPS_LO_XI) != 0;
                    if (!r.ok || r.pa != pa + off || (d && !(r.w && r.dirty)) || xi != r.xd ||
                        e.g != r.g || (user && !r.u)) {
                        fprintf(stderr,
                                "core %u entry %u half %u (va %llx asid %u): EntryLo %llx, the "
                                "tables say %s pa %llx w%d d%d xd%d g%d u%d\n",
                                ci, i, h, (unsigned long long)(va + off), e.asid,
                                (unsigned long long)lo, r.ok ? "present" : "not present",
                                (unsigned long long)r.pa, r.w, r.dirty, r.xd, r.g, r.u);
                        bad++;
                    }
                    if (off + 4096 >= half)
                        break;
                }
            }
        }
    }
    return bad;
}

/* ---- registers and instructions ---- */

static void test_random_wired(void)
{
    vms_machine *m = new_machine(true, 8, 2, 1, 1);
    REQUIRE_VOID(m != NULL);
    vms_core *c = vms_machine_core(m, 0);
    CHECK(vms_core_swtlb(c));
    CHECK_EQ(vms_mips_tlb_size(c), 8);
    CHECK(vms_core_tlb(c, VMS_TLB_L2) == NULL); /* no STLB, no PWC: the JTLB replaces them */
    CHECK(vms_core_pwc(c) == NULL);
    vms_mips_cp0 *r = vms_core_mips_cp0(c);
    CHECK_EQ(r->wired, 2);
    /* Random: N-1 at the restart, one less per cycle, wrapping from Wired to N-1. */
    CHECK_EQ(vms_mips_write_wired(c, 2), VMS_OK);
    CHECK_EQ(vms_mips_random(c), 7);
    vms_core_add_cycles(c, 1);
    CHECK_EQ(vms_mips_random(c), 6);
    vms_core_add_cycles(c, 4);
    CHECK_EQ(vms_mips_random(c), 2);
    vms_core_add_cycles(c, 1);
    CHECK_EQ(vms_mips_random(c), 7);
    CHECK_EQ(vms_mips_write_wired(c, 8), VMS_ERR_INVAL);
    /* Two wired entries by TLBWI, then many TLBWRs at varied cycles: the wired ones stay. */
    for (unsigned i = 0; i < 2; i++) {
        vms_mips_write_entryhi(c, UINT64_C(0x40000000) + i * 0x2000, 5);
        r->entrylo[0] = ((UINT64_C(0x100) + i) << VMS_MIPS_LO_PFN_SHIFT) | VMS_MIPS_LO_V;
        r->entrylo[1] = 0;
        r->pagemask = 0;
        r->index = i;
        CHECK_EQ(vms_mips_tlbwi(c), VMS_OK);
    }
    unsigned seen[8] = {0};
    vms_rng rng;
    vms_rng_seed(&rng, th_seed);
    for (unsigned k = 0; k < 400; k++) {
        vms_core_add_cycles(c, 1 + vms_rng_below(&rng, 13));
        uint32_t rnd = vms_mips_random(c);
        CHECK(rnd >= 2 && rnd <= 7);
        vms_mips_write_entryhi(c, UINT64_C(0x50000000) + k * 0x2000, 5);
        r->entrylo[0] = (UINT64_C(0x200) + k) << VMS_MIPS_LO_PFN_SHIFT | VMS_MIPS_LO_V;
        vms_mips_tlbwr(c);
        vms_mips_tlb_entry e;
        vms_mips_tlb_entry_at(c, rnd, &e);
        CHECK_EQ(e.vpn2, UINT64_C(0x50000000) + k * 0x2000); /* written where Random said */
        seen[rnd]++;
    }
    for (unsigned i = 2; i < 8; i++)
        CHECK(seen[i] > 20); /* every non-wired slot is chosen */
    CHECK_EQ(seen[0] + seen[1], 0);
    for (unsigned i = 0; i < 2; i++) {
        vms_mips_tlb_entry e;
        vms_mips_tlb_entry_at(c, i, &e);
        CHECK_EQ(e.vpn2, UINT64_C(0x40000000) + i * 0x2000);
        CHECK(!e.ehinv);
    }
    /* A wired entry translates without any handler; local_flush_tlb_all keeps it. */
    vms_core_mmu_flush_all(c);
    vms_xlate x;
    uint64_t pa;
    vms_fault f;
    vms_core_set_user(c, true);
    CHECK(vms_core_translate(c, UINT64_C(0x40002123), VMS_ACC_READ, &x, &pa, &f, NULL));
    CHECK_EQ(pa, UINT64_C(0x101123));
    for (unsigned i = 2; i < 8; i++) {
        vms_mips_tlb_entry e;
        vms_mips_tlb_entry_at(c, i, &e);
        CHECK(e.ehinv);
    }
    /* No virtual machines on a software-TLB core (no two-stage MMU in this model). */
    CHECK_EQ(vms_core_vm_enter(c, NULL, 1, vms_core_regs(c)), VMS_ERR_UNSUPPORTED);
    /* No handler and no entry: a refill passed on as a TLBL page fault. */
    CHECK(!vms_core_translate(c, UINT64_C(0x60000000), VMS_ACC_READ, &x, &pa, &f, NULL));
    CHECK_EQ(f.kind, VMS_FAULT_PF);
    CHECK_EQ(f.error_code, VMS_MIPS_EXCCODE_TLBL);
    CHECK_EQ(vms_core_swtlb_stats(c)->refills, 1);
    /* TLBP, TLBR; G is the AND of both EntryLo G bits; EHINV entries never match. */
    vms_mips_write_entryhi(c, UINT64_C(0x40002000), 9); /* another ASID */
    vms_mips_tlbp(c);
    CHECK(r->index & VMS_MIPS_INDEX_P); /* entry 1 is ASID 5, not global */
    r->entrylo[0] = VMS_MIPS_LO_G | VMS_MIPS_LO_V;
    r->entrylo[1] = VMS_MIPS_LO_V;
    vms_mips_write_entryhi(c, UINT64_C(0x70000000), 9);
    r->index = 3;
    vms_mips_tlbwi(c);
    vms_mips_tlb_entry e;
    vms_mips_tlb_entry_at(c, 3, &e);
    CHECK(!e.g);
    r->entrylo[1] = VMS_MIPS_LO_G | VMS_MIPS_LO_V;
    vms_mips_tlbwi(c);
    vms_mips_tlb_entry_at(c, 3, &e);
    CHECK(e.g);
    vms_mips_write_entryhi(c, UINT64_C(0x70001000), 77); /* G: any ASID; the odd page */
    vms_mips_tlbp(c);
    CHECK_EQ(r->index, 3);
    r->index = 1;
    CHECK_EQ(vms_mips_tlbr(c), VMS_OK);
    CHECK_EQ(r->asid, 5); /* TLBR loads EntryHi.ASID too */
    CHECK_EQ(r->entryhi, UINT64_C(0x40002000));
    vms_mips_write_entryhi(c, UINT64_C(0x70000000) | VMS_MIPS_HI_EHINV, 9);
    r->index = 3;
    vms_mips_tlbwi(c);
    vms_mips_write_entryhi(c, UINT64_C(0x70000000), 9);
    vms_mips_tlbp(c);
    CHECK(r->index & VMS_MIPS_INDEX_P);
    r->index = 8;
    CHECK_EQ(vms_mips_tlbwi(c), VMS_ERR_INVAL);
    vms_machine_destroy(m);
}

/* A machine with tables built by vms_pt (bump-allocated from 1 MiB) and the kernel's
 * handlers attached (software) — the explain setup. */
typedef struct bare {
    vms_machine *m;
    vms_core *c;
    vms_pt pt;
    vms_pt_bump b;
    vms_tlbex h;
} bare;

static bool bare_init(bare *s, bool sw, unsigned entries, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    s->m = new_machine(sw, entries, 0, 1, seed);
    if (!s->m)
        return false;
    s->c = vms_machine_core(s->m, 0);
    s->b = (vms_pt_bump){vms_machine_ram(s->m), UINT64_C(0x100000), UINT64_C(0x4000000), 0, 0};
    vms_pt_ops ops = vms_pt_bump_ops(&s->b);
    if (vms_pt_init(&s->pt, vms_machine_bus(s->m), 4, &ops, NULL) != VMS_OK)
        return false;
    if (sw) {
        vms_tlbex_config tc;
        vms_tlbex_config_default(&tc);
        vms_tlbex_attach(s->c, &s->h, &tc);
    }
    vms_core_mmu_boot(s->c, s->pt.root, true);
    vms_core_mmu_load_root(s->c, s->pt.root, 1, true);
    vms_core_set_user(s->c, true);
    return true;
}

static uint64_t bare_root(void *ctx, vms_core *c, uint32_t asid, bool global)
{
    (void)c;
    (void)asid;
    (void)global;
    return *(const uint64_t *)ctx;
}

static void test_modified(void)
{
    bare s;
    REQUIRE_VOID(bare_init(&s, true, 16, 1));
    const uint64_t va = 0x10000000, U = VMS_PTE_US;
    CHECK_EQ(vms_pt_map(&s.pt, va, 0x800000, VMS_PG_4K, U | VMS_PTE_RW, NULL),
             VMS_OK);                                                               /* clean, old */
    CHECK_EQ(vms_pt_map(&s.pt, va + 0x1000, 0x801000, VMS_PG_4K, U, NULL), VMS_OK); /* read-only */
    const vms_swtlb_stats *st = vms_core_swtlb_stats(s.c);
    vms_xlate x;
    uint64_t pa, pte;
    vms_fault f;
    /* A load: refill (A clear, so V = 0), TLBL Invalid (the handler sets A), a hit. */
    CHECK(vms_core_translate(s.c, va + 8, VMS_ACC_READ, &x, &pa, &f, NULL));
    CHECK_EQ(pa, UINT64_C(0x800008));
    CHECK_EQ(st->refills, 1);
    CHECK_EQ(st->invalid, 1);
    CHECK(vms_pt_lookup(&s.pt, va, &pte, NULL, NULL) && (pte & VMS_PTE_A) && !(pte & VMS_PTE_D));
    /* The refill read the four levels and the even/odd pair; the fix-up four more and
     * the pair again: walk.mem_refs counts each. */
    CHECK_EQ(vms_core_walk_stats(s.c)->mem_refs, 5u + 6u);
    /* A store to the clean page: TLB Modified; the handler sets D and rewrites. */
    CHECK(vms_core_translate(s.c, va + 8, VMS_ACC_WRITE, &x, &pa, &f, NULL));
    CHECK_EQ(st->modified, 1);
    CHECK(vms_pt_lookup(&s.pt, va, &pte, NULL, NULL) && (pte & VMS_PTE_D));
    vms_mips_cp0 *r = vms_core_mips_cp0(s.c);
    vms_mips_write_entryhi(s.c, va, r->asid);
    vms_mips_tlbp(s.c);
    REQUIRE_VOID(!(r->index & VMS_MIPS_INDEX_P));
    vms_mips_tlb_entry e;
    vms_mips_tlb_entry_at(s.c, r->index, &e);
    CHECK(e.lo[0] & VMS_MIPS_LO_D);
    CHECK(!(e.lo[1] & VMS_MIPS_LO_V)); /* the odd page is old (A clear): V = 0, as Linux */
    /* Another store now hits: no exception. */
    uint64_t mod = st->modified;
    CHECK(vms_core_translate(s.c, va + 16, VMS_ACC_WRITE, &x, &pa, &f, NULL));
    CHECK_EQ(st->modified, mod);
    /* A store to the old read-only page: TLBS Invalid, passed on as a write-protect
     * fault (the handler finds it present but not writable). */
    CHECK(!vms_core_translate(s.c, va + 0x1008, VMS_ACC_WRITE, &x, &pa, &f, NULL));
    CHECK_EQ(f.error_code, VMS_MIPS_EXCCODE_TLBS);
    CHECK_EQ(f.flags & VMS_FAULTF_PROT, VMS_FAULTF_PROT);
    /* A load makes it young (V = 1, D = 0); a store then raises TLB Modified. */
    CHECK(vms_core_translate(s.c, va + 0x1008, VMS_ACC_READ, &x, &pa, &f, NULL));
    CHECK_EQ(pa, UINT64_C(0x801008));
    CHECK(!vms_core_translate(s.c, va + 0x1008, VMS_ACC_WRITE, &x, &pa, &f, NULL));
    CHECK_EQ(f.kind, VMS_FAULT_PF);
    CHECK_EQ(f.error_code, VMS_MIPS_EXCCODE_MOD);
    CHECK_EQ(f.flags & (VMS_FAULTF_PROT | VMS_FAULTF_WRITE | VMS_FAULTF_USER),
             VMS_FAULTF_PROT | VMS_FAULTF_WRITE | VMS_FAULTF_USER);
    CHECK_EQ(st->modified, mod + 1);
    CHECK_EQ(st->page_faults, 2);
    CHECK_EQ(check_jtlb(s.m, bare_root, &s.pt.root), 0);
    vms_machine_destroy(s.m);
}

/* ---- the differential test over random mappings ---- */

#define DIFF_BASE  UINT64_C(0x20000000)
#define DIFF_PAGES 48u /* 4 KiB pages from DIFF_BASE, then two 2 MiB pages */
#define DIFF_BIG   (DIFF_BASE + UINT64_C(0x400000))

static uint64_t rnd_flags(vms_rng *r)
{
    /* User pages only: MIPS has no U bit (useg pages are user pages), so a supervisor-
     * only page in the user half is not representable (tlbex.c). */
    static const uint64_t rights[] = {VMS_PTE_US | VMS_PTE_RW | VMS_PTE_XD, VMS_PTE_US | VMS_PTE_XD,
                                      VMS_PTE_US, VMS_PTE_US | VMS_PTE_RW};
    uint64_t f = rights[vms_rng_below(r, 4)];
    f |= vms_rng_below(r, 2) ? VMS_PTE_A : 0;
    f |= vms_rng_below(r, 2) ? VMS_PTE_D : 0;
    return f;
}

/* A random address of the arena (a 4 KiB page or inside a 2 MiB page). */
static uint64_t rnd_va(vms_rng *r)
{
    if (vms_rng_below(r, 4) == 0)
        return DIFF_BIG + vms_rng_below(r, UINT64_C(2) << 21);
    return DIFF_BASE + vms_rng_below(r, DIFF_PAGES * 4096);
}

/* Apply one mapping change to both trees and, with flush, invalidate it on both cores
 * by one of the kernel's three operations that cover it. */
static void mutate(bare *s, vms_rng *r, uint64_t *frame, bool flush)
{
    uint64_t va = rnd_va(r);
    bool big = va >= DIFF_BIG;
    va &= big ? ~((UINT64_C(1) << 21) - 1) : ~UINT64_C(0xFFF);
    vms_pgsize size = big ? VMS_PG_2M : VMS_PG_4K;
    unsigned what = (unsigned)vms_rng_below(r, 4);
    uint64_t flags = rnd_flags(r),
             pa = big ? (UINT64_C(0x2000000) + (*frame % 8) * (UINT64_C(2) << 20))
                      : UINT64_C(0x1000000) + (*frame % 2048) * 4096;
    (*frame)++;
    unsigned how = (unsigned)vms_rng_below(r, 10); /* which invalidation the kernel uses */
    for (unsigned k = 0; k < 2; k++) {
        bare *b = &s[k];
        uint64_t old;
        if (what == 0) { /* munmap */
            vms_pt_unmap(&b->pt, va, false, &old);
        } else if (what == 1) { /* mprotect read-only */
            vms_pt_protect(&b->pt, va, 0, VMS_PTE_RW, &old);
        } else { /* (re)map: a new frame (COW's copy) or a first mapping */
            vms_pt_unmap(&b->pt, va, false, &old);
            vms_pt_map(&b->pt, va, pa, size, flags, NULL);
        }
        if (!flush)
            continue;
        if (how == 0) /* the whole address space (ASID 1: bare_init loads it) */
            vms_core_mmu_flush_asid(b->c, 1);
        else if (how < 4) /* the page in ASID 1 named explicitly (INVPCID 0) */
            vms_core_mmu_flush_page_asid(b->c, 1, va);
        else /* the page in the current address space (INVLPG) */
            vms_core_mmu_flush_page(b->c, va);
    }
}

static void diff_run(uint64_t seed, unsigned steps, unsigned entries)
{
    bare s[2];
    REQUIRE_VOID(bare_init(&s[0], false, 0, seed) && bare_init(&s[1], true, entries, seed));
    vms_rng r;
    vms_rng_seed(&r, seed);
    uint64_t frame = 0;
    for (unsigned i = 0; i < 24; i++)
        mutate(s, &r, &frame, true);
    unsigned agree = 0, faults = 0;
    for (unsigned step = 0; step < steps; step++) {
        if (vms_rng_below(&r, 6) == 0) {
            mutate(s, &r, &frame, true);
        } else {
            uint64_t va = rnd_va(&r);
            vms_access_kind kind = (vms_access_kind)vms_rng_below(&r, 3);
            bool user = vms_rng_below(&r, 8) != 0;
            vms_xlate x[2];
            uint64_t pa[2] = {0, 0};
            vms_fault f[2];
            bool ok[2];
            for (unsigned k = 0; k < 2; k++) {
                vms_core_set_user(s[k].c, user);
                ok[k] = vms_core_translate(s[k].c, va, kind, &x[k], &pa[k], &f[k], NULL);
            }
            const uint32_t mask =
                VMS_FAULTF_PROT | VMS_FAULTF_WRITE | VMS_FAULTF_USER | VMS_FAULTF_EXEC;
            bool same = ok[0] == ok[1] &&
                        (ok[0] ? pa[0] == pa[1] : (f[0].flags & mask) == (f[1].flags & mask));
            if (!same)
                fprintf(stderr,
                        "seed %llu step %u: %s %s at %llx: walker %s pa %llx flags %x, refill %s "
                        "pa %llx flags %x\n",
                        (unsigned long long)seed, step, user ? "user" : "kernel",
                        vms_access_name(kind), (unsigned long long)va, ok[0] ? "ok" : "fault",
                        (unsigned long long)pa[0], f[0].flags, ok[1] ? "ok" : "fault",
                        (unsigned long long)pa[1], f[1].flags);
            CHECK(same);
            agree += same;
            faults += !ok[0];
        }
        unsigned bad = check_jtlb(s[1].m, bare_root, &s[1].pt.root);
        CHECK_EQ(bad, 0);
        if (bad)
            break;
    }
    const vms_swtlb_stats *st = vms_core_swtlb_stats(s[1].c);
    fprintf(stderr,
            "diff seed %llu: %u translations agree (%u faults); refills %llu invalid %llu "
            "modified %llu xi %llu\n",
            (unsigned long long)seed, agree, faults, (unsigned long long)st->refills,
            (unsigned long long)st->invalid, (unsigned long long)st->modified,
            (unsigned long long)st->xi);
    CHECK(st->refills > 0 && st->modified > 0 && st->invalid > 0 && st->xi > 0);
    vms_machine_destroy(s[0].m);
    vms_machine_destroy(s[1].m);
}

/* The check can fail: a change the kernel does not invalidate leaves a stale entry. */
static void test_stale_detected(void)
{
    bare s;
    REQUIRE_VOID(bare_init(&s, true, 16, 3));
    const uint64_t va = 0x10000000;
    vms_pt_map(&s.pt, va, 0x800000, VMS_PG_4K, VMS_PTE_US | VMS_PTE_RW | VMS_PTE_A | VMS_PTE_D,
               NULL);
    vms_xlate x;
    uint64_t pa;
    vms_fault f;
    CHECK(vms_core_translate(s.c, va, VMS_ACC_WRITE, &x, &pa, &f, NULL));
    CHECK_EQ(check_jtlb(s.m, bare_root, &s.pt.root), 0);
    vms_pt_protect(&s.pt, va, 0, VMS_PTE_RW, NULL); /* mprotect without the flush */
    CHECK_EQ(check_jtlb(s.m, bare_root, &s.pt.root), 1);
    vms_core_mmu_flush_page(s.c, va);
    CHECK_EQ(check_jtlb(s.m, bare_root, &s.pt.root), 0);
    CHECK(vms_core_translate(s.c, va, VMS_ACC_READ, &x, &pa, &f, NULL));
    vms_pt_unmap(&s.pt, va, false, NULL); /* munmap without the flush */
    CHECK_EQ(check_jtlb(s.m, bare_root, &s.pt.root), 1);
    vms_machine_destroy(s.m);
}

/* The batch (trace replay's fast path) is the same model as one access at a time on a
 * software-TLB core: Random reads the clock mid-batch, so every cycle must be there. */
static void test_batch(void)
{
    bare s[2];
    REQUIRE_VOID(bare_init(&s[0], true, 16, 5) && bare_init(&s[1], true, 16, 5));
    for (unsigned k = 0; k < 2; k++)
        for (unsigned p = 0; p < 64; p++)
            vms_pt_map(&s[k].pt, DIFF_BASE + p * 4096, 0x1000000 + p * 4096, VMS_PG_4K,
                       VMS_PTE_US | VMS_PTE_RW | (p % 3 ? VMS_PTE_A : 0), NULL);
    vms_rng r;
    vms_rng_seed(&r, th_seed);
    static vms_ref refs[4000];
    for (unsigned i = 0; i < 4000; i++) {
        unsigned page =
            (unsigned)(vms_rng_below(&r, 4) ? vms_rng_below(&r, 6) : vms_rng_below(&r, 64));
        refs[i] = (vms_ref){DIFF_BASE + page * 4096 + vms_rng_below(&r, 4000),
                            1 + (uint32_t)vms_rng_below(&r, 8),
                            (uint8_t)vms_rng_below(&r, 2),
                            {0}};
    }
    vms_fault f;
    for (unsigned i = 0; i < 4000; i += 500)
        CHECK_EQ(vms_core_access_batch(s[0].c, refs + i, 500, &f), 500);
    for (unsigned i = 0; i < 4000; i++)
        CHECK(vms_core_access(s[1].c, refs[i].va, (vms_access_kind)refs[i].kind, NULL, refs[i].len)
                  .ok);
    CHECK_EQ(vms_core_cycles(s[0].c), vms_core_cycles(s[1].c));
    CHECK(memcmp(vms_core_swtlb_stats(s[0].c), vms_core_swtlb_stats(s[1].c),
                 sizeof(vms_swtlb_stats)) == 0);
    CHECK(memcmp(vms_tlb_get_stats(vms_core_tlb(s[0].c, VMS_TLB_L1D)),
                 vms_tlb_get_stats(vms_core_tlb(s[1].c, VMS_TLB_L1D)), sizeof(vms_tlb_stats)) == 0);
    CHECK(vms_core_swtlb_stats(s[0].c)->refills > 16); /* the JTLB replaced entries */
    for (unsigned i = 0; i < 16; i++) {
        vms_mips_tlb_entry a, b;
        vms_mips_tlb_entry_at(s[0].c, i, &a);
        vms_mips_tlb_entry_at(s[1].c, i, &b);
        CHECK(a.vpn2 == b.vpn2 && a.lo[0] == b.lo[0] && a.lo[1] == b.lo[1] && a.ehinv == b.ehinv);
    }
    vms_machine_destroy(s[0].m);
    vms_machine_destroy(s[1].m);
}

/* ---- the kernel on both machines ---- */

#define KARENA UINT64_C(0x10000000)
#define KPAGES 24u

typedef struct kside {
    vms_machine *m;
    vms_kernel *k;
} kside;

/* The root of the live process whose mm has ASID asid when c runs it now (global
 * entries: the core's root). */
static uint64_t kernel_root(void *ctx, vms_core *c, uint32_t asid, bool global)
{
    vms_kernel *k = ctx;
    if (global)
        return vms_core_mips_cp0(c)->kscratch;
    /* Entries of an address space not loaded on c may be stale: the kernel flushes
     * them when it loads that ASID there again (a deferred shootdown, as with PCIDs). */
    if (asid != vms_core_mips_cp0(c)->asid)
        return 0;
    for (unsigned i = 0; i < vms_proc_count(k); i++) {
        vms_task_info ti;
        vms_task_get_info(vms_proc_at(k, i), &ti);
        if (ti.state == VMS_TASK_RUNNING && ti.pcid == asid && asid != 0)
            return ti.cr3 & ~UINT64_C(0xFFF);
    }
    return 0;
}

static void kernel_run(uint64_t seed, unsigned nops)
{
    kside s[2];
    for (unsigned k = 0; k < 2; k++) {
        s[k].m = new_machine(k == 1, 32, 0, 2, seed);
        REQUIRE_VOID(s[k].m != NULL);
        vms_kernel_config kc;
        vms_kernel_config_default(&kc);
        kc.seed = seed;
        kc.tlbex.tlbwi = (seed & 1) != 0; /* both refill writes */
        REQUIRE_VOID(vms_kernel_create(s[k].m, &kc, &s[k].k, NULL) == VMS_OK);
    }
    vms_rng r;
    vms_rng_seed(&r, seed);
    vms_task *t[2][4] = {{NULL}}, *th[2][4] = {{NULL}}; /* a process's task, its thread */
    int8_t prot_of[4][KPAGES]; /* per process: each page's protection, -1 unmapped */
    unsigned np = 0, reads = 0, segvs = 0;
    static uint8_t buf[2][3 * 4096];
    for (unsigned op = 0; op < nops; op++) {
        unsigned what = (unsigned)vms_rng_below(&r, 100);
        if (np == 0 || (what < 4 && np < 4)) { /* spawn, or fork a random process */
            bool fork = np > 0 && vms_rng_below(&r, 2);
            unsigned from = np ? (unsigned)vms_rng_below(&r, np) : 0;
            unsigned core = (unsigned)vms_rng_below(&r, 2);
            for (unsigned k = 0; k < 2; k++)
                CHECK_EQ(fork ? vms_proc_fork(s[k].k, t[k][from], &t[k][np], NULL)
                              : vms_proc_spawn(s[k].k, "sw", core, &t[k][np], NULL),
                         VMS_OK);
            th[0][np] = th[1][np] = NULL;
            if (fork)
                memcpy(prot_of[np], prot_of[from], sizeof prot_of[np]);
            else
                memset(prot_of[np], -1, sizeof prot_of[np]);
            np++;
            continue;
        }
        unsigned i = (unsigned)vms_rng_below(&r, np);
        bool use_th = vms_rng_below(&r, 2) != 0; /* act through the thread, if any */
#define TK(k) (use_th && th[k][i] ? th[k][i] : t[k][i])
        uint64_t a = vms_rng_below(&r, KPAGES), n = 1 + vms_rng_below(&r, 6);
        n = a + n > KPAGES ? KPAGES - a : n;
        static const unsigned prots[] = {VMS_PROT_READ | VMS_PROT_WRITE, VMS_PROT_READ,
                                         VMS_PROT_READ | VMS_PROT_EXEC, VMS_PROT_NONE};
        unsigned prot = prots[vms_rng_below(&r, 4)];
        if (what < 6) { /* exit */
            for (unsigned k = 0; k < 2; k++) {
                vms_proc_exit(s[k].k, t[k][i]);
                t[k][i] = t[k][np - 1];
                th[k][i] = th[k][np - 1];
            }
            memcpy(prot_of[i], prot_of[np - 1], sizeof prot_of[i]);
            np--;
        } else if (what < 9) { /* a thread on the other core: shootdowns between cores */
            if (!th[0][i]) {
                vms_task_info ti;
                vms_task_get_info(t[0][i], &ti);
                unsigned other = 1 - ti.core;
                for (unsigned k = 0; k < 2; k++)
                    CHECK_EQ(vms_proc_clone_thread(s[k].k, t[k][i], other, &th[k][i], NULL),
                             VMS_OK);
            }
        } else if (what < 20) {
            uint64_t va;
            for (unsigned k = 0; k < 2; k++)
                CHECK_EQ(vms_sys_mmap(s[k].k, TK(k), KARENA + a * 4096, n * 4096,
                                      VMS_PROT_READ | VMS_PROT_WRITE,
                                      VMS_MAP_PRIVATE | VMS_MAP_ANONYMOUS | VMS_MAP_FIXED, NULL, 0,
                                      &va, NULL),
                         VMS_OK);
            memset(&prot_of[i][a], VMS_PROT_READ | VMS_PROT_WRITE, n);
        } else if (what < 26) {
            for (unsigned k = 0; k < 2; k++)
                vms_sys_munmap(s[k].k, TK(k), KARENA + a * 4096, n * 4096, NULL);
            memset(&prot_of[i][a], -1, n);
        } else if (what < 34) {
            vms_status st0 =
                vms_sys_mprotect(s[0].k, TK(0), KARENA + a * 4096, n * 4096, prot, NULL);
            CHECK_EQ(vms_sys_mprotect(s[1].k, TK(1), KARENA + a * 4096, n * 4096, prot, NULL), st0);
            if (st0 == VMS_OK)
                memset(&prot_of[i][a], (int)prot, n);
        } else { /* an access */
            vms_access_kind kind = what < 60   ? VMS_ACC_READ
                                   : what < 90 ? VMS_ACC_WRITE
                                               : VMS_ACC_EXEC;
            /* Mostly in a page the process may access so (it lives on), else anywhere. */
            unsigned cand[KPAGES], nc = 0;
            unsigned need = kind == VMS_ACC_WRITE  ? VMS_PROT_WRITE
                            : kind == VMS_ACC_EXEC ? VMS_PROT_EXEC
                                                   : VMS_PROT_READ;
            for (unsigned pg = 0; pg < KPAGES; pg++)
                if (prot_of[i][pg] > 0 && (prot_of[i][pg] & need))
                    cand[nc++] = pg;
            uint64_t off =
                nc && vms_rng_below(&r, 10)
                    ? cand[vms_rng_below(&r, nc)] * UINT64_C(4096) + vms_rng_below(&r, 4000)
                    : vms_rng_below(&r, KPAGES * 4096 - 64);
            size_t len = 1 + (size_t)vms_rng_below(&r, vms_rng_below(&r, 4) ? 64 : 2 * 4096);
            if (off + len > KPAGES * 4096)
                len = KPAGES * 4096 - off;
            for (size_t j = 0; j < len; j++)
                buf[0][j] = buf[1][j] = (uint8_t)vms_rng_below(&r, 256);
            vms_access_info info[2];
            for (unsigned k = 0; k < 2; k++)
                CHECK_EQ(
                    vms_proc_access(s[k].k, TK(k), KARENA + off, kind, buf[k], len, &info[k], NULL),
                    VMS_OK);
            CHECK_EQ(info[0].outcome, info[1].outcome);
            if (kind != VMS_ACC_WRITE && info[0].outcome == VMS_ACCESS_OK) {
                CHECK(memcmp(buf[0], buf[1], len) == 0);
                reads++;
            }
            if (info[0].outcome != VMS_ACCESS_OK || info[1].outcome != VMS_ACCESS_OK) {
                segvs++;
                for (unsigned k = 0; k < 2; k++) { /* the process died: reap it */
                    vms_proc_exit(s[k].k, t[k][i]);
                    t[k][i] = t[k][np - 1];
                    th[k][i] = th[k][np - 1];
                }
                memcpy(prot_of[i], prot_of[np - 1], sizeof prot_of[i]);
                np--;
            }
        }
        unsigned bad = check_jtlb(s[1].m, kernel_root, s[1].k);
        CHECK_EQ(bad, 0);
        for (unsigned k = 0; k < 2; k++)
            CHECK_EQ(vms_kernel_check(s[k].k, NULL), VMS_OK);
        if (bad)
            break;
    }
    const vms_kernel_stats *ks[2] = {vms_kernel_get_stats(s[0].k), vms_kernel_get_stats(s[1].k)};
    CHECK_EQ(ks[0]->cow_copy, ks[1]->cow_copy);
    CHECK_EQ(ks[0]->anon_alloc, ks[1]->anon_alloc);
    CHECK_EQ(ks[0]->segv, ks[1]->segv);
    const vms_swtlb_stats *st = vms_core_swtlb_stats(vms_machine_core(s[1].m, 0));
    fprintf(stderr,
            "kernel seed %llu: %u ops, %u reads compared, %u segvs, cow %llu; core 0 refills %llu "
            "modified %llu page faults %llu; core 1 invlpg %llu invpcid %llu\n",
            (unsigned long long)seed, nops, reads, segvs, (unsigned long long)ks[1]->cow_copy,
            (unsigned long long)st->refills, (unsigned long long)st->modified,
            (unsigned long long)st->page_faults,
            (unsigned long long)vms_core_get_stats(vms_machine_core(s[1].m, 1))->invlpg,
            (unsigned long long)vms_core_get_stats(vms_machine_core(s[1].m, 1))->invpcid);
    for (unsigned k = 0; k < 2; k++) {
        while (vms_proc_count(s[k].k))
            vms_proc_exit(s[k].k, vms_proc_at(s[k].k, 0));
        vms_kernel_destroy(s[k].k);
        vms_machine_destroy(s[k].m);
    }
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "swtlb");
    test_random_wired();
    test_modified();
    test_stale_detected();
    test_batch();
    unsigned i;
    for (i = 0; th_soak_more("VMS_SWTLB_SOAK", 6, i); i++)
        diff_run(th_seed * 1000003u + i, 3000, i % 2 ? 8 : 48);
    for (unsigned j = 0; j < (i + 1) / 2; j++)
        kernel_run(th_seed * 7919u + j, 1500);
    return th_finish();
}
