/*
 * vm_config.c — the configuration `replay --vm` and `explain --nested` start from: the
 * preset, --config FILE and --set KEY=VALUE in the order given (the vm.* keys among
 * them, config.h vms_config_vm), before their own flags override single knobs.
 */
#include <string.h>

#include "cli.h"

int cli_vm_config(int argc, char **argv, const char *cmd, vms_config *c)
{
    const char *preset = NULL;
    vms_err err = {0};
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--preset"))
            preset = argv[i + 1];
    if (vms_config_init(c, preset, &err) != VMS_OK) {
        cli_error(cmd, "%s", err.msg);
        return EXIT_USAGE;
    }
    for (int i = 1; i + 1 < argc; i++) {
        vms_status st = VMS_OK;
        if (!strcmp(argv[i], "--config"))
            st = vms_config_load(c, argv[++i], &err);
        else if (!strcmp(argv[i], "--set"))
            st = vms_config_set_arg(c, argv[++i], &err);
        else if (!strcmp(argv[i], "--preset"))
            i++;
        if (st != VMS_OK) {
            cli_error(cmd, "%s", err.msg);
            return EXIT_USAGE;
        }
    }
    return 0;
}

bool cli_vm_config_arg(const char *a)
{
    return !strcmp(a, "--config") || !strcmp(a, "--set") || !strcmp(a, "--preset");
}
