/*
 * fuzz_scenario.c — libFuzzer target: the scenario parser on arbitrary text, and the
 * runner on whatever parses, on a small machine (16 MiB, 2 cores).
 *
 * Checks what the library promises on any input: no crash, no hang, no leak (ASan); a
 * failure is VMS_ERR_PARSE whose message names the input and a line ("fuzz:12: …");
 * a parsed scenario runs to its end (simulated faults are data), after which every
 * process is gone and the kernel's invariants hold. Violations abort. Inputs over 4 KiB
 * and bulk commands that would take long are not run (parsing still is), and neither
 * are scenarios with devices: a device without an IOMMU may overwrite the kernel's page
 * tables, and the kernel model then stops at an internal assertion instead of reporting a
 * simulated panic (a known limitation, docs/DEVICES.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmsim/scenario.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static int msg_names_line(const char *msg)
{
    unsigned long line;
    char c;
    return sscanf(msg, "fuzz:%lu%c", &line, &c) == 2 && c == ':';
}

/* Boot a small machine configured by the scenario and run it; abort on a broken promise. */
static void run(const vms_scenario *sc)
{
    vms_config cfg;
    vms_err err = {0};
    vms_machine *m = NULL;
    vms_kernel *k = NULL;
    vms_config_init(&cfg, "skylake", &err);
    cfg.machine.ram_bytes = UINT64_C(16) << 20;
    cfg.machine.ncores = 2;
    if (vms_scenario_configure(sc, &cfg, &err) != VMS_OK)
        return; /* a bad `set` line: reported, nothing runs */
    if (cfg.machine.ram_bytes > (UINT64_C(64) << 20))
        return; /* keep each input cheap */
    vms_kernel_config kc = vms_config_kernel(&cfg);
    kc.writeback_dir = "/tmp";
    if (vms_machine_create(NULL, &cfg.machine, &m, &err) == VMS_OK &&
        vms_kernel_create(m, &kc, &k, &err) == VMS_OK) {
        vms_scenario_result res;
        if (vms_scenario_run(sc, k, NULL, NULL, &res, &err) != VMS_OK &&
            err.status != VMS_ERR_NOMEM) {
            fprintf(stderr, "fuzz: run failed: %s\n", err.msg);
            abort();
        }
        if (vms_kernel_check(k, &err) != VMS_OK) {
            fprintf(stderr, "fuzz: kernel invariant: %s\n", err.msg);
            abort();
        }
    }
    vms_kernel_destroy(k);
    vms_machine_destroy(m);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    vms_scenario *sc = NULL;
    vms_err err = {0};
    vms_status st = vms_scenario_parse(NULL, "fuzz", text, &sc, &err);
    if (st == VMS_OK) {
        /* Bulk commands over large ranges are legal but slow: parse-only for those. */
        if (size <= 4096 && !strstr(text, "touch") && !strstr(text, "huge") &&
            !strstr(text, "file=") && !strstr(text, "populate") && !strstr(text, "mlock") &&
            !strstr(text, "locked") && !strstr(text, "device"))
            run(sc);
        vms_scenario_destroy(sc);
    } else if (st != VMS_ERR_PARSE || !msg_names_line(err.msg)) {
        fprintf(stderr, "fuzz: bad failure report: status %d, \"%s\"\n", (int)st, err.msg);
        abort();
    }
    free(text);
    return 0;
}
