/*
 * oracle.h — OPT's next-use oracle for trace replay (replay.h: vms_replay_oracle), and
 * the address-space tracker that the oracle's pre-pass and the replay share.
 *
 * Pages are named by (address space, virtual page). Address spaces are numbered by a
 * tracker that follows the trace's threads exactly as the replay turns them into tasks
 * (replay.c: task_of, on_clone, on_exec, on_exit): the first thread of a new process
 * gets a new space, a thread or a vfork child shares its parent's, a fork child gets a
 * new one, an exec gives its process a new one. Both the pre-pass and the replay run
 * a tracker over the same events, so their numbers agree by construction.
 *
 * The oracle is built in three passes over bounded memory:
 *  1. forward over the trace: one record (space, page, event index) per page each
 *     ACCESS event touches, appended to an anonymous spill file (tmpfile: no name on
 *     disk, gone when closed);
 *  2. backward over that file in chunks: each record's next use (the event index of the
 *     next record for the same page, or never) into a second spill file, with a map of
 *     the distinct pages (host memory follows the pages the trace touches);
 *  3. during the replay, forward in step with the replay's position: the map holds, for
 *     every page, its next use at or after the reference executing now.
 */
#ifndef VMSIM_REPLAY_ORACLE_H
#define VMSIM_REPLAY_ORACLE_H

#include "util/util.h"
#include "vmsim/replay.h"

/* One traced thread: its process (an index into vmsi_tracker.procs ids). */
typedef struct vmsi_ttid {
    uint32_t tid;
    uint32_t proc;
} vmsi_ttid;

typedef struct vmsi_tproc {
    uint32_t id, space;
    uint32_t nthreads;
} vmsi_tproc;

typedef struct vmsi_tracker {
    const vms_allocator *a;
    vmsi_ttid *tids;
    size_t ntids, captids;
    vmsi_tproc *procs;
    size_t nprocs, capprocs;
    uint32_t next_proc, next_space;
    uint32_t root; /* the root process's id (0: none alive) */
} vmsi_tracker;

void vmsi_tracker_init(vmsi_tracker *t, const vms_allocator *a);
void vmsi_tracker_free(vmsi_tracker *t);

/* Follow one event (before the replay runs it). VMS_ERR_NOMEM on host failure. */
vms_status vmsi_tracker_event(vmsi_tracker *t, const vms_trace_event *ev, vms_err *err);

/* The address space of thread tid (0 when unknown). */
uint32_t vmsi_tracker_space(const vmsi_tracker *t, uint32_t tid);

/* The next use at or after event index `at` of page vpn of address space `space`
 * (UINT64_MAX: never). `at` must not decrease from one call to the next. */
uint64_t vmsi_oracle_next(vms_replay_oracle *o, uint32_t space, uint64_t vpn, uint64_t at);

/* Build with `chunk` records per backward-pass chunk (tests use tiny ones). */
vms_status vmsi_oracle_build_chunked(vms_trace_reader *rd, const vms_allocator *a, size_t chunk,
                                     vms_replay_oracle **out, vms_err *err);

#endif
