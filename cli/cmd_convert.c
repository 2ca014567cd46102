/*
 * cmd_convert.c — `vmsim convert IN OUT`: read a trace in any supported format and
 * write it in another (vmsim/trace.h). Streams: memory stays constant whatever the size.
 */
#define _POSIX_C_SOURCE 200809L /* mkstemp, fchmod */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "vmsim/trace.h"

static const char convert_usage[] =
    "usage: vmsim convert IN OUT [--from FMT] [--to FMT] [--accesses-only] [--level N]\n"
    "                            [--raw] [-v]\n"
    "\n"
    "Convert the trace IN to OUT (\"-\" for stdin/stdout).\n"
    "  --from FMT       auto (default: detect), native, lackey, dinero or champsim\n"
    "  --to FMT         native (default; lackey for OUT *.lackey, dinero for *.din),\n"
    "                   lackey or dinero\n"
    "  --accesses-only  drop kernel events (mmap, brk, clone, …), which lackey and\n"
    "                   dinero cannot hold; without it they are an error\n"
    "  --level N        native: zstd level 1..19 (default 3)\n"
    "  --raw            native: leave the payload uncompressed\n"
    "  -v               print the number of events converted\n"
    "Inputs compressed with gzip, xz or zstd are recognised by their magic bytes.\n"
    "Lackey and dinero drop thread ids; dinero drops sizes and writes a modify as a read\n"
    "then a write. A regular OUT is written to a temporary file next to it and renamed\n"
    "over OUT only when the whole trace converted, so a failure leaves an existing OUT as\n"
    "it was; IN and OUT must be different files.\n"
    "Exit status: 0 done, 1 a read or write failure, 2 a usage error (IN = OUT too).\n";

typedef struct convert_args {
    const char *in, *out;
    vms_trace_format from, to;
    bool to_set, accesses_only, verbose;
    vms_trace_writer_opts wopts;
} convert_args;

/* Whether s ends with suffix. */
static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Parse a format option's value into *f; false (message printed) when unknown. */
static bool parse_fmt(const char *v, vms_trace_format *f)
{
    vms_err err = {0};
    if (!v) {
        cli_error("convert", "--from and --to need a format name");
        return false;
    }
    if (vms_trace_format_parse(v, f, &err) != VMS_OK) {
        cli_error("convert", "%s", err.msg);
        return false;
    }
    return true;
}

/* Parse argv into *a; returns -1 to go on, or an exit status. */
static int parse_args(int argc, char **argv, convert_args *a)
{
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t level;
        if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
            fputs(convert_usage, stdout);
            return 0;
        } else if (!strcmp(s, "--from") || !strcmp(s, "--to")) {
            if (!parse_fmt(v, s[2] == 'f' ? &a->from : &a->to))
                return EXIT_USAGE;
            a->to_set |= s[2] == 't';
            i++;
        } else if (!strcmp(s, "--level")) {
            if (!v || !cli_parse_u64(v, false, &level) || level < 1 || level > 19) {
                cli_error("convert", "--level needs a number from 1 to 19");
                return EXIT_USAGE;
            }
            a->wopts.zstd_level = (int)level;
            i++;
        } else if (!strcmp(s, "--raw")) {
            a->wopts.raw = true;
        } else if (!strcmp(s, "--accesses-only")) {
            a->accesses_only = true;
        } else if (!strcmp(s, "-v")) {
            a->verbose = true;
        } else if (s[0] == '-' && s[1] != '\0') {
            cli_error("convert", "unknown option '%s' (see --help)", s);
            return EXIT_USAGE;
        } else if (npos < 2) {
            *(npos++ ? &a->out : &a->in) = s;
        } else {
            cli_error("convert", "too many arguments (see --help)");
            return EXIT_USAGE;
        }
    }
    if (npos != 2) {
        cli_error("convert", "expected IN and OUT (see --help)");
        return EXIT_USAGE;
    }
    return -1;
}

/* Record a failure to install OUT in err. */
static vms_status install_err(vms_err *err, const char *out, int e)
{
    snprintf(err->msg, sizeof err->msg, "%s: cannot replace it with the converted trace: %s", out,
             strerror(e));
    err->status = VMS_ERR_IO;
    return VMS_ERR_IO;
}

/* Rewrite ev's path id from the reader's table to the writer's. */
static vms_status remap_path(vms_trace_reader *r, vms_trace_writer *w, vms_trace_event *ev,
                             vms_err *err)
{
    uint32_t *id = ev->type == VMS_TEV_MAP    ? &ev->map.path
                   : ev->type == VMS_TEV_MMAP ? &ev->mmap.path
                   : ev->type == VMS_TEV_EXEC ? &ev->exec.path
                                              : NULL;
    if (!id || *id == 0)
        return VMS_OK;
    return vms_trace_writer_intern(w, vms_trace_reader_path(r, *id), id, err);
}

/* Copy every event of r to w. */
static vms_status pump(const convert_args *a, vms_trace_reader *r, vms_trace_writer *w,
                       vms_err *err)
{
    vms_trace_event ev;
    while (vms_trace_read(r, &ev, err)) {
        if (a->accesses_only && ev.type != VMS_TEV_ACCESS)
            continue;
        vms_status st = remap_path(r, w, &ev, err);
        if (st == VMS_OK)
            st = vms_trace_writer_write(w, &ev, err);
        if (st != VMS_OK)
            return st;
    }
    return err->status;
}

/* Where the trace is written: OUT itself ("-", or an existing non-regular file such as a
 * device or a FIFO, which a rename would replace), or a temporary file in OUT's directory
 * renamed over OUT on success. */
typedef struct target {
    char tmp[4096]; /* the temporary file ("" when writing OUT directly) */
    mode_t mode;    /* the mode OUT gets */
} target;

/* Decide how to write a.out, refusing IN = OUT; returns -1 to go on, or an exit status. */
static int prepare(const convert_args *a, target *t)
{
    struct stat in, out;
    t->tmp[0] = '\0';
    if (!strcmp(a->out, "-"))
        return -1;
    bool exists = stat(a->out, &out) == 0;
    if (exists && strcmp(a->in, "-") != 0 && stat(a->in, &in) == 0 && in.st_dev == out.st_dev &&
        in.st_ino == out.st_ino) {
        cli_error("convert",
                  "%s and %s are the same file: converting a file onto itself would "
                  "destroy it",
                  a->in, a->out);
        return EXIT_USAGE;
    }
    if (exists && !S_ISREG(out.st_mode))
        return -1; /* a device or FIFO: written in place, never removed */
    mode_t mask = umask(0);
    umask(mask);
    t->mode = exists ? out.st_mode & 07777 : 0666 & ~mask;
    const char *slash = strrchr(a->out, '/');
    int dirlen = slash ? (int)(slash - a->out) + 1 : 0;
    snprintf(t->tmp, sizeof t->tmp, "%.*s.%s.tmp-XXXXXX", dirlen, a->out,
             slash ? slash + 1 : a->out);
    int fd = mkstemp(t->tmp);
    if (fd < 0) {
        cli_error("convert", "%s: cannot create a temporary file next to it: %s", a->out,
                  strerror(errno));
        return 1;
    }
    close(fd);
    return -1;
}

/* Move the finished temporary file over OUT, or remove it after a failure (only what we
 * created: OUT itself is never removed). */
static vms_status finish(const convert_args *a, target *t, vms_status st, vms_err *err)
{
    if (!t->tmp[0])
        return st;
    if (st == VMS_OK && (chmod(t->tmp, t->mode) != 0 || rename(t->tmp, a->out) != 0))
        st = install_err(err, a->out, errno);
    if (st != VMS_OK)
        unlink(t->tmp);
    return st;
}

int cmd_convert(int argc, char **argv)
{
    convert_args a = {0};
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0)
        return rc;
    if (!a.to_set)
        a.to = ends_with(a.out, ".lackey") ? VMS_TRACE_LACKEY
               : ends_with(a.out, ".din")  ? VMS_TRACE_DINERO
                                           : VMS_TRACE_NATIVE;
    target t;
    if ((rc = prepare(&a, &t)) >= 0)
        return rc;
    vms_err err = {0};
    vms_trace_reader *r;
    vms_trace_writer *w = NULL;
    vms_status st = vms_trace_reader_open(a.in, a.from, NULL, &r, &err);
    if (st == VMS_OK)
        st = vms_trace_writer_open(t.tmp[0] ? t.tmp : a.out, a.to, &a.wopts, NULL, &w, &err);
    if (st == VMS_OK)
        st = pump(&a, r, w, &err);
    vms_err cerr = {0};
    if (vms_trace_writer_close(w, &cerr) != VMS_OK && st == VMS_OK) {
        st = cerr.status;
        err = cerr;
    }
    st = finish(&a, &t, st, &err);
    if (st == VMS_OK && a.verbose)
        fprintf(stderr, "vmsim convert: %llu events, %s -> %s\n",
                (unsigned long long)vms_trace_reader_count(r),
                vms_trace_format_name(vms_trace_reader_format(r)), vms_trace_format_name(a.to));
    vms_trace_reader_close(r);
    if (st != VMS_OK) {
        cli_error("convert", "%s", err.msg); /* OUT untouched (or a device, partly written) */
        return 1;
    }
    return 0;
}
