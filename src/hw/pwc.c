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
 * The data word of a PWC entry (the tag word is assoc.h's, key as above):
 *
 *   63          52 51                              12 11          3    2    1    0
 *  +--------------+----------------------------------+--------------+----+----+----+
 *  |     zero     |   table_pa[51:12] (in place)     |     zero     | XD | US | RW |
 *  +--------------+----------------------------------+--------------+----+----+----+
 */
#define D_RW      (UINT64_C(1) << 0)
#define D_US      (UINT64_C(1) << 1)
#define D_XD      (UINT64_C(1) << 2)
#define D_PA_MASK UINT64_C(0x000FFFFFFFFFF000)

#define PWC_MIN_LEVEL   2
#define PWC_MAX_LEVEL   5
#define PWC_MAX_ENTRIES (UINT32_C(1) << 20) /* per level, as for a TLB partition */

struct vms_pwc {
    vms_allocator alloc;
    unsigned levels;                 /* 3 (Sv39), 4 or 5 paging levels */
    uint64_t va_mask;                /* VA bits that take part in keys: 48 or 57 */
    bool present[PWC_MAX_LEVEL + 1]; /* level has a cache */
    vmsi_assoc lvl[PWC_MAX_LEVEL + 1];
    vms_rng rng;
    vms_pwc_stats stats;
    vms_curve *curve[PWC_MAX_LEVEL + 1]; /* curves observing a level (curve.h), or NULL */
    uint8_t order[PWC_MAX_LEVEL];        /* the levels with a cache, deepest first */
    unsigned norder;
    /* By level: the tag and context of the last lookup that probed the level and missed,
     * or tag 0 (never valid). Until the level's next fill, no entry of that level holds
     * them (only fills add entries; flushes only remove), so a fill of them has nothing
     * to supersede and takes vmsi_assoc_fill_fresh. Every fill of the level clears it. */
    uint64_t miss_tag[PWC_MAX_LEVEL + 1];
    uint8_t shift[PWC_MAX_LEVEL + 1]; /* key_of's shift by level: 12 + 9 (L - 1) */
    vms_ctx miss_ctx[PWC_MAX_LEVEL + 1];
    const vmsi_unit_tap *tap; /* where lookups, fills and flushes are reported, or NULL */
};

void vmsi_pwc_set_tap(vms_pwc *pwc, const vmsi_unit_tap *u)
{
    pwc->tap = u;
}

/* Tell the tap of a lookup (level 0: a miss; e: what a hit gave). Out of line and cold:
 * its event on the stack would otherwise cost the lookup a large frame. */
__attribute__((noinline, cold)) static void
report_lookup(const vms_pwc *pwc, vms_ctx ctx, uint64_t va, unsigned level, const vms_pwc_entry *e)
{
    vms_event ev = {.type = VMS_EV_PWC_LOOKUP,
                    .pwc_lookup = {va, ctx, level, level ? e->table_pa : 0}};
    vmsi_unit_emit(pwc->tap, &ev);
}

/* The key of va at level L: the VA bits above what one level-L entry maps. */
static inline uint64_t key_of(const vms_pwc *pwc, uint64_t va, unsigned level)
{
    return (va & pwc->va_mask) >> pwc->shift[level];
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
    vms_rng_seed(&pwc->rng, seed);
    for (unsigned l = 1; l <= PWC_MAX_LEVEL; l++)
        pwc->shift[l] = (uint8_t)(12u + 9u * (l - 1u));
    for (unsigned l = PWC_MIN_LEVEL; l <= levels; l++) {
        const vms_pwc_level_config *c = &cfg->level[l];
        if (c->entries == 0)
            continue;
        const vms_repl_policy *pol = vms_repl_find(c->policy ? c->policy : "lru");
        if (vmsi_assoc_init(&pwc->lvl[l], a, c->entries / c->ways, c->ways, 0, pol, &pwc->rng) !=
            VMS_OK) {
            vms_pwc_destroy(pwc);
            return vmsi_err(err, VMS_ERR_NOMEM, "pwc level %u: out of memory (%u entries)", l,
                            c->entries);
        }
        pwc->present[l] = true;
        pwc->order[pwc->norder++] = (uint8_t)l;
    }
    *out = pwc;
    return VMS_OK;
}

void vms_pwc_destroy(vms_pwc *pwc)
{
    if (!pwc)
        return;
    vms_allocator a = pwc->alloc;
    for (unsigned l = 0; l <= PWC_MAX_LEVEL; l++)
        vmsi_assoc_fini(&pwc->lvl[l], &a);
    vmsi_free(&a, pwc, sizeof *pwc);
}

/* ---- lookup and fill ---- */

/* The way of `set` holding (key, ctx), or -1: vmsi_assoc_find for entries that are never
 * global (a PWC's), so a hit is the same tag and the same context. */
static inline int find_local(const vmsi_assoc *a, unsigned set, uint64_t key, vms_ctx ctx)
{
    const vmsi_assoc_entry *row = vmsi_assoc_at(a, set, 0);
    uint64_t want = vmsi_assoc_tag(key, false);
    for (unsigned w = 0; w < a->ways; w++)
        if (row[w].tag == want && row[w].ctx == ctx)
            return (int)w;
    return -1;
}

/* Show level l's lookup of key to its curve (way: the real array's answer, or -1). Out of
 * line, so that the lookup without curves keeps its key in a register. */
__attribute__((noinline, cold)) static void curve_lookup(vms_pwc *pwc, unsigned l, uint64_t key,
                                                         vms_ctx ctx, uint64_t va, unsigned set,
                                                         int way)
{
    vmsi_assoc *a = &pwc->lvl[l];
    vmsi_curve_lookup(pwc->curve[l], &key, 1, ctx, va,
                      way < 0 ? NULL : vmsi_assoc_at(a, set, (unsigned)way));
}

unsigned vms_pwc_lookup(vms_pwc *pwc, vms_ctx ctx, uint64_t va, vms_pwc_entry *out)
{
    pwc->stats.lookups++;
    uint64_t v = va & pwc->va_mask;
    for (unsigned i = 0; i < pwc->norder; i++) {
        unsigned l = pwc->order[i];
        vmsi_assoc *a = &pwc->lvl[l];
        bool curved = pwc->curve[l] != NULL;
        if (a->count == 0 && !curved) /* an empty level answers nothing */
            continue;
        uint64_t key = v >> pwc->shift[l];
        unsigned set = vmsi_assoc_set(a, key);
        int way = find_local(a, set, key, ctx);
        assert(way == vmsi_assoc_find(a, set, key, ctx));
        if (__builtin_expect(curved, 0))
            curve_lookup(pwc, l, key, ctx, va, set, way);
        if (way < 0) {
            pwc->miss_tag[l] = vmsi_assoc_tag(key, false);
            pwc->miss_ctx[l] = ctx;
            continue;
        }
        vmsi_assoc_touch_as(a, set, (unsigned)way, true); /* inline for every policy kind */
        uint64_t d = vmsi_assoc_at(a, set, (unsigned)way)->data;
        out->table_pa = d & D_PA_MASK;
        out->rw = (d & D_RW) != 0;
        out->us = (d & D_US) != 0;
        out->xd = (d & D_XD) != 0;
        pwc->stats.hits[l]++;
        if (vmsi_unit_on(pwc->tap))
            report_lookup(pwc, ctx, va, l, out);
        return l;
    }
    pwc->stats.misses++;
    if (vmsi_unit_on(pwc->tap))
        report_lookup(pwc, ctx, va, 0, NULL);
    return 0;
}

/* Tell the tap of a fill (out of line and cold, as report_lookup). */
__attribute__((noinline, cold)) static void
report_fill(const vms_pwc *pwc, vms_ctx ctx, uint64_t va, unsigned level, const vms_pwc_entry *e)
{
    vms_event ev = {.type = VMS_EV_PWC_FILL, .pwc_fill = {va, ctx, level, e->table_pa}};
    vmsi_unit_emit(pwc->tap, &ev);
}

void vms_pwc_fill(vms_pwc *pwc, vms_ctx ctx, uint64_t va, unsigned level, const vms_pwc_entry *e)
{
    assert(level >= PWC_MIN_LEVEL && level <= PWC_MAX_LEVEL);
    assert((e->table_pa & ~D_PA_MASK) == 0);
    if (level > pwc->levels || !pwc->present[level])
        return;
    uint64_t data = e->table_pa | (e->rw ? D_RW : 0) | (e->us ? D_US : 0) | (e->xd ? D_XD : 0);
    bool evicted;
    uint64_t tag = vmsi_assoc_tag(key_of(pwc, va, level), false);
    if ((pwc->miss_tag[level] == tag && pwc->miss_ctx[level] == ctx) || pwc->lvl[level].count == 0)
        vmsi_assoc_fill_fresh_inline(&pwc->lvl[level], tag, ctx, data, &evicted, NULL);
    else
        vmsi_assoc_fill(&pwc->lvl[level], tag, ctx, data, &evicted, NULL);
    pwc->miss_tag[level] = 0;
    if (pwc->curve[level])
        vmsi_curve_fill(pwc->curve[level], tag, ctx, data);
    pwc->stats.fills++;
    if (vmsi_unit_on(pwc->tap))
        report_fill(pwc, ctx, va, level, e);
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

/* Drop the entries pred selects at every cached level. */
static void drop(vms_pwc *pwc, vmsi_assoc_pred pred, const void *arg, vms_ev_flush how, vms_ctx ctx)
{
    uint64_t before = pwc->stats.invalidations;
    for (unsigned l = PWC_MIN_LEVEL; l <= PWC_MAX_LEVEL; l++)
        if (pwc->present[l]) {
            pwc->stats.invalidations +=
                vmsi_assoc_drop_where(&pwc->lvl[l], 0, pwc->lvl[l].sets, pred, arg);
            if (pwc->curve[l])
                vmsi_curve_drop(pwc->curve[l], pred, arg);
        }
    if (vmsi_unit_on(pwc->tap) && pwc->stats.invalidations != before) {
        vms_event ev = {
            .type = VMS_EV_PWC_INVALIDATE,
            .pwc_invalidate = {how, ctx, (unsigned)(pwc->stats.invalidations - before)}};
        vmsi_unit_emit(pwc->tap, &ev);
    }
}

vms_curve **vmsi_pwc_curve_slot(vms_pwc *pwc, unsigned level)
{
    return level <= PWC_MAX_LEVEL && pwc->present[level] ? &pwc->curve[level] : NULL;
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
    if (level > PWC_MAX_LEVEL || !pwc->present[level])
        return 0;
    return pwc->lvl[level].count;
}

const vms_pwc_stats *vms_pwc_get_stats(const vms_pwc *pwc)
{
    return &pwc->stats;
}

bool vms_pwc_check(const vms_pwc *pwc)
{
    for (unsigned l = 0; l <= PWC_MAX_LEVEL; l++) {
        if (!pwc->present[l])
            continue;
        if (l < PWC_MIN_LEVEL || l > pwc->levels || !vmsi_assoc_check(&pwc->lvl[l]))
            return false;
        for (size_t k = 0; k < (size_t)pwc->lvl[l].sets * pwc->lvl[l].ways; k++)
            if (pwc->lvl[l].e[k].tag & VMSI_ASSOC_G)
                return false; /* PWC entries are never global */
    }
    uint64_t hits = 0;
    for (unsigned l = 0; l <= PWC_MAX_LEVEL; l++)
        hits += pwc->stats.hits[l];
    return hits + pwc->stats.misses == pwc->stats.lookups;
}
