/*
 * cli.h — shared pieces of the vmsim program: subcommand entry points and argument
 * helpers. Every subcommand returns an exit status: 0 success, 1 a failed run (a failed
 * expectation, an I/O error), 2 a usage error. Errors go to stderr.
 */
#ifndef VMSIM_CLI_H
#define VMSIM_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "vmsim/config.h"
#include "vmsim/events.h"
#include "vmsim/machine.h"
#include "vmsim/replay.h"
#include "vmsim/strbuf.h"

#define EXIT_USAGE 2

int cmd_explain(int argc, char **argv);
int cmd_explain_aarch64(int argc, char **argv); /* explain --arch aarch64 */
int cmd_explain_nested(int argc, char **argv);  /* explain --nested */
int cmd_replay_vm(int argc, char **argv);       /* replay --vm */
/* Their configuration (vm_config.c): the preset, then --config and --set in order; 0 or
 * EXIT_USAGE (the error printed). cli_vm_config_arg: is a one of those three options
 * (each takes a value)? */
int cli_vm_config(int argc, char **argv, const char *cmd, vms_config *c);
bool cli_vm_config_arg(const char *a);
int cmd_presets(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_vmm(int argc, char **argv);
int cmd_ostep(int argc, char **argv);
/* `explain --ostep …` and `explain --machine csapp …` (argv[0] is that flag). */
int cli_explain_teach(int argc, char **argv);

/* The OSTEP machine `machine` configured from its script's flags in argv[0..argc);
 * numbers that are not flag values go to vas (at most CLI_OSTEP_MAX_VAS). Returns 0,
 * -1 after --help, or an exit status (the error printed). cfg->addrs stays valid until
 * the next call. */
#define CLI_OSTEP_MAX_VAS 32
typedef struct vms_ostep_config vms_ostep_config;
int cli_ostep_config(const char *machine, int argc, char **argv, vms_ostep_config *cfg,
                     uint64_t *vas, unsigned *nvas);
int cmd_policy(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_record(int argc, char **argv);
int cmd_sweep(int argc, char **argv);
/* vmsim replay TRACE --sweep KEY=V1|V2 …: one pass of the reader (cmd_sweep.c). */
int cmd_replay_sweep(int argc, char **argv);
int cmd_plot(int argc, char **argv);

/* ---- --events FILE (events.c) ---- */

typedef struct cli_events {
    FILE *f; /* NULL: not open */
    const char *path, *cmd;
    vms_machine *m;
    vms_strbuf sb;
    bool failed;
} cli_events;

/* Create path ("-": stdout) and install the JSON-lines writer as m's observer. Returns 0,
 * or 1 (message printed) when the file cannot be created. */
int cli_events_open(cli_events *w, const char *cmd, const char *path, vms_machine *m);

/* Remove the observer and close the file (if open). Returns 0, or 1 (message printed)
 * when a write failed. */
int cli_events_close(cli_events *w);

/* ---- replay as a function (cmd_replay.c), for sweeps ---- */

typedef struct cli_replay_job {
    const char *path; /* the trace */
    vms_trace_format format;
    vms_replay_layout layout;
    uint64_t limit; /* 0: the whole trace */
} cli_replay_job;

/* Replay job->path under configuration cfg and append the members of its --stats json
 * object (as `vmsim replay --stats json` prints them, without the braces) to members.
 * Warnings go to stderr. Returns 0, 1 when the trace is unreadable or malformed (the
 * message is on stderr), or EXIT_USAGE when the machine cannot be built. */
int cli_replay_json(const vms_config *cfg, const cli_replay_job *job, vms_strbuf *members);

/*
 * The same as a task fed event by event (a one-pass sweep, sweep_pass.c): start boots
 * (job->layout must be decided: not DEFAULT; wb_dir, when the configuration names no
 * writeback directory, is the task's own) and returns 0 or an exit status (printed);
 * event replays one event of the shared reader (nothing past job->limit or an error);
 * finish flushes and appends the JSON members exactly as cli_replay_json does — or, with
 * read_err set or a replay error, prints the message and returns 1. free accepts NULL.
 */
typedef struct cli_replay_task cli_replay_task;
int cli_replay_task_start(const vms_config *cfg, const cli_replay_job *job, const char *wb_dir,
                          cli_replay_task **out);
void cli_replay_task_event(cli_replay_task *t, const vms_trace_event *ev, const char *path);
int cli_replay_task_finish(cli_replay_task *t, const vms_err *read_err, vms_strbuf *members);
void cli_replay_task_free(cli_replay_task *t);

/* Read rd to its end once and replay every event into each task of ts[0..n), on up to
 * `threads` threads (sweep_pass.c). Returns and fills *rerr with the reader's status
 * (VMS_OK at the end of a well-formed trace; the error, file and line, otherwise). */
vms_status cli_feed_tasks(vms_trace_reader *rd, cli_replay_task **ts, size_t n, unsigned threads,
                          vms_err *rerr);

/* Remove the files in dir, then dir (a private temporary directory). */
void cli_rmdir_flat(const char *dir);

/* ---- sweep results (sweep_merge.c), for merge and plot ---- */

struct cli_json;
typedef struct cli_result {
    struct cli_json *j;     /* the whole line */
    const char *key, *spec; /* sweep.key, sweep.spec (inside j) */
    double task;            /* sweep.task */
} cli_result;

#define CLI_RESULTS_MAXCOLS 64
typedef struct cli_results {
    cli_result *r; /* one per key, ordered by spec then task */
    size_t n, cap;
    const char *col[CLI_RESULTS_MAXCOLS]; /* the SPEC keys, in order of first appearance */
    size_t ncols;
} cli_results;

/* Load result files (lines that are not sweep results are skipped with a warning).
 * Returns 0, or 1 when a file cannot be read (message on stderr). */
int cli_results_load(const char *const *files, int nfiles, cli_results *rs);
void cli_results_free(cli_results *rs);
/* The value of SPEC key `key` in result r ("" when r's spec lacks it). */
const char *cli_result_setting(const cli_result *r, const char *key);

/* The measured columns of merge tables and sweep plots: their number, names, and the
 * value of column i in a result (false when the result lacks it). */
unsigned cli_metric_count(void);
const char *cli_metric_name(unsigned i);
bool cli_metric_value(const struct cli_json *j, unsigned i, double *out);

/* ---- what made a result (meta.c) ---- */

/* "vmsim X.Y.Z" and, when built from a git checkout, " (git DESCRIBE)". */
void cli_print_version(FILE *f);

/* An input named in results: its kind ("trace", "scenario"), name as given, and the
 * SHA-256 of its bytes (hashed false for stdin or an unreadable file). */
typedef struct cli_input {
    const char *kind, *name;
    char sha256[65];
    bool hashed;
} cli_input;

void cli_input_init(cli_input *in, const char *kind, const char *path);
/* The same for an input held in memory (the built-in demonstration). */
void cli_input_text(cli_input *in, const char *kind, const char *name, const char *text);

/* Append the members every --stats json object starts with: "version", "build",
 * "config" (vms_config_json), "input" {"kind", "name", "sha256"}, "seed", and a
 * trailing comma (the counters follow). */
void cli_json_meta(vms_strbuf *sb, const vms_config *c, const cli_input *in);

/* Append "preset NAME, overrides KEY=VALUE …" (or ", no overrides"): the keys whose
 * values differ from the preset c started from. */
void cli_overrides(const vms_config *c, vms_strbuf *out);

/* Parse an unsigned number: decimal or 0x hex, with an optional K/M/G/T suffix (powers of
 * 1024) when allow_suffix. Returns false on anything else. */
bool cli_parse_u64(const char *s, bool allow_suffix, uint64_t *out);

/* Open the trace at path ("-": stdin) in format fmt; with pipeline, wrapped to be decoded
 * on a thread of its own (vms_trace_reader_pipeline: replay --pipeline). On failure *out
 * is NULL and err says why. */
vms_status cli_trace_open(const char *path, vms_trace_format fmt, bool pipeline,
                          vms_trace_reader **out, vms_err *err);

/* Split explain's "VA=PA[/4K|2M|1G][:PERMS]" in place: *va, *pa and *size (4K when
 * absent) parsed, *perms the text after ':' or NULL (each architecture reads its own
 * letters). False for anything else. */
bool cli_split_map(char *arg, uint64_t *va, uint64_t *pa, vms_pgsize *size, char **perms);

/* explain's --access VALUE: read, write or exec into *kind; false (the error printed)
 * for anything else. */
bool cli_explain_access(const char *v, vms_access_kind *kind);

/* Print "vmsim CMD: message" to stderr (printf-style). */
void cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Describe the entry bits of a paging-structure entry into buf ("P RW US A D PS G XD …"). */
void cli_pte_bits(uint64_t pte, unsigned level, char *buf, size_t len);

/* Written-back copies of shared-mapped files go to a fresh temporary directory when the
 * configuration names none (kernel.writeback_dir empty): a scenario or trace must not
 * make vmsim write next to the user's files. _remove deletes it and the copies in it. */
void cli_tmp_writeback(vms_config *c);
void cli_tmp_writeback_remove(void);

/* Print a machine configuration (TLB geometries, PWC, costs) in readable form. */
void cli_print_config(FILE *f, const vms_machine_config *cfg);

#endif
