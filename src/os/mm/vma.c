/*
 * vma.c — the set of virtual memory areas of an address space (the "segments" of
 * seed 004; Linux's maple tree of vm_area_struct, here a sorted array).
 *
 * Invariants (vmsi_vma_check): VMAs are sorted by start, disjoint, non-empty, page
 * aligned (huge ones aligned to their page size) and below TASK_SIZE; a VMA with an
 * object holds one reference on it. Adjacent VMAs are merged when they are compatible
 * (same prot, flags and object, contiguous object offsets), as Linux's vma_merge, so
 * that munmap-then-mmap of the same range gives back one line in /proc/PID/maps.
 * Lookups are binary searches: O(log n); inserts and removes shift the array: O(n).
 * vmsi_vma_find first tries the index it answered last (mm->vma_hint, Linux's old
 * vmacache): faults and maps come in runs inside one VMA. The hint needs no
 * invalidation: because VMAs are sorted and disjoint, index i is the answer for va
 * exactly when vma[i].end > va and i is 0 or vma[i - 1].end <= va, which it checks
 * (the debug build also checks it against the search).
 */
#include <assert.h>

#include "os/os_impl.h"
#include "os/mm/mm_impl.h"
#include "os/reclaim/reclaim_impl.h"

/* Index of the first VMA with end > va (nvma if none). */
static size_t find_idx(const vmsi_mm *mm, uint64_t va)
{
    size_t lo = 0, hi = mm->nvma;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (mm->vma[mid].end > va)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

vmsi_vma *vmsi_vma_find(vmsi_mm *mm, uint64_t va)
{
    size_t i = mm->vma_hint;
    if (i < mm->nvma && mm->vma[i].end > va && (i == 0 || mm->vma[i - 1].end <= va)) {
        assert(i == find_idx(mm, va));
        return &mm->vma[i];
    }
    i = find_idx(mm, va);
    mm->vma_hint = i;
    return i < mm->nvma ? &mm->vma[i] : NULL;
}

vmsi_vma *vmsi_vma_lookup(vmsi_mm *mm, uint64_t va)
{
    vmsi_vma *v = vmsi_vma_find(mm, va);
    return v && v->start <= va ? v : NULL;
}

static vms_status reserve(vmsi_mm *mm, size_t n, vms_err *err)
{
    if (mm->nvma + n <= mm->cap)
        return VMS_OK;
    size_t cap = mm->cap ? mm->cap * 2 : 16;
    while (cap < mm->nvma + n)
        cap *= 2;
    vmsi_vma *p = mm->k->a->realloc(mm->k->a->ud, mm->vma, mm->cap * sizeof *p, cap * sizeof *p);
    if (!p)
        return vmsi_err(err, VMS_ERR_NOMEM, "vma: out of host memory for %zu areas", cap);
    mm->vma = p;
    mm->cap = cap;
    return VMS_OK;
}

/* Insert v (which must not overlap any VMA); takes over v->file's reference. */
vms_status vmsi_vma_insert(vmsi_mm *mm, const vmsi_vma *v, vms_err *err)
{
    if (v->start >= v->end)
        return vmsi_err(err, VMS_ERR_INVAL, "vma: empty area");
    vms_status st = reserve(mm, 1, err);
    if (st != VMS_OK)
        return st;
    size_t i = find_idx(mm, v->start);
    memmove(&mm->vma[i + 1], &mm->vma[i], (mm->nvma - i) * sizeof *v);
    mm->vma[i] = *v;
    mm->nvma++;
    return VMS_OK;
}

/* Make va a VMA boundary: split the VMA containing va (if any, and va inside it). The
 * second half gets its own object reference. */
vms_status vmsi_vma_split(vmsi_mm *mm, uint64_t va, vms_err *err)
{
    vmsi_vma *v = vmsi_vma_lookup(mm, va);
    if (!v || v->start == va)
        return VMS_OK;
    /* A huge page may not straddle VMAs: split the one around va (Linux
     * vma_adjust_trans_huge). */
    vms_status st = (va & ((UINT64_C(1) << 21) - 1)) ? vmsi_thp_split_at(mm, va) : VMS_OK;
    if (st != VMS_OK)
        return vmsi_err(err, st, "vma: splitting the huge page at %llx: out of %s",
                        (unsigned long long)va, st == VMS_ERR_NOMEM ? "host memory" : "frames");
    v = vmsi_vma_lookup(mm, va); /* the split's allocations never move VMAs; be safe */
    st = reserve(mm, 1, err);
    if (st != VMS_OK)
        return st;
    size_t i = find_idx(mm, va);
    v = &mm->vma[i];
    memmove(&mm->vma[i + 1], &mm->vma[i], (mm->nvma - i) * sizeof *v);
    mm->nvma++;
    vmsi_vma *hi = &mm->vma[i + 1];
    v->end = va;
    hi->pgoff += (va - hi->start) >> VMS_PAGE_SHIFT;
    hi->start = va;
    if (hi->file)
        vmsi_file_get(hi->file);
    return VMS_OK;
}

/* Remove every VMA inside [start, end) (boundaries must already be split there),
 * dropping their object references. */
void vmsi_vma_remove_range(vmsi_mm *mm, uint64_t start, uint64_t end)
{
    size_t i = find_idx(mm, start), j = i;
    while (j < mm->nvma && mm->vma[j].start < end) {
        if (mm->vma[j].file)
            vmsi_file_put(mm->k, mm->vma[j].file);
        j++;
    }
    if (j > i) {
        memmove(&mm->vma[i], &mm->vma[j], (mm->nvma - j) * sizeof *mm->vma);
        mm->nvma -= j - i;
    }
}

static bool mergeable(const vmsi_vma *a, const vmsi_vma *b)
{
    if (a->end != b->start || a->prot != b->prot || a->flags != b->flags || a->file != b->file)
        return false;
    if (a->flags & (VMSI_VM_STACK | VMSI_VM_GROWSDOWN))
        return false;
    return !a->file || a->pgoff + ((a->end - a->start) >> VMS_PAGE_SHIFT) == b->pgoff;
}

/* Merge compatible neighbours of the VMAs overlapping [start, end]. */
void vmsi_vma_merge_around(vmsi_mm *mm, uint64_t start, uint64_t end)
{
    size_t i = find_idx(mm, start);
    if (i > 0)
        i--;
    while (i + 1 < mm->nvma && mm->vma[i].start <= end) {
        vmsi_vma *a = &mm->vma[i], *b = &mm->vma[i + 1];
        if (!mergeable(a, b)) {
            i++;
            continue;
        }
        a->end = b->end;
        if (b->file)
            vmsi_file_put(mm->k, b->file);
        memmove(b, b + 1, (mm->nvma - i - 2) * sizeof *b);
        mm->nvma--;
    }
}

bool vmsi_vma_range_mapped(vmsi_mm *mm, uint64_t start, uint64_t end)
{
    uint64_t va = start;
    while (va < end) {
        vmsi_vma *v = vmsi_vma_lookup(mm, va);
        if (!v)
            return false;
        va = v->end;
    }
    return true;
}

bool vmsi_vma_range_free(vmsi_mm *mm, uint64_t start, uint64_t end)
{
    vmsi_vma *v = vmsi_vma_find(mm, start);
    return !v || v->start >= end;
}

vms_status vmsi_vma_check(vmsi_mm *mm, vms_err *err)
{
    for (size_t i = 0; i < mm->nvma; i++) {
        const vmsi_vma *v = &mm->vma[i];
        uint64_t align = vms_pgsize_bytes(vmsi_vma_pgsize(v)) - 1;
        if (v->start >= v->end || (v->start & align) || (v->end & align) ||
            v->end > vmsi_task_size(mm->k))
            return vmsi_err(err, VMS_ERR_INVAL, "vma %zu [%llx, %llx) malformed", i,
                            (unsigned long long)v->start, (unsigned long long)v->end);
        if (i && mm->vma[i - 1].end > v->start)
            return vmsi_err(err, VMS_ERR_INVAL, "vma %zu [%llx, %llx) overlaps its predecessor", i,
                            (unsigned long long)v->start, (unsigned long long)v->end);
        if (!!v->file != !!(v->flags & (VMSI_VM_FILE | VMSI_VM_SHM)))
            return vmsi_err(err, VMS_ERR_INVAL, "vma %zu: object and flags disagree", i);
    }
    return VMS_OK;
}
