/*
 * frames.c — the physical frame allocator: a binary buddy allocator whose free sets
 * answer "lowest-addressed free block of order k" in a few word operations, with lazily
 * allocated per-frame metadata. See include/vmsim/frames.h for the contract.
 *
 * Free sets. The physical address space is cut into 2 MiB chunks (order 9).
 *   - A free block of order k >= 9 is one bit, pfn >> k, in big[k - 9]: a hierarchical
 *     bitmap over all blocks of that order below end_pfn.
 *   - A free block of order k < 9 lies inside one chunk: it is one bit in that chunk's
 *     bitmap for order k (512 >> k bits), and the chunk's bit is set in small[k] while
 *     the chunk holds at least one free block of that order.
 * A hierarchical bitmap (hbm) keeps, above its bits, one summary bit per 64-bit word, up
 * to a single top word, so the first set bit is found in one ctz per level (6 levels
 * for 2^34 bits) and set/clear touch at most one word per level. Lowest free block of
 * order k < 9: first chunk in small[k], then the first bit of that chunk's bitmap.
 *
 * Mobility (docs in include/vmsim/frames.h). With grouping on, every pageblock (a chunk's
 * 2 MiB) has a type in pbmt[], and each type has its own small[] and big[] sets: a free
 * block is in the sets of its pageblock's type (a free block of order >= 9 covers
 * pageblocks of one type), so "lowest free block of order k and type t" stays a few word
 * operations. Changing a pageblock's type moves its chunk's summary bits from one type's
 * small[] sets to the other's (Linux's move_freepages_block). Off, pbmt is NULL, every
 * block is movable and only the movable sets exist.
 *
 * Metadata. Chunks (512 vms_frame + the small bitmaps) are found through a two-level
 * directory: dir[pfn >> 18] is an array of 512 chunk pointers, allocated with the first
 * chunk in that GiB. A chunk exists for every 2 MiB region that holds an allocated or
 * reserved frame or a free block of order < 9; once allocated it is kept until destroy,
 * so freeing never allocates. A chunk whose 512 frames all lie in one RAM range records
 * that range (range1 = its index + 1, fixed when the chunk is made: ranges never change
 * after creation), so the metadata lookups and the free counts of its frames skip the
 * ranges' binary search; a chunk at a range's ragged edge has range1 = 0 and searches.
 *
 * Invariants (vms_frames_check verifies them all):
 *   1. Every RAM frame is in exactly one of: a free block, an allocated block, or is
 *      reserved. Blocks are naturally aligned and inside one RAM range.
 *   2. No two free buddies of the same order < 18 (free blocks are coalesced); with
 *      grouping, except buddies of order >= 10 of different types.
 *   3. Allocated block: head has ALLOC|HEAD and its order; tails have ALLOC only.
 *      Reserved frame: RESERVED only. Free frame: all-zero metadata.
 *   4. free + used + reserved == total; free_blocks[k] == bits set for order k;
 *      flag_frames[b] == Σ 2^order over heads (and reserved frames) with bit b.
 *   5. A free block is in the sets of its pageblocks' type and no other (all the
 *      pageblocks of a free block of order >= 9 have one type); range_free counts the
 *      free blocks of each range, type and order.
 */
#include "vmsim/frames.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/util.h"

#define CHUNK_ORDER   9u
#define CHUNK_FRAMES  (1u << CHUNK_ORDER)
#define DIR_SHIFT     18u /* one directory entry per GiB: 512 chunks */
#define DIR_ENTRIES   (1u << (DIR_SHIFT - CHUNK_ORDER))
#define NSMALL        CHUNK_ORDER                        /* orders 0 … 8 live inside chunks */
#define NBIG          (VMS_FRAMES_NORDERS - CHUNK_ORDER) /* orders 9 … 18 */
#define HBM_MAXLEVELS 8u
#define NONE          UINT64_MAX
#define NMT           VMS_MT_NTYPES
#define PB_ORDER      VMS_FRAMES_PAGEBLOCK_ORDER /* == CHUNK_ORDER: a pageblock is a chunk */
#define LINUX_MAX     10u /* Linux's MAX_PAGE_ORDER: its largest free block, 4 MiB */

_Static_assert(PB_ORDER == CHUNK_ORDER, "a pageblock is one metadata chunk");

_Static_assert(sizeof(vms_frame) == 24 + sizeof(uintptr_t),
               "vms_frame is 32 bytes on a 64-bit host");

/* A hierarchical bitmap of nbits bits; level l has words w[off[l] …]. */
typedef struct hbm {
    uint64_t *w;
    uint64_t nbits;
    size_t nwords;
    unsigned nlevels;
    size_t off[HBM_MAXLEVELS];
} hbm;

/*
 * One 2 MiB chunk. Bitmap of order k (0 … 8) is at bm[bm_off[k]], 512 >> k bits:
 *   order:  0      1     2     3    4    5    6    7    8
 *   words:  0-7    8-11  12-13 14   15   16   17   18   19
 */
typedef struct chunk {
    vms_frame meta[CHUNK_FRAMES];
    uint64_t bm[20];
    uint16_t nfree[NSMALL]; /* free blocks of each order in this chunk */
    uint32_t range1;        /* 1 + the RAM range holding all 512 frames; 0: none does */
} chunk;

/* range1 sits in what was the struct's tail padding: the metadata's host bytes (counted
 * in host_bytes and reported) are unchanged. */
_Static_assert(sizeof(chunk) == CHUNK_FRAMES * sizeof(vms_frame) + 20 * 8 + 24,
               "a chunk is its metadata, its bitmaps and 24 bytes of counts");

static const uint8_t bm_off[NSMALL] = {0, 8, 12, 14, 15, 16, 17, 18, 19};

struct vms_frames {
    const vms_allocator *a;
    vms_frames_range *ranges;
    size_t nranges, ranges_cap; /* cap: as allocated, before merging */
    vms_frames_fit fit;
    uint64_t end_pfn;       /* exclusive end of the highest range */
    hbm small[NMT][NSMALL]; /* per type; only [VMS_MT_MOVABLE] when grouping is off */
    hbm big[NMT][NBIG];
    uint8_t *pbmt; /* the type of each pageblock (chunk index); NULL: grouping off */
    size_t npb;    /* entries of pbmt */
    chunk ***dir;
    size_t ndir;
    uint64_t *range_free; /* [range][type][order] free block counts */
    uint64_t mt_fallback, mt_claimed;
    uint64_t free_blocks[VMS_FRAMES_NORDERS];
    uint64_t total, nfree, used, reserved;
    uint64_t flag_frames[VMS_FRAME_NFLAGS];
    uint64_t meta_chunks;
    uint64_t host_bytes;
};

static inline uint64_t bit(unsigned i)
{
    return UINT64_C(1) << i;
}

static inline uint64_t pages(unsigned order)
{
    return UINT64_C(1) << order;
}

/* ---- host memory (counted in host_bytes) ---------------------------------------- */

static void *xzalloc(vms_frames *fr, size_t n)
{
    void *p = vmsi_zalloc(fr->a, n);
    if (p)
        fr->host_bytes += n;
    return p;
}

static void xfree(vms_frames *fr, void *p, size_t n)
{
    if (p) {
        vmsi_free(fr->a, p, n);
        fr->host_bytes -= n;
    }
}

/* ---- hierarchical bitmap -------------------------------------------------------- */

/* Size the levels of h for nbits bits and allocate them zeroed; false on NOMEM. */
static bool hbm_init(vms_frames *fr, hbm *h, uint64_t nbits)
{
    size_t words = (size_t)((nbits + 63) / 64), total = 0;
    h->nbits = nbits;
    h->nlevels = 0;
    do {
        assert(h->nlevels < HBM_MAXLEVELS);
        h->off[h->nlevels++] = total;
        total += words;
        if (words == 1)
            break;
        words = (words + 63) / 64;
    } while (true);
    h->nwords = total;
    h->w = xzalloc(fr, total * sizeof *h->w);
    return h->w != NULL;
}

static void hbm_destroy(vms_frames *fr, hbm *h)
{
    xfree(fr, h->w, h->nwords * sizeof *h->w);
    h->w = NULL;
}

/* Whether bit i is set; false beyond the end. */
static bool hbm_test(const hbm *h, uint64_t i)
{
    return i < h->nbits && (h->w[i / 64] >> (i % 64) & 1);
}

/* Set bit i, marking its word non-empty in the levels above. */
static void hbm_set(hbm *h, uint64_t i)
{
    assert(i < h->nbits);
    for (unsigned l = 0; l < h->nlevels; l++, i /= 64) {
        uint64_t *w = &h->w[h->off[l] + i / 64];
        bool was_empty = *w == 0;
        *w |= bit((unsigned)(i % 64));
        if (!was_empty)
            return;
    }
}

/* Clear bit i, clearing summaries whose word became empty. */
static void hbm_clear(hbm *h, uint64_t i)
{
    assert(i < h->nbits);
    for (unsigned l = 0; l < h->nlevels; l++, i /= 64) {
        uint64_t *w = &h->w[h->off[l] + i / 64];
        *w &= ~bit((unsigned)(i % 64));
        if (*w)
            return;
    }
}

/* The lowest set bit, or NONE. One ctz per level. */
static uint64_t hbm_first(const hbm *h)
{
    uint64_t i = 0; /* word index at the current level */
    for (unsigned l = h->nlevels; l-- > 0;) {
        uint64_t w = h->w[h->off[l] + i];
        if (!w)
            return NONE; /* only possible at the top: the set is empty */
        i = i * 64 + (uint64_t)__builtin_ctzll(w);
    }
    return i;
}

/* ---- ranges and chunks ---------------------------------------------------------- */

/* Index of the range holding pfn, or -1. Binary search over the sorted ranges. */
static long range_of(const vms_frames *fr, uint64_t pfn)
{
    size_t lo = 0, hi = fr->nranges;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const vms_frames_range *r = &fr->ranges[mid];
        if (pfn < r->base_pfn)
            hi = mid;
        else if (pfn - r->base_pfn >= r->npages)
            lo = mid + 1;
        else
            return (long)mid;
    }
    return -1;
}

/* Whether [pfn, pfn + npages) is non-empty and inside one RAM range. */
static bool in_one_range(const vms_frames *fr, uint64_t pfn, uint64_t npages)
{
    long r = range_of(fr, pfn);
    if (r < 0 || npages == 0)
        return false;
    const vms_frames_range *rg = &fr->ranges[r];
    return npages <= rg->base_pfn + rg->npages - pfn;
}

/* The chunk holding pfn, or NULL if it has no metadata (or pfn is beyond end_pfn). */
static chunk *chunk_of(const vms_frames *fr, uint64_t pfn)
{
    if (pfn >= fr->end_pfn)
        return NULL;
    chunk **d = fr->dir[pfn >> DIR_SHIFT];
    return d ? d[(pfn >> CHUNK_ORDER) % DIR_ENTRIES] : NULL;
}

/* The range1 a chunk starting at pfn gets: 1 + the range holding all its frames, or 0. */
static uint32_t chunk_range1(const vms_frames *fr, uint64_t pfn)
{
    long r = in_one_range(fr, pfn, CHUNK_FRAMES) ? range_of(fr, pfn) : -1;
    return r >= 0 && (uint64_t)r < UINT32_MAX ? (uint32_t)r + 1 : 0;
}

/* Allocate the chunk holding pfn if missing. false on NOMEM (nothing else changes). */
static bool chunk_make(vms_frames *fr, uint64_t pfn)
{
    chunk ***d = &fr->dir[pfn >> DIR_SHIFT];
    if (!*d && !(*d = xzalloc(fr, DIR_ENTRIES * sizeof **d)))
        return false;
    chunk **c = &(*d)[(pfn >> CHUNK_ORDER) % DIR_ENTRIES];
    if (!*c) {
        if (!(*c = xzalloc(fr, sizeof **c)))
            return false;
        (*c)->range1 = chunk_range1(fr, pfn & ~(uint64_t)(CHUNK_FRAMES - 1));
        fr->meta_chunks++;
    }
    return true;
}

/* Make sure every chunk covering [pfn, pfn + npages) has metadata. */
static bool chunks_make(vms_frames *fr, uint64_t pfn, uint64_t npages)
{
    for (uint64_t c = pfn >> CHUNK_ORDER; c <= (pfn + npages - 1) >> CHUNK_ORDER; c++)
        if (!chunk_make(fr, c << CHUNK_ORDER))
            return false;
    return true;
}

static vms_frame *meta_of(const vms_frames *fr, uint64_t pfn)
{
    chunk *c = chunk_of(fr, pfn);
    return c ? &c->meta[pfn % CHUNK_FRAMES] : NULL;
}

/* range_of through the chunk's record when pfn's chunk lies in one range (the same
 * answer: the record is that range). */
static inline long range_at(const vms_frames *fr, uint64_t pfn)
{
    const chunk *c = chunk_of(fr, pfn);
    return c && c->range1 ? (long)c->range1 - 1 : range_of(fr, pfn);
}

/* ---- free sets ------------------------------------------------------------------ */

/* Bit index of block pfn (order k < 9) in its chunk's bitmap words. */
static inline unsigned small_bit(uint64_t pfn, unsigned k)
{
    return (unsigned)(pfn % CHUNK_FRAMES) >> k;
}

/* The type of the pageblock holding pfn: movable when grouping is off, and beyond the
 * end of RAM (where a buddy may lie, never free). */
static inline unsigned mt_of(const vms_frames *fr, uint64_t pfn)
{
    return fr->pbmt && (pfn >> PB_ORDER) < fr->npb ? fr->pbmt[pfn >> PB_ORDER] : VMS_MT_MOVABLE;
}

/* Whether (pfn, k) is a free block (of its pageblock's type: every free block is). */
static bool is_free(const vms_frames *fr, uint64_t pfn, unsigned k)
{
    if (k >= CHUNK_ORDER)
        return hbm_test(&fr->big[mt_of(fr, pfn)][k - CHUNK_ORDER], pfn >> k);
    const chunk *c = chunk_of(fr, pfn);
    unsigned b = small_bit(pfn, k);
    return c && (c->bm[bm_off[k] + b / 64] >> (b % 64) & 1);
}

/* Count a free block of order k and type t in range r (>= 0) in or out of the
 * per-order, per-range and frame totals. */
static inline void count_free(vms_frames *fr, long r, unsigned t, unsigned k, int sign)
{
    assert(r >= 0);
    uint64_t *rf = &fr->range_free[((size_t)r * NMT + t) * VMS_FRAMES_NORDERS + k];
    if (sign > 0) {
        fr->free_blocks[k]++, (*rf)++, fr->nfree += pages(k);
    } else {
        fr->free_blocks[k]--, (*rf)--, fr->nfree -= pages(k);
    }
}

/* The range of pfn, which lies in chunk c (range_at without finding c again). */
static inline long range_in(const vms_frames *fr, const chunk *c, uint64_t pfn)
{
    return c->range1 ? (long)c->range1 - 1 : range_of(fr, pfn);
}

/* Insert the free block (pfn, k). Its chunk must exist if k < 9. */
static void fl_add(vms_frames *fr, uint64_t pfn, unsigned k)
{
    assert(!is_free(fr, pfn, k) && (pfn & (pages(k) - 1)) == 0);
    unsigned t = mt_of(fr, pfn);
    if (k >= CHUNK_ORDER) {
        hbm_set(&fr->big[t][k - CHUNK_ORDER], pfn >> k);
        count_free(fr, range_at(fr, pfn), t, k, +1);
    } else {
        chunk *c = chunk_of(fr, pfn);
        unsigned b = small_bit(pfn, k);
        assert(c);
        c->bm[bm_off[k] + b / 64] |= bit(b % 64);
        if (c->nfree[k]++ == 0)
            hbm_set(&fr->small[t][k], pfn >> CHUNK_ORDER);
        count_free(fr, range_in(fr, c, pfn), t, k, +1);
    }
}

/* Remove the free block (pfn, k). */
static void fl_del(vms_frames *fr, uint64_t pfn, unsigned k)
{
    assert(is_free(fr, pfn, k));
    unsigned t = mt_of(fr, pfn);
    if (k >= CHUNK_ORDER) {
        hbm_clear(&fr->big[t][k - CHUNK_ORDER], pfn >> k);
        count_free(fr, range_at(fr, pfn), t, k, -1);
    } else {
        chunk *c = chunk_of(fr, pfn);
        unsigned b = small_bit(pfn, k);
        c->bm[bm_off[k] + b / 64] &= ~bit(b % 64);
        if (--c->nfree[k] == 0)
            hbm_clear(&fr->small[t][k], pfn >> CHUNK_ORDER);
        count_free(fr, range_in(fr, c, pfn), t, k, -1);
    }
}

/* The lowest free block of exactly order k and type t, or NONE. */
static uint64_t fl_first(const vms_frames *fr, unsigned t, unsigned k)
{
    if (k >= CHUNK_ORDER) {
        uint64_t i = hbm_first(&fr->big[t][k - CHUNK_ORDER]);
        return i == NONE ? NONE : i << k;
    }
    uint64_t ci = hbm_first(&fr->small[t][k]);
    if (ci == NONE)
        return NONE;
    const chunk *c = chunk_of(fr, ci << CHUNK_ORDER);
    for (unsigned wi = 0; wi * 64 < (CHUNK_FRAMES >> k); wi++) {
        uint64_t w = c->bm[bm_off[k] + wi];
        if (w)
            return (ci << CHUNK_ORDER) + (((uint64_t)wi * 64 + (uint64_t)__builtin_ctzll(w)) << k);
    }
    assert(false); /* small[k] named a chunk with no free block of order k */
    return NONE;
}

/* The free block containing pfn: true with *base and *order, false if pfn is not free. */
static bool free_block_of(const vms_frames *fr, uint64_t pfn, uint64_t *base, unsigned *order)
{
    for (unsigned k = 0; k < VMS_FRAMES_NORDERS; k++) {
        uint64_t b = pfn & ~(pages(k) - 1);
        if (is_free(fr, b, k)) {
            *base = b;
            *order = k;
            return true;
        }
    }
    return false;
}

/* Give every pageblock of the block (pfn, k), which is in no free set, type t. */
static void set_types(vms_frames *fr, uint64_t pfn, unsigned k, unsigned t)
{
    for (uint64_t pb = pfn >> PB_ORDER; pb <= (pfn + pages(k) - 1) >> PB_ORDER; pb++)
        fr->pbmt[pb] = (uint8_t)t;
}

/* Whether the free buddies (pfn, k) and (buddy, k) merge: always without grouping; with
 * it, buddies of different types merge only below Linux's largest order (no Linux free
 * block is larger than 2^LINUX_MAX frames, so it never merges those). */
static bool mergeable(const vms_frames *fr, uint64_t pfn, uint64_t buddy, unsigned k)
{
    return !fr->pbmt || k < LINUX_MAX || mt_of(fr, pfn) == mt_of(fr, buddy);
}

/* Put the free block (pfn, k) back, merging with free buddies as far as possible; a
 * buddy of order >= 9 of another type takes this block's type first (Linux 6.10+
 * __free_one_page: "Match buddy type"). */
static void fl_coalesce(vms_frames *fr, uint64_t pfn, unsigned k)
{
    while (k < VMS_FRAMES_MAX_ORDER) {
        uint64_t buddy = pfn ^ pages(k);
        if (!is_free(fr, buddy, k) || !mergeable(fr, pfn, buddy, k))
            break;
        fl_del(fr, buddy, k);
        if (mt_of(fr, buddy) != mt_of(fr, pfn))
            set_types(fr, buddy, k, mt_of(fr, pfn));
        pfn &= ~pages(k);
        k++;
    }
    fl_add(fr, pfn, k);
}

/* move_freepages_block: give the pageblock at pb (a chunk's first pfn; it holds no free
 * block of order >= 9) type t, moving its free blocks to t's sets. */
static void retype_pageblock(vms_frames *fr, uint64_t pb, unsigned t)
{
    struct {
        uint16_t off;
        uint8_t k;
    } blk[CHUNK_FRAMES];
    unsigned n = 0;
    chunk *c = chunk_of(fr, pb);
    for (unsigned k = 0; c && k < NSMALL; k++)
        for (unsigned wi = 0; c->nfree[k] && wi * 64 < (CHUNK_FRAMES >> k); wi++)
            for (uint64_t w = c->bm[bm_off[k] + wi]; w; w &= w - 1) {
                unsigned b = wi * 64 + (unsigned)__builtin_ctzll(w);
                blk[n].off = (uint16_t)(b << k);
                blk[n++].k = (uint8_t)k;
            }
    for (unsigned i = 0; i < n; i++)
        fl_del(fr, pb + blk[i].off, blk[i].k);
    fr->pbmt[pb >> PB_ORDER] = (uint8_t)t;
    for (unsigned i = 0; i < n; i++)
        fl_add(fr, pb + blk[i].off, blk[i].k);
}

/* ---- accounting ----------------------------------------------------------------- */

/* Add (sign > 0) or remove the 2^order frames of a block with flags to the flag counts. */
static void count_flags(vms_frames *fr, uint32_t flags, unsigned order, int sign)
{
    _Static_assert(VMS_FRAME_NFLAGS == 32, "every bit of a uint32_t is a flag");
    for (; flags; flags &= flags - 1) { /* the set bits only, lowest first */
        unsigned b = (unsigned)__builtin_ctz(flags);
        if (sign > 0)
            fr->flag_frames[b] += pages(order);
        else
            fr->flag_frames[b] -= pages(order);
    }
}

/* Set a head's flags to nf, keeping the counts. */
static void head_set_flags(vms_frames *fr, vms_frame *h, uint32_t nf)
{
    count_flags(fr, h->flags & ~nf, h->order, -1);
    count_flags(fr, nf & ~h->flags, h->order, +1);
    h->flags = nf;
}

/* ---- creation ------------------------------------------------------------------- */

size_t vms_frames_layout_pc(uint64_t ram_bytes, vms_frames_range out[2])
{
    const uint64_t low = UINT64_C(3) << 30, high = UINT64_C(4) << 30;
    if (ram_bytes == 0 || ram_bytes % VMS_PAGE_SIZE)
        return 0;
    uint64_t below = ram_bytes < low ? ram_bytes : low;
    out[0] = (vms_frames_range){0, below >> VMS_PAGE_SHIFT};
    if (ram_bytes == below)
        return 1;
    out[1] = (vms_frames_range){high >> VMS_PAGE_SHIFT, (ram_bytes - below) >> VMS_PAGE_SHIFT};
    return 2;
}

static int range_cmp(const void *x, const void *y)
{
    const vms_frames_range *a = x, *b = y;
    return (a->base_pfn > b->base_pfn) - (a->base_pfn < b->base_pfn);
}

/* Copy, validate, sort and merge cfg's ranges into fr. */
static vms_status ranges_load(vms_frames *fr, const vms_frames_config *cfg, vms_err *err)
{
    if (!cfg->ranges || cfg->nranges == 0)
        return vmsi_err(err, VMS_ERR_INVAL, "frames: no RAM ranges given");
    for (size_t i = 0; i < cfg->nranges; i++) {
        const vms_frames_range *r = &cfg->ranges[i];
        if (r->npages == 0 || r->base_pfn >= VMS_FRAMES_MAX_PFN ||
            r->npages > VMS_FRAMES_MAX_PFN - r->base_pfn)
            return vmsi_err(err, VMS_ERR_INVAL,
                            "frames: range %zu (pfn %#llx, %llu pages) must be non-empty and "
                            "below pfn 2^34",
                            i, (unsigned long long)r->base_pfn, (unsigned long long)r->npages);
    }
    fr->ranges = xzalloc(fr, cfg->nranges * sizeof *fr->ranges);
    if (!fr->ranges)
        return vmsi_err(err, VMS_ERR_NOMEM, "frames: out of memory for ranges");
    fr->ranges_cap = cfg->nranges;
    memcpy(fr->ranges, cfg->ranges, cfg->nranges * sizeof *fr->ranges);
    qsort(fr->ranges, cfg->nranges, sizeof *fr->ranges, range_cmp);
    size_t n = 1;
    for (size_t i = 1; i < cfg->nranges; i++) {
        vms_frames_range *last = &fr->ranges[n - 1], *r = &fr->ranges[i];
        uint64_t end = last->base_pfn + last->npages;
        if (r->base_pfn < end)
            return vmsi_err(err, VMS_ERR_INVAL, "frames: RAM ranges overlap at pfn %#llx",
                            (unsigned long long)r->base_pfn);
        if (r->base_pfn == end)
            last->npages += r->npages;
        else
            fr->ranges[n++] = *r;
    }
    fr->nranges = n;
    fr->end_pfn = fr->ranges[n - 1].base_pfn + fr->ranges[n - 1].npages;
    return VMS_OK;
}

/* Allocate the bitmaps, directory and counters for end_pfn (with mobility: per type,
 * and the pageblock types). */
static vms_status tables_make(vms_frames *fr, bool mobility, vms_err *err)
{
    uint64_t nchunks = (fr->end_pfn + CHUNK_FRAMES - 1) >> CHUNK_ORDER;
    for (unsigned t = 0; t < NMT; t++) {
        if (!mobility && t != VMS_MT_MOVABLE)
            continue; /* without grouping every free block is movable */
        for (unsigned k = 0; k < NSMALL; k++)
            if (!hbm_init(fr, &fr->small[t][k], nchunks))
                return vmsi_err(err, VMS_ERR_NOMEM, "frames: out of memory for bitmaps");
        for (unsigned k = CHUNK_ORDER; k < VMS_FRAMES_NORDERS; k++)
            if (!hbm_init(fr, &fr->big[t][k - CHUNK_ORDER], (fr->end_pfn + pages(k) - 1) >> k))
                return vmsi_err(err, VMS_ERR_NOMEM, "frames: out of memory for bitmaps");
    }
    if (mobility) { /* every pageblock starts movable (Linux's memmap_init_range) */
        fr->npb = (size_t)nchunks;
        if (!(fr->pbmt = xzalloc(fr, fr->npb)))
            return vmsi_err(err, VMS_ERR_NOMEM, "frames: out of memory for pageblock types");
        memset(fr->pbmt, VMS_MT_MOVABLE, fr->npb);
    }
    fr->ndir = (size_t)((fr->end_pfn + pages(DIR_SHIFT) - 1) >> DIR_SHIFT);
    fr->dir = xzalloc(fr, fr->ndir * sizeof *fr->dir);
    fr->range_free = xzalloc(fr, fr->nranges * NMT * VMS_FRAMES_NORDERS * sizeof *fr->range_free);
    if (!fr->dir || !fr->range_free)
        return vmsi_err(err, VMS_ERR_NOMEM, "frames: out of memory for the directory");
    return VMS_OK;
}

/* The largest order of an aligned block at pfn that ends by end. */
static unsigned max_order_at(uint64_t pfn, uint64_t end)
{
    unsigned k = pfn ? (unsigned)__builtin_ctzll(pfn) : VMS_FRAMES_MAX_ORDER;
    if (k > VMS_FRAMES_MAX_ORDER)
        k = VMS_FRAMES_MAX_ORDER;
    while (pfn + pages(k) > end)
        k--;
    return k;
}

/* Cut every range into maximal aligned free blocks. */
static vms_status ranges_free_all(vms_frames *fr, vms_err *err)
{
    for (size_t i = 0; i < fr->nranges; i++) {
        uint64_t pfn = fr->ranges[i].base_pfn, end = pfn + fr->ranges[i].npages;
        fr->total += end - pfn;
        while (pfn < end) {
            unsigned k = max_order_at(pfn, end);
            if (k < CHUNK_ORDER && !chunk_make(fr, pfn))
                return vmsi_err(err, VMS_ERR_NOMEM, "frames: out of memory for metadata");
            fl_add(fr, pfn, k);
            pfn += pages(k);
        }
    }
    return VMS_OK;
}

vms_status vms_frames_create(const vms_allocator *a, const vms_frames_config *cfg, vms_frames **out,
                             vms_err *err)
{
    *out = NULL;
    if (!cfg || (cfg->fit != VMS_FRAMES_FIT_BUDDY && cfg->fit != VMS_FRAMES_FIT_LOWEST))
        return vmsi_err(err, VMS_ERR_INVAL, "frames: missing config or unknown fit");
    if (!a)
        a = vms_allocator_default();
    vms_frames *fr = vmsi_zalloc(a, sizeof *fr);
    if (!fr)
        return vmsi_err(err, VMS_ERR_NOMEM, "frames: out of memory");
    fr->a = a;
    fr->fit = cfg->fit;
    fr->host_bytes = sizeof *fr;
    vms_status st = ranges_load(fr, cfg, err);
    if (st == VMS_OK)
        st = tables_make(fr, cfg->mobility, err);
    if (st == VMS_OK)
        st = ranges_free_all(fr, err);
    if (st != VMS_OK) {
        vms_frames_destroy(fr);
        return st;
    }
    *out = fr;
    return VMS_OK;
}

void vms_frames_destroy(vms_frames *fr)
{
    if (!fr)
        return;
    for (size_t i = 0; fr->dir && i < fr->ndir; i++) {
        if (!fr->dir[i])
            continue;
        for (unsigned j = 0; j < DIR_ENTRIES; j++)
            xfree(fr, fr->dir[i][j], sizeof(chunk));
        xfree(fr, fr->dir[i], DIR_ENTRIES * sizeof *fr->dir[i]);
    }
    xfree(fr, fr->dir, fr->ndir * sizeof *fr->dir);
    for (unsigned t = 0; t < NMT; t++) {
        for (unsigned k = 0; k < NSMALL; k++)
            hbm_destroy(fr, &fr->small[t][k]);
        for (unsigned k = 0; k < NBIG; k++)
            hbm_destroy(fr, &fr->big[t][k]);
    }
    xfree(fr, fr->pbmt, fr->npb);
    xfree(fr, fr->range_free, fr->nranges * NMT * VMS_FRAMES_NORDERS * sizeof *fr->range_free);
    xfree(fr, fr->ranges, fr->ranges_cap * sizeof *fr->ranges);
    vmsi_free(fr->a, fr, sizeof *fr);
}

const vms_frames_range *vms_frames_ranges(const vms_frames *fr, size_t *n)
{
    *n = fr->nranges;
    return fr->ranges;
}

bool vms_frames_is_ram(const vms_frames *fr, uint64_t pfn)
{
    return range_at(fr, pfn) >= 0;
}

/* ---- allocation and freeing ----------------------------------------------------- */

/* __rmqueue_smallest: the free block of type t an order-`order` request takes (or
 * splits): its pfn, or NONE; *from gets its order. BUDDY stops at the smallest order
 * that has a block; LOWEST looks at every order >= the request and keeps the lowest
 * address. */
static uint64_t pick(const vms_frames *fr, unsigned order, unsigned t, unsigned *from)
{
    uint64_t best = NONE;
    for (unsigned k = order; k < VMS_FRAMES_NORDERS; k++) {
        if (!fr->free_blocks[k])
            continue; /* no type has one: fl_first would say NONE */
        uint64_t p = fl_first(fr, t, k);
        if (p < best) {
            best = p;
            *from = k;
            if (fr->fit == VMS_FRAMES_FIT_BUDDY)
                break;
        }
    }
    return best;
}

/* Make the free-list-removed range [pfn, pfn + 2^order) an allocated block. */
static void block_mark(vms_frames *fr, uint64_t pfn, unsigned order)
{
    for (uint64_t i = 1; i < pages(order); i++)
        meta_of(fr, pfn + i)->flags = VMS_FRAME_ALLOC;
    vms_frame *h = meta_of(fr, pfn);
    h->order = (uint8_t)order;
    h->refcount = 1;
    head_set_flags(fr, h, VMS_FRAME_ALLOC | VMS_FRAME_HEAD);
    fr->used += pages(order);
}

/* Free the allocated block headed by pfn: zero its metadata and coalesce it. */
static void block_release(vms_frames *fr, uint64_t pfn)
{
    vms_frame *h = meta_of(fr, pfn);
    unsigned order = h->order;
    head_set_flags(fr, h, 0);
    for (uint64_t i = 0; i < pages(order); i++)
        memset(meta_of(fr, pfn + i), 0, sizeof(vms_frame));
    fr->used -= pages(order);
    fl_coalesce(fr, pfn, order);
}

/* Linux's fallbacks[]: the types an allocation of each type falls back to, in order. */
static const uint8_t fallbacks[NMT][NMT - 1] = {
    [VMS_MT_UNMOVABLE] = {VMS_MT_RECLAIMABLE, VMS_MT_MOVABLE},
    [VMS_MT_MOVABLE] = {VMS_MT_RECLAIMABLE, VMS_MT_UNMOVABLE},
    [VMS_MT_RECLAIMABLE] = {VMS_MT_UNMOVABLE, VMS_MT_MOVABLE},
};

/* can_steal_fallback: whether a request of type t that found a free block of order k in
 * another type's list may claim that block's whole pageblock. */
static bool can_steal(unsigned k, unsigned t)
{
    return k >= PB_ORDER / 2 || t != VMS_MT_MOVABLE;
}

/* find_suitable_fallback: the first type of t's fallbacks with a free block of order k
 * (its lowest in *pfn), or -1. */
static int fallback_type(const vms_frames *fr, unsigned k, unsigned t, uint64_t *pfn)
{
    for (unsigned i = 0; i < NMT - 1; i++) {
        uint64_t p = fl_first(fr, fallbacks[t][i], k);
        if (p != NONE) {
            *pfn = p;
            return fallbacks[t][i];
        }
    }
    return -1;
}

/* __rmqueue_fallback's choice for a request (order, t) its own type cannot serve: the
 * largest free block of a fallback type (the smallest instead for a movable request
 * that may not steal there), its order in *from, its type in *ft. NONE when no type has
 * a block of order >= order. */
static uint64_t pick_fallback(const vms_frames *fr, unsigned order, unsigned t, unsigned *from,
                              int *ft)
{
    uint64_t p = NONE;
    unsigned k = VMS_FRAMES_NORDERS;
    while (k-- > order && (*ft = fallback_type(fr, k, t, &p)) < 0)
        ;
    if (p == NONE)
        return NONE;
    if (!can_steal(k, t) && t == VMS_MT_MOVABLE && k > order) /* find_smallest */
        for (k = order; (*ft = fallback_type(fr, k, t, &p)) < 0; k++)
            ;
    *from = k;
    return p;
}

/* Count the free frames and the movable ones (anonymous or page cache: Linux's PageLRU)
 * of the pageblock at pb, which holds no free block of order >= 9. */
static void pageblock_census(const vms_frames *fr, uint64_t pb, unsigned *nfree, unsigned *nmov)
{
    uint64_t b;
    unsigned k;
    *nfree = *nmov = 0;
    for (uint64_t q = pb; q < pb + CHUNK_FRAMES;) {
        const vms_frame *m = meta_of(fr, q);
        if (free_block_of(fr, q, &b, &k)) {
            *nfree += (unsigned)pages(k);
            q = b + pages(k);
        } else if (m && (m->flags & VMS_FRAME_HEAD)) {
            if (m->flags & (VMS_FRAME_ANON | VMS_FRAME_FILE))
                *nmov += (unsigned)pages(m->order);
            q += pages(m->order);
        } else {
            q++; /* reserved */
        }
    }
}

/*
 * steal_suitable_fallback: a request (order, t) takes the free block (p, *k) of type ft.
 * A block of order >= 9 is claimed whole (split down to Linux's largest order first, the
 * rest staying ft's); a smaller one from a request that may steal claims its pageblock
 * when its free frames and the frames alike the request reach half of it. Returns the
 * free block to allocate from (its order in *k): p itself, or after a claim the block
 * __rmqueue_smallest finds in t (inside the claimed pageblock).
 */
static uint64_t steal(vms_frames *fr, uint64_t p, unsigned *k, unsigned order, unsigned t,
                      unsigned ft)
{
    fr->mt_fallback++;
    if (*k >= PB_ORDER) {
        fl_del(fr, p, *k);
        for (; *k > LINUX_MAX; (*k)--)
            fl_add(fr, p + pages(*k - 1), *k - 1); /* keep the low half */
        set_types(fr, p, *k, t);
        fr->mt_claimed += pages(*k - PB_ORDER);
        fl_add(fr, p, *k);
        return p;
    }
    uint64_t pb = p & ~(uint64_t)(CHUNK_FRAMES - 1);
    if (!can_steal(*k, t) || !in_one_range(fr, pb, CHUNK_FRAMES))
        return p; /* single_page (Linux: also when the block crosses a zone's edge) */
    unsigned nfree, nmov;
    pageblock_census(fr, pb, &nfree, &nmov);
    unsigned alike = t == VMS_MT_MOVABLE    ? nmov
                     : ft == VMS_MT_MOVABLE ? CHUNK_FRAMES - nfree - nmov
                                            : 0;
    if (nfree + alike < CHUNK_FRAMES / 2)
        return p;
    retype_pageblock(fr, pb, t);
    fr->mt_claimed++;
    uint64_t q = pick(fr, order, t, k);
    assert(q >> PB_ORDER == pb >> PB_ORDER); /* t had no block of order >= order before */
    return q;
}

/* Allocate an order-`order` block of type t (see vms_frames_alloc). */
static vms_status alloc_block(vms_frames *fr, unsigned order, unsigned t, uint64_t *pfn,
                              vms_err *err)
{
    if (order > VMS_FRAMES_MAX_ORDER)
        return vmsi_err(err, VMS_ERR_INVAL, "frames: order %u is above the maximum %u", order,
                        VMS_FRAMES_MAX_ORDER);
    unsigned k = 0;
    int ft = -1;
    if (!fr->pbmt)
        t = VMS_MT_MOVABLE; /* no grouping: one free set */
    uint64_t p = pick(fr, order, t, &k);
    if (p == NONE && fr->pbmt)
        p = pick_fallback(fr, order, t, &k, &ft);
    if (p == NONE)
        return vmsi_err(err, VMS_ERR_NOTFOUND, "frames: no free block of order %u", order);
    /* Metadata first, so that a host failure leaves the free sets untouched (a claimed
     * pageblock below order 9 has its chunk already: it holds free blocks). */
    if (!chunks_make(fr, p, pages(order)))
        return vmsi_err(err, VMS_ERR_NOMEM, "frames: out of memory for frame metadata");
    if (ft >= 0)
        p = steal(fr, p, &k, order, t, (unsigned)ft);
    fl_del(fr, p, k);
    while (k > order) {
        k--;
        fl_add(fr, p + pages(k), k); /* keep the low half, free the high one */
    }
    block_mark(fr, p, order);
    *pfn = p;
    return VMS_OK;
}

vms_status vms_frames_alloc(vms_frames *fr, unsigned order, uint64_t *pfn, vms_err *err)
{
    return alloc_block(fr, order, VMS_MT_MOVABLE, pfn, err);
}

vms_status vms_frames_alloc_mt(vms_frames *fr, unsigned order, vms_migratetype mt, uint64_t *pfn,
                               vms_err *err)
{
    if ((unsigned)mt >= NMT)
        return vmsi_err(err, VMS_ERR_INVAL, "frames: unknown migratetype %d", (int)mt);
    return alloc_block(fr, order, (unsigned)mt, pfn, err);
}

bool vms_frames_mobility(const vms_frames *fr)
{
    return fr->pbmt != NULL;
}

vms_migratetype vms_frames_pageblock_type(const vms_frames *fr, uint64_t pfn)
{
    if (!fr->pbmt || !vms_frames_is_ram(fr, pfn))
        return VMS_MT_MOVABLE;
    return (vms_migratetype)mt_of(fr, pfn);
}

bool vms_frames_free_block(const vms_frames *fr, uint64_t pfn, uint64_t *base, unsigned *order)
{
    uint64_t b;
    unsigned k;
    if (!vms_frames_is_ram(fr, pfn) || !free_block_of(fr, pfn, &b, &k))
        return false;
    if (base)
        *base = b;
    if (order)
        *order = k;
    return true;
}

bool vms_frames_is_free(const vms_frames *fr, uint64_t pfn)
{
    uint64_t b;
    unsigned k;
    return vms_frames_is_ram(fr, pfn) && free_block_of(fr, pfn, &b, &k);
}

vms_status vms_frames_alloc_at(vms_frames *fr, uint64_t pfn, vms_err *err)
{
    uint64_t b = 0;
    unsigned k = 0;
    if (!vms_frames_is_ram(fr, pfn) || !free_block_of(fr, pfn, &b, &k))
        return vmsi_err(err, VMS_ERR_INVAL, "frames: pfn %#llx is not a free RAM frame",
                        (unsigned long long)pfn);
    if (!chunks_make(fr, pfn, 1))
        return vmsi_err(err, VMS_ERR_NOMEM, "frames: out of memory for frame metadata");
    fl_del(fr, b, k);
    /* __isolate_free_page: taking at least half a pageblock makes it movable (the
     * pageblocks of the taken block, at most Linux's largest order). */
    bool moved = !fr->pbmt || k < PB_ORDER - 1;
    for (;;) {
        if (!moved && k <= LINUX_MAX) {
            if (k >= PB_ORDER)
                set_types(fr, b, k, VMS_MT_MOVABLE);
            else
                retype_pageblock(fr, b & ~(uint64_t)(CHUNK_FRAMES - 1), VMS_MT_MOVABLE);
            moved = true;
        }
        if (k == 0)
            break;
        k--; /* halve, freeing the half without pfn */
        if (pfn >= b + pages(k)) {
            fl_add(fr, b, k);
            b += pages(k);
        } else {
            fl_add(fr, b + pages(k), k);
        }
    }
    block_mark(fr, pfn, 0);
    return VMS_OK;
}

vms_status vms_frames_split(vms_frames *fr, uint64_t pfn, uint32_t tail_refs, vms_err *err)
{
    const uint32_t head = VMS_FRAME_ALLOC | VMS_FRAME_HEAD;
    vms_frame *h = vms_frames_meta(fr, pfn);
    if (!h || (h->flags & head) != head || h->order == 0 || h->pincount || tail_refs == 0)
        return vmsi_err(err, VMS_ERR_INVAL,
                        "frames: pfn %#llx is not the head of an unpinned block of order > 0",
                        (unsigned long long)pfn);
    /* The flag counts already count 2^k frames for each of the head's flags: giving every
     * frame the same flags keeps them exact. */
    for (uint64_t i = 1; i < pages(h->order); i++) {
        vms_frame *t = meta_of(fr, pfn + i);
        t->flags = h->flags;
        t->refcount = tail_refs;
        t->order = 0;
    }
    h->order = 0;
    return VMS_OK;
}

/* Whether any frame of the block at pfn still has a mapping. */
static bool block_mapped(const vms_frames *fr, uint64_t pfn, unsigned order)
{
    for (uint64_t i = 0; i < pages(order); i++)
        if (meta_of(fr, pfn + i)->mapcount)
            return true;
    return false;
}

vms_status vms_frames_free(vms_frames *fr, uint64_t pfn, unsigned order, vms_err *err)
{
    const uint32_t head = VMS_FRAME_ALLOC | VMS_FRAME_HEAD;
    vms_frame *h = vms_frames_meta(fr, pfn);
    if (!h || (h->flags & head) != head)
        return vmsi_err(err, VMS_ERR_INVAL,
                        "frames: pfn %#llx is not the head of an allocated "
                        "block",
                        (unsigned long long)pfn);
    if (order != h->order)
        return vmsi_err(err, VMS_ERR_INVAL, "frames: block at pfn %#llx has order %u, not %u",
                        (unsigned long long)pfn, h->order, order);
    if (h->refcount != 1 || h->pincount || block_mapped(fr, pfn, order))
        return vmsi_err(err, VMS_ERR_INVAL,
                        "frames: block at pfn %#llx is still in use "
                        "(refcount %u, pincount %u, or mapped)",
                        (unsigned long long)pfn, h->refcount, h->pincount);
    block_release(fr, pfn);
    return VMS_OK;
}

/* Whether every frame of [pfn, end) is in a free block. */
static bool all_free(const vms_frames *fr, uint64_t pfn, uint64_t end)
{
    uint64_t b;
    unsigned k;
    while (pfn < end) {
        if (!free_block_of(fr, pfn, &b, &k))
            return false;
        pfn = b + pages(k);
    }
    return true;
}

/* Take the free frames [lo, hi) out of the free sets as reserved frames: split each
 * free block that sticks out of the range, keeping the half that holds p. */
static void carve(vms_frames *fr, uint64_t lo, uint64_t hi)
{
    for (uint64_t p = lo; p < hi;) {
        uint64_t b = 0; /* set by free_block_of, which the caller checked succeeds */
        unsigned k = 0;
        bool found = free_block_of(fr, p, &b, &k);
        assert(found);
        (void)found;
        fl_del(fr, b, k);
        while (b < lo || b + pages(k) > hi) {
            k--;
            if (p >= b + pages(k)) {
                fl_add(fr, b, k);
                b += pages(k);
            } else {
                fl_add(fr, b + pages(k), k);
            }
        }
        for (uint64_t i = 0; i < pages(k); i++)
            meta_of(fr, b + i)->flags = VMS_FRAME_RESERVED;
        count_flags(fr, VMS_FRAME_RESERVED, k, +1);
        fr->reserved += pages(k);
        p = b + pages(k);
    }
}

vms_status vms_frames_reserve(vms_frames *fr, uint64_t pfn, uint64_t npages, vms_err *err)
{
    if (!in_one_range(fr, pfn, npages) || !all_free(fr, pfn, pfn + npages))
        return vmsi_err(err, VMS_ERR_INVAL,
                        "frames: cannot reserve %llu pages at pfn %#llx: "
                        "expected free RAM frames in one range",
                        (unsigned long long)npages, (unsigned long long)pfn);
    if (!chunks_make(fr, pfn, npages))
        return vmsi_err(err, VMS_ERR_NOMEM, "frames: out of memory for frame metadata");
    carve(fr, pfn, pfn + npages);
    return VMS_OK;
}

vms_status vms_frames_unreserve(vms_frames *fr, uint64_t pfn, uint64_t npages, vms_err *err)
{
    bool ok = in_one_range(fr, pfn, npages);
    for (uint64_t i = 0; ok && i < npages; i++) {
        const vms_frame *m = meta_of(fr, pfn + i);
        ok = m && m->flags == VMS_FRAME_RESERVED;
    }
    if (!ok)
        return vmsi_err(err, VMS_ERR_INVAL,
                        "frames: cannot unreserve %llu pages at pfn %#llx: "
                        "expected reserved frames",
                        (unsigned long long)npages, (unsigned long long)pfn);
    for (uint64_t i = 0; i < npages; i++) {
        memset(meta_of(fr, pfn + i), 0, sizeof(vms_frame));
        count_flags(fr, VMS_FRAME_RESERVED, 0, -1);
        fr->reserved--;
        fl_coalesce(fr, pfn + i, 0);
    }
    return VMS_OK;
}

/* ---- metadata, references, flags ------------------------------------------------ */

vms_frame *vms_frames_meta(vms_frames *fr, uint64_t pfn)
{
    chunk *c = chunk_of(fr, pfn); /* no chunk: no metadata, RAM or not */
    if (!c || (!c->range1 && range_of(fr, pfn) < 0))
        return NULL;
    return &c->meta[pfn % CHUNK_FRAMES];
}

/* Whether hm heads a block of order k. */
static inline bool heads(const vms_frame *hm, unsigned k)
{
    return (hm->flags & VMS_FRAME_HEAD) && hm->order == k;
}

/* The head metadata of the allocated block holding pfn (its pfn in *head), or NULL.
 * The head is pfn rounded down to the block's order: try each order in turn; below
 * order 9 the candidates lie in pfn's own chunk. */
static vms_frame *head_of(const vms_frames *fr, uint64_t pfn, uint64_t *head)
{
    chunk *c = chunk_of(fr, pfn);
    vms_frame *m = c ? &c->meta[pfn % CHUNK_FRAMES] : NULL;
    if (!m || !(m->flags & VMS_FRAME_ALLOC))
        return NULL;
    if (heads(m, 0)) { /* the loop's first step, taken before its set-up */
        *head = pfn;
        return m;
    }
    for (unsigned k = 1; k < CHUNK_ORDER; k++) {
        uint64_t h = pfn & ~(pages(k) - 1);
        if (heads(&c->meta[h % CHUNK_FRAMES], k)) {
            *head = h;
            return &c->meta[h % CHUNK_FRAMES];
        }
    }
    for (unsigned k = CHUNK_ORDER; k < VMS_FRAMES_NORDERS; k++) {
        uint64_t h = pfn & ~(pages(k) - 1);
        vms_frame *hm = meta_of(fr, h);
        if (hm && heads(hm, k)) {
            *head = h;
            return hm;
        }
    }
    assert(false); /* an allocated frame without a head */
    return NULL;
}

vms_status vms_frames_head(const vms_frames *fr, uint64_t pfn, uint64_t *head, unsigned *order)
{
    uint64_t h;
    const vms_frame *hm = head_of(fr, pfn, &h);
    if (!hm)
        return VMS_ERR_INVAL;
    if (head)
        *head = h;
    if (order)
        *order = hm->order;
    return VMS_OK;
}

vms_status vms_frames_get(vms_frames *fr, uint64_t pfn)
{
    uint64_t h;
    vms_frame *hm = head_of(fr, pfn, &h);
    if (!hm || hm->refcount == UINT32_MAX)
        return VMS_ERR_INVAL;
    hm->refcount++;
    return VMS_OK;
}

/* Drop one reference of the block headed by hm (at h), freeing it at zero. */
static vms_status put_head(vms_frames *fr, vms_frame *hm, uint64_t h, bool *freed)
{
    bool last = hm->refcount == 1;
    if (last && (hm->pincount || block_mapped(fr, h, hm->order)))
        return VMS_ERR_INVAL;
    if (last)
        block_release(fr, h);
    else
        hm->refcount--;
    if (freed)
        *freed = last;
    return VMS_OK;
}

vms_status vms_frames_put(vms_frames *fr, uint64_t pfn, bool *freed)
{
    uint64_t h;
    vms_frame *hm = head_of(fr, pfn, &h);
    if (freed)
        *freed = false;
    return hm ? put_head(fr, hm, h, freed) : VMS_ERR_INVAL;
}

vms_status vms_frames_pin(vms_frames *fr, uint64_t pfn)
{
    uint64_t h;
    vms_frame *hm = head_of(fr, pfn, &h);
    if (!hm || hm->refcount == UINT32_MAX || hm->pincount == UINT32_MAX)
        return VMS_ERR_INVAL;
    hm->refcount++;
    if (hm->pincount++ == 0)
        head_set_flags(fr, hm, hm->flags | VMS_FRAME_PINNED);
    return VMS_OK;
}

vms_status vms_frames_unpin(vms_frames *fr, uint64_t pfn, bool *freed)
{
    uint64_t h;
    vms_frame *hm = head_of(fr, pfn, &h);
    if (freed)
        *freed = false;
    if (!hm || hm->pincount == 0)
        return VMS_ERR_INVAL;
    if (--hm->pincount == 0)
        head_set_flags(fr, hm, hm->flags & ~(uint32_t)VMS_FRAME_PINNED);
    /* The pin's reference: never the last one unless the owner already dropped its. */
    return put_head(fr, hm, h, freed);
}

vms_status vms_frames_set_flags(vms_frames *fr, uint64_t pfn, uint32_t set, uint32_t clear)
{
    uint64_t h;
    vms_frame *hm = head_of(fr, pfn, &h);
    if (!hm || ((set | clear) & VMS_FRAME_OWNED_FLAGS))
        return VMS_ERR_INVAL;
    head_set_flags(fr, hm, (hm->flags & ~clear) | set);
    return VMS_OK;
}

/* ---- accounting and observability ----------------------------------------------- */

uint64_t vms_frames_count(const vms_frames *fr, uint32_t flag)
{
    if (flag == 0 || (flag & (flag - 1)))
        return 0;
    return fr->flag_frames[__builtin_ctz(flag)];
}

uint64_t vms_frames_nfree(const vms_frames *fr)
{
    return fr->nfree;
}

void vms_frames_stats_get(const vms_frames *fr, vms_frames_stats *st)
{
    memset(st, 0, sizeof *st);
    st->total = fr->total;
    st->free = fr->nfree;
    st->used = fr->used;
    st->reserved = fr->reserved;
    memcpy(st->free_blocks, fr->free_blocks, sizeof st->free_blocks);
    st->meta_chunks = fr->meta_chunks;
    st->host_bytes = fr->host_bytes;
    st->mt_fallback = fr->mt_fallback;
    st->mt_claimed = fr->mt_claimed;
}

/* Free blocks of order k and type t in range i. */
static uint64_t range_free_of(const vms_frames *fr, size_t i, unsigned t, unsigned k)
{
    return fr->range_free[(i * NMT + t) * VMS_FRAMES_NORDERS + k];
}

vms_status vms_frames_buddyinfo(const vms_frames *fr, vms_strbuf *sb)
{
    vms_status st = VMS_OK;
    for (size_t i = 0; i < fr->nranges; i++) {
        char name[24];
        snprintf(name, sizeof name, "ram%zu", i);
        if (vms_strbuf_printf(sb, "Node 0, zone %8s ", name) != VMS_OK)
            st = VMS_ERR_NOMEM;
        for (unsigned k = 0; k < VMS_FRAMES_NORDERS; k++) {
            uint64_t n = 0;
            for (unsigned t = 0; t < NMT; t++)
                n += range_free_of(fr, i, t, k);
            if (vms_strbuf_printf(sb, "%6llu ", (unsigned long long)n) != VMS_OK)
                st = VMS_ERR_NOMEM;
        }
        if (vms_strbuf_append(sb, "\n", 1) != VMS_OK)
            st = VMS_ERR_NOMEM;
    }
    return st;
}

static const char *const mt_names[NMT] = {"Unmovable", "Movable", "Reclaimable"};

/* Pageblocks of each type in range i, added to counts; *last is the pageblock counted
 * last (a pageblock two ranges share counts once). */
static void range_pageblocks(const vms_frames *fr, size_t i, uint64_t counts[NMT], uint64_t *last)
{
    const vms_frames_range *r = &fr->ranges[i];
    for (uint64_t pb = r->base_pfn >> PB_ORDER; pb <= (r->base_pfn + r->npages - 1) >> PB_ORDER;
         pb++)
        if (pb != *last) {
            counts[mt_of(fr, pb << PB_ORDER)]++;
            *last = pb;
        }
}

void vms_frames_pageblocks(const vms_frames *fr, uint64_t counts[VMS_MT_NTYPES])
{
    uint64_t last = NONE;
    memset(counts, 0, NMT * sizeof *counts);
    for (size_t i = 0; i < fr->nranges; i++)
        range_pageblocks(fr, i, counts, &last);
}

vms_status vms_frames_pagetypeinfo(const vms_frames *fr, vms_strbuf *sb)
{
    bool ok = vms_strbuf_printf(sb, "Page block order: %u\nPages per block:  %llu\n\n%-43s ",
                                PB_ORDER, (unsigned long long)pages(PB_ORDER),
                                "Free pages count per migrate type at order") == VMS_OK;
    for (unsigned k = 0; k < VMS_FRAMES_NORDERS; k++)
        ok &= vms_strbuf_printf(sb, "%6u ", k) == VMS_OK;
    ok &= vms_strbuf_append(sb, "\n", 1) == VMS_OK;
    for (size_t i = 0; i < fr->nranges; i++)
        for (unsigned t = 0; t < NMT; t++) {
            char name[24];
            snprintf(name, sizeof name, "ram%zu", i);
            ok &= vms_strbuf_printf(sb, "Node %4d, zone %8s, type %12s ", 0, name, mt_names[t]) ==
                  VMS_OK;
            for (unsigned k = 0; k < VMS_FRAMES_NORDERS; k++)
                ok &= vms_strbuf_printf(sb, "%6llu ",
                                        (unsigned long long)range_free_of(fr, i, t, k)) == VMS_OK;
            ok &= vms_strbuf_append(sb, "\n", 1) == VMS_OK;
        }
    ok &= vms_strbuf_printf(sb, "\n%-23s", "Number of blocks type ") == VMS_OK;
    for (unsigned t = 0; t < NMT; t++)
        ok &= vms_strbuf_printf(sb, "%12s ", mt_names[t]) == VMS_OK;
    ok &= vms_strbuf_append(sb, "\n", 1) == VMS_OK;
    uint64_t last = NONE;
    for (size_t i = 0; i < fr->nranges; i++) {
        uint64_t counts[NMT] = {0};
        char name[24];
        range_pageblocks(fr, i, counts, &last);
        snprintf(name, sizeof name, "ram%zu", i);
        ok &= vms_strbuf_printf(sb, "Node 0, zone %8s ", name) == VMS_OK;
        for (unsigned t = 0; t < NMT; t++)
            ok &= vms_strbuf_printf(sb, "%12llu ", (unsigned long long)counts[t]) == VMS_OK;
        ok &= vms_strbuf_append(sb, "\n", 1) == VMS_OK;
    }
    return ok ? VMS_OK : VMS_ERR_NOMEM;
}

/* Free frames in blocks of order >= order. */
static uint64_t suitable_frames(const vms_frames *fr, unsigned order)
{
    uint64_t n = 0;
    for (unsigned k = order; k < VMS_FRAMES_NORDERS; k++)
        n += fr->free_blocks[k] << k;
    return n;
}

unsigned vms_frames_unusable_index(const vms_frames *fr, unsigned order)
{
    if (fr->nfree == 0 || order > VMS_FRAMES_MAX_ORDER)
        return 1000;
    return (unsigned)((fr->nfree - suitable_frames(fr, order)) * 1000 / fr->nfree);
}

int vms_frames_extfrag_index(const vms_frames *fr, unsigned order)
{
    uint64_t blocks = 0;
    for (unsigned k = 0; k < VMS_FRAMES_NORDERS; k++)
        blocks += fr->free_blocks[k];
    if (blocks == 0)
        return 0;
    if (order <= VMS_FRAMES_MAX_ORDER && suitable_frames(fr, order))
        return -1000;
    uint64_t ratio = order < 64 ? fr->nfree * 1000 / pages(order) : 0;
    return 1000 - (int)((1000 + ratio) / blocks);
}

/* ---- invariant checker ---------------------------------------------------------- */

/* Summary levels of h agree with the levels below, and no bit is set past nbits. */
static bool hbm_ok(const hbm *h)
{
    size_t words = (size_t)((h->nbits + 63) / 64);
    if (h->nbits % 64 && h->w[words - 1] >> (h->nbits % 64))
        return false;
    for (unsigned l = 1; l < h->nlevels; l++) {
        size_t below = h->off[l] - h->off[l - 1];
        for (size_t i = 0; i < below; i++) {
            bool nz = h->w[h->off[l - 1] + i] != 0;
            if (nz != (bool)(h->w[h->off[l] + i / 64] >> (i % 64) & 1))
                return false;
        }
    }
    return true;
}

/* One free block as the bitmaps name it: inside one range, with no free buddy. */
static vms_status check_free_block(const vms_frames *fr, uint64_t pfn, unsigned k, vms_err *err)
{
    if (!in_one_range(fr, pfn, pages(k)))
        return vmsi_err(err, VMS_ERR_INVAL,
                        "check: free block pfn %#llx order %u is not inside "
                        "one RAM range",
                        (unsigned long long)pfn, k);
    uint64_t buddy = pfn ^ pages(k);
    if (k < VMS_FRAMES_MAX_ORDER && is_free(fr, buddy, k) && mergeable(fr, pfn, buddy, k))
        return vmsi_err(err, VMS_ERR_INVAL,
                        "check: free buddies at pfn %#llx order %u are not "
                        "coalesced",
                        (unsigned long long)pfn, k);
    return VMS_OK;
}

/* Whether every pageblock of the block (pfn, k >= 9) has type t. */
static bool types_are(const vms_frames *fr, uint64_t pfn, unsigned k, unsigned t)
{
    for (uint64_t pb = pfn >> PB_ORDER; pb <= (pfn + pages(k) - 1) >> PB_ORDER; pb++)
        if (mt_of(fr, pb << PB_ORDER) != t)
            return false;
    return true;
}

/* The free blocks of order k >= 9 in type t's set; adds their number to *n. */
static vms_status check_big_type(const vms_frames *fr, unsigned t, unsigned k, uint64_t *n,
                                 vms_err *err)
{
    const hbm *h = &fr->big[t][k - CHUNK_ORDER];
    if (!h->w)
        return VMS_OK; /* a type that exists only with grouping */
    if (!hbm_ok(h))
        return vmsi_err(err, VMS_ERR_INVAL, "check: bitmap of order %u is inconsistent", k);
    for (size_t wi = 0; wi < (h->nbits + 63) / 64; wi++)
        for (uint64_t w = h->w[wi]; w; w &= w - 1, (*n)++) {
            uint64_t pfn = ((uint64_t)wi * 64 + (uint64_t)__builtin_ctzll(w)) << k;
            if (!types_are(fr, pfn, k, t))
                return vmsi_err(err, VMS_ERR_INVAL,
                                "check: free block pfn %#llx order %u is in the %s set but "
                                "a pageblock of it is not",
                                (unsigned long long)pfn, k, mt_names[t]);
            vms_status st = check_free_block(fr, pfn, k, err);
            if (st != VMS_OK)
                return st;
        }
    return VMS_OK;
}

/* Every free block of order >= 9. */
static vms_status check_big(const vms_frames *fr, vms_err *err)
{
    for (unsigned k = CHUNK_ORDER; k < VMS_FRAMES_NORDERS; k++) {
        uint64_t n = 0;
        for (unsigned t = 0; t < NMT; t++) {
            vms_status st = check_big_type(fr, t, k, &n, err);
            if (st != VMS_OK)
                return st;
        }
        if (n != fr->free_blocks[k])
            return vmsi_err(err, VMS_ERR_INVAL, "check: %llu free blocks of order %u, counted %llu",
                            (unsigned long long)n, k, (unsigned long long)fr->free_blocks[k]);
    }
    return VMS_OK;
}

/* The small bitmaps of chunk c (index ci); adds its free blocks per order to n. */
static vms_status check_chunk(const vms_frames *fr, const chunk *c, uint64_t ci, uint64_t *n,
                              vms_err *err)
{
    if (c->range1 != chunk_range1(fr, ci << CHUNK_ORDER))
        return vmsi_err(err, VMS_ERR_INVAL, "check: chunk %#llx records range %u, not %u",
                        (unsigned long long)ci, c->range1, chunk_range1(fr, ci << CHUNK_ORDER));
    for (unsigned k = 0; k < NSMALL; k++) {
        unsigned cnt = 0;
        for (unsigned wi = 0; wi * 64 < (CHUNK_FRAMES >> k); wi++)
            for (uint64_t w = c->bm[bm_off[k] + wi]; w; w &= w - 1, cnt++) {
                unsigned b = wi * 64 + (unsigned)__builtin_ctzll(w);
                vms_status st = check_free_block(fr, (ci << CHUNK_ORDER) + (b << k), k, err);
                if (st != VMS_OK)
                    return st;
            }
        bool marked_right = true;
        for (unsigned t = 0; t < NMT; t++)
            if (fr->small[t][k].w)
                marked_right &= hbm_test(&fr->small[t][k], ci) ==
                                (cnt > 0 && t == mt_of(fr, ci << CHUNK_ORDER));
        if (cnt != c->nfree[k] || !marked_right)
            return vmsi_err(err, VMS_ERR_INVAL,
                            "check: chunk %#llx order %u: %u free blocks, "
                            "nfree %u",
                            (unsigned long long)ci, k, cnt, c->nfree[k]);
        n[k] += cnt;
    }
    return VMS_OK;
}

/* Every free block of order < 9, through the chunks; also counts the chunks. */
static vms_status check_small(const vms_frames *fr, vms_err *err)
{
    uint64_t n[NSMALL] = {0}, nchunks = 0, marked[NSMALL] = {0};
    for (size_t d = 0; d < fr->ndir; d++)
        for (unsigned j = 0; fr->dir[d] && j < DIR_ENTRIES; j++) {
            const chunk *c = fr->dir[d][j];
            vms_status st = c ? check_chunk(fr, c, (uint64_t)d * DIR_ENTRIES + j, n, err) : VMS_OK;
            if (st != VMS_OK)
                return st;
            for (unsigned k = 0; c && k < NSMALL; k++)
                marked[k] += c->nfree[k] > 0;
            nchunks += c != NULL;
        }
    for (unsigned k = 0; k < NSMALL; k++) {
        uint64_t bits = 0;
        bool ok = true;
        for (unsigned t = 0; t < NMT; t++) {
            const hbm *h = &fr->small[t][k];
            for (size_t wi = 0; h->w && wi < (h->nbits + 63) / 64; wi++)
                bits += (uint64_t)__builtin_popcountll(h->w[wi]);
            ok &= !h->w || hbm_ok(h);
        }
        if (!ok || bits != marked[k] || n[k] != fr->free_blocks[k])
            return vmsi_err(err, VMS_ERR_INVAL, "check: order %u: chunk bitmap or count wrong", k);
    }
    if (nchunks != fr->meta_chunks)
        return vmsi_err(err, VMS_ERR_INVAL, "check: %llu chunks, counted %llu",
                        (unsigned long long)nchunks, (unsigned long long)fr->meta_chunks);
    return VMS_OK;
}

/* Totals of the tiling walk, compared with the allocator's counters at the end. */
typedef struct walk_sum {
    uint64_t free, used, reserved;
    uint64_t flags[VMS_FRAME_NFLAGS];
    uint64_t blocks[NMT][VMS_FRAMES_NORDERS]; /* free blocks of the range being walked */
} walk_sum;

/* A free block's frames that have metadata must have all-zero metadata. */
static bool free_meta_zero(const vms_frames *fr, uint64_t pfn, unsigned k)
{
    static const vms_frame zero;
    for (uint64_t i = 0; i < pages(k); i++) {
        const chunk *c = chunk_of(fr, pfn + i);
        if (!c) {
            i |= CHUNK_FRAMES - 1; /* skip the rest of this chunk */
            continue;
        }
        if (memcmp(&c->meta[(pfn + i) % CHUNK_FRAMES], &zero, sizeof zero))
            return false;
    }
    return true;
}

/* An allocated block at its head pfn inside [.., end): shape and tails. */
static bool alloc_block_ok(const vms_frames *fr, uint64_t pfn, uint64_t end, const vms_frame *h)
{
    unsigned k = h->order;
    if (k > VMS_FRAMES_MAX_ORDER || pfn % pages(k) || pages(k) > end - pfn || h->refcount == 0 ||
        (h->pincount > 0) != ((h->flags & VMS_FRAME_PINNED) != 0) ||
        (h->flags & VMS_FRAME_RESERVED))
        return false;
    for (uint64_t i = 1; i < pages(k); i++) {
        const vms_frame *t = meta_of(fr, pfn + i);
        if (!t || t->flags != VMS_FRAME_ALLOC || t->refcount || t->pincount || t->order)
            return false;
    }
    return true;
}

/* Walk one range block by block; every frame must be free, reserved or allocated. */
static vms_status walk_range(const vms_frames *fr, const vms_frames_range *r, walk_sum *s,
                             vms_err *err)
{
    const uint32_t head = VMS_FRAME_ALLOC | VMS_FRAME_HEAD;
    uint64_t end = r->base_pfn + r->npages, b;
    unsigned k;
    for (uint64_t p = r->base_pfn; p < end;) {
        const vms_frame *m = meta_of(fr, p);
        if (free_block_of(fr, p, &b, &k)) {
            if (b != p || !free_meta_zero(fr, p, k))
                return vmsi_err(err, VMS_ERR_INVAL,
                                "check: free block at pfn %#llx overlaps "
                                "another block or has metadata",
                                (unsigned long long)b);
            s->free += pages(k), s->blocks[mt_of(fr, p)][k]++, p += pages(k);
        } else if (m && m->flags == VMS_FRAME_RESERVED) {
            s->reserved++, s->flags[__builtin_ctz(VMS_FRAME_RESERVED)]++, p++;
        } else if (m && (m->flags & head) == head && alloc_block_ok(fr, p, end, m)) {
            for (unsigned bi = 0; bi < VMS_FRAME_NFLAGS; bi++)
                s->flags[bi] += (m->flags >> bi & 1) << m->order;
            s->used += pages(m->order), p += pages(m->order);
        } else {
            return vmsi_err(err, VMS_ERR_INVAL,
                            "check: pfn %#llx is neither free, reserved nor "
                            "the head of a well-formed allocated block",
                            (unsigned long long)p);
        }
    }
    return VMS_OK;
}

/* The tiling walk over all ranges, compared with the counters. */
static vms_status check_walk(const vms_frames *fr, vms_err *err)
{
    walk_sum s;
    memset(&s, 0, sizeof s);
    for (size_t i = 0; i < fr->nranges; i++) {
        memset(s.blocks, 0, sizeof s.blocks);
        vms_status st = walk_range(fr, &fr->ranges[i], &s, err);
        if (st != VMS_OK)
            return st;
        for (unsigned t = 0; t < NMT; t++)
            for (unsigned k = 0; k < VMS_FRAMES_NORDERS; k++)
                if (s.blocks[t][k] != range_free_of(fr, i, t, k))
                    return vmsi_err(err, VMS_ERR_INVAL,
                                    "check: range %zu has %llu free %s blocks of order %u, "
                                    "counted %llu",
                                    i, (unsigned long long)s.blocks[t][k], mt_names[t], k,
                                    (unsigned long long)range_free_of(fr, i, t, k));
    }
    if (s.free != fr->nfree || s.used != fr->used || s.reserved != fr->reserved ||
        fr->nfree + fr->used + fr->reserved != fr->total)
        return vmsi_err(err, VMS_ERR_INVAL,
                        "check: walked %llu free, %llu used, %llu reserved; "
                        "counters say %llu, %llu, %llu of %llu",
                        (unsigned long long)s.free, (unsigned long long)s.used,
                        (unsigned long long)s.reserved, (unsigned long long)fr->nfree,
                        (unsigned long long)fr->used, (unsigned long long)fr->reserved,
                        (unsigned long long)fr->total);
    for (unsigned bi = 0; bi < VMS_FRAME_NFLAGS; bi++)
        if (s.flags[bi] != fr->flag_frames[bi])
            return vmsi_err(err, VMS_ERR_INVAL, "check: flag bit %u on %llu frames, counted %llu",
                            bi, (unsigned long long)s.flags[bi],
                            (unsigned long long)fr->flag_frames[bi]);
    return VMS_OK;
}

vms_status vms_frames_check(const vms_frames *fr, vms_err *err)
{
    vms_status st = check_big(fr, err);
    if (st == VMS_OK)
        st = check_small(fr, err);
    if (st == VMS_OK)
        st = check_walk(fr, err);
    return st;
}
