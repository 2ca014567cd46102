/*
 * teach/csapp.c — CS:APP's small memory system (teach.h; Bryant and O'Hallaron, CS:APP
 * 3e §9.6.4): the figures' TLB in a modelled vms_tlb and their page table in simulated
 * RAM, in the "csapp" format, read by its walker.
 *
 *    13            6 5        0        11        6 5        0
 *   +---------------+----------+      +-----------+----------+
 *   |      VPN      |   VPO    |      |    PPN    |   PPO    |
 *   +-------+-------+----------+      +-----------+----------+
 *   | TLBT  | TLBI  |                 12-bit physical address
 *   +-------+-------+
 *    13   8  7   6                    (VPO = PPO: 64-byte pages)
 *
 * The figures below are Figure 9.20 (a) "TLB: four sets, 16 entries, four-way set
 * associative" and (b) "Page table: only the first 16 PTEs are shown", transcribed as
 * the book prints them ("–" for the PPN of an invalid entry is 0 here).
 */
#include <string.h>

#include "arch/teach/teach.h"
#include "util/util.h"
#include "vmsim/bus.h"
#include "vmsim/ram.h"
#include "vmsim/teach.h"
#include "vmsim/tlb.h"

/* Figure 9.20(a): set by set, way by way: tag, PPN, valid. */
static const vms_csapp_line fig_tlb[4][4] = {
    {{0x03, 0, false}, {0x09, 0x0D, true}, {0x00, 0, false}, {0x07, 0x02, true}},
    {{0x03, 0x2D, true}, {0x02, 0, false}, {0x04, 0, false}, {0x0A, 0, false}},
    {{0x02, 0, false}, {0x08, 0, false}, {0x06, 0, false}, {0x03, 0, false}},
    {{0x07, 0, false}, {0x03, 0x0D, true}, {0x0A, 0x34, true}, {0x02, 0, false}},
};

/* Figure 9.20(b): VPN 0x00 … 0x0f: PPN, valid. */
static const struct {
    unsigned ppn;
    bool valid;
} fig_pt[16] = {{0x28, true}, {0, false},   {0x33, true}, {0x02, true}, {0, false},   {0x16, true},
                {0, false},   {0, false},   {0x13, true}, {0x17, true}, {0x09, true}, {0, false},
                {0, false},   {0x2D, true}, {0x11, true}, {0x0D, true}};

#define VA_BITS   14
#define PAGE_BITS 6
#define TLB_SETS  4

/* The machine in the figure's state. */
typedef struct machine {
    vms_ram *ram;
    vms_bus *bus;
    vms_tlb *tlb;
} machine;

/* The modelled TLB is keyed by virtual page: the book's VPN goes in as va = VPN << 12,
 * so that vms_tlb's set index (the low bits of its page number) is TLBI; an entry's
 * PPN is kept as page_pa = PPN << 12 likewise (vms_tlb holds 4 KiB-aligned pages). */
static uint64_t tlb_key(unsigned vpn)
{
    return (uint64_t)vpn << VMS_PAGE_SHIFT;
}

static vms_status build(const vms_allocator *a, machine *m, vms_err *err)
{
    const vms_pt_format *f = &vmsi_fmt_csapp;
    vms_tlb_config tc = {1, {{VMS_TLB_SIZE_BIT(VMS_PG_4K), TLB_SETS, 4, "lru"}}};
    vms_status st = vms_ram_create(a, VMS_PAGE_SIZE, &m->ram, err);
    if (st == VMS_OK)
        st = vms_bus_create(a, m->ram, &m->bus, err);
    if (st == VMS_OK)
        st = vms_bus_add_ram(m->bus, 0, VMS_PAGE_SIZE, err);
    if (st == VMS_OK)
        st = vms_tlb_create(a, &tc, 0, &m->tlb, err);
    for (unsigned vpn = 0; st == VMS_OK && vpn < 16; vpn++)
        if (fig_pt[vpn].valid)
            st = vmsi_teach_write_entry(m->bus, VMS_CSAPP_PTBR + vpn, 1,
                                        vms_fmt_mk_pte(f, fig_pt[vpn].ppn, 1, 0));
    for (unsigned s = 0; st == VMS_OK && s < TLB_SETS; s++)
        for (unsigned w = 0; w < 4; w++) {
            const vms_csapp_line *l = &fig_tlb[s][w];
            vms_xlate x = {.page_pa = tlb_key(l->ppn), .rw = 1, .us = 1};
            if (l->valid && !vms_tlb_fill(m->tlb, 0, tlb_key(l->tag << 2 | s), &x))
                st = vmsi_err(err, VMS_ERR_INVAL, "csapp: TLB fill failed");
        }
    return st;
}

static void teardown(machine *m)
{
    vms_tlb_destroy(m->tlb);
    vms_bus_destroy(m->bus);
    vms_ram_destroy(m->ram);
}

vms_status vms_csapp_translate(const vms_allocator *a, uint64_t va, vms_csapp_xlate *out,
                               vms_err *err)
{
    memset(out, 0, sizeof *out);
    if (va >> VA_BITS)
        return vmsi_err(err, VMS_ERR_INVAL,
                        "csapp: 0x%llx is not a 14-bit virtual address (at most 0x3fff)",
                        (unsigned long long)va);
    machine m = {0};
    vms_status st = build(a ? a : vms_allocator_default(), &m, err);
    if (st != VMS_OK) {
        teardown(&m);
        return st;
    }
    out->va = va;
    out->vpn = (unsigned)(va >> PAGE_BITS);
    out->vpo = (unsigned)(va & ((1u << PAGE_BITS) - 1));
    out->tlbi = out->vpn & (TLB_SETS - 1);
    out->tlbt = out->vpn >> 2;
    memcpy(out->set, fig_tlb[out->tlbi], sizeof out->set);
    vms_xlate x;
    out->tlb_hit = vms_tlb_lookup(m.tlb, 0, tlb_key(out->vpn), &x);
    if (out->tlb_hit)
        x.page_pa = (x.page_pa >> VMS_PAGE_SHIFT) << PAGE_BITS;
    else {
        vms_regs regs = {.fmt = &vmsi_fmt_csapp, .cr3 = VMS_CSAPP_PTBR};
        vms_walk_stats ws = {0};
        vms_walk_trace tr;
        vms_fault f;
        bool ok = vms_walk(m.bus, NULL, &regs, va, VMS_ACC_READ, &x, &f, &ws, &tr);
        out->walked = true;
        out->pte_pa = tr.nsteps ? tr.step[0].ptep : 0;
        out->pte = tr.nsteps ? tr.step[0].pte : 0;
        out->page_fault = !ok;
    }
    if (!out->page_fault) {
        out->ppn = (unsigned)(x.page_pa >> PAGE_BITS);
        out->pa = x.page_pa | out->vpo;
    }
    teardown(&m);
    return VMS_OK;
}
