/*
 * teach/format.c — the textbooks' machines as page-table formats (format.h), and the
 * two walkers they use: a radix walker for small one- and two-level tables with 1-,
 * 2-, 4- or 8-byte entries, and a base-and-bounds walker for segment tables.
 *
 * Entry layouts (V: valid; the walker faults at the level whose entry has V = 0):
 *
 *   OSTEP multilevel (vm-smalltables): 15-bit VA = PD index 14:10 | PT index 9:5 |
 *   offset 4:0; 32-byte pages, 128 physical pages (4 KiB); PDE and PTE one byte each:
 *        7   6             0
 *      +---+---------------+
 *      | V |      PFN      |     a page directory at PDBR (a page number)
 *      +---+---------------+
 *
 *   OSTEP linear (vm-paging): one table of 2^(va_bits - page_shift) 4-byte entries
 *   (pages and address space as -P and -a give them; the registered shape is the
 *   script's default, 16 KiB of 4 KiB pages):
 *       31  30                                        0
 *      +---+-------------------------------------------+
 *      | V |                  PFN                      |
 *      +---+-------------------------------------------+
 *
 *   Silberschatz VMM: 16-bit logical address = page 15:8 | offset 7:0; 256 entries,
 *   the same 4-byte layout as OSTEP linear (V at 31, frame at 30:0).
 *
 *   CS:APP small memory system (Bryant & O'Hallaron, CS:APP 3e §9.6.4): 14-bit VA =
 *   VPN 13:6 | VPO 5:0; 12-bit PA = PPN 11:6 | PPO 5:0; one table of 256 one-byte
 *   PTEs:
 *        7   6   5           0
 *      +---+---+---------------+
 *      | V | 0 |      PPN      |
 *      +---+---+---------------+
 *
 *   OSTEP segmentation (vm-segmentation) and relocation (vm-mechanism): segment
 *   tables of base-and-bounds descriptors (teach.h draws the words).
 *
 * None of these machines has access rights, accessed or dirty bits: every translation
 * permits every access, and the walkers write nothing back.
 */
#include <stdio.h>
#include <string.h>

#include "arch/teach/teach.h"
#include "vmsim/core.h"

vms_status vmsi_teach_read_entry(vms_bus *bus, uint64_t pa, unsigned len, uint64_t *val)
{
    uint8_t b[8];
    vms_status st = vms_bus_read(bus, pa, b, len);
    uint64_t v = 0;
    for (unsigned i = len; i-- > 0;)
        v = v << 8 | b[i];
    *val = v;
    return st;
}

vms_status vmsi_teach_write_entry(vms_bus *bus, uint64_t pa, unsigned len, uint64_t val)
{
    uint8_t b[8];
    for (unsigned i = 0; i < len; i++)
        b[i] = (uint8_t)(val >> (8 * i));
    return vms_bus_write(bus, pa, b, len);
}

/* ---- the kernel-side hooks, shared by the radix formats ---- */

static void radix_decode(const vms_pt_format *f, uint64_t pte, unsigned level, vms_pte_info *out)
{
    memset(out, 0, sizeof *out);
    out->present = vms_fmt_pte_present(f, pte);
    if (!out->present)
        return;
    out->leaf = level == 1;
    out->pa = vms_fmt_pte_addr(f, pte);
    out->rsvd_clear = (pte & ~(f->addr_mask | f->present.mask)) == 0;
    if (out->leaf)
        out->prot = VMS_PGPROT_R | VMS_PGPROT_W | VMS_PGPROT_X | VMS_PGPROT_U;
}

static uint64_t radix_mk_raw(const vms_pt_format *f, uint64_t pa, unsigned level, uint64_t flags)
{
    (void)level;
    return f->present.val | flags | (((pa >> f->page_shift) << f->addr_shift) & f->addr_mask);
}

static uint64_t radix_mk_leaf(const vms_pt_format *f, uint64_t pa, unsigned level, unsigned prot)
{
    (void)prot; /* no rights to encode */
    return radix_mk_raw(f, pa, level, 0);
}

static uint64_t radix_mk_table(const vms_pt_format *f, uint64_t pa, unsigned level)
{
    return radix_mk_raw(f, pa, level, 0);
}

static bool radix_is_leaf(uint64_t pte, unsigned level)
{
    (void)pte;
    return level == 1;
}

static void valid_str(bool v, char *buf, size_t len)
{
    snprintf(buf, len, "%s", v ? "V" : "");
}

static void bits_v7(uint64_t pte, unsigned level, char *buf, size_t len)
{
    (void)level;
    valid_str(pte & 0x80, buf, len);
}

static void bits_v31(uint64_t pte, unsigned level, char *buf, size_t len)
{
    (void)level;
    valid_str(pte & UINT64_C(0x80000000), buf, len);
}

static void bits_seg(uint64_t pte, unsigned level, char *buf, size_t len)
{
    (void)level;
    snprintf(buf, len, "%s", pte & VMSI_SEG_GN ? "GN" : "");
}

/* No rights on these machines: every access that translates is allowed. */
static uint32_t teach_check_access(const vms_regs *regs, const vms_xlate *x, vms_access_kind kind)
{
    (void)regs;
    (void)x;
    (void)kind;
    return 0;
}

/* ---- the walkers ---- */

/* The neutral summary of an access (walk.h VMS_FAULTF_*): these machines have no
 * architectural error code of their own, so error_code is 0. */
static uint32_t access_flags(const vms_regs *regs, vms_access_kind kind)
{
    return (kind == VMS_ACC_WRITE ? VMS_FAULTF_WRITE : 0) |
           (kind == VMS_ACC_EXEC ? VMS_FAULTF_EXEC : 0) | (regs->user ? VMS_FAULTF_USER : 0);
}

static bool fail(vms_fault *f, vms_walk_stats *stats, vms_fault_kind kind, uint64_t va,
                 unsigned level, uint64_t pa, uint32_t flags)
{
    *f = (vms_fault){kind, va, 0, level, pa, flags};
    stats->faults++;
    return false;
}

static void record(vms_walk_trace *trace, unsigned level, uint64_t table, unsigned idx,
                   uint64_t ptep, uint64_t pte)
{
    if (trace && trace->nsteps < sizeof trace->step / sizeof trace->step[0])
        trace->step[trace->nsteps++] = (vms_walk_step){level, table, idx, ptep, pte};
}

/*
 * The radix walker (vms_walk's contract) for regs->fmt, a format of this file: from the
 * root at regs->cr3, read the level-L entry at table + index_L(va) * entry size for
 * L = levels … 1; an entry with V = 0 is a page fault at its level (error code 0: these
 * machines have no rights to report); a virtual address wider than va_bits is
 * VMS_FAULT_GP. No PWC, no A/D.
 */
static bool radix_walk(vms_bus *bus, vms_pwc *pwc, const vms_regs *regs, uint64_t va,
                       vms_access_kind kind, vms_xlate *out, vms_fault *fault,
                       vms_walk_stats *stats, vms_walk_trace *trace)
{
    const vms_pt_format *f = regs->fmt;
    uint32_t acc = access_flags(regs, kind);
    (void)pwc;
    stats->walks++;
    if (trace)
        trace->nsteps = trace->pwc_level = 0;
    if (f->va_bits < 64 && va >> f->va_bits)
        return fail(fault, stats, VMS_FAULT_GP, va, f->levels, 0, acc);
    uint64_t table = regs->cr3;
    for (unsigned l = f->levels; l >= 1; l--) {
        unsigned idx = vms_fmt_index(f, va, l);
        uint64_t ptep = table + ((uint64_t)idx << f->entry_shift), pte;
        if (vmsi_teach_read_entry(bus, ptep, 1u << f->entry_shift, &pte) != VMS_OK)
            return fail(fault, stats, VMS_FAULT_BUS, va, l, ptep, acc);
        stats->mem_refs++;
        stats->refs_by_level[l]++;
        record(trace, l, table, idx, ptep, pte);
        if (!vms_fmt_pte_present(f, pte))
            return fail(fault, stats, VMS_FAULT_PF, va, l, 0, acc);
        table = vms_fmt_pte_addr(f, pte);
    }
    *out = (vms_xlate){.page_pa = table, .size = VMS_PG_4K, .rw = 1, .us = 1};
    return true;
}

/*
 * The base-and-bounds walker: read the address-space size (word 0 of the segment
 * table at regs->cr3), pick segment s = va * nsegs / size (nsegs = 2^index_bits: the
 * top bit of va with two segments), read its descriptor and check the offset against
 * the limit: growing positive, offset va - start must be < limit and pa = base +
 * offset; growing negative, the distance end - va must be <= limit and pa = base -
 * (end - va) (OSTEP §16.3's negative offset). A violation is a page fault at level 1
 * (a segmentation violation); va beyond the address space is VMS_FAULT_GP. The trace
 * has one step: the descriptor read (index s, pte = its limit word).
 */
static bool segment_walk(vms_bus *bus, vms_pwc *pwc, const vms_regs *regs, uint64_t va,
                         vms_access_kind kind, vms_xlate *out, vms_fault *fault,
                         vms_walk_stats *stats, vms_walk_trace *trace)
{
    const vms_pt_format *f = regs->fmt;
    uint64_t root = regs->cr3, size, base, lim;
    uint32_t acc = access_flags(regs, kind);
    (void)pwc;
    stats->walks++;
    if (trace)
        trace->nsteps = trace->pwc_level = 0;
    if (vms_bus_read64(bus, root, &size) != VMS_OK)
        return fail(fault, stats, VMS_FAULT_BUS, va, 1, root, acc);
    stats->mem_refs++;
    if (va >= size)
        return fail(fault, stats, VMS_FAULT_GP, va, 1, 0, acc);
    unsigned nsegs = 1u << f->index_bits;
    unsigned seg = (unsigned)(va * nsegs / size);
    uint64_t d = vmsi_seg_desc_pa(root, seg);
    if (vms_bus_read64(bus, d, &base) != VMS_OK || vms_bus_read64(bus, d + 8, &lim) != VMS_OK)
        return fail(fault, stats, VMS_FAULT_BUS, va, 1, d, acc);
    stats->mem_refs += 2;
    stats->refs_by_level[1] += 2;
    record(trace, 1, root, seg, d, lim);
    uint64_t limit = lim & VMSI_SEG_LIMIT_MASK, pa;
    if (lim & VMSI_SEG_GN) {
        uint64_t end = size * (seg + 1) / nsegs, dist = end - va;
        if (dist > limit || dist > base)
            return fail(fault, stats, VMS_FAULT_PF, va, 1, 0, acc | VMS_FAULTF_PROT);
        pa = base - dist;
    } else {
        uint64_t off = va - size * seg / nsegs;
        if (off >= limit)
            return fail(fault, stats, VMS_FAULT_PF, va, 1, 0, acc | VMS_FAULTF_PROT);
        pa = base + off;
    }
    *out = (vms_xlate){.page_pa = pa, .size = VMS_PG_4K, .rw = 1, .us = 1};
    return true;
}

/* ---- the kernel's MMU operations (format.h vms_mmu_ops) ----
 *
 * The textbooks' machines have no address-space IDs: loading a root empties the TLB
 * (the core's write of the root register does, with PCIDs off), and every flush by
 * ASID is a flush of everything. Global entries do not exist either.
 */
static vms_status teach_boot(vms_core *c, uint64_t root, bool asids)
{
    (void)asids; /* none to turn on */
    vms_core_write_cr3(c, root);
    return VMS_OK;
}

static void teach_load_root(vms_core *c, uint64_t root, uint32_t asid, bool flush)
{
    (void)asid;
    (void)flush; /* always: nothing tags the entries */
    vms_core_write_cr3(c, root);
}

static void teach_flush_page(vms_core *c, uint64_t va)
{
    vms_core_invlpg(c, va);
}

static void teach_flush_page_asid(vms_core *c, uint32_t asid, uint64_t va)
{
    (void)asid;
    vms_core_invlpg(c, va);
}

static void teach_flush_all(vms_core *c)
{
    vms_core_invpcid(c, VMS_INVPCID_ALL_GLOBAL, 0, 0);
}

static void teach_flush_asid(vms_core *c, uint32_t asid)
{
    (void)asid;
    teach_flush_all(c);
}

static const vms_mmu_ops teach_mmu_ops = {.boot = teach_boot,
                                          .load_root = teach_load_root,
                                          .flush_page = teach_flush_page,
                                          .flush_page_asid = teach_flush_page_asid,
                                          .flush_asid = teach_flush_asid,
                                          .flush_all = teach_flush_all};

/* ---- the descriptors ---- */

#define RADIX(NAME, TITLE, LEVELS, PSHIFT, IBITS, ESHIFT, VABITS, AMASK, VBIT, BITS, L1, L2, ROOT) \
    {                                                                                              \
        .name = (NAME), .arch = "teach", .title = (TITLE), .levels = (LEVELS),                     \
        .page_shift = (PSHIFT), .index_bits = (IBITS), .entry_shift = (ESHIFT),                    \
        .va_bits = (VABITS), .leaf_levels = 1u << 1,                                               \
        .level_name = {"", (L1), (L2), "", "", "", ""}, .root_reg = (ROOT), .addr_mask = (AMASK),  \
        .present = {(VBIT), (VBIT)}, .decode = radix_decode, .mk_leaf = radix_mk_leaf,             \
        .mk_raw = radix_mk_raw, .mk_table = radix_mk_table, .is_leaf = radix_is_leaf,              \
        .bits_str = (BITS), .walk = radix_walk, .check_access = teach_check_access,                \
        .mmu_ops = &teach_mmu_ops, .va_unsigned = true,                                            \
    }

const vms_pt_format vmsi_fmt_ostep_multilevel =
    RADIX("ostep-multilevel", "OSTEP multi-level page table (vm-smalltables)", 2, 5, 5, 0, 15, 0x7f,
          0x80, bits_v7, "PTE", "PDE", "PDBR");
const vms_pt_format vmsi_fmt_ostep_linear =
    RADIX("ostep-linear", "OSTEP linear page table (vm-paging)", 1, 12, 2, 2, 14,
          UINT64_C(0x7fffffff), UINT64_C(0x80000000), bits_v31, "PTE", "", "PTBR");
const vms_pt_format vmsi_fmt_silberschatz =
    RADIX("silberschatz", "Silberschatz VMM page table (8-bit page, 8-bit offset)", 1, 8, 8, 2, 16,
          UINT64_C(0x7fffffff), UINT64_C(0x80000000), bits_v31, "PTE", "", "PTBR");
const vms_pt_format vmsi_fmt_csapp = RADIX("csapp", "CS:APP small memory system (§9.6.4)", 1, 6, 8,
                                           0, 14, 0x3f, 0x80, bits_v7, "PTE", "", "PTBR");

#define SEGMENTS(NAME, TITLE, IBITS)                                                               \
    {                                                                                              \
        .name = (NAME), .arch = "teach", .title = (TITLE), .levels = 1, .page_shift = 0,           \
        .index_bits = (IBITS), .entry_shift = 4, .va_bits = 62, .leaf_levels = 1u << 1,            \
        .level_name = {"", "segment", "", "", "", "", ""}, .root_reg = "segment table",            \
        .addr_mask = VMSI_SEG_LIMIT_MASK, .decode = radix_decode, .mk_leaf = radix_mk_leaf,        \
        .mk_raw = radix_mk_raw, .mk_table = radix_mk_table, .is_leaf = radix_is_leaf,              \
        .bits_str = bits_seg, .walk = segment_walk, .check_access = teach_check_access,            \
        .mmu_ops = &teach_mmu_ops, .va_unsigned = true,                                            \
    }

const vms_pt_format vmsi_fmt_ostep_segmentation =
    SEGMENTS("ostep-segmentation", "OSTEP segmentation: two segments (vm-segmentation)", 1);
const vms_pt_format vmsi_fmt_ostep_relocation =
    SEGMENTS("ostep-relocation", "OSTEP base and bounds (vm-mechanism)", 0);

void vmsi_teach_format_shape(const vms_pt_format *tmpl, unsigned page_shift, unsigned va_bits,
                             vms_pt_format *out)
{
    *out = *tmpl;
    out->page_shift = page_shift;
    out->va_bits = va_bits;
    out->index_bits = va_bits - page_shift;
}
