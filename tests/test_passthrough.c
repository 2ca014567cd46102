/*
 * test_passthrough.c — devices assigned to VMs whose guest kernel is the kernel model
 * (src/virt/guest.c passthrough, src/hw/iommu.c page requests): the IOMMU's view of a
 * VM stays in step with its second stage, and nothing crosses a VM's boundary.
 *
 *  - in step: a VM with host overcommit (host_frames) and a device. Pages the guest
 *    backs after the assignment reach the device without a page request (the EPT
 *    mirror is mapped with the second stage); the host then reclaims them (their frames
 *    go to other guest pages), and the device's next DMA to each GPA re-faults (a page
 *    request the hypervisor serves by reading the page back) and lands in the page's new
 *    frame: the guest reads what the device wrote, and no other page changed. Fails
 *    when the mirror's map or unmap, or the IOTLB invalidation on unmap, is left out
 *    (EPT; NPT shares its tables with the IOMMU and needs the invalidation);
 *  - fork and COW in a guest on its vCPU: the child keeps its page (the guest's INVPCID
 *    must drop the VM's entries, VPID-tagged, not the host's);
 *  - isolation (seeded; VMS_PASSTHROUGH_SOAK=N rounds): three VMs with assigned devices
 *    (EPT; NPT with host overcommit; EPT with 2 MiB host pages, two vCPUs and posted
 *    interrupts) and a host process, every page filled with content tags (owner, page,
 *    version); random guest work (writes, reads, fork and COW, MADV_DONTNEED), random
 *    DMA by each VM's device into its guest driver's buffers and reads anywhere in its
 *    guest memory, and DMA deliberately out of range (beyond guest memory, at other VMs'
 *    and the host's host-physical addresses, beyond the IOMMU's address width, across
 *    the end of guest memory), interrupts. Asserted: every byte the CPUs and devices read
 *    is what was written and holds no other owner's tag; every allowed DMA piece the
 *    event tap reports reached the VM's own frame for that GPA (0 escapes); every out-of-
 *    range DMA is blocked, recorded in the IOMMU's fault log, logged by the host's DMAR
 *    driver and reported; and at the end every frame of host RAM holds only tags of the
 *    owner of its memory (0 bytes written across a boundary).
 */
#include "harness.h"
#include "vmsim/dev.h"
#include "vmsim/dma.h"
#include "vmsim/events.h"
#include "vmsim/iommu.h"
#include "vmsim/kernel.h"
#include "vmsim/machine.h"
#include "vmsim/mman.h"
#include "vmsim/proc.h"
#include "vmsim/rng.h"
#include "vmsim/virt.h"

#define MIB(n) (UINT64_C(n) << 20)
#define WORDS  (VMS_PAGE_SIZE / 8)

/* A 64-bit content tag: 0xA5 in the top byte, the owner, the page and a version. No
 * page-table entry or zero page looks like one (their top byte is 0x00 or 0x80). */
static uint64_t tag(unsigned owner, uint64_t page, unsigned version)
{
    return UINT64_C(0xA5) << 56 | (uint64_t)(owner & 0xFF) << 48 | (page & 0xFFFFFF) << 24 |
           (version & 0xFFFFFF);
}

static bool is_tag(uint64_t w)
{
    return w >> 56 == 0xA5;
}

static unsigned tag_owner(uint64_t w)
{
    return (unsigned)(w >> 48 & 0xFF);
}

static void fill(uint64_t *p, uint64_t v)
{
    for (unsigned i = 0; i < WORDS; i++)
        p[i] = v;
}

/* A host: machine, host kernel, an IOMMU that is on. */
typedef struct host {
    vms_machine *m;
    vms_kernel *hk;
    vms_iommu *io;
    vms_kernel_config kc;
} host;

static bool host_init(host *h, unsigned ncores)
{
    memset(h, 0, sizeof *h);
    vms_machine_config mc;
    if (vms_machine_preset("skylake", &mc, NULL) != VMS_OK)
        return false;
    mc.ram_bytes = MIB(1024);
    mc.ncores = ncores;
    vms_kernel_config_default(&h->kc);
    h->kc.seed = th_seed;
    vms_iommu_config ic;
    vms_iommu_config_default(&ic);
    return vms_machine_create(NULL, &mc, &h->m, NULL) == VMS_OK &&
           vms_kernel_create(h->m, &h->kc, &h->hk, NULL) == VMS_OK &&
           vms_iommu_create(h->m, &ic, &h->io, NULL) == VMS_OK &&
           vms_dma_iommu_enable(h->hk, h->io, true, NULL) == VMS_OK;
}

static void host_fini(host *h)
{
    if (h->hk)
        vms_dma_detach_all(h->hk);
    vms_kernel_destroy(h->hk);
    vms_iommu_destroy(h->io);
    vms_machine_destroy(h->m);
}

/* A guest of mem bytes whose host memory starts at host_at (its tables first). */
static vms_guest *guest(host *h, vms_s2_kind kind, uint64_t mem, uint32_t vpid, uint64_t host_at,
                        uint64_t host_frames)
{
    vms_guest_config gc = {0};
    gc.kind = kind;
    gc.guest_mem = mem;
    gc.s2_tables_at = host_at;
    gc.host_at = host_at + MIB(4);
    gc.host_end = gc.host_at + mem + MIB(8);
    gc.vpid = vpid;
    gc.kernel = &h->kc;
    gc.host_kernel = h->hk;
    gc.host_frames = host_frames;
    gc.ad = true;
    gc.seed = th_seed;
    vms_guest *g = NULL;
    vms_err err = {0};
    if (vms_guest_create(h->m, &gc, &g, &err) != VMS_OK)
        fprintf(stderr, "guest: %s\n", err.msg);
    return g;
}

/* The GPA of the page at va of task t in guest g's kernel (0: none). */
static uint64_t gpa_of(vms_guest *g, vms_task *t, uint64_t va)
{
    uint64_t pm = 0;
    if (vms_proc_pagemap(vms_guest_kernel(g), t, va, 1, &pm) != VMS_OK || !(pm & VMS_PM_PRESENT))
        return 0;
    return (pm & VMS_PM_PFN_MASK) << VMS_PAGE_SHIFT;
}

/* ---- in step: the EPT mirror and the IOTLB follow host reclaim ---- */

enum { NBUF = 8, NOTHER = 160, HOST_FRAMES = 64, DMA_WORDS = 64 };

static void test_in_step(vms_s2_kind kind)
{
    const char *name = kind == VMS_S2_EPT ? "EPT mirror" : "NPT shared";
    host h;
    bool ok = host_init(&h, 2);
    CHECK(ok);
    vms_guest *g = ok ? guest(&h, kind, MIB(32), 1, MIB(256), HOST_FRAMES) : NULL;
    vms_dev *dev = NULL;
    vms_dev_config dc = {"vf0", vms_bdf_make(0, 7, 0), 0};
    CHECK(g && vms_dev_create(h.m, h.io, &dc, &dev, NULL) == VMS_OK);
    if (!g || !dev) {
        vms_guest_destroy(g);
        vms_dev_destroy(dev);
        host_fini(&h);
        return;
    }
    vms_guest_dev_config gd = {3, false};
    vms_err err = {0};
    CHECK_EQ(vms_guest_assign_device(g, dev, &gd, &err), VMS_OK);
    vms_kernel *k = vms_guest_kernel(g);
    vms_task *t = NULL;
    uint64_t buf = 0, other = 0, page[WORDS];
    CHECK_EQ(vms_proc_spawn(k, "io", 0, &t, NULL), VMS_OK);
    CHECK_EQ(vms_sys_mmap(k, t, 0, (NBUF + NOTHER) << VMS_PAGE_SHIFT,
                          VMS_PROT_READ | VMS_PROT_WRITE, VMS_MAP_PRIVATE | VMS_MAP_ANONYMOUS, NULL,
                          0, &buf, NULL),
             VMS_OK);
    other = buf + (NBUF << VMS_PAGE_SHIFT);
    const vms_iommu_stats *is = vms_iommu_get_stats(h.io);
    /* 1. Pages backed after the assignment: the device reads them without a page
     *    request (the mirror was mapped with the second stage; its IOTLB fills). */
    uint64_t gpa[NBUF], old_hpa[NBUF];
    for (unsigned i = 0; i < NBUF; i++) {
        fill(page, tag(1, i, 0));
        CHECK_EQ(vms_proc_write(k, t, buf + ((uint64_t)i << VMS_PAGE_SHIFT), page, sizeof page),
                 VMS_ACCESS_OK);
        gpa[i] = gpa_of(g, t, buf + ((uint64_t)i << VMS_PAGE_SHIFT));
        CHECK(gpa[i] != 0 && vms_guest_hpa(g, gpa[i], &old_hpa[i]));
    }
    uint64_t asked0 = is->page_requests;
    for (unsigned i = 0; i < NBUF; i++) {
        memset(page, 0, sizeof page);
        CHECK(vms_dev_dma(dev, gpa[i], page, sizeof page, VMS_ACC_READ).ok);
        unsigned good = 0;
        for (unsigned w = 0; w < WORDS; w++)
            good += page[w] == tag(1, i, 0);
        CHECK_EQ(good, WORDS);
    }
    CHECK_EQ(is->page_requests - asked0, 0);
    /* 2. The guest touches more than the host gives it: the host reclaims the oldest
     *    pages (the buffer's among them), their frames go to other guest pages. */
    for (unsigned j = 0; j < NOTHER; j++) {
        fill(page, tag(2, j, 0));
        CHECK_EQ(vms_proc_write(k, t, other + ((uint64_t)j << VMS_PAGE_SHIFT), page, sizeof page),
                 VMS_ACCESS_OK);
    }
    unsigned swapped = 0, reused = 0;
    for (unsigned i = 0; i < NBUF; i++) {
        uint64_t hpa;
        swapped += !vms_guest_hpa(g, gpa[i], &hpa);
    }
    for (unsigned j = 0; j < NOTHER; j++) { /* which old frames back other pages now */
        uint64_t hpa, gp = gpa_of(g, t, other + ((uint64_t)j << VMS_PAGE_SHIFT));
        for (unsigned i = 0; gp && vms_guest_hpa(g, gp, &hpa) && i < NBUF; i++)
            reused += hpa == old_hpa[i];
    }
    CHECK_EQ(swapped, NBUF);
    CHECK(vms_guest_get_stats(g)->host_swapouts >= NBUF);
    /* 3. The device writes each buffer page: a page request (the host reads the page
     *    back into a new frame), then the write lands there, nowhere else. */
    uint64_t served0 = is->page_requests_served, faults0 = is->faults;
    uint64_t words[DMA_WORDS];
    for (unsigned i = 0; i < NBUF; i++) {
        for (unsigned w = 0; w < DMA_WORDS; w++)
            words[w] = tag(3, i, 1);
        vms_dma_result r = vms_dev_dma(dev, gpa[i], words, sizeof words, VMS_ACC_WRITE);
        CHECK(r.ok && r.done == sizeof words);
    }
    CHECK_EQ(is->page_requests_served - served0, NBUF);
    CHECK_EQ(is->faults, faults0);
    /* 4. Every byte as the guest and the device left it. */
    unsigned bad = 0;
    for (unsigned i = 0; i < NBUF; i++) {
        CHECK_EQ(vms_proc_read(k, t, buf + ((uint64_t)i << VMS_PAGE_SHIFT), page, sizeof page),
                 VMS_ACCESS_OK);
        for (unsigned w = 0; w < WORDS; w++)
            bad += page[w] != (w < DMA_WORDS ? tag(3, i, 1) : tag(1, i, 0));
    }
    for (unsigned j = 0; j < NOTHER; j++) {
        CHECK_EQ(vms_proc_read(k, t, other + ((uint64_t)j << VMS_PAGE_SHIFT), page, sizeof page),
                 VMS_ACCESS_OK);
        for (unsigned w = 0; w < WORDS; w++)
            bad += page[w] != tag(2, j, 0);
    }
    CHECK_EQ(bad, 0);
    /* 5. Outside guest memory a page request is refused: blocked and logged. */
    unsigned nlog = vms_iommu_fault_count(h.io);
    uint64_t asked1 = is->page_requests;
    vms_dma_result r = vms_dev_dma(dev, MIB(32), words, 8, VMS_ACC_WRITE);
    CHECK(!r.ok && r.done == 0 && r.fault.reason == VMS_IOMMU_NOT_PRESENT);
    CHECK_EQ(is->page_requests - asked1, 1);
    CHECK_EQ(vms_iommu_fault_count(h.io), nlog + 1);
    CHECK_EQ(vms_kernel_check(k, &err), VMS_OK);
    printf("in step (%s): %u pages read by the device without a page request; the host "
           "reclaimed all %u (%u of their frames now back other pages); the device's writes "
           "re-faulted %llu times and reached the new frames; %u words wrong\n",
           name, NBUF, swapped, reused, (unsigned long long)(is->page_requests_served - served0),
           bad);
    vms_proc_exit(k, t);
    vms_guest_destroy(g);
    vms_dev_destroy(dev);
    host_fini(&h);
}

/* ---- isolation inside a VM: fork and copy-on-write on a vCPU ---- */

/* After fork the guest kernel write-protects the parent's pages and drops its TLB
 * entries with INVPCID (its PCIDs); in a VM that must drop the VM's entries (tagged by
 * the VPID), or the parent's next write goes through its stale writable entry into the
 * frame the child still shares. (It did: INVPCID dropped the host's PCID instead.) */
static void test_fork_cow(void)
{
    host h;
    bool ok = host_init(&h, 2);
    vms_guest *g = ok ? guest(&h, VMS_S2_EPT, MIB(24), 5, MIB(256), 0) : NULL;
    CHECK(g != NULL);
    if (!g) {
        host_fini(&h);
        return;
    }
    vms_kernel *k = vms_guest_kernel(g);
    vms_task *a = NULL, *b = NULL;
    uint64_t base = 0, v = 1;
    CHECK_EQ(vms_proc_spawn(k, "cow", 0, &a, NULL), VMS_OK);
    CHECK_EQ(vms_sys_mmap(k, a, 0, 8 << VMS_PAGE_SHIFT, VMS_PROT_READ | VMS_PROT_WRITE,
                          VMS_MAP_PRIVATE | VMS_MAP_ANONYMOUS, NULL, 0, &base, NULL),
             VMS_OK);
    for (unsigned j = 0; j < 8; j++)
        CHECK_EQ(vms_proc_write(k, a, base + ((uint64_t)j << VMS_PAGE_SHIFT), &v, 8),
                 VMS_ACCESS_OK);
    CHECK_EQ(vms_proc_fork(k, a, &b, NULL), VMS_OK);
    v = 2;
    CHECK_EQ(vms_proc_write(k, a, base + (3 << VMS_PAGE_SHIFT), &v, 8), VMS_ACCESS_OK);
    CHECK_EQ(vms_proc_read(k, b, base + (3 << VMS_PAGE_SHIFT), &v, 8), VMS_ACCESS_OK);
    CHECK_EQ(v, 1); /* the child keeps the page as it was at fork */
    CHECK_EQ(vms_proc_read(k, a, base + (3 << VMS_PAGE_SHIFT), &v, 8), VMS_ACCESS_OK);
    CHECK_EQ(v, 2);
    vms_proc_exit(k, b);
    vms_proc_exit(k, a);
    vms_guest_destroy(g);
    host_fini(&h);
}

/* ---- isolation ---- */

enum {
    NVM = 3,
    OWN_HOST = 1,      /* the host's tags; VM i's are 2 + i */
    WPAGES = 40,       /* a worker process's pages */
    NB = 6,            /* a VM's DMA buffer pages (its guest driver's mappings) */
    HPAGES = 40,       /* the host process's pages */
    STEPS = 700,       /* random operations per round */
    ATTACK = 0xFFFFFF, /* the page field of the tags out-of-range writes carry */
};

/* One VM of the isolation test, and what its pages should hold. */
typedef struct ivm {
    vms_guest *g;
    vms_dev *dev;
    vms_dma_dev *dd;
    unsigned owner;
    uint64_t mem, lo, hi; /* guest memory; its host memory [lo, hi) (tables and frames) */
    vms_task *io, *w[2];  /* the driver's process; workers (w[1] after a fork) */
    unsigned nw;
    uint64_t buf, wbase;
    uint64_t bufgpa[NB];
    uint64_t bufx[NB][WORDS]; /* every word of the buffer pages as it should be */
    uint32_t wver[2][WPAGES]; /* each worker page's version (0: never written, zeros) */
    uint64_t irqs;            /* interrupts raised by its device */
} ivm;

typedef struct iso {
    host h;
    ivm v[NVM];
    vms_task *hp;
    uint64_t hbase;
    uint32_t hver[HPAGES];
    uint32_t ver;
    vms_rng rng;
    /* from the event tap */
    uint64_t ev_ok, ev_blocked, ev_served, escapes, ev_badvm;
    /* counted by the test */
    uint64_t cross_read, wrong, inrange, oor, oor_blocked, oor_logged, straddle, cross_write;
    uint64_t frames_scanned;
} iso;

static ivm *vm_of(iso *s, uint32_t id)
{
    for (unsigned i = 0; i < NVM; i++)
        if (s->v[i].g && vms_guest_vpid(s->v[i].g, 0) == id)
            return &s->v[i];
    return NULL;
}

/* The tap: every piece of a VM's device's DMA that the IOMMU let through must have
 * reached that VM's own frame for the GPA (an escape otherwise). */
static void on_iso_event(void *ud, const vms_event *e)
{
    iso *s = ud;
    if (e->type != VMS_EV_IOMMU || !e->iommu.vm)
        return;
    ivm *v = vm_of(s, e->iommu.vm);
    if (!v) {
        s->ev_badvm++;
        return;
    }
    s->ev_served += e->iommu.served;
    if (!e->iommu.ok) {
        s->ev_blocked++;
        return;
    }
    s->ev_ok++;
    uint64_t hpa = 0;
    if (!vms_guest_hpa(v->g, e->iommu.iova, &hpa) || hpa != e->iommu.pa || hpa < v->lo ||
        hpa >= v->hi)
        s->escapes++;
}

static uint64_t rnd(iso *s, uint64_t n)
{
    return n ? vms_rng_next(&s->rng) % n : 0;
}

/* Count the words of p (n of them) with another owner's tag, and those differing from
 * want (NULL: no expectation). */
static void check_words(iso *s, unsigned owner, const uint64_t *p, const uint64_t *want, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        s->cross_read += is_tag(p[i]) && tag_owner(p[i]) != owner;
        s->wrong += want && p[i] != want[i];
    }
}

/* A worker page's content for version ver (0: zeros). */
static void wpage(uint64_t *p, unsigned owner, unsigned j, uint32_t ver)
{
    fill(p, ver ? tag(owner, j, ver) : 0);
}

static bool iso_vm(iso *s, unsigned i)
{
    static const vms_s2_kind kinds[NVM] = {VMS_S2_EPT, VMS_S2_NPT, VMS_S2_EPT};
    ivm *v = &s->v[i];
    v->owner = 2 + i;
    v->mem = i == 2 ? MIB(24) : MIB(32);
    v->lo = MIB(128) + i * MIB(64);
    vms_guest_config gc = {0};
    gc.kind = kinds[i];
    gc.guest_mem = v->mem;
    gc.s2_tables_at = v->lo;
    gc.host_at = v->lo + MIB(4);
    gc.host_end = gc.host_at + v->mem + MIB(8);
    v->hi = gc.host_end;
    gc.vpid = 1 + 10 * i;
    gc.nvcpus = i == 2 ? 2 : 1;
    gc.kernel = &s->h.kc;
    gc.host_kernel = s->h.hk;
    gc.host_frames = i == 1 ? 48 : 0; /* B: host overcommit, the DMA re-faults */
    gc.host_page = i == 2 ? VMS_PG_2M : VMS_PG_4K;
    gc.ad = true;
    gc.seed = th_seed + i;
    vms_err err = {0};
    if (vms_guest_create(s->h.m, &gc, &v->g, &err) != VMS_OK) {
        fprintf(stderr, "isolation: VM %u: %s\n", i, err.msg);
        return false;
    }
    vms_dev_config dc = {i == 0 ? "vfA" : i == 1 ? "vfB" : "vfC", vms_bdf_make(0, 8 + i, 0), 0};
    vms_guest_dev_config gd = {(uint16_t)(20 + i), i == 2};
    vms_kernel *k = vms_guest_kernel(v->g);
    if (vms_dev_create(s->h.m, s->h.io, &dc, &v->dev, &err) != VMS_OK ||
        vms_guest_assign_device(v->g, v->dev, &gd, &err) != VMS_OK ||
        vms_dev_set_irq(v->dev, 0, (uint8_t)(0x40 + i)) != VMS_OK ||
        vms_dma_attach(k, v->dev, VMS_DMA_TRANSLATE, &v->dd, &err) != VMS_OK ||
        vms_proc_spawn(k, "drv", 0, &v->io, &err) != VMS_OK ||
        vms_proc_spawn(k, "work", gc.nvcpus - 1, &v->w[0], &err) != VMS_OK) {
        fprintf(stderr, "isolation: VM %u: %s\n", i, err.msg);
        return false;
    }
    v->nw = 1;
    unsigned rw = VMS_PROT_READ | VMS_PROT_WRITE, pa = VMS_MAP_PRIVATE | VMS_MAP_ANONYMOUS;
    if (vms_sys_mmap(k, v->io, 0, NB << VMS_PAGE_SHIFT, rw, pa, NULL, 0, &v->buf, &err) != VMS_OK ||
        vms_sys_mmap(k, v->w[0], 0, WPAGES << VMS_PAGE_SHIFT, rw, pa, NULL, 0, &v->wbase, &err) !=
            VMS_OK)
        return false;
    for (unsigned b = 0; b < NB; b++) { /* the guest driver maps each page for the device */
        uint64_t va = v->buf + ((uint64_t)b << VMS_PAGE_SHIFT);
        fill(v->bufx[b], tag(v->owner, 1000 + b, ++s->ver));
        if (vms_proc_write(k, v->io, va, v->bufx[b], VMS_PAGE_SIZE) != VMS_ACCESS_OK ||
            vms_dma_map(k, v->dd, v->io, va, VMS_PAGE_SIZE, VMS_DMA_BIDIRECTIONAL, &v->bufgpa[b],
                        &err) != VMS_OK)
            return false;
    }
    return true;
}

/* A worker page: write it whole, or read it and check it. */
static void op_worker(iso *s, ivm *v, bool write)
{
    unsigned p = (unsigned)rnd(s, v->nw), j = (unsigned)rnd(s, WPAGES);
    vms_kernel *k = vms_guest_kernel(v->g);
    uint64_t page[WORDS], want[WORDS], va = v->wbase + ((uint64_t)j << VMS_PAGE_SHIFT);
    if (write) {
        v->wver[p][j] = ++s->ver;
        wpage(page, v->owner, j, v->wver[p][j]);
        CHECK_EQ(vms_proc_write(k, v->w[p], va, page, sizeof page), VMS_ACCESS_OK);
        return;
    }
    CHECK_EQ(vms_proc_read(k, v->w[p], va, page, sizeof page), VMS_ACCESS_OK);
    wpage(want, v->owner, j, v->wver[p][j]);
    check_words(s, v->owner, page, want, WORDS);
}

/* A buffer page by the CPU: a random run of words written, or the page read. */
static void op_buffer_cpu(iso *s, ivm *v, bool write)
{
    unsigned b = (unsigned)rnd(s, NB), w0 = (unsigned)rnd(s, WORDS);
    unsigned n = 1 + (unsigned)rnd(s, WORDS - w0);
    vms_kernel *k = vms_guest_kernel(v->g);
    uint64_t page[WORDS], va = v->buf + ((uint64_t)b << VMS_PAGE_SHIFT);
    if (write) {
        uint64_t t = tag(v->owner, 1000 + b, ++s->ver);
        for (unsigned i = 0; i < n; i++)
            v->bufx[b][w0 + i] = t;
        CHECK_EQ(vms_proc_write(k, v->io, va + 8u * w0, &v->bufx[b][w0], 8u * n), VMS_ACCESS_OK);
        return;
    }
    CHECK_EQ(vms_proc_read(k, v->io, va, page, sizeof page), VMS_ACCESS_OK);
    check_words(s, v->owner, page, v->bufx[b], WORDS);
}

/* The device on its buffers: writes a run of words, or reads a page back. */
static void op_buffer_dma(iso *s, ivm *v, bool write)
{
    unsigned b = (unsigned)rnd(s, NB), w0 = (unsigned)rnd(s, WORDS);
    unsigned n = write ? 1 + (unsigned)rnd(s, WORDS - w0) : WORDS - w0;
    uint64_t words[WORDS];
    s->inrange++;
    if (write) {
        uint64_t t = tag(v->owner, 1000 + b, ++s->ver);
        for (unsigned i = 0; i < n; i++)
            words[i] = v->bufx[b][w0 + i] = t;
    }
    vms_dma_result r = vms_dev_dma(v->dev, v->bufgpa[b] + 8u * w0, words, 8u * n,
                                   write ? VMS_ACC_WRITE : VMS_ACC_READ);
    CHECK(r.ok && r.done == 8u * n);
    if (!write)
        check_words(s, v->owner, words, &v->bufx[b][w0], n);
}

/* The device reads anywhere in its VM's memory (tables, data, never-touched pages):
 * allowed (page requests back what is not resident), never another owner's bytes. */
static void op_read_anywhere(iso *s, ivm *v)
{
    static uint64_t words[2 * WORDS];
    uint64_t len = 8 + rnd(s, sizeof words - 8), gpa = rnd(s, v->mem - len);
    s->inrange++;
    vms_dma_result r = vms_dev_dma(v->dev, gpa, words, len, VMS_ACC_READ);
    CHECK(r.ok && r.done == len);
    check_words(s, v->owner, words, NULL, (unsigned)(r.done / 8));
}

/* A target outside v's guest memory: beyond it, another VM's or the host's frames (by
 * their host-physical addresses, all above guest memory), the end of the IOMMU's
 * 48-bit space, or beyond it. */
static uint64_t outside(iso *s, ivm *v)
{
    uint64_t hpa = 0;
    switch (rnd(s, 5)) {
    case 0:
        return v->mem + rnd(s, MIB(512));
    case 1: { /* a resident page of another VM (its HPA) */
        unsigned vi = (unsigned)(v - s->v);
        ivm *o = &s->v[(vi + 1 + (unsigned)rnd(s, NVM - 1)) % NVM];
        uint64_t va = o->wbase + (rnd(s, WPAGES) << VMS_PAGE_SHIFT), pm = 0;
        if (vms_proc_pagemap(vms_guest_kernel(o->g), o->w[0], va, 1, &pm) == VMS_OK &&
            (pm & VMS_PM_PRESENT) &&
            vms_guest_hpa(o->g, (pm & VMS_PM_PFN_MASK) << VMS_PAGE_SHIFT, &hpa) && hpa >= v->mem)
            return hpa + rnd(s, VMS_PAGE_SIZE);
        return o->lo + rnd(s, o->hi - o->lo);
    }
    case 2: { /* the host process's frames, or its kernel's */
        uint64_t pm = 0, va = s->hbase + (rnd(s, HPAGES) << VMS_PAGE_SHIFT);
        if (vms_proc_pagemap(s->h.hk, s->hp, va, 1, &pm) == VMS_OK && (pm & VMS_PM_PRESENT) &&
            ((pm & VMS_PM_PFN_MASK) << VMS_PAGE_SHIFT) >= v->mem)
            return ((pm & VMS_PM_PFN_MASK) << VMS_PAGE_SHIFT) + rnd(s, VMS_PAGE_SIZE);
        return v->mem + rnd(s, MIB(896));
    }
    case 3:
        return (UINT64_C(1) << 47) - VMS_PAGE_SIZE + rnd(s, VMS_PAGE_SIZE);
    default:
        return (UINT64_C(1) << 47) + rnd(s, UINT64_C(1) << 40);
    }
}

/* A DMA deliberately out of range: blocked before any byte moves, recorded, logged. A
 * write carries tags that the final scan would find wherever it might have landed. */
static void op_outside(iso *s, ivm *v)
{
    static uint64_t words[WORDS];
    bool write = rnd(s, 2) != 0;
    uint64_t gpa = outside(s, v), len = 8 + rnd(s, sizeof words - 8);
    if (write)
        fill(words, tag(v->owner, ATTACK, ++s->ver));
    unsigned nlog = vms_iommu_fault_count(s->h.io);
    vms_dma_result r = vms_dev_dma(v->dev, gpa, words, len, write ? VMS_ACC_WRITE : VMS_ACC_READ);
    s->oor++;
    s->oor_blocked += !r.ok && r.done == 0 && r.fault.reason != VMS_IOMMU_OK;
    vms_iommu_fault f;
    bool rec = vms_iommu_fault_count(s->h.io) == nlog + 1 &&
               vms_iommu_fault_get(s->h.io, nlog, &f) && f.bdf == vms_dev_bdf(v->dev) &&
               f.iova == gpa && f.kind == (write ? VMS_ACC_WRITE : VMS_ACC_READ);
    s->oor_logged += rec && vms_dma_poll_faults(s->h.hk) == nlog + 1;
}

/* A read across the end of guest memory: the pieces inside are read, the first piece
 * outside is blocked and logged. */
static void op_straddle(iso *s, ivm *v)
{
    static uint64_t words[WORDS];
    uint64_t in = 8 * (1 + rnd(s, 64));
    vms_dma_result r = vms_dev_dma(v->dev, v->mem - in, words, sizeof words, VMS_ACC_READ);
    CHECK(!r.ok && r.done == in && r.fault.iova == v->mem);
    check_words(s, v->owner, words, NULL, (unsigned)(in / 8));
    s->straddle++;
    CHECK(vms_dma_poll_faults(s->h.hk) >= 1);
}

static void op_host(iso *s, bool write)
{
    unsigned j = (unsigned)rnd(s, HPAGES);
    uint64_t page[WORDS], want[WORDS], va = s->hbase + ((uint64_t)j << VMS_PAGE_SHIFT);
    if (write) {
        s->hver[j] = ++s->ver;
        wpage(page, OWN_HOST, j, s->hver[j]);
        CHECK_EQ(vms_proc_write(s->h.hk, s->hp, va, page, sizeof page), VMS_ACCESS_OK);
        return;
    }
    CHECK_EQ(vms_proc_read(s->h.hk, s->hp, va, page, sizeof page), VMS_ACCESS_OK);
    wpage(want, OWN_HOST, j, s->hver[j]);
    check_words(s, OWN_HOST, page, want, WORDS);
}

/* The device's interrupt: into the guest, injected (an exit when its vCPU runs) or
 * posted. */
static void op_irq(iso *s, ivm *v)
{
    (void)s;
    const vms_guest_stats *gs = vms_guest_get_stats(v->g);
    uint64_t before = gs->intr_injected + gs->intr_posted;
    vms_dev_raise_irq(v->dev);
    v->irqs++;
    CHECK_EQ(gs->intr_injected + gs->intr_posted, before + 1);
}

static void op_fork(iso *s, ivm *v)
{
    (void)s;
    if (v->nw == 2)
        return;
    CHECK_EQ(vms_proc_fork(vms_guest_kernel(v->g), v->w[0], &v->w[1], NULL), VMS_OK);
    memcpy(v->wver[1], v->wver[0], sizeof v->wver[0]);
    v->nw = 2;
}

static void op_dontneed(iso *s, ivm *v)
{
    unsigned p = (unsigned)rnd(s, v->nw), j = (unsigned)rnd(s, WPAGES);
    CHECK_EQ(vms_sys_madvise(vms_guest_kernel(v->g), v->w[p],
                             v->wbase + ((uint64_t)j << VMS_PAGE_SHIFT), VMS_PAGE_SIZE,
                             VMS_MADV_DONTNEED, NULL),
             VMS_OK);
    v->wver[p][j] = 0;
}

/* Every frame of host RAM: a tag must be its memory's owner's (a VM's host memory, or
 * else the host's). */
static void scan_ram(iso *s)
{
    vms_ram *ram = vms_machine_ram(s->h.m);
    static uint64_t page[WORDS];
    for (uint64_t pa = 0; pa < vms_ram_limit(ram); pa += VMS_PAGE_SIZE) {
        unsigned owner = OWN_HOST;
        for (unsigned i = 0; i < NVM; i++)
            if (pa >= s->v[i].lo && pa < s->v[i].hi)
                owner = s->v[i].owner;
        if (vms_ram_read(ram, pa, page, sizeof page) != VMS_OK)
            continue;
        s->frames_scanned++;
        for (unsigned w = 0; w < WORDS; w++)
            s->cross_write += is_tag(page[w]) && tag_owner(page[w]) != owner;
    }
}

static void final_checks(iso *s)
{
    uint64_t page[WORDS], want[WORDS];
    for (unsigned i = 0; i < NVM; i++) {
        ivm *v = &s->v[i];
        vms_kernel *k = vms_guest_kernel(v->g);
        for (unsigned p = 0; p < v->nw; p++)
            for (unsigned j = 0; j < WPAGES; j++) {
                CHECK_EQ(vms_proc_read(k, v->w[p], v->wbase + ((uint64_t)j << VMS_PAGE_SHIFT), page,
                                       sizeof page),
                         VMS_ACCESS_OK);
                wpage(want, v->owner, j, v->wver[p][j]);
                check_words(s, v->owner, page, want, WORDS);
            }
        for (unsigned b = 0; b < NB; b++) {
            CHECK_EQ(vms_proc_read(k, v->io, v->buf + ((uint64_t)b << VMS_PAGE_SHIFT), page,
                                   sizeof page),
                     VMS_ACCESS_OK);
            check_words(s, v->owner, page, v->bufx[b], WORDS);
        }
        vms_err err = {0};
        CHECK_EQ(vms_kernel_check(k, &err), VMS_OK);
    }
    for (unsigned j = 0; j < HPAGES; j++) {
        CHECK_EQ(vms_proc_read(s->h.hk, s->hp, s->hbase + ((uint64_t)j << VMS_PAGE_SHIFT), page,
                               sizeof page),
                 VMS_ACCESS_OK);
        wpage(want, OWN_HOST, j, s->hver[j]);
        check_words(s, OWN_HOST, page, want, WORDS);
    }
    scan_ram(s);
}

static void iso_fini(iso *s)
{
    for (unsigned i = 0; i < NVM; i++) {
        ivm *v = &s->v[i];
        vms_guest_destroy(v->g); /* its kernel detaches its driver */
        vms_dev_destroy(v->dev);
    }
    host_fini(&s->h);
}

static void test_isolation(void)
{
    iso *s = calloc(1, sizeof *s);
    REQUIRE_VOID(s);
    vms_rng_seed(&s->rng, th_seed ^ 0x150);
    bool ok = host_init(&s->h, 2);
    if (ok)
        vms_machine_set_observer(s->h.m, on_iso_event, s);
    for (unsigned i = 0; ok && i < NVM; i++)
        ok = iso_vm(s, i);
    ok = ok && vms_proc_spawn(s->h.hk, "host", 1, &s->hp, NULL) == VMS_OK &&
         vms_sys_mmap(s->h.hk, s->hp, 0, HPAGES << VMS_PAGE_SHIFT, VMS_PROT_READ | VMS_PROT_WRITE,
                      VMS_MAP_PRIVATE | VMS_MAP_ANONYMOUS, NULL, 0, &s->hbase, NULL) == VMS_OK;
    CHECK(ok);
    for (unsigned n = 0; ok && n < STEPS; n++) {
        ivm *v = &s->v[rnd(s, NVM)];
        unsigned r = (unsigned)rnd(s, 100);
        if (r < 16)
            op_worker(s, v, true);
        else if (r < 28)
            op_worker(s, v, false);
        else if (r < 34)
            op_buffer_cpu(s, v, true);
        else if (r < 40)
            op_buffer_cpu(s, v, false);
        else if (r < 50)
            op_buffer_dma(s, v, true);
        else if (r < 57)
            op_buffer_dma(s, v, false);
        else if (r < 64)
            op_read_anywhere(s, v);
        else if (r < 76)
            op_outside(s, v);
        else if (r < 78)
            op_straddle(s, v);
        else if (r < 88)
            op_host(s, rnd(s, 2) != 0);
        else if (r < 92)
            op_irq(s, v);
        else if (r < 94)
            op_fork(s, v);
        else
            op_dontneed(s, v);
    }
    if (ok)
        final_checks(s);
    CHECK_EQ(s->cross_read, 0);
    CHECK_EQ(s->wrong, 0);
    CHECK_EQ(s->cross_write, 0);
    CHECK_EQ(s->escapes, 0);
    CHECK_EQ(s->ev_badvm, 0);
    CHECK_EQ(s->oor_blocked, s->oor);
    CHECK_EQ(s->oor_logged, s->oor);
    CHECK(s->ev_blocked >= s->oor + s->straddle);
    CHECK(!ok || (s->oor > 0 && s->inrange > 0 && s->ev_ok > 0));
    CHECK(!ok || vms_guest_get_stats(s->v[1].g)->host_swapouts > 0); /* B overcommitted */
    printf("isolation: %u VMs and the host, %u steps: %llu in-range DMAs (%llu pieces let "
           "through, %llu page requests served, 0x%llx escapes), %llu out-of-range DMAs "
           "(%llu blocked, %llu logged) and %llu across the end of guest memory; %llu frames "
           "scanned: %llu words of another owner written, %llu read, %llu wrong\n",
           NVM, STEPS, (unsigned long long)s->inrange, (unsigned long long)s->ev_ok,
           (unsigned long long)s->ev_served, (unsigned long long)s->escapes,
           (unsigned long long)s->oor, (unsigned long long)s->oor_blocked,
           (unsigned long long)s->oor_logged, (unsigned long long)s->straddle,
           (unsigned long long)s->frames_scanned, (unsigned long long)s->cross_write,
           (unsigned long long)s->cross_read, (unsigned long long)s->wrong);
    for (unsigned i = 0; ok && i < NVM; i++) {
        for (unsigned b = 0; b < NB; b++)
            CHECK_EQ(
                vms_dma_unmap(vms_guest_kernel(s->v[i].g), s->v[i].dd, s->v[i].bufgpa[b], NULL),
                VMS_OK);
        vms_proc_exit(vms_guest_kernel(s->v[i].g), s->v[i].io);
        for (unsigned p = 0; p < s->v[i].nw; p++)
            vms_proc_exit(vms_guest_kernel(s->v[i].g), s->v[i].w[p]);
    }
    if (ok)
        vms_proc_exit(s->h.hk, s->hp);
    iso_fini(s);
    free(s);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "passthrough");
    test_in_step(VMS_S2_EPT);
    test_in_step(VMS_S2_NPT);
    test_fork_cow();
    th_soak("VMS_PASSTHROUGH_SOAK", test_isolation);
    return th_finish();
}
