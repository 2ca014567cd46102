/*
 * cmd_vmm.c — `vmsim vmm`: the textbook's virtual-memory manager project (Silberschatz et
 * al., "Designing a Virtual Memory Manager") on vmsim's parts (include/vmsim/teach.h).
 * Output lines are the project's: "Virtual address: L Physical address: P Value: V".
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "vmsim/teach.h"

static const char usage[] =
    "usage: vmsim vmm --backing FILE [options] ADDRESSES\n"
    "\n"
    "Translate the logical addresses in ADDRESSES (one decimal or 0x number per line) the\n"
    "way the textbook's virtual-memory manager does: 8-bit page number, 8-bit offset, a\n"
    "TLB, a page table, page faults that read 256-byte pages from the backing-store FILE\n"
    "into frames handed out lowest first. Prints one line per address:\n"
    "  Virtual address: L Physical address: P Value: V\n"
    "\n"
    "options:\n"
    "  --frames N        physical frames (default 256; fewer needs page replacement)\n"
    "  --tlb N           TLB entries (default 16)\n"
    "  --tlb-policy P    TLB replacement: lru, plru, fifo, random (default fifo)\n"
    "  --policy P        page replacement: fifo, lru, clock, random, opt, twolist (default fifo)\n"
    "  --page-bits N     page and offset width in bits (default 8)\n"
    "  --stats           print the project's statistics after the lines\n";

/* Read one number per line; errors name the file and line. */
static int read_addrs(const char *path, uint64_t **out, size_t *n)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        cli_error("vmm", "%s: cannot open the address file", path);
        return 1;
    }
    size_t cap = 1024;
    uint64_t *a = malloc(cap * sizeof *a);
    char line[128];
    unsigned lineno = 0;
    *n = 0;
    if (!a) {
        fclose(f);
        cli_error("vmm", "out of memory");
        return 1;
    }
    while (fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0])
            continue;
        uint64_t v;
        if (!cli_parse_u64(line, false, &v)) {
            cli_error("vmm", "%s:%u: expected an address (a number), got '%s'", path, lineno, line);
            free(a);
            fclose(f);
            return EXIT_USAGE;
        }
        if (*n == cap) {
            uint64_t *b = realloc(a, (cap *= 2) * sizeof *a);
            if (!b) {
                free(a);
                fclose(f);
                cli_error("vmm", "out of memory");
                return 1;
            }
            a = b;
        }
        a[(*n)++] = v;
    }
    fclose(f);
    *out = a;
    return 0;
}

static void print_line(void *ud, uint64_t la, uint64_t pa, int value)
{
    (void)ud;
    printf("Virtual address: %" PRIu64 " Physical address: %" PRIu64 " Value: %d\n", la, pa, value);
}

static int number_opt(const char *name, const char *v, unsigned *out)
{
    uint64_t x;
    if (!cli_parse_u64(v, false, &x) || x > 1u << 20) {
        cli_error("vmm", "bad %s '%s': expected a number", name, v);
        return EXIT_USAGE;
    }
    *out = (unsigned)x;
    return 0;
}

int cmd_vmm(int argc, char **argv)
{
    vms_teach_config cfg;
    vms_teach_config_default(&cfg);
    const char *addr_path = NULL;
    bool stats = false;
    int rc = 0;
    for (int i = 1; i < argc && !rc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "--backing") && v) {
            cfg.backing = argv[++i];
        } else if (!strcmp(a, "--frames") && v) {
            rc = number_opt(a, argv[++i], &cfg.frames);
        } else if (!strcmp(a, "--tlb") && v) {
            rc = number_opt(a, argv[++i], &cfg.tlb_entries);
        } else if (!strcmp(a, "--page-bits") && v) {
            rc = number_opt(a, argv[++i], &cfg.page_bits);
        } else if (!strcmp(a, "--tlb-policy") && v) {
            cfg.tlb_policy = argv[++i];
        } else if (!strcmp(a, "--policy") && v) {
            cfg.page_policy = argv[++i];
        } else if (!strcmp(a, "--stats")) {
            stats = true;
        } else if (a[0] != '-' && !addr_path) {
            addr_path = a;
        } else {
            cli_error("vmm", "unexpected argument '%s' (see vmsim vmm --help)", a);
            rc = EXIT_USAGE;
        }
    }
    if (rc)
        return rc;
    if (!addr_path || !cfg.backing) {
        cli_error("vmm", "expected --backing FILE and an address file (see vmsim vmm --help)");
        return EXIT_USAGE;
    }
    uint64_t *addrs = NULL;
    size_t n = 0;
    if ((rc = read_addrs(addr_path, &addrs, &n)) != 0)
        return rc;
    vms_teach_stats st;
    vms_err err = {0};
    vms_status s = vms_teach_vmm(NULL, &cfg, addrs, n, print_line, NULL, &st, &err);
    free(addrs);
    if (s != VMS_OK) {
        cli_error("vmm", "%s", err.msg);
        return s == VMS_ERR_IO ? 1 : EXIT_USAGE;
    }
    if (stats) {
        printf("Number of Translated Addresses = %" PRIu64 "\n", st.translated);
        printf("Page Faults = %" PRIu64 "\n", st.page_faults);
        printf("Page Fault Rate = %.3f\n",
               st.translated ? (double)st.page_faults / (double)st.translated : 0.0);
        printf("TLB Hits = %" PRIu64 "\n", st.tlb_hits);
        printf("TLB Hit Rate = %.3f\n",
               st.translated ? (double)st.tlb_hits / (double)st.translated : 0.0);
        printf("Evictions = %" PRIu64 "\n", st.evictions);
    }
    return 0;
}
