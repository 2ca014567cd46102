/*
 * cmd_record.c — `vmsim record -o FILE [--] PROGRAM ARGS…`: run a real program under
 * Valgrind with the vgrecord tool (tools/vgrecord/, GPL, a separate program) and write
 * its references and kernel events as a native trace (docs/RECORD.md).
 *
 *   vmsim record ── fork/exec ──► valgrind --tool=vgrecord --vgr-out=FIFO PROGRAM
 *        ▲                                        │ raw chunks (4 KiB..1 MiB)
 *        └──── read ◄── FIFO (temporary dir) ◄────┘
 *        └──► vms_vgraw decoder ──► native trace writer ──► FILE
 *
 * Streaming: the FIFO holds at most the pipe buffer, so memory stays constant whatever
 * the trace length, and Valgrind waits whenever the encoder falls behind. vmsim holds a
 * write end of the FIFO itself until the traced program has exited, so the stream never
 * ends while an exec'd image is about to open it again; after that it reads to EOF,
 * which comes when the last descendant closes its end.
 */
#define _GNU_SOURCE /* mkdtemp, pipe2 flags */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "vmsim/record.h"
#include "vmsim/trace.h"

static const char record_usage[] =
    "usage: vmsim record -o FILE [OPTIONS] [--] PROGRAM [ARGS…]\n"
    "       vmsim record -o FILE --from-raw RAW\n"
    "\n"
    "Run PROGRAM under Valgrind with the vgrecord tool and write a native trace to FILE:\n"
    "every instruction fetch, load, store and modify, the initial segment map, mmap,\n"
    "munmap, mprotect, brk, madvise, mremap, fork/clone, exit and the user memory the\n"
    "kernel writes (read, pread, fstat, getdents, …). See docs/RECORD.md.\n"
    "  -o FILE            the trace to write (\"-\": standard output)\n"
    "  --no-fetch         do not record instruction fetches\n"
    "  --no-children      do not follow exec (an exec'd program runs untraced)\n"
    "  --keep-valgrind    keep Valgrind's preload library in the trace\n"
    "  --save-raw RAW     also keep the tool's raw stream in RAW\n"
    "  --from-raw RAW     decode a saved raw stream instead of running a program\n"
    "  --tool-dir DIR     where vgrecord-amd64-linux is (default: $VMSIM_VGRECORD_DIR,\n"
    "                     else the vgrecord directory next to the vmsim program)\n"
    "  --level N          zstd level 1..19 (default 3); --raw: no compression\n"
    "  -q                 no summary on stderr\n"
    "The environment variable VMSIM_VALGRIND names the valgrind program (default:\n"
    "valgrind on PATH). Exit status: 0 recorded (whatever PROGRAM returned; the summary\n"
    "shows it), 1 a failure, 2 a usage error.\n";

static vms_status rec_err(vms_err *err, vms_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fill err (status and message) and return st. */
static vms_status rec_err(vms_err *err, vms_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->status = st;
    return st;
}

typedef struct record_args {
    const char *out, *save_raw, *from_raw, *tool_dir;
    bool no_fetch, no_children, quiet;
    vms_vgraw_opts vopts;
    vms_trace_writer_opts wopts;
    char **prog; /* argv of the program (NULL-terminated) */
} record_args;

/* Parse argv into *a; returns -1 to go on, or an exit status. */
static int parse_args(int argc, char **argv, record_args *a)
{
    int i = 1;
    for (; i < argc; i++) {
        const char *s = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t level;
        if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
            fputs(record_usage, stdout);
            return 0;
        } else if (!strcmp(s, "--")) {
            i++;
            break;
        } else if (!strcmp(s, "-o") || !strcmp(s, "--save-raw") || !strcmp(s, "--from-raw") ||
                   !strcmp(s, "--tool-dir")) {
            if (!v) {
                cli_error("record", "%s needs a value", s);
                return EXIT_USAGE;
            }
            *(s[1] == 'o'   ? &a->out
              : s[2] == 's' ? &a->save_raw
              : s[2] == 'f' ? &a->from_raw
                            : &a->tool_dir) = v;
            i++;
        } else if (!strcmp(s, "--level")) {
            if (!v || !cli_parse_u64(v, false, &level) || level < 1 || level > 19) {
                cli_error("record", "--level needs a number from 1 to 19");
                return EXIT_USAGE;
            }
            a->wopts.zstd_level = (int)level;
            i++;
        } else if (!strcmp(s, "--raw")) {
            a->wopts.raw = true;
        } else if (!strcmp(s, "--no-fetch")) {
            a->no_fetch = true;
        } else if (!strcmp(s, "--no-children")) {
            a->no_children = true;
        } else if (!strcmp(s, "--keep-valgrind")) {
            a->vopts.keep_valgrind = true;
        } else if (!strcmp(s, "-q")) {
            a->quiet = true;
        } else if (s[0] == '-') {
            cli_error("record", "unknown option '%s' (see --help)", s);
            return EXIT_USAGE;
        } else {
            break;
        }
    }
    a->prog = i < argc ? argv + i : NULL;
    if (!a->out) {
        cli_error("record", "expected -o FILE (see --help)");
        return EXIT_USAGE;
    }
    if (!a->prog == !a->from_raw) {
        cli_error("record", "expected a PROGRAM to run or --from-raw RAW, not %s (see --help)",
                  a->prog ? "both" : "neither");
        return EXIT_USAGE;
    }
    return -1;
}

/* The directory holding vgrecord-amd64-linux into buf; false (message printed) if none. */
static bool find_tool(const record_args *a, char *buf, size_t len)
{
    const char *dir = a->tool_dir ? a->tool_dir : getenv("VMSIM_VGRECORD_DIR");
    if (dir) {
        snprintf(buf, len, "%s", dir);
    } else {
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n <= 0) {
            cli_error("record", "cannot find the vmsim program (/proc/self/exe): use --tool-dir");
            return false;
        }
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = '\0';
        if (snprintf(buf, len, "%s/vgrecord", exe) >= (int)len) {
            cli_error("record", "%s: path too long: use --tool-dir", exe);
            return false;
        }
    }
    char tool[PATH_MAX + 32];
    snprintf(tool, sizeof tool, "%s/vgrecord-amd64-linux", buf);
    if (access(tool, X_OK) != 0) {
        cli_error("record",
                  "%s: not found (%s); build it (tools/vgrecord, needs valgrind's static "
                  "libraries: scripts/deps.sh) or pass --tool-dir",
                  tool, strerror(errno));
        return false;
    }
    return true;
}

/* Write len bytes to fd (the --save-raw copy); false on failure. */
static bool write_all(int fd, const void *p, size_t len)
{
    const char *b = p;
    while (len > 0) {
        ssize_t n = write(fd, b, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        b += n;
        len -= (size_t)n;
    }
    return true;
}

typedef struct pump_state {
    vms_vgraw *dec;
    int save_fd; /* -1: none */
    uint8_t *buf;
    size_t buflen;
} pump_state;

/* Read what fd has (one read); returns 1 data, 0 EOF, -1 failure (err filled). */
static int pump_once(pump_state *ps, int fd, vms_err *err)
{
    ssize_t n = read(fd, ps->buf, ps->buflen);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return 1;
    if (n < 0) {
        snprintf(err->msg, sizeof err->msg, "reading the raw stream: %s", strerror(errno));
        err->status = VMS_ERR_IO;
        return -1;
    }
    if (n == 0)
        return 0;
    if (ps->save_fd >= 0 && !write_all(ps->save_fd, ps->buf, (size_t)n)) {
        snprintf(err->msg, sizeof err->msg, "writing the raw copy: %s", strerror(errno));
        err->status = VMS_ERR_IO;
        return -1;
    }
    return vms_vgraw_feed(ps->dec, ps->buf, (size_t)n, err) == VMS_OK ? 1 : -1;
}

/* Decode a saved raw stream. */
static vms_status from_raw(pump_state *ps, const char *path, vms_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return rec_err(err, VMS_ERR_IO, "%s: %s", path, strerror(errno));
    int r;
    while ((r = pump_once(ps, fd, err)) > 0)
        ;
    close(fd);
    return r < 0 ? err->status : VMS_OK;
}

/* A copy of s for an argv in the child (which exits when out of memory). */
static char *arg(const char *s)
{
    char *p = strdup(s);
    if (!p)
        _exit(127);
    return p;
}

/* Run valgrind in a child with its output going to fifo; returns its pid or -1. */
static pid_t spawn_valgrind(const record_args *a, const char *tooldir, const char *fifo)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    const char *vg = getenv("VMSIM_VALGRIND");
    size_t n = 0;
    while (a->prog[n])
        n++;
    char **argv = calloc(n + 10, sizeof *argv);
    char out[PATH_MAX + 16], root[32];
    if (!argv)
        _exit(127);
    snprintf(out, sizeof out, "--vgr-out=%s", fifo);
    snprintf(root, sizeof root, "--vgr-root=%ld", (long)getpid());
    size_t k = 0;
    argv[k++] = arg(vg ? vg : "valgrind");
    argv[k++] = arg("-q");
    argv[k++] = arg("--tool=vgrecord");
    argv[k++] = out;
    argv[k++] = root;
    argv[k++] = arg(a->no_children ? "--trace-children=no" : "--trace-children=yes");
    if (a->no_fetch)
        argv[k++] = arg("--vgr-fetch=no");
    for (size_t i = 0; i < n; i++)
        argv[k++] = a->prog[i];
    argv[k] = NULL;
    setenv("VALGRIND_LIB", tooldir, 1);
    execvp(argv[0], argv);
    fprintf(stderr, "vmsim record: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

/*
 * Run the program and pump the FIFO into the decoder until every writer is gone.
 * *status is the program's wait status.
 */
static vms_status run_program(pump_state *ps, const record_args *a, int *status, vms_err *err)
{
    char tooldir[PATH_MAX], tmpl[] = "/tmp/vmsim-record-XXXXXX", fifo[sizeof tmpl + 16];
    if (!find_tool(a, tooldir, sizeof tooldir))
        return rec_err(err, VMS_ERR_NOTFOUND, "the vgrecord tool is missing");
    if (!mkdtemp(tmpl))
        return rec_err(err, VMS_ERR_IO, "mkdtemp: %s", strerror(errno));
    snprintf(fifo, sizeof fifo, "%s/raw", tmpl);
    vms_status st = VMS_OK;
    int rfd = -1, wfd = -1;
    if (mkfifo(fifo, 0600) != 0) {
        st = rec_err(err, VMS_ERR_IO, "mkfifo %s: %s", fifo, strerror(errno));
        goto out;
    }
    /* Our own write end keeps the FIFO open between an exec and the new image's open. */
    rfd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    wfd = rfd >= 0 ? open(fifo, O_WRONLY | O_CLOEXEC) : -1;
    if (rfd < 0 || wfd < 0) {
        st = rec_err(err, VMS_ERR_IO, "open %s: %s", fifo, strerror(errno));
        goto out;
    }
    fcntl(rfd, F_SETPIPE_SZ, 1 << 20); /* fewer wake-ups; best effort */
    pid_t pid = spawn_valgrind(a, tooldir, fifo);
    if (pid < 0) {
        st = rec_err(err, VMS_ERR_IO, "fork: %s", strerror(errno));
        goto out;
    }
    bool running = true;
    for (;;) {
        struct pollfd pfd = {.fd = rfd, .events = POLLIN};
        int pr = poll(&pfd, 1, running ? 100 : -1);
        if (pr > 0) {
            int r = pump_once(ps, rfd, err);
            if (r < 0) {
                st = err->status;
                kill(pid, SIGKILL);
                waitpid(pid, status, 0);
                break;
            }
            if (r == 0 && !running)
                break; /* EOF: the last writer is gone */
        }
        if (running && waitpid(pid, status, WNOHANG) == pid) {
            running = false;
            close(wfd); /* from now on EOF means every descendant is done */
            wfd = -1;
        }
    }
out:
    if (rfd >= 0)
        close(rfd);
    if (wfd >= 0)
        close(wfd);
    unlink(fifo);
    rmdir(tmpl);
    return st;
}

/* Print the summary line(s) on stderr. */
static void summary(const record_args *a, const vms_vgraw_stats *s, int status)
{
    if (a->quiet)
        return;
    fprintf(stderr,
            "vmsim record: %llu events (%llu references, %llu kernel writes of %llu bytes), "
            "%llu process(es), %llu thread(s), %llu exec(s) -> %s\n",
            (unsigned long long)s->events, (unsigned long long)s->accesses,
            (unsigned long long)s->kwrites, (unsigned long long)s->kwrite_bytes,
            (unsigned long long)s->processes, (unsigned long long)s->threads,
            (unsigned long long)s->execs, a->out);
    if (s->unclean || s->mremaps || s->dropped)
        fprintf(stderr,
                "vmsim record: %llu Valgrind preload record(s) dropped, %llu mremap(s) "
                "approximated, %llu process(es) without a clean end\n",
                (unsigned long long)s->dropped, (unsigned long long)s->mremaps,
                (unsigned long long)s->unclean);
    if (a->prog && WIFEXITED(status) && WEXITSTATUS(status) != 0)
        fprintf(stderr, "vmsim record: %s exited with status %d\n", a->prog[0],
                WEXITSTATUS(status));
    else if (a->prog && WIFSIGNALED(status))
        fprintf(stderr, "vmsim record: %s was killed by signal %d\n", a->prog[0], WTERMSIG(status));
}

int cmd_record(int argc, char **argv)
{
    record_args a = {0};
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0)
        return rc;
    vms_err err = {0};
    vms_trace_writer *w = NULL;
    pump_state ps = {.save_fd = -1, .buflen = 1u << 20};
    int status = 0;
    vms_status st = VMS_OK;
    if (!(ps.buf = malloc(ps.buflen)))
        st = rec_err(&err, VMS_ERR_NOMEM, "out of memory");
    if (st == VMS_OK && a.save_raw &&
        (ps.save_fd = open(a.save_raw, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
        st = rec_err(&err, VMS_ERR_IO, "%s: %s", a.save_raw, strerror(errno));
    if (st == VMS_OK)
        st = vms_trace_writer_open(a.out, VMS_TRACE_NATIVE, &a.wopts, NULL, &w, &err);
    if (st == VMS_OK)
        st = vms_vgraw_create(w, &a.vopts, NULL, &ps.dec, &err);
    if (st == VMS_OK)
        st = a.from_raw ? from_raw(&ps, a.from_raw, &err) : run_program(&ps, &a, &status, &err);
    if (st == VMS_OK)
        st = vms_vgraw_finish(ps.dec, &err);
    if (st == VMS_OK && vms_vgraw_get_stats(ps.dec)->chunks == 0)
        st = rec_err(&err, VMS_ERR_IO,
                     "nothing was recorded (did valgrind start? see its messages above)");
    vms_err cerr = {0};
    if (vms_trace_writer_close(w, &cerr) != VMS_OK && st == VMS_OK) {
        st = cerr.status;
        err = cerr;
    }
    if (ps.save_fd >= 0)
        close(ps.save_fd);
    if (st == VMS_OK)
        summary(&a, vms_vgraw_get_stats(ps.dec), status);
    vms_vgraw_destroy(ps.dec);
    free(ps.buf);
    if (st != VMS_OK) {
        cli_error("record", "%s", err.msg);
        if (w && strcmp(a.out, "-") != 0)
            remove(a.out); /* never leave a partial trace that may look whole */
        return 1;
    }
    return 0;
}
