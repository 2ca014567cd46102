/*
 * pt.c — building and editing x86-64 page tables in simulated RAM (pt.h).
 *
 * Everything here is what a kernel's page-table code does (Linux's mm/pgtable
 * helpers, xv6's walk()/mappages()): read and write 8-byte entries through the bus.
 * No TLB, no A/D updates, no counters beyond the bus's own. Layout of an entry and of a
 * linear address: see pte.h. A level-L entry sits at table + 8 * index(va, L).
 *
 * Invariants kept by these helpers (and checked by tests/test_pt.c):
 *  - every present non-leaf entry points to a table page obtained from ops.alloc_table;
 *  - PS is only ever set at PD (2 MiB) and PDPT (1 GiB) level;
 *  - a table freed by unmap(free_tables) has all 512 entries zero and its parent entry
 *    is cleared before the frame is handed back.
 */
#include "vmsim/pt.h"

#include <assert.h>

#include "util/util.h"

/* Physical address of va's entry in the level-`level` table at table_pa. */
static inline uint64_t entry_pa(uint64_t table_pa, uint64_t va, unsigned level)
{
    return table_pa + 8u * vms_va_index(va, level);
}

/* Flags for a new intermediate entry. */
static inline uint64_t table_flags(const vms_pt *pt)
{
    return pt->table_flags ? (pt->table_flags | VMS_PTE_P) : (VMS_PTE_P | VMS_PTE_RW | VMS_PTE_US);
}

vms_status vms_pt_read(const vms_pt *pt, uint64_t ptep, uint64_t *pte)
{
    return vms_bus_read64(pt->bus, ptep, pte);
}

vms_status vms_pt_write(const vms_pt *pt, uint64_t ptep, uint64_t pte)
{
    return vms_bus_write64(pt->bus, ptep, pte);
}

vms_status vms_pt_init(vms_pt *pt, vms_bus *bus, unsigned levels, const vms_pt_ops *ops,
                       vms_err *err)
{
    if (levels != 4 && levels != 5)
        return vmsi_err(err, VMS_ERR_INVAL, "paging levels %u: expected 4 or 5", levels);
    if (!bus || !ops || !ops->alloc_table || !ops->free_table)
        return vmsi_err(err, VMS_ERR_INVAL, "page tables need a bus and table ops");
    uint64_t root;
    vms_status st = ops->alloc_table(ops->ud, &root);
    if (st != VMS_OK)
        return vmsi_err(err, st, "could not allocate the root table (%s)", vms_status_str(st));
    memset(pt, 0, sizeof *pt);
    pt->bus = bus;
    pt->levels = levels;
    pt->root = root;
    pt->ops = *ops;
    return VMS_OK;
}

/*
 * Allocate a zeroed table and install it in the (not-present) entry at ptep. Returns
 * the table's address in *table_pa, or the allocator's / bus's failure.
 */
static vms_status add_table(vms_pt *pt, uint64_t ptep, uint64_t *table_pa, vms_err *err)
{
    uint64_t pa;
    vms_status st = pt->ops.alloc_table(pt->ops.ud, &pa);
    if (st != VMS_OK)
        return vmsi_err(err, st, "could not allocate a page table (%s)", vms_status_str(st));
    assert((pa & VMS_PAGE_MASK) == 0);
    st = vms_pt_write(pt, ptep, vms_pte_mk(pa, table_flags(pt)));
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
    if (!vms_va_canonical(va, pt->levels))
        return vmsi_err(err, VMS_ERR_INVAL, "va 0x%llx is not canonical", (unsigned long long)va);
    uint64_t table = pt->root;
    for (unsigned l = pt->levels; l > level; l--) {
        uint64_t ep = entry_pa(table, va, l), pte;
        vms_status st = vms_pt_read(pt, ep, &pte);
        if (st != VMS_OK)
            return vmsi_err(err, st, "could not read entry at 0x%llx", (unsigned long long)ep);
        if (!vms_pte_present(pte)) {
            if (!create)
                return vmsi_err(err, VMS_ERR_NOTFOUND, "no level-%u table for va 0x%llx", l - 1,
                                (unsigned long long)va);
            st = add_table(pt, ep, &table, err);
            if (st != VMS_OK)
                return st;
            continue;
        }
        if (vms_pte_leaf(pte, l))
            return vmsi_err(err, VMS_ERR_EXISTS, "a %s page maps va 0x%llx above level %u",
                            vms_pgsize_name((vms_pgsize)(l - 1)), (unsigned long long)va, level);
        table = vms_pte_addr(pte);
    }
    *ptep = entry_pa(table, va, level);
    return VMS_OK;
}

vms_status vms_pt_map(vms_pt *pt, uint64_t va, uint64_t pa, vms_pgsize size, uint64_t flags,
                      vms_err *err)
{
    if ((unsigned)size >= VMS_PG_NSIZES)
        return vmsi_err(err, VMS_ERR_INVAL, "bad page size %d", (int)size);
    uint64_t mask = vms_pgsize_bytes(size) - 1;
    /* Flags may not carry address bits, except PAT (bit 12) in a large leaf. */
    uint64_t addr_flags = flags & VMS_PTE_ADDR_MASK & ~(size ? VMS_PTE_PAT_LARGE : 0);
    if ((va & mask) || (pa & mask) || (pa & ~VMS_PTE_ADDR_MASK) || addr_flags)
        return vmsi_err(err, VMS_ERR_INVAL,
                        "map %s va 0x%llx -> pa 0x%llx flags 0x%llx: unaligned or bad bits",
                        vms_pgsize_name(size), (unsigned long long)va, (unsigned long long)pa,
                        (unsigned long long)flags);
    unsigned level = vms_pgsize_level(size);
    uint64_t ptep, old;
    vms_status st = vms_pt_entry_addr(pt, va, level, true, &ptep, err);
    if (st != VMS_OK)
        return st;
    st = vms_pt_read(pt, ptep, &old);
    if (st != VMS_OK)
        return vmsi_err(err, st, "could not read entry at 0x%llx", (unsigned long long)ptep);
    /* A present entry here is either a leaf or a table holding smaller pages. Tables
     * created above by entry_addr are new and empty, so this check changes nothing. */
    if (vms_pte_present(old))
        return vmsi_err(err, VMS_ERR_EXISTS, "va 0x%llx is already mapped (entry 0x%llx)",
                        (unsigned long long)va, (unsigned long long)old);
    uint64_t pte = pa | flags | VMS_PTE_P | (size != VMS_PG_4K ? VMS_PTE_PS : 0);
    st = vms_pt_write(pt, ptep, pte);
    if (st != VMS_OK)
        return vmsi_err(err, st, "could not write entry at 0x%llx", (unsigned long long)ptep);
    return VMS_OK;
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
    if (!vms_va_canonical(va, pt->levels))
        return 0;
    uint64_t table = pt->root;
    for (unsigned l = pt->levels; l >= 1; l--) {
        ptep_at[l] = entry_pa(table, va, l);
        if (vms_pt_read(pt, ptep_at[l], &pte_at[l]) != VMS_OK)
            return 0;
        if (!vms_pte_present(pte_at[l]) || vms_pte_leaf(pte_at[l], l))
            return l;
        table = vms_pte_addr(pte_at[l]);
    }
    return 0; /* not reached: level 1 entries are leaves */
}

bool vms_pt_lookup(const vms_pt *pt, uint64_t va, uint64_t *pte, uint64_t *ptep, vms_pgsize *size)
{
    uint64_t ptep_at[6] = {0}, pte_at[6] = {0};
    unsigned l = descend(pt, va, ptep_at, pte_at);
    bool found = l && vms_pte_present(pte_at[l]);
    if (pte)
        *pte = l ? pte_at[l] : 0;
    if (ptep) /* 0 when the walk stopped above the PT level at a missing table */
        *ptep = (l == 1 || found) ? ptep_at[l] : 0;
    if (size)
        *size = l ? level_size(l) : VMS_PG_4K;
    return found;
}

/* True when all 512 entries of the table at table_pa are zero (read errors: false). */
static bool table_empty(const vms_pt *pt, uint64_t table_pa)
{
    uint64_t e[VMS_PT_ENTRIES];
    if (vms_bus_read(pt->bus, table_pa, e, sizeof e) != VMS_OK)
        return false;
    for (unsigned i = 0; i < VMS_PT_ENTRIES; i++)
        if (e[i])
            return false;
    return true;
}

vms_status vms_pt_unmap(vms_pt *pt, uint64_t va, bool free_tables, uint64_t *old)
{
    uint64_t ptep_at[6] = {0}, pte_at[6] = {0};
    unsigned l = descend(pt, va, ptep_at, pte_at);
    if (!l || !vms_pte_present(pte_at[l]))
        return VMS_ERR_NOTFOUND;
    vms_status st = vms_pt_write(pt, ptep_at[l], 0);
    if (st != VMS_OK)
        return st;
    if (old)
        *old = pte_at[l];
    /* Free tables bottom-up while they are empty; the root always stays. */
    for (unsigned t = l; free_tables && t < pt->levels; t++) {
        uint64_t table = ptep_at[t] & ~VMS_PAGE_MASK;
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
    if (!l || !vms_pte_present(pte_at[l]))
        return VMS_ERR_NOTFOUND;
    if (old)
        *old = pte_at[l];
    return vms_pt_write(pt, ptep_at[l], (pte_at[l] & ~clear) | set);
}

/* The canonical linear address whose index at `level` is idx, under prefix base. */
static inline uint64_t child_va(const vms_pt *pt, uint64_t base, unsigned level, unsigned idx)
{
    uint64_t va = base | ((uint64_t)idx << vms_level_shift(level));
    unsigned n = 12u + 9u * pt->levels;
    return (uint64_t)((int64_t)(va << (64 - n)) >> (64 - n)); /* sign-extend */
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
    uint64_t span = UINT64_C(1) << vms_level_shift(level);
    for (unsigned i = 0; i < VMS_PT_ENTRIES && !v->stopped; i++) {
        uint64_t va = child_va(v->pt, base, level, i);
        if (va + (span - 1) < v->start || va >= v->end)
            continue;
        uint64_t ptep = table_pa + 8u * i, pte;
        vms_status st = vms_pt_read(v->pt, ptep, &pte);
        if (st != VMS_OK)
            return st;
        if (!vms_pte_present(pte))
            continue;
        if (vms_pte_leaf(pte, level)) {
            if (va >= v->start && !v->fn(v->ud, va, ptep, pte, (vms_pgsize)(level - 1)))
                v->stopped = true;
            continue;
        }
        st = visit_table(v, vms_pte_addr(pte), level - 1, va);
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
    if (level == VMS_LEVEL_PT)
        return 0;
    for (unsigned i = 0; i < VMS_PT_ENTRIES; i++) {
        uint64_t pte;
        if (vms_pt_read(pt, table_pa + 8u * i, &pte) != VMS_OK)
            continue;
        if (!vms_pte_present(pte) || vms_pte_leaf(pte, level))
            continue;
        n += 1 + subtables(pt, vms_pte_addr(pte), level - 1, destroy);
        if (destroy)
            pt->ops.free_table(pt->ops.ud, vms_pte_addr(pte));
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
