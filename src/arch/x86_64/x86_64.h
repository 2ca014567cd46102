/*
 * x86_64/x86_64.h — what the x86-64 architecture folder shares with the rest of the
 * library: its format descriptors, its walker, and the kernel's software bits.
 * The architectural bit layouts are public (include/vmsim/pte.h, regs.h).
 */
#ifndef VMSIM_ARCH_X86_64_H
#define VMSIM_ARCH_X86_64_H

#include "vmsim/format.h"
#include "vmsim/pte.h"
#include "vmsim/regs.h"
#include "vmsim/walk.h"

/* Swap entries in a not-present PTE (field map in format.c). */
#define VMSI_X86_SWP_TYPE_SHIFT 59
#define VMSI_X86_SWP_TYPE_BITS  5
#define VMSI_X86_SWP_OFF_SHIFT  12
#define VMSI_X86_SWP_OFF_BITS   40

/* The kernel side of the x86-64 formats (format.c): entry decoding and building. */
bool vmsi_x86_is_leaf(uint64_t pte, unsigned level);
void vmsi_x86_decode(const vms_pt_format *f, uint64_t pte, unsigned level, vms_pte_info *out);
uint64_t vmsi_x86_mk_leaf(const vms_pt_format *f, uint64_t pa, unsigned level, unsigned prot);
uint64_t vmsi_x86_mk_raw(const vms_pt_format *f, uint64_t pa, unsigned level, uint64_t flags);
uint64_t vmsi_x86_mk_table(const vms_pt_format *f, uint64_t pa, unsigned level);
void vmsi_x86_bits_str(uint64_t pte, unsigned level, char *buf, size_t len);

/* An x86-64 format descriptor with the hardware side given: the walk (the SDM walker,
 * or another design's search over the same entries, arch/hashed) and the MMU operations. */
#define VMSI_X86_FORMAT(NAME, TITLE, LEVELS, VABITS, WALK, MMU_OPS)                                \
    {                                                                                              \
        .name = NAME, .arch = "x86_64", .title = TITLE, .levels = LEVELS, .page_shift = 12,        \
        .index_bits = 9, .entry_shift = 3, .va_bits = VABITS,                                      \
        .leaf_levels = (1u << 1) | (1u << 2) | (1u << 3),                                          \
        .level_name = {"", "PT", "PD", "PDPT", "PML4", "PML5", ""}, .root_reg = "CR3",             \
        .addr_mask = VMS_PTE_ADDR_MASK, .addr_shift = 12, .large_attr_bits = VMS_PTE_PAT_LARGE,    \
        .present = {VMS_PTE_P, VMS_PTE_P}, .write = {VMS_PTE_RW, VMS_PTE_RW},                      \
        .user = {VMS_PTE_US, VMS_PTE_US}, .young = {VMS_PTE_A, VMS_PTE_A},                         \
        .dirty = {VMS_PTE_D, VMS_PTE_D}, .global = {VMS_PTE_G, VMS_PTE_G},                         \
        .exec_never = {VMS_PTE_XD, VMS_PTE_XD}, .sw_protnone = VMS_PTE_SW1,                        \
        .sw_swap = VMS_PTE_SW2, .swp_type_shift = VMSI_X86_SWP_TYPE_SHIFT,                         \
        .swp_type_bits = VMSI_X86_SWP_TYPE_BITS, .swp_off_shift = VMSI_X86_SWP_OFF_SHIFT,          \
        .swp_off_bits = VMSI_X86_SWP_OFF_BITS, .decode = vmsi_x86_decode,                          \
        .mk_leaf = vmsi_x86_mk_leaf, .mk_raw = vmsi_x86_mk_raw, .mk_table = vmsi_x86_mk_table,     \
        .is_leaf = vmsi_x86_is_leaf, .bits_str = vmsi_x86_bits_str, .walk = WALK,                  \
        .check_access = vms_check_access, .mmu_ops = MMU_OPS, .asid_bits = 12,                     \
    }

extern const vms_pt_format vmsi_fmt_x86_64;      /* 4-level, 48-bit */
extern const vms_pt_format vmsi_fmt_x86_64_la57; /* 5-level, 57-bit */

/* The SDM walker (walk.c): vms_walk's contract, for regs in an x86-64 paging mode. */
bool vmsi_x86_walk(vms_bus *bus, vms_pwc *pwc, const vms_regs *regs, uint64_t va,
                   vms_access_kind kind, vms_xlate *out, vms_fault *fault, vms_walk_stats *stats,
                   vms_walk_trace *trace);

/*
 * vmsi_x86_walk without a trace (its fast path: the levels unrolled), also giving on
 * success *attrs, the translation's attributes in the leaf entry's bit positions: RW and
 * US when every level allows, XD when a level forbids execution (EFER.NXE), and the
 * leaf's PWT, PCD, D and, with CR4.PKE, protection key (bits 62:59) — the flag bits of
 * a TLB entry's data word (tlb_impl.h: vmsi_tlb_fill_attrs), so the MMU fills its TLBs
 * without re-encoding *out.
 */
bool vmsi_x86_walk_attrs(vms_bus *bus, vms_pwc *pwc, const vms_regs *regs, uint64_t va,
                         vms_access_kind kind, vms_xlate *out, uint64_t *attrs, vms_fault *fault,
                         vms_walk_stats *stats);

/* vmsi_x86_walk_attrs for a va the caller has found canonical (the MMU checks before
 * any lookup): the same walk without the test (asserted). */
bool vmsi_x86_walk_canonical(vms_bus *bus, vms_pwc *pwc, const vms_regs *regs, uint64_t va,
                             vms_access_kind kind, vms_xlate *out, uint64_t *attrs,
                             vms_fault *fault, vms_walk_stats *stats);

/* The kernel's MMU operations as x86-64 instructions (cpu.c). */
extern const vms_mmu_ops vmsi_x86_mmu_ops;

/* The structural reserved bits of a present level-`level` entry, those that need no
 * control register (SDM Vol. 3A §4.5.4, Tables 4-15 … 4-20): PS in a PML5E/PML4E, bits
 * 29:13 of a 1 GiB leaf and 20:13 of a 2 MiB leaf (bit 12 is PAT). The walker adds
 * MAXPHYADDR's bits 51:M and XD without EFER.NXE. */
static inline uint64_t vmsi_x86_struct_rsvd(uint64_t pte, unsigned level)
{
    if (level >= VMS_LEVEL_PML4)
        return VMS_PTE_PS;
    if (level == VMS_LEVEL_PDPT && (pte & VMS_PTE_PS))
        return UINT64_C(0x3FFFE000); /* 29:13 */
    if (level == VMS_LEVEL_PD && (pte & VMS_PTE_PS))
        return UINT64_C(0x1FE000); /* 20:13 */
    return 0;
}

/* The P|RW|US|XD|G|A|D|PCD|PWT bits that VMS_PGPROT_* prot asks for (no PS, no frame). */
uint64_t vmsi_x86_prot_bits(unsigned prot);

#endif
