/*
 * explain_fmt.c — `vmsim explain` for the architectures other than x86-64 (--arch):
 * the same story as cmd_explain.c (tables built in simulated RAM, one translation
 * narrated level by level, then a second access that hits the TLB), told with the
 * format's own names (format.h: level_name, root_reg, bits_str, decode). RISC-V adds its
 * registers and fault causes: satp's MODE/ASID/PPN, VPN[i], PPN, scause and stval.
 *
 * The core is booted the way the kernel boots it (vms_core_mmu_boot: on RISC-V csrw
 * satp, Svadu on so the walker sets A/D, sstatus.SUM), with ASIDs off.
 */
#include <inttypes.h>
#include <string.h>

#include "cli_explain.h"
#include "vmsim/arch/riscv64.h"
#include "vmsim/core.h"
#include "vmsim/pt.h"

/* The virtual address split into its index fields, root first. */
static void print_fields(const vms_pt_format *f, uint64_t va)
{
    printf("  va fields:");
    for (unsigned l = f->levels; l >= 1; l--)
        printf(" %s 0x%x |", f->level_name[l], vms_fmt_index(f, va, l));
    printf(" offset 0x%03" PRIx64 "\n", va & ((UINT64_C(1) << f->page_shift) - 1));
}

/* The register that holds the root, decoded where the architecture is known. */
static void print_root(const vms_pt_format *f, const vms_regs *r)
{
    if (vms_rv_format_mode(f)) {
        printf("satp = 0x%016" PRIx64 " (MODE %u, ASID %u, PPN 0x%" PRIx64 ")", r->satp,
               vms_rv_satp_mode(r->satp), vms_rv_satp_asid(r->satp),
               r->satp & VMS_RV_SATP_PPN_MASK);
        return;
    }
    printf("%s", f->root_reg);
}

static void print_step(const vms_pt_format *f, const vms_walk_step *s, uint64_t pte_after)
{
    char bits[96];
    vms_pte_info in;
    vms_fmt_decode(f, s->pte, s->level, &in);
    f->bits_str(s->pte, s->level, bits, sizeof bits);
    printf("  %-6s table 0x%09" PRIx64 " index %3u  entry @0x%09" PRIx64 " = 0x%016" PRIx64
           "  [%s]",
           f->level_name[s->level], s->table_pa, s->index, s->ptep, s->pte,
           in.present ? bits : "not valid");
    if (in.present && !in.rsvd_clear)
        printf(" reserved bits or encoding\n");
    else if (!in.present)
        printf("\n");
    else if (in.leaf)
        printf(" -> page, PPN 0x%" PRIx64 "\n", vms_fmt_pte_pfn(f, s->pte));
    else
        printf(" -> next table 0x%09" PRIx64 " (PPN 0x%" PRIx64 ")\n", in.pa,
               vms_fmt_pte_pfn(f, s->pte));
    if (pte_after != s->pte && in.present) {
        f->bits_str(pte_after, s->level, bits, sizeof bits);
        printf("         walker wrote back 0x%016" PRIx64 "  [%s]\n", pte_after, bits);
    }
}

/* RISC-V's name of a trap cause. */
static const char *rv_cause_name(uint32_t cause)
{
    switch (cause) {
    case VMS_RV_CAUSE_FETCH_PAGE:
        return "instruction page fault";
    case VMS_RV_CAUSE_LOAD_PAGE:
        return "load page fault";
    case VMS_RV_CAUSE_STORE_PAGE:
        return "store/AMO page fault";
    case VMS_RV_CAUSE_FETCH_ACCESS:
        return "instruction access fault";
    case VMS_RV_CAUSE_LOAD_ACCESS:
        return "load access fault";
    case VMS_RV_CAUSE_STORE_ACCESS:
        return "store/AMO access fault";
    }
    return "fault";
}

static void print_fault(const vms_pt_format *f, const vms_fault *flt)
{
    if (vms_rv_format_mode(f)) {
        printf("  result: %s, scause = %u, stval = 0x%" PRIx64, rv_cause_name(flt->error_code),
               flt->error_code, flt->va);
        if (flt->kind == VMS_FAULT_BUS)
            printf(" (nothing at physical 0x%" PRIx64 ")", flt->pa);
        printf("\n");
        return;
    }
    printf("  result: fault kind %d, code 0x%x, address 0x%" PRIx64 "\n", (int)flt->kind,
           flt->error_code, flt->va);
}

/* Translate va twice and narrate both. Returns 0, or 1 if the translation faulted. */
static int explain_one(vms_core *c, vms_bus *bus, uint64_t va, vms_access_kind kind)
{
    const vms_regs *r = vms_core_regs(c);
    const vms_pt_format *f = vms_regs_format(r);
    printf("\nTranslating 0x%" PRIx64 " (%s, %s mode), %s, ", va, vms_access_name(kind),
           r->user ? "user" : "supervisor", f->title);
    print_root(f, r);
    printf("\n");
    print_fields(f, va);
    vms_walk_trace tr;
    vms_xlate x;
    vms_fault flt;
    uint64_t pa;
    const vms_walk_stats *ws = vms_core_walk_stats(c);
    uint64_t refs = ws->mem_refs, cyc = vms_core_cycles(c);
    bool ok = vms_core_translate(c, va, kind, &x, &pa, &flt, &tr);
    if (tr.nsteps == 0 && ok)
        printf("  TLB hit: no walk\n");
    else
        printf("  TLB miss: the walker reads the tables from RAM, from %s%s\n", f->root_reg,
               tr.pwc_level ? " (a page-walk cache skipped the upper levels)" : "");
    for (unsigned i = 0; i < tr.nsteps; i++) {
        uint64_t after = tr.step[i].pte;
        vms_bus_read64(bus, tr.step[i].ptep, &after);
        print_step(f, &tr.step[i], after);
    }
    if (!ok) {
        print_fault(f, &flt);
        return 1;
    }
    printf("  result: physical 0x%" PRIx64 " = page 0x%" PRIx64 " (%s, PPN 0x%" PRIx64
           ") + offset 0x%" PRIx64 "; %" PRIu64 " memory references, %" PRIu64 " cycles\n",
           pa, x.page_pa, vms_pgsize_name(x.size), x.page_pa >> f->page_shift,
           va & (vms_pgsize_bytes(x.size) - 1), ws->mem_refs - refs, vms_core_cycles(c) - cyc);
    refs = ws->mem_refs;
    cyc = vms_core_cycles(c);
    ok = vms_core_translate(c, va, kind, &x, &pa, &flt, &tr);
    printf("  again: %s -> physical 0x%" PRIx64 ", %" PRIu64 " memory references, %" PRIu64
           " cycles\n",
           tr.nsteps ? "walk" : "TLB hit", pa, ws->mem_refs - refs, vms_core_cycles(c) - cyc);
    return ok ? 0 : 1;
}

/* Neutral rights (format.h) of a mapping given as x86 bits by the option parser. */
static unsigned prot_of(uint64_t x86_flags)
{
    return VMS_PGPROT_R | (x86_flags & VMS_PTE_RW ? VMS_PGPROT_W : 0) |
           (x86_flags & VMS_PTE_XD ? 0 : VMS_PGPROT_X) |
           (x86_flags & VMS_PTE_US ? VMS_PGPROT_U : 0) | (x86_flags & VMS_PTE_G ? VMS_PGPROT_G : 0);
}

int explain_format(vms_machine *m, const vms_pt_format *f, const explain_map *maps, unsigned nmaps,
                   const uint64_t *vas, unsigned nvas, vms_access_kind kind, bool user, bool demo)
{
    vms_bus *bus = vms_machine_bus(m);
    vms_err err = {0};
    /* Table pages from 1 MiB up, far from the examples' data frames. */
    vms_pt_bump b = {vms_machine_ram(m), UINT64_C(0x100000), 0, 0, 0};
    vms_pt_ops ops = vms_pt_bump_ops(&b);
    vms_pt pt;
    if (vms_pt_init_format(&pt, bus, f, &ops, &err) != VMS_OK) {
        cli_error("explain", "%s", err.msg);
        return 1;
    }
    printf("Page tables in simulated RAM (%s, root table at 0x%" PRIx64 "):\n", f->title, pt.root);
    for (unsigned i = 0; i < nmaps; i++) {
        const explain_map *mp = &maps[i];
        if (vms_pt_map_prot(&pt, mp->va, mp->pa, mp->size, prot_of(mp->flags), &err) != VMS_OK) {
            cli_error("explain", "cannot map 0x%" PRIx64 ": %s", mp->va, err.msg);
            return 1;
        }
        printf("  map virtual 0x%" PRIx64 " -> physical 0x%" PRIx64 " (%s page, %s%s%s%s)\n",
               mp->va, mp->pa, vms_pgsize_name(mp->size), mp->flags & VMS_PTE_RW ? "rw" : "r",
               mp->flags & VMS_PTE_XD ? "" : "x", mp->flags & VMS_PTE_US ? ", user" : ", kernel",
               mp->flags & VMS_PTE_G ? ", global" : "");
    }
    vms_core *c = vms_machine_core(m, 0);
    if (vms_core_mmu_boot(c, pt.root, false) != VMS_OK) {
        cli_error("explain", "the core refused to turn on %s", f->title);
        return 1;
    }
    vms_core_set_user(c, user);
    for (unsigned i = 0; i < nvas; i++) {
        vms_access_kind k = kind;
        if (demo && vas[i] == 0x00401234 && kind == VMS_ACC_READ)
            k = VMS_ACC_EXEC;           /* the seed's example is code */
        explain_one(c, bus, vas[i], k); /* a fault is an answer, not an error */
    }
    return 0;
}
