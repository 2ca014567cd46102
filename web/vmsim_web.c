/*
 * vmsim_web.c — the web visualizer's glue: the library (src/, compiled to WebAssembly by
 * emscripten, web/CMakeLists.txt) driven one scenario command at a time, and its state
 * read back as JSON strings for the page (web/app.js). Everything here is public API:
 * scenarios run through vms_scenario_start/next (the same code `vmsim run` uses), the
 * page tables are read from simulated RAM, the TLBs through vms_tlb_entry, the frames'
 * sharing through vms_frames_meta, swap slots from the entries (vms_fmt_swap_offset), the IOMMU
 * through vms_dma_show. Nothing here changes the machine except vw_step: entries are
 * read straight from RAM (vms_ram_read64), not through the bus, whose counters are part of
 * the results, and TLBs are probed, not looked up; so a page that draws the state after
 * every step reports the same counters as `vmsim run` (tests/web/web.sh checks it).
 *
 * One session at a time (the page has one): vw_load replaces it. Each function returns
 * a JSON text in a buffer the session owns, valid until the next call. The same file
 * builds natively (tests/test_web.c), so its answers are tested under ASan too.
 *
 * Addresses and 64-bit values are JSON strings ("0x1a2b…"): JavaScript numbers hold 53
 * bits. Counters are numbers.
 */
#include "vmsim_web.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmsim/config.h"
#include "vmsim/dma.h"
#include "vmsim/events.h"
#include "vmsim/format.h"
#include "vmsim/frames.h"
#include "vmsim/proc.h"
#include "vmsim/ram.h"
#include "vmsim/scenario.h"
#include "vmsim/swap.h"
#include "vmsim/tlb.h"
#include "vmsim/version.h"
#include "vmsim/walk.h"

#ifdef __EMSCRIPTEN__
#include <emscripten.h>
#define VW_EXPORT EMSCRIPTEN_KEEPALIVE
#else
#define VW_EXPORT
#endif

/* Page-table entries listed per process (a 2 MiB touch maps 512 of them; the kernel half
 * is a few huge pages); the listing says when it stopped early. */
#define PT_MAX_ENTRIES 8192

/* ---- JSON helpers ---- */

static void jhex(vms_strbuf *sb, uint64_t v)
{
    vms_strbuf_printf(sb, "\"0x%" PRIx64 "\"", v);
}

static void jkey(vms_strbuf *sb, const char *key)
{
    vms_strbuf_json_str(sb, key);
    vms_strbuf_printf(sb, ":");
}

/* ---- the step's events (vmsim/events.h): what the hardware and the kernel did ---- */

#define EV_TIMELINE 300 /* events of a step kept whole, in order (the rest are counted) */
#define EV_PTEPS    512 /* distinct entries read / written per step kept for lighting */
#define EV_LIST     128 /* events kept per panel (TLB fills, faults, swap, DMA, flushes) */

/* A panel's events: JSON objects (vms_event_json), comma-separated, at most EV_LIST. */
typedef struct ev_list {
    vms_strbuf json;
    unsigned n;
    unsigned long long dropped;
} ev_list;

typedef struct step_events {
    unsigned long long counts[VMS_EV_NTYPES], total;
    ev_list timeline, fills, faults, swap, io, flushes;
    uint64_t read[EV_PTEPS], read_set[EV_PTEPS]; /* entries walks read; bits they set */
    unsigned nread;
    bool read_more;
    uint64_t written[EV_PTEPS]; /* entries the kernel wrote */
    unsigned nwritten;
    bool written_more;
} step_events;

static void ev_keep(ev_list *l, unsigned max, const vms_event *ev)
{
    if (l->n >= max) {
        l->dropped++;
        return;
    }
    vms_strbuf_printf(&l->json, "%s", l->n ? "," : "");
    vms_event_json(ev, &l->json);
    l->n++;
}

static void ev_list_reset(ev_list *l)
{
    vms_strbuf_free(&l->json);
    vms_strbuf_init(&l->json, NULL);
    l->n = 0;
    l->dropped = 0;
}

static void add_ptep(uint64_t *list, uint64_t *set, unsigned *n, bool *more, uint64_t ptep,
                     uint64_t bits)
{
    for (unsigned i = 0; i < *n; i++)
        if (list[i] == ptep) {
            if (set)
                set[i] |= bits;
            return;
        }
    if (*n == EV_PTEPS) {
        *more = true;
        return;
    }
    if (set)
        set[*n] = bits;
    list[(*n)++] = ptep;
}

/* The observer (installed on the machine before the run starts, so the scenario's own
 * narration chains to it): counts every event, keeps the first ones whole, and gathers
 * what the page lights: the entries walks read (and the A/D bits they set), the entries
 * the kernel wrote, TLB fills, faults and how they were resolved, swap I/O, DMA and
 * IOMMU decisions, invalidations and shootdowns. */
static void on_event(void *ud, const vms_event *ev)
{
    step_events *e = ud;
    e->total++;
    if ((unsigned)ev->type < VMS_EV_NTYPES)
        e->counts[ev->type]++;
    ev_keep(&e->timeline, EV_TIMELINE, ev);
    switch (ev->type) {
    case VMS_EV_WALK_STEP:
        add_ptep(e->read, e->read_set, &e->nread, &e->read_more, ev->walk_step.ptep,
                 ev->walk_step.set);
        break;
    case VMS_EV_PTE_WRITE:
        add_ptep(e->written, NULL, &e->nwritten, &e->written_more, ev->pte_write.ptep, 0);
        break;
    case VMS_EV_TLB_FILL:
        ev_keep(&e->fills, EV_LIST, ev);
        break;
    case VMS_EV_FAULT:
    case VMS_EV_FAULT_RESOLVED:
        ev_keep(&e->faults, EV_LIST, ev);
        break;
    case VMS_EV_SWAP:
        ev_keep(&e->swap, EV_LIST, ev);
        break;
    case VMS_EV_DMA:
    case VMS_EV_IOMMU:
        ev_keep(&e->io, EV_LIST, ev);
        break;
    case VMS_EV_TLB_INVALIDATE:
    case VMS_EV_PWC_INVALIDATE:
    case VMS_EV_TLB_OP:
    case VMS_EV_SHOOTDOWN:
    case VMS_EV_IPI:
        ev_keep(&e->flushes, EV_LIST, ev);
        break;
    default:
        break;
    }
}

static void ev_reset(step_events *e)
{
    memset(e->counts, 0, sizeof e->counts);
    e->total = 0;
    ev_list_reset(&e->timeline);
    ev_list_reset(&e->fills);
    ev_list_reset(&e->faults);
    ev_list_reset(&e->swap);
    ev_list_reset(&e->io);
    ev_list_reset(&e->flushes);
    e->nread = e->nwritten = 0;
    e->read_more = e->written_more = false;
}

static void ev_free(step_events *e)
{
    vms_strbuf_free(&e->timeline.json);
    vms_strbuf_free(&e->fills.json);
    vms_strbuf_free(&e->faults.json);
    vms_strbuf_free(&e->swap.json);
    vms_strbuf_free(&e->io.json);
    vms_strbuf_free(&e->flushes.json);
}

static void json_pteps(vms_strbuf *sb, const uint64_t *list, const uint64_t *set, unsigned n)
{
    vms_strbuf_printf(sb, "[");
    for (unsigned i = 0; i < n; i++) {
        vms_strbuf_printf(sb, "%s{\"ptep\":", i ? "," : "");
        jhex(sb, list[i]);
        if (set) {
            vms_strbuf_printf(sb, ",\"set\":");
            jhex(sb, set[i]);
        }
        vms_strbuf_printf(sb, "}");
    }
    vms_strbuf_printf(sb, "]");
}

static void json_list(vms_strbuf *sb, const char *key, const ev_list *l)
{
    vms_strbuf_printf(sb, ",");
    jkey(sb, key);
    vms_strbuf_printf(sb, "[%s],", vms_strbuf_str(&l->json));
    char more[64];
    snprintf(more, sizeof more, "%s_dropped", key);
    jkey(sb, more);
    vms_strbuf_printf(sb, "%llu", l->dropped);
}

/* The step's events as the "events" member of vw_step's answer. */
static void events_json(vms_strbuf *sb, const step_events *e)
{
    vms_strbuf_printf(sb, ",\"events\":{\"total\":%llu,\"counts\":{", e->total);
    unsigned n = 0;
    for (unsigned t = 0; t < VMS_EV_NTYPES; t++)
        if (e->counts[t])
            vms_strbuf_printf(sb, "%s\"%s\":%llu", n++ ? "," : "",
                              vms_event_type_name((vms_event_type)t), e->counts[t]);
    vms_strbuf_printf(sb, "},\"read\":");
    json_pteps(sb, e->read, e->read_set, e->nread);
    vms_strbuf_printf(sb, ",\"read_more\":%s,\"written\":", e->read_more ? "true" : "false");
    json_pteps(sb, e->written, NULL, e->nwritten);
    vms_strbuf_printf(sb, ",\"written_more\":%s", e->written_more ? "true" : "false");
    json_list(sb, "fills", &e->fills);
    json_list(sb, "faults", &e->faults);
    json_list(sb, "swap", &e->swap);
    json_list(sb, "io", &e->io);
    json_list(sb, "flushes", &e->flushes);
    json_list(sb, "timeline", &e->timeline);
    vms_strbuf_printf(sb, "}");
}

typedef struct session {
    vms_scenario *sc;
    vms_config cfg, shown; /* shown: as the user gave it (no writeback directory) */
    vms_machine *m;
    vms_kernel *k;
    vms_scenario_exec *ex;
    vms_scenario_result res; /* the result once finished */
    bool finished;           /* vms_scenario_finish ran */
    vms_status end;          /* its status */
    vms_err end_err;
    vms_strbuf out, err, log; /* narration, failures, kernel log of the current step */
    vms_strbuf json;          /* the answer being built */
    vms_strbuf iommu;         /* `show iommu` just before the run finished */
    step_events ev;           /* what the current step did, from the event tap */
    /* The scenario's process names and the tid each last had (kept past the end of the
     * run, when vms_scenario_proc is gone): a forked child keeps its parent's kernel
     * name, so the page names processes as the scenario does. */
    struct {
        char name[64];
        int tid;
    } names[64];
    unsigned nnames;
} session;

static session g; /* the page's one session */

static const char *answer(void)
{
    return g.json.failed ? "{\"ok\":false,\"error\":\"out of memory\"}" : vms_strbuf_str(&g.json);
}

static void reset_json(void)
{
    vms_strbuf_free(&g.json);
    vms_strbuf_init(&g.json, NULL);
}

static const char *fail(const char *msg)
{
    reset_json();
    vms_strbuf_printf(&g.json, "{\"ok\":false,\"error\":");
    vms_strbuf_json_str(&g.json, msg);
    vms_strbuf_printf(&g.json, "}");
    return answer();
}

/* ---- the session ---- */

static void on_out(void *ud, bool is_error, const char *text)
{
    (void)ud;
    vms_strbuf_printf(is_error ? &g.err : &g.out, "%s", text);
}

static void on_log(void *ud, vms_log_level level, const char *msg)
{
    (void)ud;
    (void)level;
    vms_strbuf_printf(&g.log, "[kernel] %s\n", msg);
}

/* Note the tid of every scenario process name that runs now. */
static void note_names(void)
{
    vms_task *t;
    const char *name;
    for (size_t i = 0; (name = vms_scenario_proc(g.ex, i, &t)) != NULL; i++) {
        if (!t)
            continue;
        unsigned j = 0;
        while (j < g.nnames && strcmp(g.names[j].name, name) != 0)
            j++;
        if (j == g.nnames) {
            if (g.nnames == sizeof g.names / sizeof g.names[0])
                continue;
            snprintf(g.names[g.nnames++].name, sizeof g.names[0].name, "%s", name);
        }
        g.names[j].tid = vms_task_tid(t);
    }
}

/* The scenario's name for the task with this tid (NULL: none). */
static const char *scn_name(int tid)
{
    for (unsigned j = 0; j < g.nnames; j++)
        if (g.names[j].tid == tid)
            return g.names[j].name;
    return NULL;
}

static void finish(void)
{
    if (g.ex && !g.finished) {
        /* vms_scenario_finish detaches the scenario's devices (as `vmsim run` does before
         * it prints the counters): keep what they looked like for the page. */
        vms_dma_show(g.k, &g.iommu);
        g.res = *vms_scenario_exec_result(g.ex);
        g.end = vms_scenario_finish(g.ex, &g.end_err);
        g.ex = NULL;
        g.finished = true;
    }
}

VW_EXPORT void vw_unload(void)
{
    if (g.ex)
        vms_scenario_finish(g.ex, NULL);
    vms_kernel_destroy(g.k);
    vms_machine_destroy(g.m);
    vms_scenario_destroy(g.sc);
    vms_strbuf_free(&g.out);
    vms_strbuf_free(&g.err);
    vms_strbuf_free(&g.log);
    vms_strbuf_free(&g.json);
    vms_strbuf_free(&g.iommu);
    ev_free(&g.ev);
    memset(&g, 0, sizeof g);
}

static vms_status web_err(vms_err *err, const char *msg)
{
    err->status = VMS_ERR_INVAL;
    snprintf(err->msg, sizeof err->msg, "%s", msg);
    return VMS_ERR_INVAL;
}

/* Configure as `vmsim run --preset PRESET --set …` does: the preset, the scenario's set
 * lines, then sets (KEY=VALUE lines). */
static vms_status configure(const char *preset, const char *sets, vms_err *err)
{
    vms_status st = vms_config_init(&g.cfg, preset && *preset ? preset : NULL, err);
    if (st == VMS_OK)
        st = vms_scenario_configure(g.sc, &g.cfg, err);
    for (const char *p = sets ? sets : ""; st == VMS_OK && *p;) {
        size_t n = strcspn(p, "\n");
        char line[512];
        if (n >= sizeof line)
            return web_err(err, "set: a line longer than 511 characters");
        memcpy(line, p, n);
        line[n] = '\0';
        if (line[0])
            st = vms_config_set_arg(&g.cfg, line, err);
        p += n + (p[n] == '\n');
    }
    if (st == VMS_OK)
        st = vms_scenario_check_writes(g.sc, err);
    return st;
}

VW_EXPORT const char *vw_load(const char *name, const char *text, const char *preset,
                              const char *sets)
{
    vw_unload();
    vms_strbuf_init(&g.out, NULL);
    vms_strbuf_init(&g.err, NULL);
    vms_strbuf_init(&g.log, NULL);
    vms_strbuf_init(&g.json, NULL);
    vms_strbuf_init(&g.iommu, NULL);
    vms_err err = {0};
    vms_status st = vms_scenario_parse(NULL, name && *name ? name : "scenario.scn",
                                       text ? text : "", &g.sc, &err);
    if (st == VMS_OK)
        st = configure(preset, sets, &err);
    if (st == VMS_OK) {
        /* The CLI shows the configuration as given and lets the kernel write shared-file
         * pages back to a private temporary directory; in the browser that is the
         * in-memory file system's /tmp. */
        g.shown = g.cfg;
        if (!g.cfg.writeback_dir[0])
            snprintf(g.cfg.writeback_dir, sizeof g.cfg.writeback_dir, "/tmp");
        vms_kernel_config kc = vms_config_kernel(&g.cfg);
        st = vms_machine_create(NULL, &g.cfg.machine, &g.m, &err);
        if (st == VMS_OK)
            st = vms_kernel_create(g.m, &kc, &g.k, &err);
    }
    if (st == VMS_OK) {
        vms_kernel_set_log(g.k, on_log, NULL);
        ev_reset(&g.ev);
        vms_machine_set_observer(g.m, on_event, &g.ev);
        st = vms_scenario_start(g.sc, g.k, on_out, NULL, &g.ex, &err);
    }
    if (st != VMS_OK) {
        char msg[sizeof err.msg];
        snprintf(msg, sizeof msg, "%s", err.msg);
        vw_unload();
        return fail(msg);
    }
    reset_json();
    vms_strbuf_printf(&g.json, "{\"ok\":true,\"version\":\"%s\",\"preset\":", vms_version());
    vms_strbuf_json_str(&g.json, g.cfg.machine.name ? g.cfg.machine.name : "");
    vms_strbuf_printf(&g.json, ",\"cores\":%u,\"levels\":%u}", vms_machine_ncores(g.m),
                      vms_machine_format(g.m)->levels);
    return answer();
}

static void path_json(vms_strbuf *sb, vms_task *t, uint64_t va);

static const char *kind_name(vms_access_kind k)
{
    return k == VMS_ACC_WRITE ? "write" : k == VMS_ACC_EXEC ? "exec" : "read";
}

VW_EXPORT const char *vw_step(void)
{
    if (!g.sc)
        return fail("no scenario loaded");
    reset_json();
    g.out.len = g.err.len = g.log.len = 0;
    if (g.out.data)
        g.out.data[0] = '\0';
    if (g.err.data)
        g.err.data[0] = '\0';
    if (g.log.data)
        g.log.data[0] = '\0';
    ev_reset(&g.ev);
    unsigned line = 0;
    vms_status st = VMS_OK;
    vms_scenario_access acc;
    bool has_acc = false;
    if (g.ex && !vms_scenario_done(g.ex)) {
        st = vms_scenario_next(g.ex, &line);
        has_acc = vms_scenario_last_access(g.ex, &acc);
        note_names();
    }
    if (g.ex && vms_scenario_done(g.ex))
        finish();
    vms_strbuf *sb = &g.json;
    vms_strbuf_printf(sb, "{\"ok\":true,\"line\":%u,\"status\":\"%s\",\"done\":%s,\"out\":", line,
                      vms_status_str(st), g.finished ? "true" : "false");
    vms_strbuf_json_str(sb, vms_strbuf_str(&g.out));
    vms_strbuf_printf(sb, ",\"err\":");
    vms_strbuf_json_str(sb, vms_strbuf_str(&g.err));
    vms_strbuf_printf(sb, ",\"log\":");
    vms_strbuf_json_str(sb, vms_strbuf_str(&g.log));
    if (g.finished && g.end != VMS_OK) {
        vms_strbuf_printf(sb, ",\"error\":");
        vms_strbuf_json_str(sb, g.end_err.msg);
    }
    events_json(sb, &g.ev);
    if (has_acc) {
        vms_strbuf_printf(sb, ",\"access\":{\"proc\":");
        vms_strbuf_json_str(sb, acc.proc);
        vms_strbuf_printf(sb, ",\"va\":");
        jhex(sb, acc.va);
        vms_strbuf_printf(sb, ",\"len\":%" PRIu64 ",\"kind\":\"%s\",\"path\":[", acc.len,
                          kind_name(acc.kind));
        if (acc.task && vms_task_alive(acc.task))
            path_json(sb, acc.task, acc.va);
        vms_strbuf_printf(sb, "]}");
    }
    vms_strbuf_printf(sb, "}");
    return answer();
}

/* ---- the counters, as `vmsim run --stats json` prints them ---- */

VW_EXPORT const char *vw_stats(void)
{
    if (!g.sc)
        return fail("no scenario loaded");
    reset_json();
    vms_strbuf *sb = &g.json;
    const vms_scenario_result *r = g.finished ? &g.res : vms_scenario_exec_result(g.ex);
    vms_strbuf_printf(sb, "{\"version\":\"%s\",\"build\":", vms_version());
    vms_strbuf_json_str(sb, vms_version_build());
    vms_strbuf_printf(sb, ",\"config\":");
    vms_config_json(&g.shown, sb);
    vms_strbuf_printf(sb, ",\"seed\":%llu,", (unsigned long long)g.shown.machine.seed);
    vms_machine_stats_json_members(g.m, sb);
    vms_kernel_stats_json_members(g.k, sb);
    vms_strbuf_printf(sb,
                      ",\"scenario\":{\"commands\":%u,\"expects_passed\":%u,"
                      "\"expects_failed\":%u,\"unexpected_faults\":%u,\"errors\":%u},"
                      "\"finished\":%s}",
                      r->commands, r->expects_passed, r->expects_failed, r->unexpected_faults,
                      r->errors, g.finished ? "true" : "false");
    return answer();
}

/* ---- the machine's state ---- */

static void tlb_json(vms_strbuf *sb, vms_tlb *tlb)
{
    vms_strbuf_printf(sb, "{\"capacity\":%u,\"count\":%u,\"entries\":[", vms_tlb_capacity(tlb),
                      vms_tlb_count(tlb));
    vms_tlb_entry_info e;
    for (unsigned i = 0; vms_tlb_entry(tlb, i, &e); i++) {
        vms_strbuf_printf(sb, "%s{\"set\":%u,\"way\":%u,\"pcid\":%u,\"va\":", i ? "," : "", e.set,
                          e.way, (unsigned)(uint32_t)e.ctx);
        jhex(sb, e.va);
        vms_strbuf_printf(sb, ",\"pa\":");
        jhex(sb, e.x.page_pa);
        vms_strbuf_printf(sb, ",\"size\":\"%s\",\"rw\":%d,\"user\":%d,\"global\":%d,\"dirty\":%d}",
                          vms_pgsize_name(e.x.size), e.x.rw, e.x.us, e.x.global, e.x.dirty);
    }
    const vms_tlb_stats *ts = vms_tlb_get_stats(tlb);
    vms_strbuf_printf(sb, "],\"hits\":%" PRIu64 ",\"misses\":%" PRIu64 "}", ts->hits, ts->misses);
}

static void core_json(vms_strbuf *sb, unsigned i)
{
    static const char *const names[] = {"l1i", "l1d", "l2"};
    vms_core *c = vms_machine_core(g.m, i);
    const vms_regs *r = vms_core_regs(c);
    vms_strbuf_printf(sb, "{\"id\":%u,\"cr3\":", i);
    jhex(sb, r->cr3);
    vms_strbuf_printf(sb, ",\"cycles\":%" PRIu64 ",\"tlbs\":{", vms_core_cycles(c));
    bool first = true;
    for (int l = 0; l < 3; l++) {
        vms_tlb *tlb = vms_core_tlb(c, (vms_tlb_level)l);
        if (!tlb)
            continue;
        vms_strbuf_printf(sb, "%s\"%s\":", first ? "" : ",", names[l]);
        tlb_json(sb, tlb);
        first = false;
    }
    vms_strbuf_printf(sb, "},\"pwc\":");
    vms_pwc *pwc = vms_core_pwc(c);
    if (!pwc) {
        vms_strbuf_printf(sb, "null");
    } else {
        const vms_pwc_stats *ps = vms_pwc_get_stats(pwc);
        vms_strbuf_printf(sb, "{\"levels\":[");
        for (unsigned l = 2; l <= 5; l++)
            vms_strbuf_printf(sb, "%s{\"level\":%u,\"count\":%u,\"hits\":%" PRIu64 "}",
                              l > 2 ? "," : "", l, vms_pwc_count(pwc, l), ps->hits[l]);
        vms_strbuf_printf(sb,
                          "],\"lookups\":%" PRIu64 ",\"misses\":%" PRIu64 ",\"fills\":%" PRIu64 "}",
                          ps->lookups, ps->misses, ps->fills);
    }
    const vms_walk_stats *ws = vms_core_walk_stats(c);
    vms_strbuf_printf(
        sb, ",\"walks\":%" PRIu64 ",\"walk_refs\":%" PRIu64 ",\"walk_faults\":%" PRIu64 "}",
        ws->walks, ws->mem_refs, ws->faults);
}

/* The format a task's tables are in (x86-64's for the machine's levels when the core's
 * registers name none). */
static const vms_pt_format *task_format(const vms_task_info *ti)
{
    const vms_regs *regs = vms_core_regs(vms_machine_core(g.m, ti->core));
    return vms_regs_format(regs);
}

static uint64_t task_root(const vms_pt_format *f, const vms_task_info *ti)
{
    return ti->cr3 & ~(vms_fmt_table_bytes(f) - 1) & ~(UINT64_C(0xFFF) << 52);
}

/* The entries a walk of va reads in t's tables as they are now (root first): their
 * physical addresses, as JSON strings. Read only. */
static void path_json(vms_strbuf *sb, vms_task *t, uint64_t va)
{
    vms_task_info ti;
    vms_task_get_info(t, &ti);
    const vms_pt_format *f = task_format(&ti);
    uint64_t table = task_root(f, &ti);
    for (unsigned l = f->levels; l >= 1; l--) {
        uint64_t ptep = vms_fmt_entry_pa(f, table, va, l), pte = 0;
        if (vms_ram_read64(vms_machine_ram(g.m), ptep, &pte) != VMS_OK)
            return;
        vms_strbuf_printf(sb, "%s", l < f->levels ? "," : "");
        jhex(sb, ptep);
        vms_pte_info in;
        vms_fmt_decode(f, pte, l, &in);
        if (!in.present || in.leaf)
            return;
        table = in.pa;
    }
}

typedef struct pt_walk {
    vms_strbuf *sb;
    const vms_pt_format *f;
    vms_task *t;
    vms_frames *fr;
    unsigned n; /* entries listed */
    bool truncated;
} pt_walk;

/* One entry of the tree: where it is, its raw value, its decoding, and for a leaf the
 * frame's sharing (refcount, mapcount) or, not present, its swap slot. */
static void pt_entry(pt_walk *w, unsigned level, uint64_t table, unsigned idx, uint64_t va,
                     uint64_t pte, const vms_pte_info *in)
{
    vms_strbuf *sb = w->sb;
    char bits[128];
    w->f->bits_str(pte, level, bits, sizeof bits);
    vms_strbuf_printf(sb, "%s{\"level\":%u,\"table\":", w->n ? "," : "", level);
    jhex(sb, table);
    vms_strbuf_printf(sb, ",\"index\":%u,\"ptep\":", idx);
    jhex(sb, table + ((uint64_t)idx << w->f->entry_shift));
    vms_strbuf_printf(sb, ",\"va\":");
    jhex(sb, va);
    vms_strbuf_printf(sb, ",\"pte\":");
    jhex(sb, pte);
    vms_strbuf_printf(sb, ",\"bits\":");
    vms_strbuf_json_str(sb, bits);
    vms_strbuf_printf(sb, ",\"present\":%s,\"leaf\":%s", in->present ? "true" : "false",
                      in->leaf ? "true" : "false");
    if (in->present) {
        vms_strbuf_printf(sb, ",\"pa\":");
        jhex(sb, in->pa);
    }
    if (in->present && in->leaf) {
        vms_frame *fm = vms_frames_meta(w->fr, in->pa >> VMS_PAGE_SHIFT);
        if (fm)
            vms_strbuf_printf(sb, ",\"refcount\":%u,\"mapcount\":%u,\"zero\":%s", fm->refcount,
                              fm->mapcount, fm->flags & VMS_FRAME_ZERO ? "true" : "false");
        vms_strbuf_printf(sb, ",\"writable\":%s", vms_fmt_pte_write(w->f, pte) ? "true" : "false");
    } else if (level == 1 && vms_fmt_is_swap(w->f, pte)) {
        vms_strbuf_printf(sb, ",\"swap_slot\":%" PRIu64, vms_fmt_swap_offset(w->f, pte));
    }
    vms_strbuf_printf(sb, "}");
    w->n++;
}

/* List the table at `table` (level `level`, mapping from va_base) depth first. */
static void pt_table(pt_walk *w, unsigned level, uint64_t table, uint64_t va_base)
{
    vms_ram *ram = vms_machine_ram(g.m);
    unsigned n = vms_fmt_entries(w->f);
    for (unsigned i = 0; i < n; i++) {
        uint64_t pte = 0;
        if (vms_ram_read64(ram, table + ((uint64_t)i << w->f->entry_shift), &pte) != VMS_OK)
            return;
        if (!pte)
            continue;
        if (w->n >= PT_MAX_ENTRIES) {
            w->truncated = true;
            return;
        }
        uint64_t va =
            vms_fmt_sign_extend(w->f, va_base | (uint64_t)i << vms_fmt_level_shift(w->f, level));
        vms_pte_info in;
        vms_fmt_decode(w->f, pte, level, &in);
        pt_entry(w, level, table, i, va, pte, &in);
        if (in.present && !in.leaf && level > 1)
            pt_table(w, level - 1, in.pa, va);
    }
}

static void proc_json(vms_strbuf *sb, vms_task *t)
{
    vms_task_info ti;
    vms_task_get_info(t, &ti);
    const char *name = scn_name(ti.tid);
    vms_strbuf_printf(sb, "{\"pid\":%d,\"tid\":%d,\"ppid\":%d,\"name\":", ti.pid, ti.tid, ti.ppid);
    vms_strbuf_json_str(sb, name ? name : ti.name);
    vms_strbuf_printf(sb, ",\"comm\":");
    vms_strbuf_json_str(sb, ti.name);
    vms_strbuf_printf(sb, ",\"core\":%u,\"pcid\":%u,\"cr3\":", ti.core, ti.pcid);
    jhex(sb, ti.cr3);
    bool alive = vms_task_alive(t);
    vms_strbuf_printf(sb, ",\"alive\":%s,\"threads\":%u", alive ? "true" : "false", ti.nthreads);
    if (!alive) {
        vms_strbuf_printf(sb, "}");
        return;
    }
    vms_strbuf_printf(sb, ",\"rss\":%" PRIu64 ",\"maps\":", vms_proc_rss(g.k, t));
    vms_strbuf maps;
    vms_strbuf_init(&maps, NULL);
    vms_proc_maps(g.k, t, &maps);
    vms_strbuf_json_str(sb, vms_strbuf_str(&maps));
    vms_strbuf_free(&maps);
    const vms_pt_format *f = task_format(&ti);
    uint64_t root = task_root(f, &ti);
    vms_strbuf_printf(sb, ",\"format\":");
    vms_strbuf_json_str(sb, f->title);
    vms_strbuf_printf(sb, ",\"levels\":%u,\"root\":", f->levels);
    jhex(sb, root);
    vms_strbuf_printf(sb, ",\"level_names\":[");
    for (unsigned l = 1; l <= f->levels; l++) {
        vms_strbuf_printf(sb, "%s", l > 1 ? "," : "");
        vms_strbuf_json_str(sb, f->level_name[l]);
    }
    vms_strbuf_printf(sb, "],\"entries\":[");
    pt_walk w = {sb, f, t, vms_kernel_frames(g.k), 0, false};
    pt_table(&w, f->levels, root, 0);
    vms_strbuf_printf(sb, "],\"truncated\":%s}", w.truncated ? "true" : "false");
}

/* Processes in pid order, threads skipped (they share their process's tables). */
static void procs_json(vms_strbuf *sb)
{
    vms_strbuf_printf(sb, "[");
    bool first = true;
    for (unsigned i = 0; i < vms_proc_count(g.k); i++) {
        vms_task *t = vms_proc_at(g.k, i);
        if (vms_task_pid(t) != vms_task_tid(t))
            continue;
        vms_strbuf_printf(sb, "%s", first ? "" : ",");
        proc_json(sb, t);
        first = false;
    }
    vms_strbuf_printf(sb, "]");
}

static void text_member(vms_strbuf *sb, const char *key,
                        vms_status (*fn)(vms_kernel *, vms_strbuf *))
{
    vms_strbuf t;
    vms_strbuf_init(&t, NULL);
    fn(g.k, &t);
    vms_strbuf_printf(sb, ",");
    jkey(sb, key);
    vms_strbuf_json_str(sb, vms_strbuf_str(&t));
    vms_strbuf_free(&t);
}

static vms_status dmesg(vms_kernel *k, vms_strbuf *sb)
{
    return vms_kernel_dmesg(k, NULL, sb);
}

VW_EXPORT const char *vw_state(void)
{
    if (!g.sc)
        return fail("no scenario loaded");
    reset_json();
    vms_strbuf *sb = &g.json;
    const vms_kernel_stats *ks = vms_kernel_get_stats(g.k);
    vms_strbuf_printf(sb, "{\"ok\":true,\"cores\":[");
    for (unsigned i = 0; i < vms_machine_ncores(g.m); i++) {
        vms_strbuf_printf(sb, "%s", i ? "," : "");
        core_json(sb, i);
    }
    vms_strbuf_printf(sb, "],\"procs\":");
    procs_json(sb);
    vms_strbuf_printf(sb,
                      ",\"faults\":{\"pgfault\":%" PRIu64 ",\"minor\":%" PRIu64
                      ",\"major\":%" PRIu64 ",\"cow\":%" PRIu64 ",\"cow_copy\":%" PRIu64
                      ",\"cow_reuse\":%" PRIu64 ",\"zero_page\":%" PRIu64 ",\"anon_alloc\":%" PRIu64
                      ",\"segv\":%" PRIu64 ",\"sigbus\":%" PRIu64 ",\"pswpin\":%" PRIu64
                      ",\"pswpout\":%" PRIu64 "}",
                      ks->pgfault, ks->minor, ks->pgmajfault, ks->cow, ks->cow_copy, ks->cow_reuse,
                      ks->zero_page, ks->anon_alloc, ks->segv, ks->sigbus, ks->pswpin, ks->pswpout);
    vms_swap_info si;
    vms_swap_get_info(g.k, &si);
    vms_strbuf_printf(sb,
                      ",\"swap\":{\"total\":%" PRIu64 ",\"free\":%" PRIu64 ",\"cache\":%" PRIu64
                      ",\"reads\":%" PRIu64 ",\"writes\":%" PRIu64 "}",
                      si.total_pages, si.free_pages, si.cache_pages, si.reads, si.writes);
    vms_frames_stats fs;
    vms_frames_stats_get(vms_kernel_frames(g.k), &fs);
    vms_strbuf_printf(
        sb, ",\"frames\":{\"total\":%" PRIu64 ",\"free\":%" PRIu64 ",\"used\":%" PRIu64 "}",
        fs.total, fs.free, fs.used);
    if (g.finished) {
        vms_strbuf_printf(sb, ",\"iommu\":");
        vms_strbuf_json_str(sb, vms_strbuf_str(&g.iommu));
        vms_strbuf_printf(sb, ",\"iommu_final\":true");
    } else {
        text_member(sb, "iommu", vms_dma_show);
    }
    text_member(sb, "dmesg", dmesg);
    vms_strbuf_printf(sb, ",\"done\":%s}", g.finished ? "true" : "false");
    return answer();
}

/* ---- explain: one access, as `vmsim explain` narrates a translation ---- */

/* A process by the scenario's name for it, or by pid. */
static vms_task *find_proc(const char *name)
{
    for (unsigned j = 0; j < g.nnames; j++)
        if (!strcmp(g.names[j].name, name))
            for (unsigned i = 0; i < vms_proc_count(g.k); i++)
                if (vms_task_tid(vms_proc_at(g.k, i)) == g.names[j].tid)
                    return vms_proc_at(g.k, i);
    char *end;
    long pid = strtol(name, &end, 10);
    return *name && !*end && pid > 0 && pid < INT32_MAX ? vms_proc_find(g.k, (int)pid) : NULL;
}

/* The TLBs of the task's core that hold va now (looked up without counting). */
static void say_tlbs(vms_strbuf *sb, const vms_task_info *ti, uint64_t va)
{
    static const char *const names[] = {"L1i", "L1d", "L2"};
    vms_core *c = vms_machine_core(g.m, ti->core);
    vms_strbuf_printf(sb, "  TLBs of core %u:", ti->core);
    bool any = false;
    for (int l = 0; l < 3; l++) {
        vms_tlb *tlb = vms_core_tlb(c, (vms_tlb_level)l);
        vms_xlate x;
        if (!tlb)
            continue;
        bool hit = vms_tlb_probe(tlb, vms_ctx_make(0, ti->pcid), va, &x);
        vms_strbuf_printf(sb, " %s %s", names[l], hit ? "hit" : "miss");
        any |= hit;
    }
    vms_strbuf_printf(sb, any ? " (an access now would not walk)\n"
                              : " (an access now walks the tables:)\n");
}

/* Narrate the tables in RAM for va, level by level (read only: no A/D updates), then the
 * rights check the hardware makes (vms_check_access) and what the kernel would do. */
static void explain_walk(vms_strbuf *sb, vms_task *t, const vms_task_info *ti, uint64_t va,
                         vms_access_kind kind, bool user)
{
    const vms_pt_format *f = task_format(ti);
    uint64_t table = task_root(f, ti);
    vms_ram *ram = vms_machine_ram(g.m);
    vms_xlate x = {.rw = 1, .us = 1};
    uint32_t x86 = strcmp(f->arch, "x86_64") == 0;
    for (unsigned l = f->levels; l >= 1; l--) {
        unsigned idx = vms_fmt_index(f, va, l);
        uint64_t ptep = vms_fmt_entry_pa(f, table, va, l), pte = 0;
        if (vms_ram_read64(ram, ptep, &pte) != VMS_OK) {
            vms_strbuf_printf(sb, "  %-6s table 0x%09" PRIx64 ": bus error\n", f->level_name[l],
                              table);
            return;
        }
        char bits[128];
        f->bits_str(pte, l, bits, sizeof bits);
        vms_pte_info in;
        vms_fmt_decode(f, pte, l, &in);
        vms_strbuf_printf(sb,
                          "  %-6s table 0x%09" PRIx64 " index %3u  entry @0x%09" PRIx64
                          " = 0x%016" PRIx64 "  [%s]",
                          f->level_name[l], table, idx, ptep, pte, bits);
        if (x86) { /* x86-64: every level's RW, US and XD count (SDM §4.6) */
            x.rw &= (pte & VMS_PTE_RW) != 0;
            x.us &= (pte & VMS_PTE_US) != 0;
            x.xd |= (pte & VMS_PTE_XD) != 0;
        }
        if (!in.present) {
            vms_strbuf_printf(sb, " -> not present\n");
            bool swapped = l == 1 && vms_fmt_is_swap(f, pte);
            if (swapped)
                vms_strbuf_printf(sb, "  the entry holds swap slot %" PRIu64 "\n",
                                  vms_fmt_swap_offset(f, pte));
            const vms_regs *regs = vms_core_regs(vms_machine_core(g.m, ti->core));
            vms_regs rc = *regs;
            rc.user = user;
            uint32_t e = vms_access_error_bits(&rc, kind);
            const char *region = vms_proc_region_name(g.k, t, va);
            vms_strbuf_printf(sb,
                              "  result: page fault, CR2 = 0x%" PRIx64 ", error code 0x%x; the "
                              "kernel looks up the VMA: %s\n",
                              va, e,
                              region ? region : "none (SIGSEGV unless a stack grows into it)");
            if (region && swapped)
                vms_strbuf_printf(sb, "  (a major fault: it reads the page back from swap)\n");
            return;
        }
        if (in.leaf) {
            vms_strbuf_printf(sb, " -> page\n");
            if (!x86) {
                x.rw = (in.prot & VMS_PGPROT_W) != 0;
                x.us = (in.prot & VMS_PGPROT_U) != 0;
                x.xd = (in.prot & VMS_PGPROT_X) == 0;
                x.nr = (in.prot & VMS_PGPROT_R) == 0;
            }
            x.page_pa = in.pa;
            unsigned shift = vms_fmt_level_shift(f, l);
            x.size = shift == 30 ? VMS_PG_1G : shift == 21 ? VMS_PG_2M : VMS_PG_4K;
            x.dirty = vms_fmt_pte_dirty(f, pte);
            x.pkey = (uint8_t)in.pkey;
            uint64_t pa = in.pa | (va & ((UINT64_C(1) << shift) - 1));
            const vms_regs *regs = vms_core_regs(vms_machine_core(g.m, ti->core));
            vms_regs rc = *regs;
            rc.user = user;
            uint32_t e = vms_check_access(&rc, &x, kind);
            vms_frame *fm = vms_frames_meta(vms_kernel_frames(g.k), in.pa >> VMS_PAGE_SHIFT);
            if (e) {
                vms_strbuf_printf(
                    sb, "  result: protection fault, CR2 = 0x%" PRIx64 ", error code 0x%x", va, e);
                if (kind == VMS_ACC_WRITE && !x.rw && fm && fm->mapcount > 1)
                    vms_strbuf_printf(sb,
                                      "; the page is shared by %u mappings and read-only: "
                                      "copy-on-write gives the writer its own copy",
                                      fm->mapcount);
                vms_strbuf_printf(sb, "\n");
                return;
            }
            vms_strbuf_printf(sb,
                              "  result: physical 0x%" PRIx64 " = page 0x%" PRIx64
                              " (%s, frame 0x%" PRIx64 ") + offset 0x%" PRIx64 "\n",
                              pa, in.pa, vms_pgsize_name(x.size), in.pa >> VMS_PAGE_SHIFT,
                              va & ((UINT64_C(1) << shift) - 1));
            if (fm)
                vms_strbuf_printf(sb, "  frame 0x%" PRIx64 ": %u reference%s, mapped %u time%s%s\n",
                                  in.pa >> VMS_PAGE_SHIFT, fm->refcount,
                                  fm->refcount == 1 ? "" : "s", fm->mapcount,
                                  fm->mapcount == 1 ? "" : "s",
                                  fm->flags & VMS_FRAME_ZERO ? " (the shared zero page)" : "");
            return;
        }
        vms_strbuf_printf(sb, " -> next table 0x%09" PRIx64 "\n", in.pa);
        table = in.pa;
    }
}

VW_EXPORT const char *vw_explain(const char *proc, const char *va_text, const char *kind_text,
                                 int supervisor)
{
    if (!g.sc)
        return fail("no scenario loaded");
    vms_task *t = find_proc(proc ? proc : "");
    uint64_t va;
    if (!t)
        return fail("explain: no process of that name or pid");
    if (!va_text || !vms_parse_u64(va_text, false, &va))
        return fail("explain: expected an address (0x…)");
    vms_access_kind kind = VMS_ACC_READ;
    if (kind_text && !strcmp(kind_text, "write"))
        kind = VMS_ACC_WRITE;
    else if (kind_text && !strcmp(kind_text, "exec"))
        kind = VMS_ACC_EXEC;
    else if (kind_text && *kind_text && strcmp(kind_text, "read"))
        return fail("explain: expected read, write or exec");
    if (!vms_task_alive(t))
        return fail("explain: that process is not running");
    vms_task_info ti;
    vms_task_get_info(t, &ti);
    const vms_pt_format *f = task_format(&ti);
    vms_strbuf text;
    vms_strbuf_init(&text, NULL);
    vms_strbuf_printf(&text,
                      "Translating 0x%" PRIx64 " (%s, %s mode) for %s (pid %d on core %u), %s, "
                      "%s = 0x%" PRIx64 "\n",
                      va, kind_name(kind), supervisor ? "supervisor" : "user",
                      scn_name(ti.tid) ? scn_name(ti.tid) : ti.name, ti.pid, ti.core, f->title,
                      f->root_reg, ti.cr3);
    vms_strbuf_printf(&text, "  va fields:");
    for (unsigned l = f->levels; l >= 1; l--)
        vms_strbuf_printf(&text, " %s 0x%x |", f->level_name[l], vms_fmt_index(f, va, l));
    vms_strbuf_printf(&text, " offset 0x%03" PRIx64 "\n", va & VMS_PAGE_MASK);
    say_tlbs(&text, &ti, va);
    explain_walk(&text, t, &ti, va, kind, !supervisor);
    reset_json();
    vms_strbuf_printf(&g.json, "{\"ok\":true,\"text\":");
    vms_strbuf_json_str(&g.json, vms_strbuf_str(&text));
    vms_strbuf_printf(&g.json, "}");
    vms_strbuf_free(&text);
    return answer();
}

/* The scenario commands' usage lines (the page's help), from the parser's table. */
VW_EXPORT const char *vw_commands(void)
{
    reset_json();
    vms_strbuf_printf(&g.json, "[");
    const char *u;
    for (size_t i = 0; (u = vms_scenario_command_usage(i)) != NULL; i++) {
        vms_strbuf_printf(&g.json, "%s", i ? "," : "");
        vms_strbuf_json_str(&g.json, u);
    }
    vms_strbuf_printf(&g.json, "]");
    return answer();
}

/* The machine presets, for the page's menu. */
VW_EXPORT const char *vw_presets(void)
{
    reset_json();
    vms_strbuf_printf(&g.json, "[");
    for (unsigned i = 0; i < vms_machine_npresets(); i++) {
        vms_strbuf_printf(&g.json, "%s", i ? "," : "");
        vms_strbuf_json_str(&g.json, vms_machine_preset_name(i));
    }
    vms_strbuf_printf(&g.json, "]");
    return answer();
}
