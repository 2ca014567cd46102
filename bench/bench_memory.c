/*
 * bench_memory.c — host memory per touched simulated page (issue 11 item 4: at most
 * 64 bytes per touched page beyond the page data actually written, constant in trace
 * length).
 *
 * Every host allocation of the machine, kernel and replay goes through a counting
 * allocator (the library's allocator hook), so the figures are exact bytes requested,
 * not the host's page granularity. For each pattern: boot the default `skylake` machine
 * and kernel (4 GiB RAM), note the live bytes, replay the trace (written to /tmp first),
 * and report, per distinct 4 KiB page the trace touched:
 *
 *   end      (live bytes after the replay - live bytes after boot - page data) / pages
 *   peak     (peak live bytes - live bytes after boot - page data) / pages
 *   data     page data: the RAM's resident frames x 4 KiB (host pages that hold bytes
 *            something wrote: here only the page tables, since a replay moves no data)
 *   tables   of which page tables (the kernel wrote them: they are page data too)
 *
 * Patterns, all over 1 GiB at 0x7f0000000000 (262,144 pages), seeded:
 *   write-all   one 8-byte store per page, in order: every page gets an anonymous frame
 *   read-all    one load per page: every page maps the shared zero page
 *   rand        uniform 8-byte references (30% writes), 4 per page on average
 *   write-all4  write-all four times: the same pages, so the same memory (constancy)
 * and write-all again under the other page-replacement policies (twolist is the default;
 * OPT needs a replay oracle and is left out).
 *
 * Usage: bench_memory [--pages N] (default 262144; other arguments are ignored, so
 * scripts/bench.sh may pass --runs).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmsim/config.h"
#include "vmsim/frames.h"
#include "vmsim/ram.h"
#include "vmsim/replay.h"
#include "vmsim/rng.h"

#define BASE UINT64_C(0x7f0000000000)

/* The counting allocator: live and peak bytes requested. */
typedef struct counter {
    size_t live, peak;
} counter;

static void *count_realloc(void *ud, void *ptr, size_t old_size, size_t new_size)
{
    counter *c = ud;
    if (new_size == 0) {
        free(ptr);
        c->live -= ptr ? old_size : 0;
        return NULL;
    }
    void *p = realloc(ptr, new_size);
    if (!p)
        return NULL;
    c->live = c->live - (ptr ? old_size : 0) + new_size;
    if (c->live > c->peak)
        c->peak = c->live;
    return p;
}

typedef enum pattern { WRITE_ALL, READ_ALL, RAND, WRITE_ALL4 } pattern;

/* Write the pattern's trace to path. */
static int write_trace(const char *path, pattern p, uint64_t pages)
{
    vms_trace_writer *w;
    vms_err err = {0};
    if (vms_trace_writer_open(path, VMS_TRACE_NATIVE, NULL, NULL, &w, &err) != VMS_OK) {
        fprintf(stderr, "bench_memory: %s\n", err.msg);
        return 1;
    }
    vms_rng g;
    vms_rng_seed(&g, 1);
    uint64_t n = p == RAND ? 4 * pages : p == WRITE_ALL4 ? 4 * pages : pages;
    vms_trace_event ev;
    for (uint64_t i = 0; i < n; i++) {
        memset(&ev, 0, sizeof ev);
        ev.type = VMS_TEV_ACCESS;
        ev.access.size = 8;
        uint64_t pg = i % pages, off = 0;
        ev.access.kind = p == READ_ALL ? VMS_TACC_READ : VMS_TACC_WRITE;
        if (p == RAND) {
            pg = vms_rng_below(&g, pages);
            off = vms_rng_below(&g, 512) * 8;
            ev.access.kind = vms_rng_below(&g, 10) < 3 ? VMS_TACC_WRITE : VMS_TACC_READ;
        }
        ev.access.va = BASE + (pg << 12) + off;
        vms_trace_writer_write(w, &ev, &err);
    }
    if (vms_trace_writer_close(w, &err) != VMS_OK) {
        fprintf(stderr, "bench_memory: %s\n", err.msg);
        return 1;
    }
    return 0;
}

/* Distinct pages of RAND: regenerate the stream and count (the same seed and draws). */
static uint64_t rand_touched(uint64_t pages)
{
    uint8_t *seen = calloc(pages, 1);
    uint64_t n = 0;
    vms_rng g;
    vms_rng_seed(&g, 1);
    for (uint64_t i = 0; seen && i < 4 * pages; i++) {
        uint64_t pg = vms_rng_below(&g, pages);
        vms_rng_below(&g, 512);
        vms_rng_below(&g, 10);
        n += !seen[pg];
        seen[pg] = 1;
    }
    free(seen);
    return n;
}

/* One replay of path on skylake (with `set`, a "key=value" config change, or NULL). */
static void row(const char *name, const char *path, uint64_t touched, const char *set)
{
    counter c = {0, 0};
    vms_allocator a = {count_realloc, &c};
    vms_config cfg;
    vms_err err = {0};
    vms_machine *m = NULL;
    vms_kernel *k = NULL;
    vms_replay *r = NULL;
    vms_trace_reader *rd = NULL;
    vms_status st = vms_config_init(&cfg, "skylake", &err);
    if (st == VMS_OK && set)
        st = vms_config_set_arg(&cfg, set, &err);
    vms_kernel_config kc = vms_config_kernel(&cfg);
    if (st == VMS_OK)
        st = vms_machine_create(&a, &cfg.machine, &m, &err);
    if (st == VMS_OK)
        st = vms_kernel_create(m, &kc, &k, &err);
    vms_replay_opts o = {.layout = VMS_REPLAY_LAYOUT_DEFAULT};
    if (st == VMS_OK)
        st = vms_replay_create(k, &o, &r, &err);
    size_t boot = c.live;
    c.peak = c.live;
    if (st == VMS_OK)
        st = vms_trace_reader_open(path, VMS_TRACE_AUTO, NULL, &rd, &err);
    if (st == VMS_OK)
        st = vms_replay_run(r, rd, &err);
    if (st == VMS_OK) {
        uint64_t frames = vms_ram_resident_frames(vms_machine_ram(m));
        uint64_t tables = vms_frames_count(vms_kernel_frames(k), VMS_FRAME_PAGETABLE);
        double data = (double)frames * 4096;
        double end = ((double)c.live - (double)boot - data) / (double)touched;
        double peak = ((double)c.peak - (double)boot - data) / (double)touched;
        printf("%-11s %9" PRIu64 " %10" PRIu64 " %8.1f %8.1f %12.0f %8" PRIu64 " %9.1f\n", name,
               vms_replay_get_stats(r)->references, touched, end, peak, data, tables,
               (double)boot / 1024);
    } else {
        fprintf(stderr, "bench_memory: %s: %s\n", path, err.msg);
    }
    vms_trace_reader_close(rd);
    vms_replay_destroy(r);
    vms_kernel_destroy(k);
    vms_machine_destroy(m);
    if (c.live != 0)
        fprintf(stderr, "bench_memory: %zu bytes not freed\n", c.live);
}

int main(int argc, char **argv)
{
    uint64_t pages = 262144;
    for (int i = 1; i + 1 < argc; i += 2)
        if (!strcmp(argv[i], "--pages"))
            pages = strtoull(argv[i + 1], NULL, 0);
    if (pages == 0 || pages > (UINT64_C(1) << 24)) {
        fprintf(stderr, "usage: bench_memory [--pages 1..2^24]\n");
        return 2;
    }
    static const char *const names[] = {"write-all", "read-all", "rand", "write-all4"};
    printf("%-11s %9s %10s %8s %8s %12s %8s %9s   (skylake; bytes beyond page data per touched "
           "page)\n",
           "pattern", "refs", "pages", "end", "peak", "data_bytes", "tables", "boot_KiB");
    for (int p = WRITE_ALL; p <= WRITE_ALL4; p++) {
        const char *path = "/tmp/vmsim_bench_memory.vmt";
        if (write_trace(path, (pattern)p, pages))
            return 1;
        row(names[p], path, p == RAND ? rand_touched(pages) : pages, NULL);
        if (p == WRITE_ALL) { /* the other page-replacement policies (OPT needs an oracle) */
            static const char *const pol[] = {"policy=fifo", "policy=lru", "policy=clock",
                                              "policy=random"};
            for (unsigned i = 0; i < 4; i++) {
                char name[32];
                snprintf(name, sizeof name, "  %s", pol[i] + 7);
                row(name, path, pages, pol[i]);
            }
        }
        remove(path);
    }
    return 0;
}
