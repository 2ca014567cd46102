/*
 * sweep_pass.c — `vmsim sweep SPEC --one-pass`: the tasks of one trace share one pass of
 * the trace reader (docs/SWEEP.md). The main thread reads and decodes the trace once into
 * a ring of chunks of events; worker threads (up to -j, each owning a share of the
 * tasks) replay every chunk into each of their tasks' machines, in order. Each task is
 * the same replay as `vmsim replay --stats json` (cli_replay_task_*, cmd_replay.c), so its
 * result line is byte-identical to the task's separate run (tests/cli/sweep.sh checks).
 *
 * The ring: RING chunks of CHUNK events; chunk c lives in slot c % RING. The reader fills
 * a slot once every worker has released it (`left` reaches 0) and publishes it by raising
 * `produced`; workers take chunk c once produced > c. Paths of MAP/MMAP/EXEC events are
 * copied into the chunk (the reader's string table is not shared with the workers).
 */
#define _POSIX_C_SOURCE 200809L /* strdup, pthreads */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define CHUNK 8192
#define RING  4

typedef struct chunk {
    vms_trace_event ev[CHUNK];
    char *path[CHUNK];
    size_t n;
    unsigned left; /* workers that have not finished it */
} chunk;

typedef struct feed {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    chunk *ring;
    uint64_t produced; /* chunks published */
    bool done;         /* no more will be */
    unsigned nworkers;
} feed;

typedef struct worker {
    feed *f;
    cli_replay_task **t;
    size_t nt;
    pthread_t th;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    feed *f = w->f;
    for (uint64_t c = 0;; c++) {
        pthread_mutex_lock(&f->mu);
        while (f->produced <= c && !f->done)
            pthread_cond_wait(&f->cv, &f->mu);
        bool have = f->produced > c;
        pthread_mutex_unlock(&f->mu);
        if (!have)
            return NULL;
        chunk *ch = &f->ring[c % RING];
        for (size_t k = 0; k < w->nt; k++) /* task by task: each machine stays in cache */
            for (size_t i = 0; i < ch->n; i++)
                cli_replay_task_event(w->t[k], &ch->ev[i], ch->path[i]);
        pthread_mutex_lock(&f->mu);
        if (--ch->left == 0)
            pthread_cond_broadcast(&f->cv);
        pthread_mutex_unlock(&f->mu);
    }
}

/* The path string an event names, copied (NULL for none; *oom on a failed copy). */
static char *event_path(const vms_trace_reader *rd, const vms_trace_event *ev, bool *oom)
{
    uint32_t id = ev->type == VMS_TEV_MAP    ? ev->map.path
                  : ev->type == VMS_TEV_MMAP ? ev->mmap.path
                  : ev->type == VMS_TEV_EXEC ? ev->exec.path
                                             : 0;
    const char *p = id ? vms_trace_reader_path(rd, id) : NULL;
    char *copy = p ? strdup(p) : NULL;
    *oom |= p && !copy;
    return copy;
}

/* Read rd to its end, publishing chunks; false on host memory failure. */
static bool produce(feed *f, vms_trace_reader *rd)
{
    bool oom = false;
    for (bool more = true; more && !oom;) {
        chunk *ch = &f->ring[f->produced % RING];
        pthread_mutex_lock(&f->mu);
        while (ch->left > 0)
            pthread_cond_wait(&f->cv, &f->mu);
        pthread_mutex_unlock(&f->mu);
        for (size_t i = 0; i < ch->n; i++) {
            free(ch->path[i]);
            ch->path[i] = NULL;
        }
        ch->n = 0;
        while (ch->n < CHUNK && (more = vms_trace_read(rd, &ch->ev[ch->n], NULL))) {
            ch->path[ch->n] = event_path(rd, &ch->ev[ch->n], &oom);
            ch->n++;
        }
        if (ch->n == 0)
            break;
        pthread_mutex_lock(&f->mu);
        ch->left = f->nworkers;
        f->produced++;
        pthread_cond_broadcast(&f->cv);
        pthread_mutex_unlock(&f->mu);
    }
    pthread_mutex_lock(&f->mu);
    f->done = true;
    pthread_cond_broadcast(&f->cv);
    for (unsigned s = 0; s < RING; s++) /* wait for the workers to release every chunk */
        while (f->ring[s].left > 0)
            pthread_cond_wait(&f->cv, &f->mu);
    pthread_mutex_unlock(&f->mu);
    return !oom;
}

vms_status cli_feed_tasks(vms_trace_reader *rd, cli_replay_task **ts, size_t n, unsigned threads,
                          vms_err *rerr)
{
    if (threads > n)
        threads = (unsigned)n;
    if (threads == 0)
        threads = 1;
    feed f = {.nworkers = threads};
    worker *w = calloc(threads, sizeof *w);
    f.ring = calloc(RING, sizeof *f.ring);
    if (!w || !f.ring) {
        free(w);
        free(f.ring);
        *rerr = (vms_err){.status = VMS_ERR_NOMEM};
        snprintf(rerr->msg, sizeof rerr->msg, "sweep: out of host memory");
        return VMS_ERR_NOMEM;
    }
    pthread_mutex_init(&f.mu, NULL);
    pthread_cond_init(&f.cv, NULL);
    unsigned started = 0;
    for (unsigned i = 0; i < threads; i++) {
        /* tasks i, i + threads, …: each worker gets every threads-th task */
        w[i].f = &f;
        w[i].t = calloc(n / threads + 1, sizeof *w[i].t);
        for (size_t k = i; w[i].t && k < n; k += threads)
            w[i].t[w[i].nt++] = ts[k];
        if (w[i].t && pthread_create(&w[i].th, NULL, worker_main, &w[i]) == 0)
            started++;
        else
            break;
    }
    bool ok = started == threads;
    if (!ok) { /* fewer workers than chunks expect: none may be published */
        pthread_mutex_lock(&f.mu);
        f.done = true;
        pthread_cond_broadcast(&f.cv);
        pthread_mutex_unlock(&f.mu);
    } else {
        ok = produce(&f, rd);
    }
    for (unsigned i = 0; i < started; i++)
        pthread_join(w[i].th, NULL);
    for (unsigned s = 0; s < RING; s++)
        for (size_t i = 0; i < f.ring[s].n; i++)
            free(f.ring[s].path[i]);
    for (unsigned i = 0; i < threads; i++)
        free(w[i].t);
    free(w);
    free(f.ring);
    pthread_mutex_destroy(&f.mu);
    pthread_cond_destroy(&f.cv);
    *rerr = *vms_trace_reader_error(rd);
    if (!ok && rerr->status == VMS_OK) {
        rerr->status = VMS_ERR_NOMEM;
        snprintf(rerr->msg, sizeof rerr->msg, "sweep: out of host memory (threads or paths)");
    }
    return rerr->status;
}
