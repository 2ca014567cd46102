/*
 * virt/guest.c — a VM whose guest kernel is the kernel model itself (virt.h
 * vms_guest): the hypervisor's side of it.
 *
 *   guest kernel (src/os, unchanged) ── vms_kernel_create_on(platform) ──┐
 *     │ page tables: stores on the guest-physical bus (below)           │ CPUs: vCPUs
 *     │ zero fill, copies, swap I/O: frame(gpfn) -> host frame           │ (core(i))
 *     ▼                                                                  ▼
 *   hypervisor: gpfn -> host frame table; back on first touch (an     host core pin[i]
 *   exit), swap in what the host swapped; FIFO host reclaim to the    in the VM (VPID
 *   host's swap file when host_frames is reached                      vpid+i), 2D walks
 *     │ second stage (EPT/NPT) in host RAM: the one truth the hardware walks
 *     ▼
 *   host RAM [host_at, host_end): the VM's frames; [s2_tables_at, +4 MiB): its tables
 *
 * Invariants: a guest page is resident (hpfn map != 0, a second-stage leaf maps it to
 * that host frame) or swapped (slot map != 0, no leaf) or untouched (neither);
 * host_frames == resident pages. Every unmapped leaf is followed by INVEPT on every
 * vCPU's core, so no composed or nested-TLB entry outlives it (SDM §29.4.3.1).
 *
 * The guest kernel's own data moves are not translated by its MMU (on bare metal they
 * go to RAM directly, kernel.h); in a VM they still pass the second stage: a frame the
 * hypervisor has not backed is a VM exit (counted in exits_kernel) before the move.
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/radix.h"
#include "util/util.h"
#include "vmsim/arch/aarch64.h"
#include "vmsim/core.h"
#include "vmsim/dev.h"
#include "vmsim/frames.h"
#include "vmsim/iommu.h"
#include "vmsim/kernel.h"
#include "vmsim/machine.h"
#include "vmsim/virt.h"

#define S2_TABLES_LEN (UINT64_C(4) << 20)
#define MAX_VCPUS     64u
#define MAX_PDEVS     8u /* devices assigned to one VM */

typedef struct vcpu_state {
    vms_regs regs; /* the guest's registers while not on a core (VMCS guest state) */
    vms_nested *n;
    unsigned host; /* its host core */
    uint32_t vpid;
    bool moved; /* on a new core since its last entry: flush its VPID there first */
} vcpu_state;

/* A device assigned to the VM (passthrough, below): its interrupt's way into the guest. */
typedef struct pdev {
    struct vms_guest *g;
    vms_dev *dev;
    uint64_t bar;      /* its register page: the same address as GPA and HPA */
    bool posted;       /* posted interrupts (no exit) instead of exit + injection */
    vms_dev_irq_fn fn; /* the guest kernel's handler (NULL: none installed) */
    void *fn_ud;
} pdev;

struct vms_guest {
    vms_allocator alloc;
    vms_machine *m;
    vms_guest_config cfg;
    vms_kernel *k; /* the guest kernel */
    vms_bus *gbus; /* the guest-physical bus the guest kernel writes its tables on */
    vms_pt s2;
    vms_pt_bump s2_tables;
    vms_s2_regs s2r;
    vcpu_state v[MAX_VCPUS];
    unsigned cur; /* the vCPU the guest kernel last asked for (charged for its exits) */
    uint64_t npages;
    /* Sparse maps (host memory follows the pages touched, not guest_mem): */
    vmsi_radix hpfn; /* guest page -> its host frame (absent: not resident) */
    vmsi_radix slot; /* guest page -> its host swap slot (absent: none) */
    vmsi_radix fifo; /* sequence -> guest page + 1: resident pages, oldest first */
    uint64_t fifo_head, fifo_len;
    uint64_t host_next;   /* the next never-used host frame */
    vmsi_radix free_hpfn; /* a stack of host frames given back by swap-outs */
    uint64_t nfree_hpfn;
    uint64_t next_slot;   /* host swap: slots handed out upward, freed on swap-in */
    vmsi_radix free_slot; /* a stack of freed slots */
    uint64_t nfree_slot;
    FILE *swapf;
    bool reserved;
    vms_guest_stats st;
    /* Passthrough: the IOMMU the assigned devices sit behind, their domain, and on EPT
     * the IOMMU's mirror of the second stage (x86-64 tables from the same table area). */
    vms_iommu *io;
    uint16_t did;
    bool mirror_on;
    vms_pt mirror;
    pdev pd[MAX_PDEVS];
    unsigned npd;
};

static vms_status mirror_map(vms_guest *g, uint64_t gpa, uint64_t hpa, vms_pgsize size);

/* ---- host memory behind guest pages ---- */

static uint64_t hpfn_of(const vms_guest *g, uint64_t gpfn)
{
    return vmsi_radix_get(&g->hpfn, gpfn);
}

/* Push v (!= 0) on the stack r of *n entries. Fails (VMS_ERR_NOMEM, nothing changed)
 * only when a radix node is needed: never right after a pop, whose entry stays. */
static vms_status push(vms_guest *g, vmsi_radix *r, uint64_t *n, uint64_t v)
{
    vms_status st = vmsi_radix_set(r, &g->alloc, *n, v);
    *n += st == VMS_OK;
    return st;
}

/* Pop the top of a stack (*n > 0). The entry stays in the map (it is above the top now
 * and means nothing), so that a push after a pop never allocates. */
static uint64_t pop(vmsi_radix *r, uint64_t *n)
{
    return vmsi_radix_get(r, --*n);
}

/* The host swap file, opened on first use. */
static vms_status swap_open(vms_guest *g)
{
    if (g->swapf)
        return VMS_OK;
    const char *path = g->cfg.host_swap_file;
    g->swapf = path && *path ? fopen(path, "w+b") : tmpfile();
    return g->swapf ? VMS_OK : VMS_ERR_IO;
}

/* INVEPT on every vCPU's core (and its nested TLB): a leaf went away. */
static void invept_all(vms_guest *g)
{
    for (unsigned i = 0; i < g->cfg.nvcpus; i++)
        vms_core_invept(vms_machine_core(g->m, g->v[i].host), VMS_INVEPT_SINGLE, g->v[i].vpid,
                        g->v[i].n);
}

/* Host reclaim: write the oldest resident guest page to the host's swap, unmap its
 * leaf, put its host frame on the free stack. Nothing changes on failure: the maps'
 * new entries are made first (VMS_ERR_NOMEM), then the page is written (VMS_ERR_IO). */
static vms_status swap_out_one(vms_guest *g)
{
    if (g->fifo_len == 0 || swap_open(g) != VMS_OK)
        return VMS_ERR_NOMEM;
    uint64_t gpfn = vmsi_radix_get(&g->fifo, g->fifo_head) - 1;
    uint64_t hpfn = hpfn_of(g, gpfn);
    uint64_t s =
        g->nfree_slot ? vmsi_radix_get(&g->free_slot, g->nfree_slot - 1) : g->next_slot + 1;
    if (vmsi_radix_set(&g->slot, &g->alloc, gpfn, s) != VMS_OK)
        return VMS_ERR_NOMEM;
    if (push(g, &g->free_hpfn, &g->nfree_hpfn, hpfn) != VMS_OK) {
        vmsi_radix_set(&g->slot, &g->alloc, gpfn, 0); /* removing never fails */
        return VMS_ERR_NOMEM;
    }
    uint8_t buf[VMS_PAGE_SIZE];
    vms_ram *ram = vms_machine_ram(g->m);
    if (vms_ram_read(ram, hpfn << VMS_PAGE_SHIFT, buf, sizeof buf) != VMS_OK ||
        fseek(g->swapf, (long)(s << VMS_PAGE_SHIFT), SEEK_SET) != 0 ||
        fwrite(buf, 1, sizeof buf, g->swapf) != sizeof buf) {
        (void)pop(&g->free_hpfn, &g->nfree_hpfn);
        vmsi_radix_set(&g->slot, &g->alloc, gpfn, 0);
        return VMS_ERR_IO;
    }
    if (g->nfree_slot) /* the slot is taken now */
        (void)pop(&g->free_slot, &g->nfree_slot);
    else
        g->next_slot++;
    vmsi_radix_set(&g->fifo, &g->alloc, g->fifo_head++, 0);
    g->fifo_len--;
    vms_pt_unmap(&g->s2, gpfn << VMS_PAGE_SHIFT, false, NULL);
    invept_all(g);
    vms_ram_discard(ram, hpfn);
    vmsi_radix_set(&g->hpfn, &g->alloc, gpfn, 0);
    g->st.host_frames--;
    g->st.host_swapouts++;
    return VMS_OK;
}

/* A host frame for a guest page (reclaiming one under host_frames): from the free
 * stack, else never used. Every frame handed out can be given back by unget_frame. */
static vms_status host_frame(vms_guest *g, uint64_t *hpfn)
{
    if (g->cfg.host_frames && g->st.host_frames >= g->cfg.host_frames) {
        vms_status st = swap_out_one(g);
        if (st != VMS_OK)
            return st;
    }
    if (g->nfree_hpfn) {
        *hpfn = pop(&g->free_hpfn, &g->nfree_hpfn);
        return VMS_OK;
    }
    if (g->host_next >= g->cfg.host_end >> VMS_PAGE_SHIFT)
        return VMS_ERR_NOMEM;
    *hpfn = g->host_next++;
    return VMS_OK;
}

/* The rights of every second-stage leaf: all of them, and on Arm made young and dirty
 * (AF, S2AP[1]) so that no Access flag or Permission fault follows. */
static unsigned leaf_prot(const vms_guest *g)
{
    unsigned prot = VMS_PGPROT_R | VMS_PGPROT_W | VMS_PGPROT_X | VMS_PGPROT_U;
    return g->cfg.kind == VMS_S2_ARM ? prot | VMS_PGPROT_A | VMS_PGPROT_D : prot;
}

/* Give back the frame host_frame just handed out (never fails: a popped frame goes back
 * on the entry it came from, a new one back to host_next). */
static void unget_frame(vms_guest *g, uint64_t hpfn)
{
    if (hpfn + 1 == g->host_next)
        g->host_next--;
    else
        (void)push(g, &g->free_hpfn, &g->nfree_hpfn, hpfn);
}

/* Back guest page gpfn (4 KiB host pages): a host frame, its bytes from the host's
 * swap if it was swapped, a second-stage leaf. use says who touched it (counting).
 * Nothing changes on failure (a swapped page keeps its slot). */
static vms_status back4k(vms_guest *g, uint64_t gpfn, vms_kmem_use use)
{
    /* the maps' entries this backing needs, before anything changes (1: a placeholder;
     * the FIFO's tail index stays the same across a swap-out, which takes the head) */
    uint64_t tail = g->fifo_head + g->fifo_len;
    if (vmsi_radix_set(&g->hpfn, &g->alloc, gpfn, 1) != VMS_OK)
        return VMS_ERR_NOMEM;
    if (vmsi_radix_set(&g->fifo, &g->alloc, tail, gpfn + 1) != VMS_OK) {
        vmsi_radix_set(&g->hpfn, &g->alloc, gpfn, 0);
        return VMS_ERR_NOMEM;
    }
    uint64_t hpfn = 0;
    vms_status st = host_frame(g, &hpfn);
    bool got = st == VMS_OK;
    uint64_t s = vmsi_radix_get(&g->slot, gpfn);
    if (st == VMS_OK && s) {
        uint8_t buf[VMS_PAGE_SIZE];
        if (fseek(g->swapf, (long)(s << VMS_PAGE_SHIFT), SEEK_SET) != 0 ||
            fread(buf, 1, sizeof buf, g->swapf) != sizeof buf ||
            vms_ram_write(vms_machine_ram(g->m), hpfn << VMS_PAGE_SHIFT, buf, sizeof buf) != VMS_OK)
            st = VMS_ERR_IO;
    }
    if (st == VMS_OK)
        st = vms_pt_map_prot(&g->s2, gpfn << VMS_PAGE_SHIFT, hpfn << VMS_PAGE_SHIFT, VMS_PG_4K,
                             leaf_prot(g), NULL);
    if (st == VMS_OK &&
        (st = mirror_map(g, gpfn << VMS_PAGE_SHIFT, hpfn << VMS_PAGE_SHIFT, VMS_PG_4K)) != VMS_OK)
        vms_pt_unmap(&g->s2, gpfn << VMS_PAGE_SHIFT, false, NULL); /* the IOMMU's view too */
    if (st != VMS_OK) {
        if (got)
            unget_frame(g, hpfn);
        vmsi_radix_set(&g->hpfn, &g->alloc, gpfn, 0);
        vmsi_radix_set(&g->fifo, &g->alloc, tail, 0);
        return st;
    }
    vmsi_radix_set(&g->hpfn, &g->alloc, gpfn, hpfn); /* replacing never fails */
    if (s) {
        vmsi_radix_set(&g->slot, &g->alloc, gpfn, 0);
        /* A slot that cannot go on the free stack (no memory for a node) is only never
         * reused: the swap file keeps its place. */
        (void)push(g, &g->free_slot, &g->nfree_slot, s);
        g->st.host_swapins++;
        g->st.double_paging += use == VMS_KMEM_IO_READ;
        g->st.false_reads += use == VMS_KMEM_OVERWRITE;
    }
    g->fifo_len++;
    g->st.host_frames++;
    g->st.backed++;
    return VMS_OK;
}

/* Back the 2 MiB region around gpfn with one 2 MiB host leaf (no host swap). The map
 * entries first, then the leaf: nothing changes on failure. */
static vms_status back2m(vms_guest *g, uint64_t gpfn)
{
    uint64_t base = gpfn & ~UINT64_C(511);
    uint64_t h = (g->host_next + 511) & ~UINT64_C(511);
    if (h + 512 > g->cfg.host_end >> VMS_PAGE_SHIFT)
        return VMS_ERR_NOMEM;
    uint64_t n = g->npages - base < 512 ? g->npages - base : 512, i = 0;
    while (i < n && vmsi_radix_set(&g->hpfn, &g->alloc, base + i, h + i) == VMS_OK)
        i++;
    vms_status st = i < n ? VMS_ERR_NOMEM
                          : vms_pt_map_prot(&g->s2, base << VMS_PAGE_SHIFT, h << VMS_PAGE_SHIFT,
                                            VMS_PG_2M, leaf_prot(g), NULL);
    if (st == VMS_OK &&
        (st = mirror_map(g, base << VMS_PAGE_SHIFT, h << VMS_PAGE_SHIFT, VMS_PG_2M)) != VMS_OK)
        vms_pt_unmap(&g->s2, base << VMS_PAGE_SHIFT, false, NULL);
    if (st != VMS_OK) {
        while (i)
            vmsi_radix_set(&g->hpfn, &g->alloc, base + --i, 0);
        return st;
    }
    g->host_next = h + 512;
    g->st.host_frames += 512;
    g->st.backed++;
    return VMS_OK;
}

/* The host frame of guest page gpfn, backing it first (a VM exit) if needed. */
static vms_status resident(vms_guest *g, uint64_t gpfn, vms_kmem_use use, bool kernel,
                           uint64_t *hpfn)
{
    if (gpfn >= g->npages)
        return VMS_ERR_BUS;
    if (!hpfn_of(g, gpfn)) {
        vms_status st = g->cfg.host_page == VMS_PG_2M ? back2m(g, gpfn) : back4k(g, gpfn, use);
        if (st != VMS_OK)
            return st;
        g->st.exits++;
        if (kernel) {
            g->st.exits_kernel++;
            g->st.exit_cycles += g->cfg.exit_cycles;
            vms_core_add_cycles(vms_machine_core(g->m, g->v[g->cur].host), g->cfg.exit_cycles);
        }
    }
    *hpfn = hpfn_of(g, gpfn);
    return VMS_OK;
}

/* ---- the guest-physical bus (the guest kernel's page-table stores and loads) ---- */

static vms_status gbus_read(void *dev, uint64_t gpa, unsigned size, uint64_t *val)
{
    vms_guest *g = dev;
    uint64_t hpfn, v = 0;
    vms_status st = resident(g, gpa >> VMS_PAGE_SHIFT, VMS_KMEM_READ, true, &hpfn);
    if (st != VMS_OK)
        return st == VMS_ERR_BUS ? st : VMS_ERR_BUS;
    st = vms_ram_read(vms_machine_ram(g->m), hpfn << VMS_PAGE_SHIFT | (gpa & VMS_PAGE_MASK), &v,
                      size);
    *val = v;
    return st;
}

static vms_status gbus_write(void *dev, uint64_t gpa, unsigned size, uint64_t val)
{
    vms_guest *g = dev;
    uint64_t hpfn;
    if (resident(g, gpa >> VMS_PAGE_SHIFT, VMS_KMEM_WRITE, true, &hpfn) != VMS_OK)
        return VMS_ERR_BUS;
    return vms_ram_write(vms_machine_ram(g->m), hpfn << VMS_PAGE_SHIFT | (gpa & VMS_PAGE_MASK),
                         &val, size);
}

static const vms_mmio_ops gbus_ops = {gbus_read, gbus_write};

/* ---- the platform the guest kernel runs on ---- */

/* A second-stage exit from the hardware (vms_core_vm_run): back the page. */
static bool on_exit(void *ud, vms_core *c, const vms_fault *f)
{
    vms_guest *g = ud;
    const vms_s2_fault *e = vms_nested_last_exit(vms_core_nested(c));
    g->st.exit_cycles += g->cfg.exit_cycles;
    vms_core_add_cycles(c, g->cfg.exit_cycles);
    uint64_t gpfn = f->pa >> VMS_PAGE_SHIFT, hpfn;
    if (e->kind != VMS_S2F_VIOLATION || gpfn >= g->npages || hpfn_of(g, gpfn) ||
        resident(g, gpfn, VMS_KMEM_READ, false, &hpfn) != VMS_OK) {
        g->st.unhandled++;
        return false;
    }
    g->st.exits_walk++;
    return true;
}

/* CPU i of the guest kernel: vCPU i on its host core, loaded there if the core runs
 * something else (the host, another vCPU: its exit saves its registers). */
static vms_core *plat_core(void *ud, unsigned i)
{
    vms_guest *g = ud;
    vcpu_state *v = &g->v[i];
    vms_core *c = vms_machine_core(g->m, v->host);
    g->cur = i;
    if (vms_core_vm_save_area(c) == &v->regs)
        return c;
    vms_core_vm_exit(c);
    vms_status st = vms_core_vm_run(c, v->n, v->vpid, &v->regs, on_exit, g);
    assert(st == VMS_OK);
    (void)st;
    if (v->moved) { /* entries of this VPID left here by an earlier stay are stale */
        vms_core_invvpid(c, VMS_INVVPID_SINGLE, v->vpid, 0);
        g->st.migration_flushes++;
        v->moved = false;
    }
    g->st.vcpu_loads++;
    g->st.exit_cycles += g->cfg.exit_cycles;
    vms_core_add_cycles(c, g->cfg.exit_cycles);
    return c;
}

/* CPU i's clock: its host core's, read without loading the vCPU there. */
static uint64_t plat_cycles(void *ud, unsigned i)
{
    vms_guest *g = ud;
    return vms_core_cycles(vms_machine_core(g->m, g->v[i].host));
}

static vms_status plat_frame(void *ud, uint64_t pfn, vms_kmem_use use, uint64_t *host_pfn)
{
    vms_guest *g = ud;
    vms_status st = resident(g, pfn, use, true, host_pfn);
    return st == VMS_ERR_BUS ? VMS_ERR_RANGE : st;
}

/* ---- interrupts of assigned devices (issue 10 item 6) ----
 *
 * The device's message reaches the host core its routing names (counted there,
 * vms_core_interrupt); the hypervisor's handler (VFIO's, then KVM's irqfd) makes it the
 * guest's, for the vCPU the guest routed it to:
 *  - without posted interrupts, an external interrupt arriving while that vCPU runs is a
 *    VM exit (pin-based "external-interrupt exiting", SDM Vol. 3C §25.6.1; exit reason 1,
 *    §26.2), counted in exits_intr and charged exit_cycles; the host marks the vector
 *    pending and the next VM entry injects it (VM-entry interruption-information field,
 *    §25.8.3, §27.6): intr_injected. A vCPU not on its core exits nothing; the entry
 *    that delivers it loads it (a vCPU entry, as plat_core's);
 *  - with posted interrupts (VT-d interrupt posting and the CPU's posted-interrupt
 *    processing, SDM Vol. 3C §30.6) the vector is posted to the vCPU's descriptor and
 *    the running vCPU takes it without an exit: intr_posted (a vCPU off its core gets it
 *    at its next entry).
 * Then the guest kernel's handler runs (it reads the cause register through its own
 * mapping and completes the transfer) — inside the VM, on that vCPU.
 */
static void hv_irq(void *ud, vms_dev *dev, unsigned core, uint8_t vector)
{
    pdev *p = ud;
    vms_guest *g = p->g;
    unsigned cpu = core < g->cfg.nvcpus ? core : 0; /* the guest's routing names its CPU */
    vcpu_state *v = &g->v[cpu];
    vms_core *hc = vms_machine_core(g->m, v->host);
    bool running = vms_core_vm_save_area(hc) == &v->regs;
    if (p->posted) {
        g->st.intr_posted++;
    } else {
        if (running) {
            g->st.exits++;
            g->st.exits_intr++;
            g->st.exit_cycles += g->cfg.exit_cycles;
            vms_core_add_cycles(hc, g->cfg.exit_cycles);
        }
        g->st.intr_injected++;
    }
    if (!p->fn)
        return;
    (void)plat_core(g, cpu); /* the entry that delivers it (none if it runs there) */
    p->fn(p->fn_ud, dev, cpu, vector);
}

/* The platform's irq_handler: the guest kernel's handler for an assigned device. */
static void plat_irq(void *ud, vms_dev *dev, vms_dev_irq_fn fn, void *fn_ud)
{
    vms_guest *g = ud;
    for (unsigned i = 0; i < g->npd; i++)
        if (g->pd[i].dev == dev) {
            g->pd[i].fn = fn;
            g->pd[i].fn_ud = fn_ud;
        }
}

/* ---- creation ---- */

/* Is m an AArch64 machine (its guests: AArch64 over Arm Stage 2)? */
static bool arm_machine(vms_machine *m)
{
    return !strcmp(vms_machine_format(m)->arch, "aarch64");
}

static vms_status check(vms_machine *m, vms_guest_config *c, vms_err *err)
{
    bool arm = arm_machine(m);
    if (c->kind == VMS_S2_NONE)
        c->kind = arm ? VMS_S2_ARM : VMS_S2_EPT;
    c->host_levels = c->host_levels ? c->host_levels : 4;
    c->guest_mem = c->guest_mem ? c->guest_mem : UINT64_C(256) << 20;
    c->nvcpus = c->nvcpus ? c->nvcpus : 1;
    c->exit_cycles = c->exit_cycles ? c->exit_cycles : 1200;
    if (arm ? c->kind != VMS_S2_ARM : c->kind != VMS_S2_EPT && c->kind != VMS_S2_NPT)
        return vmsi_err(err, VMS_ERR_INVAL,
                        arm ? "guest: an aarch64 machine's second stage is Arm Stage 2"
                            : "guest: the second stage is EPT or NPT (Arm Stage 2 needs an "
                              "aarch64 machine)");
    if (arm ? c->host_levels != 3 && c->host_levels != 4
            : c->host_levels != 4 && c->host_levels != 5)
        return vmsi_err(err, VMS_ERR_INVAL, "guest: host levels %u: expected %s", c->host_levels,
                        arm ? "3 or 4 (Stage 2)" : "4 or 5");
    if (arm && c->vpid > 0xFFFF)
        return vmsi_err(err, VMS_ERR_INVAL, "guest: vpid (the VMID) %u: expected 1 … 65535",
                        c->vpid);
    if (c->guest_mem < (UINT64_C(16) << 20) || c->guest_mem > (UINT64_C(3) << 30) ||
        (c->guest_mem & VMS_PAGE_MASK))
        return vmsi_err(err, VMS_ERR_INVAL,
                        "guest: memory 0x%llx: expected a multiple of 4 KiB in 16 MiB … 3 GiB",
                        (unsigned long long)c->guest_mem);
    if (c->host_page != VMS_PG_4K && (c->host_page != VMS_PG_2M || c->host_frames))
        return vmsi_err(err, VMS_ERR_INVAL,
                        "guest: host pages 4K or 2M (host swap, host_frames > 0, needs 4K)");
    if (c->host_frames && c->host_frames < 16)
        return vmsi_err(err, VMS_ERR_INVAL, "guest: host_frames %llu: expected 0 or >= 16",
                        (unsigned long long)c->host_frames);
    if (c->vpid == 0 || c->nvcpus > MAX_VCPUS || c->nvcpus > vms_machine_ncores(m))
        return vmsi_err(err, VMS_ERR_INVAL,
                        "guest: vpid >= 1 and 1 … %u vCPUs (the host has %u cores) expected",
                        MAX_VCPUS, vms_machine_ncores(m));
    if ((c->host_at | c->host_end | c->s2_tables_at) & VMS_PAGE_MASK || c->host_at == 0 ||
        c->host_end <= c->host_at || c->host_end > vms_ram_limit(vms_machine_ram(m)) ||
        (c->s2_tables_at < c->host_end && c->host_at < c->s2_tables_at + S2_TABLES_LEN))
        return vmsi_err(err, VMS_ERR_INVAL,
                        "guest: host memory [host_at, host_end) (above frame 0) and the 4 MiB of "
                        "second-stage tables must be page aligned, disjoint and inside host RAM");
    return VMS_OK;
}

/* Per-vCPU state: host core, VPID, a two-stage MMU (all of the VM's linked), registers
 * as at power-on (x86-64: paging on, CR3 0; AArch64: EL1, TTBRs 0; the guest kernel's
 * boot turns its MMU on and loads its own tables). x86-64 tags vCPU i with VPID vpid + i;
 * an Arm VM has one VMID, vpid, for all its vCPUs (VTTBR_EL2.VMID), so that a guest's
 * TLBI … IS reaches the entries of each of them. */
static vms_status vcpus_init(vms_guest *g, const unsigned *pin, vms_err *err)
{
    const vms_guest_config *c = &g->cfg;
    vms_nested_config ncfg = {c->s2_tlb, c->guest_pwc, 4, c->seed};
    for (unsigned i = 0; i < c->nvcpus; i++) {
        vcpu_state *v = &g->v[i];
        v->host = pin ? pin[i] : i;
        v->vpid = c->kind == VMS_S2_ARM ? c->vpid : c->vpid + i;
        bool clash = v->host >= vms_machine_ncores(g->m);
        for (unsigned j = 0; j < i; j++)
            clash = clash || g->v[j].host == v->host;
        if (clash)
            return vmsi_err(err, VMS_ERR_INVAL,
                            "guest: vCPU %u on host core %u: expected distinct cores below %u", i,
                            v->host, vms_machine_ncores(g->m));
        vms_status st =
            vms_nested_create(&g->alloc, vms_machine_bus(g->m), &g->s2r, &ncfg, &v->n, err);
        if (st != VMS_OK)
            return st;
        if (i > 0)
            vms_nested_link(g->v[0].n, v->n);
        v->regs = *vms_core_regs(vms_machine_core(g->m, v->host));
        if (c->kind == VMS_S2_ARM) {
            v->regs.fmt = vms_format_aarch64();
            v->regs.ttbr0_el1 = v->regs.ttbr1_el1 = 0;
            v->regs.user = false;
            v->regs.pan = false;
            continue;
        }
        v->regs.fmt = NULL;
        v->regs.cr3 = 0;
        v->regs.cr4 &= ~(VMS_CR4_LA57 | VMS_CR4_PCIDE | VMS_CR4_SMEP | VMS_CR4_SMAP | VMS_CR4_PKE);
        v->regs.cr4 |= VMS_CR4_PAE;
        v->regs.user = false;
    }
    return VMS_OK;
}

static vms_status reserve_host(vms_guest *g, vms_err *err)
{
    if (!g->cfg.host_kernel)
        return VMS_OK;
    vms_frames *fr = vms_kernel_frames(g->cfg.host_kernel);
    const vms_guest_config *c = &g->cfg;
    vms_status st = vms_frames_reserve(fr, c->s2_tables_at >> VMS_PAGE_SHIFT,
                                       S2_TABLES_LEN >> VMS_PAGE_SHIFT, err);
    if (st != VMS_OK)
        return st;
    st = vms_frames_reserve(fr, c->host_at >> VMS_PAGE_SHIFT,
                            (c->host_end - c->host_at) >> VMS_PAGE_SHIFT, err);
    if (st != VMS_OK) {
        vms_frames_unreserve(fr, c->s2_tables_at >> VMS_PAGE_SHIFT, S2_TABLES_LEN >> VMS_PAGE_SHIFT,
                             NULL);
        return st;
    }
    g->reserved = true;
    return VMS_OK;
}

vms_status vms_guest_create(vms_machine *m, const vms_guest_config *cfg, vms_guest **out,
                            vms_err *err)
{
    *out = NULL;
    vms_guest_config c = *cfg;
    vms_status st = check(m, &c, err);
    if (st != VMS_OK)
        return st;
    const vms_allocator *a = vms_machine_allocator(m);
    vms_guest *g = vmsi_zalloc(a, sizeof *g);
    if (!g)
        return vmsi_err(err, VMS_ERR_NOMEM, "guest: out of host memory");
    g->alloc = *a;
    g->m = m;
    g->cfg = c;
    g->cfg.pin = NULL;
    g->npages = c.guest_mem >> VMS_PAGE_SHIFT;
    g->host_next = c.host_at >> VMS_PAGE_SHIFT;
    st = reserve_host(g, err);
    g->s2_tables =
        (vms_pt_bump){vms_machine_ram(m), c.s2_tables_at, c.s2_tables_at + S2_TABLES_LEN, 0, 0};
    vms_pt_ops ops = vms_pt_bump_ops(&g->s2_tables);
    const vms_pt_format *f = c.kind == VMS_S2_EPT   ? vms_format_ept(c.host_levels)
                             : c.kind == VMS_S2_NPT ? vms_format_npt(c.host_levels)
                                                    : vms_format_stage2(c.host_levels);
    if (st == VMS_OK)
        st = vms_pt_init_format(&g->s2, vms_machine_bus(m), f, &ops, err);
    if (st == VMS_OK) {
        g->s2r =
            (vms_s2_regs){.kind = c.kind,
                          .eptp = vms_eptp_make(g->s2.root, c.host_levels, VMS_EPT_MT_WB, c.ad),
                          .ncr3 = g->s2.root,
                          .npt_levels = c.host_levels,
                          .vttbr = vms_vttbr_make(g->s2.root, (uint16_t)c.vpid),
                          .vtcr = vms_vtcr_make(c.host_levels, c.ad, c.ad)};
        st = vms_bus_create(a, vms_machine_ram(m), &g->gbus, err);
    }
    if (st == VMS_OK)
        st = vms_bus_add_mmio(g->gbus, 0, c.guest_mem, "guest-physical", &gbus_ops, g, err);
    if (st == VMS_OK)
        st = vcpus_init(g, cfg->pin, err);
    if (st == VMS_OK) {
        vms_kernel_platform p = {g->gbus,    c.guest_mem, c.nvcpus,    plat_core,
                                 plat_frame, g,           plat_cycles, plat_irq};
        st = vms_kernel_create_on(m, &p, c.kernel, &g->k, err);
    }
    vms_guest_exit_all(g);
    if (st != VMS_OK) {
        vms_guest_destroy(g);
        return st;
    }
    *out = g;
    return VMS_OK;
}

void vms_guest_exit_all(vms_guest *g)
{
    for (unsigned i = 0; i < g->cfg.nvcpus; i++) {
        vms_core *c = vms_machine_core(g->m, g->v[i].host);
        if (g->v[i].n && vms_core_vm_save_area(c) == &g->v[i].regs)
            vms_core_vm_exit(c);
    }
}

void vms_guest_destroy(vms_guest *g)
{
    if (!g)
        return;
    vms_kernel_destroy(g->k);               /* detaches the guest's drivers */
    for (unsigned i = 0; i < g->npd; i++) { /* give the devices back to the host */
        vms_dev_set_irq_hook(g->pd[i].dev, NULL, NULL);
        vms_iommu_set_context(g->io, vms_dev_bdf(g->pd[i].dev), NULL, NULL);
    }
    if (g->npd)
        vms_iommu_inv_domain(g->io, g->did);
    vms_guest_exit_all(g);
    for (unsigned i = 0; i < g->cfg.nvcpus; i++)
        vms_nested_destroy(g->v[i].n);
    vms_ram *ram = vms_machine_ram(g->m);
    uint64_t gpfn = 0, hpfn = 0;
    for (; vmsi_radix_next(&g->hpfn, &gpfn, &hpfn); gpfn++)
        vms_ram_discard(ram, hpfn);
    for (uint64_t pa = g->cfg.s2_tables_at; pa < g->s2_tables.next; pa += VMS_PAGE_SIZE)
        vms_ram_discard(ram, pa >> VMS_PAGE_SHIFT);
    if (g->reserved) {
        vms_frames *fr = vms_kernel_frames(g->cfg.host_kernel);
        vms_frames_unreserve(fr, g->cfg.s2_tables_at >> VMS_PAGE_SHIFT,
                             S2_TABLES_LEN >> VMS_PAGE_SHIFT, NULL);
        vms_frames_unreserve(fr, g->cfg.host_at >> VMS_PAGE_SHIFT,
                             (g->cfg.host_end - g->cfg.host_at) >> VMS_PAGE_SHIFT, NULL);
    }
    if (g->swapf)
        fclose(g->swapf);
    vms_bus_destroy(g->gbus);
    vmsi_radix *maps[] = {&g->hpfn, &g->slot, &g->fifo, &g->free_hpfn, &g->free_slot};
    for (unsigned i = 0; i < sizeof maps / sizeof *maps; i++)
        vmsi_radix_free(maps[i], &g->alloc);
    vmsi_free(&g->alloc, g, sizeof *g);
}

vms_status vms_guest_move_vcpu(vms_guest *g, unsigned vcpu_id, unsigned host_core, vms_err *err)
{
    if (vcpu_id >= g->cfg.nvcpus || host_core >= vms_machine_ncores(g->m))
        return vmsi_err(err, VMS_ERR_INVAL, "guest: vCPU %u to host core %u: no such vCPU or core",
                        vcpu_id, host_core);
    for (unsigned j = 0; j < g->cfg.nvcpus; j++)
        if (j != vcpu_id && g->v[j].host == host_core)
            return vmsi_err(err, VMS_ERR_INVAL, "guest: host core %u already runs vCPU %u",
                            host_core, j);
    vcpu_state *v = &g->v[vcpu_id];
    if (v->host == host_core)
        return VMS_OK;
    vms_core *c = vms_machine_core(g->m, v->host);
    if (vms_core_vm_save_area(c) == &v->regs)
        vms_core_vm_exit(c);
    v->host = host_core;
    v->moved = true;
    g->st.migrations++;
    return VMS_OK;
}

vms_status vms_guest_stats_json_members(const vms_guest *g, vms_strbuf *sb)
{
    const vms_guest_stats *t = &g->st;
    vms_nested_stats n = {0};
    for (unsigned i = 0; i < g->cfg.nvcpus; i++) {
        const vms_nested_stats *v = vms_nested_get_stats(g->v[i].n);
        n.walks += v->walks;
        n.guest_refs += v->guest_refs;
        n.s2_refs += v->s2_refs;
        n.s2_walks += v->s2_walks;
        n.s2_tlb_hits += v->s2_tlb_hits;
    }
    return vms_strbuf_printf(
        sb,
        "\"vm\": {\"vcpus\": %u, \"exits\": %llu, \"exits_walk\": %llu, \"exits_kernel\": %llu, "
        "\"exit_cycles\": %llu, \"vcpu_loads\": %llu, \"migrations\": %llu, \"backed\": %llu, "
        "\"unhandled\": %llu, \"host_frames\": %llu, \"walks_2d\": %llu, \"guest_refs\": %llu, "
        "\"s2_refs\": %llu, \"s2_walks\": %llu, \"s2_tlb_hits\": %llu, \"host_swap\": {\"outs\": "
        "%llu, \"ins\": %llu, \"double_paging\": %llu, \"false_reads\": %llu}, "
        "\"exits_intr\": %llu, \"interrupts\": {\"injected\": %llu, \"posted\": %llu}}",
        g->cfg.nvcpus, (unsigned long long)t->exits, (unsigned long long)t->exits_walk,
        (unsigned long long)t->exits_kernel, (unsigned long long)t->exit_cycles,
        (unsigned long long)t->vcpu_loads, (unsigned long long)t->migrations,
        (unsigned long long)t->backed, (unsigned long long)t->unhandled,
        (unsigned long long)t->host_frames, (unsigned long long)n.walks,
        (unsigned long long)n.guest_refs, (unsigned long long)n.s2_refs,
        (unsigned long long)n.s2_walks, (unsigned long long)n.s2_tlb_hits,
        (unsigned long long)t->host_swapouts, (unsigned long long)t->host_swapins,
        (unsigned long long)t->double_paging, (unsigned long long)t->false_reads,
        (unsigned long long)t->exits_intr, (unsigned long long)t->intr_injected,
        (unsigned long long)t->intr_posted);
}

vms_kernel *vms_guest_kernel(vms_guest *g)
{
    return g->k;
}

const vms_guest_stats *vms_guest_get_stats(const vms_guest *g)
{
    return &g->st;
}

vms_bus *vms_guest_bus(vms_guest *g)
{
    return g->gbus;
}

const vms_pt *vms_guest_s2_pt(const vms_guest *g)
{
    return &g->s2;
}

vms_nested *vms_guest_nested(vms_guest *g, unsigned vcpu)
{
    return vcpu < g->cfg.nvcpus ? g->v[vcpu].n : NULL;
}

unsigned vms_guest_vcpu_core(const vms_guest *g, unsigned vcpu)
{
    return g->v[vcpu].host;
}

uint32_t vms_guest_vpid(const vms_guest *g, unsigned vcpu)
{
    return g->v[vcpu].vpid;
}

const vms_regs *vms_guest_vcpu_regs(const vms_guest *g, unsigned vcpu)
{
    const vcpu_state *v = &g->v[vcpu];
    vms_core *c = vms_machine_core(g->m, v->host);
    return vms_core_vm_save_area(c) == &v->regs ? vms_core_regs(c) : &v->regs;
}

bool vms_guest_hpa(const vms_guest *g, uint64_t gpa, uint64_t *hpa)
{
    uint64_t gpfn = gpa >> VMS_PAGE_SHIFT;
    uint64_t hpfn = gpfn < g->npages ? hpfn_of(g, gpfn) : 0;
    if (!hpfn)
        return false;
    *hpa = hpfn << VMS_PAGE_SHIFT | (gpa & VMS_PAGE_MASK);
    return true;
}

/* ---- device passthrough (issue 10 item 6; seed 001, "How Modern Virtual Machines Use
 * IOMMU") ----
 *
 *   guest driver ── DMA address = GPA ──► device ──► IOMMU context (bdf) ──► host RAM
 *                                                     │ NPT: the nested tables themselves
 *                                                     │ EPT: a mirror in the IOMMU's format,
 *                                                     ▼      kept in step with every backing
 *                                              VM's GPA -> HPA, nothing else
 *
 * The IOMMU translates what the guest programs with the VM's own mappings, so a DMA
 * reaches only host frames backing the VM's guest memory (and the VM's own devices'
 * registers, peer to peer); anything else — outside guest memory, or guest memory the
 * hypervisor has not backed yet — is blocked and logged in the IOMMU's fault log (the
 * host's DMAR driver reports it). VFIO pins all guest memory up front; here backing is
 * lazy and a guest's DMA buffers are backed by the guest kernel's own use of them.
 */

/* Map one new second-stage leaf into the IOMMU's mirror (EPT). */
static vms_status mirror_map(vms_guest *g, uint64_t gpa, uint64_t hpa, vms_pgsize size)
{
    if (!g->mirror_on)
        return VMS_OK;
    vms_status st = vms_pt_map(&g->mirror, gpa, hpa, size, VMS_PTE_US | VMS_PTE_RW, NULL);
    return st == VMS_ERR_EXISTS ? VMS_OK : st;
}

/* Mirror a leaf that exists already (vms_pt_foreach over the second stage). */
static bool mirror_one(void *ud, uint64_t gpa, uint64_t ptep, uint64_t pte, vms_pgsize size)
{
    vms_guest *g = ud;
    vms_pte_info in;
    (void)ptep;
    vms_fmt_decode(g->s2.fmt, pte, vms_fmt_size_level(size), &in);
    return mirror_map(g, gpa, in.pa, size) == VMS_OK;
}

/* The IOMMU's view of the VM: the nested tables (NPT) or Stage 2 (Arm, through the
 * SMMU's stage 2 context) shared, or the mirror (EPT, made now). */
static vms_status iommu_view(vms_guest *g, vms_err *err)
{
    if (g->cfg.kind == VMS_S2_NPT || g->cfg.kind == VMS_S2_ARM || g->mirror_on)
        return VMS_OK;
    vms_pt_ops ops = vms_pt_bump_ops(&g->s2_tables);
    vms_status st = vms_pt_init(&g->mirror, vms_machine_bus(g->m), g->cfg.host_levels, &ops, err);
    if (st != VMS_OK)
        return st;
    g->mirror_on = true;
    if (vms_pt_foreach(&g->s2, 0, UINT64_C(1) << 48, mirror_one, g) != VMS_OK)
        return vmsi_err(err, VMS_ERR_NOMEM, "passthrough: no room to mirror the second stage");
    return VMS_OK;
}

vms_status vms_guest_assign_device(vms_guest *g, vms_dev *dev, const vms_guest_dev_config *dc,
                                   vms_err *err)
{
    vms_iommu *io = vms_dev_iommu(dev);
    uint64_t bar = vms_dev_mmio_base(dev);
    if (!io || !vms_iommu_enabled(io))
        return vmsi_err(err, VMS_ERR_INVAL,
                        "passthrough: %s must sit behind an IOMMU that is on (VFIO needs it)",
                        vms_dev_name(dev));
    if (g->io && io != g->io)
        return vmsi_err(err, VMS_ERR_UNSUPPORTED,
                        "passthrough: a VM's devices sit behind one IOMMU");
    if (g->cfg.host_frames)
        return vmsi_err(err, VMS_ERR_UNSUPPORTED,
                        "passthrough: a VM with host overcommit (host_frames) cannot have an "
                        "assigned device: VFIO pins guest memory, the host may not swap it");
    if (g->npd == MAX_PDEVS || dc->did == 0)
        return vmsi_err(err, VMS_ERR_INVAL,
                        "passthrough: at most %u devices per VM, domain id 1 … %u", MAX_PDEVS,
                        VMS_IOMMU_MAX_DID);
    if (bar && (bar & VMS_PAGE_MASK || bar < g->cfg.guest_mem))
        return vmsi_err(err, VMS_ERR_INVAL,
                        "passthrough: %s's registers at 0x%llx: expected a page of their own "
                        "above guest memory (VFIO maps page-aligned BARs)",
                        vms_dev_name(dev), (unsigned long long)bar);
    for (unsigned i = 0; i < g->npd; i++)
        if (g->pd[i].dev == dev)
            return vmsi_err(err, VMS_ERR_EXISTS, "passthrough: %s is assigned already",
                            vms_dev_name(dev));
    vms_status st = iommu_view(g, err);
    /* its registers: the BAR page mapped into the VM, uncached (no exits on access) */
    unsigned prot = VMS_PGPROT_R | VMS_PGPROT_W | VMS_PGPROT_U | VMS_PGPROT_NOCACHE;
    if (st == VMS_OK && bar)
        st = vms_pt_map_prot(&g->s2, bar, bar, VMS_PG_4K, prot, err);
    if (st == VMS_OK && bar)
        st = mirror_map(g, bar, bar, VMS_PG_4K);
    vms_iommu_context ctx = {VMS_IOMMU_TRANSLATE, dc->did,
                             g->mirror_on ? g->mirror.root : g->s2.root, g->cfg.host_levels};
    /* Arm: the SMMU's STE for stage 2, the VM's Stage 2 tables shared, S2VMID the domain
     * (the SMMU driver's own VMID namespace, as Linux's arm-smmu-v3 allocates one per
     * stage 2 domain: never a tag of the host's other DMA domains) */
    bool arm = g->cfg.kind == VMS_S2_ARM;
    uint64_t ste[VMS_SMMU_STE_DWORDS];
    vms_smmu_ste_s2(ste, g->s2.root, dc->did, g->cfg.host_levels);
    if (st == VMS_OK)
        st = arm ? vms_iommu_set_ste(io, vms_dev_bdf(dev), ste, err)
                 : vms_iommu_set_context(io, vms_dev_bdf(dev), &ctx, err);
    if (st != VMS_OK)
        return st;
    vms_iommu_inv_domain(io, ctx.did); /* nothing of an earlier user of the domain stays */
    g->io = io;
    g->did = ctx.did;
    g->pd[g->npd++] = (pdev){g, dev, bar, dc->posted, NULL, NULL};
    vms_dev_set_irq_hook(dev, hv_irq, &g->pd[g->npd - 1]);
    return VMS_OK;
}
