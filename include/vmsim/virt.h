/*
 * vmsim/virt.h — virtualization: second-stage page tables in host RAM (Intel EPT, AMD
 * NPT, Arm Stage 2) and the two-dimensional walk that composes a guest's translation
 * (GVA -> GPA, the guest's own tables in guest-physical memory) with the hypervisor's
 * (GPA -> HPA), as seed 002 §09 describes.
 *
 * ---- Intel EPT (SDM Vol. 3C §29.3 "The Extended Page Table Mechanism", Tables 29-1 …
 * 29-6; EPTP §25.6.11 Table 25-9; exit qualification §28.2.1 Table 28-7) ----
 *
 * EPT paging-structure entry, 8 bytes, 4 or 5 levels (EPT PML5/PML4/PDPT/PD/PT):
 *
 *    63  62   52 51    M M-1                 12 11  10   9   8   7   6   5  3  2  1  0
 *   +---+-------+-------+---------------------+---+----+---+---+---+----+-----+--+--+--+
 *   |SVE| ign.  | rsvd  | address             |ign| XU | D | A |PS |IPAT| MT  |X |W |R |
 *   +---+-------+-------+---------------------+---+----+---+---+---+----+-----+--+--+--+
 *
 *   R W X  read, write, execute (supervisor execute with mode-based control) — an entry
 *          is present when any of 2:0 is set; W without R is a misconfiguration
 *   MT     EPT memory type of a leaf (0 UC, 1 WC, 4 WT, 5 WP, 6 WB; 2, 3, 7 are
 *          misconfigurations); reserved (must be 0) in a non-leaf entry (7:3)
 *   IPAT   ignore the guest's PAT (leaf); PS a 1 GiB (PDPTE) or 2 MiB (PDE) leaf; bit 7
 *          of a PML4E/PML5E is reserved; of a PTE ignored
 *   A D    accessed (every level), dirty (leaf), set by the processor when EPTP bit 6
 *   XU     user-mode execute (mode-based execute control: not modelled, ignored)
 *   SVE    suppress #VE (not modelled)
 *   A 1 GiB leaf keeps bits 29:12 reserved, a 2 MiB leaf 20:12.
 *
 * EPTP (the VMCS field "EPT pointer"):
 *
 *    63    N N-1                       12 11   8   7    6    5       3  2    0
 *   +-------+---------------------------+------+-----+----+----------+-------+
 *   | rsvd  | EPT PML4 / PML5 address   | rsvd | SSS | AD | length-1 | memty |
 *   +-------+---------------------------+------+-----+----+----------+-------+
 *   memory type of the walk's own accesses (0 UC, 6 WB); page-walk length minus 1
 *   (3: 4-level, 4: 5-level); AD enables accessed and dirty flags.
 *
 * ---- AMD NPT (APM Vol. 2 §15.25 "Nested Paging") ----
 * The nested tables are ordinary x86-64 long-mode tables (pte.h) rooted at nCR3 (VMCB
 * offset 0xB0), 4 or 5 levels as the host's CR4.LA57; every nested access is a user
 * access (§15.25.5), so nested entries need US = 1. A nested page fault (#VMEXIT_NPF,
 * code 0x400) reports EXITINFO1 = the #PF error code of the nested walk, with bit 32 set
 * when the fault was on the final guest-physical address and bit 33 set when it was on
 * a guest page-table access, and EXITINFO2 = the guest-physical address.
 *
 * ---- Arm Stage 2 (Arm ARM DDI 0487 §D8.3 descriptor formats, stage 2 attributes;
 * VTTBR_EL2, VTCR_EL2; stage 2 aborts reported in ESR_EL2 with HPFAR_EL2) ----
 *
 * Stage 2 block / page descriptor, 4 KiB granule (table descriptors as stage 1, without
 * attributes):
 *
 *    63  55 54  53  52  51  50  48 47           n n-1 12 11 10  9 8  7  6  5    2 1 0
 *   +------+---+---+----+---+------+--------------+------+--+--+---+-----+--------+-+-+
 *   | ign. |XN |RES|Cont|DBM| RES0 | output addr  | RES0 |nT|AF|SH |S2AP |MemAttr |t|1|
 *   +------+---+---+----+---+------+--------------+------+--+--+---+-----+--------+-+-+
 *   S2AP[0] (bit 6) readable, S2AP[1] (bit 7) writable; XN (bit 54) execute-never at
 *   every EL (FEAT_XNX's split is not modelled); AF access flag (an Access flag fault
 *   unless VTCR_EL2.HA); DBM with VTCR_EL2.HD: a write to S2AP[1] = 0 sets S2AP[1]
 *   (the stage 2 dirty state). MemAttr[3:0]: 0b1111 Normal write-back, 0b0001 Device.
 *
 * VTTBR_EL2:  63:48 VMID (16 bits, VTCR_EL2.VS = 1) | 47:1 BADDR (the stage 2 root) | CnP.
 * VTCR_EL2 fields read here: T0SZ 5:0, SL0 7:6 (4 KiB granule: 2 = start at level 0,
 * 1 = level 1), TG0 15:14, PS 18:16, VS 19, HA 21, HD 22.
 *
 * Levels are vmsim's (format.h): the leaf level 1 at the bottom, the root at `levels`.
 */
#ifndef VMSIM_VIRT_H
#define VMSIM_VIRT_H

#include "vmsim/bus.h"
#include "vmsim/format.h"
#include "vmsim/kernel.h"
#include "vmsim/pt.h"
#include "vmsim/pwc.h"
#include "vmsim/tlb.h"
#include "vmsim/walk.h"

/* ---- EPT bits ---- */
#define VMS_EPT_R         (UINT64_C(1) << 0)
#define VMS_EPT_W         (UINT64_C(1) << 1)
#define VMS_EPT_X         (UINT64_C(1) << 2)
#define VMS_EPT_RWX       (VMS_EPT_R | VMS_EPT_W | VMS_EPT_X)
#define VMS_EPT_MT_SHIFT  3
#define VMS_EPT_MT_MASK   (UINT64_C(7) << 3)
#define VMS_EPT_IPAT      (UINT64_C(1) << 6)
#define VMS_EPT_PS        (UINT64_C(1) << 7)
#define VMS_EPT_A         (UINT64_C(1) << 8)
#define VMS_EPT_D         (UINT64_C(1) << 9)
#define VMS_EPT_XU        (UINT64_C(1) << 10)
#define VMS_EPT_SVE       (UINT64_C(1) << 63)
#define VMS_EPT_ADDR_MASK UINT64_C(0x000FFFFFFFFFF000) /* 51:12 */

_Static_assert((VMS_EPT_RWX | VMS_EPT_MT_MASK | VMS_EPT_IPAT | VMS_EPT_PS | VMS_EPT_A | VMS_EPT_D |
                VMS_EPT_XU) == UINT64_C(0x7FF),
               "EPT attribute bits fill 10:0");

/* EPT memory types (SDM §29.3.7). */
enum {
    VMS_EPT_MT_UC = 0,
    VMS_EPT_MT_WC = 1,
    VMS_EPT_MT_WT = 4,
    VMS_EPT_MT_WP = 5,
    VMS_EPT_MT_WB = 6
};

#define VMS_EPTP_MT_MASK   UINT64_C(7)
#define VMS_EPTP_WL_SHIFT  3
#define VMS_EPTP_WL_MASK   (UINT64_C(7) << 3)
#define VMS_EPTP_AD        (UINT64_C(1) << 6)
#define VMS_EPTP_ADDR_MASK UINT64_C(0x000FFFFFFFFFF000)

/* The EPTP for the EPT root at root (4 KiB aligned), levels 4 or 5, the walk's memory
 * type and whether accessed/dirty flags are on. */
static inline uint64_t vms_eptp_make(uint64_t root, unsigned levels, unsigned memtype, bool ad)
{
    return (root & VMS_EPTP_ADDR_MASK) | ((uint64_t)(levels - 1) << VMS_EPTP_WL_SHIFT) |
           (memtype & VMS_EPTP_MT_MASK) | (ad ? VMS_EPTP_AD : 0);
}

/* The page-walk length an EPTP selects (bits 5:3 plus one). */
static inline unsigned vms_eptp_levels(uint64_t eptp)
{
    return (unsigned)((eptp & VMS_EPTP_WL_MASK) >> VMS_EPTP_WL_SHIFT) + 1u;
}

/* EPT violation exit qualification (SDM Table 28-7). */
#define VMS_EPTQ_READ       (UINT64_C(1) << 0) /* the access was a data read */
#define VMS_EPTQ_WRITE      (UINT64_C(1) << 1) /* a data write */
#define VMS_EPTQ_FETCH      (UINT64_C(1) << 2) /* an instruction fetch */
#define VMS_EPTQ_READABLE   (UINT64_C(1) << 3) /* AND of bit 0 over the entries used */
#define VMS_EPTQ_WRITABLE   (UINT64_C(1) << 4) /* AND of bit 1 */
#define VMS_EPTQ_EXECUTABLE (UINT64_C(1) << 5) /* AND of bit 2 */
#define VMS_EPTQ_GLA_VALID  (UINT64_C(1) << 7) /* the guest-linear address is valid */
#define VMS_EPTQ_GLA_XLATE  (UINT64_C(1) << 8) /* 1: the final GPA; 0: a guest table */

/* NPF EXITINFO1 bits above the #PF error code (APM §15.25.6). */
#define VMS_NPF_FINAL (UINT64_C(1) << 32) /* the final guest-physical address */
#define VMS_NPF_TABLE (UINT64_C(1) << 33) /* a guest page-table access */

/* ---- Arm Stage 2 bits ---- */
#define VMS_S2_VALID          (UINT64_C(1) << 0)
#define VMS_S2_TYPE           (UINT64_C(1) << 1) /* 1: table (L0-2) / page (L3); 0: block */
#define VMS_S2_MEMATTR_SHIFT  2
#define VMS_S2_MEMATTR_MASK   (UINT64_C(0xF) << 2)
#define VMS_S2_MEMATTR_NORMAL (UINT64_C(0xF) << 2) /* Normal, inner/outer write-back */
#define VMS_S2_MEMATTR_DEVICE (UINT64_C(0x1) << 2) /* Device-nGnRE */
#define VMS_S2_S2AP_R         (UINT64_C(1) << 6)
#define VMS_S2_S2AP_W         (UINT64_C(1) << 7)
#define VMS_S2_SH_INNER       (UINT64_C(3) << 8)
#define VMS_S2_AF             (UINT64_C(1) << 10)
#define VMS_S2_DBM            (UINT64_C(1) << 51)
#define VMS_S2_CONT           (UINT64_C(1) << 52)
#define VMS_S2_XN             (UINT64_C(1) << 54)
#define VMS_S2_ADDR_MASK      UINT64_C(0x0000FFFFFFFFF000) /* 47:12 */

#define VMS_VTTBR_VMID_SHIFT 48
#define VMS_VTTBR_BADDR_MASK UINT64_C(0x0000FFFFFFFFF000)
#define VMS_VTCR_SL0_SHIFT   6
#define VMS_VTCR_VS          (UINT64_C(1) << 19)
#define VMS_VTCR_HA          (UINT64_C(1) << 21)
#define VMS_VTCR_HD          (UINT64_C(1) << 22)

/* VTTBR_EL2 for the stage 2 root at root with a 16-bit VMID. */
static inline uint64_t vms_vttbr_make(uint64_t root, uint16_t vmid)
{
    return (uint64_t)vmid << VMS_VTTBR_VMID_SHIFT | (root & VMS_VTTBR_BADDR_MASK);
}

/* VTCR_EL2 for a 4 KiB-granule stage 2 of `levels` (3: 39-bit IPA from level 1; 4:
 * 48-bit IPA from level 0), 16-bit VMIDs, hardware AF (ha) and dirty-state (hd) updates. */
static inline uint64_t vms_vtcr_make(unsigned levels, bool ha, bool hd)
{
    uint64_t t0sz = levels == 4 ? 16 : 25, sl0 = levels == 4 ? 2 : 1;
    return t0sz | sl0 << VMS_VTCR_SL0_SHIFT | (UINT64_C(5) << 16) /* PS: 48 bits */ | VMS_VTCR_VS |
           (ha ? VMS_VTCR_HA : 0) | (hd ? VMS_VTCR_HD : 0);
}

/* ---- second-stage formats (page-table editor descriptors, pt.h) ---- */

/* EPT with 4 or 5 levels ("ept4", "ept5"); NULL otherwise. GPAs are unsigned 48/57-bit. */
const vms_pt_format *vms_format_ept(unsigned levels);
/* NPT: the x86-64 format of 4 or 5 levels (the same descriptor as stage 1). */
const vms_pt_format *vms_format_npt(unsigned levels);
/* Arm stage 2, 4 KiB granule, 3 (39-bit IPA) or 4 (48-bit IPA) levels ("aarch64-s2"). */
const vms_pt_format *vms_format_stage2(unsigned levels);

/* ---- the second stage's control state and walker ---- */

typedef enum vms_s2_kind {
    VMS_S2_NONE = 0,
    VMS_S2_EPT, /* Intel: EPTP */
    VMS_S2_NPT, /* AMD: nCR3 (+ host CR4.LA57, EFER.NXE) */
    VMS_S2_ARM, /* Arm: VTTBR_EL2 + VTCR_EL2 */
} vms_s2_kind;

/* What a vCPU's second stage is: the VMCS's EPTP, the VMCB's nCR3, or VTTBR/VTCR_EL2. */
typedef struct vms_s2_regs {
    vms_s2_kind kind;
    uint64_t eptp;       /* EPT */
    uint64_t ncr3;       /* NPT: 51:12 the nested root */
    unsigned npt_levels; /* NPT: 4 or 5 */
    uint64_t vttbr;      /* Arm */
    uint64_t vtcr;       /* Arm */
    unsigned maxphyaddr; /* host physical-address width (0: 52) */
} vms_s2_regs;

/* Root, levels and format of s2 (the format the page-table editor builds it with). */
uint64_t vms_s2_root(const vms_s2_regs *s2);
unsigned vms_s2_levels(const vms_s2_regs *s2);
const vms_pt_format *vms_s2_format(const vms_s2_regs *s2);
/* Does this second stage set accessed/dirty state in hardware (EPTP.AD, always on NPT,
 * VTCR_EL2.HA)? */
bool vms_s2_ad(const vms_s2_regs *s2);

/* A second-stage translation of one guest-physical address. */
typedef struct vms_s2_xlate {
    uint64_t page_hpa;   /* host-physical base of the page (aligned to size) */
    vms_pgsize size;     /* the second-stage page size */
    uint8_t r, w, x;     /* effective rights (ANDed over the levels on EPT and NPT) */
    uint8_t dirty;       /* the leaf is dirty, or the stage tracks no dirty state */
    uint64_t leaf_ptep;  /* host-physical address of the leaf entry */
    unsigned leaf_level; /* its level */
} vms_s2_xlate;

typedef enum vms_s2_fault_kind {
    VMS_S2F_NONE = 0,
    VMS_S2F_VIOLATION, /* EPT violation / NPF / stage 2 translation, AF or permission fault */
    VMS_S2F_MISCONFIG, /* EPT misconfiguration / NPF with RSVD / stage 2 address size fault */
    VMS_S2F_BUS,       /* a second-stage entry's host address decodes to nothing */
} vms_s2_fault_kind;

/* A fault of the second stage: a VM exit, for the hypervisor (never the guest). */
typedef struct vms_s2_fault {
    vms_s2_fault_kind kind;
    uint64_t gpa;   /* the guest-physical address that failed (EPT: the VMCS field) */
    uint64_t gva;   /* the guest-linear address, when gva_valid */
    bool gva_valid; /* the fault happened translating a guest-linear address */
    bool table;     /* the access was to a guest paging-structure entry (not the final GPA) */
    unsigned level; /* the second-stage level at which the walk stopped */
    uint64_t qual;  /* EPT: exit qualification; NPT: EXITINFO1; Arm: ESR_EL2 */
    uint64_t hpa;   /* for VMS_S2F_BUS: the host address that failed */
} vms_s2_fault;

/* How an access reaches the second stage: its kind, and whether it is a guest
 * paging-structure reference (EPT with A/D enabled treats those as writes, §29.3.5). */
typedef struct vms_s2_access {
    vms_access_kind kind;
    bool table;
    bool user; /* the guest's CPL 3 (ESR/qualification only) */
    uint64_t gva;
    bool gva_valid;
} vms_s2_access;

/*
 * Walk the second stage s2 for gpa: read each entry from host RAM through bus, check
 * the rights the access needs, set A/D as the architecture does (EPT with EPTP.AD:
 * A in every entry, D in the leaf on a write; NPT: the x86-64 walker's A/D; Arm: AF
 * with VTCR_EL2.HA, the DBM dirty state with HD). stats (required) counts walks,
 * entries read (mem_refs, refs_by_level) and A/D writes; trace may be NULL. probe: a
 * software walk (the hypervisor's own view) that sets nothing and counts nothing.
 * Returns true with *out, or false with *fault. Never allocates.
 */
bool vms_s2_walk(vms_bus *bus, const vms_s2_regs *s2, uint64_t gpa, const vms_s2_access *acc,
                 bool probe, vms_s2_xlate *out, vms_s2_fault *fault, vms_walk_stats *stats,
                 vms_walk_trace *trace);

/* "EPT violation", "EPT misconfiguration", "NPF", "stage 2 abort", … */
const char *vms_s2_fault_name(const vms_s2_regs *s2, const vms_s2_fault *f);

/* ---- the two-dimensional walk ---- */

/* One memory reference of a 2D walk, in the order the hardware makes them. */
typedef struct vms_nested_ref {
    uint8_t stage;     /* 1: a guest paging-structure entry; 2: a second-stage entry */
    uint8_t level;     /* the entry's level in its own tables */
    uint8_t for_level; /* stage 2: the guest level whose table GPA it translates, 0 for the
                          final GPA; stage 1: the same as level */
    uint64_t gpa;      /* stage 1: the guest entry's GPA; stage 2: the GPA translated */
    uint64_t ptep;     /* host-physical address read */
    uint64_t pte;      /* the value read (before A/D updates) */
} vms_nested_ref;

#define VMS_NESTED_MAX_REFS 40 /* (5 + 1) * (5 + 1) - 1 = 35 at most */

typedef struct vms_nested_trace {
    unsigned nrefs;
    unsigned guest_pwc_level; /* as vms_walk_trace.pwc_level, for the guest walk */
    unsigned s2_tlb_hits;     /* guest-physical translations the nested TLB supplied */
    vms_nested_ref ref[VMS_NESTED_MAX_REFS];
} vms_nested_trace;

/* Counters of a two-stage MMU (one per vCPU). */
typedef struct vms_nested_stats {
    uint64_t walks;            /* 2D walks */
    uint64_t guest_refs;       /* guest entries read */
    uint64_t s2_refs;          /* second-stage entries read */
    uint64_t s2_refs_tables;   /* … of them, to translate guest table GPAs */
    uint64_t s2_walks;         /* second-stage walks */
    uint64_t s2_ad_writes;     /* second-stage entries written for A/D */
    uint64_t s2_tlb_lookups;   /* nested TLB (GPA -> HPA) lookups */
    uint64_t s2_tlb_hits;      /* … that hit */
    uint64_t guest_faults;     /* walks that ended in a guest fault (no VM exit) */
    uint64_t exits_violation;  /* walks that ended in a second-stage violation */
    uint64_t exits_misconfig;  /* … in a misconfiguration */
    uint64_t refs_by_level[6]; /* second-stage entries read, by level */
    uint64_t gbus_writes;      /* the guest software's writes to guest memory (outside walks) */
} vms_nested_stats;

typedef struct vms_nested vms_nested;

/* The result of a successful 2D walk. */
typedef struct vms_nested_xlate {
    vms_xlate x;       /* the composed GVA -> HPA: the smaller page, rights of both stages */
    vms_xlate guest;   /* stage 1: GVA -> GPA */
    vms_s2_xlate host; /* stage 2 of the final GPA */
    uint64_t gpa;      /* the GVA's guest-physical address */
    bool cacheable;    /* the composed rights are exactly expressible in x (a TLB may
                          cache it): false when stage 2 denies a right the guest's check
                          cannot see (no read; no execute without EFER.NXE) */
} vms_nested_xlate;

/* How a two-stage MMU is built. */
typedef struct vms_nested_config {
    const vms_tlb_config *s2_tlb;    /* nested TLB (GPA -> HPA) geometry; NULL: none */
    const vms_pwc_config *guest_pwc; /* the guest's page-walk caches; NULL: none */
    unsigned guest_levels;           /* the guest's paging levels (for its PWC): 4 or 5 */
    uint64_t seed;                   /* for "random" replacement */
} vms_nested_config;

/* Create a two-stage MMU (one vCPU's) over the host bus (borrowed) with second stage s2
 * (copied). cfg may be NULL (no caches). */
vms_status vms_nested_create(const vms_allocator *a, vms_bus *host_bus, const vms_s2_regs *s2,
                             const vms_nested_config *cfg, vms_nested **out, vms_err *err);
void vms_nested_destroy(vms_nested *n);

/*
 * Put m in n's VM: the two-stage MMUs of one VM's vCPUs (an Arm VM's share its VMID).
 * A broadcast TLB invalidation the guest issues (TLBI … IS, which the architecture
 * scopes to the issuer's VMID on every core of the Inner Shareable domain) then drops
 * the guest walk-cache entries of every vCPU of the VM, loaded on a core or not, and
 * of no other VM. Destroying a vCPU's MMU takes it out again.
 */
void vms_nested_link(vms_nested *n, vms_nested *m);

/* Load another second stage (VMRUN with a new nCR3, VM entry with a new EPTP). Drops
 * nothing cached: INVEPT / a TLB flush does. */
void vms_nested_set_s2(vms_nested *n, const vms_s2_regs *s2);
const vms_s2_regs *vms_nested_s2(const vms_nested *n);

/*
 * The guest-physical bus: what the guest's own accesses to its memory see. Outside a
 * walk it translates through the second stage in software (the hypervisor's view: no
 * A/D, no counting); an address the second stage does not map is a bus error. Guest
 * page-table editors (pt.h) build the guest's tables through it. Borrowed from n.
 */
vms_bus *vms_nested_guest_bus(vms_nested *n);

/*
 * The 2D walk: walk the guest's tables (guest_regs: the guest's CR3/CR4/EFER/CPL, its
 * format; guest_pwc its page-walk cache of guest entries, may be NULL) with every guest
 * table reference translated through the second stage, then translate the final GPA.
 * On success fills *out. On a guest fault returns false with fault->kind
 * VMS_FAULT_PF (delivered to the guest, no VM exit); on a second-stage fault returns
 * false with fault->kind VMS_FAULT_S2, fault->va the GVA, fault->pa the GPA, and the
 * exit's details in *s2f. stats (required) receives every entry read, guest and host
 * (mem_refs), the guest walk's own counters (refs_by_level, pwc_hits); trace may be NULL.
 * Never allocates.
 */
bool vms_nested_walk(vms_nested *n, vms_pwc *guest_pwc, const vms_regs *guest_regs, uint64_t gva,
                     vms_access_kind kind, vms_nested_xlate *out, vms_fault *fault,
                     vms_s2_fault *s2f, vms_walk_stats *stats, vms_nested_trace *trace);

/* The guest's page-walk cache (NULL when none): entries hold guest-physical table
 * addresses, tagged by the guest's PCID/ASID. */
vms_pwc *vms_nested_guest_pwc(vms_nested *n);

/* The nested TLB (NULL when none), and INVEPT's effect on it: drop every cached GPA
 * translation (single-context for this vCPU's EPTP and all-context alike). */
vms_tlb *vms_nested_s2_tlb(vms_nested *n);
void vms_nested_flush_s2(vms_nested *n);

const vms_nested_stats *vms_nested_get_stats(const vms_nested *n);

/* The next walks record their references into trace (NULL: stop); borrowed. */
void vms_nested_set_trace(vms_nested *n, vms_nested_trace *trace);

/* The last second-stage fault (the details of the last VMS_FAULT_S2). */
const vms_s2_fault *vms_nested_last_exit(const vms_nested *n);

/* ---- narrating a 2D walk (narrate.c: what `vmsim explain --nested` and a scenario's
 * `show walk` on a guest process print) ---- */

/* The names of an x86-64 entry's bits as the narrations print them ("P RW US A D",
 * PAT for bit 7 of a PT entry, D and G left out of non-leaf entries, "not present"). */
void vms_pte_bits_str(uint64_t pte, unsigned level, char *buf, size_t len);

/* Append the references of trace t, one line each, numbered from 1: each second-stage
 * walk under a heading naming the GPA it translates (the guest table it locates, or the
 * data's), in the second stage's format s2f; guest entries in the guest's format gf
 * (NULL: x86-64, with GPA and HPA). VMS_ERR_NOMEM if sb could not grow. */
vms_status vms_nested_trace_str(const vms_nested_trace *t, const vms_pt_format *s2f,
                                const vms_pt_format *gf, vms_strbuf *sb);

/* Append the "  result: …" line of a failed 2D walk: a guest fault (no VM exit) or the
 * second-stage exit n last met (vms_nested_last_exit), with its qualification. */
vms_status vms_nested_fault_str(const vms_nested *n, const vms_fault *f, vms_strbuf *sb);

/* ---- a core as a vCPU ---- */

typedef struct vms_core vms_core;

/*
 * VM entry: core c runs as a vCPU of the VM tagged vm (its VPID, SVM ASID or VMID;
 * >= 1, 0 is the host) over the two-stage MMU n (borrowed until vms_core_vm_exit). The
 * core's registers become guest (the guest's CR0/CR3/CR4/EFER/CPL and format; CR3 holds
 * a guest-physical root) and the host's are kept for the exit; TLB entries filled from
 * now on are tagged with vm (context bits 63:32) and hold the composed GVA -> HPA
 * translation; the guest's page-walk cache (n's) replaces the core's, so the guest's
 * own invalidations (INVLPG, INVPCID, MOV CR3) reach it and never the host's. A TLB
 * miss is a 2D walk (vms_nested_walk) whose references the core's walk counters and
 * cycles include. VMS_ERR_INVAL for vm 0 or a core already in a guest.
 */
vms_status vms_core_vm_enter(vms_core *c, vms_nested *n, uint32_t vm, const vms_regs *guest);

/* VM entry under shadow paging: core c runs VM vm's guest on the hypervisor's shadow
 * tables (shadow: the guest's registers with CR3 / TTBR0_EL1 = the shadow root, a
 * host-physical address), walked one-dimensionally; entries tagged vm; pwc (may be NULL) the VM's
 * own page-walk cache. */
vms_status vms_core_vm_enter_shadow(vms_core *c, uint32_t vm, const vms_regs *shadow, vms_pwc *pwc);

/* VM exit: the host's registers and page-walk cache return; the guest's TLB entries stay
 * (tagged with its VM) for the next entry. No-op outside a guest. */
void vms_core_vm_exit(vms_core *c);

/*
 * A hypervisor's handler of a second-stage exit on core c (fault: VMS_FAULT_S2, pa the
 * GPA; details in vms_nested_last_exit): true when it fixed the cause (the guest's
 * access then walks again), false to fail the access with the fault.
 */
typedef bool (*vms_vm_exit_fn)(void *ud, vms_core *c, const vms_fault *f);

/*
 * VM entry of a vCPU as a hypervisor runs one: vms_core_vm_enter with the guest's
 * registers from *save, and at the exit (vms_core_vm_exit, whoever calls it: the
 * host kernel using the core, another vCPU taking it) the guest's registers are saved
 * back to *save (the VMCS guest-state area). Second-stage faults of the guest's
 * accesses and walks go to fn (may be NULL) and are retried when it fixes them, so the
 * guest never sees them. save is borrowed until the exit.
 */
vms_status vms_core_vm_run(vms_core *c, vms_nested *n, uint32_t vm, vms_regs *save,
                           vms_vm_exit_fn fn, void *ud);

/* The save area of the vCPU core c runs (vms_core_vm_run), or NULL; the VM tag core c
 * runs (0: the host). */
vms_regs *vms_core_vm_save_area(const vms_core *c);
uint32_t vms_core_vm(const vms_core *c);

/* The two-stage MMU core c runs on, or NULL natively. */
vms_nested *vms_core_nested(const vms_core *c);

/* INVEPT types (SDM Vol. 2 INVEPT): 1 single-context (the EPTP's combined and
 * guest-physical mappings), 2 all-context. INVVPID types (INVVPID): 0 individual
 * address, 1 single-context, 2 all-context (every VPID but 0), 3 single-context
 * retaining globals. */
enum { VMS_INVEPT_SINGLE = 1, VMS_INVEPT_ALL = 2 };
enum {
    VMS_INVVPID_ADDR = 0,
    VMS_INVVPID_SINGLE = 1,
    VMS_INVVPID_ALL = 2,
    VMS_INVVPID_SINGLE_KEEP_GLOBAL = 3
};

/*
 * INVEPT on core c (from the host): single-context drops the composed entries of VM vm
 * (the VM whose EPTP n holds: one EPTP per VM here) and n's nested TLB; all-context
 * drops every guest's composed entries and n's nested TLB (the nested TLBs of other
 * vCPUs are their own objects: invalidate each). The host's own entries stay.
 * VMS_ERR_INVAL for another type or vm 0.
 */
vms_status vms_core_invept(vms_core *c, unsigned type, uint32_t vm, vms_nested *n);

/* INVVPID on core c: the composed (and guest-linear) entries of VPID vpid — for va only
 * (type 0), all of them (1), or those of every VPID (2), or all but globals (3). The
 * guest's page-walk cache is dropped too when the core runs that VPID. VMS_ERR_INVAL
 * for vpid 0 (types 0, 1, 3) or another type. */
vms_status vms_core_invvpid(vms_core *c, unsigned type, uint32_t vpid, uint64_t va);

/* ---- building a guest-physical space (the hypervisor's side, for tests, examples and
 * explain) ---- */

/*
 * A second-stage tree in host RAM and the host memory that backs guest-physical pages:
 * second-stage tables come from s2_tables (a bump allocator over host RAM); guest pages
 * are backed on demand by host regions of host_page size (aligned), handed out upward
 * from host_next; guest page tables (the guest kernel's) get guest-physical frames from
 * gtab_next upward, each backed and zeroed. Plain value; borrows the bus.
 */
typedef struct vms_gspace {
    vms_bus *bus;
    vms_pt s2;
    vms_pt_bump s2_tables;
    uint64_t host_next, host_end; /* host memory for guest pages: [host_next, host_end) */
    vms_pgsize host_page;         /* second-stage leaves of this size */
    unsigned prot;                /* their rights (VMS_PGPROT_*) */
    uint64_t gtab_next;           /* the next guest table frame (GPA) */
    uint64_t backed;              /* second-stage leaves made */
    /* Called after each new leaf (NULL: none): the hypervisor keeps other views in step. */
    vms_status (*on_back)(void *ud, uint64_t gpa);
    void *on_back_ud;
} vms_gspace;

/* Set g up: s2fmt's tree with its root at s2_tables_at (host), backing from host_at to
 * host_end with host_page leaves of rights prot, guest tables from gtab_at (GPA). */
vms_status vms_gspace_init(vms_gspace *g, vms_bus *bus, const vms_pt_format *s2fmt,
                           uint64_t s2_tables_at, uint64_t host_at, uint64_t host_end,
                           vms_pgsize host_page, unsigned prot, uint64_t gtab_at, vms_err *err);

/* Back gpa's page if the second stage maps nothing there: map the host_page-aligned
 * region around gpa to fresh host memory. *hpa (may be NULL) receives gpa's host address. */
vms_status vms_gspace_back(vms_gspace *g, uint64_t gpa, uint64_t *hpa, vms_err *err);

/* Table ops for a guest page-table tree on the guest-physical bus (pt.h). */
vms_pt_ops vms_gspace_table_ops(vms_gspace *g);

/* ---- a virtual machine (the hypervisor's side) ---- */

/*
 * A VM on one host machine: guest-physical memory of guest_mem bytes, backed lazily by
 * host memory from [host_at, host_end): its second stage starts empty and every second-
 * stage violation inside guest memory is a VM exit the hypervisor handles by backing
 * the page with host_page-sized host memory, then resuming the guest (counted, with
 * exit_cycles charged to the core). A violation outside guest memory, or a
 * misconfiguration, is not handled (the access fails). vpid tags its TLB entries.
 *
 * The guest's kernel here is a minimal demand pager, not the kernel model: a guest #PF
 * on a not-present page maps a fresh zeroed guest frame (user, read/write/execute,
 * 4 KiB) through the guest's own tables, which live in guest-physical memory; any other
 * guest fault fails the access. It configures the guest MMU only architecturally (page
 * tables in guest memory, CR3).
 *
 * Shadow paging (shadow, x86-64 and AArch64 guests alike): the core walks the
 * hypervisor's shadow tables GVA -> HPA (in the guest's format) in one dimension; every
 * shadow miss is a #PF intercept (exits_pf) on which the hypervisor walks the guest's
 * tables in software and fills the shadow or reflects the guest's fault; the guest's
 * tables are write-protected through the second-stage record (EPT / Stage 2 permissions,
 * which the hardware does not walk then), so each store of its pager to them is a
 * second-stage permission fault the hypervisor emulates (exits_ptwrite); its
 * invalidations are intercepted (exits_tlbi, vms_vm_unmap).
 */
typedef struct vms_vm_config {
    vms_s2_kind kind;      /* EPT (default when NONE) or NPT */
    unsigned host_levels;  /* 4 or 5 (0: 4) */
    unsigned guest_levels; /* 4 or 5 (0: 4) */
    vms_pgsize host_page;  /* second-stage page size for backing */
    bool ad;               /* EPT accessed/dirty flags */
    uint64_t guest_mem;    /* bytes of guest-physical memory (0: 4 GiB) */
    uint64_t s2_tables_at; /* host RAM for second-stage tables (bump) */
    uint64_t host_at;      /* host memory backing the guest: [host_at, host_end) */
    uint64_t host_end;
    uint32_t vpid;                   /* >= 1 */
    uint32_t exit_cycles;            /* cost of one VM exit and re-entry (0: 1200, an assumption) */
    bool shadow;                     /* shadow paging instead of the second stage in hardware */
    const vms_tlb_config *s2_tlb;    /* nested TLB (NULL: none) */
    const vms_pwc_config *guest_pwc; /* guest page-walk caches (NULL: none) */
    uint64_t seed;
} vms_vm_config;

typedef struct vms_vm_stats {
    uint64_t exits;        /* VM exits taken */
    uint64_t exits_s2;     /* … for second-stage violations (EPT violation / NPF) */
    uint64_t exit_cycles;  /* cycles they cost */
    uint64_t backed;       /* second-stage leaves the hypervisor made */
    uint64_t guest_faults; /* guest page faults the guest's pager handled (no exit) */
    uint64_t guest_pages;  /* guest frames the guest's pager mapped */
    uint64_t unhandled;    /* accesses that failed */
    /* shadow paging */
    uint64_t exits_pf;      /* #PF intercepts (every shadow miss exits) */
    uint64_t exits_ptwrite; /* the guest's writes to its (write-protected) page tables */
    uint64_t shadow_fills;  /* shadow entries made */
    uint64_t injected;      /* guest page faults reflected into the guest */
    uint64_t sw_walk_refs;  /* guest entries the hypervisor read in software */
    uint64_t exits_tlbi;    /* the guest's intercepted invalidations (INVLPG; TLBI with
                               HCR_EL2.TTLB) */
} vms_vm_stats;

typedef struct vms_vm vms_vm;
typedef struct vms_machine vms_machine;

vms_status vms_vm_create(vms_machine *m, const vms_vm_config *cfg, vms_vm **out, vms_err *err);
void vms_vm_destroy(vms_vm *vm);

/* Enter the VM on core c (vms_core_vm_enter with its guest registers) / leave it. */
vms_status vms_vm_enter(vms_vm *vm, vms_core *c);
void vms_vm_leave(vms_vm *vm, vms_core *c);

/*
 * An address-only access of len bytes at guest-virtual va on core c (in the VM),
 * resolving guest page faults (the guest's pager) and second-stage exits (the
 * hypervisor) until it completes. Returns false (with *fault) when a fault cannot be
 * handled.
 */
bool vms_vm_access(vms_vm *vm, vms_core *c, uint64_t va, vms_access_kind kind, uint32_t len,
                   vms_fault *fault);
/* The same access moving bytes: a read fills buf, a write stores it (buf NULL: no bytes,
 * as vms_vm_access). */
bool vms_vm_access_data(vms_vm *vm, vms_core *c, uint64_t va, vms_access_kind kind, void *buf,
                        uint32_t len, vms_fault *fault);

/*
 * The guest's pager drops its mapping of the 4 KiB page at guest-virtual va: the leaf
 * cleared in its own tables, then invalidated as its architecture says (x86-64 INVLPG,
 * AArch64 TLBI VAE1: the format's flush_page, run in the VM on core c). Under shadow
 * paging both trap: the store to the write-protected table (exits_ptwrite) and the
 * invalidation (exits_tlbi), on which the hypervisor drops its shadow entry for va. The
 * next touch of va faults in the guest, whose pager maps a fresh zeroed frame. The
 * frame is not reused. VMS_ERR_NOTFOUND when nothing maps va.
 */
vms_status vms_vm_unmap(vms_vm *vm, vms_core *c, uint64_t va);

const vms_vm_stats *vms_vm_get_stats(const vms_vm *vm);
vms_nested *vms_vm_nested(vms_vm *vm);
/* The second stage's tree (for `show ept`) and the guest's own tables. */
const vms_pt *vms_vm_s2_pt(const vms_vm *vm);
const vms_pt *vms_vm_guest_pt(const vms_vm *vm);

/*
 * Device passthrough (seed 001, "How Modern Virtual Machines Use IOMMU"): give requester
 * bdf of IOMMU io to the VM, in IOMMU domain did. The device then issues guest-physical
 * DMA addresses, which the IOMMU translates with the VM's GPA -> HPA mappings: on NPT the
 * context points at the nested tables themselves (x86-64 entries, US = 1 throughout,
 * which the IOMMU reads as read permission: shared, as a VT-d context can share its
 * second-level tables); on EPT the hypervisor keeps a mirror tree in the IOMMU's format,
 * kept in step with every backing it makes (as VFIO maps guest memory for the device);
 * on Arm an SMMUv3 stage 2 context (iommu.h vms_smmu_ste_s2: STE.S2TTB the VM's Stage 2
 * root, STE.S2VMID = did): the Stage 2 tables shared.
 * DMA to guest-physical memory the hypervisor has not backed, or outside the VM, is
 * blocked and logged by the IOMMU (VFIO pins guest memory up front to avoid the first).
 * Mirror tables come from host RAM at iommu_tables_at (EPT only).
 */
typedef struct vms_iommu vms_iommu;
vms_status vms_vm_assign_device(vms_vm *vm, vms_iommu *io, uint16_t bdf, uint16_t did,
                                uint64_t iommu_tables_at, vms_err *err);

/* ---- a VM running the kernel model as its guest kernel (guest.c) ---- */

/*
 * A guest: a VM whose guest kernel is the real kernel model (kernel.h, proc.h, mman.h:
 * processes, VMAs, faults, COW, swap, page cache), booted with vms_kernel_create_on on
 * the VM's platform:
 *  - its physical memory is guest-physical space [0, guest_mem), a PC layout below the
 *    device window; its page tables live there and its vCPUs' MMUs walk them in two
 *    dimensions (vms_nested), so it configures the guest MMU only architecturally
 *    (MOV CR3, INVLPG, INVPCID, IPIs to its vCPUs), exactly as on bare metal;
 *  - vCPU i (nvcpus of them) has VPID vpid + i and runs on host core pin[i] (distinct
 *    cores; NULL: core i). The hypervisor loads a vCPU on its core when the guest
 *    kernel needs that CPU (an entry, charged exit_cycles) and the host kernel's use
 *    of the core exits it (its registers are saved, vms_core_vm_run);
 *  - memory is backed lazily: a second-stage violation of the hardware's 2D walk, or
 *    the guest kernel's first touch of a frame (its own zero fill or copy), is a VM
 *    exit whose handler backs the page with a host frame from [host_at, host_end);
 *  - host overcommit (item 7): with host_frames > 0 the VM holds at most that many
 *    host frames; backing one more swaps a resident guest page out to the host's swap
 *    file (FIFO), unmapping its second-stage leaf and INVEPT on every vCPU's core. A
 *    guest page the host swapped is read back on its next touch. When the guest kernel
 *    itself swaps out (or writes back) a page the host had swapped, the host must read
 *    it in for the guest to write it out: double paging (Goldberg & Hassinger 1974;
 *    Waldspurger, OSDI 2002 §3), counted with the other avoidable host reads.
 * With a host kernel (host_kernel non-NULL) the host RAM the VM uses (second-stage
 * tables and backing) is reserved from its frame allocator, so host processes and VMs
 * run side by side on disjoint memory.
 */
typedef struct vms_guest_config {
    vms_s2_kind kind;      /* EPT (default when NONE) or NPT */
    unsigned host_levels;  /* 4 or 5 (0: 4) */
    vms_pgsize host_page;  /* second-stage leaves: 4K or 2M (host swap: 4K only) */
    bool ad;               /* EPT accessed/dirty flags */
    uint64_t guest_mem;    /* bytes of guest RAM, 16 MiB … 3 GiB (0: 256 MiB) */
    uint64_t s2_tables_at; /* host RAM for second-stage tables: [at, at + 4 MiB) */
    uint64_t host_at;      /* host RAM backing guest memory: [host_at, host_end) */
    uint64_t host_end;
    uint64_t host_frames;            /* host frames the VM may hold (0: no limit, no host swap) */
    const char *host_swap_file;      /* the host's swap file for this VM (NULL: a temporary
                                        file, gone at destroy); borrowed */
    uint32_t vpid;                   /* >= 1: vCPU i is tagged vpid + i */
    unsigned nvcpus;                 /* 1 … host cores (0: 1) */
    const unsigned *pin;             /* host core of each vCPU (NULL: vCPU i on core i); copied */
    uint32_t exit_cycles;            /* one VM exit and re-entry (0: 1200, an assumption) */
    const vms_tlb_config *s2_tlb;    /* each vCPU's nested TLB (NULL: none) */
    const vms_pwc_config *guest_pwc; /* each vCPU's guest page-walk caches (NULL: none) */
    uint64_t seed;
    const vms_kernel_config *kernel; /* the guest kernel's configuration (NULL: defaults) */
    vms_kernel *host_kernel;         /* the host's kernel on the same machine, or NULL */
} vms_guest_config;

typedef struct vms_guest_stats {
    uint64_t exits;             /* VM exits: second-stage violations handled */
    uint64_t exits_walk;        /* … of them met by the hardware (a 2D walk or a data access) */
    uint64_t exits_kernel;      /* … by the guest kernel's own touch of a frame */
    uint64_t exit_cycles;       /* cycles they and the vCPU entries cost */
    uint64_t vcpu_loads;        /* vCPU entries onto a host core (after the core ran another) */
    uint64_t migrations;        /* vCPUs moved to another host core (vms_guest_move_vcpu) */
    uint64_t migration_flushes; /* INVVPID single-context at a moved vCPU's first entry */
    uint64_t backed;            /* second-stage leaves made */
    uint64_t unhandled;         /* violations outside guest memory (the access fails) */
    uint64_t host_frames;       /* host frames the VM holds now */
    uint64_t host_swapouts;     /* guest pages the host wrote to its swap (host pswpout) */
    uint64_t host_swapins;      /* … read back (host pswpin) */
    /* Of host_swapins, the ones the literature calls avoidable (Amit, Tsafrir and
     * Schuster, "VSwapper", ASPLOS 2014): */
    uint64_t double_paging; /* the guest kernel read the page to write it to its own
                               swap or a file: the host read it in only for the guest
                               to write it out (each: a host read + the guest's write,
                               after the host's own write) */
    uint64_t false_reads;   /* the guest overwrote the whole page (zero fill, a copy's
                               destination, a swap-in): the host's read was wasted */
    /* Interrupts of assigned devices (vms_guest_assign_device): */
    uint64_t exits_intr;    /* VM exits for an external interrupt (in exits, exit_cycles) */
    uint64_t intr_injected; /* interrupts injected into the guest at a VM entry */
    uint64_t intr_posted;   /* interrupts posted to a vCPU (no exit) */
} vms_guest_stats;

typedef struct vms_guest vms_guest;

/* Create the VM and boot its guest kernel. The host machine m is borrowed. Nothing
 * leaks on failure; err names the problem. */
vms_status vms_guest_create(vms_machine *m, const vms_guest_config *cfg, vms_guest **out,
                            vms_err *err);
/* Shut the guest kernel down, exit every vCPU, free the VM (its host frames go back to
 * the host kernel's allocator when one was given). NULL accepted. */
void vms_guest_destroy(vms_guest *g);

/* The guest kernel: drive it with the ordinary API (vms_proc_spawn(gk, …), vms_proc_
 * access, vms_sys_mmap, …); its CPUs are the vCPUs. Borrowed from g. */
vms_kernel *vms_guest_kernel(vms_guest *g);
const vms_guest_stats *vms_guest_get_stats(const vms_guest *g);
/*
 * Schedule vCPU vcpu_id on host core host_core from now on (not a core another vCPU of
 * g uses). Its TLB entries stay tagged on the old core; at its first entry on the new
 * one the hypervisor flushes its VPID there (INVVPID single-context), since entries an
 * earlier stay left on that core may be stale (KVM does the same when a vCPU moves).
 * VMS_ERR_INVAL for a bad vCPU or core.
 */
vms_status vms_guest_move_vcpu(vms_guest *g, unsigned vcpu_id, unsigned host_core, vms_err *err);

/* Append the VM's counters as one JSON member: "vm": {"vcpus", "exits", "exits_walk",
 * "exits_kernel", "exit_cycles", "vcpu_loads", "migrations", "backed", "unhandled",
 * "host_frames", "walks_2d", "guest_refs", "s2_refs", "s2_walks", "s2_tlb_hits" (summed
 * over vCPUs), "host_swap": {"outs", "ins", "double_paging", "false_reads"}, "exits_intr",
 * "interrupts": {"injected", "posted"}} (no leading comma). The guest kernel's own counters are
 * vms_kernel_stats_json_members'. */
vms_status vms_guest_stats_json_members(const vms_guest *g, vms_strbuf *sb);

/*
 * Device passthrough (seed 001, "How Modern Virtual Machines Use IOMMU"; VFIO): assign
 * dev, which sits behind an IOMMU that is on, to the VM. Its IOMMU context (domain did)
 * translates guest-physical DMA addresses with the VM's GPA -> HPA mappings: on NPT the
 * nested tables themselves (x86-64 entries with US = 1, read permission to the IOMMU);
 * on EPT a mirror in the IOMMU's format, made now from the second stage and kept in
 * step with every later backing (its tables come from the VM's second-stage table
 * area). Its register page (page aligned, above guest memory) is mapped into the VM at
 * the same address, uncached, so the guest's driver reaches the registers without exits.
 * On an Arm VM the IOMMU is an SMMU: the device's STE selects stage 2 translation with
 * the VM's Stage 2 tables themselves (shared, as NPT's) and did as its S2VMID, the SMMU
 * TLB's tag (the SMMU driver's VMID namespace, as Linux's arm-smmu-v3 allocates one per
 * stage 2 domain, apart from the CPU's VMIDs); its interrupts take the same two ways (an IRQ exit
 * with HCR_EL2.IMO and a virtual interrupt in a list register at the next entry, or GICv4 direct
 * injection of a vLPI without an exit: posted). DMA outside the VM's memory, or to guest memory the
 * hypervisor has not backed, is blocked and logged by the IOMMU. Its interrupts become the guest's:
 * the guest kernel's driver, attached to dev with the DMA API (vms_dma_attach_nic, …, on
 * vms_guest_kernel(g): it sees no IOMMU, so its DMA addresses are guest-physical), has
 * its handler run inside the VM after an external-interrupt exit and an injection at the
 * next VM entry, or, with posted, after posting without an exit (exits_intr,
 * intr_injected, intr_posted). Refused for a VM with host overcommit (host_frames: VFIO
 * pins guest memory). Undone by vms_guest_destroy (the devices must outlive g).
 */
typedef struct vms_guest_dev_config {
    uint16_t did; /* the IOMMU domain of the VM's devices, 1 … VMS_IOMMU_MAX_DID (Arm: the
                     SMMU's S2VMID) */
    bool posted;  /* posted interrupts (VT-d posting, APICv) instead of exit + injection */
} vms_guest_dev_config;
typedef struct vms_dev vms_dev;
vms_status vms_guest_assign_device(vms_guest *g, vms_dev *dev, const vms_guest_dev_config *dc,
                                   vms_err *err);

/* Exit every vCPU of g that is on a host core (the cores return to the host). */
void vms_guest_exit_all(vms_guest *g);
/* The guest-physical bus (what the guest kernel's memory is), the second stage's tree
 * (for `show ept`), vCPU i's two-stage MMU and host core, and its VPID. */
vms_bus *vms_guest_bus(vms_guest *g);
const vms_pt *vms_guest_s2_pt(const vms_guest *g);
vms_nested *vms_guest_nested(vms_guest *g, unsigned vcpu);
unsigned vms_guest_vcpu_core(const vms_guest *g, unsigned vcpu);
uint32_t vms_guest_vpid(const vms_guest *g, unsigned vcpu);
/* vCPU vcpu's registers now: its host core's while it runs there, else the saved ones. */
const vms_regs *vms_guest_vcpu_regs(const vms_guest *g, unsigned vcpu);
/* The host-physical address of gpa now (false: not backed, or swapped out). */
bool vms_guest_hpa(const vms_guest *g, uint64_t gpa, uint64_t *hpa);

#endif
