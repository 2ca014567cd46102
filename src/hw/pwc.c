/*
 * pwc.c — page-walk caches (pwc.h; Intel SDM Vol. 3A §4.10.3 "paging-structure
 * caches"): one set-associative array (assoc.h) per cached level 2 … 5.
 *
 * Keys. A level-L entry is used by every linear address whose bits above the region L
 * maps agree, so its key is VA[top:12+9(L-1)]: VA[47:21] for the PDE cache … VA[47:39]
 * for the PML4E cache with 4-level paging, and VA[56:…] with 5-level paging (the PML5E
 * cache keys on VA[56:48]). With 4-level paging bits 56:48 take no part, so two
 * addresses differing only there (one of them non-canonical) share entries, as on
 * hardware. The set is key mod sets. Entries are tagged with the PCID, never global.
 *
 * Choices: level 5 is cached only when levels == 5 (its configuration is still
 * validated, so one machine description serves both modes); level 0/1 configurations
 * must be empty (level-1 entries are leaves, which the TLB caches).
 */
#include "vmsim/pwc.h"

#include "hw/assoc.h"
#include "hw/curve_impl.h"
#include "hw/tap.h"
#include "util/util.h"

/*
 * The data word of a PWC entry (the tag word is assoc.h's, key as above): the table's
 * frame number and the rights as bytes of 0 or 1, so that a hit unpacks into
 * vms_pwc_entry with two shifts for the address and one for the rights.
 *
 *   63      56 55      48 47      40 39                                              0
 *  +----------+----------+----------+------------------------------------------------+
 *  |    XD    |    US    |    RW    |           table_pa[51:12] (the frame)          |
 *  +----------+----------+----------+------------------------------------------------+
 */
#define D_FRAME_BITS 40
#define D_RW_SHIFT   40
#define D_US_SHIFT   48
#define D_XD_SHIFT   56
#define D_PA_MASK    UINT64_C(0x000FFFFFFFFFF000) /* what table_pa may hold */
_Static_assert(D_FRAME_BITS + 12 == 52 && D_RW_SHIFT == D_FRAME_BITS,
               "the frame fills bits 39:0 and the rights bytes start above it");

#define PWC_MIN_LEVEL   2
#define PWC_MAX_LEVEL   5
#define PWC_NLEVELS     (PWC_MAX_LEVEL - PWC_MIN_LEVEL + 1)
#define PWC_MAX_ENTRIES (UINT32_C(1) << 20) /* per level, as for a TLB partition */

/*
 * One cached level: its array and what makes its lookup and fill short.
 *
 * last: the entry this level touched last (the way a lookup hit or a fill wrote), or
 * `never` (tag 0, never valid). A set's replacement state changes only by touches
 * (flushes clear tags; nothing else writes it), so `last` is the most recently touched
 * way of its set, and touching it again changes nothing for the policies assoc.h runs
 * inline: exact LRU's matrix already has its row full and its column clear, bit-PLRU
 * already has its bit set (and a touch never leaves every bit set), FIFO and random do
 * nothing on a hit. So on the fast path a lookup whose tag and context are `last`'s hits
 * it with neither the set scan nor the touch. A flushed `last` has tag 0 and matches
 * nothing until a hit or a fill moves it. (vms_pwc_check verifies the claim on a copy
 * of the set's state.) Both paths keep `last`, so that a PWC can switch between them
 * (the plain path takes the lookups an observer watches).
 *
 * miss_tag, miss_ctx, miss_set: the tag and context of the last lookup that probed the
 * level and missed, and the set it probed; miss_tag 0 when none. Until the level's next
 * fill no entry of the level holds them (only fills add entries; flushes only remove),
 * so a fill of them has nothing to supersede: it skips the conflict scan (both paths)
 * and the set's index (the fast path). Every fill of the level clears it.
 */
typedef struct pwc_level {
    /* What the fast lookup reads, first; the geometry fields are a's, copied. */
    const vmsi_assoc_entry *last;
    vmsi_assoc_entry *e; /* a.e */
    uint64_t set_mask;   /* a.set_mask (sets - 1, when a power of two) */
    size_t stride;       /* bytes per set: ways entries */
    unsigned ways;       /* a.ways */
    uint8_t shift;       /* the key's shift: 12 + 9 (level - 1) */
    bool pow2;           /* a.pow2: the set by mask, else modulo */
    bool fill_fast;      /* the fast path is on and the policy's victim is inline */
    bool four;           /* 4 ways: the scan unrolled; with exact LRU or FIFO, the matrix
                            as one 32-bit word */
    uint8_t level;       /* SDM level 2 … 5 */
    uint64_t miss_tag;
    vms_ctx miss_ctx;
    unsigned miss_set;
    unsigned cap; /* sets * ways: a level this full has no invalid way */
    /* By way, for exact LRU and FIFO up to 8 ways: the order matrix's row of a way just
     * touched (every other way; repl_impl.h), in place in the set's word. */
    uint64_t mat_row[VMSI_REPL_MAT_WAYS];
    vmsi_assoc a;
    vms_curve *curve; /* curves observing the level (curve.h), or NULL */
} pwc_level;

/* Where `last` points when no way is known: tag 0 matches no lookup. */
static const vmsi_assoc_entry never;

/* The observer slot a PWC with no tap reads: NULL, no observer. */
static const vms_event_fn no_observer;

struct vms_pwc {
    pwc_level lv[PWC_NLEVELS]; /* the cached levels lv[0 .. n), deepest first */
    pwc_level *end;            /* lv + n */
    unsigned n;
    /*
     * fast: the shortcuts are taken. It needs every level's touch inline (no policy called
     * through pointers: assoc.h's CALL kind), vms_pwc_set_fast not turned off, and no
     * level's curve slot handed out (vmsi_pwc_curve_slot: a curve must see every lookup
     * in full). Off: the plain path, the arrays through assoc.h as before the shortcuts.
     */
    bool fast;
    bool fast_wanted;                       /* what vms_pwc_set_fast last asked for */
    bool slot_given;                        /* vmsi_pwc_curve_slot was called */
    pwc_level *by_level[PWC_MAX_LEVEL + 1]; /* by SDM level: its cache, or NULL */
    uint64_t va_mask;                       /* VA bits that take part in keys: 48 or 57 */
    /* The tap's observer slot (&tap->fn; a unit's tap is fixed when it is set), or
     * &no_observer: "is anyone listening" is one load and a test. */
    const vms_event_fn *observer;
    const vmsi_unit_tap *tap; /* where lookups, fills and flushes are reported, or NULL */
    vms_pwc_stats stats;
    unsigned levels; /* 3 (Sv39), 4 or 5 paging levels */
    vms_rng rng;
    vms_allocator alloc;
};

void vmsi_pwc_set_tap(vms_pwc *pwc, const vmsi_unit_tap *u)
{
    pwc->tap = u;
    pwc->observer = u && u->tap ? &u->tap->fn : &no_observer;
}

/* Is an observer listening? (vmsi_unit_on's answer.) */
static inline bool observed(const vms_pwc *pwc)
{
    return __builtin_expect(*pwc->observer != NULL, 0);
}

/* Tell the tap of a lookup (level 0: a miss; e: what a hit gave) and return level. Out
 * of line and cold, and called last, so that the lookup keeps no frame for it. */
__attribute__((noinline, cold)) static unsigned
report_lookup(const vms_pwc *pwc, vms_ctx ctx, uint64_t va, unsigned level, const vms_pwc_entry *e)
{
    vms_event ev = {.type = VMS_EV_PWC_LOOKUP,
                    .pwc_lookup = {va, ctx, level, level ? e->table_pa : 0}};
    vmsi_unit_emit(pwc->tap, &ev);
    return level;
}

/* Tell the tap of a fill (out of line and cold, as report_lookup). */
__attribute__((noinline, cold)) static void
report_fill(const vms_pwc *pwc, vms_ctx ctx, uint64_t va, unsigned level, const vms_pwc_entry *e)
{
    vms_event ev = {.type = VMS_EV_PWC_FILL, .pwc_fill = {va, ctx, level, e->table_pa}};
    vmsi_unit_emit(pwc->tap, &ev);
}

/* The cached level `level`, or NULL (none, or a level above the paging levels). */
static inline pwc_level *level_of(const vms_pwc *pwc, unsigned level)
{
    return level <= PWC_MAX_LEVEL ? pwc->by_level[level] : NULL;
}

/* The valid tag of va at level L: the VA bits above what one level-L entry maps. */
static inline uint64_t tag_of(const vms_pwc *pwc, const pwc_level *L, uint64_t va)
{
    return vmsi_assoc_tag((va & pwc->va_mask) >> L->shift, false);
}

/* The data word of entry e (the field map above). */
static inline uint64_t data_of(const vms_pwc_entry *e)
{
    return e->table_pa >> 12 | (uint64_t)(e->rw != 0) << D_RW_SHIFT |
           (uint64_t)(e->us != 0) << D_US_SHIFT | (uint64_t)(e->xd != 0) << D_XD_SHIFT;
}

/* The vms_pwc_entry that data word d holds. */
static inline void unpack(uint64_t d, vms_pwc_entry *out)
{
    out->table_pa = d << (64 - D_FRAME_BITS) >> (64 - D_FRAME_BITS - 12);
    out->rw = (uint8_t)(d >> D_RW_SHIFT);
    out->us = (uint8_t)(d >> D_US_SHIFT);
    out->xd = (uint8_t)(d >> D_XD_SHIFT);
}

/* ---- creation ---- */

/* Validate the cache of one level (entries 0 means none). */
static vms_status check_level(const vms_pwc_level_config *c, unsigned level, vms_err *err)
{
    if (c->entries == 0)
        return VMS_OK;
    if (level < PWC_MIN_LEVEL)
        return vmsi_err(err, VMS_ERR_INVAL,
                        "pwc level %u: only levels 2..5 can be cached, got %u entries", level,
                        c->entries);
    if (c->ways == 0 || c->ways > VMS_REPL_MAX_WAYS)
        return vmsi_err(err, VMS_ERR_INVAL, "pwc level %u: ways must be 1..%u, got %u", level,
                        VMS_REPL_MAX_WAYS, c->ways);
    if (c->entries % c->ways)
        return vmsi_err(err, VMS_ERR_INVAL, "pwc level %u: %u entries is not a multiple of %u ways",
                        level, c->entries, c->ways);
    if (c->entries > PWC_MAX_ENTRIES)
        return vmsi_err(err, VMS_ERR_INVAL, "pwc level %u: %u entries exceeds %u", level,
                        c->entries, (unsigned)PWC_MAX_ENTRIES);
    if (c->policy && !vms_repl_find(c->policy))
        return vmsi_err(err, VMS_ERR_INVAL, "pwc level %u: unknown replacement policy \"%s\"",
                        level, c->policy);
    return VMS_OK;
}

/* Validate levels and every level's geometry (level 5 even with 4-level paging). */
static vms_status check_config(const vms_pwc_config *cfg, unsigned levels, vms_err *err)
{
    if (!cfg)
        return vmsi_err(err, VMS_ERR_INVAL, "pwc: no configuration given");
    if (levels < 3 || levels > 5) /* 3: RISC-V Sv39 */
        return vmsi_err(err, VMS_ERR_INVAL, "pwc: paging levels must be 3, 4 or 5, got %u", levels);
    for (unsigned l = 0; l <= PWC_MAX_LEVEL; l++) {
        vms_status st = check_level(&cfg->level[l], l, err);
        if (st != VMS_OK)
            return st;
    }
    return VMS_OK;
}

/* Take the shortcuts when allowed (see struct vms_pwc); every level's `last` restarts. */
static void update_fast(vms_pwc *pwc)
{
    bool ok = pwc->fast_wanted && !pwc->slot_given;
    for (unsigned i = 0; i < pwc->n; i++) {
        pwc->lv[i].last = &never;
        ok = ok && pwc->lv[i].a.kind != VMSI_ASSOC_CALL && pwc->lv[i].pow2;
    }
    pwc->fast = ok;
    for (unsigned i = 0; i < pwc->n; i++) {
        uint8_t k = pwc->lv[i].a.kind;
        pwc->lv[i].fill_fast =
            ok && (k == VMSI_ASSOC_PLRU16 || k == VMSI_ASSOC_LRU8 || k == VMSI_ASSOC_FIFO8);
    }
}

vms_status vms_pwc_create(const vms_allocator *a, const vms_pwc_config *cfg, unsigned levels,
                          uint64_t seed, vms_pwc **out, vms_err *err)
{
    *out = NULL;
    vms_status st = check_config(cfg, levels, err);
    if (st != VMS_OK)
        return st;
    if (!a)
        a = vms_allocator_default();
    vms_pwc *pwc = vmsi_zalloc(a, sizeof *pwc);
    if (!pwc)
        return vmsi_err(err, VMS_ERR_NOMEM, "pwc: out of memory allocating the caches");
    pwc->alloc = *a;
    pwc->levels = levels;
    pwc->va_mask = (UINT64_C(1) << (levels == 5 ? 57 : 48)) - 1;
    vmsi_pwc_set_tap(pwc, NULL);
    vms_rng_seed(&pwc->rng, seed);
    for (unsigned l = PWC_MIN_LEVEL; l <= levels; l++) {
        const vms_pwc_level_config *c = &cfg->level[l];
        if (c->entries == 0)
            continue;
        const vms_repl_policy *pol = vms_repl_find(c->policy ? c->policy : "lru");
        pwc_level *L = &pwc->lv[pwc->n];
        if (vmsi_assoc_init(&L->a, a, c->entries / c->ways, c->ways, 0, pol, &pwc->rng) != VMS_OK) {
            vmsi_assoc_fini(&L->a, a); /* not yet counted in n */
            vms_pwc_destroy(pwc);
            return vmsi_err(err, VMS_ERR_NOMEM, "pwc level %u: out of memory (%u entries)", l,
                            c->entries);
        }
        L->level = (uint8_t)l;
        L->shift = (uint8_t)(12u + 9u * (l - 1u));
        L->cap = c->entries;
        L->e = L->a.e;
        L->set_mask = L->a.set_mask;
        L->pow2 = L->a.pow2;
        L->ways = L->a.ways;
        L->stride = L->ways * sizeof(vmsi_assoc_entry);
        L->four = L->ways == 4;
        for (unsigned w = 0; L->ways <= VMSI_REPL_MAT_WAYS && w < L->ways; w++)
            L->mat_row[w] = (uint64_t)(((1u << L->ways) - 1) & ~(1u << w)) << (8 * w);
        pwc->by_level[l] = L;
        pwc->n++;
    }
    pwc->end = pwc->lv + pwc->n;
    pwc->fast_wanted = true;
    update_fast(pwc);
    *out = pwc;
    return VMS_OK;
}

void vms_pwc_destroy(vms_pwc *pwc)
{
    if (!pwc)
        return;
    vms_allocator a = pwc->alloc;
    for (unsigned i = 0; i < pwc->n; i++)
        vmsi_assoc_fini(&pwc->lv[i].a, &a);
    vmsi_free(&a, pwc, sizeof *pwc);
}

void vms_pwc_set_fast(vms_pwc *pwc, bool on)
{
    pwc->fast_wanted = on;
    update_fast(pwc);
}

/* ---- the plain path: every non-empty level probed in full, through assoc.h ---- */

/* The way of row holding the valid tag `want` in context ctx, or -1: vmsi_assoc_find for
 * entries that are never global (a PWC's), so a hit is the same tag and the same
 * context. */
static inline int find_local(const vmsi_assoc_entry *row, unsigned ways, uint64_t want, vms_ctx ctx)
{
    for (unsigned w = 0; w < ways; w++)
        if (row[w].tag == want && row[w].ctx == ctx)
            return (int)w;
    return -1;
}

/* Show level L's lookup of tag to its curve (way: the real array's answer, or -1). */
static void curve_lookup(pwc_level *L, uint64_t tag, vms_ctx ctx, uint64_t va, unsigned set,
                         int way)
{
    uint64_t key = vmsi_assoc_key(tag);
    vmsi_curve_lookup(L->curve, &key, 1, ctx, va,
                      way < 0 ? NULL : vmsi_assoc_at(&L->a, set, (unsigned)way));
}

/* Probe level L's set for (want, ctx): on a hit touch the way (as a hit) and return its
 * entry; on a miss record it and return NULL. Shows the lookup to the level's curves. */
static const vmsi_assoc_entry *probe_plain(pwc_level *L, uint64_t want, vms_ctx ctx, uint64_t va)
{
    vmsi_assoc *a = &L->a;
    unsigned set = vmsi_assoc_set(a, vmsi_assoc_key(want));
    int way = find_local(vmsi_assoc_at(a, set, 0), a->ways, want, ctx);
    assert(way == vmsi_assoc_find(a, set, vmsi_assoc_key(want), ctx));
    if (L->curve)
        curve_lookup(L, want, ctx, va, set, way);
    if (way < 0) {
        L->miss_tag = want;
        L->miss_ctx = ctx;
        L->miss_set = set;
        return NULL;
    }
    vmsi_assoc_touch_as(a, set, (unsigned)way, true);
    return L->last = vmsi_assoc_at(a, set, (unsigned)way);
}

/* The answer to a lookup of (ctx, va) as vms_pwc_lookup gives it (stats and tap): the
 * level, *out from entry e of level L, or 0 when e is NULL. */
static unsigned answer(vms_pwc *pwc, vms_ctx ctx, uint64_t va, const pwc_level *L,
                       const vmsi_assoc_entry *e, vms_pwc_entry *out)
{
    if (!e) {
        pwc->stats.misses++;
        return observed(pwc) ? report_lookup(pwc, ctx, va, 0, NULL) : 0;
    }
    unpack(e->data, out);
    unsigned level = L->level;
    pwc->stats.hits[level]++;
    return observed(pwc) ? report_lookup(pwc, ctx, va, level, out) : level;
}

/* The lookup on the plain path (stats and tap included), also the fast path's when an
 * observer listens. Out of line and called last, so that the fast path keeps no frame
 * for it. */
static __attribute__((noinline)) unsigned lookup_plain(vms_pwc *pwc, vms_ctx ctx, uint64_t va,
                                                       vms_pwc_entry *out)
{
    pwc->stats.lookups++;
    for (unsigned i = 0; i < pwc->n; i++) {
        pwc_level *L = &pwc->lv[i];
        if (L->a.count == 0 && !L->curve) /* an empty level answers nothing */
            continue;
        const vmsi_assoc_entry *e = probe_plain(L, tag_of(pwc, L, va), ctx, va);
        if (e)
            return answer(pwc, ctx, va, L, e, out);
    }
    return answer(pwc, ctx, va, NULL, NULL, out);
}

/*
 * A fill on the plain path, and the fast path's fills that it does not take itself (a
 * fill with no recorded miss of it: the conflict scan; a policy whose victim is a call).
 * Fresh after the level's recorded miss of (tag, ctx) or into an empty level, else with
 * the conflict scan. Stats, curves and tap included. Out of line and called last.
 */
static __attribute__((noinline)) void fill_plain(vms_pwc *pwc, pwc_level *L, vms_ctx ctx,
                                                 uint64_t va, uint64_t tag, const vms_pwc_entry *e)
{
    vmsi_assoc *a = &L->a;
    uint64_t data = data_of(e);
    bool evicted;
    unsigned way;
    if ((L->miss_tag == tag && L->miss_ctx == ctx) || a->count == 0)
        way = vmsi_assoc_fill_fresh_inline(a, tag, ctx, data, &evicted, NULL);
    else
        way = vmsi_assoc_fill(a, tag, ctx, data, &evicted, NULL);
    L->last = vmsi_assoc_at(a, vmsi_assoc_set(a, vmsi_assoc_key(tag)), way);
    L->miss_tag = 0;
    if (L->curve)
        vmsi_curve_fill(L->curve, tag, ctx, data);
    pwc->stats.fills++;
    if (observed(pwc))
        report_fill(pwc, ctx, va, L->level, e);
}

/* ---- the fast path ---- */

/* The set that key indexes at level L on the fast path (a PWC's arrays index from bit 0
 * of the key; the fast path needs a power of two of sets). */
static inline unsigned set_of(const pwc_level *L, uint64_t key)
{
    assert(L->pow2);
    return (unsigned)(key & L->set_mask);
}

/* The first entry of set `set` at level L. */
static inline vmsi_assoc_entry *row_of(const pwc_level *L, unsigned set)
{
    return (vmsi_assoc_entry *)(void *)((char *)L->e + (size_t)set * L->stride);
}

/* The policy's touch of (set, way) on a hit, for the fast path's policies (no call): bit-PLRU
 * and exact LRU as assoc.h's inline touch; FIFO and random touch nothing on a hit. */
static inline void touch_hit(vmsi_assoc *a, unsigned set, unsigned way)
{
    uint8_t *s = a->state + (size_t)set * a->state_bytes;
    if (a->kind == VMSI_ASSOC_PLRU16)
        vmsi_assoc_plru_touch(a, s, way);
    else if (a->kind == VMSI_ASSOC_LRU8)
        vmsi_repl_mat_touch(s, a->ways, way);
    else
        assert(a->kind == VMSI_ASSOC_FIFO8 || a->kind == VMSI_ASSOC_NOSTATE);
}

static bool last_is_mru(const pwc_level *L);

#ifndef NDEBUG
/* The debug build's check of a direct hit: the set scan finds `last`, and touching it
 * would change nothing. */
static inline bool direct_hit_ok(const pwc_level *L, uint64_t want, vms_ctx ctx)
{
    const vmsi_assoc_entry *row = row_of(L, set_of(L, vmsi_assoc_key(want)));
    int way = find_local(row, L->ways, want, ctx);
    return way >= 0 && &row[way] == L->last && last_is_mru(L);
}
#endif

/* The entry of row (level L's set) holding (want, ctx), or NULL: find_local, unrolled for
 * 4 ways (a tag compare each; the context only where the tag matches). */
static inline vmsi_assoc_entry *scan(const pwc_level *L, vmsi_assoc_entry *row, uint64_t want,
                                     vms_ctx ctx)
{
    if (L->four) {
        if (row[0].tag == want && row[0].ctx == ctx)
            return row;
        if (row[1].tag == want && row[1].ctx == ctx)
            return row + 1;
        if (row[2].tag == want && row[2].ctx == ctx)
            return row + 2;
        if (row[3].tag == want && row[3].ctx == ctx)
            return row + 3;
        return NULL;
    }
    for (vmsi_assoc_entry *p = row, *end = row + L->ways; p < end; p++)
        if (p->tag == want && p->ctx == ctx)
            return p;
    return NULL;
}

/* A hit of the fast path (no observer) at level L on entry e. */
static inline unsigned hit(vms_pwc *pwc, const pwc_level *L, const vmsi_assoc_entry *e,
                           vms_pwc_entry *out)
{
    unpack(e->data, out);
    pwc->stats.hits[L->level]++;
    return L->level;
}

/*
 * The deepest level holding (ctx, va). On the fast path each level answers from `last`
 * when its tag and context are last's, else scans its set — empty or not: an empty level
 * misses, and records it truly. A lookup with an observer takes the plain path.
 */
unsigned vms_pwc_lookup(vms_pwc *pwc, vms_ctx ctx, uint64_t va, vms_pwc_entry *out)
{
    if (__builtin_expect(!pwc->fast || observed(pwc), 0))
        return lookup_plain(pwc, ctx, va, out);
    pwc->stats.lookups++;
    uint64_t v = va & pwc->va_mask;
    for (pwc_level *L = pwc->lv, *end = pwc->end; L < end; L++) {
        uint64_t key = v >> L->shift, want = vmsi_assoc_tag(key, false);
        const vmsi_assoc_entry *e = L->last;
        if (e->tag == want && e->ctx == ctx) {
            assert(direct_hit_ok(L, want, ctx));
            return hit(pwc, L, e, out);
        }
        unsigned set = set_of(L, key);
        vmsi_assoc_entry *row = row_of(L, set), *p = scan(L, row, want, ctx);
        assert(p ? p - row == vmsi_assoc_find(&L->a, set, key, ctx)
                 : vmsi_assoc_find(&L->a, set, key, ctx) < 0);
        if (p) {
            touch_hit(&L->a, set, (unsigned)(p - row));
            L->last = p;
            return hit(pwc, L, p, out);
        }
        L->miss_tag = want;
        L->miss_ctx = ctx;
        L->miss_set = set;
    }
    pwc->stats.misses++;
    return 0;
}

/*
 * The way a fill takes in a full set, with its touch, for the fast fill's policies:
 * exact LRU and FIFO (the order matrix: the way whose row is zero, then its row set from
 * mat_row and its column cleared) and bit-PLRU (the lowest clear bit) — repl_impl.h's
 * and assoc.h's victim then touch, with the state loaded and stored once.
 */
static inline unsigned replace(const pwc_level *L, uint8_t *s)
{
    const vmsi_assoc *a = &L->a;
    if (a->kind == VMSI_ASSOC_PLRU16) {
        unsigned way = vmsi_assoc_plru_victim(a, s);
        vmsi_assoc_plru_touch(a, s, way);
        return way;
    }
    assert(a->kind == VMSI_ASSOC_LRU8 || a->kind == VMSI_ASSOC_FIFO8);
    if (L->four) { /* the same on the set's four bytes as one word */
        uint32_t m;
        memcpy(&m, s, 4);
        uint32_t z = (m - UINT32_C(0x01010101)) & ~m & UINT32_C(0x80808080);
        unsigned way = (unsigned)__builtin_ctz(z) >> 3;
        m = (m & ~(UINT32_C(0x01010101) << way)) | (uint32_t)L->mat_row[way];
        memcpy(s, &m, 4);
        return way;
    }
    uint64_t m = vmsi_repl_mat_load(s, L->ways);
    uint64_t z = (m - UINT64_C(0x0101010101010101)) & ~m & UINT64_C(0x8080808080808080);
    unsigned way = (unsigned)__builtin_ctzll(z) >> 3;
    m = (m & ~(UINT64_C(0x0101010101010101) << way)) | L->mat_row[way];
    vmsi_repl_mat_store(s, L->ways, m);
    return way;
}

/* The common end of a fast fill of (tag, ctx, e) into `n`. */
static inline void filled(vms_pwc *pwc, pwc_level *L, vmsi_assoc_entry *n, uint64_t tag,
                          vms_ctx ctx, const vms_pwc_entry *e)
{
    *n = (vmsi_assoc_entry){tag, data_of(e), ctx};
#ifndef NDEBUG
    const vmsi_assoc_entry *row = row_of(L, L->miss_set);
    for (unsigned w = 0; w < L->ways; w++)
        assert(&row[w] == n || !vmsi_assoc_conflict(&row[w], n));
#endif
    L->last = n;
    L->miss_tag = 0;
    pwc->stats.fills++;
}

/* A fast fill into a level that is not full: the lowest invalid way of the recorded set
 * if it has one (with the policy's touch of a fill), else the victim. Out of line: the
 * walk's fills meet full levels. */
static __attribute__((noinline)) void fill_free(vms_pwc *pwc, pwc_level *L, vms_ctx ctx,
                                                uint64_t tag, const vms_pwc_entry *e)
{
    vmsi_assoc *a = &L->a;
    vmsi_assoc_entry *row = row_of(L, L->miss_set);
    uint8_t *s = a->state + (size_t)L->miss_set * a->state_bytes;
    unsigned way = 0;
    while (way < L->ways && (row[way].tag & VMSI_ASSOC_V))
        way++;
    if (way < L->ways) {
        a->count++;
        if (a->kind == VMSI_ASSOC_PLRU16)
            vmsi_assoc_plru_touch(a, s, way);
        else
            vmsi_repl_mat_touch(s, a->ways, way);
    } else {
        way = replace(L, s);
    }
    filled(pwc, L, &row[way], tag, ctx, e);
}

/*
 * Remember the level-`level` entry e for (ctx, va). The fast fill is the walk's case: a
 * fill of what the level's last probe missed (so nothing can conflict), with an inline
 * victim (fill_fast) — into the recorded set, the lowest invalid way, else the
 * policy's victim: vmsi_assoc_fill_fresh's rule. The rest goes to fill_plain.
 */
void vms_pwc_fill(vms_pwc *pwc, vms_ctx ctx, uint64_t va, unsigned level, const vms_pwc_entry *e)
{
    assert(level >= PWC_MIN_LEVEL && level <= PWC_MAX_LEVEL);
    assert((e->table_pa & ~D_PA_MASK) == 0);
    pwc_level *L = pwc->by_level[level];
    if (!L)
        return;
    uint64_t tag = tag_of(pwc, L, va);
    if (!(L->miss_tag == tag && L->miss_ctx == ctx && L->fill_fast) || observed(pwc)) {
        fill_plain(pwc, L, ctx, va, tag, e);
        return;
    }
    assert(L->miss_set == set_of(L, vmsi_assoc_key(tag)));
    if (L->a.count < L->cap) { /* a full level has no invalid way */
        fill_free(pwc, L, ctx, tag, e);
        return;
    }
    unsigned way = replace(L, L->a.state + (size_t)L->miss_set * L->a.state_bytes);
    filled(pwc, L, row_of(L, L->miss_set) + way, tag, ctx, e);
}

/* ---- invalidation and inspection ---- */

/* Entries of context *arg (a vms_ctx). */
static bool of_ctx(const vmsi_assoc_entry *e, const void *arg)
{
    return e->ctx == *(const vms_ctx *)arg;
}

/* Every entry. */
static bool any(const vmsi_assoc_entry *e, const void *arg)
{
    (void)e;
    (void)arg;
    return true;
}

/* Drop the entries pred selects at every cached level. (A dropped entry's tag is 0, so a
 * level's `last` pointing at it matches nothing.) */
static void drop(vms_pwc *pwc, vmsi_assoc_pred pred, const void *arg, vms_ev_flush how, vms_ctx ctx)
{
    uint64_t before = pwc->stats.invalidations;
    for (unsigned i = 0; i < pwc->n; i++) {
        pwc_level *L = &pwc->lv[i];
        pwc->stats.invalidations += vmsi_assoc_drop_where(&L->a, 0, L->a.sets, pred, arg);
        if (L->curve)
            vmsi_curve_drop(L->curve, pred, arg);
    }
    if (observed(pwc) && pwc->stats.invalidations != before) {
        vms_event ev = {
            .type = VMS_EV_PWC_INVALIDATE,
            .pwc_invalidate = {how, ctx, (unsigned)(pwc->stats.invalidations - before)}};
        vmsi_unit_emit(pwc->tap, &ev);
    }
}

/* The caller may attach a curve through the slot at any time, and a curve must see every
 * lookup in full: handing a slot out turns the fast path off for good (the plain path is
 * exact; curve runs are slow anyway). */
vms_curve **vmsi_pwc_curve_slot(vms_pwc *pwc, unsigned level)
{
    pwc_level *L = level_of(pwc, level);
    if (!L)
        return NULL;
    pwc->slot_given = true;
    update_fast(pwc);
    return &L->curve;
}

void vms_pwc_flush_pcid(vms_pwc *pwc, vms_ctx ctx)
{
    drop(pwc, of_ctx, &ctx, VMS_EV_FLUSH_CTX, ctx);
}

void vms_pwc_flush_all(vms_pwc *pwc)
{
    drop(pwc, any, NULL, VMS_EV_FLUSH_ALL, 0);
}

unsigned vms_pwc_count(const vms_pwc *pwc, unsigned level)
{
    const pwc_level *L = level_of(pwc, level);
    return L ? L->a.count : 0;
}

const vms_pwc_stats *vms_pwc_get_stats(const vms_pwc *pwc)
{
    return &pwc->stats;
}

/*
 * Does touching level L's `last` again leave its set's replacement state as it is (the
 * claim that lets a direct hit skip the touch)? Checked on a copy of the set's state with
 * the policy's inline touch; true when there is nothing to check.
 */
static bool last_is_mru(const pwc_level *L)
{
    const vmsi_assoc *a = &L->a;
    if (!(L->last->tag & VMSI_ASSOC_V))
        return true;
    if (L->last < a->e || L->last >= a->e + L->cap)
        return false; /* a valid last must be one of the level's own entries */
    size_t k = (size_t)(L->last - a->e);
    const uint8_t *s = a->state + (k / a->ways) * a->state_bytes;
    uint8_t copy[VMSI_REPL_MAT_WAYS];
    unsigned way = (unsigned)(k % a->ways);
    switch (a->kind) {
    case VMSI_ASSOC_LRU8:
        memcpy(copy, s, a->state_bytes);
        vmsi_repl_mat_touch(copy, a->ways, way);
        return memcmp(copy, s, a->state_bytes) == 0;
    case VMSI_ASSOC_PLRU16:
        memcpy(copy, s, a->state_bytes);
        vmsi_assoc_plru_touch(a, copy, way);
        return memcmp(copy, s, a->state_bytes) == 0;
    case VMSI_ASSOC_FIFO8:
    case VMSI_ASSOC_NOSTATE:
        return true; /* a hit touches nothing */
    default:
        return false; /* never on the fast path (update_fast) */
    }
}

bool vms_pwc_check(const vms_pwc *pwc)
{
    for (unsigned i = 0; i < pwc->n; i++) {
        const pwc_level *L = &pwc->lv[i];
        if (L->level < PWC_MIN_LEVEL || L->level > pwc->levels || pwc->by_level[L->level] != L ||
            L->cap != L->a.sets * L->a.ways || L->e != L->a.e || L->ways != L->a.ways ||
            !vmsi_assoc_check(&L->a))
            return false;
        if (pwc->fast && !last_is_mru(L))
            return false;
        if (i > 0 && L->level <= pwc->lv[i - 1].level)
            return false; /* deepest first */
        for (size_t k = 0; k < L->cap; k++)
            if (L->a.e[k].tag & VMSI_ASSOC_G)
                return false; /* PWC entries are never global */
    }
    uint64_t hits = 0;
    for (unsigned l = 0; l <= PWC_MAX_LEVEL; l++)
        hits += pwc->stats.hits[l];
    return hits + pwc->stats.misses == pwc->stats.lookups;
}
