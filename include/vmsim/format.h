/*
 * vmsim/format.h — page-table format descriptors: one per translation design.
 *
 * A format says everything that the code around a page table needs to know about it,
 * so that the MMU, the kernel's page-table editor (pt.h) and the kernel itself never
 * test raw bits of one architecture:
 *
 *  - its shape: levels (numbered as the SDM does, the leaf level 1 at the bottom, the
 *    root at `levels`), index bits per level, entry size, base page size, the width of
 *    a virtual address and the levels at which a leaf may sit;
 *  - how an entry decodes (present, leaf or table, output address, rights, user,
 *    global, accessed, dirty) and how the kernel builds and edits one, with Linux's
 *    names (mk_pte, pte_present, pte_write, pte_mkwrite, pte_wrprotect, pte_mkold,
 *    pte_mkdirty, pte_mkclean, pte_pfn, …; pmd_* are the same helpers at level 2);
 *  - the kernel's software encodings in a not-present entry: PROT_NONE pages and swap
 *    entries (type and offset), as each Linux port defines them;
 *  - the hardware side: the architecture's walker and access-rights check (walk.h),
 *    each compiled for its format (src/arch/NAME/walk.c), so the hot walk pays no
 *    function pointer per level.
 *
 * The simple attributes are data: `vms_pte_bit` names the bits and the value they take
 * when the attribute holds, so an inverted bit (AArch64's AP[2] = read-only) is as
 * cheap to test as x86's RW. Formats are static constant tables; find them by name
 * with vms_format_find. Adding an architecture is a folder under src/arch/ and one line
 * in the registry (src/arch/registry.c).
 */
#ifndef VMSIM_FORMAT_H
#define VMSIM_FORMAT_H

#include "vmsim/common.h"

typedef struct vms_pt_format vms_pt_format;
typedef struct vms_regs vms_regs;
typedef struct vms_bus vms_bus;
typedef struct vms_pwc vms_pwc;
typedef struct vms_xlate vms_xlate;
typedef struct vms_fault vms_fault;
typedef struct vms_walk_stats vms_walk_stats;
typedef struct vms_walk_trace vms_walk_trace;
typedef struct vms_core vms_core;

/*
 * What a kernel does to a core's MMU, in no architecture's words: each format maps
 * them to its own instructions (x86-64: MOV CR3, INVLPG, INVPCID, INVLPGB; RISC-V: csrw
 * satp and sfence.vma; AArch64: MSR TTBR0_EL1, TLBI and TLBI … IS). core.h's
 * vms_core_mmu_* call them.
 */
typedef struct vms_mmu_ops {
    /* Paging on with the kernel's root; address-space IDs used when asids. */
    vms_status (*boot)(vms_core *c, uint64_t root, bool asids);
    /* Switch to the tables at root tagged asid; flush: drop asid's old entries. */
    void (*load_root)(vms_core *c, uint64_t root, uint32_t asid, bool flush);
    /* va's entries of the current address space and va's global entries. */
    void (*flush_page)(vms_core *c, uint64_t va);
    /* va's non-global entries tagged asid (any address space, loaded or not). */
    void (*flush_page_asid)(vms_core *c, uint32_t asid, uint64_t va);
    /* Every non-global entry tagged asid. */
    void (*flush_asid)(vms_core *c, uint32_t asid);
    /* Every entry, global ones included. */
    void (*flush_all)(vms_core *c);

    /* Broadcast invalidation, where the architecture has one (all three NULL where it
     * has none: RISC-V, whose kernel fences other harts through IPIs or SBI calls).
     * has_broadcast: this machine implements it (x86-64: INVLPGB, invlpgb_max > 0).
     * flush_broadcast: every core of the machine, the issuer included, drops from its
     * own TLBs and walk caches the non-global entries tagged asid of the npages pages
     * from va (npages 0: every non-global entry of asid); no core is interrupted or
     * charged but the issuer. Posted: complete only after sync. Returns the
     * instructions issued (x86-64: INVLPGB; AArch64: TLBI VAE1IS / ASIDE1IS).
     * sync: wait until this core's broadcasts completed on every core (TLBSYNC,
     * DSB ISH); returns the cycles waited. */
    bool (*has_broadcast)(const vms_core *c);
    unsigned (*flush_broadcast)(vms_core *c, uint32_t asid, uint64_t va, uint64_t npages);
    uint64_t (*sync)(vms_core *c);
} vms_mmu_ops;

/* An attribute held in an entry: true when (pte & mask) == val (mask 0: never held). */
typedef struct vms_pte_bit {
    uint64_t mask, val;
} vms_pte_bit;

/* What the kernel asks of a leaf, in no architecture's bits (mk_pte's pgprot). */
enum {
    VMS_PGPROT_R = 1u << 0,      /* readable */
    VMS_PGPROT_W = 1u << 1,      /* writable */
    VMS_PGPROT_X = 1u << 2,      /* executable */
    VMS_PGPROT_U = 1u << 3,      /* user-accessible */
    VMS_PGPROT_G = 1u << 4,      /* global (survives address-space switches) */
    VMS_PGPROT_A = 1u << 5,      /* accessed (young) */
    VMS_PGPROT_D = 1u << 6,      /* dirty */
    VMS_PGPROT_NOCACHE = 1u << 7 /* device memory: uncached (x86 PCD|PWT) */
};

/* One entry, decoded (vms_fmt_decode). Fields other than present are 0 when not present. */
typedef struct vms_pte_info {
    bool present;
    bool leaf;       /* maps a page (or block) rather than pointing to a table */
    uint64_t pa;     /* the next table, or the page's physical base (aligned) */
    unsigned prot;   /* VMS_PROT_* of a leaf (R/W/X/U/G/A/D/NOCACHE) */
    unsigned pkey;   /* protection key, where the format has one */
    bool rsvd_clear; /* false when bits the format reserves are set (walker faults) */
} vms_pte_info;

struct vms_pt_format {
    const char *name;     /* registry name: "x86_64", "x86_64-la57", "sv39", … */
    const char *arch;     /* architecture folder: "x86_64", "riscv64", "aarch64", … */
    const char *title;    /* for people: "x86-64 4-level paging" */
    unsigned levels;      /* root level; the leaf-most level is 1 */
    unsigned page_shift;  /* log2 of the base page (12) */
    unsigned index_bits;  /* bits of the virtual address each level indexes (9) */
    unsigned entry_shift; /* log2 of an entry's size in bytes (3) */
    unsigned va_bits;     /* implemented virtual-address width (48, 57, 39, …) */
    bool va_unsigned;     /* addresses are 0 … 2^va_bits - 1, not sign-extended (textbooks) */
    unsigned leaf_levels; /* bit L set: a leaf may sit at level L */
    const char *level_name[7]; /* [L]: "PT", "PD", "PDPT", "PML4", "PML5" / "VPN[0]"… */
    const char *root_reg;      /* the register that holds the root: "CR3", "satp", … */

    /* The output address: pa = ((pte & addr_mask) >> addr_shift) << page_shift. */
    uint64_t addr_mask;
    unsigned addr_shift;
    uint64_t large_attr_bits; /* bits of addr_mask a large leaf uses otherwise (PAT) */

    /* Data-driven attributes (kernel's pte_* helpers and the generic decoders). */
    vms_pte_bit present, write, user, young, dirty, global, exec_never;

    /* Kernel software bits in a not-present entry (Linux's per-port encodings). */
    uint64_t sw_protnone; /* a PROT_NONE page: not present, frame kept */
    uint64_t sw_swap;     /* a swap entry */
    unsigned swp_type_shift, swp_type_bits, swp_off_shift, swp_off_bits;

    /* Decode the level-`level` entry pte (the walker's view, without control bits). */
    void (*decode)(const vms_pt_format *f, uint64_t pte, unsigned level, vms_pte_info *out);
    /* Build a leaf at `level` mapping pa (aligned to the level's page) with prot; prot 0
     * (no access at all) builds the kernel's PROT_NONE entry: not present, sw_protnone,
     * frame and page size kept. */
    uint64_t (*mk_leaf)(const vms_pt_format *f, uint64_t pa, unsigned level, unsigned prot);
    /* A leaf at `level` mapping pa with the format's own bits `flags` (pt.h's
     * vms_pt_map): the format's present and leaf markers are added. */
    uint64_t (*mk_raw)(const vms_pt_format *f, uint64_t pa, unsigned level, uint64_t flags);
    /* Build a level-`level` entry that points to the table at pa. */
    uint64_t (*mk_table)(const vms_pt_format *f, uint64_t pa, unsigned level);
    /* Is the level-`level` entry pte, present or PROT_NONE (mk_leaf with prot 0), a leaf? */
    bool (*is_leaf)(uint64_t pte, unsigned level);
    /* Names of the set bits of pte for narration ("P RW US A"), into buf (len bytes). */
    void (*bits_str)(uint64_t pte, unsigned level, char *buf, size_t len);

    /* The hardware: this format's walker and rights check (walk.h's vms_walk and
     * vms_check_access contracts), each compiled for the format. */
    bool (*walk)(vms_bus *bus, vms_pwc *pwc, const vms_regs *regs, uint64_t va,
                 vms_access_kind kind, vms_xlate *out, vms_fault *fault, vms_walk_stats *stats,
                 vms_walk_trace *trace);
    uint32_t (*check_access)(const vms_regs *regs, const vms_xlate *x, vms_access_kind kind);
    /* The kernel's operations on a core's MMU, and the width of its address-space IDs
     * (x86-64 PCIDs: 12 bits). */
    const vms_mmu_ops *mmu_ops;
    unsigned asid_bits;

    /* Optional (NULL: the data-driven write and dirty bits above). A format whose write
     * and dirty state is not one bit pattern each — AArch64, where Linux keeps
     * PTE_WRITE (DBM), PTE_RDONLY (AP[2]) and a software PTE_DIRTY — answers pte_dirty
     * and makes the four edits (VMS_FMT_MKWRITE …) here, as its Linux port does. */
    bool (*pte_dirty)(uint64_t pte);
    uint64_t (*pte_edit)(uint64_t pte, unsigned edit);
};

/* The edits of vms_pt_format.pte_edit. */
enum { VMS_FMT_MKWRITE, VMS_FMT_WRPROTECT, VMS_FMT_MKDIRTY, VMS_FMT_MKCLEAN };

/* ---- the registry ---- */

/* The format named `name` ("x86_64", "x86_64-la57", …), or NULL. */
const vms_pt_format *vms_format_find(const char *name);

/* The format of architecture `arch` ("x86_64", "riscv64", …) with `levels` levels, or
 * with levels 0 its first (default) one; NULL when there is none. */
const vms_pt_format *vms_format_for(const char *arch, unsigned levels);

/* The i-th registered format, i < vms_format_count(). */
unsigned vms_format_count(void);
const vms_pt_format *vms_format_at(unsigned i);

/* The x86-64 format for 4 or 5 levels (CR4.LA57); NULL for anything else. */
const vms_pt_format *vms_format_x86_64(unsigned levels);

/* ---- shape ---- */

/* log2 of the bytes a level-`level` entry maps (12, 21, 30, … on x86-64). */
static inline unsigned vms_fmt_level_shift(const vms_pt_format *f, unsigned level)
{
    return f->page_shift + f->index_bits * (level - 1u);
}

/* Entries per table. */
static inline unsigned vms_fmt_entries(const vms_pt_format *f)
{
    return 1u << f->index_bits;
}

/* Bytes per table (a table is one base page on every radix format here). */
static inline uint64_t vms_fmt_table_bytes(const vms_pt_format *f)
{
    return (uint64_t)vms_fmt_entries(f) << f->entry_shift;
}

/* va's index into the level-`level` table. */
static inline unsigned vms_fmt_index(const vms_pt_format *f, uint64_t va, unsigned level)
{
    return (unsigned)((va >> vms_fmt_level_shift(f, level)) & (vms_fmt_entries(f) - 1u));
}

/* Physical address of va's entry in the level-`level` table at table_pa. */
static inline uint64_t vms_fmt_entry_pa(const vms_pt_format *f, uint64_t table_pa, uint64_t va,
                                        unsigned level)
{
    return table_pa + ((uint64_t)vms_fmt_index(f, va, level) << f->entry_shift);
}

/* True when va is canonical: bits 63:va_bits-1 all equal (sign-extended), or for an
 * unsigned address space, below 2^va_bits. */
static inline bool vms_fmt_canonical(const vms_pt_format *f, uint64_t va)
{
    unsigned n = f->va_bits;
    if (f->va_unsigned)
        return n >= 64 || (va >> n) == 0;
    int64_t s = (int64_t)(va << (64 - n)) >> (64 - n);
    return (uint64_t)s == va;
}

/* Sign-extend va from va_bits (the canonical form of a constructed address). */
static inline uint64_t vms_fmt_sign_extend(const vms_pt_format *f, uint64_t va)
{
    unsigned n = f->va_bits;
    if (f->va_unsigned)
        return va;
    return (uint64_t)((int64_t)(va << (64 - n)) >> (64 - n));
}

/* The level whose leaves have page size s (1 for 4K, 2 for 2M, 3 for 1G). */
static inline unsigned vms_fmt_size_level(vms_pgsize s)
{
    return 1u + (unsigned)s;
}

/* May a leaf of page size s exist in this format? */
static inline bool vms_fmt_has_size(const vms_pt_format *f, vms_pgsize s)
{
    return (f->leaf_levels >> vms_fmt_size_level(s)) & 1u;
}

/* ---- decode and the kernel's helpers (Linux's names) ---- */

static inline bool vms_fmt_bit(vms_pte_bit b, uint64_t pte)
{
    return b.mask && (pte & b.mask) == b.val;
}

static inline uint64_t vms_fmt_set(vms_pte_bit b, uint64_t pte, bool on)
{
    if (!b.mask)
        return pte;
    return (pte & ~b.mask) | (on ? b.val : (b.val ^ b.mask));
}

static inline void vms_fmt_decode(const vms_pt_format *f, uint64_t pte, unsigned level,
                                  vms_pte_info *out)
{
    f->decode(f, pte, level, out);
}

/* The output address field of an entry (a table's, or a page's, unaligned for huge). */
static inline uint64_t vms_fmt_pte_addr(const vms_pt_format *f, uint64_t pte)
{
    return ((pte & f->addr_mask) >> f->addr_shift) << f->page_shift;
}

/* The base-page frame number an entry holds (Linux pte_pfn). */
static inline uint64_t vms_fmt_pte_pfn(const vms_pt_format *f, uint64_t pte)
{
    return (pte & f->addr_mask) >> f->addr_shift;
}

/* Replace the frame an entry holds, keeping every other bit. */
static inline uint64_t vms_fmt_pte_set_pfn(const vms_pt_format *f, uint64_t pte, uint64_t pfn)
{
    return (pte & ~f->addr_mask) | ((pfn << f->addr_shift) & f->addr_mask);
}

static inline bool vms_fmt_pte_present(const vms_pt_format *f, uint64_t pte)
{
    return vms_fmt_bit(f->present, pte);
}

static inline bool vms_fmt_pte_write(const vms_pt_format *f, uint64_t pte)
{
    return vms_fmt_bit(f->write, pte);
}

static inline bool vms_fmt_pte_dirty(const vms_pt_format *f, uint64_t pte)
{
    return f->pte_dirty ? f->pte_dirty(pte) : vms_fmt_bit(f->dirty, pte);
}

static inline bool vms_fmt_pte_young(const vms_pt_format *f, uint64_t pte)
{
    return vms_fmt_bit(f->young, pte);
}

static inline uint64_t vms_fmt_pte_mkwrite(const vms_pt_format *f, uint64_t pte)
{
    return f->pte_edit ? f->pte_edit(pte, VMS_FMT_MKWRITE) : vms_fmt_set(f->write, pte, true);
}

static inline uint64_t vms_fmt_pte_wrprotect(const vms_pt_format *f, uint64_t pte)
{
    return f->pte_edit ? f->pte_edit(pte, VMS_FMT_WRPROTECT) : vms_fmt_set(f->write, pte, false);
}

static inline uint64_t vms_fmt_pte_mkdirty(const vms_pt_format *f, uint64_t pte)
{
    return f->pte_edit ? f->pte_edit(pte, VMS_FMT_MKDIRTY) : vms_fmt_set(f->dirty, pte, true);
}

static inline uint64_t vms_fmt_pte_mkclean(const vms_pt_format *f, uint64_t pte)
{
    return f->pte_edit ? f->pte_edit(pte, VMS_FMT_MKCLEAN) : vms_fmt_set(f->dirty, pte, false);
}

static inline uint64_t vms_fmt_pte_mkyoung(const vms_pt_format *f, uint64_t pte)
{
    return vms_fmt_set(f->young, pte, true);
}

static inline uint64_t vms_fmt_pte_mkold(const vms_pt_format *f, uint64_t pte)
{
    return vms_fmt_set(f->young, pte, false);
}

/* A leaf entry at `level` for frame pfn with prot (Linux mk_pte / pfn_pmd). */
static inline uint64_t vms_fmt_mk_pte(const vms_pt_format *f, uint64_t pfn, unsigned level,
                                      unsigned prot)
{
    return f->mk_leaf(f, pfn << f->page_shift, level, prot);
}

/* Is the level-`level` entry, present or PROT_NONE, a leaf (Linux pmd_leaf / pud_leaf)? */
static inline bool vms_fmt_pte_leaf(const vms_pt_format *f, uint64_t pte, unsigned level)
{
    return f->is_leaf(pte, level);
}

/* A PROT_NONE entry: not present to the hardware, frame still owned (pte_protnone). */
static inline bool vms_fmt_pte_protnone(const vms_pt_format *f, uint64_t pte)
{
    return !vms_fmt_pte_present(f, pte) && (pte & f->sw_protnone);
}

/* Present to the hardware or PROT_NONE: the entry owns a frame (Linux pte_present). */
static inline bool vms_fmt_pte_mapped(const vms_pt_format *f, uint64_t pte)
{
    return vms_fmt_pte_present(f, pte) || vms_fmt_pte_protnone(f, pte);
}

/* Turn a present leaf into its PROT_NONE form and back (frame and other bits kept). */
static inline uint64_t vms_fmt_pte_mkprotnone(const vms_pt_format *f, uint64_t pte)
{
    return vms_fmt_set(f->present, pte, false) | f->sw_protnone;
}

static inline uint64_t vms_fmt_pte_clear_protnone(const vms_pt_format *f, uint64_t pte)
{
    return vms_fmt_set(f->present, pte & ~f->sw_protnone, true);
}

/* ---- swap entries (Linux swp_entry_t in a not-present PTE) ---- */

/* sw_swap 0: the format has no swap marker (arm64, riscv): any other non-zero entry. */
static inline bool vms_fmt_is_swap(const vms_pt_format *f, uint64_t pte)
{
    return !vms_fmt_pte_present(f, pte) && !(pte & f->sw_protnone) &&
           (f->sw_swap ? (pte & f->sw_swap) != 0 : pte != 0);
}

static inline uint64_t vms_fmt_mk_swap(const vms_pt_format *f, unsigned type, uint64_t offset)
{
    uint64_t tmask = (UINT64_C(1) << f->swp_type_bits) - 1;
    uint64_t omask = (UINT64_C(1) << f->swp_off_bits) - 1;
    return (((uint64_t)type & tmask) << f->swp_type_shift) |
           ((offset & omask) << f->swp_off_shift) | f->sw_swap;
}

static inline unsigned vms_fmt_swap_type(const vms_pt_format *f, uint64_t pte)
{
    return (unsigned)((pte >> f->swp_type_shift) & ((UINT64_C(1) << f->swp_type_bits) - 1));
}

static inline uint64_t vms_fmt_swap_offset(const vms_pt_format *f, uint64_t pte)
{
    return (pte >> f->swp_off_shift) & ((UINT64_C(1) << f->swp_off_bits) - 1);
}

#endif
