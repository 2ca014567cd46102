/*
 * cmd_config.c — `vmsim config`: print the configuration that a preset, a config file and
 * --set options produce, as a loadable INI file; or list every key (--keys).
 */
#include <string.h>

#include "cli.h"
#include "vmsim/config.h"

static const char usage[] =
    "usage: vmsim config [--preset NAME] [--config FILE] [--set KEY=VALUE]... [--keys]\n"
    "\n"
    "Print the resulting configuration as an INI file that --config loads back, or with\n"
    "--keys every key and what it accepts.\n";

int cmd_config(int argc, char **argv)
{
    vms_config c;
    vms_err err = {0};
    const char *preset = NULL;
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--preset"))
            preset = argv[i + 1];
    if (vms_config_init(&c, preset, &err) != VMS_OK) {
        cli_error("config", "%s", err.msg);
        return EXIT_USAGE;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        vms_status st = VMS_OK;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "--keys")) {
            for (unsigned k = 0; k < vms_config_nkeys(); k++)
                printf("%-26s %s\n", vms_config_key_at(k).name, vms_config_key_at(k).help);
            printf("%-26s %s\n", "design", vms_config_design_help);
            return 0;
        } else if (!strcmp(a, "--preset") && v) {
            i++;
        } else if (!strcmp(a, "--config") && v) {
            st = vms_config_load(&c, argv[++i], &err);
        } else if (!strcmp(a, "--set") && v) {
            st = vms_config_set_arg(&c, argv[++i], &err);
        } else {
            cli_error("config", "unexpected argument '%s' (see vmsim config --help)", a);
            return EXIT_USAGE;
        }
        if (st != VMS_OK) {
            cli_error("config", "%s", err.msg);
            return EXIT_USAGE;
        }
    }
    vms_strbuf sb;
    vms_strbuf_init(&sb, NULL);
    vms_config_dump(&c, &sb);
    fputs(vms_strbuf_str(&sb), stdout);
    vms_strbuf_free(&sb);
    return 0;
}
