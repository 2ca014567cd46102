/*
 * hashed/ipt.c — the classic inverted page table (vmsim/arch/hashed.h): one entry per
 * physical frame, a hash anchor table, and collision chains through the entries, as
 * the IBM RT PC's and System/38's (seed 002 §08: "size proportional to physical
 * memory"). The hardware search reads the anchor, then one entry per chain link; the
 * kernel links and unlinks entries (its inserts keep a chain at most VMS_IPT_MAX_CHAIN
 * long, so a search reads at most 16 entries).
 *
 * A search's anchor read is charged to the caches as the 8-byte-aligned word holding
 * the 4-byte anchor (a trace step names 8 bytes); an entry's as its dword 0, which
 * holds the R and C bits the search sets.
 */
#include "arch/hashed/hashed.h"
#include "vmsim/bus.h"

#define KNUTH UINT64_C(0x9E3779B97F4A7C15)

uint64_t vms_ipt_hash(const vms_ipt *t, uint32_t ctx, uint64_t ea)
{
    uint64_t vpn = vmsi_design_ea_bits(ea, t->va_bits) >> 12;
    return ((vpn ^ (uint64_t)ctx << 45) * KNUTH) >> (64 - t->hat_bits);
}

uint64_t vms_ipt_mk_d0(const vms_ipt *t, uint64_t ea, unsigned prot, unsigned pkey, bool pcd,
                       bool pwt)
{
    uint64_t vpn = vmsi_design_ea_bits(ea, t->va_bits) & ~UINT64_C(0xfff);
    return VMS_IPTE_V | (vpn & VMS_IPTE_VPN) | (prot & VMS_PGPROT_W ? VMS_IPTE_RW : 0) |
           (prot & VMS_PGPROT_U ? VMS_IPTE_US : 0) | (prot & VMS_PGPROT_X ? 0 : VMS_IPTE_XD) |
           (pcd ? VMS_IPTE_PCD : 0) | (pwt ? VMS_IPTE_PWT : 0) |
           ((uint64_t)(pkey & 0xf) << VMS_IPTE_PKEY_SHIFT);
}

static uint64_t entry_pa(const vms_ipt *t, uint64_t frame)
{
    return t->base + frame * VMS_IPT_ENTRY_BYTES;
}

static uint64_t anchor_pa(const vms_ipt *t, uint64_t h)
{
    return t->hat + h * VMS_IPT_HAT_BYTES;
}

static bool entry_matches(const vms_ipt *t, uint64_t d0, uint64_t d1, uint32_t ctx, uint64_t ea)
{
    uint64_t vpn = vmsi_design_ea_bits(ea, t->va_bits) & VMS_IPTE_VPN;
    return (d0 & VMS_IPTE_V) && (d0 & VMS_IPTE_VPN) == vpn && (uint32_t)(d1 >> 32) == ctx;
}

bool vmsi_ipt_walk(vms_bus *bus, vms_pwc *pwc, const vms_regs *regs, uint64_t va,
                   vms_access_kind kind, vms_xlate *out, vms_fault *fault, vms_walk_stats *stats,
                   vms_walk_trace *trace)
{
    (void)pwc;
    if (trace)
        trace->nsteps = trace->pwc_level = 0;
    const vms_pt_format *f = regs->fmt;
    if (!vms_fmt_canonical(f, va)) {
        *fault = (vms_fault){.kind = VMS_FAULT_GP, .va = va, .level = 0};
        return false;
    }
    stats->walks++;
    vms_ipt t = {regs->htab, regs->htab_mask, regs->hat, regs->hat_bits, f->va_bits};
    uint32_t ctx = vms_design_ctx(regs, va);
    uint64_t h = vms_ipt_hash(&t, ctx, va), apa = anchor_pa(&t, h), word = 0;
    if (vms_bus_read64(bus, apa & ~UINT64_C(7), &word) != VMS_OK)
        return vmsi_design_bus(va, apa, fault, stats);
    stats->mem_refs++;
    vmsi_design_step(trace, 1, t.hat, (unsigned)h, apa & ~UINT64_C(7), word);
    uint32_t link = (uint32_t)(word >> (8 * (apa & 7)));
    for (unsigned n = 0; link && n < VMS_IPT_MAX_CHAIN; n++) {
        uint64_t frame = link - 1u, pa = entry_pa(&t, frame), d0 = 0, d1 = 0;
        if (frame >= t.nframes)
            break; /* a link outside the table ends the chain (the kernel never writes one) */
        if (vms_bus_read64(bus, pa, &d0) != VMS_OK || vms_bus_read64(bus, pa + 8, &d1) != VMS_OK)
            return vmsi_design_bus(va, pa, fault, stats);
        stats->mem_refs++;
        vmsi_design_step(trace, 2, t.base, (unsigned)frame, pa, d0);
        if (!entry_matches(&t, d0, d1, ctx, va)) {
            link = (uint32_t)d1;
            continue;
        }
        vms_xlate x = {0};
        x.page_pa = frame << 12;
        x.size = VMS_PG_4K;
        x.rw = (d0 & VMS_IPTE_RW) != 0;
        x.us = (d0 & VMS_IPTE_US) != 0;
        x.xd = (d0 & VMS_IPTE_XD) != 0;
        x.global = ctx == 0;
        x.pkey = (uint8_t)((d0 & VMS_IPTE_PKEY) >> VMS_IPTE_PKEY_SHIFT);
        x.pcd = (d0 & VMS_IPTE_PCD) != 0;
        x.pwt = (d0 & VMS_IPTE_PWT) != 0;
        if (!vmsi_design_finish(regs, kind, va, &x, fault, stats))
            return false;
        uint64_t nd0 = d0 | VMS_IPTE_R | (kind == VMS_ACC_WRITE ? VMS_IPTE_C : 0);
        if (nd0 != d0) {
            if (vms_bus_write64(bus, pa, nd0) != VMS_OK)
                return vmsi_design_bus(va, pa, fault, stats);
            stats->ad_writes++;
        }
        x.dirty = (nd0 & VMS_IPTE_C) != 0;
        *out = x;
        return true;
    }
    return vmsi_design_miss(regs, kind, va, fault, stats);
}

/* ---- the kernel's side ---- */

static uint32_t read_anchor(vms_bus *bus, const vms_ipt *t, uint64_t h)
{
    uint32_t v = 0;
    (void)vms_bus_read(bus, anchor_pa(t, h), &v, sizeof v);
    return v;
}

static void write_anchor(vms_bus *bus, const vms_ipt *t, uint64_t h, uint32_t v)
{
    (void)vms_bus_write(bus, anchor_pa(t, h), &v, sizeof v);
}

static void read_entry(vms_bus *bus, const vms_ipt *t, uint64_t frame, uint64_t *d0, uint64_t *d1)
{
    *d0 = *d1 = 0;
    (void)vms_bus_read64(bus, entry_pa(t, frame), d0);
    (void)vms_bus_read64(bus, entry_pa(t, frame) + 8, d1);
}

static void write_entry(vms_bus *bus, const vms_ipt *t, uint64_t frame, uint64_t d0, uint64_t d1)
{
    (void)vms_bus_write64(bus, entry_pa(t, frame) + 8, d1);
    (void)vms_bus_write64(bus, entry_pa(t, frame), d0);
}

/* The EA a valid entry maps (canonical). */
static uint64_t entry_ea(const vms_ipt *t, uint64_t d0)
{
    return vmsi_design_ea_canon(d0 & VMS_IPTE_VPN, t->va_bits);
}

/* Unlink frame's entry from the chain of anchor h and clear it. */
static void unlink_frame(vms_bus *bus, const vms_ipt *t, uint64_t h, uint64_t frame)
{
    uint64_t d0, d1;
    read_entry(bus, t, frame, &d0, &d1);
    uint32_t next = (uint32_t)d1, link = read_anchor(bus, t, h);
    if (link == frame + 1) {
        write_anchor(bus, t, h, next);
    } else {
        for (unsigned n = 0; link && n <= t->nframes; n++) {
            uint64_t p0, p1;
            read_entry(bus, t, link - 1u, &p0, &p1);
            if ((uint32_t)p1 == frame + 1) {
                write_entry(bus, t, link - 1u, p0, (p1 & ~UINT64_C(0xffffffff)) | next);
                break;
            }
            link = (uint32_t)p1;
        }
    }
    write_entry(bus, t, frame, 0, 0);
}

/* The frame whose entry maps (ctx, ea) in anchor h's chain, or UINT64_MAX. */
static uint64_t find(vms_bus *bus, const vms_ipt *t, uint64_t h, uint32_t ctx, uint64_t ea)
{
    uint32_t link = read_anchor(bus, t, h);
    for (unsigned n = 0; link && link - 1u < t->nframes && n <= t->nframes; n++) {
        uint64_t d0, d1;
        read_entry(bus, t, link - 1u, &d0, &d1);
        if (entry_matches(t, d0, d1, ctx, ea))
            return link - 1u;
        link = (uint32_t)d1;
    }
    return UINT64_MAX;
}

unsigned vms_ipt_invalidate(vms_bus *bus, const vms_ipt *t, uint32_t ctx, uint64_t ea)
{
    uint64_t h = vms_ipt_hash(t, ctx, ea), frame = find(bus, t, h, ctx, ea);
    if (frame == UINT64_MAX)
        return 0;
    unlink_frame(bus, t, h, frame);
    return 1;
}

vms_status vms_ipt_insert(vms_bus *bus, const vms_ipt *t, uint32_t ctx, uint64_t ea, uint64_t frame,
                          uint64_t d0, vms_ipt_slot *out)
{
    *out = (vms_ipt_slot){0};
    if (frame >= t->nframes)
        return VMS_ERR_RANGE;
    uint64_t o0, o1;
    read_entry(bus, t, frame, &o0, &o1);
    if (o0 & VMS_IPTE_V) { /* the frame maps a page already: this one or an alias */
        uint32_t octx = (uint32_t)(o1 >> 32);
        uint64_t oea = entry_ea(t, o0);
        bool same = octx == ctx &&
                    oea == (vmsi_design_ea_canon(
                               vmsi_design_ea_bits(ea, t->va_bits) & ~UINT64_C(0xfff), t->va_bits));
        out->displaced = !same;
        out->displaced_ctx = octx;
        out->displaced_ea = oea;
        unlink_frame(bus, t, vms_ipt_hash(t, octx, oea), frame);
    }
    (void)vms_ipt_invalidate(bus, t, ctx, ea); /* the page in another frame: stale */
    uint64_t h = vms_ipt_hash(t, ctx, ea);
    out->anchor = h;
    /* Keep the chain within VMS_IPT_MAX_CHAIN: drop its last entry when full. */
    unsigned len = 0;
    uint64_t tail = UINT64_MAX;
    for (uint32_t link = read_anchor(bus, t, h); link && link - 1u < t->nframes;) {
        uint64_t d0x, d1x;
        read_entry(bus, t, link - 1u, &d0x, &d1x);
        len++;
        tail = link - 1u;
        link = (uint32_t)d1x;
        if (len > t->nframes)
            break;
    }
    if (len >= VMS_IPT_MAX_CHAIN) {
        unlink_frame(bus, t, h, tail);
        out->chain_evicted = true;
        len--;
    }
    uint32_t head = read_anchor(bus, t, h);
    write_entry(bus, t, frame, d0, (uint64_t)ctx << 32 | head);
    write_anchor(bus, t, h, (uint32_t)(frame + 1));
    out->chain_len = len + 1;
    return VMS_OK;
}

uint64_t vms_ipt_invalidate_range(vms_bus *bus, const vms_ipt *t, uint32_t ctx, bool all,
                                  uint64_t start, uint64_t end)
{
    uint64_t n = 0;
    for (uint64_t f = 0; f < t->nframes; f++) {
        uint64_t d0, d1;
        read_entry(bus, t, f, &d0, &d1);
        if (!(d0 & VMS_IPTE_V))
            continue;
        uint32_t c = (uint32_t)(d1 >> 32);
        uint64_t ea = entry_ea(t, d0);
        if ((!all && c != ctx) || ea < start || ea >= end)
            continue;
        unlink_frame(bus, t, vms_ipt_hash(t, c, ea), f);
        n++;
    }
    return n;
}
