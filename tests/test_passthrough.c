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
 */
#include "harness.h"
#include "vmsim/dev.h"
#include "vmsim/dma.h"
#include "vmsim/iommu.h"
#include "vmsim/kernel.h"
#include "vmsim/machine.h"
#include "vmsim/mman.h"
#include "vmsim/proc.h"
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

int main(int argc, char **argv)
{
    th_init(argc, argv, "passthrough");
    test_in_step(VMS_S2_EPT);
    test_in_step(VMS_S2_NPT);
    return th_finish();
}
