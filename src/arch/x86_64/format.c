/*
 * x86_64/format.c — the x86-64 page-table format (4-level and 5-level paging) as a
 * format descriptor (format.h), and the kernel's software encodings in it.
 *
 * The entry layout is drawn in include/vmsim/pte.h (Intel SDM Vol. 3A §4.5, Tables
 * 4-15 … 4-20): one 8-byte format at every level, P RW US PWT PCD A D PS G at bits 0-8,
 * the frame at 51:12, protection key at 62:59, XD at 63. Leaves sit at PT (4 KiB), PD
 * with PS (2 MiB) and PDPT with PS (1 GiB).
 *
 * Software encodings, as Linux's x86 port (arch/x86/include/asm/pgtable_types.h):
 *
 *   PROT_NONE page   P = 0, SW1 (bit 9) set; frame, PS, RW, A, D kept (_PAGE_PROTNONE)
 *   swap entry       P = 0, SW1 = 0, SW2 (bit 10) set, type at 63:59 (5 bits), offset
 *                    at 51:12 (40 bits: slots of 4 KiB)
 *
 *    63   59 58      52 51                 12 11 10  9  8      1  0
 *   +-------+----------+---------------------+--+---+--+---------+--+
 *   | type  |    0     |   swap offset       |0 |SWP|0 |   0     |P=0|
 *   +-------+----------+---------------------+--+---+--+---------+--+
 */
#include <stdio.h>
#include <string.h>

#include "arch/x86_64/x86_64.h"

_Static_assert(VMSI_X86_SWP_TYPE_SHIFT + VMSI_X86_SWP_TYPE_BITS == 64, "swap type is 63:59");
_Static_assert(VMSI_X86_SWP_OFF_SHIFT + VMSI_X86_SWP_OFF_BITS == 52, "swap offset is 51:12");

bool vmsi_x86_is_leaf(uint64_t pte, unsigned level)
{
    return vms_pte_leaf(pte, level);
}

void vmsi_x86_decode(const vms_pt_format *f, uint64_t pte, unsigned level, vms_pte_info *out)
{
    (void)f;
    memset(out, 0, sizeof *out);
    out->present = vms_pte_present(pte);
    if (!out->present)
        return;
    out->leaf = vms_pte_leaf(pte, level);
    out->pa = vms_pte_addr(pte);
    out->rsvd_clear = (pte & vmsi_x86_struct_rsvd(pte, level)) == 0;
    if (!out->leaf)
        return;
    out->pa &= ~((UINT64_C(1) << (12u + 9u * (level - 1u))) - 1); /* PAT at bit 12 */
    out->prot = VMS_PGPROT_R | (pte & VMS_PTE_RW ? VMS_PGPROT_W : 0) |
                (pte & VMS_PTE_US ? VMS_PGPROT_U : 0) | (pte & VMS_PTE_XD ? 0 : VMS_PGPROT_X) |
                (pte & VMS_PTE_G ? VMS_PGPROT_G : 0) | (pte & VMS_PTE_A ? VMS_PGPROT_A : 0) |
                (pte & VMS_PTE_D ? VMS_PGPROT_D : 0) | (pte & VMS_PTE_PCD ? VMS_PGPROT_NOCACHE : 0);
    out->pkey = vms_pte_pkey(pte);
}

uint64_t vmsi_x86_prot_bits(unsigned prot)
{
    return VMS_PTE_P | (prot & VMS_PGPROT_W ? VMS_PTE_RW : 0) |
           (prot & VMS_PGPROT_U ? VMS_PTE_US : 0) | (prot & VMS_PGPROT_X ? 0 : VMS_PTE_XD) |
           (prot & VMS_PGPROT_G ? VMS_PTE_G : 0) | (prot & VMS_PGPROT_A ? VMS_PTE_A : 0) |
           (prot & VMS_PGPROT_D ? VMS_PTE_D : 0) |
           (prot & VMS_PGPROT_NOCACHE ? VMS_PTE_PCD | VMS_PTE_PWT : 0);
}

uint64_t vmsi_x86_mk_leaf(const vms_pt_format *f, uint64_t pa, unsigned level, unsigned prot)
{
    (void)f;
    uint64_t ps = level > 1 ? VMS_PTE_PS : 0;
    if (prot == 0) /* PROT_NONE: P clear, frame and PS kept */
        return vms_pte_mk(pa, VMS_PTE_SW1 | ps);
    return vms_pte_mk(pa, vmsi_x86_prot_bits(prot) | ps);
}

uint64_t vmsi_x86_mk_raw(const vms_pt_format *f, uint64_t pa, unsigned level, uint64_t flags)
{
    (void)f;
    return pa | flags | VMS_PTE_P | (level > 1 ? VMS_PTE_PS : 0);
}

/* Intermediate entries: P|RW|US, rights decided by the leaf, as Linux's _PAGE_TABLE. */
uint64_t vmsi_x86_mk_table(const vms_pt_format *f, uint64_t pa, unsigned level)
{
    (void)f;
    (void)level;
    return vms_pte_mk(pa, VMS_PTE_P | VMS_PTE_RW | VMS_PTE_US);
}

void vmsi_x86_bits_str(uint64_t pte, unsigned level, char *buf, size_t len)
{
    static const struct {
        uint64_t bit;
        const char *name;
    } names[] = {{VMS_PTE_P, "P"},     {VMS_PTE_RW, "RW"}, {VMS_PTE_US, "US"}, {VMS_PTE_PWT, "PWT"},
                 {VMS_PTE_PCD, "PCD"}, {VMS_PTE_A, "A"},   {VMS_PTE_D, "D"},   {VMS_PTE_PS, "PS"},
                 {VMS_PTE_G, "G"},     {VMS_PTE_XD, "XD"}};
    size_t n = 0;
    if (len)
        buf[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(pte & names[i].bit) || (names[i].bit == VMS_PTE_PS && level == VMS_LEVEL_PT))
            continue;
        int w = snprintf(buf + n, len > n ? len - n : 0, "%s%s", n ? " " : "", names[i].name);
        if (w > 0)
            n += (size_t)w;
    }
}

const vms_pt_format vmsi_fmt_x86_64 =
    VMSI_X86_FORMAT("x86_64", "x86-64 4-level paging", 4, 48, vmsi_x86_walk, &vmsi_x86_mmu_ops);
const vms_pt_format vmsi_fmt_x86_64_la57 = VMSI_X86_FORMAT(
    "x86_64-la57", "x86-64 5-level paging (LA57)", 5, 57, vmsi_x86_walk, &vmsi_x86_mmu_ops);

const vms_pt_format *vms_format_x86_64(unsigned levels)
{
    return levels == 4 ? &vmsi_fmt_x86_64 : levels == 5 ? &vmsi_fmt_x86_64_la57 : NULL;
}
