/* test_util.c — the shared pieces: rng determinism and range, strbuf, status names. */
#include "harness.h"
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

int main(int argc, char **argv)
{
    th_init(argc, argv, "util");
    test_rng();
    test_strbuf();
    test_harness();
    CHECK_STR(vms_status_str(VMS_ERR_NOMEM), "out of memory");
    CHECK_STR(vms_pgsize_name(VMS_PG_2M), "2M");
    return th_finish();
}
