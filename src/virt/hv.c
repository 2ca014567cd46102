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
#include "vmsim/arch/aarch64.h"
#include "vmsim/core.h"
#include "vmsim/iommu.h"
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
    /* Shadow paging: the hypervisor's GVA -> HPA tables in host RAM (in the guest's own
     * format), the registers the core runs the guest with (CR3 / TTBR0_EL1 = their root),
     * the VM's page-walk cache; the bus the guest's pager writes its tables on (gwbus:
     * its stores pass the second stage's permissions, which write-protect every guest
     * table frame) and the core the guest runs on now (charged for the traps). */
    vms_pt spt;
    vms_pt_bump spt_tables;
    vms_regs sregs;
    vms_pwc *spwc;
    vms_bus *gwbus;
    vms_pt_ops gtab_ops;
    vms_core *cur;
    /* Passthrough on EPT: the IOMMU's mirror of the second stage, kept in step. */
    bool mirror_on;
    vms_pt mirror;
    vms_pt_bump mirror_tables;
};

#define SHADOW_TABLES_GAP (UINT64_C(32) << 20) /* shadow tables 32 MiB above s2_tables_at */

/* ---- shadow paging: the guest's tables write-protected by the second stage ----
 *
 * The hypervisor's GPA -> HPA record is the second-stage tree (gs.s2: EPT, NPT or Arm
 * Stage 2), which the hardware does not walk under shadow paging. Every frame that
 * becomes a guest table is made read-only there (wp_alloc: EPT W, the x86-64 RW bit,
 * Stage 2 S2AP[1] cleared, through the format's pte_wrprotect), and the guest's stores to
 * its tables (gwbus) pass that permission as a store of the guest would: denied, the
 * store is a second-stage permission fault — an EPT violation with a write, an NPF with
 * W = 1, an Arm stage 2 Permission fault (ESR_EL2 EC 0x24, DFSC 0b0011LL, WnR) — and so a
 * VM exit (exits_ptwrite), on which the hypervisor emulates the store into the guest's
 * table. The hypervisor's own writes (the A/D it emulates) use the nested guest bus,
 * which has no permissions (its software view).
 */

/* A new guest table frame: the guest-physical allocation, then its second-stage leaf
 * made read-only. */
static vms_status wp_alloc(void *ud, uint64_t *pa)
{
    vms_vm *vm = ud;
    vms_status st = vm->gtab_ops.alloc_table(vm->gtab_ops.ud, pa);
    uint64_t pte, ptep;
    vms_pgsize size;
    if (st != VMS_OK)
        return st;
    if (!vms_pt_lookup(&vm->gs.s2, *pa, &pte, &ptep, &size))
        return VMS_ERR_BUS;
    return vms_pt_write(&vm->gs.s2, ptep, vms_fmt_pte_wrprotect(vm->gs.s2.fmt, pte));
}

static void wp_free(void *ud, uint64_t pa)
{
    vms_vm *vm = ud;
    vm->gtab_ops.free_table(vm->gtab_ops.ud, pa);
}

static void take_exit(vms_vm *vm, vms_core *c);

/* The hypervisor's translation of gpa (its second-stage record) with the rights there. */
static bool s2_lookup(vms_vm *vm, uint64_t gpa, vms_s2_xlate *x)
{
    vms_s2_access acc = {.kind = VMS_ACC_READ};
    vms_s2_fault f;
    return vms_s2_walk(vms_machine_bus(vm->m), &vm->s2, gpa, &acc, true, x, &f, NULL, NULL);
}

static uint64_t s2_hpa(const vms_s2_xlate *x, uint64_t gpa)
{
    return x->page_hpa | (gpa & (vms_pgsize_bytes(x->size) - 1));
}

static vms_status gw_read(void *dev, uint64_t gpa, unsigned size, uint64_t *val)
{
    vms_vm *vm = dev;
    vms_s2_xlate x;
    uint64_t v = 0;
    if (!s2_lookup(vm, gpa, &x))
        return VMS_ERR_BUS;
    vms_status st = vms_bus_read(vms_machine_bus(vm->m), s2_hpa(&x, gpa), &v, size);
    *val = v;
    return st;
}

/* A store of the guest's pager to its tables: a write-protected frame traps (an exit),
 * and the hypervisor emulates the store. */
static vms_status gw_write(void *dev, uint64_t gpa, unsigned size, uint64_t val)
{
    vms_vm *vm = dev;
    vms_s2_xlate x;
    if (!s2_lookup(vm, gpa, &x))
        return VMS_ERR_BUS;
    if (!x.w) {
        vm->st.exits_ptwrite++;
        take_exit(vm, vm->cur);
    }
    return vms_bus_write(vms_machine_bus(vm->m), s2_hpa(&x, gpa), &val, size);
}

static const vms_mmio_ops gw_ops = {gw_read, gw_write};

static vms_status shadow_bus(vms_vm *vm, const vms_allocator *a, vms_err *err)
{
    vms_status st = vms_bus_create(a, vms_machine_ram(vm->m), &vm->gwbus, err);
    if (st == VMS_OK)
        st = vms_bus_add_mmio(vm->gwbus, 0, UINT64_C(1) << 57, "guest-physical (guest stores)",
                              &gw_ops, vm, err);
    return st;
}

vms_status vms_vm_create(vms_machine *m, const vms_vm_config *cfg, vms_vm **out, vms_err *err)
{
    const vms_allocator *a = vms_allocator_default();
    vms_vm_config c = *cfg;
    *out = NULL;
    const vms_pt_format *hostfmt = vms_machine_get_config(m)->fmt;
    bool arm = hostfmt && !strcmp(hostfmt->arch, "aarch64");
    if (c.kind == VMS_S2_NONE)
        c.kind = arm ? VMS_S2_ARM : VMS_S2_EPT;
    if (hostfmt && !arm)
        return vmsi_err(err, VMS_ERR_UNSUPPORTED,
                        "VM: the machine's architecture is %s; VMs run on x86-64 (EPT, NPT) or "
                        "aarch64 (Stage 2)",
                        hostfmt->arch);
    if (arm ? c.kind != VMS_S2_ARM : c.kind != VMS_S2_EPT && c.kind != VMS_S2_NPT)
        return vmsi_err(err, VMS_ERR_INVAL,
                        arm ? "an aarch64 VM's second stage is Arm Stage 2"
                            : "an x86-64 VM's second stage is EPT or NPT");
    if (vms_machine_get_config(m)->mmu.swtlb.on)
        return vmsi_err(err, VMS_ERR_UNSUPPORTED,
                        "VM: tlb.mode = software (a MIPS-style TLB) has no two-stage translation");
    c.host_levels = c.host_levels ? c.host_levels : 4;
    c.guest_levels = c.guest_levels ? c.guest_levels : 4;
    c.guest_mem = c.guest_mem ? c.guest_mem : UINT64_C(4) << 30;
    c.exit_cycles = c.exit_cycles ? c.exit_cycles : 1200;
    if (arm ? c.vpid == 0 || c.vpid > 0xFFFF || (c.host_levels != 3 && c.host_levels != 4) ||
                  c.guest_levels != 4 || c.guest_mem <= GDATA_AT ||
                  c.guest_mem > (UINT64_C(1) << (c.host_levels == 4 ? 48 : 39))
            : c.vpid == 0 || (c.host_levels != 4 && c.host_levels != 5) ||
                  (c.guest_levels != 4 && c.guest_levels != 5) || c.guest_mem <= GDATA_AT)
        return vmsi_err(err, VMS_ERR_INVAL,
                        arm ? "VM (aarch64): VMID 1 to 65535, stage 2 levels 3 or 4, guest stage 1 "
                              "levels 4, guest memory above 256 MiB within the IPA space expected"
                            : "VM: vpid >= 1, levels 4 or 5, guest memory above 256 MiB expected");
    vms_vm *vm = vmsi_alloc(a, sizeof *vm);
    if (!vm)
        return vmsi_err(err, VMS_ERR_NOMEM, "out of memory for a VM");
    memset(vm, 0, sizeof *vm);
    vm->alloc = *a;
    vm->m = m;
    vm->cfg = c;
    vm->gdata_next = GDATA_AT;
    vms_bus *bus = vms_machine_bus(m);
    const vms_pt_format *f = c.kind == VMS_S2_EPT   ? vms_format_ept(c.host_levels)
                             : c.kind == VMS_S2_NPT ? vms_format_npt(c.host_levels)
                                                    : vms_format_stage2(c.host_levels);
    unsigned prot = VMS_PGPROT_R | VMS_PGPROT_W | VMS_PGPROT_X | VMS_PGPROT_U;
    if (arm) /* stage 2 leaves made young and writable: no Access flag or permission faults */
        prot |= VMS_PGPROT_A | VMS_PGPROT_D;
    vms_nested_config ncfg = {c.s2_tlb, c.guest_pwc, c.guest_levels, c.seed};
    vms_status st = vms_gspace_init(&vm->gs, bus, f, c.s2_tables_at, c.host_at, c.host_end,
                                    c.host_page, prot, GTAB_AT, err);
    if (st == VMS_OK) {
        vm->s2 =
            (vms_s2_regs){.kind = c.kind,
                          .eptp = vms_eptp_make(vm->gs.s2.root, c.host_levels, VMS_EPT_MT_WB, c.ad),
                          .ncr3 = vm->gs.s2.root,
                          .npt_levels = c.host_levels,
                          .vttbr = vms_vttbr_make(vm->gs.s2.root, (uint16_t)c.vpid),
                          .vtcr = vms_vtcr_make(c.host_levels, c.ad, c.ad)};
        st = vms_nested_create(a, bus, &vm->s2, &ncfg, &vm->n, err);
    }
    const vms_pt_format *gfmt = arm ? vms_format_aarch64() : vms_format_x86_64(c.guest_levels);
    if (st == VMS_OK && c.shadow)
        st = shadow_bus(vm, a, err);
    if (st == VMS_OK) {
        /* Under shadow paging the guest's tables are write-protected by the second stage
         * as they are made (wp_alloc) and its stores to them go through gwbus. */
        vm->gtab_ops = vms_gspace_table_ops(&vm->gs);
        vms_pt_ops ops = c.shadow ? (vms_pt_ops){wp_alloc, wp_free, vm} : vm->gtab_ops;
        st = vms_pt_init_format(&vm->gpt, c.shadow ? vm->gwbus : vms_nested_guest_bus(vm->n), gfmt,
                                &ops, err);
    }
    if (st != VMS_OK) {
        vms_vm_destroy(vm);
        return st;
    }
    vm->regs = *vms_core_regs(vms_machine_core(m, 0));
    if (arm) { /* EL0 of a guest with TTBR0_EL1 at its tables, ASID 0, 48-bit VAs */
        vm->regs.fmt = vms_format_aarch64();
        vm->regs.tcr_el1 = vms_a64_tcr(c.host_levels == 4 ? 48 : 39, false, false, false, false);
        vm->regs.sctlr_el1 = VMS_A64_SCTLR_M;
        vm->regs.ttbr0_el1 = vm->gpt.root;
        vm->regs.ttbr1_el1 = 0;
        vm->regs.user = true;
        vm->regs.pan = false;
    } else {
        vm->regs.fmt = NULL;
        vm->regs.cr3 = vm->gpt.root;
        vm->regs.cr4 = (vm->regs.cr4 & ~(VMS_CR4_LA57 | VMS_CR4_PCIDE)) | VMS_CR4_PAE |
                       (c.guest_levels == 5 ? VMS_CR4_LA57 : 0);
        vm->regs.user = true;
    }
    if (c.shadow) {
        vm->spt_tables =
            (vms_pt_bump){vms_machine_ram(m), c.s2_tables_at + SHADOW_TABLES_GAP, 0, 0, 0};
        vms_pt_ops sops = vms_pt_bump_ops(&vm->spt_tables);
        st = vms_pt_init_format(&vm->spt, bus, gfmt, &sops, err);
        if (st == VMS_OK && c.guest_pwc)
            st = vms_pwc_create(a, c.guest_pwc, c.guest_levels, c.seed, &vm->spwc, err);
        if (st != VMS_OK) {
            vms_vm_destroy(vm);
            return st;
        }
        /* The core runs the guest on the shadow root, with the guest's other registers;
         * on AArch64 the hypervisor's TCR_EL1 for the shadow turns on HA and HD, so the
         * hardware keeps the shadow's own AF and dirty state as x86-64 keeps its A/D
         * (the guest's bits are the hypervisor's to emulate, shadow_fault). */
        vm->sregs = vm->regs;
        if (arm) {
            vm->sregs.ttbr0_el1 = vm->spt.root;
            vm->sregs.tcr_el1 |= VMS_A64_TCR_HA | VMS_A64_TCR_HD;
        } else {
            vm->sregs.cr3 = vm->spt.root;
        }
    }
    *out = vm;
    return VMS_OK;
}

void vms_vm_destroy(vms_vm *vm)
{
    if (!vm)
        return;
    vms_pwc_destroy(vm->spwc);
    vms_bus_destroy(vm->gwbus);
    vms_nested_destroy(vm->n);
    vmsi_free(&vm->alloc, vm, sizeof *vm);
}

vms_status vms_vm_enter(vms_vm *vm, vms_core *c)
{
    if (vm->cfg.shadow)
        return vms_core_vm_enter_shadow(c, vm->cfg.vpid, &vm->sregs, vm->spwc);
    return vms_core_vm_enter(c, vm->n, vm->cfg.vpid, &vm->regs);
}

void vms_vm_leave(vms_vm *vm, vms_core *c)
{
    (void)vm;
    vms_core_vm_exit(c);
}

/* Map the second-stage leaf that backs gpa into the IOMMU mirror too. */
static vms_status mirror_leaf(vms_vm *vm, uint64_t gpa)
{
    uint64_t pte, ptep;
    vms_pgsize size;
    if (!vm->mirror_on || !vms_pt_lookup(&vm->gs.s2, gpa, &pte, &ptep, &size))
        return VMS_OK;
    uint64_t bytes = vms_pgsize_bytes(size), gbase = gpa & ~(bytes - 1);
    vms_pte_info info;
    vms_fmt_decode(vm->gs.s2.fmt, pte, vms_fmt_size_level(size), &info);
    vms_status st = vms_pt_map(&vm->mirror, gbase, info.pa, size, VMS_PTE_US | VMS_PTE_RW, NULL);
    return st == VMS_ERR_EXISTS ? VMS_OK : st;
}

/* Back gpa (the hypervisor's one way to give a VM memory): the second stage and, with a
 * device assigned on EPT, the IOMMU's mirror. */
static vms_status back(vms_vm *vm, uint64_t gpa, uint64_t *hpa)
{
    uint64_t before = vm->gs.backed;
    vms_status st = vms_gspace_back(&vm->gs, gpa, hpa, NULL);
    if (st != VMS_OK)
        return st;
    vm->st.backed += vm->gs.backed - before;
    return VMS_OK;
}

static vms_status on_back(void *ud, uint64_t gpa)
{
    return mirror_leaf(ud, gpa);
}

/* Is guest fault f a not-present page (x86 #PF with P = 0; an Arm stage 1 Translation
 * fault, whose ESR the fault's error code holds)? */
static bool not_present(const vms_vm *vm, const vms_fault *f)
{
    if (vm->cfg.kind != VMS_S2_ARM)
        return !(f->error_code & VMS_PFERR_P);
    return (vms_a64_esr_fsc(f->error_code) & ~3u) == VMS_A64_FSC_TRANS;
}

/* The guest's pager: a not-present page gets a fresh guest frame (user rwx; on Arm made
 * young and dirty, AF set and AP writable, so that no Access flag or permission fault
 * follows without hardware A/D updates). */
static bool guest_fault(vms_vm *vm, const vms_fault *f)
{
    if (!not_present(vm, f) || vm->gdata_next + VMS_PAGE_SIZE > vm->cfg.guest_mem)
        return false;
    uint64_t va = f->va & ~VMS_PAGE_MASK;
    vms_status st =
        vm->cfg.kind == VMS_S2_ARM
            ? vms_pt_map_prot(&vm->gpt, va, vm->gdata_next, VMS_PG_4K,
                              VMS_PGPROT_R | VMS_PGPROT_W | VMS_PGPROT_X | VMS_PGPROT_U |
                                  VMS_PGPROT_A | VMS_PGPROT_D,
                              NULL)
            : vms_pt_map(&vm->gpt, va, vm->gdata_next, VMS_PG_4K, VMS_PTE_US | VMS_PTE_RW, NULL);
    if (st != VMS_OK)
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
    take_exit(vm, c);
    if (e->kind != VMS_S2F_VIOLATION || f->pa >= vm->cfg.guest_mem)
        return false;
    vm->st.exits_s2++;
    uint64_t before = vm->gs.backed;
    if (back(vm, f->pa, NULL) != VMS_OK)
        return false;
    return vm->gs.backed != before; /* backed already: a rights violation, unhandled */
}

/* An exit: counted and charged. */
static void take_exit(vms_vm *vm, vms_core *c)
{
    vm->st.exits++;
    vm->st.exit_cycles += vm->cfg.exit_cycles;
    if (c)
        vms_core_add_cycles(c, vm->cfg.exit_cycles);
}

/*
 * Shadow paging's #PF intercept (every shadow miss exits): the hypervisor walks the
 * guest's tables in software with the guest's own walker and registers (the format's
 * walk: its rights check, and its A/D updates — x86-64 A and D; AArch64 AF and the DBM
 * dirty state only as the guest's TCR_EL1.HA/HD ask — written as the hardware would, on
 * the software view of guest memory). If the guest's tables permit the access, it backs
 * the GPA and installs the shadow leaf GVA -> HPA (4 KiB, in the guest's format, with the
 * guest's user and execute rights; writable only once the guest's entry is dirty, so
 * that the first write exits and the guest's dirty state is set); otherwise it reflects
 * the guest's own fault (its #PF error code or ESR_EL1) into the guest, whose pager's
 * table stores each trap (gw_write). Returns false when nothing can be done.
 */
static bool shadow_fault(vms_vm *vm, vms_core *c, const vms_fault *f, vms_access_kind kind)
{
    vm->st.exits_pf++;
    take_exit(vm, c);
    const vms_cost_config *cost = &vms_machine_get_config(vm->m)->cost;
    vms_walk_stats ws = {0};
    vms_xlate gx;
    vms_fault gf;
    bool ok =
        vms_walk(vms_nested_guest_bus(vm->n), NULL, &vm->regs, f->va, kind, &gx, &gf, &ws, NULL);
    vm->st.sw_walk_refs += ws.mem_refs;
    vms_core_add_cycles(c, ws.mem_refs * cost->walk_ref);
    if (!ok) {
        vm->st.injected++;
        return guest_fault(vm, &gf);
    }
    uint64_t va = f->va & ~VMS_PAGE_MASK, hpa;
    if (back(vm, vms_xlate_pa(&gx, f->va), &hpa) != VMS_OK)
        return false;
    unsigned prot = VMS_PGPROT_R | (gx.us ? VMS_PGPROT_U : 0) | (gx.xd ? 0 : VMS_PGPROT_X) |
                    (gx.rw && gx.dirty ? VMS_PGPROT_W : 0);
    vms_pt_unmap(&vm->spt, va, false, NULL); /* an older, read-only shadow entry */
    vms_core_invvpid(c, VMS_INVVPID_ADDR, vm->cfg.vpid, va);
    if (vms_pt_map_prot(&vm->spt, va, hpa & ~VMS_PAGE_MASK, VMS_PG_4K, prot, NULL) != VMS_OK)
        return false;
    vm->st.shadow_fills++;
    return true;
}

bool vms_vm_access(vms_vm *vm, vms_core *c, uint64_t va, vms_access_kind kind, uint32_t len,
                   vms_fault *fault)
{
    return vms_vm_access_data(vm, c, va, kind, NULL, len, fault);
}

bool vms_vm_access_data(vms_vm *vm, vms_core *c, uint64_t va, vms_access_kind kind, void *buf,
                        uint32_t len, vms_fault *fault)
{
    uint8_t *p = buf;
    vm->cur = c;
    if (vm->cfg.shadow) {
        for (unsigned tries = 0; tries < 64; tries++) {
            vms_access_result r = vms_core_access(c, va, kind, p, len);
            if (r.ok)
                return true;
            va += r.done;
            p = p ? p + r.done : NULL;
            len -= (uint32_t)r.done;
            *fault = r.fault;
            if (r.fault.kind != VMS_FAULT_PF || !shadow_fault(vm, c, &r.fault, kind))
                break;
        }
        vm->st.unhandled++;
        return false;
    }
    for (unsigned tries = 0; tries < 64; tries++) {
        vms_access_result r = vms_core_access(c, va, kind, p, len);
        if (r.ok)
            return true;
        va += r.done;
        p = p ? p + r.done : NULL;
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

/*
 * The guest's invalidation of va under shadow paging, intercepted (x86-64: INVLPG
 * exiting, SDM Vol. 3C §25.6.2 Table 25-6, exit reason 14; AArch64: HCR_EL2.TTLB traps
 * EL1's TLB maintenance to EL2, ESR_EL2 EC 0x18): the shadow may hold what the guest's
 * old entry said, as a TLB may, so the hypervisor drops its shadow entry for va and
 * invalidates the VM's entries for it (INVVPID individual-address; on Arm TLBI VAAE1
 * under the VM's VMID), then resumes the guest.
 */
static void shadow_tlbi(vms_vm *vm, vms_core *c, uint64_t va)
{
    vm->st.exits_tlbi++;
    take_exit(vm, c);
    vms_pt_unmap(&vm->spt, va, false, NULL);
    vms_core_invvpid(c, VMS_INVVPID_ADDR, vm->cfg.vpid, va);
}

vms_status vms_vm_unmap(vms_vm *vm, vms_core *c, uint64_t va)
{
    vm->cur = c;
    va &= ~VMS_PAGE_MASK;
    vms_status st = vms_pt_unmap(&vm->gpt, va, false, NULL);
    if (st != VMS_OK)
        return st;
    if (vm->cfg.shadow)
        shadow_tlbi(vm, c, va);
    else
        vms_core_mmu_flush_page(c, va); /* INVLPG / TLBI VAE1 in the guest: no exit */
    return VMS_OK;
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

/* Mirror one second-stage leaf (vms_pt_foreach). */
static bool mirror_one(void *ud, uint64_t gpa, uint64_t ptep, uint64_t pte, vms_pgsize size)
{
    (void)ptep;
    (void)pte;
    (void)size;
    return mirror_leaf(ud, gpa) == VMS_OK;
}

vms_status vms_vm_assign_device(vms_vm *vm, vms_iommu *io, uint16_t bdf, uint16_t did,
                                uint64_t iommu_tables_at, vms_err *err)
{
    vms_iommu_context ctx = {VMS_IOMMU_TRANSLATE, did, vm->gs.s2.root, vm->cfg.host_levels};
    if (vm->cfg.kind == VMS_S2_ARM) { /* an SMMU stage 2 context: Stage 2 shared, S2VMID did */
        uint64_t ste[VMS_SMMU_STE_DWORDS];
        vms_smmu_ste_s2(ste, vm->gs.s2.root, did, vm->cfg.host_levels);
        return vms_iommu_set_ste(io, bdf, ste, err);
    }
    if (vm->cfg.kind == VMS_S2_EPT && !vm->mirror_on) {
        vm->mirror_tables = (vms_pt_bump){vms_machine_ram(vm->m), iommu_tables_at, 0, 0, 0};
        vms_pt_ops ops = vms_pt_bump_ops(&vm->mirror_tables);
        vms_status st =
            vms_pt_init(&vm->mirror, vms_machine_bus(vm->m), vm->cfg.host_levels, &ops, err);
        if (st != VMS_OK)
            return st;
        vm->mirror_on = true;
        vm->gs.on_back = on_back;
        vm->gs.on_back_ud = vm;
        st = vms_pt_foreach(&vm->gs.s2, 0, UINT64_C(1) << 47, mirror_one, vm);
        if (st != VMS_OK)
            return vmsi_err(err, st, "could not mirror the second stage for the IOMMU");
        ctx.root = vm->mirror.root;
    } else if (vm->mirror_on) {
        ctx.root = vm->mirror.root;
    }
    return vms_iommu_set_context(io, bdf, &ctx, err);
}
