/*
 * bench_ref.h — issue 11's table on our own code (bench_table.c, tests/test_naive.c):
 * the synthetic reference generators, the trace files they are written to, a naive fully
 * associative LRU "TLB" (the reference consumer, in place of Dinero IV, which Debian does
 * not package) and the parse floors (read + parse + a direct-mapped 64-entry TLB).
 *
 * Patterns (30% writes, 8-byte aligned 8-byte references, base BENCH_REF_BASE):
 *   seq        a sequential scan, 8-byte stride (wrapping at 1 GiB)
 *   rand       uniform over 1 GiB
 *   zipf       Zipf(0.99) over the 1 GiB's 262,144 pages (ids scattered), a uniform
 *              offset in the page
 *   zipf+runs  a Zipf page, then 16 more references inside it (runs of 17)
 *
 * Files: din text ("0 ADDR" / "1 ADDR", hex: Dinero's din format), 9-byte binary records
 * (the address little-endian, then 0 read / 1 write), and vmsim's native trace.
 */
#ifndef VMSIM_BENCH_REF_H
#define VMSIM_BENCH_REF_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmsim/rng.h"

#define BENCH_REF_BASE    UINT64_C(0x100000000) /* 4 GiB: any user address works (auto layout) */
#define BENCH_REF_SPAN    (UINT64_C(1) << 30)
#define BENCH_REF_PAGES   (BENCH_REF_SPAN >> 12)
#define BENCH_REF_NPAT    4
#define BENCH_REF_FA_WAYS 64

static const char *const bench_ref_pat_names[BENCH_REF_NPAT] = {"seq", "rand", "zipf", "zipf+runs"};

typedef struct bench_ref_gen {
    vms_rng g;
    unsigned pat;
    uint64_t i, page;
    unsigned run_left;
    double *cdf, sum; /* zipf: cumulative weights over the pages */
} bench_ref_gen;

/* Start pattern pat with seed; false on NOMEM. */
static inline bool bench_ref_gen_init(bench_ref_gen *s, unsigned pat, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    s->pat = pat;
    vms_rng_seed(&s->g, seed);
    if (pat < 2)
        return true;
    s->cdf = malloc(BENCH_REF_PAGES * sizeof *s->cdf);
    if (!s->cdf)
        return false;
    for (size_t k = 0; k < BENCH_REF_PAGES; k++)
        s->cdf[k] = (s->sum += 1.0 / pow((double)(k + 1), 0.99));
    return true;
}

static inline void bench_ref_gen_fini(bench_ref_gen *s)
{
    free(s->cdf);
    s->cdf = NULL;
}

/* A Zipf(0.99) page, its id scattered over the 1 GiB (popularity not ordered by id). */
static inline uint64_t bench_ref_zipf_page(bench_ref_gen *s)
{
    double u = (double)(vms_rng_next(&s->g) >> 11) * 0x1p-53 * s->sum;
    size_t lo = 0, hi = BENCH_REF_PAGES - 1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (lo * UINT64_C(2654435761)) % BENCH_REF_PAGES;
}

/* The next reference: its address and whether it writes. */
static inline void bench_ref_gen_next(bench_ref_gen *s, uint64_t *va, bool *write)
{
    uint64_t off;
    switch (s->pat) {
    case 0:
        off = (s->i * 8) & (BENCH_REF_SPAN - 1);
        break;
    case 1:
        off = vms_rng_below(&s->g, BENCH_REF_SPAN / 8) * 8;
        break;
    case 2:
        off = bench_ref_zipf_page(s) << 12 | vms_rng_below(&s->g, 512) * 8;
        break;
    default:
        if (s->run_left == 0) {
            s->page = bench_ref_zipf_page(s);
            s->run_left = 17;
        }
        s->run_left--;
        off = s->page << 12 | vms_rng_below(&s->g, 512) * 8;
        break;
    }
    s->i++;
    *va = BENCH_REF_BASE + off;
    *write = vms_rng_below(&s->g, 10) < 3;
}

/* ---- consumers ---- */

/* The naive reference: a fully associative LRU array of page numbers, most recent first,
 * searched and shifted linearly (as a textbook, or Dinero's fully associative stack). */
typedef struct bench_ref_fa {
    uint64_t page[BENCH_REF_FA_WAYS];
    unsigned n;
    uint64_t misses;
} bench_ref_fa;

static inline void bench_ref_fa_access(bench_ref_fa *t, uint64_t va)
{
    uint64_t p = va >> 12;
    unsigned i = 0;
    while (i < t->n && t->page[i] != p)
        i++;
    if (i == t->n) {
        t->misses++;
        if (t->n < BENCH_REF_FA_WAYS)
            t->n++;
        i = t->n - 1;
    }
    memmove(&t->page[1], &t->page[0], i * sizeof t->page[0]);
    t->page[0] = p;
}

/* The floor's TLB: 64 direct-mapped entries by page number. */
typedef struct bench_ref_dm {
    uint64_t tag[64];
    uint64_t misses;
} bench_ref_dm;

static inline void bench_ref_dm_access(bench_ref_dm *t, uint64_t va)
{
    uint64_t p = va >> 12, *e = &t->tag[p & 63];
    if (*e != p + 1) {
        *e = p + 1;
        t->misses++;
    }
}

/* ---- files ---- */

/* Write n references of pattern pat (seed) as din text, 9-byte binary records, and (when
 * write_event is given) through write_event. Returns false on failure. */
static inline bool bench_ref_write(unsigned pat, uint64_t seed, uint64_t n, const char *din,
                                   const char *bin,
                                   bool (*write_event)(void *ud, uint64_t va, bool write), void *ud)
{
    bench_ref_gen s;
    if (!bench_ref_gen_init(&s, pat, seed))
        return false;
    FILE *fd = fopen(din, "w"), *fb = fopen(bin, "wb");
    bool ok = fd && fb;
    for (uint64_t i = 0; ok && i < n; i++) {
        uint64_t va;
        bool w;
        bench_ref_gen_next(&s, &va, &w);
        unsigned char rec[9];
        for (int b = 0; b < 8; b++)
            rec[b] = (unsigned char)(va >> (8 * b));
        rec[8] = w;
        ok = fprintf(fd, "%d %llx\n", w ? 1 : 0, (unsigned long long)va) > 0 &&
             fwrite(rec, 9, 1, fb) == 1 && (!write_event || write_event(ud, va, w));
    }
    if (fd && fclose(fd) != 0)
        ok = false;
    if (fb && fclose(fb) != 0)
        ok = false;
    bench_ref_gen_fini(&s);
    return ok;
}

/* The value of hex digit c, or -1. */
static inline int bench_ref_hex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Read din text from path in 1 MiB blocks, parse "LABEL ADDR" lines and give each address
 * to fn (the read + parse floor). Returns the references parsed, or UINT64_MAX on error. */
static inline uint64_t bench_ref_read_din(const char *path, void (*fn)(void *t, uint64_t va),
                                          void *t)
{
    enum { CAP = 1 << 20 };
    static char buf[CAP];
    FILE *f = fopen(path, "rb");
    if (!f)
        return UINT64_MAX;
    size_t have = 0;
    uint64_t n = 0;
    for (;;) {
        size_t got = fread(buf + have, 1, CAP - have, f), len = have + got, start = 0;
        bool eof = got == 0;
        while (start < len) {
            const char *nl = memchr(buf + start, '\n', len - start);
            if (!nl && !eof)
                break; /* a partial line: the rest comes with the next block */
            size_t end = nl ? (size_t)(nl - buf) : len, j = start;
            while (j < end && buf[j] != ' ')
                j++;
            uint64_t va = 0;
            int h;
            for (j++; j < end && (h = bench_ref_hex((unsigned char)buf[j])) >= 0; j++)
                va = va << 4 | (uint64_t)h;
            if (end > start) {
                fn(t, va);
                n++;
            }
            start = end + 1;
        }
        have = start < len ? len - start : 0;
        memmove(buf, buf + len - have, have);
        if (eof)
            break;
    }
    fclose(f);
    return n;
}

/* Read 9-byte records from path in blocks and give each address to fn. */
static inline uint64_t bench_ref_read_bin(const char *path, void (*fn)(void *t, uint64_t va),
                                          void *t)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return UINT64_MAX;
    static unsigned char buf[9 * 65536];
    size_t got;
    uint64_t n = 0;
    while ((got = fread(buf, 9, 65536, f)) > 0) {
        for (size_t r = 0; r < got; r++) {
            const unsigned char *p = buf + 9 * r;
            uint64_t va = 0;
            memcpy(&va, p, 8); /* little-endian hosts (x86-64, AArch64) */
            fn(t, va);
        }
        n += got;
    }
    fclose(f);
    return n;
}

static inline void bench_ref_fa_fn(void *t, uint64_t va)
{
    bench_ref_fa_access(t, va);
}

static inline void bench_ref_dm_fn(void *t, uint64_t va)
{
    bench_ref_dm_access(t, va);
}

#endif
