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
    "  sweep SPEC       run a parameter sweep (configurations x traces) as JSON lines\n"
    "  plot IN -o SVG   draw a replay CSV or sweep results as an SVG chart\n"
    "  help             this text (--version: the version)\n"
    "\n"
    "Without a command, vmsim runs its demonstration scenario (examples/scenarios/demo.scn):\n"
    "lazy allocation, a TLB miss and hit, the zero page, fork and copy-on-write, a segfault.\n"
    "Each command takes --help. Exit status: 0 success, 1 a failed run, 2 a usage error.\n";

int main(int argc, char **argv)
{
    if (argc < 2)
        return cmd_run(1, argv);
    const char *cmd = argv[1];
    if (!strcmp(cmd, "explain"))
        return cmd_explain(argc - 1, argv + 1);
    if (!strcmp(cmd, "run"))
        return cmd_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "config"))
        return cmd_config(argc - 1, argv + 1);
    if (!strcmp(cmd, "presets"))
        return cmd_presets(argc - 1, argv + 1);
    if (!strcmp(cmd, "vmm"))
        return cmd_vmm(argc - 1, argv + 1);
    if (!strcmp(cmd, "convert"))
        return cmd_convert(argc - 1, argv + 1);
    if (!strcmp(cmd, "record"))
        return cmd_record(argc - 1, argv + 1);
    if (!strcmp(cmd, "policy"))
        return cmd_policy(argc - 1, argv + 1);
    if (!strcmp(cmd, "replay"))
        return cmd_replay(argc - 1, argv + 1);
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        cli_print_version(stdout);
        return 0;
    }
    if (!strcmp(cmd, "sweep"))
        return cmd_sweep(argc - 1, argv + 1);
    if (!strcmp(cmd, "plot"))
        return cmd_plot(argc - 1, argv + 1);
    if (!strcmp(cmd, "help") || !strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
        fputs(usage, stdout);
        return 0;
    }
    fprintf(stderr, "vmsim: unknown command '%s'\n\n%s", cmd, usage);
    return EXIT_USAGE;
}
