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
 * a private temporary directory, never next to the files the input names. Violations abort, which
 * libFuzzer and the corpus replay (replay.c) both report.
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

static inline int fuzz_trace_one(const unsigned char *data, size_t size, vms_trace_format fmt)
{
    vms_trace_reader *r;
    vms_err err = {0};
    if (vms_trace_reader_open_mem(data, size, "fuzz", fmt, NULL, &r, &err) == VMS_OK) {
        fuzz_replay fr;
        fuzz_replay_start(&fr);
        vms_trace_event ev;
        while (vms_trace_read(r, &ev, &err)) {
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
