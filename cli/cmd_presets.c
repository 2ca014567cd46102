/* cmd_presets.c — `vmsim presets [NAME]`: list the machine presets, or show one. */
#include <string.h>

#include "cli.h"

int cmd_presets(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        puts("usage: vmsim presets [NAME]\n\nWithout NAME, describe every machine preset; "
             "with NAME, that one.\nThe first preset is the built-in default.");
        return 0;
    }
    vms_err err = {0};
    for (unsigned i = 0; i < vms_machine_npresets(); i++) {
        const char *name = vms_machine_preset_name(i);
        if (argc > 1 && strcmp(argv[1], name))
            continue;
        vms_machine_config cfg;
        vms_machine_preset(name, &cfg, &err);
        cli_print_config(stdout, &cfg);
        if (argc > 1)
            return 0;
        putchar('\n');
    }
    if (argc > 1) {
        vms_machine_config cfg;
        vms_machine_preset(argv[1], &cfg, &err);
        cli_error("presets", "%s", err.msg);
        return EXIT_USAGE;
    }
    return 0;
}
