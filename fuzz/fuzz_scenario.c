/*
 * fuzz_scenario.c — libFuzzer target: the scenario parser on arbitrary text, and the
 * runner on whatever parses, on a small machine (16 MiB, 2 cores).
 *
 * Checks what the library promises on any input: no crash, no hang, no leak (ASan); a
 * failure is VMS_ERR_PARSE whose message names the input and a line ("fuzz:12: …");
 * a parsed scenario runs to its end (simulated faults are data), after which every
 * process is gone and the kernel's invariants hold. Violations abort. Every command runs
 * (touch, huge, file=, populate, mlock, devices and DMA), with small limits so each input
 * stays cheap: inputs over 4 KiB, and inputs with a number above 64 MiB when they use a
 * bulk command (touch, huge, populate, mlock, locked) — above 16 KiB x STEP with a touch
 * `step=STEP` below 4 KiB — or a `random=COUNT` above 16,384, are parsed but not run. DMA
 * without translation (`passthrough`, `noiommu`, `iommu off`) runs too: a rogue device
 * may then overwrite the kernel's page tables, which the kernel reports as a simulated
 * panic (VMS_ERR_PANIC, "Kernel panic" in its log: a result, not a failure); what such a
 * device wrote where the kernel has not looked yet is not checked (no invariant check
 * after untranslated DMA), but nothing may crash or leak. Written-back
 * pages go to a private temporary directory; a scenario cannot name a host file vmsim
 * would write (docs/SCENARIO.md), so nothing else on the host changes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmsim/scenario.h"

char *mkdtemp(char *tmpl); /* POSIX; the targets build with -std=c11 */

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static int msg_names_line(const char *msg)
{
    unsigned long line;
    char c;
    return sscanf(msg, "fuzz:%lu%c", &line, &c) == 2 && c == ':';
}

/* Boot a small machine configured by the scenario and run it; abort on a broken promise. */
static void run(const vms_scenario *sc, int untranslated)
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
    static char wb[] = "/tmp/vmsim-fuzz-XXXXXX";
    static int made;
    if (!made)
        made = mkdtemp(wb) != NULL ? 1 : -1;
    kc.writeback_dir = made > 0 ? wb : "/nonexistent-vmsim-fuzz";
    if (vms_machine_create(NULL, &cfg.machine, &m, &err) == VMS_OK &&
        vms_kernel_create(m, &kc, &k, &err) == VMS_OK) {
        vms_scenario_result res;
        vms_status st = vms_scenario_run(sc, k, NULL, NULL, &res, &err);
        if (st != VMS_OK && st != VMS_ERR_NOMEM &&
            !(st == VMS_ERR_PANIC && untranslated && vms_kernel_panicked(k, NULL))) {
            fprintf(stderr, "fuzz: run failed: %s\n", err.msg);
            abort();
        }
        if (!untranslated && vms_kernel_check(k, &err) != VMS_OK) {
            fprintf(stderr, "fuzz: kernel invariant: %s\n", err.msg);
            abort();
        }
    }
    vms_kernel_destroy(k);
    vms_machine_destroy(m);
}

/* Whether text has a number (decimal or 0x hex, optional K/M/G/T) above limit. */
static int has_big_number(const char *text, uint64_t limit)
{
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9' ||
            (p > text && ((p[-1] >= '0' && p[-1] <= '9') || (p[-1] | 0x20) == 'x')))
            continue;
        char *end;
        unsigned long long v = strtoull(p, &end, 0);
        int shift = 0;
        switch (*end | 0x20) {
        case 'k':
            shift = 10;
            break;
        case 'm':
            shift = 20;
            break;
        case 'g':
            shift = 30;
            break;
        case 't':
            shift = 40;
            break;
        default:
            break;
        }
        if (v > limit >> shift)
            return 1;
    }
    return 0;
}

/* Whether the text lets a device reach physical memory untranslated. */
static int uses_untranslated_dma(const char *text)
{
    static const char *const untranslated[] = {"passthrough", "noiommu", "iommu off"};
    for (size_t i = 0; i < sizeof untranslated / sizeof *untranslated; i++)
        if (strstr(text, untranslated[i]))
            return 1;
    return 0;
}

/* The smallest `step=N` of the text's touches (4096 without one). */
static uint64_t min_step(const char *text)
{
    uint64_t min = 4096;
    for (const char *p = strstr(text, "step="); p; p = strstr(p + 5, "step=")) {
        char *end;
        unsigned long long v = strtoull(p + 5, &end, 0);
        if ((*end | 0x20) == 'k' || (*end | 0x20) == 'm' || (*end | 0x20) == 'g')
            continue; /* 1K and more */
        if (v < min)
            min = v ? v : 1;
    }
    return min;
}

/* Whether the parsed text should run (see the limits above). A touch makes one access
 * per step: with a step below 4 KiB the 64 MiB bound shrinks with it, so no touch makes
 * more than 16,384 accesses (`touch a heap 3M write step=2`, 1.5 M accesses, took 11 s
 * here; found by a campaign as a timeout). */
static int runnable(const char *text, size_t size)
{
    static const char *const bulk[] = {"touch", "huge", "populate", "mlock", "locked"};
    if (size > 4096)
        return 0;
    for (const char *p = strstr(text, "random="); p; p = strstr(p + 7, "random=")) {
        char *end;
        unsigned long long count = strtoull(p + 7, &end, 0);
        if (count > 16384 || (*end | 0x20) == 'k' || (*end | 0x20) == 'm' || (*end | 0x20) == 'g' ||
            (*end | 0x20) == 't')
            return 0; /* as many accesses: the same bound */
    }
    for (size_t i = 0; i < sizeof bulk / sizeof *bulk; i++)
        if (strstr(text, bulk[i]))
            return !has_big_number(text, (UINT64_C(64) << 20) / 4096 * min_step(text));
    return 1;
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
        if (runnable(text, size))
            run(sc, uses_untranslated_dma(text));
        vms_scenario_destroy(sc);
    } else if (st != VMS_ERR_PARSE || !msg_names_line(err.msg)) {
        fprintf(stderr, "fuzz: bad failure report: status %d, \"%s\"\n", (int)st, err.msg);
        abort();
    }
    free(text);
    return 0;
}
