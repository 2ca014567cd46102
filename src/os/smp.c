/*
 * smp.c — address spaces on cores: context switches (CR3 with a PCID), PCID allocation,
 * and TLB invalidation across cores by shootdown (Linux arch/x86/mm/tlb.c).
 *
 * A core runs one address space at a time (k->cur_mm[core]; NULL is init_mm). With
 * PCIDs (CR4.PCIDE) each mm has its own PCID 1 … 4095 and a switch loads CR3 with the
 * no-flush bit: the TLB keeps every address space's entries, tagged. Without PCIDs every
 * CR3 load flushes the non-global entries.
 *
 * mm->cpumask holds each core whose TLB or PWC may hold entries of mm: set when the
 * core loads mm's CR3, cleared only when the core certainly dropped them (a flushing
 * CR3 load away from mm without PCIDs). Invalidating a range of mm (after munmap,
 * mprotect, a COW break, fork's write-protect …) visits the cores in the mask:
 *   - the initiating core running mm: INVLPG per page (a full PCID flush above
 *     tlb_single_page_flush_ceiling = 33 pages, as Linux);
 *   - any other core: an IPI (cost.ipi charged to the initiator and to the target), then
 *     the target executes INVPCID type 0 (address, mm's PCID) per page, or type 1 (the
 *     whole PCID) above the ceiling — it works whether or not mm is current there;
 *     without PCIDs the target runs mm (otherwise it is not in the mask) and uses INVLPG.
 * A recycled PCID is flushed from every core (INVPCID type 1) before its new owner uses
 * it, so a freed address space's entries can never be hit.
 *
 * The initiating core invalidates its own entries even when it is not running mm (for
 * instance fork's write-protect issued from the parent's core, which then is current);
 * that case is a "local" INVPCID. Deliberate simplification: no lazy-TLB mode, no
 * batching across calls, and frames are returned before the flush inside one system
 * call — nothing can run in between in this single-threaded model.
 */
#include "os/os_impl.h"

static bool mask_test(const vmsi_mm *mm, unsigned c)
{
    return (mm->cpumask[c / 64] >> (c % 64)) & 1u;
}

static void mask_set(vmsi_mm *mm, unsigned c, bool on)
{
    uint64_t bit = UINT64_C(1) << (c % 64);
    mm->cpumask[c / 64] = on ? (mm->cpumask[c / 64] | bit) : (mm->cpumask[c / 64] & ~bit);
}

/* Load mm (NULL: init_mm) on core: switch_mm_irqs_off. */
void vmsi_switch_mm(vms_kernel *k, unsigned core, vmsi_mm *mm)
{
    vmsi_mm *prev = k->cur_mm[core];
    if (prev == mm)
        return;
    vms_core *c = vmsi_core(k, core);
    uint64_t root = mm ? mm->pt.root : k->init_pt.root;
    uint32_t asid = mm ? mm->pcid : VMSI_NO_PCID;
    if (k->cfg.pcid && (!mm || mm->pcid != VMSI_NO_PCID)) {
        vms_core_mmu_load_root(c, root, asid, false);
    } else {
        vms_core_mmu_load_root(c, root, asid, true); /* drops this PCID's non-global entries */
        if (prev && (!k->cfg.pcid || prev->pcid == VMSI_NO_PCID))
            mask_set(prev, core, false);
        if (k->cfg.pcid) /* PCID 0 is shared by init_mm and PCID-less mms: flushed now */
            for (unsigned i = 0; i < k->nprocs; i++)
                if (k->procs[i]->mm && k->procs[i]->mm->pcid == VMSI_NO_PCID &&
                    k->procs[i]->mm != mm)
                    mask_set(k->procs[i]->mm, core, false);
    }
    k->cur_mm[core] = mm;
    if (mm)
        mask_set(mm, core, true);
    k->st.context_switches++;
    vmsi_charge(k, core, k->cfg.cost.ctx_switch);
}

/* Invalidate [start, end) of mm on one core, as that core itself would. */
static void flush_on(vms_kernel *k, vmsi_mm *mm, unsigned core, uint64_t start, uint64_t end,
                     bool full)
{
    vms_core *c = vmsi_core(k, core);
    bool current = k->cur_mm[core] == mm;
    bool pcids = k->cfg.pcid && mm->pcid != VMSI_NO_PCID;
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

/*
 * flush_tlb_mm_range: after changing mm's PTEs in [start, end), make every core drop
 * translations of that range (and the PCID's paging-structure-cache entries). The
 * initiator is the core of the task making the change.
 */
void vmsi_flush_tlb_range(vms_kernel *k, vmsi_mm *mm, unsigned initiator, uint64_t start,
                          uint64_t end)
{
    if (start >= end)
        return;
    bool full = ((end - start) >> VMS_PAGE_SHIFT) > VMSI_TLB_FLUSH_CEILING;
    /* Huge ranges are flushed page by page only up to the ceiling: walk 4K steps only
     * when the range is small (huge leaves are dropped by any address inside them). */
    unsigned ipis = 0;
    for (unsigned core = 0; core < k->ncores; core++) {
        if (!mask_test(mm, core))
            continue;
        if (core == initiator) {
            flush_on(k, mm, core, start, end, full);
            if (full)
                k->st.nr_tlb_local_flush_all++;
            else
                k->st.nr_tlb_local_flush_one += (end - start) >> VMS_PAGE_SHIFT;
            continue;
        }
        if (!k->cfg.pcid && k->cur_mm[core] != mm) {
            mask_set(mm, core, false); /* already flushed by its CR3 load */
            continue;
        }
        ipis++;
        vmsi_charge(k, initiator, k->cfg.cost.ipi);
        vmsi_charge(k, core, k->cfg.cost.ipi);
        flush_on(k, mm, core, start, end, full);
        k->st.nr_tlb_remote_flush_received++;
    }
    if (ipis)
        k->st.nr_tlb_remote_flush++;
}

/* Forget mm on every core: switch cores running it to init_mm (before its tables go). */
void vmsi_mm_drop_cores(vms_kernel *k, vmsi_mm *mm)
{
    for (unsigned core = 0; core < k->ncores; core++)
        if (k->cur_mm[core] == mm)
            vmsi_switch_mm(k, core, NULL);
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
}
