/*
 * bench_latency.c — the shape of a pointer-chasing latency benchmark (lmbench's lat_mem_rd,
 * Intel MLC's idle latency), reproduced in the model: modelled cycles per load against
 * the working-set size, on the skylake machine with cache=skylake and dram=ddr4-3200.
 *
 * Each working set of W bytes (4 KiB pages at VA 4 GiB, frames from 1 GiB) is visited
 * as one random cycle over its 64-byte lines (Sattolo's shuffle): no two consecutive
 * loads share a line, and there is no prefetcher to help. One pass warms the caches and
 * TLBs; the next pass is measured: cycles / loads. Expect steps where W passes the L1d
 * (32 KiB), the L1 dTLB reach (64 × 4 KiB = 256 KiB, coinciding with the L2), the STLB
 * reach (1536 × 4 KiB = 6 MiB) and the LLC (8 MiB); beyond, every load is a DRAM access
 * plus, once the page-walk entries no longer stay cached, a walk that misses too.
 *
 * Second table: the row-buffer difference, by the DRAM model alone (vms_dram_read with
 * each request arriving when the previous one finished): the same row again (row hits),
 * two rows of one bank in turn (conflicts), and lines scattered over 1 GiB (mostly
 * misses in other banks). The host rate of the cached path is printed for the overhead.
 *
 * Usage: bench_latency [--scale F] (F < 1 shortens the largest working sets' runs).
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "vmsim/cache.h"
#include "vmsim/core.h"
#include "vmsim/dram.h"
#include "vmsim/pt.h"

#define VA_BASE (UINT64_C(1) << 32)
#define PA_BASE (UINT64_C(1) << 30)
#define MAXWS   (UINT64_C(256) << 20)

static vms_machine *build(uint64_t ws)
{
    vms_machine_config cfg;
    vms_err err = {0};
    vms_machine_preset("skylake", &cfg, NULL);
    cfg.ncores = 1;
    vms_cache_preset("skylake", &cfg.cache, NULL);
    vms_dram_preset("ddr4-3200", &cfg.dram, NULL);
    vms_machine *m;
    if (vms_machine_create(NULL, &cfg, &m, &err) != VMS_OK) {
        fprintf(stderr, "bench_latency: %s\n", err.msg);
        exit(1);
    }
    static vms_pt_bump b;
    b = (vms_pt_bump){vms_machine_ram(m), UINT64_C(0x1000000), 0, 0, 0};
    vms_pt_ops ops = vms_pt_bump_ops(&b);
    vms_pt pt;
    if (vms_pt_init(&pt, vms_machine_bus(m), 4, &ops, &err) != VMS_OK)
        exit(1);
    for (uint64_t off = 0; off < ws; off += VMS_PAGE_SIZE)
        if (vms_pt_map(&pt, VA_BASE + off, PA_BASE + off, VMS_PG_4K, VMS_PTE_RW | VMS_PTE_US,
                       &err) != VMS_OK) {
            fprintf(stderr, "bench_latency: map: %s\n", err.msg);
            exit(1);
        }
    vms_core *c = vms_machine_core(m, 0);
    vms_core_write_cr3(c, pt.root);
    vms_core_set_user(c, true);
    return m;
}

/* next[i]: the line visited after line i, one cycle through all n lines (Sattolo). */
static uint32_t *cycle_of(uint64_t n, vms_rng *g)
{
    uint32_t *perm = malloc(n * sizeof *perm), *next = malloc(n * sizeof *next);
    if (!perm || !next)
        exit(1);
    for (uint64_t i = 0; i < n; i++)
        perm[i] = (uint32_t)i;
    for (uint64_t i = n - 1; i > 0; i--) {
        uint64_t j = vms_rng_below(g, i);
        uint32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (uint64_t i = 0; i < n; i++)
        next[perm[i]] = perm[(i + 1) % n];
    free(perm);
    return next;
}

/* Chase `loads` loads from line *at; returns false on a fault. */
static bool chase(vms_core *c, const uint32_t *next, uint32_t *at, uint64_t loads)
{
    vms_ref refs[1024];
    vms_fault f;
    while (loads) {
        size_t n = loads < 1024 ? (size_t)loads : 1024;
        for (size_t i = 0; i < n; i++) {
            refs[i] = (vms_ref){.va = VA_BASE + (uint64_t)*at * 64, .len = 8, .kind = VMS_ACC_READ};
            *at = next[*at];
        }
        if (vms_core_access_batch(c, refs, n, &f) != n)
            return false;
        loads -= n;
    }
    return true;
}

static void size_row(uint64_t ws, double scale, vms_rng *g)
{
    vms_machine *m = build(ws);
    vms_core *c = vms_machine_core(m, 0);
    uint64_t lines = ws / 64;
    uint32_t *next = cycle_of(lines, g), at = 0;
    uint64_t loads = lines;
    if (loads < 200000)
        loads = 200000; /* small sets: several passes, so the warm state dominates */
    if (ws > (UINT64_C(16) << 20))
        loads = (uint64_t)((double)loads * scale);
    if (!chase(c, next, &at, lines)) /* warm-up pass */
        exit(1);
    vms_machine_reset_stats(m);
    double t0 = bench_now();
    if (!chase(c, next, &at, loads))
        exit(1);
    double dt = bench_now() - t0;
    const vms_cache *l1 = vms_machine_cache(m, 0, VMS_CACHE_L1D);
    const vms_cache *l2 = vms_machine_cache(m, 0, VMS_CACHE_L2);
    const vms_cache *llc = vms_machine_cache(m, 0, VMS_CACHE_LLC);
    const vms_walk_stats *ws_ = vms_core_walk_stats(c);
    const vms_dram_stats *ds = vms_dram_get_stats(vms_machine_dram(m));
    char label[16];
    if (ws >= (UINT64_C(1) << 20))
        snprintf(label, sizeof label, "%" PRIu64 "M", ws >> 20);
    else
        snprintf(label, sizeof label, "%" PRIu64 "K", ws >> 10);
    double n = (double)loads;
    printf("%6s %9.1f %7.3f %7.3f %7.3f %7.3f %7.3f %7.3f %9.2f\n", label,
           (double)vms_core_cycles(c) / n, (double)vms_cache_get_stats(l1)->misses / n,
           (double)vms_cache_get_stats(l2)->misses / n,
           (double)vms_cache_get_stats(llc)->misses / n, (double)ws_->walks / n,
           (double)ws_->mem_refs / n,
           ds->reads
               ? (double)ds->row_hits / (double)(ds->row_hits + ds->row_misses + ds->row_conflicts)
               : 0.0,
           n / dt / 1e6);
    free(next);
    vms_machine_destroy(m);
}

/* The DRAM alone: `n` reads, each issued when the previous one's data arrived. */
static void dram_row(const char *name, uint64_t (*addr)(uint64_t i, vms_rng *g), vms_rng *g)
{
    vms_dram_config dc;
    vms_dram_preset("ddr4-3200", &dc, NULL);
    vms_dram *d;
    if (vms_dram_create(NULL, &dc, &d, NULL) != VMS_OK)
        exit(1);
    uint64_t now = 0, n = 100000;
    for (uint64_t i = 0; i < n; i++)
        now += vms_dram_read(d, now, addr(i, g), NULL);
    const vms_dram_stats *s = vms_dram_get_stats(d);
    double clk = (double)s->read_clocks / (double)n;
    printf("%-22s %8.1f %8.2f %9.1f %8" PRIu64 " %8" PRIu64 " %9" PRIu64 " %6" PRIu64 "\n", name,
           clk, clk * dc.t.tck_ps / 1000.0, (double)vms_dram_cycles(d, s->read_clocks) / (double)n,
           s->row_hits, s->row_misses, s->row_conflicts, s->refreshes);
    vms_dram_destroy(d);
}

/* One 8 KiB row (ddr4-3200: 128 lines), over and over: row hits. */
static uint64_t same_row(uint64_t i, vms_rng *g)
{
    (void)g;
    return (i % 128) * 64;
}

/* Two rows that map to one bank (rows 0 and 16: the XOR hash folds row bits 3:0 into the
 * bank and group, so rows 16 apart share both): conflicts. */
static uint64_t two_rows(uint64_t i, vms_rng *g)
{
    (void)g;
    return (i & 1) ? UINT64_C(16) << 18 : 0;
}

static uint64_t scattered(uint64_t i, vms_rng *g)
{
    (void)i;
    return vms_rng_below(g, UINT64_C(1) << 24) * 64; /* 1 GiB */
}

int main(int argc, char **argv)
{
    double scale = 1.0;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--scale") && i + 1 < argc)
            scale = atof(argv[++i]);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            i++; /* accepted for `make bench` uniformity: the model's figures do not vary */
    vms_rng g;
    vms_rng_seed(&g, 42);
    printf("pointer chase, cache=skylake dram=ddr4-3200, 4 KiB pages (modelled, per load)\n");
    printf("%6s %9s %7s %7s %7s %7s %7s %7s %9s\n", "ws", "cycles", "l1d_ms", "l2_ms", "llc_ms",
           "walks", "w_refs", "rowhit", "Mloads/s");
    for (uint64_t ws = 4096; ws <= MAXWS; ws *= 2)
        size_row(ws, scale, &g);
    printf("\nDRAM alone (ddr4-3200, open page), one read at a time\n");
    printf("%-22s %8s %8s %9s %8s %8s %9s %6s\n", "pattern", "clocks", "ns", "cycles", "hits",
           "misses", "conflicts", "refr");
    dram_row("same row (hits)", same_row, &g);
    dram_row("two rows, one bank", two_rows, &g);
    dram_row("scattered over 1 GiB", scattered, &g);
    return 0;
}
