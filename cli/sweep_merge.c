/*
 * sweep_merge.c — `vmsim sweep merge`: the JSON lines of any number of sweep runs,
 * shards or machines joined into one CSV table, one row per result key; and the loader
 * `vmsim plot` shares (cli_results_load).
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json.h"

/* The table's measured columns: a counter, or a ratio of two. */
static const struct metric {
    const char *name, *num, *den;
} metrics[] = {
    {"references", "replay.references", NULL},
    {"cycles", "cycles", NULL},
    {"cycles_per_ref", "cycles", "replay.references"},
    {"l1i_misses", "tlb.l1i.misses", NULL},
    {"l1i_miss_rate", "tlb.l1i.misses", "tlb.l1i.lookups"},
    {"l1d_misses", "tlb.l1d.misses", NULL},
    {"l1d_miss_rate", "tlb.l1d.misses", "tlb.l1d.lookups"},
    {"l2_misses", "tlb.l2.misses", NULL},
    {"l2_miss_rate", "tlb.l2.misses", "tlb.l2.lookups"},
    {"walks", "walks", NULL},
    {"walk_mem_refs", "walk.mem_refs", NULL},
    {"faults", "faults.total", NULL},
    {"major_faults", "faults.major", NULL},
};
#define NMETRICS (sizeof metrics / sizeof metrics[0])

unsigned cli_metric_count(void)
{
    return NMETRICS;
}

const char *cli_metric_name(unsigned i)
{
    return i < NMETRICS ? metrics[i].name : NULL;
}

bool cli_metric_value(const cli_json *j, unsigned i, double *out)
{
    double n, d = 1;
    if (i >= NMETRICS || !cli_json_num(j, metrics[i].num, &n))
        return false;
    if (metrics[i].den && (!cli_json_num(j, metrics[i].den, &d) || d == 0))
        return false;
    *out = n / d;
    return true;
}

static int by_spec_task(const void *a, const void *b)
{
    const cli_result *x = a, *y = b;
    int c = strcmp(x->spec, y->spec);
    if (c)
        return c;
    return (x->task > y->task) - (x->task < y->task);
}

/* Read one file's lines into rs, keeping the first line of each key. */
static int load_file(const char *path, cli_results *rs)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        cli_error("sweep merge", "%s: cannot open", path);
        return 1;
    }
    vms_strbuf line;
    vms_strbuf_init(&line, NULL);
    char buf[1 << 14];
    unsigned lineno = 0;
    int rc = 0;
    for (bool more = true; more && !rc;) {
        line.len = 0;
        bool got = false;
        while ((more = fgets(buf, sizeof buf, f) != NULL)) {
            got = true;
            size_t n = strlen(buf);
            bool eol = n && buf[n - 1] == '\n';
            vms_strbuf_append(&line, buf, n - eol);
            if (eol)
                break;
        }
        if (!got)
            break;
        lineno++;
        if (!line.len)
            continue;
        size_t where = 0;
        cli_json *j = cli_json_parse(vms_strbuf_str(&line), &where);
        const cli_json *key = cli_json_path(j, "sweep.key"), *spec = cli_json_path(j, "sweep.spec");
        double task;
        if (!j || !key || key->type != CLI_JSON_STR || !spec || spec->type != CLI_JSON_STR ||
            !cli_json_num(j, "sweep.task", &task)) {
            fprintf(stderr,
                    "vmsim sweep merge: %s:%u: not a sweep result (%s at byte %zu); skipped\n",
                    path, lineno, j ? "no sweep.key, sweep.task, sweep.spec" : "bad JSON", where);
            cli_json_free(j);
            continue;
        }
        bool dup = false;
        for (size_t i = 0; i < rs->n && !dup; i++)
            dup = !strcmp(rs->r[i].key, key->str);
        if (dup) {
            cli_json_free(j);
            continue;
        }
        if (rs->n == rs->cap) {
            size_t nc = rs->cap ? rs->cap * 2 : 64;
            cli_result *r = realloc(rs->r, nc * sizeof *r);
            if (!r) {
                cli_json_free(j);
                rc = 1;
                break;
            }
            rs->r = r;
            rs->cap = nc;
        }
        rs->r[rs->n++] = (cli_result){j, key->str, spec->str, task};
    }
    vms_strbuf_free(&line);
    fclose(f);
    return rc;
}

int cli_results_load(const char *const *files, int nfiles, cli_results *rs)
{
    memset(rs, 0, sizeof *rs);
    for (int i = 0; i < nfiles; i++)
        if (load_file(files[i], rs))
            return 1;
    if (rs->n)
        qsort(rs->r, rs->n, sizeof *rs->r, by_spec_task);
    /* The settings columns: every SPEC key, in order of first appearance. */
    for (size_t i = 0; i < rs->n; i++) {
        const cli_json *s = cli_json_path(rs->r[i].j, "sweep.settings");
        for (size_t k = 0; s && s->type == CLI_JSON_OBJ && k < s->nkids; k++) {
            bool seen = false;
            for (size_t c = 0; c < rs->ncols && !seen; c++)
                seen = !strcmp(rs->col[c], s->kids[k].key);
            if (!seen && rs->ncols < CLI_RESULTS_MAXCOLS)
                rs->col[rs->ncols++] = s->kids[k].key;
        }
    }
    return 0;
}

void cli_results_free(cli_results *rs)
{
    for (size_t i = 0; i < rs->n; i++)
        cli_json_free(rs->r[i].j);
    free(rs->r);
}

const char *cli_result_setting(const cli_result *r, const char *key)
{
    const cli_json *v = cli_json_get(cli_json_path(r->j, "sweep.settings"), key);
    return v && v->type == CLI_JSON_STR ? v->str : "";
}

/* A CSV field: quoted when it holds a comma, quote or newline. */
static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static const char merge_usage[] = "usage: vmsim sweep merge [-o OUT] RESULTS...\n"
                                  "(see vmsim sweep --help)\n";

int cmd_sweep_merge(int argc, char **argv);

int cmd_sweep_merge(int argc, char **argv)
{
    const char *out_path = NULL;
    char **files = calloc((size_t)argc, sizeof *files);
    int nfiles = 0;
    for (int i = 1; files && i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(merge_usage, stdout);
            free(files);
            return 0;
        } else if (!strcmp(argv[i], "-o") && i + 1 < argc) {
            out_path = argv[++i];
        } else if (argv[i][0] == '-') {
            cli_error("sweep merge", "unexpected argument '%s'\n%s", argv[i], merge_usage);
            free(files);
            return EXIT_USAGE;
        } else {
            files[nfiles++] = argv[i];
        }
    }
    if (!nfiles) {
        cli_error("sweep merge", "no result files given\n%s", merge_usage);
        free(files);
        return EXIT_USAGE;
    }
    cli_results rs;
    int rc = cli_results_load((const char *const *)files, nfiles, &rs);
    FILE *out = stdout;
    if (!rc && out_path && !(out = fopen(out_path, "w"))) {
        cli_error("sweep merge", "%s: cannot create", out_path);
        rc = 1;
    }
    if (!rc) {
        fputs("task,key", out);
        for (size_t c = 0; c < rs.ncols; c++) {
            fputc(',', out);
            csv_field(out, rs.col[c]);
        }
        for (unsigned m = 0; m < NMETRICS; m++)
            fprintf(out, ",%s", metrics[m].name);
        fputc('\n', out);
        for (size_t i = 0; i < rs.n; i++) {
            const cli_result *r = &rs.r[i];
            fprintf(out, "%.0f,%s", r->task, r->key);
            for (size_t c = 0; c < rs.ncols; c++) {
                fputc(',', out);
                csv_field(out, cli_result_setting(r, rs.col[c]));
            }
            for (unsigned m = 0; m < NMETRICS; m++) {
                double v;
                if (!cli_metric_value(r->j, m, &v))
                    fputs(",", out);
                else if (metrics[m].den)
                    fprintf(out, ",%.6f", v);
                else
                    fprintf(out, ",%.0f", v);
            }
            fputc('\n', out);
        }
        if (out != stdout && fclose(out) != 0) {
            cli_error("sweep merge", "%s: write failed", out_path);
            rc = 1;
        }
    }
    cli_results_free(&rs);
    free(files);
    return rc;
}
