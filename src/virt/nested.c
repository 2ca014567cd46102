/*
 * virt/nested.c — the two-dimensional walk (seed 002 §09): a guest's translation
 * GVA -> GPA composed with the hypervisor's GPA -> HPA.
 *
 *   gva ─► guest walker (the architecture's own, src/arch/NAME/walk.c) over the
 *          guest-physical bus: each guest entry it reads at a GPA is first translated
 *          by a second-stage walk (s2walk.c, or the nested TLB), then read at its HPA
 *            │ leaf: gpa
 *            ▼
 *          second-stage walk of gpa (the access's own kind) ─► hpa; the composed
 *          translation is sized by the smaller of the two pages
 *
 * A cold walk of n guest levels over m host levels reads n guest entries, n·m host
 * entries for the tables and m for the final GPA: (n+1)(m+1) − 1 — 24 for 4+4, 35
 * for 5+5 (the figure the seed quotes).
 *
 * The guest walker is not a copy: it is the stage-1 walker the core runs natively,
 * given a bus whose one MMIO region is the guest-physical space. During a walk the
 * region's read hook is the hardware's second-stage lookup for a guest paging-structure
 * access; outside a walk it is the hypervisor's software view (no A/D, nothing counted).
 * The guest walker's write-backs of guest A/D bits go to the HPA the same walk
 * translated, as a locked update holds its translation: no second-stage entry is read
 * again; the write needs second-stage write permission, and on NPT and Arm (which do
 * not count guest table reads as writes) the host leaf's dirty state is then set.
 *
 * A second-stage fault during the guest walk makes the guest walker see a bus error
 * at the entry's GPA; the pending fault recorded here turns it into VMS_FAULT_S2 (a VM
 * exit), so a guest #PF (the guest's own tables) and an EPT violation are never
 * confused.
 *
 * Caches: the guest's page-walk cache holds guest entries (with GPA table addresses),
 * tagged by the guest's PCID, so a hit skips guest levels and their second-stage walks;
 * the nested TLB caches GPA -> HPA for both the table and the final GPAs, as AMD's
 * nested TLB does (Bhargava et al., ASPLOS 2008). Both are counted.
 */
#include <string.h>

#include "hw/core_impl.h"
#include "util/util.h"
#include "virt/virt_impl.h"

#define MAX_HELD 8

/* A second-stage translation held for the rest of one 2D walk (a guest table page). */
typedef struct held {
    uint64_t gpa_page; /* 4 KiB page of the guest entry */
    vms_s2_xlate x;
} held;

struct vms_nested {
    vms_allocator alloc;
    vms_bus *host;
    vms_bus *gbus; /* the guest-physical bus: one MMIO region, the hooks below */
    vms_s2_regs s2;
    vms_tlb *s2tlb; /* nested TLB or NULL */
    vms_pwc *gpwc;  /* guest PWC or NULL */
    vms_nested_stats st;

    /* The walk in progress (in_walk), for the bus hooks. */
    bool in_walk;
    vms_s2_access acc;      /* template for guest table accesses */
    vms_walk_stats *wstats; /* the caller's counters: host refs are added to mem_refs */
    vms_nested_trace *trace;
    vms_nested_trace *keep_trace; /* vms_nested_set_trace's, used when a walk has none */
    bool pending;
    vms_s2_fault pfault;
    held held[MAX_HELD];
    unsigned nheld;
    /* The other vCPUs of the same VM (vms_nested_link): a ring through next_vcpu, n
     * itself when alone. Their guest walk caches are the VM's, which a broadcast TLBI of
     * the VM reaches on every core (vmsi_nested_pwc_flush_vm). */
    vms_nested *next_vcpu;
};

/* Append a reference to the trace. */
static void trace_ref(vms_nested *n, unsigned stage, unsigned level, unsigned for_level,
                      uint64_t gpa, uint64_t ptep, uint64_t pte)
{
    vms_nested_trace *t = n->trace;
    if (t && t->nrefs < VMS_NESTED_MAX_REFS)
        t->ref[t->nrefs++] =
            (vms_nested_ref){(uint8_t)stage, (uint8_t)level, (uint8_t)for_level, gpa, ptep, pte};
}

/* The nested TLB's encoding of a second-stage translation (a vms_xlate): rw = W,
 * nr = !R, xd = !X, dirty. */
static vms_xlate to_tlb(const vms_s2_xlate *x)
{
    vms_xlate t = {0};
    t.page_pa = x->page_hpa;
    t.size = x->size;
    t.rw = x->w;
    t.nr = !x->r;
    t.xd = !x->x;
    t.dirty = x->dirty;
    return t;
}

/* Does translation x permit acc (what the stage's own check would say)? */
static bool s2_permits(const vms_nested *n, const vms_s2_xlate *x, const vms_s2_access *acc)
{
    bool treat_write = acc->table && n->s2.kind == VMS_S2_EPT && (n->s2.eptp & VMS_EPTP_AD);
    if (treat_write || acc->kind == VMS_ACC_WRITE)
        return x->w && x->dirty && (x->r || acc->kind == VMS_ACC_WRITE);
    return acc->kind == VMS_ACC_EXEC && !acc->table ? x->x : x->r;
}

/*
 * The hardware's second-stage translation of gpa for acc: the nested TLB when it holds
 * a translation that permits the access (dirty for writes), else a walk whose entries
 * are counted (and traced as stage-2 references for for_level). Returns false with
 * n->pfault set on a fault.
 */
static bool s2_translate(vms_nested *n, uint64_t gpa, const vms_s2_access *acc, unsigned for_level,
                         vms_s2_xlate *out)
{
    if (n->s2tlb) {
        vms_xlate t;
        n->st.s2_tlb_lookups++;
        if (vms_tlb_lookup(n->s2tlb, 0, gpa, &t)) {
            vms_s2_xlate x = {t.page_pa, t.size, !t.nr, t.rw, !t.xd, t.dirty, 0, 0};
            if (s2_permits(n, &x, acc)) {
                n->st.s2_tlb_hits++;
                if (n->trace)
                    n->trace->s2_tlb_hits++;
                *out = x;
                return true;
            }
            vms_tlb_flush_va(n->s2tlb, 0, gpa, true); /* walk again: rights or D */
        }
    }
    vms_walk_stats ws = {0};
    vms_walk_trace tr;
    bool ok = vms_s2_walk(n->host, &n->s2, gpa, acc, false, out, &n->pfault, &ws, &tr);
    n->st.s2_walks++;
    n->st.s2_refs += ws.mem_refs;
    n->st.s2_ad_writes += ws.ad_writes;
    if (acc->table)
        n->st.s2_refs_tables += ws.mem_refs;
    for (unsigned l = 0; l < 6; l++)
        n->st.refs_by_level[l] += ws.refs_by_level[l];
    n->wstats->mem_refs += ws.mem_refs;
    n->wstats->ad_writes += ws.ad_writes;
    for (unsigned i = 0; i < tr.nsteps; i++)
        trace_ref(n, 2, tr.step[i].level, for_level, gpa, tr.step[i].ptep, tr.step[i].pte);
    if (!ok)
        return false;
    if (n->s2tlb) {
        vms_xlate t = to_tlb(out);
        vms_tlb_fill(n->s2tlb, 0, gpa, &t);
    }
    return true;
}

/* The held translation of gpa's page in this walk, or NULL. */
static held *find_held(vms_nested *n, uint64_t gpa)
{
    for (unsigned i = 0; i < n->nheld; i++)
        if (n->held[i].gpa_page == gpa >> VMS_PAGE_SHIFT)
            return &n->held[i];
    return NULL;
}

/* The host address of gpa under x. */
static uint64_t hpa_of(const vms_s2_xlate *x, uint64_t gpa)
{
    return x->page_hpa | (gpa & (vms_pgsize_bytes(x->size) - 1));
}

/* The hypervisor's software view of gpa (no A/D, nothing counted). */
static bool sw_translate(vms_nested *n, uint64_t gpa, uint64_t *hpa)
{
    vms_s2_access acc = {.kind = VMS_ACC_READ};
    vms_s2_xlate x;
    vms_s2_fault f;
    if (!vms_s2_walk(n->host, &n->s2, gpa, &acc, true, &x, &f, NULL, NULL))
        return false;
    *hpa = hpa_of(&x, gpa);
    return true;
}

/* A guest paging-structure read during a walk: translate, hold, read, trace. */
static vms_status walk_read(vms_nested *n, uint64_t gpa, unsigned size, uint64_t *val)
{
    held *h = find_held(n, gpa);
    vms_s2_xlate x;
    if (h) {
        x = h->x;
    } else {
        if (!s2_translate(n, gpa, &n->acc, 0, &x)) {
            n->pending = true;
            return VMS_ERR_BUS;
        }
        if (n->nheld < MAX_HELD)
            n->held[n->nheld++] = (held){gpa >> VMS_PAGE_SHIFT, x};
    }
    uint64_t v = 0;
    vms_status st = vms_bus_read(n->host, hpa_of(&x, gpa), &v, size);
    if (st != VMS_OK)
        return st;
    *val = v;
    n->st.guest_refs++;
    trace_ref(n, 1, 0, 0, gpa, hpa_of(&x, gpa), v);
    return VMS_OK;
}

/* The dirty state of a second-stage leaf, in its format's bit. */
static uint64_t s2_dirty_bit(const vms_s2_regs *s2)
{
    return s2->kind == VMS_S2_EPT ? VMS_EPT_D : s2->kind == VMS_S2_NPT ? VMS_PTE_D : VMS_S2_S2AP_W;
}

/* A guest A/D write-back during a walk: to the HPA the walk translated, which needs
 * write permission at the second stage (a fresh walk for a write, which faults, when
 * the held translation lacks it) and makes the host leaf dirty. */
static vms_status walk_write(vms_nested *n, uint64_t gpa, unsigned size, uint64_t val)
{
    held *h = find_held(n, gpa);
    vms_s2_xlate x;
    if (!h || !h->x.w || !h->x.leaf_ptep) {
        vms_s2_access acc = n->acc;
        acc.kind = VMS_ACC_WRITE;
        if (!s2_translate(n, gpa, &acc, 0, &x)) {
            n->pending = true;
            return VMS_ERR_BUS;
        }
    } else {
        x = h->x;
        if (!x.dirty && vms_s2_ad(&n->s2)) {
            uint64_t leaf;
            if (vms_bus_read64(n->host, x.leaf_ptep, &leaf) != VMS_OK ||
                vms_bus_write64(n->host, x.leaf_ptep, leaf | s2_dirty_bit(&n->s2)) != VMS_OK)
                return VMS_ERR_BUS;
            n->st.s2_ad_writes++;
            n->wstats->ad_writes++;
            h->x.dirty = 1;
        }
    }
    return vms_bus_write(n->host, hpa_of(&x, gpa), &val, size);
}

static vms_status gbus_read(void *dev, uint64_t gpa, unsigned size, uint64_t *val)
{
    vms_nested *n = dev;
    if (n->in_walk)
        return walk_read(n, gpa, size, val);
    uint64_t hpa, v = 0;
    if (!sw_translate(n, gpa, &hpa))
        return VMS_ERR_BUS;
    vms_status st = vms_bus_read(n->host, hpa, &v, size);
    *val = v;
    return st;
}

static vms_status gbus_write(void *dev, uint64_t gpa, unsigned size, uint64_t val)
{
    vms_nested *n = dev;
    if (n->in_walk)
        return walk_write(n, gpa, size, val);
    n->st.gbus_writes++;
    uint64_t hpa;
    if (!sw_translate(n, gpa, &hpa))
        return VMS_ERR_BUS;
    return vms_bus_write(n->host, hpa, &val, size);
}

static const vms_mmio_ops gbus_ops = {gbus_read, gbus_write};

#define GPA_SPACE (UINT64_C(1) << 57)

vms_status vms_nested_create(const vms_allocator *a, vms_bus *host_bus, const vms_s2_regs *s2,
                             const vms_nested_config *cfg, vms_nested **out, vms_err *err)
{
    if (!a)
        a = vms_allocator_default();
    *out = NULL;
    if (!vms_s2_format(s2))
        return vmsi_err(err, VMS_ERR_INVAL,
                        "second stage: unknown kind or levels (EPT 4|5, "
                        "NPT 4|5, Arm 3|4)");
    vms_nested *n = vmsi_alloc(a, sizeof *n);
    if (!n)
        return vmsi_err(err, VMS_ERR_NOMEM, "out of memory for a two-stage MMU");
    memset(n, 0, sizeof *n);
    n->alloc = *a;
    n->next_vcpu = n;
    n->host = host_bus;
    n->s2 = *s2;
    vms_status st = vms_bus_create(a, vms_bus_ram(host_bus), &n->gbus, err);
    if (st == VMS_OK)
        st = vms_bus_add_mmio(n->gbus, 0, GPA_SPACE, "guest-physical", &gbus_ops, n, err);
    if (st == VMS_OK && cfg && cfg->s2_tlb && cfg->s2_tlb->nparts)
        st = vms_tlb_create(a, cfg->s2_tlb, cfg->seed, &n->s2tlb, err);
    if (st == VMS_OK && cfg && cfg->guest_pwc)
        st = vms_pwc_create(a, cfg->guest_pwc, cfg->guest_levels ? cfg->guest_levels : 4,
                            cfg->seed ^ 0x9e3779b97f4a7c15u, &n->gpwc, err);
    if (st != VMS_OK) {
        vms_nested_destroy(n);
        return st;
    }
    *out = n;
    return VMS_OK;
}

void vms_nested_destroy(vms_nested *n)
{
    if (!n)
        return;
    vms_nested *p = n;
    while (p->next_vcpu != n) /* out of its VM's ring */
        p = p->next_vcpu;
    p->next_vcpu = n->next_vcpu;
    vms_pwc_destroy(n->gpwc);
    vms_tlb_destroy(n->s2tlb);
    vms_bus_destroy(n->gbus);
    vmsi_free(&n->alloc, n, sizeof *n);
}

void vms_nested_link(vms_nested *n, vms_nested *m)
{
    for (vms_nested *p = n->next_vcpu; p != n; p = p->next_vcpu)
        if (p == m)
            return;    /* linked already */
    vms_nested *q = m; /* splice m's ring (m alone, normally) after n */
    while (q->next_vcpu != m)
        q = q->next_vcpu;
    q->next_vcpu = n->next_vcpu;
    n->next_vcpu = m;
}

void vmsi_nested_pwc_flush_vm(vms_nested *n, uint32_t tag, bool all)
{
    vms_nested *p = n;
    do {
        if (p->gpwc && all)
            vms_pwc_flush_all(p->gpwc);
        else if (p->gpwc)
            vms_pwc_flush_pcid(p->gpwc, tag);
        p = p->next_vcpu;
    } while (p != n);
}

void vms_nested_set_s2(vms_nested *n, const vms_s2_regs *s2)
{
    n->s2 = *s2;
}

const vms_s2_regs *vms_nested_s2(const vms_nested *n)
{
    return &n->s2;
}

vms_bus *vms_nested_guest_bus(vms_nested *n)
{
    return n->gbus;
}

vms_pwc *vms_nested_guest_pwc(vms_nested *n)
{
    return n->gpwc;
}

vms_tlb *vms_nested_s2_tlb(vms_nested *n)
{
    return n->s2tlb;
}

void vms_nested_flush_s2(vms_nested *n)
{
    if (n->s2tlb)
        vms_tlb_flush_all(n->s2tlb, false);
}

void vms_nested_set_trace(vms_nested *n, vms_nested_trace *trace)
{
    n->trace = trace;
    n->keep_trace = trace;
}

vms_nested_trace *vmsi_nested_kept_trace(vms_nested *n)
{
    return n->keep_trace;
}

const vms_s2_fault *vms_nested_last_exit(const vms_nested *n)
{
    return &n->pfault;
}

const vms_nested_stats *vms_nested_get_stats(const vms_nested *n)
{
    return &n->st;
}

/* Give the guest levels to the trace's references (the k-th stage-1 reference is the
 * guest walk's k-th step; the second-stage references before it located its table). */
static void label_trace(vms_nested_trace *t, const vms_walk_trace *g)
{
    unsigned k = 0, start = 0;
    for (unsigned i = 0; i < t->nrefs; i++) {
        if (t->ref[i].stage != 1)
            continue;
        unsigned level = k < g->nsteps ? g->step[k].level : 0;
        t->ref[i].level = t->ref[i].for_level = (uint8_t)level;
        for (unsigned j = start; j < i; j++)
            t->ref[j].for_level = (uint8_t)level;
        start = i + 1;
        k++;
    }
}

/* Turn the pending second-stage fault into the walk's result (a VM exit). */
static bool exit_s2(vms_nested *n, uint64_t gva, vms_fault *fault, vms_s2_fault *s2f)
{
    vms_s2_fault *p = &n->pfault;
    p->gva = gva;
    p->gva_valid = true;
    if (p->kind == VMS_S2F_MISCONFIG)
        n->st.exits_misconfig++;
    else
        n->st.exits_violation++;
    if (s2f)
        *s2f = *p;
    *fault = (vms_fault){.kind = VMS_FAULT_S2,
                         .va = gva,
                         .error_code = (uint32_t)p->qual,
                         .level = p->level,
                         .pa = p->gpa,
                         .flags = 0};
    return false;
}

bool vms_nested_walk(vms_nested *n, vms_pwc *guest_pwc, const vms_regs *guest_regs, uint64_t gva,
                     vms_access_kind kind, vms_nested_xlate *out, vms_fault *fault,
                     vms_s2_fault *s2f, vms_walk_stats *stats, vms_nested_trace *trace)
{
    n->st.walks++;
    n->in_walk = true;
    n->acc = (vms_s2_access){VMS_ACC_READ, true, guest_regs->user, gva, true};
    n->wstats = stats;
    n->trace = trace ? trace : n->keep_trace;
    trace = n->trace;
    n->pending = false;
    n->nheld = 0;
    if (trace)
        trace->nrefs = trace->guest_pwc_level = trace->s2_tlb_hits = 0;
    vms_walk_trace gtr;
    vms_xlate gx;
    vms_fault gf;
    bool ok = vms_walk(n->gbus, guest_pwc, guest_regs, gva, kind, &gx, &gf, stats, &gtr);
    n->in_walk = false;
    if (trace) {
        label_trace(trace, &gtr);
        trace->guest_pwc_level = gtr.pwc_level;
    }
    if (!ok && n->pending)
        return exit_s2(n, gva, fault, s2f);
    if (!ok) {
        n->st.guest_faults++;
        *fault = gf;
        return false;
    }
    uint64_t gpa = vms_xlate_pa(&gx, gva);
    vms_s2_access acc = {kind, false, guest_regs->user, gva, true};
    vms_s2_xlate hx;
    n->wstats = stats;
    if (!s2_translate(n, gpa, &acc, 0, &hx)) {
        stats->faults++;
        return exit_s2(n, gva, fault, s2f);
    }
    vms_pgsize size = gx.size < hx.size ? gx.size : hx.size;
    vms_xlate x = gx;
    x.size = size;
    x.page_pa = hpa_of(&hx, gpa) & ~(vms_pgsize_bytes(size) - 1);
    x.rw = gx.rw && hx.w;
    x.xd = gx.xd || !hx.x;
    x.dirty = gx.dirty && hx.dirty;
    out->x = x;
    out->guest = gx;
    out->host = hx;
    out->gpa = gpa;
    out->cacheable = hx.r && (hx.x || (!guest_regs->fmt && (guest_regs->efer & VMS_EFER_NXE) != 0));
    return true;
}
