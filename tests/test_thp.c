/*
 * test_thp.c — huge pages (src/os/thp.c, hugetlb.c; docs/HUGEPAGES.md): transparent huge
 * pages on fault (thp = always / madvise / never, MADV_HUGEPAGE / NOHUGEPAGE), the huge
 * zero page, fallback without a free 2 MiB block, COW of a huge page (split or copy),
 * splitting by munmap / mprotect / mlock / MADV_DONTNEED of part of one, reclaim splitting
 * before it swaps or swapping it whole (thp.swap = whole), khugepaged collapsing 512 pages,
 * hugetlbfs pools with reservations, ENOMEM and SIGBUS, and the views (meminfo, smaps, pagemap,
 * --stats json members). On x86-64, RISC-V Sv39 and AArch64. Every test writes a pattern over every
 * byte it maps and checks every byte afterwards, runs vms_kernel_check after every step, and checks
 * that every frame is free again when its processes are gone.
 */
#include <stdio.h>

#include "harness.h"
#include "kernel_rig.h"
#include "vmsim/core.h"
#include "vmsim/frames.h"
#include "vmsim/machine.h"
#include "vmsim/mman.h"
#include "vmsim/swap.h"

#define MB     (UINT64_C(1) << 20)
#define HUGE   (UINT64_C(2) << 20)
#define AREA   UINT64_C(0x40000000) /* 1 GiB: 2 MiB aligned */
#define RW     (VMS_PROT_READ | VMS_PROT_WRITE)
#define ANONPR (VMS_MAP_PRIVATE | VMS_MAP_ANONYMOUS | VMS_MAP_FIXED)

static const char *g_preset = "skylake";

/* A 2-core machine of g_preset with `ram` bytes and 64 MiB of swap, its kernel changed
 * by `tune`. */
static bool rig_up(rig *r, uint64_t ram, void (*tune)(vms_kernel_config *))
{
    return rig_boot(r, g_preset, ram, 64 * MB, tune);
}

static const vms_kernel_stats *stats(rig *r)
{
    return vms_kernel_get_stats(r->k);
}

/* The byte the tests write at va (differs per page and per generation). */
static uint8_t pat(uint64_t va, unsigned gen)
{
    return (uint8_t)((va >> 12) * 131u + (va & 0xfff) * 7u + gen * 29u + 1u);
}

/* Write the pattern over [va, va + len) from task t (one access per page). */
static bool fill(rig *r, vms_task *t, uint64_t va, uint64_t len, unsigned gen)
{
    static uint8_t buf[4096];
    for (uint64_t p = va; p < va + len; p += 4096) {
        for (unsigned i = 0; i < 4096; i++)
            buf[i] = pat(p + i, gen);
        vms_access_info info;
        if (vms_proc_access(r->k, t, p, VMS_ACC_WRITE, buf, 4096, &info, NULL) != VMS_OK ||
            info.outcome != VMS_ACCESS_OK)
            return false;
    }
    return true;
}

/* Whether every byte of [va, va + len) reads as pattern gen (gen < 0: zeros). */
static bool same(rig *r, vms_task *t, uint64_t va, uint64_t len, int gen)
{
    static uint8_t buf[4096];
    for (uint64_t p = va; p < va + len; p += 4096) {
        vms_access_info info;
        if (vms_proc_access(r->k, t, p, VMS_ACC_READ, buf, 4096, &info, NULL) != VMS_OK ||
            info.outcome != VMS_ACCESS_OK)
            return false;
        for (unsigned i = 0; i < 4096; i++)
            if (buf[i] != (gen < 0 ? 0 : pat(p + i, (unsigned)gen))) {
                fprintf(stderr, "byte at %llx: %02x\n", (unsigned long long)(p + i), buf[i]);
                return false;
            }
    }
    return true;
}

/* A task with an anonymous private mapping [AREA, AREA + len), madvised huge when asked. */
static vms_task *proc_with(rig *r, uint64_t len, bool madv)
{
    vms_task *t;
    uint64_t va;
    if (vms_proc_spawn(r->k, "thp", 0, &t, NULL) != VMS_OK ||
        vms_sys_mmap(r->k, t, AREA, len, RW, ANONPR, NULL, 0, &va, NULL) != VMS_OK)
        return NULL;
    if (madv && vms_sys_madvise(r->k, t, AREA, len, VMS_MADV_HUGEPAGE, NULL) != VMS_OK)
        return NULL;
    return t;
}

/* The pagemap entry of va. */
static uint64_t pm(rig *r, vms_task *t, uint64_t va)
{
    uint64_t e = 0;
    vms_proc_pagemap(r->k, t, va, 1, &e);
    return e;
}

/* Whether text (meminfo, smaps) holds the line `line`. */
static bool has_line(rig *r, vms_task *t, const char *line)
{
    vms_strbuf sb;
    vms_strbuf_init(&sb, NULL);
    if (t)
        vms_proc_smaps(r->k, t, &sb);
    else
        vms_kernel_meminfo(r->k, &sb);
    bool found = strstr(vms_strbuf_str(&sb), line) != NULL;
    if (!found)
        fprintf(stderr, "no line '%s' in:\n%s", line, vms_strbuf_str(&sb));
    vms_strbuf_free(&sb);
    return found;
}

static void thp_always(vms_kernel_config *kc)
{
    kc->thp = VMS_THP_ALWAYS;
}

static void thp_never(vms_kernel_config *kc)
{
    kc->thp = VMS_THP_NEVER;
}

static void thp_copy(vms_kernel_config *kc)
{
    kc->thp_cow = VMS_THP_COW_COPY;
}

/* madvise (the default): a madvised range gets 2 MiB pages on its first write, one fault
 * per huge page; the rest of the mm and a plain mapping stay 4 KiB. */
static void test_fault_madvise(void)
{
    rig r;
    REQUIRE_VOID(rig_up(&r, 64 * MB, NULL));
    vms_task *t = proc_with(&r, 8 * MB, true);
    REQUIRE_VOID(t);
    uint64_t faults0 = stats(&r)->pgfault;
    CHECK(fill(&r, t, AREA, 8 * MB, 1));
    CHECK_EQ(stats(&r)->pgfault - faults0, 4); /* 4 huge pages, not 2048 faults */
    CHECK_EQ(stats(&r)->thp_anon_fault_alloc, 4);
    CHECK_EQ(stats(&r)->thp_fault_fallback, 0);
    CHECK(has_line(&r, NULL, "AnonHugePages:      8192 kB"));
    CHECK(has_line(&r, t, "AnonHugePages:      8192 kB"));
    /* pagemap: consecutive frames inside one huge page, a 2 MiB-aligned first frame. */
    uint64_t e0 = pm(&r, t, AREA), e1 = pm(&r, t, AREA + 4096 * 77);
    CHECK(e0 & VMS_PM_PRESENT);
    CHECK_EQ((e0 & VMS_PM_PFN_MASK) % 512, 0);
    CHECK_EQ((e1 & VMS_PM_PFN_MASK) - (e0 & VMS_PM_PFN_MASK), 77);
    CHECK(same(&r, t, AREA, 8 * MB, 1));
    rig_check(&r);
    /* A mapping without the advice: 4 KiB pages. */
    uint64_t va;
    CHECK_EQ(vms_sys_mmap(r.k, t, AREA + 64 * MB, 4 * MB, RW, ANONPR, NULL, 0, &va, NULL), VMS_OK);
    faults0 = stats(&r)->pgfault;
    CHECK(fill(&r, t, AREA + 64 * MB, 4 * MB, 2));
    CHECK_EQ(stats(&r)->pgfault - faults0, 1024);
    CHECK_EQ(stats(&r)->thp_anon_fault_alloc, 4);
    CHECK(same(&r, t, AREA + 64 * MB, 4 * MB, 2));
    vms_proc_exit(r.k, t);
    CHECK(has_line(&r, NULL, "AnonHugePages:         0 kB"));
    rig_down(&r);
}

/* thp = always: every aligned 2 MiB range of an anonymous VMA, except NOHUGEPAGE ones and
 * the unaligned ends; thp = never: none even when madvised. */
static void test_fault_always_never(void)
{
    rig r;
    REQUIRE_VOID(rig_up(&r, 64 * MB, thp_always));
    vms_task *t;
    uint64_t va;
    REQUIRE_VOID(vms_proc_spawn(r.k, "thp", 0, &t, NULL) == VMS_OK);
    /* [AREA + 1 MiB, AREA + 7 MiB): huge pages only at AREA + 2 MiB and + 4 MiB. */
    CHECK_EQ(vms_sys_mmap(r.k, t, AREA + MB, 6 * MB, RW, ANONPR, NULL, 0, &va, NULL), VMS_OK);
    CHECK(fill(&r, t, AREA + MB, 6 * MB, 3));
    CHECK_EQ(stats(&r)->thp_anon_fault_alloc, 2);
    CHECK_EQ(vms_sys_madvise(r.k, t, AREA + 32 * MB, 2 * MB, VMS_MADV_NOHUGEPAGE, NULL),
             VMS_ERR_RANGE); /* nothing mapped there */
    CHECK_EQ(vms_sys_mmap(r.k, t, AREA + 32 * MB, 4 * MB, RW, ANONPR, NULL, 0, &va, NULL), VMS_OK);
    CHECK_EQ(vms_sys_madvise(r.k, t, AREA + 32 * MB, 2 * MB, VMS_MADV_NOHUGEPAGE, NULL), VMS_OK);
    CHECK(fill(&r, t, AREA + 32 * MB, 4 * MB, 4));
    CHECK_EQ(stats(&r)->thp_anon_fault_alloc, 3); /* only the second half */
    CHECK(same(&r, t, AREA + MB, 6 * MB, 3));
    CHECK(same(&r, t, AREA + 32 * MB, 4 * MB, 4));
    rig_check(&r);
    vms_proc_exit(r.k, t);
    rig_down(&r);

    REQUIRE_VOID(rig_up(&r, 64 * MB, thp_never));
    t = proc_with(&r, 4 * MB, true);
    REQUIRE_VOID(t);
    CHECK(fill(&r, t, AREA, 4 * MB, 5));
    CHECK_EQ(stats(&r)->thp_anon_fault_alloc, 0);
    CHECK(same(&r, t, AREA, 4 * MB, 5));
    vms_proc_exit(r.k, t);
    rig_down(&r);
}

/* A read maps the huge zero page (one fault for 2 MiB of zeros); a write then splits it
 * into 512 zero-page PTEs and copies one 4 KiB page (Linux). The zero page goes with its
 * last mapping. */
static void test_huge_zero(void)
{
    rig r;
    REQUIRE_VOID(rig_up(&r, 64 * MB, NULL));
    vms_task *t = proc_with(&r, 4 * MB, true);
    REQUIRE_VOID(t);
    uint64_t f0 = stats(&r)->pgfault;
    CHECK(same(&r, t, AREA, 4 * MB, -1));
    CHECK_EQ(stats(&r)->pgfault - f0, 2);
    CHECK_EQ(stats(&r)->thp_zero_page_alloc, 1);
    CHECK(has_line(&r, NULL, "AnonHugePages:         0 kB")); /* never counted */
    uint8_t b = 0x5a;
    vms_access_info info;
    CHECK_EQ(vms_proc_access(r.k, t, AREA + 4096 * 3 + 7, VMS_ACC_WRITE, &b, 1, &info, NULL),
             VMS_OK);
    CHECK_EQ(stats(&r)->thp_split_pmd, 1);
    CHECK_EQ(stats(&r)->cow_copy, 1);
    uint8_t got = 0;
    CHECK_EQ(vms_proc_access(r.k, t, AREA + 4096 * 3 + 7, VMS_ACC_READ, &got, 1, &info, NULL),
             VMS_OK);
    CHECK_EQ(got, 0x5a);
    CHECK_EQ(vms_proc_access(r.k, t, AREA + 4096 * 3 + 8, VMS_ACC_READ, &got, 1, &info, NULL),
             VMS_OK);
    CHECK_EQ(got, 0);
    rig_check(&r);
    vms_proc_exit(r.k, t);
    rig_down(&r); /* the huge zero page was freed with its last mapping */
}

/* No free 2 MiB block: the fault falls back to 4 KiB (thp_fault_fallback). */
static void test_fallback(void)
{
    rig r;
    REQUIRE_VOID(rig_up(&r, 16 * MB, NULL));
    /* Pin down every free 2 MiB block's worth by holding one frame of each. */
    vms_frames *fr = vms_kernel_frames(r.k);
    uint64_t held[4096], nheld = 0, pfn;
    while (nheld < 4096 && vms_frames_alloc(fr, 9, &pfn, NULL) == VMS_OK)
        held[nheld++] = pfn;
    for (uint64_t i = 0; i < nheld; i++) { /* keep one 4 KiB frame of each: fragmented */
        vms_frames_split(fr, held[i], 1, NULL);
        for (uint64_t j = 1; j < 512; j += 2)
            vms_frames_put(fr, held[i] + j, NULL);
    }
    vms_task *t = proc_with(&r, 2 * MB, true);
    REQUIRE_VOID(t);
    CHECK(fill(&r, t, AREA, 64 * 4096, 6));
    CHECK_EQ(stats(&r)->thp_anon_fault_alloc, 0);
    CHECK(stats(&r)->thp_fault_fallback >= 1);
    CHECK(same(&r, t, AREA, 64 * 4096, 6));
    vms_proc_exit(r.k, t);
    for (uint64_t i = 0; i < nheld; i++)
        for (uint64_t j = 0; j < 512; j += 2)
            vms_frames_put(fr, held[i] + j, NULL);
    rig_down(&r);
}

/* COW of a huge page after fork: split (default) or copy whole; both sides keep their
 * bytes; the last writer reuses. */
static void cow_case(void (*tune)(vms_kernel_config *), bool copy)
{
    rig r;
    REQUIRE_VOID(rig_up(&r, 64 * MB, tune));
    vms_task *t = proc_with(&r, 4 * MB, true), *c;
    REQUIRE_VOID(t);
    CHECK(fill(&r, t, AREA, 4 * MB, 7));
    CHECK_EQ(vms_proc_fork(r.k, t, &c, NULL), VMS_OK);
    rig_check(&r);
    CHECK(fill(&r, c, AREA + 2 * MB, 4096, 8)); /* the child writes one page */
    rig_check(&r);
    if (copy) {
        CHECK_EQ(stats(&r)->thp_cow_copy, 1);
        CHECK_EQ(stats(&r)->thp_split_page, 0);
    } else { /* Linux: only the child's PMD is split; the page stays whole */
        CHECK_EQ(stats(&r)->thp_split_page, 0);
        CHECK_EQ(stats(&r)->thp_split_pmd, 1);
        CHECK(has_line(&r, c, "AnonHugePages:      2048 kB")); /* its first 2 MiB only */
    }
    CHECK(same(&r, t, AREA, 4 * MB, 7));
    CHECK(same(&r, c, AREA, 2 * MB, 7));
    CHECK(same(&r, c, AREA + 2 * MB, 4096, 8));
    CHECK(same(&r, c, AREA + 2 * MB + 4096, 2 * MB - 4096, 7));
    CHECK(fill(&r, t, AREA, 4 * MB, 9)); /* the parent writes everything */
    CHECK(same(&r, c, AREA, 2 * MB, 7));
    CHECK(same(&r, t, AREA, 4 * MB, 9));
    rig_check(&r);
    if (!copy) { /* the parent's PMDs split too; the second page, which the child maps
                  * but the first subpage of, became partially mapped: queued */
        CHECK_EQ(stats(&r)->thp_split_pmd, 3);
        CHECK_EQ(stats(&r)->thp_deferred_split_page, 1);
        CHECK_EQ(stats(&r)->thp_split_page, 0);
    }
    vms_proc_exit(r.k, c);
    if (!copy) /* its last mappings went: freed whole, never split */
        CHECK_EQ(stats(&r)->thp_split_page, 0);
    vms_proc_exit(r.k, t);
    rig_down(&r);
}

static void test_cow(void)
{
    cow_case(NULL, false);
    cow_case(thp_copy, true);
}

/* Free frames now. */
/* munmap, mprotect, mlock and DONTNEED of part of a huge page split only its PMD (Linux
 * __split_huge_pmd: a PTE-mapped THP, the page whole); whole ones split nothing. The
 * unmapped subpages stay allocated (not AnonPages, not free) until the deferred split
 * queue's shrinker splits the page and frees them. */
static void test_split(void)
{
    rig r;
    REQUIRE_VOID(rig_up(&r, 64 * MB, NULL));
    vms_task *t = proc_with(&r, 8 * MB, true);
    REQUIRE_VOID(t);
    CHECK(fill(&r, t, AREA, 8 * MB, 10));
    CHECK_EQ(stats(&r)->thp_anon_fault_alloc, 4);
    CHECK(has_line(&r, NULL, "AnonHugePages:      8192 kB"));
    /* munmap of 3 pages inside the first huge page. */
    uint64_t free0 = rig_nfree(&r);
    CHECK_EQ(vms_sys_munmap(r.k, t, AREA + 4096 * 10, 3 * 4096, NULL), VMS_OK);
    CHECK_EQ(stats(&r)->thp_split_page, 0);
    CHECK_EQ(stats(&r)->thp_split_pmd, 1);
    CHECK_EQ(stats(&r)->thp_deferred_split_page, 1);
    CHECK_EQ(rig_nfree(&r), free0 - 1); /* one PTE table more, no frame freed */
    CHECK(has_line(&r, NULL, "AnonHugePages:      6144 kB"));
    CHECK(has_line(&r, NULL, "AnonPages:          8180 kB")); /* 3 unmapped subpages */
    CHECK(has_line(&r, t, "AnonHugePages:      6144 kB"));    /* smaps: PMD-mapped only */
    CHECK_EQ(vms_proc_rss(r.k, t), 2048 - 3);
    rig_check(&r);
    CHECK(same(&r, t, AREA, 10 * 4096, 10));
    CHECK(same(&r, t, AREA + 13 * 4096, 2 * MB - 13 * 4096, 10));
    /* The shrinker splits it: the 3 subpages are freed, the others keep their bytes. */
    uint64_t nsplit = 0;
    CHECK_EQ(vms_kernel_thp_deferred_split(r.k, 0, &nsplit), 3);
    CHECK_EQ(nsplit, 1);
    CHECK_EQ(stats(&r)->thp_split_page, 1);
    CHECK_EQ(rig_nfree(&r), free0 - 1 + 3);
    CHECK(has_line(&r, NULL, "AnonPages:          8180 kB"));
    CHECK_EQ(vms_kernel_thp_deferred_split(r.k, 0, NULL), 0); /* the queue is empty */
    rig_check(&r);
    CHECK(same(&r, t, AREA, 10 * 4096, 10));
    CHECK(same(&r, t, AREA + 13 * 4096, 2 * MB - 13 * 4096, 10));
    vms_access_info info;
    uint8_t b;
    CHECK_EQ(vms_proc_access(r.k, t, AREA + 4096 * 11, VMS_ACC_READ, &b, 1, &info, NULL), VMS_OK);
    CHECK_EQ(info.outcome, VMS_ACCESS_SEGV);
    t = info.outcome == VMS_ACCESS_SEGV ? NULL : t;
    REQUIRE_VOID(!t); /* the process died: start again */
    t = proc_with(&r, 8 * MB, true);
    REQUIRE_VOID(t);
    CHECK(fill(&r, t, AREA, 8 * MB, 11));
    uint64_t p0 = stats(&r)->thp_split_pmd, q0 = stats(&r)->thp_deferred_split_page;
    /* mprotect of a whole huge page: no split; of half of one: the PMD only, and
     * nothing is unmapped, so nothing is queued (Linux). */
    CHECK_EQ(vms_sys_mprotect(r.k, t, AREA + 2 * MB, 2 * MB, VMS_PROT_READ, NULL), VMS_OK);
    CHECK_EQ(stats(&r)->thp_split_pmd, p0);
    CHECK_EQ(vms_sys_mprotect(r.k, t, AREA + 4 * MB, MB, VMS_PROT_READ, NULL), VMS_OK);
    CHECK_EQ(stats(&r)->thp_split_pmd, p0 + 1);
    CHECK_EQ(stats(&r)->thp_deferred_split_page, q0);
    CHECK_EQ(stats(&r)->thp_split_page, 1);
    rig_check(&r);
    CHECK(same(&r, t, AREA, 8 * MB, 11));
    CHECK_EQ(vms_proc_access(r.k, t, AREA + 4 * MB + 5, VMS_ACC_WRITE, &b, 1, &info, NULL), VMS_OK);
    CHECK_EQ(info.outcome, VMS_ACCESS_SEGV);
    t = proc_with(&r, 8 * MB, true);
    REQUIRE_VOID(t);
    CHECK(fill(&r, t, AREA, 8 * MB, 12));
    p0 = stats(&r)->thp_split_pmd;
    q0 = stats(&r)->thp_deferred_split_page;
    CHECK_EQ(vms_sys_mlock(r.k, t, AREA + 6 * MB + 4096, 4096, NULL), VMS_OK);
    CHECK_EQ(stats(&r)->thp_split_pmd, p0 + 1);
    CHECK_EQ(vms_sys_madvise(r.k, t, AREA + MB, 4096 * 5, VMS_MADV_DONTNEED, NULL), VMS_OK);
    CHECK_EQ(stats(&r)->thp_split_pmd, p0 + 2);
    CHECK_EQ(stats(&r)->thp_deferred_split_page, q0 + 1); /* DONTNEED unmapped 5 pages */
    rig_check(&r);
    CHECK(same(&r, t, AREA, MB, 12));
    CHECK(same(&r, t, AREA + MB, 5 * 4096, -1)); /* refaulted as new zero pages */
    CHECK(same(&r, t, AREA + MB + 5 * 4096, 7 * MB - 5 * 4096, 12));
    rig_check(&r);
    /* The refaults mapped 5 new pages; the old page is still partially mapped. */
    CHECK_EQ(vms_kernel_thp_deferred_split(r.k, 0, NULL), 5);
    rig_check(&r);
    CHECK(same(&r, t, AREA, MB, 12));
    CHECK(same(&r, t, AREA + MB + 5 * 4096, 7 * MB - 5 * 4096, 12));
    /* A partially mapped page whose last PTEs go is freed whole, never split. */
    uint64_t s0 = stats(&r)->thp_split_page;
    CHECK_EQ(vms_sys_munmap(r.k, t, AREA + 4 * MB, 4096, NULL), VMS_OK);
    CHECK_EQ(stats(&r)->thp_deferred_split_page, q0 + 2);
    CHECK_EQ(vms_sys_munmap(r.k, t, AREA + 4 * MB, 2 * MB, NULL), VMS_OK);
    CHECK_EQ(stats(&r)->thp_split_page, s0);
    CHECK_EQ(vms_kernel_thp_deferred_split(r.k, 0, NULL), 0);
    rig_check(&r);
    vms_proc_exit(r.k, t);
    rig_down(&r);
}

/* PROT_NONE over a whole huge page keeps it PMD-mapped (Linux's PROT_NONE PMD: not
 * present, frame kept; on AArch64 a block descriptor without VALID, PTE_PROT_NONE set):
 * no split, the rss and AnonHugePages unchanged, the kernel's walks still find the leaf
 * (vms_kernel_check's rmap walk; exit frees it), and the bytes are back with PROT_READ. */
static void test_protnone(void)
{
    rig r;
    REQUIRE_VOID(rig_up(&r, 64 * MB, NULL));
    vms_task *t = proc_with(&r, 4 * MB, true);
    REQUIRE_VOID(t);
    CHECK(fill(&r, t, AREA, 4 * MB, 13));
    CHECK_EQ(stats(&r)->thp_anon_fault_alloc, 2);
    CHECK_EQ(vms_sys_mprotect(r.k, t, AREA, 2 * MB, VMS_PROT_NONE, NULL), VMS_OK);
    CHECK_EQ(stats(&r)->thp_split_pmd, 0);
    CHECK_EQ(vms_proc_rss(r.k, t), 1024);
    CHECK(has_line(&r, t, "AnonHugePages:      2048 kB")); /* smaps: the PROT_NONE VMA's */
    CHECK(has_line(&r, NULL, "AnonHugePages:      4096 kB"));
    rig_check(&r);
    CHECK_EQ(vms_sys_mprotect(r.k, t, AREA, 2 * MB, VMS_PROT_READ, NULL), VMS_OK);
    rig_check(&r);
    CHECK(same(&r, t, AREA, 4 * MB, 13));
    CHECK_EQ(stats(&r)->thp_split_pmd, 0);
    vms_proc_exit(r.k, t);
    rig_down(&r);
}

/* Reclaim splits a huge page before it swaps (thp_split_page), and every byte comes back. */
static void test_reclaim(void)
{
    rig r;
    REQUIRE_VOID(rig_up(&r, 64 * MB, NULL));
    vms_task *t = proc_with(&r, 8 * MB, true);
    REQUIRE_VOID(t);
    CHECK(fill(&r, t, AREA, 8 * MB, 13));
    uint64_t got = 0;
    vms_kernel_reclaim(r.k, 3000, &got);
    CHECK(got > 0);
    CHECK(stats(&r)->thp_split_page >= 1);
    CHECK(stats(&r)->pswpout > 0);
    rig_check(&r);
    CHECK(same(&r, t, AREA, 8 * MB, 13));
    CHECK(stats(&r)->pswpin > 0);
    rig_check(&r);
    vms_proc_exit(r.k, t);
    rig_down(&r);
}

static void swap_whole(vms_kernel_config *kc)
{
    kc->thp_swap = VMS_THP_SWAP_WHOLE;
}

static void swap_whole_tiny(vms_kernel_config *kc)
{
    kc->thp_swap = VMS_THP_SWAP_WHOLE;
    kc->swap_bytes = 2 * MB; /* 512 slots: one cluster, the header's: none free */
}

/* The swap offset of a pagemap entry of a swapped page (bits 5-54; 0 if not swapped). */
static uint64_t pm_slot(uint64_t e)
{
    return (e & VMS_PM_SWAPPED) ? (e & VMS_PM_PFN_MASK) >> 5 : 0;
}

/* Whether the 512 pages at va (of t) are swap entries of one cluster in order: subpage i
 * at slot0 + i, slot0 a multiple of 512; and whether the swap file holds their bytes
 * (pattern gen) at those slots. */
static bool in_one_cluster(rig *r, vms_task *t, uint64_t va, unsigned gen)
{
    uint64_t slot0 = pm_slot(pm(r, t, va));
    if (!slot0 || slot0 % 512)
        return false;
    for (uint64_t i = 0; i < 512; i++)
        if (pm_slot(pm(r, t, va + i * 4096)) != slot0 + i)
            return false;
    vms_swap_info si;
    vms_swap_get_info(r->k, &si);
    FILE *f = fopen(si.path, "rb");
    static uint8_t buf[4096];
    bool ok = f != NULL;
    for (uint64_t i = 0; ok && i < 512; i++) {
        ok = fseek(f, (long)((slot0 + i) * 4096), SEEK_SET) == 0 && fread(buf, 1, 4096, f) == 4096;
        for (unsigned j = 0; ok && j < 4096; j++)
            ok = buf[j] == pat(va + i * 4096 + j, gen);
    }
    if (f)
        fclose(f);
    return ok;
}

static uint64_t swap_free_pages(rig *r)
{
    vms_swap_info si;
    vms_swap_get_info(r->k, &si);
    return si.free_pages;
}

/*
 * thp.swap = whole (CONFIG_THP_SWAP): reclaim writes a huge page to one free swap cluster
 * (512 consecutive slots, one request) — PMD-mapped, PTE-mapped but whole, or mapped by
 * a fork child too — and frees its 512 frames; the swap file holds its bytes; faults
 * read it back as 4 KiB pages (Linux 6.x). A partially mapped page is split instead
 * (without thp_swpout_fallback), as is one with no free cluster (with it); a write error
 * keeps the page whole and mapped.
 */
static void whole_case(int how)
{
    rig r;
    REQUIRE_VOID(rig_up(&r, 64 * MB, how == 4 ? swap_whole_tiny : swap_whole));
    vms_task *t = proc_with(&r, 2 * MB, true), *c = NULL;
    REQUIRE_VOID(t);
    CHECK(fill(&r, t, AREA, 2 * MB, 20));
    CHECK_EQ(stats(&r)->thp_anon_fault_alloc, 1);
    uint64_t sw0 = swap_free_pages(&r);
    if (how == 1) /* PTE-mapped, every subpage mapped: swapped whole too */
        CHECK_EQ(vms_sys_mprotect(r.k, t, AREA, MB, VMS_PROT_READ, NULL), VMS_OK);
    if (how == 2)
        CHECK_EQ(vms_proc_fork(r.k, t, &c, NULL), VMS_OK);
    if (how == 3) /* partially mapped: split right away */
        CHECK_EQ(vms_sys_munmap(r.k, t, AREA + 7 * 4096, 4096, NULL), VMS_OK);
    if (how == 5) /* every write fails (the pass retries the page it rotated) */
        CHECK_EQ(vms_swap_inject_error(r.k, VMS_SWAP_IO_WRITE, 0, 100, NULL), VMS_OK);
    rig_check(&r);
    uint64_t free0 = rig_nfree(&r), got = 0, pmd0 = stats(&r)->thp_split_pmd;
    vms_kernel_reclaim(r.k, 1, &got);
    rig_check(&r);
    const vms_kernel_stats *ks = stats(&r);
    bool whole = how <= 2;
    CHECK_EQ(ks->thp_swpout, whole ? 1 : 0);
    CHECK_EQ(ks->thp_swpout_fallback, how == 4 ? 1 : 0);
    CHECK_EQ(ks->thp_split_page, how == 3 || how == 4 ? 1 : 0);
    CHECK_EQ(ks->swap_write_errors > 0, how == 5);
    if (whole) {
        /* Each PMD split first (TTU_SPLIT_HUGE_PMD): its table stays, holding the swap
         * entries; the 2 MiB block is free. */
        uint64_t pmds = how == 0 ? 1 : how == 2 ? 2 : 0;
        CHECK_EQ(got, 512);
        CHECK_EQ(ks->pswpout, 512);
        CHECK_EQ(ks->thp_split_pmd, pmd0 + pmds);
        CHECK_EQ(rig_nfree(&r), free0 + 512 - pmds);
        CHECK_EQ(swap_free_pages(&r), sw0 - 512);
        CHECK(in_one_cluster(&r, t, AREA, 20));
        CHECK(!c || in_one_cluster(&r, c, AREA, 20)); /* the child's entries: the same slots */
        CHECK(has_line(&r, NULL, "AnonHugePages:         0 kB"));
        CHECK_EQ(vms_proc_rss(r.k, t), 0);
        /* As Linux's try_to_unmap_one, the PTEs went one at a time: the page was
         * partially mapped for a moment (queued, counted), and left the queue freed. */
        CHECK_EQ(ks->thp_deferred_split_page, 1);
        CHECK_EQ(vms_kernel_thp_deferred_split(r.k, 0, NULL), 0);
    }
    if (how == 5) { /* kept, whole and mapped (PTE-mapped now); the next try swaps it */
        CHECK_EQ(got, 0);
        CHECK_EQ(ks->pswpout, 0);
        CHECK_EQ(swap_free_pages(&r), sw0);
        CHECK_EQ(vms_proc_rss(r.k, t), 512);
        CHECK(same(&r, t, AREA, 2 * MB, 20));
        CHECK_EQ(vms_swap_inject_error(r.k, VMS_SWAP_IO_WRITE, 0, 0, NULL), VMS_OK);
        vms_kernel_reclaim(r.k, 1, &got);
        rig_check(&r);
        CHECK_EQ(got, 512);
        CHECK_EQ(ks->thp_swpout, 1);
        CHECK(in_one_cluster(&r, t, AREA, 20));
    }
    /* Every byte comes back, 4 KiB at a time (the child's through the swap cache). */
    if (c)
        CHECK(same(&r, c, AREA, 2 * MB, 20));
    if (how == 3) {
        CHECK(same(&r, t, AREA, 7 * 4096, 20));
        CHECK(same(&r, t, AREA + 8 * 4096, 2 * MB - 8 * 4096, 20));
    } else {
        CHECK(same(&r, t, AREA, 2 * MB, 20));
    }
    rig_check(&r);
    CHECK_EQ(ks->thp_swpin, 0);
    CHECK_EQ(ks->thp_swpin_fallback, whole || how == 5 ? 1 : 0);
    if (whole || how == 5) {
        CHECK_EQ(ks->pswpin, 512);
        CHECK_EQ(ks->swapcache_hits, c ? 512 : 0);
        CHECK_EQ(swap_free_pages(&r), sw0);
    }
    if (c) { /* COW after the swap-in: each side keeps its bytes */
        CHECK(fill(&r, c, AREA, MB, 21));
        CHECK(same(&r, t, AREA, 2 * MB, 20));
        CHECK(same(&r, c, AREA, MB, 21));
        rig_check(&r);
        vms_proc_exit(r.k, c);
    }
    vms_proc_exit(r.k, t);
    CHECK_EQ(swap_free_pages(&r), sw0);
    rig_down(&r);
}

static void test_swap_whole(void)
{
    for (int how = 0; how < 6; how++)
        whole_case(how);
}

/* khugepaged collapses 512 4 KiB pages (some empty: max_ptes_none) into a huge page. */
static void test_collapse(void)
{
    rig r;
    REQUIRE_VOID(rig_up(&r, 64 * MB, NULL));
    vms_task *t = proc_with(&r, 4 * MB, false); /* 4 KiB pages first */
    REQUIRE_VOID(t);
    CHECK(fill(&r, t, AREA, 2 * MB, 14));
    CHECK(fill(&r, t, AREA + 2 * MB, MB, 15)); /* half of the second range */
    CHECK_EQ(vms_kernel_khugepaged(r.k), 0);   /* not madvised: nothing to do */
    CHECK_EQ(vms_sys_madvise(r.k, t, AREA, 4 * MB, VMS_MADV_HUGEPAGE, NULL), VMS_OK);
    CHECK_EQ(vms_kernel_khugepaged(r.k), 2);
    CHECK_EQ(stats(&r)->thp_collapse_alloc, 2);
    CHECK(has_line(&r, NULL, "AnonHugePages:      4096 kB"));
    rig_check(&r);
    CHECK(same(&r, t, AREA, 2 * MB, 14));
    CHECK(same(&r, t, AREA + 2 * MB, MB, 15));
    CHECK(same(&r, t, AREA + 3 * MB, MB, -1));
    uint64_t e0 = pm(&r, t, AREA + 2 * MB), e1 = pm(&r, t, AREA + 3 * MB + 4096);
    CHECK_EQ((e1 & VMS_PM_PFN_MASK) - (e0 & VMS_PM_PFN_MASK), 257);
    vms_proc_exit(r.k, t);
    rig_down(&r);
}

/* What the shootdown hook saw last. */
typedef struct sd_seen {
    unsigned n, initiator;
    const char *daemon;
} sd_seen;

static void on_sd(void *ud, const vms_shootdown_event *ev)
{
    sd_seen *s = ud;
    s->n++;
    s->initiator = ev->initiator;
    s->daemon = ev->daemon;
}

/* A collapse by khugepaged with no core shoots down the other core's entries: the event
 * names khugepaged (the narration said "kswapd" for every coreless initiator). */
static void test_khugepaged_shootdown(void)
{
    rig r;
    REQUIRE_VOID(rig_up(&r, 64 * MB, NULL));
    vms_task *t = proc_with(&r, 2 * MB, false), *t1;
    REQUIRE_VOID(t);
    CHECK_EQ(vms_proc_clone_thread(r.k, t, 1, &t1, NULL), VMS_OK);
    CHECK(fill(&r, t, AREA, 2 * MB, 16));
    CHECK(same(&r, t1, AREA, 2 * MB, 16)); /* core 1 caches translations too */
    CHECK_EQ(vms_sys_madvise(r.k, t, AREA, 2 * MB, VMS_MADV_HUGEPAGE, NULL), VMS_OK);
    sd_seen seen = {0, 0, NULL};
    vms_kernel_set_shootdown_hook(r.k, on_sd, &seen);
    CHECK_EQ(vms_kernel_khugepaged(r.k), 1);
    CHECK(seen.n >= 1);
    CHECK_EQ(seen.initiator, UINT32_MAX);
    CHECK(seen.daemon && strcmp(seen.daemon, "khugepaged") == 0);
    vms_kernel_set_shootdown_hook(r.k, NULL, NULL);
    CHECK(same(&r, t1, AREA, 2 * MB, 16));
    vms_proc_exit(r.k, t);
    rig_down(&r);
}

/* The machine's time: the latest core clock (what khugepaged's timer reads). */
static uint64_t now_of(rig *r)
{
    uint64_t now = 0;
    for (unsigned c = 0; c < 2; c++) {
        uint64_t t = vms_core_cycles(vms_machine_core(r->m, c));
        now = t > now ? t : now;
    }
    return now;
}

static void timer_1m(vms_kernel_config *kc)
{
    kc->khugepaged_sleep = 1000000;
    kc->khugepaged_pages = 512; /* one 2 MiB range per run */
}

static void timer_off(vms_kernel_config *kc)
{
    kc->khugepaged_sleep = 0;
}

/* Kernel entries (4 KiB write faults in a region khugepaged cannot collapse) until
 * khugepaged's timer has run `runs` times or `max` entries; the time of the last entry. */
static uint64_t enter_until(rig *r, vms_task *t, uint64_t runs, uint64_t max, uint64_t *next)
{
    uint64_t before = now_of(r);
    for (uint64_t i = 0; i < max && stats(r)->thp_khugepaged_timer_runs < runs; i++) {
        before = now_of(r);
        CHECK(fill(r, t, AREA + 64 * MB + (((*next)++) << 12), 4096, 30));
    }
    return before;
}

/* khugepaged on its timer: with khugepaged.sleep = 1M cycles and pages_to_scan = 512, it
 * runs at the first kernel entry after each sleep, one collapse per run, never sooner;
 * with sleep 0 it never runs by itself. The scenario command and show view are in
 * tests/cli (thp.sh). */
static void test_khugepaged_timer(void)
{
    rig r;
    REQUIRE_VOID(rig_up(&r, 128 * MB, timer_1m));
    vms_task *t = proc_with(&r, 8 * MB, false);
    REQUIRE_VOID(t);
    uint64_t va;
    CHECK_EQ(vms_sys_mmap(r.k, t, AREA + 64 * MB, 32 * MB, RW, ANONPR, NULL, 0, &va, NULL), VMS_OK);
    CHECK_EQ(vms_sys_madvise(r.k, t, AREA + 64 * MB, 32 * MB, VMS_MADV_NOHUGEPAGE, NULL), VMS_OK);
    CHECK(fill(&r, t, AREA, 4 * MB, 31));              /* 4 KiB pages: not madvised yet */
    CHECK_EQ(stats(&r)->thp_khugepaged_timer_runs, 0); /* no work: no run */
    CHECK_EQ(vms_sys_madvise(r.k, t, AREA, 8 * MB, VMS_MADV_HUGEPAGE, NULL), VMS_OK);
    uint64_t next = 0;
    enter_until(&r, t, 1, 4000, &next);
    CHECK_EQ(stats(&r)->thp_khugepaged_timer_runs, 1);
    CHECK_EQ(stats(&r)->thp_collapse_alloc, 1);
    rig_check(&r);
    uint64_t after1 = now_of(&r);
    uint64_t t2 = enter_until(&r, t, 2, 4000, &next);
    CHECK_EQ(stats(&r)->thp_khugepaged_timer_runs, 2);
    CHECK_EQ(stats(&r)->thp_collapse_alloc, 2);
    CHECK(t2 + 1 >= after1 + 1000000 - 200000); /* it slept (the entry before ran late) */
    CHECK(t2 < after1 + 1000000 + 200000);      /* … and ran at the first entry after */
    CHECK(has_line(&r, t, "AnonHugePages:      4096 kB"));
    enter_until(&r, t, 5, 8000, &next); /* the other two ranges are huge, then the end */
    CHECK_EQ(stats(&r)->thp_collapse_alloc, 2);
    CHECK(stats(&r)->thp_khugepaged_full_scans >= 1);
    CHECK(same(&r, t, AREA, 4 * MB, 31));
    CHECK(same(&r, t, AREA + 4 * MB, 4 * MB, -1));
    rig_check(&r);
    vms_strbuf sb;
    vms_strbuf_init(&sb, NULL);
    CHECK_EQ(vms_kernel_khugepaged_show(r.k, &sb), VMS_OK);
    CHECK(strstr(vms_strbuf_str(&sb), "pages_collapsed    2\n") != NULL);
    CHECK(strstr(vms_strbuf_str(&sb), "scan_sleep_cycles  1000000\n") != NULL);
    vms_strbuf_free(&sb);
    vms_proc_exit(r.k, t);
    rig_down(&r);

    REQUIRE_VOID(rig_up(&r, 128 * MB, timer_off)); /* sleep 0: only when called */
    t = proc_with(&r, 8 * MB, false);
    REQUIRE_VOID(t);
    CHECK(fill(&r, t, AREA, 4 * MB, 32));
    CHECK_EQ(vms_sys_madvise(r.k, t, AREA, 8 * MB, VMS_MADV_HUGEPAGE, NULL), VMS_OK);
    CHECK(fill(&r, t, AREA + 4 * MB, 4 * MB, 33)); /* huge faults, many cycles */
    CHECK(now_of(&r) > 1000000);
    CHECK_EQ(stats(&r)->thp_khugepaged_scans, 0);
    CHECK_EQ(vms_kernel_khugepaged(r.k), 2);
    vms_proc_exit(r.k, t);
    rig_down(&r);
}

static void swap_limit0(vms_kernel_config *kc)
{
    kc->thp_max_ptes_swap = 0;
}

static void shared_all(vms_kernel_config *kc)
{
    kc->thp_max_ptes_shared = 511;
}

/* How many of the 512 pages at va are swapped out (pagemap). */
static uint64_t nswapped(rig *r, vms_task *t, uint64_t va)
{
    uint64_t n = 0;
    for (uint64_t i = 0; i < 512; i++)
        n += (pm(r, t, va + (i << 12)) & VMS_PM_SWAPPED) != 0;
    return n;
}

/* max_ptes_swap: a range with some pages on swap collapses (their bytes read back) while
 * they are at most max_ptes_swap (64), and not with max_ptes_swap = 0. */
static void swap_case(void (*tune)(vms_kernel_config *), bool collapses)
{
    rig r;
    REQUIRE_VOID(rig_up(&r, 64 * MB, tune));
    vms_task *t = proc_with(&r, 2 * MB, false);
    REQUIRE_VOID(t);
    CHECK(fill(&r, t, AREA, 2 * MB, 34));
    uint64_t got = 0;
    vms_kernel_reclaim(r.k, 40, &got);
    uint64_t sw = nswapped(&r, t, AREA);
    CHECK(sw > 0 && sw <= 64);
    rig_check(&r);
    CHECK_EQ(vms_sys_madvise(r.k, t, AREA, 2 * MB, VMS_MADV_HUGEPAGE, NULL), VMS_OK);
    uint64_t in0 = stats(&r)->pswpin;
    CHECK_EQ(vms_kernel_khugepaged(r.k), collapses ? 1 : 0);
    CHECK_EQ(stats(&r)->thp_collapse_swapin, collapses ? sw : 0);
    CHECK(stats(&r)->pswpin - in0 <= (collapses ? sw : 0));
    CHECK_EQ(nswapped(&r, t, AREA), collapses ? 0 : sw);
    rig_check(&r);
    CHECK(same(&r, t, AREA, 2 * MB, 34));
    CHECK(
        has_line(&r, t, collapses ? "AnonHugePages:      2048 kB" : "AnonHugePages:         0 kB"));
    vms_proc_exit(r.k, t);
    rig_down(&r);
}

/* max_ptes_shared: after fork, the child rewrites 100 pages (its own copies now); the
 * parent's other 412 are shared, over the default 256: no collapse; with 511 the parent's
 * range collapses into a copy, the child keeps the old pages and both keep their bytes. */
static void shared_case(void (*tune)(vms_kernel_config *), bool collapses)
{
    rig r;
    REQUIRE_VOID(rig_up(&r, 64 * MB, tune));
    vms_task *t = proc_with(&r, 2 * MB, false), *c;
    REQUIRE_VOID(t);
    CHECK(fill(&r, t, AREA, 2 * MB, 35));
    CHECK_EQ(vms_proc_fork(r.k, t, &c, NULL), VMS_OK);
    CHECK(fill(&r, c, AREA, 100 * 4096, 36));
    CHECK_EQ(vms_sys_madvise(r.k, t, AREA, 2 * MB, VMS_MADV_HUGEPAGE, NULL), VMS_OK);
    rig_check(&r);
    CHECK_EQ(vms_kernel_khugepaged(r.k), collapses ? 1 : 0);
    CHECK_EQ(stats(&r)->thp_collapse_shared, collapses ? 412 : 0);
    rig_check(&r);
    CHECK(same(&r, t, AREA, 2 * MB, 35));
    CHECK(same(&r, c, AREA, 100 * 4096, 36));
    CHECK(same(&r, c, AREA + 100 * 4096, 2 * MB - 100 * 4096, 35));
    CHECK(fill(&r, t, AREA, 2 * MB, 37)); /* the parent writes: the child is unchanged */
    CHECK(same(&r, c, AREA + 100 * 4096, 2 * MB - 100 * 4096, 35));
    CHECK(
        has_line(&r, t, collapses ? "AnonHugePages:      2048 kB" : "AnonHugePages:         0 kB"));
    rig_check(&r);
    vms_proc_exit(r.k, c);
    vms_proc_exit(r.k, t);
    rig_down(&r);
}

static void test_collapse_limits(void)
{
    swap_case(NULL, true);
    swap_case(swap_limit0, false);
    shared_case(NULL, false);
    shared_case(shared_all, true);
}

/* Whether the allocator has a free block of order 9 or more. */
static bool free_huge_block(rig *r)
{
    vms_frames_stats fs;
    vms_frames_stats_get(vms_kernel_frames(r->k), &fs);
    for (unsigned o = 9; o < VMS_FRAMES_NORDERS; o++)
        if (fs.free_blocks[o])
            return true;
    return false;
}

/* Direct compaction: 4 KiB pages of one process fragment RAM (no free 2 MiB block); a
 * MADV_HUGEPAGE fault compacts (migrating pages: their bytes, rmap and PTEs follow) and
 * gets its huge page; without the advice (thp = always) it falls back instead. */
static void thp_always_noswap(vms_kernel_config *kc)
{
    kc->thp = VMS_THP_ALWAYS;
    kc->swap_bytes = 0; /* no reclaim of anonymous pages: the fragmentation stays */
}

/* A fragmented 16 MiB machine: process "frag" (its page tables first, at the bottom of
 * RAM: vmsim does not group allocations by mobility as Linux does, so a page table among
 * the data would pin its pageblock) touches 4 KiB pages until no 2 MiB block is free,
 * then frees the pages in even frames, except in the 2 MiB region of the last page
 * touched (its one allocated frame was all that kept it from being free). */
typedef struct frag {
    vms_task *a;
    uint64_t n;          /* pages touched in order */
    bool gone[15 * 256]; /* … and freed again */
} frag;

static bool frag_up(rig *r, frag *f)
{
    uint64_t va;
    if (vms_proc_spawn(r->k, "frag", 0, &f->a, NULL) != VMS_OK ||
        vms_sys_mmap(r->k, f->a, AREA + 4096, 15 * MB, RW, ANONPR, NULL, 0, &va, NULL) != VMS_OK ||
        vms_sys_madvise(r->k, f->a, AREA + 4096, 15 * MB, VMS_MADV_NOHUGEPAGE, NULL) != VMS_OK)
        return false;
    for (uint64_t off = 0; off < 15 * MB; off += HUGE)
        CHECK(fill(r, f->a, AREA + 4096 + off, 4096, 20));
    f->n = 0;
    while (free_huge_block(r) && f->n < 15 * 256)
        CHECK(fill(r, f->a, AREA + 4096 + (f->n++ << 12), 4096, 20));
    if (free_huge_block(r))
        return false;
    uint64_t last = (pm(r, f->a, AREA + 4096 + ((f->n - 1) << 12)) & VMS_PM_PFN_MASK) >> 9;
    for (uint64_t i = 0; i < f->n; i++) {
        uint64_t pfn = pm(r, f->a, AREA + 4096 + (i << 12)) & VMS_PM_PFN_MASK;
        if ((f->gone[i] = (pfn & 1) == 0 && pfn >> 9 != last))
            CHECK_EQ(vms_sys_munmap(r->k, f->a, AREA + 4096 + (i << 12), 4096, NULL), VMS_OK);
    }
    CHECK(!free_huge_block(r));
    rig_check(r);
    return true;
}

/* Every page of frag that was not freed kept its bytes (wherever compaction moved it). */
static void frag_same(rig *r, const frag *f)
{
    for (uint64_t i = 0; i < f->n; i++)
        if (!f->gone[i])
            CHECK(same(r, f->a, AREA + 4096 + (i << 12), 4096, 20));
    for (uint64_t off = (f->n << 12) + HUGE - 1 - ((f->n << 12) + HUGE - 1) % HUGE; off < 15 * MB;
         off += HUGE)
        CHECK(same(r, f->a, AREA + 4096 + off, 4096, 20));
}

/* Direct compaction: a MADV_HUGEPAGE fault on the fragmented machine compacts (the
 * migrate scanner moves pages up into frames the free scanner takes: their bytes, rmap
 * and PTEs follow) and gets its huge page; without the advice (thp = always, defrag
 * madvise) it falls back, and wakes nobody. */
static void test_compaction(void)
{
    rig r;
    static frag f;
    REQUIRE_VOID(rig_up(&r, 16 * MB, thp_always_noswap));
    REQUIRE_VOID(frag_up(&r, &f));
    vms_task *b;
    uint64_t va;
    REQUIRE_VOID(vms_proc_spawn(r.k, "thp", 1, &b, NULL) == VMS_OK);
    CHECK_EQ(vms_sys_mmap(r.k, b, AREA, 4 * MB, RW, ANONPR, NULL, 0, &va, NULL), VMS_OK);
    CHECK(fill(&r, b, AREA, 4096, 21)); /* thp = always, not madvised: no compaction */
    CHECK_EQ(stats(&r)->compact_stall, 0);
    CHECK_EQ(stats(&r)->thp_anon_fault_alloc, 0);
    CHECK_EQ(stats(&r)->thp_fault_fallback, 1);
    CHECK(fill(&r, b, AREA + 4096, 4096, 21)); /* a kernel entry: kcompactd not woken */
    CHECK_EQ(stats(&r)->kcompactd_wake, 0);
    CHECK_EQ(vms_sys_madvise(r.k, b, AREA, 4 * MB, VMS_MADV_HUGEPAGE, NULL), VMS_OK);
    CHECK(fill(&r, b, AREA + 2 * MB, 2 * MB, 22)); /* madvised: direct compaction */
    CHECK_EQ(stats(&r)->compact_stall, 1);
    CHECK_EQ(stats(&r)->compact_success, 1);
    CHECK_EQ(stats(&r)->compact_fail, 0);
    CHECK(stats(&r)->compact_migrate > 0 && stats(&r)->compact_migrate <= 512);
    CHECK(stats(&r)->compact_migrate_scanned >= 512);
    CHECK(stats(&r)->compact_free_scanned >= stats(&r)->compact_migrate);
    CHECK_EQ(stats(&r)->thp_anon_fault_alloc, 1);
    rig_check(&r);
    frag_same(&r, &f);
    CHECK(same(&r, b, AREA, 2 * 4096, 21));
    CHECK(same(&r, b, AREA + 2 * MB, 2 * MB, 22));
    vms_proc_exit(r.k, f.a);
    vms_proc_exit(r.k, b);
    rig_down(&r);
}

/* Mobility grouping (kernel.mobility_grouping): four workers write their buffers 2 MiB at
 * a time in turns, one page in two, until no 2 MiB block is free, so each range's page
 * table is allocated between the other workers' pages. Without grouping a page table
 * lands in nearly every pageblock; with it they share the unmovable pageblocks. Two
 * workers exit; a MADV_HUGEPAGE fault then compacts: it fails without grouping (every
 * pageblock holds a page table) and succeeds with it, the survivors' bytes intact. */
static void mobility_on(vms_kernel_config *kc)
{
    kc->swap_bytes = 0;
    kc->mobility_grouping = true;
}

static void mobility_off(vms_kernel_config *kc)
{
    kc->swap_bytes = 0;
}

/* Pageblocks holding a page-table frame; *typed gets how many of those frames lie in
 * pageblocks that are not movable. */
static uint64_t pt_pageblocks(rig *r, uint64_t *typed)
{
    vms_frames *fr = vms_kernel_frames(r->k);
    uint64_t n = 0, last = UINT64_MAX;
    *typed = 0;
    for (uint64_t pfn = 0; pfn < 32 * MB / 4096; pfn++) {
        const vms_frame *f = vms_frames_meta(fr, pfn);
        if (!f || !(f->flags & VMS_FRAME_PAGETABLE))
            continue;
        *typed += vms_frames_pageblock_type(fr, pfn) != VMS_MT_MOVABLE;
        n += pfn >> 9 != last;
        last = pfn >> 9;
    }
    return n;
}

static void mobility_case(bool grouping)
{
    rig r;
    REQUIRE_VOID(rig_up(&r, 32 * MB, grouping ? mobility_on : mobility_off));
    vms_task *w[4], *b;
    uint64_t va, rounds = 0;
    for (int i = 0; i < 4; i++) {
        const char name[3] = {'w', (char)('0' + i), 0};
        REQUIRE_VOID(vms_proc_spawn(r.k, name, 0, &w[i], NULL) == VMS_OK);
        CHECK_EQ(vms_sys_mmap(r.k, w[i], AREA, 32 * MB, RW, ANONPR, NULL, 0, &va, NULL), VMS_OK);
    }
    for (; free_huge_block(&r) && rounds < 16; rounds++)
        for (int i = 0; i < 4; i++)
            for (uint64_t off = 0; off < HUGE; off += 8192)
                CHECK(fill(&r, w[i], AREA + rounds * HUGE + off, 4096, 30 + (unsigned)i));
    CHECK(!free_huge_block(&r));
    uint64_t typed, nblocks = pt_pageblocks(&r, &typed);
    if (grouping) { /* together, in unmovable pageblocks */
        CHECK(nblocks <= 2);
        CHECK_EQ(typed, vms_frames_count(vms_kernel_frames(r.k), VMS_FRAME_PAGETABLE));
    } else {
        CHECK(nblocks >= 12); /* of 16 */
        CHECK_EQ(typed, 0);
    }
    rig_check(&r);
    vms_proc_exit(r.k, w[0]);
    vms_proc_exit(r.k, w[2]);
    REQUIRE_VOID(vms_proc_spawn(r.k, "thp", 1, &b, NULL) == VMS_OK);
    CHECK_EQ(vms_sys_mmap(r.k, b, AREA, 4 * MB, RW, ANONPR, NULL, 0, &va, NULL), VMS_OK);
    CHECK_EQ(vms_sys_madvise(r.k, b, AREA, 4 * MB, VMS_MADV_HUGEPAGE, NULL), VMS_OK);
    CHECK(fill(&r, b, AREA, 2 * MB, 40));
    CHECK_EQ(stats(&r)->compact_stall, 1);
    CHECK_EQ(stats(&r)->compact_success, grouping ? 1 : 0);
    CHECK_EQ(stats(&r)->thp_anon_fault_alloc, grouping ? 1 : 0);
    CHECK_EQ(stats(&r)->compact_migrate > 0, grouping);
    rig_check(&r);
    for (int i = 1; i < 4; i += 2)
        for (uint64_t off = 0; off < rounds * HUGE; off += 8192)
            CHECK(same(&r, w[i], AREA + off, 4096, 30 + i));
    CHECK(same(&r, b, AREA, 2 * MB, 40));
    vms_proc_exit(r.k, w[1]);
    vms_proc_exit(r.k, w[3]);
    vms_proc_exit(r.k, b);
    rig_down(&r);
}

/* Free frames of pageblock pb (a frame with no metadata yet is free). */
static unsigned pageblock_free(rig *r, uint64_t pb)
{
    unsigned n = 0;
    for (uint64_t p = pb * 512; p < (pb + 1) * 512; p++) {
        const vms_frame *f = vms_frames_meta(vms_kernel_frames(r->k), p);
        n += !f || !(f->flags & VMS_FRAME_ALLOC);
    }
    return n;
}

/* Anonymous frames lying in pageblocks that are not movable. */
static uint64_t anon_unmovable(rig *r)
{
    vms_frames *fr = vms_kernel_frames(r->k);
    uint64_t n = 0;
    for (uint64_t pfn = 0; pfn < 32 * MB / 4096; pfn++) {
        const vms_frame *f = vms_frames_meta(fr, pfn);
        n += f && (f->flags & VMS_FRAME_ANON) &&
             vms_frames_pageblock_type(fr, pfn) != VMS_MT_MOVABLE;
    }
    return n;
}

/* Compaction's free scanner takes frames only from a movable pageblock or a free block of
 * order >= 9 (Linux suitable_migration_target). With grouping, process a fills 26 MiB;
 * process c's page tables share an unmovable pageblock that keeps most of its frames
 * free; a unmaps its lowest 8 MiB. A full compaction (compact_memory) then moves a's
 * pages from below that pageblock to above it and past it: its free frames stay free and
 * no anonymous page lands in it, while a wholly free unmovable pageblock (a free block of
 * order 9) does take pages; every byte of a and c stays. */
static void test_compaction_target(void)
{
    rig r;
    REQUIRE_VOID(rig_up(&r, 32 * MB, mobility_on));
    vms_task *a, *c;
    uint64_t va;
    REQUIRE_VOID(vms_proc_spawn(r.k, "a", 0, &a, NULL) == VMS_OK);
    CHECK_EQ(vms_sys_mmap(r.k, a, AREA, 32 * MB, RW, ANONPR, NULL, 0, &va, NULL), VMS_OK);
    CHECK(fill(&r, a, AREA, 26 * MB, 50));
    REQUIRE_VOID(vms_proc_spawn(r.k, "c", 0, &c, NULL) == VMS_OK);
    CHECK_EQ(vms_sys_mmap(r.k, c, AREA, 32 * MB, RW, ANONPR, NULL, 0, &va, NULL), VMS_OK);
    CHECK(fill(&r, c, AREA, 4096, 51));
    CHECK_EQ(vms_sys_munmap(r.k, a, AREA, 8 * MB, NULL), VMS_OK);
    /* ub: the unmovable pageblock, partly free; fb: an unmovable one wholly free */
    uint64_t ub = UINT64_MAX, fb = UINT64_MAX, lowest_anon = UINT64_MAX;
    for (uint64_t pb = 0; pb < 32 * MB / HUGE; pb++) {
        const vms_frame *f = vms_frames_meta(vms_kernel_frames(r.k), pb * 512);
        unsigned nfree = pageblock_free(&r, pb);
        bool unmovable =
            vms_frames_pageblock_type(vms_kernel_frames(r.k), pb * 512) == VMS_MT_UNMOVABLE;
        if (ub == UINT64_MAX && unmovable && nfree >= 256 && nfree < 512)
            ub = pb;
        if (fb == UINT64_MAX && unmovable && nfree == 512)
            fb = pb;
        if (lowest_anon == UINT64_MAX && f && (f->flags & VMS_FRAME_ANON))
            lowest_anon = pb;
    }
    /* the premise: both lie above a's lowest pages, where the free scanner comes */
    REQUIRE_VOID(ub != UINT64_MAX && fb != UINT64_MAX && lowest_anon < ub && lowest_anon < fb);
    unsigned ub_free = pageblock_free(&r, ub);
    CHECK_EQ(anon_unmovable(&r), 0);
    CHECK(vms_kernel_compact(r.k) > 0);
    CHECK_EQ(pageblock_free(&r, ub), ub_free);
    CHECK_EQ(anon_unmovable(&r), 0);
    CHECK(pageblock_free(&r, fb) < 512); /* a free 2 MiB block is a target wherever it is */
    CHECK(same(&r, a, AREA + 8 * MB, 18 * MB, 50));
    CHECK(same(&r, c, AREA, 4096, 51));
    rig_check(&r);
    vms_proc_exit(r.k, a);
    vms_proc_exit(r.k, c);
    rig_down(&r);
}

static void test_mobility(void)
{
    mobility_case(false);
    mobility_case(true);
}

static void defer_kc1(vms_kernel_config *kc)
{
    thp_always_noswap(kc);
    kc->thp_defrag = VMS_THP_DEFRAG_DEFER;
    kc->kcompactd_core = 1;
}

static void defrag_never(vms_kernel_config *kc)
{
    thp_always_noswap(kc);
    kc->thp_defrag = VMS_THP_DEFRAG_NEVER;
}

/* kcompactd: with thp.defrag = defer a failed THP fault falls back at once and wakes
 * kcompactd, which compacts at the next kernel entry (charged to kcompactd.core 1) until
 * a 2 MiB block is free; the next fault in a new range gets a huge page without stalling.
 * With defrag = never nothing compacts; vms_kernel_compact (compact_memory) then does. */
static void test_kcompactd(void)
{
    rig r;
    static frag f;
    REQUIRE_VOID(rig_up(&r, 16 * MB, defer_kc1));
    REQUIRE_VOID(frag_up(&r, &f));
    vms_task *b;
    uint64_t va;
    REQUIRE_VOID(vms_proc_spawn(r.k, "thp", 0, &b, NULL) == VMS_OK);
    CHECK_EQ(vms_sys_mmap(r.k, b, AREA, 4 * MB, RW, ANONPR, NULL, 0, &va, NULL), VMS_OK);
    CHECK_EQ(vms_sys_madvise(r.k, b, AREA, 4 * MB, VMS_MADV_HUGEPAGE, NULL), VMS_OK);
    uint64_t c1 = vms_core_cycles(vms_machine_core(r.m, 1));
    CHECK(fill(&r, b, AREA, 4096, 23)); /* defer: no stall, even madvised */
    CHECK_EQ(stats(&r)->compact_stall, 0);
    CHECK_EQ(stats(&r)->thp_fault_fallback, 1);
    CHECK_EQ(stats(&r)->kcompactd_wake, 0); /* woken, not run yet */
    CHECK(!free_huge_block(&r));
    CHECK(fill(&r, b, AREA + 4096, 4096, 23)); /* the next kernel entry: kcompactd runs */
    CHECK_EQ(stats(&r)->kcompactd_wake, 1);
    CHECK_EQ(stats(&r)->kcompactd_success, 1);
    CHECK(free_huge_block(&r));
    CHECK(stats(&r)->kcompactd_cycles > 0);
    CHECK(vms_core_cycles(vms_machine_core(r.m, 1)) - c1 >= stats(&r)->kcompactd_cycles);
    rig_check(&r);
    CHECK(fill(&r, b, AREA + 2 * MB, 2 * MB, 24)); /* a huge page, no stall */
    CHECK_EQ(stats(&r)->thp_anon_fault_alloc, 1);
    CHECK_EQ(stats(&r)->compact_stall, 0);
    frag_same(&r, &f);
    CHECK(same(&r, b, AREA, 2 * 4096, 23));
    CHECK(same(&r, b, AREA + 2 * MB, 2 * MB, 24));
    rig_check(&r);
    vms_proc_exit(r.k, f.a);
    vms_proc_exit(r.k, b);
    rig_down(&r);

    REQUIRE_VOID(rig_up(&r, 16 * MB, defrag_never));
    REQUIRE_VOID(frag_up(&r, &f));
    REQUIRE_VOID(vms_proc_spawn(r.k, "thp", 0, &b, NULL) == VMS_OK);
    CHECK_EQ(vms_sys_mmap(r.k, b, AREA, 4 * MB, RW, ANONPR, NULL, 0, &va, NULL), VMS_OK);
    CHECK_EQ(vms_sys_madvise(r.k, b, AREA, 4 * MB, VMS_MADV_HUGEPAGE, NULL), VMS_OK);
    CHECK(fill(&r, b, AREA, 2 * 4096, 25));
    CHECK_EQ(stats(&r)->compact_stall + stats(&r)->kcompactd_wake, 0);
    CHECK(!free_huge_block(&r));
    uint64_t moved = vms_kernel_compact(r.k);
    CHECK(moved > 0);
    CHECK_EQ(stats(&r)->compact_migrate, moved);
    CHECK(free_huge_block(&r));
    rig_check(&r);
    frag_same(&r, &f);
    CHECK(same(&r, b, AREA, 2 * 4096, 25));
    vms_proc_exit(r.k, f.a);
    vms_proc_exit(r.k, b);
    rig_down(&r);
}

static void pool4(vms_kernel_config *kc)
{
    kc->hugepages = 4;
}

/* hugetlbfs: 4 pages at boot, reservations at mmap, ENOMEM beyond them, faults from the
 * pool, pages back on unmap; MAP_NORESERVE overcommits and SIGBUSes. */
static void test_hugetlb(void)
{
    rig r;
    REQUIRE_VOID(rig_up(&r, 64 * MB, pool4));
    CHECK(has_line(&r, NULL,
                   "HugePages_Total:       4\nHugePages_Free:        4\n"
                   "HugePages_Rsvd:        0"));
    vms_task *t;
    uint64_t va;
    unsigned hf = VMS_MAP_PRIVATE | VMS_MAP_ANONYMOUS | VMS_MAP_HUGETLB;
    REQUIRE_VOID(vms_proc_spawn(r.k, "db", 0, &t, NULL) == VMS_OK);
    CHECK_EQ(vms_sys_mmap(r.k, t, 0, 6 * MB, RW, hf, NULL, 0, &va, NULL), VMS_OK);
    CHECK(has_line(&r, NULL, "HugePages_Free:        4\nHugePages_Rsvd:        3"));
    uint64_t va2;
    CHECK_EQ(vms_sys_mmap(r.k, t, 0, 4 * MB, RW, hf, NULL, 0, &va2, NULL), VMS_ERR_NOTFOUND);
    CHECK(fill(&r, t, va, 6 * MB, 16));
    CHECK(has_line(&r, NULL, "HugePages_Free:        1\nHugePages_Rsvd:        0"));
    CHECK(has_line(&r, NULL, "AnonPages:             0 kB")); /* not anonymous memory */
    rig_check(&r);
    CHECK(same(&r, t, va, 6 * MB, 16));
    /* Overcommit: two pages without a reservation, one left: the second fault SIGBUSes. */
    CHECK_EQ(vms_sys_mmap(r.k, t, 0, 4 * MB, RW, hf | VMS_MAP_NORESERVE, NULL, 0, &va2, NULL),
             VMS_OK);
    CHECK(fill(&r, t, va2, 2 * MB, 17));
    vms_access_info info;
    uint8_t b = 1;
    CHECK_EQ(vms_proc_access(r.k, t, va2 + 2 * MB, VMS_ACC_WRITE, &b, 1, &info, NULL), VMS_OK);
    CHECK_EQ(info.outcome, VMS_ACCESS_BUS);
    CHECK_EQ(stats(&r)->hugetlb_sigbus, 1);
    CHECK(has_line(&r, NULL,
                   "HugePages_Total:       4\nHugePages_Free:        4\n"
                   "HugePages_Rsvd:        0"));
    /* Part of a mapping unmapped before its faults: its reservations go back. */
    REQUIRE_VOID(vms_proc_spawn(r.k, "db", 0, &t, NULL) == VMS_OK);
    CHECK_EQ(vms_sys_mmap(r.k, t, 0, 8 * MB, RW, hf, NULL, 0, &va, NULL), VMS_OK);
    CHECK(fill(&r, t, va, 2 * MB, 18));
    CHECK_EQ(vms_sys_munmap(r.k, t, va + 4 * MB, 4 * MB, NULL), VMS_OK);
    CHECK(has_line(&r, NULL, "HugePages_Free:        3\nHugePages_Rsvd:        1"));
    rig_check(&r);
    vms_proc_exit(r.k, t);
    CHECK(has_line(&r, NULL, "HugePages_Free:        4\nHugePages_Rsvd:        0"));
    rig_down(&r);
}

static void pool1_over2(vms_kernel_config *kc)
{
    kc->hugepages = 1;
    kc->nr_overcommit_hugepages = 2;
}

/* Pools as Linux sizes them: with none, MAP_HUGETLB is ENOMEM (and a NORESERVE mapping
 * SIGBUSes at its fault); nr_overcommit_hugepages lets a reservation take surplus pages
 * from free memory, which go back to it when released; nr_hugepages at run time grows
 * the pool from free memory and shrinks it, pages still in use becoming surplus. */
static void test_hugetlb_sizing(void)
{
    rig r;
    vms_task *t;
    uint64_t va, va2;
    unsigned hf = VMS_MAP_PRIVATE | VMS_MAP_ANONYMOUS | VMS_MAP_HUGETLB;
    REQUIRE_VOID(rig_up(&r, 64 * MB, NULL)); /* no pool */
    REQUIRE_VOID(vms_proc_spawn(r.k, "db", 0, &t, NULL) == VMS_OK);
    CHECK_EQ(vms_sys_mmap(r.k, t, 0, 2 * MB, RW, hf, NULL, 0, &va, NULL), VMS_ERR_NOTFOUND);
    CHECK_EQ(vms_sys_mmap(r.k, t, 0, 2 * MB, RW, hf | VMS_MAP_NORESERVE, NULL, 0, &va, NULL),
             VMS_OK);
    vms_access_info info;
    uint8_t b = 1;
    CHECK_EQ(vms_proc_access(r.k, t, va, VMS_ACC_WRITE, &b, 1, &info, NULL), VMS_OK);
    CHECK_EQ(info.outcome, VMS_ACCESS_BUS);
    rig_down(&r);

    REQUIRE_VOID(rig_up(&r, 64 * MB, pool1_over2));
    REQUIRE_VOID(vms_proc_spawn(r.k, "db", 0, &t, NULL) == VMS_OK);
    uint64_t free1 = vms_frames_nfree(vms_kernel_frames(r.k));
    CHECK_EQ(vms_sys_mmap(r.k, t, 0, 6 * MB, RW, hf, NULL, 0, &va, NULL), VMS_OK);
    CHECK(has_line(&r, NULL,
                   "HugePages_Total:       3\nHugePages_Free:        3\n"
                   "HugePages_Rsvd:        3\nHugePages_Surp:        2"));
    CHECK_EQ(vms_frames_nfree(vms_kernel_frames(r.k)), free1 - 2 * 512);
    CHECK_EQ(vms_sys_mmap(r.k, t, 0, 2 * MB, RW, hf, NULL, 0, &va2, NULL), VMS_ERR_NOTFOUND);
    CHECK(fill(&r, t, va, 6 * MB, 40));
    rig_check(&r);
    CHECK(same(&r, t, va, 6 * MB, 40));
    CHECK_EQ(vms_sys_munmap(r.k, t, va, 6 * MB, NULL), VMS_OK);
    CHECK(has_line(&r, NULL,
                   "HugePages_Total:       1\nHugePages_Free:        1\n"
                   "HugePages_Rsvd:        0\nHugePages_Surp:        0"));
    CHECK_EQ(vms_frames_nfree(vms_kernel_frames(r.k)), free1);
    vms_proc_exit(r.k, t);
    rig_down(&r);

    REQUIRE_VOID(rig_up(&r, 64 * MB, NULL)); /* nr_hugepages at run time */
    uint64_t got = 0;
    CHECK_EQ(vms_kernel_set_hugepages(r.k, VMS_PG_2M, 4, &got), VMS_OK);
    CHECK_EQ(got, 4);
    CHECK_EQ(vms_frames_nfree(vms_kernel_frames(r.k)), r.free0 - 4 * 512);
    REQUIRE_VOID(vms_proc_spawn(r.k, "db", 0, &t, NULL) == VMS_OK);
    CHECK_EQ(vms_sys_mmap(r.k, t, 0, 6 * MB, RW, hf, NULL, 0, &va, NULL), VMS_OK);
    CHECK(fill(&r, t, va, 4 * MB, 41)); /* two of its three pages faulted */
    CHECK_EQ(vms_kernel_set_hugepages(r.k, VMS_PG_2M, 1, &got), VMS_OK);
    CHECK_EQ(got, 1);
    CHECK(has_line(&r, NULL,
                   "HugePages_Total:       3\nHugePages_Free:        1\n"
                   "HugePages_Rsvd:        1\nHugePages_Surp:        2"));
    rig_check(&r);
    CHECK(same(&r, t, va, 4 * MB, 41));
    CHECK_EQ(vms_sys_munmap(r.k, t, va, 6 * MB, NULL), VMS_OK);
    CHECK(has_line(&r, NULL,
                   "HugePages_Total:       1\nHugePages_Free:        1\n"
                   "HugePages_Rsvd:        0\nHugePages_Surp:        0"));
    CHECK_EQ(vms_kernel_set_hugepages(r.k, VMS_PG_2M, 0, &got), VMS_OK);
    CHECK_EQ(vms_kernel_set_hugepages(r.k, VMS_PG_4K, 1, &got), VMS_ERR_INVAL);
    CHECK_EQ(vms_kernel_set_hugepages(r.k, VMS_PG_2M, 100000, &got), VMS_OK);
    CHECK(got > 0 && got < 32); /* as many as free memory holds */
    CHECK_EQ(vms_kernel_set_hugepages(r.k, VMS_PG_2M, 0, &got), VMS_OK);
    vms_proc_exit(r.k, t);
    rig_down(&r);
}

/* The contract's JSON members. */
static void test_json(void)
{
    rig r;
    REQUIRE_VOID(rig_up(&r, 64 * MB, pool4));
    vms_task *t = proc_with(&r, 2 * MB, true);
    REQUIRE_VOID(t);
    CHECK(fill(&r, t, AREA, 2 * MB, 19));
    vms_strbuf sb;
    vms_strbuf_init(&sb, NULL);
    CHECK_EQ(vms_kernel_stats_json_members(r.k, &sb), VMS_OK);
    const char *j = vms_strbuf_str(&sb);
    CHECK(strstr(j, "\"thp\":{\"mode\":\"madvise\",\"fault_alloc\":1,\"fault_fallback\":0,"
                    "\"collapse_alloc\":0,\"split_page\":0") != NULL);
    CHECK(strstr(j, "\"hugetlb\":{\"total\":4,\"free\":4,") != NULL);
    vms_strbuf_free(&sb);
    vms_proc_exit(r.k, t);
    rig_down(&r);
}

/* The same THP story on every format with 2 MiB leaves. */
static void test_arches(void)
{
    static const char *const presets[] = {"sifive-u74", "cortex-a76"};
    for (unsigned i = 0; i < 2; i++) {
        g_preset = presets[i];
        fprintf(stderr, "thp on %s\n", g_preset);
        test_fault_madvise();
        test_huge_zero();
        test_cow();
        test_split();
        test_protnone();
        test_reclaim();
        test_swap_whole();
        test_collapse();
        test_collapse_limits();
    }
    g_preset = "skylake";
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "thp");
    test_fault_madvise();
    test_fault_always_never();
    test_huge_zero();
    test_fallback();
    test_cow();
    test_split();
    test_protnone();
    test_reclaim();
    test_swap_whole();
    test_collapse();
    test_khugepaged_shootdown();
    test_khugepaged_timer();
    test_collapse_limits();
    test_compaction();
    test_kcompactd();
    test_mobility();
    test_compaction_target();
    test_hugetlb();
    test_hugetlb_sizing();
    test_json();
    test_arches();
    return th_finish();
}
