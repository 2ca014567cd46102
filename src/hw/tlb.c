/*
 * tlb.c — the modelled TLB (tlb.h): up to four partitions, each a set-associative
 * array (assoc.h) holding some page sizes, tagged by context (vms_ctx: the VM and the
 * PCID/ASID) and global bit as Intel SDM Vol. 3A §4.10.2 describes.
 *
 * Keys. A translation of cached size t for linear address va has virtual page number
 * vpn = VA[56:shift(t)] (bits 63:57 are dropped: in canonical form they repeat bit 56,
 * and with 4-level paging bits 56:48 repeat bit 47, so distinct canonical pages never
 * alias) and key = vpn << 2 | t, so a partition holding several sizes never confuses
 * a 2M page number with a 4K one. The set is vpn mod sets (assoc index_shift = 2).
 *
 * Splintering (§4.10.2.3). A translation of size S that no partition holds is cached
 * as the largest held size t < S: the piece containing va, its page_pa the large
 * frame plus va's offset rounded down to t. The entry remembers S, because INVLPG of
 * any address in the large page must drop every piece (INVLPG, footnote 1).
 *
 * Choices the header leaves open, fixed here:
 *  - lookup probes 4K, 2M, 1G in that order and the first hit wins (overlapping entries
 *    of different sizes exist only when software did not invalidate);
 *  - a fill that overwrites an entry for the same page (same context, or either global)
 *    is an update, not an eviction; `evictions` counts only policy victims;
 *  - a TLB with nparts == 0 is valid and absent: lookups count and miss, fills fail.
 */
#include "hw/curve_impl.h"
#include "hw/tap.h"
#include "hw/tlb_impl.h"
#include "util/util.h"

/*
 * The data word of a TLB entry (the tag word is assoc.h's, with key = vpn << 2 | size).
 * The flag bits sit where an x86-64 PTE has them (pte.h), so that the walker's leaf and
 * folded rights are the entry's flags as they are (vmsi_tlb_fill_attrs):
 *
 *   63  62  59 58  54 53  52 51                     12 11  7  6   5   4     3    2    1    0
 *  +--+-------+------+-------+-------------------------+-----+---+---+-----+-----+----+----+----+
 *  |XD| pkey  | zero | orig  | page_pa[51:12] in place | 0   | D | 0 | PCD | PWT | US | RW | NR |
 *  +--+-------+------+-------+-------------------------+-----+---+---+-----+-----+----+----+----+
 *
 * orig: the page size the paging structures mapped (> the cached size when splintered).
 * NR (not readable: RISC-V execute-only) takes the present bit's place.
 */
#define D_NR         (UINT64_C(1) << 0)
#define D_RW         (UINT64_C(1) << 1)
#define D_US         (UINT64_C(1) << 2)
#define D_PWT        (UINT64_C(1) << 3)
#define D_PCD        (UINT64_C(1) << 4)
#define D_DIRTY      (UINT64_C(1) << 6)
#define D_PKEY_SHIFT 59
#define D_XD         (UINT64_C(1) << 63)
#define D_PA_MASK    UINT64_C(0x000FFFFFFFFFF000)
#define D_ORIG_SHIFT 52
_Static_assert(D_RW == VMS_PTE_RW && D_US == VMS_PTE_US && D_PWT == VMS_PTE_PWT &&
                   D_PCD == VMS_PTE_PCD && D_DIRTY == VMS_PTE_D && D_XD == VMS_PTE_XD &&
                   D_PKEY_SHIFT == VMS_PTE_PKEY_SHIFT && D_PA_MASK == VMS_PTE_ADDR_MASK,
               "the data word's flags are the x86-64 PTE's (vmsi_tlb_fill_attrs)");
_Static_assert(VMSI_TLB_ATTRS == (D_NR | D_RW | D_US | D_PWT | D_PCD | D_DIRTY |
                                  (UINT64_C(0xF) << D_PKEY_SHIFT) | D_XD),
               "tlb_impl.h names the flag bits");

/* VA[56:shift(s)]: the page number of va at size s. */
static inline uint64_t vpn_of(uint64_t va, vms_pgsize s)
{
    return (va & VA_MASK) >> vms_pgsize_shift(s);
}

/* The assoc key of page vpn at size s: the size rides in the low two bits. */
static inline uint64_t key_of(uint64_t vpn, vms_pgsize s)
{
    return vpn << 2 | (uint64_t)s;
}

/* The cached page size a key carries. */
static inline vms_pgsize key_size(uint64_t key)
{
    return (vms_pgsize)(key & 3u);
}

/* The flag bits of translation x's data word (VMSI_TLB_ATTRS). */
static inline uint64_t attrs_of(const vms_xlate *x)
{
    assert(x->pkey < 16);
    return (x->rw ? D_RW : 0) | (x->us ? D_US : 0) | (x->xd ? D_XD : 0) | (x->dirty ? D_DIRTY : 0) |
           (x->pcd ? D_PCD : 0) | (x->pwt ? D_PWT : 0) | (x->nr ? D_NR : 0) |
           (uint64_t)x->pkey << D_PKEY_SHIFT;
}

/* Unpack an entry into the translation it caches (size is the cached size). */
static inline __attribute__((always_inline)) void decode(uint64_t tag, uint64_t data,
                                                         vms_xlate *out)
{
    out->page_pa = data & D_PA_MASK;
    out->size = key_size(vmsi_assoc_key(tag));
    out->rw = (data & D_RW) != 0;
    out->us = (data & D_US) != 0;
    out->xd = (data & D_XD) != 0;
    out->global = (tag & VMSI_ASSOC_G) != 0;
    out->dirty = (data & D_DIRTY) != 0;
    out->pkey = (uint8_t)((data >> D_PKEY_SHIFT) & 0xFu);
    out->pcd = (data & D_PCD) != 0;
    out->pwt = (data & D_PWT) != 0;
    out->nr = (data & D_NR) != 0;
}

/* The size the paging structures mapped (before splintering). */
static inline vms_pgsize orig_size(uint64_t data)
{
    return (vms_pgsize)((data >> D_ORIG_SHIFT) & 3u);
}

/* ---- creation ---- */

/* Validate partition i of cfg against the sizes earlier partitions took (*taken). */
static vms_status check_part(const vms_tlb_part_config *p, unsigned i, unsigned *taken,
                             vms_err *err)
{
    if (p->sizes == 0 || (p->sizes & ~VMS_TLB_SIZES_ALL))
        return vmsi_err(err, VMS_ERR_INVAL,
                        "tlb partition %u: sizes mask 0x%x must be a non-empty subset of 0x%x", i,
                        p->sizes, VMS_TLB_SIZES_ALL);
    if (p->sizes & *taken)
        return vmsi_err(err, VMS_ERR_INVAL,
                        "tlb partition %u: page sizes 0x%x are already held by an earlier "
                        "partition",
                        i, p->sizes & *taken);
    if (p->sets == 0)
        return vmsi_err(err, VMS_ERR_INVAL, "tlb partition %u: sets must be >= 1, got 0", i);
    if (p->ways == 0 || p->ways > VMS_TLB_MAX_WAYS)
        return vmsi_err(err, VMS_ERR_INVAL, "tlb partition %u: ways must be 1..%u, got %u", i,
                        VMS_TLB_MAX_WAYS, p->ways);
    if ((uint64_t)p->sets * p->ways > VMS_TLB_MAX_ENTRIES)
        return vmsi_err(err, VMS_ERR_INVAL,
                        "tlb partition %u: %u sets x %u ways exceeds %u entries", i, p->sets,
                        p->ways, (unsigned)VMS_TLB_MAX_ENTRIES);
    if (p->policy && !vms_repl_find(p->policy))
        return vmsi_err(err, VMS_ERR_INVAL, "tlb partition %u: unknown replacement policy \"%s\"",
                        i, p->policy);
    *taken |= p->sizes;
    return VMS_OK;
}

/* Validate the whole configuration; VMS_ERR_INVAL with a message on the first problem. */
static vms_status check_config(const vms_tlb_config *cfg, vms_err *err)
{
    if (!cfg)
        return vmsi_err(err, VMS_ERR_INVAL, "tlb: no configuration given");
    if (cfg->nparts > VMS_TLB_MAX_PARTS)
        return vmsi_err(err, VMS_ERR_INVAL, "tlb: %u partitions, at most %u allowed", cfg->nparts,
                        VMS_TLB_MAX_PARTS);
    unsigned taken = 0;
    for (unsigned i = 0; i < cfg->nparts; i++) {
        vms_status st = check_part(&cfg->part[i], i, &taken, err);
        if (st != VMS_OK)
            return st;
    }
    return VMS_OK;
}

/* Fill part_of and cached_as from the partitions' size masks. */
static void map_sizes(vms_tlb *tlb)
{
    int8_t held = -1;
    for (unsigned s = 0; s < VMS_PG_NSIZES; s++) {
        tlb->part_of[s] = -1;
        for (unsigned i = 0; i < tlb->nparts; i++)
            if (tlb->sizes[i] & VMS_TLB_SIZE_BIT(s))
                tlb->part_of[s] = (int8_t)i;
        if (tlb->part_of[s] >= 0)
            held = (int8_t)s;
        tlb->cached_as[s] = held; /* the largest held size <= s */
    }
}

vms_status vms_tlb_create(const vms_allocator *a, const vms_tlb_config *cfg, uint64_t seed,
                          vms_tlb **out, vms_err *err)
{
    *out = NULL;
    vms_status st = check_config(cfg, err);
    if (st != VMS_OK)
        return st;
    if (!a)
        a = vms_allocator_default();
    vms_tlb *tlb = vmsi_zalloc(a, sizeof *tlb);
    if (!tlb)
        return vmsi_err(err, VMS_ERR_NOMEM, "tlb: out of memory allocating the TLB");
    tlb->alloc = *a;
    tlb->memo_want = true;
    tlb->memo_on = VMSI_MEMO_VALID;
    tlb->memo_keyed = UINT32_MAX >> (32 - VMSI_TLB_MEMO); /* the clear sets every key */
    vmsi_tlb_memo_clear(tlb);
    tlb->miss_vpn = VMSI_TLB_NO_MISS;
    tlb->nparts = cfg->nparts;
    vms_rng_seed(&tlb->rng, seed);
    for (unsigned i = 0; i < cfg->nparts; i++) {
        const vms_tlb_part_config *p = &cfg->part[i];
        tlb->sizes[i] = p->sizes;
        const vms_repl_policy *pol = vms_repl_find(p->policy ? p->policy : "lru");
        if (vmsi_assoc_init(&tlb->part[i], a, p->sets, p->ways, 2, pol, &tlb->rng) != VMS_OK) {
            vms_tlb_destroy(tlb);
            return vmsi_err(err, VMS_ERR_NOMEM, "tlb partition %u: out of memory (%u x %u)", i,
                            p->sets, p->ways);
        }
    }
    map_sizes(tlb);
    *out = tlb;
    return VMS_OK;
}

void vms_tlb_destroy(vms_tlb *tlb)
{
    if (!tlb)
        return;
    vms_allocator a = tlb->alloc;
    for (unsigned i = 0; i < VMS_TLB_MAX_PARTS; i++)
        vmsi_assoc_fini(&tlb->part[i], &a);
    vmsi_free(&a, tlb, sizeof *tlb);
}

/* ---- lookup and fill ---- */

/*
 * Find the entry answering (ctx, va): probes sizes 4K, 2M, 1G in order. Returns the
 * partition (or -1) and sets *set, *way.
 */
static inline int find(const vms_tlb *tlb, vms_ctx ctx, uint64_t va, unsigned *set, unsigned *way)
{
    for (unsigned s = 0; s < VMS_PG_NSIZES; s++) {
        int p = tlb->part_of[s];
        if (tlb->nsize[s] == 0) /* no entry of this size (or no partition holding it) */
            continue;
        const vmsi_assoc *a = &tlb->part[p];
        uint64_t key = key_of(vpn_of(va, (vms_pgsize)s), (vms_pgsize)s);
        *set = vmsi_assoc_set(a, key);
        int w = vmsi_assoc_find(a, *set, key, ctx);
        if (w >= 0) {
            *way = (unsigned)w;
            return p;
        }
    }
    return -1;
}

/* Show a lookup to the curves (curve_impl.h): the keys find() probes, in its order. */
__attribute__((noinline, cold)) static void curve_lookup(vms_tlb *tlb, vms_ctx ctx, uint64_t va,
                                                         const vmsi_assoc_entry *real)
{
    uint64_t keys[VMS_PG_NSIZES];
    unsigned n = 0;
    for (unsigned s = 0; s < VMS_PG_NSIZES; s++)
        if (tlb->part_of[s] >= 0)
            keys[n++] = key_of(vpn_of(va, (vms_pgsize)s), (vms_pgsize)s);
    if (n)
        vmsi_curve_lookup(tlb->curve, keys, n, ctx, va, real);
}

/* Make va's memo slot the hit on (p, set, way) that returned *out, the latest touch. */
static inline void memo_set(vms_tlb *tlb, vms_ctx ctx, uint64_t va, const vms_xlate *out, int p,
                            unsigned set, unsigned way)
{
    vmsi_tlb_memo *m = vmsi_tlb_memo_of(tlb, va);
    *m = (vmsi_tlb_memo){.vpn = va >> VMS_PAGE_SHIFT,
                         .ctx = ctx,
                         .x = *out,
                         .part = (uint8_t)p,
                         .way = (uint8_t)way,
                         .set = set};
    vmsi_tlb_memo_made(tlb, vmsi_tlb_memo_index(va));
}

/*
 * The rest of a probe's hit at (p, set, way) when the memo is not in use as such
 * (memo_on 0: vms_tlb_set_memo off, or a curve attached: vmsi_tlb_curve_changed).
 *
 * With a curve the hit is shown to it, and the memo keeps one slot, this hit's: a repeat
 * of the latest hit's page, which the memo (and the batch's plain hits) then answer
 * without the curve, is at stack depth 1 in every size — the curve moved that entry to
 * the top — so it changes no size's misses and needs no modelling. More slots would
 * not do: a hit on any other slot's way can be at any depth. For the same reason a miss
 * shown to the curve clears the memo (miss_observed), and every fill and flush already
 * does. Out of line, so that the path with the memo in use is the probe alone.
 */
__attribute__((noinline)) static bool hit_nomemo(vms_tlb *tlb, vms_ctx ctx, uint64_t va,
                                                 vms_xlate *out, int p, unsigned set, unsigned way)
{
    vmsi_assoc *a = &tlb->part[p];
    const vmsi_assoc_entry *e = vmsi_assoc_at(a, set, way);
    if (tlb->curve)
        curve_lookup(tlb, ctx, va, e);
    vmsi_assoc_touch(a, set, way);
    decode(e->tag, e->data, out);
    tlb->stats.hits++;
    tlb->stats.hits_by_size[out->size]++;
    if (tlb->curve && tlb->memo_want) {
        vmsi_tlb_memo_clear(tlb);
        memo_set(tlb, ctx, va, out, p, set, way);
    }
    return true;
}

/* A probe's miss shown to the curves; the memo's one slot (hit_nomemo) is no longer the
 * top of the curve's stack. */
__attribute__((noinline, cold)) static bool miss_observed(vms_tlb *tlb, vms_ctx ctx, uint64_t va)
{
    vmsi_tlb_memo_clear(tlb);
    curve_lookup(tlb, ctx, va, NULL);
    return false;
}

bool vmsi_tlb_lookup_probe(vms_tlb *tlb, vms_ctx ctx, uint64_t va, vms_xlate *out)
{
    unsigned set, way;
    int p = find(tlb, ctx, va, &set, &way);
    if (p < 0) { /* nothing changes: the memo stays */
        tlb->stats.misses++;
        tlb->miss_vpn = va >> VMS_PAGE_SHIFT;
        tlb->miss_ctx = ctx;
        if (__builtin_expect(tlb->curve != NULL, 0))
            return miss_observed(tlb, ctx, va);
        return false;
    }
    if (__builtin_expect(!tlb->memo_on, 0))
        return hit_nomemo(tlb, ctx, va, out, p, set, way);
    vmsi_assoc *a = &tlb->part[p];
    const vmsi_assoc_entry *e = vmsi_assoc_at(a, set, way);
    vmsi_assoc_touch(a, set, way);
    decode(e->tag, e->data, out);
    tlb->stats.hits++;
    tlb->stats.hits_by_size[out->size]++;
    memo_set(tlb, ctx, va, out, p, set, way);
    return true;
}

bool vms_tlb_lookup(vms_tlb *tlb, vms_ctx ctx, uint64_t va, vms_xlate *out)
{
    return vmsi_tlb_lookup(tlb, ctx, va, out);
}

void vms_tlb_set_memo(vms_tlb *tlb, bool on)
{
    tlb->memo_want = on;
    vmsi_tlb_curve_changed(tlb);
}

bool vms_tlb_probe(const vms_tlb *tlb, vms_ctx ctx, uint64_t va, vms_xlate *out)
{
    unsigned set, way;
    int p = find(tlb, ctx, va, &set, &way);
    if (p < 0)
        return false;
    const vmsi_assoc_entry *e = vmsi_assoc_at(&tlb->part[p], set, way);
    decode(e->tag, e->data, out);
    return true;
}

void vmsi_tlb_set_tap(vms_tlb *tlb, const vmsi_unit_tap *u)
{
    tlb->tap = u;
}

/* Tell the tap of a fill (fill's arguments; victim: the replaced tag). Out of line and
 * cold: its event on the stack would otherwise cost every fill a large frame. */
__attribute__((noinline, cold)) static void report_fill(const vms_tlb *tlb, vms_ctx ctx,
                                                        uint64_t va, uint64_t page_pa, bool global,
                                                        vms_pgsize ts, uint64_t piece, bool evicted,
                                                        uint64_t victim)
{
    uint64_t vkey = vmsi_assoc_key(victim);
    vms_event ev = {
        .type = VMS_EV_TLB_FILL,
        .tlb_fill = {.level = tlb->tap->level,
                     .va = va,
                     .ctx = ctx,
                     .size = ts,
                     .page_pa = page_pa + piece,
                     .global = global,
                     .evicted = evicted,
                     .victim_va = evicted ? (vkey >> 2) << vms_pgsize_shift(key_size(vkey)) : 0,
                     .victim_size = evicted ? key_size(vkey) : VMS_PG_4K}};
    vmsi_unit_emit(tlb->tap, &ev);
}

/* Tell the tap of the entries a flush dropped (stats.invalidations was `before`). */
static void report_flush(const vms_tlb *tlb, uint64_t before, vms_ev_flush how, uint64_t va,
                         vms_ctx ctx, bool keep_global)
{
    if (!vmsi_unit_on(tlb->tap) || tlb->stats.invalidations == before)
        return;
    vms_event ev = {.type = VMS_EV_TLB_INVALIDATE,
                    .tlb_invalidate = {.level = tlb->tap->level,
                                       .how = how,
                                       .va = va,
                                       .ctx = ctx,
                                       .keep_global = keep_global,
                                       .count = (unsigned)(tlb->stats.invalidations - before)}};
    vmsi_unit_emit(tlb->tap, &ev);
}

/*
 * The fill of a translation of `size` at page_pa (aligned to it), global or not, whose
 * data word's flags are attrs (VMSI_TLB_ATTRS): vms_tlb_fill (fast false) and the walk's
 * fills, vmsi_tlb_fill2_attrs (fast: bit-PLRU's fresh fill, no observer).
 */
static inline __attribute__((always_inline)) bool fill(vms_tlb *tlb, vms_ctx ctx, uint64_t va,
                                                       vms_pgsize size, uint64_t page_pa,
                                                       bool global, uint64_t attrs, const bool fast)
{
    assert((unsigned)size < VMS_PG_NSIZES);
    assert((page_pa & (vms_pgsize_bytes(size) - 1)) == 0 && (page_pa & ~D_PA_MASK) == 0);
    assert((attrs & ~VMSI_TLB_ATTRS) == 0);
    int t = tlb->cached_as[size];
    /* Nothing can conflict with a non-global entry for the page and context the last probe
     * missed (the conflict rule is the lookup's, assoc.h), if nothing was filled since. */
    bool fresh = !global && tlb->miss_vpn == va >> VMS_PAGE_SHIFT && tlb->miss_ctx == ctx;
    tlb->miss_vpn = VMSI_TLB_NO_MISS;
    if (t < 0) {
        vmsi_tlb_memo_clear(tlb);
        return false;
    }
    vms_pgsize ts = (vms_pgsize)t;
    /* The piece of the page that holds va (the whole page when not splintered). */
    uint64_t piece =
        ts == size ? 0 : va & (vms_pgsize_bytes(size) - 1) & ~(vms_pgsize_bytes(ts) - 1);
    uint64_t tag = vmsi_assoc_tag(key_of(vpn_of(va, ts), ts), global);
    uint64_t data = attrs | (page_pa + piece) | (uint64_t)size << D_ORIG_SHIFT;
    bool evicted;
    uint64_t victim = 0;
    vmsi_assoc *a = &tlb->part[tlb->part_of[t]];
    /* The memo: the slots of the set filled and va's own (a curve's one slot is the top
     * of its stack no longer: all). */
    vmsi_tlb_memo_clear_fill(tlb, (unsigned)tlb->part_of[t], vmsi_assoc_key(tag), va,
                             ts == VMS_PG_4K && !tlb->curve);
    /* The new entry and the conflicting ones it replaced are all of size t (a fresh fill
     * replaces none: one entry more, unless a victim goes); a victim may be of another
     * size the partition holds. */
    if (fresh) {
        if (fast) /* (the walk's fills: bit-PLRU's state read once) */
            vmsi_assoc_fill_fresh_plru(a, tag, ctx, data, &evicted, &victim);
        else
            vmsi_assoc_fill_fresh_inline(a, tag, ctx, data, &evicted, &victim);
        tlb->nsize[t]++;
    } else {
        unsigned before = a->count;
        vmsi_assoc_fill(a, tag, ctx, data, &evicted, &victim);
        tlb->nsize[t] += a->count - before + (evicted ? 1u : 0u);
    }
    if (evicted)
        tlb->nsize[key_size(vmsi_assoc_key(victim))]--;
    if (ts != size)
        tlb->splintered = true;
    if (tlb->curve)
        vmsi_curve_fill(tlb->curve, tag, ctx, data);
    tlb->stats.fills++;
    tlb->stats.evictions += evicted;
    /* (fast: the caller has found the machine's tap off, which is this TLB's) */
    assert(!fast || !vmsi_unit_on(tlb->tap));
    if (!fast && vmsi_unit_on(tlb->tap))
        report_fill(tlb, ctx, va, page_pa, global, ts, piece, evicted, victim);
    return true;
}

bool vms_tlb_fill(vms_tlb *tlb, vms_ctx ctx, uint64_t va, const vms_xlate *x)
{
    return fill(tlb, ctx, va, x->size, x->page_pa, x->global != 0, attrs_of(x), false);
}

void vmsi_tlb_fill2_attrs(vms_tlb *l2, vms_tlb *l1, vms_ctx ctx, uint64_t va, const vms_xlate *x,
                          bool global, uint64_t attrs)
{
    assert(attrs == attrs_of(x) && "the walker's attributes are the translation's");
    if (l2)
        fill(l2, ctx, va, x->size, x->page_pa, global, attrs, true);
    if (l1)
        fill(l1, ctx, va, x->size, x->page_pa, global, attrs, true);
}

void vms_tlb_set_dirty(vms_tlb *tlb, vms_ctx ctx, uint64_t va)
{
    unsigned set, way;
    vmsi_tlb_memo_clear(tlb);
    int p = find(tlb, ctx, va, &set, &way);
    if (p >= 0)
        vmsi_assoc_at(&tlb->part[p], set, way)->data |= D_DIRTY;
}

/* ---- invalidation ---- */

/* Recount nsize from the entries (after a whole-TLB flush: rare, and as long as a scan). */
static void recount(vms_tlb *tlb)
{
    memset(tlb->nsize, 0, sizeof tlb->nsize);
    tlb->splintered = false;
    for (unsigned p = 0; p < tlb->nparts; p++) {
        const vmsi_assoc *a = &tlb->part[p];
        for (size_t k = 0; a->count && k < (size_t)a->sets * a->ways; k++)
            if (a->e[k].tag & VMSI_ASSOC_V) {
                vms_pgsize t = key_size(vmsi_assoc_key(a->e[k].tag));
                tlb->nsize[t]++;
                tlb->splintered |= orig_size(a->e[k].data) != t;
            }
    }
}

/* What flush_va drops: entries whose original page contains va, for ctx or global. */
typedef struct va_match {
    uint64_t va;
    vms_ctx ctx;
    bool with_global;
    bool any_space;              /* every PCID/ASID of ctx's VM, globals too (sfence.vma va, x0) */
    uint64_t vpn[VMS_PG_NSIZES]; /* vpn_of(va, s) for each size s (flush_va fills it) */
    unsigned dropped[VMS_PG_NSIZES]; /* entries covers_va matched, by cached size */
} va_match;

/* INVLPG/INVPCID-0 context rule: a global entry goes only with_global, others by
 * context; never an entry of another VM. */
static bool ctx_rule(const vmsi_assoc_entry *e, const va_match *m)
{
    if (!vmsi_ctx_same_vm(e->ctx, m->ctx))
        return false;
    if (m->any_space)
        return true;
    if (e->tag & VMSI_ASSOC_G)
        return m->with_global;
    return e->ctx == m->ctx;
}

/* Does the page this entry was cut from contain m->va, under the context rule? */
static inline __attribute__((always_inline)) bool covers_va_model(const vmsi_assoc_entry *e,
                                                                  const void *arg)
{
    const va_match *m = arg;
    uint64_t key = vmsi_assoc_key(e->tag);
    unsigned t = (unsigned)key_size(key), o = (unsigned)orig_size(e->data);
    _Static_assert(VMS_PG_4K == 0 && VMS_PG_2M == 1 && VMS_PG_1G == 2, "9 bits a size step");
    uint64_t orig_vpn = (key >> 2) >> (9 * (o - t)); /* o >= t: splinters are smaller */
    return orig_vpn == m->vpn[o] && ctx_rule(e, m);
}

/* covers_va_model for this TLB's own entries, counting them in m->dropped by size. */
static bool covers_va(const vmsi_assoc_entry *e, const void *arg)
{
    if (!covers_va_model(e, arg))
        return false;
    /* (flush_va's own, non-const match) */
    ((va_match *)(uintptr_t)arg)->dropped[key_size(vmsi_assoc_key(e->tag))]++;
    return true;
}

/* Drop the entries m matches (vms_tlb_flush_va and _any). */
static void flush_va(vms_tlb *tlb, va_match *m)
{
    uint64_t va = m->va, before = tlb->stats.invalidations;
    vmsi_tlb_memo_clear(tlb);
    for (unsigned s = 0; s < VMS_PG_NSIZES; s++)
        m->vpn[s] = vpn_of(va, (vms_pgsize)s);
    if (tlb->curve) /* (the curve's entries are not this TLB's: not counted in m->dropped) */
        vmsi_curve_drop(tlb->curve, covers_va_model, m);
    /* The last probe missed this page in this context and nothing was filled since: with
     * no splinters, every entry covers_va would drop answers that lookup (same key; same
     * context, or global in the VM), so there is none (the fault path's flush). */
    if (!m->any_space && !tlb->splintered && tlb->miss_vpn == va >> VMS_PAGE_SHIFT &&
        tlb->miss_ctx == m->ctx)
        return;
    /* For each size o the page of va could have, visit the sets its pieces index. */
    for (unsigned o = 0; o < VMS_PG_NSIZES; o++) {
        int t = tlb->cached_as[o];
        if (t < 0 || tlb->nsize[t] == 0) /* no piece of size t of any page is cached */
            continue;
        vmsi_assoc *a = &tlb->part[tlb->part_of[t]];
        unsigned d = vms_pgsize_shift((vms_pgsize)o) - vms_pgsize_shift((vms_pgsize)t);
        uint64_t first = m->vpn[o] << d;
        unsigned nsets = 1u << d; /* pieces of the page; capped at a->sets */
        unsigned set = vmsi_assoc_set(a, key_of(first, (vms_pgsize)t));
        tlb->stats.invalidations += vmsi_assoc_drop_where(a, set, nsets, covers_va, m);
    }
    for (unsigned s = 0; s < VMS_PG_NSIZES; s++)
        tlb->nsize[s] -= m->dropped[s];
    report_flush(tlb, before, VMS_EV_FLUSH_VA, va, m->ctx, !m->with_global);
}

void vms_tlb_flush_va(vms_tlb *tlb, vms_ctx ctx, uint64_t va, bool with_global)
{
    /* flush_va's own early answers, taken before its match is built (the fault path's
     * flush, three TLBs a fault): the last probe missed this page in this context with no
     * splinters (flush_va's comment), or the TLB holds no entry at all (nsize by size,
     * vms_tlb_check). Either way nothing is dropped and nothing is reported; the memo is
     * cleared as flush_va clears it. A curve sees every flush: flush_va. */
    if (!tlb->curve &&
        ((!tlb->splintered && tlb->miss_vpn == va >> VMS_PAGE_SHIFT && tlb->miss_ctx == ctx) ||
         (tlb->nsize[0] | tlb->nsize[1] | tlb->nsize[2]) == 0)) {
        vmsi_tlb_memo_clear(tlb);
        return;
    }
    flush_va(tlb, &(va_match){.va = va, .ctx = ctx, .with_global = with_global});
}

void vms_tlb_flush_va_any(vms_tlb *tlb, uint64_t va)
{
    flush_va(tlb, &(va_match){.va = va, .with_global = true, .any_space = true});
}

void vms_tlb_flush_va_vm(vms_tlb *tlb, uint32_t vm, uint64_t va)
{
    flush_va(
        tlb,
        &(va_match){.va = va, .ctx = vms_ctx_make(vm, 0), .with_global = true, .any_space = true});
}

/* Entries of the VM that *arg selects (vms_tlb_flush_vm). */
typedef struct vm_match {
    uint32_t vm;
    bool keep_global;
} vm_match;

static bool of_vm(const vmsi_assoc_entry *e, const void *arg)
{
    const vm_match *m = arg;
    uint32_t vm = (uint32_t)(e->ctx >> 32);
    if (m->keep_global && (e->tag & VMSI_ASSOC_G))
        return false;
    return m->vm == VMS_TLB_ALL_VMS ? vm != 0 : vm == m->vm;
}

void vms_tlb_flush_vm(vms_tlb *tlb, uint32_t vm, bool keep_global)
{
    vm_match m = {vm, keep_global};
    uint64_t before = tlb->stats.invalidations;
    vmsi_tlb_memo_clear(tlb);
    if (tlb->curve)
        vmsi_curve_drop(tlb->curve, of_vm, &m);
    for (unsigned i = 0; i < tlb->nparts; i++)
        tlb->stats.invalidations +=
            vmsi_assoc_drop_where(&tlb->part[i], 0, tlb->part[i].sets, of_vm, &m);
    recount(tlb);
    report_flush(tlb, before, VMS_EV_FLUSH_VM, 0, vms_ctx_make(vm, 0), keep_global);
}

/* Non-global entries of context *arg (a vms_ctx). */
static bool of_ctx(const vmsi_assoc_entry *e, const void *arg)
{
    return !(e->tag & VMSI_ASSOC_G) && e->ctx == *(const vms_ctx *)arg;
}

void vms_tlb_flush_pcid(vms_tlb *tlb, vms_ctx ctx)
{
    uint64_t before = tlb->stats.invalidations;
    vmsi_tlb_memo_clear(tlb);
    if (tlb->curve)
        vmsi_curve_drop(tlb->curve, of_ctx, &ctx);
    for (unsigned i = 0; i < tlb->nparts; i++)
        tlb->stats.invalidations +=
            vmsi_assoc_drop_where(&tlb->part[i], 0, tlb->part[i].sets, of_ctx, &ctx);
    recount(tlb);
    report_flush(tlb, before, VMS_EV_FLUSH_CTX, 0, ctx, true);
}

/* Every entry, except global ones when *arg (keep_global). */
static bool droppable(const vmsi_assoc_entry *e, const void *arg)
{
    return !(*(const bool *)arg && (e->tag & VMSI_ASSOC_G));
}

void vms_tlb_flush_all(vms_tlb *tlb, bool keep_global)
{
    uint64_t before = tlb->stats.invalidations;
    vmsi_tlb_memo_clear(tlb);
    if (tlb->curve)
        vmsi_curve_drop(tlb->curve, droppable, &keep_global);
    for (unsigned i = 0; i < tlb->nparts; i++)
        tlb->stats.invalidations +=
            vmsi_assoc_drop_where(&tlb->part[i], 0, tlb->part[i].sets, droppable, &keep_global);
    recount(tlb);
    report_flush(tlb, before, VMS_EV_FLUSH_ALL, 0, 0, keep_global);
}

/* ---- inspection ---- */

unsigned vms_tlb_capacity(const vms_tlb *tlb)
{
    unsigned n = 0;
    for (unsigned i = 0; i < tlb->nparts; i++)
        n += tlb->part[i].sets * tlb->part[i].ways;
    return n;
}

unsigned vms_tlb_count(const vms_tlb *tlb)
{
    unsigned n = 0;
    for (unsigned i = 0; i < tlb->nparts; i++)
        n += tlb->part[i].count;
    return n;
}

/* Sign-extend a 57-bit linear address (canonical with 5-level paging, and with 4). */
static uint64_t canonical(uint64_t va)
{
    return (va & (UINT64_C(1) << (VA_BITS - 1))) ? va | ~VA_MASK : va;
}

/* Describe entry e at (part, set, way) in *out. */
static void describe(const vmsi_assoc_entry *e, unsigned part, unsigned set, unsigned way,
                     vms_tlb_entry_info *out)
{
    uint64_t key = vmsi_assoc_key(e->tag);
    out->part = part;
    out->set = set;
    out->way = way;
    out->va = canonical((key >> 2) << vms_pgsize_shift(key_size(key)));
    out->ctx = e->ctx;
    decode(e->tag, e->data, &out->x);
}

bool vms_tlb_entry(const vms_tlb *tlb, unsigned i, vms_tlb_entry_info *out)
{
    for (unsigned p = 0; p < tlb->nparts; p++) {
        const vmsi_assoc *a = &tlb->part[p];
        if (i >= a->count) {
            i -= a->count;
            continue;
        }
        for (unsigned s = 0; s < a->sets; s++)
            for (unsigned w = 0; w < a->ways; w++) {
                const vmsi_assoc_entry *e = vmsi_assoc_at(a, s, w);
                if ((e->tag & VMSI_ASSOC_V) && i-- == 0) {
                    describe(e, p, s, w, out);
                    return true;
                }
            }
    }
    return false;
}

/* A valid entry of partition p is well-formed: its size is held there, it is the
 * size its original size is cached as, and its frame is aligned to the cached size. */
static bool entry_ok(const vms_tlb *tlb, unsigned p, const vmsi_assoc_entry *e)
{
    vms_pgsize t = key_size(vmsi_assoc_key(e->tag)), o = orig_size(e->data);
    if ((unsigned)t >= VMS_PG_NSIZES || (unsigned)o >= VMS_PG_NSIZES)
        return false;
    if (tlb->part_of[t] != (int)p || tlb->cached_as[o] != (int)t)
        return false;
    return ((e->data & D_PA_MASK) & (vms_pgsize_bytes(t) - 1)) == 0;
}

bool vms_tlb_check(const vms_tlb *tlb)
{
    for (unsigned p = 0; p < tlb->nparts; p++) {
        const vmsi_assoc *a = &tlb->part[p];
        if (!vmsi_assoc_check(a))
            return false;
        for (size_t k = 0; k < (size_t)a->sets * a->ways; k++)
            if ((a->e[k].tag & VMSI_ASSOC_V) && !entry_ok(tlb, p, &a->e[k]))
                return false;
    }
    unsigned n[VMS_PG_NSIZES] = {0, 0, 0};
    for (unsigned p = 0; p < tlb->nparts; p++)
        for (size_t k = 0; k < (size_t)tlb->part[p].sets * tlb->part[p].ways; k++)
            if (tlb->part[p].e[k].tag & VMSI_ASSOC_V)
                n[key_size(vmsi_assoc_key(tlb->part[p].e[k].tag))]++;
    if (memcmp(n, tlb->nsize, sizeof n) != 0)
        return false;
    const vms_tlb_stats *st = &tlb->stats;
    return st->hits + st->misses == st->lookups;
}

const vms_tlb_stats *vms_tlb_get_stats(const vms_tlb *tlb)
{
    return &tlb->stats;
}

void vms_tlb_reset_stats(vms_tlb *tlb)
{
    memset(&tlb->stats, 0, sizeof tlb->stats);
}
