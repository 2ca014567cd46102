/*
 * bench_translate.c — translations per second through one core's MMU (vms_core_translate),
 * on the default (skylake) machine with 1 GiB mapped by 4 KiB pages in simulated RAM:
 *
 *   tlb-hit   a loop over 32 pages (fits the 64-entry L1 dTLB): nearly every access hits
 *   walk      uniform random addresses over the 1 GiB: nearly every access misses both
 *             TLB levels and walks (the PDE cache shortens most walks)
 *   walk-nopwc  the same without page-walk caches: every walk reads 4 entries
 *   seq       a sequential 8-byte scan of the 1 GiB: 512 accesses per page, so the
 *             TLBs' repeat memo answers 511 of them (seq-nomemo: the same, memo off —
 *             the two give identical counters; the ratio is the memo's speed-up)
 *
 * Each pattern runs --runs times (default 5); the median rate is reported with the
 * modelled counters of one run, so a change in speed can be told from a change in what
 * was modelled. Usage: bench_translate [--runs N] [--scale F] [--only PATTERN]
 *
 * --only runs one pattern, for counting its instructions per translation:
 *   valgrind --tool=callgrind --toggle-collect=run bench_translate --only walk --runs 1
 * collects inside run() alone (the warm-up's n/10 translations and the run's n).
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "vmsim/core.h"
#include "vmsim/pt.h"
#include "vmsim/rng.h"

#define GIB     (UINT64_C(1) << 30)
#define VA_BASE (UINT64_C(1) << 32)

/* Build a machine with 1 GiB mapped at VA_BASE (4K pages, frames from 1 GiB up). */
static vms_machine *build(bool pwc)
{
    vms_machine_config cfg;
    vms_err err;
    vms_machine_preset("skylake", &cfg, &err);
    cfg.ncores = 1;
    if (!pwc)
        memset(&cfg.mmu.pwc, 0, sizeof cfg.mmu.pwc);
    vms_machine *m;
    if (vms_machine_create(NULL, &cfg, &m, &err) != VMS_OK) {
        fprintf(stderr, "bench_translate: %s\n", err.msg);
        exit(1);
    }
    static vms_pt_bump b;
    b = (vms_pt_bump){vms_machine_ram(m), UINT64_C(0x1000000), 0, 0, 0};
    vms_pt_ops ops = vms_pt_bump_ops(&b);
    vms_pt pt;
    if (vms_pt_init(&pt, vms_machine_bus(m), 4, &ops, &err) != VMS_OK)
        exit(1);
    for (uint64_t off = 0; off < GIB; off += VMS_PAGE_SIZE)
        if (vms_pt_map(&pt, VA_BASE + off, GIB + off, VMS_PG_4K, VMS_PTE_RW | VMS_PTE_US, &err) !=
            VMS_OK) {
            fprintf(stderr, "bench_translate: map: %s\n", err.msg);
            exit(1);
        }
    vms_core *c = vms_machine_core(m, 0);
    vms_core_write_cr3(c, pt.root);
    vms_core_set_user(c, true);
    return m;
}

typedef enum { P_HIT, P_RANDOM, P_SEQ } pattern;

/* Run n translations of the pattern; returns seconds. */
__attribute__((noinline)) static double run(vms_machine *m, pattern p, uint64_t n, uint64_t seed)
{
    vms_core *c = vms_machine_core(m, 0);
    vms_rng rng;
    vms_rng_seed(&rng, seed);
    uint64_t sink = 0, pa;
    vms_fault f;
    double t0 = bench_now();
    for (uint64_t i = 0; i < n; i++) {
        uint64_t va = p == P_HIT   ? VA_BASE + ((i & 31) << 12) + (i & 0xff8)
                      : p == P_SEQ ? VA_BASE + ((i << 3) & (GIB - 8))
                                   : VA_BASE + (vms_rng_next(&rng) & (GIB - 8));
        if (vms_core_translate(c, va, VMS_ACC_READ, NULL, &pa, &f, NULL))
            sink += pa;
    }
    double t = bench_now() - t0;
    if (sink == 1)
        puts("");
    return t;
}

static const char *only; /* --only: the one pattern to run, or NULL for all */

static void bench(const char *name, bool pwc, bool memo, pattern p, uint64_t n, int runs)
{
    if (only && strcmp(only, name))
        return;
    vms_machine *m = build(pwc);
    for (unsigned l = 0; l < VMS_TLB_NLEVELS; l++)
        vms_tlb_set_memo(vms_core_tlb(vms_machine_core(m, 0), l), memo);
    double t[32];
    run(m, p, n / 10, 99); /* warm up: fill TLBs and host caches */
    for (int r = 0; r < runs; r++) {
        vms_machine_reset_stats(m);
        t[r] = run(m, p, n, (uint64_t)r + 1);
    }
    qsort(t, (size_t)runs, sizeof t[0], bench_cmp_double);
    double med = t[runs / 2];
    vms_core *c = vms_machine_core(m, 0);
    const vms_walk_stats *ws = vms_core_walk_stats(c);
    const vms_tlb_stats *l1 = vms_tlb_get_stats(vms_core_tlb(c, VMS_TLB_L1D));
    printf("%-11s %12" PRIu64 " %9.3f %10.2f %9.2f%% %10" PRIu64 " %9.2f\n", name, n, med,
           (double)n / med / 1e6, 100.0 * (double)l1->hits / (double)l1->lookups, ws->walks,
           ws->walks ? (double)ws->mem_refs / (double)ws->walks : 0.0);
    vms_machine_destroy(m);
}

int main(int argc, char **argv)
{
    int runs = 5;
    double scale = 1.0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--runs"))
            runs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--scale"))
            scale = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--only"))
            only = argv[i + 1];
    }
    if (runs < 1 || runs > 31 || scale <= 0) {
        fprintf(stderr, "usage: bench_translate [--runs 1..31] [--scale F] [--only PATTERN]\n");
        return 2;
    }
    printf("%-11s %12s %9s %10s %10s %10s %9s\n", "pattern", "translations", "median_s", "Mtrans/s",
           "l1d_hit", "walks", "refs/walk");
    bench("tlb-hit", true, true, P_HIT, (uint64_t)(50e6 * scale), runs);
    bench("seq", true, true, P_SEQ, (uint64_t)(50e6 * scale), runs);
    bench("seq-nomemo", true, false, P_SEQ, (uint64_t)(50e6 * scale), runs);
    bench("walk", true, true, P_RANDOM, (uint64_t)(5e6 * scale), runs);
    bench("walk-nopwc", false, true, P_RANDOM, (uint64_t)(5e6 * scale), runs);
    return 0;
}
