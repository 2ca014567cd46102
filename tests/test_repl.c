/*
 * test_repl.c — the replacement-policy plug-ins: the registry, textbook behaviour of
 * each policy, and a seeded differential test of lru and plru against naive models
 * (timestamps; an array of booleans) over every way count 1 … 64 and 12.
 */
#include "harness.h"
#include "vmsim/repl.h"

static void test_registry(void)
{
    static const char *const names[] = {"lru", "plru", "fifo", "random"};
    CHECK_EQ(vms_repl_count(), 4);
    for (unsigned i = 0; i < 4; i++) {
        const vms_repl_policy *p = vms_repl_find(names[i]);
        CHECK(p != NULL);
        CHECK(p == vms_repl_get(i));
        CHECK_STR(p ? p->name : NULL, names[i]);
    }
    CHECK(vms_repl_find("LRU") == NULL);
    CHECK(vms_repl_find("") == NULL);
    CHECK(vms_repl_find(NULL) == NULL);
    CHECK(vms_repl_get(4) == NULL);
    CHECK_EQ(vms_repl_find("plru")->state_bytes(12), 2);
    CHECK_EQ(vms_repl_find("lru")->state_bytes(12), 12);
    CHECK_EQ(vms_repl_find("lru")->state_bytes(VMS_REPL_MAX_WAYS), VMS_REPL_MAX_WAYS);
}

/* Fill ways 0 … n-1 in order, as a cache does when a set starts empty. */
static void fill_in_order(const vms_repl_policy *p, uint8_t *st, unsigned ways)
{
    p->reset(st, ways);
    for (unsigned w = 0; w < ways; w++)
        p->touch(st, ways, w, false);
}

static void test_lru_textbook(void)
{
    const vms_repl_policy *p = vms_repl_find("lru");
    uint8_t st[64];
    fill_in_order(p, st, 4);
    CHECK_EQ(p->victim(st, 4, NULL), 0); /* least recently filled */
    p->touch(st, 4, 0, true);
    CHECK_EQ(p->victim(st, 4, NULL), 1);
    p->touch(st, 4, 2, true);
    p->touch(st, 4, 1, true);
    CHECK_EQ(p->victim(st, 4, NULL), 3);
    p->touch(st, 4, 3, false);
    CHECK_EQ(p->victim(st, 4, NULL), 0);
    p->reset(st, 4);
    CHECK_EQ(p->victim(st, 4, NULL), 3); /* fresh set: the last way is oldest */
}

static void test_plru_textbook(void)
{
    const vms_repl_policy *p = vms_repl_find("plru");
    uint8_t st[8];
    p->reset(st, 12);
    CHECK_EQ(p->victim(st, 12, NULL), 0);
    for (unsigned w = 0; w < 11; w++)
        p->touch(st, 12, w, false);
    CHECK_EQ(p->victim(st, 12, NULL), 11); /* the only way without its MRU bit */
    p->touch(st, 12, 11, false);           /* all 12 set: keep only way 11's */
    CHECK_EQ(p->victim(st, 12, NULL), 0);
    p->touch(st, 12, 0, true);
    p->touch(st, 12, 2, true);
    CHECK_EQ(p->victim(st, 12, NULL), 1);
    p->touch(st, 12, 1, true);
    CHECK_EQ(p->victim(st, 12, NULL), 3);
    /* One way: always way 0. */
    p->reset(st, 1);
    p->touch(st, 1, 0, false);
    CHECK_EQ(p->victim(st, 1, NULL), 0);
}

static void test_fifo_textbook(void)
{
    const vms_repl_policy *p = vms_repl_find("fifo");
    uint8_t st[4];
    fill_in_order(p, st, 4);
    CHECK_EQ(p->victim(st, 4, NULL), 0);
    p->touch(st, 4, 0, true); /* hits do not save way 0 */
    p->touch(st, 4, 3, true);
    CHECK_EQ(p->victim(st, 4, NULL), 0);
    p->touch(st, 4, 0, false);
    CHECK_EQ(p->victim(st, 4, NULL), 1);
    p->touch(st, 4, 1, false);
    p->touch(st, 4, 2, false);
    p->touch(st, 4, 3, false);
    CHECK_EQ(p->victim(st, 4, NULL), 0); /* wraps around */
    /* A hole refilled: insertion order 0 1 2 3; way 1 is invalidated and refilled, so
     * the order is 0 2 3 1, and the victims 0, 2, 3, 1 (a round-robin pointer moved to
     * way 2 by the refill of way 1 evicted 2, 3, 0 — issue 16 #10). */
    fill_in_order(p, st, 4);
    p->touch(st, 4, 1, false); /* the refill of the hole (the cache fills invalid ways) */
    static const unsigned want[] = {0, 2, 3, 1};
    for (unsigned i = 0; i < 4; i++) {
        unsigned v = p->victim(st, 4, NULL);
        CHECK_EQ(v, want[i]);
        p->touch(st, 4, v, false);
    }
}

static void test_random(void)
{
    const vms_repl_policy *p = vms_repl_find("random");
    CHECK_EQ(p->state_bytes(12), 0);
    vms_rng a, b;
    vms_rng_seed(&a, th_seed);
    vms_rng_seed(&b, th_seed);
    unsigned seen[12] = {0};
    int same = 1, in_range = 1;
    for (int i = 0; i < 12000; i++) {
        unsigned v = p->victim(NULL, 12, &a);
        same &= v == p->victim(NULL, 12, &b);
        in_range &= v < 12;
        if (v < 12)
            seen[v]++;
    }
    CHECK(same);
    CHECK(in_range);
    for (unsigned w = 0; w < 12; w++)
        CHECK(seen[w] > 700 && seen[w] < 1300);
}

/* Naive LRU: explicit timestamps; way i starts at -i so the last way is oldest. */
static unsigned naive_lru_victim(const long long *stamp, unsigned ways)
{
    unsigned v = 0;
    for (unsigned w = 1; w < ways; w++)
        if (stamp[w] < stamp[v])
            v = w;
    return v;
}

/* Naive bit-PLRU: one bool per way. */
static void naive_plru_touch(bool *mru, unsigned ways, unsigned way)
{
    mru[way] = true;
    unsigned n = 0;
    for (unsigned w = 0; w < ways; w++)
        n += mru[w];
    if (n == ways)
        for (unsigned w = 0; w < ways; w++)
            mru[w] = w == way;
}

static unsigned naive_plru_victim(const bool *mru, unsigned ways)
{
    for (unsigned w = 0; w < ways; w++)
        if (!mru[w])
            return w;
    return 0;
}

/* lru and plru against the naive models for `ways` ways, 2000 random touches. */
static void diff_ways(unsigned ways, vms_rng *r)
{
    const vms_repl_policy *lru = vms_repl_find("lru"), *plru = vms_repl_find("plru");
    uint8_t ls[VMS_REPL_MAX_WAYS], ps[VMS_REPL_MAX_WAYS / 8];
    long long stamp[VMS_REPL_MAX_WAYS];
    bool mru[VMS_REPL_MAX_WAYS] = {false};
    lru->reset(ls, ways);
    plru->reset(ps, ways);
    for (unsigned w = 0; w < ways; w++)
        stamp[w] = -(long long)w;
    int ok = 1;
    for (long long t = 1; t <= 2000; t++) {
        unsigned w = (unsigned)vms_rng_below(r, ways);
        bool hit = vms_rng_below(r, 2);
        lru->touch(ls, ways, w, hit);
        plru->touch(ps, ways, w, hit);
        stamp[w] = t;
        naive_plru_touch(mru, ways, w);
        ok &= lru->victim(ls, ways, NULL) == naive_lru_victim(stamp, ways);
        ok &= plru->victim(ps, ways, NULL) == naive_plru_victim(mru, ways);
    }
    if (!ok)
        fprintf(stderr, "repl differential: mismatch at %u ways\n", ways);
    CHECK(ok);
}

static void test_differential(void)
{
    vms_rng r;
    vms_rng_seed(&r, th_seed);
    for (unsigned ways = 1; ways <= 64; ways++)
        diff_ways(ways, &r);
    diff_ways(VMS_REPL_MAX_WAYS, &r);
}

/* Every policy's touch is idempotent: a hit on the way touched last changes nothing
 * (the TLB's repeat memo skips such touches). Checked from random states. */
static void test_idempotent_touch(void)
{
    static const unsigned way_counts[] = {1, 2, 3, 4, 8, 12, 16, 64};
    vms_rng rng;
    vms_rng_seed(&rng, th_seed);
    for (unsigned p = 0; p < vms_repl_count(); p++) {
        const vms_repl_policy *pol = vms_repl_get(p);
        unsigned bad = 0;
        for (size_t wi = 0; wi < sizeof way_counts / sizeof way_counts[0]; wi++) {
            unsigned ways = way_counts[wi];
            size_t n = pol->state_bytes(ways);
            uint8_t st[64], copy[64];
            if (n > sizeof st)
                continue;
            pol->reset(st, ways);
            for (int i = 0; i < 2000; i++) {
                unsigned w = (unsigned)vms_rng_below(&rng, ways);
                pol->touch(st, ways, w, vms_rng_below(&rng, 2) != 0);
                memcpy(copy, st, n);
                pol->touch(st, ways, w, true);
                bad += n && memcmp(copy, st, n) != 0;
            }
        }
        if (bad)
            fprintf(stderr, "policy %s: touch not idempotent %u times\n", pol->name, bad);
        CHECK_EQ(bad, 0);
    }
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "repl");
    test_registry();
    test_lru_textbook();
    test_plru_textbook();
    test_fifo_textbook();
    test_random();
    test_differential();
    test_idempotent_touch();
    return th_finish();
}
