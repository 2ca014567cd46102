/*
 * aarch64/format.c — the AArch64 4 KiB-granule, 48-bit stage 1 format (layouts drawn in
 * include/vmsim/arch/aarch64.h; Arm ARM DDI 0487 §D8.3 "Translation table descriptor
 * formats", §D4.3 in older issues) as a format descriptor, and the kernel's encodings.
 *
 * Shape: 4 levels of 512 8-byte entries (vmsim levels 4..1 = Arm levels 0..3), leaves
 * at levels 1 (4 KiB page), 2 (2 MiB block) and 3 (1 GiB block). va_bits is 49: the two
 * 48-bit halves (TTBR0_EL1 from 0, TTBR1_EL1 from 0xFFFF000000000000) are exactly the
 * addresses whose bits 63:48 are all equal, the canonical form of a 49-bit address; a
 * tree indexes VA[47:12] whichever half it serves.
 *
 * The kernel's view (the data-driven bits of format.h), following Linux's arm64 port
 * (arch/arm64/include/asm/pgtable-prot.h and pgtable.h) where the descriptor allows:
 *   present   bit 0 (PTE_VALID)
 *   user      AP[1] (PTE_USER)
 *   young     AF (PTE_AF)
 *   global    nG = 0 (PTE_NG clear)
 *   exec_never UXN (PTE_UXN; kernel pages carry PXN as well, mk_leaf)
 *   write     DBM (Linux's PTE_WRITE, bit 51)
 *   dirty     PTE_DIRTY (software, bit 55) or, with DBM, AP[2] = 0 (hardware dirty):
 *             Linux's pte_dirty = pte_sw_dirty || pte_hw_dirty (pte_dirty hook)
 *             The edits are Linux's (pte_edit hook): mkwrite sets DBM and, if
 *             software-dirty, clears AP[2]; wrprotect moves hardware dirt to PTE_DIRTY,
 *             clears DBM and sets AP[2]; mkdirty sets PTE_DIRTY and, if writable,
 *             clears AP[2]; mkclean clears PTE_DIRTY and sets AP[2]. So AP[2] = 0
 *             only with DBM = 1, and with TCR_EL1.HA = HD = 1 (how the kernel boots the
 *             core, cpu.c) "the hardware may write" is exactly DBM: copy-on-write is
 *             safe, and a write to a clean page clears AP[2] in hardware, which the
 *             kernel reads as dirty — the x86 D bit's role, without a fault.
 *   PROT_NONE  PTE_PROT_NONE (bit 58) with PTE_VALID clear (Linux v4.x … v6.8)
 *   swap entry type at 7:3, offset at 57:8, bits 1:0 and 58 zero (Linux v5.19 … v6.8);
 *              no marker bit: any other non-zero not-present entry (sw_swap = 0).
 */
#include <stdio.h>
#include <string.h>

#include "arch/aarch64/aarch64.h"

/* AttrIndx values as Linux assigns MAIR_EL1 (arch/arm64/include/asm/memory.h). */
#define A64_MT_NORMAL       0u
#define A64_MT_DEVICE_nGnRE 4u

/* A leaf at `level`: a page at level 1, a block at levels 2 and 3 — valid, or a PROT_NONE
 * block (type bits 00 with PTE_PROT_NONE: a64_mk_leaf's, which keep the frame). Linux's
 * pmd_leaf is pmd_present && !pmd_table, and pmd_present counts PROT_NONE entries. */
static bool a64_is_leaf(uint64_t pte, unsigned level)
{
    if (level == 1)
        return true;
    uint64_t type = pte & VMS_A64_TYPE_MASK;
    return level <= 3 &&
           (type == VMS_A64_DESC_BLOCK || (type == 0 && (pte & VMS_A64_SW_PROT_NONE)));
}

/* Is a descriptor with these type bits valid at `level` (vmsim numbering)? Blocks
 * exist only at Arm levels 1 and 2; "01" at levels 0 and 3 is treated as invalid. */
static bool a64_valid(uint64_t pte, unsigned level)
{
    if (!(pte & VMS_A64_VALID))
        return false;
    return (pte & VMS_A64_TYPE) || (level == 2 || level == 3);
}

static void a64_decode(const vms_pt_format *f, uint64_t pte, unsigned level, vms_pte_info *out)
{
    memset(out, 0, sizeof *out);
    out->present = a64_valid(pte, level);
    if (!out->present)
        return;
    out->rsvd_clear = true; /* RES0 bits are ignored; the walker checks the PA size */
    out->leaf = a64_is_leaf(pte, level);
    out->pa = pte & VMS_A64_ADDR_MASK;
    if (!out->leaf)
        return;
    out->pa &= ~((UINT64_C(1) << vms_fmt_level_shift(f, level)) - 1);
    bool user = (pte & VMS_A64_AP1) != 0;
    bool x = user ? !(pte & VMS_A64_UXN) : !(pte & VMS_A64_PXN);
    bool w = !(pte & VMS_A64_AP2) || (pte & VMS_A64_DBM); /* DBM: with TCR_EL1.HD */
    bool d = !(pte & VMS_A64_AP2) || (pte & VMS_A64_SW_DIRTY);
    unsigned attr = (unsigned)((pte & VMS_A64_ATTRINDX_MASK) >> VMS_A64_ATTRINDX_SHIFT);
    out->prot = VMS_PGPROT_R | (w ? VMS_PGPROT_W : 0) | (d ? VMS_PGPROT_D : 0) |
                (user ? VMS_PGPROT_U : 0) | (x ? VMS_PGPROT_X : 0) |
                (pte & VMS_A64_NG ? 0 : VMS_PGPROT_G) | (pte & VMS_A64_AF ? VMS_PGPROT_A : 0) |
                (attr == A64_MT_DEVICE_nGnRE ? VMS_PGPROT_NOCACHE : 0);
}

/* The lower and upper attributes prot asks for (no type bits, no address). Write and
 * dirty as Linux's PAGE_* and pte_mkdirty: writable is DBM; AP[2] = 0 only when both
 * writable and dirty; a dirty page carries PTE_DIRTY. */
static uint64_t a64_prot_bits(unsigned prot)
{
    bool user = prot & VMS_PGPROT_U, w = prot & VMS_PGPROT_W, d = prot & VMS_PGPROT_D;
    uint64_t b = VMS_A64_SH_INNER | (w && d ? 0 : VMS_A64_AP2) | (w ? VMS_A64_DBM : 0) |
                 (d ? VMS_A64_SW_DIRTY : 0) | (user ? VMS_A64_AP1 : 0) |
                 (prot & VMS_PGPROT_A ? VMS_A64_AF : 0) | (prot & VMS_PGPROT_G ? 0 : VMS_A64_NG);
    uint64_t attr = prot & VMS_PGPROT_NOCACHE ? A64_MT_DEVICE_nGnRE : A64_MT_NORMAL;
    b |= attr << VMS_A64_ATTRINDX_SHIFT;
    /* Linux: user pages are never executable at EL1 (PTE_PXN); kernel pages never at
     * EL0 (PTE_UXN); X clears the other one. */
    if (user)
        b |= VMS_A64_PXN | (prot & VMS_PGPROT_X ? 0 : VMS_A64_UXN);
    else
        b |= VMS_A64_UXN | (prot & VMS_PGPROT_X ? 0 : VMS_A64_PXN);
    return b;
}

static uint64_t leaf_type(unsigned level)
{
    return level == 1 ? VMS_A64_DESC_PAGE : VMS_A64_DESC_BLOCK;
}

/* Linux's PAGE_NONE: PTE_VALID clear, PTE_PROT_NONE, read-only, nG, PXN, UXN. */
#define A64_PAGE_NONE                                                                              \
    (VMS_A64_SW_PROT_NONE | VMS_A64_AF | VMS_A64_SH_INNER | VMS_A64_AP2 | VMS_A64_NG |             \
     VMS_A64_PXN | VMS_A64_UXN)

static uint64_t a64_mk_leaf(const vms_pt_format *f, uint64_t pa, unsigned level, unsigned prot)
{
    (void)f;
    if (prot == 0) /* PROT_NONE: the type bits without VALID, so the page size stays */
        return (pa & VMS_A64_ADDR_MASK) | A64_PAGE_NONE | (leaf_type(level) & ~VMS_A64_VALID);
    return (pa & VMS_A64_ADDR_MASK) | a64_prot_bits(prot) | leaf_type(level);
}

/* Linux's pte_sw_dirty || pte_hw_dirty (arch/arm64/include/asm/pgtable.h). */
static bool a64_pte_dirty(uint64_t pte)
{
    return (pte & VMS_A64_SW_DIRTY) || ((pte & VMS_A64_DBM) && !(pte & VMS_A64_AP2));
}

/* Linux's pte_mkwrite_novma, pte_wrprotect, pte_mkdirty and pte_mkclean. */
static uint64_t a64_pte_edit(uint64_t pte, unsigned edit)
{
    switch (edit) {
    case VMS_FMT_MKWRITE:
        pte |= VMS_A64_DBM;
        return pte & VMS_A64_SW_DIRTY ? pte & ~VMS_A64_AP2 : pte;
    case VMS_FMT_WRPROTECT:
        if ((pte & VMS_A64_DBM) && !(pte & VMS_A64_AP2))
            pte |= VMS_A64_SW_DIRTY; /* keep the hardware's dirt */
        return (pte & ~VMS_A64_DBM) | VMS_A64_AP2;
    case VMS_FMT_MKDIRTY:
        pte |= VMS_A64_SW_DIRTY;
        return pte & VMS_A64_DBM ? pte & ~VMS_A64_AP2 : pte;
    default: /* VMS_FMT_MKCLEAN */
        return (pte & ~VMS_A64_SW_DIRTY) | VMS_A64_AP2;
    }
}

static uint64_t a64_mk_raw(const vms_pt_format *f, uint64_t pa, unsigned level, uint64_t flags)
{
    (void)f;
    return (pa & VMS_A64_ADDR_MASK) | (flags & ~VMS_A64_TYPE_MASK) | leaf_type(level);
}

/* Table descriptors carry no attributes (APTable/XNTable 0, as Linux's PMD_TYPE_TABLE). */
static uint64_t a64_mk_table(const vms_pt_format *f, uint64_t pa, unsigned level)
{
    (void)f;
    (void)level;
    return (pa & VMS_A64_ADDR_MASK) | VMS_A64_DESC_TABLE;
}

/* Append one name to buf (len bytes) at *n, space-separated. */
static void add(char *buf, size_t len, size_t *n, const char *s)
{
    int w = snprintf(buf + *n, len > *n ? len - *n : 0, "%s%s", *n ? " " : "", s);
    if (w > 0)
        *n += (size_t)w;
}

static void a64_bits_str(uint64_t pte, unsigned level, char *buf, size_t len)
{
    size_t n = 0;
    char tmp[32];
    if (len)
        buf[0] = '\0';
    if (!a64_valid(pte, level)) {
        add(buf, len, &n, pte & VMS_A64_VALID ? "invalid (reserved type 01)" : "invalid");
        return;
    }
    if (!a64_is_leaf(pte, level)) {
        add(buf, len, &n, "table");
        return;
    }
    add(buf, len, &n, level == 1 ? "page" : "block");
    snprintf(tmp, sizeof tmp, "AttrIndx=%u",
             (unsigned)((pte & VMS_A64_ATTRINDX_MASK) >> VMS_A64_ATTRINDX_SHIFT));
    add(buf, len, &n, tmp);
    snprintf(tmp, sizeof tmp, "AP=%u%u", (unsigned)((pte >> 7) & 1), (unsigned)((pte >> 6) & 1));
    add(buf, len, &n, tmp);
    snprintf(tmp, sizeof tmp, "SH=%u%u", (unsigned)((pte >> 9) & 1), (unsigned)((pte >> 8) & 1));
    add(buf, len, &n, tmp);
    static const struct {
        uint64_t bit;
        const char *name;
    } names[] = {{VMS_A64_NS, "NS"},   {VMS_A64_AF, "AF"},   {VMS_A64_NG, "nG"},
                 {VMS_A64_GP, "GP"},   {VMS_A64_DBM, "DBM"}, {VMS_A64_CONT, "Cont"},
                 {VMS_A64_PXN, "PXN"}, {VMS_A64_UXN, "UXN"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (pte & names[i].bit)
            add(buf, len, &n, names[i].name);
}

const vms_pt_format vmsi_fmt_aarch64 = {
    .name = "aarch64",
    .arch = "aarch64",
    .title = "AArch64 stage 1, 4 KiB granule, 48-bit VA",
    .levels = 4,
    .page_shift = 12,
    .index_bits = 9,
    .entry_shift = 3,
    .va_bits = 49, /* see the file comment: two 48-bit halves */
    .leaf_levels = (1u << 1) | (1u << 2) | (1u << 3),
    .level_name = {"", "level 3", "level 2", "level 1", "level 0", "", ""},
    .root_reg = "TTBR0_EL1",
    .addr_mask = VMS_A64_ADDR_MASK,
    .addr_shift = 12,
    .large_attr_bits = 0,
    .present = {VMS_A64_VALID, VMS_A64_VALID},
    .write = {VMS_A64_DBM, VMS_A64_DBM},
    .user = {VMS_A64_AP1, VMS_A64_AP1},
    .young = {VMS_A64_AF, VMS_A64_AF},
    .dirty = {VMS_A64_SW_DIRTY, VMS_A64_SW_DIRTY}, /* pte_dirty hook: hardware dirt too */
    .global = {VMS_A64_NG, 0},
    .exec_never = {VMS_A64_UXN, VMS_A64_UXN},
    .sw_protnone = VMS_A64_SW_PROT_NONE,
    .sw_swap = 0,
    .swp_type_shift = VMS_A64_SWP_TYPE_SHIFT,
    .swp_type_bits = VMS_A64_SWP_TYPE_BITS,
    .swp_off_shift = VMS_A64_SWP_OFF_SHIFT,
    .swp_off_bits = VMS_A64_SWP_OFF_BITS,
    .decode = a64_decode,
    .mk_leaf = a64_mk_leaf,
    .mk_raw = a64_mk_raw,
    .mk_table = a64_mk_table,
    .is_leaf = a64_is_leaf,
    .bits_str = a64_bits_str,
    .walk = vmsi_a64_walk,
    .check_access = vmsi_a64_check_access,
    .mmu_ops = &vmsi_a64_mmu_ops,
    .asid_bits = 16, /* TCR_EL1.AS = 1; 8 with AS = 0 */
    .pte_dirty = a64_pte_dirty,
    .pte_edit = a64_pte_edit,
};

const vms_pt_format *vms_format_aarch64(void)
{
    return &vmsi_fmt_aarch64;
}

const char *vms_a64_fsc_name(unsigned fsc)
{
    static const char *const names[] = {
        "address size fault, level 0", "address size fault, level 1", "address size fault, level 2",
        "address size fault, level 3", "translation fault, level 0",  "translation fault, level 1",
        "translation fault, level 2",  "translation fault, level 3",  "access flag fault, level 0",
        "access flag fault, level 1",  "access flag fault, level 2",  "access flag fault, level 3",
        "permission fault, level 0",   "permission fault, level 1",   "permission fault, level 2",
        "permission fault, level 3",
    };
    if (fsc < sizeof names / sizeof names[0])
        return names[fsc];
    if (fsc >= VMS_A64_FSC_SEA_WALK && fsc <= VMS_A64_FSC_SEA_WALK + 3) {
        static const char *const sea[] = {"synchronous external abort on table walk, level 0",
                                          "synchronous external abort on table walk, level 1",
                                          "synchronous external abort on table walk, level 2",
                                          "synchronous external abort on table walk, level 3"};
        return sea[fsc - VMS_A64_FSC_SEA_WALK];
    }
    return "unknown fault status";
}

uint64_t vms_a64_tcr(unsigned pa_bits, bool as16, bool a1, bool ha, bool hd)
{
    static const unsigned ips_bits[] = {32, 36, 40, 42, 44, 48};
    uint64_t ips = 5;
    for (unsigned i = 0; i < 6; i++)
        if (pa_bits <= ips_bits[i]) {
            ips = i;
            break;
        }
    return (UINT64_C(16) << VMS_A64_TCR_T0SZ_SHIFT) | (UINT64_C(0) << VMS_A64_TCR_TG0_SHIFT) |
           (UINT64_C(16) << VMS_A64_TCR_T1SZ_SHIFT) | (UINT64_C(2) << VMS_A64_TCR_TG1_SHIFT) |
           (ips << VMS_A64_TCR_IPS_SHIFT) | VMS_A64_TCR_HPD0 | VMS_A64_TCR_HPD1 |
           (as16 ? VMS_A64_TCR_AS : 0) | (a1 ? VMS_A64_TCR_A1 : 0) | (ha ? VMS_A64_TCR_HA : 0) |
           (hd ? VMS_A64_TCR_HD : 0);
}
