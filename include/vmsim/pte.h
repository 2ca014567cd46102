/*
 * vmsim/pte.h — x86-64 paging-structure entries, in their real bit layout.
 *
 * Intel SDM Vol. 3A §4.5 (4-level and 5-level paging), Tables 4-14 … 4-20; the same
 * format at every level (PML5E, PML4E, PDPTE, PDE, PTE). Levels are numbered as the SDM
 * does: PT = 1, PD = 2, PDPT = 3, PML4 = 4, PML5 = 5. Each table is one 4 KiB page of
 * 512 eight-byte entries.
 *
 *   63  62:59  58:52   51:M   M-1:12        11:9  8  7   6  5   4   3   2  1  0
 *  +--+------+------+------+-------------+-----+--+--+--+--+---+---+--+--+--+
 *  |XD| PKEY | avl  | rsvd | PFN / table | avl |G |PS|D |A |PCD|PWT|US|RW|P |
 *  +--+------+------+------+-------------+-----+--+--+--+--+---+---+--+--+--+
 *
 *  P    present              RW  writable (0: read-only)   US  user (0: supervisor)
 *  PWT  write-through        PCD cache disable             A   accessed (walker sets)
 *  D    dirty (leaf only; walker sets on write)            PS  page size: a 2 MiB leaf at
 *  PD or 1 GiB at PDPT (reserved at PML4/PML5; at PT level bit 7 is PAT)
 *  G    global (leaf, with CR4.PGE: survives CR3 loads)    XD  execute-disable (EFER.NXE)
 *  PKEY protection key of a user page (CR4.PKE), indexes PKRU
 *  M    MAXPHYADDR: bits 51:M of an entry are reserved and must be 0.
 *  In a 2 MiB / 1 GiB leaf, bit 12 is PAT and bits 20:13 / 29:13 are reserved.
 *  avl  ignored by hardware, free for the kernel (vmsim's kernel uses bits 9-11, 52-58).
 *
 * The linear address, 4-level (48 bits; 5-level adds PML5 index 56:48):
 *
 *   63:48 sign   47:39 PML4   38:30 PDPT   29:21 PD   20:12 PT   11:0 offset
 */
#ifndef VMSIM_PTE_H
#define VMSIM_PTE_H

#include "vmsim/common.h"

#define VMS_PTE_P          (UINT64_C(1) << 0)
#define VMS_PTE_RW         (UINT64_C(1) << 1)
#define VMS_PTE_US         (UINT64_C(1) << 2)
#define VMS_PTE_PWT        (UINT64_C(1) << 3)
#define VMS_PTE_PCD        (UINT64_C(1) << 4)
#define VMS_PTE_A          (UINT64_C(1) << 5)
#define VMS_PTE_D          (UINT64_C(1) << 6)
#define VMS_PTE_PS         (UINT64_C(1) << 7)
#define VMS_PTE_PAT        (UINT64_C(1) << 7) /* at PT level only */
#define VMS_PTE_G          (UINT64_C(1) << 8)
#define VMS_PTE_PAT_LARGE  (UINT64_C(1) << 12) /* in 2M/1G leaves */
#define VMS_PTE_XD         (UINT64_C(1) << 63)
#define VMS_PTE_PKEY_SHIFT 59
#define VMS_PTE_PKEY_MASK  (UINT64_C(0xF) << VMS_PTE_PKEY_SHIFT)
#define VMS_PTE_ADDR_MASK  UINT64_C(0x000FFFFFFFFFF000) /* bits 51:12 */
/* Software-available bits (ignored by the walker). */
#define VMS_PTE_SW1         (UINT64_C(1) << 9)
#define VMS_PTE_SW2         (UINT64_C(1) << 10)
#define VMS_PTE_SW3         (UINT64_C(1) << 11)
#define VMS_PTE_SW_HI_SHIFT 52 /* bits 58:52 */
#define VMS_PTE_SW_HI_MASK  (UINT64_C(0x7F) << VMS_PTE_SW_HI_SHIFT)

_Static_assert(VMS_PTE_ADDR_MASK == (((UINT64_C(1) << 52) - 1) & ~UINT64_C(0xFFF)),
               "PTE address field is bits 51:12");
_Static_assert((VMS_PTE_PKEY_MASK & VMS_PTE_SW_HI_MASK) == 0, "PKEY and avl bits overlap");

/*
 * Page-fault error code (SDM Vol. 3A §4.7, Figure 4-12), pushed by #PF:
 *
 *   15   …  6   5   4   3    2   1   0
 *  +---+---+--+---+---+----+---+---+---+
 *  |SGX|   |SS|PK | I |RSVD| U | W | P |
 *  +---+---+--+---+---+----+---+---+---+
 *  P    0: not present at some level; 1: a protection (or reserved-bit) violation
 *  W    the access was a write            U    the access was in user mode (CPL 3)
 *  RSVD a reserved bit was set            I    an instruction fetch (NXE or SMEP on)
 *  PK   a protection-key violation        SS   a shadow-stack access (not modelled)
 */
#define VMS_PFERR_P    (UINT32_C(1) << 0)
#define VMS_PFERR_W    (UINT32_C(1) << 1)
#define VMS_PFERR_U    (UINT32_C(1) << 2)
#define VMS_PFERR_RSVD (UINT32_C(1) << 3)
#define VMS_PFERR_I    (UINT32_C(1) << 4)
#define VMS_PFERR_PK   (UINT32_C(1) << 5)
#define VMS_PFERR_SS   (UINT32_C(1) << 6)

/* Table levels, as the SDM numbers them. */
enum {
    VMS_LEVEL_PT = 1,
    VMS_LEVEL_PD = 2,
    VMS_LEVEL_PDPT = 3,
    VMS_LEVEL_PML4 = 4,
    VMS_LEVEL_PML5 = 5
};

/* Entries per table and the shift of the address bits a level-L entry maps. */
#define VMS_PT_ENTRIES 512
static inline unsigned vms_level_shift(unsigned level)
{
    return 12u + 9u * (level - 1u);
}

/* Index into the level-L table for va (bits shift+8:shift). */
static inline unsigned vms_va_index(uint64_t va, unsigned level)
{
    return (unsigned)((va >> vms_level_shift(level)) & 511u);
}

/* True when va is canonical for `levels`-level paging (bits 63:N-1 all equal, N = 48 or 57). */
static inline bool vms_va_canonical(uint64_t va, unsigned levels)
{
    unsigned n = 12u + 9u * levels; /* 48 or 57 */
    int64_t s = (int64_t)(va << (64 - n)) >> (64 - n);
    return (uint64_t)s == va;
}

static inline bool vms_pte_present(uint64_t pte)
{
    return (pte & VMS_PTE_P) != 0;
}

/* True when a level-L entry maps a page rather than pointing to a table. */
static inline bool vms_pte_leaf(uint64_t pte, unsigned level)
{
    return level == VMS_LEVEL_PT ||
           ((level == VMS_LEVEL_PD || level == VMS_LEVEL_PDPT) && (pte & VMS_PTE_PS));
}

/* Physical address held in an entry (a table's, or a 4 KiB page's). For large leaves
 * mask further with the page size (bit 12 is PAT there). */
static inline uint64_t vms_pte_addr(uint64_t pte)
{
    return pte & VMS_PTE_ADDR_MASK;
}

static inline uint64_t vms_pte_pfn(uint64_t pte)
{
    return vms_pte_addr(pte) >> VMS_PAGE_SHIFT;
}

static inline unsigned vms_pte_pkey(uint64_t pte)
{
    return (unsigned)((pte & VMS_PTE_PKEY_MASK) >> VMS_PTE_PKEY_SHIFT);
}

/* Build an entry from a physical address and flag bits. */
static inline uint64_t vms_pte_mk(uint64_t pa, uint64_t flags)
{
    return (pa & VMS_PTE_ADDR_MASK) | flags;
}

static inline uint64_t vms_pte_mkdirty(uint64_t pte)
{
    return pte | VMS_PTE_D;
}

static inline uint64_t vms_pte_mkclean(uint64_t pte)
{
    return pte & ~VMS_PTE_D;
}

static inline uint64_t vms_pte_wrprotect(uint64_t pte)
{
    return pte & ~VMS_PTE_RW;
}

static inline uint64_t vms_pte_mkold(uint64_t pte)
{
    return pte & ~VMS_PTE_A;
}

/* The level whose leaves have page size s (PT for 4K, PD for 2M, PDPT for 1G). */
static inline unsigned vms_pgsize_level(vms_pgsize s)
{
    return 1u + (unsigned)s;
}

#endif
