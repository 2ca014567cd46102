/*
 * test_smp_arch.c — shootdowns on the other architectures (src/os/smp.c "per
 * architecture", docs/SMP.md): AArch64's broadcast TLBI … IS + DSB ISH
 * (src/arch/aarch64/cpu.c) and RISC-V's SBI remote fence, the IPI-based baseline of an
 * architecture without a broadcast; x86-64's INVLPGB is test_smp's.
 *
 * On machines of 1 … 8 cores every thread of one process writes a range from its own
 * core, so every core caches it; after the munmap or mprotect no core holds an entry
 * of the range, and every entry any core running user code still holds under its
 * address space's ASID agrees with the page tables in RAM (vms_pt_lookup through the
 * machine's format: present, same frame, no wider rights). Counters and cycles are
 * checked against the cost model: the issuer pays cost.tlbi_is per TLBI and one DSB
 * ISH (cost.dsb_ish + cost.dsb_ish_hop per hop), receivers nothing; an SBI fence costs
 * the initiator the ecall, the sends and the wait for the slowest ack, and each target
 * the M-mode handler plus its sfence.vma.
 */
#include <stdlib.h>

#include "harness.h"
#include "vmsim/arch/aarch64.h"
#include "vmsim/arch/riscv64.h"
#include "vmsim/format.h"
#include "vmsim/frames.h"
#include "vmsim/kernel.h"
#include "vmsim/mman.h"
#include "vmsim/proc.h"
#include "vmsim/pt.h"

#define RW  (VMS_PROT_READ | VMS_PROT_WRITE)
#define ANP (VMS_MAP_PRIVATE | VMS_MAP_ANONYMOUS)

typedef struct fx {
    vms_machine *m;
    vms_kernel *k;
    vms_machine_config mc;
    vms_kernel_config kc;
    uint64_t free0;
    vms_task *t[8]; /* t[c]: a thread of one process, on core c */
    unsigned n;
} fx;

/* The skylake preset with the architecture switched (as `--set arch=`). */
static void machine_cfg(vms_machine_config *mc, const char *arch, unsigned ncores, unsigned sockets)
{
    vms_machine_preset("skylake", mc, NULL);
    const vms_pt_format *f = vms_format_for(arch, mc->levels);
    f = f ? f : vms_format_for(arch, 0);
    mc->fmt = strcmp(arch, "x86_64") == 0 ? NULL : f;
    mc->levels = f->levels;
    mc->ram_bytes = UINT64_C(64) << 20;
    mc->ncores = ncores;
    mc->sockets = sockets;
    mc->seed = th_seed;
}

static vms_kernel_config kcfg(vms_shootdown_mode mode)
{
    vms_kernel_config kc;
    vms_kernel_config_default(&kc);
    kc.seed = th_seed;
    kc.shootdown = mode;
    return kc;
}

/* A machine of arch with ncores cores and one thread of one process on each. */
static bool fx_make(fx *f, const char *arch, unsigned ncores, unsigned sockets,
                    vms_shootdown_mode mode)
{
    memset(f, 0, sizeof *f);
    vms_err err = {0};
    machine_cfg(&f->mc, arch, ncores, sockets);
    f->kc = kcfg(mode);
    if (vms_machine_create(NULL, &f->mc, &f->m, &err) != VMS_OK ||
        vms_kernel_create(f->m, &f->kc, &f->k, &err) != VMS_OK) {
        fprintf(stderr, "setup %s: %s\n", arch, err.msg);
        return false;
    }
    f->free0 = vms_frames_nfree(vms_kernel_frames(f->k));
    f->n = ncores;
    CHECK_EQ(vms_proc_spawn(f->k, "mt", 0, &f->t[0], NULL), VMS_OK);
    for (unsigned c = 1; c < ncores; c++)
        CHECK_EQ(vms_proc_clone_thread(f->k, f->t[0], c, &f->t[c], NULL), VMS_OK);
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

static uint64_t map(fx *f, uint64_t pages)
{
    uint64_t va = 0;
    vms_err err = {0};
    vms_status st = vms_sys_mmap(f->k, f->t[0], 0, pages * 4096, RW, ANP, NULL, 0, &va, &err);
    if (st != VMS_OK)
        fprintf(stderr, "mmap: %s\n", err.msg);
    CHECK_EQ(st, VMS_OK);
    return va;
}

/* Every thread writes every page of [va, va + pages): each core caches the range. */
static void touch_all(fx *f, uint64_t va, uint64_t pages)
{
    for (unsigned c = 0; c < f->n; c++)
        for (uint64_t p = 0; p < pages; p++)
            CHECK_EQ(vms_proc_write(f->k, f->t[c], va + p * 4096, "x", 1), VMS_ACCESS_OK);
}

static uint16_t asid_of(vms_task *t)
{
    vms_task_info ti;
    vms_task_get_info(t, &ti);
    return ti.pcid;
}

static bool tlb_has(fx *f, unsigned core, uint16_t asid, uint64_t va)
{
    vms_xlate x;
    vms_core *c = vms_machine_core(f->m, core);
    for (unsigned l = 0; l < VMS_TLB_NLEVELS; l++) {
        vms_tlb *t = vms_core_tlb(c, (vms_tlb_level)l);
        if (t && vms_tlb_probe(t, asid, va, &x))
            return true;
    }
    return false;
}

/* How many cores hold an entry of va in the process's ASID. */
static unsigned holders(fx *f, uint64_t va)
{
    unsigned n = 0;
    for (unsigned c = 0; c < vms_machine_ncores(f->m); c++)
        n += tlb_has(f, c, asid_of(f->t[0]), va);
    return n;
}

/* Stale entries: every entry a core running one of our threads holds under the
 * process's ASID must agree with the tables in RAM (the machine's format). */
static unsigned stale(fx *f)
{
    vms_task_info ti;
    vms_task_get_info(f->t[0], &ti);
    const vms_pt_format *fmt = vms_machine_format(f->m);
    vms_pt pt = {vms_machine_bus(f->m), fmt, fmt->levels, ti.cr3 & ~UINT64_C(0xFFF), {0}};
    unsigned bad = 0;
    for (unsigned c = 0; c < f->n; c++) {
        vms_sched_core_info si;
        vms_sched_get_core(f->k, c, &si);
        if (si.nr_running == 0 || si.lazy || si.loaded_pid != ti.pid)
            continue;
        vms_core *core = vms_machine_core(f->m, c);
        for (unsigned l = 0; l < VMS_TLB_NLEVELS; l++) {
            vms_tlb *t = vms_core_tlb(core, (vms_tlb_level)l);
            vms_tlb_entry_info e;
            for (unsigned i = 0; t && vms_tlb_entry(t, i, &e); i++) {
                if (e.x.global || e.ctx != ti.pcid || !e.x.us)
                    continue;
                uint64_t pte = 0;
                vms_pgsize sz;
                bool present = vms_pt_lookup(&pt, e.va, &pte, NULL, &sz);
                uint64_t mask = vms_pgsize_bytes(e.x.size) - 1;
                bool ok = present &&
                          (vms_fmt_pte_addr(fmt, pte) & ~mask) == (e.x.page_pa & ~mask) &&
                          (!e.x.rw || vms_fmt_pte_write(fmt, pte));
                if (!ok && bad++ == 0)
                    fprintf(stderr, "stale: core %u level %u va %llx rw %u (tables: %s %llx)\n", c,
                            l, (unsigned long long)e.va, e.x.rw, present ? "pte" : "none",
                            (unsigned long long)pte);
            }
        }
    }
    return bad;
}

/* The farthest hop count from core `from`. */
static unsigned far_hops(fx *f, unsigned from)
{
    unsigned far = 0;
    for (unsigned c = 0; c < vms_machine_ncores(f->m); c++) {
        unsigned h = vms_machine_hops(f->m, from, c);
        far = h > far ? h : far;
    }
    return far;
}

typedef struct sd_log {
    unsigned n;
    vms_shootdown_event last;
    char method[40];
    unsigned targets[8];
    uint64_t ack[8];
} sd_log;

static void on_sd(void *ud, const vms_shootdown_event *ev)
{
    sd_log *l = ud;
    l->n++;
    l->last = *ev;
    snprintf(l->method, sizeof l->method, "%s", ev->method);
    for (unsigned i = 0; i < ev->ntargets && i < 8; i++) {
        l->targets[i] = ev->targets[i];
        l->ack[i] = ev->ack[i];
    }
}

/* ---- AArch64: TLBI … IS + DSB ISH ---------------------------------------------------- */

/* mprotect of 20 pages and munmap of 600 on 1 … 8 cores: broadcast, no IPI, nobody but
 * the issuer charged, every core's entries gone. */
static void test_a64_broadcast(void)
{
    for (unsigned n = 1; n <= 8; n++) {
        for (int mode = 0; mode < 2; mode++) {
            fx f;
            unsigned sockets = n >= 4 ? 2 : 1;
            REQUIRE_VOID(fx_make(&f, "aarch64", n, sockets,
                                 mode ? VMS_SHOOTDOWN_BROADCAST : VMS_SHOOTDOWN_AUTO));
            uint64_t va = map(&f, 20);
            touch_all(&f, va, 20);
            CHECK_EQ(holders(&f, va + 19 * 4096), n); /* the test means something */
            uint64_t before[8];
            for (unsigned c = 0; c < n; c++)
                before[c] = vms_core_cycles(vms_machine_core(f.m, c));
            sd_log lg = {0};
            vms_kernel_set_shootdown_hook(f.k, on_sd, &lg);
            const vms_kernel_stats *s = vms_kernel_get_stats(f.k);
            CHECK_EQ(vms_sys_mprotect(f.k, f.t[0], va, 20 * 4096, VMS_PROT_READ, NULL), VMS_OK);
            CHECK_EQ(s->tlb_broadcasts, 1);
            CHECK_EQ(s->tlb_tlbi_is, 20); /* one TLBI VAE1IS per page */
            CHECK_EQ(s->tlb_invlpgb, 0);
            CHECK_EQ(s->nr_tlb_remote_flush, 0);
            CHECK_EQ(s->nr_tlb_remote_flush_received, 0);
            CHECK_EQ(lg.n, 1);
            CHECK(lg.last.broadcast && !lg.last.full && lg.last.ntargets == 0);
            CHECK_EQ(lg.last.invlpgb, 20);
            CHECK(strcmp(lg.method, "TLBI VAE1IS + DSB ISH") == 0);
            for (unsigned p = 0; p < 20; p++)
                CHECK_EQ(holders(&f, va + p * 4096), 0);
            CHECK_EQ(stale(&f), 0);
            /* Nobody else was interrupted or charged. */
            for (unsigned c = 1; c < n; c++)
                CHECK_EQ(vms_core_cycles(vms_machine_core(f.m, c)), before[c]);
            /* The issuer: 20 TLBIs and one DSB ISH waiting for the farthest core. */
            uint64_t dsb = f.mc.cost.dsb_ish + (uint64_t)f.mc.cost.dsb_ish_hop * far_hops(&f, 0);
            CHECK_EQ(s->tlb_shootdown_cycles, 20 * (uint64_t)f.mc.cost.tlbi_is + dsb);
            CHECK_EQ(lg.last.cycles, 20 * (uint64_t)f.mc.cost.tlbi_is + dsb);
            const vms_core_stats *cs = vms_core_get_stats(vms_machine_core(f.m, 0));
            CHECK_EQ(cs->invlpgb, 20);
            CHECK_EQ(cs->tlbsync, 1);
            for (unsigned c = 0; c < n; c++)
                CHECK_EQ(vms_core_get_stats(vms_machine_core(f.m, c))->invlpgb_received, 20);
            /* Every core reads page 0 again: read-only entries, refilled. */
            char b;
            for (unsigned c = 0; c < n; c++)
                CHECK_EQ(vms_proc_read(f.k, f.t[c], va, &b, 1), VMS_ACCESS_OK);
            /* From 512 pages on: one TLBI ASIDE1IS for the whole ASID. */
            uint64_t vb = map(&f, 600);
            for (unsigned c = 0; c < n; c++)
                CHECK_EQ(vms_proc_write(f.k, f.t[c], vb + 599 * 4096, "x", 1), VMS_ACCESS_OK);
            CHECK_EQ(holders(&f, vb + 599 * 4096), n);
            CHECK_EQ(holders(&f, va), n); /* the reads above refilled page 0 */
            CHECK_EQ(vms_sys_munmap(f.k, f.t[0], vb, 600 * 4096, NULL), VMS_OK);
            CHECK_EQ(s->tlb_tlbi_is, 21);
            CHECK(lg.last.full && strcmp(lg.method, "TLBI ASIDE1IS + DSB ISH") == 0);
            CHECK_EQ(holders(&f, vb + 599 * 4096), 0);
            CHECK_EQ(holders(&f, va), 0); /* the whole ASID went */
            CHECK_EQ(stale(&f), 0);
            vms_kernel_set_shootdown_hook(f.k, NULL, NULL);
            fx_done(&f);
        }
    }
}

/* Linux's arm64 ceiling is 512 pages (MAX_TLBI_OPS), not x86's 33: 511 pages are 511
 * TLBI VAE1IS, and the ASID's other entries stay. */
static void test_a64_ceiling(void)
{
    fx f;
    REQUIRE_VOID(fx_make(&f, "aarch64", 2, 1, VMS_SHOOTDOWN_AUTO));
    uint64_t va = map(&f, 511), vo = map(&f, 1);
    touch_all(&f, va + 510 * 4096, 1);
    touch_all(&f, vo, 1);
    sd_log lg = {0};
    vms_kernel_set_shootdown_hook(f.k, on_sd, &lg);
    const vms_kernel_stats *s = vms_kernel_get_stats(f.k);
    uint64_t n0 = s->tlb_tlbi_is;
    CHECK_EQ(vms_sys_mprotect(f.k, f.t[0], va, 511 * 4096, VMS_PROT_READ, NULL), VMS_OK);
    CHECK_EQ(s->tlb_tlbi_is - n0, 511);
    CHECK(!lg.last.full);
    CHECK_EQ(holders(&f, va + 510 * 4096), 0);
    CHECK_EQ(holders(&f, vo), 2); /* not a flush of the whole ASID */
    CHECK_EQ(stale(&f), 0);
    vms_kernel_set_shootdown_hook(f.k, NULL, NULL);
    fx_done(&f);
}

/* A lazy core is reached by the broadcast too: nothing is left for its next switch. */
static void test_a64_lazy(void)
{
    fx f;
    REQUIRE_VOID(fx_make(&f, "aarch64", 3, 1, VMS_SHOOTDOWN_AUTO));
    uint64_t va = map(&f, 4);
    touch_all(&f, va, 4);
    CHECK_EQ(vms_task_set_core(f.k, f.t[2], 0, NULL), VMS_OK); /* core 2: idle, mm lazily */
    f.n = 2;
    vms_sched_core_info si;
    vms_sched_get_core(f.k, 2, &si);
    CHECK(si.lazy);
    CHECK(tlb_has(&f, 2, asid_of(f.t[0]), va));
    const vms_kernel_stats *s = vms_kernel_get_stats(f.k);
    CHECK_EQ(vms_sys_mprotect(f.k, f.t[0], va, 4 * 4096, VMS_PROT_READ, NULL), VMS_OK);
    CHECK_EQ(s->tlb_lazy_skipped, 0);
    CHECK_EQ(s->nr_tlb_remote_flush_received, 0);
    for (unsigned p = 0; p < 4; p++)
        CHECK(!tlb_has(&f, 2, asid_of(f.t[0]), va + p * 4096));
    /* A thread switched in on core 2 needs no catch-up flush. */
    uint64_t sw = s->tlb_switch_flushes;
    vms_task *t2;
    CHECK_EQ(vms_proc_clone_thread(f.k, f.t[0], 2, &t2, NULL), VMS_OK);
    char b;
    CHECK_EQ(vms_proc_read(f.k, t2, va, &b, 1), VMS_ACCESS_OK);
    CHECK_EQ(s->tlb_switch_flushes, sw);
    CHECK_EQ(stale(&f), 0);
    fx_done(&f);
}

/* kernel.shootdown=ipi on AArch64 (a study option: Linux's arm64 port never IPIs for
 * a user flush): IPIs and local TLBIs, no TLBI … IS. */
static void test_a64_ipi_mode(void)
{
    fx f;
    REQUIRE_VOID(fx_make(&f, "aarch64", 4, 1, VMS_SHOOTDOWN_IPI));
    uint64_t va = map(&f, 8);
    touch_all(&f, va, 8);
    const vms_kernel_stats *s = vms_kernel_get_stats(f.k);
    CHECK_EQ(vms_sys_mprotect(f.k, f.t[0], va, 8 * 4096, VMS_PROT_READ, NULL), VMS_OK);
    CHECK_EQ(s->tlb_broadcasts, 0);
    CHECK_EQ(s->tlb_tlbi_is, 0);
    CHECK_EQ(s->nr_tlb_remote_flush_received, 3);
    for (unsigned p = 0; p < 8; p++)
        CHECK_EQ(holders(&f, va + p * 4096), 0);
    CHECK_EQ(stale(&f), 0);
    fx_done(&f);
}

/* The hardware operations themselves, on every core's own arrays. */
static void test_a64_tlbi_is_forms(void)
{
    fx f;
    REQUIRE_VOID(fx_make(&f, "aarch64", 4, 2, VMS_SHOOTDOWN_IPI));
    uint64_t va = map(&f, 4);
    touch_all(&f, va, 4);
    uint16_t asid = asid_of(f.t[0]);
    vms_core *c1 = vms_machine_core(f.m, 1);
    uint64_t cyc = vms_core_cycles(c1), cyc0 = vms_core_cycles(vms_machine_core(f.m, 3));
    /* VAE1IS of page 1 from core 1: gone everywhere, pages 0, 2, 3 kept. */
    vms_core_tlbi_vae1is(c1, (uint64_t)asid << 48 | ((va + 4096) >> 12));
    CHECK_EQ(holders(&f, va + 4096), 0);
    CHECK_EQ(holders(&f, va), 4);
    CHECK_EQ(vms_core_cycles(c1) - cyc, f.mc.cost.tlbi_is);
    CHECK_EQ(vms_core_cycles(vms_machine_core(f.m, 3)), cyc0); /* receivers not charged */
    /* Another ASID's VAE1IS drops nothing of ours. */
    vms_core_tlbi_vae1is(c1, (uint64_t)(asid + 1) << 48 | (va >> 12));
    CHECK_EQ(holders(&f, va), 4);
    /* DSB ISH: cost.dsb_ish + one hop (2 sockets); a second one waits for nothing. */
    cyc = vms_core_cycles(c1);
    CHECK_EQ(vms_core_dsb_ish(c1), f.mc.cost.dsb_ish + f.mc.cost.dsb_ish_hop);
    CHECK_EQ(vms_core_cycles(c1) - cyc, f.mc.cost.dsb_ish + f.mc.cost.dsb_ish_hop);
    CHECK_EQ(vms_core_dsb_ish(c1), 0);
    /* ASIDE1IS: every page of the ASID on every core. */
    vms_core_tlbi_aside1is(c1, (uint64_t)asid << 48);
    for (unsigned p = 0; p < 4; p++)
        CHECK_EQ(holders(&f, va + p * 4096), 0);
    touch_all(&f, va, 4);
    vms_core_tlbi_vmalle1is(c1);
    for (unsigned p = 0; p < 4; p++)
        CHECK_EQ(holders(&f, va + p * 4096), 0);
    CHECK_EQ(vms_core_get_stats(c1)->invlpgb, 4);
    CHECK_EQ(vms_core_get_stats(vms_machine_core(f.m, 0))->invlpgb_received, 4);
    CHECK_EQ(vms_core_get_stats(c1)->tlbsync, 2);
    fx_done(&f);
}

/* ---- RISC-V: SBI remote fences, no broadcast ---------------------------------------- */

/* One page mprotected on 2 … 8 harts: an ecall, an IPI per hart, each hart's M-mode
 * handler and sfence.vma, the initiator waiting for the slowest ack. */
static void test_rv_sbi_timing(void)
{
    for (unsigned n = 2; n <= 8; n++) {
        for (int mode = 0; mode < 2; mode++) {
            fx f;
            unsigned sockets = n >= 4 ? 2 : 1;
            REQUIRE_VOID(
                fx_make(&f, "riscv64", n, sockets, mode ? VMS_SHOOTDOWN_SBI : VMS_SHOOTDOWN_AUTO));
            uint64_t va = map(&f, 1);
            touch_all(&f, va, 1);
            CHECK_EQ(holders(&f, va), n);
            uint64_t before[8];
            for (unsigned c = 0; c < n; c++)
                before[c] = vms_core_cycles(vms_machine_core(f.m, c));
            sd_log lg = {0};
            vms_kernel_set_shootdown_hook(f.k, on_sd, &lg);
            const vms_kernel_stats *s = vms_kernel_get_stats(f.k);
            CHECK_EQ(vms_sys_mprotect(f.k, f.t[0], va, 4096, VMS_PROT_READ, NULL), VMS_OK);
            CHECK_EQ(s->tlb_sbi_rfence, 1);
            CHECK_EQ(s->tlb_broadcasts, 0);
            CHECK_EQ(s->nr_tlb_remote_flush, 1);
            CHECK_EQ(s->nr_tlb_remote_flush_received, n - 1);
            CHECK_EQ(lg.n, 1);
            CHECK(lg.last.sbi && !lg.last.broadcast && !lg.last.full);
            CHECK(strcmp(lg.method, "SBI remote fence") == 0);
            CHECK_EQ(lg.last.ntargets, n - 1);
            CHECK_EQ(holders(&f, va), 0);
            CHECK_EQ(stale(&f), 0);
            const vms_kernel_costs *kc = &f.kc.cost;
            uint64_t handler = kc->sbi_rfence + f.mc.cost.invlpg; /* + one sfence.vma */
            uint64_t slowest = 0, handlers = 0;
            for (unsigned i = 0; i < lg.last.ntargets && i < 8; i++) {
                unsigned c = lg.targets[i];
                uint64_t lat =
                    kc->ipi_latency + (uint64_t)kc->ipi_hop * vms_machine_hops(f.m, 0, c);
                CHECK_EQ(lg.ack[i], kc->sbi_ecall + kc->ipi_send * (i + 1) + lat + handler + lat);
                CHECK_EQ(vms_core_cycles(vms_machine_core(f.m, c)) - before[c], handler);
                slowest = lg.ack[i] > slowest ? lg.ack[i] : slowest;
                handlers += handler;
            }
            CHECK_EQ(lg.last.cycles, slowest); /* the initiator waited for the slowest ack */
            CHECK_EQ(s->tlb_shootdown_cycles, slowest + handlers);
            vms_kernel_set_shootdown_hook(f.k, NULL, NULL);
            fx_done(&f);
        }
    }
}

/* A range above one page: OpenSBI fences the whole ASID on every hart (its
 * tlb_range_flush_limit is 4 KiB); the kernel's own IPIs flush page by page up to 64. */
static void test_rv_ranges(void)
{
    for (int mode = 0; mode < 2; mode++) {
        fx f;
        REQUIRE_VOID(fx_make(&f, "riscv64", 4, 1, mode ? VMS_SHOOTDOWN_IPI : VMS_SHOOTDOWN_SBI));
        uint64_t va = map(&f, 20), vo = map(&f, 1);
        touch_all(&f, va, 20);
        touch_all(&f, vo, 1);
        uint64_t c1 = vms_core_cycles(vms_machine_core(f.m, 1));
        const vms_kernel_stats *s = vms_kernel_get_stats(f.k);
        CHECK_EQ(vms_sys_mprotect(f.k, f.t[0], va, 20 * 4096, VMS_PROT_READ, NULL), VMS_OK);
        for (unsigned p = 0; p < 20; p++)
            CHECK_EQ(holders(&f, va + p * 4096), 0);
        CHECK_EQ(stale(&f), 0);
        uint64_t h = vms_core_cycles(vms_machine_core(f.m, 1)) - c1;
        if (mode == 0) { /* SBI: one sfence.vma x0, asid per hart; vo went too */
            CHECK_EQ(h, f.kc.cost.sbi_rfence + f.mc.cost.invlpg);
            CHECK_EQ(holders(&f, vo), 0);
            CHECK_EQ(s->tlb_sbi_rfence, 1);
        } else { /* the kernel's IPIs: 20 sfence.vma va, asid; vo kept */
            CHECK_EQ(h, f.kc.cost.ipi + 20 * (uint64_t)f.mc.cost.invlpg);
            CHECK_EQ(holders(&f, vo), 4);
            CHECK_EQ(s->tlb_sbi_rfence, 0);
        }
        /* 40 pages: still page by page with the kernel's IPIs (64, not x86's 33). */
        uint64_t vc = map(&f, 40);
        touch_all(&f, vc, 1);
        c1 = vms_core_cycles(vms_machine_core(f.m, 1));
        CHECK_EQ(vms_sys_mprotect(f.k, f.t[0], vc, 40 * 4096, VMS_PROT_READ, NULL), VMS_OK);
        h = vms_core_cycles(vms_machine_core(f.m, 1)) - c1;
        CHECK_EQ(h, mode ? f.kc.cost.ipi + 40 * (uint64_t)f.mc.cost.invlpg
                         : f.kc.cost.sbi_rfence + f.mc.cost.invlpg);
        CHECK_EQ(holders(&f, vc), 0);
        /* Above 64 pages the kernel's own flush is of the whole ASID too. */
        uint64_t vb = map(&f, 65);
        touch_all(&f, vb, 1);
        c1 = vms_core_cycles(vms_machine_core(f.m, 1));
        CHECK_EQ(vms_sys_munmap(f.k, f.t[0], vb, 65 * 4096, NULL), VMS_OK);
        h = vms_core_cycles(vms_machine_core(f.m, 1)) - c1;
        CHECK_EQ(h, (mode ? f.kc.cost.ipi : f.kc.cost.sbi_rfence) + f.mc.cost.invlpg);
        CHECK_EQ(holders(&f, vb), 0);
        CHECK_EQ(stale(&f), 0);
        fx_done(&f);
    }
}

/* RISC-V's kernel fences every hart of mm_cpumask, lazy ones included (no lazy skip,
 * which is x86's); a hart alone in the mask flushes locally, with no fence. */
static void test_rv_lazy_and_local(void)
{
    fx f;
    REQUIRE_VOID(fx_make(&f, "riscv64", 3, 1, VMS_SHOOTDOWN_AUTO));
    uint64_t va = map(&f, 2);
    touch_all(&f, va, 2);
    CHECK_EQ(vms_task_set_core(f.k, f.t[2], 0, NULL), VMS_OK); /* core 2: idle, mm lazily */
    f.n = 2;
    vms_sched_core_info si;
    vms_sched_get_core(f.k, 2, &si);
    CHECK(si.lazy);
    sd_log lg = {0};
    vms_kernel_set_shootdown_hook(f.k, on_sd, &lg);
    const vms_kernel_stats *s = vms_kernel_get_stats(f.k);
    CHECK_EQ(vms_sys_mprotect(f.k, f.t[0], va, 4096, VMS_PROT_READ, NULL), VMS_OK);
    CHECK_EQ(lg.last.ntargets, 2); /* cores 1 and 2 */
    CHECK_EQ(lg.last.lazy_skipped, 0);
    CHECK_EQ(s->tlb_lazy_skipped, 0);
    CHECK(!tlb_has(&f, 2, asid_of(f.t[0]), va));
    CHECK_EQ(vms_task_set_core(f.k, f.t[1], 0, NULL), VMS_OK);
    f.n = 1;
    /* Cores 1 and 2 are lazy now and still in the mask: fenced (not lazy-skipped). */
    CHECK_EQ(vms_sys_mprotect(f.k, f.t[0], va + 4096, 4096, VMS_PROT_READ, NULL), VMS_OK);
    CHECK_EQ(s->tlb_sbi_rfence, 2);
    fx_done(&f);
    /* One hart alone: a local sfence.vma, no SBI call, no shootdown. */
    REQUIRE_VOID(fx_make(&f, "riscv64", 2, 1, VMS_SHOOTDOWN_AUTO));
    CHECK_EQ(vms_task_set_core(f.k, f.t[1], 0, NULL), VMS_OK);
    f.n = 1;
    vms_task *solo;
    CHECK_EQ(vms_proc_spawn(f.k, "solo", 1, &solo, NULL), VMS_OK); /* core 1 leaves mt */
    va = map(&f, 2);
    touch_all(&f, va, 2);
    s = vms_kernel_get_stats(f.k);
    uint64_t shot = s->tlb_shootdown_cycles;
    CHECK_EQ(vms_sys_mprotect(f.k, f.t[0], va, 2 * 4096, VMS_PROT_READ, NULL), VMS_OK);
    CHECK_EQ(s->tlb_sbi_rfence, 0);
    CHECK_EQ(s->tlb_shootdown_cycles, shot);
    CHECK_EQ(holders(&f, va), 0);
    fx_done(&f);
}

/* What each architecture accepts for kernel.shootdown. */
static void test_modes_refused(void)
{
    static const struct {
        const char *arch;
        vms_shootdown_mode mode;
        const char *msg; /* NULL: accepted */
    } cases[] = {
        {"riscv64", VMS_SHOOTDOWN_BROADCAST, "RISC-V has no broadcast"},
        {"riscv64", VMS_SHOOTDOWN_SBI, NULL},
        {"riscv64", VMS_SHOOTDOWN_IPI, NULL},
        {"aarch64", VMS_SHOOTDOWN_BROADCAST, NULL},
        {"aarch64", VMS_SHOOTDOWN_SBI, "RISC-V's"},
        {"x86_64", VMS_SHOOTDOWN_SBI, "RISC-V's"},
        {"x86_64", VMS_SHOOTDOWN_BROADCAST, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vms_machine_config mc;
        machine_cfg(&mc, cases[i].arch, 2, 1);
        vms_machine *m;
        vms_kernel *k = NULL;
        CHECK_EQ(vms_machine_create(NULL, &mc, &m, NULL), VMS_OK);
        vms_kernel_config kc = kcfg(cases[i].mode);
        vms_err err = {0};
        vms_status st = vms_kernel_create(m, &kc, &k, &err);
        if (cases[i].msg) {
            CHECK_EQ(st, VMS_ERR_INVAL);
            CHECK(strstr(err.msg, cases[i].msg) != NULL);
        } else {
            CHECK_EQ(st, VMS_OK);
        }
        vms_kernel_destroy(k);
        vms_machine_destroy(m);
    }
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "smp_arch");
    test_a64_broadcast();
    test_a64_ceiling();
    test_a64_lazy();
    test_a64_ipi_mode();
    test_a64_tlbi_is_forms();
    test_rv_sbi_timing();
    test_rv_ranges();
    test_rv_lazy_and_local();
    test_modes_refused();
    return th_finish();
}
