/*
 * test_oracle.c — OPT's next-use oracle for trace replay (src/replay/oracle.c):
 *  - against a naive oracle that keeps the whole trace in memory and scans it forward
 *    for every question, over random traces with threads, forks, vforks, execs, exits
 *    and multi-page references, with chunks of 1, 3, 7 records and the default;
 *  - inside a replay: every next use the kernel's OPT reclaim asks for is compared with
 *    the naive answer at the reference executing then (vms_replay_position), and a
 *    deliberately stale oracle fails the same comparison; OPT takes fewer major faults
 *    than LRU, FIFO, clock and random on a loop and on a uniform random trace;
 *  - a replay for a kernel that asks it (vms_replay_next_use) without an oracle is
 *    refused at vms_replay_create; with one, the replay fills the kernel's slot.
 */
#define _POSIX_C_SOURCE 200809L /* mkstemp */
#include <unistd.h>

#include "harness.h"
#include "replay/oracle.h"
#include "vmsim/config.h"
#include "vmsim/machine.h"
#include "vmsim/rng.h"
#include "vmsim/swap.h"

#define NEVER UINT64_MAX

/* ---- a naive oracle ----------------------------------------------------------------- */

/* One ACCESS event as the naive oracle keeps it: its address space and pages. */
typedef struct nref {
    uint32_t space;
    uint64_t first, last; /* pages */
} nref;

typedef struct naive {
    nref *refs;
    size_t n, cap;
    /* the naive tracker: thread -> process, process -> space and live threads */
    uint32_t tid[256], tproc[256];
    size_t ntid;
    uint32_t pid[256], pspace[256], pthreads[256];
    size_t nproc;
    uint32_t next_pid, next_space, root;
} naive;

static int n_tid(const naive *v, uint32_t tid)
{
    for (size_t i = 0; i < v->ntid; i++)
        if (v->tid[i] == tid)
            return (int)i;
    return -1;
}

static int n_proc(const naive *v, uint32_t id)
{
    for (size_t i = 0; i < v->nproc; i++)
        if (v->pid[i] == id)
            return (int)i;
    return -1;
}

static void n_add_thread(naive *v, uint32_t tid, uint32_t proc)
{
    v->tid[v->ntid] = tid;
    v->tproc[v->ntid++] = proc;
    v->pthreads[n_proc(v, proc)]++;
}

static void n_new_proc(naive *v, uint32_t tid, uint32_t space)
{
    uint32_t id = v->next_pid++;
    v->pid[v->nproc] = id;
    v->pspace[v->nproc] = space ? space : v->next_space++;
    v->pthreads[v->nproc++] = 0;
    if (!v->root)
        v->root = id;
    n_add_thread(v, tid, id);
}

/* The process of tid: a thread of the root if one is alive, else a new process. */
static uint32_t n_lookup(naive *v, uint32_t tid)
{
    int t = n_tid(v, tid);
    if (t < 0) {
        if (v->root)
            n_add_thread(v, tid, v->root);
        else
            n_new_proc(v, tid, 0);
        t = n_tid(v, tid);
    }
    return v->tproc[t];
}

static void n_drop_proc(naive *v, uint32_t id)
{
    size_t j = 0;
    for (size_t i = 0; i < v->ntid; i++)
        if (v->tproc[i] != id) {
            v->tid[j] = v->tid[i];
            v->tproc[j++] = v->tproc[i];
        }
    v->ntid = j;
    int p = n_proc(v, id);
    v->nproc--;
    v->pid[p] = v->pid[v->nproc];
    v->pspace[p] = v->pspace[v->nproc];
    v->pthreads[p] = v->pthreads[v->nproc];
    if (v->root == id)
        v->root = 0;
}

static void n_event(naive *v, const vms_trace_event *ev)
{
    if (ev->type == VMS_TEV_EXIT) {
        int t = n_tid(v, ev->tid);
        if (t < 0)
            return;
        uint32_t id = v->tproc[t];
        int p = n_proc(v, id);
        if (ev->exit.group || v->pthreads[p] == 1) {
            n_drop_proc(v, id);
        } else {
            v->pthreads[p]--;
            v->ntid--;
            v->tid[t] = v->tid[v->ntid];
            v->tproc[t] = v->tproc[v->ntid];
        }
        return;
    }
    uint32_t id = n_lookup(v, ev->tid);
    int p = n_proc(v, id);
    if (ev->type == VMS_TEV_CLONE && n_tid(v, ev->clone.child) < 0) {
        unsigned f = ev->clone.flags & VMS_TCLONE_ALL;
        if (f == VMS_TCLONE_VM)
            n_add_thread(v, ev->clone.child, id);
        else
            n_new_proc(v, ev->clone.child, (f & VMS_TCLONE_VM) ? v->pspace[p] : 0);
    } else if (ev->type == VMS_TEV_EXEC) {
        size_t j = 0;
        for (size_t i = 0; i < v->ntid; i++)
            if (v->tproc[i] != id || v->tid[i] == ev->tid) {
                v->tid[j] = v->tid[i];
                v->tproc[j++] = v->tproc[i];
            }
        v->ntid = j;
        v->pthreads[p] = 1;
        v->pspace[p] = v->next_space++;
    } else if (ev->type == VMS_TEV_ACCESS) {
        if (v->n == v->cap) {
            v->cap = v->cap ? v->cap * 2 : 1024;
            v->refs = realloc(v->refs, v->cap * sizeof *v->refs);
        }
        uint64_t last = (ev->access.va + ev->access.size - 1) >> VMS_PAGE_SHIFT;
        v->refs[v->n++] = (nref){v->pspace[p], ev->access.va >> VMS_PAGE_SHIFT, last};
    }
}

static void n_init(naive *v)
{
    memset(v, 0, sizeof *v);
    v->next_pid = 1;
    v->next_space = 1;
}

/* The first reference at or after `at` of (space, page). */
static uint64_t n_next(const naive *v, uint32_t space, uint64_t page, uint64_t at)
{
    for (uint64_t i = at; i < v->n; i++)
        if (v->refs[i].space == space && v->refs[i].first <= page && page <= v->refs[i].last)
            return i;
    return NEVER;
}

/* ---- random traces -------------------------------------------------------------------- */

/* Write a random native trace of n events to a temporary file; its path in path[]. */
static bool random_trace(uint64_t seed, unsigned n, char path[64], naive *v)
{
    snprintf(path, 64, "/tmp/vmsim-oracle-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0)
        return false;
    close(fd);
    vms_trace_writer *w = NULL;
    vms_err err = {0};
    if (vms_trace_writer_open(path, VMS_TRACE_NATIVE, NULL, NULL, &w, &err) != VMS_OK)
        return false;
    vms_rng g;
    vms_rng_seed(&g, seed);
    uint32_t tids[64] = {1};
    unsigned ntids = 1, next_tid = 2;
    n_init(v);
    bool ok = true;
    for (unsigned i = 0; ok && i < n; i++) {
        vms_trace_event ev;
        memset(&ev, 0, sizeof ev);
        uint32_t r = (uint32_t)vms_rng_below(&g, 100);
        ev.tid = tids[vms_rng_below(&g, ntids)];
        if (r < 3 && ntids < 60) { /* thread, vfork or fork */
            ev.type = VMS_TEV_CLONE;
            ev.clone.child = next_tid++;
            static const uint8_t fl[] = {VMS_TCLONE_VM, VMS_TCLONE_VM | VMS_TCLONE_VFORK, 0,
                                         VMS_TCLONE_VFORK};
            ev.clone.flags = fl[vms_rng_below(&g, 4)];
            tids[ntids++] = ev.clone.child;
        } else if (r < 4) {
            ev.type = VMS_TEV_EXEC;
        } else if (r < 6 && ntids > 1) {
            ev.type = VMS_TEV_EXIT;
            ev.exit.group = vms_rng_below(&g, 3) == 0;
        } else if (r < 7) {
            ev.tid = next_tid++; /* a thread the trace never introduced */
            tids[ntids < 60 ? ntids++ : 0] = ev.tid;
            ev.type = VMS_TEV_ACCESS;
        } else {
            ev.type = VMS_TEV_ACCESS;
        }
        if (ev.type == VMS_TEV_ACCESS) {
            ev.access.va = 0x400000 + vms_rng_below(&g, 40) * 4096 + vms_rng_below(&g, 4096);
            ev.access.size = vms_rng_below(&g, 8) == 0 ? 1 + (uint32_t)vms_rng_below(&g, 9000) : 8;
            ev.access.kind = (uint8_t)vms_rng_below(&g, 4);
        }
        n_event(v, &ev);
        ok = vms_trace_writer_write(w, &ev, &err) == VMS_OK;
    }
    return vms_trace_writer_close(w, &err) == VMS_OK && ok;
}

static void test_against_naive(void)
{
    static const size_t chunks[] = {1, 3, 7, 0};
    unsigned mismatches = 0, questions = 0, answered = 0;
    for (unsigned round = 0; round < 12; round++) {
        char path[64];
        naive v;
        REQUIRE_VOID(random_trace(th_seed + round, 3000, path, &v));
        for (unsigned c = 0; c < 4; c++) {
            vms_trace_reader *rd = NULL;
            vms_replay_oracle *o = NULL;
            vms_err err = {0};
            REQUIRE_VOID(vms_trace_reader_open(path, VMS_TRACE_NATIVE, NULL, &rd, &err) == VMS_OK);
            CHECK_EQ(vmsi_oracle_build_chunked(rd, NULL, chunks[c], &o, &err), VMS_OK);
            vms_trace_reader_close(rd);
            REQUIRE_VOID(o);
            CHECK_EQ(vms_replay_oracle_references(o), v.n);
            vms_rng g;
            vms_rng_seed(&g, th_seed ^ round ^ (c << 8));
            for (uint64_t at = 0; at <= v.n + 2; at += vms_rng_below(&g, 40)) {
                for (unsigned q = 0; q < 8; q++) {
                    uint32_t space = 1 + (uint32_t)vms_rng_below(&g, v.next_space);
                    uint64_t page = (0x400000 >> 12) + vms_rng_below(&g, 44);
                    uint64_t want = n_next(&v, space, page, at);
                    uint64_t got = vmsi_oracle_next(o, space, page, at);
                    questions++;
                    answered += want != NEVER;
                    mismatches += got != want;
                }
            }
            CHECK(!vms_replay_oracle_failed(o));
            vms_replay_oracle_destroy(o);
        }
        free(v.refs);
        unlink(path);
    }
    printf("oracle: %u questions (%u with a next use), %u mismatches\n", questions, answered,
           mismatches);
    CHECK_EQ(mismatches, 0);
    CHECK(answered > questions / 8);
}

/* ---- inside a replay -------------------------------------------------------------------- */

typedef struct probe {
    vms_replay *r;  /* the slot vms_replay_next_use reads */
    const naive *v; /* the truth */
    bool stale;     /* a broken oracle: one that never advances past the first uses */
    unsigned asked, wrong;
} probe;

/* The kernel's next-use function: the replay's answer, checked against the naive one. */
static uint64_t probe_next_use(void *ud, int pid, uint64_t va)
{
    probe *p = ud;
    uint64_t got;
    uint64_t at = vms_replay_position(p->r);
    if (p->stale) /* every page's first use: an oracle whose cursor never moves */
        got = n_next(p->v, 1, va >> VMS_PAGE_SHIFT, 0);
    else
        got = vms_replay_next_use(&p->r, pid, va);
    p->asked++;
    p->wrong += got != n_next(p->v, 1, va >> VMS_PAGE_SHIFT, at);
    return got;
}

/* Replay lackey text under `policy` in 4 MiB of RAM with swap; majors out. With a probe
 * (policy opt) every next use is checked. */
static bool replay_text(const char *text, const char *policy, probe *pr, uint64_t *majors)
{
    vms_err err = {0};
    vms_config c;
    vms_config_init(&c, "skylake", &err);
    vms_config_set(&c, "ram", "4M", "test", &err);
    vms_config_set(&c, "swap", "64M", "test", &err);
    if (vms_config_set(&c, "policy", policy, "test", &err) != VMS_OK)
        return false;
    vms_kernel_config kc = vms_config_kernel(&c);
    vms_replay_oracle *o = NULL;
    vms_trace_reader *rd = NULL;
    bool opt = !strcmp(policy, "opt");
    if (opt) {
        if (vms_trace_reader_open_mem(text, strlen(text), "o.lackey", VMS_TRACE_LACKEY, NULL, &rd,
                                      &err) != VMS_OK ||
            vms_replay_oracle_build(rd, NULL, &o, &err) != VMS_OK)
            return false;
        vms_trace_reader_close(rd);
        kc.next_use = probe_next_use;
        kc.next_use_ud = pr;
    }
    vms_machine *m = NULL;
    vms_kernel *k = NULL;
    vms_replay *r = NULL;
    vms_replay_opts ro = {.oracle = o};
    bool ok = vms_machine_create(NULL, &c.machine, &m, &err) == VMS_OK &&
              vms_kernel_create(m, &kc, &k, &err) == VMS_OK &&
              vms_replay_create(k, &ro, &r, &err) == VMS_OK;
    if (pr)
        pr->r = r;
    ok = ok && vms_trace_reader_open_mem(text, strlen(text), "r.lackey", VMS_TRACE_LACKEY, NULL,
                                         &rd, &err) == VMS_OK;
    ok = ok && vms_replay_run(r, rd, &err) == VMS_OK;
    if (!ok)
        fprintf(stderr, "replay_text(%s): %s\n", policy, err.msg);
    *majors = k ? vms_kernel_get_stats(k)->pgmajfault : 0;
    vms_trace_reader_close(rd);
    if (pr)
        pr->r = NULL;
    vms_replay_destroy(r);
    vms_kernel_destroy(k);
    vms_machine_destroy(m);
    vms_replay_oracle_destroy(o);
    return ok;
}

/* The naive truth of lackey text (one process: space 1). */
static void naive_of(const char *text, naive *v)
{
    vms_trace_reader *rd = NULL;
    vms_err err = {0};
    n_init(v);
    vms_trace_reader_open_mem(text, strlen(text), "n.lackey", VMS_TRACE_LACKEY, NULL, &rd, &err);
    vms_trace_event ev;
    while (rd && vms_trace_read(rd, &ev, NULL))
        n_event(v, &ev);
    vms_trace_reader_close(rd);
}

static void test_in_replay(void)
{
    vms_strbuf loop, rnd;
    vms_strbuf_init(&loop, NULL);
    vms_strbuf_init(&rnd, NULL);
    for (unsigned round = 0; round < 6; round++)
        for (unsigned p = 0; p < 1200; p++)
            vms_strbuf_printf(&loop, " S %x,8\n", 0x10000000 + p * 4096);
    vms_rng g;
    vms_rng_seed(&g, th_seed);
    for (unsigned i = 0; i < 12000; i++)
        vms_strbuf_printf(&rnd, " %c %" PRIx64 ",8\n", vms_rng_below(&g, 3) ? 'S' : 'L',
                          0x10000000 + vms_rng_below(&g, 1400) * 4096);
    const char *texts[] = {vms_strbuf_str(&loop), vms_strbuf_str(&rnd)};
    static const char *const others[] = {"lru", "fifo", "clock", "random"};
    for (unsigned t = 0; t < 2; t++) {
        naive v;
        naive_of(texts[t], &v);
        probe pr = {NULL, &v, false, 0, 0};
        uint64_t opt_majors = 0, m = 0;
        CHECK(replay_text(texts[t], "opt", &pr, &opt_majors));
        printf("oracle: trace %u: opt %" PRIu64 " major faults, %u next uses asked, %u wrong\n", t,
               opt_majors, pr.asked, pr.wrong);
        CHECK(pr.asked > 1000);
        CHECK_EQ(pr.wrong, 0);
        CHECK(opt_majors > 0);
        for (unsigned i = 0; i < 4; i++) {
            CHECK(replay_text(texts[t], others[i], NULL, &m));
            printf("oracle: trace %u: %s %" PRIu64 " major faults\n", t, others[i], m);
            CHECK(opt_majors < m);
        }
        /* The comparison bites: an oracle that does not follow the replay is caught. */
        probe bad = {NULL, &v, true, 0, 0};
        CHECK(replay_text(texts[t], "opt", &bad, &m));
        printf("oracle: trace %u: a stale oracle: %u of %u next uses wrong\n", t, bad.wrong,
               bad.asked);
        CHECK(bad.wrong > 0);
        free(v.refs);
    }
    vms_strbuf_free(&loop);
    vms_strbuf_free(&rnd);
}

/*
 * A kernel running OPT that asks the replay for next uses (vms_replay_next_use) needs the
 * replay to have an oracle: without one every answer was "never", so OPT evicted the
 * lowest frame, the page just faulted in, whatever the future (2,568 majors here,
 * random's figure, against OPT's 616). It is refused when the replay is created
 * (nothing is replayed); with an oracle the replay fills the slot itself, so a caller
 * that forgets to gets OPT, not "never".
 */
static void test_no_oracle(void)
{
    vms_strbuf rnd;
    vms_strbuf_init(&rnd, NULL);
    vms_rng g;
    vms_rng_seed(&g, th_seed);
    for (unsigned i = 0; i < 12000; i++) /* uniform over 1,400 pages: OPT ~600 majors, */
        vms_strbuf_printf(&rnd, " %c %" PRIx64 ",8\n", vms_rng_below(&g, 3) ? 'S' : 'L',
                          0x10000000 + vms_rng_below(&g, 1400) * 4096); /* the rest ~2,500 */
    const char *text = vms_strbuf_str(&rnd);
    for (unsigned with = 0; with < 2; with++) {
        vms_err err = {0};
        vms_config c;
        vms_config_init(&c, "skylake", &err);
        vms_config_set(&c, "ram", "4M", "test", &err);
        vms_config_set(&c, "swap", "64M", "test", &err);
        vms_config_set(&c, "policy", "opt", "test", &err);
        vms_kernel_config kc = vms_config_kernel(&c);
        vms_replay *slot = NULL;
        kc.next_use = vms_replay_next_use;
        kc.next_use_ud = &slot;
        vms_replay_oracle *o = NULL;
        vms_trace_reader *rd = NULL;
        if (with) {
            REQUIRE_VOID(vms_trace_reader_open_mem(text, strlen(text), "o.lackey", VMS_TRACE_LACKEY,
                                                   NULL, &rd, &err) == VMS_OK &&
                         vms_replay_oracle_build(rd, NULL, &o, &err) == VMS_OK);
            vms_trace_reader_close(rd);
            rd = NULL;
        }
        vms_machine *m = NULL;
        vms_kernel *k = NULL;
        vms_replay *r = NULL;
        vms_replay_opts ro = {.oracle = o};
        REQUIRE_VOID(vms_machine_create(NULL, &c.machine, &m, &err) == VMS_OK &&
                     vms_kernel_create(m, &kc, &k, &err) == VMS_OK);
        vms_status st = vms_replay_create(k, &ro, &r, &err);
        uint64_t majors = 0;
        if (st == VMS_OK) { /* the caller does not fill the slot: the replay does */
            CHECK(vms_trace_reader_open_mem(text, strlen(text), "r.lackey", VMS_TRACE_LACKEY, NULL,
                                            &rd, &err) == VMS_OK);
            CHECK_EQ(vms_replay_run(r, rd, &err), VMS_OK);
            majors = vms_kernel_get_stats(k)->pgmajfault;
            CHECK(slot == r);
        }
        printf("oracle: opt through the replay %s an oracle: %s, %" PRIu64 " major faults\n",
               with ? "with" : "without", st == VMS_OK ? "replayed" : err.msg, majors);
        if (with) {
            CHECK_EQ(st, VMS_OK);
            CHECK(majors > 0 && majors < 1200);
        } else {
            CHECK_EQ(st, VMS_ERR_INVAL);
            CHECK(strstr(err.msg, "replay: policy 'opt' needs the future") != NULL);
            CHECK(strstr(err.msg, "vms_replay_opts.oracle") != NULL);
            CHECK(r == NULL);
        }
        vms_trace_reader_close(rd);
        vms_replay_destroy(r);
        CHECK(slot == NULL); /* destroy empties the slot it filled */
        vms_kernel_destroy(k);
        vms_machine_destroy(m);
        vms_replay_oracle_destroy(o);
    }
    vms_strbuf_free(&rnd);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "oracle");
    test_against_naive();
    test_in_replay();
    test_no_oracle();
    return th_finish();
}
