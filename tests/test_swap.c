/*
 * test_swap.c — the swap device, reclaim and the OOM killer, case by case (the random
 * differential test is test_swap_stress.c):
 *   - a page swapped out and back: pagemap's swapped bit, major fault, SwapFree;
 *   - COW after swap: a page shared by fork is read once (swap cache), both sides see
 *     their own bytes after either writes;
 *   - a write error keeps the page resident; a read error kills exactly the slot's
 *     owners (private COW-shared page, shmem page);
 *   - dirty file pages are written back by reclaim and re-read (refault);
 *   - mlocked pages are never evicted; pinned frames are not either;
 *   - opt without a next-use oracle is refused; with one it runs;
 *   - the OOM killer chooses by badness and logs like Linux; kswapd's core is charged;
 *   - config keys swap / policy and the JSON contract names.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "vmsim/config.h"
#include "vmsim/frames.h"
#include "vmsim/mman.h"
#include "vmsim/swap.h"

#define RW    (VMS_PROT_READ | VMS_PROT_WRITE)
#define PANON (VMS_MAP_PRIVATE | VMS_MAP_ANONYMOUS)
#define PG    4096u

typedef struct fix {
    vms_machine *m;
    vms_kernel *k;
    uint64_t free0;
    char log[8][300];
    unsigned nlog;
} fix;

static void on_log(void *ud, vms_log_level lvl, const char *msg)
{
    fix *f = ud;
    (void)lvl;
    if (f->nlog < 8)
        snprintf(f->log[f->nlog++], sizeof f->log[0], "%s", msg);
}

/* A machine of ram bytes with swap bytes of swap; extra key=value settings. */
static bool setup(fix *f, const char *ram, const char *swap, const char *policy, unsigned ncores,
                  vms_next_use_fn nu)
{
    memset(f, 0, sizeof *f);
    vms_config c;
    char cores[8];
    snprintf(cores, sizeof cores, "%u", ncores);
    if (vms_config_init(&c, NULL, NULL) != VMS_OK ||
        vms_config_set(&c, "ram", ram, "t", NULL) != VMS_OK ||
        vms_config_set(&c, "swap", swap, "t", NULL) != VMS_OK ||
        vms_config_set(&c, "cores", cores, "t", NULL) != VMS_OK ||
        vms_config_set(&c, "policy", policy, "t", NULL) != VMS_OK ||
        vms_config_set(&c, "kernel.aslr", "off", "t", NULL) != VMS_OK)
        return false;
    vms_kernel_config kc = vms_config_kernel(&c);
    kc.next_use = nu;
    vms_err err = {0};
    if (vms_machine_create(NULL, &c.machine, &f->m, NULL) != VMS_OK)
        return false;
    if (vms_kernel_create(f->m, &kc, &f->k, &err) != VMS_OK) {
        fprintf(stderr, "kernel: %s\n", err.msg);
        vms_machine_destroy(f->m);
        return false;
    }
    vms_kernel_set_log(f->k, on_log, f);
    f->free0 = vms_frames_nfree(vms_kernel_frames(f->k));
    return true;
}

static void teardown(fix *f)
{
    vms_kernel_destroy(f->k);
    vms_machine_destroy(f->m);
}

static void check_kernel(fix *f)
{
    vms_err err = {0};
    vms_status st = vms_kernel_check(f->k, &err);
    if (st != VMS_OK)
        fprintf(stderr, "kernel check: %s\n", err.msg);
    CHECK_EQ(st, VMS_OK);
}

static uint64_t map_anon(fix *f, vms_task *t, uint64_t addr, uint64_t len, unsigned flags)
{
    uint64_t va = 0;
    CHECK_EQ(vms_sys_mmap(f->k, t, addr, len, RW, flags | VMS_MAP_FIXED, NULL, 0, &va, NULL),
             VMS_OK);
    return va;
}

/* Write the 8-byte value tag+page at the start of each page. */
static void fill(fix *f, vms_task *t, uint64_t va, unsigned npages, uint64_t tag)
{
    for (unsigned i = 0; i < npages; i++) {
        uint64_t v = tag + i;
        CHECK_EQ(vms_proc_write(f->k, t, va + (uint64_t)i * PG, &v, 8), VMS_ACCESS_OK);
    }
}

static unsigned verify(fix *f, vms_task *t, uint64_t va, unsigned npages, uint64_t tag)
{
    unsigned bad = 0;
    for (unsigned i = 0; i < npages; i++) {
        uint64_t v = 0;
        CHECK_EQ(vms_proc_read(f->k, t, va + (uint64_t)i * PG, &v, 8), VMS_ACCESS_OK);
        bad += v != tag + i;
    }
    CHECK_EQ(bad, 0);
    return bad;
}

static uint64_t pm(fix *f, vms_task *t, uint64_t va)
{
    uint64_t e = 0;
    vms_proc_pagemap(f->k, t, va, 1, &e);
    return e;
}

static void evict_all(fix *f)
{
    uint64_t got;
    vms_kernel_reclaim(f->k, 1u << 20, &got);
    check_kernel(f);
}

static void t_roundtrip(void)
{
    fix f;
    REQUIRE_VOID(setup(&f, "2M", "8M", "clock", 1, NULL));
    vms_task *t;
    REQUIRE_VOID(vms_proc_spawn(f.k, "big", 0, &t, NULL) == VMS_OK);
    uint64_t va = map_anon(&f, t, 0x10000000, 2048u * PG, PANON); /* 8 MiB: 4x RAM */
    fill(&f, t, va, 2048, 0xA000);
    check_kernel(&f);
    CHECK(pm(&f, t, va) & VMS_PM_SWAPPED); /* the first page went out */
    vms_swap_info si;
    vms_swap_get_info(f.k, &si);
    CHECK(si.free_pages < si.total_pages);
    CHECK(si.path && si.path[0]);
    vms_access_info ai;
    uint64_t v = 0;
    CHECK_EQ(vms_proc_access(f.k, t, va, VMS_ACC_READ, &v, 8, &ai, NULL), VMS_OK);
    CHECK_EQ(v, 0xA000);
    CHECK_EQ(ai.major, 1);
    CHECK(pm(&f, t, va) & VMS_PM_PRESENT);
    verify(&f, t, va, 2048, 0xA000);
    const vms_kernel_stats *s = vms_kernel_get_stats(f.k);
    CHECK(s->pswpout >= 1536 && s->pswpin >= 1536);
    CHECK(s->kswapd_runs > 0 && s->pgscan_kswapd > 0);
    check_kernel(&f);
    vms_proc_exit(f.k, t);
    check_kernel(&f);
    vms_swap_get_info(f.k, &si);
    CHECK_EQ(si.free_pages, si.total_pages);
    CHECK_EQ(vms_frames_nfree(vms_kernel_frames(f.k)), f.free0);
    teardown(&f);
}

static void t_cow_after_swap(void)
{
    fix f;
    REQUIRE_VOID(setup(&f, "2M", "8M", "lru", 2, NULL));
    vms_task *a, *b;
    REQUIRE_VOID(vms_proc_spawn(f.k, "a", 0, &a, NULL) == VMS_OK);
    uint64_t va = map_anon(&f, a, 0x10000000, 16u * PG, PANON);
    fill(&f, a, va, 16, 0x100);
    REQUIRE_VOID(vms_proc_fork(f.k, a, &b, NULL) == VMS_OK);
    CHECK_EQ(vms_task_set_core(f.k, b, 1, NULL), VMS_OK);
    evict_all(&f);
    CHECK(pm(&f, a, va) & VMS_PM_SWAPPED);
    CHECK_EQ(pm(&f, a, va), pm(&f, b, va)); /* one slot, named by both PTEs */
    const vms_kernel_stats *s = vms_kernel_get_stats(f.k);
    uint64_t in0 = s->pswpin;
    verify(&f, a, va, 16, 0x100);
    CHECK_EQ(s->pswpin - in0, 16);
    verify(&f, b, va, 16, 0x100); /* from the swap cache: no more reads */
    CHECK_EQ(s->pswpin - in0, 16);
    CHECK_EQ(s->swapcache_hits, 16);
    check_kernel(&f);
    uint64_t x = 0xBEEF;
    CHECK_EQ(vms_proc_write(f.k, b, va, &x, 8), VMS_ACCESS_OK); /* COW: b's own copy */
    uint64_t y = 0;
    CHECK_EQ(vms_proc_read(f.k, a, va, &y, 8), VMS_ACCESS_OK);
    CHECK_EQ(y, 0x100);
    evict_all(&f);
    CHECK_EQ(vms_proc_read(f.k, b, va, &y, 8), VMS_ACCESS_OK);
    CHECK_EQ(y, 0xBEEF);
    CHECK_EQ(vms_proc_write(f.k, a, va + PG, &x, 8), VMS_ACCESS_OK);
    CHECK_EQ(vms_proc_read(f.k, b, va + PG, &y, 8), VMS_ACCESS_OK);
    CHECK_EQ(y, 0x101);
    check_kernel(&f);
    vms_proc_exit(f.k, a);
    vms_proc_exit(f.k, b);
    check_kernel(&f);
    CHECK_EQ(vms_frames_nfree(vms_kernel_frames(f.k)), f.free0);
    teardown(&f);
}

static void t_write_error(void)
{
    fix f;
    REQUIRE_VOID(setup(&f, "2M", "8M", "fifo", 1, NULL));
    vms_task *t;
    REQUIRE_VOID(vms_proc_spawn(f.k, "w", 0, &t, NULL) == VMS_OK);
    uint64_t va = map_anon(&f, t, 0x10000000, 8u * PG, PANON);
    fill(&f, t, va, 8, 0x55);
    CHECK_EQ(vms_swap_inject_error(f.k, VMS_SWAP_IO_WRITE, 0, 1, NULL), VMS_OK);
    uint64_t got = 0;
    vms_kernel_reclaim(f.k, 1, &got); /* fifo: the first page; its write fails */
    const vms_kernel_stats *s = vms_kernel_get_stats(f.k);
    CHECK_EQ(s->swap_write_errors, 1);
    CHECK(pm(&f, t, va) & VMS_PM_PRESENT); /* kept resident */
    CHECK_EQ(got, 1);                      /* the next candidate went instead */
    CHECK(strstr(f.log[f.nlog - 1], "Write-error on swap-device") != NULL);
    check_kernel(&f);
    verify(&f, t, va, 8, 0x55);
    CHECK_EQ(vms_swap_inject_error(f.k, (vms_swap_io)7, 0, 1, NULL), VMS_ERR_INVAL);
    vms_proc_exit(f.k, t);
    teardown(&f);
}

static void t_read_error(void)
{
    fix f;
    REQUIRE_VOID(setup(&f, "2M", "8M", "clock", 1, NULL));
    vms_task *a, *b, *c, *d;
    REQUIRE_VOID(vms_proc_spawn(f.k, "a", 0, &a, NULL) == VMS_OK);
    REQUIRE_VOID(vms_proc_spawn(f.k, "c", 0, &c, NULL) == VMS_OK);
    uint64_t va = map_anon(&f, a, 0x10000000, 4u * PG, PANON);
    uint64_t sva = map_anon(&f, a, 0x20000000, 4u * PG, VMS_MAP_SHARED | VMS_MAP_ANONYMOUS);
    map_anon(&f, c, 0x10000000, 4u * PG, PANON);
    fill(&f, a, va, 4, 0x10);
    fill(&f, a, sva, 4, 0x20);
    fill(&f, c, va, 4, 0x30);
    REQUIRE_VOID(vms_proc_fork(f.k, a, &b, NULL) == VMS_OK);
    REQUIRE_VOID(vms_proc_fork(f.k, a, &d, NULL) == VMS_OK);
    uint64_t z = 0x77;
    CHECK_EQ(vms_proc_write(f.k, d, va, &z, 8), VMS_ACCESS_OK); /* d's own copy of page 0 */
    evict_all(&f);
    /* Page 0 of a's private memory: slot shared by a and b, not d (own copy) nor c. */
    CHECK_EQ(pm(&f, a, va), pm(&f, b, va));
    CHECK(pm(&f, a, va) != pm(&f, d, va));
    vms_swap_inject_error(f.k, VMS_SWAP_IO_READ, 0, 1, NULL);
    uint64_t v;
    vms_access_info ai;
    CHECK_EQ(vms_proc_access(f.k, b, va, VMS_ACC_READ, &v, 8, &ai, NULL), VMS_OK);
    CHECK_EQ(ai.outcome, VMS_ACCESS_BUS);
    CHECK(!vms_task_alive(a) && !vms_task_alive(b));
    CHECK(vms_task_alive(c) && vms_task_alive(d));
    vms_task_info ti;
    vms_task_get_info(a, &ti);
    CHECK_EQ(ti.signal, VMS_SIGBUS);
    const vms_kernel_stats *s = vms_kernel_get_stats(f.k);
    CHECK_EQ(s->swap_read_errors, 1);
    CHECK_EQ(s->sigbus, 1); /* b's fault; a was killed without faulting (issue 16 #12) */
    CHECK_EQ(s->pgfault, s->minor + s->pgmajfault + s->segv + s->sigbus);
    check_kernel(&f);
    verify(&f, c, va, 4, 0x30);
    CHECK_EQ(vms_proc_read(f.k, d, va, &v, 8), VMS_ACCESS_OK);
    CHECK_EQ(v, 0x77);
    verify(&f, d, va + PG, 3, 0x11);
    /* A shmem page: d maps the object (inherited); its read error kills d only. */
    evict_all(&f);
    vms_swap_inject_error(f.k, VMS_SWAP_IO_READ, 0, 1, NULL);
    CHECK_EQ(vms_proc_access(f.k, d, sva, VMS_ACC_READ, &v, 8, &ai, NULL), VMS_OK);
    CHECK_EQ(ai.outcome, VMS_ACCESS_BUS);
    CHECK(!vms_task_alive(d) && vms_task_alive(c));
    check_kernel(&f);
    vms_proc_exit(f.k, a);
    vms_proc_exit(f.k, b);
    vms_proc_exit(f.k, c);
    vms_proc_exit(f.k, d);
    check_kernel(&f);
    vms_swap_info si;
    vms_swap_get_info(f.k, &si);
    CHECK_EQ(si.free_pages + 2, si.total_pages); /* two poisoned slots */
    CHECK_EQ(vms_frames_nfree(vms_kernel_frames(f.k)), f.free0);
    teardown(&f);
}

static void t_shmem_shared(void)
{
    fix f;
    REQUIRE_VOID(setup(&f, "2M", "8M", "twolist", 1, NULL));
    vms_task *a, *b;
    REQUIRE_VOID(vms_proc_spawn(f.k, "a", 0, &a, NULL) == VMS_OK);
    uint64_t sva = map_anon(&f, a, 0x20000000, 8u * PG, VMS_MAP_SHARED | VMS_MAP_ANONYMOUS);
    REQUIRE_VOID(vms_proc_fork(f.k, a, &b, NULL) == VMS_OK);
    fill(&f, b, sva, 8, 0x900);
    evict_all(&f);
    CHECK(vms_kernel_get_stats(f.k)->pgsteal_anon >= 8);
    verify(&f, a, sva, 8, 0x900);
    fill(&f, a, sva, 8, 0x700);
    evict_all(&f);
    verify(&f, b, sva, 8, 0x700);
    check_kernel(&f);
    vms_proc_exit(f.k, a);
    vms_proc_exit(f.k, b);
    check_kernel(&f);
    CHECK_EQ(vms_frames_nfree(vms_kernel_frames(f.k)), f.free0);
    teardown(&f);
}

static void t_file_reclaim(void)
{
    char dir[] = "/tmp/vmsim-swapt-XXXXXX", path[64], copy[80], wb[64];
    REQUIRE_VOID(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/data", dir);
    snprintf(wb, sizeof wb, "%s/wb", dir);
    REQUIRE_VOID(mkdir(wb, 0700) == 0);
    FILE *h = fopen(path, "wb");
    for (unsigned i = 0; i < 8 * PG; i++)
        fputc('a' + (int)(i % 26), h);
    fclose(h);
    fix f;
    memset(&f, 0, sizeof f);
    vms_config cfg;
    vms_config_init(&cfg, NULL, NULL);
    vms_config_set(&cfg, "ram", "2M", "t", NULL);
    vms_config_set(&cfg, "kernel.writeback_dir", wb, "t", NULL);
    vms_kernel_config kc = vms_config_kernel(&cfg);
    REQUIRE_VOID(vms_machine_create(NULL, &cfg.machine, &f.m, NULL) == VMS_OK);
    REQUIRE_VOID(vms_kernel_create(f.m, &kc, &f.k, NULL) == VMS_OK);
    vms_task *t;
    vms_file *file;
    REQUIRE_VOID(vms_proc_spawn(f.k, "f", 0, &t, NULL) == VMS_OK);
    REQUIRE_VOID(vms_file_open(f.k, path, &file, NULL) == VMS_OK);
    uint64_t va;
    CHECK_EQ(vms_sys_mmap(f.k, t, 0x30000000, 8u * PG, RW, VMS_MAP_SHARED | VMS_MAP_FIXED, file, 0,
                          &va, NULL),
             VMS_OK);
    fill(&f, t, va, 8, 0x4242);
    evict_all(&f); /* no swap: only file pages can go */
    const vms_kernel_stats *s = vms_kernel_get_stats(f.k);
    CHECK_EQ(s->pgsteal_file, 8);
    CHECK_EQ(s->pgwriteback, 8);
    CHECK_EQ(vms_file_cached_pages(file), 0);
    verify(&f, t, va, 8, 0x4242); /* re-read from the copy */
    CHECK_EQ(s->refault_file, 1); /* one fault, fault-around brings the rest */
    char b[8];
    CHECK_EQ(vms_proc_read(f.k, t, va + 8, b, 8), VMS_ACCESS_OK);
    CHECK(memcmp(b, "ijklmnop", 8) == 0); /* bytes the process never wrote */
    check_kernel(&f);
    vms_proc_exit(f.k, t);
    vms_file_close(f.k, file);
    snprintf(copy, sizeof copy, "%s/data", wb);
    teardown(&f);
    remove(copy);
    remove(path);
    rmdir(wb);
    rmdir(dir);
}

static void t_mlock_pinned(void)
{
    fix f;
    REQUIRE_VOID(setup(&f, "2M", "16M", "fifo", 1, NULL));
    vms_task *t;
    REQUIRE_VOID(vms_proc_spawn(f.k, "l", 0, &t, NULL) == VMS_OK);
    uint64_t lva = map_anon(&f, t, 0x10000000, 4u * PG, PANON);
    uint64_t pva = map_anon(&f, t, 0x11000000, 1u * PG, PANON);
    fill(&f, t, lva, 4, 1);
    fill(&f, t, pva, 1, 2);
    CHECK_EQ(vms_sys_mlock(f.k, t, lva, 4u * PG, NULL), VMS_OK);
    uint64_t pfn = pm(&f, t, pva) & VMS_PM_PFN_MASK;
    CHECK_EQ(vms_frames_pin(vms_kernel_frames(f.k), pfn), VMS_OK); /* as a DMA would */
    uint64_t big = map_anon(&f, t, 0x20000000, 1024u * PG, PANON);
    fill(&f, t, big, 1024, 3);
    uint64_t got; /* no kernel check while pinned: vms_dma_check wants DMA's own pins */
    vms_kernel_reclaim(f.k, 1u << 20, &got);
    for (unsigned i = 0; i < 4; i++)
        CHECK(pm(&f, t, lva + i * PG) & VMS_PM_PRESENT);
    CHECK_EQ(pm(&f, t, pva) & VMS_PM_PFN_MASK, pfn);
    CHECK(pm(&f, t, big) & VMS_PM_SWAPPED);
    CHECK(vms_kernel_get_stats(f.k)->pgrotated > 0);
    CHECK_EQ(vms_frames_unpin(vms_kernel_frames(f.k), pfn, NULL), VMS_OK);
    CHECK_EQ(vms_sys_munlock(f.k, t, lva, 4u * PG, NULL), VMS_OK);
    evict_all(&f);
    CHECK(pm(&f, t, lva) & VMS_PM_SWAPPED); /* evictable again */
    CHECK(pm(&f, t, pva) & VMS_PM_SWAPPED);
    verify(&f, t, lva, 4, 1);
    verify(&f, t, pva, 1, 2);
    check_kernel(&f);
    vms_proc_exit(f.k, t);
    CHECK_EQ(vms_frames_nfree(vms_kernel_frames(f.k)), f.free0);
    teardown(&f);
}

static uint64_t next_use_far(void *ud, int pid, uint64_t va)
{
    (void)ud, (void)pid;
    return va; /* higher addresses are used later: OPT evicts them first */
}

static void t_opt(void)
{
    vms_machine_config mc;
    vms_machine_preset("tiny", &mc, NULL);
    vms_machine *m;
    REQUIRE_VOID(vms_machine_create(NULL, &mc, &m, NULL) == VMS_OK);
    vms_kernel_config kc;
    vms_kernel_config_default(&kc);
    kc.policy = "opt";
    vms_kernel *k = NULL;
    vms_err err = {0};
    CHECK_EQ(vms_kernel_create(m, &kc, &k, &err), VMS_ERR_UNSUPPORTED);
    CHECK(strstr(err.msg, "next-use oracle") != NULL);
    kc.policy = "belady";
    CHECK_EQ(vms_kernel_create(m, &kc, &k, &err), VMS_ERR_NOTFOUND);
    vms_machine_destroy(m);

    fix f;
    REQUIRE_VOID(setup(&f, "2M", "8M", "opt", 1, next_use_far));
    CHECK_STR(vms_kernel_policy_name(f.k), "opt");
    CHECK_EQ(vms_kernel_set_next_use(f.k, NULL, NULL, &err), VMS_ERR_UNSUPPORTED);
    vms_task *t;
    REQUIRE_VOID(vms_proc_spawn(f.k, "o", 0, &t, NULL) == VMS_OK);
    uint64_t va = map_anon(&f, t, 0x10000000, 64u * PG, PANON);
    fill(&f, t, va, 64, 9);
    uint64_t got;
    vms_kernel_reclaim(f.k, 8, &got);
    CHECK_EQ(got, 8);
    for (unsigned i = 0; i < 56; i++) /* the 8 farthest went */
        CHECK(pm(&f, t, va + i * PG) & VMS_PM_PRESENT);
    for (unsigned i = 56; i < 64; i++)
        CHECK(pm(&f, t, va + i * PG) & VMS_PM_SWAPPED);
    verify(&f, t, va, 64, 9);
    vms_proc_exit(f.k, t);
    teardown(&f);
}

static void t_oom(void)
{
    fix f;
    REQUIRE_VOID(setup(&f, "2M", "0", "clock", 1, NULL));
    vms_task *hog, *small;
    REQUIRE_VOID(vms_proc_spawn(f.k, "hog", 0, &hog, NULL) == VMS_OK);
    REQUIRE_VOID(vms_proc_spawn(f.k, "small", 0, &small, NULL) == VMS_OK);
    uint64_t h = map_anon(&f, hog, 0x10000000, 400u * PG, PANON);
    fill(&f, hog, h, 400, 1);
    uint64_t s = map_anon(&f, small, 0x10000000, 200u * PG, PANON);
    vms_access_info ai = {0};
    unsigned i;
    for (i = 0; i < 200 && vms_task_alive(small); i++) {
        uint64_t v = i;
        vms_proc_access(f.k, small, s + i * PG, VMS_ACC_WRITE, &v, 8, &ai, NULL);
    }
    CHECK_EQ(i, 200);
    CHECK(vms_task_alive(small));
    CHECK(!vms_task_alive(hog));
    vms_task_info ti;
    vms_task_get_info(hog, &ti);
    CHECK_EQ(ti.signal, VMS_SIGKILL);
    CHECK_EQ(vms_kernel_get_stats(f.k)->oom_kill, 1);
    static const char want[] = "Out of memory: Killed process 1 (hog) total-vm:1732kB, "
                               "anon-rss:1600kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:";
    bool logged = false;
    for (unsigned j = 0; j < f.nlog; j++)
        logged |= strncmp(f.log[j], want, sizeof want - 1) == 0;
    if (!logged)
        for (unsigned j = 0; j < f.nlog; j++)
            fprintf(stderr, "log: %s\n", f.log[j]);
    CHECK(logged);
    check_kernel(&f);
    vms_proc_exit(f.k, hog);
    vms_proc_exit(f.k, small);
    teardown(&f);
}

/* A vfork parent and child share one mm: killing one frees nothing, so the OOM killer
 * kills both (Linux oom_kill_process), and the process that needed memory goes on. */
static void t_oom_vfork(void)
{
    fix f;
    REQUIRE_VOID(setup(&f, "2M", "0", "clock", 1, NULL));
    vms_task *sh, *child, *small;
    REQUIRE_VOID(vms_proc_spawn(f.k, "sh", 0, &sh, NULL) == VMS_OK);
    uint64_t h = map_anon(&f, sh, 0x10000000, 400u * PG, PANON);
    fill(&f, sh, h, 400, 1);
    REQUIRE_VOID(vms_proc_vfork(f.k, sh, &child, NULL) == VMS_OK);
    REQUIRE_VOID(vms_proc_spawn(f.k, "small", 0, &small, NULL) == VMS_OK);
    uint64_t s = map_anon(&f, small, 0x10000000, 200u * PG, PANON);
    unsigned i;
    for (i = 0; i < 200 && vms_task_alive(small); i++) {
        uint64_t v = i;
        vms_proc_access(f.k, small, s + i * PG, VMS_ACC_WRITE, &v, 8, NULL, NULL);
    }
    CHECK_EQ(i, 200);
    CHECK(vms_task_alive(small));
    CHECK(!vms_task_alive(sh));
    CHECK(!vms_task_alive(child));
    CHECK_EQ(vms_kernel_get_stats(f.k)->oom_kill, 1);
    check_kernel(&f);
    vms_proc_exit(f.k, child);
    vms_proc_exit(f.k, sh);
    vms_proc_exit(f.k, small);
    teardown(&f);
}

static void t_kswapd_core_and_json(void)
{
    vms_config c;
    vms_config_init(&c, NULL, NULL);
    CHECK_EQ(vms_config_set(&c, "swap", "64M", "t", NULL), VMS_OK);
    CHECK_EQ(c.kernel.swap_bytes, UINT64_C(64) << 20);
    CHECK_EQ(vms_config_set(&c, "swap", "0", "t", NULL), VMS_OK);
    CHECK_EQ(vms_config_set(&c, "policy", "lru", "t", NULL), VMS_OK);
    CHECK_STR(vms_config_kernel(&c).policy, "lru");
    CHECK_EQ(vms_config_set(&c, "policy", "nope", "t", NULL), VMS_ERR_INVAL);
    CHECK_EQ(vms_config_set(&c, "swap.device", "hdd", "t", NULL), VMS_OK);
    CHECK_EQ(c.kernel.swap_latency_us, 10000);
    CHECK_EQ(vms_config_set(&c, "kswapd.core", "1", "t", NULL), VMS_OK);
    CHECK_EQ(vms_config_set(&c, "kswapd.core", "x", "t", NULL), VMS_ERR_INVAL);

    fix f;
    REQUIRE_VOID(setup(&f, "2M", "8M", "clock", 2, NULL));
    vms_kernel_destroy(f.k);
    vms_kernel_config kc;
    vms_kernel_config_default(&kc);
    kc.swap_bytes = UINT64_C(8) << 20;
    kc.kswapd_core = 1;
    REQUIRE_VOID(vms_kernel_create(f.m, &kc, &f.k, NULL) == VMS_OK);
    vms_task *t;
    REQUIRE_VOID(vms_proc_spawn(f.k, "k", 0, &t, NULL) == VMS_OK);
    uint64_t va = map_anon(&f, t, 0x10000000, 1024u * PG, PANON);
    uint64_t c1 = vms_core_cycles(vms_machine_core(f.m, 1));
    fill(&f, t, va, 1024, 5);
    const vms_kernel_stats *s = vms_kernel_get_stats(f.k);
    CHECK(s->kswapd_cycles > 0);
    CHECK(vms_core_cycles(vms_machine_core(f.m, 1)) - c1 >= s->kswapd_cycles);
    verify(&f, t, va, 1024, 5);
    vms_strbuf sb;
    vms_strbuf_init(&sb, NULL);
    CHECK_EQ(vms_kernel_stats_json_members(f.k, &sb), VMS_OK);
    const char *j = vms_strbuf_str(&sb);
    CHECK(strstr(j, "\"swap\":{\"ins\":") != NULL);
    CHECK(strstr(j, "\"reclaim\":{\"policy\":\"twolist\"") != NULL);
    CHECK(strstr(j, "\"thrashing\":{\"fault_cycles\":") != NULL);
    vms_strbuf_free(&sb);
    vms_strbuf_init(&sb, NULL);
    vms_kernel_meminfo(f.k, &sb);
    CHECK(strstr(vms_strbuf_str(&sb), "SwapTotal:          8188 kB\n") != NULL);
    vms_strbuf_free(&sb);
    vms_strbuf_init(&sb, NULL);
    vms_kernel_vmstat(f.k, &sb);
    CHECK(strstr(vms_strbuf_str(&sb), "\npswpout ") != NULL);
    CHECK(strstr(vms_strbuf_str(&sb), "\npgscan_kswapd ") != NULL);
    CHECK(strstr(vms_strbuf_str(&sb), "\npgsteal_direct ") != NULL);
    vms_strbuf_free(&sb);
    vms_proc_exit(f.k, t);
    kc.kswapd_core = 5;
    vms_kernel_destroy(f.k);
    f.k = NULL;
    CHECK_EQ(vms_kernel_create(f.m, &kc, &f.k, NULL), VMS_ERR_INVAL);
    vms_machine_destroy(f.m);
}

/* Allocation failure at every step of booting with swap and a policy, and of swapping:
 * nothing leaks, and a boot that succeeds works. */
static void t_alloc_failures(void)
{
    unsigned booted = 0;
    for (long budget = 0; budget < 2000; budget += budget < 100 ? 1 : 7) {
        th_failalloc fa;
        const vms_allocator *a = th_failalloc_init(&fa, budget);
        vms_machine_config mc;
        vms_machine_preset("skylake", &mc, NULL);
        mc.ram_bytes = UINT64_C(1) << 20;
        vms_machine *m;
        if (vms_machine_create(a, &mc, &m, NULL) != VMS_OK) {
            CHECK_EQ(fa.live_bytes, 0);
            continue;
        }
        vms_kernel_config kc;
        vms_kernel_config_default(&kc);
        kc.swap_bytes = UINT64_C(4) << 20;
        kc.policy = "lru";
        vms_kernel *k;
        if (vms_kernel_create(m, &kc, &k, NULL) == VMS_OK) {
            booted++;
            vms_task *t;
            uint64_t va;
            if (vms_proc_spawn(k, "a", 0, &t, NULL) == VMS_OK &&
                vms_sys_mmap(k, t, 0x10000000, 512u * PG, RW, PANON | VMS_MAP_FIXED, NULL, 0, &va,
                             NULL) == VMS_OK)
                for (unsigned i = 0; i < 512; i++) {
                    uint64_t v = i;
                    vms_access_info ai;
                    if (vms_proc_access(k, t, va + i * PG, VMS_ACC_WRITE, &v, 8, &ai, NULL) !=
                            VMS_OK ||
                        ai.outcome != VMS_ACCESS_OK)
                        break;
                }
            CHECK_EQ(vms_kernel_check(k, NULL), VMS_OK);
            vms_kernel_destroy(k);
        }
        vms_machine_destroy(m);
        CHECK_EQ(fa.live_bytes, 0);
    }
    CHECK(booted >= 200);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "swap");
    t_roundtrip();
    t_cow_after_swap();
    t_write_error();
    t_read_error();
    t_shmem_shared();
    t_file_reclaim();
    t_mlock_pinned();
    t_opt();
    t_oom();
    t_oom_vfork();
    t_kswapd_core_and_json();
    t_alloc_failures();
    return th_finish();
}
