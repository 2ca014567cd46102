/*
 * smp.c — address spaces on cores: context switches (CR3 with a PCID), lazy TLB, PCID
 * allocation, and TLB invalidation across cores by shootdown — IPIs or broadcast
 * INVLPGB — with its cost in time (Linux arch/x86/mm/tlb.c). docs/SMP.md tells the
 * story; the rules:
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
 *     rule (broadcast when the mm is in the mask of >= 3 cores).
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
    return core == VMSI_NO_CORE ? 0 : vms_core_cycles(vmsi_core(k, core));
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

/* Should this shootdown be a broadcast? (Linux: mm has a global ASID, which it gets
 * once active on 3 or more CPUs; here every PCID is global. A PCID-less mm broadcasts
 * PCID 0, which over-flushes the other PCID-0 entries: safe.) Kswapd without a core
 * has no core to issue INVLPGB from: IPIs. */
static bool use_broadcast(vms_kernel *k, vmsi_mm *mm, unsigned initiator)
{
    const vms_machine_config *mc = vms_machine_get_config(k->m);
    if (initiator == VMSI_NO_CORE || mc->invlpgb_max == 0 ||
        (mc->fmt && strcmp(mc->fmt->arch, "x86_64") != 0)) /* INVLPGB is x86's */
        return false;
    switch (k->cfg.shootdown) {
    case VMS_SHOOTDOWN_IPI:
        return false;
    case VMS_SHOOTDOWN_BROADCAST:
        return true;
    case VMS_SHOOTDOWN_AUTO:
        return mask_weight(mm) >= 3;
    }
    return false;
}

/* INVLPGB + TLBSYNC from the initiator: every core's TLBs drop the range (or PCID). */
static unsigned broadcast(vms_kernel *k, vmsi_mm *mm, unsigned initiator, uint64_t start,
                          uint64_t end, bool full, uint64_t gen)
{
    vms_core *c = vmsi_core(k, initiator);
    unsigned max = vms_machine_get_config(k->m)->invlpgb_max, n = 0;
    uint64_t before = vms_core_cycles(c);
    if (full) {
        vms_core_invlpgb(c, VMS_INVLPGB_PCID, 0, mm->pcid, 0);
        n++;
    } else {
        for (uint64_t va = start; va < end; n++) {
            uint64_t pages = (end - va) >> VMS_PAGE_SHIFT;
            unsigned cnt = pages < max ? (unsigned)pages : max;
            vms_core_invlpgb(c, VMS_INVLPGB_VA | VMS_INVLPGB_PCID, va, mm->pcid, cnt - 1);
            va += (uint64_t)cnt << VMS_PAGE_SHIFT;
        }
    }
    vms_core_tlbsync(c);
    /* Those cycles were the core's own (instructions): count them as kernel work. */
    k->st.kernel_cycles += vms_core_cycles(c) - before;
    for (unsigned core = 0; core < k->ncores; core++)
        caught_up(mm, core, gen, full);
    k->st.tlb_invlpgb += n;
    return n;
}

/* One shootdown of [start, end) of mm (flush_tlb_mm_range for one range). */
static void shootdown(vms_kernel *k, vmsi_mm *mm, unsigned initiator, uint64_t start, uint64_t end,
                      unsigned flags)
{
    bool full = ((end - start) >> VMS_PAGE_SHIFT) > VMSI_TLB_FLUSH_CEILING;
    bool freed = (flags & VMSI_FLUSH_FREED) != 0;
    uint64_t gen = ++mm->tlb_gen;
    uint64_t t0 = clock_of(k, initiator), handlers = 0, waited = 0;
    bool local = initiator != VMSI_NO_CORE && k->cur_mm[initiator] == mm;
    unsigned ntargets = 0, lazy_skipped = 0;
    if (local && k->cpu[initiator].lazy) { /* kernel work on an idle core (reclaim) */
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
        if (k->cpu[core].lazy && !freed) {
            lazy_skipped++; /* flushed at its next switch */
            continue;
        }
        k->sd_targets[ntargets++] = core;
    }
    bool bcast = (ntargets || lazy_skipped) && use_broadcast(k, mm, initiator);
    unsigned ninvlpgb = 0;
    if (bcast) {
        ninvlpgb = broadcast(k, mm, initiator, start, end, full, gen);
        /* Every core was flushed, lazy ones too (those needing leave_mm: their tables
         * are gone from their TLBs and PWCs as well): no IPI, nothing left to catch up. */
        ntargets = 0;
        lazy_skipped = 0;
        k->st.tlb_broadcasts++;
    } else {
        /* flush_tlb_multi: send, flush locally meanwhile, wait for the slowest ack. */
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
        for (unsigned i = 0; i < ntargets; i++) {
            unsigned core = k->sd_targets[i];
            uint64_t arrive =
                (uint64_t)k->cfg.cost.ipi_send * (i + 1) + ipi_latency(k, initiator, core);
            uint64_t h0 = clock_of(k, core);
            vmsi_charge(k, core, k->cfg.cost.ipi);
            if (k->cpu[core].lazy) { /* freed tables */
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
    if (ntargets || bcast) /* a purely local flush is no shootdown */
        k->st.tlb_shootdown_cycles +=
            handlers + (initiator == VMSI_NO_CORE ? waited : clock_of(k, initiator) - t0);
    if (k->sd_hook && (ntargets || bcast || lazy_skipped)) {
        vms_shootdown_event ev = {
            .pid = pid_of_mm(k, mm),
            .initiator = initiator,
            .start = start,
            .end = end,
            .full = full,
            .broadcast = bcast,
            .invlpgb = ninvlpgb,
            .ntargets = ntargets,
            .targets = k->sd_targets,
            .ack = k->sd_ack,
            .lazy_skipped = lazy_skipped,
            .start_cycle = t0,
            .cycles = initiator == VMSI_NO_CORE ? waited : clock_of(k, initiator) - t0,
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
    for (unsigned core = 0; core < k->ncores; core++) {
        if (!((k->reclaim_mask[core / 64] >> (core % 64)) & 1u))
            continue;
        vmsi_mm *mm = k->cur_mm[core];
        if (!mm)
            continue; /* left the mm since: its next switch to it catches up */
        vms_core *c = vmsi_core(k, core);
        bool remote = core != initiator;
        uint64_t h0 = clock_of(k, core);
        if (remote) {
            vmsi_charge(k, initiator, k->cfg.cost.ipi_send);
            waited += k->cfg.cost.ipi_send;
            vmsi_charge(k, core, k->cfg.cost.ipi);
            k->sd_targets[ntargets] = core;
        }
        /* flush_tlb_func with TLB_FLUSH_ALL: the loaded mm's PCID (others catch up). */
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
        } else {
            k->st.nr_tlb_local_flush_all++;
        }
    }
    memset(k->reclaim_mask, 0, sizeof k->reclaim_mask);
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
        k->pcid_used[pcid] = 2; /* free, but cores may still cache its entries */
    vmsi_hash_flush_ctx(k, pcid); /* … but no hashed table may */
}

void vms_kernel_set_shootdown_hook(vms_kernel *k, vms_shootdown_fn fn, void *ud)
{
    k->sd_hook = fn;
    k->sd_ud = fn ? ud : NULL;
}
