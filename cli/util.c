/* util.c — argument parsing and printing helpers shared by the subcommands. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <dirent.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "cli.h"
#include "vmsim/pte.h"
#include "vmsim/virt.h"

vms_status cli_trace_open(const char *path, vms_trace_format fmt, bool pipeline,
                          vms_trace_reader **out, vms_err *err)
{
    vms_status st = vms_trace_reader_open(path, fmt, NULL, out, err);
    if (st == VMS_OK && pipeline)
        st = vms_trace_reader_pipeline(*out, out, err);
    return st;
}

/* The temporary writeback directory cli_tmp_writeback made ("" when none). */
static char tmp_wb[64];

void cli_tmp_writeback(vms_config *c)
{
    if (c->writeback_dir[0] || tmp_wb[0])
        return;
    snprintf(tmp_wb, sizeof tmp_wb, "/tmp/vmsim-wb-XXXXXX");
    if (mkdtemp(tmp_wb))
        snprintf(c->writeback_dir, sizeof c->writeback_dir, "%s", tmp_wb);
    else
        tmp_wb[0] = '\0'; /* then the kernel's default, ".": rare, and said in --help */
}

void cli_rmdir_flat(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[4096 + 260];
    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p); /* only copies the kernel made in our own directory */
        }
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

void cli_tmp_writeback_remove(void)
{
    if (!tmp_wb[0])
        return;
    cli_rmdir_flat(tmp_wb);
    tmp_wb[0] = '\0';
}

bool cli_parse_u64(const char *s, bool allow_suffix, uint64_t *out)
{
    return vms_parse_u64(s, allow_suffix, out);
}

bool cli_explain_access(const char *v, vms_access_kind *kind)
{
    if (!strcmp(v, "read"))
        *kind = VMS_ACC_READ;
    else if (!strcmp(v, "write"))
        *kind = VMS_ACC_WRITE;
    else if (!strcmp(v, "exec"))
        *kind = VMS_ACC_EXEC;
    else {
        cli_error("explain", "bad --access '%s': expected read, write or exec", v);
        return false;
    }
    return true;
}

bool cli_split_map(char *arg, uint64_t *va, uint64_t *pa, vms_pgsize *size, char **perms)
{
    char *eq = strchr(arg, '=');
    if (!eq)
        return false;
    *eq = '\0';
    *perms = strchr(eq + 1, ':');
    if (*perms)
        *(*perms)++ = '\0';
    char *sz = strchr(eq + 1, '/');
    if (sz)
        *sz++ = '\0';
    *size = VMS_PG_4K;
    if (sz) {
        if (strcmp(sz, "2M") == 0 || strcmp(sz, "2m") == 0)
            *size = VMS_PG_2M;
        else if (strcmp(sz, "1G") == 0 || strcmp(sz, "1g") == 0)
            *size = VMS_PG_1G;
        else if (strcmp(sz, "4K") != 0 && strcmp(sz, "4k") != 0)
            return false;
    }
    return cli_parse_u64(arg, false, va) && cli_parse_u64(eq + 1, false, pa);
}

void cli_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "vmsim %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void cli_pte_bits(uint64_t pte, unsigned level, char *buf, size_t len)
{
    vms_pte_bits_str(pte, level, buf, len); /* the library's words (src/virt/narrate.c) */
}

static void print_tlb(FILE *f, const char *name, const vms_tlb_config *t)
{
    if (t->nparts == 0) {
        fprintf(f, "  %-4s none\n", name);
        return;
    }
    for (unsigned i = 0; i < t->nparts; i++) {
        const vms_tlb_part_config *p = &t->part[i];
        char sizes[32] = "";
        for (unsigned s = 0; s < VMS_PG_NSIZES; s++)
            if (p->sizes & (1u << s))
                snprintf(sizes + strlen(sizes), sizeof sizes - strlen(sizes), "%s%s",
                         sizes[0] ? "+" : "", vms_pgsize_name((vms_pgsize)s));
        fprintf(f, "  %-4s %-6s %5u entries = %u set%s x %u ways, %s\n", i ? "" : name, sizes,
                p->sets * p->ways, p->sets, p->sets == 1 ? "" : "s", p->ways,
                p->policy ? p->policy : "lru");
    }
}

void cli_print_config(FILE *f, const vms_machine_config *cfg)
{
    static const char *const pwc_names[6] = {"", "", "PDE", "PDPTE", "PML4E", "PML5E"};
    fprintf(f, "preset %s: %llu MiB RAM, %u core%s, %u-level paging, MAXPHYADDR %u, seed %llu\n",
            cfg->name ? cfg->name : "(custom)", (unsigned long long)(cfg->ram_bytes >> 20),
            cfg->ncores, cfg->ncores == 1 ? "" : "s", cfg->levels, cfg->maxphyaddr,
            (unsigned long long)cfg->seed);
    if (cfg->fmt) /* another architecture than x86-64 */
        fprintf(f, "translation: %s (format %s)\n", cfg->fmt->title, cfg->fmt->name);
    fprintf(f, "TLBs per core:\n");
    print_tlb(f, "l1i", &cfg->mmu.l1i);
    print_tlb(f, "l1d", &cfg->mmu.l1d);
    print_tlb(f, "l2", &cfg->mmu.l2);
    fprintf(f, "page-walk caches:");
    bool any = false;
    for (unsigned l = 5; l >= 2; l--) {
        const vms_pwc_level_config *p = &cfg->mmu.pwc.level[l];
        if (!p->entries)
            continue;
        fprintf(f, " %s %u entries = %u set%s x %u ways%s", pwc_names[l], p->entries,
                p->entries / p->ways, p->entries == p->ways ? "" : "s", p->ways, l > 2 ? "," : "");
        any = true;
    }
    fprintf(f, "%s\n", any ? "" : " none");
    const vms_cost_config *c = &cfg->cost;
    fprintf(f,
            "cycles: L1 hit %u, L2 hit %u, walk reference %u, PWC hit %u, A/D write %u, "
            "fault %u, invlpg %u, CR3 load %u, interrupt %u\n",
            c->l1_hit, c->l2_hit, c->walk_ref, c->pwc_hit, c->ad_write, c->fault, c->invlpg,
            c->cr3_load, c->interrupt);
}
