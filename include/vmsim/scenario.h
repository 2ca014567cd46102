/*
 * vmsim/scenario.h — the scenario language: a text file, one command per line, that
 * drives processes through a simulated kernel and checks what they see. The full
 * grammar is in docs/SCENARIO.md; the core forms (a contract for external tests) are:
 *
 *   spawn NAME
 *   mmap NAME ADDR LEN PROT [anon|file=PATH] [private|shared]
 *   munmap NAME ADDR LEN
 *   mprotect NAME ADDR LEN PROT
 *   write NAME ADDR DATA [expect segv]
 *   read NAME ADDR LEN [expect DATA | expect segv]
 *   fork PARENT CHILD
 *   exit NAME
 *
 * ADDR is hex (0x…), `auto` (mmap only) or a label an earlier `mmap … as LABEL` defined
 * (LABEL+OFFSET allowed); LEN takes K/M/G suffixes; PROT is r, rw, rx, rwx (or none);
 * DATA is "text" (with \n \t \\ \" \xHH escapes) or hex bytes 0x4142…; `#` starts a
 * comment.
 *
 * The whole file is parsed before anything runs: a syntax error is reported with the
 * file, the line and what was expected, and nothing runs. At run time a failed `expect`
 * is reported (file, line, expected, actual) and counted, and the run goes on; a
 * simulated fault that no expect anticipated (a segfault kills that process, as on
 * Linux) is reported and counted but is not an error of the run.
 */
#ifndef VMSIM_SCENARIO_H
#define VMSIM_SCENARIO_H

#include "vmsim/config.h"
#include "vmsim/kernel.h"

typedef struct vms_scenario vms_scenario;

/*
 * Parse a scenario. `name` is used in messages (a path); text is its contents (NUL-
 * terminated). On a syntax error returns VMS_ERR_PARSE with "name:line: …" in err.
 */
vms_status vms_scenario_parse(const vms_allocator *a, const char *name, const char *text,
                              vms_scenario **out, vms_err *err);

/* Read the file at path and parse it (VMS_ERR_IO naming the path if unreadable). */
vms_status vms_scenario_load(const vms_allocator *a, const char *path, vms_scenario **out,
                             vms_err *err);

void vms_scenario_destroy(vms_scenario *s);

/*
 * The language's commands, from the table the parser reads: the usage line of command i
 * (e.g. "spawn NAME [core N]"; a command's alternative forms are separated by " | "),
 * in the order the parser's "expected a command (…)" error lists them; NULL when i is
 * past the last. `vmsim run --help` prints them, so the help cannot drift from the
 * parser.
 */
const char *vms_scenario_command_usage(size_t i);

/*
 * Apply the scenario's `set KEY=VALUE` lines (which must come before every other command)
 * to c, in order. Errors name the scenario line.
 */
vms_status vms_scenario_configure(const vms_scenario *s, vms_config *c, vms_err *err);

/* The vm.* settings `vm create` starts from (copied): the run's final configuration's
 * c->vm. Without a call, the defaults of vms_config_vm_default for the kernel's machine. */
void vms_scenario_set_vm_config(vms_scenario *s, const vms_config_vm *vm);

/*
 * Host-file safety (docs/SCENARIO.md): a scenario never makes vmsim write a host file its
 * caller did not name. `set` of a key that names a host path vmsim writes (swap.file,
 * kernel.writeback_dir, kernel.writeback_in_place) is refused by vms_scenario_configure;
 * `device blk NAME FILE writable` opens FILE for writing only if the caller allowed that
 * file (the same inode) with vms_scenario_allow_write, else the device command fails.
 * vms_scenario_check_writes reports the first writable image not allowed, naming its line
 * (VMS_ERR_INVAL), so a caller can refuse the scenario before anything runs. Reading host
 * files (mmap file=, device blk without `writable`) stays allowed.
 */
vms_status vms_scenario_allow_write(vms_scenario *s, const char *path, vms_err *err);
vms_status vms_scenario_check_writes(const vms_scenario *s, vms_err *err);

/* Where a run's narration goes: one call per chunk of text (the library never prints).
 * `is_error` marks failures (failed expects, unexpected errors) for stderr. */
typedef void (*vms_scenario_out)(void *ud, bool is_error, const char *text);

typedef struct vms_scenario_result {
    unsigned commands;          /* commands executed */
    unsigned expects_passed;    /* expectations met */
    unsigned expects_failed;    /* expectations not met */
    unsigned unexpected_faults; /* fatal faults (SIGSEGV/SIGBUS) nobody expected */
    unsigned errors;            /* commands that failed (a syscall error nobody expected, an
                                   access by a dead process, …) */
} vms_scenario_result;

/*
 * Run the scenario on kernel k (booted on its machine). Narration (one line per command
 * with what it did: faults taken, TLB and walk activity, the data read) goes to out
 * (may be NULL). Returns VMS_OK when it ran to the end (*res tells whether every
 * expectation held), a host error (VMS_ERR_NOMEM…), or VMS_ERR_PANIC when the simulated
 * kernel panicked (the run stops after that command; err names its line and reason).
 */
vms_status vms_scenario_run(const vms_scenario *s, vms_kernel *k, vms_scenario_out out, void *ud,
                            vms_scenario_result *res, vms_err *err);

#endif
