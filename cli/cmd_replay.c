/*
 * cmd_replay.c — `vmsim replay TRACE`: boot a machine and kernel from the configuration
 * (preset, --config, --set), replay a memory trace through them (replay.h,
 * docs/REPLAY.md) and report the counters: a readable summary, or --stats json (a
 * contract for tools), and optionally a CSV time series every N references.
 *
 * stdout holds only results, so that the same configuration and trace give the same
 * bytes; warnings (missing files, failed calls, segfaults) go to stderr, and a progress
 * line too — only when stderr is a terminal. Exit status: 0 the trace was replayed
 * (simulated segfaults are results, not failures), 1 the trace could not be read or is
 * malformed (the message names the file and the line or byte; nothing is printed on
 * stdout), 2 a usage or configuration error.
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, clock_gettime, isatty */
#include <dirent.h>
#include <stdarg.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cli_curve.h"
#include "plot.h"
#include "vmsim/cache.h"
#include "vmsim/dram.h"
#include "vmsim/config.h"
#include "vmsim/proc.h"
#include "vmsim/replay.h"

static const char usage[] =
    "usage: vmsim replay [options] TRACE\n"
    "\n"
    "Replay a memory trace (\"-\": stdin) through a simulated machine and kernel: every\n"
    "reference is a user access of the thread that made it (TLBs, page walks, page faults),\n"
    "every recorded kernel event (mmap, munmap, brk, clone, exit, read(2) into user memory)\n"
    "the system call it was. With --set policy=opt (Belady's OPT) a first pass over the\n"
    "trace file (not stdin) builds the next-use oracle. docs/REPLAY.md has the details.\n"
    "\n"
    "options:\n"
    "  --vm                replay as a guest process inside a virtual machine (EPT/NPT,\n"
    "                      two-dimensional walks, VM exits): vmsim replay --vm --help\n"
    "  --format FMT        auto (detect; default), native, lackey, din (dinero), champsim\n"
    "  --layout L          auto: any touched address is anonymous memory (2 MiB regions;\n"
    "                      the default for traces without kernel events); recorded: only\n"
    "                      what the trace maps exists (the default when it starts with\n"
    "                      kernel events; its page cache is warm unless\n"
    "                      kernel.pagecache=cold is set)\n"
    "  --preset NAME       machine preset (default skylake; `vmsim presets`)\n"
    "  --config FILE       load configuration keys from an INI file (`vmsim config --keys`)\n"
    "  --set KEY=VALUE     set one key (repeatable)\n"
    "  --tlb MODE          hardware (the default: a walker fills the TLBs) or software\n"
    "                      (MIPS style: the kernel's refill handler fills a JTLB; the\n"
    "                      same as --set tlb.mode=MODE; docs/arch/mips.md)\n"
    "  --stats json        print the counters as one JSON object instead of the summary\n"
    "  --csv FILE          write a CSV time series, one row every --interval references\n"
    "                      (\"-\": standard output; the summary then goes to stderr).\n"
    "                      Miss rates are per interval (empty when the interval had no\n"
    "                      lookups); references, walks, walk_mem_refs, faults,\n"
    "                      major_faults and cycles are cumulative\n"
    "  --plot FILE.svg     draw the same series as an SVG chart (TLB miss rates and page\n"
    "                      faults per interval; `vmsim plot` draws a CSV later)\n"
    "  --events FILE       write every event of the machine and kernel (TLB lookups, fills,\n"
    "                      walk steps, faults and how they were resolved, PTE writes,\n"
    "                      invalidations, shootdowns, swap, DMA) as JSON lines, one object\n"
    "                      with a \"type\" per line (\"-\": standard output;\n"
    "                      docs/EVENTS.md). Replays reference by reference while it is on\n"
    "                      (the same counters)\n"
    "  --interval N        references per CSV row or plot point (default 1000000; K/M/G)\n"
    "  --limit N           replay at most N references\n"
    "  --slow              reference by reference, without the batch fast path (same\n"
    "                      results, slower: for comparisons)\n"
    "  --pipeline          decode the trace on a thread of its own (file reads,\n"
    "                      decompression, parsing) while this one simulates: the same\n"
    "                      output; with a free second core, faster on long replays\n"
    "                      that both decode and miss much, slower on short ones\n"
    "                      (docs/REPLAY.md)\n";
static const char usage_more[] = /* (two strings: C99 promises 4095 characters a literal) */
    "  --curve NAME[:MAX]  also compute the miss-ratio curve of structure NAME (tlb.l1i,\n"
    "                      tlb.l1d, tlb.l2, pwc.pde, pwc.pdpte, pwc.pml4e, pwc.pml5e) in the\n"
    "                      same pass: the misses of a fully associative LRU of every size\n"
    "                      1..MAX entries (default: as configured) on the lookups it sees;\n"
    "                      set-associative ones also per number of sets (repeatable;\n"
    "                      JSON curve, curve_sets; docs/CURVE.md)\n"
    "  --curve-sample R    also a SHARDS-sampled curve at rate R (0 < R <= 1) and its error\n"
    "                      against the exact one (JSON curve_sample)\n"
    "  --sweep KEY=V1|V2…  replay under every combination of the alternatives (repeatable;\n"
    "                      with --set, --preset, --format, --layout, --limit, -j N) in one\n"
    "                      pass of the reader: one --stats json line per configuration, in\n"
    "                      order, the last --sweep varying fastest, each with a \"sweep\"\n"
    "                      member as `vmsim sweep` writes (docs/SWEEP.md)\n"
    "  --breakdown         also split TLB misses, walks and faults by mapping (file, [heap],\n"
    "                      [stack], [anon]): JSON replay.by_region and a summary table;\n"
    "                      runs reference by reference, as --slow (by process is always on)\n"
    "  -h, --help          this text\n"
    "\n"
    "exit status: 0 replayed (simulated segfaults are results), 1 the trace is unreadable\n"
    "or malformed (file and line or byte on stderr), 2 a usage or configuration error.\n";

#define MAX_WARNINGS 20 /* warnings printed; the rest are counted */

typedef struct replay_cli {
    const char *preset, *config, *path, *csv_path, *plot_path, *events_path;
    const char *sets[64];
    int nsets;
    bool json, slow, breakdown, pipeline;
    vms_trace_format format;
    vms_replay_layout layout;
    uint64_t limit, interval;
    /* run state */
    vms_machine *m;
    vms_kernel *k;
    vms_config cfg; /* as configured, before replay's private writeback directory */
    FILE *csv;
    cli_events events;    /* --events: the tap's JSON lines */
    cli_table series;     /* --plot: the CSV's rows, kept */
    vms_strbuf *members;  /* cli_replay_json: the JSON members go here, nothing to stdout */
    vms_trace_reader *rd; /* for the progress line's position */
    uint64_t file_size;   /* of a regular trace file (0: unknown, e.g. stdin) */
    bool progress;
    struct timespec t0, last_print;
    unsigned warnings;
    uint64_t prev_lookups[VMS_TLB_NLEVELS], prev_misses[VMS_TLB_NLEVELS];
    cli_curves curves;         /* --curve, --curve-sample */
    vms_replay_oracle *oracle; /* policy=opt: the future, from a first pass */
    vms_replay *slot;          /* the replay, for the kernel's next-use calls */
} replay_cli;

/* policy=opt: the first pass over the trace (a file: stdin cannot be read twice). */
static int build_oracle(replay_cli *o)
{
    if (!strcmp(o->path, "-")) {
        cli_error("replay", "policy=opt needs the trace's future: replay a file, not stdin");
        return EXIT_USAGE;
    }
    vms_err err = {0};
    vms_trace_reader *rd = NULL;
    vms_status st = cli_trace_open(o->path, o->format, o->pipeline, &rd, &err);
    if (st == VMS_OK)
        st = vms_replay_oracle_build(rd, NULL, &o->oracle, &err);
    vms_trace_reader_close(rd);
    if (st != VMS_OK) {
        cli_error("replay", "%s", err.msg);
        return 1;
    }
    return 0;
}

/* ---- arguments ------------------------------------------------------------------------- */

static int bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Report a usage error ("vmsim replay: …") and return EXIT_USAGE. */
static int bad(const char *fmt, ...)
{
    va_list ap;
    fputs("vmsim replay: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return EXIT_USAGE;
}

/* Parse one option with its value v; returns 0, or EXIT_USAGE. */
static int option(replay_cli *o, const char *a, const char *v)
{
    vms_err err = {0};
    if (!strcmp(a, "--preset")) {
        o->preset = v;
    } else if (!strcmp(a, "--config")) {
        o->config = v;
    } else if (!strcmp(a, "--set")) {
        if (o->nsets == 64)
            return bad("too many --set options (at most 64)");
        o->sets[o->nsets++] = v;
    } else if (!strcmp(a, "--tlb")) { /* --set tlb.mode=MODE, applied in order */
        if (strcmp(v, "hardware") && strcmp(v, "software"))
            return bad("bad --tlb '%s': expected hardware or software", v);
        if (o->nsets == 64)
            return bad("too many --set options (at most 64)");
        o->sets[o->nsets++] = strcmp(v, "software") ? "tlb.mode=hardware" : "tlb.mode=software";
    } else if (!strcmp(a, "--stats")) {
        if (strcmp(v, "json") != 0)
            return bad("bad --stats '%s': expected json", v);
        o->json = true;
    } else if (!strcmp(a, "--format")) {
        if (vms_trace_format_parse(strcmp(v, "din") != 0 ? v : "dinero", &o->format, &err) !=
            VMS_OK)
            return bad("%s", err.msg);
    } else if (!strcmp(a, "--layout")) {
        if (vms_replay_layout_parse(v, &o->layout, &err) != VMS_OK ||
            o->layout == VMS_REPLAY_LAYOUT_DEFAULT)
            return bad("bad --layout '%s': expected auto or recorded", v);
    } else if (!strcmp(a, "--csv")) {
        o->csv_path = v;
    } else if (!strcmp(a, "--events")) {
        o->events_path = v;
    } else if (!strcmp(a, "--plot")) {
        o->plot_path = v;
    } else if (!strcmp(a, "--interval")) {
        if (!cli_parse_u64(v, true, &o->interval) || o->interval == 0)
            return bad("bad --interval '%s': expected a positive number", v);
    } else if (!strcmp(a, "--curve") || !strcmp(a, "--curve-sample")) {
        return cli_curve_option(&o->curves, a, v);
    } else if (!strcmp(a, "--limit")) {
        if (!cli_parse_u64(v, true, &o->limit) || o->limit == 0)
            return bad("bad --limit '%s': expected a positive number", v);
    } else {
        return bad("unexpected argument '%s' (see vmsim replay --help)", a);
    }
    return 0;
}

static int parse(int argc, char **argv, replay_cli *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            fputs(usage_more, stdout);
            return -1;
        } else if (!strcmp(a, "--slow")) {
            o->slow = true;
        } else if (!strcmp(a, "--breakdown")) {
            o->breakdown = true;
        } else if (!strcmp(a, "--pipeline")) {
            o->pipeline = true;
        } else if (a[0] == '-' && a[1] == '-' && i + 1 < argc) {
            int rc = option(o, a, argv[++i]);
            if (rc)
                return rc;
        } else if ((a[0] != '-' || !strcmp(a, "-")) && !o->path) {
            o->path = a;
        } else {
            return bad("unexpected argument '%s' (see vmsim replay --help)", a);
        }
    }
    if (!o->path)
        return bad("no trace given (see vmsim replay --help)");
    if (o->interval && !o->csv_path && !o->plot_path)
        return bad("--interval needs --csv or --plot");
    if (o->json && o->csv_path && !strcmp(o->csv_path, "-"))
        return bad("--stats json and --csv - both want standard output");
    if (o->curves.rate > 0 && o->curves.n == 0)
        return bad("--curve-sample needs --curve");
    if (o->events_path && !strcmp(o->events_path, "-") &&
        (o->json || (o->csv_path && !strcmp(o->csv_path, "-"))))
        return bad("--events - and %s both want standard output",
                   o->json ? "--stats json" : "--csv -");
    return 0;
}

/* ---- machine and kernel ---------------------------------------------------------------- */

/* Boot o's machine and kernel from configuration c (o->cfg keeps c as configured; c
 * gets the private temporary writeback directory, cli_tmp_writeback, unless it names
 * one: replaying must not write copies of the trace's files anywhere else). */
static int start(replay_cli *o, vms_config *c)
{
    vms_err err = {0};
    vms_status st = VMS_OK;
    o->cfg = *c;
    cli_tmp_writeback(c);
    vms_kernel_config kc = vms_config_kernel(c);
    if (kc.policy && !strcmp(kc.policy, "opt")) {
        int rc = build_oracle(o);
        if (rc)
            return rc;
        kc.next_use = vms_replay_next_use;
        kc.next_use_ud = &o->slot;
    }
    if (st == VMS_OK)
        st = vms_machine_create(NULL, &c->machine, &o->m, &err);
    /* --events: the observer goes on before the kernel boots, so its first CR3 loads and
     * page-table writes are in the stream as they are in the counters. */
    if (st == VMS_OK && o->events_path &&
        cli_events_open(&o->events, "replay", o->events_path, o->m))
        return 1;
    if (st == VMS_OK)
        st = vms_kernel_create(o->m, &kc, &o->k, &err);
    if (st != VMS_OK) {
        cli_error("replay", "%s", err.msg);
        return EXIT_USAGE;
    }
    return cli_curve_attach(&o->curves, o->m, o->k);
}

/* The configuration from --preset, --config and --set, then boot. */
static int boot(replay_cli *o, vms_config *c)
{
    vms_err err = {0};
    vms_status st = vms_config_init(c, o->preset, &err);
    if (st == VMS_OK && o->config)
        st = vms_config_load(c, o->config, &err);
    for (int i = 0; st == VMS_OK && i < o->nsets; i++)
        st = vms_config_set_arg(c, o->sets[i], &err);
    if (st != VMS_OK) {
        cli_error("replay", "%s", err.msg);
        return EXIT_USAGE;
    }
    return start(o, c);
}

/* ---- warnings, progress, CSV ----------------------------------------------------------- */

static void on_log(void *ud, vms_log_level level, const char *msg)
{
    replay_cli *o = ud;
    (void)level;
    if (o->warnings++ < MAX_WARNINGS)
        fprintf(stderr, "%s%s\n", strncmp(msg, "replay:", 7) ? "[kernel] " : "vmsim ", msg);
}

/* Sum of a counter of TLB level l over the cores; false when no core has the level. */
static bool tlb_sum(vms_machine *m, unsigned l, uint64_t *lookups, uint64_t *misses)
{
    bool any = false;
    *lookups = *misses = 0;
    for (unsigned i = 0; i < vms_machine_ncores(m); i++) {
        vms_tlb *t = vms_core_tlb(vms_machine_core(m, i), (vms_tlb_level)l);
        if (t) {
            any = true;
            *lookups += vms_tlb_get_stats(t)->lookups;
            *misses += vms_tlb_get_stats(t)->misses;
        }
    }
    return any;
}

typedef struct hw_sums {
    uint64_t walks, walk_refs, cycles;
} hw_sums;

static hw_sums hw_sum(vms_machine *m)
{
    hw_sums s = {0, 0, 0};
    for (unsigned i = 0; i < vms_machine_ncores(m); i++) {
        vms_core *c = vms_machine_core(m, i);
        s.walks += vms_core_walk_stats(c)->walks;
        s.walk_refs += vms_core_walk_stats(c)->mem_refs;
        s.cycles += vms_core_cycles(c);
    }
    return s;
}

static const char csv_header[] = "references,l1i_miss_rate,l1d_miss_rate,l2_miss_rate,walks,"
                                 "walk_mem_refs,faults,major_faults,cycles\n";

/* One CSV row: cumulative counts, and miss rates over the interval since the last row
 * (an empty field when the interval had no lookups at that level: no rate, not 0);
 * written to --csv, kept for --plot (which draws such an interval as 0). */
static void csv_row(replay_cli *o, uint64_t refs)
{
    double row[4 + VMS_TLB_NLEVELS + 2];
    size_t n = 0;
    row[n++] = (double)refs;
    if (o->csv)
        fprintf(o->csv, "%" PRIu64, refs);
    for (unsigned l = 0; l < VMS_TLB_NLEVELS; l++) {
        uint64_t lk, ms;
        tlb_sum(o->m, l, &lk, &ms);
        uint64_t dl = lk - o->prev_lookups[l], dm = ms - o->prev_misses[l];
        /* rounded as the CSV prints it, so --plot draws exactly what `vmsim plot` of
         * the CSV draws */
        double rate = dl ? round((double)dm / (double)dl * 1e6) / 1e6 : 0.0;
        if (o->csv && dl)
            fprintf(o->csv, ",%.6f", rate);
        else if (o->csv)
            fputc(',', o->csv);
        row[n++] = rate;
        o->prev_lookups[l] = lk;
        o->prev_misses[l] = ms;
    }
    hw_sums h = hw_sum(o->m);
    const vms_kernel_stats *ks = vms_kernel_get_stats(o->k);
    if (o->csv)
        fprintf(o->csv, ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 "\n", h.walks,
                h.walk_refs, ks->pgfault, ks->pgmajfault, h.cycles);
    row[n++] = (double)h.walks;
    row[n++] = (double)h.walk_refs;
    row[n++] = (double)ks->pgfault;
    row[n++] = (double)ks->pgmajfault;
    row[n++] = (double)h.cycles;
    if (o->plot_path)
        cli_table_add(&o->series, row);
}

static double since(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) * 1e-9;
}

static void progress(replay_cli *o, uint64_t refs, bool final)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (final) {
        fputs("\r\033[K", stderr);
        return;
    }
    if (since(&o->last_print, &now) < 0.5)
        return;
    o->last_print = now;
    double dt = since(&o->t0, &now), rate = dt > 0 ? (double)refs / dt : 0;
    fprintf(stderr, "\r\033[Kreplay: %.1fM references, %.2fM/s", (double)refs / 1e6, rate / 1e6);
    uint64_t at = vms_trace_reader_file_offset(o->rd);
    if (o->limit && rate > 0)
        fprintf(stderr, ", ETA %.0fs", (double)(o->limit - refs) / rate);
    else if (o->file_size && at > 0 && at <= o->file_size) /* the file's size is known */
        fprintf(stderr, ", %.0f%%, ETA %.0fs", 100.0 * (double)at / (double)o->file_size,
                dt * (double)(o->file_size - at) / (double)at);
    fflush(stderr);
}

static void on_tick(void *ud, uint64_t refs, bool final)
{
    replay_cli *o = ud;
    if ((o->csv || o->plot_path) && (!final || refs % o->interval != 0 || refs == 0))
        csv_row(o, refs);
    if (o->progress)
        progress(o, refs, final);
}

/* ---- results --------------------------------------------------------------------------- */

static double pct(uint64_t a, uint64_t b)
{
    return b ? 100.0 * (double)a / (double)b : 0.0;
}

/* A breakdown table: one line per part. */
static void parts_table(FILE *f, const char *title, const vms_replay_part *p, size_t n, bool pids)
{
    fprintf(f, "%-12s %10s %8s %8s %8s %8s %8s %6s  %s\n", title, "accesses", "l1i", "l1d", "l2",
            "walks", "faults", "major", pids ? "pid name" : "mapping");
    for (size_t i = 0; i < n; i++) {
        fprintf(f,
                "%-12s %10" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64
                " %6" PRIu64 "  ",
                "", p[i].accesses, p[i].l1i_misses, p[i].l1d_misses, p[i].l2_misses, p[i].walks,
                p[i].faults, p[i].major_faults);
        if (pids)
            fprintf(f, "%d ", p[i].pid);
        fprintf(f, "%s\n", p[i].name);
    }
}

/* The cache and DRAM lines of the summary (only when they are on). */
static void cache_summary(const replay_cli *o, FILE *f, uint64_t walk_refs)
{
    static const char *const names[4] = {"l1i", "l1d", "l2", "llc"};
    uint64_t served = 0, wh[4] = {0};
    unsigned ncores = vms_machine_ncores(o->m);
    for (unsigned l = 0; l < 4; l++) {
        uint64_t acc = 0, miss = 0, wb = 0;
        bool any = false;
        for (unsigned i = 0; i < (l == 3 ? 1 : ncores); i++) {
            const vms_cache *c = vms_machine_cache(o->m, i, (vms_cache_id)l);
            if (!c)
                continue;
            const vms_cache_stats *cs = vms_cache_get_stats(c);
            acc += cs->accesses;
            miss += cs->misses;
            wb += cs->writebacks;
            wh[l] += cs->walk_hits;
            any = true;
        }
        if (any)
            fprintf(f,
                    "cache %-6s %" PRIu64 " accesses, %" PRIu64 " misses (%.3f%%), %" PRIu64
                    " writebacks\n",
                    names[l], acc, miss, pct(miss, acc), wb);
        served += wh[l];
    }
    if (vms_machine_cache(o->m, 0, VMS_CACHE_L1D) || vms_machine_cache(o->m, 0, VMS_CACHE_LLC))
        fprintf(f,
                "walk refs    served by L1 %" PRIu64 ", L2 %" PRIu64 ", LLC %" PRIu64
                ", memory %" PRIu64 "\n",
                wh[1], wh[2], wh[3], walk_refs - served);
    const vms_dram *d = vms_machine_dram(o->m);
    if (d) {
        const vms_dram_stats *ds = vms_dram_get_stats(d);
        fprintf(f,
                "dram         %s: %" PRIu64 " reads, %" PRIu64 " writes; row hits %" PRIu64
                ", misses %" PRIu64 ", conflicts %" PRIu64 "; %" PRIu64 " refreshes\n",
                vms_dram_get_config(d)->name, ds->reads, ds->writes, ds->row_hits, ds->row_misses,
                ds->row_conflicts, ds->refreshes);
    }
}

static void summary(const replay_cli *o, FILE *f, vms_replay *r, vms_trace_format fmt)
{
    const vms_replay_stats *s = vms_replay_get_stats(r);
    const vms_kernel_stats *ks = vms_kernel_get_stats(o->k);
    const vms_machine_config *mc = vms_machine_get_config(o->m);
    fprintf(f, "trace        %s (%s), layout %s, machine %s (%u core%s)\n", o->path,
            vms_trace_format_name(fmt), vms_replay_layout_name(vms_replay_get_layout(r)),
            mc->name ? mc->name : "custom", mc->ncores, mc->ncores == 1 ? "" : "s");
    vms_strbuf sb;
    vms_strbuf_init(&sb, NULL);
    cli_overrides(&o->cfg, &sb);
    fprintf(f, "config       %s\n", vms_strbuf_str(&sb));
    vms_strbuf_free(&sb);
    fprintf(f,
            "references   %" PRIu64 ": %" PRIu64 " reads, %" PRIu64 " writes, %" PRIu64
            " fetches, %" PRIu64 " modifies; %" PRIu64 " bytes\n",
            s->references, s->by_kind[0], s->by_kind[1], s->by_kind[2], s->by_kind[3], s->bytes);
    static const char *const names[VMS_TLB_NLEVELS] = {"l1i", "l1d", "l2"};
    for (unsigned l = 0; l < VMS_TLB_NLEVELS; l++) {
        uint64_t lk, ms;
        if (!tlb_sum(o->m, l, &lk, &ms)) {
            fprintf(f, "tlb %-8s none\n", names[l]);
            continue;
        }
        fprintf(f, "tlb %-8s %" PRIu64 " lookups, %" PRIu64 " misses (%.3f%%)\n", names[l], lk, ms,
                pct(ms, lk));
    }
    hw_sums h = hw_sum(o->m);
    fprintf(f, "page walks   %" PRIu64 ", %" PRIu64 " memory references (%.2f per walk)\n", h.walks,
            h.walk_refs, h.walks ? (double)h.walk_refs / (double)h.walks : 0.0);
    fprintf(f,
            "page faults  %" PRIu64 " = %" PRIu64 " minor + %" PRIu64 " major + %" PRIu64
            " segv + %" PRIu64 " sigbus; %" PRIu64 " in kernel accesses\n",
            ks->pgfault, ks->minor, ks->pgmajfault, ks->segv, ks->sigbus, ks->kernel_faults);
    fprintf(f,
            "  of which   %" PRIu64 " cow, %" PRIu64 " zero page, %" PRIu64
            " stack growth, %" PRIu64 " huge page; %" PRIu64 " more pages mapped by fault-around\n",
            ks->cow, ks->zero_page, ks->stack_expand, ks->thp_fault_alloc, ks->fault_around);
    fprintf(f,
            "memory       %" PRIu64 " anonymous pages allocated, %" PRIu64
            " zero-page maps, %" PRIu64 " VMAs created by the auto layout\n",
            ks->anon_alloc, ks->zero_page, ks->auto_anon_vmas);
    if (s->syscalls || s->kwrites || s->processes > 1 || s->threads)
        fprintf(f,
                "kernel       %" PRIu64 " system calls (%" PRIu64 " refused), %" PRIu64
                " kernel writes (%" PRIu64 " EFAULT), %" PRIu64 " processes, %" PRIu64
                " threads, %" PRIu64 " files mapped, %" PRIu64 " missing\n",
                s->syscalls, s->syscall_errors, s->kwrites, s->kwrite_efault, s->processes,
                s->threads, s->files_mapped, s->files_missing);
    if (s->segv || s->dead_refs)
        fprintf(f,
                "segfaults    %" PRIu64 " accesses killed their process; %" PRIu64
                " later accesses of dead processes skipped\n",
                s->segv, s->dead_refs);
    cache_summary(o, f, h.walk_refs);
    fprintf(f, "cycles       %" PRIu64 " (%.2f per reference)\n", h.cycles,
            s->references ? (double)h.cycles / (double)s->references : 0.0);
    size_t np, nr;
    const vms_replay_part *bp = vms_replay_by_process(r, &np), *br = vms_replay_by_region(r, &nr);
    if (np > 1)
        parts_table(f, "by process", bp, np, true);
    if (nr)
        parts_table(f, "by mapping", br, nr, false);
}

/* The --stats json object's members (after "{", before "}"), appended to sb. */
static void json_members(const replay_cli *o, vms_replay *r, vms_strbuf *sb)
{
    cli_input in;
    cli_input_init(&in, "trace", o->path);
    cli_json_meta(sb, &o->cfg, &in);
    vms_machine_stats_json_members(o->m, sb);
    vms_kernel_stats_json_members(o->k, sb);
    vms_replay_stats_json_members(r, sb);
    cli_curve_json(&o->curves, sb);
}

static void json(const replay_cli *o, vms_replay *r)
{
    vms_strbuf sb;
    vms_strbuf_init(&sb, NULL);
    vms_strbuf_printf(&sb, "{");
    json_members(o, r, &sb);
    vms_strbuf_printf(&sb, "}\n");
    fputs(vms_strbuf_str(&sb), stdout);
    vms_strbuf_free(&sb);
}

/* ---- the command ----------------------------------------------------------------------- */

static int replay(replay_cli *o)
{
    vms_err err = {0};
    vms_trace_reader *rd = NULL;
    if (cli_trace_open(o->path, o->format, o->pipeline, &rd, &err) != VMS_OK) {
        cli_error("replay", "%s", err.msg);
        return 1;
    }
    o->rd = rd;
    struct stat sst;
    if (strcmp(o->path, "-") != 0 && stat(o->path, &sst) == 0 && S_ISREG(sst.st_mode))
        o->file_size = (uint64_t)sst.st_size;
    if (o->csv_path) {
        o->csv = strcmp(o->csv_path, "-") ? fopen(o->csv_path, "w") : stdout;
        if (!o->csv) {
            cli_error("replay", "%s: cannot create the CSV file", o->csv_path);
            vms_trace_reader_close(rd);
            return 1;
        }
        fputs(csv_header, o->csv);
    }
    if (o->plot_path)
        cli_table_header(&o->series, csv_header);
    if ((o->csv || o->plot_path) && !o->interval)
        o->interval = 1000000;
    o->progress = !o->members && isatty(STDERR_FILENO);
    clock_gettime(CLOCK_MONOTONIC, &o->t0);
    vms_replay_opts ro = {.layout = o->layout,
                          .slow = o->slow,
                          .breakdown = o->breakdown,
                          .limit = o->limit,
                          .interval = o->csv || o->plot_path ? o->interval
                                      : o->progress          ? 1u << 20
                                                             : 0,
                          .tick = on_tick,
                          .log = on_log,
                          .ud = o,
                          .oracle = o->oracle};
    vms_replay *r = NULL;
    vms_kernel_set_log(o->k, on_log, o);
    vms_status st = vms_replay_create(o->k, &ro, &r, &err);
    o->slot = r;
    if (st == VMS_OK)
        st = vms_replay_run(r, rd, &err);
    int rc = 0;
    if (st != VMS_OK) {
        if (o->progress)
            fputs("\r\033[K", stderr);
        cli_error("replay", "%s", err.msg);
        rc = 1;
    } else {
        if (o->warnings > MAX_WARNINGS)
            fprintf(stderr, "vmsim replay: %u more warnings not shown\n",
                    o->warnings - MAX_WARNINGS);
        if (o->members)
            json_members(o, r, o->members);
        else if (o->json)
            json(o, r);
        else
            summary(o, o->csv == stdout ? stderr : stdout, r, vms_trace_reader_format(rd));
        if (!o->members && !o->json)
            cli_curve_summary(&o->curves, o->csv == stdout ? stderr : stdout);
    }
    if (o->csv && (o->csv == stdout ? fflush(o->csv) : fclose(o->csv)) != 0 && rc == 0) {
        cli_error("replay", "%s: write failed", o->csv_path);
        rc = 1;
    }
    if (o->plot_path && rc == 0) {
        FILE *svg = fopen(o->plot_path, "w");
        if (svg)
            cli_plot_series(svg, &o->series, o->path);
        if (!svg || fclose(svg) != 0) {
            cli_error("replay", "%s: cannot write the plot", o->plot_path);
            rc = 1;
        }
    }
    cli_table_free(&o->series);
    o->slot = NULL;
    vms_replay_destroy(r);
    vms_trace_reader_close(rd);
    return rc;
}

int cmd_replay(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) /* several configurations in one pass: cmd_sweep.c */
        if (!strcmp(argv[i], "--sweep"))
            return cmd_replay_sweep(argc, argv);
    for (int i = 1; i < argc; i++) /* inside a virtual machine: replay_vm.c */
        if (!strcmp(argv[i], "--vm"))
            return cmd_replay_vm(argc, argv);
    replay_cli o = {0};
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;
    vms_config cfg;
    rc = boot(&o, &cfg);
    if (rc == 0)
        rc = replay(&o);
    if (cli_events_close(&o.events) && rc == 0)
        rc = 1;
    cli_curve_free(&o.curves);
    vms_kernel_destroy(o.k);
    vms_machine_destroy(o.m);
    vms_replay_oracle_destroy(o.oracle);
    cli_tmp_writeback_remove();
    return rc;
}

int cli_replay_json(const vms_config *cfg, const cli_replay_job *job, vms_strbuf *members)
{
    replay_cli o = {0};
    o.path = job->path;
    o.format = job->format;
    o.layout = job->layout;
    o.limit = job->limit;
    o.members = members;
    vms_config c = *cfg;
    int rc = start(&o, &c);
    if (rc == 0)
        rc = replay(&o);
    vms_kernel_destroy(o.k);
    vms_machine_destroy(o.m);
    vms_replay_oracle_destroy(o.oracle);
    cli_tmp_writeback_remove();
    return rc;
}

/* ---- one task of a one-pass sweep (sweep_pass.c): events fed from a shared reader ---- */

struct cli_replay_task {
    replay_cli o;
    vms_replay *r;
    vms_status st; /* the first replay error */
    vms_err err;
};

int cli_replay_task_start(const vms_config *cfg, const cli_replay_job *job, const char *wb_dir,
                          cli_replay_task **out)
{
    cli_replay_task *t = calloc(1, sizeof *t);
    *out = t;
    if (!t)
        return 1;
    replay_cli *o = &t->o;
    o->path = job->path;
    o->format = job->format;
    o->layout = job->layout;
    o->limit = job->limit;
    vms_config c = *cfg;
    if (!c.writeback_dir[0] && wb_dir) /* a private one: tasks run side by side */
        snprintf(c.writeback_dir, sizeof c.writeback_dir, "%s", wb_dir);
    int rc = start(o, &c);
    o->cfg = *cfg; /* as configured: the JSON does not name the private directory */
    if (rc)
        return rc;
    vms_replay_opts ro = {
        .layout = o->layout, .limit = o->limit, .log = on_log, .ud = o, .oracle = o->oracle};
    vms_kernel_set_log(o->k, on_log, o);
    if (vms_replay_create(o->k, &ro, &t->r, &t->err) != VMS_OK) {
        cli_error("replay", "%s", t->err.msg);
        return 1;
    }
    o->slot = t->r;
    return 0;
}

void cli_replay_task_event(cli_replay_task *t, const vms_trace_event *ev, const char *path)
{
    /* as vms_replay_run: no event once the limit's references ran, none after an error */
    if (t->st != VMS_OK || (t->o.limit && vms_replay_get_stats(t->r)->references >= t->o.limit))
        return;
    t->st = vms_replay_event(t->r, ev, path, &t->err);
}

int cli_replay_task_finish(cli_replay_task *t, const vms_err *read_err, vms_strbuf *members)
{
    vms_status fst = vms_replay_flush(t->r, &t->err);
    bool limited = t->o.limit && vms_replay_get_stats(t->r)->references >= t->o.limit;
    if (t->st == VMS_OK && read_err && read_err->status != VMS_OK && !limited) {
        /* (a task that reached its limit stopped reading before the bad part) */
        t->st = read_err->status;
        t->err = *read_err;
    }
    if (t->st == VMS_OK)
        t->st = fst;
    if (t->st != VMS_OK) {
        cli_error("replay", "%s", t->err.msg);
        return 1;
    }
    if (t->o.warnings > MAX_WARNINGS)
        fprintf(stderr, "vmsim replay: %u more warnings not shown\n", t->o.warnings - MAX_WARNINGS);
    json_members(&t->o, t->r, members);
    return 0;
}

void cli_replay_task_free(cli_replay_task *t)
{
    if (!t)
        return;
    vms_replay_destroy(t->r);
    vms_kernel_destroy(t->o.k);
    vms_machine_destroy(t->o.m);
    vms_replay_oracle_destroy(t->o.oracle);
    free(t);
}
