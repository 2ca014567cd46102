/*
 * vmsim/ostep.h — the homework simulators of Arpaci-Dusseau, "Operating Systems: Three
 * Easy Pieces" (github.com/remzi-arpacidusseau/ostep-homework) as vmsim machines:
 *
 *   linear        vm-paging/paging-linear-translate.py     a linear page table
 *   multilevel    vm-smalltables/paging-multilevel-translate.py   a two-level table
 *   segmentation  vm-segmentation/segmentation.py          two segments, base and bounds
 *   relocation    vm-mechanism/relocation.py               one base-and-bounds pair
 *
 * A problem is generated from the same parameters and seed as the script's and draws
 * the same random numbers in the same order (CPython's MT19937 random(), reproduced in
 * src/arch/teach/pyrandom.c), so `vmsim ostep multilevel -s 0` is the problem
 * `paging-multilevel-translate.py -s 0` poses. The tables are built in simulated RAM
 * in the machine's format (format.h: "ostep-linear", "ostep-multilevel",
 * "ostep-segmentation", "ostep-relocation") and every answer is a walk by that format's
 * walker (vms_walk), not a recomputation.
 */
#ifndef VMSIM_OSTEP_H
#define VMSIM_OSTEP_H

#include "vmsim/common.h"
#include "vmsim/format.h"
#include "vmsim/walk.h"

typedef enum vms_ostep_kind {
    VMS_OSTEP_LINEAR,
    VMS_OSTEP_MULTILEVEL,
    VMS_OSTEP_SEGMENTATION,
    VMS_OSTEP_RELOCATION,
} vms_ostep_kind;

/* The scripts' parameters (their flag, and default, in brackets). Sizes in bytes; -1
 * for base and limit values means "draw at random", as in the scripts. */
typedef struct vms_ostep_config {
    vms_ostep_kind kind;
    int64_t seed;         /* -s [0] */
    int64_t asize;        /* -a: address-space size [linear 16k; segmentation, relocation 1k] */
    int64_t psize;        /* -p: physical memory [linear 64k; segmentation, relocation 16k] */
    int64_t pagesize;     /* -P: linear [4k] */
    int64_t num;          /* -n: addresses to generate [multilevel 10; others 5] */
    int64_t used;         /* -u: linear, percent of the address space used [50] */
    int64_t allocated;    /* -a: multilevel, virtual pages allocated [64] */
    int64_t base0, len0;  /* -b, -l: segment 0 (relocation: the base and limit) [-1] */
    int64_t base1, len1;  /* -B, -L: segment 1; -B is its top, as the script takes it [-1] */
    const int64_t *addrs; /* -A: linear and segmentation, the addresses to translate */
    size_t naddrs;        /* (NULL/0: generate num at random) */
} vms_ostep_config;

/* The scripts' defaults for kind. */
void vms_ostep_config_default(vms_ostep_kind kind, vms_ostep_config *c);

/* The kind named "linear", "multilevel", "segmentation" or "relocation"; false if none. */
bool vms_ostep_kind_parse(const char *name, vms_ostep_kind *out);
const char *vms_ostep_kind_name(vms_ostep_kind kind);

/* A size as the scripts' convert() reads it: a decimal integer (sign allowed) with an
 * optional k, m or g suffix (powers of 1024). False on anything else. */
bool vms_ostep_parse_size(const char *s, int64_t *out);

typedef struct vms_ostep vms_ostep;

/*
 * Generate the problem cfg describes and build it in simulated RAM. cfg->addrs is
 * copied. Errors (VMS_ERR_INVAL, with the script's own message where it has one, e.g.
 * "physical memory size must be GREATER than address space size (for this
 * simulation)"; or a vmsim limit, named as such), VMS_ERR_NOMEM.
 */
vms_status vms_ostep_create(const vms_allocator *a, const vms_ostep_config *cfg, vms_ostep **out,
                            vms_err *err);
void vms_ostep_destroy(vms_ostep *o);

/* ---- the problem ---- */

const vms_ostep_config *vms_ostep_config_of(const vms_ostep *o);

/* The format the machine's tables are in (for linear, shaped by -a and -P). */
const vms_pt_format *vms_ostep_format(const vms_ostep *o);

/* Physical address of the root: the page directory (multilevel: PDBR << 5), the page
 * table (linear) or the segment table (segmentation, relocation). */
uint64_t vms_ostep_root(const vms_ostep *o);

/* The addresses to translate, in the script's order. */
size_t vms_ostep_naddrs(const vms_ostep *o);
uint64_t vms_ostep_addr(const vms_ostep *o, size_t i);

/* Read simulated physical memory (multilevel: the 4 KiB the script dumps). */
vms_status vms_ostep_read(const vms_ostep *o, uint64_t pa, void *buf, size_t len);

/* Linear: the raw page-table entry of vpn, read from RAM (V at bit 31). */
uint32_t vms_ostep_pte(const vms_ostep *o, uint64_t vpn);

/* Segmentation and relocation: segment s's descriptor, read from the segment table:
 * base (its top when it grows negative), limit, direction. */
void vms_ostep_segment(const vms_ostep *o, unsigned s, uint64_t *base, uint64_t *limit,
                       bool *grows_negative);

/* ---- the answers ---- */

typedef struct vms_ostep_xlate {
    uint64_t va;
    bool valid;           /* translated (multilevel: both entries valid; segments: in bounds) */
    uint64_t pa;          /* when valid */
    unsigned fault_level; /* when !valid: the walker's fault level (multilevel: 2 = PDE, 1 = PTE) */
    vms_fault_kind fault_kind; /* when !valid: PF (a fault or violation), GP (va out of range) */
    uint64_t vpn;              /* the paging machines' virtual page number */
    unsigned segment;          /* the segmentation machine's segment (0 or 1) */
    uint8_t value;             /* multilevel, when valid: the byte at pa */
    vms_walk_trace trace;      /* the walker's reads, root first */
} vms_ostep_xlate;

/* Translate va through the machine's walker. Any va may be asked (not only the
 * problem's). Returns VMS_OK with the answer in *out (a fault is an answer); a bus
 * error is VMS_ERR_INVAL (a bug: the tables are the machine's own). */
vms_status vms_ostep_translate(vms_ostep *o, uint64_t va, vms_ostep_xlate *out, vms_err *err);

#endif
