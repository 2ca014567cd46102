/*
 * explain_aarch64.c — `vmsim explain --arch aarch64`: build AArch64 stage 1 tables (4 KiB
 * granule, 48-bit VA) in simulated RAM and narrate one translation in Arm's words:
 * TTBR0_EL1 or TTBR1_EL1 chosen by VA[55], the level 0 … 3 descriptors read (table,
 * address, index, raw value, decoded fields), the result or the abort with its ESR_EL1
 * and FAR_EL1, then a second access that hits the TLB.
 *
 * Mappings at VAs with bits 63:48 all ones go into the TTBR1_EL1 tree, the others into
 * TTBR0_EL1's. The core runs with TCR_EL1 as vms_a64_tcr gives it (T0SZ = T1SZ = 16,
 * PA size from the preset), HA/HD only with --ha/--hd.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "vmsim/arch/aarch64.h"
#include "vmsim/core.h"
#include "vmsim/pt.h"

#define MAX_MAPS 32

static const char usage[] =
    "usage: vmsim explain --arch aarch64 [options] [VA]\n"
    "\n"
    "Build AArch64 stage 1 translation tables (4 KiB granule, 48-bit VA, TTBR0_EL1 for\n"
    "VA[55] = 0 and TTBR1_EL1 for VA[55] = 1) in simulated RAM, then translate VA level\n"
    "by level: each level 0-3 descriptor's table, index, raw value and fields, the\n"
    "physical result or the abort (ESR_EL1, FAR_EL1), and a second access that hits the\n"
    "TLB. Without --map, maps virtual page 0x12 to frame 0x50 (rw) and page 0x401 to\n"
    "frame 0x8A3 (r-x), and explains 0x12345 and 0x401234.\n"
    "\n"
    "options:\n"
    "  --map VA=PA[/SIZE][:PERMS]  map the page at VA to PA; SIZE 4K (default, a level 3\n"
    "                              page), 2M or 1G (level 2 and level 1 blocks); PERMS\n"
    "                              from r w x (default rw), k (EL1 only), g (global,\n"
    "                              nG = 0), o (old: AF = 0), d (DBM, writable-clean),\n"
    "                              c (contiguous hint); repeatable\n"
    "  --access read|write|exec    the access to translate (default read)\n"
    "  --supervisor                translate at EL1 (default EL0)\n"
    "  --asid N                    the ASID in TTBR0_EL1 (default 0)\n"
    "  --ha, --hd                  hardware Access flag / dirty state (FEAT_HAFDBS)\n"
    "  --pan                       PSTATE.PAN = 1\n"
    "  --preset NAME               machine preset (default cortex-a76)\n"
    "  --stats json                print the machine's counters as JSON at the end\n"
    "  -h, --help                  this text\n";

typedef struct mapping {
    uint64_t va, pa;
    vms_pgsize size;
    uint64_t attrs; /* descriptor bits without type and address */
} mapping;

typedef struct options {
    mapping maps[MAX_MAPS];
    uint64_t vas[MAX_MAPS];
    unsigned nmaps, nvas;
    vms_access_kind kind;
    bool el1, ha, hd, pan, json;
    uint64_t asid;
    unsigned pa_bits; /* the preset's PA size, for TCR_EL1.IPS */
    const char *preset;
} options;

/* Descriptor attributes for PERMS (see usage); user rw by default. */
static bool parse_perms(const char *s, uint64_t *attrs)
{
    bool w = false, x = false, k = false, g = false, old = false, dbm = false, cont = false;
    for (; *s; s++) {
        switch (*s) {
        case 'r':
            break;
        case 'w':
            w = true;
            break;
        case 'x':
            x = true;
            break;
        case 'k':
            k = true;
            break;
        case 'g':
            g = true;
            break;
        case 'o':
            old = true;
            break;
        case 'd':
            dbm = true;
            break;
        case 'c':
            cont = true;
            break;
        default:
            return false;
        }
    }
    /* Linux's choices: user pages PXN, kernel pages UXN; d keeps AP[2] = 1 with DBM. */
    uint64_t a = VMS_A64_SH_INNER | (old ? 0 : VMS_A64_AF) | (g ? 0 : VMS_A64_NG);
    a |= (w && !dbm) ? 0 : VMS_A64_AP2;
    a |= dbm ? VMS_A64_DBM : 0;
    a |= cont ? VMS_A64_CONT : 0;
    if (k)
        a |= VMS_A64_UXN | (x ? 0 : VMS_A64_PXN);
    else
        a |= VMS_A64_AP1 | VMS_A64_PXN | (x ? 0 : VMS_A64_UXN);
    *attrs = a;
    return true;
}

/* Parse "VA=PA[/SIZE][:PERMS]" (cli_split_map), with AArch64 permissions. */
static bool parse_map(char *arg, mapping *m)
{
    char *perms;
    return cli_split_map(arg, &m->va, &m->pa, &m->size, &perms) &&
           parse_perms(perms ? perms : "rw", &m->attrs);
}

static int parse_args(int argc, char **argv, options *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return -1;
        } else if (!strcmp(a, "--arch") && v) {
            i++; /* "aarch64": how we got here */
        } else if (!strcmp(a, "--map") && v) {
            if (o->nmaps == MAX_MAPS || !parse_map(argv[++i], &o->maps[o->nmaps])) {
                cli_error("explain", "bad --map '%s': expected VA=PA[/4K|2M|1G][:rwxkgodc]", v);
                return EXIT_USAGE;
            }
            o->nmaps++;
        } else if (!strcmp(a, "--access") && v) {
            if (!cli_explain_access(argv[++i], &o->kind))
                return EXIT_USAGE;
        } else if (!strcmp(a, "--supervisor")) {
            o->el1 = true;
        } else if (!strcmp(a, "--ha")) {
            o->ha = true;
        } else if (!strcmp(a, "--hd")) {
            o->ha = o->hd = true; /* HD takes effect only with HA */
        } else if (!strcmp(a, "--pan")) {
            o->pan = true;
        } else if (!strcmp(a, "--asid") && v) {
            if (!cli_parse_u64(argv[++i], false, &o->asid) || o->asid > 0xFF) {
                cli_error("explain", "bad --asid '%s': expected 0..255", v);
                return EXIT_USAGE;
            }
        } else if (!strcmp(a, "--preset") && v) {
            o->preset = argv[++i];
        } else if (!strcmp(a, "--stats") && v) {
            i++;
            if (strcmp(v, "json") != 0) {
                cli_error("explain", "bad --stats '%s': expected json", v);
                return EXIT_USAGE;
            }
            o->json = true;
        } else if (a[0] != '-' && o->nvas < MAX_MAPS && cli_parse_u64(a, false, &o->vas[o->nvas])) {
            o->nvas++;
        } else {
            cli_error("explain",
                      "unexpected argument '%s' (see vmsim explain --arch aarch64 --help)", a);
            return EXIT_USAGE;
        }
    }
    return 0;
}

static bool upper_half(uint64_t va)
{
    return (va >> 48) == 0xFFFF;
}

/* Print the virtual address split into its fields (VA[55] picks the TTBR). */
static void print_fields(const vms_pt_format *f, uint64_t va)
{
    printf("  va fields: VA[63:48] 0x%04" PRIx64 " |", va >> 48);
    for (unsigned l = 4; l >= 1; l--)
        printf(" %s 0x%x |", f->level_name[l], vms_fmt_index(f, va, l));
    printf(" offset 0x%03" PRIx64 "\n", va & 0xFFF);
}

static void print_step(const vms_pt_format *f, const vms_walk_step *s, uint64_t after)
{
    char bits[128];
    f->bits_str(s->pte, s->level, bits, sizeof bits);
    printf("  %s table 0x%09" PRIx64 " index %3u  descriptor @0x%09" PRIx64 " = 0x%016" PRIx64
           "  [%s]",
           f->level_name[s->level], s->table_pa, s->index, s->ptep, s->pte, bits);
    vms_pte_info in;
    vms_fmt_decode(f, s->pte, s->level, &in);
    if (!in.present)
        printf("\n");
    else if (in.leaf)
        printf(" -> %s\n", s->level == 1 ? "page" : "block");
    else
        printf(" -> next table 0x%09" PRIx64 "\n", in.pa);
    if (after != s->pte) {
        f->bits_str(after, s->level, bits, sizeof bits);
        printf("       walker wrote back 0x%016" PRIx64 "  [%s]\n", after, bits);
    }
}

static void print_abort(const vms_fault *f)
{
    uint32_t esr = f->error_code;
    unsigned ec = vms_a64_esr_ec(esr), fsc = vms_a64_esr_fsc(esr);
    bool iabt = ec == VMS_A64_EC_IABT_LOW || ec == VMS_A64_EC_IABT_CUR;
    bool low = ec == VMS_A64_EC_IABT_LOW || ec == VMS_A64_EC_DABT_LOW;
    if (f->kind == VMS_FAULT_BUS)
        printf("  result: synchronous external abort: no device at physical 0x%" PRIx64 "\n",
               f->pa);
    printf("  result: %s Abort from EL%d, ESR_EL1 = 0x%08x (EC 0x%02x, %s%s 0x%02x: %s), "
           "FAR_EL1 = 0x%016" PRIx64 "\n",
           iabt ? "Instruction" : "Data", low ? 0 : 1, esr, ec,
           iabt ? "" : (esr & VMS_A64_ESR_WNR ? "WnR 1, " : "WnR 0, "), iabt ? "IFSC" : "DFSC", fsc,
           vms_a64_fsc_name(fsc), f->va);
}

/* Translate va twice and narrate both. Returns 0, or 1 if the translation faulted. */
static int explain_one(vms_core *c, vms_bus *bus, uint64_t va, vms_access_kind kind)
{
    const vms_pt_format *f = vms_format_aarch64();
    const vms_regs *r = vms_core_regs(c);
    bool hi = (va >> 55) & 1u;
    printf("\nTranslating 0x%016" PRIx64 " (%s, EL%d), VA[55] = %d: %s = 0x%016" PRIx64
           " (ASID %u), TCR_EL1 = 0x%" PRIx64 "\n",
           va, vms_access_name(kind), r->user ? 0 : 1, hi, hi ? "TTBR1_EL1" : "TTBR0_EL1",
           hi ? r->ttbr1_el1 : r->ttbr0_el1, (unsigned)((hi ? r->ttbr1_el1 : r->ttbr0_el1) >> 48),
           r->tcr_el1);
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
    else if (tr.nsteps == 0)
        printf("  no walk: VA[63:48] must be all %s for %s\n", hi ? "ones" : "zeros",
               hi ? "TTBR1_EL1" : "TTBR0_EL1");
    else
        printf("  TLB miss: the walker reads the descriptors from RAM%s\n",
               tr.pwc_level ? " (a walk cache skipped the upper levels)" : "");
    for (unsigned i = 0; i < tr.nsteps; i++) {
        uint64_t after = tr.step[i].pte;
        vms_bus_read64(bus, tr.step[i].ptep, &after);
        print_step(f, &tr.step[i], after);
    }
    if (!ok) {
        print_abort(&flt);
        return 1;
    }
    printf("  result: physical 0x%" PRIx64 " = %s 0x%" PRIx64 " (%s) + offset 0x%" PRIx64
           "; %" PRIu64 " memory references, %" PRIu64 " cycles\n",
           pa, x.size == VMS_PG_4K ? "page" : "block", x.page_pa, vms_pgsize_name(x.size),
           va & (vms_pgsize_bytes(x.size) - 1), ws->mem_refs - refs, vms_core_cycles(c) - cyc);
    refs = ws->mem_refs;
    cyc = vms_core_cycles(c);
    ok = vms_core_translate(c, va, kind, &x, &pa, &flt, &tr);
    printf("  again: %s -> physical 0x%" PRIx64 ", %" PRIu64 " memory references, %" PRIu64
           " cycles\n",
           tr.nsteps ? "walk" : "TLB hit", pa, ws->mem_refs - refs, vms_core_cycles(c) - cyc);
    return ok ? 0 : 1;
}

/* The two trees, and the core set up to use them. */
static int build(vms_machine *m, const options *o, vms_pt pt[2])
{
    vms_err err = {0};
    vms_bus *bus = vms_machine_bus(m);
    static vms_pt_bump b;
    b = (vms_pt_bump){vms_machine_ram(m), UINT64_C(0x100000), 0, 0, 0};
    vms_pt_ops ops = vms_pt_bump_ops(&b);
    for (unsigned t = 0; t < 2; t++)
        if (vms_pt_init_format(&pt[t], bus, vms_format_aarch64(), &ops, &err) != VMS_OK) {
            cli_error("explain", "%s", err.msg);
            return 1;
        }
    printf("Translation tables in simulated RAM (AArch64, 4 KiB granule, 48-bit VA; level 0 "
           "tables: TTBR0_EL1 0x%" PRIx64 ", TTBR1_EL1 0x%" PRIx64 "):\n",
           pt[0].root, pt[1].root);
    for (unsigned i = 0; i < o->nmaps; i++) {
        const mapping *mp = &o->maps[i];
        vms_pt *tree = &pt[upper_half(mp->va)];
        if (vms_pt_map(tree, mp->va, mp->pa, mp->size, mp->attrs, &err) != VMS_OK) {
            cli_error("explain", "cannot map 0x%" PRIx64 ": %s", mp->va, err.msg);
            return 1;
        }
        uint64_t a = mp->attrs;
        bool el0 = a & VMS_A64_AP1;
        bool x = el0 ? !(a & VMS_A64_UXN) : !(a & VMS_A64_PXN);
        printf("  map virtual 0x%" PRIx64 " -> physical 0x%" PRIx64 " (%s %s, %s%s, %s%s%s%s%s)\n",
               mp->va, mp->pa, vms_pgsize_name(mp->size), mp->size == VMS_PG_4K ? "page" : "block",
               a & VMS_A64_AP2 ? "r" : "rw", x ? "x" : "", el0 ? "EL0+EL1" : "EL1 only",
               a & VMS_A64_NG ? ", not global" : ", global", a & VMS_A64_AF ? "" : ", AF = 0",
               a & VMS_A64_DBM ? ", DBM" : "", a & VMS_A64_CONT ? ", contiguous" : "");
    }
    vms_core *c = vms_machine_core(m, 0);
    uint64_t tcr = vms_a64_tcr(o->pa_bits, false, false, o->ha, o->hd);
    if (vms_core_a64_init(c, tcr, VMS_A64_SCTLR_M) != VMS_OK ||
        vms_core_msr_ttbr0_el1(c, pt[0].root | o->asid << 48) != VMS_OK ||
        vms_core_msr_ttbr1_el1(c, pt[1].root) != VMS_OK) {
        cli_error("explain", "cannot set up the AArch64 registers");
        return 1;
    }
    vms_core_set_user(c, !o->el1);
    vms_core_a64_set_pan(c, o->pan);
    return 0;
}

int cmd_explain_aarch64(int argc, char **argv)
{
    static options o;
    memset(&o, 0, sizeof o);
    o.kind = VMS_ACC_READ;
    o.preset = "cortex-a76";
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;
    bool demo = o.nmaps == 0;
    if (demo) {
        o.maps[o.nmaps] = (mapping){0x12000, 0x50000, VMS_PG_4K, 0};
        parse_perms("rw", &o.maps[o.nmaps++].attrs);
        o.maps[o.nmaps] = (mapping){0x401000, 0x8A3000, VMS_PG_4K, 0};
        parse_perms("rx", &o.maps[o.nmaps++].attrs);
        if (o.nvas == 0) {
            o.vas[o.nvas++] = 0x12345;
            o.vas[o.nvas++] = 0x401234;
        }
    }
    if (o.nvas == 0) {
        cli_error("explain", "no address to translate (give VA)");
        return EXIT_USAGE;
    }
    vms_machine_config cfg;
    vms_err err = {0};
    if (vms_machine_preset(o.preset, &cfg, &err) != VMS_OK) {
        cli_error("explain", "%s", err.msg);
        return EXIT_USAGE;
    }
    cfg.ncores = 1;
    o.pa_bits = cfg.maxphyaddr;
    vms_machine *m;
    if (vms_machine_create(NULL, &cfg, &m, &err) != VMS_OK) {
        cli_error("explain", "%s", err.msg);
        return 1;
    }
    vms_pt pt[2];
    rc = build(m, &o, pt);
    vms_core *c = vms_machine_core(m, 0);
    for (unsigned i = 0; rc == 0 && i < o.nvas; i++) {
        vms_access_kind k = o.kind;
        if (demo && o.vas[i] == 0x401234 && k == VMS_ACC_READ)
            k = VMS_ACC_EXEC;                            /* the seed's example is code */
        explain_one(c, vms_machine_bus(m), o.vas[i], k); /* an abort is an answer */
    }
    if (o.json && rc == 0) {
        vms_strbuf sb;
        vms_strbuf_init(&sb, NULL);
        vms_machine_stats_json(m, &sb);
        fputs(vms_strbuf_str(&sb), stdout);
        vms_strbuf_free(&sb);
    }
    vms_machine_destroy(m);
    return rc;
}
