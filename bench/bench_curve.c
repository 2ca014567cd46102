/*
 * bench_curve.c — a miss-ratio curve in one pass (curve.h) against the separate runs it
 * replaces: the L1 dTLB as a fully associative LRU of 4, 8, …, 64 entries (16 sizes),
 * either 16 replays with `tlb.l1d=4K:1xN:lru` or one replay at 64 entries with a curve
 * attached. CPU seconds of this process (the machine is shared), medians of --runs
 * (default 3), the two ways alternating; "exact" says whether every point of the curve
 * equals its separate run's misses.
 *
 * Traces: examples/traces/ls.vmt, and zipf+runs and rand (bench_ref.h; --refs N, default
 * 1M) written to /tmp as native traces first.
 *
 * Usage: bench_curve [--runs N] [--refs N]   (VMS_SOURCE_DIR locates examples/, else .)
 */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_ref.h"
#include "bench_util.h"
#include "vmsim/config.h"
#include "vmsim/core.h"
#include "vmsim/curve.h"
#include "vmsim/replay.h"
#include "vmsim/tlb.h"

#define NSIZES 16

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Replay path with the L1 dTLB as `entries`-entry FA LRU; with curve, attach an FA curve
 * of `entries` sizes and fill pts[1..entries]. Returns the L1 dTLB misses, or
 * UINT64_MAX. */
static uint64_t replay(const char *path, unsigned entries, bool curve, uint64_t *pts,
                       uint64_t *refs)
{
    vms_config c;
    vms_err err = {0};
    vms_machine *m = NULL;
    vms_kernel *k = NULL;
    vms_replay *r = NULL;
    vms_trace_reader *rd = NULL;
    vms_curve *cv = NULL;
    char set[64];
    snprintf(set, sizeof set, "tlb.l1d=4K:1x%u:lru", entries);
    vms_status st = vms_config_init(&c, "skylake", &err);
    if (st == VMS_OK)
        st = vms_config_set_arg(&c, set, &err);
    if (st == VMS_OK)
        st = vms_config_set_arg(&c, "cores=1", &err);
    vms_kernel_config kc = vms_config_kernel(&c);
    if (st == VMS_OK)
        st = vms_machine_create(NULL, &c.machine, &m, &err);
    if (st == VMS_OK)
        st = vms_kernel_create(m, &kc, &k, &err);
    if (st == VMS_OK && curve) {
        st = vms_curve_create(NULL, 1, entries, 1.0, 1, &cv, &err);
        if (st == VMS_OK)
            st = vms_core_curve_attach(vms_machine_core(m, 0), "tlb.l1d", cv, &err);
        if (st == VMS_OK)
            vms_curve_set_spurious(cv, &vms_kernel_get_stats(k)->spurious);
    }
    vms_replay_opts o = {0};
    if (st == VMS_OK)
        st = vms_replay_create(k, &o, &r, &err);
    if (st == VMS_OK)
        st = vms_trace_reader_open(path, VMS_TRACE_AUTO, NULL, &rd, &err);
    if (st == VMS_OK)
        st = vms_replay_run(r, rd, &err);
    uint64_t misses = UINT64_MAX;
    if (st == VMS_OK) {
        misses = vms_tlb_get_stats(vms_core_tlb(vms_machine_core(m, 0), VMS_TLB_L1D))->misses;
        *refs = vms_replay_get_stats(r)->references;
        for (unsigned n = 1; cv && n <= entries; n++)
            pts[n] = vms_curve_misses(cv, n);
    } else {
        fprintf(stderr, "bench_curve: %s: %s\n", path, err.msg);
    }
    vms_trace_reader_close(rd);
    vms_replay_destroy(r);
    vms_kernel_destroy(k);
    vms_machine_destroy(m);
    vms_curve_destroy(cv);
    return misses;
}

static void row(const char *name, const char *path, int runs)
{
    double one[64], sep[64];
    uint64_t pts[65] = {0}, want[NSIZES], refs = 0;
    bool exact = true;
    for (int i = 0; i < runs; i++) {
        double t0 = cpu_now();
        if (replay(path, 64, true, pts, &refs) == UINT64_MAX)
            return;
        one[i] = cpu_now() - t0;
        t0 = cpu_now();
        for (unsigned s = 0; s < NSIZES; s++)
            want[s] = replay(path, 4 * (s + 1), false, NULL, &refs);
        sep[i] = cpu_now() - t0;
        for (unsigned s = 0; s < NSIZES; s++)
            exact = exact && pts[4 * (s + 1)] == want[s];
    }
    double a = bench_median(one, (size_t)runs), b = bench_median(sep, (size_t)runs);
    printf("%-12s %10" PRIu64 " %12.3f %12.3f %9.1fx  %s\n", name, refs, a, b, b / a,
           exact ? "yes" : "NO");
    fflush(stdout);
}

static bool write_native(unsigned pat, uint64_t n, const char *path)
{
    vms_trace_writer *w;
    vms_err err = {0};
    if (vms_trace_writer_open(path, VMS_TRACE_NATIVE, NULL, NULL, &w, &err) != VMS_OK)
        return false;
    bench_ref_gen s;
    if (!bench_ref_gen_init(&s, pat, 1))
        return false;
    bool ok = true;
    for (uint64_t i = 0; i < n && ok; i++) {
        vms_trace_event ev = {.type = VMS_TEV_ACCESS, .tid = 1};
        bool wr;
        bench_ref_gen_next(&s, &ev.access.va, &wr);
        ev.access.size = 8;
        ev.access.kind = wr ? VMS_TACC_WRITE : VMS_TACC_READ;
        ok = vms_trace_writer_write(w, &ev, &err) == VMS_OK;
    }
    bench_ref_gen_fini(&s);
    return vms_trace_writer_close(w, &err) == VMS_OK && ok;
}

int main(int argc, char **argv)
{
    int runs = 3;
    uint64_t refs = 1000000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--runs"))
            runs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--refs"))
            refs = strtoull(argv[i + 1], NULL, 0);
    }
    if (runs < 1 || runs > 64)
        runs = 3;
    const char *src = getenv("VMS_SOURCE_DIR");
    char ls[4096];
    snprintf(ls, sizeof ls, "%s/examples/traces/ls.vmt", src ? src : ".");
    printf("L1 dTLB fully associative LRU, 16 sizes (4, 8, ..., 64): one pass with a curve\n"
           "against 16 replays; CPU seconds, median of %d runs\n",
           runs);
    printf("%-12s %10s %12s %12s %10s  %s\n", "trace", "references", "one_pass_s", "16_runs_s",
           "speedup", "exact");
    row("ls.vmt", ls, runs);
    static const unsigned pats[2] = {3, 1};
    for (unsigned i = 0; i < 2; i++) {
        char path[64];
        snprintf(path, sizeof path, "/tmp/vmsim_bench_curve_%u.vmt", pats[i]);
        if (!write_native(pats[i], pats[i] == 1 ? refs / 10 : refs, path)) {
            fprintf(stderr, "bench_curve: cannot write %s\n", path);
            return 1;
        }
        row(bench_ref_pat_names[pats[i]], path, runs);
        remove(path);
    }
    return 0;
}
