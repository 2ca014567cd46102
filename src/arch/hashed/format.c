/*
 * hashed/format.c — the hashed and inverted designs as formats (format.h) of an x86-64
 * core: what regs.fmt names when cfg.design is hashed or inverted. The kernel keeps
 * writing x86-64 radix tables (its format stays vms_machine_format's), so the kernel
 * side of these descriptors is x86-64's (the helpers forward to it); the hardware side
 * is the design's search (hpt.c, ipt.c) with x86-64's rights check, on the x86-64
 * control registers the core keeps (CR0.WP, CR4.SMEP/SMAP/PKE, EFER.NXE, PKRU).
 *
 * The MMU operations are x86-64's, plus: flush_all (INVPCID type 2, which the kernel
 * issues when its own half changed) also empties the design's table, every context's
 * entries. Per-page and per-context table maintenance is the kernel's
 * (src/os/hashfill.c), where the PTE changes.
 *
 * entry_shift is 3: the caches are charged per 8-byte word a search names (an HPT
 * entry's dword 0, an IPT entry's dword 0, the word holding an anchor); a 16-byte entry
 * never straddles a cache line.
 */
#include <string.h>

#include "arch/hashed/hashed.h"
#include "arch/x86_64/x86_64.h"
#include "hw/core_impl.h"

const char *vms_design_name(vms_design d)
{
    return d == VMS_DESIGN_HASHED ? "hashed" : d == VMS_DESIGN_INVERTED ? "inverted" : "radix";
}

bool vms_design_parse(const char *s, vms_design *out)
{
    static const vms_design all[] = {VMS_DESIGN_RADIX, VMS_DESIGN_HASHED, VMS_DESIGN_INVERTED};
    for (unsigned i = 0; s && i < 3; i++)
        if (strcmp(s, vms_design_name(all[i])) == 0) {
            *out = all[i];
            return true;
        }
    return false;
}

uint32_t vms_design_ctx(const vms_regs *regs, uint64_t ea)
{
    return (ea >> 63) ? 0u : vms_regs_pcid(regs);
}

/* ---- the MMU operations ---- */

static vms_status d_boot(vms_core *c, uint64_t root, bool asids)
{
    return vmsi_x86_mmu_ops.boot(c, root, asids);
}

static void d_load_root(vms_core *c, uint64_t root, uint32_t asid, bool flush)
{
    vmsi_x86_mmu_ops.load_root(c, root, asid, flush);
}

static void d_flush_page(vms_core *c, uint64_t va)
{
    vmsi_x86_mmu_ops.flush_page(c, va);
}

static void d_flush_page_asid(vms_core *c, uint32_t asid, uint64_t va)
{
    vmsi_x86_mmu_ops.flush_page_asid(c, asid, va);
}

static void d_flush_asid(vms_core *c, uint32_t asid)
{
    vmsi_x86_mmu_ops.flush_asid(c, asid);
}

static void d_flush_all(vms_core *c)
{
    vmsi_x86_mmu_ops.flush_all(c);
    const vms_regs *r = &c->regs;
    if (r->fmt->walk == vmsi_hpt_walk) {
        vms_hpt t = {r->htab, r->htab_mask, r->fmt->va_bits};
        (void)vms_hpt_invalidate_range(c->m->bus, &t, 0, true, 0, UINT64_MAX);
    } else {
        vms_ipt t = {r->htab, r->htab_mask, r->hat, r->hat_bits, r->fmt->va_bits};
        (void)vms_ipt_invalidate_range(c->m->bus, &t, 0, true, 0, UINT64_MAX);
    }
}

static bool d_has_broadcast(const vms_core *c)
{
    return vmsi_x86_mmu_ops.has_broadcast(c);
}

/* Broadcasts drop TLB entries; the table's entries go where the kernel changes a PTE. */
static unsigned d_flush_broadcast(vms_core *c, uint32_t asid, uint64_t va, uint64_t npages)
{
    return vmsi_x86_mmu_ops.flush_broadcast(c, asid, va, npages);
}

static uint64_t d_sync(vms_core *c)
{
    return vmsi_x86_mmu_ops.sync(c);
}

static const vms_mmu_ops design_mmu_ops = {
    .boot = d_boot,
    .load_root = d_load_root,
    .flush_page = d_flush_page,
    .flush_page_asid = d_flush_page_asid,
    .flush_asid = d_flush_asid,
    .flush_all = d_flush_all,
    .has_broadcast = d_has_broadcast,
    .flush_broadcast = d_flush_broadcast,
    .sync = d_sync,
};

const vms_pt_format vmsi_fmt_hashed =
    VMSI_X86_FORMAT("x86_64-hashed", "x86-64 with a hashed page table (PowerPC HPT)", 4, 48,
                    vmsi_hpt_walk, &design_mmu_ops);
const vms_pt_format vmsi_fmt_hashed_la57 =
    VMSI_X86_FORMAT("x86_64-la57-hashed", "x86-64 (LA57) with a hashed page table (PowerPC HPT)", 5,
                    57, vmsi_hpt_walk, &design_mmu_ops);
const vms_pt_format vmsi_fmt_inverted = VMSI_X86_FORMAT(
    "x86_64-inverted", "x86-64 with an inverted page table", 4, 48, vmsi_ipt_walk, &design_mmu_ops);
const vms_pt_format vmsi_fmt_inverted_la57 =
    VMSI_X86_FORMAT("x86_64-la57-inverted", "x86-64 (LA57) with an inverted page table", 5, 57,
                    vmsi_ipt_walk, &design_mmu_ops);

const vms_pt_format *vms_design_format(vms_design d, unsigned levels)
{
    if (d == VMS_DESIGN_HASHED)
        return levels == 5 ? &vmsi_fmt_hashed_la57 : &vmsi_fmt_hashed;
    if (d == VMS_DESIGN_INVERTED)
        return levels == 5 ? &vmsi_fmt_inverted_la57 : &vmsi_fmt_inverted;
    return NULL;
}

vms_design vms_design_of(const vms_pt_format *f)
{
    if (f && f->walk == vmsi_hpt_walk)
        return VMS_DESIGN_HASHED;
    if (f && f->walk == vmsi_ipt_walk)
        return VMS_DESIGN_INVERTED;
    return VMS_DESIGN_RADIX;
}

/* ---- the registers ---- */

void vms_core_set_hpt(vms_core *c, const vms_hpt *t)
{
    c->regs.htab = t->base;
    c->regs.htab_mask = t->mask;
}

void vms_core_set_ipt(vms_core *c, const vms_ipt *t)
{
    c->regs.htab = t->base;
    c->regs.htab_mask = t->nframes;
    c->regs.hat = t->hat;
    c->regs.hat_bits = t->hat_bits;
}

void vms_core_get_hpt(const vms_core *c, vms_hpt *t)
{
    *t = (vms_hpt){c->regs.htab, c->regs.htab_mask, c->regs.fmt ? c->regs.fmt->va_bits : 48};
}

void vms_core_get_ipt(const vms_core *c, vms_ipt *t)
{
    *t = (vms_ipt){c->regs.htab, c->regs.htab_mask, c->regs.hat, c->regs.hat_bits,
                   c->regs.fmt ? c->regs.fmt->va_bits : 48};
}
