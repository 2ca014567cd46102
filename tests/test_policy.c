/*
 * test_policy.c — page-replacement policies and the replay mode.
 *
 *  - textbook figures (Belady's anomaly under FIFO; Silberschatz's 20-reference string
 *    under FIFO, OPT and LRU), computed both by a naive model here and by the library;
 *  - every policy against a deliberately naive model (arrays, linear scans, shifting)
 *    on seeded random reference strings of several localities and frame counts: same
 *    hit/miss sequence, same victims, same frame contents after every reference. The
 *    naive "random" draws from the same vms_rng stream with the same swap-remove
 *    semantics, so its victims are compared exactly too;
 *  - every policy against the naive model through the plug-in API directly (insert /
 *    access / remove / victim, as the kernel will call it) with a test host whose
 *    accessed bits and next uses the test controls — including OPT ties;
 *  - CLOCK and twolist on hand-made cases, OPT never worse than any other policy,
 *    invariants, remove() of non-resident pages, allocation-failure injection, the
 *    registry and the reference-string parser.
 */
#include "harness.h"
#include "os/reclaim/policy_impl.h"
#include "vmsim/policy.h"
#include "vmsim/rng.h"

#define MAXP 64 /* most resident pages a naive model holds */

/* ---- the naive model: one array in a policy-defined order --------------------------- */

enum { INACTIVE = 0, ACTIVE = 1 };

typedef struct nv {
    const char *pol;
    uint64_t pg[MAXP];
    uint64_t stamp[MAXP]; /* lru: time of last reference */
    uint8_t lst[MAXP];    /* twolist: which list */
    uint8_t ref[MAXP];    /* twolist: PG_referenced */
    size_t n;
    uint64_t now;
    vms_rng rng;
} nv;

static void nv_init(nv *m, const char *pol, uint64_t seed)
{
    memset(m, 0, sizeof *m);
    m->pol = pol;
    vms_rng_seed(&m->rng, seed);
}

static bool is(const nv *m, const char *name)
{
    return strcmp(m->pol, name) == 0;
}

static size_t nv_find(const nv *m, uint64_t page)
{
    for (size_t k = 0; k < m->n; k++)
        if (m->pg[k] == page)
            return k;
    return SIZE_MAX;
}

static void nv_insert(nv *m, uint64_t page)
{
    m->pg[m->n] = page;
    m->stamp[m->n] = ++m->now;
    m->lst[m->n] = INACTIVE;
    m->ref[m->n] = 0;
    m->n++;
}

static void nv_access(nv *m, uint64_t page)
{
    size_t k = nv_find(m, page);
    if (k != SIZE_MAX)
        m->stamp[k] = ++m->now;
}

/* Delete entry k: random fills the hole with the last entry, the others shift. */
static void nv_del(nv *m, size_t k)
{
    if (is(m, "random")) {
        m->pg[k] = m->pg[--m->n];
        return;
    }
    for (size_t j = k; j + 1 < m->n; j++) {
        m->pg[j] = m->pg[j + 1];
        m->stamp[j] = m->stamp[j + 1];
        m->lst[j] = m->lst[j + 1];
        m->ref[j] = m->ref[j + 1];
    }
    m->n--;
}

static void nv_remove(nv *m, uint64_t page)
{
    size_t k = nv_find(m, page);
    if (k != SIZE_MAX)
        nv_del(m, k);
}

/* Move entry k to the end of the array, into list `lst` with referenced flag `ref`. */
static void nv_to_end(nv *m, size_t k, uint8_t lst, uint8_t ref)
{
    uint64_t p = m->pg[k], s = m->stamp[k];
    nv_del(m, k);
    m->pg[m->n] = p;
    m->stamp[m->n] = s;
    m->lst[m->n] = lst;
    m->ref[m->n] = ref;
    m->n++;
}

static bool nv_young(const vms_policy_host *h, uint64_t page)
{
    return h && h->test_and_clear_young && h->test_and_clear_young(h->ud, page);
}

static size_t nv_first(const nv *m, uint8_t lst, size_t *count)
{
    size_t first = SIZE_MAX;
    *count = 0;
    for (size_t k = 0; k < m->n; k++)
        if (m->lst[k] == lst && (*count)++ == 0)
            first = k;
    return first;
}

/* twolist, restated over one array: each list is the subsequence with that lst. */
static size_t nv_twolist(nv *m, const vms_policy_host *h)
{
    for (;;) {
        size_t na, ni, k = nv_first(m, ACTIVE, &na);
        nv_first(m, INACTIVE, &ni);
        if (na > ni) {
            nv_to_end(m, k, nv_young(h, m->pg[k]) ? ACTIVE : INACTIVE, 0);
            continue;
        }
        k = nv_first(m, INACTIVE, &ni);
        if (!nv_young(h, m->pg[k]))
            return k;
        if (m->ref[k])
            nv_to_end(m, k, ACTIVE, 0);
        else
            nv_to_end(m, k, INACTIVE, 1);
    }
}

/* The index of the page the policy evicts. */
static size_t nv_choose(nv *m, const vms_policy_host *h)
{
    size_t best = 0;
    if (is(m, "lru")) {
        for (size_t k = 1; k < m->n; k++)
            if (m->stamp[k] < m->stamp[best])
                best = k;
    } else if (is(m, "clock")) {
        for (size_t turn = 0; turn < m->n && nv_young(h, m->pg[0]); turn++)
            nv_to_end(m, 0, 0, 0);
    } else if (is(m, "random")) {
        best = (size_t)vms_rng_below(&m->rng, m->n);
    } else if (is(m, "opt")) {
        for (size_t k = 1; k < m->n; k++) {
            uint64_t a = h->next_use(h->ud, m->pg[k]), b = h->next_use(h->ud, m->pg[best]);
            if (a > b || (a == b && m->pg[k] < m->pg[best]))
                best = k;
        }
    } else if (is(m, "twolist")) {
        best = nv_twolist(m, h);
    }
    return best;
}

static bool nv_victim(nv *m, const vms_policy_host *h, uint64_t *page)
{
    if (m->n == 0)
        return false;
    size_t k = nv_choose(m, h);
    *page = m->pg[k];
    nv_del(m, k);
    return true;
}

/* ---- naive replay --------------------------------------------------------------------- */

typedef struct nv_replay {
    const uint64_t *refs;
    size_t nrefs, pos;
    uint64_t frame[MAXP];
    uint8_t young[MAXP];
    size_t used;
} nv_replay;

static size_t nr_slot(const nv_replay *r, uint64_t page)
{
    for (size_t s = 0; s < r->used; s++)
        if (r->frame[s] == page)
            return s;
    return SIZE_MAX;
}

static bool nr_young(void *ud, uint64_t page)
{
    nv_replay *r = ud;
    size_t s = nr_slot(r, page);
    if (s == SIZE_MAX)
        return false;
    bool y = r->young[s];
    r->young[s] = 0;
    return y;
}

/* Next use by scanning the string forwards from the current reference. */
static uint64_t nr_next(void *ud, uint64_t page)
{
    nv_replay *r = ud;
    for (size_t j = r->pos + 1; j < r->nrefs; j++)
        if (r->refs[j] == page)
            return j;
    return UINT64_MAX;
}

/* One step's outcome, and the frames after it. */
typedef struct rstep {
    bool hit, evicted;
    uint64_t victim;
    uint64_t frame[MAXP];
    size_t used;
} rstep;

/* Replay refs through `frames` frames with the naive model; steps[i] for each ref. */
static void naive_replay(const char *pol, const uint64_t *refs, size_t nrefs, size_t frames,
                         uint64_t seed, rstep *steps)
{
    nv m;
    nv_init(&m, pol, seed);
    nv_replay r = {.refs = refs, .nrefs = nrefs};
    vms_policy_host h = {&r, nr_young, nr_next};
    for (size_t i = 0; i < nrefs; i++) {
        rstep *st = &steps[i];
        memset(st, 0, sizeof *st);
        r.pos = i;
        size_t s = nr_slot(&r, refs[i]);
        st->hit = s != SIZE_MAX;
        if (st->hit) {
            nv_access(&m, refs[i]);
        } else if (r.used < frames) {
            s = r.used++;
        } else {
            nv_victim(&m, &h, &st->victim);
            st->evicted = true;
            s = nr_slot(&r, st->victim);
        }
        if (!st->hit) {
            r.frame[s] = refs[i];
            nv_insert(&m, refs[i]);
        }
        r.young[s] = 1;
        memcpy(st->frame, r.frame, sizeof r.frame);
        st->used = r.used;
    }
}

/* ---- library replay, recorded ------------------------------------------------------- */

typedef struct rec {
    rstep *steps;
    size_t n, frames;
    unsigned bad; /* invariant violations seen in the step callback */
    uint64_t prev[MAXP];
    size_t prev_used;
} rec;

/* Record a step and check the invariants: resident <= frames, eviction only when full,
 * the victim was resident, exactly the victim's frame changed. */
static void on_step(void *ud, const vms_policy_step *s, const uint64_t *frames, size_t used)
{
    rec *r = ud;
    rstep *st = &r->steps[r->n];
    if (s->index != r->n || used > r->frames || used > MAXP)
        r->bad++;
    if (s->evicted && (r->prev_used != r->frames || s->hit))
        r->bad++;
    size_t changed = 0;
    for (size_t k = 0; k < used && k < MAXP; k++) {
        if (k < r->prev_used && frames[k] != r->prev[k]) {
            changed++;
            if (!s->evicted || r->prev[k] != s->victim || frames[k] != s->page)
                r->bad++;
        }
    }
    if (changed != (s->evicted ? 1u : 0u))
        r->bad++;
    st->hit = s->hit;
    st->evicted = s->evicted;
    st->victim = s->evicted ? s->victim : 0;
    memset(st->frame, 0, sizeof st->frame);
    memcpy(st->frame, frames, used * sizeof *frames);
    st->used = used;
    memcpy(r->prev, frames, used * sizeof *frames);
    r->prev_used = used;
    r->n++;
}

static vms_status lib_replay(const char *pol, const uint64_t *refs, size_t nrefs, size_t frames,
                             uint64_t seed, rstep *steps, vms_policy_totals *tot, unsigned *bad)
{
    rec r = {.steps = steps, .frames = frames};
    vms_policy_replay_opts o = {
        .policy = pol, .frames = frames, .seed = seed, .on_step = on_step, .ud = &r};
    vms_err err = {0};
    vms_status st = vms_policy_replay(refs, nrefs, &o, tot, &err);
    if (st != VMS_OK)
        fprintf(stderr, "replay %s: %s\n", pol, err.msg);
    *bad = r.bad + (r.n != nrefs);
    return st;
}

/* First index where two step sequences differ, or SIZE_MAX. */
static size_t diff_steps(const rstep *a, const rstep *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i].hit != b[i].hit || a[i].evicted != b[i].evicted || a[i].victim != b[i].victim ||
            a[i].used != b[i].used ||
            memcmp(a[i].frame, b[i].frame, a[i].used * sizeof a[i].frame[0]))
            return i;
    return SIZE_MAX;
}

static uint64_t count_misses(const rstep *s, size_t n)
{
    uint64_t m = 0;
    for (size_t i = 0; i < n; i++)
        m += !s[i].hit;
    return m;
}

/* ---- textbook figures ------------------------------------------------------------------ */

static const uint64_t belady[] = {1, 2, 3, 4, 1, 2, 5, 1, 2, 3, 4, 5};
static const uint64_t silb[] = {7, 0, 1, 2, 0, 3, 0, 4, 2, 3, 0, 3, 2, 1, 2, 0, 1, 7, 0, 1};
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Faults of `pol` on refs with `frames` frames, by the naive model and by the library;
 * both must equal `expect`. */
static void check_faults(const char *pol, const uint64_t *refs, size_t n, size_t frames,
                         uint64_t expect)
{
    rstep a[32], b[32];
    naive_replay(pol, refs, n, frames, 1, a);
    vms_policy_totals t;
    unsigned bad;
    CHECK_EQ(lib_replay(pol, refs, n, frames, 1, b, &t, &bad), VMS_OK);
    CHECK_EQ(bad, 0);
    CHECK_EQ(count_misses(a, n), expect);
    CHECK_EQ(t.misses, expect);
    CHECK_EQ(t.hits + t.misses, n);
    CHECK_EQ(t.evictions, expect - frames);
    CHECK_EQ(diff_steps(a, b, n), SIZE_MAX);
}

static void test_textbook(void)
{
    check_faults("fifo", belady, NELEM(belady), 3, 9);  /* Belady's anomaly: */
    check_faults("fifo", belady, NELEM(belady), 4, 10); /* more frames, more faults */
    check_faults("fifo", silb, NELEM(silb), 3, 15);     /* Silberschatz Fig. 10.12 */
    check_faults("opt", silb, NELEM(silb), 3, 9);       /* Fig. 10.14 */
    check_faults("lru", silb, NELEM(silb), 3, 12);      /* Fig. 10.15 */
    check_faults("opt", belady, NELEM(belady), 3, 7);
    check_faults("lru", belady, NELEM(belady), 3, 10);
    check_faults("lru", belady, NELEM(belady), 4, 8); /* a stack algorithm: no anomaly */

    /* Silberschatz Fig. 10.12 frame by frame: after the 4th reference (2) the frames hold
     * 2,0,1 — 2 took 7's frame. */
    rstep s[32];
    vms_policy_totals t;
    unsigned bad;
    lib_replay("fifo", silb, NELEM(silb), 3, 0, s, &t, &bad);
    CHECK(s[3].evicted && s[3].victim == 7 && s[3].frame[0] == 2 && s[3].frame[1] == 0 &&
          s[3].frame[2] == 1);
    CHECK(s[4].hit && !s[4].evicted);
    CHECK(t.hit_rate > 0.24 && t.hit_rate < 0.26); /* 5 hits of 20 */
}

/* ---- seeded random differential --------------------------------------------------------- */

/* A reference string of `n` pages with one of four localities. */
static void gen_refs(vms_rng *g, unsigned kind, uint64_t *refs, size_t n, uint64_t universe)
{
    uint64_t base = 0, ws = 1 + vms_rng_below(g, 6);
    for (size_t i = 0; i < n; i++) {
        switch (kind) {
        case 0: /* uniform */
            refs[i] = vms_rng_below(g, universe);
            break;
        case 1: /* a loop, sometimes interrupted */
            refs[i] = vms_rng_below(g, 10) ? i % universe : vms_rng_below(g, universe);
            break;
        case 2: /* skewed (roughly zipf-like): cube of a uniform */ {
            double u = (double)vms_rng_below(g, 1u << 20) / (double)(1u << 20);
            refs[i] = (uint64_t)(u * u * u * (double)universe);
            break;
        }
        default: /* working-set phases */
            if (vms_rng_below(g, 40) == 0) {
                base = vms_rng_below(g, universe);
                ws = 1 + vms_rng_below(g, 8);
            }
            refs[i] = base + vms_rng_below(g, ws);
            break;
        }
    }
}

static void test_differential(void)
{
    static const size_t frame_counts[] = {1, 2, 3, 4, 5, 8, 13, 32};
    vms_rng g;
    vms_rng_seed(&g, th_seed);
    static uint64_t refs[600];
    static rstep a[600], b[600];
    unsigned nstrings = 0, mismatches = 0, badinv = 0, optworse = 0;
    for (unsigned trial = 0; trial < 1200; trial++) {
        size_t n = 20 + (size_t)vms_rng_below(&g, 580);
        size_t frames = frame_counts[vms_rng_below(&g, NELEM(frame_counts))];
        uint64_t universe = frames + 1 + vms_rng_below(&g, 3 * frames + 8);
        unsigned kind = (unsigned)vms_rng_below(&g, 4);
        uint64_t seed = vms_rng_next(&g);
        gen_refs(&g, kind, refs, n, universe);
        nstrings++;
        uint64_t opt_misses = UINT64_MAX, worst_other = 0, best_other = UINT64_MAX;
        for (unsigned p = 0; p < vms_page_policy_count(); p++) {
            const char *pol = vms_page_policy_get(p)->name;
            naive_replay(pol, refs, n, frames, seed, a);
            vms_policy_totals t;
            unsigned bad;
            if (lib_replay(pol, refs, n, frames, seed, b, &t, &bad) != VMS_OK)
                bad++;
            badinv += bad;
            size_t d = diff_steps(a, b, n);
            if (d != SIZE_MAX && mismatches++ < 5)
                fprintf(stderr,
                        "differential: %s trial %u (kind %u, frames %zu, n %zu) differs at "
                        "reference %zu (page %" PRIu64 "): naive hit=%d victim=%" PRIu64
                        ", library hit=%d victim=%" PRIu64 "\n",
                        pol, trial, kind, frames, n, d, refs[d], a[d].hit, a[d].victim, b[d].hit,
                        b[d].victim);
            if (t.misses != count_misses(b, n))
                badinv++;
            if (!strcmp(pol, "opt"))
                opt_misses = t.misses;
            else {
                worst_other = t.misses > worst_other ? t.misses : worst_other;
                best_other = t.misses < best_other ? t.misses : best_other;
            }
        }
        if (opt_misses > best_other || opt_misses > worst_other)
            optworse++;
    }
    printf("differential: %u strings x %u policies compared\n", nstrings, vms_page_policy_count());
    CHECK_EQ(mismatches, 0);
    CHECK_EQ(badinv, 0);
    CHECK_EQ(optworse, 0);
    CHECK(nstrings >= 1000);
}

/* ---- the plug-in API directly, kernel-style ------------------------------------------- */

typedef struct thost {
    uint8_t young[256];
    uint64_t next[256];
    unsigned calls; /* test_and_clear_young calls */
    uint64_t log[64];
} thost;

static bool th_young(void *ud, uint64_t page)
{
    thost *h = ud;
    if (h->calls < 64)
        h->log[h->calls] = page;
    h->calls++;
    bool y = page < 256 && h->young[page];
    if (y)
        h->young[page] = 0;
    return y;
}

static uint64_t th_next(void *ud, uint64_t page)
{
    const thost *h = ud;
    return page < 256 ? h->next[page] : UINT64_MAX;
}

/* The test host's "future": a new next use on each reference, with ties and "never". */
static uint64_t draw_next(vms_rng *g)
{
    uint64_t r = vms_rng_below(g, 8);
    return r == 0 ? UINT64_MAX : 1000 + vms_rng_below(g, 30);
}

/* Random insert/access/remove/victim sequences on pages 0..199 against the naive model. */
static void test_ops(void)
{
    vms_rng g;
    vms_rng_seed(&g, th_seed ^ 0x5eed);
    unsigned mismatches = 0, ops = 0;
    for (unsigned p = 0; p < vms_page_policy_count(); p++) {
        const vms_page_policy *pol = vms_page_policy_get(p);
        for (unsigned trial = 0; trial < 60; trial++) {
            thost h1, h2;
            memset(&h1, 0, sizeof h1);
            vms_policy_host host1 = {&h1, th_young, th_next}, host2 = {&h2, th_young, th_next};
            bool res[200] = {0};
            uint64_t seed = vms_rng_next(&g), cap = 1 + vms_rng_below(&g, MAXP - 1);
            void *s = NULL;
            CHECK_EQ(pol->create(vms_allocator_default(), 4, seed, &s, NULL), VMS_OK);
            if (!s)
                continue;
            nv m;
            nv_init(&m, pol->name, seed);
            for (unsigned op = 0; op < 400; op++, ops++) {
                uint64_t page = vms_rng_below(&g, 200), v1 = 0, v2 = 0;
                unsigned what = (unsigned)vms_rng_below(&g, 10);
                if (what < 4 && !res[page] && m.n < cap) {
                    res[page] = true;
                    h1.young[page] = 1;
                    h1.next[page] = draw_next(&g);
                    CHECK_EQ(pol->insert(s, page), VMS_OK);
                    nv_insert(&m, page);
                } else if (what < 7 && res[page]) {
                    h1.young[page] = 1;
                    h1.next[page] = draw_next(&g);
                    if (pol->access)
                        pol->access(s, page);
                    nv_access(&m, page);
                } else if (what < 8) {
                    pol->remove(s, page); /* often not resident: must be harmless */
                    nv_remove(&m, page);
                    res[page] = false;
                } else {
                    h2 = h1; /* the naive model gets an identical copy of the host */
                    bool ok1 = pol->victim(s, &host1, &v1), ok2 = nv_victim(&m, &host2, &v2);
                    if (ok1 != ok2 || v1 != v2 || (ok1 && !res[v1]))
                        mismatches++;
                    if (ok1 && v1 < 200)
                        res[v1] = false;
                    h1 = h2;
                }
                if (pol->count(s) != m.n)
                    mismatches++;
            }
            pol->destroy(s);
        }
    }
    printf("ops: %u plug-in calls compared\n", ops);
    CHECK_EQ(mismatches, 0);
}

/* OPT's rotate: a victim the kernel kept (busy, pinned, no swap room) is tried again only
 * after every other page of the scan, and with a fresh key once the workload moves on.
 * Found by fuzz_oracle: put back through insert, the kept page came back as the farthest
 * and every scan tried it alone (a replay stuck on one page; swap full, file pages never
 * reached). */
static void test_opt_rotate(void)
{
    const vms_page_policy *pol = vms_page_policy_find("opt");
    thost h;
    memset(&h, 0, sizeof h);
    vms_policy_host host = {&h, th_young, th_next};
    void *s = NULL;
    REQUIRE_VOID(pol && pol->create(vms_allocator_default(), 8, 1, &s, NULL) == VMS_OK);
    const uint64_t next[] = {10, 50, 30, 40, 20};
    for (uint64_t p = 0; p < 5; p++) {
        h.next[p] = next[p];
        CHECK_EQ(pol->insert(s, p), VMS_OK);
    }
    vms_status (*rot)(void *, uint64_t) = pol->rotate ? pol->rotate : pol->insert;
    uint64_t v = 99, order[5];
    for (unsigned i = 0; i < 5; i++) { /* a scan where every page is kept */
        CHECK(pol->victim(s, &host, &v));
        order[i] = v;
        CHECK_EQ(rot(s, v), VMS_OK);
    }
    CHECK(order[0] == 1 && order[1] == 3 && order[2] == 2 && order[3] == 4 && order[4] == 0);
    CHECK_EQ(pol->count(s), 5);
    /* The workload moves on (page 0 referenced, its next use now 60): the kept pages'
     * keys are fresh again, and OPT's choice is the farthest. */
    h.next[0] = 60;
    pol->access(s, 0);
    CHECK(pol->victim(s, &host, &v) && v == 0);
    CHECK(pol->victim(s, &host, &v) && v == 1);
    pol->destroy(s);
}

/* CLOCK by hand: second chances, one full turn when all are young, FIFO without bits. */
static void test_clock(void)
{
    const vms_page_policy *pol = vms_page_policy_find("clock");
    thost h;
    memset(&h, 0, sizeof h);
    vms_policy_host host = {&h, th_young, NULL};
    void *s;
    CHECK_EQ(pol->create(vms_allocator_default(), 4, 0, &s, NULL), VMS_OK);
    for (uint64_t p = 1; p <= 4; p++)
        pol->insert(s, p);
    uint64_t v = 0;
    h.young[1] = h.young[3] = 1;                /* 1 and 3 referenced */
    CHECK(pol->victim(s, &host, &v) && v == 2); /* 1 spared (bit cleared), 2 goes */
    CHECK_EQ(h.young[1], 0);
    CHECK(pol->victim(s, &host, &v) && v == 4); /* 3 spared, 4 goes; order now 1,3 */
    pol->insert(s, 5);
    h.young[1] = h.young[3] = h.young[5] = 1;   /* all young: one full turn */
    CHECK(pol->victim(s, &host, &v) && v == 1); /* back to the start */
    CHECK_EQ(h.calls, 2 + 2 + 3);              /* after one full turn the head is not asked again */
    CHECK(pol->victim(s, NULL, &v) && v == 3); /* no host: FIFO */
    CHECK(pol->victim(s, NULL, &v) && v == 5);
    CHECK(!pol->victim(s, NULL, &v));
    pol->destroy(s);
}

static bool always_young(void *ud, uint64_t page)
{
    (void)ud;
    (void)page;
    return true;
}

/* twolist by hand: each rule of policy_twolist.c. */
static void test_twolist(void)
{
    const vms_page_policy *pol = vms_page_policy_find("twolist");
    thost h;
    memset(&h, 0, sizeof h);
    vms_policy_host host = {&h, th_young, NULL};
    void *s;
    uint64_t v = 0;
    CHECK_EQ(pol->create(vms_allocator_default(), 4, 0, &s, NULL), VMS_OK);
    for (uint64_t p = 1; p <= 3; p++)
        pol->insert(s, p); /* inactive: 1 2 3 (old end first) */
    h.young[1] = 1;
    CHECK(pol->victim(s, &host, &v) && v == 2); /* 1: first reference, kept (rotated) */
    h.young[1] = 1;
    pol->insert(s, 4); /* inactive: 3 1* 4 (1 has PG_referenced) */
    CHECK(pol->victim(s, &host, &v) && v == 3);
    CHECK(pol->victim(s, &host, &v) && v == 4); /* 1 young + referenced: promoted */
    CHECK_EQ(h.young[1], 0);
    /* active: 1; inactive: empty. Add 5, 6: inactive 5 6. 5 young twice -> promoted. */
    pol->insert(s, 5);
    pol->insert(s, 6);
    h.young[5] = 1;
    CHECK(pol->victim(s, &host, &v) && v == 6); /* 5 rotated with PG_referenced */
    pol->insert(s, 7);                          /* active 1; inactive 5* 7 */
    h.young[5] = 1;
    /* 5 promoted: active 1 5 > inactive 7, so 1 (not young) is deactivated. */
    CHECK(pol->victim(s, &host, &v) && v == 7);
    CHECK(pol->victim(s, &host, &v) && v == 1); /* inactive 1, active 5 */
    CHECK(pol->victim(s, &host, &v) && v == 5); /* deactivated, then evicted */
    CHECK_EQ(pol->count(s), 0);
    pol->destroy(s);

    /* Rotation on the active list: 1 and 2 promoted, then 1 referenced again while
     * active; when balancing, 1 (young) is rotated and 2 deactivated. */
    CHECK_EQ(pol->create(vms_allocator_default(), 4, 0, &s, NULL), VMS_OK);
    for (uint64_t p = 1; p <= 3; p++)
        pol->insert(s, p);
    h.young[1] = h.young[2] = 1;
    CHECK(pol->victim(s, &host, &v) && v == 3); /* inactive 1* 2* */
    for (uint64_t p = 4; p <= 6; p++)
        pol->insert(s, p);
    h.young[1] = h.young[2] = 1;
    CHECK(pol->victim(s, &host, &v) && v == 4); /* active 1 2; inactive 5 6 */
    h.young[1] = 1;
    CHECK(pol->victim(s, &host, &v) && v == 5); /* balanced: 1's bit untouched */
    CHECK_EQ(h.young[1], 1);
    h.calls = 0;
    CHECK(pol->victim(s, &host, &v) && v == 6); /* active 1; inactive 2 */
    CHECK(h.calls == 3 && h.log[0] == 1 && h.log[1] == 2 && h.log[2] == 6);
    CHECK(pol->victim(s, &host, &v) && v == 2);
    CHECK(pol->victim(s, &host, &v) && v == 1);
    /* A host that always answers young cannot make victim() spin: one young answer per
     * resident page is believed, then the scan goes on as if the bits were clear. */
    pol->insert(s, 8);
    pol->insert(s, 9);
    vms_policy_host stuck = {NULL, always_young, NULL};
    CHECK(pol->victim(s, &stuck, &v) && v == 8);
    CHECK(pol->victim(s, &stuck, &v) && v == 9);
    pol->destroy(s);
}

/* Registry, selection, duplicate insert, remove of non-resident pages. */
static void test_registry(void)
{
    CHECK_EQ(vms_page_policy_count(), 6);
    static const char *names[] = {"fifo", "lru", "clock", "random", "opt", "twolist"};
    for (unsigned i = 0; i < 6; i++) {
        const vms_page_policy *p = vms_page_policy_get(i);
        CHECK_STR(p->name, names[i]);
        CHECK(vms_page_policy_find(names[i]) == p);
        CHECK(p->desc && strlen(p->desc) > 10 && strlen(p->desc) < 90);
        CHECK(!(p->flags & VMS_PPOL_NEEDS_ACCESS) || p->access);
        /* remove() of non-resident pages is harmless; insert twice is refused */
        void *s;
        CHECK_EQ(p->create(vms_allocator_default(), 2, 7, &s, NULL), VMS_OK);
        p->remove(s, 99);
        CHECK_EQ(p->insert(s, 1), VMS_OK);
        CHECK_EQ(p->insert(s, 2), VMS_OK);
        CHECK_EQ(p->insert(s, 2), VMS_ERR_EXISTS);
        p->remove(s, 99);
        p->remove(s, 1);
        p->remove(s, 1);
        CHECK_EQ(p->count(s), 1);
        thost h;
        memset(&h, 0, sizeof h);
        h.next[2] = 5;
        vms_policy_host host = {&h, th_young, th_next};
        uint64_t v = 0;
        CHECK(p->victim(s, &host, &v) && v == 2);
        CHECK(!p->victim(s, &host, &v));
        CHECK_EQ(p->count(s), 0);
        p->destroy(s);
    }
    for (unsigned i = 0; i < 6; i++)
        vms_page_policy_get(i)->destroy(NULL); /* destroy accepts NULL */
    CHECK(vms_page_policy_get(6) == NULL);
    CHECK(vms_page_policy_find("LRU") == NULL);
    CHECK(vms_page_policy_find(NULL) == NULL);
    vms_err err = {0};
    const vms_page_policy *out = NULL;
    CHECK_EQ(vms_page_policy_select("mru", NULL, &out, &err), VMS_ERR_NOTFOUND);
    CHECK(strstr(err.msg, "'mru'") && strstr(err.msg, "fifo, lru, clock, random, opt, twolist"));
    CHECK_EQ(vms_page_policy_select("opt", NULL, &out, &err), VMS_ERR_UNSUPPORTED);
    CHECK(strstr(err.msg, "opt") && strstr(err.msg, "future"));
    vms_policy_host nofuture = {NULL, th_young, NULL};
    CHECK_EQ(vms_page_policy_select("opt", &nofuture, &out, &err), VMS_ERR_UNSUPPORTED);
    CHECK_EQ(vms_page_policy_select("clock", NULL, &out, &err), VMS_OK);
    CHECK(out == vms_page_policy_find("clock"));

    vms_policy_totals t;
    vms_policy_replay_opts o = {.policy = "lru", .frames = 0};
    CHECK_EQ(vms_policy_replay(belady, NELEM(belady), &o, &t, &err), VMS_ERR_INVAL);
    CHECK(strstr(err.msg, "frames"));
    o = (vms_policy_replay_opts){.policy = "belady", .frames = 3};
    CHECK_EQ(vms_policy_replay(belady, NELEM(belady), &o, &t, &err), VMS_ERR_NOTFOUND);
    o = (vms_policy_replay_opts){.policy = "twolist", .frames = SIZE_MAX};
    CHECK_EQ(vms_policy_replay(belady, NELEM(belady), &o, &t, &err), VMS_OK); /* no NOMEM */
    CHECK(t.misses == 5 && t.hits == 7 && t.evictions == 0);
    o.policy = "opt";
    CHECK_EQ(vms_policy_replay(NULL, 0, &o, &t, &err), VMS_OK); /* empty string */
    CHECK(t.references == 0 && t.hit_rate == 0.0);
}

/* Allocation failure N, N+1, …: create and replay fail cleanly and leak nothing; an
 * insert past the capacity hint that cannot grow leaves the policy intact. */
static void test_failalloc(void)
{
    unsigned leaks = 0, wrong = 0;
    for (unsigned p = 0; p < vms_page_policy_count(); p++) {
        const vms_page_policy *pol = vms_page_policy_get(p);
        long budget;
        for (budget = 0; budget < 50; budget++) {
            th_failalloc fa;
            void *s = NULL;
            vms_err err = {0};
            vms_status st = pol->create(th_failalloc_init(&fa, budget), 2, 1, &s, &err);
            if (st != VMS_OK) {
                wrong += st != VMS_ERR_NOMEM || s != NULL || !strstr(err.msg, "memory");
                leaks += fa.live_bytes != 0;
                continue;
            }
            /* grow past the hint until the allocator refuses */
            uint64_t n = 0;
            while (n < 200 && pol->insert(s, n) == VMS_OK)
                n++;
            wrong += pol->count(s) != n;
            thost h;
            memset(&h, 0, sizeof h);
            vms_policy_host host = {&h, th_young, th_next};
            uint64_t v;
            for (uint64_t k = 0; k < n; k++)
                wrong += !pol->victim(s, &host, &v) || v >= n;
            wrong += pol->victim(s, &host, &v);
            pol->destroy(s);
            leaks += fa.live_bytes != 0;
            if (n == 200)
                break; /* enough budget for everything */
        }
        CHECK(budget > 0 && budget < 50);
    }
    CHECK_EQ(leaks, 0);
    CHECK_EQ(wrong, 0);

    /* the whole replay */
    for (unsigned p = 0; p < vms_page_policy_count(); p++) {
        long budget;
        for (budget = 0; budget < 50; budget++) {
            th_failalloc fa;
            vms_policy_replay_opts o = {.policy = vms_page_policy_get(p)->name,
                                        .frames = 3,
                                        .alloc = th_failalloc_init(&fa, budget)};
            vms_policy_totals t;
            vms_err err = {0};
            vms_status st = vms_policy_replay(silb, NELEM(silb), &o, &t, &err);
            leaks += fa.live_bytes != 0;
            if (st == VMS_OK)
                break;
            wrong += st != VMS_ERR_NOMEM || t.references != 0 || !strstr(err.msg, "memory");
        }
        CHECK(budget > 0 && budget < 50);
    }
    CHECK_EQ(leaks, 0);
    CHECK_EQ(wrong, 0);
}

/* The reference-string parser, and a small fuzz: never crashes, always explains. */
static void test_parse(void)
{
    uint64_t *r = NULL;
    size_t n = 0;
    vms_err err = {0};
    CHECK_EQ(vms_policy_refs_parse(" 1,2, 3\n0x10\t,,7 ", NULL, &r, &n, &err), VMS_OK);
    CHECK(n == 5 && r[0] == 1 && r[2] == 3 && r[3] == 16 && r[4] == 7);
    vms_policy_refs_free(NULL, r, n);
    CHECK_EQ(vms_policy_refs_parse("1,2,x3,4", NULL, &r, &n, &err), VMS_ERR_PARSE);
    CHECK(strstr(err.msg, "reference 3") && strstr(err.msg, "'x3'"));
    CHECK_EQ(vms_policy_refs_parse("1 -2", NULL, &r, &n, &err), VMS_ERR_PARSE);
    CHECK(strstr(err.msg, "reference 2") && strstr(err.msg, "'-2'"));
    CHECK_EQ(vms_policy_refs_parse("18446744073709551615", NULL, &r, &n, &err), VMS_OK);
    CHECK(n == 1 && r[0] == UINT64_MAX);
    vms_policy_refs_free(NULL, r, n);
    CHECK_EQ(vms_policy_refs_parse("18446744073709551616", NULL, &r, &n, &err), VMS_ERR_PARSE);
    CHECK_EQ(vms_policy_refs_parse("0x", NULL, &r, &n, &err), VMS_ERR_PARSE);
    CHECK_EQ(vms_policy_refs_parse(" ,\n", NULL, &r, &n, &err), VMS_ERR_PARSE);
    CHECK(strstr(err.msg, "no references"));
    CHECK_EQ(vms_policy_refs_parse(NULL, NULL, &r, &n, &err), VMS_ERR_PARSE);
    th_failalloc fa;
    CHECK_EQ(vms_policy_refs_parse("1,2", th_failalloc_init(&fa, 0), &r, &n, &err), VMS_ERR_NOMEM);

    static const char alphabet[] = "0123456789xX,, \n\t-abfg+";
    vms_rng g;
    vms_rng_seed(&g, th_seed);
    unsigned bad = 0;
    for (unsigned i = 0; i < 2000; i++) {
        char text[24];
        size_t len = (size_t)vms_rng_below(&g, sizeof text);
        for (size_t k = 0; k < len; k++)
            text[k] = alphabet[vms_rng_below(&g, sizeof alphabet - 1)];
        text[len] = '\0';
        err.msg[0] = '\0';
        vms_status st = vms_policy_refs_parse(text, NULL, &r, &n, &err);
        if (st == VMS_OK)
            vms_policy_refs_free(NULL, r, n);
        else
            bad += st != VMS_ERR_PARSE || err.msg[0] == '\0';
    }
    CHECK_EQ(bad, 0);
}

/* The internal hash map against a plain array, through growth and backward-shift
 * deletion, with extreme keys; growth failure leaves it unchanged. */
static void test_u64map(void)
{
    enum { NK = 3000 };
    static uint64_t keys[NK];
    static uint32_t vals[NK]; /* VMSI_NIL: absent */
    vms_rng g;
    vms_rng_seed(&g, th_seed + 1);
    for (size_t k = 0; k < NK; k++) {
        keys[k] = k < 2 ? (k ? UINT64_MAX : 0) : vms_rng_below(&g, 4) ? k << 12 : vms_rng_next(&g);
        vals[k] = VMSI_NIL;
    }
    th_failalloc fa;
    vmsi_u64map m;
    CHECK_EQ(vmsi_u64map_init(&m, th_failalloc_init(&fa, -1), 4), VMS_OK);
    unsigned bad = 0;
    size_t live = 0;
    for (unsigned op = 0; op < 60000; op++) {
        size_t k = (size_t)vms_rng_below(&g, op < 30000 ? NK : NK / 10);
        uint32_t v = (uint32_t)vms_rng_below(&g, 1000);
        if (vms_rng_below(&g, 3)) {
            bad += vmsi_u64map_put(&m, keys[k], v) != VMS_OK;
            live += vals[k] == VMSI_NIL;
            vals[k] = v;
        } else {
            bad += vmsi_u64map_del(&m, keys[k]) != vals[k];
            live -= vals[k] != VMSI_NIL;
            vals[k] = VMSI_NIL;
        }
        size_t q = (size_t)vms_rng_below(&g, NK);
        bad += vmsi_u64map_get(&m, keys[q]) != vals[q] || m.count != live;
    }
    for (size_t k = 0; k < NK; k++)
        bad += vmsi_u64map_get(&m, keys[k]) != vals[k];
    CHECK_EQ(bad, 0);
    /* growth fails: put reports NOMEM and the map still holds what it held */
    vmsi_u64map_free(&m);
    CHECK_EQ(vmsi_u64map_init(&m, th_failalloc_init(&fa, 2), 4), VMS_OK);
    uint64_t n = 0;
    while (vmsi_u64map_put(&m, n, 7) == VMS_OK)
        n++;
    CHECK(n == 8 && m.count == 8 && vmsi_u64map_get(&m, 7) == 7 &&
          vmsi_u64map_get(&m, 8) == VMSI_NIL);
    vmsi_u64map_free(&m);
    CHECK_EQ(fa.live_bytes, 0);
}

/* The node pool's index (direct leaves below VMSI_DENSE_LIMIT, the hash map above)
 * against a plain array, with ids on both sides of the limit and at the extremes; every
 * leaf is freed with its last page; a failed leaf allocation changes nothing. */
static void test_ppool_index(void)
{
    enum { NK = 2000 };
    static uint64_t keys[NK];
    static uint32_t node[NK]; /* VMSI_NIL: absent */
    vms_rng g;
    vms_rng_seed(&g, th_seed + 2);
    for (size_t k = 0; k < NK; k++) {
        unsigned r = (unsigned)vms_rng_below(&g, 4);
        keys[k] = k < 4   ? (uint64_t[]){0, VMSI_DENSE_LIMIT - 1, VMSI_DENSE_LIMIT, UINT64_MAX}[k]
                  : r < 2 ? k * 3 /* dense, several to a leaf */
                  : r < 3 ? vms_rng_below(&g, VMSI_DENSE_LIMIT)
                          : VMSI_DENSE_LIMIT + vms_rng_below(&g, UINT64_C(1) << 40);
        for (size_t j = 0; j < k; j++)
            if (keys[j] == keys[k])
                keys[k] = k * 3; /* distinct ids */
        node[k] = VMSI_NIL;
    }
    th_failalloc fa;
    vmsi_ppool p;
    REQUIRE_VOID(vmsi_ppool_init(&p, th_failalloc_init(&fa, -1), 4, NULL) == VMS_OK);
    long long base = fa.live_bytes;
    unsigned bad = 0;
    uint32_t live = 0;
    for (unsigned op = 0; op < 40000; op++) {
        size_t k = (size_t)vms_rng_below(&g, op < 20000 ? NK : NK / 8);
        if (node[k] == VMSI_NIL && vms_rng_below(&g, 3)) {
            bad += vmsi_ppool_add(&p, keys[k], &node[k]) != VMS_OK;
            bad += p.nodes[node[k]].page != keys[k];
            live++;
        } else if (node[k] != VMSI_NIL) {
            uint32_t i;
            bad += vmsi_ppool_add(&p, keys[k], &i) != VMS_ERR_EXISTS;
            vmsi_ppool_del(&p, node[k]);
            node[k] = VMSI_NIL;
            live--;
        }
        size_t q = (size_t)vms_rng_below(&g, NK);
        bad += vmsi_ppool_find(&p, keys[q]) != node[q] || p.count != live;
    }
    for (size_t k = 0; k < NK; k++)
        bad += vmsi_ppool_find(&p, keys[k]) != node[k];
    CHECK_EQ(bad, 0);
    /* Empty the pool: every leaf goes. */
    for (size_t k = 0; k < NK; k++)
        if (node[k] != VMSI_NIL)
            vmsi_ppool_del(&p, node[k]);
    CHECK_EQ(p.count, 0);
    CHECK_EQ(p.dense.count, 0);
    /* (the node array and the map keep their size; an empty radix keeps at most its root) */
    CHECK(fa.live_bytes <= base + (long long)((p.cap - 4) * sizeof(vmsi_pnode)) +
                               (long long)((p.map.mask + 1 - 16) * 12) + 1024);
    /* A leaf allocation fails: NOMEM, the page is not indexed, nothing leaks. */
    fa.budget = 0;
    uint32_t i;
    CHECK_EQ(vmsi_ppool_add(&p, UINT64_C(1) << 30, &i), VMS_ERR_NOMEM);
    CHECK_EQ(vmsi_ppool_find(&p, UINT64_C(1) << 30), VMSI_NIL);
    CHECK_EQ(p.count, 0);
    fa.budget = -1;
    CHECK_EQ(vmsi_ppool_add(&p, UINT64_C(1) << 30, &i), VMS_OK);
    CHECK_EQ(vmsi_ppool_find(&p, UINT64_C(1) << 30), i);
    vmsi_ppool_free(&p);
    CHECK_EQ(fa.live_bytes, 0);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "policy");
    test_u64map();
    test_ppool_index();
    test_textbook();
    test_registry();
    test_clock();
    test_twolist();
    test_ops();
    test_opt_rotate();
    test_differential();
    test_failalloc();
    test_parse();
    return th_finish();
}
