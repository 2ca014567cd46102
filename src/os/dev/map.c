/*
 * map.c — mappings (Linux kernel/dma/mapping.c): dma_map_single and dma_unmap_single on a user
 * buffer, IOVAs and IOMMU entries for a translated device or physical segments otherwise, and
 * the cache maintenance of a non-coherent device (Linux kernel/dma/direct.h).
 * See dma_impl.h for the state and its invariants.
 */
#include <inttypes.h>
#include <string.h>

#include "os/dev/dma_impl.h"

static void dmap_free(vms_kernel *k, dmap *m)
{
    vmsi_free(k->a, m->pfns, m->npages * sizeof *m->pfns);
    vmsi_free(k->a, m->segs, m->npages * sizeof *m->segs);
}

/* Clear the IOMMU entries of m's first n pages and invalidate them. */
static void iommu_clear(vms_dma_dev *d, const dmap *m, uint64_t n, unsigned core)
{
    vms_kernel *k = d->k;
    if (!m->translated || !n)
        return;
    for (uint64_t i = 0; i < n; i++)
        if (vms_pt_unmap(&d->pt, m->iova + (i << VMS_PAGE_SHIFT), true, NULL) == VMS_OK)
            k->dma->st.iommu_ptes_cleared++;
    vmsi_dma_charge(k, core, (uint64_t)k->dma->cost.unmap_page * n);
    /* Always, even for entries a device never used: no caller sees a stale IOTLB entry. */
    vms_iommu_inv_range(vmsi_dma_iommu(d), d->did, m->iova, n << VMS_PAGE_SHIFT);
    k->dma->st.iotlb_invalidations++;
    vmsi_dma_charge(k, core, k->dma->cost.iotlb_inv);
}

/* Physical segments of m: runs of contiguous frames. */
static void phys_segments(dmap *m)
{
    uint64_t off = m->va & VMS_PAGE_MASK, left = m->len;
    m->nsegs = 0;
    for (uint64_t i = 0; i < m->npages; i++) {
        uint64_t pa = (m->pfns[i] << VMS_PAGE_SHIFT) + off;
        uint64_t n = VMS_PAGE_SIZE - off < left ? VMS_PAGE_SIZE - off : left;
        vms_dma_seg *last = m->nsegs ? &m->segs[m->nsegs - 1] : NULL;
        if (last && last->addr + last->len == pa)
            last->len += n;
        else
            m->segs[m->nsegs++] = (vms_dma_seg){pa, n};
        left -= n;
        off = 0;
    }
    m->dma_addr = m->segs[0].addr;
}

/* Write m's IOMMU entries at m->iova; on failure clear what was written. */
static vms_status iommu_fill(vms_dma_dev *d, dmap *m, unsigned core, vms_err *err)
{
    vms_kernel *k = d->k;
    uint64_t flags = (m->dir != VMS_DMA_FROM_DEVICE ? VMS_PTE_US : 0) |
                     (m->dir != VMS_DMA_TO_DEVICE ? VMS_PTE_RW : 0);
    for (uint64_t i = 0; i < m->npages; i++) {
        vms_status st = vms_pt_map(&d->pt, m->iova + (i << VMS_PAGE_SHIFT),
                                   m->pfns[i] << VMS_PAGE_SHIFT, VMS_PG_4K, flags, err);
        if (st != VMS_OK) {
            iommu_clear(d, m, i, core);
            if (st == VMS_ERR_NOTFOUND || st == VMS_ERR_NOMEM) /* table frame: no RAM/host */
                return vmsi_err(err, st, "dma map: no frame for an IOMMU table");
            return st;
        }
        k->dma->st.iommu_ptes_set++;
    }
    vmsi_dma_charge(k, core, (uint64_t)k->dma->cost.map_page * m->npages);
    m->segs[0] = (vms_dma_seg){m->iova + (m->va & VMS_PAGE_MASK), m->len};
    m->nsegs = 1;
    m->dma_addr = m->segs[0].addr;
    return VMS_OK;
}

/* Insert m into d's sorted array at pos (translated) or at the end. */
static vms_status insert_map(vms_dma_dev *d, const dmap *m, size_t pos, vms_err *err)
{
    vms_kernel *k = d->k;
    if (!vmsi_grow_to(k->a, (void **)&d->maps, &d->cap, d->nmaps + 1, sizeof *d->maps, 8))
        return vmsi_err(err, VMS_ERR_NOMEM, "dma map: out of host memory");
    memmove(&d->maps[pos + 1], &d->maps[pos], (d->nmaps - pos) * sizeof *m);
    d->maps[pos] = *m;
    d->nmaps++;
    return VMS_OK;
}

/*
 * The common half of map: m has va, len, npages, dir and pfns filled (pinned unless
 * kernel). Give it IOVAs and IOMMU entries (translated) or physical segments, and
 * record it. On failure the caller still owns the pins.
 */
static vms_status map_pages(vms_dma_dev *d, dmap *m, unsigned core, vms_err *err)
{
    size_t pos = d->nmaps;
    m->translated = vms_dma_translated(d);
    if (!m->translated) {
        phys_segments(m);
    } else {
        if (!vmsi_iova_alloc(d, m->npages, &m->iova, &pos))
            return vmsi_err(err, VMS_ERR_NOTFOUND, "dma map: %s: out of IOVA space",
                            vms_dev_name(d->dev));
        vms_status st = iommu_fill(d, m, core, err);
        if (st != VMS_OK)
            return st;
    }
    vms_status st = insert_map(d, m, pos, err);
    if (st != VMS_OK) {
        iommu_clear(d, m, m->npages, core);
        return st;
    }
    if (m->translated)
        d->k->dma->st.iova_pages += m->npages;
    d->st.mapped_pages += m->npages;
    return VMS_OK;
}

static vms_status dmap_alloc(vms_kernel *k, dmap *m, vms_err *err)
{
    m->pfns = vmsi_calloc(k->a, m->npages, sizeof *m->pfns);
    m->segs = vmsi_calloc(k->a, m->npages, sizeof *m->segs);
    if (!m->pfns || !m->segs) {
        dmap_free(k, m);
        return vmsi_err(err, VMS_ERR_NOMEM, "dma map: out of host memory");
    }
    return VMS_OK;
}

vms_status vms_dma_map(vms_kernel *k, vms_dma_dev *d, vms_task *t, uint64_t va, uint64_t len,
                       vms_dma_dir dir, uint64_t *dma_addr, vms_err *err)
{
    *dma_addr = 0;
    if (!t || !t->proc->mm || !len || va + len < va || va + len > vmsi_task_size(k) ||
        (unsigned)dir > VMS_DMA_FROM_DEVICE) {
        k->dma->st.map_failures++;
        return vmsi_err(err, VMS_ERR_INVAL, "dma map: %s",
                        !t || !t->proc->mm ? "the task is not running" : "bad range or direction");
    }
    dmap m = {.va = va, .len = len, .dir = dir, .pid = t->proc->pid};
    memcpy(m.comm, t->proc->name, sizeof m.comm);
    m.npages =
        (((va + len + VMS_PAGE_MASK) & ~VMS_PAGE_MASK) - (va & ~VMS_PAGE_MASK)) >> VMS_PAGE_SHIFT;
    vmsi_charge(k, t->core, k->cfg.cost.syscall);
    vms_status st = vmsi_dma_check_vmas(t->proc->mm, va, len, dir, err);
    if (st == VMS_OK)
        st = dmap_alloc(k, &m, err);
    if (st != VMS_OK) {
        k->dma->st.map_failures++;
        return st;
    }
    st = vmsi_dma_pin_user(k, t, &m, err);
    if (st == VMS_OK) {
        st = map_pages(d, &m, t->core, err);
        if (st != VMS_OK)
            vmsi_dma_unpin_pages(k, &m, m.npages, t->core);
    }
    if (st != VMS_OK) {
        dmap_free(k, &m);
        k->dma->st.map_failures++;
        vms_dma_poll_faults(k);
        return st;
    }
    k->dma->st.maps++;
    d->st.maps++;
    *dma_addr = m.dma_addr;
    /* dma_map_single: the device owns the buffer now; clean the CPU's dirty lines. */
    (void)vms_dma_sync_for_device(k, d, m.dma_addr, m.len, NULL, NULL);
    vms_dma_poll_faults(k);
    return VMS_OK;
}

/*
 * Clean (for the device) or invalidate (for the CPU) the caches over the bytes
 * [dma_addr, dma_addr + len) of mapping m, page piece by page piece, as
 * arch_sync_dma_for_device / arch_sync_dma_for_cpu do by physical address. Byte o of a
 * mapping is the byte at va + o (its segments follow the buffer in order). Returns the
 * cache lines affected.
 */
static uint64_t sync_range(vms_kernel *k, const dmap *m, uint64_t dma_addr, uint64_t len,
                           bool for_cpu)
{
    uint64_t off = 0, n = 0;
    for (size_t s = 0; s < m->nsegs; s++) {
        if (dma_addr >= m->segs[s].addr && dma_addr - m->segs[s].addr < m->segs[s].len) {
            off += dma_addr - m->segs[s].addr;
            break;
        }
        off += m->segs[s].len;
    }
    if (off >= m->len)
        return 0;
    if (len > m->len - off)
        len = m->len - off;
    while (len) {
        uint64_t va = m->va + off, in_page = VMS_PAGE_SIZE - (va & VMS_PAGE_MASK);
        uint64_t piece = len < in_page ? len : in_page;
        uint64_t idx = (va >> VMS_PAGE_SHIFT) - (m->va >> VMS_PAGE_SHIFT);
        uint64_t pa = m->pfns[idx] << VMS_PAGE_SHIFT | (va & VMS_PAGE_MASK);
        n += for_cpu ? vms_machine_cache_invalidate(k->m, pa, piece)
                     : vms_machine_cache_clean(k->m, pa, piece);
        off += piece;
        len -= piece;
    }
    return n;
}

/* dma_sync_single_for_{device,cpu}: nothing for a coherent device (dev_is_dma_coherent);
 * for the CPU nothing when the device only read (DMA_TO_DEVICE). */
static vms_status dma_sync(vms_kernel *k, vms_dma_dev *d, uint64_t dma_addr, uint64_t len,
                           bool for_cpu, uint64_t *lines, vms_err *err)
{
    if (lines)
        *lines = 0;
    long i = -1;
    for (size_t j = 0; j < d->nmaps && i < 0; j++)
        for (size_t s = 0; s < d->maps[j].nsegs; s++)
            if (dma_addr >= d->maps[j].segs[s].addr &&
                dma_addr - d->maps[j].segs[s].addr < d->maps[j].segs[s].len)
                i = (long)j;
    if (i < 0)
        return vmsi_err(err, VMS_ERR_NOTFOUND, "dma sync: %s has no mapping at 0x%" PRIx64,
                        vms_dev_name(d->dev), dma_addr);
    const dmap *m = &d->maps[i];
    if (vms_dev_coherent(d->dev) || (for_cpu && m->dir == VMS_DMA_TO_DEVICE))
        return VMS_OK;
    uint64_t n = sync_range(k, m, dma_addr, len, for_cpu);
    if (lines)
        *lines = n;
    return VMS_OK;
}

vms_status vms_dma_sync_for_device(vms_kernel *k, vms_dma_dev *d, uint64_t dma_addr, uint64_t len,
                                   uint64_t *lines, vms_err *err)
{
    return dma_sync(k, d, dma_addr, len, false, lines, err);
}

vms_status vms_dma_sync_for_cpu(vms_kernel *k, vms_dma_dev *d, uint64_t dma_addr, uint64_t len,
                                uint64_t *lines, vms_err *err)
{
    return dma_sync(k, d, dma_addr, len, true, lines, err);
}

/* Remove mapping i of d: clear, invalidate, unpin, free. */
void vmsi_dma_unmap_at(vms_dma_dev *d, size_t i, unsigned core)
{
    vms_kernel *k = d->k;
    dmap m = d->maps[i];
    memmove(&d->maps[i], &d->maps[i + 1], (d->nmaps - i - 1) * sizeof m);
    d->nmaps--;
    iommu_clear(d, &m, m.npages, core);
    if (m.translated)
        k->dma->st.iova_pages -= m.npages;
    d->st.mapped_pages -= m.npages;
    vmsi_dma_unpin_pages(k, &m, m.npages, core);
    if (m.kernel && m.pfns[0]) {
        vms_frames_set_flags(k->fr, m.pfns[0], 0, VMS_FRAME_KERNEL);
        vms_frames_put(k->fr, m.pfns[0], NULL);
    }
    dmap_free(k, &m);
}

long vmsi_dma_find_map(const vms_dma_dev *d, uint64_t dma_addr, bool containing)
{
    for (size_t i = 0; i < d->nmaps; i++) {
        const dmap *m = &d->maps[i];
        if (!containing && m->dma_addr == dma_addr && !m->kernel)
            return (long)i;
        for (size_t s = 0; containing && s < m->nsegs; s++)
            if (dma_addr >= m->segs[s].addr && dma_addr - m->segs[s].addr < m->segs[s].len)
                return (long)i;
    }
    return -1;
}

vms_status vms_dma_unmap(vms_kernel *k, vms_dma_dev *d, uint64_t dma_addr, vms_err *err)
{
    long i = vmsi_dma_find_map(d, dma_addr, false);
    if (i < 0)
        return vmsi_err(err, VMS_ERR_NOTFOUND, "dma unmap: %s has no mapping at 0x%" PRIx64,
                        vms_dev_name(d->dev), dma_addr);
    /* dma_unmap_single: the CPU owns the buffer again; drop its stale lines. */
    (void)vms_dma_sync_for_cpu(k, d, dma_addr, d->maps[i].len, NULL, NULL);
    vmsi_dma_unmap_at(d, (size_t)i, 0);
    k->dma->st.unmaps++;
    d->st.unmaps++;
    vms_dma_poll_faults(k);
    return VMS_OK;
}

size_t vms_dma_segments(const vms_dma_dev *d, uint64_t dma_addr, vms_dma_seg *out, size_t max)
{
    long i = vmsi_dma_find_map(d, dma_addr, true);
    if (i < 0)
        return 0;
    const dmap *m = &d->maps[i];
    for (size_t s = 0; s < m->nsegs && s < max; s++)
        out[s] = m->segs[s];
    return m->nsegs;
}

size_t vms_dma_mapping_count(const vms_dma_dev *d)
{
    size_t n = 0;
    for (size_t i = 0; i < d->nmaps; i++)
        n += !d->maps[i].kernel;
    return n;
}

/* A kernel buffer for the device (dma_alloc_coherent): one zeroed frame flagged KERNEL,
 * mapped bidirectionally. */
vms_status vmsi_dma_alloc_coherent(vms_dma_dev *d, uint64_t *pa, uint64_t *dma, vms_err *err)
{
    vms_kernel *k = d->k;
    dmap m = {.len = VMS_PAGE_SIZE, .npages = 1, .dir = VMS_DMA_BIDIRECTIONAL, .kernel = true};
    memcpy(m.comm, "kernel", 7);
    vms_status st = dmap_alloc(k, &m, err);
    if (st != VMS_OK)
        return st;
    st = vmsi_alloc_table_frame(k, &m.pfns[0]); /* zeroed, host bytes present */
    if (st != VMS_OK) {
        dmap_free(k, &m);
        return vmsi_err(err, st, "dma: no frame for a coherent buffer");
    }
    vms_frames_set_flags(k->fr, m.pfns[0], VMS_FRAME_KERNEL, VMS_FRAME_PAGETABLE);
    st = map_pages(d, &m, 0, err);
    if (st != VMS_OK) {
        vms_frames_set_flags(k->fr, m.pfns[0], 0, VMS_FRAME_KERNEL);
        vms_frames_put(k->fr, m.pfns[0], NULL);
        dmap_free(k, &m);
        return st;
    }
    *pa = m.pfns[0] << VMS_PAGE_SHIFT;
    *dma = m.dma_addr;
    return VMS_OK;
}
