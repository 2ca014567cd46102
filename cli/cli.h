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

#include "vmsim/machine.h"

#define EXIT_USAGE 2

int cmd_explain(int argc, char **argv);
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
