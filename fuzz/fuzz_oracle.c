/*
 * fuzz_oracle.c — libFuzzer target: OPT's next-use oracle (src/replay/oracle.c), the
 * pre-pass `vmsim replay --set policy=opt` makes over a trace, and the replay it steers.
 *
 * The first byte picks the format (even: native, odd: lackey); the rest is the trace. The
 * pre-pass (vms_replay_oracle_build) reads it to its end: a failure must be the reader's
 * (VMS_ERR_PARSE or VMS_ERR_UNSUPPORTED, naming the input and a line or byte), and the
 * replay of the same bytes (under the default policy) must then fail with the same message. What
 * the pre-pass accepts is replayed with policy=opt on a machine small enough to reclaim (1 MiB of
 * RAM, 4 MiB of swap, 2 cores; traces of at most 20,000 events and within fuzz_trace.h's size
 * limits): the replay must return VMS_OK (or a host VMS_ERR_NOMEM) and replay exactly the
 * references the pre-pass counted, every next use the kernel asks must lie at or after the
 * executing reference (never in the past: a stale oracle), the spill files must read back,
 * and the kernel's invariants must hold. No crash, hang or leak (ASan). Violations abort.
 */
#include "fuzz_trace.h"

#include "vmsim/kernel.h"

/* The replay's next-use function, checked: an answer is never before the reference
 * executing now. */
typedef struct oracle_check {
    vms_replay *slot;
    unsigned long asked;
} oracle_check;

static uint64_t checked_next_use(void *ud, int pid, uint64_t va)
{
    oracle_check *c = ud;
    uint64_t n = vms_replay_next_use(&c->slot, pid, va);
    if (c->slot && n < vms_replay_position(c->slot)) {
        fprintf(stderr, "fuzz_oracle: next use %llu of pid %d va 0x%llx before position %llu\n",
                (unsigned long long)n, pid, (unsigned long long)va,
                (unsigned long long)vms_replay_position(c->slot));
        abort();
    }
    c->asked++;
    return n;
}

/* Whether every event is within the replay limits (fuzz_trace.h); reads r to its end. */
static int small_enough(vms_trace_reader *r)
{
    vms_trace_event ev;
    vms_err err = {0};
    unsigned long n = 0;
    int ok = 1;
    while (vms_trace_read(r, &ev, &err))
        if (++n > 20000 || fuzz_too_big(&ev))
            ok = 0;
    return ok;
}

static void bad_report(const char *what, const vms_err *err)
{
    fprintf(stderr, "fuzz_oracle: %s: status %d, \"%s\"\n", what, (int)err->status, err->msg);
    abort();
}

static void replay(const unsigned char *data, size_t size, vms_trace_format fmt,
                   vms_replay_oracle *o, const vms_err *pre)
{
    static char wb[] = "/tmp/vmsim-fuzz-XXXXXX";
    static int made;
    if (!made)
        made = mkdtemp(wb) != NULL ? 1 : -1;
    vms_config cfg;
    vms_err err = {0};
    vms_config_init(&cfg, "skylake", &err);
    cfg.machine.ram_bytes = UINT64_C(1) << 20;
    cfg.machine.ncores = 2;
    cfg.kernel.swap_bytes = UINT64_C(4) << 20;
    /* Without an oracle (the pre-pass failed) the replay runs under the default policy:
     * OPT without the future answers "never" for every page, and its tie-break (lowest
     * page first) then evicts the page just faulted in, over and over. */
    if (!pre && vms_config_set(&cfg, "policy", "opt", "fuzz", &err) != VMS_OK)
        bad_report("policy=opt", &err);
    vms_kernel_config kc = vms_config_kernel(&cfg);
    kc.writeback_dir = made > 0 ? wb : "/nonexistent-vmsim-fuzz";
    oracle_check oc = {0};
    if (!pre) {
        kc.next_use = checked_next_use;
        kc.next_use_ud = &oc;
    }
    vms_machine *m = NULL;
    vms_kernel *k = NULL;
    vms_replay *rp = NULL;
    vms_trace_reader *r = NULL;
    if (vms_machine_create(NULL, &cfg.machine, &m, &err) != VMS_OK ||
        vms_kernel_create(m, &kc, &k, &err) != VMS_OK)
        bad_report("boot", &err);
    vms_replay_opts ro = {.oracle = o};
    vms_status st = vms_trace_reader_open_mem(data, size, "fuzz", fmt, NULL, &r, &err);
    if (st == VMS_OK)
        st = vms_replay_create(k, &ro, &rp, &err);
    oc.slot = rp;
    if (st == VMS_OK)
        st = vms_replay_run(rp, r, &err);
    if (pre) { /* the pre-pass failed: the replay fails the same way */
        if (st != pre->status || strcmp(err.msg, pre->msg) != 0) {
            fprintf(stderr, "fuzz_oracle: pre-pass said \"%s\", the replay \"%s\"\n", pre->msg,
                    err.msg);
            abort();
        }
    } else if (st == VMS_OK) {
        if (vms_replay_get_stats(rp)->references != vms_replay_oracle_references(o)) {
            fprintf(stderr, "fuzz_oracle: replayed %llu references, the pre-pass saw %llu\n",
                    (unsigned long long)vms_replay_get_stats(rp)->references,
                    (unsigned long long)vms_replay_oracle_references(o));
            abort();
        }
        if (vms_replay_oracle_failed(o))
            bad_report("a spill file did not read back", &err);
        if (vms_kernel_check(k, &err) != VMS_OK)
            bad_report("kernel invariant after the replay", &err);
    } else if (st != VMS_ERR_NOMEM) {
        bad_report("replay failed", &err);
    }
    oc.slot = NULL;
    vms_replay_destroy(rp);
    vms_trace_reader_close(r);
    vms_kernel_destroy(k);
    vms_machine_destroy(m);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size == 0)
        return 0;
    vms_trace_format fmt = data[0] & 1 ? VMS_TRACE_LACKEY : VMS_TRACE_NATIVE;
    data++, size--;
    vms_trace_reader *r = NULL;
    vms_replay_oracle *o = NULL;
    vms_err err = {0};
    if (vms_trace_reader_open_mem(data, size, "fuzz", fmt, NULL, &r, &err) != VMS_OK) {
        if ((err.status != VMS_ERR_PARSE && err.status != VMS_ERR_UNSUPPORTED) ||
            !fuzz_msg_ok(err.msg))
            bad_report("bad failure report (open)", &err);
        return 0;
    }
    vms_status st = vms_replay_oracle_build(r, NULL, &o, &err);
    vms_trace_reader_close(r);
    if (st != VMS_OK && st != VMS_ERR_NOMEM &&
        ((st != VMS_ERR_PARSE && st != VMS_ERR_UNSUPPORTED) || !fuzz_msg_ok(err.msg)))
        bad_report("bad failure report (pre-pass)", &err);
    int small = 0;
    if (vms_trace_reader_open_mem(data, size, "fuzz", fmt, NULL, &r, &err) == VMS_OK) {
        small = small_enough(r);
        vms_trace_reader_close(r);
    }
    if (small && (st == VMS_OK || st == VMS_ERR_PARSE || st == VMS_ERR_UNSUPPORTED))
        replay(data, size, fmt, st == VMS_OK ? o : NULL, st == VMS_OK ? NULL : &err);
    vms_replay_oracle_destroy(o);
    return 0;
}
