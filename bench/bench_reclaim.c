/*
 * bench_reclaim.c — the page-replacement policies compared THROUGH THE KERNEL: one
 * process writes 8 bytes per reference into anonymous memory larger than RAM, on a
 * 16 MiB machine (4096 frames) with 128 MiB of SSD swap, so every miss is a real page
 * fault, a swap-in and (usually) a swap-out chosen by the policy through the rmap and A
 * bits. Patterns (R = 4096 pages, the size of RAM):
 *
 *   loop     a cyclic scan over 1.25 R pages
 *   zipf     Zipf (s = 0.9) over 4 R pages, page ids scattered
 *   phases   50 working-set phases of 0.6 R pages placed at random in 4 R pages, with
 *            10% of references anywhere
 *
 * Reported per (pattern, policy): page faults, major faults, swap-outs and swap-ins,
 * simulated cycles of core 0 (user accesses + fault handling + swap I/O) in millions,
 * the thrashing measure (fault cycles per thousand cycles) and host seconds. OPT gets
 * the future from the reference string (the next-use oracle of swap.h); kswapd's work
 * is not charged to core 0 (it runs on "another CPU"). Deterministic (seed 1).
 * Usage: bench_reclaim [--scale F] (references per pattern = 300000 x F)
 */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "vmsim/config.h"
#include "vmsim/mman.h"
#include "vmsim/policy.h"
#include "vmsim/rng.h"
#include "vmsim/swap.h"

#define R    4096u
#define BASE UINT64_C(0x10000000)

/* The patterns (bench_util.h): a loop over R + R / 4, Zipf(0.9) over 4 * R,
 * 50 working-set phases of R * 3 / 5 pages with noise over 4 * R. */
static void gen_loop(uint64_t *r, size_t n, vms_rng *g)
{
    (void)g;
    bench_gen_loop(r, n, R + R / 4);
}

static void gen_zipf(uint64_t *r, size_t n, vms_rng *g)
{
    if (!bench_gen_zipf(r, n, 4 * R, g))
        exit(1);
}

static void gen_phases(uint64_t *r, size_t n, vms_rng *g)
{
    bench_gen_phases(r, n, 4 * R, R * 3 / 5, 50, g);
}

/* OPT's oracle: the next position of each page, kept current as the string is played. */
typedef struct future {
    const size_t *next; /* next[i]: the next reference of refs[i]'s page, or SIZE_MAX */
    size_t *nextpos;    /* per page: its next reference from now on */
} future;

static uint64_t next_use(void *ud, int pid, uint64_t va)
{
    future *f = ud;
    (void)pid;
    size_t p = f->nextpos[(va - BASE) >> 12];
    return p == SIZE_MAX ? UINT64_MAX : (uint64_t)p;
}

static void bench(const char *pattern, const char *policy, const uint64_t *refs, size_t n,
                  future *fut, uint64_t npages)
{
    vms_config c;
    vms_err err = {0};
    if (vms_config_init(&c, NULL, &err) != VMS_OK ||
        vms_config_set(&c, "ram", "16M", "bench", &err) != VMS_OK ||
        vms_config_set(&c, "swap", "128M", "bench", &err) != VMS_OK ||
        vms_config_set(&c, "policy", policy, "bench", &err) != VMS_OK ||
        vms_config_set(&c, "seed", "1", "bench", &err) != VMS_OK) {
        fprintf(stderr, "bench_reclaim: %s\n", err.msg);
        exit(1);
    }
    vms_kernel_config kc = vms_config_kernel(&c);
    kc.next_use = next_use;
    kc.next_use_ud = fut;
    vms_machine *m;
    vms_kernel *k;
    vms_task *t;
    uint64_t va;
    if (vms_machine_create(NULL, &c.machine, &m, &err) != VMS_OK ||
        vms_kernel_create(m, &kc, &k, &err) != VMS_OK ||
        vms_proc_spawn(k, "bench", 0, &t, &err) != VMS_OK ||
        vms_sys_mmap(k, t, BASE, npages << 12, VMS_PROT_READ | VMS_PROT_WRITE,
                     VMS_MAP_PRIVATE | VMS_MAP_ANONYMOUS | VMS_MAP_FIXED, NULL, 0, &va,
                     &err) != VMS_OK) {
        fprintf(stderr, "bench_reclaim: %s\n", err.msg);
        exit(1);
    }
    for (uint64_t p = 0; p < npages; p++)
        fut->nextpos[p] = SIZE_MAX;
    for (size_t i = n; i-- > 0;) /* first references */
        fut->nextpos[refs[i]] = i;
    vms_core *core = vms_machine_core(m, 0);
    uint64_t c0 = vms_core_cycles(core);
    double t0 = bench_now();
    for (size_t i = 0; i < n; i++) {
        uint64_t a = BASE + (refs[i] << 12), v = i;
        fut->nextpos[refs[i]] = fut->next[i];
        if (vms_proc_write(k, t, a, &v, 8) != VMS_ACCESS_OK) {
            fprintf(stderr, "bench_reclaim: %s %s: the access at %zu failed\n", pattern, policy, i);
            exit(1);
        }
    }
    double secs = bench_now() - t0;
    const vms_kernel_stats *s = vms_kernel_get_stats(k);
    uint64_t all = s->fault_cycles + s->user_cycles;
    printf("%-7s %-8s %8zu %8llu %8llu %8llu %8llu %9.1f %6llu %7.2f\n", pattern, policy, n,
           (unsigned long long)s->pgfault, (unsigned long long)s->pgmajfault,
           (unsigned long long)s->pswpout, (unsigned long long)s->pswpin,
           (double)(vms_core_cycles(core) - c0) / 1e6,
           (unsigned long long)(all ? s->fault_cycles * 1000 / all : 0), secs);
    fflush(stdout);
    vms_kernel_destroy(k);
    vms_machine_destroy(m);
}

int main(int argc, char **argv)
{
    double scale = 1.0;
    for (int i = 1; i + 1 < argc; i += 2)
        if (!strcmp(argv[i], "--scale"))
            scale = atof(argv[i + 1]);
    size_t n = (size_t)(300000 * scale);
    if (n == 0) {
        fprintf(stderr, "usage: bench_reclaim [--scale F]\n");
        return 2;
    }
    uint64_t *refs = malloc(n * sizeof *refs);
    size_t *next = malloc(n * sizeof *next), *nextpos = malloc(4 * R * sizeof *nextpos);
    if (!refs || !next || !nextpos)
        return 1;
    static const struct {
        const char *name;
        void (*gen)(uint64_t *, size_t, vms_rng *);
        uint64_t npages;
    } patterns[] = {
        {"loop", gen_loop, R + R / 4}, {"zipf", gen_zipf, 4 * R}, {"phases", gen_phases, 4 * R}};
    printf("%-7s %-8s %8s %8s %8s %8s %8s %9s %6s %7s\n", "pattern", "policy", "refs", "faults",
           "major", "swapout", "swapin", "Mcycles", "pag‰", "host_s");
    for (size_t p = 0; p < sizeof patterns / sizeof patterns[0]; p++) {
        vms_rng g;
        vms_rng_seed(&g, 1);
        patterns[p].gen(refs, n, &g);
        for (uint64_t q = 0; q < 4 * R; q++)
            nextpos[q] = SIZE_MAX;
        for (size_t i = n; i-- > 0;) {
            next[i] = nextpos[refs[i]];
            nextpos[refs[i]] = i;
        }
        future fut = {next, nextpos};
        for (unsigned i = 0; i < vms_page_policy_count(); i++)
            bench(patterns[p].name, vms_page_policy_get(i)->name, refs, n, &fut,
                  patterns[p].npages);
    }
    free(refs);
    free(next);
    free(nextpos);
    return 0;
}
