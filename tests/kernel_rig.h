/*
 * kernel_rig.h — a machine and its kernel for the kernel-model tests that check every
 * frame comes back (test_thp.c, test_hugetlb.c): boot a 2-core machine of a preset,
 * vms_kernel_check on demand, and a teardown that checks every frame is free again.
 * Include after harness.h.
 */
#ifndef VMS_TESTS_KERNEL_RIG_H
#define VMS_TESTS_KERNEL_RIG_H

#include <stdio.h>

#include "harness.h"
#include "vmsim/core.h"
#include "vmsim/frames.h"
#include "vmsim/kernel.h"
#include "vmsim/machine.h"

typedef struct rig {
    vms_machine *m;
    vms_kernel *k;
    uint64_t free0; /* free frames after boot: what rig_down expects back */
} rig;

/* A 2-core machine of preset `preset` with `ram` bytes and `swap` bytes of swap, its
 * kernel configuration then changed by `tune` (NULL: none); false (and a message) when
 * either does not come up. */
static inline bool rig_boot(rig *r, const char *preset, uint64_t ram, uint64_t swap,
                            void (*tune)(vms_kernel_config *))
{
    vms_machine_config mc;
    if (vms_machine_preset(preset, &mc, NULL) != VMS_OK)
        return false;
    mc.ram_bytes = ram;
    mc.ncores = 2;
    mc.seed = th_seed;
    if (vms_machine_create(NULL, &mc, &r->m, NULL) != VMS_OK)
        return false;
    vms_kernel_config kc;
    vms_kernel_config_default(&kc);
    kc.seed = th_seed;
    kc.swap_bytes = swap;
    if (tune)
        tune(&kc);
    vms_err err = {0};
    if (vms_kernel_create(r->m, &kc, &r->k, &err) != VMS_OK) {
        fprintf(stderr, "kernel: %s\n", err.msg);
        vms_machine_destroy(r->m);
        return false;
    }
    r->free0 = vms_frames_nfree(vms_kernel_frames(r->k));
    return true;
}

static inline uint64_t rig_nfree(rig *r)
{
    return vms_frames_nfree(vms_kernel_frames(r->k));
}

/* vms_kernel_check passes (its message printed when not). */
static inline void rig_check(rig *r)
{
    vms_err err = {0};
    vms_status st = vms_kernel_check(r->k, &err);
    if (st != VMS_OK)
        fprintf(stderr, "check: %s\n", err.msg);
    CHECK_EQ(st, VMS_OK);
}

/* Every frame free again (the processes are gone), then tear down. */
static inline void rig_down(rig *r)
{
    rig_check(r);
    CHECK_EQ(rig_nfree(r), r->free0);
    vms_kernel_destroy(r->k);
    vms_machine_destroy(r->m);
}

#endif
