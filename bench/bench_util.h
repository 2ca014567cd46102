/*
 * bench_util.h — what every benchmark shares: a monotonic clock and the median of a few
 * runs (machines here are shared and noisy: we quote medians, never single runs).
 */
#ifndef VMSIM_BENCH_UTIL_H
#define VMSIM_BENCH_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "vmsim/rng.h"

/* Seconds on the monotonic clock. */
static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The median of v[0..n) (sorts v in place); n >= 1. */
static inline double bench_median(double *v, size_t n)
{
    qsort(v, n, sizeof v[0], bench_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- reference patterns shared by the replacement benchmarks ---- */

/* A cyclic scan over `pages` pages (larger than memory: LRU's worst case). */
static inline void bench_gen_loop(uint64_t *r, size_t n, uint64_t pages)
{
    for (size_t i = 0; i < n; i++)
        r[i] = i % pages;
}

/* Zipf(0.9) over `universe` pages by inverse CDF (binary search in the cumulative
 * weights); page ids scattered so popularity is not ordered by id. False on NOMEM. */
static inline int bench_gen_zipf(uint64_t *r, size_t n, size_t universe, vms_rng *g)
{
    double *cdf = malloc(universe * sizeof *cdf), sum = 0;
    if (!cdf)
        return 0;
    for (size_t k = 0; k < universe; k++)
        cdf[k] = (sum += 1.0 / pow((double)(k + 1), 0.9));
    for (size_t i = 0; i < n; i++) {
        double u = (double)(vms_rng_next(g) >> 11) * 0x1p-53 * sum;
        size_t lo = 0, hi = universe - 1;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (cdf[mid] < u)
                lo = mid + 1;
            else
                hi = mid;
        }
        r[i] = (lo * 2654435761u) % universe;
    }
    free(cdf);
    return 1;
}

/* `nphases` working-set phases of `ws` pages each, 10% noise over `universe` pages. */
static inline void bench_gen_phases(uint64_t *r, size_t n, uint64_t universe, uint64_t ws,
                                    size_t nphases, vms_rng *g)
{
    size_t phase = n / nphases ? n / nphases : 1;
    uint64_t base = 0;
    for (size_t i = 0; i < n; i++) {
        if (i % phase == 0)
            base = vms_rng_below(g, universe - ws);
        r[i] = vms_rng_below(g, 10) ? base + vms_rng_below(g, ws) : vms_rng_below(g, universe);
    }
}

#endif
