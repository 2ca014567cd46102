/*
 * test_guest.c — the kernel model as a guest kernel in a VM (src/virt/guest.c, the
 * platform seam of src/os/kernel.c and src/os/pmem.c).
 *
 *  - same: one seeded workload (anonymous memory, the zero page, fork and COW,
 *    munmap, swap under memory pressure) on a bare-metal kernel and on the guest kernel
 *    of a VM with the same RAM size: the guest-visible results are the same (faults by
 *    kind, swap, every byte read), while the VM shows exits and 2D walks;
 *  - isolation: two VMs and a host process write unique patterns, interleaved on shared
 *    host cores; everything reads back, and a hostile guest kernel that maps the host-
 *    physical addresses of the others' pages reads 0 of their bytes;
 *  - vcpus: a guest process with a thread per vCPU; munmap on one vCPU shoots the other
 *    vCPU's composed TLB entries down (its stale read faults), and leaves another VM's
 *    entries on the same host core alone;
 *  - double paging: host overcommit (host_frames) under a guest that swaps itself; the
 *    host's swap-ins caused by the guest's own swap-outs are counted, every byte reads
 *    back;
 *  - host memory: the hypervisor's maps are sparse (a 3 GiB guest costs the host little),
 *    creation under failing allocations leaks nothing, and single allocation failures
 *    in a host-swapping run lose no byte.
 */
#include "harness.h"
#include "vmsim/core.h"
#include "vmsim/dma.h"
#include "vmsim/frames.h"
#include "vmsim/kernel.h"
#include "vmsim/machine.h"
#include "vmsim/mman.h"
#include "vmsim/proc.h"
#include "vmsim/replay.h"
#include "vmsim/trace.h"
#include "vmsim/pt.h"
#include "vmsim/rng.h"
#include "vmsim/virt.h"
#include "vmsim/arch/aarch64.h"

#define MIB(n) (UINT64_C(n) << 20)

static vms_s2_kind g_kind = VMS_S2_EPT; /* the second stage guest() builds */

/* The host machine: skylake (x86-64) for EPT and NPT guests, cortex-a76 (AArch64) for
 * guests over Arm Stage 2; bare-metal comparisons run on the same preset. */
static vms_machine *machine(uint64_t ram, unsigned ncores)
{
    vms_machine_config cfg;
    vms_machine *m = NULL;
    if (vms_machine_preset(g_kind == VMS_S2_ARM ? "cortex-a76" : "skylake", &cfg, NULL) != VMS_OK)
        return NULL;
    cfg.ram_bytes = ram;
    cfg.ncores = ncores;
    if (vms_machine_create(NULL, &cfg, &m, NULL) != VMS_OK)
        return NULL;
    return m;
}

static void kconfig(vms_kernel_config *kc, uint64_t swap)
{
    vms_kernel_config_default(kc);
    kc->seed = th_seed;
    kc->swap_bytes = swap;
}

/* A 64-bit pattern unique to (who, page). */
static uint64_t mark(uint64_t who, uint64_t page)
{
    return (who << 48) ^ (page * UINT64_C(0x9e3779b97f4a7c15)) ^ UINT64_C(0x5a5a000000000000);
}

/* What a workload saw: kernel counters and a digest of every byte read. */
typedef struct seen {
    vms_kernel_stats ks;
    uint64_t digest, bytes, bad;
} seen;

static void fold(seen *s, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        s->digest = (s->digest ^ p[i]) * UINT64_C(0x100000001b3);
    s->bytes += n;
}

/*
 * The shared workload on kernel k (CPU 0): anon pages written with patterns, some read
 * first (zero page), fork, COW writes in both, munmap of a part, a pass over more memory
 * than RAM (swap), then every page read back in both processes.
 */
static void workload(vms_kernel *k, uint64_t npages, seen *out)
{
    memset(out, 0, sizeof *out);
    vms_task *a = NULL, *b = NULL;
    CHECK_EQ(vms_proc_spawn(k, "w", 0, &a, NULL), VMS_OK);
    uint64_t base = 0;
    CHECK_EQ(vms_sys_mmap(k, a, 0, npages << VMS_PAGE_SHIFT, VMS_PROT_READ | VMS_PROT_WRITE,
                          VMS_MAP_PRIVATE | VMS_MAP_ANONYMOUS, NULL, 0, &base, NULL),
             VMS_OK);
    vms_rng rng;
    vms_rng_seed(&rng, th_seed);
    uint8_t page[VMS_PAGE_SIZE];
    for (uint64_t i = 0; i < npages; i++) {
        uint64_t va = base + (i << VMS_PAGE_SHIFT);
        if (i % 8 == 7) { /* read first: the zero page */
            CHECK_EQ(vms_proc_read(k, a, va, page, 64), VMS_ACCESS_OK);
            continue;
        }
        uint64_t v = mark(1, i) ^ vms_rng_next(&rng);
        CHECK_EQ(vms_proc_write(k, a, va + (v & 0xff8), &v, sizeof v), VMS_ACCESS_OK);
    }
    CHECK_EQ(vms_proc_fork(k, a, &b, NULL), VMS_OK);
    for (uint64_t i = 0; i < npages; i += 3) {
        uint64_t v = mark(2, i);
        CHECK_EQ(vms_proc_write(k, i % 2 ? a : b, base + (i << VMS_PAGE_SHIFT) + 16, &v, sizeof v),
                 VMS_ACCESS_OK);
    }
    CHECK_EQ(vms_sys_munmap(k, b, base + (npages / 2 << VMS_PAGE_SHIFT), 8 << VMS_PAGE_SHIFT, NULL),
             VMS_OK);
    for (uint64_t i = 0; i < npages; i++) {
        vms_task *t = i & 1 ? a : b;
        uint64_t va = base + (i << VMS_PAGE_SHIFT);
        bool gone = t == b && i >= npages / 2 && i < npages / 2 + 8;
        vms_access_outcome o = vms_proc_read(k, t, va, page, sizeof page);
        CHECK_EQ(o, gone ? VMS_ACCESS_SEGV : VMS_ACCESS_OK);
        if (gone) { /* b died of its SIGSEGV: the rest through a */
            b = NULL;
            continue;
        }
        if (o == VMS_ACCESS_OK)
            fold(out, page, sizeof page);
        if (!b)
            break;
    }
    for (uint64_t i = 0; i < npages; i++) {
        CHECK_EQ(vms_proc_read(k, a, base + (i << VMS_PAGE_SHIFT), page, sizeof page),
                 VMS_ACCESS_OK);
        fold(out, page, sizeof page);
    }
    vms_err err;
    if (vms_kernel_check(k, &err) != VMS_OK) {
        fprintf(stderr, "kernel check: %s\n", err.msg);
        out->bad++;
    }
    vms_proc_exit(k, a);
    out->ks = *vms_kernel_get_stats(k);
}

static const vms_pwc_config *g_guest_pwc; /* each vCPU's guest walk cache (NULL: none) */

static const char *kind_name(vms_s2_kind kind)
{
    return kind == VMS_S2_EPT ? "EPT" : kind == VMS_S2_NPT ? "NPT" : "Arm Stage 2";
}

static vms_guest *guest(vms_machine *m, const vms_kernel_config *kc, uint64_t mem, uint32_t vpid,
                        uint64_t host_at, unsigned nvcpus, const unsigned *pin, vms_kernel *hk)
{
    vms_guest_config gc = {0};
    gc.kind = g_kind;
    gc.guest_mem = mem;
    gc.s2_tables_at = host_at;
    gc.host_at = host_at + MIB(4);
    gc.host_end = gc.host_at + mem + MIB(8);
    gc.vpid = vpid;
    gc.nvcpus = nvcpus;
    gc.pin = pin;
    gc.kernel = kc;
    gc.host_kernel = hk;
    gc.ad = true;
    gc.seed = th_seed;
    gc.guest_pwc = g_guest_pwc;
    vms_guest *g = NULL;
    vms_err err;
    vms_status st = vms_guest_create(m, &gc, &g, &err);
    if (st != VMS_OK)
        fprintf(stderr, "guest: %s\n", err.msg);
    return g;
}

/* The same workload natively and in a VM of the same RAM (EPT, NPT; Arm Stage 2 against
 * a bare-metal AArch64 kernel). */
static void test_same(vms_s2_kind kind)
{
    g_kind = kind;
    const uint64_t mem = MIB(24), npages = 8192; /* 32 MiB of anon: swap */
    vms_kernel_config kc;
    kconfig(&kc, MIB(32));
    seen bare, vm;
    vms_machine *m = machine(mem, 1);
    vms_kernel *k = NULL;
    CHECK_EQ(vms_kernel_create(m, &kc, &k, NULL), VMS_OK);
    uint64_t free0 = vms_frames_nfree(vms_kernel_frames(k));
    workload(k, npages, &bare);
    CHECK_EQ(vms_frames_nfree(vms_kernel_frames(k)), free0);
    vms_kernel_destroy(k);
    vms_machine_destroy(m);

    m = machine(MIB(512), 1);
    vms_guest *g = guest(m, &kc, mem, 1, MIB(64), 1, NULL, NULL);
    CHECK(g != NULL);
    if (!g) {
        vms_machine_destroy(m);
        return;
    }
    vms_kernel *gk = vms_guest_kernel(g);
    free0 = vms_frames_nfree(vms_kernel_frames(gk));
    workload(gk, npages, &vm);
    CHECK_EQ(vms_frames_nfree(vms_kernel_frames(gk)), free0);
    CHECK_EQ(bare.bad + vm.bad, 0);
    /* guest-visible: the same faults by kind, swap traffic, and bytes */
    CHECK(bare.ks.pswpout > 0);
    CHECK(bare.ks.cow_copy > 0 && bare.ks.zero_page > 0 && bare.ks.segv == 1);
    CHECK_EQ(vm.ks.pgfault, bare.ks.pgfault);
    CHECK_EQ(vm.ks.minor, bare.ks.minor);
    CHECK_EQ(vm.ks.pgmajfault, bare.ks.pgmajfault);
    CHECK_EQ(vm.ks.cow, bare.ks.cow);
    CHECK_EQ(vm.ks.cow_copy, bare.ks.cow_copy);
    CHECK_EQ(vm.ks.cow_reuse, bare.ks.cow_reuse);
    CHECK_EQ(vm.ks.zero_page, bare.ks.zero_page);
    CHECK_EQ(vm.ks.anon_alloc, bare.ks.anon_alloc);
    CHECK_EQ(vm.ks.segv, bare.ks.segv);
    CHECK_EQ(vm.ks.pswpout, bare.ks.pswpout);
    CHECK_EQ(vm.ks.pswpin, bare.ks.pswpin);
    CHECK_EQ(vm.bytes, bare.bytes);
    CHECK_EQ(vm.digest, bare.digest);
    /* the guest ran over the second stage asked for: on Arm the Stage 2 format at
     * VTTBR_EL2 with VMID 1, under an AArch64 guest kernel (the machine's format) */
    const vms_s2_regs *s2r = vms_nested_s2(vms_guest_nested(g, 0));
    CHECK_EQ(s2r->kind, kind);
    if (kind == VMS_S2_ARM) {
        CHECK(vms_guest_s2_pt(g)->fmt == vms_format_stage2(4));
        CHECK_EQ(s2r->vttbr, vms_vttbr_make(vms_guest_s2_pt(g)->root, 1));
        CHECK(!strcmp(vms_machine_format(m)->arch, "aarch64"));
    }
    /* the VM's own side: exits that backed guest memory, 2D walks */
    const vms_guest_stats *gs = vms_guest_get_stats(g);
    const vms_nested_stats *ns = vms_nested_get_stats(vms_guest_nested(g, 0));
    /* The guest kernel zeroes every frame before it maps one (clear_page), so its own
     * touch backs the page and the hardware never meets an unbacked one here. */
    CHECK(gs->exits > 0 && gs->exits_kernel == gs->exits && gs->exits_walk == 0);
    CHECK(gs->exit_cycles >= gs->exits * 1200);
    CHECK_EQ(gs->unhandled, 0);
    CHECK(gs->backed <= mem >> VMS_PAGE_SHIFT);
    CHECK(ns->walks > 0 && ns->guest_refs > 0 && ns->s2_refs > ns->guest_refs);
    printf(
        "same (%s): %llu faults (%llu major, %llu cow), %llu swap-outs both ways; VM: %llu exits "
        "(%llu by walks), %llu 2D walks, %llu guest + %llu second-stage refs\n",
        kind_name(kind), (unsigned long long)vm.ks.pgfault, (unsigned long long)vm.ks.pgmajfault,
        (unsigned long long)vm.ks.cow, (unsigned long long)vm.ks.pswpout,
        (unsigned long long)gs->exits, (unsigned long long)gs->exits_walk,
        (unsigned long long)ns->walks, (unsigned long long)ns->guest_refs,
        (unsigned long long)ns->s2_refs);
    vms_guest_destroy(g);
    vms_machine_destroy(m);
}

/* ---- isolation ---- */

/* Fill page i of t's region with who's pattern; check it reads back. */
static void put_page(vms_kernel *k, vms_task *t, uint64_t base, uint64_t who, uint64_t i)
{
    uint64_t w[VMS_PAGE_SIZE / 8];
    for (unsigned j = 0; j < VMS_PAGE_SIZE / 8; j++)
        w[j] = mark(who, i);
    CHECK_EQ(vms_proc_write(k, t, base + (i << VMS_PAGE_SHIFT), w, sizeof w), VMS_ACCESS_OK);
}

/* Words of buf equal to who's pattern for any of npages pages. */
static uint64_t count_marks(const uint64_t *w, uint64_t who, uint64_t npages)
{
    uint64_t n = 0;
    for (unsigned j = 0; j < VMS_PAGE_SIZE / 8; j++)
        for (uint64_t i = 0; i < npages; i++)
            n += w[j] == mark(who, i);
    return n;
}

/* A hostile guest kernel's table frames: guest frames it took from its allocator. */
typedef struct hostile {
    vms_bus *gbus;
    uint64_t next, end;
} hostile;

static vms_status hostile_alloc(void *ud, uint64_t *pa)
{
    hostile *h = ud;
    if (h->next >= h->end)
        return VMS_ERR_NOMEM;
    for (unsigned j = 0; j < VMS_PAGE_SIZE / 8; j++)
        if (vms_bus_write64(h->gbus, h->next + j * 8, 0) != VMS_OK)
            return VMS_ERR_BUS;
    *pa = h->next;
    h->next += VMS_PAGE_SIZE;
    return VMS_OK;
}

static void hostile_free(void *ud, uint64_t pa)
{
    (void)ud;
    (void)pa;
}

enum { ISO_PAGES = 48 };

static void test_isolation(void)
{
    vms_machine *m = machine(MIB(1024), 2);
    vms_kernel_config kc;
    kconfig(&kc, 0);
    vms_kernel *hk = NULL;
    CHECK_EQ(vms_kernel_create(m, &kc, &hk, NULL), VMS_OK);
    vms_guest *ga = guest(m, &kc, MIB(32), 1, MIB(512), 1, NULL, hk);
    vms_guest *gb = guest(m, &kc, MIB(32), 10, MIB(640), 1, NULL, hk); /* both on core 0 */
    CHECK(ga && gb);
    if (!ga || !gb) {
        vms_guest_destroy(ga);
        vms_guest_destroy(gb);
        vms_kernel_destroy(hk);
        vms_machine_destroy(m);
        return;
    }
    vms_kernel *k[3] = {hk, vms_guest_kernel(ga), vms_guest_kernel(gb)};
    vms_task *t[3];
    uint64_t base[3];
    for (unsigned w = 0; w < 3; w++) {
        CHECK_EQ(vms_proc_spawn(k[w], "iso", 0, &t[w], NULL), VMS_OK);
        CHECK_EQ(vms_sys_mmap(k[w], t[w], 0, ISO_PAGES << VMS_PAGE_SHIFT,
                              VMS_PROT_READ | VMS_PROT_WRITE, VMS_MAP_PRIVATE | VMS_MAP_ANONYMOUS,
                              NULL, 0, &base[w], NULL),
                 VMS_OK);
    }
    /* interleaved on host core 0: host, VM A, VM B in a random order */
    vms_rng rng;
    vms_rng_seed(&rng, th_seed ^ 1);
    bool done[3][ISO_PAGES] = {{false}};
    for (unsigned n = 0; n < 3 * ISO_PAGES * 2; n++) {
        unsigned w = (unsigned)(vms_rng_next(&rng) % 3),
                 i = (unsigned)(vms_rng_next(&rng) % ISO_PAGES);
        put_page(k[w], t[w], base[w], w + 1, i);
        done[w][i] = true;
    }
    for (unsigned w = 0; w < 3; w++)
        for (unsigned i = 0; i < ISO_PAGES; i++) {
            if (!done[w][i])
                put_page(k[w], t[w], base[w], w + 1, i);
            uint64_t buf[VMS_PAGE_SIZE / 8];
            CHECK_EQ(vms_proc_read(k[w], t[w], base[w] + ((uint64_t)i << VMS_PAGE_SHIFT), buf,
                                   sizeof buf),
                     VMS_ACCESS_OK);
            CHECK_EQ(count_marks(buf, w + 1, ISO_PAGES), VMS_PAGE_SIZE / 8);
        }
    /* The host-physical addresses of the host's and B's pages. */
    uint64_t targets[2 * ISO_PAGES + 1], pm[ISO_PAGES];
    unsigned nt = 0;
    CHECK_EQ(vms_proc_pagemap(hk, t[0], base[0], ISO_PAGES, pm), VMS_OK);
    for (unsigned i = 0; i < ISO_PAGES; i++)
        targets[nt++] = (pm[i] & VMS_PM_PFN_MASK) << VMS_PAGE_SHIFT;
    CHECK_EQ(vms_proc_pagemap(k[2], t[2], base[2], ISO_PAGES, pm), VMS_OK);
    for (unsigned i = 0; i < ISO_PAGES; i++) {
        uint64_t hpa = 0;
        CHECK(vms_guest_hpa(gb, (pm[i] & VMS_PM_PFN_MASK) << VMS_PAGE_SHIFT, &hpa));
        targets[nt++] = hpa;
    }
    /* far outside any memory (on Arm inside the 40-bit IPA space TCR_EL1.IPS gives: an
     * output address beyond it is a stage 1 Address size fault, not a stage 2 one) */
    targets[nt++] = UINT64_C(1) << 39;
    /* A hostile guest kernel in A: its own tables mapping each target as a GPA. */
    vms_frames *fa = vms_kernel_frames(k[1]);
    uint64_t tab = 0;
    for (uint64_t p = (MIB(32) >> VMS_PAGE_SHIFT) - 64; p > 64 && !tab; p -= 64)
        if (vms_frames_reserve(fa, p, 16, NULL) == VMS_OK)
            tab = p;
    CHECK(tab != 0);
    hostile h = {vms_guest_bus(ga), tab << VMS_PAGE_SHIFT, (tab + 16) << VMS_PAGE_SHIFT};
    vms_pt_ops ops = {hostile_alloc, hostile_free, &h};
    vms_pt pt;
    bool arm = g_kind == VMS_S2_ARM; /* AArch64 tables at TTBR0_EL1, or x86-64 at CR3 */
    CHECK_EQ(arm ? vms_pt_init_format(&pt, h.gbus, vms_format_aarch64(), &ops, NULL)
                 : vms_pt_init(&pt, h.gbus, 4, &ops, NULL),
             VMS_OK);
    const uint64_t gva = UINT64_C(0x40000000);
    unsigned prot = VMS_PGPROT_R | VMS_PGPROT_W | VMS_PGPROT_A | VMS_PGPROT_D;
    for (unsigned j = 0; j < nt; j++)
        CHECK_EQ(arm ? vms_pt_map_prot(&pt, gva + ((uint64_t)j << VMS_PAGE_SHIFT), targets[j],
                                       VMS_PG_4K, prot, NULL)
                     : vms_pt_map(&pt, gva + ((uint64_t)j << VMS_PAGE_SHIFT), targets[j], VMS_PG_4K,
                                  VMS_PTE_RW, NULL),
                 VMS_OK);
    uint64_t buf[VMS_PAGE_SIZE / 8];
    CHECK_EQ(vms_proc_read(k[1], t[1], base[1], buf, 8), VMS_ACCESS_OK); /* A on core 0 */
    vms_core *c = vms_machine_core(m, 0);
    CHECK_EQ(vms_core_vm(c), vms_guest_vpid(ga, 0));
    uint64_t cr3 = vms_core_regs(c)->cr3, ttbr0 = vms_core_regs(c)->ttbr0_el1;
    if (arm)
        CHECK_EQ(vms_core_msr_ttbr0_el1(c, pt.root), VMS_OK);
    else
        vms_core_write_cr3(c, pt.root);
    uint64_t leaked = 0, refused = 0, own = 0;
    uint64_t unhandled0 = vms_guest_get_stats(ga)->unhandled;
    for (unsigned j = 0; j < nt; j++) {
        memset(buf, 0, sizeof buf);
        vms_access_result r = vms_core_access(c, gva + ((uint64_t)j << VMS_PAGE_SHIFT),
                                              VMS_ACC_READ, buf, sizeof buf);
        if (!r.ok) {
            CHECK_EQ(r.fault.kind, VMS_FAULT_S2);
            refused++;
            continue;
        }
        own++;
        leaked += 8 * (count_marks(buf, 1, ISO_PAGES) + count_marks(buf, 3, ISO_PAGES));
    }
    if (arm)
        CHECK_EQ(vms_core_msr_ttbr0_el1(c, ttbr0), VMS_OK);
    else
        vms_core_write_cr3(c, cr3);
    vms_core_mmu_flush_all(c); /* the hostile entries go (A's only) */
    CHECK_EQ(leaked, 0);
    CHECK(refused >= ISO_PAGES + 1); /* B's host addresses are outside A's guest memory */
    CHECK_EQ(vms_guest_get_stats(ga)->unhandled - unhandled0, refused);
    printf(
        "isolation (%s): %u hostile mappings: %llu refused by the second stage, %llu read A's own "
        "memory, %llu bytes of the host or VM B read\n",
        kind_name(g_kind), nt, (unsigned long long)refused, (unsigned long long)own,
        (unsigned long long)leaked);
    CHECK_EQ(vms_frames_unreserve(fa, tab, 16, NULL), VMS_OK);
    for (unsigned w = 0; w < 3; w++)
        vms_proc_exit(k[w], t[w]);
    vms_guest_destroy(ga);
    vms_guest_destroy(gb);
    vms_kernel_destroy(hk);
    vms_machine_destroy(m);
}

/* ---- passthrough (issue 10 item 6) ---- */

/* A machine with a host kernel driving an IOMMU that is on. */
typedef struct pthost {
    vms_machine *m;
    vms_kernel *hk;
    vms_iommu *io;
} pthost;

static bool pt_host(pthost *h, vms_kernel_config *kc)
{
    memset(h, 0, sizeof *h);
    h->m = machine(MIB(1024), 2);
    kconfig(kc, 0);
    vms_iommu_config ic;
    vms_iommu_config_default(&ic);
    return h->m && vms_kernel_create(h->m, kc, &h->hk, NULL) == VMS_OK &&
           vms_iommu_create(h->m, &ic, &h->io, NULL) == VMS_OK &&
           vms_dma_iommu_enable(h->hk, h->io, true, NULL) == VMS_OK;
}

static void pt_host_free(pthost *h)
{
    if (h->hk)
        vms_dma_detach_all(h->hk);
    vms_kernel_destroy(h->hk);
    vms_iommu_destroy(h->io);
    vms_machine_destroy(h->m);
}

/*
 * A NIC assigned to a VM: the guest kernel's own driver (it sees no IOMMU, so its DMA
 * addresses are guest-physical) maps a process's buffer, posts it, and a packet lands
 * in the process's memory through the host IOMMU with the VM's mappings; the interrupt
 * reaches the guest's handler (an external-interrupt exit and an injection, or posted
 * without an exit), which completes the receive; a DMA outside the VM's memory is
 * blocked and logged by the host.
 */
static void test_passthrough_nic(vms_s2_kind kind, bool posted)
{
    g_kind = kind;
    vms_kernel_config kc;
    pthost h;
    bool ok = pt_host(&h, &kc);
    CHECK(ok);
    vms_guest *g = ok ? guest(h.m, &kc, MIB(32), 1, MIB(512), 1, NULL, h.hk) : NULL;
    CHECK(g != NULL);
    if (!g) {
        pt_host_free(&h);
        return;
    }
    vms_nic_config nc;
    vms_nic_config_default(&nc);
    nc.dev = (vms_dev_config){"eth0", vms_bdf_make(0, 5, 0), VMS_DEVICE_WINDOW_BASE + 0x1000};
    vms_nic *nic = NULL;
    CHECK_EQ(vms_nic_create(h.m, h.io, &nc, &nic, NULL), VMS_OK);
    vms_dev *dev = vms_nic_dev(nic);
    bool arm = kind == VMS_S2_ARM;
    vms_guest_dev_config dc = {7, posted}; /* Arm: the SMMU's S2VMID */
    vms_err err = {0};
    CHECK_EQ(vms_guest_assign_device(g, dev, &dc, &err), VMS_OK);
    vms_iommu_context ic;
    CHECK(vms_iommu_get_context(h.io, vms_dev_bdf(dev), &ic));
    CHECK_EQ(ic.did, 7);
    if (arm) { /* an SMMU stage 2 context: the VM's Stage 2 itself (shared) */
        CHECK(vms_iommu_context_format(h.io, vms_dev_bdf(dev)) == vms_format_stage2(4));
        CHECK_EQ(ic.root, vms_guest_s2_pt(g)->root);
    } else {
        CHECK(!vms_iommu_context_format(h.io, vms_dev_bdf(dev)));
    }
    vms_kernel *gk = vms_guest_kernel(g);
    vms_dma_dev *dd = NULL;
    CHECK_EQ(vms_dma_attach_nic(gk, nic, VMS_DMA_TRANSLATE, &dd, &err), VMS_OK);
    CHECK(dd && !vms_dma_translated(dd)); /* no virtual IOMMU: guest-physical addresses */
    vms_task *t = NULL;
    uint64_t va = 0, addr = 0;
    unsigned nb = 0;
    CHECK_EQ(vms_proc_spawn(gk, "rx", 0, &t, NULL), VMS_OK);
    CHECK_EQ(vms_sys_mmap(gk, t, 0, 2 * VMS_PAGE_SIZE, VMS_PROT_READ | VMS_PROT_WRITE,
                          VMS_MAP_PRIVATE | VMS_MAP_ANONYMOUS, NULL, 0, &va, NULL),
             VMS_OK);
    CHECK_EQ(vms_dma_map(gk, dd, t, va, 2 * VMS_PAGE_SIZE, VMS_DMA_FROM_DEVICE, &addr, &err),
             VMS_OK);
    CHECK(addr < MIB(32)); /* a GPA */
    CHECK_EQ(vms_dma_nic_post(gk, dd, addr, &nb, &err), VMS_OK);
    CHECK_EQ(nb, 32);
    uint8_t pkt[200], back[200];
    for (unsigned i = 0; i < sizeof pkt; i++)
        pkt[i] = (uint8_t)(i * 7 + 3);
    vms_guest_stats s0 = *vms_guest_get_stats(g);
    uint64_t irqs = vms_dma_dev_get_stats(dd)->irqs;
    CHECK_EQ(vms_nic_receive(nic, pkt, sizeof pkt, &err), VMS_OK);
    const vms_guest_stats *s1 = vms_guest_get_stats(g);
    CHECK_EQ(vms_dma_dev_get_stats(dd)->rx_packets, 1);
    CHECK_EQ(vms_dma_dev_get_stats(dd)->last_rx_addr, addr); /* the guest driver saw it */
    CHECK_EQ(vms_dma_dev_get_stats(dd)->irqs, irqs + 1);     /* its handler ran */
    CHECK_EQ(s1->exits_intr - s0.exits_intr, posted ? 0 : 1);
    CHECK_EQ(s1->exits - s0.exits, posted ? 0 : 1);
    CHECK_EQ(s1->exit_cycles - s0.exit_cycles, posted ? 0 : 1200);
    CHECK_EQ(s1->intr_injected - s0.intr_injected, posted ? 0 : 1);
    CHECK_EQ(s1->intr_posted - s0.intr_posted, posted ? 1 : 0);
    CHECK_EQ(vms_proc_read(gk, t, va, back, sizeof back), VMS_ACCESS_OK);
    CHECK(!memcmp(back, pkt, sizeof pkt));
    /* the vCPU off its core: no exit; the entry that delivers the interrupt loads it */
    vms_guest_exit_all(g);
    s0 = *vms_guest_get_stats(g);
    CHECK_EQ(vms_nic_receive(nic, pkt, 64, &err), VMS_OK);
    CHECK_EQ(vms_dma_dev_get_stats(dd)->rx_packets, 2);
    CHECK_EQ(s1->exits_intr - s0.exits_intr, 0);
    CHECK_EQ(s1->vcpu_loads - s0.vcpu_loads, 1);
    CHECK_EQ(s1->intr_injected + s1->intr_posted - s0.intr_injected - s0.intr_posted, 1);
    /* outside the VM's memory: blocked by the host IOMMU, logged by the host */
    uint8_t junk[64] = {0};
    unsigned f0 = vms_iommu_fault_count(h.io);
    vms_dma_result r = vms_dev_dma(dev, MIB(64), junk, sizeof junk, VMS_ACC_WRITE);
    CHECK(!r.ok && r.fault.reason != VMS_IOMMU_OK && r.done == 0);
    CHECK_EQ(vms_iommu_fault_count(h.io), f0 + 1);
    CHECK_EQ(vms_dma_poll_faults(h.hk), f0 + 1);
    vms_strbuf sb;
    vms_strbuf_init(&sb, NULL);
    CHECK_EQ(vms_kernel_dmesg(h.hk, "DMAR", &sb), VMS_OK);
    CHECK(strstr(vms_strbuf_str(&sb), "fault addr 0x4000000") != NULL);
    vms_strbuf_free(&sb);
    CHECK_EQ(vms_kernel_check(gk, &err), VMS_OK);
    printf("passthrough (%s%s): packet at GPA 0x%llx read back by the guest process; %llu "
           "external-interrupt exits, %llu injected, %llu posted; DMA to GPA 0x4000000 "
           "blocked and logged\n",
           kind == VMS_S2_EPT   ? "EPT mirror"
           : kind == VMS_S2_NPT ? "NPT shared"
                                : "SMMU stage 2, Stage 2 shared",
           posted ? ", posted" : "", (unsigned long long)addr, (unsigned long long)s1->exits_intr,
           (unsigned long long)s1->intr_injected, (unsigned long long)s1->intr_posted);
    CHECK_EQ(vms_dma_unmap(gk, dd, addr, &err), VMS_OK);
    vms_proc_exit(gk, t);
    vms_guest_destroy(g);
    vms_iommu_context ctx;
    CHECK(!vms_iommu_get_context(h.io, vms_dev_bdf(dev), &ctx)); /* given back */
    vms_nic_destroy(nic);
    pt_host_free(&h);
}

/* ---- several vCPUs ---- */

/*
 * A guest process with a thread on each of VM A's two vCPUs (host cores 0 and 1), VM B's
 * vCPU on host core 1 too. A munmap on vCPU 0 must drop vCPU 1's composed entry, and
 * leave B's alone. x86-64 (and an Arm guest with kernel.shootdown = ipi): the guest
 * kernel's IPI, which loads vCPU 1 on core 1 and runs INVLPG (TLBI VAE1) there under
 * A's tag. An Arm guest by default: TLBI VAE1IS from vCPU 0, scoped to A's VMID,
 * reaching A's entries on core 1 while B runs there (nobody interrupted), and the guest
 * walk cache of A's vCPU 1, which is not on any core (vms_nested_link).
 */
static void test_vcpus(vms_shootdown_mode mode)
{
    vms_machine *m = machine(MIB(512), 2);
    vms_kernel_config kc;
    kconfig(&kc, 0);
    kc.shootdown = mode;
    bool bcast = g_kind == VMS_S2_ARM && mode != VMS_SHOOTDOWN_IPI;
    g_guest_pwc = &vms_machine_get_config(m)->mmu.pwc;
    const unsigned pin_a[2] = {0, 1}, pin_b[1] = {1};
    vms_guest *ga = guest(m, &kc, MIB(32), 1, MIB(64), 2, pin_a, NULL);
    vms_guest *gb = guest(m, &kc, MIB(32), 20, MIB(128), 1, pin_b, NULL);
    g_guest_pwc = NULL;
    CHECK(ga && gb);
    if (!ga || !gb) {
        vms_guest_destroy(ga);
        vms_guest_destroy(gb);
        vms_machine_destroy(m);
        return;
    }
    vms_kernel *ka = vms_guest_kernel(ga), *kb = vms_guest_kernel(gb);
    vms_core *c0 = vms_machine_core(m, 0), *c1 = vms_machine_core(m, 1);
    vms_task *t0, *t1, *q;
    uint64_t va, vb, v = 42, r = 0;
    CHECK_EQ(vms_proc_spawn(ka, "mt", 0, &t0, NULL), VMS_OK);
    CHECK_EQ(vms_sys_mmap(ka, t0, 0, 4 << VMS_PAGE_SHIFT, VMS_PROT_READ | VMS_PROT_WRITE,
                          VMS_MAP_PRIVATE | VMS_MAP_ANONYMOUS, NULL, 0, &va, NULL),
             VMS_OK);
    CHECK_EQ(vms_proc_write(ka, t0, va, &v, sizeof v), VMS_ACCESS_OK);
    CHECK_EQ(vms_proc_clone_thread(ka, t0, 1, &t1, NULL), VMS_OK);
    CHECK_EQ(vms_proc_read(ka, t1, va, &r, sizeof r), VMS_ACCESS_OK); /* vCPU 1, host core 1 */
    CHECK_EQ(r, 42);
    CHECK_EQ(vms_proc_spawn(kb, "b", 0, &q, NULL), VMS_OK); /* B's vCPU 0 on host core 1 */
    CHECK_EQ(vms_sys_mmap(kb, q, 0, 1 << VMS_PAGE_SHIFT, VMS_PROT_READ | VMS_PROT_WRITE,
                          VMS_MAP_PRIVATE | VMS_MAP_ANONYMOUS, NULL, 0, &vb, NULL),
             VMS_OK);
    CHECK_EQ(vms_proc_write(kb, q, vb, &v, sizeof v), VMS_ACCESS_OK);
    CHECK_EQ(vms_proc_read(ka, t1, va, &r, sizeof r), VMS_ACCESS_OK); /* A's vCPU 1 back */
    /* vCPU 1's guest walk cache holds va's upper levels (tagged by the guest's ASID or
     * PCID; on Arm TTBR0_EL1's ASID, one tree serving both halves) */
    vms_pwc *pwc1 = vms_nested_guest_pwc(vms_guest_nested(ga, 1));
    const vms_regs *g1 = vms_core_regs(c1);
    vms_ctx tag = g_kind == VMS_S2_ARM ? g1->ttbr0_el1 >> VMS_A64_TTBR_ASID_SHIFT
                                       : g1->cr3 & VMS_CR3_PCID_MASK;
    vms_pwc_entry pe;
    CHECK(pwc1 && vms_pwc_lookup(pwc1, tag, va, &pe) > 0);
    CHECK_EQ(vms_proc_read(kb, q, vb, &r, sizeof r), VMS_ACCESS_OK); /* B on core 1 again */
    CHECK_EQ(vms_core_vm(c1), vms_guest_vpid(gb, 0));                /* A's vCPU 1 parked */
    const vms_nested_stats *nb = vms_nested_get_stats(vms_guest_nested(gb, 0));
    const vms_nested_stats *na1 = vms_nested_get_stats(vms_guest_nested(ga, 1));
    uint64_t remote0 = vms_kernel_get_stats(ka)->nr_tlb_remote_flush;
    uint64_t recv0 = vms_kernel_get_stats(ka)->nr_tlb_remote_flush_received;
    uint64_t is0 = vms_core_get_stats(c0)->invlpgb, rx0 = vms_core_get_stats(c1)->invlpgb_received;
    uint64_t loads0 = vms_guest_get_stats(ga)->vcpu_loads;
    CHECK_EQ(vms_sys_munmap(ka, t0, va, VMS_PAGE_SIZE, NULL), VMS_OK); /* on vCPU 0 */
    if (bcast) { /* TLBI VAE1IS + DSB ISH on core 0; B kept core 1, A's vCPU 1 not loaded */
        CHECK(vms_core_get_stats(c0)->invlpgb > is0);
        CHECK(vms_core_get_stats(c1)->invlpgb_received > rx0);
        CHECK_EQ(vms_kernel_get_stats(ka)->nr_tlb_remote_flush, remote0);
        CHECK_EQ(vms_core_vm(c1), vms_guest_vpid(gb, 0));
        CHECK_EQ(vms_guest_get_stats(ga)->vcpu_loads, loads0);
    } else { /* the IPI: vCPU 1 loaded on core 1 (B exits) for its handler */
        CHECK_EQ(vms_kernel_get_stats(ka)->nr_tlb_remote_flush, remote0 + 1);
        CHECK_EQ(vms_kernel_get_stats(ka)->nr_tlb_remote_flush_received, recv0 + 1);
        CHECK_EQ(vms_core_vm(c1), vms_guest_vpid(ga, 1));
    }
    /* the walk cache of vCPU 1 lost va's ASID/PCID, loaded or not */
    CHECK_EQ(vms_pwc_lookup(pwc1, tag, va, &pe), 0);
    /* vCPU 1's composed entry went too: its read faults (SIGSEGV) and walks again; a
     * stale entry would have read 42. */
    uint64_t w1 = na1->walks;
    CHECK_EQ(vms_proc_read(ka, t1, va, &r, sizeof r), VMS_ACCESS_SEGV);
    CHECK(na1->walks > w1);
    /* B's entry on host core 1 (another VPID / VMID) survived A's shootdown: no walk. */
    uint64_t wb = nb->walks;
    CHECK_EQ(vms_proc_read(kb, q, vb, &r, sizeof r), VMS_ACCESS_OK);
    CHECK_EQ(r, 42);
    CHECK_EQ(nb->walks, wb);
    CHECK(vms_guest_get_stats(ga)->vcpu_loads >= 3);
    printf("vcpus (%s, %s): a guest munmap on vCPU 0 reached vCPU 1 (host core 1) by %s; VM "
           "B's entry there stayed; %llu + %llu vCPU loads\n",
           kind_name(g_kind), bcast ? "broadcast" : "IPIs",
           bcast ? "TLBI VAE1IS, B running there" : "an IPI",
           (unsigned long long)vms_guest_get_stats(ga)->vcpu_loads,
           (unsigned long long)vms_guest_get_stats(gb)->vcpu_loads);
    vms_proc_exit(kb, q);
    vms_guest_destroy(ga);
    vms_guest_destroy(gb);
    vms_machine_destroy(m);
}

/* ---- double paging ---- */

static void test_double_paging(void)
{
    const uint64_t npages = 6144; /* 24 MiB of anon in a 16 MiB guest on 8 MiB of host */
    vms_machine *m = machine(MIB(512), 1);
    vms_kernel_config kc;
    kconfig(&kc, MIB(64));
    vms_guest_config gc = {0};
    gc.kind = g_kind;
    gc.guest_mem = MIB(16);
    gc.s2_tables_at = MIB(64);
    gc.host_at = MIB(68);
    gc.host_end = MIB(100);
    gc.host_frames = 2048;
    gc.vpid = 1;
    gc.ad = true;
    gc.kernel = &kc;
    vms_guest *g = NULL;
    CHECK_EQ(vms_guest_create(m, &gc, &g, NULL), VMS_OK);
    if (!g) {
        vms_machine_destroy(m);
        return;
    }
    vms_kernel *k = vms_guest_kernel(g);
    vms_task *t;
    uint64_t base;
    CHECK_EQ(vms_proc_spawn(k, "dp", 0, &t, NULL), VMS_OK);
    CHECK_EQ(vms_sys_mmap(k, t, 0, npages << VMS_PAGE_SHIFT, VMS_PROT_READ | VMS_PROT_WRITE,
                          VMS_MAP_PRIVATE | VMS_MAP_ANONYMOUS, NULL, 0, &base, NULL),
             VMS_OK);
    for (uint64_t i = 0; i < npages; i++)
        put_page(k, t, base, 5, i);
    uint64_t bad = 0, buf[VMS_PAGE_SIZE / 8];
    for (uint64_t i = 0; i < npages; i++) {
        CHECK_EQ(vms_proc_read(k, t, base + (i << VMS_PAGE_SHIFT), buf, sizeof buf), VMS_ACCESS_OK);
        for (unsigned j = 0; j < VMS_PAGE_SIZE / 8; j++)
            bad += buf[j] != mark(5, i);
    }
    CHECK_EQ(bad, 0); /* every byte read back through both swaps */
    const vms_guest_stats *gs = vms_guest_get_stats(g);
    const vms_kernel_stats *ks = vms_kernel_get_stats(k);
    CHECK(ks->pswpout > 0 && ks->pswpin > 0);
    CHECK(gs->host_swapouts > 0 && gs->host_swapins > 0);
    CHECK(gs->host_frames <= gc.host_frames);
    CHECK(gs->double_paging > 0);
    CHECK(gs->double_paging + gs->false_reads <= gs->host_swapins);
    CHECK(gs->double_paging <= ks->pswpout + ks->pgpgout);
    CHECK(gs->exits_walk > 0); /* the hardware met pages the host had swapped */
    CHECK_EQ(gs->unhandled, 0);
    CHECK_EQ(vms_kernel_check(k, NULL), VMS_OK);
    vms_strbuf sb;
    vms_strbuf_init(&sb, NULL);
    CHECK_EQ(vms_guest_stats_json_members(g, &sb), VMS_OK);
    char want[64];
    snprintf(want, sizeof want, "\"double_paging\": %llu,", (unsigned long long)gs->double_paging);
    CHECK(strstr(vms_strbuf_str(&sb), want) != NULL);
    vms_strbuf_free(&sb);
    printf("double paging: guest swapped %llu out, %llu in; host swapped %llu out, %llu in, of "
           "which %llu for the guest's own swap-outs (double paging) and %llu for pages the "
           "guest overwrote whole (false reads)\n",
           (unsigned long long)ks->pswpout, (unsigned long long)ks->pswpin,
           (unsigned long long)gs->host_swapouts, (unsigned long long)gs->host_swapins,
           (unsigned long long)gs->double_paging, (unsigned long long)gs->false_reads);
    vms_proc_exit(k, t);
    vms_guest_destroy(g);
    vms_machine_destroy(m);
}

/* A vCPU moved between host cores: the entries an earlier stay left on a core are
 * flushed when it comes back (a guest shootdown reached it elsewhere meanwhile). */
static void test_migration(void)
{
    vms_machine *m = machine(MIB(512), 3);
    vms_kernel_config kc;
    kconfig(&kc, 0);
    const unsigned pin[2] = {0, 1};
    vms_guest *g = guest(m, &kc, MIB(32), 1, MIB(64), 2, pin, NULL);
    CHECK(g != NULL);
    if (!g) {
        vms_machine_destroy(m);
        return;
    }
    vms_kernel *k = vms_guest_kernel(g);
    vms_task *t0, *t1;
    uint64_t va, v = 42, r = 0;
    CHECK_EQ(vms_proc_spawn(k, "mig", 0, &t0, NULL), VMS_OK);
    CHECK_EQ(vms_sys_mmap(k, t0, 0, 2 << VMS_PAGE_SHIFT, VMS_PROT_READ | VMS_PROT_WRITE,
                          VMS_MAP_PRIVATE | VMS_MAP_ANONYMOUS, NULL, 0, &va, NULL),
             VMS_OK);
    CHECK_EQ(vms_proc_write(k, t0, va, &v, sizeof v), VMS_ACCESS_OK);
    CHECK_EQ(vms_proc_clone_thread(k, t0, 1, &t1, NULL), VMS_OK);
    CHECK_EQ(vms_proc_read(k, t1, va, &r, sizeof r), VMS_ACCESS_OK); /* an entry on core 1 */
    CHECK_EQ(vms_guest_move_vcpu(g, 1, 0, NULL), VMS_ERR_INVAL);     /* vCPU 0's core */
    CHECK_EQ(vms_guest_move_vcpu(g, 1, 2, NULL), VMS_OK);
    CHECK_EQ(vms_proc_read(k, t1, va, &r, sizeof r), VMS_ACCESS_OK); /* now on core 2 */
    CHECK_EQ(vms_guest_vcpu_core(g, 1), 2);
    CHECK_EQ(vms_core_vm(vms_machine_core(m, 2)), vms_guest_vpid(g, 1));
    CHECK_EQ(vms_sys_munmap(k, t0, va, VMS_PAGE_SIZE, NULL), VMS_OK);  /* IPI to core 2 */
    CHECK_EQ(vms_guest_move_vcpu(g, 1, 1, NULL), VMS_OK);              /* back to core 1 */
    CHECK_EQ(vms_proc_read(k, t1, va, &r, sizeof r), VMS_ACCESS_SEGV); /* not the stale 42 */
    CHECK_EQ(vms_guest_get_stats(g)->migrations, 2);
    CHECK_EQ(vms_guest_get_stats(g)->migration_flushes, 2);
    vms_guest_destroy(g);
    vms_machine_destroy(m);
}

/* Bad configurations are refused with a message, nothing leaks. */
static void test_config(void)
{
    vms_machine *m = machine(MIB(512), 2);
    vms_guest_config gc = {0};
    gc.s2_tables_at = MIB(64);
    gc.host_at = MIB(68);
    gc.host_end = MIB(400);
    gc.vpid = 1;
    vms_guest *g = (vms_guest *)1;
    vms_err err;
    vms_guest_config c = gc;
    c.vpid = 0;
    CHECK_EQ(vms_guest_create(m, &c, &g, &err), VMS_ERR_INVAL);
    CHECK(g == NULL && strstr(err.msg, "vpid") != NULL);
    c = gc;
    c.guest_mem = MIB(4);
    CHECK_EQ(vms_guest_create(m, &c, &g, &err), VMS_ERR_INVAL);
    CHECK(strstr(err.msg, "16 MiB") != NULL);
    c = gc;
    c.nvcpus = 3;
    CHECK_EQ(vms_guest_create(m, &c, &g, &err), VMS_ERR_INVAL);
    const unsigned same[2] = {1, 1};
    c = gc;
    c.nvcpus = 2;
    c.pin = same;
    CHECK_EQ(vms_guest_create(m, &c, &g, &err), VMS_ERR_INVAL);
    CHECK(strstr(err.msg, "distinct") != NULL);
    c = gc;
    c.host_at = MIB(62); /* overlaps the second-stage tables */
    CHECK_EQ(vms_guest_create(m, &c, &g, &err), VMS_ERR_INVAL);
    c = gc;
    c.host_page = VMS_PG_2M;
    c.host_frames = 1024;
    CHECK_EQ(vms_guest_create(m, &c, &g, &err), VMS_ERR_INVAL);
    c = gc;
    c.host_end = c.host_at + VMS_PAGE_SIZE; /* one host frame: the guest kernel's boot
                                               needs a zero page and a root table */
    CHECK_EQ(vms_guest_create(m, &c, &g, &err), VMS_ERR_NOMEM);
    CHECK(g == NULL);
    if (g)
        vms_guest_destroy(g);
    vms_machine_destroy(m);
}

/* An allocator failing exactly one allocation (the oneshot-th from now; -1: none). */
typedef struct oneshot {
    th_failalloc fa;
    long left;
    unsigned long failed;
    vms_allocator a;
} oneshot;

static void *oneshot_realloc(void *ud, void *p, size_t old_size, size_t new_size)
{
    oneshot *o = ud;
    if (new_size && !p && o->left >= 0 && o->left-- == 0) {
        o->failed++;
        return NULL;
    }
    return th_failalloc_realloc(&o->fa, p, old_size, new_size);
}

/* A host-swapping guest (the double-paging shape, smaller) with one allocation failed
 * at `when` (-1: none): nothing crashes or leaks, the guest kernel's invariants hold, and
 * no page reads back wrong (the process may die of the failure: its reads then fail).
 * Returns the allocations the run made. */
static unsigned long swap_under_failure(long when, unsigned long *failed)
{
    oneshot o = {.left = -1, .a = {oneshot_realloc, NULL}};
    o.a.ud = &o;
    th_failalloc_init(&o.fa, -1);
    vms_machine_config mc;
    vms_machine *m = NULL;
    CHECK_EQ(vms_machine_preset("skylake", &mc, NULL), VMS_OK);
    mc.ram_bytes = MIB(512);
    mc.ncores = 1;
    CHECK_EQ(vms_machine_create(&o.a, &mc, &m, NULL), VMS_OK);
    vms_kernel_config kc;
    kconfig(&kc, MIB(32));
    vms_guest_config gc = {.guest_mem = MIB(16),
                           .s2_tables_at = MIB(64),
                           .host_at = MIB(68),
                           .host_end = MIB(100),
                           .host_frames = 1024,
                           .vpid = 1,
                           .ad = true,
                           .kernel = &kc};
    vms_guest *g = NULL;
    CHECK_EQ(vms_guest_create(m, &gc, &g, NULL), VMS_OK);
    if (!g) {
        vms_machine_destroy(m);
        return 0;
    }
    vms_kernel *k = vms_guest_kernel(g);
    vms_task *t = NULL;
    uint64_t base = 0, npages = 5120, bad = 0;
    CHECK_EQ(vms_proc_spawn(k, "f", 0, &t, NULL), VMS_OK);
    CHECK_EQ(vms_sys_mmap(k, t, 0, npages << VMS_PAGE_SHIFT, VMS_PROT_READ | VMS_PROT_WRITE,
                          VMS_MAP_PRIVATE | VMS_MAP_ANONYMOUS, NULL, 0, &base, NULL),
             VMS_OK);
    unsigned long allocs0 = o.fa.allocs;
    o.left = when;
    uint64_t wrote[5120 / 64] = {0}; /* the pages whose write succeeded */
    for (uint64_t i = 0; i < npages; i++) {
        uint64_t v = mark(7, i);
        if (vms_proc_write(k, t, base + (i << VMS_PAGE_SHIFT) + 8, &v, sizeof v) == VMS_ACCESS_OK)
            wrote[i / 64] |= UINT64_C(1) << (i % 64);
    }
    for (uint64_t i = 0; i < npages; i++) {
        uint64_t v = 0, want = (wrote[i / 64] >> (i % 64)) & 1 ? mark(7, i) : 0;
        if (vms_proc_read(k, t, base + (i << VMS_PAGE_SHIFT) + 8, &v, sizeof v) == VMS_ACCESS_OK &&
            v != want)
            bad++;
    }
    o.left = -1;
    CHECK_EQ(bad, 0);
    CHECK_EQ(vms_kernel_check(k, NULL), VMS_OK);
    CHECK_EQ(vms_guest_get_stats(g)->unhandled, 0);
    unsigned long made = o.fa.allocs - allocs0;
    *failed += o.failed;
    vms_guest_destroy(g);
    vms_machine_destroy(m);
    CHECK_EQ(o.fa.live_bytes, 0);
    return made;
}

/* The hypervisor's maps are sparse (util/radix): a 3 GiB guest costs the host a few
 * nodes, not per-guest-page arrays (5 words per page, 30 MiB here); creation under
 * failing allocations fails cleanly and leaks nothing. */
static void test_host_memory(void)
{
    th_failalloc fa;
    const vms_allocator *a = th_failalloc_init(&fa, -1);
    vms_machine_config mc;
    vms_machine *m = NULL;
    CHECK_EQ(vms_machine_preset("skylake", &mc, NULL), VMS_OK);
    mc.ram_bytes = UINT64_C(8) << 30;
    mc.ncores = 1;
    CHECK_EQ(vms_machine_create(a, &mc, &m, NULL), VMS_OK);
    if (!m)
        return;
    vms_kernel_config kc;
    kconfig(&kc, 0);
    vms_guest_config gc = {0};
    gc.guest_mem = UINT64_C(3) << 30;
    gc.s2_tables_at = MIB(64);
    gc.host_at = MIB(68);
    gc.host_end = gc.host_at + gc.guest_mem;
    gc.vpid = 1;
    gc.kernel = &kc;
    long long live0 = fa.live_bytes;
    unsigned long allocs0 = fa.allocs;
    vms_guest *g = NULL;
    CHECK_EQ(vms_guest_create(m, &gc, &g, NULL), VMS_OK);
    long long cost = fa.live_bytes - live0;
    unsigned long nallocs = fa.allocs - allocs0;
    CHECK(cost > 0 && cost < (8LL << 20));
    vms_guest_destroy(g);
    CHECK_EQ(fa.live_bytes, live0);
    /* every allocation of a creation, failed in turn (at most 400 of them tried) */
    unsigned long step = nallocs / 400 + 1, failed = 0;
    for (unsigned long n = 0; n < nallocs; n += step) {
        fa.budget = (long)n;
        g = NULL;
        vms_status st = vms_guest_create(m, &gc, &g, NULL);
        fa.budget = -1;
        failed += st != VMS_OK;
        CHECK(st == VMS_OK || g == NULL);
        vms_guest_destroy(g);
        CHECK_EQ(fa.live_bytes, live0);
    }
    CHECK(failed > 0);
    printf("host memory: a 3 GiB guest's creation allocates %lld bytes (%lu allocations); "
           "%lu of them failed in turn, nothing leaked\n",
           cost, nallocs, failed);
    vms_machine_destroy(m);
    unsigned long injected = 0, total = swap_under_failure(-1, &injected);
    CHECK(total > 0);
    vms_rng rng;
    vms_rng_seed(&rng, th_seed ^ 0xfa11);
    for (unsigned i = 0; i < 8 && total; i++)
        (void)swap_under_failure((long)vms_rng_below(&rng, total), &injected);
    CHECK_EQ(injected, 8);
    printf("host memory: 8 single allocation failures among the %lu of a host-swapping run: "
           "no byte read back wrong, nothing leaked\n",
           total);
}

/* ---- a recorded trace replayed as guest processes ---- */

static const char *g_argv0;

/* Replay examples/traces/sh.vmt (its kernel events too: mmap, fork, exec, exit) on k. */
static bool replay_on(vms_kernel *k, vms_replay_stats *out)
{
    char path[1024];
    th_source_path(g_argv0, "examples/traces/sh.vmt", path, sizeof path);
    vms_err err = {0};
    vms_trace_reader *rd = NULL;
    vms_replay *r = NULL;
    vms_replay_opts o = {0};
    bool ok = vms_trace_reader_open(path, VMS_TRACE_NATIVE, NULL, &rd, &err) == VMS_OK &&
              vms_replay_create(k, &o, &r, &err) == VMS_OK && vms_replay_run(r, rd, &err) == VMS_OK;
    if (!ok)
        fprintf(stderr, "replay: %s\n", err.msg);
    else
        *out = *vms_replay_get_stats(r);
    vms_replay_destroy(r);
    vms_trace_reader_close(rd);
    return ok;
}

static void test_replay(void)
{
    const uint64_t mem = MIB(64);
    vms_kernel_config kc;
    kconfig(&kc, 0);
    vms_machine *m = machine(mem, 1);
    vms_kernel *k = NULL;
    vms_replay_stats bare = {0}, vm = {0};
    CHECK_EQ(vms_kernel_create(m, &kc, &k, NULL), VMS_OK);
    CHECK(replay_on(k, &bare));
    vms_kernel_stats kb = *vms_kernel_get_stats(k);
    vms_kernel_destroy(k);
    vms_machine_destroy(m);
    m = machine(MIB(512), 1);
    vms_guest *g = guest(m, &kc, mem, 1, MIB(64), 1, NULL, NULL);
    CHECK(g != NULL);
    if (g) {
        CHECK(replay_on(vms_guest_kernel(g), &vm));
        const vms_kernel_stats *kv = vms_kernel_get_stats(vms_guest_kernel(g));
        CHECK(bare.references > 10000);
        CHECK_EQ(vm.references, bare.references);
        CHECK_EQ(vm.processes, bare.processes);
        CHECK_EQ(vm.segv, bare.segv);
        CHECK_EQ(vm.syscall_errors, bare.syscall_errors);
        CHECK_EQ(kv->pgfault, kb.pgfault);
        CHECK_EQ(kv->minor, kb.minor);
        CHECK_EQ(kv->pgmajfault, kb.pgmajfault);
        CHECK_EQ(kv->cow, kb.cow);
        CHECK_EQ(kv->forks, kb.forks);
        CHECK_EQ(kv->execs, kb.execs);
        const vms_nested_stats *ns = vms_nested_get_stats(vms_guest_nested(g, 0));
        printf("replay sh.vmt: %llu references, %llu faults natively and in the VM; VM: %llu "
               "exits, %llu 2D walks reading %llu guest + %llu second-stage entries\n",
               (unsigned long long)vm.references, (unsigned long long)kv->pgfault,
               (unsigned long long)vms_guest_get_stats(g)->exits, (unsigned long long)ns->walks,
               (unsigned long long)ns->guest_refs, (unsigned long long)ns->s2_refs);
    }
    vms_guest_destroy(g);
    vms_machine_destroy(m);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "guest");
    g_argv0 = argv[0];
    test_same(VMS_S2_EPT);
    test_same(VMS_S2_NPT);
    g_kind = VMS_S2_EPT;
    test_isolation();
    test_vcpus(VMS_SHOOTDOWN_AUTO);
    test_double_paging();
    test_migration();
    test_config();
    test_host_memory();
    test_replay();
    test_passthrough_nic(VMS_S2_EPT, false);
    test_passthrough_nic(VMS_S2_NPT, false);
    test_passthrough_nic(VMS_S2_EPT, true);
    /* the same with AArch64 guest kernels over Arm Stage 2 (cortex-a76 hosts) */
    test_same(VMS_S2_ARM);
    test_isolation();
    test_vcpus(VMS_SHOOTDOWN_AUTO);
    test_vcpus(VMS_SHOOTDOWN_IPI);
    test_double_paging();
    test_migration();
    test_replay();
    test_passthrough_nic(VMS_S2_ARM, false);
    test_passthrough_nic(VMS_S2_ARM, true);
    return th_finish();
}
