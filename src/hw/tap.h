/*
 * tap.h — the event tap's insides (vmsim/events.h): where the observer is kept and how
 * the hardware and the kernel hand it an event. Shared by src/hw, src/os and src/virt.
 *
 * A machine owns one vmsi_tap (fn NULL: no observer). Everything that emits reaches it
 * through a pointer fixed at creation — a core through its machine, a TLB level or the
 * PWC through its vmsi_unit_tap, the bus (and so the page-table writer) through
 * vmsi_bus_tap, the kernel through its machine — so installing or removing an observer
 * is one store and an emit site costs one load and a branch when there is none. Emit
 * sites build the event only after that branch (vmsi_tap_on).
 */
#ifndef VMSIM_TAP_H
#define VMSIM_TAP_H

#include "vmsim/events.h"

typedef struct vmsi_tap {
    vms_event_fn fn; /* NULL: no observer */
    void *user;
    vms_machine *m;
    /* The core the kernel works for now (the kernel's cur_core, bound when it is
     * created): the core of the events the page-table writer reports. NULL: none. */
    const unsigned *kernel_core;
} vmsi_tap;

/* What a TLB level or a PWC knows of where it sits: its core and level. */
typedef struct vmsi_unit_tap {
    const vmsi_tap *tap;
    const vms_core *core;
    vms_tlb_level level; /* TLB levels only */
} vmsi_unit_tap;

static inline bool vmsi_tap_on(const vmsi_tap *t)
{
    return t && __builtin_expect(t->fn != NULL, 0);
}

static inline bool vmsi_unit_on(const vmsi_unit_tap *u)
{
    return u && vmsi_tap_on(u->tap);
}

/* Stamp ev with core (VMS_EV_NO_CORE or an index) and that core's clock; call fn. */
void vmsi_tap_emit(const vmsi_tap *t, int core, vms_event *ev);

/* The same for the core the kernel works for (kernel_core). */
void vmsi_tap_emit_kernel(const vmsi_tap *t, vms_event *ev);

/* The same for a unit: its core. */
void vmsi_unit_emit(const vmsi_unit_tap *u, vms_event *ev);

/* The machine's tap (never NULL). */
vmsi_tap *vmsi_machine_tap(vms_machine *m);

/* The bus's tap (NULL for a bus no machine owns) and the setter the machine uses. */
const vmsi_tap *vmsi_bus_tap(const vms_bus *bus);
void vmsi_bus_set_tap(vms_bus *bus, const vmsi_tap *t);

/* Give a TLB or a PWC its place (NULL: none; its fills and flushes are not reported). */
void vmsi_tlb_set_tap(vms_tlb *tlb, const vmsi_unit_tap *u);
void vmsi_pwc_set_tap(vms_pwc *pwc, const vmsi_unit_tap *u);

#endif
