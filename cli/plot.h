/*
 * plot.h — SVG charts written by the program itself (no plotting library): replay's
 * time series (miss rates and faults per interval) and sweep results (one bar per
 * task). Output is deterministic text: the same data give the same bytes.
 */
#ifndef VMSIM_CLI_PLOT_H
#define VMSIM_CLI_PLOT_H

#include <stdio.h>

#include "cli.h"

/* A numeric table: named columns, rows of doubles (row-major). */
typedef struct cli_table {
    char *name[32];
    size_t ncols;
    double *v;
    size_t nrows, cap;
} cli_table;

/* Set the column names from a CSV header line (copies). False if more than 32. */
bool cli_table_header(cli_table *t, const char *header);
/* Append a row of t->ncols values. False on allocation failure. */
bool cli_table_add(cli_table *t, const double *row);
void cli_table_free(cli_table *t);

/*
 * The time series of `vmsim replay --csv`: x is the first column (references); the top
 * panel draws every *_miss_rate column, the bottom one the faults and major_faults taken
 * in each interval (the CSV holds running totals). Written to f.
 */
void cli_plot_series(FILE *f, const cli_table *t, const char *title);

/* One bar per sweep result: metric column m (cli_metric_*) of each, labelled by the
 * task number and the SPEC keys whose values differ between results. */
void cli_plot_sweep(FILE *f, const cli_results *rs, unsigned m, const char *title);

#endif
