/*
 * memside.c — a machine's cache hierarchy over DRAM (memside.h), and DMA coherence.
 *
 * Paths (cache.h): data L1d → L2 → LLC → memory; fetches L1i → L2 → LLC; walk loads L1d
 * (or L2) → … A hit at a level fills the levels above it; a miss everywhere reads memory
 * and fills every level of the path, bottom first. A store marks the top level's line
 * dirty (write-back, write-allocate). A private level's victim, if dirty, is written to
 * the next level of its core (allocated there if absent); the LLC's dirty victims go to
 * DRAM. An inclusive LLC back-invalidates its victims in every core. Between cores a
 * store invalidates the other cores' private copies (single writer, as MESI keeps it);
 * a dirty copy so dropped is written to the LLC.
 *
 * Bytes. RAM holds the CPU's view. The DRAM image — what DRAM holds where it differs — is
 * kept per line in `img` once the machine has a non-coherent device (track):
 *   CPU store to line L (no image yet): img[L] = L's bytes before the store;
 *   L written back to DRAM (from the LLC, a back-invalidation, a clean): img[L] dropped;
 *   L leaves the last cache clean: the CPU will read DRAM again: RAM := img[L], dropped;
 *   non-coherent device read: img[L] if any, else RAM;
 *   non-coherent device write: L cached somewhere: into img[L] (taken from RAM first if
 *   absent) — the CPU still sees its stale line; L cached nowhere: into RAM;
 *   invalidate: L dropped everywhere (dirty bytes lost, as DC IVAC loses them),
 *   RAM := img[L];
 *   coherent device: reads see RAM (dirty lines are snooped and written back), writes go
 *   to RAM and invalidate every cached copy (img dropped).
 * Invariant: an image exists only for a line resident in some cache.
 */
#include "hw/memside.h"

#include "hw/core_impl.h"

#include <assert.h>
#include <inttypes.h>
#include <string.h>

#include "util/util.h"

/* The DRAM image: open addressing on line addresses (key = line + 1; 0 empty). */
typedef struct image {
    uint64_t *key;
    uint8_t **val;
    size_t cap, n;
} image;

typedef struct mcore {
    vms_cache *c[VMSI_C_N - 1]; /* L1I, L1D, L2 (NULL when absent) */
    uint64_t walk_served[VMS_MEM_NLEVELS];
    uint64_t dram_off; /* core cycle + dram_off = the memory's time (see mem_time) */
} mcore;

struct vmsi_memside {
    const vms_allocator *a;
    vms_cache_config cfg;
    unsigned ncores, line;
    mcore *cores;
    vms_cache *llc;
    vms_dram *dram;
    vms_bus *bus;
    vms_rng rng;
    bool track;
    uint64_t mem_now; /* the memory's time, in core cycles: never goes back */
    image img;
    uint64_t dram_reads, dram_writes; /* line transfers to/from memory (DRAM on or off) */
    uint64_t snoop_invalidations, snoop_writebacks, dma_clean_lines, dma_inval_lines;
    uint64_t dma_stale_reads; /* non-coherent device reads that differed from the CPU view */
};

static const char *const level_names[VMS_MEM_NLEVELS] = {"L1", "L2", "LLC", "DRAM"};

const char *vms_mem_level_name(unsigned level)
{
    return level < VMS_MEM_NLEVELS ? level_names[level] : "?";
}

/* ---- the DRAM image ------------------------------------------------------------------- */

static size_t slot_of(const image *im, uint64_t key)
{
    uint64_t h = key * UINT64_C(0x9E3779B97F4A7C15);
    return (size_t)(h >> 20) & (im->cap - 1);
}

static uint8_t *img_get(const vmsi_memside *ms, uint64_t line)
{
    const image *im = &ms->img;
    if (!im->n)
        return NULL;
    for (size_t i = slot_of(im, line + 1);; i = (i + 1) & (im->cap - 1)) {
        if (im->key[i] == line + 1)
            return im->val[i];
        if (!im->key[i])
            return NULL;
    }
}

static bool img_grow(vmsi_memside *ms)
{
    image *im = &ms->img, old = *im;
    size_t cap = old.cap ? old.cap * 2 : 1024;
    uint64_t *key = vmsi_calloc(ms->a, cap, sizeof *key);
    uint8_t **val = vmsi_calloc(ms->a, cap, sizeof *val);
    if (!key || !val) {
        vmsi_free(ms->a, key, cap * sizeof *key);
        vmsi_free(ms->a, val, cap * sizeof *val);
        return false;
    }
    im->key = key;
    im->val = val;
    im->cap = cap;
    for (size_t i = 0; i < old.cap; i++) {
        if (!old.key[i])
            continue;
        size_t j = slot_of(im, old.key[i]);
        while (im->key[j])
            j = (j + 1) & (cap - 1);
        im->key[j] = old.key[i];
        im->val[j] = old.val[i];
    }
    vmsi_free(ms->a, old.key, old.cap * sizeof *old.key);
    vmsi_free(ms->a, old.val, old.cap * sizeof *old.val);
    return true;
}

/* The image of line, created from RAM's bytes when absent; NULL on host failure (the
 * image is then not kept: a documented loss of fidelity, never of the CPU's bytes). */
static uint8_t *img_take(vmsi_memside *ms, uint64_t line)
{
    uint8_t *v = img_get(ms, line);
    if (v)
        return v;
    image *im = &ms->img;
    if ((im->n + 1) * 2 > im->cap && !img_grow(ms))
        return NULL;
    v = vmsi_alloc(ms->a, ms->line);
    if (!v)
        return NULL;
    if (vms_bus_read(ms->bus, line, v, ms->line) != VMS_OK)
        memset(v, 0, ms->line);
    size_t i = slot_of(im, line + 1);
    while (im->key[i])
        i = (i + 1) & (im->cap - 1);
    im->key[i] = line + 1;
    im->val[i] = v;
    im->n++;
    return v;
}

/* Drop line's image, if any; with to_ram, its bytes become the CPU's view first. */
static void img_drop(vmsi_memside *ms, uint64_t line, bool to_ram)
{
    image *im = &ms->img;
    if (!im->n)
        return;
    size_t i = slot_of(im, line + 1);
    while (im->key[i] != line + 1) {
        if (!im->key[i])
            return;
        i = (i + 1) & (im->cap - 1);
    }
    if (to_ram)
        (void)vms_bus_write(ms->bus, line, im->val[i], ms->line);
    vmsi_free(ms->a, im->val[i], ms->line);
    im->key[i] = 0;
    im->n--;
    /* Backward-shift deletion keeps every probe sequence unbroken. */
    for (size_t j = (i + 1) & (im->cap - 1); im->key[j]; j = (j + 1) & (im->cap - 1)) {
        size_t home = slot_of(im, im->key[j]);
        bool between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (between)
            continue;
        im->key[i] = im->key[j];
        im->val[i] = im->val[j];
        im->key[j] = 0;
        i = j;
    }
}

static void img_free(vmsi_memside *ms)
{
    image *im = &ms->img;
    for (size_t i = 0; i < im->cap; i++)
        if (im->key[i])
            vmsi_free(ms->a, im->val[i], ms->line);
    vmsi_free(ms->a, im->key, im->cap * sizeof *im->key);
    vmsi_free(ms->a, im->val, im->cap * sizeof *im->val);
    memset(im, 0, sizeof *im);
}

/* ---- life cycle ----------------------------------------------------------------------- */

vms_status vmsi_memside_create(const vms_allocator *a, const vms_cache_config *cc,
                               const vms_dram_config *dc, unsigned ncores, uint64_t seed,
                               vms_bus *bus, vmsi_memside **out, vms_err *err)
{
    *out = NULL;
    vms_status st = vms_cache_validate(cc, err);
    if (st != VMS_OK)
        return st;
    vmsi_memside *ms = vmsi_zalloc(a, sizeof *ms);
    if (!ms)
        return vmsi_err(err, VMS_ERR_NOMEM, "no host memory for the caches");
    ms->a = a;
    ms->cfg = *cc;
    ms->ncores = ncores;
    ms->line = cc->on && cc->line ? cc->line : 64;
    ms->bus = bus;
    vms_rng_seed(&ms->rng, seed * 2654435761u + 0xCAC4E);
    ms->cores = vmsi_calloc(a, ncores, sizeof *ms->cores);
    if (!ms->cores)
        st = vmsi_err(err, VMS_ERR_NOMEM, "no host memory for the caches");
    const vms_cache_level_config *priv[3] = {&cc->l1i, &cc->l1d, &cc->l2};
    for (unsigned i = 0; cc->on && st == VMS_OK && i < ncores; i++)
        for (unsigned l = 0; st == VMS_OK && l < 3; l++)
            if (priv[l]->size)
                st = vms_cache_create(a, priv[l], cc->line, &ms->rng, &ms->cores[i].c[l], err);
    if (st == VMS_OK && cc->on && cc->llc.size)
        st = vms_cache_create(a, &cc->llc, cc->line, &ms->rng, &ms->llc, err);
    if (st == VMS_OK && dc && dc->on)
        st = vms_dram_create(a, dc, &ms->dram, err);
    if (st != VMS_OK) {
        vmsi_memside_destroy(ms);
        return st;
    }
    *out = ms;
    return VMS_OK;
}

void vmsi_memside_destroy(vmsi_memside *ms)
{
    if (!ms)
        return;
    for (unsigned i = 0; ms->cores && i < ms->ncores; i++)
        for (unsigned l = 0; l < 3; l++)
            vms_cache_destroy(ms->cores[i].c[l]);
    vmsi_free(ms->a, ms->cores, ms->ncores * sizeof *ms->cores);
    vms_cache_destroy(ms->llc);
    vms_dram_destroy(ms->dram);
    img_free(ms);
    vmsi_free(ms->a, ms, sizeof *ms);
}

/* ---- the hierarchy -------------------------------------------------------------------- */

static vms_cache *level(const vmsi_memside *ms, unsigned core, unsigned which)
{
    return which == VMSI_C_LLC ? ms->llc : ms->cores[core].c[which];
}

/* Is line in any cache of any core? */
static bool resident(const vmsi_memside *ms, uint64_t line)
{
    if (ms->llc && vms_cache_probe(ms->llc, line, NULL))
        return true;
    for (unsigned i = 0; i < ms->ncores; i++)
        for (unsigned l = 0; l < 3; l++)
            if (ms->cores[i].c[l] && vms_cache_probe(ms->cores[i].c[l], line, NULL))
                return true;
    return false;
}

/*
 * The memory's time for a request of `core` at its cycle `now`. Cores keep their own
 * clocks (and vms_machine_reset_stats zeroes them), but the memory has one: a core whose
 * clock is behind it is taken to continue from the memory's present (its offset grows),
 * so that cores simulated one after the other meet the DRAM in simulation order and a
 * reset of the counters does not make every later request arrive "at once".
 */
static uint64_t mem_time(vmsi_memside *ms, unsigned core, uint64_t now)
{
    uint64_t t = now + ms->cores[core].dram_off;
    if (t < ms->mem_now) {
        ms->cores[core].dram_off += ms->mem_now - t;
        t = ms->mem_now;
    }
    ms->mem_now = t;
    return t;
}

/* Memory receives a dirty line (an LLC victim, a write-back past the last level) at the
 * memory's present. */
static void to_memory(vmsi_memside *ms, uint64_t now, uint64_t line)
{
    (void)now;
    ms->dram_writes++;
    if (ms->dram)
        vms_dram_write(ms->dram, vms_dram_clocks_at(ms->dram, ms->mem_now), line);
    if (ms->track)
        img_drop(ms, line, false); /* DRAM now holds the CPU's bytes */
}

/* A copy of line left a cache; if it was the last and DRAM differs, the CPU's view
 * becomes DRAM's. */
static void departed(vmsi_memside *ms, uint64_t line)
{
    if (ms->track && ms->img.n && !resident(ms, line))
        img_drop(ms, line, true);
}

static void fill(vmsi_memside *ms, unsigned core, unsigned which, uint64_t now, uint64_t line,
                 bool dirty);

/* The level below `which` for core's victims: L1 → L2 (or the LLC), L2 → the LLC. */
static int below(const vmsi_memside *ms, unsigned core, unsigned which)
{
    if (which < VMSI_C_L2 && ms->cores[core].c[VMSI_C_L2])
        return VMSI_C_L2;
    return ms->llc && which != VMSI_C_LLC ? VMSI_C_LLC : -1;
}

/* Send a dirty line from core's level `which` down one level. */
static void write_down(vmsi_memside *ms, unsigned core, unsigned which, uint64_t now, uint64_t line)
{
    vmsi_cache_stats_mut(level(ms, core, which))->writebacks++;
    int next = below(ms, core, which);
    if (next < 0) {
        to_memory(ms, now, line);
        return;
    }
    vms_cache *n = level(ms, core, (unsigned)next);
    if (!vms_cache_mark_dirty(n, line))
        fill(ms, core, (unsigned)next, now, line, true);
}

/* Drop line from every core's private levels (inclusion, snoops); true if a copy was
 * dirty. `except` (ncores: none) keeps that core's copies. */
static bool drop_private(vmsi_memside *ms, uint64_t line, unsigned except)
{
    bool dirty = false;
    for (unsigned i = 0; i < ms->ncores; i++) {
        if (i == except)
            continue;
        for (unsigned l = 0; l < 3; l++) {
            bool d = false;
            if (ms->cores[i].c[l] && vms_cache_invalidate(ms->cores[i].c[l], line, &d))
                dirty |= d;
        }
    }
    return dirty;
}

/* A victim of core's level `which`. */
static void victim(vmsi_memside *ms, unsigned core, unsigned which, uint64_t now, uint64_t line,
                   bool dirty)
{
    if (which == VMSI_C_LLC) {
        if (ms->cfg.inclusive && drop_private(ms, line, ms->ncores))
            dirty = true;
        if (dirty) {
            vmsi_cache_stats_mut(ms->llc)->writebacks++;
            to_memory(ms, now, line);
        }
    } else if (dirty) {
        write_down(ms, core, which, now, line);
    }
    departed(ms, line);
}

static void fill(vmsi_memside *ms, unsigned core, unsigned which, uint64_t now, uint64_t line,
                 bool dirty)
{
    uint64_t v;
    bool vd;
    if (vms_cache_fill(level(ms, core, which), line, dirty, &v, &vd))
        victim(ms, core, which, now, v, vd);
}

/* Core's path for an access: up to 3 levels (cache indices) and their vms_mem_level. */
static unsigned path(const vmsi_memside *ms, unsigned core, vms_access_kind kind, bool walk,
                     unsigned idx[3], unsigned lvl[3])
{
    unsigned n = 0;
    const mcore *mc = &ms->cores[core];
    unsigned top = kind == VMS_ACC_EXEC && !walk ? VMSI_C_L1I : VMSI_C_L1D;
    if (mc->c[top] && !(walk && ms->cfg.walk_from_l2)) {
        idx[n] = top;
        lvl[n++] = VMS_MEM_L1;
    }
    if (mc->c[VMSI_C_L2]) {
        idx[n] = VMSI_C_L2;
        lvl[n++] = VMS_MEM_L2;
    }
    if (ms->llc) {
        idx[n] = VMSI_C_LLC;
        lvl[n++] = VMS_MEM_LLC;
    }
    return n;
}

/* Memory's latency for a read of line by core at its cycle `now`. */
static uint64_t memory_read(vmsi_memside *ms, unsigned core, uint64_t now, uint64_t line,
                            vms_mem_where *w)
{
    ms->dram_reads++;
    if (!ms->dram)
        return ms->cfg.mem_latency;
    vms_dram_where dw;
    uint64_t t = vms_dram_clocks_at(ms->dram, mem_time(ms, core, now));
    uint64_t clocks = vms_dram_read(ms->dram, t, line, &dw);
    w->row = (uint8_t)dw.outcome;
    w->dram = true;
    return vms_dram_cycles(ms->dram, clocks);
}

/* One line: returns its latency and where it was served. */
static uint64_t line_access(vmsi_memside *ms, unsigned core, uint64_t now, uint64_t line,
                            vms_access_kind kind, bool walk, bool store, vms_mem_where *w)
{
    unsigned idx[3], lvl[3];
    unsigned n = path(ms, core, kind, walk, idx, lvl);
    if (store && ms->ncores > 1 && drop_private(ms, line, core)) {
        ms->snoop_writebacks++;
        if (!ms->llc || !vms_cache_mark_dirty(ms->llc, line))
            to_memory(ms, now, line);
    }
    *w = (vms_mem_where){VMS_MEM_DRAM, 0, false};
    uint64_t lat = 0;
    unsigned hit = n;
    for (unsigned i = 0; i < n; i++) {
        if (vms_cache_access(level(ms, core, idx[i]), line, store && i == 0)) {
            hit = i;
            w->level = (uint8_t)lvl[i];
            break;
        }
    }
    const vms_cache_level_config *lc[VMSI_C_N] = {&ms->cfg.l1i, &ms->cfg.l1d, &ms->cfg.l2,
                                                  &ms->cfg.llc};
    if (hit < n) {
        lat = lc[idx[hit]]->latency;
        if (walk)
            vmsi_cache_stats_mut(level(ms, core, idx[hit]))->walk_hits++;
    } else {
        lat = (n ? lc[idx[n - 1]]->latency : 0);
        lat += memory_read(ms, core, now + lat, line, w);
    }
    for (unsigned i = hit; i-- > 0;)
        fill(ms, core, idx[i], now, line, store && i == 0);
    if (walk)
        ms->cores[core].walk_served[w->level]++;
    return lat;
}

uint64_t vmsi_memside_access(vmsi_memside *ms, unsigned core, uint64_t now, uint64_t pa,
                             uint64_t len, vms_access_kind kind, bool walk, vms_mem_where *where)
{
    assert(core < ms->ncores && len > 0);
    uint64_t mask = ~((uint64_t)ms->line - 1), lat = 0;
    bool store = kind == VMS_ACC_WRITE;
    for (uint64_t line = pa & mask; line < pa + len; line += ms->line) {
        vms_mem_where w;
        lat += line_access(ms, core, now + lat, line, kind, walk, store, &w);
        if (where && line == (pa & mask))
            *where = w;
    }
    return lat;
}

/* ---- bytes and DMA -------------------------------------------------------------------- */

void vmsi_memside_track(vmsi_memside *ms)
{
    ms->track = true;
}

void vmsi_memside_cpu_store(vmsi_memside *ms, uint64_t pa, uint64_t len)
{
    if (!ms->track || !len)
        return;
    uint64_t mask = ~((uint64_t)ms->line - 1);
    for (uint64_t line = pa & mask; line < pa + len; line += ms->line)
        if (vms_bus_is_ram(ms->bus, line, ms->line))
            (void)img_take(ms, line);
}

/* Write every dirty copy of line back to DRAM; true if there was one. */
static bool clean_line(vmsi_memside *ms, uint64_t line)
{
    bool dirty = false;
    for (unsigned i = 0; i < ms->ncores; i++)
        for (unsigned l = 0; l < 3; l++)
            if (ms->cores[i].c[l] && vms_cache_clean(ms->cores[i].c[l], line))
                dirty = true;
    if (ms->llc && vms_cache_clean(ms->llc, line))
        dirty = true;
    if (dirty)
        to_memory(ms, 0, line);
    return dirty;
}

/* Drop every copy of line (dirty data discarded); true if there was one. */
static bool inval_line(vmsi_memside *ms, uint64_t line)
{
    bool any = false;
    for (unsigned i = 0; i < ms->ncores; i++)
        for (unsigned l = 0; l < 3; l++)
            if (ms->cores[i].c[l] && vms_cache_invalidate(ms->cores[i].c[l], line, NULL))
                any = true;
    if (ms->llc && vms_cache_invalidate(ms->llc, line, NULL))
        any = true;
    if (ms->track)
        img_drop(ms, line, true); /* the CPU reads DRAM from now on */
    return any;
}

uint64_t vmsi_memside_clean(vmsi_memside *ms, uint64_t pa, uint64_t len)
{
    uint64_t n = 0, mask = ~((uint64_t)ms->line - 1);
    for (uint64_t line = pa & mask; len && line < pa + len; line += ms->line)
        n += clean_line(ms, line);
    ms->dma_clean_lines += n;
    return n;
}

uint64_t vmsi_memside_invalidate(vmsi_memside *ms, uint64_t pa, uint64_t len)
{
    uint64_t n = 0, mask = ~((uint64_t)ms->line - 1);
    for (uint64_t line = pa & mask; len && line < pa + len; line += ms->line)
        n += inval_line(ms, line);
    ms->dma_inval_lines += n;
    return n;
}

/* A non-coherent device's access to the part [pa, pa+n) of one line. */
static vms_status noncoherent_piece(vmsi_memside *ms, uint64_t line, uint64_t pa, uint8_t *buf,
                                    size_t n, bool write)
{
    uint64_t off = pa - line;
    if (!write) {
        const uint8_t *v = img_get(ms, line);
        if (!v)
            return vms_bus_read(ms->bus, pa, buf, n);
        uint8_t cpu[4096];
        if (vms_bus_read(ms->bus, pa, cpu, n) == VMS_OK && memcmp(cpu, v + off, n))
            ms->dma_stale_reads++;
        memcpy(buf, v + off, n);
        return VMS_OK;
    }
    if (!resident(ms, line))
        return vms_bus_write(ms->bus, pa, buf, n);
    uint8_t *v = img_take(ms, line);
    if (!v)
        return VMS_ERR_NOMEM;
    memcpy(v + off, buf, n);
    return VMS_OK;
}

vms_status vmsi_memside_dma(vmsi_memside *ms, bool coherent, uint64_t pa, void *buf, size_t len,
                            bool write)
{
    uint8_t *p = buf;
    uint64_t mask = ~((uint64_t)ms->line - 1);
    if (coherent) {
        /* Snoops: a read finds dirty lines written back, a write invalidates copies. */
        for (uint64_t line = pa & mask; len && line < pa + len; line += ms->line) {
            if (write) {
                bool d = drop_private(ms, line, ms->ncores);
                bool ld = false;
                if (ms->llc)
                    vms_cache_invalidate(ms->llc, line, &ld);
                ms->snoop_invalidations += (d || ld);
                if (ms->track)
                    img_drop(ms, line, false);
            } else if (clean_line(ms, line)) {
                ms->snoop_writebacks++;
            }
        }
        return write ? vms_bus_write(ms->bus, pa, buf, len) : vms_bus_read(ms->bus, pa, buf, len);
    }
    while (len) {
        uint64_t line = pa & mask;
        size_t n = (size_t)(line + ms->line - pa);
        if (n > len)
            n = len;
        vms_status st = noncoherent_piece(ms, line, pa, p, n, write);
        if (st != VMS_OK)
            return st;
        pa += n;
        p += n;
        len -= n;
    }
    return VMS_OK;
}

/* ---- access, stats, checks ------------------------------------------------------------ */

vms_cache *vmsi_memside_cache(const vmsi_memside *ms, unsigned core, unsigned which)
{
    if (which == VMSI_C_LLC)
        return ms->llc;
    return core < ms->ncores && which < VMSI_C_LLC ? ms->cores[core].c[which] : NULL;
}

vms_dram *vmsi_memside_dram(const vmsi_memside *ms)
{
    return ms->dram;
}

const vms_cache_config *vmsi_memside_config(const vmsi_memside *ms)
{
    return &ms->cfg;
}

static void put_level(vms_strbuf *sb, const char *name, const vms_cache_stats *s)
{
    vms_strbuf_printf(sb,
                      ",\"%s\":{\"accesses\":%" PRIu64 ",\"hits\":%" PRIu64 ",\"misses\":%" PRIu64
                      ",\"writebacks\":%" PRIu64 ",\"fills\":%" PRIu64 ",\"evictions\":%" PRIu64
                      ",\"invalidations\":%" PRIu64 ",\"walk_hits\":%" PRIu64 "}",
                      name, s->accesses, s->hits, s->misses, s->writebacks, s->fills, s->evictions,
                      s->invalidations, s->walk_hits);
}

static void add_stats(vms_cache_stats *t, const vms_cache *c)
{
    const uint64_t *src = (const uint64_t *)vms_cache_get_stats(c);
    uint64_t *dst = (uint64_t *)t;
    for (size_t i = 0; i < sizeof *t / sizeof(uint64_t); i++)
        dst[i] += src[i];
}

void vmsi_memside_json(const vmsi_memside *ms, vms_strbuf *sb)
{
    static const char *const names[3] = {"l1i", "l1d", "l2"};
    vms_strbuf_printf(sb, ",\"cache\":{\"name\":\"%s\",\"line\":%u,\"inclusive\":%s",
                      ms->cfg.name ? ms->cfg.name : "custom", ms->line,
                      ms->cfg.inclusive ? "true" : "false");
    for (unsigned l = 0; l < 3; l++) {
        vms_cache_stats t;
        memset(&t, 0, sizeof t);
        bool any = false;
        for (unsigned i = 0; i < ms->ncores; i++)
            if (ms->cores[i].c[l]) {
                add_stats(&t, ms->cores[i].c[l]);
                any = true;
            }
        if (any)
            put_level(sb, names[l], &t);
    }
    if (ms->llc)
        put_level(sb, "llc", vms_cache_get_stats(ms->llc));
    uint64_t ws[VMS_MEM_NLEVELS] = {0};
    for (unsigned i = 0; i < ms->ncores; i++)
        for (unsigned l = 0; l < VMS_MEM_NLEVELS; l++)
            ws[l] += ms->cores[i].walk_served[l];
    vms_strbuf_printf(sb,
                      ",\"walk_refs\":{\"l1\":%" PRIu64 ",\"l2\":%" PRIu64 ",\"llc\":%" PRIu64
                      ",\"dram\":%" PRIu64 "},\"memory_reads\":%" PRIu64
                      ",\"memory_writes\":%" PRIu64 ",\"snoop_invalidations\":%" PRIu64
                      ",\"snoop_writebacks\":%" PRIu64 ",\"dma_clean_lines\":%" PRIu64
                      ",\"dma_invalidate_lines\":%" PRIu64 ",\"dma_stale_reads\":%" PRIu64 "}",
                      ws[0], ws[1], ws[2], ws[3], ms->dram_reads, ms->dram_writes,
                      ms->snoop_invalidations, ms->snoop_writebacks, ms->dma_clean_lines,
                      ms->dma_inval_lines, ms->dma_stale_reads);
    if (!ms->dram)
        return;
    const vms_dram_stats *d = vms_dram_get_stats(ms->dram);
    vms_strbuf_printf(
        sb,
        ",\"dram\":{\"name\":\"%s\",\"reads\":%" PRIu64 ",\"writes\":%" PRIu64
        ",\"row_hits\":%" PRIu64 ",\"row_misses\":%" PRIu64 ",\"row_conflicts\":%" PRIu64
        ",\"activates\":%" PRIu64 ",\"precharges\":%" PRIu64 ",\"refreshes\":%" PRIu64
        ",\"refresh_waits\":%" PRIu64 ",\"wq_drains\":%" PRIu64 ",\"read_clocks\":%" PRIu64 "}",
        vms_dram_get_config(ms->dram)->name, d->reads, d->writes, d->row_hits, d->row_misses,
        d->row_conflicts, d->activates, d->precharges, d->refreshes, d->refresh_waits, d->wq_drains,
        d->read_clocks);
}

void vmsi_memside_reset_stats(vmsi_memside *ms)
{
    for (unsigned i = 0; i < ms->ncores; i++) {
        for (unsigned l = 0; l < 3; l++)
            if (ms->cores[i].c[l])
                vms_cache_reset_stats(ms->cores[i].c[l]);
        memset(ms->cores[i].walk_served, 0, sizeof ms->cores[i].walk_served);
    }
    if (ms->llc)
        vms_cache_reset_stats(ms->llc);
    if (ms->dram)
        vms_dram_reset_stats(ms->dram);
    ms->dram_reads = ms->dram_writes = 0;
    ms->snoop_invalidations = ms->snoop_writebacks = 0;
    ms->dma_clean_lines = ms->dma_inval_lines = ms->dma_stale_reads = 0;
}

/* Does every line of private cache c sit in the LLC? */
static bool included(const vmsi_memside *ms, const vms_cache *c)
{
    size_t n = (size_t)vms_cache_sets(c) * vms_cache_ways(c);
    for (size_t i = 0; i < n; i++) {
        uint64_t pa;
        if (vms_cache_entry(c, i, &pa, NULL) && !vms_cache_probe(ms->llc, pa, NULL))
            return false;
    }
    return true;
}

bool vmsi_memside_check(const vmsi_memside *ms)
{
    bool incl = ms->cfg.inclusive && ms->llc;
    for (unsigned i = 0; i < ms->ncores; i++)
        for (unsigned l = 0; l < 3; l++) {
            const vms_cache *c = ms->cores[i].c[l];
            if (c && (!vms_cache_check(c) || (incl && !included(ms, c))))
                return false;
        }
    if (ms->llc && !vms_cache_check(ms->llc))
        return false;
    for (size_t i = 0; i < ms->img.cap; i++)
        if (ms->img.key[i] && !resident(ms, ms->img.key[i] - 1))
            return false;
    return true;
}

/* ---- the machine's and the cores' side ------------------------------------------------ */

vmsi_memside *vmsi_machine_memside(const vms_machine *m)
{
    return m->ms;
}

const vms_cache *vms_machine_cache(const vms_machine *m, unsigned core, vms_cache_id id)
{
    if (!m->ms || core >= m->ncores)
        return NULL;
    return vmsi_memside_cache(m->ms, core, (unsigned)id);
}

const vms_dram *vms_machine_dram(const vms_machine *m)
{
    return m->ms ? m->ms->dram : NULL;
}

uint64_t vms_machine_cache_clean(vms_machine *m, uint64_t pa, uint64_t len)
{
    return m->ms ? vmsi_memside_clean(m->ms, pa, len) : 0;
}

uint64_t vms_machine_cache_invalidate(vms_machine *m, uint64_t pa, uint64_t len)
{
    return m->ms ? vmsi_memside_invalidate(m->ms, pa, len) : 0;
}

vms_status vms_machine_cache_check(const vms_machine *m, vms_err *err)
{
    if (m->ms && !vmsi_memside_check(m->ms))
        return vmsi_err(err, VMS_ERR_INVAL,
                        "cache hierarchy: a level's sets, inclusion or the DRAM image is broken");
    return VMS_OK;
}

/* Did the walker write the entry at step s (len bytes) back (A/D)? It reads differently
 * now. The raw RAM read is not a bus access: it is the model looking, not the core. */
static bool written_back(vms_core *c, const vms_walk_step *s, unsigned len)
{
    uint64_t now = 0;
    return vms_ram_read(vms_bus_ram(c->m->bus), s->ptep, &now, len) == VMS_OK &&
           now != (len < 8 ? s->pte & ((UINT64_C(1) << 8 * len) - 1) : s->pte);
}

uint64_t vmsi_core_walk_mem(vms_core *c, const vms_walk_trace *t, bool ok)
{
    vmsi_memside *ms = c->m->ms;
    uint64_t lat = 0;
    unsigned len = c->regs.fmt ? 1u << c->regs.fmt->entry_shift : 8; /* an entry's bytes */
    c->walk_nwhere = t->nsteps;
    for (unsigned i = 0; i < t->nsteps; i++)
        lat += vmsi_memside_access(ms, c->id, c->cycles + lat, t->step[i].ptep, len, VMS_ACC_READ,
                                   true, &c->walk_where[i]);
    for (unsigned i = 0; ok && i < t->nsteps; i++)
        if (written_back(c, &t->step[i], len))
            (void)vmsi_memside_access(ms, c->id, c->cycles + lat, t->step[i].ptep, len,
                                      VMS_ACC_WRITE, false, NULL); /* cost.ad_write charges it */
    return lat;
}

unsigned vms_core_walk_where(const vms_core *c, vms_mem_where *out, unsigned max)
{
    unsigned n = c->m->ms ? c->walk_nwhere : 0;
    for (unsigned i = 0; i < n && i < max; i++)
        out[i] = c->walk_where[i];
    return n;
}
