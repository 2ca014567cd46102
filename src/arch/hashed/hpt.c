/*
 * hashed/hpt.c — the PowerPC-style hashed page table (vmsim/arch/hashed.h): the VSID
 * and the hash (Power ISA Book III "Hashed Page Table Search"; Linux's hpt_vpn,
 * hpt_hash and vsid_scramble in arch/powerpc/include/asm/book3s/64/mmu-hash.h), the
 * hardware search, and the kernel's insert and invalidate (Linux's native_hpte_insert,
 * hpte_remove and native_hpte_invalidate, arch/powerpc/mm/book3s64/hash_native.c).
 *
 * The search reads the primary group's 8 entries, then the secondary group's, one
 * 16-byte entry per memory reference, and stops at the first match: a hit in slot s of
 * the primary group costs s + 1 references, a miss 16. On a hit it sets R, and C on a
 * store, in dword 1 (one write-back, as the radix walker's A/D).
 */
#include "arch/hashed/hashed.h"
#include "vmsim/bus.h"

__extension__ typedef unsigned __int128 u128;

#define VSID_MODULUS ((UINT64_C(1) << VMS_HPT_VSID_BITS) - 1)

static uint64_t mulmod(uint64_t a, uint64_t b)
{
    return (uint64_t)((u128)a * b % VSID_MODULUS);
}

/* The inverse of the multiplier modulo 2^49 - 1 (extended Euclid): proto from VSID. */
static uint64_t vsid_unscramble(uint64_t vsid)
{
    int64_t t = 0, nt = 1;
    uint64_t r = VSID_MODULUS, nr = VMS_HPT_VSID_MULT;
    while (nr) {
        uint64_t q = r / nr, tr = r - q * nr;
        int64_t tt = t - (int64_t)q * nt;
        t = nt;
        nt = tt;
        r = nr;
        nr = tr;
    }
    uint64_t inv = t < 0 ? (uint64_t)(t + (int64_t)VSID_MODULUS) : (uint64_t)t;
    return mulmod(vsid, inv);
}

uint64_t vms_hpt_vsid(uint32_t ctx, uint64_t ea, unsigned va_bits)
{
    unsigned esid_bits = va_bits - VMS_HPT_SID_SHIFT;
    uint64_t proto =
        (uint64_t)ctx << esid_bits | vmsi_design_ea_bits(ea, va_bits) >> VMS_HPT_SID_SHIFT;
    return mulmod(proto, VMS_HPT_VSID_MULT);
}

uint64_t vms_hpt_hash(uint64_t vsid, uint64_t ea)
{
    uint64_t page = (ea & ((UINT64_C(1) << VMS_HPT_SID_SHIFT) - 1)) >> 12;
    return (vsid ^ page) & VMS_HPT_HASH_MASK;
}

uint64_t vms_hpt_group_pa(const vms_hpt *t, uint64_t hash, bool secondary)
{
    uint64_t g = (secondary ? ~hash : hash) & t->mask;
    return t->base + g * VMS_HPT_GROUP_BYTES;
}

uint64_t vms_hpt_mk_v(uint64_t vsid, uint64_t ea, bool secondary)
{
    /* AVA = VA[77:23], VA = VSID << 28 | EA[27:0] (Linux hpte_encode_avpn). */
    uint64_t ava = vsid << (VMS_HPT_SID_SHIFT - 23) | (ea & 0x0fffffffu) >> 23;
    return (ava << VMS_HPTE_V_AVPN_SHIFT & VMS_HPTE_V_AVPN) |
           (secondary ? VMS_HPTE_V_SECONDARY : 0) | VMS_HPTE_V_VALID;
}

uint64_t vms_hpt_mk_r(uint64_t pa, unsigned prot, unsigned pkey, bool pcd, bool pwt)
{
    /* PP under Linux's keys (Ks = 0, Kp = 1), as htab_convert_pte_flags chooses. */
    uint64_t pp;
    if (prot & VMS_PGPROT_U)
        pp = (prot & VMS_PGPROT_W) ? 2 : 3;
    else
        pp = (prot & VMS_PGPROT_W) ? 0 : (VMS_HPTE_R_PP0 | 2);
    uint64_t key = ((uint64_t)(pkey >> 3) & 3) << 60 | ((uint64_t)(pkey & 7) << 9);
    return (pa & VMS_HPTE_R_RPN) | pp | key | (prot & VMS_PGPROT_X ? 0 : VMS_HPTE_R_N) |
           (pcd ? VMS_HPTE_R_I : 0) | (pwt ? VMS_HPTE_R_W : 0) | VMS_HPTE_R_M;
}

void vms_hpt_entry_va(const vms_hpt *t, uint64_t g, uint64_t v, uint32_t *ctx, uint64_t *ea)
{
    uint64_t ava = (v & VMS_HPTE_V_AVPN) >> VMS_HPTE_V_AVPN_SHIFT;
    uint64_t vsid = ava >> (VMS_HPT_SID_SHIFT - 23);
    uint64_t hash = (v & VMS_HPTE_V_SECONDARY) ? ~g : g; /* its low bits, as the group */
    uint64_t page_lo = (hash ^ vsid) & 0x7ff;            /* EA[22:12] */
    uint64_t seg_off = (ava & 0x1f) << 23 | page_lo << 12;
    uint64_t proto = vsid_unscramble(vsid);
    unsigned esid_bits = t->va_bits - VMS_HPT_SID_SHIFT;
    *ctx = (uint32_t)(proto >> esid_bits);
    uint64_t low = (proto & ((UINT64_C(1) << esid_bits) - 1)) << VMS_HPT_SID_SHIFT | seg_off;
    *ea = vmsi_design_ea_canon(low, t->va_bits);
}

/* Does entry v match the wanted dword 0 (AVA, B, L, H and V; SW bits ignored)? */
static inline bool hpte_match(uint64_t v, uint64_t want)
{
    const uint64_t cmp = UINT64_C(0xc000000000000000) | VMS_HPTE_V_AVPN | VMS_HPTE_V_LARGE |
                         VMS_HPTE_V_SECONDARY | VMS_HPTE_V_VALID;
    return ((v ^ want) & cmp) == 0;
}

/* Decode dword 1 into the TLB's translation (rights back in x86's terms). */
static void decode_r(uint64_t r, bool kernel_half, vms_xlate *x)
{
    unsigned pp = (unsigned)(r & VMS_HPTE_R_PP) | ((r & VMS_HPTE_R_PP0) ? 4u : 0u);
    *x = (vms_xlate){0};
    x->page_pa = r & VMS_HPTE_R_RPN;
    x->size = VMS_PG_4K;
    x->us = pp == 1 || pp == 2 || pp == 3;
    x->rw = pp == 0 || pp == 2;
    x->xd = (r & VMS_HPTE_R_N) != 0;
    x->global = kernel_half; /* kernel VSIDs are every process's */
    x->dirty = (r & VMS_HPTE_R_C) != 0;
    x->pkey = (uint8_t)((((r & VMS_HPTE_R_KEY_HI) >> 60) << 3) | ((r & VMS_HPTE_R_KEY_LO) >> 9));
    x->pcd = (r & VMS_HPTE_R_I) != 0;
    x->pwt = (r & VMS_HPTE_R_W) != 0;
}

bool vmsi_hpt_walk(vms_bus *bus, vms_pwc *pwc, const vms_regs *regs, uint64_t va,
                   vms_access_kind kind, vms_xlate *out, vms_fault *fault, vms_walk_stats *stats,
                   vms_walk_trace *trace)
{
    (void)pwc; /* no page-walk cache: there are no upper levels to cache */
    if (trace)
        trace->nsteps = trace->pwc_level = 0;
    const vms_pt_format *f = regs->fmt;
    if (!vms_fmt_canonical(f, va)) {
        *fault = (vms_fault){.kind = VMS_FAULT_GP, .va = va, .level = 0};
        return false;
    }
    stats->walks++;
    vms_hpt t = {regs->htab, regs->htab_mask, f->va_bits};
    uint32_t ctx = vms_design_ctx(regs, va);
    uint64_t vsid = vms_hpt_vsid(ctx, va, f->va_bits), hash = vms_hpt_hash(vsid, va);
    for (unsigned h = 0; h < 2; h++) {
        uint64_t want = vms_hpt_mk_v(vsid, va, h == 1);
        uint64_t g = vms_hpt_group_pa(&t, hash, h == 1);
        for (unsigned s = 0; s < VMS_HPT_GROUP_ENTRIES; s++) {
            uint64_t pa = g + (uint64_t)s * VMS_HPT_ENTRY_BYTES, v = 0, r = 0;
            if (vms_bus_read64(bus, pa, &v) != VMS_OK || vms_bus_read64(bus, pa + 8, &r) != VMS_OK)
                return vmsi_design_bus(va, pa, fault, stats);
            stats->mem_refs++;
            vmsi_design_step(trace, h + 1, g, s, pa, v);
            if (!hpte_match(v, want))
                continue;
            vms_xlate x;
            decode_r(r, ctx == 0, &x);
            if (!vmsi_design_finish(regs, kind, va, &x, fault, stats))
                return false;
            uint64_t nr = r | VMS_HPTE_R_R | (kind == VMS_ACC_WRITE ? VMS_HPTE_R_C : 0);
            if (nr != r) {
                if (vms_bus_write64(bus, pa + 8, nr) != VMS_OK)
                    return vmsi_design_bus(va, pa + 8, fault, stats);
                stats->ad_writes++;
            }
            x.dirty = (nr & VMS_HPTE_R_C) != 0;
            *out = x;
            return true;
        }
    }
    return vmsi_design_miss(regs, kind, va, fault, stats);
}

/* ---- the kernel's side ---- */

/* Find (ctx, ea)'s entry: its address, or 0. */
static uint64_t find(vms_bus *bus, const vms_hpt *t, uint32_t ctx, uint64_t ea)
{
    uint64_t vsid = vms_hpt_vsid(ctx, ea, t->va_bits), hash = vms_hpt_hash(vsid, ea);
    for (unsigned h = 0; h < 2; h++) {
        uint64_t want = vms_hpt_mk_v(vsid, ea, h == 1), g = vms_hpt_group_pa(t, hash, h == 1);
        for (unsigned s = 0; s < VMS_HPT_GROUP_ENTRIES; s++) {
            uint64_t pa = g + (uint64_t)s * VMS_HPT_ENTRY_BYTES, v = 0;
            if (vms_bus_read64(bus, pa, &v) == VMS_OK && hpte_match(v, want))
                return pa;
        }
    }
    return 0;
}

unsigned vms_hpt_invalidate(vms_bus *bus, const vms_hpt *t, uint32_t ctx, uint64_t ea)
{
    uint64_t pa = find(bus, t, ctx, ea);
    if (!pa)
        return 0;
    (void)vms_bus_write64(bus, pa, 0);
    (void)vms_bus_write64(bus, pa + 8, 0);
    return 1;
}

vms_status vms_hpt_insert(vms_bus *bus, const vms_hpt *t, uint32_t ctx, uint64_t ea, uint64_t r,
                          uint32_t *cursor, vms_hpt_slot *out)
{
    return vms_hpt_insert_v(bus, t, ctx, ea, r, 0, cursor, out);
}

vms_status vms_hpt_insert_v(vms_bus *bus, const vms_hpt *t, uint32_t ctx, uint64_t ea, uint64_t r,
                            uint64_t vflags, uint32_t *cursor, vms_hpt_slot *out)
{
    *out = (vms_hpt_slot){0};
    out->replaced = vms_hpt_invalidate(bus, t, ctx, ea) != 0;
    uint64_t vsid = vms_hpt_vsid(ctx, ea, t->va_bits), hash = vms_hpt_hash(vsid, ea);
    vflags &= VMS_HPTE_V_BOLTED;
    for (unsigned h = 0; h < 2; h++) {
        uint64_t g = vms_hpt_group_pa(t, hash, h == 1);
        for (unsigned s = 0; s < VMS_HPT_GROUP_ENTRIES; s++) {
            uint64_t pa = g + (uint64_t)s * VMS_HPT_ENTRY_BYTES, v = 0;
            if (vms_bus_read64(bus, pa, &v) != VMS_OK)
                return VMS_ERR_BUS;
            if (v & VMS_HPTE_V_VALID)
                continue;
            out->group = (g - t->base) / VMS_HPT_GROUP_BYTES;
            out->slot = s;
            out->secondary = h == 1;
            if (vms_bus_write64(bus, pa + 8, r) != VMS_OK ||
                vms_bus_write64(bus, pa, vms_hpt_mk_v(vsid, ea, h == 1) | vflags) != VMS_OK)
                return VMS_ERR_BUS;
            return VMS_OK;
        }
    }
    /* Both groups full: evict from the primary group (hpte_remove), from slot cursor & 7
     * on, passing bolted entries by; a primary group of bolted entries only: the
     * secondary's, the same way. */
    unsigned first = *cursor & (VMS_HPT_GROUP_ENTRIES - 1);
    *cursor += 1;
    for (unsigned h = 0; h < 2; h++) {
        uint64_t g = vms_hpt_group_pa(t, hash, h == 1);
        for (unsigned i = 0; i < VMS_HPT_GROUP_ENTRIES; i++) {
            unsigned s = (first + i) & (VMS_HPT_GROUP_ENTRIES - 1);
            uint64_t pa = g + (uint64_t)s * VMS_HPT_ENTRY_BYTES, old = 0;
            if (vms_bus_read64(bus, pa, &old) != VMS_OK)
                return VMS_ERR_BUS;
            if (old & VMS_HPTE_V_BOLTED)
                continue;
            out->group = (g - t->base) / VMS_HPT_GROUP_BYTES;
            out->slot = s;
            out->secondary = h == 1;
            out->evicted = true;
            vms_hpt_entry_va(t, out->group, old, &out->evicted_ctx, &out->evicted_ea);
            if (vms_bus_write64(bus, pa + 8, r) != VMS_OK ||
                vms_bus_write64(bus, pa, vms_hpt_mk_v(vsid, ea, h == 1) | vflags) != VMS_OK)
                return VMS_ERR_BUS;
            return VMS_OK;
        }
    }
    return VMS_ERR_EXISTS; /* 16 bolted entries: no room */
}

uint64_t vms_hpt_invalidate_range(vms_bus *bus, const vms_hpt *t, uint32_t ctx, bool all,
                                  uint64_t start, uint64_t end)
{
    uint64_t n = 0, groups = t->mask + 1;
    for (uint64_t g = 0; g < groups; g++) {
        uint64_t grp[2 * VMS_HPT_GROUP_ENTRIES];
        uint64_t base = t->base + g * VMS_HPT_GROUP_BYTES;
        if (vms_bus_read(bus, base, grp, sizeof grp) != VMS_OK)
            return n;
        for (unsigned s = 0; s < VMS_HPT_GROUP_ENTRIES; s++) {
            uint64_t v = grp[2 * s];
            if (!(v & VMS_HPTE_V_VALID) || (all && (v & VMS_HPTE_V_BOLTED)))
                continue;
            uint32_t c;
            uint64_t ea;
            vms_hpt_entry_va(t, g, v, &c, &ea);
            if ((!all && c != ctx) || ea < start || ea >= end)
                continue;
            uint64_t pa = base + (uint64_t)s * VMS_HPT_ENTRY_BYTES;
            (void)vms_bus_write64(bus, pa, 0);
            (void)vms_bus_write64(bus, pa + 8, 0);
            n++;
        }
    }
    return n;
}
