/*
 * teach/vmm.c — the textbook virtual-memory manager on vmsim's parts (see teach.h).
 *
 * Per logical address (page p, offset d):
 *   1. the TLB (a modelled vms_tlb, one fully associative set) maps p -> frame: a hit;
 *   2. else vms_walk reads the page table in simulated RAM, in the "silberschatz"
 *      format (format.c: 2^page_bits 4-byte entries, V at bit 31, frame at 30:0);
 *   3. else a page fault: a frame from the buddy allocator (lowest first) or, when none is
 *      free, a victim chosen by a page-replacement plug-in (its table entry cleared and
 *      its TLB entry invalidated); the page is read from the backing-store file into the
 *      frame's bytes in RAM, and the entry written.
 * The TLB is filled after a miss. The byte at frame * pagesize + d is the value.
 *
 * Invariants: a valid entry's frame holds exactly that page (owner[frame] == p); the
 * policy tracks exactly the resident pages.
 */
#include "vmsim/teach.h"

#include <stdio.h>
#include <string.h>

#include "arch/teach/teach.h"
#include "util/util.h"
#include "vmsim/bus.h"
#include "vmsim/frames.h"
#include "vmsim/policy.h"
#include "vmsim/ram.h"
#include "vmsim/tlb.h"

#define ENTRY_BYTES 4u

void vms_teach_config_default(vms_teach_config *c)
{
    *c = (vms_teach_config){8, 256, 16, "fifo", "fifo", NULL, 1};
}

typedef struct vmm {
    const vms_allocator *a;
    const vms_teach_config *cfg;
    vms_ram *ram;
    vms_bus *bus;
    vms_pt_format fmt; /* the silberschatz format shaped for page_bits */
    vms_regs regs;     /* fmt and the page table's base (cr3) */
    vms_walk_stats walk_stats;
    vms_frames *fr;
    vms_tlb *tlb;
    const vms_page_policy *pol;
    void *pst;
    FILE *backing;
    uint64_t npages, pt_base;
    uint64_t *owner;    /* frame -> page */
    uint8_t *young;     /* page -> referenced since the policy last asked */
    uint64_t *next_use; /* page -> index of its next reference (for opt) */
    uint64_t *next_at;  /* index -> index of the next reference to the same page */
    uint8_t *buf;       /* one page, for backing-store reads */
    vms_teach_stats st;
} vmm;

static bool host_young(void *ud, uint64_t page)
{
    vmm *v = ud;
    bool y = v->young[page];
    v->young[page] = 0;
    return y;
}

static uint64_t host_next_use(void *ud, uint64_t page)
{
    return ((vmm *)ud)->next_use[page];
}

static uint64_t entry_addr(const vmm *v, uint64_t page)
{
    return v->pt_base + ENTRY_BYTES * page;
}

/* Give page p a frame: a free one, or a victim's. */
static vms_status get_frame(vmm *v, uint64_t *frame, vms_err *err)
{
    vms_status st = vms_frames_alloc(v->fr, 0, frame, NULL);
    if (st != VMS_ERR_NOTFOUND)
        return st == VMS_OK ? VMS_OK
                            : vmsi_err(err, st, "vmm: frame allocator: %s", vms_status_str(st));
    vms_policy_host h = {v, host_young, host_next_use};
    uint64_t victim;
    if (!v->pol->victim(v->pst, &h, &victim))
        return vmsi_err(err, VMS_ERR_INVAL, "vmm: no frame free and no resident page to evict");
    uint64_t e = 0;
    vmsi_teach_read_entry(v->bus, entry_addr(v, victim), ENTRY_BYTES, &e);
    *frame = vms_fmt_pte_pfn(&v->fmt, e);
    vmsi_teach_write_entry(v->bus, entry_addr(v, victim), ENTRY_BYTES, 0);
    vms_tlb_flush_va(v->tlb, 0, victim << VMS_PAGE_SHIFT, true);
    v->st.evictions++;
    return VMS_OK;
}

/* The page fault: bring page p in from the backing store. */
static vms_status fault_in(vmm *v, uint64_t page, uint64_t *frame, vms_err *err)
{
    size_t psize = (size_t)1 << v->cfg->page_bits;
    vms_status st = get_frame(v, frame, err);
    if (st != VMS_OK)
        return st;
    if (fseek(v->backing, (long)(page * psize), SEEK_SET) != 0 ||
        fread(v->buf, 1, psize, v->backing) != psize)
        return vmsi_err(err, VMS_ERR_IO, "%s: cannot read page %llu (%zu bytes at offset %llu)",
                        v->cfg->backing, (unsigned long long)page, psize,
                        (unsigned long long)(page * psize));
    v->st.backing_reads++;
    st = vms_ram_write(v->ram, *frame * psize, v->buf, psize);
    if (st == VMS_OK)
        st = vmsi_teach_write_entry(v->bus, entry_addr(v, page), ENTRY_BYTES,
                                    vms_fmt_mk_pte(&v->fmt, *frame, 1, 0));
    if (st == VMS_OK)
        st = v->pol->insert(v->pst, page);
    if (st != VMS_OK)
        return vmsi_err(err, st, "vmm: %s", vms_status_str(st));
    v->owner[*frame] = page;
    v->st.page_faults++;
    return VMS_OK;
}

/* Translate one logical address; fills *pa. */
static vms_status translate(vmm *v, uint64_t la, uint64_t *pa, vms_err *err)
{
    unsigned pb = v->cfg->page_bits;
    uint64_t page = la >> pb, off = la & ((UINT64_C(1) << pb) - 1), frame = 0;
    vms_xlate x;
    if (vms_tlb_lookup(v->tlb, 0, page << VMS_PAGE_SHIFT, &x)) {
        v->st.tlb_hits++;
        frame = x.page_pa >> VMS_PAGE_SHIFT;
        if (v->pol->access)
            v->pol->access(v->pst, page);
    } else {
        vms_fault f;
        if (vms_walk(v->bus, NULL, &v->regs, la, VMS_ACC_READ, &x, &f, &v->walk_stats, NULL)) {
            frame = x.page_pa >> pb;
            if (v->pol->access)
                v->pol->access(v->pst, page);
        } else {
            vms_status st = fault_in(v, page, &frame, err);
            if (st != VMS_OK)
                return st;
        }
        x = (vms_xlate){.page_pa = frame << VMS_PAGE_SHIFT, .size = VMS_PG_4K, .rw = 1, .us = 1};
        vms_tlb_fill(v->tlb, 0, page << VMS_PAGE_SHIFT, &x);
    }
    v->young[page] = 1;
    *pa = (frame << pb) | off;
    return VMS_OK;
}

static vms_status check_cfg(const vms_teach_config *c, vms_err *err)
{
    if (c->page_bits < 4 || c->page_bits > 12)
        return vmsi_err(err, VMS_ERR_INVAL, "vmm: page bits %u: expected 4 … 12", c->page_bits);
    if (c->frames < 1 || c->frames > (1u << c->page_bits))
        return vmsi_err(err, VMS_ERR_INVAL, "vmm: %u frames: expected 1 … %u", c->frames,
                        1u << c->page_bits);
    if (c->tlb_entries < 1 || c->tlb_entries > VMS_TLB_MAX_WAYS)
        return vmsi_err(err, VMS_ERR_INVAL, "vmm: %u TLB entries: expected 1 … %u", c->tlb_entries,
                        VMS_TLB_MAX_WAYS);
    if (!c->backing)
        return vmsi_err(err, VMS_ERR_INVAL, "vmm: no backing store file given");
    return VMS_OK;
}

/* Build the parts; on failure the caller's cleanup frees what was made. */
static vms_status setup(vmm *v, const uint64_t *addrs, size_t n, vms_err *err)
{
    const vms_teach_config *c = v->cfg;
    v->npages = UINT64_C(1) << c->page_bits;
    uint64_t mem = (uint64_t)c->frames << c->page_bits;
    v->pt_base = (mem + VMS_PAGE_MASK) & ~VMS_PAGE_MASK;
    uint64_t limit = (v->pt_base + ENTRY_BYTES * v->npages + VMS_PAGE_MASK) & ~VMS_PAGE_MASK;
    vmsi_teach_format_shape(&vmsi_fmt_silberschatz, c->page_bits, 2 * c->page_bits, &v->fmt);
    v->regs = (vms_regs){.fmt = &v->fmt, .cr3 = v->pt_base};
    vms_frames_range range = {0, c->frames};
    vms_frames_config fc = {&range, 1, VMS_FRAMES_FIT_LOWEST, false};
    vms_tlb_config tc = {1, {{VMS_TLB_SIZE_BIT(VMS_PG_4K), 1, c->tlb_entries, c->tlb_policy}}};
    vms_policy_host h = {v, host_young, host_next_use};
    vms_status st = vms_ram_create(v->a, limit, &v->ram, err);
    if (st == VMS_OK)
        st = vms_bus_create(v->a, v->ram, &v->bus, err);
    if (st == VMS_OK)
        st = vms_bus_add_ram(v->bus, 0, limit, err);
    if (st == VMS_OK)
        st = vms_frames_create(v->a, &fc, &v->fr, err);
    if (st == VMS_OK)
        st = vms_tlb_create(v->a, &tc, c->seed, &v->tlb, err);
    if (st == VMS_OK)
        st = vms_page_policy_select(c->page_policy, &h, &v->pol, err);
    if (st == VMS_OK)
        st = v->pol->create(v->a, c->frames, c->seed, &v->pst, err);
    if (st != VMS_OK)
        return st;
    v->owner = vmsi_calloc(v->a, c->frames, sizeof *v->owner);
    v->young = vmsi_calloc(v->a, v->npages, 1);
    v->next_use = vmsi_calloc(v->a, v->npages, sizeof *v->next_use);
    v->next_at = vmsi_calloc(v->a, n + 1, sizeof *v->next_at);
    v->buf = vmsi_alloc(v->a, (size_t)1 << c->page_bits);
    if (!v->owner || !v->young || !v->next_use || !v->next_at || !v->buf)
        return vmsi_err(err, VMS_ERR_NOMEM, "vmm: out of memory");
    /* next_at[i]: the next index referencing the same page (n: never), for opt. */
    uint64_t mask = (UINT64_C(1) << (2 * c->page_bits)) - 1;
    for (uint64_t p = 0; p < v->npages; p++)
        v->next_use[p] = UINT64_MAX;
    for (size_t i = n; i-- > 0;) {
        uint64_t p = (addrs[i] & mask) >> c->page_bits;
        v->next_at[i] = v->next_use[p];
        v->next_use[p] = i;
    }
    v->backing = fopen(c->backing, "rb");
    if (!v->backing)
        return vmsi_err(err, VMS_ERR_IO, "%s: cannot open the backing store", c->backing);
    return VMS_OK;
}

static void teardown(vmm *v, size_t n)
{
    if (v->backing)
        fclose(v->backing);
    if (v->pol && v->pst)
        v->pol->destroy(v->pst);
    vmsi_free(v->a, v->owner, v->cfg->frames * sizeof *v->owner);
    vmsi_free(v->a, v->young, v->npages);
    vmsi_free(v->a, v->next_use, v->npages * sizeof *v->next_use);
    vmsi_free(v->a, v->next_at, (n + 1) * sizeof *v->next_at);
    vmsi_free(v->a, v->buf, (size_t)1 << v->cfg->page_bits);
    vms_tlb_destroy(v->tlb);
    vms_frames_destroy(v->fr);
    vms_bus_destroy(v->bus);
    vms_ram_destroy(v->ram);
}

vms_status vms_teach_vmm(const vms_allocator *a, const vms_teach_config *cfg, const uint64_t *addrs,
                         size_t n, vms_teach_fn fn, void *ud, vms_teach_stats *out, vms_err *err)
{
    memset(out, 0, sizeof *out);
    vms_status st = check_cfg(cfg, err);
    if (st != VMS_OK)
        return st;
    vmm v = {.a = a ? a : vms_allocator_default(), .cfg = cfg};
    st = setup(&v, addrs, n, err);
    uint64_t mask = (UINT64_C(1) << (2 * cfg->page_bits)) - 1;
    for (size_t i = 0; st == VMS_OK && i < n; i++) {
        uint64_t la = addrs[i] & mask, pa;
        v.next_use[la >> cfg->page_bits] = v.next_at[i]; /* the future after this reference */
        st = translate(&v, la, &pa, err);
        if (st != VMS_OK)
            break;
        uint8_t byte = 0;
        vms_ram_read8(v.ram, pa, &byte);
        v.st.translated++;
        if (fn)
            fn(ud, la, pa, (int)(int8_t)byte);
    }
    *out = v.st;
    teardown(&v, n);
    return st;
}
