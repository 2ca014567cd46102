/*
 * explain_nested.c — `vmsim explain --nested`: a guest's page tables in guest-physical
 * memory, the hypervisor's EPT (or NPT) in host RAM, and one translation narrated
 * reference by reference: for each guest entry the second-stage walk that locates its
 * table, then the entry itself, then the second-stage walk of the final guest-physical
 * address; the composed result, and a second access that hits the TLB (seed 002 §09).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_explain.h"
#include "vmsim/arch/aarch64.h"
#include "vmsim/core.h"
#include "vmsim/virt.h"

#define MAX_MAPS 32

static const char usage[] =
    "usage: vmsim explain --nested [options] [VA...]\n"
    "\n"
    "Build a guest's page tables in guest-physical memory and the hypervisor's\n"
    "second-stage tables in host RAM, then translate VA inside the guest reference by\n"
    "reference: every guest table reference goes through the second stage, and so does\n"
    "the final guest-physical address; a cold walk of G guest over H host levels reads\n"
    "(G+1)(H+1)-1 entries (24 for 4+4, 35 for 5+5). Without --map, maps guest virtual\n"
    "page 0x12 to guest frame 0x50 and explains 0x12345.\n"
    "\n"
    "options:\n"
    "  --levels G                  guest paging levels, 4 (default) or 5\n"
    "  --host-levels H             second-stage levels, 4 (default) or 5\n"
    "  --host-page 4K|2M|1G        the second stage maps guest memory with pages of this\n"
    "                              size (default 4K)\n"
    "  --s2 ept|npt|arm            Intel EPT (default, with accessed/dirty flags), AMD\n"
    "                              NPT (nested x86-64 tables at nCR3) or Arm Stage 2\n"
    "                              (VTTBR_EL2; the default with --arch aarch64)\n"
    "  --arch aarch64              an AArch64 guest (stage 1 at TTBR0_EL1, 4 levels) over\n"
    "                              Arm Stage 2 (--host-levels 3 or 4); preset cortex-a76\n"
    "                              unless --preset\n"
    "  --map VA=GPA[/SIZE][:PERMS] guest mapping: VA to guest-physical GPA; SIZE 4K, 2M or\n"
    "                              1G; PERMS from r w x (default rw), k for a supervisor\n"
    "                              page; repeatable. Every guest page is backed by host\n"
    "                              memory through the second stage\n"
    "  --access read|write|exec    the access to translate (default read)\n"
    "  --supervisor                translate in supervisor mode (default user mode)\n"
    "  --preset NAME               machine preset (default skylake; tiny has no page-walk\n"
    "                              cache)\n"
    "  --config FILE, --set KEY=VALUE\n"
    "                              configuration keys; the vm.* keys (vm.s2, vm.levels,\n"
    "                              vm.host_levels, vm.host_page, vm.nested_tlb, vm.pwc.*)\n"
    "                              are the defaults the flags above override\n"
    "  --stats json                print the machine's counters as JSON at the end\n"
    "                              (walk.mem_refs counts guest and second-stage entries)\n"
    "  -h, --help                  this text\n";

typedef struct nopts {
    unsigned glevels, hlevels;
    vms_pgsize hpage;
    vms_s2_kind kind;
    vms_access_kind acc;
    bool user, json;
    explain_map maps[MAX_MAPS];
    unsigned nmaps;
    uint64_t vas[MAX_MAPS];
    unsigned nvas;
} nopts;

static bool parse_perms(const char *s, uint64_t *flags)
{
    uint64_t f = VMS_PTE_US | VMS_PTE_XD;
    for (; *s; s++) {
        if (*s == 'w')
            f |= VMS_PTE_RW;
        else if (*s == 'x')
            f &= ~VMS_PTE_XD;
        else if (*s == 'k')
            f &= ~VMS_PTE_US;
        else if (*s != 'r')
            return false;
    }
    *flags = f;
    return true;
}

static bool parse_size(const char *v, vms_pgsize *s)
{
    if (!strcmp(v, "4K"))
        *s = VMS_PG_4K;
    else if (!strcmp(v, "2M"))
        *s = VMS_PG_2M;
    else if (!strcmp(v, "1G"))
        *s = VMS_PG_1G;
    else
        return false;
    return true;
}

/* Parse argv into o; -1 after --help, EXIT_USAGE on a bad argument, 0 otherwise. */
static int parse(int argc, char **argv, nopts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return -1;
        } else if (!strcmp(a, "--nested")) {
            continue;
        } else if ((!strcmp(a, "--levels") || !strcmp(a, "--host-levels")) && v) {
            i++;
            if (strcmp(v, "3") && strcmp(v, "4") && strcmp(v, "5")) {
                cli_error("explain", "bad %s '%s': expected 4 or 5 (3 for an Arm stage 2)", a, v);
                return EXIT_USAGE;
            }
            *(a[2] == 'l' ? &o->glevels : &o->hlevels) = (unsigned)atoi(v);
        } else if (!strcmp(a, "--host-page") && v) {
            i++;
            if (!parse_size(v, &o->hpage)) {
                cli_error("explain", "bad --host-page '%s': expected 4K, 2M or 1G", v);
                return EXIT_USAGE;
            }
        } else if (!strcmp(a, "--s2") && v) {
            i++;
            if (!strcmp(v, "ept"))
                o->kind = VMS_S2_EPT;
            else if (!strcmp(v, "npt"))
                o->kind = VMS_S2_NPT;
            else if (!strcmp(v, "arm"))
                o->kind = VMS_S2_ARM;
            else {
                cli_error("explain", "bad --s2 '%s': expected ept, npt or arm", v);
                return EXIT_USAGE;
            }
        } else if (!strcmp(a, "--map") && v) {
            explain_map *m = &o->maps[o->nmaps];
            char *perms;
            m->flags = VMS_PTE_US | VMS_PTE_RW | VMS_PTE_XD;
            i++;
            if (o->nmaps == MAX_MAPS || !cli_split_map(argv[i], &m->va, &m->pa, &m->size, &perms) ||
                (perms && !parse_perms(perms, &m->flags))) {
                cli_error("explain", "bad --map '%s': expected VA=GPA[/4K|2M|1G][:PERMS]", v);
                return EXIT_USAGE;
            }
            o->nmaps++;
        } else if (!strcmp(a, "--access") && v) {
            if (!cli_explain_access(argv[++i], &o->acc))
                return EXIT_USAGE;
        } else if (!strcmp(a, "--supervisor")) {
            o->user = false;
        } else if (cli_vm_config_arg(a) && v) {
            i++; /* cli_vm_config's */
        } else if (!strcmp(a, "--stats") && v) {
            i++;
            if (strcmp(v, "json")) {
                cli_error("explain", "bad --stats '%s': expected json", v);
                return EXIT_USAGE;
            }
            o->json = true;
        } else if (a[0] != '-' && o->nvas < MAX_MAPS && cli_parse_u64(a, false, &o->vas[o->nvas])) {
            o->nvas++;
        } else {
            cli_error("explain", "unexpected argument '%s' (see vmsim explain --nested --help)", a);
            return EXIT_USAGE;
        }
    }
    return 0;
}

/* Print what the library narrates into sb (the 2D walk's text is made in one place,
 * src/virt/narrate.c, for explain and for a scenario's show walk alike). */
static void put(vms_strbuf *sb)
{
    fputs(vms_strbuf_str(sb), stdout);
    sb->len = 0;
    if (sb->data)
        sb->data[0] = '\0';
}

/* Translate va twice in the guest on core c and narrate both. */
static void explain_va(vms_core *c, vms_nested *n, const vms_regs *g, uint64_t va,
                       vms_access_kind k)
{
    const vms_pt_format *f = vms_s2_format(vms_nested_s2(n)), *gf = g->fmt;
    if (gf)
        printf("\nTranslating 0x%" PRIx64 " (%s, EL%d) in the guest: stage 1 at TTBR0_EL1 = IPA "
               "0x%" PRIx64 "; %s = 0x%016" PRIx64 " (VMID %u, %u levels)\n",
               va, vms_access_name(k), g->user ? 0 : 1, g->ttbr0_el1, f->root_reg,
               vms_nested_s2(n)->vttbr, (unsigned)(vms_nested_s2(n)->vttbr >> VMS_VTTBR_VMID_SHIFT),
               f->levels);
    else
        printf("\nTranslating 0x%" PRIx64 " (%s, %s mode) in the guest: %u-level guest paging, "
               "CR3 = GPA 0x%" PRIx64 "; %s = 0x%" PRIx64 " (%u levels)\n",
               va, vms_access_name(k), g->user ? "user" : "supervisor", vms_regs_levels(g), g->cr3,
               f->root_reg,
               vms_nested_s2(n)->kind == VMS_S2_EPT ? vms_nested_s2(n)->eptp
                                                    : vms_nested_s2(n)->ncr3,
               f->levels);
    vms_nested_trace tr;
    vms_strbuf sb;
    vms_strbuf_init(&sb, NULL);
    vms_nested_set_trace(n, &tr);
    tr.nrefs = 0;
    const vms_walk_stats *ws = vms_core_walk_stats(c);
    uint64_t refs = ws->mem_refs, cyc = vms_core_cycles(c), walks = vms_nested_get_stats(n)->walks;
    vms_xlate x;
    vms_fault fl;
    uint64_t pa;
    bool ok = vms_core_translate(c, va, k, &x, &pa, &fl, NULL);
    bool walked = vms_nested_get_stats(n)->walks != walks;
    printf("  %s\n", walked ? "TLB miss: a two-dimensional walk" : "TLB hit: no walk");
    if (walked)
        vms_nested_trace_str(&tr, f, gf, &sb);
    if (!ok)
        vms_nested_fault_str(n, &fl, &sb);
    put(&sb);
    vms_strbuf_free(&sb);
    if (!ok) {
        vms_nested_set_trace(n, NULL);
        return;
    }
    uint64_t dr = ws->mem_refs - refs, dc = vms_core_cycles(c) - cyc, g1 = 0;
    for (unsigned i = 0; walked && i < tr.nrefs; i++)
        g1 += tr.ref[i].stage == 1;
    printf("  result: host physical 0x%" PRIx64 " (composed %s page at 0x%" PRIx64 "); %" PRIu64
           " memory references (%" PRIu64 " guest, %" PRIu64 " second-stage), %" PRIu64 " cycles\n",
           pa, vms_pgsize_name(x.size), x.page_pa, dr, g1, dr - g1, dc);
    refs = ws->mem_refs;
    cyc = vms_core_cycles(c);
    walks = vms_nested_get_stats(n)->walks;
    ok = vms_core_translate(c, va, k, &x, &pa, &fl, NULL);
    dr = ws->mem_refs - refs;
    dc = vms_core_cycles(c) - cyc;
    printf("  again: %s -> host physical 0x%" PRIx64 ", %" PRIu64 " memory reference%s, %" PRIu64
           " cycle%s\n",
           vms_nested_get_stats(n)->walks != walks ? "walk" : "TLB hit", pa, dr, dr == 1 ? "" : "s",
           dc, dc == 1 ? "" : "s");
    vms_nested_set_trace(n, NULL);
}

#define S2_TABLES_AT UINT64_C(0x100000)
#define GTAB_AT      UINT64_C(0x1000000)
#define HOST_AT      (UINT64_C(4) << 30)

int cmd_explain_nested(int argc, char **argv)
{
    static vms_config conf; /* large: kept off the stack */
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(usage, stdout);
            return 0;
        }
    int rc = cli_vm_config(argc, argv, "explain", &conf);
    if (rc)
        return rc;
    const vms_config_vm *cv = &conf.vm;
    bool arm = conf.machine.fmt && !strcmp(conf.machine.fmt->arch, "aarch64");
    nopts o = {.glevels = cv->guest_levels,
               .hlevels = cv->host_levels,
               .hpage = (vms_pgsize)cv->host_page,
               .kind = cv->s2 ? (vms_s2_kind)cv->s2
                       : arm  ? VMS_S2_ARM
                              : VMS_S2_EPT,
               .user = true};
    rc = parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;
    vms_machine_config cfg = conf.machine;
    vms_err err = {0};
    if (cfg.fmt && !arm) {
        cli_error("explain", "--nested models x86-64 and aarch64 guests, not arch '%s'",
                  cfg.fmt->arch);
        return EXIT_USAGE;
    }
    if (arm ? o.kind != VMS_S2_ARM : o.kind != VMS_S2_EPT && o.kind != VMS_S2_NPT) {
        cli_error("explain", "%s",
                  arm ? "--nested on aarch64: the second stage is Arm Stage 2 (--s2 arm)"
                      : "--nested on x86-64: vm.s2 is ept or npt (--s2 arm needs --arch aarch64)");
        return EXIT_USAGE;
    }
    if (arm ? o.glevels != 4 || (o.hlevels != 3 && o.hlevels != 4)
            : (o.glevels != 4 && o.glevels != 5) || (o.hlevels != 4 && o.hlevels != 5)) {
        cli_error("explain", "%s",
                  arm ? "--nested on aarch64: guest levels 4, stage 2 levels 3 or 4"
                      : "--nested on x86-64: vm.levels and vm.host_levels are 4 or 5");
        return EXIT_USAGE;
    }
    bool demo = o.nmaps == 0;
    if (demo)
        o.maps[o.nmaps++] =
            (explain_map){0x12000, 0x50000, VMS_PG_4K, VMS_PTE_US | VMS_PTE_RW | VMS_PTE_XD};
    if (demo && o.nvas == 0)
        o.vas[o.nvas++] = 0x12345;
    if (o.nvas == 0) {
        cli_error("explain", "no address to translate (give VA)");
        return EXIT_USAGE;
    }
    cfg.ncores = 1;
    if (cfg.ram_bytes < (UINT64_C(8) << 30))
        cfg.ram_bytes = UINT64_C(8) << 30; /* sparse: room for 1 GiB host pages at 4 GiB */
    vms_machine *m;
    if (vms_machine_create(NULL, &cfg, &m, &err) != VMS_OK) {
        cli_error("explain", "%s", err.msg);
        return 1;
    }
    vms_bus *bus = vms_machine_bus(m);
    vms_core *c = vms_machine_core(m, 0);
    const vms_pt_format *s2f = o.kind == VMS_S2_EPT   ? vms_format_ept(o.hlevels)
                               : o.kind == VMS_S2_NPT ? vms_format_npt(o.hlevels)
                                                      : vms_format_stage2(o.hlevels);
    unsigned prot = VMS_PGPROT_R | VMS_PGPROT_W | VMS_PGPROT_X | VMS_PGPROT_U;
    if (arm) /* young, writable stage 2 leaves (no Access flag faults) */
        prot |= VMS_PGPROT_A | VMS_PGPROT_D;
    vms_gspace gs;
    vms_nested *n = NULL;
    vms_s2_regs s2 = {.kind = o.kind, .npt_levels = o.hlevels};
    vms_pwc_config gpwc = cv->guest_pwc;
    vms_tlb_config ntlb;
    vms_config_vm_tlb(cv, &ntlb);
    vms_nested_config ncfg = {ntlb.nparts ? &ntlb : NULL, &gpwc, o.glevels, cfg.seed};
    vms_pt gpt;
    rc = 1;
    if (vms_gspace_init(&gs, bus, s2f, S2_TABLES_AT, HOST_AT, HOST_AT + (UINT64_C(5) << 30),
                        o.hpage, prot, GTAB_AT, &err) != VMS_OK)
        goto fail;
    s2.eptp = vms_eptp_make(gs.s2.root, o.hlevels, VMS_EPT_MT_WB, true);
    s2.ncr3 = gs.s2.root;
    s2.vttbr = vms_vttbr_make(gs.s2.root, 1);
    s2.vtcr = vms_vtcr_make(o.hlevels, true, true);
    if (vms_nested_create(NULL, bus, &s2, &ncfg, &n, &err) != VMS_OK)
        goto fail;
    vms_pt_ops ops = vms_gspace_table_ops(&gs);
    if ((arm ? vms_pt_init_format(&gpt, vms_nested_guest_bus(n), vms_format_aarch64(), &ops, &err)
             : vms_pt_init(&gpt, vms_nested_guest_bus(n), o.glevels, &ops, &err)) != VMS_OK)
        goto fail;
    printf("Two-stage translation: %s over %s (%u levels, %s host pages)\n",
           arm              ? "AArch64 stage 1 (4 levels, 4 KiB granule)"
           : o.glevels == 5 ? "5-level guest paging"
                            : "4-level guest paging",
           s2f->title, o.hlevels, vms_pgsize_name(o.hpage));
    printf("Guest page tables in guest-physical memory (root at GPA 0x%" PRIx64
           "); second-stage tables in host RAM (root at 0x%" PRIx64 "):\n",
           gpt.root, gs.s2.root);
    for (unsigned i = 0; i < o.nmaps; i++) {
        explain_map *mp = &o.maps[i];
        uint64_t hpa;
        unsigned gprot = VMS_PGPROT_R | VMS_PGPROT_A |
                         (mp->flags & VMS_PTE_RW ? VMS_PGPROT_W | VMS_PGPROT_D : 0) |
                         (mp->flags & VMS_PTE_XD ? 0 : VMS_PGPROT_X) |
                         (mp->flags & VMS_PTE_US ? VMS_PGPROT_U : 0);
        if ((arm ? vms_pt_map_prot(&gpt, mp->va, mp->pa, mp->size, gprot, &err)
                 : vms_pt_map(&gpt, mp->va, mp->pa, mp->size, mp->flags, &err)) != VMS_OK ||
            vms_gspace_back(&gs, mp->pa, &hpa, &err) != VMS_OK)
            goto fail;
        printf("  guest maps virtual 0x%" PRIx64 " -> guest physical 0x%" PRIx64
               " (%s page, %s%s%s); backed at host physical 0x%" PRIx64 "\n",
               mp->va, mp->pa, vms_pgsize_name(mp->size), mp->flags & VMS_PTE_RW ? "rw" : "r",
               mp->flags & VMS_PTE_XD ? "" : "x", mp->flags & VMS_PTE_US ? ", user" : ", kernel",
               hpa);
    }
    /* Every page of the guest's data the VAs touch is backed, as is every table. */
    for (unsigned i = 0; i < o.nvas; i++) {
        uint64_t pte;
        vms_pgsize sz;
        if (vms_pt_lookup(&gpt, o.vas[i], &pte, NULL, &sz)) {
            vms_pte_info in;
            vms_fmt_decode(gpt.fmt, pte, vms_fmt_size_level(sz), &in);
            uint64_t gpa =
                (in.pa & ~(vms_pgsize_bytes(sz) - 1)) | (o.vas[i] & (vms_pgsize_bytes(sz) - 1));
            if (vms_gspace_back(&gs, gpa, NULL, &err) != VMS_OK)
                goto fail;
        }
    }
    printf("  the second stage maps %" PRIu64 " %s page%s of guest-physical memory\n", gs.backed,
           vms_pgsize_name(o.hpage), gs.backed == 1 ? "" : "s");
    vms_regs g = *vms_core_regs(c);
    if (arm) { /* EL0/EL1 with TTBR0_EL1 at the guest's tables (ASID 0), 48-bit VAs */
        g.fmt = vms_format_aarch64();
        g.tcr_el1 = vms_a64_tcr(o.hlevels == 4 ? 48 : 39, false, false, false, false);
        g.sctlr_el1 = VMS_A64_SCTLR_M;
        g.ttbr0_el1 = gpt.root;
        g.ttbr1_el1 = 0;
        g.pan = false;
    } else {
        g.fmt = NULL;
        g.cr3 = gpt.root;
        g.cr4 = (g.cr4 & ~(VMS_CR4_LA57 | VMS_CR4_PCIDE)) | VMS_CR4_PAE |
                (o.glevels == 5 ? VMS_CR4_LA57 : 0);
    }
    g.user = o.user;
    if (vms_core_vm_enter(c, n, 1, &g) != VMS_OK) {
        snprintf(err.msg, sizeof err.msg, "VM entry refused");
        goto fail;
    }
    for (unsigned i = 0; i < o.nvas; i++)
        explain_va(c, n, &g, o.vas[i], o.acc);
    vms_core_vm_exit(c);
    if (o.json) {
        vms_strbuf sb;
        vms_strbuf_init(&sb, NULL);
        vms_machine_stats_json(m, &sb);
        fputs(vms_strbuf_str(&sb), stdout);
        vms_strbuf_free(&sb);
    }
    rc = 0;
fail:
    if (rc)
        cli_error("explain", "%s", err.msg);
    vms_nested_destroy(n);
    vms_machine_destroy(m);
    return rc;
}
