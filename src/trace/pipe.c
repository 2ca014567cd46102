/*
 * pipe.c — the pipelined reader (vms_trace_reader_pipeline): a thread of its own decodes
 * an inner reader ahead of the caller into a bounded ring of chunks, and the wrapper hands
 * them out through the reader interface (r->next, r->next_refs), so that a replay reads
 * it as it reads any reader (vms_replay_run is unchanged) while the decoding — file
 * reads, decompression, varints or text parsing, checksums — runs on another core.
 *
 * A chunk holds items in trace order, each either a run of plain accesses (read, write,
 * fetch) of one thread, decoded by the batch read (vms_trace_read_refs) into vms_ref, or
 * one other event (a kernel event, a modify) as a vms_trace_event; and the strings the
 * inner reader defined up to the end of the chunk (its STRING records), which the wrapper
 * adds to its own table when it enters the chunk, so a path id means the same string on
 * both sides.
 *
 * Exactness. A reference rebuilt as an event equals the event the inner reader returned
 * (readers zero an event; an access carries only tid, va, size and kind), and a batch read
 * of the wrapper returns what that many reads would, so the wrapper answers every sequence
 * of calls as the inner reader does: the same events, count and paths. The inner reader's
 * failure is kept after the last chunk and reported only when the caller reads past the
 * last event before it, through vms_trace_read (a batch read stops there, as the formats'
 * batch decoders stop before a malformed record): a replay that stops earlier (its limit)
 * never sees it, as it would not have read that far. One difference remains: a failure of
 * the byte stream itself (an unreadable file, corrupt compressed data) is found where the
 * thread's reads reach it, which in the inner reader alone depends on how the caller's
 * reads cut the decoding window, so the events before it can differ by a few records; the
 * message is the same.
 *
 * The ring: RING slots; the thread fills slot prod % RING once the caller released it
 * (cons > prod - RING) and publishes it by raising prod; the caller reads slot cons % RING
 * while cons < prod and releases it by raising cons. One mutex and two condition
 * variables; a hand-over per chunk (thousands of references), none per event.
 */
#define _POSIX_C_SOURCE 200809L /* pthreads */
#include <pthread.h>

#include "trace/trace_impl.h"

#define CHUNK_REFS  8192u /* references a chunk holds (128 KiB) */
#define CHUNK_EVS   512u  /* other events */
#define CHUNK_ITEMS 1024u /* runs and events */
#define RING        4u    /* chunks in flight: the thread reads at most RING chunks ahead */

/* One item: a run of n references (refs[at, at + n)) of thread tid, or (n == 0) the event
 * ev[at]. */
typedef struct item {
    uint32_t tid;
    uint32_t n;
    uint32_t at;
} item;

typedef struct chunk {
    item items[CHUNK_ITEMS];
    vms_ref refs[CHUNK_REFS];
    vms_trace_event ev[CHUNK_EVS];
    uint32_t nitems, nrefs, nev;
    vmsi_strtab strs;  /* the strings defined since the previous chunk, in id order */
    uint64_t file_off; /* the inner reader's file offset when the chunk was full */
} chunk;

struct vmsi_pipe {
    vms_trace_reader *in; /* owned; used by the thread only, once it runs */
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t filled, freed;
    chunk *ring;
    uint64_t prod, cons; /* chunks published, chunks released */
    bool done;           /* the thread published its last chunk */
    bool stop;           /* the wrapper is closing: the thread stops */
    vms_err end;         /* the failure after the last chunk (VMS_OK: the trace ended) */
    uint32_t nsent;      /* the thread: inner strings copied into chunks so far */
    /* the caller's position: items[item] of cur, reference off of a run */
    chunk *cur;
    uint32_t item, off;
    uint64_t file_off;
};

/* ---- the reading thread ---- */

/* Copy the strings the inner reader defined since the last call into ch; false (with
 * *err) when out of host memory. */
static bool copy_strings(vmsi_pipe *p, chunk *ch, vms_err *err)
{
    vms_trace_reader *in = p->in;
    for (; p->nsent < in->strs.n; p->nsent++) {
        const char *s = vmsi_strtab_get(&in->strs, p->nsent + 1);
        if (vmsi_strtab_add(&ch->strs, in->a, s, strlen(s)) != VMS_OK) {
            vmsi_err(err, VMS_ERR_NOMEM, "%s: out of host memory for the trace's strings",
                     in->name);
            return false;
        }
    }
    return true;
}

/* Append event ev to ch: to the last run when it is a plain access of that run's thread. */
static void put_event(chunk *ch, const vms_trace_event *ev)
{
    item *last = ch->nitems ? &ch->items[ch->nitems - 1] : NULL;
    if (ev->type == VMS_TEV_ACCESS && ev->access.kind != VMS_TACC_MODIFY) {
        if (!last || !last->n || last->tid != ev->tid)
            ch->items[ch->nitems++] = (item){.tid = ev->tid, .n = 0, .at = ch->nrefs};
        vmsi_put_ref(&ch->refs[ch->nrefs++], ev->access.va, ev->access.size, ev->access.kind);
        ch->items[ch->nitems - 1].n++;
        return;
    }
    ch->items[ch->nitems++] = (item){.tid = ev->tid, .n = 0, .at = ch->nev};
    ch->ev[ch->nev++] = *ev;
}

/* Fill ch from the inner reader until it is full (true) or the trace ends or fails
 * (false; *err says which). */
static bool fill_chunk(vmsi_pipe *p, chunk *ch, vms_err *err)
{
    vms_trace_reader *in = p->in;
    ch->nitems = ch->nrefs = ch->nev = 0;
    ch->strs.n = 0; /* emptied, its room kept */
    ch->strs.len = 0;
    bool more = true;
    while (ch->nitems < CHUNK_ITEMS && ch->nrefs < CHUNK_REFS && ch->nev < CHUNK_EVS) {
        item *last = ch->nitems ? &ch->items[ch->nitems - 1] : NULL;
        if (last && last->n) { /* the run goes on: straight from the batch decoder */
            size_t got =
                vms_trace_read_refs(in, last->tid, ch->refs + ch->nrefs, CHUNK_REFS - ch->nrefs);
            last->n += (uint32_t)got;
            ch->nrefs += (uint32_t)got;
            if (got)
                continue;
        }
        vms_trace_event ev;
        if (!vms_trace_read(in, &ev, err)) {
            more = false;
            break;
        }
        put_event(ch, &ev);
    }
    ch->file_off = vms_trace_reader_file_offset(in);
    if (!copy_strings(p, ch, err)) {
        ch->nitems = 0; /* its events may name strings the caller cannot have */
        return false;
    }
    return more;
}

static void *reader_main(void *arg)
{
    vmsi_pipe *p = arg;
    vms_err err = {0};
    for (bool more = true; more;) {
        pthread_mutex_lock(&p->mu);
        while (p->prod - p->cons == RING && !p->stop)
            pthread_cond_wait(&p->freed, &p->mu);
        bool stop = p->stop;
        pthread_mutex_unlock(&p->mu);
        if (stop)
            break;
        more = fill_chunk(p, &p->ring[p->prod % RING], &err);
        pthread_mutex_lock(&p->mu);
        p->prod++;
        if (!more) {
            p->end = err;
            p->done = true;
        }
        pthread_cond_signal(&p->filled);
        pthread_mutex_unlock(&p->mu);
    }
    return NULL;
}

/* ---- the caller's side: the reader interface ---- */

/* Release the current chunk and enter the next one, adding its strings to r's table.
 * False when there is none (the thread is done) or on host memory failure (r->err). */
static bool enter(vms_trace_reader *r, vmsi_pipe *p)
{
    pthread_mutex_lock(&p->mu);
    if (p->cur) {
        p->cur = NULL;
        p->cons++;
        pthread_cond_signal(&p->freed);
    }
    while (p->cons == p->prod && !p->done)
        pthread_cond_wait(&p->filled, &p->mu);
    bool have = p->cons < p->prod;
    pthread_mutex_unlock(&p->mu);
    if (!have)
        return false;
    chunk *ch = &p->ring[p->cons % RING];
    p->cur = ch;
    p->item = p->off = 0;
    p->file_off = ch->file_off;
    for (uint32_t i = 1; i <= ch->strs.n; i++) {
        const char *s = vmsi_strtab_get(&ch->strs, i);
        if (vmsi_strtab_add(&r->strs, r->a, s, strlen(s)) != VMS_OK) {
            vmsi_err(&r->err, VMS_ERR_NOMEM, "%s: out of host memory for the trace's strings",
                     r->name);
            return false;
        }
    }
    return true;
}

/* Whether the position is at an item, entering chunks as needed; false at the end. */
static bool at_item(vms_trace_reader *r, vmsi_pipe *p)
{
    while (!p->cur || p->item == p->cur->nitems)
        if (r->err.status != VMS_OK || !enter(r, p))
            return false;
    return true;
}

static bool pipe_next(vms_trace_reader *r, vms_trace_event *ev)
{
    vmsi_pipe *p = r->pipe;
    if (!at_item(r, p)) {
        if (r->err.status == VMS_OK && p->end.status != VMS_OK)
            r->err = p->end; /* (p->end was written before p->done, seen under p->mu) */
        return false;
    }
    const item *it = &p->cur->items[p->item];
    if (it->n == 0) {
        *ev = p->cur->ev[it->at];
        p->item++;
        return true;
    }
    const vms_ref *ref = &p->cur->refs[it->at + p->off];
    memset(ev, 0, sizeof *ev);
    ev->type = VMS_TEV_ACCESS;
    ev->tid = it->tid;
    ev->access.va = ref->va;
    ev->access.size = ref->len;
    ev->access.kind = ref->kind;
    if (++p->off == it->n) {
        p->item++;
        p->off = 0;
    }
    return true;
}

static size_t pipe_refs(vms_trace_reader *r, uint32_t tid, vms_ref *refs, size_t max,
                        vmsi_ref_sums *sum)
{
    vmsi_pipe *p = r->pipe;
    size_t n = 0;
    uint64_t bytes = 0, by[3] = {0, 0, 0};
    while (n < max && at_item(r, p)) {
        const item *it = &p->cur->items[p->item];
        if (it->n == 0 || it->tid != tid)
            break;
        size_t take = it->n - p->off;
        if (take > max - n)
            take = max - n;
        const vms_ref *s = &p->cur->refs[it->at + p->off];
        memcpy(refs + n, s, take * sizeof *s);
        for (size_t i = 0; i < take; i++) { /* runs hold reads, writes and fetches only */
            bytes += s[i].len;
            by[s[i].kind]++;
        }
        n += take;
        p->off += (uint32_t)take;
        if (p->off == it->n) {
            p->item++;
            p->off = 0;
        }
    }
    sum->bytes += bytes;
    for (unsigned k = 0; k < 3; k++)
        sum->by_kind[k] += by[k];
    return n;
}

uint64_t vmsi_pipe_file_offset(const vmsi_pipe *p)
{
    return p->file_off;
}

void vmsi_pipe_close(vmsi_pipe *p, const vms_allocator *a)
{
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->th, NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->filled);
    pthread_cond_destroy(&p->freed);
    for (unsigned i = 0; i < RING; i++)
        vmsi_strtab_free(&p->ring[i].strs, a);
    vmsi_free(a, p->ring, RING * sizeof *p->ring);
    vms_trace_reader_close(p->in);
    vmsi_free(a, p, sizeof *p);
}

/* Free what pipeline() allocated before its thread ran, and the inner reader. */
static vms_status undo(vms_trace_reader *in, vms_trace_reader *r, vmsi_pipe *p, vms_status st,
                       vms_err *err)
{
    const vms_allocator *a = in->a;
    vmsi_err(err, st, "%s: %s", in->name,
             st == VMS_ERR_NOMEM ? "out of host memory for the reading thread's ring"
                                 : "cannot start the reading thread");
    if (p)
        vmsi_free(a, p->ring, RING * sizeof *p->ring);
    vmsi_free(a, p, sizeof *p);
    if (r) {
        r->pipe = NULL;
        vms_trace_reader_close(r);
    }
    vms_trace_reader_close(in);
    return st;
}

vms_status vms_trace_reader_pipeline(vms_trace_reader *in, vms_trace_reader **out, vms_err *err)
{
    *out = NULL;
    const vms_allocator *a = in->a;
    size_t nlen = strlen(in->name) + 1;
    vms_trace_reader *r = vmsi_zalloc(a, sizeof *r);
    char *name = r ? vmsi_alloc(a, nlen) : NULL;
    if (!name) {
        vmsi_free(a, r, sizeof *r);
        return undo(in, NULL, NULL, VMS_ERR_NOMEM, err);
    }
    memcpy(name, in->name, nlen);
    r->a = a;
    r->name = name;
    r->fmt = in->fmt;
    r->count = in->count;
    r->next = pipe_next;
    r->next_refs = pipe_refs;
    vmsi_pipe *p = vmsi_zalloc(a, sizeof *p);
    if (p)
        p->ring = vmsi_calloc(a, RING, sizeof *p->ring);
    if (!p || !p->ring)
        return undo(in, r, p, VMS_ERR_NOMEM, err);
    p->in = in;
    /* the strings defined before: the same ids from the start */
    for (; p->nsent < in->strs.n; p->nsent++) {
        const char *s = vmsi_strtab_get(&in->strs, p->nsent + 1);
        if (vmsi_strtab_add(&r->strs, a, s, strlen(s)) != VMS_OK)
            return undo(in, r, p, VMS_ERR_NOMEM, err);
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->filled, NULL);
    pthread_cond_init(&p->freed, NULL);
    if (pthread_create(&p->th, NULL, reader_main, p) != 0) {
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->filled);
        pthread_cond_destroy(&p->freed);
        return undo(in, r, p, VMS_ERR_IO, err);
    }
    r->pipe = p;
    *out = r;
    return VMS_OK;
}
