/*
 * vmsim/machine.h — a simulated machine: RAM behind a bus, N cores each with its own
 * MMU (L1 iTLB, L1 dTLB, a shared L2 TLB, page-walk caches, a walker), a cost model,
 * and the configuration that describes all of it.
 *
 * A machine owns its RAM, bus and cores; nothing is global, so a process may run many
 * machines. Presets (vms_machine_preset) give realistic configurations; the built-in
 * default is "skylake" (see src/hw/preset.c for the sources of every figure).
 */
#ifndef VMSIM_MACHINE_H
#define VMSIM_MACHINE_H

#include "vmsim/arch/hashed.h"
#include "vmsim/bus.h"
#include "vmsim/cache.h"
#include "vmsim/dram.h"
#include "vmsim/format.h"
#include "vmsim/pwc.h"
#include "vmsim/ram.h"
#include "vmsim/strbuf.h"
#include "vmsim/swtlb.h"
#include "vmsim/tlb.h"

typedef struct vms_machine vms_machine;
typedef struct vms_core vms_core;

#define VMS_MAX_CORES 256

/* Cycles charged per event (DESIGN.md principle 4). */
typedef struct vms_cost_config {
    uint32_t l1_hit;     /* an L1 TLB hit */
    uint32_t l2_hit;     /* an L2 (STLB) hit after an L1 miss */
    uint32_t walk_ref;   /* each paging-structure entry the walker reads */
    uint32_t pwc_hit;    /* a page-walk-cache lookup that shortened a walk */
    uint32_t ad_write;   /* each entry written back to set A/D */
    uint32_t fault;      /* delivering a fault to the kernel (exception entry/exit) */
    uint32_t mem_access; /* the data access itself, per access (0: not modelled) */
    uint32_t invlpg;     /* an INVLPG / INVPCID */
    uint32_t cr3_load;   /* a MOV to CR3 */
    uint32_t interrupt;  /* delivering an external interrupt (entry and IRET) */
    /* Broadcast invalidation (x86 INVLPGB/TLBSYNC, core.h); charged to the issuing
     * core only: receivers are not interrupted. */
    uint32_t invlpgb;     /* issuing one INVLPGB */
    uint32_t tlbsync;     /* a TLBSYNC waiting for broadcasts within one socket */
    uint32_t tlbsync_hop; /* ... plus this per interconnect hop to the farthest core */
    /* The AArch64 forms (TLBI … IS, DSB ISH; arch/aarch64.h), charged the same way. */
    uint32_t tlbi_is;     /* issuing one TLBI VAE1IS / ASIDE1IS / VMALLE1IS */
    uint32_t dsb_ish;     /* a DSB ISH waiting for TLBI … IS within one socket */
    uint32_t dsb_ish_hop; /* ... plus this per interconnect hop to the farthest core */
} vms_cost_config;

/* The MMU of each core. */
typedef struct vms_mmu_config {
    vms_tlb_config l1i; /* instruction fetches */
    vms_tlb_config l1d; /* loads and stores */
    vms_tlb_config l2;  /* shared by i and d; nparts 0: no L2 */
    vms_pwc_config pwc;
    /* on: a software-managed TLB (swtlb.h): L1 TLBs are micro-TLBs of a JTLB that the
     * kernel refills; no L2 TLB, no PWC, no hardware walker. */
    vms_swtlb_config swtlb;
} vms_mmu_config;

typedef struct vms_machine_config {
    const char *name;         /* preset name, for display */
    uint64_t ram_bytes;       /* RAM size; multiple of 4 KiB; laid out low then above 4 GiB */
    unsigned ncores;          /* 1 … VMS_MAX_CORES */
    unsigned sockets;         /* 1 … ncores: cores split evenly (core c on socket
                                 c * sockets / ncores); sockets form a ring, the hop count
                                 between two is their distance on it (vms_machine_hops) */
    unsigned invlpgb_max;     /* pages one INVLPGB may name (AMD CPUID 8000_0008h EDX
                                 InvlpgbCountMax + 1); 0: no INVLPGB (it is refused) */
    unsigned levels;          /* 4 or 5 (LA57): the paging mode the cores start in */
    const vms_pt_format *fmt; /* the page-table format (format.h); NULL: x86-64 by levels */
    vms_design design;        /* what the walker searches (vmsim/arch/hashed.h): radix (the
                                 format's tree, the default), hashed or inverted (x86-64 only) */
    unsigned maxphyaddr;      /* physical-address width M, 36 … 52 */
    uint64_t seed;            /* drives every random choice (random replacement, …) */
    vms_mmu_config mmu;
    vms_cost_config cost;
    vms_cache_config cache; /* data caches (cache.h); cache.on false: none, as before */
    vms_dram_config dram;   /* DRAM timing (dram.h); dram.on false: a flat latency */
} vms_machine_config;

/* Physical layout (seed 000): RAM from 0 up to the device window, then above 4 GiB. */
#define VMS_DEVICE_WINDOW_BASE UINT64_C(0xC0000000)
#define VMS_DEVICE_WINDOW_END  UINT64_C(0x100000000)

/*
 * Fill *cfg with preset `name` ("skylake" — the default — or "tiny"). Returns
 * VMS_ERR_NOTFOUND (with the list of names in err) for an unknown name.
 */
vms_status vms_machine_preset(const char *name, vms_machine_config *cfg, vms_err *err);

/* Number of presets and the i-th name, for --help and listings. */
unsigned vms_machine_npresets(void);
const char *vms_machine_preset_name(unsigned i);

/* Check a configuration without building anything; VMS_ERR_INVAL names the problem. */
vms_status vms_machine_validate(const vms_machine_config *cfg, vms_err *err);

/*
 * Build a machine. a may be NULL (default allocator) and is borrowed for the machine's
 * lifetime; cfg is copied (policy names must be static strings or outlive the machine).
 * Cores start in supervisor mode with paging on (CR0.PG|WP, EFER.LME|LMA|NXE, CR4.PAE|
 * PGE and LA57 for 5 levels), CR3 = 0 and PCIDs off.
 */
vms_status vms_machine_create(const vms_allocator *a, const vms_machine_config *cfg,
                              vms_machine **out, vms_err *err);
void vms_machine_destroy(vms_machine *m);

const vms_machine_config *vms_machine_get_config(const vms_machine *m);

/* The page-table format the machine's cores start in (cfg.fmt, or x86-64 by cfg.levels). */
const vms_pt_format *vms_machine_format(const vms_machine *m);
vms_ram *vms_machine_ram(vms_machine *m);
vms_bus *vms_machine_bus(vms_machine *m);
const vms_allocator *vms_machine_allocator(const vms_machine *m);
unsigned vms_machine_ncores(const vms_machine *m);
/* Socket of core c, and interconnect hops between the sockets of cores a and b (0 on
 * one socket; distance on the ring of sockets otherwise). */
unsigned vms_machine_socket(const vms_machine *m, unsigned c);
unsigned vms_machine_hops(const vms_machine *m, unsigned a, unsigned b);
vms_core *vms_machine_core(vms_machine *m, unsigned i); /* NULL if i >= ncores */

/*
 * Append the machine's counters to sb as the members of a JSON object (no braces), so
 * that callers can add their own members: "accesses", "cycles", "tlb" {"l1i","l1d","l2"
 * each {"hits","misses",…}}, "walks", "walk" {"mem_refs",…}, "pwc", "faults_hw", "bus",
 * and "cores" (the same per core). Totals are sums over cores.
 */
vms_status vms_machine_stats_json_members(const vms_machine *m, vms_strbuf *sb);

/* The whole JSON object ({ members }), newline-terminated. */
vms_status vms_machine_stats_json(const vms_machine *m, vms_strbuf *sb);

/* Zero every counter of every core and the bus (contents of TLBs etc. stay). */
void vms_machine_reset_stats(vms_machine *m);

#endif
