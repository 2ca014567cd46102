/*
 * vm.c — virtual machines in a scenario (docs/SCENARIO.md, "Virtual machines"; issue 10):
 *
 *   vm create NAME [mem SIZE] [host SIZE] [s2 ept|npt|arm] [host-page 4K|2M|1G] [levels N]
 *                  [host-levels 3|4|5] [nested-tlb N] [shadow] [guest kernel|pager]
 *                  [vcpus N]
 *   vm NAME spawn PROC [core N]     a process of the guest: later commands on PROC run
 *                                   inside the VM
 *   vm NAME show ept|npt|s2|exits   the second-stage tables (every leaf GPA -> HPA with its
 *                                   bits), or the VM's exits and walk counters
 *
 * A VM is virt.h's vms_vm on the scenario's machine. The hypervisor reserves the VM's
 * host memory (`host`, vm.host_mem) at the top of RAM from the host kernel's frame
 * allocator, as a hypervisor pins guest memory: second-stage tables at its bottom, then
 * the host memory guest pages are backed with, lazily, on second-stage violations (VM
 * exits). Each command on a guest process enters the VM on its core, runs, and leaves.
 *
 * What runs inside is, by default, the kernel model itself as the guest kernel (virt.h
 * vms_guest: x86-64 over EPT or NPT, AArch64 over Arm Stage 2 on an arch=aarch64
 * machine), on which every ordinary command on a guest process runs; or, with `guest
 * pager` (and always under shadow paging), virt.h's minimal demand pager behind
 * scn_guest (below): one address space, a zeroed guest frame for each page first
 * touched, so a VM runs one guest process and only the access commands.
 */
#include <inttypes.h>
#include <string.h>

#include "scenario/scenario_impl.h"
#include "vmsim/arch/aarch64.h"
#include "vmsim/core.h"
#include "vmsim/dma.h"
#include "vmsim/frames.h"
#include "vmsim/proc.h"
#include "vmsim/rng.h"
#include "vmsim/virt.h"

#define TABLES_MIN    (UINT64_C(4) << 20)  /* second-stage tables: at least 4 MiB … */
#define SHADOW_TABLES (UINT64_C(36) << 20) /* … 36 with shadow paging (hv.c: 32 MiB above) */
#define READ_MAX      (UINT64_C(1) << 20)  /* the longest read a guest process does here */

/* A guest kernel: how a VM starts a process and runs an access for it. */
typedef struct scn_guest {
    const char *name;
    unsigned max_procs; /* processes it runs */
    bool (*access)(vms_vm *vm, vms_core *c, uint64_t va, vms_access_kind kind, void *buf,
                   uint32_t len, vms_fault *f);
} scn_guest;

static const scn_guest pager = {"a minimal demand pager (virt.h)", 1, vms_vm_access_data};

typedef struct vm1 {
    vms_vm *vm;    /* the minimal guest's VM, or … */
    vms_guest *kg; /* … the kernel model's (exactly one of them once created) */
    unsigned nvcpus;
    const scn_guest *guest;
    uint64_t base, top; /* the host memory reserved: [base, top) */
    uint16_t did;       /* the IOMMU domain of its assigned devices (0: none yet) */
    unsigned core;      /* the core its process runs on */
    unsigned nprocs;    /* processes spawned (ever) */
    vms_s2_kind kind;
    bool shadow;
    vms_tlb_config ntlb;
    vms_pwc_config gpwc;
} vm1;

struct scn_vms {
    const vms_allocator *a;
    vms_frames *fr;
    vm1 *v; /* per VM name */
    size_t nv;
    int *proc_vm; /* per process name: VM index + 1, 0 for a host process */
    size_t nprocs;
    uint64_t top;       /* the next VM's host memory ends here */
    vms_rng rng;        /* touch random=… */
    char *const *names; /* the VM names (the scenario's) */
    uint32_t next_vpid; /* VPIDs are handed out upward from 1, one per vCPU */
    vms_kernel *hk;     /* the host kernel whose IOMMU driver gave the VMs' domains */
};

/* A snapshot of what a guest command changes, for its narration. */
typedef struct vsnap {
    vms_vm_stats vm;
    vms_nested_stats n;
    uint64_t walks, refs, cycles;
} vsnap;

static void take(vm1 *v, vms_core *c, vsnap *s)
{
    s->vm = *vms_vm_get_stats(v->vm);
    s->n = *vms_nested_get_stats(vms_vm_nested(v->vm));
    s->walks = vms_core_walk_stats(c)->walks;
    s->refs = vms_core_walk_stats(c)->mem_refs;
    s->cycles = vms_core_cycles(c);
}

/* "; guest faults +1, VM exits +2 (2400 cycles), walks +3: 50 refs (…)". */
static void say_delta(vms_strbuf *sb, const vsnap *a, const vsnap *b)
{
    vms_strbuf_printf(sb, "; guest faults +%" PRIu64 ", VM exits +%" PRIu64,
                      b->vm.guest_faults - a->vm.guest_faults, b->vm.exits - a->vm.exits);
    if (b->vm.exits != a->vm.exits)
        vms_strbuf_printf(sb, " (%" PRIu64 " cycles)", b->vm.exit_cycles - a->vm.exit_cycles);
    vms_strbuf_printf(sb, ", walks +%" PRIu64 " (%" PRIu64 " references", b->walks - a->walks,
                      b->refs - a->refs);
    if (b->n.s2_refs != a->n.s2_refs || b->n.guest_refs != a->n.guest_refs)
        vms_strbuf_printf(sb, ": %" PRIu64 " guest, %" PRIu64 " second-stage",
                          b->n.guest_refs - a->n.guest_refs, b->n.s2_refs - a->n.s2_refs);
    vms_strbuf_printf(sb, "), %" PRIu64 " cycles", b->cycles - a->cycles);
}

/* The VMs' table, made when the first `vm` line runs. */
static scn_vms *vms_get(scn_vms **pv, const scn_vmctx *x)
{
    if (*pv)
        return *pv;
    const vms_allocator *a = x->sc->alloc;
    scn_vms *s = vmsi_calloc(a, 1, sizeof *s);
    if (!s)
        return NULL;
    s->a = a;
    s->fr = vms_kernel_frames(x->k);
    s->nv = x->sc->nvmnames;
    s->nprocs = x->sc->nnames;
    s->names = x->sc->vmnames;
    s->next_vpid = 1;
    s->v = vmsi_calloc(a, s->nv + 1, sizeof *s->v);
    s->proc_vm = vmsi_calloc(a, s->nprocs + 1, sizeof *s->proc_vm);
    s->top = vms_machine_get_config(x->m)->ram_bytes & ~((UINT64_C(2) << 20) - 1);
    vms_rng_seed(&s->rng, vms_kernel_get_config(x->k)->seed ^ UINT64_C(0x7e57));
    if (!s->v || !s->proc_vm) {
        vmsi_scn_vm_free(s, a);
        return NULL;
    }
    return *pv = s;
}

void vmsi_scn_vm_free(scn_vms *s, const vms_allocator *a)
{
    if (!s)
        return;
    for (size_t i = 0; s->v && i < s->nv; i++) {
        vms_guest_destroy(s->v[i].kg); /* gives its reserved host memory back */
        if (s->v[i].did && s->hk)
            vms_dma_domain_free(s->hk, s->v[i].did);
    }
    for (size_t i = 0; s->v && i < s->nv; i++)
        if (s->v[i].vm) {
            vms_vm_destroy(s->v[i].vm);
            (void)vms_frames_unreserve(s->fr, s->v[i].base >> VMS_PAGE_SHIFT,
                                       (s->v[i].top - s->v[i].base) >> VMS_PAGE_SHIFT, NULL);
        }
    if (s->v)
        vmsi_free(a, s->v, (s->nv + 1) * sizeof *s->v);
    if (s->proc_vm)
        vmsi_free(a, s->proc_vm, (s->nprocs + 1) * sizeof *s->proc_vm);
    vmsi_free(a, s, sizeof *s);
}

bool vmsi_scn_vm_owns(const scn_vms *s, int proc)
{
    return s && proc >= 0 && (size_t)proc < s->nprocs && s->proc_vm[proc] != 0;
}

vms_kernel *vmsi_scn_vm_kernel(const scn_vms *s, int proc)
{
    if (!vmsi_scn_vm_owns(s, proc))
        return NULL;
    vms_guest *g = s->v[s->proc_vm[proc] - 1].kg;
    return g ? vms_guest_kernel(g) : NULL;
}

int vmsi_scn_vm_of(const scn_vms *s, int proc)
{
    return vmsi_scn_vm_owns(s, proc) ? s->proc_vm[proc] - 1 : -1;
}

vms_kernel *vmsi_scn_vm_kernel_at(const scn_vms *s, int vm)
{
    return s && vm >= 0 && (size_t)vm < s->nv && s->v[vm].kg ? vms_guest_kernel(s->v[vm].kg) : NULL;
}

uint64_t vmsi_scn_vm_exits(const scn_vms *s, int vm)
{
    return vmsi_scn_vm_kernel_at(s, vm) ? vms_guest_get_stats(s->v[vm].kg)->exits : 0;
}

/* Nothing an ordinary command may not do on a kernel guest's process is left: devices
 * assigned to its VM and show walk (a 2D walk) run there too (run.c checks that a
 * device command's device is the process's VM's). */
void vmsi_scn_vm_check(const scn_vms *s, const scn_cmd *c, vms_strbuf *err)
{
    (void)s;
    (void)c;
    (void)err;
}

void vmsi_scn_vm_after(scn_vms *s, const scn_cmd *c, vms_task **task, int vm, uint64_t exits0,
                       vms_strbuf *line)
{
    vms_guest *g = s->v[vm].kg;
    if ((c->op == OP_FORK || c->op == OP_THREAD) && c->proc2 >= 0 && task[c->proc2])
        s->proc_vm[c->proc2] = vm + 1;
    if (c->op == OP_EXIT && c->proc >= 0)
        s->proc_vm[c->proc] = 0;
    uint64_t e = vms_guest_get_stats(g)->exits - exits0;
    if (e)
        vms_strbuf_printf(line, "  (vm %s: %" PRIu64 " VM exit%s)\n", s->names[vm], e,
                          e == 1 ? "" : "s");
}

vms_kernel *vmsi_scn_vm_assign(scn_vms *s, vms_kernel *hk, int vm, vms_dev *dev, bool posted,
                               vms_err *err)
{
    vm1 *v = s && vm >= 0 && (size_t)vm < s->nv ? &s->v[vm] : NULL;
    if (!v || (!v->kg && !v->vm)) {
        vmsi_err(err, VMS_ERR_INVAL, "VM '%s' was not created", s ? s->names[vm] : "?");
        return NULL;
    }
    if (!v->kg) {
        vmsi_err(err, VMS_ERR_UNSUPPORTED,
                 "VM '%s' runs the minimal pager, which has no drivers (a device needs `guest "
                 "kernel`)",
                 s->names[vm]);
        return NULL;
    }
    if (!v->did && vms_dma_domain_alloc(hk, vms_dev_iommu(dev), &v->did, err) != VMS_OK)
        return NULL;
    s->hk = hk;
    vms_guest_dev_config dc = {v->did, posted};
    if (vms_guest_assign_device(v->kg, dev, &dc, err) != VMS_OK)
        return NULL;
    return vms_guest_kernel(v->kg);
}

void vmsi_scn_vm_irqs(const scn_vms *s, int vm, uint64_t out[3])
{
    const vms_guest_stats *gs =
        vmsi_scn_vm_kernel_at(s, vm) ? vms_guest_get_stats(s->v[vm].kg) : NULL;
    out[0] = gs ? gs->exits_intr : 0;
    out[1] = gs ? gs->intr_injected : 0;
    out[2] = gs ? gs->intr_posted : 0;
}

void vmsi_scn_vm_show_walk(scn_vms *s, int vm, vms_task *t, const char *proc, uint64_t va,
                           vms_strbuf *sb)
{
    vm1 *v = &s->v[vm];
    vms_task_info ti;
    vms_task_get_info(t, &ti);
    unsigned cpu = ti.core < v->nvcpus ? ti.core : 0;
    vms_nested *n = vms_guest_nested(v->kg, cpu);
    vms_regs g = *vms_guest_vcpu_regs(v->kg, cpu);
    const vms_pt_format *f = vms_s2_format(vms_nested_s2(n));
    const vms_s2_regs *s2 = vms_nested_s2(n);
    bool arm = s2->kind == VMS_S2_ARM; /* an AArch64 guest: its tables at TTBR0_EL1 */
    const vms_pt_format *gf = arm ? vms_format_aarch64() : NULL;
    /* the process's address space, as its CPU runs it (root | ASID or PCID) */
    if (arm)
        g.ttbr0_el1 = (ti.cr3 & ~VMS_PAGE_MASK) | (ti.cr3 & VMS_PAGE_MASK)
                                                      << VMS_A64_TTBR_ASID_SHIFT;
    else
        g.cr3 = ti.cr3;
    g.user = true;
    vms_strbuf_printf(sb,
                      "2D walk of 0x%" PRIx64 " in %s (vm %s, vCPU %u): %u-level guest paging, "
                      "%s = %s0x%" PRIx64 "; %s = 0x%" PRIx64
                      " (%u levels); a read as the hardware walks it, without the TLB or "
                      "page-walk caches:\n",
                      va, proc, s->names[vm], cpu, vms_regs_levels(&g), arm ? "TTBR0_EL1" : "CR3",
                      arm ? "" : "GPA ", arm ? g.ttbr0_el1 : g.cr3, f->root_reg,
                      arm                      ? s2->vttbr
                      : s2->kind == VMS_S2_EPT ? s2->eptp
                                               : s2->ncr3,
                      f->levels);
    vms_nested_trace tr;
    vms_walk_stats ws = {0};
    vms_nested_xlate x;
    vms_fault fl;
    bool ok = vms_nested_walk(n, NULL, &g, va, VMS_ACC_READ, &x, &fl, NULL, &ws, &tr);
    vms_nested_trace_str(&tr, f, gf, sb);
    if (!ok) {
        vms_nested_fault_str(n, &fl, sb);
        return;
    }
    unsigned g1 = 0;
    for (unsigned i = 0; i < tr.nrefs; i++)
        g1 += tr.ref[i].stage == 1;
    vms_strbuf_printf(sb,
                      "  result: guest-physical 0x%" PRIx64 ", host physical 0x%" PRIx64
                      " (composed %s page); %u references (%u guest, %u second-stage)\n",
                      x.gpa, vms_xlate_pa(&x.x, va), vms_pgsize_name(x.x.size), tr.nrefs, g1,
                      tr.nrefs - g1);
}

static const char *const hpage_names[] = {"4K", "2M", "1G"};
static const char *const kind_names[] = {"none", "EPT", "NPT", "Stage 2"}; /* vms_s2_kind */

/* The settings of a `vm create` line: the vm.* keys, then the line's own words. */
static vms_config_vm settings(const scn_vmctx *x)
{
    vms_config_vm d;
    if (x->sc->vmdef_set)
        d = x->sc->vmdef;
    else
        vms_config_vm_default(&d, vms_machine_get_config(x->m));
    const struct scn_vmopt *o = &x->c->vmo;
    if (o->given & 1)
        d.mem = o->mem;
    if (o->given & 2)
        d.host_mem = o->host;
    if (o->given & 4)
        d.s2 = o->s2;
    if (o->given & 8)
        d.host_page = o->host_page;
    if (o->given & 16)
        d.guest_levels = o->levels;
    if (o->given & 32)
        d.host_levels = o->host_levels;
    if (o->given & 64)
        d.nested_tlb =
            (vms_pwc_level_config){o->nested_tlb, o->nested_tlb > 64 ? 64 : o->nested_tlb, NULL};
    if (o->given & 128)
        d.shadow = o->shadow;
    return d;
}

#define GUEST_TABLES (UINT64_C(4) << 20) /* vms_guest's second-stage tables */

/* vm create for the kernel model as the guest kernel (virt.h vms_guest): it reserves its
 * host memory from the host kernel itself; vCPU i runs on host core i. On an aarch64
 * machine (arm) the guest kernel is AArch64 over Arm Stage 2, one VMID for all its vCPUs;
 * on x86-64 EPT or NPT, a VPID per vCPU. */
static vms_status vm_create_kernel(scn_vms *s, const scn_vmctx *x, const vms_config_vm *d, bool arm)
{
    const scn_cmd *c = x->c;
    vm1 *v = &s->v[c->vm];
    const char *name = x->sc->vmnames[c->vm];
    uint64_t page = vms_pgsize_bytes((vms_pgsize)d->host_page);
    uint64_t align = page > (UINT64_C(2) << 20) ? page : UINT64_C(2) << 20;
    uint64_t top = s->top, base = top > d->host_mem ? (top - d->host_mem) & ~(align - 1) : 0;
    uint64_t host_at = (base + GUEST_TABLES + page - 1) & ~(page - 1);
    unsigned nvcpus = c->vmo.vcpus ? c->vmo.vcpus : 1;
    if (!base || host_at + page > top) {
        vms_strbuf_printf(x->err,
                          "vm create %s: %" PRIu64 "M of host memory do not fit below 0x%" PRIx64
                          " (set ram larger or give `host SIZE`)",
                          name, d->host_mem >> 20, top);
        return VMS_OK;
    }
    v->kind = arm ? VMS_S2_ARM : d->s2 == 2 ? VMS_S2_NPT : VMS_S2_EPT;
    v->gpwc = d->guest_pwc;
    vms_config_vm_tlb(d, &v->ntlb);
    vms_guest_config gc = {.kind = v->kind,
                           .host_levels = d->host_levels,
                           .host_page = (vms_pgsize)d->host_page,
                           .ad = d->ad,
                           .guest_mem = d->mem,
                           .s2_tables_at = base,
                           .host_at = host_at,
                           .host_end = top,
                           .vpid = s->next_vpid,
                           .nvcpus = nvcpus,
                           .exit_cycles = d->exit_cycles,
                           .s2_tlb = v->ntlb.nparts ? &v->ntlb : NULL,
                           .guest_pwc = &v->gpwc,
                           .seed = vms_kernel_get_config(x->k)->seed,
                           .host_kernel = x->k};
    vms_err err = {0};
    vms_status st = vms_guest_create(x->m, &gc, &v->kg, &err);
    if (st != VMS_OK) {
        v->kg = NULL;
        if (st == VMS_ERR_NOMEM)
            return st;
        vms_strbuf_printf(x->err, "vm create %s: %s", name, err.msg);
        return VMS_OK;
    }
    v->base = base;
    v->top = top;
    v->nvcpus = nvcpus;
    s->top = base;
    vms_strbuf_printf(x->line,
                      "vm create %s: %s with %s host pages%s; guest memory %" PRIu64
                      "M; host memory 0x%" PRIx64 "-0x%" PRIx64 " reserved (tables from 0x%" PRIx64
                      ", backing from 0x%" PRIx64 "); %u vCPU%s (%s %u%s); guest kernel: the "
                      "kernel model%s\n",
                      name, kind_names[v->kind], hpage_names[d->host_page % 3],
                      v->ntlb.nparts ? ", a nested TLB" : "", d->mem >> 20, base, top, base,
                      host_at, nvcpus, nvcpus == 1 ? "" : "s", arm ? "VMID" : "VPID", s->next_vpid,
                      nvcpus == 1 || arm ? "" : " upward", arm ? " (AArch64)" : "");
    s->next_vpid += arm ? 1 : nvcpus;
    return VMS_OK;
}

/* vm create: reserve host memory at the top of what is left, build the VM. */
static vms_status vm_create(scn_vms *s, const scn_vmctx *x)
{
    const scn_cmd *c = x->c;
    vm1 *v = &s->v[c->vm];
    const char *name = x->sc->vmnames[c->vm];
    vms_config_vm d = settings(x);
    const char *arch = vms_machine_format(x->m)->arch;
    bool arm = !strcmp(arch, "aarch64");
    if (!arm && strcmp(arch, "x86_64")) {
        vms_strbuf_printf(x->err, "vm create %s: VMs run on x86_64 or aarch64 machines (arch = %s)",
                          name, arch);
        return VMS_OK;
    }
    /* auto: the architecture's own (EPT on x86-64, Stage 2 on aarch64) */
    v->kind = d.s2 == 0 ? (arm ? VMS_S2_ARM : VMS_S2_EPT) : (vms_s2_kind)d.s2;
    if (arm != (v->kind == VMS_S2_ARM)) {
        vms_strbuf_printf(x->err, "vm create %s: %s", name,
                          arm ? "an aarch64 machine's VMs use Arm Stage 2 (s2 arm)"
                              : "s2 arm needs an aarch64 machine (set arch=aarch64)");
        return VMS_OK;
    }
    /* the guest kernel: the kernel model unless the line or shadow paging says pager */
    unsigned guest = c->vmo.guest ? c->vmo.guest : d.shadow ? 1u : 2u;
    if (guest == 2 && d.shadow) {
        vms_strbuf_printf(x->err,
                          "vm create %s: the kernel model as guest kernel runs over EPT, NPT "
                          "or Arm Stage 2 (shadow paging: give `guest pager`)",
                          name);
        return VMS_OK;
    }
    if (guest == 2)
        return vm_create_kernel(s, x, &d, arm);
    uint64_t page = vms_pgsize_bytes((vms_pgsize)d.host_page);
    uint64_t align = page > (UINT64_C(2) << 20) ? page : UINT64_C(2) << 20;
    uint64_t tables = d.shadow ? SHADOW_TABLES : TABLES_MIN;
    if (d.host_mem / 256 > tables)
        tables = (d.host_mem / 256 + VMS_PAGE_MASK) & ~VMS_PAGE_MASK;
    uint64_t top = s->top, base = top > d.host_mem ? (top - d.host_mem) & ~(align - 1) : 0;
    uint64_t host_at = (base + tables + page - 1) & ~(page - 1);
    vms_err err = {0};
    if (!base || host_at + page > top ||
        vms_frames_reserve(s->fr, base >> VMS_PAGE_SHIFT, (top - base) >> VMS_PAGE_SHIFT, &err) !=
            VMS_OK) {
        vms_strbuf_printf(x->err,
                          "vm create %s: cannot reserve %" PRIu64
                          "M of host memory below 0x%" PRIx64
                          " for its tables and %s pages (RAM in use or too small: set ram "
                          "larger or give `host SIZE`)",
                          name, d.host_mem >> 20, top, hpage_names[d.host_page % 3]);
        return VMS_OK;
    }
    v->base = base;
    v->top = top;
    v->shadow = d.shadow;
    v->gpwc = d.guest_pwc;
    vms_config_vm_tlb(&d, &v->ntlb);
    vms_vm_config vc = {.kind = v->kind,
                        .host_levels = d.host_levels,
                        .guest_levels = d.guest_levels,
                        .host_page = (vms_pgsize)d.host_page,
                        .ad = d.ad,
                        .guest_mem = d.mem,
                        .s2_tables_at = base,
                        .host_at = host_at,
                        .host_end = top,
                        .vpid = s->next_vpid,
                        .exit_cycles = d.exit_cycles,
                        .shadow = d.shadow,
                        .s2_tlb = v->ntlb.nparts ? &v->ntlb : NULL,
                        .guest_pwc = &v->gpwc,
                        .seed = vms_kernel_get_config(x->k)->seed};
    vms_status st = vms_vm_create(x->m, &vc, &v->vm, &err);
    if (st != VMS_OK) {
        (void)vms_frames_unreserve(s->fr, base >> VMS_PAGE_SHIFT, (top - base) >> VMS_PAGE_SHIFT,
                                   NULL);
        v->vm = NULL;
        if (st == VMS_ERR_NOMEM)
            return st;
        vms_strbuf_printf(x->err, "vm create %s: %s", name, err.msg);
        return VMS_OK;
    }
    v->guest = &pager;
    v->nvcpus = 1;
    s->top = base;
    s->next_vpid++;
    vms_strbuf_printf(x->line,
                      "vm create %s: %s, %u-level guest paging over %u-level %s with %s host "
                      "pages%s; guest memory %" PRIu64 "M; host memory 0x%" PRIx64 "-0x%" PRIx64
                      " reserved (tables from 0x%" PRIx64 ", backing from 0x%" PRIx64
                      "); VPID %u; guest kernel: %s\n",
                      name, v->shadow ? "shadow paging" : kind_names[v->kind], d.guest_levels,
                      d.host_levels, kind_names[v->kind], hpage_names[d.host_page % 3],
                      v->ntlb.nparts ? ", a nested TLB" : "", d.mem >> 20, base, top, base, host_at,
                      (unsigned)c->vm + 1, v->guest->name);
    return VMS_OK;
}

static vms_status vm_spawn(scn_vms *s, const scn_vmctx *x)
{
    const scn_cmd *c = x->c;
    vm1 *v = &s->v[c->vm];
    const char *name = x->sc->vmnames[c->vm], *proc = x->sc->names[c->proc];
    if (!v->vm && !v->kg) {
        vms_strbuf_printf(x->err, "vm %s spawn %s: VM '%s' was not created", name, proc, name);
        return VMS_OK;
    }
    if (v->kg) { /* a process of the guest kernel, on vCPU `core` */
        if (c->core >= v->nvcpus) {
            vms_strbuf_printf(x->err, "vm %s spawn %s: no vCPU %u (the VM has %u)", name, proc,
                              c->core, v->nvcpus);
            return VMS_OK;
        }
        vms_err err = {0};
        vms_status st =
            vms_proc_spawn(vms_guest_kernel(v->kg), proc, c->core, &x->task[c->proc], &err);
        if (st != VMS_OK) {
            x->task[c->proc] = NULL;
            if (st == VMS_ERR_NOMEM)
                return st;
            vms_strbuf_printf(x->err, "vm %s spawn %s: %s", name, proc, err.msg);
            return VMS_OK;
        }
        s->proc_vm[c->proc] = c->vm + 1;
        vms_strbuf_printf(
            x->line, "vm %s spawn %s -> pid %d in the guest, on vCPU %u (host core %u)\n", name,
            proc, vms_task_pid(x->task[c->proc]), c->core, vms_guest_vcpu_core(v->kg, c->core));
        return VMS_OK;
    }
    if (v->nprocs >= v->guest->max_procs) {
        vms_strbuf_printf(x->err,
                          "vm %s spawn %s: the guest kernel (%s) runs %u process%s: one address "
                          "space, never reused",
                          name, proc, v->guest->name, v->guest->max_procs,
                          v->guest->max_procs == 1 ? "" : "es");
        return VMS_OK;
    }
    if (c->core >= vms_machine_get_config(x->m)->ncores) {
        vms_strbuf_printf(x->err, "vm %s spawn %s: no core %u (the machine has %u)", name, proc,
                          c->core, vms_machine_get_config(x->m)->ncores);
        return VMS_OK;
    }
    v->core = c->core;
    v->nprocs++;
    s->proc_vm[c->proc] = c->vm + 1;
    vms_strbuf_printf(x->line, "vm %s spawn %s: a guest process on core %u\n", name, proc, c->core);
    return VMS_OK;
}

/* One second-stage leaf for `show ept`. */
typedef struct show_ctx {
    vms_strbuf *sb;
    const vms_pt_format *f;
    uint64_t n;
} show_ctx;

static bool show_leaf(void *ud, uint64_t gpa, uint64_t ptep, uint64_t pte, vms_pgsize size)
{
    show_ctx *sc = ud;
    char bits[96];
    unsigned level = vms_fmt_size_level(size);
    vms_pte_info info;
    vms_fmt_decode(sc->f, pte, level, &info);
    sc->f->bits_str(pte, level, bits, sizeof bits);
    vms_strbuf_printf(sc->sb,
                      "  GPA 0x%09" PRIx64 " -> HPA 0x%09" PRIx64 " %s  %s entry @0x%" PRIx64
                      " = 0x%016" PRIx64 " [%s]\n",
                      gpa, info.pa, vms_pgsize_name(size), sc->f->level_name[level], ptep, pte,
                      bits);
    sc->n++;
    return true;
}

static void vm_show(vm1 *v, const scn_vmctx *x)
{
    const char *name = x->sc->vmnames[x->c->vm];
    vms_strbuf *sb = x->line;
    if (!v->vm && !v->kg) {
        vms_strbuf_printf(x->err, "vm %s show: VM '%s' was not created", name, name);
        return;
    }
    const vms_pt *pt = v->kg ? vms_guest_s2_pt(v->kg) : vms_vm_s2_pt(v->vm);
    const vms_s2_regs *s2 =
        vms_nested_s2(v->kg ? vms_guest_nested(v->kg, 0) : vms_vm_nested(v->vm));
    if (x->c->vmo.sub == 2) {
        vms_strbuf_printf(sb,
                          "second stage of vm %s: %s, %s = 0x%" PRIx64 " (root 0x%" PRIx64
                          ", %u levels), %" PRIu64 " table%s in host RAM%s:\n",
                          name, pt->fmt->title, s2->kind == VMS_S2_NPT ? "nCR3" : pt->fmt->root_reg,
                          s2->kind == VMS_S2_EPT   ? s2->eptp
                          : s2->kind == VMS_S2_ARM ? s2->vttbr
                                                   : s2->ncr3,
                          pt->root, pt->levels, vms_pt_count_tables(pt),
                          vms_pt_count_tables(pt) == 1 ? "" : "s",
                          v->shadow ? " (unused by the hardware: shadow paging)" : "");
        show_ctx ctx = {sb, pt->fmt, 0};
        (void)vms_pt_foreach(pt, 0, UINT64_C(1) << 48, show_leaf, &ctx);
        vms_strbuf_printf(sb, "  %" PRIu64 " leaf entr%s\n", ctx.n, ctx.n == 1 ? "y" : "ies");
        return;
    }
    if (v->kg) {
        const vms_guest_stats *gs = vms_guest_get_stats(v->kg);
        vms_strbuf_printf(sb,
                          "exits of vm %s: %" PRIu64 " (%" PRIu64
                          " cycles with the vCPU entries): %" PRIu64
                          " in 2D walks and accesses, %" PRIu64 " at the guest kernel's own "
                          "touch of a frame; %" PRIu64 " vCPU entries\n"
                          "  second-stage leaves made %" PRIu64 ", host frames held %" PRIu64
                          ", unhandled %" PRIu64 "\n",
                          name, gs->exits, gs->exit_cycles, gs->exits_walk, gs->exits_kernel,
                          gs->vcpu_loads, gs->backed, gs->host_frames, gs->unhandled);
        if (gs->intr_injected || gs->intr_posted)
            vms_strbuf_printf(sb,
                              "  device interrupts: %" PRIu64 " external-interrupt exits, %" PRIu64
                              " injected at VM entry, %" PRIu64 " posted\n",
                              gs->exits_intr, gs->intr_injected, gs->intr_posted);
        for (unsigned i = 0; i < v->nvcpus; i++) {
            const vms_nested_stats *ns = vms_nested_get_stats(vms_guest_nested(v->kg, i));
            vms_strbuf_printf(sb,
                              "  vCPU %u (%s %u, host core %u): 2D walks %" PRIu64 ": %" PRIu64
                              " guest and %" PRIu64 " second-stage references, nested TLB %" PRIu64
                              " hits of %" PRIu64 "\n",
                              i, v->kind == VMS_S2_ARM ? "VMID" : "VPID", vms_guest_vpid(v->kg, i),
                              vms_guest_vcpu_core(v->kg, i), ns->walks, ns->guest_refs, ns->s2_refs,
                              ns->s2_tlb_hits, ns->s2_tlb_lookups);
        }
        return;
    }
    const vms_vm_stats *st = vms_vm_get_stats(v->vm);
    const vms_nested_stats *ns = vms_nested_get_stats(vms_vm_nested(v->vm));
    vms_strbuf_printf(sb,
                      "exits of vm %s: %" PRIu64 " (%" PRIu64 " cycles): %" PRIu64
                      " second-stage violation%s",
                      name, st->exits, st->exit_cycles, st->exits_s2, st->exits_s2 == 1 ? "" : "s");
    if (v->shadow)
        vms_strbuf_printf(sb, ", %" PRIu64 " #PF intercepts, %" PRIu64 " guest page-table writes",
                          st->exits_pf, st->exits_ptwrite);
    vms_strbuf_printf(sb,
                      "\n  guest page faults %" PRIu64 " (no exit), guest pages %" PRIu64
                      ", second-stage leaves made %" PRIu64 ", failed accesses %" PRIu64 "\n",
                      st->guest_faults, st->guest_pages, st->backed, st->unhandled);
    if (!v->shadow)
        vms_strbuf_printf(sb,
                          "  2D walks %" PRIu64 ": %" PRIu64 " guest and %" PRIu64
                          " second-stage references (%" PRIu64 " for guest tables), nested "
                          "TLB %" PRIu64 " hits of %" PRIu64 "\n",
                          ns->walks, ns->guest_refs, ns->s2_refs, ns->s2_refs_tables,
                          ns->s2_tlb_hits, ns->s2_tlb_lookups);
    else
        vms_strbuf_printf(sb,
                          "  shadow entries made %" PRIu64 ", faults reflected %" PRIu64
                          ", guest entries read in software %" PRIu64 "\n",
                          st->shadow_fills, st->injected, st->sw_walk_refs);
}

vms_status vmsi_scn_vm_cmd(scn_vms **pv, const scn_vmctx *x)
{
    scn_vms *s = vms_get(pv, x);
    if (!s)
        return VMS_ERR_NOMEM;
    switch (x->c->vmo.sub) {
    case 0:
        return vm_create(s, x);
    case 1:
        return vm_spawn(s, x);
    default:
        vm_show(&s->v[x->c->vm], x);
        return VMS_OK;
    }
}

/* Bytes as the narration shows them: "text" when printable, else 0x hex (64 at most). */
static void say_bytes(vms_strbuf *sb, const uint8_t *b, size_t n)
{
    bool text = true;
    for (size_t i = 0; i < n; i++)
        text = text && b[i] >= 0x20 && b[i] < 0x7f && b[i] != '"' && b[i] != '\\';
    size_t m = n < 64 ? n : 64;
    if (text)
        vms_strbuf_printf(sb, "\"%.*s\"", (int)m, (const char *)b);
    else
        for (size_t i = 0; i < m; i++)
            vms_strbuf_printf(sb, "%s%02x", i ? "" : "0x", b[i]);
    if (m < n)
        vms_strbuf_printf(sb, "…");
}

/* The access commands on a guest process. Returns false when the access failed (*f). */
static bool guest_access(scn_vms *s, vm1 *v, vms_core *c, const scn_vmctx *x, uint8_t *buf,
                         vms_fault *f)
{
    const scn_cmd *cm = x->c;
    switch (cm->op) {
    case OP_WRITE:
        memcpy(buf, x->sc->pool + cm->data_off, cm->data_len);
        return v->guest->access(v->vm, c, x->va, VMS_ACC_WRITE, buf, (uint32_t)cm->data_len, f);
    case OP_READ:
        return v->guest->access(v->vm, c, x->va, VMS_ACC_READ, buf, (uint32_t)cm->len, f);
    case OP_FETCH:
        return v->guest->access(v->vm, c, x->va, VMS_ACC_EXEC, buf, 1, f);
    default: { /* OP_TOUCH, as the host's: 8-byte accesses, sequential or random */
        uint64_t n = cm->count ? cm->count : (cm->len + cm->step - 1) / cm->step;
        for (uint64_t i = 0; i < n; i++) {
            uint64_t off =
                cm->count ? vms_rng_below(&s->rng, cm->len > 8 ? cm->len - 7 : 1) & ~UINT64_C(7)
                          : i * cm->step;
            uint32_t len = cm->len - off < 8 ? (uint32_t)(cm->len - off) : 8;
            if (!v->guest->access(v->vm, c, x->va + off, cm->kind, NULL, len, f))
                return false;
        }
        return true;
    }
    }
}

vms_status vmsi_scn_vm_guest(scn_vms *s, const scn_vmctx *x)
{
    const scn_cmd *cm = x->c;
    int vi = s->proc_vm[cm->proc] - 1;
    vm1 *v = &s->v[vi];
    const char *proc = x->sc->names[cm->proc], *name = x->sc->vmnames[vi];
    const char *word = vmsi_scn_commands[cm->def].name;
    if (cm->op == OP_EXIT) {
        s->proc_vm[cm->proc] = 0;
        vms_strbuf_printf(x->line, "exit %s: the guest process in vm %s ends\n", proc, name);
        return VMS_OK;
    }
    if (cm->op != OP_WRITE && cm->op != OP_READ && cm->op != OP_FETCH && cm->op != OP_TOUCH) {
        vms_strbuf_printf(x->err,
                          "%s %s: %s is a guest process of vm %s, whose guest kernel (%s) runs "
                          "only write, read, fetch, touch and exit",
                          word, proc, proc, name, v->guest->name);
        return VMS_OK;
    }
    if (cm->op == OP_READ && cm->len > READ_MAX) {
        vms_strbuf_printf(x->err, "read %s: at most %" PRIu64 " bytes from a guest process", proc,
                          READ_MAX);
        return VMS_OK;
    }
    size_t blen = cm->op == OP_READ ? (size_t)cm->len : cm->op == OP_WRITE ? cm->data_len : 1;
    uint8_t *buf = vmsi_calloc(s->a, blen, 1);
    if (!buf)
        return VMS_ERR_NOMEM;
    vms_core *c = vms_machine_core(x->m, v->core);
    vsnap s0, s1;
    vms_fault f = {0};
    bool ok = false;
    vms_core_vm_exit(c); /* a kernel guest's vCPU there exits (its registers are saved) */
    vms_status st = vms_vm_enter(v->vm, c);
    if (st == VMS_OK) {
        take(v, c, &s0);
        ok = guest_access(s, v, c, x, buf, &f);
        take(v, c, &s1);
        vms_vm_leave(v->vm, c);
    }
    vms_strbuf *sb = x->line;
    vms_strbuf_printf(sb, "%s %s 0x%" PRIx64, word, proc, x->va);
    if (cm->op == OP_WRITE) {
        vms_strbuf_printf(sb, " ");
        say_bytes(sb, buf, blen);
    } else if (cm->op != OP_FETCH) {
        vms_strbuf_printf(sb, " %" PRIu64, cm->len);
    }
    vms_strbuf_printf(sb, " (in vm %s, core %u)", name, v->core);
    if (st != VMS_OK) {
        vms_strbuf_printf(sb, "\n");
        vms_strbuf_printf(x->err, "%s %s: VM entry refused (%s)", word, proc, vms_status_str(st));
        vmsi_free(s->a, buf, blen);
        return VMS_OK;
    }
    if (ok && cm->op == OP_READ) {
        vms_strbuf_printf(sb, ": ");
        say_bytes(sb, buf, blen);
    } else if (!ok) {
        vms_strbuf_printf(sb, ": %s at 0x%" PRIx64 " not handled",
                          f.kind == VMS_FAULT_S2 ? "second-stage fault" : "guest fault", f.va);
    } else {
        vms_strbuf_printf(sb, ": ok");
    }
    say_delta(sb, &s0, &s1);
    bool expect_fail = cm->expect == EXP_SEGV;
    bool met = true;
    if (cm->expect == EXP_DATA) {
        met = ok && !memcmp(buf, x->sc->pool + cm->data_off, cm->data_len);
        vms_strbuf_printf(sb, "; expect data: %s", met ? "ok" : "FAILED");
    } else if (cm->expect != EXP_NONE) {
        met = ok != expect_fail;
        vms_strbuf_printf(sb, "; expect %s: %s", expect_fail ? "segv" : "ok",
                          met ? "ok" : "FAILED");
    } else if (!ok) {
        x->res->unexpected_faults++;
    }
    if (cm->expect != EXP_NONE)
        met ? x->res->expects_passed++ : x->res->expects_failed++;
    vms_strbuf_printf(sb, "\n");
    if (!met) {
        vms_strbuf_printf(x->err, "expect failed: %s %s 0x%" PRIx64 ": expected ", word, proc,
                          x->va);
        if (cm->expect == EXP_DATA)
            say_bytes(x->err, x->sc->pool + cm->data_off, cm->data_len);
        else
            vms_strbuf_printf(x->err, "%s", expect_fail ? "a fault" : "success");
        vms_strbuf_printf(x->err, ", got ");
        if (ok && cm->op == OP_READ)
            say_bytes(x->err, buf, blen);
        else
            vms_strbuf_printf(x->err, "%s", ok ? "success" : "a fault");
        *x->expect_failed = true;
    }
    vmsi_free(s->a, buf, blen);
    return VMS_OK;
}
