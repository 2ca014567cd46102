/*
 * test_naive.c — the naive reference consumer of the benchmarks (bench/bench_ref.h: a
 * 64-entry fully associative LRU array of page numbers, in place of Dinero IV) against
 * vmsim: on every generator pattern (seq, rand, zipf, zipf+runs; 30% writes), vmsim's
 * 64-entry fully associative LRU L1 dTLB with no L2 misses exactly as often as the
 * naive consumer plus once per page fault (each fault adds one retry lookup, which
 * misses: the fault path dropped the entry). Not timed: bench_table times them.
 *
 * The same run carries a one-pass curve (curve.h) on that L1 dTLB: its point at every
 * size N of SIZES must equal a separate naive fully associative LRU array of N entries
 * (plus the faults' retries), and at 64 the real TLB's misses. The replay goes through
 * the batch path and the TLB's repeat memo, so a curve that mistakes a memo hit for a
 * hit at depth 1 (a 4-slot memo's hit may be to any recent hit's way) fails here.
 *
 * Also the readers the floors use: din text and 9-byte records parse back to the
 * generator's stream.
 */
#define _POSIX_C_SOURCE 200809L /* getpid */
#include <inttypes.h>
#include <unistd.h>

#include "../bench/bench_ref.h"
#include "harness.h"
#include "vmsim/config.h"
#include "vmsim/curve.h"
#include "vmsim/replay.h"

/* The sizes the naive arrays model beside the 64-entry one. */
static const unsigned SIZES[] = {1, 2, 3, 4, 5, 7, 8, 12, 16, 24, 32, 48, 63, 64};
#define NSIZES (sizeof SIZES / sizeof SIZES[0])

/* A naive fully associative LRU array of `cap` page numbers (bench_ref_fa of any size). */
typedef struct naive_lru {
    uint64_t page[BENCH_REF_FA_WAYS];
    unsigned n, cap;
    uint64_t misses;
} naive_lru;

static void naive_access(naive_lru *t, uint64_t va)
{
    uint64_t p = va >> 12;
    unsigned i = 0;
    while (i < t->n && t->page[i] != p)
        i++;
    if (i == t->n) {
        t->misses++;
        if (t->n < t->cap)
            t->n++;
        i = t->n - 1;
    }
    memmove(&t->page[1], &t->page[0], i * sizeof t->page[0]);
    t->page[0] = p;
}

typedef struct fx {
    vms_config c;
    vms_machine *m;
    vms_kernel *k;
    vms_replay *r;
    bench_ref_fa naive;
    naive_lru sized[NSIZES];
    uint64_t n, sum;
    vms_err err;
    bool bad;
} fx;

static bool on_ref(void *ud, uint64_t va, bool write)
{
    fx *f = ud;
    vms_trace_event e = {.type = VMS_TEV_ACCESS, .tid = 1};
    e.access.va = va;
    e.access.size = 8;
    e.access.kind = write ? VMS_TACC_WRITE : VMS_TACC_READ;
    bench_ref_fa_access(&f->naive, va);
    for (unsigned i = 0; i < NSIZES; i++)
        naive_access(&f->sized[i], va);
    f->n++;
    f->sum += va;
    if (vms_replay_event(f->r, &e, NULL, &f->err) != VMS_OK)
        f->bad = true;
    return !f->bad;
}

static void sum_fn(void *t, uint64_t va)
{
    *(uint64_t *)t += va;
}

static void test_pattern(unsigned pat, uint64_t n)
{
    fx f;
    memset(&f, 0, sizeof f);
    vms_err err = {0};
    vms_replay_opts o = {.layout = VMS_REPLAY_LAYOUT_AUTO};
    REQUIRE_VOID(vms_config_init(&f.c, "skylake", &err) == VMS_OK);
    REQUIRE_VOID(vms_config_set_arg(&f.c, "tlb.l1d=4K:1x64:lru", &err) == VMS_OK);
    REQUIRE_VOID(vms_config_set_arg(&f.c, "tlb.l2=none", &err) == VMS_OK);
    vms_kernel_config kc = vms_config_kernel(&f.c);
    REQUIRE_VOID(vms_machine_create(NULL, &f.c.machine, &f.m, &err) == VMS_OK);
    REQUIRE_VOID(vms_kernel_create(f.m, &kc, &f.k, &err) == VMS_OK);
    REQUIRE_VOID(vms_replay_create(f.k, &o, &f.r, &err) == VMS_OK);
    for (unsigned i = 0; i < NSIZES; i++)
        f.sized[i].cap = SIZES[i];
    vms_curve *cv;
    REQUIRE_VOID(vms_curve_create(NULL, 1, 64, 1.0, 1, &cv, &err) == VMS_OK);
    REQUIRE_VOID(vms_core_curve_attach(vms_machine_core(f.m, 0), "tlb.l1d", cv, &err) == VMS_OK);
    vms_curve_set_spurious(cv, &vms_kernel_get_stats(f.k)->spurious);
    char din[64], bin[64];
    snprintf(din, sizeof din, "/tmp/vmsim_test_naive_%d.din", (int)getpid());
    snprintf(bin, sizeof bin, "/tmp/vmsim_test_naive_%d.bin", (int)getpid());
    CHECK(bench_ref_write(pat, th_seed + pat, n, din, bin, on_ref, &f));
    CHECK(!f.bad);
    CHECK(vms_replay_flush(f.r, &err) == VMS_OK);
    vms_tlb *l1d = vms_core_tlb(vms_machine_core(f.m, 0), VMS_TLB_L1D);
    uint64_t misses = vms_tlb_get_stats(l1d)->misses, faults = vms_kernel_get_stats(f.k)->pgfault;
    printf("naive: %-9s %" PRIu64 " refs: naive %" PRIu64 " misses, vmsim %" PRIu64
           " misses - %" PRIu64 " faults\n",
           bench_ref_pat_names[pat], n, f.naive.misses, misses, faults);
    CHECK_EQ(vms_replay_get_stats(f.r)->references, n);
    CHECK_EQ(misses - faults, f.naive.misses);
    CHECK(f.naive.misses > 0 && f.naive.misses < n);
    /* The curve: exact at the configured size, and each size equal to its naive array. */
    CHECK_EQ(vms_curve_misses(cv, 64), misses);
    unsigned bad = 0;
    for (unsigned i = 0; i < NSIZES; i++) {
        uint64_t got = vms_curve_misses(cv, SIZES[i]) - faults, want = f.sized[i].misses;
        if (got != want && bad++ < 4)
            printf("  %s: %u entries: curve %" PRIu64 " - %" PRIu64 " faults, naive %" PRIu64 "\n",
                   bench_ref_pat_names[pat], SIZES[i], got + faults, faults, want);
    }
    CHECK_EQ(bad, 0);
    CHECK_EQ(f.sized[NSIZES - 1].misses, f.naive.misses);
    vms_core_curve_detach(vms_machine_core(f.m, 0), cv);
    vms_curve_destroy(cv);
    /* The floors' readers give back the same stream. */
    uint64_t sd = 0, sb = 0;
    CHECK_EQ(bench_ref_read_din(din, sum_fn, &sd), n);
    CHECK_EQ(bench_ref_read_bin(bin, sum_fn, &sb), n);
    CHECK_EQ(sd, f.sum);
    CHECK_EQ(sb, f.sum);
    remove(din);
    remove(bin);
    vms_replay_destroy(f.r);
    vms_kernel_destroy(f.k);
    vms_machine_destroy(f.m);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "naive");
    for (unsigned p = 0; p < BENCH_REF_NPAT; p++)
        test_pattern(p, p == 1 ? 30000 : 200000);
    return th_finish();
}
