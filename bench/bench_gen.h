/*
 * bench_gen.h — the synthetic "program-shaped" reference stream the trace benchmarks
 * share: instruction fetches walking 1 MiB of code with occasional jumps, each followed
 * by 0..2 data references, half to a wandering stack, half uniform over a heap of
 * heap_mask + 8 bytes. Seeded: the same stream on every run.
 */
#ifndef VMSIM_BENCH_GEN_H
#define VMSIM_BENCH_GEN_H

#include <string.h>

#include "vmsim/rng.h"
#include "vmsim/trace.h"

typedef struct bench_gen {
    vms_rng g;
    uint64_t ip, sp, heap_mask; /* heap_mask: 8-byte aligned offsets within the heap */
    unsigned data_left;
} bench_gen;

/* The next reference of the stream. */
static inline void bench_gen_next(bench_gen *s, vms_trace_event *ev)
{
    memset(ev, 0, sizeof *ev);
    ev->type = VMS_TEV_ACCESS;
    if (s->data_left == 0) {
        s->ip += vms_rng_below(&s->g, 16) == 0 ? vms_rng_below(&s->g, 8192) - 4096 : 4;
        ev->access.va = 0x400000 + (s->ip & 0xfffff);
        ev->access.size = 4;
        ev->access.kind = VMS_TACC_EXEC;
        s->data_left = (unsigned)vms_rng_below(&s->g, 3);
        return;
    }
    s->data_left--;
    uint64_t r = vms_rng_below(&s->g, 4);
    if (r < 2) { /* stack */
        s->sp += vms_rng_below(&s->g, 64) - 32;
        ev->access.va = 0x7ffd00000000 + (s->sp & 0xffff8);
    } else { /* heap */
        ev->access.va = 0x55d000000000 + (vms_rng_next(&s->g) & s->heap_mask);
    }
    ev->access.size = 8;
    ev->access.kind = (uint8_t)(r & 1 ? VMS_TACC_WRITE : VMS_TACC_READ);
}

#endif
