/*
 * test_record.c — recording real programs (vmsim/record.h, docs/RECORD.md).
 *
 * Part 1, always: the raw-stream decoder on hand-made streams — every event type, the
 * same output whatever the stream's cuts, fork/exec/thread bookkeeping, Valgrind's
 * preload library dropped, and malformed streams failing with their byte offset.
 * Part 2, when the vgrecord tool is built and valgrind runs: `vmsim record` of /bin/true
 * and of a small C program compiled here (mmap/munmap, read(2), fork, a thread), with the
 * events checked, and the reference count compared with lackey's for /bin/true.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "vmsim/record.h"
#include "vmsim/trace.h"

/* ---- building raw streams ---------------------------------------------------------- */

#define MAGIC UINT64_C(0x314B4E4843524756)

typedef struct rawbuf {
    uint64_t w[4096];
    size_t n;
    size_t hdr; /* index of the open chunk's header */
} rawbuf;

static void chunk(rawbuf *b, uint32_t pid)
{
    b->hdr = b->n;
    b->w[b->n++] = MAGIC;
    b->w[b->n++] = pid;
}

static void end_chunk(rawbuf *b)
{
    b->w[b->hdr + 1] |= (uint64_t)(b->n - b->hdr - 2) << 32;
}

static void acc(rawbuf *b, unsigned kind, unsigned size, uint64_t va)
{
    b->w[b->n++] = ((uint64_t)kind << 62) | ((uint64_t)size << 48) | (va & 0xffffffffffffu);
}

static void ctl(rawbuf *b, unsigned type, const uint64_t *args, size_t n)
{
    b->w[b->n++] = type | ((uint64_t)n << 8);
    for (size_t i = 0; i < n; i++)
        b->w[b->n++] = args[i];
}

/* A control record ending in a string. */
static void ctl_str(rawbuf *b, unsigned type, const uint64_t *args, size_t n, const char *s)
{
    size_t len = strlen(s), sw = (len + 7) / 8;
    b->w[b->n++] = type | ((uint64_t)(n + 1 + sw) << 8);
    for (size_t i = 0; i < n; i++)
        b->w[b->n++] = args[i];
    b->w[b->n++] = len;
    memset(&b->w[b->n], 0, sw * 8);
    memcpy(&b->w[b->n], s, len);
    b->n += sw;
}

/* ---- decoding into a trace and reading it back ------------------------------------- */

#define MAXEV 256

typedef struct decoded {
    vms_trace_event ev[MAXEV];
    char path[MAXEV][64];
    size_t n;
    vms_vgraw_stats st;
    vms_status status;
    vms_err err;
} decoded;

/* Decode `len` bytes fed in pieces of `step` (0: all at once) into a temporary trace,
 * then read the trace back into *out. */
static void decode(const void *data, size_t len, size_t step, bool keep, decoded *out)
{
    char path[] = "/tmp/vmsim-test-record-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    memset(out, 0, sizeof *out);
    vms_trace_writer *w = NULL;
    vms_vgraw *d = NULL;
    vms_vgraw_opts o = {.keep_valgrind = keep};
    vms_status st = vms_trace_writer_open(path, VMS_TRACE_NATIVE, NULL, NULL, &w, &out->err);
    if (st == VMS_OK)
        st = vms_vgraw_create(w, &o, NULL, &d, &out->err);
    const uint8_t *p = data;
    for (size_t off = 0; st == VMS_OK && off < len;) {
        size_t k = step && step < len - off ? step : len - off;
        st = vms_vgraw_feed(d, p + off, k, &out->err);
        off += k;
    }
    if (st == VMS_OK)
        st = vms_vgraw_finish(d, &out->err);
    if (d)
        out->st = *vms_vgraw_get_stats(d);
    vms_vgraw_destroy(d);
    vms_err cerr;
    vms_status cst = vms_trace_writer_close(w, &cerr);
    out->status = st != VMS_OK ? st : cst;
    if (out->status == VMS_OK) {
        vms_trace_reader *r;
        if (vms_trace_reader_open(path, VMS_TRACE_NATIVE, NULL, &r, NULL) == VMS_OK) {
            while (out->n < MAXEV && vms_trace_read(r, &out->ev[out->n], NULL)) {
                const vms_trace_event *e = &out->ev[out->n];
                uint32_t id = e->type == VMS_TEV_MAP    ? e->map.path
                              : e->type == VMS_TEV_MMAP ? e->mmap.path
                              : e->type == VMS_TEV_EXEC ? e->exec.path
                                                        : 0;
                const char *s = id ? vms_trace_reader_path(r, id) : NULL;
                snprintf(out->path[out->n], sizeof out->path[0], "%s", s ? s : "");
                out->n++;
            }
            vms_trace_reader_close(r);
        }
    }
    unlink(path);
}

static void dump(const decoded *d)
{
    for (size_t i = 0; i < d->n; i++) {
        char line[200];
        vms_trace_event_format(&d->ev[i], line, sizeof line);
        fprintf(stderr, "  %2zu %s %s\n", i, line, d->path[i]);
    }
}

/* ---- part 1: the decoder ----------------------------------------------------------- */

/* A whole process: start, map, references, syscalls, kernel writes, a thread, exit. */
static void build_basic(rawbuf *b)
{
    chunk(b, 100);
    ctl(b, 2, (uint64_t[]){100, 1}, 2);                                          /* START */
    ctl_str(b, 3, (uint64_t[]){0x400000, 0x401000, 0, 5, 0}, 5, "/bin/prog");    /* MAP r-x */
    ctl_str(b, 3, (uint64_t[]){0x7fff0000, 0x7fff1000, 0, 3, 0x4 | 0x1}, 5, ""); /* stack */
    ctl_str(b, 3, (uint64_t[]){0x7fff1000, 0x7fff2000, 0, 3, 0x15}, 5, "");      /* top */
    ctl_str(b, 3, (uint64_t[]){0x500000, 0x501000, 0, 7, 0x9}, 5, "");           /* heap */
    ctl(b, 1, (uint64_t[]){100}, 1);                                             /* TID */
    acc(b, 2, 4, 0x400000);
    acc(b, 0, 8, 0x7fff1ff8);
    acc(b, 1, 8, UINT64_C(0xffffffffff600000)); /* vsyscall page: sign-extended back */
    acc(b, 3, 4, 0x7fff1ff0);
    ctl_str(b, 4, (uint64_t[]){0, 0x5000, 3, 0x22, (uint64_t)-1, 0, 0x600000}, 7, "");
    ctl_str(b, 4, (uint64_t[]){0, 0x1000, 1, 0x02, 3, 0x2000, 0x700000}, 7, "/lib/x.so");
    ctl_str(b, 4, (uint64_t[]){0, 0x1000, 3, 0x22, (uint64_t)-1, 0, (uint64_t)-12}, 7, "");
    ctl(b, 5, (uint64_t[]){0x600000, 0x5000, 0}, 3);             /* MUNMAP */
    ctl(b, 5, (uint64_t[]){0x900000, 0x1000, (uint64_t)-22}, 3); /* failed: dropped */
    ctl(b, 6, (uint64_t[]){0x700000, 0x1000, 1, 0}, 4);          /* MPROTECT */
    ctl(b, 7, (uint64_t[]){0, 0x500000}, 2);                     /* BRK */
    ctl(b, 8, (uint64_t[]){0x700000, 0x1000, 4, 0}, 4);          /* MADVISE */
    ctl(b, 11, (uint64_t[]){0x7fff1000, 1234}, 2);               /* KWRITE */
    ctl(b, 0, NULL, 0);                                          /* PAD */
    ctl(b, 9, (uint64_t[]){100, 101, 0x3d0f00}, 3);              /* CLONE: a thread */
    ctl(b, 1, (uint64_t[]){101}, 1);
    acc(b, 1, 8, 0x7fff1000);
    ctl(b, 10, (uint64_t[]){0, 0}, 2); /* EXIT (thread) */
    ctl(b, 1, (uint64_t[]){100}, 1);
    ctl_str(b, 13, (uint64_t[]){0x800000, 0x1000, 0x3000, 1, 0x900000, 3, 1, 0}, 8, "");
    ctl(b, 10, (uint64_t[]){(uint32_t)-1, 1}, 2); /* exit_group(-1) */
    ctl(b, 14, NULL, 0);                          /* END */
    end_chunk(b);
}

static void test_basic(void)
{
    static rawbuf b;
    memset(&b, 0, sizeof b);
    build_basic(&b);
    static decoded d;
    decode(b.w, b.n * 8, 0, false, &d);
    CHECK_EQ(d.status, VMS_OK);
    static const uint8_t want[] = {
        VMS_TEV_MAP,    VMS_TEV_MAP,      VMS_TEV_MAP,  VMS_TEV_ACCESS,  VMS_TEV_ACCESS,
        VMS_TEV_ACCESS, VMS_TEV_ACCESS,   VMS_TEV_MMAP, VMS_TEV_MMAP,    VMS_TEV_MMAP,
        VMS_TEV_MUNMAP, VMS_TEV_MPROTECT, VMS_TEV_BRK,  VMS_TEV_MADVISE, VMS_TEV_KWRITE,
        VMS_TEV_CLONE,  VMS_TEV_ACCESS,   VMS_TEV_EXIT, VMS_TEV_MMAP,    VMS_TEV_MUNMAP,
        VMS_TEV_EXIT};
    size_t nwant = sizeof want;
    CHECK_EQ(d.n, nwant);
    bool same = d.n == nwant;
    for (size_t i = 0; same && i < nwant; i++)
        same = d.ev[i].type == want[i];
    CHECK(same);
    if (!same || d.n != nwant) {
        dump(&d);
        return;
    }
    const vms_trace_event *e = d.ev;
    /* The image: r-x file segment with its path; the stack, its top populated. */
    CHECK_EQ(e[0].map.start, 0x400000);
    CHECK_EQ(e[0].map.prot, VMS_TPROT_READ | VMS_TPROT_EXEC);
    CHECK_STR(d.path[0], "/bin/prog");
    CHECK_EQ(e[0].tid, 100);
    CHECK_EQ(e[1].map.flags, VMS_TMAP_ANON | VMS_TMAP_GROWSDOWN);
    CHECK_STR(d.path[1], "[stack]");
    CHECK_EQ(e[2].map.flags, VMS_TMAP_ANON | VMS_TMAP_GROWSDOWN | VMS_TMAP_POPULATE);
    /* References: kinds, sizes, the sign-extended kernel address. */
    CHECK_EQ(e[3].access.kind, VMS_TACC_EXEC);
    CHECK_EQ(e[3].access.size, 4);
    CHECK_EQ(e[5].access.va, UINT64_C(0xffffffffff600000));
    CHECK_EQ(e[6].access.kind, VMS_TACC_MODIFY);
    /* mmap: anonymous, file-backed with path and offset, failed. */
    CHECK_EQ(e[7].mmap.flags, VMS_TMAP_ANON);
    CHECK_EQ(e[7].mmap.ret, 0x600000);
    CHECK_EQ(e[7].mmap.len, 0x5000);
    CHECK_EQ(e[8].mmap.flags, 0);
    CHECK_EQ(e[8].mmap.off, 0x2000);
    CHECK_STR(d.path[8], "/lib/x.so");
    CHECK_EQ(e[9].mmap.ret, VMS_TRACE_MAP_FAILED);
    CHECK_EQ(e[10].munmap.addr, 0x600000);
    CHECK_EQ(e[12].brk.ret, 0x500000);
    CHECK_EQ(e[13].madvise.advice, 4);
    CHECK_EQ(e[14].kwrite.len, 1234);
    /* The thread: CLONE_VM by tid 100, its store and exit as tid 101. */
    CHECK_EQ(e[15].clone.flags, VMS_TCLONE_VM);
    CHECK_EQ(e[15].clone.child, 101);
    CHECK_EQ(e[15].tid, 100);
    CHECK_EQ(e[16].tid, 101);
    CHECK_EQ(e[17].exit.group, 0);
    /* mremap moving 1 page to 3 pages at 0x900000: mmap there, munmap the old. */
    CHECK_EQ(e[18].mmap.ret, 0x900000);
    CHECK_EQ(e[18].mmap.len, 0x3000);
    CHECK_EQ(e[19].munmap.addr, 0x800000);
    CHECK_EQ(e[20].exit.status, -1);
    CHECK_EQ(e[20].exit.group, 1);
    CHECK_EQ(e[20].tid, 100);
    CHECK_EQ(d.st.accesses, 5);
    CHECK_EQ(d.st.threads, 1);
    CHECK_EQ(d.st.mremaps, 1);
    CHECK_EQ(d.st.unfinished, 0);
    CHECK_EQ(d.st.unclean, 0);

    /* The same stream fed 1, 3, 7 and 4096 bytes at a time gives the same events. */
    static const size_t steps[] = {1, 3, 7, 4096};
    for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
        static decoded d2;
        decode(b.w, b.n * 8, steps[s], false, &d2);
        CHECK_EQ(d2.status, VMS_OK);
        CHECK(d2.n == d.n && memcmp(d2.ev, d.ev, d.n * sizeof d.ev[0]) == 0);
    }
}

/* Fork or vfork, then exec: the child's CLONE is its parent's event (a vfork, or a
 * clone with CLONE_VM|CLONE_VFORK, is CLONE VM|VFORK); the exec is EXEC with the path
 * the child announced. */
static void fork_exec(uint64_t clone_flags, uint8_t want_flags)
{
    static rawbuf b;
    memset(&b, 0, sizeof b);
    chunk(&b, 10);
    ctl(&b, 2, (uint64_t[]){10, 1}, 2);
    acc(&b, 0, 8, 0x1000);
    end_chunk(&b);
    chunk(&b, 11); /* the child's first chunk */
    ctl(&b, 9, (uint64_t[]){10, 11, clone_flags}, 3);
    ctl(&b, 1, (uint64_t[]){11}, 1);
    acc(&b, 1, 8, 0x2000);
    ctl_str(&b, 12, NULL, 0, "/bin/echo");
    end_chunk(&b);
    chunk(&b, 11); /* the exec'd image */
    ctl(&b, 2, (uint64_t[]){11, 10}, 2);
    ctl_str(&b, 3, (uint64_t[]){0x400000, 0x401000, 0, 5, 0}, 5, "/bin/echo");
    ctl(&b, 1, (uint64_t[]){11}, 1);
    acc(&b, 2, 3, 0x400000);
    ctl(&b, 14, NULL, 0); /* END but no exit: an EXIT is added at the end */
    end_chunk(&b);
    chunk(&b, 10);
    ctl(&b, 10, (uint64_t[]){0, 1}, 2);
    ctl(&b, 14, NULL, 0);
    end_chunk(&b);
    static decoded d;
    decode(b.w, b.n * 8, 5, false, &d);
    CHECK_EQ(d.status, VMS_OK);
    REQUIRE_VOID(d.n == 8);
    CHECK_EQ(d.ev[1].type, VMS_TEV_CLONE);
    CHECK_EQ(d.ev[1].tid, 10);
    CHECK_EQ(d.ev[1].clone.child, 11);
    CHECK_EQ(d.ev[1].clone.flags, want_flags);
    CHECK_EQ(d.ev[2].tid, 11);
    CHECK_EQ(d.ev[3].type, VMS_TEV_EXEC);
    CHECK_EQ(d.ev[3].tid, 11);
    CHECK_STR(d.path[3], "/bin/echo");
    CHECK_EQ(d.ev[4].type, VMS_TEV_MAP);
    CHECK_STR(d.path[4], "/bin/echo");
    CHECK_EQ(d.ev[5].tid, 11);
    CHECK_EQ(d.ev[6].type, VMS_TEV_EXIT); /* the parent's exit_group */
    CHECK_EQ(d.ev[6].tid, 10);
    CHECK_EQ(d.ev[7].type, VMS_TEV_EXIT); /* added for the child */
    CHECK_EQ(d.ev[7].tid, 11);
    CHECK_EQ(d.st.processes, 2);
    CHECK_EQ(d.st.execs, 1);
    CHECK_EQ(d.st.unfinished, 1);
}

static void test_fork_exec(void)
{
    fork_exec(0x1200011, 0);                             /* glibc fork */
    fork_exec(0x4000, VMS_TCLONE_VM | VMS_TCLONE_VFORK); /* vfork(2) */
    fork_exec(0x4111, VMS_TCLONE_VM | VMS_TCLONE_VFORK); /* posix_spawn's clone */
}

/* Valgrind's preload library: its mappings, references and kernel writes are dropped
 * unless kept. */
static void test_preload(void)
{
    static rawbuf b;
    memset(&b, 0, sizeof b);
    chunk(&b, 5);
    ctl(&b, 2, (uint64_t[]){5, 1}, 2);
    const char *pre = "/usr/libexec/valgrind/vgpreload_core-amd64-linux.so";
    ctl_str(&b, 4, (uint64_t[]){0, 0x4010, 1, 0x802, 3, 0, 0x4837000}, 7, pre);
    ctl_str(&b, 4, (uint64_t[]){0x4838000, 0x1000, 5, 0x812, 3, 0x1000, 0x4838000}, 7, pre);
    ctl_str(&b, 4, (uint64_t[]){0x483b000, 0x1000, 3, 0x32, (uint64_t)-1, 0, 0x483b000}, 7, "");
    acc(&b, 1, 8, 0x483a000);
    ctl(&b, 6, (uint64_t[]){0x483a000, 0x1000, 1, 0}, 4);
    ctl(&b, 11, (uint64_t[]){0x483a010, 16}, 2);
    acc(&b, 1, 8, 0x5000000);
    end_chunk(&b);
    chunk(&b, 6); /* a forked child inherits the preload mapping: dropped there too */
    ctl(&b, 9, (uint64_t[]){5, 6, 0x1200011}, 3);
    acc(&b, 2, 4, 0x4838010);
    ctl(&b, 10, (uint64_t[]){0, 1}, 2);
    end_chunk(&b);
    chunk(&b, 5);
    ctl(&b, 10, (uint64_t[]){0, 1}, 2);
    end_chunk(&b);
    static decoded d;
    decode(b.w, b.n * 8, 0, false, &d);
    CHECK_EQ(d.status, VMS_OK);
    CHECK_EQ(d.n, 4); /* the reference at 0x5000000, the fork, two exits */
    CHECK_EQ(d.st.dropped, 7);
    CHECK_EQ(d.st.unclean, 2); /* no END records */
    decode(b.w, b.n * 8, 0, true, &d);
    CHECK_EQ(d.n, 11);
}

/* Malformed streams fail with the offset and what was expected. */
static void test_errors(void)
{
    static rawbuf b;
    static decoded d;
    memset(&b, 0, sizeof b);
    b.w[b.n++] = 0x1234;
    b.w[b.n++] = 0;
    decode(b.w, b.n * 8, 0, false, &d);
    CHECK_EQ(d.status, VMS_ERR_PARSE);
    CHECK(strstr(d.err.msg, "byte 0: expected a chunk header") != NULL);

    memset(&b, 0, sizeof b);
    chunk(&b, 1);
    acc(&b, 0, 8, 0x1000);
    ctl(&b, 1, (uint64_t[]){1}, 1);
    end_chunk(&b);
    decode(b.w, b.n * 8 - 4, 0, false, &d); /* cut inside the chunk */
    CHECK_EQ(d.status, VMS_ERR_PARSE);
    CHECK(strstr(d.err.msg, "ends inside a chunk") != NULL);

    b.w[1] = 1 | (UINT64_C(2) << 32); /* the TID record's argument is outside the chunk */
    decode(b.w, 4 * 8, 0, false, &d);
    CHECK_EQ(d.status, VMS_ERR_PARSE);
    CHECK(strstr(d.err.msg, "byte 24: control word") != NULL);

    memset(&b, 0, sizeof b);
    chunk(&b, 1);
    ctl(&b, 77, NULL, 0);
    end_chunk(&b);
    decode(b.w, b.n * 8, 0, false, &d);
    CHECK_EQ(d.status, VMS_ERR_PARSE);
    CHECK(strstr(d.err.msg, "unknown record type 77") != NULL);

    memset(&b, 0, sizeof b);
    chunk(&b, 1);
    ctl(&b, 5, (uint64_t[]){1, 2}, 2); /* MUNMAP needs 3 arguments */
    end_chunk(&b);
    decode(b.w, b.n * 8, 0, false, &d);
    CHECK_EQ(d.status, VMS_ERR_PARSE);

    memset(&b, 0, sizeof b);
    b.w[b.n++] = MAGIC;
    b.w[b.n++] = 1 | (UINT64_C(1) << 40); /* a chunk larger than the tool ever writes */
    decode(b.w, b.n * 8, 0, false, &d);
    CHECK_EQ(d.status, VMS_ERR_PARSE);
}

/* ---- part 2: recording real programs ----------------------------------------------- */

static char vmsim_path[4096], tmpdir[64];

/* Run a shell command; its exit status. */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static const char *g_argv0; /* for th_binary_dir */

/* Whether `vmsim record` can run here (the tool is built and valgrind works). */
static bool can_record(void)
{
    char bin[4000];
    th_binary_dir(g_argv0, bin, sizeof bin);
    snprintf(vmsim_path, sizeof vmsim_path, "%s/vmsim", bin);
    char tool[4200];
    snprintf(tool, sizeof tool, "%s/vgrecord/vgrecord-amd64-linux", bin);
    return access(vmsim_path, X_OK) == 0 && access(tool, X_OK) == 0 &&
           sh("valgrind --version >/dev/null 2>&1") == 0;
}

/* Counters over a recorded trace. */
typedef struct tally {
    uint64_t acc[4], n[VMS_TEV_NTYPES];
    bool text_rx;        /* a MAP of `exe` with r-x */
    uint64_t mmap_addr;  /* the 5-page anonymous mmap's result */
    bool munmap_match;   /* a munmap of exactly that range */
    bool kwrite_1234;    /* read(2) of 1234 bytes */
    uint32_t fork_child; /* CLONE without VM */
    bool child_exit3;    /* the child's exit_group(3) */
    bool thread_clone, thread_exit;
    uint32_t thread;
} tally;

static bool ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

static bool read_trace(const char *path, const char *exe, tally *t)
{
    memset(t, 0, sizeof *t);
    vms_trace_reader *r;
    vms_err err;
    if (vms_trace_reader_open(path, VMS_TRACE_NATIVE, NULL, &r, &err) != VMS_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return false;
    }
    vms_trace_event e;
    while (vms_trace_read(r, &e, &err)) {
        t->n[e.type]++;
        switch (e.type) {
        case VMS_TEV_ACCESS:
            t->acc[e.access.kind]++;
            break;
        case VMS_TEV_MAP: {
            const char *p = vms_trace_reader_path(r, e.map.path);
            if (p && ends_with(p, exe) && e.map.prot == (VMS_TPROT_READ | VMS_TPROT_EXEC))
                t->text_rx = true;
            break;
        }
        case VMS_TEV_MMAP:
            if (e.mmap.len == 0x5000 && (e.mmap.flags & VMS_TMAP_ANON))
                t->mmap_addr = e.mmap.ret;
            break;
        case VMS_TEV_MUNMAP:
            t->munmap_match |= e.munmap.addr == t->mmap_addr && e.munmap.len == 0x5000;
            break;
        case VMS_TEV_KWRITE:
            t->kwrite_1234 |= e.kwrite.len == 1234;
            break;
        case VMS_TEV_CLONE:
            if (e.clone.flags & VMS_TCLONE_VM) {
                t->thread_clone = true;
                t->thread = e.clone.child;
            } else {
                t->fork_child = e.clone.child;
            }
            break;
        case VMS_TEV_EXIT:
            t->child_exit3 |= e.tid == t->fork_child && e.exit.status == 3 && e.exit.group;
            t->thread_exit |= e.tid == t->thread && !e.exit.group;
            break;
        default:
            break;
        }
    }
    vms_trace_reader_close(r);
    return err.status == VMS_OK;
}

static const char prog_c[] =
    "#include <fcntl.h>\n#include <pthread.h>\n#include <stdlib.h>\n#include <sys/mman.h>\n"
    "#include <sys/wait.h>\n#include <unistd.h>\n"
    "static void *worker(void *a) { *(volatile char *)a = 1; return NULL; }\n"
    "int main(int argc, char **argv) {\n"
    "  char *p = mmap(NULL, 5 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,"
    " -1, 0);\n"
    "  for (int i = 0; i < 5; i++) p[i * 4096] = 1;\n"
    "  munmap(p, 5 * 4096);\n"
    "  static char buf[1234];\n"
    "  int fd = open(argv[1], O_RDONLY);\n"
    "  if (fd < 0 || read(fd, buf, sizeof buf) != sizeof buf) return 2;\n"
    "  close(fd);\n"
    "  pid_t c = fork();\n"
    "  if (c == 0) { char *q = malloc(100000); q[0] = 1; _exit(3); }\n"
    "  waitpid(c, NULL, 0);\n"
    "  pthread_t t; char x[8];\n"
    "  pthread_create(&t, NULL, worker, x);\n"
    "  pthread_join(t, NULL);\n"
    "  return 0;\n}\n";

static void test_record_true(void)
{
    tally t;
    char path[128];
    snprintf(path, sizeof path, "%s/true.vmt", tmpdir);
    /* Kept: lackey counts the references to Valgrind's preload library too. */
    CHECK_EQ(sh("%s record -q --keep-valgrind -o %s /bin/true", vmsim_path, path), 0);
    REQUIRE_VOID(read_trace(path, "/true", &t));
    CHECK(t.text_rx);
    CHECK(t.n[VMS_TEV_MMAP] >= 4); /* libc */
    CHECK_EQ(t.n[VMS_TEV_EXIT], 1);
    CHECK(t.acc[VMS_TACC_EXEC] > 50000);
    /* Lackey sees the same references: within 1% for each kind. */
    if (sh("valgrind --tool=lackey --trace-mem=yes --log-file=%s/lk.txt /bin/true", tmpdir) != 0) {
        CHECK(false);
        return;
    }
    snprintf(path, sizeof path, "%s/lk.txt", tmpdir);
    FILE *f = fopen(path, "r");
    REQUIRE_VOID(f != NULL);
    uint64_t lk[4] = {0};
    char line[256];
    while (fgets(line, sizeof line, f)) {
        if (line[0] == 'I')
            lk[VMS_TACC_EXEC]++;
        else if (line[0] == ' ' && line[1] == 'L')
            lk[VMS_TACC_READ]++;
        else if (line[0] == ' ' && line[1] == 'S')
            lk[VMS_TACC_WRITE]++;
        else if (line[0] == ' ' && line[1] == 'M')
            lk[VMS_TACC_MODIFY]++;
    }
    fclose(f);
    for (int k = 0; k < 4; k++) {
        double diff = (double)t.acc[k] - (double)lk[k];
        if (!(lk[k] > 0 && (diff < 0 ? -diff : diff) <= 0.01 * (double)lk[k])) {
            fprintf(stderr, "kind %d: vgrecord %" PRIu64 ", lackey %" PRIu64 "\n", k, t.acc[k],
                    lk[k]);
            CHECK(false);
        } else {
            CHECK(true);
        }
    }
}

static void test_record_prog(void)
{
    REQUIRE_VOID(sh("head -c 5000 /dev/zero > %s/data", tmpdir) == 0);
    char src[128];
    snprintf(src, sizeof src, "%s/prog.c", tmpdir);
    FILE *f = fopen(src, "w");
    REQUIRE_VOID(f != NULL);
    fputs(prog_c, f);
    fclose(f);
    REQUIRE_VOID(sh("cc -O1 -pthread -o %s/prog %s/prog.c", tmpdir, tmpdir) == 0);
    CHECK_EQ(sh("%s record -q -o %s/prog.vmt %s/prog %s/data", vmsim_path, tmpdir, tmpdir, tmpdir),
             0);
    char path[128];
    snprintf(path, sizeof path, "%s/prog.vmt", tmpdir);
    tally t;
    REQUIRE_VOID(read_trace(path, "/prog", &t));
    CHECK(t.text_rx);
    CHECK(t.mmap_addr != 0 && t.mmap_addr != VMS_TRACE_MAP_FAILED);
    CHECK(t.munmap_match);
    CHECK(t.kwrite_1234);
    CHECK(t.fork_child != 0);
    CHECK(t.child_exit3);
    CHECK(t.thread_clone);
    CHECK(t.thread_exit);
    CHECK_EQ(t.n[VMS_TEV_EXIT], 3); /* child, thread, main */
}

int main(int argc, char **argv)
{
    g_argv0 = argv[0];
    th_init(argc, argv, "record");
    test_basic();
    test_fork_exec();
    test_preload();
    test_errors();
    if (can_record()) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/vmsim-test-rec-XXXXXX");
        REQUIRE(mkdtemp(tmpdir) != NULL);
        test_record_true();
        test_record_prog();
        sh("rm -rf %s", tmpdir);
    } else {
        printf("record: vgrecord or valgrind missing: recording checks skipped\n");
    }
    return th_finish();
}
