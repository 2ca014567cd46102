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
 *
 * Virtual machines (test_vm_*): a guest kernel's page-table writes ("guest_pte_write",
 * with the VM, GPA and HPA) rebuild every entry of its page tables; the minimal pager's
 * writes are trapped exits under shadow paging (as many as exits_ptwrite) and plain
 * writes under nested paging; a passthrough device's DMA names its VM, GPA and HPA (the
 * HPA the VM's own frame for that GPA) and a blocked one its reason.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "vmsim/config.h"
#include "vmsim/dev.h"
#include "vmsim/dma.h"
#include "vmsim/iommu.h"
#include "vmsim/kernel.h"
#include "vmsim/mman.h"
#include "vmsim/proc.h"
#include "vmsim/virt.h"
#include "vmsim/pt.h"
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
    uint64_t refs_sum[MAXC];        /* the walks' own refs fields, summed */
    vms_kernel_stats ks;            /* the kernel's, where rebuilt (the rest stay 0) */
    vms_iommu_stats io;             /* the IOMMU's, where rebuilt */
    uint64_t dma_reads, dma_writes; /* requests devices made */
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
    case VMS_EV_DIRTY_REWALK:
        s->dirty_rewalks++;
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
    case VMS_EV_OOM_KILL:
        k->oom_kill++;
        break;
    case VMS_EV_RECLAIM:
        k->pgsteal_anon += e->reclaim.anon;
        k->pgsteal_file += !e->reclaim.anon;
        k->pgsteal_kswapd += e->reclaim.kswapd;
        k->pgsteal_direct += !e->reclaim.kswapd;
        break;
    case VMS_EV_IOMMU:
        l->io.bypassed += e->iommu.mode == VMS_EV_IOMMU_OFF;
        l->io.translations += e->iommu.mode != VMS_EV_IOMMU_OFF;
        l->io.passthrough += e->iommu.mode == VMS_EV_IOMMU_PASSTHROUGH;
        l->io.walks += e->iommu.walked + e->iommu.served; /* a served page request: twice */
        l->io.walk_refs += e->iommu.refs;
        l->io.page_requests += e->iommu.page_request;
        l->io.page_requests_served += e->iommu.served;
        l->io.faults += !e->iommu.ok;
        l->io.iotlb_hit_faults += e->iommu.hit && !e->iommu.ok;
        break;
    case VMS_EV_DMA:
        l->dma_writes += e->dma.write;
        l->dma_reads += !e->dma.write;
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
    SAME("kernel tlb_invlpgb + tlb_tlbi_is", e->tlb_invlpgb, s->tlb_invlpgb + s->tlb_tlbi_is);
    KS(tlb_lazy_skipped);
    KS(tlb_shootdown_cycles);
    KS(nr_tlb_local_flush_one);
    KS(nr_tlb_local_flush_all);
    KS(oom_kill);
    KS(pgsteal_anon);
    KS(pgsteal_file);
    KS(pgsteal_kswapd);
    KS(pgsteal_direct);
    return bad;
}

/* The IOMMU's counters against the events'. */
static unsigned check_iommu(const char *name, const vms_iommu *io, const ledger *l)
{
    unsigned bad = 0;
    const vms_iommu_stats *s = vms_iommu_get_stats(io);
#define IO(f) SAME("iommu " #f, l->io.f, s->f)
    IO(translations);
    IO(passthrough);
    IO(bypassed);
    IO(walks);
    IO(walk_refs);
    IO(faults);
    IO(iotlb_hit_faults);
    IO(page_requests);
    IO(page_requests_served);
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
    CHECK(n[VMS_EV_RECLAIM] > 0);
    scenario_file("examples/scenarios/files.scn", NULL, n); /* file pages, read and dropped */
    CHECK(n[VMS_EV_FAULT_RESOLVED] > 0);
}

/* A device's DMA through the IOMMU: translated (IOTLB misses, walks, hits), blocked on
 * rights and on a missing page, with no context, passed through, with the IOMMU off. */
static void test_iommu(void)
{
    static ledger l;
    vms_machine_config mc;
    vms_machine *m = NULL;
    vms_iommu *io = NULL;
    vms_dev *dev = NULL;
    REQUIRE_VOID(vms_machine_preset("tiny", &mc, NULL) == VMS_OK);
    REQUIRE_VOID(vms_machine_create(NULL, &mc, &m, NULL) == VMS_OK);
    memset(&l, 0, sizeof l);
    l.ncores = vms_machine_ncores(m);
    vms_strbuf_init(&l.sb, NULL);
    vms_machine_set_observer(m, on_event, &l);
    vms_iommu_config cfg;
    vms_iommu_config_default(&cfg);
    vms_pt_bump b = {vms_machine_ram(m), UINT64_C(0x1000000), 0, 0, 0};
    vms_pt_ops ops = vms_pt_bump_ops(&b);
    vms_pt pt;
    vms_dev_config dc = {"evil", 0x0010, 0};
    if (vms_iommu_create(m, &cfg, &io, NULL) == VMS_OK &&
        vms_pt_init(&pt, vms_machine_bus(m), 4, &ops, NULL) == VMS_OK &&
        vms_dev_create(m, io, &dc, &dev, NULL) == VMS_OK) {
        for (uint64_t p = 0; p < 4; p++) /* IOVA 0x10000.. -> 0x200000.., the last read-only */
            CHECK(vms_pt_map(&pt, 0x10000 + p * 4096, 0x200000 + p * 4096, VMS_PG_4K,
                             VMS_PTE_US | VMS_PTE_RW * (p < 3), NULL) == VMS_OK);
        uint8_t buf[3 * 4096] = {0};
        CHECK(!vms_dev_dma(dev, 0x10000, buf, 16, VMS_ACC_READ).ok); /* no context */
        vms_iommu_context c = {VMS_IOMMU_TRANSLATE, 1, pt.root, 4};
        CHECK(vms_iommu_set_context(io, dc.bdf, &c, NULL) == VMS_OK);
        CHECK(vms_dev_dma(dev, 0x10000, buf, sizeof buf, VMS_ACC_WRITE).ok); /* 3 walks */
        CHECK(vms_dev_dma(dev, 0x10010, buf, 64, VMS_ACC_READ).ok);          /* a hit */
        CHECK(!vms_dev_dma(dev, 0x13000, buf, 8, VMS_ACC_WRITE).ok);         /* read-only */
        CHECK(vms_dev_dma(dev, 0x13000, buf, 8, VMS_ACC_READ).ok);
        CHECK(!vms_dev_dma(dev, 0x13000, buf, 8, VMS_ACC_WRITE).ok); /* on cached rights */
        CHECK(!vms_dev_dma(dev, 0x40000, buf, 8, VMS_ACC_READ).ok);  /* not mapped */
        vms_iommu_context pass = {VMS_IOMMU_PASSTHROUGH, 0, 0, 0};
        CHECK(vms_iommu_set_context(io, dc.bdf, &pass, NULL) == VMS_OK);
        CHECK(vms_dev_dma(dev, 0x200000, buf, 8, VMS_ACC_READ).ok);
        vms_iommu_set_enabled(io, false);
        CHECK(vms_dev_dma(dev, 0x200000, buf, 8, VMS_ACC_READ).ok);
        const char *name = "iommu";
        CHECK_EQ(check_iommu(name, io, &l), 0u);
        CHECK_EQ(check_machine(name, m, &l), 0u);
        CHECK_EQ(l.dma_reads + l.dma_writes, 9u);
        CHECK(l.io.walks >= 3 && l.io.faults >= 4 && l.io.iotlb_hit_faults >= 1);
        CHECK_EQ(l.bad_json, 0u);
    } else {
        CHECK(!"iommu fixture");
    }
    vms_dev_destroy(dev);
    vms_iommu_destroy(io);
    vms_machine_destroy(m);
    vms_strbuf_free(&l.sb);
}

/* The software-managed TLB (MIPS): the kernel's refill handler walks, the memo is off. */
static void test_swtlb(void)
{
    static const char *const sets[] = {"tlb.mode=software", NULL};
    uint64_t n[VMS_EV_NTYPES];
    scenario_file("examples/scenarios/demo.scn", sets, n);
    CHECK(n[VMS_EV_WALK] > 0 && n[VMS_EV_WALK_STEP] > 0);
}

/* Other formats' walkers: RISC-V Sv48 and AArch64. */
static void test_formats(void)
{
    static const char *const rv[] = {"arch=riscv64", NULL}, *const a64[] = {"arch=aarch64", NULL};
    scenario_file("examples/scenarios/demo.scn", rv, NULL);
    scenario_file("examples/scenarios/demo.scn", a64, NULL);
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

/* ---- virtual machines ---- */

/* A and D: what the hardware's walks set in the guest's entries besides the kernel's
 * writes (walk_step "set", not guest_pte_write), so left out of the comparisons. */
#define HW_AD       (VMS_PTE_A | VMS_PTE_D)
#define VMREC_SLOTS (1u << 16) /* open addressing: entry GPA -> last value, host address */

/* What the VM events told: the guest's page-table entries as its writes left them. */
typedef struct vmrec {
    uint32_t vm;         /* the VM expected in every event */
    uint64_t n, trapped; /* guest_pte_write events, of which trapped */
    uint64_t bad_vm;     /* events naming another VM */
    uint64_t bad_old;    /* an entry's "old" other than what the last write left */
    uint64_t used;       /* slots in use */
    uint64_t key[VMREC_SLOTS], val[VMREC_SLOTS], hpa[VMREC_SLOTS];
    /* passthrough: iommu and dma events of the VM's device */
    uint64_t io_ok, io_blocked, io_bad, dma_vm, dma_other;
    uint64_t last_gpa, last_hpa;
    unsigned last_reason;
} vmrec;

/* The slot of gpa (key + 1 stored: 0 is empty), or NULL when the table is full. */
static uint64_t *vmrec_slot(vmrec *r, uint64_t gpa, size_t *at)
{
    size_t i = (size_t)((gpa >> 3) * UINT64_C(0x9e3779b97f4a7c15) >> 48) & (VMREC_SLOTS - 1);
    for (size_t n = 0; n < VMREC_SLOTS; n++, i = (i + 1) & (VMREC_SLOTS - 1))
        if (r->key[i] == 0 || r->key[i] == gpa + 1) {
            *at = i;
            return &r->key[i];
        }
    return NULL;
}

static void on_vm_event(void *ud, const vms_event *e)
{
    vmrec *r = ud;
    if (e->type == VMS_EV_GUEST_PTE_WRITE) {
        uint64_t gpa = e->guest_pte_write.gpa, old = e->guest_pte_write.old;
        r->n++;
        r->trapped += e->guest_pte_write.trapped;
        r->bad_vm += e->guest_pte_write.vm != r->vm;
        size_t i;
        uint64_t *k = vmrec_slot(r, gpa, &i);
        if (!k)
            return;
        if (*k == 0) {
            *k = gpa + 1;
            r->used++;
            r->bad_old += old != 0; /* a fresh table page is zeroed */
        } else {
            r->bad_old += (old & ~HW_AD) != r->val[i];
        }
        r->val[i] = e->guest_pte_write.pte & ~HW_AD;
        r->hpa[i] = e->guest_pte_write.hpa;
    } else if (e->type == VMS_EV_IOMMU && e->iommu.vm) {
        r->io_bad += e->iommu.vm != r->vm || e->iommu.mode != VMS_EV_IOMMU_TRANSLATE;
        r->io_ok += e->iommu.ok;
        r->io_blocked += !e->iommu.ok;
        r->last_gpa = e->iommu.iova;
        r->last_hpa = e->iommu.ok ? e->iommu.pa : 0;
        r->last_reason = e->iommu.reason;
    } else if (e->type == VMS_EV_DMA) {
        r->dma_vm += e->dma.vm == r->vm;
        r->dma_other += e->dma.vm != r->vm;
    }
}

/* Every present entry of the guest table at gpa (level `level`, x86-64) and below must
 * be what the events said was written there; counts the entries checked. */
static void check_tree(vms_guest *g, vmrec *r, uint64_t table, unsigned level, uint64_t *checked,
                       uint64_t *wrong)
{
    vms_bus *gbus = vms_guest_bus(g);
    for (unsigned i = 0; i < 512; i++) {
        uint64_t gpa = table + 8u * i, pte = 0, hpa = 0;
        CHECK_EQ(vms_bus_read64(gbus, gpa, &pte), VMS_OK);
        if (pte == 0)
            continue;
        size_t at;
        uint64_t *k = vmrec_slot(r, gpa, &at);
        bool ok = k && *k == gpa + 1 && r->val[at] == (pte & ~HW_AD) &&
                  vms_guest_hpa(g, gpa, &hpa) && r->hpa[at] == hpa;
        *wrong += !ok;
        (*checked)++;
        if ((pte & VMS_PTE_P) && level > 1 && !(level <= 3 && (pte & VMS_PTE_PS)))
            check_tree(g, r, pte & VMS_PTE_ADDR_MASK, level - 1, checked, wrong);
    }
}

/* A guest kernel (EPT or NPT): its page-table writes, reported with the VM, rebuild its
 * tables (boot, spawn, faults, fork's COW write-protection, COW breaks, munmap). */
static void test_vm_pte_writes(vms_s2_kind kind)
{
    vms_machine_config mc;
    vms_machine *m = NULL;
    REQUIRE_VOID(vms_machine_preset("skylake", &mc, NULL) == VMS_OK);
    mc.ram_bytes = UINT64_C(1) << 30;
    mc.ncores = 2;
    REQUIRE_VOID(vms_machine_create(NULL, &mc, &m, NULL) == VMS_OK);
    vmrec *r = calloc(1, sizeof *r);
    REQUIRE_VOID(r);
    r->vm = 3;
    vms_machine_set_observer(m, on_vm_event, r); /* before the guest kernel boots */
    vms_kernel_config kc;
    vms_kernel_config_default(&kc);
    kc.seed = th_seed;
    vms_guest_config gc = {0};
    gc.kind = kind;
    gc.guest_mem = UINT64_C(32) << 20;
    gc.s2_tables_at = UINT64_C(256) << 20;
    gc.host_at = gc.s2_tables_at + (UINT64_C(4) << 20);
    gc.host_end = gc.host_at + (UINT64_C(64) << 20);
    gc.vpid = r->vm;
    gc.kernel = &kc;
    gc.ad = true;
    gc.seed = th_seed;
    vms_guest *g = NULL;
    vms_err err = {0};
    CHECK_EQ(vms_guest_create(m, &gc, &g, &err), VMS_OK);
    if (!g) {
        vms_machine_destroy(m);
        free(r);
        return;
    }
    uint64_t boot = r->n;
    vms_kernel *k = vms_guest_kernel(g);
    vms_task *a = NULL, *b = NULL;
    uint64_t base = 0, v = 0;
    const uint64_t npages = 96;
    CHECK_EQ(vms_proc_spawn(k, "pt", 0, &a, NULL), VMS_OK);
    CHECK_EQ(vms_sys_mmap(k, a, 0, npages << VMS_PAGE_SHIFT, VMS_PROT_READ | VMS_PROT_WRITE,
                          VMS_MAP_PRIVATE | VMS_MAP_ANONYMOUS, NULL, 0, &base, NULL),
             VMS_OK);
    for (uint64_t i = 0; i < npages; i++) {
        v = i;
        CHECK_EQ(vms_proc_write(k, a, base + (i << VMS_PAGE_SHIFT), &v, 8), VMS_ACCESS_OK);
    }
    CHECK_EQ(vms_proc_fork(k, a, &b, NULL), VMS_OK);
    for (uint64_t i = 0; i < npages; i += 2)
        CHECK_EQ(vms_proc_write(k, i % 4 ? a : b, base + (i << VMS_PAGE_SHIFT), &v, 8),
                 VMS_ACCESS_OK);
    CHECK_EQ(vms_sys_munmap(k, b, base + (16 << VMS_PAGE_SHIFT), 16 << VMS_PAGE_SHIFT, NULL),
             VMS_OK);
    CHECK(boot > 0 && r->n > boot);
    CHECK_EQ(r->bad_vm, 0);
    CHECK_EQ(r->trapped, 0);
    CHECK_EQ(r->bad_old, 0);
    CHECK(r->used < VMREC_SLOTS);
    uint64_t checked = 0, wrong = 0;
    vms_task *t[2] = {a, b};
    for (unsigned i = 0; i < 2; i++) {
        vms_task_info ti;
        vms_task_get_info(t[i], &ti);
        check_tree(g, r, ti.cr3 & VMS_PTE_ADDR_MASK, 4, &checked, &wrong);
    }
    CHECK(checked > 2 * npages - 16); /* both processes' leaves, and the tables above */
    CHECK_EQ(wrong, 0);
    printf("vm events (%s): %llu guest page-table writes (%llu at boot) rebuild all %llu entries "
           "of two processes' tables\n",
           kind == VMS_S2_EPT ? "EPT" : "NPT", (unsigned long long)r->n, (unsigned long long)boot,
           (unsigned long long)checked);
    vms_proc_exit(k, b);
    vms_proc_exit(k, a);
    vms_guest_destroy(g);
    vms_machine_destroy(m);
    free(r);
}

/* The minimal pager's table writes: trapped exits under shadow paging, one event per
 * exits_ptwrite; plain writes under nested paging, one per guest-bus write. */
static void test_vm_shadow(void)
{
    for (int shadow = 0; shadow < 2; shadow++) {
        vms_machine_config mc;
        vms_machine *m = NULL;
        REQUIRE_VOID(vms_machine_preset("tiny", &mc, NULL) == VMS_OK);
        mc.ram_bytes = UINT64_C(8) << 30;
        REQUIRE_VOID(vms_machine_create(NULL, &mc, &m, NULL) == VMS_OK);
        vmrec *r = calloc(1, sizeof *r);
        REQUIRE_VOID(r);
        r->vm = 5;
        vms_machine_set_observer(m, on_vm_event, r);
        vms_vm_config vc = {.kind = VMS_S2_EPT,
                            .host_page = VMS_PG_4K,
                            .ad = true,
                            .guest_mem = UINT64_C(1) << 30,
                            .s2_tables_at = UINT64_C(0x100000),
                            .host_at = UINT64_C(4) << 30,
                            .host_end = UINT64_C(5) << 30,
                            .vpid = r->vm,
                            .shadow = shadow != 0};
        vms_vm *vm = NULL;
        CHECK_EQ(vms_vm_create(m, &vc, &vm, NULL), VMS_OK);
        vms_core *c = vms_machine_core(m, 0);
        if (vm && vms_vm_enter(vm, c) == VMS_OK) {
            vms_fault f;
            for (unsigned i = 0; i < 40; i++) /* 40 pages over 2 leaf tables */
                CHECK(vms_vm_access(vm, c, 0x1ff000 + (uint64_t)i * 4096,
                                    i % 3 ? VMS_ACC_WRITE : VMS_ACC_READ, 8, &f));
            vms_vm_leave(vm, c);
            const vms_vm_stats *st = vms_vm_get_stats(vm);
            CHECK(r->n >= 40);
            CHECK_EQ(r->bad_vm, 0);
            CHECK_EQ(r->bad_old, 0);
            if (shadow) {
                CHECK_EQ(r->trapped, r->n);
                CHECK_EQ(r->n, st->exits_ptwrite);
            } else {
                CHECK_EQ(r->trapped, 0);
                CHECK_EQ(r->n, vms_nested_get_stats(vms_vm_nested(vm))->gbus_writes);
            }
            printf("vm events (%s): %llu guest page-table writes, %llu of them trapped\n",
                   shadow ? "shadow" : "nested", (unsigned long long)r->n,
                   (unsigned long long)r->trapped);
        } else {
            CHECK(!"vm fixture");
        }
        vms_vm_destroy(vm);
        vms_machine_destroy(m);
        free(r);
    }
}

/* A NIC assigned to a VM: its DMA names the VM, the GPA and the HPA (the VM's frame for
 * that GPA); a DMA beyond the VM's memory is blocked with its reason, naming the VM. */
static void test_vm_dma(void)
{
    vms_machine_config mc;
    vms_machine *m = NULL;
    REQUIRE_VOID(vms_machine_preset("skylake", &mc, NULL) == VMS_OK);
    mc.ram_bytes = UINT64_C(1) << 30;
    mc.ncores = 2;
    REQUIRE_VOID(vms_machine_create(NULL, &mc, &m, NULL) == VMS_OK);
    vmrec *r = calloc(1, sizeof *r);
    REQUIRE_VOID(r);
    r->vm = 9;
    vms_machine_set_observer(m, on_vm_event, r);
    vms_kernel_config kc;
    vms_kernel_config_default(&kc);
    kc.seed = th_seed;
    vms_kernel *hk = NULL;
    vms_iommu *io = NULL;
    vms_iommu_config ic;
    vms_iommu_config_default(&ic);
    vms_guest *g = NULL;
    vms_dev *dev = NULL;
    vms_guest_config gc = {.kind = VMS_S2_EPT,
                           .guest_mem = UINT64_C(32) << 20,
                           .s2_tables_at = UINT64_C(512) << 20,
                           .host_at = UINT64_C(516) << 20,
                           .host_end = UINT64_C(580) << 20,
                           .vpid = r->vm,
                           .kernel = &kc,
                           .seed = th_seed};
    vms_dev_config dc = {"vf0", vms_bdf_make(0, 6, 0), 0};
    if (vms_kernel_create(m, &kc, &hk, NULL) == VMS_OK &&
        vms_iommu_create(m, &ic, &io, NULL) == VMS_OK &&
        vms_dma_iommu_enable(hk, io, true, NULL) == VMS_OK &&
        (gc.host_kernel = hk, vms_guest_create(m, &gc, &g, NULL) == VMS_OK) &&
        vms_dev_create(m, io, &dc, &dev, NULL) == VMS_OK) {
        vms_guest_dev_config gd = {4, false};
        CHECK_EQ(vms_guest_assign_device(g, dev, &gd, NULL), VMS_OK);
        vms_kernel *k = vms_guest_kernel(g);
        vms_task *t = NULL;
        uint64_t va = 0, pm = 0, hpa = 0;
        CHECK_EQ(vms_proc_spawn(k, "io", 0, &t, NULL), VMS_OK);
        CHECK_EQ(vms_sys_mmap(k, t, 0, VMS_PAGE_SIZE, VMS_PROT_READ | VMS_PROT_WRITE,
                              VMS_MAP_PRIVATE | VMS_MAP_ANONYMOUS, NULL, 0, &va, NULL),
                 VMS_OK);
        uint64_t word = 0x1234;
        CHECK_EQ(vms_proc_write(k, t, va, &word, 8), VMS_ACCESS_OK);
        CHECK_EQ(vms_proc_pagemap(k, t, va, 1, &pm), VMS_OK);
        uint64_t gpa = ((pm & VMS_PM_PFN_MASK) << VMS_PAGE_SHIFT) + 0x40;
        CHECK(vms_guest_hpa(g, gpa, &hpa));
        word = 0xfeed;
        CHECK(vms_dev_dma(dev, gpa, &word, 8, VMS_ACC_WRITE).ok);
        CHECK_EQ(r->io_ok, 1);
        CHECK_EQ(r->last_gpa, gpa);
        CHECK_EQ(r->last_hpa, hpa);
        uint64_t far = UINT64_C(64) << 20;
        CHECK(!vms_dev_dma(dev, far, &word, 8, VMS_ACC_READ).ok);
        CHECK_EQ(r->io_blocked, 1);
        CHECK_EQ(r->last_gpa, far);
        CHECK_EQ(r->last_reason, VMS_IOMMU_NOT_PRESENT);
        CHECK_EQ(r->io_bad, 0);
        CHECK_EQ(r->dma_vm, 2);
        CHECK_EQ(r->dma_other, 0);
        /* the JSON names them */
        vms_event e = {.type = VMS_EV_IOMMU};
        e.iommu.rid = dc.bdf;
        e.iommu.iova = gpa;
        e.iommu.mode = VMS_EV_IOMMU_TRANSLATE;
        e.iommu.ok = true;
        e.iommu.pa = hpa;
        e.iommu.vm = r->vm;
        vms_strbuf sb;
        vms_strbuf_init(&sb, NULL);
        char want[160];
        CHECK_EQ(vms_event_json(&e, &sb), VMS_OK);
        snprintf(want, sizeof want,
                 ",\"pa\":\"0x%llx\",\"vm\":9,\"gpa\":\"0x%llx\",\"hpa\":\"0x%llx\"}",
                 (unsigned long long)hpa, (unsigned long long)gpa, (unsigned long long)hpa);
        CHECK(strstr(vms_strbuf_str(&sb), want) != NULL);
        vms_strbuf_free(&sb);
        vms_strbuf_init(&sb, NULL);
        e = (vms_event){.type = VMS_EV_GUEST_PTE_WRITE,
                        .guest_pte_write = {9, 0x3008, 0x20003008, 0, 0x4007, true}};
        CHECK_EQ(vms_event_json(&e, &sb), VMS_OK);
        CHECK_STR(
            vms_strbuf_str(&sb),
            "{\"type\":\"guest_pte_write\",\"cycle\":0,\"core\":0,\"vm\":9,\"gpa\":\"0x3008\","
            "\"hpa\":\"0x20003008\",\"old\":\"0x0\",\"pte\":\"0x4007\",\"trapped\":true}");
        vms_strbuf_free(&sb);
        printf("vm events (passthrough): DMA to GPA 0x%llx reported at HPA 0x%llx for VM %u; "
               "GPA 0x%llx blocked (%s)\n",
               (unsigned long long)gpa, (unsigned long long)hpa, (unsigned)r->vm,
               (unsigned long long)far, vms_iommu_reason_str((vms_iommu_reason)r->last_reason));
        vms_proc_exit(k, t);
    } else {
        CHECK(!"passthrough fixture");
    }
    vms_guest_destroy(g);
    vms_dev_destroy(dev);
    if (hk)
        vms_dma_detach_all(hk);
    vms_kernel_destroy(hk);
    vms_iommu_destroy(io);
    vms_machine_destroy(m);
    free(r);
}

int main(int argc, char **argv)
{
    g_argv0 = argv[0];
    th_init(argc, argv, "events");
    test_api();
    test_demo();
    test_swap();
    test_smp();
    test_swtlb();
    test_formats();
    test_iommu();
    test_shootdown_ipi();
    test_shootdown_broadcast();
    test_replay();
    test_replay_caches();
    test_vm_pte_writes(VMS_S2_EPT);
    test_vm_pte_writes(VMS_S2_NPT);
    test_vm_shadow();
    test_vm_dma();
    return th_finish();
}
