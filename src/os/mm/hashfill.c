/*
 * hashfill.c — the kernel's side of the hashed and inverted designs
 * (vmsim/arch/hashed.h), in Linux ppc64's grammar (arch/powerpc/mm/book3s64/hash_utils.c):
 *
 *   htab_initialize    at boot, a table in RAM sized from RAM (Linux's
 *                      htab_shift_for_mem_size: 1/128 of RAM rounded up to a power of
 *                      two, at least 256 KiB; the IPT: 16 bytes per frame and a
 *                      power-of-two anchor table of >= one anchor per frame), written to
 *                      every core's registers.
 *   hash_page          a page fault first asks: do the radix tables (the source of
 *                      truth) allow this access? The kernel reads them as the x86-64
 *                      walker would, setting A, and D on a write (as __hash_page_4K sets
 *                      _PAGE_ACCESSED and _PAGE_DIRTY), and inserts an entry for the 4 KiB
 *                      page: writable only when the radix PTE is writable and dirty, so a
 *                      first store faults again and sets D (htab_convert_pte_flags). The
 *                      fault ends there, counted in hash_faults, not pgfault. Otherwise
 *                      it is a real fault with the radix walk's error code.
 *   update_mmu_cache   after a real fault resolved, the entry is preloaded (hash_preload).
 *   flush_hash_page    when a radix PTE changes — every flush_tlb_mm_range, reclaim's
 *                      deferred flush (removed at once here), a PCID's release — the
 *                      entries it gave go, whichever cores run the mm: the table is
 *                      shared, so the per-core TLB protocol (lazy cores, generations)
 *                      does not cover it. A range of more pages than the table has groups
 *                      is removed by one scan of the table.
 *
 * The kernel half (addresses with bit 63 set) is context 0: kernel mappings change only
 * with ioremap/iounmap, whose INVPCID-all the design's flush_all follows by emptying the
 * table. The table's entries per context are counted (never under): a context with none
 * is not searched.
 */
#include "os/os_impl.h"

typedef struct vmsi_hash {
    vms_design design;
    vms_hpt hpt;
    vms_ipt ipt;
    uint32_t cursor;                  /* the HPT's eviction slot cursor */
    uint64_t pfn, order;              /* the frames the table (and the IPT's anchors) took */
    uint64_t table_bytes;             /* the entries' bytes (HPT: groups; IPT: entries + anchors) */
    uint64_t entries;                 /* entries the table holds */
    uint32_t live[VMSI_MAX_PCID + 1]; /* entries per context (an upper bound) */
} vmsi_hash;

static unsigned log2_ceil(uint64_t v)
{
    unsigned n = 0;
    while ((UINT64_C(1) << n) < v)
        n++;
    return n;
}

vms_status vmsi_hash_boot(vms_kernel *k, vms_err *err)
{
    const vms_machine_config *mc = vms_machine_get_config(k->m);
    if (mc->design == VMS_DESIGN_RADIX)
        return VMS_OK;
    if (!k->cfg.pcid)
        return vmsi_err(err, VMS_ERR_INVAL,
                        "design %s needs kernel.pcid on: the table is shared by every core and "
                        "tells address spaces apart by their PCID",
                        vms_design_name(mc->design));
    vmsi_hash *h = vmsi_zalloc(k->a, sizeof *h);
    if (!h)
        return vmsi_err(err, VMS_ERR_NOMEM, "kernel: out of host memory");
    h->design = mc->design;
    unsigned va_bits = k->fmt->va_bits;
    uint64_t bytes;
    if (h->design == VMS_DESIGN_HASHED) {
        unsigned shift = log2_ceil(mc->ram_bytes >> 7);
        bytes = UINT64_C(1) << (shift < 18 ? 18 : shift);
        h->table_bytes = bytes;
        h->entries = bytes / VMS_HPT_ENTRY_BYTES;
    } else {
        uint64_t low =
            mc->ram_bytes < VMS_DEVICE_WINDOW_BASE ? mc->ram_bytes : VMS_DEVICE_WINDOW_BASE;
        uint64_t top = mc->ram_bytes > low ? VMS_DEVICE_WINDOW_END + (mc->ram_bytes - low) : low;
        uint64_t nframes = top >> VMS_PAGE_SHIFT;
        unsigned hat_bits = log2_ceil(nframes);
        uint64_t ipt_bytes = nframes * VMS_IPT_ENTRY_BYTES;
        ipt_bytes = (ipt_bytes + VMS_PAGE_SIZE - 1) & ~(uint64_t)VMS_PAGE_MASK;
        h->ipt = (vms_ipt){0, nframes, 0, hat_bits, va_bits};
        h->table_bytes = nframes * VMS_IPT_ENTRY_BYTES + (VMS_IPT_HAT_BYTES << hat_bits);
        h->entries = nframes;
        bytes = ipt_bytes + ((uint64_t)VMS_IPT_HAT_BYTES << hat_bits);
    }
    unsigned order = log2_ceil((bytes + VMS_PAGE_SIZE - 1) >> VMS_PAGE_SHIFT);
    vms_status st = vmsi_alloc_frames(k, order, VMS_FRAME_KERNEL, &h->pfn, err);
    if (st != VMS_OK) {
        vmsi_free(k->a, h, sizeof *h);
        return vmsi_err(err, st, "design %s: no room for a %llu-byte table",
                        vms_design_name(mc->design), (unsigned long long)bytes);
    }
    h->order = order;
    uint64_t base = h->pfn << VMS_PAGE_SHIFT;
    if (h->design == VMS_DESIGN_HASHED) {
        h->hpt = (vms_hpt){base, bytes / VMS_HPT_GROUP_BYTES - 1, va_bits};
        for (unsigned i = 0; i < k->ncores; i++)
            vms_core_set_hpt(vmsi_core(k, i), &h->hpt);
    } else {
        h->ipt.base = base;
        h->ipt.hat = base + ((h->ipt.nframes * VMS_IPT_ENTRY_BYTES + VMS_PAGE_SIZE - 1) &
                             ~(uint64_t)VMS_PAGE_MASK);
        for (unsigned i = 0; i < k->ncores; i++)
            vms_core_set_ipt(vmsi_core(k, i), &h->ipt);
    }
    k->hash = h;
    vmsi_log(k, VMS_LOG_INFO, "design %s: %llu-byte table at 0x%llx", vms_design_name(h->design),
             (unsigned long long)h->table_bytes, (unsigned long long)base);
    return VMS_OK;
}

void vmsi_hash_destroy(vms_kernel *k)
{
    vmsi_hash *h = k->hash;
    if (!h)
        return;
    vms_frames_set_flags(k->fr, h->pfn, 0, VMS_FRAME_KERNEL);
    vms_frames_put(k->fr, h->pfn, NULL); /* the block's one reference */
    vmsi_free(k->a, h, sizeof *h);
    k->hash = NULL;
}

/* Drop n entries of ctx from the count (never below 0). */
static void forget(vmsi_hash *h, uint32_t ctx, uint64_t n)
{
    if (ctx <= VMSI_MAX_PCID)
        h->live[ctx] = h->live[ctx] > n ? h->live[ctx] - (uint32_t)n : 0;
}

static void remember(vmsi_hash *h, uint32_t ctx)
{
    if (ctx <= VMSI_MAX_PCID && h->live[ctx] < UINT32_MAX)
        h->live[ctx]++;
}

/* Insert the entry for the page of addr that the radix walk x gave. */
static vmsi_hash_ret insert(vms_kernel *k, vmsi_hash *h, uint32_t ctx, uint64_t addr,
                            const vms_xlate *x)
{
    uint64_t ea = addr & ~(uint64_t)VMS_PAGE_MASK;
    uint64_t pa = vms_xlate_pa(x, addr) & ~(uint64_t)VMS_PAGE_MASK;
    unsigned prot = (x->rw && x->dirty ? VMS_PGPROT_W : 0) | (x->us ? VMS_PGPROT_U : 0) |
                    (x->xd ? 0 : VMS_PGPROT_X);
    if (h->design == VMS_DESIGN_HASHED) {
        vms_hpt_slot s;
        uint64_t r = vms_hpt_mk_r(pa, prot, x->pkey, x->pcd, x->pwt);
        if (vms_hpt_insert(k->bus, &h->hpt, ctx, ea, r, &h->cursor, &s) != VMS_OK)
            return VMSI_HASH_UNMAPPABLE;
        if (s.evicted) {
            k->st.hash_evictions++;
            forget(h, s.evicted_ctx, 1);
        }
        if (!s.replaced)
            remember(h, ctx);
    } else {
        vms_ipt_slot s;
        uint64_t d0 = vms_ipt_mk_d0(&h->ipt, ea, prot, x->pkey, x->pcd, x->pwt);
        if (vms_ipt_insert(k->bus, &h->ipt, ctx, ea, pa >> VMS_PAGE_SHIFT, d0, &s) != VMS_OK)
            return VMSI_HASH_UNMAPPABLE;
        if (s.displaced) {
            k->st.hash_evictions++;
            forget(h, s.displaced_ctx, 1);
        }
        if (s.chain_evicted)
            k->st.hash_evictions++; /* its context's count stays an upper bound */
        remember(h, ctx);
    }
    k->st.hash_fills++;
    return VMSI_HASH_FILLED;
}

vmsi_hash_ret vmsi_hash_page(vms_kernel *k, unsigned core, uint64_t addr, uint32_t *ec)
{
    vmsi_hash *h = k->hash;
    vms_regs r = *vms_core_regs(vmsi_core(k, core));
    r.fmt = NULL; /* read the radix tables as the x86-64 walker does */
    r.user = (*ec & VMS_FAULTF_USER) != 0;
    vms_access_kind kind = (*ec & VMS_FAULTF_WRITE)  ? VMS_ACC_WRITE
                           : (*ec & VMS_FAULTF_EXEC) ? VMS_ACC_EXEC
                                                     : VMS_ACC_READ;
    vms_walk_stats ws = {0};
    vms_xlate x;
    vms_fault f;
    if (!vms_walk(k->bus, NULL, &r, addr, kind, &x, &f, &ws, NULL)) {
        if (f.kind == VMS_FAULT_PF)
            *ec = f.flags; /* the fault the radix tables give: the handler's input */
        return VMSI_HASH_FAULT;
    }
    uint32_t ctx = vms_design_ctx(&r, addr);
    if (ctx == 0 && !(addr >> 63)) {
        vmsi_panic(k, "design %s: a user address space without a PCID (all %u in use)",
                   vms_design_name(h->design), VMSI_MAX_PCID);
        return VMSI_HASH_PANIC;
    }
    vmsi_hash_ret ret = insert(k, h, ctx, addr, &x);
    if (ret == VMSI_HASH_UNMAPPABLE)
        vmsi_log(k, VMS_LOG_INFO, "design %s: physical 0x%llx has no table entry (not RAM)",
                 vms_design_name(h->design), (unsigned long long)vms_xlate_pa(&x, addr));
    return ret;
}

void vmsi_hash_preload(vms_kernel *k, unsigned core, uint64_t addr, uint32_t ec)
{
    uint32_t e = ec;
    (void)vmsi_hash_page(k, core, addr, &e);
}

static void flush_ctx_range(vms_kernel *k, vmsi_hash *h, uint32_t ctx, uint64_t start, uint64_t end)
{
    if (ctx > VMSI_MAX_PCID || !h->live[ctx] || start >= end)
        return;
    uint64_t pages = (end - start) >> VMS_PAGE_SHIFT, n = 0;
    bool scan = pages > h->entries / 16; /* a per-page search reads 16 entries */
    if (h->design == VMS_DESIGN_HASHED) {
        if (scan)
            n = vms_hpt_invalidate_range(k->bus, &h->hpt, ctx, false, start, end);
        else
            for (uint64_t va = start; va < end; va += VMS_PAGE_SIZE)
                n += vms_hpt_invalidate(k->bus, &h->hpt, ctx, va);
    } else {
        if (scan)
            n = vms_ipt_invalidate_range(k->bus, &h->ipt, ctx, false, start, end);
        else
            for (uint64_t va = start; va < end; va += VMS_PAGE_SIZE)
                n += vms_ipt_invalidate(k->bus, &h->ipt, ctx, va);
    }
    k->st.hash_invalidations += n;
    forget(h, ctx, n);
}

void vmsi_hash_flush(vms_kernel *k, const vmsi_mm *mm, uint64_t start, uint64_t end)
{
    if (k->hash && mm->pcid != VMSI_NO_PCID)
        flush_ctx_range(k, k->hash, mm->pcid, start & ~(uint64_t)VMS_PAGE_MASK, end);
}

void vmsi_hash_flush_ctx(vms_kernel *k, uint32_t pcid)
{
    vmsi_hash *h = k->hash;
    if (!h || pcid == VMSI_NO_PCID || pcid > VMSI_MAX_PCID || !h->live[pcid])
        return;
    uint64_t n = h->design == VMS_DESIGN_HASHED
                     ? vms_hpt_invalidate_range(k->bus, &h->hpt, pcid, false, 0, UINT64_MAX)
                     : vms_ipt_invalidate_range(k->bus, &h->ipt, pcid, false, 0, UINT64_MAX);
    k->st.hash_invalidations += n;
    h->live[pcid] = 0; /* the scan saw every entry */
}

void vmsi_hash_info(const vms_kernel *k, vms_design *design, uint64_t *table_bytes,
                    uint64_t *reserved_bytes)
{
    const vmsi_hash *h = k->hash;
    *design = h ? h->design : VMS_DESIGN_RADIX;
    *table_bytes = h ? h->table_bytes : 0;
    *reserved_bytes = h ? (VMS_PAGE_SIZE << h->order) : 0;
}

/*
 * A kernel mapping made by ioremap (hash__map_kernel_page -> htab_bolt_mapping): entered
 * now and bolted, since the driver's register accesses take no page fault. The inverted
 * table has no entry for a page outside RAM (device registers): VMS_ERR_UNSUPPORTED.
 */
vms_status vmsi_hash_map_kernel(vms_kernel *k, uint64_t kva, vms_err *err)
{
    vmsi_hash *h = k->hash;
    if (!h)
        return VMS_OK;
    if (h->design == VMS_DESIGN_INVERTED)
        return vmsi_err(err, VMS_ERR_UNSUPPORTED,
                        "design inverted: an inverted page table has one entry per frame of RAM "
                        "and none for device registers (ioremap of 0x%llx)",
                        (unsigned long long)kva);
    vms_regs r = *vms_core_regs(vmsi_core(k, 0));
    r.fmt = NULL;
    r.user = false;
    r.cr3 = k->init_pt.root; /* init_mm: the kernel half (no PCID: context 0) */
    vms_walk_stats ws = {0};
    vms_xlate x;
    vms_fault f;
    if (!vms_walk(k->bus, NULL, &r, kva, VMS_ACC_READ, &x, &f, &ws, NULL))
        return vmsi_err(err, VMS_ERR_INVAL, "design hashed: ioremap 0x%llx is not mapped",
                        (unsigned long long)kva);
    unsigned prot = (x.rw && x.dirty ? VMS_PGPROT_W : 0) | (x.xd ? 0 : VMS_PGPROT_X);
    uint64_t pa = vms_xlate_pa(&x, kva) & ~(uint64_t)VMS_PAGE_MASK;
    vms_hpt_slot s;
    vms_status st = vms_hpt_insert_v(k->bus, &h->hpt, 0, kva & ~(uint64_t)VMS_PAGE_MASK,
                                     vms_hpt_mk_r(pa, prot, 0, x.pcd, x.pwt), VMS_HPTE_V_BOLTED,
                                     &h->cursor, &s);
    if (st != VMS_OK)
        return vmsi_err(err, st, "design hashed: no room to bolt ioremap 0x%llx",
                        (unsigned long long)kva);
    k->st.hash_fills++;
    k->st.hash_evictions += s.evicted;
    return VMS_OK;
}

void vmsi_hash_unmap_kernel(vms_kernel *k, uint64_t kva)
{
    vmsi_hash *h = k->hash;
    if (h && h->design == VMS_DESIGN_HASHED)
        k->st.hash_invalidations +=
            vms_hpt_invalidate(k->bus, &h->hpt, 0, kva & ~(uint64_t)VMS_PAGE_MASK);
}
