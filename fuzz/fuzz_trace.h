/*
 * fuzz_trace.h — the body shared by the trace parsers' fuzz targets (fuzz_<parser>.c).
 *
 * One input is read to its end through the public reader with a fixed format; the
 * target checks what the library promises on any input: no crash, no hang, no leak (ASan),
 * every event well-formed, and every failure a parse/unsupported status whose message
 * names the input and a line ("fuzz:12: …") or a byte offset ("… byte N …").
 * What parses is also replayed, with small limits, on a small machine (16 MiB, 2 cores,
 * 4 MiB swap), the first 20,000 events: the replay must return VMS_OK or a host
 * VMS_ERR_NOMEM, and the kernel's invariants must hold after it. Limits that keep each
 * input cheap: accesses and kernel writes over 64 KiB, populate and madvise over 16 MiB
 * are not replayed (issue 16.3: a long access restarts at its first page after every
 * fault; the fuzzer found a KWRITE that takes minutes), and paths that do not name a regular host
 * file are replayed as anonymous memory (issue 16.4: a directory's size). Written-back pages go to
 * a private temporary directory, never next to the files the input names. The input is then
 * read once more with batch reads mixed in (fuzz_batch_check), which must return the same
 * accesses, count and failure. Violations abort, which libFuzzer and the corpus replay
 * (replay.c) both report.
 */
#ifndef VMSIM_FUZZ_TRACE_H
#define VMSIM_FUZZ_TRACE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vmsim/config.h"
#include "vmsim/replay.h"
#include "vmsim/trace.h"

char *mkdtemp(char *tmpl); /* POSIX; the targets build with -std=c11 */

/* A replay of what the reader returns, on a fresh small machine (NULL parts on failure). */
typedef struct fuzz_replay {
    vms_machine *m;
    vms_kernel *k;
    vms_replay *rp;
    unsigned long events;
} fuzz_replay;

static inline void fuzz_replay_start(fuzz_replay *f)
{
    static char wb[] = "/tmp/vmsim-fuzz-XXXXXX";
    static int made;
    if (!made)
        made = mkdtemp(wb) != NULL ? 1 : -1;
    vms_config cfg;
    vms_err err = {0};
    memset(f, 0, sizeof *f);
    vms_config_init(&cfg, "skylake", &err);
    cfg.machine.ram_bytes = UINT64_C(16) << 20;
    cfg.machine.ncores = 2;
    cfg.kernel.swap_bytes = UINT64_C(4) << 20;
    vms_kernel_config kc = vms_config_kernel(&cfg);
    kc.writeback_dir = made > 0 ? wb : "/nonexistent-vmsim-fuzz";
    if (vms_machine_create(NULL, &cfg.machine, &f->m, &err) != VMS_OK ||
        vms_kernel_create(f->m, &kc, &f->k, &err) != VMS_OK) {
        vms_machine_destroy(f->m);
        f->m = NULL;
    }
}

/* The path of a MAP/MMAP/EXEC event if it names a regular host file, else NULL. */
static inline const char *fuzz_path(vms_trace_reader *r, const vms_trace_event *ev)
{
    uint32_t id = ev->type == VMS_TEV_MAP    ? ev->map.path
                  : ev->type == VMS_TEV_MMAP ? ev->mmap.path
                  : ev->type == VMS_TEV_EXEC ? ev->exec.path
                                             : 0;
    const char *p = id ? vms_trace_reader_path(r, id) : NULL;
    struct stat st;
    return p && stat(p, &st) == 0 && S_ISREG(st.st_mode) ? p : NULL;
}

/* Events beyond the limits above: long accesses and kernel writes, and populating or
 * advising ranges over 16 MiB (the machine's RAM). */
static inline int fuzz_too_big(const vms_trace_event *ev)
{
    const uint64_t big = UINT64_C(16) << 20;
    switch (ev->type) {
    case VMS_TEV_ACCESS:
        return ev->access.size > 65536;
    case VMS_TEV_KWRITE:
        return ev->kwrite.len > 65536;
    case VMS_TEV_MADVISE:
        return ev->madvise.len > big;
    case VMS_TEV_MMAP:
        return (ev->mmap.flags & 0x08) && ev->mmap.len > big; /* POPULATE */
    case VMS_TEV_MAP:
        return (ev->map.flags & 0x08) && ev->map.end - ev->map.start > big;
    default:
        return 0;
    }
}

/* Replay one event (within the limits above); abort on a broken promise. */
static inline void fuzz_replay_event(fuzz_replay *f, vms_trace_reader *r, vms_trace_event *ev)
{
    vms_err err = {0};
    if (!f->k || f->events++ >= 20000)
        return;
    if (!f->rp) { /* the layout vms_replay_run would choose */
        vms_replay_opts o = {.layout = ev->type == VMS_TEV_ACCESS ? VMS_REPLAY_LAYOUT_AUTO
                                                                  : VMS_REPLAY_LAYOUT_RECORDED};
        if (vms_replay_create(f->k, &o, &f->rp, &err) != VMS_OK)
            return;
    }
    if (fuzz_too_big(ev))
        return;
    vms_status st = vms_replay_event(f->rp, ev, fuzz_path(r, ev), &err);
    if (st != VMS_OK && st != VMS_ERR_NOMEM) {
        fprintf(stderr, "fuzz: replay failed: %s\n", err.msg);
        abort();
    }
}

static inline void fuzz_replay_end(fuzz_replay *f)
{
    vms_err err = {0};
    if (f->rp) {
        vms_status st = vms_replay_flush(f->rp, &err);
        if (st != VMS_OK && st != VMS_ERR_NOMEM) {
            fprintf(stderr, "fuzz: replay flush failed: %s\n", err.msg);
            abort();
        }
        if (vms_kernel_check(f->k, &err) != VMS_OK) {
            fprintf(stderr, "fuzz: kernel invariant after replay: %s\n", err.msg);
            abort();
        }
    }
    vms_replay_destroy(f->rp);
    vms_kernel_destroy(f->k);
    vms_machine_destroy(f->m);
}

/* Whether msg names the input and a line or a byte offset. */
static inline int fuzz_msg_ok(const char *msg)
{
    unsigned long line;
    char c;
    if (strncmp(msg, "fuzz", 4) != 0)
        return 0;
    if (sscanf(msg, "fuzz:%lu%c", &line, &c) == 2 && c == ':')
        return 1;
    return strstr(msg, "byte ") != NULL;
}

/* What the batch comparison keeps of an event read one by one. */
typedef struct fuzz_ev {
    uint64_t va; /* access.va */
    uint32_t tid, size;
    uint8_t type, kind;
} fuzz_ev;

#define FUZZ_MAX_EVENTS 200000u /* inputs with more events skip the batch comparison */

static inline fuzz_ev fuzz_ev_of(const vms_trace_event *ev)
{
    fuzz_ev e = {0, ev->tid, 0, ev->type, 0};
    if (ev->type == VMS_TEV_ACCESS) {
        e.va = ev->access.va;
        e.size = ev->access.size;
        e.kind = ev->access.kind;
    }
    return e;
}

static inline void fuzz_batch_fail(const char *what, size_t i)
{
    fprintf(stderr, "fuzz: batch read differs from vms_trace_read at event %zu: %s\n", i, what);
    abort();
}

/*
 * The batch decoder against the event reader: read the input again, mixing
 * vms_trace_read_refs (for the next event's thread, now and then another one, runs of
 * 1..64) with vms_trace_read, in an order drawn from the input's size. Every reference a
 * batch returns must be the next plain access of that thread that the first reading
 * returned (va, len, kind), the reader's count must follow, and the second reading must
 * end after the same events with the same status and message.
 */
static inline void fuzz_batch_check(const unsigned char *data, size_t size, vms_trace_format fmt,
                                    const fuzz_ev *evs, size_t nev, const vms_err *want)
{
    vms_trace_reader *r;
    vms_err err = {0};
    if (vms_trace_reader_open_mem(data, size, "fuzz", fmt, NULL, &r, &err) != VMS_OK)
        fuzz_batch_fail("the second open failed", 0);
    uint32_t x = (uint32_t)size * 2654435761u + 1u;
    size_t i = 0;
    vms_ref refs[64];
    vms_trace_event ev;
    for (;;) {
        x = x * 1103515245u + 12345u;
        if (i < nev && (x >> 16) % 4 != 0) {
            uint32_t tid = (x >> 20) % 8 == 0 ? evs[i].tid + 1 : evs[i].tid;
            size_t n = vms_trace_read_refs(r, tid, refs, 1 + (x >> 24) % 64);
            for (size_t j = 0; j < n; j++, i++) {
                if (i >= nev || evs[i].type != VMS_TEV_ACCESS || evs[i].kind == VMS_TACC_MODIFY ||
                    evs[i].tid != tid)
                    fuzz_batch_fail("a reference where there is no plain access of its thread", i);
                if (evs[i].va != refs[j].va || evs[i].size != refs[j].len ||
                    evs[i].kind != refs[j].kind)
                    fuzz_batch_fail("another va, len or kind", i);
            }
            if (vms_trace_reader_count(r) != i)
                fuzz_batch_fail("the reader's count", i);
            if (n)
                continue;
        }
        if (!vms_trace_read(r, &ev, &err))
            break;
        fuzz_ev e = fuzz_ev_of(&ev);
        if (i >= nev || e.type != evs[i].type || e.tid != evs[i].tid || e.va != evs[i].va ||
            e.size != evs[i].size || e.kind != evs[i].kind)
            fuzz_batch_fail("another event", i);
        i++;
    }
    if (i != nev)
        fuzz_batch_fail("the reading ends after another number of events", i);
    if (err.status != want->status || strcmp(err.msg, want->msg) != 0) {
        fprintf(stderr,
                "fuzz: batch reading fails with \"%s\" where the event reader says \"%s\"\n",
                err.msg, want->msg);
        abort();
    }
    vms_trace_reader_close(r);
}

static inline int fuzz_trace_one(const unsigned char *data, size_t size, vms_trace_format fmt)
{
    vms_trace_reader *r;
    vms_err err = {0};
    if (vms_trace_reader_open_mem(data, size, "fuzz", fmt, NULL, &r, &err) == VMS_OK) {
        fuzz_replay fr;
        fuzz_replay_start(&fr);
        vms_trace_event ev;
        size_t nev = 0;
        fuzz_ev *evs = malloc(FUZZ_MAX_EVENTS * sizeof *evs);
        while (vms_trace_read(r, &ev, &err)) {
            if (evs && nev < FUZZ_MAX_EVENTS)
                evs[nev] = fuzz_ev_of(&ev);
            nev++;
            if (ev.type >= VMS_TEV_NTYPES ||
                (ev.type == VMS_TEV_ACCESS && (ev.access.size == 0 || ev.access.kind > 3))) {
                fprintf(stderr, "fuzz: bad event type %u\n", ev.type);
                abort();
            }
            if (ev.type == VMS_TEV_MAP && ev.map.path && !vms_trace_reader_path(r, ev.map.path))
                abort();
            fuzz_replay_event(&fr, r, &ev);
        }
        fuzz_replay_end(&fr);
        vms_trace_reader_close(r);
        if (evs && nev <= FUZZ_MAX_EVENTS)
            fuzz_batch_check(data, size, fmt, evs, nev, &err);
        free(evs);
    }
    if (err.status != VMS_OK &&
        ((err.status != VMS_ERR_PARSE && err.status != VMS_ERR_UNSUPPORTED) ||
         !fuzz_msg_ok(err.msg))) {
        fprintf(stderr, "fuzz: bad failure report: status %d, \"%s\"\n", (int)err.status, err.msg);
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

#endif
