/*
 * bench_shootdown.c — what TLB shootdowns cost as cores grow (docs/SMP.md,
 * docs/PERFORMANCE.md): simulated cycles, not host time, are the result.
 *
 * Workloads (each thread pinned to its own core; cores 1, 2, 4, … up to --max-cores):
 *   munmap    the shape of will-it-scale tlb_flush2_threads: threads of one process
 *             each loop mmap N pages, write every page, munmap them (N = 1, 16, 64)
 *   mprotect  each thread writes its N pages, mprotects them read-only, reads one,
 *             mprotects them read-write again (two shootdowns per operation)
 *   fork      each thread of the process loops fork; the child execs, writes 4 pages
 *             and exits (fork write-protects the parent: a full flush of its mm)
 * for kernel.shootdown = ipi and the architecture's other protocol — broadcast
 * (x86-64 INVLPGB + TLBSYNC, AArch64 TLBI … IS + DSB ISH) or RISC-V's SBI remote fence
 * (sbi) — with mmu_gather batching on and off (munmap/mprotect only: off shoots down
 * every page separately). --arch x86_64 (default), aarch64, riscv64 or all picks the
 * architecture: the skylake preset with the page-table format switched, as `--set
 * arch=` does, so only the architecture and its protocol differ between rows. The
 * threads are interleaved by simulated time (vms_sched_next). One CSV line per run on
 * stdout:
 *
 *   arch,workload,pages,mode,batch,cores,ops,cycles_per_op,shootdown_frac,ipis_per_op,
 *   bcast_per_op,sbi_per_op,host_s
 *
 * (bcast_per_op: broadcast instructions per operation, INVLPGB or TLBI … IS; sbi_per_op:
 * SBI remote-fence calls.)
 * cycles_per_op is the CPU time of all cores (their cycle counters) per operation;
 * shootdown_frac the share of it in shootdowns (initiators' sends, local flushes and
 * waits, targets' IPI handlers — kernel stat tlb_shootdown_cycles). Sockets: one per 64
 * cores. Deterministic. Usage: bench_shootdown [--max-cores N] [--ops N] [--arch A]
 * (N operations per run, at least 2 per thread; default 256).
 */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "vmsim/format.h"
#include "vmsim/kernel.h"
#include "vmsim/mman.h"
#include "vmsim/proc.h"

#define RW  (VMS_PROT_READ | VMS_PROT_WRITE)
#define ANP (VMS_MAP_PRIVATE | VMS_MAP_ANONYMOUS)

typedef enum wl { WL_MUNMAP, WL_MPROTECT, WL_FORK } wl;
static const char *const wl_name[] = {"munmap", "mprotect", "fork"};

typedef struct thr {
    vms_task *t, *child;
    uint64_t va;
    unsigned state, done;
} thr;

static void die(const char *what, const vms_err *err)
{
    fprintf(stderr, "bench_shootdown: %s: %s\n", what, err ? err->msg : "failed");
    exit(1);
}

/* One step of thread h's loop; returns true when it completed an operation. */
static bool step(vms_kernel *k, thr *h, wl w, unsigned pages)
{
    vms_err err = {0};
    char b = 'x';
    if (w == WL_FORK) {
        if (h->state == 0) {
            if (vms_proc_fork(k, h->t, &h->child, &err) != VMS_OK)
                die("fork", &err);
            h->state = 1;
        } else if (h->state == 1) {
            if (vms_proc_exec(k, h->child, "child", &err) != VMS_OK)
                die("exec", &err);
            if (vms_sys_mmap(k, h->child, 0, 4 * 4096, RW, ANP, NULL, 0, &h->va, &err) != VMS_OK)
                die("mmap", &err);
            h->state = 2;
        } else if (h->state < 6) {
            if (vms_proc_write(k, h->child, h->va + (h->state - 2) * 4096, &b, 1) != VMS_ACCESS_OK)
                die("child write", NULL);
            h->state++;
        } else {
            vms_proc_exit(k, h->child);
            h->child = NULL;
            h->state = 0;
            return true;
        }
        return false;
    }
    if (h->state == 0) { /* mmap (munmap loop: every time; mprotect loop: once) */
        if (w == WL_MPROTECT && h->va) {
            h->state = 1;
        } else {
            if (vms_sys_mmap(k, h->t, 0, (uint64_t)pages * 4096, RW, ANP, NULL, 0, &h->va, &err) !=
                VMS_OK)
                die("mmap", &err);
            h->state = 1;
            return false;
        }
    }
    if (h->state <= pages) {
        if (vms_proc_write(k, h->t, h->va + (uint64_t)(h->state - 1) * 4096, &b, 1) !=
            VMS_ACCESS_OK)
            die("write", NULL);
        h->state++;
        return false;
    }
    uint64_t len = (uint64_t)pages * 4096;
    if (w == WL_MUNMAP) {
        if (vms_sys_munmap(k, h->t, h->va, len, &err) != VMS_OK)
            die("munmap", &err);
        h->state = 0;
        return true;
    }
    if (h->state == pages + 1) {
        if (vms_sys_mprotect(k, h->t, h->va, len, VMS_PROT_READ, &err) != VMS_OK)
            die("mprotect", &err);
        h->state++;
        return false;
    }
    if (h->state == pages + 2) {
        if (vms_proc_read(k, h->t, h->va, &b, 1) != VMS_ACCESS_OK)
            die("read", NULL);
        h->state++;
        return false;
    }
    if (vms_sys_mprotect(k, h->t, h->va, len, RW, &err) != VMS_OK)
        die("mprotect", &err);
    h->state = 1;
    return true;
}

static const char *const mode_name[] = {"auto", "ipi", "broadcast", "sbi"};

static void run(const char *arch, wl w, unsigned pages, vms_shootdown_mode mode, bool batch,
                unsigned cores, unsigned ops_target)
{
    double t0 = bench_now();
    vms_machine_config mc;
    vms_err err = {0};
    vms_machine_preset("skylake", &mc, NULL);
    if (strcmp(arch, "x86_64") != 0) {
        const vms_pt_format *f = vms_format_for(arch, mc.levels);
        mc.fmt = f;
        mc.levels = f->levels;
    }
    mc.ram_bytes = UINT64_C(512) << 20;
    mc.ncores = cores;
    mc.sockets = cores >= 64 ? cores / 64 : 1;
    mc.seed = 1;
    vms_kernel_config kc;
    vms_kernel_config_default(&kc);
    kc.seed = 1;
    kc.shootdown = mode;
    kc.tlb_batch = batch;
    vms_machine *m;
    vms_kernel *k;
    if (vms_machine_create(NULL, &mc, &m, &err) != VMS_OK)
        die("machine", &err);
    if (vms_kernel_create(m, &kc, &k, &err) != VMS_OK)
        die("kernel", &err);
    thr *h = calloc(cores, sizeof *h);
    if (!h)
        die("out of memory", NULL);
    if (vms_proc_spawn(k, "bench", 0, &h[0].t, &err) != VMS_OK)
        die("spawn", &err);
    for (unsigned c = 1; c < cores; c++)
        if (vms_proc_clone_thread(k, h[0].t, c, &h[c].t, &err) != VMS_OK)
            die("clone", &err);
    for (unsigned c = 0; c < cores; c++) {
        uint64_t mask[VMS_MAX_CORES / 64] = {0};
        mask[c / 64] = UINT64_C(1) << (c % 64);
        if (vms_task_set_affinity(k, h[c].t, mask, VMS_MAX_CORES, &err) != VMS_OK)
            die("affinity", &err);
    }
    /* Warm up one operation per thread, then measure. */
    unsigned per = (ops_target + cores - 1) / cores;
    per = per < 2 ? 2 : per;
    unsigned warm = 0, ops = 0;
    bool measuring = false;
    while (ops < per * cores) {
        vms_task *t = vms_sched_next(k);
        if (!t)
            break;
        /* the task is a bench thread or a forked child (which runs on its parent's core) */
        thr *x = NULL;
        for (unsigned c = 0; c < cores && !x; c++)
            if (h[c].t == t || h[c].child == t)
                x = &h[c];
        if (!x)
            die("unknown task", NULL);
        if (step(k, x, w, pages)) {
            if (!measuring && ++warm == cores) {
                measuring = true;
                vms_kernel_reset_stats(k);
                vms_machine_reset_stats(m);
            } else if (measuring) {
                ops++;
            }
        }
    }
    uint64_t cycles = 0;
    for (unsigned c = 0; c < cores; c++)
        cycles += vms_core_cycles(vms_machine_core(m, c));
    const vms_kernel_stats *s = vms_kernel_get_stats(k);
    double n = ops ? (double)ops : 1;
    printf("%s,%s,%u,%s,%s,%u,%u,%.0f,%.4f,%.2f,%.2f,%.2f,%.2f\n", arch, wl_name[w], pages,
           mode_name[mode], batch ? "on" : "off", cores, ops, (double)cycles / n,
           cycles ? (double)s->tlb_shootdown_cycles / (double)cycles : 0.0,
           (double)s->nr_tlb_remote_flush_received / n,
           (double)(s->tlb_invlpgb + s->tlb_tlbi_is) / n, (double)s->tlb_sbi_rfence / n,
           bench_now() - t0);
    fflush(stdout);
    vms_kernel_destroy(k);
    vms_machine_destroy(m);
    free(h);
}

/* The whole grid on one architecture: IPIs, then its other protocol. */
static void grid(const char *arch, unsigned max_cores, unsigned ops)
{
    static const unsigned npages[] = {1, 16, 64};
    vms_shootdown_mode modes[] = {VMS_SHOOTDOWN_IPI, strcmp(arch, "riscv64") == 0
                                                         ? VMS_SHOOTDOWN_SBI
                                                         : VMS_SHOOTDOWN_BROADCAST};
    for (unsigned w = WL_MUNMAP; w <= WL_MPROTECT; w++)
        for (unsigned p = 0; p < 3; p++)
            for (unsigned md = 0; md < 2; md++)
                for (int batch = 1; batch >= 0; batch--) {
                    if (!batch && npages[p] == 1)
                        continue; /* one page: batching changes nothing */
                    for (unsigned c = 1; c <= max_cores; c *= 2)
                        run(arch, (wl)w, npages[p], modes[md], batch, c, ops);
                }
    for (unsigned md = 0; md < 2; md++)
        for (unsigned c = 1; c <= max_cores; c *= 2)
            run(arch, WL_FORK, 0, modes[md], true, c, ops);
}

int main(int argc, char **argv)
{
    unsigned max_cores = 256, ops = 256;
    const char *arch = "x86_64";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--max-cores"))
            max_cores = (unsigned)strtoul(argv[i + 1], NULL, 0);
        else if (!strcmp(argv[i], "--ops"))
            ops = (unsigned)strtoul(argv[i + 1], NULL, 0);
        else if (!strcmp(argv[i], "--arch"))
            arch = argv[i + 1];
        else {
            fprintf(stderr, "usage: bench_shootdown [--max-cores N] [--ops N] [--arch "
                            "x86_64|aarch64|riscv64|all]\n");
            return 2;
        }
    }
    static const char *const archs[] = {"x86_64", "aarch64", "riscv64"};
    bool all = !strcmp(arch, "all"), known = all;
    for (unsigned a = 0; a < 3; a++)
        known |= !strcmp(arch, archs[a]);
    if (max_cores < 1 || max_cores > VMS_MAX_CORES || ops < 1 || !known) {
        fprintf(stderr,
                "bench_shootdown: --max-cores 1 … %u, --ops >= 1, --arch x86_64, aarch64, "
                "riscv64 or all\n",
                VMS_MAX_CORES);
        return 2;
    }
    printf("arch,workload,pages,mode,batch,cores,ops,cycles_per_op,shootdown_frac,ipis_per_op,"
           "bcast_per_op,sbi_per_op,host_s\n");
    for (unsigned a = 0; a < 3; a++)
        if (all || !strcmp(arch, archs[a]))
            grid(archs[a], max_cores, ops);
    return 0;
}
