/*
 * mm_impl.h — the address-space district (src/os/mm): reverse maps, the fault handler,
 * the kernel's page-table helpers (pgtable.c), VMAs (vma.c), rmap (rmap.c), fork
 * (fork.c) and the mm system calls (mm.c). Included by the kernel files that map,
 * unmap or fault pages; nothing outside src/os includes it.
 */
#ifndef VMSIM_OS_MM_IMPL_H
#define VMSIM_OS_MM_IMPL_H

#include "os/os_impl.h"

/* One reverse-map entry: the PTE of mm at va maps the frame. */
typedef struct vmsi_rmap_ent {
    vmsi_mm *mm;
    uint64_t va;
} vmsi_rmap_ent;

/* The reverse map of one frame (block head), pointed to by vms_frame.owner. A record
 * lives while it has entries, names a cache page (file), or names a swap slot. */
typedef struct vmsi_rmap {
    vms_file *file; /* page-cache page: its object and index; NULL for anon */
    uint64_t index; /* the cache index, or the swap slot of a swap-cache page */
    bool swapcache; /* anon page in the swap cache: index is its slot */
    uint32_t n, cap;
    vmsi_rmap_ent *e;
} vmsi_rmap;

/* Outcome of the fault handler. */
typedef enum vmsi_fault_ret {
    VMSI_FAULT_DONE = 0, /* resolved (or spurious): retry the access */
    VMSI_FAULT_SEGV,
    VMSI_FAULT_BUS,
    VMSI_FAULT_OOM,   /* no simulated frame */
    VMSI_FAULT_NOMEM, /* host allocation failed */
    VMSI_FAULT_PANIC, /* the PTE was not the kernel's (vmsi_panic ran): stop */
} vmsi_fault_ret;

typedef struct vmsi_fault_info {
    int si_code;
    bool major;
} vmsi_fault_info;

/* ---- pgtable.c: the kernel's page-table helpers (Linux pgtable) ---- */
vms_status vmsi_mm_alloc_pgd(vms_kernel *k, vmsi_mm *mm, vms_err *err);
void vmsi_mm_free_pgd(vmsi_mm *mm);
/* Physical address of the leaf slot for va at the VMA's page size, creating tables when
 * create; 0 when a table is missing (and !create). */
vms_status vmsi_pte_slot(vmsi_mm *mm, uint64_t va, vms_pgsize size, bool create, uint64_t *ptep,
                         vms_err *err);
uint64_t vmsi_pte_get(vmsi_mm *mm, uint64_t ptep);
void vmsi_pte_set(vmsi_mm *mm, uint64_t ptep, uint64_t pte);
/* Visit every leaf slot holding a non-zero entry in [start, end) (4K or huge). */
typedef void (*vmsi_pte_fn)(vmsi_mm *mm, uint64_t va, uint64_t ptep, uint64_t pte, vms_pgsize size,
                            void *ud);
void vmsi_pte_range(vmsi_mm *mm, uint64_t start, uint64_t end, vmsi_pte_fn fn, void *ud);
/* Free page tables left empty inside [start, end) (never the root or kernel half). */
void vmsi_free_pgtables(vmsi_mm *mm, uint64_t start, uint64_t end);
/* The leaf mapping frame pfn with vma's rights (write only when `writable`), at the
 * VMA's page size: the format's PROT_NONE entry for a PROT_NONE VMA. */
uint64_t vmsi_vma_mk_pte(const vms_kernel *k, const vmsi_vma *vma, uint64_t pfn, bool writable);
vms_pgsize vmsi_vma_pgsize(const vmsi_vma *vma);

/* ---- vma.c ---- */
vmsi_vma *vmsi_vma_find(vmsi_mm *mm, uint64_t va);   /* first VMA with end > va */
vmsi_vma *vmsi_vma_lookup(vmsi_mm *mm, uint64_t va); /* VMA containing va */
vms_status vmsi_vma_insert(vmsi_mm *mm, const vmsi_vma *v, vms_err *err);
vms_status vmsi_vma_split(vmsi_mm *mm, uint64_t va, vms_err *err);     /* boundary at va */
void vmsi_vma_remove_range(vmsi_mm *mm, uint64_t start, uint64_t end); /* must be split */
void vmsi_vma_merge_around(vmsi_mm *mm, uint64_t start, uint64_t end);
bool vmsi_vma_range_mapped(vmsi_mm *mm, uint64_t start, uint64_t end);
bool vmsi_vma_range_free(vmsi_mm *mm, uint64_t start, uint64_t end);
vms_status vmsi_vma_check(vmsi_mm *mm, vms_err *err);

/* ---- rmap.c ---- */
vms_status vmsi_page_add_rmap(vms_kernel *k, uint64_t pfn, vmsi_mm *mm, uint64_t va);
void vmsi_page_remove_rmap(vms_kernel *k, uint64_t pfn, vmsi_mm *mm, uint64_t va);
vmsi_rmap *vmsi_rmap_of(vms_kernel *k, uint64_t pfn);
vms_status vmsi_rmap_check(vms_kernel *k, vms_err *err);
/* Map a frame at a leaf slot with its bookkeeping (ref, mapcount, rmap); unmap one. */
vms_status vmsi_map_page(vmsi_mm *mm, uint64_t va, uint64_t ptep, uint64_t pfn, uint64_t pte);
void vmsi_zap_pte(vmsi_mm *mm, uint64_t va, uint64_t ptep, uint64_t pte, vms_pgsize size);
void vmsi_page_unref(vmsi_mm *mm, uint64_t va, uint64_t pte, vms_pgsize size);

/* Drop one reference of a data frame, taking it off the replacement policy first when
 * it is the last (every kernel put of an ANON/FILE frame goes through here). */
void vmsi_page_put(vms_kernel *k, uint64_t pfn);

/* ---- fork.c ---- */
vms_status vmsi_dup_mm(vms_kernel *k, vmsi_mm *old, vmsi_mm **out, vms_err *err);

/* ---- fault.c ---- */
vmsi_fault_ret vmsi_handle_mm_fault(vms_kernel *k, vms_task *t, uint64_t addr, uint32_t ec,
                                    vmsi_fault_info *fi);
/* Fault in every page of [start, end) as a write (if the VMA is writable) or read:
 * MAP_POPULATE and mlock (Linux populate_vma_page_range). */
vmsi_fault_ret vmsi_populate(vms_kernel *k, vms_task *t, uint64_t start, uint64_t end);

/* ---- mm.c ---- */
/* Unmap [start, end) (page aligned): zap PTEs, write back, drop VMAs, free tables. */
vms_status vmsi_do_munmap(vms_kernel *k, vmsi_mm *mm, unsigned core, uint64_t start, uint64_t end,
                          vms_err *err);
void vmsi_exit_mmap(vmsi_mm *mm);
void vmsi_update_mlock(vms_kernel *k, uint64_t pfn);

#endif
