/*
 * test_kernel_diff.c — a seeded differential test of the kernel against a deliberately
 * naive reference model: per address space, a byte array of an arena of user memory
 * (what was written; 0 elsewhere) and the protection of each page (or "unmapped").
 *
 * Random sequences of spawn, fork, thread creation (on the other core), exit, mmap
 * (MAP_FIXED in the arena), munmap, mprotect, MADV_DONTNEED, reads and writes (crossing
 * pages), and reads of the kernel's direct map run on a two-core machine with PCIDs on
 * or off. EVERY byte read is compared with the model and EVERY SIGSEGV must be predicted
 * by it (and vice versa); a process can never see another's private data because the
 * model of each address space is separate (fork copies it). vms_kernel_check runs after
 * every operation; after each sequence every process exits and every frame must be free.
 * VMS_KERNEL_SOAK=N runs N sequences instead of the default; VMS_KERNEL_THP_SEQ=A runs
 * only THP sequence A (the (A+1)th "seq … (thp)" line of a run's output).
 *
 * THP sequences (docs/HUGEPAGES.md): a 6 MiB arena (three 2 MiB-aligned ranges), thp =
 * always or madvise, ranges up to 700 pages (whole huge pages and parts of them: partial
 * munmap, mprotect and MADV_DONTNEED make PTE-mapped and partially mapped huge pages),
 * plus MADV_HUGEPAGE / NOHUGEPAGE, reclaim into swap (which splits huge pages, or with
 * thp.swap = whole swaps them out whole), the deferred split shrinker and khugepaged
 * runs: promotion, collapse, split, COW of huge pages and swap must all keep every byte.
 * Pressure sequences (thp = always, each thp.swap mode) run the same on 8 MiB of RAM,
 * so faults reclaim (kswapd, direct reclaim) on their own. Every mapped byte of one
 * process is compared with the model after each explicit reclaim, of every process at
 * the end.
 *
 * Mixed sequences (run_mixed, below): swap, file and shared mappings, huge pages, threads
 * on four cores and DMA, all in one world against one model.
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "vmsim/dma.h"
#include "vmsim/frames.h"
#include "vmsim/mman.h"
#include "vmsim/rng.h"
#include "vmsim/swap.h"

#define ARENA    UINT64_C(0x10000000)
#define MAXPAGES 1536u
#define NPAGES   g_npages
static unsigned g_npages = 40; /* 1536 in THP sequences */
static uint64_t g_thp_faults, g_thp_splits, g_thp_collapses, g_thp_split_pmds, g_thp_deferred,
    g_thp_swpout, g_thp_fallback, g_thp_swpin_4k;
static bool g_mixed_strict = true;          /* the default run's mixed sequences: each one */
static uint64_t g_mixed_runs, g_mixed_full; /* mixed sequences, and those with every part */
static bool g_pressure_strict = true;       /* the default run's pressure sequences: each one */
static uint64_t g_pressured;                /* pressure sequences that met pressure */
#define MAXP 6

typedef struct model {
    int refs;
    uint8_t *bytes;        /* NPAGES pages */
    int8_t prot[MAXPAGES]; /* -1: unmapped */
} model;

typedef struct sproc {
    vms_task *task[2];
    unsigned ntask;
    model *mm;
} sproc;

typedef struct world {
    vms_kernel *k;
    vms_rng r;
    sproc p[MAXP];
    unsigned np;
    unsigned ncores;
    bool a64;      /* an AArch64 machine: fault codes are ESR_EL1 values */
    bool thp;      /* a THP sequence */
    bool pressure; /* on 8 MiB of RAM, with fills */
    bool rv;       /* a RISC-V machine: fault codes are scause values */
    unsigned long ops, reads, segvs;
} world;

static model *model_new(void)
{
    model *m = calloc(1, sizeof *m);
    m->refs = 1;
    m->bytes = calloc(NPAGES, 4096);
    memset(m->prot, -1, sizeof m->prot);
    return m;
}

static void model_put(model *m)
{
    if (--m->refs == 0) {
        free(m->bytes);
        free(m);
    }
}

static uint64_t rnd(world *w, uint64_t n)
{
    return vms_rng_below(&w->r, n);
}

static void drop_proc(world *w, unsigned i)
{
    vms_proc_exit(w->k, w->p[i].task[0]);
    model_put(w->p[i].mm);
    w->p[i] = w->p[--w->np];
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
    if (w->np == MAXP)
        return;
    sproc *p = &w->p[w->np];
    memset(p, 0, sizeof *p);
    CHECK_EQ(vms_proc_spawn(w->k, "diff", (unsigned)rnd(w, w->ncores), &p->task[0], NULL), VMS_OK);
    p->ntask = 1;
    p->mm = model_new();
    w->np++;
}

static void op_fork(world *w, unsigned i)
{
    if (w->np == MAXP)
        return;
    sproc *c = &w->p[w->np];
    memset(c, 0, sizeof *c);
    vms_task *t = w->p[i].task[rnd(w, w->p[i].ntask)];
    CHECK_EQ(vms_proc_fork(w->k, t, &c->task[0], NULL), VMS_OK);
    c->ntask = 1;
    c->mm = model_new();
    memcpy(c->mm->bytes, w->p[i].mm->bytes, (size_t)NPAGES * 4096);
    memcpy(c->mm->prot, w->p[i].mm->prot, sizeof c->mm->prot);
    w->np++;
}

static void op_thread(world *w, unsigned i)
{
    sproc *p = &w->p[i];
    if (p->ntask == 2)
        return;
    CHECK_EQ(
        vms_proc_clone_thread(w->k, p->task[0], (unsigned)rnd(w, w->ncores), &p->task[1], NULL),
        VMS_OK);
    p->ntask = 2;
}

/* A random page range [a, b) of the arena. */
static void range(world *w, unsigned *a, unsigned *b)
{
    *a = (unsigned)rnd(w, NPAGES);
    *b = *a + 1 + (unsigned)rnd(w, w->thp && rnd(w, 3) == 0 ? 700 : 12);
    if (w->thp && rnd(w, 4) == 0) { /* whole 2 MiB ranges */
        *a &= ~511u;
        *b = *a + 512 * (1 + (unsigned)rnd(w, 2));
    }
    if (*b > NPAGES)
        *b = NPAGES;
}

static unsigned rprot(world *w)
{
    static const unsigned prots[] = {VMS_PROT_READ | VMS_PROT_WRITE, VMS_PROT_READ, VMS_PROT_NONE,
                                     VMS_PROT_WRITE,
                                     VMS_PROT_READ | VMS_PROT_WRITE | VMS_PROT_EXEC};
    unsigned n = (unsigned)rnd(w, 8);
    return n < 5 ? prots[n] : prots[0]; /* read-write 4 times in 8 */
}

static void op_mmap(world *w, unsigned i)
{
    unsigned a, b, prot = rprot(w);
    range(w, &a, &b);
    uint64_t va;
    vms_task *t = w->p[i].task[rnd(w, w->p[i].ntask)];
    CHECK_EQ(vms_sys_mmap(w->k, t, ARENA + a * 4096u, (b - a) * 4096u, prot,
                          VMS_MAP_PRIVATE | VMS_MAP_ANONYMOUS | VMS_MAP_FIXED, NULL, 0, &va, NULL),
             VMS_OK);
    model *m = w->p[i].mm;
    memset(m->bytes + a * 4096u, 0, (b - a) * 4096u);
    for (unsigned p = a; p < b; p++)
        m->prot[p] = (int8_t)prot;
    if (w->thp && rnd(w, 2)) /* thp = madvise needs the advice before the faults */
        CHECK_EQ(
            vms_sys_madvise(w->k, t, ARENA + a * 4096u, (b - a) * 4096u, VMS_MADV_HUGEPAGE, NULL),
            VMS_OK);
}

static void op_munmap(world *w, unsigned i)
{
    unsigned a, b;
    range(w, &a, &b);
    vms_task *t = w->p[i].task[rnd(w, w->p[i].ntask)];
    CHECK_EQ(vms_sys_munmap(w->k, t, ARENA + a * 4096u, (b - a) * 4096u, NULL), VMS_OK);
    model *m = w->p[i].mm;
    memset(m->bytes + a * 4096u, 0, (b - a) * 4096u);
    for (unsigned p = a; p < b; p++)
        m->prot[p] = -1;
}

static bool all_mapped(const model *m, unsigned a, unsigned b)
{
    for (unsigned p = a; p < b; p++)
        if (m->prot[p] < 0)
            return false;
    return true;
}

static void op_mprotect(world *w, unsigned i)
{
    unsigned a, b, prot = rprot(w);
    range(w, &a, &b);
    model *m = w->p[i].mm;
    vms_task *t = w->p[i].task[rnd(w, w->p[i].ntask)];
    vms_status st = vms_sys_mprotect(w->k, t, ARENA + a * 4096u, (b - a) * 4096u, prot, NULL);
    if (!all_mapped(m, a, b)) {
        CHECK_EQ(st, VMS_ERR_RANGE);
        return;
    }
    CHECK_EQ(st, VMS_OK);
    for (unsigned p = a; p < b; p++)
        m->prot[p] = (int8_t)prot;
}

static void op_dontneed(world *w, unsigned i)
{
    unsigned a, b;
    range(w, &a, &b);
    model *m = w->p[i].mm;
    if (!all_mapped(m, a, b))
        return;
    vms_task *t = w->p[i].task[rnd(w, w->p[i].ntask)];
    CHECK_EQ(vms_sys_madvise(w->k, t, ARENA + a * 4096u, (b - a) * 4096u, VMS_MADV_DONTNEED, NULL),
             VMS_OK);
    memset(m->bytes + a * 4096u, 0, (b - a) * 4096u);
}

/* A read or write of up to 3 pages; returns false when the process died (dropped). */
static bool op_access(world *w, unsigned i, bool write)
{
    sproc *p = &w->p[i];
    model *m = p->mm;
    /* Mostly inside a page the model has accessible for this kind (so processes live
     * long enough to matter), sometimes anywhere (a SIGSEGV is then likely). */
    static unsigned cand[MAXPAGES];
    unsigned nc = 0;
    for (unsigned pg = 0; pg < NPAGES; pg++)
        if (m->prot[pg] > 0 && (!write || (m->prot[pg] & VMS_PROT_WRITE)))
            cand[nc++] = pg;
    uint64_t off = (nc && rnd(w, 12) != 0) ? cand[rnd(w, nc)] * UINT64_C(4096) + rnd(w, 4096)
                                           : rnd(w, NPAGES * 4096u - 1);
    /* Writes are small (many distinct bytes), reads often long (compare many bytes). */
    size_t len = 1 + (size_t)rnd(w, rnd(w, write ? 8 : 2) == 0 ? 3 * 4096 : 64);
    if (off + len > NPAGES * 4096u)
        len = NPAGES * 4096u - off;
    bool ok = true;
    for (uint64_t pg = off / 4096; pg <= (off + len - 1) / 4096; pg++)
        ok &= write ? (m->prot[pg] >= 0 && (m->prot[pg] & VMS_PROT_WRITE)) : (m->prot[pg] > 0);
    static uint8_t buf[3 * 4096 + 64];
    if (write)
        for (size_t j = 0; j < len; j++)
            buf[j] = (uint8_t)rnd(w, 256);
    else
        memset(buf, 0xEE, len);
    vms_task *t = p->task[rnd(w, p->ntask)];
    vms_access_info info;
    CHECK_EQ(vms_proc_access(w->k, t, ARENA + off, write ? VMS_ACC_WRITE : VMS_ACC_READ, buf, len,
                             &info, NULL),
             VMS_OK);
    CHECK_EQ(info.outcome, ok ? VMS_ACCESS_OK : VMS_ACCESS_SEGV);
    if (info.outcome != VMS_ACCESS_OK) {
        w->segvs++;
        drop_proc(w, i);
        return false;
    }
    if (write) {
        memcpy(m->bytes + off, buf, len);
    } else {
        w->reads++;
        bool same = memcmp(m->bytes + off, buf, len) == 0;
        if (!same)
            fprintf(stderr, "op %lu: read of %zu bytes at %llx differs from the model\n", w->ops,
                    len, (unsigned long long)(ARENA + off));
        CHECK(same);
    }
    return true;
}

static void op_kernel_read(world *w, unsigned i)
{
    vms_access_info info;
    uint8_t b;
    vms_task *t = w->p[i].task[0];
    uint64_t kva = vms_kernel_page_offset(w->k) + rnd(w, 1u << 20);
    CHECK_EQ(vms_proc_access(w->k, t, kva, VMS_ACC_READ, &b, 1, &info, NULL), VMS_OK);
    CHECK_EQ(info.outcome, VMS_ACCESS_SEGV);
    /* x86-64: P|U. AArch64: ESR_EL1 of a Data Abort from EL0, Permission fault at level 1
     * (the direct map's 1 GiB blocks are EL1-only). */
    CHECK_EQ(info.error_code, w->a64  ? (0x24u << 26 | 1u << 25 | 0x0Du)
                              : w->rv ? 13u /* scause: load page fault */
                                      : VMS_PFERR_P | VMS_PFERR_U);
    drop_proc(w, i);
}

/* MADV_HUGEPAGE or NOHUGEPAGE over a range (VMS_ERR_RANGE where it is not all mapped). */
static void op_hugepage(world *w, unsigned i)
{
    unsigned a, b;
    range(w, &a, &b);
    vms_task *t = w->p[i].task[rnd(w, w->p[i].ntask)];
    int adv = rnd(w, 4) ? VMS_MADV_HUGEPAGE : VMS_MADV_NOHUGEPAGE;
    vms_status st = vms_sys_madvise(w->k, t, ARENA + a * 4096u, (b - a) * 4096u, adv, NULL);
    CHECK_EQ(st, all_mapped(w->p[i].mm, a, b) ? VMS_OK : VMS_ERR_RANGE);
}

/* Every byte of every readable page of process i equals the model (4 KiB reads). */
static void op_verify(world *w, unsigned i)
{
    sproc *p = &w->p[i];
    static uint8_t buf[4096];
    for (unsigned pg = 0; pg < NPAGES; pg++) {
        if (p->mm->prot[pg] <= 0)
            continue;
        vms_access_info info;
        CHECK_EQ(vms_proc_access(w->k, p->task[0], ARENA + pg * UINT64_C(4096), VMS_ACC_READ, buf,
                                 sizeof buf, &info, NULL),
                 VMS_OK);
        CHECK_EQ(info.outcome, VMS_ACCESS_OK);
        if (info.outcome != VMS_ACCESS_OK)
            return;
        w->reads++;
        if (memcmp(buf, p->mm->bytes + pg * UINT64_C(4096), sizeof buf) != 0) {
            fprintf(stderr, "op %lu: pid %d page %u differs from the model\n", w->ops,
                    vms_task_pid(p->task[0]), pg);
            CHECK(false);
            return;
        }
    }
}

/* A fill (pressure sequences): one 2 MiB range of process i mapped afresh read-write and
 * 16 random bytes written into each of its pages, so a huge page faults in whole (or 512
 * small ones) and memory runs short. */
static void op_fill(world *w, unsigned i)
{
    sproc *p = &w->p[i];
    unsigned a = 512 * (unsigned)rnd(w, NPAGES / 512);
    uint64_t va;
    CHECK_EQ(vms_sys_mmap(w->k, p->task[0], ARENA + a * UINT64_C(4096), UINT64_C(2) << 20,
                          VMS_PROT_READ | VMS_PROT_WRITE,
                          VMS_MAP_PRIVATE | VMS_MAP_ANONYMOUS | VMS_MAP_FIXED, NULL, 0, &va, NULL),
             VMS_OK);
    memset(p->mm->bytes + a * UINT64_C(4096), 0, UINT64_C(2) << 20);
    memset(p->mm->prot + a, VMS_PROT_READ | VMS_PROT_WRITE, 512);
    uint8_t buf[16];
    for (unsigned pg = a; pg < a + 512; pg++) {
        uint64_t off = pg * UINT64_C(4096) + rnd(w, 4096 - sizeof buf);
        for (size_t j = 0; j < sizeof buf; j++)
            buf[j] = (uint8_t)rnd(w, 256);
        vms_access_info info;
        CHECK_EQ(vms_proc_access(w->k, p->task[0], ARENA + off, VMS_ACC_WRITE, buf, sizeof buf,
                                 &info, NULL),
                 VMS_OK);
        CHECK_EQ(info.outcome, VMS_ACCESS_OK);
        if (info.outcome != VMS_ACCESS_OK)
            return;
        memcpy(p->mm->bytes + off, buf, sizeof buf);
    }
}

static void step_thp(world *w, unsigned i, unsigned r)
{
    uint64_t got;
    if (r < 38 && w->pressure) {
        op_fill(w, i);
    } else if (r < 38) {
        op_hugepage(w, i);
    } else if (r < 39) {
        if (rnd(w, 2))
            op_hugepage(w, i);
        else
            vms_kernel_thp_deferred_split(w->k, 1 + rnd(w, 3), NULL);
    } else if (r < 40) {
        vms_kernel_reclaim(w->k, 1 + rnd(w, 600), &got); /* splits, swaps */
        op_verify(w, i); /* every byte of one process (of all at the end) */
    } else {
        vms_kernel_khugepaged(w->k);
    }
}

static void step(world *w)
{
    w->ops++;
    if (w->np == 0 || rnd(w, 40) == 0) {
        op_spawn(w);
        return;
    }
    unsigned i = (unsigned)rnd(w, w->np);
    unsigned r = (unsigned)rnd(w, 100);
    if (r < 4)
        op_fork(w, i);
    else if (r < 6)
        op_thread(w, i);
    else if (r < 8)
        drop_proc(w, i);
    else if (r < 20)
        op_mmap(w, i);
    else if (r < 26)
        op_munmap(w, i);
    else if (r < 32)
        op_mprotect(w, i);
    else if (r < 35)
        op_dontneed(w, i);
    else if (r < 36)
        op_kernel_read(w, i);
    else if (w->thp && r < 41)
        step_thp(w, i, r);
    else
        op_access(w, i, r < 66);
}

/* A sequence on preset: THP ones (seq) with thp mode, thp.swap mode swap, on 128 MiB of
 * RAM or (pressure) 16 MiB. */
static void run_thp(const char *preset, uint64_t seed, bool pcid, unsigned nops, vms_thp_mode thp,
                    bool seq, vms_thp_swap swap, bool pressure)
{
    vms_machine_config mc;
    vms_machine_preset(preset, &mc, NULL);
    mc.ram_bytes = (pressure ? UINT64_C(8) : UINT64_C(128)) << 20;
    mc.ncores = 2;
    mc.seed = seed;
    vms_machine *m;
    REQUIRE_VOID(vms_machine_create(NULL, &mc, &m, NULL) == VMS_OK);
    vms_kernel_config kc;
    vms_kernel_config_default(&kc);
    kc.seed = seed;
    kc.pcid = pcid;
    kc.thp = thp;
    kc.swap_bytes = seq ? UINT64_C(64) << 20 : 0;
    kc.thp_cow = seq && seed % 2 ? VMS_THP_COW_COPY : VMS_THP_COW_SPLIT;
    kc.thp_swap = swap;
    g_npages = seq ? MAXPAGES : 40;
    world w;
    memset(&w, 0, sizeof w);
    w.thp = seq;
    w.pressure = pressure;
    w.ncores = 2;
    w.a64 = strcmp(vms_machine_format(m)->arch, "aarch64") == 0;
    w.rv = strcmp(vms_machine_format(m)->arch, "riscv64") == 0;
    vms_rng_seed(&w.r, seed);
    REQUIRE_VOID(vms_kernel_create(m, &kc, &w.k, NULL) == VMS_OK);
    uint64_t free0 = vms_frames_nfree(vms_kernel_frames(w.k));
    for (unsigned n = 0; n < nops; n++) {
        step(&w);
        if (!check(&w))
            break;
    }
    for (unsigned j = 0; j < w.np && w.thp; j++) /* every byte, before the exits */
        op_verify(&w, j);
    const vms_kernel_stats *ks = vms_kernel_get_stats(w.k);
    fprintf(stderr,
            "seq %s%s%s%s seed %llu: %lu ops, %lu reads, %lu segvs, forks %llu cow %llu; thp "
            "%llu, split %llu (pmd %llu, deferred %llu), collapse %llu, swap out %llu in %llu, thp "
            "swap out %llu fallback %llu, in as 4K %llu, kswapd %llu\n",
            preset, w.thp ? " (thp)" : "", swap == VMS_THP_SWAP_WHOLE ? " whole" : "",
            pressure ? " pressure" : "", (unsigned long long)seed, w.ops, w.reads, w.segvs,
            (unsigned long long)ks->forks, (unsigned long long)ks->cow_copy,
            (unsigned long long)ks->thp_anon_fault_alloc, (unsigned long long)ks->thp_split_page,
            (unsigned long long)ks->thp_split_pmd, (unsigned long long)ks->thp_deferred_split_page,
            (unsigned long long)ks->thp_collapse_alloc, (unsigned long long)ks->pswpout,
            (unsigned long long)ks->pswpin, (unsigned long long)ks->thp_swpout,
            (unsigned long long)ks->thp_swpout_fallback, (unsigned long long)ks->thp_swpin_fallback,
            (unsigned long long)ks->kswapd_runs);
    if (w.thp) { /* what the THP sequences did, together (checked in main) */
        g_thp_faults += ks->thp_anon_fault_alloc;
        g_thp_splits += ks->thp_split_page;
        g_thp_collapses += ks->thp_collapse_alloc;
        g_thp_split_pmds += ks->thp_split_pmd;
        g_thp_deferred += ks->thp_deferred_split_page;
        g_thp_swpout += ks->thp_swpout;
        g_thp_fallback += ks->thp_swpout_fallback;
        g_thp_swpin_4k += ks->thp_swpin_fallback;
        CHECK(swap == VMS_THP_SWAP_WHOLE || ks->thp_swpout == 0);
        /* It was under pressure: each of the default run's pressure sequences; of a soak's
         * further ones (other seeds, which may fit in RAM), some (checked in main). */
        bool pressed = ks->kswapd_runs + ks->allocstall > 0;
        if (pressure && g_pressure_strict)
            CHECK(pressed);
        g_pressured += pressure && pressed;
    }
    while (w.np)
        drop_proc(&w, 0);
    check(&w);
    CHECK_EQ(vms_frames_nfree(vms_kernel_frames(w.k)), free0);
    vms_kernel_destroy(w.k);
    vms_machine_destroy(m);
}

/* The 4 KiB sequences, with the default configuration (thp = madvise, nothing madvised). */
static void run(const char *preset, uint64_t seed, bool pcid, unsigned nops)
{
    run_thp(preset, seed, pcid, nops, VMS_THP_MADVISE, false, VMS_THP_SWAP_SPLIT, false);
}

/* ---- mixed sequences: everything at once (issue 16) ----------------------------------- */
/*
 * One world holds swap (a small RAM under pressure: reclaim evicts, swaps and splits on its
 * own, plus explicit reclaim), a host file mapped private and shared (page cache, COW,
 * writeback to a private directory, re-reads after eviction), a named shm object and
 * shared anonymous memory (shmem, swapped too), huge pages (thp always or madvise,
 * MADV_HUGEPAGE, khugepaged), processes with up to three threads on four cores (clone on
 * any core, migration, thread exit: every munmap/mprotect/DONTNEED must reach every TLB)
 * and a device doing DMA through the IOMMU into pinned process pages (reclaim between the
 * pin and the transfer). The reference model says, for each page of each address space,
 * where its bytes live: private bytes (anonymous, or a file page after COW) or a page of
 * a shared object (the file's page cache, shm, shared anonymous) — a MAP_PRIVATE file
 * page reads the object until its first write copies it. Every byte read by a process or
 * by the device is compared with it, every SIGSEGV predicted, vms_kernel_check runs after
 * every operation, and at the end the written-back copy of the file must equal the
 * model's file and every frame must be free.
 * VMS_KERNEL_MIXED_SOAK=N runs N mixed sequences (default 2); VMS_KERNEL_MIXED_ONLY=1
 * skips the other sequences.
 */
#define MX_PAGES  1536u /* the arena: 6 MiB, three 2 MiB-aligned ranges */
#define MX_OPAGES 96u   /* pages of the file and of the shm object */
#define MX_MAXP   4
#define MX_MAXT   3
#define MX_MAXOBJ 40
#define MX_CORES  4
#define RW        (VMS_PROT_READ | VMS_PROT_WRITE)

enum { MX_NONE, MX_ANON, MX_FPRIV, MX_FCOW, MX_SHARED };

typedef struct mx_obj {
    uint8_t *bytes;
    unsigned npages;
} mx_obj;

typedef struct mx_pent {
    int8_t prot;  /* -1: unmapped */
    uint8_t kind; /* MX_* */
    uint8_t obj;  /* FPRIV, FCOW (where DONTNEED goes back to), SHARED */
    uint32_t opg; /* page in the object */
} mx_pent;

typedef struct mx_mm {
    uint8_t *bytes; /* private bytes (ANON, FCOW) */
    mx_pent pe[MX_PAGES];
} mx_mm;

typedef struct mx_proc {
    vms_task *task[MX_MAXT];
    unsigned ntask;
    mx_mm *mm;
} mx_proc;

typedef struct mx_world {
    vms_kernel *k;
    vms_dev *dev;
    vms_dma_dev *dd;
    vms_rng r;
    mx_proc p[MX_MAXP];
    unsigned np;
    mx_obj obj[MX_MAXOBJ]; /* 0: the file, 1: shm, then shared anonymous mappings */
    unsigned nobj;
    vms_file *file, *shm;
    unsigned long ops, reads, segvs, dmas, migrations, cows, probes;
} mx_world;

static uint64_t mrnd(mx_world *w, uint64_t n)
{
    return vms_rng_below(&w->r, n);
}

static mx_mm *mx_mm_new(void)
{
    mx_mm *m = calloc(1, sizeof *m);
    m->bytes = calloc(MX_PAGES, 4096);
    for (unsigned p = 0; p < MX_PAGES; p++)
        m->pe[p].prot = -1;
    return m;
}

static void mx_mm_free(mx_mm *m)
{
    free(m->bytes);
    free(m);
}

static bool mx_check(mx_world *w)
{
    vms_err err = {0};
    vms_status st = vms_kernel_check(w->k, &err);
    if (st != VMS_OK)
        fprintf(stderr, "mixed: after op %lu: %s\n", w->ops, err.msg);
    CHECK_EQ(st, VMS_OK);
    return st == VMS_OK;
}

static vms_task *mx_task(mx_world *w, unsigned i)
{
    return w->p[i].task[mrnd(w, w->p[i].ntask)];
}

static void mx_drop(mx_world *w, unsigned i)
{
    vms_proc_exit(w->k, w->p[i].task[0]);
    mx_mm_free(w->p[i].mm);
    w->p[i] = w->p[--w->np];
}

/* The model's byte at arena offset off of m (NULL where nothing is mapped). */
static uint8_t *mx_byte(mx_world *w, mx_mm *m, uint64_t off)
{
    const mx_pent *e = &m->pe[off / 4096];
    switch (e->kind) {
    case MX_ANON:
    case MX_FCOW:
        return &m->bytes[off];
    case MX_FPRIV:
    case MX_SHARED:
        return &w->obj[e->obj].bytes[e->opg * UINT64_C(4096) + off % 4096];
    default:
        return NULL;
    }
}

/* A write to page pg of m: a MAP_PRIVATE file page gets its own copy first (COW). */
static void mx_cow(mx_world *w, mx_mm *m, unsigned pg)
{
    mx_pent *e = &m->pe[pg];
    if (e->kind != MX_FPRIV)
        return;
    memcpy(m->bytes + pg * UINT64_C(4096), w->obj[e->obj].bytes + e->opg * UINT64_C(4096), 4096);
    e->kind = MX_FCOW;
    w->cows++;
}

static void mx_spawn(mx_world *w)
{
    if (w->np == MX_MAXP)
        return;
    mx_proc *p = &w->p[w->np];
    memset(p, 0, sizeof *p);
    CHECK_EQ(vms_proc_spawn(w->k, "mixed", (unsigned)mrnd(w, MX_CORES), &p->task[0], NULL), VMS_OK);
    p->ntask = 1;
    p->mm = mx_mm_new();
    w->np++;
}

static void mx_fork(mx_world *w, unsigned i)
{
    if (w->np == MX_MAXP)
        return;
    mx_proc *c = &w->p[w->np];
    memset(c, 0, sizeof *c);
    CHECK_EQ(vms_proc_fork(w->k, mx_task(w, i), &c->task[0], NULL), VMS_OK);
    c->ntask = 1;
    c->mm = mx_mm_new();
    memcpy(c->mm->bytes, w->p[i].mm->bytes, (size_t)MX_PAGES * 4096);
    memcpy(c->mm->pe, w->p[i].mm->pe, sizeof c->mm->pe);
    w->np++;
}

static void mx_thread(mx_world *w, unsigned i)
{
    mx_proc *p = &w->p[i];
    if (p->ntask == MX_MAXT)
        return;
    CHECK_EQ(vms_proc_clone_thread(w->k, p->task[0], (unsigned)mrnd(w, MX_CORES),
                                   &p->task[p->ntask], NULL),
             VMS_OK);
    p->ntask++;
}

static void mx_thread_exit(mx_world *w, unsigned i)
{
    mx_proc *p = &w->p[i];
    if (p->ntask < 2)
        return;
    unsigned j = 1 + (unsigned)mrnd(w, p->ntask - 1);
    vms_task_exit(w->k, p->task[j]);
    p->task[j] = p->task[--p->ntask];
}

static void mx_migrate(mx_world *w, unsigned i)
{
    CHECK_EQ(vms_task_set_core(w->k, mx_task(w, i), (unsigned)mrnd(w, MX_CORES), NULL), VMS_OK);
    w->migrations++;
}

/* A random page range [a, b): small, up to 700 pages, or whole 2 MiB ranges. */
static void mx_range(mx_world *w, unsigned *a, unsigned *b)
{
    *a = (unsigned)mrnd(w, MX_PAGES);
    *b = *a + 1 + (unsigned)mrnd(w, mrnd(w, 3) == 0 ? 700 : 12);
    if (mrnd(w, 5) == 0) {
        *a &= ~511u;
        *b = *a + 512 * (1 + (unsigned)mrnd(w, 2));
    }
    if (*b > MX_PAGES)
        *b = MX_PAGES;
}

static unsigned mx_prot(mx_world *w)
{
    static const unsigned prots[] = {RW, VMS_PROT_READ, VMS_PROT_NONE, VMS_PROT_WRITE,
                                     RW | VMS_PROT_EXEC};
    unsigned n = (unsigned)mrnd(w, 8);
    return n < 5 ? prots[n] : RW;
}

static void mx_mmap(mx_world *w, unsigned i)
{
    unsigned a, b, prot = mx_prot(w), kind = (unsigned)mrnd(w, 10);
    mx_range(w, &a, &b);
    uint64_t va, len = (b - a) * UINT64_C(4096);
    vms_task *t = mx_task(w, i);
    mx_mm *m = w->p[i].mm;
    unsigned obj = 0, opg = 0, mk = MX_ANON;
    vms_file *f = NULL;
    unsigned flags = VMS_MAP_PRIVATE | VMS_MAP_ANONYMOUS;
    if (kind >= 4 && b - a > MX_OPAGES)
        b = a + MX_OPAGES, len = MX_OPAGES * UINT64_C(4096);
    if (kind >= 4 && kind < 9) { /* the file (private or shared) or shm */
        obj = kind < 8 ? 0 : 1;
        f = obj ? w->shm : w->file;
        opg = (unsigned)mrnd(w, MX_OPAGES - (b - a) + 1);
        mk = kind < 6 ? MX_FPRIV : MX_SHARED;
        flags = mk == MX_FPRIV ? VMS_MAP_PRIVATE : VMS_MAP_SHARED;
    } else if (kind == 9) { /* shared anonymous: a new object, shared with later children */
        if (w->nobj == MX_MAXOBJ)
            return;
        obj = w->nobj++;
        w->obj[obj].npages = b - a;
        w->obj[obj].bytes = calloc(b - a, 4096);
        mk = MX_SHARED;
        flags = VMS_MAP_SHARED | VMS_MAP_ANONYMOUS;
    }
    CHECK_EQ(vms_sys_mmap(w->k, t, ARENA + a * UINT64_C(4096), len, prot, flags | VMS_MAP_FIXED, f,
                          opg * UINT64_C(4096), &va, NULL),
             VMS_OK);
    memset(m->bytes + a * UINT64_C(4096), 0, len);
    for (unsigned p = a; p < b; p++)
        m->pe[p] =
            (mx_pent){(int8_t)prot, (uint8_t)mk, (uint8_t)obj, mk == MX_ANON ? 0 : opg + (p - a)};
    if (mk == MX_ANON && mrnd(w, 2))
        CHECK_EQ(vms_sys_madvise(w->k, t, ARENA + a * UINT64_C(4096), len, VMS_MADV_HUGEPAGE, NULL),
                 VMS_OK);
}

static bool mx_all_mapped(const mx_mm *m, unsigned a, unsigned b)
{
    for (unsigned p = a; p < b; p++)
        if (m->pe[p].prot < 0)
            return false;
    return true;
}

static void mx_munmap(mx_world *w, unsigned i)
{
    unsigned a, b;
    mx_range(w, &a, &b);
    CHECK_EQ(vms_sys_munmap(w->k, mx_task(w, i), ARENA + a * UINT64_C(4096),
                            (b - a) * UINT64_C(4096), NULL),
             VMS_OK);
    mx_mm *m = w->p[i].mm;
    for (unsigned p = a; p < b; p++)
        m->pe[p] = (mx_pent){-1, MX_NONE, 0, 0};
}

static void mx_mprotect(mx_world *w, unsigned i)
{
    unsigned a, b, prot = mx_prot(w);
    mx_range(w, &a, &b);
    mx_mm *m = w->p[i].mm;
    vms_status st = vms_sys_mprotect(w->k, mx_task(w, i), ARENA + a * UINT64_C(4096),
                                     (b - a) * UINT64_C(4096), prot, NULL);
    CHECK_EQ(st, mx_all_mapped(m, a, b) ? VMS_OK : VMS_ERR_RANGE);
    if (st == VMS_OK)
        for (unsigned p = a; p < b; p++)
            m->pe[p].prot = (int8_t)prot;
}

/* MADV_DONTNEED: anonymous pages read zeros, a private file page its file again, shared
 * pages keep their object's bytes. */
static void mx_dontneed(mx_world *w, unsigned i)
{
    unsigned a, b;
    mx_range(w, &a, &b);
    mx_mm *m = w->p[i].mm;
    if (!mx_all_mapped(m, a, b))
        return;
    CHECK_EQ(vms_sys_madvise(w->k, mx_task(w, i), ARENA + a * UINT64_C(4096),
                             (b - a) * UINT64_C(4096), VMS_MADV_DONTNEED, NULL),
             VMS_OK);
    for (unsigned p = a; p < b; p++) {
        if (m->pe[p].kind == MX_ANON)
            memset(m->bytes + p * UINT64_C(4096), 0, 4096);
        else if (m->pe[p].kind == MX_FCOW)
            m->pe[p].kind = MX_FPRIV;
    }
}

static void mx_advise(mx_world *w, unsigned i)
{
    unsigned a, b;
    mx_range(w, &a, &b);
    int adv = mrnd(w, 4) ? VMS_MADV_HUGEPAGE : VMS_MADV_NOHUGEPAGE;
    CHECK_EQ(vms_sys_madvise(w->k, mx_task(w, i), ARENA + a * UINT64_C(4096),
                             (b - a) * UINT64_C(4096), adv, NULL),
             mx_all_mapped(w->p[i].mm, a, b) ? VMS_OK : VMS_ERR_RANGE);
}

static void mx_msync(mx_world *w, unsigned i)
{
    unsigned a, b;
    mx_range(w, &a, &b);
    if (!mx_all_mapped(w->p[i].mm, a, b))
        return;
    CHECK_EQ(vms_sys_msync(w->k, mx_task(w, i), ARENA + a * UINT64_C(4096),
                           (b - a) * UINT64_C(4096), VMS_MS_SYNC, NULL),
             VMS_OK);
}

/* Pages of m that an access of this kind may touch. */
static unsigned mx_candidates(const mx_mm *m, bool write, unsigned *cand)
{
    unsigned nc = 0;
    for (unsigned pg = 0; pg < MX_PAGES; pg++)
        if (m->pe[pg].prot > 0 && (!write || (m->pe[pg].prot & VMS_PROT_WRITE)))
            cand[nc++] = pg;
    return nc;
}

/* A process read or write of up to 3 pages; false when the process died (dropped). */
static bool mx_access(mx_world *w, unsigned i, bool write)
{
    mx_proc *p = &w->p[i];
    mx_mm *m = p->mm;
    static unsigned cand[MX_PAGES];
    unsigned nc = mx_candidates(m, write, cand);
    uint64_t off = (nc && mrnd(w, 32) != 0) ? cand[mrnd(w, nc)] * UINT64_C(4096) + mrnd(w, 4096)
                                            : mrnd(w, MX_PAGES * UINT64_C(4096) - 1);
    size_t len = 1 + (size_t)mrnd(w, mrnd(w, write ? 8 : 2) == 0 ? 3 * 4096 : 64);
    if (off + len > MX_PAGES * UINT64_C(4096))
        len = MX_PAGES * UINT64_C(4096) - off;
#define MX_ALLOWED(pg) (m->pe[pg].prot > 0 && (!write || (m->pe[pg].prot & VMS_PROT_WRITE)))
    if (mrnd(w, 16) != 0 && MX_ALLOWED(off / 4096)) { /* mostly inside what it may touch */
        uint64_t end = off / 4096 + 1;
        while (end < MX_PAGES && MX_ALLOWED(end))
            end++;
        if (off + len > end * 4096)
            len = (size_t)(end * 4096 - off);
    }
    bool ok = true;
    for (uint64_t pg = off / 4096; pg <= (off + len - 1) / 4096; pg++)
        ok &= MX_ALLOWED(pg);
#undef MX_ALLOWED
    static uint8_t buf[3 * 4096 + 64];
    if (write)
        for (size_t j = 0; j < len; j++)
            buf[j] = (uint8_t)mrnd(w, 256);
    else
        memset(buf, 0xEE, len);
    vms_access_info info;
    CHECK_EQ(vms_proc_access(w->k, mx_task(w, i), ARENA + off, write ? VMS_ACC_WRITE : VMS_ACC_READ,
                             buf, len, &info, NULL),
             VMS_OK);
    CHECK_EQ(info.outcome, ok ? VMS_ACCESS_OK : VMS_ACCESS_SEGV);
    if (info.outcome != VMS_ACCESS_OK) {
        w->segvs++;
        mx_drop(w, i);
        return false;
    }
    if (write) {
        for (uint64_t pg = off / 4096; pg <= (off + len - 1) / 4096; pg++)
            mx_cow(w, m, (unsigned)pg);
        for (size_t j = 0; j < len; j++)
            *mx_byte(w, m, off + j) = buf[j];
        return true;
    }
    w->reads++;
    for (size_t j = 0; j < len; j++) {
        if (buf[j] != *mx_byte(w, m, off + j)) {
            fprintf(stderr,
                    "mixed: op %lu: read at %llx: byte %zu is %02x, the model says %02x (page kind "
                    "%u)\n",
                    w->ops, (unsigned long long)(ARENA + off), j, buf[j], *mx_byte(w, m, off + j),
                    m->pe[(off + j) / 4096].kind);
            CHECK(false);
            break;
        }
    }
    return true;
}

/* A DMA through the IOMMU into pinned pages of process i (read-write mappings only): the
 * device writes or reads (the pin breaks COW first in any case); a reclaim may run
 * while the pages are pinned. */
static void mx_dma(mx_world *w, unsigned i)
{
    mx_mm *m = w->p[i].mm;
    static unsigned cand[MX_PAGES];
    unsigned nc = mx_candidates(m, true, cand);
    if (!nc)
        return;
    unsigned pg0 = cand[mrnd(w, nc)], np = 1 + (unsigned)mrnd(w, 3);
    for (unsigned p = pg0; p < pg0 + np; p++)
        if (p >= MX_PAGES || m->pe[p].prot < 0 || (m->pe[p].prot & RW) != RW)
            return;
    uint64_t off = pg0 * UINT64_C(4096) + mrnd(w, 4096);
    size_t len = 1 + (size_t)mrnd(w, (pg0 + np) * UINT64_C(4096) - off);
    bool dev_writes = mrnd(w, 2);
    vms_dma_dir dir = !dev_writes  ? VMS_DMA_TO_DEVICE
                      : mrnd(w, 2) ? VMS_DMA_FROM_DEVICE
                                   : VMS_DMA_BIDIRECTIONAL;
    uint64_t iova = 0;
    vms_err err = {0};
    vms_status st = vms_dma_map(w->k, w->dd, mx_task(w, i), ARENA + off, len, dir, &iova, &err);
    CHECK_EQ(st, VMS_OK);
    if (st != VMS_OK) {
        fprintf(stderr, "mixed: op %lu: dma map: %s\n", w->ops, err.msg);
        return;
    }
    /* dma.h: the pin write-faults private writable pages whatever the direction, so a
     * MAP_PRIVATE file page gets its copy now. */
    for (uint64_t pg = off / 4096; pg <= (off + len - 1) / 4096; pg++)
        mx_cow(w, m, (unsigned)pg);
    mx_check(w);
    if (mrnd(w, 3) == 0) { /* pinned pages stay where the device writes */
        uint64_t got;
        vms_kernel_reclaim(w->k, 1 + mrnd(w, 2000), &got);
    }
    static uint8_t buf[3 * 4096];
    for (size_t j = 0; j < len; j++)
        buf[j] = dev_writes ? (uint8_t)mrnd(w, 256) : 0xEE;
    vms_dma_result res =
        vms_dev_dma(w->dev, iova, buf, len, dev_writes ? VMS_ACC_WRITE : VMS_ACC_READ);
    CHECK(res.ok && res.done == len);
    w->dmas++;
    for (size_t j = 0; j < len && res.ok; j++) {
        uint8_t *b = mx_byte(w, m, off + j);
        if (dev_writes) {
            *b = buf[j];
        } else if (buf[j] != *b) {
            fprintf(stderr,
                    "mixed: op %lu: DMA read at %llx: byte %zu is %02x, the model says %02x\n",
                    w->ops, (unsigned long long)(ARENA + off), j, buf[j], *b);
            CHECK(false);
            break;
        }
    }
    CHECK_EQ(vms_dma_unmap(w->k, w->dd, iova, NULL), VMS_OK);
}

/* A shootdown probe: thread B of process i reads a page (its core now caches the
 * translation), thread A on another core unmaps it, write-protects it, takes every right
 * or drops its contents (DONTNEED), and B at once reads or writes it again: B's core keeps
 * running the same address space, so only the shootdown can stop B using its stale TLB
 * entry (a read of the freed or reused frame, a write through a read-only page). */
static void mx_probe(mx_world *w, unsigned i)
{
    mx_proc *p = &w->p[i];
    mx_mm *m = p->mm;
    if (p->ntask < 2)
        return;
    vms_task *ta = p->task[mrnd(w, p->ntask)], *tb = p->task[mrnd(w, p->ntask)];
    vms_task_info ia, ib;
    vms_task_get_info(ta, &ia);
    vms_task_get_info(tb, &ib);
    if (ia.core == ib.core)
        return;
    static unsigned cand[MX_PAGES];
    unsigned nc = mx_candidates(m, true, cand);
    if (!nc)
        return;
    unsigned pg = cand[mrnd(w, nc)];
    uint64_t va = ARENA + pg * UINT64_C(4096) + mrnd(w, 4096);
    uint8_t b = 0, was = 0;
    vms_access_info info;
    CHECK_EQ(vms_proc_access(w->k, tb, va, VMS_ACC_WRITE, &b, 1, &info, NULL), VMS_OK);
    CHECK_EQ(info.outcome, VMS_ACCESS_OK); /* now dirty and writable in B's TLB */
    mx_cow(w, m, pg);
    *mx_byte(w, m, va - ARENA) = b;
    unsigned how = (unsigned)mrnd(w, 4);
    vms_status st =
        how == 0   ? vms_sys_munmap(w->k, ta, va & ~UINT64_C(4095), 4096, NULL)
        : how == 1 ? vms_sys_mprotect(w->k, ta, va & ~UINT64_C(4095), 4096, VMS_PROT_READ, NULL)
        : how == 2 ? vms_sys_mprotect(w->k, ta, va & ~UINT64_C(4095), 4096, VMS_PROT_NONE, NULL)
                   : vms_sys_madvise(w->k, ta, va & ~UINT64_C(4095), 4096, VMS_MADV_DONTNEED, NULL);
    CHECK_EQ(st, VMS_OK);
    mx_pent *e = &m->pe[pg];
    if (how == 0)
        *e = (mx_pent){-1, MX_NONE, 0, 0};
    else if (how < 3)
        e->prot = (int8_t)(how == 1 ? VMS_PROT_READ : VMS_PROT_NONE);
    else if (e->kind == MX_ANON)
        memset(m->bytes + pg * UINT64_C(4096), 0, 4096);
    else if (e->kind == MX_FCOW)
        e->kind = MX_FPRIV;
    bool write = how == 1 || (how == 3 && mrnd(w, 2));
    bool ok = e->prot > 0 && (!write || (e->prot & VMS_PROT_WRITE));
    b = (uint8_t)mrnd(w, 256);
    was = b;
    CHECK_EQ(
        vms_proc_access(w->k, tb, va, write ? VMS_ACC_WRITE : VMS_ACC_READ, &b, 1, &info, NULL),
        VMS_OK);
    CHECK_EQ(info.outcome, ok ? VMS_ACCESS_OK : VMS_ACCESS_SEGV);
    w->probes++;
    if (info.outcome != VMS_ACCESS_OK) {
        w->segvs++;
        mx_drop(w, i);
        return;
    }
    if (write) {
        mx_cow(w, m, pg);
        *mx_byte(w, m, va - ARENA) = was;
    } else {
        CHECK_EQ(b, *mx_byte(w, m, va - ARENA));
    }
}

static void mx_step(mx_world *w)
{
    w->ops++;
    if (w->np == 0 || mrnd(w, 50) == 0) {
        mx_spawn(w);
        return;
    }
    unsigned i = (unsigned)mrnd(w, w->np);
    unsigned r = (unsigned)mrnd(w, 200);
    uint64_t got;
    if (r < 6)
        mx_fork(w, i);
    else if (r < 14)
        mx_thread(w, i);
    else if (r < 15)
        mx_thread_exit(w, i);
    else if (r < 16)
        mx_migrate(w, i);
    else if (r < 19)
        mx_drop(w, i);
    else if (r < 43)
        mx_mmap(w, i);
    else if (r < 53)
        mx_munmap(w, i);
    else if (r < 63)
        mx_mprotect(w, i);
    else if (r < 69)
        mx_dontneed(w, i);
    else if (r < 73)
        mx_advise(w, i);
    else if (r < 76)
        mx_msync(w, i);
    else if (r < 78)
        vms_kernel_reclaim(w->k, 1 + mrnd(w, 1500), &got);
    else if (r < 80)
        vms_kernel_khugepaged(w->k);
    else if (r < 90)
        mx_dma(w, i);
    else if (r < 104)
        mx_probe(w, i);
    else
        mx_access(w, i, r < 140);
}

static void run_mixed(uint64_t seed, unsigned nops)
{
    printf("mixed: seed %llu\n", (unsigned long long)seed);
    char dir[] = "/tmp/vmsim-mixed-XXXXXX";
    REQUIRE_VOID(mkdtemp(dir) != NULL);
    char path[64], wb[80];
    snprintf(path, sizeof path, "%s/file.bin", dir);
    snprintf(wb, sizeof wb, "%s/wb", dir);
    REQUIRE_VOID(mkdir(wb, 0700) == 0);
    mx_world w;
    memset(&w, 0, sizeof w);
    vms_rng_seed(&w.r, seed);
    w.obj[0].npages = w.obj[1].npages = MX_OPAGES;
    w.obj[0].bytes = malloc(MX_OPAGES * 4096);
    w.obj[1].bytes = calloc(MX_OPAGES, 4096);
    w.nobj = 2;
    for (unsigned j = 0; j < MX_OPAGES * 4096; j++)
        w.obj[0].bytes[j] = (uint8_t)mrnd(&w, 256);
    FILE *h = fopen(path, "wb");
    REQUIRE_VOID(h && fwrite(w.obj[0].bytes, 4096, MX_OPAGES, h) == MX_OPAGES && fclose(h) == 0);
    vms_machine_config mc;
    vms_machine_preset("skylake", &mc, NULL);
    mc.ram_bytes = UINT64_C(16) << 20;
    mc.ncores = MX_CORES;
    mc.seed = seed;
    vms_machine *m;
    REQUIRE_VOID(vms_machine_create(NULL, &mc, &m, NULL) == VMS_OK);
    vms_kernel_config kc;
    vms_kernel_config_default(&kc);
    kc.seed = seed;
    kc.pcid = seed % 2 == 0;
    kc.thp = seed % 3 ? VMS_THP_ALWAYS : VMS_THP_MADVISE;
    kc.thp_cow = seed % 4 < 2 ? VMS_THP_COW_COPY : VMS_THP_COW_SPLIT;
    kc.thp_swap = seed % 2 ? VMS_THP_SWAP_WHOLE : VMS_THP_SWAP_SPLIT;
    kc.swap_bytes = UINT64_C(96) << 20;
    kc.writeback_dir = wb;
    REQUIRE_VOID(vms_kernel_create(m, &kc, &w.k, NULL) == VMS_OK);
    vms_iommu_config ic;
    vms_iommu_config_default(&ic);
    vms_dev_config dc = {"mixed-dev", vms_bdf_make(0, 6, 0), 0};
    vms_iommu *io = NULL;
    REQUIRE_VOID(vms_iommu_create(m, &ic, &io, NULL) == VMS_OK &&
                 vms_dev_create(m, io, &dc, &w.dev, NULL) == VMS_OK);
    uint64_t free0 = vms_frames_nfree(vms_kernel_frames(w.k));
    REQUIRE_VOID(vms_dma_attach(w.k, w.dev, VMS_DMA_TRANSLATE, &w.dd, NULL) == VMS_OK);
    REQUIRE_VOID(vms_file_open(w.k, path, &w.file, NULL) == VMS_OK &&
                 vms_shm_open(w.k, "mixed", MX_OPAGES * 4096, &w.shm, NULL) == VMS_OK);
    for (unsigned n = 0; n < nops; n++) {
        mx_step(&w);
        if (!mx_check(&w))
            break;
    }
    const vms_kernel_stats *ks = vms_kernel_get_stats(w.k);
    printf("mixed: %lu ops, %lu reads, %lu segvs, %lu DMAs, %lu migrations, %lu file COWs, %lu "
           "probes; forks "
           "%llu, swap out %llu in %llu, thp %llu split %llu collapse %llu swap out whole %llu, "
           "major faults %llu\n",
           w.ops, w.reads, w.segvs, w.dmas, w.migrations, w.cows, w.probes,
           (unsigned long long)ks->forks, (unsigned long long)ks->pswpout,
           (unsigned long long)ks->pswpin, (unsigned long long)ks->thp_anon_fault_alloc,
           (unsigned long long)ks->thp_split_page, (unsigned long long)ks->thp_collapse_alloc,
           (unsigned long long)ks->thp_swpout, (unsigned long long)ks->pgmajfault);
    /* Each part of the mix happened (a sequence that never swapped tests nothing of swap):
     * in each of the default run's sequences; a soak's further seeds may miss a part in
     * one sequence (counted; main checks that most had them all). */
    bool all = w.dmas > 0 && w.cows > 0 && w.probes > 0 && ks->pswpout > 0 && ks->pswpin > 0 &&
               ks->thp_anon_fault_alloc > 0 && ks->thp_split_page > 0 && w.migrations > 0;
    if (g_mixed_strict)
        CHECK(all);
    g_mixed_runs++;
    g_mixed_full += all;
    while (w.np)
        mx_drop(&w, 0);
    vms_file_close(w.k, w.file);
    vms_shm_unlink(w.k, "mixed", NULL);
    vms_file_close(w.k, w.shm);
    mx_check(&w);
    vms_dma_detach(w.k, w.dd);
    CHECK_EQ(vms_frames_nfree(vms_kernel_frames(w.k)), free0);
    /* The file's shared writes reached the written-back copy (or there were none). */
    static uint8_t back[MX_OPAGES * 4096];
    char copy[96];
    snprintf(copy, sizeof copy, "%s/file.bin", wb);
    h = fopen(copy, "rb");
    if (!h)
        h = fopen(path, "rb");
    CHECK(h && fread(back, 4096, MX_OPAGES, h) == MX_OPAGES);
    if (h)
        fclose(h);
    CHECK(memcmp(back, w.obj[0].bytes, sizeof back) == 0);
    vms_kernel_destroy(w.k);
    vms_dev_destroy(w.dev);
    vms_iommu_destroy(io);
    vms_machine_destroy(m);
    for (unsigned j = 0; j < w.nobj; j++)
        free(w.obj[j].bytes);
    unlink(copy);
    unlink(path);
    rmdir(wb);
    rmdir(dir);
}

static const char *const thp_presets[] = {"skylake", "sifive-u74", "cortex-a76"};

/* THP sequence number a (its preset, seed, PCIDs, THP mode and thp.swap mode follow from
 * a). */
static void run_thp_seq(unsigned a)
{
    run_thp(thp_presets[a % 3], th_seed * 1000003u + 991 + a, a % 2 == 0, 1500,
            a % 2 ? VMS_THP_MADVISE : VMS_THP_ALWAYS, true,
            (a / 2) % 2 ? VMS_THP_SWAP_WHOLE : VMS_THP_SWAP_SPLIT, false);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "kernel_diff");
    /* VMS_KERNEL_THP_SEQ=A: only THP sequence A, to replay one a soak found failing (the
     * (A+1)th "seq … (thp)" line of its output). */
    const char *one = getenv("VMS_KERNEL_THP_SEQ");
    if (one) {
        run_thp_seq((unsigned)strtoul(one, NULL, 0));
        return th_finish();
    }
    /* Everything at once: swap, files, shared memory, huge pages, threads, DMA. Alone with
     * VMS_KERNEL_MIXED_ONLY=1 (`make soak` runs it so a second time, for its own time). */
    bool mixed_only = getenv("VMS_KERNEL_MIXED_ONLY") != NULL;
    for (unsigned a = 0; mixed_only && th_soak_more("VMS_KERNEL_MIXED_SOAK", 2, a); a++) {
        g_mixed_strict = a < 2;
        run_mixed(th_seed * 1000003u + 5003 + a, 2500);
    }
    if (mixed_only) {
        CHECK(g_mixed_full * 2 > g_mixed_runs); /* most had every part */
        return th_finish();
    }
    unsigned s;
    for (s = 0; th_soak_more("VMS_KERNEL_SOAK", 12, s); s++)
        run("skylake", th_seed * 1000003u + s, s % 2 == 0, 2000);
    /* The same kernel on an AArch64 machine (TTBR0/TTBR1_EL1, ASIDs, TLBI). */
    for (unsigned a = 0; a < (s + 2) / 3; a++)
        run("cortex-a76", th_seed * 1000003u + 77 + a, a % 2 == 0, 2000);
    /* THP sequences: always and madvise, on x86-64, RISC-V Sv39 and AArch64, thp.swap
     * split and whole in turn; then under memory pressure, thp = always, each mode. */
    for (unsigned a = 0; a < (s + 3) / 4 + 2; a++)
        run_thp_seq(a);
    for (unsigned a = 0; a < 2 * ((s + 11) / 12); a++) {
        g_pressure_strict = a < 2;
        run_thp(thp_presets[a / 2 % 3], th_seed * 1000003u + 1777 + a, a % 2 == 0, 1500,
                VMS_THP_ALWAYS, true, a % 2 ? VMS_THP_SWAP_WHOLE : VMS_THP_SWAP_SPLIT, true);
    }
    CHECK(g_pressured > 0);
    fprintf(stderr,
            "thp sequences: %llu huge faults, %llu splits (%llu PMD splits, %llu deferred), %llu "
            "collapses, %llu swapped out whole (%llu fallbacks, %llu back as 4 KiB)\n",
            (unsigned long long)g_thp_faults, (unsigned long long)g_thp_splits,
            (unsigned long long)g_thp_split_pmds, (unsigned long long)g_thp_deferred,
            (unsigned long long)g_thp_collapses, (unsigned long long)g_thp_swpout,
            (unsigned long long)g_thp_fallback, (unsigned long long)g_thp_swpin_4k);
    CHECK(g_thp_faults > 0 && g_thp_splits > 0 && g_thp_collapses > 0);
    CHECK(g_thp_split_pmds > 0 && g_thp_deferred > 0 && g_thp_swpout > 0 && g_thp_swpin_4k > 0);
    for (unsigned a = 0; th_soak_more("VMS_KERNEL_MIXED_SOAK", 2, a); a++) {
        g_mixed_strict = a < 2;
        run_mixed(th_seed * 1000003u + 5003 + a, 2500);
    }
    CHECK(g_mixed_full * 2 > g_mixed_runs); /* most had every part */
    return th_finish();
}
