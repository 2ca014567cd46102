/*
 * test_events.c — the event tap (vmsim/events.h): the stream tells exactly what happened.
 *
 * A ledger observer rebuilds the counters from the events alone — per core: accesses by
 * kind, every TLB level's lookups/hits/misses/hits by size/fills/evictions/
 * invalidations, walks, walk references (by level), A/D writes, walk faults, PWC-
 * shortened walks, the PWC's lookups/hits by level/misses/fills/invalidations,
 * exceptions, INVLPG/INVPCID/CR3/flush/INVLPGB/TLBSYNC counts, interrupts; for the
 * kernel: page faults by how they ended and what they did (zero page, COW copy/reuse,
 * swap-in, …), swap ins and outs, shootdowns (remote flushes, IPIs, broadcasts, lazy
 * cores skipped, local flushes, shootdown cycles) — and compares each with the stats,
 * after scenarios (examples/scenarios: demo, smp, swap, and two made here: threads
 * on three cores with mprotect/munmap shootdowns, by IPI and by broadcast) and a trace
 * replay (examples/traces/ls.vmt, through the batch path). It also checks that an
 * observer changes no counter (the same JSON stats with and without) and that events
 * are well formed (cores in range, clocks never going back on a core, JSON with a type).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "vmsim/config.h"
#include "vmsim/events.h"
#include "vmsim/replay.h"
#include "vmsim/scenario.h"

static const char *g_argv0;

#define MAXC 8

/* The counters as the events tell them. */
typedef struct ledger {
    vms_core_stats st[MAXC];
    vms_walk_stats ws[MAXC];
    vms_tlb_stats tlb[MAXC][VMS_TLB_NLEVELS];
    vms_pwc_stats pwc[MAXC];
    uint64_t refs_sum[MAXC]; /* the walks' own refs fields, summed */
    vms_kernel_stats ks;     /* the kernel's, where rebuilt (the rest stay 0) */
    uint64_t n[VMS_EV_NTYPES];
    uint64_t last_cycle[MAXC];
    unsigned ncores, bad_core, clock_back, bad_json;
    vms_strbuf sb;
} ledger;

static void tlb_event(ledger *l, const vms_event *e)
{
    unsigned c = (unsigned)e->core;
    switch (e->type) {
    case VMS_EV_TLB_LOOKUP: {
        vms_tlb_stats *t = &l->tlb[c][e->tlb_lookup.level];
        t->lookups++;
        if (e->tlb_lookup.hit) {
            t->hits++;
            t->hits_by_size[e->tlb_lookup.size]++;
        } else {
            t->misses++;
        }
        break;
    }
    case VMS_EV_TLB_FILL:
        l->tlb[c][e->tlb_fill.level].fills++;
        l->tlb[c][e->tlb_fill.level].evictions += e->tlb_fill.evicted;
        break;
    case VMS_EV_TLB_INVALIDATE:
        l->tlb[c][e->tlb_invalidate.level].invalidations += e->tlb_invalidate.count;
        break;
    case VMS_EV_PWC_LOOKUP:
        l->pwc[c].lookups++;
        if (e->pwc_lookup.level)
            l->pwc[c].hits[e->pwc_lookup.level]++;
        else
            l->pwc[c].misses++;
        break;
    case VMS_EV_PWC_FILL:
        l->pwc[c].fills++;
        break;
    case VMS_EV_PWC_INVALIDATE:
        l->pwc[c].invalidations += e->pwc_invalidate.count;
        break;
    default:
        break;
    }
}

static void core_event(ledger *l, const vms_event *e)
{
    unsigned c = (unsigned)e->core;
    vms_core_stats *s = &l->st[c];
    switch (e->type) {
    case VMS_EV_ACCESS:
        s->accesses++;
        s->by_kind[e->access.kind]++;
        break;
    case VMS_EV_WALK_STEP:
        l->ws[c].mem_refs++;
        l->ws[c].refs_by_level[e->walk_step.level]++;
        break;
    case VMS_EV_WALK:
        l->ws[c].walks++;
        l->refs_sum[c] += e->walk.refs;
        l->ws[c].ad_writes += e->walk.ad_writes;
        l->ws[c].faults += !e->walk.ok;
        l->ws[c].pwc_hits += e->walk.pwc_level != 0;
        s->dirty_rewalks += e->walk.reason == VMS_EV_WALK_DIRTY;
        break;
    case VMS_EV_FAULT:
        s->faults_pf += e->fault.kind == VMS_FAULT_PF;
        s->faults_gp += e->fault.kind == VMS_FAULT_GP;
        s->faults_bus += e->fault.kind == VMS_FAULT_BUS;
        s->tlb_hit_faults += e->fault.tlb_hit;
        break;
    case VMS_EV_TLB_OP:
        switch (e->tlb_op.op) {
        case VMS_EV_OP_INVLPG:
            s->invlpg++;
            break;
        case VMS_EV_OP_INVPCID:
            s->invpcid++;
            break;
        case VMS_EV_OP_CR3:
            s->cr3_loads++;
            s->cr3_noflush += !e->tlb_op.flush;
            break;
        case VMS_EV_OP_FLUSH_ALL:
            s->flushes_all++;
            break;
        case VMS_EV_OP_INVLPGB:
            s->invlpgb++;
            break;
        case VMS_EV_OP_INVLPGB_RX:
            s->invlpgb_received++;
            break;
        case VMS_EV_OP_TLBSYNC:
            s->tlbsync++;
            break;
        }
        break;
    case VMS_EV_INTERRUPT:
        s->interrupts++;
        break;
    default:
        tlb_event(l, e);
        break;
    }
}

static void kernel_event(ledger *l, const vms_event *e)
{
    vms_kernel_stats *k = &l->ks;
    switch (e->type) {
    case VMS_EV_FAULT_RESOLVED: {
        uint32_t how = e->fault_resolved.how;
        k->pgfault++;
        k->minor += e->fault_resolved.result == VMS_EV_FAULT_MINOR;
        k->pgmajfault += e->fault_resolved.result == VMS_EV_FAULT_MAJOR;
        k->segv += e->fault_resolved.result == VMS_EV_FAULT_SEGV;
        k->sigbus += e->fault_resolved.result == VMS_EV_FAULT_SIGBUS;
        k->zero_page += (how & VMS_EV_HOW_ZERO_PAGE) != 0;
        k->cow_copy += (how & VMS_EV_HOW_COW_COPY) != 0;
        k->cow_reuse += (how & VMS_EV_HOW_COW_REUSE) != 0;
        k->private_copy += (how & VMS_EV_HOW_PRIVATE_COPY) != 0;
        k->spurious += (how & VMS_EV_HOW_SPURIOUS) != 0;
        k->stack_expand += (how & VMS_EV_HOW_STACK) != 0;
        k->thp_fault_alloc += (how & VMS_EV_HOW_THP) != 0;
        k->swapcache_hits += (how & VMS_EV_HOW_SWAPCACHE) != 0;
        k->fault_around += e->fault_resolved.fault_around;
        break;
    }
    case VMS_EV_SWAP:
        if (e->swap.out) {
            k->pswpout += !e->swap.error;
            k->swap_write_errors += e->swap.error;
        } else {
            k->pswpin += !e->swap.error;
            k->swap_read_errors += e->swap.error;
        }
        break;
    case VMS_EV_SHOOTDOWN:
        k->nr_tlb_remote_flush += e->shootdown.targets != 0;
        k->tlb_broadcasts += e->shootdown.via == VMS_EV_VIA_BROADCAST;
        k->tlb_sbi_rfence += e->shootdown.via == VMS_EV_VIA_SBI;
        k->tlb_invlpgb += e->shootdown.instructions;
        k->tlb_lazy_skipped += e->shootdown.lazy_skipped;
        k->tlb_shootdown_cycles += e->shootdown.cycles;
        k->nr_tlb_local_flush_one += e->shootdown.local_pages;
        k->nr_tlb_local_flush_all += e->shootdown.local_all;
        break;
    case VMS_EV_IPI:
        k->nr_tlb_remote_flush_received++;
        break;
    default:
        break;
    }
}

/* The observer. */
static void on_event(void *ud, const vms_event *e)
{
    ledger *l = ud;
    l->n[e->type < VMS_EV_NTYPES ? e->type : 0]++;
    /* Every fifth event as JSON: it names its type first. */
    if (l->n[e->type] % 5 == 1) {
        l->sb.len = 0;
        char want[64];
        snprintf(want, sizeof want, "{\"type\":\"%s\",", vms_event_type_name(e->type));
        if (vms_event_json(e, &l->sb) != VMS_OK ||
            strncmp(vms_strbuf_str(&l->sb), want, strlen(want)))
            l->bad_json++;
    }
    if (e->core == VMS_EV_NO_CORE) {
        kernel_event(l, e);
        return;
    }
    if (e->core < 0 || (unsigned)e->core >= l->ncores) {
        l->bad_core++;
        return;
    }
    if (e->cycle < l->last_cycle[e->core])
        l->clock_back++;
    l->last_cycle[e->core] = e->cycle;
    core_event(l, e);
    kernel_event(l, e);
}

/* ---- comparing with the stats -------------------------------------------------------- */

/* 1 (and a line naming it) when the events' count differs from the stats'. */
static unsigned differs(const char *name, uint64_t got, uint64_t want, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static unsigned differs(const char *name, uint64_t got, uint64_t want, const char *fmt, ...)
{
    if (got == want)
        return 0;
    char what[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    printf("  %s: %s: events %" PRIu64 ", stats %" PRIu64 "\n", name, what, got, want);
    return 1;
}

#define SAMEF(got, want, ...) (bad += differs(name, (uint64_t)(got), (uint64_t)(want), __VA_ARGS__))
#define SAME(what, got, want) SAMEF(got, want, "%s", what)

static const char *const lvl[] = {"l1i", "l1d", "l2"};

/* Compare the machine's counters with l's; returns the number that differ. */
static unsigned check_machine(const char *name, vms_machine *m, const ledger *l)
{
    unsigned bad = 0;
    for (unsigned c = 0; c < vms_machine_ncores(m); c++) {
        vms_core *core = vms_machine_core(m, c);
        const vms_core_stats *s = vms_core_get_stats(core), *e = &l->st[c];
        SAMEF(e->accesses, s->accesses, "core %u accesses", c);
        for (unsigned k = 0; k < 3; k++)
            SAMEF(e->by_kind[k], s->by_kind[k], "core %u by_kind[%u]", c, k);
#define CORE(f) SAMEF(e->f, s->f, "core %u " #f, c)
        CORE(faults_pf);
        CORE(faults_gp);
        CORE(faults_bus);
        CORE(dirty_rewalks);
        CORE(tlb_hit_faults);
        CORE(invlpg);
        CORE(invpcid);
        CORE(cr3_loads);
        CORE(cr3_noflush);
        CORE(flushes_all);
        CORE(interrupts);
        CORE(invlpgb);
        CORE(invlpgb_received);
        CORE(tlbsync);
        const vms_walk_stats *ws = vms_core_walk_stats(core), *ew = &l->ws[c];
#define WALK(f) SAMEF(ew->f, ws->f, "core %u walk." #f, c)
        WALK(walks);
        WALK(mem_refs);
        WALK(ad_writes);
        WALK(faults);
        WALK(pwc_hits);
        for (unsigned i = 1; i <= 5; i++)
            SAMEF(ew->refs_by_level[i], ws->refs_by_level[i], "core %u refs_by_level[%u]", c, i);
        SAMEF(l->refs_sum[c], ws->mem_refs, "core %u walk refs fields", c);
        for (unsigned t = 0; t < VMS_TLB_NLEVELS; t++) {
            vms_tlb *tlb = vms_core_tlb(core, (vms_tlb_level)t);
            if (!tlb)
                continue;
            const vms_tlb_stats *ts = vms_tlb_get_stats(tlb), *et = &l->tlb[c][t];
#define TLB(f) SAMEF(et->f, ts->f, "core %u %s." #f, c, lvl[t])
            TLB(lookups);
            TLB(hits);
            TLB(misses);
            TLB(fills);
            TLB(evictions);
            TLB(invalidations);
            for (unsigned z = 0; z < VMS_PG_NSIZES; z++)
                SAMEF(et->hits_by_size[z], ts->hits_by_size[z], "core %u %s.hits_by_size[%u]", c,
                      lvl[t], z);
        }
        vms_pwc *pwc = vms_core_pwc(core);
        if (pwc) {
            const vms_pwc_stats *ps = vms_pwc_get_stats(pwc), *ep = &l->pwc[c];
#define PWC(f) SAMEF(ep->f, ps->f, "core %u pwc." #f, c)
            PWC(lookups);
            PWC(misses);
            PWC(fills);
            PWC(invalidations);
            for (unsigned i = 2; i <= 5; i++)
                SAMEF(ep->hits[i], ps->hits[i], "core %u pwc.hits[%u]", c, i);
        }
    }
    return bad;
}

/* Compare the kernel's counters the events rebuild; returns the number that differ. */
static unsigned check_kernel(const char *name, vms_kernel *k, const ledger *l)
{
    unsigned bad = 0;
    const vms_kernel_stats *s = vms_kernel_get_stats(k), *e = &l->ks;
#define KS(f) SAME("kernel " #f, e->f, s->f)
    KS(pgfault);
    KS(minor);
    KS(pgmajfault);
    KS(segv);
    KS(sigbus);
    KS(zero_page);
    KS(cow_copy);
    KS(cow_reuse);
    SAME("kernel cow", e->cow_copy + e->cow_reuse, s->cow);
    KS(private_copy);
    KS(spurious);
    KS(stack_expand);
    KS(fault_around);
    KS(thp_fault_alloc);
    KS(swapcache_hits);
    KS(pswpin);
    KS(pswpout);
    KS(swap_read_errors);
    KS(swap_write_errors);
    KS(nr_tlb_remote_flush);
    KS(nr_tlb_remote_flush_received);
    KS(tlb_broadcasts);
    KS(tlb_sbi_rfence);
    KS(tlb_invlpgb);
    KS(tlb_lazy_skipped);
    KS(tlb_shootdown_cycles);
    KS(nr_tlb_local_flush_one);
    KS(nr_tlb_local_flush_all);
    return bad;
}

/* ---- runs ---------------------------------------------------------------------------- */

typedef struct rig {
    vms_config c;
    vms_machine *m;
    vms_kernel *k;
} rig;

/* Boot from the scenario's set lines (if any) and `sets`, with l (may be NULL) observing
 * from before the kernel boots. */
static bool boot(rig *r, const vms_scenario *sc, const char *const *sets, ledger *l)
{
    vms_err err = {0};
    memset(r, 0, sizeof *r);
    if (vms_config_init(&r->c, "skylake", &err) != VMS_OK ||
        (sc && vms_scenario_configure(sc, &r->c, &err) != VMS_OK)) {
        printf("  config: %s\n", err.msg);
        return false;
    }
    for (; sets && *sets; sets++)
        if (vms_config_set_arg(&r->c, *sets, &err) != VMS_OK) {
            printf("  config: %s\n", err.msg);
            return false;
        }
    if (vms_machine_create(NULL, &r->c.machine, &r->m, &err) != VMS_OK) {
        printf("  machine: %s\n", err.msg);
        return false;
    }
    if (l) {
        memset(l, 0, sizeof *l);
        l->ncores = vms_machine_ncores(r->m);
        vms_strbuf_init(&l->sb, NULL);
        vms_machine_set_observer(r->m, on_event, l);
    }
    vms_kernel_config kc = vms_config_kernel(&r->c);
    if (vms_kernel_create(r->m, &kc, &r->k, &err) != VMS_OK) {
        printf("  kernel: %s\n", err.msg);
        return false;
    }
    return true;
}

static void rig_json(rig *r, vms_strbuf *sb)
{
    vms_strbuf_init(sb, NULL);
    vms_machine_stats_json_members(r->m, sb);
    vms_kernel_stats_json_members(r->k, sb);
}

static void rig_fini(rig *r, ledger *l)
{
    vms_kernel_destroy(r->k);
    vms_machine_destroy(r->m);
    if (l)
        vms_strbuf_free(&l->sb);
}

/* The checks every run ends with: well-formed events and every counter rebuilt. */
static void check_all(const char *name, rig *r, ledger *l)
{
    CHECK(l->ncores <= MAXC);
    CHECK_EQ(l->bad_core, 0u);
    CHECK_EQ(l->clock_back, 0u);
    CHECK_EQ(l->bad_json, 0u);
    CHECK_EQ(check_machine(name, r->m, l), 0u);
    CHECK_EQ(check_kernel(name, r->k, l), 0u);
}

/* Run scenario text (name for messages) with and without an observer: the same counters,
 * and the events rebuild them. Returns the ledger's event counts through n (may be NULL). */
static void scenario(const char *name, const char *text, const char *const *sets,
                     uint64_t n[VMS_EV_NTYPES])
{
    vms_err err = {0};
    vms_scenario *sc = NULL;
    REQUIRE_VOID(vms_scenario_parse(NULL, name, text, &sc, &err) == VMS_OK);
    rig plain, seen;
    ledger *l = calloc(1, sizeof *l);
    REQUIRE_VOID(l);
    vms_scenario_result res0, res1;
    REQUIRE_VOID(boot(&plain, sc, sets, NULL));
    CHECK(vms_scenario_run(sc, plain.k, NULL, NULL, &res0, &err) == VMS_OK);
    REQUIRE_VOID(boot(&seen, sc, sets, l));
    CHECK(vms_scenario_run(sc, seen.k, NULL, NULL, &res1, &err) == VMS_OK);
    CHECK_EQ(res1.expects_failed, res0.expects_failed);
    vms_strbuf a, b;
    rig_json(&plain, &a);
    rig_json(&seen, &b);
    CHECK_STR(vms_strbuf_str(&b), vms_strbuf_str(&a));
    vms_strbuf_free(&a);
    vms_strbuf_free(&b);
    check_all(name, &seen, l);
    if (n)
        memcpy(n, l->n, sizeof l->n);
    rig_fini(&plain, NULL);
    rig_fini(&seen, l);
    free(l);
    vms_scenario_destroy(sc);
}

/* A committed scenario file. */
static void scenario_file(const char *rel, const char *const *sets, uint64_t n[VMS_EV_NTYPES])
{
    char path[1024];
    th_source_path(g_argv0, rel, path, sizeof path);
    FILE *f = fopen(path, "rb");
    REQUIRE_VOID(f);
    static char text[1 << 16];
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = 0;
    scenario(rel, text, sets, n);
}

static void test_demo(void)
{
    uint64_t n[VMS_EV_NTYPES];
    scenario_file("examples/scenarios/demo.scn", NULL, n);
    /* The demo walks, faults, forks (COW) and writes page tables. */
    CHECK(n[VMS_EV_WALK_STEP] > 0);
    CHECK(n[VMS_EV_FAULT_RESOLVED] > 0);
    CHECK(n[VMS_EV_PTE_WRITE] > 0);
    CHECK(n[VMS_EV_TLB_FILL] > 0);
}

static void test_swap(void)
{
    uint64_t n[VMS_EV_NTYPES];
    scenario_file("examples/scenarios/swap.scn", NULL, n);
    CHECK(n[VMS_EV_SWAP] > 0);
}

static void test_smp(void)
{
    scenario_file("examples/scenarios/smp.scn", NULL, NULL);
}

/* Threads on three cores sharing pages, then mprotect and munmap: shootdowns. */
static const char threads_scn[] = "spawn a core 0\n"
                                  "mmap a 0x50000000 64K rw as b\n"
                                  "thread a t1 core 1\n"
                                  "thread a t2 core 2\n"
                                  "write a b \"x\"\n"
                                  "read t1 b 1\n"
                                  "read t2 b 1\n"
                                  "touch t1 b 64K write\n"
                                  "mprotect a b 16K r\n"
                                  "read t2 b 1\n"
                                  "munmap a b 64K\n";

static void test_shootdown_ipi(void)
{
    static const char *const sets[] = {"cores=4", "kernel.shootdown=ipi", NULL};
    uint64_t n[VMS_EV_NTYPES];
    scenario("threads.scn (ipi)", threads_scn, sets, n);
    CHECK(n[VMS_EV_SHOOTDOWN] > 0);
    CHECK(n[VMS_EV_IPI] > 0);
}

static void test_shootdown_broadcast(void)
{
    static const char *const sets[] = {"cores=4", "kernel.shootdown=broadcast", NULL};
    uint64_t n[VMS_EV_NTYPES];
    scenario("threads.scn (broadcast)", threads_scn, sets, n);
    CHECK(n[VMS_EV_SHOOTDOWN] > 0);
    CHECK(n[VMS_EV_TLB_OP] > 0);
}

/* A trace, through the batch path: the observer must not change a counter. */
static void replay_trace(const char *rel, const char *const *sets)
{
    char path[1024];
    th_source_path(g_argv0, rel, path, sizeof path);
    vms_strbuf json[2];
    ledger *l = calloc(1, sizeof *l);
    REQUIRE_VOID(l);
    for (int seen = 0; seen < 2; seen++) {
        rig r;
        vms_err err = {0};
        vms_trace_reader *rd = NULL;
        vms_replay *rp = NULL;
        vms_replay_opts o = {0};
        REQUIRE_VOID(boot(&r, NULL, sets, seen ? l : NULL));
        REQUIRE_VOID(vms_trace_reader_open(path, VMS_TRACE_NATIVE, NULL, &rd, &err) == VMS_OK);
        REQUIRE_VOID(vms_replay_create(r.k, &o, &rp, &err) == VMS_OK);
        CHECK(vms_replay_run(rp, rd, &err) == VMS_OK);
        rig_json(&r, &json[seen]);
        vms_replay_stats_json_members(rp, &json[seen]);
        if (seen)
            check_all(rel, &r, l);
        vms_replay_destroy(rp);
        vms_trace_reader_close(rd);
        rig_fini(&r, seen ? l : NULL);
    }
    CHECK_STR(vms_strbuf_str(&json[1]), vms_strbuf_str(&json[0]));
    CHECK(l->n[VMS_EV_ACCESS] > 100000);
    vms_strbuf_free(&json[0]);
    vms_strbuf_free(&json[1]);
    free(l);
}

static void test_replay(void)
{
    replay_trace("examples/traces/ls.vmt", NULL);
}

/* With caches on, the walk references go through the hierarchy: still exact. */
static void test_replay_caches(void)
{
    static const char *const sets[] = {"cache=skylake", NULL};
    replay_trace("examples/traces/ls.vmt", sets);
}

/* Removing the observer stops the events; names and JSON of every type. */
static void test_api(void)
{
    rig r;
    ledger *l = calloc(1, sizeof *l);
    REQUIRE_VOID(l);
    REQUIRE_VOID(boot(&r, NULL, NULL, l));
    vms_event_fn fn;
    void *ud;
    vms_machine_get_observer(r.m, &fn, &ud);
    CHECK(fn == on_event && ud == l);
    uint64_t before = l->n[VMS_EV_TLB_OP];
    CHECK(before > 0); /* the boot's CR3 loads */
    vms_kernel_set_observer(r.k, NULL, l);
    vms_machine_get_observer(r.m, &fn, &ud);
    CHECK(fn == NULL && ud == NULL);
    vms_core_invlpg(vms_machine_core(r.m, 0), 0x1000);
    CHECK_EQ(l->n[VMS_EV_TLB_OP], before);
    for (int t = 0; t < VMS_EV_NTYPES; t++) {
        vms_event e;
        memset(&e, 0, sizeof e);
        e.type = (vms_event_type)t;
        vms_strbuf sb;
        vms_strbuf_init(&sb, NULL);
        CHECK(vms_event_json(&e, &sb) == VMS_OK);
        CHECK(strcmp(vms_event_type_name(e.type), "?") != 0);
        CHECK(strstr(vms_strbuf_str(&sb), vms_event_type_name(e.type)) != NULL);
        vms_strbuf_free(&sb);
    }
    CHECK_STR(vms_event_type_name(VMS_EV_NTYPES), "?");
    rig_fini(&r, l);
    free(l);
}

int main(int argc, char **argv)
{
    g_argv0 = argv[0];
    th_init(argc, argv, "events");
    test_api();
    test_demo();
    test_swap();
    test_smp();
    test_shootdown_ipi();
    test_shootdown_broadcast();
    test_replay();
    test_replay_caches();
    return th_finish();
}
