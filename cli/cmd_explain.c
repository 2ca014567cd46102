/*
 * cmd_explain.c — `vmsim explain`: build a small address space in simulated RAM and
 * narrate one translation level by level, the way the seeds draw it: for each level the
 * table's physical address, the index taken from the virtual address, the entry's
 * address and raw value, and its decoded bits; then the result, the TLB fill, and a
 * second access that hits the TLB.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "vmsim/cache.h"
#include "cli_explain.h"
#include "vmsim/core.h"
#include "vmsim/dram.h"
#include "vmsim/pt.h"

#define MAX_MAPS 32

static const char usage[] =
    "usage: vmsim explain [options] [VA]\n"
    "\n"
    "Build page tables in simulated RAM, then translate VA step by step: each level's\n"
    "table address, index, raw entry and decoded bits, the physical result, and a second\n"
    "access that hits the TLB. Without --map, maps the seeds' examples: virtual page 0x12\n"
    "to frame 0x50 and page 0x401 to frame 0x8A3 (and explains 0x12345 and 0x401234).\n"
    "\n"
    "options:\n"
    "  --map VA=PA[/SIZE][:PERMS]  map the page at VA to PA; SIZE 4K (default), 2M or 1G;\n"
    "                              PERMS from r w x (default rw), plus k for a supervisor\n"
    "                              page and g for a global one; repeatable\n"
    "  --access read|write|exec    the access to translate (default read)\n"
    "  --supervisor                translate in supervisor mode (default user mode)\n"
    "  --smep, --smap, --pke       x86_64: set CR4.SMEP (no supervisor fetch from user\n"
    "                              pages), CR4.SMAP (no supervisor data access to them\n"
    "                              unless --stac) or CR4.PKE (protection keys: PERMS pN\n"
    "                              gives the page key N, 0 … 15; --pkru sets PKRU)\n"
    "  --stac                      RFLAGS.AC = 1 (STAC: SMAP allows the access)\n"
    "  --pkru VALUE                PKRU (keys' AD = bit 2N, WD = bit 2N+1; default 0)\n"
    "  --arch x86_64|riscv64|aarch64  the architecture (default x86_64): riscv64 narrates\n"
    "                              Sv39/Sv48/Sv57 walks (satp, VPN[i], PPN, scause);\n"
    "                              aarch64 has its own options (vmsim explain --arch\n"
    "                              aarch64 --help)\n"
    "  --design hashed|inverted    translate through a PowerPC-style hashed page table or\n"
    "                              an inverted page table filled from the radix tables\n"
    "                              (x86_64, 4K maps below 31 MiB; docs/arch/hashed.md)\n"
    "  --tlb hardware|software     who fills the TLB (default hardware: the walker);\n"
    "                              software: a MIPS-style JTLB that the kernel's refill\n"
    "                              handler fills (exceptions, its table loads, tlbwr);\n"
    "                              x86_64 tables only\n"
    "  --levels N                  paging levels: x86_64 4|5 (default: the preset's),\n"
    "                              riscv64 3|4|5 (Sv39, the default; Sv48; Sv57)\n"
    "  --preset NAME               machine preset (default skylake; see `vmsim presets`)\n"
    "  --cache NAME                data caches: off (default), skylake or tiny; each entry\n"
    "                              read then says where it was served (L1, L2, LLC, DRAM)\n"
    "  --dram NAME                 DRAM timing: off (default), ddr4-3200 or ddr5-4800; a\n"
    "                              DRAM read then says row hit, row miss or row conflict\n"
    "  --stats json                print the machine's counters as JSON at the end\n"
    "  -h, --help                  this text\n"
    "\n"
    "Virtual machines: a two-dimensional (guest + EPT/NPT) walk, reference by reference:\n"
    "  vmsim explain --nested [--levels G] [--host-levels H] [--host-page 4K|2M|1G] [VA]\n"
    "      (vmsim explain --nested --help)\n"
    "\n"
    "The teaching machines (docs/TEACHING.md), narrated in their own terms:\n"
    "  vmsim explain --ostep linear|multilevel|segmentation|relocation [FLAGS] [VA…]\n"
    "      OSTEP's homework machine for the script's FLAGS (see vmsim ostep --help);\n"
    "      without VA, the problem's own addresses\n"
    "  vmsim explain --machine csapp [VA…]\n"
    "      CS:APP 3e's small memory system (§9.6.4, Figure 9.20); default VA 0x03d4\n";

typedef explain_map mapping;

static bool parse_perms(const char *s, uint64_t *flags)
{
    uint64_t f = VMS_PTE_US | VMS_PTE_XD;
    for (; *s; s++) {
        switch (*s) {
        case 'r':
            break;
        case 'w':
            f |= VMS_PTE_RW;
            break;
        case 'x':
            f &= ~VMS_PTE_XD;
            break;
        case 'k':
            f &= ~VMS_PTE_US;
            break;
        case 'g':
            f |= VMS_PTE_G;
            break;
        case 'p': { /* pN: protection key N */
            char *end;
            unsigned long key = strtoul(s + 1, &end, 10);
            if (end == s + 1 || key > 15)
                return false;
            f = (f & ~VMS_PTE_PKEY_MASK) | (uint64_t)key << VMS_PTE_PKEY_SHIFT;
            s = end - 1;
            break;
        }
        default:
            return false;
        }
    }
    *flags = f;
    return true;
}

/* --smep, --smap, --pke, --stac, --pkru: the protection controls of x86-64. */
typedef struct protect_opts {
    uint64_t cr4;
    bool stac, any;
    uint32_t pkru;
} protect_opts;

/* Parse "VA=PA[/SIZE][:PERMS]" (cli_split_map), with x86-64 permissions. */
static bool parse_map(char *arg, mapping *m)
{
    char *perms;
    m->flags = VMS_PTE_US | VMS_PTE_RW | VMS_PTE_XD;
    return cli_split_map(arg, &m->va, &m->pa, &m->size, &perms) &&
           (!perms || parse_perms(perms, &m->flags));
}

static const char *level_name(unsigned level)
{
    static const char *const names[] = {"", "PT", "PD", "PDPT", "PML4", "PML5"};
    return level <= 5 ? names[level] : "?";
}

/* Print the virtual address split into its index fields. */
static void print_fields(uint64_t va, unsigned levels)
{
    printf("  va fields:");
    for (unsigned l = levels; l >= 1; l--)
        printf(" %s 0x%x |", level_name(l), vms_va_index(va, l));
    printf(" offset 0x%03" PRIx64 "\n", va & VMS_PAGE_MASK);
}

/* For a page larger than 4K: the fields as the walk used them — no index below the leaf
 * level, and an offset of 21 (2M) or 30 (1G) bits. */
static void print_huge_fields(uint64_t va, unsigned levels, vms_pgsize size)
{
    unsigned leaf = size == VMS_PG_1G ? 3 : 2, bits = size == VMS_PG_1G ? 30 : 21;
    printf("  a %s page: the walk ends at the %s entry, so the fields are", vms_pgsize_name(size),
           level_name(leaf));
    for (unsigned l = levels; l >= leaf; l--)
        printf(" %s 0x%x |", level_name(l), vms_va_index(va, l));
    printf(" offset 0x%" PRIx64 " (%u bits)\n", va & ((UINT64_C(1) << bits) - 1), bits);
}

/* "s" unless n is 1. */
static const char *plural(uint64_t n)
{
    return n == 1 ? "" : "s";
}

static void print_step(const vms_walk_step *s, uint64_t pte_after)
{
    char bits[96];
    cli_pte_bits(s->pte, s->level, bits, sizeof bits);
    printf("  %-4s table 0x%09" PRIx64 " index %3u  entry @0x%09" PRIx64 " = 0x%016" PRIx64
           "  [%s]",
           level_name(s->level), s->table_pa, s->index, s->ptep, s->pte, bits);
    if (!vms_pte_present(s->pte))
        printf("\n");
    else if (vms_pte_leaf(s->pte, s->level))
        printf(" -> page\n");
    else
        printf(" -> next table 0x%09" PRIx64 "\n", vms_pte_addr(s->pte));
    if (pte_after != s->pte && vms_pte_present(s->pte)) {
        cli_pte_bits(pte_after, s->level, bits, sizeof bits);
        printf("       walker wrote back 0x%016" PRIx64 "  [%s]\n", pte_after, bits);
    }
}

static void print_fault(const vms_fault *f)
{
    if (f->kind == VMS_FAULT_GP) {
        printf("  result: #GP, 0x%" PRIx64 " is not canonical\n", f->va);
        return;
    }
    if (f->kind == VMS_FAULT_BUS) {
        printf("  result: bus error at physical 0x%" PRIx64 "\n", f->pa);
        return;
    }
    uint32_t e = f->error_code;
    printf("  result: page fault, CR2 = 0x%" PRIx64 ", error code 0x%x (%s%s%s%s%s%s)\n", f->va, e,
           e & VMS_PFERR_P ? "P=1 protection" : "P=0 not present", e & VMS_PFERR_W ? " W" : "",
           e & VMS_PFERR_U ? " U" : "", e & VMS_PFERR_RSVD ? " RSVD" : "",
           e & VMS_PFERR_I ? " I" : "", e & VMS_PFERR_PK ? " PK" : "");
}

/* Translate va twice and narrate both. Returns 0, or 1 if the translation faulted. */
static int explain_one(vms_core *c, vms_bus *bus, uint64_t va, vms_access_kind kind)
{
    const vms_regs *r = vms_core_regs(c);
    unsigned levels = vms_regs_levels(r);
    printf("\nTranslating 0x%" PRIx64 " (%s, %s mode), %u-level paging, CR3 = 0x%" PRIx64 "\n", va,
           vms_access_name(kind), r->user ? "user" : "supervisor", levels, r->cr3);
    print_fields(va, levels);
    vms_walk_trace tr;
    vms_xlate x;
    vms_fault f;
    uint64_t pa;
    const vms_walk_stats *ws = vms_core_walk_stats(c);
    uint64_t refs = ws->mem_refs, cyc = vms_core_cycles(c);
    bool ok = vms_core_translate(c, va, kind, &x, &pa, &f, &tr);
    if (tr.nsteps == 0 && ok)
        printf("  TLB hit: no walk\n");
    else
        printf("  TLB miss: the walker reads the tables from RAM%s\n",
               tr.pwc_level ? " (a page-walk cache skipped the upper levels)" : "");
    vms_mem_where where[5];
    unsigned nwhere = vms_core_walk_where(c, where, 5);
    static const char *const rows[] = {"row hit", "row miss", "row conflict"};
    for (unsigned i = 0; i < tr.nsteps; i++) {
        uint64_t after = tr.step[i].pte;
        vms_bus_read64(bus, tr.step[i].ptep, &after);
        print_step(&tr.step[i], after);
        if (i < nwhere) /* caches on: where the load of this entry was served */
            printf("       read served by %s%s%s\n", vms_mem_level_name(where[i].level),
                   where[i].level == VMS_MEM_DRAM && where[i].dram ? ", " : "",
                   where[i].level == VMS_MEM_DRAM && where[i].dram ? rows[where[i].row % 3] : "");
    }
    if (!ok) {
        print_fault(&f);
        return 1;
    }
    uint64_t dr = ws->mem_refs - refs, dc = vms_core_cycles(c) - cyc;
    if (x.size != VMS_PG_4K)
        print_huge_fields(va, levels, x.size);
    printf("  result: physical 0x%" PRIx64 " = page 0x%" PRIx64 " (%s, frame 0x%" PRIx64
           ") + offset 0x%" PRIx64 "; %" PRIu64 " memory reference%s, %" PRIu64 " cycle%s\n",
           pa, x.page_pa, vms_pgsize_name(x.size), x.page_pa >> VMS_PAGE_SHIFT,
           va & (vms_pgsize_bytes(x.size) - 1), dr, plural(dr), dc, plural(dc));
    refs = ws->mem_refs;
    cyc = vms_core_cycles(c);
    ok = vms_core_translate(c, va, kind, &x, &pa, &f, &tr);
    dr = ws->mem_refs - refs;
    dc = vms_core_cycles(c) - cyc;
    printf("  again: %s -> physical 0x%" PRIx64 ", %" PRIu64 " memory reference%s, %" PRIu64
           " cycle%s\n",
           tr.nsteps ? "walk" : "TLB hit", pa, dr, plural(dr), dc, plural(dc));
    return ok ? 0 : 1;
}

static int parse_args(int argc, char **argv, mapping *maps, unsigned *nmaps, uint64_t *vas,
                      unsigned *nvas, vms_access_kind *kind, bool *user, unsigned *levels,
                      const char **preset, const char **hier, bool *json, const char **arch,
                      vms_design *design, bool *sw, protect_opts *po)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return -1;
        } else if (!strcmp(a, "--map") && v) {
            if (*nmaps == MAX_MAPS || !parse_map(argv[++i], &maps[*nmaps])) {
                cli_error("explain", "bad --map '%s': expected VA=PA[/4K|2M|1G][:PERMS]", v);
                return EXIT_USAGE;
            }
            (*nmaps)++;
        } else if (!strcmp(a, "--access") && v) {
            if (!cli_explain_access(argv[++i], kind))
                return EXIT_USAGE;
        } else if (!strcmp(a, "--supervisor")) {
            *user = false;
        } else if (!strcmp(a, "--smep") || !strcmp(a, "--smap") || !strcmp(a, "--pke")) {
            po->cr4 |= !strcmp(a, "--smep")   ? VMS_CR4_SMEP
                       : !strcmp(a, "--smap") ? VMS_CR4_SMAP
                                              : VMS_CR4_PKE;
            po->any = true;
        } else if (!strcmp(a, "--stac")) {
            po->stac = po->any = true;
        } else if (!strcmp(a, "--pkru") && v) {
            uint64_t pv;
            i++;
            if (!cli_parse_u64(v, false, &pv) || pv > UINT32_MAX) {
                cli_error("explain", "bad --pkru '%s': expected a 32-bit value", v);
                return EXIT_USAGE;
            }
            po->pkru = (uint32_t)pv;
            po->any = true;
        } else if (!strcmp(a, "--levels") && v) {
            i++;
            if (strlen(v) != 1 || v[0] < '1' || v[0] > '6') {
                cli_error("explain", "bad --levels '%s': expected 3, 4 or 5", v);
                return EXIT_USAGE;
            }
            *levels = (unsigned)atoi(v);
        } else if (!strcmp(a, "--arch") && v) {
            *arch = argv[++i];
        } else if (!strcmp(a, "--design") && v) {
            i++;
            if (!vms_design_parse(v, design)) {
                cli_error("explain", "bad --design '%s': expected radix, hashed or inverted", v);
                return EXIT_USAGE;
            }
        } else if (!strcmp(a, "--tlb") && v) {
            i++;
            if (strcmp(v, "hardware") && strcmp(v, "software")) {
                cli_error("explain", "bad --tlb '%s': expected hardware or software", v);
                return EXIT_USAGE;
            }
            *sw = !strcmp(v, "software");
        } else if (!strcmp(a, "--preset") && v) {
            *preset = argv[++i];
        } else if ((!strcmp(a, "--cache") || !strcmp(a, "--dram")) && v) {
            hier[a[2] == 'd'] = argv[++i];
        } else if (!strcmp(a, "--stats") && v) {
            i++;
            if (strcmp(v, "json")) {
                cli_error("explain", "bad --stats '%s': expected json", v);
                return EXIT_USAGE;
            }
            *json = true;
        } else if (a[0] != '-' && *nvas < MAX_MAPS && cli_parse_u64(a, false, &vas[*nvas])) {
            (*nvas)++;
        } else {
            cli_error("explain", "unexpected argument '%s' (see vmsim explain --help)", a);
            return EXIT_USAGE;
        }
    }
    return 0;
}

int cmd_explain(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "--ostep") || !strcmp(argv[1], "--machine")))
        return cli_explain_teach(argc - 1, argv + 1);
    mapping maps[MAX_MAPS];
    uint64_t vas[MAX_MAPS];
    unsigned nmaps = 0, nvas = 0, levels = 0;
    vms_access_kind kind = VMS_ACC_READ;
    bool user = true, json = false, sw = false;
    const char *preset = "skylake", *arch = NULL, *hier[2] = {"off", "off"}; /* --cache, --dram */
    protect_opts po = {0};
    for (int i = 1; i < argc; i++) /* so has --nested (explain_nested.c) */
        if (!strcmp(argv[i], "--nested"))
            return cmd_explain_nested(argc, argv);
    for (int i = 1; i + 1 < argc; i++) /* --arch aarch64 has its own narrator */
        if (!strcmp(argv[i], "--arch") && !strcmp(argv[i + 1], "aarch64"))
            return cmd_explain_aarch64(argc, argv);
    vms_design design = VMS_DESIGN_RADIX;
    int rc = parse_args(argc, argv, maps, &nmaps, vas, &nvas, &kind, &user, &levels, &preset, hier,
                        &json, &arch, &design, &sw, &po);
    if (rc)
        return rc < 0 ? 0 : rc;
    vms_machine_config cfg;
    vms_err err = {0};
    if (vms_machine_preset(preset, &cfg, &err) != VMS_OK) {
        cli_error("explain", "%s", err.msg);
        return EXIT_USAGE;
    }
    /* The format: x86-64 keeps its own narration below (fmt NULL, the preset's levels
     * unless --levels); another architecture's (--arch, else the preset's) has --levels
     * levels, else the preset's when it is that architecture's, else its first. */
    if (!arch)
        arch = cfg.fmt ? cfg.fmt->arch : "x86_64";
    const vms_pt_format *fmt = NULL;
    if (strcmp(arch, "x86_64") != 0 && !vms_format_for(arch, 0)) {
        cli_error("explain", "bad --arch '%s': expected x86_64, riscv64 or aarch64", arch);
        return EXIT_USAGE;
    }
    if (strcmp(arch, "x86_64") != 0) {
        fmt = vms_format_for(arch, levels);
        if (!levels && cfg.fmt && strcmp(cfg.fmt->arch, arch) == 0)
            fmt = cfg.fmt;
    }
    if ((levels || fmt == NULL) && !vms_format_for(arch, levels)) {
        cli_error("explain", "bad --levels %u: expected x86_64 4|5, riscv64 3|4|5", levels);
        return EXIT_USAGE;
    }
    if (design != VMS_DESIGN_RADIX && fmt) {
        cli_error("explain", "--design %s: only with --arch x86_64", vms_design_name(design));
        return EXIT_USAGE;
    }
    if (design != VMS_DESIGN_RADIX && sw) {
        cli_error("explain", "--design %s with --tlb software: not modelled",
                  vms_design_name(design));
        return EXIT_USAGE;
    }
    if (sw && fmt) {
        cli_error("explain", "--tlb software: the refill handler reads x86_64 tables, not %s",
                  arch);
        return EXIT_USAGE;
    }
    cfg.mmu.swtlb.on = sw;
    if (!fmt && cfg.fmt) { /* an x86-64 run on a preset of another architecture */
        cfg.fmt = NULL;
        cfg.levels = 4;
    }
    bool demo = nmaps == 0;
    if (demo) {
        maps[nmaps++] =
            (mapping){0x12000, 0x50000, VMS_PG_4K, VMS_PTE_US | VMS_PTE_RW | VMS_PTE_XD};
        maps[nmaps++] = (mapping){0x401000, 0x8A3000, VMS_PG_4K, VMS_PTE_US};
        if (nvas == 0) {
            vas[nvas++] = 0x00012345;
            vas[nvas++] = 0x00401234;
        }
    }
    if (nvas == 0) {
        cli_error("explain", "no address to translate (give VA)");
        return EXIT_USAGE;
    }
    if (vms_cache_preset(hier[0], &cfg.cache, &err) != VMS_OK ||
        vms_dram_preset(hier[1], &cfg.dram, &err) != VMS_OK) {
        cli_error("explain", "%s", err.msg);
        return EXIT_USAGE;
    }
    if (levels)
        cfg.levels = levels;
    if (fmt) {
        cfg.fmt = fmt;
        cfg.levels = fmt->levels;
    }
    cfg.ncores = 1;
    cfg.design = design;
    vms_machine *m;
    if (vms_machine_create(NULL, &cfg, &m, &err) != VMS_OK) {
        cli_error("explain", "%s", err.msg);
        return 1;
    }
    if (fmt) {
        if (po.any) {
            cli_error("explain", "--smep, --smap, --pke, --stac and --pkru are x86_64's");
            vms_machine_destroy(m);
            return EXIT_USAGE;
        }
        rc = explain_format(m, fmt, maps, nmaps, vas, nvas, kind, user, demo);
        goto stats;
    }
    if (design != VMS_DESIGN_RADIX) {
        rc = explain_design(m, design, maps, nmaps, vas, nvas, kind, user, demo);
        goto stats;
    }
    vms_bus *bus = vms_machine_bus(m);
    /* Table pages from 1 MiB up, far from the examples' data frames. */
    vms_pt_bump b = {vms_machine_ram(m), UINT64_C(0x100000), 0, 0, 0};
    vms_pt_ops ops = vms_pt_bump_ops(&b);
    vms_pt pt;
    rc = 0;
    if (vms_pt_init(&pt, bus, cfg.levels, &ops, &err) != VMS_OK) {
        cli_error("explain", "%s", err.msg);
        rc = 1;
    }
    printf("Page tables in simulated RAM (%u-level paging, root table at 0x%" PRIx64 "):\n",
           cfg.levels, pt.root);
    for (unsigned i = 0; rc == 0 && i < nmaps; i++) {
        mapping *mp = &maps[i];
        if (vms_pt_map(&pt, mp->va, mp->pa, mp->size, mp->flags, &err) != VMS_OK) {
            cli_error("explain", "cannot map 0x%" PRIx64 ": %s", mp->va, err.msg);
            rc = 1;
            break;
        }
        printf("  map virtual 0x%" PRIx64 " -> physical 0x%" PRIx64 " (%s page, %s%s%s%s", mp->va,
               mp->pa, vms_pgsize_name(mp->size), mp->flags & VMS_PTE_RW ? "rw" : "r",
               mp->flags & VMS_PTE_XD ? "" : "x", mp->flags & VMS_PTE_US ? ", user" : ", kernel",
               mp->flags & VMS_PTE_G ? ", global" : "");
        if (vms_pte_pkey(mp->flags))
            printf(", key %u", vms_pte_pkey(mp->flags));
        printf(")\n");
    }
    vms_core *c = vms_machine_core(m, 0);
    vms_tlbex handler; /* with --tlb software: the kernel's TLB exception handlers */
    if (sw) {
        vms_tlbex_config tc;
        vms_tlbex_config_default(&tc);
        vms_tlbex_attach(c, &handler, &tc);
        vms_core_mmu_boot(c, pt.root, true);
        printf("A software-managed TLB (MIPS style): a JTLB of %u entries, each an even/odd "
               "page pair; micro-TLBs in front; no L2 TLB, no page-walk cache, no hardware "
               "walker. The kernel's handlers cost %u cycles (refill) and %u (others) of "
               "instructions, plus their loads.\n",
               vms_mips_tlb_size(c), tc.refill_cycles, tc.exc_cycles);
    } else {
        vms_core_write_cr3(c, pt.root);
    }
    vms_core_set_user(c, user);
    if (po.any) {
        vms_core_write_cr4(c, vms_core_regs(c)->cr4 | po.cr4);
        vms_core_set_ac(c, po.stac);
        vms_core_write_pkru(c, po.pkru);
        printf("Controls: CR4.SMEP=%d CR4.SMAP=%d CR4.PKE=%d, RFLAGS.AC=%d, PKRU=0x%08x\n",
               (po.cr4 & VMS_CR4_SMEP) != 0, (po.cr4 & VMS_CR4_SMAP) != 0,
               (po.cr4 & VMS_CR4_PKE) != 0, po.stac, po.pkru);
    }
    for (unsigned i = 0; rc == 0 && i < nvas; i++) {
        vms_access_kind k = kind;
        if (demo && vas[i] == 0x00401234 && kind == VMS_ACC_READ)
            k = VMS_ACC_EXEC; /* the seed's example is code */
        if (sw)
            explain_swtlb_one(c, vas[i], k);
        else
            explain_one(c, bus, vas[i], k); /* a fault is an answer, not an error */
    }
stats:
    if (json) {
        vms_strbuf sb;
        vms_strbuf_init(&sb, NULL);
        vms_machine_stats_json(m, &sb);
        fputs(vms_strbuf_str(&sb), stdout);
        vms_strbuf_free(&sb);
    }
    vms_machine_destroy(m);
    return rc;
}
