/*
 * harness.h — vmsim's small test harness (header-only).
 *
 * Each test binary: calls th_init(argc, argv, "suite") first, which prints the seed
 * ("suite: seed N"; set it with --seed N or VMS_TEST_SEED=N to replay a failure), runs
 * its checks, and returns th_finish(), which prints "suite: N passed, N failed" and
 * returns the exit status. CHECK* macros count one check each and print the file, line
 * and values of every failure. th_failing_allocator() gives an allocator that fails the
 * Nth allocation on demand, for allocation-failure tests (SQLite/Lua style).
 */
#ifndef VMSIM_TEST_HARNESS_H
#define VMSIM_TEST_HARNESS_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vmsim/common.h"

static unsigned long th_passed, th_failed;
static uint64_t th_seed;
static time_t th_start; /* when th_init ran: VMS_SOAK_SECONDS counts from it */
static const char *th_suite = "test";

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (cond) {                                                                                \
            th_passed++;                                                                           \
        } else {                                                                                   \
            th_failed++;                                                                           \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

/* Whether x's type (after promotion) is a signed integer type; x is not evaluated. */
#define TH_IS_SIGNED(x) _Generic((x) + 0, int : 1, long : 1, long long : 1, default : 0)

/* v < 0, out of line so that the compiler does not warn for unsigned operands. */
static inline int th_negative(int64_t v)
{
    return v < 0;
}

/* Fails to compile for a floating-point operand: CHECK_EQ compares integers exactly. */
#define TH_NOT_FLOAT(x)                                                                            \
    ((void)sizeof(                                                                                 \
        char[1 - 2 * _Generic((x) + 0, float : 1, double : 1, long double : 1, default : 0)]))

/* The body of CHECK_EQ, out of line: a and b as uint64_t with whether each was negative. */
static inline void th_check_eq(uint64_t a, int an, uint64_t b, int bn, const char *file, int line,
                               const char *as, const char *bs)
{
    if (a == b && an == bn) {
        th_passed++;
        return;
    }
    th_failed++;
    fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (%s0x%" PRIx64 " != %s0x%" PRIx64 ")\n", file,
            line, as, bs, an ? "-" : "", an ? (uint64_t)0 - a : a, bn ? "-" : "",
            bn ? (uint64_t)0 - b : b);
}

/*
 * CHECK_EQ(a, b): integer (or pointer) equality by value, whatever the two types: each
 * side is evaluated once, and a negative value never equals a large unsigned one (casting
 * both to uint64_t made -1 == UINT64_MAX pass).
 */
#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        TH_NOT_FLOAT(a);                                                                           \
        TH_NOT_FLOAT(b);                                                                           \
        __typeof__((a) + 0) th_av_ = (a);                                                          \
        __typeof__((b) + 0) th_bv_ = (b);                                                          \
        th_check_eq((uint64_t)th_av_, TH_IS_SIGNED(a) && th_negative((int64_t)th_av_),             \
                    (uint64_t)th_bv_, TH_IS_SIGNED(b) && th_negative((int64_t)th_bv_), __FILE__,   \
                    __LINE__, #a, #b);                                                             \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *th_a_ = (a), *th_b_ = (b);                                                     \
        if (th_a_ && th_b_ && strcmp(th_a_, th_b_) == 0) {                                         \
            th_passed++;                                                                           \
        } else {                                                                                   \
            th_failed++;                                                                           \
            fprintf(stderr,                                                                        \
                    "%s:%d: CHECK_STR failed: %s == %s\n  got:      \"%s\"\n"                      \
                    "  expected: \"%s\"\n",                                                        \
                    __FILE__, __LINE__, #a, #b, th_a_ ? th_a_ : "(null)",                          \
                    th_b_ ? th_b_ : "(null)");                                                     \
        }                                                                                          \
    } while (0)

/* Checks that must hold for the rest of a test to make sense: stop the binary if not. */
#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        int th_ok_ = (cond) ? 1 : 0; /* evaluate once: cond may have side effects */               \
        if (th_ok_) {                                                                              \
            th_passed++;                                                                           \
        } else {                                                                                   \
            th_failed++;                                                                           \
            fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #cond);             \
            fprintf(stderr, "%s: stopping after a failed REQUIRE (seed %" PRIu64 ")\n", th_suite,  \
                    th_seed);                                                                      \
            return th_finish();                                                                    \
        }                                                                                          \
    } while (0)

/* REQUIRE for void test functions: count the check and leave the function if it fails.
 * Evaluates cond once (it often creates something). */
#define REQUIRE_VOID(cond)                                                                         \
    do {                                                                                           \
        if (cond) {                                                                                \
            th_passed++;                                                                           \
        } else {                                                                                   \
            th_failed++;                                                                           \
            fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #cond);             \
            return;                                                                                \
        }                                                                                          \
    } while (0)

static inline int th_finish(void)
{
    printf("%s: %lu passed, %lu failed\n", th_suite, th_passed, th_failed);
    if (th_failed)
        printf("%s: replay with --seed %" PRIu64 "\n", th_suite, th_seed);
    return th_failed ? 1 : 0;
}

/* Parse --seed N (or VMS_TEST_SEED); the default seed is fixed so runs are repeatable. */
static inline void th_init(int argc, char **argv, const char *suite)
{
    th_suite = suite;
    th_seed = 20261122;
    const char *env = getenv("VMS_TEST_SEED");
    if (env)
        th_seed = strtoull(env, NULL, 0);
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--seed") == 0)
            th_seed = strtoull(argv[i + 1], NULL, 0);
    printf("%s: seed %" PRIu64 "\n", suite, th_seed);
    th_start = time(NULL);
}

/*
 * Soak knobs of the differential tests: whether round `round` (0, 1, …) should run.
 * Default: `dflt` rounds; $env (e.g. VMS_MMU_SOAK=N) asks for N; VMS_SOAK_SECONDS=T
 * (`make soak`) keeps going, past the default, until T seconds after th_init.
 */
static inline int th_soak_more(const char *env, unsigned long dflt, unsigned long round)
{
    const char *secs = getenv("VMS_SOAK_SECONDS");
    if (secs)
        return round < dflt || (double)(time(NULL) - th_start) < strtod(secs, NULL);
    const char *n = getenv(env);
    return round < (n ? strtoul(n, NULL, 0) : dflt);
}

/*
 * Run fn once per soak round (th_soak_more), round r with th_seed = the base seed + r, and
 * name the seed of a round that failed (replay it with --seed). th_seed is the base again
 * afterwards.
 */
static inline void th_soak(const char *env, void (*fn)(void))
{
    uint64_t base = th_seed;
    unsigned long r;
    for (r = 0; th_soak_more(env, 1, r); r++) {
        unsigned long before = th_failed;
        th_seed = base + r;
        fn();
        if (th_failed != before)
            printf("%s: soak round %lu failed: replay with --seed %" PRIu64 "\n", th_suite, r,
                   th_seed);
    }
    th_seed = base;
    if (r > 1)
        printf("%s: %s: %lu rounds\n", th_suite, env, r);
}

/*
 * The committed file `rel` (e.g. "examples/traces/small.vmt") into buf: under
 * $VMS_SOURCE_DIR when set (ctest sets it), else the first of the directories above the
 * test binary's own (argv0: build/asan/test_x -> build/asan/.., ../.., ../../..) and "."
 * that holds it, so that every test binary runs by itself from anywhere. Returns buf.
 */
static inline const char *th_source_path(const char *argv0, const char *rel, char *buf, size_t len)
{
    const char *env = getenv("VMS_SOURCE_DIR");
    if (env) {
        snprintf(buf, len, "%s/%s", env, rel);
        return buf;
    }
    const char *slash = argv0 ? strrchr(argv0, '/') : NULL;
    int dirlen = slash ? (int)(slash - argv0) : 1;
    const char *dir = slash ? argv0 : ".";
    static const char *const up[] = {"/..", "/../..", "/../../..", ""};
    for (int i = 0; i < 4; i++) {
        snprintf(buf, len, "%.*s%s/%s", dirlen, dir, up[i], rel);
        FILE *f = fopen(buf, "r");
        if (f) {
            fclose(f);
            return buf;
        }
    }
    snprintf(buf, len, "%s", rel); /* the current directory: the error names it */
    return buf;
}

/* The directory of the test binary (its build directory) into buf: $VMS_BINARY_DIR when
 * set, else argv0's directory. */
static inline const char *th_binary_dir(const char *argv0, char *buf, size_t len)
{
    const char *env = getenv("VMS_BINARY_DIR");
    const char *slash = argv0 ? strrchr(argv0, '/') : NULL;
    if (env)
        snprintf(buf, len, "%s", env);
    else if (slash)
        snprintf(buf, len, "%.*s", (int)(slash - argv0), argv0);
    else
        snprintf(buf, len, ".");
    return buf;
}

/* An allocator that fails every allocation once `budget` successful ones were made
 * (budget < 0: never fails). Counts live bytes to detect leaks. */
typedef struct th_failalloc {
    long budget;
    unsigned long allocs, frees, failures;
    long long live_bytes;
    vms_allocator a;
} th_failalloc;

static inline void *th_failalloc_realloc(void *ud, void *ptr, size_t old_size, size_t new_size)
{
    th_failalloc *fa = ud;
    if (new_size == 0) {
        if (ptr) {
            fa->frees++;
            fa->live_bytes -= (long long)old_size;
        }
        free(ptr);
        return NULL;
    }
    if (fa->budget == 0) {
        fa->failures++;
        return NULL;
    }
    if (fa->budget > 0)
        fa->budget--;
    void *p = realloc(ptr, new_size);
    if (p) {
        if (!ptr)
            fa->allocs++;
        fa->live_bytes += (long long)new_size - (long long)(ptr ? old_size : 0);
    }
    return p;
}

static inline const vms_allocator *th_failalloc_init(th_failalloc *fa, long budget)
{
    memset(fa, 0, sizeof *fa);
    fa->budget = budget;
    fa->a.realloc = th_failalloc_realloc;
    fa->a.ud = fa;
    return &fa->a;
}

#endif
