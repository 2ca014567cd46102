/*
 * aarch64/cpu.c — a core's AArch64 system registers for the EL1&0 stage 1 regime and
 * the local TLB maintenance instructions (Arm ARM DDI 0487 §D8.13 "TLB maintenance
 * instructions"; §D5.10 in older issues), on the TLB and page-walk-cache primitives
 * every architecture shares (core_impl.h vmsi_core_tlbs_flush_*).
 *
 *   operation         TLB entries dropped (every level of this core)   walk-cache entries
 *   MSR TTBRn_EL1     none (entries are tagged by ASID)                 none
 *   TLBI VAE1, Xt     Xt's VA in Xt's ASID, and Xt's VA if global       of that ASID
 *   TLBI ASIDE1, Xt   every non-global entry of Xt's ASID               of that ASID
 *   TLBI VMALLE1      every entry, global ones too                      all
 *   MSR TCR_EL1,      none (the Arm ARM lets TLBs cache TCR fields:     none
 *   MSR SCTLR_EL1     software invalidates after changing them)
 *
 * The walk caches are tagged by ASID and TTBR half (aarch64.h); invalidating all of an
 * ASID's walk-cache entries where the instruction names one VA is more than the
 * architecture requires and always permitted.
 *
 * In a guest (EL1 under a hypervisor, virt.h vms_core_vm_enter) every form is scoped to
 * the VMID of VTTBR_EL2 (§D8.13.2 "TLB maintenance instructions and virtualization"):
 * entries of the host or of another VM stay, and the walk caches dropped are the
 * guest's own.
 *
 * The Inner Shareable forms (§D8.13.3 "TLB maintenance instruction shareability") drop
 * the same entries from every core of the machine (one Inner Shareable domain), the
 * issuer included, with no interrupt and no cost to the receivers — in a guest, the
 * entries of its VM on every core, whatever the core runs now, and the walk caches of
 * every vCPU of the VM (vms_nested_link); the issuer pays
 * cost.tlbi_is per instruction and, at DSB ISH, the wait for the farthest core's
 * completion (cost.dsb_ish + cost.dsb_ish_hop per socket hop). Arm publishes no cycle
 * counts: the defaults are assumptions (preset.c). They share the broadcast counters
 * of x86's INVLPGB/TLBSYNC (core.h: invlpgb, invlpgb_received, tlbsync):
 *
 *   TLBI VAE1IS, Xt    on every core: TLBI VAE1, Xt
 *   TLBI ASIDE1IS, Xt  on every core: TLBI ASIDE1, Xt
 *   TLBI VMALLE1IS     on every core: TLBI VMALLE1
 *   DSB ISH            waits for this core's TLBI … IS to complete everywhere
 *
 * The kernel's MMU operations (format.h vms_mmu_ops) on AArch64, as Linux's arm64 port
 * issues them (arch/arm64/mm/context.c, asm/tlbflush.h), in their local forms:
 *
 *   boot             TCR_EL1 (4 KiB, 48-bit, 16-bit ASIDs, HA and HD as on FEAT_HAFDBS
 *                    cores such as the Cortex-A76), SCTLR_EL1.M, then load_root
 *   load_root        MSR TTBR0_EL1 = root | ASID and TTBR1_EL1 = root: vmsim's kernel
 *                    keeps one tree per address space with itself in the upper half
 *                    (x86's layout), so one tree serves both TTBRs; flush: TLBI ASIDE1
 *   flush_page       TLBI VAE1 in the current ASID (the VA's global entries too)
 *   flush_page_asid  TLBI VAE1 in that ASID (which also drops the VA's global entries,
 *                    which INVPCID type 0 keeps: more than asked, never less)
 *   flush_asid       TLBI ASIDE1
 *   flush_all        TLBI VMALLE1
 *   has_broadcast    always (TLBI … IS is ARMv8.0)
 *   flush_broadcast  TLBI VAE1IS per page (the A76 has no FEAT_TLBIRANGE), or
 *                    TLBI ASIDE1IS for the whole ASID (asm/tlbflush.h flush_tlb_mm)
 *   sync             DSB ISH
 */
#include <assert.h>

#include "arch/aarch64/aarch64.h"
#include "hw/core_impl.h"
#include "vmsim/pwc.h"
#include "vmsim/tlb.h"

/* TCR_EL1 values vmsim models (see aarch64.h for the field list). */
static bool tcr_ok(uint64_t tcr)
{
    uint64_t t0sz = (tcr >> VMS_A64_TCR_T0SZ_SHIFT) & 0x3F;
    uint64_t t1sz = (tcr >> VMS_A64_TCR_T1SZ_SHIFT) & 0x3F;
    uint64_t tg0 = (tcr >> VMS_A64_TCR_TG0_SHIFT) & 3, tg1 = (tcr >> VMS_A64_TCR_TG1_SHIFT) & 3;
    return t0sz == 16 && t1sz == 16 && tg0 == 0 && tg1 == 2 &&
           !(tcr & (VMS_A64_TCR_TBI0 | VMS_A64_TCR_TBI1)) && (tcr & VMS_A64_TCR_HPD0) &&
           (tcr & VMS_A64_TCR_HPD1);
}

vms_status vms_core_a64_init(vms_core *c, uint64_t tcr, uint64_t sctlr)
{
    if (!tcr_ok(tcr) || !(sctlr & VMS_A64_SCTLR_M))
        return VMS_ERR_UNSUPPORTED;
    c->regs.fmt = &vmsi_fmt_aarch64;
    c->regs.tcr_el1 = tcr;
    c->regs.sctlr_el1 = sctlr;
    c->regs.ttbr0_el1 = c->regs.ttbr1_el1 = 0;
    c->regs.pan = false;
    c->regs.user = false;
    vmsi_core_sync(c);
    vmsi_core_tlbs_flush_all(c, false); /* a reset: neither counted nor charged */
    return VMS_OK;
}

vms_status vms_core_msr_tcr_el1(vms_core *c, uint64_t tcr)
{
    if (!tcr_ok(tcr))
        return VMS_ERR_UNSUPPORTED;
    c->regs.tcr_el1 = tcr;
    vmsi_core_sync(c);
    return VMS_OK;
}

vms_status vms_core_msr_sctlr_el1(vms_core *c, uint64_t sctlr)
{
    if (!(sctlr & VMS_A64_SCTLR_M))
        return VMS_ERR_UNSUPPORTED;
    c->regs.sctlr_el1 = sctlr;
    return VMS_OK;
}

/* Write TTBR0_EL1 and TTBR1_EL1 as one root load (counted and charged once). */
static vms_status load_ttbrs(vms_core *c, uint64_t ttbr0, uint64_t ttbr1)
{
    vms_regs r = c->regs;
    r.ttbr0_el1 = ttbr0;
    r.ttbr1_el1 = ttbr1;
    if ((ttbr0 | ttbr1) & UINT64_C(0xFFE))
        return VMS_ERR_UNSUPPORTED;
    c->st.cr3_loads++; /* the root-register load counter, whatever the architecture */
    vmsi_core_report_op(c, VMS_EV_OP_CR3, 0, 0, true); /* the event tap */
    c->cycles += c->m->cfg.cost.cr3_load;
    c->regs = r;
    vmsi_core_sync(c);
    return VMS_OK;
}

vms_status vms_core_msr_ttbr0_el1(vms_core *c, uint64_t ttbr)
{
    return load_ttbrs(c, ttbr, c->regs.ttbr1_el1);
}

vms_status vms_core_msr_ttbr1_el1(vms_core *c, uint64_t ttbr)
{
    return load_ttbrs(c, c->regs.ttbr0_el1, ttbr);
}

void vms_core_a64_set_pan(vms_core *c, bool pan)
{
    c->regs.pan = pan;
}

/* The ASID operand of a TLBI (Xt[63:48]; Xt[63:56] ignored with 8-bit ASIDs). */
static uint16_t tlbi_asid(const vms_core *c, uint64_t xt)
{
    uint16_t asid = (uint16_t)(xt >> 48);
    return (c->regs.tcr_el1 & VMS_A64_TCR_AS) ? asid : (uint16_t)(asid & 0xFFu);
}

/* The VA a TLBI names: Xt[43:0] is VA[55:12], sign-extended from VA[55] as the VA
 * range of that half has it. */
static uint64_t tlbi_va(uint64_t xt)
{
    uint64_t va = (xt & ((UINT64_C(1) << 44) - 1)) << 12;
    return (va >> 55) & 1u ? va | UINT64_C(0xFF00000000000000) : va;
}

/* The context a TLBI by ASID names: that ASID in the issuer's VM (in a guest, the VMID
 * of VTTBR_EL2: a guest's TLBI never reaches the host's or another VM's entries). */
static vms_ctx tlbi_ctx(const vms_core *c, uint16_t asid)
{
    return vms_ctx_make(c->vm, asid);
}

/* Drop the TTBR1-half walk-cache entries of asid (the tag with VMSI_A64_PWC_TTBR1). */
static void pwc_flush_split(vms_core *c, uint16_t asid)
{
    if (c->pwc)
        vms_pwc_flush_pcid(c->pwc, asid | VMSI_A64_PWC_TTBR1);
}

void vms_core_tlbi_vae1(vms_core *c, uint64_t xt)
{
    uint16_t asid = tlbi_asid(c, xt);
    c->st.invlpg++;
    vmsi_core_report_op(c, VMS_EV_OP_INVLPG, tlbi_va(xt), asid, true); /* the event tap */
    c->cycles += c->m->cfg.cost.invlpg;
    vmsi_core_tlbs_flush_va(c, tlbi_ctx(c, asid), tlbi_va(xt), true);
    pwc_flush_split(c, asid);
}

void vms_core_tlbi_aside1(vms_core *c, uint64_t xt)
{
    uint16_t asid = tlbi_asid(c, xt);
    c->st.invpcid++;
    vmsi_core_report_op(c, VMS_EV_OP_INVPCID, 0, asid, true); /* the event tap */
    c->cycles += c->m->cfg.cost.invlpg;
    vmsi_core_tlbs_flush_pcid(c, tlbi_ctx(c, asid));
    pwc_flush_split(c, asid);
}

void vms_core_tlbi_vmalle1(vms_core *c)
{
    c->st.flushes_all++;
    vmsi_core_report_op(c, VMS_EV_OP_FLUSH_ALL, 0, 0, true); /* the event tap */
    c->cycles += c->m->cfg.cost.invlpg;
    vmsi_core_tlbs_flush_all(c, false);
}

/* ---- the Inner Shareable (broadcast) forms ---- */

/* The issuer's side of one TLBI … IS: counted, charged, posted until DSB ISH. */
static void tlbi_is_issue(vms_core *c)
{
    c->st.invlpgb++; /* the broadcast counters, whatever the architecture */
    vmsi_core_report_op(c, VMS_EV_OP_INVLPGB, 0, 0, true); /* the event tap */
    c->cycles += c->m->cfg.cost.tlbi_is;
    c->bcast_pending++;
}

/*
 * What one receiver r drops of a TLBI … IS issued by core c, in the issuer's VM (the
 * VMID of the guest it runs, or the host's): the TLB entries of that VM (one VA of asid,
 * the whole asid, or all: op 0, 1, 2), whatever r runs now, since entries are tagged by
 * VM; and, for the host's broadcast, r's host walk cache (parked while r runs a guest).
 * A guest's walk caches are its vCPUs' (vms_nested_link): is_guest_pwc reaches them
 * once per instruction. On bare metal (no VM anywhere) this is the local TLBI on r.
 */
static void is_receive(const vms_core *c, vms_core *r, unsigned op, uint16_t asid, uint64_t va)
{
    r->st.invlpgb_received++;
    vmsi_core_report_op(r, VMS_EV_OP_INVLPGB_RX, 0, 0, true); /* the event tap */
    vms_ctx ctx = tlbi_ctx(c, asid);
    if (!c->vm && !r->vm) {
        if (op == 2) {
            vmsi_core_tlbs_flush_all(r, false);
        } else {
            if (op == 0)
                vmsi_core_tlbs_flush_va(r, ctx, va, true);
            else
                vmsi_core_tlbs_flush_pcid(r, ctx);
            pwc_flush_split(r, asid);
        }
        return;
    }
    for (unsigned l = 0; l < VMS_TLB_NLEVELS; l++) {
        vms_tlb *t = r->tlb[l];
        if (!t)
            continue;
        if (op == 0)
            vms_tlb_flush_va(t, ctx, va, true);
        else if (op == 1)
            vms_tlb_flush_pcid(t, ctx);
        else
            vms_tlb_flush_vm(t, c->vm, false);
    }
    vms_pwc *hp = r->host_pwc; /* r runs a guest: the host's walk cache waits for the exit */
    if (c->vm || !hp)
        return;
    if (op == 2) {
        vms_pwc_flush_all(hp);
    } else {
        vms_pwc_flush_pcid(hp, asid);
        vms_pwc_flush_pcid(hp, asid | VMSI_A64_PWC_TTBR1);
    }
}

/* The guest walk caches a guest's TLBI … IS reaches: every vCPU's of its VM. */
static void is_guest_pwc(vms_core *c, unsigned op, uint16_t asid)
{
    if (!c->vm || !c->nested)
        return;
    vmsi_nested_pwc_flush_vm(c->nested, asid, op == 2);
    if (op != 2)
        vmsi_nested_pwc_flush_vm(c->nested, asid | VMSI_A64_PWC_TTBR1, false);
}

void vms_core_tlbi_vae1is(vms_core *c, uint64_t xt)
{
    uint16_t asid = tlbi_asid(c, xt);
    uint64_t va = tlbi_va(xt);
    tlbi_is_issue(c);
    for (unsigned i = 0; i < c->m->ncores; i++)
        is_receive(c, &c->m->cores[i], 0, asid, va);
    is_guest_pwc(c, 0, asid);
}

void vms_core_tlbi_aside1is(vms_core *c, uint64_t xt)
{
    uint16_t asid = tlbi_asid(c, xt);
    tlbi_is_issue(c);
    for (unsigned i = 0; i < c->m->ncores; i++)
        is_receive(c, &c->m->cores[i], 1, asid, 0);
    is_guest_pwc(c, 1, asid);
}

void vms_core_tlbi_vmalle1is(vms_core *c)
{
    tlbi_is_issue(c);
    for (unsigned i = 0; i < c->m->ncores; i++)
        is_receive(c, &c->m->cores[i], 2, 0, 0);
    is_guest_pwc(c, 2, 0);
}

uint64_t vms_core_dsb_ish(vms_core *c)
{
    c->st.tlbsync++;
    vmsi_core_report_op(c, VMS_EV_OP_TLBSYNC, 0, 0, true); /* the event tap */
    if (!c->bcast_pending)
        return 0;
    c->bcast_pending = 0;
    unsigned far = 0;
    for (unsigned i = 0; i < c->m->ncores; i++) {
        unsigned h = vms_machine_hops(c->m, c->id, i);
        far = h > far ? h : far;
    }
    uint64_t w = c->m->cfg.cost.dsb_ish + (uint64_t)c->m->cfg.cost.dsb_ish_hop * far;
    c->cycles += w;
    return w;
}

/* ---- the kernel's MMU operations (format.h vms_mmu_ops) ---- */

/* Xt for a TLBI naming asid and va. */
static uint64_t xt_of(uint32_t asid, uint64_t va)
{
    return (uint64_t)asid << 48 | ((va >> 12) & ((UINT64_C(1) << 44) - 1));
}

static void a64_load_root(vms_core *c, uint64_t root, uint32_t asid, bool flush)
{
    vms_status st = load_ttbrs(c, root | (uint64_t)asid << 48, root);
    assert(st == VMS_OK && "the kernel's ASIDs fit the format's asid_bits");
    (void)st;
    if (flush)
        vms_core_tlbi_aside1(c, (uint64_t)asid << 48);
}

static vms_status a64_boot(vms_core *c, uint64_t root, bool asids)
{
    (void)asids; /* 16-bit ASIDs either way; without them the kernel uses ASID 0 alone */
    uint64_t tcr = vms_a64_tcr(c->regs.maxphyaddr, true, false, true, true);
    vms_status st = vms_core_a64_init(c, tcr, VMS_A64_SCTLR_M);
    if (st != VMS_OK)
        return st;
    a64_load_root(c, root, 0, false);
    return VMS_OK;
}

static void a64_flush_page(vms_core *c, uint64_t va)
{
    vms_core_tlbi_vae1(c, xt_of(vmsi_a64_asid(&c->regs), va));
}

static void a64_flush_page_asid(vms_core *c, uint32_t asid, uint64_t va)
{
    vms_core_tlbi_vae1(c, xt_of(asid, va));
}

static void a64_flush_asid(vms_core *c, uint32_t asid)
{
    vms_core_tlbi_aside1(c, (uint64_t)asid << 48);
}

static void a64_flush_all(vms_core *c)
{
    vms_core_tlbi_vmalle1(c);
}

static bool a64_has_broadcast(const vms_core *c)
{
    (void)c;
    return true;
}

/* Linux's __flush_tlb_range / flush_tlb_mm (arch/arm64/include/asm/tlbflush.h): one
 * TLBI VAE1IS per page, or TLBI ASIDE1IS for the whole ASID. */
static unsigned a64_flush_broadcast(vms_core *c, uint32_t asid, uint64_t va, uint64_t npages)
{
    if (npages == 0) {
        vms_core_tlbi_aside1is(c, (uint64_t)asid << 48);
        return 1;
    }
    for (uint64_t i = 0; i < npages; i++)
        vms_core_tlbi_vae1is(c, xt_of(asid, va + (i << 12)));
    return (unsigned)npages;
}

static uint64_t a64_sync(vms_core *c)
{
    return vms_core_dsb_ish(c);
}

const vms_mmu_ops vmsi_a64_mmu_ops = {
    .boot = a64_boot,
    .load_root = a64_load_root,
    .flush_page = a64_flush_page,
    .flush_page_asid = a64_flush_page_asid,
    .flush_asid = a64_flush_asid,
    .flush_all = a64_flush_all,
    .has_broadcast = a64_has_broadcast,
    .flush_broadcast = a64_flush_broadcast,
    .sync = a64_sync,
};
