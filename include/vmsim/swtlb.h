/*
 * vmsim/swtlb.h — a software-managed TLB, MIPS style (seed 002 §16: "a TLB miss raised
 * an exception, and the operating system's handler walked the page table and inserted
 * the translation"). With `tlb.mode = software` a core has no hardware walker and no
 * page-walk cache: its L1 TLBs are micro-TLBs that the hardware refills from one fully
 * associative joint TLB (JTLB), and a JTLB miss raises a TLB Refill exception whose
 * handler — kernel software — reads the page tables and writes an entry with TLBWR
 * (the slot the Random register names) or TLBWI (the slot the Index register names).
 *
 * The registers and instructions are those of the MIPS32/MIPS64 Privileged Resource
 * Architecture (MIPS Architecture For Programmers Vol. III, MD00090 / MD00091,
 * "CP0 Registers" and "TLB instructions"), drawn in docs/arch/mips.md:
 *
 *   EntryHi   63        13 12         0      one JTLB entry maps an even/odd PAIR of
 *            +-----------+-------------+     pages: VPN2 is VA[63:13] (for 4 KiB
 *            |   VPN2    | EHINV, ASID |     pages), PageMask widens both halves
 *            +-----------+-------------+
 *   EntryLo0/1 63  62 61          6 5  3 2 1 0
 *            +---+---+-------------+----+-+-+-+
 *            |RI |XI |     PFN     | C  |D|V|G|   PFN = PA[..:12]; D = writable (a store
 *            +---+---+-------------+----+-+-+-+   to D = 0 raises TLB Modified); V =
 *                                                 valid (V = 0 raises TLBL/TLBS Invalid)
 *   PageMask  bits 28:13 = Mask: 0 for 4 KiB halves, 0xFF (0x1FE000) for 1 MiB halves
 *   Index     bit 31 P (TLBP found no match), bits n-1:0 the entry
 *   Random    n-1:0, decremented every cycle from N-1 down to Wired, then wrapping
 *   Wired     n-1:0, entries below it are never chosen by TLBWR
 *
 * vmsim's departures, each deliberate: the ASID is the kernel's address-space ID at its
 * width (12 bits, x86-64 PCIDs; MIPS32 has 8, MIPS64 Release 6 ASIDX 10), kept in its
 * own field rather than EntryHi[7:0]; an invalidated entry has EHINV set (Release 6 /
 * Config4.IE), so it never matches; a TLBP or lookup that matches several entries
 * uses the lowest index instead of raising a Machine Check (test code checks that no
 * two valid entries overlap).
 */
#ifndef VMSIM_SWTLB_H
#define VMSIM_SWTLB_H

#include "vmsim/common.h"
#include "vmsim/walk.h"

typedef struct vms_core vms_core;

#define VMS_SWTLB_MAX_ENTRIES 1024

/* Machine configuration (vms_mmu_config.swtlb; config keys tlb.mode, tlb.jtlb, tlb.wired). */
typedef struct vms_swtlb_config {
    bool on;          /* tlb.mode = software */
    unsigned entries; /* JTLB entries (each maps an even/odd pair); 1 … 1024 */
    unsigned wired;   /* Wired at reset: 0 … entries - 1 */
} vms_swtlb_config;

/* EntryLo bits (MIPS64 layout). */
#define VMS_MIPS_LO_G         (UINT64_C(1) << 0)
#define VMS_MIPS_LO_V         (UINT64_C(1) << 1)
#define VMS_MIPS_LO_D         (UINT64_C(1) << 2)
#define VMS_MIPS_LO_C_SHIFT   3 /* cache coherency attribute, 3 bits */
#define VMS_MIPS_LO_C_MASK    (UINT64_C(7) << 3)
#define VMS_MIPS_LO_PFN_SHIFT 6
#define VMS_MIPS_LO_PFN_MASK  (((UINT64_C(1) << 56) - 1) << 6) /* bits 61:6 */
#define VMS_MIPS_LO_XI        (UINT64_C(1) << 62)
#define VMS_MIPS_LO_RI        (UINT64_C(1) << 63)
#define VMS_MIPS_C_UNCACHED   2 /* C = 2: uncached; 3: cacheable noncoherent */
#define VMS_MIPS_C_CACHED     3

/* PageMask values vmsim's handler uses: 4 KiB halves, and 1 MiB halves (a 2 MiB page
 * pair, the way Linux's MIPS port maps a huge page with both EntryLo registers). */
#define VMS_MIPS_PM_4K UINT64_C(0)
#define VMS_MIPS_PM_1M UINT64_C(0x1FE000)

#define VMS_MIPS_INDEX_P (UINT32_C(1) << 31) /* Index.P: the last TLBP found no match */
#define VMS_MIPS_HI_EHINV                                                                          \
    (UINT64_C(1) << 10) /* EntryHi.EHINV: TLBWI/TLBWR write an invalid entry */

/* One JTLB entry as TLBR reads it. vpn2 is VA[63:13] in place (bits 12:0 zero, and the
 * bits PageMask covers zero too); lo[0] maps the even half, lo[1] the odd one. */
typedef struct vms_mips_tlb_entry {
    uint64_t vpn2;
    uint64_t pagemask;
    uint32_t asid;
    bool g;     /* global: EntryLo0.G AND EntryLo1.G at the write */
    bool ehinv; /* invalidated: never matches */
    uint64_t lo[2];
} vms_mips_tlb_entry;

/* The CP0 registers of translation (the software-visible state of one core). */
typedef struct vms_mips_cp0 {
    uint64_t entryhi; /* VPN2 in place; the ASID is `asid` */
    uint32_t asid;    /* EntryHi.ASID: the current address space's ID */
    uint64_t entrylo[2];
    uint64_t pagemask;
    uint32_t index;    /* Index (bit 31: P) */
    uint32_t wired;    /* Wired */
    uint64_t badvaddr; /* BadVAddr: the address of the last TLB exception */
    uint64_t kscratch; /* KScratch1: where Linux keeps pgd_current — the table root */
} vms_mips_cp0;

/* The TLB exceptions (Cause.ExcCode: Mod 1, TLBL 2, TLBS 3; TLBXI 20 for a fetch from an
 * XI page). A refill is a TLBL/TLBS taken at the refill vector (no matching entry); an
 * invalid is the same code at the general vector (a matching entry with V = 0). */
typedef enum vms_mips_exc {
    VMS_MIPS_EXC_REFILL = 0,
    VMS_MIPS_EXC_INVALID,
    VMS_MIPS_EXC_MOD,
    VMS_MIPS_EXC_XI,
} vms_mips_exc;

#define VMS_MIPS_EXCCODE_MOD   1u
#define VMS_MIPS_EXCCODE_TLBL  2u
#define VMS_MIPS_EXCCODE_TLBS  3u
#define VMS_MIPS_EXCCODE_ADEL  4u /* user access to a kernel segment (loads, fetches) */
#define VMS_MIPS_EXCCODE_ADES  5u /* ... and stores */
#define VMS_MIPS_EXCCODE_TLBXI 20u

/* Counters of one core's software-managed TLB (JSON "swtlb"). */
typedef struct vms_swtlb_stats {
    uint64_t lookups;       /* JTLB lookups (micro-TLB misses) */
    uint64_t hits;          /* ... that matched a valid half allowing the access */
    uint64_t refills;       /* TLB Refill exceptions (no matching entry) */
    uint64_t invalid;       /* TLBL/TLBS Invalid exceptions (a matching entry, V = 0) */
    uint64_t modified;      /* TLB Modified exceptions (a store to D = 0) */
    uint64_t xi;            /* TLBXI exceptions (a fetch from an XI page) */
    uint64_t page_faults;   /* exceptions the handler passed on as page faults */
    uint64_t refill_cycles; /* cycles in the refill handler, table reads included */
    uint64_t exc_cycles;    /* cycles in the Invalid/Modified/XI handlers */
    uint64_t tlbwr, tlbwi, tlbp, tlbr;
} vms_swtlb_stats;

/*
 * The exception hook: the kernel's handler for exception `exc` at va (an access of
 * `kind`); BadVAddr and EntryHi (VPN2 of va, the current ASID) are loaded as the
 * hardware does. It runs on core c with the instructions below and charges its own
 * cycles (vms_core_add_cycles). Returns true to retry the access (ERET), or false with
 * *fault filled (kind VMS_FAULT_PF, flags VMS_FAULTF_*) to pass the exception on to the
 * kernel's page-fault path, which the access's caller runs. Without a hook every TLB
 * exception is passed on.
 */
typedef bool (*vms_mips_handler)(void *ctx, vms_core *c, vms_mips_exc exc, uint64_t va,
                                 vms_access_kind kind, vms_fault *fault);

/* Is core c's TLB software-managed? */
bool vms_core_swtlb(const vms_core *c);

/* Install the exception hook (NULL removes it); ctx is borrowed. */
void vms_core_mips_set_handler(vms_core *c, vms_mips_handler fn, void *ctx);

/* The CP0 registers (NULL on a hardware-TLB core). Software writes EntryLo0/1, PageMask,
 * Index and KScratch directly (MTC0); EntryHi with vms_mips_write_entryhi (its ASID is
 * the current address space, which tags the micro-TLBs) and Wired with
 * vms_mips_write_wired. */
vms_mips_cp0 *vms_core_mips_cp0(vms_core *c);
unsigned vms_mips_tlb_size(const vms_core *c);

/* MTC0 EntryHi: VPN2 (and EHINV) in entryhi, the ASID. */
void vms_mips_write_entryhi(vms_core *c, uint64_t entryhi, uint32_t asid);

/* MFC0 Random: Wired + the cycles since Wired was last written, counted down from N-1. */
uint32_t vms_mips_random(const vms_core *c);
/* MTC0 Wired: Random restarts at N-1. VMS_ERR_INVAL unless wired < N. */
vms_status vms_mips_write_wired(vms_core *c, uint32_t wired);

/* The TLB instructions. TLBWR and TLBWI write EntryHi/EntryLo0/1/PageMask into the entry
 * Random / Index names (TLBWI: VMS_ERR_INVAL for an index >= N) and drop the micro-TLB
 * entries of the old and the new pair; TLBP sets Index to the entry matching EntryHi
 * (VPN2, ASID or G), or Index.P; TLBR loads entry Index into the registers. Each costs
 * one cycle (a single instruction; the handler's instruction cost covers them). */
void vms_mips_tlbwr(vms_core *c);
vms_status vms_mips_tlbwi(vms_core *c);
void vms_mips_tlbp(vms_core *c);
vms_status vms_mips_tlbr(vms_core *c);

/* Entry i as the hardware holds it (false for i >= N). For display and tests. */
bool vms_mips_tlb_entry_at(const vms_core *c, unsigned i, vms_mips_tlb_entry *out);

/* A load the handler makes from physical pa (8 bytes): through the bus and, with caches
 * on, the hierarchy, counted in walk.mem_refs (by level `level`, 1 … 5) and charged
 * cost.walk_ref (or the hierarchy's latency). False (and *val 0) on a bus error. */
bool vms_mips_kload(vms_core *c, uint64_t pa, unsigned level, uint64_t *val);
/* The handler's store of an updated entry (A/D): counted in walk.ad_writes, charged
 * cost.ad_write. */
bool vms_mips_kstore(vms_core *c, uint64_t pa, uint64_t val);

/* The narration of the last micro-TLB miss (vmsim explain --tlb software): each
 * exception taken, the loads its handler made and the entry it wrote. */
#define VMS_MIPS_TRACE_EXC   4
#define VMS_MIPS_TRACE_LOADS 24
typedef struct vms_mips_trace_exc {
    vms_mips_exc exc;
    uint32_t exccode;       /* Cause.ExcCode */
    unsigned load0, nloads; /* its handler's loads: load[load0 … load0 + nloads) */
    unsigned nstores;       /* entries the handler wrote back (A/D) */
    uint64_t cycles;        /* the handler's cycles, loads and stores included */
    bool wrote, random;     /* it wrote an entry, with TLBWR (else TLBWI) */
    unsigned windex;        /* ... at this index */
    uint32_t random_reg;    /* Random when it wrote (meaningful for TLBWR) */
    vms_mips_tlb_entry written;
    bool passed_on; /* the handler passed it on as a page fault */
} vms_mips_trace_exc;

typedef struct vms_mips_trace {
    unsigned nexc;
    vms_mips_trace_exc exc[VMS_MIPS_TRACE_EXC];
    unsigned nloads;
    vms_walk_step load[VMS_MIPS_TRACE_LOADS];
    bool hit; /* ended with a JTLB hit (the access went on) */
} vms_mips_trace;

/* The narration of core c's last micro-TLB miss (zeros on a hardware-TLB core). */
void vms_mips_last_trace(const vms_core *c, vms_mips_trace *out);

/* A core's counters (NULL on a hardware-TLB core). */
const vms_swtlb_stats *vms_core_swtlb_stats(const vms_core *c);

/*
 * The kernel's TLB exception handlers (src/os/tlbex.c), Linux's arch/mips/mm/tlbex.c
 * in vmsim's terms: the refill handler reads the kernel's radix tables at KScratch in
 * the machine's format — each entry read a vms_mips_kload — and writes the pair with
 * TLBWR (or TLBWI at a round-robin index, tlbwi true); the Invalid and Modified
 * handlers re-read the entry, set A (and D for a store) in it when the access is
 * allowed and rewrite the probed slot with TLBWI, or pass the exception on as a page
 * fault. Costs: refill_cycles per refill, exc_cycles per other exception, plus the
 * loads and stores.
 */
typedef struct vms_tlbex_config {
    uint32_t refill_cycles; /* kernel.tlb_refill_cycles */
    uint32_t exc_cycles;    /* kernel.tlb_exc_cycles */
    bool tlbwi;             /* kernel.tlb_refill = tlbwi (else tlbwr) */
} vms_tlbex_config;

/* Defaults: refill 12 cycles, other exceptions 40, TLBWR. */
void vms_tlbex_config_default(vms_tlbex_config *cfg);

/* One core's handler state, owned by the caller (the kernel keeps one per core). */
typedef struct vms_tlbex {
    vms_tlbex_config cfg;
    unsigned next; /* TLBWI's round-robin slot, Wired … N-1 */
} vms_tlbex;

/* Install the handlers on core c with state h (borrowed: it must outlive the hook);
 * VMS_ERR_INVAL when c's TLB is not software-managed. */
vms_status vms_tlbex_attach(vms_core *c, vms_tlbex *h, const vms_tlbex_config *cfg);

#endif
