/*
 * config.c — the key table behind vms_config: every knob of the machine and kernel by
 * name, with a parser and a formatter per kind of value, and INI files read by inih.
 *
 * Invariant: for every key, parse(format(value)) == value, so vms_config_dump output
 * loads back to the same configuration (test_config checks it for every key).
 */
#define _POSIX_C_SOURCE 200809L /* fileno, fstat */
#include "vmsim/config.h"

#include <errno.h>
#include <ini.h>
#include <sys/stat.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/util.h"
#include "vmsim/policy.h"
#include "vmsim/repl.h"

typedef enum kind {
    K_PRESET,
    K_SIZE,     /* uint64_t bytes, K/M/G/T suffixes */
    K_U64,      /* uint64_t */
    K_UINT,     /* unsigned */
    K_U32,      /* uint32_t */
    K_BOOL,     /* bool */
    K_SEED,     /* machine.seed and kernel.seed */
    K_TLB,      /* vms_tlb_config */
    K_TLBPOL,   /* a policy for every partition of every TLB */
    K_PWC,      /* vms_pwc_level_config */
    K_PATH,     /* the writeback directory */
    K_SWAPFILE, /* the swap file path ("" = temporary) */
    K_POLICY,   /* a page-replacement policy name */
    K_SWAPDEV,  /* hdd | ssd: sets latency and bandwidth */
    K_KSWAPD,   /* "none" or a core */
    K_CACHE,    /* a cache hierarchy preset (vms_cache_preset) */
    K_CLEVEL,   /* vms_cache_level_config: SIZE:WAYS:LATENCY[:POLICY] or none */
    K_CWALK,    /* l1 | l2: where walk loads start */
    K_DRAM,     /* a DRAM preset (vms_dram_preset) */
    K_DPAGE,    /* open | closed */
    K_DMAP,     /* the DRAM address-mapping string */
    K_SHOOT,    /* ipi | broadcast | auto | sbi */
    K_PCACHE,   /* warm | cold: kernel.pagecache_warm */
    K_ARCH,     /* the architecture: machine.fmt (format.h) */
    K_LEVELS,   /* paging levels, within what the architecture has */
    K_TLBMODE,  /* hardware | software: machine.mmu.swtlb.on */
    K_TLBOP,    /* tlbwr | tlbwi: kernel.tlbex.tlbwi */
    K_THP,      /* always | madvise | never */
    K_THPCOW,   /* split | copy */
    K_THPSWAP,  /* split | whole: thp.swap */
    K_KHUGE,    /* "none" or a core: khugepaged.core */
    K_S2,       /* ept | npt | arm: vm.s2 */
    K_PGSIZE,   /* 4K | 2M | 1G: vm.host_page */
    K_DEFRAG,   /* always | defer | defer+madvise | madvise | never: thp.defrag */
    K_KCOMPACT, /* "none" or a core: kcompactd.core */
    K_HPAGES,   /* hugepages: the pool of the last hugepagesz= (kernel command line) */
    K_HPSZ,     /* 2M | 1G: hugepagesz (a cursor, not a setting) */
    K_DHPSZ,    /* 2M | 1G: default_hugepagesz */
} kind;

typedef struct key {
    const char *name;
    kind k;
    size_t off;        /* offset of the field in vms_config */
    uint64_t min, max; /* for numbers */
    const char *help;
} key;

#define M(f)   offsetof(vms_config, machine.f)
#define KC(f)  offsetof(vms_config, kernel.f)
#define VM(f)  offsetof(vms_config, vm.f)
#define U32MAX UINT32_MAX

static const key keys[] = {
    {"preset", K_PRESET, 0, 0, 0,
     "machine preset (skylake, tiny, cortex-a76); replaces every earlier key"},
    {"ram", K_SIZE, M(ram_bytes), 1 << 20, UINT64_C(1) << 45, "RAM size, e.g. 16M, 4G, 1T"},
    {"cores", K_UINT, M(ncores), 1, VMS_MAX_CORES, "number of cores"},
    {"sockets", K_UINT, M(sockets), 1, VMS_MAX_CORES,
     "sockets the cores are split over (IPI and broadcast hops)"},
    {"invlpgb_max", K_UINT, M(invlpgb_max), 0, 65536,
     "pages one INVLPGB may name; 0: no broadcast invalidation"},
    {"arch", K_ARCH, 0, 0, 0,
     "an architecture with a registered page-table format: x86_64, riscv64, aarch64"},
    {"levels", K_LEVELS, M(levels), 1, 6,
     "paging levels: x86_64 4 (48-bit) or 5 (LA57, 57-bit); riscv64 3|4|5 (Sv39/48/57)"},
    {"maxphyaddr", K_UINT, M(maxphyaddr), 36, 52, "physical-address width in bits"},
    {"seed", K_SEED, 0, 0, UINT64_MAX, "seed of every random choice (replacement, ASLR)"},
    {"tlb.l1i", K_TLB, M(mmu.l1i), 0, 0,
     "L1 iTLB partitions SIZES:SETSxWAYS[:POLICY] or SIZES:ENTRIESeWAYSw[:POLICY],… or none"},
    {"tlb.l1d", K_TLB, M(mmu.l1d), 0, 0, "L1 dTLB partitions, same form"},
    {"tlb.l2", K_TLB, M(mmu.l2), 0, 0, "shared L2 TLB (STLB) partitions, same form, or none"},
    {"tlb.policy", K_TLBPOL, 0, 0, 0,
     "replacement policy of every TLB partition (lru, plru, fifo, random)"},
    {"tlb.mode", K_TLBMODE, 0, 0, 0,
     "hardware (a walker fills the TLBs) or software (MIPS: a JTLB the kernel's refill "
     "handler fills; no L2 TLB, no PWC)"},
    {"tlb.jtlb", K_UINT, M(mmu.swtlb.entries), 1, VMS_SWTLB_MAX_ENTRIES,
     "tlb.mode software: JTLB entries, each an even/odd page pair (R4000: 48)"},
    {"tlb.wired", K_UINT, M(mmu.swtlb.wired), 0, VMS_SWTLB_MAX_ENTRIES - 1,
     "tlb.mode software: Wired, the entries TLBWR never replaces"},
    {"pwc.pde", K_PWC, M(mmu.pwc.level[2]), 0, 0,
     "PDE cache ENTRIES[xWAYS][:POLICY], ENTRIESeWAYSw[:POLICY] or none"},
    {"pwc.pdpte", K_PWC, M(mmu.pwc.level[3]), 0, 0, "PDPTE cache, same form"},
    {"pwc.pml4e", K_PWC, M(mmu.pwc.level[4]), 0, 0, "PML4E cache, same form"},
    {"pwc.pml5e", K_PWC, M(mmu.pwc.level[5]), 0, 0, "PML5E cache (5-level paging), same form"},
    {"cost.l1_hit", K_U32, M(cost.l1_hit), 0, U32MAX, "cycles of an L1 TLB hit"},
    {"cost.l2_hit", K_U32, M(cost.l2_hit), 0, U32MAX, "cycles of an L2 TLB hit"},
    {"cost.walk_ref", K_U32, M(cost.walk_ref), 0, U32MAX, "cycles per paging-structure entry read"},
    {"cost.pwc_hit", K_U32, M(cost.pwc_hit), 0, U32MAX, "cycles of a page-walk-cache hit"},
    {"cost.ad_write", K_U32, M(cost.ad_write), 0, U32MAX, "cycles per A/D write-back"},
    {"cost.fault", K_U32, M(cost.fault), 0, U32MAX,
     "cycles to deliver a fault (exception entry/exit)"},
    {"cost.mem_access", K_U32, M(cost.mem_access), 0, U32MAX, "cycles of the data access itself"},
    {"cost.invlpg", K_U32, M(cost.invlpg), 0, U32MAX, "cycles of an INVLPG/INVPCID"},
    {"cost.cr3_load", K_U32, M(cost.cr3_load), 0, U32MAX, "cycles of a MOV to CR3"},
    {"cost.interrupt", K_U32, M(cost.interrupt), 0, U32MAX,
     "cycles to deliver a device interrupt (vms_core_interrupt)"},
    {"cost.invlpgb", K_U32, M(cost.invlpgb), 0, U32MAX, "cycles to issue one INVLPGB"},
    {"cost.tlbsync", K_U32, M(cost.tlbsync), 0, U32MAX,
     "cycles of a TLBSYNC awaiting broadcasts within a socket"},
    {"cost.tlbsync_hop", K_U32, M(cost.tlbsync_hop), 0, U32MAX,
     "extra TLBSYNC cycles per socket hop to the farthest core"},
    {"cost.tlbi_is", K_U32, M(cost.tlbi_is), 0, U32MAX,
     "cycles to issue one AArch64 TLBI ... IS (broadcast)"},
    {"cost.dsb_ish", K_U32, M(cost.dsb_ish), 0, U32MAX,
     "cycles of a DSB ISH awaiting TLBI ... IS within a socket"},
    {"cost.dsb_ish_hop", K_U32, M(cost.dsb_ish_hop), 0, U32MAX,
     "extra DSB ISH cycles per socket hop to the farthest core"},
    {"kernel.fault_around", K_UINT, KC(fault_around_pages), 1, 512,
     "pages mapped around a file read fault (power of 2)"},
    {"kernel.zero_page", K_BOOL, KC(zero_page), 0, 0,
     "anonymous read-first maps the shared zero page"},
    {"kernel.pcid", K_BOOL, KC(pcid), 0, 0, "PCIDs and no-flush CR3 loads on context switch"},
    {"kernel.aslr", K_BOOL, KC(aslr), 0, 0, "randomise stack, mmap base and brk start"},
    {"kernel.direct_map_1g", K_BOOL, KC(direct_map_1g), 0, 0,
     "kernel direct map in 1 GiB pages (else 2 MiB)"},
    {"kernel.stack_limit", K_SIZE, KC(stack_limit), UINT64_C(128) << 10, UINT64_C(1) << 40,
     "how far a stack may grow (RLIMIT_STACK)"},
    {"kernel.pagecache", K_PCACHE, 0, 0, 0,
     "page cache at boot: cold (a file page's first touch reads it: major), warm (host files "
     "resident, as after a first run) or auto (warm for --layout recorded, else cold)"},
    {"kernel.writeback_dir", K_PATH, 0, 0, 0,
     "directory for written-back copies of shared-mapped files; empty: a temporary one"},
    {"kernel.writeback_in_place", K_BOOL, KC(writeback_in_place), 0, 0,
     "write shared-mapping changes to the original file (modifies user data)"},
    {"kernel.cost.fault_entry", K_U32, KC(cost.fault_entry), 0, U32MAX,
     "cycles of the fault handler's software path"},
    {"kernel.cost.zero_page", K_U32, KC(cost.zero_page), 0, U32MAX, "cycles to zero a 4 KiB frame"},
    {"kernel.cost.copy_page", K_U32, KC(cost.copy_page), 0, U32MAX,
     "cycles to copy a 4 KiB frame (COW)"},
    {"kernel.cost.file_read", K_U32, KC(cost.file_read), 0, U32MAX,
     "cycles to read a page from a file"},
    {"kernel.cost.writeback", K_U32, KC(cost.writeback), 0, U32MAX,
     "cycles to write a page back to a file"},
    {"kernel.cost.ipi", K_U32, KC(cost.ipi), 0, U32MAX,
     "cycles of a shootdown IPI's handler on its target"},
    {"kernel.cost.ipi_send", K_U32, KC(cost.ipi_send), 0, U32MAX, "initiator cycles per IPI sent"},
    {"kernel.cost.ipi_latency", K_U32, KC(cost.ipi_latency), 0, U32MAX,
     "one-way delivery of an IPI or its ack within a socket"},
    {"kernel.cost.ipi_hop", K_U32, KC(cost.ipi_hop), 0, U32MAX,
     "extra IPI delivery cycles per socket hop"},
    {"kernel.cost.sbi_ecall", K_U32, KC(cost.sbi_ecall), 0, U32MAX,
     "RISC-V: initiator cycles of the SBI remote-fence ecall and return"},
    {"kernel.cost.sbi_rfence", K_U32, KC(cost.sbi_rfence), 0, U32MAX,
     "RISC-V: a hart's M-mode handler of an SBI remote-fence IPI"},
    {"kernel.shootdown", K_SHOOT, 0, 0, 0,
     "TLB shootdown: ipi, broadcast (INVLPGB; AArch64 TLBI IS), sbi (RISC-V remote fence) or "
     "auto (Linux's: x86 broadcast when on >= 3 cores, AArch64 TLBI IS, RISC-V sbi)"},
    {"kernel.smep", K_BOOL, KC(smep), 0, 0,
     "x86-64: CR4.SMEP on (no supervisor fetch from user pages)"},
    {"kernel.smap", K_BOOL, KC(smap), 0, 0,
     "x86-64: CR4.SMAP on (kernel touches user pages only inside STAC ... CLAC)"},
    {"kernel.pke", K_BOOL, KC(pke), 0, 0,
     "x86-64: CR4.PKE on (protection keys: pkey_alloc, pkey_mprotect, PKRU)"},
    {"kernel.mobility_grouping", K_BOOL, KC(mobility_grouping), 0, 0,
     "group pageblocks by mobility (Linux's migratetypes): page tables and kernel memory in "
     "unmovable 2 MiB blocks, user pages in movable ones, with fallback stealing"},
    {"kernel.tlb_batch", K_BOOL, KC(tlb_batch), 0, 0,
     "one flush per munmap/mprotect range (mmu_gather); off: one per page"},
    {"kernel.tlb_refill_cycles", K_U32, KC(tlbex.refill_cycles), 0, U32MAX,
     "tlb.mode software: cycles of the TLB refill handler's instructions"},
    {"kernel.tlb_exc_cycles", K_U32, KC(tlbex.exc_cycles), 0, U32MAX,
     "tlb.mode software: cycles of the TLB invalid/modified handlers' instructions"},
    {"kernel.tlb_refill", K_TLBOP, 0, 0, 0,
     "tlb.mode software: the refill writes with tlbwr (Random's slot) or tlbwi (round robin)"},
    {"kernel.sched_slice", K_U64, KC(sched_slice), 1, UINT64_MAX,
     "cycles a task runs before a runnable peer on its core gets the core"},
    {"kernel.cost.syscall", K_U32, KC(cost.syscall), 0, U32MAX,
     "cycles of a system call's entry and exit"},
    {"kernel.cost.ctx_switch", K_U32, KC(cost.ctx_switch), 0, U32MAX,
     "cycles of a context switch beyond its CR3 load"},
    {"swap", K_SIZE, KC(swap_bytes), 0, UINT64_C(1) << 44,
     "swap device size, e.g. 64M; 0 for none"},
    {"policy", K_POLICY, 0, 0, 0,
     "page-replacement policy of reclaim: fifo, lru, clock, random, opt, twolist"},
    {"swap.file", K_SWAPFILE, 0, 0, 0,
     "host file backing swap (created, kept); empty: a temporary file"},
    {"swap.device", K_SWAPDEV, 0, 0, 0,
     "swap device preset: ssd (80 us, 500 MB/s) or hdd (10 ms, 150 MB/s)"},
    {"swap.latency_us", K_U32, KC(swap_latency_us), 0, U32MAX,
     "swap access latency in microseconds (HDD: seek + rotation)"},
    {"swap.bandwidth_mbs", K_U32, KC(swap_bandwidth_mbs), 1, U32MAX, "swap transfer rate in MB/s"},
    {"swap.fail_write", K_U64, KC(swap_fail_write), 0, UINT64_MAX,
     "fail the Nth swap page write (1-based; 0 never)"},
    {"swap.fail_read", K_U64, KC(swap_fail_read), 0, UINT64_MAX,
     "fail the Nth swap page read (1-based; 0 never)"},
    {"watermark.min", K_SIZE, KC(wmark_min), 0, UINT64_C(1) << 45,
     "free memory below which allocations reclaim directly; 0 automatic"},
    {"watermark.low", K_SIZE, KC(wmark_low), 0, UINT64_C(1) << 45,
     "free memory below which kswapd wakes; 0 automatic"},
    {"watermark.high", K_SIZE, KC(wmark_high), 0, UINT64_C(1) << 45,
     "free memory kswapd reclaims up to; 0 automatic"},
    {"kswapd.core", K_KSWAPD, 0, 0, 0, "core charged for kswapd's work, or none (counted apart)"},
    {"thp", K_THP, 0, 0, 0,
     "transparent huge pages: always, madvise (only MADV_HUGEPAGE ranges) or never"},
    {"thp.cow", K_THPCOW, 0, 0, 0,
     "a write to a shared huge page: split (copy 4 KiB, Linux) or copy (the whole 2 MiB)"},
    {"thp.swap", K_THPSWAP, 0, 0, 0,
     "reclaim of a huge page: split (swap 4 KiB pages, no CONFIG_THP_SWAP) or whole (512 "
     "contiguous slots when a swap cluster is free, CONFIG_THP_SWAP)"},
    {"thp.max_ptes_none", K_UINT, KC(thp_max_ptes_none), 0, 511,
     "empty PTEs a khugepaged collapse may fill with zeros"},
    {"hugepages", K_HPAGES, KC(hugepages), 0, UINT64_C(1) << 24,
     "hugetlb pages reserved at boot: of the default size (2 MiB; default_hugepagesz), or "
     "after hugepagesz=SIZE of that size, as on Linux's command line"},
    {"hugepages_1g", K_U64, KC(hugepages_1g), 0, UINT64_C(1) << 14,
     "1 GiB hugetlb pages reserved at boot (hugepagesz=1G hugepages=N)"},
    {"hugepages_2m", K_U64, KC(hugepages_2m), 0, UINT64_C(1) << 24,
     "2 MiB hugetlb pages reserved at boot by hugepagesz=2M hugepages=N"},
    {"hugepagesz", K_HPSZ, 0, 0, 0,
     "2M or 1G: the size the following hugepages=N counts (hugepagesz=1G hugepages=4)"},
    {"default_hugepagesz", K_DHPSZ, 0, 0, 0,
     "2M or 1G: the default hugetlb page size (plain hugepages=N, MAP_HUGETLB without a size, "
     "hugetlbfs mounts, meminfo's HugePages_*, vm.nr_hugepages)"},
    {"nr_overcommit_hugepages", K_U64, KC(nr_overcommit_hugepages), 0, UINT64_C(1) << 24,
     "surplus hugetlb pages the default pool may take from free memory beyond its size"},
    {"nr_overcommit_hugepages_1g", K_U64, KC(nr_overcommit_hugepages_1g), 0, UINT64_C(1) << 14,
     "surplus 1 GiB hugetlb pages the 1 GiB pool may take from free memory (0: as "
     "nr_overcommit_hugepages when 1G is the default size)"},
    {"khugepaged.core", K_KHUGE, 0, 0, 0,
     "core charged for khugepaged's work, or none (counted apart)"},
    {"khugepaged.pages", K_UINT, KC(khugepaged_pages), 512, UINT64_C(1) << 24,
     "pages khugepaged scans per run (pages_to_scan)"},
    {"khugepaged.sleep", K_U64, KC(khugepaged_sleep), 0, UINT64_MAX,
     "cycles khugepaged sleeps between runs (scan_sleep_millisecs); 0: only when called"},
    {"thp.max_ptes_swap", K_UINT, KC(thp_max_ptes_swap), 0, 511,
     "swap PTEs a khugepaged collapse may read back"},
    {"thp.max_ptes_shared", K_UINT, KC(thp_max_ptes_shared), 0, 511,
     "PTEs of pages other processes map that a khugepaged collapse may copy"},
    {"thp.defrag", K_DEFRAG, 0, 0, 0,
     "a THP allocation without a free 2 MiB block: always, defer, defer+madvise, madvise or "
     "never (direct compaction, kcompactd, as Linux)"},
    {"kcompactd.core", K_KCOMPACT, 0, 0, 0,
     "core charged for kcompactd's work, or none (counted apart)"},
    {"cache", K_CACHE, 0, 0, 0,
     "data-cache hierarchy: off, skylake or tiny; replaces every earlier cache.* key"},
    {"cache.l1d", K_CLEVEL, M(cache.l1d), 0, 0, "L1 data cache SIZE:WAYS:LATENCY[:POLICY] or none"},
    {"cache.l1i", K_CLEVEL, M(cache.l1i), 0, 0, "L1 instruction cache, same form"},
    {"cache.l2", K_CLEVEL, M(cache.l2), 0, 0, "private L2 cache, same form"},
    {"cache.llc", K_CLEVEL, M(cache.llc), 0, 0, "shared last-level cache, same form"},
    {"cache.inclusive", K_BOOL, M(cache.inclusive), 0, 0,
     "LLC inclusive of the private levels (back-invalidation)"},
    {"cache.walk", K_CWALK, 0, 0, 0, "where page-walk loads start: l1 (L1d) or l2"},
    {"cache.mem_latency", K_U32, M(cache.mem_latency), 0, U32MAX,
     "cycles of a memory access beyond the LLC when dram = off"},
    {"dram", K_DRAM, 0, 0, 0,
     "DRAM timing: off, ddr4-3200 or ddr5-4800; replaces every dram.* key"},
    {"dram.channels", K_UINT, M(dram.channels), 1, 16, "memory channels (power of two)"},
    {"dram.ranks", K_UINT, M(dram.ranks), 1, 8, "ranks per channel (power of two)"},
    {"dram.page", K_DPAGE, 0, 0, 0, "row-buffer policy: open or closed"},
    {"dram.map", K_DMAP, 0, 0, 0,
     "address mapping, most significant field first: ro ra bg ba co ch joined by ':'"},
    {"dram.xor", K_BOOL, M(dram.xor_bank), 0, 0, "XOR bank and bank group with low row bits"},
    {"dram.cpu_mhz", K_U32, M(dram.cpu_mhz), 1, 100000,
     "core clock in MHz, to turn DRAM time into core cycles"},
    {"vm.s2", K_S2, 0, 0, 0,
     "a VM's second stage: auto (ept on x86_64, arm on aarch64), ept (Intel), npt (AMD) or arm"},
    {"vm.levels", K_UINT, VM(guest_levels), 3, 5,
     "the guest's paging levels: 4|5 (x86-64), 3|4 (Arm)"},
    {"vm.host_levels", K_UINT, VM(host_levels), 3, 5,
     "second-stage levels: 4|5 (EPT, NPT), 3|4 (Arm)"},
    {"vm.host_page", K_PGSIZE, 0, 0, 0,
     "second-stage page size backing guest memory: 4K, 2M or 1G"},
    {"vm.shadow", K_BOOL, VM(shadow), 0, 0,
     "shadow paging: the hypervisor's GVA -> HPA tables instead of a second stage (x86-64, "
     "aarch64)"},
    {"vm.ept_ad", K_BOOL, VM(ad), 0, 0, "EPT accessed and dirty flags (EPTP bit 6)"},
    {"vm.mem", K_SIZE, VM(mem), UINT64_C(16) << 20, UINT64_C(1) << 40,
     "guest-physical memory of a VM (the kernel model as guest: up to 3G; the minimal "
     "pager's: above 256M, where its frames start)"},
    {"vm.host_mem", K_SIZE, VM(host_mem), UINT64_C(4) << 20, UINT64_C(1) << 40,
     "host memory a scenario's VM reserves (tables and backing), taken from the top of RAM"},
    {"vm.cost.exit", K_U32, VM(exit_cycles), 1, U32MAX,
     "cycles of one VM exit and re-entry (an assumption, not a measurement)"},
    {"vm.nested_tlb", K_PWC, VM(nested_tlb), 0, 0,
     "nested TLB (GPA -> HPA) ENTRIES[xWAYS][:POLICY] or none"},
    {"vm.pwc.pde", K_PWC, VM(guest_pwc.level[2]), 0, 0,
     "the guest's PDE cache (entries hold guest-physical table addresses), same form as pwc.pde"},
    {"vm.pwc.pdpte", K_PWC, VM(guest_pwc.level[3]), 0, 0, "the guest's PDPTE cache, same form"},
    {"vm.pwc.pml4e", K_PWC, VM(guest_pwc.level[4]), 0, 0, "the guest's PML4E cache, same form"},
    {"vm.pwc.pml5e", K_PWC, VM(guest_pwc.level[5]), 0, 0, "the guest's PML5E cache, same form"},
};

#define NKEYS (sizeof keys / sizeof keys[0])

/* Keys naming a host file or directory vmsim writes: a scenario may not set them
 * (vms_config_key_writes_host). */
static const char *const host_write_keys[] = {"swap.file", "kernel.writeback_dir",
                                              "kernel.writeback_in_place"};

bool vms_config_key_writes_host(const char *name)
{
    for (size_t i = 0; i < sizeof host_write_keys / sizeof *host_write_keys; i++)
        if (!strcmp(name, host_write_keys[i]))
            return true;
    return false;
}

/* ---- value parsers ---- */

static bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"on", "true", "yes", "1"};
    static const char *const no[] = {"off", "false", "no", "0"};
    for (int i = 0; i < 4; i++) {
        if (!strcasecmp(s, yes[i]))
            return (*out = true);
        if (!strcasecmp(s, no[i]))
            return !(*out = false);
    }
    return false;
}

/* The registry's static name for policy `name`, or NULL. */
static const char *policy_name(const char *name, size_t len)
{
    for (unsigned i = 0; i < vms_repl_count(); i++) {
        const char *n = vms_repl_get(i)->name;
        if (strlen(n) == len && !strncmp(n, name, len))
            return n;
    }
    return NULL;
}

static const char *const size_names[VMS_PG_NSIZES] = {"4K", "2M", "1G"};

/* Parse "4K+2M" into a size mask; returns the number of characters used, 0 on error. */
static size_t parse_sizes(const char *s, unsigned *mask)
{
    size_t i = 0;
    *mask = 0;
    for (;;) {
        unsigned s0;
        for (s0 = 0; s0 < VMS_PG_NSIZES; s0++)
            if (!strncasecmp(s + i, size_names[s0], 2))
                break;
        if (s0 == VMS_PG_NSIZES)
            return 0;
        *mask |= 1u << s0;
        i += 2;
        if (s[i] != '+')
            return i;
        i++;
    }
}

/*
 * A geometry: "AxB" (for TLBs SETSxWAYS, for page-walk caches ENTRIESxWAYS, as before) or
 * the explicit "ENTRIESeWAYSw" for both (`1536e12w`: 1536 entries, 12 ways, 128 sets).
 * Sets *a (sets when sets_first, else entries) and *ways, *end after the geometry; for
 * the explicit form ENTRIES must be a multiple of WAYS. A page-walk cache may give
 * ENTRIES alone (fully associative): then *ways = 0.
 */
static bool parse_geometry(const char *s, bool sets_first, unsigned long *a, unsigned long *ways,
                           const char **end)
{
    char *e;
    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    unsigned long x = strtoul(s, &e, 10), y = 0;
    if (*e == 'e' || *e == 'E') { /* ENTRIESeWAYSw */
        if (e[1] < '0' || e[1] > '9')
            return false;
        y = strtoul(e + 1, &e, 10);
        if ((*e != 'w' && *e != 'W') || y == 0 || x % y)
            return false;
        e++;
        *a = sets_first ? x / y : x;
    } else if (*e == 'x' || *e == 'X') {
        if (e[1] < '0' || e[1] > '9')
            return false;
        y = strtoul(e + 1, &e, 10);
        *a = x;
    } else if (sets_first) {
        return false;
    } else {
        *a = x; /* ENTRIES alone */
    }
    if (errno || x > VMS_TLB_MAX_ENTRIES || y > VMS_TLB_MAX_ENTRIES)
        return false;
    *ways = y;
    *end = e;
    return true;
}

/* Parse one partition "SIZES:SETSxWAYS[:POLICY]" or "SIZES:ENTRIESeWAYSw[:POLICY]". */
static bool parse_part(const char *s, vms_tlb_part_config *p)
{
    size_t n = parse_sizes(s, &p->sizes);
    if (!n || s[n] != ':')
        return false;
    unsigned long sets, ways;
    const char *end;
    if (!parse_geometry(s + n + 1, true, &sets, &ways, &end))
        return false;
    if (sets < 1 || ways < 1 || ways > VMS_TLB_MAX_WAYS || sets * ways > VMS_TLB_MAX_ENTRIES)
        return false;
    p->sets = (unsigned)sets;
    p->ways = (unsigned)ways;
    p->policy = "lru";
    if (*end == ':') {
        p->policy = policy_name(end + 1, strlen(end + 1));
        return p->policy != NULL;
    }
    return *end == '\0';
}

/* Copy the next comma-separated, space-trimmed item of *s into buf; false at the end. */
static bool next_item(const char **s, char *buf, size_t len)
{
    const char *p = *s;
    while (*p == ' ' || *p == '\t' || *p == ',')
        p++;
    if (!*p)
        return false;
    size_t n = strcspn(p, ",");
    *s = p + n;
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    if (n >= len)
        n = len - 1;
    memcpy(buf, p, n);
    buf[n] = '\0';
    return true;
}

static bool parse_tlb(const char *s, vms_tlb_config *t)
{
    vms_tlb_config out = {0};
    if (!strcasecmp(s, "none")) {
        *t = out;
        return true;
    }
    char item[64];
    unsigned taken = 0;
    while (next_item(&s, item, sizeof item)) {
        if (out.nparts == VMS_TLB_MAX_PARTS || !parse_part(item, &out.part[out.nparts]) ||
            (out.part[out.nparts].sizes & taken))
            return false;
        taken |= out.part[out.nparts++].sizes;
    }
    if (out.nparts == 0)
        return false;
    *t = out;
    return true;
}

/* A cache level "SIZE:WAYS:LATENCY[:POLICY]" (e.g. 32K:8:4:plru) or "none". */
static bool parse_clevel(const char *s, vms_cache_level_config *lc)
{
    if (!strcasecmp(s, "none")) {
        *lc = (vms_cache_level_config){0, 1, 0, "lru"};
        return true;
    }
    char buf[64];
    size_t n = strcspn(s, ":");
    uint64_t size;
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (!vms_parse_u64(buf, true, &size) || size == 0 || s[n] != ':')
        return false;
    char *end;
    unsigned long ways = strtoul(s + n + 1, &end, 10);
    if (*end != ':' || ways < 1 || ways > VMS_REPL_MAX_WAYS)
        return false;
    unsigned long lat = strtoul(end + 1, &end, 10);
    const char *pol = "lru";
    if (*end == ':')
        pol = policy_name(end + 1, strlen(end + 1));
    else if (*end)
        return false;
    if (!pol || lat > UINT32_MAX)
        return false;
    *lc = (vms_cache_level_config){size, (unsigned)ways, (uint32_t)lat, pol};
    return true;
}

static bool parse_pwc(const char *s, vms_pwc_level_config *p)
{
    if (!strcasecmp(s, "none") || !strcmp(s, "0")) {
        *p = (vms_pwc_level_config){0, 0, NULL};
        return true;
    }
    const char *end;
    unsigned long entries, ways;
    if (!parse_geometry(s, false, &entries, &ways, &end))
        return false;
    if (ways == 0)
        ways = entries; /* fully associative */
    const char *pol = "lru";
    if (*end == ':')
        pol = policy_name(end + 1, strlen(end + 1));
    else if (*end)
        return false;
    if (!pol || entries < 1 || ways < 1 || ways > VMS_REPL_MAX_WAYS || entries % ways ||
        entries > VMS_TLB_MAX_ENTRIES)
        return false;
    *p = (vms_pwc_level_config){(unsigned)entries, (unsigned)ways, pol};
    return true;
}

/* ---- value formatters ---- */

static void fmt_size(vms_strbuf *sb, uint64_t v)
{
    static const char units[] = "KMGT";
    int u = -1;
    while (u < 3 && v && (v & 1023) == 0) {
        v >>= 10;
        u++;
    }
    if (u < 0)
        vms_strbuf_printf(sb, "%llu", (unsigned long long)v);
    else
        vms_strbuf_printf(sb, "%llu%c", (unsigned long long)v, units[u]);
}

static void fmt_tlb(vms_strbuf *sb, const vms_tlb_config *t)
{
    if (t->nparts == 0) {
        vms_strbuf_printf(sb, "none");
        return;
    }
    for (unsigned i = 0; i < t->nparts; i++) {
        const vms_tlb_part_config *p = &t->part[i];
        vms_strbuf_printf(sb, "%s", i ? ", " : "");
        bool first = true;
        for (unsigned s = 0; s < VMS_PG_NSIZES; s++)
            if (p->sizes & (1u << s)) {
                vms_strbuf_printf(sb, "%s%s", first ? "" : "+", size_names[s]);
                first = false;
            }
        vms_strbuf_printf(sb, ":%ux%u:%s", p->sets, p->ways, p->policy ? p->policy : "lru");
    }
}

static void fmt_clevel(vms_strbuf *sb, const vms_cache_level_config *lc)
{
    if (!lc->size) {
        vms_strbuf_printf(sb, "none");
        return;
    }
    fmt_size(sb, lc->size);
    vms_strbuf_printf(sb, ":%u:%u:%s", lc->ways, (unsigned)lc->latency,
                      lc->policy ? lc->policy : "lru");
}

static void fmt_pwc(vms_strbuf *sb, const vms_pwc_level_config *p)
{
    if (!p->entries)
        vms_strbuf_printf(sb, "none");
    else
        vms_strbuf_printf(sb, "%ux%u:%s", p->entries, p->ways, p->policy ? p->policy : "lru");
}

/* A comment after a TLB or PWC value spelling out its geometry (TLBs are SETSxWAYS, caches
 * ENTRIESxWAYS: the comment says which, so `4K:1536x12` shows its 18432 entries). */
static void geometry_tlb(vms_strbuf *sb, const vms_tlb_config *t)
{
    for (unsigned i = 0; i < t->nparts; i++)
        vms_strbuf_printf(sb, "%s%u entries = %u set%s x %u ways", i ? ", " : "  ; ",
                          t->part[i].sets * t->part[i].ways, t->part[i].sets,
                          t->part[i].sets == 1 ? "" : "s", t->part[i].ways);
}

static void geometry_pwc(vms_strbuf *sb, const vms_pwc_level_config *p)
{
    if (p->entries)
        vms_strbuf_printf(sb, "  ; %u entries = %u set%s x %u ways", p->entries,
                          p->entries / p->ways, p->entries == p->ways ? "" : "s", p->ways);
}

/* ---- the table ---- */

static const key *find_key(const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (!strcmp(keys[i].name, name))
            return &keys[i];
    return NULL;
}

static void *field(vms_config *c, const key *k)
{
    return (char *)c + k->off;
}

static const void *cfield(const vms_config *c, const key *k)
{
    return (const char *)c + k->off;
}

/* Set a numeric key after range checking. */
static bool set_number(vms_config *c, const key *k, const char *value)
{
    uint64_t v;
    if (!vms_parse_u64(value, k->k == K_SIZE, &v) || v < k->min || v > k->max)
        return false;
    if (k->k == K_SIZE && (v & VMS_PAGE_MASK))
        return false;
    switch (k->k) {
    case K_SIZE:
    case K_U64:
        *(uint64_t *)field(c, k) = v;
        break;
    case K_UINT:
        if (k->off == KC(fault_around_pages) && (v & (v - 1)))
            return false; /* a power of two */
        *(unsigned *)field(c, k) = (unsigned)v;
        break;
    case K_U32:
        *(uint32_t *)field(c, k) = (uint32_t)v;
        break;
    default:
        c->machine.seed = c->kernel.seed = v;
        break;
    }
    return true;
}

/* hugepages=N: the pool of the last hugepagesz= / default_hugepagesz= (kernel.hugepages_2m
 * or _1g), or before any, kernel.hugepages (the default size's), as Linux's command line
 * reads hugepages= (hugepages_setup). */
static bool set_hugepages(vms_config *c, const char *value)
{
    uint64_t v;
    uint64_t max = c->hugepagesz == VMS_PG_1G ? UINT64_C(1) << 14 : UINT64_C(1) << 24;
    if (!vms_parse_u64(value, false, &v) || v > max)
        return false;
    if (c->hugepagesz == VMS_PG_2M)
        c->kernel.hugepages_2m = v;
    else if (c->hugepagesz == VMS_PG_1G)
        c->kernel.hugepages_1g = v;
    else
        c->kernel.hugepages = v;
    return true;
}

/* swap.device: a preset for the device kind, latency and bandwidth (docs/SWAP.md). */
static bool set_swap_device(vms_config *c, const char *value)
{
    if (!strcasecmp(value, "ssd")) {
        c->kernel.swap_device = VMS_SWAP_SSD;
        c->kernel.swap_latency_us = 80;
        c->kernel.swap_bandwidth_mbs = 500;
    } else if (!strcasecmp(value, "hdd")) {
        c->kernel.swap_device = VMS_SWAP_HDD;
        c->kernel.swap_latency_us = 10000;
        c->kernel.swap_bandwidth_mbs = 150;
    } else {
        return false;
    }
    return true;
}

/* kswapd.core: "none" (-1) or a core number. */
static bool set_kswapd(vms_config *c, const char *value)
{
    uint64_t v;
    if (!strcasecmp(value, "none")) {
        c->kernel.kswapd_core = -1;
        return true;
    }
    if (!vms_parse_u64(value, false, &v) || v >= VMS_MAX_CORES)
        return false;
    c->kernel.kswapd_core = (int)v;
    return true;
}

static const char *const thp_names[] = {"madvise", "always", "never"};
/* vm.s2, indexed by vms_s2_kind (virt.h); auto: EPT on x86-64, Stage 2 on aarch64. */
static const char *const s2_names[] = {"auto", "ept", "npt", "arm"};
static const char *const thp_cow_names[] = {"split", "copy"};
static const char *const thp_swap_names[] = {"split", "whole"};
static const char *const defrag_names[] = {"madvise", "always", "defer", "defer+madvise", "never"};

/* Index of value in names[0..n), or -1. */
static int name_index(const char *const *names, int n, const char *value)
{
    for (int i = 0; i < n; i++)
        if (!strcasecmp(value, names[i]))
            return i;
    return -1;
}

/* khugepaged.core: "none" (-1) or a core number. */
static bool set_khugepaged(vms_config *c, const char *value)
{
    uint64_t v;
    if (!strcasecmp(value, "none")) {
        c->kernel.khugepaged_core = -1;
        return true;
    }
    if (!vms_parse_u64(value, false, &v) || v >= VMS_MAX_CORES)
        return false;
    c->kernel.khugepaged_core = (int)v;
    return true;
}

/* kcompactd.core: "none" (-1) or a core number. */
static bool set_kcompactd(vms_config *c, const char *value)
{
    uint64_t v;
    if (!strcasecmp(value, "none")) {
        c->kernel.kcompactd_core = -1;
        return true;
    }
    if (!vms_parse_u64(value, false, &v) || v >= VMS_MAX_CORES)
        return false;
    c->kernel.kcompactd_core = (int)v;
    return true;
}

static const char *const shoot_names[] = {"auto", "ipi", "broadcast", "sbi"};

static bool set_shootdown(vms_config *c, const char *value)
{
    for (unsigned i = 0; i < 4; i++)
        if (!strcasecmp(value, shoot_names[i])) {
            c->kernel.shootdown = (vms_shootdown_mode)i;
            return true;
        }
    return false;
}

/* arch: the architecture's format with the current number of levels, else its first. */
static bool set_arch(vms_config *c, const char *value)
{
    const vms_pt_format *f = vms_format_for(value, c->machine.levels);
    if (!f)
        f = vms_format_for(value, 0);
    if (!f || strcmp(f->arch, "teach") == 0) /* the textbooks' machines run no kernel */
        return false;
    c->machine.levels = f->levels;
    c->machine.fmt = strcmp(f->arch, "x86_64") == 0 ? NULL : f;
    return true;
}

/* levels: a number of levels the current architecture has. */
static bool set_levels(vms_config *c, const char *value)
{
    uint64_t v;
    const char *arch = c->machine.fmt ? c->machine.fmt->arch : "x86_64";
    if (!vms_parse_u64(value, false, &v) || v > 8)
        return false;
    const vms_pt_format *f = vms_format_for(arch, (unsigned)v);
    if (!f)
        return false;
    c->machine.levels = f->levels;
    c->machine.fmt = c->machine.fmt ? f : NULL;
    return true;
}

/* Apply value to key k in c; false if the value is not acceptable. */
static bool apply(vms_config *c, const key *k, const char *value, vms_err *err)
{
    switch (k->k) {
    case K_PRESET: {
        vms_config fresh;
        if (vms_config_init(&fresh, value, err) != VMS_OK)
            return false;
        *c = fresh;
        return true;
    }
    case K_BOOL:
        return parse_bool(value, (bool *)field(c, k));
    case K_ARCH:
        return set_arch(c, value);
    case K_LEVELS:
        return set_levels(c, value);
    case K_TLB:
        return parse_tlb(value, (vms_tlb_config *)field(c, k));
    case K_PWC:
        return parse_pwc(value, (vms_pwc_level_config *)field(c, k));
    case K_TLBPOL: {
        const char *pol = policy_name(value, strlen(value));
        vms_tlb_config *t[3] = {&c->machine.mmu.l1i, &c->machine.mmu.l1d, &c->machine.mmu.l2};
        for (int i = 0; pol && i < 3; i++)
            for (unsigned p = 0; p < t[i]->nparts; p++)
                t[i]->part[p].policy = pol;
        return pol != NULL;
    }
    case K_PATH:
        if (strlen(value) >= sizeof c->writeback_dir)
            return false;
        strcpy(c->writeback_dir, value);
        return true;
    case K_SWAPFILE:
        if (strlen(value) >= sizeof c->swap_file)
            return false;
        strcpy(c->swap_file, value);
        return true;
    case K_POLICY:
        if (!vms_page_policy_find(value))
            return false;
        snprintf(c->policy, sizeof c->policy, "%s", value);
        return true;
    case K_SWAPDEV:
        return set_swap_device(c, value);
    case K_KSWAPD:
        return set_kswapd(c, value);
    case K_KHUGE:
        return set_khugepaged(c, value);
    case K_KCOMPACT:
        return set_kcompactd(c, value);
    case K_DEFRAG: {
        int i = name_index(defrag_names, 5, value);
        if (i >= 0)
            c->kernel.thp_defrag = (vms_thp_defrag)i;
        return i >= 0;
    }
    case K_THP: {
        int i = name_index(thp_names, 3, value);
        if (i >= 0)
            c->kernel.thp = (vms_thp_mode)i;
        return i >= 0;
    }
    case K_THPCOW: {
        int i = name_index(thp_cow_names, 2, value);
        if (i >= 0)
            c->kernel.thp_cow = (vms_thp_cow)i;
        return i >= 0;
    }
    case K_THPSWAP: {
        int i = name_index(thp_swap_names, 2, value);
        if (i >= 0)
            c->kernel.thp_swap = (vms_thp_swap)i;
        return i >= 0;
    }
    case K_CACHE:
        return vms_cache_preset(value, &c->machine.cache, err) == VMS_OK;
    case K_CLEVEL:
        return parse_clevel(value, (vms_cache_level_config *)field(c, k));
    case K_CWALK:
        if (strcasecmp(value, "l1") && strcasecmp(value, "l2"))
            return false;
        c->machine.cache.walk_from_l2 = !strcasecmp(value, "l2");
        return true;
    case K_DRAM:
        return vms_dram_preset(value, &c->machine.dram, err) == VMS_OK;
    case K_PCACHE:
        if (!strcasecmp(value, "warm"))
            c->kernel.pagecache = VMS_PAGECACHE_WARM;
        else if (!strcasecmp(value, "cold"))
            c->kernel.pagecache = VMS_PAGECACHE_COLD;
        else if (!strcasecmp(value, "auto"))
            c->kernel.pagecache = VMS_PAGECACHE_AUTO;
        else
            return false;
        return true;
    case K_DPAGE:
        if (strcasecmp(value, "open") && strcasecmp(value, "closed"))
            return false;
        c->machine.dram.closed_page = !strcasecmp(value, "closed");
        return true;
    case K_DMAP: {
        vms_dram_config d = c->machine.dram;
        if (strlen(value) >= sizeof d.map)
            return false;
        snprintf(d.map, sizeof d.map, "%s", value);
        d.on = true; /* validate the string whether or not DRAM is on */
        if (vms_dram_validate(&d, NULL) != VMS_OK)
            return false;
        snprintf(c->machine.dram.map, sizeof c->machine.dram.map, "%s", value);
        return true;
    }
    case K_SHOOT:
        return set_shootdown(c, value);
    case K_S2: {
        int i = name_index(s2_names, 4, value);
        if (i >= 0)
            c->vm.s2 = (unsigned)i;
        return i >= 0;
    }
    case K_PGSIZE: {
        int i = name_index(size_names, VMS_PG_NSIZES, value);
        if (i >= 0)
            c->vm.host_page = (unsigned)i;
        return i >= 0;
    }
    case K_HPSZ:
    case K_DHPSZ: {
        int i = name_index(size_names, VMS_PG_NSIZES, value);
        if (i != VMS_PG_2M && i != VMS_PG_1G)
            return false;
        c->hugepagesz = (vms_pgsize)i; /* Linux: hugepages= goes with the last of either */
        if (k->k == K_DHPSZ)
            c->kernel.default_hugepagesz = (vms_pgsize)i;
        return true;
    }
    case K_HPAGES:
        return set_hugepages(c, value);
    case K_TLBMODE:
        if (strcasecmp(value, "hardware") && strcasecmp(value, "software"))
            return false;
        c->machine.mmu.swtlb.on = !strcasecmp(value, "software");
        return true;
    case K_TLBOP:
        if (strcasecmp(value, "tlbwr") && strcasecmp(value, "tlbwi"))
            return false;
        c->kernel.tlbex.tlbwi = !strcasecmp(value, "tlbwi");
        return true;
    default:
        return set_number(c, k, value);
    }
}

/* Format a size for a message: 4096 -> "4K". */
static void size_str(uint64_t v, char *buf, size_t len)
{
    vms_strbuf sb;
    vms_strbuf_init(&sb, NULL);
    fmt_size(&sb, v);
    snprintf(buf, len, "%s", sb.failed ? "?" : vms_strbuf_str(&sb));
    vms_strbuf_free(&sb);
}

/* What key k accepts, for a bad-value message: the range of a number (and why, for ram),
 * else the key's description. */
static void expected(const key *k, char *buf, size_t len)
{
    char lo[32], hi[32];
    switch (k->k) {
    case K_SIZE:
        size_str(k->min, lo, sizeof lo);
        size_str(k->max, hi, sizeof hi);
        snprintf(buf, len, "a size from %s to %s (a multiple of 4K; K/M/G/T suffixes)%s", lo, hi,
                 k->off == M(ram_bytes)
                     ? ": RAM must fit in the physical address space, 2^maxphyaddr bytes, "
                       "which vmsim models up to 2^46 (with room for the device window)"
                     : "");
        return;
    case K_U64:
    case K_UINT:
    case K_U32:
        if (k->off == M(levels))
            break; /* "4 (48-bit) or 5 (LA57, 57-bit)" says it better */
        snprintf(buf, len, "a number from %llu to %llu%s", (unsigned long long)k->min,
                 (unsigned long long)k->max,
                 k->off == KC(fault_around_pages) ? ", a power of two" : "");
        return;
    case K_SEED:
        snprintf(buf, len, "a number from 0 to %llu", (unsigned long long)UINT64_MAX);
        return;
    case K_KSWAPD:
        snprintf(buf, len, "none or a core from 0 to %u", VMS_MAX_CORES - 1);
        return;
    default:
        break;
    }
    snprintf(buf, len, "%s", k->help);
}

vms_status vms_config_init(vms_config *c, const char *preset, vms_err *err)
{
    memset(c, 0, sizeof *c);
    vms_status st = vms_machine_preset(preset ? preset : "skylake", &c->machine, err);
    if (st != VMS_OK)
        return st;
    vms_kernel_config_default(&c->kernel);
    c->kernel.seed = c->machine.seed;
    c->kernel.writeback_dir = NULL;
    c->writeback_dir[0] = '\0'; /* a temporary directory (the CLI makes one) */
    strcpy(c->policy, "twolist");
    vms_config_vm_default(&c->vm, &c->machine);
    return VMS_OK;
}

/*
 * `design` (radix | hashed | inverted: machine.design, vmsim/arch/hashed.h) is a key
 * outside the table above: it is listed by the dump (and so the JSON) only when it is
 * not radix, so that every radix run prints the configuration it printed before the
 * designs existed. `vmsim config --keys` lists it after the table's keys.
 */
const char vms_config_design_help[] =
    "translation design: radix (the architecture's tree), hashed (a PowerPC-style hashed "
    "page table) or inverted (an inverted page table); x86_64 only";

static vms_status set_design(vms_config *c, const char *value, const char *where, vms_err *err)
{
    vms_design d;
    if (!vms_design_parse(value, &d)) {
        char q[96];
        vmsi_quote(value, strlen(value), q);
        return vmsi_err(err, VMS_ERR_INVAL,
                        "%s: bad value '%s' for design: expected radix, hashed or inverted", where,
                        q);
    }
    c->machine.design = d;
    return VMS_OK;
}

vms_status vms_config_set(vms_config *c, const char *key_name, const char *value, const char *where,
                          vms_err *err)
{
    if (strcmp(key_name, "design") == 0)
        return set_design(c, value, where, err);
    const key *k = find_key(key_name);
    if (!k) {
        char q[96];
        vmsi_quote(key_name, strlen(key_name), q);
        return vmsi_err(err, VMS_ERR_NOTFOUND,
                        "%s: unknown key '%s' (`vmsim config --keys` lists them)", where, q);
    }
    vms_config tmp = *c;
    vms_err inner = {0};
    if (!apply(&tmp, k, value, &inner)) {
        char q[96], want[256];
        vmsi_quote(value, strlen(value), q);
        expected(k, want, sizeof want);
        return vmsi_err(err, VMS_ERR_INVAL, "%s: bad value '%s' for %s: expected %s%s%s", where, q,
                        key_name, want, inner.msg[0] ? "; " : "", inner.msg);
    }
    *c = tmp;
    return VMS_OK;
}

vms_status vms_config_set_arg(vms_config *c, const char *arg, vms_err *err)
{
    const char *eq = strchr(arg, '=');
    char name[128];
    if (!eq || eq == arg || (size_t)(eq - arg) >= sizeof name)
        return vmsi_err(err, VMS_ERR_INVAL, "--set: '%s': expected key=value", arg);
    memcpy(name, arg, (size_t)(eq - arg));
    name[eq - arg] = '\0';
    return vms_config_set(c, name, eq + 1, "--set", err);
}

/*
 * inih reads through these readers, which see every physical line first (any length,
 * up to LINE_MAX_LEN): they count lines so that errors name the line of the key being set
 * (inih's handler does not receive it), refuse a NUL byte, strip inline comments (`;` or
 * `#` after whitespace, which Debian's inih build leaves in the value for `#`), and set
 * lines longer than inih's fixed 200-byte buffer themselves — inih would cut them into
 * pieces silently — passing inih an empty line instead so its line count stays right.
 */
#define LINE_MAX_LEN 8192

typedef struct loader {
    FILE *f;          /* reading a file, or … */
    const char *text; /* … the rest of a string */
    const char *path;
    unsigned line;
    vms_config *c;
    vms_err *err;
    vms_status st;
    char section[64];       /* the section in force (as inih keeps it) */
    char buf[LINE_MAX_LEN]; /* the current physical line */
} loader;

/* Read the next physical line of l into l->buf (without its '\n'); its length, or -1 at
 * the end or after an error (l->st). */
static long next_line(loader *l)
{
    size_t n = 0;
    int ch = 0;
    bool any = false;
    if (l->f) {
        while ((ch = getc(l->f)) != EOF && ch != '\n') {
            any = true;
            if (n < sizeof l->buf - 1)
                l->buf[n] = (char)ch;
            n++;
        }
        if (ferror(l->f)) {
            l->st = vmsi_err(l->err, VMS_ERR_IO, "%s:%u: read error: %s", l->path, l->line + 1,
                             strerror(errno));
            return -1;
        }
        if (ch == EOF && !any)
            return -1;
    } else {
        if (!*l->text)
            return -1;
        size_t len = strcspn(l->text, "\n");
        n = len;
        memcpy(l->buf, l->text, len < sizeof l->buf - 1 ? len : sizeof l->buf - 1);
        l->text += len + (l->text[len] == '\n');
    }
    l->line++;
    if (n >= sizeof l->buf - 1) {
        l->st = vmsi_err(l->err, VMS_ERR_PARSE, "%s:%u: line longer than %u bytes", l->path,
                         l->line, LINE_MAX_LEN - 2);
        return -1;
    }
    if (memchr(l->buf, '\0', n)) {
        l->st = vmsi_err(l->err, VMS_ERR_PARSE, "%s:%u: NUL byte in the line", l->path, l->line);
        return -1;
    }
    l->buf[n] = '\0';
    return (long)n;
}

static bool is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r';
}

/* Cut an inline comment (`;` or `#` after whitespace) off s; returns the new length. */
static size_t cut_comment(char *s, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if ((s[i] == ';' || s[i] == '#') && is_blank(s[i - 1])) {
            s[i] = '\0';
            return i;
        }
    return n;
}

/* s without leading and trailing blanks (in place). */
static char *trim(char *s)
{
    while (is_blank(*s))
        s++;
    size_t n = strlen(s);
    while (n && is_blank(s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Set a `name = value` (or `name: value`) line too long for inih; false on failure. */
static bool set_long_line(loader *l, char *s)
{
    char *eq = s + strcspn(s, "=:");
    if (is_blank(l->buf[0]) || !*eq) {
        l->st = vmsi_err(l->err, VMS_ERR_PARSE, "%s:%u: expected 'key = value' on a long line",
                         l->path, l->line);
        return false;
    }
    *eq = '\0';
    char full[256], where[VMS_CONFIG_PATH_MAX + 32];
    const char *name = trim(s);
    snprintf(full, sizeof full, "%s%s%s", l->section, *l->section ? "." : "", name);
    snprintf(where, sizeof where, "%s:%u", l->path, l->line);
    l->st = vms_config_set(l->c, full, trim(eq + 1), where, l->err);
    return l->st == VMS_OK;
}

/* The ini_reader: the next line for inih (see above), or NULL at the end or on error. */
static char *read_line(char *str, int num, void *stream)
{
    loader *l = stream;
    long got = next_line(l);
    if (got < 0 || num < 2)
        return NULL;
    char *s = l->buf;
    size_t n = (size_t)got;
    while (is_blank(*s))
        s++;
    if (*s != ';' && *s != '#')
        n = cut_comment(l->buf, n);
    if (*s == '[') {
        size_t e = strcspn(s + 1, "]");
        snprintf(l->section, sizeof l->section, "%.*s", (int)e, s + 1);
    }
    if (n + 2 > (size_t)num) {
        if (*s == ';' || *s == '#') {
            n = 0;
        } else if (*s == '[') {
            l->st =
                vmsi_err(l->err, VMS_ERR_PARSE, "%s:%u: section name too long", l->path, l->line);
            return NULL;
        } else if (!set_long_line(l, s)) {
            return NULL;
        } else {
            n = 0; /* set: inih gets an empty line */
        }
    }
    memcpy(str, l->buf, n);
    str[n] = '\n';
    str[n + 1] = '\0';
    return str;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
    loader *l = user;
    char full[256], where[VMS_CONFIG_PATH_MAX + 32];
    snprintf(full, sizeof full, "%s%s%s", section, *section ? "." : "", name);
    snprintf(where, sizeof where, "%s:%u", l->path, l->line);
    l->st = vms_config_set(l->c, full, value, where, l->err);
    return l->st == VMS_OK;
}

/* Run inih over l and turn its result into a status. */
static vms_status parse_with(loader *l)
{
    int rc = ini_parse_stream(read_line, l, on_key, l);
    if (l->st != VMS_OK)
        return l->st;
    if (rc < 0)
        return vmsi_err(l->err, VMS_ERR_IO, "%s: read error: out of memory", l->path);
    if (rc > 0)
        return vmsi_err(l->err, VMS_ERR_PARSE,
                        "%s:%d: expected 'key = value', '[section]' or a comment", l->path, rc);
    return VMS_OK;
}

vms_status vms_config_load(vms_config *c, const char *path, vms_err *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return vmsi_err(err, VMS_ERR_IO, "%s: cannot open config file: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        return vmsi_err(err, VMS_ERR_IO, "%s: is a directory, not a config file", path);
    }
    loader l = {.f = f, .path = path, .c = c, .err = err};
    vms_status s = parse_with(&l);
    fclose(f);
    return s;
}

vms_status vms_config_parse(vms_config *c, const char *name, const char *text, vms_err *err)
{
    loader l = {.text = text, .path = name, .c = c, .err = err};
    return parse_with(&l);
}

/* Does the dump list key k? Not the derived keys (preset, tlb.policy); the software-
 * TLB keys only with tlb.mode = software, so a hardware configuration's dump is what it
 * was before they existed (every key left out has its default then). */
static bool shown(const vms_config *c, const key *k)
{
    if (k->k == K_PRESET || k->k == K_TLBPOL || k->k == K_HPSZ)
        return false;
    /* Keys added with hugetlbfs (issue 12): listed when set, so that a configuration
     * without them dumps as it did before they existed. */
    if (k->k == K_DHPSZ)
        return c->kernel.default_hugepagesz != VMS_PG_2M;
    if (k->off == KC(hugepages_2m) || k->off == KC(nr_overcommit_hugepages_1g))
        return *(const uint64_t *)cfield(c, k) != 0;
    bool sw_key = k->k == K_TLBMODE || k->k == K_TLBOP || k->off == M(mmu.swtlb.entries) ||
                  k->off == M(mmu.swtlb.wired) || k->off == KC(tlbex.refill_cycles) ||
                  k->off == KC(tlbex.exc_cycles);
    return !sw_key || c->machine.mmu.swtlb.on;
}

bool vms_config_key_shown(const vms_config *c, unsigned i)
{
    return i < NKEYS && shown(c, &keys[i]);
}

vms_status vms_config_dump(const vms_config *c, vms_strbuf *sb)
{
    vms_strbuf_printf(sb, "# vmsim configuration (load with --config FILE)\n");
    for (size_t i = 0; i < NKEYS; i++) {
        const key *k = &keys[i];
        if (!shown(c, k))
            continue;
        vms_strbuf_printf(sb, "%s = ", k->name);
        switch (k->k) {
        case K_SIZE:
            fmt_size(sb, *(const uint64_t *)cfield(c, k));
            break;
        case K_U64:
        case K_HPAGES:
            vms_strbuf_printf(sb, "%llu", (unsigned long long)*(const uint64_t *)cfield(c, k));
            break;
        case K_DHPSZ:
            vms_strbuf_printf(sb, "%s", size_names[c->kernel.default_hugepagesz % VMS_PG_NSIZES]);
            break;
        case K_SEED:
            vms_strbuf_printf(sb, "%llu", (unsigned long long)c->machine.seed);
            break;
        case K_UINT:
        case K_LEVELS:
            vms_strbuf_printf(sb, "%u", *(const unsigned *)cfield(c, k));
            if (k->k == K_LEVELS && c->machine.design != VMS_DESIGN_RADIX)
                vms_strbuf_printf(sb, "\ndesign = %s", vms_design_name(c->machine.design));
            break;
        case K_ARCH:
            vms_strbuf_printf(sb, "%s", c->machine.fmt ? c->machine.fmt->arch : "x86_64");
            break;
        case K_U32:
            vms_strbuf_printf(sb, "%u", (unsigned)*(const uint32_t *)cfield(c, k));
            break;
        case K_BOOL:
            vms_strbuf_printf(sb, "%s", *(const bool *)cfield(c, k) ? "on" : "off");
            break;
        case K_TLB:
            fmt_tlb(sb, (const vms_tlb_config *)cfield(c, k));
            geometry_tlb(sb, (const vms_tlb_config *)cfield(c, k));
            break;
        case K_PWC:
            fmt_pwc(sb, (const vms_pwc_level_config *)cfield(c, k));
            geometry_pwc(sb, (const vms_pwc_level_config *)cfield(c, k));
            break;
        case K_PATH:
            vms_strbuf_printf(sb, "%s", c->writeback_dir);
            break;
        case K_SWAPFILE:
            vms_strbuf_printf(sb, "%s", c->swap_file);
            break;
        case K_POLICY:
            vms_strbuf_printf(sb, "%s", c->policy);
            break;
        case K_SWAPDEV:
            vms_strbuf_printf(sb, "%s", c->kernel.swap_device == VMS_SWAP_HDD ? "hdd" : "ssd");
            break;
        case K_CACHE:
            vms_strbuf_printf(sb, "%s",
                              c->machine.cache.on && c->machine.cache.name ? c->machine.cache.name
                                                                           : "off");
            break;
        case K_CLEVEL:
            fmt_clevel(sb, (const vms_cache_level_config *)cfield(c, k));
            break;
        case K_CWALK:
            vms_strbuf_printf(sb, "%s", c->machine.cache.walk_from_l2 ? "l2" : "l1");
            break;
        case K_DRAM:
            vms_strbuf_printf(sb, "%s",
                              c->machine.dram.on && c->machine.dram.name ? c->machine.dram.name
                                                                         : "off");
            break;
        case K_PCACHE:
            vms_strbuf_printf(sb, "%s",
                              c->kernel.pagecache == VMS_PAGECACHE_WARM   ? "warm"
                              : c->kernel.pagecache == VMS_PAGECACHE_COLD ? "cold"
                                                                          : "auto");
            break;
        case K_DPAGE:
            vms_strbuf_printf(sb, "%s", c->machine.dram.closed_page ? "closed" : "open");
            break;
        case K_DMAP:
            vms_strbuf_printf(sb, "%s", c->machine.dram.map);
            break;
        case K_KSWAPD:
            if (c->kernel.kswapd_core < 0)
                vms_strbuf_printf(sb, "none");
            else
                vms_strbuf_printf(sb, "%d", c->kernel.kswapd_core);
            break;
        case K_SHOOT:
            vms_strbuf_printf(sb, "%s", shoot_names[c->kernel.shootdown]);
            break;
        case K_S2:
            vms_strbuf_printf(sb, "%s", s2_names[c->vm.s2 < 4 ? c->vm.s2 : 0]);
            break;
        case K_PGSIZE:
            vms_strbuf_printf(sb, "%s", size_names[c->vm.host_page % VMS_PG_NSIZES]);
            break;
        case K_TLBMODE:
            vms_strbuf_printf(sb, "%s", c->machine.mmu.swtlb.on ? "software" : "hardware");
            break;
        case K_TLBOP:
            vms_strbuf_printf(sb, "%s", c->kernel.tlbex.tlbwi ? "tlbwi" : "tlbwr");
            break;
        case K_THP:
            vms_strbuf_printf(sb, "%s", thp_names[c->kernel.thp]);
            break;
        case K_THPCOW:
            vms_strbuf_printf(sb, "%s", thp_cow_names[c->kernel.thp_cow]);
            break;
        case K_THPSWAP:
            vms_strbuf_printf(sb, "%s", thp_swap_names[c->kernel.thp_swap]);
            break;
        case K_KHUGE:
            if (c->kernel.khugepaged_core < 0)
                vms_strbuf_printf(sb, "none");
            else
                vms_strbuf_printf(sb, "%d", c->kernel.khugepaged_core);
            break;
        case K_KCOMPACT:
            if (c->kernel.kcompactd_core < 0)
                vms_strbuf_printf(sb, "none");
            else
                vms_strbuf_printf(sb, "%d", c->kernel.kcompactd_core);
            break;
        case K_DEFRAG:
            vms_strbuf_printf(sb, "%s", defrag_names[c->kernel.thp_defrag]);
            break;
        default:
            break;
        }
        vms_strbuf_printf(sb, "\n");
    }
    return sb->failed ? VMS_ERR_NOMEM : VMS_OK;
}

vms_kernel_config vms_config_kernel(const vms_config *c)
{
    vms_kernel_config k = c->kernel;
    k.writeback_dir = c->writeback_dir[0] ? c->writeback_dir : NULL;
    k.swap_file = c->swap_file;
    k.policy = c->policy;
    return k;
}

unsigned vms_config_nkeys(void)
{
    return (unsigned)NKEYS;
}

vms_config_key vms_config_key_at(unsigned i)
{
    if (i >= NKEYS)
        return (vms_config_key){NULL, NULL};
    return (vms_config_key){keys[i].name, keys[i].help};
}

vms_status vms_config_json(const vms_config *c, vms_strbuf *sb)
{
    vms_strbuf ini;
    vms_strbuf_init(&ini, sb->alloc);
    vms_status st = vms_config_dump(c, &ini);
    vms_strbuf_append(sb, "{", 1);
    bool first = true;
    for (const char *p = vms_strbuf_str(&ini); st == VMS_OK && *p;) {
        const char *eol = strchr(p, '\n'), *eq = strstr(p, " = ");
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        if (*p != '#' && eq && eq < p + n) {
            char name[128], val[VMS_CONFIG_PATH_MAX + 64];
            /* The value ends before a trailing comment ("  ; 1536 entries = …"). */
            const char *end = p + n, *cmt = strstr(eq + 3, "  ; ");
            if (cmt && cmt < end)
                end = cmt;
            snprintf(name, sizeof name, "%.*s", (int)(eq - p), p);
            snprintf(val, sizeof val, "%.*s", (int)(end - eq - 3), eq + 3);
            if (!first)
                vms_strbuf_append(sb, ",", 1);
            first = false;
            vms_strbuf_json_str(sb, name);
            vms_strbuf_append(sb, ":", 1);
            vms_strbuf_json_str(sb, val);
        }
        p += n + (eol != NULL);
    }
    vms_strbuf_free(&ini);
    if (st != VMS_OK)
        return st;
    return vms_strbuf_append(sb, "}", 1);
}

vms_status vms_config_boot(const vms_config *c, vms_machine **m, vms_kernel **k, vms_err *err)
{
    *m = NULL;
    *k = NULL;
    vms_kernel_config kc = vms_config_kernel(c);
    vms_status st = vms_machine_create(NULL, &c->machine, m, err);
    if (st == VMS_OK)
        st = vms_kernel_create(*m, &kc, k, err);
    if (st != VMS_OK) {
        vms_machine_destroy(*m);
        *m = NULL;
    }
    return st;
}

void vms_config_vm_default(vms_config_vm *v, const vms_machine_config *mc)
{
    *v = (vms_config_vm){.s2 = 0, /* auto */
                         .guest_levels = 4,
                         .host_levels = 4,
                         .host_page = VMS_PG_4K,
                         .ad = true,
                         .mem = UINT64_C(1) << 30,
                         .host_mem = UINT64_C(64) << 20,
                         .exit_cycles = 1200,
                         .guest_pwc = mc->mmu.pwc};
}

void vms_config_vm_tlb(const vms_config_vm *v, vms_tlb_config *out)
{
    const vms_pwc_level_config *p = &v->nested_tlb;
    memset(out, 0, sizeof *out);
    if (!p->entries)
        return;
    unsigned ways = p->ways ? p->ways : p->entries;
    out->nparts = 1;
    out->part[0] = (vms_tlb_part_config){VMS_TLB_SIZES_ALL, p->entries / ways, ways, p->policy};
}

size_t vms_config_size(void)
{
    return sizeof(vms_config);
}
