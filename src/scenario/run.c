/*
 * run.c — executing a parsed scenario against a kernel, narrating each command.
 *
 * Each command becomes kernel calls through the public API (proc.h, mman.h); each access
 * is narrated with what it cost the model: the page faults it took and what they did
 * (zero page, anonymous zero-fill, COW copy or reuse, file read), and the TLB and walker
 * activity on the task's core. Outcomes are data: a failed expectation or an unexpected
 * fault is counted and reported, and the run goes on.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "scenario/scenario_impl.h"
#include "vmsim/core.h"
#include "vmsim/dma.h"
#include "vmsim/events.h"
#include "vmsim/frames.h"
#include "vmsim/mman.h"
#include "vmsim/proc.h"

struct scn_runner {
    const vms_scenario *sc;
    vms_kernel *k;
    vms_machine *m;
    vms_scenario_out out;
    void *ud;
    vms_scenario_result *res;
    vms_task **task;      /* per process name (NULL: not running) */
    uint64_t *label;      /* per label: its address */
    const scn_cmd *c;     /* the command being run */
    vms_strbuf line;      /* narration being built */
    vms_rng rng;          /* touch random=… */
    vms_iommu *io;        /* the machine's IOMMU, made by the first device or iommu line */
    struct sdev *devs;    /* per device name */
    vms_strbuf sd;        /* shootdown timelines of the current command */
    unsigned nsd;         /* … how many shootdowns it made, */
    uint64_t sd_more;     /* … and the initiator cycles of those not narrated */
    scn_vms *vms;         /* the scenario's virtual machines (vm.c), made by the first `vm` */
    struct tally *tl;     /* what the event tap told of the access being narrated, or NULL */
    vms_event_fn prev_fn; /* the observer installed before the run (chained), if any */
    void *prev_ud;
    int gvm; /* the command runs on the guest kernel of VM gvm - 1 (0: on the host's) */
};
typedef scn_runner runner;

#define SD_NARRATED 4 /* shootdowns narrated per command; the rest are summed up */
#define VM_BARS     UINT64_C(0xD0000000) /* register pages of devices assigned to VMs */

/* A device the scenario made: its hardware and the kernel's handle. */
typedef struct sdev {
    vms_nic *nic;
    vms_blk *blk;
    vms_dev *raw;
    vms_dev *dev;
    vms_dma_dev *dd; /* NULL: creation failed */
    int vm;          /* the VM it is assigned to, + 1 (0: the host's) */
} sdev;

/* ---- narration ---- */

__attribute__((format(printf, 2, 3))) static void say(runner *r, const char *fmt, ...)
{
    char buf[512], safe[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    vmsi_escape_ctl(buf, safe, sizeof safe); /* echo texts and names come from the file */
    vms_strbuf_append(&r->line, safe, strlen(safe));
}

static void flush(runner *r, bool is_error)
{
    if (r->out && r->line.len)
        r->out(r->ud, is_error, vms_strbuf_str(&r->line));
    r->line.len = 0;
    if (r->line.data)
        r->line.data[0] = '\0';
}

/* Report a failure of the current command on the error stream: "file:line: msg". */
__attribute__((format(printf, 2, 3))) static void complain(runner *r, const char *fmt, ...)
{
    flush(r, false);
    char buf[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    say(r, "%s:%u: %s\n", r->sc->name, r->c->line, buf);
    flush(r, true);
}

/* Append up to 48 bytes of data as "text" (when printable) or 0x hex. */
static void say_data(runner *r, const uint8_t *d, size_t n)
{
    size_t shown = n < 48 ? n : 48;
    bool text = true;
    for (size_t i = 0; i < shown; i++)
        text &= d[i] >= 0x20 && d[i] < 0x7f && d[i] != '"' && d[i] != '\\';
    if (text) {
        say(r, "\"%.*s\"", (int)shown, (const char *)d);
    } else {
        say(r, "0x");
        for (size_t i = 0; i < shown; i++)
            say(r, "%02x", d[i]);
    }
    if (shown < n)
        say(r, "… (%zu bytes)", n);
}

/*
 * What an access did, as the event tap (events.h) tells it while the access runs: the
 * page faults and how the kernel resolved them, reclaim, the TLB lookups and walks on
 * the task's core, and the IOMMU's decisions for a device's DMA. The runner's observer
 * adds to the tally the command installs (r->tl), and hands every event to the observer
 * that was there before the run.
 */
typedef struct tally {
    int core;         /* the task's core: lookups and walks elsewhere are not its */
    vms_tlb_level l1; /* the L1 TLB of the access kind */
    uint64_t faults;  /* page faults counted (fault_resolved) */
    uint64_t how[VMS_EV_NHOW];
    uint64_t major, segv, sigbus, fault_around, oom_kills;
    uint64_t swap_ins, swap_outs, file_dropped;
    uint64_t l1_hits, l1_misses, l2_hits, l2_misses, walks, refs;
    uint64_t io_bypassed, io_translated, io_hits, io_walks, io_refs;
} tally;

static void tally_fault(tally *t, const vms_event *e)
{
    t->faults++;
    for (unsigned i = 0; i < VMS_EV_NHOW; i++)
        t->how[i] += e->fault_resolved.how >> i & 1;
    t->major += e->fault_resolved.result == VMS_EV_FAULT_MAJOR;
    t->segv += e->fault_resolved.result == VMS_EV_FAULT_SEGV;
    t->sigbus += e->fault_resolved.result == VMS_EV_FAULT_SIGBUS;
    t->fault_around += e->fault_resolved.fault_around;
}

static void tally_hw(tally *t, const vms_event *e)
{
    if (e->core != t->core)
        return;
    if (e->type == VMS_EV_TLB_LOOKUP && e->tlb_lookup.level == t->l1) {
        t->l1_hits += e->tlb_lookup.hit;
        t->l1_misses += !e->tlb_lookup.hit;
    } else if (e->type == VMS_EV_TLB_LOOKUP && e->tlb_lookup.level == VMS_TLB_L2) {
        t->l2_hits += e->tlb_lookup.hit;
        t->l2_misses += !e->tlb_lookup.hit;
    } else if (e->type == VMS_EV_WALK) {
        t->walks++;
        t->refs += e->walk.refs;
    }
}

/* The runner's observer. */
static void on_event(void *ud, const vms_event *e)
{
    runner *r = ud;
    if (r->prev_fn)
        r->prev_fn(r->prev_ud, e);
    tally *t = r->tl;
    if (!t)
        return;
    switch (e->type) {
    case VMS_EV_FAULT_RESOLVED:
        tally_fault(t, e);
        break;
    case VMS_EV_OOM_KILL:
        t->oom_kills++;
        break;
    case VMS_EV_SWAP:
        t->swap_ins += !e->swap.out && !e->swap.error;
        t->swap_outs += e->swap.out && !e->swap.error;
        break;
    case VMS_EV_RECLAIM:
        t->file_dropped += !e->reclaim.anon;
        break;
    case VMS_EV_IOMMU:
        t->io_bypassed += e->iommu.mode == VMS_EV_IOMMU_OFF;
        t->io_translated += e->iommu.mode != VMS_EV_IOMMU_OFF;
        t->io_hits += e->iommu.hit;
        t->io_walks += e->iommu.walked; /* every IOTLB miss walks */
        t->io_refs += e->iommu.refs;
        break;
    default:
        tally_hw(t, e);
        break;
    }
}

/* Start tallying an access of kind by task (NULL: none, a device's DMA) into *t. */
static void tally_start(runner *r, tally *t, vms_task *task, vms_access_kind kind)
{
    memset(t, 0, sizeof *t);
    t->core = -2;
    if (task) {
        vms_task_info ti;
        vms_task_get_info(task, &ti);
        t->core = (int)ti.core;
    }
    t->l1 = kind == VMS_ACC_EXEC ? VMS_TLB_L1I : VMS_TLB_L1D;
    r->tl = t;
}

static void tally_stop(runner *r)
{
    r->tl = NULL;
}

/* Narrate a finished access's tally: faults by kind, reclaim, TLB, walks. */
static void say_tally(runner *r, const tally *t, vms_access_kind kind)
{
    /* Each kind in this order, with how many faults (or pages) had it. */
    const struct {
        uint64_t n;
        const char *what;
    } kinds[] = {
        {t->how[0], "zero page mapped"},                   /* VMS_EV_HOW_ZERO_PAGE */
        {t->how[1], "anonymous page zero-filled"},         /* _ANON */
        {t->how[2], "COW copy"},                           /* _COW_COPY */
        {t->how[3], "COW reuse"},                          /* _COW_REUSE */
        {t->how[4], "private copy of a file page"},        /* _PRIVATE_COPY */
        {t->major - t->swap_ins, "major: read from file"}, /* swap-ins told apart: */
        {t->swap_ins, "major: swap-in"},                   /* every page read from swap */
        {t->how[7], "from the swap cache"},                /* _SWAPCACHE */
        {t->fault_around, "pages mapped by fault-around"},
        {t->how[10], "huge page"},  /* _THP */
        {t->how[9], "stack grown"}, /* _STACK */
        {t->how[8], "spurious"},    /* _SPURIOUS */
        {t->segv, "SIGSEGV"},
        {t->sigbus, "SIGBUS"},
        {t->oom_kills, "out of memory"},
    };
    _Static_assert(VMS_EV_HOW_ZERO_PAGE == 1 << 0 && VMS_EV_HOW_ANON == 1 << 1 &&
                       VMS_EV_HOW_COW_COPY == 1 << 2 && VMS_EV_HOW_COW_REUSE == 1 << 3 &&
                       VMS_EV_HOW_PRIVATE_COPY == 1 << 4 && VMS_EV_HOW_SWAPCACHE == 1 << 7 &&
                       VMS_EV_HOW_SPURIOUS == 1 << 8 && VMS_EV_HOW_STACK == 1 << 9 &&
                       VMS_EV_HOW_THP == 1 << 10 && VMS_EV_HOW_SWAPBACKED == 1 << 12,
                   "the how[] indexes above");
    if (t->faults) {
        say(r, "; %" PRIu64 " page fault%s (", t->faults, t->faults > 1 ? "s" : "");
        bool first = true;
        for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
            if (!kinds[i].n)
                continue;
            say(r, "%s%s", first ? "" : ", ", kinds[i].what);
            if (kinds[i].n > 1)
                say(r, " x%" PRIu64, kinds[i].n);
            first = false;
        }
        /* No category: the page was in memory (the page cache, the swap cache), unless a
         * shared-memory page was made, which a first touch of shm does (zero-filled). */
        say(r, "%s)",
            !first       ? ""
            : t->how[12] ? "minor: new shared-memory page zero-filled"
                         : "minor: page already in memory");
    }
    if (t->swap_outs || t->file_dropped)
        say(r, "; reclaim: %" PRIu64 " page%s swapped out, %" PRIu64 " file page%s dropped",
            t->swap_outs, t->swap_outs == 1 ? "" : "s", t->file_dropped,
            t->file_dropped == 1 ? "" : "s");
    const char *l1 = kind == VMS_ACC_EXEC ? "l1i" : "l1d";
    say(r, "; TLB %s %" PRIu64 " hit %" PRIu64 " miss", l1, t->l1_hits, t->l1_misses);
    if (t->l2_hits || t->l2_misses)
        say(r, ", l2 %" PRIu64 " hit %" PRIu64 " miss", t->l2_hits, t->l2_misses);
    if (t->walks)
        say(r, "; %" PRIu64 " walk%s, %" PRIu64 " entr%s read", t->walks, t->walks > 1 ? "s" : "",
            t->refs, t->refs == 1 ? "y" : "ies");
}

/* ---- operands ---- */

static uint64_t addr_of(runner *r, const scn_addr *a)
{
    return a->label >= 0 ? r->label[a->label] + a->value : a->value;
}

static const char *pname(runner *r, int idx)
{
    return r->sc->names[idx];
}

/* The running task for a process operand, or NULL after complaining. */
static vms_task *task_of(runner *r, int idx)
{
    vms_task *t = r->task[idx];
    if (!t) {
        complain(r, "process '%s' is not running", pname(r, idx));
        r->res->errors++;
        return NULL;
    }
    return t;
}

/* Forget every scenario name bound to a task of process pid (but keep `except`). */
static void forget_pid(runner *r, int pid, int except)
{
    for (size_t i = 0; i < r->sc->nnames; i++)
        if ((int)i != except && r->task[i] && vms_task_pid(r->task[i]) == pid)
            r->task[i] = NULL;
}

/* Settle an expectation about a system call's success. */
static void settle_call(runner *r, vms_status st, const vms_err *err)
{
    const scn_cmd *c = r->c;
    if (st == VMS_OK) {
        say(r, "\n");
        flush(r, false);
        if (c->expect == EXP_ERROR) {
            complain(r, "expect failed: expected the call to fail, it succeeded");
            r->res->expects_failed++;
        } else if (c->expect == EXP_OK)
            r->res->expects_passed++;
        return;
    }
    say(r, " -> error: %s\n", err->msg);
    flush(r, false);
    if (c->expect == EXP_ERROR) {
        r->res->expects_passed++;
    } else if (c->expect == EXP_OK) {
        complain(r, "expect failed: expected success, got: %s", err->msg);
        r->res->expects_failed++;
    } else {
        complain(r, "%s", err->msg);
        r->res->errors++;
    }
}

/* ---- commands ---- */

vms_status vmsi_scn_run_procs(runner *r, vms_task *t)
{
    const scn_cmd *c = r->c;
    vms_err err = {0};
    vms_status st = VMS_OK;
    t = NULL; /* not given (needs_task is off): the command names its process */
    switch (c->op) {
    case OP_SPAWN:
        st = vms_proc_spawn(r->k, pname(r, c->proc), c->core, &r->task[c->proc], &err);
        t = r->task[c->proc];
        say(r, "spawn %s", pname(r, c->proc));
        if (st == VMS_OK)
            say(r, " -> pid %d on core %u", vms_task_pid(t), c->core);
        break;
    case OP_FORK:
    case OP_THREAD:
        if (!(t = task_of(r, c->proc)))
            return VMS_OK;
        st = c->op == OP_FORK ? vms_proc_fork(r->k, t, &r->task[c->proc2], &err)
                              : vms_proc_clone_thread(r->k, t, c->core, &r->task[c->proc2], &err);
        say(r, "%s %s %s", c->op == OP_FORK ? "fork" : "thread", pname(r, c->proc),
            pname(r, c->proc2));
        if (st == VMS_OK)
            say(r, " -> pid %d tid %d", vms_task_pid(r->task[c->proc2]),
                vms_task_tid(r->task[c->proc2]));
        break;
    case OP_EXEC:
        if (!(t = task_of(r, c->proc)))
            return VMS_OK;
        forget_pid(r, vms_task_pid(t), c->proc);
        if (c->path < 0) {
            st = vms_proc_exec(r->k, t, pname(r, c->proc), &err);
            say(r, "exec %s -> a fresh address space", pname(r, c->proc));
            break;
        }
        {
            const char *arg = r->sc->strs[c->path];
            char path[2048];
            snprintf(path, sizeof path, arg[0] == '/' ? "%s%s" : "%s/%s",
                     arg[0] == '/' ? "" : r->sc->dir, arg);
            vms_exec_info xi;
            st = vms_proc_exec_elf(r->k, t, path, NULL, NULL, &xi, &err);
            if (st == VMS_OK) {
                say(r,
                    "exec %s %s -> %u segments mapped from the file, entry 0x%" PRIx64
                    "%s, stack at 0x%" PRIx64,
                    pname(r, c->proc), arg, xi.segments, xi.entry,
                    xi.interp_base ? " (the interpreter's)" : "", xi.sp);
                if (c->def_label >= 0) {
                    r->label[c->def_label] = xi.entry;
                    say(r, " as %s", r->sc->labels[c->def_label]);
                }
            }
        }
        break;
    case OP_EXIT: {
        if (!(t = r->task[c->proc])) {
            say(r, "exit %s (not running)\n", pname(r, c->proc));
            flush(r, false);
            return VMS_OK;
        }
        int pid = vms_task_pid(t);
        forget_pid(r, pid, -1); /* before the handles become invalid */
        vms_proc_exit(r->k, t);
        say(r, "exit %s (pid %d): every frame returned", pname(r, c->proc), pid);
        break;
    }
    case OP_CORE:
        if (!(t = task_of(r, c->proc)))
            return VMS_OK;
        st = vms_task_set_core(r->k, t, c->core, &err);
        say(r, "core %s -> %u", pname(r, c->proc), c->core);
        break;
    case OP_AFFINITY: {
        uint64_t mask[VMS_MAX_CORES / 64];
        const char *list = r->sc->strs[c->path];
        if (!(t = task_of(r, c->proc)))
            return VMS_OK;
        vmsi_scn_cores(list, strlen(list), mask);
        st = vms_task_set_affinity(r->k, t, mask, VMS_MAX_CORES, &err);
        vms_task_info ti;
        vms_task_get_info(t, &ti);
        say(r, "affinity %s %s -> on core %u", pname(r, c->proc), list, ti.core);
        break;
    }
    default:
        break;
    }
    if (st == VMS_ERR_NOMEM)
        return st;
    settle_call(r, st, &err);
    return VMS_OK;
}

/* A length as the scenario would write it: 64K, 2M, 4097. */
static void say_len(runner *r, uint64_t len)
{
    static const char units[] = "KMGT";
    int u = -1;
    while (u < 3 && len && (len & 1023) == 0) {
        len >>= 10;
        u++;
    }
    if (u < 0)
        say(r, "%" PRIu64, len);
    else
        say(r, "%" PRIu64 "%c", len, units[u]);
}

static const char *prot_str(unsigned prot)
{
    static const char *const s[8] = {"none", "r", "w", "rw", "x", "rx", "wx", "rwx"};
    return s[prot & 7];
}

/* Open the object an mmap names (file or shm); NULL for anonymous memory. */
static vms_status mmap_object(runner *r, vms_file **f, vms_err *err)
{
    const scn_cmd *c = r->c;
    *f = NULL;
    if (c->path < 0)
        return VMS_OK;
    const char *arg = r->sc->strs[c->path];
    if (c->shm)
        return vms_shm_open(r->k, arg, c->len, f, err);
    if (vms_hugetlbfs_is(r->k, arg)) /* a simulated file: open(O_CREAT|O_RDWR) */
        return vms_hugetlbfs_open(r->k, arg, true, f, err);
    char path[2048];
    if (arg[0] == '/')
        snprintf(path, sizeof path, "%s", arg);
    else
        snprintf(path, sizeof path, "%s/%s", r->sc->dir, arg);
    return vms_file_open(r->k, path, f, err);
}

vms_status vmsi_scn_run_mmap(runner *r, vms_task *t)
{
    const scn_cmd *c = r->c;
    vms_err err = {0};
    vms_file *f;
    uint64_t at = 0, addr = c->addr.is_auto ? 0 : addr_of(r, &c->addr);
    unsigned flags = c->flags;
    if (!c->addr.is_auto && !(flags & VMS_MAP_FIXED))
        flags |= VMS_MAP_FIXED_NOREPLACE;
    say(r, "mmap %s ", pname(r, c->proc));
    if (c->addr.is_auto)
        say(r, "auto");
    else
        say(r, "0x%" PRIx64, addr);
    say(r, " ");
    say_len(r, c->len);
    say(r, " %s %s%s%s", prot_str(c->prot),
        c->path < 0 ? "anon"
        : c->shm    ? "shm="
                    : "file=",
        c->path < 0 ? "" : r->sc->strs[c->path], flags & VMS_MAP_SHARED ? " shared" : " private");
    vms_status st = mmap_object(r, &f, &err);
    if (st == VMS_OK) {
        st = vms_sys_mmap(r->k, t, addr, c->len, c->prot, flags, f, 0, &at, &err);
        vms_file_close(r->k, f);
    }
    if (st == VMS_ERR_NOMEM)
        return st;
    if (st == VMS_OK) {
        say(r, " -> 0x%" PRIx64 "-0x%" PRIx64, at,
            at + ((c->len + VMS_PAGE_MASK) & ~VMS_PAGE_MASK));
        if (c->def_label >= 0) {
            r->label[c->def_label] = at;
            say(r, " as %s", r->sc->labels[c->def_label]);
        }
    }
    settle_call(r, st, &err);
    return VMS_OK;
}

vms_status vmsi_scn_run_range(runner *r, vms_task *t)
{
    static const char *const names[] = {
        [OP_MUNMAP] = "munmap",   [OP_MPROTECT] = "mprotect", [OP_MLOCK] = "mlock",
        [OP_MUNLOCK] = "munlock", [OP_MADVISE] = "madvise",   [OP_MSYNC] = "msync"};
    const scn_cmd *c = r->c;
    vms_err err = {0};
    uint64_t a = addr_of(r, &c->addr);
    vms_status st;
    say(r, "%s %s 0x%" PRIx64 " ", names[c->op], pname(r, c->proc), a);
    say_len(r, c->len);
    switch (c->op) {
    case OP_MUNMAP:
        st = vms_sys_munmap(r->k, t, a, c->len, &err);
        break;
    case OP_MPROTECT:
        say(r, " %s", prot_str(c->prot));
        st = vms_sys_mprotect(r->k, t, a, c->len, c->prot, &err);
        break;
    case OP_MLOCK:
        st = vms_sys_mlock(r->k, t, a, c->len, &err);
        break;
    case OP_MUNLOCK:
        st = vms_sys_munlock(r->k, t, a, c->len, &err);
        break;
    case OP_MADVISE:
        say(r, " %s",
            c->prot == VMS_MADV_HUGEPAGE     ? "hugepage"
            : c->prot == VMS_MADV_NOHUGEPAGE ? "nohugepage"
                                             : "dontneed");
        st = vms_sys_madvise(r->k, t, a, c->len, (int)c->prot, &err);
        break;
    default:
        st = vms_sys_msync(r->k, t, a, c->len, VMS_MS_SYNC, &err);
        break;
    }
    if (st == VMS_ERR_NOMEM)
        return st;
    settle_call(r, st, &err);
    return VMS_OK;
}

vms_status vmsi_scn_run_brk(runner *r, vms_task *t)
{
    vms_err err = {0};
    uint64_t want = addr_of(r, &r->c->addr), got = 0;
    vms_status st = vms_sys_brk(r->k, t, want, &got, &err);
    say(r, "brk %s 0x%" PRIx64 " -> 0x%" PRIx64, pname(r, r->c->proc), want, got);
    if (st == VMS_ERR_NOMEM)
        return st;
    settle_call(r, st, &err);
    return VMS_OK;
}

/* Settle an access's expectation once its outcome is known. */
static void settle_access(runner *r, vms_task *t, const vms_access_info *ai, const uint8_t *buf)
{
    const scn_cmd *c = r->c;
    const uint8_t *want = r->sc->pool ? r->sc->pool + c->data_off : NULL; /* NULL: no data */
    if (ai->outcome == VMS_ACCESS_OK) {
        if (c->op == OP_READ) {
            say(r, " -> ");
            say_data(r, buf, c->len);
        }
        if (c->expect == EXP_SEGV) {
            complain(r, "expect failed: expected SIGSEGV, the access succeeded");
            r->res->expects_failed++;
        } else if (c->expect == EXP_DATA &&
                   (c->data_len != c->len || memcmp(buf, want, c->len) != 0)) {
            flush(r, false);
            say(r, "%s:%u: expect failed: read %s 0x%" PRIx64 " %" PRIu64 ": expected ",
                r->sc->name, c->line, pname(r, c->proc), addr_of(r, &c->addr), c->len);
            say_data(r, want, c->data_len);
            say(r, ", got ");
            say_data(r, buf, c->len);
            say(r, "\n");
            flush(r, true);
            r->res->expects_failed++;
        } else if (c->expect != EXP_NONE) {
            r->res->expects_passed++;
        }
        return;
    }
    static const char *const what[] = {"", "SIGSEGV", "SIGBUS", "OOM kill", "not running"};
    say(r, " -> %s", what[ai->outcome]);
    if (ai->outcome == VMS_ACCESS_SEGV || ai->outcome == VMS_ACCESS_BUS)
        say(r, " at 0x%" PRIx64 " (error code 0x%x): process %s killed", ai->addr, ai->error_code,
            pname(r, c->proc));
    if (ai->outcome == VMS_ACCESS_SEGV && c->expect == EXP_SEGV) {
        r->res->expects_passed++;
        return;
    }
    if (c->expect != EXP_NONE) {
        complain(r, "expect failed: expected %s, got %s",
                 c->expect == EXP_SEGV   ? "SIGSEGV"
                 : c->expect == EXP_DATA ? "data"
                                         : "success",
                 what[ai->outcome]);
        r->res->expects_failed++;
    } else if (ai->outcome == VMS_ACCESS_DEAD) {
        complain(r, "process '%s' is not running", pname(r, c->proc));
        r->res->errors++;
    } else {
        r->res->unexpected_faults++;
    }
    (void)t;
}

/* A read longer than this (without `expect DATA`, whose data the line holds) is made as
 * consecutive accesses of this many bytes, like a program reading into one buffer in a
 * loop: host memory stays bounded whatever LEN the scenario names. */
#define READ_CHUNK (UINT64_C(64) << 10)

/* vms_proc_access of [va, va+len) in READ_CHUNK pieces into buf (READ_CHUNK bytes),
 * keeping the first bytes in buf; *ai adds up the pieces' faults and holds the outcome
 * of the last piece run (the first that did not complete). */
static vms_status read_streamed(runner *r, vms_task *t, uint64_t va, uint64_t len, uint8_t *buf,
                                vms_access_info *ai, vms_err *err)
{
    uint8_t *scratch = buf + READ_CHUNK;
    unsigned faults = 0, major = 0;
    for (uint64_t off = 0; off < len; off += READ_CHUNK) {
        size_t n = (size_t)(len - off < READ_CHUNK ? len - off : READ_CHUNK);
        vms_status st =
            vms_proc_access(r->k, t, va + off, VMS_ACC_READ, off ? scratch : buf, n, ai, err);
        faults += ai->faults;
        major += ai->major;
        ai->faults = faults;
        ai->major = major;
        if (st != VMS_OK || ai->outcome != VMS_ACCESS_OK)
            return st;
    }
    return VMS_OK;
}

vms_status vmsi_scn_run_access(runner *r, vms_task *t)
{
    const scn_cmd *c = r->c;
    const vms_allocator *a = r->sc->alloc;
    vms_access_kind kind = c->op == OP_WRITE  ? VMS_ACC_WRITE
                           : c->op == OP_READ ? VMS_ACC_READ
                                              : VMS_ACC_EXEC;
    size_t len = c->op == OP_WRITE ? c->data_len : (size_t)c->len;
    bool streamed = c->op == OP_READ && c->len > READ_CHUNK && c->expect != EXP_DATA;
    size_t blen = streamed ? 2 * READ_CHUNK : len; /* the head, then a scratch piece */
    uint8_t *buf = c->op == OP_WRITE ? r->sc->pool + c->data_off : vmsi_zalloc(a, blen);
    if (!buf)
        return VMS_ERR_NOMEM;
    uint64_t va = addr_of(r, &c->addr);
    say(r, "%s %s 0x%" PRIx64,
        c->op == OP_WRITE  ? "write"
        : c->op == OP_READ ? "read"
                           : "fetch",
        pname(r, c->proc), va);
    if (c->op == OP_WRITE) {
        say(r, " ");
        say_data(r, buf, len);
    } else if (c->op == OP_READ) {
        say(r, " %" PRIu64, c->len);
    }
    tally tl;
    tally_start(r, &tl, t, kind);
    vms_access_info ai;
    vms_err err = {0};
    vms_status st = streamed ? read_streamed(r, t, va, c->len, buf, &ai, &err)
                             : vms_proc_access(r->k, t, va, kind, buf, len, &ai, &err);
    tally_stop(r);
    if (st == VMS_OK) {
        settle_access(r, t, &ai, buf);
        say_tally(r, &tl, kind);
        say(r, "\n");
        flush(r, false);
    }
    if (c->op != OP_WRITE)
        vmsi_free(a, buf, blen);
    return st;
}

/* touch: sequential (every `step` bytes) or `count` random 8-byte accesses in the range.
 * Writes store the address itself (8 bytes, little-endian). Stops if the process dies. */
vms_status vmsi_scn_run_touch(runner *r, vms_task *t)
{
    const scn_cmd *c = r->c;
    uint64_t base = addr_of(r, &c->addr),
             n = c->count ? c->count : (c->len + c->step - 1) / c->step;
    say(r, "touch %s 0x%" PRIx64 " ", pname(r, c->proc), base);
    say_len(r, c->len);
    say(r, " %s: %" PRIu64 " %s accesses", vms_access_name(c->kind), n,
        c->count ? "random" : "sequential");
    tally tl;
    tally_start(r, &tl, t, c->kind);
    vms_access_info ai = {.outcome = VMS_ACCESS_OK};
    for (uint64_t i = 0; i < n && ai.outcome == VMS_ACCESS_OK; i++) {
        uint64_t off = c->count ? vms_rng_below(&r->rng, c->len > 8 ? c->len - 7 : 1) & ~UINT64_C(7)
                                : i * c->step;
        uint64_t va = base + off, word = va;
        size_t len = c->len - off < 8 ? (size_t)(c->len - off) : 8;
        vms_err err = {0};
        vms_status st = vms_proc_access(r->k, t, va, c->kind, &word, len, &ai, &err);
        if (st != VMS_OK) {
            tally_stop(r);
            return st;
        }
    }
    tally_stop(r);
    settle_access(r, t, &ai, NULL);
    say_tally(r, &tl, c->kind);
    say(r, "\n");
    flush(r, false);
    return VMS_OK;
}

/* ---- show ---- */

/* show_walk for a format other than x86-64's, in that format's names (format.h): the
 * root register, level names and decoded bits are the format's. */
static void show_walk_fmt(runner *r, const vms_pt_format *f, const vms_task_info *ti, uint64_t va)
{
    vms_bus *bus = vms_machine_bus(r->m);
    uint64_t table = ti->cr3 & ~(vms_fmt_table_bytes(f) - 1);
    say(r,
        "page walk of 0x%" PRIx64 " in %s (%s: table 0x%" PRIx64 ", ASID %u; read without "
        "hardware updates):\n",
        va, pname(r, r->c->proc), f->root_reg, table, (unsigned)(ti->cr3 & 0xFFF));
    for (unsigned l = f->levels; l >= 1; l--) {
        unsigned idx = vms_fmt_index(f, va, l);
        uint64_t pte = 0;
        if (vms_bus_read64(bus, vms_fmt_entry_pa(f, table, va, l), &pte) != VMS_OK) {
            say(r, "  %-7s table 0x%" PRIx64 ": bus error\n", f->level_name[l], table);
            return;
        }
        char bits[128];
        f->bits_str(pte, l, bits, sizeof bits);
        say(r, "  %-7s table 0x%09" PRIx64 " index %3u entry 0x%016" PRIx64 " %s\n",
            f->level_name[l], table, idx, pte, bits);
        vms_pte_info in;
        vms_fmt_decode(f, pte, l, &in);
        if (!in.present || in.leaf) {
            if (in.present) {
                uint64_t mask = (UINT64_C(1) << vms_fmt_level_shift(f, l)) - 1;
                say(r, "  -> physical 0x%" PRIx64 "\n", in.pa | (va & mask));
            }
            return;
        }
        table = in.pa;
    }
}

static void show_walk(runner *r, vms_task *t, uint64_t va)
{
    static const char *const lvl[] = {"", "PT", "PD", "PDPT", "PML4", "PML5"};
    vms_task_info ti;
    vms_task_get_info(t, &ti);
    vms_bus *bus = vms_machine_bus(r->m);
    const vms_regs *regs = vms_core_regs(vms_machine_core(r->m, ti.core));
    if (regs->fmt) {
        show_walk_fmt(r, regs->fmt, &ti, va);
        return;
    }
    unsigned levels = vms_regs_levels(regs);
    uint64_t table = ti.cr3 & VMS_CR3_ADDR_MASK;
    say(r, "page walk of 0x%" PRIx64 " in %s (CR3 0x%" PRIx64 ", read without setting A/D):\n", va,
        pname(r, r->c->proc), ti.cr3);
    for (unsigned l = levels; l >= 1; l--) {
        unsigned idx = vms_va_index(va, l);
        uint64_t pte = 0;
        if (vms_bus_read64(bus, table + 8u * idx, &pte) != VMS_OK) {
            say(r, "  %-4s table 0x%" PRIx64 ": bus error\n", lvl[l], table);
            return;
        }
        say(r, "  %-4s table 0x%09" PRIx64 " index %3u entry 0x%016" PRIx64 " %s%s%s%s%s%s%s\n",
            lvl[l], table, idx, pte, pte & VMS_PTE_P ? "P" : "not present",
            pte & VMS_PTE_RW ? " RW" : "", pte & VMS_PTE_US ? " US" : "",
            pte & VMS_PTE_A ? " A" : "", pte & VMS_PTE_D ? " D" : "",
            vms_pte_leaf(pte, l) && (pte & VMS_PTE_P) && l > 1 ? " PS" : "",
            pte & VMS_PTE_XD ? " XD" : "");
        if (!(pte & VMS_PTE_P) || vms_pte_leaf(pte, l)) {
            if (pte & VMS_PTE_P) {
                uint64_t mask = (UINT64_C(1) << vms_level_shift(l)) - 1;
                say(r, "  -> physical 0x%" PRIx64 "\n", (vms_pte_addr(pte) & ~mask) | (va & mask));
            }
            return;
        }
        table = vms_pte_addr(pte);
    }
}

static void show_tlb(runner *r)
{
    static const char *const names[] = {"l1i", "l1d", "l2"};
    vms_core *core = vms_machine_core(r->m, r->c->core);
    if (!core) {
        complain(r, "no core %u", r->c->core);
        r->res->errors++;
        return;
    }
    for (int l = 0; l < 3; l++) {
        vms_tlb *tlb = vms_core_tlb(core, (vms_tlb_level)l);
        if ((r->c->tlb_level >= 0 && r->c->tlb_level != l) || !tlb)
            continue;
        say(r, "TLB %s of core %u: %u of %u entries valid\n", names[l], r->c->core,
            vms_tlb_count(tlb), vms_tlb_capacity(tlb));
        vms_tlb_entry_info e;
        for (unsigned i = 0; vms_tlb_entry(tlb, i, &e); i++)
            say(r,
                "  set %3u way %2u  pcid %3u  va 0x%" PRIx64 " -> pa 0x%" PRIx64 " %s %s%s%s%s\n",
                e.set, e.way, (unsigned)(uint32_t)e.ctx, e.va, e.x.page_pa,
                vms_pgsize_name(e.x.size), e.x.rw ? "rw" : "r-", e.x.us ? " user" : " kernel",
                e.x.global ? " global" : "", e.x.dirty ? " dirty" : "");
    }
}

vms_status vmsi_scn_run_show(runner *r, vms_task *t)
{
    const scn_cmd *c = r->c;
    t = NULL; /* not given (needs_task is off): show may name a process */
    if (c->proc >= 0 && !(t = task_of(r, c->proc)))
        return VMS_OK;
    vms_strbuf *sb = &r->line;
    vms_status st = VMS_OK;
    switch (c->show) {
    case SHOW_MAPS:
        say(r, "maps of %s:\n", pname(r, c->proc));
        st = vms_proc_maps(r->k, t, sb);
        break;
    case SHOW_SMAPS:
        st = vms_proc_smaps(r->k, t, sb);
        break;
    case SHOW_MEMINFO:
        st = vms_kernel_meminfo(r->k, sb);
        break;
    case SHOW_VMSTAT:
        st = vms_kernel_vmstat(r->k, sb);
        break;
    case SHOW_STATS:
        say(r, "{");
        vms_machine_stats_json_members(r->m, sb);
        vms_kernel_stats_json_members(r->k, sb);
        say(r, "}\n");
        break;
    case SHOW_WALK:
        if (r->gvm) /* a guest process: its 2D walk */
            vmsi_scn_vm_show_walk(r->vms, r->gvm - 1, t, pname(r, c->proc), addr_of(r, &c->addr),
                                  sb);
        else
            show_walk(r, t, addr_of(r, &c->addr));
        break;
    case SHOW_TLB:
        show_tlb(r);
        break;
    case SHOW_SCHED:
        st = vms_sched_show(r->k, sb);
        break;
    case SHOW_KHUGEPAGED:
        st = vms_kernel_khugepaged_show(r->k, sb);
        break;
    case SHOW_BUDDYINFO:
        st = vms_frames_buddyinfo(vms_kernel_frames(r->k), sb);
        break;
    case SHOW_HUGEPAGES:
        st = vms_kernel_hugepages_show(r->k, sb);
        break;
    case SHOW_PAGETYPEINFO:
        st = vms_frames_pagetypeinfo(vms_kernel_frames(r->k), sb);
        break;
    case SHOW_PAGEMAP: {
        uint64_t va = addr_of(r, &c->addr) & ~VMS_PAGE_MASK, pm[64];
        if (!vms_task_alive(t)) { /* killed (an OOM kill, SIGBUS): no address space */
            complain(r, "process '%s' is not running", pname(r, c->proc));
            r->res->errors++;
            return VMS_OK;
        }
        size_t n = c->len < 64 ? (size_t)c->len : 64;
        st = vms_proc_pagemap(r->k, t, va, n, pm);
        for (size_t i = 0; st == VMS_OK && i < n; i++) {
            if (pm[i] & VMS_PM_SWAPPED) {
                say(r, "  0x%" PRIx64 ": swapped, slot %" PRIu64 "\n", va + i * VMS_PAGE_SIZE,
                    (pm[i] & VMS_PM_PFN_MASK) >> 5);
                continue;
            }
            say(r, "  0x%" PRIx64 ": %s%s%s pfn 0x%" PRIx64 "\n", va + i * VMS_PAGE_SIZE,
                pm[i] & VMS_PM_PRESENT ? "present" : "not present",
                pm[i] & VMS_PM_FILE ? " file/shared" : "",
                pm[i] & VMS_PM_EXCLUSIVE ? " exclusive" : "", pm[i] & VMS_PM_PFN_MASK);
        }
        break;
    }
    case SHOW_IOMMU:
        st = vms_dma_show(r->k, sb);
        break;
    case SHOW_DMESG:
        st = vms_kernel_dmesg(r->k, c->path >= 0 ? r->sc->strs[c->path] : NULL, sb);
        break;
    case SHOW_PROCS:
        for (unsigned i = 0; i < vms_proc_count(r->k); i++) {
            vms_task_info ti;
            vms_task_get_info(vms_proc_at(r->k, i), &ti);
            say(r, "  pid %d %-15s core %u pcid %u threads %u rss %" PRIu64 " pages%s\n", ti.pid,
                ti.name, ti.core, ti.pcid, ti.nthreads, vms_proc_rss(r->k, vms_proc_at(r->k, i)),
                ti.state == VMS_TASK_DEAD ? " (killed)" : "");
        }
        break;
    }
    flush(r, false);
    return st;
}

/* ---- devices and DMA ---- */

static vms_status need_iommu(runner *r, vms_err *err)
{
    if (r->io)
        return VMS_OK;
    vms_iommu_config ic;
    vms_iommu_config_default(&ic);
    return vms_iommu_create(r->m, &ic, &r->io, err);
}

/* Settle an outcome that is "ok" or "blocked" (a DMA, a packet). */
static void settle_dma(runner *r, bool ok)
{
    const scn_cmd *c = r->c;
    if ((c->expect == EXP_OK && ok) || (c->expect == EXP_BLOCKED && !ok)) {
        r->res->expects_passed++;
    } else if (c->expect == EXP_OK || c->expect == EXP_BLOCKED) {
        complain(r, "expect failed: expected the DMA to be %s, it was %s",
                 c->expect == EXP_OK ? "allowed" : "blocked", ok ? "allowed" : "blocked");
        r->res->expects_failed++;
    }
}

/* The attached device of a command, or NULL after complaining. */
static sdev *dev_of(runner *r)
{
    sdev *d = &r->devs[r->c->dev];
    if (!d->dd) {
        complain(r, "device '%s' is not attached", r->sc->devs[r->c->dev]);
        r->res->errors++;
        return NULL;
    }
    return d;
}

vms_status vmsi_scn_run_iommu(runner *r, vms_task *t)
{
    (void)t;
    vms_err err = {0};
    vms_status st = need_iommu(r, &err);
    say(r, "iommu %s", r->c->flag ? "on" : "off");
    if (st == VMS_OK)
        st = vms_dma_iommu_enable(r->k, r->io, r->c->flag, &err);
    if (st == VMS_OK)
        say(r, ": DMA is %s",
            r->c->flag ? "translated and checked by the IOMMU"
                       : "no longer translated: device addresses are physical");
    if (st == VMS_ERR_NOMEM)
        return st;
    settle_call(r, st, &err);
    return VMS_OK;
}

/* The device of a `device` line: its hardware, then (… vm VM) its assignment to the VM,
 * then the driver of the kernel that owns it (the host's, or the VM's guest kernel). */
static vms_status make_device(runner *r, sdev *d, const vms_dev_config *dc, vms_iommu *io,
                              vms_err *err)
{
    const scn_cmd *c = r->c;
    vms_dma_mode mode = c->devmode == 1 ? VMS_DMA_PASSTHROUGH : VMS_DMA_TRANSLATE;
    vms_status st;
    if (c->devkind == 0) {
        vms_nic_config nc;
        vms_nic_config_default(&nc);
        nc.dev = *dc;
        st = vms_nic_create(r->m, io, &nc, &d->nic, err);
        d->dev = st == VMS_OK ? vms_nic_dev(d->nic) : NULL;
    } else if (c->devkind == 1) {
        char path[2048];
        vmsi_scenario_path(r->sc, r->sc->strs[c->path], path, sizeof path);
        if (c->flag && !vmsi_scenario_may_write(r->sc, path))
            return vmsi_err(err, VMS_ERR_INVAL,
                            "a scenario may not write the host file %s (allow it with "
                            "--writable)",
                            path);
        vms_blk_config bc;
        vms_blk_config_default(&bc);
        bc.dev = *dc;
        bc.path = path;
        bc.read_only = !c->flag;
        st = vms_blk_create(r->m, io, &bc, &d->blk, err);
        d->dev = st == VMS_OK ? vms_blk_dev(d->blk) : NULL;
    } else {
        st = vms_dev_create(r->m, io, dc, &d->raw, err);
        d->dev = d->raw;
    }
    if (st != VMS_OK)
        return st;
    vms_dev_set_coherent(d->dev, !c->noncoherent);
    vms_kernel *k = r->k;
    if (c->vm >= 0 && !(k = vmsi_scn_vm_assign(r->vms, r->k, c->vm, d->dev, c->posted, err)))
        return err->status ? err->status : VMS_ERR_INVAL;
    if (c->vm >= 0)
        d->vm = c->vm + 1;
    return c->devkind == 0   ? vms_dma_attach_nic(k, d->nic, mode, &d->dd, err)
           : c->devkind == 1 ? vms_dma_attach_blk(k, d->blk, mode, &d->dd, err)
                             : vms_dma_attach(k, d->raw, mode, &d->dd, err);
}

vms_status vmsi_scn_run_device(runner *r, vms_task *t)
{
    (void)t;
    static const char *const kinds[] = {"nic", "blk", "raw"};
    const scn_cmd *c = r->c;
    vms_err err = {0};
    sdev *d = &r->devs[c->dev];
    unsigned n = (unsigned)c->dev;
    /* A VM's device has its register page to itself (VFIO maps page-aligned BARs into the
     * VM), from 0xD000_0000; the host's share the first page of the window. */
    vms_dev_config dc = {r->sc->devs[c->dev], vms_bdf_make(0, 3 + n % 29, 0),
                         c->vm >= 0 ? VM_BARS + ((uint64_t)n << VMS_PAGE_SHIFT)
                                    : VMS_DEVICE_WINDOW_BASE + 0x100 * (uint64_t)n};
    say(r, "device %s %s: %02x:%02x.%u", kinds[c->devkind], dc.name, vms_bdf_bus(dc.bdf),
        vms_bdf_dev(dc.bdf), vms_bdf_fn(dc.bdf));
    vms_status st = c->devmode == 2 ? VMS_OK : need_iommu(r, &err);
    if (st == VMS_OK)
        st = make_device(r, d, &dc, c->devmode == 2 ? NULL : r->io, &err);
    if (st == VMS_OK && c->vm >= 0) {
        vms_iommu_context ctx = {0};
        vms_iommu_get_context(r->io, dc.bdf, &ctx);
        if (c->devkind != 2)
            say(r, ", registers at 0x%" PRIx64 " (mapped into the VM)", dc.mmio_base);
        say(r,
            ", assigned to vm %s: %s %u on the VM's own GPA -> HPA mappings "
            "(tables at 0x%" PRIx64 "); the guest's driver sees no IOMMU (DMA to "
            "guest-physical addresses); interrupts %s",
            r->sc->vmnames[c->vm],
            vms_iommu_context_format(r->io, dc.bdf)
                ? "SMMU stage 2 context (Stage 2 shared), S2VMID"
                : "IOMMU domain",
            ctx.did, ctx.root,
            c->posted ? "posted to the vCPU (no exit)" : "by exit and injection");
        if (c->devkind == 0)
            say(r, ", receive ring of 256 descriptors");
    } else if (st == VMS_OK) {
        if (c->devkind != 2)
            say(r, ", registers at 0x%" PRIx64, dc.mmio_base);
        unsigned did = vms_dma_domain(d->dd);
        if (did && vms_dma_translated(d->dd))
            say(r, ", IOMMU domain %u", did);
        else
            say(r, ", %s",
                c->devmode == 2             ? "not behind the IOMMU"
                : vms_dma_translated(d->dd) ? "translated"
                : c->devmode == 1           ? "IOMMU passthrough"
                                            : "IOMMU off");
        if (c->devkind == 0)
            say(r, ", receive ring of 256 descriptors");
        if (c->noncoherent)
            say(r, ", non-coherent DMA (no cache snooping)");
    } else {
        vms_kernel *k = d->vm ? vmsi_scn_vm_kernel_at(r->vms, d->vm - 1) : r->k;
        vms_dma_detach(k, d->dd);
        d->dd = NULL;
    }
    if (st == VMS_ERR_NOMEM)
        return st;
    settle_call(r, st, &err);
    return VMS_OK;
}

static vms_status do_dma_map(runner *r)
{
    static const char *const dirs[] = {"rw", "read", "write"};
    const scn_cmd *c = r->c;
    sdev *d = dev_of(r);
    vms_task *t = d ? task_of(r, c->proc) : NULL;
    if (!t)
        return VMS_OK;
    vms_err err = {0};
    uint64_t va = addr_of(r, &c->addr), addr = 0;
    say(r, "dma map %s %s 0x%" PRIx64 " ", r->sc->devs[c->dev], pname(r, c->proc), va);
    say_len(r, c->len);
    say(r, " %s", dirs[c->dir]);
    uint64_t pins = vms_dma_get_stats(r->k)->pins;
    vms_status st = vms_dma_map(r->k, d->dd, t, va, c->len, (vms_dma_dir)c->dir, &addr, &err);
    if (st == VMS_OK) {
        say(r, " -> %s 0x%" PRIx64 ", %" PRIu64 " page%s pinned",
            vms_dma_translated(d->dd) ? "iova" : "physical", addr,
            vms_dma_get_stats(r->k)->pins - pins,
            vms_dma_get_stats(r->k)->pins - pins == 1 ? "" : "s");
        vms_dma_seg seg[2];
        size_t n = vms_dma_segments(d->dd, addr, seg, 2);
        if (n > 1)
            say(r, " in %zu physical segments", n);
        if (c->def_label >= 0) {
            r->label[c->def_label] = addr;
            say(r, " as %s", r->sc->labels[c->def_label]);
        }
    }
    if (st == VMS_ERR_NOMEM)
        return st;
    settle_call(r, st, &err);
    return VMS_OK;
}

static vms_status do_dma_sync(runner *r)
{
    sdev *d = dev_of(r);
    if (!d)
        return VMS_OK;
    vms_err err = {0};
    uint64_t addr = addr_of(r, &r->c->addr), lines = 0;
    say(r, "dma sync %s 0x%" PRIx64 " ", r->sc->devs[r->c->dev], addr);
    say_len(r, r->c->len);
    say(r, " %s", r->c->flag ? "cpu" : "device");
    vms_status st = r->c->flag
                        ? vms_dma_sync_for_cpu(r->k, d->dd, addr, r->c->len, &lines, &err)
                        : vms_dma_sync_for_device(r->k, d->dd, addr, r->c->len, &lines, &err);
    if (st == VMS_OK)
        say(r, " -> %s", !vms_dev_coherent(d->dev) ? "" : "coherent device: nothing to do");
    if (st == VMS_OK && !vms_dev_coherent(d->dev))
        say(r, "%" PRIu64 " cache line%s %s", lines, lines == 1 ? "" : "s",
            r->c->flag ? "invalidated" : "cleaned");
    if (st == VMS_ERR_NOMEM)
        return st;
    settle_call(r, st, &err);
    return VMS_OK;
}

static vms_status do_dma_unmap(runner *r)
{
    sdev *d = dev_of(r);
    if (!d)
        return VMS_OK;
    vms_err err = {0};
    uint64_t addr = addr_of(r, &r->c->addr), unpins = vms_dma_get_stats(r->k)->unpins;
    say(r, "dma unmap %s 0x%" PRIx64, r->sc->devs[r->c->dev], addr);
    bool tr = vms_dma_translated(d->dd);
    vms_status st = vms_dma_unmap(r->k, d->dd, addr, &err);
    if (st == VMS_OK)
        say(r, " -> %s%" PRIu64 " page%s unpinned",
            tr ? "IOMMU entries cleared, IOTLB invalidated, " : "",
            vms_dma_get_stats(r->k)->unpins - unpins,
            vms_dma_get_stats(r->k)->unpins - unpins == 1 ? "" : "s");
    if (st == VMS_ERR_NOMEM)
        return st;
    settle_call(r, st, &err);
    return VMS_OK;
}

/* Narrate the IOMMU's decisions the tally holds (a device's DMA). */
static void say_iommu(runner *r, const tally *t)
{
    if (!r->io)
        return;
    if (!vms_iommu_enabled(r->io) || !t->io_translated) {
        if (t->io_bypassed)
            say(r, "; IOMMU off: %" PRIu64 " request%s untranslated", t->io_bypassed,
                t->io_bypassed == 1 ? "" : "s");
        return;
    }
    say(r, "; IOTLB %" PRIu64 " hit %" PRIu64 " miss", t->io_hits, t->io_walks);
    if (t->io_walks)
        say(r, "; %" PRIu64 " walk%s, %" PRIu64 " entries read", t->io_walks,
            t->io_walks == 1 ? "" : "s", t->io_refs);
}

static vms_status do_dma_raw(runner *r)
{
    const scn_cmd *c = r->c;
    sdev *d = dev_of(r);
    if (!d)
        return VMS_OK;
    const vms_allocator *a = r->sc->alloc;
    size_t len = c->flag ? c->data_len : (size_t)c->len;
    uint8_t *buf = vmsi_zalloc(a, len);
    if (!buf)
        return VMS_ERR_NOMEM;
    uint64_t addr = addr_of(r, &c->addr);
    say(r, "dma %s 0x%" PRIx64 " %s ", r->sc->devs[c->dev], addr, c->flag ? "write" : "read");
    if (c->flag) {
        memcpy(buf, r->sc->pool + c->data_off, len);
        say_data(r, buf, len);
    } else {
        say(r, "%zu", len);
    }
    tally tl; /* the IOMMU's decisions for the device's requests */
    tally_start(r, &tl, NULL, VMS_ACC_READ);
    vms_dma_result res =
        vms_dev_dma(d->dev, addr, buf, len, c->flag ? VMS_ACC_WRITE : VMS_ACC_READ);
    tally_stop(r);
    if (res.ok && !c->flag) {
        say(r, " -> ");
        say_data(r, buf, len);
    } else if (res.ok) {
        say(r, " -> %zu bytes written", len);
    } else if (res.fault.reason != VMS_IOMMU_OK) {
        say(r, " -> BLOCKED by the IOMMU at 0x%" PRIx64 " (%s); %zu bytes moved", res.fault.iova,
            vms_iommu_reason_str(res.fault.reason), res.done);
    } else {
        say(r, " -> bus error at 0x%" PRIx64 "; %zu bytes moved", res.pa, res.done);
    }
    say_iommu(r, &tl);
    say(r, "\n");
    flush(r, false);
    vms_dma_poll_faults(r->k);
    if (c->expect == EXP_DATA) {
        bool same = res.ok && c->data_len == len && !memcmp(buf, r->sc->pool + c->data_off, len);
        if (same)
            r->res->expects_passed++;
        else {
            complain(r, "expect failed: the DMA read other data");
            r->res->expects_failed++;
        }
    } else {
        settle_dma(r, res.ok);
    }
    vmsi_free(a, buf, len);
    return VMS_OK;
}

vms_status vmsi_scn_run_nic(runner *r, vms_task *t)
{
    (void)t;
    const scn_cmd *c = r->c;
    sdev *d = dev_of(r);
    if (!d)
        return VMS_OK;
    vms_err err = {0};
    if (c->op == OP_NIC_POST) {
        uint64_t addr = addr_of(r, &c->addr);
        unsigned nb = 0;
        say(r, "nic post %s 0x%" PRIx64, r->sc->devs[c->dev], addr);
        vms_status st = vms_dma_nic_post(r->k, d->dd, addr, &nb, &err);
        if (st == VMS_OK)
            say(r, " -> %u receive buffer%s of 256 bytes on the ring", nb, nb == 1 ? "" : "s");
        settle_call(r, st, &err);
        return VMS_OK;
    }
    const vms_dma_dev_stats *ds = vms_dma_dev_get_stats(d->dd);
    uint64_t pk = ds->rx_packets, irq = ds->irqs;
    say(r, "nic receive %s ", r->sc->devs[c->dev]);
    say_data(r, r->sc->pool + c->data_off, c->data_len);
    tally tl; /* the IOMMU's decisions for the device's requests */
    tally_start(r, &tl, NULL, VMS_ACC_READ);
    vms_status st = vms_nic_receive(d->nic, r->sc->pool + c->data_off, c->data_len, &err);
    tally_stop(r);
    if (st == VMS_ERR_NOMEM)
        return st;
    bool ok = ds->rx_packets > pk;
    if (ok)
        say(r, " -> %" PRIu64 " bytes at dma 0x%" PRIx64, ds->last_rx_len, ds->last_rx_addr);
    else if (vms_nic_rx_queued(d->nic))
        say(r, " -> queued (no receive buffer posted)");
    else
        say(r, " -> dropped");
    if (ds->irqs > irq)
        say(r, ", interrupt on core 0");
    say_iommu(r, &tl);
    say(r, "\n");
    flush(r, false);
    vms_dma_poll_faults(r->k);
    settle_dma(r, ok);
    return VMS_OK;
}

vms_status vmsi_scn_run_blk(runner *r, vms_task *t)
{
    (void)t;
    const scn_cmd *c = r->c;
    sdev *d = dev_of(r);
    if (!d)
        return VMS_OK;
    vms_err err = {0};
    uint64_t addr = addr_of(r, &c->addr);
    uint32_t status = 0;
    say(r, "blk %s %s sectors %" PRIu64 "-%" PRIu64 " %s 0x%" PRIx64, c->flag ? "write" : "read",
        r->sc->devs[c->dev], c->step, c->step + c->count - 1, c->flag ? "from" : "into", addr);
    uint64_t irq = vms_dma_dev_get_stats(d->dd)->irqs;
    vms_status st =
        vms_dma_blk_rw(r->k, d->dd, c->flag, c->step, (uint32_t)c->count, addr, &status, &err);
    say(r, " -> STATUS 0x%x", status);
    if (vms_dma_dev_get_stats(d->dd)->irqs > irq)
        say(r, ", interrupt on core 0");
    settle_call(r, st, &err);
    return VMS_OK;
}

vms_status vmsi_scn_run_set(runner *r, vms_task *t)
{
    (void)r;
    (void)t;
    return VMS_OK;
}

vms_status vmsi_scn_run_echo(runner *r, vms_task *t)
{
    (void)t;
    say(r, "%s\n", r->sc->strs[r->c->path]);
    flush(r, false);
    return VMS_OK;
}

/* dma map | unmap | sync | the raw engine (the op parse chose). */
vms_status vmsi_scn_run_dma(runner *r, vms_task *t)
{
    (void)t;
    switch (r->c->op) {
    case OP_DMA_MAP:
        return do_dma_map(r);
    case OP_DMA_UNMAP:
        return do_dma_unmap(r);
    case OP_DMA_SYNC:
        return do_dma_sync(r);
    default:
        return do_dma_raw(r);
    }
}

/* A `vm` line, or (guest) a command on a guest process: vm.c runs it; its narration is
 * flushed, a failure reported as the line's error. */
static vms_status run_vm(runner *r, bool guest)
{
    vms_strbuf err, out;
    vms_strbuf_init(&err, r->sc->alloc);
    vms_strbuf_init(&out, r->sc->alloc);
    bool expect_failed = false;
    scn_vmctx x = {.sc = r->sc,
                   .c = r->c,
                   .k = r->k,
                   .m = r->m,
                   .va = addr_of(r, &r->c->addr),
                   .line = &out,
                   .err = &err,
                   .expect_failed = &expect_failed,
                   .task = r->task,
                   .res = r->res};
    vms_status st = guest ? vmsi_scn_vm_guest(r->vms, &x) : vmsi_scn_vm_cmd(&r->vms, &x);
    for (const char *p = vms_strbuf_str(&out); *p;) { /* line by line: say() escapes */
        size_t n = strcspn(p, "\n");
        say(r, "%.*s\n", (int)n, p);
        p += n + (p[n] == '\n');
    }
    flush(r, false);
    if (out.failed)
        st = VMS_ERR_NOMEM;
    vms_strbuf_free(&out);
    if (st == VMS_OK && err.len) {
        complain(r, "%s", vms_strbuf_str(&err));
        r->res->errors += !expect_failed;
    }
    if (err.failed)
        st = VMS_ERR_NOMEM;
    vms_strbuf_free(&err);
    return st;
}

/* How the interrupts of a VM's devices reached it during a command (its counters
 * before: exits, injections, postings). */
static void say_vm_irqs(runner *r, int vm, const uint64_t before[3])
{
    uint64_t now[3];
    vmsi_scn_vm_irqs(r->vms, vm, now);
    uint64_t ex = now[0] - before[0], inj = now[1] - before[1], post = now[2] - before[2];
    if (!inj && !post)
        return;
    say(r, "  (vm %s: device interrupt%s: ", r->sc->vmnames[vm], inj + post == 1 ? "" : "s");
    if (inj)
        say(r, "%" PRIu64 " external-interrupt VM exit%s, %" PRIu64 " injected at VM entry%s", ex,
            ex == 1 ? "" : "s", inj, post ? "; " : "");
    if (post)
        say(r, "%" PRIu64 " posted to the vCPU, no exit", post);
    say(r, "; the guest kernel's handler ran)\n");
}

/* A command on a process of a VM whose guest kernel is the kernel model, or on a device
 * assigned to such a VM (vm): the ordinary runner, on the guest kernel; then the VM exits
 * it caused, how device interrupts reached the guest, and what the host's IOMMU driver
 * logged of its DMA (the IOMMU is the host's: VFIO reports a VM's blocked DMA there). */
static vms_status run_on_guest(runner *r, const scn_def *d, int vm)
{
    const scn_cmd *c = r->c;
    vms_kernel *gk = vmsi_scn_vm_kernel_at(r->vms, vm);
    vms_strbuf msg;
    vms_strbuf_init(&msg, r->sc->alloc);
    vmsi_scn_vm_check(r->vms, c, &msg);
    vms_status st = VMS_OK;
    if (msg.len) {
        complain(r, "%s", vms_strbuf_str(&msg));
        r->res->errors++;
        vms_strbuf_free(&msg);
        return VMS_OK;
    }
    uint64_t e0 = vmsi_scn_vm_exits(r->vms, vm), irq0[3];
    vmsi_scn_vm_irqs(r->vms, vm, irq0);
    vms_kernel *hk = r->k;
    vms_task *t = c->proc >= 0 ? r->task[c->proc] : NULL;
    r->k = gk;
    r->gvm = vm + 1;
    if (d->needs_task && !t) {
        vms_access_info ai = {.outcome = VMS_ACCESS_DEAD};
        say(r, "line %u: %s", c->line, pname(r, c->proc));
        settle_access(r, NULL, &ai, NULL);
        say(r, "\n");
    } else {
        st = d->run(r, t);
    }
    r->k = hk;
    r->gvm = 0;
    vmsi_scn_vm_after(r->vms, c, r->task, vm, e0, &msg);
    if (msg.len)
        say(r, "%s", vms_strbuf_str(&msg));
    say_vm_irqs(r, vm, irq0);
    unsigned nf = vms_dma_poll_faults(hk);
    if (nf)
        say(r,
            "  (host: %u IOMMU fault%s of vm %s's device logged by the host's DMAR driver: "
            "show dmesg iommu)\n",
            nf, nf == 1 ? "" : "s", r->sc->vmnames[vm]);
    flush(r, false);
    if (msg.failed)
        st = VMS_ERR_NOMEM;
    vms_strbuf_free(&msg);
    return st;
}

vms_status vmsi_scn_run_vm(runner *r, vms_task *t)
{
    (void)t;
    return run_vm(r, false);
}

/* Run one command through its row of vmsi_scn_commands; a command on a process that is
 * not running reports it dead. */
static vms_status step(runner *r)
{
    const scn_cmd *c = r->c;
    const scn_def *d = &vmsi_scn_commands[c->def];
    vms_task *t = NULL;
    int pvm = vmsi_scn_vm_of(r->vms, c->proc); /* a guest process's VM, or -1 */
    int dvm = c->dev >= 0 && c->op != OP_DEVICE ? r->devs[c->dev].vm - 1 : -1; /* a VM's device */
    if (c->op != OP_VM && (pvm >= 0 || dvm >= 0)) {
        if (c->dev >= 0 && c->op != OP_DEVICE && c->proc >= 0 && pvm != dvm) {
            complain(r,
                     "device '%s' is %s%s's and process '%s' %s%s's: a device serves its own "
                     "kernel's processes",
                     r->sc->devs[c->dev], dvm >= 0 ? "vm " : "the host",
                     dvm >= 0 ? r->sc->vmnames[dvm] : "", pname(r, c->proc),
                     pvm >= 0 ? "vm " : "the host", pvm >= 0 ? r->sc->vmnames[pvm] : "");
            r->res->errors++;
            return VMS_OK;
        }
        if (pvm < 0)
            return run_on_guest(r, d, dvm); /* a device command without a process */
        return vmsi_scn_vm_kernel(r->vms, c->proc) ? run_on_guest(r, d, pvm) : run_vm(r, true);
    }
    if (d->needs_task && !(t = r->task[c->proc])) {
        vms_access_info ai = {.outcome = VMS_ACCESS_DEAD};
        say(r, "line %u: %s", c->line, pname(r, c->proc));
        settle_access(r, NULL, &ai, NULL);
        say(r, "\n");
        flush(r, false);
        return VMS_OK;
    }
    return d->run(r, t);
}

/* A shootdown finished during the current command: its timeline, for the narration. */
static void on_shootdown(void *ud, const vms_shootdown_event *ev)
{
    runner *r = ud;
    vms_strbuf *sb = &r->sd;
    if (r->nsd++ >= SD_NARRATED) {
        r->sd_more += ev->cycles;
        return;
    }
    char who[16];
    if (ev->initiator == UINT32_MAX)
        snprintf(who, sizeof who, "%s", ev->daemon ? ev->daemon : "the kernel");
    else
        snprintf(who, sizeof who, "core %u", ev->initiator);
    bool x86 = strcmp(vms_machine_format(r->m)->arch, "x86_64") == 0;
    vms_strbuf_printf(sb, "  shootdown by %s of 0x%" PRIx64 "-0x%" PRIx64 "%s (pid %d): ", who,
                      ev->start, ev->end,
                      !ev->full ? ""
                      : x86     ? ", whole PCID"
                                : ", whole ASID",
                      ev->pid);
    if (ev->broadcast) {
        vms_strbuf_printf(sb, "%u %s, no IPI", ev->invlpgb, ev->method);
    } else if (ev->ntargets == 0) {
        vms_strbuf_printf(sb, "no IPI");
    } else {
        vms_strbuf_printf(sb, "%s", ev->sbi ? "SBI remote fence: IPI to" : "IPI to");
        unsigned shown = ev->ntargets < 8 ? ev->ntargets : 8;
        for (unsigned i = 0; i < shown; i++)
            vms_strbuf_printf(sb, "%s core %u (ack +%" PRIu64 ")", i ? "," : "", ev->targets[i],
                              ev->ack[i]);
        if (ev->ntargets > shown)
            vms_strbuf_printf(sb, " and %u more", ev->ntargets - shown);
    }
    vms_strbuf_printf(sb, "; initiator done after %" PRIu64 " cycles", ev->cycles);
    if (ev->lazy_skipped)
        vms_strbuf_printf(sb, "; %u lazy core%s left to flush at %s next switch", ev->lazy_skipped,
                          ev->lazy_skipped > 1 ? "s" : "", ev->lazy_skipped > 1 ? "their" : "its");
    vms_strbuf_printf(sb, "\n");
}

/* A scenario being run step by step (vms_scenario_start … vms_scenario_finish): the
 * runner and where it is. */
struct vms_scenario_exec {
    runner r;
    vms_scenario_result res;
    size_t next;         /* index of the next command to run */
    vms_status st;       /* VMS_OK until the run must stop */
    unsigned panic_line; /* the line the simulated kernel panicked on */
};

vms_status vms_scenario_start(const vms_scenario *sc, vms_kernel *k, vms_scenario_out out, void *ud,
                              vms_scenario_exec **exp, vms_err *err)
{
    const vms_allocator *a = sc->alloc;
    vms_scenario_exec *ex = vmsi_zalloc(a, sizeof *ex);
    *exp = ex;
    if (!ex)
        return vmsi_err(err, VMS_ERR_NOMEM, "%s: out of memory while running the scenario",
                        sc->name);
    runner *r = &ex->r;
    *r = (runner){
        .sc = sc, .k = k, .m = vms_kernel_machine(k), .out = out, .ud = ud, .res = &ex->res};
    r->task = vmsi_calloc(a, sc->nnames + 1, sizeof *r->task);
    r->label = vmsi_calloc(a, sc->nlabels + 1, sizeof *r->label);
    r->devs = vmsi_calloc(a, sc->ndevs + 1, sizeof *r->devs);
    vms_strbuf_init(&r->line, a);
    vms_strbuf_init(&r->sd, a);
    vms_kernel_set_shootdown_hook(k, on_shootdown, r);
    /* The narration listens to the event tap; an observer already there hears it all. */
    vms_machine_get_observer(r->m, &r->prev_fn, &r->prev_ud);
    vms_machine_set_observer(r->m, on_event, r);
    vms_rng_seed(&r->rng, vms_kernel_get_config(k)->seed ^ UINT64_C(0x70c4));
    if (r->task && r->label && r->devs)
        return VMS_OK;
    ex->st = VMS_ERR_NOMEM;
    *exp = NULL;
    return vms_scenario_finish(ex, err);
}

bool vms_scenario_done(const vms_scenario_exec *ex)
{
    return ex->st != VMS_OK || ex->next >= ex->r.sc->ncmd;
}

const vms_scenario_result *vms_scenario_exec_result(const vms_scenario_exec *ex)
{
    return &ex->res;
}

vms_status vms_scenario_next(vms_scenario_exec *ex, unsigned *line)
{
    runner *r = &ex->r;
    if (vms_scenario_done(ex))
        return ex->st;
    r->c = &r->sc->cmd[ex->next++];
    if (line)
        *line = r->c->line;
    if (r->c->op != OP_SET)
        ex->res.commands++;
    vms_status st = step(r);
    if (r->nsd > SD_NARRATED)
        vms_strbuf_printf(&r->sd, "  ... and %u more shootdowns (initiators: %" PRIu64 " cycles)\n",
                          r->nsd - SD_NARRATED, r->sd_more);
    r->nsd = 0;
    r->sd_more = 0;
    if (r->sd.len) { /* the command's shootdowns, after its own line */
        if (r->out)
            r->out(r->ud, false, vms_strbuf_str(&r->sd));
        r->sd.len = 0;
        r->sd.data[0] = '\0';
    }
    if (r->line.failed || r->sd.failed)
        st = VMS_ERR_NOMEM;
    if (vms_kernel_panicked(r->k, NULL)) { /* the simulated kernel is gone: stop here */
        flush(r, false);
        ex->panic_line = r->c->line;
        st = VMS_ERR_PANIC;
    }
    ex->st = st;
    return st;
}

bool vms_scenario_last_access(const vms_scenario_exec *ex, vms_scenario_access *out)
{
    const runner *r = &ex->r;
    const scn_cmd *c = r->c;
    if (!c || c->proc < 0)
        return false;
    switch (c->op) {
    case OP_READ:
    case OP_KREAD:
        out->kind = VMS_ACC_READ;
        break;
    case OP_WRITE:
    case OP_KWRITE:
        out->kind = VMS_ACC_WRITE;
        break;
    case OP_FETCH:
        out->kind = VMS_ACC_EXEC;
        break;
    case OP_TOUCH:
        out->kind = c->kind;
        break;
    default:
        return false;
    }
    out->line = c->line;
    out->proc = r->sc->names[c->proc];
    out->task = r->task[c->proc];
    out->va = c->addr.label >= 0 ? r->label[c->addr.label] + c->addr.value : c->addr.value;
    out->len = c->op == OP_WRITE || c->op == OP_KWRITE ? c->data_len
               : c->op == OP_FETCH                     ? 1
                                                       : c->len;
    return true;
}

const char *vms_scenario_proc(const vms_scenario_exec *ex, size_t i, vms_task **task)
{
    if (i >= ex->r.sc->nnames)
        return NULL;
    *task = ex->r.task[i];
    return ex->r.sc->names[i];
}

vms_status vms_scenario_finish(vms_scenario_exec *ex, vms_err *err)
{
    if (!ex)
        return VMS_OK;
    runner *r = &ex->r;
    const vms_scenario *sc = r->sc;
    const vms_allocator *a = sc->alloc;
    vms_status st = ex->st;
    vms_kernel_set_shootdown_hook(r->k, NULL, NULL);
    vms_machine_set_observer(r->m, r->prev_fn, r->prev_ud);
    vms_strbuf_free(&r->sd);
    vms_strbuf_free(&r->line);
    /* The hardware the scenario made goes; the kernel forgets it first (its counters stay). */
    vms_dma_detach_all(r->k);
    vmsi_scn_vm_free(r->vms, a); /* guest kernels detach the VMs' devices first */
    r->vms = NULL;
    for (size_t i = 0; r->devs && i < sc->ndevs; i++) {
        vms_nic_destroy(r->devs[i].nic);
        vms_blk_destroy(r->devs[i].blk);
        vms_dev_destroy(r->devs[i].raw);
    }
    vms_iommu_destroy(r->io);
    vmsi_scn_vm_free(r->vms, a);
    vmsi_free(a, r->devs, (sc->ndevs + 1) * sizeof *r->devs);
    vmsi_free(a, r->task, (sc->nnames + 1) * sizeof *r->task);
    vmsi_free(a, r->label, (sc->nlabels + 1) * sizeof *r->label);
    const char *why = NULL;
    unsigned panic_line = ex->panic_line;
    vms_kernel *k = r->k;
    vmsi_free(a, ex, sizeof *ex);
    if (st == VMS_ERR_PANIC && vms_kernel_panicked(k, &why))
        return vmsi_err(err, st, "%s:%u: Kernel panic - not syncing: %s", sc->name, panic_line,
                        why);
    if (st != VMS_OK)
        return vmsi_err(err, st, "%s: %s while running the scenario", sc->name, vms_status_str(st));
    return VMS_OK;
}

vms_status vms_scenario_run(const vms_scenario *sc, vms_kernel *k, vms_scenario_out out, void *ud,
                            vms_scenario_result *res, vms_err *err)
{
    memset(res, 0, sizeof *res);
    vms_scenario_exec *ex = NULL;
    vms_status st = vms_scenario_start(sc, k, out, ud, &ex, err);
    while (st == VMS_OK && !vms_scenario_done(ex))
        vms_scenario_next(ex, NULL);
    if (st != VMS_OK)
        return st;
    *res = ex->res;
    return vms_scenario_finish(ex, err);
}

/* ---- protection keys and the kernel's own user accesses ---- */

vms_status vmsi_scn_run_pkey(runner *r, vms_task *t)
{
    const scn_cmd *c = r->c;
    vms_err err = {0};
    vms_status st;
    const char *who = pname(r, c->proc);
    if (c->op == OP_WRPKRU) {
        say(r, "wrpkru %s 0x%08" PRIx64, who, c->count);
        st = vms_task_wrpkru(r->k, t, (uint32_t)c->count, &err);
    } else if (c->dir == 0) {
        int key = -1;
        say(r, "pkey %s alloc%s", who,
            c->count == VMS_PKEY_DISABLE_ACCESS  ? " noaccess"
            : c->count == VMS_PKEY_DISABLE_WRITE ? " nowrite"
                                                 : "");
        st = vms_sys_pkey_alloc(r->k, t, 0, (unsigned)c->count, &key, &err);
        if (st == VMS_OK)
            say(r, " -> pkey %d (PKRU 0x%08x)", key, vms_task_pkru(t));
    } else if (c->dir == 1) {
        say(r, "pkey %s free %" PRIu64, who, c->count);
        st = vms_sys_pkey_free(r->k, t, (int)c->count, &err);
    } else {
        uint64_t a = addr_of(r, &c->addr);
        say(r, "pkey %s mprotect 0x%" PRIx64 " ", who, a);
        say_len(r, c->len);
        say(r, " %s key %" PRIu64, prot_str(c->prot), c->count);
        st = vms_sys_pkey_mprotect(r->k, t, a, c->len, c->prot, (int)c->count, &err);
    }
    if (st == VMS_ERR_NOMEM)
        return st;
    settle_call(r, st, &err);
    return VMS_OK;
}

vms_status vmsi_scn_run_kaccess(runner *r, vms_task *t)
{
    const scn_cmd *c = r->c;
    uint8_t rbuf[4096];
    bool wr = c->op == OP_KWRITE;
    uint8_t *buf = wr ? r->sc->pool + c->data_off : rbuf;
    size_t len = wr ? c->data_len : (size_t)c->len;
    uint64_t va = addr_of(r, &c->addr);
    say(r, "%s %s 0x%" PRIx64, wr ? "kwrite" : "kread", pname(r, c->proc), va);
    if (wr) {
        say(r, " ");
        say_data(r, buf, len);
    } else {
        say(r, " %zu", len);
    }
    say(r, c->flag ? " (no STAC: a stray dereference)" : " (copy_%s_user: STAC ... CLAC)",
        wr ? "to" : "from");
    vms_access_info ai;
    vms_err err = {0};
    uint64_t smap0 = vms_kernel_get_stats(r->k)->smap_faults;
    vms_status st = c->flag ? vms_proc_kernel_deref(r->k, t, va, wr ? VMS_ACC_WRITE : VMS_ACC_READ,
                                                    buf, len, &ai, &err)
                            : vms_proc_kernel_access(r->k, t, va, wr ? VMS_ACC_WRITE : VMS_ACC_READ,
                                                     buf, len, &ai, &err);
    if (st != VMS_OK)
        return st == VMS_ERR_NOMEM || st == VMS_ERR_PANIC ? st : (settle_call(r, st, &err), VMS_OK);
    if (ai.outcome == VMS_ACCESS_OK && !wr) {
        say(r, " -> ");
        say_data(r, buf, len);
    }
    if (ai.outcome == VMS_ACCESS_EFAULT) {
        vmsi_err(&err, VMS_ERR_RANGE, "EFAULT at 0x%" PRIx64 " (error code 0x%x)%s", ai.addr,
                 (unsigned)ai.error_code,
                 vms_kernel_get_stats(r->k)->smap_faults > smap0 ? ": stopped by SMAP" : "");
        settle_call(r, VMS_ERR_RANGE, &err);
        return VMS_OK;
    }
    if (ai.outcome != VMS_ACCESS_OK)
        vmsi_err(&err, VMS_ERR_INVAL, "the process is %s",
                 ai.outcome == VMS_ACCESS_DEAD ? "dead" : "gone (killed by a signal)");
    settle_call(r, ai.outcome == VMS_ACCESS_OK ? VMS_OK : VMS_ERR_INVAL, &err);
    return VMS_OK;
}

/* mount hugetlbfs PATH [pagesize=…], truncate PATH LEN, unlink PATH: simulated files
 * only, never the host's (docs/HUGEPAGES.md "hugetlbfs files"). */
vms_status vmsi_scn_run_hugetlbfs(runner *r, vms_task *t)
{
    (void)t;
    const scn_cmd *c = r->c;
    const char *path = r->sc->strs[c->path];
    vms_err err = {0};
    vms_status st;
    if (c->op == OP_MOUNT) {
        vms_pgsize size = c->dir == 1 ? VMS_PG_2M : c->dir == 2 ? VMS_PG_1G : VMS_PG_4K;
        st = vms_hugetlbfs_mount(r->k, path, size, &err);
        say(r, "mount hugetlbfs %s pagesize=%s", path,
            vms_pgsize_name(size == VMS_PG_4K ? vms_kernel_default_hugepagesz(r->k) : size));
    } else if (c->op == OP_TRUNCATE) {
        say(r, "truncate %s ", path);
        say_len(r, c->len);
        st = vms_sys_truncate(r->k, path, c->len, &err);
    } else {
        say(r, "unlink %s", path);
        st = vms_sys_unlink(r->k, path, &err);
    }
    if (st == VMS_ERR_NOMEM && !err.msg[0])
        return st;
    settle_call(r, st, &err);
    return VMS_OK;
}

/* khugepaged [RUNS]: the daemon's scan now, as often as asked, and what it did;
 * compact: compact_memory, and the pages it moved. */
vms_status vmsi_scn_run_daemon(runner *r, vms_task *t)
{
    (void)t;
    const vms_kernel_stats *s = vms_kernel_get_stats(r->k);
    if (r->c->op == OP_SYSCTL && r->c->dir != 2) {
        /* dir: 0/1 /proc/sys/vm (the default pool), 3 … 6 the sysfs files of the 2 MiB
         * and 1 GiB pools (parse.c sysctl_keys). */
        unsigned d = r->c->dir;
        vms_pgsize size = d < 2   ? vms_kernel_default_hugepagesz(r->k)
                          : d < 5 ? VMS_PG_2M
                                  : VMS_PG_1G;
        bool nr = d == 0 || d == 3 || d == 5;
        uint64_t total = 0;
        if (nr)
            vms_kernel_set_hugepages(r->k, size, r->c->count, &total);
        else
            vms_kernel_set_overcommit_hugepages_size(r->k, size, r->c->count);
        if (d < 2)
            say(r, "sysctl vm.%s=%" PRIu64, nr ? "nr_hugepages" : "nr_overcommit_hugepages",
                r->c->count);
        else
            say(r, "sysctl hugepages-%skB/%s=%" PRIu64, size == VMS_PG_1G ? "1048576" : "2048",
                nr ? "nr_hugepages" : "nr_overcommit_hugepages", r->c->count);
        if (nr)
            say(r, " -> %" PRIu64 " persistent huge page%s", total, total == 1 ? "" : "s");
        say(r, "\n");
        flush(r, false);
        return VMS_OK;
    }
    if (r->c->op == OP_COMPACT || r->c->op == OP_SYSCTL) {
        uint64_t moved = vms_kernel_compact(r->k);
        say(r, "compact: %" PRIu64 " page%s migrated\n", moved, moved == 1 ? "" : "s");
        flush(r, false);
        return VMS_OK;
    }
    uint64_t got = 0, full0 = s->thp_khugepaged_full_scans;
    for (uint64_t i = 0; i < r->c->count; i++)
        got += vms_kernel_khugepaged(r->k);
    say(r, "khugepaged: %" PRIu64 " run%s, %" PRIu64 " huge page%s collapsed", r->c->count,
        r->c->count == 1 ? "" : "s", got, got == 1 ? "" : "s");
    if (s->thp_khugepaged_full_scans > full0)
        say(r, ", %" PRIu64 " full scan%s", s->thp_khugepaged_full_scans - full0,
            s->thp_khugepaged_full_scans - full0 == 1 ? "" : "s");
    say(r, " (pages_collapsed %" PRIu64 ")\n", s->thp_collapse_alloc);
    flush(r, false);
    return VMS_OK;
}
