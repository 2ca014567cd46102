/*
 * vmsim/proc.h — processes, tasks and their memory accesses.
 *
 * A task is a thread of execution: it has a tid, runs on one core, and belongs to a
 * process (a thread group, pid = tid of its first task) whose tasks share one address
 * space (mm: VMAs, a page-table root and a PCID). Linux's grammar: spawn (a fresh
 * address space, like exec of a new program), fork (copy-on-write copy), clone of a
 * thread (CLONE_VM), exec (a fresh address space for the same process), exit.
 *
 * Handles. vms_task pointers are owned by the kernel. A task stays valid until
 * vms_task_exit / vms_proc_exit of it (or its process) returns, or vms_kernel_destroy.
 * A process killed by a signal (SIGSEGV, SIGBUS, an OOM kill) stops: its address space
 * is torn down at once (every frame back) but its task handles stay valid, in state
 * VMS_TASK_DEAD, so the caller can read the signal; vms_proc_exit then reaps them.
 *
 * A fresh address space (spawn, exec) has no VMA but a grows-down stack of 132 KiB below
 * a randomised top (up to 16 GiB under 0x7ffffffff000) and an empty heap (brk) starting
 * up to 32 MiB past 0x555555554000; mmap places mappings top-down from mmap_base = stack
 * top - stack_limit - 1 MiB guard gap - up to 1 TiB. Without ASLR every offset is 0.
 * See docs/KERNEL.md.
 */
#ifndef VMSIM_PROC_H
#define VMSIM_PROC_H

#include "vmsim/kernel.h"

typedef struct vms_task vms_task;

typedef enum vms_task_state {
    VMS_TASK_RUNNING = 0, /* alive (runnable) */
    VMS_TASK_DEAD = 1,    /* killed by a signal; address space gone; awaiting vms_proc_exit */
} vms_task_state;

/* Signal numbers (Linux x86-64). */
enum { VMS_SIGBUS = 7, VMS_SIGKILL = 9, VMS_SIGSEGV = 11 };
/* si_code of a SIGSEGV (Linux include/uapi/asm-generic/siginfo.h). */
enum { VMS_SEGV_MAPERR = 1, VMS_SEGV_ACCERR = 2, VMS_SEGV_PKUERR = 4 };

typedef struct vms_task_info {
    int pid;          /* process (thread group) id */
    int tid;          /* this task's id */
    int ppid;         /* parent's pid (0 for spawned processes) */
    const char *name; /* valid while the task is */
    unsigned core;    /* the core it runs on */
    vms_task_state state;
    int signal;        /* the signal that killed it (0 while running) */
    uint16_t pcid;     /* its address space's PCID (0 without PCIDs) */
    uint64_t cr3;      /* the CR3 value (root | PCID) its core loads to run it */
    unsigned nthreads; /* tasks in its process */
} vms_task_info;

/* Describe a task (any state). */
void vms_task_get_info(const vms_task *t, vms_task_info *out);
int vms_task_pid(const vms_task *t);
int vms_task_tid(const vms_task *t);
bool vms_task_alive(const vms_task *t);

/*
 * Create a process named `name` (copied; at most 15 characters are kept, as Linux's
 * comm) with a fresh address space, running on core `core`. VMS_ERR_INVAL for a bad core,
 * VMS_ERR_NOMEM on host allocation failure, VMS_ERR_NOTFOUND when no frame is free for
 * its page-table root. On failure nothing is created.
 */
vms_status vms_proc_spawn(vms_kernel *k, const char *name, unsigned core, vms_task **out,
                          vms_err *err);

/*
 * fork(): a new process whose address space is a copy-on-write copy of t's (see fork.c);
 * its single task is a copy of t, on t's core. Private writable pages become read-only
 * in both (the parent's TLB entries are invalidated on every core that may hold them);
 * shared mappings stay shared. Failure (NOMEM / NOTFOUND) leaves the parent unchanged.
 */
vms_status vms_proc_fork(vms_kernel *k, vms_task *t, vms_task **child, vms_err *err);

/*
 * vfork() (clone(CLONE_VM|CLONE_VFORK) without CLONE_THREAD): a new process (own pid,
 * ppid = t's pid, t's name, on t's core) whose single task runs in t's address space —
 * no copy, no write protection, no TLB flush: the child's writes are the parent's
 * memory, as on Linux. The sharing ends when the child execs (vms_proc_exec gives it a
 * fresh address space and leaves the parent's intact) or exits (its reference goes; the
 * parent's memory stays). /proc views of either show the shared address space; the
 * OOM killer kills every process sharing its victim's. The parent is not suspended:
 * the caller runs the child until exec/exit, as the kernel would. Failure (NOMEM)
 * creates nothing.
 */
vms_status vms_proc_vfork(vms_kernel *k, vms_task *t, vms_task **child, vms_err *err);

/* clone(CLONE_VM|CLONE_THREAD): a new task in t's process, running on `core`. */
vms_status vms_proc_clone_thread(vms_kernel *k, vms_task *t, unsigned core, vms_task **out,
                                 vms_err *err);

/*
 * execve(): give t's process a fresh address space and the name `name`; every other task
 * of the process exits (their handles become invalid), as Linux's de_thread. The old
 * address space goes unless a vfork parent (or child) still uses it. On failure the old
 * address space is kept.
 */
vms_status vms_proc_exec(vms_kernel *k, vms_task *t, const char *name, vms_err *err);

/* What vms_proc_exec_elf set up. */
typedef struct vms_exec_info {
    uint64_t entry;         /* where execution starts: the interpreter's entry, if any */
    uint64_t program_entry; /* the program's own entry (AT_ENTRY) */
    uint64_t load_bias;     /* added to an ET_DYN program's addresses (0 for ET_EXEC) */
    uint64_t interp_base;   /* where the interpreter was loaded (AT_BASE; 0 if none) */
    uint64_t sp;            /* the initial stack pointer: argc, argv, envp, auxv above it */
    uint64_t brk;           /* the program break */
    unsigned segments;      /* PT_LOAD segments mapped (program and interpreter) */
} vms_exec_info;

/*
 * execve() of the host ELF file at path (src/os/mm/binfmt_elf.c): the image's headers
 * are checked first (ELF64 for the kernel's architecture, ET_EXEC or ET_DYN, mappable
 * PT_LOAD segments; VMS_ERR_INVAL / VMS_ERR_IO naming the file, nothing changed); then
 * t's process gets a fresh address space (vms_proc_exec) with the PT_LOAD segments as
 * private file mappings (bss zeroed, the last file page's tail cleared), the PT_INTERP
 * program loaded the same way, and a stack holding argv (NULL: {path}), envp (may be
 * NULL) and the auxiliary vector. Pages then fault in from the file on demand. *info
 * (may be NULL) says where things went.
 */
vms_status vms_proc_exec_elf(vms_kernel *k, vms_task *t, const char *path, const char *const *argv,
                             const char *const *envp, vms_exec_info *info, vms_err *err);

/* Exit one task (its handle becomes invalid). The last task of a process takes the
 * process with it: its mappings are unmapped (shared file pages written back), every
 * frame and page-table page returned, its PCID released. */
void vms_task_exit(vms_kernel *k, vms_task *t);

/* exit_group(): exit every task of t's process (running or dead); all handles invalid. */
void vms_proc_exit(vms_kernel *k, vms_task *t);

/* ---- scheduling (docs/SMP.md) ---------------------------------------------------------- */

/* Move a task to another core's run queue (a migration; it is switched in there when it
 * runs next). VMS_ERR_INVAL for a core outside the machine or the task's affinity. */
vms_status vms_task_set_core(vms_kernel *k, vms_task *t, unsigned core, vms_err *err);

/* Context-switch t's core to t now (loads CR3 if another address space is current). */
void vms_task_schedule(vms_kernel *k, vms_task *t);

/*
 * sched_setaffinity: t may run only on the cores whose bits are set in mask (nbits bits,
 * 64 per word; bits beyond the machine's cores are ignored). A task outside its new
 * affinity migrates to the allowed core with the shortest run queue. New tasks may run
 * anywhere; a forked or cloned task inherits its creator's affinity. VMS_ERR_INVAL when
 * no core of the machine is in mask.
 */
vms_status vms_task_set_affinity(vms_kernel *k, vms_task *t, const uint64_t *mask, unsigned nbits,
                                 vms_err *err);
void vms_task_get_affinity(const vms_task *t, uint64_t mask[VMS_MAX_CORES / 64]);

/*
 * The task that runs next, by simulated time: the busy core with the earliest clock (ties:
 * the lowest core), and on it the current task — or, when that one has had the core for
 * kernel.sched_slice cycles and a peer waits, the next one in round robin (switched in
 * now). Idle cores first pull a waiting task from the most loaded core (a migration).
 * NULL when no task is runnable. The caller makes the task do one thing and asks again.
 */
vms_task *vms_sched_next(vms_kernel *k);

/* sched_yield: t (if current on its core) goes behind the other runnable tasks there. */
void vms_sched_yield(vms_kernel *k, vms_task *t);

typedef struct vms_sched_core_info {
    unsigned nr_running;  /* tasks on its run queue (0: idle) */
    int current_tid;      /* the task at its head (0 when idle) */
    bool lazy;            /* the loaded mm is kept lazily: no user task switched in since */
    int loaded_pid;       /* a process of the loaded mm (0: init_mm) */
    uint16_t loaded_pcid; /* its PCID */
    uint64_t idle_cycles; /* cycles spent idle (its clock moved on a wake-up) */
} vms_sched_core_info;

void vms_sched_get_core(const vms_kernel *k, unsigned core, vms_sched_core_info *out);

/* Append one line per core ("show sched"): socket, clock, what it runs or idle (lazy),
 * the loaded mm and PCID, each TLB's valid/total entries, the waiting tasks. */
vms_status vms_sched_show(vms_kernel *k, vms_strbuf *sb);

/* The main task of process pid, or the first live process named name; NULL if none. */
vms_task *vms_proc_find(vms_kernel *k, int pid);
vms_task *vms_proc_find_name(vms_kernel *k, const char *name);

/* Live processes (thread groups) and their main tasks, in pid order. */
unsigned vms_proc_count(const vms_kernel *k);
vms_task *vms_proc_at(vms_kernel *k, unsigned i);

/* ---- accesses -------------------------------------------------------------------------- */

typedef enum vms_access_outcome {
    VMS_ACCESS_OK = 0, /* the bytes moved */
    VMS_ACCESS_SEGV,   /* SIGSEGV: the process was killed */
    VMS_ACCESS_BUS,    /* SIGBUS: the process was killed */
    VMS_ACCESS_OOM,    /* no frame could be found: the process was OOM-killed */
    VMS_ACCESS_DEAD,   /* the task was not running; nothing happened */
    VMS_ACCESS_EFAULT, /* a kernel access (vms_proc_kernel_access) hit a bad address:
                          the system call fails with EFAULT; no signal */
} vms_access_outcome;

/* What a user access did: data, not a library error. */
typedef struct vms_access_info {
    vms_access_outcome outcome;
    uint64_t addr;       /* fault address of a fatal fault (CR2) */
    uint32_t error_code; /* the architecture's fault code: x86 #PF (VMS_PFERR_*), RISC-V scause,
                            AArch64 ESR_EL1 */
    int si_code;         /* VMS_SEGV_MAPERR / _ACCERR / _PKUERR for SIGSEGV */
    unsigned faults;     /* page faults taken during the access (fatal one included) */
    unsigned major;      /* of which major (file I/O) */
} vms_access_info;

/*
 * A user-mode access of len bytes at va by task t: switch t's core to t, then
 * vms_core_access in user mode; on a page fault, call the fault handler with CR2 and the
 * error code and retry, until the access completes or a signal kills the process. buf
 * is read for writes and filled for reads/fetches (NULL: address only). Like a REP MOVS,
 * a long access that faults fatally may have moved its earlier pages. Returns VMS_OK
 * with *info (may be NULL) describing the outcome; VMS_ERR_NOMEM if a host allocation
 * failed inside the handler (the process is not killed; the access may be retried);
 * VMS_ERR_INVAL for len 0 or a NULL task. A handler that keeps resolving the same fault
 * without progress is a kernel bug: it asserts in debug builds and reports SIGBUS.
 */
vms_status vms_proc_access(vms_kernel *k, vms_task *t, uint64_t va, vms_access_kind kind, void *buf,
                           size_t len, vms_access_info *info, vms_err *err);

/*
 * Address-only user accesses by t, refs[0..n) in order (trace replay): exactly what n
 * calls of vms_proc_access(k, t, va, kind, NULL, len) would do — the same faults,
 * counters, cycles and TLB state — with the per-reference work minimised: the task is
 * switched in once and the references run through vms_core_access_batch, leaving it
 * only to handle a page fault (then the same fault step and retry as vms_proc_access).
 * Stops after the first reference whose outcome is not VMS_ACCESS_OK (a signal killed
 * the process, or the task is dead): *done receives the number of references before it
 * and *info (may be NULL) its outcome; otherwise *done = n and info->outcome is OK.
 * info->faults and info->major add up over the batch. Returns VMS_OK, VMS_ERR_NOMEM
 * as vms_proc_access (with *done the references completed), VMS_ERR_INVAL for a NULL
 * task or a reference of length 0 or of a kind above VMS_ACC_EXEC (nothing run).
 */
vms_status vms_proc_access_batch(vms_kernel *k, vms_task *t, const vms_ref *refs, size_t n,
                                 size_t *done, vms_access_info *info, vms_err *err);

/*
 * The kernel accesses user memory on t's behalf — copy_to_user / copy_from_user, e.g.
 * read(2) storing into the user's buffer: t is switched in and the access runs in
 * supervisor mode with RFLAGS.AC set (STAC, so SMAP allows it). A page fault is handled
 * as Linux handles one from the kernel on a user address (the error code has U clear):
 * it is counted in pgfault/minor/major like a user fault, and allocates, copies or reads
 * in the same way; a fault the handler cannot resolve (no VMA, no right) is not a
 * signal but EFAULT (outcome VMS_ACCESS_EFAULT, info->addr the address), as the
 * exception-table fixup of copy_to_user makes it. A range reaching past TASK_SIZE is
 * EFAULT without an access (access_ok). buf as for vms_proc_access (NULL: address only).
 */
vms_status vms_proc_kernel_access(vms_kernel *k, vms_task *t, uint64_t va, vms_access_kind kind,
                                  void *buf, size_t len, vms_access_info *info, vms_err *err);

/*
 * The kernel dereferences a user pointer directly, outside STAC … CLAC — the bug SMAP
 * exists to stop (a driver that forgot copy_from_user). As vms_proc_kernel_access, but
 * RFLAGS.AC stays clear: with CR4.SMAP on (kernel.smap, x86-64) the access faults and,
 * as Linux's do_user_addr_fault finds no fixup for it, the kernel reports the oops
 * ("BUG: unable to handle page fault … SMAP" in dmesg, stats smap_faults): outcome
 * VMS_ACCESS_EFAULT, nothing moved, the task lives on (Linux would kill it). With SMAP
 * off it is an ordinary kernel access.
 */
vms_status vms_proc_kernel_deref(vms_kernel *k, vms_task *t, uint64_t va, vms_access_kind kind,
                                 void *buf, size_t len, vms_access_info *info, vms_err *err);

/*
 * Treat every user address of t's address space as anonymous memory ("auto" layout of
 * trace replay, docs/REPLAY.md): from now on a fault on an address below TASK_SIZE that
 * no VMA covers (and that no stack can grow to) first creates an anonymous, private,
 * read-write-execute VMA — the region_len-aligned block containing the address (a power
 * of two >= 4 KiB), clipped to the free gap around it — and is then handled as an
 * ordinary fault on it. The VMA is created as the fault handler's work: no system call
 * is counted or charged; kernel stat auto_anon_vmas counts them. region_len 0 turns it
 * off. Threads share it (it belongs to the address space); fork and exec do not inherit
 * it. VMS_ERR_INVAL for a dead task or a bad region_len.
 */
vms_status vms_proc_set_auto_anon(vms_kernel *k, vms_task *t, uint64_t region_len, vms_err *err);

/* Shorthands: read/write len bytes; return the outcome (VMS_ACCESS_OOM on host failure
 * too, with err filled when given). */
vms_access_outcome vms_proc_read(vms_kernel *k, vms_task *t, uint64_t va, void *buf, size_t len);
vms_access_outcome vms_proc_write(vms_kernel *k, vms_task *t, uint64_t va, const void *buf,
                                  size_t len);

/* ---- per-process views (/proc/PID/…) --------------------------------------------------- */

/*
 * Append /proc/PID/maps of t's process (Linux fs/proc/task_mmu.c show_map_vma):
 *   "%08lx-%08lx %c%c%c%c %08llx %02x:%02x %lu " then the name padded to column 73:
 * start-end, perms rwxp/rwxs, file offset, device (00:00 anon, 00:01 shmem, 08:01 files),
 * inode, and the pathname, "[heap]", "[stack]", "/dev/zero (deleted)" for shared
 * anonymous memory or "/dev/shm/NAME" for named shm. Empty for a dead process.
 */
vms_status vms_proc_maps(vms_kernel *k, const vms_task *t, vms_strbuf *sb);

/*
 * The name of the mapping that holds va in t's process, as the pathname column of maps
 * shows it (a file's path, "[heap]", "[stack]", "/dev/zero (deleted)"), "[anon]" for
 * other anonymous memory, or NULL when no VMA holds va or the process is dead. Valid
 * until the mapping changes. For breakdowns by mapping (replay's by_region).
 */
const char *vms_proc_region_name(vms_kernel *k, const vms_task *t, uint64_t va);

/*
 * Linux's pagemap entry (Documentation/admin-guide/mm/pagemap.rst), 64 bits per page:
 *   63 present   62 swapped   61 file-page or shared-anon   57 pte uffd-wp
 *   56 page exclusively mapped   55 pte soft-dirty   54:0 PFN (when present)
 */
#define VMS_PM_PRESENT    (UINT64_C(1) << 63)
#define VMS_PM_SWAPPED    (UINT64_C(1) << 62)
#define VMS_PM_FILE       (UINT64_C(1) << 61)
#define VMS_PM_EXCLUSIVE  (UINT64_C(1) << 56)
#define VMS_PM_SOFT_DIRTY (UINT64_C(1) << 55)
#define VMS_PM_PFN_MASK   ((UINT64_C(1) << 55) - 1)

/* Pagemap entries of npages pages from the page of va into out[0..npages). Pages in a
 * huge leaf report the PFN of their own 4 KiB part. VMS_ERR_INVAL if t is dead. */
vms_status vms_proc_pagemap(vms_kernel *k, const vms_task *t, uint64_t va, size_t npages,
                            uint64_t *out);

/* Append /proc/PID/smaps-like blocks: the maps line, then Size, Rss, Pss, Shared_Clean,
 * Shared_Dirty, Private_Clean, Private_Dirty, Anonymous, Locked (kB) per VMA. Pss divides
 * each page by its mapcount (rounded down in kB at the end, as Linux). */
vms_status vms_proc_smaps(vms_kernel *k, const vms_task *t, vms_strbuf *sb);

/* Resident set of t's process in pages (present user PTEs, huge ones counted in 4K). */
uint64_t vms_proc_rss(vms_kernel *k, const vms_task *t);

#endif
