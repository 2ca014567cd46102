/*
 * batch.h — the internal entry points of the replay's batch path from file to MMU,
 * across modules (not public): the trace reader's batch read that also sums what it
 * decoded (reader.c), and the kernel's batch of references that are valid by
 * construction (proc.c). The public forms (vms_trace_read_refs, vms_proc_access_batch)
 * are these plus a pass over the references, which the replay does not need: the reader
 * counts while it decodes, and its references (and the replay's own pushes, checked one
 * by one) always have a length of at least 1 and a kind of read, write or fetch.
 */
#ifndef VMSIM_REPLAY_BATCH_H
#define VMSIM_REPLAY_BATCH_H

#include "vmsim/proc.h"
#include "vmsim/trace.h"

/* What a batch read decoded: the references' bytes, and how many of each vms_access_kind. */
typedef struct vmsi_ref_sums {
    uint64_t bytes;
    uint64_t by_kind[3];
} vmsi_ref_sums;

/* vms_trace_read_refs, adding the bytes and kinds of the references it returns to *sum. */
size_t vmsi_trace_read_refs_sum(vms_trace_reader *r, uint32_t tid, vms_ref *refs, size_t max,
                                vmsi_ref_sums *sum);

/* vms_proc_access_batch for references known valid (every len >= 1, every kind <=
 * VMS_ACC_EXEC: not checked) and a task t that is not NULL. */
vms_status vmsi_proc_access_refs(vms_kernel *k, vms_task *t, const vms_ref *refs, size_t n,
                                 size_t *done, vms_access_info *info, vms_err *err);

#endif
