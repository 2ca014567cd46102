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
#include "vmsim/machine.h"
#include "vmsim/strbuf.h"

#define EXIT_USAGE 2

int cmd_explain(int argc, char **argv);
int cmd_presets(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_vmm(int argc, char **argv);
int cmd_policy(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_record(int argc, char **argv);
int cmd_sweep(int argc, char **argv);
int cmd_plot(int argc, char **argv);

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

/* Print "vmsim CMD: message" to stderr (printf-style). */
void cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Describe the entry bits of a paging-structure entry into buf ("P RW US A D PS G XD …"). */
void cli_pte_bits(uint64_t pte, unsigned level, char *buf, size_t len);

/* Print a machine configuration (TLB geometries, PWC, costs) in readable form. */
void cli_print_config(FILE *f, const vms_machine_config *cfg);

#endif
