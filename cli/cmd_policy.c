/*
 * cmd_policy.c — `vmsim policy`: replay a reference string through N frames under a
 * page-replacement policy (vms_policy_replay) and print what happened, reference by
 * reference, then the totals — as a table, or as JSON with --stats json.
 *
 * The command form is a contract (external tests use it):
 *   vmsim policy --policy NAME --frames N (--refs 1,2,3,… | --refs-file PATH)
 *                [--seed N] [--stats json]
 * Usage errors (unknown policy, frames 0, a bad reference) go to stderr with exit 2.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "vmsim/policy.h"
#include "vmsim/strbuf.h"

static const char policy_usage[] =
    "usage: vmsim policy --policy NAME --frames N (--refs LIST | --refs-file PATH)\n"
    "                    [--seed N] [--stats json]\n"
    "\n"
    "Replay a reference string of page numbers through N frames under a page-replacement\n"
    "policy and show, for each reference, hit or miss, the frames after it and the page\n"
    "evicted; then the totals. LIST is page numbers separated by commas or spaces, e.g.\n"
    "1,2,3,4,1,2,5,1,2,3,4,5; PATH holds the same (any whitespace or commas).\n"
    "\n"
    "  --policy NAME   replacement policy (below)\n"
    "  --frames N      number of frames (>= 1)\n"
    "  --seed N        seed of the random policy (default 1)\n"
    "  --stats json    print a JSON object instead: policy, frames, references, hits,\n"
    "                  misses, evictions, hit_rate and a per-reference \"steps\" array\n"
    "\n"
    "policies:\n";

/* Parsed command line. */
typedef struct popts {
    const char *policy, *refs, *refs_file, *stats;
    uint64_t frames, seed;
    bool have_frames;
} popts;

/* Print the usage text with the policy list to f. */
static void usage(FILE *f)
{
    fputs(policy_usage, f);
    for (unsigned i = 0; i < vms_page_policy_count(); i++)
        fprintf(f, "  %-9s %s\n", vms_page_policy_get(i)->name, vms_page_policy_get(i)->desc);
}

/* The value of option argv[*i] (--opt VALUE or --opt=VALUE), advancing *i; NULL if
 * argv[*i] is not `name` or the value is missing (then *missing is set). */
static const char *optval(int argc, char **argv, int *i, const char *name, bool *missing)
{
    size_t n = strlen(name);
    if (*i >= argc || !argv[*i] || strncmp(argv[*i], name, n) != 0)
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

/* Parse argv into *o. Returns 0, or the exit status to return (help: -1 for 0). */
static int parse_args(int argc, char **argv, popts *o)
{
    memset(o, 0, sizeof *o);
    o->seed = 1;
    for (int i = 1; i < argc; i++) {
        bool missing = false;
        const char *v, *frames = NULL, *seed = NULL;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
            return -1;
        if ((v = optval(argc, argv, &i, "--policy", &missing)))
            o->policy = v;
        else if ((v = optval(argc, argv, &i, "--frames", &missing)))
            frames = v;
        else if ((v = optval(argc, argv, &i, "--refs", &missing)))
            o->refs = v;
        else if ((v = optval(argc, argv, &i, "--refs-file", &missing)))
            o->refs_file = v;
        else if ((v = optval(argc, argv, &i, "--seed", &missing)))
            seed = v;
        else if ((v = optval(argc, argv, &i, "--stats", &missing)))
            o->stats = v;
        if (missing) {
            cli_error("policy", "option %s needs a value", argv[i]);
            return EXIT_USAGE;
        }
        if (!v) {
            cli_error("policy", "unknown argument '%s' (see vmsim policy --help)", argv[i]);
            return EXIT_USAGE;
        }
        if (frames && !(cli_parse_u64(frames, false, &o->frames) && o->frames > 0)) {
            cli_error("policy", "--frames: expected a number of frames >= 1, got '%s'", frames);
            return EXIT_USAGE;
        }
        o->have_frames |= frames != NULL;
        if (seed && !cli_parse_u64(seed, false, &o->seed)) {
            cli_error("policy", "--seed: expected a number, got '%s'", seed);
            return EXIT_USAGE;
        }
    }
    return 0;
}

/* Check that the options make a complete request. Returns 0 or EXIT_USAGE. */
static int check_args(const popts *o)
{
    const char *missing = !o->policy                    ? "--policy NAME"
                          : !o->have_frames             ? "--frames N"
                          : (!o->refs && !o->refs_file) ? "--refs LIST or --refs-file PATH"
                                                        : NULL;
    if (missing) {
        cli_error("policy", "missing %s (see vmsim policy --help)", missing);
        return EXIT_USAGE;
    }
    if (o->refs && o->refs_file) {
        cli_error("policy", "give --refs or --refs-file, not both");
        return EXIT_USAGE;
    }
    if (o->stats && strcmp(o->stats, "json") != 0) {
        cli_error("policy", "--stats: the only format is 'json', got '%s'", o->stats);
        return EXIT_USAGE;
    }
    return 0;
}

/* Read a whole file into a NUL-terminated malloc'ed string; NULL (errno set) on failure. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    while (buf) {
        len += fread(buf + len, 1, cap - len - 1, f);
        if (len < cap - 1)
            break; /* end of file or error */
        char *nb = realloc(buf, cap * 2);
        if (!nb)
            free(buf);
        buf = nb;
        cap *= 2;
    }
    bool bad = ferror(f) != 0;
    fclose(f);
    if (!buf || bad) {
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    return buf;
}

/* Output being built while the replay runs. */
typedef struct out {
    vms_strbuf sb;
    bool json;
    size_t columns; /* frame columns in the table: min(frames, distinct pages) */
    int width;      /* characters of the widest page number */
} out;

/* Characters of the table's frames column (at least its title's). */
static size_t frames_width(const out *o)
{
    size_t w = o->columns * (size_t)(o->width + 1);
    return w < 13 ? 13 : w;
}

/* One table row, or one element of the JSON "steps" array. */
static void on_step(void *ud, const vms_policy_step *s, const uint64_t *frames, size_t used)
{
    out *o = ud;
    vms_strbuf *sb = &o->sb;
    if (o->json) {
        vms_strbuf_printf(sb, "%s\n    {\"ref\": %" PRIu64 ", \"hit\": %s, \"evicted\": ",
                          s->index ? "," : "", s->page, s->hit ? "true" : "false");
        if (s->evicted)
            vms_strbuf_printf(sb, "%" PRIu64, s->victim);
        else
            vms_strbuf_printf(sb, "null");
        vms_strbuf_printf(sb, ", \"frames\": [");
        for (size_t k = 0; k < used; k++)
            vms_strbuf_printf(sb, "%s%" PRIu64, k ? ", " : "", frames[k]);
        vms_strbuf_printf(sb, "]}");
        return;
    }
    vms_strbuf_printf(sb, "%6zu  %*" PRIu64 "  %-6s", s->index + 1, o->width, s->page,
                      s->hit ? "hit" : "miss");
    size_t start = sb->len;
    for (size_t k = 0; k < o->columns; k++) {
        if (k < used)
            vms_strbuf_printf(sb, " %*" PRIu64, o->width, frames[k]);
        else
            vms_strbuf_printf(sb, " %*s", o->width, "-");
    }
    if (s->evicted)
        vms_strbuf_printf(sb, "%*s  %" PRIu64, (int)(frames_width(o) - (sb->len - start)), "",
                          s->victim);
    vms_strbuf_printf(sb, "\n");
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Set the table's geometry: one column per frame that can fill, pages' widest width. */
static bool layout(out *o, const uint64_t *refs, size_t n, uint64_t frames)
{
    uint64_t *v = malloc(n * sizeof *v);
    if (!v)
        return false;
    memcpy(v, refs, n * sizeof *v);
    qsort(v, n, sizeof *v, cmp_u64);
    size_t distinct = 0;
    for (size_t i = 0; i < n; i++)
        distinct += i == 0 || v[i] != v[i - 1];
    o->columns = frames < distinct ? (size_t)frames : distinct;
    o->width = snprintf(NULL, 0, "%" PRIu64, v[n - 1]);
    if (o->width < 3)
        o->width = 3;
    free(v);
    return true;
}

/* The header of the table or of the JSON object. */
static void head(out *o, const popts *p, size_t n)
{
    if (o->json) {
        vms_strbuf_printf(&o->sb,
                          "{\n  \"policy\": \"%s\",\n  \"frames\": %" PRIu64 ",\n  \"steps\": [",
                          p->policy, p->frames);
        return;
    }
    vms_strbuf_printf(&o->sb, "policy %s, %" PRIu64 " frame%s, %zu references\n\n", p->policy,
                      p->frames, p->frames == 1 ? "" : "s", n);
    vms_strbuf_printf(&o->sb, "%6s  %*s  %-6s %-*s  %s\n", "#", o->width, "ref", "result",
                      (int)frames_width(o) - 1, "frames after", "evicted");
}

/* The totals, closing the JSON object or ending the table. */
static void tail(out *o, const vms_policy_totals *t)
{
    if (o->json) {
        vms_strbuf_printf(&o->sb,
                          "\n  ],\n  \"references\": %" PRIu64 ",\n  \"hits\": %" PRIu64
                          ",\n  \"misses\": %" PRIu64 ",\n  \"evictions\": %" PRIu64
                          ",\n  \"hit_rate\": %.6f\n}\n",
                          t->references, t->hits, t->misses, t->evictions, t->hit_rate);
        return;
    }
    vms_strbuf_printf(&o->sb,
                      "\n%" PRIu64 " references: %" PRIu64 " hits, %" PRIu64
                      " misses (page faults), %" PRIu64 " evictions; hit rate %.2f%%\n",
                      t->references, t->hits, t->misses, t->evictions, 100.0 * t->hit_rate);
}

/* Load the reference string from --refs or --refs-file. Returns 0 or an exit status. */
static int load_refs(const popts *p, uint64_t **refs, size_t *n)
{
    char *text = NULL;
    if (p->refs_file && !(text = slurp(p->refs_file))) {
        cli_error("policy", "cannot read --refs-file %s: %s", p->refs_file, strerror(errno));
        return 1;
    }
    vms_err err = {0};
    vms_status st = vms_policy_refs_parse(text ? text : p->refs, NULL, refs, n, &err);
    free(text);
    if (st != VMS_OK) {
        cli_error("policy", "%s%s: %s", p->refs_file ? "" : "--refs",
                  p->refs_file ? p->refs_file : "", err.msg);
        return st == VMS_ERR_PARSE ? EXIT_USAGE : 1;
    }
    return 0;
}

int cmd_policy(int argc, char **argv)
{
    popts p;
    int rc = parse_args(argc, argv, &p);
    if (rc == 0)
        rc = check_args(&p);
    if (rc) {
        if (rc < 0)
            usage(stdout);
        return rc < 0 ? 0 : rc;
    }
    vms_err err = {0};
    const vms_page_policy *pol = NULL;
    vms_policy_host future = {NULL, NULL, NULL};
    if (vms_page_policy_select(p.policy, &future, &pol, &err) == VMS_ERR_NOTFOUND) {
        cli_error("policy", "%s", err.msg); /* before reading a possibly large file */
        return EXIT_USAGE;
    }
    uint64_t *refs = NULL;
    size_t n = 0;
    if ((rc = load_refs(&p, &refs, &n)) != 0)
        return rc;
    out o = {.json = p.stats != NULL};
    vms_strbuf_init(&o.sb, NULL);
    vms_policy_totals t;
    vms_policy_replay_opts ro = {.policy = p.policy,
                                 .frames = (size_t)p.frames,
                                 .seed = p.seed,
                                 .on_step = on_step,
                                 .ud = &o};
    vms_status st = layout(&o, refs, n, p.frames) ? VMS_OK : VMS_ERR_NOMEM;
    if (st == VMS_OK) {
        head(&o, &p, n);
        st = vms_policy_replay(refs, n, &ro, &t, &err);
    }
    if (st == VMS_OK && !o.sb.failed) {
        tail(&o, &t);
        fputs(vms_strbuf_str(&o.sb), stdout);
    } else {
        cli_error("policy", "%s", st != VMS_OK ? err.msg : "out of memory");
    }
    vms_strbuf_free(&o.sb);
    vms_policy_refs_free(NULL, refs, n);
    return st == VMS_OK && !o.sb.failed ? 0 : (st == VMS_ERR_INVAL ? EXIT_USAGE : 1);
}
