/*
 * virt/gspace.c — building a guest-physical space: the hypervisor's second-stage tree
 * in host RAM (through the page-table editor, pt.h, in the second stage's own format)
 * and the host memory behind guest pages, handed out in aligned regions of the chosen
 * second-stage page size. Guest page-table frames are guest-physical: each is backed
 * here, then zeroed through its host address, as a guest kernel's freshly allocated
 * page-table page would be.
 */
#include "util/util.h"
#include "vmsim/virt.h"

vms_status vms_gspace_init(vms_gspace *g, vms_bus *bus, const vms_pt_format *s2fmt,
                           uint64_t s2_tables_at, uint64_t host_at, uint64_t host_end,
                           vms_pgsize host_page, unsigned prot, uint64_t gtab_at, vms_err *err)
{
    *g = (vms_gspace){.bus = bus,
                      .s2_tables = {vms_bus_ram(bus), s2_tables_at, 0, 0, 0},
                      .host_next = host_at,
                      .host_end = host_end,
                      .host_page = host_page,
                      .prot = prot,
                      .gtab_next = gtab_at};
    vms_pt_ops ops = vms_pt_bump_ops(&g->s2_tables);
    return vms_pt_init_format(&g->s2, bus, s2fmt, &ops, err);
}

vms_status vms_gspace_back(vms_gspace *g, uint64_t gpa, uint64_t *hpa, vms_err *err)
{
    uint64_t pte, ptep;
    vms_pgsize size;
    if (vms_pt_lookup(&g->s2, gpa, &pte, &ptep, &size)) {
        vms_pte_info info;
        vms_fmt_decode(g->s2.fmt, pte, vms_fmt_size_level(size), &info);
        if (hpa)
            *hpa = info.pa | (gpa & (vms_pgsize_bytes(size) - 1));
        return VMS_OK;
    }
    uint64_t bytes = vms_pgsize_bytes(g->host_page);
    uint64_t base = (g->host_next + bytes - 1) & ~(bytes - 1);
    if (base + bytes > g->host_end || base + bytes < base)
        return vmsi_err(err, VMS_ERR_NOMEM,
                        "no host memory left to back guest-physical 0x%llx with a %s page",
                        (unsigned long long)gpa, vms_pgsize_name(g->host_page));
    uint64_t gbase = gpa & ~(bytes - 1);
    vms_status st = vms_pt_map_prot(&g->s2, gbase, base, g->host_page, g->prot, err);
    if (st != VMS_OK)
        return st;
    g->host_next = base + bytes;
    g->backed++;
    if (hpa)
        *hpa = base | (gpa & (bytes - 1));
    return g->on_back ? g->on_back(g->on_back_ud, gpa) : VMS_OK;
}

/* A guest table frame: the next GPA page, backed, zeroed through its host address. */
static vms_status gtab_alloc(void *ud, uint64_t *pa)
{
    vms_gspace *g = ud;
    uint64_t gpa = g->gtab_next, hpa;
    vms_status st = vms_gspace_back(g, gpa, &hpa, NULL);
    if (st != VMS_OK)
        return st;
    st = vms_ram_fill(vms_bus_ram(g->bus), hpa, 0, VMS_PAGE_SIZE);
    if (st != VMS_OK)
        return st;
    g->gtab_next += VMS_PAGE_SIZE;
    *pa = gpa;
    return VMS_OK;
}

static void gtab_free(void *ud, uint64_t pa)
{
    (void)ud;
    (void)pa; /* frames are not reused (a bump allocator) */
}

vms_pt_ops vms_gspace_table_ops(vms_gspace *g)
{
    return (vms_pt_ops){gtab_alloc, gtab_free, g};
}
