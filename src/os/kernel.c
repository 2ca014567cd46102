/*
 * kernel.c — booting and shutting down the simulated kernel: the frame allocator over
 * the machine's RAM, the shared zero page, init_mm with its direct map of physical
 * memory, and the cores' paging mode; plus the log and the frame-allocation helper.
 *
 * The direct map (Linux arch/x86/mm/init_64.c, kernel_physical_mapping_init): every
 * 1 GiB (or 2 MiB) block of physical address space that holds RAM is mapped at
 * page_offset_base + pa by a supervisor-only (US = 0), global, non-executable leaf.
 * Its upper-level tables belong to init_mm; each process's root copies init_mm's
 * kernel-half entries (pgd_alloc), so they are shared and never freed with a process.
 * Invariants: frame 0 is reserved; the zero page is all zeros and never written through
 * a PTE (always mapped read-only); init_mm's tables are flagged PAGETABLE.
 */
#include <ctype.h>
#include <stdio.h>

#include "os/os_impl.h"
#include "vmsim/virt.h"
#include "os/mm/mm_impl.h"
#include "os/reclaim/reclaim_impl.h"
#include "os/dev/dev_impl.h"
#include "hw/tap.h"

void vms_kernel_config_default(vms_kernel_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->fault_around_pages = 16;
    cfg->zero_page = true;
    cfg->pcid = true;
    cfg->aslr = true;
    cfg->seed = 0;
    cfg->direct_map_1g = true;
    cfg->stack_limit = UINT64_C(8) << 20;
    cfg->writeback_dir = NULL;
    cfg->writeback_in_place = false;
    cfg->pagecache = VMS_PAGECACHE_AUTO;
    /* Orders of magnitude for a 3 GHz core: a minor fault's software path ~0.3 µs, a
     * 4 KiB clear ~400 cycles and copy ~800 at ~10/5 bytes per cycle, an SSD page read
     * ~80 µs, an IPI round trip ~1 µs (seed 002: "thousands of cycles"). */
    cfg->cost.fault_entry = 1000;
    cfg->cost.zero_page = 400;
    cfg->cost.copy_page = 800;
    cfg->cost.file_read = 250000;
    cfg->cost.writeback = 250000;
    cfg->cost.ipi = 3000;
    cfg->cost.ipi_send = 200;
    cfg->cost.ipi_latency = 1500;
    cfg->cost.ipi_hop = 1000;
    /* RISC-V SBI remote fences: assumptions, not measurements (no published cycle
     * counts found): the ecall round trip as a fault's delivery (500), the M-mode
     * handler half of the kernel's IPI handler (no irq entry, no flush_tlb_func). */
    cfg->cost.sbi_ecall = 500;
    cfg->cost.sbi_rfence = 1500;
    cfg->shootdown = VMS_SHOOTDOWN_AUTO;
    cfg->smep = cfg->smap = cfg->pke = true;
    cfg->tlb_batch = true;
    vms_tlbex_config_default(&cfg->tlbex);
    cfg->sched_slice = 2250000;
    cfg->cost.syscall = 150;
    cfg->cost.ctx_switch = 2000;
    /* Memory pressure (docs/SWAP.md): no swap unless configured; an SSD model. */
    cfg->swap_bytes = 0;
    cfg->swap_device = VMS_SWAP_SSD;
    cfg->swap_latency_us = 80;
    cfg->swap_bandwidth_mbs = 500;
    cfg->policy = NULL;
    cfg->kswapd_core = -1;
    /* Huge pages (docs/HUGEPAGES.md): THP as this machine's kernel (madvise), no pool. */
    cfg->thp = VMS_THP_MADVISE;
    cfg->thp_cow = VMS_THP_COW_SPLIT;
    cfg->thp_max_ptes_none = 511;
    cfg->khugepaged_core = -1;
    cfg->khugepaged_pages = 4096;
    cfg->khugepaged_sleep = UINT64_C(30000000000); /* 10 s (scan_sleep_millisecs) at 3 GHz */
    cfg->thp_max_ptes_swap = 64;
    cfg->thp_max_ptes_shared = 256;
    cfg->thp_defrag = VMS_THP_DEFRAG_MADVISE;
    cfg->kcompactd_core = -1;
    cfg->default_hugepagesz = VMS_PG_2M;
}

/* Format a log line, keep it in the dmesg ring, and hand it to the callback. */
void vmsi_log(vms_kernel *k, vms_log_level lvl, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (k->dmesg) {
        size_t n = strlen(line);
        n = n < VMSI_DMESG_LINE - 1 ? n : VMSI_DMESG_LINE - 1;
        memcpy(k->dmesg[k->dmesg_next], line, n);
        k->dmesg[k->dmesg_next][n] = '\0';
        k->dmesg_next = (k->dmesg_next + 1) % VMSI_DMESG_LINES;
        k->dmesg_count += k->dmesg_count < VMSI_DMESG_LINES;
    }
    if (k->log)
        k->log(k->log_ud, lvl, line);
}

void vmsi_panic(vms_kernel *k, const char *fmt, ...)
{
    if (k->panicked)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(k->panic_msg, sizeof k->panic_msg, fmt, ap);
    va_end(ap);
    k->panicked = true;
    vmsi_log(k, VMS_LOG_ERR, "Kernel panic - not syncing: %s", k->panic_msg);
}

vms_status vmsi_panic_status(const vms_kernel *k, vms_err *err)
{
    if (!k->panicked)
        return VMS_OK;
    return vmsi_err(err, VMS_ERR_PANIC, "Kernel panic - not syncing: %s", k->panic_msg);
}

bool vms_kernel_panicked(const vms_kernel *k, const char **reason)
{
    if (reason)
        *reason = k->panicked ? k->panic_msg : NULL;
    return k->panicked;
}

/* Case-insensitive: does s contain needle? */
static bool contains_ci(const char *s, const char *needle)
{
    size_t n = strlen(needle);
    for (; *s; s++) {
        size_t i = 0;
        while (i < n && s[i] && tolower((unsigned char)s[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n)
            return true;
    }
    return n == 0;
}

vms_status vms_kernel_dmesg(const vms_kernel *k, const char *grep, vms_strbuf *sb)
{
    unsigned first = (k->dmesg_next + VMSI_DMESG_LINES - k->dmesg_count) % VMSI_DMESG_LINES;
    for (unsigned i = 0; i < k->dmesg_count; i++) {
        const char *l = k->dmesg[(first + i) % VMSI_DMESG_LINES];
        if (!grep || contains_ci(l, grep))
            vms_strbuf_printf(sb, "%s\n", l);
    }
    return sb->failed ? VMS_ERR_NOMEM : VMS_OK;
}

void vms_kernel_pagecache_auto(vms_kernel *k, vms_pagecache mode)
{
    if (k->cfg.pagecache == VMS_PAGECACHE_AUTO)
        k->cfg.pagecache = mode;
}

void vms_kernel_set_log(vms_kernel *k, vms_log_fn fn, void *ud)
{
    k->log = fn;
    k->log_ud = fn ? ud : NULL;
}

/* The core running CPU `core`: the machine's own, or the platform's (a vCPU, which the
 * platform may first have to load on a host core). */
vms_core *vmsi_core(vms_kernel *k, unsigned core)
{
    if (k->on_plat)
        return k->plat.core(k->plat.ud, core);
    vms_core *c = core < k->ncores ? k->cores[core] : NULL; /* vms_machine_core's answer */
    vms_core_vm_exit(c); /* a vCPU there exits first (an interrupt): no-op otherwise */
    return c;
}

uint64_t vmsi_core_clock(vms_kernel *k, unsigned core)
{
    if (!k->on_plat) /* a vCPU running there keeps running: reading the time is no exit */
        return vms_core_cycles(core < k->ncores ? k->cores[core] : NULL);
    return k->plat.cycles ? k->plat.cycles(k->plat.ud, core)
                          : vms_core_cycles(k->plat.core(k->plat.ud, core));
}

/* Charge kernel work to a core's clock and to the kernel's total. */
void vmsi_charge(vms_kernel *k, unsigned core, uint64_t cycles)
{
    if (k->in_kswapd && (core == VMSI_NO_CORE || (int)core == k->cfg.kswapd_core))
        k->st.kswapd_cycles += cycles;
    if (k->in_khugepaged)
        k->st.khugepaged_cycles += cycles;
    if (k->in_kcompactd)
        k->st.kcompactd_cycles += cycles;
    if (core != VMSI_NO_CORE) {
        if (k->on_plat && k->plat.add_cycles) /* no switch: vCPUs may share a host core */
            k->plat.add_cycles(k->plat.ud, core, cycles);
        else
            vms_core_add_cycles(vmsi_core(k, core), cycles);
    }
    k->st.kernel_cycles += cycles;
}

/* The mobility type of an allocation of frames with these flags (Linux's
 * gfp_migratetype): anonymous and page-cache pages are movable (GFP_HIGHUSER_MOVABLE);
 * page tables, kernel buffers and the zero page are not (GFP_KERNEL). It matters only with
 * kernel.mobility_grouping. */
static vms_migratetype alloc_type(uint32_t flags)
{
    return (flags & (VMS_FRAME_ANON | VMS_FRAME_FILE)) ? VMS_MT_MOVABLE : VMS_MT_UNMOVABLE;
}

/*
 * Allocate 2^order frames, zero them (discarding their host bytes: RAM reads zeros),
 * and set `flags`; from a pageblock of the mobility type the flags imply (alloc_type). Below the
 * min watermark, and when no block is free, reclaim first (reclaim.c): any frame not held by a
 * reference beyond its mappings and caches may be evicted meanwhile, so a caller keeping a frame
 * across this call holds a reference. VMS_ERR_NOTFOUND when simulated RAM has no such block even
 * after reclaim.
 */
vms_status vmsi_alloc_frames(vms_kernel *k, unsigned order, uint32_t flags, uint64_t *pfn,
                             vms_err *err)
{
    vmsi_reclaim_before_alloc(k);
    vms_migratetype mt = alloc_type(flags);
    vms_status st = vms_frames_alloc_mt(k->fr, order, mt, pfn, NULL);
    while (st == VMS_ERR_NOTFOUND && vmsi_direct_reclaim(k, order))
        st = vms_frames_alloc_mt(k->fr, order, mt, pfn, NULL);
    if (st != VMS_OK)
        return vmsi_err(err, st, "order-%u block: %s", order,
                        st == VMS_ERR_NOTFOUND ? "out of frames after reclaim"
                                               : "out of host memory");
    /* On a platform (a VM) the zeroing can fail (the host cannot back the frame): the
     * frame must not be handed out with an earlier owner's bytes. */
    if (vmsi_ram_fill(k, *pfn << VMS_PAGE_SHIFT, 0, (size_t)(VMS_PAGE_SIZE << order)) != VMS_OK) {
        vms_frames_free(k->fr, *pfn, order, NULL);
        return vmsi_err(err, VMS_ERR_NOMEM, "order-%u block: the platform could not zero it",
                        order);
    }
    if (flags)
        vms_frames_set_flags(k->fr, *pfn, flags, 0);
    return VMS_OK;
}

/*
 * A zeroed page-table frame whose host bytes already exist, so that writing its entries
 * can never fail later for lack of host memory (RAM is sparse: a discarded frame gets
 * host memory on its first write). VMS_ERR_NOMEM / VMS_ERR_NOTFOUND as for frames.
 */
vms_status vmsi_alloc_table_frame(vms_kernel *k, uint64_t *pfn)
{
    vms_status st = vmsi_alloc_frames(k, 0, VMS_FRAME_PAGETABLE, pfn, NULL);
    if (st == VMS_OK && !vmsi_ram_frame(k, *pfn)) {
        vms_frames_set_flags(k->fr, *pfn, 0, VMS_FRAME_PAGETABLE);
        vms_frames_put(k->fr, *pfn, NULL);
        st = VMS_ERR_NOMEM;
    }
    return st;
}

/* vms_pt_ops.alloc_table of every kernel-owned tree (ud: its vmsi_table_ops). */
static vms_status table_alloc(void *ud, uint64_t *pa)
{
    vmsi_table_ops *t = ud;
    uint64_t pfn = 0;
    vms_status st = vmsi_alloc_table_frame(t->k, &pfn);
    *pa = pfn << VMS_PAGE_SHIFT;
    for (unsigned i = 0; st == VMS_OK && i < 2; i++)
        if (t->count[i])
            (*t->count[i])++;
    return st;
}

void vmsi_table_free(vmsi_table_ops *t, uint64_t pa)
{
    uint64_t pfn = pa >> VMS_PAGE_SHIFT;
    vms_frames_set_flags(t->k->fr, pfn, 0, VMS_FRAME_PAGETABLE);
    vms_frames_put(t->k->fr, pfn, NULL);
    for (unsigned i = 0; i < 2; i++)
        if (t->count[i])
            (*t->count[i])--;
}

/* vms_pt_ops.free_table of every kernel-owned tree. */
static void table_free(void *ud, uint64_t pa)
{
    vmsi_table_free(ud, pa);
}

vms_pt_ops vmsi_table_pt_ops(vmsi_table_ops *t)
{
    return (vms_pt_ops){table_alloc, table_free, t};
}

/* Map every RAM block of the physical address space at page_offset_base. */
static vms_status build_direct_map(vms_kernel *k, vms_err *err)
{
    vms_pgsize size = k->cfg.direct_map_1g ? VMS_PG_1G : VMS_PG_2M;
    uint64_t blk = vms_pgsize_bytes(size);
    unsigned prot = VMS_PGPROT_R | VMS_PGPROT_W | VMS_PGPROT_G | VMS_PGPROT_A | VMS_PGPROT_D;
    size_t n;
    const vms_frames_range *r = vms_frames_ranges(k->fr, &n);
    for (size_t i = 0; i < n; i++) {
        uint64_t lo = (r[i].base_pfn << VMS_PAGE_SHIFT) & ~(blk - 1);
        uint64_t hi = (r[i].base_pfn + r[i].npages) << VMS_PAGE_SHIFT;
        for (uint64_t pa = lo; pa < hi; pa += blk) {
            if (vms_pt_lookup(&k->init_pt, k->page_offset + pa, NULL, NULL, NULL))
                continue; /* shared with the previous range */
            vms_status st = vms_pt_map_prot(&k->init_pt, k->page_offset + pa, pa, size, prot, err);
            if (st != VMS_OK)
                return st;
        }
    }
    return VMS_OK;
}

static vms_status check_config(const vms_kernel_config *cfg, vms_err *err)
{
    unsigned fa = cfg->fault_around_pages;
    if (fa == 0 || fa > 512 || (fa & (fa - 1)))
        return vmsi_err(err, VMS_ERR_INVAL,
                        "kernel.fault_around %u: expected a power of two in 1 … 512", fa);
    if (cfg->stack_limit < (UINT64_C(128) << 10) || (cfg->stack_limit & VMS_PAGE_MASK))
        return vmsi_err(err, VMS_ERR_INVAL,
                        "kernel.stack_limit %llu: expected a multiple of 4096, at least 128 KiB",
                        (unsigned long long)cfg->stack_limit);
    return VMS_OK;
}

/* Allocator, frames, zero page, init_mm. Undone by vms_kernel_destroy on failure. */
static vms_status boot_memory(vms_kernel *k, vms_err *err)
{
    const vms_machine_config *mc = vms_machine_get_config(k->m);
    vms_frames_range ranges[2];
    size_t nr = vms_frames_layout_pc(k->on_plat ? k->plat.ram_bytes : mc->ram_bytes, ranges);
    vms_frames_config fc = {ranges, nr, VMS_FRAMES_FIT_BUDDY, k->cfg.mobility_grouping};
    vms_status st = vms_frames_create(k->a, &fc, &k->fr, err);
    if (st == VMS_OK)
        st = vms_frames_reserve(k->fr, 0, 1, err);
    if (st == VMS_OK)
        st = vmsi_alloc_frames(k, 0, VMS_FRAME_ZERO, &k->zero_pfn, err);
    if (st != VMS_OK)
        return st;
    k->init_tops = (vmsi_table_ops){k, {NULL, NULL}};
    vms_pt_ops ops = vmsi_table_pt_ops(&k->init_tops);
    st = vms_pt_init_format(&k->init_pt, k->bus, k->fmt, &ops, err);
    if (st != VMS_OK) {
        k->init_pt.root = 0;
        return st;
    }
    return build_direct_map(k, err);
}

/*
 * Protection as Linux turns it on when the CPU has it (x86-64 only; arch/x86/kernel/cpu/
 * common.c setup_smep, setup_smap, setup_pku): CR4.SMEP (no supervisor fetch from user
 * pages), CR4.SMAP (no supervisor data access to user pages unless RFLAGS.AC: the
 * kernel's own user accesses are STAC … CLAC), CR4.PKE (protection keys, PKRU per
 * task, a new program's PKRU init_pkru_value = 0x55555554: every key but 0
 * access-disabled until pkey_alloc). kernel.smep/smap/pke turn each off.
 */
static vms_status protect_core(vms_kernel *k, vms_core *c)
{
    if (strcmp(k->fmt->arch, "x86_64") != 0)
        return VMS_OK;
    uint64_t cr4 = vms_core_regs(c)->cr4;
    cr4 |= (k->cfg.smep ? VMS_CR4_SMEP : 0) | (k->cfg.smap ? VMS_CR4_SMAP : 0) |
           (k->cfg.pke ? VMS_CR4_PKE : 0);
    k->pke = k->cfg.pke;
    k->pkru_init = k->cfg.pke ? VMSI_PKRU_INIT : 0;
    vms_core_write_pkru(c, k->pkru_init);
    return vms_core_write_cr4(c, cr4);
}

/* Every core: paging on with init_mm (ASID 0), address-space IDs as configured
 * (x86-64: CR3, then CR4.PCIDE); supervisor mode. */
static vms_status boot_cores(vms_kernel *k, vms_err *err)
{
    for (unsigned i = 0; i < k->ncores; i++) {
        vms_core *c = vmsi_core(k, i);
        if (vms_core_swtlb(c)) /* a software-managed TLB: the kernel refills it */
            vms_tlbex_attach(c, &k->tlbex[i], &k->cfg.tlbex);
        vms_status st = vms_core_mmu_boot(c, k->init_pt.root, k->cfg.pcid);
        if (st != VMS_OK)
            return vmsi_err(err, st, "core %u refused to turn on %s with address-space IDs %s", i,
                            k->fmt->title, k->cfg.pcid ? "on" : "off");
        vms_core_set_user(c, false);
        st = protect_core(k, c);
        if (st != VMS_OK)
            return vmsi_err(err, st, "core %u refused CR4.SMEP/SMAP/PKE", i);
    }
    return VMS_OK;
}

/* kernel.shootdown against what the machine's architecture has (docs/SMP.md). */
static vms_status check_shootdown(vms_machine *m, const vms_kernel_config *cfg, vms_err *err)
{
    const char *arch = vms_machine_format(m)->arch;
    bool riscv = strcmp(arch, "riscv64") == 0;
    if (cfg->shootdown > VMS_SHOOTDOWN_SBI)
        return vmsi_err(err, VMS_ERR_INVAL,
                        "kernel.shootdown %d: expected ipi, broadcast, sbi or auto",
                        (int)cfg->shootdown);
    if (cfg->shootdown == VMS_SHOOTDOWN_SBI && !riscv)
        return vmsi_err(err, VMS_ERR_INVAL,
                        "kernel.shootdown = sbi: SBI remote fences are RISC-V's; the machine "
                        "is %s (expected ipi, broadcast or auto)",
                        arch);
    if (cfg->shootdown != VMS_SHOOTDOWN_BROADCAST)
        return VMS_OK;
    if (riscv)
        return vmsi_err(err, VMS_ERR_INVAL,
                        "kernel.shootdown = broadcast: RISC-V has no broadcast TLB "
                        "invalidation (other harts are fenced by IPIs or SBI remote fences); "
                        "expected ipi, sbi or auto");
    if (!vms_core_mmu_has_broadcast(vms_machine_core(m, 0)))
        return strcmp(arch, "x86_64") == 0
                   ? vmsi_err(err, VMS_ERR_INVAL,
                              "kernel.shootdown = broadcast needs INVLPGB: the machine has "
                              "invlpgb_max = 0")
                   : vmsi_err(err, VMS_ERR_INVAL,
                              "kernel.shootdown = broadcast: the %s machine has no broadcast "
                              "invalidation (expected ipi or auto)",
                              arch);
    return VMS_OK;
}

static vms_status kernel_create(vms_machine *m, const vms_kernel_platform *plat,
                                const vms_kernel_config *cfg, vms_kernel **out, vms_err *err);

vms_status vms_kernel_create(vms_machine *m, const vms_kernel_config *cfg, vms_kernel **out,
                             vms_err *err)
{
    return kernel_create(m, NULL, cfg, out, err);
}

vms_status vms_kernel_create_on(vms_machine *m, const vms_kernel_platform *p,
                                const vms_kernel_config *cfg, vms_kernel **out, vms_err *err)
{
    *out = NULL;
    const vms_machine_config *mc = vms_machine_get_config(m);
    if (!p || !p->bus || !p->core || !p->frame || p->ncores == 0 || p->ncores > VMS_MAX_CORES ||
        !vms_frames_layout_pc(p->ram_bytes, (vms_frames_range[2]){{0}}))
        return vmsi_err(err, VMS_ERR_INVAL,
                        "kernel platform: a bus, 1 … %u CPUs, a core and a frame hook, and RAM "
                        "a non-zero multiple of 4 KiB expected",
                        VMS_MAX_CORES);
    const char *arch = vms_machine_format(m)->arch;
    if ((strcmp(arch, "x86_64") != 0 && strcmp(arch, "aarch64") != 0) ||
        mc->design != VMS_DESIGN_RADIX || mc->mmu.swtlb.on)
        return vmsi_err(err, VMS_ERR_UNSUPPORTED,
                        "kernel platform: the x86-64 or AArch64 radix design only (the machine "
                        "is %s)",
                        vms_machine_format(m)->title);
    return kernel_create(m, p, cfg, out, err);
}

/* vms_kernel_create, on the machine itself (plat NULL) or on a platform. */
static vms_status kernel_create(vms_machine *m, const vms_kernel_platform *plat,
                                const vms_kernel_config *cfg, vms_kernel **out, vms_err *err)
{
    *out = NULL;
    vms_kernel_config def;
    if (!cfg) {
        vms_kernel_config_default(&def);
        cfg = &def;
    }
    vms_status st = check_config(cfg, err);
    if (st != VMS_OK)
        return st;
    unsigned ncores = plat ? plat->ncores : vms_machine_ncores(m);
    if (cfg->kswapd_core >= (int)ncores)
        return vmsi_err(err, VMS_ERR_INVAL, "kswapd.core %d: the machine has %u cores",
                        cfg->kswapd_core, ncores);
    if (cfg->khugepaged_core >= (int)ncores)
        return vmsi_err(err, VMS_ERR_INVAL, "khugepaged.core %d: the machine has %u cores",
                        cfg->khugepaged_core, ncores);
    if (cfg->thp > VMS_THP_NEVER || cfg->thp_cow > VMS_THP_COW_COPY ||
        cfg->thp_max_ptes_none > 511 || cfg->thp_swap > VMS_THP_SWAP_WHOLE)
        return vmsi_err(err, VMS_ERR_INVAL,
                        "thp %d, thp.cow %d, thp.max_ptes_none %u or thp.swap %d: expected "
                        "always|madvise|never, split|copy, 0 … 511, split|whole",
                        (int)cfg->thp, (int)cfg->thp_cow, cfg->thp_max_ptes_none,
                        (int)cfg->thp_swap);
    if (cfg->default_hugepagesz != VMS_PG_2M && cfg->default_hugepagesz != VMS_PG_1G)
        return vmsi_err(err, VMS_ERR_INVAL, "default_hugepagesz %d: expected 2M or 1G",
                        (int)cfg->default_hugepagesz);
    if (cfg->kcompactd_core >= (int)vms_machine_ncores(m))
        return vmsi_err(err, VMS_ERR_INVAL, "kcompactd.core %d: the machine has %u cores",
                        cfg->kcompactd_core, vms_machine_ncores(m));
    if (cfg->thp_defrag > VMS_THP_DEFRAG_NEVER || cfg->thp_max_ptes_swap > 511 ||
        cfg->thp_max_ptes_shared > 511)
        return vmsi_err(err, VMS_ERR_INVAL,
                        "thp.defrag %d, thp.max_ptes_swap %u or thp.max_ptes_shared %u: expected "
                        "always|defer|defer+madvise|madvise|never, 0 … 511, 0 … 511",
                        (int)cfg->thp_defrag, cfg->thp_max_ptes_swap, cfg->thp_max_ptes_shared);
    st = check_shootdown(m, cfg, err);
    if (st != VMS_OK)
        return st;
    if (cfg->sched_slice == 0)
        return vmsi_err(err, VMS_ERR_INVAL, "kernel.sched_slice 0: expected >= 1 cycle");
    const vms_allocator *a = vms_machine_allocator(m);
    vms_kernel *k = vmsi_zalloc(a, sizeof *k);
    if (!k)
        return vmsi_err(err, VMS_ERR_NOMEM, "kernel: out of host memory");
    k->m = m;
    if (!plat) /* a guest kernel's page-table writes are on its own bus, not the tap's */
        vmsi_machine_tap(m)->kernel_core = &k->cur_core; /* page-table writes' core */
    k->swap.fd = -1;
    k->a = a;
    k->bus = plat ? plat->bus : vms_machine_bus(m);
    k->ram = vms_machine_ram(m);
    k->on_plat = plat != NULL;
    if (plat)
        k->plat = *plat;
    k->cfg = *cfg;
    k->ncores = ncores;
    for (unsigned i = 0; !plat && i < ncores; i++) /* the machine's cores never move */
        k->cores[i] = vms_machine_core(m, i);
    k->fmt = vms_machine_format(m);
    k->levels = k->fmt->levels;
    k->page_offset = k->levels == 5 ? VMS_PAGE_OFFSET_5L : VMS_PAGE_OFFSET_4L;
    /* x86-64's user layout (proc.c) for every VA of 48 bits or more; Sv39's 38-bit user
     * half as Linux's riscv port lays it out: ELF_ET_DYN_BASE = TASK_SIZE / 3 * 2,
     * STACK_RND_MASK 0x3ffff pages, mmap_rnd_bits 18 (its default). */
    k->task_size = VMS_TASK_SIZE;
    k->et_dyn_base = VMSI_ELF_ET_DYN_BASE;
    k->stack_rnd_pages = UINT64_C(0x400000);
    k->mmap_rnd_pages = UINT64_C(1) << 28;
    if (k->fmt->va_bits < 48) {
        k->page_offset = VMS_PAGE_OFFSET_SV39;
        k->task_size = VMS_TASK_SIZE_SV39;
        k->et_dyn_base = (VMS_TASK_SIZE_SV39 / 3 * 2) & ~(uint64_t)VMS_PAGE_MASK;
        k->stack_rnd_pages = UINT64_C(0x40000);
        k->mmap_rnd_pages = UINT64_C(1) << 18;
    }
    k->next_pid = 1;
    k->next_ino = 1;
    k->pcid_next = 1;
    vms_rng_seed(&k->rng, cfg->seed);
    k->cur_mm = vmsi_calloc(a, k->ncores, sizeof *k->cur_mm);
    k->pcid_used = vmsi_zalloc(a, VMSI_MAX_PCID + 1);
    k->dmesg = vmsi_zalloc(a, VMSI_DMESG_LINES * sizeof *k->dmesg);
    if (!k->cur_mm || !k->pcid_used || !k->dmesg || vmsi_sched_init(k) != VMS_OK) {
        vms_kernel_destroy(k);
        return vmsi_err(err, VMS_ERR_NOMEM, "kernel: out of host memory");
    }
    k->pcid_used[0] = 1;
    st = boot_memory(k, err);
    if (st == VMS_OK)
        st = vmsi_swap_init(k, err);
    if (st == VMS_OK)
        st = vmsi_reclaim_init(k, err);
    if (st == VMS_OK)
        st = vmsi_hash_boot(k, err);
    if (st == VMS_OK)
        st = boot_cores(k, err);
    if (st == VMS_OK)
        st = vmsi_hugetlb_init(k, err);
    k->khugepaged_wake = k->cfg.khugepaged_sleep; /* its first run: one sleep after boot */
    if (st != VMS_OK) {
        vms_kernel_destroy(k);
        return st;
    }
    vmsi_log(k, VMS_LOG_INFO, "vmsim kernel: %llu pages of RAM, %u core%s, PCID %s",
             (unsigned long long)vms_frames_nfree(k->fr), k->ncores, k->ncores == 1 ? "" : "s",
             k->cfg.pcid ? "on" : "off");
    *out = k;
    return VMS_OK;
}

/*
 * At teardown, once every process and file is gone: free the reverse-map records nothing
 * reaches any more. A PTE a device rewrote (or cleared: that leaves no trace to detect)
 * left the frame the kernel had mapped there with an rmap entry no PTE names, so process
 * exit could not drop it. Walks the frames' metadata (2 MiB chunks that were never
 * touched are skipped). Returns how many records it freed (0 unless the tables were
 * written behind the kernel's back).
 */
static uint64_t free_stale_rmaps(vms_kernel *k)
{
    uint64_t stale = 0;
    size_t n = 0;
    const vms_frames_range *rg = vms_frames_ranges(k->fr, &n);
    for (size_t i = 0; i < n; i++) {
        for (uint64_t pfn = rg[i].base_pfn; pfn < rg[i].base_pfn + rg[i].npages; pfn++) {
            vms_frame *f = vms_frames_meta(k->fr, pfn);
            if (!f) {
                pfn |= 511; /* an untouched metadata chunk */
                continue;
            }
            if (!f->owner || !(f->flags & (VMS_FRAME_ANON | VMS_FRAME_FILE)))
                continue;
            vmsi_rmap *r = vmsi_rmap_rec(f); /* NULL: an inline mapping, nothing to free */
            if (r) {
                vmsi_free(k->a, r->e, r->cap * sizeof *r->e);
                vmsi_free(k->a, r, sizeof *r);
            }
            vms_frame none = {0};
            vmsi_rmap_move(&none, f);
            stale++;
        }
    }
    return stale;
}

void vms_kernel_set_observer(vms_kernel *k, vms_event_fn fn, void *user)
{
    vms_machine_set_observer(k->m, fn, user);
}

void vms_kernel_destroy(vms_kernel *k)
{
    if (!k)
        return;
    vmsi_dma_shutdown(k); /* unpin and unmap before the processes go */
    while (k->nprocs)
        vms_proc_exit(k, k->procs[k->nprocs - 1]->tasks[0]);
    vmsi_files_destroy(k);
    vmsi_reclaim_destroy(k);
    vmsi_swap_destroy(k);
    for (unsigned i = 0; i < k->ncores; i++) /* the handlers' state goes with k */
        vms_core_mips_set_handler(vmsi_core(k, i), NULL, NULL);
    uint64_t stale = k->fr ? free_stale_rmaps(k) : 0;
    if (stale && !k->panicked) /* as Linux's check_mm(): a leak, not a panic */
        vmsi_log(k, VMS_LOG_ERR, "BUG: Bad rss-counter state: %llu pages mapped by no page table",
                 (unsigned long long)stale);
    if (k->fr) {
        vmsi_thp_destroy(k);
        vmsi_hugetlb_destroy(k);
        for (unsigned i = 0; i < k->ncores; i++)
            vms_core_mmu_load_root(vmsi_core(k, i), 0, VMSI_NO_PCID, true);
        vmsi_hash_destroy(k);
        if (k->init_pt.root)
            vms_pt_destroy(&k->init_pt);
        if (k->zero_pfn) {
            vms_frames_set_flags(k->fr, k->zero_pfn, 0, VMS_FRAME_ZERO);
            vms_frames_put(k->fr, k->zero_pfn, NULL);
        }
        vms_frames_destroy(k->fr);
    }
    vmsi_sched_destroy(k);
    vmsi_free(k->a, k->procs, k->capprocs * sizeof *k->procs);
    vmsi_free(k->a, k->cur_mm, k->ncores * sizeof *k->cur_mm);
    vmsi_free(k->a, k->pcid_used, VMSI_MAX_PCID + 1);
    vmsi_free(k->a, k->dmesg, VMSI_DMESG_LINES * sizeof *k->dmesg);
    vmsi_tap *tap = vmsi_machine_tap(k->m);
    if (tap->kernel_core == &k->cur_core)
        tap->kernel_core = NULL;
    vmsi_free(k->a, k, sizeof *k);
}

const vms_kernel_config *vms_kernel_get_config(const vms_kernel *k)
{
    return &k->cfg;
}

vms_machine *vms_kernel_machine(vms_kernel *k)
{
    return k->m;
}

vms_frames *vms_kernel_frames(vms_kernel *k)
{
    return k->fr;
}

uint64_t vms_kernel_init_root(const vms_kernel *k)
{
    return k->init_pt.root;
}

uint64_t vms_kernel_page_offset(const vms_kernel *k)
{
    return k->page_offset;
}

const vms_kernel_stats *vms_kernel_get_stats(const vms_kernel *k)
{
    return &k->st;
}

void vms_kernel_reset_stats(vms_kernel *k)
{
    memset(&k->st, 0, sizeof k->st);
}
