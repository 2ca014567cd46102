/*
 * vmsim/replay.h — trace replay: the events of a memory trace (trace.h) run through a
 * booted kernel and machine, every reference as a user access of the task its tid
 * names (docs/REPLAY.md).
 *
 * A replay owns nothing of the kernel: it spawns one process for the trace's first
 * thread, creates threads and processes as CLONE events say, and turns each event into
 * what a real kernel would see:
 *
 *   ACCESS    an address-only user access (vms_proc_access with buf NULL, or the batch
 *             path vms_proc_access_batch: the same model, faster); MODIFY = read, write
 *   MAP       (recorded layout) the segment, mapped MAP_FIXED at its recorded address:
 *             from the host file at its recorded path when it exists, else anonymous
 *   MMAP, MUNMAP, MPROTECT, MADVISE   the system call (vms_sys_*), at recorded addresses
 *   BRK       the change of the break, as a fixed anonymous mapping or an unmapping
 *   CLONE     fork (vms_proc_fork) or a thread (vms_proc_clone_thread, with CLONE_VM)
 *   EXIT      the thread, or with `group` the whole process, exits
 *   KWRITE    the kernel writes the user's buffer (vms_proc_kernel_access)
 *
 * Layouts. `auto` (the default for traces without kernel events): the process treats
 * every user address as anonymous memory (vms_proc_set_auto_anon with 2 MiB regions),
 * and kernel events are still replayed. `recorded` (the default when the trace starts
 * with kernel events): only what the events map exists; a reference elsewhere is a
 * segfault, reported as data.
 *
 * Simulated outcomes (segfaults, failed system calls, events of unknown or dead
 * threads) are counted in vms_replay_stats and reported through the log callback; they
 * never stop the replay. Library errors are host failures (VMS_ERR_NOMEM, a trace read
 * error, which names the file and line or byte).
 */
#ifndef VMSIM_REPLAY_H
#define VMSIM_REPLAY_H

#include "vmsim/kernel.h"
#include "vmsim/strbuf.h"
#include "vmsim/trace.h"

typedef struct vms_replay vms_replay;

/*
 * OPT's next-use oracle (policy=opt, Belady): built by a pre-pass over the trace that
 * will be replayed, it tells the kernel's reclaim, for each page it considers, the
 * index of that page's next reference at or after the reference executing now. Pages
 * are per address space, numbered as the replay creates processes (forks, vfork, exec).
 * Host memory: ~24 bytes per distinct page touched, plus two 1.5 MiB buffers; the
 * pre-pass writes 32 bytes per page reference to two anonymous temporary files (tmpfile:
 * in TMPDIR, never named, gone when the oracle is destroyed).
 *
 * vms_replay_oracle_build reads rd to its end (open the trace a second time for the
 * replay itself). Errors: the reader's (naming the trace and line), VMS_ERR_IO for the
 * spill files, VMS_ERR_NOMEM.
 */
typedef struct vms_replay_oracle vms_replay_oracle;
vms_status vms_replay_oracle_build(vms_trace_reader *rd, const vms_allocator *a,
                                   vms_replay_oracle **out, vms_err *err);
void vms_replay_oracle_destroy(vms_replay_oracle *o);
/* ACCESS events the pre-pass saw. */
uint64_t vms_replay_oracle_references(const vms_replay_oracle *o);
/* Did reading a spill file back fail (the replay then fails with VMS_ERR_IO)? */
bool vms_replay_oracle_failed(const vms_replay_oracle *o);

typedef enum vms_replay_layout {
    VMS_REPLAY_LAYOUT_DEFAULT = 0, /* recorded when the first event is a kernel event,
                                      else auto (decided by vms_replay_run) */
    VMS_REPLAY_LAYOUT_AUTO,        /* any touched address is anonymous memory */
    VMS_REPLAY_LAYOUT_RECORDED,    /* only what the trace maps exists */
} vms_replay_layout;

/* "default", "auto", "recorded"; and the reverse (VMS_ERR_NOTFOUND if unknown). */
const char *vms_replay_layout_name(vms_replay_layout l);
vms_status vms_replay_layout_parse(const char *name, vms_replay_layout *out, vms_err *err);

/* The auto layout's region: a fault outside every VMA maps the aligned 2 MiB around it. */
#define VMS_REPLAY_AUTO_REGION (UINT64_C(2) << 20)

/* Called every `interval` references (after the one that completes the interval), and
 * once at the end with final = true. */
typedef void (*vms_replay_tick_fn)(void *ud, uint64_t references, bool final);

typedef struct vms_replay_opts {
    vms_replay_layout layout;
    bool slow;         /* reference by reference through vms_proc_access (the fast path,
                          vms_proc_access_batch, is the same model; tests compare them) */
    bool breakdown;    /* also attribute counters to mappings (vms_replay_by_region): runs
                          reference by reference, as slow does */
    uint64_t limit;    /* stop after this many references (0: the whole trace) */
    uint64_t interval; /* tick every this many references (0: only at the end) */
    vms_replay_tick_fn tick;
    vms_log_fn log;            /* warnings: missing files, failed calls, segfaults (may be NULL) */
    void *ud;                  /* for tick and log */
    vms_replay_oracle *oracle; /* [NULL] OPT's future (borrowed): with it each access runs
                                  as it is read, reference by reference as slow does, so
                                  that the oracle knows which reference executes */
} vms_replay_opts;

/* What the replay did, beyond the machine's and kernel's own counters. */
typedef struct vms_replay_stats {
    uint64_t events;             /* trace events consumed */
    uint64_t references;         /* ACCESS events replayed (MODIFY counts once) */
    uint64_t by_kind[4];         /* reads, writes, fetches, modifies */
    uint64_t bytes;              /* bytes referenced */
    uint64_t segv;               /* references that killed their process (SIGSEGV/SIGBUS/OOM) */
    uint64_t dead_refs;          /* references of a killed process's threads, skipped */
    uint64_t kwrites;            /* KWRITE events replayed */
    uint64_t kwrite_efault;      /* … that failed with EFAULT */
    uint64_t syscalls;           /* MAP, MMAP, MUNMAP, MPROTECT, BRK, MADVISE replayed */
    uint64_t syscall_errors;     /* … that the simulated kernel refused */
    uint64_t skipped;            /* events with nothing to replay (failed recorded mmap, advice
                                    other than DONTNEED, brk queries) */
    uint64_t files_mapped;       /* file-backed segments mapped from host files */
    uint64_t files_missing;      /* file-backed segments mapped anonymous: no host file */
    uint64_t processes, threads; /* created: spawn + forks, and threads */
    uint64_t unknown_tids;       /* references by a tid no CLONE created: a thread of the first
                                    process */
} vms_replay_stats;

/*
 * Prepare a replay on kernel k (borrowed; must outlive the replay; a freshly booted
 * kernel gives reproducible results). opts is copied (NULL: defaults). Nothing is
 * spawned until the first event. VMS_ERR_INVAL when k runs OPT through
 * vms_replay_next_use and opts gives no oracle (see there); VMS_ERR_NOMEM.
 */
vms_status vms_replay_create(vms_kernel *k, const vms_replay_opts *opts, vms_replay **out,
                             vms_err *err);

/* Free the replay (not the kernel, nor the processes it created). NULL is fine. */
void vms_replay_destroy(vms_replay *r);

/*
 * Replay one event. path is the event's path string (MAP/MMAP/EXEC; NULL for none). The
 * layout must be decided (not DEFAULT) when the first event arrives: DEFAULT then means
 * auto. Returns VMS_OK, or VMS_ERR_NOMEM on host failure.
 */
vms_status vms_replay_event(vms_replay *r, const vms_trace_event *ev, const char *path,
                            vms_err *err);

/*
 * Flush references the replay buffered for the batch path (vms_replay_event may hold
 * up to a batch of consecutive references of one task before running them). Call it
 * before reading counters.
 */
vms_status vms_replay_flush(vms_replay *r, vms_err *err);

/*
 * Read the whole trace from rd and replay it (up to opts.limit references), deciding a
 * DEFAULT layout from the first event, then flush. Returns VMS_OK at the end, the
 * reader's error (file and line or byte) on a malformed trace — with everything before
 * it replayed — or VMS_ERR_NOMEM.
 */
vms_status vms_replay_run(vms_replay *r, vms_trace_reader *rd, vms_err *err);

/* The layout in force (DEFAULT until decided). */
vms_replay_layout vms_replay_get_layout(const vms_replay *r);

const vms_replay_stats *vms_replay_get_stats(const vms_replay *r);

/*
 * OPT through a replay. The kernel is booted before the replay exists, so its next-use
 * function reaches the replay through a slot: set vms_kernel_config.next_use to
 * vms_replay_next_use and next_use_ud to a `vms_replay *` variable holding NULL;
 * vms_replay_create (with opts.oracle) stores the replay there and vms_replay_destroy
 * stores NULL again (a caller may do the same). Answers "never" while the slot is NULL.
 * A kernel running a policy that needs the future (opt) with this function and a slot
 * makes vms_replay_create without opts.oracle fail (VMS_ERR_INVAL): OPT without the
 * future would evict the page just faulted in.
 */
uint64_t vms_replay_next_use(void *slot, int pid, uint64_t va);

/* The index of the ACCESS event executing now with an oracle (what OPT's next uses are
 * measured against); without one, the ACCESS events read so far. */
uint64_t vms_replay_position(const vms_replay *r);

/*
 * Breakdowns: what each process, and (with opts.breakdown) each mapping, cost. Every
 * change of the counters below happens while the replay runs a process's references or
 * kernel events, and is added to that process (and, for references, to the mapping that
 * holds the address), so each column sums to the machine's and kernel's totals. By
 * process: pid, and its name when first seen. By region: the mapping's name
 * (vms_proc_region_name: a file's path, [heap], [stack], [anon]; "[unmapped]" when no
 * mapping held the address; "[kernel events]" for what system calls and kernel writes
 * cost), over all processes; pid 0.
 */
typedef struct vms_replay_part {
    int pid;
    char name[256];
    uint64_t accesses;   /* accesses run (a MODIFY is two) */
    uint64_t l1i_misses; /* TLB misses, summed over cores */
    uint64_t l1d_misses;
    uint64_t l2_misses;
    uint64_t walks;
    uint64_t faults; /* page faults (the kernel's pgfault) */
    uint64_t major_faults;
} vms_replay_part;

/* The parts by process (in order of first appearance) and by region (empty without
 * opts.breakdown); *n receives their number. Valid until the next replay call. */
const vms_replay_part *vms_replay_by_process(const vms_replay *r, size_t *n);
const vms_replay_part *vms_replay_by_region(const vms_replay *r, size_t *n);

/*
 * Append the replay's counters as JSON members (no braces; a leading comma when sb does
 * not end in '{' or ','): "replay": {"layout", "references", "reads", "writes",
 * "fetches", "modifies", "bytes", "segv", "dead_refs", "kwrites", "kwrite_efault",
 * "syscalls", "syscall_errors", "skipped", "files_mapped", "files_missing", "processes",
 * "threads", "unknown_tids", "auto_anon_vmas", "kernel_faults", "by_process": [{"pid",
 * "name", "accesses", "tlb_misses": {"l1i", "l1d", "l2"}, "walks", "faults",
 * "major_faults"}, …], and with opts.breakdown "by_region": [the same with "name" and
 * no "pid"]} (vms_replay_part).
 */
vms_status vms_replay_stats_json_members(const vms_replay *r, vms_strbuf *sb);

#endif
