/*
 * main.c — the vmsim program: subcommands over the library (DESIGN.md: anything the CLI
 * does, a C program can do through the API).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "vmsim/version.h"

static const char usage[] =
    "usage: vmsim [COMMAND [ARGS…]]\n"
    "\n"
    "vmsim simulates virtual memory: x86-64 page tables in simulated RAM, the walker,\n"
    "TLBs, page-walk caches and cores.\n"
    "\n"
    "commands:\n"
    "  run SCENARIO     run a scenario: processes, mappings, accesses, expectations\n"
    "  explain [VA]     build page tables in RAM and narrate a translation level by level\n"
    "  presets [NAME]   describe the machine presets (the default is skylake)\n"
    "  config           print a configuration (preset + --config + --set), or --keys\n"
    "  policy ...       replay a reference string under a page-replacement policy\n"
    "  convert IN OUT   convert a memory trace between formats (lackey, din, champsim, native)\n"
    "  replay TRACE     replay a memory trace through the machine and kernel; counters out\n"
    "  record -o F PROG run a real program under Valgrind and record a native trace\n"
    "  vmm ADDRESSES    the textbook's virtual-memory manager project (Silberschatz et al.)\n"
    "  ostep MACHINE    OSTEP's homework problems (linear, multilevel, segmentation,\n"
    "                   relocation), same flags and seeds as the scripts, answered by vmsim\n"
    "  sweep SPEC       run a parameter sweep (configurations x traces) as JSON lines\n"
    "  plot IN -o SVG   draw a replay CSV or sweep results as an SVG chart\n"
    "  help [COMMAND]   this text, or COMMAND's help (`vmsim help replay`); --version\n"
    "\n"
    "Without a command, vmsim runs its demonstration scenario (examples/scenarios/demo.scn):\n"
    "lazy allocation, a TLB miss and hit, the zero page, fork and copy-on-write, a segfault.\n"
    "Each command takes --help. Exit status: 0 success, 1 a failed run, 2 a usage error.\n";

/* The subcommands, for dispatch and `vmsim help COMMAND`. */
static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
} commands[] = {
    {"explain", cmd_explain}, {"run", cmd_run},       {"config", cmd_config},
    {"presets", cmd_presets}, {"vmm", cmd_vmm},       {"ostep", cmd_ostep},
    {"convert", cmd_convert}, {"record", cmd_record}, {"policy", cmd_policy},
    {"replay", cmd_replay},   {"sweep", cmd_sweep},   {"plot", cmd_plot},
};

/* `vmsim help [TOPIC]`: the overview, or the topic's own --help. */
static int help(int argc, char **argv)
{
    if (argc < 3) {
        fputs(usage, stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(argv[2], commands[i].name)) {
            static char help_opt[] = "--help";
            char *args[] = {argv[2], help_opt, NULL};
            return commands[i].run(2, args);
        }
    fprintf(stderr,
            "vmsim help: no help on '%s': topics are the commands (explain, run, "
            "config, presets, vmm, ostep, convert, record, policy, replay, sweep, plot)\n",
            argv[2]);
    return EXIT_USAGE;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return cmd_run(1, argv);
    const char *cmd = argv[1];
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(cmd, commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        cli_print_version(stdout);
        return 0;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "-h") || !strcmp(cmd, "--help"))
        return help(argc, argv);
    fprintf(stderr, "vmsim: unknown command '%s'\n\n%s", cmd, usage);
    return EXIT_USAGE;
}
