/*
 * mm_impl.h — the address-space district (src/os/mm): reverse maps, the fault handler,
 * the kernel's page-table helpers (pgtable.c), VMAs (vma.c), rmap (rmap.c), fork
 * (fork.c) and the mm system calls (mm.c). Included by the kernel files that map,
 * unmap or fault pages; nothing outside src/os includes it.
 */
#ifndef VMSIM_OS_MM_IMPL_H
#define VMSIM_OS_MM_IMPL_H

#include <stddef.h>
#include <string.h>

#include "os/os_impl.h"

/* One reverse-map entry: the PTE of mm at va maps the frame. */
typedef struct vmsi_rmap_ent {
    vmsi_mm *mm;
    uint64_t va;
} vmsi_rmap_ent;

/* The reverse map of one frame (block head), pointed to by vms_frame.owner. A record
 * lives while it has entries, names a cache page (file), or names a swap slot. */
typedef struct vmsi_rmap {
    vms_file *file; /* page-cache page: its object and index; NULL for anon */
    uint64_t index; /* the cache index, or the swap slot of a swap-cache page */
    bool swapcache; /* anon page in the swap cache: index is its slot */
    uint32_t n, cap;
    vmsi_rmap_ent *e;
} vmsi_rmap;

/*
 * vms_frame.owner of a block head (issue 11 item 4: no host allocation for the common
 * case, one anonymous page mapped once):
 *
 *   0                      no reverse map
 *   vmsi_rmap *            a record (bit 0 clear): file and swap-cache pages, several
 *                          mappings, or an address that does not fit below
 *   mm | VMSI_RMAP_INLINE  one mapping (mm, va) kept in the frame: va < 2^56 in the
 *                          7 bytes of vms_frame.spare, little-endian
 *
 * A record is made when a second mapping arrives (or a cache or swap slot needs one)
 * and stays until its last entry goes; code that needs the file, index or swap slot
 * uses vmsi_rmap_of (NULL for an inline mapping, which has none of them).
 */
#define VMSI_RMAP_INLINE ((uintptr_t)1)
#define VMSI_RMAP_VA_MAX (UINT64_C(1) << 56)

/* The record of frame metadata f, or NULL (none, or an inline mapping). */
static inline vmsi_rmap *vmsi_rmap_rec(const vms_frame *f)
{
    return (f->owner & VMSI_RMAP_INLINE) ? NULL : (vmsi_rmap *)f->owner;
}

/* How many mappings f's reverse map holds. */
static inline uint32_t vmsi_rmap_count(const vms_frame *f)
{
    if (!f->owner)
        return 0;
    return (f->owner & VMSI_RMAP_INLINE) ? 1 : ((const vmsi_rmap *)f->owner)->n;
}

/*
 * The 7 bytes of f->spare as a little-endian number, and setting them to the low 7
 * bytes of v. On a little-endian host the 8 bytes from `order` are order | spare << 8:
 * one load (and one store) instead of a loop over the bytes.
 */
_Static_assert(offsetof(vms_frame, spare) == offsetof(vms_frame, order) + 1 &&
                   sizeof(((vms_frame *)0)->spare) == 7,
               "spare is the 7 bytes after order");
static inline uint64_t vmsi_spare_get(const vms_frame *f)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t w;
    memcpy(&w, &f->order, sizeof w);
    return w >> 8;
#else
    uint64_t v = 0;
    for (unsigned b = 0; b < 7; b++)
        v |= (uint64_t)f->spare[b] << (8 * b);
    return v;
#endif
}

static inline void vmsi_spare_set(vms_frame *f, uint64_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t w = (uint64_t)f->order | v << 8;
    memcpy(&f->order, &w, sizeof w);
#else
    for (unsigned b = 0; b < 7; b++)
        f->spare[b] = (uint8_t)(v >> (8 * b));
#endif
}

/* Mapping i (< vmsi_rmap_count) of f. */
static inline vmsi_rmap_ent vmsi_rmap_get(const vms_frame *f, uint32_t i)
{
    if (!(f->owner & VMSI_RMAP_INLINE))
        return ((const vmsi_rmap *)f->owner)->e[i];
    return (vmsi_rmap_ent){(vmsi_mm *)(f->owner & ~VMSI_RMAP_INLINE), vmsi_spare_get(f)};
}

/* Copy f's reverse map (record pointer or inline mapping) to t, and clear f's. */
static inline void vmsi_rmap_move(vms_frame *t, vms_frame *f)
{
    t->owner = f->owner;
    memcpy(t->spare, f->spare, sizeof t->spare);
    f->owner = 0;
    memset(f->spare, 0, sizeof f->spare);
}

/*
 * A transparent huge page some of whose mappings are PTEs: a PTE-mapped THP (Linux's
 * folio fields in its tail pages: the per-page _mapcount, _entire_mapcount,
 * _nr_pages_mapped, _deferred_list). Made when a PMD mapping the page is first split
 * (thp.c), freed when the page is split or freed; the owner word of the page's second
 * frame points to it (tail frames have no reverse map of their own). The head frame
 * keeps the folio's counts: one reverse-map entry per mapping, PMD (mm, haddr) or PTE
 * (mm, va of the subpage), head mapcount = entire + the sum of map[], one reference
 * each. Invariants (vmsi_rmap_check): map[i] = the PTEs mapping subpage i (at
 * haddr + i * 4 KiB of their mm), nr_mapped = the subpages with map[i] > 0; a page is
 * on the deferred split queue exactly when it is partially mapped (entire == 0 and
 * 0 < nr_mapped < 512).
 */
typedef struct vmsi_thp_folio {
    uint64_t head;                      /* the head frame */
    uint32_t entire;                    /* PMD mappings */
    uint32_t nr_mapped;                 /* subpages some PTE maps */
    bool queued;                        /* on the deferred split queue (k->split_queue) */
    struct vmsi_thp_folio *prev, *next; /* its neighbours there */
    uint32_t map[512];                  /* PTE mappings of each subpage */
} vmsi_thp_folio;

/* The PTE-mapped state of the THP headed by pfn, or NULL (only PMDs map it). */
static inline vmsi_thp_folio *vmsi_thp_folio_of(vms_kernel *k, uint64_t head)
{
    vms_frame *t = vms_frames_meta(k->fr, head + 1);
    return (vmsi_thp_folio *)t->owner;
}

/* The head of the block holding frame pfn: pfn itself for the head of a block (an
 * order-0 page, a huge page mapped whole), else the THP whose subpage pfn is. */
static inline uint64_t vmsi_folio_head(vms_kernel *k, uint64_t pfn)
{
    vms_frame *f = vms_frames_meta(k->fr, pfn);
    uint64_t head = pfn;
    if (f && (f->flags & (VMS_FRAME_ALLOC | VMS_FRAME_HEAD)) == VMS_FRAME_ALLOC)
        vms_frames_head(k->fr, pfn, &head, NULL);
    return head;
}

/* vmsi_folio_head, with the head's metadata in *hf (vms_frames_meta of the head: pfn's
 * own when pfn is not a tail, so the common case looks it up once). */
static inline uint64_t vmsi_folio_head_meta(vms_kernel *k, uint64_t pfn, vms_frame **hf)
{
    vms_frame *f = vms_frames_meta(k->fr, pfn);
    uint64_t head = pfn;
    if (f && (f->flags & (VMS_FRAME_ALLOC | VMS_FRAME_HEAD)) == VMS_FRAME_ALLOC) {
        vms_frames_head(k->fr, pfn, &head, NULL);
        f = vms_frames_meta(k->fr, head);
    }
    *hf = f;
    return head;
}

/* Outcome of the fault handler. */
typedef enum vmsi_fault_ret {
    VMSI_FAULT_DONE = 0, /* resolved (or spurious): retry the access */
    VMSI_FAULT_SEGV,
    VMSI_FAULT_BUS,
    VMSI_FAULT_OOM,   /* no simulated frame */
    VMSI_FAULT_NOMEM, /* host allocation failed */
    VMSI_FAULT_PANIC, /* the PTE was not the kernel's (vmsi_panic ran): stop */
} vmsi_fault_ret;

typedef struct vmsi_fault_info {
    int si_code;
    bool major;
} vmsi_fault_info;

/* ---- pgtable.c: the kernel's page-table helpers (Linux pgtable) ---- */
vms_status vmsi_mm_alloc_pgd(vms_kernel *k, vmsi_mm *mm, vms_err *err);
void vmsi_mm_free_pgd(vmsi_mm *mm);
/* Physical address of the leaf slot for va at the VMA's page size, creating tables when
 * create; 0 when a table is missing (and !create). */
vms_status vmsi_pte_slot(vmsi_mm *mm, uint64_t va, vms_pgsize size, bool create, uint64_t *ptep,
                         vms_err *err);
uint64_t vmsi_pte_get(vmsi_mm *mm, uint64_t ptep);
void vmsi_pte_set(vmsi_mm *mm, uint64_t ptep, uint64_t pte);
/* Visit every leaf slot holding a non-zero entry in [start, end) (4K or huge). */
typedef void (*vmsi_pte_fn)(vmsi_mm *mm, uint64_t va, uint64_t ptep, uint64_t pte, vms_pgsize size,
                            void *ud);
void vmsi_pte_range(vmsi_mm *mm, uint64_t start, uint64_t end, vmsi_pte_fn fn, void *ud);
/* Free page tables left empty inside [start, end) (never the root or kernel half). */
void vmsi_free_pgtables(vmsi_mm *mm, uint64_t start, uint64_t end);
/* The leaf mapping frame pfn with vma's rights (write only when `writable`), at the
 * VMA's page size: the format's PROT_NONE entry for a PROT_NONE VMA. */
uint64_t vmsi_vma_mk_pte(const vms_kernel *k, const vmsi_vma *vma, uint64_t pfn, bool writable);
vms_pgsize vmsi_vma_pgsize(const vmsi_vma *vma);
/* The same at an explicit page size (a transparent huge page in a 4 KiB VMA, or the
 * 4 KiB entries that replace a split one). */
uint64_t vmsi_mk_pte_size(const vms_kernel *k, const vmsi_vma *vma, uint64_t pfn, bool writable,
                          vms_pgsize size);
/* The leaf that maps va, whatever its size (present, PROT_NONE or swap), or 0: *ptep gets
 * its slot (0 when none) and *size its page size. */
uint64_t vmsi_leaf_find(vmsi_mm *mm, uint64_t va, uint64_t *ptep, vms_pgsize *size);
/* A level-`level` entry pointing to the page table at table_pa (Linux pmd_populate). */
uint64_t vmsi_mk_table(const vms_kernel *k, uint64_t table_pa, unsigned level);

/* ---- vma.c ---- */
vmsi_vma *vmsi_vma_find(vmsi_mm *mm, uint64_t va);   /* first VMA with end > va */
vmsi_vma *vmsi_vma_lookup(vmsi_mm *mm, uint64_t va); /* VMA containing va */
vms_status vmsi_vma_insert(vmsi_mm *mm, const vmsi_vma *v, vms_err *err);
vms_status vmsi_vma_split(vmsi_mm *mm, uint64_t va, vms_err *err);     /* boundary at va */
void vmsi_vma_remove_range(vmsi_mm *mm, uint64_t start, uint64_t end); /* must be split */
void vmsi_vma_merge_around(vmsi_mm *mm, uint64_t start, uint64_t end);
bool vmsi_vma_range_mapped(vmsi_mm *mm, uint64_t start, uint64_t end);
bool vmsi_vma_range_free(vmsi_mm *mm, uint64_t start, uint64_t end);
vms_status vmsi_vma_check(vmsi_mm *mm, vms_err *err);

/* ---- rmap.c ---- */
vms_status vmsi_page_add_rmap(vms_kernel *k, uint64_t pfn, vmsi_mm *mm, uint64_t va);
/* Room for `extra` more entries in the reverse map of the head frame pfn, so that as many
 * vmsi_page_add_rmap calls cannot fail. VMS_ERR_NOMEM on host failure (the mappings it
 * holds are unchanged). */
vms_status vmsi_rmap_reserve(vms_kernel *k, uint64_t pfn, uint32_t extra);
void vmsi_page_remove_rmap(vms_kernel *k, uint64_t pfn, vmsi_mm *mm, uint64_t va);
vmsi_rmap *vmsi_rmap_of(vms_kernel *k, uint64_t pfn);
vms_status vmsi_rmap_check(vms_kernel *k, vms_err *err);
/* Map a frame at a leaf slot with its bookkeeping (ref, mapcount, rmap); unmap one.
 * vmsi_map_page maps at the VMA's page size (a frame of a transparent huge page: a PTE
 * of that subpage); vmsi_map_page_size at an explicit one (VMS_PG_2M for the PMD of a
 * transparent huge page). */
vms_status vmsi_map_page(vmsi_mm *mm, uint64_t va, uint64_t ptep, uint64_t pfn, uint64_t pte);
vms_status vmsi_map_page_size(vmsi_mm *mm, uint64_t va, uint64_t ptep, uint64_t pfn, uint64_t pte,
                              vms_pgsize size);
void vmsi_zap_pte(vmsi_mm *mm, uint64_t va, uint64_t ptep, uint64_t pte, vms_pgsize size);
void vmsi_page_unref(vmsi_mm *mm, uint64_t va, uint64_t pte, vms_pgsize size);

/* Drop one reference of a data frame, taking it off the replacement policy first when
 * it is the last (every kernel put of an ANON/FILE frame goes through here). */
void vmsi_page_put(vms_kernel *k, uint64_t pfn);

/* ---- fork.c ---- */
vms_status vmsi_dup_mm(vms_kernel *k, vmsi_mm *old, vmsi_mm **out, vms_err *err);

/* ---- fault.c ---- */
vmsi_fault_ret vmsi_handle_mm_fault(vms_kernel *k, vms_task *t, uint64_t addr, uint32_t ec,
                                    vmsi_fault_info *fi);
/* Fault in every page of [start, end) as a write (if the VMA is writable) or read:
 * MAP_POPULATE and mlock (Linux populate_vma_page_range). */
vmsi_fault_ret vmsi_populate(vms_kernel *k, vms_task *t, uint64_t start, uint64_t end);

/* ---- mm.c ---- */
/* Unmap [start, end) (page aligned): zap PTEs, write back, drop VMAs, free tables. */
vms_status vmsi_do_munmap(vms_kernel *k, vmsi_mm *mm, unsigned core, uint64_t start, uint64_t end,
                          vms_err *err);
void vmsi_exit_mmap(vmsi_mm *mm);
void vmsi_update_mlock(vms_kernel *k, uint64_t pfn);

/* ---- thp.c: transparent huge pages (docs/HUGEPAGES.md) ---- */
/* Try the fault at addr in v (a 4 KiB VMA) as a huge one: map a 2 MiB page or the huge
 * zero page in an empty PMD, resolve a write to a huge leaf (reuse, copy or split), or
 * find a spurious fault. *handled false: the 4 KiB path takes the fault (a PTE table is
 * there, the range is not eligible, no free 2 MiB block: a fallback, or the huge page
 * was just split). */
vmsi_fault_ret vmsi_thp_fault(vms_kernel *k, vms_task *t, vmsi_vma *v, uint64_t addr, bool write,
                              vmsi_fault_info *fi, bool *handled);
/* __split_huge_pmd: the huge leaf (transparent huge page or huge zero page) mapping va
 * in mm, if any, becomes a table of 512 PTEs mapping the same frames; a transparent
 * huge page stays whole (PTE-mapped). VMS_ERR_NOTFOUND without a frame for the table,
 * VMS_ERR_NOMEM without host memory (nothing changed then). */
vms_status vmsi_thp_split_at(vmsi_mm *mm, uint64_t va);
/* The same, then the page itself too if the frame at va is part of a transparent huge
 * page (a DMA pin: split_huge_page). */
vms_status vmsi_thp_split_page_at(vmsi_mm *mm, uint64_t va);
/* split_huge_page: every PMD mapping the transparent huge page headed by pfn is split,
 * then the page becomes 512 pages, each with its own mappings; those no PTE maps are
 * freed. VMS_ERR_INVAL when pinned or not mapped, VMS_ERR_NOTFOUND / NOMEM as above. */
vms_status vmsi_split_huge_page(vms_kernel *k, uint64_t pfn);
/* Reclaim chose the transparent huge page at head (only its mappings hold it): swap it
 * out whole (thp.swap = whole, not partially mapped, a free swap cluster: its PMDs are
 * split, the 2 MiB written in one request, every PTE becomes the swap entry of its
 * subpage, the block is freed), or split it (thp_swpout_fallback when it would have
 * gone whole). Returns SWAPPED (gone whole: 512 frames freed), FREED (split, and the
 * head page was among the unmapped subpages freed), SPLIT (the head is an order-0 page
 * now: reclaim it as one) or KEEP (a write error, no memory for a PMD's table). */
typedef enum vmsi_thp_reclaim_ret {
    VMSI_THP_RECLAIM_SPLIT,
    VMSI_THP_RECLAIM_FREED,
    VMSI_THP_RECLAIM_SWAPPED,
    VMSI_THP_RECLAIM_KEEP,
} vmsi_thp_reclaim_ret;
vmsi_thp_reclaim_ret vmsi_thp_reclaim(vms_kernel *k, uint64_t head, unsigned core);
/* The last reference of a transparent huge page goes: its PTE-mapped state with it. */
void vmsi_thp_folio_free(vms_kernel *k, uint64_t head);
/* Mapping bookkeeping of a transparent huge page headed by `head` (rmap.c): one more or
 * one less PTE mapping subpage i (on: VMS_ERR_NOMEM without host memory for the state,
 * nothing changed), one more or less PMD mapping. Queues the page for a deferred split
 * when it becomes partially mapped. */
vms_status vmsi_thp_pte_mapped(vms_kernel *k, uint64_t head, uint64_t i, bool on);
void vmsi_thp_pmd_mapped(vms_kernel *k, uint64_t head, bool on);
/* The mappings of subpage i of the THP headed by head (PMDs and its PTEs). */
uint32_t vmsi_thp_subpage_mapcount(vms_kernel *k, uint64_t head, uint64_t i);
/* deferred_split_scan: split up to nr pages from the deferred split queue (0: all).
 * Returns the frames their splits freed; *nsplit (may be NULL) the pages split. */
uint64_t vmsi_thp_deferred_split(vms_kernel *k, uint64_t nr, uint64_t *nsplit);
/* Frames of partially mapped transparent huge pages that no PTE maps (not AnonPages,
 * not free until the deferred split). */
uint64_t vmsi_thp_unmapped_frames(const vms_kernel *k);
/* The checker's part: the PTE-mapped state of the THP headed by head against its
 * reverse map; the deferred split queue. */
vms_status vmsi_thp_check_folio(vms_kernel *k, uint64_t head, bool *pmd_mapped, vms_err *err);
vms_status vmsi_thp_check(vms_kernel *k, uint64_t pmd_mapped, vms_err *err);
/* A mapping of the huge zero page went away (its last frees it). */
void vmsi_huge_zero_put(vms_kernel *k);
/* khugepaged: scan up to khugepaged_pages pages of eligible VMAs from where the last run
 * stopped and collapse every 2 MiB range that qualifies. Returns the collapses. */
uint64_t vmsi_khugepaged(vms_kernel *k);
/* A kernel entry (fault, system call): khugepaged runs when its sleep
 * (cfg.khugepaged_sleep cycles of machine time, the latest core clock) has ended and some
 * mm has a range it could collapse; then it sleeps again from the time it finished. */
void vmsi_khugepaged_tick(vms_kernel *k);
/* The kernel's huge-page state at teardown (after every process went). */
void vmsi_thp_destroy(vms_kernel *k);

/* ---- compaction.c ---- */
/* Direct compaction: migrate movable pages out of pageblocks at the bottom of RAM into
 * free frames at its top until a free 2 MiB block exists, charging `core`. True when
 * one does (compact_success); false when skipped (too little free memory) or when the
 * scanners met (compact_fail). */
bool vmsi_compact(vms_kernel *k, unsigned core);
/* wakeup_kcompactd: a huge-page allocation that could not stall failed; kcompactd runs
 * at the next kernel entry. */
void vmsi_kcompactd_wake(vms_kernel *k);
/* A kernel entry: kcompactd compacts, if woken, until a free 2 MiB block exists (the
 * watermark of order 9: one block, free memory above the low watermark + 1024 pages). */
void vmsi_kcompactd(vms_kernel *k);

/* ---- hugetlb.c: hugetlbfs pools ---- */
vms_status vmsi_hugetlb_init(vms_kernel *k, vms_err *err);
void vmsi_hugetlb_destroy(vms_kernel *k);
/* Reserve (npages > 0) or give back (< 0) pool pages of size at mmap/munmap time. */
vms_status vmsi_hugetlb_reserve(vms_kernel *k, vms_pgsize size, int64_t npages, vms_err *err);
/* Whether the pool of size is in use (configured with pages): faults take from it. */
bool vmsi_hugetlb_pooled(const vms_kernel *k, vms_pgsize size);
/* A pool page for a fault (zeroed; from the reservation when reserved), or 0. */
uint64_t vmsi_hugetlb_alloc(vms_kernel *k, vms_pgsize size, bool reserved);
/* A pool page's last reference went: back to the free pool. */
bool vmsi_hugetlb_free(vms_kernel *k, uint64_t pfn);
/* munmap / exit of [start, end): the reservations no fault consumed there go back (the
 * mm's resv_map, mm->hresv). */
void vmsi_hugetlb_unmap(vmsi_mm *mm, uint64_t start, uint64_t end);
/* vms_kernel_check's part: each pool's HugePages_Rsvd equals what the resv_maps account
 * for (every owner mapping's pages no fault consumed, every file's reserved indices
 * without a page). VMS_ERR_INVAL naming the pool otherwise. */
vms_status vmsi_hugetlb_check(vms_kernel *k, vms_err *err);
/* hugetlbfs files (hugetlb.c "hugetlbfs"): a new unnamed file of len bytes (the object
 * behind MAP_SHARED|MAP_ANONYMOUS|MAP_HUGETLB); the cached page at a huge-page index (0:
 * none); whether an index holds a reservation (reserved, not instantiated); a new page
 * into the cache (its reference and record; VMS_ERR_NOMEM: nothing changed); the last
 * reference went (free the pages, give back the reservations). */
vms_status vmsi_hugetlbfs_new(vms_kernel *k, vms_pgsize size, uint64_t len, vms_file **out,
                              vms_err *err);
uint64_t vmsi_hugetlbfs_find(const vms_file *f, uint64_t index);
bool vmsi_hugetlbfs_reserved(const vms_file *f, uint64_t index);
vms_status vmsi_hugetlbfs_add(vms_kernel *k, vms_file *f, uint64_t index, uint64_t pfn);
void vmsi_hugetlbfs_evict(vms_kernel *k, vms_file *f);
/* A shared mapping of huge-page indices [first, first + n) of f: reserve the pool pages
 * the file's resv_map lacks (ENOMEM: VMS_ERR_NOTFOUND, nothing reserved); then _done
 * keeps them (the mapping was made) or gives them back. */
vms_status vmsi_hugetlbfs_reserve(vms_kernel *k, vms_file *f, uint64_t first, uint64_t n,
                                  vms_err *err);
void vmsi_hugetlbfs_reserve_done(vms_kernel *k, vms_file *f, uint64_t first, uint64_t n, bool keep);

#endif
