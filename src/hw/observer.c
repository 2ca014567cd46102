/*
 * observer.c — the event tap (vmsim/events.h, DESIGN.md "hw observer"): installing the
 * observer, stamping events with their core and cycle, and the JSON form of every event
 * (docs/EVENTS.md documents each field; `vmsim run|replay --events FILE` writes these).
 *
 * Nothing here runs unless an observer is installed: emit sites test vmsi_tap_on first.
 */
#include <inttypes.h>

#include "hw/core_impl.h"
#include "hw/tap.h"
#include "vmsim/iommu.h"

vmsi_tap *vmsi_machine_tap(vms_machine *m)
{
    return &m->tap;
}

void vms_machine_set_observer(vms_machine *m, vms_event_fn fn, void *user)
{
    m->tap.fn = fn;
    m->tap.user = fn ? user : NULL;
}

void vms_machine_get_observer(const vms_machine *m, vms_event_fn *fn, void **user)
{
    *fn = m->tap.fn;
    *user = m->tap.user;
}

void vmsi_tap_emit(const vmsi_tap *t, int core, vms_event *ev)
{
    const vms_machine *m = t->m;
    ev->core = core >= 0 && (unsigned)core < m->ncores ? core : VMS_EV_NO_CORE;
    ev->cycle = ev->core >= 0 ? m->cores[ev->core].cycles : 0;
    t->fn(t->user, ev);
}

void vmsi_tap_emit_kernel(const vmsi_tap *t, vms_event *ev)
{
    unsigned c = t->kernel_core ? *t->kernel_core : UINT32_MAX;
    vmsi_tap_emit(t, c < t->m->ncores ? (int)c : VMS_EV_NO_CORE, ev);
}

void vmsi_unit_emit(const vmsi_unit_tap *u, vms_event *ev)
{
    vmsi_tap_emit(u->tap, (int)u->core->id, ev);
}

/* ---- names ---- */

static const char *const type_names[VMS_EV_NTYPES] = {
    [VMS_EV_ACCESS] = "access",
    [VMS_EV_TLB_LOOKUP] = "tlb_lookup",
    [VMS_EV_TLB_FILL] = "tlb_fill",
    [VMS_EV_TLB_INVALIDATE] = "tlb_invalidate",
    [VMS_EV_PWC_LOOKUP] = "pwc_lookup",
    [VMS_EV_PWC_FILL] = "pwc_fill",
    [VMS_EV_PWC_INVALIDATE] = "pwc_invalidate",
    [VMS_EV_WALK_STEP] = "walk_step",
    [VMS_EV_WALK] = "walk",
    [VMS_EV_FAULT] = "fault",
    [VMS_EV_FAULT_RESOLVED] = "fault_resolved",
    [VMS_EV_PTE_WRITE] = "pte_write",
    [VMS_EV_TLB_OP] = "tlb_op",
    [VMS_EV_SHOOTDOWN] = "shootdown",
    [VMS_EV_IPI] = "ipi",
    [VMS_EV_SWAP] = "swap",
    [VMS_EV_DMA] = "dma",
    [VMS_EV_IOMMU] = "iommu",
    [VMS_EV_INTERRUPT] = "interrupt",
    [VMS_EV_RECLAIM] = "reclaim",
    [VMS_EV_OOM_KILL] = "oom_kill",
    [VMS_EV_DIRTY_REWALK] = "dirty_rewalk",
    [VMS_EV_GUEST_PTE_WRITE] = "guest_pte_write",
};

const char *vms_event_type_name(vms_event_type t)
{
    return (unsigned)t < VMS_EV_NTYPES && type_names[t] ? type_names[t] : "?";
}

static const char *const level_names[VMS_TLB_NLEVELS] = {"l1i", "l1d", "l2"};
static const char *const kind_names[3] = {"read", "write", "fetch"};
static const char *const size_names[VMS_PG_NSIZES] = {"4k", "2m", "1g"};
static const char *const flush_names[] = {"va", "ctx", "vm", "all"};
static const char *const reason_names[] = {"miss", "dirty", "range"};
static const char *const result_names[] = {"minor", "major", "segv", "sigbus"};
static const char *const op_names[] = {"invlpg",  "invpcid",          "cr3_load", "flush_all",
                                       "invlpgb", "invlpgb_received", "tlbsync"};
static const char *const via_names[] = {"ipi", "broadcast", "sbi"};
static const char *const iommu_mode_names[] = {"off", "passthrough", "translate", "no_context"};
static const char *const fault_kind_names[] = {"none", "pf", "gp", "bus", "s2"};
static const char *const how_names[VMS_EV_NHOW] = {
    "zero_page", "anon",     "cow_copy",     "cow_reuse", "private_copy", "file",      "swap_in",
    "swapcache", "spurious", "stack_expand", "thp",       "oom_kill",     "swapbacked"};

/* names[i] when i is in range, else "?" (a value from a newer library). */
static const char *name_of(const char *const *names, size_t n, unsigned i)
{
    return i < n ? names[i] : "?";
}
#define NAME(tab, i) name_of(tab, sizeof tab / sizeof tab[0], (unsigned)(i))

/* ---- JSON ---- */

/* The members are printed by one printf per type; X is a 64-bit value as a hex string. */
#define X(v) (unsigned long long)(v)

static vms_status members(const vms_event *e, vms_strbuf *sb)
{
    switch (e->type) {
    case VMS_EV_ACCESS:
        return vms_strbuf_printf(sb, ",\"va\":\"0x%llx\",\"kind\":\"%s\",\"user\":%s",
                                 X(e->access.va), NAME(kind_names, e->access.kind),
                                 e->access.user ? "true" : "false");
    case VMS_EV_TLB_LOOKUP:
        if (!e->tlb_lookup.hit)
            return vms_strbuf_printf(sb,
                                     ",\"level\":\"%s\",\"va\":\"0x%llx\",\"ctx\":\"0x%llx\","
                                     "\"hit\":false",
                                     NAME(level_names, e->tlb_lookup.level), X(e->tlb_lookup.va),
                                     X(e->tlb_lookup.ctx));
        return vms_strbuf_printf(sb,
                                 ",\"level\":\"%s\",\"va\":\"0x%llx\",\"ctx\":\"0x%llx\","
                                 "\"hit\":true,\"size\":\"%s\",\"page_pa\":\"0x%llx\"",
                                 NAME(level_names, e->tlb_lookup.level), X(e->tlb_lookup.va),
                                 X(e->tlb_lookup.ctx), NAME(size_names, e->tlb_lookup.size),
                                 X(e->tlb_lookup.page_pa));
    case VMS_EV_TLB_FILL: {
        vms_status st = vms_strbuf_printf(
            sb,
            ",\"level\":\"%s\",\"va\":\"0x%llx\",\"ctx\":\"0x%llx\",\"size\":\"%s\","
            "\"page_pa\":\"0x%llx\",\"global\":%s,\"evicted\":%s",
            NAME(level_names, e->tlb_fill.level), X(e->tlb_fill.va), X(e->tlb_fill.ctx),
            NAME(size_names, e->tlb_fill.size), X(e->tlb_fill.page_pa),
            e->tlb_fill.global ? "true" : "false", e->tlb_fill.evicted ? "true" : "false");
        if (st == VMS_OK && e->tlb_fill.evicted)
            st = vms_strbuf_printf(sb, ",\"victim_va\":\"0x%llx\",\"victim_size\":\"%s\"",
                                   X(e->tlb_fill.victim_va),
                                   NAME(size_names, e->tlb_fill.victim_size));
        return st;
    }
    case VMS_EV_TLB_INVALIDATE:
        return vms_strbuf_printf(
            sb,
            ",\"level\":\"%s\",\"how\":\"%s\",\"va\":\"0x%llx\","
            "\"ctx\":\"0x%llx\",\"keep_global\":%s,\"count\":%u",
            NAME(level_names, e->tlb_invalidate.level), NAME(flush_names, e->tlb_invalidate.how),
            X(e->tlb_invalidate.va), X(e->tlb_invalidate.ctx),
            e->tlb_invalidate.keep_global ? "true" : "false", e->tlb_invalidate.count);
    case VMS_EV_PWC_LOOKUP:
        return vms_strbuf_printf(sb,
                                 ",\"va\":\"0x%llx\",\"ctx\":\"0x%llx\",\"level\":%u,"
                                 "\"table_pa\":\"0x%llx\"",
                                 X(e->pwc_lookup.va), X(e->pwc_lookup.ctx), e->pwc_lookup.level,
                                 X(e->pwc_lookup.table_pa));
    case VMS_EV_PWC_FILL:
        return vms_strbuf_printf(sb,
                                 ",\"va\":\"0x%llx\",\"ctx\":\"0x%llx\",\"level\":%u,"
                                 "\"table_pa\":\"0x%llx\"",
                                 X(e->pwc_fill.va), X(e->pwc_fill.ctx), e->pwc_fill.level,
                                 X(e->pwc_fill.table_pa));
    case VMS_EV_PWC_INVALIDATE:
        return vms_strbuf_printf(sb, ",\"how\":\"%s\",\"ctx\":\"0x%llx\",\"count\":%u",
                                 NAME(flush_names, e->pwc_invalidate.how), X(e->pwc_invalidate.ctx),
                                 e->pwc_invalidate.count);
    case VMS_EV_WALK_STEP:
        return vms_strbuf_printf(sb,
                                 ",\"va\":\"0x%llx\",\"level\":%u,\"table_pa\":\"0x%llx\","
                                 "\"index\":%u,\"ptep\":\"0x%llx\",\"pte\":\"0x%llx\","
                                 "\"set\":\"0x%llx\"",
                                 X(e->walk_step.va), e->walk_step.level, X(e->walk_step.table_pa),
                                 e->walk_step.index, X(e->walk_step.ptep), X(e->walk_step.pte),
                                 X(e->walk_step.set));
    case VMS_EV_WALK: {
        vms_status st = vms_strbuf_printf(
            sb,
            ",\"va\":\"0x%llx\",\"kind\":\"%s\",\"reason\":\"%s\",\"ok\":%s,\"refs\":%u,"
            "\"ad_writes\":%u,\"pwc_level\":%u",
            X(e->walk.va), NAME(kind_names, e->walk.kind), NAME(reason_names, e->walk.reason),
            e->walk.ok ? "true" : "false", e->walk.refs, e->walk.ad_writes, e->walk.pwc_level);
        if (st != VMS_OK)
            return st;
        if (e->walk.ok)
            return vms_strbuf_printf(sb, ",\"size\":\"%s\",\"page_pa\":\"0x%llx\"",
                                     NAME(size_names, e->walk.size), X(e->walk.page_pa));
        return vms_strbuf_printf(sb, ",\"fault_level\":%u", e->walk.fault_level);
    }
    case VMS_EV_FAULT:
        return vms_strbuf_printf(sb,
                                 ",\"kind\":\"%s\",\"va\":\"0x%llx\",\"error_code\":\"0x%x\","
                                 "\"flags\":\"0x%x\",\"level\":%u,\"pa\":\"0x%llx\","
                                 "\"tlb_hit\":%s",
                                 NAME(fault_kind_names, e->fault.kind), X(e->fault.va),
                                 (unsigned)e->fault.error_code, (unsigned)e->fault.flags,
                                 e->fault.level, X(e->fault.pa),
                                 e->fault.tlb_hit ? "true" : "false");
    case VMS_EV_FAULT_RESOLVED: {
        vms_status st = vms_strbuf_printf(
            sb, ",\"pid\":%d,\"va\":\"0x%llx\",\"flags\":\"0x%x\",\"result\":\"%s\",\"how\":[",
            e->fault_resolved.pid, X(e->fault_resolved.va), (unsigned)e->fault_resolved.flags,
            NAME(result_names, e->fault_resolved.result));
        const char *sep = "";
        for (unsigned i = 0; st == VMS_OK && i < VMS_EV_NHOW; i++)
            if (e->fault_resolved.how >> i & 1) {
                st = vms_strbuf_printf(sb, "%s\"%s\"", sep, how_names[i]);
                sep = ",";
            }
        if (st != VMS_OK)
            return st;
        return vms_strbuf_printf(sb, "],\"fault_around\":%u", e->fault_resolved.fault_around);
    }
    case VMS_EV_PTE_WRITE:
        return vms_strbuf_printf(sb, ",\"ptep\":\"0x%llx\",\"old\":\"0x%llx\",\"pte\":\"0x%llx\"",
                                 X(e->pte_write.ptep), X(e->pte_write.old), X(e->pte_write.pte));
    case VMS_EV_TLB_OP:
        return vms_strbuf_printf(sb, ",\"op\":\"%s\",\"va\":\"0x%llx\",\"pcid\":%u,\"flush\":%s",
                                 NAME(op_names, e->tlb_op.op), X(e->tlb_op.va),
                                 (unsigned)e->tlb_op.pcid, e->tlb_op.flush ? "true" : "false");
    case VMS_EV_SHOOTDOWN: {
        const char *t = "true", *f = "false";
        return vms_strbuf_printf(
            sb,
            ",\"pid\":%d,\"va\":\"0x%llx\",\"npages\":%llu,\"via\":\"%s\",\"full\":%s,"
            "\"deferred\":%s,\"targets\":%u,\"lazy_skipped\":%u,\"instructions\":%u,"
            "\"local_pages\":%llu,\"local_all\":%s,\"cycles\":%llu",
            e->shootdown.pid, X(e->shootdown.va), X(e->shootdown.npages),
            NAME(via_names, e->shootdown.via), e->shootdown.full ? t : f,
            e->shootdown.deferred ? t : f, e->shootdown.targets, e->shootdown.lazy_skipped,
            e->shootdown.instructions, X(e->shootdown.local_pages), e->shootdown.local_all ? t : f,
            X(e->shootdown.cycles));
    }
    case VMS_EV_IPI:
        return vms_strbuf_printf(sb, ",\"from\":%d,\"vector\":%u", e->ipi.from,
                                 (unsigned)e->ipi.vector);
    case VMS_EV_SWAP:
        return vms_strbuf_printf(sb,
                                 ",\"dir\":\"%s\",\"slot\":%llu,\"pfn\":\"0x%llx\",\"error\":%s",
                                 e->swap.out ? "out" : "in", X(e->swap.slot), X(e->swap.pfn),
                                 e->swap.error ? "true" : "false");
    case VMS_EV_DMA: {
        vms_status st = vms_strbuf_printf(
            sb,
            ",\"rid\":\"%02x:%02x.%x\",\"iova\":\"0x%llx\",\"len\":%llu,\"done\":%llu,"
            "\"write\":%s,\"ok\":%s",
            (unsigned)(e->dma.rid >> 8 & 0xff), (unsigned)(e->dma.rid >> 3 & 31),
            (unsigned)(e->dma.rid & 7), X(e->dma.iova), X(e->dma.len), X(e->dma.done),
            e->dma.write ? "true" : "false", e->dma.ok ? "true" : "false");
        if (st == VMS_OK && e->dma.vm)
            st = vms_strbuf_printf(sb, ",\"vm\":%u", (unsigned)e->dma.vm);
        return st;
    }
    case VMS_EV_IOMMU: {
        vms_status st = vms_strbuf_printf(
            sb,
            ",\"rid\":\"%02x:%02x.%x\",\"iova\":\"0x%llx\",\"write\":%s,\"mode\":\"%s\","
            "\"hit\":%s,\"walked\":%s,\"refs\":%u,\"ok\":%s",
            (unsigned)(e->iommu.rid >> 8 & 0xff), (unsigned)(e->iommu.rid >> 3 & 31),
            (unsigned)(e->iommu.rid & 7), X(e->iommu.iova), e->iommu.write ? "true" : "false",
            NAME(iommu_mode_names, e->iommu.mode), e->iommu.hit ? "true" : "false",
            e->iommu.walked ? "true" : "false", e->iommu.refs, e->iommu.ok ? "true" : "false");
        if (st != VMS_OK)
            return st;
        st = e->iommu.ok
                 ? vms_strbuf_printf(sb, ",\"pa\":\"0x%llx\"", X(e->iommu.pa))
                 : vms_strbuf_printf(sb, ",\"reason\":\"%s\"",
                                     vms_iommu_reason_str((vms_iommu_reason)e->iommu.reason));
        /* a VM's device: its guest-physical address and, when let through, the host's */
        if (st == VMS_OK && e->iommu.vm)
            st = vms_strbuf_printf(sb, ",\"vm\":%u,\"gpa\":\"0x%llx\"", (unsigned)e->iommu.vm,
                                   X(e->iommu.iova));
        if (st == VMS_OK && e->iommu.vm && e->iommu.ok)
            st = vms_strbuf_printf(sb, ",\"hpa\":\"0x%llx\"", X(e->iommu.pa));
        if (st == VMS_OK && e->iommu.page_request)
            st = vms_strbuf_printf(sb, ",\"page_request\":\"%s\"",
                                   e->iommu.served ? "served" : "refused");
        return st;
    }
    case VMS_EV_GUEST_PTE_WRITE:
        return vms_strbuf_printf(sb,
                                 ",\"vm\":%u,\"gpa\":\"0x%llx\",\"hpa\":\"0x%llx\","
                                 "\"old\":\"0x%llx\",\"pte\":\"0x%llx\",\"trapped\":%s",
                                 (unsigned)e->guest_pte_write.vm, X(e->guest_pte_write.gpa),
                                 X(e->guest_pte_write.hpa), X(e->guest_pte_write.old),
                                 X(e->guest_pte_write.pte),
                                 e->guest_pte_write.trapped ? "true" : "false");
    case VMS_EV_INTERRUPT:
        return vms_strbuf_printf(sb, ",\"vector\":%u", (unsigned)e->interrupt.vector);
    case VMS_EV_RECLAIM:
        return vms_strbuf_printf(sb, ",\"pfn\":\"0x%llx\",\"anon\":%s,\"kswapd\":%s",
                                 X(e->reclaim.pfn), e->reclaim.anon ? "true" : "false",
                                 e->reclaim.kswapd ? "true" : "false");
    case VMS_EV_DIRTY_REWALK:
        return vms_strbuf_printf(sb, ",\"va\":\"0x%llx\"", X(e->dirty_rewalk.va));
    case VMS_EV_OOM_KILL:
        return vms_strbuf_printf(sb, ",\"pid\":%d", e->oom_kill.pid);
    default:
        return VMS_OK;
    }
}

vms_status vms_event_json(const vms_event *ev, vms_strbuf *sb)
{
    vms_status st = vms_strbuf_printf(sb, "{\"type\":\"%s\",\"cycle\":%" PRIu64 ",\"core\":%d",
                                      vms_event_type_name(ev->type), ev->cycle, ev->core);
    if (st == VMS_OK)
        st = members(ev, sb);
    if (st == VMS_OK)
        st = vms_strbuf_append(sb, "}", 1);
    return st;
}
