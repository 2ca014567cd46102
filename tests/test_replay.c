/*
 * test_replay.c — trace replay (replay.h) and the batch paths under it
 * (vms_proc_access_batch, vms_core_access_batch).
 *
 * The exactness proof (STYLE.md "two TLBs must never be confused"): seeded traces with
 * locality, page-crossing references, modifies, segfaults, threads, forks, exits, kernel
 * writes and mmap/munmap/mprotect/madvise (which invalidate TLBs by INVLPG, INVPCID and
 * shootdowns) are replayed twice on fresh machines — with every shortcut on (the batch
 * path and the TLB repeat memo), and with every shortcut off (vms_proc_access reference
 * by reference, memo off) — for several TLB policies and machine/kernel configurations;
 * the whole JSON of counters and the contents of every TLB of every core must be
 * identical. Two deliberately broken shortcuts (one that skips repeated references,
 * one that caches translations across an munmap) must be caught by the same comparison.
 *
 * Then: the auto layout, the recorded layout (MAP from a host file, segfaults as data,
 * kernel writes with EFAULT), determinism, and trace errors with their line.
 *
 * VMS_REPLAY_SOAK=N runs N times more differential traces (default 1).
 */
#include <inttypes.h>
#include <unistd.h> /* getpid */

#include "harness.h"
#include "hw/bus_impl.h"
#include "hw/core_impl.h"
#include "vmsim/config.h"
#include "vmsim/frames.h"
#include "vmsim/mman.h"
#include "vmsim/proc.h"
#include "vmsim/pwc.h"
#include "vmsim/replay.h"
#include "vmsim/rng.h"

/* ---- fixtures ------------------------------------------------------------------------ */

typedef struct fx {
    vms_config c; /* the kernel borrows its writeback_dir */
    vms_machine *m;
    vms_kernel *k;
    vms_replay *r;
} fx;

/* Boot from `sets` (NULL-terminated "key=value" list) and create a replay. */
static bool fx_init(fx *f, const char *const *sets, const vms_replay_opts *o)
{
    vms_err err = {0};
    memset(f, 0, sizeof *f);
    if (vms_config_init(&f->c, "skylake", &err) != VMS_OK)
        return false;
    for (; sets && *sets; sets++) {
        if (vms_config_set_arg(&f->c, *sets, &err) != VMS_OK) {
            fprintf(stderr, "config: %s\n", err.msg);
            return false;
        }
    }
    vms_kernel_config kc = vms_config_kernel(&f->c);
    if (vms_machine_create(NULL, &f->c.machine, &f->m, &err) != VMS_OK ||
        vms_kernel_create(f->m, &kc, &f->k, &err) != VMS_OK ||
        vms_replay_create(f->k, o, &f->r, &err) != VMS_OK) {
        fprintf(stderr, "boot: %s\n", err.msg);
        return false;
    }
    return true;
}

static void fx_fini(fx *f)
{
    vms_replay_destroy(f->r);
    vms_kernel_destroy(f->k);
    vms_machine_destroy(f->m);
}

/* Every counter, as one string: machine, kernel and replay JSON members. */
static void fx_json(fx *f, vms_strbuf *sb)
{
    vms_strbuf_init(sb, NULL);
    vms_strbuf_printf(sb, "{");
    vms_machine_stats_json_members(f->m, sb);
    vms_kernel_stats_json_members(f->k, sb);
    vms_replay_stats_json_members(f->r, sb);
    vms_strbuf_printf(sb, "}");
}

/* Field by field (the struct has padding). */
static bool same_xlate(const vms_xlate *a, const vms_xlate *b)
{
    return a->page_pa == b->page_pa && a->size == b->size && a->rw == b->rw && a->us == b->us &&
           a->xd == b->xd && a->global == b->global && a->dirty == b->dirty && a->pkey == b->pkey &&
           a->pcd == b->pcd && a->pwt == b->pwt;
}

/* Number of TLB entries (over every core and level) that differ between a and b. */
static unsigned tlb_diffs(fx *a, fx *b)
{
    unsigned diffs = 0;
    for (unsigned i = 0; i < vms_machine_ncores(a->m); i++) {
        for (unsigned l = 0; l < VMS_TLB_NLEVELS; l++) {
            vms_tlb *ta = vms_core_tlb(vms_machine_core(a->m, i), (vms_tlb_level)l);
            vms_tlb *tb = vms_core_tlb(vms_machine_core(b->m, i), (vms_tlb_level)l);
            if (!ta || !tb) {
                diffs += ta != tb;
                continue;
            }
            diffs += vms_tlb_count(ta) != vms_tlb_count(tb);
            for (unsigned e = 0; e < vms_tlb_count(ta); e++) {
                vms_tlb_entry_info x, y;
                vms_tlb_entry(ta, e, &x);
                vms_tlb_entry(tb, e, &y);
                diffs += x.va != y.va || x.set != y.set || x.way != y.way || x.ctx != y.ctx ||
                         !same_xlate(&x.x, &y.x);
            }
        }
    }
    return diffs;
}

/* Turn every TLB's repeat memo, the bus's table-frame cache and the PWCs' shortcuts off
 * (the "all shortcuts off" side). */
static void memo_off(fx *f)
{
    vmsi_bus_set_ptec(vms_machine_bus(f->m), false);
    for (unsigned i = 0; i < vms_machine_ncores(f->m); i++) {
        vms_core *c = vms_machine_core(f->m, i);
        c->walk_plain = true; /* the traced walker, plain fills */
        if (vms_core_pwc(c))
            vms_pwc_set_fast(vms_core_pwc(c), false);
    }
    for (unsigned i = 0; i < vms_machine_ncores(f->m); i++)
        for (unsigned l = 0; l < VMS_TLB_NLEVELS; l++) {
            vms_tlb *t = vms_core_tlb(vms_machine_core(f->m, i), (vms_tlb_level)l);
            if (t)
                vms_tlb_set_memo(t, false);
        }
}

/* ---- seeded traces ------------------------------------------------------------------- */

#define BASE   UINT64_C(0x10000000)
#define NPAGES 700 /* pages the generator touches: more than the L2 TLB's 4K reach per set */

static vms_trace_event ev_access(uint32_t tid, uint64_t va, uint32_t size, unsigned kind)
{
    vms_trace_event e = {.type = VMS_TEV_ACCESS, .tid = tid};
    e.access.va = va;
    e.access.size = size;
    e.access.kind = (uint8_t)kind;
    return e;
}

static vms_trace_event ev_kernel(vms_trace_type type, uint32_t tid)
{
    vms_trace_event e = {.type = (uint8_t)type, .tid = tid};
    return e;
}

/*
 * Event i of a seeded trace: mostly references with locality (stay on a page, step to
 * the next, or jump), some crossing a page, some modifies, by up to three threads of
 * the first process and one forked child; now and then a system call over a range of
 * the touched pages, a kernel write, a reference to the kernel half (a segfault that
 * kills its process). Thread 1 is the first; 2 and 3 are threads, 4 a forked process.
 */
typedef struct gen {
    vms_rng rng;
    uint64_t page;
    bool threads, forked, killed;
} gen;

static vms_trace_event gen_next(gen *g, uint64_t i)
{
    unsigned r = (unsigned)vms_rng_below(&g->rng, 1000);
    if (i == 50 && g->threads) {
        vms_trace_event e = ev_kernel(VMS_TEV_CLONE, 1);
        e.clone.child = 2;
        e.clone.flags = VMS_TCLONE_VM;
        return e;
    }
    if (i == 60 && g->threads) {
        vms_trace_event e = ev_kernel(VMS_TEV_CLONE, 1);
        e.clone.child = 3;
        e.clone.flags = VMS_TCLONE_VM;
        return e;
    }
    if (i == 2000 && g->forked) {
        vms_trace_event e = ev_kernel(VMS_TEV_CLONE, 1);
        e.clone.child = 4;
        return e;
    }
    uint32_t tid = 1;
    if (g->threads && i > 60)
        tid = 1 + (uint32_t)vms_rng_below(&g->rng, 3);
    if (g->forked && i > 2000 && vms_rng_below(&g->rng, 4) == 0)
        tid = 4;
    if (r < 4) { /* a system call over a few pages around the current one */
        vms_trace_type t = r == 0   ? VMS_TEV_MUNMAP
                           : r == 1 ? VMS_TEV_MPROTECT
                           : r == 2 ? VMS_TEV_MADVISE
                                    : VMS_TEV_KWRITE;
        uint64_t addr = BASE + ((g->page & ~UINT64_C(3)) << 12);
        uint64_t len = (1 + vms_rng_below(&g->rng, 40)) << 12;
        vms_trace_event e = ev_kernel(t, tid);
        if (t == VMS_TEV_MUNMAP) {
            e.munmap.addr = addr;
            e.munmap.len = len;
        } else if (t == VMS_TEV_MPROTECT) {
            e.mprotect.addr = addr;
            e.mprotect.len = len;
            e.mprotect.prot =
                VMS_TPROT_ALL; /* rwx: splits, rewrites PTEs, shoots down; keeps fetches legal */
        } else if (t == VMS_TEV_MADVISE) {
            e.madvise.addr = addr;
            e.madvise.len = len;
            e.madvise.advice = VMS_MADV_DONTNEED;
        } else {
            e.kwrite.va = addr + vms_rng_below(&g->rng, 4096);
            e.kwrite.len = 1 + vms_rng_below(&g->rng, 9000);
        }
        return e;
    }
    if (r == 4 && g->killed && i > 17000 && tid == 4) /* the child touches the kernel half */
        return ev_access(tid, UINT64_C(0xffff888000001000), 8, VMS_TACC_READ);
    if (r == 5) /* a string reference (17 to 80 pages): resumed at its faulting pages */
        return ev_access(tid, BASE + (vms_rng_below(&g->rng, NPAGES) << 12) + 8,
                         (uint32_t)((17 + vms_rng_below(&g->rng, 64)) << 12),
                         (unsigned)vms_rng_below(&g->rng, 4));
    if (r < 300)
        g->page = vms_rng_below(&g->rng, NPAGES);
    else if (r < 400)
        g->page = (g->page + 1) % NPAGES;
    unsigned kind = (unsigned)vms_rng_below(&g->rng, 4);
    uint32_t size = r % 7 == 0 ? 64 : 1u << vms_rng_below(&g->rng, 4);
    uint64_t off = r % 11 == 0 ? 4096 - 3 : vms_rng_below(&g->rng, 4096 - 64);
    return ev_access(tid, BASE + (g->page << 12) + off, size, kind);
}

/* How a replay is run: the real paths, or a deliberately broken shortcut. */
typedef enum mode {
    FAST,         /* batch path + memo (the shortcuts on) */
    SLOW,         /* vms_proc_access reference by reference, memo off */
    BROKEN_SKIP,  /* "fast": skips a reference repeating the previous one's page */
    BROKEN_STALE, /* "fast": remembers pages it saw mapped and forgets munmap */
} mode;

/* Replay n events of generator seed on f. */
static bool replay_gen(fx *f, uint64_t seed, uint64_t n, bool threads, mode md)
{
    gen g = {.threads = threads, .forked = threads, .killed = threads};
    vms_rng_seed(&g.rng, seed);
    uint64_t last_page = UINT64_MAX, seen[NPAGES] = {0};
    vms_err err = {0};
    for (uint64_t i = 0; i < n; i++) {
        vms_trace_event e = gen_next(&g, i);
        if (e.type == VMS_TEV_ACCESS && md == BROKEN_SKIP) {
            uint64_t pg = e.access.va >> 12;
            bool same = pg == last_page && ((e.access.va + e.access.size - 1) >> 12) == pg;
            last_page = pg;
            if (same)
                continue; /* "a TLB hit: nothing to model" — wrong: hits are counted */
        }
        if (e.type == VMS_TEV_ACCESS && md == BROKEN_STALE) {
            uint64_t pg = (e.access.va - BASE) >> 12;
            if (pg < NPAGES && seen[pg] && e.access.kind == VMS_TACC_READ)
                continue; /* "cached: known good" — wrong after an munmap */
            if (pg < NPAGES)
                seen[pg] = 1;
        }
        if (vms_replay_event(f->r, &e, NULL, &err) != VMS_OK) {
            fprintf(stderr, "replay: %s\n", err.msg);
            return false;
        }
    }
    return vms_replay_flush(f->r, &err) == VMS_OK;
}

/* Replay the same seeded trace in mode md and with every shortcut off; count mismatches
 * of the JSON and of the TLB entries. Returns false on a setup failure. */
static bool differ(const char *const *sets, uint64_t seed, uint64_t n, bool threads, mode md,
                   bool *json_same, unsigned *tlb_diff)
{
    fx a, b;
    vms_replay_opts fast = {.layout = VMS_REPLAY_LAYOUT_AUTO};
    vms_replay_opts slow = {.layout = VMS_REPLAY_LAYOUT_AUTO, .slow = true};
    if (!fx_init(&a, sets, &fast) || !fx_init(&b, sets, &slow))
        return false;
    memo_off(&b);
    bool ok = replay_gen(&a, seed, n, threads, md) && replay_gen(&b, seed, n, threads, SLOW);
    vms_strbuf ja, jb;
    fx_json(&a, &ja);
    fx_json(&b, &jb);
    *json_same = strcmp(vms_strbuf_str(&ja), vms_strbuf_str(&jb)) == 0;
    if (!*json_same && md == FAST)
        fprintf(stderr, "fast: %s\nslow: %s\n", vms_strbuf_str(&ja), vms_strbuf_str(&jb));
    *tlb_diff = tlb_diffs(&a, &b);
    /* The trace must exercise the model: most references by live processes. */
    const vms_replay_stats *rs = vms_replay_get_stats(b.r);
    if (md == FAST && (rs->dead_refs > rs->references / 4 || rs->references < n / 2)) {
        fprintf(stderr, "trace too short-lived: %" PRIu64 " references, %" PRIu64 " dead\n",
                rs->references, rs->dead_refs);
        ok = false;
    }
    vms_err err = {0};
    ok = ok && vms_kernel_check(a.k, &err) == VMS_OK && vms_kernel_check(b.k, &err) == VMS_OK;
    vms_strbuf_free(&ja);
    vms_strbuf_free(&jb);
    fx_fini(&a);
    fx_fini(&b);
    return ok;
}

/* ---- the exactness proof ------------------------------------------------------------- */

static void test_fast_equals_slow(void)
{
    static const char *const c_lru[] = {"tlb.policy=lru", NULL};
    static const char *const c_plru[] = {"tlb.policy=plru", "cores=2", NULL};
    static const char *const c_fifo[] = {"tlb.policy=fifo", "kernel.pcid=off", NULL};
    static const char *const c_rand[] = {"tlb.policy=random", "seed=7", "kernel.zero_page=off",
                                         NULL};
    static const char *const c_tiny[] = {"preset=tiny", NULL};
    static const char *const c_nol2[] = {"tlb.l2=none", "pwc.pde=none", "cores=3",
                                         "cost.mem_access=3", NULL};
    /* Memory pressure: reclaim, swap-out and swap-in under the page-replacement
     * policies, exact LRU among them (it must see every reference: access_done). */
    static const char *const c_swlru[] = {"ram=2M", "swap=16M", "policy=lru", NULL};
    static const char *const c_swclock[] = {"ram=2M", "swap=16M", "policy=clock", "cores=2", NULL};
    static const char *const c_swtwo[] = {"ram=2M", "swap=16M", "policy=twolist",
                                          "tlb.policy=random", NULL};
    /* Memo slots sharing a set (fully associative L1s, two sets, 2 MiB entries): a touch
     * through one slot makes the others stale (tlb_impl.h: memo_fresh). */
    static const char *const c_fa[] = {"tlb.l1d=4K:1x64:lru, 2M:1x8:lru", "tlb.l1i=4K:2x4:plru",
                                       NULL};
    static const char *const c_thp[] = {"thp=always", "tlb.policy=lru", NULL};
    static const char *const *const cfgs[] = {c_lru,   c_plru,    c_fifo,  c_rand, c_tiny, c_nol2,
                                              c_swlru, c_swclock, c_swtwo, c_fa,   c_thp};
    for (uint64_t round = 0; th_soak_more("VMS_REPLAY_SOAK", 1, round); round++) {
        for (unsigned c = 0; c < sizeof cfgs / sizeof cfgs[0]; c++) {
            for (int threads = 0; threads < 2; threads++) {
                bool same = false;
                unsigned tdiff = 1;
                uint64_t seed = th_seed + round * 100 + c * 2 + (uint64_t)threads;
                REQUIRE_VOID(differ(cfgs[c], seed, 20000, threads, FAST, &same, &tdiff));
                CHECK(same);
                CHECK_EQ(tdiff, 0);
                if (!same || tdiff)
                    fprintf(stderr, "  config %u threads %d seed %" PRIu64 "\n", c, threads, seed);
            }
        }
    }
}

/* The comparison above must catch shortcuts that are not exact. */
static void test_broken_shortcuts_caught(void)
{
    static const char *const c_lru[] = {"tlb.policy=lru", NULL};
    bool same = true;
    unsigned tdiff = 0;
    REQUIRE_VOID(differ(c_lru, th_seed, 20000, true, BROKEN_SKIP, &same, &tdiff));
    CHECK(!same); /* hit counts, cycles and accesses differ */
    same = true;
    REQUIRE_VOID(differ(c_lru, th_seed, 20000, true, BROKEN_STALE, &same, &tdiff));
    CHECK(!same); /* faults (and segfaults of reads after munmap) differ */
}

/* ---- layouts --------------------------------------------------------------------------- */

static void test_auto_layout(void)
{
    fx f;
    vms_replay_opts o = {.layout = VMS_REPLAY_LAYOUT_DEFAULT};
    REQUIRE_VOID(fx_init(&f, NULL, &o));
    vms_err err = {0};
    /* Two writes in one 2 MiB region, one in the next, a page-crossing read. */
    vms_trace_event ev[] = {
        ev_access(0, UINT64_C(0x4000000), 8, VMS_TACC_WRITE),
        ev_access(0, UINT64_C(0x4001000), 8, VMS_TACC_WRITE),
        ev_access(0, UINT64_C(0x4200ffc), 8, VMS_TACC_READ),
        ev_access(0, UINT64_C(0x4000000), 8, VMS_TACC_MODIFY),
        ev_access(0, UINT64_C(0x4000010), 4, VMS_TACC_EXEC),
    };
    for (size_t i = 0; i < sizeof ev / sizeof ev[0]; i++)
        CHECK_EQ(vms_replay_event(f.r, &ev[i], NULL, &err), VMS_OK);
    CHECK_EQ(vms_replay_flush(f.r, &err), VMS_OK);
    CHECK_EQ(vms_replay_get_layout(f.r), VMS_REPLAY_LAYOUT_AUTO);
    const vms_kernel_stats *ks = vms_kernel_get_stats(f.k);
    const vms_replay_stats *rs = vms_replay_get_stats(f.r);
    CHECK_EQ(ks->auto_anon_vmas, 2); /* 0x4000000 and 0x4200000 blocks (merged: adjacent) */
    CHECK_EQ(ks->anon_alloc, 2);     /* two written pages */
    CHECK_EQ(ks->zero_page, 2);      /* the read crosses into two untouched pages */
    CHECK_EQ(ks->pgfault, 4);
    CHECK_EQ(ks->segv, 0);
    CHECK_EQ(rs->references, 5);
    CHECK_EQ(rs->by_kind[VMS_TACC_MODIFY], 1);
    /* The auto VMAs are one merged rwx anonymous mapping. */
    vms_strbuf sb;
    vms_strbuf_init(&sb, NULL);
    vms_proc_maps(f.k, vms_proc_at(f.k, 0), &sb);
    CHECK(strstr(vms_strbuf_str(&sb), "04000000-04400000 rwxp") != NULL);
    vms_strbuf_free(&sb);
    /* A reference to the kernel half still segfaults; later ones are skipped. */
    vms_trace_event bad = ev_access(0, UINT64_C(0xffff888000000000), 8, VMS_TACC_READ);
    vms_trace_event after = ev_access(0, UINT64_C(0x4000000), 8, VMS_TACC_READ);
    CHECK_EQ(vms_replay_event(f.r, &bad, NULL, &err), VMS_OK);
    CHECK_EQ(vms_replay_event(f.r, &after, NULL, &err), VMS_OK);
    CHECK_EQ(vms_replay_flush(f.r, &err), VMS_OK);
    CHECK_EQ(rs->segv, 1);
    CHECK_EQ(rs->dead_refs, 1);
    CHECK_EQ(ks->segv, 1);
    fx_fini(&f);
}

static const char *g_argv0; /* for th_source_path */

/* set: a kernel.pagecache setting or NULL (auto: warm for a recorded layout); major: the
 * file page's first read is a major fault (cold) or a minor one (warm: resident). */
static void recorded_layout(const char *set, bool major)
{
    fx f;
    vms_replay_opts o = {.layout = VMS_REPLAY_LAYOUT_RECORDED};
    const char *sets[] = {set, NULL};
    REQUIRE_VOID(fx_init(&f, sets, &o));
    vms_err err = {0};
    char path[1024];
    th_source_path(g_argv0, "examples/data/sample.txt", path, sizeof path);
    vms_trace_event map = ev_kernel(VMS_TEV_MAP, 7);
    map.map.start = UINT64_C(0x600000);
    map.map.end = UINT64_C(0x601000);
    map.map.prot = VMS_TPROT_READ;
    map.map.flags = 0; /* private file mapping */
    vms_trace_event missing = map;
    missing.map.start = UINT64_C(0x700000);
    missing.map.end = UINT64_C(0x702000);
    vms_trace_event heap = ev_kernel(VMS_TEV_MAP, 7);
    heap.map.start = UINT64_C(0x800000);
    heap.map.end = UINT64_C(0x801000);
    heap.map.prot = VMS_TPROT_READ | VMS_TPROT_WRITE;
    heap.map.flags = VMS_TMAP_ANON;
    CHECK_EQ(vms_replay_event(f.r, &map, path, &err), VMS_OK);
    CHECK_EQ(vms_replay_event(f.r, &missing, "/nonexistent/lib.so", &err), VMS_OK);
    CHECK_EQ(vms_replay_event(f.r, &heap, "[heap]", &err), VMS_OK);
    const vms_replay_stats *rs = vms_replay_get_stats(f.r);
    const vms_kernel_stats *ks = vms_kernel_get_stats(f.k);
    CHECK_EQ(rs->files_mapped, 1);
    CHECK_EQ(rs->files_missing, 1);
    CHECK_EQ(rs->syscalls, 3);
    CHECK_EQ(rs->syscall_errors, 0);
    /* A read of the file page is a major fault when the cache is cold, minor when warm; of
     * the anonymous stand-in a minor one. A warm first touch reads nothing (pgpgin). */
    vms_trace_event r1 = ev_access(7, UINT64_C(0x600010), 8, VMS_TACC_READ);
    vms_trace_event r2 = ev_access(7, UINT64_C(0x701000), 8, VMS_TACC_READ);
    CHECK_EQ(vms_replay_event(f.r, &r1, NULL, &err), VMS_OK);
    CHECK_EQ(vms_replay_event(f.r, &r2, NULL, &err), VMS_OK);
    CHECK_EQ(vms_replay_flush(f.r, &err), VMS_OK);
    CHECK_EQ(ks->pgmajfault, major ? 1u : 0u);
    CHECK_EQ(ks->minor, major ? 1u : 2u);
    CHECK(major ? ks->pgpgin > 0 : ks->pgpgin == 0);
    /* brk: the [heap] end is the break; growing by 2 pages maps them. */
    vms_trace_event brk = ev_kernel(VMS_TEV_BRK, 7);
    brk.brk.addr = brk.brk.ret = UINT64_C(0x803000);
    CHECK_EQ(vms_replay_event(f.r, &brk, NULL, &err), VMS_OK);
    vms_trace_event w = ev_access(7, UINT64_C(0x802ff8), 8, VMS_TACC_WRITE);
    CHECK_EQ(vms_replay_event(f.r, &w, NULL, &err), VMS_OK);
    CHECK_EQ(vms_replay_flush(f.r, &err), VMS_OK);
    CHECK_EQ(ks->segv, 0);
    /* Kernel writes: into an untouched heap page (a kernel-mode fault, counted like a
     * user one), and into unmapped memory (EFAULT, no signal). */
    uint64_t faults = ks->pgfault;
    vms_trace_event kw = ev_kernel(VMS_TEV_KWRITE, 7);
    kw.kwrite.va = UINT64_C(0x800100);
    kw.kwrite.len = 100;
    CHECK_EQ(vms_replay_event(f.r, &kw, NULL, &err), VMS_OK);
    CHECK_EQ(ks->pgfault, faults + 1);
    CHECK_EQ(ks->kernel_faults, 1);
    vms_trace_event after = ev_access(7, UINT64_C(0x800100), 8, VMS_TACC_WRITE);
    CHECK_EQ(vms_replay_event(f.r, &after, NULL, &err), VMS_OK);
    CHECK_EQ(vms_replay_flush(f.r, &err), VMS_OK);
    CHECK_EQ(ks->pgfault, faults + 1); /* the kernel's write made the page writable */
    kw.kwrite.va = UINT64_C(0x900000);
    CHECK_EQ(vms_replay_event(f.r, &kw, NULL, &err), VMS_OK);
    CHECK_EQ(rs->kwrite_efault, 1);
    CHECK_EQ(ks->efault, 1);
    CHECK_EQ(ks->segv, 1); /* the fault's category (no signal: EFAULT), so total = the sum */
    /* A reference outside every mapping is a segfault, as data. */
    vms_trace_event stray = ev_access(7, UINT64_C(0x900000), 4, VMS_TACC_WRITE);
    CHECK_EQ(vms_replay_event(f.r, &stray, NULL, &err), VMS_OK);
    CHECK_EQ(vms_replay_flush(f.r, &err), VMS_OK);
    CHECK_EQ(ks->segv, 2);
    CHECK_EQ(rs->segv, 1);
    CHECK_EQ(ks->pgfault, ks->minor + ks->pgmajfault + ks->segv + ks->sigbus);
    /* Exit of the process: everything returned. */
    vms_trace_event ex = ev_kernel(VMS_TEV_EXIT, 7);
    ex.exit.group = 1;
    CHECK_EQ(vms_replay_event(f.r, &ex, NULL, &err), VMS_OK);
    CHECK_EQ(vms_proc_count(f.k), 0);
    CHECK_EQ(vms_kernel_check(f.k, &err), VMS_OK);
    fx_fini(&f);
}

/*
 * `sh -c true` in small: the parent (tid 7) writes 8 heap pages and vforks child 8, which
 * writes one of them, execs and maps its own page at the same address, writes it and
 * exits; then the parent writes its 8 pages again. With native 1.1's CLONE VM|VFORK and
 * EXEC the child shares the parent's memory until the exec: the only fault after the
 * vfork is the child's own new page. The pre-1.1 form (CLONE VFORK, exec as munmap of
 * all user space) forks: the child's write copies a page and the parent's writes take a
 * write-protect fault on each page. Either way the parent's memory survives the child's
 * exec and every frame comes back.
 */
static void test_vfork_exec(void)
{
    for (int modern = 1; modern >= 0; modern--) {
        fx f;
        vms_replay_opts o = {.layout = VMS_REPLAY_LAYOUT_RECORDED};
        REQUIRE_VOID(fx_init(&f, NULL, &o));
        uint64_t free0 = vms_frames_nfree(vms_kernel_frames(f.k));
        vms_err err = {0};
        const vms_replay_stats *rs = vms_replay_get_stats(f.r);
        const vms_kernel_stats *ks = vms_kernel_get_stats(f.k);
        vms_trace_event heap = ev_kernel(VMS_TEV_MAP, 7);
        heap.map.start = UINT64_C(0x800000);
        heap.map.end = UINT64_C(0x808000);
        heap.map.prot = VMS_TPROT_READ | VMS_TPROT_WRITE;
        heap.map.flags = VMS_TMAP_ANON;
        CHECK_EQ(vms_replay_event(f.r, &heap, "[heap]", &err), VMS_OK);
        for (uint64_t i = 0; i < 8; i++) {
            vms_trace_event w = ev_access(7, heap.map.start + (i << 12), 8, VMS_TACC_WRITE);
            CHECK_EQ(vms_replay_event(f.r, &w, NULL, &err), VMS_OK);
        }
        vms_trace_event cl = ev_kernel(VMS_TEV_CLONE, 7);
        cl.clone.child = 8;
        cl.clone.flags = modern ? VMS_TCLONE_VM | VMS_TCLONE_VFORK : VMS_TCLONE_VFORK;
        CHECK_EQ(vms_replay_event(f.r, &cl, NULL, &err), VMS_OK);
        uint64_t faults0 = ks->pgfault, cow0 = ks->cow_copy;
        vms_trace_event cw = ev_access(8, heap.map.start + 16, 8, VMS_TACC_WRITE);
        CHECK_EQ(vms_replay_event(f.r, &cw, NULL, &err), VMS_OK);
        vms_trace_event ex = ev_kernel(VMS_TEV_MUNMAP, 8);
        if (modern) {
            ex = ev_kernel(VMS_TEV_EXEC, 8);
            ex.exec.path = 1;
        } else {
            ex.munmap.addr = 0;
            ex.munmap.len = UINT64_C(0x7ffffffff000);
        }
        CHECK_EQ(vms_replay_event(f.r, &ex, "/bin/true", &err), VMS_OK);
        CHECK_EQ(vms_proc_count(f.k), 2);
        CHECK_EQ(vms_kernel_check(f.k, &err), VMS_OK);
        if (modern) {
            vms_task_info info;
            vms_task_get_info(vms_proc_at(f.k, 1), &info);
            CHECK_EQ(strcmp(info.name, "true"), 0);
        }
        vms_trace_event img = heap;
        img.tid = 8;
        img.map.end = heap.map.start + 4096;
        CHECK_EQ(vms_replay_event(f.r, &img, "[heap]", &err), VMS_OK);
        CHECK_EQ(vms_replay_event(f.r, &cw, NULL, &err), VMS_OK);
        vms_trace_event cx = ev_kernel(VMS_TEV_EXIT, 8);
        cx.exit.group = 1;
        CHECK_EQ(vms_replay_event(f.r, &cx, NULL, &err), VMS_OK);
        CHECK_EQ(vms_proc_count(f.k), 1);
        for (uint64_t i = 0; i < 8; i++) {
            vms_trace_event w = ev_access(7, heap.map.start + (i << 12) + 8, 8, VMS_TACC_WRITE);
            CHECK_EQ(vms_replay_event(f.r, &w, NULL, &err), VMS_OK);
        }
        CHECK_EQ(vms_replay_flush(f.r, &err), VMS_OK);
        CHECK_EQ(ks->segv, 0);
        CHECK_EQ(rs->processes, 2);
        CHECK_EQ(rs->syscall_errors, 0);
        if (modern) {
            CHECK_EQ(ks->pgfault - faults0, 1); /* the new image's page only */
            CHECK_EQ(ks->cow_copy, cow0);
        } else {
            CHECK_EQ(ks->pgfault - faults0, 1 + 1 + 8); /* child COW, its page, parent's */
            CHECK_EQ(ks->cow_copy - cow0, 1);
        }
        CHECK_EQ(vms_kernel_check(f.k, &err), VMS_OK);
        vms_trace_event px = ev_kernel(VMS_TEV_EXIT, 7);
        px.exit.group = 1;
        CHECK_EQ(vms_replay_event(f.r, &px, NULL, &err), VMS_OK);
        CHECK_EQ(vms_proc_count(f.k), 0);
        CHECK_EQ(vms_kernel_check(f.k, &err), VMS_OK);
        CHECK_EQ(vms_frames_nfree(vms_kernel_frames(f.k)), free0);
        fx_fini(&f);
    }
}

/* ---- whole traces through vms_replay_run ----------------------------------------------- */

static vms_status run_text(const char *text, const char *sets0, vms_strbuf *out, vms_err *err)
{
    const char *sets[] = {sets0, NULL};
    fx f;
    vms_replay_opts o = {0};
    if (!fx_init(&f, sets0 ? sets : NULL, &o))
        return VMS_ERR_INVAL;
    vms_trace_reader *rd = NULL;
    vms_status st =
        vms_trace_reader_open_mem(text, strlen(text), "t.lackey", VMS_TRACE_AUTO, NULL, &rd, err);
    if (st == VMS_OK)
        st = vms_replay_run(f.r, rd, err);
    if (st == VMS_OK)
        fx_json(&f, out);
    vms_trace_reader_close(rd);
    fx_fini(&f);
    return st;
}

static void test_run_and_determinism(void)
{
    static const char text[] = "==1== Lackey\nI  04001000,3\n L 1ffefff000,8\n S 1ffefff008,8\n"
                               " M 04201000,4\nI  04001003,5\n";
    vms_strbuf a, b;
    vms_err err = {0};
    CHECK_EQ(run_text(text, "seed=3", &a, &err), VMS_OK);
    CHECK_EQ(run_text(text, "seed=3", &b, &err), VMS_OK);
    CHECK_STR(vms_strbuf_str(&a), vms_strbuf_str(&b));
    CHECK(strstr(vms_strbuf_str(&a), "\"references\":5") != NULL);
    CHECK(strstr(vms_strbuf_str(&a), "\"layout\":\"auto\"") != NULL);
    vms_strbuf_free(&a);
    vms_strbuf_free(&b);
    /* A malformed line: the error names the trace and the line. */
    static const char bad[] = "I  04001000,3\nhello\n";
    CHECK_EQ(run_text(bad, NULL, &a, &err), VMS_ERR_PARSE);
    CHECK(strstr(err.msg, "t.lackey:2:") != NULL);
}

/* The batch API's argument checks and its equality with vms_proc_access on one task. */
static void test_batch_api(void)
{
    fx f;
    REQUIRE_VOID(fx_init(&f, NULL, NULL));
    vms_task *t = NULL;
    vms_err err = {0};
    REQUIRE_VOID(vms_proc_spawn(f.k, "b", 0, &t, &err) == VMS_OK);
    uint64_t addr = 0;
    REQUIRE_VOID(vms_sys_mmap(f.k, t, 0, 1 << 20, VMS_PROT_READ | VMS_PROT_WRITE,
                              VMS_MAP_PRIVATE | VMS_MAP_ANONYMOUS, NULL, 0, &addr, &err) == VMS_OK);
    vms_ref refs[3] = {{addr, 8, VMS_ACC_WRITE, {0}},
                       {addr + 4090, 20, VMS_ACC_READ, {0}},
                       {addr, 0, VMS_ACC_READ, {0}}};
    size_t done = 99;
    vms_access_info info;
    CHECK_EQ(vms_proc_access_batch(f.k, t, refs, 3, &done, &info, &err), VMS_ERR_INVAL);
    CHECK_EQ(done, 0);
    CHECK_EQ(vms_proc_access_batch(f.k, t, refs, 2, &done, &info, &err), VMS_OK);
    CHECK_EQ(done, 2);
    CHECK_EQ(info.outcome, VMS_ACCESS_OK);
    CHECK_EQ(info.faults, 2); /* the write's page, then the zero page for the next one */
    refs[0].va = VMS_TASK_SIZE + 5;
    CHECK_EQ(vms_proc_access_batch(f.k, t, refs, 2, &done, &info, &err), VMS_OK);
    CHECK_EQ(done, 0);
    CHECK_EQ(info.outcome, VMS_ACCESS_SEGV);
    CHECK_EQ(vms_proc_access_batch(f.k, t, refs + 1, 1, &done, &info, &err), VMS_OK);
    CHECK_EQ(info.outcome, VMS_ACCESS_DEAD);
    vms_proc_exit(f.k, t);
    fx_fini(&f);
}

/* Random kernel events with random arguments — bad alignment, overlaps, unknown and
 * reused tids, exits of every kind — mixed with references, in both layouts: the replay
 * counts what it refuses and never crashes; the kernel's invariants hold throughout. */
static void test_random_events_robust(void)
{
    for (int layout = VMS_REPLAY_LAYOUT_AUTO; layout <= VMS_REPLAY_LAYOUT_RECORDED; layout++) {
        fx f;
        vms_replay_opts o = {.layout = (vms_replay_layout)layout};
        static const char *const sets[] = {"cores=2", "ram=64M", NULL};
        REQUIRE_VOID(fx_init(&f, sets, &o));
        vms_rng rng;
        vms_rng_seed(&rng, th_seed ^ 0x5eed);
        vms_err err = {0};
        unsigned failures = 0, checks_bad = 0;
        for (int i = 0; i < 6000; i++) {
            vms_trace_event e = {.type = (uint8_t)vms_rng_below(&rng, VMS_TEV_NTYPES),
                                 .tid = (uint32_t)vms_rng_below(&rng, 6)};
            uint64_t a = BASE + (vms_rng_below(&rng, 64) << 12) +
                         (vms_rng_below(&rng, 8) == 0 ? vms_rng_below(&rng, 4096) : 0);
            uint64_t len =
                vms_rng_below(&rng, 8) == 0 ? vms_rng_next(&rng) >> 34 : vms_rng_below(&rng, 40000);
            switch (e.type) {
            case VMS_TEV_ACCESS:
                e = ev_access(e.tid, a, 1 + (uint32_t)vms_rng_below(&rng, 9000),
                              (unsigned)vms_rng_below(&rng, 4));
                break;
            case VMS_TEV_MAP:
                e.map.start = a;
                e.map.end = a + len;
                e.map.prot = (uint8_t)vms_rng_below(&rng, 8);
                e.map.flags = (uint8_t)vms_rng_below(&rng, 0x80);
                break;
            case VMS_TEV_MMAP:
                e.mmap.addr = a;
                e.mmap.len = len;
                e.mmap.ret = vms_rng_below(&rng, 10) ? a : VMS_TRACE_MAP_FAILED;
                e.mmap.prot = (uint8_t)vms_rng_below(&rng, 8);
                e.mmap.flags = (uint8_t)vms_rng_below(&rng, 0x80);
                break;
            case VMS_TEV_MUNMAP:
            case VMS_TEV_MPROTECT:
            case VMS_TEV_MADVISE:
                e.munmap.addr = a;
                e.munmap.len = len;
                if (e.type == VMS_TEV_MPROTECT)
                    e.mprotect.prot = (uint8_t)vms_rng_below(&rng, 8);
                if (e.type == VMS_TEV_MADVISE)
                    e.madvise.advice = (uint32_t)vms_rng_below(&rng, 10);
                break;
            case VMS_TEV_BRK:
                e.brk.addr = e.brk.ret = a + len;
                break;
            case VMS_TEV_CLONE:
                e.clone.child = (uint32_t)vms_rng_below(&rng, 8);
                e.clone.flags = (uint8_t)vms_rng_below(&rng, 4);
                break;
            case VMS_TEV_EXIT:
                e.exit.group = (uint8_t)vms_rng_below(&rng, 2);
                break;
            case VMS_TEV_KWRITE:
                e.kwrite.va = vms_rng_below(&rng, 16) ? a : vms_rng_next(&rng);
                e.kwrite.len = len % 20000;
                break;
            default:
                break;
            }
            if (vms_replay_event(f.r, &e, vms_rng_below(&rng, 2) ? "[anon]" : NULL, &err) !=
                VMS_OK) {
                if (failures++ < 3)
                    fprintf(stderr, "event %d (%s): %s\n", i, vms_trace_type_name(e.type), err.msg);
            }
            if (i % 500 == 0) {
                failures += vms_replay_flush(f.r, &err) != VMS_OK;
                checks_bad += vms_kernel_check(f.k, &err) != VMS_OK;
            }
        }
        failures += vms_replay_flush(f.r, &err) != VMS_OK;
        CHECK_EQ(failures, 0);
        CHECK_EQ(checks_bad, 0);
        CHECK_EQ(vms_kernel_check(f.k, &err), VMS_OK);
        const vms_replay_stats *rs = vms_replay_get_stats(f.r);
        CHECK(rs->syscall_errors > 0); /* the random arguments were refused sometimes… */
        CHECK(rs->syscalls > rs->syscall_errors); /* … and accepted other times */
        CHECK(rs->processes + rs->threads > 2);
        fx_fini(&f);
    }
}

/*
 * Allocation failure (issue 16): replay a lackey trace touching 48 pages of code, stack
 * and heap with every allocation after the k-th failing (machine, kernel, replay and
 * trace reader share the allocator), for k from 0 until a run succeeds. Each run either
 * succeeds with the reference run's counters or fails with VMS_ERR_NOMEM after a failure
 * was injected; nothing crashes and nothing leaks.
 */
static vms_status failalloc_replay(long budget, th_failalloc *fa, const char *text,
                                   vms_strbuf *json)
{
    const vms_allocator *a = th_failalloc_init(fa, budget);
    vms_err err = {0};
    vms_config c;
    vms_machine *m = NULL;
    vms_kernel *k = NULL;
    vms_replay *r = NULL;
    vms_trace_reader *rd = NULL;
    vms_replay_opts o = {0};
    vms_config_init(&c, "skylake", &err);
    vms_kernel_config kc = vms_config_kernel(&c);
    vms_status st = vms_machine_create(a, &c.machine, &m, &err);
    if (st == VMS_OK)
        st = vms_kernel_create(m, &kc, &k, &err);
    if (st == VMS_OK)
        st = vms_replay_create(k, &o, &r, &err);
    if (st == VMS_OK)
        st =
            vms_trace_reader_open_mem(text, strlen(text), "f.lackey", VMS_TRACE_AUTO, a, &rd, &err);
    if (st == VMS_OK)
        st = vms_replay_run(r, rd, &err);
    if (st == VMS_OK && json) {
        vms_strbuf_init(json, NULL);
        vms_machine_stats_json_members(m, json);
        vms_kernel_stats_json_members(k, json);
        vms_replay_stats_json_members(r, json);
    }
    vms_trace_reader_close(rd);
    vms_replay_destroy(r);
    vms_kernel_destroy(k);
    vms_machine_destroy(m);
    return st;
}

static void test_failalloc(void)
{
    vms_strbuf text;
    vms_strbuf_init(&text, NULL);
    vms_strbuf_printf(&text, "==1== Lackey\n");
    for (unsigned i = 0; i < 48; i++)
        vms_strbuf_printf(&text, "I  %08x,4\n L 1ffeff%04x,8\n S %08x,8\n M %08x,4\n",
                          0x4001000 + (i % 8) * 0x1000, 0xf000 - (i % 16) * 0x1000,
                          0x4201000 + i * 0x1000, 0x4201008 + (i / 2) * 0x1000);
    th_failalloc fa;
    vms_strbuf want, got;
    REQUIRE_VOID(failalloc_replay(-1, &fa, vms_strbuf_str(&text), &want) == VMS_OK);
    CHECK_EQ(fa.live_bytes, 0);
    const unsigned long total = fa.allocs;
    unsigned long stopped = 0, bad = 0, leaks = 0, differ = 0;
    unsigned long step = total > 300 ? total / 300 : 1;
    for (unsigned long b = 0; b < total; b += b < 64 ? 1 : step) {
        vms_status st = failalloc_replay((long)b, &fa, vms_strbuf_str(&text), &got);
        if (st == VMS_OK) {
            if (strcmp(vms_strbuf_str(&got), vms_strbuf_str(&want)) != 0) {
                differ++;
                fprintf(stderr, "failalloc budget %lu (%lu failures): counters differ\n%s\n%s\n", b,
                        fa.failures, vms_strbuf_str(&want), vms_strbuf_str(&got));
            }
            vms_strbuf_free(&got);
        } else if (st == VMS_ERR_NOMEM && fa.failures > 0) {
            stopped++;
        } else {
            bad++;
            fprintf(stderr, "failalloc budget %lu: status %d, %lu failures\n", b, (int)st,
                    fa.failures);
        }
        leaks += fa.live_bytes != 0;
    }
    printf("replay: failalloc: %lu allocations, %lu runs stopped with ENOMEM\n", total, stopped);
    CHECK(stopped > 0);
    CHECK_EQ(bad, 0);
    CHECK_EQ(leaks, 0);
    CHECK_EQ(differ, 0);
    vms_strbuf_free(&want);
    vms_strbuf_free(&text);
}

/* ---- the pipelined reader (vms_trace_reader_pipeline) under vms_replay_run ------------- */

/* The tick callback of pipelined_run: each tick's references, appended. */
static void on_tick_log(void *ud, uint64_t refs, bool final)
{
    vms_strbuf_printf(ud, "%llu%s ", (unsigned long long)refs, final ? "!" : "");
}

/* Replay data (len bytes, named name) with o under sets, through a plain reader or a
 * pipelined one: every counter, the ticks, the status and message, in *out. */
static void pipelined_run(const void *data, size_t len, const char *name, const char *const *sets,
                          vms_replay_opts o, bool pipelined, vms_strbuf *out)
{
    vms_strbuf ticks;
    vms_strbuf_init(&ticks, NULL);
    o.tick = on_tick_log;
    o.ud = &ticks;
    fx f;
    vms_strbuf_init(out, NULL);
    if (!fx_init(&f, sets, &o)) {
        CHECK(false);
        vms_strbuf_free(&ticks);
        return;
    }
    vms_err err = {0};
    vms_trace_reader *rd = NULL;
    vms_status st = vms_trace_reader_open_mem(data, len, name, VMS_TRACE_AUTO, NULL, &rd, &err);
    if (st == VMS_OK && pipelined)
        st = vms_trace_reader_pipeline(rd, &rd, &err);
    if (st == VMS_OK)
        st = vms_replay_run(f.r, rd, &err);
    vms_strbuf js;
    fx_json(&f, &js); /* also after a failure: the partial results */
    vms_strbuf_printf(out, "status %d %s\nticks %s\n%s\n", (int)st, st ? err.msg : "",
                      vms_strbuf_str(&ticks), vms_strbuf_str(&js));
    vms_strbuf_free(&js);
    vms_strbuf_free(&ticks);
    vms_trace_reader_close(rd);
    fx_fini(&f);
}

/* The same replay through both readers gives the same bytes; returns the status line's
 * status for the caller's expectations. */
static int same_pipelined(const void *data, size_t len, const char *name, const char *const *sets,
                          vms_replay_opts o)
{
    vms_strbuf a, b;
    pipelined_run(data, len, name, sets, o, false, &a);
    pipelined_run(data, len, name, sets, o, true, &b);
    CHECK_STR(vms_strbuf_str(&a), vms_strbuf_str(&b));
    int st = -1;
    sscanf(vms_strbuf_str(&a), "status %d", &st);
    vms_strbuf_free(&a);
    vms_strbuf_free(&b);
    return st;
}

/*
 * vms_replay_run over a pipelined reader equals the plain one: every counter, the ticks,
 * and for a malformed line mid-trace the same message and the same partial results (the
 * counters when it failed), with and without a limit before the line, on ls.vmt and on a
 * din trace longer than the ring, fast and slow, under memory pressure.
 */
static void test_pipelined(void)
{
    static char buf[1 << 20];
    char path[1024];
    FILE *fp = fopen(th_source_path(g_argv0, "examples/traces/ls.vmt", path, sizeof path), "rb");
    REQUIRE_VOID(fp != NULL);
    size_t n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    static const char *const plain[] = {NULL}, *const tight[] = {"ram=2M", "swap=16M", NULL},
                             *const rnd[] = {"tlb.policy=random", "seed=9", NULL};
    const char *const *cfgs[] = {plain, tight, rnd};
    for (unsigned c = 0; c < 3; c++) {
        CHECK_EQ(same_pipelined(buf, n, "ls.vmt", cfgs[c], (vms_replay_opts){.interval = 100000}),
                 VMS_OK);
        CHECK_EQ(same_pipelined(buf, n, "ls.vmt", cfgs[c],
                                (vms_replay_opts){.limit = 300001, .slow = c == 2}),
                 VMS_OK);
    }
    /* din: 50000 references (the ring holds 4 x 8192), a bad label at line 40001 */
    static char din[1 << 20];
    size_t len = 0;
    vms_rng g;
    vms_rng_seed(&g, th_seed);
    for (unsigned i = 0; i < 50000; i++) {
        if (i == 40000)
            len += (size_t)snprintf(din + len, sizeof din - len, "9 10\n");
        len += (size_t)snprintf(din + len, sizeof din - len, "%u %llx\n",
                                (unsigned)vms_rng_below(&g, 3),
                                0x7f0000000000ull + vms_rng_below(&g, 1u << 24));
    }
    vms_replay_opts lim[] = {{.interval = 7000}, {.limit = 40000}, {.limit = 40001}, {.slow = 1}};
    int want[] = {VMS_ERR_PARSE, VMS_OK, VMS_ERR_PARSE, VMS_ERR_PARSE};
    for (unsigned i = 0; i < 4; i++)
        CHECK_EQ(same_pipelined(din, len, "t.din", tight, lim[i]), want[i]);
}

/* ---- the reader's batch path under the replay ------------------------------------------ */

/* Replay the trace file at path on f through vms_replay_run (the reader's batch decoder,
 * its sums of bytes and kinds) or, plain, event by event (vms_trace_read, then
 * vms_replay_event). */
static bool replay_file(fx *f, const char *path, vms_trace_format fmt, bool plain)
{
    vms_trace_reader *rd;
    vms_err err = {0};
    if (vms_trace_reader_open(path, fmt, NULL, &rd, &err) != VMS_OK) {
        fprintf(stderr, "open: %s\n", err.msg);
        return false;
    }
    vms_status st = VMS_OK;
    if (!plain) {
        st = vms_replay_run(f->r, rd, &err);
    } else {
        vms_trace_event ev;
        while (st == VMS_OK && vms_trace_read(rd, &ev, &err))
            st = vms_replay_event(f->r, &ev, NULL, &err);
        if (st == VMS_OK)
            st = vms_trace_reader_error(rd)->status;
        if (st == VMS_OK)
            st = vms_replay_flush(f->r, &err);
    }
    if (st != VMS_OK)
        fprintf(stderr, "replay %s: %s\n", path, err.msg);
    vms_trace_reader_close(rd);
    return st == VMS_OK;
}

/*
 * A seeded trace written as a native file (and its accesses as din) replays to the same
 * counters through vms_replay_run — the reader's batch decoder straight into the replay's
 * buffer, with its sums of bytes and kinds (native.c, dinero.c) — as event by event.
 * The generator's accesses have deltas of every varint length (its pages, page-crossing
 * references, other threads' regions) and sizes of 1..8 and longer strings.
 */
static void test_reader_batch_replay(void)
{
    for (int din = 0; din < 2; din++) {
        char path[256];
        snprintf(path, sizeof path, "/tmp/vmsim_test_replay_%ld_%" PRIu64 "_batch.%s",
                 (long)getpid(), th_seed, din ? "din" : "vmt");
        vms_trace_writer *w;
        vms_err err = {0};
        REQUIRE_VOID(vms_trace_writer_open(path, din ? VMS_TRACE_DINERO : VMS_TRACE_NATIVE, NULL,
                                           NULL, &w, &err) == VMS_OK);
        gen g = {.threads = !din, .forked = !din, .killed = !din};
        vms_rng_seed(&g.rng, th_seed ^ 0xdec);
        size_t written = 0;
        for (uint64_t i = 0; i < 30000; i++) {
            vms_trace_event e = gen_next(&g, i);
            if (din && e.type != VMS_TEV_ACCESS)
                continue; /* (din holds references only) */
            CHECK_EQ(vms_trace_writer_write(w, &e, &err), VMS_OK);
            written++;
        }
        CHECK_EQ(vms_trace_writer_close(w, &err), VMS_OK);
        fx a, b;
        vms_replay_opts o = {.layout = VMS_REPLAY_LAYOUT_AUTO};
        REQUIRE_VOID(fx_init(&a, NULL, &o) && fx_init(&b, NULL, &o));
        CHECK(replay_file(&a, path, din ? VMS_TRACE_DINERO : VMS_TRACE_NATIVE, false));
        CHECK(replay_file(&b, path, din ? VMS_TRACE_DINERO : VMS_TRACE_NATIVE, true));
        remove(path);
        vms_strbuf ja, jb;
        fx_json(&a, &ja);
        fx_json(&b, &jb);
        CHECK_STR(vms_strbuf_str(&ja), vms_strbuf_str(&jb));
        const vms_replay_stats *rs = vms_replay_get_stats(a.r);
        CHECK(rs->references > written / 2 && rs->by_kind[0] && rs->by_kind[1] && rs->by_kind[2]);
        CHECK_EQ(tlb_diffs(&a, &b), 0);
        vms_strbuf_free(&ja);
        vms_strbuf_free(&jb);
        fx_fini(&a);
        fx_fini(&b);
    }
}

int main(int argc, char **argv)
{
    g_argv0 = argv[0];
    th_init(argc, argv, "replay");
    test_fast_equals_slow();
    test_broken_shortcuts_caught();
    test_auto_layout();
    recorded_layout("kernel.pagecache=cold", true);
    recorded_layout("kernel.pagecache=warm", false);
    recorded_layout(NULL, false); /* auto: a recorded layout is warm */
    test_vfork_exec();
    test_run_and_determinism();
    test_batch_api();
    test_reader_batch_replay();
    test_random_events_robust();
    test_failalloc();
    test_pipelined();
    return th_finish();
}
