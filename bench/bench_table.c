/*
 * bench_table.c — issue 11's table on the project's own code: millions of references per
 * CPU second of vmsim's replay against a naive 64-entry fully associative LRU "TLB" (the
 * reference consumer, bench_ref.h: Dinero IV, which the issue measured, is not packaged
 * by Debian) and against the parse floors (read + parse + a direct-mapped 64-entry TLB),
 * on the four synthetic patterns (seq, rand over 1 GiB, zipf(0.99), zipf+runs; 30%
 * writes).
 *
 * Rows:
 *   vmsim native    vms_replay_run of the native trace, default preset (skylake: split
 *                   L1, 1536-entry L2, PWC, kernel, stats), boot included
 *   vmsim din       the same from the din text
 *   naive bin       the naive FA LRU over 9-byte binary records
 *   naive din       the naive FA LRU over din text
 *   floor din       read + parse din + direct-mapped 64-entry TLB
 *   floor bin       read + decode 9-byte records + direct-mapped 64-entry TLB
 *
 * The trace files are written to /tmp first (so they are read from the page cache). Every
 * measurement is CPU seconds of this process (CLOCK_PROCESS_CPUTIME_ID: the machine is
 * shared); the runs are interleaved — each of --runs rounds measures every row on every
 * pattern once — and the table gives medians, then the ratios the goals name.
 * The naive consumer's misses and vmsim's are printed too (tests/test_naive.c checks that
 * they agree for a fully associative LRU L1 dTLB; here vmsim runs the default preset).
 *
 * Usage: bench_table [--refs N] [--runs N] [--keep]   (default 1M references, 3 runs; the
 * issue's table used 10M and 5: bench_table --refs 10M --runs 5). --keep leaves the trace
 * files in /tmp (their names are printed) for profiling one pattern, e.g. under callgrind.
 */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_ref.h"
#include "bench_util.h"
#include "vmsim/config.h"
#include "vmsim/replay.h"

#define NROWS   6
#define MAXRUNS 32

static const char *const row_names[NROWS] = {"vmsim replay, native",  "vmsim replay, din",
                                             "naive FA LRU, binary",  "naive FA LRU, din",
                                             "floor: parse din + DM", "floor: binary + DM"};

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* vms_replay_run of path on the default machine; the L1 dTLB's misses, or UINT64_MAX. */
static uint64_t vmsim_replay(const char *path, vms_trace_format fmt, uint64_t *refs)
{
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
    vms_replay_opts o = {0};
    if (st == VMS_OK)
        st = vms_replay_create(k, &o, &r, &err);
    if (st == VMS_OK)
        st = vms_trace_reader_open(path, fmt, NULL, &rd, &err);
    if (st == VMS_OK)
        st = vms_replay_run(r, rd, &err);
    uint64_t misses = UINT64_MAX;
    if (st == VMS_OK) {
        *refs = vms_replay_get_stats(r)->references;
        misses = 0;
        for (unsigned i = 0; i < vms_machine_ncores(m); i++)
            misses += vms_tlb_get_stats(vms_core_tlb(vms_machine_core(m, i), VMS_TLB_L1D))->misses;
    } else {
        fprintf(stderr, "bench_table: %s: %s\n", path, err.msg);
    }
    vms_trace_reader_close(rd);
    vms_replay_destroy(r);
    vms_kernel_destroy(k);
    vms_machine_destroy(m);
    return misses;
}

typedef struct files {
    char din[64], bin[64], vmt[64];
} files;

typedef struct native_out {
    vms_trace_writer *w;
    vms_err err;
} native_out;

static bool to_native(void *ud, uint64_t va, bool write)
{
    native_out *o = ud;
    vms_trace_event ev = {.type = VMS_TEV_ACCESS, .tid = 1};
    ev.access.va = va;
    ev.access.size = 8;
    ev.access.kind = write ? VMS_TACC_WRITE : VMS_TACC_READ;
    return vms_trace_writer_write(o->w, &ev, &o->err) == VMS_OK;
}

static bool write_files(unsigned pat, uint64_t n, files *f)
{
    snprintf(f->din, sizeof f->din, "/tmp/vmsim_bench_table_%u.din", pat);
    snprintf(f->bin, sizeof f->bin, "/tmp/vmsim_bench_table_%u.bin", pat);
    snprintf(f->vmt, sizeof f->vmt, "/tmp/vmsim_bench_table_%u.vmt", pat);
    native_out o = {0};
    if (vms_trace_writer_open(f->vmt, VMS_TRACE_NATIVE, NULL, NULL, &o.w, &o.err) != VMS_OK)
        return false;
    bool ok = bench_ref_write(pat, 1, n, f->din, f->bin, to_native, &o);
    return vms_trace_writer_close(o.w, &o.err) == VMS_OK && ok;
}

/* Run row `row` on pattern files f once: CPU seconds; *misses the TLB misses it saw. */
static double measure(unsigned row, const files *f, uint64_t n, uint64_t *misses)
{
    double t0 = cpu_now();
    uint64_t got = n;
    bench_ref_fa fa = {.n = 0};
    bench_ref_dm dm;
    memset(&dm, 0, sizeof dm);
    switch (row) {
    case 0:
        *misses = vmsim_replay(f->vmt, VMS_TRACE_NATIVE, &got);
        break;
    case 1:
        *misses = vmsim_replay(f->din, VMS_TRACE_DINERO, &got);
        break;
    case 2:
        got = bench_ref_read_bin(f->bin, bench_ref_fa_fn, &fa);
        *misses = fa.misses;
        break;
    case 3:
        got = bench_ref_read_din(f->din, bench_ref_fa_fn, &fa);
        *misses = fa.misses;
        break;
    case 4:
        got = bench_ref_read_din(f->din, bench_ref_dm_fn, &dm);
        *misses = dm.misses;
        break;
    default:
        got = bench_ref_read_bin(f->bin, bench_ref_dm_fn, &dm);
        *misses = dm.misses;
        break;
    }
    double t = cpu_now() - t0;
    if (got != n || *misses == UINT64_MAX) {
        fprintf(stderr, "bench_table: row %u read %" PRIu64 " of %" PRIu64 " references\n", row,
                got, n);
        return -1;
    }
    return t;
}

int main(int argc, char **argv)
{
    uint64_t n = 1000000;
    int runs = 3;
    bool keep = false;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--keep")) {
            keep = true;
            memmove(&argv[i], &argv[i + 1], (size_t)(argc - i) * sizeof *argv);
            argc--;
            break;
        }
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--refs")) {
            char *end;
            n = strtoull(argv[i + 1], &end, 0);
            n *= *end == 'M' ? 1000000 : *end == 'K' ? 1000 : 1;
        } else if (!strcmp(argv[i], "--runs")) {
            runs = atoi(argv[i + 1]);
        }
    }
    if (runs < 1 || runs > MAXRUNS || n == 0) {
        fprintf(stderr, "usage: bench_table [--refs N[K|M]] [--runs 1..%d] [--keep]\n", MAXRUNS);
        return 2;
    }
    files f[BENCH_REF_NPAT];
    for (unsigned p = 0; p < BENCH_REF_NPAT; p++) {
        if (!write_files(p, n, &f[p])) {
            fprintf(stderr, "bench_table: cannot write the %s files in /tmp\n",
                    bench_ref_pat_names[p]);
            return 1;
        }
    }
    static double t[NROWS][BENCH_REF_NPAT][MAXRUNS];
    uint64_t misses[NROWS][BENCH_REF_NPAT];
    for (int r = 0; r < runs; r++)
        for (unsigned p = 0; p < BENCH_REF_NPAT; p++)
            for (unsigned row = 0; row < NROWS; row++)
                if ((t[row][p][r] = measure(row, &f[p], n, &misses[row][p])) < 0)
                    return 1;
    double rate[NROWS][BENCH_REF_NPAT];
    printf("%" PRIu64 " references per pattern, M references per CPU-second, median of %d "
           "interleaved runs\n",
           n, runs);
    printf("%-24s", "");
    for (unsigned p = 0; p < BENCH_REF_NPAT; p++)
        printf(" %11s", bench_ref_pat_names[p]);
    printf("\n");
    for (unsigned row = 0; row < NROWS; row++) {
        printf("%-24s", row_names[row]);
        for (unsigned p = 0; p < BENCH_REF_NPAT; p++) {
            double med = bench_median(t[row][p], (size_t)runs);
            rate[row][p] = med > 0 ? (double)n / med / 1e6 : 0;
            printf(" %11.2f", rate[row][p]);
        }
        printf("\n");
    }
    printf("%-24s", "ratio native / naive bin");
    for (unsigned p = 0; p < BENCH_REF_NPAT; p++)
        printf(" %10.2fx", rate[0][p] / rate[2][p]);
    printf("\n%-24s", "ratio din / floor din");
    for (unsigned p = 0; p < BENCH_REF_NPAT; p++)
        printf(" %10.2fx", rate[1][p] / rate[4][p]);
    printf("\n%-24s", "misses: vmsim l1d");
    for (unsigned p = 0; p < BENCH_REF_NPAT; p++)
        printf(" %11" PRIu64, misses[0][p]);
    printf("\n%-24s", "misses: naive FA LRU");
    for (unsigned p = 0; p < BENCH_REF_NPAT; p++)
        printf(" %11" PRIu64, misses[2][p]);
    printf("\n%-24s", "misses: direct-mapped");
    for (unsigned p = 0; p < BENCH_REF_NPAT; p++)
        printf(" %11" PRIu64, misses[5][p]);
    printf("\n");
    for (unsigned p = 0; p < BENCH_REF_NPAT; p++) {
        if (keep) {
            printf("kept %s: %s %s %s\n", bench_ref_pat_names[p], f[p].vmt, f[p].din, f[p].bin);
            continue;
        }
        remove(f[p].din);
        remove(f[p].bin);
        remove(f[p].vmt);
    }
    return 0;
}
