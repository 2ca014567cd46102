/*
 * plot.c — SVG charts (plot.h) and `vmsim plot`. A chart is a set of panels, each with
 * a frame, "nice" ticks (1, 2 or 5 times a power of ten) and its series as polylines
 * or bars, then a legend. Every number is printed with a fixed precision, so the output
 * is byte-identical for the same data.
 */
#include "plot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

#define W     860.0 /* the picture's width */
#define LEFT  80.0  /* room for the y labels */
#define RIGHT 170.0 /* room for the legend */
#define PANEL 240.0 /* a panel's height */
#define TOP   40.0  /* room for the title */
#define GAP   60.0  /* between panels: the x labels */

static const char *const colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd",
                                     "#ff7f0e", "#8c564b", "#e377c2", "#17becf"};
#define NCOLORS (sizeof colors / sizeof colors[0])

bool cli_table_header(cli_table *t, const char *header)
{
    memset(t, 0, sizeof *t);
    for (const char *p = header; *p;) {
        size_t n = strcspn(p, ",\r\n");
        if (t->ncols == 32)
            return false;
        t->name[t->ncols] = malloc(n + 1);
        if (!t->name[t->ncols])
            return false;
        memcpy(t->name[t->ncols], p, n);
        t->name[t->ncols++][n] = '\0';
        p += n;
        if (*p != ',')
            break;
        p++;
    }
    return t->ncols > 0;
}

bool cli_table_add(cli_table *t, const double *row)
{
    if (t->nrows == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 64;
        double *v = realloc(t->v, nc * t->ncols * sizeof *v);
        if (!v)
            return false;
        t->v = v;
        t->cap = nc;
    }
    memcpy(t->v + t->nrows++ * t->ncols, row, t->ncols * sizeof *row);
    return true;
}

void cli_table_free(cli_table *t)
{
    for (size_t i = 0; i < t->ncols; i++)
        free(t->name[i]);
    free(t->v);
    memset(t, 0, sizeof *t);
}

/* Text for SVG: & < > escaped. */
static void text(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '&')
            fputs("&amp;", f);
        else if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '>')
            fputs("&gt;", f);
        else
            fputc(*s, f);
    }
}

/* A tick step for [0, max] with about n steps: 1, 2 or 5 times a power of ten. */
static double nice_step(double max, int n)
{
    if (max <= 0)
        return 1;
    double raw = max / n, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

/* A number for an axis label: compact (12k, 3.4M) or short decimals. */
static void num(char *buf, size_t len, double v)
{
    double a = fabs(v);
    if (a >= 1e9)
        snprintf(buf, len, "%gG", v / 1e9);
    else if (a >= 1e6)
        snprintf(buf, len, "%gM", v / 1e6);
    else if (a >= 1e4)
        snprintf(buf, len, "%gk", v / 1e3);
    else
        snprintf(buf, len, "%g", v);
}

typedef struct panel {
    double y0;         /* top edge */
    double xmax, ymax; /* data ranges from 0 */
    double x0, xw, yh; /* plot area */
} panel;

/* Frame, grid and tick labels of a panel; ymax/xmax are rounded up to whole ticks. */
static void frame(FILE *f, panel *p, const char *ylabel, const char *xlabel, bool xticks)
{
    char b[32];
    p->x0 = LEFT;
    p->xw = W - LEFT - RIGHT;
    p->yh = PANEL;
    double ys = nice_step(p->ymax, 5);
    p->ymax = ceil(p->ymax / ys) * ys;
    if (p->ymax <= 0)
        p->ymax = ys;
    fprintf(f,
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
            "stroke=\"#444\"/>\n",
            p->x0, p->y0, p->xw, p->yh);
    for (double y = 0; y <= p->ymax * (1 + 1e-9); y += ys) {
        double py = p->y0 + p->yh - y / p->ymax * p->yh;
        num(b, sizeof b, y);
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
                p->x0, py, p->x0 + p->xw, py, p->x0 - 6, py + 4, b);
    }
    if (xticks) {
        double xs = nice_step(p->xmax, 6);
        for (double x = 0; x <= p->xmax * (1 + 1e-9); x += xs) {
            double px = p->x0 + (p->xmax > 0 ? x / p->xmax : 0) * p->xw;
            num(b, sizeof b, x);
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", px,
                    p->y0 + p->yh + 16, b);
        }
    }
    fprintf(f,
            "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 %.1f "
            "%.1f)\">",
            p->x0 - 58, p->y0 + p->yh / 2, p->x0 - 58, p->y0 + p->yh / 2);
    text(f, ylabel);
    fprintf(f, "</text>\n<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", p->x0 + p->xw / 2,
            p->y0 + p->yh + 34);
    text(f, xlabel);
    fputs("</text>\n", f);
}

static void legend(FILE *f, const panel *p, unsigned i, const char *name)
{
    double y = p->y0 + 14 + 18 * i;
    fprintf(f,
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"4\" fill=\"%s\"/>"
            "<text x=\"%.1f\" y=\"%.1f\">",
            W - RIGHT + 16, y - 4, colors[i % NCOLORS], W - RIGHT + 36, y);
    text(f, name);
    fputs("</text>\n", f);
}

static void begin(FILE *f, double h, const char *title)
{
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
            "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"12\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
            "<text x=\"%.1f\" y=\"24\" font-size=\"15\" font-weight=\"bold\">",
            W, h, W, h, LEFT);
    text(f, title);
    fputs("</text>\n", f);
}

/* A polyline of column c against column 0; per_interval draws differences of a
 * running total. */
static void line(FILE *f, const panel *p, const cli_table *t, size_t c, bool per_interval,
                 const char *color)
{
    fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", color);
    for (size_t r = 0; r < t->nrows; r++) {
        double x = t->v[r * t->ncols], y = t->v[r * t->ncols + c];
        if (per_interval && r)
            y -= t->v[(r - 1) * t->ncols + c];
        double px = p->x0 + (p->xmax > 0 ? x / p->xmax : 0) * p->xw;
        double py = p->y0 + p->yh - (p->ymax > 0 ? y / p->ymax : 0) * p->yh;
        fprintf(f, "%s%.1f,%.1f", r ? " " : "", px, py);
    }
    fputs("\"/>\n", f);
}

static bool is_rate(const char *name)
{
    size_t n = strlen(name);
    return n > 10 && !strcmp(name + n - 10, "_miss_rate");
}

void cli_plot_series(FILE *f, const cli_table *t, const char *title)
{
    begin(f, TOP + 2 * PANEL + 2 * GAP, title);
    panel top = {.y0 = TOP}, bot = {.y0 = TOP + PANEL + GAP};
    for (size_t r = 0; r < t->nrows; r++) {
        const double *row = t->v + r * t->ncols;
        top.xmax = bot.xmax = fmax(top.xmax, row[0]);
        for (size_t c = 1; c < t->ncols; c++) {
            double d = r ? row[c] - row[c - t->ncols] : row[c];
            if (is_rate(t->name[c]))
                top.ymax = fmax(top.ymax, row[c]);
            else if (!strcmp(t->name[c], "faults") || !strcmp(t->name[c], "major_faults"))
                bot.ymax = fmax(bot.ymax, d);
        }
    }
    frame(f, &top, "TLB miss rate (per interval)", t->name[0], true);
    frame(f, &bot, "page faults per interval", t->name[0], true);
    unsigned nt = 0, nb = 0;
    for (size_t c = 1; c < t->ncols; c++) {
        if (is_rate(t->name[c])) {
            line(f, &top, t, c, false, colors[nt % NCOLORS]);
            legend(f, &top, nt++, t->name[c]);
        } else if (!strcmp(t->name[c], "faults") || !strcmp(t->name[c], "major_faults")) {
            line(f, &bot, t, c, true, colors[nb % NCOLORS]);
            legend(f, &bot, nb++, t->name[c]);
        }
    }
    fputs("</svg>\n", f);
}

void cli_plot_sweep(FILE *f, const cli_results *rs, unsigned m, const char *title)
{
    /* Label bars by the keys whose values vary. */
    bool varies[CLI_RESULTS_MAXCOLS] = {false};
    for (size_t c = 0; c < rs->ncols; c++)
        for (size_t i = 1; i < rs->n && !varies[c]; i++)
            varies[c] = strcmp(cli_result_setting(&rs->r[i], rs->col[c]),
                               cli_result_setting(&rs->r[0], rs->col[c])) != 0;
    double bar = 22, h = TOP + fmax(1, (double)rs->n) * bar + 70;
    begin(f, h, title);
    double max = 0, v;
    for (size_t i = 0; i < rs->n; i++)
        if (cli_metric_value(rs->r[i].j, m, &v))
            max = fmax(max, v);
    /* Horizontal bars: labels on the left half, bars on the right. */
    double x0 = W * 0.45, xw = W - x0 - 40, step = nice_step(max, 5);
    max = max > 0 ? ceil(max / step) * step : 1;
    char b[32];
    for (double x = 0; x <= max * (1 + 1e-9); x += step) {
        double px = x0 + x / max * xw;
        num(b, sizeof b, x);
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
                px, TOP, px, TOP + (double)rs->n * bar, px, TOP + (double)rs->n * bar + 16, b);
    }
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", x0 + xw / 2,
            TOP + (double)rs->n * bar + 36);
    text(f, cli_metric_name(m));
    fputs("</text>\n", f);
    for (size_t i = 0; i < rs->n; i++) {
        const cli_result *r = &rs->r[i];
        double y = TOP + (double)i * bar;
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.0f", x0 - 8, y + 15, r->task);
        for (size_t c = 0; c < rs->ncols; c++)
            if (varies[c]) {
                fputs(" ", f);
                text(f, rs->col[c]);
                fputs("=", f);
                text(f, cli_result_setting(r, rs->col[c]));
            }
        fputs("</text>\n", f);
        if (cli_metric_value(r->j, m, &v))
            fprintf(f,
                    "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\">"
                    "<title>%g</title></rect>\n",
                    x0, y + 3, v / max * xw, bar - 6, colors[0], v);
    }
    fputs("</svg>\n", f);
}

/* ---- vmsim plot ------------------------------------------------------------------------- */

static const char usage[] =
    "usage: vmsim plot INPUT -o OUT.svg [--metric NAME] [--title TEXT]\n"
    "\n"
    "Draw an SVG chart. INPUT is either the CSV of `vmsim replay --csv` (miss rates of\n"
    "each TLB level and page faults per interval, against references) or the JSON lines\n"
    "of `vmsim sweep` (one bar per task; --metric picks the column, default\n"
    "cycles_per_ref; any column of `vmsim sweep merge`). `vmsim replay --plot OUT.svg`\n"
    "draws the first kind directly.\n";

/* Read a replay CSV into t. 0, or 1 with a message naming the file and line. */
static int read_csv(const char *path, FILE *in, cli_table *t)
{
    char buf[4096];
    if (!fgets(buf, sizeof buf, in) || !cli_table_header(t, buf) ||
        strcmp(t->name[0], "references")) {
        cli_error("plot", "%s:1: expected the header of vmsim replay --csv (references,…)", path);
        return 1;
    }
    double row[32];
    for (unsigned line = 2; fgets(buf, sizeof buf, in); line++) {
        char *p = buf, *end;
        for (size_t c = 0; c < t->ncols; c++) {
            row[c] = strtod(p, &end);
            if (end == p || (*end != ',' && c + 1 < t->ncols)) {
                cli_error("plot", "%s:%u: expected %zu numbers separated by commas", path, line,
                          t->ncols);
                return 1;
            }
            p = end + 1;
        }
        if (!cli_table_add(t, row))
            return 1;
    }
    return 0;
}

int cmd_plot(int argc, char **argv)
{
    const char *in_path = NULL, *out_path = NULL, *metric = "cycles_per_ref", *title = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "-o") && v) {
            out_path = argv[++i];
        } else if (!strcmp(a, "--metric") && v) {
            metric = argv[++i];
        } else if (!strcmp(a, "--title") && v) {
            title = argv[++i];
        } else if (a[0] != '-' && !in_path) {
            in_path = a;
        } else {
            cli_error("plot", "unexpected argument '%s' (see vmsim plot --help)", a);
            return EXIT_USAGE;
        }
    }
    if (!in_path || !out_path) {
        cli_error("plot", "need INPUT and -o OUT.svg (see vmsim plot --help)");
        return EXIT_USAGE;
    }
    unsigned m = 0;
    while (cli_metric_name(m) && strcmp(cli_metric_name(m), metric))
        m++;
    if (!cli_metric_name(m)) {
        cli_error("plot",
                  "unknown --metric '%s' (a column of vmsim sweep merge: references, "
                  "cycles_per_ref, l1d_miss_rate, …)",
                  metric);
        return EXIT_USAGE;
    }
    FILE *in = fopen(in_path, "r");
    if (!in) {
        cli_error("plot", "%s: cannot open", in_path);
        return 1;
    }
    int first = fgetc(in);
    rewind(in);
    int rc;
    FILE *out = NULL;
    if (first == '{') { /* sweep results */
        fclose(in);
        cli_results rs;
        rc = cli_results_load(&in_path, 1, &rs);
        if (!rc && !rs.n) {
            cli_error("plot", "%s: no sweep results", in_path);
            rc = 1;
        }
        if (!rc && !(out = fopen(out_path, "w")))
            rc = 1;
        if (!rc)
            cli_plot_sweep(out, &rs, m, title ? title : in_path);
        cli_results_free(&rs);
    } else {
        cli_table t = {0};
        rc = read_csv(in_path, in, &t);
        fclose(in);
        if (!rc && !(out = fopen(out_path, "w")))
            rc = 1;
        if (!rc)
            cli_plot_series(out, &t, title ? title : in_path);
        cli_table_free(&t);
    }
    if (rc == 1 && !out)
        cli_error("plot", "%s: cannot create", out_path);
    if (out && fclose(out) != 0) {
        cli_error("plot", "%s: write failed", out_path);
        rc = 1;
    }
    return rc;
}
