/*
 * vmsim/regs.h — the control-register state that paging depends on: for x86-64 (Intel
 * SDM Vol. 3A §2.5 and §4.1) CR0, CR3, CR4, IA32_EFER, PKRU, RFLAGS.AC; the privilege
 * level; and which page-table format (format.h) is in force. The walker and the TLB
 * permission check read it; a core (core.h) owns one.
 *
 *  CR3 with CR4.PCIDE=1:   63: no-flush (on a MOV to CR3 only)   51:12 PML4/PML5 base
 *                          11:0 PCID
 */
#ifndef VMSIM_REGS_H
#define VMSIM_REGS_H

#include "vmsim/common.h"
#include "vmsim/format.h"

#define VMS_CR0_WP        (UINT64_C(1) << 16) /* supervisor writes honour RW */
#define VMS_CR0_PG        (UINT64_C(1) << 31)
#define VMS_CR4_PAE       (UINT64_C(1) << 5)
#define VMS_CR4_PGE       (UINT64_C(1) << 7)  /* global pages */
#define VMS_CR4_LA57      (UINT64_C(1) << 12) /* 5-level paging */
#define VMS_CR4_PCIDE     (UINT64_C(1) << 17) /* PCIDs */
#define VMS_CR4_SMEP      (UINT64_C(1) << 20) /* no supervisor fetch from user pages */
#define VMS_CR4_SMAP      (UINT64_C(1) << 21) /* no supervisor data access to user pages */
#define VMS_CR4_PKE       (UINT64_C(1) << 22) /* protection keys for user pages */
#define VMS_EFER_LME      (UINT64_C(1) << 8)
#define VMS_EFER_LMA      (UINT64_C(1) << 10)
#define VMS_EFER_NXE      (UINT64_C(1) << 11) /* XD bit is honoured (reserved otherwise) */
#define VMS_CR3_PCID_MASK UINT64_C(0xFFF)
#define VMS_CR3_NOFLUSH   (UINT64_C(1) << 63)
#define VMS_CR3_ADDR_MASK UINT64_C(0x000FFFFFFFFFF000)

/* PKRU: for key i, bit 2i is AD (access disable), bit 2i+1 WD (write disable). */
static inline bool vms_pkru_ad(uint32_t pkru, unsigned key)
{
    return (pkru >> (2 * key)) & 1u;
}
static inline bool vms_pkru_wd(uint32_t pkru, unsigned key)
{
    return (pkru >> (2 * key + 1)) & 1u;
}

typedef struct vms_regs {
    /* The translation design in force. NULL is x86-64, whose paging mode (4 or 5
     * levels) CR4.LA57 selects; other architectures set their format (format.h), and
     * the walker and rights check are that format's. */
    const vms_pt_format *fmt;
    uint64_t cr0;
    uint64_t cr2; /* faulting linear address of the last #PF */
    uint64_t cr3; /* table base | PCID (the no-flush bit is never stored) */
    uint64_t cr4;
    uint64_t efer;
    uint32_t pkru;
    bool user;           /* CPL 3 */
    bool ac;             /* RFLAGS.AC: SMAP override for explicit supervisor accesses */
    unsigned maxphyaddr; /* physical-address width M (bits 51:M of entries are reserved) */

    /* ---- RISC-V (include/vmsim/arch/riscv64.h): read when fmt is sv39/sv48/sv57 ---- */
    uint64_t satp;    /* MODE | ASID | root PPN (csrw satp: vms_core_write_satp) */
    uint64_t sstatus; /* SUM and MXR are what translation reads */
    uint64_t menvcfg; /* ADUE set: hardware A/D updates (Svadu); clear: Svade faults */
    /* ---- end RISC-V ---- */
    /* ---- AArch64, EL1&0 stage 1 (fmt "aarch64"; vmsim/arch/aarch64.h draws them) ---- */
    uint64_t ttbr0_el1; /* ASID 63:48 | level 0 table for VA[55] = 0 */
    uint64_t ttbr1_el1; /* ASID 63:48 | level 0 table for VA[55] = 1 */
    uint64_t tcr_el1;   /* T0SZ, T1SZ, TG0/1, EPD0/1, A1, AS, IPS, HA, HD, HPD0/1 */
    uint64_t sctlr_el1; /* M, WXN */
    bool pan;           /* PSTATE.PAN; `user` above is EL0 */
    /* ---- end AArch64 ---- */
    /* ---- designs (vmsim/arch/hashed.h): read when fmt is the hashed or inverted one ---- */
    uint64_t htab;      /* HPT: HTABORG (SDR1); IPT: the entry array */
    uint64_t htab_mask; /* HPT: group-index mask (HTABSIZE); IPT: frames covered */
    uint64_t hat;       /* IPT: the hash anchor table */
    unsigned hat_bits;  /* IPT: log2 of its anchors */
    /* ---- end designs ---- */
} vms_regs;

/* Paging levels in force: 5 with CR4.LA57, else 4. */
static inline unsigned vms_regs_levels(const vms_regs *r)
{
    return (r->cr4 & VMS_CR4_LA57) ? 5u : 4u;
}

/* The current PCID (0 when CR4.PCIDE is clear). */
static inline uint16_t vms_regs_pcid(const vms_regs *r)
{
    return (r->cr4 & VMS_CR4_PCIDE) ? (uint16_t)(r->cr3 & VMS_CR3_PCID_MASK) : 0;
}

/* Physical address of the root table. */
static inline uint64_t vms_regs_root(const vms_regs *r)
{
    return r->cr3 & VMS_CR3_ADDR_MASK & ((UINT64_C(1) << r->maxphyaddr) - 1);
}

#endif
