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
 * VMS_KERNEL_SOAK=N runs N sequences instead of the default.
 *
 * THP sequences (docs/HUGEPAGES.md): a 6 MiB arena (three 2 MiB-aligned ranges), thp =
 * always or madvise, ranges up to 700 pages (whole huge pages and parts of them), plus
 * MADV_HUGEPAGE / NOHUGEPAGE, reclaim into swap (which splits huge pages) and khugepaged
 * runs: promotion, collapse, split, COW of huge pages and swap must all keep every byte.
 */
#include <stdio.h>

#include "harness.h"
#include "vmsim/frames.h"
#include "vmsim/mman.h"
#include "vmsim/rng.h"
#include "vmsim/swap.h"

#define ARENA    UINT64_C(0x10000000)
#define MAXPAGES 1536u
#define NPAGES   g_npages
static unsigned g_npages = 40; /* 1536 in THP sequences */
static uint64_t g_thp_faults, g_thp_splits, g_thp_collapses;
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
    bool a64; /* an AArch64 machine: fault codes are ESR_EL1 values */
    bool thp; /* a THP sequence */
    bool rv;  /* a RISC-V machine: fault codes are scause values */
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

static void step_thp(world *w, unsigned i, unsigned r)
{
    uint64_t got;
    if (r < 39)
        op_hugepage(w, i);
    else if (r < 40)
        vms_kernel_reclaim(w->k, 1 + rnd(w, 600), &got); /* splits, swaps */
    else
        vms_kernel_khugepaged(w->k);
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

static void run_thp(const char *preset, uint64_t seed, bool pcid, unsigned nops, vms_thp_mode thp,
                    bool seq)
{
    vms_machine_config mc;
    vms_machine_preset(preset, &mc, NULL);
    mc.ram_bytes = UINT64_C(128) << 20;
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
    g_npages = seq ? MAXPAGES : 40;
    world w;
    memset(&w, 0, sizeof w);
    w.thp = seq;
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
    const vms_kernel_stats *ks = vms_kernel_get_stats(w.k);
    fprintf(stderr,
            "seq %s%s: %lu ops, %lu reads, %lu segvs, forks %llu cow %llu; thp %llu, split %llu, "
            "collapse %llu, swap out %llu in %llu\n",
            preset, w.thp ? " (thp)" : "", w.ops, w.reads, w.segvs, (unsigned long long)ks->forks,
            (unsigned long long)ks->cow_copy, (unsigned long long)ks->thp_anon_fault_alloc,
            (unsigned long long)ks->thp_split_page, (unsigned long long)ks->thp_collapse_alloc,
            (unsigned long long)ks->pswpout, (unsigned long long)ks->pswpin);
    if (w.thp) { /* what the THP sequences did, together (checked in main) */
        g_thp_faults += ks->thp_anon_fault_alloc;
        g_thp_splits += ks->thp_split_page;
        g_thp_collapses += ks->thp_collapse_alloc;
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
    run_thp(preset, seed, pcid, nops, VMS_THP_MADVISE, false);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "kernel_diff");
    unsigned s;
    for (s = 0; th_soak_more("VMS_KERNEL_SOAK", 12, s); s++)
        run("skylake", th_seed * 1000003u + s, s % 2 == 0, 2000);
    /* The same kernel on an AArch64 machine (TTBR0/TTBR1_EL1, ASIDs, TLBI). */
    for (unsigned a = 0; a < (s + 2) / 3; a++)
        run("cortex-a76", th_seed * 1000003u + 77 + a, a % 2 == 0, 2000);
    /* THP sequences: always and madvise, on x86-64, RISC-V Sv39 and AArch64. */
    static const char *const thp_presets[] = {"skylake", "sifive-u74", "cortex-a76"};
    for (unsigned a = 0; a < (s + 3) / 4 + 2; a++)
        run_thp(thp_presets[a % 3], th_seed * 1000003u + 991 + a, a % 2 == 0, 1500,
                a % 2 ? VMS_THP_MADVISE : VMS_THP_ALWAYS, true);
    fprintf(stderr, "thp sequences: %llu huge faults, %llu splits, %llu collapses\n",
            (unsigned long long)g_thp_faults, (unsigned long long)g_thp_splits,
            (unsigned long long)g_thp_collapses);
    CHECK(g_thp_faults > 0 && g_thp_splits > 0 && g_thp_collapses > 0);
    return th_finish();
}
