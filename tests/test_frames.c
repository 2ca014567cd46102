/*
 * test_frames.c — the buddy frame allocator: placement (lowest first), split and
 * coalesce, alignment, holes, a seeded differential test against a byte-per-frame
 * reference, host-memory cost at 1 TiB, allocation-failure injection, fragmentation
 * indices, reference counting, flags and bad input. vms_frames_check runs after every
 * operation that changes the allocator.
 */
#include "harness.h"
#include "vmsim/frames.h"
#include "vmsim/rng.h"
#include "vmsim/strbuf.h"

#define GIB_PAGES (UINT64_C(1) << 18)

/* Create an allocator over ranges (fit as given); NULL on failure (a failed CHECK). */
static vms_frames *make(const vms_allocator *a, const vms_frames_range *r, size_t n,
                        vms_frames_fit fit)
{
    vms_frames_config cfg = {r, n, fit, false};
    vms_frames *fr = NULL;
    vms_err err = {0};
    vms_status st = vms_frames_create(a, &cfg, &fr, &err);
    if (st != VMS_OK)
        fprintf(stderr, "create: %s\n", err.msg);
    CHECK_EQ(st, VMS_OK);
    return fr;
}

/* The PC layout with ram_bytes of RAM. */
static vms_frames *make_pc(const vms_allocator *a, uint64_t ram_bytes, vms_frames_fit fit)
{
    vms_frames_range r[2];
    size_t n = vms_frames_layout_pc(ram_bytes, r);
    return make(a, r, n, fit);
}

/* vms_frames_check, printing its message on failure; returns whether it passed. */
static bool checked(const vms_frames *fr)
{
    vms_err err = {0};
    vms_status st = vms_frames_check(fr, &err);
    if (st != VMS_OK)
        fprintf(stderr, "check: %s\n", err.msg);
    CHECK_EQ(st, VMS_OK);
    return st == VMS_OK;
}

static uint64_t alloc_ok(vms_frames *fr, unsigned order)
{
    uint64_t pfn = UINT64_MAX;
    vms_err err = {0};
    vms_status st = vms_frames_alloc(fr, order, &pfn, &err);
    if (st != VMS_OK)
        fprintf(stderr, "alloc order %u: %s\n", order, err.msg);
    CHECK_EQ(st, VMS_OK);
    return pfn;
}

static void test_layout(void)
{
    vms_frames_range r[2];
    CHECK_EQ(vms_frames_layout_pc(UINT64_C(1) << 30, r), 1);
    CHECK_EQ(r[0].npages, GIB_PAGES);
    CHECK_EQ(vms_frames_layout_pc(UINT64_C(4) << 30, r), 2);
    CHECK_EQ(r[0].base_pfn, 0);
    CHECK_EQ(r[0].npages, 3 * GIB_PAGES);
    CHECK_EQ(r[1].base_pfn, 4 * GIB_PAGES);
    CHECK_EQ(r[1].npages, GIB_PAGES);
    CHECK_EQ(vms_frames_layout_pc(0, r), 0);
    CHECK_EQ(vms_frames_layout_pc(4097, r), 0);
}

/* A fresh allocator hands out 0, 1, 2, …; freed frames come back lowest first. */
static void test_lowest_first(void)
{
    vms_frames *fr = make_pc(NULL, UINT64_C(4) << 30, VMS_FRAMES_FIT_BUDDY);
    if (!fr)
        return;
    uint64_t total = vms_frames_nfree(fr);
    CHECK_EQ(total, 4 * GIB_PAGES);
    bool inorder = true;
    for (uint64_t i = 0; i < 1000; i++)
        inorder &= alloc_ok(fr, 0) == i;
    CHECK(inorder);
    checked(fr);
    CHECK_EQ(vms_frames_free(fr, 7, 0, NULL), VMS_OK);
    CHECK_EQ(vms_frames_free(fr, 3, 0, NULL), VMS_OK);
    CHECK_EQ(alloc_ok(fr, 0), 3);
    CHECK_EQ(alloc_ok(fr, 0), 7);
    CHECK_EQ(alloc_ok(fr, 0), 1000);
    for (uint64_t i = 0; i <= 1000; i++)
        CHECK_EQ(vms_frames_free(fr, i, 0, NULL), VMS_OK);
    CHECK_EQ(vms_frames_nfree(fr), total);
    checked(fr);
    vms_frames_destroy(fr);
}

/*
 * The two fits differ when a lower free block is larger than a higher one: frames 0-1
 * free (order 1) and frame 4 free (order 0). BUDDY takes the exact order (4); LOWEST
 * takes the lowest frame (0).
 */
static void test_fits(void)
{
    vms_frames_range r = {0, 64};
    uint64_t want[2] = {4, 0};
    for (int fit = 0; fit < 2; fit++) {
        vms_frames *fr = make(NULL, &r, 1, (vms_frames_fit)fit);
        if (!fr)
            return;
        for (uint64_t i = 0; i < 6; i++)
            CHECK_EQ(alloc_ok(fr, 0), i);
        CHECK_EQ(vms_frames_free(fr, 0, 0, NULL), VMS_OK);
        CHECK_EQ(vms_frames_free(fr, 1, 0, NULL), VMS_OK);
        CHECK_EQ(vms_frames_free(fr, 4, 0, NULL), VMS_OK);
        checked(fr);
        CHECK_EQ(alloc_ok(fr, 0), want[fit]);
        checked(fr);
        vms_frames_destroy(fr);
    }
}

/* One order-0 allocation from a single order-10 block splits it into 0 … 9. */
static void test_split_coalesce(void)
{
    vms_frames_range r = {0, 1024};
    vms_frames *fr = make(NULL, &r, 1, VMS_FRAMES_FIT_BUDDY);
    if (!fr)
        return;
    vms_frames_stats st;
    vms_frames_stats_get(fr, &st);
    CHECK_EQ(st.free_blocks[10], 1);
    CHECK_EQ(alloc_ok(fr, 0), 0);
    vms_frames_stats_get(fr, &st);
    for (unsigned k = 0; k < 10; k++)
        CHECK_EQ(st.free_blocks[k], 1);
    CHECK_EQ(st.free_blocks[10], 0);
    CHECK_EQ(st.free, 1023);
    CHECK_EQ(st.used, 1);
    checked(fr);
    /* The order-3 allocation takes the free order-3 block at 8 without splitting. */
    CHECK_EQ(alloc_ok(fr, 3), 8);
    CHECK_EQ(vms_frames_free(fr, 0, 0, NULL), VMS_OK);
    CHECK_EQ(vms_frames_free(fr, 8, 3, NULL), VMS_OK);
    vms_frames_stats_get(fr, &st);
    CHECK_EQ(st.free_blocks[10], 1);
    CHECK_EQ(st.free, 1024);
    checked(fr);
    vms_frames_destroy(fr);
}

/* vms_frames_alloc_at takes one frame out of a free block (the free scanner of
 * compaction): the rest stays free in the largest blocks around it, a second take or a
 * frame outside RAM is refused, and freeing it coalesces back to one block. */
static void test_alloc_at(void)
{
    vms_frames_range r = {0, 1024};
    vms_frames *fr = make(NULL, &r, 1, VMS_FRAMES_FIT_BUDDY);
    if (!fr)
        return;
    CHECK(vms_frames_is_free(fr, 700));
    CHECK_EQ(vms_frames_alloc_at(fr, 700, NULL), VMS_OK);
    CHECK(!vms_frames_is_free(fr, 700));
    CHECK(vms_frames_is_free(fr, 699) && vms_frames_is_free(fr, 701));
    vms_frames_stats st;
    vms_frames_stats_get(fr, &st);
    CHECK_EQ(st.free, 1023);
    CHECK_EQ(st.free_blocks[10], 0);
    CHECK_EQ(st.free_blocks[9], 1); /* 0-511 */
    CHECK_EQ(st.free_blocks[0], 1); /* 701 */
    CHECK_EQ(vms_frames_meta(fr, 700)->refcount, 1);
    checked(fr);
    CHECK_EQ(vms_frames_alloc_at(fr, 700, NULL), VMS_ERR_INVAL);
    CHECK_EQ(vms_frames_alloc_at(fr, 4096, NULL), VMS_ERR_INVAL);
    CHECK(!vms_frames_is_free(fr, 4096));
    CHECK_EQ(alloc_ok(fr, 0), 701); /* buddy fit: the smallest free block first */
    CHECK_EQ(vms_frames_alloc_at(fr, 1023, NULL), VMS_OK);
    checked(fr);
    CHECK_EQ(vms_frames_free(fr, 700, 0, NULL), VMS_OK);
    CHECK_EQ(vms_frames_free(fr, 1023, 0, NULL), VMS_OK);
    CHECK_EQ(vms_frames_free(fr, 701, 0, NULL), VMS_OK);
    vms_frames_stats_get(fr, &st);
    CHECK_EQ(st.free_blocks[10], 1);
    checked(fr);
    vms_frames_destroy(fr);
}

/* 2 MiB and 1 GiB blocks are naturally aligned; the PC layout holds four 1 GiB blocks. */
static void test_alignment(void)
{
    vms_frames *fr = make_pc(NULL, UINT64_C(4) << 30, VMS_FRAMES_FIT_BUDDY);
    if (!fr)
        return;
    CHECK_EQ(alloc_ok(fr, 0), 0);
    CHECK_EQ(alloc_ok(fr, 9), 512);
    CHECK_EQ(alloc_ok(fr, 9), 1024);
    uint64_t p = alloc_ok(fr, 18);
    CHECK_EQ(p, GIB_PAGES);
    CHECK_EQ(alloc_ok(fr, 18), 2 * GIB_PAGES);
    CHECK_EQ(alloc_ok(fr, 18), 4 * GIB_PAGES); /* above the device window */
    uint64_t pfn = 0;
    CHECK_EQ(vms_frames_alloc(fr, 18, &pfn, NULL), VMS_ERR_NOTFOUND);
    for (int i = 0; i < 50; i++)
        CHECK_EQ(alloc_ok(fr, 9) % 512, 0);
    checked(fr);
    /* Every frame of the 1 GiB block knows its head. */
    uint64_t head = 0;
    unsigned order = 0;
    CHECK_EQ(vms_frames_head(fr, p + 12345, &head, &order), VMS_OK);
    CHECK_EQ(head, p);
    CHECK_EQ(order, 18);
    CHECK_EQ(vms_frames_free(fr, p, 18, NULL), VMS_OK);
    CHECK_EQ(alloc_ok(fr, 18), GIB_PAGES);
    checked(fr);
    vms_frames_destroy(fr);
}

/* Ranges with unaligned edges: no block leaves its range; exhaustion is clean. */
static void test_holes(void)
{
    const vms_frames_range r[] = {{1030, 5000}, {1, 1000}, {(1u << 20) + 3, 70000}};
    vms_frames *fr = make(NULL, r, 3, VMS_FRAMES_FIT_BUDDY);
    if (!fr)
        return;
    size_t n = 0;
    const vms_frames_range *sorted = vms_frames_ranges(fr, &n);
    CHECK_EQ(n, 3);
    CHECK_EQ(sorted[0].base_pfn, 1);
    CHECK(!vms_frames_is_ram(fr, 0));
    CHECK(!vms_frames_is_ram(fr, 1001));
    CHECK(vms_frames_is_ram(fr, 1030));
    CHECK(vms_frames_meta(fr, 1010) == NULL);
    CHECK_EQ(alloc_ok(fr, 0), 1);
    bool inside = true;
    uint64_t got = 1;
    for (unsigned order = 12; order-- > 0;) {
        uint64_t pfn;
        while (vms_frames_alloc(fr, order, &pfn, NULL) == VMS_OK) {
            inside &= pfn % (UINT64_C(1) << order) == 0;
            for (size_t i = 0; i < n; i++)
                if (pfn >= sorted[i].base_pfn && pfn < sorted[i].base_pfn + sorted[i].npages)
                    inside &= pfn + (UINT64_C(1) << order) <= sorted[i].base_pfn + sorted[i].npages;
            inside &= vms_frames_is_ram(fr, pfn);
            got += UINT64_C(1) << order;
        }
    }
    CHECK(inside);
    CHECK_EQ(got, 76000);
    CHECK_EQ(vms_frames_nfree(fr), 0);
    CHECK_EQ(vms_frames_unusable_index(fr, 0), 1000);
    CHECK_EQ(vms_frames_extfrag_index(fr, 0), 0);
    checked(fr);
    vms_frames_destroy(fr);
}

/* ---- differential test against a byte-per-frame reference ------------------------- */

enum { REF_HOLE = 0, REF_FREE = 1, REF_USED = 2 };

typedef struct ref {
    uint8_t *st; /* per frame: REF_* */
    uint64_t end;
    const vms_frames_range *r;
    size_t nr;
} ref;

/* End of the range holding pfn (0 if pfn is a hole). */
static uint64_t ref_range_end(const ref *rf, uint64_t pfn)
{
    for (size_t i = 0; i < rf->nr; i++)
        if (pfn >= rf->r[i].base_pfn && pfn < rf->r[i].base_pfn + rf->r[i].npages)
            return rf->r[i].base_pfn + rf->r[i].npages;
    return 0;
}

static bool ref_all(const ref *rf, uint64_t pfn, uint64_t n, uint8_t v)
{
    for (uint64_t i = 0; i < n; i++)
        if (rf->st[pfn + i] != v)
            return false;
    return true;
}

/*
 * The maximal buddy blocks of the reference's free frames: walking each range from
 * its start, the free block at p is the largest aligned run at p that is free and
 * inside the range (up to order 18). Counts per order into cnt; for each order the
 * lowest block pfn into first (UINT64_MAX if none).
 */
static void ref_blocks(const ref *rf, uint64_t cnt[19], uint64_t first[19])
{
    for (unsigned k = 0; k < 19; k++)
        cnt[k] = 0, first[k] = UINT64_MAX;
    for (size_t i = 0; i < rf->nr; i++) {
        uint64_t p = rf->r[i].base_pfn, end = p + rf->r[i].npages;
        while (p < end) {
            if (rf->st[p] != REF_FREE) {
                p++;
                continue;
            }
            unsigned k = p ? (unsigned)__builtin_ctzll(p) : 18;
            k = k > 18 ? 18 : k;
            while (p + (UINT64_C(1) << k) > end || !ref_all(rf, p, UINT64_C(1) << k, REF_FREE))
                k--;
            cnt[k]++;
            if (first[k] == UINT64_MAX)
                first[k] = p;
            p += UINT64_C(1) << k;
        }
    }
}

/* The lowest aligned free run of 2^order frames inside one range, or UINT64_MAX. */
static uint64_t ref_lowest(const ref *rf, unsigned order)
{
    uint64_t n = UINT64_C(1) << order;
    for (uint64_t p = 0; p + n <= rf->end; p += n) {
        uint64_t e = ref_range_end(rf, p);
        if (e && p + n <= e && ref_all(rf, p, n, REF_FREE))
            return p;
    }
    return UINT64_MAX;
}

/* The expected pfn of an order-k allocation under fit, from the reference. */
static uint64_t ref_expect(const ref *rf, vms_frames_fit fit, unsigned order)
{
    if (fit == VMS_FRAMES_FIT_LOWEST)
        return ref_lowest(rf, order);
    uint64_t cnt[19], first[19];
    ref_blocks(rf, cnt, first);
    for (unsigned k = order; k < 19; k++)
        if (cnt[k])
            return first[k];
    return UINT64_MAX;
}

/* Compare the allocator's per-order free block counts with the reference's. */
static bool same_blocks(const vms_frames *fr, const ref *rf)
{
    uint64_t cnt[19], first[19];
    vms_frames_stats st;
    ref_blocks(rf, cnt, first);
    vms_frames_stats_get(fr, &st);
    bool same = true;
    for (unsigned k = 0; k < 19; k++)
        same &= cnt[k] == st.free_blocks[k];
    return same;
}

typedef struct live {
    uint64_t pfn;
    unsigned order;
} live;

/* A random order: mostly small, sometimes up to maxorder. */
static unsigned rand_order(vms_rng *g, unsigned maxorder)
{
    uint64_t x = vms_rng_below(g, 100);
    if (x < 50)
        return 0;
    if (x < 80)
        return (unsigned)vms_rng_below(g, 4);
    return (unsigned)vms_rng_below(g, maxorder + 1);
}

/* One allocation, checked against the reference (placement exact under both fits). */
static void diff_alloc(vms_frames *fr, ref *rf, vms_frames_fit fit, unsigned order, live *lv,
                       size_t *nlive)
{
    uint64_t want = ref_expect(rf, fit, order), pfn = 0, n = UINT64_C(1) << order;
    vms_status st = vms_frames_alloc(fr, order, &pfn, NULL);
    if (want == UINT64_MAX) {
        CHECK_EQ(st, VMS_ERR_NOTFOUND);
        return;
    }
    CHECK_EQ(st, VMS_OK);
    CHECK_EQ(pfn, want);
    if (st != VMS_OK || pfn + n > rf->end || !ref_all(rf, pfn, n, REF_FREE)) {
        CHECK(!"allocated block is not free in the reference");
        return;
    }
    memset(rf->st + pfn, REF_USED, n);
    lv[(*nlive)++] = (live){pfn, order};
}

/* Free live block i (swap-removed). */
static void diff_free(vms_frames *fr, ref *rf, live *lv, size_t *nlive, size_t i)
{
    CHECK_EQ(vms_frames_free(fr, lv[i].pfn, lv[i].order, NULL), VMS_OK);
    memset(rf->st + lv[i].pfn, REF_FREE, UINT64_C(1) << lv[i].order);
    lv[i] = lv[--(*nlive)];
}

/*
 * The lookups against the reference: every frame up to past the end is RAM exactly when
 * a range holds it and has metadata only then (the chunks' range records must not
 * answer for a hole at a ragged chunk edge), and every frame of a live block names the
 * block's head and order (head_of's search inside the chunk and beyond it).
 */
static bool same_frames(vms_frames *fr, const ref *rf, const live *lv, size_t nlive)
{
    bool same = true;
    for (uint64_t p = 0; p < rf->end + 1024; p++) {
        bool ram = p < rf->end && ref_range_end(rf, p) != 0;
        same &= vms_frames_is_ram(fr, p) == ram;
        same &= ram || vms_frames_meta(fr, p) == NULL;
    }
    for (size_t i = 0; i < nlive; i++)
        for (uint64_t j = 0; j < UINT64_C(1) << lv[i].order; j++) {
            uint64_t h = 0;
            unsigned order = 99;
            same &= vms_frames_meta(fr, lv[i].pfn + j) != NULL;
            same &= vms_frames_head(fr, lv[i].pfn + j, &h, &order) == VMS_OK;
            same &= h == lv[i].pfn && order == lv[i].order;
        }
    return same;
}

/* nops random operations over ranges; compare every reference_every ops. */
static void diff_run(const vms_frames_range *r, size_t nr, vms_frames_fit fit, unsigned maxorder,
                     int nops, int ref_every, uint64_t seed)
{
    vms_frames *fr = make(NULL, r, nr, fit);
    if (!fr)
        return;
    ref rf = {NULL, 0, r, nr};
    for (size_t i = 0; i < nr; i++)
        if (r[i].base_pfn + r[i].npages > rf.end)
            rf.end = r[i].base_pfn + r[i].npages;
    rf.st = calloc(rf.end, 1);
    live *lv = calloc((size_t)nops, sizeof *lv);
    for (size_t i = 0; i < nr; i++)
        memset(rf.st + r[i].base_pfn, REF_FREE, r[i].npages);
    vms_frames_stats init;
    vms_frames_stats_get(fr, &init);
    vms_rng g;
    vms_rng_seed(&g, seed);
    size_t nlive = 0;
    int ok = 1;
    for (int op = 0; op < nops && ok; op++) {
        if (nlive && vms_rng_below(&g, 100) < 45)
            diff_free(fr, &rf, lv, &nlive, (size_t)vms_rng_below(&g, nlive));
        else
            diff_alloc(fr, &rf, fit, rand_order(&g, maxorder), lv, &nlive);
        ok = checked(fr);
        if (op % ref_every == 0) {
            ok &= same_blocks(fr, &rf);
            CHECK(same_blocks(fr, &rf));
        }
        if (rf.end < 65536 && op % 97 == 0) {
            ok &= same_frames(fr, &rf, lv, nlive);
            CHECK(ok);
        }
    }
    CHECK(same_frames(fr, &rf, lv, nlive));
    while (nlive)
        diff_free(fr, &rf, lv, &nlive, nlive - 1);
    vms_frames_stats st;
    vms_frames_stats_get(fr, &st);
    CHECK_EQ(st.free, init.free);
    CHECK(memcmp(st.free_blocks, init.free_blocks, sizeof st.free_blocks) == 0);
    checked(fr);
    free(lv);
    free(rf.st);
    vms_frames_destroy(fr);
}

static void test_differential(void)
{
    /* Small, odd-edged RAM: every op compared exactly with the reference. */
    const vms_frames_range small[] = {{3, 1500}, {1600, 2200}, {4096, 4096}, {9000, 333}};
    for (int fit = 0; fit < 2; fit++)
        diff_run(small, 4, (vms_frames_fit)fit, 12, 2500, 1, th_seed + (uint64_t)fit);
    /* Two GiB-scale ranges, orders up to 18. */
    const vms_frames_range big[] = {{0, GIB_PAGES + 5000}, {2 * GIB_PAGES - 7, GIB_PAGES + 7}};
    diff_run(big, 2, VMS_FRAMES_FIT_BUDDY, 18, 300, 1, th_seed + 7);
}

/* ---- host memory at scale ------------------------------------------------------ */

static void test_scale(void)
{
    th_failalloc fa;
    const vms_allocator *a = th_failalloc_init(&fa, -1);
    vms_frames *fr = make_pc(a, UINT64_C(4) << 30, VMS_FRAMES_FIT_BUDDY);
    long long b4g = fa.live_bytes;
    CHECK(b4g < 64 * 1024);
    vms_frames_destroy(fr);
    CHECK_EQ(fa.live_bytes, 0);

    fr = make_pc(a, UINT64_C(1) << 40, VMS_FRAMES_FIT_BUDDY);
    if (!fr)
        return;
    long long b1t = fa.live_bytes;
    vms_frames_stats st;
    vms_frames_stats_get(fr, &st);
    CHECK_EQ(st.host_bytes, (uint64_t)b1t);
    CHECK(b1t < 2 * 1024 * 1024);
    CHECK_EQ(st.total, UINT64_C(1) << 28);
    CHECK_EQ(st.free_blocks[18], 1024);
    CHECK_EQ(st.meta_chunks, 0);
    printf("frames: host bytes at creation: 4 GiB RAM %lld, 1 TiB RAM %lld\n", b4g, b1t);
    /* A page costs one 2 MiB chunk of metadata (+ a directory page for its GiB). */
    CHECK_EQ(alloc_ok(fr, 0), 0);
    long long one = fa.live_bytes - b1t;
    CHECK(one > 16 * 1024 && one < 24 * 1024);
    /* A 1 GiB page costs 512 chunks (~8 MiB); the rest of the TiB stays untouched. */
    uint64_t g = alloc_ok(fr, 18);
    CHECK_EQ(g, GIB_PAGES);
    vms_frames_stats_get(fr, &st);
    CHECK_EQ(st.meta_chunks, 513);
    printf("frames: +1 page %lld bytes, +1 GiB page %lld bytes\n", one, fa.live_bytes - b1t - one);
    CHECK_EQ(vms_frames_free(fr, g, 18, NULL), VMS_OK);
    CHECK_EQ(vms_frames_free(fr, 0, 0, NULL), VMS_OK);
    CHECK_EQ(vms_frames_nfree(fr), UINT64_C(1) << 28);
    checked(fr);
    vms_frames_destroy(fr);
    CHECK_EQ(fa.live_bytes, 0);
}

/* ---- allocation-failure injection ---------------------------------------------- */

static void test_failalloc_create(void)
{
    const vms_frames_range r[] = {{1, 2000}, {5000, 100000}};
    vms_frames_config cfg = {r, 2, VMS_FRAMES_FIT_BUDDY, false};
    th_failalloc fa;
    bool done = false;
    for (long n = 0; n < 200 && !done; n++) {
        vms_frames *fr = (vms_frames *)&fa; /* poison: must come back NULL on failure */
        vms_err err = {0};
        vms_status st = vms_frames_create(th_failalloc_init(&fa, n), &cfg, &fr, &err);
        if (st == VMS_OK) {
            done = true;
            checked(fr);
            vms_frames_destroy(fr);
        } else {
            CHECK_EQ(st, VMS_ERR_NOMEM);
            CHECK_EQ(err.status, VMS_ERR_NOMEM);
            CHECK(fr == NULL);
        }
        CHECK_EQ(fa.live_bytes, 0);
    }
    CHECK(done);
}

/* Fail the Nth host allocation inside alloc/reserve: NOMEM, nothing changes, no leaks. */
static void test_failalloc_ops(void)
{
    th_failalloc fa;
    const vms_allocator *a = th_failalloc_init(&fa, -1);
    vms_frames *fr = make_pc(a, UINT64_C(8) << 30, VMS_FRAMES_FIT_BUDDY);
    if (!fr)
        return;
    uint64_t nfree = vms_frames_nfree(fr), pfn = 0;
    int ok = 0;
    /* Order 0 at pfn 0 needs a directory page and a chunk: budgets 0 and 1 fail (the
     * directory page of budget 1 is kept), budget 2 succeeds. Then 1 GiB at GiB 1 needs
     * a directory page and 512 chunks: budgets 0 … 2 all fail. */
    for (long n = 0; n < 6; n++) {
        fa.budget = n % 3;
        vms_status st = vms_frames_alloc(fr, n < 3 ? 0 : 18, &pfn, NULL);
        CHECK_EQ(st, n == 2 ? VMS_OK : VMS_ERR_NOMEM);
        ok += st == VMS_OK;
        if (st != VMS_OK)
            CHECK_EQ(vms_frames_nfree(fr), nfree);
        nfree = vms_frames_nfree(fr);
        checked(fr);
    }
    CHECK_EQ(ok, 1);
    fa.budget = 10;
    CHECK_EQ(vms_frames_reserve(fr, 5 * GIB_PAGES, 10 * 512, NULL), VMS_ERR_NOMEM);
    CHECK_EQ(vms_frames_nfree(fr), nfree);
    checked(fr);
    fa.budget = -1;
    CHECK_EQ(vms_frames_reserve(fr, 5 * GIB_PAGES, 10 * 512, NULL), VMS_OK);
    CHECK_EQ(vms_frames_alloc(fr, 18, &pfn, NULL), VMS_OK);
    checked(fr);
    vms_frames_destroy(fr);
    CHECK_EQ(fa.live_bytes, 0);
}

/* ---- observability ------------------------------------------------------------- */

/*
 * 16 frames, all allocated, then 0, 1 and the even frames 2 … 14 freed: free blocks are
 * one of order 1 (at 0) and seven of order 0, 9 free frames.
 *   unusable(0) = 0; unusable(1) = (9 − 2) / 9 = 0.777; unusable(2) = 1.
 *   extfrag(2) = 1000 − (1000 + 9000/4) / 8 = 1000 − 406 = 594.
 */
static void test_fragmentation(void)
{
    vms_frames_range r = {0, 16};
    vms_frames *fr = make(NULL, &r, 1, VMS_FRAMES_FIT_BUDDY);
    if (!fr)
        return;
    CHECK_EQ(vms_frames_unusable_index(fr, 4), 0);
    CHECK_EQ(vms_frames_unusable_index(fr, 5), 1000);
    CHECK_EQ(vms_frames_unusable_index(fr, 99), 1000);
    CHECK_EQ(vms_frames_extfrag_index(fr, 4), -1000);
    for (uint64_t i = 0; i < 16; i++)
        CHECK_EQ(alloc_ok(fr, 0), i);
    CHECK_EQ(vms_frames_unusable_index(fr, 0), 1000);
    CHECK_EQ(vms_frames_extfrag_index(fr, 0), 0);
    CHECK_EQ(vms_frames_free(fr, 1, 0, NULL), VMS_OK);
    for (uint64_t i = 0; i < 16; i += 2)
        CHECK_EQ(vms_frames_free(fr, i, 0, NULL), VMS_OK);
    checked(fr);
    CHECK_EQ(vms_frames_nfree(fr), 9);
    CHECK_EQ(vms_frames_unusable_index(fr, 0), 0);
    CHECK_EQ(vms_frames_unusable_index(fr, 1), 777);
    CHECK_EQ(vms_frames_unusable_index(fr, 2), 1000);
    CHECK_EQ(vms_frames_extfrag_index(fr, 1), -1000);
    CHECK_EQ(vms_frames_extfrag_index(fr, 2), 594);
    vms_strbuf sb;
    vms_strbuf_init(&sb, NULL);
    CHECK_EQ(vms_frames_buddyinfo(fr, &sb), VMS_OK);
    CHECK_STR(vms_strbuf_str(&sb), "Node 0, zone     ram0      7      1      0      0      0 "
                                   "     0      0      0      0      0      0      0      0 "
                                   "     0      0      0      0      0      0 \n");
    vms_strbuf_free(&sb);
    vms_frames_destroy(fr);
}

static void test_buddyinfo_pc(void)
{
    vms_frames *fr = make_pc(NULL, UINT64_C(4) << 30, VMS_FRAMES_FIT_BUDDY);
    if (!fr)
        return;
    vms_strbuf sb;
    vms_strbuf_init(&sb, NULL);
    CHECK_EQ(vms_frames_buddyinfo(fr, &sb), VMS_OK);
    CHECK(strstr(vms_strbuf_str(&sb), "zone     ram0 ") != NULL);
    CHECK(strstr(vms_strbuf_str(&sb), "      3 \nNode 0, zone     ram1 ") != NULL);
    vms_strbuf_free(&sb);
    th_failalloc fa;
    vms_strbuf_init(&sb, th_failalloc_init(&fa, 0));
    CHECK_EQ(vms_frames_buddyinfo(fr, &sb), VMS_ERR_NOMEM);
    vms_strbuf_free(&sb);
    vms_frames_destroy(fr);
}

/* ---- metadata, references, flags ----------------------------------------------- */

static void test_refcount(void)
{
    vms_frames_range r = {0, 4096};
    vms_frames *fr = make(NULL, &r, 1, VMS_FRAMES_FIT_BUDDY);
    if (!fr)
        return;
    uint64_t p = alloc_ok(fr, 2);
    vms_frame *m = vms_frames_meta(fr, p);
    CHECK(m != NULL);
    CHECK_EQ(m->refcount, 1);
    CHECK_EQ(m->order, 2);
    CHECK_EQ(m->flags, VMS_FRAME_ALLOC | VMS_FRAME_HEAD);
    CHECK_EQ(vms_frames_meta(fr, p + 1)->flags, VMS_FRAME_ALLOC);
    CHECK_EQ(vms_frames_get(fr, p + 3), VMS_OK); /* a tail frame counts on the head */
    CHECK_EQ(m->refcount, 2);
    CHECK_EQ(vms_frames_free(fr, p, 2, NULL), VMS_ERR_INVAL); /* still referenced */
    bool freed = true;
    CHECK_EQ(vms_frames_put(fr, p, &freed), VMS_OK);
    CHECK(!freed);
    CHECK_EQ(m->refcount, 1);
    CHECK_EQ(vms_frames_put(fr, p + 1, &freed), VMS_OK);
    CHECK(freed);
    CHECK_EQ(vms_frames_nfree(fr), 4096);
    CHECK_EQ(m->flags, 0);
    CHECK_EQ(vms_frames_put(fr, p, &freed), VMS_ERR_INVAL);
    CHECK(!freed);
    CHECK_EQ(vms_frames_get(fr, p), VMS_ERR_INVAL);
    checked(fr);

    /* Mapped frames cannot lose their last reference. */
    p = alloc_ok(fr, 1);
    vms_frames_meta(fr, p + 1)->mapcount = 1;
    CHECK_EQ(vms_frames_put(fr, p, &freed), VMS_ERR_INVAL);
    CHECK_EQ(vms_frames_free(fr, p, 1, NULL), VMS_ERR_INVAL);
    vms_frames_meta(fr, p + 1)->mapcount = 0;
    vms_frames_meta(fr, p)->owner = 0x1234;
    CHECK_EQ(vms_frames_put(fr, p, &freed), VMS_OK);
    CHECK(freed);
    CHECK(vms_frames_meta(fr, p)->owner == 0);
    checked(fr);

    /* A pin holds a reference; unpin after the owner's put frees the block. */
    p = alloc_ok(fr, 0);
    CHECK_EQ(vms_frames_pin(fr, p), VMS_OK);
    CHECK_EQ(vms_frames_count(fr, VMS_FRAME_PINNED), 1);
    checked(fr);
    CHECK_EQ(vms_frames_free(fr, p, 0, NULL), VMS_ERR_INVAL);
    CHECK_EQ(vms_frames_put(fr, p, &freed), VMS_OK);
    CHECK(!freed);
    CHECK_EQ(vms_frames_unpin(fr, p, &freed), VMS_OK);
    CHECK(freed);
    CHECK_EQ(vms_frames_unpin(fr, p, &freed), VMS_ERR_INVAL);
    CHECK_EQ(vms_frames_count(fr, VMS_FRAME_PINNED), 0);
    CHECK_EQ(vms_frames_nfree(fr), 4096);
    checked(fr);
    vms_frames_destroy(fr);
}

static void test_flags(void)
{
    vms_frames *fr = make_pc(NULL, UINT64_C(4) << 30, VMS_FRAMES_FIT_BUDDY);
    if (!fr)
        return;
    uint64_t pt = alloc_ok(fr, 0), huge = alloc_ok(fr, 9);
    CHECK_EQ(vms_frames_set_flags(fr, pt, VMS_FRAME_PAGETABLE, 0), VMS_OK);
    CHECK_EQ(vms_frames_set_flags(fr, huge + 7, VMS_FRAME_ANON | VMS_FRAME_DIRTY, 0), VMS_OK);
    CHECK_EQ(vms_frames_count(fr, VMS_FRAME_PAGETABLE), 1);
    CHECK_EQ(vms_frames_count(fr, VMS_FRAME_ANON), 512);
    CHECK_EQ(vms_frames_count(fr, VMS_FRAME_DIRTY), 512);
    CHECK_EQ(vms_frames_count(fr, VMS_FRAME_ALLOC), 513);
    CHECK_EQ(vms_frames_count(fr, VMS_FRAME_ANON | VMS_FRAME_DIRTY), 0); /* not one bit */
    CHECK_EQ(vms_frames_set_flags(fr, huge, 0, VMS_FRAME_DIRTY), VMS_OK);
    CHECK_EQ(vms_frames_count(fr, VMS_FRAME_DIRTY), 0);
    CHECK_EQ(vms_frames_set_flags(fr, pt, VMS_FRAME_HEAD, 0), VMS_ERR_INVAL);
    CHECK_EQ(vms_frames_set_flags(fr, pt, 0, VMS_FRAME_ALLOC), VMS_ERR_INVAL);
    CHECK_EQ(vms_frames_set_flags(fr, pt, VMS_FRAME_PINNED, 0), VMS_ERR_INVAL);
    CHECK_EQ(vms_frames_set_flags(fr, 5000, VMS_FRAME_DIRTY, 0), VMS_ERR_INVAL); /* free */
    checked(fr);
    CHECK_EQ(vms_frames_free(fr, pt, 0, NULL), VMS_OK);
    CHECK_EQ(vms_frames_free(fr, huge, 9, NULL), VMS_OK);
    for (unsigned b = 0; b < VMS_FRAME_NFLAGS; b++)
        CHECK_EQ(vms_frames_count(fr, 1u << b), 0);
    checked(fr);
    vms_frames_destroy(fr);
}

static void test_reserve(void)
{
    vms_frames *fr = make_pc(NULL, UINT64_C(4) << 30, VMS_FRAMES_FIT_BUDDY);
    if (!fr)
        return;
    CHECK_EQ(vms_frames_reserve(fr, 0, 1, NULL), VMS_OK);
    CHECK_EQ(vms_frames_reserve(fr, 100, 200, NULL), VMS_OK);
    CHECK_EQ(vms_frames_reserve(fr, 3 * GIB_PAGES + 5, 1, NULL), VMS_ERR_INVAL); /* hole */
    CHECK_EQ(vms_frames_reserve(fr, 3 * GIB_PAGES - 1, 2, NULL), VMS_ERR_INVAL); /* spans */
    CHECK_EQ(vms_frames_reserve(fr, 150, 1, NULL), VMS_ERR_INVAL); /* already reserved */
    CHECK_EQ(vms_frames_reserve(fr, 10, 0, NULL), VMS_ERR_INVAL);
    CHECK_EQ(vms_frames_count(fr, VMS_FRAME_RESERVED), 201);
    checked(fr);
    CHECK_EQ(alloc_ok(fr, 0), 1);
    CHECK_EQ(alloc_ok(fr, 6), 320); /* 64 … 127 holds reserved frames */
    CHECK_EQ(alloc_ok(fr, 6), 384);
    CHECK_EQ(vms_frames_free(fr, 0, 0, NULL), VMS_ERR_INVAL);
    CHECK_EQ(vms_frames_reserve(fr, 330, 1, NULL), VMS_ERR_INVAL); /* allocated */
    vms_frames_stats st;
    vms_frames_stats_get(fr, &st);
    CHECK_EQ(st.reserved, 201);
    CHECK_EQ(st.used, 129);
    CHECK_EQ(st.total, st.free + st.used + st.reserved);
    CHECK_EQ(vms_frames_unreserve(fr, 99, 2, NULL), VMS_ERR_INVAL); /* 99 is free */
    CHECK_EQ(vms_frames_unreserve(fr, 100, 200, NULL), VMS_OK);
    CHECK_EQ(vms_frames_unreserve(fr, 0, 1, NULL), VMS_OK);
    CHECK_EQ(vms_frames_free(fr, 1, 0, NULL), VMS_OK);
    CHECK_EQ(vms_frames_free(fr, 320, 6, NULL), VMS_OK);
    CHECK_EQ(vms_frames_free(fr, 384, 6, NULL), VMS_OK);
    vms_frames_stats_get(fr, &st);
    CHECK_EQ(st.free, 4 * GIB_PAGES);
    CHECK_EQ(st.free_blocks[18], 4);
    checked(fr);
    /* A whole GiB of firmware, then the next 1 GiB allocation skips it. */
    CHECK_EQ(vms_frames_reserve(fr, 0, GIB_PAGES, NULL), VMS_OK);
    CHECK_EQ(alloc_ok(fr, 18), GIB_PAGES);
    checked(fr);
    vms_frames_destroy(fr);
}

static void test_bad_input(void)
{
    vms_frames *fr = NULL;
    vms_err err = {0};
    const vms_frames_range over[] = {{0, 100}, {50, 100}};
    const vms_frames_range empty[] = {{0, 0}};
    const vms_frames_range huge[] = {{VMS_FRAMES_MAX_PFN - 10, 11}};
    vms_frames_config cfg = {over, 2, VMS_FRAMES_FIT_BUDDY, false};
    CHECK_EQ(vms_frames_create(NULL, &cfg, &fr, &err), VMS_ERR_INVAL);
    CHECK(strstr(err.msg, "overlap") != NULL);
    cfg.ranges = empty, cfg.nranges = 1;
    CHECK_EQ(vms_frames_create(NULL, &cfg, &fr, NULL), VMS_ERR_INVAL);
    cfg.ranges = huge;
    CHECK_EQ(vms_frames_create(NULL, &cfg, &fr, NULL), VMS_ERR_INVAL);
    cfg.nranges = 0;
    CHECK_EQ(vms_frames_create(NULL, &cfg, &fr, NULL), VMS_ERR_INVAL);
    cfg.ranges = over, cfg.nranges = 1, cfg.fit = (vms_frames_fit)7;
    CHECK_EQ(vms_frames_create(NULL, &cfg, &fr, NULL), VMS_ERR_INVAL);
    CHECK(fr == NULL);
    vms_frames_destroy(NULL);

    /* Adjacent ranges merge into one. */
    const vms_frames_range adj[] = {{512, 512}, {0, 512}};
    fr = make(NULL, adj, 2, VMS_FRAMES_FIT_BUDDY);
    if (!fr)
        return;
    size_t n = 0;
    CHECK_EQ(vms_frames_ranges(fr, &n)->npages, 1024);
    CHECK_EQ(n, 1);
    uint64_t pfn = 0;
    CHECK_EQ(vms_frames_alloc(fr, 19, &pfn, &err), VMS_ERR_INVAL);
    CHECK_EQ(vms_frames_alloc(fr, 11, &pfn, NULL), VMS_ERR_NOTFOUND);
    uint64_t p = alloc_ok(fr, 3);
    CHECK_EQ(vms_frames_free(fr, p, 2, NULL), VMS_ERR_INVAL);     /* wrong order */
    CHECK_EQ(vms_frames_free(fr, p, 19, NULL), VMS_ERR_INVAL);    /* order > max */
    CHECK_EQ(vms_frames_free(fr, p + 1, 0, NULL), VMS_ERR_INVAL); /* a tail */
    CHECK_EQ(vms_frames_free(fr, 500, 0, NULL), VMS_ERR_INVAL);   /* free frame */
    CHECK_EQ(vms_frames_free(fr, 1024, 0, NULL), VMS_ERR_INVAL);  /* beyond RAM */
    CHECK_EQ(vms_frames_free(fr, UINT64_MAX, 0, &err), VMS_ERR_INVAL);
    CHECK(err.msg[0] != 0);
    CHECK_EQ(vms_frames_free(fr, p, 3, NULL), VMS_OK);
    CHECK_EQ(vms_frames_free(fr, p, 3, NULL), VMS_ERR_INVAL); /* double free */
    CHECK_EQ(vms_frames_nfree(fr), 1024);
    CHECK(vms_frames_meta(fr, 1024) == NULL);
    CHECK(vms_frames_meta(fr, UINT64_MAX) == NULL);
    CHECK_EQ(vms_frames_head(fr, 5, NULL, NULL), VMS_ERR_INVAL);
    CHECK_EQ(vms_frames_get(fr, UINT64_MAX), VMS_ERR_INVAL);
    CHECK_EQ(vms_frames_pin(fr, 3000), VMS_ERR_INVAL);
    CHECK_EQ(vms_frames_reserve(fr, 1000, 100, NULL), VMS_ERR_INVAL);
    CHECK_EQ(vms_frames_reserve(fr, UINT64_MAX, 2, NULL), VMS_ERR_INVAL);
    CHECK_EQ(vms_frames_unreserve(fr, 5, 1, NULL), VMS_ERR_INVAL);
    checked(fr);
    vms_frames_destroy(fr);
}

/* ---- mobility grouping (migratetypes) ------------------------------------------ */

#define PB 512u /* frames per pageblock */

/* An allocator over one range [0, npages) with mobility grouping as given. */
static vms_frames *make_mob(uint64_t npages, bool mobility)
{
    vms_frames_range r = {0, npages};
    vms_frames_config cfg = {&r, 1, VMS_FRAMES_FIT_BUDDY, mobility};
    vms_frames *fr = NULL;
    CHECK_EQ(vms_frames_create(NULL, &cfg, &fr, NULL), VMS_OK);
    return fr;
}

static uint64_t alloc_mt_ok(vms_frames *fr, unsigned order, vms_migratetype mt)
{
    uint64_t pfn = UINT64_MAX;
    vms_err err = {0};
    vms_status st = vms_frames_alloc_mt(fr, order, mt, &pfn, &err);
    if (st != VMS_OK)
        fprintf(stderr, "alloc order %u type %d: %s\n", order, (int)mt, err.msg);
    CHECK_EQ(st, VMS_OK);
    return pfn;
}

static vms_frames_stats stats_of(const vms_frames *fr)
{
    vms_frames_stats st;
    vms_frames_stats_get(fr, &st);
    return st;
}

/* A fresh allocator: the first unmovable request finds no unmovable block, falls back to
 * the largest movable one (16 MiB, order 12), splits it to Linux's largest order (10)
 * and claims those two pageblocks; later unmovable requests stay there. */
static void test_mobility_claim(void)
{
    vms_frames *fr = make_mob(4096, true);
    if (!fr)
        return;
    CHECK(vms_frames_mobility(fr));
    CHECK_EQ(vms_frames_pageblock_type(fr, 0), VMS_MT_MOVABLE);
    CHECK_EQ(alloc_mt_ok(fr, 0, VMS_MT_UNMOVABLE), 0);
    vms_frames_stats st = stats_of(fr);
    CHECK_EQ(st.mt_fallback, 1);
    CHECK_EQ(st.mt_claimed, 2);
    CHECK_EQ(vms_frames_pageblock_type(fr, 0), VMS_MT_UNMOVABLE);
    CHECK_EQ(vms_frames_pageblock_type(fr, PB), VMS_MT_UNMOVABLE);
    CHECK_EQ(vms_frames_pageblock_type(fr, 2 * PB), VMS_MT_MOVABLE);
    uint64_t counts[VMS_MT_NTYPES];
    vms_frames_pageblocks(fr, counts);
    CHECK_EQ(counts[VMS_MT_UNMOVABLE], 2);
    CHECK_EQ(counts[VMS_MT_MOVABLE], 6);
    CHECK_EQ(counts[VMS_MT_RECLAIMABLE], 0);
    /* Movable requests take movable blocks only (the lowest of the smallest order: the
     * order-10 block at 1024), unmovable ones the claimed pageblocks. */
    CHECK_EQ(alloc_ok(fr, 0), 1024);
    CHECK_EQ(alloc_mt_ok(fr, 0, VMS_MT_UNMOVABLE), 1);
    CHECK_EQ(alloc_mt_ok(fr, 9, VMS_MT_UNMOVABLE), 512);
    CHECK_EQ(alloc_ok(fr, 9), 1536);
    CHECK_EQ(stats_of(fr).mt_fallback, 1);
    /* A fallback takes the largest free block of any fallback type (Linux scans the
     * orders from the top): for reclaimable the movable order-11 block at 2048, not the
     * unmovable frames at 2 …, split to order 10 and claimed (two more pageblocks). */
    CHECK_EQ(alloc_mt_ok(fr, 0, VMS_MT_RECLAIMABLE), 2048);
    CHECK_EQ(vms_frames_pageblock_type(fr, 2048), VMS_MT_RECLAIMABLE);
    CHECK_EQ(vms_frames_pageblock_type(fr, 2048 + PB), VMS_MT_RECLAIMABLE);
    CHECK_EQ(vms_frames_pageblock_type(fr, 3072), VMS_MT_MOVABLE);
    CHECK_EQ(stats_of(fr).mt_claimed, 4);
    /* The next reclaimable request is served from its own pageblocks. */
    CHECK_EQ(alloc_mt_ok(fr, 0, VMS_MT_RECLAIMABLE), 2049);
    checked(fr);
    vms_frames_destroy(fr);
}

/* Per order, the fallback types in Linux's fallbacks[] order: reclaimable takes an
 * unmovable block before a movable one of the same order. */
static void test_mobility_order(void)
{
    vms_frames *fr = make_mob(4096, true);
    if (!fr)
        return;
    CHECK_EQ(alloc_mt_ok(fr, 9, VMS_MT_UNMOVABLE), 0); /* claims 0-1023; 512 stays free */
    CHECK_EQ(alloc_ok(fr, 9), 1024);                   /* 1536: a free movable order 9 */
    CHECK_EQ(alloc_ok(fr, 11), 2048);
    vms_frames_stats st = stats_of(fr);
    CHECK_EQ(st.free_blocks[9], 2);
    CHECK_EQ(st.free, 1024);
    CHECK_EQ(alloc_mt_ok(fr, 0, VMS_MT_RECLAIMABLE), 512);
    CHECK_EQ(vms_frames_pageblock_type(fr, 512), VMS_MT_RECLAIMABLE);
    CHECK_EQ(vms_frames_pageblock_type(fr, 1536), VMS_MT_MOVABLE);
    checked(fr);
    vms_frames_destroy(fr);
}

/* A small block in another type's pageblock: claimed when the pageblock's free frames and
 * the frames alike the request reach half of it, otherwise taken alone. */
static void test_mobility_steal_small(void)
{
    vms_frames *fr = make_mob(4 * PB, true);
    if (!fr)
        return;
    static uint64_t pfns[4 * PB];
    for (unsigned i = 0; i < 4 * PB; i++) /* every frame movable, nothing claimed */
        pfns[i] = alloc_ok(fr, 0);
    CHECK_EQ(pfns[4 * PB - 1], 4 * PB - 1);
    CHECK_EQ(stats_of(fr).mt_fallback, 0);
    for (unsigned i = 0; i < PB; i += 4) /* 128 single free frames in pageblock 0 */
        CHECK_EQ(vms_frames_free(fr, i, 0, NULL), VMS_OK);
    /* Unmovable: free 128 + alike (neither free nor anon/file: 384) = 512: claimed. But
     * first mark the allocated frames anonymous, so that nothing is alike. */
    for (unsigned i = 0; i < 4 * PB; i++)
        if (i % 4 || i >= PB)
            CHECK_EQ(vms_frames_set_flags(fr, i, VMS_FRAME_ANON, 0), VMS_OK);
    CHECK_EQ(alloc_mt_ok(fr, 0, VMS_MT_UNMOVABLE), 0); /* single page: 128 < 256 */
    vms_frames_stats st = stats_of(fr);
    CHECK_EQ(st.mt_fallback, 1);
    CHECK_EQ(st.mt_claimed, 0);
    CHECK_EQ(vms_frames_pageblock_type(fr, 0), VMS_MT_MOVABLE);
    /* 128 more free frames in pageblock 1 and 128 unmarked (not anon) frames there:
     * free 128 + alike 128 = 256 reaches half: the pageblock is claimed. */
    for (unsigned i = PB; i < 2 * PB; i += 4)
        CHECK_EQ(vms_frames_free(fr, i, 0, NULL), VMS_OK);
    for (unsigned i = PB + 1; i < 2 * PB; i += 4)
        CHECK_EQ(vms_frames_set_flags(fr, i, 0, VMS_FRAME_ANON), VMS_OK);
    for (unsigned i = 4; i < PB; i += 4) /* pageblock 0 full again: it is the lowest */
        CHECK_EQ(vms_frames_alloc_at(fr, i, NULL), VMS_OK);
    CHECK_EQ(alloc_mt_ok(fr, 0, VMS_MT_UNMOVABLE), PB);
    st = stats_of(fr);
    CHECK_EQ(st.mt_fallback, 2);
    CHECK_EQ(st.mt_claimed, 1);
    CHECK_EQ(vms_frames_pageblock_type(fr, PB), VMS_MT_UNMOVABLE);
    CHECK_EQ(alloc_mt_ok(fr, 0, VMS_MT_UNMOVABLE), PB + 4); /* no fallback now */
    CHECK_EQ(stats_of(fr).mt_fallback, 2);
    /* Movable, with no movable block free: the largest unmovable block is order 0 (< 4:
     * may not steal), so it takes the smallest and the pageblock stays unmovable. */
    CHECK_EQ(alloc_ok(fr, 0), PB + 8);
    CHECK_EQ(vms_frames_pageblock_type(fr, PB), VMS_MT_UNMOVABLE);
    CHECK_EQ(stats_of(fr).mt_claimed, 1);
    checked(fr);
    vms_frames_destroy(fr);
}

/* A movable request that may not steal takes the smallest block, not the largest; one
 * that may (order >= 4) takes the largest. */
static void test_mobility_smallest(void)
{
    vms_frames *fr = make_mob(2 * PB, true);
    if (!fr)
        return;
    CHECK_EQ(alloc_mt_ok(fr, 0, VMS_MT_UNMOVABLE), 0); /* claims the order-10 block */
    for (unsigned i = 1; i < 2 * PB; i++)
        CHECK_EQ(vms_frames_alloc_mt(fr, 0, VMS_MT_UNMOVABLE, &(uint64_t){0}, NULL), VMS_OK);
    CHECK_EQ(vms_frames_nfree(fr), 0);
    uint64_t claimed = stats_of(fr).mt_claimed;
    /* Free an order-2 block at 8 and an order-0 frame at 100 (unmovable pageblock 0). */
    for (unsigned i = 8; i < 12; i++)
        CHECK_EQ(vms_frames_free(fr, i, 0, NULL), VMS_OK);
    CHECK_EQ(vms_frames_free(fr, 100, 0, NULL), VMS_OK);
    CHECK_EQ(alloc_ok(fr, 0), 100); /* find_smallest: the order-0 block */
    CHECK_EQ(stats_of(fr).mt_claimed, claimed);
    CHECK_EQ(alloc_ok(fr, 0), 8); /* then the order-2 one, split */
    /* An order-4 block in pageblock 1: a movable request may steal there, but the
     * pageblock holds 16 free frames and no movable page: not claimed. */
    for (unsigned i = PB + 32; i < PB + 48; i++)
        CHECK_EQ(vms_frames_free(fr, i, 0, NULL), VMS_OK);
    CHECK_EQ(alloc_ok(fr, 0), PB + 32);
    CHECK_EQ(vms_frames_pageblock_type(fr, PB), VMS_MT_UNMOVABLE);
    CHECK_EQ(stats_of(fr).mt_claimed, claimed);
    checked(fr);
    vms_frames_destroy(fr);
}

/* Freeing merges buddies of order 9 across types, the buddy taking the freed block's
 * type; buddies of order >= 10 of different types stay apart (Linux has no larger block).
 * The free scanner's alloc_at makes a half-pageblock or larger block movable. */
static void test_mobility_merge(void)
{
    vms_frames *fr = make_mob(4096, true);
    if (!fr)
        return;
    uint64_t a = alloc_mt_ok(fr, 9, VMS_MT_UNMOVABLE); /* claims pageblocks 0, 1 */
    CHECK_EQ(a, 0);
    CHECK_EQ(vms_frames_pageblock_type(fr, PB), VMS_MT_UNMOVABLE);
    CHECK_EQ(vms_frames_alloc_at(fr, PB, NULL), VMS_OK); /* __isolate_free_page */
    CHECK_EQ(vms_frames_pageblock_type(fr, PB), VMS_MT_MOVABLE);
    CHECK_EQ(vms_frames_free(fr, PB, 0, NULL), VMS_OK);
    vms_frames_stats st = stats_of(fr);
    CHECK_EQ(st.free_blocks[9], 1); /* pageblock 1, movable, beside the allocated 0 */
    checked(fr);
    CHECK_EQ(vms_frames_free(fr, a, 9, NULL), VMS_OK);
    CHECK_EQ(vms_frames_pageblock_type(fr, PB), VMS_MT_UNMOVABLE); /* matched the buddy */
    st = stats_of(fr);
    CHECK_EQ(st.free_blocks[10], 2); /* 0 (unmovable) and 1024 (movable): not merged */
    CHECK_EQ(st.free_blocks[11], 1);
    CHECK_EQ(st.free_blocks[12], 0);
    CHECK_EQ(st.free, 4096);
    checked(fr);
    /* An order-12 request finds no 16 MiB block of one type. */
    CHECK_EQ(vms_frames_alloc(fr, 12, &(uint64_t){0}, NULL), VMS_ERR_NOTFOUND);
    /* Take a frame from the unmovable order-10 block with alloc_at: both its pageblocks
     * become movable; freed again, everything merges into one movable block. */
    CHECK_EQ(vms_frames_alloc_at(fr, 3, NULL), VMS_OK);
    CHECK_EQ(vms_frames_pageblock_type(fr, 0), VMS_MT_MOVABLE);
    CHECK_EQ(vms_frames_pageblock_type(fr, PB), VMS_MT_MOVABLE);
    CHECK_EQ(vms_frames_free(fr, 3, 0, NULL), VMS_OK);
    CHECK_EQ(stats_of(fr).free_blocks[12], 1);
    checked(fr);
    vms_frames_destroy(fr);
}

/* Grouping off ignores the type; grouping on with movable requests only places exactly
 * as off (a seeded random sequence); mixed types keep every invariant. */
static void test_mobility_random(void)
{
    const uint64_t n = 8192;
    vms_frames *off = make_mob(n, false), *on = make_mob(n, true), *mix = make_mob(n, true);
    if (!off || !on || !mix)
        return;
    CHECK(!vms_frames_mobility(off));
    CHECK_EQ(alloc_mt_ok(off, 0, VMS_MT_UNMOVABLE), 0);
    CHECK_EQ(vms_frames_pageblock_type(off, 0), VMS_MT_MOVABLE);
    CHECK_EQ(stats_of(off).mt_fallback, 0);
    CHECK_EQ(vms_frames_free(off, 0, 0, NULL), VMS_OK);
    CHECK_EQ(vms_frames_alloc_mt(on, 0, (vms_migratetype)3, &(uint64_t){0}, NULL), VMS_ERR_INVAL);
    vms_rng g;
    vms_rng_seed(&g, th_seed + 11);
    static live lv[3][4000];
    size_t nl[3] = {0, 0, 0};
    vms_frames *frs[3] = {off, on, mix};
    bool same = true, ok = true;
    for (int op = 0; op < 3000 && ok; op++) {
        bool del = nl[0] && vms_rng_below(&g, 100) < 45;
        size_t victim = del ? (size_t)vms_rng_below(&g, nl[0]) : 0;
        unsigned order = rand_order(&g, 10);
        vms_migratetype mt = (vms_migratetype)vms_rng_below(&g, VMS_MT_NTYPES);
        uint64_t got[2] = {0, 0};
        for (int f = 0; f < 3; f++) {
            if (del && victim < nl[f]) {
                CHECK_EQ(vms_frames_free(frs[f], lv[f][victim].pfn, lv[f][victim].order, NULL),
                         VMS_OK);
                lv[f][victim] = lv[f][--nl[f]];
            } else if (!del) {
                uint64_t pfn = 0;
                vms_status st =
                    vms_frames_alloc_mt(frs[f], order, f == 2 ? mt : VMS_MT_MOVABLE, &pfn, NULL);
                if (st == VMS_OK)
                    lv[f][nl[f]++] = (live){pfn, order};
                if (f < 2)
                    got[f] = st == VMS_OK ? pfn : UINT64_MAX;
            }
        }
        same &= got[0] == got[1];
        ok = checked(mix) && checked(on);
    }
    CHECK(same);
    CHECK(stats_of(mix).mt_fallback > 0);
    for (int f = 0; f < 3; f++) {
        while (nl[f]) {
            nl[f]--;
            CHECK_EQ(vms_frames_free(frs[f], lv[f][nl[f]].pfn, lv[f][nl[f]].order, NULL), VMS_OK);
        }
        CHECK_EQ(vms_frames_nfree(frs[f]), n);
        checked(frs[f]);
        vms_frames_destroy(frs[f]);
    }
}

/* The /proc/pagetypeinfo view. */
static void test_pagetypeinfo(void)
{
    vms_frames *fr = make_mob(4096, true);
    if (!fr)
        return;
    alloc_mt_ok(fr, 0, VMS_MT_UNMOVABLE);
    vms_strbuf sb;
    vms_strbuf_init(&sb, NULL);
    CHECK_EQ(vms_frames_pagetypeinfo(fr, &sb), VMS_OK);
    const char *s = vms_strbuf_str(&sb);
    CHECK(!strncmp(s,
                   "Page block order: 9\nPages per block:  512\n\nFree pages count per migrate "
                   "type at order       0      1 ",
                   101));
    CHECK(strstr(s, "\nNode    0, zone     ram0, type    Unmovable      1      1      1      1 "
                    "     1      1      1      1      1      1      0 ") != NULL);
    CHECK(strstr(s, "\nNode    0, zone     ram0, type      Movable      0      0      0      0 "
                    "     0      0      0      0      0      0      1      1      0 ") != NULL);
    CHECK(strstr(s, "\n\nNumber of blocks type     Unmovable      Movable  Reclaimable \n"
                    "Node 0, zone     ram0            2            6            0 \n") != NULL);
    vms_strbuf_free(&sb);
    vms_frames_destroy(fr);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "frames");
    test_layout();
    test_lowest_first();
    test_fits();
    test_split_coalesce();
    test_alloc_at();
    test_alignment();
    test_holes();
    test_differential();
    test_scale();
    test_failalloc_create();
    test_failalloc_ops();
    test_fragmentation();
    test_buddyinfo_pc();
    test_refcount();
    test_flags();
    test_reserve();
    test_bad_input();
    test_mobility_claim();
    test_mobility_order();
    test_mobility_steal_small();
    test_mobility_smallest();
    test_mobility_merge();
    test_mobility_random();
    test_pagetypeinfo();
    return th_finish();
}
