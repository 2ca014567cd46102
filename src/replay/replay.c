/*
 * replay.c — trace replay (replay.h, docs/REPLAY.md): trace events in, system calls and
 * address-only user accesses out, through the same kernel and MMU as every other
 * workload (DESIGN.md principle 7: two speeds, one model).
 *
 * Threads. tasks[] maps each trace tid to its vms_task and process id. The first tid
 * spawns the root process; CLONE events fork, vfork (VM|VFORK: a new process in its
 * parent's address space) or add threads (VM); EXEC gives the thread's process a fresh
 * address space (its other tids end), which the MAP events after it fill (traces
 * before native 1.1 write an exec as munmap of all user space instead, which is replayed
 * as written); a tid that no CLONE made
 * becomes a thread of the root process (counted: unknown_tids). The n-th task created
 * (0-based) runs on core n mod ncores. EXIT removes a tid (with `group`, every tid of
 * its process).
 *
 * References. Consecutive references of one task are buffered (up to BATCH accesses,
 * MODIFY as a read then a write) and run together: through vms_proc_access_batch (the
 * fast path), or one by one through vms_proc_access (opts.slow). Both give the same
 * model, and the bookkeeping here is shared: per access, an outcome of OK, a fatal
 * signal (segv) or a dead task (dead_refs). Any other event, another task, a tick or
 * the end runs the buffer first, so events keep their trace order. Once a task's first
 * reference is buffered, the rest of its run comes straight from the reader into the
 * buffer (vms_trace_read_refs: no event struct, no call per reference); whatever the
 * batch read stops at — a kernel event, a modify, another thread — comes through
 * vms_trace_read and vms_replay_event, in order.
 *
 * Recorded layout. Addresses are honoured: MAP and MMAP map MAP_FIXED at the recorded
 * address (the address mmap returned), so the simulated address space is the recorded
 * one. brk is replayed as the change of the break — growing maps the new pages as fixed
 * anonymous memory, shrinking unmaps them — because the simulated process's own heap
 * starts elsewhere; the first break comes from the first BRK's result (glibc's brk(0))
 * or the end of a "[heap]" segment.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/util.h"
#include "vmsim/core.h"
#include "vmsim/mman.h"
#include "vmsim/policy.h"
#include "vmsim/proc.h"
#include "vmsim/replay.h"
#include "vmsim/swap.h"
#include "replay/batch.h"
#include "replay/oracle.h"

/* Accesses buffered before running them as one batch (64 KiB of vms_ref). */
#define BATCH 4096

/* A trace thread: its task and process. */
typedef struct rtask {
    uint32_t tid;
    int pid;
    vms_task *t;
} rtask;

/* A process's replay state: the recorded program break (0: not known yet). */
typedef struct rproc {
    int pid;
    uint64_t brk;
} rproc;

struct vms_replay {
    vms_kernel *k;
    const vms_allocator *a;
    vms_replay_opts o;
    vms_replay_stats st;
    rtask *tasks;
    size_t ntasks, captasks;
    rproc *procs;
    size_t nprocs, capprocs;
    size_t last;        /* index of the last task found, a one-entry cache */
    int root_pid;       /* the first process (0: none alive) */
    unsigned created;   /* tasks created, for core placement */
    vms_task *cur;      /* the task of the buffered references */
    uint32_t cur_tid;   /* its trace thread */
    uint64_t next_tick; /* references count of the next tick (UINT64_MAX: none) */
    /* breakdowns (vms_replay_by_process, _by_region) */
    vms_replay_part *byproc, *byregion;
    size_t nbyproc, capbyproc, nbyregion, capbyregion;
    bool parts_nomem; /* a breakdown part could not be allocated: the run fails */
    /* OPT (opts.oracle): the tracker numbering address spaces as the oracle did, and the
     * event index of the access executing now (each access runs as it is pushed, so the
     * buffer is empty between events and run_refs never takes one) */
    vmsi_tracker trk;
    uint64_t exec_pos;
    vms_replay **slot;  /* the kernel's next-use slot (vms_replay_next_use) this fills */
    size_t last_region; /* a one-entry cache into byregion */
    struct snap {
        uint64_t l1i, l1d, l2, walks, faults, major;
    } mark; /* the totals when the last part was charged */
    size_t nbuf;
    vms_ref buf[BATCH];
};

/* ---- names ----------------------------------------------------------------------------- */

static const char *const layout_names[] = {"default", "auto", "recorded"};

const char *vms_replay_layout_name(vms_replay_layout l)
{
    return (unsigned)l < 3 ? layout_names[l] : "?";
}

vms_status vms_replay_layout_parse(const char *name, vms_replay_layout *out, vms_err *err)
{
    for (unsigned i = 0; i < 3; i++) {
        if (strcmp(name, layout_names[i]) == 0) {
            *out = (vms_replay_layout)i;
            return VMS_OK;
        }
    }
    return vmsi_err(err, VMS_ERR_NOTFOUND, "unknown layout '%s': expected auto or recorded", name);
}

/* ---- warnings -------------------------------------------------------------------------- */

static void warn(vms_replay *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Report a simulated oddity through the log callback: "event N: …". */
static void warn(vms_replay *r, const char *fmt, ...)
{
    if (!r->o.log)
        return;
    char msg[512];
    int n = snprintf(msg, sizeof msg, "replay: event %" PRIu64 ": ", r->st.events);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    va_end(ap);
    r->o.log(r->o.ud, VMS_LOG_WARNING, msg);
}

/* ---- life cycle ------------------------------------------------------------------------ */

vms_status vms_replay_create(vms_kernel *k, const vms_replay_opts *opts, vms_replay **out,
                             vms_err *err)
{
    *out = NULL;
    /* OPT asking this replay for next uses needs the replay's future: without an oracle
     * every answer would be "never" and OPT would evict the page just faulted in. */
    const vms_kernel_config *kc = vms_kernel_get_config(k);
    const vms_page_policy *pol = vms_page_policy_find(vms_kernel_policy_name(k));
    bool asks = kc->next_use == vms_replay_next_use && kc->next_use_ud;
    if (asks && pol && (pol->flags & VMS_PPOL_NEEDS_FUTURE) && !(opts && opts->oracle))
        return vmsi_err(err, VMS_ERR_INVAL,
                        "replay: policy '%s' needs the future: the kernel asks the replay "
                        "(vms_replay_next_use) but vms_replay_opts.oracle is NULL (build one "
                        "over the same trace with vms_replay_oracle_build)",
                        pol->name);
    const vms_allocator *a = vms_machine_allocator(vms_kernel_machine(k));
    vms_replay *r = vmsi_zalloc(a, sizeof *r);
    if (!r)
        return vmsi_err(err, VMS_ERR_NOMEM, "replay: out of host memory");
    r->k = k;
    r->a = a;
    if (opts)
        r->o = *opts;
    /* kernel.pagecache = auto: warm for a recorded layout (what docs/FIDELITY.md measures
     * against: Linux after a first run), cold for auto; a default layout decides at its
     * first event (vms_replay_run). */
    if (r->o.layout != VMS_REPLAY_LAYOUT_DEFAULT)
        vms_kernel_pagecache_auto(
            k, r->o.layout == VMS_REPLAY_LAYOUT_RECORDED ? VMS_PAGECACHE_WARM : VMS_PAGECACHE_COLD);
    r->next_tick = r->o.interval ? r->o.interval : UINT64_MAX;
    vmsi_tracker_init(&r->trk, a);
    if (asks) /* the slot vms_replay_next_use reads: this replay, until destroyed */
        r->slot = kc->next_use_ud;
    if (r->slot)
        *r->slot = r;
    *out = r;
    return VMS_OK;
}

void vms_replay_destroy(vms_replay *r)
{
    if (!r)
        return;
    if (r->slot && *r->slot == r)
        *r->slot = NULL;
    vmsi_free(r->a, r->tasks, r->captasks * sizeof *r->tasks);
    vmsi_free(r->a, r->procs, r->capprocs * sizeof *r->procs);
    vmsi_free(r->a, r->byproc, r->capbyproc * sizeof *r->byproc);
    vmsi_free(r->a, r->byregion, r->capbyregion * sizeof *r->byregion);
    vmsi_tracker_free(&r->trk);
    vmsi_free(r->a, r, sizeof *r);
}

vms_replay_layout vms_replay_get_layout(const vms_replay *r)
{
    return r->o.layout;
}

const vms_replay_stats *vms_replay_get_stats(const vms_replay *r)
{
    return &r->st;
}

uint64_t vms_replay_position(const vms_replay *r)
{
    return r->o.oracle ? r->exec_pos : r->st.references;
}

uint64_t vms_replay_next_use(void *slot, int pid, uint64_t va)
{
    vms_replay *r = slot ? *(vms_replay **)slot : NULL;
    if (!r || !r->o.oracle)
        return UINT64_MAX;
    for (size_t i = 0; i < r->ntasks; i++)
        if (r->tasks[i].pid == pid) {
            uint32_t space = vmsi_tracker_space(&r->trk, r->tasks[i].tid);
            return vmsi_oracle_next(r->o.oracle, space, va >> VMS_PAGE_SHIFT, r->exec_pos);
        }
    return UINT64_MAX;
}

/* ---- threads and processes ------------------------------------------------------------- */

/* The entry of tid, or NULL. */
static rtask *find_tid(vms_replay *r, uint32_t tid)
{
    if (r->last < r->ntasks && r->tasks[r->last].tid == tid)
        return &r->tasks[r->last];
    for (size_t i = 0; i < r->ntasks; i++) {
        if (r->tasks[i].tid == tid) {
            r->last = i;
            return &r->tasks[i];
        }
    }
    return NULL;
}

static rproc *find_proc(vms_replay *r, int pid)
{
    for (size_t i = 0; i < r->nprocs; i++)
        if (r->procs[i].pid == pid)
            return &r->procs[i];
    return NULL;
}

/* Record task t as trace thread tid (and its process when new). */
static vms_status add_task(vms_replay *r, uint32_t tid, vms_task *t, vms_err *err)
{
    int pid = vms_task_pid(t);
    if (!vmsi_grow(r->a, (void **)&r->tasks, &r->captasks, r->ntasks, sizeof *r->tasks) ||
        (!find_proc(r, pid) &&
         !vmsi_grow(r->a, (void **)&r->procs, &r->capprocs, r->nprocs, sizeof *r->procs)))
        return vmsi_err(err, VMS_ERR_NOMEM, "replay: out of host memory");
    r->tasks[r->ntasks++] = (rtask){tid, pid, t};
    if (!find_proc(r, pid))
        r->procs[r->nprocs++] = (rproc){pid, 0};
    r->created++;
    return VMS_OK;
}

/* Forget every tid of process pid (it exited), and its process record. */
static void drop_proc(vms_replay *r, int pid)
{
    size_t j = 0;
    for (size_t i = 0; i < r->ntasks; i++)
        if (r->tasks[i].pid != pid)
            r->tasks[j++] = r->tasks[i];
    r->ntasks = j;
    for (size_t i = 0; i < r->nprocs; i++) {
        if (r->procs[i].pid == pid) {
            r->procs[i] = r->procs[--r->nprocs];
            break;
        }
    }
    if (pid == r->root_pid)
        r->root_pid = 0;
}

/* The core the next created task runs on. */
static unsigned next_core(const vms_replay *r)
{
    return r->created % vms_machine_ncores(vms_kernel_machine(r->k));
}

/* Apply the layout to a new process. */
static vms_status set_layout(vms_replay *r, vms_task *t, vms_err *err)
{
    if (r->o.layout != VMS_REPLAY_LAYOUT_AUTO)
        return VMS_OK;
    return vms_proc_set_auto_anon(r->k, t, VMS_REPLAY_AUTO_REGION, err);
}

/* Is the root process alive? */
static bool root_alive(vms_replay *r)
{
    vms_task *t = r->root_pid ? vms_proc_find(r->k, r->root_pid) : NULL;
    return t && vms_task_alive(t);
}

/*
 * A task the simulated kernel could not create (no free frame for a page-table root, a
 * dead parent): a result, not an error — warn, count, and let the caller skip the event.
 * A host failure (VMS_ERR_NOMEM) is returned.
 */
static vms_status refused(vms_replay *r, uint32_t tid, vms_status st, const vms_err *e,
                          vms_err *err)
{
    if (st == VMS_ERR_NOMEM)
        return vmsi_err(err, st, "%s", e->msg);
    r->st.syscall_errors++;
    warn(r, "no task for tid %" PRIu32 ": %s", tid, e->msg);
    return VMS_OK;
}

/* A new process for tid (the new root when none is alive); *out NULL if refused. */
static vms_status spawn(vms_replay *r, uint32_t tid, vms_task **out, vms_err *err)
{
    vms_err e = {0};
    vms_status st = vms_proc_spawn(r->k, "trace", next_core(r), out, &e);
    if (st == VMS_OK && (st = set_layout(r, *out, &e)) != VMS_OK)
        vms_proc_exit(r->k, *out);
    if (st != VMS_OK) {
        *out = NULL;
        return refused(r, tid, st, &e, err);
    }
    st = add_task(r, tid, *out, err);
    if (st != VMS_OK)
        return st;
    r->st.processes++;
    if (!root_alive(r))
        r->root_pid = vms_task_pid(*out);
    return VMS_OK;
}

/*
 * The task of trace thread tid, creating it when unknown: a new process when no root is
 * alive, else a new thread of the root process (unknown_tids). *out is NULL when the
 * simulated kernel refused (counted, warned); errors are host failures only.
 */
static vms_status task_of(vms_replay *r, uint32_t tid, vms_task **out, vms_err *err)
{
    rtask *e = find_tid(r, tid);
    if (e) {
        *out = e->t;
        return VMS_OK;
    }
    if (!root_alive(r))
        return spawn(r, tid, out, err);
    vms_err ke = {0};
    vms_status st =
        vms_proc_clone_thread(r->k, vms_proc_find(r->k, r->root_pid), next_core(r), out, &ke);
    if (st != VMS_OK) {
        *out = NULL;
        return refused(r, tid, st, &ke, err);
    }
    st = add_task(r, tid, *out, err);
    if (st == VMS_OK) {
        r->st.unknown_tids++;
        r->st.threads++;
    }
    return st;
}

/* ---- breakdowns ------------------------------------------------------------------------ */

/* The counters the breakdowns split, summed over the cores, and the kernel's faults. */
static struct snap totals(const vms_replay *r)
{
    struct snap s = {0, 0, 0, 0, 0, 0};
    vms_machine *m = vms_kernel_machine(r->k);
    uint64_t *lv[VMS_TLB_NLEVELS] = {&s.l1i, &s.l1d, &s.l2};
    for (unsigned i = 0; i < vms_machine_ncores(m); i++) {
        vms_core *c = vms_machine_core(m, i);
        for (unsigned l = 0; l < VMS_TLB_NLEVELS; l++) {
            vms_tlb *t = vms_core_tlb(c, (vms_tlb_level)l);
            if (t)
                *lv[l] += vms_tlb_get_stats(t)->misses;
        }
        s.walks += vms_core_walk_stats(c)->walks;
    }
    const vms_kernel_stats *ks = vms_kernel_get_stats(r->k);
    s.faults = ks->pgfault;
    s.major = ks->pgmajfault;
    return s;
}

/* Add the counts between snapshots a and b to part p. */
static void charge(vms_replay_part *p, const struct snap *a, const struct snap *b,
                   uint64_t accesses)
{
    p->accesses += accesses;
    p->l1i_misses += b->l1i - a->l1i;
    p->l1d_misses += b->l1d - a->l1d;
    p->l2_misses += b->l2 - a->l2;
    p->walks += b->walks - a->walks;
    p->faults += b->faults - a->faults;
    p->major_faults += b->major - a->major;
}

/* A new zeroed part at the end of *arr; NULL when the host allocation fails, which
 * sets parts_nomem: the next flush or event fails with VMS_ERR_NOMEM rather than
 * report a breakdown that silently misses a process or region. */
static vms_replay_part *new_part(vms_replay *r, vms_replay_part **arr, size_t *n, size_t *cap)
{
    if (!vmsi_grow(r->a, (void **)arr, cap, *n, sizeof **arr)) {
        r->parts_nomem = true;
        return NULL;
    }
    vms_replay_part *p = &(*arr)[(*n)++];
    memset(p, 0, sizeof *p);
    return p;
}

/* Charge everything since the last charge to process pid (t: one of its tasks, alive,
 * for its latest name; may be NULL), with `accesses` accesses. */
static void charge_proc(vms_replay *r, int pid, vms_task *t, uint64_t accesses)
{
    struct snap now = totals(r);
    vms_replay_part *p = NULL;
    for (size_t i = r->nbyproc; i-- > 0 && !p;)
        if (r->byproc[i].pid == pid)
            p = &r->byproc[i];
    if (!p && (p = new_part(r, &r->byproc, &r->nbyproc, &r->capbyproc)))
        p->pid = pid;
    if (p && t) { /* the latest name: an exec renames the process */
        vms_task_info info;
        vms_task_get_info(t, &info);
        if (info.name && strcmp(p->name, info.name) != 0)
            snprintf(p->name, sizeof p->name, "%s", info.name);
    }
    if (p)
        charge(p, &r->mark, &now, accesses);
    r->mark = now;
}

/* The region part named name (created on first use). */
static vms_replay_part *region(vms_replay *r, const char *name)
{
    if (r->last_region < r->nbyregion && !strcmp(r->byregion[r->last_region].name, name))
        return &r->byregion[r->last_region];
    for (size_t i = 0; i < r->nbyregion; i++)
        if (!strcmp(r->byregion[i].name, name)) {
            r->last_region = i;
            return &r->byregion[i];
        }
    vms_replay_part *p = new_part(r, &r->byregion, &r->nbyregion, &r->capbyregion);
    if (p) {
        snprintf(p->name, sizeof p->name, "%s", name);
        r->last_region = r->nbyregion - 1;
    }
    return p;
}

const vms_replay_part *vms_replay_by_process(const vms_replay *r, size_t *n)
{
    *n = r->nbyproc;
    return r->byproc;
}

const vms_replay_part *vms_replay_by_region(const vms_replay *r, size_t *n)
{
    *n = r->nbyregion;
    return r->byregion;
}

/* ---- references ------------------------------------------------------------------------ */

/* Count the outcome of one access that did not complete (the fast and slow paths alike). */
static void count_failed(vms_replay *r, vms_access_outcome o)
{
    if (o == VMS_ACCESS_DEAD)
        r->st.dead_refs++;
    else
        r->st.segv++; /* the kernel logged the signal */
}

/* Run the buffered accesses reference by reference (opts.slow), charging each to its
 * mapping with opts.breakdown (named before the access, or after it when the access
 * itself made the mapping — the auto layout's regions). */
static vms_status run_slow(vms_replay *r, vms_err *err)
{
    for (size_t i = 0; i < r->nbuf; i++) {
        const vms_ref *x = &r->buf[i];
        vms_access_info info;
        struct snap before = {0, 0, 0, 0, 0, 0};
        const char *name = NULL;
        if (r->o.breakdown) {
            before = totals(r);
            name = vms_proc_region_name(r->k, r->cur, x->va);
        }
        vms_status st = vms_proc_access(r->k, r->cur, x->va, (vms_access_kind)x->kind, NULL, x->len,
                                        &info, err);
        if (r->o.breakdown) {
            if (!name)
                name = vms_proc_region_name(r->k, r->cur, x->va);
            struct snap after = totals(r);
            vms_replay_part *p = region(r, name ? name : "[unmapped]");
            if (p)
                charge(p, &before, &after, 1);
        }
        if (st != VMS_OK)
            return st;
        if (info.outcome != VMS_ACCESS_OK)
            count_failed(r, info.outcome);
    }
    return VMS_OK;
}

/* Run the buffered accesses as batches, resuming after each failed one. */
static vms_status run_fast(vms_replay *r, vms_err *err)
{
    size_t i = 0;
    while (i < r->nbuf) {
        size_t done;
        vms_access_info info;
        vms_status st =
            vmsi_proc_access_refs(r->k, r->cur, r->buf + i, r->nbuf - i, &done, &info, err);
        i += done;
        if (st != VMS_OK)
            return st;
        if (i == r->nbuf)
            break;
        if (info.outcome == VMS_ACCESS_DEAD) {
            r->st.dead_refs += r->nbuf - i; /* every later access finds it dead too */
            break;
        }
        count_failed(r, info.outcome);
        i++;
    }
    return VMS_OK;
}

/* VMS_ERR_NOMEM once a breakdown part could not be allocated (new_part), else st. */
static vms_status parts_status(const vms_replay *r, vms_status st, vms_err *err)
{
    if (st == VMS_OK && r->parts_nomem)
        return vmsi_err(err, VMS_ERR_NOMEM, "replay: out of host memory for the breakdown");
    return st;
}

vms_status vms_replay_flush(vms_replay *r, vms_err *err)
{
    if (r->nbuf == 0)
        return VMS_OK;
    vms_status st =
        r->o.slow || r->o.breakdown || r->o.oracle ? run_slow(r, err) : run_fast(r, err);
    if (st == VMS_OK && r->o.oracle && vms_replay_oracle_failed(r->o.oracle))
        st = vmsi_err(err, VMS_ERR_IO, "replay: reading OPT's spill file back failed");
    charge_proc(r, vms_task_pid(r->cur), vms_task_alive(r->cur) ? r->cur : NULL, r->nbuf);
    r->nbuf = 0;
    return parts_status(r, st, err);
}

/* Buffer one access of task t, running the buffer first when it is full or another's. */
static vms_status push(vms_replay *r, vms_task *t, uint32_t tid, uint64_t va, uint32_t len,
                       vms_access_kind kind, vms_err *err)
{
    if (len == 0 || kind > VMS_ACC_EXEC) /* (the buffer holds valid references only) */
        return vmsi_err(err, VMS_ERR_INVAL, "replay: access of %s",
                        len ? "an unknown kind" : "zero length");
    if (r->cur != t || r->nbuf == BATCH) {
        vms_status st = vms_replay_flush(r, err);
        if (st != VMS_OK)
            return st;
        r->cur = t;
    }
    r->cur_tid = tid;
    r->buf[r->nbuf++] = (vms_ref){.va = va, .len = len, .kind = (uint8_t)kind};
    if (r->o.oracle) { /* OPT: run it now, at its position (on_access counted it) */
        r->exec_pos = r->st.references - 1;
        return vms_replay_flush(r, err);
    }
    return VMS_OK;
}

static vms_status on_access(vms_replay *r, const vms_trace_event *ev, vms_err *err)
{
    vms_task *t;
    vms_status st = task_of(r, ev->tid, &t, err);
    if (st != VMS_OK)
        return st;
    unsigned kind = ev->access.kind;
    r->st.references++;
    r->st.by_kind[kind & 3]++;
    r->st.bytes += ev->access.size;
    if (!t) { /* no task could be made for it */
        r->st.dead_refs += kind == VMS_TACC_MODIFY ? 2 : 1;
        return VMS_OK;
    }
    if (kind == VMS_TACC_MODIFY) {
        st = push(r, t, ev->tid, ev->access.va, ev->access.size, VMS_ACC_READ, err);
        if (st == VMS_OK)
            st = push(r, t, ev->tid, ev->access.va, ev->access.size, VMS_ACC_WRITE, err);
        return st;
    }
    return push(r, t, ev->tid, ev->access.va, ev->access.size, (vms_access_kind)kind, err);
}

/* ---- kernel events --------------------------------------------------------------------- */

/* A failed system call: counted and reported; a host failure ends the replay. */
static vms_status syscall_done(vms_replay *r, const char *what, vms_status st, const vms_err *e,
                               vms_err *err)
{
    r->st.syscalls++;
    if (st == VMS_OK)
        return VMS_OK;
    if (st == VMS_ERR_NOMEM)
        return vmsi_err(err, st, "%s", e->msg);
    r->st.syscall_errors++;
    warn(r, "%s failed: %s", what, e->msg);
    return VMS_OK;
}

static uint64_t page_up(uint64_t x)
{
    return (x + VMS_PAGE_MASK) & ~VMS_PAGE_MASK;
}

/*
 * Map [addr, addr+len) as the trace recorded it: MAP_FIXED, from the host file at path
 * when the segment is file-backed and the file exists, else anonymous.
 */
static vms_status map_fixed(vms_replay *r, vms_task *t, uint64_t addr, uint64_t len, unsigned prot,
                            unsigned tflags, const char *path, uint64_t off, vms_err *err)
{
    unsigned flags =
        VMS_MAP_FIXED | ((tflags & VMS_TMAP_SHARED) ? VMS_MAP_SHARED : VMS_MAP_PRIVATE);
    flags |= (tflags & VMS_TMAP_POPULATE) ? VMS_MAP_POPULATE : 0;
    flags |= (tflags & VMS_TMAP_GROWSDOWN) ? VMS_MAP_GROWSDOWN : 0;
    flags |= (tflags & VMS_TMAP_HUGETLB) ? VMS_MAP_HUGETLB | VMS_MAP_HUGE_2MB : 0;
    vms_file *f = NULL;
    vms_err e = {0};
    bool file = !(tflags & VMS_TMAP_ANON) && path && path[0] && path[0] != '[';
    if (file) {
        vms_status st = vms_file_open(r->k, path, &f, &e);
        if (st == VMS_ERR_NOMEM)
            return vmsi_err(err, st, "%s", e.msg);
        if (st != VMS_OK) {
            r->st.files_missing++;
            warn(r, "%s: not readable on this host (%s): mapped anonymous memory instead", path,
                 e.msg);
        } else {
            r->st.files_mapped++;
        }
    }
    if (!f)
        flags |= VMS_MAP_ANONYMOUS;
    uint64_t got = 0;
    vms_status st = vms_sys_mmap(r->k, t, addr, len, prot, flags, f, f ? off : 0, &got, &e);
    if (f)
        vms_file_close(r->k, f);
    char what[96];
    snprintf(what, sizeof what, "mmap at 0x%" PRIx64 " (0x%" PRIx64 " bytes)", addr, len);
    return syscall_done(r, what, st, &e, err);
}

/* brk as the change of the recorded break (see the file comment). */
static vms_status on_brk(vms_replay *r, vms_task *t, const vms_trace_event *ev, vms_err *err)
{
    rproc *p = find_proc(r, vms_task_pid(t));
    uint64_t old = p ? p->brk : 0, cur = ev->brk.ret;
    if (p)
        p->brk = cur;
    if (!old || page_up(old) == page_up(cur)) {
        r->st.skipped++;
        return VMS_OK;
    }
    vms_err e = {0};
    vms_status st;
    if (page_up(cur) > page_up(old)) {
        uint64_t got;
        st = vms_sys_mmap(r->k, t, page_up(old), page_up(cur) - page_up(old),
                          VMS_PROT_READ | VMS_PROT_WRITE,
                          VMS_MAP_FIXED | VMS_MAP_PRIVATE | VMS_MAP_ANONYMOUS, NULL, 0, &got, &e);
    } else {
        st = vms_sys_munmap(r->k, t, page_up(cur), page_up(old) - page_up(cur), &e);
    }
    return syscall_done(r, "brk", st, &e, err);
}

static vms_status on_clone(vms_replay *r, vms_task *t, const vms_trace_event *ev, vms_err *err)
{
    if (find_tid(r, ev->clone.child)) {
        warn(r, "clone: tid %" PRIu32 " already exists; event skipped", ev->clone.child);
        r->st.skipped++;
        return VMS_OK;
    }
    vms_task *child = NULL;
    vms_err e = {0};
    vms_status st;
    bool thread = (ev->clone.flags & VMS_TCLONE_ALL) == VMS_TCLONE_VM;
    if (thread) {
        st = vms_proc_clone_thread(r->k, t, next_core(r), &child, &e);
    } else {
        /* VM|VFORK: the child shares the parent's mm until its EXEC or exit. VFORK
         * alone (before native 1.1) was a vfork Valgrind ran as a fork: fork it. */
        st = ev->clone.flags & VMS_TCLONE_VM ? vms_proc_vfork(r->k, t, &child, &e)
                                             : vms_proc_fork(r->k, t, &child, &e);
        if (st == VMS_OK)
            st = vms_task_set_core(r->k, child, next_core(r), &e);
        if (st == VMS_OK)
            st = set_layout(r, child, &e);
    }
    if (st == VMS_ERR_NOMEM)
        return vmsi_err(err, st, "%s", e.msg);
    if (st != VMS_OK) {
        r->st.syscall_errors++;
        warn(r, "clone of tid %" PRIu32 " failed: %s", ev->clone.child, e.msg);
        return VMS_OK;
    }
    if (thread) {
        r->st.threads++;
    } else {
        r->st.processes++;
        rproc *pp = find_proc(r, vms_task_pid(t));
        uint64_t brk = pp ? pp->brk : 0;
        st = add_task(r, ev->clone.child, child, err);
        rproc *cp = find_proc(r, vms_task_pid(child));
        if (cp)
            cp->brk = brk; /* fork copies the break */
        return st;
    }
    return add_task(r, ev->clone.child, child, err);
}

/* EXEC: t's process gets a fresh address space named after the program; its other
 * trace threads end, and its break is unknown again (the new image's "[heap]" MAP or
 * first BRK sets it). */
static vms_status on_exec(vms_replay *r, vms_task *t, const vms_trace_event *ev, const char *path,
                          vms_err *err)
{
    const char *base = path ? strrchr(path, '/') : NULL;
    base = base ? base + 1 : path ? path : "trace";
    vms_err e = {0};
    vms_status st = vms_proc_exec(r->k, t, base, &e);
    if (st == VMS_OK)
        st = set_layout(r, t, &e);
    if (st != VMS_OK)
        return syscall_done(r, "execve", st, &e, err);
    r->st.syscalls++;
    int pid = vms_task_pid(t);
    size_t j = 0;
    for (size_t i = 0; i < r->ntasks; i++)
        if (r->tasks[i].pid != pid || r->tasks[i].tid == ev->tid)
            r->tasks[j++] = r->tasks[i];
    r->ntasks = j;
    rproc *p = find_proc(r, pid);
    if (p)
        p->brk = 0;
    return VMS_OK;
}

static void on_exit(vms_replay *r, const vms_trace_event *ev)
{
    rtask *e = find_tid(r, ev->tid);
    if (!e) {
        r->st.skipped++;
        return;
    }
    vms_task *t = e->t;
    int pid = e->pid;
    vms_task_info info;
    vms_task_get_info(t, &info);
    if (ev->exit.group || info.nthreads == 1) {
        vms_proc_exit(r->k, t);
        drop_proc(r, pid);
        return;
    }
    vms_task_exit(r->k, t);
    *e = r->tasks[--r->ntasks];
}

static vms_status on_kwrite(vms_replay *r, vms_task *t, const vms_trace_event *ev, vms_err *err)
{
    r->st.kwrites++;
    if (ev->kwrite.len == 0)
        return VMS_OK;
    vms_access_info info;
    vms_status st = vms_proc_kernel_access(r->k, t, ev->kwrite.va, VMS_ACC_WRITE, NULL,
                                           (size_t)ev->kwrite.len, &info, err);
    if (st != VMS_OK)
        return st;
    if (info.outcome == VMS_ACCESS_EFAULT) {
        r->st.kwrite_efault++;
        warn(r, "kernel write at 0x%" PRIx64 ": EFAULT", info.addr);
    } else if (info.outcome == VMS_ACCESS_DEAD) {
        r->st.dead_refs++;
    }
    return VMS_OK;
}

/* A kernel event of task t. */
static vms_status on_kernel_event(vms_replay *r, vms_task *t, const vms_trace_event *ev,
                                  const char *path, vms_err *err)
{
    vms_err e = {0};
    switch ((vms_trace_type)ev->type) {
    case VMS_TEV_MAP: {
        vms_status st = map_fixed(r, t, ev->map.start, ev->map.end - ev->map.start, ev->map.prot,
                                  ev->map.flags, path, ev->map.off, err);
        rproc *p = find_proc(r, vms_task_pid(t));
        if (st == VMS_OK && p && !p->brk && path && strcmp(path, "[heap]") == 0)
            p->brk = ev->map.end;
        return st;
    }
    case VMS_TEV_MMAP:
        if (ev->mmap.ret == VMS_TRACE_MAP_FAILED) {
            r->st.skipped++;
            return VMS_OK;
        }
        return map_fixed(r, t, ev->mmap.ret, ev->mmap.len, ev->mmap.prot, ev->mmap.flags, path,
                         ev->mmap.off, err);
    case VMS_TEV_MUNMAP:
        return syscall_done(r, "munmap",
                            vms_sys_munmap(r->k, t, ev->munmap.addr, ev->munmap.len, &e), &e, err);
    case VMS_TEV_MPROTECT:
        return syscall_done(
            r, "mprotect",
            vms_sys_mprotect(r->k, t, ev->mprotect.addr, ev->mprotect.len, ev->mprotect.prot, &e),
            &e, err);
    case VMS_TEV_MADVISE:
        if (ev->madvise.advice != VMS_MADV_DONTNEED && ev->madvise.advice != VMS_MADV_HUGEPAGE &&
            ev->madvise.advice != VMS_MADV_NOHUGEPAGE) {
            r->st.skipped++;
            return VMS_OK;
        }
        return syscall_done(r, "madvise",
                            vms_sys_madvise(r->k, t, ev->madvise.addr, ev->madvise.len,
                                            (int)ev->madvise.advice, &e),
                            &e, err);
    case VMS_TEV_BRK:
        return on_brk(r, t, ev, err);
    case VMS_TEV_CLONE:
        return on_clone(r, t, ev, err);
    case VMS_TEV_KWRITE:
        return on_kwrite(r, t, ev, err);
    case VMS_TEV_EXEC:
        return on_exec(r, t, ev, path, err);
    default:
        r->st.skipped++;
        return VMS_OK;
    }
}

vms_status vms_replay_event(vms_replay *r, const vms_trace_event *ev, const char *path,
                            vms_err *err)
{
    if (r->o.layout == VMS_REPLAY_LAYOUT_DEFAULT)
        r->o.layout = VMS_REPLAY_LAYOUT_AUTO;
    if (r->o.oracle) {
        vms_status ts = vmsi_tracker_event(&r->trk, ev, err);
        if (ts != VMS_OK)
            return ts;
    }
    r->st.events++;
    if (ev->type == VMS_TEV_ACCESS) {
        vms_status st = on_access(r, ev, err);
        if (st == VMS_OK && r->st.references == r->next_tick) {
            r->next_tick += r->o.interval;
            if ((st = vms_replay_flush(r, err)) == VMS_OK && r->o.tick)
                r->o.tick(r->o.ud, r->st.references, false);
        }
        return st;
    }
    vms_status st = vms_replay_flush(r, err);
    if (st != VMS_OK)
        return st;
    if (ev->type == VMS_TEV_EXIT) {
        const rtask *rt = find_tid(r, ev->tid);
        int pid = rt ? rt->pid : 0;
        if (rt && rt->t && vms_task_alive(rt->t))
            charge_proc(r, pid, rt->t, 0); /* (its name, while the task exists) */
        on_exit(r, ev);
        charge_proc(r, pid, NULL, 0);
        return parts_status(r, VMS_OK, err);
    }
    vms_task *t;
    st = task_of(r, ev->tid, &t, err);
    if (st != VMS_OK)
        return st;
    if (!t || !vms_task_alive(t)) {
        r->st.skipped++;
        return VMS_OK;
    }
    int pid = vms_task_pid(t);
    struct snap before = r->o.breakdown ? totals(r) : r->mark;
    st = on_kernel_event(r, t, ev, path, err);
    if (r->o.breakdown) { /* what system calls and kernel writes cost, by mapping */
        struct snap after = totals(r);
        vms_replay_part *p = region(r, "[kernel events]");
        if (p)
            charge(p, &before, &after, 0);
    }
    charge_proc(r, pid, vms_task_alive(t) ? t : NULL, 0);
    return parts_status(r, st, err);
}

/*
 * vms_replay_event for the common case, in bulk: the run of reads, writes and fetches of
 * the thread whose references are buffered, decoded by the reader straight into the
 * buffer (vms_trace_read_refs) while there is room and no tick or limit falls inside it.
 * Returns how many were taken (0: the next event goes through vms_replay_event).
 */
static size_t run_refs(vms_replay *r, vms_trace_reader *rd, uint64_t limit)
{
    uint64_t room = BATCH - r->nbuf, refs = r->st.references;
    /* Nothing buffered: the first event names the task. OPT sees every event itself. */
    if (r->nbuf == 0 || room == 0 || r->o.oracle)
        return 0;
    if (limit - refs < room)
        room = limit - refs;
    if (r->next_tick - 1 - refs < room) /* the reference reaching next_tick ticks */
        room = r->next_tick - 1 - refs;
    vmsi_ref_sums sum = {0, {0, 0, 0}};
    size_t n = vmsi_trace_read_refs_sum(rd, r->cur_tid, r->buf + r->nbuf, (size_t)room, &sum);
    r->nbuf += n;
    r->st.events += n;
    r->st.references += n;
    r->st.bytes += sum.bytes;
    for (unsigned k = 0; k < 3; k++)
        r->st.by_kind[k] += sum.by_kind[k];
    return n;
}

vms_status vms_replay_run(vms_replay *r, vms_trace_reader *rd, vms_err *err)
{
    vms_trace_event ev;
    vms_status st = VMS_OK;
    const uint64_t limit = r->o.limit ? r->o.limit : UINT64_MAX;
    while (r->st.references < limit) {
        if (run_refs(r, rd, limit) > 0) /* never the first event: nothing is buffered yet */
            continue;
        if (r->st.references >= limit || !vms_trace_read(rd, &ev, NULL))
            break;
        if (r->st.events == 0 && r->o.layout == VMS_REPLAY_LAYOUT_DEFAULT) {
            r->o.layout =
                ev.type == VMS_TEV_ACCESS ? VMS_REPLAY_LAYOUT_AUTO : VMS_REPLAY_LAYOUT_RECORDED;
            vms_kernel_pagecache_auto(r->k, r->o.layout == VMS_REPLAY_LAYOUT_RECORDED
                                                ? VMS_PAGECACHE_WARM
                                                : VMS_PAGECACHE_COLD);
        }
        const char *path = NULL;
        if (ev.type == VMS_TEV_MAP)
            path = vms_trace_reader_path(rd, ev.map.path);
        else if (ev.type == VMS_TEV_MMAP)
            path = vms_trace_reader_path(rd, ev.mmap.path);
        else if (ev.type == VMS_TEV_EXEC)
            path = vms_trace_reader_path(rd, ev.exec.path);
        st = vms_replay_event(r, &ev, path, err);
        if (st != VMS_OK)
            return st;
    }
    const vms_err *re = vms_trace_reader_error(rd);
    vms_status fst = vms_replay_flush(r, err);
    if (re->status != VMS_OK) {
        if (err && err != re)
            *err = *re;
        return re->status;
    }
    if (fst == VMS_OK && r->o.tick)
        r->o.tick(r->o.ud, r->st.references, true);
    return fst;
}

/* ,"name":[{…}, …] for a breakdown. */
static void parts_json(vms_strbuf *sb, const char *name, const vms_replay_part *p, size_t n,
                       bool pids)
{
    vms_strbuf_printf(sb, ",\"%s\":[", name);
    for (size_t i = 0; i < n; i++) {
        vms_strbuf_printf(sb, "%s{", i ? "," : "");
        if (pids)
            vms_strbuf_printf(sb, "\"pid\":%d,", p[i].pid);
        vms_strbuf_printf(sb, "\"name\":");
        vms_strbuf_json_str(sb, p[i].name);
        vms_strbuf_printf(sb,
                          ",\"accesses\":%" PRIu64 ",\"tlb_misses\":{\"l1i\":%" PRIu64
                          ",\"l1d\":%" PRIu64 ",\"l2\":%" PRIu64 "},\"walks\":%" PRIu64
                          ",\"faults\":%" PRIu64 ",\"major_faults\":%" PRIu64 "}",
                          p[i].accesses, p[i].l1i_misses, p[i].l1d_misses, p[i].l2_misses,
                          p[i].walks, p[i].faults, p[i].major_faults);
    }
    vms_strbuf_printf(sb, "]");
}

vms_status vms_replay_stats_json_members(const vms_replay *r, vms_strbuf *sb)
{
    const vms_replay_stats *s = &r->st;
    const vms_kernel_stats *ks = vms_kernel_get_stats(r->k);
    const char *s0 = vms_strbuf_str(sb);
    size_t n = strlen(s0);
    if (n && s0[n - 1] != '{' && s0[n - 1] != ',')
        vms_strbuf_printf(sb, ",");
    vms_strbuf_printf(
        sb,
        "\"replay\":{\"layout\":\"%s\",\"references\":%" PRIu64 ",\"reads\":%" PRIu64
        ",\"writes\":%" PRIu64 ",\"fetches\":%" PRIu64 ",\"modifies\":%" PRIu64
        ",\"bytes\":%" PRIu64 ",\"segv\":%" PRIu64 ",\"dead_refs\":%" PRIu64 ",\"kwrites\":%" PRIu64
        ",\"kwrite_efault\":%" PRIu64 ",\"syscalls\":%" PRIu64 ",\"syscall_errors\":%" PRIu64
        ",\"skipped\":%" PRIu64 ",\"files_mapped\":%" PRIu64 ",\"files_missing\":%" PRIu64
        ",\"processes\":%" PRIu64 ",\"threads\":%" PRIu64 ",\"unknown_tids\":%" PRIu64
        ",\"auto_anon_vmas\":%" PRIu64 ",\"kernel_faults\":%" PRIu64,
        vms_replay_layout_name(r->o.layout), s->references, s->by_kind[0], s->by_kind[1],
        s->by_kind[2], s->by_kind[3], s->bytes, s->segv, s->dead_refs, s->kwrites, s->kwrite_efault,
        s->syscalls, s->syscall_errors, s->skipped, s->files_mapped, s->files_missing, s->processes,
        s->threads, s->unknown_tids, ks->auto_anon_vmas, ks->kernel_faults);
    parts_json(sb, "by_process", r->byproc, r->nbyproc, true);
    if (r->o.breakdown)
        parts_json(sb, "by_region", r->byregion, r->nbyregion, false);
    return vms_strbuf_printf(sb, "}");
}
