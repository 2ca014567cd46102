/*
 * virt/s2walk.c — the second-stage walker: one guest-physical address through the
 * hypervisor's tables in host RAM, in the format the vCPU's control state names
 * (virt.h draws every layout).
 *
 *  EPT  SDM Vol. 3C §29.3.2: the EPTP gives the root and the walk length (4 or 5); one
 *       8-byte entry per level; an entry with R = W = X = 0 ends the walk in an EPT
 *       violation; a misconfigured entry (W without R, reserved bits, bits above
 *       MAXPHYADDR, a leaf memory type of 2, 3 or 7; §29.3.3.1) in an EPT
 *       misconfiguration. Rights are the AND of R, W, X over every entry used (§29.3.3.2).
 *       With EPTP.AD (§29.3.5) the processor sets A in every entry used and D in the
 *       leaf on a write — and accesses to guest paging structures count as writes,
 *       both for the rights they need and for D, which is why their violations report
 *       bits 0 and 1 of the qualification together.
 *  NPT  APM Vol. 2 §15.25.5: the x86-64 walker itself (src/arch/x86_64/walk.c) on the
 *       nested tables at nCR3, every access a user access, EFER.NXE honoured; its #PF
 *       error code becomes EXITINFO1 with bit 32 (final GPA) or 33 (guest table).
 *  Arm  Arm ARM §D8 (AArch64.S2Walk and its checks): VTTBR_EL2's root, the start level
 *       VTCR_EL2.SL0 gives; an invalid descriptor is a Translation fault, AF = 0 an
 *       Access flag fault unless VTCR_EL2.HA, a missing S2AP right or XN a Permission
 *       fault, all at the level reached; a write to S2AP[1] = 0 with DBM and HD sets
 *       S2AP[1] (the dirty state). ESR_EL2 carries EC, WnR, S1PTW and the fault code.
 *
 * Documented choices, as for the stage-1 walkers (walk.h): A/D state is written only
 * when the whole walk succeeds; a guest-physical address beyond what the tables index
 * (2^48 for four levels, 2^39 for Arm's three) is a violation at the root level that
 * reads nothing; probe walks (the hypervisor's software view) use the page-table
 * editor's lookup and change and count nothing.
 */
#include <string.h>

#include "arch/x86_64/x86_64.h"
#include "virt/virt_impl.h"
#include "vmsim/pt.h"

static uint64_t maxphy_mask(const vms_s2_regs *s2)
{
    unsigned m = s2->maxphyaddr ? s2->maxphyaddr : 52;
    return ~((UINT64_C(1) << m) - 1) & VMS_PTE_ADDR_MASK;
}

uint64_t vms_s2_root(const vms_s2_regs *s2)
{
    switch (s2->kind) {
    case VMS_S2_EPT:
        return s2->eptp & VMS_EPTP_ADDR_MASK;
    case VMS_S2_NPT:
        return s2->ncr3 & VMS_CR3_ADDR_MASK;
    case VMS_S2_ARM:
        return s2->vttbr & VMS_VTTBR_BADDR_MASK;
    default:
        return 0;
    }
}

unsigned vms_s2_levels(const vms_s2_regs *s2)
{
    switch (s2->kind) {
    case VMS_S2_EPT:
        return vms_eptp_levels(s2->eptp);
    case VMS_S2_NPT:
        return s2->npt_levels == 5 ? 5 : 4;
    case VMS_S2_ARM:
        return ((s2->vtcr >> VMS_VTCR_SL0_SHIFT) & 3u) == 2 ? 4 : 3;
    default:
        return 0;
    }
}

const vms_pt_format *vms_s2_format(const vms_s2_regs *s2)
{
    switch (s2->kind) {
    case VMS_S2_EPT:
        return vms_format_ept(vms_s2_levels(s2));
    case VMS_S2_NPT:
        return vms_format_npt(vms_s2_levels(s2));
    case VMS_S2_ARM:
        return vms_format_stage2(vms_s2_levels(s2));
    default:
        return NULL;
    }
}

bool vms_s2_ad(const vms_s2_regs *s2)
{
    switch (s2->kind) {
    case VMS_S2_EPT:
        return (s2->eptp & VMS_EPTP_AD) != 0;
    case VMS_S2_NPT:
        return true;
    case VMS_S2_ARM:
        return (s2->vtcr & VMS_VTCR_HA) != 0;
    default:
        return false;
    }
}

const char *vms_s2_fault_name(const vms_s2_regs *s2, const vms_s2_fault *f)
{
    if (f->kind == VMS_S2F_BUS)
        return "bus error on a second-stage entry";
    switch (s2->kind) {
    case VMS_S2_EPT:
        return f->kind == VMS_S2F_MISCONFIG ? "EPT misconfiguration" : "EPT violation";
    case VMS_S2_NPT:
        return "nested page fault (#VMEXIT_NPF)";
    default:
        return f->kind == VMS_S2F_MISCONFIG ? "stage 2 Address size fault" : "stage 2 abort";
    }
}

/* Record a fault; returns false so callers can `return fail(...)`. */
static bool fail(vms_s2_fault *f, vms_walk_stats *stats, bool probe, vms_s2_fault_kind kind,
                 uint64_t gpa, const vms_s2_access *acc, unsigned level, uint64_t qual)
{
    *f = (vms_s2_fault){kind, gpa, acc->gva, acc->gva_valid, acc->table, level, qual, 0};
    if (!probe)
        stats->faults++;
    return false;
}

/* Read one second-stage entry, counting and tracing it. */
static bool read_entry(vms_bus *bus, uint64_t ptep, unsigned level, uint64_t table, unsigned idx,
                       bool probe, uint64_t *pte, vms_walk_stats *stats, vms_walk_trace *trace)
{
    if (vms_bus_read64(bus, ptep, pte) != VMS_OK)
        return false;
    if (probe)
        return true;
    stats->mem_refs++;
    stats->refs_by_level[level]++;
    if (trace && trace->nsteps < 5)
        trace->step[trace->nsteps++] = (vms_walk_step){level, table, idx, ptep, *pte};
    return true;
}

/* The editor's software lookup (pt.h): the hypervisor's view of the mapping. */
static bool probe_walk(vms_bus *bus, const vms_s2_regs *s2, uint64_t gpa, vms_s2_xlate *out,
                       vms_s2_fault *fault, const vms_s2_access *acc)
{
    const vms_pt_format *f = vms_s2_format(s2);
    vms_pt pt = {.bus = bus, .fmt = f, .levels = f->levels, .root = vms_s2_root(s2)};
    uint64_t pte, ptep;
    vms_pgsize size;
    if (!vms_pt_lookup(&pt, gpa, &pte, &ptep, &size))
        return fail(fault, NULL, true, VMS_S2F_VIOLATION, gpa, acc, f->levels, 0);
    vms_pte_info info;
    vms_fmt_decode(f, pte, vms_fmt_size_level(size), &info);
    *out = (vms_s2_xlate){info.pa,
                          size,
                          (info.prot & VMS_PGPROT_R) != 0,
                          (info.prot & VMS_PGPROT_W) != 0,
                          (info.prot & VMS_PGPROT_X) != 0,
                          1,
                          ptep,
                          vms_fmt_size_level(size)};
    return true;
}

/* ---- EPT ---- */

static uint64_t ept_qual(const vms_s2_access *acc, bool treat_write, unsigned r, unsigned w,
                         unsigned x)
{
    uint64_t q = 0;
    if (acc->kind == VMS_ACC_READ || treat_write)
        q |= VMS_EPTQ_READ;
    if (acc->kind == VMS_ACC_WRITE || treat_write)
        q |= VMS_EPTQ_WRITE;
    if (acc->kind == VMS_ACC_EXEC && !treat_write)
        q |= VMS_EPTQ_FETCH;
    q |= (r ? VMS_EPTQ_READABLE : 0) | (w ? VMS_EPTQ_WRITABLE : 0) | (x ? VMS_EPTQ_EXECUTABLE : 0);
    if (acc->gva_valid)
        q |= VMS_EPTQ_GLA_VALID | (acc->table ? 0 : VMS_EPTQ_GLA_XLATE);
    return q;
}

static bool ept_walk(vms_bus *bus, const vms_s2_regs *s2, uint64_t gpa, const vms_s2_access *acc,
                     vms_s2_xlate *out, vms_s2_fault *fault, vms_walk_stats *stats,
                     vms_walk_trace *trace)
{
    unsigned levels = vms_s2_levels(s2);
    bool ad = (s2->eptp & VMS_EPTP_AD) != 0;
    bool treat_write = acc->table && ad; /* §29.3.5: guest table accesses are writes */
    bool write = acc->kind == VMS_ACC_WRITE || treat_write;
    if (levels != 4 && levels != 5)
        return fail(fault, stats, false, VMS_S2F_MISCONFIG, gpa, acc, levels, 0);
    if (gpa >> (12u + 9u * levels))
        return fail(fault, stats, false, VMS_S2F_VIOLATION, gpa, acc, levels,
                    ept_qual(acc, treat_write, 0, 0, 0));
    uint64_t table = vms_s2_root(s2) & ~maxphy_mask(s2), ptep_at[6] = {0}, pte_at[6] = {0};
    unsigned r = 1, w = 1, x = 1, l;
    for (l = levels;; l--) {
        unsigned idx = (unsigned)((gpa >> (12u + 9u * (l - 1))) & 511u);
        uint64_t ptep = table + 8u * idx, pte;
        if (!read_entry(bus, ptep, l, table, idx, false, &pte, stats, trace)) {
            fail(fault, stats, false, VMS_S2F_BUS, gpa, acc, l, 0);
            fault->hpa = ptep;
            return false;
        }
        ptep_at[l] = ptep;
        pte_at[l] = pte;
        if (!(pte & VMS_EPT_RWX))
            return fail(fault, stats, false, VMS_S2F_VIOLATION, gpa, acc, l,
                        ept_qual(acc, treat_write, 0, 0, 0));
        if (vmsi_ept_misconfigured(pte, l) || (pte & maxphy_mask(s2)))
            return fail(fault, stats, false, VMS_S2F_MISCONFIG, gpa, acc, l, 0);
        r &= (pte & VMS_EPT_R) != 0;
        w &= (pte & VMS_EPT_W) != 0;
        x &= (pte & VMS_EPT_X) != 0;
        if (vmsi_ept_is_leaf(pte, l))
            break;
        table = pte & VMS_EPT_ADDR_MASK;
    }
    bool ok = acc->kind == VMS_ACC_EXEC && !treat_write ? x : acc->kind == VMS_ACC_READ ? r : w;
    if (treat_write)
        ok = r && w;
    if (!ok)
        return fail(fault, stats, false, VMS_S2F_VIOLATION, gpa, acc, l,
                    ept_qual(acc, treat_write, r, w, x));
    if (ad) {
        for (unsigned k = levels; k >= l; k--) {
            uint64_t v = pte_at[k] | VMS_EPT_A | (k == l && write ? VMS_EPT_D : 0);
            if (v == pte_at[k])
                continue;
            if (vms_bus_write64(bus, ptep_at[k], v) != VMS_OK) {
                fail(fault, stats, false, VMS_S2F_BUS, gpa, acc, k, 0);
                fault->hpa = ptep_at[k];
                return false;
            }
            pte_at[k] = v;
            stats->ad_writes++;
        }
    }
    vms_pgsize size = (vms_pgsize)(l - 1);
    *out = (vms_s2_xlate){pte_at[l] & VMS_EPT_ADDR_MASK & ~(vms_pgsize_bytes(size) - 1),
                          size,
                          (uint8_t)r,
                          (uint8_t)w,
                          (uint8_t)x,
                          !ad || (pte_at[l] & VMS_EPT_D) != 0,
                          ptep_at[l],
                          l};
    return true;
}

/* ---- NPT ---- */

static bool npt_walk(vms_bus *bus, const vms_s2_regs *s2, uint64_t gpa, const vms_s2_access *acc,
                     vms_s2_xlate *out, vms_s2_fault *fault, vms_walk_stats *stats,
                     vms_walk_trace *trace)
{
    unsigned levels = vms_s2_levels(s2);
    vms_regs h = {.cr0 = VMS_CR0_PG | VMS_CR0_WP,
                  .cr3 = s2->ncr3 & VMS_CR3_ADDR_MASK,
                  .cr4 = VMS_CR4_PAE | (levels == 5 ? VMS_CR4_LA57 : 0),
                  .efer = VMS_EFER_LME | VMS_EFER_LMA | VMS_EFER_NXE,
                  .user = true, /* §15.25.5: nested walks are user accesses */
                  .maxphyaddr = s2->maxphyaddr ? s2->maxphyaddr : 52};
    uint64_t bit = acc->table ? VMS_NPF_TABLE : VMS_NPF_FINAL;
    /* The nested tables index GPA bits 47:12 (56:12): an address above the lower half
     * of that space has no nested translation. */
    if (gpa >> (levels == 5 ? 56 : 47)) {
        uint32_t ec = vms_access_error_bits(&h, acc->kind);
        return fail(fault, stats, false, VMS_S2F_VIOLATION, gpa, acc, levels, bit | ec);
    }
    vms_xlate x;
    vms_fault f;
    vms_walk_trace tr;
    bool ok = vmsi_x86_walk(bus, NULL, &h, gpa, acc->kind, &x, &f, stats, &tr);
    if (trace) {
        for (unsigned i = 0; i < tr.nsteps && trace->nsteps < 5; i++)
            trace->step[trace->nsteps++] = tr.step[i];
    }
    if (!ok) {
        vms_s2_fault_kind k = f.kind == VMS_FAULT_BUS           ? VMS_S2F_BUS
                              : (f.error_code & VMS_PFERR_RSVD) ? VMS_S2F_MISCONFIG
                                                                : VMS_S2F_VIOLATION;
        *fault = (vms_s2_fault){k,          gpa,     acc->gva,           acc->gva_valid,
                                acc->table, f.level, bit | f.error_code, f.pa};
        return false;
    }
    unsigned leaf = vms_fmt_size_level(x.size);
    uint64_t ptep = tr.nsteps ? tr.step[tr.nsteps - 1].ptep : 0;
    *out = (vms_s2_xlate){x.page_pa, x.size, 1, x.rw, !x.xd, x.dirty, ptep, leaf};
    return true;
}

/* ---- Arm stage 2 ---- */

/* ESR_EL2 of a stage 2 abort with fault status code fsc (ISS: WnR 6, S1PTW 7). */
static uint64_t arm_esr(const vms_s2_access *acc, unsigned fsc)
{
    unsigned ec = acc->kind == VMS_ACC_EXEC && !acc->table ? 0x20u : 0x24u; /* lower EL */
    return (uint64_t)ec << 26 | UINT64_C(1) << 25 |
           (acc->kind == VMS_ACC_WRITE ? UINT64_C(1) << 6 : 0) |
           (acc->table ? UINT64_C(1) << 7 : 0) | (fsc & 0x3Fu);
}

/* DFSC codes: Translation 0b0001LL, Access flag 0b0010LL, Permission 0b0011LL, Address
 * size 0b0000LL, LL the Arm lookup level. */
enum { FSC_ADDR = 0x00, FSC_TRANS = 0x04, FSC_AF = 0x08, FSC_PERM = 0x0C };

static bool arm_walk(vms_bus *bus, const vms_s2_regs *s2, uint64_t gpa, const vms_s2_access *acc,
                     vms_s2_xlate *out, vms_s2_fault *fault, vms_walk_stats *stats,
                     vms_walk_trace *trace)
{
    unsigned levels = vms_s2_levels(s2);
    bool ha = s2->vtcr & VMS_VTCR_HA, hd = s2->vtcr & VMS_VTCR_HD;
    if (gpa >> (12u + 9u * levels))
        return fail(fault, stats, false, VMS_S2F_VIOLATION, gpa, acc, levels,
                    arm_esr(acc, FSC_TRANS | (4u - levels)));
    uint64_t table = vms_s2_root(s2), pte = 0, ptep = 0;
    unsigned l;
    for (l = levels;; l--) {
        unsigned idx = (unsigned)((gpa >> (12u + 9u * (l - 1))) & 511u);
        ptep = table + 8u * idx;
        if (!read_entry(bus, ptep, l, table, idx, false, &pte, stats, trace)) {
            fail(fault, stats, false, VMS_S2F_BUS, gpa, acc, l, 0);
            fault->hpa = ptep;
            return false;
        }
        if (!vmsi_s2_valid(pte, l))
            return fail(fault, stats, false, VMS_S2F_VIOLATION, gpa, acc, l,
                        arm_esr(acc, FSC_TRANS | (4u - l)));
        if (pte & maxphy_mask(s2) & ~VMS_S2_ADDR_MASK & VMS_PTE_ADDR_MASK)
            return fail(fault, stats, false, VMS_S2F_MISCONFIG, gpa, acc, l,
                        arm_esr(acc, FSC_ADDR | (4u - l)));
        if (vmsi_s2_is_leaf(pte, l))
            break;
        table = pte & VMS_S2_ADDR_MASK;
    }
    uint64_t v = pte;
    if (!(pte & VMS_S2_AF)) {
        if (!ha)
            return fail(fault, stats, false, VMS_S2F_VIOLATION, gpa, acc, l,
                        arm_esr(acc, FSC_AF | (4u - l)));
        v |= VMS_S2_AF;
    }
    bool r = pte & VMS_S2_S2AP_R, x = !(pte & VMS_S2_XN);
    bool w = (pte & VMS_S2_S2AP_W) || (hd && (pte & VMS_S2_DBM));
    bool ok = acc->kind == VMS_ACC_READ ? r : acc->kind == VMS_ACC_WRITE ? w : (acc->table ? r : x);
    if (!ok)
        return fail(fault, stats, false, VMS_S2F_VIOLATION, gpa, acc, l,
                    arm_esr(acc, FSC_PERM | (4u - l)));
    if (acc->kind == VMS_ACC_WRITE && !(pte & VMS_S2_S2AP_W))
        v |= VMS_S2_S2AP_W; /* DBM with HD: the dirty state */
    if (v != pte) {
        if (vms_bus_write64(bus, ptep, v) != VMS_OK) {
            fail(fault, stats, false, VMS_S2F_BUS, gpa, acc, l, 0);
            fault->hpa = ptep;
            return false;
        }
        stats->ad_writes++;
    }
    vms_pgsize size = (vms_pgsize)(l - 1);
    *out = (vms_s2_xlate){v & VMS_S2_ADDR_MASK & ~(vms_pgsize_bytes(size) - 1),
                          size,
                          r,
                          w,
                          x,
                          (v & VMS_S2_S2AP_W) != 0,
                          ptep,
                          l};
    return true;
}

bool vms_s2_walk(vms_bus *bus, const vms_s2_regs *s2, uint64_t gpa, const vms_s2_access *acc,
                 bool probe, vms_s2_xlate *out, vms_s2_fault *fault, vms_walk_stats *stats,
                 vms_walk_trace *trace)
{
    if (trace)
        trace->nsteps = trace->pwc_level = 0;
    if (probe)
        return probe_walk(bus, s2, gpa, out, fault, acc);
    switch (s2->kind) { /* the x86-64 walker counts its own walk */
    case VMS_S2_EPT:
        stats->walks++;
        return ept_walk(bus, s2, gpa, acc, out, fault, stats, trace);
    case VMS_S2_NPT:
        return npt_walk(bus, s2, gpa, acc, out, fault, stats, trace);
    case VMS_S2_ARM:
        stats->walks++;
        return arm_walk(bus, s2, gpa, acc, out, fault, stats, trace);
    default:
        return fail(fault, stats, false, VMS_S2F_MISCONFIG, gpa, acc, 0, 0);
    }
}
