/*
 * test_swap_stress.c — NOTHING IS LOST: a seeded stress test of swap and reclaim against
 * a naive reference model.
 *
 * A 1 MiB machine (256 frames) with 32 MiB of swap runs up to six processes, each with a
 * 1.25 MiB window at ARENA: NPRIV pages of private anonymous memory, NSHM pages of a
 * shared anonymous object (shared by a family of forks), NFILE pages of one host file
 * mapped MAP_SHARED by every process. Their combined footprint is about eight times RAM,
 * so almost every access swaps. Random spawn, fork (COW), exit, munmap and re-mmap
 * (private) and reads/writes run under EVERY replacement policy; the model keeps per
 * process bytes (copied at fork), per object bytes and the file's bytes. Every byte read
 * must equal the model; vms_kernel_check (rmap, swap slot counts vs PTEs + swap cache,
 * LRU accounting, frames) runs after every operation in the short runs. At the end every
 * frame and every swap slot is free, and the file's written-back copy equals the model.
 *
 * Injected I/O errors: with write errors the outcome must be the same (nothing lost,
 * errors counted). With a read error injected before a read of a swapped-out private
 * page, the reader and exactly the processes whose PTE held that slot (pagemap) die with
 * SIGBUS; every other process goes on and still reads its bytes.
 *
 * VMS_SWAP_SOAK=N runs N times more operations.
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
#include "vmsim/rng.h"
#include "vmsim/swap.h"

#define ARENA  UINT64_C(0x10000000)
#define NPRIV  256u
#define NSHM   32u
#define NFILE  32u
#define NPAGES (NPRIV + NSHM + NFILE)
#define MAXP   6
#define PG     4096u

typedef struct object {
    int refs;
    uint8_t bytes[NSHM * PG];
} object;

typedef struct sproc {
    vms_task *t;
    uint8_t *priv; /* NPRIV pages */
    object *shm;
    bool mapped[NPAGES];
} sproc;

typedef struct world {
    vms_kernel *k;
    vms_machine *m;
    vms_file *file;
    vms_rng r;
    sproc p[MAXP];
    unsigned np;
    uint8_t fbytes[NFILE * PG];
    unsigned long ops, reads, bus;
    bool check_each, read_errors;
} world;

static char g_dir[256], g_path[300], g_wb[300];

static uint64_t rnd(world *w, uint64_t n)
{
    return vms_rng_below(&w->r, n);
}

static void obj_put(object *o)
{
    if (o && --o->refs == 0)
        free(o);
}

/* The model's bytes behind window page pg of process p. */
static uint8_t *backing(world *w, sproc *p, unsigned pg)
{
    if (pg < NPRIV)
        return p->priv + (size_t)pg * PG;
    if (pg < NPRIV + NSHM)
        return p->shm->bytes + (size_t)(pg - NPRIV) * PG;
    return w->fbytes + (size_t)(pg - NPRIV - NSHM) * PG;
}

static void forget(world *w, unsigned i)
{
    free(w->p[i].priv);
    obj_put(w->p[i].shm);
    w->p[i] = w->p[--w->np];
}

static void drop_proc(world *w, unsigned i)
{
    vms_proc_exit(w->k, w->p[i].t);
    forget(w, i);
}

static bool check(world *w)
{
    vms_err err = {0};
    vms_status st = vms_kernel_check(w->k, &err);
    if (st != VMS_OK)
        fprintf(stderr, "after op %lu: %s\n", w->ops, err.msg);
    CHECK_EQ(st, VMS_OK);
    return st == VMS_OK;
}

static void op_spawn(world *w)
{
    sproc *p = &w->p[w->np];
    memset(p, 0, sizeof *p);
    REQUIRE_VOID(vms_proc_spawn(w->k, "stress", (unsigned)rnd(w, 2), &p->t, NULL) == VMS_OK);
    uint64_t va;
    CHECK_EQ(vms_sys_mmap(w->k, p->t, ARENA, NPRIV * PG, VMS_PROT_READ | VMS_PROT_WRITE,
                          VMS_MAP_PRIVATE | VMS_MAP_ANONYMOUS | VMS_MAP_FIXED, NULL, 0, &va, NULL),
             VMS_OK);
    CHECK_EQ(vms_sys_mmap(w->k, p->t, ARENA + NPRIV * PG, NSHM * PG, VMS_PROT_READ | VMS_PROT_WRITE,
                          VMS_MAP_SHARED | VMS_MAP_ANONYMOUS | VMS_MAP_FIXED, NULL, 0, &va, NULL),
             VMS_OK);
    CHECK_EQ(vms_sys_mmap(w->k, p->t, ARENA + (NPRIV + NSHM) * PG, NFILE * PG,
                          VMS_PROT_READ | VMS_PROT_WRITE, VMS_MAP_SHARED | VMS_MAP_FIXED, w->file,
                          0, &va, NULL),
             VMS_OK);
    p->priv = calloc(NPRIV, PG);
    p->shm = calloc(1, sizeof *p->shm);
    p->shm->refs = 1;
    memset(p->mapped, 1, sizeof p->mapped);
    w->np++;
}

static void op_fork(world *w, unsigned i)
{
    sproc *c = &w->p[w->np], *p = &w->p[i];
    memset(c, 0, sizeof *c);
    CHECK_EQ(vms_proc_fork(w->k, p->t, &c->t, NULL), VMS_OK);
    if (!c->t)
        return;
    c->priv = malloc((size_t)NPRIV * PG);
    memcpy(c->priv, p->priv, (size_t)NPRIV * PG);
    c->shm = p->shm;
    c->shm->refs++;
    memcpy(c->mapped, p->mapped, sizeof c->mapped);
    w->np++;
}

/* munmap a random range of one region, or re-map a private range (zeros). */
static void op_map(world *w, unsigned i)
{
    sproc *p = &w->p[i];
    unsigned a = (unsigned)rnd(w, NPAGES), n = 1 + (unsigned)rnd(w, 8);
    unsigned lim = a < NPRIV ? NPRIV : a < NPRIV + NSHM ? NPRIV + NSHM : NPAGES;
    if (a + n > lim)
        n = lim - a;
    if (a < NPRIV && rnd(w, 2)) {
        uint64_t va;
        CHECK_EQ(vms_sys_mmap(w->k, p->t, ARENA + a * PG, n * PG, VMS_PROT_READ | VMS_PROT_WRITE,
                              VMS_MAP_PRIVATE | VMS_MAP_ANONYMOUS | VMS_MAP_FIXED, NULL, 0, &va,
                              NULL),
                 VMS_OK);
        memset(p->priv + (size_t)a * PG, 0, (size_t)n * PG);
        memset(p->mapped + a, 1, n);
        return;
    }
    CHECK_EQ(vms_sys_munmap(w->k, p->t, ARENA + a * PG, n * PG, NULL), VMS_OK);
    memset(p->mapped + a, 0, n);
    if (a < NPRIV)
        memset(p->priv + (size_t)a * PG, 0, (size_t)n * PG);
}

/* A mapped page of p, or -1. */
static int pick_page(world *w, sproc *p)
{
    for (int tries = 0; tries < 32; tries++) {
        unsigned pg = (unsigned)rnd(w, NPAGES);
        if (p->mapped[pg])
            return (int)pg;
    }
    return -1;
}

/* A read or write inside one page (or across into the next mapped page of the same
 * region). Returns false if the process died. */
static bool op_access(world *w, unsigned i, bool write)
{
    sproc *p = &w->p[i];
    int pg = pick_page(w, p);
    if (pg < 0)
        return true;
    size_t off = (size_t)rnd(w, PG), len = 1 + (size_t)rnd(w, write ? 64 : 512);
    if (off + len > PG)
        len = PG - off;
    uint8_t buf[512], *model = backing(w, p, (unsigned)pg) + off;
    if (write)
        for (size_t j = 0; j < len; j++)
            buf[j] = (uint8_t)rnd(w, 256);
    vms_access_info info;
    CHECK_EQ(vms_proc_access(w->k, p->t, ARENA + (uint64_t)pg * PG + off,
                             write ? VMS_ACC_WRITE : VMS_ACC_READ, buf, len, &info, NULL),
             VMS_OK);
    CHECK_EQ(info.outcome, VMS_ACCESS_OK);
    if (info.outcome != VMS_ACCESS_OK) {
        fprintf(stderr, "op %lu: access outcome %d\n", w->ops, info.outcome);
        drop_proc(w, i);
        return false;
    }
    if (write) {
        memcpy(model, buf, len);
    } else {
        w->reads++;
        bool same = memcmp(model, buf, len) == 0;
        if (!same)
            fprintf(stderr, "op %lu: pid %d page %d +%zu: %zu bytes differ from the model\n",
                    w->ops, vms_task_pid(p->t), pg, off, len);
        CHECK(same);
    }
    return true;
}

/* Inject a read error before reading a swapped-out private page, and check that the
 * reader and exactly the processes whose PTE names the same slot die with SIGBUS. */
static void op_read_error(world *w, unsigned i)
{
    sproc *p = &w->p[i];
    int pg = pick_page(w, p);
    if (pg < 0 || (unsigned)pg >= NPRIV)
        return;
    uint64_t va = ARENA + (uint64_t)pg * PG, pm = 0, pmj = 0;
    CHECK_EQ(vms_proc_pagemap(w->k, p->t, va, 1, &pm), VMS_OK);
    if (!(pm & VMS_PM_SWAPPED))
        return;
    bool owner[MAXP] = {false};
    for (unsigned j = 0; j < w->np; j++) {
        pmj = 0;
        vms_proc_pagemap(w->k, w->p[j].t, va, 1, &pmj);
        owner[j] = (pmj & VMS_PM_SWAPPED) && pmj == pm;
    }
    uint64_t errs0 = vms_kernel_get_stats(w->k)->swap_read_errors;
    vms_swap_inject_error(w->k, VMS_SWAP_IO_READ, 0, 1, NULL);
    uint8_t b;
    vms_access_info info;
    CHECK_EQ(vms_proc_access(w->k, p->t, va, VMS_ACC_READ, &b, 1, &info, NULL), VMS_OK);
    vms_swap_inject_error(w->k, VMS_SWAP_IO_READ, 0, 0, NULL);
    if (vms_kernel_get_stats(w->k)->swap_read_errors == errs0) {
        CHECK_EQ(info.outcome, VMS_ACCESS_OK); /* from the swap cache: no I/O */
        CHECK_EQ(b, p->priv[(size_t)pg * PG]);
        return;
    }
    CHECK_EQ(info.outcome, VMS_ACCESS_BUS);
    w->bus++;
    for (unsigned j = 0; j < w->np; j++) {
        vms_task_info ti;
        vms_task_get_info(w->p[j].t, &ti);
        CHECK_EQ(ti.state == VMS_TASK_DEAD, owner[j]);
        if (owner[j])
            CHECK_EQ(ti.signal, 7 /* SIGBUS */);
    }
    for (unsigned j = w->np; j-- > 0;)
        if (owner[j])
            drop_proc(w, j);
}

/* A sweep: 8-byte writes or reads at one offset of up to 32 consecutive mapped pages,
 * the access pattern that builds memory pressure (and reads many pages back). */
static void op_sweep(world *w, unsigned i)
{
    sproc *p = &w->p[i];
    bool write = rnd(w, 2);
    unsigned first = (unsigned)rnd(w, NPAGES);
    size_t off = (size_t)rnd(w, PG - 8);
    for (unsigned pg = first; pg < first + 32 && pg < NPAGES; pg++) {
        if (!p->mapped[pg])
            continue;
        uint8_t buf[8], *model = backing(w, p, pg) + off;
        for (int j = 0; j < 8; j++)
            buf[j] = write ? (uint8_t)rnd(w, 256) : 0xEE;
        vms_access_info info;
        CHECK_EQ(vms_proc_access(w->k, p->t, ARENA + (uint64_t)pg * PG + off,
                                 write ? VMS_ACC_WRITE : VMS_ACC_READ, buf, 8, &info, NULL),
                 VMS_OK);
        CHECK_EQ(info.outcome, VMS_ACCESS_OK);
        if (info.outcome != VMS_ACCESS_OK) {
            drop_proc(w, i);
            return;
        }
        if (write) {
            memcpy(model, buf, 8);
        } else if (memcmp(model, buf, 8) != 0) {
            fprintf(stderr, "op %lu: pid %d page %u +%zu: sweep read differs\n", w->ops,
                    vms_task_pid(p->t), pg, off);
            CHECK(false);
        }
    }
}

static void step(world *w)
{
    w->ops++;
    if (w->np == 0 || (w->np < MAXP && rnd(w, 60) == 0)) {
        op_spawn(w);
        return;
    }
    unsigned i = (unsigned)rnd(w, w->np), r = (unsigned)rnd(w, 100);
    if (r < 3 && w->np < MAXP)
        op_fork(w, i);
    else if (r < 5 && w->np > 1)
        drop_proc(w, i);
    else if (r < 10)
        op_map(w, i);
    else if (r < 11 && w->read_errors)
        op_read_error(w, i);
    else if (r < 25)
        op_sweep(w, i);
    else
        op_access(w, i, r < 60);
}

static uint64_t fake_next_use(void *ud, int pid, uint64_t va)
{
    (void)ud;
    return ((va >> 12) * UINT64_C(2654435761) + (uint64_t)pid * 40503u) % 1000003u;
}

typedef struct run_opts {
    const char *policy;
    unsigned nops;
    bool check_each;
    bool write_errors, read_errors;
    const char *device;
} run_opts;

static void run(uint64_t seed, const run_opts *o)
{
    vms_config cfg;
    REQUIRE_VOID(vms_config_init(&cfg, "skylake", NULL) == VMS_OK);
    char seedbuf[32];
    snprintf(seedbuf, sizeof seedbuf, "%llu", (unsigned long long)seed);
    REQUIRE_VOID(vms_config_set(&cfg, "ram", "1M", "test", NULL) == VMS_OK);
    REQUIRE_VOID(vms_config_set(&cfg, "cores", "2", "test", NULL) == VMS_OK);
    REQUIRE_VOID(vms_config_set(&cfg, "seed", seedbuf, "test", NULL) == VMS_OK);
    REQUIRE_VOID(vms_config_set(&cfg, "swap", "32M", "test", NULL) == VMS_OK);
    REQUIRE_VOID(vms_config_set(&cfg, "policy", o->policy, "test", NULL) == VMS_OK);
    REQUIRE_VOID(vms_config_set(&cfg, "swap.device", o->device, "test", NULL) == VMS_OK);
    REQUIRE_VOID(vms_config_set(&cfg, "kernel.writeback_dir", g_wb, "test", NULL) == VMS_OK);
    vms_kernel_config kc = vms_config_kernel(&cfg);
    kc.next_use = fake_next_use;
    world *w = calloc(1, sizeof *w);
    vms_rng_seed(&w->r, seed);
    w->check_each = o->check_each;
    w->read_errors = o->read_errors;
    REQUIRE_VOID(vms_machine_create(NULL, &cfg.machine, &w->m, NULL) == VMS_OK);
    vms_err err = {0};
    vms_status st = vms_kernel_create(w->m, &kc, &w->k, &err);
    if (st != VMS_OK)
        fprintf(stderr, "kernel: %s\n", err.msg);
    REQUIRE_VOID(st == VMS_OK);
    /* The shared file: random bytes, a fresh copy per run. */
    for (size_t j = 0; j < sizeof w->fbytes; j++)
        w->fbytes[j] = (uint8_t)rnd(w, 256);
    FILE *f = fopen(g_path, "wb");
    REQUIRE_VOID(f && fwrite(w->fbytes, 1, sizeof w->fbytes, f) == sizeof w->fbytes);
    fclose(f);
    char copy[600];
    snprintf(copy, sizeof copy, "%s/stress.bin", g_wb);
    remove(copy);
    REQUIRE_VOID(vms_file_open(w->k, g_path, &w->file, NULL) == VMS_OK);
    uint64_t free0 = vms_frames_nfree(vms_kernel_frames(w->k));
    for (unsigned n = 0; n < o->nops; n++) {
        if (o->write_errors && rnd(w, 50) == 0)
            vms_swap_inject_error(w->k, VMS_SWAP_IO_WRITE, rnd(w, 20), 1 + rnd(w, 3), NULL);
        step(w);
        if ((w->check_each || n % 64 == 63) && !check(w))
            break;
    }
    const vms_kernel_stats *ks = vms_kernel_get_stats(w->k);
    fprintf(stderr,
            "%-8s %s: %lu ops, %lu reads, swap out %llu in %llu, cache hits %llu, file wb %llu "
            "refault %llu, write errors %llu, read errors %llu (%lu SIGBUS), oom %llu\n",
            o->policy, o->device, w->ops, w->reads, (unsigned long long)ks->pswpout,
            (unsigned long long)ks->pswpin, (unsigned long long)ks->swapcache_hits,
            (unsigned long long)ks->pgwriteback, (unsigned long long)ks->refault_file,
            (unsigned long long)ks->swap_write_errors, (unsigned long long)ks->swap_read_errors,
            w->bus, (unsigned long long)ks->oom_kill);
    CHECK(ks->pswpout > o->nops / 4); /* the test did swap, a lot */
    CHECK(ks->pswpin > o->nops / 10);
    CHECK_EQ(ks->oom_kill, 0);
    if (o->write_errors)
        CHECK(ks->swap_write_errors > 0);
    while (w->np)
        drop_proc(w, 0);
    vms_file_close(w->k, w->file); /* the last reference: written back */
    check(w);
    CHECK_EQ(vms_frames_nfree(vms_kernel_frames(w->k)), free0);
    vms_swap_info si;
    vms_swap_get_info(w->k, &si);
    CHECK_EQ(si.cache_pages, 0);
    /* Slots a read error poisoned stay out of use. */
    CHECK_EQ(si.free_pages + ks->swap_read_errors, si.total_pages);
    /* The written-back copy holds exactly what the processes wrote to the file. */
    uint8_t *disk = malloc(sizeof w->fbytes);
    f = fopen(copy, "rb");
    bool same = f && fread(disk, 1, sizeof w->fbytes, f) == sizeof w->fbytes &&
                memcmp(disk, w->fbytes, sizeof w->fbytes) == 0;
    if (f)
        fclose(f);
    CHECK(same);
    free(disk);
    vms_kernel_destroy(w->k);
    vms_machine_destroy(w->m);
    free(w);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "swap_stress");
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/vmsim-stress-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(g_path, sizeof g_path, "%s/stress.bin", g_dir);
    snprintf(g_wb, sizeof g_wb, "%s/wb", g_dir);
    if (mkdir(g_wb, 0700) != 0) {
        perror("mkdir");
        return 1;
    }
    const char *soak = getenv("VMS_SWAP_SOAK");
    unsigned mult = soak ? (unsigned)strtoul(soak, NULL, 0) : 1;
    static const char *const pols[] = {"fifo", "lru", "clock", "random", "opt", "twolist"};
    for (unsigned i = 0; i < 6; i++) {
        run_opts o = {pols[i], 500 * mult, true, false, false, i % 2 ? "hdd" : "ssd"};
        run(th_seed * 31u + i, &o);
        o.nops = 2000 * mult;
        o.check_each = false;
        run(th_seed * 37u + i, &o);
    }
    run_opts we = {"clock", 2000 * mult, false, true, false, "ssd"};
    run(th_seed * 41u, &we);
    run_opts re = {"twolist", 3000 * mult, false, false, true, "ssd"};
    run(th_seed * 43u, &re);
    char copy[600];
    snprintf(copy, sizeof copy, "%s/stress.bin", g_wb);
    remove(copy);
    remove(g_path);
    rmdir(g_wb);
    rmdir(g_dir);
    return th_finish();
}
