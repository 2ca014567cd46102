/*
 * virt/guest.c — a VM whose guest kernel is the kernel model itself (virt.h
 * vms_guest): the hypervisor's side of it.
 *
 *   guest kernel (src/os, unchanged) ── vms_kernel_create_on(platform) ──┐
 *     │ page tables: stores on the guest-physical bus (below)           │ CPUs: vCPUs
 *     │ zero fill, copies, swap I/O: frame(gpfn) -> host frame           │ (core(i))
 *     ▼                                                                  ▼
 *   hypervisor: gpfn -> host frame map; back on first touch (an       host core of
 *   exit), swap in what the host swapped; host reclaim to the         vCPU i (shared,
 *   host's swap file when host_frames is reached: a clock over        movable), VPID
 *   the second stage's accessed flags (FIFO without them)             vpid+i, 2D walks
 *     │ second stage (EPT/NPT) in host RAM: the one truth the hardware walks
 *     ▼
 *   host RAM [host_at, host_end): the VM's frames; [s2_tables_at, +4 MiB): its tables
 *
 * Invariants: a guest page is resident (hpfn map != 0, a second-stage leaf of 4 KiB or
 * 2 MiB maps it to that host frame) or swapped (slot map != 0, no leaf) or untouched
 * (neither); host_frames == resident pages; the ring holds every resident unit once (a
 * 4 KiB page, or a 2 MiB region by its first page). Every unmapped leaf, split leaf or
 * cleared accessed flag is followed by INVEPT on every vCPU's core, so no composed or
 * nested-TLB entry outlives it (SDM §29.4.3.1); a vCPU's entries on a core it left go
 * at its next entry there (plat_core).
 *
 * The guest kernel's own data moves are not translated by its MMU (on bare metal they
 * go to RAM directly, kernel.h); in a VM they still pass the second stage: a frame the
 * hypervisor has not backed is a VM exit (counted in exits_kernel) before the move.
 *
 * The maps are sparse (util/radix): host memory follows the pages touched.
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hw/tap.h"
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
#include "virt/virt_impl.h"

#define S2_TABLES_LEN (UINT64_C(4) << 20)
#define MAX_VCPUS     64u
#define MAX_PDEVS     8u /* devices assigned to one VM */

typedef struct vcpu_state {
    vms_regs regs; /* the guest's registers while not on a core (VMCS guest state) */
    vms_nested *n;
    unsigned host; /* its host core */
    unsigned last; /* the host core it last ran on (KVM's loaded_vmcs->cpu) */
    uint32_t vpid;
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
    /* Arm: the vCPU of this VM that ran last on each host core, + 1 (0: none yet; KVM's
     * mmu->last_vcpu_ran) */
    uint8_t last_ran[VMS_MAX_CORES];
    uint64_t npages;
    /* Sparse maps (host memory follows the pages touched, not guest_mem): */
    vmsi_radix hpfn; /* guest page -> its host frame and flags (absent: not resident) */
    vmsi_radix slot; /* guest page -> its host swap slot (absent: none) */
    vmsi_radix ring; /* position -> resident unit (guest page + 1, RING_HUGE): the clock */
    uint64_t ring_head, ring_len;
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
static void mirror_unmap(vms_guest *g, uint64_t gpa);

/* ---- host memory behind guest pages ---- */

/*
 * The hpfn map's values: a host frame and two flags.
 *
 *   63     62     61     60      52 51                                 0
 *  +------+------+------+----------+------------------------------------+
 *  |YOUNG | HUGE |DIRTY |    0     | host frame number                  |
 *  +------+------+------+----------+------------------------------------+
 *
 * HUGE: the page is part of a 2 MiB second-stage leaf (all 512 of its region are).
 * YOUNG (on a 4 KiB page's entry, or on the first page's entry of a 2 MiB region):
 * the leaf's accessed flag is known set since the clock last cleared it, so a guest
 * kernel touch need not set it again (only the clock clears A, so this is exact).
 * DIRTY (likewise): the leaf's dirty flag is known set (nothing clears D: a leaf made
 * again after a swap-in or a split starts clean, its entry without the flag).
 * The ring's values: guest page + 1, with RING_HUGE for a 2 MiB unit (its first page).
 */
#define HP_YOUNG  (UINT64_C(1) << 63)
#define HP_HUGE   (UINT64_C(1) << 62)
#define HP_DIRTY  (UINT64_C(1) << 61)
#define HP_FRAME  ((UINT64_C(1) << 52) - 1)
#define RING_HUGE (UINT64_C(1) << 62)
#define RING_BASE (UINT64_C(1) << 40) /* the ring's first index: room to prepend */
_Static_assert(((HP_YOUNG | HP_HUGE | HP_DIRTY) & HP_FRAME) == 0, "flags above the frame number");

static uint64_t hpfn_of(const vms_guest *g, uint64_t gpfn)
{
    return vmsi_radix_get(&g->hpfn, gpfn) & HP_FRAME;
}

/* Does the host's victim choice read the second stage's accessed flags? EPT with
 * EPTP.AD, NPT (whose x86-64 entries the walk always makes accessed), Arm Stage 2 with
 * VTCR_EL2.HA (without it a cleared AF would be an Access flag fault, not an update). */
static bool aging(const vms_guest *g)
{
    return vms_s2_ad(&g->s2r);
}

/* The rights of every second-stage leaf: all of them, and on Arm made young and dirty
 * (AF, S2AP[1]) so that no Access flag or Permission fault follows. */
static unsigned leaf_prot(const vms_guest *g)
{
    unsigned prot = VMS_PGPROT_R | VMS_PGPROT_W | VMS_PGPROT_X | VMS_PGPROT_U;
    return g->cfg.kind == VMS_S2_ARM ? prot | VMS_PGPROT_A | VMS_PGPROT_D : prot;
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

/* The ring of resident units (4 KiB pages, 2 MiB regions), the clock's hand at its
 * head: append at the tail, prepend at the head, remove the head. */
static vms_status ring_append(vms_guest *g, uint64_t v)
{
    vms_status st = vmsi_radix_set(&g->ring, &g->alloc, g->ring_head + g->ring_len, v);
    g->ring_len += st == VMS_OK;
    return st;
}

static vms_status ring_prepend(vms_guest *g, uint64_t v)
{
    vms_status st = vmsi_radix_set(&g->ring, &g->alloc, g->ring_head - 1, v);
    if (st == VMS_OK) {
        g->ring_head--;
        g->ring_len++;
    }
    return st;
}

static void ring_drop_head(vms_guest *g)
{
    vmsi_radix_set(&g->ring, &g->alloc, g->ring_head++, 0); /* removing never fails */
    g->ring_len--;
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

/* INVEPT on every vCPU's core (and its nested TLB): a leaf went away or lost its A. A
 * vCPU's entries left on a core it ran on before go at its next entry there (the
 * migration flush, plat_core). */
static void invept_all(vms_guest *g)
{
    for (unsigned i = 0; i < g->cfg.nvcpus; i++)
        vms_core_invept(vms_machine_core(g->m, g->v[i].host), VMS_INVEPT_SINGLE, g->v[i].vpid,
                        g->v[i].n);
}

/*
 * The clock's victim, left at the ring's head (ring_len > 0). With accessed flags
 * (aging()): a unit whose second-stage leaf is young has its A cleared and goes to the
 * tail (a second chance), until an old one is at the head; at most every unit once
 * (after a lap every A it saw is clear, and nothing runs meanwhile to set one). This is
 * the accessed-bit harvesting KVM's MMU notifier does for the host's reclaim
 * (kvm_mmu_notifier_clear_flush_young -> kvm_age_gfn, then a TLB flush when a flag was
 * young): *aged says so, and the caller's INVEPT is that flush, so that a translation
 * still cached cannot hide the next use. Without accessed flags: FIFO, the head itself.
 */
static void pick(vms_guest *g, bool *aged)
{
    const vms_pt_format *f = g->s2.fmt;
    for (uint64_t n = 0; aging(g) && n < g->ring_len; n++) {
        uint64_t e = vmsi_radix_get(&g->ring, g->ring_head);
        uint64_t gpfn = (e & ~RING_HUGE) - 1, pte = 0, ptep = 0;
        g->st.host_scanned++;
        if (!vms_pt_lookup(&g->s2, gpfn << VMS_PAGE_SHIFT, &pte, &ptep, NULL) ||
            !vms_fmt_pte_young(f, pte))
            return;
        if (ring_append(g, e) != VMS_OK)
            return; /* no room to move it: it is the victim, young or not */
        (void)vms_pt_write(&g->s2, ptep, vms_fmt_pte_mkold(f, pte));
        vmsi_radix_set(&g->hpfn, &g->alloc, gpfn, vmsi_radix_get(&g->hpfn, gpfn) & ~HP_YOUNG);
        ring_drop_head(g);
        g->st.host_aged++;
        *aged = true;
    }
}

/*
 * Split the 2 MiB unit at the ring's head (first page base) into 512 4 KiB units, in
 * order at the head (Linux's split_huge_page puts the tail pages next to the head page
 * on its LRU, lru_add_split_folio: the cold region's parts are reclaimed next), and its
 * second-stage leaf into 512 4 KiB leaves on the same host frames. Why split rather
 * than swap the 2 MiB whole: the host's limit is reached by one frame at a time, and
 * writing 2 MiB to free 4 KiB would swap 511 pages the guest may still use — Linux
 * splits a THP on the swap-out path whenever it cannot swap it whole, and KVM follows
 * the host's mapping size (its MMU notifier zaps the 2 MiB leaf; later faults map
 * 4 KiB). The caller's INVEPT drops the 2 MiB composed entries. Nothing changes on
 * failure (VMS_ERR_NOMEM).
 */
static vms_status split(vms_guest *g, uint64_t base)
{
    unsigned i = 0;
    while (i < 511 && ring_prepend(g, base + 510 - i + 1) == VMS_OK)
        i++;
    uint64_t old = 0, h = hpfn_of(g, base);
    vms_status st =
        i < 511 ? VMS_ERR_NOMEM : vms_pt_unmap(&g->s2, base << VMS_PAGE_SHIFT, false, &old);
    unsigned prot = leaf_prot(g), j = 0;
    if (st == VMS_OK) { /* the first 4 KiB leaf needs a table page; the rest do not */
        while (j < 512 &&
               vms_pt_map_prot(&g->s2, (base + j) << VMS_PAGE_SHIFT, (h + j) << VMS_PAGE_SHIFT,
                               VMS_PG_4K, prot, NULL) == VMS_OK)
            j++;
        if (j < 512) { /* the 2 MiB leaf back (its table, if any, freed first) */
            while (j)
                (void)vms_pt_unmap(&g->s2, (base + --j) << VMS_PAGE_SHIFT, true, NULL);
            (void)vms_pt_map_prot(&g->s2, base << VMS_PAGE_SHIFT, h << VMS_PAGE_SHIFT, VMS_PG_2M,
                                  prot, NULL);
            st = VMS_ERR_NOMEM;
        }
    }
    if (st != VMS_OK) {
        while (i--)
            ring_drop_head(g);
        return st;
    }
    vmsi_radix_set(&g->ring, &g->alloc, g->ring_head + 511, base + 512); /* replaces */
    for (j = 0; j < 512; j++)
        vmsi_radix_set(&g->hpfn, &g->alloc, base + j, h + j);
    g->st.host_splits++;
    return VMS_OK;
}

/*
 * Host reclaim of one guest page: the clock's victim (split first if it is part of a
 * 2 MiB leaf) is written to the host's swap, its leaf unmapped, INVEPT on every vCPU's
 * core, its host frame put on the free stack. Nothing is lost on failure: the maps'
 * new entries are made first (VMS_ERR_NOMEM), then the page is written (VMS_ERR_IO).
 */
static vms_status swap_out_one(vms_guest *g)
{
    if (g->ring_len == 0 || swap_open(g) != VMS_OK)
        return VMS_ERR_NOMEM;
    bool aged = false;
    pick(g, &aged);
    uint64_t e = vmsi_radix_get(&g->ring, g->ring_head);
    uint64_t gpfn = (e & ~RING_HUGE) - 1;
    vms_status st = e & RING_HUGE ? split(g, gpfn) : VMS_OK;
    bool split_now = st == VMS_OK && (e & RING_HUGE);
    uint64_t hpfn = hpfn_of(g, gpfn);
    uint64_t s =
        g->nfree_slot ? vmsi_radix_get(&g->free_slot, g->nfree_slot - 1) : g->next_slot + 1;
    if (st == VMS_OK)
        st = vmsi_radix_set(&g->slot, &g->alloc, gpfn, s);
    if (st == VMS_OK && push(g, &g->free_hpfn, &g->nfree_hpfn, hpfn) != VMS_OK) {
        vmsi_radix_set(&g->slot, &g->alloc, gpfn, 0); /* removing never fails */
        st = VMS_ERR_NOMEM;
    }
    uint8_t buf[VMS_PAGE_SIZE];
    vms_ram *ram = vms_machine_ram(g->m);
    if (st == VMS_OK && (vms_ram_read(ram, hpfn << VMS_PAGE_SHIFT, buf, sizeof buf) != VMS_OK ||
                         fseek(g->swapf, (long)(s << VMS_PAGE_SHIFT), SEEK_SET) != 0 ||
                         fwrite(buf, 1, sizeof buf, g->swapf) != sizeof buf)) {
        (void)pop(&g->free_hpfn, &g->nfree_hpfn);
        vmsi_radix_set(&g->slot, &g->alloc, gpfn, 0);
        st = VMS_ERR_IO;
    }
    if (st != VMS_OK) {
        if (aged || split_now) /* cleared A flags, or 2 MiB composed entries */
            invept_all(g);
        return st;
    }
    if (g->nfree_slot) /* the slot is taken now */
        (void)pop(&g->free_slot, &g->nfree_slot);
    else
        g->next_slot++;
    ring_drop_head(g);
    vms_pt_unmap(&g->s2, gpfn << VMS_PAGE_SHIFT, false, NULL);
    invept_all(g);
    mirror_unmap(g, gpfn << VMS_PAGE_SHIFT); /* the assigned devices' view goes too */
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

/* Give back the frame host_frame just handed out (never fails: a popped frame goes back
 * on the entry it came from, a new one back to host_next). */
static void unget_frame(vms_guest *g, uint64_t hpfn)
{
    if (hpfn + 1 == g->host_next)
        g->host_next--;
    else
        (void)push(g, &g->free_hpfn, &g->nfree_hpfn, hpfn);
}

/* Back guest page gpfn with a 4 KiB leaf: a host frame (the host may reclaim one
 * first), its bytes from the host's swap if it was swapped, the leaf. use says who
 * touched it (counting). On failure the page stays as it was (a swapped page keeps its
 * slot); a reclaim made on the way stays made. */
static vms_status back4k(vms_guest *g, uint64_t gpfn, vms_kmem_use use)
{
    uint64_t hpfn = 0;
    vms_status st = host_frame(g, &hpfn);
    if (st != VMS_OK)
        return st;
    if (vmsi_radix_set(&g->hpfn, &g->alloc, gpfn, hpfn) != VMS_OK) {
        unget_frame(g, hpfn);
        return VMS_ERR_NOMEM;
    }
    st = ring_append(g, gpfn + 1);
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
        if (vmsi_radix_get(&g->ring, g->ring_head + g->ring_len - 1) == gpfn + 1) {
            vmsi_radix_set(&g->ring, &g->alloc, g->ring_head + g->ring_len - 1, 0);
            g->ring_len--;
        }
        vmsi_radix_set(&g->hpfn, &g->alloc, gpfn, 0);
        vms_ram_discard(vms_machine_ram(g->m), hpfn);
        unget_frame(g, hpfn);
        return st;
    }
    if (s) {
        vmsi_radix_set(&g->slot, &g->alloc, gpfn, 0);
        /* A slot that cannot go on the free stack (no memory for a node) is only never
         * reused: the swap file keeps its place. */
        (void)push(g, &g->free_slot, &g->nfree_slot, s);
        g->st.host_swapins++;
        g->st.double_paging += use == VMS_KMEM_IO_READ;
        g->st.false_reads += use == VMS_KMEM_OVERWRITE;
    }
    g->st.host_frames++;
    g->st.backed++;
    return VMS_OK;
}

/* May the 2 MiB region from base be backed whole: inside guest memory, no page of it
 * resident or swapped, an aligned free 2 MiB block of host memory, room under the
 * limit? Otherwise the page gets a 4 KiB leaf (Linux falls back to 4 KiB pages when a
 * THP cannot be had or charged: THP_FAULT_FALLBACK, THP_FAULT_FALLBACK_CHARGE). */
static bool can_back2m(const vms_guest *g, uint64_t base, uint64_t *h)
{
    uint64_t i = base, v = 0;
    *h = (g->host_next + 511) & ~UINT64_C(511);
    if (base + 512 > g->npages || *h + 512 > g->cfg.host_end >> VMS_PAGE_SHIFT ||
        (g->cfg.host_frames && g->st.host_frames + 512 > g->cfg.host_frames))
        return false;
    if (vmsi_radix_next(&g->hpfn, &i, &v) && i < base + 512)
        return false;
    i = base;
    return !(vmsi_radix_next(&g->slot, &i, &v) && i < base + 512);
}

/* Back the 2 MiB region around gpfn with one 2 MiB leaf, or gpfn alone with a 4 KiB
 * one when it cannot be (can_back2m). The maps first, then the leaf: nothing changes on
 * failure. */
static vms_status back2m(vms_guest *g, uint64_t gpfn, vms_kmem_use use)
{
    uint64_t base = gpfn & ~UINT64_C(511), h, i = 0;
    if (!can_back2m(g, base, &h)) {
        g->st.host_fallbacks++;
        return back4k(g, gpfn, use);
    }
    while (i < 512 && vmsi_radix_set(&g->hpfn, &g->alloc, base + i, (h + i) | HP_HUGE) == VMS_OK)
        i++;
    vms_status st = i < 512 ? VMS_ERR_NOMEM : ring_append(g, (base + 1) | RING_HUGE);
    if (st == VMS_OK) {
        st = vms_pt_map_prot(&g->s2, base << VMS_PAGE_SHIFT, h << VMS_PAGE_SHIFT, VMS_PG_2M,
                             leaf_prot(g), NULL);
        if (st == VMS_OK &&
            (st = mirror_map(g, base << VMS_PAGE_SHIFT, h << VMS_PAGE_SHIFT, VMS_PG_2M)) != VMS_OK)
            vms_pt_unmap(&g->s2, base << VMS_PAGE_SHIFT, false, NULL);
        if (st != VMS_OK) {
            vmsi_radix_set(&g->ring, &g->alloc, g->ring_head + g->ring_len - 1, 0);
            g->ring_len--;
        }
    }
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

/* A guest kernel's touch of a resident page makes its leaf accessed, and dirty when it
 * writes, as the hardware would when the kernel's own load or store walks the second
 * stage (its data moves do not go through the guest MMU here, kernel.h): so that the
 * clock sees kernel use too. v is the page's hpfn map value. */
static void touch(vms_guest *g, uint64_t gpfn, uint64_t v, vms_kmem_use use)
{
    uint64_t base = v & HP_HUGE ? gpfn & ~UINT64_C(511) : gpfn;
    uint64_t bv = base == gpfn ? v : vmsi_radix_get(&g->hpfn, base), pte = 0, ptep = 0;
    bool write = use == VMS_KMEM_WRITE || use == VMS_KMEM_OVERWRITE;
    uint64_t want = HP_YOUNG | (write ? HP_DIRTY : 0);
    if ((bv & want) == want)
        return;
    if (vms_pt_lookup(&g->s2, base << VMS_PAGE_SHIFT, &pte, &ptep, NULL)) {
        uint64_t e = vms_fmt_pte_mkyoung(g->s2.fmt, pte);
        (void)vms_pt_write(&g->s2, ptep, write ? vms_fmt_pte_mkdirty(g->s2.fmt, e) : e);
    }
    vmsi_radix_set(&g->hpfn, &g->alloc, base, bv | want); /* replaces */
}

/* The host frame of guest page gpfn, backing it first (a VM exit) if needed. */
static vms_status resident(vms_guest *g, uint64_t gpfn, vms_kmem_use use, bool kernel,
                           uint64_t *hpfn)
{
    if (gpfn >= g->npages)
        return VMS_ERR_BUS;
    uint64_t v = vmsi_radix_get(&g->hpfn, gpfn);
    if (!v) {
        vms_status st = g->cfg.host_page == VMS_PG_2M ? back2m(g, gpfn, use) : back4k(g, gpfn, use);
        if (st != VMS_OK)
            return st;
        g->st.exits++;
        if (kernel) {
            g->st.exits_kernel++;
            g->st.exit_cycles += g->cfg.exit_cycles;
            vms_core_add_cycles(vms_machine_core(g->m, g->v[g->cur].host), g->cfg.exit_cycles);
        }
        v = vmsi_radix_get(&g->hpfn, gpfn);
    }
    if (kernel && aging(g))
        touch(g, gpfn, v, use);
    *hpfn = v & HP_FRAME;
    return VMS_OK;
}

vms_status vms_guest_host_reclaim(vms_guest *g, uint64_t npages, uint64_t *done, vms_err *err)
{
    vms_status st = VMS_OK;
    uint64_t n = 0;
    while (n < npages && g->ring_len && (st = swap_out_one(g)) == VMS_OK)
        n++;
    if (done)
        *done = n;
    if (st != VMS_OK)
        return vmsi_err(err, st, "host reclaim of guest pages: %s after %llu pages",
                        st == VMS_ERR_IO ? "the host's swap file failed" : "out of host memory",
                        (unsigned long long)n);
    return VMS_OK;
}

const char *vms_guest_host_policy(const vms_guest *g)
{
    if (!aging(g))
        return "FIFO (no accessed flags in the second stage)";
    return g->cfg.kind == VMS_S2_NPT   ? "clock over the NPT accessed flags"
           : g->cfg.kind == VMS_S2_ARM ? "clock over the Stage 2 access flags"
                                       : "clock over the EPT accessed flags";
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
    uint64_t hpa = hpfn << VMS_PAGE_SHIFT | (gpa & VMS_PAGE_MASK);
    const vmsi_tap *tap = vmsi_machine_tap(g->m);
    if (vmsi_tap_on(tap)) /* the guest kernel's stores here are its page-table writes */
        vmsi_virt_report_pte_write(tap, (int)g->v[g->cur].host, g->cfg.vpid, gpa, hpa, size, val,
                                   false);
    return vms_ram_write(vms_machine_ram(g->m), hpa, &val, size);
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
    /* On a core other than the one it last ran on, the vCPU's entries an earlier stay
     * left here may be stale (a guest shootdown or INVEPT since reached it elsewhere):
     * flush its VPID here before it runs. KVM: vmx_vcpu_load_vmcs, when loaded_vmcs->cpu
     * != cpu, "Flush all EPTP/VPID contexts, the new pCPU may have stale TLB entries
     * from its previous association with the vCPU" (kvm_make_request(KVM_REQ_TLB_FLUSH),
     * served before the VM entry; on EPT an INVEPT, here the narrowest flush that covers
     * the vCPU: its VPID-tagged entries, INVVPID single context). */
    if (v->last != v->host) {
        if (!g->cfg.no_migration_flush)
            vms_core_invvpid(c, VMS_INVVPID_SINGLE, v->vpid, 0);
        g->st.migration_flushes++;
        v->last = v->host;
    } else if (g->cfg.kind == VMS_S2_ARM && g->last_ran[v->host] && g->last_ran[v->host] != i + 1) {
        /* An Arm VM's vCPUs share its VMID: the entries another vCPU of the VM left on
         * this core carry the same tag, and the guest kernel believes this CPU never
         * cached them (a shootdown of an mm that ran only there skips this CPU). KVM:
         * kvm_arch_vcpu_load, "if detecting that a vcpu from the same VM has previously
         * run on the same physical CPU", __kvm_flush_cpu_context — the VMID's entries on
         * this core (TLBI VMALLE1 under the VMID). */
        vms_core_invvpid(c, VMS_INVVPID_SINGLE, v->vpid, 0);
        g->st.vcpu_switch_flushes++;
    }
    g->last_ran[v->host] = (uint8_t)(i + 1);
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

/* Kernel work charged to CPU i: to its host core, likewise without loading the vCPU
 * (vCPUs may share the core: the one the kernel holds keeps it). */
static void plat_add_cycles(void *ud, unsigned i, uint64_t n)
{
    vms_guest *g = ud;
    vms_core_add_cycles(vms_machine_core(g->m, g->v[i].host), n);
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
    if (c->host_page != VMS_PG_4K && c->host_page != VMS_PG_2M)
        return vmsi_err(err, VMS_ERR_INVAL, "guest: host pages 4K or 2M");
    if (c->host_frames && c->host_frames < 16)
        return vmsi_err(err, VMS_ERR_INVAL, "guest: host_frames %llu: expected 0 or >= 16",
                        (unsigned long long)c->host_frames);
    if (c->vpid == 0 || c->nvcpus > MAX_VCPUS)
        return vmsi_err(err, VMS_ERR_INVAL, "guest: vpid >= 1 and 1 … %u vCPUs expected",
                        MAX_VCPUS);
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
        v->host = pin ? pin[i] : i % vms_machine_ncores(g->m);
        v->last = v->host;
        v->vpid = c->kind == VMS_S2_ARM ? c->vpid : c->vpid + i;
        if (v->host >= vms_machine_ncores(g->m))
            return vmsi_err(err, VMS_ERR_INVAL,
                            "guest: vCPU %u on host core %u: the host has %u cores", i, v->host,
                            vms_machine_ncores(g->m));
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
    g->ring_head = RING_BASE;
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
        vms_kernel_platform p = {g->gbus, c.guest_mem, c.nvcpus,        plat_core, plat_frame,
                                 g,       plat_cycles, plat_add_cycles, plat_irq};
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
        vms_ram_discard(ram, hpfn & HP_FRAME);
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
    vmsi_radix *maps[] = {&g->hpfn, &g->slot, &g->ring, &g->free_hpfn, &g->free_slot};
    for (unsigned i = 0; i < sizeof maps / sizeof *maps; i++)
        vmsi_radix_free(maps[i], &g->alloc);
    vmsi_free(&g->alloc, g, sizeof *g);
}

vms_status vms_guest_move_vcpu(vms_guest *g, unsigned vcpu_id, unsigned host_core, vms_err *err)
{
    if (vcpu_id >= g->cfg.nvcpus || host_core >= vms_machine_ncores(g->m))
        return vmsi_err(err, VMS_ERR_INVAL, "guest: vCPU %u to host core %u: no such vCPU or core",
                        vcpu_id, host_core);
    vcpu_state *v = &g->v[vcpu_id];
    if (v->host == host_core)
        return VMS_OK;
    vms_core *c = vms_machine_core(g->m, v->host);
    if (vms_core_vm_save_area(c) == &v->regs)
        vms_core_vm_exit(c);
    v->host = host_core;
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
        "%llu, \"ins\": %llu, \"double_paging\": %llu, \"false_reads\": %llu, \"scanned\": %llu, "
        "\"aged\": %llu, \"splits\": %llu, \"fallbacks\": %llu}, \"migration_flushes\": %llu, "
        "\"exits_intr\": %llu, \"interrupts\": {\"injected\": %llu, \"posted\": %llu}, "
        "\"vcpu_switch_flushes\": %llu}",
        g->cfg.nvcpus, (unsigned long long)t->exits, (unsigned long long)t->exits_walk,
        (unsigned long long)t->exits_kernel, (unsigned long long)t->exit_cycles,
        (unsigned long long)t->vcpu_loads, (unsigned long long)t->migrations,
        (unsigned long long)t->backed, (unsigned long long)t->unhandled,
        (unsigned long long)t->host_frames, (unsigned long long)n.walks,
        (unsigned long long)n.guest_refs, (unsigned long long)n.s2_refs,
        (unsigned long long)n.s2_walks, (unsigned long long)n.s2_tlb_hits,
        (unsigned long long)t->host_swapouts, (unsigned long long)t->host_swapins,
        (unsigned long long)t->double_paging, (unsigned long long)t->false_reads,
        (unsigned long long)t->host_scanned, (unsigned long long)t->host_aged,
        (unsigned long long)t->host_splits, (unsigned long long)t->host_fallbacks,
        (unsigned long long)t->migration_flushes, (unsigned long long)t->exits_intr,
        (unsigned long long)t->intr_injected, (unsigned long long)t->intr_posted,
        (unsigned long long)t->vcpu_switch_flushes);
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
 * registers, peer to peer); anything outside guest memory is blocked and logged in the
 * IOMMU's fault log (the host's DMAR driver reports it). VFIO's type1 backend pins all
 * guest memory up front; here backing stays lazy and the host may reclaim guest pages
 * (host_frames): a DMA to a guest page that is not resident is a page request the
 * hypervisor serves (hv_page_request), and every leaf host reclaim unmaps leaves the
 * devices' view too (mirror_unmap: the mirror's leaf and the IOTLB's entries), so that a
 * device never reaches a frame the VM no longer owns.
 */

/* Map one new second-stage leaf into the IOMMU's mirror (EPT). */
static vms_status mirror_map(vms_guest *g, uint64_t gpa, uint64_t hpa, vms_pgsize size)
{
    if (!g->mirror_on)
        return VMS_OK;
    vms_status st = vms_pt_map(&g->mirror, gpa, hpa, size, VMS_PTE_US | VMS_PTE_RW, NULL);
    return st == VMS_ERR_EXISTS ? VMS_OK : st;
}

/* A second-stage leaf went (host reclaim): the devices' view of it goes too. EPT: the
 * mirror's leaf that maps gpa (of whatever size: a larger one's other pages come back
 * through page requests, hv_page_request). Both EPT and NPT: the IOTLB's entries for it
 * (VT-d §6.5: software invalidates after changing a present entry; NPT's tables are the
 * IOMMU's own, so there the IOTLB is all that could hold the old frame). */
static void mirror_unmap(vms_guest *g, uint64_t gpa)
{
    if (!g->npd)
        return;
    if (g->mirror_on)
        (void)vms_pt_unmap(&g->mirror, gpa, false, NULL);
    vms_iommu_inv_range(g->io, g->did, gpa & ~(uint64_t)VMS_PAGE_MASK, VMS_PAGE_SIZE);
}

/*
 * A page request from an assigned device (vms_iommu_set_page_request): its DMA met a
 * not-present entry at guest-physical gpa. Inside guest memory the hypervisor backs the
 * page (untouched, or swapped out by the host: it is read back) or, when it is resident
 * and only the mirror lacks it, mirrors its second-stage leaf; the IOMMU walks again.
 * Outside guest memory, or when nothing can be done, the request stays a fault (blocked
 * and logged). No vCPU exits: the IOMMU driver's fault queue is the host's. This is how
 * a VMM can leave guest memory unpinned (Linux iommufd's I/O page faults); VFIO's
 * classic type1 backend pins all of it instead.
 */
static bool hv_page_request(void *ud, vms_bdf bdf, uint64_t gpa, vms_access_kind kind)
{
    vms_guest *g = ud;
    uint64_t gpfn = gpa >> VMS_PAGE_SHIFT, pte = 0;
    vms_pgsize size;
    (void)bdf;
    if (gpfn >= g->npages)
        return false;
    if (!hpfn_of(g, gpfn)) {
        vms_kmem_use use = kind == VMS_ACC_WRITE ? VMS_KMEM_WRITE : VMS_KMEM_READ;
        return (g->cfg.host_page == VMS_PG_2M ? back2m(g, gpfn, use) : back4k(g, gpfn, use)) ==
               VMS_OK;
    }
    if (!g->mirror_on || !vms_pt_lookup(&g->s2, gpa, &pte, NULL, &size))
        return false;
    vms_pte_info in;
    uint64_t bytes = vms_pgsize_bytes(size);
    vms_fmt_decode(g->s2.fmt, pte, vms_fmt_size_level(size), &in);
    return mirror_map(g, gpa & ~(bytes - 1), in.pa, size) == VMS_OK;
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
    (void)vms_iommu_set_context_vm(io, vms_dev_bdf(dev), g->cfg.vpid); /* events name the VM */
    (void)vms_iommu_set_page_request(io, vms_dev_bdf(dev), hv_page_request, g);
    vms_iommu_inv_domain(io, ctx.did); /* nothing of an earlier user of the domain stays */
    g->io = io;
    g->did = ctx.did;
    g->pd[g->npd++] = (pdev){g, dev, bar, dc->posted, NULL, NULL};
    vms_dev_set_irq_hook(dev, hv_irq, &g->pd[g->npd - 1]);
    return VMS_OK;
}
