/*
 * cli_curve.h — the --curve options of `vmsim replay` (curve.c): parse, attach the
 * curves to every core of a machine before the replay, print them after.
 */
#ifndef VMSIM_CLI_CURVE_H
#define VMSIM_CLI_CURVE_H

#include <stdio.h>

#include "vmsim/curve.h"
#include "vmsim/kernel.h"
#include "vmsim/machine.h"
#include "vmsim/strbuf.h"

#define CLI_CURVE_MAX  8  /* --curve options */
#define CLI_CURVE_SETS 24 /* set counts per structure (powers of two, and the configured) */

typedef struct cli_curve_spec {
    char name[16];    /* tlb.l1d, pwc.pde, … */
    uint64_t max;     /* :MAX, 0 for the configured entries */
    unsigned entries; /* sizes reported: 1 … entries */
    vms_curve_geometry geo;
    unsigned nsets, setcounts[CLI_CURVE_SETS];
    vms_curve **c; /* per core: exact, sampled (or NULL), then one per set count */
} cli_curve_spec;

typedef struct cli_curves {
    int n;
    cli_curve_spec spec[CLI_CURVE_MAX];
    double rate; /* --curve-sample; 0 or 1: none */
    vms_machine *m;
} cli_curves;

/* Parse --curve V or --curve-sample V (a is the option); 0 or EXIT_USAGE (printed). */
int cli_curve_option(cli_curves *cv, const char *a, const char *v);

/* Create the curves and attach them to every core of m (k's spurious-fault count
 * wired in, vms_curve_set_spurious); 0, or EXIT_USAGE (printed) when
 * a structure does not exist. */
int cli_curve_attach(cli_curves *cv, vms_machine *m, const vms_kernel *k);

/* Append ,"curve":{…}[,"curve_sets":{…}][,"curve_sample":{…}] (nothing without curves). */
void cli_curve_json(const cli_curves *cv, vms_strbuf *sb);

/* A few lines for the readable summary. */
void cli_curve_summary(const cli_curves *cv, FILE *f);

/* Detach and free the curves (before or after the machine is destroyed... before). */
void cli_curve_free(cli_curves *cv);

#endif
