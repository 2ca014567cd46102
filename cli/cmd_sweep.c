/*
 * cmd_sweep.c — `vmsim sweep SPEC`: a parameter sweep as a deterministic task list.
 *
 * SPEC is a configuration file (the INI syntax of --config, docs/CONFIG.md) whose values
 * may list alternatives separated by " | ", plus the keys `trace` (required), `format`,
 * `layout` and `limit` of `vmsim replay`. The tasks are the cartesian product of the
 * alternatives, numbered from 0 with the last key varying fastest (like nested loops in
 * the order the keys appear). Each task is one replay; its result is the replay's --stats
 * json object with a "sweep" member in front: {"key", "task", "spec", "settings"}. The
 * key is the first 16 hex digits of the SHA-256 of (the full configuration as `vmsim
 * config` prints it, the trace's SHA-256, format, layout, limit, and the vmsim version
 * and build), so results from any machine, shard or run can be merged and a re-run only
 * does what is missing. docs/SWEEP.md has the recipes (all cores, GNU parallel, Slurm).
 *
 * Locally, tasks run in child processes (fork), up to -j at a time (default: every
 * online core); their lines are written in task order, so the output does not depend
 * on -j.
 */
#define _POSIX_C_SOURCE 200809L /* fork, sysconf */
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "json.h"
#include "vmsim/hash.h"
#include "vmsim/version.h"

static const char usage[] =
    "usage: vmsim sweep SPEC [--list [--missing FILE] | --task I | --shard I/N | --shard slurm]\n"
    "                        [-o FILE] [-j N] [--one-pass]\n"
    "       vmsim sweep merge [-o OUT] RESULTS...\n"
    "\n"
    "Expand SPEC, a configuration file whose values may list alternatives separated by\n"
    "\" | \" (trace = a.vmt | b.vmt, tlb.l1d = 4K:16x4:lru | 4K:8x4:lru), into the\n"
    "cartesian product of its alternatives: tasks numbered from 0, the last key varying\n"
    "fastest. Besides configuration keys SPEC takes trace (required), format, layout and\n"
    "limit, as `vmsim replay` does. Each task replays its trace and gives one JSON line:\n"
    "the --stats json object with \"sweep\": {\"key\", \"task\", \"spec\", \"settings\"} in\n"
    "front; the key hashes the full configuration, the trace's SHA-256 and the vmsim\n"
    "version, so re-running only what is missing is a matter of -o.\n"
    "\n"
    "options:\n"
    "  --list              print the tasks, one per line: INDEX, KEY, then KEY=VALUE for\n"
    "                      every SPEC key, separated by tabs (nothing runs)\n"
    "  --missing FILE      with --list: only the tasks whose results FILE lacks\n"
    "  --task I            run task I and print its JSON line\n"
    "  --shard I/N         run the tasks whose index is I modulo N (0 <= I < N)\n"
    "  --shard slurm       the same with I and N from a Slurm job array:\n"
    "                      SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_COUNT\n"
    "  -o FILE             append results to FILE, skipping tasks already in it\n"
    "                      (default: every task, to stdout)\n"
    "  -j N                tasks run at once, each in its own process (default: the\n"
    "                      number of online cores); output is in task order regardless\n"
    "  --one-pass          the tasks of one trace share one pass of the trace reader: it\n"
    "                      decodes the trace once and -j threads replay it into every\n"
    "                      task's machine (up to 64 tasks a pass; the same result lines)\n"
    "  -h, --help          this text\n"
    "\n"
    "merge: read result files (JSON lines from any runs, shards or machines), keep one\n"
    "line per key, and print one CSV table ordered by spec and task: task, key, every\n"
    "SPEC key, then references, cycles, cycles_per_ref, l1i/l1d/l2 misses and miss rates,\n"
    "walks, walk_mem_refs, faults, major_faults. -o OUT writes it to OUT.\n"
    "\n"
    "exit status: 0 every task ran, 1 a task failed (its message is on stderr; the other\n"
    "tasks still run), 2 a usage error or a bad SPEC (file and line on stderr).\n";

#define MAX_ENTRIES 64
#define MAX_ALTS    256
#define MAX_TASKS   UINT64_C(100000000)

typedef struct entry {
    char *key;
    char *alt[MAX_ALTS];
    unsigned nalts, line;
} entry;

typedef struct trace_hash {
    char *path;
    char sha256[65];
} trace_hash;

typedef struct spec {
    const char *path;
    char **argv; /* a `vmsim replay --sweep` command line: line i is argv[i] (else NULL) */
    entry e[MAX_ENTRIES];
    unsigned n;
    uint64_t ntasks;
    trace_hash *traces; /* the SHA-256 of each trace, computed once */
    size_t ntraces;
} spec;

/* One task, built from the spec: its configuration, replay job and key. */
typedef struct task {
    uint64_t index;
    unsigned choice[MAX_ENTRIES];
    vms_config cfg;
    cli_replay_job job;
    char key[17];
} task;

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

static void spec_free(spec *sp)
{
    for (unsigned i = 0; i < sp->n; i++) {
        free(sp->e[i].key);
        for (unsigned a = 0; a < sp->e[i].nalts; a++)
            free(sp->e[i].alt[a]);
    }
    for (size_t i = 0; i < sp->ntraces; i++)
        free(sp->traces[i].path);
    free(sp->traces);
}

static int spec_err(const spec *sp, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "vmsim sweep: SPEC:LINE: message" on stderr ("vmsim replay: ARGUMENT: message" for a
 * command line's spec); returns EXIT_USAGE. */
static int spec_err(const spec *sp, unsigned line, const char *fmt, ...)
{
    va_list ap;
    if (sp->argv)
        fprintf(stderr, "vmsim replay: %s: ", sp->argv[line]);
    else
        fprintf(stderr, "vmsim sweep: %s:%u: ", sp->path, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return EXIT_USAGE;
}

/* Check one alternative of a key now, so that a typo fails before anything runs. */
static int check_value(const spec *sp, const entry *e, const char *v)
{
    vms_err err = {0};
    uint64_t n;
    vms_trace_format f;
    vms_replay_layout l;
    if (!strcmp(e->key, "trace"))
        return 0; /* opened when keys are computed */
    if (!strcmp(e->key, "format"))
        return vms_trace_format_parse(strcmp(v, "din") ? v : "dinero", &f, &err) == VMS_OK
                   ? 0
                   : spec_err(sp, e->line, "format: %s", err.msg);
    if (!strcmp(e->key, "layout"))
        return vms_replay_layout_parse(v, &l, &err) == VMS_OK
                   ? 0
                   : spec_err(sp, e->line, "layout '%s': expected auto or recorded", v);
    if (!strcmp(e->key, "limit"))
        return cli_parse_u64(v, true, &n)
                   ? 0
                   : spec_err(sp, e->line, "limit '%s': expected a number", v);
    vms_config c;
    vms_config_init(&c, NULL, NULL);
    if (vms_config_set(&c, e->key, v, "", &err) != VMS_OK)
        return spec_err(sp, e->line, "%s", err.msg[0] == ':' ? err.msg + 2 : err.msg);
    return 0;
}

/* Add `key = value` (value holding alternatives separated by sep) at line. */
static int add_entry(spec *sp, const char *key, char *value, unsigned line, const char *sep)
{
    for (unsigned i = 0; i < sp->n; i++)
        if (!strcmp(sp->e[i].key, key))
            return sp->argv
                       ? spec_err(sp, line, "%s is already given by %s", key,
                                  sp->argv[sp->e[i].line])
                       : spec_err(sp, line, "%s is already set on line %u", key, sp->e[i].line);
    if (sp->n == MAX_ENTRIES)
        return spec_err(sp, line, "too many keys (at most %d)", MAX_ENTRIES);
    entry *e = &sp->e[sp->n++];
    e->key = strdup(key);
    e->line = line;
    for (char *p = value;;) {
        char *bar = sep ? strstr(p, sep) : NULL;
        if (bar)
            *bar = '\0';
        char *v = trim(p);
        if (!*v)
            return spec_err(sp, line, "%s: an empty alternative (expected VALUE | VALUE …)", key);
        if (e->nalts == MAX_ALTS)
            return spec_err(sp, line, "%s: too many alternatives (at most %d)", key, MAX_ALTS);
        e->alt[e->nalts++] = strdup(v);
        int rc = check_value(sp, e, v);
        if (rc)
            return rc;
        if (!bar)
            break;
        p = bar + strlen(sep);
    }
    return 0;
}

/* Count the tasks; a spec needs a trace key (line: where to say it is missing). */
static int spec_count(spec *sp, unsigned line)
{
    bool has_trace = false;
    sp->ntasks = 1;
    for (unsigned i = 0; i < sp->n; i++) {
        has_trace |= !strcmp(sp->e[i].key, "trace");
        sp->ntasks *= sp->e[i].nalts;
        if (sp->ntasks > MAX_TASKS)
            return spec_err(sp, sp->e[i].line, "more than %" PRIu64 " tasks", MAX_TASKS);
    }
    if (!has_trace)
        return spec_err(sp, line, "no trace key (trace = FILE [| FILE …])");
    return 0;
}

/* Parse the SPEC file: sections, comments (# or ; first on a line), key = value. */
static int spec_load(spec *sp, const char *path)
{
    memset(sp, 0, sizeof *sp);
    sp->path = path;
    FILE *f = fopen(path, "r");
    if (!f) {
        cli_error("sweep", "%s: cannot open the sweep spec", path);
        return EXIT_USAGE;
    }
    char buf[8192], section[128] = "";
    unsigned line = 0;
    int rc = 0;
    while (!rc && fgets(buf, sizeof buf, f)) {
        line++;
        char *s = trim(buf);
        size_t n = strlen(s);
        if (n && s[n - 1] == '\n')
            s[--n] = '\0';
        s = trim(s);
        if (!*s || *s == '#' || *s == ';')
            continue;
        if (*s == '[') {
            char *close = strchr(s, ']');
            if (!close || close[1] || close - s - 1 >= (long)sizeof section)
                rc = spec_err(sp, line, "expected [SECTION]");
            else
                snprintf(section, sizeof section, "%.*s", (int)(close - s - 1), s + 1);
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = spec_err(sp, line, "expected KEY = VALUE [| VALUE …], got '%s'", s);
            continue;
        }
        *eq = '\0';
        char key[256];
        snprintf(key, sizeof key, "%s%s%s", section, section[0] ? "." : "", trim(s));
        rc = add_entry(sp, key, eq + 1, line, " | ");
    }
    fclose(f);
    return rc ? rc : spec_count(sp, line);
}

/* The SHA-256 of trace path, computed once per spec. NULL (message on stderr) if the
 * file cannot be read. */
static const char *trace_sha(spec *sp, const char *path, unsigned line)
{
    for (size_t i = 0; i < sp->ntraces; i++)
        if (!strcmp(sp->traces[i].path, path))
            return sp->traces[i].sha256;
    trace_hash *t = realloc(sp->traces, (sp->ntraces + 1) * sizeof *t);
    if (!t)
        return NULL;
    sp->traces = t;
    t = &sp->traces[sp->ntraces];
    vms_err err = {0};
    if (!strcmp(path, "-") || vms_sha256_file(path, t->sha256, &err) != VMS_OK) {
        spec_err(sp, line, "trace %s: %s", path,
                 strcmp(path, "-") ? "cannot be read" : "stdin cannot be swept");
        return NULL;
    }
    t->path = strdup(path);
    sp->ntraces++;
    return t->sha256;
}

/* Build task `index`: apply its alternatives in SPEC order and compute its key. */
static int task_build(spec *sp, uint64_t index, task *t)
{
    memset(t, 0, sizeof *t);
    t->index = index;
    for (uint64_t rest = index, i = sp->n; i-- > 0;) {
        t->choice[i] = (unsigned)(rest % sp->e[i].nalts);
        rest /= sp->e[i].nalts;
    }
    vms_config_init(&t->cfg, NULL, NULL);
    unsigned trace_line = 0;
    for (unsigned i = 0; i < sp->n; i++) {
        const entry *e = &sp->e[i];
        const char *v = e->alt[t->choice[i]];
        vms_err err = {0};
        if (!strcmp(e->key, "trace")) {
            t->job.path = v;
            trace_line = e->line;
        } else if (!strcmp(e->key, "format")) {
            vms_trace_format_parse(strcmp(v, "din") ? v : "dinero", &t->job.format, NULL);
        } else if (!strcmp(e->key, "layout")) {
            vms_replay_layout_parse(v, &t->job.layout, NULL);
        } else if (!strcmp(e->key, "limit")) {
            cli_parse_u64(v, true, &t->job.limit);
        } else if (vms_config_set(&t->cfg, e->key, v, "", &err) != VMS_OK) {
            return spec_err(sp, e->line, "task %" PRIu64 ": %s", index,
                            err.msg[0] == ':' ? err.msg + 2 : err.msg);
        }
    }
    const char *sha = trace_sha(sp, t->job.path, trace_line);
    if (!sha)
        return EXIT_USAGE;
    vms_strbuf sb;
    vms_strbuf_init(&sb, NULL);
    vms_strbuf_printf(&sb, "vmsim %s %s\n", vms_version(), vms_version_build());
    vms_config_dump(&t->cfg, &sb);
    vms_strbuf_printf(&sb, "trace.sha256 = %s\nformat = %s\nlayout = %s\nlimit = %" PRIu64 "\n",
                      sha, vms_trace_format_name(t->job.format),
                      vms_replay_layout_name(t->job.layout), t->job.limit);
    char hex[65];
    vms_sha256_hex(vms_strbuf_str(&sb), sb.len, hex);
    vms_strbuf_free(&sb);
    memcpy(t->key, hex, 16);
    t->key[16] = '\0';
    return 0;
}

/* The start of task t's JSON line: {"sweep":{…}, */
static void task_head(const spec *sp, const task *t, vms_strbuf *line)
{
    vms_strbuf_printf(line, "{\"sweep\":{\"key\":\"%s\",\"task\":%" PRIu64 ",\"spec\":", t->key,
                      t->index);
    vms_strbuf_json_str(line, sp->path);
    vms_strbuf_printf(line, ",\"settings\":{");
    for (unsigned i = 0; i < sp->n; i++) {
        vms_strbuf_printf(line, "%s", i ? "," : "");
        vms_strbuf_json_str(line, sp->e[i].key);
        vms_strbuf_printf(line, ":");
        vms_strbuf_json_str(line, sp->e[i].alt[t->choice[i]]);
    }
    vms_strbuf_printf(line, "}},");
}

/* Run task t and append its JSON line to line. Returns 0, or the replay's status. */
static int task_run(const spec *sp, task *t, vms_strbuf *line)
{
    task_head(sp, t, line);
    int rc = cli_replay_json(&t->cfg, &t->job, line);
    vms_strbuf_printf(line, "}\n");
    return line->failed ? 1 : rc;
}

/* ---- results files --------------------------------------------------------------------- */

typedef struct keyset {
    char (*key)[17];
    size_t n, cap;
} keyset;

static bool keyset_has(const keyset *ks, const char *key)
{
    for (size_t i = 0; i < ks->n; i++)
        if (!strcmp(ks->key[i], key))
            return true;
    return false;
}

static void keyset_add(keyset *ks, const char *key)
{
    if (ks->n == ks->cap) {
        size_t nc = ks->cap ? ks->cap * 2 : 64;
        void *k = realloc(ks->key, nc * sizeof *ks->key);
        if (!k)
            return;
        ks->key = k;
        ks->cap = nc;
    }
    snprintf(ks->key[ks->n++], 17, "%s", key);
}

/* The keys of the complete result lines in path (a missing file has none). A line is
 * complete when it ends in a newline; results lines start {"sweep":{"key":"KEY". */
static void read_keys(const char *path, keyset *ks)
{
    static const char prefix[] = "{\"sweep\":{\"key\":\"";
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char head[64];
    int c = 0;
    while (fgets(head, sizeof head, f)) {
        bool whole = strchr(head, '\n') != NULL;
        char key[17];
        bool ok = !strncmp(head, prefix, sizeof prefix - 1) &&
                  strlen(head) >= sizeof prefix - 1 + 17 && head[sizeof prefix - 1 + 16] == '"';
        if (ok) {
            memcpy(key, head + sizeof prefix - 1, 16);
            key[16] = '\0';
        }
        while (!whole && (c = fgetc(f)) != EOF && c != '\n')
            ;
        if (ok && (whole || c == '\n'))
            keyset_add(ks, key);
    }
    fclose(f);
}

/* ---- running tasks -------------------------------------------------------------------- */

/* A task running in a child process, its line coming through a pipe. */
typedef struct child {
    pid_t pid;
    int fd;
    uint64_t index;
} child;

static child spawn(spec *sp, uint64_t index)
{
    child ch = {-1, -1, index};
    int p[2];
    if (pipe(p) != 0)
        return ch;
    fflush(NULL);
    ch.pid = fork();
    if (ch.pid == 0) {
        close(p[0]);
        task t;
        vms_strbuf line;
        vms_strbuf_init(&line, NULL);
        int rc = task_build(sp, index, &t);
        if (!rc)
            rc = task_run(sp, &t, &line);
        for (size_t off = 0; !rc && off < line.len;) {
            ssize_t w = write(p[1], vms_strbuf_str(&line) + off, line.len - off);
            if (w < 0 && errno != EINTR)
                rc = 1;
            off += w > 0 ? (size_t)w : 0;
        }
        _exit(rc);
    }
    close(p[1]);
    if (ch.pid < 0)
        close(p[0]);
    else
        ch.fd = p[0];
    return ch;
}

/* Wait for ch, writing its line to out. Returns 0 when the task succeeded. */
static int collect(child ch, FILE *out)
{
    if (ch.pid < 0) {
        cli_error("sweep", "task %" PRIu64 ": cannot start a process", ch.index);
        return 1;
    }
    vms_strbuf sb;
    vms_strbuf_init(&sb, NULL);
    char buf[1 << 16];
    ssize_t n;
    while ((n = read(ch.fd, buf, sizeof buf)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        vms_strbuf_append(&sb, buf, (size_t)n);
    }
    close(ch.fd);
    int status = 0;
    while (waitpid(ch.pid, &status, 0) < 0 && errno == EINTR)
        ;
    bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 && sb.len && !sb.failed;
    if (ok) {
        fputs(vms_strbuf_str(&sb), out);
        fflush(out);
    } else {
        cli_error("sweep", "task %" PRIu64 " failed", ch.index);
    }
    vms_strbuf_free(&sb);
    return ok ? 0 : 1;
}

/* Run tasks idx[0..n) with up to jobs processes, writing lines to out in order. */
static int run_tasks(spec *sp, const uint64_t *idx, size_t n, unsigned jobs, FILE *out)
{
    child *win = calloc(jobs, sizeof *win);
    if (!win)
        return 1;
    size_t started = 0, done = 0;
    int failed = 0;
    while (done < n) {
        while (started < n && started - done < jobs) {
            win[started % jobs] = spawn(sp, idx[started]);
            started++;
        }
        failed |= collect(win[done % jobs], out);
        done++;
    }
    free(win);
    return failed;
}

/* ---- one pass of the reader for many tasks (sweep_pass.c) ----------------------------- */

#define PASS_MAX 64 /* tasks sharing one pass (each holds a machine) */

/* The layout vms_replay_run would decide for path's first event (DEFAULT when empty). */
static vms_replay_layout first_layout(const char *path, vms_trace_format fmt)
{
    vms_trace_reader *rd = NULL;
    vms_trace_event ev;
    vms_replay_layout l = VMS_REPLAY_LAYOUT_DEFAULT;
    if (vms_trace_reader_open(path, fmt, NULL, &rd, NULL) == VMS_OK &&
        vms_trace_read(rd, &ev, NULL))
        l = ev.type == VMS_TEV_ACCESS ? VMS_REPLAY_LAYOUT_AUTO : VMS_REPLAY_LAYOUT_RECORDED;
    vms_trace_reader_close(rd);
    return l;
}

/* Run tasks t[0..n) (one trace and format) in one pass; their lines go to lines[]. */
static int pass(const spec *sp, task *t, size_t n, unsigned jobs, vms_strbuf *lines)
{
    cli_replay_task *rt[PASS_MAX] = {0};
    char dirs[PASS_MAX][32];
    int rc[PASS_MAX] = {0}, failed = 0;
    vms_replay_layout decided = first_layout(t[0].job.path, t[0].job.format);
    size_t live = 0;
    cli_replay_task *run[PASS_MAX];
    for (size_t i = 0; i < n; i++) {
        cli_replay_job job = t[i].job;
        if (job.layout == VMS_REPLAY_LAYOUT_DEFAULT)
            job.layout = decided;
        snprintf(dirs[i], sizeof dirs[i], "/tmp/vmsim-wb-XXXXXX");
        if (!mkdtemp(dirs[i]))
            dirs[i][0] = '\0';
        rc[i] = cli_replay_task_start(&t[i].cfg, &job, dirs[i][0] ? dirs[i] : NULL, &rt[i]);
        if (!rc[i])
            run[live++] = rt[i];
    }
    vms_err rerr = {0}, err = {0};
    vms_trace_reader *rd = NULL;
    if (live && vms_trace_reader_open(t[0].job.path, t[0].job.format, NULL, &rd, &err) != VMS_OK) {
        rerr = err;
    } else if (live) {
        cli_feed_tasks(rd, run, live, jobs, &rerr);
    }
    vms_trace_reader_close(rd);
    for (size_t i = 0; i < n; i++) {
        if (!rc[i]) {
            task_head(sp, &t[i], &lines[i]);
            rc[i] = cli_replay_task_finish(rt[i], &rerr, &lines[i]);
            vms_strbuf_printf(&lines[i], "}\n");
        }
        if (rc[i] || lines[i].failed) {
            cli_error("sweep", "task %" PRIu64 " failed", t[i].index);
            failed = 1;
            lines[i].len = 0;
        }
        cli_replay_task_free(rt[i]);
        if (dirs[i][0])
            cli_rmdir_flat(dirs[i]);
    }
    return failed;
}

/* --one-pass: tasks idx[0..n), grouped by trace and format in passes of PASS_MAX; lines
 * written to out in task order. */
static int run_one_pass(spec *sp, const uint64_t *idx, size_t n, unsigned jobs, FILE *out)
{
    task *t = calloc(n ? n : 1, sizeof *t);
    vms_strbuf *lines = calloc(n ? n : 1, sizeof *lines);
    bool *done = calloc(n ? n : 1, sizeof *done);
    int failed = t && lines && done ? 0 : 1;
    for (size_t i = 0; !failed && i < n; i++) {
        failed = task_build(sp, idx[i], &t[i]);
        vms_strbuf_init(&lines[i], NULL);
    }
    for (size_t i = 0; !failed && i < n; i++) {
        if (done[i])
            continue;
        task group[PASS_MAX];
        size_t at[PASS_MAX], g = 0;
        for (size_t k = i; k < n && g < PASS_MAX; k++) {
            if (done[k] || strcmp(t[k].job.path, t[i].job.path) ||
                t[k].job.format != t[i].job.format)
                continue;
            group[g] = t[k];
            at[g++] = k;
            done[k] = true;
        }
        vms_strbuf gl[PASS_MAX];
        for (size_t k = 0; k < g; k++)
            vms_strbuf_init(&gl[k], NULL);
        failed |= pass(sp, group, g, jobs, gl);
        for (size_t k = 0; k < g; k++) {
            vms_strbuf_free(&lines[at[k]]);
            lines[at[k]] = gl[k];
        }
    }
    for (size_t i = 0; t && lines && i < n; i++) {
        if (lines[i].len)
            fputs(vms_strbuf_str(&lines[i]), out);
        vms_strbuf_free(&lines[i]);
    }
    fflush(out);
    free(t);
    free(lines);
    free(done);
    return failed;
}

/* ---- the command ------------------------------------------------------------------------ */

typedef struct sweep_opts {
    const char *spec, *out, *missing;
    bool list, have_task, have_shard, one_pass;
    uint64_t task, shard_i, shard_n;
    unsigned jobs;
} sweep_opts;

static int parse_shard(sweep_opts *o, const char *v)
{
    char text[64];
    if (!strcmp(v, "slurm")) {
        const char *id = getenv("SLURM_ARRAY_TASK_ID"), *cnt = getenv("SLURM_ARRAY_TASK_COUNT");
        const char *min = getenv("SLURM_ARRAY_TASK_MIN"), *max = getenv("SLURM_ARRAY_TASK_MAX");
        uint64_t i, n, lo = 0, hi;
        if (!id || !cli_parse_u64(id, false, &i)) {
            cli_error("sweep", "--shard slurm: SLURM_ARRAY_TASK_ID is not set (not in a job "
                               "array? sbatch --array=0-N)");
            return EXIT_USAGE;
        }
        if (min && !cli_parse_u64(min, false, &lo))
            lo = 0;
        if (!cnt || !cli_parse_u64(cnt, false, &n)) {
            if (!max || !cli_parse_u64(max, false, &hi) || hi < lo) {
                cli_error("sweep", "--shard slurm: SLURM_ARRAY_TASK_COUNT is not set");
                return EXIT_USAGE;
            }
            n = hi - lo + 1;
        }
        if (i < lo) {
            cli_error("sweep", "--shard slurm: SLURM_ARRAY_TASK_ID is below SLURM_ARRAY_TASK_MIN");
            return EXIT_USAGE;
        }
        snprintf(text, sizeof text, "%" PRIu64 "/%" PRIu64, i - lo, n);
        v = text;
    }
    const char *slash = strchr(v, '/');
    char a[32];
    if (!slash || slash - v >= (long)sizeof a) {
        cli_error("sweep", "bad --shard '%s': expected I/N or slurm", v);
        return EXIT_USAGE;
    }
    snprintf(a, sizeof a, "%.*s", (int)(slash - v), v);
    if (!cli_parse_u64(a, false, &o->shard_i) || !cli_parse_u64(slash + 1, false, &o->shard_n) ||
        o->shard_n == 0 || o->shard_i >= o->shard_n) {
        cli_error("sweep", "bad --shard '%s': expected I/N with 0 <= I < N", v);
        return EXIT_USAGE;
    }
    o->have_shard = true;
    return 0;
}

static int parse(int argc, char **argv, sweep_opts *o)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    o->jobs = ncpu > 0 ? (unsigned)ncpu : 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t n;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return -1;
        } else if (!strcmp(a, "--list")) {
            o->list = true;
        } else if (!strcmp(a, "--one-pass")) {
            o->one_pass = true;
        } else if (!strcmp(a, "--missing") && v) {
            o->missing = argv[++i];
        } else if (!strcmp(a, "--task") && v) {
            if (!cli_parse_u64(argv[++i], false, &o->task)) {
                cli_error("sweep", "bad --task '%s': expected a task number", v);
                return EXIT_USAGE;
            }
            o->have_task = true;
        } else if (!strcmp(a, "--shard") && v) {
            int rc = parse_shard(o, argv[++i]);
            if (rc)
                return rc;
        } else if (!strcmp(a, "-o") && v) {
            o->out = argv[++i];
        } else if (!strcmp(a, "-j") && v) {
            if (!cli_parse_u64(argv[++i], false, &n) || n == 0 || n > 1024) {
                cli_error("sweep", "bad -j '%s': expected 1 to 1024", v);
                return EXIT_USAGE;
            }
            o->jobs = (unsigned)n;
        } else if (a[0] != '-' && !o->spec) {
            o->spec = a;
        } else {
            cli_error("sweep", "unexpected argument '%s' (see vmsim sweep --help)", a);
            return EXIT_USAGE;
        }
    }
    if (!o->spec) {
        cli_error("sweep", "no SPEC given (see vmsim sweep --help)");
        return EXIT_USAGE;
    }
    if ((o->list + o->have_task + o->have_shard) > 1 || (o->missing && !o->list) ||
        (o->have_task && o->out)) {
        cli_error("sweep", "--list, --task and --shard exclude each other; --missing goes with "
                           "--list, -o not with --task");
        return EXIT_USAGE;
    }
    return 0;
}

/* --list: every task (or those missing from --missing FILE), one per line. */
static int list(spec *sp, const sweep_opts *o)
{
    keyset done = {0};
    if (o->missing)
        read_keys(o->missing, &done);
    int rc = 0;
    for (uint64_t i = 0; !rc && i < sp->ntasks; i++) {
        task t;
        rc = task_build(sp, i, &t);
        if (rc || keyset_has(&done, t.key))
            continue;
        printf("%" PRIu64 "\t%s", i, t.key);
        for (unsigned e = 0; e < sp->n; e++)
            printf("\t%s=%s", sp->e[e].key, sp->e[e].alt[t.choice[e]]);
        putchar('\n');
    }
    free(done.key);
    return rc;
}

/* Run the selected tasks (all, or a shard), skipping those already in -o FILE. */
static int run_all(spec *sp, const sweep_opts *o)
{
    keyset done = {0};
    if (o->out)
        read_keys(o->out, &done);
    uint64_t *idx = calloc(sp->ntasks, sizeof *idx);
    size_t n = 0, skipped = 0;
    int rc = idx ? 0 : 1;
    for (uint64_t i = 0; !rc && i < sp->ntasks; i++) {
        if (o->have_shard && i % o->shard_n != o->shard_i)
            continue;
        task t;
        rc = task_build(sp, i, &t);
        if (!rc && keyset_has(&done, t.key))
            skipped++;
        else if (!rc)
            idx[n++] = i;
    }
    FILE *out = stdout;
    if (!rc && o->out && !(out = fopen(o->out, "a"))) {
        cli_error("sweep", "%s: cannot open for appending", o->out);
        rc = 1;
    }
    if (!rc && o->out) {
        if (skipped)
            fprintf(stderr, "vmsim sweep: %zu tasks already in %s, %zu to run\n", skipped, o->out,
                    n);
        /* A line cut short by an interrupted run is left alone, on its own line. */
        if (ftell(out) > 0) {
            FILE *chk = fopen(o->out, "r");
            if (chk && fseek(chk, -1, SEEK_END) == 0 && fgetc(chk) != '\n')
                fputc('\n', out);
            if (chk)
                fclose(chk);
        }
    }
    if (!rc)
        rc = o->one_pass ? run_one_pass(sp, idx, n, o->jobs, out)
                         : run_tasks(sp, idx, n, o->jobs, out);
    if (out && out != stdout && fclose(out) != 0 && !rc) {
        cli_error("sweep", "%s: write failed", o->out);
        rc = 1;
    }
    free(idx);
    free(done.key);
    return rc;
}

/* ---- vmsim replay TRACE --sweep KEY=V1|V2 … --------------------------------------------- */

#define REPLAY_SWEEP_MAX 4096 /* configurations of one command line */

/* Add argv[i] = "KEY=VALUE" (alternatives separated by sep, or one value). */
static int add_arg(spec *sp, int i, const char *opt, const char *sep)
{
    const char *a = sp->argv[i], *eq = strchr(a, '=');
    if (!eq || eq == a)
        return spec_err(sp, (unsigned)i, "%s: expected KEY=VALUE%s", opt, sep ? "[|VALUE…]" : "");
    char key[256];
    snprintf(key, sizeof key, "%.*s", (int)(eq - a), a);
    char *value = strdup(eq + 1);
    int rc = value ? add_entry(sp, key, value, (unsigned)i, sep) : 1;
    free(value);
    return rc;
}

int cmd_replay_sweep(int argc, char **argv)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned jobs = ncpu > 0 ? (unsigned)ncpu : 1;
    int trace = 0, preset = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_v = i + 1 < argc;
        uint64_t n;
        if ((!strcmp(a, "--sweep") || !strcmp(a, "--set") || !strcmp(a, "--format") ||
             !strcmp(a, "--layout") || !strcmp(a, "--limit")) &&
            has_v) {
            i++;
        } else if (!strcmp(a, "--preset") && has_v) {
            preset = ++i;
        } else if (!strcmp(a, "--stats") && has_v && !strcmp(argv[i + 1], "json")) {
            i++; /* the lines are --stats json objects anyway */
        } else if (!strcmp(a, "-j") && has_v) {
            if (!cli_parse_u64(argv[++i], false, &n) || n == 0 || n > 1024) {
                cli_error("replay", "bad -j '%s': expected 1 to 1024", argv[i]);
                return EXIT_USAGE;
            }
            jobs = (unsigned)n;
        } else if ((a[0] != '-' || !strcmp(a, "-")) && !trace) {
            trace = i;
        } else {
            cli_error("replay",
                      "'%s' does not go with --sweep, which takes TRACE, --sweep, "
                      "--set, --preset, --format, --layout, --limit, --stats json and "
                      "-j (vmsim sweep runs specs of any size)",
                      a);
            return EXIT_USAGE;
        }
    }
    if (!trace) {
        cli_error("replay", "no TRACE given (see vmsim replay --help)");
        return EXIT_USAGE;
    }
    spec sp;
    memset(&sp, 0, sizeof sp);
    sp.path = "replay";
    sp.argv = argv;
    char *tpath = strdup(argv[trace]);
    int rc = tpath ? add_entry(&sp, "trace", tpath, (unsigned)trace, NULL) : 1;
    free(tpath);
    if (!rc && preset) {
        char *v = strdup(argv[preset]);
        rc = v ? add_entry(&sp, "preset", v, (unsigned)preset, NULL) : 1;
        free(v);
    }
    for (int i = 1; !rc && i + 1 < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--sweep") || !strcmp(a, "--set")) {
            rc = add_arg(&sp, ++i, a, !strcmp(a, "--sweep") ? "|" : NULL);
        } else if (!strcmp(a, "--format") || !strcmp(a, "--layout") || !strcmp(a, "--limit")) {
            char *v = strdup(argv[++i]);
            rc = v ? add_entry(&sp, a + 2, v, (unsigned)i, NULL) : 1;
            free(v);
        } else if (!strcmp(a, "--preset") || !strcmp(a, "--stats") || !strcmp(a, "-j")) {
            i++;
        }
    }
    if (!rc)
        rc = spec_count(&sp, (unsigned)trace);
    if (!rc && sp.ntasks > REPLAY_SWEEP_MAX)
        rc = spec_err(&sp, (unsigned)trace,
                      "%" PRIu64 " configurations: at most %d on one command line (vmsim sweep "
                      "takes a spec of any size, resumable with -o)",
                      sp.ntasks, REPLAY_SWEEP_MAX);
    uint64_t *idx = rc ? NULL : calloc(sp.ntasks, sizeof *idx);
    if (!rc && !idx)
        rc = 1;
    for (uint64_t i = 0; !rc && i < sp.ntasks; i++)
        idx[i] = i;
    if (!rc)
        rc = run_one_pass(&sp, idx, sp.ntasks, jobs, stdout);
    free(idx);
    spec_free(&sp);
    return rc;
}

int cmd_sweep_merge(int argc, char **argv);

int cmd_sweep(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "merge"))
        return cmd_sweep_merge(argc - 1, argv + 1);
    sweep_opts o = {0};
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;
    spec sp;
    rc = spec_load(&sp, o.spec);
    if (!rc && o.list) {
        rc = list(&sp, &o);
    } else if (!rc && o.have_task) {
        if (o.task >= sp.ntasks) {
            cli_error("sweep", "--task %" PRIu64 ": %s has tasks 0 to %" PRIu64, o.task, o.spec,
                      sp.ntasks - 1);
            rc = EXIT_USAGE;
        } else {
            task t;
            vms_strbuf line;
            vms_strbuf_init(&line, NULL);
            rc = task_build(&sp, o.task, &t);
            if (!rc)
                rc = task_run(&sp, &t, &line);
            if (!rc)
                fputs(vms_strbuf_str(&line), stdout);
            vms_strbuf_free(&line);
        }
    } else if (!rc) {
        rc = run_all(&sp, &o);
    }
    spec_free(&sp);
    return rc;
}
