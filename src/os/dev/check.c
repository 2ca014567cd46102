/*
 * check.c — the DMA layer's invariant checker (vms_dma_check): pins, IOMMU leaves, IOVA ranges
 * and statistics against recounts.
 * See dma_impl.h for the state and its invariants.
 */
#include <inttypes.h>
#include <stdlib.h>

#include "os/dev/dma_impl.h"

typedef struct leaf_ctx {
    uint64_t n;
} leaf_ctx;

static bool count_leaf(void *ud, uint64_t va, uint64_t ptep, uint64_t pte, vms_pgsize size)
{
    (void)va;
    (void)ptep;
    (void)size;
    if (pte & VMS_PTE_P)
        ((leaf_ctx *)ud)->n++;
    return true;
}

static vms_status check_dev(vms_kernel *k, const vms_dma_dev *d, vms_err *err)
{
    uint64_t pages = 0, prev_end = 0;
    for (size_t i = 0; i < d->nmaps; i++) {
        const dmap *m = &d->maps[i];
        if (!m->translated)
            continue;
        if (m->iova < VMSI_IOVA_BASE || m->iova < prev_end ||
            m->iova + (m->npages << VMS_PAGE_SHIFT) > VMSI_IOVA_LIMIT)
            return vmsi_err(err, VMS_ERR_INVAL, "dma: %s: IOVA 0x%" PRIx64 " overlaps or escapes",
                            vms_dev_name(d->dev), m->iova);
        prev_end = m->iova + (m->npages << VMS_PAGE_SHIFT);
        uint64_t want = (m->dir != VMS_DMA_FROM_DEVICE ? VMS_PTE_US : 0) |
                        (m->dir != VMS_DMA_TO_DEVICE ? VMS_PTE_RW : 0) | VMS_PTE_P;
        for (uint64_t p = 0; p < m->npages; p++) {
            uint64_t pte = 0;
            if (!vms_pt_lookup(&d->pt, m->iova + (p << VMS_PAGE_SHIFT), &pte, NULL, NULL) ||
                vms_pte_pfn(pte) != m->pfns[p] ||
                (pte & (VMS_PTE_P | VMS_PTE_US | VMS_PTE_RW)) != want)
                return vmsi_err(err, VMS_ERR_INVAL,
                                "dma: %s: IOVA 0x%" PRIx64 " not mapped to pfn 0x%" PRIx64
                                " with the direction's rights",
                                vms_dev_name(d->dev), m->iova + (p << VMS_PAGE_SHIFT), m->pfns[p]);
        }
        pages += m->npages;
    }
    if (d->pt.root) {
        leaf_ctx c = {0};
        vms_pt_foreach(&d->pt, 0, UINT64_C(1) << 47, count_leaf, &c);
        if (c.n != pages)
            return vmsi_err(err, VMS_ERR_INVAL,
                            "dma: %s: %" PRIu64 " IOMMU leaves, %" PRIu64 " mapped pages",
                            vms_dev_name(d->dev), c.n, pages);
        if (vms_pt_count_tables(&d->pt) != d->table_pages)
            return vmsi_err(err, VMS_ERR_INVAL, "dma: %s: table pages miscounted",
                            vms_dev_name(d->dev));
    }
    (void)k;
    return VMS_OK;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

vms_status vms_dma_check(vms_kernel *k, vms_err *err)
{
    vmsi_dma *D = k->dma;
    uint64_t n = 0, iova = 0, tables = 0;
    for (size_t i = 0; D && i < D->ndevs; i++) {
        vms_status st = check_dev(k, D->devs[i], err);
        if (st != VMS_OK)
            return st;
        tables += D->devs[i]->table_pages;
        for (size_t j = 0; j < D->devs[i]->nmaps; j++) {
            const dmap *m = &D->devs[i]->maps[j];
            iova += m->translated ? m->npages : 0;
            for (uint64_t p = 0; !m->kernel && p < m->npages; p++)
                n += m->pfns[p] != k->zero_pfn;
        }
    }
    uint64_t *heads = n ? vmsi_calloc(k->a, n, sizeof *heads) : NULL;
    if (n && !heads)
        return vmsi_err(err, VMS_ERR_NOMEM, "dma check: out of host memory");
    size_t h = 0;
    for (size_t i = 0; D && i < D->ndevs; i++)
        for (size_t j = 0; j < D->devs[i]->nmaps; j++) {
            const dmap *m = &D->devs[i]->maps[j];
            for (uint64_t p = 0; !m->kernel && p < m->npages; p++)
                if (m->pfns[p] != k->zero_pfn)
                    vms_frames_head(k->fr, m->pfns[p], &heads[h++], NULL);
        }
    if (h)
        qsort(heads, h, sizeof *heads, cmp_u64);
    vms_status st = VMS_OK;
    uint64_t pinned_frames = 0;
    for (size_t i = 0; i < h && st == VMS_OK;) {
        size_t j = i;
        while (j < h && heads[j] == heads[i])
            j++;
        vms_frame *f = vms_frames_meta(k->fr, heads[i]);
        if (!f || f->pincount != j - i)
            st = vmsi_err(err, VMS_ERR_INVAL, "dma: pfn 0x%" PRIx64 " pinned %u times, %zu by DMA",
                          heads[i], f ? f->pincount : 0, j - i);
        pinned_frames += f ? UINT64_C(1) << f->order : 0;
        i = j;
    }
    vmsi_free(k->a, heads, n * sizeof *heads);
    if (st != VMS_OK)
        return st;
    if (vms_frames_count(k->fr, VMS_FRAME_PINNED) != pinned_frames)
        return vmsi_err(err, VMS_ERR_INVAL, "dma: %" PRIu64 " frames pinned, %" PRIu64 " by DMA",
                        vms_frames_count(k->fr, VMS_FRAME_PINNED), pinned_frames);
    if (D && (D->st.pinned_pages != n || D->st.iova_pages != iova || D->st.table_pages != tables))
        return vmsi_err(err, VMS_ERR_INVAL, "dma: pinned/IOVA/table counters disagree");
    return VMS_OK;
}
