/*
 * policy.c — the page-replacement policy registry and the policy-replay mode.
 *
 * Replay runs a reference string through a fixed number of frames under one policy, as
 * the textbook tables do (Silberschatz §10.4): a reference to a resident page is a hit;
 * otherwise a miss, which takes a free frame (the lowest) or, all frames being full, the
 * frame of the victim the policy chooses. Every reference sets the page's referenced
 * bit, as the walker sets a PTE's A bit; policies read and clear it through the host's
 * test_and_clear_young. For OPT the host answers next_use from a next-occurrence array
 * computed backwards over the string before the run.
 *
 * Invariants (asserted): at most `frames` pages resident; the policy tracks exactly the
 * resident pages; a victim was resident.
 */
#include <assert.h>
#include <ctype.h>
#include <stdio.h>

#include "os/reclaim/policy_impl.h"

static const vms_page_policy *const registry[] = {
#define X(n) &vmsi_ppol_##n,
    VMSI_PAGE_POLICIES
#undef X
};
#define NREGISTRY (sizeof registry / sizeof registry[0])

const vms_page_policy *vms_page_policy_find(const char *name)
{
    for (size_t i = 0; name && i < NREGISTRY; i++)
        if (strcmp(registry[i]->name, name) == 0)
            return registry[i];
    return NULL;
}

unsigned vms_page_policy_count(void)
{
    return (unsigned)NREGISTRY;
}

const vms_page_policy *vms_page_policy_get(unsigned i)
{
    return i < NREGISTRY ? registry[i] : NULL;
}

vms_status vms_page_policy_select(const char *name, const vms_policy_host *host,
                                  const vms_page_policy **out, vms_err *err)
{
    const vms_page_policy *p = vms_page_policy_find(name);
    if (!p) {
        char names[256] = "";
        size_t n = 0;
        for (size_t i = 0; i < NREGISTRY && n < sizeof names; i++)
            n += (size_t)snprintf(names + n, sizeof names - n, "%s%s", i ? ", " : "",
                                  registry[i]->name);
        vmsi_err(err, VMS_ERR_NOTFOUND, "unknown policy '%s' (known: %s)", name ? name : "(null)",
                 names);
        return VMS_ERR_NOTFOUND; /* literal: *out is set exactly when VMS_OK */
    }
    if ((p->flags & VMS_PPOL_NEEDS_FUTURE) && !(host && host->next_use)) {
        vmsi_err(err, VMS_ERR_UNSUPPORTED,
                 "policy '%s' needs the future reference string; it is available only in "
                 "replay mode",
                 p->name);
        return VMS_ERR_UNSUPPORTED;
    }
    *out = p;
    return VMS_OK;
}

/* ---- replay ------------------------------------------------------------------------ */

typedef struct replay {
    const vms_allocator *a;
    size_t frames, used;
    vmsi_u64map slot_of; /* resident page -> frame */
    uint64_t *page;      /* [frames] page in each frame */
    uint64_t *nextuse;   /* [frames] next reference of that page (UINT64_MAX: never) */
    uint8_t *young;      /* [frames] referenced bit */
    uint64_t *next;      /* [nrefs] next occurrence of refs[i], or NULL if not needed */
    size_t nrefs;
} replay;

/* Host: read and clear a resident page's referenced bit. */
static bool replay_young(void *ud, uint64_t page)
{
    replay *r = ud;
    uint32_t s = vmsi_u64map_get(&r->slot_of, page);
    if (s == VMSI_NIL)
        return false;
    bool y = r->young[s];
    r->young[s] = 0;
    return y;
}

/* Host: position of a resident page's next reference. */
static uint64_t replay_next_use(void *ud, uint64_t page)
{
    replay *r = ud;
    uint32_t s = vmsi_u64map_get(&r->slot_of, page);
    return s == VMSI_NIL ? UINT64_MAX : r->nextuse[s];
}

/* Free the replay's arrays. */
static void replay_free(replay *r)
{
    vmsi_u64map_free(&r->slot_of);
    vmsi_free(r->a, r->page, r->frames * sizeof *r->page);
    vmsi_free(r->a, r->nextuse, r->frames * sizeof *r->nextuse);
    vmsi_free(r->a, r->young, r->frames * sizeof *r->young);
    vmsi_free(r->a, r->next, r->nrefs * sizeof *r->next);
}

/* Fill r->next: for each i, the index of the next reference to refs[i] (or UINT64_MAX),
 * scanning backwards with a page -> distinct-id map and a last-seen array. */
static vms_status compute_next(replay *r, const uint64_t *refs)
{
    if (r->nrefs == 0)
        return VMS_OK;
    vmsi_u64map ids;
    uint64_t *last = vmsi_calloc(r->a, r->nrefs, sizeof *last);
    r->next = vmsi_calloc(r->a, r->nrefs, sizeof *r->next);
    vms_status st = vmsi_u64map_init(&ids, r->a, 16);
    uint32_t nids = 0;
    for (size_t i = r->nrefs; st == VMS_OK && last && r->next && i-- > 0;) {
        uint32_t id = vmsi_u64map_get(&ids, refs[i]);
        if (id == VMSI_NIL) {
            id = nids++;
            last[id] = UINT64_MAX;
            st = vmsi_u64map_put(&ids, refs[i], id);
        }
        r->next[i] = last[id];
        last[id] = i;
    }
    if (!last || !r->next)
        st = VMS_ERR_NOMEM;
    vmsi_u64map_free(&ids);
    vmsi_free(r->a, last, r->nrefs * sizeof *last);
    return st;
}

/* Allocate the replay's state for `frames` frames (and the future, if `future`). */
static vms_status replay_init(replay *r, const vms_allocator *a, size_t frames,
                              const uint64_t *refs, size_t nrefs, bool future)
{
    memset(r, 0, sizeof *r);
    r->a = a;
    r->frames = frames;
    r->nrefs = nrefs;
    vms_status st = vmsi_u64map_init(&r->slot_of, a, frames);
    r->page = vmsi_calloc(a, frames, sizeof *r->page);
    r->nextuse = vmsi_calloc(a, frames, sizeof *r->nextuse);
    r->young = vmsi_calloc(a, frames, sizeof *r->young);
    if (st != VMS_OK || !r->page || !r->nextuse || !r->young)
        return VMS_ERR_NOMEM;
    return future ? compute_next(r, refs) : VMS_OK;
}

/* The frame for a missing page: a free one, or the victim's. */
static uint32_t take_frame(replay *r, const vms_page_policy *pol, void *ps,
                           const vms_policy_host *host, vms_policy_step *step)
{
    if (r->used < r->frames)
        return (uint32_t)r->used++;
    bool ok = pol->victim(ps, host, &step->victim);
    assert(ok); /* the policy tracks every resident page, and frames >= 1 are full */
    (void)ok;
    step->evicted = true;
    uint32_t s = vmsi_u64map_del(&r->slot_of, step->victim);
    assert(s != VMSI_NIL); /* the victim was resident */
    return s;
}

/* Replay reference i; fills *step. VMS_ERR_NOMEM only from a policy that grows. */
static vms_status reference(replay *r, const vms_page_policy *pol, void *ps,
                            const vms_policy_host *host, const uint64_t *refs, size_t i,
                            vms_policy_step *step)
{
    *step = (vms_policy_step){.index = i, .page = refs[i]};
    uint32_t s = vmsi_u64map_get(&r->slot_of, refs[i]);
    step->hit = s != VMSI_NIL;
    if (!step->hit) {
        s = take_frame(r, pol, ps, host, step);
        r->page[s] = refs[i];
        if (vmsi_u64map_put(&r->slot_of, refs[i], s) != VMS_OK)
            return VMS_ERR_NOMEM; /* cannot happen: the map was sized for the frames */
    }
    r->young[s] = 1;
    r->nextuse[s] = r->next ? r->next[i] : UINT64_MAX;
    if (!step->hit)
        return pol->insert(ps, refs[i]);
    if (pol->flags & VMS_PPOL_NEEDS_ACCESS)
        pol->access(ps, refs[i]);
    return VMS_OK;
}

/* Update the totals after one step. */
static void count_step(vms_policy_totals *t, const vms_policy_step *step)
{
    t->references++;
    t->hits += step->hit;
    t->misses += !step->hit;
    t->evictions += step->evicted;
}

/* Run the whole string with policy state ps. */
static vms_status run(replay *r, const vms_page_policy *pol, void *ps, const uint64_t *refs,
                      const vms_policy_replay_opts *o, vms_policy_totals *out)
{
    vms_policy_host host = {r, replay_young, replay_next_use};
    for (size_t i = 0; i < r->nrefs; i++) {
        vms_policy_step step;
        vms_status st = reference(r, pol, ps, &host, refs, i, &step);
        if (st != VMS_OK)
            return st;
        assert(pol->count(ps) == r->used && r->used <= r->frames);
        count_step(out, &step);
        if (o->on_step)
            o->on_step(o->ud, &step, r->page, r->used);
    }
    out->hit_rate = out->references ? (double)out->hits / (double)out->references : 0.0;
    return VMS_OK;
}

vms_status vms_policy_replay(const uint64_t *refs, size_t nrefs, const vms_policy_replay_opts *opts,
                             vms_policy_totals *out, vms_err *err)
{
    memset(out, 0, sizeof *out);
    vms_policy_host future = {NULL, NULL, replay_next_use};
    const vms_page_policy *pol = NULL;
    vms_status st = vms_page_policy_select(opts->policy, &future, &pol, err);
    if (st != VMS_OK)
        return st;
    if (opts->frames == 0)
        return vmsi_err(err, VMS_ERR_INVAL, "frames must be at least 1, got 0");
    if (nrefs && !refs)
        return vmsi_err(err, VMS_ERR_INVAL, "no reference array for %zu references", nrefs);
    const vms_allocator *a = opts->alloc ? opts->alloc : vms_allocator_default();
    replay r;
    void *ps = NULL;
    /* More frames than references never fill: the same replay with fewer host bytes. */
    size_t frames = opts->frames < nrefs ? opts->frames : (nrefs ? nrefs : 1);
    st = replay_init(&r, a, frames, refs, nrefs, pol->flags & VMS_PPOL_NEEDS_FUTURE);
    if (st != VMS_OK)
        st = vmsi_err(err, st, "out of memory preparing a replay of %zu references", nrefs);
    else
        st = pol->create(a, frames, opts->seed, &ps, err);
    if (st == VMS_OK && (st = run(&r, pol, ps, refs, opts, out)) != VMS_OK)
        st = vmsi_err(err, st, "policy %s failed during the replay%s", pol->name,
                      st == VMS_ERR_NOMEM ? ": out of memory" : "");
    pol->destroy(ps);
    replay_free(&r);
    if (st != VMS_OK)
        memset(out, 0, sizeof *out);
    return st;
}

/* ---- reference strings -------------------------------------------------------------- */

static bool is_sep(char c)
{
    return c == ',' || isspace((unsigned char)c);
}

/* Parse one token s[0..n) as a page number (decimal, or 0x hex); false if malformed. */
static bool parse_page(const char *s, size_t n, uint64_t *out)
{
    unsigned base = 10;
    if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
        n -= 2;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned d;
        if (s[i] >= '0' && s[i] <= '9')
            d = (unsigned)(s[i] - '0');
        else if (base == 16 && isxdigit((unsigned char)s[i]))
            d = (unsigned)(tolower((unsigned char)s[i]) - 'a' + 10);
        else
            return false;
        if (v > (UINT64_MAX - d) / base)
            return false; /* overflow */
        v = v * base + d;
    }
    *out = v;
    return true;
}

/* Walk the tokens of text; store them in refs (if not NULL). Returns the count, or
 * sets err and returns SIZE_MAX at the first bad token. */
static size_t scan_refs(const char *text, uint64_t *refs, vms_err *err)
{
    size_t n = 0;
    for (const char *p = text; *p;) {
        if (is_sep(*p)) {
            p++;
            continue;
        }
        size_t len = 0;
        while (p[len] && !is_sep(p[len]))
            len++;
        uint64_t v;
        if (!parse_page(p, len, &v)) {
            vmsi_err(err, VMS_ERR_PARSE,
                     "reference %zu: bad token '%.*s%s' (expected a page number: decimal "
                     "or 0x hex)",
                     n + 1, (int)(len > 40 ? 40 : len), p, len > 40 ? "..." : "");
            return SIZE_MAX;
        }
        if (refs)
            refs[n] = v;
        n++;
        p += len;
    }
    return n;
}

vms_status vms_policy_refs_parse(const char *text, const vms_allocator *a, uint64_t **refs,
                                 size_t *nrefs, vms_err *err)
{
    if (!a)
        a = vms_allocator_default();
    size_t n = scan_refs(text ? text : "", NULL, err);
    if (n == SIZE_MAX)
        return VMS_ERR_PARSE;
    if (n == 0)
        return vmsi_err(err, VMS_ERR_PARSE,
                        "no references (expected page numbers "
                        "separated by commas or spaces)");
    uint64_t *v = vmsi_calloc(a, n, sizeof *v);
    if (!v)
        return vmsi_err(err, VMS_ERR_NOMEM, "out of memory for %zu references", n);
    scan_refs(text, v, err);
    *refs = v;
    *nrefs = n;
    return VMS_OK;
}

void vms_policy_refs_free(const vms_allocator *a, uint64_t *refs, size_t nrefs)
{
    vmsi_free(a ? a : vms_allocator_default(), refs, nrefs * sizeof *refs);
}
