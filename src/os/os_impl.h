/*
 * os_impl.h — the kernel's shared insides: its state (vms_kernel, address spaces,
 * processes, tasks, cores, files, the swap device), the page-table entry helpers, and
 * the functions of kernel.c, smp.c, sched.c and proc.c. Every kernel file includes it;
 * each district adds its own narrow header (mm/mm_impl.h: address spaces and faults;
 * reclaim/reclaim_impl.h: page cache, swap and reclaim; reclaim/policy_impl.h: the
 * replacement policies; dev/dev_impl.h: DMA). Nothing outside src/os includes it.
 *
 * Ownership and references (the invariants vms_kernel_check verifies):
 *  - every present user PTE that maps a frame other than the zero page holds one
 *    reference on the frame's block (refcount) and counts once in its head's mapcount,
 *    and has exactly one reverse-map entry (mm, va) on the head frame (rmap.c);
 *  - a page-cache page (file or shmem) holds one more reference, owned by the cache;
 *  - an anonymous frame is referenced only by PTEs, plus one reference while it is in
 *    the swap cache (flag SWAPCACHE): refcount == mapcount (+1); pins add theirs;
 *  - a swap entry in a PTE holds one reference on its slot (swap.c); frames flagged LRU
 *    are exactly the pages the replacement policy tracks (reclaim.c);
 *  - the zero page is mapped read-only, never counted, never freed before shutdown;
 *  - a mm's VMAs are sorted by start, disjoint, non-empty, page aligned, below TASK_SIZE,
 *    and every present PTE lies inside a VMA (huge leaves inside a huge VMA);
 *  - a core is in mm->cpumask whenever its TLB or PWC may hold mm's non-global entries.
 */
#ifndef VMSIM_OS_IMPL_H
#define VMSIM_OS_IMPL_H

#include "util/radix.h"
#include "util/util.h"
#include "vmsim/frames.h"
#include "vmsim/kernel.h"
#include "vmsim/mman.h"
#include "vmsim/proc.h"
#include "vmsim/policy.h"
#include "vmsim/pt.h"
#include "vmsim/swap.h"

#define VMSI_MAX_PCID          4095u
#define VMSI_NO_PCID           0u
#define VMSI_STACK_GUARD_GAP   (UINT64_C(256) << VMS_PAGE_SHIFT) /* Linux stack_guard_gap */
#define VMSI_TLB_FLUSH_CEILING 33u         /* Linux tlb_single_page_flush_ceiling */
#define VMSI_PKRU_INIT         0x55555554u /* Linux init_pkru_value: AD for keys 1 … 15 */
#define VMSI_ELF_ET_DYN_BASE   UINT64_C(0x555555554000)
#define VMSI_DMESG_LINES       256u /* kernel log lines kept for vms_kernel_dmesg */
#define VMSI_DMESG_LINE        160u

/* Kernel-owned frame flags (frames.h leaves bits 11 … 31 to the kernel). */
enum {
    VMSI_FRAME_LRU = 1u << 11,       /* tracked by the replacement policy (PG_lru) */
    VMSI_FRAME_SWAPCACHE = 1u << 12, /* in the swap cache: holds one reference (PG_swapcache) */
    VMSI_FRAME_THP = 1u << 13,       /* an order-9 transparent huge page, mapped by 2 MiB
                                        leaves and/or PTEs of its subpages (thp.c) */
    VMSI_FRAME_HUGETLB = 1u << 14,   /* a hugetlb pool page (hugetlb.c) */
};

/* VMA flags (Linux VM_*, reduced). */
enum {
    VMSI_VM_SHARED = 1u << 0,      /* MAP_SHARED: writes reach the object */
    VMSI_VM_ANON = 1u << 1,        /* private anonymous memory (no object) */
    VMSI_VM_FILE = 1u << 2,        /* backed by a host file's page cache */
    VMSI_VM_SHM = 1u << 3,         /* backed by a shmem object (shared anon or named) */
    VMSI_VM_GROWSDOWN = 1u << 4,   /* a stack: grows down on faults just below it */
    VMSI_VM_LOCKED = 1u << 5,      /* mlocked */
    VMSI_VM_HUGE2M = 1u << 6,      /* explicit 2 MiB pages */
    VMSI_VM_HUGE1G = 1u << 7,      /* explicit 1 GiB pages */
    VMSI_VM_HEAP = 1u << 8,        /* the brk area */
    VMSI_VM_STACK = 1u << 9,       /* the main stack (for maps' "[stack]") */
    VMSI_VM_HUGEPAGE = 1u << 10,   /* madvise(MADV_HUGEPAGE) */
    VMSI_VM_NOHUGEPAGE = 1u << 11, /* madvise(MADV_NOHUGEPAGE) */
    VMSI_VM_NORESERVE = 1u << 12,  /* MAP_NORESERVE hugetlb: pages not reserved at mmap */
};

/* A VMA's protection key (pkey_mprotect), in vm_flags as Linux's VM_PKEY_BIT0..3 are:
 * bits 19:16 (0: the default key). VMAs of different keys never merge. */
#define VMSI_VM_PKEY_SHIFT 16u
#define VMSI_VM_PKEY_MASK  (0xFu << VMSI_VM_PKEY_SHIFT)

static inline unsigned vmsi_vma_pkey(unsigned flags)
{
    return (flags & VMSI_VM_PKEY_MASK) >> VMSI_VM_PKEY_SHIFT;
}

typedef struct vmsi_mm vmsi_mm;

/* A hugetlb pool of one page size (Linux struct hstate): pages reserved at boot or at
 * run time, free ones on a stack; resv pages are promised to mappings (HugePages_Rsvd);
 * surplus pages (of total) came from the buddy allocator beyond the persistent size, up
 * to overcommit, and go back to it when freed (HugePages_Surp). */
typedef struct vmsi_hpool {
    uint64_t total, nfree, resv, surplus, overcommit;
    size_t cap;
    uint64_t *free; /* nfree pfns (heads), room for cap */
} vmsi_hpool;
typedef struct vmsi_proc vmsi_proc;
typedef struct vmsi_dma vmsi_dma; /* dma.c */

/*
 * The table frames of one page-table tree the kernel owns (init_mm's, a process's, an
 * IOMMU domain's): vmsi_table_pt_ops gives the tree's vms_pt_ops over it, one pair for
 * every tree. A table is a zeroed frame flagged PAGETABLE (vmsi_alloc_table_frame);
 * each counter not NULL counts the tree's table frames (one more per table allocated,
 * one less per table freed). Lives as long as the tree: it is the ops' ud.
 */
typedef struct vmsi_table_ops {
    vms_kernel *k;
    uint64_t *count[2];
} vmsi_table_ops;

/* A virtual memory area [start, end). file holds a reference when not NULL. */
typedef struct vmsi_vma {
    uint64_t start, end;
    unsigned prot;  /* VMS_PROT_* */
    unsigned flags; /* VMSI_VM_* */
    vms_file *file; /* FILE or SHM object, else NULL */
    uint64_t pgoff; /* object page index of start */
} vmsi_vma;

/* An address space (Linux mm_struct). */
struct vmsi_mm {
    vms_kernel *k;
    uint64_t swapents;   /* swap entries in its PTEs (MM_SWAPENTS) */
    vms_pt pt;           /* root and table ops (ud = &tops) */
    vmsi_table_ops tops; /* its table frames, counted in nr_ptes */
    uint16_t pcid;       /* 1 … 4095, or 0 when PCIDs are off or exhausted */
    unsigned users;      /* tasks using it */
    vmsi_vma *vma;       /* sorted array */
    size_t nvma, cap;
    size_t vma_hint; /* vmsi_vma_find's last answer (checked before use: vma.c) */
    uint64_t cpumask[VMS_MAX_CORES / 64]; /* cores with mm loaded (lazily or not) */
    uint64_t tlb_gen;                     /* flush generation (Linux context.tlb_gen) */
    uint64_t cpu_gen[VMS_MAX_CORES];      /* per core: the tlb_gen its TLB has caught up
                                             with; 0: holds nothing of mm (smp.c) */
    uint64_t mmap_base, start_brk, brk, stack_top;
    uint64_t nr_ptes;                       /* page-table pages (root included) */
    uint64_t rss_anon, rss_file, rss_shmem; /* pages (4K units) mapped */
    uint64_t thp_leaves;                    /* 2 MiB leaves of transparent huge pages and of
                                               the huge zero page (thp.c skips its walk at 0) */
    uint64_t id;                            /* for stable ordering in checks */
    uint64_t auto_anon;                     /* region size of the auto-anonymous layout
                                               (vms_proc_set_auto_anon), 0: off */
    uint16_t pkey_map;                      /* protection keys allocated (pkey_alloc);
                                               bit 0, the default key, always set */
    vmsi_radix hresv; /* its private hugetlb mappings' resv_map (HPAGE_RESV_OWNER): the
                         huge pages (va >> 21) whose reservation a fault consumed */
};

struct vmsi_proc {
    int pid, ppid;
    char name[16];
    vmsi_mm *mm; /* NULL once dead */
    vms_task **tasks;
    unsigned ntasks;
    size_t cap;
    vms_task_state state;
    int signal;
};

struct vms_task {
    vms_kernel *k;
    vmsi_proc *proc;
    int tid;
    unsigned core;
    bool queued;                           /* on core's run queue (sched.c) */
    uint64_t affinity[VMS_MAX_CORES / 64]; /* cores it may run on */
    uint32_t pkru;                         /* its PKRU (XSAVE state): loaded whenever it
                                              runs, written by WRPKRU and pkey_alloc */
};

/* One core's scheduler and TLB state (Linux's struct rq and cpu_tlbstate). */
typedef struct vmsi_cpu {
    vms_task **rq; /* runnable tasks; rq[0] runs (current) */
    unsigned nrq;
    size_t caprq;
    bool lazy;            /* idle: cur_mm stays loaded lazily (enter_lazy_tlb) */
    uint64_t slice_start; /* core cycles when rq[0] got the core */
    uint64_t idle_cycles; /* cycles the core sat idle (clock moved on a wake-up) */
} vmsi_cpu;

/* Kinds of page-cache objects. */
typedef enum vmsi_file_kind {
    VMSI_FILE_HOST = 0, /* a host file */
    VMSI_FILE_SHM,      /* named shared memory (/dev/shm/NAME) */
    VMSI_FILE_ANON,     /* shared anonymous memory (shmem behind MAP_SHARED|MAP_ANONYMOUS) */
    VMSI_FILE_HTLBFS,   /* a file on a hugetlbfs mount, or the unnamed one behind
                           MAP_SHARED|MAP_ANONYMOUS|MAP_HUGETLB (hugetlb.c) */
} vmsi_file_kind;

/* A file or shmem object: an inode with a page cache (a flat array of pfns, 0 = absent;
 * frame 0 is reserved so never a cache page). */
struct vms_file {
    vms_kernel *k;
    vmsi_file_kind kind;
    unsigned refs;
    uint64_t ino;
    uint64_t size;    /* bytes */
    uint64_t npages;  /* pages covering size */
    vmsi_radix pages; /* index -> cache entry (below); host memory per entry, not per page */
    uint64_t cached;  /* pages present in the cache */
    char *path;       /* host path (HOST) or "/dev/shm/NAME" (SHM) */
    char *wb_path;    /* where writeback goes (HOST) */
    bool wb_created;  /* the copy exists and holds the original's bytes */
    bool unlinked;    /* SHM: name forgotten */
    vms_file *next;   /* kernel's list of objects */
    /* HUGETLBFS (hugetlb.c): pages holds pfns by huge-page index; resv is Linux's resv_map,
     * the huge-page indices reserved or instantiated (value 1; 2 while an mmap's
     * reservation is being made) */
    vms_pgsize hpage;
    vmsi_radix resv;
};

/*
 * The swap device (swap.c): a host file of nslots 4 KiB slots. count[s] is the number of
 * references to slot s: swap entries in PTEs, plus one for a shmem cache entry; 0 is a
 * free slot. cache[s] is the swap-cache frame read back from s while references remain
 * (0 if none). Slot 0 is never used (Linux keeps its header there).
 *
 * Clusters (Linux's swap_cluster_info with CONFIG_THP_SWAP: SWAPFILE_CLUSTER = 512 slots,
 * aligned): cl_busy[c] counts the slots of cluster c in use (count > 0), poisoned, or
 * the header; a cluster is free at 0 and then can hold a whole transparent huge page.
 * cl_whole[c] is set while a huge page written there whole has slots in use and none of
 * them was swapped in by a fault yet (thp_swpin_fallback counts the first). Only whole
 * clusters (nclusters = nslots / 512) are tracked; the slots after the last stay 4 KiB.
 */
typedef struct vmsi_swap {
    int fd;             /* -1: no swap */
    char *path;         /* host path */
    bool remove;        /* temporary file: removed at destroy */
    uint64_t nslots;    /* slots including slot 0 */
    uint32_t *count;    /* per slot references */
    uint64_t *cache;    /* per slot swap-cache pfn */
    uint8_t *bad;       /* per slot: a read failed (poisoned) */
    uint64_t nclusters; /* whole 512-slot clusters */
    uint16_t *cl_busy;  /* per cluster: slots in use, poisoned or the header */
    uint8_t *cl_whole;  /* per cluster: holds a huge page swapped out whole, not read yet */
    uint64_t cl_cursor; /* the next cluster a whole huge page tries */
    uint64_t cl_free;   /* clusters with cl_busy 0 */
    uint64_t nfree;     /* free usable slots */
    uint64_t cursor;    /* next slot to try (round robin, clusters consecutive writes) */
    uint64_t head;      /* the slot after the last transfer: the HDD's head position */
    uint64_t ncached;   /* frames in the swap cache */
    uint64_t reads, writes;
    uint64_t latency_cycles, xfer_cycles; /* per random access, per 4 KiB transfer */
    uint64_t inj_after[2], inj_count[2];  /* injected errors, per vms_swap_io */
} vmsi_swap;

struct vms_kernel {
    bool panicked;       /* vmsi_panic ran: the kernel refuses work (vms_kernel_panicked) */
    char panic_msg[160]; /* its reason */
    vms_machine *m;
    const vms_allocator *a;
    vms_bus *bus;
    vms_ram *ram;
    /* A kernel on a platform (vms_kernel_create_on: a guest kernel): CPUs and the frames
     * behind its physical memory come from plat; on bare metal on_plat is false. */
    bool on_plat;
    vms_kernel_platform plat;
    vms_frames *fr;
    vms_kernel_config cfg;
    vms_tlbex tlbex[VMS_MAX_CORES]; /* per core, with a software-managed TLB (tlbex.c) */
    vms_core *cores[VMS_MAX_CORES]; /* bare metal: vms_machine_core(m, i), fixed at create */
    vms_kernel_stats st;
    vms_rng rng;
    unsigned ncores, levels;
    const vms_pt_format *fmt; /* the page-table format of every table this kernel writes */
    bool pke;                 /* CR4.PKE is on (x86-64, kernel.pke): pkeys work */
    uint32_t pkru_init;       /* a new program's PKRU (Linux init_pkru_value) */
    vms_pt init_pt;           /* init_mm: kernel half only */
    vmsi_table_ops init_tops; /* … its table frames (not counted) */
    uint64_t page_offset;
    /* The user layout (vmsi_layout_init): TASK_SIZE, ELF_ET_DYN_BASE and the ASLR ranges,
     * in pages, of the stack top and mmap_base (x86-64's unless the VA is 39 bits). */
    uint64_t task_size, et_dyn_base, stack_rnd_pages, mmap_rnd_pages;
    uint64_t zero_pfn;
    vmsi_mm **cur_mm;         /* per core: the mm whose CR3 is loaded (NULL: init_mm) */
    vmsi_cpu *cpu;            /* per core: run queue, lazy-TLB state (sched.c, smp.c) */
    vms_shootdown_fn sd_hook; /* narration of shootdowns (vms_kernel_set_shootdown_hook) */
    void *sd_ud;
    unsigned sd_targets[VMS_MAX_CORES];        /* scratch of one shootdown: targets ... */
    uint64_t sd_ack[VMS_MAX_CORES];            /* ... and their ack times */
    uint64_t reclaim_mask[VMS_MAX_CORES / 64]; /* deferred reclaim flush (smp.c) */
    bool reclaim_pending;
    vmsi_proc **procs; /* live and dead processes, pid order */
    unsigned nprocs;
    size_t capprocs;
    int next_pid;
    uint64_t next_mm_id, next_ino;
    uint8_t *pcid_used; /* 4096 entries: 0 free, 1 used, 2 free but dirty */
    unsigned pcid_next;
    vms_file *files;         /* every live file/shmem object */
    uint64_t nr_mapped_file; /* file/shmem frames with mapcount > 0 (meminfo Mapped) */
    uint64_t nr_shmem;       /* shmem frames in caches */
    vms_log_fn log;
    void *log_ud;
    /* ---- memory pressure (swap.c, reclaim.c) ---- */
    vmsi_swap swap;
    const vms_page_policy *pol; /* the replacement policy and its instance */
    void *pol_state;
    vms_policy_host pol_host;
    char policy_name[16];
    uint64_t wmark_min, wmark_low, wmark_high; /* pages */
    bool in_reclaim;                           /* reclaim is running: no nested reclaim */
    bool in_kswapd;                            /* … and it is kswapd */
    bool in_khugepaged;                        /* khugepaged is running (thp.c) */
    uint64_t thp_lru;                          /* transparent huge pages on the policy */
    unsigned cur_core;      /* core of the task the kernel works for (charging) */
    vmsi_proc *cur_proc;    /* … and its process (NULL: none) */
    vmsi_dma *dma;          /* the DMA layer (dma.c), created by the first attach; NULL before */
    struct vmsi_hash *hash; /* the hashed/inverted design's table (hashfill.c); NULL: radix */
    char (*dmesg)[VMSI_DMESG_LINE]; /* ring of the last VMSI_DMESG_LINES log lines */
    unsigned dmesg_next, dmesg_count;
    /* ---- huge pages (thp.c, hugetlb.c) ---- */
    uint64_t huge_zero_pfn;  /* the huge zero page (order 9), allocated on first use; 0: none */
    uint64_t huge_zero_maps; /* 2 MiB leaves mapping it: freed when the last goes */
    vmsi_hpool hpool[2];     /* hugetlb pools: [0] 2 MiB, [1] 1 GiB */
    uint64_t khugepaged_mm, khugepaged_va; /* khugepaged's scan position (mm id, address) */
    uint64_t khugepaged_wake; /* machine time (cycles) its sleep ends (cfg.khugepaged_sleep) */
    struct vmsi_thp_folio *split_queue; /* the deferred split queue (oldest first; mm_impl.h) */
    struct vmsi_thp_folio *split_tail;  /* … its newest */
    uint64_t split_queue_len;           /* pages on it */
    uint64_t thp_pmd_mapped;            /* transparent huge pages some PMD maps (AnonHugePages) */
    uint64_t thp_states;                /* PTE-mapped states allocated (thp.c) */
    bool kcompactd_pending;             /* kcompactd was woken: it runs at the next kernel entry */
    bool in_kcompactd;                  /* kcompactd is running (compaction.c) */
    /* ---- hugetlbfs (hugetlb.c) ---- */
    struct vmsi_hugetlbfs *hugetlbfs; /* its mounts; NULL: none yet */
};

/*
 * The kernel's page-table helpers (Linux's pte_* and swp_entry_t API), on the format of
 * the machine it runs (format.h): no kernel file tests an architecture's raw bits.
 * Software encodings in not-present entries are the format's (x86-64: format.c):
 *  - PROT_NONE (pte_protnone): not present, frame kept, so the page stays owned;
 *  - swap entries (is_swap_pte): not present, never PROT_NONE, never zero (pte_none),
 *    a type and a slot offset; write, accessed and dirty are clear, so fork's
 *    write-protect and mkold leave them unchanged.
 */
static inline bool vmsi_pte_present(const vms_kernel *k, uint64_t pte)
{
    return vms_fmt_pte_present(k->fmt, pte);
}

/* Present, or PROT_NONE: the entry holds a frame. */
static inline bool vmsi_pte_mapped(const vms_kernel *k, uint64_t pte)
{
    return vms_fmt_pte_mapped(k->fmt, pte);
}

static inline bool vmsi_pte_protnone(const vms_kernel *k, uint64_t pte)
{
    return vms_fmt_pte_protnone(k->fmt, pte);
}

static inline bool vmsi_pte_write(const vms_kernel *k, uint64_t pte)
{
    return vms_fmt_pte_write(k->fmt, pte);
}

static inline bool vmsi_pte_dirty(const vms_kernel *k, uint64_t pte)
{
    return vms_fmt_pte_dirty(k->fmt, pte);
}

static inline bool vmsi_pte_young(const vms_kernel *k, uint64_t pte)
{
    return vms_fmt_pte_young(k->fmt, pte);
}

static inline uint64_t vmsi_pte_pfn(const vms_kernel *k, uint64_t pte)
{
    return vms_fmt_pte_pfn(k->fmt, pte);
}

/* The first frame of the size-`size` page an entry maps. */
static inline uint64_t vmsi_pte_head_pfn(const vms_kernel *k, uint64_t pte, vms_pgsize size)
{
    return vmsi_pte_pfn(k, pte) & ~((vms_pgsize_bytes(size) >> VMS_PAGE_SHIFT) - 1);
}

static inline bool vmsi_pte_leaf(const vms_kernel *k, uint64_t pte, unsigned level)
{
    return vms_fmt_pte_leaf(k->fmt, pte, level);
}

static inline uint64_t vmsi_pte_mkwrite(const vms_kernel *k, uint64_t pte)
{
    return vms_fmt_pte_mkwrite(k->fmt, pte);
}

static inline uint64_t vmsi_pte_wrprotect(const vms_kernel *k, uint64_t pte)
{
    return vms_fmt_pte_wrprotect(k->fmt, pte);
}

static inline uint64_t vmsi_pte_mkdirty(const vms_kernel *k, uint64_t pte)
{
    return vms_fmt_pte_mkdirty(k->fmt, pte);
}

static inline uint64_t vmsi_pte_mkclean(const vms_kernel *k, uint64_t pte)
{
    return vms_fmt_pte_mkclean(k->fmt, pte);
}

static inline uint64_t vmsi_pte_mkyoung(const vms_kernel *k, uint64_t pte)
{
    return vms_fmt_pte_mkyoung(k->fmt, pte);
}

static inline uint64_t vmsi_pte_mkold(const vms_kernel *k, uint64_t pte)
{
    return vms_fmt_pte_mkold(k->fmt, pte);
}

/* The same entry pointing to frame pfn. */
static inline uint64_t vmsi_pte_set_pfn(const vms_kernel *k, uint64_t pte, uint64_t pfn)
{
    return vms_fmt_pte_set_pfn(k->fmt, pte, pfn);
}

static inline bool vmsi_is_swap_pte(const vms_kernel *k, uint64_t pte)
{
    return vms_fmt_is_swap(k->fmt, pte);
}

static inline uint64_t vmsi_swp_entry(const vms_kernel *k, unsigned type, uint64_t offset)
{
    return vms_fmt_mk_swap(k->fmt, type, offset);
}

static inline uint64_t vmsi_swp_offset(const vms_kernel *k, uint64_t pte)
{
    return vms_fmt_swap_offset(k->fmt, pte);
}

static inline unsigned vmsi_swp_type(const vms_kernel *k, uint64_t pte)
{
    return vms_fmt_swap_type(k->fmt, pte);
}

/* The "core" kswapd runs on when no core is configured for it: work charged to it is
 * counted in kswapd_cycles only, and every TLB flush it causes is a remote one. */
#define VMSI_NO_CORE UINT32_MAX

/* The 4 KiB or the huge zero page: mapped read-only, never counted, never in the rmap. */
static inline bool vmsi_is_zero_pfn(const vms_kernel *k, uint64_t pfn)
{
    return pfn == k->zero_pfn || (k->huge_zero_pfn && pfn == k->huge_zero_pfn);
}

/* ---- kernel.c ---- */
/*
 * A simulated kernel panic: the kernel met state it did not make (a rogue DMA rewrote a
 * page-table entry with the IOMMU off, ...). Logs "Kernel panic - not syncing: REASON" at
 * VMS_LOG_ERR (once) and marks the kernel: every later entry point refuses with
 * VMS_ERR_PANIC, and teardown skips what it cannot trust. Never a host crash.
 */
void vmsi_panic(vms_kernel *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* VMS_ERR_PANIC with the panic's reason in err when k panicked, else VMS_OK. */
vms_status vmsi_panic_status(const vms_kernel *k, vms_err *err);

/* Whether the kernel wrote pte, a leaf it reads back at va of mm: a swap entry names a
 * slot in use, a mapped entry a frame of RAM whose reverse map has (mm, va), or the zero
 * page. False means a device (or a bug) wrote it: the caller panics (vmsi_panic). */
bool vmsi_pte_trusted(vmsi_mm *mm, uint64_t va, uint64_t pte, vms_pgsize size);

void vmsi_log(vms_kernel *k, vms_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Allocate a block of 2^order zeroed frames; VMS_ERR_NOTFOUND when RAM is full. */
vms_status vmsi_alloc_frames(vms_kernel *k, unsigned order, uint32_t flags, uint64_t *pfn,
                             vms_err *err);
void vmsi_charge(vms_kernel *k, unsigned core, uint64_t cycles);
vms_status vmsi_alloc_table_frame(vms_kernel *k, uint64_t *pfn);
/* The vms_pt_ops of the tree whose table frames t describes (ud = t). */
vms_pt_ops vmsi_table_pt_ops(vmsi_table_ops *t);
/* Free the table frame at pa of t's tree (the ops' free_table): it loses PAGETABLE and
 * its reference, and t's counters drop by one. */
void vmsi_table_free(vmsi_table_ops *t, uint64_t pa);
vms_core *vmsi_core(vms_kernel *k, unsigned core);
/* CPU core's clock (cycles), read without running anything there: on a platform whose
 * CPUs are vCPUs, reading the time does not load one on its host core; on bare metal it
 * does not exit a vCPU running on the core. */
uint64_t vmsi_core_clock(vms_kernel *k, unsigned core);

/* ---- pmem.c: the kernel's own data moves on physical frames (vms_ram_* on bare metal;
 * through the platform's frame translation on a platform, one frame at a time) ---- */
vms_status vmsi_ram_fill(vms_kernel *k, uint64_t pa, int c, size_t len);
vms_status vmsi_ram_copy_frame(vms_kernel *k, uint64_t dst_pfn, uint64_t src_pfn);
vms_status vmsi_ram_read(vms_kernel *k, uint64_t pa, void *buf, size_t len);
/* A read of a frame's bytes on their way to a device (swap-out, file writeback). */
vms_status vmsi_ram_read_io(vms_kernel *k, uint64_t pa, void *buf, size_t len);
vms_status vmsi_ram_write(vms_kernel *k, uint64_t pa, const void *buf, size_t len);
/* The host bytes of frame pfn, made to exist (vms_ram_frame with create). */
uint8_t *vmsi_ram_frame(vms_kernel *k, uint64_t pfn);

/* ---- hashfill.c: the hashed and inverted designs (vmsim/arch/hashed.h) ---- */
typedef enum vmsi_hash_ret {
    VMSI_HASH_FILLED,     /* the radix tables allow it: an entry was inserted */
    VMSI_HASH_FAULT,      /* they do not: a real fault (*ec is the radix walk's code) */
    VMSI_HASH_UNMAPPABLE, /* the page has no entry in this design (IPT: not RAM) */
    VMSI_HASH_PANIC,      /* vmsi_panic ran */
} vmsi_hash_ret;
/* At boot: the table, on every core (nothing for radix). */
vms_status vmsi_hash_boot(vms_kernel *k, vms_err *err);
void vmsi_hash_destroy(vms_kernel *k);
/* hash_page: a fault at addr on core with error flags *ec. */
vmsi_hash_ret vmsi_hash_page(vms_kernel *k, unsigned core, uint64_t addr, uint32_t *ec);
/* update_mmu_cache: after a resolved fault, insert the entry if the access is allowed. */
void vmsi_hash_preload(vms_kernel *k, unsigned core, uint64_t addr, uint32_t ec);
/* mm's PTEs in [start, end) changed: remove their entries. */
void vmsi_hash_flush(vms_kernel *k, const vmsi_mm *mm, uint64_t start, uint64_t end);
/* A PCID was released: remove every entry of it. */
void vmsi_hash_flush_ctx(vms_kernel *k, uint32_t pcid);
/* ioremap / iounmap of the kernel page at kva: its bolted entry (hashed); the inverted
 * design refuses device pages (VMS_ERR_UNSUPPORTED). Nothing under radix. */
vms_status vmsi_hash_map_kernel(vms_kernel *k, uint64_t kva, vms_err *err);
void vmsi_hash_unmap_kernel(vms_kernel *k, uint64_t kva);
/* The design, the bytes of its table's entries and of the frames it took (0 for radix). */
void vmsi_hash_info(const vms_kernel *k, vms_design *design, uint64_t *table_bytes,
                    uint64_t *reserved_bytes);

/* ---- smp.c ---- */
void vmsi_switch_mm(vms_kernel *k, unsigned core, vmsi_mm *mm);
void vmsi_flush_tlb_range(vms_kernel *k, vmsi_mm *mm, unsigned initiator, uint64_t start,
                          uint64_t end);
/* flush_tlb_mm_range with its flags: FREED (page tables were freed: lazy cores get the
 * IPI too, as Linux's freed_tables) and GATHER (an mmu_gather range of munmap/mprotect:
 * split into one shootdown per page when kernel.tlb_batch is off). */
#define VMSI_FLUSH_FREED  1u
#define VMSI_FLUSH_GATHER 2u
void vmsi_flush_tlb_mm_range(vms_kernel *k, vmsi_mm *mm, unsigned initiator, uint64_t start,
                             uint64_t end, unsigned flags);
/* Reclaim's deferred flush (try_to_unmap_flush): note that mm's entries for one page must
 * go (the PTE already changed), then flush every noted core once. With tlb_batch off the
 * page is flushed at once. */
void vmsi_tlb_defer(vms_kernel *k, vmsi_mm *mm, unsigned initiator, uint64_t va);
void vmsi_tlb_defer_flush(vms_kernel *k, unsigned initiator);
bool vmsi_mask_test(const vmsi_mm *mm, unsigned c);

/* ---- sched.c ---- */
vms_status vmsi_sched_init(vms_kernel *k);
void vmsi_sched_destroy(vms_kernel *k);
/* A new task joins its core's run queue (wakes an idle core); a task leaves it (exit,
 * death, migration): its core switches to the next runnable task or goes idle (lazy). */
vms_status vmsi_sched_enqueue(vms_kernel *k, vms_task *t);
void vmsi_sched_dequeue(vms_kernel *k, vms_task *t);
/* t runs now on its core (preempting the current task there): CR3 as needed. */
void vmsi_sched_switch_to(vms_kernel *k, vms_task *t);
vms_status vmsi_pcid_alloc(vms_kernel *k, uint16_t *pcid);
void vmsi_pcid_free(vms_kernel *k, uint16_t pcid);
void vmsi_mm_drop_cores(vms_kernel *k, vmsi_mm *mm);

/* ---- proc.c / fork.c ---- */
/* Kill process p with sig now (its address space goes at once), logging nothing. */
void vmsi_proc_kill(vms_kernel *k, vmsi_proc *p, int sig);
vms_status vmsi_mm_create(vms_kernel *k, vmsi_mm **out, vms_err *err);
void vmsi_mm_destroy(vmsi_mm *mm);

/* TASK_SIZE of this kernel's address spaces: user space is [0, task_size). */
static inline uint64_t vmsi_task_size(const vms_kernel *k)
{
    return k->task_size;
}

#endif
