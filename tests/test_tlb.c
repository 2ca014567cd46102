/*
 * test_tlb.c — the modelled TLB: a seeded differential test against a deliberately
 * naive reference (per-set arrays of explicit entries with LRU timestamps, MRU booleans,
 * FIFO pointers and the same seeded generator for "random"), textbook replacement cases,
 * splintering, every invalidation form, canonical high addresses, stats, geometry
 * errors, allocation-failure injection and the absent (nparts == 0) TLB.
 * vms_tlb_check runs after every operation of the differential test.
 */
#include "harness.h"
#include "vmsim/repl.h"
#include "vmsim/tlb.h"

#define SZ(s)    VMS_TLB_SIZE_BIT(s)
#define B4K      SZ(VMS_PG_4K)
#define B2M      SZ(VMS_PG_2M)
#define B1G      SZ(VMS_PG_1G)
#define VA57MASK ((UINT64_C(1) << 57) - 1)

/* ---- the naive reference ---- */

typedef struct ref_ent {
    bool valid;
    uint64_t base;   /* full linear base of the cached page (canonical) */
    vms_pgsize orig; /* size the translation had before splintering */
    uint16_t pcid;
    vms_xlate x;     /* as cached: x.size is the cached size, x.page_pa the piece's */
    long long stamp; /* LRU: time of last use */
    long long born;  /* FIFO: time of the fill that made the entry */
    bool mru;        /* PLRU: MRU bit */
} ref_ent;

typedef struct ref_part {
    unsigned sizes, sets, ways;
    const char *policy;
    ref_ent *e; /* sets * ways */
} ref_part;

typedef struct ref_tlb {
    unsigned nparts;
    ref_part part[VMS_TLB_MAX_PARTS];
    vms_rng rng;
    long long clock;
    vms_tlb_stats st;
} ref_tlb;

static void ref_init(ref_tlb *r, const vms_tlb_config *cfg, uint64_t seed)
{
    memset(r, 0, sizeof *r);
    r->nparts = cfg->nparts;
    vms_rng_seed(&r->rng, seed);
    for (unsigned i = 0; i < cfg->nparts; i++) {
        ref_part *p = &r->part[i];
        p->sizes = cfg->part[i].sizes;
        p->sets = cfg->part[i].sets;
        p->ways = cfg->part[i].ways;
        p->policy = cfg->part[i].policy ? cfg->part[i].policy : "lru";
        p->e = calloc((size_t)p->sets * p->ways, sizeof *p->e);
        for (unsigned k = 0; k < p->sets * p->ways; k++)
            p->e[k].stamp = p->e[k].born = -(long long)(k % p->ways); /* last way oldest */
    }
}

static void ref_free(ref_tlb *r)
{
    for (unsigned i = 0; i < r->nparts; i++)
        free(r->part[i].e);
}

static int ref_part_of(const ref_tlb *r, vms_pgsize s)
{
    for (unsigned i = 0; i < r->nparts; i++)
        if (r->part[i].sizes & SZ(s))
            return (int)i;
    return -1;
}

static uint64_t base_of(uint64_t va, vms_pgsize s)
{
    return va & ~(vms_pgsize_bytes(s) - 1);
}

static unsigned ref_set(const ref_part *p, uint64_t va, vms_pgsize s)
{
    return (unsigned)(((va & VA57MASK) >> vms_pgsize_shift(s)) % p->sets);
}

static bool ref_is_policy(const ref_part *p, const char *name)
{
    return strcmp(p->policy, name) == 0;
}

/* Record a use of way w of set s (hit says whether FIFO should ignore it). */
static void ref_touch(ref_tlb *r, ref_part *p, unsigned s, unsigned w, bool hit)
{
    ref_ent *row = &p->e[s * p->ways];
    row[w].stamp = ++r->clock;
    row[w].mru = true;
    bool all = true;
    for (unsigned k = 0; k < p->ways; k++)
        all &= row[k].mru;
    if (all)
        for (unsigned k = 0; k < p->ways; k++)
            row[k].mru = k == w;
    if (!hit)
        row[w].born = r->clock;
}

static ref_ent *ref_find(ref_tlb *r, uint16_t pcid, uint64_t va, ref_part **pp, unsigned *ps,
                         unsigned *pw)
{
    for (unsigned s = 0; s < VMS_PG_NSIZES; s++) {
        int i = ref_part_of(r, (vms_pgsize)s);
        if (i < 0)
            continue;
        ref_part *p = &r->part[i];
        unsigned set = ref_set(p, va, (vms_pgsize)s);
        for (unsigned w = 0; w < p->ways; w++) {
            ref_ent *e = &p->e[set * p->ways + w];
            if (e->valid && e->x.size == (vms_pgsize)s && e->base == base_of(va, (vms_pgsize)s) &&
                (e->pcid == pcid || e->x.global)) {
                *pp = p;
                *ps = set;
                *pw = w;
                return e;
            }
        }
    }
    return NULL;
}

static bool ref_lookup(ref_tlb *r, uint16_t pcid, uint64_t va, vms_xlate *out)
{
    ref_part *p;
    unsigned s, w;
    r->st.lookups++;
    ref_ent *e = ref_find(r, pcid, va, &p, &s, &w);
    if (!e) {
        r->st.misses++;
        return false;
    }
    ref_touch(r, p, s, w, true);
    *out = e->x;
    r->st.hits++;
    r->st.hits_by_size[e->x.size]++;
    return true;
}

/* The way a fill takes when nothing conflicts: an invalid one, else the victim. */
static unsigned ref_victim(ref_tlb *r, ref_part *p, unsigned set, bool *evicted)
{
    ref_ent *row = &p->e[set * p->ways];
    *evicted = false;
    for (unsigned w = 0; w < p->ways; w++)
        if (!row[w].valid)
            return w;
    *evicted = true;
    if (ref_is_policy(p, "fifo")) { /* the first filled of the (all valid) ways */
        unsigned v = 0;
        for (unsigned w = 1; w < p->ways; w++)
            if (row[w].born < row[v].born)
                v = w;
        return v;
    }
    if (ref_is_policy(p, "random"))
        return (unsigned)vms_rng_below(&r->rng, p->ways);
    if (ref_is_policy(p, "plru")) {
        for (unsigned w = 0; w < p->ways; w++)
            if (!row[w].mru)
                return w;
        return 0;
    }
    unsigned v = 0;
    for (unsigned w = 1; w < p->ways; w++)
        if (row[w].stamp < row[v].stamp)
            v = w;
    return v;
}

static bool ref_fill(ref_tlb *r, uint16_t pcid, uint64_t va, const vms_xlate *x)
{
    int t = -1;
    for (int s = 0; s <= (int)x->size; s++)
        if (ref_part_of(r, (vms_pgsize)s) >= 0)
            t = s;
    if (t < 0)
        return false;
    vms_pgsize ts = (vms_pgsize)t;
    ref_part *p = &r->part[ref_part_of(r, ts)];
    unsigned set = ref_set(p, va, ts);
    ref_ent *row = &p->e[set * p->ways];
    int way = -1;
    for (unsigned w = 0; w < p->ways; w++) {
        ref_ent *e = &row[w];
        if (e->valid && e->x.size == ts && e->base == base_of(va, ts) &&
            (e->pcid == pcid || e->x.global || x->global)) {
            if (way < 0)
                way = (int)w;
            else
                e->valid = false;
        }
    }
    bool hit = way >= 0, evicted = false;
    if (way < 0)
        way = (int)ref_victim(r, p, set, &evicted);
    ref_ent *e = &row[way];
    e->valid = true;
    e->base = base_of(va, ts);
    e->orig = x->size;
    e->pcid = pcid;
    e->x = *x;
    e->x.size = ts;
    e->x.page_pa = x->page_pa + (base_of(va, ts) - base_of(va, x->size));
    ref_touch(r, p, set, (unsigned)way, hit);
    r->st.fills++;
    r->st.evictions += evicted;
    return true;
}

static void ref_set_dirty(ref_tlb *r, uint16_t pcid, uint64_t va)
{
    ref_part *p;
    unsigned s, w;
    ref_ent *e = ref_find(r, pcid, va, &p, &s, &w);
    if (e)
        e->x.dirty = 1;
}

/* Drop entries: mode 0 flush_va, 1 flush_pcid, 2 flush_all. */
static void ref_flush(ref_tlb *r, int mode, uint16_t pcid, uint64_t va, bool global_flag)
{
    for (unsigned i = 0; i < r->nparts; i++) {
        ref_part *p = &r->part[i];
        for (unsigned k = 0; k < p->sets * p->ways; k++) {
            ref_ent *e = &p->e[k];
            if (!e->valid)
                continue;
            bool drop;
            if (mode == 0)
                drop = base_of(e->base, e->orig) == base_of(va, e->orig) &&
                       (e->x.global ? global_flag : e->pcid == pcid);
            else if (mode == 1)
                drop = !e->x.global && e->pcid == pcid;
            else
                drop = !(global_flag && e->x.global);
            if (drop) {
                e->valid = false;
                r->st.invalidations++;
            }
        }
    }
}

static unsigned ref_count(const ref_tlb *r)
{
    unsigned n = 0;
    for (unsigned i = 0; i < r->nparts; i++)
        for (unsigned k = 0; k < r->part[i].sets * r->part[i].ways; k++)
            n += r->part[i].e[k].valid;
    return n;
}

/* ---- comparison helpers ---- */

static bool xlate_eq(const vms_xlate *a, const vms_xlate *b)
{
    return a->page_pa == b->page_pa && a->size == b->size && !a->rw == !b->rw && !a->us == !b->us &&
           !a->xd == !b->xd && !a->global == !b->global && !a->dirty == !b->dirty &&
           a->pkey == b->pkey && !a->pcd == !b->pcd && !a->pwt == !b->pwt;
}

static bool stats_eq(const vms_tlb_stats *a, const vms_tlb_stats *b)
{
    bool ok = a->lookups == b->lookups && a->hits == b->hits && a->misses == b->misses &&
              a->fills == b->fills && a->evictions == b->evictions &&
              a->invalidations == b->invalidations;
    for (unsigned s = 0; s < VMS_PG_NSIZES; s++)
        ok &= a->hits_by_size[s] == b->hits_by_size[s];
    return ok;
}

/* Every valid entry of the TLB, in (part, set, way) order, equals the reference's. */
static bool contents_eq(const vms_tlb *tlb, const ref_tlb *r)
{
    unsigned i = 0;
    for (unsigned pi = 0; pi < r->nparts; pi++) {
        const ref_part *p = &r->part[pi];
        for (unsigned k = 0; k < p->sets * p->ways; k++) {
            const ref_ent *e = &p->e[k];
            if (!e->valid)
                continue;
            vms_tlb_entry_info info;
            if (!vms_tlb_entry(tlb, i++, &info))
                return false;
            if (info.part != pi || info.set != k / p->ways || info.way != k % p->ways ||
                info.va != e->base || info.ctx != e->pcid || !xlate_eq(&info.x, &e->x))
                return false;
        }
    }
    vms_tlb_entry_info info;
    return !vms_tlb_entry(tlb, i, &info);
}

/* ---- the differential test ---- */

/* Canonical bases: low and high halves for 4-level, and a 5-level-only one. */
static const uint64_t bases[] = {UINT64_C(0x0000000000000000), UINT64_C(0x00007fff80000000),
                                 UINT64_C(0xffff800000000000), UINT64_C(0xff00000000000000),
                                 UINT64_C(0x00ff000000000000)};

/* A random address near one of the bases, in a span of npages 4K pages. */
static uint64_t rand_va(vms_rng *g, unsigned npages)
{
    uint64_t va = bases[vms_rng_below(g, 5)];
    va += vms_rng_below(g, 4) * vms_pgsize_bytes(VMS_PG_1G);
    va += vms_rng_below(g, 4) * vms_pgsize_bytes(VMS_PG_2M);
    va += vms_rng_below(g, npages) * VMS_PAGE_SIZE;
    return va + vms_rng_below(g, VMS_PAGE_SIZE);
}

static vms_xlate rand_xlate(vms_rng *g)
{
    vms_xlate x;
    memset(&x, 0, sizeof x);
    x.size = (vms_pgsize)vms_rng_below(g, VMS_PG_NSIZES);
    x.page_pa = (vms_rng_next(g) & UINT64_C(0x000FFFFFFFFFF000)) & ~(vms_pgsize_bytes(x.size) - 1);
    uint64_t bits = vms_rng_next(g);
    x.rw = bits & 1;
    x.us = (bits >> 1) & 1;
    x.xd = (bits >> 2) & 1;
    x.dirty = (bits >> 3) & 1;
    x.pcd = (bits >> 4) & 1;
    x.pwt = (bits >> 5) & 1;
    x.pkey = (uint8_t)((bits >> 8) & 15);
    x.global = ((bits >> 16) & 7) == 0; /* one in eight */
    return x;
}

typedef struct diff_ctx {
    vms_tlb *tlb;
    ref_tlb ref;
    vms_rng g;
    uint64_t recent[64]; /* recently filled addresses, so lookups hit */
    unsigned nrecent;
    unsigned npages;
    bool churn; /* flush by PCID and whole TLB now and then */
} diff_ctx;

static uint64_t pick_va(diff_ctx *c)
{
    if (c->nrecent && vms_rng_below(&c->g, 2))
        return c->recent[vms_rng_below(&c->g, c->nrecent < 64 ? c->nrecent : 64)];
    return rand_va(&c->g, c->npages);
}

/* One random operation on both models; false on the first disagreement. */
static bool diff_step(diff_ctx *c)
{
    uint16_t pcid = (uint16_t)vms_rng_below(&c->g, 4);
    uint64_t va = pick_va(c);
    unsigned op = (unsigned)vms_rng_below(&c->g, 1000);
    if (!c->churn && op >= 970)
        op = 500; /* fill-heavy runs: no whole-TLB flushes, so sets fill and evict */
    vms_xlate a, b;
    if (op < 400) {
        bool ha = vms_tlb_lookup(c->tlb, pcid, va, &a), hb = ref_lookup(&c->ref, pcid, va, &b);
        return ha == hb && (!ha || xlate_eq(&a, &b));
    }
    if (op < 480) {
        ref_part *p;
        unsigned set, way;
        const ref_ent *e = ref_find(&c->ref, pcid, va, &p, &set, &way);
        bool ha = vms_tlb_probe(c->tlb, pcid, va, &a);
        return ha == (e != NULL) && (!ha || xlate_eq(&a, &e->x));
    }
    if (op < 830) {
        vms_xlate x = rand_xlate(&c->g);
        c->recent[c->nrecent++ % 64] = va;
        return vms_tlb_fill(c->tlb, pcid, va, &x) == ref_fill(&c->ref, pcid, va, &x);
    }
    if (op < 870) {
        vms_tlb_set_dirty(c->tlb, pcid, va);
        ref_set_dirty(&c->ref, pcid, va);
        return true;
    }
    if (op < 970) {
        bool g = vms_rng_below(&c->g, 2);
        vms_tlb_flush_va(c->tlb, pcid, va, g);
        ref_flush(&c->ref, 0, pcid, va, g);
        return true;
    }
    if (op < 990) {
        vms_tlb_flush_pcid(c->tlb, pcid);
        ref_flush(&c->ref, 1, pcid, 0, false);
        return true;
    }
    bool keep = vms_rng_below(&c->g, 2);
    vms_tlb_flush_all(c->tlb, keep);
    ref_flush(&c->ref, 2, 0, 0, keep);
    return true;
}

/* Run nops random operations on cfg with policy `policy` in every partition. */
static void diff_run(const char *name, vms_tlb_config cfg, const char *policy, bool churn)
{
    diff_ctx c;
    memset(&c, 0, sizeof c);
    for (unsigned i = 0; i < cfg.nparts; i++)
        cfg.part[i].policy = policy;
    uint64_t seed = th_seed ^ (uint64_t)strlen(name) * 7919u ^ (uint64_t)strlen(policy);
    REQUIRE_VOID(vms_tlb_create(NULL, &cfg, seed, &c.tlb, NULL) == VMS_OK);
    ref_init(&c.ref, &cfg, seed);
    vms_rng_seed(&c.g, seed + 1);
    c.npages = 2 * vms_tlb_capacity(c.tlb) + 8;
    c.churn = churn;
    unsigned nops = 4000 + (churn ? 0 : 4 * vms_tlb_capacity(c.tlb));
    unsigned i;
    bool ok = true;
    for (i = 0; i < nops && ok; i++) {
        ok = diff_step(&c) && vms_tlb_check(c.tlb) && vms_tlb_count(c.tlb) == ref_count(&c.ref);
        if (ok && (i % 97 == 0 || i + 1 == nops))
            ok = contents_eq(c.tlb, &c.ref) && stats_eq(vms_tlb_get_stats(c.tlb), &c.ref.st);
    }
    if (!ok)
        fprintf(stderr, "tlb differential %s/%s/%s: mismatch at op %u\n", name, policy,
                churn ? "churn" : "fill", i - 1);
    CHECK(ok);
    /* The run must have exercised what it claims to. */
    const vms_tlb_stats *st = vms_tlb_get_stats(c.tlb);
    CHECK(st->hits > 0 && st->misses > 0 && st->fills > 0 && st->invalidations > 0);
    if (!churn && st->evictions == 0)
        fprintf(stderr, "tlb differential %s/%s: no evictions\n", name, policy);
    CHECK(churn || st->evictions > 0);
    vms_tlb_destroy(c.tlb);
    ref_free(&c.ref);
}

static vms_tlb_config geom(unsigned n, const vms_tlb_part_config *parts)
{
    vms_tlb_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.nparts = n;
    for (unsigned i = 0; i < n; i++)
        cfg.part[i] = parts[i];
    return cfg;
}

static void test_differential(void)
{
    static const char *const pols[] = {"lru", "plru", "fifo", "random"};
    const vms_tlb_part_config l1d[] = {{B4K, 16, 4, NULL}, {B2M, 8, 4, NULL}, {B1G, 1, 4, NULL}};
    const vms_tlb_part_config stlb[] = {{B4K | B2M, 128, 12, NULL}, {B1G, 1, 16, NULL}};
    const vms_tlb_part_config odd[] = {{B4K, 6, 3, NULL}, {B2M, 5, 2, NULL}};
    const vms_tlb_part_config only4k[] = {{B4K, 4, 2, NULL}};
    const vms_tlb_part_config mixed[] = {{B1G | B4K, 3, 5, NULL}};
    const vms_tlb_part_config only2m[] = {{B2M, 2, 2, NULL}};
    const vms_tlb_part_config full[] = {{VMS_TLB_SIZES_ALL, 1, 64, NULL}};
    const struct {
        const char *name;
        vms_tlb_config cfg;
    } g[] = {
        {"l1d", geom(3, l1d)},        {"stlb-128x12", geom(2, stlb)}, {"odd-6x3", geom(2, odd)},
        {"4k-only", geom(1, only4k)}, {"4k+1g-3x5", geom(1, mixed)},  {"2m-only", geom(1, only2m)},
        {"full-1x64", geom(1, full)},
    };
    for (unsigned i = 0; i < sizeof g / sizeof g[0]; i++)
        for (unsigned p = 0; p < 4; p++)
            for (int churn = 0; churn < 2; churn++)
                diff_run(g[i].name, g[i].cfg, pols[p], churn);
}

/* ---- exact behaviours ---- */

/* A 4K translation of page number n: page_pa = n * 4K + 1 GiB, rw/us set. */
static vms_xlate x4k(uint64_t pa)
{
    vms_xlate x;
    memset(&x, 0, sizeof x);
    x.page_pa = pa;
    x.size = VMS_PG_4K;
    x.rw = x.us = 1;
    return x;
}

static vms_tlb *make1(const char *policy, unsigned sizes, unsigned sets, unsigned ways)
{
    vms_tlb_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.nparts = 1;
    cfg.part[0] = (vms_tlb_part_config){sizes, sets, ways, policy};
    vms_tlb *tlb = NULL;
    vms_status st = vms_tlb_create(NULL, &cfg, th_seed, &tlb, NULL);
    CHECK_EQ(st, VMS_OK);
    return tlb;
}

static bool present(const vms_tlb *tlb, vms_ctx pcid, uint64_t va)
{
    vms_xlate x;
    return vms_tlb_probe(tlb, pcid, va, &x);
}

/* Fill pages 0 … n-1 (one set, 4K) into tlb. */
static void fill_pages(vms_tlb *tlb, unsigned first, unsigned n)
{
    for (unsigned i = first; i < first + n; i++) {
        vms_xlate x = x4k((uint64_t)(i + 1) << 12);
        CHECK(vms_tlb_fill(tlb, 0, (uint64_t)i << 12, &x));
    }
}

static void test_textbook(void)
{
    vms_xlate x;
    /* LRU: after A B C D and a hit on A, E evicts B. */
    vms_tlb *tlb = make1("lru", B4K, 1, 4);
    REQUIRE_VOID(tlb);
    fill_pages(tlb, 0, 4);
    CHECK(vms_tlb_lookup(tlb, 0, 0x0000, &x));
    fill_pages(tlb, 4, 1);
    CHECK(present(tlb, 0, 0x0000) && !present(tlb, 0, 0x1000) && present(tlb, 0, 0x2000));
    CHECK_EQ(vms_tlb_get_stats(tlb)->evictions, 1);
    vms_tlb_destroy(tlb);

    /* FIFO: the same sequence evicts A, the first in, despite its hit. */
    tlb = make1("fifo", B4K, 1, 4);
    REQUIRE_VOID(tlb);
    fill_pages(tlb, 0, 4);
    CHECK(vms_tlb_lookup(tlb, 0, 0x0000, &x));
    fill_pages(tlb, 4, 1);
    CHECK(!present(tlb, 0, 0x0000) && present(tlb, 0, 0x1000));
    fill_pages(tlb, 5, 1); /* then B */
    CHECK(!present(tlb, 0, 0x1000) && present(tlb, 0, 0x2000));
    vms_tlb_destroy(tlb);
    /* FIFO after an invalidation: A B C D in, INVLPG B, E refills B's way; then F
     * evicts A and G evicts C, in insertion order (a round-robin pointer, moved past
     * the hole by E's fill, evicted C first). */
    tlb = make1("fifo", B4K, 1, 4);
    REQUIRE_VOID(tlb);
    fill_pages(tlb, 0, 4);
    vms_tlb_flush_va(tlb, 0, 0x1000, true);
    fill_pages(tlb, 4, 1);
    fill_pages(tlb, 5, 1);
    CHECK(!present(tlb, 0, 0x0000) && present(tlb, 0, 0x2000) && present(tlb, 0, 0x4000));
    fill_pages(tlb, 6, 1);
    CHECK(!present(tlb, 0, 0x2000) && present(tlb, 0, 0x3000) && present(tlb, 0, 0x4000));
    vms_tlb_destroy(tlb);

    /* PLRU, 12 ways: filling all 12 leaves only way 11's MRU bit; hits on ways 0-3
     * then make way 4 the victim. */
    tlb = make1("plru", B4K, 1, 12);
    REQUIRE_VOID(tlb);
    fill_pages(tlb, 0, 12);
    for (unsigned i = 0; i < 4; i++)
        CHECK(vms_tlb_lookup(tlb, 0, (uint64_t)i << 12, &x));
    fill_pages(tlb, 12, 1);
    CHECK(!present(tlb, 0, 4 << 12));
    for (unsigned i = 0; i < 12; i++)
        if (i != 4)
            CHECK(present(tlb, 0, (uint64_t)i << 12));
    vms_tlb_entry_info info;
    bool found = false;
    for (unsigned i = 0; vms_tlb_entry(tlb, i, &info); i++)
        found |= info.va == (12 << 12) && info.way == 4;
    CHECK(found);
    vms_tlb_destroy(tlb);
}

/* A fill for a page already cached updates it in place; no duplicates, no eviction. */
static void test_update_in_place(void)
{
    vms_tlb *tlb = make1("lru", B4K, 1, 2);
    REQUIRE_VOID(tlb);
    vms_xlate x = x4k(0x5000), y = x4k(0x9000), out;
    CHECK(vms_tlb_fill(tlb, 1, 0x7000, &x));
    CHECK(vms_tlb_fill(tlb, 1, 0x7abc, &y));
    CHECK_EQ(vms_tlb_count(tlb), 1);
    CHECK(vms_tlb_lookup(tlb, 1, 0x7000, &out) && out.page_pa == 0x9000);
    CHECK(vms_tlb_fill(tlb, 2, 0x7000, &x)); /* another PCID: a separate entry */
    CHECK_EQ(vms_tlb_count(tlb), 2);
    y.global = 1; /* a global fill supersedes both PCIDs' entries */
    CHECK(vms_tlb_fill(tlb, 3, 0x7000, &y));
    CHECK_EQ(vms_tlb_count(tlb), 1);
    CHECK(vms_tlb_lookup(tlb, 9, 0x7000, &out) && out.global && out.page_pa == 0x9000);
    CHECK_EQ(vms_tlb_get_stats(tlb)->evictions, 0);
    CHECK(vms_tlb_check(tlb));
    vms_tlb_destroy(tlb);
}

/*
 * The miss record (tlb_impl.h): after a probe's miss of (ctx, page) and no fill since, a
 * non-global fill of that page skips the conflict scan and a flush_va of it in that
 * context skips the scan. Each check below fails if one condition of the shortcut is
 * dropped on purpose (the fill's clear, !global, the context, any_space, splinters).
 */
static void test_miss_record(void)
{
    vms_tlb *tlb = make1("lru", B4K, 1, 4);
    REQUIRE_VOID(tlb);
    vms_xlate x = x4k(0x5000), y = x4k(0x9000), out;
    /* A fill clears the record: the second fill of the page is an update in place. */
    CHECK(!vms_tlb_lookup(tlb, 1, 0x7000, &out));
    CHECK(vms_tlb_fill(tlb, 1, 0x7000, &x));
    CHECK(vms_tlb_fill(tlb, 1, 0x7abc, &y));
    CHECK_EQ(vms_tlb_count(tlb), 1);
    CHECK(vms_tlb_check(tlb));
    /* ... and a flush after the fill still drops the entry. */
    CHECK(!vms_tlb_lookup(tlb, 1, 0x8000, &out));
    CHECK(vms_tlb_fill(tlb, 1, 0x8000, &x));
    vms_tlb_flush_va(tlb, 1, 0x8000, true);
    CHECK(!present(tlb, 1, 0x8000));
    CHECK_EQ(vms_tlb_count(tlb), 1);
    /* A global fill after another context's miss supersedes the other PCID's entry. */
    CHECK(vms_tlb_fill(tlb, 2, 0x9000, &x));
    CHECK(!vms_tlb_lookup(tlb, 3, 0x9000, &out));
    y.global = 1;
    CHECK(vms_tlb_fill(tlb, 3, 0x9000, &y));
    y.global = 0;
    CHECK_EQ(vms_tlb_count(tlb), 2);
    CHECK(vms_tlb_check(tlb));
    CHECK(vms_tlb_lookup(tlb, 2, 0x9000, &out) && out.global && out.page_pa == 0x9000);
    /* A miss in one context says nothing of another's entries. */
    CHECK(vms_tlb_fill(tlb, 2, 0xa000, &x));
    CHECK(!vms_tlb_lookup(tlb, 1, 0xa000, &out));
    vms_tlb_flush_va(tlb, 2, 0xa000, true);
    CHECK(!present(tlb, 2, 0xa000));
    CHECK(vms_tlb_fill(tlb, 2, 0xa000, &x));
    CHECK(!vms_tlb_lookup(tlb, 0, 0xa000, &out)); /* flush_va_any's match has context 0 */
    vms_tlb_flush_va_any(tlb, 0xa000);            /* every context of the VM */
    CHECK(!present(tlb, 2, 0xa000));
    /* Nor does a 4 KiB miss say anything of another piece of a splintered page. */
    vms_tlb_flush_all(tlb, false);
    vms_xlate big = x4k(UINT64_C(0x80000000));
    big.size = VMS_PG_2M;
    const uint64_t va = UINT64_C(0x7f0000400000);
    CHECK(vms_tlb_fill(tlb, 1, va + 0x3000, &big));
    CHECK(!vms_tlb_lookup(tlb, 1, va + 0x1000, &out));
    vms_tlb_flush_va(tlb, 1, va + 0x1000, true);
    CHECK(!present(tlb, 1, va + 0x3000));
    CHECK_EQ(vms_tlb_count(tlb), 0);
    /* With no splinter left (a whole flush recounts), a miss then a flush drops nothing. */
    CHECK(vms_tlb_fill(tlb, 1, 0xb000, &x));
    uint64_t inv = vms_tlb_get_stats(tlb)->invalidations;
    CHECK(!vms_tlb_lookup(tlb, 1, 0xc000, &out));
    vms_tlb_flush_va(tlb, 1, 0xc000, true);
    CHECK_EQ(vms_tlb_get_stats(tlb)->invalidations, inv);
    CHECK(present(tlb, 1, 0xb000));
    CHECK(vms_tlb_check(tlb));
    vms_tlb_destroy(tlb);
}

static void test_splinter(void)
{
    vms_xlate x, out;
    memset(&x, 0, sizeof x);
    x.size = VMS_PG_2M;
    x.page_pa = UINT64_C(0x80000000);
    x.rw = 1;
    vms_tlb *tlb = make1("lru", B4K, 8, 4);
    REQUIRE_VOID(tlb);
    const uint64_t va = UINT64_C(0x7f0000400000) + 0x5123;
    CHECK(vms_tlb_fill(tlb, 0, va, &x));
    CHECK(vms_tlb_lookup(tlb, 0, va, &out));
    CHECK_EQ(out.size, VMS_PG_4K);
    CHECK_EQ(out.page_pa, UINT64_C(0x80005000));
    CHECK_EQ(vms_xlate_pa(&out, va), UINT64_C(0x80005123));
    CHECK(!present(tlb, 0, va + 0x1000)); /* only the piece containing va */
    CHECK(vms_tlb_fill(tlb, 0, va - 0x5123 + 0x1ff000, &x));
    CHECK(vms_tlb_lookup(tlb, 0, va - 0x5123 + 0x1ff000, &out) &&
          out.page_pa == UINT64_C(0x801ff000));
    CHECK(vms_tlb_fill(tlb, 0, va - 0x5123 + 0x200000, &x)); /* the next 2M page */
    CHECK_EQ(vms_tlb_count(tlb), 3);
    /* INVLPG of any address of the 2M page drops every piece (SDM, INVLPG note 1),
     * but not the next 2M page's entry. */
    vms_tlb_flush_va(tlb, 0, va - 0x5123 + 0x100000, true);
    CHECK_EQ(vms_tlb_count(tlb), 1);
    CHECK(present(tlb, 0, va - 0x5123 + 0x200000));
    CHECK(vms_tlb_check(tlb));
    vms_tlb_destroy(tlb);

    /* 1G into a TLB of 4K and 2M: the 2M piece; a 4K translation into 2M-only fails. */
    vms_tlb_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.nparts = 2;
    cfg.part[0] = (vms_tlb_part_config){B4K, 4, 4, NULL};
    cfg.part[1] = (vms_tlb_part_config){B2M, 2, 2, "fifo"};
    REQUIRE_VOID(vms_tlb_create(NULL, &cfg, 1, &tlb, NULL) == VMS_OK);
    x.size = VMS_PG_1G;
    x.page_pa = UINT64_C(0x40000000);
    CHECK(vms_tlb_fill(tlb, 0, UINT64_C(0xffff800000000000) + 0x2345678, &x));
    CHECK(vms_tlb_lookup(tlb, 0, UINT64_C(0xffff800000000000) + 0x2200000, &out));
    CHECK_EQ(out.size, VMS_PG_2M);
    CHECK_EQ(out.page_pa, UINT64_C(0x42200000));
    vms_tlb_destroy(tlb);
    tlb = make1("lru", B2M, 1, 2);
    REQUIRE_VOID(tlb);
    vms_xlate small = x4k(0x3000);
    CHECK(!vms_tlb_fill(tlb, 0, 0x3000, &small));
    CHECK_EQ(vms_tlb_count(tlb), 0);
    CHECK_EQ(vms_tlb_get_stats(tlb)->fills, 0);
    vms_tlb_destroy(tlb);
}

/* Every invalidation form, with globals and several PCIDs (SDM Vol. 3A §4.10.4.1). */
static void test_invalidation(void)
{
    vms_tlb *tlb = make1("lru", VMS_TLB_SIZES_ALL, 4, 8);
    REQUIRE_VOID(tlb);
    const uint64_t A = 0x10000, B = 0x20000, G = 0x30000;
    vms_xlate x = x4k(0x1000), g = x4k(0x2000), out;
    g.global = 1;
    /* A and B for PCIDs 1 and 2; G global (filled under PCID 1). */
    vms_tlb_fill(tlb, 1, A, &x);
    vms_tlb_fill(tlb, 2, A, &x);
    vms_tlb_fill(tlb, 1, B, &x);
    vms_tlb_fill(tlb, 2, B, &x);
    vms_tlb_fill(tlb, 1, G, &g);
    CHECK_EQ(vms_tlb_count(tlb), 5);
    CHECK(vms_tlb_lookup(tlb, 7, G, &out) && out.global); /* global: any PCID */
    CHECK(!vms_tlb_lookup(tlb, 7, A, &out));

    /* INVPCID type 0 (with_global false): only PCID 1's A; G stays. */
    vms_tlb_flush_va(tlb, 1, A + 0x123, false);
    CHECK(!present(tlb, 1, A) && present(tlb, 2, A));
    vms_tlb_flush_va(tlb, 1, G, false);
    CHECK(present(tlb, 1, G));
    /* INVLPG (with_global true) drops the global entry from any PCID. */
    vms_tlb_flush_va(tlb, 2, G, true);
    CHECK(!present(tlb, 1, G) && !present(tlb, 2, G));
    CHECK_EQ(vms_tlb_get_stats(tlb)->invalidations, 2);

    /* flush_pcid keeps globals and other PCIDs. */
    vms_tlb_fill(tlb, 1, G, &g);
    vms_tlb_flush_pcid(tlb, 2);
    CHECK(!present(tlb, 2, A) && !present(tlb, 2, B) && present(tlb, 1, B));
    CHECK(present(tlb, 2, G));
    /* flush_all(keep_global) keeps only G; flush_all(false) empties. */
    vms_tlb_flush_all(tlb, true);
    CHECK_EQ(vms_tlb_count(tlb), 1);
    CHECK(present(tlb, 5, G));
    vms_tlb_flush_all(tlb, false);
    CHECK_EQ(vms_tlb_count(tlb), 0);
    CHECK_EQ(vms_tlb_get_stats(tlb)->invalidations, 2 + 2 + 1 + 1);

    /* flush_va checks every size: a 2M and a 1G entry covering the address go too. */
    vms_xlate big;
    memset(&big, 0, sizeof big);
    big.size = VMS_PG_2M;
    vms_tlb_fill(tlb, 0, 0x40000000, &big);
    big.size = VMS_PG_1G;
    vms_tlb_fill(tlb, 0, 0x40000000, &big);
    vms_tlb_fill(tlb, 0, 0x40000000, &x);
    CHECK_EQ(vms_tlb_count(tlb), 3);
    vms_tlb_flush_va(tlb, 0, 0x40000fff, true);
    CHECK_EQ(vms_tlb_count(tlb), 0);
    CHECK(vms_tlb_check(tlb));
    vms_tlb_destroy(tlb);
}

/*
 * The context tag (vms_ctx): ASIDs wider than x86's 12-bit PCID, and VMs. A global
 * entry serves every address space of its own VM and no other VM; invalidation in one
 * VM never drops another's entries.
 */
static void test_contexts(void)
{
    vms_tlb *tlb = make1("lru", VMS_TLB_SIZES_ALL, 4, 8);
    REQUIRE_VOID(tlb);
    const uint64_t A = 0x10000, G = 0x30000;
    const vms_ctx wide = 0xFFFF, wide2 = 0xFFFF + 1, vm1a = vms_ctx_make(1, 5),
                  vm1b = vms_ctx_make(1, 6), vm2a = vms_ctx_make(2, 5);
    vms_xlate x = x4k(0x1000), g = x4k(0x2000), out;
    g.global = 1;
    /* ASIDs above 4095 are distinct contexts, not aliases of their low 12 bits. */
    CHECK(vms_tlb_fill(tlb, wide, A, &x));
    CHECK(vms_tlb_lookup(tlb, wide, A, &out));
    CHECK(!vms_tlb_lookup(tlb, wide & 0xFFF, A, &out));
    CHECK(!vms_tlb_lookup(tlb, wide2, A, &out));
    vms_tlb_flush_pcid(tlb, wide);
    CHECK_EQ(vms_tlb_count(tlb), 0);

    /* The same page and ASID in two VMs and the host: three entries, no conflict. */
    vms_tlb_fill(tlb, vm1a, A, &x);
    vms_tlb_fill(tlb, vm2a, A, &x);
    vms_tlb_fill(tlb, 5, A, &x);
    CHECK_EQ(vms_tlb_count(tlb), 3);
    /* A global entry of VM 1: every ASID of VM 1, not VM 2, not the host. */
    vms_tlb_fill(tlb, vm1a, G, &g);
    CHECK(vms_tlb_lookup(tlb, vm1b, G, &out) && out.global);
    CHECK(!vms_tlb_lookup(tlb, vm2a, G, &out));
    CHECK(!vms_tlb_lookup(tlb, 5, G, &out));
    /* A global fill in VM 2 does not supersede VM 1's global entry. */
    vms_tlb_fill(tlb, vm2a, G, &g);
    CHECK_EQ(vms_tlb_count(tlb), 5);
    /* INVLPG in VM 1 (with globals) drops VM 1's entries only. */
    vms_tlb_flush_va(tlb, vm1b, G, true);
    CHECK(!present(tlb, vm1a, G) && present(tlb, vm2a, G));
    vms_tlb_flush_va(tlb, vm1a, A, true);
    CHECK(!present(tlb, vm1a, A) && present(tlb, vm2a, A) && present(tlb, 5, A));
    /* sfence.vma va, x0 (every ASID) is the host's: the VMs' entries stay. */
    vms_tlb_flush_va_any(tlb, A);
    CHECK(!present(tlb, 5, A) && present(tlb, vm2a, A));
    /* A context flush names one VM's address space. */
    vms_tlb_flush_pcid(tlb, vm2a);
    CHECK(!present(tlb, vm2a, A) && present(tlb, vm2a, G));
    CHECK(vms_tlb_check(tlb));
    vms_tlb_destroy(tlb);
}

/* Canonical high addresses: no aliasing of sign bits, entries report canonical va. */
static void test_canonical(void)
{
    vms_tlb *tlb = make1("lru", B4K, 16, 4);
    REQUIRE_VOID(tlb);
    const uint64_t hi = UINT64_C(0xffff800000000000), lo = UINT64_C(0x0000800000000000);
    const uint64_t hi5 = UINT64_C(0xff00000000000000), lo5 = 0; /* differ only in 63:56 */
    vms_xlate a = x4k(0x1000), b = x4k(0x2000), out;
    CHECK(vms_tlb_fill(tlb, 0, hi, &a));
    CHECK(!present(tlb, 0, lo));
    CHECK(!present(tlb, 0, UINT64_C(0xfeff800000000000))); /* 5-level: another page */
    CHECK(vms_tlb_lookup(tlb, 0, hi + 0xfff, &out) && out.page_pa == 0x1000);
    CHECK(vms_tlb_fill(tlb, 0, hi5, &b));
    CHECK(!present(tlb, 0, lo5));
    CHECK(vms_tlb_lookup(tlb, 0, hi5 + 8, &out) && out.page_pa == 0x2000);
    CHECK(vms_tlb_fill(tlb, 0, UINT64_C(0xfffffffffffff000), &b)); /* the very last page */
    CHECK(!present(tlb, 0, UINT64_C(0x00fffffffffff000)));
    vms_tlb_entry_info info;
    bool seen_hi = false, seen_top = false;
    for (unsigned i = 0; vms_tlb_entry(tlb, i, &info); i++) {
        seen_hi |= info.va == hi;
        seen_top |= info.va == UINT64_C(0xfffffffffffff000);
    }
    CHECK(seen_hi && seen_top);
    vms_tlb_flush_va(tlb, 0, lo, true); /* must not drop hi */
    CHECK(present(tlb, 0, hi));
    CHECK(vms_tlb_check(tlb));
    vms_tlb_destroy(tlb);
}

static void test_stats_and_dirty(void)
{
    vms_tlb_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.nparts = 2;
    cfg.part[0] = (vms_tlb_part_config){B4K, 1, 1, NULL};
    cfg.part[1] = (vms_tlb_part_config){B2M | B1G, 1, 2, NULL};
    vms_tlb *tlb;
    REQUIRE_VOID(vms_tlb_create(NULL, &cfg, 0, &tlb, NULL) == VMS_OK);
    CHECK_EQ(vms_tlb_capacity(tlb), 3);
    vms_xlate x = x4k(0x1000), big, out;
    memset(&big, 0, sizeof big);
    big.size = VMS_PG_2M;
    vms_tlb_fill(tlb, 0, 0x1000, &x);
    vms_tlb_fill(tlb, 0, 0x2000, &x); /* evicts 0x1000 */
    vms_tlb_fill(tlb, 0, 0x40000000, &big);
    vms_tlb_lookup(tlb, 0, 0x1000, &out);     /* miss */
    vms_tlb_lookup(tlb, 0, 0x2000, &out);     /* 4K hit */
    vms_tlb_lookup(tlb, 0, 0x40012345, &out); /* 2M hit */
    vms_tlb_lookup(tlb, 0, 0x40012345, &out);
    vms_tlb_probe(tlb, 0, 0x2000, &out); /* counts nothing */
    const vms_tlb_stats *st = vms_tlb_get_stats(tlb);
    CHECK_EQ(st->lookups, 4);
    CHECK_EQ(st->hits, 3);
    CHECK_EQ(st->misses, 1);
    CHECK_EQ(st->hits_by_size[VMS_PG_4K], 1);
    CHECK_EQ(st->hits_by_size[VMS_PG_2M], 2);
    CHECK_EQ(st->hits_by_size[VMS_PG_1G], 0);
    CHECK_EQ(st->fills, 3);
    CHECK_EQ(st->evictions, 1);
    CHECK_EQ(st->invalidations, 0);
    /* set_dirty marks the cached entry (PCID or global), nothing else. */
    CHECK(vms_tlb_probe(tlb, 0, 0x40000000, &out) && !out.dirty);
    vms_tlb_set_dirty(tlb, 0, 0x40000abc);
    CHECK(vms_tlb_probe(tlb, 0, 0x40000000, &out) && out.dirty);
    vms_tlb_set_dirty(tlb, 1, 0x2000); /* another PCID: no entry */
    CHECK(vms_tlb_probe(tlb, 0, 0x2000, &out) && !out.dirty);
    CHECK_EQ(st->lookups, 4);
    /* A lookup after set_dirty sees D: set_dirty drops the repeat memo of the lookup
     * before it (which still says clean). */
    CHECK(vms_tlb_lookup(tlb, 0, 0x2008, &out) && !out.dirty);
    vms_tlb_set_dirty(tlb, 0, 0x2010);
    CHECK(vms_tlb_lookup(tlb, 0, 0x2018, &out) && out.dirty);
    vms_tlb_reset_stats(tlb);
    CHECK_EQ(st->lookups + st->hits + st->fills + st->evictions, 0);
    CHECK_EQ(vms_tlb_count(tlb), 2); /* contents kept */
    vms_tlb_destroy(tlb);
}

/* A bad configuration is VMS_ERR_INVAL with a message naming the partition. */
static void bad(const vms_tlb_config *cfg, const char *want)
{
    vms_err err;
    memset(&err, 0, sizeof err);
    vms_tlb *tlb = (vms_tlb *)&err; /* must be reset to NULL */
    CHECK_EQ(vms_tlb_create(NULL, cfg, 0, &tlb, &err), VMS_ERR_INVAL);
    CHECK(tlb == NULL);
    CHECK_EQ(err.status, VMS_ERR_INVAL);
    if (!strstr(err.msg, want))
        fprintf(stderr, "message \"%s\" lacks \"%s\"\n", err.msg, want);
    CHECK(strstr(err.msg, want) != NULL);
}

static void test_bad_configs(void)
{
    vms_tlb_config ok, c;
    memset(&ok, 0, sizeof ok);
    ok.nparts = 2;
    ok.part[0] = (vms_tlb_part_config){B4K, 16, 4, NULL};
    ok.part[1] = (vms_tlb_part_config){B2M, 8, 4, "plru"};
    vms_tlb *tlb;
    CHECK_EQ(vms_tlb_create(NULL, &ok, 0, &tlb, NULL), VMS_OK);
    vms_tlb_destroy(tlb);
    vms_tlb_destroy(NULL);

    c = ok, c.part[1].sets = 0, bad(&c, "partition 1: sets");
    c = ok, c.part[1].ways = 0, bad(&c, "partition 1: ways");
    c = ok, c.part[0].ways = VMS_TLB_MAX_WAYS + 1, bad(&c, "partition 0: ways must be 1..64");
    c = ok, c.part[0].sets = VMS_TLB_MAX_ENTRIES, bad(&c, "partition 0: 1048576 sets x 4 ways");
    c = ok, c.part[1].sizes = 0, bad(&c, "partition 1: sizes");
    c = ok, c.part[1].sizes = 0x8, bad(&c, "partition 1: sizes");
    c = ok, c.part[1].sizes = B2M | B4K, bad(&c, "partition 1: page sizes 0x1 are already held");
    c = ok, c.part[0].policy = "lfu", bad(&c, "partition 0: unknown replacement policy \"lfu\"");
    c = ok, c.nparts = VMS_TLB_MAX_PARTS + 1, bad(&c, "5 partitions");
    bad(NULL, "no configuration");
}

/* Fail the 1st, 2nd, … allocation of create: NOMEM, no leak; then it succeeds. */
static void test_failalloc(void)
{
    vms_tlb_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.nparts = 3;
    cfg.part[0] = (vms_tlb_part_config){B4K, 16, 4, "lru"};
    cfg.part[1] = (vms_tlb_part_config){B2M, 8, 4, "random"}; /* no state block */
    cfg.part[2] = (vms_tlb_part_config){B1G, 1, 4, "plru"};
    long budget;
    for (budget = 0; budget < 20; budget++) {
        th_failalloc fa;
        const vms_allocator *a = th_failalloc_init(&fa, budget);
        vms_tlb *tlb = NULL;
        vms_err err;
        vms_status st = vms_tlb_create(a, &cfg, 0, &tlb, &err);
        if (st == VMS_OK) {
            CHECK(fa.failures == 0);
            /* The hot path and invalidations never allocate. */
            unsigned long allocs = fa.allocs;
            fa.budget = 0;
            vms_xlate x = x4k(0x1000), out;
            for (uint64_t va = 0; va < 0x100000; va += 0x1000) {
                vms_tlb_fill(tlb, 0, va, &x);
                vms_tlb_lookup(tlb, 0, va, &out);
            }
            vms_tlb_flush_va(tlb, 0, 0, true);
            vms_tlb_flush_all(tlb, false);
            CHECK_EQ(fa.allocs, allocs);
            CHECK_EQ(fa.failures, 0);
            vms_tlb_destroy(tlb);
            CHECK_EQ(fa.live_bytes, 0);
            break;
        }
        CHECK_EQ(st, VMS_ERR_NOMEM);
        CHECK_EQ(err.status, VMS_ERR_NOMEM);
        CHECK(tlb == NULL);
        CHECK_EQ(fa.live_bytes, 0);
    }
    CHECK_EQ(budget, 6); /* the TLB, then entries+state, entries, entries+state */
}

/* nparts == 0: a valid, absent TLB. */
static void test_absent(void)
{
    vms_tlb_config cfg;
    memset(&cfg, 0, sizeof cfg);
    vms_tlb *tlb;
    REQUIRE_VOID(vms_tlb_create(NULL, &cfg, 0, &tlb, NULL) == VMS_OK);
    vms_xlate x = x4k(0x1000), out;
    CHECK(!vms_tlb_fill(tlb, 0, 0x1000, &x));
    CHECK(!vms_tlb_lookup(tlb, 0, 0x1000, &out));
    CHECK_EQ(vms_tlb_capacity(tlb), 0);
    CHECK_EQ(vms_tlb_count(tlb), 0);
    CHECK_EQ(vms_tlb_get_stats(tlb)->misses, 1);
    vms_tlb_flush_va(tlb, 0, 0x1000, true);
    vms_tlb_flush_pcid(tlb, 0);
    vms_tlb_flush_all(tlb, false);
    CHECK(!vms_tlb_entry(tlb, 0, &(vms_tlb_entry_info){0}));
    CHECK(vms_tlb_check(tlb));
    vms_tlb_destroy(tlb);
}

/* Same seed, same evictions under "random". */
static void test_determinism(void)
{
    vms_tlb *t[2];
    for (int k = 0; k < 2; k++) {
        t[k] = make1("random", B4K, 2, 4);
        REQUIRE_VOID(t[k]);
        vms_rng g;
        vms_rng_seed(&g, th_seed);
        for (int i = 0; i < 1000; i++) {
            vms_xlate x = x4k(vms_rng_below(&g, 64) << 12);
            vms_tlb_fill(t[k], 0, vms_rng_below(&g, 64) << 12, &x);
        }
    }
    bool same = vms_tlb_count(t[0]) == vms_tlb_count(t[1]);
    vms_tlb_entry_info a, b;
    for (unsigned i = 0; vms_tlb_entry(t[0], i, &a); i++)
        same &= vms_tlb_entry(t[1], i, &b) && a.va == b.va && a.way == b.way &&
                a.x.page_pa == b.x.page_pa;
    CHECK(same);
    CHECK(vms_tlb_get_stats(t[0])->evictions > 0);
    vms_tlb_destroy(t[0]);
    vms_tlb_destroy(t[1]);
}

/*
 * The memo after a fill (tlb_impl.h, vmsi_tlb_memo_clear_fill): a fill clears the slots
 * of its own set only, plus its page's slot; a fill of an entry larger than 4 KiB clears
 * them all. Each lookup (through the memo) must answer as the probe (no memo) does: a
 * memo slot of a page that a smaller entry now covers must not answer with the larger.
 */
static void memo_fill_case(const char *policy, bool own_page)
{
    const vms_tlb_part_config parts[] = {
        {B4K, 16, 4, policy}, {B2M, 8, 4, policy}, {B1G, 1, 4, policy}};
    vms_tlb_config cfg = geom(3, parts);
    vms_tlb *tlb = NULL;
    REQUIRE_VOID(vms_tlb_create(NULL, &cfg, th_seed, &tlb, NULL) == VMS_OK);
    const uint64_t g = UINT64_C(0x80000000); /* 1 GiB-aligned */
    vms_xlate big = x4k(UINT64_C(0x40000000)), mid = x4k(UINT64_C(0x20000000)),
              small = x4k(UINT64_C(0x12345000)), got, want;
    big.size = VMS_PG_1G;
    mid.size = VMS_PG_2M;
    /* A 4K page of a 2M entry, looked up (its memo slot), then given its own 4K entry:
     * the fill's set (partition 4K) is not the slot's (partition 2M). */
    uint64_t va = g + (own_page ? 0x5000 : 0x7000);
    CHECK(vms_tlb_fill(tlb, 0, g, &mid));
    CHECK(vms_tlb_lookup(tlb, 0, va, &got) && got.size == VMS_PG_2M);
    CHECK(vms_tlb_fill(tlb, 0, va, &small));
    CHECK(vms_tlb_lookup(tlb, 0, va, &got) && vms_tlb_probe(tlb, 0, va, &want));
    CHECK_EQ(got.size, VMS_PG_4K);
    CHECK_EQ(got.page_pa, want.page_pa);
    /* A 4K page of a 1G entry, looked up, then a 2M entry filled for another page of the
     * same 2M region (another memo slot): the 2M entry answers first now. */
    uint64_t other = g + UINT64_C(0x40000000) + 0x3000, at = g + UINT64_C(0x40000000) + 0x9000;
    CHECK(vms_tlb_fill(tlb, 0, g + UINT64_C(0x40000000), &big));
    CHECK(vms_tlb_lookup(tlb, 0, other, &got) && got.size == VMS_PG_1G);
    CHECK(vms_tlb_fill(tlb, 0, own_page ? other : at, &mid));
    CHECK(vms_tlb_lookup(tlb, 0, other, &got) && vms_tlb_probe(tlb, 0, other, &want));
    CHECK_EQ(got.size, VMS_PG_2M);
    CHECK_EQ(got.page_pa, want.page_pa);
    /* Slots of other sets keep answering (and count their hits) across fills. */
    for (unsigned i = 0; i < 64; i++) {
        uint64_t a = UINT64_C(0x100000000) + ((uint64_t)(i % 8) << 12);
        vms_xlate x = x4k(UINT64_C(0x300000000) + ((uint64_t)(i % 8) << 12));
        if (i < 8)
            CHECK(vms_tlb_fill(tlb, 0, a, &x));
        vms_xlate f = x4k(UINT64_C(0x400000000) + ((uint64_t)i << 12));
        CHECK(vms_tlb_fill(tlb, 0, UINT64_C(0x200000000) + ((uint64_t)(8 + i % 8) << 12), &f));
        CHECK(vms_tlb_lookup(tlb, 0, a, &got) && vms_tlb_probe(tlb, 0, a, &want));
        CHECK_EQ(got.page_pa, want.page_pa);
    }
    CHECK(vms_tlb_check(tlb));
    vms_tlb_destroy(tlb);
}

static void test_memo_fill(void)
{
    static const char *const pols[] = {"lru", "plru", "fifo", "random"};
    for (unsigned p = 0; p < 4; p++)
        for (int own = 0; own < 2; own++)
            memo_fill_case(pols[p], own);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "tlb");
    test_memo_fill();
    test_textbook();
    test_update_in_place();
    test_splinter();
    test_miss_record();
    test_invalidation();
    test_contexts();
    test_canonical();
    test_stats_and_dirty();
    test_bad_configs();
    test_failalloc();
    test_absent();
    test_determinism();
    th_soak("VMS_TLB_SOAK", test_differential);
    return th_finish();
}
