/*
 * cmd_ostep.c — `vmsim ostep linear|multilevel|segmentation|relocation [FLAGS]`: the OSTEP
 * homework simulators (include/vmsim/ostep.h) with the scripts' own flags, printing the
 * problem as the script does (with -c, the answers), or with --json one object: the
 * problem and a `translations` array, one element per address.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "vmsim/ostep.h"

static const char usage[] =
    "usage: vmsim ostep linear|multilevel|segmentation|relocation [FLAGS] [--json]\n"
    "\n"
    "Pose (and with -c answer) the problem that OSTEP's homework script poses for the same\n"
    "flags and seed: vm-paging/paging-linear-translate.py, vm-smalltables/paging-\n"
    "multilevel-translate.py, vm-segmentation/segmentation.py, vm-mechanism/relocation.py.\n"
    "The tables are built in simulated RAM and every answer is a walk by vmsim's walker.\n"
    "\n"
    "linear:        -s SEED -a ASIZE [16k] -p PHYSMEM [64k] -P PAGESIZE [4k] -n NUM [5]\n"
    "               -u USED% [50] -A ADDR,ADDR,… -v -c\n"
    "multilevel:    -s SEED -a ALLOCATED [64] -n NUM [10] -c\n"
    "segmentation:  -s SEED -a ASIZE [1k] -p PHYSMEM [16k] -n NUM [5] -A ADDR,…\n"
    "               -b BASE0 -l LIMIT0 -B BASE1 -L LIMIT1 (-1: random) -c\n"
    "relocation:    -s SEED -a ASIZE [1k] -p PHYSMEM [16k] -n NUM [5] -b BASE -l LIMIT -c\n"
    "Long forms as the scripts spell them (--seed, --asize, --physmem, --pagesize, …).\n"
    "Sizes take k, m, g. --json prints the problem and its answers as one JSON object\n"
    "(fields in docs/TEACHING.md). `vmsim explain --ostep MACHINE [FLAGS] VA` narrates one\n"
    "translation.\n";

/* The flags, with the scripts' names per machine. */
enum opt {
    O_SEED,
    O_ASIZE,
    O_PSIZE,
    O_PAGESIZE,
    O_NUM,
    O_USED,
    O_ALLOC,
    O_ADDRS,
    O_B0,
    O_L0,
    O_B1,
    O_L1,
    O_VERBOSE,
    O_SOLVE,
    O_JSON
};

typedef struct flag {
    unsigned kinds; /* bit per vms_ostep_kind */
    char shrt;
    const char *lng;
    enum opt opt;
} flag;

#define LIN (1u << VMS_OSTEP_LINEAR)
#define ML  (1u << VMS_OSTEP_MULTILEVEL)
#define SEG (1u << VMS_OSTEP_SEGMENTATION)
#define REL (1u << VMS_OSTEP_RELOCATION)
#define ALL (LIN | ML | SEG | REL)

static const flag flags[] = {
    {ALL, 's', "seed", O_SEED},
    {LIN | SEG | REL, 'a', "asize", O_ASIZE},
    {ML, 'a', "allocated", O_ALLOC},
    {LIN | SEG | REL, 'p', "physmem", O_PSIZE},
    {LIN, 'P', "pagesize", O_PAGESIZE},
    {LIN | SEG, 'n', "numaddrs", O_NUM},
    {ML | REL, 'n', "addresses", O_NUM},
    {LIN, 'u', "used", O_USED},
    {LIN | SEG, 'A', "addresses", O_ADDRS},
    {SEG, 'b', "b0", O_B0},
    {SEG, 'l', "l0", O_L0},
    {SEG, 'B', "b1", O_B1},
    {SEG, 'L', "l1", O_L1},
    {REL, 'b', "b", O_B0},
    {REL, 'l', "l", O_L0},
    {LIN, 'v', NULL, O_VERBOSE},
    {LIN | SEG, 'c', NULL, O_SOLVE},
    {ML, 'c', "solve", O_SOLVE},
    {REL, 'c', "compute", O_SOLVE},
    {ALL, 0, "json", O_JSON},
};

static bool takes_value(enum opt o)
{
    return o != O_VERBOSE && o != O_SOLVE && o != O_JSON;
}

/* What the command line said, with the strings the scripts echo in their ARG lines. */
typedef struct ostep_args {
    vms_ostep_config cfg;
    const char *asize_s, *psize_s, *pagesize_s, *addrs_s;
    bool verbose, solve, json;
    int64_t addrs[4096];
} ostep_args;

static int bad_value(const char *name, const char *v, const char *what)
{
    cli_error("ostep", "bad %s '%s': expected %s", name, v, what);
    return EXIT_USAGE;
}

/* Parse "-A 1,2,3" (decimal, as the scripts' int()). */
static int parse_addrs(ostep_args *a, const char *v)
{
    a->addrs_s = v;
    if (!strcmp(v, "-1"))
        return 0;
    a->cfg.addrs = a->addrs;
    a->cfg.naddrs = 0;
    for (const char *p = v; *p;) {
        char buf[32];
        size_t n = strcspn(p, ",");
        int64_t x;
        if (n == 0 || n >= sizeof buf || a->cfg.naddrs == 4096)
            return bad_value("-A", v, "comma-separated decimal addresses (at most 4096)");
        memcpy(buf, p, n);
        buf[n] = '\0';
        if (!vms_ostep_parse_size(buf, &x) || strpbrk(buf, "kKmMgG"))
            return bad_value("-A", v, "comma-separated decimal addresses");
        a->addrs[a->cfg.naddrs++] = x;
        p += n + (p[n] == ',');
    }
    return 0;
}

static int set_opt(ostep_args *a, enum opt o, const char *name, const char *v)
{
    vms_ostep_config *c = &a->cfg;
    int64_t x = 0;
    bool size = o == O_ASIZE || o == O_PSIZE || o == O_PAGESIZE || o == O_B0 || o == O_L0 ||
                o == O_B1 || o == O_L1;
    bool integer = o == O_SEED || o == O_NUM || o == O_USED || o == O_ALLOC;
    if (size && !vms_ostep_parse_size(v, &x))
        return bad_value(name, v, "a size (a number, optionally with k, m or g)");
    if (integer && (!vms_ostep_parse_size(v, &x) || strpbrk(v, "kKmMgG")))
        return bad_value(name, v, "an integer");
    switch (o) {
    case O_SEED:
        c->seed = x;
        break;
    case O_ASIZE:
        c->asize = x;
        a->asize_s = v;
        break;
    case O_PSIZE:
        c->psize = x;
        a->psize_s = v;
        break;
    case O_PAGESIZE:
        c->pagesize = x;
        a->pagesize_s = v;
        break;
    case O_NUM:
        c->num = x;
        break;
    case O_USED:
        c->used = x;
        break;
    case O_ALLOC:
        c->allocated = x;
        break;
    case O_B0:
        c->base0 = x;
        break;
    case O_L0:
        c->len0 = x;
        break;
    case O_B1:
        c->base1 = x;
        break;
    case O_L1:
        c->len1 = x;
        break;
    case O_ADDRS:
        return parse_addrs(a, v);
    case O_VERBOSE:
        a->verbose = true;
        break;
    case O_SOLVE:
        a->solve = true;
        break;
    case O_JSON:
        a->json = true;
        break;
    }
    return 0;
}

/* Find the flag of this machine spelled by arg ("-s", "-s5", "--seed", "--seed=5"). */
static const flag *find_flag(vms_ostep_kind k, const char *arg, const char **attached)
{
    *attached = NULL;
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        const flag *f = &flags[i];
        if (!(f->kinds & (1u << k)))
            continue;
        if (arg[1] == '-' && f->lng) {
            size_t n = strlen(f->lng);
            if (strncmp(arg + 2, f->lng, n) == 0 && (arg[2 + n] == '\0' || arg[2 + n] == '=')) {
                *attached = arg[2 + n] == '=' ? arg + 3 + n : NULL;
                return f;
            }
        } else if (arg[1] != '-' && f->shrt && arg[1] == f->shrt) {
            *attached = arg[2] ? arg + 2 : NULL;
            return f;
        }
    }
    return NULL;
}

/* Parse argv[first..) into a; positionals go to pos (NULL: none allowed). */
static int parse(int argc, char **argv, int first, ostep_args *a, uint64_t *pos, unsigned *npos)
{
    vms_ostep_kind k = a->cfg.kind;
    for (int i = first; i < argc; i++) {
        const char *arg = argv[i], *v;
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
            fputs(usage, stdout);
            return -1;
        }
        const flag *f = arg[0] == '-' && arg[1] ? find_flag(k, arg, &v) : NULL;
        if (!f && pos && arg[0] != '-' && *npos < CLI_OSTEP_MAX_VAS &&
            cli_parse_u64(arg, false, &pos[*npos])) {
            (*npos)++;
            continue;
        }
        if (!f) {
            cli_error("ostep", "%s: unexpected argument '%s' (see vmsim ostep --help)",
                      vms_ostep_kind_name(k), arg);
            return EXIT_USAGE;
        }
        if (takes_value(f->opt) && !v) {
            if (i + 1 == argc) {
                cli_error("ostep", "%s needs a value", arg);
                return EXIT_USAGE;
            }
            v = argv[++i];
        } else if (!takes_value(f->opt) && v) {
            cli_error("ostep", "%s takes no value", arg);
            return EXIT_USAGE;
        }
        int rc = set_opt(a, f->opt, arg, v);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- the scripts' layouts ---- */

static void print_linear(vms_ostep *o, const ostep_args *a)
{
    const vms_ostep_config *c = vms_ostep_config_of(o);
    const vms_pt_format *f = vms_ostep_format(o);
    printf("ARG seed %" PRId64 "\nARG address space size %s\nARG phys mem size %s\n"
           "ARG page size %s\nARG verbose %s\nARG addresses %s\n\n\n",
           c->seed, a->asize_s, a->psize_s, a->pagesize_s, a->verbose ? "True" : "False",
           a->addrs_s);
    fputs("The format of the page table is simple:\n"
          "The high-order (left-most) bit is the VALID bit.\n"
          "  If the bit is 1, the rest of the entry is the PFN.\n"
          "  If the bit is 0, the page is not valid.\n"
          "Use verbose mode (-v) if you want to print the VPN # by\n"
          "each entry of the page table.\n\n"
          "Page Table (from entry 0 down to the max size)\n",
          stdout);
    uint64_t vpages = UINT64_C(1) << f->index_bits;
    for (uint64_t v = 0; v < vpages; v++) {
        if (a->verbose)
            printf("  [%8" PRIu64 "]  0x%08" PRIx32 "\n", v, vms_ostep_pte(o, v));
        else
            printf("  0x%08" PRIx32 "\n", vms_ostep_pte(o, v));
    }
    fputs("\nVirtual Address Trace\n", stdout);
    for (size_t i = 0; i < vms_ostep_naddrs(o); i++) {
        vms_ostep_xlate x;
        uint64_t va = vms_ostep_addr(o, i);
        vms_ostep_translate(o, va, &x, NULL);
        printf("  VA 0x%08" PRIx64 " (decimal: %8" PRIu64 ") --> ", va, va);
        if (!a->solve)
            printf("PA or invalid address?\n");
        else if (!x.valid)
            printf(" Invalid (VPN %" PRIu64 " not valid)\n", x.vpn);
        else
            printf("%08" PRIx64 " (decimal %8" PRIu64 ") [VPN %" PRIu64 "]\n", x.pa, x.pa, x.vpn);
    }
    fputs("\n", stdout);
    if (!a->solve)
        fputs("For each virtual address, write down the physical address it translates to\n"
              "OR write down that it is an out-of-bounds address (e.g., segfault).\n\n",
              stdout);
}

static void print_multilevel(vms_ostep *o, const ostep_args *a)
{
    const vms_ostep_config *c = vms_ostep_config_of(o);
    printf("ARG seed %" PRId64 "\nARG allocated %" PRId64 "\nARG num %" PRId64 "\n\n", c->seed,
           c->allocated, c->num);
    for (unsigned p = 0; p < 128; p++) {
        uint8_t b[32];
        vms_ostep_read(o, p * 32u, b, sizeof b);
        printf("page %3u:", p);
        for (unsigned j = 0; j < 32; j++)
            printf("%02x", b[j]);
        printf("\n");
    }
    printf("\nPDBR: %" PRIu64 "  (decimal) [This means the page directory is held in this "
           "page]\n\n",
           vms_ostep_root(o) >> 5);
    for (size_t i = 0; i < vms_ostep_naddrs(o); i++) {
        uint64_t va = vms_ostep_addr(o, i);
        if (!a->solve) {
            printf("Virtual Address %04" PRIx64 ": Translates To What Physical Address (And "
                   "Fetches what Value)? Or Fault?\n",
                   va);
            continue;
        }
        vms_ostep_xlate x;
        vms_ostep_translate(o, va, &x, NULL);
        printf("Virtual Address %04" PRIx64 ":\n", va);
        for (unsigned s = 0; s < x.trace.nsteps; s++) {
            const vms_walk_step *st = &x.trace.step[s];
            unsigned v = (unsigned)(st->pte >> 7) & 1u, pfn = (unsigned)st->pte & 0x7fu;
            printf("%s--> %s index:0x%x [decimal %u] %s contents:0x%" PRIx64
                   " (valid %u, pfn 0x%02x [decimal %u])\n",
                   st->level == 2 ? "  " : "    ", st->level == 2 ? "pde" : "pte", st->index,
                   st->index, st->level == 2 ? "pde" : "pte", st->pte, v, pfn, pfn);
        }
        if (x.valid)
            printf("      --> Translates to Physical Address 0x%03" PRIx64 " --> Value: %02x\n",
                   x.pa, x.value);
        else
            printf("      --> Fault (%s entry not valid)\n",
                   x.fault_level == 2 ? "page directory" : "page table");
    }
    printf("\n");
}

static void print_segments(vms_ostep *o, const ostep_args *a)
{
    const vms_ostep_config *c = vms_ostep_config_of(o);
    bool seg = c->kind == VMS_OSTEP_SEGMENTATION, gn;
    uint64_t base, limit;
    printf("%sARG seed %" PRId64 "\nARG address space size %s\nARG phys mem size %s\n\n",
           seg ? "" : "\n", c->seed, a->asize_s, a->psize_s);
    if (seg) {
        printf("Segment register information:\n\n");
        for (unsigned s = 0; s < 2; s++) {
            vms_ostep_segment(o, s, &base, &limit, &gn);
            printf("  Segment %u base  (grows %s) : 0x%08" PRIx64 " (decimal %" PRIu64 ")\n"
                   "  Segment %u limit                  : %" PRIu64 "\n\n",
                   s, gn ? "negative" : "positive", base, base, s, limit);
        }
    } else {
        vms_ostep_segment(o, 0, &base, &limit, &gn);
        printf("Base-and-Bounds register information:\n\n  Base   : 0x%08" PRIx64
               " (decimal %" PRIu64 ")\n  Limit  : %" PRIu64 "\n\n",
               base, base, limit);
    }
    printf("Virtual Address Trace\n");
    for (size_t i = 0; i < vms_ostep_naddrs(o); i++) {
        uint64_t va = vms_ostep_addr(o, i);
        vms_ostep_xlate x;
        vms_ostep_translate(o, va, &x, NULL);
        printf("  VA %2zu: 0x%08" PRIx64 " (decimal: %4" PRIu64 ") --> ", i, va, va);
        if (!a->solve)
            printf("PA or segmentation violation?\n");
        else if (!x.valid)
            printf(seg ? "SEGMENTATION VIOLATION (SEG%u)\n" : "SEGMENTATION VIOLATION\n",
                   x.segment);
        else if (seg)
            printf("VALID in SEG%u: 0x%08" PRIx64 " (decimal: %4" PRIu64 ")\n", x.segment, x.pa,
                   x.pa);
        else
            printf("VALID: 0x%08" PRIx64 " (decimal: %4" PRIu64 ")\n", x.pa, x.pa);
    }
    printf("\n");
    if (a->solve)
        return;
    printf("For each virtual address, either write down the physical address it translates to\n"
           "OR write down that it is an out-of-bounds address (a segmentation violation). For\n");
    if (seg)
        printf("this problem, you should assume a simple address space with two segments: the "
               "top\nbit of the virtual address can thus be used to check whether the virtual "
               "address\nis in segment 0 (topbit=0) or segment 1 (topbit=1). Note that the "
               "base/limit pairs\ngiven to you grow in different directions, depending on the "
               "segment, i.e., segment 0\ngrows in the positive direction, whereas segment 1 in "
               "the negative. \n\n");
    else
        printf("this problem, you should assume a simple virtual address space of a given "
               "size.\n\n");
}

/* ---- JSON ---- */

static void json_opt_u64(bool have, uint64_t v)
{
    if (have)
        printf("%" PRIu64, v);
    else
        printf("null");
}

static void print_json(vms_ostep *o)
{
    const vms_ostep_config *c = vms_ostep_config_of(o);
    const vms_pt_format *f = vms_ostep_format(o);
    printf("{\"machine\":\"%s\",\"format\":\"%s\",\"seed\":%" PRId64, vms_ostep_kind_name(c->kind),
           f->name, c->seed);
    switch (c->kind) {
    case VMS_OSTEP_LINEAR: {
        uint64_t vpages = UINT64_C(1) << f->index_bits;
        printf(",\"asize\":%" PRId64 ",\"psize\":%" PRId64 ",\"pagesize\":%" PRId64
               ",\"used\":%" PRId64 ",\"page_table\":[",
               c->asize, c->psize, c->pagesize, c->used);
        for (uint64_t v = 0; v < vpages; v++)
            printf("%s%" PRIu32, v ? "," : "", vms_ostep_pte(o, v));
        printf("]");
        break;
    }
    case VMS_OSTEP_MULTILEVEL:
        printf(",\"allocated\":%" PRId64 ",\"page_size\":32,\"pdbr\":%" PRIu64 ",\"memory\":[",
               c->allocated, vms_ostep_root(o) >> 5);
        for (unsigned p = 0; p < 128; p++) {
            uint8_t b[32];
            vms_ostep_read(o, p * 32u, b, sizeof b);
            printf("%s\"", p ? "," : "");
            for (unsigned j = 0; j < 32; j++)
                printf("%02x", b[j]);
            printf("\"");
        }
        printf("]");
        break;
    case VMS_OSTEP_SEGMENTATION:
    case VMS_OSTEP_RELOCATION: {
        unsigned n = c->kind == VMS_OSTEP_SEGMENTATION ? 2 : 1;
        printf(",\"asize\":%" PRId64 ",\"psize\":%" PRId64, c->asize, c->psize);
        for (unsigned s = 0; s < n; s++) {
            uint64_t base, limit;
            bool gn;
            vms_ostep_segment(o, s, &base, &limit, &gn);
            if (n == 1)
                printf(",\"base\":%" PRIu64 ",\"limit\":%" PRIu64, base, limit);
            else
                printf("%s{\"base\":%" PRIu64 ",\"limit\":%" PRIu64 ",\"grows\":\"%s\"}",
                       s ? "," : ",\"segments\":[", base, limit, gn ? "negative" : "positive");
        }
        if (n == 2)
            printf("]");
        break;
    }
    }
    printf(",\"translations\":[");
    for (size_t i = 0; i < vms_ostep_naddrs(o); i++) {
        vms_ostep_xlate x;
        vms_ostep_translate(o, vms_ostep_addr(o, i), &x, NULL);
        printf("%s{\"va\":%" PRIu64, i ? "," : "", x.va);
        if (c->kind == VMS_OSTEP_MULTILEVEL) {
            printf(",\"result\":\"%s\",\"pa\":", x.valid              ? "ok"
                                                 : x.fault_level == 2 ? "pde_fault"
                                                                      : "pte_fault");
            json_opt_u64(x.valid, x.pa);
            printf(",\"value\":");
            json_opt_u64(x.valid, x.value);
        } else {
            if (c->kind == VMS_OSTEP_LINEAR)
                printf(",\"vpn\":%" PRIu64, x.vpn);
            printf(",\"valid\":%s", x.valid ? "true" : "false");
            if (c->kind == VMS_OSTEP_SEGMENTATION)
                printf(",\"segment\":%u", x.segment);
            printf(",\"pa\":");
            json_opt_u64(x.valid, x.pa);
        }
        printf("}");
    }
    printf("]}\n");
}

/* Defaults of machine `name`, then argv[first..) parsed into *a. */
static int setup(const char *name, int argc, char **argv, int first, ostep_args *a, uint64_t *pos,
                 unsigned *npos)
{
    vms_ostep_kind k;
    if (!name || !vms_ostep_kind_parse(name, &k)) {
        cli_error("ostep",
                  "expected linear, multilevel, segmentation or relocation, got '%s' "
                  "(see vmsim ostep --help)",
                  name ? name : "");
        return EXIT_USAGE;
    }
    memset(a, 0, sizeof *a);
    vms_ostep_config_default(k, &a->cfg);
    a->asize_s = k == VMS_OSTEP_LINEAR ? "16k" : "1k";
    a->psize_s = k == VMS_OSTEP_LINEAR ? "64k" : "16k";
    a->pagesize_s = "4k";
    a->addrs_s = "-1";
    return parse(argc, argv, first, a, pos, npos);
}

static ostep_args args; /* large (the -A list): one per process */

int cli_ostep_config(const char *machine, int argc, char **argv, vms_ostep_config *cfg,
                     uint64_t *vas, unsigned *nvas)
{
    int rc = setup(machine, argc, argv, 0, &args, vas, nvas);
    *cfg = args.cfg;
    return rc;
}

int cmd_ostep(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        fputs(usage, stdout);
        return 0;
    }
    ostep_args *a = &args;
    int rc = setup(argc >= 2 ? argv[1] : NULL, argc, argv, 2, a, NULL, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    vms_ostep *o;
    vms_err err = {0};
    if (vms_ostep_create(NULL, &a->cfg, &o, &err) != VMS_OK) {
        cli_error("ostep", "%s", err.msg);
        return EXIT_USAGE;
    }
    vms_ostep_kind k = a->cfg.kind;
    if (a->json)
        print_json(o);
    else if (k == VMS_OSTEP_LINEAR)
        print_linear(o, a);
    else if (k == VMS_OSTEP_MULTILEVEL)
        print_multilevel(o, a);
    else
        print_segments(o, a);
    vms_ostep_destroy(o);
    return 0;
}
