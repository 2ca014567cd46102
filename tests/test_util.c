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

int main(int argc, char **argv)
{
    th_init(argc, argv, "util");
    test_rng();
    test_strbuf();
    CHECK_STR(vms_status_str(VMS_ERR_NOMEM), "out of memory");
    CHECK_STR(vms_pgsize_name(VMS_PG_2M), "2M");
    return th_finish();
}
