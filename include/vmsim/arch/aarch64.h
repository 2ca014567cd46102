/*
 * vmsim/arch/aarch64.h — AArch64 stage 1 translation, EL1&0 regime, 4 KiB granule,
 * 48-bit virtual addresses (Arm Architecture Reference Manual for A-profile, DDI 0487,
 * chapter D8 "The AArch64 Virtual Memory System Architecture"; in the older issues
 * chapter D4 "The AArch64 Virtual Memory System Architecture" with §D4.2 "The VMSAv8-64
 * address translation system" and §D4.3 "VMSAv8-64 translation table format
 * descriptors"). Bit names follow the Arm ARM (and, for the kernel's software bits,
 * Linux's arch/arm64/include/asm/pgtable-hwdef.h and pgtable-prot.h).
 *
 * vmsim's level numbers count from the leaf up (format.h), Arm's from the root down:
 *
 *   Arm lookup level     0           1              2              3
 *   vmsim level          4           3              2              1
 *   VA bits indexed      47:39       38:30          29:21          20:12
 *   leaf at that level   —           1 GiB block    2 MiB block    4 KiB page
 *
 * Descriptors (8 bytes), bits 1:0 = type:
 *
 *   x0  invalid (any level)                 -> Translation fault, level N
 *   01  block at levels 1 and 2; at levels 0 and 3 reserved, treated as invalid
 *   11  table at levels 0, 1, 2; page at level 3
 *
 * Table descriptor (levels 0-2):
 *
 *    63  62 61  60   59   58   52 51 48 47                         12 11     2  1  0
 *   +----+-----+-----+-----+------+-----+-----------------------------+--------+--+--+
 *   |NSTb|APTab|UXNTb|PXNTb| ign. |RES0 | next-level table address    | ignored| 1| 1|
 *   +----+-----+-----+-----+------+-----+-----------------------------+--------+--+--+
 *
 *   The hierarchical attributes APTable, UXNTable and PXNTable are not modelled:
 *   vmsim requires TCR_EL1.HPD0 = HPD1 = 1 (FEAT_HPDS, "hierarchical permission
 *   disables"), under which the architecture ignores them.
 *
 * Block and page descriptors (levels 1-3):
 *
 *    63  59 58  55 54  53  52  51  50 49 48 47             n n-1  12 11 10  9 8 7 6 5 4  2 1 0
 *   +------+------+---+---+----+---+--+-----+----------------+------+--+--+---+---+--+-----+-+-+
 *   | PBHA | SW   |UXN|PXN|Cont|DBM|GP|RES0 | output address | RES0 |nG|AF|SH |AP |NS|AttrI|t|1|
 *   +------+------+---+---+----+---+--+-----+----------------+------+--+--+---+---+--+-----+-+-+
 *     n = 30 (level 1 block), 21 (level 2 block), 12 (level 3 page); t = 0 block, 1 page
 *
 *   AP[2:1] (bits 7:6), stage 1 EL1&0 direct permissions:
 *     00  EL1 read/write, EL0 none        01  EL1 read/write, EL0 read/write
 *     10  EL1 read-only,  EL0 none        11  EL1 read-only,  EL0 read-only
 *   UXN: EL0 may not execute; PXN: EL1 may not execute; a region writable at EL0 is
 *   never executable at EL1; SCTLR_EL1.WXN makes every writable region execute-never.
 *   AF: the access flag (hardware-set with TCR_EL1.HA, FEAT_HAFDBS; otherwise an
 *   Access flag fault). nG: not global, the entry belongs to the current ASID.
 *   DBM: dirty bit modifier (with TCR_EL1.HD a write to an AP[2] = 1 entry with DBM = 1
 *   clears AP[2] instead of faulting). Cont: the contiguous hint (see docs/arch/aarch64.md
 *   for what vmsim does with it).
 *
 * TTBRn_EL1 (n = 0 for VA[55] = 0, 1 for VA[55] = 1):
 *
 *    63          48 47                                      1   0
 *   +--------------+------------------------------------------+-----+
 *   |     ASID     |  BADDR: level 0 table (4 KiB aligned)     | CnP |
 *   +--------------+------------------------------------------+-----+
 *
 * TCR_EL1 fields vmsim reads: T0SZ 5:0, EPD0 7, TG0 15:14, T1SZ 21:16, A1 22, EPD1 23,
 * TG1 31:30, IPS 34:32, AS 36, TBI0 37, TBI1 38, HA 39, HD 40, HPD0 41, HPD1 42.
 * SCTLR_EL1: M 0, WXN 19. PSTATE.PAN (vms_regs.pan).
 *
 * ESR_EL1 for the aborts the walker raises (vms_fault.error_code; FAR_EL1 is vms_fault.va):
 *
 *    31    26 25 24                   10  9   8    7    6   5       0
 *   +--------+--+-----------------------+---+---+-----+---+---------+
 *   |   EC   |IL|        0 (ISV=0)      |EA |CM |S1PTW|WnR|DFSC/IFSC|
 *   +--------+--+-----------------------+---+---+-----+---+---------+
 *   EC 0x20/0x21 Instruction Abort from EL0/EL1, 0x24/0x25 Data Abort from EL0/EL1.
 */
#ifndef VMSIM_ARCH_AARCH64_H
#define VMSIM_ARCH_AARCH64_H

#include "vmsim/common.h"
#include "vmsim/format.h"

typedef struct vms_core vms_core;

/* ---- descriptor bits ---- */
#define VMS_A64_VALID          (UINT64_C(1) << 0)
#define VMS_A64_TYPE           (UINT64_C(1) << 1) /* 1: table (L0-2) or page (L3); 0: block */
#define VMS_A64_TYPE_MASK      UINT64_C(3)
#define VMS_A64_DESC_BLOCK     UINT64_C(1)
#define VMS_A64_DESC_TABLE     UINT64_C(3)
#define VMS_A64_DESC_PAGE      UINT64_C(3)
#define VMS_A64_ATTRINDX_SHIFT 2
#define VMS_A64_ATTRINDX_MASK  (UINT64_C(7) << 2)
#define VMS_A64_NS             (UINT64_C(1) << 5)
#define VMS_A64_AP1            (UINT64_C(1) << 6) /* AP[1]: EL0 access (Linux PTE_USER) */
#define VMS_A64_AP2            (UINT64_C(1) << 7) /* AP[2]: read-only (Linux PTE_RDONLY) */
#define VMS_A64_SH_SHIFT       8
#define VMS_A64_SH_MASK        (UINT64_C(3) << 8)
#define VMS_A64_SH_INNER       (UINT64_C(3) << 8)
#define VMS_A64_AF             (UINT64_C(1) << 10)
#define VMS_A64_NG             (UINT64_C(1) << 11)
#define VMS_A64_GP             (UINT64_C(1) << 50) /* guarded page (FEAT_BTI): not modelled */
#define VMS_A64_DBM            (UINT64_C(1) << 51)
#define VMS_A64_CONT           (UINT64_C(1) << 52)
#define VMS_A64_PXN            (UINT64_C(1) << 53)
#define VMS_A64_UXN            (UINT64_C(1) << 54)
#define VMS_A64_ADDR_MASK      UINT64_C(0x0000FFFFFFFFF000) /* bits 47:12 */

_Static_assert(VMS_A64_ADDR_MASK == ((UINT64_C(1) << 48) - (UINT64_C(1) << 12)),
               "output address is 47:12");
_Static_assert((VMS_A64_ATTRINDX_MASK | VMS_A64_NS | VMS_A64_AP1 | VMS_A64_AP2 | VMS_A64_SH_MASK |
                VMS_A64_AF | VMS_A64_NG) == UINT64_C(0xFFC),
               "lower attributes fill bits 11:2");

/* Linux's software bits (pgtable-prot.h, v5.19 … v6.8): PTE_DIRTY 55, PTE_SPECIAL 56,
 * PTE_PROT_NONE 58 (only when !PTE_VALID), PTE_SWP_EXCLUSIVE 2 (swap entries only). */
#define VMS_A64_SW_DIRTY     (UINT64_C(1) << 55)
#define VMS_A64_SW_PROT_NONE (UINT64_C(1) << 58)

/* Swap entries (Linux arch/arm64/include/asm/pgtable.h, v5.19 … v6.8):
 *
 *    63   59 58  57                                   8 7      3  2  1 0
 *   +-------+---+--------------------------------------+--------+----+---+
 *   |   0   |PN |          swap offset (50 bits)       |  type  |EXCL| 00|
 *   +-------+---+--------------------------------------+--------+----+---+
 *   PN = PTE_PROT_NONE, must be 0 in a swap entry; bits 1:0 (valid, type) are 0. */
#define VMS_A64_SWP_TYPE_SHIFT 3
#define VMS_A64_SWP_TYPE_BITS  5
#define VMS_A64_SWP_OFF_SHIFT  8
#define VMS_A64_SWP_OFF_BITS   50
_Static_assert(VMS_A64_SWP_TYPE_SHIFT + VMS_A64_SWP_TYPE_BITS == VMS_A64_SWP_OFF_SHIFT,
               "swap offset follows the type");
_Static_assert(VMS_A64_SWP_OFF_SHIFT + VMS_A64_SWP_OFF_BITS == 58, "swap offset is 57:8");

/* ---- TTBRn_EL1 ---- */
#define VMS_A64_TTBR_ASID_SHIFT 48
#define VMS_A64_TTBR_BADDR_MASK UINT64_C(0x0000FFFFFFFFF000) /* 4 KiB-aligned level 0 table */
#define VMS_A64_TTBR_CNP        UINT64_C(1)

/* ---- TCR_EL1 ---- */
#define VMS_A64_TCR_T0SZ_SHIFT 0
#define VMS_A64_TCR_EPD0       (UINT64_C(1) << 7)
#define VMS_A64_TCR_TG0_SHIFT  14 /* 00: 4 KiB */
#define VMS_A64_TCR_T1SZ_SHIFT 16
#define VMS_A64_TCR_A1         (UINT64_C(1) << 22) /* ASID from TTBR1 rather than TTBR0 */
#define VMS_A64_TCR_EPD1       (UINT64_C(1) << 23)
#define VMS_A64_TCR_TG1_SHIFT  30 /* 10: 4 KiB */
#define VMS_A64_TCR_IPS_SHIFT  32
#define VMS_A64_TCR_AS         (UINT64_C(1) << 36) /* 16-bit ASIDs */
#define VMS_A64_TCR_TBI0       (UINT64_C(1) << 37)
#define VMS_A64_TCR_TBI1       (UINT64_C(1) << 38)
#define VMS_A64_TCR_HA         (UINT64_C(1) << 39) /* hardware Access flag update */
#define VMS_A64_TCR_HD         (UINT64_C(1) << 40) /* hardware dirty state (DBM) */
#define VMS_A64_TCR_HPD0       (UINT64_C(1) << 41)
#define VMS_A64_TCR_HPD1       (UINT64_C(1) << 42)

/* ---- SCTLR_EL1 ---- */
#define VMS_A64_SCTLR_M   (UINT64_C(1) << 0)  /* stage 1 translation enabled */
#define VMS_A64_SCTLR_WXN (UINT64_C(1) << 19) /* writable implies execute-never */

/* ---- ESR_EL1 ---- */
#define VMS_A64_ESR_EC_SHIFT 26
#define VMS_A64_ESR_IL       (UINT32_C(1) << 25)
#define VMS_A64_ESR_S1PTW    (UINT32_C(1) << 7)
#define VMS_A64_ESR_WNR      (UINT32_C(1) << 6)
#define VMS_A64_ESR_FSC_MASK UINT32_C(0x3F)
#define VMS_A64_EC_IABT_LOW  0x20u /* Instruction Abort from a lower EL (EL0) */
#define VMS_A64_EC_IABT_CUR  0x21u /* Instruction Abort taken without a change of EL */
#define VMS_A64_EC_DABT_LOW  0x24u
#define VMS_A64_EC_DABT_CUR  0x25u
/* Fault status codes (DFSC/IFSC), level N in bits 1:0. */
#define VMS_A64_FSC_ADDR_SIZE 0x00u /* + level 0..3 */
#define VMS_A64_FSC_TRANS     0x04u /* + level 0..3 */
#define VMS_A64_FSC_ACCESS    0x08u /* + level 1..3 (level 0 only with FEAT_LPA2) */
#define VMS_A64_FSC_PERM      0x0Cu /* + level 1..3 */
#define VMS_A64_FSC_SEA_WALK  0x14u /* + level 0..3: external abort on a table walk */

/* The fault status code of an ESR value, and its kind and Arm level. */
static inline unsigned vms_a64_esr_fsc(uint32_t esr)
{
    return esr & VMS_A64_ESR_FSC_MASK;
}
static inline unsigned vms_a64_esr_ec(uint32_t esr)
{
    return esr >> VMS_A64_ESR_EC_SHIFT;
}
static inline unsigned vms_a64_fsc_level(unsigned fsc)
{
    return fsc & 3u;
}

/* Arm's lookup level (0 … 3) for vmsim's level (4 … 1), and back. */
static inline unsigned vms_a64_arm_level(unsigned level)
{
    return 4u - level;
}
static inline unsigned vms_a64_vms_level(unsigned arm_level)
{
    return 4u - arm_level;
}

/* "translation fault, level 3" etc. for a fault status code (static text). */
const char *vms_a64_fsc_name(unsigned fsc);

/* The TCR_EL1 value of a 48-bit, 4 KiB-granule EL1&0 regime as vmsim models it:
 * T0SZ = T1SZ = 16, TG0 = 4K, TG1 = 4K, IPS for `pa_bits` (32, 36, 40, 42, 44, 48),
 * HPD0 = HPD1 = 1; with `as16` 16-bit ASIDs and with `a1` the ASID in TTBR1; `ha`/`hd`
 * turn on hardware Access flag and dirty-state updates (FEAT_HAFDBS). */
uint64_t vms_a64_tcr(unsigned pa_bits, bool as16, bool a1, bool ha, bool hd);

/* The format descriptor "aarch64" (format.h). */
const vms_pt_format *vms_format_aarch64(void);

/* ---- the core: system registers and TLB maintenance (src/arch/aarch64/cpu.c) ---- */

/*
 * Put core c into AArch64 at EL1 with stage 1 translation for the EL1&0 regime:
 * the "aarch64" format, SCTLR_EL1 = sctlr (M must be set), TCR_EL1 = tcr, TTBR0_EL1 =
 * TTBR1_EL1 = 0, PSTATE.PAN = 0; every TLB and page-walk-cache entry of c is dropped.
 * Returns VMS_ERR_UNSUPPORTED for a TCR_EL1 vmsim does not model (see
 * vms_core_msr_tcr_el1) or SCTLR_EL1.M = 0.
 */
vms_status vms_core_a64_init(vms_core *c, uint64_t tcr, uint64_t sctlr);

/*
 * MSR TCR_EL1. vmsim models T0SZ = T1SZ = 16, TG0 = TG1 = 4 KiB, TBI0 = TBI1 = 0 and
 * HPD0 = HPD1 = 1; any other value is VMS_ERR_UNSUPPORTED (nothing changes). TCR_EL1
 * fields may be cached in TLB entries (as the Arm ARM allows): software invalidates
 * after changing them, as on hardware.
 */
vms_status vms_core_msr_tcr_el1(vms_core *c, uint64_t tcr);

/* MSR SCTLR_EL1 (M and WXN are modelled; M = 0 is VMS_ERR_UNSUPPORTED). */
vms_status vms_core_msr_sctlr_el1(vms_core *c, uint64_t sctlr);

/*
 * MSR TTBR0_EL1 / TTBR1_EL1: a new table base and ASID. Invalidates nothing (the ASID
 * tags the TLB entries; all 16 bits of it are held). VMS_ERR_UNSUPPORTED, changing
 * nothing, when the base is not 4 KiB aligned. Each write counts as a root load.
 */
vms_status vms_core_msr_ttbr0_el1(vms_core *c, uint64_t ttbr);
vms_status vms_core_msr_ttbr1_el1(vms_core *c, uint64_t ttbr);

/* PSTATE.PAN (FEAT_PAN): EL1 data accesses to EL0-accessible pages fault. */
void vms_core_a64_set_pan(vms_core *c, bool pan);

/*
 * TLB maintenance, local forms (this core only), operand Xt as the instruction takes it:
 *  TLBI VAE1, Xt     Xt[63:48] ASID, Xt[43:0] VA[55:12]: drop the entries for that VA
 *                    in that ASID and the global ones for that VA, at every level (and
 *                    the walk-cache entries of that ASID);
 *  TLBI ASIDE1, Xt   Xt[63:48] ASID: drop every non-global entry of the ASID;
 *  TLBI VMALLE1      drop every entry (global ones too).
 * With 8-bit ASIDs (TCR_EL1.AS = 0) Xt[63:56] is ignored.
 */
void vms_core_tlbi_vae1(vms_core *c, uint64_t xt);
void vms_core_tlbi_aside1(vms_core *c, uint64_t xt);
void vms_core_tlbi_vmalle1(vms_core *c);

/*
 * TLB maintenance, Inner Shareable forms (every core of the machine, the issuer
 * included: the machine is one Inner Shareable domain), operand Xt as above:
 *  TLBI VAE1IS, Xt    every core does what TLBI VAE1, Xt does on it;
 *  TLBI ASIDE1IS, Xt  every core does what TLBI ASIDE1, Xt does on it;
 *  TLBI VMALLE1IS     every core does what TLBI VMALLE1 does on it.
 * The receivers are not interrupted and not charged. The issuer pays cost.tlbi_is per
 * instruction; the invalidation is complete everywhere only after its DSB ISH.
 * Counted in the core stats' broadcast counters: invlpgb (issued), invlpgb_received
 * (applied, on each core), tlbsync (DSB ISH executed).
 */
void vms_core_tlbi_vae1is(vms_core *c, uint64_t xt);
void vms_core_tlbi_aside1is(vms_core *c, uint64_t xt);
void vms_core_tlbi_vmalle1is(vms_core *c);

/* DSB ISH: wait until this core's TLBI … IS completed on every core. Charges
 * cost.dsb_ish + cost.dsb_ish_hop * (socket hops to the farthest core) when any is
 * pending, nothing otherwise; returns the cycles it waited. */
uint64_t vms_core_dsb_ish(vms_core *c);

#endif
