/*
 * bench_policy.c — the page-replacement policies compared on three access patterns, by
 * hit rate (what the policy achieves) and references per second (what it costs to
 * simulate), through the replay mode (vms_policy_replay) with 1024 frames:
 *
 *   loop     a cyclic scan over 1.25 x frames pages: larger than memory, so LRU and
 *            FIFO miss on every reference, OPT keeps most of the loop resident
 *   zipf     references drawn from a Zipf distribution (s = 0.9) over 16 x frames pages
 *   phases   working-set phases: 100 phases, each over 0.8 x frames pages at a random
 *            place in 16 x frames pages, with 10% of references anywhere
 *
 * Each (pattern, policy) pair runs --runs times (default 5): the median time gives the
 * rate; the hit rate is the same on every run (deterministic, seed 1). The time includes
 * OPT's next-use precomputation. Usage: bench_policy [--runs N] [--scale F]
 */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "vmsim/policy.h"
#include "vmsim/rng.h"

#define FRAMES 1024

/* The patterns (bench_util.h): a loop over FRAMES + FRAMES / 4, Zipf(0.9) over 16 * FRAMES,
 * 100 working-set phases of FRAMES * 4 / 5 pages with noise over 16 * FRAMES. */
static void gen_loop(uint64_t *r, size_t n, vms_rng *g)
{
    (void)g;
    bench_gen_loop(r, n, FRAMES + FRAMES / 4);
}

static void gen_zipf(uint64_t *r, size_t n, vms_rng *g)
{
    if (!bench_gen_zipf(r, n, 16 * FRAMES, g))
        exit(1);
}

static void gen_phases(uint64_t *r, size_t n, vms_rng *g)
{
    bench_gen_phases(r, n, 16 * FRAMES, FRAMES * 4 / 5, 100, g);
}

/* Run one policy on one string `runs` times and print its row. */
static void bench(const char *pattern, const char *policy, const uint64_t *refs, size_t n, int runs)
{
    double t[31];
    vms_policy_totals tot;
    for (int k = 0; k < runs; k++) {
        vms_policy_replay_opts o = {.policy = policy, .frames = FRAMES, .seed = 1};
        vms_err err;
        double t0 = bench_now();
        if (vms_policy_replay(refs, n, &o, &tot, &err) != VMS_OK) {
            fprintf(stderr, "bench_policy: %s\n", err.msg);
            exit(1);
        }
        t[k] = bench_now() - t0;
    }
    qsort(t, (size_t)runs, sizeof t[0], bench_cmp_double);
    printf("%-8s %-8s %9zu %8.2f%% %10.2f\n", pattern, policy, n, 100.0 * tot.hit_rate,
           (double)n / t[runs / 2] / 1e6);
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
    }
    if (runs < 1 || runs > 31 || scale <= 0) {
        fprintf(stderr, "usage: bench_policy [--runs 1..31] [--scale F]\n");
        return 2;
    }
    size_t n = (size_t)(2e6 * scale);
    uint64_t *refs = malloc(n * sizeof *refs);
    if (!refs || n == 0)
        return 1;
    static const struct {
        const char *name;
        void (*gen)(uint64_t *, size_t, vms_rng *);
    } patterns[] = {{"loop", gen_loop}, {"zipf", gen_zipf}, {"phases", gen_phases}};
    printf("%-8s %-8s %9s %9s %10s   (%d frames, median of %d runs)\n", "pattern", "policy", "refs",
           "hit_rate", "Mrefs/s", FRAMES, runs);
    for (size_t p = 0; p < sizeof patterns / sizeof patterns[0]; p++) {
        vms_rng g;
        vms_rng_seed(&g, 1);
        patterns[p].gen(refs, n, &g);
        for (unsigned i = 0; i < vms_page_policy_count(); i++)
            bench(patterns[p].name, vms_page_policy_get(i)->name, refs, n, runs);
    }
    free(refs);
    return 0;
}
