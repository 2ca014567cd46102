/*
 * smp.c — address spaces on cores: context switches (CR3 with a PCID), lazy TLB, PCID
 * allocation, and TLB invalidation across cores by shootdown — IPIs, SBI remote
 * fences, or a broadcast (INVLPGB, TLBI … IS) — with its cost in time (Linux
 * arch/x86/mm/tlb.c; what differs on AArch64 and RISC-V is under "per architecture"
 * below). docs/SMP.md tells the story; the rules:
 *
 * PCIDs. With PCIDs (CR4.PCIDE) each mm has its own PCID 1 … 4095 on every core (what
 * Linux's INVLPGB series calls a global ASID; Linux proper recycles 6 per-CPU dynamic
 * ASIDs, which vmsim does not model). A switch loads CR3 with the no-flush bit when the
 * core's entries for that PCID are still valid, and without it (flushing the PCID)
 * when they are not: each mm counts its flushes in tlb_gen, and cpu_gen[core] records
 * the generation the core's TLB has caught up with (Linux's per-CPU ctxs[].tlb_gen);
 * cpu_gen 0 means the core holds nothing of mm. Without PCIDs every CR3 load flushes.
 *
 * mm_cpumask. A core is in mm->cpumask while mm is loaded there, running or lazily.
 * Switching away clears the bit (Linux's switch_mm_irqs_off): the entries left behind,
 * tagged with mm's PCID, are unreachable until the core comes back, and then the
 * generation check flushes them if any shootdown happened meanwhile.
 *
 * Lazy TLB. An idle core (its run queue empty: it runs a kernel thread) keeps the last
 * mm loaded — no CR3 write, still in the mask (enter_lazy_tlb). A shootdown does not
 * interrupt it: its generation falls behind and its next switch (back to that mm or
 * to another) catches up. Only a shootdown that freed page tables (munmap) sends it the
 * IPI, and its handler switches it to init_mm (leave_mm), as Linux does because a lazy
 * core could otherwise walk freed tables speculatively.
 *
 * flush_tlb_mm_range. After mm's PTEs in [start, end) changed: tlb_gen advances; the
 * initiating core, if it runs mm, flushes locally (INVLPG per page; a full PCID flush
 * above tlb_single_page_flush_ceiling = 33 pages); then the other cores:
 *   - IPIs (flush_tlb_multi): the initiator sends one per target (cost.ipi_send each),
 *     each arrives after cost.ipi_latency + cost.ipi_hop per socket hop, the target is
 *     interrupted (cost.ipi for the handler plus the invalidations it executes, added
 *     to its clock: its work is delayed), its ack travels back as far, and the
 *     initiator waits for the slowest ack;
 *   - broadcast: INVLPGB by (address, PCID) — up to the machine's invlpgb_max pages per
 *     instruction — or by PCID above the ceiling, then TLBSYNC; the hardware applies
 *     it on every core (core.h), nobody is interrupted, the initiator pays the issue
 *     and the TLBSYNC wait. kernel.shootdown picks: ipi, broadcast, or auto = Linux's
 *     rule (broadcast when the mm is in the mask of >= 3 cores; per architecture below).
 * With kernel.tlb_batch off, munmap and mprotect ranges (VMSI_FLUSH_GATHER) are shot
 * down one page at a time, as a kernel without mmu_gather would.
 *
 * Reclaim defers (try_to_unmap_flush): the pages it unmaps from one batch note their
 * mm's cores, and one flush per core (a full flush of each noted mm) happens before
 * the batch's frames are reused (vmsi_tlb_defer_flush).
 *
 * A recycled PCID is flushed from every core (INVPCID type 1) before its new owner uses
 * it, so a freed address space's entries can never be hit.
 */
#include "os/os_impl.h"
#include "hw/tap.h"

#include <string.h>

bool vmsi_mask_test(const vmsi_mm *mm, unsigned c)
{
    return (mm->cpumask[c / 64] >> (c % 64)) & 1u;
}

static void mask_set(vmsi_mm *mm, unsigned c, bool on)
{
    uint64_t bit = UINT64_C(1) << (c % 64);
    mm->cpumask[c / 64] = on ? (mm->cpumask[c / 64] | bit) : (mm->cpumask[c / 64] & ~bit);
}

static unsigned mask_weight(const vmsi_mm *mm)
{
    unsigned n = 0;
    for (unsigned i = 0; i < VMS_MAX_CORES / 64; i++)
        n += (unsigned)__builtin_popcountll(mm->cpumask[i]);
    return n;
}

static bool has_pcid(const vms_kernel *k, const vmsi_mm *mm)
{
    return k->cfg.pcid && mm->pcid != VMSI_NO_PCID;
}

static uint64_t clock_of(vms_kernel *k, unsigned core)
{
    return core == VMSI_NO_CORE ? 0 : vmsi_core_clock(k, core);
}

/* Invalidate [start, end) of mm on one core, as that core itself would. */
static void flush_on(vms_kernel *k, vmsi_mm *mm, unsigned core, uint64_t start, uint64_t end,
                     bool full)
{
    vms_core *c = vmsi_core(k, core);
    bool current = k->cur_mm[core] == mm;
    bool pcids = has_pcid(k, mm);
    if (full) {
        if (pcids)
            vms_core_mmu_flush_asid(c, mm->pcid);
        else if (current)
            vms_core_mmu_load_root(c, mm->pt.root, mm->pcid, true); /* reload: flush */
        return;
    }
    for (uint64_t va = start; va < end; va += VMS_PAGE_SIZE) {
        if (current)
            vms_core_mmu_flush_page(c, va);
        else if (pcids)
            vms_core_mmu_flush_page_asid(c, mm->pcid, va);
    }
}

/* The core's TLB caught up with mm's generation after a flush of generation gen: a
 * full flush settles any lag, a partial one only a TLB that was up to date before. */
static void caught_up(vmsi_mm *mm, unsigned core, uint64_t gen, bool full)
{
    if (mm->cpu_gen[core] && (full || mm->cpu_gen[core] + 1 == gen))
        mm->cpu_gen[core] = gen;
}

/* Load mm (NULL: init_mm) on core: switch_mm_irqs_off. Ends lazy mode. A task switch
 * is counted and charged cost.ctx_switch; leave_mm (a shootdown's handler) is not. */
static void load_mm(vms_kernel *k, unsigned core, vmsi_mm *mm, bool task_switch)
{
    vmsi_mm *prev = k->cur_mm[core];
    vmsi_cpu *cpu = &k->cpu[core];
    bool was_lazy = cpu->lazy;
    cpu->lazy = false;
    vms_core *c = vmsi_core(k, core);
    if (prev == mm) {
        /* Back from lazy mode to the mm still loaded: flush if shootdowns skipped us. */
        if (was_lazy && mm && mm->cpu_gen[core] != mm->tlb_gen) {
            if (has_pcid(k, mm))
                vms_core_mmu_flush_asid(c, mm->pcid);
            else
                vms_core_mmu_load_root(c, mm->pt.root, mm->pcid, true);
            mm->cpu_gen[core] = mm->tlb_gen;
            k->st.tlb_switch_flushes++;
        }
        return;
    }
    uint64_t root = mm ? mm->pt.root : k->init_pt.root;
    uint32_t asid = mm ? mm->pcid : VMSI_NO_PCID;
    if (k->cfg.pcid && (!mm || mm->pcid != VMSI_NO_PCID)) {
        bool stale = mm && mm->cpu_gen[core] && mm->cpu_gen[core] != mm->tlb_gen;
        vms_core_mmu_load_root(c, root, asid, stale);
        if (stale)
            k->st.tlb_switch_flushes++;
    } else {
        vms_core_mmu_load_root(c, root, asid, true); /* drops this PCID's non-global entries */
        if (k->cfg.pcid) /* PCID 0 is shared by init_mm and PCID-less mms: flushed now */
            for (unsigned i = 0; i < k->nprocs; i++)
                if (k->procs[i]->mm && k->procs[i]->mm->pcid == VMSI_NO_PCID)
                    k->procs[i]->mm->cpu_gen[core] = 0;
    }
    if (prev) {
        mask_set(prev, core, false);
        if (!has_pcid(k, prev))
            prev->cpu_gen[core] = 0; /* its entries went with the flushing CR3 load */
    }
    k->cur_mm[core] = mm;
    if (mm) {
        mask_set(mm, core, true);
        mm->cpu_gen[core] = mm->tlb_gen;
    }
    if (task_switch) {
        k->st.context_switches++;
        vmsi_charge(k, core, k->cfg.cost.ctx_switch);
    }
}

void vmsi_switch_mm(vms_kernel *k, unsigned core, vmsi_mm *mm)
{
    load_mm(k, core, mm, true);
}

/* A lazy core leaves mm for init_mm (Linux leave_mm) and stays idle. */
static void leave_mm(vms_kernel *k, unsigned core)
{
    load_mm(k, core, NULL, false);
    k->cpu[core].lazy = true;
    k->st.tlb_leave_mm++;
}

/* The first process using mm, for narration. */
static int pid_of_mm(const vms_kernel *k, const vmsi_mm *mm)
{
    for (unsigned i = 0; i < k->nprocs; i++)
        if (k->procs[i]->mm == mm)
            return k->procs[i]->pid;
    return 0;
}

static uint64_t ipi_latency(vms_kernel *k, unsigned a, unsigned b)
{
    unsigned hops = a == VMSI_NO_CORE || b == VMSI_NO_CORE ? 0 : vms_machine_hops(k->m, a, b);
    return k->cfg.cost.ipi_latency + (uint64_t)k->cfg.cost.ipi_hop * hops;
}

/*
 * ---- per architecture: how its Linux port reaches the other cores ----
 *
 *   x86-64   IPIs (native_flush_tlb_multi), lazy cores skipped; INVLPGB + TLBSYNC for
 *            an mm on >= 3 cores when the machine has it (van Riel's series, Linux
 *            6.15); a range above tlb_single_page_flush_ceiling = 33 pages is a full
 *            flush of the PCID.
 *   AArch64  always TLBI VAE1IS per page (TLBI ASIDE1IS from MAX_TLBI_OPS =
 *            PTRS_PER_PTE = 512 pages on) and DSB ISH, whatever mm_cpumask says, even
 *            for an mm on this core alone (arch/arm64/include/asm/tlbflush.h
 *            __flush_tlb_range, flush_tlb_mm): no IPI, nobody interrupted.
 *   RISC-V   no broadcast instruction. An mm on this hart alone is flushed locally
 *            (sfence.vma per page, the whole ASID above tlb_flush_all_threshold = 64
 *            pages); otherwise every hart of mm_cpumask, lazy ones included, is
 *            fenced: by the SBI remote-fence call sbi_remote_sfence_vma_asid(mask,
 *            start, size, asid) when the platform has no S-mode IPIs (riscv_use_sbi_
 *            for_rfence(): an ecall, the firmware IPIs each hart and waits; OpenSBI
 *            fences the whole ASID for any range above its tlb_range_flush_limit of
 *            4 KiB), else by the kernel's own IPIs (on_each_cpu_mask) running the local
 *            flush (arch/riscv/mm/tlbflush.c __flush_tlb_range).
 */
typedef enum sd_arch { ARCH_X86, ARCH_ARM64, ARCH_RISCV } sd_arch;
typedef enum sd_method { SD_IPI, SD_BROADCAST, SD_SBI } sd_method;

#define A64_MAX_TLBI_OPS      512u /* PTRS_PER_PTE: flush_tlb_mm from here on */
#define RV_FLUSH_ALL_PAGES    64u  /* tlb_flush_all_threshold */
#define SBI_FLUSH_LIMIT_PAGES 1u   /* OpenSBI SBI_PLATFORM_TLB_RANGE_FLUSH_LIMIT_DEFAULT */

static sd_arch arch_of(const vms_kernel *k)
{
    const char *a = vms_machine_format(k->m)->arch;
    return strcmp(a, "aarch64") == 0   ? ARCH_ARM64
           : strcmp(a, "riscv64") == 0 ? ARCH_RISCV
                                       : ARCH_X86;
}

/* Is a range of npages flushed whole (its address space's every entry) by method? */
static bool flush_is_full(sd_arch arch, sd_method how, uint64_t npages)
{
    if (how == SD_SBI)
        return npages > SBI_FLUSH_LIMIT_PAGES;
    if (arch == ARCH_ARM64 && how == SD_BROADCAST)
        return npages >= A64_MAX_TLBI_OPS;
    return npages > (arch == ARCH_RISCV ? RV_FLUSH_ALL_PAGES : VMSI_TLB_FLUSH_CEILING);
}

/*
 * How this shootdown reaches the other cores (others: some core other than the
 * initiator is a target or was skipped as lazy). x86: broadcast when asked or, in
 * auto, when mm is in the mask of 3 or more cores (Linux gives such an mm a global
 * ASID; here every PCID is global; a PCID-less mm broadcasts PCID 0, which over-flushes
 * the other PCID-0 entries: safe). AArch64: always broadcast unless ipi is asked.
 * RISC-V: the SBI remote fence unless ipi is asked. Kswapd without a core has no core
 * to issue an instruction or an ecall from: IPIs.
 */
static sd_method choose(vms_kernel *k, vmsi_mm *mm, unsigned initiator, bool others)
{
    vms_shootdown_mode mode = k->cfg.shootdown;
    if (initiator == VMSI_NO_CORE || mode == VMS_SHOOTDOWN_IPI)
        return SD_IPI;
    switch (arch_of(k)) {
    case ARCH_ARM64:
        return SD_BROADCAST;
    case ARCH_RISCV:
        return others ? SD_SBI : SD_IPI;
    case ARCH_X86:
        break;
    }
    if (!others || !vms_core_mmu_has_broadcast(vmsi_core(k, initiator)))
        return SD_IPI;
    return mode == VMS_SHOOTDOWN_BROADCAST || mask_weight(mm) >= 3 ? SD_BROADCAST : SD_IPI;
}

/* The broadcast from the initiator (INVLPGB + TLBSYNC, TLBI … IS + DSB ISH): every
 * core's TLBs drop the range, or the whole PCID. Returns the instructions issued. */
static unsigned broadcast(vms_kernel *k, vmsi_mm *mm, unsigned initiator, uint64_t start,
                          uint64_t end, bool full, uint64_t gen)
{
    vms_core *c = vmsi_core(k, initiator);
    uint64_t before = vms_core_cycles(c);
    unsigned n = vms_core_mmu_flush_broadcast(c, mm->pcid, start,
                                              full ? 0 : (end - start) >> VMS_PAGE_SHIFT);
    vms_core_mmu_sync(c);
    /* Those cycles were the core's own (instructions): count them as kernel work. */
    k->st.kernel_cycles += vms_core_cycles(c) - before;
    for (unsigned core = 0; core < k->ncores; core++)
        caught_up(mm, core, gen, full);
    return n;
}

/* The narration's name of a method. */
static const char *method_name(sd_arch arch, sd_method how, bool full)
{
    if (how == SD_SBI)
        return "SBI remote fence";
    if (how == SD_IPI)
        return "IPI";
    if (arch == ARCH_ARM64)
        return full ? "TLBI ASIDE1IS + DSB ISH" : "TLBI VAE1IS + DSB ISH";
    return "INVLPGB + TLBSYNC";
}

/* The kernel thread doing the current work (khugepaged and kcompactd may run inside
 * reclaim's allocations and the reverse, so the innermost first), or NULL. */
static const char *daemon_name(const vms_kernel *k)
{
    if (k->in_khugepaged)
        return "khugepaged";
    if (k->in_kcompactd)
        return "kcompactd";
    return k->in_kswapd ? "kswapd" : NULL;
}

/* Tell the tap that core `core` handled a shootdown IPI from `from`. */
static void report_ipi(vms_kernel *k, unsigned from, unsigned core)
{
    const vmsi_tap *tap = vmsi_machine_tap(k->m);
    if (!vmsi_tap_on(tap))
        return;
    vms_event ev = {.type = VMS_EV_IPI,
                    .ipi = {from == VMSI_NO_CORE ? VMS_EV_NO_CORE : (int)from, 0}};
    vmsi_tap_emit(tap, (int)core, &ev);
}

/* Tell the tap of a shootdown (ev's fields are set; the core is the initiator). */
static void report_shootdown(vms_kernel *k, unsigned initiator, vms_event *ev)
{
    ev->type = VMS_EV_SHOOTDOWN;
    vmsi_tap_emit(vmsi_machine_tap(k->m),
                  initiator == VMSI_NO_CORE ? VMS_EV_NO_CORE : (int)initiator, ev);
}

/* One shootdown of [start, end) of mm (flush_tlb_mm_range for one range). */
static void shootdown(vms_kernel *k, vmsi_mm *mm, unsigned initiator, uint64_t start, uint64_t end,
                      unsigned flags)
{
    sd_arch arch = arch_of(k);
    /* x86 leaves lazy cores out (cpu_tlbstate_shared.is_lazy); RISC-V fences the whole
     * mm_cpumask; AArch64's broadcast reaches every core anyway. */
    bool skip_lazy = arch != ARCH_RISCV;
    bool freed = (flags & VMSI_FLUSH_FREED) != 0;
    uint64_t gen = ++mm->tlb_gen;
    uint64_t t0 = clock_of(k, initiator), handlers = 0, waited = 0;
    bool local = initiator != VMSI_NO_CORE && k->cur_mm[initiator] == mm;
    unsigned ntargets = 0, lazy_skipped = 0;
    if (local && k->cpu[initiator].lazy && skip_lazy) { /* kernel work on an idle core */
        local = false;
        if (freed)
            leave_mm(k, initiator);
        else {
            lazy_skipped++;
        }
    }
    /* Who may cache the range: the cores in the mask. */
    for (unsigned core = 0; core < k->ncores; core++) {
        if (!vmsi_mask_test(mm, core) || core == initiator)
            continue;
        if (k->cpu[core].lazy && !freed && skip_lazy) {
            lazy_skipped++; /* flushed at its next switch */
            continue;
        }
        k->sd_targets[ntargets++] = core;
    }
    sd_method how = choose(k, mm, initiator, ntargets || lazy_skipped);
    bool bcast = how == SD_BROADCAST, sbi = how == SD_SBI && ntargets;
    bool full = flush_is_full(arch, how, (end - start) >> VMS_PAGE_SHIFT);
    unsigned ninvlpgb = 0;
    if (bcast) {
        ninvlpgb = broadcast(k, mm, initiator, start, end, full, gen);
        if (arch == ARCH_ARM64)
            k->st.tlb_tlbi_is += ninvlpgb;
        else
            k->st.tlb_invlpgb += ninvlpgb;
        /* Every core was flushed, lazy ones too (those needing leave_mm: their tables
         * are gone from their TLBs and PWCs as well): no IPI, nothing left to catch up. */
        ntargets = 0;
        lazy_skipped = 0;
        k->st.tlb_broadcasts++;
    } else {
        /* flush_tlb_multi: send, flush locally meanwhile, wait for the slowest ack. With
         * the SBI, the ecall first: the firmware sends the IPIs and does the waiting. */
        if (sbi) {
            vmsi_charge(k, initiator, k->cfg.cost.sbi_ecall);
            k->st.tlb_sbi_rfence++;
        }
        if (ntargets) {
            waited = (uint64_t)k->cfg.cost.ipi_send * ntargets;
            vmsi_charge(k, initiator, waited);
        }
        if (local) {
            flush_on(k, mm, initiator, start, end, full);
            caught_up(mm, initiator, gen, full);
            if (full)
                k->st.nr_tlb_local_flush_all++;
            else
                k->st.nr_tlb_local_flush_one += (end - start) >> VMS_PAGE_SHIFT;
        }
        uint64_t done = clock_of(k, initiator) - t0;
        uint64_t send0 = sbi ? k->cfg.cost.sbi_ecall : 0;
        for (unsigned i = 0; i < ntargets; i++) {
            unsigned core = k->sd_targets[i];
            uint64_t arrive =
                send0 + (uint64_t)k->cfg.cost.ipi_send * (i + 1) + ipi_latency(k, initiator, core);
            uint64_t h0 = clock_of(k, core);
            vmsi_charge(k, core, sbi ? k->cfg.cost.sbi_rfence : k->cfg.cost.ipi);
            if (k->cpu[core].lazy && skip_lazy) { /* freed tables */
                leave_mm(k, core);
            } else {
                flush_on(k, mm, core, start, end, full);
                caught_up(mm, core, gen, full);
            }
            uint64_t handler = clock_of(k, core) - h0;
            handlers += handler;
            k->sd_ack[i] = arrive + handler + ipi_latency(k, core, initiator);
            done = k->sd_ack[i] > done ? k->sd_ack[i] : done;
            k->st.nr_tlb_remote_flush_received++;
            report_ipi(k, initiator, core);
        }
        uint64_t now = initiator == VMSI_NO_CORE ? waited : clock_of(k, initiator) - t0;
        if (ntargets) {
            if (done > now) {
                vmsi_charge(k, initiator, done - now);
                waited += done - now;
            }
            k->st.nr_tlb_remote_flush++;
        }
    }
    /* The initiator's time from start to done, plus the targets' handlers (kswapd
     * without a core: what was charged to it). */
    k->st.tlb_lazy_skipped += lazy_skipped;
    uint64_t cycles = 0;
    if (ntargets || bcast) /* a purely local flush is no shootdown */
        k->st.tlb_shootdown_cycles += cycles =
            handlers + (initiator == VMSI_NO_CORE ? waited : clock_of(k, initiator) - t0);
    if (vmsi_tap_on(vmsi_machine_tap(k->m))) {
        bool lflush = local && !bcast;
        vms_event ev = {
            .shootdown = {.pid = pid_of_mm(k, mm),
                          .va = start,
                          .npages = (end - start) >> VMS_PAGE_SHIFT,
                          .via = bcast ? VMS_EV_VIA_BROADCAST
                                 : sbi ? VMS_EV_VIA_SBI
                                       : VMS_EV_VIA_IPI,
                          .full = full,
                          .targets = ntargets,
                          .lazy_skipped = lazy_skipped,
                          .instructions = ninvlpgb,
                          .local_pages = lflush && !full ? (end - start) >> VMS_PAGE_SHIFT : 0,
                          .local_all = lflush && full,
                          .cycles = cycles}};
        report_shootdown(k, initiator, &ev);
    }
    if (k->sd_hook && (ntargets || bcast || lazy_skipped)) {
        vms_shootdown_event ev = {
            .pid = pid_of_mm(k, mm),
            .initiator = initiator,
            .start = start,
            .end = end,
            .full = full,
            .broadcast = bcast,
            .sbi = sbi,
            .method = method_name(arch, sbi ? SD_SBI : how, full),
            .invlpgb = ninvlpgb,
            .ntargets = ntargets,
            .targets = k->sd_targets,
            .ack = k->sd_ack,
            .lazy_skipped = lazy_skipped,
            .start_cycle = t0,
            .cycles = initiator == VMSI_NO_CORE ? waited : clock_of(k, initiator) - t0,
            .daemon = daemon_name(k),
        };
        k->sd_hook(k->sd_ud, &ev);
    }
}

void vmsi_flush_tlb_mm_range(vms_kernel *k, vmsi_mm *mm, unsigned initiator, uint64_t start,
                             uint64_t end, unsigned flags)
{
    if (start >= end)
        return;
    vmsi_hash_flush(k, mm, start, end); /* the hashed designs' shared table (hashfill.c) */
    if ((flags & VMSI_FLUSH_GATHER) && !k->cfg.tlb_batch) {
        for (uint64_t va = start; va < end; va += VMS_PAGE_SIZE)
            shootdown(k, mm, initiator, va, va + VMS_PAGE_SIZE, flags);
        return;
    }
    shootdown(k, mm, initiator, start, end, flags);
}

void vmsi_flush_tlb_range(vms_kernel *k, vmsi_mm *mm, unsigned initiator, uint64_t start,
                          uint64_t end)
{
    vmsi_flush_tlb_mm_range(k, mm, initiator, start, end, 0);
}

/* ---- reclaim's deferred flush (arch_tlbbatch_add_pending / arch_tlbbatch_flush) ---- */

void vmsi_tlb_defer(vms_kernel *k, vmsi_mm *mm, unsigned initiator, uint64_t va)
{
    vmsi_hash_flush(k, mm, va, va + VMS_PAGE_SIZE); /* a shared table cannot wait */
    if (!k->cfg.tlb_batch) {
        vmsi_flush_tlb_range(k, mm, initiator, va, va + VMS_PAGE_SIZE);
        return;
    }
    /* The PTE changed: cores that catch up later see a new generation; cores with mm
     * loaded now are noted for the batch flush. */
    mm->tlb_gen++;
    for (unsigned i = 0; i < VMS_MAX_CORES / 64; i++)
        k->reclaim_mask[i] |= mm->cpumask[i];
    k->reclaim_pending = true;
    k->st.tlb_deferred++;
}

void vmsi_tlb_defer_flush(vms_kernel *k, unsigned initiator)
{
    if (!k->reclaim_pending)
        return;
    k->reclaim_pending = false;
    uint64_t t0 = clock_of(k, initiator), handlers = 0, waited = 0;
    unsigned ntargets = 0;
    bool local_all = false;
    for (unsigned core = 0; core < k->ncores; core++) {
        if (!((k->reclaim_mask[core / 64] >> (core % 64)) & 1u))
            continue;
        vmsi_mm *mm = k->cur_mm[core];
        if (!mm)
            continue; /* left the mm since: its next switch to it catches up */
        bool remote = core != initiator;
        uint64_t h0 = clock_of(k, core);
        if (remote) {
            vmsi_charge(k, initiator, k->cfg.cost.ipi_send);
            waited += k->cfg.cost.ipi_send;
            vmsi_charge(k, core, k->cfg.cost.ipi);
            k->sd_targets[ntargets] = core;
        }
        /* flush_tlb_func with TLB_FLUSH_ALL: the loaded mm's PCID (others catch up). The
         * core is asked for after the charges: in a VM two CPUs may share a host core,
         * and charging the initiator loads its vCPU there. */
        vms_core *c = vmsi_core(k, core);
        if (has_pcid(k, mm))
            vms_core_mmu_flush_asid(c, mm->pcid);
        else
            vms_core_mmu_load_root(c, mm->pt.root, mm->pcid, true);
        mm->cpu_gen[core] = mm->tlb_gen;
        if (remote) {
            uint64_t arrive =
                (uint64_t)k->cfg.cost.ipi_send * (ntargets + 1) + ipi_latency(k, initiator, core);
            handlers += clock_of(k, core) - h0;
            k->sd_ack[ntargets++] =
                arrive + (clock_of(k, core) - h0) + ipi_latency(k, core, initiator);
            k->st.nr_tlb_remote_flush_received++;
            report_ipi(k, initiator, core);
        } else {
            k->st.nr_tlb_local_flush_all++;
            local_all = true;
        }
    }
    memset(k->reclaim_mask, 0, sizeof k->reclaim_mask);
    uint64_t cycles0 = k->st.tlb_shootdown_cycles;
    if (ntargets) {
        uint64_t done = 0;
        for (unsigned i = 0; i < ntargets; i++)
            done = k->sd_ack[i] > done ? k->sd_ack[i] : done;
        uint64_t now = initiator == VMSI_NO_CORE ? waited : clock_of(k, initiator) - t0;
        if (done > now) {
            vmsi_charge(k, initiator, done - now);
            waited += done - now;
        }
        k->st.nr_tlb_remote_flush++;
        k->st.tlb_shootdown_cycles +=
            handlers + (initiator == VMSI_NO_CORE ? waited : clock_of(k, initiator) - t0);
    }
    if ((ntargets || local_all) && vmsi_tap_on(vmsi_machine_tap(k->m))) {
        vms_event ev = {.shootdown = {.pid = -1,
                                      .via = VMS_EV_VIA_IPI,
                                      .full = true,
                                      .deferred = true,
                                      .targets = ntargets,
                                      .local_all = local_all,
                                      .cycles = k->st.tlb_shootdown_cycles - cycles0}};
        report_shootdown(k, initiator, &ev);
    }
}

/* Forget mm on every core: switch cores running it to init_mm (before its tables go). */
void vmsi_mm_drop_cores(vms_kernel *k, vmsi_mm *mm)
{
    for (unsigned core = 0; core < k->ncores; core++)
        if (k->cur_mm[core] == mm) {
            bool lazy = k->cpu[core].lazy;
            vmsi_switch_mm(k, core, NULL);
            k->cpu[core].lazy = lazy;
        }
}

/*
 * A PCID for a new mm: the next never-used one, else a released one after flushing it
 * from every core (INVPCID single context). Returns VMSI_NO_PCID (0) when PCIDs are off
 * or all 4095 are taken: that mm then shares PCID 0 and every switch to it flushes.
 */
vms_status vmsi_pcid_alloc(vms_kernel *k, uint16_t *pcid)
{
    *pcid = VMSI_NO_PCID;
    if (!k->cfg.pcid)
        return VMS_OK;
    for (unsigned n = 0; n < VMSI_MAX_PCID; n++) {
        unsigned p = k->pcid_next;
        k->pcid_next = p == VMSI_MAX_PCID ? 1 : p + 1;
        if (k->pcid_used[p] == 1)
            continue;
        if (k->pcid_used[p] == 2) {
            for (unsigned c = 0; c < k->ncores; c++)
                vms_core_mmu_flush_asid(vmsi_core(k, c), p);
            k->st.pcid_flush++;
        }
        k->pcid_used[p] = 1;
        *pcid = (uint16_t)p;
        return VMS_OK;
    }
    return VMS_OK;
}

void vmsi_pcid_free(vms_kernel *k, uint16_t pcid)
{
    if (pcid != VMSI_NO_PCID)
        k->pcid_used[pcid] = 2;   /* free, but cores may still cache its entries */
    vmsi_hash_flush_ctx(k, pcid); /* … but no hashed table may */
}

void vms_kernel_set_shootdown_hook(vms_kernel *k, vms_shootdown_fn fn, void *ud)
{
    k->sd_hook = fn;
    k->sd_ud = fn ? ud : NULL;
}
