/* test_util.c — the shared pieces: rng determinism and range, strbuf, status names, SHA-256,
 * the version, array growth (vmsi_grow_to), and the sparse index map (util/radix.c) against a naive
 * table of (index, value) pairs. */
#include "harness.h"
#include "util/radix.h"
#include "util/util.h"
#include "vmsim/hash.h"
#include "vmsim/version.h"
#include "vmsim/rng.h"
#include "vmsim/strbuf.h"

static void test_rng(void)
{
    vms_rng a, b;
    vms_rng_seed(&a, th_seed);
    vms_rng_seed(&b, th_seed);
    int same = 1;
    for (int i = 0; i < 1000; i++)
        same &= vms_rng_next(&a) == vms_rng_next(&b);
    CHECK(same);
    /* Known value: xoshiro256** seeded by splitmix64(0), first output. */
    vms_rng_seed(&a, 0);
    CHECK_EQ(vms_rng_next(&a), UINT64_C(0x99ec5f36cb75f2b4));
    unsigned hist[7] = {0};
    for (int i = 0; i < 70000; i++) {
        uint64_t v = vms_rng_below(&b, 7);
        CHECK(v < 7);
        hist[v]++;
    }
    for (int i = 0; i < 7; i++)
        CHECK(hist[i] > 9000 && hist[i] < 11000);
}

static void test_strbuf(void)
{
    vms_strbuf sb;
    vms_strbuf_init(&sb, NULL);
    CHECK_STR(vms_strbuf_str(&sb), "");
    for (int i = 0; i < 1000; i++)
        vms_strbuf_printf(&sb, "%d,", i);
    CHECK(sb.len > 3000);
    CHECK(strncmp(vms_strbuf_str(&sb), "0,1,2,", 6) == 0);
    vms_strbuf_free(&sb);

    th_failalloc fa;
    vms_strbuf_init(&sb, th_failalloc_init(&fa, 0));
    CHECK_EQ(vms_strbuf_printf(&sb, "x"), VMS_ERR_NOMEM);
    CHECK(sb.failed);
    vms_strbuf_free(&sb);
    CHECK_EQ(fa.live_bytes, 0);
}

/* The harness itself: CHECK_EQ compares values, not their uint64_t images, so -1 never
 * equals UINT64_MAX (and each side is evaluated once). Failures it must report are
 * counted here and taken back out of the totals. */
static void test_harness(void)
{
    unsigned long failed = th_failed, passed = th_passed;
    int minus_one = -1, calls = 0;
    fprintf(stderr, "util: the next 4 CHECK_EQ failures are expected\n");
    CHECK_EQ(minus_one, UINT64_MAX);
    CHECK_EQ(UINT32_MAX, minus_one);
    CHECK_EQ((int64_t)INT64_MIN, UINT64_C(1) << 63);
    CHECK_EQ((signed char)-1, (unsigned char)255);
    unsigned long expected_failures = th_failed - failed;
    th_failed = failed;
    th_passed = passed;
    CHECK_EQ(expected_failures, 4);
    CHECK_EQ(minus_one, -1);
    CHECK_EQ((int64_t)-5, -5);
    CHECK_EQ(UINT64_MAX, (uint64_t)-1);
    CHECK_EQ(++calls, 1); /* evaluated once */
    CHECK_EQ(calls, 1);
}

/* SHA-256: the FIPS 180-2 appendix vectors ("abc", the 448-bit message, a million 'a'
 * fed in odd-sized pieces so partial blocks are exercised), and the empty message. */
static void test_sha256(void)
{
    char hex[65];
    vms_sha256_hex("", 0, hex);
    CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    vms_sha256_hex("abc", 3, hex);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    vms_sha256_hex(m, strlen(m), hex);
    CHECK_STR(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    vms_sha256 s;
    uint8_t a[997], d[32];
    memset(a, 'a', sizeof a);
    vms_sha256_init(&s);
    for (size_t left = 1000000; left;) {
        size_t n = left < sizeof a ? left : 1 + (size_t)(th_seed + left) % sizeof a;
        vms_sha256_update(&s, a, n);
        left -= n;
    }
    vms_sha256_final(&s, d);
    CHECK_EQ(d[0], 0xcd);
    CHECK_EQ(d[1], 0xc7);
    CHECK_EQ(d[31], 0xd0);
    vms_err err = {0};
    CHECK_EQ(vms_sha256_file("/nonexistent/x", hex, &err), VMS_ERR_IO);
    CHECK(strstr(err.msg, "/nonexistent/x") != NULL);
}

/* The version is X.Y.Z. */
static void test_version(void)
{
    unsigned x, y, z;
    char rest;
    CHECK_EQ(sscanf(vms_version(), "%u.%u.%u%c", &x, &y, &z, &rest), 3);
    CHECK(vms_version_build() != NULL);
}

/* The naive model: a small table of the indices in use. */
#define NKEYS 200
typedef struct naive {
    uint64_t key[NKEYS], val[NKEYS];
} naive;

static uint64_t naive_get(const naive *m, uint64_t k)
{
    for (int i = 0; i < NKEYS; i++)
        if (m->key[i] == k)
            return m->val[i];
    return 0;
}

/* The first entry at or after k in the model. */
static bool naive_next(const naive *m, uint64_t *k, uint64_t *v)
{
    bool found = false;
    uint64_t best = 0;
    for (int i = 0; i < NKEYS; i++)
        if (m->val[i] && m->key[i] >= *k && (!found || m->key[i] < best)) {
            best = m->key[i];
            *v = m->val[i];
            found = true;
        }
    *k = best;
    return found;
}

static void test_radix(void)
{
    vms_rng rng;
    vms_rng_seed(&rng, th_seed);
    naive m;
    for (int i = 0; i < NKEYS; i++) { /* near 0, near page indices of a big file, any */
        uint64_t r = vms_rng_next(&rng);
        m.key[i] = i % 3 == 0 ? r % 300 : i % 3 == 1 ? (UINT64_C(1) << 40) + r % 5000 : r;
        m.val[i] = 0;
    }
    m.key[0] = 0;
    m.key[1] = UINT64_MAX;
    th_failalloc fa;
    const vms_allocator *a = th_failalloc_init(&fa, -1);
    vmsi_radix r = {0};
    unsigned bad = 0, nomem = 0;
    for (int op = 0; op < 20000; op++) {
        int i = (int)vms_rng_below(&rng, NKEYS);
        uint64_t v = vms_rng_below(&rng, 3) ? vms_rng_next(&rng) | 1 : 0;
        fa.budget = vms_rng_below(&rng, 8) == 0 ? (long)vms_rng_below(&rng, 3) : -1;
        vms_status st = vmsi_radix_set(&r, a, m.key[i], v);
        if (st == VMS_OK) {
            for (int j = 0; j < NKEYS; j++) /* duplicate keys: all copies change */
                if (m.key[j] == m.key[i])
                    m.val[j] = v;
        } else {
            nomem++;
            bad += st != VMS_ERR_NOMEM || !v || naive_get(&m, m.key[i]) != 0;
        }
        int j = (int)vms_rng_below(&rng, NKEYS);
        bad += vmsi_radix_get(&r, m.key[j]) != naive_get(&m, m.key[j]);
        uint64_t k1 = m.key[j] - vms_rng_below(&rng, 3), k2 = k1, v1 = 0, v2 = 0;
        bool f1 = vmsi_radix_next(&r, &k1, &v1), f2 = naive_next(&m, &k2, &v2);
        bad += f1 != f2 || (f1 && (k1 != k2 || v1 != v2));
    }
    fa.budget = -1;
    CHECK_EQ(bad, 0);
    CHECK(nomem > 0); /* failures were injected, and changed nothing */
    uint64_t n = 0, k = 0, v, last = 0;
    bool sorted = true;
    while (vmsi_radix_next(&r, &k, &v)) {
        sorted &= n == 0 || k > last;
        last = k;
        n++;
        if (k == UINT64_MAX)
            break;
        k++;
    }
    CHECK(sorted);
    CHECK_EQ(n, r.count);
    /* Emptying the map frees every node. */
    for (int i = 0; i < NKEYS; i++)
        vmsi_radix_set(&r, a, m.key[i], 0);
    CHECK_EQ(r.count, 0);
    CHECK(r.root == NULL);
    CHECK_EQ(fa.live_bytes, 0);
    vmsi_radix_set(&r, a, UINT64_C(1) << 50, 7);
    vmsi_radix_free(&r, a);
    CHECK_EQ(fa.live_bytes, 0);
}

/* vmsi_grow_to: the capacities a doubling loop gives, untouched arrays on failure. */
static void test_grow(void)
{
    th_failalloc fa;
    const vms_allocator *a = th_failalloc_init(&fa, -1);
    uint32_t *arr = NULL;
    size_t cap = 0;
    CHECK(vmsi_grow_to(a, (void **)&arr, &cap, 1, sizeof *arr, 4));
    CHECK_EQ(cap, 4); /* from `first` */
    arr[3] = 7;
    CHECK(vmsi_grow_to(a, (void **)&arr, &cap, 4, sizeof *arr, 4));
    CHECK_EQ(cap, 4); /* room already */
    CHECK(vmsi_grow_to(a, (void **)&arr, &cap, 5, sizeof *arr, 4));
    CHECK_EQ(cap, 8); /* doubled */
    CHECK(vmsi_grow_to(a, (void **)&arr, &cap, 33, sizeof *arr, 4));
    CHECK_EQ(cap, 64); /* doubled until it holds 33 */
    CHECK_EQ(arr[3], 7);
    fa.budget = 0; /* the next allocation fails: nothing changes */
    uint32_t *before = arr;
    CHECK(!vmsi_grow_to(a, (void **)&arr, &cap, 65, sizeof *arr, 4));
    CHECK(arr == before);
    CHECK_EQ(cap, 64);
    CHECK(!vmsi_grow_to(a, (void **)&arr, &cap, SIZE_MAX, sizeof *arr, 4)); /* overflow */
    CHECK_EQ(cap, 64);
    fa.budget = -1;
    size_t cap16 = 0;
    uint8_t *b = NULL;
    CHECK(vmsi_grow(a, (void **)&b, &cap16, 16, 1)); /* element 16: 17 elements */
    CHECK_EQ(cap16, 32);
    vmsi_free(a, b, cap16);
    vmsi_free(a, arr, cap * sizeof *arr);
    CHECK_EQ(fa.live_bytes, 0);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "util");
    test_rng();
    test_strbuf();
    test_harness();
    test_sha256();
    test_version();
    test_radix();
    test_grow();
    CHECK_STR(vms_status_str(VMS_ERR_NOMEM), "out of memory");
    CHECK_STR(vms_pgsize_name(VMS_PG_2M), "2M");
    return th_finish();
}
