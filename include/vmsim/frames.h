/*
 * vmsim/frames.h — the kernel's physical frame allocator: a binary buddy allocator over
 * 4 KiB frames, orders 0 … 18 (order 9 = 2 MiB, order 18 = 1 GiB), with per-frame
 * metadata (Linux's struct page, much reduced).
 *
 * RAM is a list of ranges of frames with holes between them (the PC layout: RAM below
 * 3 GiB, a device window, RAM again from 4 GiB). A block of order k is 2^k frames,
 * naturally aligned (its first pfn is a multiple of 2^k) and wholly inside one range.
 * Free blocks are kept coalesced: two free buddies of order k < 18 never coexist, they
 * are one free block of order k + 1 (Knuth, TAOCP vol. 1 §2.5; Linux mm/page_alloc.c).
 *
 * Deterministic placement. With the default fit (VMS_FRAMES_FIT_BUDDY) an allocation of
 * order k takes the lowest-addressed free block of order k; if there is none, the
 * lowest-addressed free block of the smallest larger order that has one, split down,
 * keeping the low half each time. From a fresh allocator (nothing reserved) order-0
 * allocations therefore return pfn 0, 1, 2, … in order. VMS_FRAMES_FIT_LOWEST instead
 * takes the lowest-addressed free block of any order >= k (a "first free frame"
 * textbook allocator: after frees, order 0 always returns the lowest free frame).
 *
 * Mobility grouping (off unless vms_frames_config.mobility; Linux's migratetypes,
 * mm/page_alloc.c, v6.12). RAM is cut into pageblocks of 2 MiB (order 9, Linux's
 * pageblock_order on x86-64), each of one type: unmovable, movable or reclaimable, all
 * movable at creation. A free block belongs to the type of its pageblock(s). An
 * allocation names a type (vms_frames_alloc_mt) and takes, as above, the lowest-addressed
 * free block of the smallest order that has one of that type (__rmqueue_smallest). When
 * its type has none it falls back (__rmqueue_fallback): it takes the largest free block
 * of the types in Linux's fallbacks[] order (unmovable: reclaimable, movable; movable:
 * reclaimable, unmovable; reclaimable: unmovable, movable), lowest-addressed; a movable
 * request that may not steal whole pageblocks (the block is below order 4 —
 * can_steal_fallback) takes the smallest such block instead. A block of order >= 9 is
 * claimed whole (every pageblock of it changes type); a smaller one from a request that
 * may steal claims its pageblock when the pageblock's free frames plus its frames
 * "alike" the request (movable request: the anonymous and file pages there; other
 * requests from a movable pageblock: the frames that are neither) reach half of it
 * (steal_suitable_fallback); otherwise only the block is taken and the pageblock keeps
 * its type. Linux's free lists stop at order 10 (4 MiB): a larger free block is split
 * down to order 10 before a fallback takes it, and free buddies of order >= 10 of
 * different types are not merged, so a steal claims at most two pageblocks, as in Linux.
 * Freeing merges buddies of order 9 across types, the buddy's pageblock taking the freed
 * block's type (__free_one_page). Off, every block is movable and nothing above applies:
 * allocation is exactly the plain buddy allocator.
 *
 * Host memory. Creating the allocator costs bitmaps of about 1.4 bytes per 2 MiB of
 * physical address space (6 KiB for the 4 GiB PC layout, 0.7 MiB for 1 TiB). Per-frame metadata
 * lives in 2 MiB chunks (512 frames × 32 bytes) allocated on first use inside the chunk: an
 * allocation or reservation there, or a free block smaller than 2 MiB at an unaligned
 * range edge. Chunks are kept until vms_frames_destroy, so host memory tracks the peak
 * number of 2 MiB regions ever used, not the size of RAM; freeing never allocates and
 * never fails for lack of host memory.
 */
#ifndef VMSIM_FRAMES_H
#define VMSIM_FRAMES_H

#include "vmsim/common.h"
#include "vmsim/strbuf.h"

typedef struct vms_frames vms_frames;

#define VMS_FRAMES_MAX_ORDER 18u /* 2^18 frames = 1 GiB */
#define VMS_FRAMES_NORDERS   19u
#define VMS_FRAMES_ORDER_2M  9u
#define VMS_FRAMES_ORDER_1G  18u
#define VMS_FRAMES_MAX_PFN   (UINT64_C(1) << 34) /* exclusive: 64 TiB, MAXPHYADDR 46 */

/*
 * Frame flags. Allocator-owned bits (ALLOC, HEAD, RESERVED, PINNED) change only as a
 * side effect of alloc/free/reserve/pin; the others only through vms_frames_set_flags,
 * which keeps the per-flag counts. Flags describe a whole block (a folio): they are
 * kept in the head frame, and a block with a flag counts 2^order frames toward it.
 * Bits 11 … 15 and 17 … 31 are free for later use (LRU lists, active, referenced, writeback, …).
 */
enum {
    VMS_FRAME_ALLOC = 1u << 0,      /* in an allocated block (set on every frame of it) */
    VMS_FRAME_HEAD = 1u << 1,       /* first frame of an allocated block */
    VMS_FRAME_RESERVED = 1u << 2,   /* reserved (firmware, frame 0): never allocated */
    VMS_FRAME_PINNED = 1u << 3,     /* pincount > 0 (DMA, get_user_pages FOLL_PIN) */
    VMS_FRAME_PAGETABLE = 1u << 4,  /* holds a page table (meminfo PageTables) */
    VMS_FRAME_ZERO = 1u << 5,       /* the shared zero page */
    VMS_FRAME_DIRTY = 1u << 6,      /* contents differ from the backing store */
    VMS_FRAME_LOCKED = 1u << 7,     /* mlocked: reclaim must not evict it */
    VMS_FRAME_ANON = 1u << 8,       /* anonymous memory (owner is an anon rmap) */
    VMS_FRAME_SWAPBACKED = 1u << 9, /* backed by swap (anon, shmem) */
    VMS_FRAME_FILE = 1u << 10,      /* page-cache page of a file (owner is the file) */
    VMS_FRAME_KERNEL = 1u << 16,    /* kernel buffer (a DMA ring): no PTE, not in the rmap */
};
#define VMS_FRAME_NFLAGS 32u
#define VMS_FRAME_OWNED_FLAGS                                                                      \
    (VMS_FRAME_ALLOC | VMS_FRAME_HEAD | VMS_FRAME_RESERVED | VMS_FRAME_PINNED)

/*
 * Per-frame metadata, 32 bytes. refcount and pincount are meaningful in the head frame
 * and change only through get/put/pin/unpin. mapcount (page-table entries mapping this
 * frame) and owner (the reverse map's handle: anon_vma, file, …) belong to the kernel,
 * which writes them directly; the allocator only requires every mapcount of a block to
 * be 0 when the block is freed, and zeroes all metadata of a freed block. The kernel keeps
 * a page mapped once by one address space wholly in here: owner names the address space
 * (tagged) and spare holds the address, so such a page costs no host allocation.
 */
typedef struct vms_frame {
    uintptr_t owner;   /* opaque word for the reverse map; 0 when unused */
    uint32_t flags;    /* VMS_FRAME_* */
    uint32_t refcount; /* head: references; alloc returns 1, put to 0 frees */
    uint32_t mapcount; /* PTEs mapping this frame (kernel-maintained) */
    uint32_t pincount; /* head: long-term pins (each also holds a reference) */
    uint8_t order;     /* head: order of the block */
    uint8_t spare[7];  /* the kernel's: a single mapping's address (its reverse map) */
} vms_frame;

/* A range of RAM: npages frames from base_pfn. */
typedef struct vms_frames_range {
    uint64_t base_pfn;
    uint64_t npages;
} vms_frames_range;

typedef enum vms_frames_fit {
    VMS_FRAMES_FIT_BUDDY = 0, /* smallest order first, lowest address within it (Linux) */
    VMS_FRAMES_FIT_LOWEST = 1 /* lowest address among blocks of order >= the request */
} vms_frames_fit;

typedef struct vms_frames_config {
    const vms_frames_range *ranges; /* any order; must not overlap; adjacent ones merge */
    size_t nranges;                 /* >= 1 */
    vms_frames_fit fit;
    bool mobility; /* group pageblocks by mobility (migratetypes); false: one free set */
} vms_frames_config;

/* The mobility type of a pageblock and of an allocation (Linux's enum migratetype, in
 * its order; HighAtomic, CMA and Isolate are not modelled). */
typedef enum vms_migratetype {
    VMS_MT_UNMOVABLE = 0,   /* page tables, kernel memory (GFP_KERNEL) */
    VMS_MT_MOVABLE = 1,     /* anonymous and page-cache pages (__GFP_MOVABLE) */
    VMS_MT_RECLAIMABLE = 2, /* reclaimable kernel memory (__GFP_RECLAIMABLE: slab caches) */
} vms_migratetype;
#define VMS_MT_NTYPES              3u
#define VMS_FRAMES_PAGEBLOCK_ORDER 9u /* pageblock_order: 512 frames, 2 MiB */

typedef struct vms_frames_stats {
    uint64_t total;                           /* RAM frames */
    uint64_t free;                            /* frames in free blocks */
    uint64_t used;                            /* frames in allocated blocks */
    uint64_t reserved;                        /* reserved frames; total = free + used + reserved */
    uint64_t free_blocks[VMS_FRAMES_NORDERS]; /* free blocks per order (all ranges) */
    uint64_t meta_chunks;                     /* 2 MiB metadata chunks allocated */
    uint64_t host_bytes;                      /* host memory held by the allocator */
    uint64_t mt_fallback; /* allocations served from another type's free block (Linux's
                             mm_page_alloc_extfrag events); 0 with mobility off */
    uint64_t mt_claimed;  /* pageblocks a fallback claimed for the request's type */
} vms_frames_stats;

/*
 * The PC layout for ram_bytes of RAM (a non-zero multiple of 4 KiB): up to 3 GiB from
 * pfn 0, the rest from 4 GiB (a 1 GiB device window between). Fills out[0..1] and
 * returns the number of ranges (1 or 2); 0 if ram_bytes is invalid.
 */
size_t vms_frames_layout_pc(uint64_t ram_bytes, vms_frames_range out[2]);

/*
 * Create an allocator over cfg's RAM, every frame free. a (NULL = default) is borrowed
 * for the allocator's lifetime; cfg is copied. VMS_ERR_INVAL for no ranges, an empty or
 * overlapping range, a range beyond VMS_FRAMES_MAX_PFN or an unknown fit;
 * VMS_ERR_NOMEM if the host allocator fails (nothing is leaked).
 */
vms_status vms_frames_create(const vms_allocator *a, const vms_frames_config *cfg, vms_frames **out,
                             vms_err *err);

/* Free the allocator and all its metadata. NULL is accepted. */
void vms_frames_destroy(vms_frames *fr);

/* The RAM ranges, sorted by base and merged where adjacent; *n gets their number. */
const vms_frames_range *vms_frames_ranges(const vms_frames *fr, size_t *n);

/* Whether pfn is a RAM frame. */
bool vms_frames_is_ram(const vms_frames *fr, uint64_t pfn);

/*
 * Allocate a block of 2^order frames (placement: see the top of this file) and store
 * its first pfn in *pfn. The head gets flags ALLOC|HEAD, refcount 1, the given order;
 * every other field of every frame of the block is 0. Returns VMS_ERR_INVAL for
 * order > VMS_FRAMES_MAX_ORDER; VMS_ERR_NOTFOUND when no free block is large enough (a
 * simulated out-of-memory for reclaim to handle, not a host failure); VMS_ERR_NOMEM if
 * metadata for the block could not be allocated (the free state is unchanged).
 */
vms_status vms_frames_alloc(vms_frames *fr, unsigned order, uint64_t *pfn, vms_err *err);

/*
 * vms_frames_alloc for an allocation of mobility type mt (a movable one is
 * vms_frames_alloc): with mobility grouping on, from mt's free blocks, else by the
 * fallback rules at the top of this file; off, mt is ignored. VMS_ERR_INVAL also for an
 * unknown mt.
 */
vms_status vms_frames_alloc_mt(vms_frames *fr, unsigned order, vms_migratetype mt, uint64_t *pfn,
                               vms_err *err);

/* Whether the allocator groups by mobility (vms_frames_config.mobility). */
bool vms_frames_mobility(const vms_frames *fr);

/* The type of the pageblock holding pfn (VMS_MT_MOVABLE for any pfn when grouping is
 * off, or for a pfn that is not RAM). */
vms_migratetype vms_frames_pageblock_type(const vms_frames *fr, uint64_t pfn);

/* Whether pfn is a RAM frame in a free block: true with that block's first pfn in *base
 * and its order in *order (either may be NULL). */
bool vms_frames_free_block(const vms_frames *fr, uint64_t pfn, uint64_t *base, unsigned *order);

/*
 * Allocate the free frame pfn itself as an order-0 block (Linux's isolate_freepages:
 * compaction's free scanner takes free pages where it finds them): the free block that
 * holds it is split, its other parts stay free. Refcount 1, as vms_frames_alloc. With
 * mobility grouping, a free block of order >= 8 (half a pageblock) taken from makes its
 * pageblock(s) movable first (Linux's __isolate_free_page).
 * VMS_ERR_INVAL (no change) when pfn is not a free RAM frame; VMS_ERR_NOMEM if metadata
 * could not be allocated (no change).
 */
vms_status vms_frames_alloc_at(vms_frames *fr, uint64_t pfn, vms_err *err);

/* Whether pfn is a RAM frame in a free block. */
bool vms_frames_is_free(const vms_frames *fr, uint64_t pfn);

/*
 * Free the allocated block of 2^order frames whose head is pfn, coalescing it with
 * free buddies. The block must hold only the allocator's reference: refcount 1,
 * pincount 0, every mapcount 0. VMS_ERR_INVAL (and no change) for a pfn that is not RAM
 * or not the head of an allocated block, a wrong order, or a block still in use.
 */
vms_status vms_frames_free(vms_frames *fr, uint64_t pfn, unsigned order, vms_err *err);

/*
 * Split the allocated block headed by pfn (order k > 0, no pins) into 2^k allocated
 * order-0 blocks (Linux split_page / split_huge_page's __split_folio_to_order): every
 * frame becomes a head with the block's flags (the per-flag counts do not change) and
 * order 0; the old head keeps its refcount, mapcount and owner, each new head gets
 * refcount `tail_refs` (>= 1) and keeps its own mapcount. VMS_ERR_INVAL (and no change)
 * for a pfn that is not the head of an allocated block, an order-0 block, a pinned
 * block or tail_refs 0.
 */
vms_status vms_frames_split(vms_frames *fr, uint64_t pfn, uint32_t tail_refs, vms_err *err);

/*
 * Reserve npages frames from pfn (frame 0, firmware, a crash kernel …): they leave the
 * free pool, get flag RESERVED and are never allocated. Every frame must be free RAM in
 * one range; otherwise VMS_ERR_INVAL and no change. VMS_ERR_NOMEM if metadata could
 * not be allocated (no change to the free state).
 */
vms_status vms_frames_reserve(vms_frames *fr, uint64_t pfn, uint64_t npages, vms_err *err);

/*
 * Give reserved frames back to the free pool (Linux's free_reserved_area). Every frame
 * of [pfn, pfn + npages) must be reserved; otherwise VMS_ERR_INVAL and no change.
 */
vms_status vms_frames_unreserve(vms_frames *fr, uint64_t pfn, uint64_t npages, vms_err *err);

/*
 * The metadata of frame pfn, or NULL if pfn is not RAM or its 2 MiB chunk has no
 * metadata yet (then every frame of that chunk is free and all its fields are 0). Never
 * NULL for a frame of an allocated block or a reserved frame. The pointer stays valid
 * until vms_frames_destroy.
 */
vms_frame *vms_frames_meta(vms_frames *fr, uint64_t pfn);

/*
 * The head pfn of the allocated block holding frame pfn (pfn itself for a head), in
 * *head, and its order in *order (either may be NULL). VMS_ERR_INVAL if pfn is not in
 * an allocated block.
 */
vms_status vms_frames_head(const vms_frames *fr, uint64_t pfn, uint64_t *head, unsigned *order);

/*
 * Reference counting on the block holding pfn (any frame of it; the count lives in the
 * head). get adds a reference. put drops one; when it drops the last, the block is
 * freed exactly as vms_frames_free would (coalescing) and *freed (if not NULL) is set
 * to true, else to false. Dropping the last reference of a block with a pin or a
 * non-zero mapcount is a caller bug: VMS_ERR_INVAL and no change. VMS_ERR_INVAL if pfn
 * is not in an allocated block or the count would overflow.
 */
vms_status vms_frames_get(vms_frames *fr, uint64_t pfn);
vms_status vms_frames_put(vms_frames *fr, uint64_t pfn, bool *freed);

/*
 * Long-term pins (FOLL_PIN): pin adds a reference and a pin and sets PINNED; unpin
 * drops both (clearing PINNED at pincount 0) and frees the block if that was the last
 * reference (*freed as for put). VMS_ERR_INVAL if pfn is not allocated or, for unpin,
 * not pinned.
 */
vms_status vms_frames_pin(vms_frames *fr, uint64_t pfn);
vms_status vms_frames_unpin(vms_frames *fr, uint64_t pfn, bool *freed);

/*
 * Change the flags of the block holding pfn: flags = (flags & ~clear) | set, keeping the
 * per-flag counts. VMS_ERR_INVAL if pfn is not in an allocated block or set|clear
 * touches an allocator-owned bit (VMS_FRAME_OWNED_FLAGS).
 */
vms_status vms_frames_set_flags(vms_frames *fr, uint64_t pfn, uint32_t set, uint32_t clear);

/* Frames in blocks carrying flag (a single VMS_FRAME_* bit; 0 for anything else).
 * E.g. VMS_FRAME_PAGETABLE gives meminfo's PageTables in pages. */
uint64_t vms_frames_count(const vms_frames *fr, uint32_t flag);

/* Frames currently free. */
uint64_t vms_frames_nfree(const vms_frames *fr);

/* Fill *st with the allocator's counts. */
void vms_frames_stats_get(const vms_frames *fr, vms_frames_stats *st);

/*
 * Append /proc/buddyinfo-style lines, one per RAM range i (in vms_frames_ranges
 * order), named "ram<i>" in the zone column, with free block counts for orders 0 … 18:
 *   "Node 0, zone %8s " then "%6llu " per order, then "\n"
 * (Linux's mm/vmstat.c frag_show_print format, 19 columns instead of 11). E.g.
 *   Node 0, zone     ram0      0      1      1 …      2
 * Returns VMS_ERR_NOMEM if the buffer could not grow.
 */
vms_status vms_frames_buddyinfo(const vms_frames *fr, vms_strbuf *sb);

/*
 * Append a /proc/pagetypeinfo-style view (Linux mm/vmstat.c pagetypeinfo_show): the
 * pageblock order and size, free blocks per order for each range and type
 *   "Node %4d, zone %8s, type %12s " then "%6llu " per order 0 … 18, then "\n"
 * and the number of pageblocks of each type per range ("Node 0, zone %8s " then "%12llu "
 * per type). Only the three modelled types are shown (Linux also prints HighAtomic, CMA
 * and Isolate). With grouping off every block is movable. VMS_ERR_NOMEM if the buffer
 * could not grow.
 */
vms_status vms_frames_pagetypeinfo(const vms_frames *fr, vms_strbuf *sb);

/* The number of pageblocks of each type (counts[VMS_MT_NTYPES]); a pageblock counts
 * once even when two RAM ranges share it. */
void vms_frames_pageblocks(const vms_frames *fr, uint64_t counts[VMS_MT_NTYPES]);

/*
 * Mel Gorman's unusable free space index for an allocation of order (Gorman & Whitcroft,
 * "The What, The Why and the Where To of Anti-Fragmentation", OLS 2006; Linux
 * mm/vmstat.c unusable_free_index, /sys/kernel/debug/extfrag/unusable_index): the
 * fraction of free memory in blocks smaller than 2^order, over all ranges,
 *   Fu(j) = (free − Σ_{i>=j} 2^i · k_i) / free,   k_i = free blocks of order i,
 * in thousandths (0 … 1000), rounded down. No free memory gives 1000; so does any
 * order above VMS_FRAMES_MAX_ORDER (no block can satisfy it).
 */
unsigned vms_frames_unusable_index(const vms_frames *fr, unsigned order);

/*
 * Gorman's fragmentation (extfrag) index for order (Linux mm/vmstat.c
 * __fragmentation_index), in thousandths: -1000 if an allocation of that order would
 * succeed; otherwise near 0 when it fails for lack of memory, near 1000 when it fails
 * from fragmentation: 1000 − (1000 + 1000·free / 2^order) / free_blocks (integer
 * divisions, as Linux; it can fall below 0 when very few blocks are free). 0 when
 * nothing is free.
 */
int vms_frames_extfrag_index(const vms_frames *fr, unsigned order);

/*
 * Check every invariant: free blocks aligned, inside one range, disjoint and coalesced;
 * the bitmaps, their summaries and the counts agree; every non-free RAM frame is
 * reserved or in exactly one allocated block whose head carries its order; free
 * frames' metadata is zero; per-flag counts match a recount. Costs a walk over all
 * blocks and all metadata: for tests. VMS_OK, or VMS_ERR_INVAL naming the first
 * violation in err.
 */
vms_status vms_frames_check(const vms_frames *fr, vms_err *err);

#endif
