/*
 * virt/formats.c — the second-stage page-table formats as format descriptors
 * (format.h), so that the page-table editor (pt.h) builds a hypervisor's tables in host
 * RAM exactly as it builds a kernel's: Intel EPT (4 and 5 levels) and Arm Stage 2 (3 and
 * 4 levels, 4 KiB granule). AMD NPT is the x86-64 format itself. Bit layouts are drawn
 * in include/vmsim/virt.h (SDM Vol. 3C §29.3.2, Tables 29-1 … 29-6; Arm ARM §D8.3).
 *
 * These are second-stage formats: they have no stage-1 walker, rights check or MMU
 * operations (those fields are NULL), no kernel software encodings (no PROT_NONE, no
 * swap entries: a hypervisor that swaps guest memory keeps its own records) and an
 * unsigned input space (guest-physical addresses from 0). They are not in the format
 * registry, which lists the formats a core can run.
 *
 * Documented choice (EPT): format.h's `present` is one bit pattern, and an EPT entry is
 * present when any of R, W, X is set; the descriptor says R, which every entry the
 * editor builds carries, so an execute-only leaf (X alone) is one the editor treats as
 * absent. The walker (s2walk.c) and decode apply the architecture's rule.
 */
#include <stdio.h>
#include <string.h>

#include "virt/virt_impl.h"

/* ---- EPT ---- */

/* Reserved bits of a present EPT entry at `level` (Tables 29-1 … 29-6): 7:3 of a
 * non-leaf entry, bit 7 of a PML4E/PML5E, 29:12 of a 1 GiB leaf, 20:12 of a 2 MiB leaf. */
uint64_t vmsi_ept_struct_rsvd(uint64_t pte, unsigned level)
{
    bool leaf = level == 1 || ((level == 2 || level == 3) && (pte & VMS_EPT_PS));
    if (!leaf)
        return UINT64_C(0xF8); /* 7:3 (PS must be 0 above a leaf; 7 always at PML4/PML5) */
    if (level == 3)
        return UINT64_C(0x3FFFF000); /* 29:12 */
    if (level == 2)
        return UINT64_C(0x1FF000); /* 20:12 */
    return 0;
}

_Static_assert(UINT64_C(0x3FFFF000) == ((UINT64_C(1) << 30) - (UINT64_C(1) << 12)),
               "1 GiB EPT leaf reserved bits are 29:12");

bool vmsi_ept_is_leaf(uint64_t pte, unsigned level)
{
    return level == 1 || ((level == 2 || level == 3) && (pte & VMS_EPT_PS));
}

/* §29.3.3.1: W without R, and a leaf memory type of 2, 3 or 7, misconfigure an entry. */
bool vmsi_ept_misconfigured(uint64_t pte, unsigned level)
{
    if ((pte & (VMS_EPT_R | VMS_EPT_W)) == VMS_EPT_W)
        return true;
    if (pte & vmsi_ept_struct_rsvd(pte, level))
        return true;
    if (!vmsi_ept_is_leaf(pte, level))
        return false;
    unsigned mt = (unsigned)((pte & VMS_EPT_MT_MASK) >> VMS_EPT_MT_SHIFT);
    return mt == 2 || mt == 3 || mt == 7;
}

static void ept_decode(const vms_pt_format *f, uint64_t pte, unsigned level, vms_pte_info *out)
{
    memset(out, 0, sizeof *out);
    out->present = (pte & VMS_EPT_RWX) != 0;
    if (!out->present)
        return;
    out->leaf = vmsi_ept_is_leaf(pte, level);
    out->pa = pte & VMS_EPT_ADDR_MASK;
    out->rsvd_clear = !vmsi_ept_misconfigured(pte, level);
    if (out->leaf)
        out->pa &= ~((UINT64_C(1) << vms_fmt_level_shift(f, level)) - 1);
    out->prot = (pte & VMS_EPT_R ? VMS_PGPROT_R : 0) | (pte & VMS_EPT_W ? VMS_PGPROT_W : 0) |
                (pte & VMS_EPT_X ? VMS_PGPROT_X : 0) | (pte & VMS_EPT_A ? VMS_PGPROT_A : 0) |
                (out->leaf && (pte & VMS_EPT_D) ? VMS_PGPROT_D : 0) |
                (out->leaf && ((pte & VMS_EPT_MT_MASK) >> VMS_EPT_MT_SHIFT) == VMS_EPT_MT_UC
                     ? VMS_PGPROT_NOCACHE
                     : 0);
}

/* A leaf: the rights prot asks for, memory type WB (UC for NOCACHE), PS above level 1.
 * prot without R, W or X is an absent entry (0). */
static uint64_t ept_mk_leaf(const vms_pt_format *f, uint64_t pa, unsigned level, unsigned prot)
{
    (void)f;
    uint64_t rwx = (prot & VMS_PGPROT_R ? VMS_EPT_R : 0) | (prot & VMS_PGPROT_W ? VMS_EPT_W : 0) |
                   (prot & VMS_PGPROT_X ? VMS_EPT_X : 0);
    if (!rwx)
        return 0;
    uint64_t mt = prot & VMS_PGPROT_NOCACHE ? VMS_EPT_MT_UC : VMS_EPT_MT_WB;
    return (pa & VMS_EPT_ADDR_MASK) | rwx | mt << VMS_EPT_MT_SHIFT |
           (prot & VMS_PGPROT_A ? VMS_EPT_A : 0) | (prot & VMS_PGPROT_D ? VMS_EPT_D : 0) |
           (level > 1 ? VMS_EPT_PS : 0);
}

/* The caller's own bits (R/W/X, MT, IPAT, A, D …): only PS is added above level 1, since
 * no one bit marks an EPT entry present. */
static uint64_t ept_mk_raw(const vms_pt_format *f, uint64_t pa, unsigned level, uint64_t flags)
{
    (void)f;
    return (pa & VMS_EPT_ADDR_MASK) | flags | (level > 1 ? VMS_EPT_PS : 0);
}

/* Non-leaf entries allow everything (R|W|X); the leaves decide, as KVM builds them. */
static uint64_t ept_mk_table(const vms_pt_format *f, uint64_t pa, unsigned level)
{
    (void)f;
    (void)level;
    return (pa & VMS_EPT_ADDR_MASK) | VMS_EPT_RWX;
}

/* "R W X MT=6 PS A D" for narration. */
static void ept_bits_str(uint64_t pte, unsigned level, char *buf, size_t len)
{
    bool leaf = vmsi_ept_is_leaf(pte, level);
    snprintf(buf, len, "%s%s%s%s%s%s%s%s", pte & VMS_EPT_R ? "R " : "", pte & VMS_EPT_W ? "W " : "",
             pte & VMS_EPT_X ? "X " : "", "", leaf && level > 1 ? "PS " : "",
             pte & VMS_EPT_A ? "A " : "", leaf && (pte & VMS_EPT_D) ? "D " : "",
             leaf && (pte & VMS_EPT_IPAT) ? "IPAT " : "");
    size_t n = strlen(buf);
    if (leaf && n + 6 < len)
        snprintf(buf + n, len - n, "MT=%u",
                 (unsigned)((pte & VMS_EPT_MT_MASK) >> VMS_EPT_MT_SHIFT));
    else if (n && buf[n - 1] == ' ')
        buf[n - 1] = '\0';
}

#define EPT_FORMAT(NAME, TITLE, LEVELS, BITS)                                                      \
    {                                                                                              \
        .name = NAME, .arch = "x86_64", .title = TITLE, .levels = LEVELS, .page_shift = 12,        \
        .index_bits = 9, .entry_shift = 3, .va_bits = BITS, .va_unsigned = true,                   \
        .leaf_levels = (1u << 1) | (1u << 2) | (1u << 3),                                          \
        .level_name = {"", "EPT PT", "EPT PD", "EPT PDPT", "EPT PML4", "EPT PML5", ""},            \
        .root_reg = "EPTP", .addr_mask = VMS_EPT_ADDR_MASK, .addr_shift = 12,                      \
        .present = {VMS_EPT_R, VMS_EPT_R}, .write = {VMS_EPT_W, VMS_EPT_W},                        \
        .young = {VMS_EPT_A, VMS_EPT_A}, .dirty = {VMS_EPT_D, VMS_EPT_D},                          \
        .exec_never = {VMS_EPT_X, 0}, .decode = ept_decode, .mk_leaf = ept_mk_leaf,                \
        .mk_raw = ept_mk_raw, .mk_table = ept_mk_table, .is_leaf = vmsi_ept_is_leaf,               \
        .bits_str = ept_bits_str,                                                                  \
    }

static const vms_pt_format fmt_ept4 = EPT_FORMAT("ept4", "Intel EPT, 4-level", 4, 48);
static const vms_pt_format fmt_ept5 = EPT_FORMAT("ept5", "Intel EPT, 5-level", 5, 57);

const vms_pt_format *vms_format_ept(unsigned levels)
{
    return levels == 4 ? &fmt_ept4 : levels == 5 ? &fmt_ept5 : NULL;
}

const vms_pt_format *vms_format_npt(unsigned levels)
{
    return vms_format_x86_64(levels);
}

/* ---- Arm Stage 2 ---- */

bool vmsi_s2_is_leaf(uint64_t pte, unsigned level)
{
    if (level == 1)
        return true;
    return (level == 2 || level == 3) && (pte & 3u) == 1u;
}

/* Valid at `level`: VALID, and type 01 (block) only at levels 2 and 3 (Arm 2 and 1). */
bool vmsi_s2_valid(uint64_t pte, unsigned level)
{
    if (!(pte & VMS_S2_VALID))
        return false;
    return (pte & VMS_S2_TYPE) || level == 2 || level == 3;
}

static void s2_decode(const vms_pt_format *f, uint64_t pte, unsigned level, vms_pte_info *out)
{
    memset(out, 0, sizeof *out);
    out->present = vmsi_s2_valid(pte, level);
    if (!out->present)
        return;
    out->rsvd_clear = true;
    out->leaf = vmsi_s2_is_leaf(pte, level);
    out->pa = pte & VMS_S2_ADDR_MASK;
    if (!out->leaf)
        return;
    out->pa &= ~((UINT64_C(1) << vms_fmt_level_shift(f, level)) - 1);
    out->prot = (pte & VMS_S2_S2AP_R ? VMS_PGPROT_R : 0) |
                (pte & VMS_S2_S2AP_W ? VMS_PGPROT_W : 0) | (pte & VMS_S2_XN ? 0 : VMS_PGPROT_X) |
                (pte & VMS_S2_AF ? VMS_PGPROT_A : 0) | (pte & VMS_S2_S2AP_W ? VMS_PGPROT_D : 0) |
                ((pte & VMS_S2_MEMATTR_MASK) == VMS_S2_MEMATTR_DEVICE ? VMS_PGPROT_NOCACHE : 0);
}

/* A block or page with S2AP from R/W, XN unless X, AF when A, Normal write-back memory
 * (Device-nGnRE for NOCACHE). Writable-but-clean (W without D): S2AP[1] = 0 with DBM, the
 * stage 2 dirty-state encoding. No R, W or X: an invalid entry (0). */
static uint64_t s2_mk_leaf(const vms_pt_format *f, uint64_t pa, unsigned level, unsigned prot)
{
    (void)f;
    if (!(prot & (VMS_PGPROT_R | VMS_PGPROT_W | VMS_PGPROT_X)))
        return 0;
    bool w = prot & VMS_PGPROT_W, clean = w && !(prot & VMS_PGPROT_D);
    return (pa & VMS_S2_ADDR_MASK) | (level == 1 ? UINT64_C(3) : UINT64_C(1)) |
           (prot & VMS_PGPROT_NOCACHE ? VMS_S2_MEMATTR_DEVICE : VMS_S2_MEMATTR_NORMAL) |
           (prot & VMS_PGPROT_R ? VMS_S2_S2AP_R : 0) | (w && !clean ? VMS_S2_S2AP_W : 0) |
           (clean ? VMS_S2_DBM : 0) | VMS_S2_SH_INNER | (prot & VMS_PGPROT_A ? VMS_S2_AF : 0) |
           (prot & VMS_PGPROT_X ? 0 : VMS_S2_XN);
}

static uint64_t s2_mk_raw(const vms_pt_format *f, uint64_t pa, unsigned level, uint64_t flags)
{
    (void)f;
    return (pa & VMS_S2_ADDR_MASK) | flags | (level == 1 ? UINT64_C(3) : UINT64_C(1));
}

static uint64_t s2_mk_table(const vms_pt_format *f, uint64_t pa, unsigned level)
{
    (void)f;
    (void)level;
    return (pa & VMS_S2_ADDR_MASK) | UINT64_C(3);
}

static void s2_bits_str(uint64_t pte, unsigned level, char *buf, size_t len)
{
    if (!vmsi_s2_is_leaf(pte, level)) {
        snprintf(buf, len, "%s", pte & VMS_S2_VALID ? "table" : "invalid");
        return;
    }
    snprintf(buf, len, "%s S2AP=%c%c%s%s%s MemAttr=0x%x", level == 1 ? "page" : "block",
             pte & VMS_S2_S2AP_R ? 'R' : '-', pte & VMS_S2_S2AP_W ? 'W' : '-',
             pte & VMS_S2_AF ? " AF" : "", pte & VMS_S2_DBM ? " DBM" : "",
             pte & VMS_S2_XN ? " XN" : "",
             (unsigned)((pte & VMS_S2_MEMATTR_MASK) >> VMS_S2_MEMATTR_SHIFT));
}

#define S2_FORMAT(NAME, TITLE, LEVELS, BITS)                                                       \
    {                                                                                              \
        .name = NAME, .arch = "aarch64", .title = TITLE, .levels = LEVELS, .page_shift = 12,       \
        .index_bits = 9, .entry_shift = 3, .va_bits = BITS, .va_unsigned = true,                   \
        .leaf_levels = (1u << 1) | (1u << 2) | (1u << 3),                                          \
        .level_name = {"", "S2 L3", "S2 L2", "S2 L1", "S2 L0", "", ""}, .root_reg = "VTTBR_EL2",   \
        .addr_mask = VMS_S2_ADDR_MASK, .addr_shift = 12, .present = {VMS_S2_VALID, VMS_S2_VALID},  \
        .write = {VMS_S2_S2AP_W, VMS_S2_S2AP_W}, .young = {VMS_S2_AF, VMS_S2_AF},                  \
        .dirty = {VMS_S2_S2AP_W, VMS_S2_S2AP_W}, .exec_never = {VMS_S2_XN, VMS_S2_XN},             \
        .decode = s2_decode, .mk_leaf = s2_mk_leaf, .mk_raw = s2_mk_raw, .mk_table = s2_mk_table,  \
        .is_leaf = vmsi_s2_is_leaf, .bits_str = s2_bits_str,                                       \
    }

static const vms_pt_format fmt_s2_3 =
    S2_FORMAT("aarch64-s2-l1", "Arm stage 2, 4 KiB granule, 39-bit IPA", 3, 39);
static const vms_pt_format fmt_s2_4 =
    S2_FORMAT("aarch64-s2", "Arm stage 2, 4 KiB granule, 48-bit IPA", 4, 48);

const vms_pt_format *vms_format_stage2(unsigned levels)
{
    return levels == 4 ? &fmt_s2_4 : levels == 3 ? &fmt_s2_3 : NULL;
}
