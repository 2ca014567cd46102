/*
 * vmsim/arch/riscv64.h — RISC-V page-based virtual memory, Sv39, Sv48 and Sv57: the
 * architectural bit layouts (PTE, satp, sstatus, menvcfg, scause), and the core
 * operations a RISC-V kernel uses (csrw satp, sfence.vma, csrw sstatus/menvcfg).
 *
 * References: The RISC-V Instruction Set Manual, Volume II: Privileged Architecture
 * ("priv"), chapter "Supervisor-Level ISA": §"Supervisor Address Translation and
 * Protection (satp) Register", §"Supervisor Status (sstatus) Register" (SUM, MXR),
 * §"Supervisor Instructions" (SFENCE.VMA), §"Sv32: Page-Based 32-bit Virtual-Memory
 * Systems" (the PTE semantics and the translation algorithm, §"Virtual Address
 * Translation Process", which Sv39/48/57 reuse with LEVELS 3/4/5 and PTESIZE 8),
 * §"Sv39", §"Sv48", §"Sv57"; the Svade/Svadu extensions (A/D bits) and menvcfg.ADUE in
 * the machine-level chapter. The walker is src/arch/riscv64/walk.c; the format
 * descriptors ("sv39", "sv48", "sv57") src/arch/riscv64/format.c.
 *
 * A core runs RISC-V paging once vms_core_write_satp has written a MODE of Sv39, Sv48
 * or Sv57: regs.fmt then names that format and every walk, rights check and TLB tag
 * follows it. What vmsim does not model is listed in docs/arch/riscv64.md (Bare mode,
 * M-mode and MPRV, Svnapot, Svpbmt, hypervisor two-stage translation, PMP/PMA checks,
 * leaves above 1 GiB).
 */
#ifndef VMSIM_ARCH_RISCV64_H
#define VMSIM_ARCH_RISCV64_H

#include "vmsim/common.h"
#include "vmsim/format.h"

typedef struct vms_core vms_core;

/*
 * A page-table entry, Sv39/Sv48/Sv57 (priv §"Sv39", figure "Sv39 page table entry"):
 *
 *   63  62 61 60      54 53                              10 9  8  7   6   5   4   3   2   1   0
 *  +---+-----+----------+----------------------------------+-----+---+---+---+---+---+---+---+---+
 *  | N |PBMT | reserved |  PPN (44 bits: PPN[4..0])        | RSW | D | A | G | U | X | W | R | V |
 *  +---+-----+----------+----------------------------------+-----+---+---+---+---+---+---+---+---+
 *
 * Sv39 splits the PPN as PPN[2] 53:28 (26 bits), PPN[1] 27:19, PPN[0] 18:10; Sv48 and
 * Sv57 split 53:28 further into 9-bit fields. R=W=X=0 is a pointer to the next table;
 * any of R, X makes a leaf; W=1 with R=0 is reserved. In a non-leaf entry D, A and U are
 * reserved. N (Svnapot) and PBMT (Svpbmt) are not implemented here, so all of 63:54 is
 * reserved: a valid entry with any of them set raises a page fault.
 */
#define VMS_RV_PTE_V         (UINT64_C(1) << 0) /* valid */
#define VMS_RV_PTE_R         (UINT64_C(1) << 1) /* readable */
#define VMS_RV_PTE_W         (UINT64_C(1) << 2) /* writable */
#define VMS_RV_PTE_X         (UINT64_C(1) << 3) /* executable */
#define VMS_RV_PTE_U         (UINT64_C(1) << 4) /* user-mode accessible */
#define VMS_RV_PTE_G         (UINT64_C(1) << 5) /* global mapping */
#define VMS_RV_PTE_A         (UINT64_C(1) << 6) /* accessed */
#define VMS_RV_PTE_D         (UINT64_C(1) << 7) /* dirty */
#define VMS_RV_PTE_RSW_SHIFT 8                  /* 9:8 reserved for supervisor software */
#define VMS_RV_PTE_RSW_MASK  (UINT64_C(3) << VMS_RV_PTE_RSW_SHIFT)
#define VMS_RV_PTE_PPN_SHIFT 10
#define VMS_RV_PTE_PPN_BITS  44
#define VMS_RV_PTE_PPN_MASK  (((UINT64_C(1) << VMS_RV_PTE_PPN_BITS) - 1) << VMS_RV_PTE_PPN_SHIFT)
#define VMS_RV_PTE_RSVD_MASK (~UINT64_C(0) << 54) /* 63:54 (N, PBMT, reserved) */
#define VMS_RV_PTE_LEAF      (VMS_RV_PTE_R | VMS_RV_PTE_W | VMS_RV_PTE_X)

_Static_assert(VMS_RV_PTE_PPN_MASK == UINT64_C(0x003FFFFFFFFFFC00), "PPN is 53:10");
_Static_assert((VMS_RV_PTE_PPN_MASK & VMS_RV_PTE_RSVD_MASK) == 0, "PPN and 63:54 are disjoint");
_Static_assert((VMS_RV_PTE_PPN_MASK | VMS_RV_PTE_RSVD_MASK | VMS_RV_PTE_RSW_MASK | 0xFFu) ==
                   ~UINT64_C(0),
               "every PTE bit is named");

/*
 * satp, RV64 (priv §"satp"):
 *
 *   63    60 59                 44 43                                    0
 *  +--------+---------------------+---------------------------------------+
 *  |  MODE  |   ASID (16 bits)    |   PPN of the root table (44 bits)     |
 *  +--------+---------------------+---------------------------------------+
 *
 * MODE 0 Bare, 8 Sv39, 9 Sv48, 10 Sv57 (the others reserved). Writing an unsupported
 * MODE has no effect at all. ASID bits above ASIDLEN are not implemented (read 0).
 * vmsim implements ASIDLEN = VMS_RV_ASIDLEN = 16, the most Sv39/48/57 allow.
 */
#define VMS_RV_SATP_MODE_SHIFT 60
#define VMS_RV_SATP_ASID_SHIFT 44
#define VMS_RV_SATP_ASID_MASK  (UINT64_C(0xFFFF) << VMS_RV_SATP_ASID_SHIFT)
#define VMS_RV_SATP_PPN_MASK   ((UINT64_C(1) << 44) - 1)
#define VMS_RV_SATP_BARE       0u
#define VMS_RV_SATP_SV39       8u
#define VMS_RV_SATP_SV48       9u
#define VMS_RV_SATP_SV57       10u
#define VMS_RV_ASIDLEN         16u

_Static_assert((VMS_RV_SATP_ASID_MASK & VMS_RV_SATP_PPN_MASK) == 0 &&
                   (VMS_RV_SATP_ASID_MASK >> 60) == 0,
               "satp fields are disjoint");

/* sstatus bits paging reads (priv §"sstatus"): SUM lets S-mode load/store U pages; MXR
 * makes loads from executable pages succeed. */
#define VMS_RV_SSTATUS_SUM (UINT64_C(1) << 18)
#define VMS_RV_SSTATUS_MXR (UINT64_C(1) << 19)

/* menvcfg.ADUE (Svadu): 1 = hardware sets A and D; 0 = Svade (a page fault instead). */
#define VMS_RV_MENVCFG_ADUE (UINT64_C(1) << 61)

/* scause exception codes of translation (priv §"scause", table "Supervisor cause"). */
#define VMS_RV_CAUSE_FETCH_ACCESS 1u  /* instruction access fault (PTE read failed) */
#define VMS_RV_CAUSE_LOAD_ACCESS  5u  /* load access fault */
#define VMS_RV_CAUSE_STORE_ACCESS 7u  /* store/AMO access fault */
#define VMS_RV_CAUSE_FETCH_PAGE   12u /* instruction page fault */
#define VMS_RV_CAUSE_LOAD_PAGE    13u /* load page fault */
#define VMS_RV_CAUSE_STORE_PAGE   15u /* store/AMO page fault */

/* The page-fault cause of an access of `kind` (12, 13 or 15). */
static inline uint32_t vms_rv_page_fault_cause(vms_access_kind kind)
{
    return kind == VMS_ACC_EXEC    ? VMS_RV_CAUSE_FETCH_PAGE
           : kind == VMS_ACC_WRITE ? VMS_RV_CAUSE_STORE_PAGE
                                   : VMS_RV_CAUSE_LOAD_PAGE;
}

/* The access-fault cause of an access of `kind` (1, 5 or 7). */
static inline uint32_t vms_rv_access_fault_cause(vms_access_kind kind)
{
    return kind == VMS_ACC_EXEC    ? VMS_RV_CAUSE_FETCH_ACCESS
           : kind == VMS_ACC_WRITE ? VMS_RV_CAUSE_STORE_ACCESS
                                   : VMS_RV_CAUSE_LOAD_ACCESS;
}

static inline unsigned vms_rv_satp_mode(uint64_t satp)
{
    return (unsigned)(satp >> VMS_RV_SATP_MODE_SHIFT);
}

static inline uint16_t vms_rv_satp_asid(uint64_t satp)
{
    return (uint16_t)((satp & VMS_RV_SATP_ASID_MASK) >> VMS_RV_SATP_ASID_SHIFT);
}

/* Physical address of the root table: satp.PPN × 4096. */
static inline uint64_t vms_rv_satp_root(uint64_t satp)
{
    return (satp & VMS_RV_SATP_PPN_MASK) << 12;
}

/* A satp value for MODE, ASID and the root table at root_pa (4 KiB aligned). */
static inline uint64_t vms_rv_satp_make(unsigned mode, uint16_t asid, uint64_t root_pa)
{
    return (uint64_t)mode << VMS_RV_SATP_MODE_SHIFT | (uint64_t)asid << VMS_RV_SATP_ASID_SHIFT |
           ((root_pa >> 12) & VMS_RV_SATP_PPN_MASK);
}

/* The satp MODE of a RISC-V format (8, 9, 10), or 0 for any other format. */
unsigned vms_rv_format_mode(const vms_pt_format *f);

/* The format satp MODE selects ("sv39" for 8, …), or NULL (Bare and reserved modes). */
const vms_pt_format *vms_rv_mode_format(unsigned mode);

/* The RISC-V format with `levels` levels (3, 4, 5), or NULL. */
const vms_pt_format *vms_format_riscv64(unsigned levels);

/* ---- core operations (src/arch/riscv64/cpu.c) ---- */

/*
 * csrw satp. MODE must be Sv39, Sv48 or Sv57 and within what the machine was built for
 * (Sv57 needs a 5-level machine: its page-walk caches key on 57 VA bits); otherwise the
 * write has no effect, as the spec says of an unsupported MODE, and VMS_ERR_UNSUPPORTED
 * is returned (Bare mode is not modelled). ASID bits above VMS_RV_ASIDLEN are dropped.
 * Writing satp invalidates nothing (priv: "writing satp does not imply any invalidation
 * of address-translation caches"): software follows it with sfence.vma when it reuses
 * an ASID. Counts as a root load (core stats cr3_loads, cost cr3_load).
 */
vms_status vms_core_write_satp(vms_core *c, uint64_t satp);

/*
 * sfence.vma rs1, rs2 (priv §"Supervisor Memory-Management Fence Instruction"). has_va
 * says rs1 is not x0 (va is its value), has_asid that rs2 is not x0 (asid its value;
 * bits above ASIDLEN ignored). What is dropped, in every TLB level of this core:
 *
 *   rs1 = x0, rs2 = x0   every entry of every ASID, global ones too     PWC: all
 *   rs1 = x0, rs2 = a    every non-global entry of ASID a               PWC: ASID a
 *   rs1 = va, rs2 = x0   va's entries in every ASID, global ones too    PWC: all
 *   rs1 = va, rs2 = a    va's non-global entries of ASID a              PWC: ASID a
 *
 * The spec orders only leaf entries when rs1 != x0; dropping the page-walk cache too
 * is more than it requires (allowed) and matches what a simple implementation does. A
 * va that is not canonical in the current mode makes the fence do nothing, as the spec
 * says. Counted as invlpg (with va) or invpcid (without), cost invlpg.
 */
void vms_core_sfence_vma(vms_core *c, bool has_va, uint64_t va, bool has_asid, uint16_t asid);

/* csrw sstatus (SUM and MXR take effect at once: they are never cached in TLBs). */
void vms_core_write_sstatus(vms_core *c, uint64_t sstatus);

/* csrw menvcfg (ADUE: hardware A/D updating on, or Svade's page faults). */
void vms_core_write_menvcfg(vms_core *c, uint64_t menvcfg);

#endif
