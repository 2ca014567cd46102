/*
 * pgtable.c — the kernel's view of a process's page tables (Linux's pgd_alloc,
 * pte_offset, free_pgtables): allocating a root that shares init_mm's kernel half,
 * finding or creating the leaf slot for an address, visiting every leaf of a range, and
 * freeing tables that became empty.
 *
 * Tables live in simulated RAM and are read and written through the bus in the
 * machine's page-table format (format.h). Leaves are written here with their full
 * value; the kernel decides their rights (vmsi_vma_mk_pte) and the format encodes them
 * (on x86-64, Intel SDM Vol. 3A §4.5):
 *
 *   present page:     user, readable; writable when the VMA is and the page is not
 *                     COW; executable only with PROT_EXEC; the page size of the VMA
 *                     (x86-64: P | US | RW? | XD? | PS for 2M/1G | PFN)
 *   PROT_NONE page:   the format's PROT_NONE entry, not present with the frame kept, so
 *                     the frame stays owned by the PTE as with Linux's _PAGE_PROTNONE
 *
 * Invariants: the kernel half of a root (entries 256 … 511) is a copy of init_mm's and
 * is never freed with a process; every table reachable from a user-half entry is a
 * frame flagged PAGETABLE counted in mm->nr_ptes.
 */
#include "os/os_impl.h"
#include "os/mm/mm_impl.h"

/* Entry i of the table at table_pa, and the table a present non-leaf entry points to. */
static inline uint64_t slot(const vms_kernel *k, uint64_t table_pa, unsigned i)
{
    return table_pa + ((uint64_t)i << k->fmt->entry_shift);
}

static inline uint64_t table_of(const vms_kernel *k, uint64_t pte)
{
    return vms_fmt_pte_addr(k->fmt, pte);
}

uint64_t vmsi_pte_get(vmsi_mm *mm, uint64_t ptep)
{
    uint64_t pte = 0;
    vms_pt_read(&mm->pt, ptep, &pte);
    return pte;
}

void vmsi_pte_set(vmsi_mm *mm, uint64_t ptep, uint64_t pte)
{
    vms_pt_write(&mm->pt, ptep, pte);
}

/* A root table with init_mm's kernel half copied in (Linux pgd_alloc/pgd_ctor). */
vms_status vmsi_mm_alloc_pgd(vms_kernel *k, vmsi_mm *mm, vms_err *err)
{
    /* A process's tables: frames flagged PAGETABLE, counted per mm. */
    mm->tops = (vmsi_table_ops){k, {&mm->nr_ptes, NULL}};
    vms_pt_ops ops = vmsi_table_pt_ops(&mm->tops);
    vms_status st = vms_pt_init_format(&mm->pt, k->bus, k->fmt, &ops, err);
    if (st != VMS_OK)
        return st;
    unsigned n = vms_fmt_entries(k->fmt);
    for (unsigned i = n / 2; i < n; i++) {
        uint64_t e = 0;
        vms_pt_read(&k->init_pt, slot(k, k->init_pt.root, i), &e);
        if (e)
            vms_pt_write(&mm->pt, slot(k, mm->pt.root, i), e);
    }
    return VMS_OK;
}

/* Whether the entry e (a non-leaf at va) points at a page table the kernel made (a frame
 * flagged PAGETABLE); else a device wrote it behind the kernel's back: panic, and the
 * caller leaves that subtree alone (issue 16 #5). */
static bool own_table(vmsi_mm *mm, uint64_t va, uint64_t e)
{
    vms_frame *f = vms_frames_meta(mm->k->fr, table_of(mm->k, e) >> VMS_PAGE_SHIFT);
    if (f && (f->flags & VMS_FRAME_PAGETABLE))
        return true;
    vmsi_panic(mm->k, "Bad pmd: entry %llx above va %llx (the kernel did not write it)",
               (unsigned long long)e, (unsigned long long)va);
    return false;
}

/* Free the table at pa (level `level`) and every table below it. */
static void free_tree(vmsi_mm *mm, uint64_t pa, unsigned level)
{
    if (level > 1) {
        for (unsigned i = 0; i < vms_fmt_entries(mm->k->fmt); i++) {
            uint64_t e = vmsi_pte_get(mm, slot(mm->k, pa, i));
            if (vmsi_pte_present(mm->k, e) && !vmsi_pte_leaf(mm->k, e, level) &&
                own_table(mm, 0, e))
                free_tree(mm, table_of(mm->k, e), level - 1);
        }
    }
    vmsi_table_free(&mm->tops, pa);
}

/* Free the user half's tables and the root (the kernel half is init_mm's). */
void vmsi_mm_free_pgd(vmsi_mm *mm)
{
    if (!mm->pt.root)
        return;
    unsigned top = mm->k->levels;
    for (unsigned i = 0; i < vms_fmt_entries(mm->k->fmt) / 2; i++) {
        uint64_t e = vmsi_pte_get(mm, slot(mm->k, mm->pt.root, i));
        if (vmsi_pte_present(mm->k, e) && own_table(mm, 0, e))
            free_tree(mm, table_of(mm->k, e), top - 1);
    }
    vmsi_table_free(&mm->tops, mm->pt.root);
    mm->pt.root = 0;
}

vms_status vmsi_pte_slot(vmsi_mm *mm, uint64_t va, vms_pgsize size, bool create, uint64_t *ptep,
                         vms_err *err)
{
    *ptep = 0;
    vms_status st = vms_pt_entry_addr(&mm->pt, va, vms_pgsize_level(size), create, ptep, err);
    if (st == VMS_ERR_NOTFOUND && !create)
        return VMS_OK;
    return st;
}

/* Walk one table of `level` covering [base, base + 512 * span) for [start, end). */
static void range_level(vmsi_mm *mm, uint64_t table, unsigned level, uint64_t base, uint64_t start,
                        uint64_t end, vmsi_pte_fn fn, void *ud)
{
    const vms_kernel *k = mm->k;
    uint64_t span = UINT64_C(1) << vms_fmt_level_shift(k->fmt, level);
    unsigned first = start > base ? (unsigned)((start - base) / span) : 0;
    for (unsigned i = first; i < vms_fmt_entries(k->fmt); i++) {
        uint64_t va = base + (uint64_t)i * span;
        if (va >= end)
            break;
        uint64_t ptep = slot(k, table, i);
        uint64_t e = vmsi_pte_get(mm, ptep);
        if (!e)
            continue;
        /* A leaf even when not present: swap and PROT_NONE entries keep their size. Every
         * PT entry is a leaf (a RISC-V swap entry has no R/W/X bits to say so). */
        if (level == 1 || vmsi_pte_leaf(k, e, level))
            fn(mm, va, ptep, e, (vms_pgsize)(level - 1), ud);
        else if (vmsi_pte_present(k, e) && own_table(mm, va, e))
            range_level(mm, table_of(k, e), level - 1, va, start, end, fn, ud);
    }
}

void vmsi_pte_range(vmsi_mm *mm, uint64_t start, uint64_t end, vmsi_pte_fn fn, void *ud)
{
    if (end > vmsi_task_size(mm->k))
        end = vmsi_task_size(mm->k);
    if (start >= end || !mm->pt.root)
        return;
    range_level(mm, mm->pt.root, mm->k->levels, 0, start, end, fn, ud);
}

static bool table_empty(vmsi_mm *mm, uint64_t pa)
{
    for (unsigned i = 0; i < vms_fmt_entries(mm->k->fmt); i++)
        if (vmsi_pte_get(mm, slot(mm->k, pa, i)))
            return false;
    return true;
}

/* Free empty tables below `table` (of `level`) whose span overlaps [start, end). */
static void free_level(vmsi_mm *mm, uint64_t table, unsigned level, uint64_t base, uint64_t start,
                       uint64_t end)
{
    const vms_kernel *k = mm->k;
    uint64_t span = UINT64_C(1) << vms_fmt_level_shift(k->fmt, level);
    unsigned first = start > base ? (unsigned)((start - base) / span) : 0;
    for (unsigned i = first; i < vms_fmt_entries(k->fmt); i++) {
        uint64_t va = base + (uint64_t)i * span;
        if (va >= end)
            break;
        uint64_t e = vmsi_pte_get(mm, slot(k, table, i));
        if (!vmsi_pte_present(k, e) || vmsi_pte_leaf(k, e, level) || !own_table(mm, va, e))
            continue;
        uint64_t child = table_of(k, e);
        if (level - 1 > 1)
            free_level(mm, child, level - 1, va, start, end);
        if (table_empty(mm, child)) {
            vmsi_pte_set(mm, slot(k, table, i), 0);
            vmsi_table_free(&mm->tops, child);
        }
    }
}

void vmsi_free_pgtables(vmsi_mm *mm, uint64_t start, uint64_t end)
{
    if (end > vmsi_task_size(mm->k))
        end = vmsi_task_size(mm->k);
    if (start < end && mm->pt.root)
        free_level(mm, mm->pt.root, mm->k->levels, 0, start, end);
}

vms_pgsize vmsi_vma_pgsize(const vmsi_vma *vma)
{
    if (vma->flags & VMSI_VM_HUGE1G)
        return VMS_PG_1G;
    if (vma->flags & VMSI_VM_HUGE2M)
        return VMS_PG_2M;
    return VMS_PG_4K;
}

uint64_t vmsi_mk_pte_size(const vms_kernel *k, const vmsi_vma *vma, uint64_t pfn, bool writable,
                          vms_pgsize size)
{
    unsigned prot = 0;
    if (vma->prot != VMS_PROT_NONE) {
        prot = VMS_PGPROT_R | VMS_PGPROT_U;
        if (writable && (vma->prot & VMS_PROT_WRITE))
            prot |= VMS_PGPROT_W;
        if (vma->prot & VMS_PROT_EXEC)
            prot |= VMS_PGPROT_X;
    }
    uint64_t pte = vms_fmt_mk_pte(k->fmt, pfn, vms_fmt_size_level(size), prot);
    unsigned pkey = vmsi_vma_pkey(vma->flags);
    if (pkey && k->pke && vms_fmt_pte_present(k->fmt, pte)) /* x86-64: bits 62:59 */
        pte |= (uint64_t)pkey << VMS_PTE_PKEY_SHIFT;
    return pte;
}

uint64_t vmsi_vma_mk_pte(const vms_kernel *k, const vmsi_vma *vma, uint64_t pfn, bool writable)
{
    return vmsi_mk_pte_size(k, vma, pfn, writable, vmsi_vma_pgsize(vma));
}

uint64_t vmsi_mk_table(const vms_kernel *k, uint64_t table_pa, unsigned level)
{
    return k->fmt->mk_table(k->fmt, table_pa, level);
}

/* The software walk of the kernel (Linux's pgd/p4d/pud/pmd_offset chain): stop at the
 * first leaf, present or not (swap and PROT_NONE entries keep their level). */
uint64_t vmsi_leaf_find(vmsi_mm *mm, uint64_t va, uint64_t *ptep, vms_pgsize *size)
{
    const vms_kernel *k = mm->k;
    *ptep = 0;
    *size = VMS_PG_4K;
    if (va >= vmsi_task_size(k) || !mm->pt.root)
        return 0;
    uint64_t table = mm->pt.root;
    for (unsigned level = k->levels; level >= 1; level--) {
        uint64_t p = slot(k, table, vms_fmt_index(k->fmt, va, level));
        uint64_t e = vmsi_pte_get(mm, p);
        if (!e)
            return 0;
        if (level == 1 || vmsi_pte_leaf(k, e, level)) {
            *ptep = p;
            *size = (vms_pgsize)(level - 1);
            return e;
        }
        if (!vmsi_pte_present(k, e))
            return 0;
        table = table_of(k, e);
    }
    return 0;
}
