/*
 * explain_mips.c — `vmsim explain --tlb software`: the same x86-64 tables in simulated
 * RAM, translated by a core whose TLB is software-managed (MIPS style, swtlb.h): the
 * micro-TLB and JTLB lookups, each TLB exception (Refill, TLBL/TLBS Invalid, Modified,
 * TLBXI) with BadVAddr and EntryHi, the loads the kernel's handler makes (each one a
 * memory reference, counted in walk.mem_refs like a hardware walk's), the EntryLo pair
 * it builds and the TLBWR or TLBWI that writes it, then the retried access.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli_explain.h"
#include "vmsim/core.h"
#include "vmsim/swtlb.h"

static const char *const level_names[] = {"", "PT", "PD", "PDPT", "PML4", "PML5"};

static const char *exc_name(const vms_mips_trace_exc *e)
{
    switch (e->exc) {
    case VMS_MIPS_EXC_REFILL:
        return e->exccode == VMS_MIPS_EXCCODE_TLBS ? "TLB Refill (TLBS: no entry matches)"
                                                   : "TLB Refill (TLBL: no entry matches)";
    case VMS_MIPS_EXC_INVALID:
        return e->exccode == VMS_MIPS_EXCCODE_TLBS ? "TLBS Invalid (the half has V = 0)"
                                                   : "TLBL Invalid (the half has V = 0)";
    case VMS_MIPS_EXC_MOD:
        return "TLB Modified (a store, the half has D = 0)";
    case VMS_MIPS_EXC_XI:
        return "TLBXI (a fetch, the half has XI = 1)";
    }
    return "?";
}

/* "PFN 0x50 C=3 D V G XI" for an EntryLo. */
static void lo_str(uint64_t lo, char *buf, size_t len)
{
    snprintf(buf, len, "PFN 0x%" PRIx64 " C=%u%s%s%s%s", (lo & VMS_MIPS_LO_PFN_MASK) >> 6,
             (unsigned)((lo & VMS_MIPS_LO_C_MASK) >> VMS_MIPS_LO_C_SHIFT),
             lo & VMS_MIPS_LO_D ? " D" : "", lo & VMS_MIPS_LO_V ? " V" : " (V=0)",
             lo & VMS_MIPS_LO_G ? " G" : "", lo & VMS_MIPS_LO_XI ? " XI" : "");
}

static void print_exc(const vms_mips_trace *t, const vms_mips_trace_exc *e, uint64_t va)
{
    printf("  exception: %s, ExcCode %u; BadVAddr = 0x%" PRIx64 ", EntryHi.VPN2 = 0x%" PRIx64 "\n",
           exc_name(e), e->exccode, va, va & ~UINT64_C(0x1FFF));
    printf("    the kernel's %s handler reads its page tables (KScratch = the root):\n",
           e->exc == VMS_MIPS_EXC_REFILL ? "refill" : "TLB");
    for (unsigned i = e->load0; i < e->load0 + e->nloads && i < t->nloads; i++) {
        const vms_walk_step *s = &t->load[i];
        char bits[96];
        cli_pte_bits(s->pte, s->level, bits, sizeof bits);
        printf("      load %-4s table 0x%09" PRIx64 " index %3u  @0x%09" PRIx64 " = 0x%016" PRIx64
               "  [%s]\n",
               level_names[s->level <= 5 ? s->level : 0], s->table_pa, s->index, s->ptep, s->pte,
               bits);
    }
    if (e->nstores)
        printf("      it sets A%s in the entry and stores it back (%u store%s)\n",
               e->exc == VMS_MIPS_EXC_REFILL ? "" : "/D as the access needs", e->nstores,
               e->nstores == 1 ? "" : "s");
    if (e->wrote) {
        char lo0[96], lo1[96];
        lo_str(e->written.lo[0], lo0, sizeof lo0);
        lo_str(e->written.lo[1], lo1, sizeof lo1);
        printf("      EntryLo0 = 0x%016" PRIx64 "  [%s]\n", e->written.lo[0], lo0);
        printf("      EntryLo1 = 0x%016" PRIx64 "  [%s]\n", e->written.lo[1], lo1);
        printf("      PageMask = 0x%" PRIx64 " (%s halves)\n", e->written.pagemask,
               e->written.pagemask ? "1 MiB" : "4 KiB");
        if (e->random)
            printf("      tlbwr: Random = %u, so entry %u := EntryHi 0x%" PRIx64 " ASID %u\n",
                   e->random_reg, e->windex, e->written.vpn2, e->written.asid);
        else
            printf("      tlbp finds the slot, tlbwi: entry %u := EntryHi 0x%" PRIx64 " ASID %u\n",
                   e->windex, e->written.vpn2, e->written.asid);
    }
    if (e->passed_on)
        printf("      not allowed or not present: passed on to the page-fault path\n");
    else
        printf("      eret: the access is retried (%" PRIu64 " cycles in the handler)\n",
               e->cycles);
}

int explain_swtlb_one(vms_core *c, uint64_t va, vms_access_kind kind)
{
    const vms_regs *r = vms_core_regs(c);
    const vms_mips_cp0 *cp0 = vms_core_mips_cp0(c);
    printf("\nTranslating 0x%" PRIx64 " (%s, %s mode), software-managed TLB, KScratch = 0x%" PRIx64
           ", EntryHi.ASID = %u\n",
           va, vms_access_name(kind), r->user ? "user" : "supervisor", cp0->kscratch, cp0->asid);
    const vms_walk_stats *ws = vms_core_walk_stats(c);
    uint64_t refs = ws->mem_refs, cyc = vms_core_cycles(c);
    uint64_t miss0 =
        vms_tlb_get_stats(vms_core_tlb(c, kind == VMS_ACC_EXEC ? VMS_TLB_L1I : VMS_TLB_L1D))
            ->misses;
    vms_xlate x;
    vms_fault f;
    uint64_t pa;
    bool ok = vms_core_translate(c, va, kind, &x, &pa, &f, NULL);
    vms_tlb *l1 = vms_core_tlb(c, kind == VMS_ACC_EXEC ? VMS_TLB_L1I : VMS_TLB_L1D);
    if (vms_tlb_get_stats(l1)->misses == miss0) {
        printf("  micro-TLB hit: no exception\n");
    } else {
        vms_mips_trace t;
        vms_mips_last_trace(c, &t);
        printf("  micro-TLB miss: the hardware looks the JTLB up (%u entries)\n",
               vms_mips_tlb_size(c));
        for (unsigned i = 0; i < t.nexc; i++) {
            print_exc(&t, &t.exc[i], va);
            if (i + 1 < t.nexc || t.hit)
                printf("  retry: JTLB lookup\n");
        }
        if (t.hit)
            printf("  JTLB hit: the micro-TLB is refilled from it\n");
    }
    uint64_t dr = ws->mem_refs - refs, dc = vms_core_cycles(c) - cyc;
    if (!ok) {
        printf("  result: page fault at 0x%" PRIx64 ", ExcCode %u (the kernel's ordinary fault "
               "path runs); %" PRIu64 " memory reference%s, %" PRIu64 " cycles\n",
               f.va, f.error_code, dr, dr == 1 ? "" : "s", dc);
        return 1;
    }
    printf("  result: physical 0x%" PRIx64 "; %" PRIu64 " memory reference%s, %" PRIu64
           " cycle%s\n",
           pa, dr, dr == 1 ? "" : "s", dc, dc == 1 ? "" : "s");
    refs = ws->mem_refs;
    cyc = vms_core_cycles(c);
    uint64_t m1 = vms_tlb_get_stats(l1)->misses;
    ok = vms_core_translate(c, va, kind, &x, &pa, &f, NULL);
    dr = ws->mem_refs - refs;
    dc = vms_core_cycles(c) - cyc;
    printf("  again: %s -> physical 0x%" PRIx64 ", %" PRIu64 " memory reference%s, %" PRIu64
           " cycle%s\n",
           vms_tlb_get_stats(l1)->misses == m1 ? "micro-TLB hit" : "JTLB", pa, dr,
           dr == 1 ? "" : "s", dc, dc == 1 ? "" : "s");
    return ok ? 0 : 1;
}
