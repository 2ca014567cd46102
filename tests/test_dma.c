/*
 * test_dma.c — the kernel's DMA API (dma.h): attach, map (pin + IOVA + IOMMU entries),
 * unmap (IOTLB always invalidated), pinned pages across munmap/fork/mprotect, the NIC
 * and block drivers doing zero-copy I/O into process pages, the IOMMU switched off (a
 * rogue device rewrites a page table), allocation-failure injection, and a seeded
 * differential test against a byte-map reference of every process and mapping.
 *
 * The differential test (VMS_DMA_SOAK=N sequences; default 6): random spawn, fork,
 * exit, mmap, munmap, mprotect, process reads/writes, DMA-API maps/unmaps of random
 * buffers for three devices (two translated, one passthrough), and device DMAs — inside
 * mappings (must move exactly the modelled bytes) and at random IOVAs (must stop at the
 * first byte the device is not mapped to, be logged as one DMAR line, and move nothing
 * else). vms_kernel_check (which includes vms_dma_check) runs after every operation;
 * after each sequence every frame must be free again.
 */
#define _POSIX_C_SOURCE 200809L /* mkstemp */
#include <stdio.h>
#include <unistd.h>

#include "harness.h"
#include "vmsim/dma.h"
#include "vmsim/frames.h"
#include "vmsim/mman.h"
#include "vmsim/rng.h"
#include "vmsim/swap.h"

#define RW        (VMS_PROT_READ | VMS_PROT_WRITE)
#define PRIV_ANON (VMS_MAP_PRIVATE | VMS_MAP_ANONYMOUS)
#define BUF       UINT64_C(0x10000000)
#define IOVA_BASE UINT64_C(0x100000) /* where the kernel's IOVA allocator starts */

/* ---- a small machine -------------------------------------------------------------------- */

typedef struct rig {
    vms_machine *m;
    vms_kernel *k;
    vms_iommu *io;
    vms_dev *raw;
    uint64_t free0;
    unsigned dmar_lines; /* kernel log lines starting with "DMAR: [DMA" */
    char last[256];
} rig;

static void on_log(void *ud, vms_log_level lvl, const char *msg)
{
    rig *r = ud;
    (void)lvl;
    if (!strncmp(msg, "DMAR: [DMA", 10))
        r->dmar_lines++;
    snprintf(r->last, sizeof r->last, "%s", msg);
}

static bool rig_up(rig *r, const vms_allocator *a, unsigned levels)
{
    memset(r, 0, sizeof *r);
    vms_machine_config mc;
    vms_machine_preset("skylake", &mc, NULL);
    mc.ram_bytes = UINT64_C(64) << 20;
    mc.ncores = 2;
    mc.levels = levels;
    vms_iommu_config ic;
    vms_iommu_config_default(&ic);
    vms_dev_config dc = {"rogue", vms_bdf_make(0, 5, 0), 0};
    if (vms_machine_create(a, &mc, &r->m, NULL) != VMS_OK)
        return false;
    if (vms_kernel_create(r->m, NULL, &r->k, NULL) != VMS_OK ||
        vms_iommu_create(r->m, &ic, &r->io, NULL) != VMS_OK ||
        vms_dev_create(r->m, r->io, &dc, &r->raw, NULL) != VMS_OK)
        return false;
    vms_kernel_set_log(r->k, on_log, r);
    r->free0 = vms_frames_nfree(vms_kernel_frames(r->k));
    return true;
}

/* Tear down in the documented order; checks that every frame came back first. */
static void rig_down(rig *r, bool check_frames)
{
    if (r->k) {
        while (vms_proc_count(r->k))
            vms_proc_exit(r->k, vms_proc_at(r->k, 0));
        vms_dma_detach(r->k, vms_dma_find(r->k, r->raw));
        if (check_frames)
            CHECK_EQ(vms_frames_nfree(vms_kernel_frames(r->k)), r->free0);
    }
    vms_kernel_destroy(r->k);
    vms_dev_destroy(r->raw);
    vms_iommu_destroy(r->io);
    vms_machine_destroy(r->m);
}

static bool kcheck(vms_kernel *k)
{
    vms_err err = {0};
    vms_status st = vms_kernel_check(k, &err);
    if (st != VMS_OK)
        fprintf(stderr, "kernel check: %s\n", err.msg);
    CHECK_EQ(st, VMS_OK);
    return st == VMS_OK;
}

static vms_task *proc_with_buf(rig *r, const char *name, uint64_t len, unsigned prot)
{
    vms_task *t = NULL;
    uint64_t at = 0;
    CHECK_EQ(vms_proc_spawn(r->k, name, 0, &t, NULL), VMS_OK);
    CHECK_EQ(vms_sys_mmap(r->k, t, BUF, len, prot, PRIV_ANON | VMS_MAP_FIXED, NULL, 0, &at, NULL),
             VMS_OK);
    return t;
}

static uint64_t pfn_of(vms_kernel *k, vms_task *t, uint64_t va)
{
    uint64_t pm = 0;
    vms_proc_pagemap(k, t, va, 1, &pm);
    return (pm & VMS_PM_PRESENT) ? (pm & VMS_PM_PFN_MASK) : 0;
}

/* A device write of a string literal (vms_dev_dma takes a non-const buffer). */
static vms_dma_result dma_w(vms_dev *dev, uint64_t iova, const char *s, size_t len)
{
    char buf[64];
    memcpy(buf, s, len);
    return vms_dev_dma(dev, iova, buf, len, VMS_ACC_WRITE);
}

/* ---- unit tests --------------------------------------------------------------------------- */

static void test_map_dma_unmap(void)
{
    rig r;
    REQUIRE_VOID(rig_up(&r, NULL, 4));
    vms_dma_dev *d = NULL;
    REQUIRE_VOID(vms_dma_attach(r.k, r.raw, VMS_DMA_TRANSLATE, &d, NULL) == VMS_OK);
    CHECK(vms_dma_translated(d));
    CHECK_EQ(vms_dma_attach(r.k, r.raw, VMS_DMA_TRANSLATE, &d, NULL), VMS_ERR_EXISTS);
    d = vms_dma_find(r.k, r.raw);
    vms_task *t = proc_with_buf(&r, "app", 3 * 4096, RW);
    CHECK_EQ(vms_proc_write(r.k, t, BUF + 0x100, "hello", 5), VMS_ACCESS_OK);
    uint64_t iova = 0;
    CHECK_EQ(vms_dma_map(r.k, d, t, BUF + 0x100, 2 * 4096, VMS_DMA_BIDIRECTIONAL, &iova, NULL),
             VMS_OK);
    CHECK_EQ(iova & 0xfff, 0x100); /* the offset in the page is kept */
    CHECK_EQ(vms_dma_get_stats(r.k)->pinned_pages, 3);
    uint64_t pfn = pfn_of(r.k, t, BUF);
    vms_frame *f = vms_frames_meta(vms_kernel_frames(r.k), pfn);
    CHECK(f && (f->flags & VMS_FRAME_PINNED) && f->pincount == 1);
    kcheck(r.k);

    char buf[8] = {0};
    vms_dma_result res = vms_dev_dma(r.raw, iova, buf, 5, VMS_ACC_READ);
    CHECK(res.ok && !memcmp(buf, "hello", 5));
    res = dma_w(r.raw, iova + 4096 - 2, "DMA!", 4); /* crosses a page */
    CHECK(res.ok);
    CHECK_EQ(vms_proc_read(r.k, t, BUF + 0x100 + 4096 - 2, buf, 4), VMS_ACCESS_OK);
    CHECK(!memcmp(buf, "DMA!", 4));
    /* Beyond the mapped pages: blocked, logged once, nothing moved. */
    unsigned lines = r.dmar_lines;
    res = dma_w(r.raw, (iova & ~UINT64_C(0xfff)) + 3 * 4096, "x", 1);
    CHECK(!res.ok && res.done == 0 && res.fault.reason == VMS_IOMMU_NOT_PRESENT);
    vms_dma_poll_faults(r.k);
    CHECK_EQ(r.dmar_lines, lines + 1);
    char want[160];
    snprintf(want, sizeof want,
             "DMAR: [DMA Write NO_PASID] Request device [00:05.0] fault addr 0x%" PRIx64
             " [fault reason 0x05] PTE Write access is not set",
             (iova & ~UINT64_C(0xfff)) + 3 * 4096);
    CHECK_STR(r.last, want);
    vms_strbuf sb;
    vms_strbuf_init(&sb, NULL);
    CHECK_EQ(vms_kernel_dmesg(r.k, "iommu", &sb), VMS_OK); /* grep -i: "DMAR: IOMMU …" */
    vms_strbuf_free(&sb);
    vms_strbuf_init(&sb, NULL);
    CHECK_EQ(vms_kernel_dmesg(r.k, "dmar: [dma write", &sb), VMS_OK);
    CHECK(strstr(vms_strbuf_str(&sb), "fault reason 0x05") != NULL);
    vms_strbuf_free(&sb);

    /* The IOTLB now caches the mapping; unmap must invalidate it: the same IOVA blocks. */
    const vms_iommu_stats *is = vms_iommu_get_stats(r.io);
    uint64_t inv = is->inv_range;
    CHECK_EQ(vms_dma_unmap(r.k, d, iova, NULL), VMS_OK);
    CHECK_EQ(is->inv_range, inv + 1);
    res = vms_dev_dma(r.raw, iova, buf, 1, VMS_ACC_READ);
    CHECK(!res.ok && res.fault.reason == VMS_IOMMU_NOT_PRESENT);
    CHECK_EQ(vms_dma_get_stats(r.k)->pinned_pages, 0);
    CHECK(!(f->flags & VMS_FRAME_PINNED));
    CHECK_EQ(vms_dma_unmap(r.k, d, iova, NULL), VMS_ERR_NOTFOUND);
    kcheck(r.k);

    /* Directions: a to-device mapping may be read, not written, and vice versa. */
    uint64_t ro = 0, wo = 0;
    CHECK_EQ(vms_dma_map(r.k, d, t, BUF, 100, VMS_DMA_TO_DEVICE, &ro, NULL), VMS_OK);
    CHECK_EQ(vms_dma_map(r.k, d, t, BUF + 4096, 100, VMS_DMA_FROM_DEVICE, &wo, NULL), VMS_OK);
    CHECK(vms_dev_dma(r.raw, ro, buf, 4, VMS_ACC_READ).ok);
    res = dma_w(r.raw, ro, "no", 2);
    CHECK(!res.ok && res.fault.reason == VMS_IOMMU_NO_WRITE);
    res = vms_dev_dma(r.raw, wo, buf, 2, VMS_ACC_READ);
    CHECK(!res.ok && res.fault.reason == VMS_IOMMU_NO_READ);
    CHECK(dma_w(r.raw, wo, "ok", 2).ok);
    CHECK(ro != wo);
    kcheck(r.k);
    /* Bad requests: unmapped memory, a read-only buffer for device writes, len 0. */
    uint64_t x;
    CHECK_EQ(vms_dma_map(r.k, d, t, BUF + 8 * 4096, 16, VMS_DMA_TO_DEVICE, &x, NULL),
             VMS_ERR_RANGE);
    CHECK_EQ(vms_sys_mprotect(r.k, t, BUF + 2 * 4096, 4096, VMS_PROT_READ, NULL), VMS_OK);
    CHECK_EQ(vms_dma_map(r.k, d, t, BUF + 2 * 4096, 16, VMS_DMA_FROM_DEVICE, &x, NULL),
             VMS_ERR_RANGE);
    CHECK_EQ(vms_dma_map(r.k, d, t, BUF, 0, VMS_DMA_TO_DEVICE, &x, NULL), VMS_ERR_INVAL);
    CHECK_EQ(vms_dma_get_stats(r.k)->map_failures, 3);
    /* JSON and text views. */
    vms_strbuf_init(&sb, NULL);
    CHECK_EQ(vms_dma_show(r.k, &sb), VMS_OK);
    CHECK(strstr(vms_strbuf_str(&sb), "rogue 00:05.0 translate domain 1") != NULL);
    CHECK(strstr(vms_strbuf_str(&sb), "pid 1 (app)") != NULL);
    vms_strbuf_free(&sb);
    vms_strbuf_init(&sb, NULL);
    CHECK_EQ(vms_kernel_stats_json_members(r.k, &sb), VMS_OK);
    CHECK(strstr(vms_strbuf_str(&sb), "\"dma\":{\"maps\":3,") != NULL);
    CHECK(strstr(vms_strbuf_str(&sb), "\"iommu\":{") != NULL);
    vms_strbuf_free(&sb);
    /* Exit with live mappings: the frames stay pinned until the unmap (via detach). */
    vms_proc_exit(r.k, t);
    CHECK_EQ(vms_dma_get_stats(r.k)->pinned_pages, 2);
    kcheck(r.k);
    rig_down(&r, true);
}

/* A pinned page stays the mapping's across munmap, fork and mprotect. */
static void test_pinned_semantics(void)
{
    rig r;
    REQUIRE_VOID(rig_up(&r, NULL, 4));
    vms_dma_dev *d = NULL;
    REQUIRE_VOID(vms_dma_attach(r.k, r.raw, VMS_DMA_TRANSLATE, &d, NULL) == VMS_OK);
    vms_task *t = proc_with_buf(&r, "p", 4 * 4096, RW), *c = NULL;
    uint64_t iova = 0;
    CHECK_EQ(vms_proc_write(r.k, t, BUF, "A", 1), VMS_ACCESS_OK);
    CHECK_EQ(vms_dma_map(r.k, d, t, BUF, 4 * 4096, VMS_DMA_BIDIRECTIONAL, &iova, NULL), VMS_OK);
    uint64_t pfn0 = pfn_of(r.k, t, BUF);
    /* fork: the child gets a copy; the device's writes reach the parent only. */
    CHECK_EQ(vms_proc_fork(r.k, t, &c, NULL), VMS_OK);
    CHECK(pfn_of(r.k, c, BUF) != pfn0 && pfn_of(r.k, t, BUF) == pfn0);
    CHECK(dma_w(r.raw, iova, "B", 1).ok);
    char ch = 0;
    CHECK_EQ(vms_proc_read(r.k, t, BUF, &ch, 1), VMS_ACCESS_OK);
    CHECK_EQ(ch, 'B');
    CHECK_EQ(vms_proc_read(r.k, c, BUF, &ch, 1), VMS_ACCESS_OK);
    CHECK_EQ(ch, 'A');
    CHECK_EQ(vms_proc_write(r.k, t, BUF, "C", 1), VMS_ACCESS_OK); /* no COW fault away */
    CHECK_EQ(pfn_of(r.k, t, BUF), pfn0);
    kcheck(r.k);
    /* mprotect read-only and back: the write fault reuses the pinned page. */
    CHECK_EQ(vms_sys_mprotect(r.k, t, BUF, 4096, VMS_PROT_READ, NULL), VMS_OK);
    CHECK_EQ(vms_sys_mprotect(r.k, t, BUF, 4096, RW, NULL), VMS_OK);
    CHECK_EQ(vms_proc_write(r.k, t, BUF, "D", 1), VMS_ACCESS_OK);
    CHECK_EQ(pfn_of(r.k, t, BUF), pfn0);
    CHECK(vms_dev_dma(r.raw, iova, &ch, 1, VMS_ACC_READ).ok);
    CHECK_EQ(ch, 'D');
    /* munmap: the process loses the page, the device keeps it until the unmap. */
    uint64_t pfn1 = pfn_of(r.k, t, BUF + 4096);
    CHECK_EQ(vms_sys_munmap(r.k, t, BUF + 4096, 4096, NULL), VMS_OK);
    vms_frame *f = vms_frames_meta(vms_kernel_frames(r.k), pfn1);
    CHECK(f && f->refcount == 1 && f->pincount == 1 && f->mapcount == 0);
    CHECK(dma_w(r.raw, iova + 4096, "E", 1).ok);
    kcheck(r.k);
    CHECK_EQ(vms_dma_unmap(r.k, d, iova, NULL), VMS_OK);
    CHECK(f->refcount == 0 && !(f->flags & VMS_FRAME_ALLOC)); /* the orphan is freed */
    kcheck(r.k);
    rig_down(&r, true);
}

/* Passthrough and no IOMMU: DMA addresses are physical; a rogue device with the IOMMU
 * off rewrites a page-table entry and the process's translation changes. */
/* Pinned pages survive heavy memory pressure in place: a DMA-mapped buffer keeps its
 * frames and bytes while another process's footprint (3x RAM) forces swapping; the same
 * process's unpinned pages do move, and come back intact; afterwards every frame, pin and
 * swap slot is returned. */
static void test_pinned_under_pressure(void)
{
    enum { NPG = 16 };
    rig r;
    memset(&r, 0, sizeof r);
    vms_machine_config mc;
    vms_machine_preset("skylake", &mc, NULL);
    mc.ram_bytes = UINT64_C(16) << 20;
    mc.ncores = 1;
    vms_kernel_config kc;
    vms_kernel_config_default(&kc);
    kc.swap_bytes = UINT64_C(64) << 20;
    kc.policy = "clock";
    vms_iommu_config ic;
    vms_iommu_config_default(&ic);
    vms_dev_config dc = {"rogue", vms_bdf_make(0, 5, 0), 0};
    REQUIRE_VOID(vms_machine_create(NULL, &mc, &r.m, NULL) == VMS_OK);
    REQUIRE_VOID(vms_kernel_create(r.m, &kc, &r.k, NULL) == VMS_OK);
    REQUIRE_VOID(vms_iommu_create(r.m, &ic, &r.io, NULL) == VMS_OK);
    REQUIRE_VOID(vms_dev_create(r.m, r.io, &dc, &r.raw, NULL) == VMS_OK);
    vms_kernel_set_log(r.k, on_log, &r);
    r.free0 = vms_frames_nfree(vms_kernel_frames(r.k));
    vms_dma_dev *d = NULL;
    REQUIRE_VOID(vms_dma_attach(r.k, r.raw, VMS_DMA_TRANSLATE, &d, NULL) == VMS_OK);

    /* A: a pinned buffer and an unpinned one, both filled with a pattern. */
    vms_task *a = proc_with_buf(&r, "pinned", 2 * NPG * 4096, RW);
    uint8_t page[4096];
    for (unsigned p = 0; p < 2 * NPG; p++) {
        memset(page, (int)(0x40 + p), sizeof page);
        CHECK_EQ(vms_proc_write(r.k, a, BUF + p * 4096u, page, sizeof page), VMS_ACCESS_OK);
    }
    uint64_t iova = 0, pfn[NPG], unpinned_pfn[NPG];
    REQUIRE_VOID(vms_dma_map(r.k, d, a, BUF, NPG * 4096, VMS_DMA_BIDIRECTIONAL, &iova, NULL) ==
                 VMS_OK);
    for (unsigned p = 0; p < NPG; p++) {
        pfn[p] = pfn_of(r.k, a, BUF + p * 4096u);
        unpinned_pfn[p] = pfn_of(r.k, a, BUF + (NPG + p) * 4096u);
    }
    /* B: touch three times RAM. */
    vms_task *b = NULL;
    uint64_t at = 0, big = UINT64_C(48) << 20;
    CHECK_EQ(vms_proc_spawn(r.k, "hog", 0, &b, NULL), VMS_OK);
    REQUIRE_VOID(vms_sys_mmap(r.k, b, 0, big, RW, PRIV_ANON, NULL, 0, &at, NULL) == VMS_OK);
    for (uint64_t off = 0; off < big; off += 4096)
        CHECK_EQ(vms_proc_write(r.k, b, at + off, &off, sizeof off), VMS_ACCESS_OK);
    CHECK(vms_kernel_get_stats(r.k)->pswpout > 1000);

    /* Pinned: same frames, same bytes, seen by the device and by the process. */
    unsigned same_pfn = 0, moved = 0, intact = 0;
    for (unsigned p = 0; p < NPG; p++) {
        same_pfn += pfn_of(r.k, a, BUF + p * 4096u) == pfn[p];
        uint8_t dev_view[64];
        vms_dma_result dr =
            vms_dev_dma(r.raw, iova + p * 4096u, dev_view, sizeof dev_view, VMS_ACC_READ);
        uint8_t proc_view[4096];
        CHECK_EQ(vms_proc_read(r.k, a, BUF + p * 4096u, proc_view, sizeof proc_view),
                 VMS_ACCESS_OK);
        memset(page, (int)(0x40 + p), sizeof page);
        intact += dr.ok && dr.done == sizeof dev_view && !memcmp(dev_view, page, sizeof dev_view) &&
                  !memcmp(proc_view, page, sizeof page);
    }
    CHECK_EQ(same_pfn, NPG);
    CHECK_EQ(intact, NPG);
    /* Unpinned: at least some were evicted (the pressure was real), and read back intact. */
    for (unsigned p = 0; p < NPG; p++) {
        moved += pfn_of(r.k, a, BUF + (NPG + p) * 4096u) != unpinned_pfn[p];
        uint8_t view[4096];
        CHECK_EQ(vms_proc_read(r.k, a, BUF + (NPG + p) * 4096u, view, sizeof view), VMS_ACCESS_OK);
        memset(page, (int)(0x40 + NPG + p), sizeof page);
        CHECK(!memcmp(view, page, sizeof page));
    }
    CHECK(moved > 0);
    kcheck(r.k);
    CHECK_EQ(vms_dma_unmap(r.k, d, iova, NULL), VMS_OK);
    CHECK_EQ(vms_frames_count(vms_kernel_frames(r.k), VMS_FRAME_PINNED), 0);
    while (vms_proc_count(r.k))
        vms_proc_exit(r.k, vms_proc_at(r.k, 0));
    vms_swap_info si;
    vms_swap_get_info(r.k, &si);
    CHECK_EQ(si.free_pages, si.total_pages);
    CHECK(si.writes > 1000);
    rig_down(&r, true);
}

static void test_physical_and_rogue(void)
{
    rig r;
    REQUIRE_VOID(rig_up(&r, NULL, 4));
    vms_dma_dev *d = NULL;
    REQUIRE_VOID(vms_dma_attach(r.k, r.raw, VMS_DMA_PASSTHROUGH, &d, NULL) == VMS_OK);
    CHECK(!vms_dma_translated(d));
    vms_task *t = proc_with_buf(&r, "p", 2 * 4096, RW);
    CHECK_EQ(vms_proc_write(r.k, t, BUF, "pa", 2), VMS_ACCESS_OK);
    uint64_t a = 0;
    CHECK_EQ(vms_dma_map(r.k, d, t, BUF + 8, 2 * 4096 - 8, VMS_DMA_BIDIRECTIONAL, &a, NULL),
             VMS_OK);
    CHECK_EQ(a, pfn_of(r.k, t, BUF) * 4096 + 8);
    vms_dma_seg seg[4];
    size_t n = vms_dma_segments(d, a, seg, 4);
    CHECK(n >= 1 && n <= 2 && seg[0].addr == a);
    CHECK_EQ(vms_dma_iommu_enable(r.k, r.io, false, NULL), VMS_ERR_INVAL); /* live mapping */
    CHECK_EQ(vms_dma_unmap(r.k, d, a, NULL), VMS_OK);
    CHECK_EQ(vms_dma_iommu_enable(r.k, r.io, false, NULL), VMS_OK);
    CHECK(!vms_iommu_enabled(r.io));
    vms_dma_detach(r.k, d);
    REQUIRE_VOID(vms_dma_attach(r.k, r.raw, VMS_DMA_TRANSLATE, &d, NULL) == VMS_OK);
    CHECK(!vms_dma_translated(d)); /* the IOMMU is off */
    /* The rogue device walks the process's tables in RAM (reading kernel memory) and
     * points BUF's PTE at the frame of BUF + 4096. */
    uint64_t other = pfn_of(r.k, t, BUF + 4096);
    CHECK_EQ(vms_proc_write(r.k, t, BUF + 4096, "OTHER", 5), VMS_ACCESS_OK);
    vms_task_info ti;
    vms_task_get_info(t, &ti);
    uint64_t table = ti.cr3 & VMS_CR3_ADDR_MASK, pte = 0, ptep = 0;
    for (unsigned l = 4; l >= 1; l--) {
        ptep = table + 8u * vms_va_index(BUF, l);
        CHECK(vms_dev_dma(r.raw, ptep, &pte, 8, VMS_ACC_READ).ok);
        table = vms_pte_addr(pte);
    }
    uint64_t orig = pte, evil = (pte & ~VMS_PTE_ADDR_MASK) | (other << 12);
    CHECK(vms_dev_dma(r.raw, ptep, &evil, 8, VMS_ACC_WRITE).ok);
    /* The core may cache the old translation until an invalidation; after one (any
     * INVLPG the kernel issues), the process reads the other page through BUF. */
    vms_core_invlpg(vms_machine_core(r.m, 0), BUF);
    char buf[6] = {0};
    CHECK_EQ(vms_proc_read(r.k, t, BUF, buf, 5), VMS_ACCESS_OK);
    CHECK_STR(buf, "OTHER");
    CHECK(vms_kernel_check(r.k, NULL) != VMS_OK); /* the kernel's rmap no longer agrees */
    CHECK(vms_dev_dma(r.raw, ptep, &orig, 8, VMS_ACC_WRITE).ok); /* put it back */
    vms_core_invlpg(vms_machine_core(r.m, 0), BUF);
    kcheck(r.k);
    /* Left in place, the kernel meets the entry at munmap: a simulated panic, not a host
     * crash (issue 16 #5), and every later kernel operation refuses. A frame beyond RAM. */
    CHECK(!vms_kernel_panicked(r.k, NULL));
    evil = (pte & ~VMS_PTE_ADDR_MASK) | (UINT64_C(0xfffff) << 12);
    CHECK(vms_dev_dma(r.raw, ptep, &evil, 8, VMS_ACC_WRITE).ok);
    vms_err err = {0};
    CHECK_EQ(vms_sys_munmap(r.k, t, BUF, 8192, &err), VMS_ERR_PANIC); /* the call that met it */
    const char *why = NULL;
    CHECK(vms_kernel_panicked(r.k, &why));
    CHECK(why && strstr(why, "Bad page map") != NULL);
    CHECK_EQ(vms_sys_munmap(r.k, t, BUF, 8192, &err), VMS_ERR_PANIC);
    CHECK(strstr(err.msg, "Kernel panic - not syncing") != NULL);
    CHECK_EQ(vms_proc_read(r.k, t, BUF, buf, 1), VMS_ACCESS_OOM); /* VMS_ERR_PANIC inside */
    vms_task *child = NULL;
    CHECK_EQ(vms_proc_fork(r.k, t, &child, NULL), VMS_ERR_PANIC);
    vms_dma_detach(r.k, d);
    rig_down(&r, false); /* teardown skips the foreign entry: no leak, no crash */
}

/* A rogue device sets a reserved bit in a PTE (found by fuzz_scenario: the fault handler
 * asserted "the kernel wrote a reserved bit", aborting the host process): the access's
 * reserved-bit fault is a simulated panic, "Bad pagetable", as Linux's pgtable_bad(). */
static void test_rogue_reserved_bit(void)
{
    rig r;
    REQUIRE_VOID(rig_up(&r, NULL, 4));
    CHECK_EQ(vms_dma_iommu_enable(r.k, r.io, false, NULL), VMS_OK);
    vms_task *t = proc_with_buf(&r, "p", 4096, RW);
    CHECK_EQ(vms_proc_write(r.k, t, BUF, "pa", 2), VMS_ACCESS_OK);
    vms_task_info ti;
    vms_task_get_info(t, &ti);
    uint64_t table = ti.cr3 & VMS_CR3_ADDR_MASK, pte = 0, ptep = 0;
    for (unsigned l = 4; l >= 1; l--) {
        ptep = table + 8u * vms_va_index(BUF, l);
        CHECK(vms_dev_dma(r.raw, ptep, &pte, 8, VMS_ACC_READ).ok);
        table = vms_pte_addr(pte);
    }
    uint64_t evil = pte | (UINT64_C(1) << 51); /* above MAXPHYADDR: reserved */
    CHECK(vms_dev_dma(r.raw, ptep, &evil, 8, VMS_ACC_WRITE).ok);
    vms_core_invlpg(vms_machine_core(r.m, 0), BUF);
    char buf[2];
    CHECK_EQ(vms_proc_read(r.k, t, BUF, buf, 2), VMS_ACCESS_OOM); /* VMS_ERR_PANIC inside */
    const char *why = NULL;
    CHECK(vms_kernel_panicked(r.k, &why));
    CHECK(why && strstr(why, "Bad pagetable: a reserved bit") != NULL);
    rig_down(&r, false);
}

/* A pin of a page swapped out while fork shared it (found by test_kernel_diff's mixed
 * sequences): the pin's write fault swapped it in read-only (other PTEs still held the swap
 * entry) and stopped there, so the device wrote into the swap-cache page, and the child's
 * swap-in then read the parent's DMA data. Now the pin faults again, as GUP does, and
 * gets its own copy: the child keeps its bytes. */
static void test_pin_swapped_shared(void)
{
    vms_machine_config mc;
    vms_machine_preset("skylake", &mc, NULL);
    mc.ram_bytes = UINT64_C(16) << 20;
    mc.ncores = 2;
    vms_kernel_config kc;
    vms_kernel_config_default(&kc);
    kc.swap_bytes = UINT64_C(16) << 20;
    rig r;
    memset(&r, 0, sizeof r);
    vms_iommu_config ic;
    vms_iommu_config_default(&ic);
    vms_dev_config dc = {"dev", vms_bdf_make(0, 5, 0), 0};
    REQUIRE_VOID(vms_machine_create(NULL, &mc, &r.m, NULL) == VMS_OK &&
                 vms_kernel_create(r.m, &kc, &r.k, NULL) == VMS_OK &&
                 vms_iommu_create(r.m, &ic, &r.io, NULL) == VMS_OK &&
                 vms_dev_create(r.m, r.io, &dc, &r.raw, NULL) == VMS_OK);
    r.free0 = vms_frames_nfree(vms_kernel_frames(r.k));
    vms_dma_dev *d = NULL;
    REQUIRE_VOID(vms_dma_attach(r.k, r.raw, VMS_DMA_TRANSLATE, &d, NULL) == VMS_OK);
    vms_task *t = proc_with_buf(&r, "parent", 4096, RW), *child = NULL;
    CHECK_EQ(vms_proc_write(r.k, t, BUF, "mine", 5), VMS_ACCESS_OK);
    CHECK_EQ(vms_proc_fork(r.k, t, &child, NULL), VMS_OK);
    uint64_t got = 0, pm = 0;
    vms_kernel_reclaim(r.k, 1u << 20, &got);
    vms_proc_pagemap(r.k, t, BUF, 1, &pm);
    CHECK(pm & VMS_PM_SWAPPED); /* both PTEs now hold the swap entry */
    uint64_t iova = 0;
    CHECK_EQ(vms_dma_map(r.k, d, t, BUF, 4096, VMS_DMA_FROM_DEVICE, &iova, NULL), VMS_OK);
    CHECK(dma_w(r.raw, iova, "DEV!", 5).ok);
    CHECK_EQ(vms_dma_unmap(r.k, d, iova, NULL), VMS_OK);
    char a[5] = {0}, b[5] = {0};
    CHECK_EQ(vms_proc_read(r.k, t, BUF, a, 5), VMS_ACCESS_OK);
    CHECK_EQ(vms_proc_read(r.k, child, BUF, b, 5), VMS_ACCESS_OK);
    CHECK_STR(a, "DEV!");
    CHECK_STR(b, "mine");
    kcheck(r.k);
    vms_dma_detach(r.k, d);
    rig_down(&r, true);
}

/* The NIC receives into a pinned user buffer; the block device reads a file into one. */
static void test_drivers(void)
{
    rig r;
    REQUIRE_VOID(rig_up(&r, NULL, 4));
    vms_nic_config nc;
    vms_nic_config_default(&nc);
    vms_nic *nic = NULL;
    REQUIRE_VOID(vms_nic_create(r.m, r.io, &nc, &nic, NULL) == VMS_OK);
    char path[] = "/tmp/vmsim_dma_XXXXXX";
    int fd = mkstemp(path);
    REQUIRE_VOID(fd >= 0);
    static char sectors[4 * 512];
    for (size_t i = 0; i < sizeof sectors; i++)
        sectors[i] = (char)('a' + i / 512);
    CHECK_EQ(write(fd, sectors, sizeof sectors), sizeof sectors);
    close(fd);
    vms_blk_config bc;
    vms_blk_config_default(&bc);
    bc.path = path;
    vms_blk *blk = NULL;
    REQUIRE_VOID(vms_blk_create(r.m, r.io, &bc, &blk, NULL) == VMS_OK);
    vms_dma_dev *dn = NULL, *db = NULL;
    CHECK_EQ(vms_dma_attach_nic(r.k, nic, VMS_DMA_TRANSLATE, &dn, NULL), VMS_OK);
    CHECK_EQ(vms_dma_attach_blk(r.k, blk, VMS_DMA_TRANSLATE, &db, NULL), VMS_OK);
    REQUIRE_VOID(dn && db);
    vms_task *t = proc_with_buf(&r, "srv", 4 * 4096, RW);
    uint64_t rx = 0, io = 0;
    CHECK_EQ(vms_dma_map(r.k, dn, t, BUF, 4096, VMS_DMA_FROM_DEVICE, &rx, NULL), VMS_OK);
    unsigned nb = 0;
    CHECK_EQ(vms_dma_nic_post(r.k, dn, rx, &nb, NULL), VMS_OK);
    CHECK_EQ(nb, 16);
    uint64_t irq0 = vms_core_get_stats(vms_machine_core(r.m, 0))->interrupts;
    CHECK_EQ(vms_nic_receive(nic, "packet one", 10, NULL), VMS_OK);
    CHECK_EQ(vms_nic_receive(nic, "packet two!", 11, NULL), VMS_OK);
    const vms_dma_dev_stats *ns = vms_dma_dev_get_stats(dn);
    CHECK_EQ(ns->rx_packets, 2);
    CHECK_EQ(ns->last_rx_addr, rx + 256);
    CHECK_EQ(ns->irqs, 2);
    CHECK_EQ(vms_core_get_stats(vms_machine_core(r.m, 0))->interrupts, irq0 + 2);
    char buf[16] = {0};
    CHECK_EQ(vms_proc_read(r.k, t, BUF, buf, 10), VMS_ACCESS_OK);
    CHECK_STR(buf, "packet one");
    CHECK_EQ(vms_proc_read(r.k, t, BUF + 256, buf, 11), VMS_ACCESS_OK);
    CHECK_STR(buf, "packet two!");
    kcheck(r.k);
    /* Block read of 3 sectors (from sector 1) into the user buffer at +1K, zero copy. */
    CHECK_EQ(vms_dma_map(r.k, db, t, BUF + 4096, 2 * 4096, VMS_DMA_BIDIRECTIONAL, &io, NULL),
             VMS_OK);
    uint32_t status = 0;
    CHECK_EQ(vms_dma_blk_rw(r.k, db, false, 1, 3, io + 1024, &status, NULL), VMS_OK);
    CHECK_EQ(status, VMS_BLK_STATUS_DONE);
    char s[4] = {0};
    CHECK_EQ(vms_proc_read(r.k, t, BUF + 4096 + 1024, s, 1), VMS_ACCESS_OK);
    CHECK_EQ(s[0], 'b');
    CHECK_EQ(vms_proc_read(r.k, t, BUF + 4096 + 1024 + 2 * 512, s, 1), VMS_ACCESS_OK);
    CHECK_EQ(s[0], 'd');
    CHECK_EQ(vms_dma_dev_get_stats(db)->irqs, 1);
    /* Out of range: the device reports ERR; a DMA through an IOVA the disk has no
     * mapping for is blocked by the IOMMU and logged. */
    vms_err err = {0};
    CHECK_EQ(vms_dma_blk_rw(r.k, db, false, 3, 2, io, &status, &err), VMS_ERR_IO);
    unsigned lines = r.dmar_lines;
    CHECK_EQ(vms_dma_blk_rw(r.k, db, false, 0, 1, io + 16 * 4096, &status, &err), VMS_ERR_IO);
    CHECK_EQ((status >> 8) & 0xff, VMS_BLK_EDMA);
    CHECK_EQ(r.dmar_lines, lines + 1);
    kcheck(r.k);
    /* JSON mentions both devices; detaching returns everything (ring, tables). */
    vms_strbuf sb;
    vms_strbuf_init(&sb, NULL);
    CHECK_EQ(vms_dma_stats_json_members(r.k, &sb), VMS_OK);
    CHECK(strstr(vms_strbuf_str(&sb), "\"name\":\"nic\",\"bdf\":\"00:03.0\"") != NULL);
    vms_strbuf_free(&sb);
    vms_proc_exit(r.k, t);
    vms_dma_detach(r.k, dn);
    vms_dma_detach(r.k, db);
    CHECK_EQ(vms_dma_get_stats(r.k)->table_pages, 0);
    CHECK_EQ(vms_dma_get_stats(r.k)->pinned_pages, 0);
    kcheck(r.k);
    vms_nic_destroy(nic);
    vms_blk_destroy(blk);
    unlink(path);
    rig_down(&r, true);
}

/* 5-level paging: IOMMU tables of 5 levels, ioremap in the 5-level area. */
static void test_la57(void)
{
    rig r;
    REQUIRE_VOID(rig_up(&r, NULL, 5));
    vms_nic_config nc;
    vms_nic_config_default(&nc);
    vms_nic *nic = NULL;
    REQUIRE_VOID(vms_nic_create(r.m, r.io, &nc, &nic, NULL) == VMS_OK);
    vms_task *t = proc_with_buf(&r, "p", 4096, RW); /* a root made before the ioremap */
    vms_dma_dev *dn = NULL;
    CHECK_EQ(vms_dma_attach_nic(r.k, nic, VMS_DMA_TRANSLATE, &dn, NULL), VMS_OK);
    uint64_t rx = 0;
    CHECK_EQ(vms_dma_map(r.k, dn, t, BUF, 4096, VMS_DMA_FROM_DEVICE, &rx, NULL), VMS_OK);
    CHECK_EQ(vms_dma_nic_post(r.k, dn, rx, NULL, NULL), VMS_OK);
    /* The driver's register accesses go through whatever root core 0 has loaded. */
    char buf[4] = {0};
    CHECK_EQ(vms_proc_read(r.k, t, BUF, buf, 1), VMS_ACCESS_OK);
    CHECK_EQ(vms_nic_receive(nic, "la57", 4, NULL), VMS_OK);
    CHECK_EQ(vms_proc_read(r.k, t, BUF, buf, 4), VMS_ACCESS_OK);
    CHECK(!memcmp(buf, "la57", 4));
    CHECK_EQ(vms_dma_dev_get_stats(dn)->rx_packets, 1);
    kcheck(r.k);
    vms_dma_detach(r.k, dn);
    vms_nic_destroy(nic);
    rig_down(&r, true);
}

/* Fail the n-th host allocation inside attach+map+post for n = 0, 1, …: each call fails
 * cleanly (NOMEM, nothing pinned, nothing leaked) or succeeds. */
static void test_alloc_failures(void)
{
    unsigned ok_runs = 0;
    for (long budget = 0; budget < 60 && ok_runs < 3; budget++) {
        th_failalloc fa;
        const vms_allocator *a = th_failalloc_init(&fa, -1);
        rig r;
        if (!rig_up(&r, a, 4)) {
            rig_down(&r, false);
            continue;
        }
        vms_nic_config nc;
        vms_nic_config_default(&nc);
        vms_nic *nic = NULL;
        vms_task *t = proc_with_buf(&r, "f", 2 * 4096, RW);
        REQUIRE_VOID(vms_nic_create(r.m, r.io, &nc, &nic, NULL) == VMS_OK);
        fa.budget = budget;
        vms_dma_dev *dn = NULL, *dr = NULL;
        uint64_t rx = 0, x = 0;
        vms_err err = {0};
        vms_status st = vms_dma_attach_nic(r.k, nic, VMS_DMA_TRANSLATE, &dn, &err);
        if (st == VMS_OK)
            st = vms_dma_attach(r.k, r.raw, VMS_DMA_PASSTHROUGH, &dr, &err);
        if (st == VMS_OK)
            st = vms_dma_map(r.k, dn, t, BUF, 2 * 4096, VMS_DMA_FROM_DEVICE, &rx, &err);
        if (st == VMS_OK)
            st = vms_dma_map(r.k, dr, t, BUF, 100, VMS_DMA_TO_DEVICE, &x, &err);
        if (st == VMS_OK)
            st = vms_dma_nic_post(r.k, dn, rx, NULL, &err);
        fa.budget = -1;
        CHECK(st == VMS_OK || st == VMS_ERR_NOMEM);
        if (st != VMS_OK && st != VMS_ERR_NOMEM)
            fprintf(stderr, "budget %ld: %s\n", budget, err.msg);
        ok_runs += st == VMS_OK;
        kcheck(r.k);
        if (st == VMS_OK) {
            CHECK_EQ(vms_nic_receive(nic, "after", 5, NULL), VMS_OK);
            char b[6] = {0};
            CHECK_EQ(vms_proc_read(r.k, t, BUF, b, 5), VMS_ACCESS_OK);
            CHECK_STR(b, "after");
        }
        vms_dma_detach(r.k, dn);
        vms_dma_detach(r.k, dr);
        CHECK_EQ(vms_dma_get_stats(r.k)->pinned_pages, 0);
        vms_nic_destroy(nic);
        rig_down(&r, true);
        CHECK_EQ(fa.live_bytes, 0);
    }
    CHECK(ok_runs >= 1);
}

/* Frame exhaustion: mapping fails with NOTFOUND and leaves nothing pinned. */
static void test_out_of_frames(void)
{
    rig r;
    REQUIRE_VOID(rig_up(&r, NULL, 4));
    vms_dma_dev *d = NULL;
    REQUIRE_VOID(vms_dma_attach(r.k, r.raw, VMS_DMA_TRANSLATE, &d, NULL) == VMS_OK);
    vms_task *t = NULL;
    uint64_t at = 0, len = UINT64_C(80) << 20, iova = 0;
    CHECK_EQ(vms_proc_spawn(r.k, "big", 0, &t, NULL), VMS_OK);
    CHECK_EQ(vms_sys_mmap(r.k, t, BUF, len, RW, PRIV_ANON | VMS_MAP_FIXED, NULL, 0, &at, NULL),
             VMS_OK);
    CHECK_EQ(vms_dma_map(r.k, d, t, BUF, len, VMS_DMA_BIDIRECTIONAL, &iova, NULL),
             VMS_ERR_NOTFOUND);
    CHECK_EQ(vms_dma_get_stats(r.k)->pinned_pages, 0);
    kcheck(r.k);
    rig_down(&r, true);
}

/* ---- the differential test --------------------------------------------------------------- */

#define NPG  12u
#define MAXP 4
#define NDEV 3
#define MAXM 24

typedef struct model {
    int refs;
    uint8_t bytes[NPG * 4096];
    int8_t prot[NPG]; /* -1: unmapped */
} model;

typedef struct sproc {
    vms_task *t;
    model *mm;
} sproc;

/* A DMA mapping: pages [pg0, pg0 + npages) of a process; each page aliases the owner's
 * model until the process loses it, then has its own bytes. */
typedef struct mmodel {
    bool live;
    unsigned dev;
    uint64_t dma, va, len;
    unsigned pg0, npages;
    vms_dma_dir dir;
    model *owner;   /* NULL once every page is orphaned or the owner exited */
    uint8_t *ob[4]; /* per page: NULL while it aliases the owner, else its bytes */
} mmodel;

typedef struct world {
    rig r;
    vms_dev *dev[NDEV];
    vms_dma_dev *dd[NDEV];
    vms_rng rng;
    sproc p[MAXP];
    unsigned np;
    mmodel m[MAXM];
    unsigned long ops, dmas, blocked, bytes_moved;
    unsigned expect_lines;
    uint8_t **orphans; /* every orphan page buffer, freed at the end */
    size_t norphans;
} world;

static uint64_t rnd(world *w, uint64_t n)
{
    return vms_rng_below(&w->rng, n);
}

static model *model_new(void)
{
    model *m = calloc(1, sizeof *m);
    m->refs = 1;
    memset(m->prot, -1, sizeof m->prot);
    return m;
}

/* The process pages [a, b) of model mm are gone from its address space: mappings
 * aliasing them take their bytes. */
static void orphan_pages(world *w, model *mm, unsigned a, unsigned b)
{
    for (unsigned pg = a; pg < b; pg++) {
        uint8_t *buf = NULL; /* one buffer per frame: mappings of one page share it */
        for (unsigned i = 0; i < MAXM; i++) {
            mmodel *m = &w->m[i];
            if (!m->live || m->owner != mm || pg < m->pg0 || pg >= m->pg0 + m->npages ||
                m->ob[pg - m->pg0])
                continue;
            if (!buf) {
                buf = malloc(4096);
                memcpy(buf, mm->bytes + pg * 4096u, 4096);
                w->orphans = realloc(w->orphans, (w->norphans + 1) * sizeof *w->orphans);
                w->orphans[w->norphans++] = buf;
            }
            m->ob[pg - m->pg0] = buf;
        }
    }
}

static void drop_proc(world *w, unsigned i)
{
    orphan_pages(w, w->p[i].mm, 0, NPG);
    for (unsigned j = 0; j < MAXM; j++)
        if (w->m[j].owner == w->p[i].mm)
            w->m[j].owner = NULL;
    vms_proc_exit(w->r.k, w->p[i].t);
    free(w->p[i].mm);
    w->p[i] = w->p[--w->np];
}

/* The model byte a mapping's page p, offset o stands for. */
static uint8_t *mbyte(mmodel *m, unsigned p, unsigned o)
{
    return m->ob[p] ? &m->ob[p][o] : &m->owner->bytes[(m->pg0 + p) * 4096u + o];
}

static void op_spawn(world *w)
{
    if (w->np == MAXP)
        return;
    sproc *p = &w->p[w->np];
    CHECK_EQ(vms_proc_spawn(w->r.k, "d", (unsigned)rnd(w, 2), &p->t, NULL), VMS_OK);
    p->mm = model_new();
    w->np++;
}

static void op_fork(world *w, unsigned i)
{
    if (w->np == MAXP)
        return;
    sproc *c = &w->p[w->np];
    CHECK_EQ(vms_proc_fork(w->r.k, w->p[i].t, &c->t, NULL), VMS_OK);
    c->mm = model_new();
    memcpy(c->mm->bytes, w->p[i].mm->bytes, sizeof c->mm->bytes);
    memcpy(c->mm->prot, w->p[i].mm->prot, sizeof c->mm->prot);
    w->np++;
}

static void op_mmap(world *w, unsigned i)
{
    unsigned a = (unsigned)rnd(w, NPG), b = a + 1 + (unsigned)rnd(w, NPG - a);
    unsigned prot = rnd(w, 4) ? RW : VMS_PROT_READ;
    uint64_t at;
    CHECK_EQ(vms_sys_mmap(w->r.k, w->p[i].t, BUF + a * 4096u, (b - a) * 4096u, prot,
                          PRIV_ANON | VMS_MAP_FIXED, NULL, 0, &at, NULL),
             VMS_OK);
    orphan_pages(w, w->p[i].mm, a, b);
    memset(w->p[i].mm->bytes + a * 4096u, 0, (b - a) * 4096u);
    memset(w->p[i].mm->prot + a, (int8_t)prot, b - a);
}

static void op_munmap(world *w, unsigned i)
{
    unsigned a = (unsigned)rnd(w, NPG), b = a + 1 + (unsigned)rnd(w, 2);
    b = b > NPG ? NPG : b;
    CHECK_EQ(vms_sys_munmap(w->r.k, w->p[i].t, BUF + a * 4096u, (b - a) * 4096u, NULL), VMS_OK);
    orphan_pages(w, w->p[i].mm, a, b);
    memset(w->p[i].mm->bytes + a * 4096u, 0, (b - a) * 4096u);
    memset(w->p[i].mm->prot + a, -1, b - a);
}

static void op_mprotect(world *w, unsigned i)
{
    model *m = w->p[i].mm;
    unsigned a = (unsigned)rnd(w, NPG);
    if (m->prot[a] < 0)
        return;
    unsigned prot = rnd(w, 2) ? RW : VMS_PROT_READ;
    CHECK_EQ(vms_sys_mprotect(w->r.k, w->p[i].t, BUF + a * 4096u, 4096, prot, NULL), VMS_OK);
    m->prot[a] = (int8_t)prot;
}

/* A process read or write inside readable/writable pages (checked against the model). */
static void op_access(world *w, unsigned i, bool write)
{
    model *m = w->p[i].mm;
    unsigned pg = (unsigned)rnd(w, NPG);
    if (m->prot[pg] < 0 || (write && !(m->prot[pg] & VMS_PROT_WRITE)))
        return;
    unsigned off = (unsigned)rnd(w, 4096), len = 1 + (unsigned)rnd(w, 64);
    len = off + len > 4096 ? 4096 - off : len;
    uint8_t buf[64];
    if (write) {
        for (unsigned j = 0; j < len; j++)
            buf[j] = (uint8_t)rnd(w, 256);
        CHECK_EQ(vms_proc_write(w->r.k, w->p[i].t, BUF + pg * 4096u + off, buf, len),
                 VMS_ACCESS_OK);
        memcpy(m->bytes + pg * 4096u + off, buf, len);
    } else {
        CHECK_EQ(vms_proc_read(w->r.k, w->p[i].t, BUF + pg * 4096u + off, buf, len), VMS_ACCESS_OK);
        CHECK(!memcmp(buf, m->bytes + pg * 4096u + off, len));
    }
}

static void op_map(world *w, unsigned i)
{
    unsigned slot;
    for (slot = 0; slot < MAXM && w->m[slot].live; slot++)
        ;
    if (slot == MAXM)
        return;
    model *mm = w->p[i].mm;
    unsigned pg0 = (unsigned)rnd(w, NPG), np = 1 + (unsigned)rnd(w, 3);
    if (pg0 + np > NPG)
        np = NPG - pg0;
    for (unsigned p = pg0; p < pg0 + np; p++)
        if (mm->prot[p] != (int8_t)RW)
            return; /* writable mappings only: see the note on read-only pins in dma.h */
    mmodel *m = &w->m[slot];
    memset(m, 0, sizeof *m);
    m->dev = (unsigned)rnd(w, NDEV);
    m->pg0 = pg0;
    m->npages = np;
    uint64_t off = rnd(w, 4096);
    m->va = BUF + pg0 * 4096u + off;
    m->len = 1 + rnd(w, np * 4096u - off);
    m->npages =
        (unsigned)((((m->va + m->len + 4095) & ~UINT64_C(4095)) - (m->va & ~UINT64_C(4095))) /
                   4096);
    m->dir = (vms_dma_dir)rnd(w, 3);
    m->owner = mm;
    CHECK_EQ(vms_dma_map(w->r.k, w->dd[m->dev], w->p[i].t, m->va, m->len, m->dir, &m->dma, NULL),
             VMS_OK);
    m->live = true;
}

static void op_unmap(world *w)
{
    mmodel *m = &w->m[rnd(w, MAXM)];
    if (!m->live)
        return;
    CHECK_EQ(vms_dma_unmap(w->r.k, w->dd[m->dev], m->dma, NULL), VMS_OK);
    m->live = false;
    if (vms_dma_translated(w->dd[m->dev])) { /* no stale IOTLB entry survives an unmap */
        uint8_t b;
        vms_dma_result res = vms_dev_dma(w->dev[m->dev], m->dma, &b, 1, VMS_ACC_READ);
        CHECK(!res.ok && res.fault.reason == VMS_IOMMU_NOT_PRESENT);
        w->expect_lines++;
        w->blocked++;
    }
}

/* Does mapping page cover iova page `page` of device dev with the access? Returns the
 * mapping and page index, or NULL. */
static mmodel *covering(world *w, unsigned dev, uint64_t page, bool write, unsigned *p)
{
    for (unsigned i = 0; i < MAXM; i++) {
        mmodel *m = &w->m[i];
        if (!m->live || m->dev != dev)
            continue;
        uint64_t first = m->dma & ~UINT64_C(4095);
        if (page < first || page >= first + m->npages * UINT64_C(4096))
            continue;
        *p = (unsigned)((page - first) / 4096);
        bool allowed = write ? m->dir != VMS_DMA_TO_DEVICE : m->dir != VMS_DMA_FROM_DEVICE;
        return allowed ? m : NULL;
    }
    return NULL;
}

/* A DMA by a translated device anywhere near its mappings: the model predicts where it
 * stops, which bytes it moves, and the one logged fault. */
static void op_dma_translated(world *w, unsigned dev)
{
    uint64_t base = IOVA_BASE;
    for (unsigned i = 0; i < MAXM; i++)
        if (w->m[i].live && w->m[i].dev == dev && rnd(w, 2))
            base = w->m[i].dma & ~UINT64_C(4095);
    uint64_t iova = base - 4096 + rnd(w, 4 * 4096);
    size_t len = 1 + (size_t)rnd(w, rnd(w, 3) ? 300 : 9000);
    bool write = rnd(w, 2);
    static uint8_t buf[9000], want[9000];
    for (size_t j = 0; j < len; j++)
        buf[j] = write ? (uint8_t)rnd(w, 256) : 0xEE;
    /* Predict: bytes up to the first page the device may not access this way. */
    size_t ok = 0;
    while (ok < len) {
        uint64_t a = iova + ok, page = a & ~UINT64_C(4095);
        unsigned p;
        mmodel *m = covering(w, dev, page, write, &p);
        if (!m)
            break;
        size_t n = 4096 - (size_t)(a - page);
        n = n < len - ok ? n : len - ok;
        for (size_t j = 0; j < n; j++)
            want[ok + j] = *mbyte(m, p, (unsigned)(a - page + j));
        ok += n;
    }
    vms_dma_result res =
        vms_dev_dma(w->dev[dev], iova, buf, len, write ? VMS_ACC_WRITE : VMS_ACC_READ);
    w->dmas++;
    CHECK_EQ(res.done, ok);
    CHECK_EQ(res.ok, ok == len);
    if (!write)
        CHECK(!memcmp(buf, want, ok));
    if (ok < len) {
        w->blocked++;
        w->expect_lines++;
    }
    /* Apply the writes to the model. */
    for (size_t done = 0; write && done < ok;) {
        uint64_t a = iova + done, page = a & ~UINT64_C(4095);
        unsigned p;
        mmodel *m = covering(w, dev, page, true, &p);
        size_t n = 4096 - (size_t)(a - page);
        n = n < ok - done ? n : ok - done;
        for (size_t j = 0; j < n; j++)
            *mbyte(m, p, (unsigned)(a - page + j)) = buf[done + j];
        /* Every other mapping of the same frame (another device, same process page)
         * sees the same bytes through the shared model: nothing else to do. */
        done += n;
    }
    w->bytes_moved += ok;
}

/* A DMA by the passthrough device inside one segment of one of its mappings. */
static void op_dma_phys(world *w, unsigned dev)
{
    mmodel *m = &w->m[rnd(w, MAXM)];
    if (!m->live || m->dev != dev)
        return;
    bool write = m->dir == VMS_DMA_FROM_DEVICE || (m->dir == VMS_DMA_BIDIRECTIONAL && rnd(w, 2));
    vms_dma_seg seg[4];
    size_t n = vms_dma_segments(w->dd[dev], m->dma, seg, 4), s = (size_t)rnd(w, n), boff = 0;
    REQUIRE_VOID(n >= 1 && n <= 4);
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += seg[i].len;
    if (total != m->len)
        return; /* another mapping starts at the same physical address: ambiguous */
    for (size_t i = 0; i < s; i++)
        boff += seg[i].len;
    uint64_t o = rnd(w, seg[s].len), len = 1 + rnd(w, seg[s].len - o);
    uint8_t buf[4 * 4096];
    for (uint64_t j = 0; j < len; j++)
        buf[j] = (uint8_t)rnd(w, 256);
    vms_dma_result res =
        vms_dev_dma(w->dev[dev], seg[s].addr + o, buf, len, write ? VMS_ACC_WRITE : VMS_ACC_READ);
    CHECK(res.ok);
    w->dmas++;
    for (uint64_t j = 0; j < len; j++) {
        uint64_t in_pages = (m->va & 4095) + boff + o + j;
        uint8_t *b = mbyte(m, (unsigned)(in_pages / 4096), (unsigned)(in_pages % 4096));
        if (write)
            *b = buf[j];
        else
            CHECK_EQ(buf[j], *b);
    }
    w->bytes_moved += len;
}

static void step(world *w)
{
    w->ops++;
    if (w->np == 0) {
        op_spawn(w);
        return;
    }
    unsigned i = (unsigned)rnd(w, w->np), r = (unsigned)rnd(w, 100);
    if (r < 3)
        op_spawn(w);
    else if (r < 6)
        op_fork(w, i);
    else if (r < 8)
        drop_proc(w, i);
    else if (r < 16)
        op_mmap(w, i);
    else if (r < 20)
        op_munmap(w, i);
    else if (r < 24)
        op_mprotect(w, i);
    else if (r < 40)
        op_access(w, i, r < 32);
    else if (r < 52)
        op_map(w, i);
    else if (r < 60)
        op_unmap(w);
    else if (r < 68)
        op_dma_phys(w, 2);
    else
        op_dma_translated(w, (unsigned)rnd(w, 2));
}

static void run_diff(uint64_t seed, unsigned nops)
{
    world *w = calloc(1, sizeof *w);
    REQUIRE_VOID(w && rig_up(&w->r, NULL, 4));
    vms_rng_seed(&w->rng, seed);
    vms_dev_config dc[2] = {{"dev1", vms_bdf_make(0, 6, 0), 0}, {"dev2", vms_bdf_make(0, 7, 0), 0}};
    w->dev[0] = w->r.raw;
    REQUIRE_VOID(vms_dev_create(w->r.m, w->r.io, &dc[0], &w->dev[1], NULL) == VMS_OK);
    REQUIRE_VOID(vms_dev_create(w->r.m, w->r.io, &dc[1], &w->dev[2], NULL) == VMS_OK);
    for (unsigned d = 0; d < NDEV; d++)
        REQUIRE_VOID(vms_dma_attach(w->r.k, w->dev[d],
                                    d == 2 ? VMS_DMA_PASSTHROUGH : VMS_DMA_TRANSLATE, &w->dd[d],
                                    NULL) == VMS_OK);
    for (unsigned n = 0; n < nops; n++) {
        step(w);
        vms_dma_poll_faults(w->r.k);
        if (!kcheck(w->r.k) || w->r.dmar_lines != w->expect_lines) {
            CHECK_EQ(w->r.dmar_lines, w->expect_lines);
            fprintf(stderr, "diff: seed %" PRIu64 " failed at op %lu\n", seed, w->ops);
            break;
        }
    }
    fprintf(stderr,
            "diff: seed %" PRIu64 ": %lu ops, %lu DMAs (%lu blocked), %lu bytes, %" PRIu64
            " maps, %" PRIu64 " pins\n",
            seed, w->ops, w->dmas, w->blocked, w->bytes_moved, vms_dma_get_stats(w->r.k)->maps,
            vms_dma_get_stats(w->r.k)->pins);
    CHECK(vms_dma_get_stats(w->r.k)->maps > 0 && w->blocked > 0);
    while (w->np)
        drop_proc(w, 0);
    for (unsigned d = 0; d < NDEV; d++)
        vms_dma_detach(w->r.k, w->dd[d]);
    kcheck(w->r.k);
    CHECK_EQ(vms_dma_get_stats(w->r.k)->pinned_pages, 0);
    CHECK_EQ(vms_dma_get_stats(w->r.k)->iova_pages, 0);
    CHECK_EQ(vms_dma_get_stats(w->r.k)->table_pages, 0);
    vms_dev_destroy(w->dev[1]);
    vms_dev_destroy(w->dev[2]);
    rig_down(&w->r, true);
    for (size_t i = 0; i < w->norphans; i++)
        free(w->orphans[i]);
    free(w->orphans);
    free(w);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "dma");
    test_map_dma_unmap();
    test_pinned_semantics();
    test_pinned_under_pressure();
    test_physical_and_rogue();
    test_rogue_reserved_bit();
    test_pin_swapped_shared();
    test_drivers();
    test_la57();
    test_alloc_failures();
    test_out_of_frames();
    for (unsigned i = 0; th_soak_more("VMS_DMA_SOAK", 6, i); i++)
        run_diff(th_seed + i, 1500);
    return th_finish();
}
