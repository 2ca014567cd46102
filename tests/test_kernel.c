/*
 * test_kernel.c — the kernel's fault semantics, checked against what real Linux does:
 * zero page then COW, fork COW of exactly one page, fault-around on a file mapping,
 * private and shared file mappings (writeback to a copy), shared anonymous memory and
 * named shm, the direct map's protection, SIGSEGV cases, munmap splitting, stack growth,
 * brk, mlock, MADV_DONTNEED, huge pages, TLB shootdowns between threads on two cores,
 * /proc views, and frame accounting after every test (every frame back).
 */
#include <stdio.h>
#include <unistd.h>

#include "harness.h"
#include "vmsim/core.h"
#include "vmsim/frames.h"
#include "vmsim/kernel.h"
#include "vmsim/mman.h"
#include "vmsim/proc.h"

#define RW        (VMS_PROT_READ | VMS_PROT_WRITE)
#define PRIV_ANON (VMS_MAP_PRIVATE | VMS_MAP_ANONYMOUS)

typedef struct fx {
    vms_machine *m;
    vms_kernel *k;
    uint64_t free0;
    char log[4096];
} fx;

static void on_log(void *ud, vms_log_level lvl, const char *msg)
{
    fx *f = ud;
    (void)lvl;
    size_t n = strlen(f->log);
    snprintf(f->log + n, sizeof f->log - n, "%s\n", msg);
}

static bool fx_init_ram(fx *f, const vms_kernel_config *kc, unsigned ncores, uint64_t ram)
{
    memset(f, 0, sizeof *f);
    vms_machine_config mc;
    vms_err err = {0};
    vms_machine_preset("skylake", &mc, NULL);
    mc.ram_bytes = ram;
    mc.ncores = ncores;
    mc.seed = th_seed;
    if (vms_machine_create(NULL, &mc, &f->m, &err) != VMS_OK ||
        vms_kernel_create(f->m, kc, &f->k, &err) != VMS_OK) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return false;
    }
    vms_kernel_set_log(f->k, on_log, f);
    f->free0 = vms_frames_nfree(vms_kernel_frames(f->k));
    return true;
}

static bool fx_init_cfg(fx *f, const vms_kernel_config *kc, unsigned ncores)
{
    return fx_init_ram(f, kc, ncores, UINT64_C(256) << 20);
}

static bool fx_init(fx *f, unsigned ncores)
{
    vms_kernel_config kc;
    vms_kernel_config_default(&kc);
    kc.seed = th_seed;
    kc.writeback_dir = "/tmp";
    return fx_init_cfg(f, &kc, ncores);
}

static void check_kernel(fx *f)
{
    vms_err err = {0};
    vms_status st = vms_kernel_check(f->k, &err);
    if (st != VMS_OK)
        fprintf(stderr, "kernel check: %s\n", err.msg);
    CHECK_EQ(st, VMS_OK);
}

/* Exit every process: every frame must come back. */
static void fx_done(fx *f)
{
    check_kernel(f);
    while (vms_proc_count(f->k))
        vms_proc_exit(f->k, vms_proc_at(f->k, 0));
    check_kernel(f);
    CHECK_EQ(vms_frames_nfree(vms_kernel_frames(f->k)), f->free0);
    vms_kernel_destroy(f->k);
    vms_machine_destroy(f->m);
}

static uint64_t mmap_or_die(fx *f, vms_task *t, uint64_t addr, uint64_t len, unsigned prot,
                            unsigned flags, vms_file *file, uint64_t off)
{
    uint64_t va = 0;
    vms_err err = {0};
    vms_status st = vms_sys_mmap(f->k, t, addr, len, prot, flags, file, off, &va, &err);
    if (st != VMS_OK)
        fprintf(stderr, "mmap: %s\n", err.msg);
    CHECK_EQ(st, VMS_OK);
    return va;
}

static uint64_t pagemap1(fx *f, vms_task *t, uint64_t va)
{
    uint64_t e = 0;
    vms_proc_pagemap(f->k, t, va, 1, &e);
    return e;
}

/* ---- anonymous memory ------------------------------------------------------------------ */

static void test_zero_page_then_cow(void)
{
    fx f;
    if (!fx_init(&f, 1))
        return;
    vms_task *t;
    CHECK_EQ(vms_proc_spawn(f.k, "a.out", 0, &t, NULL), VMS_OK);
    uint64_t va = mmap_or_die(&f, t, 0, 4 * VMS_PAGE_SIZE, RW, PRIV_ANON, NULL, 0);
    uint8_t b = 0xAA;
    vms_access_info info;
    const vms_kernel_stats *s = vms_kernel_get_stats(f.k);
    CHECK_EQ(vms_proc_access(f.k, t, va + 5, VMS_ACC_READ, &b, 1, &info, NULL), VMS_OK);
    CHECK_EQ(info.outcome, VMS_ACCESS_OK);
    CHECK_EQ(b, 0);
    CHECK_EQ(info.faults, 1);
    CHECK_EQ(s->zero_page, 1);
    uint64_t pm = pagemap1(&f, t, va);
    CHECK(pm & VMS_PM_PRESENT);
    CHECK(!(pm & VMS_PM_EXCLUSIVE)); /* the shared zero page */
    b = 7;
    CHECK_EQ(vms_proc_access(f.k, t, va + 5, VMS_ACC_WRITE, &b, 1, &info, NULL), VMS_OK);
    CHECK_EQ(info.faults, 1);
    CHECK_EQ(s->cow, 1);
    CHECK_EQ(s->cow_copy, 1);
    CHECK_EQ(s->pgfault, 2);
    uint64_t pm2 = pagemap1(&f, t, va);
    CHECK((pm2 & VMS_PM_PFN_MASK) != (pm & VMS_PM_PFN_MASK));
    CHECK(pm2 & VMS_PM_EXCLUSIVE);
    b = 0;
    CHECK_EQ(vms_proc_read(f.k, t, va + 5, &b, 1), VMS_ACCESS_OK);
    CHECK_EQ(b, 7);
    /* A write first allocates directly: one fault. */
    CHECK_EQ(vms_proc_access(f.k, t, va + VMS_PAGE_SIZE, VMS_ACC_WRITE, &b, 1, &info, NULL),
             VMS_OK);
    CHECK_EQ(info.faults, 1);
    CHECK_EQ(s->anon_alloc, 1); /* the first page came from the zero page's COW */
    CHECK_EQ(vms_proc_rss(f.k, t), 2);
    fx_done(&f);
}

static void test_fork_cow(void)
{
    fx f;
    if (!fx_init(&f, 1))
        return;
    vms_task *p, *c;
    CHECK_EQ(vms_proc_spawn(f.k, "parent", 0, &p, NULL), VMS_OK);
    uint64_t va = mmap_or_die(&f, p, 0, 8 * VMS_PAGE_SIZE, RW, PRIV_ANON, NULL, 0);
    char buf[8 * 4096];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (char)(i * 7);
    CHECK_EQ(vms_proc_write(f.k, p, va, buf, sizeof buf), VMS_ACCESS_OK);
    uint64_t used = vms_frames_nfree(vms_kernel_frames(f.k));
    CHECK_EQ(vms_proc_fork(f.k, p, &c, NULL), VMS_OK);
    check_kernel(&f);
    const vms_kernel_stats *s = vms_kernel_get_stats(f.k);
    uint64_t copies = s->cow_copy;
    /* Child writes one byte of page 3: exactly one page is copied. */
    uint64_t before_child = vms_frames_nfree(vms_kernel_frames(f.k));
    char x = 'C';
    CHECK_EQ(vms_proc_write(f.k, c, va + 3 * 4096 + 10, &x, 1), VMS_ACCESS_OK);
    CHECK_EQ(s->cow_copy - copies, 1);
    CHECK_EQ(before_child - vms_frames_nfree(vms_kernel_frames(f.k)), 1);
    CHECK(used > before_child); /* the child's page tables */
    char got[8 * 4096];
    CHECK_EQ(vms_proc_read(f.k, p, va, got, sizeof got), VMS_ACCESS_OK);
    CHECK(memcmp(got, buf, sizeof buf) == 0); /* the parent still reads its old bytes */
    CHECK_EQ(vms_proc_read(f.k, c, va + 3 * 4096 + 10, &x, 1), VMS_ACCESS_OK);
    CHECK_EQ(x, 'C');
    /* The parent writes the same page: it is the only owner now, so it reuses it. */
    uint64_t reuse = s->cow_reuse;
    x = 'P';
    CHECK_EQ(vms_proc_write(f.k, p, va + 3 * 4096 + 10, &x, 1), VMS_ACCESS_OK);
    CHECK_EQ(s->cow_reuse - reuse, 1);
    CHECK_EQ(vms_proc_read(f.k, c, va + 3 * 4096 + 10, &x, 1), VMS_ACCESS_OK);
    CHECK_EQ(x, 'C');
    uint64_t pm = pagemap1(&f, c, va);
    CHECK(!(pm & VMS_PM_EXCLUSIVE)); /* page 0 still shared */
    check_kernel(&f);
    vms_proc_exit(f.k, c);
    check_kernel(&f);
    fx_done(&f);
}

/* ---- vfork: a new process in its parent's address space until exec/exit --------------- */

static uint64_t nfree(fx *f)
{
    return vms_frames_nfree(vms_kernel_frames(f->k));
}

/* /proc/PID/maps of t, copied into out. */
static void maps_of(fx *f, vms_task *t, char *out, size_t len)
{
    vms_strbuf sb;
    vms_strbuf_init(&sb, NULL);
    vms_proc_maps(f->k, t, &sb);
    snprintf(out, len, "%s", vms_strbuf_str(&sb));
    vms_strbuf_free(&sb);
}

static void test_vfork_shares_until_exec(void)
{
    fx f;
    if (!fx_init(&f, 2))
        return;
    vms_task *p, *c;
    CHECK_EQ(vms_proc_spawn(f.k, "sh", 0, &p, NULL), VMS_OK);
    uint64_t va = mmap_or_die(&f, p, 0, 8 * VMS_PAGE_SIZE, RW, PRIV_ANON, NULL, 0);
    char buf[8 * 4096];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (char)(i * 7);
    CHECK_EQ(vms_proc_write(f.k, p, va, buf, sizeof buf), VMS_ACCESS_OK);
    const vms_kernel_stats *s = vms_kernel_get_stats(f.k);
    uint64_t free0 = nfree(&f), pgf0 = s->pgfault, cow0 = s->cow_copy, rss0 = vms_proc_rss(f.k, p);
    uint64_t forks0 = s->forks;

    CHECK_EQ(vms_proc_vfork(f.k, p, &c, NULL), VMS_OK);
    check_kernel(&f);
    vms_task_info pi, ci;
    vms_task_get_info(p, &pi);
    vms_task_get_info(c, &ci);
    CHECK(ci.pid != pi.pid);
    CHECK_EQ(ci.ppid, pi.pid);
    CHECK_EQ(ci.nthreads, 1);
    CHECK_EQ(ci.cr3, pi.cr3);   /* the same root and PCID */
    CHECK_EQ(nfree(&f), free0); /* no table copied */
    CHECK_EQ(s->forks - forks0, 1);
    CHECK_EQ(vms_proc_count(f.k), 2);

    /* The child writes the parent's memory: no fault, no copy; the parent sees it. */
    char x = 'C';
    CHECK_EQ(vms_proc_write(f.k, c, va + 3 * 4096 + 10, &x, 1), VMS_ACCESS_OK);
    CHECK_EQ(s->pgfault, pgf0);
    CHECK_EQ(s->cow_copy, cow0);
    x = 0;
    CHECK_EQ(vms_proc_read(f.k, p, va + 3 * 4096 + 10, &x, 1), VMS_ACCESS_OK);
    CHECK_EQ(x, 'C');
    buf[3 * 4096 + 10] = 'C';
    /* ... and the parent's later writes do not fault either (nothing was protected). */
    CHECK_EQ(vms_proc_write(f.k, p, va, buf, sizeof buf), VMS_ACCESS_OK);
    CHECK_EQ(s->pgfault, pgf0);
    /* The child's mmap is the parent's too: the /proc views show one address space. */
    uint64_t va2 = mmap_or_die(&f, c, 0, VMS_PAGE_SIZE, RW, PRIV_ANON, NULL, 0);
    char mp[4096], mc[4096];
    maps_of(&f, p, mp, sizeof mp);
    maps_of(&f, c, mc, sizeof mc);
    CHECK(strcmp(mp, mc) == 0);
    CHECK_EQ(vms_proc_rss(f.k, c), vms_proc_rss(f.k, p));
    CHECK_EQ(pagemap1(&f, c, va), pagemap1(&f, p, va));
    /* A child on another core: the shared mm's shootdowns reach it. */
    CHECK_EQ(vms_task_set_core(f.k, c, 1, NULL), VMS_OK);
    CHECK_EQ(vms_proc_write(f.k, c, va2, "z", 1), VMS_ACCESS_OK);
    uint64_t remote0 = s->nr_tlb_remote_flush;
    CHECK_EQ(vms_sys_munmap(f.k, p, va2, VMS_PAGE_SIZE, NULL), VMS_OK);
    CHECK_EQ(s->nr_tlb_remote_flush - remote0, 1);
    CHECK_EQ(vms_proc_read(f.k, c, va2, &x, 1), VMS_ACCESS_SEGV); /* the child is gone */
    CHECK(!vms_task_alive(c));
    CHECK(vms_task_alive(p));
    check_kernel(&f);
    vms_proc_exit(f.k, c);
    check_kernel(&f);

    /* A second child execs: a fresh address space for it, the parent's untouched. */
    CHECK_EQ(vms_proc_vfork(f.k, p, &c, NULL), VMS_OK);
    CHECK_EQ(vms_proc_write(f.k, c, va + 5 * 4096, "v", 1), VMS_ACCESS_OK);
    buf[5 * 4096] = 'v';
    uint64_t execs0 = s->execs;
    CHECK_EQ(vms_proc_exec(f.k, c, "true", NULL), VMS_OK);
    CHECK_EQ(s->execs - execs0, 1);
    check_kernel(&f);
    vms_task_get_info(c, &ci);
    vms_task_get_info(p, &pi);
    CHECK(ci.cr3 != pi.cr3);
    CHECK(ci.pcid != pi.pcid || pi.pcid == 0);
    CHECK_EQ(strcmp(ci.name, "true"), 0);
    CHECK_EQ(vms_proc_rss(f.k, c), 0);
    CHECK_EQ(vms_proc_rss(f.k, p), rss0);
    CHECK_EQ(vms_proc_read(f.k, c, va, &x, 1), VMS_ACCESS_SEGV); /* not mapped in the child */
    vms_proc_exit(f.k, c);
    char got[8 * 4096];
    CHECK_EQ(vms_proc_read(f.k, p, va, got, sizeof got), VMS_ACCESS_OK);
    CHECK(memcmp(got, buf, sizeof buf) == 0);
    CHECK_EQ(s->cow_copy, cow0);
    CHECK_EQ(vms_proc_rss(f.k, p), rss0);
    check_kernel(&f);
    fx_done(&f);
}

static void test_vfork_exit_paths(void)
{
    fx f;
    if (!fx_init(&f, 1))
        return;
    vms_task *p, *th, *c, *c2;
    CHECK_EQ(vms_proc_spawn(f.k, "sh", 0, &p, NULL), VMS_OK);
    uint64_t va = mmap_or_die(&f, p, 0, 4 * VMS_PAGE_SIZE, RW, PRIV_ANON, NULL, 0);
    CHECK_EQ(vms_proc_write(f.k, p, va, "parent", 6), VMS_ACCESS_OK);
    uint64_t rss0 = vms_proc_rss(f.k, p);
    /* A child that exits without exec: the parent keeps everything. */
    CHECK_EQ(vms_proc_vfork(f.k, p, &c, NULL), VMS_OK);
    CHECK_EQ(vms_proc_write(f.k, c, va + 4096, "child", 5), VMS_ACCESS_OK);
    vms_task_exit(f.k, c);
    check_kernel(&f);
    char b[8] = {0};
    CHECK_EQ(vms_proc_read(f.k, p, va + 4096, b, 5), VMS_ACCESS_OK);
    CHECK(memcmp(b, "child", 5) == 0);
    CHECK_EQ(vms_proc_rss(f.k, p), rss0 + 1);
    /* vfork from a second thread: the mm has three users; exec de-threads nothing in
     * the parent. */
    CHECK_EQ(vms_proc_clone_thread(f.k, p, 0, &th, NULL), VMS_OK);
    CHECK_EQ(vms_proc_vfork(f.k, th, &c, NULL), VMS_OK);
    check_kernel(&f);
    CHECK_EQ(vms_proc_exec(f.k, c, "ls", NULL), VMS_OK);
    check_kernel(&f);
    vms_task_info pi;
    vms_task_get_info(p, &pi);
    CHECK_EQ(pi.nthreads, 2);
    /* A vfork child of the exec'd child: fork and vfork chains keep their own mms. */
    CHECK_EQ(vms_proc_vfork(f.k, c, &c2, NULL), VMS_OK);
    check_kernel(&f);
    /* The parent exits first: the child keeps the address space alive and readable. */
    CHECK_EQ(vms_proc_vfork(f.k, p, &c, NULL), VMS_OK);
    vms_proc_exit(f.k, p);
    check_kernel(&f);
    memset(b, 0, sizeof b);
    CHECK_EQ(vms_proc_read(f.k, c, va, b, 6), VMS_ACCESS_OK);
    CHECK(memcmp(b, "parent", 6) == 0);
    /* vfork of a dead process is refused. */
    CHECK_EQ(vms_proc_read(f.k, c, UINT64_C(0xffff888000001000), b, 1), VMS_ACCESS_SEGV);
    vms_task *bad = NULL;
    CHECK_EQ(vms_proc_vfork(f.k, c, &bad, NULL), VMS_ERR_INVAL);
    CHECK(bad == NULL);
    check_kernel(&f);
    fx_done(&f); /* every frame back */
}

/* ---- files ------------------------------------------------------------------------------ */

static void make_file(const char *path, size_t len, char seed)
{
    FILE *h = fopen(path, "wb");
    for (size_t i = 0; i < len; i++)
        fputc((char)(seed + (char)(i % 251)), h);
    fclose(h);
}

static bool file_equals(const char *path, size_t off, const void *want, size_t len)
{
    char buf[64];
    FILE *h = fopen(path, "rb");
    if (!h || len > sizeof buf)
        return false;
    bool ok = fseek(h, (long)off, SEEK_SET) == 0 && fread(buf, 1, len, h) == len &&
              memcmp(buf, want, len) == 0;
    fclose(h);
    return ok;
}

static void test_file_fault_around(void)
{
    fx f;
    if (!fx_init(&f, 1))
        return;
    char path[64];
    snprintf(path, sizeof path, "/tmp/vmsim_fa_%d.bin", (int)getpid());
    make_file(path, 16 * 4096, 'a');
    vms_file *file;
    vms_task *t;
    CHECK_EQ(vms_file_open(f.k, path, &file, NULL), VMS_OK);
    CHECK_EQ(vms_proc_spawn(f.k, "reader", 0, &t, NULL), VMS_OK);
    /* a 64 KiB-aligned mapping: the fault-around window is aligned in virtual space */
    uint64_t va = mmap_or_die(&f, t, 0x10000000, 16 * 4096, VMS_PROT_READ,
                              VMS_MAP_PRIVATE | VMS_MAP_FIXED, file, 0);
    char b;
    vms_access_info info;
    CHECK_EQ(vms_proc_access(f.k, t, va, VMS_ACC_READ, &b, 1, &info, NULL), VMS_OK);
    CHECK_EQ(info.faults, 1);
    CHECK_EQ(info.major, 1);
    CHECK_EQ(b, 'a');
    uint64_t pm[16];
    vms_proc_pagemap(f.k, t, va, 16, pm);
    unsigned present = 0;
    for (int i = 0; i < 16; i++)
        present += (pm[i] & VMS_PM_PRESENT) && (pm[i] & VMS_PM_FILE);
    CHECK_EQ(present, 16);
    CHECK_EQ(vms_kernel_get_stats(f.k)->fault_around, 15);
    CHECK_EQ(vms_kernel_get_stats(f.k)->pgmajfault, 1);
    /* Every page reads without another fault. */
    uint64_t faults = vms_kernel_get_stats(f.k)->pgfault;
    for (int i = 0; i < 16; i++) {
        CHECK_EQ(vms_proc_read(f.k, t, va + (uint64_t)i * 4096 + 1, &b, 1), VMS_ACCESS_OK);
        CHECK_EQ(b, (char)('a' + (char)((i * 4096 + 1) % 251)));
    }
    CHECK_EQ(vms_kernel_get_stats(f.k)->pgfault, faults);
    vms_strbuf sb;
    vms_strbuf_init(&sb, NULL);
    vms_proc_maps(f.k, t, &sb);
    CHECK(strstr(vms_strbuf_str(&sb), path) != NULL);
    CHECK(strstr(vms_strbuf_str(&sb), " r--p 00000000 08:01 ") != NULL);
    vms_strbuf_free(&sb);
    vms_file_close(f.k, file);
    fx_done(&f);
    remove(path);
}

/*
 * Files and host memory (issue 16 #4): only regular files open, and the page cache of a
 * big sparse file costs host memory per cached page, not per page of its size (a flat
 * array of 8 bytes per page cost 128 MiB here at the first fault).
 */
static void test_file_sparse_and_special(void)
{
    th_failalloc fa;
    const vms_allocator *a = th_failalloc_init(&fa, -1);
    fx f;
    memset(&f, 0, sizeof f);
    vms_machine_config mc;
    vms_machine_preset("skylake", &mc, NULL);
    mc.ram_bytes = UINT64_C(64) << 20;
    mc.ncores = 1;
    vms_kernel_config kc;
    vms_kernel_config_default(&kc);
    kc.writeback_dir = "/tmp";
    REQUIRE_VOID(vms_machine_create(a, &mc, &f.m, NULL) == VMS_OK &&
                 vms_kernel_create(f.m, &kc, &f.k, NULL) == VMS_OK);
    f.free0 = vms_frames_nfree(vms_kernel_frames(f.k));
    vms_file *file = NULL;
    vms_err err = {0};
    CHECK_EQ(vms_file_open(f.k, "/tmp", &file, &err), VMS_ERR_INVAL);
    CHECK(strstr(err.msg, "/tmp: not a regular file (a directory)") != NULL);
    CHECK_EQ(vms_file_open(f.k, "/dev/null", &file, &err), VMS_ERR_INVAL);
    CHECK(strstr(err.msg, "/dev/null: not a regular file (a character device)") != NULL);
    char path[64];
    snprintf(path, sizeof path, "/tmp/vmsim_sparse_%d.bin", (int)getpid());
    FILE *h = fopen(path, "wb");
    REQUIRE_VOID(h != NULL);
    uint64_t size = UINT64_C(64) << 30; /* 64 GiB, all hole but the last byte */
    bool made = fseek(h, (long)(size - 1), SEEK_SET) == 0 && fputc('Z', h) == 'Z';
    fclose(h);
    REQUIRE_VOID(made);
    CHECK_EQ(vms_file_open(f.k, path, &file, &err), VMS_OK);
    CHECK_EQ(vms_file_size(file), size);
    vms_task *t;
    CHECK_EQ(vms_proc_spawn(f.k, "big", 0, &t, NULL), VMS_OK);
    uint64_t va = mmap_or_die(&f, t, 0, size, VMS_PROT_READ, VMS_MAP_PRIVATE, file, 0);
    long long live0 = fa.live_bytes;
    char c = 1;
    CHECK_EQ(vms_proc_read(f.k, t, va + size - 1, &c, 1), VMS_ACCESS_OK);
    CHECK_EQ(c, 'Z');
    CHECK_EQ(vms_proc_read(f.k, t, va + (size >> 1), &c, 1), VMS_ACCESS_OK);
    CHECK_EQ(c, 0);
    CHECK(fa.live_bytes - live0 < (1 << 20)); /* a few KiB: cache nodes, rmap records */
    CHECK(vms_file_cached_pages(file) >= 2);
    vms_proc_exit(f.k, t);
    vms_file_close(f.k, file);
    fx_done(&f);
    CHECK_EQ(fa.live_bytes, 0);
    remove(path);
}

static void test_file_private_and_shared(void)
{
    fx f;
    if (!fx_init(&f, 1))
        return;
    char path[64], copy[80];
    snprintf(path, sizeof path, "/tmp/vmsim_src_%d.bin", (int)getpid());
    snprintf(copy, sizeof copy, "/tmp/vmsim_src_%d.bin", (int)getpid());
    make_file(path, 3 * 4096 + 100, 'A');
    vms_kernel_config kc;
    vms_kernel_config_default(&kc);
    /* writeback copies go to a subdirectory so they never overwrite the original */
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/vmsim_wb_%d", (int)getpid());
    char cmd[128];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
    CHECK_EQ(system(cmd), 0);
    vms_kernel_destroy(f.k);
    kc.writeback_dir = dir;
    vms_kernel_create(f.m, &kc, &f.k, NULL);
    f.free0 = vms_frames_nfree(vms_kernel_frames(f.k));
    snprintf(copy, sizeof copy, "%s/vmsim_src_%d.bin", dir, (int)getpid());

    vms_file *file;
    vms_task *t;
    CHECK_EQ(vms_file_open(f.k, path, &file, NULL), VMS_OK);
    CHECK_EQ(vms_proc_spawn(f.k, "writer", 0, &t, NULL), VMS_OK);
    /* private: the write copies the page; the file is untouched. The page was not
     * present, so it is not a (write-protect) COW fault in the counters. */
    uint64_t pv = mmap_or_die(&f, t, 0, 4 * 4096, RW, VMS_MAP_PRIVATE, file, 0);
    const vms_kernel_stats *s = vms_kernel_get_stats(f.k);
    CHECK_EQ(vms_proc_write(f.k, t, pv + 4096 + 3, "xyz", 3), VMS_ACCESS_OK);
    CHECK_EQ(s->cow, 0);
    CHECK_EQ(s->cow_copy, 0);
    CHECK_EQ(s->pgmajfault, 1);
    char got[4];
    CHECK_EQ(vms_proc_read(f.k, t, pv + 4096 + 2, got, 4), VMS_ACCESS_OK);
    CHECK(memcmp(got + 1, "xyz", 3) == 0);
    CHECK_EQ(got[0], (char)('A' + (4096 + 2) % 251));
    /* beyond EOF (page 4 of a 3.02-page file) -> SIGBUS in a second process */
    vms_task *t2;
    CHECK_EQ(vms_proc_spawn(f.k, "bus", 0, &t2, NULL), VMS_OK);
    uint64_t bv = mmap_or_die(&f, t2, 0, 8 * 4096, VMS_PROT_READ, VMS_MAP_PRIVATE, file, 0);
    char c;
    CHECK_EQ(vms_proc_read(f.k, t2, bv + 3 * 4096 + 99, &c, 1), VMS_ACCESS_OK);
    CHECK_EQ(vms_proc_read(f.k, t2, bv + 3 * 4096 + 100, &c, 1), VMS_ACCESS_OK);
    CHECK_EQ(c, 0); /* the tail of the last page reads zeros */
    CHECK_EQ(vms_proc_read(f.k, t2, bv + 4 * 4096, &c, 1), VMS_ACCESS_BUS);
    /* shared: bytes reach the copy on msync, never the original */
    uint64_t sv = mmap_or_die(&f, t, 0, 4 * 4096, RW, VMS_MAP_SHARED, file, 0);
    CHECK_EQ(vms_proc_write(f.k, t, sv + 2 * 4096 + 5, "HELLO", 5), VMS_ACCESS_OK);
    CHECK_EQ(vms_sys_msync(f.k, t, sv, 4 * 4096, VMS_MS_SYNC, NULL), VMS_OK);
    CHECK(file_equals(copy, 2 * 4096 + 5, "HELLO", 5));
    char orig[5];
    for (int i = 0; i < 5; i++)
        orig[i] = (char)('A' + (2 * 4096 + 5 + i) % 251);
    CHECK(file_equals(path, 2 * 4096 + 5, orig, 5));
    /* the private COW page did not leak into the file */
    char o2[3] = {(char)('A' + (4096 + 3) % 251), (char)('A' + (4096 + 4) % 251),
                  (char)('A' + (4096 + 5) % 251)};
    CHECK(file_equals(copy, 4096 + 3, o2, 3));
    /* a second write after msync faults again (write-protected by writeback) and lands
     * at munmap */
    uint64_t pgf = s->pgfault;
    CHECK_EQ(vms_proc_write(f.k, t, sv + 5, "WORLD", 5), VMS_ACCESS_OK);
    CHECK(s->pgfault > pgf);
    CHECK_EQ(vms_proc_write(f.k, t, sv + 2 * 4096 + 5, "AGAIN", 5), VMS_ACCESS_OK);
    CHECK_EQ(vms_sys_munmap(f.k, t, sv, 4 * 4096, NULL), VMS_OK);
    CHECK(file_equals(copy, 5, "WORLD", 5));
    CHECK(file_equals(copy, 2 * 4096 + 5, "AGAIN", 5));
    CHECK(file_equals(path, 2 * 4096 + 5, orig, 5));
    CHECK(strcmp(vms_file_writeback_path(file), copy) == 0);
    vms_file_close(f.k, file);
    fx_done(&f);
    remove(path);
    remove(copy);
    rmdir(dir);
}

static void test_shared_anon_and_shm(void)
{
    fx f;
    if (!fx_init(&f, 1))
        return;
    vms_task *p, *c;
    CHECK_EQ(vms_proc_spawn(f.k, "p", 0, &p, NULL), VMS_OK);
    uint64_t va = mmap_or_die(&f, p, 0, 2 * 4096, RW, VMS_MAP_SHARED | VMS_MAP_ANONYMOUS, NULL, 0);
    CHECK_EQ(vms_proc_write(f.k, p, va, "before", 6), VMS_ACCESS_OK);
    CHECK_EQ(vms_proc_fork(f.k, p, &c, NULL), VMS_OK);
    CHECK_EQ(vms_proc_write(f.k, c, va + 4096, "child", 5), VMS_ACCESS_OK);
    CHECK_EQ(vms_proc_write(f.k, p, va, "parent", 6), VMS_ACCESS_OK);
    char b[8] = {0};
    CHECK_EQ(vms_proc_read(f.k, p, va + 4096, b, 5), VMS_ACCESS_OK);
    CHECK(memcmp(b, "child", 5) == 0);
    CHECK_EQ(vms_proc_read(f.k, c, va, b, 6), VMS_ACCESS_OK);
    CHECK(memcmp(b, "parent", 6) == 0);
    vms_strbuf sb;
    vms_strbuf_init(&sb, NULL);
    vms_proc_maps(f.k, c, &sb);
    CHECK(strstr(vms_strbuf_str(&sb), "rw-s 00000000 00:01") != NULL);
    CHECK(strstr(vms_strbuf_str(&sb), "/dev/zero (deleted)") != NULL);
    vms_strbuf_free(&sb);
    /* named shm between two unrelated processes */
    vms_task *a, *z;
    vms_file *s1, *s2;
    CHECK_EQ(vms_proc_spawn(f.k, "a", 0, &a, NULL), VMS_OK);
    CHECK_EQ(vms_proc_spawn(f.k, "z", 0, &z, NULL), VMS_OK);
    CHECK_EQ(vms_shm_open(f.k, "ring", 3 * 4096, &s1, NULL), VMS_OK);
    CHECK_EQ(vms_shm_open(f.k, "ring", 0, &s2, NULL), VMS_OK);
    CHECK(s1 == s2);
    uint64_t va1 = mmap_or_die(&f, a, 0, 3 * 4096, RW, VMS_MAP_SHARED, s1, 0);
    uint64_t va2 = mmap_or_die(&f, z, 0, 3 * 4096, RW, VMS_MAP_SHARED, s2, 0);
    CHECK_EQ(vms_proc_write(f.k, a, va1 + 8192 + 1, "msg", 3), VMS_ACCESS_OK);
    CHECK_EQ(vms_proc_read(f.k, z, va2 + 8192 + 1, b, 3), VMS_ACCESS_OK);
    CHECK(memcmp(b, "msg", 3) == 0);
    CHECK_EQ(pagemap1(&f, a, va1 + 8192) & VMS_PM_PFN_MASK,
             pagemap1(&f, z, va2 + 8192) & VMS_PM_PFN_MASK);
    CHECK_EQ(vms_shm_unlink(f.k, "ring", NULL), VMS_OK);
    vms_file_close(f.k, s1);
    vms_file_close(f.k, s2);
    CHECK_EQ(vms_proc_read(f.k, z, va2 + 8192 + 1, b, 3), VMS_ACCESS_OK); /* still mapped */
    CHECK(memcmp(b, "msg", 3) == 0);
    vms_strbuf_init(&sb, NULL);
    vms_kernel_meminfo(f.k, &sb);
    CHECK(strstr(vms_strbuf_str(&sb), "Shmem:") != NULL);
    vms_strbuf_free(&sb);
    fx_done(&f);
}

/* ---- SIGSEGV ----------------------------------------------------------------------------- */

static void test_segv(void)
{
    fx f;
    if (!fx_init(&f, 1))
        return;
    vms_task *t, *u, *w;
    vms_access_info info;
    CHECK_EQ(vms_proc_spawn(f.k, "snoop", 0, &t, NULL), VMS_OK);
    uint64_t kva = vms_kernel_page_offset(f.k) + 0x1000;
    char b;
    CHECK_EQ(vms_proc_access(f.k, t, kva, VMS_ACC_READ, &b, 1, &info, NULL), VMS_OK);
    CHECK_EQ(info.outcome, VMS_ACCESS_SEGV);
    CHECK_EQ(info.error_code, VMS_PFERR_P | VMS_PFERR_U);
    CHECK_EQ(info.addr, kva);
    CHECK(strstr(f.log, "snoop[") != NULL && strstr(f.log, "segfault at ffff888000001000 error 5"));
    CHECK(!vms_task_alive(t));
    CHECK_EQ(vms_proc_read(f.k, t, kva, &b, 1), VMS_ACCESS_DEAD);
    /* outside any VMA */
    CHECK_EQ(vms_proc_spawn(f.k, "wild", 0, &u, NULL), VMS_OK);
    CHECK_EQ(vms_proc_access(f.k, u, 0x10000000, VMS_ACC_WRITE, &b, 1, &info, NULL), VMS_OK);
    CHECK_EQ(info.outcome, VMS_ACCESS_SEGV);
    CHECK_EQ(info.error_code, VMS_PFERR_W | VMS_PFERR_U);
    CHECK_EQ(info.si_code, VMS_SEGV_MAPERR);
    /* mprotect to read-only, then write */
    CHECK_EQ(vms_proc_spawn(f.k, "ro", 0, &w, NULL), VMS_OK);
    uint64_t va = mmap_or_die(&f, w, 0, 4 * 4096, RW, PRIV_ANON, NULL, 0);
    CHECK_EQ(vms_proc_write(f.k, w, va + 4096, "x", 1), VMS_ACCESS_OK);
    CHECK_EQ(vms_sys_mprotect(f.k, w, va + 4096, 4096, VMS_PROT_READ, NULL), VMS_OK);
    CHECK_EQ(vms_proc_read(f.k, w, va + 4096, &b, 1), VMS_ACCESS_OK);
    CHECK_EQ(b, 'x');
    CHECK_EQ(vms_proc_write(f.k, w, va, "y", 1), VMS_ACCESS_OK); /* other pages still RW */
    vms_strbuf sb;
    vms_strbuf_init(&sb, NULL);
    vms_proc_maps(f.k, w, &sb);
    CHECK(strstr(vms_strbuf_str(&sb), " r--p ") != NULL);
    vms_strbuf_free(&sb);
    CHECK_EQ(vms_proc_access(f.k, w, va + 4096, VMS_ACC_WRITE, &b, 1, &info, NULL), VMS_OK);
    CHECK_EQ(info.outcome, VMS_ACCESS_SEGV);
    CHECK_EQ(info.error_code, VMS_PFERR_P | VMS_PFERR_W | VMS_PFERR_U);
    CHECK_EQ(info.si_code, VMS_SEGV_ACCERR);
    CHECK_EQ(vms_kernel_get_stats(f.k)->segv, 3);
    fx_done(&f);
}

/*
 * A long access is a restartable string instruction: after each page fault it resumes at
 * the faulting page (issue 16 #3: it restarted from its first page, quadratic work). A
 * 1 MiB read of untouched anonymous memory takes one fault per page and translates each
 * page twice at most (the faulting try and the retry); a 1 MiB write moves every byte.
 */
static void test_string_access_resumes(void)
{
    fx f;
    if (!fx_init(&f, 1))
        return;
    vms_task *t;
    CHECK_EQ(vms_proc_spawn(f.k, "rep", 0, &t, NULL), VMS_OK);
    enum { NP = 256 };
    uint64_t va = mmap_or_die(&f, t, 0, NP * 4096, RW, PRIV_ANON, NULL, 0);
    const vms_core_stats *cs = vms_core_get_stats(vms_machine_core(f.m, 0));
    size_t len = (size_t)NP * 4096;
    uint8_t *buf = malloc(len);
    CHECK(buf != NULL);
    if (!buf)
        return;
    memset(buf, 0x5a, len);
    uint64_t acc0 = cs->accesses, pf0 = cs->faults_pf;
    vms_access_info info;
    CHECK_EQ(vms_proc_access(f.k, t, va, VMS_ACC_READ, buf, len, &info, NULL), VMS_OK);
    CHECK_EQ(info.outcome, VMS_ACCESS_OK);
    CHECK_EQ(info.faults, NP);
    CHECK_EQ(cs->faults_pf - pf0, NP);
    /* Twice per page, plus the last 16 pages: the rest of a resumed access is an access of
     * its own, and one of 16 pages or fewer is one instruction, retried whole (16 * 17 / 2).
     * Restarting from the first page each time was NP * (NP + 1) / 2 = 32896. */
    CHECK(cs->accesses - acc0 <= 2 * NP + 136);
    CHECK_EQ(buf[0], 0);
    CHECK_EQ(buf[len - 1], 0);
    /* A write of every page (each a COW of the zero page), then read back. */
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(i * 7 + (i >> 12));
    acc0 = cs->accesses;
    CHECK_EQ(vms_proc_access(f.k, t, va + 8, VMS_ACC_WRITE, buf, len - 8, &info, NULL), VMS_OK);
    CHECK_EQ(info.outcome, VMS_ACCESS_OK);
    CHECK_EQ(info.faults, NP);
    CHECK(cs->accesses - acc0 <= 2 * NP + 1 + 136);
    uint8_t *back = calloc(1, len);
    CHECK(back != NULL);
    if (back) {
        CHECK_EQ(vms_proc_read(f.k, t, va + 8, back, len - 8), VMS_ACCESS_OK);
        CHECK(memcmp(back, buf, len - 8) == 0);
    }
    /* A string write running into unmapped memory: the pages before the hole are
     * written (as REP MOVS leaves them), the process gets SIGSEGV at the hole. */
    CHECK_EQ(vms_sys_munmap(f.k, t, va + 200 * 4096, 56 * 4096, NULL), VMS_OK);
    memset(buf, 0xee, len);
    CHECK_EQ(vms_proc_access(f.k, t, va, VMS_ACC_WRITE, buf, len, &info, NULL), VMS_OK);
    CHECK_EQ(info.outcome, VMS_ACCESS_SEGV);
    CHECK_EQ(info.addr, va + 200 * 4096);
    free(back);
    free(buf);
    fx_done(&f);
}

static void test_prot_none_and_exec(void)
{
    fx f;
    if (!fx_init(&f, 1))
        return;
    vms_task *t;
    vms_access_info info;
    char b = 1;
    CHECK_EQ(vms_proc_spawn(f.k, "pn", 0, &t, NULL), VMS_OK);
    uint64_t va = mmap_or_die(&f, t, 0, 2 * 4096, RW, PRIV_ANON, NULL, 0);
    CHECK_EQ(vms_proc_write(f.k, t, va, "q", 1), VMS_ACCESS_OK);
    CHECK_EQ(vms_sys_mprotect(f.k, t, va, 4096, VMS_PROT_NONE, NULL), VMS_OK);
    check_kernel(&f);
    CHECK_EQ(vms_sys_mprotect(f.k, t, va, 4096, RW, NULL), VMS_OK);
    CHECK_EQ(vms_proc_read(f.k, t, va, &b, 1), VMS_ACCESS_OK);
    CHECK_EQ(b, 'q'); /* PROT_NONE kept the page */
    CHECK_EQ(vms_proc_access(f.k, t, va, VMS_ACC_EXEC, &b, 1, &info, NULL), VMS_OK);
    CHECK_EQ(info.outcome, VMS_ACCESS_SEGV); /* no PROT_EXEC */
    CHECK(info.error_code & VMS_PFERR_I);
    vms_task *t2;
    CHECK_EQ(vms_proc_spawn(f.k, "pn2", 0, &t2, NULL), VMS_OK);
    va = mmap_or_die(&f, t2, 0, 4096, RW, PRIV_ANON, NULL, 0);
    CHECK_EQ(vms_sys_mprotect(f.k, t2, va, 4096, VMS_PROT_NONE, NULL), VMS_OK);
    CHECK_EQ(vms_proc_access(f.k, t2, va, VMS_ACC_READ, &b, 1, &info, NULL), VMS_OK);
    CHECK_EQ(info.outcome, VMS_ACCESS_SEGV);
    CHECK_EQ(info.si_code, VMS_SEGV_ACCERR);
    fx_done(&f);
}

/* ---- VMAs, stack, brk, mlock, madvise ----------------------------------------------------------
 */

static unsigned count_lines(const char *s)
{
    unsigned n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void test_munmap_split_and_maps(void)
{
    fx f;
    if (!fx_init(&f, 1))
        return;
    vms_task *t;
    CHECK_EQ(vms_proc_spawn(f.k, "split", 0, &t, NULL), VMS_OK);
    uint64_t va =
        mmap_or_die(&f, t, 0x200000000, 8 * 4096, RW, PRIV_ANON | VMS_MAP_FIXED_NOREPLACE, NULL, 0);
    CHECK_EQ(va, 0x200000000);
    uint64_t tmp;
    CHECK_EQ(vms_sys_mmap(f.k, t, va, 4096, RW, PRIV_ANON | VMS_MAP_FIXED_NOREPLACE, NULL, 0, &tmp,
                          NULL),
             VMS_ERR_EXISTS);
    CHECK_EQ(vms_proc_write(f.k, t, va + 3 * 4096, "m", 1), VMS_ACCESS_OK);
    vms_strbuf sb;
    vms_strbuf_init(&sb, NULL);
    vms_proc_maps(f.k, t, &sb);
    unsigned before = count_lines(vms_strbuf_str(&sb));
    CHECK(strstr(vms_strbuf_str(&sb), "200000000-200008000 rw-p 00000000 00:00 0 \n") != NULL);
    vms_strbuf_free(&sb);
    CHECK_EQ(vms_sys_munmap(f.k, t, va + 3 * 4096, 2 * 4096, NULL), VMS_OK);
    vms_strbuf_init(&sb, NULL);
    vms_proc_maps(f.k, t, &sb);
    const char *txt = vms_strbuf_str(&sb);
    CHECK_EQ(count_lines(txt), before + 1);
    CHECK(strstr(txt, "200000000-200003000 rw-p 00000000 00:00 0 \n") != NULL);
    CHECK(strstr(txt, "200005000-200008000 rw-p 00000000 00:00 0 \n") != NULL);
    CHECK(strstr(txt, "[stack]") != NULL);
    /* the [stack] line: pathname in column 74 */
    const char *st = strstr(txt, "[stack]");
    const char *ln = st;
    while (ln > txt && ln[-1] != '\n')
        ln--;
    CHECK_EQ(st - ln, 74);
    vms_strbuf_free(&sb);
    char b;
    CHECK_EQ(vms_proc_read(f.k, t, va + 3 * 4096, &b, 1), VMS_ACCESS_SEGV);
    /* remapping the hole merges back into one VMA */
    vms_task *t2;
    CHECK_EQ(vms_proc_spawn(f.k, "merge", 0, &t2, NULL), VMS_OK);
    va = mmap_or_die(&f, t2, 0x300000000, 8 * 4096, RW, PRIV_ANON | VMS_MAP_FIXED, NULL, 0);
    CHECK_EQ(vms_sys_munmap(f.k, t2, va + 4096, 4096, NULL), VMS_OK);
    mmap_or_die(&f, t2, va + 4096, 4096, RW, PRIV_ANON | VMS_MAP_FIXED, NULL, 0);
    vms_strbuf_init(&sb, NULL);
    vms_proc_maps(f.k, t2, &sb);
    CHECK(strstr(vms_strbuf_str(&sb), "300000000-300008000 rw-p") != NULL);
    vms_strbuf_free(&sb);
    fx_done(&f);
}

static void test_stack_brk_mlock_madvise(void)
{
    fx f;
    if (!fx_init(&f, 1))
        return;
    vms_task *t;
    CHECK_EQ(vms_proc_spawn(f.k, "grow", 0, &t, NULL), VMS_OK);
    vms_strbuf sb;
    vms_strbuf_init(&sb, NULL);
    vms_proc_maps(f.k, t, &sb);
    unsigned long long lo, hi;
    const char *st = strstr(vms_strbuf_str(&sb), "[stack]");
    while (st > vms_strbuf_str(&sb) && st[-1] != '\n')
        st--;
    CHECK_EQ(sscanf(st, "%llx-%llx", &lo, &hi), 2);
    vms_strbuf_free(&sb);
    CHECK_EQ(hi - lo, 132 * 1024);
    /* touch 1 MiB below the stack: it grows */
    CHECK_EQ(vms_proc_write(f.k, t, lo - (1 << 20), "s", 1), VMS_ACCESS_OK);
    CHECK_EQ(vms_kernel_get_stats(f.k)->stack_expand, 1);
    /* beyond RLIMIT_STACK (8 MiB): SIGSEGV */
    char b;
    vms_task *t3;
    CHECK_EQ(vms_proc_spawn(f.k, "deep", 0, &t3, NULL), VMS_OK);
    vms_strbuf_init(&sb, NULL);
    vms_proc_maps(f.k, t3, &sb);
    st = strstr(vms_strbuf_str(&sb), "[stack]");
    while (st > vms_strbuf_str(&sb) && st[-1] != '\n')
        st--;
    sscanf(st, "%llx-%llx", &lo, &hi);
    vms_strbuf_free(&sb);
    CHECK_EQ(vms_proc_read(f.k, t3, hi - (9u << 20), &b, 1), VMS_ACCESS_SEGV);

    /* brk */
    uint64_t brk0, brk1;
    CHECK_EQ(vms_sys_brk(f.k, t, 0, &brk0, NULL), VMS_OK);
    CHECK_EQ(vms_proc_read(f.k, t, brk0, &b, 1), VMS_ACCESS_SEGV);
    vms_task *t2;
    CHECK_EQ(vms_proc_spawn(f.k, "heap", 0, &t2, NULL), VMS_OK);
    CHECK_EQ(vms_sys_brk(f.k, t2, 0, &brk0, NULL), VMS_OK);
    CHECK_EQ(vms_sys_brk(f.k, t2, brk0 + 10000, &brk1, NULL), VMS_OK);
    CHECK_EQ(brk1, brk0 + 10000);
    CHECK_EQ(vms_proc_write(f.k, t2, brk0 + 9999, "h", 1), VMS_ACCESS_OK);
    vms_strbuf_init(&sb, NULL);
    vms_proc_maps(f.k, t2, &sb);
    CHECK(strstr(vms_strbuf_str(&sb), "[heap]") != NULL);
    vms_strbuf_free(&sb);
    CHECK_EQ(vms_sys_brk(f.k, t2, brk0 + 4096, &brk1, NULL), VMS_OK);

    /* mlock populates and locks; munlock clears */
    uint64_t va = mmap_or_die(&f, t2, 0, 4 * 4096, RW, PRIV_ANON, NULL, 0);
    uint64_t faults = vms_kernel_get_stats(f.k)->pgfault;
    CHECK_EQ(vms_sys_mlock(f.k, t2, va, 4 * 4096, NULL), VMS_OK);
    CHECK_EQ(vms_frames_count(vms_kernel_frames(f.k), VMS_FRAME_LOCKED), 4);
    CHECK_EQ(vms_proc_write(f.k, t2, va, "L", 1), VMS_ACCESS_OK);
    CHECK_EQ(vms_kernel_get_stats(f.k)->pgfault, faults + 4); /* populate only */
    CHECK_EQ(vms_kernel_get_stats(f.k)->pgfault,              /* populate faults are minor faults */
             vms_kernel_get_stats(f.k)->minor + vms_kernel_get_stats(f.k)->pgmajfault +
                 vms_kernel_get_stats(f.k)->segv + vms_kernel_get_stats(f.k)->sigbus);
    CHECK_EQ(vms_sys_madvise(f.k, t2, va, 4096, VMS_MADV_DONTNEED, NULL), VMS_ERR_INVAL);
    CHECK_EQ(vms_sys_munlock(f.k, t2, va, 4 * 4096, NULL), VMS_OK);
    CHECK_EQ(vms_frames_count(vms_kernel_frames(f.k), VMS_FRAME_LOCKED), 0);
    /* MADV_DONTNEED: zeros on the next read */
    CHECK_EQ(vms_sys_madvise(f.k, t2, va, 4096, VMS_MADV_DONTNEED, NULL), VMS_OK);
    b = 1;
    CHECK_EQ(vms_proc_read(f.k, t2, va, &b, 1), VMS_ACCESS_OK);
    CHECK_EQ(b, 0);
    vms_strbuf_init(&sb, NULL);
    vms_kernel_meminfo(f.k, &sb);
    CHECK(strstr(vms_strbuf_str(&sb), "PageTables:") != NULL);
    CHECK(strstr(vms_strbuf_str(&sb), "SwapTotal:             0 kB\n") != NULL);
    vms_strbuf_free(&sb);
    fx_done(&f);
}

static void test_huge_2m(void)
{
    fx f;
    vms_kernel_config kc;
    vms_kernel_config_default(&kc);
    kc.seed = th_seed;
    kc.hugepages = 2; /* MAP_HUGETLB takes pool pages (Linux: none configured is ENOMEM) */
    if (!fx_init_cfg(&f, &kc, 1))
        return;
    vms_task *t;
    CHECK_EQ(vms_proc_spawn(f.k, "huge", 0, &t, NULL), VMS_OK);
    uint64_t va =
        mmap_or_die(&f, t, 0, 2 << 20, RW, PRIV_ANON | VMS_MAP_HUGETLB | VMS_MAP_HUGE_2MB, NULL, 0);
    CHECK_EQ(va & ((2 << 20) - 1), 0);
    vms_access_info info;
    char b = 'H';
    CHECK_EQ(vms_proc_access(f.k, t, va + 12345, VMS_ACC_WRITE, &b, 1, &info, NULL), VMS_OK);
    CHECK_EQ(info.faults, 1);
    uint64_t pm[512];
    vms_proc_pagemap(f.k, t, va, 512, pm);
    unsigned present = 0;
    for (int i = 0; i < 512; i++)
        present += (pm[i] & VMS_PM_PRESENT) &&
                   (pm[i] & VMS_PM_PFN_MASK) == (pm[0] & VMS_PM_PFN_MASK) + (uint64_t)i;
    CHECK_EQ(present, 512);
    CHECK_EQ(vms_kernel_get_stats(f.k)->thp_fault_alloc, 1);
    CHECK_EQ(vms_proc_read(f.k, t, va + (2 << 20) - 1, &b, 1), VMS_ACCESS_OK);
    CHECK_EQ(info.faults, 1);
    CHECK_EQ(vms_kernel_get_stats(f.k)->pgfault, 1);
    /* the TLB holds a 2M translation */
    vms_xlate x;
    vms_task_info ti;
    vms_task_get_info(t, &ti);
    CHECK(vms_tlb_probe(vms_core_tlb(vms_machine_core(f.m, 0), VMS_TLB_L2), ti.pcid, va, &x) ||
          vms_tlb_probe(vms_core_tlb(vms_machine_core(f.m, 0), VMS_TLB_L1D), ti.pcid, va, &x));
    CHECK_EQ(x.size, VMS_PG_2M);
    /* fork + write: the 2M page is copied */
    vms_task *c;
    CHECK_EQ(vms_proc_fork(f.k, t, &c, NULL), VMS_OK);
    CHECK_EQ(vms_proc_write(f.k, c, va + 5, "c", 1), VMS_ACCESS_OK);
    CHECK_EQ(vms_proc_read(f.k, t, va + 12345, &b, 1), VMS_ACCESS_OK);
    CHECK_EQ(b, 'H');
    CHECK_EQ(vms_proc_read(f.k, c, va + 12345, &b, 1), VMS_ACCESS_OK);
    CHECK_EQ(b, 'H');
    check_kernel(&f);
    fx_done(&f);
}

/* An explicit 1 GiB page: one fault maps a naturally aligned order-18 block with a PDPT
 * leaf; the TLB caches a 1G translation; munmap returns every frame. */
static void test_huge_1g(void)
{
    fx f;
    vms_kernel_config kc;
    vms_kernel_config_default(&kc);
    kc.seed = th_seed;
    kc.hugepages_1g = 1; /* the pool's page, taken at boot */
    if (!fx_init_ram(&f, &kc, 1, UINT64_C(4) << 30))
        return;
    vms_task *t;
    CHECK_EQ(vms_proc_spawn(f.k, "giant", 0, &t, NULL), VMS_OK);
    vms_frames *fr = vms_kernel_frames(f.k);
    uint64_t free0 = vms_frames_nfree(fr), pt0 = vms_frames_count(fr, VMS_FRAME_PAGETABLE);
    uint64_t va = mmap_or_die(&f, t, 0, UINT64_C(1) << 30, RW,
                              PRIV_ANON | VMS_MAP_HUGETLB | VMS_MAP_HUGE_1GB, NULL, 0);
    CHECK_EQ(va & ((UINT64_C(1) << 30) - 1), 0);
    vms_access_info info;
    char b = 'G';
    CHECK_EQ(vms_proc_access(f.k, t, va + 123456789, VMS_ACC_WRITE, &b, 1, &info, NULL), VMS_OK);
    CHECK_EQ(info.faults, 1);
    /* the pool's order-18 block (taken at boot), plus the table pages the new PDPT leaf
     * needed from free memory */
    uint64_t tables = vms_frames_count(fr, VMS_FRAME_PAGETABLE) - pt0;
    CHECK(tables <= 1);
    CHECK_EQ(vms_frames_nfree(fr), free0 - tables);
    uint64_t pm0, pm_last;
    vms_proc_pagemap(f.k, t, va, 1, &pm0);
    vms_proc_pagemap(f.k, t, va + (UINT64_C(1) << 30) - 4096, 1, &pm_last);
    CHECK(pm0 & VMS_PM_PRESENT);
    CHECK_EQ((pm0 & VMS_PM_PFN_MASK) & ((UINT64_C(1) << 18) - 1), 0); /* 1 GiB aligned */
    CHECK_EQ(pm_last & VMS_PM_PFN_MASK, (pm0 & VMS_PM_PFN_MASK) + (UINT64_C(1) << 18) - 1);
    CHECK_EQ(vms_proc_read(f.k, t, va + (UINT64_C(1) << 30) - 1, &b, 1), VMS_ACCESS_OK);
    CHECK_EQ(vms_kernel_get_stats(f.k)->pgfault, 1);
    CHECK_EQ(vms_proc_read(f.k, t, va + 123456789, &b, 1), VMS_ACCESS_OK);
    CHECK_EQ(b, 'G');
    vms_xlate x = {0};
    vms_task_info ti;
    vms_task_get_info(t, &ti);
    vms_core *c0 = vms_machine_core(f.m, 0);
    CHECK(vms_tlb_probe(vms_core_tlb(c0, VMS_TLB_L1D), ti.pcid, va, &x));
    CHECK_EQ(x.size, VMS_PG_1G);
    check_kernel(&f);
    CHECK_EQ(vms_sys_munmap(f.k, t, va, UINT64_C(1) << 30, NULL), VMS_OK);
    CHECK_EQ(vms_frames_nfree(vms_kernel_frames(f.k)), free0);
    fx_done(&f);
}

/* A 1 TiB machine boots a kernel cheaply: host memory follows what is used, not RAM size
 * (the frame allocator's metadata, the policy's pools and RAM itself are all lazy). */
static void test_boot_1tib(void)
{
    th_failalloc fa;
    const vms_allocator *a = th_failalloc_init(&fa, -1);
    vms_machine_config mc;
    vms_machine_preset("skylake", &mc, NULL);
    mc.ram_bytes = UINT64_C(1) << 40;
    mc.ncores = 2;
    vms_machine *m = NULL;
    vms_kernel *k = NULL;
    vms_kernel_config kc;
    vms_kernel_config_default(&kc);
    kc.swap_bytes = UINT64_C(1) << 30;
    REQUIRE_VOID(vms_machine_create(a, &mc, &m, NULL) == VMS_OK);
    REQUIRE_VOID(vms_kernel_create(m, &kc, &k, NULL) == VMS_OK);
    vms_task *t;
    CHECK_EQ(vms_proc_spawn(k, "big", 0, &t, NULL), VMS_OK);
    uint64_t va = 0;
    CHECK_EQ(vms_sys_mmap(k, t, 0, UINT64_C(1) << 20, RW, PRIV_ANON, NULL, 0, &va, NULL), VMS_OK);
    CHECK_EQ(vms_proc_write(k, t, va, "x", 1), VMS_ACCESS_OK);
    CHECK(fa.live_bytes < (64LL << 20));
    if (fa.live_bytes >= (64LL << 20))
        fprintf(stderr, "1 TiB boot holds %lld host bytes\n", fa.live_bytes);
    vms_kernel_destroy(k);
    vms_machine_destroy(m);
    CHECK_EQ(fa.live_bytes, 0);
}

/* ---- SMP ----------------------------------------------------------------------------------- */

static void test_threads_shootdown(void)
{
    fx f;
    if (!fx_init(&f, 2))
        return;
    vms_task *t0, *t1;
    CHECK_EQ(vms_proc_spawn(f.k, "mt", 0, &t0, NULL), VMS_OK);
    CHECK_EQ(vms_proc_clone_thread(f.k, t0, 1, &t1, NULL), VMS_OK);
    uint64_t va = mmap_or_die(&f, t0, 0, 4 * 4096, RW, PRIV_ANON, NULL, 0);
    CHECK_EQ(vms_proc_write(f.k, t0, va, "shared", 6), VMS_ACCESS_OK);
    char b[8] = {0};
    CHECK_EQ(vms_proc_read(f.k, t1, va, b, 6), VMS_ACCESS_OK); /* core 1 caches it */
    CHECK(memcmp(b, "shared", 6) == 0);
    vms_task_info ti;
    vms_task_get_info(t1, &ti);
    vms_xlate x;
    vms_tlb *l1d1 = vms_core_tlb(vms_machine_core(f.m, 1), VMS_TLB_L1D);
    CHECK(vms_tlb_probe(l1d1, ti.pcid, va, &x));
    const vms_kernel_stats *s = vms_kernel_get_stats(f.k);
    uint64_t ipis = s->nr_tlb_remote_flush_received;
    CHECK_EQ(vms_sys_munmap(f.k, t0, va, 4 * 4096, NULL), VMS_OK);
    CHECK_EQ(s->nr_tlb_remote_flush_received - ipis, 1);
    CHECK(s->nr_tlb_remote_flush >= 1);
    CHECK(!vms_tlb_probe(l1d1, ti.pcid, va, &x)); /* core 1 dropped it */
    vms_access_info info;
    CHECK_EQ(vms_proc_access(f.k, t1, va, VMS_ACC_READ, b, 1, &info, NULL), VMS_OK);
    CHECK_EQ(info.outcome, VMS_ACCESS_SEGV); /* no stale translation on core 1 */
    fx_done(&f);

    /* a process on core 1 that never ran mm gets no IPI */
    if (!fx_init(&f, 2))
        return;
    vms_task *a, *z;
    CHECK_EQ(vms_proc_spawn(f.k, "a", 0, &a, NULL), VMS_OK);
    CHECK_EQ(vms_proc_spawn(f.k, "z", 1, &z, NULL), VMS_OK);
    va = mmap_or_die(&f, a, 0, 4096, RW, PRIV_ANON, NULL, 0);
    CHECK_EQ(vms_proc_write(f.k, a, va, "x", 1), VMS_ACCESS_OK);
    CHECK_EQ(vms_proc_write(f.k, z, vms_task_pid(z) ? 0x7ff000000000 : 0, "y", 1), VMS_ACCESS_SEGV);
    s = vms_kernel_get_stats(f.k);
    CHECK_EQ(vms_sys_munmap(f.k, a, va, 4096, NULL), VMS_OK);
    CHECK_EQ(s->nr_tlb_remote_flush_received, 0);
    fx_done(&f);
}

static void test_pcid_off_and_exec(void)
{
    fx f;
    vms_kernel_config kc;
    vms_kernel_config_default(&kc);
    kc.pcid = false;
    kc.aslr = false;
    if (!fx_init_cfg(&f, &kc, 1))
        return;
    vms_task *a, *b;
    CHECK_EQ(vms_proc_spawn(f.k, "a", 0, &a, NULL), VMS_OK);
    CHECK_EQ(vms_proc_spawn(f.k, "b", 0, &b, NULL), VMS_OK);
    uint64_t va = mmap_or_die(&f, a, 0x40000000, 4096, RW, PRIV_ANON | VMS_MAP_FIXED, NULL, 0);
    uint64_t vb = mmap_or_die(&f, b, 0x40000000, 4096, RW, PRIV_ANON | VMS_MAP_FIXED, NULL, 0);
    CHECK_EQ(va, vb);
    for (int i = 0; i < 3; i++) {
        char c = (char)('a' + i), d = (char)('A' + i), r;
        CHECK_EQ(vms_proc_write(f.k, a, va, &c, 1), VMS_ACCESS_OK);
        CHECK_EQ(vms_proc_write(f.k, b, vb, &d, 1), VMS_ACCESS_OK);
        CHECK_EQ(vms_proc_read(f.k, a, va, &r, 1), VMS_ACCESS_OK);
        CHECK_EQ(r, c); /* isolation across switches without PCIDs */
    }
    vms_task_info ti;
    vms_task_get_info(a, &ti);
    CHECK_EQ(ti.pcid, 0);
    /* exec gives a fresh address space with the same pid */
    int pid = vms_task_pid(a);
    CHECK_EQ(vms_proc_exec(f.k, a, "new", NULL), VMS_OK);
    CHECK_EQ(vms_task_pid(a), pid);
    char r;
    CHECK_EQ(vms_proc_read(f.k, a, va, &r, 1), VMS_ACCESS_SEGV);
    CHECK(vms_proc_find_name(f.k, "b") == b);
    CHECK(vms_proc_find(f.k, vms_task_pid(b)) == b);
    fx_done(&f);
}

static void test_json_and_vmstat(void)
{
    fx f;
    if (!fx_init(&f, 1))
        return;
    vms_task *t;
    CHECK_EQ(vms_proc_spawn(f.k, "j", 0, &t, NULL), VMS_OK);
    uint64_t va = mmap_or_die(&f, t, 0, 4096, RW, PRIV_ANON, NULL, 0);
    char b;
    CHECK_EQ(vms_proc_read(f.k, t, va, &b, 1), VMS_ACCESS_OK);
    vms_strbuf sb;
    vms_strbuf_init(&sb, NULL);
    vms_strbuf_printf(&sb, "{");
    CHECK_EQ(vms_machine_stats_json_members(f.m, &sb), VMS_OK);
    CHECK_EQ(vms_kernel_stats_json_members(f.k, &sb), VMS_OK);
    vms_strbuf_printf(&sb, "}");
    const char *j = vms_strbuf_str(&sb);
    CHECK(strstr(j, ",\"faults\":{\"total\":1,\"minor\":1,\"major\":0,\"cow\":0,") != NULL);
    CHECK(strstr(j, "\"segv\":0") != NULL);
    CHECK(strstr(j, ",\"swap\":{\"ins\":0,\"outs\":0,\"total_pages\":0,") != NULL);
    CHECK(strstr(j, "\"reclaim\":{\"policy\":\"twolist\",\"scanned\":0,") != NULL);
    vms_strbuf_free(&sb);
    vms_strbuf_init(&sb, NULL);
    vms_kernel_vmstat(f.k, &sb);
    CHECK(strstr(vms_strbuf_str(&sb), "pgfault 1\n") != NULL);
    CHECK(strstr(vms_strbuf_str(&sb), "nr_tlb_remote_flush 0\n") != NULL);
    vms_strbuf_free(&sb);
    vms_strbuf_init(&sb, NULL);
    vms_proc_smaps(f.k, t, &sb);
    CHECK(strstr(vms_strbuf_str(&sb), "Rss:") != NULL);
    vms_strbuf_free(&sb);
    fx_done(&f);
}

/* ---- allocation failure --------------------------------------------------------------------- */

static void test_failalloc(void)
{
    vms_machine_config mc;
    vms_machine_preset("skylake", &mc, NULL);
    mc.ram_bytes = UINT64_C(64) << 20;
    mc.ncores = 2;
    unsigned ok_runs = 0;
    for (long budget = 0; budget < 400; budget++) {
        th_failalloc fa;
        const vms_allocator *a = th_failalloc_init(&fa, -1);
        vms_machine *m;
        if (vms_machine_create(a, &mc, &m, NULL) != VMS_OK)
            continue;
        fa.budget = budget;
        vms_kernel *k = NULL;
        vms_err err = {0};
        vms_status st = vms_kernel_create(m, NULL, &k, &err);
        bool done = false;
        if (st == VMS_OK) {
            uint64_t free0 = vms_frames_nfree(vms_kernel_frames(k));
            vms_task *t = NULL, *c = NULL;
            uint64_t va = 0;
            st = vms_proc_spawn(k, "f", 0, &t, &err);
            if (st == VMS_OK)
                st = vms_sys_mmap(k, t, 0, 16 * 4096, RW, PRIV_ANON, NULL, 0, &va, &err);
            for (int i = 0; st == VMS_OK && i < 16; i++) {
                vms_access_info info;
                st = vms_proc_access(k, t, va + (uint64_t)i * 4096, VMS_ACC_WRITE, &i, 1, &info,
                                     &err);
            }
            if (st == VMS_OK)
                st = vms_proc_fork(k, t, &c, &err);
            if (st == VMS_OK)
                st = vms_sys_munmap(k, t, va + 4096, 4096, &err);
            if (st == VMS_OK)
                done = true;
            CHECK(st == VMS_OK || st == VMS_ERR_NOMEM);
            if (st != VMS_OK && st != VMS_ERR_NOMEM)
                fprintf(stderr, "budget %ld: %s: %s\n", budget, vms_status_str(st), err.msg);
            vms_status cst = vms_kernel_check(k, &err);
            if (cst != VMS_OK)
                fprintf(stderr, "budget %ld: check: %s\n", budget, err.msg);
            CHECK_EQ(cst, VMS_OK);
            while (vms_proc_count(k))
                vms_proc_exit(k, vms_proc_at(k, 0));
            CHECK_EQ(vms_frames_nfree(vms_kernel_frames(k)), free0);
        } else {
            CHECK_EQ(st, VMS_ERR_NOMEM);
        }
        vms_kernel_destroy(k);
        vms_machine_destroy(m);
        if (fa.live_bytes)
            fprintf(stderr, "budget %ld: %lld bytes leaked\n", budget, fa.live_bytes);
        CHECK_EQ(fa.live_bytes, 0);
        if (done && ++ok_runs > 2)
            break;
    }
    CHECK(ok_runs > 0);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "kernel");
    test_zero_page_then_cow();
    test_fork_cow();
    test_vfork_shares_until_exec();
    test_vfork_exit_paths();
    test_file_fault_around();
    test_file_private_and_shared();
    test_file_sparse_and_special();
    test_shared_anon_and_shm();
    test_segv();
    test_string_access_resumes();
    test_prot_none_and_exec();
    test_munmap_split_and_maps();
    test_stack_brk_mlock_madvise();
    test_huge_2m();
    test_huge_1g();
    test_boot_1tib();
    test_threads_shootdown();
    test_pcid_off_and_exec();
    test_json_and_vmstat();
    test_failalloc();
    return th_finish();
}
