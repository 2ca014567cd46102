/*
 * tpool.h — a test machine for page-table tests (header-only): RAM behind a bus, and a
 * pool of table frames handed to vms_pt through vms_pt_ops, which counts allocations
 * and frees, catches double frees and frees of frames it never gave, and can fail on
 * demand. Table frames come from [TP_POOL_BASE, +TP_POOL_FRAMES pages); tests map data
 * pages elsewhere.
 */
#ifndef VMSIM_TEST_TPOOL_H
#define VMSIM_TEST_TPOOL_H

#include "harness.h"
#include "vmsim/bus.h"
#include "vmsim/pt.h"

#define TP_RAM_BYTES   (UINT64_C(1) << 32) /* 4 GiB of (sparse) RAM */
#define TP_POOL_BASE   (UINT64_C(1) << 30) /* table frames live at 1 GiB … */
#define TP_POOL_FRAMES 4096u               /* … up to 1 GiB + 16 MiB */

typedef struct tpool {
    vms_ram *ram;
    vms_bus *bus;
    uint8_t used[TP_POOL_FRAMES];
    unsigned next;      /* where the next search starts */
    long allocs, frees; /* successful allocations and frees */
    long fail_after;    /* allocations left before failing; < 0: never fail */
    unsigned bad_frees; /* double frees or foreign frames */
    vms_pt_ops ops;
} tpool;

static vms_status tp_alloc(void *ud, uint64_t *pa)
{
    tpool *tp = ud;
    if (tp->fail_after == 0)
        return VMS_ERR_NOMEM;
    if (tp->fail_after > 0)
        tp->fail_after--;
    for (unsigned k = 0; k < TP_POOL_FRAMES; k++) {
        unsigned i = (tp->next + k) % TP_POOL_FRAMES;
        if (tp->used[i])
            continue;
        tp->used[i] = 1;
        tp->next = i + 1;
        *pa = TP_POOL_BASE + ((uint64_t)i << 12);
        /* The contract: a zeroed frame. (Freed frames were scribbled on, see tp_free.) */
        vms_ram_fill(tp->ram, *pa, 0, 4096);
        tp->allocs++;
        return VMS_OK;
    }
    return VMS_ERR_NOMEM;
}

static void tp_free(void *ud, uint64_t pa)
{
    tpool *tp = ud;
    uint64_t i = (pa - TP_POOL_BASE) >> 12;
    if (pa < TP_POOL_BASE || i >= TP_POOL_FRAMES || (pa & 0xfff) || !tp->used[i]) {
        tp->bad_frees++;
        return;
    }
    tp->used[i] = 0;
    /* Scribble on freed tables: a use after free then shows up as garbage entries. */
    vms_ram_fill(tp->ram, pa, 0xee, 4096);
    tp->frees++;
}

/* Create RAM [0, 4 GiB) all routed by the bus. Returns false on failure. */
static bool tp_init(tpool *tp)
{
    memset(tp, 0, sizeof *tp);
    tp->fail_after = -1;
    tp->ops.alloc_table = tp_alloc;
    tp->ops.free_table = tp_free;
    tp->ops.ud = tp;
    if (vms_ram_create(NULL, TP_RAM_BYTES, &tp->ram, NULL) != VMS_OK)
        return false;
    if (vms_bus_create(NULL, tp->ram, &tp->bus, NULL) != VMS_OK)
        return false;
    return vms_bus_add_ram(tp->bus, 0, TP_RAM_BYTES, NULL) == VMS_OK;
}

static void tp_fini(tpool *tp)
{
    vms_bus_destroy(tp->bus);
    vms_ram_destroy(tp->ram);
}

/* Table frames currently handed out. */
static inline long tp_live(const tpool *tp)
{
    return tp->allocs - tp->frees;
}

#endif
