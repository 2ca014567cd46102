/*
 * oracle.c — OPT's next-use oracle for trace replay and the address-space tracker
 * (oracle.h has the design).
 */
#define _POSIX_C_SOURCE 200809L /* fileno, pread, pwrite */
#include "replay/oracle.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#define NEVER UINT64_MAX

/* Records per chunk of the backward pass and per read buffer (24 B each). */
#define CHUNK_DEFAULT 65536u

/* ---- the address-space tracker --------------------------------------------------------- */

void vmsi_tracker_init(vmsi_tracker *t, const vms_allocator *a)
{
    memset(t, 0, sizeof *t);
    t->a = a;
    t->next_proc = 1;
    t->next_space = 1;
}

void vmsi_tracker_free(vmsi_tracker *t)
{
    vmsi_free(t->a, t->tids, t->captids * sizeof *t->tids);
    vmsi_free(t->a, t->procs, t->capprocs * sizeof *t->procs);
    memset(t, 0, sizeof *t);
}

static vmsi_ttid *find_ttid(const vmsi_tracker *t, uint32_t tid)
{
    for (size_t i = 0; i < t->ntids; i++)
        if (t->tids[i].tid == tid)
            return &t->tids[i];
    return NULL;
}

static vmsi_tproc *find_tproc(const vmsi_tracker *t, uint32_t id)
{
    for (size_t i = 0; i < t->nprocs; i++)
        if (t->procs[i].id == id)
            return &t->procs[i];
    return NULL;
}

static vms_status nomem(vms_err *err)
{
    return vmsi_err(err, VMS_ERR_NOMEM, "replay: out of host memory for OPT's oracle");
}

/* Thread tid joins process p (which exists). */
static vms_status add_ttid(vmsi_tracker *t, uint32_t tid, vmsi_tproc *p, vms_err *err)
{
    uint32_t id = p->id;
    if (!vmsi_grow(t->a, (void **)&t->tids, &t->captids, t->ntids, sizeof *t->tids))
        return nomem(err);
    t->tids[t->ntids++] = (vmsi_ttid){tid, id};
    find_tproc(t, id)->nthreads++;
    return VMS_OK;
}

/* A new process (a new address space unless `space` is given) with thread tid. */
static vms_status new_tproc(vmsi_tracker *t, uint32_t tid, uint32_t space, vms_err *err)
{
    if (!vmsi_grow(t->a, (void **)&t->procs, &t->capprocs, t->nprocs, sizeof *t->procs))
        return nomem(err);
    vmsi_tproc *p = &t->procs[t->nprocs++];
    *p = (vmsi_tproc){t->next_proc++, space ? space : t->next_space++, 0};
    if (!t->root)
        t->root = p->id;
    return add_ttid(t, tid, p, err);
}

/* The process of tid, created as the replay's task_of does: a new process when no root
 * is alive, else a thread of the root. */
static vms_status lookup(vmsi_tracker *t, uint32_t tid, vmsi_tproc **out, vms_err *err)
{
    vmsi_ttid *e = find_ttid(t, tid);
    vms_status st = VMS_OK;
    if (!e) {
        vmsi_tproc *root = t->root ? find_tproc(t, t->root) : NULL;
        st = root ? add_ttid(t, tid, root, err) : new_tproc(t, tid, 0, err);
        e = find_ttid(t, tid);
    }
    *out = e ? find_tproc(t, e->proc) : NULL;
    return st;
}

/* Process id exits: drop it and its threads. */
static void drop_tproc(vmsi_tracker *t, uint32_t id)
{
    size_t j = 0;
    for (size_t i = 0; i < t->ntids; i++)
        if (t->tids[i].proc != id)
            t->tids[j++] = t->tids[i];
    t->ntids = j;
    for (size_t i = 0; i < t->nprocs; i++)
        if (t->procs[i].id == id) {
            t->procs[i] = t->procs[--t->nprocs];
            break;
        }
    if (t->root == id)
        t->root = 0;
}

vms_status vmsi_tracker_event(vmsi_tracker *t, const vms_trace_event *ev, vms_err *err)
{
    vmsi_tproc *p;
    if (ev->type == VMS_TEV_EXIT) {
        vmsi_ttid *e = find_ttid(t, ev->tid);
        if (!e)
            return VMS_OK;
        p = find_tproc(t, e->proc);
        if (ev->exit.group || p->nthreads == 1) {
            drop_tproc(t, p->id);
        } else {
            p->nthreads--;
            *e = t->tids[--t->ntids];
        }
        return VMS_OK;
    }
    vms_status st = lookup(t, ev->tid, &p, err);
    if (st != VMS_OK)
        return st;
    if (ev->type == VMS_TEV_CLONE && !find_ttid(t, ev->clone.child)) {
        unsigned f = ev->clone.flags & VMS_TCLONE_ALL;
        if (f == VMS_TCLONE_VM)
            return add_ttid(t, ev->clone.child, p, err);
        /* vfork shares the parent's space until its exec; a fork has its own */
        return new_tproc(t, ev->clone.child, (f & VMS_TCLONE_VM) ? p->space : 0, err);
    }
    if (ev->type == VMS_TEV_EXEC) {
        uint32_t id = p->id;
        size_t j = 0;
        for (size_t i = 0; i < t->ntids; i++)
            if (t->tids[i].proc != id || t->tids[i].tid == ev->tid)
                t->tids[j++] = t->tids[i];
        t->ntids = j;
        p->nthreads = 1;
        p->space = t->next_space++;
    }
    return VMS_OK;
}

uint32_t vmsi_tracker_space(const vmsi_tracker *t, uint32_t tid)
{
    const vmsi_ttid *e = find_ttid(t, tid);
    const vmsi_tproc *p = e ? find_tproc(t, e->proc) : NULL;
    return p ? p->space : 0;
}

/* ---- a map from (space, page) to an event index ---------------------------------------- */

typedef struct slot {
    uint64_t vpn;
    uint32_t space; /* 0: empty (spaces start at 1) */
    uint64_t val;
} slot;

typedef struct pmap {
    slot *s;
    size_t cap, n; /* cap a power of two, or 0 */
} pmap;

static size_t slot_of(const pmap *m, uint32_t space, uint64_t vpn)
{
    uint64_t h = (vpn ^ (uint64_t)space << 47) * UINT64_C(0x9E3779B97F4A7C15);
    size_t i = (size_t)(h >> 20) & (m->cap - 1);
    while (m->s[i].space && (m->s[i].space != space || m->s[i].vpn != vpn))
        i = (i + 1) & (m->cap - 1);
    return i;
}

static uint64_t pmap_get(const pmap *m, uint32_t space, uint64_t vpn)
{
    if (!m->cap)
        return NEVER;
    const slot *e = &m->s[slot_of(m, space, vpn)];
    return e->space ? e->val : NEVER;
}

/* Replace the value of an existing entry (never allocates). */
static void pmap_replace(pmap *m, uint32_t space, uint64_t vpn, uint64_t val)
{
    slot *e = &m->s[slot_of(m, space, vpn)];
    assert(e->space);
    e->val = val;
}

static bool pmap_put(pmap *m, const vms_allocator *a, uint32_t space, uint64_t vpn, uint64_t val)
{
    if ((m->n + 1) * 2 > m->cap) {
        pmap g = {vmsi_calloc(a, m->cap ? m->cap * 2 : 1024, sizeof(slot)),
                  m->cap ? m->cap * 2 : 1024, m->n};
        if (!g.s)
            return false;
        for (size_t i = 0; i < m->cap; i++)
            if (m->s[i].space)
                g.s[slot_of(&g, m->s[i].space, m->s[i].vpn)] = m->s[i];
        vmsi_free(a, m->s, m->cap * sizeof(slot));
        *m = g;
    }
    slot *e = &m->s[slot_of(m, space, vpn)];
    if (!e->space) {
        m->n++;
        *e = (slot){vpn, space, 0};
    }
    e->val = val;
    return true;
}

/* ---- the oracle ------------------------------------------------------------------------ */

typedef struct rec {
    uint64_t vpn;
    uint32_t space, pad_;
    uint64_t idx; /* the ACCESS event's index (0 = the trace's first reference) */
} rec;

struct vms_replay_oracle {
    const vms_allocator *a;
    FILE *recs, *next; /* spill files: records, and each record's next use */
    uint64_t nrec, refs;
    size_t chunk;
    pmap cur; /* per page: its next use at or after `pos` */
    uint64_t pos, cursor;
    rec *buf; /* records [bufbase, bufbase + buflen) of recs, and their next uses */
    uint64_t *nbuf;
    uint64_t bufbase;
    size_t buflen;
    bool io_failed; /* a spill read failed in pass 3 */
};

void vms_replay_oracle_destroy(vms_replay_oracle *o)
{
    if (!o)
        return;
    if (o->recs)
        fclose(o->recs);
    if (o->next)
        fclose(o->next);
    vmsi_free(o->a, o->cur.s, o->cur.cap * sizeof(slot));
    vmsi_free(o->a, o->buf, o->chunk * sizeof *o->buf);
    vmsi_free(o->a, o->nbuf, o->chunk * sizeof *o->nbuf);
    vmsi_free(o->a, o, sizeof *o);
}

uint64_t vms_replay_oracle_references(const vms_replay_oracle *o)
{
    return o->refs;
}

bool vms_replay_oracle_failed(const vms_replay_oracle *o)
{
    return o->io_failed;
}

static bool read_at(FILE *f, void *buf, size_t len, uint64_t off)
{
    return pread(fileno(f), buf, len, (off_t)off) == (ssize_t)len;
}

static bool write_at(FILE *f, const void *buf, size_t len, uint64_t off)
{
    return pwrite(fileno(f), buf, len, (off_t)off) == (ssize_t)len;
}

static vms_status io_error(vms_err *err)
{
    return vmsi_err(err, VMS_ERR_IO, "replay: OPT's spill file (in TMPDIR): %s", strerror(errno));
}

/* Pass 1: one record per page per ACCESS event, in trace order. */
static vms_status pass_forward(vms_replay_oracle *o, vms_trace_reader *rd, vms_err *err)
{
    vmsi_tracker t;
    vmsi_tracker_init(&t, o->a);
    vms_trace_event ev;
    vms_status st = VMS_OK;
    size_t n = 0;
    while (st == VMS_OK && vms_trace_read(rd, &ev, NULL)) {
        if ((st = vmsi_tracker_event(&t, &ev, err)) != VMS_OK)
            break;
        if (ev.type != VMS_TEV_ACCESS)
            continue;
        uint32_t space = vmsi_tracker_space(&t, ev.tid);
        uint64_t first = ev.access.va >> VMS_PAGE_SHIFT;
        uint64_t size = ev.access.size ? ev.access.size : 1;
        uint64_t last = ev.access.va > UINT64_MAX - (size - 1)
                            ? UINT64_MAX >> VMS_PAGE_SHIFT
                            : (ev.access.va + (size - 1)) >> VMS_PAGE_SHIFT;
        for (uint64_t p = first;; p++) {
            o->buf[n++] = (rec){p, space, 0, o->refs};
            if (n == o->chunk) {
                if (!write_at(o->recs, o->buf, n * sizeof *o->buf, o->nrec * sizeof *o->buf)) {
                    st = io_error(err);
                    break;
                }
                o->nrec += n;
                n = 0;
            }
            if (p == last)
                break;
        }
        o->refs++;
    }
    vmsi_tracker_free(&t);
    const vms_err *re = vms_trace_reader_error(rd);
    if (st == VMS_OK && re->status != VMS_OK) {
        if (err)
            *err = *re;
        return re->status;
    }
    if (st == VMS_OK && n) {
        if (!write_at(o->recs, o->buf, n * sizeof *o->buf, o->nrec * sizeof *o->buf))
            return io_error(err);
        o->nrec += n;
    }
    return st;
}

/* Pass 2: each record's next use, chunk by chunk from the end; leaves in `cur` the
 * first use of every page (its next use at or after position 0). */
static vms_status pass_backward(vms_replay_oracle *o, vms_err *err)
{
    uint64_t nchunks = (o->nrec + o->chunk - 1) / o->chunk;
    for (uint64_t c = nchunks; c-- > 0;) {
        uint64_t base = c * o->chunk;
        size_t len = (size_t)(o->nrec - base < o->chunk ? o->nrec - base : o->chunk);
        if (!read_at(o->recs, o->buf, len * sizeof *o->buf, base * sizeof *o->buf))
            return io_error(err);
        for (size_t j = len; j-- > 0;) {
            const rec *r = &o->buf[j];
            o->nbuf[j] = pmap_get(&o->cur, r->space, r->vpn);
            if (!pmap_put(&o->cur, o->a, r->space, r->vpn, r->idx))
                return nomem(err);
        }
        if (!write_at(o->next, o->nbuf, len * sizeof *o->nbuf, base * sizeof *o->nbuf))
            return io_error(err);
    }
    o->bufbase = UINT64_MAX; /* nothing buffered for pass 3 yet */
    return VMS_OK;
}

vms_status vmsi_oracle_build_chunked(vms_trace_reader *rd, const vms_allocator *a, size_t chunk,
                                     vms_replay_oracle **out, vms_err *err)
{
    *out = NULL;
    if (!a)
        a = vms_allocator_default();
    vms_replay_oracle *o = vmsi_zalloc(a, sizeof *o);
    if (!o)
        return nomem(err);
    o->a = a;
    o->chunk = chunk ? chunk : CHUNK_DEFAULT;
    o->buf = vmsi_calloc(a, o->chunk, sizeof *o->buf);
    o->nbuf = vmsi_calloc(a, o->chunk, sizeof *o->nbuf);
    vms_status st = o->buf && o->nbuf ? VMS_OK : nomem(err);
    if (st == VMS_OK) {
        o->recs = tmpfile();
        o->next = o->recs ? tmpfile() : NULL;
        if (!o->next)
            st = io_error(err);
    }
    if (st == VMS_OK)
        st = pass_forward(o, rd, err);
    if (st == VMS_OK)
        st = pass_backward(o, err);
    if (st != VMS_OK) {
        vms_replay_oracle_destroy(o);
        return st;
    }
    *out = o;
    return VMS_OK;
}

vms_status vms_replay_oracle_build(vms_trace_reader *rd, const vms_allocator *a,
                                   vms_replay_oracle **out, vms_err *err)
{
    return vmsi_oracle_build_chunked(rd, a, 0, out, err);
}

/* Pass 3: apply every record of an event before `at` (its page's next use). */
static void advance(vms_replay_oracle *o, uint64_t at)
{
    while (o->cursor < o->nrec) {
        if (o->cursor < o->bufbase || o->cursor >= o->bufbase + o->buflen) {
            uint64_t left = o->nrec - o->cursor;
            size_t len = (size_t)(left < o->chunk ? left : o->chunk);
            if (!read_at(o->recs, o->buf, len * sizeof *o->buf, o->cursor * sizeof *o->buf) ||
                !read_at(o->next, o->nbuf, len * sizeof *o->nbuf, o->cursor * sizeof *o->nbuf)) {
                o->cursor = o->nrec;
                o->io_failed = true; /* vms_replay_oracle_failed: the replay fails */
                return;
            }
            o->bufbase = o->cursor;
            o->buflen = len;
        }
        size_t j = (size_t)(o->cursor - o->bufbase);
        const rec *r = &o->buf[j];
        if (r->idx >= at)
            return;
        pmap_replace(&o->cur, r->space, r->vpn, o->nbuf[j]); /* pass 2 put every page */
        o->cursor++;
    }
}

uint64_t vmsi_oracle_next(vms_replay_oracle *o, uint32_t space, uint64_t vpn, uint64_t at)
{
    if (at > o->pos) {
        advance(o, at);
        o->pos = at;
    }
    return pmap_get(&o->cur, space, vpn);
}
