/*
 * bench_trace.c — trace parsing speed: events per second through vms_trace_read for each
 * format, reading a file the benchmark writes to /tmp first (the page cache holds it, so
 * this is parse + decompress speed, not disk speed).
 *
 * The workload is a synthetic program-like stream (--events N, default 4M): sequential
 * instruction fetches with short jumps, stack reads/writes near a moving stack pointer,
 * heap references within 1 MiB. Formats: native (zstd), native raw payload, lackey text,
 * dinero text, ChampSim plain and gzip. ChampSim groups references by instruction, so its
 * file holds the same instructions with at most 4 reads and 2 writes each.
 *
 * Each format is read --runs times (default 5); the median rate and the file's size in
 * bytes per event are printed. Usage: bench_trace [--runs N] [--events N]
 */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "bench_gen.h"
#include "bench_util.h"
#include "vmsim/rng.h"
#include "vmsim/trace.h"

/* Write n events to path in format fmt (native, lackey, dinero). */
static int write_trace(const char *path, vms_trace_format fmt, bool raw, uint64_t n)
{
    vms_trace_writer *w;
    vms_err err;
    vms_trace_writer_opts o = {.raw = raw};
    if (vms_trace_writer_open(path, fmt, &o, NULL, &w, &err) != VMS_OK)
        goto fail;
    bench_gen s = {.ip = 0, .sp = 0x8000, .heap_mask = 0xffff8}; /* a 1 MiB heap */
    vms_rng_seed(&s.g, 1);
    vms_trace_event ev;
    for (uint64_t i = 0; i < n; i++) {
        bench_gen_next(&s, &ev);
        if (vms_trace_writer_write(w, &ev, &err) != VMS_OK)
            break;
    }
    if (vms_trace_writer_close(w, &err) == VMS_OK)
        return 0;
fail:
    fprintf(stderr, "bench_trace: %s\n", err.msg);
    return 1;
}

/* Store v little-endian at p. */
static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Write the same instruction stream as ChampSim records (plain, or gzip when gz). */
static int write_champsim(const char *path, bool gz, uint64_t n)
{
    gzFile zf = gz ? gzopen(path, "wb1") : NULL;
    FILE *f = gz ? NULL : fopen(path, "wb");
    if (!zf && !f)
        return 1;
    bench_gen s = {.ip = 0, .sp = 0x8000, .heap_mask = 0xffff8}; /* a 1 MiB heap */
    vms_rng_seed(&s.g, 1);
    vms_trace_event ev;
    unsigned char rec[64];
    unsigned nsrc = 0, ndst = 0;
    bool open_rec = false;
    for (uint64_t i = 0; i <= n; i++) {
        if (i < n)
            bench_gen_next(&s, &ev);
        if (open_rec && (i == n || ev.access.kind == VMS_TACC_EXEC)) {
            if (gz ? gzwrite(zf, rec, 64) != 64 : fwrite(rec, 64, 1, f) != 1)
                return 1;
            open_rec = false;
        }
        if (i == n)
            break;
        if (ev.access.kind == VMS_TACC_EXEC) {
            memset(rec, 0, sizeof rec);
            put64(rec, ev.access.va);
            nsrc = ndst = 0;
            open_rec = true;
        } else if (ev.access.kind == VMS_TACC_READ && nsrc < 4) {
            put64(rec + 32 + 8 * nsrc++, ev.access.va);
        } else if (ev.access.kind == VMS_TACC_WRITE && ndst < 2) {
            put64(rec + 16 + 8 * ndst++, ev.access.va);
        }
    }
    return gz ? gzclose(zf) != Z_OK : fclose(f) != 0;
}

static volatile uint64_t sink; /* keeps the read loop from being optimised away */

/* Read path to its end; returns events per second (0 on failure), *count the events. */
static double parse_rate(const char *path, vms_trace_format fmt, uint64_t *count)
{
    vms_trace_reader *r;
    vms_err err;
    double t0 = bench_now();
    if (vms_trace_reader_open(path, fmt, NULL, &r, &err) != VMS_OK) {
        fprintf(stderr, "bench_trace: %s\n", err.msg);
        return 0;
    }
    vms_trace_event ev;
    uint64_t n = 0, sum = 0;
    while (vms_trace_read(r, &ev, &err)) {
        sum += ev.access.va;
        n++;
    }
    double dt = bench_now() - t0;
    vms_trace_reader_close(r);
    if (err.status != VMS_OK) {
        fprintf(stderr, "bench_trace: %s\n", err.msg);
        return 0;
    }
    sink = sum;
    *count = n;
    return (double)n / dt;
}

static long file_size(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

int main(int argc, char **argv)
{
    int runs = 5;
    uint64_t events = 4000000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--runs"))
            runs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--events"))
            events = strtoull(argv[i + 1], NULL, 0);
    }
    if (runs < 1 || runs > 101 || events < 1) {
        fprintf(stderr, "usage: bench_trace [--runs 1..101] [--events N]\n");
        return 2;
    }
    static const struct {
        const char *label, *path;
        vms_trace_format fmt;
    } cases[] = {
        {"native (zstd)", "/tmp/bench_trace.vmt", VMS_TRACE_NATIVE},
        {"native (raw)", "/tmp/bench_trace_raw.vmt", VMS_TRACE_NATIVE},
        {"lackey", "/tmp/bench_trace.lackey", VMS_TRACE_LACKEY},
        {"dinero", "/tmp/bench_trace.din", VMS_TRACE_DINERO},
        {"champsim", "/tmp/bench_trace.champsim", VMS_TRACE_CHAMPSIM},
        {"champsim (gzip)", "/tmp/bench_trace.champsim.gz", VMS_TRACE_CHAMPSIM},
    };
    if (write_trace(cases[0].path, VMS_TRACE_NATIVE, false, events) ||
        write_trace(cases[1].path, VMS_TRACE_NATIVE, true, events) ||
        write_trace(cases[2].path, VMS_TRACE_LACKEY, false, events) ||
        write_trace(cases[3].path, VMS_TRACE_DINERO, false, events) ||
        write_champsim(cases[4].path, false, events) || write_champsim(cases[5].path, true, events))
        return 1;
    printf("%-16s %12s %14s %10s\n", "format", "events", "Mevents/s", "bytes/ev");
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        double rate[101];
        uint64_t n = 0;
        for (int i = 0; i < runs; i++)
            rate[i] = parse_rate(cases[c].path, cases[c].fmt, &n);
        qsort(rate, (size_t)runs, sizeof rate[0], bench_cmp_double);
        printf("%-16s %12llu %14.1f %10.2f\n", cases[c].label, (unsigned long long)n,
               rate[runs / 2] / 1e6, (double)file_size(cases[c].path) / (double)(n ? n : 1));
        remove(cases[c].path);
    }
    return 0;
}
