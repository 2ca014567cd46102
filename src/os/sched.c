/*
 * sched.c — tasks on cores: one run queue per core, time slices in simulated cycles,
 * affinity, migration, idle cores (docs/SMP.md).
 *
 * Each core has a run queue; its head runs (the core's current task), the others wait.
 * A core whose queue is empty is idle: it runs the idle kernel thread and keeps the last
 * address space loaded lazily (smp.c). The kernel does not run tasks by itself: whoever
 * drives the simulation (a scenario, a benchmark, a test) asks vms_sched_next which task
 * runs next and makes it do one thing (an access, a system call). vms_sched_next picks
 * the busy core whose clock is the earliest — simulated time orders the interleaving
 * across cores — and on it the current task, unless its slice (kernel.sched_slice
 * cycles) is over and a peer waits: then the head goes to the tail (round robin) and the
 * next task is switched in (CR3 loaded as smp.c says). Before choosing, an idle core
 * pulls a waiting task its affinity allows from the most loaded core (idle balancing:
 * a migration). Driving a task directly (vms_proc_access and friends) switches it in on
 * its core at once, preempting the current task there.
 *
 * A core's time is its cycle counter (work) plus the cycles it sat idle: a core that was
 * idle and gets work moves its time on to the waker's (idle cycles, not work).
 */
#include "os/os_impl.h"

#include <string.h>

vms_status vmsi_sched_init(vms_kernel *k)
{
    k->cpu = vmsi_calloc(k->a, k->ncores, sizeof *k->cpu);
    return k->cpu ? VMS_OK : VMS_ERR_NOMEM;
}

void vmsi_sched_destroy(vms_kernel *k)
{
    if (!k->cpu)
        return;
    for (unsigned c = 0; c < k->ncores; c++)
        vmsi_free(k->a, k->cpu[c].rq, k->cpu[c].caprq * sizeof *k->cpu[c].rq);
    vmsi_free(k->a, k->cpu, k->ncores * sizeof *k->cpu);
    k->cpu = NULL;
}

static bool allowed(const vms_task *t, unsigned core)
{
    return (t->affinity[core / 64] >> (core % 64)) & 1u;
}

/* A core's time: the cycles it worked (its clock) plus the cycles it sat idle. */
static uint64_t clock_of(vms_kernel *k, unsigned core)
{
    return vmsi_core_clock(k, core) + k->cpu[core].idle_cycles;
}

/* An idle core gets work at the waker's time `now`: its time catches up (as idle time;
 * the core's cycle counter counts work only). */
static void wake_core(vms_kernel *k, unsigned core, uint64_t now)
{
    uint64_t c = clock_of(k, core);
    if (now > c)
        k->cpu[core].idle_cycles += now - c;
}

/* The clock of whoever is waking a core: the core the kernel works for. */
static uint64_t waker_clock(vms_kernel *k, unsigned target)
{
    unsigned w = k->cur_core;
    return w < k->ncores && w != target ? clock_of(k, w) : 0;
}

/* Put t at the tail of its core's queue. */
static vms_status rq_push(vms_kernel *k, vms_task *t)
{
    vmsi_cpu *cpu = &k->cpu[t->core];
    if (!vmsi_grow_to(k->a, (void **)&cpu->rq, &cpu->caprq, (size_t)cpu->nrq + 1, sizeof *cpu->rq,
                      4))
        return VMS_ERR_NOMEM;
    if (cpu->nrq == 0) {
        wake_core(k, t->core, waker_clock(k, t->core));
        cpu->slice_start = clock_of(k, t->core);
    }
    cpu->rq[cpu->nrq++] = t;
    t->queued = true;
    return VMS_OK;
}

/* The head of core's queue changed: switch it in now, or go idle (lazy TLB). */
static void head_changed(vms_kernel *k, unsigned core)
{
    vmsi_cpu *cpu = &k->cpu[core];
    if (cpu->nrq == 0) {
        cpu->lazy = k->cur_mm[core] != NULL; /* enter_lazy_tlb: keep the mm loaded */
        return;
    }
    vms_task *t = cpu->rq[0];
    if (t->proc->mm)
        vmsi_switch_mm(k, core, t->proc->mm);
    cpu->slice_start = clock_of(k, core); /* the slice starts after the switch */
}

vms_status vmsi_sched_enqueue(vms_kernel *k, vms_task *t)
{
    return t->queued ? VMS_OK : rq_push(k, t);
}

void vmsi_sched_dequeue(vms_kernel *k, vms_task *t)
{
    if (!t->queued)
        return;
    vmsi_cpu *cpu = &k->cpu[t->core];
    for (unsigned i = 0; i < cpu->nrq; i++) {
        if (cpu->rq[i] != t)
            continue;
        memmove(&cpu->rq[i], &cpu->rq[i + 1], (cpu->nrq - i - 1) * sizeof *cpu->rq);
        cpu->nrq--;
        t->queued = false;
        if (i == 0)
            head_changed(k, t->core);
        return;
    }
}

void vmsi_sched_switch_to(vms_kernel *k, vms_task *t)
{
    vmsi_cpu *cpu = &k->cpu[t->core];
    if (k->pke) /* XRSTOR of the task's PKRU (a register: nothing cached to flush) */
        vms_core_write_pkru(vmsi_core(k, t->core), t->pkru);
    if (!t->queued && t->proc->state == VMS_TASK_RUNNING)
        (void)rq_push(k, t); /* out of host memory: it runs unqueued (never picked) */
    if (t->queued && cpu->rq[0] != t) {
        unsigned i = 1;
        while (i < cpu->nrq && cpu->rq[i] != t)
            i++;
        memmove(&cpu->rq[1], &cpu->rq[0], i * sizeof *cpu->rq);
        cpu->rq[0] = t;
        if (t->proc->mm)
            vmsi_switch_mm(k, t->core, t->proc->mm);
        cpu->slice_start = clock_of(k, t->core);
        return;
    }
    if (t->proc->mm)
        vmsi_switch_mm(k, t->core, t->proc->mm);
}

/* Move t to core (set_task_cpu): off its queue, onto the other. */
static vms_status migrate(vms_kernel *k, vms_task *t, unsigned core)
{
    if (core == t->core)
        return VMS_OK;
    bool was = t->queued;
    vmsi_sched_dequeue(k, t);
    unsigned from = t->core;
    t->core = core;
    if (was) {
        uint64_t now = clock_of(k, from);
        vms_status st;
        if (k->cpu[core].nrq == 0)
            wake_core(k, core, now);
        st = rq_push(k, t);
        if (st != VMS_OK)
            return st;
        if (k->cpu[core].nrq == 1)
            head_changed(k, core);
    }
    k->st.nr_migrations++;
    return VMS_OK;
}

vms_status vms_task_set_core(vms_kernel *k, vms_task *t, unsigned core, vms_err *err)
{
    if (core >= k->ncores)
        return vmsi_err(err, VMS_ERR_INVAL, "core %u: the machine has cores 0 … %u", core,
                        k->ncores - 1);
    if (!allowed(t, core))
        return vmsi_err(err, VMS_ERR_INVAL, "core %u: not in task %d's affinity", core, t->tid);
    vms_status st = migrate(k, t, core);
    if (st != VMS_OK)
        return vmsi_err(err, st, "migrate: out of host memory");
    return VMS_OK;
}

vms_status vms_task_set_affinity(vms_kernel *k, vms_task *t, const uint64_t *mask, unsigned nbits,
                                 vms_err *err)
{
    uint64_t m[VMS_MAX_CORES / 64] = {0};
    unsigned first = UINT32_MAX;
    for (unsigned c = 0; c < nbits && c < k->ncores; c++)
        if ((mask[c / 64] >> (c % 64)) & 1u) {
            m[c / 64] |= UINT64_C(1) << (c % 64);
            first = first == UINT32_MAX ? c : first;
        }
    if (first == UINT32_MAX)
        return vmsi_err(err, VMS_ERR_INVAL, "affinity of task %d: no core of the machine in it",
                        t->tid);
    memcpy(t->affinity, m, sizeof m);
    if (!allowed(t, t->core)) {
        /* sched_setaffinity: leave for the least loaded allowed core. */
        unsigned best = first;
        for (unsigned c = first; c < k->ncores; c++)
            if (allowed(t, c) && k->cpu[c].nrq < k->cpu[best].nrq)
                best = c;
        vms_status st = migrate(k, t, best);
        if (st != VMS_OK)
            return vmsi_err(err, st, "migrate: out of host memory");
    }
    return VMS_OK;
}

void vms_task_get_affinity(const vms_task *t, uint64_t mask[VMS_MAX_CORES / 64])
{
    memcpy(mask, t->affinity, sizeof t->affinity);
}

/* Idle balancing: each idle core pulls one waiting task from the most loaded core. */
static void idle_balance(vms_kernel *k)
{
    unsigned busiest = 0;
    for (unsigned c = 1; c < k->ncores; c++)
        if (k->cpu[c].nrq > k->cpu[busiest].nrq)
            busiest = c;
    if (k->cpu[busiest].nrq < 2)
        return;
    for (unsigned c = 0; c < k->ncores; c++) {
        if (k->cpu[c].nrq)
            continue;
        vmsi_cpu *src = NULL;
        for (unsigned s = 0; s < k->ncores; s++)
            if (k->cpu[s].nrq >= 2 && (!src || k->cpu[s].nrq > src->nrq))
                src = &k->cpu[s];
        if (!src)
            return;
        for (unsigned i = src->nrq; i-- > 1;) {
            vms_task *t = src->rq[i];
            if (allowed(t, c)) {
                if (migrate(k, t, c) != VMS_OK)
                    return;
                break;
            }
        }
    }
}

vms_task *vms_sched_next(vms_kernel *k)
{
    idle_balance(k);
    unsigned best = UINT32_MAX;
    for (unsigned c = 0; c < k->ncores; c++)
        if (k->cpu[c].nrq && (best == UINT32_MAX || clock_of(k, c) < clock_of(k, best)))
            best = c;
    if (best == UINT32_MAX)
        return NULL;
    vmsi_cpu *cpu = &k->cpu[best];
    if (cpu->nrq > 1 && clock_of(k, best) - cpu->slice_start >= k->cfg.sched_slice) {
        vms_task *t = cpu->rq[0];
        memmove(&cpu->rq[0], &cpu->rq[1], (cpu->nrq - 1) * sizeof *cpu->rq);
        cpu->rq[cpu->nrq - 1] = t;
        k->st.sched_preempt++;
        head_changed(k, best);
    }
    return cpu->rq[0];
}

void vms_sched_yield(vms_kernel *k, vms_task *t)
{
    vmsi_cpu *cpu = &k->cpu[t->core];
    if (!t->queued || cpu->nrq < 2 || cpu->rq[0] != t)
        return;
    memmove(&cpu->rq[0], &cpu->rq[1], (cpu->nrq - 1) * sizeof *cpu->rq);
    cpu->rq[cpu->nrq - 1] = t;
    head_changed(k, t->core);
}

void vms_sched_get_core(const vms_kernel *k, unsigned core, vms_sched_core_info *out)
{
    memset(out, 0, sizeof *out);
    if (core >= k->ncores)
        return;
    const vmsi_cpu *cpu = &k->cpu[core];
    out->nr_running = cpu->nrq;
    out->current_tid = cpu->nrq ? cpu->rq[0]->tid : 0;
    out->lazy = cpu->lazy;
    const vmsi_mm *mm = k->cur_mm[core];
    out->loaded_pid = 0;
    for (unsigned i = 0; mm && i < k->nprocs; i++)
        if (k->procs[i]->mm == mm) {
            out->loaded_pid = k->procs[i]->pid;
            break;
        }
    out->loaded_pcid = mm ? mm->pcid : 0;
    out->idle_cycles = cpu->idle_cycles;
}

vms_status vms_sched_show(vms_kernel *k, vms_strbuf *sb)
{
    for (unsigned c = 0; c < k->ncores; c++) {
        const vmsi_cpu *cpu = &k->cpu[c];
        vms_core *core = vmsi_core(k, c);
        vms_sched_core_info ci;
        vms_sched_get_core(k, c, &ci);
        vms_strbuf_printf(sb, "core %u socket %u: clock %llu", c, vms_machine_socket(k->m, c),
                          (unsigned long long)vms_core_cycles(core));
        if (cpu->nrq == 0)
            vms_strbuf_printf(sb, ", idle%s", ci.lazy ? " (lazy TLB)" : "");
        else
            vms_strbuf_printf(sb, ", runs %s[%d]", cpu->rq[0]->proc->name, cpu->rq[0]->tid);
        if (k->cur_mm[c])
            vms_strbuf_printf(sb, ", mm of pid %d (pcid %u)", ci.loaded_pid, ci.loaded_pcid);
        else
            vms_strbuf_printf(sb, ", init_mm");
        static const char *const lv[VMS_TLB_NLEVELS] = {"l1i", "l1d", "l2"};
        vms_strbuf_printf(sb, "; TLB");
        for (unsigned l = 0; l < VMS_TLB_NLEVELS; l++) {
            vms_tlb *t = vms_core_tlb(core, (vms_tlb_level)l);
            if (t)
                vms_strbuf_printf(sb, " %s %u/%u", lv[l], vms_tlb_count(t), vms_tlb_capacity(t));
        }
        if (cpu->nrq > 1) {
            vms_strbuf_printf(sb, "; waiting");
            for (unsigned i = 1; i < cpu->nrq; i++)
                vms_strbuf_printf(sb, " %s[%d]", cpu->rq[i]->proc->name, cpu->rq[i]->tid);
        }
        vms_strbuf_printf(sb, "\n");
    }
    return sb->failed ? VMS_ERR_NOMEM : VMS_OK;
}
