/*
 * virt/vcpu.c — a core as a vCPU: VM entry and exit (the VMCS's guest and host state,
 * reduced to what translation reads) and the core's TLB-miss path in a guest, the 2D
 * walk (nested.c) filling the core's TLBs with the composed translation.
 *
 * TLB entries of a guest are tagged VM << 32 | PCID (vms_ctx, common.h): Intel's
 * VPID-tagged "combined mappings" (SDM Vol. 3C §29.4.1), AMD's ASID-tagged entries
 * (APM Vol. 2 §15.16), Arm's VMID-tagged stage 1+2 entries. A composed entry is sized
 * by the smaller page of the two stages and holds the rights of both; one whose rights
 * the guest's own check cannot express (stage 2 read- or execute-denied where the guest
 * allows it) is not cached. A rights failure on a guest TLB hit walks again (mmu.c), so
 * that the stage which refuses is the one reported.
 */
#include "hw/core_impl.h"
#include "hw/memside.h"
#include "hw/tlb_impl.h"
#include "virt/virt_impl.h"
#include "vmsim/virt.h"

vms_status vms_core_vm_enter(vms_core *c, vms_nested *n, uint32_t vm, const vms_regs *guest)
{
    if (c->swtlb) /* a software-managed TLB (arch/mips) has no two-stage MMU here */
        return VMS_ERR_UNSUPPORTED;
    if (vm == 0 || c->vm || !n)
        return VMS_ERR_INVAL;
    c->host_regs = c->regs;
    c->host_pwc = c->pwc;
    c->regs = *guest;
    c->nested = n;
    c->vm = vm;
    c->pwc = vms_nested_guest_pwc(n);
    vmsi_core_sync(c);
    return VMS_OK;
}

vms_status vms_core_vm_enter_shadow(vms_core *c, uint32_t vm, const vms_regs *shadow, vms_pwc *pwc)
{
    if (vm == 0 || c->vm)
        return VMS_ERR_INVAL;
    c->host_regs = c->regs;
    c->host_pwc = c->pwc;
    c->regs = *shadow;
    c->nested = NULL; /* one-dimensional: the hardware walks the shadow tables */
    c->vm = vm;
    c->pwc = pwc;
    vmsi_core_sync(c);
    return VMS_OK;
}

void vms_core_vm_exit(vms_core *c)
{
    if (!c->vm)
        return;
    c->regs = c->host_regs;
    c->pwc = c->host_pwc;
    c->nested = NULL;
    c->vm = 0;
    vmsi_core_sync(c);
}

vms_nested *vms_core_nested(const vms_core *c)
{
    return c->nested;
}

/* Did the walk write the entry it read as r back (A/D of either stage)? It reads
 * differently now (the model looking, not a bus access). An entry read several times
 * (an upper second-stage entry, once per guest level) is a store once: only its first
 * read saw the old value. */
static bool written_back(vms_core *c, const vms_nested_ref *r)
{
    uint64_t now = 0;
    return vms_ram_read(vms_bus_ram(c->m->bus), r->ptep, &now, 8) == VMS_OK && now != r->pte;
}

/*
 * With data caches (or DRAM) on: the 2D walk's references — each guest entry at its
 * host-physical address and each second-stage entry, in the order the hardware makes
 * them (t) — go through core c's hierarchy as a native walk's references do
 * (vmsi_core_walk_mem: walk loads from L1d, or L2 with cache.walk = l2, counted in
 * cache.walk_refs), and the entries then written back are stores (cost.ad_write charges
 * them). Returns the loads' cycles; references beyond what t holds (none in a walk of
 * at most 35) cost cost.walk_ref each. Nested-TLB hits read nothing.
 */
static uint64_t nested_walk_mem(vms_core *c, const vms_nested_trace *t, uint64_t refs, bool ok)
{
    vmsi_memside *ms = c->m->ms;
    uint64_t lat = 0;
    c->walk_nwhere = 0; /* vms_core_walk_where describes native walks only */
    for (unsigned i = 0; i < t->nrefs; i++)
        lat += vmsi_memside_access(ms, c->id, c->cycles + lat, t->ref[i].ptep, 8, VMS_ACC_READ,
                                   true, NULL);
    for (unsigned i = 0; ok && i < t->nrefs; i++) {
        bool again = false; /* the same entry read earlier in this walk */
        for (unsigned j = 0; j < i && !again; j++)
            again = t->ref[j].ptep == t->ref[i].ptep;
        if (!again && written_back(c, &t->ref[i]))
            (void)vmsi_memside_access(ms, c->id, c->cycles + lat, t->ref[i].ptep, 8, VMS_ACC_WRITE,
                                      false, NULL);
    }
    if (refs > t->nrefs)
        lat += (refs - t->nrefs) * c->m->cfg.cost.walk_ref;
    return lat;
}

bool vmsi_nested_walk_and_fill(vms_core *c, uint64_t va, vms_access_kind kind, vms_tlb *l1,
                               vms_xlate *x, vms_fault *fault)
{
    const vms_cost_config *cost = &c->m->cfg.cost;
    uint64_t refs = c->wstats.mem_refs, adw = c->wstats.ad_writes, pwch = c->wstats.pwc_hits;
    vms_nested_xlate nx;
    vms_nested_trace local, *t = NULL;
    if (c->m->ms) { /* the caches need the references: the caller's trace, or ours */
        t = vmsi_nested_kept_trace(c->nested);
        t = t ? t : &local;
    }
    bool ok =
        vms_nested_walk(c->nested, c->pwc, &c->regs, va, kind, &nx, fault, NULL, &c->wstats, t);
    refs = c->wstats.mem_refs - refs;
    c->cycles += (c->m->ms ? nested_walk_mem(c, t, refs, ok) : refs * cost->walk_ref) +
                 (c->wstats.ad_writes - adw) * cost->ad_write +
                 (c->wstats.pwc_hits - pwch) * cost->pwc_hit;
    if (!ok)
        return false;
    *x = nx.x;
    if (!nx.cacheable)
        return true;
    vms_xlate fill = nx.x;
    fill.global = fill.global && c->pge;
    if (c->tlb[VMS_TLB_L2])
        vms_tlb_fill(c->tlb[VMS_TLB_L2], c->ctx, va, &fill);
    if (l1)
        vms_tlb_fill(l1, c->ctx, va, &fill);
    return true;
}

/* Drop the entries of vm (VMS_TLB_ALL_VMS: of every guest) from every TLB level. */
static void flush_vm(vms_core *c, uint32_t vm, bool keep_global)
{
    for (unsigned l = 0; l < VMS_TLB_NLEVELS; l++)
        if (c->tlb[l])
            vms_tlb_flush_vm(c->tlb[l], vm, keep_global);
}

/* The guest PWC of the VM running on c, when vm selects it. */
static void flush_guest_pwc(vms_core *c, uint32_t vm)
{
    if (c->vm && c->pwc && (vm == VMS_TLB_ALL_VMS || vm == c->vm))
        vms_pwc_flush_all(c->pwc);
}

vms_status vms_core_invept(vms_core *c, unsigned type, uint32_t vm, vms_nested *n)
{
    if (type == VMS_INVEPT_SINGLE && vm == 0)
        return VMS_ERR_INVAL;
    if (type != VMS_INVEPT_SINGLE && type != VMS_INVEPT_ALL)
        return VMS_ERR_INVAL;
    uint32_t which = type == VMS_INVEPT_ALL ? VMS_TLB_ALL_VMS : vm;
    flush_vm(c, which, false);
    flush_guest_pwc(c, which);
    if (n)
        vms_nested_flush_s2(n);
    return VMS_OK;
}

vms_status vms_core_invvpid(vms_core *c, unsigned type, uint32_t vpid, uint64_t va)
{
    if (type > VMS_INVVPID_SINGLE_KEEP_GLOBAL || (type != VMS_INVVPID_ALL && vpid == 0))
        return VMS_ERR_INVAL;
    if (type == VMS_INVVPID_ADDR) {
        for (unsigned l = 0; l < VMS_TLB_NLEVELS; l++)
            if (c->tlb[l])
                vms_tlb_flush_va_vm(c->tlb[l], vpid, va);
        flush_guest_pwc(c, vpid);
        return VMS_OK;
    }
    uint32_t which = type == VMS_INVVPID_ALL ? VMS_TLB_ALL_VMS : vpid;
    flush_vm(c, which, type == VMS_INVVPID_SINGLE_KEEP_GLOBAL);
    flush_guest_pwc(c, which);
    return VMS_OK;
}
