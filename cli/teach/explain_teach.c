/*
 * explain_teach.c — `vmsim explain --ostep MACHINE [FLAGS] VA…` and `vmsim explain
 * --machine csapp VA…`: the teaching machines' translations narrated step by step, in
 * vmsim's words, from what their walkers read in simulated RAM (ostep.h, teach.h).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "vmsim/ostep.h"
#include "vmsim/teach.h"

/* One radix step: the table, the index, the entry and what it leads to. */
static void radix_step(const vms_pt_format *f, const vms_walk_step *s, unsigned width)
{
    char bits[16];
    f->bits_str(s->pte, s->level, bits, sizeof bits);
    printf("  %-3s table 0x%04" PRIx64 " index %3u  entry @0x%04" PRIx64 " = 0x%0*" PRIx64 "  [%s]",
           f->level_name[s->level], s->table_pa, s->index, s->ptep, (int)width, s->pte,
           bits[0] ? bits : "not valid");
    if (!vms_fmt_pte_present(f, s->pte))
        printf(" -> fault\n");
    else if (s->level > 1)
        printf(" -> page-table page 0x%" PRIx64 " (physical 0x%" PRIx64 ")\n",
               vms_fmt_pte_pfn(f, s->pte), vms_fmt_pte_addr(f, s->pte));
    else
        printf(" -> page 0x%" PRIx64 "\n", vms_fmt_pte_pfn(f, s->pte));
}

static void ostep_paging(vms_ostep *o, const vms_ostep_xlate *x)
{
    const vms_pt_format *f = vms_ostep_format(o);
    uint64_t off = x->va & ((UINT64_C(1) << f->page_shift) - 1);
    printf("  va fields:");
    for (unsigned l = f->levels; l >= 1; l--)
        printf(" %s index 0x%x |", f->level_name[l], vms_fmt_index(f, x->va, l));
    printf(" offset 0x%" PRIx64 "   (VPN %" PRIu64 ")\n", off, x->vpn);
    for (unsigned i = 0; i < x->trace.nsteps; i++)
        radix_step(f, &x->trace.step[i], 2u << f->entry_shift);
    if (x->fault_kind == VMS_FAULT_GP) {
        printf("  result: 0x%" PRIx64 " is wider than the %u-bit virtual address\n", x->va,
               f->va_bits);
    } else if (!x->valid) {
        printf("  result: fault, the %s is not valid (%s)\n",
               x->fault_level == 2 ? "page-directory entry" : "page-table entry",
               f->levels == 2 ? (x->fault_level == 2 ? "pde_fault" : "pte_fault") : "invalid");
    } else {
        printf("  result: physical 0x%" PRIx64 " = page 0x%" PRIx64 " * %u + offset 0x%" PRIx64,
               x->pa, x->pa >> f->page_shift, 1u << f->page_shift, off);
        if (vms_ostep_config_of(o)->kind == VMS_OSTEP_MULTILEVEL)
            printf("; the byte there is 0x%02x", x->value);
        printf("; %u memory references\n", x->trace.nsteps);
    }
}

static void ostep_segments(vms_ostep *o, const vms_ostep_xlate *x)
{
    const vms_ostep_config *c = vms_ostep_config_of(o);
    uint64_t base, limit;
    bool gn;
    if (x->fault_kind == VMS_FAULT_GP) {
        printf("  result: 0x%" PRIx64 " is outside the %" PRId64 "-byte address space\n", x->va,
               c->asize);
        return;
    }
    vms_ostep_segment(o, x->segment, &base, &limit, &gn);
    if (c->kind == VMS_OSTEP_SEGMENTATION)
        printf("  segment %u (va %s half the %" PRId64
               "-byte address space), descriptor @0x%" PRIx64 ": base 0x%" PRIx64 ", limit %" PRIu64
               ", grows %s\n",
               x->segment, x->segment ? ">=" : "<", c->asize, x->trace.step[0].ptep, base, limit,
               gn ? "negative" : "positive");
    else
        printf("  base-and-bounds registers (kept @0x%" PRIx64 "): base 0x%" PRIx64
               ", limit (bounds) %" PRIu64 "\n",
               x->trace.step[0].ptep, base, limit);
    if (gn) {
        uint64_t dist = (uint64_t)c->asize - x->va;
        printf("  offset from the segment's top: %" PRIu64 " - %" PRId64 " = -%" PRIu64 "; %" PRIu64
               " %s the limit %" PRIu64 "\n",
               x->va, c->asize, dist, dist, dist <= limit ? "is within" : "exceeds", limit);
        if (x->valid)
            printf("  result: physical 0x%" PRIx64 " = base 0x%" PRIx64 " - %" PRIu64
                   " (decimal %" PRIu64 ")\n",
                   x->pa, base, dist, x->pa);
    } else {
        uint64_t off = x->va - (x->segment ? (uint64_t)c->asize / 2 : 0);
        printf("  offset %" PRIu64 " %s the limit %" PRIu64 "\n", off,
               off < limit ? "<" : ">=", limit);
        if (x->valid)
            printf("  result: physical 0x%" PRIx64 " = base 0x%" PRIx64 " + %" PRIu64
                   " (decimal %" PRIu64 ")\n",
                   x->pa, base, off, x->pa);
    }
    if (!x->valid)
        printf("  result: segmentation violation%s\n",
               c->kind == VMS_OSTEP_SEGMENTATION ? (x->segment ? " (SEG1)" : " (SEG0)") : "");
}

static int explain_ostep(int argc, char **argv)
{
    vms_ostep_config cfg;
    uint64_t vas[CLI_OSTEP_MAX_VAS];
    unsigned nvas = 0;
    int rc = cli_ostep_config(argc > 0 ? argv[0] : NULL, argc - 1, argv + 1, &cfg, vas, &nvas);
    if (rc)
        return rc < 0 ? 0 : rc;
    vms_ostep *o;
    vms_err err = {0};
    if (vms_ostep_create(NULL, &cfg, &o, &err) != VMS_OK) {
        cli_error("explain", "%s", err.msg);
        return EXIT_USAGE;
    }
    const vms_pt_format *f = vms_ostep_format(o);
    printf("%s, seed %" PRId64
           " (format %s), tables in simulated RAM; root (%s) at physical 0x%" PRIx64,
           f->title, cfg.seed, f->name, f->root_reg, vms_ostep_root(o));
    if (cfg.kind == VMS_OSTEP_MULTILEVEL)
        printf(" = page %" PRIu64, vms_ostep_root(o) >> f->page_shift);
    printf("\n");
    if (nvas == 0) /* the problem's own addresses */
        for (size_t i = 0; i < vms_ostep_naddrs(o) && nvas < CLI_OSTEP_MAX_VAS; i++)
            vas[nvas++] = vms_ostep_addr(o, i);
    for (unsigned i = 0; i < nvas; i++) {
        vms_ostep_xlate x;
        if (vms_ostep_translate(o, vas[i], &x, &err) != VMS_OK) {
            cli_error("explain", "%s", err.msg);
            rc = 1;
            break;
        }
        printf("\nTranslating 0x%" PRIx64 " (decimal %" PRIu64 ")\n", vas[i], vas[i]);
        if (cfg.kind == VMS_OSTEP_LINEAR || cfg.kind == VMS_OSTEP_MULTILEVEL)
            ostep_paging(o, &x);
        else
            ostep_segments(o, &x);
    }
    vms_ostep_destroy(o);
    return rc;
}

static void csapp_one(const vms_csapp_xlate *x)
{
    printf("\nTranslating 0x%04" PRIx64 " on CS:APP's small memory system (3e §9.6.4, Figure "
           "9.20)\n",
           x->va);
    printf("  va fields: VPN 0x%02x | VPO 0x%02x;  VPN = TLBT 0x%02x | TLBI 0x%x\n", x->vpn, x->vpo,
           x->tlbt, x->tlbi);
    printf("  TLB set %u (Figure 9.20(a)):", x->tlbi);
    for (unsigned w = 0; w < 4; w++) {
        if (x->set[w].valid)
            printf("  tag 0x%02x PPN 0x%02x valid", x->set[w].tag, x->set[w].ppn);
        else
            printf("  tag 0x%02x invalid", x->set[w].tag);
    }
    printf("\n");
    if (x->tlb_hit) {
        printf("  TLB hit: tag 0x%02x matches a valid entry -> PPN 0x%02x (no page-table "
               "access)\n",
               x->tlbt, x->ppn);
    } else {
        printf("  TLB miss: no valid entry of set %u has tag 0x%02x; the walker reads the page "
               "table\n",
               x->tlbi, x->tlbt);
        printf("  PTE  table 0x%03x index 0x%02x  entry @0x%03" PRIx64 " = 0x%02" PRIx64 "  [%s]\n",
               VMS_CSAPP_PTBR, x->vpn, x->pte_pa, x->pte, x->page_fault ? "not valid" : "V");
        if (x->page_fault) {
            printf("  result: page fault (PTE 0x%02x is not valid%s)\n", x->vpn,
                   x->vpn >= 16 ? "; the book shows only the first 16 PTEs" : "");
            return;
        }
    }
    printf("  result: PA 0x%03" PRIx64 " = PPN 0x%02x | PPO 0x%02x  (CT 0x%02" PRIx64
           ", CI 0x%" PRIx64 ", CO 0x%" PRIx64 " for the book's 16-set cache)\n",
           x->pa, x->ppn, x->vpo, x->pa >> 6, (x->pa >> 2) & 0xf, x->pa & 3);
}

static int explain_machine(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "csapp") != 0) {
        cli_error("explain", "bad --machine '%s': expected csapp (OSTEP's machines: --ostep)",
                  argc ? argv[0] : "");
        return EXIT_USAGE;
    }
    uint64_t vas[CLI_OSTEP_MAX_VAS];
    unsigned nvas = 0;
    for (int i = 1; i < argc; i++) {
        if (nvas == CLI_OSTEP_MAX_VAS || !cli_parse_u64(argv[i], false, &vas[nvas])) {
            cli_error("explain", "unexpected argument '%s' (expected a virtual address)", argv[i]);
            return EXIT_USAGE;
        }
        nvas++;
    }
    if (nvas == 0)
        vas[nvas++] = 0x03d4; /* the book's worked example */
    for (unsigned i = 0; i < nvas; i++) {
        vms_csapp_xlate x;
        vms_err err = {0};
        if (vms_csapp_translate(NULL, vas[i], &x, &err) != VMS_OK) {
            cli_error("explain", "%s", err.msg);
            return EXIT_USAGE;
        }
        csapp_one(&x);
    }
    return 0;
}

int cli_explain_teach(int argc, char **argv)
{
    if (!strcmp(argv[0], "--ostep"))
        return explain_ostep(argc - 1, argv + 1);
    return explain_machine(argc - 1, argv + 1);
}
