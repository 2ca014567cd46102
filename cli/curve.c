/*
 * curve.c — `vmsim replay --curve NAME[:MAX] [--curve-sample RATE]`: miss-ratio curves
 * of TLB levels and PWC levels in the same pass as the replay (vmsim/curve.h,
 * docs/CURVE.md). For each named structure and each core: a fully associative LRU
 * curve for every size 1 … MAX (default: the configured entries); when the structure
 * is set-associative, one curve per number of sets (powers of two up to the configured
 * sets, and the configured sets) for every associativity up to MAX entries; with
 * --curve-sample, a SHARDS-sampled fully associative curve and its error against the
 * exact one. The JSON members: "curve", "curve_sets", "curve_sample"; points summed
 * over cores.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_curve.h"
#include "vmsim/core.h"
#include "vmsim/kernel.h"
#include "vmsim/machine.h"
#include "vmsim/tlb.h"

int cli_curve_option(cli_curves *cv, const char *a, const char *v)
{
    if (!strcmp(a, "--curve-sample")) {
        char *end;
        double r = strtod(v, &end);
        if (*end || !(r > 0.0 && r <= 1.0)) {
            cli_error("replay", "bad --curve-sample '%s': expected a rate in (0, 1]", v);
            return EXIT_USAGE;
        }
        cv->rate = r;
        return 0;
    }
    if (cv->n == CLI_CURVE_MAX) {
        cli_error("replay", "too many --curve options (at most %d)", CLI_CURVE_MAX);
        return EXIT_USAGE;
    }
    cli_curve_spec *s = &cv->spec[cv->n];
    const char *colon = strchr(v, ':');
    size_t len = colon ? (size_t)(colon - v) : strlen(v);
    if (len == 0 || len >= sizeof s->name) {
        cli_error("replay", "bad --curve '%s': expected NAME[:MAXENTRIES]", v);
        return EXIT_USAGE;
    }
    memcpy(s->name, v, len);
    s->name[len] = 0;
    s->max = 0;
    if (colon &&
        (!cli_parse_u64(colon + 1, true, &s->max) || s->max == 0 || s->max > (UINT64_C(1) << 22))) {
        cli_error("replay", "bad --curve '%s': MAXENTRIES must be 1 … 4M", v);
        return EXIT_USAGE;
    }
    cv->n++;
    return 0;
}

/* Create and attach one curve on core c; records it in s. */
static int add(cli_curve_spec *s, vms_core *c, const uint64_t *spurious, unsigned sets,
               unsigned ways, double rate, vms_curve **slot)
{
    vms_err err = {0};
    if (vms_curve_create(NULL, sets, ways, rate, 1, slot, &err) != VMS_OK ||
        vms_core_curve_attach(c, s->name, *slot, &err) != VMS_OK) {
        cli_error("replay", "--curve %s: %s", s->name, err.msg);
        return EXIT_USAGE;
    }
    vms_curve_set_spurious(*slot, spurious);
    return 0;
}

int cli_curve_attach(cli_curves *cv, vms_machine *m, const vms_kernel *kern)
{
    const uint64_t *spur = &vms_kernel_get_stats(kern)->spurious;
    cv->m = m;
    unsigned ncores = vms_machine_ncores(m);
    for (int i = 0; i < cv->n; i++) {
        cli_curve_spec *s = &cv->spec[i];
        vms_err err = {0};
        vms_curve_geometry g;
        if (vms_core_curve_geometry(vms_machine_core(m, 0), s->name, &g, &err) != VMS_OK) {
            cli_error("replay", "--curve %s: %s", s->name, err.msg);
            return EXIT_USAGE;
        }
        s->geo = g;
        s->entries = s->max ? (unsigned)s->max : g.entries;
        /* set counts for the all-associativity curves: 2, 4, … up to the configured
         * sets, and the configured sets; each with every associativity to `entries` */
        s->nsets = 0;
        for (unsigned k = 2; g.sets > 1 && k <= g.sets && k <= s->entries; k *= 2)
            s->setcounts[s->nsets++] = k;
        if (g.sets > 1 && (g.sets & (g.sets - 1)) && g.sets <= s->entries)
            s->setcounts[s->nsets++] = g.sets;
        s->c = calloc((size_t)ncores * (2 + CLI_CURVE_SETS), sizeof *s->c);
        if (!s->c) {
            cli_error("replay", "out of memory");
            return 1;
        }
        for (unsigned k = 0; k < ncores; k++) {
            vms_core *core = vms_machine_core(m, k);
            vms_curve **row = s->c + (size_t)k * (2 + CLI_CURVE_SETS);
            if (add(s, core, spur, 1, s->entries, 1.0, &row[0]) ||
                (cv->rate > 0.0 && cv->rate < 1.0 &&
                 add(s, core, spur, 1, s->entries, cv->rate, &row[1])))
                return EXIT_USAGE;
            for (unsigned j = 0; j < s->nsets; j++)
                if (add(s, core, spur, s->setcounts[j], s->entries / s->setcounts[j], 1.0,
                        &row[2 + j]))
                    return EXIT_USAGE;
        }
    }
    return 0;
}

/* Curve `which` of spec s (0 exact, 1 sampled, 2 + j set count j): misses at `ways`,
 * summed over the cores. */
static uint64_t misses(const cli_curves *cv, const cli_curve_spec *s, unsigned which, unsigned ways)
{
    uint64_t sum = 0;
    for (unsigned k = 0; k < vms_machine_ncores(cv->m); k++)
        sum += vms_curve_misses(s->c[(size_t)k * (2 + CLI_CURVE_SETS) + which], ways);
    return sum;
}

static uint64_t lookups(const cli_curves *cv, const cli_curve_spec *s, unsigned which)
{
    uint64_t sum = 0;
    for (unsigned k = 0; k < vms_machine_ncores(cv->m); k++)
        sum += vms_curve_lookups(s->c[(size_t)k * (2 + CLI_CURVE_SETS) + which]);
    return sum;
}

/* The real structure's lookups (the TLB's or PWC level's own count), summed over cores. */
static uint64_t real_lookups(const cli_curves *cv, const cli_curve_spec *s)
{
    static const char *const tlbs[VMS_TLB_NLEVELS] = {"tlb.l1i", "tlb.l1d", "tlb.l2"};
    for (unsigned l = 0; l < VMS_TLB_NLEVELS; l++) {
        if (strcmp(s->name, tlbs[l]) != 0)
            continue;
        uint64_t n = 0;
        for (unsigned k = 0; k < vms_machine_ncores(cv->m); k++)
            n += vms_tlb_get_stats(vms_core_tlb(vms_machine_core(cv->m, k), (vms_tlb_level)l))
                     ->lookups;
        return n;
    }
    return lookups(cv, s, 0); /* a PWC level: the curve saw every lookup */
}

static void points(vms_strbuf *sb, const cli_curves *cv, const cli_curve_spec *s, unsigned which)
{
    vms_strbuf_printf(sb, "[");
    for (unsigned n = 1; n <= s->entries; n++)
        vms_strbuf_printf(sb, "%s{\"entries\":%u,\"misses\":%" PRIu64 "}", n > 1 ? "," : "", n,
                          misses(cv, s, which, n));
    vms_strbuf_printf(sb, "]");
}

void cli_curve_json(const cli_curves *cv, vms_strbuf *sb)
{
    if (cv->n == 0)
        return;
    vms_strbuf_printf(sb, ",\"curve\":{");
    for (int i = 0; i < cv->n; i++) {
        vms_strbuf_printf(sb, "%s\"%s\":", i ? "," : "", cv->spec[i].name);
        points(sb, cv, &cv->spec[i], 0);
    }
    vms_strbuf_printf(sb, "}");
    bool any = false;
    for (int i = 0; i < cv->n; i++) {
        const cli_curve_spec *s = &cv->spec[i];
        if (!s->nsets)
            continue;
        vms_strbuf_printf(sb, "%s\"%s\":[", any ? "," : ",\"curve_sets\":{", s->name);
        any = true;
        bool first = true;
        for (unsigned j = 0; j < s->nsets; j++) {
            unsigned sets = s->setcounts[j];
            for (unsigned w = 1; w <= s->entries / sets; w++) {
                vms_strbuf_printf(
                    sb, "%s{\"sets\":%u,\"ways\":%u,\"entries\":%u,\"misses\":%" PRIu64 "}",
                    first ? "" : ",", sets, w, sets * w, misses(cv, s, 2 + j, w));
                first = false;
            }
        }
        vms_strbuf_printf(sb, "]");
    }
    if (any)
        vms_strbuf_printf(sb, "}");
    if (!(cv->rate > 0.0 && cv->rate < 1.0))
        return;
    vms_strbuf_printf(sb, ",\"curve_sample\":{");
    for (int i = 0; i < cv->n; i++) {
        const cli_curve_spec *s = &cv->spec[i];
        uint64_t total = real_lookups(cv, s);
        double sum = 0, worst = 0;
        for (unsigned n = 1; n <= s->entries; n++) {
            double e =
                total ? ((double)misses(cv, s, 1, n) - (double)misses(cv, s, 0, n)) / (double)total
                      : 0.0;
            e = e < 0 ? -e : e;
            sum += e;
            worst = e > worst ? e : worst;
        }
        vms_strbuf_printf(
            sb,
            "%s\"%s\":{\"rate\":%g,\"lookups\":%" PRIu64 ",\"sampled_lookups\":%" PRIu64
            ",\"mean_abs_error\":%.6f,\"max_abs_error\":%.6f,\"points\":",
            i ? "," : "", s->name, cv->rate, total, lookups(cv, s, 1), sum / s->entries, worst);
        points(sb, cv, s, 1);
        vms_strbuf_printf(sb, "}");
    }
    vms_strbuf_printf(sb, "}");
}

/* The sizes the summary shows: powers of two, then the last; 0 after the last. */
static unsigned next_size(unsigned n, unsigned last)
{
    if (n >= last)
        return 0;
    return n * 2 < last ? n * 2 : last;
}

void cli_curve_summary(const cli_curves *cv, FILE *f)
{
    for (int i = 0; i < cv->n; i++) {
        const cli_curve_spec *s = &cv->spec[i];
        uint64_t total = real_lookups(cv, s);
        fprintf(f, "curve %-7s fully associative LRU, %" PRIu64 " lookups; misses by entries:",
                s->name, total);
        for (unsigned n = 1; n; n = next_size(n, s->entries))
            fprintf(f, " %u:%" PRIu64, n, misses(cv, s, 0, n));
        fputc('\n', f);
        if (cv->rate > 0.0 && cv->rate < 1.0) {
            fprintf(f, "  sampled   rate %g:", cv->rate);
            for (unsigned n = 1; n; n = next_size(n, s->entries))
                fprintf(f, " %u:%" PRIu64, n, misses(cv, s, 1, n));
            fputc('\n', f);
        }
    }
}

void cli_curve_free(cli_curves *cv)
{
    for (int i = 0; i < cv->n; i++) {
        cli_curve_spec *s = &cv->spec[i];
        if (!s->c)
            continue;
        unsigned ncores = cv->m ? vms_machine_ncores(cv->m) : 0;
        for (size_t k = 0; k < (size_t)ncores * (2 + CLI_CURVE_SETS); k++) {
            if (s->c[k] && cv->m)
                vms_core_curve_detach(vms_machine_core(cv->m, (unsigned)(k / (2 + CLI_CURVE_SETS))),
                                      s->c[k]);
            vms_curve_destroy(s->c[k]);
        }
        free(s->c);
        s->c = NULL;
    }
}
