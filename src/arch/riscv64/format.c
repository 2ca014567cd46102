/*
 * riscv64/format.c — the RISC-V Sv39, Sv48 and Sv57 page-table formats as format
 * descriptors (format.h), and the kernel's software encodings in them.
 *
 * The entry layout is drawn in include/vmsim/arch/riscv64.h (priv §"Sv39"): one 8-byte
 * format at every level, V R W X U G A D at bits 0-7, RSW 9:8, the PPN at 53:10, 63:54
 * reserved (Svnapot/Svpbmt not implemented). R = W = X = 0 points to the next table;
 * any of R/X makes a leaf, at any level: 4 KiB at level 1, 2 MiB at 2, 1 GiB at 3, and
 * in Sv48/Sv57 512 GiB at 4, 256 TiB at 5. vmsim's page sizes stop at 1 GiB, so the
 * descriptors offer leaves at levels 1-3 only and the walker treats a leaf above level 3
 * as a page fault (a documented limitation, docs/arch/riscv64.md).
 *
 * Levels are numbered as everywhere in vmsim, the leaf-most level 1 at the bottom: the
 * level-L table is indexed by VPN[L-1] (the spec's "level i" is vmsim's level i+1).
 *
 * Software encodings, as Linux's riscv port (arch/riscv/include/asm/pgtable-bits.h and
 * pgtable.h):
 *
 *   PROT_NONE page   V = 0, _PAGE_PROT_NONE = G (bit 5) set; PPN, R/W/X, A, D kept
 *                    (Linux's PAGE_NONE is _PAGE_PROT_NONE | _PAGE_READ)
 *   swap entry       V = 0, R/W/X = 0, G = 0 (not PROT_NONE), type at 11:7
 *                    (__SWP_TYPE_SHIFT 7, 5 bits), offset at 63:12 (__SWP_OFFSET_SHIFT
 *                    12); bit 6 is Linux's _PAGE_SWP_EXCLUSIVE (not used here). vmsim
 *                    adds a marker in bit 4, which Linux's layout leaves unused, so that
 *                    type 0 offset 0 is not pte_none (as x86's SW2 marker does here).
 *
 *    63                                      12 11      7  6   5    4   3  1  0
 *   +------------------------------------------+---------+---+----+----+-----+---+
 *   |              swap offset                 |  type   | 0 | 0  |MARK|  0  |V=0|
 *   +------------------------------------------+---------+---+----+----+-----+---+
 */
#include <stdio.h>
#include <string.h>

#include "arch/riscv64/riscv64.h"

_Static_assert(VMSI_RV_SWP_TYPE_SHIFT + VMSI_RV_SWP_TYPE_BITS == VMSI_RV_SWP_OFF_SHIFT,
               "swap type is 11:7, the offset follows at 12");
_Static_assert(VMSI_RV_SWP_OFF_SHIFT + VMSI_RV_SWP_OFF_BITS == 64, "swap offset is 63:12");
_Static_assert((VMSI_RV_SWP_MARK & (VMS_RV_PTE_V | VMS_RV_PTE_LEAF | VMS_RV_PTE_G)) == 0,
               "the swap marker is none of V, R/W/X and _PAGE_PROT_NONE");

static bool rv_is_leaf(uint64_t pte, unsigned level)
{
    (void)level;
    return (pte & VMS_RV_PTE_LEAF) != 0;
}

/* The physical address an entry's PPN names (PPN × 4096). */
static uint64_t ppn_pa(uint64_t pte)
{
    return ((pte & VMS_RV_PTE_PPN_MASK) >> VMS_RV_PTE_PPN_SHIFT) << 12;
}

/*
 * Is a valid level-`level` entry well formed? False for what priv's translation steps 3
 * and 6 fault on: 63:54 set, W without R, D/A/U in a non-leaf, and a superpage whose PPN
 * is not aligned to its size ("misaligned superpage").
 */
static bool well_formed(uint64_t pte, unsigned level)
{
    if (pte & VMS_RV_PTE_RSVD_MASK)
        return false;
    if ((pte & (VMS_RV_PTE_R | VMS_RV_PTE_W)) == VMS_RV_PTE_W)
        return false;
    if (!(pte & VMS_RV_PTE_LEAF))
        return (pte & (VMS_RV_PTE_D | VMS_RV_PTE_A | VMS_RV_PTE_U)) == 0;
    uint64_t low = (UINT64_C(1) << (9u * (level - 1u))) - 1;
    return ((pte >> VMS_RV_PTE_PPN_SHIFT) & low) == 0;
}

static void rv_decode(const vms_pt_format *f, uint64_t pte, unsigned level, vms_pte_info *out)
{
    (void)f;
    memset(out, 0, sizeof *out);
    out->present = (pte & VMS_RV_PTE_V) != 0;
    if (!out->present)
        return;
    out->leaf = rv_is_leaf(pte, level);
    out->pa = ppn_pa(pte);
    out->rsvd_clear = well_formed(pte, level);
    if (!out->leaf)
        return;
    out->pa &= ~((UINT64_C(1) << (12u + 9u * (level - 1u))) - 1);
    out->prot = (pte & VMS_RV_PTE_R ? VMS_PGPROT_R : 0) | (pte & VMS_RV_PTE_W ? VMS_PGPROT_W : 0) |
                (pte & VMS_RV_PTE_X ? VMS_PGPROT_X : 0) | (pte & VMS_RV_PTE_U ? VMS_PGPROT_U : 0) |
                (pte & VMS_RV_PTE_G ? VMS_PGPROT_G : 0) | (pte & VMS_RV_PTE_A ? VMS_PGPROT_A : 0) |
                (pte & VMS_RV_PTE_D ? VMS_PGPROT_D : 0);
}

/* The PPN field of an entry for physical address pa. */
static uint64_t pa_ppn(uint64_t pa)
{
    return ((pa >> 12) << VMS_RV_PTE_PPN_SHIFT) & VMS_RV_PTE_PPN_MASK;
}

/*
 * A leaf with neutral rights. Writable implies readable (W without R is reserved; Linux's
 * PAGE_WRITE is READ|WRITE). A leaf with none of R/W/X cannot exist on RISC-V (it would
 * be a table pointer): it is built as Linux builds PAGE_NONE, not valid with
 * _PAGE_PROT_NONE | R, so the hardware never uses it. NOCACHE needs Svpbmt: ignored.
 */
static uint64_t rv_mk_leaf(const vms_pt_format *f, uint64_t pa, unsigned level, unsigned prot)
{
    (void)f;
    (void)level;
    uint64_t v = pa_ppn(pa) | (prot & VMS_PGPROT_U ? VMS_RV_PTE_U : 0) |
                 (prot & VMS_PGPROT_A ? VMS_RV_PTE_A : 0) |
                 (prot & VMS_PGPROT_D ? VMS_RV_PTE_D : 0);
    if (!(prot & (VMS_PGPROT_R | VMS_PGPROT_W | VMS_PGPROT_X)))
        return v | VMS_RV_PTE_R | VMS_RV_PTE_G; /* PAGE_NONE: V = 0 */
    return v | VMS_RV_PTE_V | (prot & (VMS_PGPROT_R | VMS_PGPROT_W) ? VMS_RV_PTE_R : 0) |
           (prot & VMS_PGPROT_W ? VMS_RV_PTE_W : 0) | (prot & VMS_PGPROT_X ? VMS_RV_PTE_X : 0) |
           (prot & VMS_PGPROT_G ? VMS_RV_PTE_G : 0);
}

/* flags are RISC-V bits and must hold one of R/W/X (else the entry is a pointer). */
static uint64_t rv_mk_raw(const vms_pt_format *f, uint64_t pa, unsigned level, uint64_t flags)
{
    (void)f;
    (void)level;
    return pa_ppn(pa) | flags | VMS_RV_PTE_V;
}

/* Intermediate entries: V and the PPN only (D, A, U are reserved in a non-leaf). */
static uint64_t rv_mk_table(const vms_pt_format *f, uint64_t pa, unsigned level)
{
    (void)f;
    (void)level;
    return pa_ppn(pa) | VMS_RV_PTE_V;
}

static void rv_bits_str(uint64_t pte, unsigned level, char *buf, size_t len)
{
    static const struct {
        uint64_t bit;
        const char *name;
    } names[] = {{VMS_RV_PTE_V, "V"}, {VMS_RV_PTE_R, "R"}, {VMS_RV_PTE_W, "W"},
                 {VMS_RV_PTE_X, "X"}, {VMS_RV_PTE_U, "U"}, {VMS_RV_PTE_G, "G"},
                 {VMS_RV_PTE_A, "A"}, {VMS_RV_PTE_D, "D"}};
    (void)level;
    size_t n = 0;
    if (len)
        buf[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(pte & names[i].bit))
            continue;
        int w = snprintf(buf + n, len > n ? len - n : 0, "%s%s", n ? " " : "", names[i].name);
        if (w > 0)
            n += (size_t)w;
    }
    unsigned rsw = (unsigned)((pte & VMS_RV_PTE_RSW_MASK) >> VMS_RV_PTE_RSW_SHIFT);
    if (rsw) {
        int w = snprintf(buf + n, len > n ? len - n : 0, "%sRSW=%u", n ? " " : "", rsw);
        if (w > 0)
            n += (size_t)w;
    }
    if (pte & VMS_RV_PTE_RSVD_MASK)
        snprintf(buf + n, len > n ? len - n : 0, "%sRSVD[63:54]", n ? " " : "");
}

#define RV_FORMAT(NAME, TITLE, LEVELS, VABITS)                                                     \
    {                                                                                              \
        .name = NAME, .arch = "riscv64", .title = TITLE, .levels = LEVELS, .page_shift = 12,       \
        .index_bits = 9, .entry_shift = 3, .va_bits = VABITS,                                      \
        .leaf_levels = (1u << 1) | (1u << 2) | (1u << 3),                                          \
        .level_name = {"", "VPN[0]", "VPN[1]", "VPN[2]", "VPN[3]", "VPN[4]", ""},                  \
        .root_reg = "satp", .addr_mask = VMS_RV_PTE_PPN_MASK, .addr_shift = VMS_RV_PTE_PPN_SHIFT,  \
        .large_attr_bits = 0, .present = {VMS_RV_PTE_V, VMS_RV_PTE_V},                             \
        .write = {VMS_RV_PTE_W, VMS_RV_PTE_W}, .user = {VMS_RV_PTE_U, VMS_RV_PTE_U},               \
        .young = {VMS_RV_PTE_A, VMS_RV_PTE_A}, .dirty = {VMS_RV_PTE_D, VMS_RV_PTE_D},              \
        .global = {VMS_RV_PTE_G, VMS_RV_PTE_G}, .exec_never = {VMS_RV_PTE_X, 0},                   \
        .sw_protnone = VMS_RV_PTE_G, .sw_swap = VMSI_RV_SWP_MARK,                                  \
        .swp_type_shift = VMSI_RV_SWP_TYPE_SHIFT, .swp_type_bits = VMSI_RV_SWP_TYPE_BITS,          \
        .swp_off_shift = VMSI_RV_SWP_OFF_SHIFT, .swp_off_bits = VMSI_RV_SWP_OFF_BITS,              \
        .decode = rv_decode, .mk_leaf = rv_mk_leaf, .mk_raw = rv_mk_raw, .mk_table = rv_mk_table,  \
        .is_leaf = rv_is_leaf, .bits_str = rv_bits_str, .walk = vmsi_rv_walk,                      \
        .check_access = vmsi_rv_check_access, .mmu_ops = &vmsi_rv_mmu_ops,                         \
        .asid_bits = VMS_RV_ASIDLEN,                                                               \
    }

const vms_pt_format vmsi_fmt_sv39 = RV_FORMAT("sv39", "RISC-V Sv39 (3-level paging)", 3, 39);
const vms_pt_format vmsi_fmt_sv48 = RV_FORMAT("sv48", "RISC-V Sv48 (4-level paging)", 4, 48);
const vms_pt_format vmsi_fmt_sv57 = RV_FORMAT("sv57", "RISC-V Sv57 (5-level paging)", 5, 57);

const vms_pt_format *vms_format_riscv64(unsigned levels)
{
    return levels == 3   ? &vmsi_fmt_sv39
           : levels == 4 ? &vmsi_fmt_sv48
           : levels == 5 ? &vmsi_fmt_sv57
                         : NULL;
}

unsigned vms_rv_format_mode(const vms_pt_format *f)
{
    return f == &vmsi_fmt_sv39   ? VMS_RV_SATP_SV39
           : f == &vmsi_fmt_sv48 ? VMS_RV_SATP_SV48
           : f == &vmsi_fmt_sv57 ? VMS_RV_SATP_SV57
                                 : 0u;
}

const vms_pt_format *vms_rv_mode_format(unsigned mode)
{
    return mode == VMS_RV_SATP_SV39   ? &vmsi_fmt_sv39
           : mode == VMS_RV_SATP_SV48 ? &vmsi_fmt_sv48
           : mode == VMS_RV_SATP_SV57 ? &vmsi_fmt_sv57
                                      : NULL;
}
