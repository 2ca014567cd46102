/*
 * vmsim/kernel.h — the simulated kernel: one instance per machine, its configuration,
 * its counters and its system-wide views (/proc/meminfo, /proc/vmstat, JSON, a log).
 *
 * The kernel is the software half of DESIGN.md. It configures the hardware only through
 * the architectural interface: it writes page-table entries into simulated RAM (pt.h),
 * loads CR3 with a PCID, issues INVLPG/INVPCID and sends "IPIs" (a target core is
 * charged the IPI cost and executes the invalidation itself). It never reads or writes
 * a TLB, a PWC or the walker's state. Data it moves on its own behalf (zero fill, COW
 * copies, file reads, writeback) goes through vms_ram_* on physical frames.
 *
 * Physical memory is managed by a frame allocator (frames.h) that the kernel creates
 * over the machine's RAM layout at boot: page-table pages (flag PAGETABLE), the shared
 * zero page (ZERO), anonymous (ANON), page-cache (FILE) and shmem frames all come from
 * it. Frame 0 is reserved, as on a PC. After every process has exited, the number of
 * free frames equals the number right after vms_kernel_create (tests check it).
 *
 * Boot builds init_mm (Linux's swapper_pg_dir): a root table holding only the kernel
 * half, a supervisor-only, global direct map of all RAM at page_offset_base
 * (0xffff888000000000 with 4-level paging, 0xff11000000000000 with 5-level), in 1 GiB
 * or 2 MiB pages. Every address space's root copies init_mm's upper-half entries, so
 * the direct map's lower-level tables are shared by all (Linux's pgd_alloc). A user
 * access there faults with P|U: SIGSEGV.
 *
 * Processes, tasks and accesses are in proc.h; mmap and friends, files and shared
 * memory in mman.h.
 */
#ifndef VMSIM_KERNEL_H
#define VMSIM_KERNEL_H

#include "vmsim/common.h"
#include "vmsim/core.h"
#include "vmsim/machine.h"
#include "vmsim/strbuf.h"

typedef struct vms_kernel vms_kernel;
typedef struct vms_frames vms_frames; /* frames.h */

/* The swap device's latency/throughput preset (swap.h, docs/SWAP.md). */
typedef enum vms_swap_device {
    VMS_SWAP_SSD = 0, /* a SATA SSD: ~80 µs per access, ~500 MB/s */
    VMS_SWAP_HDD = 1, /* a 7200 rpm disk: ~10 ms seek + rotation, ~150 MB/s, free when sequential */
} vms_swap_device;

/*
 * The future, for OPT (Belady) reclaim: the position of the next reference of virtual
 * page va by process pid (larger is later; UINT64_MAX: never again). Only a replay of a
 * recorded trace knows it; a real kernel never does. Called during reclaim.
 */
typedef uint64_t (*vms_next_use_fn)(void *ud, int pid, uint64_t va);

/* Linux's page_offset_base (Documentation/arch/x86/x86_64/mm.rst). */
#define VMS_PAGE_OFFSET_4L UINT64_C(0xffff888000000000)
#define VMS_PAGE_OFFSET_5L UINT64_C(0xff11000000000000)
/* User space: [0, TASK_SIZE), 47 bits minus the guard page, as Linux x86-64. Formats
 * with 48 or more VA bits (x86-64, RISC-V Sv48/Sv57, AArch64) use this layout. */
#define VMS_TASK_SIZE UINT64_C(0x00007ffffffff000)
/* RISC-V Sv39 (39-bit VA), as Linux's riscv port (arch/riscv/include/asm/page.h
 * PAGE_OFFSET_L3, pgtable.h TASK_SIZE_64 = PGDIR_SIZE * PTRS_PER_PGD / 2). */
#define VMS_PAGE_OFFSET_SV39 UINT64_C(0xffffffd800000000)
#define VMS_TASK_SIZE_SV39   UINT64_C(0x0000004000000000)

/* Cycles charged to the faulting (or calling) task's core for kernel work. */
typedef struct vms_kernel_costs {
    uint32_t fault_entry; /* the software part of a page fault: entry, VMA lookup, exit */
    uint32_t zero_page;   /* zero-filling one 4 KiB frame */
    uint32_t copy_page;   /* copying one 4 KiB frame (COW) */
    uint32_t file_read;   /* reading one 4 KiB page from a file (a major fault's I/O) */
    uint32_t writeback;   /* writing one 4 KiB page back to a file */
    uint32_t ipi;         /* an IPI's handler on its target (entry, flush_tlb_func, exit;
                             the invalidations it issues cost their own cycles) */
    uint32_t ipi_send;    /* the initiator, per target IPI sent (ICR write) */
    uint32_t ipi_latency; /* one-way delivery of an IPI or its ack within a socket */
    uint32_t ipi_hop;     /* ... plus this per interconnect hop (vms_machine_hops) */
    uint32_t sbi_ecall;   /* RISC-V: the initiator's ecall into the SBI firmware and back
                             (sbi_remote_sfence_vma_asid), before the firmware's IPIs */
    uint32_t sbi_rfence;  /* RISC-V: a hart's M-mode handler of the firmware's remote-fence
                             IPI (trap, request, mret; its sfence.vma costs its own) */
    uint32_t syscall;     /* entering and leaving a system call */
    uint32_t ctx_switch;  /* a context switch, beyond its CR3 load */
} vms_kernel_costs;

/*
 * The kernel's configuration: a plain struct of plain fields, so a config file or a
 * --set key=value layer can set each one. vms_kernel_config_default gives the defaults
 * in brackets.
 */
/* How the kernel shoots down TLB entries on other cores (docs/SMP.md). */
typedef enum vms_shootdown_mode {
    VMS_SHOOTDOWN_AUTO = 0,      /* Linux's choice for the architecture: x86-64 INVLPGB
                                    when the mm is active on >= 3 cores and the machine has
                                    it, else IPIs; AArch64 TLBI … IS always; RISC-V the SBI
                                    remote fence */
    VMS_SHOOTDOWN_IPI = 1,       /* always the kernel's own IPIs (flush_tlb_multi) */
    VMS_SHOOTDOWN_BROADCAST = 2, /* always the broadcast: INVLPGB + TLBSYNC (needs
                                    invlpgb_max > 0) or TLBI … IS + DSB ISH; refused on
                                    RISC-V, which has none */
    VMS_SHOOTDOWN_SBI = 3,       /* RISC-V only: SBI remote fences (firmware IPIs) */
} vms_shootdown_mode;

/* The page cache at boot (kernel.pagecache; docs/KERNEL.md). */
typedef enum vms_pagecache {
    VMS_PAGECACHE_AUTO = 0, /* cold, unless a recorded-layout replay makes it warm */
    VMS_PAGECACHE_COLD = 1, /* nothing cached: a file page's first fault reads it (major) */
    VMS_PAGECACHE_WARM = 2, /* host files resident (as after a first run) */
} vms_pagecache;

/* Transparent huge pages (config key thp; Linux /sys/kernel/mm/transparent_hugepage/enabled;
 * docs/HUGEPAGES.md). */
typedef enum vms_thp_mode {
    VMS_THP_MADVISE = 0, /* only in VMAs given madvise(MADV_HUGEPAGE) (this machine's default) */
    VMS_THP_ALWAYS = 1,  /* every eligible anonymous VMA, unless MADV_NOHUGEPAGE */
    VMS_THP_NEVER = 2,   /* never */
} vms_thp_mode;

/* When a transparent huge page allocation finds no free 2 MiB block (thp.defrag, Linux
 * /sys/kernel/mm/transparent_hugepage/defrag): compact directly (stall), wake kcompactd
 * (compact in the background, fall back now), or neither. */
typedef enum vms_thp_defrag {
    VMS_THP_DEFRAG_MADVISE = 0,       /* direct in MADV_HUGEPAGE VMAs; else neither (default) */
    VMS_THP_DEFRAG_ALWAYS = 1,        /* direct for every THP allocation */
    VMS_THP_DEFRAG_DEFER = 2,         /* wake kcompactd for every one; never stall */
    VMS_THP_DEFRAG_DEFER_MADVISE = 3, /* direct in MADV_HUGEPAGE VMAs, else wake kcompactd */
    VMS_THP_DEFRAG_NEVER = 4,         /* neither */
} vms_thp_defrag;

/* What a write to a shared (COW) transparent huge page does (thp.cow). */
typedef enum vms_thp_cow {
    VMS_THP_COW_SPLIT = 0, /* split the huge page and copy one 4 KiB page (Linux) */
    VMS_THP_COW_COPY = 1,  /* copy the whole 2 MiB page when a free block exists */
} vms_thp_cow;

/* What reclaim does with a transparent huge page (thp.swap; docs/HUGEPAGES.md). */
typedef enum vms_thp_swap {
    VMS_THP_SWAP_SPLIT = 0, /* split it, swap 4 KiB pages (Linux without CONFIG_THP_SWAP) */
    VMS_THP_SWAP_WHOLE = 1, /* write it to 512 contiguous slots and free the 2 MiB block
                               (CONFIG_THP_SWAP); split when no such slots are free */
} vms_thp_swap;

typedef struct vms_kernel_config {
    unsigned fault_around_pages; /* [16] pages mapped around a file read fault (Linux
                                    fault_around_bytes = 64 KiB); 1 disables; power of 2 */
    bool zero_page;              /* [true] anonymous read-first maps the shared zero page */
    bool pcid;                   /* [true] CR4.PCIDE: a PCID per address space and
                                    no-flush CR3 loads; false: every switch flushes */
    bool aslr;                   /* [true] randomise stack, mmap base and brk start */
    uint64_t seed;               /* [0] ASLR's generator seed */
    bool direct_map_1g;          /* [true] direct map in 1 GiB pages (else 2 MiB) */
    uint64_t stack_limit;        /* [8 MiB] RLIMIT_STACK: how far a stack may grow */
    const char *writeback_dir;   /* [NULL = "."] where written-back copies of files go:
                                    writeback_dir/<basename of the file>; borrowed */
    bool writeback_in_place;     /* [false] write MAP_SHARED changes to the original host
                                    file itself (explicit opt-in: it modifies user data) */
    vms_pagecache pagecache;     /* [auto] the page cache at boot: cold (a file page's
                                    first fault reads it: major), warm (host files resident,
                                    as after a first run: the first fault is minor, without
                                    a read; a page reclaimed since is read again, major), or
                                    auto: cold, unless a recorded-layout replay makes it
                                    warm (vms_kernel_pagecache_auto) */
    vms_kernel_costs cost;
    /* ---- many cores (docs/SMP.md) ---- */
    vms_shootdown_mode shootdown; /* [auto] IPIs, broadcast, or Linux's choice */
    bool tlb_batch;               /* [true] mmu_gather: one flush per munmap/mprotect
                                     range (and one per reclaim batch); false: a shootdown
                                     per page, as a kernel without batching */
    /* [12, 40, TLBWR] the TLB exception handlers of a software-managed TLB (swtlb.h,
     * machine tlb.mode = software): kernel.tlb_refill_cycles, kernel.tlb_exc_cycles,
     * kernel.tlb_refill = tlbwr|tlbwi */
    vms_tlbex_config tlbex;
    uint64_t sched_slice; /* [2250000] cycles a task runs before a runnable
                             peer on its core gets it (0.75 ms at 3 GHz: EEVDF's
                             base slice) */
    /* ---- memory pressure (docs/SWAP.md) ---- */
    uint64_t swap_bytes;         /* [0] swap device size (multiple of 4 KiB); 0: no swap */
    const char *swap_file;       /* [NULL] host file backing swap (created/truncated, kept);
                                    NULL or "": a temporary file, removed at destroy; borrowed */
    vms_swap_device swap_device; /* [SSD] the preset that sets the two figures below */
    uint32_t swap_latency_us;    /* [80] per random access (HDD: seek + rotation, 10000) */
    uint32_t swap_bandwidth_mbs; /* [500] transfer rate in MB/s (HDD: 150) */
    uint64_t swap_fail_write;    /* [0] fail the Nth swap page write since boot (0: never) */
    uint64_t swap_fail_read;     /* [0] fail the Nth swap page read since boot (0: never) */
    const char *policy;          /* [NULL = "twolist"] page-replacement policy (policy.h) */
    vms_next_use_fn next_use;    /* [NULL] OPT's oracle; opt without one is refused */
    void *next_use_ud;
    uint64_t wmark_min;  /* [0 = auto] bytes: allocations below it reclaim directly */
    uint64_t wmark_low;  /* [0 = auto] bytes: kswapd wakes below it ... */
    uint64_t wmark_high; /* [0 = auto] bytes: ... and reclaims up to it */
    int kswapd_core;     /* [-1] core charged for kswapd's work; -1: nobody (counted
                            apart in stats as kswapd_cycles) */
    /* ---- huge pages (docs/HUGEPAGES.md) ---- */
    vms_thp_mode thp;           /* [madvise] transparent huge pages: always, madvise, never */
    vms_thp_cow thp_cow;        /* [split] a write to a shared huge page: split or copy */
    vms_thp_swap thp_swap;      /* [split] reclaim of a huge page: split, or swap it whole */
    unsigned thp_max_ptes_none; /* [511] khugepaged: empty PTEs a collapse may fill (Linux
                                   khugepaged/max_ptes_none) */
    uint64_t hugepages;         /* [0] hugetlb pages of the default size (2 MiB unless
                                   default_hugepagesz is 1G) reserved at boot: hugepages=N
                                   before any hugepagesz= */
    uint64_t hugepages_1g;      /* [0] 1 GiB hugetlb pages reserved at boot
                                   (hugepagesz=1G hugepages=N) */
    int khugepaged_core;        /* [-1] core charged for khugepaged's work; -1: nobody */
    unsigned khugepaged_pages;  /* [4096] pages khugepaged scans per run (pages_to_scan) */
    /* khugepaged's timer and limits (docs/HUGEPAGES.md "khugepaged"): */
    uint64_t khugepaged_sleep;        /* [30000000000] cycles khugepaged sleeps between runs
                                         (scan_sleep_millisecs: Linux's 10 s at 3 GHz); it runs
                                         at the first kernel entry after; 0: only when called */
    unsigned thp_max_ptes_swap;       /* [64] swap PTEs a collapse may read back (max_ptes_swap) */
    unsigned thp_max_ptes_shared;     /* [256] PTEs of pages other processes map too that a
                                         collapse may copy (max_ptes_shared) */
    vms_thp_defrag thp_defrag;        /* [madvise] compaction for a failed THP allocation */
    uint64_t nr_overcommit_hugepages; /* [0] surplus pages the default pool may take from
                                         the buddy allocator beyond its persistent size
                                         (/proc/sys/vm/nr_overcommit_hugepages) */
    int kcompactd_core;               /* [-1] core charged for kcompactd's work; -1: nobody */
    /* hugetlb boot options beyond hugepages and hugepages_1g (docs/HUGEPAGES.md): */
    uint64_t hugepages_2m;               /* [0] 2 MiB hugetlb pages reserved at boot by a
                                            hugepagesz=2M hugepages=N pair (for the default size,
                                            hugepages wins when it is not 0, as in Linux) */
    vms_pgsize default_hugepagesz;       /* [2M] default_hugepagesz=: the pool of hugepages,
                                            MAP_HUGETLB without a size, hugetlbfs mounts without
                                            pagesize=, meminfo's HugePages_* and /proc/sys/vm */
    uint64_t nr_overcommit_hugepages_1g; /* [0] the 1 GiB pool's, when not 0 (/sys/kernel/mm/
                                            hugepages/hugepages-1048576kB/nr_overcommit_...) */
    bool mobility_grouping;              /* [false] group pageblocks by mobility: page tables
                                            and kernel memory in unmovable pageblocks, user
                                            pages in movable ones (Linux's migratetypes;
                                            docs/HUGEPAGES.md "Mobility grouping") */
    /* ---- protection, x86-64 (docs/KERNEL.md "Protection"); other architectures
     * ignore them ---- */
    bool smep; /* [true] CR4.SMEP: the kernel never executes user pages */
    bool smap; /* [true] CR4.SMAP: kernel data accesses to user pages only inside
                  STAC … CLAC (copy_to_user); a stray one is an oops (EFAULT here) */
    bool pke;  /* [true] CR4.PKE: protection keys (pkey_alloc, pkey_mprotect, PKRU) */
} vms_kernel_config;

/* Fill *cfg with the defaults documented in vms_kernel_config. */
void vms_kernel_config_default(vms_kernel_config *cfg);

/*
 * Boot a kernel on machine m (borrowed; must outlive the kernel; the kernel uses the
 * machine's allocator). cfg is copied (writeback_dir is borrowed). Creates the frame
 * allocator over the machine's RAM, reserves frame 0, allocates the zero page, builds
 * init_mm's direct map, and puts every core in the kernel's paging mode (CR4.PCIDE per
 * cfg, CR3 = init_mm, supervisor). VMS_ERR_INVAL for a bad config, VMS_ERR_NOMEM on host
 * allocation failure (nothing leaks), VMS_ERR_NOTFOUND if RAM is too small to boot.
 */
vms_status vms_kernel_create(vms_machine *m, const vms_kernel_config *cfg, vms_kernel **out,
                             vms_err *err);

/*
 * What a kernel runs on when it is not the machine itself (virt.h vms_guest: a guest
 * kernel in a VM). The kernel is the same; only three things change:
 *  - its physical address space is `bus` (its page tables are written there and the
 *    hardware walks them there), with `ram_bytes` of memory laid out as a PC's;
 *  - it sees `ncores` CPUs, and core(ud, i) is the core running CPU i at the time of the
 *    call (the platform may have to switch the core to it first); the pointer is good
 *    until the kernel asks for another CPU (cycles and add_cycles, below, never switch);
 *  - its own data moves (zero fill, COW copies, swap and file I/O) reach the bytes of
 *    physical frame pfn through frame(ud, pfn, use, &host_pfn): the frame of the
 *    machine's RAM that holds them now (a hypervisor backs, or swaps in, the page first;
 *    use says why the kernel touches it). VMS_OK or a failure status.
 * A kernel on a platform drives no IOMMU (no virtual IOMMU is modelled): its devices
 * are ones the hypervisor assigned to the VM, whose DMA addresses are guest-physical
 * (the host's IOMMU translates them, virt.h vms_guest_assign_device), and their
 * interrupts reach its handlers through irq_handler.
 * Everything else (cost model, page-table format, allocator) is the machine's. On bare
 * metal (vms_kernel_create) none of this is used and nothing changes.
 */
typedef enum vms_kmem_use {
    VMS_KMEM_READ = 0,  /* the kernel reads the frame */
    VMS_KMEM_WRITE,     /* it writes part of it */
    VMS_KMEM_OVERWRITE, /* it writes all 4 KiB (zero fill, a copy's destination, a swap-in) */
    VMS_KMEM_IO_READ,   /* it reads the frame to write it to a device (swap-out, writeback) */
} vms_kmem_use;

struct vms_dev; /* dev.h */
typedef struct vms_kernel_platform {
    vms_bus *bus;
    uint64_t ram_bytes;
    unsigned ncores;
    vms_core *(*core)(void *ud, unsigned cpu);
    vms_status (*frame)(void *ud, uint64_t pfn, vms_kmem_use use, uint64_t *host_pfn);
    void *ud;
    /* CPU i's clock without switching a core to it (NULL: core(ud, i)'s cycles). The
     * kernel reads the time of every CPU (its scheduler, khugepaged's timer, shootdown
     * waits); a hypervisor answers from the vCPU's host core, no VM entry needed. */
    uint64_t (*cycles)(void *ud, unsigned cpu);
    /* Charge `n` cycles of kernel work to CPU i's clock, likewise without switching a
     * core to it (NULL: core(ud, i)'s). Several CPUs may share one host core (vCPUs):
     * charging one must not take the core from the CPU the kernel holds. */
    void (*add_cycles)(void *ud, unsigned cpu, uint64_t n);
    /* Optional (NULL: the kernel hooks the device itself, vms_dev_set_irq_hook): the
     * kernel's handler for dev's interrupts (fn NULL: none). A hypervisor takes the
     * device's interrupts and delivers them into the guest, which then runs fn. */
    void (*irq_handler)(void *ud, struct vms_dev *dev,
                        void (*fn)(void *fn_ud, struct vms_dev *dev, unsigned cpu, uint8_t vector),
                        void *fn_ud);
} vms_kernel_platform;

/* Boot a kernel as vms_kernel_create does, on platform p (copied; ud borrowed) over
 * machine m. The x86-64 or AArch64 radix design only, in the machine's format
 * (VMS_ERR_UNSUPPORTED otherwise). */
vms_status vms_kernel_create_on(vms_machine *m, const vms_kernel_platform *p,
                                const vms_kernel_config *cfg, vms_kernel **out, vms_err *err);

/* Exit every process, write back dirty shared file pages, free every frame and table
 * the kernel allocated, and the kernel itself. NULL is accepted. */
void vms_kernel_destroy(vms_kernel *k);

const vms_kernel_config *vms_kernel_get_config(const vms_kernel *k);
vms_machine *vms_kernel_machine(vms_kernel *k);

/* The frame allocator (borrowed; for counting free frames and inspecting metadata). */
vms_frames *vms_kernel_frames(vms_kernel *k);

/* Physical address of init_mm's root table (the CR3 of a core running no process). */
uint64_t vms_kernel_init_root(const vms_kernel *k);

/* page_offset_base for this machine's paging mode. */
uint64_t vms_kernel_page_offset(const vms_kernel *k);

/* ---- the kernel log (dmesg) ---------------------------------------------------------- */

typedef enum vms_log_level {
    VMS_LOG_ERR = 3,
    VMS_LOG_WARNING = 4,
    VMS_LOG_INFO = 6,
    VMS_LOG_DEBUG = 7,
} vms_log_level;

/* Receives one line without its newline, e.g. for a segfault (Linux show_signal_msg):
 * "a.out[42]: segfault at 7f0000001000 error 6". msg is valid during the call only. */
typedef void (*vms_log_fn)(void *ud, vms_log_level level, const char *msg);

/*
 * Whether the simulated kernel panicked — it met state it did not make, such as a
 * page-table entry a device rewrote with the IOMMU off — and why (*reason, may be NULL).
 * After a panic the log has "Kernel panic - not syncing: REASON", and system calls,
 * accesses and process operations return VMS_ERR_PANIC; destroying the kernel is safe.
 */
bool vms_kernel_panicked(const vms_kernel *k, const char **reason);

/* Install (fn non-NULL) or remove the log callback. The library never prints. */
void vms_kernel_set_log(vms_kernel *k, vms_log_fn fn, void *ud);

/* What kernel.pagecache = auto means for this kernel: mode (cold or warm) when the config
 * said auto, else nothing changes. Call before the first fault (a replay does, by layout). */
void vms_kernel_pagecache_auto(vms_kernel *k, vms_pagecache mode);

/* Append the kernel log kept in memory (the last 256 lines, oldest first, one per line,
 * each cut at 159 bytes), like dmesg; with grep non-NULL only the lines containing it,
 * ignoring case (`dmesg | grep -i iommu`). VMS_ERR_NOMEM if sb could not grow. */
vms_status vms_kernel_dmesg(const vms_kernel *k, const char *grep, vms_strbuf *sb);

/* ---- counters ------------------------------------------------------------------------ */

/*
 * Event counters since boot, named after Linux's /proc/vmstat where Linux has a name.
 * A "fault" is one entry into handle_mm_fault from a user access.
 */
typedef struct vms_kernel_stats {
    /* Every fault is counted once, by its end, in one of minor, major, segv, sigbus (as
     * Linux's rusage min_flt/maj_flt), so pgfault = minor + pgmajfault + segv + sigbus.
     * The rest (cow, zero_page, stack_expand, thp_fault_alloc, spurious, fault_around)
     * are breakdowns of those. A fault retried after the OOM killer freed memory counts
     * once; one whose own process the killer chose counts in oom_kill only. */
    uint64_t pgfault;      /* every page fault: minor + major + segv + sigbus */
    uint64_t pgmajfault;   /* resolved with I/O (a file page read, a swap-in) */
    uint64_t minor;        /* resolved without I/O (stack growth, populate, spurious, COW …) */
    uint64_t cow;          /* of those: write-protect faults on a COW page (copies + reuses); a
                            * write-first fault on a private file page is not-present, not COW */
    uint64_t cow_copy;     /* … that copied the page */
    uint64_t cow_reuse;    /* … that reused it (sole reference) */
    uint64_t zero_page;    /* read faults that mapped the shared zero page */
    uint64_t private_copy; /* write-first faults on a private file page: copied (do_cow_fault) */
    uint64_t anon_alloc;   /* anonymous frames allocated and zeroed by a fault */
    uint64_t segv;     /* faults that ended in SIGSEGV (EFAULT for a kernel access: see efault) */
    uint64_t sigbus;   /* faults that ended in SIGBUS (beyond EOF, swap read error; or EFAULT) */
    uint64_t oom_kill; /* processes killed because no frame was free */
    uint64_t spurious; /* faults on a PTE that already allowed the access */
    uint64_t stack_expand;             /* faults that grew a stack VMA */
    uint64_t fault_around;             /* pages mapped by fault-around (beyond the faulting one) */
    uint64_t pgpgin;                   /* pages read from files into the page cache */
    uint64_t pgpgout;                  /* pages written back to files */
    uint64_t thp_fault_alloc;          /* huge-page faults that mapped a 2M/1G block */
    uint64_t thp_anon_fault_alloc;     /* … of those, transparent huge pages (thp_fault_alloc) */
    uint64_t thp_fault_fallback;       /* THP faults that found no free 2 MiB block: 4 KiB */
    uint64_t thp_collapse_alloc;       /* huge pages khugepaged collapsed 512 pages into */
    uint64_t thp_split_page;           /* huge pages split into 512 pages */
    uint64_t thp_split_pmd;            /* huge mappings (PMDs) split into page tables */
    uint64_t thp_deferred_split_page;  /* huge pages queued for a deferred split (partially
                                          mapped: thp_deferred_split_page) */
    uint64_t thp_deferred_split_freed; /* frames deferred splits freed (subpages no PTE
                                          mapped any more) */
    uint64_t thp_swpout;               /* huge pages swapped out whole (thp.swap = whole) */
    uint64_t thp_swpout_fallback;      /* huge pages reclaim split to swap them as 4 KiB pages */
    uint64_t thp_swpin;                /* huge pages swapped in whole (2 MiB at one fault):
                                          always 0, as Linux 6.x (docs/HUGEPAGES.md) */
    uint64_t thp_swpin_fallback;       /* huge pages swapped out whole that faults swapped
                                          back in as 4 KiB pages (once per huge page) */
    uint64_t thp_zero_page_alloc;      /* allocations of the huge zero page */
    uint64_t thp_cow_copy;             /* COW faults that copied a whole huge page */
    uint64_t thp_khugepaged_scans;     /* khugepaged runs */
    uint64_t khugepaged_cycles;        /* cycles of khugepaged's work (charged to its core) */
    uint64_t compact_stall;            /* direct compactions (a huge allocation failed) */
    uint64_t compact_success;          /* compactions that made a free 2 MiB block */
    uint64_t compact_migrate;          /* pages compaction migrated (compact_migrate_scanned) */
    uint64_t hugetlb_sigbus;           /* hugetlb faults with no page in the pool: SIGBUS */
    uint64_t nr_tlb_local_flush_one;   /* INVLPGs issued by the kernel on its own core */
    uint64_t nr_tlb_local_flush_all;   /* full flushes on its own core */
    uint64_t nr_tlb_remote_flush;      /* shootdowns that sent at least one IPI */
    uint64_t nr_tlb_remote_flush_received; /* IPIs handled by target cores */
    uint64_t tlb_broadcasts;               /* shootdowns done by a broadcast, no IPI (INVLPGB
                                              + TLBSYNC, TLBI … IS + DSB ISH) */
    uint64_t tlb_invlpgb;                  /* INVLPGB instructions the kernel issued */
    uint64_t tlb_tlbi_is;                  /* AArch64 TLBI … IS instructions it issued */
    uint64_t tlb_sbi_rfence;               /* RISC-V SBI remote-fence calls it made (each
                                              one IPI per target, counted in ipis) */
    uint64_t tlb_shootdown_cycles;         /* cycles of shootdowns that involved another core:
                                              initiators' sends, local flushes and waits (acks,
                                              TLBSYNC) plus targets' handlers */
    uint64_t tlb_lazy_skipped;             /* lazy cores left out of a shootdown (no IPI) ... */
    uint64_t tlb_switch_flushes;           /* ... and switches that flushed a PCID because its
                                              flush generation had moved on (the catch-up) */
    uint64_t tlb_leave_mm;                 /* lazy cores sent to init_mm by a shootdown that freed
                                              page tables */
    uint64_t tlb_deferred;                 /* reclaim pages whose flush was deferred to a batch */
    uint64_t nr_migrations;                /* tasks moved between run queues (sched.c) */
    uint64_t sched_preempt;                /* time-slice expiries that switched tasks */
    uint64_t pcid_flush;                   /* INVPCID single-context flushes before a PCID reuse */
    uint64_t context_switches;             /* CR3 loads for a task switch */
    uint64_t forks, execs, clones, exits;
    uint64_t syscalls;
    uint64_t kernel_cycles; /* cycles charged for kernel work (all cores) */
    /* ---- memory pressure (Linux /proc/vmstat names in comments) ---- */
    uint64_t pswpin;            /* pages read from swap (pswpin) */
    uint64_t pswpout;           /* pages written to swap (pswpout) */
    uint64_t swap_write_errors; /* swap writes that failed: the page stayed resident */
    uint64_t swap_read_errors;  /* swap reads that failed: owners got SIGBUS */
    uint64_t swap_io_cycles;    /* cycles of swap I/O (reads + writes) */
    uint64_t swapcache_hits;    /* swap faults resolved from the swap cache (no I/O) */
    uint64_t pgscan_kswapd;     /* pages scanned by kswapd (pgscan_kswapd) */
    uint64_t pgscan_direct;     /* pages scanned by direct reclaim (pgscan_direct) */
    uint64_t pgsteal_kswapd;    /* pages reclaimed by kswapd (pgsteal_kswapd) */
    uint64_t pgsteal_direct;    /* pages reclaimed by direct reclaim (pgsteal_direct) */
    uint64_t pgsteal_anon;      /* … of which anonymous/shmem, swapped (pgsteal_anon) */
    uint64_t pgsteal_file;      /* … of which file pages dropped (pgsteal_file) */
    uint64_t pgwriteback;       /* dirty file pages written back by reclaim */
    uint64_t pgrotated;         /* scanned pages put back (busy, pinned, no swap, I/O error) */
    uint64_t kswapd_runs;       /* kswapd wake-ups (pageoutrun) */
    uint64_t allocstall;        /* allocations that entered direct reclaim (allocstall) */
    uint64_t kswapd_cycles;     /* cycles of kswapd's work (charged to kswapd_core, if any) */
    uint64_t refault_anon;      /* swap-ins of evicted pages (workingset_refault_anon) */
    uint64_t refault_file;      /* re-reads of evicted file pages (workingset_refault_file) */
    uint64_t fault_cycles;      /* cycles in the fault handler (incl. swap/file I/O) */
    uint64_t user_cycles;       /* cycles of user accesses themselves (translation + data) */
    uint64_t kernel_faults;     /* of pgfault: faults taken by kernel accesses to user memory */
    uint64_t efault;            /* kernel accesses to user memory that failed with EFAULT */
    uint64_t smap_faults;       /* … of which SMAP stopped (outside STAC/CLAC): oopses */
    uint64_t auto_anon_vmas;    /* VMAs created by the auto-anonymous layout (proc.h) */
    /* The hashed and inverted designs (vmsim/arch/hashed.h; 0 under radix): */
    uint64_t hash_faults;        /* faults hash_page ended by filling the table (not pgfault) */
    uint64_t hash_fills;         /* entries inserted (hash faults and preloads) */
    uint64_t hash_evictions;     /* entries pushed out: a full group, an alias, a chain's tail */
    uint64_t hash_invalidations; /* entries removed because their radix PTE changed */
    /* Huge pages, continued (docs/HUGEPAGES.md): */
    uint64_t thp_khugepaged_full_scans; /* khugepaged passes over every mm (full_scans) */
    uint64_t thp_khugepaged_timer_runs; /* … runs its timer started (the rest: called) */
    uint64_t thp_collapse_alloc_failed; /* collapses with no 2 MiB block to copy into */
    uint64_t thp_collapse_swapin;       /* swap PTEs a collapse read back (max_ptes_swap) */
    uint64_t thp_collapse_shared;       /* pages other mms map that a collapse copied */
    uint64_t compact_fail;              /* direct compactions that made no 2 MiB block */
    uint64_t compact_migrate_scanned;   /* pages the migrate scanner looked at */
    uint64_t compact_free_scanned;      /* pages the free scanner looked at */
    uint64_t kcompactd_wake;            /* kcompactd runs (compact_daemon_wake) */
    uint64_t kcompactd_success;         /* … that made a free 2 MiB block */
    uint64_t kcompactd_cycles;          /* cycles of kcompactd's work */
    uint64_t compact_manual;            /* compactions asked for (compact_memory) */
} vms_kernel_stats;

const vms_kernel_stats *vms_kernel_get_stats(const vms_kernel *k);

/* Zero the counters. */
void vms_kernel_reset_stats(vms_kernel *k);

/* ---- huge pages (docs/HUGEPAGES.md) ----------------------------------------------------- */

/* Run khugepaged once: scan up to kernel.khugepaged_pages pages of THP-eligible VMAs
 * (from where the last run stopped, every process in turn) and collapse each 2 MiB range
 * whose PTEs map anonymous pages (at most thp.max_ptes_none empty, thp.max_ptes_swap
 * swapped, thp.max_ptes_shared mapped by other processes too) into one new huge page,
 * charging khugepaged.core. Returns the number of collapses. Besides, with
 * khugepaged.sleep > 0 it runs by itself at kernel entries (docs/HUGEPAGES.md). */
uint64_t vms_kernel_khugepaged(vms_kernel *k);

/* Run the deferred split shrinker now (Linux's deferred_split_scan, which reclaim runs
 * under memory pressure): split up to `nr` partially mapped transparent huge pages from
 * the queue (0: all), freeing their subpages no PTE maps. Returns the frames freed;
 * *nsplit (may be NULL) gets the pages split. */
uint64_t vms_kernel_thp_deferred_split(vms_kernel *k, uint64_t nr, uint64_t *nsplit);

/* Append khugepaged's state as Linux's /sys/kernel/mm/transparent_hugepage/khugepaged
 * files, one "name value" line each: pages_to_scan, scan_sleep_cycles (in place of
 * scan_sleep_millisecs), max_ptes_none, max_ptes_swap, max_ptes_shared, pages_collapsed,
 * full_scans; then vmsim's runs, timer_runs, next_run (machine cycle; 0: no timer).
 * VMS_ERR_NOMEM when sb could not grow. */
vms_status vms_kernel_khugepaged_show(vms_kernel *k, vms_strbuf *sb);

/* Compact all of RAM now (Linux: echo 1 > /proc/sys/vm/compact_memory): each RAM range's
 * scanners run until they meet, migrating every movable page of a pageblock without
 * unmovable frames towards the top. Returns the pages migrated. Its cycles go to no core
 * (kernel_cycles only). */
uint64_t vms_kernel_compact(vms_kernel *k);

/* Resize the hugetlb pool of `size` (VMS_PG_2M or VMS_PG_1G) to n persistent pages at run
 * time (Linux: echo n > /proc/sys/vm/nr_hugepages): surplus pages become persistent, then
 * new pages come from the buddy allocator while it has free blocks; shrinking frees free
 * unreserved pages, and pages still in use above n become surplus (freed when released).
 * *total (may be NULL) gets the persistent size reached. VMS_ERR_INVAL for another size. */
vms_status vms_kernel_set_hugepages(vms_kernel *k, vms_pgsize size, uint64_t n, uint64_t *total);

/* /proc/sys/vm/nr_overcommit_hugepages at run time: of the default pool
 * (kernel.default_hugepagesz). */
vms_status vms_kernel_set_overcommit_hugepages(vms_kernel *k, uint64_t n);

/* /sys/kernel/mm/hugepages/hugepages-<size>kB/nr_overcommit_hugepages: the surplus limit
 * of the pool of `size` (VMS_PG_2M or VMS_PG_1G; VMS_ERR_INVAL for another size). */
vms_status vms_kernel_set_overcommit_hugepages_size(vms_kernel *k, vms_pgsize size, uint64_t n);

/* The default huge page size (kernel.default_hugepagesz: VMS_PG_2M or VMS_PG_1G). */
vms_pgsize vms_kernel_default_hugepagesz(const vms_kernel *k);

/* One pool's counters, as /sys/kernel/mm/hugepages/hugepages-<size>kB/ shows them. */
typedef struct vms_hugepages_info {
    uint64_t nr_hugepages;            /* persistent pages (total - surplus) */
    uint64_t free_hugepages;          /* free pages, reserved ones included */
    uint64_t resv_hugepages;          /* free pages promised to mappings */
    uint64_t surplus_hugepages;       /* pages beyond nr_hugepages */
    uint64_t nr_overcommit_hugepages; /* the surplus limit */
} vms_hugepages_info;

/* The pool of `size` (VMS_PG_2M or VMS_PG_1G; VMS_ERR_INVAL otherwise). */
vms_status vms_kernel_hugepages_info(const vms_kernel *k, vms_pgsize size, vms_hugepages_info *out);

/* Append the pools as /sys/kernel/mm/hugepages shows them, one line per size
 * ("hugepages-2048kB nr_hugepages N free_hugepages N resv_hugepages N surplus_hugepages N
 * nr_overcommit_hugepages N"). VMS_ERR_NOMEM when sb could not grow. */
vms_status vms_kernel_hugepages_show(vms_kernel *k, vms_strbuf *sb);

/* ---- shootdown narration -------------------------------------------------------------- */

/* One completed TLB shootdown, as the kernel saw it (times in the initiator's cycles). */
typedef struct vms_shootdown_event {
    int pid;                 /* a process using the mm (0 if none) */
    unsigned initiator;      /* the core that changed the PTEs (UINT32_MAX: a kernel thread
                                with no core: see daemon) */
    const char *daemon;      /* the kernel thread that changed them, "kswapd", "khugepaged"
                                or "kcompactd" (static), NULL for a task's own work */
    uint64_t start, end;     /* the virtual range */
    bool full;               /* the whole PCID / ASID was flushed (range above the
                                architecture's ceiling: 33 pages on x86-64) */
    bool broadcast;          /* INVLPGB + TLBSYNC or TLBI … IS + DSB ISH instead of IPIs */
    bool sbi;                /* RISC-V: the IPIs were sent by an SBI remote fence */
    const char *method;      /* "IPI", "SBI remote fence", "INVLPGB + TLBSYNC", "TLBI
                                VAE1IS + DSB ISH", "TLBI ASIDE1IS + DSB ISH" (static) */
    unsigned invlpgb;        /* broadcast instructions issued (INVLPGB, TLBI … IS) */
    unsigned ntargets;       /* IPIs sent (0 for a broadcast) */
    const unsigned *targets; /* their cores, in send order (valid during the call) */
    const uint64_t *ack;     /* per target: cycles from the start until its ack arrived */
    unsigned lazy_skipped;   /* lazy cores that will flush at their next switch instead */
    uint64_t start_cycle;    /* the initiator's clock when it began */
    uint64_t cycles;         /* until the initiator went on (slowest ack / TLBSYNC) */
} vms_shootdown_event;

typedef void (*vms_shootdown_fn)(void *ud, const vms_shootdown_event *ev);

/* Install (fn non-NULL) or remove the callback told of every shootdown that involved
 * another core (IPIs, a broadcast, or a lazy core left to catch up); purely local
 * flushes are not reported. */
void vms_kernel_set_shootdown_hook(vms_kernel *k, vms_shootdown_fn fn, void *ud);

/* ---- system-wide views --------------------------------------------------------------- */

/*
 * Append /proc/meminfo text ("%-16s%8llu kB" lines, label with its colon, Linux's fs/proc/meminfo.c
 * order): MemTotal, MemFree, MemAvailable, Cached, AnonPages, Mapped, Shmem, PageTables, Mlocked,
 * SwapTotal, SwapFree, AnonHugePages, ShmemHugePages, FileHugePages; then as Linux's
 * hugetlb_report_meminfo HugePages_Total/Free/Rsvd/Surp ("%-16s   %5llu", no unit: the 2 MiB
 * pool), Hugepagesize and Hugetlb (kB of every pool). VMS_ERR_NOMEM if sb could not grow.
 */
vms_status vms_kernel_meminfo(vms_kernel *k, vms_strbuf *sb);

/* Append /proc/vmstat text: "name value" lines (pgfault, pgmajfault, nr_tlb_remote_flush,
 * … every counter of vms_kernel_stats, plus nr_free_pages, nr_anon_pages, …). */
vms_status vms_kernel_vmstat(vms_kernel *k, vms_strbuf *sb);

/*
 * Append the kernel's counters as JSON members (no braces), to follow
 * vms_machine_stats_json_members. A contract for external tools — these names stay:
 *   "faults": {"total", "minor", "major", "cow", "cow_copy", "cow_reuse", "zero_page",
 *              "segv", "sigbus", "spurious", "fault_around", "stack_expand", "thp"}
 *             (total = minor + major + segv + sigbus; the others are breakdowns),
 *   "tlb_shootdown": {"remote_flushes", "ipis", "broadcasts", "cycles", "invlpgb",
 *                     "lazy_skipped", "switch_flushes", "leave_mm", "deferred",
 *                     "local_flush_one", "local_flush_all", "pcid_flushes", "tlbi_is",
 *                     "sbi_rfence"},
 *   "sched": {"migrations", "preemptions"},
 *   "pagecache": {"pgpgin", "pgpgout"},
 *   "procs": {"forks", "execs", "clones", "exits", "context_switches", "syscalls",
 *             "oom_kills"},
 *   "memory": {"total_pages", "free_pages", "anon_pages", "file_pages", "shmem_pages",
 *              "pagetable_pages", "mlocked_pages"},
 *   "kernel_cycles": N,
 *   "swap": {"ins", "outs", "total_pages", "free_pages", "cache_pages", "write_errors",
 *            "read_errors", "io_cycles", "cache_hits"},
 *   "reclaim": {"policy": "NAME", "scanned", "reclaimed", "scanned_kswapd",
 *               "scanned_direct", "reclaimed_kswapd", "reclaimed_direct", "anon", "file",
 *               "written_back", "rotated", "refaults", "refaults_anon", "refaults_file",
 *               "kswapd_runs", "allocstall", "kswapd_cycles", "oom_kills",
 *               "watermark_min", "watermark_low", "watermark_high"} (watermarks in pages),
 *   "thrashing": {"fault_cycles", "swap_io_cycles", "user_cycles", "paging_permille"},
 *   "thp": {"mode", "fault_alloc", "fault_fallback", "collapse_alloc", "split_page",
 *           "split_pmd", "zero_page_alloc", "cow_copy", "anon_huge_pages",
 *           "khugepaged_scans", "khugepaged_cycles", "khugepaged_full_scans",
 *           "khugepaged_timer_runs", "collapse_alloc_failed", "collapse_swapin",
 *           "collapse_shared", "deferred_split_page", "deferred_split_queue",
 *           "deferred_split_freed", "swpout", "swpout_fallback", "swpin",
 *           "swpin_fallback"} (anon_huge_pages in 4 KiB pages: PMD-mapped ones),
 *   "compaction": {"stall", "success", "migrated", "fail", "migrate_scanned",
 *                  "free_scanned", "kcompactd_wake", "kcompactd_success",
 *                  "kcompactd_cycles", "manual"} (stall/success/fail: direct compaction),
 *   "hugetlb": {"total", "free", "reserved", "surplus", "total_1g", "free_1g", "sigbus"}
 *              (pages of the 2 MiB pool; _1g: the 1 GiB pool)
 * Adds a leading comma when sb already holds text that does not end in '{' or ','.
 */
vms_status vms_kernel_stats_json_members(vms_kernel *k, vms_strbuf *sb);

/*
 * Check every kernel invariant (SQLite-style, for tests; costs a walk over every
 * process): VMAs sorted and disjoint; every PTE inside a VMA with rights no wider than
 * it; the reverse map equals the page tables (each rmap entry's PTE maps that frame and
 * each user PTE has its rmap entry); each frame's mapcount equals the number of PTEs
 * mapping it and its refcount accounts for them; PCIDs unique; the frame allocator's
 * own check; the fault counters add up (pgfault = minor + major + segv + sigbus, cow =
 * cow_copy + cow_reuse). VMS_OK, or VMS_ERR_INVAL naming the first violation in err.
 */
vms_status vms_kernel_check(vms_kernel *k, vms_err *err);

#endif
