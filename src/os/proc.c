/*
 * proc.c — processes and tasks (Linux kernel/fork.c, exit.c, exec.c reduced to their
 * memory side), address-space creation with a randomised layout, and the user access
 * loop: access → #PF → handle_mm_fault → retry.
 *
 * Invariants: a live process has a mm shared by all of its tasks; a vfork child's
 * process shares its parent's mm until it execs or exits (Linux CLONE_VM without
 * CLONE_THREAD), so mm->users == the tasks of every live process using it, and the mm
 * goes when the last of them leaves; a dead process has no mm and only DEAD tasks; pids and tids
 * come from one counter and are never reused; k->procs is in pid order.
 *
 * Layout of a fresh address space (Linux arch/x86/mm/mmap.c and fs/binfmt_elf.c), each
 * offset drawn from the kernel's seeded generator when ASLR is on, 0 otherwise:
 *   stack top  = TASK_SIZE - random(16 GiB)              (STACK_RND_MASK 0x3fffff pages)
 *   stack VMA  = [top - 132 KiB, top), grows down up to stack_limit
 *   mmap_base  = top - stack_limit - stack_guard_gap - random(1 TiB)   (28 bits of pages)
 *   start_brk  = ELF_ET_DYN_BASE (0x555555554000) + random(32 MiB)
 * With a 39-bit VA (RISC-V Sv39) TASK_SIZE is 2^38, the stack random(1 GiB), mmap_base
 * random(1 GiB) and ELF_ET_DYN_BASE 2/3 of TASK_SIZE, as Linux's riscv port (kernel.c).
 * There is no program image: a process starts with a stack and an empty heap.
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "os/os_impl.h"
#include "os/mm/mm_impl.h"
#include "os/reclaim/reclaim_impl.h"
#include "replay/batch.h"

#define INITIAL_STACK (UINT64_C(132) << 10)

static uint64_t rnd_pages(vms_kernel *k, uint64_t npages)
{
    return k->cfg.aslr ? vms_rng_below(&k->rng, npages) << VMS_PAGE_SHIFT : 0;
}

/* An empty address space: root, PCID; no VMAs. */
vms_status vmsi_mm_create(vms_kernel *k, vmsi_mm **out, vms_err *err)
{
    vmsi_mm *mm = vmsi_zalloc(k->a, sizeof *mm);
    if (!mm)
        return vmsi_err(err, VMS_ERR_NOMEM, "mm: out of host memory");
    mm->k = k;
    mm->id = ++k->next_mm_id;
    mm->tlb_gen = 1;   /* cpu_gen 0 means "holds nothing" (smp.c) */
    mm->pkey_map = 1u; /* key 0 is every page's until pkey_mprotect */
    vms_status st = vmsi_mm_alloc_pgd(k, mm, err);
    if (st != VMS_OK) {
        vmsi_free(k->a, mm, sizeof *mm);
        return st;
    }
    vmsi_pcid_alloc(k, &mm->pcid);
    *out = mm;
    return VMS_OK;
}

/* Unmap everything, leave every core, free tables, PCID and the mm (exit_mmap + mmdrop). */
void vmsi_mm_destroy(vmsi_mm *mm)
{
    vms_kernel *k = mm->k;
    vmsi_exit_mmap(mm);
    vmsi_mm_drop_cores(k, mm);
    vmsi_mm_free_pgd(mm);
    /* Tables still counted after the teardown: something (a rogue DMA with the IOMMU off)
     * rewrote a table entry behind the kernel's back, as Linux's "BUG: non-zero pgtables_bytes
     * on freeing mm" reports; a simulated panic, never an abort (a panic leaves foreign tables
     * alone). */
    if (mm->nr_ptes != 0 && !k->panicked)
        vmsi_panic(k,
                   "mm: %llu page-table pages left on freeing mm (a table entry was rewritten "
                   "behind the kernel's back)",
                   (unsigned long long)mm->nr_ptes);
    vmsi_pcid_free(k, mm->pcid);
    vmsi_radix_free(&mm->hresv, k->a); /* emptied by exit_mmap already */
    vmsi_free(k->a, mm->vma, mm->cap * sizeof *mm->vma);
    vmsi_free(k->a, mm, sizeof *mm);
}

/* The stack VMA and the randomised bases of a fresh address space. */
static vms_status setup_layout(vms_kernel *k, vmsi_mm *mm, vms_err *err)
{
    mm->stack_top = vmsi_task_size(k) - rnd_pages(k, k->stack_rnd_pages);
    mm->mmap_base =
        mm->stack_top - k->cfg.stack_limit - VMSI_STACK_GUARD_GAP - rnd_pages(k, k->mmap_rnd_pages);
    mm->start_brk = mm->brk = k->et_dyn_base + rnd_pages(k, UINT64_C(8192));
    vmsi_vma stack = {mm->stack_top - INITIAL_STACK,
                      mm->stack_top,
                      VMS_PROT_READ | VMS_PROT_WRITE,
                      VMSI_VM_ANON | VMSI_VM_GROWSDOWN | VMSI_VM_STACK,
                      NULL,
                      0};
    return vmsi_vma_insert(mm, &stack, err);
}

static vms_status fresh_mm(vms_kernel *k, vmsi_mm **out, vms_err *err)
{
    vms_status st = vmsi_mm_create(k, out, err);
    if (st == VMS_OK && (st = setup_layout(k, *out, err)) != VMS_OK) {
        vmsi_mm_destroy(*out);
        *out = NULL;
    }
    return st;
}

/* ---- process and task records -------------------------------------------------------- */

static vms_status proc_add_task(vms_kernel *k, vmsi_proc *p, unsigned core, vms_task **out,
                                vms_err *err)
{
    if (!vmsi_grow_to(k->a, (void **)&p->tasks, &p->cap, p->ntasks + 1, sizeof *p->tasks, 2))
        return vmsi_err(err, VMS_ERR_NOMEM, "task: out of host memory");
    vms_task *t = vmsi_zalloc(k->a, sizeof *t);
    if (!t)
        return vmsi_err(err, VMS_ERR_NOMEM, "task: out of host memory");
    t->k = k;
    t->proc = p;
    t->core = core;
    t->tid = k->next_pid++;
    t->pkru = k->pkru_init;
    memset(t->affinity, 0xff, sizeof t->affinity);
    if (vmsi_sched_enqueue(k, t) != VMS_OK) {
        vmsi_free(k->a, t, sizeof *t);
        return vmsi_err(err, VMS_ERR_NOMEM, "task: out of host memory");
    }
    p->tasks[p->ntasks++] = t;
    if (p->mm)
        p->mm->users++;
    *out = t;
    return VMS_OK;
}

/* A process record holding mm (taken over on success) with one task on core. */
static vms_status proc_new(vms_kernel *k, const char *name, int ppid, vmsi_mm *mm, unsigned core,
                           vms_task **out, vms_err *err)
{
    if (!vmsi_grow_to(k->a, (void **)&k->procs, &k->capprocs, (size_t)k->nprocs + 1,
                      sizeof *k->procs, 8))
        return vmsi_err(err, VMS_ERR_NOMEM, "proc: out of host memory");
    vmsi_proc *p = vmsi_zalloc(k->a, sizeof *p);
    if (!p)
        return vmsi_err(err, VMS_ERR_NOMEM, "proc: out of host memory");
    p->ppid = ppid;
    snprintf(p->name, sizeof p->name, "%s", name ? name : "");
    p->mm = mm;
    vms_status st = proc_add_task(k, p, core, out, err);
    if (st != VMS_OK) {
        vmsi_free(k->a, p->tasks, p->cap * sizeof *p->tasks);
        vmsi_free(k->a, p, sizeof *p);
        return st;
    }
    p->pid = (*out)->tid;
    k->procs[k->nprocs++] = p;
    return VMS_OK;
}

/* Process p leaves its mm: its p->ntasks users go, and the mm with the last of them
 * (exit_mm + mmput). A mm still used by a vfork child or parent stays as it is, loaded
 * wherever it is loaded. */
static void proc_release_mm(vms_kernel *k, vmsi_proc *p)
{
    vmsi_mm *mm = p->mm;
    if (!mm)
        return;
    p->mm = NULL;
    assert(mm->users >= p->ntasks);
    mm->users -= p->ntasks;
    if (mm->users > 0)
        return;
    vmsi_mm_drop_cores(k, mm);
    vmsi_mm_destroy(mm);
}

static void task_free(vms_kernel *k, vms_task *t)
{
    vmsi_sched_dequeue(k, t);
    vmsi_free(k->a, t, sizeof *t);
}

/* Remove process p from the kernel and free it and its remaining tasks. */
static void proc_reap(vms_kernel *k, vmsi_proc *p)
{
    proc_release_mm(k, p);
    for (unsigned i = 0; i < p->ntasks; i++)
        task_free(k, p->tasks[i]);
    vmsi_free(k->a, p->tasks, p->cap * sizeof *p->tasks);
    for (unsigned i = 0; i < k->nprocs; i++) {
        if (k->procs[i] == p) {
            memmove(&k->procs[i], &k->procs[i + 1], (k->nprocs - i - 1) * sizeof *k->procs);
            k->nprocs--;
            break;
        }
    }
    k->st.exits++;
    vmsi_free(k->a, p, sizeof *p);
}

/* Kill t's process with sig: it stops and its address space goes (force_sig + do_exit). */
static void proc_kill(vms_kernel *k, vmsi_proc *p, int sig)
{
    p->state = VMS_TASK_DEAD;
    p->signal = sig;
    if (k->cur_proc == p)
        k->cur_proc = NULL;
    proc_release_mm(k, p);
    for (unsigned i = 0; i < p->ntasks; i++)
        vmsi_sched_dequeue(k, p->tasks[i]); /* a dead task never runs again */
}

void vmsi_proc_kill(vms_kernel *k, vmsi_proc *p, int sig)
{
    proc_kill(k, p, sig);
}

static vms_status check_core(vms_kernel *k, unsigned core, vms_err *err)
{
    if (core >= k->ncores)
        return vmsi_err(err, VMS_ERR_INVAL, "core %u: the machine has %u cores", core, k->ncores);
    return VMS_OK;
}

/* ---- the public life cycle ------------------------------------------------------------- */

vms_status vms_proc_spawn(vms_kernel *k, const char *name, unsigned core, vms_task **out,
                          vms_err *err)
{
    *out = NULL;
    vms_status st = k->panicked ? vmsi_panic_status(k, err) : check_core(k, core, err);
    vmsi_mm *mm = NULL;
    if (st == VMS_OK)
        st = fresh_mm(k, &mm, err);
    if (st != VMS_OK)
        return st;
    st = proc_new(k, name, 0, mm, core, out, err);
    if (st != VMS_OK)
        vmsi_mm_destroy(mm);
    return st;
}

vms_status vms_proc_fork(vms_kernel *k, vms_task *t, vms_task **child, vms_err *err)
{
    *child = NULL;
    vmsi_proc *p = t->proc;
    if (k->panicked)
        return vmsi_panic_status(k, err);
    if (p->state != VMS_TASK_RUNNING)
        return vmsi_err(err, VMS_ERR_INVAL, "fork: process %d is dead", p->pid);
    vmsi_charge(k, t->core, k->cfg.cost.syscall);
    vmsi_mm *mm = NULL;
    vms_status st = vmsi_dup_mm(k, p->mm, &mm, err);
    if (st != VMS_OK)
        return st;
    /* dup_mm write-protected the parent's private pages: drop its stale entries. */
    vmsi_flush_tlb_range(k, p->mm, t->core, 0, vmsi_task_size(k));
    st = proc_new(k, p->name, p->pid, mm, t->core, child, err);
    if (st != VMS_OK) {
        vmsi_mm_destroy(mm);
        return st;
    }
    memcpy((*child)->affinity, t->affinity, sizeof t->affinity);
    (*child)->pkru = t->pkru; /* the FPU state is copied, PKRU with it */
    k->st.forks++;
    return VMS_OK;
}

vms_status vms_proc_vfork(vms_kernel *k, vms_task *t, vms_task **child, vms_err *err)
{
    *child = NULL;
    vmsi_proc *p = t->proc;
    if (k->panicked)
        return vmsi_panic_status(k, err);
    if (p->state != VMS_TASK_RUNNING)
        return vmsi_err(err, VMS_ERR_INVAL, "vfork: process %d is dead", p->pid);
    vmsi_charge(k, t->core, k->cfg.cost.syscall);
    /* No copy, no write protection, no flush: the child runs in p's mm (proc_new's
     * task takes a user reference on it). */
    vms_status st = proc_new(k, p->name, p->pid, p->mm, t->core, child, err);
    if (st == VMS_OK) {
        memcpy((*child)->affinity, t->affinity, sizeof t->affinity);
        k->st.forks++;
    }
    return st;
}

vms_status vms_proc_clone_thread(vms_kernel *k, vms_task *t, unsigned core, vms_task **out,
                                 vms_err *err)
{
    *out = NULL;
    if (k->panicked)
        return vmsi_panic_status(k, err);
    if (t->proc->state != VMS_TASK_RUNNING)
        return vmsi_err(err, VMS_ERR_INVAL, "clone: process %d is dead", t->proc->pid);
    vms_status st = check_core(k, core, err);
    if (st == VMS_OK)
        st = proc_add_task(k, t->proc, core, out, err);
    if (st == VMS_OK) {
        (*out)->pkru = t->pkru; /* clone copies the FPU state, PKRU with it */
        k->st.clones++;
    }
    return st;
}

vms_status vms_proc_exec(vms_kernel *k, vms_task *t, const char *name, vms_err *err)
{
    vmsi_proc *p = t->proc;
    if (k->panicked)
        return vmsi_panic_status(k, err);
    if (p->state != VMS_TASK_RUNNING)
        return vmsi_err(err, VMS_ERR_INVAL, "exec: process %d is dead", p->pid);
    vmsi_mm *mm = NULL;
    vms_status st = fresh_mm(k, &mm, err);
    if (st != VMS_OK)
        return st;
    for (unsigned i = 0; i < p->ntasks;) { /* de_thread: the other tasks exit */
        if (p->tasks[i] == t) {
            i++;
            continue;
        }
        task_free(k, p->tasks[i]);
        p->tasks[i] = p->tasks[--p->ntasks];
        p->mm->users--;
    }
    proc_release_mm(k, p); /* a vfork child leaves its parent's mm intact */
    p->mm = mm;
    mm->users = 1;
    t->pkru = k->pkru_init; /* a new program starts with the default rights */
    snprintf(p->name, sizeof p->name, "%s", name ? name : "");
    k->st.execs++;
    return VMS_OK;
}

void vms_task_exit(vms_kernel *k, vms_task *t)
{
    vmsi_proc *p = t->proc;
    if (p->ntasks == 1) {
        proc_reap(k, p);
        return;
    }
    for (unsigned i = 0; i < p->ntasks; i++) {
        if (p->tasks[i] == t) {
            p->tasks[i] = p->tasks[--p->ntasks];
            break;
        }
    }
    if (p->mm)
        p->mm->users--;
    task_free(k, t);
}

void vms_proc_exit(vms_kernel *k, vms_task *t)
{
    proc_reap(k, t->proc);
}

void vms_task_schedule(vms_kernel *k, vms_task *t)
{
    if (t->proc->mm)
        vmsi_sched_switch_to(k, t);
}

vms_task *vms_proc_find(vms_kernel *k, int pid)
{
    for (unsigned i = 0; i < k->nprocs; i++)
        if (k->procs[i]->pid == pid)
            return k->procs[i]->tasks[0];
    return NULL;
}

vms_task *vms_proc_find_name(vms_kernel *k, const char *name)
{
    for (unsigned i = 0; i < k->nprocs; i++)
        if (k->procs[i]->state == VMS_TASK_RUNNING && strcmp(k->procs[i]->name, name) == 0)
            return k->procs[i]->tasks[0];
    return NULL;
}

unsigned vms_proc_count(const vms_kernel *k)
{
    return k->nprocs;
}

vms_task *vms_proc_at(vms_kernel *k, unsigned i)
{
    return i < k->nprocs ? k->procs[i]->tasks[0] : NULL;
}

void vms_task_get_info(const vms_task *t, vms_task_info *out)
{
    const vmsi_proc *p = t->proc;
    out->pid = p->pid;
    out->tid = t->tid;
    out->ppid = p->ppid;
    out->name = p->name;
    out->core = t->core;
    out->state = p->state;
    out->signal = p->signal;
    out->pcid = p->mm ? p->mm->pcid : 0;
    out->cr3 = p->mm ? (p->mm->pt.root | p->mm->pcid) : 0;
    out->nthreads = p->ntasks;
}

int vms_task_pid(const vms_task *t)
{
    return t->proc->pid;
}

int vms_task_tid(const vms_task *t)
{
    return t->tid;
}

bool vms_task_alive(const vms_task *t)
{
    return t->proc->state == VMS_TASK_RUNNING;
}

/* ---- accesses -------------------------------------------------------------------------- */

/* Deliver a fatal signal for an access and fill info. */
static void deliver(vms_kernel *k, vms_task *t, int sig, uint64_t addr, uint32_t ec, int si_code,
                    vms_access_info *info)
{
    vmsi_proc *p = t->proc;
    info->addr = addr;
    info->error_code = ec;
    info->si_code = si_code;
    if (sig == VMS_SIGSEGV) {
        info->outcome = VMS_ACCESS_SEGV; /* a fault's SIGSEGV is counted by its handler */
        vmsi_log(k, VMS_LOG_INFO, "%s[%d]: segfault at %llx error %x", p->name, t->tid,
                 (unsigned long long)addr, ec);
    } else if (sig == VMS_SIGBUS) {
        info->outcome = VMS_ACCESS_BUS;
        vmsi_log(k, VMS_LOG_INFO, "%s[%d]: bus error at %llx error %x", p->name, t->tid,
                 (unsigned long long)addr, ec);
    } else {
        info->outcome = VMS_ACCESS_OOM; /* vmsi_oom_kill counted and logged it */
    }
    proc_kill(k, p, sig);
}

/* Resolve one fault of an access; false when the access is over (info filled). */
static bool fault_step(vms_kernel *k, vms_task *t, const vms_fault *f, vms_access_info *info,
                       vms_status *st, vms_err *err)
{
    if (f->kind == VMS_FAULT_GP) { /* non-canonical: #GP, SIGSEGV with si_code SI_KERNEL */
        deliver(k, t, VMS_SIGSEGV, f->va, 0, 0x80, info);
        return false;
    }
    if (f->kind == VMS_FAULT_BUS && vms_bus_is_ram(k->bus, f->pa, 1)) {
        /* RAM that could not store a byte: the host's allocation failed, not the bus. */
        *st = vmsi_err(err, VMS_ERR_NOMEM, "access at %llx: out of host memory for RAM",
                       (unsigned long long)f->va);
        return false;
    }
    if (f->kind != VMS_FAULT_PF) {
        deliver(k, t, VMS_SIGBUS, f->va, 0, 0, info);
        return false;
    }
    info->faults++;
    vmsi_fault_info fi = {0, false};
    vmsi_kswapd(k);          /* a kernel entry: kswapd catches up if it was woken */
    vmsi_khugepaged_tick(k); /* … and khugepaged, if its sleep ended */
    vmsi_kcompactd(k);       /* … and kcompactd, if an allocation woke it */
    if (t->proc->state != VMS_TASK_RUNNING) {
        info->outcome = VMS_ACCESS_DEAD;
        return false;
    }
    vms_core *core = vmsi_core(k, t->core);
    uint64_t c0 = vms_core_cycles(core);
    vmsi_fault_ret r = vmsi_handle_mm_fault(k, t, f->va, f->flags, &fi);
    k->st.fault_cycles += vms_core_cycles(core) - c0;
    info->major += fi.major;
    switch (r) {
    case VMSI_FAULT_DONE:
        return true;
    case VMSI_FAULT_SEGV:
        deliver(k, t, VMS_SIGSEGV, f->va, f->error_code, fi.si_code, info);
        return false;
    case VMSI_FAULT_BUS:
        deliver(k, t, VMS_SIGBUS, f->va, f->error_code, 0, info);
        return false;
    case VMSI_FAULT_OOM:
        /* Neither a free frame nor a reclaimable one: the OOM killer picks a victim;
         * when it is not this process, the fault is retried. */
        if (vmsi_oom_kill(k, t->proc) != t->proc)
            return true;
        deliver(k, t, VMS_SIGKILL, f->va, f->error_code, 0, info);
        return false;
    case VMSI_FAULT_NOMEM:
        *st = vmsi_err(err, VMS_ERR_NOMEM, "page fault at %llx: out of host memory",
                       (unsigned long long)f->va);
        return false;
    case VMSI_FAULT_PANIC:
        *st = vmsi_panic_status(k, err);
        return false;
    }
    return false;
}

/* Livelock detection of the access loop: the same fault again and again means the
 * handler makes no progress — a kernel bug. */
typedef struct fault_watch {
    uint64_t last_va;
    uint32_t last_ec;
    unsigned repeats;
    uint64_t oom0; /* OOM kills so far: killing another process in between is progress */
} fault_watch;

#define FAULT_WATCH_INIT(k)                                                                        \
    {                                                                                              \
        0, UINT32_MAX, 0, (k)->st.oom_kill                                                         \
    }

/* True (after asserting, in debug builds) when f repeats the last fault too often. */
static bool livelocked(vms_kernel *k, fault_watch *w, const vms_fault *f)
{
    w->repeats = (f->va == w->last_va && f->error_code == w->last_ec && k->st.oom_kill == w->oom0)
                     ? w->repeats + 1
                     : 0;
    w->oom0 = k->st.oom_kill;
    w->last_va = f->va;
    w->last_ec = f->error_code;
    if (w->repeats < 3)
        return false;
    assert(false && "page-fault livelock: the handler does not make progress");
    return true;
}

/*
 * Kernel work after a user access of [va, va+len) completed — the same call for every
 * reference of vms_proc_access and of vms_proc_access_batch, in reference order, before
 * the next reference runs: a replacement policy that must see every reference (exact
 * LRU, OPT) is told of it.
 */
static inline void access_done(vms_kernel *k, vms_task *t, uint64_t va, size_t len)
{
    vmsi_lru_accessed(k, t->proc->mm, va, len); /* exact LRU/OPT: an oracle */
}

/* A string access (vms_core_access) that faulted after `done` bytes resumes there: the
 * retry starts at the faulting page, and the pages before it are progress. */
static void resume(uint64_t *va, void **buf, size_t *len, size_t done, fault_watch *w,
                   vms_kernel *k)
{
    if (!done)
        return;
    *va += done;
    *len -= done;
    if (*buf)
        *buf = (uint8_t *)*buf + done;
    *w = (fault_watch)FAULT_WATCH_INIT(k);
}

/* Put t's core in user mode running t's address space; returns the core. */
static vms_core *enter_user(vms_kernel *k, vms_task *t)
{
    k->cur_core = t->core;
    k->cur_proc = t->proc;
    vmsi_sched_switch_to(k, t);
    vms_core *c = vmsi_core(k, t->core); /* after the switch: its core is t's CPU's now */
    vms_core_set_user(c, true);
    return c;
}

vms_status vms_proc_access(vms_kernel *k, vms_task *t, uint64_t va, vms_access_kind kind, void *buf,
                           size_t len, vms_access_info *info, vms_err *err)
{
    vms_access_info dummy;
    if (!info)
        info = &dummy;
    memset(info, 0, sizeof *info);
    if (k->panicked)
        return vmsi_panic_status(k, err);
    if (!t || len == 0)
        return vmsi_err(err, VMS_ERR_INVAL, "access: %s", t ? "zero length" : "no task");
    vms_status st = VMS_OK;
    fault_watch w = FAULT_WATCH_INIT(k);
    uint64_t va0 = va;
    size_t len0 = len;
    for (;;) {
        if (t->proc->state != VMS_TASK_RUNNING) {
            info->outcome = VMS_ACCESS_DEAD;
            return VMS_OK;
        }
        vms_core *c = enter_user(k, t);
        uint64_t c0 = vms_core_cycles(c);
        vms_access_result r = vms_core_access(c, va, kind, buf, len);
        k->st.user_cycles += vms_core_cycles(c) - c0;
        vms_core_set_user(c, false);
        if (r.ok) {
            access_done(k, t, va0, len0);
            return VMS_OK;
        }
        resume(&va, &buf, &len, r.done, &w, k);
        if (livelocked(k, &w, &r.fault)) {
            deliver(k, t, VMS_SIGBUS, r.fault.va, r.fault.error_code, 0, info);
            return VMS_OK;
        }
        if (!fault_step(k, t, &r.fault, info, &st, err))
            return st;
    }
}

/*
 * The batch is vms_proc_access's loop turned inside out: the task is switched in and the
 * core put in user mode once, then vms_core_access_batch runs references until one
 * faults; the fault takes the same step as in vms_proc_access (handler, or a signal),
 * and the batch resumes at that reference, switching the task in again as the retry of
 * vms_proc_access does. Between two references vms_proc_access only toggles the
 * privilege level and re-checks the current mm — neither is counted nor can change
 * while no fault runs — so the two paths do the same modelled work. Any per-reference
 * kernel work added to vms_proc_access must be added here too (test_replay compares
 * both paths counter by counter).
 */
vms_status vms_proc_access_batch(vms_kernel *k, vms_task *t, const vms_ref *refs, size_t n,
                                 size_t *done, vms_access_info *info, vms_err *err)
{
    if (info)
        memset(info, 0, sizeof *info);
    *done = 0;
    if (k->panicked)
        return vmsi_panic_status(k, err);
    if (!t)
        return vmsi_err(err, VMS_ERR_INVAL, "access batch: no task");
    for (size_t i = 0; i < n; i++)
        if (refs[i].len == 0 || refs[i].kind > VMS_ACC_EXEC)
            return vmsi_err(err, VMS_ERR_INVAL, "access batch: reference %zu: %s", i,
                            refs[i].len ? "bad kind" : "zero length");
    return vmsi_proc_access_refs(k, t, refs, n, done, info, err);
}

/* vms_proc_access_batch without the pass that checks the references (replay/batch.h: the
 * replay's are valid by construction). */
vms_status vmsi_proc_access_refs(vms_kernel *k, vms_task *t, const vms_ref *refs, size_t n,
                                 size_t *done, vms_access_info *info, vms_err *err)
{
    vms_access_info dummy;
    if (!info)
        info = &dummy;
    memset(info, 0, sizeof *info);
    *done = 0;
    if (k->panicked)
        return vmsi_panic_status(k, err);
    assert(t);
    vms_status st = VMS_OK;
    fault_watch w = FAULT_WATCH_INIT(k);
    size_t i = 0;
    /* Only a policy that must see every reference is told of them (access_done). */
    const bool needs_access = k->pol && (k->pol->flags & VMS_PPOL_NEEDS_ACCESS);
    vms_ref part; /* the rest of refs[i], a string reference resumed at its faulting page */
    bool in_part = false;
    while (i < n) {
        if (t->proc->state != VMS_TASK_RUNNING) {
            info->outcome = VMS_ACCESS_DEAD;
            break;
        }
        vms_core *c = enter_user(k, t);
        vms_fault f;
        bool was_part = in_part;
        uint64_t c0 = vms_core_cycles(c);
        size_t ran = vms_core_access_batch(c, in_part ? &part : refs + i, in_part ? 1 : n - i, &f);
        k->st.user_cycles += vms_core_cycles(c) - c0;
        vms_core_set_user(c, false);
        if (ran > 0) {
            w = (fault_watch)FAULT_WATCH_INIT(k); /* progress: a new reference's faults */
            in_part = false;
        }
        /* Nothing of the kernel runs between references of the batch, so their
         * completions can be told now, in order, before the fault is handled. */
        if (needs_access) /* (the policy cannot change while the batch runs) */
            for (size_t j = i; j < i + ran; j++)
                access_done(k, t, refs[j].va, refs[j].len);
        i += ran;
        if (i == n)
            break;
        if (was_part && ran == 1)
            continue; /* the resumed reference completed: on with the batch */
        const vms_ref *cur = in_part ? &part : &refs[i];
        if (f.kind == VMS_FAULT_PF && vms_access_is_string(cur->va, cur->len) && f.va > cur->va) {
            /* As vms_proc_access's resume(): the pages before the faulting one are done. */
            part = *cur;
            part.len -= (uint32_t)(f.va - cur->va);
            part.va = f.va;
            in_part = true;
            w = (fault_watch)FAULT_WATCH_INIT(k);
        }
        if (livelocked(k, &w, &f)) {
            deliver(k, t, VMS_SIGBUS, f.va, f.error_code, 0, info);
            break;
        }
        if (!fault_step(k, t, &f, info, &st, err))
            break;
    }
    *done = i;
    return st;
}

/* One fault of a kernel access to user memory: handle it, or end with EFAULT. */
static bool kernel_fault_step(vms_kernel *k, vms_task *t, const vms_fault *f, bool stac,
                              vms_access_info *info, vms_status *st, vms_err *err)
{
    if (f->kind != VMS_FAULT_PF) { /* RAM that could not store a byte, a bus error */
        *st = vmsi_err(err, VMS_ERR_NOMEM, "kernel access at %llx: out of host memory for RAM",
                       (unsigned long long)f->va);
        return false;
    }
    info->faults++;
    k->st.kernel_faults++;
    /* do_user_addr_fault: with SMAP on, a supervisor fault on a user address outside
     * STAC … CLAC has no exception fixup — Linux oopses. Here: logged, counted, EFAULT. */
    if ((vms_core_regs(vmsi_core(k, t->core))->cr4 & VMS_CR4_SMAP) && !stac &&
        !(f->flags & VMS_FAULTF_USER)) {
        vmsi_log(k, VMS_LOG_ERR,
                 "BUG: unable to handle page fault for address: %llx: SMAP, a supervisor "
                 "access to user memory outside STAC/CLAC (error code 0x%x)",
                 (unsigned long long)f->va, (unsigned)f->error_code);
        info->outcome = VMS_ACCESS_EFAULT;
        info->addr = f->va;
        info->error_code = f->error_code;
        k->st.efault++;
        k->st.smap_faults++;
        return false;
    }
    vmsi_fault_info fi = {0, false};
    vmsi_fault_ret r = vmsi_handle_mm_fault(k, t, f->va, f->flags, &fi);
    info->major += fi.major;
    switch (r) {
    case VMSI_FAULT_DONE:
        return true;
    case VMSI_FAULT_SEGV:
    case VMSI_FAULT_BUS:
        info->outcome = VMS_ACCESS_EFAULT;
        info->addr = f->va;
        info->error_code = f->error_code;
        k->st.efault++;
        return false;
    case VMSI_FAULT_OOM:
        deliver(k, t, VMS_SIGKILL, f->va, f->error_code, 0, info);
        return false;
    case VMSI_FAULT_NOMEM:
        *st = vmsi_err(err, VMS_ERR_NOMEM, "page fault at %llx: out of host memory",
                       (unsigned long long)f->va);
        return false;
    case VMSI_FAULT_PANIC:
        *st = vmsi_panic_status(k, err);
        return false;
    }
    return false;
}

/* A kernel access to t's user memory, inside STAC … CLAC (stac) or not. */
static vms_status kernel_access(vms_kernel *k, vms_task *t, uint64_t va, vms_access_kind kind,
                                void *buf, size_t len, bool stac, vms_access_info *info,
                                vms_err *err)
{
    vms_access_info dummy;
    if (!info)
        info = &dummy;
    memset(info, 0, sizeof *info);
    if (k->panicked)
        return vmsi_panic_status(k, err);
    if (!t || len == 0 || kind == VMS_ACC_EXEC)
        return vmsi_err(err, VMS_ERR_INVAL, "kernel access: %s",
                        !t    ? "no task"
                        : len ? "the kernel does not fetch from user memory"
                              : "zero length");
    if (t->proc->state != VMS_TASK_RUNNING) {
        info->outcome = VMS_ACCESS_DEAD;
        return VMS_OK;
    }
    if (va >= vmsi_task_size(k) || len > vmsi_task_size(k) - va) { /* access_ok() */
        info->outcome = VMS_ACCESS_EFAULT;
        info->addr = va;
        k->st.efault++;
        return VMS_OK;
    }
    vms_status st = VMS_OK;
    fault_watch w = FAULT_WATCH_INIT(k);
    for (;;) {
        if (t->proc->state != VMS_TASK_RUNNING) {
            info->outcome = VMS_ACCESS_DEAD;
            return VMS_OK;
        }
        vms_core *c = vmsi_core(k, t->core);
        k->cur_core = t->core;
        k->cur_proc = t->proc;
        vmsi_sched_switch_to(k, t);
        vms_core_set_ac(c, stac); /* stac */
        vms_access_result r = vms_core_access(c, va, kind, buf, len);
        vms_core_set_ac(c, false); /* clac */
        if (r.ok)
            return VMS_OK;
        resume(&va, &buf, &len, r.done, &w, k);
        if (livelocked(k, &w, &r.fault)) {
            deliver(k, t, VMS_SIGBUS, r.fault.va, r.fault.error_code, 0, info);
            return VMS_OK;
        }
        if (!kernel_fault_step(k, t, &r.fault, stac, info, &st, err))
            return st;
    }
}

vms_status vms_proc_kernel_access(vms_kernel *k, vms_task *t, uint64_t va, vms_access_kind kind,
                                  void *buf, size_t len, vms_access_info *info, vms_err *err)
{
    return kernel_access(k, t, va, kind, buf, len, true, info, err);
}

vms_status vms_proc_kernel_deref(vms_kernel *k, vms_task *t, uint64_t va, vms_access_kind kind,
                                 void *buf, size_t len, vms_access_info *info, vms_err *err)
{
    return kernel_access(k, t, va, kind, buf, len, false, info, err);
}

vms_status vms_proc_set_auto_anon(vms_kernel *k, vms_task *t, uint64_t region_len, vms_err *err)
{
    (void)k;
    if (!t || t->proc->state != VMS_TASK_RUNNING)
        return vmsi_err(err, VMS_ERR_INVAL, "auto-anonymous layout: the task is not running");
    if (region_len && (region_len < VMS_PAGE_SIZE || (region_len & (region_len - 1)) ||
                       region_len > (UINT64_C(1) << 46)))
        return vmsi_err(err, VMS_ERR_INVAL,
                        "auto-anonymous layout: region %llu bytes: expected a power of two "
                        "from 4K to 64T",
                        (unsigned long long)region_len);
    t->proc->mm->auto_anon = region_len;
    return VMS_OK;
}

vms_access_outcome vms_proc_read(vms_kernel *k, vms_task *t, uint64_t va, void *buf, size_t len)
{
    vms_access_info info;
    if (vms_proc_access(k, t, va, VMS_ACC_READ, buf, len, &info, NULL) != VMS_OK)
        return VMS_ACCESS_OOM;
    return info.outcome;
}

vms_access_outcome vms_proc_write(vms_kernel *k, vms_task *t, uint64_t va, const void *buf,
                                  size_t len)
{
    vms_access_info info;
    /* vms_core_access only reads buf for a write. */
    void *b = (void *)(uintptr_t)buf;
    if (vms_proc_access(k, t, va, VMS_ACC_WRITE, b, len, &info, NULL) != VMS_OK)
        return VMS_ACCESS_OOM;
    return info.outcome;
}
