/*
 * iommu.c — DMA remapping (iommu.h): contexts by requester ID, an IOTLB tagged by
 * domain id, a walker of the domain's tables in simulated RAM, invalidation and the
 * fault log. Modelled on Intel VT-d second-level translation (VT-d spec ch. 3, §6.5,
 * §9.8), with x86-64 paging entries standing in for second-level entries.
 *
 * Invariants: root[b] is NULL or a context table of 256 entries for bus b; a present
 * translate-mode context has did <= VMS_IOMMU_MAX_DID, levels 4 or 5 and a page-aligned
 * root; nlog <= cfg.fault_log_len; the IOTLB holds only translations that a walk
 * permitted at some time (never a failed one).
 */
#include "vmsim/iommu.h"

#include <inttypes.h>

#include "hw/tap.h"
#include "util/util.h"
#include "vmsim/pte.h"

/* One context entry (a VT-d context entry reduced to what the model uses). */
typedef struct ctx_entry {
    bool present;
    vms_iommu_context c;
    const vms_pt_format *fmt; /* NULL: VT-d (x86-64 entries); else an STE's Arm stage 2 */
    uint32_t vm;              /* software's label: the VM the device is assigned to (0: none) */
    vms_iommu_prq_fn fn;      /* the page-request handler (NULL: none) and its pointer */
    void *fn_ud;
} ctx_entry;

/* The context table of one bus, indexed by devfn (bits 7:0 of the BDF). */
typedef struct ctx_table {
    ctx_entry e[256];
} ctx_table;

struct vms_iommu {
    const vms_allocator *a;
    vms_bus *bus;
    unsigned maxphyaddr;
    vms_iommu_config cfg;
    bool enabled;
    vms_tlb *iotlb;
    ctx_table *root[256]; /* the root table: by bus number */
    vms_iommu_fault *log;
    unsigned nlog;
    vms_iommu_stats st;
};

static const char *const reason_names[VMS_IOMMU_NREASONS] = {
    "ok",
    "not present",
    "no read permission",
    "no write permission",
    "no context",
    "reserved bit set",
    "address beyond the domain's width",
    "table address decodes to nothing",
};

const char *vms_iommu_reason_str(vms_iommu_reason r)
{
    return (unsigned)r < VMS_IOMMU_NREASONS ? reason_names[r] : "unknown";
}

void vms_iommu_config_default(vms_iommu_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->enabled = true;
    cfg->iotlb = (vms_tlb_config){3,
                                  {{VMS_TLB_SIZE_BIT(VMS_PG_4K), 16, 4, "lru"},
                                   {VMS_TLB_SIZE_BIT(VMS_PG_2M), 1, 8, "lru"},
                                   {VMS_TLB_SIZE_BIT(VMS_PG_1G), 1, 8, "lru"}}};
    cfg->fault_log_len = 64;
    cfg->cost = (vms_iommu_cost){.iotlb_hit = 1, .walk_ref = 25, .fault = 0};
}

vms_status vms_iommu_create(vms_machine *m, const vms_iommu_config *cfg, vms_iommu **out,
                            vms_err *err)
{
    *out = NULL;
    if (cfg->fault_log_len == 0 || cfg->fault_log_len > (1u << 20))
        return vmsi_err(err, VMS_ERR_INVAL, "iommu fault log of %u records: expected 1 … 2^20",
                        cfg->fault_log_len);
    const vms_allocator *a = vms_machine_allocator(m);
    vms_iommu *io = vmsi_zalloc(a, sizeof *io);
    if (!io)
        return vmsi_err(err, VMS_ERR_NOMEM, "no host memory for the iommu");
    io->a = a;
    io->bus = vms_machine_bus(m);
    io->maxphyaddr = vms_machine_get_config(m)->maxphyaddr;
    io->cfg = *cfg;
    io->enabled = cfg->enabled;
    vms_status st =
        vms_tlb_create(a, &cfg->iotlb, vms_machine_get_config(m)->seed ^ 0x10ull, &io->iotlb, err);
    if (st == VMS_OK) {
        io->log = vmsi_calloc(a, cfg->fault_log_len, sizeof *io->log);
        if (!io->log)
            st = vmsi_err(err, VMS_ERR_NOMEM, "no host memory for %u iommu fault records",
                          cfg->fault_log_len);
    }
    if (st != VMS_OK) {
        vms_iommu_destroy(io);
        return st;
    }
    *out = io;
    return VMS_OK;
}

void vms_iommu_destroy(vms_iommu *io)
{
    if (!io)
        return;
    for (unsigned b = 0; b < 256; b++)
        vmsi_free(io->a, io->root[b], sizeof *io->root[b]);
    vmsi_free(io->a, io->log, io->cfg.fault_log_len * sizeof *io->log);
    vms_tlb_destroy(io->iotlb);
    vmsi_free(io->a, io, sizeof *io);
}

void vms_iommu_set_enabled(vms_iommu *io, bool on)
{
    io->enabled = on;
}

bool vms_iommu_enabled(const vms_iommu *io)
{
    return io->enabled;
}

/* ---- contexts ------------------------------------------------------------------------ */

/* The present context entry of bdf, or NULL. */
static const ctx_entry *entry_of(const vms_iommu *io, vms_bdf bdf)
{
    const ctx_table *t = io->root[vms_bdf_bus(bdf)];
    if (!t || !t->e[bdf & 0xFFu].present)
        return NULL;
    return &t->e[bdf & 0xFFu];
}

/* The present context of bdf, or NULL. */
static const vms_iommu_context *ctx_of(const vms_iommu *io, vms_bdf bdf)
{
    const ctx_entry *e = entry_of(io, bdf);
    return e ? &e->c : NULL;
}

static vms_status check_ctx(const vms_iommu_context *c, const vms_pt_format *fmt, vms_bdf bdf,
                            vms_err *err)
{
    if (c->mode == VMS_IOMMU_PASSTHROUGH)
        return VMS_OK;
    if (c->mode != VMS_IOMMU_TRANSLATE)
        return vmsi_err(err, VMS_ERR_INVAL, "context %04x: unknown mode %d", bdf, (int)c->mode);
    if (fmt ? c->levels != fmt->levels : c->levels != 4 && c->levels != 5)
        return vmsi_err(err, VMS_ERR_INVAL, "context %04x: %u table levels (expected %s)", bdf,
                        c->levels, fmt ? "the format's" : "4 or 5");
    if (c->root & VMS_PAGE_MASK)
        return vmsi_err(err, VMS_ERR_INVAL,
                        "context %04x: table root 0x%" PRIx64 " is not page aligned", bdf, c->root);
    return VMS_OK;
}

static vms_status set_context(vms_iommu *io, vms_bdf bdf, const vms_iommu_context *ctx,
                              const vms_pt_format *fmt, vms_err *err)
{
    ctx_table **t = &io->root[vms_bdf_bus(bdf)];
    if (!ctx) {
        if (*t)
            (*t)->e[bdf & 0xFFu].present = false;
        return VMS_OK;
    }
    vms_status st = check_ctx(ctx, fmt, bdf, err);
    if (st != VMS_OK)
        return st;
    if (!*t) {
        *t = vmsi_zalloc(io->a, sizeof **t);
        if (!*t)
            return vmsi_err(err, VMS_ERR_NOMEM, "no host memory for the context table of bus %u",
                            vms_bdf_bus(bdf));
    }
    (*t)->e[bdf & 0xFFu] = (ctx_entry){true, *ctx, fmt, 0, NULL, NULL};
    return VMS_OK;
}

vms_status vms_iommu_set_context(vms_iommu *io, vms_bdf bdf, const vms_iommu_context *ctx,
                                 vms_err *err)
{
    return set_context(io, bdf, ctx, NULL, err);
}

vms_status vms_iommu_set_ste(vms_iommu *io, vms_bdf bdf, const uint64_t ste[VMS_SMMU_STE_DWORDS],
                             vms_err *err)
{
    vms_iommu_context c;
    const vms_pt_format *fmt;
    vms_status st = vms_smmu_ste_decode(ste, &c, &fmt, err);
    return st == VMS_OK ? set_context(io, bdf, &c, fmt, err) : st;
}

const vms_pt_format *vms_iommu_context_format(const vms_iommu *io, vms_bdf bdf)
{
    const ctx_entry *e = entry_of(io, bdf);
    return e && e->c.mode == VMS_IOMMU_TRANSLATE ? e->fmt : NULL;
}

vms_status vms_iommu_set_context_vm(vms_iommu *io, vms_bdf bdf, uint32_t vm)
{
    ctx_table *t = io->root[vms_bdf_bus(bdf)];
    if (!t || !t->e[bdf & 0xFFu].present)
        return VMS_ERR_NOTFOUND;
    t->e[bdf & 0xFFu].vm = vm;
    return VMS_OK;
}

vms_status vms_iommu_set_page_request(vms_iommu *io, vms_bdf bdf, vms_iommu_prq_fn fn, void *ud)
{
    ctx_table *t = io->root[vms_bdf_bus(bdf)];
    if (!t || !t->e[bdf & 0xFFu].present)
        return VMS_ERR_NOTFOUND;
    t->e[bdf & 0xFFu].fn = fn;
    t->e[bdf & 0xFFu].fn_ud = fn ? ud : NULL;
    return VMS_OK;
}

uint32_t vms_iommu_context_vm(const vms_iommu *io, vms_bdf bdf)
{
    const ctx_table *t = io->root[vms_bdf_bus(bdf)];
    return t && t->e[bdf & 0xFFu].present ? t->e[bdf & 0xFFu].vm : 0;
}

bool vms_iommu_get_context(const vms_iommu *io, vms_bdf bdf, vms_iommu_context *out)
{
    const vms_iommu_context *c = ctx_of(io, bdf);
    if (c && out)
        *out = *c;
    return c != NULL;
}

/* ---- the walker ---------------------------------------------------------------------- */

/* Reserved bits of a present level-`level` entry (as walk.c, without XD: VT-d ignores
 * bit 63 in second-level entries unless execute requests are enabled). */
static uint64_t rsvd_mask(unsigned maxphyaddr, uint64_t pte, unsigned level)
{
    uint64_t m = VMS_PTE_ADDR_MASK & ~((UINT64_C(1) << maxphyaddr) - 1);
    if (level >= VMS_LEVEL_PML4)
        m |= VMS_PTE_PS;
    else if (level == VMS_LEVEL_PDPT && (pte & VMS_PTE_PS))
        m |= UINT64_C(0x3FFFE000); /* 29:13 */
    else if (level == VMS_LEVEL_PD && (pte & VMS_PTE_PS))
        m |= UINT64_C(0x1FE000); /* 20:13 */
    return m;
}

/* Does translation x permit an access of kind? VMS_IOMMU_OK or the reason it does not. */
static vms_iommu_reason rights(const vms_xlate *x, vms_access_kind kind)
{
    if (kind == VMS_ACC_WRITE)
        return x->rw ? VMS_IOMMU_OK : VMS_IOMMU_NO_WRITE;
    return x->us ? VMS_IOMMU_OK : VMS_IOMMU_NO_READ;
}

/*
 * Walk a context whose tables are in another format (an SMMU stage 2 context: Arm stage
 * 2 descriptors) through the format's decoder: a descriptor not valid is not present,
 * the leaf's rights are its read and write permissions (S2AP; tables carry none), the
 * Access flag is taken as set (STE.S2AFFD = 1) and nothing is written.
 */
static vms_iommu_reason walk_fmt(vms_iommu *io, const vms_iommu_context *ctx,
                                 const vms_pt_format *f, uint64_t iova, vms_access_kind kind,
                                 vms_xlate *x, unsigned *level)
{
    uint64_t table = ctx->root;
    for (unsigned l = ctx->levels;; l--) {
        *level = l;
        uint64_t pte;
        if (vms_bus_read64(io->bus, vms_fmt_entry_pa(f, table, iova, l), &pte) != VMS_OK)
            return VMS_IOMMU_TABLE_BUS;
        io->st.walk_refs++;
        io->st.cycles += io->cfg.cost.walk_ref;
        vms_pte_info in;
        vms_fmt_decode(f, pte, l, &in);
        if (!in.present)
            return VMS_IOMMU_NOT_PRESENT;
        if (!in.rsvd_clear)
            return VMS_IOMMU_RSVD;
        if (in.leaf) {
            memset(x, 0, sizeof *x);
            x->size = (vms_pgsize)(l - 1);
            x->page_pa = in.pa;
            x->rw = (in.prot & VMS_PGPROT_W) != 0;
            x->us = (in.prot & VMS_PGPROT_R) != 0;
            x->dirty = 1;
            return rights(x, kind);
        }
        table = in.pa;
    }
}

/*
 * Walk ctx's tables for iova, one entry per level from the root, reading RAM through the
 * bus. On success fills *x (rw = write, us = read permission, ANDed over the levels) and
 * returns the rights check's verdict; otherwise the reason. *level is the level reached.
 * Counts the walk and each entry read; writes nothing.
 */
static vms_iommu_reason walk(vms_iommu *io, const vms_iommu_context *ctx, const vms_pt_format *fmt,
                             uint64_t iova, vms_access_kind kind, vms_xlate *x, unsigned *level)
{
    uint64_t table = ctx->root;
    uint8_t r = 1, w = 1;
    io->st.walks++;
    if (fmt)
        return walk_fmt(io, ctx, fmt, iova, kind, x, level);
    for (unsigned l = ctx->levels;; l--) {
        *level = l;
        uint64_t ptep = table + 8u * vms_va_index(iova, l), pte;
        if (vms_bus_read64(io->bus, ptep, &pte) != VMS_OK)
            return VMS_IOMMU_TABLE_BUS;
        io->st.walk_refs++;
        io->st.cycles += io->cfg.cost.walk_ref;
        if (!vms_pte_present(pte))
            return VMS_IOMMU_NOT_PRESENT;
        if (pte & rsvd_mask(io->maxphyaddr, pte, l))
            return VMS_IOMMU_RSVD;
        r &= (pte & VMS_PTE_US) != 0;
        w &= (pte & VMS_PTE_RW) != 0;
        if (vms_pte_leaf(pte, l)) {
            memset(x, 0, sizeof *x);
            x->size = (vms_pgsize)(l - 1);
            x->page_pa = vms_pte_addr(pte) & ~(vms_pgsize_bytes(x->size) - 1);
            x->rw = w;
            x->us = r;
            x->dirty = 1; /* no D bit to maintain: never re-walk for it */
            return rights(x, kind);
        }
        table = vms_pte_addr(pte);
    }
}

/* ---- translation --------------------------------------------------------------------- */

/* Count and log a blocked request; returns false for `return block(...)`. */
static bool block(vms_iommu *io, vms_bdf bdf, uint16_t did, uint64_t iova, vms_access_kind kind,
                  vms_iommu_reason reason, unsigned level, vms_iommu_fault *out)
{
    vms_iommu_fault f = {bdf, did, iova, kind, reason, level};
    io->st.faults++;
    io->st.faults_by_reason[reason]++;
    io->st.cycles += io->cfg.cost.fault;
    if (io->nlog < io->cfg.fault_log_len)
        io->log[io->nlog++] = f;
    else
        io->st.fault_log_overflows++;
    if (out)
        *out = f;
    return false;
}

/* Bytes from a to the end of its 2^shift-byte page. */
static uint64_t room_in(uint64_t a, unsigned shift)
{
    return (UINT64_C(1) << shift) - (a & ((UINT64_C(1) << shift) - 1));
}

/* Translate through the IOTLB or a walk of a translate-mode context. */
static bool translate_ctx(vms_iommu *io, vms_bdf bdf, const ctx_entry *e, uint64_t iova,
                          vms_access_kind kind, uint64_t *pa, uint64_t *room,
                          vms_iommu_fault *fault)
{
    const vms_iommu_context *c = &e->c;
    /* VT-d: the lower half of the x86-64 space; SMMU stage 2: the IPA size */
    if (iova >> (e->fmt ? e->fmt->va_bits : 12u + 9u * c->levels - 1u))
        return block(io, bdf, c->did, iova, kind, VMS_IOMMU_ADDR_WIDTH, c->levels, fault);
    vms_xlate x;
    vms_iommu_reason why;
    if (vms_tlb_lookup(io->iotlb, c->did, iova, &x)) {
        io->st.cycles += io->cfg.cost.iotlb_hit;
        why = rights(&x, kind);
        if (why != VMS_IOMMU_OK) {
            io->st.iotlb_hit_faults++;
            vms_tlb_flush_va(io->iotlb, c->did, iova, false);
            return block(io, bdf, c->did, iova, kind, why, 0, fault);
        }
    } else {
        unsigned level = 0;
        why = walk(io, c, e->fmt, iova, kind, &x, &level);
        if (why == VMS_IOMMU_NOT_PRESENT && e->fn) { /* a page request: software maps it */
            io->st.page_requests++;
            if (e->fn(e->fn_ud, bdf, iova, kind)) {
                io->st.page_requests_served++;
                why = walk(io, c, e->fmt, iova, kind, &x, &level);
            }
        }
        if (why != VMS_IOMMU_OK)
            return block(io, bdf, c->did, iova, kind, why, level, fault);
        vms_tlb_fill(io->iotlb, c->did, iova, &x);
    }
    *pa = vms_xlate_pa(&x, iova);
    *room = room_in(iova, vms_pgsize_shift(x.size));
    return true;
}

/* vms_iommu_translate without the tap; *mode says which way it went. */
static bool translate(vms_iommu *io, vms_bdf bdf, uint64_t iova, vms_access_kind kind, uint64_t *pa,
                      uint64_t *room, vms_iommu_fault *fault, vms_ev_iommu_mode *mode)
{
    *mode = VMS_EV_IOMMU_OFF;
    if (!io->enabled) {
        io->st.bypassed++;
        *pa = iova;
        *room = room_in(iova, VMS_PAGE_SHIFT);
        return true;
    }
    io->st.translations++;
    const ctx_entry *e = entry_of(io, bdf);
    const vms_iommu_context *c = e ? &e->c : NULL;
    *mode = VMS_EV_IOMMU_NO_CONTEXT;
    if (!c)
        return block(io, bdf, 0, iova, kind, VMS_IOMMU_NO_CONTEXT, 0, fault);
    *mode = VMS_EV_IOMMU_PASSTHROUGH;
    if (c->mode == VMS_IOMMU_PASSTHROUGH) {
        io->st.passthrough++;
        *pa = iova;
        *room = room_in(iova, VMS_PAGE_SHIFT);
        return true;
    }
    *mode = VMS_EV_IOMMU_TRANSLATE;
    return translate_ctx(io, bdf, e, iova, kind, pa, room, fault);
}

bool vms_iommu_translate(vms_iommu *io, vms_bdf bdf, uint64_t iova, vms_access_kind kind,
                         uint64_t *pa, uint64_t *room, vms_iommu_fault *fault)
{
    if (kind == VMS_ACC_EXEC)
        kind = VMS_ACC_READ;
    const vmsi_tap *tap = vmsi_bus_tap(io->bus);
    vms_ev_iommu_mode mode;
    if (!vmsi_tap_on(tap))
        return translate(io, bdf, iova, kind, pa, room, fault, &mode);
    /* Observed: the fault goes to a local when the caller wants none (its reason). */
    vms_iommu_fault local;
    vms_iommu_fault *f = fault ? fault : &local;
    uint64_t hits = vms_tlb_get_stats(io->iotlb)->hits, walks = io->st.walks,
             refs = io->st.walk_refs, asked = io->st.page_requests,
             served = io->st.page_requests_served;
    bool ok = translate(io, bdf, iova, kind, pa, room, f, &mode);
    vms_event ev = {.type = VMS_EV_IOMMU,
                    .iommu = {.rid = bdf,
                              .iova = iova,
                              .write = kind == VMS_ACC_WRITE,
                              .mode = mode,
                              .hit = vms_tlb_get_stats(io->iotlb)->hits != hits,
                              .walked = io->st.walks != walks,
                              .refs = (unsigned)(io->st.walk_refs - refs),
                              .ok = ok,
                              .reason = ok ? 0u : (unsigned)f->reason,
                              .pa = ok ? *pa : 0}};
    ev.iommu.vm = io->enabled ? vms_iommu_context_vm(io, bdf) : 0;
    ev.iommu.page_request = io->st.page_requests != asked;
    ev.iommu.served = io->st.page_requests_served != served;
    vmsi_tap_emit_kernel(tap, &ev);
    return ok;
}

/* ---- invalidation -------------------------------------------------------------------- */

void vms_iommu_inv_global(vms_iommu *io)
{
    io->st.inv_global++;
    vms_tlb_flush_all(io->iotlb, false);
}

void vms_iommu_inv_domain(vms_iommu *io, uint16_t did)
{
    io->st.inv_domain++;
    vms_tlb_flush_pcid(io->iotlb, did);
}

void vms_iommu_inv_device(vms_iommu *io, vms_bdf bdf)
{
    io->st.inv_device++;
    const vms_iommu_context *c = ctx_of(io, bdf);
    if (c && c->mode == VMS_IOMMU_TRANSLATE)
        vms_tlb_flush_pcid(io->iotlb, c->did);
}

/* Ranges up to this many pages are dropped page by page; larger ones by a scan. */
#define RANGE_BY_PAGE_MAX 512

/* Drop every entry of did overlapping [iova, end] by scanning the valid entries from the
 * last, so that dropping entry i leaves the indices below i unchanged. */
static void inv_range_scan(vms_iommu *io, uint16_t did, uint64_t iova, uint64_t end)
{
    for (unsigned i = vms_tlb_count(io->iotlb); i-- > 0;) {
        vms_tlb_entry_info e;
        if (!vms_tlb_entry(io->iotlb, i, &e) || e.ctx != did)
            continue;
        uint64_t last = e.va + (vms_pgsize_bytes(e.x.size) - 1);
        if (e.va <= end && last >= iova)
            vms_tlb_flush_va(io->iotlb, did, e.va, false);
    }
}

void vms_iommu_inv_range(vms_iommu *io, uint16_t did, uint64_t iova, uint64_t len)
{
    io->st.inv_range++;
    if (len == 0)
        return;
    uint64_t end = len - 1 > UINT64_MAX - iova ? UINT64_MAX : iova + (len - 1);
    uint64_t first = iova >> VMS_PAGE_SHIFT, last = end >> VMS_PAGE_SHIFT;
    if (last - first >= RANGE_BY_PAGE_MAX) {
        inv_range_scan(io, did, iova, end);
        return;
    }
    for (uint64_t p = first; p <= last; p++)
        vms_tlb_flush_va(io->iotlb, did, p << VMS_PAGE_SHIFT, false);
}

/* ---- fault log and stats ------------------------------------------------------------- */

unsigned vms_iommu_fault_count(const vms_iommu *io)
{
    return io->nlog;
}

bool vms_iommu_fault_get(const vms_iommu *io, unsigned i, vms_iommu_fault *out)
{
    if (i >= io->nlog)
        return false;
    *out = io->log[i];
    return true;
}

void vms_iommu_fault_clear(vms_iommu *io)
{
    io->nlog = 0;
}

vms_status vms_iommu_fault_format(const vms_iommu_fault *f, vms_strbuf *sb)
{
    return vms_strbuf_printf(sb,
                             "DMAR: [DMA %s] Request device [%02x:%02x.%x] domain %u fault addr "
                             "0x%" PRIx64 ": %s",
                             f->kind == VMS_ACC_WRITE ? "Write" : "Read", vms_bdf_bus(f->bdf),
                             vms_bdf_dev(f->bdf), vms_bdf_fn(f->bdf), f->did, f->iova,
                             vms_iommu_reason_str(f->reason));
}

vms_tlb *vms_iommu_iotlb(vms_iommu *io)
{
    return io->iotlb;
}

const vms_iommu_stats *vms_iommu_get_stats(const vms_iommu *io)
{
    return &io->st;
}

void vms_iommu_reset_stats(vms_iommu *io)
{
    memset(&io->st, 0, sizeof io->st);
    vms_tlb_reset_stats(io->iotlb);
}

/* JSON member names of the fault reasons (index = vms_iommu_reason). */
static const char *const reason_keys[VMS_IOMMU_NREASONS] = {
    "ok", "not_present", "no_read", "no_write", "no_context", "reserved", "addr_width", "table_bus",
};

vms_status vms_iommu_stats_json_members(const vms_iommu *io, vms_strbuf *sb)
{
    const vms_iommu_stats *s = &io->st;
    const vms_tlb_stats *t = vms_tlb_get_stats(io->iotlb);
    vms_strbuf_printf(sb,
                      "\"enabled\":%s,\"translations\":%" PRIu64 ",\"passthrough\":%" PRIu64
                      ",\"bypassed\":%" PRIu64 ",\"iotlb\":{\"lookups\":%" PRIu64
                      ",\"hits\":%" PRIu64 ",\"misses\":%" PRIu64 ",\"fills\":%" PRIu64
                      ",\"evictions\":%" PRIu64 ",\"invalidations\":%" PRIu64 "}",
                      io->enabled ? "true" : "false", s->translations, s->passthrough, s->bypassed,
                      t->lookups, t->hits, t->misses, t->fills, t->evictions, t->invalidations);
    vms_strbuf_printf(sb,
                      ",\"walks\":%" PRIu64 ",\"walk_refs\":%" PRIu64 ",\"faults\":%" PRIu64
                      ",\"faults_by_reason\":{",
                      s->walks, s->walk_refs, s->faults);
    for (unsigned r = 1; r < VMS_IOMMU_NREASONS; r++)
        vms_strbuf_printf(sb, "%s\"%s\":%" PRIu64, r > 1 ? "," : "", reason_keys[r],
                          s->faults_by_reason[r]);
    vms_strbuf_printf(sb,
                      "},\"fault_log_overflows\":%" PRIu64 ",\"iotlb_hit_faults\":%" PRIu64
                      ",\"invalidations\":{\"global\":%" PRIu64 ",\"domain\":%" PRIu64
                      ",\"device\":%" PRIu64 ",\"range\":%" PRIu64 "},\"cycles\":%" PRIu64
                      ",\"page_requests\":{\"asked\":%" PRIu64 ",\"served\":%" PRIu64 "}",
                      s->fault_log_overflows, s->iotlb_hit_faults, s->inv_global, s->inv_domain,
                      s->inv_device, s->inv_range, s->cycles, s->page_requests,
                      s->page_requests_served);
    return sb->failed ? VMS_ERR_NOMEM : VMS_OK;
}
