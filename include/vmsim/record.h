/*
 * vmsim/record.h — recording real programs (docs/RECORD.md).
 *
 * `vmsim record` runs a program under Valgrind with vgrecord (tools/vgrecord/, a GPL
 * Valgrind tool built and run as a separate program; vmsim never links it). The tool
 * writes a raw stream of 64-bit words; a vms_vgraw decoder turns that stream into
 * native trace events (vmsim/trace.h) and hands them to a trace writer:
 *
 *   valgrind --tool=vgrecord ──raw stream (FIFO)──► vms_vgraw ──events──► trace writer
 *
 * The decoder is push-style: feed it bytes as they arrive, cut anywhere. Memory stays
 * bounded whatever the length: one chunk (at most 1 MiB) plus a few bytes per process.
 */
#ifndef VMSIM_RECORD_H
#define VMSIM_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmsim/common.h"
#include "vmsim/trace.h"

/* Decoder options; a NULL pointer means all defaults (false). */
typedef struct vms_vgraw_opts {
    bool keep_valgrind; /* keep Valgrind's own preload library (vgpreload_*.so), which the
                           native program does not have: its mappings, references into it
                           and the kernel's writes into it are dropped by default */
} vms_vgraw_opts;

/* What the decoder saw and wrote. */
typedef struct vms_vgraw_stats {
    uint64_t bytes;        /* raw bytes fed */
    uint64_t chunks;       /* chunks decoded */
    uint64_t events;       /* events written */
    uint64_t accesses;     /* ACCESS events written */
    uint64_t kwrites;      /* KWRITE events written */
    uint64_t kwrite_bytes; /* their total length */
    uint64_t processes;    /* processes seen (the first one, forks, exec'd images) */
    uint64_t threads;      /* threads created with CLONE_VM */
    uint64_t execs;        /* successful execs (the new image was traced) */
    uint64_t dropped;      /* records dropped: Valgrind's own preload library */
    uint64_t mremaps;      /* mremap calls, written as mmap + munmap (docs/RECORD.md) */
    uint64_t unfinished;   /* processes with no exit_group/exit: an EXIT was added */
    uint64_t unclean;      /* tool instances that did not finish (killed, crashed) */
} vms_vgraw_stats;

typedef struct vms_vgraw vms_vgraw;

/*
 * Create a decoder writing to w (borrowed: it must outlive the decoder; the caller
 * closes it). Allocations go through a (NULL: the default allocator). On failure *out is
 * NULL and err says why.
 */
vms_status vms_vgraw_create(vms_trace_writer *w, const vms_vgraw_opts *opts, const vms_allocator *a,
                            vms_vgraw **out, vms_err *err);

/*
 * Decode len more bytes of the raw stream. VMS_ERR_PARSE for a malformed stream (the
 * message names the byte offset and what was expected); writer failures are returned as
 * they are. A failed decoder stays failed.
 */
vms_status vms_vgraw_feed(vms_vgraw *d, const void *data, size_t len, vms_err *err);

/*
 * The stream has ended: fails (VMS_ERR_PARSE) if it stops inside a chunk; otherwise
 * writes an EXIT (group) for every process still running at the end (counted as
 * `unfinished`).
 */
vms_status vms_vgraw_finish(vms_vgraw *d, vms_err *err);

/* The counters so far. */
const vms_vgraw_stats *vms_vgraw_get_stats(const vms_vgraw *d);

/* Free the decoder (not the writer); d may be NULL. */
void vms_vgraw_destroy(vms_vgraw *d);

#endif
