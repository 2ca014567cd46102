/*
 * teach/teach.h — what the teaching machines share inside the library: their page-table
 * formats (format.c), the walkers compiled for them, and CPython's random generator
 * (pyrandom.c) that the OSTEP problems are drawn from.
 *
 * The machines: OSTEP's four homework simulators (ostep.c; include/vmsim/ostep.h), the
 * Silberschatz virtual-memory manager (vmm.c; include/vmsim/teach.h) and CS:APP's small
 * memory system (csapp.c; include/vmsim/teach.h). Each runs its translations through
 * vms_walk with regs.fmt set to its format, on tables it keeps in simulated RAM.
 *
 * Register convention for these formats: regs.cr3 holds the physical address of the
 * root (the page directory, the page table, or the segment table), unmasked; nothing
 * else in vms_regs is read.
 */
#ifndef VMSIM_ARCH_TEACH_H
#define VMSIM_ARCH_TEACH_H

#include "vmsim/format.h"
#include "vmsim/regs.h"
#include "vmsim/walk.h"

/* ---- formats (format.c; bit layouts drawn there and in docs/TEACHING.md) ---- */

extern const vms_pt_format vmsi_fmt_ostep_linear;       /* 4-byte PTEs, V at 31 */
extern const vms_pt_format vmsi_fmt_ostep_multilevel;   /* 15-bit VA, 32-byte pages */
extern const vms_pt_format vmsi_fmt_ostep_segmentation; /* two base-and-bounds segments */
extern const vms_pt_format vmsi_fmt_ostep_relocation;   /* one base-and-bounds pair */
extern const vms_pt_format vmsi_fmt_silberschatz;       /* 8-bit page, 8-bit offset */
extern const vms_pt_format vmsi_fmt_csapp;              /* 14-bit VA, 12-bit PA, 64 B */

/* A copy of the one-level radix format tmpl with pages of 2^page_shift bytes and a
 * virtual address of va_bits bits (so an index of va_bits - page_shift bits): the
 * linear table of `-a ASIZE -P PAGESIZE`, the VMM's `--page-bits`. */
void vmsi_teach_format_shape(const vms_pt_format *tmpl, unsigned page_shift, unsigned va_bits,
                             vms_pt_format *out);

/* The physical address of va under a translation a teaching format's walker gave. */
static inline uint64_t vmsi_teach_pa(const vms_pt_format *f, const vms_xlate *x, uint64_t va)
{
    return x->page_pa + (va & ((UINT64_C(1) << f->page_shift) - 1));
}

/* Segment tables (the base-and-bounds formats), 8-byte words in simulated RAM:
 *   word 0            the address-space size (the walker picks segment
 *                     s = va * nsegs / size, i.e. the top bit(s) of va)
 *   word 1 + 2s       segment s's base: its lowest physical byte when it grows
 *                     positive, one past its highest when it grows negative
 *   word 2 + 2s       bit 63 GN (grows negative), bits 62:0 the limit (size, bytes)
 */
#define VMSI_SEG_GN         (UINT64_C(1) << 63)
#define VMSI_SEG_LIMIT_MASK (VMSI_SEG_GN - 1)
static inline uint64_t vmsi_seg_desc_pa(uint64_t table, unsigned seg)
{
    return table + 8u + 16u * seg;
}

/* Read an entry of len (1, 2, 4 or 8) bytes, little-endian, through the bus. */
vms_status vmsi_teach_read_entry(vms_bus *bus, uint64_t pa, unsigned len, uint64_t *val);
vms_status vmsi_teach_write_entry(vms_bus *bus, uint64_t pa, unsigned len, uint64_t val);

/* ---- CPython's random (pyrandom.c) ---- */

typedef struct vmsi_pyrandom {
    uint32_t mt[624];
    unsigned mti;
} vmsi_pyrandom;

/* random.seed(seed) for an int seed (CPython 3: init_by_array over |seed|'s words). */
void vmsi_pyrandom_seed(vmsi_pyrandom *r, int64_t seed);

/* The next 32-bit MT19937 output (CPython genrand_uint32). */
uint32_t vmsi_pyrandom_u32(vmsi_pyrandom *r);

/* random.random(): a double in [0, 1) from two outputs, 53 bits. */
double vmsi_pyrandom_random(vmsi_pyrandom *r);

#endif
