/*
 * test_cache.c — the data caches (cache.h) and the hierarchy between the cores and DRAM.
 *
 *  - one level against a deliberately naive reference (per set, a list of lines kept in
 *    recency or arrival order; for plru and random the reference asks the same policy
 *    plug-in for its victim over a plain array) on random accesses, for several
 *    geometries (1 set, odd set counts, 1 way, 16 ways) and every policy: every hit or
 *    miss, every victim and its dirty bit must agree;
 *  - configuration checks (VIPT aliasing, geometry errors);
 *  - the hierarchy's invariants and counters on a machine;
 *  - no byte lost: a seeded run writes random bytes through the caches from several
 *    processes, forks (COW), swaps, and moves bytes by DMA with a coherent and a
 *    non-coherent device (the latter with the DMA-API syncs), checking every byte against
 *    a byte map after every step, and the hierarchy's invariants.
 */
#include <stdio.h>

#include "harness.h"
#include "vmsim/cache.h"
#include "vmsim/dma.h"
#include "vmsim/frames.h"
#include "vmsim/mman.h"
#include "vmsim/rng.h"

/* ---- the naive reference ------------------------------------------------------------- */

#define RMAX_SETS 64
#define RMAX_WAYS 16

typedef struct ref {
    unsigned sets, ways;
    const vms_repl_policy *pol;
    bool lru, fifo;                      /* list-ordered policies */
    uint64_t line[RMAX_SETS][RMAX_WAYS]; /* lru/fifo: [0] is the next victim; else by way */
    bool dirty[RMAX_SETS][RMAX_WAYS];
    bool valid[RMAX_SETS][RMAX_WAYS];
    unsigned n[RMAX_SETS]; /* lru/fifo: lines in the list */
    uint8_t state[RMAX_SETS][256];
    vms_rng rng;
} ref;

static void ref_init(ref *r, unsigned sets, unsigned ways, const char *pol, uint64_t seed)
{
    memset(r, 0, sizeof *r);
    r->sets = sets;
    r->ways = ways;
    r->pol = vms_repl_find(pol);
    r->lru = !strcmp(pol, "lru");
    r->fifo = !strcmp(pol, "fifo");
    vms_rng_seed(&r->rng, seed);
    for (unsigned s = 0; s < sets; s++)
        r->pol->reset(r->state[s], ways);
}

/* One access: returns hit; on a miss with an eviction sets *ev, *vline, *vdirty. */
static bool ref_access(ref *r, uint64_t pa, bool write, bool *ev, uint64_t *vline, bool *vdirty)
{
    uint64_t ln = pa >> 6;
    unsigned s = (unsigned)(ln % r->sets);
    *ev = false;
    if (r->lru || r->fifo) {
        for (unsigned i = 0; i < r->n[s]; i++) {
            if (r->line[s][i] != ln)
                continue;
            bool d = r->dirty[s][i] || write;
            if (r->lru) { /* move to the back (most recent) */
                memmove(&r->line[s][i], &r->line[s][i + 1], (r->n[s] - i - 1) * sizeof(uint64_t));
                memmove(&r->dirty[s][i], &r->dirty[s][i + 1], (r->n[s] - i - 1) * sizeof(bool));
                r->line[s][r->n[s] - 1] = ln;
                r->dirty[s][r->n[s] - 1] = d;
            } else {
                r->dirty[s][i] = d;
            }
            return true;
        }
        if (r->n[s] == r->ways) { /* evict the front */
            *ev = true;
            *vline = r->line[s][0] << 6;
            *vdirty = r->dirty[s][0];
            memmove(&r->line[s][0], &r->line[s][1], (r->n[s] - 1) * sizeof(uint64_t));
            memmove(&r->dirty[s][0], &r->dirty[s][1], (r->n[s] - 1) * sizeof(bool));
            r->n[s]--;
        }
        r->line[s][r->n[s]] = ln;
        r->dirty[s][r->n[s]++] = write;
        return false;
    }
    for (unsigned w = 0; w < r->ways; w++)
        if (r->valid[s][w] && r->line[s][w] == ln) {
            r->dirty[s][w] |= write;
            r->pol->touch(r->state[s], r->ways, w, true);
            return true;
        }
    unsigned w = 0;
    while (w < r->ways && r->valid[s][w])
        w++;
    if (w == r->ways) {
        w = r->pol->victim(r->state[s], r->ways, &r->rng);
        *ev = true;
        *vline = r->line[s][w] << 6;
        *vdirty = r->dirty[s][w];
    }
    r->valid[s][w] = true;
    r->line[s][w] = ln;
    r->dirty[s][w] = write;
    r->pol->touch(r->state[s], r->ways, w, false);
    return false;
}

static void diff_one(unsigned sets, unsigned ways, const char *pol, uint64_t seed)
{
    vms_rng rng, crng;
    vms_rng_seed(&rng, seed);
    vms_rng_seed(&crng, seed ^ 0x5A5A);
    vms_cache_level_config lc = {(uint64_t)sets * ways * 64, ways, 1, pol};
    vms_cache *c = NULL;
    REQUIRE_VOID(vms_cache_create(NULL, &lc, 64, &crng, &c, NULL) == VMS_OK);
    ref r;
    ref_init(&r, sets, ways, pol, seed ^ 0x5A5A);
    uint64_t pool = (uint64_t)sets * ways * 3 + 1, bad = 0, writebacks = 0;
    for (unsigned i = 0; i < 20000 && !bad; i++) {
        uint64_t pa = vms_rng_below(&rng, pool) * 64 + vms_rng_below(&rng, 64);
        bool write = vms_rng_below(&rng, 3) == 0;
        bool ev, vd = false, cev = false, cvd = false;
        uint64_t vl = 0, cvl = 0;
        bool hit = ref_access(&r, pa, write, &ev, &vl, &vd);
        bool chit = vms_cache_access(c, pa, write);
        if (!chit)
            cev = vms_cache_fill(c, pa, write, &cvl, &cvd);
        writebacks += ev && vd;
        if (hit != chit || ev != cev || (ev && (vl != cvl || vd != cvd))) {
            fprintf(stderr,
                    "%ux%u %s access %u pa 0x%llx: hit %d/%d ev %d/%d victim 0x%llx/0x%llx\n", sets,
                    ways, pol, i, (unsigned long long)pa, hit, chit, ev, cev,
                    (unsigned long long)vl, (unsigned long long)cvl);
            bad++;
        }
    }
    CHECK_EQ(bad, 0);
    CHECK(vms_cache_check(c));
    const vms_cache_stats *st = vms_cache_get_stats(c);
    CHECK_EQ(st->hits + st->misses, st->accesses);
    CHECK_EQ(st->fills, st->misses);
    CHECK(writebacks > 0 || ways * sets > 64);
    vms_cache_destroy(c);
}

static void test_level_diff(void)
{
    static const unsigned geo[][2] = {{1, 1}, {1, 8}, {4, 2}, {3, 4}, {64, 8}, {5, 16}, {16, 1}};
    static const char *const pols[] = {"lru", "fifo", "plru", "random"};
    for (unsigned g = 0; g < sizeof geo / sizeof geo[0]; g++)
        for (unsigned p = 0; p < 4; p++)
            diff_one(geo[g][0], geo[g][1], pols[p], th_seed + g * 7 + p);
}

/* ---- configuration -------------------------------------------------------------------- */

static void test_validate(void)
{
    vms_cache_config cc;
    vms_err err = {0};
    CHECK_EQ(vms_cache_preset("skylake", &cc, NULL), VMS_OK);
    CHECK(cc.on && cc.l1d.size == 32768 && cc.l1d.ways == 8 && cc.inclusive);
    CHECK_EQ(vms_cache_validate(&cc, NULL), VMS_OK);
    /* 64 KiB 8-way with 64-byte lines: 128 sets index 8 KiB > a page. */
    cc.l1d.size = 64 << 10;
    CHECK_EQ(vms_cache_validate(&cc, &err), VMS_ERR_INVAL);
    CHECK(strstr(err.msg, "VIPT") != NULL && strstr(err.msg, "l1d") != NULL);
    cc.l1d.ways = 16; /* 64 sets again: allowed */
    CHECK_EQ(vms_cache_validate(&cc, NULL), VMS_OK);
    cc.l2.size = 1000; /* not a multiple of ways × line */
    CHECK_EQ(vms_cache_validate(&cc, &err), VMS_ERR_INVAL);
    CHECK(strstr(err.msg, "l2") != NULL);
    CHECK_EQ(vms_cache_preset("nonesuch", &cc, &err), VMS_ERR_NOTFOUND);
    CHECK(strstr(err.msg, "skylake") != NULL);
    vms_machine_config mc;
    vms_machine_preset("skylake", &mc, NULL);
    CHECK(!mc.cache.on && !mc.dram.on); /* off unless asked for */
    mc.cache = cc;
    CHECK_EQ(vms_machine_validate(&mc, &err), VMS_ERR_INVAL);
}

/* ---- a kernel on a cached machine ------------------------------------------------------- */

#define RW        (VMS_PROT_READ | VMS_PROT_WRITE)
#define PRIV_ANON (VMS_MAP_PRIVATE | VMS_MAP_ANONYMOUS)
#define BUF       UINT64_C(0x10000000)
#define NPROC     3
#define BUFPAGES  640 /* 2.5 MiB per process: three do not fit in 4 MiB of RAM */
#define DMAPAGES  8   /* the first pages of each buffer are mapped for DMA */

typedef struct world {
    vms_machine *m;
    vms_kernel *k;
    vms_iommu *io;
    vms_dev *dev[2]; /* 0 coherent, 1 non-coherent */
    vms_dma_dev *dd[2];
    vms_task *t[NPROC];
    uint64_t iova[NPROC][2]; /* DMA mapping of process i's first pages, per device */
    uint8_t *model[NPROC];
    vms_rng rng;
    uint64_t bad;
} world;

static bool cache_ok(world *w)
{
    vms_err err = {0};
    vms_status st = vms_machine_cache_check(w->m, &err);
    if (st != VMS_OK)
        fprintf(stderr, "%s\n", err.msg);
    vms_status ks = vms_kernel_check(w->k, &err);
    if (ks != VMS_OK)
        fprintf(stderr, "kernel: %s\n", err.msg);
    return st == VMS_OK && ks == VMS_OK;
}

static bool world_up(world *w, const char *hier, bool inclusive, uint64_t seed)
{
    memset(w, 0, sizeof *w);
    vms_rng_seed(&w->rng, seed);
    vms_machine_config mc;
    vms_machine_preset("skylake", &mc, NULL);
    mc.ram_bytes = UINT64_C(4) << 20;
    mc.ncores = 2;
    vms_cache_preset(hier, &mc.cache, NULL);
    mc.cache.inclusive = inclusive;
    vms_dram_preset("ddr4-3200", &mc.dram, NULL);
    vms_kernel_config kc;
    vms_kernel_config_default(&kc);
    kc.swap_bytes = UINT64_C(16) << 20;
    vms_iommu_config ic;
    vms_iommu_config_default(&ic);
    vms_dev_config d0 = {"coh", vms_bdf_make(0, 5, 0), 0},
                   d1 = {"noncoh", vms_bdf_make(0, 6, 0), 0};
    if (vms_machine_create(NULL, &mc, &w->m, NULL) != VMS_OK ||
        vms_kernel_create(w->m, &kc, &w->k, NULL) != VMS_OK ||
        vms_iommu_create(w->m, &ic, &w->io, NULL) != VMS_OK ||
        vms_dev_create(w->m, w->io, &d0, &w->dev[0], NULL) != VMS_OK ||
        vms_dev_create(w->m, w->io, &d1, &w->dev[1], NULL) != VMS_OK)
        return false;
    vms_dev_set_coherent(w->dev[1], false);
    for (unsigned d = 0; d < 2; d++)
        if (vms_dma_attach(w->k, w->dev[d], VMS_DMA_TRANSLATE, &w->dd[d], NULL) != VMS_OK)
            return false;
    for (unsigned i = 0; i < NPROC; i++) {
        uint64_t at;
        char name[8];
        snprintf(name, sizeof name, "p%u", i);
        w->model[i] = calloc(BUFPAGES, 4096);
        if (!w->model[i] || vms_proc_spawn(w->k, name, i % 2, &w->t[i], NULL) != VMS_OK ||
            vms_sys_mmap(w->k, w->t[i], BUF, BUFPAGES * 4096, RW, PRIV_ANON | VMS_MAP_FIXED, NULL,
                         0, &at, NULL) != VMS_OK)
            return false;
        for (unsigned d = 0; d < 2; d++)
            if (vms_dma_map(w->k, w->dd[d], w->t[i], BUF, DMAPAGES * 4096, VMS_DMA_BIDIRECTIONAL,
                            &w->iova[i][d], NULL) != VMS_OK)
                return false;
    }
    return true;
}

static void world_down(world *w)
{
    if (w->k) {
        vms_dma_detach_all(w->k);
        while (vms_proc_count(w->k))
            vms_proc_exit(w->k, vms_proc_at(w->k, 0));
    }
    vms_kernel_destroy(w->k);
    vms_dev_destroy(w->dev[0]);
    vms_dev_destroy(w->dev[1]);
    vms_iommu_destroy(w->io);
    vms_machine_destroy(w->m);
    for (unsigned i = 0; i < NPROC; i++)
        free(w->model[i]);
}

/* Pick an offset and length (1 … 300 bytes) inside `pages` pages. */
static void pick(world *w, uint64_t pages, uint64_t *off, size_t *len)
{
    *len = 1 + (size_t)vms_rng_below(&w->rng, 300);
    *off = vms_rng_below(&w->rng, pages * 4096 - *len);
}

static void op_cpu(world *w, unsigned i, bool write)
{
    uint8_t buf[300];
    uint64_t off;
    size_t len;
    pick(w, BUFPAGES, &off, &len);
    if (write) {
        for (size_t b = 0; b < len; b++)
            buf[b] = (uint8_t)vms_rng_next(&w->rng);
        if (vms_proc_write(w->k, w->t[i], BUF + off, buf, len) == VMS_ACCESS_OK)
            memcpy(w->model[i] + off, buf, len);
        else
            w->bad++;
        return;
    }
    if (vms_proc_read(w->k, w->t[i], BUF + off, buf, len) != VMS_ACCESS_OK ||
        memcmp(buf, w->model[i] + off, len)) {
        fprintf(stderr, "p%u read at +0x%llx (%zu bytes) differs\n", i, (unsigned long long)off,
                len);
        w->bad++;
    }
}

/* A device DMA into or out of process i's mapped pages, the driver syncing around it. */
static void op_dma(world *w, unsigned i, unsigned d, bool to_memory)
{
    uint8_t buf[300];
    uint64_t off;
    size_t len;
    pick(w, DMAPAGES, &off, &len);
    uint64_t iova = w->iova[i][d];
    /* The device takes the buffer: dirty lines reach DRAM (for a coherent device a no-op). */
    CHECK_EQ(vms_dma_sync_for_device(w->k, w->dd[d], iova, DMAPAGES * 4096, NULL, NULL), VMS_OK);
    if (to_memory) {
        for (size_t b = 0; b < len; b++)
            buf[b] = (uint8_t)vms_rng_next(&w->rng);
        if (vms_dev_dma(w->dev[d], iova + off, buf, len, VMS_ACC_WRITE).ok)
            memcpy(w->model[i] + off, buf, len);
        else
            w->bad++;
    } else if (!vms_dev_dma(w->dev[d], iova + off, buf, len, VMS_ACC_READ).ok ||
               memcmp(buf, w->model[i] + off, len)) {
        fprintf(stderr, "device %u read of p%u +0x%llx differs\n", d, i, (unsigned long long)off);
        w->bad++;
    }
    /* The CPU takes it back: drop stale lines (for a coherent device a no-op). */
    CHECK_EQ(vms_dma_sync_for_cpu(w->k, w->dd[d], iova, DMAPAGES * 4096, NULL, NULL), VMS_OK);
}

/* Fork process i, let the child write (COW copies), check and exit it. */
static void op_fork(world *w, unsigned i)
{
    vms_task *child = NULL;
    if (vms_proc_fork(w->k, w->t[i], &child, NULL) != VMS_OK) {
        w->bad++;
        return;
    }
    uint8_t buf[64], got[64];
    uint64_t off = vms_rng_below(&w->rng, BUFPAGES * 4096 - 64);
    memset(buf, 0xC5, sizeof buf);
    bool ok = vms_proc_write(w->k, child, BUF + off, buf, 64) == VMS_ACCESS_OK &&
              vms_proc_read(w->k, child, BUF + off, got, 64) == VMS_ACCESS_OK &&
              !memcmp(got, buf, 64);
    vms_proc_exit(w->k, child);
    if (!ok)
        w->bad++;
}

static void no_data_lost(const char *hier, bool inclusive, uint64_t seed, unsigned nops)
{
    world w;
    if (!world_up(&w, hier, inclusive, seed)) {
        CHECK(!"world_up");
        world_down(&w);
        return;
    }
    unsigned checks_failed = 0;
    /* Touch every page first: more than RAM holds, so reclaim swaps from the start. */
    for (unsigned i = 0; i < NPROC; i++)
        for (unsigned p = 0; p < BUFPAGES; p++) {
            uint8_t b = (uint8_t)(i * 7 + p);
            if (vms_proc_write(w.k, w.t[i], BUF + p * 4096u + (p % 61) * 64, &b, 1) ==
                VMS_ACCESS_OK)
                w.model[i][p * 4096u + (p % 61) * 64] = b;
            else
                w.bad++;
        }
    for (unsigned n = 0; n < nops && !w.bad; n++) {
        unsigned i = (unsigned)vms_rng_below(&w.rng, NPROC),
                 r = (unsigned)vms_rng_below(&w.rng, 100);
        if (r < 40)
            op_cpu(&w, i, true);
        else if (r < 75)
            op_cpu(&w, i, false);
        else if (r < 95)
            op_dma(&w, i, r & 1, r < 85);
        else
            op_fork(&w, i);
        if (n % 64 == 0 && !cache_ok(&w))
            checks_failed++;
    }
    /* Every byte of every process, finally. */
    uint8_t *page = malloc(4096);
    for (unsigned i = 0; page && i < NPROC && !w.bad; i++)
        for (unsigned p = 0; p < BUFPAGES; p++)
            if (vms_proc_read(w.k, w.t[i], BUF + p * 4096u, page, 4096) != VMS_ACCESS_OK ||
                memcmp(page, w.model[i] + p * 4096u, 4096)) {
                fprintf(stderr, "%s: p%u page %u differs at the end\n", hier, i, p);
                w.bad++;
                break;
            }
    free(page);
    CHECK_EQ(w.bad, 0);
    CHECK_EQ(checks_failed, 0);
    CHECK(cache_ok(&w));
    /* The run went through every part: caches, DRAM, swap, both devices. */
    const vms_cache *l1 = vms_machine_cache(w.m, 0, VMS_CACHE_L1D);
    CHECK(l1 && vms_cache_get_stats(l1)->writebacks > 0);
    const vms_dram *dr = vms_machine_dram(w.m);
    CHECK(dr && vms_dram_get_stats(dr)->row_hits > 0 && vms_dram_get_stats(dr)->writes > 0);
    CHECK(vms_kernel_get_stats(w.k)->pswpout > 0);
    world_down(&w);
}

static void test_no_data_lost(void)
{
    const char *env = getenv("VMS_CACHE_SOAK");
    unsigned rounds = env ? (unsigned)strtoul(env, NULL, 0) : 1;
    for (unsigned r = 0; r < rounds; r++) {
        no_data_lost("tiny", false, th_seed + r, 4000);
        no_data_lost("tiny", true, th_seed + 100 + r, 4000);
        no_data_lost("skylake", true, th_seed + 200 + r, 1500);
    }
}

/* Stale data is visible without syncs on the non-coherent device, never on the other. */
static void test_stale_without_sync(void)
{
    world w;
    REQUIRE_VOID(world_up(&w, "tiny", false, th_seed));
    uint8_t old[16], pkt[16], got[16];
    memset(old, 'o', 16);
    memset(pkt, 'P', 16);
    for (unsigned d = 0; d < 2; d++) {
        CHECK_EQ(vms_proc_write(w.k, w.t[0], BUF, old, 16), VMS_ACCESS_OK);
        vms_dma_sync_for_device(w.k, w.dd[d], w.iova[0][d], 64, NULL, NULL);
        CHECK_EQ(vms_proc_read(w.k, w.t[0], BUF, got, 16), VMS_ACCESS_OK); /* cached now */
        CHECK(vms_dev_dma(w.dev[d], w.iova[0][d], pkt, 16, VMS_ACC_WRITE).ok);
        CHECK_EQ(vms_proc_read(w.k, w.t[0], BUF, got, 16), VMS_ACCESS_OK);
        CHECK_EQ(memcmp(got, d ? old : pkt, 16), 0); /* non-coherent: the stale line */
        uint64_t lines = 0;
        vms_dma_sync_for_cpu(w.k, w.dd[d], w.iova[0][d], 64, &lines, NULL);
        CHECK_EQ(lines, d ? 1 : 0);
        CHECK_EQ(vms_proc_read(w.k, w.t[0], BUF, got, 16), VMS_ACCESS_OK);
        CHECK_EQ(memcmp(got, pkt, 16), 0);
        /* A dirty line the device cannot see until it is cleaned. */
        CHECK_EQ(vms_proc_write(w.k, w.t[0], BUF, old, 16), VMS_ACCESS_OK);
        CHECK(vms_dev_dma(w.dev[d], w.iova[0][d], got, 16, VMS_ACC_READ).ok);
        CHECK_EQ(memcmp(got, d ? pkt : old, 16), 0);
        vms_dma_sync_for_device(w.k, w.dd[d], w.iova[0][d], 64, NULL, NULL);
        CHECK(vms_dev_dma(w.dev[d], w.iova[0][d], got, 16, VMS_ACC_READ).ok);
        CHECK_EQ(memcmp(got, old, 16), 0);
        CHECK(cache_ok(&w));
    }
    world_down(&w);
}

/* Walk references are served by the levels, and counted as such. */
static void test_walk_refs(void)
{
    world w;
    REQUIRE_VOID(world_up(&w, "skylake", true, th_seed));
    uint8_t b = 1;
    for (unsigned p = 0; p < 64; p++)
        CHECK_EQ(vms_proc_write(w.k, w.t[0], BUF + p * 4096u, &b, 1), VMS_ACCESS_OK);
    vms_strbuf sb;
    vms_strbuf_init(&sb, NULL);
    CHECK_EQ(vms_machine_stats_json(w.m, &sb), VMS_OK);
    CHECK(strstr(sb.data, "\"cache\":{\"name\":\"skylake\"") != NULL);
    CHECK(strstr(sb.data, "\"walk_refs\":{\"l1\":") != NULL);
    CHECK(strstr(sb.data, "\"dram\":{\"name\":\"ddr4-3200\"") != NULL);
    vms_strbuf_free(&sb);
    const vms_cache *l1 = vms_machine_cache(w.m, 0, VMS_CACHE_L1D);
    CHECK(l1 && vms_cache_get_stats(l1)->walk_hits > 0);
    vms_mem_where where[5];
    unsigned n = vms_core_walk_where(vms_machine_core(w.m, 0), where, 5);
    CHECK(n >= 1 && n <= 5);
    world_down(&w);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "cache");
    test_level_diff();
    test_validate();
    test_stale_without_sync();
    test_walk_refs();
    test_no_data_lost();
    return th_finish();
}
