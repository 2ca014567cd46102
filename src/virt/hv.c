/*
 * virt/hv.c — a hypervisor's VM: guest-physical memory backed lazily by host memory on
 * second-stage violations (VM exits, counted and charged), a guest whose own tables
 * live in guest-physical memory, and the guest's minimal demand pager (virt.h).
 *
 *   guest access ─► core (in the VM): TLB, 2D walk
 *        │ guest #PF (not present)          │ EPT violation / NPF inside guest memory
 *        ▼                                  ▼
 *   guest pager: map a fresh guest     VM exit: back the page (host_page), resume
 *   frame in the guest's tables        (exit_cycles charged to the core)
 *        └───────── retry ──────────────────┘
 *
 * No TLB invalidation is needed after either fix: a not-present entry is never cached
 * (SDM §4.10.2.3 for the guest, §29.4.1 for EPT: violations cache nothing).
 */
#include <string.h>

#include "util/util.h"
#include "vmsim/core.h"
#include "vmsim/machine.h"
#include "vmsim/virt.h"

#define GTAB_AT  UINT64_C(0x1000000)  /* the guest's table frames from 16 MiB */
#define GDATA_AT UINT64_C(0x10000000) /* the guest's data frames from 256 MiB */

struct vms_vm {
    vms_allocator alloc;
    vms_machine *m;
    vms_vm_config cfg;
    vms_gspace gs;
    vms_s2_regs s2;
    vms_nested *n;
    vms_pt gpt;
    vms_regs regs;       /* the guest's registers (CR3 = a GPA) */
    uint64_t gdata_next; /* the guest pager's next frame */
    vms_vm_stats st;
};

vms_status vms_vm_create(vms_machine *m, const vms_vm_config *cfg, vms_vm **out, vms_err *err)
{
    const vms_allocator *a = vms_allocator_default();
    vms_vm_config c = *cfg;
    *out = NULL;
    if (c.kind == VMS_S2_NONE)
        c.kind = VMS_S2_EPT;
    if (c.kind != VMS_S2_EPT && c.kind != VMS_S2_NPT)
        return vmsi_err(err, VMS_ERR_INVAL, "a VM's second stage is EPT or NPT");
    c.host_levels = c.host_levels ? c.host_levels : 4;
    c.guest_levels = c.guest_levels ? c.guest_levels : 4;
    c.guest_mem = c.guest_mem ? c.guest_mem : UINT64_C(4) << 30;
    c.exit_cycles = c.exit_cycles ? c.exit_cycles : 1200;
    if (c.vpid == 0 || (c.host_levels != 4 && c.host_levels != 5) ||
        (c.guest_levels != 4 && c.guest_levels != 5) || c.guest_mem <= GDATA_AT)
        return vmsi_err(err, VMS_ERR_INVAL,
                        "VM: vpid >= 1, levels 4 or 5, guest memory above 256 MiB expected");
    vms_vm *vm = vmsi_alloc(a, sizeof *vm);
    if (!vm)
        return vmsi_err(err, VMS_ERR_NOMEM, "out of memory for a VM");
    memset(vm, 0, sizeof *vm);
    vm->alloc = *a;
    vm->m = m;
    vm->cfg = c;
    vm->gdata_next = GDATA_AT;
    vms_bus *bus = vms_machine_bus(m);
    const vms_pt_format *f =
        c.kind == VMS_S2_EPT ? vms_format_ept(c.host_levels) : vms_format_npt(c.host_levels);
    unsigned prot = VMS_PGPROT_R | VMS_PGPROT_W | VMS_PGPROT_X | VMS_PGPROT_U;
    vms_nested_config ncfg = {c.s2_tlb, c.guest_pwc, c.guest_levels, c.seed};
    vms_status st = vms_gspace_init(&vm->gs, bus, f, c.s2_tables_at, c.host_at, c.host_end,
                                    c.host_page, prot, GTAB_AT, err);
    if (st == VMS_OK) {
        vm->s2 =
            (vms_s2_regs){.kind = c.kind,
                          .eptp = vms_eptp_make(vm->gs.s2.root, c.host_levels, VMS_EPT_MT_WB, c.ad),
                          .ncr3 = vm->gs.s2.root,
                          .npt_levels = c.host_levels};
        st = vms_nested_create(a, bus, &vm->s2, &ncfg, &vm->n, err);
    }
    if (st == VMS_OK) {
        vms_pt_ops ops = vms_gspace_table_ops(&vm->gs);
        st = vms_pt_init(&vm->gpt, vms_nested_guest_bus(vm->n), c.guest_levels, &ops, err);
    }
    if (st != VMS_OK) {
        vms_vm_destroy(vm);
        return st;
    }
    vm->regs = *vms_core_regs(vms_machine_core(m, 0));
    vm->regs.fmt = NULL;
    vm->regs.cr3 = vm->gpt.root;
    vm->regs.cr4 = (vm->regs.cr4 & ~(VMS_CR4_LA57 | VMS_CR4_PCIDE)) | VMS_CR4_PAE |
                   (c.guest_levels == 5 ? VMS_CR4_LA57 : 0);
    vm->regs.user = true;
    *out = vm;
    return VMS_OK;
}

void vms_vm_destroy(vms_vm *vm)
{
    if (!vm)
        return;
    vms_nested_destroy(vm->n);
    vmsi_free(&vm->alloc, vm, sizeof *vm);
}

vms_status vms_vm_enter(vms_vm *vm, vms_core *c)
{
    return vms_core_vm_enter(c, vm->n, vm->cfg.vpid, &vm->regs);
}

void vms_vm_leave(vms_vm *vm, vms_core *c)
{
    (void)vm;
    vms_core_vm_exit(c);
}

/* The guest's pager: a not-present page gets a fresh guest frame. */
static bool guest_fault(vms_vm *vm, const vms_fault *f)
{
    if (f->error_code & VMS_PFERR_P || vm->gdata_next + VMS_PAGE_SIZE > vm->cfg.guest_mem)
        return false;
    uint64_t va = f->va & ~VMS_PAGE_MASK;
    if (vms_pt_map(&vm->gpt, va, vm->gdata_next, VMS_PG_4K, VMS_PTE_US | VMS_PTE_RW, NULL) !=
        VMS_OK)
        return false;
    vm->gdata_next += VMS_PAGE_SIZE;
    vm->st.guest_faults++;
    vm->st.guest_pages++;
    return true;
}

/* The hypervisor: a violation inside guest memory is backed (a VM exit). */
static bool s2_exit(vms_vm *vm, vms_core *c, const vms_fault *f)
{
    const vms_s2_fault *e = vms_nested_last_exit(vm->n);
    vm->st.exits++;
    vm->st.exit_cycles += vm->cfg.exit_cycles;
    vms_core_add_cycles(c, vm->cfg.exit_cycles);
    if (e->kind != VMS_S2F_VIOLATION || f->pa >= vm->cfg.guest_mem)
        return false;
    vm->st.exits_s2++;
    uint64_t before = vm->gs.backed;
    if (vms_gspace_back(&vm->gs, f->pa, NULL, NULL) != VMS_OK)
        return false;
    vm->st.backed += vm->gs.backed - before;
    return vm->gs.backed != before; /* backed already: a rights violation, unhandled */
}

bool vms_vm_access(vms_vm *vm, vms_core *c, uint64_t va, vms_access_kind kind, uint32_t len,
                   vms_fault *fault)
{
    for (unsigned tries = 0; tries < 64; tries++) {
        vms_access_result r = vms_core_access(c, va, kind, NULL, len);
        if (r.ok)
            return true;
        va += r.done;
        len -= (uint32_t)r.done;
        *fault = r.fault;
        bool fixed = r.fault.kind == VMS_FAULT_PF   ? guest_fault(vm, &r.fault)
                     : r.fault.kind == VMS_FAULT_S2 ? s2_exit(vm, c, &r.fault)
                                                    : false;
        if (!fixed)
            break;
    }
    vm->st.unhandled++;
    return false;
}

const vms_vm_stats *vms_vm_get_stats(const vms_vm *vm)
{
    return &vm->st;
}

vms_nested *vms_vm_nested(vms_vm *vm)
{
    return vm->n;
}

const vms_pt *vms_vm_s2_pt(const vms_vm *vm)
{
    return &vm->gs.s2;
}

const vms_pt *vms_vm_guest_pt(const vms_vm *vm)
{
    return &vm->gpt;
}
