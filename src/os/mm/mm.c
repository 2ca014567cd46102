/*
 * mm.c — the memory-management system calls: mmap, munmap, mprotect, brk, mlock,
 * munlock, madvise(MADV_DONTNEED), msync (Linux mm/mmap.c, mprotect.c, mlock.c,
 * madvise.c, msync.c), and exit_mmap.
 *
 * Every call that removes or weakens translations (munmap, mprotect, DONTNEED, and
 * writeback's write-protect) edits the PTEs in RAM first and then flushes the range on
 * every core in the mm's cpumask (smp.c). VMAs are split at the range's edges and merged
 * again afterwards where compatible. Address choice without MAP_FIXED is top-down from
 * mmap_base (arch_get_unmapped_area_topdown), never below mmap_min_addr (64 KiB).
 */
#include "os/os_impl.h"
#include "os/mm/mm_impl.h"
#include "os/reclaim/reclaim_impl.h"

#define MMAP_MIN_ADDR UINT64_C(0x10000)

/* Why sys_enter refused: the kernel panicked, or the task is not running. */
static vms_status sys_refused(const vms_kernel *k)
{
    return k->panicked ? VMS_ERR_PANIC : VMS_ERR_INVAL;
}

/* The caller's mm, after charging the syscall; NULL (with err) for a dead task or a
 * panicked kernel. */
static vmsi_mm *sys_enter(vms_kernel *k, vms_task *t, const char *name, vms_err *err)
{
    if (vmsi_panic_status(k, err) != VMS_OK)
        return NULL;
    if (!t || !t->proc->mm) {
        vmsi_err(err, VMS_ERR_INVAL, "%s: the task is not running", name);
        return NULL;
    }
    k->st.syscalls++;
    vmsi_charge(k, t->core, k->cfg.cost.syscall);
    k->cur_core = t->core;
    k->cur_proc = t->proc;
    vmsi_kswapd(k);          /* a kernel entry: kswapd catches up if it was woken */
    vmsi_khugepaged_tick(k); /* … and khugepaged, if its sleep ended */
    vmsi_kcompactd(k);       /* … and kcompactd, if an allocation woke it */
    return t->proc->mm;
}

static uint64_t page_align(uint64_t len, uint64_t align)
{
    return (len + align - 1) & ~(align - 1);
}

/* Check [addr, addr+len) is a page-aligned user range; *end gets its end. */
static vms_status user_range(const vms_kernel *k, const char *name, uint64_t addr, uint64_t len,
                             uint64_t *end, vms_err *err)
{
    if (addr & VMS_PAGE_MASK)
        return vmsi_err(err, VMS_ERR_INVAL, "%s: address %llx is not page aligned", name,
                        (unsigned long long)addr);
    uint64_t l = page_align(len, VMS_PAGE_SIZE);
    if (len == 0 || l < len || addr > vmsi_task_size(k) || l > vmsi_task_size(k) - addr)
        return vmsi_err(err, VMS_ERR_INVAL, "%s: range %llx + %llx is not in user space", name,
                        (unsigned long long)addr, (unsigned long long)len);
    *end = addr + l;
    return VMS_OK;
}

/* ---- unmapping ------------------------------------------------------------------------ */

static void zap_one(vmsi_mm *mm, uint64_t va, uint64_t ptep, uint64_t pte, vms_pgsize size,
                    void *ud)
{
    (void)ud;
    vmsi_zap_pte(mm, va, ptep, pte, size);
}

/* Zap the leaves of [start, end) and write back the shared file pages it covered. */
static void zap_range(vms_kernel *k, vmsi_mm *mm, unsigned core, uint64_t start, uint64_t end)
{
    vmsi_pte_range(mm, start, end, zap_one, NULL);
    for (vmsi_vma *v = vmsi_vma_find(mm, start); v && v->start < end; v++) {
        if ((v->flags & VMSI_VM_SHARED) && v->file) {
            uint64_t s = v->start > start ? v->start : start;
            uint64_t e = v->end < end ? v->end : end;
            uint64_t first = v->pgoff + ((s - v->start) >> VMS_PAGE_SHIFT);
            vmsi_file_writeback(k, v->file, first, first + ((e - s) >> VMS_PAGE_SHIFT), core, NULL);
        }
        if (v == &mm->vma[mm->nvma - 1])
            break;
    }
}

vms_status vmsi_do_munmap(vms_kernel *k, vmsi_mm *mm, unsigned core, uint64_t start, uint64_t end,
                          vms_err *err)
{
    vmsi_vma *v = vmsi_vma_lookup(mm, start);
    if (v && vmsi_vma_pgsize(v) != VMS_PG_4K)
        start &= ~(vms_pgsize_bytes(vmsi_vma_pgsize(v)) - 1);
    v = vmsi_vma_lookup(mm, end - 1);
    if (v && vmsi_vma_pgsize(v) != VMS_PG_4K)
        end = page_align(end, vms_pgsize_bytes(vmsi_vma_pgsize(v)));
    vms_status st = vmsi_vma_split(mm, start, err);
    if (st == VMS_OK)
        st = vmsi_vma_split(mm, end, err);
    if (st != VMS_OK)
        return st;
    vmsi_hugetlb_unmap(mm, start, end);
    zap_range(k, mm, core, start, end);
    vmsi_vma_remove_range(mm, start, end);
    vmsi_free_pgtables(mm, start, end);
    vmsi_flush_tlb_mm_range(k, mm, core, start, end, VMSI_FLUSH_FREED | VMSI_FLUSH_GATHER);
    return VMS_OK;
}

/* exit_mmap: unmap everything (writing back shared file pages). Charges core 0. */
void vmsi_exit_mmap(vmsi_mm *mm)
{
    vms_kernel *k = mm->k;
    vmsi_hugetlb_unmap(mm, 0, vmsi_task_size(k));
    zap_range(k, mm, 0, 0, vmsi_task_size(k));
    vmsi_vma_remove_range(mm, 0, vmsi_task_size(k));
    vmsi_free_pgtables(mm, 0, vmsi_task_size(k));
}

vms_status vms_sys_munmap(vms_kernel *k, vms_task *t, uint64_t addr, uint64_t len, vms_err *err)
{
    vmsi_mm *mm = sys_enter(k, t, "munmap", err);
    uint64_t end;
    if (!mm)
        return sys_refused(k);
    vms_status st = user_range(k, "munmap", addr, len, &end, err);
    if (st == VMS_OK)
        st = vmsi_do_munmap(k, mm, t->core, addr, end, err);
    return st == VMS_OK ? vmsi_panic_status(k, err) : st; /* it may have met a foreign PTE */
}

/* ---- mmap ------------------------------------------------------------------------------ */

/* arch_get_unmapped_area_topdown: the highest free, aligned range of len below
 * mmap_base; 0 when there is none. */
static uint64_t unmapped_area(vmsi_mm *mm, uint64_t len, uint64_t align)
{
    uint64_t high = mm->mmap_base;
    for (size_t i = mm->nvma; i-- > 0;) {
        const vmsi_vma *v = &mm->vma[i];
        if (v->start >= high)
            continue;
        if (v->end < high && high - v->end >= len) {
            uint64_t cand = (high - len) & ~(align - 1);
            if (cand >= v->end)
                return cand;
        }
        high = v->start;
    }
    if (high < len + MMAP_MIN_ADDR)
        return 0;
    uint64_t cand = (high - len) & ~(align - 1);
    return cand >= MMAP_MIN_ADDR ? cand : 0;
}

static vms_status check_mmap_args(unsigned prot, unsigned flags, vms_file *file, uint64_t offset,
                                  vms_err *err)
{
    unsigned type = flags & (VMS_MAP_SHARED | VMS_MAP_PRIVATE);
    const unsigned known = VMS_MAP_SHARED | VMS_MAP_PRIVATE | VMS_MAP_FIXED | VMS_MAP_ANONYMOUS |
                           VMS_MAP_GROWSDOWN | VMS_MAP_LOCKED | VMS_MAP_POPULATE | VMS_MAP_HUGETLB |
                           VMS_MAP_NORESERVE | VMS_MAP_FIXED_NOREPLACE |
                           (0x3Fu << VMS_MAP_HUGE_SHIFT);
    if (type != VMS_MAP_SHARED && type != VMS_MAP_PRIVATE)
        return vmsi_err(err, VMS_ERR_INVAL, "mmap: exactly one of MAP_SHARED, MAP_PRIVATE");
    if ((flags & ~known) || (prot & ~7u))
        return vmsi_err(err, VMS_ERR_INVAL, "mmap: unknown flags %#x or prot %#x", flags & ~known,
                        prot & ~7u);
    if (!!(flags & VMS_MAP_ANONYMOUS) == !!file)
        return vmsi_err(err, VMS_ERR_INVAL,
                        "mmap: MAP_ANONYMOUS needs no file, a file mapping needs one");
    if (offset & VMS_PAGE_MASK)
        return vmsi_err(err, VMS_ERR_INVAL, "mmap: offset %llx is not page aligned",
                        (unsigned long long)offset);
    if ((flags & VMS_MAP_HUGETLB) && file && file->kind != VMSI_FILE_HTLBFS)
        return vmsi_err(err, VMS_ERR_INVAL,
                        "mmap: MAP_HUGETLB of a file not on hugetlbfs (EINVAL, as Linux)");
    return VMS_OK;
}

/* The page size MAP_HUGETLB asks for (without a size flag: default_hugepagesz). */
static vms_status huge_size(const vms_kernel *k, unsigned flags, vms_pgsize *size, vms_err *err)
{
    unsigned shift = (flags >> VMS_MAP_HUGE_SHIFT) & 0x3Fu;
    *size = VMS_PG_4K;
    if (!(flags & VMS_MAP_HUGETLB))
        return VMS_OK;
    if (shift == 0)
        *size = k->cfg.default_hugepagesz;
    else if (shift == 21)
        *size = VMS_PG_2M;
    else if (shift == 30)
        *size = VMS_PG_1G;
    else
        return vmsi_err(err, VMS_ERR_INVAL, "mmap: huge page shift %u unsupported", shift);
    return VMS_OK;
}

/* The new VMA's flags from mmap's arguments. */
static unsigned vma_flags(unsigned flags, const vms_file *file, vms_pgsize size)
{
    unsigned f = 0;
    if (flags & VMS_MAP_SHARED)
        f |= VMSI_VM_SHARED;
    if (!file)
        f |= VMSI_VM_ANON;
    else if (file->kind == VMSI_FILE_HOST)
        f |= VMSI_VM_FILE;
    else
        f |= VMSI_VM_SHM;
    if (flags & VMS_MAP_GROWSDOWN)
        f |= VMSI_VM_GROWSDOWN;
    if (flags & VMS_MAP_LOCKED)
        f |= VMSI_VM_LOCKED;
    if (size == VMS_PG_2M)
        f |= VMSI_VM_HUGE2M;
    if (size == VMS_PG_1G)
        f |= VMSI_VM_HUGE1G;
    if ((flags & VMS_MAP_NORESERVE) && size != VMS_PG_4K)
        f |= VMSI_VM_NORESERVE;
    return f;
}

/* Choose the address: MAP_FIXED (unmapping what is there), NOREPLACE, hint, top-down. */
static vms_status place(vms_kernel *k, vms_task *t, uint64_t addr, uint64_t len, uint64_t align,
                        unsigned flags, uint64_t *out, vms_err *err)
{
    vmsi_mm *mm = t->proc->mm;
    bool fixed = flags & (VMS_MAP_FIXED | VMS_MAP_FIXED_NOREPLACE);
    if (fixed) {
        if ((addr & (align - 1)) || addr < MMAP_MIN_ADDR || addr > vmsi_task_size(k) ||
            len > vmsi_task_size(k) - addr)
            return vmsi_err(err, VMS_ERR_INVAL, "mmap: fixed address %llx unusable",
                            (unsigned long long)addr);
        if (!vmsi_vma_range_free(mm, addr, addr + len)) {
            if (flags & VMS_MAP_FIXED_NOREPLACE)
                return vmsi_err(err, VMS_ERR_EXISTS, "mmap: [%llx, %llx) is already mapped",
                                (unsigned long long)addr, (unsigned long long)(addr + len));
            vms_status st = vmsi_do_munmap(k, mm, t->core, addr, addr + len, err);
            if (st != VMS_OK)
                return st;
        }
        *out = addr;
        return VMS_OK;
    }
    addr = page_align(addr, align);
    if (addr >= MMAP_MIN_ADDR && addr <= vmsi_task_size(k) && len <= vmsi_task_size(k) - addr &&
        vmsi_vma_range_free(mm, addr, addr + len)) {
        *out = addr;
        return VMS_OK;
    }
    *out = unmapped_area(mm, len, align);
    if (!*out)
        return vmsi_err(err, VMS_ERR_RANGE, "mmap: no free range of %llu bytes",
                        (unsigned long long)len);
    return VMS_OK;
}

static vms_status populate_status(vms_kernel *k, vms_task *t, uint64_t start, uint64_t end,
                                  vms_err *err)
{
    vmsi_fault_ret r = vmsi_populate(k, t, start, end);
    if (r == VMSI_FAULT_DONE)
        return VMS_OK;
    if (r == VMSI_FAULT_NOMEM)
        return vmsi_err(err, VMS_ERR_NOMEM, "populate: out of host memory");
    return vmsi_err(err, VMS_ERR_NOTFOUND, "populate [%llx, %llx): out of frames",
                    (unsigned long long)start, (unsigned long long)end);
}

vms_status vms_sys_mmap(vms_kernel *k, vms_task *t, uint64_t addr, uint64_t len, unsigned prot,
                        unsigned flags, vms_file *file, uint64_t offset, uint64_t *out,
                        vms_err *err)
{
    *out = 0;
    vmsi_mm *mm = sys_enter(k, t, "mmap", err);
    if (!mm)
        return sys_refused(k);
    vms_pgsize size;
    vms_status st = check_mmap_args(prot, flags, file, offset, err);
    bool htlbfs = file && file->kind == VMSI_FILE_HTLBFS;
    if (st == VMS_OK && htlbfs)
        size = file->hpage; /* a hugetlbfs file: its mount's page size */
    else if (st == VMS_OK)
        st = huge_size(k, flags, &size, err);
    if (st != VMS_OK)
        return st;
    uint64_t align = vms_pgsize_bytes(size);
    uint64_t l = page_align(len, align);
    if (len == 0 || l < len || l > vmsi_task_size(k))
        return vmsi_err(err, VMS_ERR_INVAL, "mmap: length %llu", (unsigned long long)len);
    if (htlbfs && (offset & (align - 1)))
        return vmsi_err(err, VMS_ERR_INVAL, "mmap: offset %llx is not huge-page aligned",
                        (unsigned long long)offset);
    vms_file *obj = file;
    if (!file && (flags & VMS_MAP_SHARED) && size != VMS_PG_4K) {
        /* shared anonymous huge pages: an unnamed hugetlbfs file (hugetlb_file_setup) */
        st = vmsi_hugetlbfs_new(k, size, l, &obj, err);
        if (st != VMS_OK)
            return st;
        htlbfs = true;
    } else if (!file && (flags & VMS_MAP_SHARED)) { /* shared anonymous: a shmem object */
        st = vmsi_file_new(k, VMSI_FILE_ANON, l, &obj, err);
        if (st != VMS_OK)
            return st;
    } else if (obj) {
        vmsi_file_get(obj);
    }
    uint64_t start = 0;
    /* hugetlb: reserve the pool pages now (ENOMEM when there are too few): a shared
     * mapping of a file those its resv_map lacks, any other the mapping's pages. */
    bool noresv = flags & VMS_MAP_NORESERVE;
    bool fresv = htlbfs && (flags & VMS_MAP_SHARED) && !noresv;
    bool resv = !fresv && !noresv && vmsi_hugetlb_pooled(k, size);
    int64_t npages = (int64_t)(l / align);
    uint64_t first = offset / align;
    if (fresv)
        st = vmsi_hugetlbfs_reserve(k, obj, first, (uint64_t)npages, err);
    else if (resv)
        st = vmsi_hugetlb_reserve(k, size, npages, err);
    resv = resv && st == VMS_OK;
    fresv = fresv && st == VMS_OK;
    if (st == VMS_OK)
        st = place(k, t, addr, l, align, flags, &start, err);
    vmsi_vma v = {start, start + l,
                  prot,  vma_flags(flags, obj, size),
                  obj,   obj ? offset >> VMS_PAGE_SHIFT : 0};
    if (st == VMS_OK)
        st = vmsi_vma_insert(mm, &v, err);
    if (fresv)
        vmsi_hugetlbfs_reserve_done(k, obj, first, (uint64_t)npages, st == VMS_OK);
    if (st != VMS_OK) {
        if (obj)
            vmsi_file_put(k, obj);
        if (resv) /* the reservation was made: undo it */
            vmsi_hugetlb_reserve(k, size, -npages, NULL);
        return st;
    }
    /* hugetlbfs_file_mmap: a writable mapping extends the file to its end. */
    if (htlbfs && (prot & VMS_PROT_WRITE) && offset + l > obj->size) {
        obj->size = offset + l;
        obj->npages = obj->size >> VMS_PAGE_SHIFT;
    }
    vmsi_vma_merge_around(mm, v.start, v.end);
    *out = start;
    if (flags & (VMS_MAP_POPULATE | VMS_MAP_LOCKED))
        return populate_status(k, t, v.start, v.end, err);
    return VMS_OK;
}

/* ---- mprotect ------------------------------------------------------------------------- */

/* Rewrite a leaf for its VMA's new protection: keep the frame, A, D and PS; grant write
 * only where the old entry had it (COW and zero pages stay read-only and fault). */
static void protect_one(vmsi_mm *mm, uint64_t va, uint64_t ptep, uint64_t pte, vms_pgsize size,
                        void *ud)
{
    (void)ud;
    const vms_kernel *k = mm->k;
    if (vmsi_is_swap_pte(k, pte))
        return; /* swap-in maps it with the VMA's protection of that time */
    const vmsi_vma *v = vmsi_vma_lookup(mm, va);
    bool was_rw = vmsi_pte_write(k, pte);
    /* At the leaf's own size: a transparent huge page keeps its 2 MiB leaf. */
    uint64_t npte = vmsi_mk_pte_size(k, v, vmsi_pte_head_pfn(k, pte, size), was_rw, size);
    if (vmsi_pte_young(k, pte))
        npte = vmsi_pte_mkyoung(k, npte);
    if (vmsi_pte_dirty(k, pte))
        npte = vmsi_pte_mkdirty(k, npte);
    if (v->prot == VMS_PROT_NONE && was_rw)
        npte = vmsi_pte_mkwrite(k, npte); /* remembered, ignored while not present */
    vmsi_pte_set(mm, ptep, npte);
}

/* Split [start, end) out of its VMAs (both edges). */
static vms_status split_range(vmsi_mm *mm, uint64_t start, uint64_t end, vms_err *err)
{
    vms_status st = vmsi_vma_split(mm, start, err);
    return st == VMS_OK ? vmsi_vma_split(mm, end, err) : st;
}

static vms_status mapped_range(vmsi_mm *mm, const char *name, uint64_t start, uint64_t end,
                               vms_err *err)
{
    if (!vmsi_vma_range_mapped(mm, start, end))
        return vmsi_err(err, VMS_ERR_RANGE, "%s: [%llx, %llx) is not fully mapped", name,
                        (unsigned long long)start, (unsigned long long)end);
    for (vmsi_vma *v = vmsi_vma_lookup(mm, start); v && v->start < end; v++) {
        uint64_t align = vms_pgsize_bytes(vmsi_vma_pgsize(v)) - 1;
        if ((start > v->start && (start & align)) || (end < v->end && (end & align)))
            return vmsi_err(err, VMS_ERR_INVAL, "%s: not aligned to the huge page size", name);
        if (v == &mm->vma[mm->nvma - 1])
            break;
    }
    return VMS_OK;
}

/* do_mprotect_pkey: mprotect, and with pkey >= 0 the key of the range too. */
static vms_status mprotect_pkey(vms_kernel *k, vms_task *t, uint64_t addr, uint64_t len,
                                unsigned prot, int pkey, vms_err *err)
{
    const char *name = pkey < 0 ? "mprotect" : "pkey_mprotect";
    vmsi_mm *mm = sys_enter(k, t, name, err);
    uint64_t end;
    if (!mm)
        return sys_refused(k);
    if (prot & ~7u)
        return vmsi_err(err, VMS_ERR_INVAL, "%s: prot %#x", name, prot);
    if (pkey >= 0 && (pkey >= VMS_NR_PKEYS || !((mm->pkey_map >> pkey) & 1u)))
        return vmsi_err(err, VMS_ERR_INVAL, "pkey_mprotect: pkey %d is not allocated", pkey);
    vms_status st = user_range(k, name, addr, len, &end, err);
    if (st == VMS_OK)
        st = mapped_range(mm, name, addr, end, err);
    if (st == VMS_OK)
        st = split_range(mm, addr, end, err);
    if (st != VMS_OK)
        return st;
    for (vmsi_vma *v = vmsi_vma_lookup(mm, addr); v && v->start < end; v++) {
        v->prot = prot;
        if (pkey >= 0)
            v->flags = (v->flags & ~VMSI_VM_PKEY_MASK) | (unsigned)pkey << VMSI_VM_PKEY_SHIFT;
        if (v == &mm->vma[mm->nvma - 1])
            break;
    }
    vmsi_pte_range(mm, addr, end, protect_one, NULL);
    vmsi_flush_tlb_mm_range(k, mm, t->core, addr, end, VMSI_FLUSH_GATHER);
    vmsi_vma_merge_around(mm, addr, end);
    return VMS_OK;
}

vms_status vms_sys_mprotect(vms_kernel *k, vms_task *t, uint64_t addr, uint64_t len, unsigned prot,
                            vms_err *err)
{
    return mprotect_pkey(k, t, addr, len, prot, -1, err);
}

vms_status vms_sys_pkey_mprotect(vms_kernel *k, vms_task *t, uint64_t addr, uint64_t len,
                                 unsigned prot, int pkey, vms_err *err)
{
    if (pkey < -1)
        return vmsi_err(err, VMS_ERR_INVAL, "pkey_mprotect: pkey %d", pkey);
    return mprotect_pkey(k, t, addr, len, prot, pkey, err);
}

/* ---- protection keys (arch/x86/kernel/fpu/xstate.c, mm/mprotect.c) ---- */

vms_status vms_sys_pkey_alloc(vms_kernel *k, vms_task *t, unsigned flags, unsigned rights,
                              int *pkey, vms_err *err)
{
    *pkey = -1;
    vmsi_mm *mm = sys_enter(k, t, "pkey_alloc", err);
    if (!mm)
        return sys_refused(k);
    if (flags || (rights & ~(unsigned)(VMS_PKEY_DISABLE_ACCESS | VMS_PKEY_DISABLE_WRITE)))
        return vmsi_err(err, VMS_ERR_INVAL, "pkey_alloc: flags %#x, rights %#x", flags, rights);
    if (!k->pke)
        return vmsi_err(err, VMS_ERR_UNSUPPORTED,
                        "pkey_alloc: no protection keys (ENOSPC): CR4.PKE is off");
    for (int key = 1; key < VMS_NR_PKEYS; key++) {
        if ((mm->pkey_map >> key) & 1u)
            continue;
        mm->pkey_map = (uint16_t)(mm->pkey_map | 1u << key);
        /* arch_set_user_pkey_access: this thread's AD/WD for the key, from rights. */
        uint32_t bits = (uint32_t)(rights & 3u) << (2 * key);
        t->pkru = (t->pkru & ~(UINT32_C(3) << (2 * key))) | bits;
        *pkey = key;
        return VMS_OK;
    }
    return vmsi_err(err, VMS_ERR_UNSUPPORTED, "pkey_alloc: all %d keys taken (ENOSPC)",
                    VMS_NR_PKEYS - 1);
}

vms_status vms_sys_pkey_free(vms_kernel *k, vms_task *t, int pkey, vms_err *err)
{
    vmsi_mm *mm = sys_enter(k, t, "pkey_free", err);
    if (!mm)
        return sys_refused(k);
    if (pkey < 1 || pkey >= VMS_NR_PKEYS || !((mm->pkey_map >> pkey) & 1u))
        return vmsi_err(err, VMS_ERR_INVAL, "pkey_free: pkey %d is not allocated", pkey);
    mm->pkey_map = (uint16_t)(mm->pkey_map & ~(1u << pkey)); /* pages keep their key */
    return VMS_OK;
}

vms_status vms_task_wrpkru(vms_kernel *k, vms_task *t, uint32_t pkru, vms_err *err)
{
    if (!k->pke)
        return vmsi_err(err, VMS_ERR_UNSUPPORTED, "WRPKRU: #UD, CR4.PKE is off");
    if (!t || t->proc->state != VMS_TASK_RUNNING)
        return vmsi_err(err, VMS_ERR_INVAL, "WRPKRU: no running task");
    t->pkru = pkru;
    return VMS_OK;
}

uint32_t vms_task_pkru(const vms_task *t)
{
    return t->pkru;
}

/* ---- brk ------------------------------------------------------------------------------ */

vms_status vms_sys_brk(vms_kernel *k, vms_task *t, uint64_t brk, uint64_t *out, vms_err *err)
{
    vmsi_mm *mm = sys_enter(k, t, "brk", err);
    if (!mm)
        return sys_refused(k);
    *out = mm->brk;
    if (brk < mm->start_brk || brk > vmsi_task_size(k))
        return VMS_OK; /* a query, or an impossible request: the break stays */
    uint64_t old_end = page_align(mm->brk, VMS_PAGE_SIZE);
    uint64_t new_end = page_align(brk, VMS_PAGE_SIZE);
    vms_status st = VMS_OK;
    if (new_end < old_end) {
        st = vmsi_do_munmap(k, mm, t->core, new_end, old_end, err);
    } else if (new_end > old_end) {
        if (!vmsi_vma_range_free(mm, old_end, new_end + VMSI_STACK_GUARD_GAP))
            return VMS_OK; /* would collide: Linux returns the old break */
        vmsi_vma v = {old_end, new_end, VMS_PROT_READ | VMS_PROT_WRITE, VMSI_VM_ANON | VMSI_VM_HEAP,
                      NULL,    0};
        st = vmsi_vma_insert(mm, &v, err);
        if (st == VMS_OK)
            vmsi_vma_merge_around(mm, old_end, new_end);
    }
    if (st == VMS_OK)
        mm->brk = *out = brk;
    return st;
}

/* ---- mlock / munlock -------------------------------------------------------------------- */

static void relock_one(vmsi_mm *mm, uint64_t va, uint64_t ptep, uint64_t pte, vms_pgsize size,
                       void *ud)
{
    (void)va;
    (void)ptep;
    (void)ud;
    uint64_t pfn = vmsi_pte_head_pfn(mm->k, pte, size);
    if (vmsi_pte_mapped(mm->k, pte) && !vmsi_is_zero_pfn(mm->k, pfn))
        vmsi_update_mlock(mm->k, pfn);
}

static vms_status do_mlock(vms_kernel *k, vms_task *t, uint64_t addr, uint64_t len, bool on,
                           vms_err *err)
{
    const char *name = on ? "mlock" : "munlock";
    vmsi_mm *mm = sys_enter(k, t, name, err);
    uint64_t end;
    if (!mm)
        return sys_refused(k);
    vms_status st =
        user_range(k, name, addr & ~VMS_PAGE_MASK, len + (addr & VMS_PAGE_MASK), &end, err);
    addr &= ~VMS_PAGE_MASK;
    if (st == VMS_OK)
        st = mapped_range(mm, name, addr, end, err);
    if (st == VMS_OK)
        st = split_range(mm, addr, end, err);
    if (st != VMS_OK)
        return st;
    for (vmsi_vma *v = vmsi_vma_lookup(mm, addr); v && v->start < end; v++) {
        v->flags = on ? (v->flags | VMSI_VM_LOCKED) : (v->flags & ~(unsigned)VMSI_VM_LOCKED);
        if (v == &mm->vma[mm->nvma - 1])
            break;
    }
    if (on)
        st = populate_status(k, t, addr, end, err);
    vmsi_pte_range(mm, addr, end, relock_one, NULL);
    vmsi_vma_merge_around(mm, addr, end);
    return st;
}

vms_status vms_sys_mlock(vms_kernel *k, vms_task *t, uint64_t addr, uint64_t len, vms_err *err)
{
    return do_mlock(k, t, addr, len, true, err);
}

vms_status vms_sys_munlock(vms_kernel *k, vms_task *t, uint64_t addr, uint64_t len, vms_err *err)
{
    return do_mlock(k, t, addr, len, false, err);
}

/* ---- madvise / msync ---------------------------------------------------------------------- */

/* MADV_HUGEPAGE / MADV_NOHUGEPAGE (Linux hugepage_madvise): set the VMA flag over
 * [start, end), splitting VMAs at its edges (and a huge page across one); huge pages
 * already there stay. Parts of the range without a VMA: VMS_ERR_RANGE (Linux ENOMEM),
 * after the mapped parts changed. */
static vms_status hugepage_madvise(vmsi_mm *mm, uint64_t start, uint64_t end, bool on, vms_err *err)
{
    vms_status st = split_range(mm, start, end, err);
    if (st != VMS_OK)
        return st;
    for (vmsi_vma *v = vmsi_vma_find(mm, start); v && v->start < end; v++) {
        v->flags &= ~(unsigned)(VMSI_VM_HUGEPAGE | VMSI_VM_NOHUGEPAGE);
        v->flags |= on ? VMSI_VM_HUGEPAGE : VMSI_VM_NOHUGEPAGE;
        if (v == &mm->vma[mm->nvma - 1])
            break;
    }
    vmsi_vma_merge_around(mm, start, end);
    return vmsi_vma_range_mapped(mm, start, end)
               ? VMS_OK
               : vmsi_err(err, VMS_ERR_RANGE, "madvise: part of the range is not mapped");
}

vms_status vms_sys_madvise(vms_kernel *k, vms_task *t, uint64_t addr, uint64_t len, int advice,
                           vms_err *err)
{
    vmsi_mm *mm = sys_enter(k, t, "madvise", err);
    uint64_t end;
    if (!mm)
        return sys_refused(k);
    if (advice != VMS_MADV_DONTNEED && advice != VMS_MADV_HUGEPAGE && advice != VMS_MADV_NOHUGEPAGE)
        return vmsi_err(err, VMS_ERR_UNSUPPORTED, "madvise: advice %d", advice);
    vms_status st = user_range(k, "madvise", addr, len, &end, err);
    if (st != VMS_OK)
        return st;
    if (advice != VMS_MADV_DONTNEED)
        return hugepage_madvise(mm, addr, end, advice == VMS_MADV_HUGEPAGE, err);
    /* A huge page partly in the range is split first (Linux zap_pmd_range). */
    uint64_t hmask = (UINT64_C(1) << 21) - 1;
    st = (addr & hmask) ? vmsi_thp_split_at(mm, addr) : VMS_OK;
    if (st == VMS_OK && (end & hmask))
        st = vmsi_thp_split_at(mm, end);
    if (st != VMS_OK)
        return vmsi_err(err, st, "madvise: out of frames splitting a huge page");
    for (vmsi_vma *v = vmsi_vma_find(mm, addr); v && v->start < end; v++) {
        if (v->flags & VMSI_VM_LOCKED)
            return vmsi_err(err, VMS_ERR_INVAL, "madvise: DONTNEED on a locked mapping");
        if (v == &mm->vma[mm->nvma - 1])
            break;
    }
    zap_range(k, mm, t->core, addr, end);
    vmsi_flush_tlb_mm_range(k, mm, t->core, addr, end, VMSI_FLUSH_GATHER);
    return vmsi_vma_range_mapped(mm, addr, end)
               ? VMS_OK
               : vmsi_err(err, VMS_ERR_RANGE, "madvise: part of the range is not mapped");
}

vms_status vms_sys_msync(vms_kernel *k, vms_task *t, uint64_t addr, uint64_t len, unsigned flags,
                         vms_err *err)
{
    vmsi_mm *mm = sys_enter(k, t, "msync", err);
    uint64_t end;
    if (!mm)
        return sys_refused(k);
    if ((flags & ~7u) || ((flags & VMS_MS_ASYNC) && (flags & VMS_MS_SYNC)))
        return vmsi_err(err, VMS_ERR_INVAL, "msync: flags %#x", flags);
    vms_status st = user_range(k, "msync", addr, len, &end, err);
    if (st != VMS_OK)
        return st;
    if (!vmsi_vma_range_mapped(mm, addr, end))
        return vmsi_err(err, VMS_ERR_RANGE, "msync: [%llx, %llx) is not fully mapped",
                        (unsigned long long)addr, (unsigned long long)end);
    for (vmsi_vma *v = vmsi_vma_find(mm, addr); v && v->start < end; v++) {
        if ((v->flags & VMSI_VM_SHARED) && v->file) {
            uint64_t s = v->start > addr ? v->start : addr;
            uint64_t e = v->end < end ? v->end : end;
            uint64_t first = v->pgoff + ((s - v->start) >> VMS_PAGE_SHIFT);
            st = vmsi_file_writeback(k, v->file, first, first + ((e - s) >> VMS_PAGE_SHIFT),
                                     t->core, err);
            if (st != VMS_OK)
                return st;
        }
        if (v == &mm->vma[mm->nvma - 1])
            break;
    }
    return VMS_OK;
}
