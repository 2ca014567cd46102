/*
 * bench_replay.c — trace replay speed end to end: open the trace file, boot the default
 * machine (skylake) and kernel, replay every reference through the MMU and kernel
 * (vms_replay_run), close. References per CPU second of the process (on a shared,
 * loaded machine CPU time is disturbed far less than wall time), median of --runs
 * (default 5), with the fast path (the batch path and the TLB repeat memo) and without
 * it (--slow: reference by reference through vms_proc_access, memo on, as `vmsim replay
 * --slow`), runs of the two modes alternating; "exact" says whether both gave the same
 * JSON of every counter.
 *
 * Workloads (files written to /tmp first, so they are read from the page cache):
 *   ls            examples/traces/ls.vmt: `ls /` under valgrind (781,365 references)
 *   program.*     a synthetic program-shaped stream (--refs N, default 4M): sequential
 *                 fetches over 1 MiB of code with short jumps, stack references, heap
 *                 references within 1 MiB — native (zstd), lackey and dinero files
 *   sparse.vmt    the same with the heap references uniform over 256 MiB: most miss
 *                 both TLB levels and walk
 *
 * Usage: bench_replay [--runs N] [--refs N]   (VMS_SOURCE_DIR locates examples/, else .;
 * BENCH_KEEP=1 keeps /tmp/vmsim_bench_replay.vmt for profiling)
 */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_gen.h"
#include "bench_util.h"
#include "vmsim/config.h"
#include "vmsim/replay.h"
#include "vmsim/rng.h"

static int write_trace(const char *path, vms_trace_format fmt, uint64_t n, uint64_t heap_mask)
{
    vms_trace_writer *w;
    vms_err err = {0};
    if (vms_trace_writer_open(path, fmt, NULL, NULL, &w, &err) != VMS_OK) {
        fprintf(stderr, "bench_replay: %s\n", err.msg);
        return 1;
    }
    bench_gen s = {.heap_mask = heap_mask};
    vms_rng_seed(&s.g, 1);
    vms_trace_event ev;
    for (uint64_t i = 0; i < n; i++) {
        bench_gen_next(&s, &ev);
        vms_trace_writer_write(w, &ev, &err);
    }
    if (vms_trace_writer_close(w, &err) != VMS_OK) {
        fprintf(stderr, "bench_replay: %s\n", err.msg);
        return 1;
    }
    return 0;
}

/* One end-to-end replay of path; returns the seconds taken (negative on failure), the
 * references replayed and the JSON of every counter. */
static double replay_once(const char *path, bool slow, uint64_t *refs, vms_strbuf *json)
{
    double t0 = bench_now();
    vms_config c;
    vms_err err = {0};
    vms_machine *m = NULL;
    vms_kernel *k = NULL;
    vms_replay *r = NULL;
    vms_trace_reader *rd = NULL;
    vms_status st = vms_config_init(&c, "skylake", &err);
    vms_kernel_config kc = vms_config_kernel(&c);
    if (st == VMS_OK)
        st = vms_machine_create(NULL, &c.machine, &m, &err);
    if (st == VMS_OK)
        st = vms_kernel_create(m, &kc, &k, &err);
    vms_replay_opts o = {.slow = slow};
    if (st == VMS_OK)
        st = vms_replay_create(k, &o, &r, &err);
    if (st == VMS_OK)
        st = vms_trace_reader_open(path, VMS_TRACE_AUTO, NULL, &rd, &err);
    if (st == VMS_OK)
        st = vms_replay_run(r, rd, &err);
    double t = bench_now() - t0;
    if (st == VMS_OK) {
        *refs = vms_replay_get_stats(r)->references;
        vms_strbuf_printf(json, "{");
        vms_machine_stats_json_members(m, json);
        vms_kernel_stats_json_members(k, json);
        vms_replay_stats_json_members(r, json);
        vms_strbuf_printf(json, "}");
    } else {
        fprintf(stderr, "bench_replay: %s: %s\n", path, err.msg);
    }
    vms_trace_reader_close(rd);
    vms_replay_destroy(r);
    vms_kernel_destroy(k);
    vms_machine_destroy(m);
    return st == VMS_OK ? t : -1;
}

/* CPU seconds of this process: on a shared, loaded machine the time our code ran, not
 * the time it waited for a core. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/*
 * `runs` replays in each mode, alternating fast and slow so both see the same load;
 * prints the medians of the CPU-time rates and whether the last runs' JSON agree.
 */
static void row(const char *name, const char *path, int runs)
{
    uint64_t refs = 0;
    double t[2][64];
    vms_strbuf json[2];
    vms_strbuf_init(&json[0], NULL);
    vms_strbuf_init(&json[1], NULL);
    for (int i = 0; i < runs; i++) {
        for (int slow = 0; slow < 2; slow++) {
            vms_strbuf_free(&json[slow]);
            vms_strbuf_init(&json[slow], NULL);
            double c0 = cpu_now();
            if (replay_once(path, slow, &refs, &json[slow]) < 0)
                return;
            t[slow][i] = cpu_now() - c0;
        }
    }
    double tf = bench_median(t[0], (size_t)runs), ts = bench_median(t[1], (size_t)runs);
    printf("%-14s %10" PRIu64 " %12.2f %12.2f %7.2fx  %s\n", name, refs, (double)refs / tf / 1e6,
           (double)refs / ts / 1e6, ts / tf,
           strcmp(vms_strbuf_str(&json[0]), vms_strbuf_str(&json[1])) == 0 ? "yes" : "NO");
    vms_strbuf_free(&json[0]);
    vms_strbuf_free(&json[1]);
}

int main(int argc, char **argv)
{
    int runs = 5;
    uint64_t n = 4000000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--runs"))
            runs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--refs"))
            n = strtoull(argv[i + 1], NULL, 0);
    }
    if (runs < 1 || runs > 64 || n == 0) {
        fprintf(stderr, "usage: bench_replay [--runs 1..64] [--refs N]\n");
        return 2;
    }
    const char *src = getenv("VMS_SOURCE_DIR");
    char ls[1024];
    snprintf(ls, sizeof ls, "%s/examples/traces/ls.vmt", src ? src : ".");
    if (write_trace("/tmp/vmsim_bench_replay.vmt", VMS_TRACE_NATIVE, n, 0xffff8) ||
        write_trace("/tmp/vmsim_bench_replay.lackey", VMS_TRACE_LACKEY, n, 0xffff8) ||
        write_trace("/tmp/vmsim_bench_replay.din", VMS_TRACE_DINERO, n, 0xffff8) ||
        write_trace("/tmp/vmsim_bench_replay_sparse.vmt", VMS_TRACE_NATIVE, n, 0xffffff8))
        return 1;
    printf(
        "%-14s %10s %12s %12s %8s  %s   (skylake; CPU time, median of %d runs each, alternating)\n",
        "trace", "references", "fast Mref/s", "slow Mref/s", "speedup", "exact", runs);
    row("ls.vmt", ls, runs);
    row("program.vmt", "/tmp/vmsim_bench_replay.vmt", runs);
    row("program.lackey", "/tmp/vmsim_bench_replay.lackey", runs);
    row("program.din", "/tmp/vmsim_bench_replay.din", runs);
    row("sparse.vmt", "/tmp/vmsim_bench_replay_sparse.vmt", runs);
    if (!getenv("BENCH_KEEP"))
        remove("/tmp/vmsim_bench_replay.vmt");
    remove("/tmp/vmsim_bench_replay.lackey");
    remove("/tmp/vmsim_bench_replay.din");
    remove("/tmp/vmsim_bench_replay_sparse.vmt");
    return 0;
}
