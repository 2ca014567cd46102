/*
 * test_smp.c — many cores: the scheduler (sched.c), lazy TLB and flush generations,
 * IPI and broadcast shootdowns in time, batching and deferred flushes (smp.c), and the
 * INVLPGB/TLBSYNC hardware operations (cpu.c).
 *
 * The seeded concurrency test drives random threads of several processes on many cores
 * through vms_sched_next (mmap, munmap, mprotect, fork, exit, clone, migration,
 * affinity, reads and writes interleaved at the grain of one operation) and checks,
 * after every operation and inside every shootdown's completion hook, that no core
 * running user code holds a TLB entry reachable under its current PCID that disagrees
 * with the page tables in RAM (read with vms_pt_lookup: present, same frame, no wider
 * rights), and that every byte read equals what the model wrote — so a read through a
 * stale entry into a freed or reused frame is caught. VMS_SMP_SOAK=N runs N times more
 * steps and up to 256 cores.
 */
#include <stdlib.h>

#include "harness.h"
#include "vmsim/arch/riscv64.h"
#include "vmsim/format.h"
#include "vmsim/frames.h"
#include "vmsim/kernel.h"
#include "vmsim/mman.h"
#include "vmsim/proc.h"
#include "vmsim/pt.h"
#include "vmsim/rng.h"

typedef struct fx {
    vms_machine *m;
    vms_kernel *k;
    uint64_t free0;
} fx;

/* The architecture fx_make builds (as `--set arch=`; the concurrency test runs each). */
static const char *fx_arch = "x86_64";

static bool fx_make(fx *f, unsigned ncores, unsigned sockets, const vms_kernel_config *kc)
{
    memset(f, 0, sizeof *f);
    vms_machine_config mc;
    vms_err err = {0};
    vms_machine_preset("skylake", &mc, NULL);
    if (strcmp(fx_arch, "x86_64") != 0) {
        const vms_pt_format *af = vms_format_for(fx_arch, mc.levels);
        mc.fmt = af;
        mc.levels = af->levels;
    }
    mc.ram_bytes = UINT64_C(64) << 20;
    mc.ncores = ncores;
    mc.sockets = sockets;
    mc.seed = th_seed;
    vms_kernel_config def;
    if (!kc) {
        vms_kernel_config_default(&def);
        def.seed = th_seed;
        kc = &def;
    }
    if (vms_machine_create(NULL, &mc, &f->m, &err) != VMS_OK ||
        vms_kernel_create(f->m, kc, &f->k, &err) != VMS_OK) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return false;
    }
    f->free0 = vms_frames_nfree(vms_kernel_frames(f->k));
    return true;
}

static void fx_done(fx *f)
{
    vms_err err = {0};
    vms_status st = vms_kernel_check(f->k, &err);
    if (st != VMS_OK)
        fprintf(stderr, "kernel check: %s\n", err.msg);
    CHECK_EQ(st, VMS_OK);
    while (vms_proc_count(f->k))
        vms_proc_exit(f->k, vms_proc_at(f->k, 0));
    CHECK_EQ(vms_frames_nfree(vms_kernel_frames(f->k)), f->free0);
    vms_kernel_destroy(f->k);
    vms_machine_destroy(f->m);
}

static vms_kernel_config kcfg(vms_shootdown_mode mode)
{
    vms_kernel_config kc;
    vms_kernel_config_default(&kc);
    kc.seed = th_seed;
    kc.shootdown = mode;
    return kc;
}

#define RW  (VMS_PROT_READ | VMS_PROT_WRITE)
#define ANP (VMS_MAP_PRIVATE | VMS_MAP_ANONYMOUS)

static uint64_t map(fx *f, vms_task *t, uint64_t pages, unsigned prot)
{
    uint64_t va = 0;
    vms_err err = {0};
    vms_status st = vms_sys_mmap(f->k, t, 0, pages * 4096, prot, ANP, NULL, 0, &va, &err);
    if (st != VMS_OK)
        fprintf(stderr, "mmap: %s\n", err.msg);
    CHECK_EQ(st, VMS_OK);
    return va;
}

static bool tlb_has(fx *f, unsigned core, uint16_t pcid, uint64_t va)
{
    vms_xlate x;
    vms_core *c = vms_machine_core(f->m, core);
    for (unsigned l = 0; l < VMS_TLB_NLEVELS; l++) {
        vms_tlb *t = vms_core_tlb(c, (vms_tlb_level)l);
        if (t && vms_tlb_probe(t, pcid, va, &x))
            return true;
    }
    return false;
}

static uint16_t pcid_of(vms_task *t)
{
    vms_task_info ti;
    vms_task_get_info(t, &ti);
    return ti.pcid;
}

/* ---- the TLB-against-page-tables check (public inspection API only) ---------------- */

typedef struct stale_report {
    unsigned violations;
    char first[200];
} stale_report;

/* The root table and the context tag (PCID, ASID) a core's registers name. */
static void core_view(fx *f, vms_core *core, uint64_t *root, vms_ctx *ctx)
{
    const vms_regs *r = vms_core_regs(core);
    const char *arch = vms_machine_format(f->m)->arch;
    if (strcmp(arch, "aarch64") == 0) {
        *root = r->ttbr0_el1 & UINT64_C(0x0000FFFFFFFFF000);
        *ctx = r->ttbr0_el1 >> 48;
    } else if (strcmp(arch, "riscv64") == 0) {
        *root = vms_rv_satp_root(r->satp);
        *ctx = vms_rv_satp_asid(r->satp);
    } else {
        *root = vms_regs_root(r);
        *ctx = vms_regs_pcid(r);
    }
}

/* Every entry a core running user code could hit under its current PCID (ASID) must
 * agree with the tables its CR3 (TTBR0_EL1, satp) names, read through the machine's
 * format. Idle (lazy) cores run no user code: they are checked once they switch back. */
static void check_tlbs_range(fx *f, uint64_t lo, uint64_t hi, stale_report *rep)
{
    for (unsigned c = 0; c < vms_machine_ncores(f->m); c++) {
        vms_sched_core_info si;
        vms_sched_get_core(f->k, c, &si);
        if (si.nr_running == 0 || si.lazy || si.loaded_pid == 0)
            continue;
        vms_core *core = vms_machine_core(f->m, c);
        const vms_pt_format *fmt = vms_machine_format(f->m);
        uint64_t root;
        vms_ctx pcid;
        core_view(f, core, &root, &pcid);
        if (!strcmp(fmt->arch, "x86_64"))
            fmt = vms_format_x86_64(vms_regs_levels(vms_core_regs(core)));
        vms_pt pt = {vms_machine_bus(f->m), fmt, fmt->levels, root, {0}};
        for (unsigned l = 0; l < VMS_TLB_NLEVELS; l++) {
            vms_tlb *t = vms_core_tlb(core, (vms_tlb_level)l);
            vms_tlb_entry_info e;
            for (unsigned i = 0; t && vms_tlb_entry(t, i, &e); i++) {
                if (e.x.global || e.ctx != pcid || e.va >= VMS_TASK_SIZE || e.va >= hi ||
                    e.va + vms_pgsize_bytes(e.x.size) <= lo)
                    continue;
                uint64_t pte = 0;
                vms_pgsize sz;
                bool present = vms_pt_lookup(&pt, e.va, &pte, NULL, &sz);
                uint64_t pa = 0;
                vms_pte_info pi = {0};
                if (present) {
                    uint64_t base = vms_fmt_pte_addr(fmt, pte) & ~(vms_pgsize_bytes(sz) - 1);
                    pa = base + ((e.va & (vms_pgsize_bytes(sz) - 1)) & ~UINT64_C(0xfff));
                    vms_fmt_decode(fmt, pte, vms_fmt_size_level(sz), &pi);
                }
                uint64_t epa =
                    e.x.page_pa + ((e.va & (vms_pgsize_bytes(e.x.size) - 1)) & ~UINT64_C(0xfff));
                bool bad = !present || pa != epa || (e.x.rw && !vms_fmt_pte_write(fmt, pte)) ||
                           (e.x.us && !(pi.prot & VMS_PGPROT_U));
                if (bad && rep->violations++ == 0)
                    snprintf(rep->first, sizeof rep->first,
                             "core %u level %u pcid %u va %llx -> %llx rw %u; tables: %s %llx", c,
                             l, (unsigned)pcid, (unsigned long long)e.va, (unsigned long long)epa,
                             e.x.rw, present ? "pte" : "none", (unsigned long long)pte);
            }
        }
    }
}

static void check_tlbs(fx *f, stale_report *rep)
{
    check_tlbs_range(f, 0, VMS_TASK_SIZE, rep);
}

/* ---- scheduler ------------------------------------------------------------------------ */

static void test_sched_slices_affinity_balance(void)
{
    fx f;
    vms_kernel_config kc = kcfg(VMS_SHOOTDOWN_AUTO);
    kc.sched_slice = 20; /* a TLB-hit write costs about one cycle */
    REQUIRE_VOID(fx_make(&f, 2, 1, &kc));
    vms_task *a, *b;
    CHECK_EQ(vms_proc_spawn(f.k, "a", 0, &a, NULL), VMS_OK);
    CHECK_EQ(vms_proc_spawn(f.k, "b", 0, &b, NULL), VMS_OK);
    uint64_t va = map(&f, a, 1, RW), vb = map(&f, b, 1, RW);
    /* Both on core 0, core 1 idle: the idle core pulls one (a migration). */
    vms_task *n = vms_sched_next(f.k);
    const vms_kernel_stats *s = vms_kernel_get_stats(f.k);
    CHECK_EQ(s->nr_migrations, 1);
    vms_task_info ia, ib;
    vms_task_get_info(a, &ia);
    vms_task_get_info(b, &ib);
    CHECK(ia.core != ib.core);
    CHECK(n == a || n == b);
    /* Pin both to core 0: b (or a) moves back; affinity refuses core 1 then. */
    uint64_t only0 = 1;
    CHECK_EQ(vms_task_set_affinity(f.k, a, &only0, 64, NULL), VMS_OK);
    CHECK_EQ(vms_task_set_affinity(f.k, b, &only0, 64, NULL), VMS_OK);
    vms_task_get_info(a, &ia);
    vms_task_get_info(b, &ib);
    CHECK_EQ(ia.core, 0);
    CHECK_EQ(ib.core, 0);
    CHECK_EQ(vms_task_set_core(f.k, a, 1, NULL), VMS_ERR_INVAL);
    uint64_t none = 0;
    CHECK_EQ(vms_task_set_affinity(f.k, a, &none, 64, NULL), VMS_ERR_INVAL);
    /* Round robin by slices: running each chosen task until the slice is over alternates. */
    unsigned runs_a = 0, runs_b = 0, switches = 0;
    vms_task *prev = NULL;
    for (int i = 0; i < 200; i++) {
        vms_task *t = vms_sched_next(f.k);
        REQUIRE_VOID(t != NULL);
        CHECK_EQ(vms_proc_write(f.k, t, t == a ? va : vb, "x", 1), VMS_ACCESS_OK);
        *(t == a ? &runs_a : &runs_b) += 1;
        switches += prev && prev != t;
        prev = t;
    }
    CHECK(runs_a > 20 && runs_b > 20);
    CHECK(switches >= 4 && switches < 100); /* slices, not every access */
    CHECK(s->sched_preempt >= 4);
    /* Core 1 idles meanwhile; core 0's time moved on. */
    vms_sched_core_info si;
    vms_sched_get_core(f.k, 1, &si);
    CHECK_EQ(si.nr_running, 0);
    vms_sched_get_core(f.k, 0, &si);
    CHECK_EQ(si.nr_running, 2);
    vms_strbuf sb;
    vms_strbuf_init(&sb, NULL);
    CHECK_EQ(vms_sched_show(f.k, &sb), VMS_OK);
    CHECK(strstr(vms_strbuf_str(&sb), "core 1 socket 0") != NULL);
    CHECK(strstr(vms_strbuf_str(&sb), "idle") != NULL);
    vms_strbuf_free(&sb);
    /* yield puts the current task behind its peer. */
    vms_task *cur = vms_sched_next(f.k);
    vms_sched_yield(f.k, cur);
    CHECK(vms_sched_next(f.k) != cur);
    fx_done(&f);
}

/* ---- lazy TLB ---------------------------------------------------------------------------- */

/* A thread leaves core 1 (the core idles, mm loaded lazily); mprotect from core 0 sends
 * it no IPI; its stale writable entry stays but is flushed when it switches back. */
static void test_lazy_skip_and_catch_up(void)
{
    fx f;
    vms_kernel_config kc = kcfg(VMS_SHOOTDOWN_IPI);
    REQUIRE_VOID(fx_make(&f, 2, 1, &kc));
    vms_task *t0, *t1;
    CHECK_EQ(vms_proc_spawn(f.k, "mt", 0, &t0, NULL), VMS_OK);
    CHECK_EQ(vms_proc_clone_thread(f.k, t0, 1, &t1, NULL), VMS_OK);
    uint64_t va = map(&f, t0, 4, RW);
    CHECK_EQ(vms_proc_write(f.k, t1, va, "w", 1), VMS_ACCESS_OK);
    uint16_t pcid = pcid_of(t0);
    CHECK(tlb_has(&f, 1, pcid, va));
    /* t1 migrates away: core 1 goes idle with the mm still loaded. */
    CHECK_EQ(vms_task_set_core(f.k, t1, 0, NULL), VMS_OK);
    vms_sched_core_info si;
    vms_sched_get_core(f.k, 1, &si);
    CHECK(si.lazy);
    CHECK_EQ(si.loaded_pid, vms_task_pid(t0));
    const vms_kernel_stats *s = vms_kernel_get_stats(f.k);
    uint64_t ipis = s->nr_tlb_remote_flush_received;
    CHECK_EQ(vms_sys_mprotect(f.k, t0, va, 4 * 4096, VMS_PROT_READ, NULL), VMS_OK);
    CHECK_EQ(s->nr_tlb_remote_flush_received, ipis); /* no IPI to the lazy core */
    CHECK_EQ(s->tlb_lazy_skipped, 1);
    CHECK(tlb_has(&f, 1, pcid, va)); /* stale, unreachable by user code for now */
    /* Back on core 1: the switch catches up and the write faults (read-only now). */
    CHECK_EQ(vms_task_set_core(f.k, t1, 1, NULL), VMS_OK);
    vms_access_info info;
    char zb[1] = {'z'};
    CHECK_EQ(vms_proc_access(f.k, t1, va, VMS_ACC_WRITE, zb, 1, &info, NULL), VMS_OK);
    CHECK_EQ(info.outcome, VMS_ACCESS_SEGV);
    CHECK_EQ(s->tlb_switch_flushes, 1);
    fx_done(&f);
}

/* munmap frees page tables: the lazy core does get the IPI and leaves for init_mm. */
static void test_lazy_leave_mm(void)
{
    fx f;
    vms_kernel_config kc = kcfg(VMS_SHOOTDOWN_IPI);
    REQUIRE_VOID(fx_make(&f, 2, 1, &kc));
    vms_task *t0, *t1;
    CHECK_EQ(vms_proc_spawn(f.k, "mt", 0, &t0, NULL), VMS_OK);
    CHECK_EQ(vms_proc_clone_thread(f.k, t0, 1, &t1, NULL), VMS_OK);
    uint64_t va = map(&f, t0, 2, RW);
    CHECK_EQ(vms_proc_write(f.k, t1, va, "w", 1), VMS_ACCESS_OK);
    uint16_t pcid = pcid_of(t0);
    CHECK_EQ(vms_task_set_core(f.k, t1, 0, NULL), VMS_OK);
    const vms_kernel_stats *s = vms_kernel_get_stats(f.k);
    CHECK_EQ(vms_sys_munmap(f.k, t0, va, 2 * 4096, NULL), VMS_OK);
    CHECK_EQ(s->tlb_leave_mm, 1);
    CHECK_EQ(s->nr_tlb_remote_flush_received, 1);
    const vms_regs *r = vms_core_regs(vms_machine_core(f.m, 1));
    CHECK_EQ(vms_regs_root(r), vms_kernel_init_root(f.k)); /* on init_mm now */
    vms_sched_core_info si;
    vms_sched_get_core(f.k, 1, &si);
    CHECK(si.lazy);
    CHECK_EQ(si.loaded_pid, 0);
    (void)pcid;
    fx_done(&f);
}

/* With PCIDs a core switching between two address spaces keeps both tagged; a
 * shootdown of the one it left skips it, and the switch back flushes that PCID. */
static void test_switch_generation(void)
{
    fx f;
    vms_kernel_config kc = kcfg(VMS_SHOOTDOWN_IPI);
    REQUIRE_VOID(fx_make(&f, 2, 1, &kc));
    vms_task *a0, *a1, *b;
    CHECK_EQ(vms_proc_spawn(f.k, "a", 0, &a0, NULL), VMS_OK);
    CHECK_EQ(vms_proc_clone_thread(f.k, a0, 1, &a1, NULL), VMS_OK);
    CHECK_EQ(vms_proc_spawn(f.k, "b", 1, &b, NULL), VMS_OK);
    uint64_t va = map(&f, a0, 1, RW), vb = map(&f, b, 1, RW);
    CHECK_EQ(vms_proc_write(f.k, a1, va, "a", 1), VMS_ACCESS_OK);
    CHECK_EQ(vms_proc_write(f.k, b, vb, "b", 1), VMS_ACCESS_OK); /* core 1: a -> b */
    CHECK(tlb_has(&f, 1, pcid_of(a0), va));
    const vms_kernel_stats *s = vms_kernel_get_stats(f.k);
    uint64_t ipis = s->nr_tlb_remote_flush_received;
    CHECK_EQ(vms_sys_mprotect(f.k, a0, va, 4096, VMS_PROT_READ, NULL), VMS_OK);
    CHECK_EQ(s->nr_tlb_remote_flush_received, ipis); /* core 1 left a's mask */
    const vms_core_stats *cs = vms_core_get_stats(vms_machine_core(f.m, 1));
    uint64_t noflush = cs->cr3_noflush, loads = cs->cr3_loads;
    char c = 0;
    CHECK_EQ(vms_proc_read(f.k, a1, va, &c, 1), VMS_ACCESS_OK);
    CHECK_EQ(c, 'a');
    CHECK_EQ(cs->cr3_loads, loads + 1);
    CHECK_EQ(cs->cr3_noflush, noflush); /* the switch back flushed a's PCID */
    CHECK_EQ(s->tlb_switch_flushes, 1);
    vms_xlate x;
    CHECK(vms_tlb_probe(vms_core_tlb(vms_machine_core(f.m, 1), VMS_TLB_L1D), pcid_of(a0), va, &x));
    CHECK_EQ(x.rw, 0); /* refilled from the read-only PTE */
    /* b was not shot down: switching to b again is a no-flush load. */
    CHECK_EQ(vms_proc_write(f.k, b, vb, "c", 1), VMS_ACCESS_OK);
    CHECK_EQ(cs->cr3_noflush, noflush + 1);
    CHECK_EQ(s->tlb_switch_flushes, 1);
    fx_done(&f);
}

/* ---- the protocol in time ---------------------------------------------------------------- */

typedef struct sd_log {
    unsigned n;
    vms_shootdown_event last;
    unsigned targets[8];
    uint64_t ack[8];
} sd_log;

static void on_sd(void *ud, const vms_shootdown_event *ev)
{
    sd_log *l = ud;
    l->n++;
    l->last = *ev;
    for (unsigned i = 0; i < ev->ntargets && i < 8; i++) {
        l->targets[i] = ev->targets[i];
        l->ack[i] = ev->ack[i];
    }
}

static void test_ipi_timing(void)
{
    fx f;
    vms_kernel_config kc = kcfg(VMS_SHOOTDOWN_IPI);
    REQUIRE_VOID(fx_make(&f, 4, 2, &kc)); /* cores 0,1 on socket 0; 2,3 on socket 1 */
    CHECK_EQ(vms_machine_hops(f.m, 0, 1), 0);
    CHECK_EQ(vms_machine_hops(f.m, 0, 3), 1);
    vms_task *t[4];
    CHECK_EQ(vms_proc_spawn(f.k, "mt", 0, &t[0], NULL), VMS_OK);
    for (unsigned c = 1; c < 4; c++)
        CHECK_EQ(vms_proc_clone_thread(f.k, t[0], c, &t[c], NULL), VMS_OK);
    uint64_t va = map(&f, t[0], 1, RW);
    for (unsigned c = 0; c < 4; c++)
        CHECK_EQ(vms_proc_write(f.k, t[c], va, "x", 1), VMS_ACCESS_OK);
    sd_log lg = {0};
    vms_kernel_set_shootdown_hook(f.k, on_sd, &lg);
    uint64_t before[4];
    for (unsigned c = 0; c < 4; c++)
        before[c] = vms_core_cycles(vms_machine_core(f.m, c));
    CHECK_EQ(vms_sys_mprotect(f.k, t[0], va, 4096, VMS_PROT_READ, NULL), VMS_OK);
    CHECK_EQ(lg.n, 1);
    CHECK(!lg.last.broadcast);
    CHECK_EQ(lg.last.ntargets, 3);
    CHECK_EQ(lg.last.initiator, 0);
    uint64_t handler = kc.cost.ipi + 200; /* + one INVLPG (skylake cost.invlpg) */
    for (unsigned i = 0; i < 3; i++) {
        unsigned c = lg.targets[i];
        uint64_t lat = kc.cost.ipi_latency + (uint64_t)kc.cost.ipi_hop * (c >= 2);
        CHECK_EQ(lg.ack[i], kc.cost.ipi_send * (i + 1) + lat + handler + lat);
        /* the target was interrupted: its clock moved by the handler */
        CHECK_EQ(vms_core_cycles(vms_machine_core(f.m, c)) - before[c], handler);
    }
    uint64_t slowest = lg.ack[2] > lg.ack[1] ? lg.ack[2] : lg.ack[1];
    CHECK_EQ(lg.last.cycles, slowest); /* the initiator waited for the slowest ack */
    const vms_kernel_stats *s = vms_kernel_get_stats(f.k);
    CHECK_EQ(s->tlb_shootdown_cycles, lg.last.cycles + 3 * handler);
    /* The far socket's acks are later than the near core's. */
    CHECK(lg.ack[1] > lg.ack[0]);
    fx_done(&f);
}

/* Broadcast: INVLPGB + TLBSYNC, no IPI, nobody interrupted; every core's entries gone. */
static void test_broadcast(void)
{
    for (int mode = 0; mode < 2; mode++) {
        fx f;
        vms_kernel_config kc = kcfg(mode ? VMS_SHOOTDOWN_AUTO : VMS_SHOOTDOWN_BROADCAST);
        REQUIRE_VOID(fx_make(&f, 4, 1, &kc));
        vms_task *t[4];
        CHECK_EQ(vms_proc_spawn(f.k, "mt", 0, &t[0], NULL), VMS_OK);
        for (unsigned c = 1; c < 4; c++)
            CHECK_EQ(vms_proc_clone_thread(f.k, t[0], c, &t[c], NULL), VMS_OK);
        uint64_t va = map(&f, t[0], 20, RW);
        unsigned ncores = mode ? 3 : 4; /* auto with 3 cores: still broadcast */
        for (unsigned c = 0; c < ncores; c++)
            for (unsigned p = 0; p < 20; p++)
                CHECK_EQ(vms_proc_write(f.k, t[c], va + p * 4096, "x", 1), VMS_ACCESS_OK);
        uint16_t pcid = pcid_of(t[0]);
        uint64_t before[4];
        for (unsigned c = 0; c < 4; c++)
            before[c] = vms_core_cycles(vms_machine_core(f.m, c));
        const vms_kernel_stats *s = vms_kernel_get_stats(f.k);
        CHECK_EQ(vms_sys_mprotect(f.k, t[0], va, 20 * 4096, VMS_PROT_READ, NULL), VMS_OK);
        CHECK_EQ(s->tlb_broadcasts, 1);
        CHECK_EQ(s->nr_tlb_remote_flush_received, 0);
        CHECK_EQ(s->tlb_invlpgb, 3); /* 20 pages, 8 per INVLPGB */
        for (unsigned c = 1; c < 4; c++)
            CHECK_EQ(vms_core_cycles(vms_machine_core(f.m, c)), before[c]);
        for (unsigned c = 0; c < 4; c++)
            for (unsigned p = 0; p < 20; p++)
                CHECK(!tlb_has(&f, c, pcid, va + p * 4096));
        const vms_core_stats *cs = vms_core_get_stats(vms_machine_core(f.m, 0));
        CHECK_EQ(cs->invlpgb, 3);
        CHECK_EQ(cs->tlbsync, 1);
        CHECK_EQ(vms_core_get_stats(vms_machine_core(f.m, 2))->invlpgb_received, 3);
        /* the initiator paid 3 issues and one TLBSYNC (one socket) plus the syscall */
        vms_machine_config mc;
        vms_machine_preset("skylake", &mc, NULL);
        CHECK_EQ(s->tlb_shootdown_cycles, 3 * mc.cost.invlpgb + mc.cost.tlbsync);
        /* Above the ceiling: one INVLPGB by PCID. */
        uint64_t vb = map(&f, t[0], 40, RW);
        for (unsigned c = 0; c < ncores; c++)
            CHECK_EQ(vms_proc_write(f.k, t[c], vb + 39 * 4096, "x", 1), VMS_ACCESS_OK);
        CHECK_EQ(vms_sys_munmap(f.k, t[0], vb, 40 * 4096, NULL), VMS_OK);
        CHECK_EQ(s->tlb_invlpgb, 4);
        for (unsigned c = 0; c < 4; c++)
            CHECK(!tlb_has(&f, c, pcid, vb + 39 * 4096));
        fx_done(&f);
    }
    /* auto on 2 cores: IPIs */
    fx f;
    vms_kernel_config kc = kcfg(VMS_SHOOTDOWN_AUTO);
    REQUIRE_VOID(fx_make(&f, 4, 1, &kc));
    vms_task *t0, *t1;
    CHECK_EQ(vms_proc_spawn(f.k, "mt", 0, &t0, NULL), VMS_OK);
    CHECK_EQ(vms_proc_clone_thread(f.k, t0, 1, &t1, NULL), VMS_OK);
    uint64_t va = map(&f, t0, 40, RW);
    CHECK_EQ(vms_proc_write(f.k, t0, va, "x", 1), VMS_ACCESS_OK);
    CHECK_EQ(vms_proc_write(f.k, t1, va, "x", 1), VMS_ACCESS_OK);
    const vms_kernel_stats *s = vms_kernel_get_stats(f.k);
    CHECK_EQ(vms_sys_munmap(f.k, t0, va, 40 * 4096, NULL), VMS_OK);
    CHECK_EQ(s->tlb_broadcasts, 0);
    CHECK_EQ(s->nr_tlb_remote_flush_received, 1);
    CHECK_EQ(s->nr_tlb_local_flush_all, 1); /* 40 pages > 33: a full flush */
    fx_done(&f);
    /* broadcast on a machine without INVLPGB is refused at boot */
    vms_machine_config mc;
    vms_machine_preset("skylake", &mc, NULL);
    mc.invlpgb_max = 0;
    vms_machine *m;
    vms_kernel *k;
    CHECK_EQ(vms_machine_create(NULL, &mc, &m, NULL), VMS_OK);
    kc = kcfg(VMS_SHOOTDOWN_BROADCAST);
    vms_err err = {0};
    CHECK_EQ(vms_kernel_create(m, &kc, &k, &err), VMS_ERR_INVAL);
    CHECK(strstr(err.msg, "INVLPGB") != NULL);
    vms_machine_destroy(m);
}

/* The hardware operation itself: each INVLPGB form on every core, through the cores'
 * own arrays; TLBSYNC's cost; the refusals. */
static void test_invlpgb_forms(void)
{
    fx f;
    REQUIRE_VOID(fx_make(&f, 2, 1, NULL));
    vms_task *a, *a1, *b;
    CHECK_EQ(vms_proc_spawn(f.k, "a", 0, &a, NULL), VMS_OK);
    CHECK_EQ(vms_proc_clone_thread(f.k, a, 1, &a1, NULL), VMS_OK);
    CHECK_EQ(vms_proc_spawn(f.k, "b", 0, &b, NULL), VMS_OK);
    uint64_t va = map(&f, a, 4, RW), vb = map(&f, b, 4, RW);
    uint16_t pa = pcid_of(a), pb = pcid_of(b);
    vms_core *c0 = vms_machine_core(f.m, 0), *c1 = vms_machine_core(f.m, 1);
    uint64_t dm = vms_kernel_page_offset(f.k) + 0x100000; /* a global direct-map page */
    vms_xlate x;
    uint64_t pax;
    vms_fault ft;
#define FILL()                                                                                     \
    do {                                                                                           \
        for (unsigned p = 0; p < 4; p++) {                                                         \
            CHECK_EQ(vms_proc_write(f.k, a, va + p * 4096, "1", 1), VMS_ACCESS_OK);                \
            CHECK_EQ(vms_proc_write(f.k, a1, va + p * 4096, "1", 1), VMS_ACCESS_OK);               \
            CHECK_EQ(vms_proc_write(f.k, b, vb + p * 4096, "2", 1), VMS_ACCESS_OK);                \
        }                                                                                          \
        vms_core_set_user(c1, false);                                                              \
        CHECK(vms_core_translate(c1, dm, VMS_ACC_READ, &x, &pax, &ft, NULL));                      \
        CHECK(x.global);                                                                           \
    } while (0)
    FILL();
    /* VA|PCID, count 2: pages 0..2 of a on both cores; page 3 and b stay. */
    CHECK_EQ(vms_core_invlpgb(c0, VMS_INVLPGB_VA | VMS_INVLPGB_PCID, va, pa, 2), VMS_OK);
    for (unsigned p = 0; p < 3; p++) {
        CHECK(!tlb_has(&f, 0, pa, va + p * 4096));
        CHECK(!tlb_has(&f, 1, pa, va + p * 4096));
    }
    CHECK(tlb_has(&f, 1, pa, va + 3 * 4096));
    CHECK(tlb_has(&f, 0, pb, vb));
    CHECK(tlb_has(&f, 1, 0, dm)); /* global kept */
    /* VA without PCID: every PCID's entry for that page (only on core 0 here both). */
    CHECK(tlb_has(&f, 0, pb, vb));
    CHECK_EQ(vms_core_invlpgb(c1, VMS_INVLPGB_VA, vb, 0, 0), VMS_OK);
    CHECK(!tlb_has(&f, 0, pb, vb));
    /* VA|GLOBAL drops the global entry; without GLOBAL it stays. */
    CHECK_EQ(vms_core_invlpgb(c0, VMS_INVLPGB_VA, dm, 0, 0), VMS_OK);
    CHECK(tlb_has(&f, 1, 0, dm));
    CHECK_EQ(vms_core_invlpgb(c0, VMS_INVLPGB_VA | VMS_INVLPGB_GLOBAL, dm, 0, 0), VMS_OK);
    CHECK(!tlb_has(&f, 1, 0, dm));
    FILL();
    /* PCID: every entry of a, on both cores; b kept. */
    CHECK_EQ(vms_core_invlpgb(c0, VMS_INVLPGB_PCID, 0, pa, 0), VMS_OK);
    for (unsigned p = 0; p < 4; p++)
        CHECK(!tlb_has(&f, 1, pa, va + p * 4096) && !tlb_has(&f, 0, pa, va + p * 4096));
    CHECK(tlb_has(&f, 0, pb, vb + 4096));
    FILL();
    /* Nothing selected: every non-global entry; then with GLOBAL, globals too. */
    CHECK_EQ(vms_core_invlpgb(c0, 0, 0, 0, 0), VMS_OK);
    CHECK(!tlb_has(&f, 0, pb, vb) && !tlb_has(&f, 1, pa, va));
    CHECK(tlb_has(&f, 1, 0, dm));
    CHECK_EQ(vms_core_invlpgb(c0, VMS_INVLPGB_GLOBAL, 0, 0, 0), VMS_OK);
    CHECK(!tlb_has(&f, 1, 0, dm));
    /* 2M stride: count 1 covers va and va + 2 MiB. */
    FILL();
    CHECK_EQ(vms_core_invlpgb(c0, VMS_INVLPGB_VA | VMS_INVLPGB_PCID | VMS_INVLPGB_STRIDE_2M,
                              va - (UINT64_C(2) << 20) + 4096, pa, 1),
             VMS_OK);
    CHECK(!tlb_has(&f, 0, pa, va + 4096));
    CHECK(tlb_has(&f, 0, pa, va));
    /* TLBSYNC: pays once for the pending broadcasts, then nothing. */
    const vms_machine_config *mc = vms_machine_get_config(f.m);
    CHECK_EQ(vms_core_tlbsync(c0), mc->cost.tlbsync);
    CHECK_EQ(vms_core_tlbsync(c0), 0);
    /* Refusals. */
    CHECK_EQ(vms_core_invlpgb(c0, VMS_INVLPGB_VA, va, 0, mc->invlpgb_max), VMS_ERR_INVAL);
    CHECK_EQ(vms_core_invlpgb(c0, VMS_INVLPGB_PCID, 0, pa, 1), VMS_ERR_INVAL);
    CHECK_EQ(vms_core_invlpgb(c0, VMS_INVLPGB_PCID | VMS_INVLPGB_GLOBAL, 0, pa, 0), VMS_ERR_INVAL);
    CHECK_EQ(vms_core_invlpgb(c0, 0x100, 0, 0, 0), VMS_ERR_INVAL);
    CHECK_EQ(vms_core_invlpgb(c0, VMS_INVLPGB_PCID, 0, 4096, 0), VMS_ERR_INVAL);
    vms_core_set_user(c1, true);
    fx_done(&f);
#undef FILL
}

/* mmu_gather: one shootdown per munmap range, or one per page without batching. */
static void test_batching(void)
{
    for (int batch = 1; batch >= 0; batch--) {
        fx f;
        vms_kernel_config kc = kcfg(VMS_SHOOTDOWN_IPI);
        kc.tlb_batch = batch;
        REQUIRE_VOID(fx_make(&f, 2, 1, &kc));
        vms_task *t0, *t1;
        CHECK_EQ(vms_proc_spawn(f.k, "mt", 0, &t0, NULL), VMS_OK);
        CHECK_EQ(vms_proc_clone_thread(f.k, t0, 1, &t1, NULL), VMS_OK);
        uint64_t va = map(&f, t0, 16, RW);
        for (unsigned p = 0; p < 16; p++)
            CHECK_EQ(vms_proc_write(f.k, t1, va + p * 4096, "x", 1), VMS_ACCESS_OK);
        CHECK_EQ(vms_proc_write(f.k, t0, va, "x", 1), VMS_ACCESS_OK);
        const vms_kernel_stats *s = vms_kernel_get_stats(f.k);
        uint64_t r0 = s->nr_tlb_remote_flush;
        CHECK_EQ(vms_sys_munmap(f.k, t0, va, 16 * 4096, NULL), VMS_OK);
        CHECK_EQ(s->nr_tlb_remote_flush - r0, batch ? 1 : 16);
        for (unsigned p = 0; p < 16; p++)
            CHECK(!tlb_has(&f, 1, pcid_of(t0), va + p * 4096));
        fx_done(&f);
    }
}

/* Reclaim under pressure defers its flushes to one per batch; nothing stale survives. */
static uint64_t reclaim_run(bool batch)
{
    fx f;
    vms_kernel_config kc = kcfg(VMS_SHOOTDOWN_IPI);
    kc.tlb_batch = batch;
    kc.swap_bytes = UINT64_C(64) << 20;
    vms_machine_config mc;
    vms_err err = {0};
    vms_machine_preset("skylake", &mc, NULL);
    mc.ram_bytes = UINT64_C(24) << 20;
    mc.ncores = 2;
    memset(&f, 0, sizeof f);
    if (vms_machine_create(NULL, &mc, &f.m, &err) != VMS_OK ||
        vms_kernel_create(f.m, &kc, &f.k, &err) != VMS_OK) {
        CHECK(false);
        return 0;
    }
    f.free0 = vms_frames_nfree(vms_kernel_frames(f.k));
    vms_task *t0, *t1;
    CHECK_EQ(vms_proc_spawn(f.k, "big", 0, &t0, NULL), VMS_OK);
    CHECK_EQ(vms_proc_clone_thread(f.k, t0, 1, &t1, NULL), VMS_OK);
    uint64_t pages = 8192; /* 32 MiB > RAM */
    uint64_t va = map(&f, t0, pages, RW);
    stale_report rep = {0};
    for (uint64_t p = 0; p < pages; p++) {
        uint32_t v = (uint32_t)p * 2654435761u;
        CHECK_EQ(vms_proc_write(f.k, (p & 1) ? t1 : t0, va + p * 4096, &v, 4), VMS_ACCESS_OK);
        if ((p & 255) == 0)
            check_tlbs(&f, &rep);
    }
    bool ok = true;
    for (uint64_t p = 0; p < pages; p += 7) {
        uint32_t v = 0;
        ok &= vms_proc_read(f.k, (p & 2) ? t1 : t0, va + p * 4096, &v, 4) == VMS_ACCESS_OK &&
              v == (uint32_t)p * 2654435761u;
        if ((p & 255) == 0)
            check_tlbs(&f, &rep);
    }
    CHECK(ok);
    const vms_kernel_stats *s = vms_kernel_get_stats(f.k);
    CHECK(s->pswpout > 0);
    CHECK(batch ? s->tlb_deferred > 0 : s->tlb_deferred == 0);
    uint64_t rounds = s->nr_tlb_remote_flush;
    if (rep.violations)
        fprintf(stderr, "stale: %s\n", rep.first);
    CHECK_EQ(rep.violations, 0);
    fx_done(&f);
    return rounds;
}

/* FIFO reclaim (no A-bit aging, so no flush before the eviction) evicts the page core 1
 * still caches: only the batch's deferred flush removes that entry before the frame is
 * reused. core 1 keeps running t1 while t0 fills memory on core 0. */
static void test_reclaim_deferred_hot_entry(void)
{
    fx f;
    vms_kernel_config kc = kcfg(VMS_SHOOTDOWN_IPI);
    kc.swap_bytes = UINT64_C(64) << 20;
    kc.policy = "fifo";
    vms_machine_config mc;
    vms_err err = {0};
    vms_machine_preset("skylake", &mc, NULL);
    mc.ram_bytes = UINT64_C(24) << 20;
    mc.ncores = 2;
    memset(&f, 0, sizeof f);
    REQUIRE_VOID(vms_machine_create(NULL, &mc, &f.m, &err) == VMS_OK);
    REQUIRE_VOID(vms_kernel_create(f.m, &kc, &f.k, &err) == VMS_OK);
    f.free0 = vms_frames_nfree(vms_kernel_frames(f.k));
    vms_task *t0, *t1;
    CHECK_EQ(vms_proc_spawn(f.k, "big", 0, &t0, NULL), VMS_OK);
    CHECK_EQ(vms_proc_clone_thread(f.k, t0, 1, &t1, NULL), VMS_OK);
    uint64_t pages = 8192, va = map(&f, t0, pages, RW);
    uint32_t v = 0x5eed5eed;
    CHECK_EQ(vms_proc_write(f.k, t1, va, &v, 4), VMS_ACCESS_OK); /* the oldest page */
    CHECK(tlb_has(&f, 1, pcid_of(t0), va));
    stale_report rep = {0};
    const vms_kernel_stats *s = vms_kernel_get_stats(f.k);
    for (uint64_t p = 1; p < pages && s->pswpout == 0; p++)
        CHECK_EQ(vms_proc_write(f.k, t0, va + p * 4096, &p, 8), VMS_ACCESS_OK);
    CHECK(s->pswpout > 0);
    CHECK(s->tlb_deferred > 0);
    check_tlbs(&f, &rep); /* core 1 runs t1: its entry for the evicted page must be gone */
    CHECK(!tlb_has(&f, 1, pcid_of(t0), va));
    /* Reuse the freed frames, then read through core 1: the bytes come back from swap. */
    for (uint64_t p = 4096; p < pages; p++)
        CHECK_EQ(vms_proc_write(f.k, t0, va + p * 4096, &p, 8), VMS_ACCESS_OK);
    check_tlbs(&f, &rep);
    uint32_t r = 0;
    CHECK_EQ(vms_proc_read(f.k, t1, va, &r, 4), VMS_ACCESS_OK);
    CHECK_EQ(r, v);
    if (rep.violations)
        fprintf(stderr, "stale: %s\n", rep.first);
    CHECK_EQ(rep.violations, 0);
    fx_done(&f);
}

static void test_reclaim_deferred(void)
{
    uint64_t batched = reclaim_run(true), single = reclaim_run(false);
    CHECK(batched < single); /* one IPI round per reclaim batch instead of per page */
}

/* ---- the seeded concurrency test ----------------------------------------------------- */

#define MAXP 8
#define MAXR 12
#define MAXT 6

typedef struct region {
    uint64_t va, npages;
    bool writable;
    uint32_t *val; /* expected first word of each page */
} region;

typedef struct mproc {
    bool live;
    vms_task *t[MAXT];
    unsigned nt;
    region r[MAXR];
    unsigned nr;
} mproc;

typedef struct world {
    fx f;
    vms_rng rng;
    mproc p[MAXP];
    uint32_t next_val;
    stale_report rep;
    unsigned bad_reads;
    unsigned shootdowns;
} world;

static void on_sd_check(void *ud, const vms_shootdown_event *ev)
{
    world *w = ud;
    w->shootdowns++;
    check_tlbs_range(&w->f, ev->start, ev->end, &w->rep);
}

static mproc *proc_of(world *w, vms_task *t, unsigned *ti)
{
    for (unsigned i = 0; i < MAXP; i++)
        for (unsigned j = 0; w->p[i].live && j < w->p[i].nt; j++)
            if (w->p[i].t[j] == t) {
                if (ti)
                    *ti = j;
                return &w->p[i];
            }
    return NULL;
}

static void region_free(region *r)
{
    free(r->val);
    r->val = NULL;
}

static void proc_drop(mproc *p)
{
    for (unsigned i = 0; i < p->nr; i++)
        region_free(&p->r[i]);
    memset(p, 0, sizeof *p);
}

static unsigned rnd(world *w, unsigned n)
{
    return (unsigned)vms_rng_below(&w->rng, n);
}

static void step(world *w, vms_task *t, unsigned ncores)
{
    vms_kernel *k = w->f.k;
    unsigned ti;
    mproc *p = proc_of(w, t, &ti);
    if (!p)
        return;
    unsigned op = rnd(w, 100);
    if (op < 50 && p->nr) { /* access */
        region *r = &p->r[rnd(w, p->nr)];
        uint64_t pg = rnd(w, (unsigned)r->npages);
        uint64_t va = r->va + pg * 4096;
        if (r->writable && rnd(w, 2)) {
            uint32_t v = ++w->next_val;
            CHECK_EQ(vms_proc_write(k, t, va, &v, 4), VMS_ACCESS_OK);
            r->val[pg] = v;
        } else {
            uint32_t v = 0xdeadbeef;
            vms_access_outcome o = vms_proc_read(k, t, va, &v, 4);
            if (o != VMS_ACCESS_OK || v != r->val[pg]) {
                if (w->bad_reads++ == 0)
                    fprintf(stderr, "read %llx: outcome %d, %x expected %x\n",
                            (unsigned long long)va, (int)o, v, r->val[pg]);
            }
        }
    } else if (op < 58 && p->nr < MAXR) { /* mmap */
        uint64_t n = 1 + rnd(w, rnd(w, 4) ? 20 : 48);
        region *r = &p->r[p->nr];
        r->va = map(&w->f, t, n, RW);
        r->npages = n;
        r->writable = true;
        r->val = calloc(n, sizeof *r->val);
        p->nr++;
    } else if (op < 66 && p->nr) { /* munmap, whole or the upper half */
        unsigned i = rnd(w, p->nr);
        region *r = &p->r[i];
        if (r->npages > 1 && rnd(w, 2)) {
            uint64_t keep = r->npages / 2;
            CHECK_EQ(vms_sys_munmap(k, t, r->va + keep * 4096, (r->npages - keep) * 4096, NULL),
                     VMS_OK);
            r->npages = keep;
        } else {
            CHECK_EQ(vms_sys_munmap(k, t, r->va, r->npages * 4096, NULL), VMS_OK);
            region_free(r);
            p->r[i] = p->r[--p->nr];
        }
    } else if (op < 74 && p->nr) { /* mprotect */
        region *r = &p->r[rnd(w, p->nr)];
        r->writable = !r->writable;
        CHECK_EQ(
            vms_sys_mprotect(k, t, r->va, r->npages * 4096, r->writable ? RW : VMS_PROT_READ, NULL),
            VMS_OK);
    } else if (op < 78) { /* fork */
        unsigned slot = MAXP;
        for (unsigned i = 0; i < MAXP; i++)
            if (!w->p[i].live) {
                slot = i;
                break;
            }
        if (slot == MAXP)
            return;
        vms_task *c;
        REQUIRE_VOID(vms_proc_fork(k, t, &c, NULL) == VMS_OK);
        p = proc_of(w, t, NULL);
        mproc *q = &w->p[slot];
        q->live = true;
        q->t[0] = c;
        q->nt = 1;
        q->nr = p->nr;
        for (unsigned i = 0; i < p->nr; i++) {
            q->r[i] = p->r[i];
            q->r[i].val = malloc(p->r[i].npages * sizeof *q->r[i].val);
            memcpy(q->r[i].val, p->r[i].val, p->r[i].npages * sizeof *q->r[i].val);
        }
        vms_task_set_core(k, c, rnd(w, ncores), NULL);
    } else if (op < 81) { /* exit a thread, or a whole process (never the last one) */
        unsigned live = 0;
        for (unsigned i = 0; i < MAXP; i++)
            live += w->p[i].live;
        if (p->nt > 1) {
            vms_task_exit(k, t);
            p->t[ti] = p->t[--p->nt];
        } else if (live > 1) {
            vms_proc_exit(k, t);
            proc_drop(p);
        }
    } else if (op < 85 && p->nt < MAXT) { /* clone a thread */
        vms_task *c;
        CHECK_EQ(vms_proc_clone_thread(k, t, rnd(w, ncores), &c, NULL), VMS_OK);
        p->t[p->nt++] = c;
    } else if (op < 90) {                              /* migrate */
        vms_task_set_core(k, t, rnd(w, ncores), NULL); /* refused outside affinity: fine */
    } else if (op < 92) {                              /* affinity: a random non-empty mask */
        uint64_t m[VMS_MAX_CORES / 64] = {0};
        for (unsigned i = 0; i < 1 + rnd(w, 4); i++) {
            unsigned c = rnd(w, ncores);
            m[c / 64] |= UINT64_C(1) << (c % 64);
        }
        CHECK_EQ(vms_task_set_affinity(k, t, m, ncores, NULL), VMS_OK);
    } else if (op < 95) {
        vms_sched_yield(k, t);
    }
}

static void run_world(unsigned ncores, vms_shootdown_mode mode, bool batch, bool pcid,
                      unsigned steps, uint64_t seed)
{
    world *w = calloc(1, sizeof *w);
    vms_kernel_config kc = kcfg(mode);
    kc.tlb_batch = batch;
    kc.pcid = pcid;
    kc.sched_slice = 20000;
    REQUIRE_VOID(fx_make(&w->f, ncores, ncores >= 8 ? 2 : 1, &kc));
    vms_rng_seed(&w->rng, seed);
    vms_kernel_set_shootdown_hook(w->f.k, on_sd_check, w);
    for (unsigned i = 0; i < 2; i++) {
        w->p[i].live = true;
        CHECK_EQ(vms_proc_spawn(w->f.k, "w", rnd(w, ncores), &w->p[i].t[0], NULL), VMS_OK);
        w->p[i].nt = 1;
        for (unsigned j = 1; j < 4; j++)
            CHECK_EQ(
                vms_proc_clone_thread(w->f.k, w->p[i].t[0], rnd(w, ncores), &w->p[i].t[j], NULL),
                VMS_OK);
        w->p[i].nt = 4;
    }
    for (unsigned s = 0; s < steps; s++) {
        vms_task *t = vms_sched_next(w->f.k);
        if (!t)
            break;
        step(w, t, ncores);
        check_tlbs(&w->f, &w->rep);
        if (s % 997 == 0) {
            vms_err err = {0};
            if (vms_kernel_check(w->f.k, &err) != VMS_OK) {
                fprintf(stderr, "kernel check at step %u: %s\n", s, err.msg);
                CHECK(false);
                break;
            }
        }
    }
    const vms_kernel_stats *st = vms_kernel_get_stats(w->f.k);
    if (w->rep.violations)
        fprintf(stderr, "%s cores %u mode %d batch %d pcid %d: %u stale entries, first: %s\n",
                fx_arch, ncores, (int)mode, batch, pcid, w->rep.violations, w->rep.first);
    CHECK_EQ(w->rep.violations, 0);
    CHECK_EQ(w->bad_reads, 0);
    CHECK(w->shootdowns > 0);
    CHECK(st->context_switches > 0);
    if (mode == VMS_SHOOTDOWN_BROADCAST ||
        (mode == VMS_SHOOTDOWN_AUTO && !strcmp(fx_arch, "aarch64")))
        CHECK(st->tlb_broadcasts > 0);
    else if (mode == VMS_SHOOTDOWN_SBI ||
             (mode == VMS_SHOOTDOWN_AUTO && !strcmp(fx_arch, "riscv64")))
        CHECK(st->tlb_sbi_rfence > 0 && st->tlb_broadcasts == 0);
    else if (mode == VMS_SHOOTDOWN_IPI)
        CHECK(st->nr_tlb_remote_flush_received > 0 && st->tlb_broadcasts == 0);
    vms_kernel_set_shootdown_hook(w->f.k, NULL, NULL);
    for (unsigned i = 0; i < MAXP; i++)
        if (w->p[i].live)
            proc_drop(&w->p[i]);
    fx_done(&w->f);
    free(w);
}

static void test_concurrency(void)
{
    const char *soak = getenv("VMS_SMP_SOAK");
    unsigned mult = soak ? (unsigned)strtoul(soak, NULL, 0) : 1;
    mult = mult ? mult : 1;
    static const vms_shootdown_mode modes[3] = {VMS_SHOOTDOWN_IPI, VMS_SHOOTDOWN_BROADCAST,
                                                VMS_SHOOTDOWN_AUTO};
    for (unsigned m = 0; m < 3; m++)
        for (int batch = 1; batch >= 0; batch--)
            run_world(8, modes[m], batch, true, 3000 * mult, th_seed + m * 2 + (unsigned)batch);
    run_world(4, VMS_SHOOTDOWN_IPI, true, false, 3000 * mult, th_seed + 11); /* no PCIDs */
    run_world(4, VMS_SHOOTDOWN_BROADCAST, true, false, 3000 * mult, th_seed + 12);
    run_world(soak ? 256 : 32, VMS_SHOOTDOWN_AUTO, true, true, 4000 * mult, th_seed + 13);
    /* The other architectures' protocols (docs/SMP.md "Per architecture"): AArch64's
     * TLBI … IS and RISC-V's SBI remote fences, and each one's IPIs. */
    static const struct {
        const char *arch;
        vms_shootdown_mode mode;
    } other[] = {{"aarch64", VMS_SHOOTDOWN_AUTO},
                 {"aarch64", VMS_SHOOTDOWN_IPI},
                 {"riscv64", VMS_SHOOTDOWN_AUTO},
                 {"riscv64", VMS_SHOOTDOWN_IPI}};
    for (unsigned i = 0; i < sizeof other / sizeof other[0]; i++) {
        fx_arch = other[i].arch;
        for (int batch = 1; batch >= 0; batch--)
            run_world(8, other[i].mode, batch, true, 3000 * mult,
                      th_seed + 20 + i * 2 + (unsigned)batch);
    }
    fx_arch = "riscv64";
    run_world(4, VMS_SHOOTDOWN_SBI, true, false, 3000 * mult, th_seed + 30); /* no ASIDs */
    fx_arch = "aarch64";
    run_world(4, VMS_SHOOTDOWN_BROADCAST, true, false, 3000 * mult, th_seed + 31);
    fx_arch = "x86_64";
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "smp");
    test_sched_slices_affinity_balance();
    test_lazy_skip_and_catch_up();
    test_lazy_leave_mm();
    test_switch_generation();
    test_ipi_timing();
    test_broadcast();
    test_invlpgb_forms();
    test_batching();
    test_reclaim_deferred();
    test_reclaim_deferred_hot_entry();
    test_concurrency();
    return th_finish();
}
