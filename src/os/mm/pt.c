/*
 * pt.c — building and editing page tables in simulated RAM (pt.h): kernel-side
 * software, which is why it lives in src/os.
 *
 * Everything here is what a kernel's page-table code does (Linux's mm/pgtable
 * helpers, xv6's walk()/mappages()): read and write entries through the bus (8-byte
 * entries inline through its table-frame cache, hw/bus_impl.h: the same accesses, each
 * counted by the bus). No TLB,
 * no A/D updates, no counters beyond the bus's own. Entries are built and decoded
 * only through the tree's format descriptor (format.h): a level-L entry sits at
 * table + entry_size * index(va, L), and the format says what present, leaf and table
 * entries look like (x86-64's layout: pte.h).
 *
 * Invariants kept by these helpers (and checked by tests/test_pt.c):
 *  - every present non-leaf entry points to a table page obtained from ops.alloc_table;
 *  - leaves sit only at levels the format allows (x86-64: PT, PD, PDPT);
 *  - a table freed by unmap(free_tables) has all 512 entries zero and its parent entry
 *    is cleared before the frame is handed back.
 */
#include "vmsim/pt.h"

#include <assert.h>

#include "hw/tap.h"
#include "hw/bus_impl.h"
#include "util/util.h"

/* Physical address of va's entry in the level-`level` table at table_pa. */
static inline uint64_t entry_pa(const vms_pt *pt, uint64_t table_pa, uint64_t va, unsigned level)
{
    return vms_fmt_entry_pa(pt->fmt, table_pa, va, level);
}

static inline bool present(const vms_pt *pt, uint64_t pte)
{
    return vms_fmt_pte_present(pt->fmt, pte);
}

static inline bool leaf(const vms_pt *pt, uint64_t pte, unsigned level)
{
    return vms_fmt_pte_leaf(pt->fmt, pte, level);
}

/* The table a present non-leaf entry points to. */
static inline uint64_t table_of(const vms_pt *pt, uint64_t pte)
{
    return vms_fmt_pte_addr(pt->fmt, pte);
}

static inline unsigned nentries(const vms_pt *pt)
{
    return vms_fmt_entries(pt->fmt);
}

/* Physical address of entry i of the table at table_pa. */
static inline uint64_t slot_pa(const vms_pt *pt, uint64_t table_pa, unsigned i)
{
    return table_pa + ((uint64_t)i << pt->fmt->entry_shift);
}

/* An entry of another size than 8 bytes, read byte by byte (vms_pt_read). */
static vms_status read_narrow(const vms_pt *pt, uint64_t ptep, uint64_t *pte)
{
    uint8_t b[8] = {0};
    size_t n = (size_t)1 << pt->fmt->entry_shift;
    vms_status st = vms_bus_read(pt->bus, ptep, b, n);
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;)
        v = v << 8 | b[i];
    *pte = v;
    return st;
}

/* Entries are 1 << entry_shift bytes, little-endian (8 on every real format; the
 * textbooks' machines have 1-, 2- and 4-byte entries). Inline here: the table walks
 * below read an entry per level (the same bus access either way). */
static inline vms_status pt_read(const vms_pt *pt, uint64_t ptep, uint64_t *pte)
{
    if (!pt->fmt || pt->fmt->entry_shift == 3)
        return vmsi_bus_read64(pt->bus, ptep, pte);
    return read_narrow(pt, ptep, pte);
}

vms_status vms_pt_read(const vms_pt *pt, uint64_t ptep, uint64_t *pte)
{
    return pt_read(pt, ptep, pte);
}

uint64_t vms_pt_peek(const vms_pt *pt, uint64_t ptep)
{
    size_t n = pt->fmt ? (size_t)1 << pt->fmt->entry_shift : 8;
    uint8_t b[8] = {0};
    uint64_t v = 0;
    if (n <= sizeof b && vms_bus_is_ram(pt->bus, ptep, n) &&
        vms_ram_read(vms_bus_ram(pt->bus), ptep, b, n) == VMS_OK)
        for (size_t i = 0; i < n; i++)
            v |= (uint64_t)b[i] << (8 * i);
    return v;
}

/* Tell the tap of a write of pte at ptep (old: the entry before, peeked, so that nothing
 * counted changes). */
static void report_write(const vms_pt *pt, const vmsi_tap *tap, uint64_t ptep, uint64_t pte)
{
    vms_event ev = {.type = VMS_EV_PTE_WRITE, .pte_write = {ptep, vms_pt_peek(pt, ptep), pte}};
    vmsi_tap_emit_kernel(tap, &ev);
}

vms_status vms_pt_write(const vms_pt *pt, uint64_t ptep, uint64_t pte)
{
    const vmsi_tap *tap = pt->bus->tap; /* vmsi_bus_tap, inline (bus_impl.h) */
    if (vmsi_tap_on(tap))
        report_write(pt, tap, ptep, pte);
    if (!pt->fmt || pt->fmt->entry_shift == 3)
        return vmsi_bus_write64(pt->bus, ptep, pte);
    uint8_t b[8];
    size_t n = (size_t)1 << pt->fmt->entry_shift;
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(pte >> (8 * i));
    return vms_bus_write(pt->bus, ptep, b, n);
}

vms_status vms_pt_init(vms_pt *pt, vms_bus *bus, unsigned levels, const vms_pt_ops *ops,
                       vms_err *err)
{
    if (levels != 4 && levels != 5)
        return vmsi_err(err, VMS_ERR_INVAL, "paging levels %u: expected 4 or 5", levels);
    return vms_pt_init_format(pt, bus, vms_format_x86_64(levels), ops, err);
}

vms_status vms_pt_init_format(vms_pt *pt, vms_bus *bus, const vms_pt_format *fmt,
                              const vms_pt_ops *ops, vms_err *err)
{
    if (!fmt)
        return vmsi_err(err, VMS_ERR_INVAL, "page tables need a format");
    if (!bus || !ops || !ops->alloc_table || !ops->free_table)
        return vmsi_err(err, VMS_ERR_INVAL, "page tables need a bus and table ops");
    uint64_t root;
    vms_status st = ops->alloc_table(ops->ud, &root);
    if (st != VMS_OK)
        return vmsi_err(err, st, "could not allocate the root table (%s)", vms_status_str(st));
    memset(pt, 0, sizeof *pt);
    pt->bus = bus;
    pt->fmt = fmt;
    pt->levels = fmt->levels;
    pt->root = root;
    pt->ops = *ops;
    return VMS_OK;
}

/*
 * Allocate a zeroed table and install it in the (not-present) entry at ptep. Returns
 * the table's address in *table_pa, or the allocator's / bus's failure.
 */
static vms_status add_table(vms_pt *pt, uint64_t ptep, unsigned level, uint64_t *table_pa,
                            vms_err *err)
{
    uint64_t pa;
    vms_status st = pt->ops.alloc_table(pt->ops.ud, &pa);
    if (st != VMS_OK)
        return vmsi_err(err, st, "could not allocate a page table (%s)", vms_status_str(st));
    assert((pa & (vms_fmt_table_bytes(pt->fmt) - 1)) == 0);
    st = vms_pt_write(pt, ptep, pt->fmt->mk_table(pt->fmt, pa, level));
    if (st != VMS_OK) {
        pt->ops.free_table(pt->ops.ud, pa);
        return vmsi_err(err, st, "could not write entry at 0x%llx", (unsigned long long)ptep);
    }
    *table_pa = pa;
    return VMS_OK;
}

vms_status vms_pt_entry_addr(vms_pt *pt, uint64_t va, unsigned level, bool create, uint64_t *ptep,
                             vms_err *err)
{
    if (level < 1 || level > pt->levels)
        return vmsi_err(err, VMS_ERR_INVAL, "level %u: expected 1..%u", level, pt->levels);
    if (!vms_fmt_canonical(pt->fmt, va))
        return vmsi_err(err, VMS_ERR_INVAL, "va 0x%llx is not canonical", (unsigned long long)va);
    uint64_t table = pt->root;
    for (unsigned l = pt->levels; l > level; l--) {
        uint64_t ep = entry_pa(pt, table, va, l), pte;
        vms_status st = pt_read(pt, ep, &pte);
        if (st != VMS_OK)
            return vmsi_err(err, st, "could not read entry at 0x%llx", (unsigned long long)ep);
        if (!present(pt, pte)) {
            if (!create)
                return vmsi_err(err, VMS_ERR_NOTFOUND, "no level-%u table for va 0x%llx", l - 1,
                                (unsigned long long)va);
            st = add_table(pt, ep, l, &table, err);
            if (st != VMS_OK)
                return st;
            continue;
        }
        if (leaf(pt, pte, l))
            return vmsi_err(err, VMS_ERR_EXISTS, "a %s page maps va 0x%llx above level %u",
                            vms_pgsize_name((vms_pgsize)(l - 1)), (unsigned long long)va, level);
        table = table_of(pt, pte);
    }
    *ptep = entry_pa(pt, table, va, level);
    return VMS_OK;
}

/* Install leaf pte for the size-`size` page at va (checked by the callers). */
static vms_status install(vms_pt *pt, uint64_t va, vms_pgsize size, uint64_t pte, vms_err *err)
{
    unsigned level = vms_fmt_size_level(size);
    uint64_t ptep, old;
    vms_status st = vms_pt_entry_addr(pt, va, level, true, &ptep, err);
    if (st != VMS_OK)
        return st;
    st = pt_read(pt, ptep, &old);
    if (st != VMS_OK)
        return vmsi_err(err, st, "could not read entry at 0x%llx", (unsigned long long)ptep);
    /* A present entry here is either a leaf or a table holding smaller pages. Tables
     * created above by entry_addr are new and empty, so this check changes nothing. */
    if (present(pt, old))
        return vmsi_err(err, VMS_ERR_EXISTS, "va 0x%llx is already mapped (entry 0x%llx)",
                        (unsigned long long)va, (unsigned long long)old);
    st = vms_pt_write(pt, ptep, pte);
    if (st != VMS_OK)
        return vmsi_err(err, st, "could not write entry at 0x%llx", (unsigned long long)ptep);
    return VMS_OK;
}

/* Is a size-`size` page at va -> pa one this tree can hold? */
static bool mappable(const vms_pt *pt, uint64_t va, uint64_t pa, vms_pgsize size)
{
    const vms_pt_format *f = pt->fmt;
    if ((unsigned)size >= VMS_PG_NSIZES)
        return false;
    /* The page of a level-L leaf spans the format's level shift (4 KiB, 2 MiB, 1 GiB on
     * x86-64; 32 bytes for a textbook machine's "4K", its base page). */
    uint64_t mask = (UINT64_C(1) << vms_fmt_level_shift(f, vms_fmt_size_level(size))) - 1;
    uint64_t field = ((pa >> f->page_shift) << f->addr_shift);
    return vms_fmt_has_size(f, size) && !(va & mask) && !(pa & mask) &&
           (field >> f->addr_shift) << f->page_shift == pa && (field & ~f->addr_mask) == 0;
}

vms_status vms_pt_map(vms_pt *pt, uint64_t va, uint64_t pa, vms_pgsize size, uint64_t flags,
                      vms_err *err)
{
    const vms_pt_format *f = pt->fmt;
    /* Flags may not carry address bits, except attributes a large leaf keeps in its
     * address field (x86's PAT at bit 12). */
    uint64_t addr_flags = flags & f->addr_mask & ~(size ? f->large_attr_bits : 0);
    if (!mappable(pt, va, pa, size) || addr_flags)
        return vmsi_err(err, VMS_ERR_INVAL,
                        "map %s va 0x%llx -> pa 0x%llx flags 0x%llx: unaligned or bad bits",
                        vms_pgsize_name(size), (unsigned long long)va, (unsigned long long)pa,
                        (unsigned long long)flags);
    return install(pt, va, size, f->mk_raw(f, pa, vms_fmt_size_level(size), flags), err);
}

vms_status vms_pt_map_prot(vms_pt *pt, uint64_t va, uint64_t pa, vms_pgsize size, unsigned prot,
                           vms_err *err)
{
    if (!mappable(pt, va, pa, size))
        return vmsi_err(err, VMS_ERR_INVAL,
                        "map %s va 0x%llx -> pa 0x%llx: unaligned or bad address",
                        vms_pgsize_name(size), (unsigned long long)va, (unsigned long long)pa);
    return install(pt, va, size, pt->fmt->mk_leaf(pt->fmt, pa, vms_fmt_size_level(size), prot),
                   err);
}

/* Page size mapped by a level-L entry, clamped to 1G for PML4/PML5 (no such pages). */
static inline vms_pgsize level_size(unsigned level)
{
    return level >= VMS_LEVEL_PDPT ? VMS_PG_1G : (vms_pgsize)(level - 1);
}

/*
 * Descend toward va's leaf, recording each entry's address in ptep_at[level] and
 * value in pte_at[level]. Returns the level at which the descent stopped (a leaf or a
 * not-present entry), or 0 if an entry could not be read or va is not canonical.
 */
static unsigned descend(const vms_pt *pt, uint64_t va, uint64_t ptep_at[6], uint64_t pte_at[6])
{
    if (!vms_fmt_canonical(pt->fmt, va))
        return 0;
    uint64_t table = pt->root;
    for (unsigned l = pt->levels; l >= 1; l--) {
        ptep_at[l] = entry_pa(pt, table, va, l);
        if (pt_read(pt, ptep_at[l], &pte_at[l]) != VMS_OK)
            return 0;
        if (!present(pt, pte_at[l]) || leaf(pt, pte_at[l], l))
            return l;
        table = table_of(pt, pte_at[l]);
    }
    return 0; /* not reached: level 1 entries are leaves */
}

bool vms_pt_lookup(const vms_pt *pt, uint64_t va, uint64_t *pte, uint64_t *ptep, vms_pgsize *size)
{
    uint64_t ptep_at[6] = {0}, pte_at[6] = {0};
    unsigned l = descend(pt, va, ptep_at, pte_at);
    bool found = l && present(pt, pte_at[l]);
    if (pte)
        *pte = l ? pte_at[l] : 0;
    if (ptep) /* 0 when the walk stopped above the PT level at a missing table */
        *ptep = (l == 1 || found) ? ptep_at[l] : 0;
    if (size)
        *size = l ? level_size(l) : VMS_PG_4K;
    return found;
}

/* True when every byte of the table at table_pa is zero (read errors: false). */
static bool table_empty(const vms_pt *pt, uint64_t table_pa)
{
    uint64_t e[512];
    uint64_t bytes = vms_fmt_table_bytes(pt->fmt);
    for (uint64_t off = 0; off < bytes; off += sizeof e) {
        size_t n = bytes - off < sizeof e ? (size_t)(bytes - off) : sizeof e;
        memset(e, 0, sizeof e);
        if (vms_bus_read(pt->bus, table_pa + off, e, n) != VMS_OK)
            return false;
        for (unsigned i = 0; i < 512; i++)
            if (e[i])
                return false;
    }
    return true;
}

vms_status vms_pt_unmap(vms_pt *pt, uint64_t va, bool free_tables, uint64_t *old)
{
    uint64_t ptep_at[6] = {0}, pte_at[6] = {0};
    unsigned l = descend(pt, va, ptep_at, pte_at);
    if (!l || !present(pt, pte_at[l]))
        return VMS_ERR_NOTFOUND;
    vms_status st = vms_pt_write(pt, ptep_at[l], 0);
    if (st != VMS_OK)
        return st;
    if (old)
        *old = pte_at[l];
    /* Free tables bottom-up while they are empty; the root always stays. */
    for (unsigned t = l; free_tables && t < pt->levels; t++) {
        uint64_t table = ptep_at[t] & ~(vms_fmt_table_bytes(pt->fmt) - 1);
        if (!table_empty(pt, table))
            break;
        st = vms_pt_write(pt, ptep_at[t + 1], 0);
        if (st != VMS_OK)
            return st;
        pt->ops.free_table(pt->ops.ud, table);
    }
    return VMS_OK;
}

vms_status vms_pt_protect(vms_pt *pt, uint64_t va, uint64_t set, uint64_t clear, uint64_t *old)
{
    uint64_t ptep_at[6] = {0}, pte_at[6] = {0};
    unsigned l = descend(pt, va, ptep_at, pte_at);
    if (!l || !present(pt, pte_at[l]))
        return VMS_ERR_NOTFOUND;
    if (old)
        *old = pte_at[l];
    return vms_pt_write(pt, ptep_at[l], (pte_at[l] & ~clear) | set);
}

/* The canonical linear address whose index at `level` is idx, under prefix base. */
static inline uint64_t child_va(const vms_pt *pt, uint64_t base, unsigned level, unsigned idx)
{
    uint64_t va = base | ((uint64_t)idx << vms_fmt_level_shift(pt->fmt, level));
    return vms_fmt_sign_extend(pt->fmt, va);
}

typedef struct visit {
    const vms_pt *pt;
    uint64_t start, end;
    vms_pt_leaf_fn fn;
    void *ud;
    bool stopped;
} visit;

/* Visit the leaves of the level-`level` table at table_pa (covering va prefix base). */
static vms_status visit_table(visit *v, uint64_t table_pa, unsigned level, uint64_t base)
{
    uint64_t span = UINT64_C(1) << vms_fmt_level_shift(v->pt->fmt, level);
    for (unsigned i = 0; i < nentries(v->pt) && !v->stopped; i++) {
        uint64_t va = child_va(v->pt, base, level, i);
        if (va + (span - 1) < v->start || va >= v->end)
            continue;
        uint64_t ptep = slot_pa(v->pt, table_pa, i), pte;
        vms_status st = pt_read(v->pt, ptep, &pte);
        if (st != VMS_OK)
            return st;
        if (!present(v->pt, pte))
            continue;
        if (leaf(v->pt, pte, level)) {
            if (va >= v->start && !v->fn(v->ud, va, ptep, pte, (vms_pgsize)(level - 1)))
                v->stopped = true;
            continue;
        }
        st = visit_table(v, table_of(v->pt, pte), level - 1, va);
        if (st != VMS_OK)
            return st;
    }
    return VMS_OK;
}

vms_status vms_pt_foreach(const vms_pt *pt, uint64_t va_start, uint64_t va_end, vms_pt_leaf_fn fn,
                          void *ud)
{
    visit v = {pt, va_start, va_end, fn, ud, false};
    return visit_table(&v, pt->root, pt->levels, 0);
}

/* Tables below (not including) the level-`level` table at table_pa. If destroy, free
 * them too. */
static uint64_t subtables(const vms_pt *pt, uint64_t table_pa, unsigned level, bool destroy)
{
    uint64_t n = 0;
    if (level == 1)
        return 0;
    for (unsigned i = 0; i < nentries(pt); i++) {
        uint64_t pte;
        if (pt_read(pt, slot_pa(pt, table_pa, i), &pte) != VMS_OK)
            continue;
        if (!present(pt, pte) || leaf(pt, pte, level))
            continue;
        n += 1 + subtables(pt, table_of(pt, pte), level - 1, destroy);
        if (destroy)
            pt->ops.free_table(pt->ops.ud, table_of(pt, pte));
    }
    return n;
}

uint64_t vms_pt_count_tables(const vms_pt *pt)
{
    return 1 + subtables(pt, pt->root, pt->levels, false);
}

void vms_pt_destroy(vms_pt *pt)
{
    if (!pt || pt->levels == 0) /* never initialised, or destroyed already */
        return;
    subtables(pt, pt->root, pt->levels, true);
    pt->ops.free_table(pt->ops.ud, pt->root);
    pt->levels = 0;
    pt->root = 0;
}

/* ---- the bump allocator ---- */

static vms_status bump_alloc(void *ud, uint64_t *pa)
{
    vms_pt_bump *b = ud;
    if (b->limit && b->next + VMS_PAGE_SIZE > b->limit)
        return VMS_ERR_NOMEM;
    vms_status st = vms_ram_fill(b->ram, b->next, 0, VMS_PAGE_SIZE);
    if (st != VMS_OK)
        return st;
    *pa = b->next;
    b->next += VMS_PAGE_SIZE;
    b->allocated++;
    return VMS_OK;
}

static void bump_free(void *ud, uint64_t pa)
{
    vms_pt_bump *b = ud;
    (void)pa;
    b->freed++;
}

vms_pt_ops vms_pt_bump_ops(vms_pt_bump *b)
{
    return (vms_pt_ops){bump_alloc, bump_free, b};
}
