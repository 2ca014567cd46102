/*
 * cache.c — one level of data cache (cache.h): sets × ways of line tags with a dirty
 * bit, a replacement policy from the TLBs' registry (repl.h), and the hierarchy presets.
 *
 * A way's tag word:
 *
 *   63                                                            2    1    0
 *  +---------------------------------------------------------------+----+----+
 *  |                 line number (pa >> log2(line))                |  D |  V |
 *  +---------------------------------------------------------------+----+----+
 *
 * V: valid. D: dirty (written since it was filled: a write-back is due on eviction).
 * The set is the line number modulo the number of sets (a mask for powers of two).
 *
 * Invariants (vms_cache_check): a valid line sits in the set its line number indexes;
 * no line appears twice in a set; `valid` counts the valid ways.
 */
#include "vmsim/cache.h"

#include <assert.h>
#include <string.h>
#include <strings.h>

#include "util/util.h"

#define TAG_V     UINT64_C(1)
#define TAG_D     UINT64_C(2)
#define TAG_SHIFT 2
_Static_assert(TAG_SHIFT == 2, "tag word: V, D, then the line number");

struct vms_cache {
    const vms_allocator *a;
    uint64_t *tag;  /* sets * ways, set-major */
    uint8_t *state; /* sets * state_bytes of policy state (NULL when 0) */
    const vms_repl_policy *policy;
    vms_rng *rng;
    unsigned sets, ways, line_shift;
    uint64_t set_mask;
    bool pow2;
    size_t state_bytes;
    uint64_t valid;
    vms_cache_stats st;
};

static unsigned log2u(uint64_t v)
{
    unsigned n = 0;
    while ((UINT64_C(1) << n) < v)
        n++;
    return n;
}

static bool is_pow2(uint64_t v)
{
    return v && (v & (v - 1)) == 0;
}

vms_status vms_cache_level_validate(const vms_cache_level_config *lc, unsigned line, bool vipt,
                                    const char *name, vms_err *err)
{
    if (lc->ways < 1 || lc->ways > VMS_REPL_MAX_WAYS)
        return vmsi_err(err, VMS_ERR_INVAL, "cache %s: %u ways (expected 1 … %u)", name, lc->ways,
                        VMS_REPL_MAX_WAYS);
    if (!is_pow2(line) || line < 16 || line > 4096)
        return vmsi_err(err, VMS_ERR_INVAL,
                        "cache line %u bytes: expected a power of two 16 … 4096", line);
    uint64_t per_set = (uint64_t)lc->ways * line;
    if (lc->size == 0 || lc->size % per_set)
        return vmsi_err(err, VMS_ERR_INVAL,
                        "cache %s: size %llu is not a multiple of ways × line (%llu bytes)", name,
                        (unsigned long long)lc->size, (unsigned long long)per_set);
    uint64_t sets = lc->size / per_set;
    if (sets > VMS_CACHE_MAX_SETS)
        return vmsi_err(err, VMS_ERR_INVAL, "cache %s: %llu sets (at most %u)", name,
                        (unsigned long long)sets, VMS_CACHE_MAX_SETS);
    if (lc->policy && !vms_repl_find(lc->policy))
        return vmsi_err(err, VMS_ERR_INVAL, "cache %s: unknown replacement policy '%s'", name,
                        lc->policy);
    /* VIPT: the index bits (and the line offset) must lie in the 4 KiB page offset, or
     * two virtual aliases of one physical line could sit in two sets. */
    if (vipt && sets * line > VMS_PAGE_SIZE)
        return vmsi_err(err, VMS_ERR_INVAL,
                        "cache %s: VIPT aliasing: %llu sets × %u-byte lines index %llu bytes, more "
                        "than a 4096-byte page (add ways or shrink it)",
                        name, (unsigned long long)sets, line, (unsigned long long)(sets * line));
    return VMS_OK;
}

vms_status vms_cache_create(const vms_allocator *a, const vms_cache_level_config *lc, unsigned line,
                            vms_rng *rng, vms_cache **out, vms_err *err)
{
    *out = NULL;
    vms_status st = vms_cache_level_validate(lc, line, false, "level", err);
    if (st != VMS_OK)
        return st;
    a = a ? a : vms_allocator_default();
    vms_cache *c = vmsi_zalloc(a, sizeof *c);
    if (!c)
        return vmsi_err(err, VMS_ERR_NOMEM, "no host memory for a cache");
    c->a = a;
    c->ways = lc->ways;
    c->sets = (unsigned)(lc->size / ((uint64_t)lc->ways * line));
    c->line_shift = log2u(line);
    c->pow2 = is_pow2(c->sets);
    c->set_mask = (uint64_t)c->sets - 1;
    c->policy = vms_repl_find(lc->policy ? lc->policy : "lru");
    c->rng = rng;
    c->state_bytes = c->policy->state_bytes(c->ways);
    c->tag = vmsi_calloc(a, (size_t)c->sets * c->ways, sizeof *c->tag);
    if (c->state_bytes)
        c->state = vmsi_calloc(a, c->sets, c->state_bytes);
    if (!c->tag || (c->state_bytes && !c->state)) {
        vms_cache_destroy(c);
        return vmsi_err(err, VMS_ERR_NOMEM, "no host memory for a %llu-byte cache",
                        (unsigned long long)lc->size);
    }
    for (unsigned s = 0; s < c->sets; s++)
        c->policy->reset(c->state + (size_t)s * c->state_bytes, c->ways);
    *out = c;
    return VMS_OK;
}

void vms_cache_destroy(vms_cache *c)
{
    if (!c)
        return;
    if (c->tag)
        vmsi_free(c->a, c->tag, (size_t)c->sets * c->ways * sizeof *c->tag);
    if (c->state)
        vmsi_free(c->a, c->state, (size_t)c->sets * c->state_bytes);
    vmsi_free(c->a, c, sizeof *c);
}

/* ---- lookups -------------------------------------------------------------------------- */

static inline unsigned set_of(const vms_cache *c, uint64_t lineno)
{
    return (unsigned)(c->pow2 ? lineno & c->set_mask : lineno % c->sets);
}

static inline uint64_t *row_of(const vms_cache *c, unsigned set)
{
    return &c->tag[(size_t)set * c->ways];
}

static inline uint8_t *state_of(const vms_cache *c, unsigned set)
{
    return c->state + (size_t)set * c->state_bytes;
}

/* The way of `row` holding lineno, or -1. */
static inline int find(const vms_cache *c, const uint64_t *row, uint64_t lineno)
{
    uint64_t want = lineno << TAG_SHIFT | TAG_V;
    for (unsigned w = 0; w < c->ways; w++)
        if ((row[w] & ~TAG_D) == want)
            return (int)w;
    return -1;
}

bool vms_cache_access(vms_cache *c, uint64_t pa, bool write)
{
    uint64_t lineno = pa >> c->line_shift;
    unsigned set = set_of(c, lineno);
    uint64_t *row = row_of(c, set);
    int w = find(c, row, lineno);
    c->st.accesses++;
    if (w < 0) {
        c->st.misses++;
        return false;
    }
    c->st.hits++;
    if (write)
        row[w] |= TAG_D;
    c->policy->touch(state_of(c, set), c->ways, (unsigned)w, true);
    return true;
}

bool vms_cache_fill(vms_cache *c, uint64_t pa, bool dirty, uint64_t *victim, bool *victim_dirty)
{
    uint64_t lineno = pa >> c->line_shift;
    unsigned set = set_of(c, lineno);
    uint64_t *row = row_of(c, set);
    assert(find(c, row, lineno) < 0);
    int way = -1;
    for (unsigned w = 0; w < c->ways && way < 0; w++)
        if (!(row[w] & TAG_V))
            way = (int)w;
    bool evicted = false;
    if (way < 0) {
        way = (int)c->policy->victim(state_of(c, set), c->ways, c->rng);
        assert(way >= 0 && (unsigned)way < c->ways && (row[way] & TAG_V));
        *victim = (row[way] >> TAG_SHIFT) << c->line_shift;
        *victim_dirty = (row[way] & TAG_D) != 0;
        evicted = true;
        c->st.evictions++;
        c->valid--;
    }
    row[way] = lineno << TAG_SHIFT | TAG_V | (dirty ? TAG_D : 0);
    c->valid++;
    c->st.fills++;
    c->policy->touch(state_of(c, set), c->ways, (unsigned)way, false);
    return evicted;
}

/* The tag word of pa's line, or NULL. */
static uint64_t *slot(const vms_cache *c, uint64_t pa)
{
    uint64_t lineno = pa >> c->line_shift;
    uint64_t *row = row_of(c, set_of(c, lineno));
    int w = find(c, row, lineno);
    return w < 0 ? NULL : &row[w];
}

bool vms_cache_probe(const vms_cache *c, uint64_t pa, bool *dirty)
{
    const uint64_t *t = slot(c, pa);
    if (t && dirty)
        *dirty = (*t & TAG_D) != 0;
    return t != NULL;
}

bool vms_cache_mark_dirty(vms_cache *c, uint64_t pa)
{
    uint64_t *t = slot(c, pa);
    if (t)
        *t |= TAG_D;
    return t != NULL;
}

bool vms_cache_invalidate(vms_cache *c, uint64_t pa, bool *was_dirty)
{
    uint64_t *t = slot(c, pa);
    if (!t)
        return false;
    if (was_dirty)
        *was_dirty = (*t & TAG_D) != 0;
    *t = 0;
    c->valid--;
    c->st.invalidations++;
    return true;
}

bool vms_cache_clean(vms_cache *c, uint64_t pa)
{
    uint64_t *t = slot(c, pa);
    if (!t || !(*t & TAG_D))
        return false;
    *t &= ~TAG_D;
    c->st.writebacks++;
    return true;
}

uint64_t vms_cache_flush_all(vms_cache *c)
{
    uint64_t dirty = 0;
    for (size_t i = 0; i < (size_t)c->sets * c->ways; i++) {
        dirty += (c->tag[i] & (TAG_V | TAG_D)) == (TAG_V | TAG_D);
        c->st.invalidations += (c->tag[i] & TAG_V) != 0;
        c->tag[i] = 0;
    }
    for (unsigned s = 0; s < c->sets; s++)
        c->policy->reset(state_of(c, s), c->ways);
    c->valid = 0;
    c->st.writebacks += dirty;
    return dirty;
}

bool vms_cache_entry(const vms_cache *c, size_t i, uint64_t *pa, bool *dirty)
{
    assert(i < (size_t)c->sets * c->ways);
    uint64_t t = c->tag[i];
    if (!(t & TAG_V))
        return false;
    if (pa)
        *pa = (t >> TAG_SHIFT) << c->line_shift;
    if (dirty)
        *dirty = (t & TAG_D) != 0;
    return true;
}

unsigned vms_cache_sets(const vms_cache *c)
{
    return c->sets;
}

unsigned vms_cache_ways(const vms_cache *c)
{
    return c->ways;
}

unsigned vms_cache_line(const vms_cache *c)
{
    return 1u << c->line_shift;
}

uint64_t vms_cache_valid_lines(const vms_cache *c)
{
    return c->valid;
}

const vms_cache_stats *vms_cache_get_stats(const vms_cache *c)
{
    return &c->st;
}

vms_cache_stats *vmsi_cache_stats_mut(vms_cache *c)
{
    return &c->st;
}

void vms_cache_reset_stats(vms_cache *c)
{
    memset(&c->st, 0, sizeof c->st);
}

bool vms_cache_check(const vms_cache *c)
{
    uint64_t n = 0;
    for (unsigned s = 0; s < c->sets; s++) {
        const uint64_t *row = row_of(c, s);
        for (unsigned w = 0; w < c->ways; w++) {
            if (!(row[w] & TAG_V))
                continue;
            n++;
            uint64_t lineno = row[w] >> TAG_SHIFT;
            if (set_of(c, lineno) != s)
                return false;
            for (unsigned v = w + 1; v < c->ways; v++)
                if ((row[v] & TAG_V) && (row[v] >> TAG_SHIFT) == lineno)
                    return false;
        }
    }
    return n == c->valid;
}

/* ---- hierarchy presets ---------------------------------------------------------------- */

/*
 * "skylake": Intel Skylake client (Core i7-6700 class). Intel 64 and IA-32 Architectures
 * Optimization Reference Manual (248966-042, §2.2, Table 2-6 "Cache parameters of the
 * Skylake microarchitecture"): L1d 32 KiB 8-way 64-byte lines, 4 cycles (5 for complex
 * addresses); L1i 32 KiB 8-way; L2 256 KiB 4-way, 12 cycles; the L3 up to 2 MiB per core,
 * inclusive, here the 8 MiB 16-way of a four-core part at 42 cycles (measured load-to-use,
 * 7-cpu.com "Intel Skylake"). The PLRU of the L1/L2 is approximated by bit-PLRU.
 * Without a DRAM model a miss costs 200 more cycles (~50 ns at 4 GHz).
 */
static void skylake(vms_cache_config *c)
{
    *c = (vms_cache_config){.on = true,
                            .name = "skylake",
                            .line = 64,
                            .l1i = {32 << 10, 8, 4, "plru"},
                            .l1d = {32 << 10, 8, 4, "plru"},
                            .l2 = {256 << 10, 4, 12, "plru"},
                            .llc = {8 << 20, 16, 42, "plru"},
                            .inclusive = true,
                            .walk_from_l2 = false,
                            .mem_latency = 200};
}

/* "tiny": every level small enough to watch evictions (teaching, tests). */
static void tiny(vms_cache_config *c)
{
    *c = (vms_cache_config){.on = true,
                            .name = "tiny",
                            .line = 64,
                            .l1i = {1 << 10, 2, 2, "lru"},
                            .l1d = {1 << 10, 2, 2, "lru"},
                            .l2 = {8 << 10, 4, 8, "lru"},
                            .llc = {32 << 10, 8, 20, "lru"},
                            .inclusive = false,
                            .walk_from_l2 = false,
                            .mem_latency = 100};
}

vms_status vms_cache_preset(const char *name, vms_cache_config *cfg, vms_err *err)
{
    if (!strcasecmp(name, "off")) { /* skylake's geometry, switched off */
        skylake(cfg);
        cfg->on = false;
        cfg->name = "off";
        return VMS_OK;
    }
    if (!strcasecmp(name, "skylake")) {
        skylake(cfg);
        return VMS_OK;
    }
    if (!strcasecmp(name, "tiny")) {
        tiny(cfg);
        return VMS_OK;
    }
    return vmsi_err(err, VMS_ERR_NOTFOUND,
                    "unknown cache hierarchy '%s' (expected off, skylake or tiny)", name);
}

vms_status vms_cache_validate(const vms_cache_config *cfg, vms_err *err)
{
    if (!cfg->on)
        return VMS_OK;
    struct {
        const vms_cache_level_config *lc;
        const char *name;
        bool vipt;
    } lv[] = {{&cfg->l1i, "l1i", true},
              {&cfg->l1d, "l1d", true},
              {&cfg->l2, "l2", false},
              {&cfg->llc, "llc", false}};
    for (unsigned i = 0; i < 4; i++) {
        if (lv[i].lc->size == 0)
            continue;
        vms_status st = vms_cache_level_validate(lv[i].lc, cfg->line, lv[i].vipt, lv[i].name, err);
        if (st != VMS_OK)
            return st;
    }
    if (cfg->walk_from_l2 && cfg->l2.size == 0 && cfg->llc.size == 0)
        return vmsi_err(err, VMS_ERR_INVAL, "cache.walk = l2 needs an L2 or an LLC");
    return VMS_OK;
}
