/*
 * test_curve.c — one-pass miss-ratio curves (curve.h): every point of a curve must equal
 * the misses of a separate run with that size.
 *
 * A seeded trace (references with locality over a few hundred pages, page crossings,
 * modifies, threads and a fork, and munmap/mprotect/madvise/kernel writes that
 * invalidate) is replayed once with curves attached, then once per size with the
 * structure configured to that size; the curve's point must equal that run's misses of
 * the structure, exactly. Configurations: the L1 dTLB and iTLB fully associative with
 * and without an L2, the default (PLRU, set-associative) L1 dTLB against fully
 * associative runs, set-associative curves (all-associativity) against set-associative
 * runs, the L2 TLB, the PDE cache, two cores, and memory pressure (reclaim and swap).
 * Then SHARDS: a sampled curve stays within a bound of the exact one and its estimate
 * is not the exact curve by accident; and a curve that misses invalidations is caught.
 */
#include <inttypes.h>

#include "harness.h"
#include "vmsim/config.h"
#include "vmsim/core.h"
#include "vmsim/mman.h"
#include "vmsim/curve.h"
#include "vmsim/pwc.h"
#include "vmsim/replay.h"
#include "vmsim/rng.h"
#include "vmsim/tlb.h"

#define BASE   UINT64_C(0x10000000)
#define MAXCV  8
#define MAXCPU 4

/* ---- runs ---- */

typedef struct run {
    vms_config c;
    vms_machine *m;
    vms_kernel *k;
    vms_replay *r;
    unsigned ncores, ncv;
    vms_curve *cv[MAXCV][MAXCPU];
} run;

/* Boot the skylake preset with `sets` and one more setting `extra` (may be NULL). */
static bool run_start(run *x, const char *const *sets, const char *extra)
{
    vms_err err = {0};
    memset(x, 0, sizeof *x);
    if (vms_config_init(&x->c, "skylake", &err) != VMS_OK)
        return false;
    for (; sets && *sets; sets++)
        if (vms_config_set_arg(&x->c, *sets, &err) != VMS_OK)
            goto bad;
    if (extra && vms_config_set_arg(&x->c, extra, &err) != VMS_OK)
        goto bad;
    vms_kernel_config kc = vms_config_kernel(&x->c);
    vms_replay_opts o = {.layout = VMS_REPLAY_LAYOUT_AUTO};
    if (vms_machine_create(NULL, &x->c.machine, &x->m, &err) != VMS_OK ||
        vms_kernel_create(x->m, &kc, &x->k, &err) != VMS_OK ||
        vms_replay_create(x->k, &o, &x->r, &err) != VMS_OK)
        goto bad;
    x->ncores = vms_machine_ncores(x->m);
    return x->ncores <= MAXCPU;
bad:
    fprintf(stderr, "boot: %s\n", err.msg);
    return false;
}

/* Attach a curve (sets x ways, rate) to structure `what` of every core; its index. */
static unsigned run_curve(run *x, const char *what, unsigned sets, unsigned ways, double rate)
{
    vms_err err = {0};
    unsigned i = x->ncv++;
    for (unsigned k = 0; k < x->ncores; k++) {
        if (vms_curve_create(NULL, sets, ways, rate, 9, &x->cv[i][k], &err) != VMS_OK ||
            vms_core_curve_attach(vms_machine_core(x->m, k), what, x->cv[i][k], &err) != VMS_OK)
            fprintf(stderr, "curve: %s\n", err.msg);
        vms_curve_set_spurious(x->cv[i][k], &vms_kernel_get_stats(x->k)->spurious);
    }
    return i;
}

static uint64_t run_curve_misses(const run *x, unsigned i, unsigned ways)
{
    uint64_t m = 0;
    for (unsigned k = 0; k < x->ncores; k++)
        m += vms_curve_misses(x->cv[i][k], ways);
    return m;
}

/* The real misses of structure `what`, summed over the cores. */
static uint64_t run_misses(run *x, const char *what)
{
    static const char *const tlbs[VMS_TLB_NLEVELS] = {"tlb.l1i", "tlb.l1d", "tlb.l2"};
    uint64_t m = 0;
    for (unsigned k = 0; k < x->ncores; k++) {
        vms_core *c = vms_machine_core(x->m, k);
        for (unsigned l = 0; l < VMS_TLB_NLEVELS; l++)
            if (!strcmp(what, tlbs[l]))
                m += vms_tlb_get_stats(vms_core_tlb(c, (vms_tlb_level)l))->misses;
        if (!strcmp(what, "pwc.pde")) {
            const vms_pwc_stats *ps = vms_pwc_get_stats(vms_core_pwc(c));
            m += ps->lookups - ps->hits[2]; /* every lookup probes the PDE cache first */
        }
    }
    return m;
}

static void run_end(run *x)
{
    vms_replay_destroy(x->r);
    vms_kernel_destroy(x->k);
    vms_machine_destroy(x->m);
    for (unsigned i = 0; i < x->ncv; i++)
        for (unsigned k = 0; k < x->ncores; k++)
            vms_curve_destroy(x->cv[i][k]);
}

/* ---- the trace ---- */

typedef struct gen {
    vms_rng rng;
    uint64_t page, npages;
    bool threads, calls;
} gen;

static vms_trace_event ev(vms_trace_type t, uint32_t tid)
{
    vms_trace_event e = {.type = (uint8_t)t, .tid = tid};
    return e;
}

/* Event i: references with locality over npages pages (some crossing a page, some
 * modifies and fetches); with threads, three threads and a forked child; with calls,
 * now and then munmap, mprotect, madvise(DONTNEED) or a kernel write over a few pages. */
static vms_trace_event gen_next(gen *g, uint64_t i)
{
    if (g->threads && (i == 40 || i == 50)) {
        vms_trace_event e = ev(VMS_TEV_CLONE, 1);
        e.clone.child = i == 40 ? 2 : 3;
        e.clone.flags = VMS_TCLONE_VM;
        return e;
    }
    if (g->threads && i == 3000) {
        vms_trace_event e = ev(VMS_TEV_CLONE, 1);
        e.clone.child = 4;
        return e;
    }
    uint32_t tid = 1;
    if (g->threads && i > 50)
        tid = 1 + (uint32_t)vms_rng_below(&g->rng, i > 3000 ? 4 : 3);
    unsigned r = (unsigned)vms_rng_below(&g->rng, 1000);
    if (g->calls && r < 4) {
        static const vms_trace_type t4[4] = {VMS_TEV_MUNMAP, VMS_TEV_MPROTECT, VMS_TEV_MADVISE,
                                             VMS_TEV_KWRITE};
        uint64_t addr = BASE + ((g->page & ~UINT64_C(3)) << 12);
        uint64_t len = (1 + vms_rng_below(&g->rng, 24)) << 12;
        vms_trace_event e = ev(t4[r], tid);
        if (r == 0) {
            e.munmap.addr = addr;
            e.munmap.len = len;
        } else if (r == 1) {
            e.mprotect.addr = addr;
            e.mprotect.len = len;
            e.mprotect.prot = VMS_TPROT_ALL;
        } else if (r == 2) {
            e.madvise.addr = addr;
            e.madvise.len = len;
            e.madvise.advice = VMS_MADV_DONTNEED;
        } else {
            e.kwrite.va = addr + vms_rng_below(&g->rng, 4096);
            e.kwrite.len = 1 + vms_rng_below(&g->rng, 9000);
        }
        return e;
    }
    if (r < 250)
        g->page = vms_rng_below(&g->rng, g->npages);
    else if (r < 350)
        g->page = (g->page + 1) % g->npages;
    else if (r < 400)
        g->page = vms_rng_below(&g->rng, 48); /* a hot set */
    vms_trace_event e = ev(VMS_TEV_ACCESS, tid);
    e.access.kind = (uint8_t)vms_rng_below(&g->rng, 4);
    e.access.size = r % 13 == 0 ? 64 : 1u << vms_rng_below(&g->rng, 4);
    e.access.va = BASE + (g->page << 12) + (r % 17 == 0 ? 4096 - 3 : vms_rng_below(&g->rng, 4000));
    return e;
}

static bool run_trace(run *x, uint64_t seed, uint64_t n, uint64_t npages, bool threads, bool calls)
{
    gen g = {.npages = npages, .threads = threads, .calls = calls};
    vms_rng_seed(&g.rng, seed);
    vms_err err = {0};
    for (uint64_t i = 0; i < n; i++) {
        vms_trace_event e = gen_next(&g, i);
        if (vms_replay_event(x->r, &e, NULL, &err) != VMS_OK) {
            fprintf(stderr, "replay: %s\n", err.msg);
            return false;
        }
    }
    return vms_replay_flush(x->r, &err) == VMS_OK;
}

/* ---- curves against separate runs ---- */

typedef struct scenario {
    const char *name;
    const char *const *cfg; /* the base configuration */
    const char *what;       /* the structure */
    const char *key;        /* the setting of one separate run: key=PREFIX, then geometry */
    unsigned sets, ways;    /* the curve's geometry (sets 1: fully associative) */
    bool configured;        /* the base run's structure is this LRU geometry at `ways` */
    uint64_t npages;
    bool threads, calls;
    bool swap; /* the configuration is under memory pressure */
} scenario;

/* One curve pass and a separate run for each of several sizes; returns the mismatches. */
static unsigned check_scenario(const scenario *s, uint64_t seed, uint64_t n, unsigned *inexact)
{
    run base;
    if (!run_start(&base, s->cfg, NULL)) {
        CHECK(false);
        return 1;
    }
    unsigned cv = run_curve(&base, s->what, s->sets, s->ways, 1.0);
    REQUIRE(run_trace(&base, seed, n, s->npages, s->threads, s->calls));
    unsigned bad = 0;
    uint64_t inval = 0, hitf = 0;
    for (unsigned k = 0; k < base.ncores; k++) {
        vms_core *c = vms_machine_core(base.m, k);
        hitf += vms_core_get_stats(c)->tlb_hit_faults;
        for (unsigned l = 0; l < VMS_TLB_NLEVELS; l++)
            if (vms_core_tlb(c, (vms_tlb_level)l))
                inval += vms_tlb_get_stats(vms_core_tlb(c, (vms_tlb_level)l))->invalidations;
    }
    CHECK(inval > 0 && hitf > 0); /* the trace exercises holes and faults on hits */
    if (s->swap)
        CHECK(vms_kernel_get_stats(base.k)->pswpout > 0 &&
              vms_kernel_get_stats(base.k)->pgmajfault > 0);
    if (s->configured) {
        CHECK_EQ(run_curve_misses(&base, cv, s->ways), run_misses(&base, s->what));
        bad += run_curve_misses(&base, cv, s->ways) != run_misses(&base, s->what);
    }
    const unsigned sizes[] = {1, 2, 3, 5, 8, 12, 16, 24, 33, 48, 63, 64};
    uint64_t prev = UINT64_MAX;
    for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned w = sizes[i];
        if (w > s->ways)
            break;
        char set[96];
        if (!strncmp(s->what, "pwc.", 4)) /* ENTRIESeWAYSw */
            snprintf(set, sizeof set, "%s%ue%uw:lru", s->key, s->sets * w, w);
        else /* SETSxWAYS */
            snprintf(set, sizeof set, "%s%ux%u:lru", s->key, s->sets, w);
        run one;
        REQUIRE(run_start(&one, s->cfg, set));
        REQUIRE(run_trace(&one, seed, n, s->npages, s->threads, s->calls));
        uint64_t want = run_misses(&one, s->what), got = run_curve_misses(&base, cv, w);
        /* Spurious faults (stale entries on another core after a COW reuse, which does not
         * shoot down, as Linux) depend on the size: each may move a point by one miss
         * (docs/CURVE.md). Without them, the points are exact. */
        uint64_t sb = vms_kernel_get_stats(base.k)->spurious,
                 so = vms_kernel_get_stats(one.k)->spurious;
        uint64_t slack = sb + so, diff = got > want ? got - want : want - got;
        if (slack == 0)
            CHECK_EQ(got, want);
        else
            CHECK(diff <= slack);
        if (diff > slack || (slack == 0 && diff)) {
            bad++;
            fprintf(stderr,
                    "  %s seed %" PRIu64 ": %s = %" PRIu64 " misses, curve %" PRIu64
                    " (spurious faults %" PRIu64 " + %" PRIu64 ")\n",
                    s->name, seed, set, want, got, sb, so);
        }
        *inexact += diff != 0;
        if (diff && slack)
            fprintf(stderr,
                    "  %s: %s: %" PRIu64 " vs %" PRIu64 " (spurious %" PRIu64 " + %" PRIu64 ")\n",
                    s->name, set, got, want, sb, so);
        CHECK(got <= prev); /* LRU's inclusion: more entries never miss more */
        prev = got;
        run_end(&one);
    }
    run_end(&base);
    return bad;
}

static void test_curves_equal_separate_runs(void)
{
    /* cores=1: the threads and the child share one core (see the multi-core ones) */
    static const char *const fa[] = {"tlb.l1d=4K:1x64:lru", "tlb.l1i=4K:1x32:lru", "cores=1", NULL};
    static const char *const fa_nol2[] = {"tlb.l1d=4K:1x64:lru", "tlb.l2=none", "cores=1", NULL};
    static const char *const dflt[] = {"cores=1", NULL};
    static const char *const dflt_nol2[] = {"tlb.l2=none", "cores=1", NULL};
    static const char *const sa[] = {"tlb.l1d=4K:16x4:lru", "cores=1", NULL};
    static const char *const l2[] = {"tlb.l2=4K+2M:32x4:lru", "cores=1", NULL};
    static const char *const l2nz[] = {"tlb.l2=4K+2M:32x4:lru", "kernel.zero_page=off", "cores=1",
                                       NULL};
    static const char *const pde[] = {"pwc.pde=32:lru", "cores=1", NULL};
    /* 4 sets of 4 ways: a PWC its fast path can run (pwc.c), which a curve turns off */
    static const char *const pde4[] = {"pwc.pde=16e4w:lru", "cores=1", NULL};
    /* memory pressure: 2 MiB of RAM for ~1200 pages, swap, CLOCK reading A bits */
    static const char *const swap[] = {"tlb.l1d=4K:1x64:lru", "ram=2M",  "swap=16M",
                                       "policy=clock",        "cores=1", NULL};
    static const char *const swap2[] = {
        "tlb.l2=4K+2M:1x64:lru", "ram=2M", "swap=16M", "policy=lru", "cores=1", NULL};
    static const char *const two[] = {"tlb.l1d=4K:1x64:lru", "cores=2", NULL};
    static const char *const four[] = {"tlb.l1d=4K:1x64:lru", "tlb.l2=none", "cores=4", NULL};
    const scenario sc[] = {
        {"l1d fa", fa, "tlb.l1d", "tlb.l1d=4K:", 1, 64, true, 400, false, true, false},
        {"l1d fa threads", fa, "tlb.l1d", "tlb.l1d=4K:", 1, 64, true, 400, true, true, false},
        {"l1i fa", fa, "tlb.l1i", "tlb.l1i=4K:", 1, 32, true, 400, true, true, false},
        {"l1d fa no l2", fa_nol2, "tlb.l1d", "tlb.l1d=4K:", 1, 64, true, 400, true, true, false},
        {"l1d default plru", dflt, "tlb.l1d", "tlb.l1d=4K:", 1, 64, false, 400, true, true, false},
        {"l1d plru no l2", dflt_nol2, "tlb.l1d", "tlb.l1d=4K:", 1, 64, false, 400, true, true,
         false},
        {"l1d 16 sets", sa, "tlb.l1d", "tlb.l1d=4K:", 16, 4, true, 400, true, true, false},
        {"l1d 4 sets", sa, "tlb.l1d", "tlb.l1d=4K:", 4, 16, false, 400, true, true, false},
        {"l2 32 sets", l2, "tlb.l2", "tlb.l2=4K+2M:", 32, 4, true, 700, true, true, false},
        {"l2 fa", l2, "tlb.l2", "tlb.l2=4K+2M:", 1, 64, false, 700, true, true, false},
        {"l2 fa no zero page", l2nz, "tlb.l2", "tlb.l2=4K+2M:", 1, 64, false, 700, true, true,
         false},
        {"pde fa", pde, "pwc.pde", "pwc.pde=", 1, 32, true, 20000, true, true, false},
        {"pde 4 sets", pde4, "pwc.pde", "pwc.pde=", 4, 4, true, 20000, true, true, false},
        {"swap clock", swap, "tlb.l1d", "tlb.l1d=4K:", 1, 64, true, 1200, true, true, true},
        {"swap l2", swap2, "tlb.l2", "tlb.l2=4K+2M:", 1, 64, true, 1200, false, true, true},
        {"two cores", two, "tlb.l1d", "tlb.l1d=4K:", 1, 64, true, 400, true, true, false},
        {"four cores no l2", four, "tlb.l1d", "tlb.l1d=4K:", 1, 64, true, 400, true, true, false},
    };
    unsigned inexact = 0, exact_needed = 0;
    for (unsigned i = 0; i < sizeof sc / sizeof sc[0]; i++) {
        unsigned before = inexact;
        unsigned bad = check_scenario(&sc[i], th_seed + i, 12000, &inexact);
        if (bad)
            fprintf(stderr, "scenario '%s': %u mismatches\n", sc[i].name, bad);
        if (strncmp(sc[i].name, "two", 3) && strncmp(sc[i].name, "four", 4)) {
            exact_needed += inexact - before; /* one core: no spurious faults, all exact */
            if (inexact != before)
                fprintf(stderr, "scenario '%s' (one core): %u points not exact\n", sc[i].name,
                        inexact - before);
        }
    }
    CHECK_EQ(exact_needed, 0);
    printf("curve: %u points off by spurious faults on the multi-core scenarios\n", inexact);
}

/* SHARDS: a sampled curve of 4096 sizes (larger than any TLB here: the model is not the
 * structure) stays close to the exact one from the same pass, and samples ~rate. */
static void test_shards(void)
{
    static const char *const cfg[] = {"cores=1", NULL};
    run x;
    REQUIRE_VOID(run_start(&x, cfg, NULL));
    unsigned ex = run_curve(&x, "tlb.l1d", 1, 4096, 1.0);
    unsigned sm = run_curve(&x, "tlb.l1d", 1, 4096, 0.1);
    REQUIRE_VOID(run_trace(&x, th_seed, 60000, 6000, false, false));
    uint64_t lookups = vms_curve_lookups(x.cv[ex][0]), sampled = vms_curve_lookups(x.cv[sm][0]);
    CHECK(sampled > lookups / 20 && sampled < lookups / 5);
    double sum = 0, worst = 0;
    unsigned differ = 0;
    for (unsigned n = 1; n <= 4096; n++) {
        uint64_t e = run_curve_misses(&x, ex, n), m = run_curve_misses(&x, sm, n);
        double d = ((double)m - (double)e) / (double)lookups;
        d = d < 0 ? -d : d;
        sum += d;
        worst = d > worst ? d : worst;
        differ += e != m;
        if (getenv("CURVE_DEBUG") && (n & (n - 1)) == 0)
            fprintf(stderr, "n %u exact %" PRIu64 " sampled %" PRIu64 "\n", n, e, m);
    }
    if (getenv("CURVE_DEBUG"))
        fprintf(stderr, "lookups %" PRIu64 " sampled %" PRIu64 "\n", lookups, sampled);
    printf("curve: SHARDS rate 0.1 over 4096 sizes: mean |error| %.4f, max %.4f (miss ratio)\n",
           sum / 4096, worst);
    /* ~600 sampled pages: a few % of the lookups (seeds 1-8: mean 0.014-0.029, max <= 0.052); a
     * sampler that is not scaled right is off by 10-40% (the depth scaling first tried
     * missed by 0.40 at small sizes) */
    CHECK(sum / 4096 < 0.04);
    CHECK(worst < 0.08);
    CHECK(differ > 0); /* an estimate, not the exact curve in disguise */
    CHECK(run_curve_misses(&x, ex, 4096) < run_curve_misses(&x, ex, 1));
    run_end(&x);
}

/*
 * The TLB's repeat memo beside a curve, on the TLB's own operations (a 2-entry fully
 * associative LRU L1 dTLB, a curve of 1 … 4): only a repeat of the latest hit may be
 * answered without the curve (it is at depth 1 in every size). A memo hit on another
 * recent hit's way (the 4-slot memo's) is not, nor is a repeat after a miss the curve
 * was shown (the miss moved its page to the top in sizes that hold it).
 */
static void test_memo_repeats(void)
{
    static const char *const cfg[] = {"cores=1", "tlb.l1d=4K:1x2:lru", "tlb.l2=none", NULL};
    run x;
    REQUIRE_VOID(run_start(&x, cfg, NULL));
    unsigned i = run_curve(&x, "tlb.l1d", 1, 4, 1.0);
    vms_tlb *t = vms_core_tlb(vms_machine_core(x.m, 0), VMS_TLB_L1D);
    vms_ctx ctx = vms_ctx_make(0, 1);
    const uint64_t A = BASE, B = BASE + 0x1000, C = BASE + 0x2000;
    vms_xlate xa = {.page_pa = 0x100000, .size = VMS_PG_4K, .rw = 1, .us = 1, .dirty = 1}, xb = xa,
              xc = xa, got;
    xb.page_pa = 0x200000;
    xc.page_pa = 0x300000;
    vms_tlb_fill(t, ctx, A, &xa); /* stack B A */
    vms_tlb_fill(t, ctx, B, &xb);
    CHECK(vms_tlb_lookup(t, ctx, A, &got));  /* depth 2 */
    CHECK(vms_tlb_lookup(t, ctx, B, &got));  /* depth 2 */
    CHECK(vms_tlb_lookup(t, ctx, A, &got));  /* depth 2, though a 4-slot memo holds A */
    CHECK(vms_tlb_lookup(t, ctx, A, &got));  /* depth 1: the repeat */
    vms_tlb_fill(t, ctx, C, &xc);            /* evicts B; the model keeps it: C A B */
    CHECK(vms_tlb_lookup(t, ctx, C, &got));  /* depth 1 */
    CHECK(!vms_tlb_lookup(t, ctx, B, &got)); /* depth 3, no fill follows: B C A */
    CHECK(vms_tlb_lookup(t, ctx, C, &got));  /* depth 2 */
    CHECK_EQ(run_curve_misses(&x, i, 1), 5); /* all but the repeat of A and the first C */
    CHECK_EQ(run_curve_misses(&x, i, 2), 1);
    CHECK_EQ(run_curve_misses(&x, i, 3), 0);
    CHECK_EQ(run_curve_misses(&x, i, 2), vms_tlb_get_stats(t)->misses);
    /* Detached, the TLB's results are what they were (the memo is back). */
    vms_core_curve_detach(vms_machine_core(x.m, 0), x.cv[i][0]);
    CHECK(vms_tlb_lookup(t, ctx, C, &got) && got.page_pa == xc.page_pa);
    CHECK(vms_tlb_lookup(t, ctx, A, &got) && got.page_pa == xa.page_pa);
    CHECK(vms_tlb_lookup(t, ctx, C, &got) && vms_tlb_check(t));
    CHECK_EQ(run_curve_misses(&x, i, 1), 5); /* a detached curve sees nothing */
    run_end(&x);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "curve");
    test_memo_repeats();
    test_curves_equal_separate_runs();
    test_shards();
    return th_finish();
}
