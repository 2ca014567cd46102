/*
 * view.c — the DMA layer's views: statistics, the text of `show dma`, and the JSON members of
 * results.
 * See dma_impl.h for the state and its invariants.
 */
#include <inttypes.h>

#include "os/dev/dma_impl.h"

const vms_dma_stats *vms_dma_get_stats(const vms_kernel *k)
{
    static const vms_dma_stats zero;
    return k->dma ? &k->dma->st : &zero;
}

const vms_dma_dev_stats *vms_dma_dev_get_stats(const vms_dma_dev *d)
{
    return &d->st;
}

static const char *dir_str(vms_dma_dir dir)
{
    return dir == VMS_DMA_TO_DEVICE     ? "to-device"
           : dir == VMS_DMA_FROM_DEVICE ? "from-device"
                                        : "bidirectional";
}

static const char *mode_str(const vms_dma_dev *d)
{
    if (!vmsi_dma_iommu(d))
        return "no-iommu";
    if (!vms_iommu_enabled(vmsi_dma_iommu(d)))
        return "iommu-off";
    return d->mode == VMS_DMA_PASSTHROUGH ? "passthrough" : "translate";
}

static void show_map(vms_strbuf *sb, const dmap *m)
{
    if (m->kernel)
        vms_strbuf_printf(sb, "    0x%09" PRIx64 "-0x%09" PRIx64 " %-13s kernel buffer (rx ring)",
                          m->dma_addr, m->dma_addr + m->len, dir_str(m->dir));
    else
        vms_strbuf_printf(sb, "    0x%09" PRIx64 "-0x%09" PRIx64 " %-13s pid %d (%s) va 0x%" PRIx64,
                          m->dma_addr, m->dma_addr + m->len, dir_str(m->dir), m->pid, m->comm,
                          m->va);
    vms_strbuf_printf(sb, " pfn");
    for (uint64_t i = 0; i < m->npages && i < 8; i++)
        vms_strbuf_printf(sb, "%s0x%" PRIx64, i ? "," : " ", m->pfns[i]);
    vms_strbuf_printf(sb, "%s%s\n", m->npages > 8 ? ",…" : "", m->kernel ? "" : " pinned");
    if (!m->translated && m->nsegs > 1)
        for (size_t s = 0; s < m->nsegs; s++)
            vms_strbuf_printf(sb, "      segment 0x%" PRIx64 " len %" PRIu64 "\n", m->segs[s].addr,
                              m->segs[s].len);
}

vms_status vms_dma_show(vms_kernel *k, vms_strbuf *sb)
{
    vmsi_dma *D = k->dma;
    if (!D) {
        vms_strbuf_printf(sb, "no device attached\n");
        return sb->failed ? VMS_ERR_NOMEM : VMS_OK;
    }
    if (D->io) {
        const vms_iommu_stats *is = vms_iommu_get_stats(D->io);
        const vms_tlb_stats *ts = vms_tlb_get_stats(vms_iommu_iotlb(D->io));
        vms_strbuf_printf(sb,
                          "IOMMU %s: %" PRIu64 " translations, IOTLB %" PRIu64 " hits %" PRIu64
                          " misses (%u entries valid), %" PRIu64 " walks reading %" PRIu64
                          " entries, %" PRIu64 " faults, %" PRIu64 " invalidations\n",
                          vms_iommu_enabled(D->io) ? "on" : "off", is->translations, ts->hits,
                          ts->misses, vms_tlb_count(vms_iommu_iotlb(D->io)), is->walks,
                          is->walk_refs, is->faults,
                          is->inv_global + is->inv_domain + is->inv_device + is->inv_range);
    } else {
        vms_strbuf_printf(sb, "no IOMMU\n");
    }
    vms_strbuf_printf(sb,
                      "DMA API: %" PRIu64 " maps, %" PRIu64 " unmaps, %" PRIu64
                      " pages pinned, %" PRIu64 " IOMMU table pages, %" PRIu64 " interrupts\n",
                      D->st.maps, D->st.unmaps, D->st.pinned_pages, D->st.table_pages, D->st.irqs);
    for (size_t i = 0; i < D->ndevs; i++) {
        const vms_dma_dev *d = D->devs[i];
        vms_bdf b = vms_dev_bdf(d->dev);
        vms_strbuf_printf(sb, "%s %02x:%02x.%u %s", vms_dev_name(d->dev), vms_bdf_bus(b),
                          vms_bdf_dev(b), vms_bdf_fn(b), mode_str(d));
        if (d->pt.root)
            vms_strbuf_printf(sb, " domain %u root 0x%" PRIx64 " (%" PRIu64 " table pages)", d->did,
                              d->pt.root, d->table_pages);
        vms_strbuf_printf(sb, ", %zu mapping%s, %" PRIu64 " faults\n", vms_dma_mapping_count(d),
                          vms_dma_mapping_count(d) == 1 ? "" : "s", d->st.iommu_faults);
        for (size_t j = 0; j < d->nmaps; j++)
            show_map(sb, &d->maps[j]);
    }
    return sb->failed ? VMS_ERR_NOMEM : VMS_OK;
}

vms_status vms_dma_stats_json_members(vms_kernel *k, vms_strbuf *sb)
{
    const vms_dma_stats *s = vms_dma_get_stats(k);
    if (sb->len && sb->data[sb->len - 1] != '{' && sb->data[sb->len - 1] != ',')
        vms_strbuf_printf(sb, ",");
    vms_strbuf_printf(
        sb,
        "\"dma\":{\"maps\":%" PRIu64 ",\"unmaps\":%" PRIu64 ",\"map_failures\":%" PRIu64
        ",\"pins\":%" PRIu64 ",\"unpins\":%" PRIu64 ",\"pinned_pages\":%" PRIu64
        ",\"iova_pages\":%" PRIu64 ",\"iommu_ptes_set\":%" PRIu64 ",\"iommu_ptes_cleared\":%" PRIu64
        ",\"iotlb_invalidations\":%" PRIu64 ",\"table_pages\":%" PRIu64 ",\"irqs\":%" PRIu64
        ",\"iommu_faults\":%" PRIu64 ",\"mmio_reads\":%" PRIu64 ",\"mmio_writes\":%" PRIu64
        ",\"cycles\":%" PRIu64 ",\"devices\":[",
        s->maps, s->unmaps, s->map_failures, s->pins, s->unpins, s->pinned_pages, s->iova_pages,
        s->iommu_ptes_set, s->iommu_ptes_cleared, s->iotlb_invalidations, s->table_pages, s->irqs,
        s->iommu_faults, s->mmio_reads, s->mmio_writes, s->cycles);
    for (size_t i = 0; k->dma && i < k->dma->ndevs; i++) {
        const vms_dma_dev *d = k->dma->devs[i];
        vms_bdf b = vms_dev_bdf(d->dev);
        vms_strbuf_printf(
            sb,
            "%s{\"name\":\"%s\",\"bdf\":\"%02x:%02x.%u\",\"mode\":\"%s\",\"domain\":%u,"
            "\"mappings\":%zu,\"mapped_pages\":%" PRIu64 ",\"irqs\":%" PRIu64
            ",\"iommu_faults\":%" PRIu64 ",\"rx_packets\":%" PRIu64 ",\"rx_bytes\":%" PRIu64
            ",\"blk_cmds\":%" PRIu64 "}",
            i ? "," : "", vms_dev_name(d->dev), vms_bdf_bus(b), vms_bdf_dev(b), vms_bdf_fn(b),
            mode_str(d), d->pt.root ? d->did : 0u, vms_dma_mapping_count(d), d->st.mapped_pages,
            d->st.irqs, d->st.iommu_faults, d->st.rx_packets, d->st.rx_bytes, d->st.blk_cmds);
    }
    vms_strbuf_printf(sb, "]}");
    if (k->dma && k->dma->io) {
        vms_strbuf_printf(sb, ",\"iommu\":{");
        vms_iommu_stats_json_members(k->dma->io, sb);
        vms_strbuf_printf(sb, "}");
    }
    return sb->failed ? VMS_ERR_NOMEM : VMS_OK;
}
