/*
 * ram.c — physical memory: real bytes, held sparsely (ram.h).
 *
 * A three-level radix of frame pointers indexed by pfn:
 *
 *   pfn:   | chunk index (pfn >> 13) | leaf in chunk (7 bits) | frame in leaf (6 bits) |
 *
 *   ram->chunk[ci] ──► chunk { nleaves, leaf[128] } ──► leaf { nresident, frame[64] }
 *                                                          ──► 4 KiB host page
 *
 * The top table (one pointer per 32 MiB of physical space) is all a new RAM costs:
 * 256 KiB for 1 TiB, 16 MiB for the 64 TiB maximum. A chunk (1 KiB) and a leaf (520
 * bytes) are allocated when the first frame under them is written and freed when their
 * last frame is discarded; a frame's host page is allocated on its first write. A NULL
 * frame reads as zeros. Leaves are small because the frames that hold bytes are often
 * scattered: in an address-only replay only the page tables do, one frame in ~513, so
 * a leaf of 8192 pointers would cost 64 KiB for each of them (8 bytes a touched page)
 * where one of 64 costs 520 bytes (issue 11 item 4: host memory follows the work).
 *
 * The discard generation counts the host pages given back (vms_ram_discard and the
 * whole-frame zero fills and zero copies that call it): the bus's table-frame cache
 * (bus_impl.h) trusts a remembered host page only while the generation has not moved.
 *
 * Invariants, outside a call: chunk[ci] == NULL or its nleaves (non-NULL leaves) >= 1;
 * a leaf is NULL or its nresident >= 1; ram->resident == sum of nresident; a write that fails for
 * lack of host memory changes nothing (neither bytes nor the resident count).
 */
#include "vmsim/ram.h"

#include <assert.h>

#include "hw/bus_impl.h"
#include "util/util.h"

#define CHUNK_SHIFT  13
#define CHUNK_FRAMES (UINT64_C(1) << CHUNK_SHIFT)
#define LEAF_SHIFT   6
#define LEAF_FRAMES  (UINT64_C(1) << LEAF_SHIFT)
#define CHUNK_LEAVES (CHUNK_FRAMES / LEAF_FRAMES)

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "scalar accessors copy host integers: x86 order needs a little-endian host");

typedef struct leaf {
    uint64_t nresident; /* frames of this leaf that hold a host page */
    uint8_t *frame[LEAF_FRAMES];
} leaf;

typedef struct chunk {
    uint64_t nleaves; /* leaves of this chunk that exist */
    leaf *leaf[CHUNK_LEAVES];
} chunk;

struct vms_ram {
    const vms_allocator *a;
    uint64_t limit;   /* bytes; multiple of 4 KiB */
    uint64_t nframes; /* limit >> 12 */
    uint64_t nchunks;
    uint64_t resident;
    uint64_t gen; /* discard generation: bumped whenever a frame loses its host page */
    chunk **chunk;
};

vms_status vms_ram_create(const vms_allocator *a, uint64_t limit, vms_ram **out, vms_err *err)
{
    if (!a)
        a = vms_allocator_default();
    if (limit == 0 || (limit & VMS_PAGE_MASK) || limit > VMS_RAM_MAX_LIMIT)
        return vmsi_err(err, VMS_ERR_INVAL,
                        "RAM limit 0x%llx: expected a non-zero multiple of 4 KiB <= 2^46",
                        (unsigned long long)limit);
    vms_ram *ram = vmsi_zalloc(a, sizeof *ram);
    if (!ram)
        return vmsi_err(err, VMS_ERR_NOMEM, "no host memory for the RAM descriptor");
    ram->a = a;
    ram->limit = limit;
    ram->nframes = limit >> VMS_PAGE_SHIFT;
    ram->nchunks = (ram->nframes + CHUNK_FRAMES - 1) >> CHUNK_SHIFT;
    ram->chunk = vmsi_calloc(a, (size_t)ram->nchunks, sizeof *ram->chunk);
    if (!ram->chunk) {
        unsigned long long nchunks = ram->nchunks;
        vmsi_free(a, ram, sizeof *ram);
        return vmsi_err(err, VMS_ERR_NOMEM, "no host memory for %llu RAM chunk pointers", nchunks);
    }
    *out = ram;
    return VMS_OK;
}

void vms_ram_destroy(vms_ram *ram)
{
    if (!ram)
        return;
    for (uint64_t ci = 0; ci < ram->nchunks; ci++) {
        chunk *c = ram->chunk[ci];
        if (!c)
            continue;
        for (uint64_t li = 0; li < CHUNK_LEAVES; li++) {
            leaf *l = c->leaf[li];
            if (!l)
                continue;
            for (uint64_t i = 0; i < LEAF_FRAMES; i++)
                vmsi_free(ram->a, l->frame[i], VMS_PAGE_SIZE);
            vmsi_free(ram->a, l, sizeof *l);
        }
        vmsi_free(ram->a, c, sizeof *c);
    }
    vmsi_free(ram->a, ram->chunk, (size_t)ram->nchunks * sizeof *ram->chunk);
    vmsi_free(ram->a, ram, sizeof *ram);
}

uint64_t vms_ram_limit(const vms_ram *ram)
{
    return ram->limit;
}

const uint64_t *vmsi_ram_generation(const vms_ram *ram)
{
    return &ram->gen;
}

uint64_t vms_ram_resident_frames(const vms_ram *ram)
{
    return ram->resident;
}

/* The leaf holding pfn, or NULL (pfn must be in range). */
static inline leaf *leaf_of(const vms_ram *ram, uint64_t pfn)
{
    const chunk *c = ram->chunk[pfn >> CHUNK_SHIFT];
    return c ? c->leaf[(pfn >> LEAF_SHIFT) & (CHUNK_LEAVES - 1)] : NULL;
}

/* The host page of pfn, or NULL when never written (pfn must be in range). */
static inline uint8_t *frame_get(const vms_ram *ram, uint64_t pfn)
{
    const leaf *l = leaf_of(ram, pfn);
    return l ? l->frame[pfn & (LEAF_FRAMES - 1)] : NULL;
}

/* The leaf holding pfn, allocating an empty one (and its chunk) if needed; NULL on host
 * failure, with nothing allocated. */
static leaf *leaf_get(vms_ram *ram, uint64_t pfn)
{
    chunk **cp = &ram->chunk[pfn >> CHUNK_SHIFT];
    if (!*cp && !(*cp = vmsi_zalloc(ram->a, sizeof **cp)))
        return NULL;
    leaf **lp = &(*cp)->leaf[(pfn >> LEAF_SHIFT) & (CHUNK_LEAVES - 1)];
    if (!*lp) {
        *lp = vmsi_zalloc(ram->a, sizeof **lp);
        if (!*lp) {
            if ((*cp)->nleaves == 0) {
                vmsi_free(ram->a, *cp, sizeof **cp);
                *cp = NULL;
            }
            return NULL;
        }
        (*cp)->nleaves++;
    }
    return *lp;
}

/* Free the leaf holding pfn if it holds no frame, and then its chunk if it holds no leaf
 * (undoes leaf_get on failure paths; follows a discard). */
static void leaf_put_if_empty(vms_ram *ram, uint64_t pfn)
{
    chunk **cp = &ram->chunk[pfn >> CHUNK_SHIFT];
    if (!*cp)
        return;
    leaf **lp = &(*cp)->leaf[(pfn >> LEAF_SHIFT) & (CHUNK_LEAVES - 1)];
    if (*lp && (*lp)->nresident == 0) {
        vmsi_free(ram->a, *lp, sizeof **lp);
        *lp = NULL;
        (*cp)->nleaves--;
    }
    if ((*cp)->nleaves == 0) {
        vmsi_free(ram->a, *cp, sizeof **cp);
        *cp = NULL;
    }
}

uint8_t *vms_ram_frame(vms_ram *ram, uint64_t pfn, bool create)
{
    if (pfn >= ram->nframes)
        return NULL;
    uint8_t *p = frame_get(ram, pfn);
    if (p || !create)
        return p;
    leaf *l = leaf_get(ram, pfn);
    if (!l)
        return NULL;
    p = vmsi_zalloc(ram->a, VMS_PAGE_SIZE);
    if (!p) {
        leaf_put_if_empty(ram, pfn);
        return NULL;
    }
    l->frame[pfn & (LEAF_FRAMES - 1)] = p;
    l->nresident++;
    ram->resident++;
    return p;
}

void vms_ram_discard(vms_ram *ram, uint64_t pfn)
{
    if (pfn >= ram->nframes)
        return;
    leaf *l = leaf_of(ram, pfn);
    uint8_t **fp = l ? &l->frame[pfn & (LEAF_FRAMES - 1)] : NULL;
    if (!fp || !*fp)
        return;
    vmsi_free(ram->a, *fp, VMS_PAGE_SIZE);
    *fp = NULL;
    ram->gen++; /* a host page went: the bus's cached pointers may name it */
    l->nresident--;
    ram->resident--;
    leaf_put_if_empty(ram, pfn);
}

/* True when [pa, pa+len) lies inside [0, limit) (overflow-safe). */
static inline bool in_range(const vms_ram *ram, uint64_t pa, uint64_t len)
{
    return len <= ram->limit && pa <= ram->limit - len;
}

/*
 * Make every frame of [pa, pa+len) resident, all or nothing. New host pages are first
 * chained through their own first 8 bytes (no bookkeeping memory is needed) and only
 * published once all of them exist, so a failure frees them and leaves the RAM exactly
 * as it was. Returns VMS_OK or VMS_ERR_NOMEM. The range must be in range and len > 0.
 */
static vms_status populate(vms_ram *ram, uint64_t pa, uint64_t len)
{
    uint64_t first = pa >> VMS_PAGE_SHIFT, last = (pa + len - 1) >> VMS_PAGE_SHIFT;
    uint8_t *pending = NULL; /* newest first; link in bytes 0..7 */
    uint64_t pfn;
    for (pfn = first; pfn <= last; pfn++) {
        if (frame_get(ram, pfn))
            continue;
        uint8_t *p = leaf_get(ram, pfn) ? vmsi_zalloc(ram->a, VMS_PAGE_SIZE) : NULL;
        if (!p)
            goto fail;
        memcpy(p, &pending, sizeof pending);
        pending = p;
    }
    /* Publish, walking the range backwards so the newest pending page comes first. */
    for (pfn = last + 1; pfn-- > first;) {
        leaf *l = leaf_of(ram, pfn);
        uint8_t **fp = &l->frame[pfn & (LEAF_FRAMES - 1)];
        if (*fp)
            continue;
        uint8_t *p = pending;
        memcpy(&pending, p, sizeof pending);
        memset(p, 0, 8); /* clear the link */
        *fp = p;
        l->nresident++;
        ram->resident++;
    }
    assert(pending == NULL);
    return VMS_OK;
fail:
    while (pending) {
        uint8_t *p = pending;
        memcpy(&pending, p, sizeof pending);
        vmsi_free(ram->a, p, VMS_PAGE_SIZE);
    }
    for (uint64_t q = first; q <= pfn; q += LEAF_FRAMES - (q & (LEAF_FRAMES - 1)))
        leaf_put_if_empty(ram, q);
    return VMS_ERR_NOMEM;
}

vms_status vms_ram_read(vms_ram *ram, uint64_t pa, void *buf, size_t len)
{
    if (!in_range(ram, pa, len))
        return VMS_ERR_RANGE;
    uint8_t *dst = buf;
    while (len) {
        uint64_t off = pa & VMS_PAGE_MASK;
        size_t n = (size_t)(VMS_PAGE_SIZE - off) < len ? (size_t)(VMS_PAGE_SIZE - off) : len;
        const uint8_t *f = frame_get(ram, pa >> VMS_PAGE_SHIFT);
        if (f)
            memcpy(dst, f + off, n);
        else
            memset(dst, 0, n);
        dst += n;
        pa += n;
        len -= n;
    }
    return VMS_OK;
}

vms_status vms_ram_write(vms_ram *ram, uint64_t pa, const void *buf, size_t len)
{
    if (!in_range(ram, pa, len))
        return VMS_ERR_RANGE;
    if (len == 0)
        return VMS_OK;
    vms_status st = populate(ram, pa, len);
    if (st != VMS_OK)
        return st;
    const uint8_t *src = buf;
    while (len) {
        uint64_t off = pa & VMS_PAGE_MASK;
        size_t n = (size_t)(VMS_PAGE_SIZE - off) < len ? (size_t)(VMS_PAGE_SIZE - off) : len;
        memcpy(frame_get(ram, pa >> VMS_PAGE_SHIFT) + off, src, n);
        src += n;
        pa += n;
        len -= n;
    }
    return VMS_OK;
}

/* Fill with zeros: whole frames are discarded, partial ones cleared if resident. */
static void fill_zero(vms_ram *ram, uint64_t pa, size_t len)
{
    while (len) {
        uint64_t off = pa & VMS_PAGE_MASK;
        size_t n = (size_t)(VMS_PAGE_SIZE - off) < len ? (size_t)(VMS_PAGE_SIZE - off) : len;
        uint8_t *f = frame_get(ram, pa >> VMS_PAGE_SHIFT);
        if (n == VMS_PAGE_SIZE)
            vms_ram_discard(ram, pa >> VMS_PAGE_SHIFT);
        else if (f)
            memset(f + off, 0, n);
        pa += n;
        len -= n;
    }
}

vms_status vms_ram_fill(vms_ram *ram, uint64_t pa, int c, size_t len)
{
    if (!in_range(ram, pa, len))
        return VMS_ERR_RANGE;
    if (len == 0)
        return VMS_OK;
    if ((uint8_t)c == 0) {
        fill_zero(ram, pa, len);
        return VMS_OK;
    }
    vms_status st = populate(ram, pa, len);
    if (st != VMS_OK)
        return st;
    while (len) {
        uint64_t off = pa & VMS_PAGE_MASK;
        size_t n = (size_t)(VMS_PAGE_SIZE - off) < len ? (size_t)(VMS_PAGE_SIZE - off) : len;
        memset(frame_get(ram, pa >> VMS_PAGE_SHIFT) + off, c, n);
        pa += n;
        len -= n;
    }
    return VMS_OK;
}

vms_status vms_ram_copy_frame(vms_ram *ram, uint64_t dst_pfn, uint64_t src_pfn)
{
    if (dst_pfn >= ram->nframes || src_pfn >= ram->nframes)
        return VMS_ERR_RANGE;
    if (dst_pfn == src_pfn)
        return VMS_OK;
    const uint8_t *src = frame_get(ram, src_pfn);
    if (!src) { /* a zero frame copies as a discard: no host memory for zeros */
        vms_ram_discard(ram, dst_pfn);
        return VMS_OK;
    }
    uint8_t *dst = vms_ram_frame(ram, dst_pfn, true);
    if (!dst)
        return VMS_ERR_NOMEM;
    memcpy(dst, src, VMS_PAGE_SIZE);
    return VMS_OK;
}

/*
 * Scalar accessors: one frame lookup when the value does not cross a frame boundary,
 * the block path otherwise. x86 allows unaligned scalars; so do these.
 */
#define RAM_SCALAR(bits)                                                                           \
    vms_status vms_ram_read##bits(vms_ram *ram, uint64_t pa, uint##bits##_t *val)                  \
    {                                                                                              \
        uint64_t off = pa & VMS_PAGE_MASK;                                                         \
        if (off <= VMS_PAGE_SIZE - sizeof *val && pa < ram->limit) {                               \
            const uint8_t *f = frame_get(ram, pa >> VMS_PAGE_SHIFT);                               \
            if (f)                                                                                 \
                memcpy(val, f + off, sizeof *val);                                                 \
            else                                                                                   \
                *val = 0;                                                                          \
            return VMS_OK;                                                                         \
        }                                                                                          \
        uint##bits##_t v;                                                                          \
        vms_status st = vms_ram_read(ram, pa, &v, sizeof v);                                       \
        if (st == VMS_OK)                                                                          \
            *val = v;                                                                              \
        return st;                                                                                 \
    }                                                                                              \
    vms_status vms_ram_write##bits(vms_ram *ram, uint64_t pa, uint##bits##_t val)                  \
    {                                                                                              \
        uint64_t off = pa & VMS_PAGE_MASK;                                                         \
        if (off <= VMS_PAGE_SIZE - sizeof val && pa < ram->limit) {                                \
            uint8_t *f = vms_ram_frame(ram, pa >> VMS_PAGE_SHIFT, true);                           \
            if (!f)                                                                                \
                return VMS_ERR_NOMEM;                                                              \
            memcpy(f + off, &val, sizeof val);                                                     \
            return VMS_OK;                                                                         \
        }                                                                                          \
        return vms_ram_write(ram, pa, &val, sizeof val);                                           \
    }

RAM_SCALAR(8)
RAM_SCALAR(16)
RAM_SCALAR(32)
RAM_SCALAR(64)
