/*
 * cmd_run.c — `vmsim run SCENARIO`: boot a machine and kernel from the configuration
 * (preset, --config file, the scenario's `set` lines, then --set, later ones winning),
 * run the scenario with its narration on stdout, and summarise. Exit status: 0 when every
 * expectation held and no command failed, 1 otherwise, 2 for usage, configuration or
 * syntax errors (reported before anything runs).
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "vmsim/config.h"
#include "vmsim/scenario.h"

static const char usage[] =
    "usage: vmsim run [options] SCENARIO\n"
    "\n"
    "Run a scenario file (docs/SCENARIO.md): processes, mmap/munmap/mprotect, reads and\n"
    "writes with expectations, fork, exit, and views of the machine's state; virtual\n"
    "machines (vm create NAME, vm NAME spawn PROC: PROC's commands then run in the guest;\n"
    "vm NAME show ept|exits; examples/scenarios/vm.scn). Each command is narrated with\n"
    "the page faults, TLB and walker activity it caused.\n"
    "\n"
    "options:\n"
    "  --preset NAME       machine preset (default skylake; `vmsim presets`)\n"
    "  --config FILE       load configuration keys from an INI file (`vmsim config --keys`)\n"
    "  --set KEY=VALUE     set one key (repeatable; e.g. --set ram=16M --set seed=3)\n"
    "  --writable FILE     let the scenario's `device blk NAME FILE writable` write FILE\n"
    "                      (repeatable); a scenario never writes a host file otherwise\n"
    "  --stats json        print only the counters, as JSON, on stdout (failures still go\n"
    "                      to stderr)\n"
    "  --events FILE       write every event of the machine and kernel (TLB lookups and\n"
    "                      fills, walk steps, faults and how the kernel resolved them, PTE\n"
    "                      writes, invalidations, shootdowns, swap, DMA) to FILE as JSON\n"
    "                      lines, one object with a \"type\" per line (docs/EVENTS.md)\n"
    "  -q, --quiet         no narration; only failures and the summary\n"
    "  -h, --help          this text\n"
    "\n"
    "A scenario may read host files (mmap file=, device blk) but never names one vmsim\n"
    "writes: swap.file, kernel.writeback_dir and kernel.writeback_in_place come from\n"
    "--set or --config only; shared-file writeback goes to a temporary directory unless\n"
    "kernel.writeback_dir is set.\n"
    "\n"
    "exit status: 0 every expectation held, 1 an expectation failed or a command failed,\n"
    "2 a usage, configuration or scenario syntax error, or a missing or unreadable scenario\n"
    "or config file (nothing ran), 3 the simulated kernel panicked (e.g. a device rewrote a\n"
    "page table with the IOMMU off; the output up to the panic is printed).\n";

/* The built-in demonstration `vmsim` runs without arguments (examples/scenarios/demo.scn). */
extern const char cli_demo_scenario[];

typedef struct run_opts {
    const char *preset, *config, *path, *events_path;
    const char *sets[64];
    int nsets;
    const char *writable[16];
    int nwritable;
    bool json, quiet;
    char panic[256]; /* the kernel's "Kernel panic - …" line, once it panicked */
} run_opts;

static void emit(void *ud, bool is_error, const char *text)
{
    const run_opts *o = ud;
    if (is_error)
        fputs(text, stderr);
    else if (!o->quiet && !o->json)
        fputs(text, stdout);
}

static void on_log(void *ud, vms_log_level level, const char *msg)
{
    run_opts *o = ud;
    /* A panic logs "Kernel panic - not syncing: REASON" (kernel.h): kept, so that one met
     * while the processes left at the end are torn down still gives exit status 3. */
    if (level == VMS_LOG_ERR && !strncmp(msg, "Kernel panic", 12) && !o->panic[0])
        snprintf(o->panic, sizeof o->panic, "%s", msg);
    if (!o->quiet && !o->json)
        printf("[kernel] %s\n", msg);
}

/* The scenario commands, one form per line, from the library's table (docs/SCENARIO.md
 * tells what each does). */
static void print_commands(void)
{
    fputs("\nscenario commands (docs/SCENARIO.md):\n", stdout);
    const char *u;
    for (size_t i = 0; (u = vms_scenario_command_usage(i)) != NULL; i++) {
        int depth = 0; /* a " | " inside [...] is an option's alternatives, not a form's */
        const char *form = u;
        for (const char *s = u; *s; s++) {
            depth += *s == '[' ? 1 : *s == ']' ? -1 : 0;
            if (depth == 0 && !strncmp(s, " | ", 3)) {
                printf("  %.*s\n", (int)(s - form), form);
                form = s + 3;
            }
        }
        printf("  %s\n", form);
    }
}

static int parse(int argc, char **argv, run_opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            print_commands();
            return -1;
        } else if (!strcmp(a, "--preset") && v) {
            o->preset = argv[++i];
        } else if (!strcmp(a, "--config") && v) {
            o->config = argv[++i];
        } else if (!strcmp(a, "--set") && v && o->nsets < 64) {
            o->sets[o->nsets++] = argv[++i];
        } else if (!strcmp(a, "--writable") && v && o->nwritable < 16) {
            o->writable[o->nwritable++] = argv[++i];
        } else if (!strcmp(a, "--events") && v) {
            o->events_path = argv[++i];
            if (!strcmp(o->events_path, "-")) {
                cli_error("run", "--events -: standard output holds the narration; name a file");
                return EXIT_USAGE;
            }
        } else if (!strcmp(a, "--stats") && v) {
            if (strcmp(argv[++i], "json")) {
                cli_error("run", "bad --stats '%s': expected json", v);
                return EXIT_USAGE;
            }
            o->json = true;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            o->quiet = true;
        } else if (a[0] != '-' && !o->path) {
            o->path = a;
        } else {
            cli_error("run", "unexpected argument '%s' (see vmsim run --help)", a);
            return EXIT_USAGE;
        }
    }
    return 0;
}

/* Build the configuration: preset, file, the scenario's set lines, --set. */
static int configure(const run_opts *o, const vms_scenario *sc, vms_config *c)
{
    vms_err err = {0};
    vms_status st = vms_config_init(c, o->preset, &err);
    if (st == VMS_OK && o->config)
        st = vms_config_load(c, o->config, &err);
    if (st == VMS_OK)
        st = vms_scenario_configure(sc, c, &err);
    for (int i = 0; st == VMS_OK && i < o->nsets; i++)
        st = vms_config_set_arg(c, o->sets[i], &err);
    if (st == VMS_OK)
        st = vms_scenario_check_writes(sc, &err);
    if (st != VMS_OK) {
        cli_error("run", "%s", err.msg);
        return EXIT_USAGE;
    }
    return 0;
}

static void summary(const run_opts *o, const vms_config *c, vms_machine *m, vms_kernel *k,
                    const vms_scenario_result *r)
{
    vms_strbuf sb;
    vms_strbuf_init(&sb, NULL);
    cli_input in;
    if (o->path)
        cli_input_init(&in, "scenario", o->path);
    else
        cli_input_text(&in, "scenario", "demo.scn", cli_demo_scenario);
    if (o->json) {
        vms_strbuf_printf(&sb, "{");
        cli_json_meta(&sb, c, &in);
        vms_machine_stats_json_members(m, &sb);
        vms_kernel_stats_json_members(k, &sb);
        vms_strbuf_printf(&sb,
                          ",\"scenario\":{\"commands\":%u,\"expects_passed\":%u,"
                          "\"expects_failed\":%u,\"unexpected_faults\":%u,\"errors\":%u}}\n",
                          r->commands, r->expects_passed, r->expects_failed, r->unexpected_faults,
                          r->errors);
        fputs(vms_strbuf_str(&sb), stdout);
    } else {
        const vms_kernel_stats *ks = vms_kernel_get_stats(k);
        cli_overrides(c, &sb);
        printf("-- config: %s\n", vms_strbuf_str(&sb));
        printf("-- %u commands: %u expectations met, %u failed; %u unexpected faults; %u errors\n",
               r->commands, r->expects_passed, r->expects_failed, r->unexpected_faults, r->errors);
        printf("-- page faults %llu = minor %llu + major %llu + segv %llu + sigbus %llu"
               " (of which cow %llu)\n",
               (unsigned long long)ks->pgfault, (unsigned long long)ks->minor,
               (unsigned long long)ks->pgmajfault, (unsigned long long)ks->segv,
               (unsigned long long)ks->sigbus, (unsigned long long)ks->cow);
    }
    vms_strbuf_free(&sb);
}

static int run(run_opts *o, vms_scenario *sc)
{
    vms_config cfg;
    int rc = configure(o, sc, &cfg);
    if (rc)
        return rc;
    vms_scenario_set_vm_config(sc, &cfg.vm); /* what `vm create` starts from */
    /* Results show the configuration as the user gave it; the kernel gets the private
     * temporary writeback directory (cli_tmp_writeback) when none was named. */
    vms_config shown = cfg;
    cli_tmp_writeback(&cfg);
    vms_err err = {0};
    vms_machine *m = NULL;
    vms_kernel *k = NULL;
    vms_kernel_config kc = vms_config_kernel(&cfg);
    cli_events events = {0};
    if (vms_machine_create(NULL, &cfg.machine, &m, &err) != VMS_OK) {
        cli_error("run", "%s", err.msg);
        return EXIT_USAGE;
    }
    /* --events: on before the kernel boots, so the stream holds all the counters count */
    if (o->events_path && cli_events_open(&events, "run", o->events_path, m)) {
        vms_machine_destroy(m);
        return 1;
    }
    if (vms_kernel_create(m, &kc, &k, &err) != VMS_OK) {
        cli_error("run", "%s", err.msg);
        cli_events_close(&events);
        vms_machine_destroy(m);
        return EXIT_USAGE;
    }
    vms_kernel_set_log(k, on_log, o);
    vms_scenario_result res;
    vms_status st = vms_scenario_run(sc, k, emit, o, &res, &err);
    if (st != VMS_OK) {
        cli_error("run", "%s", err.msg);
        rc = st == VMS_ERR_PANIC ? 3 : 1;
    } else {
        summary(o, &shown, m, k, &res);
        rc = res.expects_failed || res.errors ? 1 : 0;
    }
    if (cli_events_close(&events) && rc == 0)
        rc = 1;
    vms_kernel_destroy(k); /* exits the processes left: a table a device rewrote may panic */
    vms_machine_destroy(m);
    if (o->panic[0] && rc != 3) {
        cli_error("run", "%s (while the processes left at the end exited)", o->panic);
        rc = 3;
    }
    return rc;
}

int cmd_run(int argc, char **argv)
{
    run_opts o = {0};
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;
    vms_scenario *sc = NULL;
    vms_err err = {0};
    vms_status st = o.path ? vms_scenario_load(NULL, o.path, &sc, &err)
                           : vms_scenario_parse(NULL, "demo.scn", cli_demo_scenario, &sc, &err);
    if (st != VMS_OK) {
        cli_error("run", "%s", err.msg);
        return EXIT_USAGE; /* missing, unreadable or malformed: nothing ran (as a bad --config) */
    }
    for (int i = 0; i < o.nwritable; i++)
        if (vms_scenario_allow_write(sc, o.writable[i], &err) != VMS_OK) {
            cli_error("run", "--writable: %s", err.msg);
            vms_scenario_destroy(sc);
            return EXIT_USAGE;
        }
    rc = run(&o, sc);
    vms_scenario_destroy(sc);
    cli_tmp_writeback_remove();
    return rc;
}
