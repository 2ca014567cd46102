/*
 * vmsim/pt.h — building and editing page tables in simulated RAM, in any radix format
 * (format.h; x86-64 unless a tree is made with vms_pt_init_format).
 *
 * What a kernel does with its page tables, done the way a kernel does it: by reading and
 * writing entries in physical memory through the bus. Table pages come from the
 * caller (alloc_table must return the physical address of a zeroed 4 KiB frame), so a
 * kernel accounts them as its own. These helpers never touch a TLB: after changing a
 * present entry the caller must invalidate (INVLPG, INVPCID or a CR3 load), exactly as
 * on real hardware; until then the old translation may still be used.
 *
 * Intermediate entries are the format's table entries (x86-64: P|RW|US, rights then
 * decided by the leaf, as Linux does).
 */
#ifndef VMSIM_PT_H
#define VMSIM_PT_H

#include "vmsim/bus.h"
#include "vmsim/format.h"
#include "vmsim/pte.h"

typedef struct vms_pt_ops {
    /* Return a zeroed 4 KiB RAM frame's physical address in *pa, or an error. */
    vms_status (*alloc_table)(void *ud, uint64_t *pa);
    /* Give back a table frame that became unused. */
    void (*free_table)(void *ud, uint64_t pa);
    void *ud;
} vms_pt_ops;

/* A page-table tree: where it lives and how to get table pages. Plain value; borrowed. */
typedef struct vms_pt {
    vms_bus *bus;
    const vms_pt_format *fmt; /* the entries' format (static, borrowed) */
    unsigned levels;          /* fmt->levels: 4 or 5 for x86-64 */
    uint64_t root;            /* physical address of the root table (PML4, PML5, …) */
    vms_pt_ops ops;
} vms_pt;

/* Allocate an empty x86-64 root table through ops and fill pt (levels must be 4 or 5). */
vms_status vms_pt_init(vms_pt *pt, vms_bus *bus, unsigned levels, const vms_pt_ops *ops,
                       vms_err *err);

/* The same for a tree of format fmt (format.h). */
vms_status vms_pt_init_format(vms_pt *pt, vms_bus *bus, const vms_pt_format *fmt,
                              const vms_pt_ops *ops, vms_err *err);

/*
 * Map the page of size `size` at va to physical address pa with leaf flags `flags` in
 * the format's own bits (the format adds its present and leaf markers: on x86-64 P, and
 * PS for 2M/1G). va and pa must be aligned to the size, the size one the format has, and va
 * canonical (VMS_ERR_INVAL). Creates missing tables. Fails with VMS_ERR_EXISTS, changing
 * nothing, when a present leaf (of any size) already covers any part of the page, or
 * when a large page would replace a table. On VMS_ERR_NOMEM tables created so far stay
 * (empty), as in a real kernel; vms_pt_destroy frees them.
 */
vms_status vms_pt_map(vms_pt *pt, uint64_t va, uint64_t pa, vms_pgsize size, uint64_t flags,
                      vms_err *err);

/* The same with format-neutral rights (VMS_PGPROT_*, format.h), encoded by the format:
 * the way to build a mapping that means the same on every architecture. */
vms_status vms_pt_map_prot(vms_pt *pt, uint64_t va, uint64_t pa, vms_pgsize size, unsigned prot,
                           vms_err *err);

/*
 * Read the leaf that maps va without touching A/D bits or any counter (the kernel's
 * software walk). Returns true when a present leaf maps va: *pte is the entry, *ptep its
 * physical address and *size the page size. When no leaf maps va, returns false and, if
 * the walk reached a not-present entry, *ptep, *pte and *size describe it (size is that
 * level's page size; *ptep is 0 when a table on the way is missing). NULL outs are allowed.
 * Precisely: a not-present PTE gives its address in *ptep; a not-present entry at PD level
 * or above means the table below it is missing, so *ptep is 0, *pte is that entry and
 * *size its level's page size (1G for PML4/PML5). A non-canonical va, or a table that
 * cannot be read, gives 0, 0 and 4K.
 */
bool vms_pt_lookup(const vms_pt *pt, uint64_t va, uint64_t *pte, uint64_t *ptep, vms_pgsize *size);

/*
 * Physical address of the entry for va at `level` (1 … pt->levels), allocating missing
 * tables above it when create is true. Fails with VMS_ERR_EXISTS if a large leaf sits
 * above that level, VMS_ERR_NOTFOUND if a table is missing and create is false.
 */
vms_status vms_pt_entry_addr(vms_pt *pt, uint64_t va, unsigned level, bool create, uint64_t *ptep,
                             vms_err *err);

/* Read or write one entry at physical address ptep. */
vms_status vms_pt_read(const vms_pt *pt, uint64_t ptep, uint64_t *pte);
vms_status vms_pt_write(const vms_pt *pt, uint64_t ptep, uint64_t pte);
/* The entry at ptep read from RAM without a bus access (0 outside RAM): nothing counted
 * changes. For checks, assertions and displays, which must count nothing (a build with
 * assertions counts what one without does). */
uint64_t vms_pt_peek(const vms_pt *pt, uint64_t ptep);

/*
 * Clear the leaf mapping va (of whatever size). *old (may be NULL) receives the previous
 * entry. Returns VMS_ERR_NOTFOUND when nothing maps va. Tables that become empty are
 * freed when free_tables is true (their parent entries cleared first).
 */
vms_status vms_pt_unmap(vms_pt *pt, uint64_t va, bool free_tables, uint64_t *old);

/* Change the leaf mapping va: new = (old & ~clear) | set. VMS_ERR_NOTFOUND if none. */
vms_status vms_pt_protect(vms_pt *pt, uint64_t va, uint64_t set, uint64_t clear, uint64_t *old);

/* Called once per present leaf by vms_pt_foreach, in increasing va order. Return false
 * to stop early. */
typedef bool (*vms_pt_leaf_fn)(void *ud, uint64_t va, uint64_t ptep, uint64_t pte, vms_pgsize size);

/* Visit every present leaf whose page starts in [va_start, va_end). */
vms_status vms_pt_foreach(const vms_pt *pt, uint64_t va_start, uint64_t va_end, vms_pt_leaf_fn fn,
                          void *ud);

/* Number of table pages in the tree (root included). */
uint64_t vms_pt_count_tables(const vms_pt *pt);

/* Free every table page, root included, through ops (leaves' frames are the caller's). */
void vms_pt_destroy(vms_pt *pt);

/*
 * A bump allocator of table pages, for code that has no frame allocator (early boot in
 * Linux's memblock style, the explain command, examples, tests, benchmarks): hands out
 * zeroed 4 KiB frames from `next` upward and never reuses them. alloc fails with
 * VMS_ERR_NOMEM when next reaches `limit` (0: no limit) or the RAM cannot hold the
 * frame. Counts allocations and frees so tests can check table accounting.
 */
typedef struct vms_pt_bump {
    vms_ram *ram;
    uint64_t next, limit;
    uint64_t allocated, freed;
} vms_pt_bump;

/* Table ops that draw from b (borrowed: must outlive every vms_pt using them). */
vms_pt_ops vms_pt_bump_ops(vms_pt_bump *b);

#endif
