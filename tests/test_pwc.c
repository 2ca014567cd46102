/*
 * test_pwc.c — the page-walk caches: deepest-level lookup, rights carried in entries,
 * PCID tagging and the flush forms, absent levels, 4- vs 5-level keys, LRU at a
 * level, geometry errors, allocation-failure injection, and a seeded random test
 * against a naive never-evicting model (vms_pwc_check after every operation).
 */
#include "harness.h"
#include "vmsim/core.h"
#include "vmsim/events.h"
#include "vmsim/pwc.h"
#include "vmsim/rng.h"

#define GIB (UINT64_C(1) << 30)
#define MIB (UINT64_C(1) << 20)

/* A typical configuration: PDE 32 fully associative, PDPTE 4, PML4E 2, PML5E 2. */
static vms_pwc_config typical(void)
{
    vms_pwc_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.level[2] = (vms_pwc_level_config){32, 32, NULL};
    cfg.level[3] = (vms_pwc_level_config){4, 4, NULL};
    cfg.level[4] = (vms_pwc_level_config){2, 2, NULL};
    cfg.level[5] = (vms_pwc_level_config){2, 2, NULL};
    return cfg;
}

static vms_pwc_entry ent(uint64_t table_pa, uint8_t rw, uint8_t us, uint8_t xd)
{
    return (vms_pwc_entry){table_pa, rw, us, xd};
}

static void test_deepest(void)
{
    vms_pwc_config cfg = typical();
    vms_pwc *pwc;
    REQUIRE_VOID(vms_pwc_create(NULL, &cfg, 4, 1, &pwc, NULL) == VMS_OK);
    const uint64_t va = UINT64_C(0x00007f1234567000);
    vms_pwc_entry e4 = ent(0x4000, 1, 1, 0), e3 = ent(0x3000, 1, 0, 0), e2 = ent(0x2000, 0, 0, 1);
    vms_pwc_entry out;
    CHECK_EQ(vms_pwc_lookup(pwc, 0, va, &out), 0);
    vms_pwc_fill(pwc, 0, va, 4, &e4);
    vms_pwc_fill(pwc, 0, va, 3, &e3);
    vms_pwc_fill(pwc, 0, va, 2, &e2);
    memset(&out, 0xff, sizeof out);
    CHECK_EQ(vms_pwc_lookup(pwc, 0, va + 0x1000, &out), 2); /* same 2M region */
    CHECK_EQ(out.table_pa, 0x2000);
    CHECK(out.rw == 0 && out.us == 0 && out.xd == 1);
    CHECK_EQ(vms_pwc_lookup(pwc, 0, va + 2 * MIB, &out), 3); /* same 1G, other 2M */
    CHECK(out.table_pa == 0x3000 && out.rw == 1 && out.us == 0 && out.xd == 0);
    CHECK_EQ(vms_pwc_lookup(pwc, 0, va + GIB, &out), 4); /* same 512G, other 1G */
    CHECK(out.table_pa == 0x4000 && out.rw == 1 && out.us == 1 && out.xd == 0);
    CHECK_EQ(vms_pwc_lookup(pwc, 0, va + 512 * GIB, &out), 0);
    CHECK_EQ(vms_pwc_lookup(pwc, 1, va, &out), 0); /* another PCID */
    const vms_pwc_stats *st = vms_pwc_get_stats(pwc);
    CHECK_EQ(st->lookups, 6);
    CHECK_EQ(st->hits[2], 1);
    CHECK_EQ(st->hits[3], 1);
    CHECK_EQ(st->hits[4], 1);
    CHECK_EQ(st->misses, 3);
    CHECK_EQ(st->fills, 3);
    /* Level 5 does not exist with 4-level paging: its fill is a no-op. */
    vms_pwc_fill(pwc, 0, va, 5, &e4);
    CHECK_EQ(vms_pwc_count(pwc, 5), 0);
    CHECK_EQ(st->fills, 3);
    CHECK(vms_pwc_check(pwc));
    vms_pwc_destroy(pwc);
}

static void test_rights_roundtrip(void)
{
    vms_pwc_config cfg = typical();
    vms_pwc *pwc;
    REQUIRE_VOID(vms_pwc_create(NULL, &cfg, 4, 1, &pwc, NULL) == VMS_OK);
    for (unsigned r = 0; r < 8; r++) {
        uint64_t va = (uint64_t)r << 21, pa = UINT64_C(0x000ffffffffff000) - ((uint64_t)r << 12);
        vms_pwc_entry e = ent(pa, r & 1, (r >> 1) & 1, (r >> 2) & 1), out;
        vms_pwc_fill(pwc, 3, va, 2, &e);
        CHECK_EQ(vms_pwc_lookup(pwc, 3, va, &out), 2);
        CHECK(out.table_pa == pa && out.rw == (r & 1) && out.us == ((r >> 1) & 1) &&
              out.xd == ((r >> 2) & 1));
    }
    /* A refill of the same key replaces the entry (no duplicate). */
    vms_pwc_entry e = ent(0x5000, 1, 1, 1), out;
    vms_pwc_fill(pwc, 3, 0, 2, &e);
    CHECK_EQ(vms_pwc_count(pwc, 2), 8);
    CHECK(vms_pwc_lookup(pwc, 3, 0, &out) == 2 && out.table_pa == 0x5000);
    CHECK(vms_pwc_check(pwc));
    vms_pwc_destroy(pwc);
}

static void test_flush(void)
{
    vms_pwc_config cfg = typical();
    vms_pwc *pwc;
    REQUIRE_VOID(vms_pwc_create(NULL, &cfg, 5, 1, &pwc, NULL) == VMS_OK);
    vms_pwc_entry e = ent(0x1000, 1, 1, 0), out;
    for (uint16_t pcid = 1; pcid <= 2; pcid++)
        for (unsigned l = 2; l <= 5; l++)
            vms_pwc_fill(pwc, pcid, 0x1000, l, &e);
    for (unsigned l = 2; l <= 5; l++)
        CHECK_EQ(vms_pwc_count(pwc, l), 2);
    vms_pwc_flush_pcid(pwc, 1);
    CHECK_EQ(vms_pwc_lookup(pwc, 1, 0x1000, &out), 0);
    CHECK_EQ(vms_pwc_lookup(pwc, 2, 0x1000, &out), 2);
    for (unsigned l = 2; l <= 5; l++)
        CHECK_EQ(vms_pwc_count(pwc, l), 1);
    CHECK_EQ(vms_pwc_get_stats(pwc)->invalidations, 4);
    vms_pwc_flush_all(pwc);
    for (unsigned l = 0; l <= 5; l++)
        CHECK_EQ(vms_pwc_count(pwc, l), 0);
    CHECK_EQ(vms_pwc_get_stats(pwc)->invalidations, 8);
    CHECK_EQ(vms_pwc_lookup(pwc, 2, 0x1000, &out), 0);
    CHECK(vms_pwc_check(pwc));
    vms_pwc_destroy(pwc);
}

/* A level with 0 entries is absent: fills are no-ops and lookups skip it. */
static void test_absent_level(void)
{
    vms_pwc_config cfg = typical();
    cfg.level[2].entries = 0;
    vms_pwc *pwc;
    REQUIRE_VOID(vms_pwc_create(NULL, &cfg, 4, 1, &pwc, NULL) == VMS_OK);
    vms_pwc_entry e2 = ent(0x2000, 1, 1, 0), e3 = ent(0x3000, 1, 1, 0), out;
    vms_pwc_fill(pwc, 0, 0, 2, &e2);
    CHECK_EQ(vms_pwc_count(pwc, 2), 0);
    CHECK_EQ(vms_pwc_lookup(pwc, 0, 0, &out), 0);
    vms_pwc_fill(pwc, 0, 0, 3, &e3);
    CHECK(vms_pwc_lookup(pwc, 0, 0, &out) == 3 && out.table_pa == 0x3000);
    CHECK_EQ(vms_pwc_get_stats(pwc)->fills, 1);
    vms_pwc_destroy(pwc);

    /* No caches at all: every lookup misses. */
    memset(&cfg, 0, sizeof cfg);
    REQUIRE_VOID(vms_pwc_create(NULL, &cfg, 5, 1, &pwc, NULL) == VMS_OK);
    vms_pwc_fill(pwc, 0, 0, 4, &e3);
    CHECK_EQ(vms_pwc_lookup(pwc, 0, 0, &out), 0);
    CHECK(vms_pwc_check(pwc));
    vms_pwc_destroy(pwc);
}

/* VA bits 56:48 take part in keys only with 5-level paging. */
static void test_key_width(void)
{
    const uint64_t va = UINT64_C(0x0000123456600000), far = va | (UINT64_C(1) << 48);
    vms_pwc_config cfg = typical();
    vms_pwc_entry e = ent(0x2000, 1, 1, 0), out;
    vms_pwc *p4, *p5;
    REQUIRE_VOID(vms_pwc_create(NULL, &cfg, 4, 1, &p4, NULL) == VMS_OK);
    REQUIRE_VOID(vms_pwc_create(NULL, &cfg, 5, 1, &p5, NULL) == VMS_OK);
    vms_pwc_fill(p4, 0, va, 2, &e);
    vms_pwc_fill(p5, 0, va, 2, &e);
    CHECK_EQ(vms_pwc_lookup(p4, 0, far, &out), 2);
    CHECK_EQ(vms_pwc_lookup(p5, 0, far, &out), 0);
    /* Canonical high half: bit 47 keeps it apart from the low half in 4-level mode. */
    vms_pwc_fill(p4, 0, UINT64_C(0xffff800000000000), 4, &e);
    CHECK_EQ(vms_pwc_lookup(p4, 0, UINT64_C(0x0000000000000000), &out), 0);
    CHECK_EQ(vms_pwc_lookup(p4, 0, UINT64_C(0xffff8000deadb000), &out), 4);
    /* The PML5E cache keys on VA[56:48]: bit 47 does not matter, bit 48 does. */
    vms_pwc_fill(p5, 0, va, 5, &e);
    CHECK_EQ(vms_pwc_lookup(p5, 0, va ^ (UINT64_C(1) << 47), &out), 5);
    CHECK_EQ(vms_pwc_lookup(p5, 0, va ^ (UINT64_C(1) << 56), &out), 0);
    CHECK(vms_pwc_check(p4) && vms_pwc_check(p5));
    vms_pwc_destroy(p4);
    vms_pwc_destroy(p5);
}

/* LRU at one level: A, B, hit A, C evicts B. */
static void test_replacement(void)
{
    vms_pwc_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.level[2] = (vms_pwc_level_config){2, 2, "lru"};
    vms_pwc *pwc;
    REQUIRE_VOID(vms_pwc_create(NULL, &cfg, 4, 1, &pwc, NULL) == VMS_OK);
    vms_pwc_entry e = ent(0x1000, 1, 1, 0), out;
    vms_pwc_fill(pwc, 0, 0 * 2 * MIB, 2, &e);
    vms_pwc_fill(pwc, 0, 1 * 2 * MIB, 2, &e);
    CHECK_EQ(vms_pwc_lookup(pwc, 0, 0, &out), 2);
    vms_pwc_fill(pwc, 0, 2 * 2 * MIB, 2, &e);
    CHECK_EQ(vms_pwc_lookup(pwc, 0, 0, &out), 2);
    CHECK_EQ(vms_pwc_lookup(pwc, 0, 2 * MIB, &out), 0);
    CHECK_EQ(vms_pwc_lookup(pwc, 0, 4 * MIB, &out), 2);
    CHECK_EQ(vms_pwc_count(pwc, 2), 2);
    vms_pwc_destroy(pwc);
}

static void bad(const vms_pwc_config *cfg, unsigned levels, const char *want)
{
    vms_err err;
    memset(&err, 0, sizeof err);
    vms_pwc *pwc = (vms_pwc *)&err;
    CHECK_EQ(vms_pwc_create(NULL, cfg, levels, 0, &pwc, &err), VMS_ERR_INVAL);
    CHECK(pwc == NULL);
    if (!strstr(err.msg, want))
        fprintf(stderr, "message \"%s\" lacks \"%s\"\n", err.msg, want);
    CHECK(strstr(err.msg, want) != NULL);
}

static void test_bad_configs(void)
{
    vms_pwc_config ok = typical(), c;
    bad(&ok, 2, "levels must be 3, 4 or 5"); /* 3: RISC-V Sv39 */
    bad(&ok, 6, "levels must be 3, 4 or 5");
    bad(NULL, 4, "no configuration");
    c = ok, c.level[2].entries = 30, bad(&c, 4, "level 2: 30 entries is not a multiple of 32");
    c = ok, c.level[3].ways = 0, bad(&c, 4, "level 3: ways");
    c = ok, c.level[3] = (vms_pwc_level_config){512, 512, NULL}, bad(&c, 4, "level 3: ways");
    c = ok, c.level[4].policy = "mru", bad(&c, 4, "level 4: unknown replacement policy");
    c = ok, c.level[1] = (vms_pwc_level_config){4, 4, NULL}, bad(&c, 4, "level 1");
    c = ok, c.level[5].policy = "nope", bad(&c, 4, "level 5"); /* validated in 4-level too */
    vms_pwc_destroy(NULL);
}

static void test_failalloc(void)
{
    vms_pwc_config cfg = typical();
    cfg.level[3].policy = "random"; /* no state block */
    long budget;
    for (budget = 0; budget < 20; budget++) {
        th_failalloc fa;
        vms_pwc *pwc = NULL;
        vms_err err;
        vms_status st = vms_pwc_create(th_failalloc_init(&fa, budget), &cfg, 5, 0, &pwc, &err);
        if (st == VMS_OK) {
            vms_pwc_destroy(pwc);
            CHECK_EQ(fa.live_bytes, 0);
            break;
        }
        CHECK_EQ(st, VMS_ERR_NOMEM);
        CHECK_EQ(err.status, VMS_ERR_NOMEM);
        CHECK(pwc == NULL);
        CHECK_EQ(fa.live_bytes, 0);
    }
    CHECK_EQ(budget, 1 + 2 + 1 + 2 + 2); /* the PWC, then each level's blocks */
}

/* ---- random test against a naive, never-evicting model ---- */

typedef struct naive_ent {
    unsigned level;
    uint64_t vbase; /* va with the bits below the level cleared, masked to the VA width */
    uint16_t pcid;
    vms_pwc_entry e;
} naive_ent;

static uint64_t naive_base(uint64_t va, unsigned level, unsigned levels)
{
    uint64_t width = levels == 5 ? 57 : 48;
    uint64_t region = UINT64_C(1) << (12 + 9 * (level - 1));
    return (va & ((UINT64_C(1) << width) - 1)) & ~(region - 1);
}

static unsigned naive_lookup(const naive_ent *t, unsigned n, unsigned levels, uint16_t pcid,
                             uint64_t va, vms_pwc_entry *out)
{
    for (unsigned l = 2; l <= levels; l++)
        for (unsigned i = 0; i < n; i++)
            if (t[i].level == l && t[i].pcid == pcid && t[i].vbase == naive_base(va, l, levels)) {
                *out = t[i].e;
                return l;
            }
    return 0;
}

static void random_run(unsigned levels)
{
    vms_pwc_config cfg;
    memset(&cfg, 0, sizeof cfg);
    for (unsigned l = 2; l <= 5; l++)
        cfg.level[l] = (vms_pwc_level_config){256, l == 3 ? 64 : 256, NULL}; /* never full */
    vms_pwc *pwc;
    REQUIRE_VOID(vms_pwc_create(NULL, &cfg, levels, th_seed, &pwc, NULL) == VMS_OK);
    static naive_ent t[4096];
    unsigned n = 0;
    vms_rng g;
    vms_rng_seed(&g, th_seed + levels);
    bool ok = true;
    unsigned i;
    for (i = 0; i < 20000 && ok; i++) {
        uint16_t pcid = (uint16_t)vms_rng_below(&g, 3);
        uint64_t va = vms_rng_below(&g, 4) << 21 | vms_rng_below(&g, 2) << 30 |
                      vms_rng_below(&g, 2) << 39 | vms_rng_below(&g, 2) << 48 |
                      vms_rng_below(&g, 2) << 56 | vms_rng_below(&g, 1u << 21);
        unsigned op = (unsigned)vms_rng_below(&g, 100);
        vms_pwc_entry a, b;
        if (op < 50) {
            unsigned la = vms_pwc_lookup(pwc, pcid, va, &a),
                     lb = naive_lookup(t, n, levels, pcid, va, &b);
            ok =
                la == lb &&
                (!la || (a.table_pa == b.table_pa && a.rw == b.rw && a.us == b.us && a.xd == b.xd));
        } else if (op < 97) {
            unsigned l = 2 + (unsigned)vms_rng_below(&g, 4);
            vms_pwc_entry e = ent(vms_rng_below(&g, 1u << 20) << 12, (uint8_t)vms_rng_below(&g, 2),
                                  (uint8_t)vms_rng_below(&g, 2), (uint8_t)vms_rng_below(&g, 2));
            vms_pwc_fill(pwc, pcid, va, l, &e);
            if (l <= levels) {
                unsigned k;
                for (k = 0; k < n; k++)
                    if (t[k].level == l && t[k].pcid == pcid &&
                        t[k].vbase == naive_base(va, l, levels))
                        break;
                if (k == n)
                    n++;
                t[k] = (naive_ent){l, naive_base(va, l, levels), pcid, e};
            }
        } else if (op < 99) {
            vms_pwc_flush_pcid(pwc, pcid);
            unsigned m = 0;
            for (unsigned k = 0; k < n; k++)
                if (t[k].pcid != pcid)
                    t[m++] = t[k];
            n = m;
        } else {
            vms_pwc_flush_all(pwc);
            n = 0;
        }
        unsigned total = 0;
        for (unsigned l = 2; l <= 5; l++)
            total += vms_pwc_count(pwc, l);
        ok = ok && vms_pwc_check(pwc) && total == n;
    }
    if (!ok)
        fprintf(stderr, "pwc random (%u levels): mismatch at op %u\n", levels, i - 1);
    CHECK(ok);
    CHECK(vms_pwc_get_stats(pwc)->hits[2] > 0 && vms_pwc_get_stats(pwc)->hits[levels] > 0);
    vms_pwc_destroy(pwc);
}

/* ---- the lookup's miss record (fills after a miss skip the conflict scan) ---- */

/*
 * A level remembers the tag and context its last probe missed until its next fill, and
 * a fill of exactly those takes the fresh path (no conflict scan). Each case below
 * would leave two entries for one key if the record outlived what it claims.
 */
static void test_miss_record(void)
{
    vms_pwc_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.level[2] = (vms_pwc_level_config){8, 4, "lru"};
    cfg.level[3] = (vms_pwc_level_config){4, 4, "lru"};
    vms_pwc *pwc;
    REQUIRE_VOID(vms_pwc_create(NULL, &cfg, 4, 1, &pwc, NULL) == VMS_OK);
    const uint64_t va = UINT64_C(0x00007f0000200000);
    vms_pwc_entry a = ent(0x1000, 1, 1, 0), b = ent(0x2000, 0, 1, 1), out;
    /* A fill clears the record: a second fill of the key is an update in place. */
    CHECK_EQ(vms_pwc_lookup(pwc, 1, va, &out), 0);
    vms_pwc_fill(pwc, 1, va, 2, &a);
    vms_pwc_fill(pwc, 1, va, 2, &b);
    CHECK_EQ(vms_pwc_count(pwc, 2), 1);
    CHECK(vms_pwc_check(pwc));
    CHECK_EQ(vms_pwc_lookup(pwc, 1, va, &out), 2);
    CHECK_EQ(out.table_pa, 0x2000);
    /* A miss in one context says nothing of another context's entry for the key. */
    vms_pwc_fill(pwc, 2, va + 0x1000, 3, &a);
    CHECK_EQ(vms_pwc_lookup(pwc, 3, va, &out), 0);
    vms_pwc_fill(pwc, 2, va, 3, &b);
    CHECK_EQ(vms_pwc_count(pwc, 3), 1);
    CHECK(vms_pwc_check(pwc));
    /* A fill of one level leaves another level's record alone (and is not cleared by it). */
    CHECK_EQ(vms_pwc_lookup(pwc, 5, va, &out), 0);
    vms_pwc_fill(pwc, 5, va, 3, &a);
    vms_pwc_fill(pwc, 5, va, 2, &a);
    vms_pwc_fill(pwc, 5, va, 2, &b);
    CHECK_EQ(vms_pwc_count(pwc, 2), 2);
    CHECK(vms_pwc_check(pwc));
    /* A flush after the record removes entries only: the record still holds. */
    CHECK_EQ(vms_pwc_lookup(pwc, 6, va, &out), 0);
    vms_pwc_flush_pcid(pwc, 5);
    vms_pwc_fill(pwc, 6, va, 2, &a);
    CHECK_EQ(vms_pwc_lookup(pwc, 6, va, &out), 2);
    CHECK(vms_pwc_check(pwc));
    vms_pwc_destroy(pwc);
}

/* The naive LRU model of one level: sets x ways of {valid, key, pcid, entry, last use}. */
typedef struct lru_way {
    bool valid;
    uint64_t key, stamp;
    uint16_t pcid;
    vms_pwc_entry e;
} lru_way;

typedef struct lru_level {
    unsigned sets, ways;
    lru_way w[64];
} lru_level;

static lru_way *lru_find(lru_level *m, uint64_t key, uint16_t pcid)
{
    lru_way *row = &m->w[(key % m->sets) * m->ways];
    for (unsigned i = 0; i < m->ways; i++)
        if (row[i].valid && row[i].key == key && row[i].pcid == pcid)
            return &row[i];
    return NULL;
}

/* Fill: the entry for (key, pcid) in place, else the lowest invalid way, else the least
 * recently used one (assoc.h's rule with exact LRU). */
static void lru_fill(lru_level *m, uint64_t key, uint16_t pcid, vms_pwc_entry e, uint64_t now)
{
    lru_way *w = lru_find(m, key, pcid);
    lru_way *row = &m->w[(key % m->sets) * m->ways];
    for (unsigned i = 0; !w && i < m->ways; i++)
        if (!row[i].valid)
            w = &row[i];
    if (!w) {
        w = &row[0];
        for (unsigned i = 1; i < m->ways; i++)
            if (row[i].stamp < w->stamp)
                w = &row[i];
    }
    *w = (lru_way){true, key, now, pcid, e};
}

/*
 * Walker-shaped traffic against the naive LRU model on small, evicting levels: a lookup,
 * then fills of the levels below the one that hit (the walk's fills after a miss, the
 * fresh path), sometimes a second fill of the same keys with no lookup between, other
 * contexts' fills, PCID flushes. Every lookup's answer and every level's count must equal
 * the model's, and vms_pwc_check must hold throughout.
 */
static void test_walk_shaped(void)
{
    vms_pwc_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.level[2] = (vms_pwc_level_config){8, 4, "lru"};
    cfg.level[3] = (vms_pwc_level_config){4, 4, "lru"};
    cfg.level[4] = (vms_pwc_level_config){2, 2, "lru"};
    vms_pwc *pwc;
    REQUIRE_VOID(vms_pwc_create(NULL, &cfg, 4, th_seed, &pwc, NULL) == VMS_OK);
    static lru_level m[5];
    memset(m, 0, sizeof m);
    m[2] = (lru_level){.sets = 2, .ways = 4};
    m[3] = (lru_level){.sets = 1, .ways = 4};
    m[4] = (lru_level){.sets = 1, .ways = 2};
    vms_rng g;
    vms_rng_seed(&g, th_seed ^ 0x5157);
    bool ok = true;
    uint64_t now = 0;
    unsigned i, fresh_fills = 0;
    for (i = 0; i < 30000 && ok; i++) {
        uint16_t pcid = (uint16_t)vms_rng_below(&g, 3);
        uint64_t va = vms_rng_below(&g, 8) << 21 | vms_rng_below(&g, 4) << 30 |
                      vms_rng_below(&g, 3) << 39 | vms_rng_below(&g, 1u << 21);
        unsigned op = (unsigned)vms_rng_below(&g, 100);
        if (op < 80) { /* a walk: lookup, then fill every level below the hit */
            vms_pwc_entry a, b = {0};
            unsigned la = vms_pwc_lookup(pwc, pcid, va, &a), lb = 0;
            now++;
            for (unsigned l = 2; l <= 4 && !lb; l++) {
                lru_way *w =
                    lru_find(&m[l], (va & ((UINT64_C(1) << 48) - 1)) >> (12 + 9 * (l - 1)), pcid);
                if (w) {
                    w->stamp = now;
                    b = w->e;
                    lb = l;
                }
            }
            ok =
                la == lb &&
                (!la || (a.table_pa == b.table_pa && a.rw == b.rw && a.us == b.us && a.xd == b.xd));
            unsigned top = la ? la - 1 : 4, again = vms_rng_below(&g, 4) == 0 ? 2 : 1;
            for (unsigned r = 0; r < again; r++) /* again: a second fill, no lookup between */
                for (unsigned l = top; l >= 2; l--) {
                    vms_pwc_entry e =
                        ent(vms_rng_below(&g, 1u << 20) << 12, (uint8_t)vms_rng_below(&g, 2),
                            (uint8_t)vms_rng_below(&g, 2), (uint8_t)vms_rng_below(&g, 2));
                    vms_pwc_fill(pwc, pcid, va, l, &e);
                    lru_fill(&m[l], (va & ((UINT64_C(1) << 48) - 1)) >> (12 + 9 * (l - 1)), pcid, e,
                             ++now);
                    fresh_fills += r == 0;
                }
        } else if (op < 97) { /* another context's fill at a random level, no lookup */
            unsigned l = 2 + (unsigned)vms_rng_below(&g, 3);
            uint16_t other = (uint16_t)vms_rng_below(&g, 3);
            vms_pwc_entry e = ent(vms_rng_below(&g, 1u << 20) << 12, 1, 1, 0);
            vms_pwc_fill(pwc, other, va, l, &e);
            lru_fill(&m[l], (va & ((UINT64_C(1) << 48) - 1)) >> (12 + 9 * (l - 1)), other, e,
                     ++now);
        } else {
            vms_pwc_flush_pcid(pwc, pcid);
            for (unsigned l = 2; l <= 4; l++)
                for (unsigned k = 0; k < m[l].sets * m[l].ways; k++)
                    if (m[l].w[k].pcid == pcid)
                        m[l].w[k].valid = false;
        }
        for (unsigned l = 2; l <= 4 && ok; l++) {
            unsigned n = 0;
            for (unsigned k = 0; k < m[l].sets * m[l].ways; k++)
                n += m[l].w[k].valid;
            ok = vms_pwc_count(pwc, l) == n;
        }
        ok = ok && vms_pwc_check(pwc);
    }
    if (!ok)
        fprintf(stderr, "pwc walk-shaped: mismatch at op %u\n", i - 1);
    CHECK(ok);
    CHECK(fresh_fills > 10000);
    vms_pwc_destroy(pwc);
}

/* ---- the fast path against the plain path (vms_pwc_set_fast) ---- */

/* Do two PWCs say the same: every stat and every level's count? */
static bool same_state(const vms_pwc *a, const vms_pwc *b)
{
    const vms_pwc_stats *x = vms_pwc_get_stats(a), *y = vms_pwc_get_stats(b);
    bool ok = x->lookups == y->lookups && x->misses == y->misses && x->fills == y->fills &&
              x->invalidations == y->invalidations;
    for (unsigned l = 0; l <= 5; l++)
        ok = ok && x->hits[l] == y->hits[l] && vms_pwc_count(a, l) == vms_pwc_count(b, l);
    return ok;
}

static bool same_entry(const vms_pwc_entry *a, const vms_pwc_entry *b)
{
    return a->table_pa == b->table_pa && a->rw == b->rw && a->us == b->us && a->xd == b->xd;
}

/* One geometry: entries and ways by level (0: none), one policy for every level. */
typedef struct pwc_geo {
    const char *name;
    unsigned levels;
    unsigned entries[6], ways[6];
} pwc_geo;

/*
 * Walker-shaped traffic (a lookup, then fills of the levels below its hit; sometimes the
 * same fills again, fills with no lookup, other contexts' fills, PCID and full flushes)
 * on two PWCs of one configuration and seed, `fast` with the shortcuts and `plain`
 * without (vms_pwc_set_fast(false)). Every answer, every stat and every level's count
 * must agree after every step, and vms_pwc_check hold on both — which on the fast side
 * includes that a direct hit's skipped touch would have changed nothing. Returns how
 * many lookups hit, so that the caller can tell the traffic hit at all. `toggle` also
 * turns the fast side's shortcuts off and on now and then.
 */
static uint64_t fast_vs_plain(const pwc_geo *g, const char *policy, bool toggle, unsigned nops)
{
    vms_pwc_config cfg;
    memset(&cfg, 0, sizeof cfg);
    for (unsigned l = 2; l <= 5; l++)
        if (g->entries[l])
            cfg.level[l] = (vms_pwc_level_config){g->entries[l], g->ways[l], policy};
    vms_pwc *fast = NULL, *plain = NULL;
    bool made = vms_pwc_create(NULL, &cfg, g->levels, th_seed, &fast, NULL) == VMS_OK &&
                vms_pwc_create(NULL, &cfg, g->levels, th_seed, &plain, NULL) == VMS_OK;
    CHECK(made);
    if (!made) {
        vms_pwc_destroy(fast);
        return 0;
    }
    vms_pwc_set_fast(plain, false);
    vms_rng r;
    vms_rng_seed(&r, th_seed ^ 0xfa57);
    bool ok = true;
    unsigned i;
    uint64_t hits = 0;
    for (i = 0; i < nops && ok; i++) {
        /* Mostly a hot few regions (hits), else a wide spread (misses, evictions); another
         * VM's context now and then. */
        vms_ctx ctx = vms_rng_below(&r, 3) | (vms_rng_below(&r, 8) == 0 ? UINT64_C(1) << 32 : 0);
        bool hot = vms_rng_below(&r, 4) != 0;
        uint64_t va = vms_rng_below(&r, hot ? 6 : 64) << 21 | vms_rng_below(&r, hot ? 2 : 6) << 30 |
                      vms_rng_below(&r, hot ? 1 : 3) << 39 | vms_rng_below(&r, 2) << 48 |
                      vms_rng_below(&r, 1u << 21);
        unsigned op = (unsigned)vms_rng_below(&r, 100);
        if (op < 75) { /* a walk */
            vms_pwc_entry a = {0}, b = {0};
            unsigned la = vms_pwc_lookup(fast, ctx, va, &a),
                     lb = vms_pwc_lookup(plain, ctx, va, &b);
            ok = la == lb && (!la || same_entry(&a, &b));
            hits += la != 0;
            unsigned top = la ? la - 1 : g->levels, again = vms_rng_below(&r, 8) == 0 ? 2 : 1;
            for (unsigned k = 0; k < again; k++)
                for (unsigned l = top; l >= 2; l--) {
                    vms_pwc_entry e =
                        ent(vms_rng_below(&r, 1u << 20) << 12, (uint8_t)vms_rng_below(&r, 2),
                            (uint8_t)vms_rng_below(&r, 2), (uint8_t)vms_rng_below(&r, 2));
                    vms_pwc_fill(fast, ctx, va, l, &e);
                    vms_pwc_fill(plain, ctx, va, l, &e);
                }
        } else if (op < 92) { /* a fill with no lookup, maybe of another context */
            unsigned l = 2 + (unsigned)vms_rng_below(&r, 4);
            vms_pwc_entry e = ent(vms_rng_below(&r, 1u << 20) << 12, 1, 1, 0);
            vms_pwc_fill(fast, ctx ^ 1, va, l, &e);
            vms_pwc_fill(plain, ctx ^ 1, va, l, &e);
        } else if (op < 97) {
            vms_pwc_flush_pcid(fast, ctx);
            vms_pwc_flush_pcid(plain, ctx);
        } else if (op < 98) {
            vms_pwc_flush_all(fast);
            vms_pwc_flush_all(plain);
        } else if (toggle) {
            vms_pwc_set_fast(fast, op == 99);
        }
        ok = ok && same_state(fast, plain) && vms_pwc_check(fast) && vms_pwc_check(plain);
    }
    if (!ok)
        fprintf(stderr, "pwc fast vs plain (%s, %s%s): mismatch at op %u\n", g->name,
                policy ? policy : "lru", toggle ? ", toggled" : "", i - 1);
    CHECK(ok);
    vms_pwc_destroy(fast);
    vms_pwc_destroy(plain);
    return hits;
}

/* Every policy on geometries that take each branch of the fast path (4 ways unrolled,
 * other way counts, one set, direct-mapped, 3-, 4- and 5-level paging) and on some it
 * refuses (a set count that is not a power of two, a policy called through pointers:
 * those must simply be the plain path). */
static void test_fast_vs_plain(void)
{
    static const pwc_geo geos[] = {
        {"skylake", 4, {0, 0, 32, 4, 2, 2}, {0, 0, 4, 4, 2, 2}},
        {"5-level", 5, {0, 0, 32, 4, 2, 2}, {0, 0, 4, 4, 2, 2}},
        {"sv39", 3, {0, 0, 16, 4, 0, 0}, {0, 0, 4, 2, 0, 0}},
        {"direct-mapped", 4, {0, 0, 8, 4, 2, 0}, {0, 0, 1, 1, 1, 0}},
        {"2-way and 8-way", 4, {0, 0, 16, 8, 4, 0}, {0, 0, 2, 8, 4, 0}},
        {"3-way", 4, {0, 0, 12, 3, 0, 0}, {0, 0, 3, 3, 0, 0}},
        {"16-way", 4, {0, 0, 32, 16, 0, 0}, {0, 0, 16, 16, 0, 0}},
        {"3 sets", 4, {0, 0, 12, 4, 2, 0}, {0, 0, 4, 4, 2, 0}},
        {"PDE only", 4, {0, 0, 16, 0, 0, 0}, {0, 0, 4, 0, 0, 0}},
    };
    static const char *const policies[] = {"lru", "plru", "fifo", "random"};
    for (size_t gi = 0; gi < sizeof geos / sizeof geos[0]; gi++)
        for (size_t pi = 0; pi < 4; pi++) {
            uint64_t hits = fast_vs_plain(&geos[gi], policies[pi], false, 6000);
            if (hits < 500) /* the traffic hits: there is something to compare */
                fprintf(stderr, "pwc fast vs plain (%s, %s): only %" PRIu64 " hits\n",
                        geos[gi].name, policies[pi], hits);
            CHECK(hits >= 500);
        }
    /* Switching the shortcuts off and on midway (the plain path keeps what they need). */
    for (size_t pi = 0; pi < 4; pi++)
        fast_vs_plain(&geos[0], policies[pi], true, 20000);
    fast_vs_plain(&geos[4], "lru", true, 20000);
}

/* The skylake machine's PWC (the fast path) with an observer coming and going: lookups
 * and fills while one listens take the plain path and are reported; the answers, stats
 * and counts must stay the plain PWC's throughout. */
static unsigned observed_events;
static void count_pwc_events(void *user, const vms_event *ev)
{
    (void)user;
    observed_events += ev->type == VMS_EV_PWC_LOOKUP || ev->type == VMS_EV_PWC_FILL;
}

static void test_fast_with_observer(void)
{
    vms_machine_config mc;
    vms_err err;
    REQUIRE_VOID(vms_machine_preset("skylake", &mc, &err) == VMS_OK);
    mc.ncores = 1;
    vms_machine *m;
    REQUIRE_VOID(vms_machine_create(NULL, &mc, &m, &err) == VMS_OK);
    vms_pwc *fast = vms_core_pwc(vms_machine_core(m, 0)), *plain;
    REQUIRE_VOID(fast != NULL);
    REQUIRE_VOID(vms_pwc_create(NULL, &mc.mmu.pwc, 4, 1, &plain, NULL) == VMS_OK);
    vms_pwc_set_fast(plain, false);
    vms_rng r;
    vms_rng_seed(&r, th_seed ^ 0x0b5e);
    bool ok = true, on = false;
    unsigned i, seen_on = 0;
    observed_events = 0;
    for (i = 0; i < 20000 && ok; i++) {
        if (vms_rng_below(&r, 50) == 0) {
            on = !on;
            vms_machine_set_observer(m, on ? count_pwc_events : NULL, NULL);
        }
        vms_ctx ctx = vms_rng_below(&r, 2);
        uint64_t va = vms_rng_below(&r, 40) << 21 | vms_rng_below(&r, 3) << 30;
        vms_pwc_entry a = {0}, b = {0};
        unsigned before = observed_events;
        unsigned la = vms_pwc_lookup(fast, ctx, va, &a), lb = vms_pwc_lookup(plain, ctx, va, &b);
        ok = la == lb && (!la || same_entry(&a, &b)) && (observed_events > before) == on;
        seen_on += on;
        for (unsigned l = la ? la - 1 : 4; l >= 2; l--) {
            vms_pwc_entry e = ent(vms_rng_below(&r, 1u << 20) << 12, 1, 1, 0);
            vms_pwc_fill(fast, ctx, va, l, &e);
            vms_pwc_fill(plain, ctx, va, l, &e);
        }
        ok = ok && same_state(fast, plain) && vms_pwc_check(fast);
    }
    if (!ok)
        fprintf(stderr, "pwc with an observer: mismatch at op %u\n", i - 1);
    CHECK(ok);
    CHECK(seen_on > 1000 && seen_on < 19000); /* both sides of the switch were exercised */
    vms_pwc_destroy(plain);
    vms_machine_destroy(m);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "pwc");
    test_deepest();
    test_rights_roundtrip();
    test_flush();
    test_absent_level();
    test_key_width();
    test_replacement();
    test_bad_configs();
    test_failalloc();
    random_run(4);
    random_run(5);
    test_miss_record();
    test_walk_shaped();
    test_fast_vs_plain();
    test_fast_with_observer();
    return th_finish();
}
