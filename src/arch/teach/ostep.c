/*
 * teach/ostep.c — the OSTEP homework machines (ostep.h): each problem generator draws
 * CPython random() numbers in the order its script does, then the tables go into
 * simulated RAM in the machine's format and every answer is a vms_walk.
 *
 * The order of draws, script by script (r = one random.random()):
 *
 *  multilevel  page directory = find_free(); then for each of `allocated` pages: a
 *              virtual page int(r * 1024), redrawn while already used; its frame
 *              find_free(); a page-table page find_free() if its PDE is not valid yet;
 *              the frame's 32 bytes int(r * 31) each. find_free() is int(r * 128),
 *              redrawn while used. Then per address: r * 100 > 50 (or no allocated page
 *              left to pick) gives int(r * 1024 * 32), else allocated page i with the
 *              offset int(r * 32).
 *  linear      per virtual page: r * 100 > 100 - used gives a frame int(pages * r),
 *              the whole step redrawn while that frame is used; else invalid. Then per
 *              address int(asize * r) (unless -A).
 *  segmentation len0, len1 = int(asize/4 + asize/4 * r) each unless given; base0 =
 *              int(psize * r) until base0 + len0 < psize; base1 likewise until it also
 *              misses segment 0. Then per address int(asize * r) (unless -A).
 *  relocation  limit as len0; base as base0; per address int(asize * r).
 *
 * RAM layout: multilevel's 4 KiB of physical memory at 0 (the page directory and the
 * page-table pages are in it, as in the script). The other machines have no memory
 * contents; their tables sit just above their physical memory (at psize rounded up to
 * 4 KiB), where no frame of the problem lies.
 */
#include "vmsim/ostep.h"

#include <stdlib.h>
#include <string.h>

#include "arch/teach/teach.h"
#include "util/util.h"
#include "vmsim/bus.h"
#include "vmsim/ram.h"

/* The multilevel machine (fixed by the script). */
#define ML_PAGE    32
#define ML_PAGES   128
#define ML_VPAGES  1024
#define ML_INVALID 0x7f /* an entry not valid yet: V = 0, PFN 127 */
#define ML_VALID   0x80
/* vmsim's limits for the others (the scripts have none, but would take hours). */
#define MAX_ENTRIES (UINT64_C(1) << 24)
#define MAX_DRAWS   UINT64_C(100000000)

struct vms_ostep {
    const vms_allocator *a;
    vms_ostep_config cfg;
    vms_pt_format fmt; /* the machine's format, reshaped for linear */
    vms_ram *ram;
    vms_bus *bus;
    vms_regs regs; /* fmt and the root (cr3) */
    vms_walk_stats stats;
    vmsi_pyrandom rnd;
    uint64_t *addrs;
    size_t naddrs;
    unsigned allocated_vps[ML_VPAGES]; /* multilevel: the pages allocated, in order */
    unsigned nallocated;
    uint8_t *used; /* scratch for generation: used frames / virtual pages */
    size_t used_len;
};

void vms_ostep_config_default(vms_ostep_kind kind, vms_ostep_config *c)
{
    bool lin = kind == VMS_OSTEP_LINEAR;
    *c = (vms_ostep_config){.kind = kind,
                            .asize = lin ? 16 * 1024 : 1024,
                            .psize = lin ? 64 * 1024 : 16 * 1024,
                            .pagesize = 4 * 1024,
                            .num = kind == VMS_OSTEP_MULTILEVEL ? 10 : 5,
                            .used = 50,
                            .allocated = 64,
                            .base0 = -1,
                            .len0 = -1,
                            .base1 = -1,
                            .len1 = -1};
}

static const char *const kind_names[] = {"linear", "multilevel", "segmentation", "relocation"};

bool vms_ostep_kind_parse(const char *name, vms_ostep_kind *out)
{
    for (unsigned i = 0; i < 4; i++)
        if (strcmp(name, kind_names[i]) == 0) {
            *out = (vms_ostep_kind)i;
            return true;
        }
    return false;
}

const char *vms_ostep_kind_name(vms_ostep_kind kind)
{
    return (unsigned)kind < 4 ? kind_names[kind] : "?";
}

bool vms_ostep_parse_size(const char *s, int64_t *out)
{
    if (!s)
        return false;
    size_t n = strlen(s);
    int64_t m = 1;
    if (n && strchr("kK", s[n - 1]))
        m = INT64_C(1) << 10;
    else if (n && strchr("mM", s[n - 1]))
        m = INT64_C(1) << 20;
    else if (n && strchr("gG", s[n - 1]))
        m = INT64_C(1) << 30;
    size_t digits = m > 1 ? n - 1 : n, i = 0;
    if (digits && (s[0] == '-' || s[0] == '+'))
        i = 1;
    if (i == digits || digits - i > 15)
        return false;
    int64_t v = 0;
    for (; i < digits; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = (s[0] == '-' ? -v : v) * m;
    return true;
}

static double rnd(vms_ostep *o)
{
    return vmsi_pyrandom_random(&o->rnd);
}

/* RAM of `limit` bytes (rounded up to 4 KiB) behind a bus. */
static vms_status make_memory(vms_ostep *o, uint64_t limit, vms_err *err)
{
    limit = (limit + VMS_PAGE_MASK) & ~(uint64_t)VMS_PAGE_MASK;
    vms_status st = vms_ram_create(o->a, limit, &o->ram, err);
    if (st == VMS_OK)
        st = vms_bus_create(o->a, o->ram, &o->bus, err);
    if (st == VMS_OK)
        st = vms_bus_add_ram(o->bus, 0, limit, err);
    return st;
}

static vms_status scratch(vms_ostep *o, size_t n, vms_err *err)
{
    o->used = vmsi_calloc(o->a, n, 1);
    o->used_len = n;
    return o->used ? VMS_OK : vmsi_err(err, VMS_ERR_NOMEM, "ostep: out of memory");
}

static vms_status wr8(vms_ostep *o, uint64_t pa, uint8_t v)
{
    return vms_bus_write(o->bus, pa, &v, 1);
}

/* ---- multilevel ---- */

/* The script's findFree: a random page not yet used. */
static vms_status ml_find_free(vms_ostep *o, unsigned *page, vms_err *err)
{
    unsigned count = 0;
    for (unsigned i = 0; i < ML_PAGES; i++)
        count += o->used[i];
    if (count >= ML_PAGES)
        return vmsi_err(err, VMS_ERR_INVAL,
                        "ostep multilevel: out of physical pages (128 pages hold the page "
                        "directory, the page-table pages and the allocated pages; lower -a)");
    unsigned look = (unsigned)(rnd(o) * ML_PAGES);
    while (o->used[look])
        look = (unsigned)(rnd(o) * ML_PAGES);
    o->used[look] = 1;
    *page = look;
    return VMS_OK;
}

/* A page-directory or page-table page: every entry not valid (0x7f). */
static vms_status ml_init_table(vms_ostep *o, unsigned page)
{
    return vms_ram_fill(o->ram, (uint64_t)page * ML_PAGE, ML_INVALID, ML_PAGE);
}

/* Map vp to frame pp, allocating its page-table page if its PDE is not valid. */
static vms_status ml_map(vms_ostep *o, unsigned vp, unsigned pp, vms_err *err)
{
    const vms_pt_format *f = &o->fmt;
    uint64_t va = (uint64_t)vp << f->page_shift, pdep = vms_fmt_entry_pa(f, o->regs.cr3, va, 2);
    uint64_t pde;
    vms_status st = vmsi_teach_read_entry(o->bus, pdep, 1, &pde);
    if (st == VMS_OK && !vms_fmt_pte_present(f, pde)) {
        unsigned pt;
        if ((st = ml_find_free(o, &pt, err)) != VMS_OK)
            return st;
        pde = f->mk_table(f, (uint64_t)pt << f->page_shift, 2);
        st = vmsi_teach_write_entry(o->bus, pdep, 1, pde);
        if (st == VMS_OK)
            st = ml_init_table(o, pt);
    }
    uint64_t ptep = vms_fmt_entry_pa(f, vms_fmt_pte_addr(f, pde), va, 1);
    if (st == VMS_OK)
        st = vmsi_teach_write_entry(o->bus, ptep, 1, vms_fmt_mk_pte(f, pp, 1, 0));
    return st == VMS_OK ? VMS_OK : vmsi_err(err, st, "ostep multilevel: %s", vms_status_str(st));
}

static vms_status gen_multilevel(vms_ostep *o, vms_err *err)
{
    const vms_ostep_config *c = &o->cfg;
    if (c->allocated < 0 || c->allocated > ML_VPAGES || c->num < 0)
        return vmsi_err(err, VMS_ERR_INVAL,
                        "ostep multilevel: -a %lld, -n %lld: expected 0 … 1024 pages and a "
                        "count >= 0",
                        (long long)c->allocated, (long long)c->num);
    o->fmt = vmsi_fmt_ostep_multilevel;
    vms_status st = make_memory(o, ML_PAGE * ML_PAGES, err);
    if (st == VMS_OK)
        st = scratch(o, ML_VPAGES, err); /* [0, 128) frames; reused below for vps */
    uint8_t vp_used[ML_VPAGES] = {0};
    unsigned pd = 0;
    if (st == VMS_OK)
        st = ml_find_free(o, &pd, err);
    if (st != VMS_OK)
        return st;
    o->regs.cr3 = (uint64_t)pd * ML_PAGE;
    ml_init_table(o, pd);
    for (int64_t k = 0; k < c->allocated; k++) {
        unsigned vp = (unsigned)(rnd(o) * ML_VPAGES), pp;
        while (vp_used[vp])
            vp = (unsigned)(rnd(o) * ML_VPAGES);
        vp_used[vp] = 1;
        o->allocated_vps[o->nallocated++] = vp;
        if ((st = ml_find_free(o, &pp, err)) != VMS_OK || (st = ml_map(o, vp, pp, err)) != VMS_OK)
            return st;
        for (unsigned j = 0; j < ML_PAGE; j++)
            wr8(o, (uint64_t)pp * ML_PAGE + j, (uint8_t)(int)(rnd(o) * 31));
    }
    o->addrs = vmsi_calloc(o->a, (size_t)c->num + 1, sizeof *o->addrs);
    if (!o->addrs)
        return vmsi_err(err, VMS_ERR_NOMEM, "ostep: out of memory");
    for (int64_t i = 0; i < c->num; i++) {
        uint64_t va;
        if (rnd(o) * 100 > 50.0 || (uint64_t)i >= o->nallocated)
            va = (uint64_t)(rnd(o) * 1024 * 32);
        else
            va = (uint64_t)o->allocated_vps[i] << 5 | (uint64_t)(rnd(o) * 32);
        o->addrs[o->naddrs++] = va;
    }
    return VMS_OK;
}

/* ---- the others: common checks ---- */

static vms_status bad(vms_err *err, const char *msg)
{
    return vmsi_err(err, VMS_ERR_INVAL, "Error: %s", msg);
}

/* The checks the segmentation and relocation scripts make first. */
static vms_status check_sizes(const vms_ostep_config *c, vms_err *err)
{
    if (c->psize <= 1)
        return bad(err, "must specify a non-zero physical memory size.");
    if (c->asize == 0 || (c->kind == VMS_OSTEP_LINEAR && c->asize < 1))
        return bad(err, "must specify a non-zero address-space size.");
    if (c->psize <= c->asize)
        return bad(err, "physical memory size must be GREATER than address space size (for "
                        "this simulation)");
    if (c->asize < 0 || c->psize > INT64_C(1) << 40)
        return vmsi_err(err, VMS_ERR_INVAL,
                        "ostep: -a %lld -p %lld: vmsim takes address spaces >= 0 and physical "
                        "memories up to 1 TiB",
                        (long long)c->asize, (long long)c->psize);
    return VMS_OK;
}

/* The given addresses (-A), or num drawn as int(asize * r). */
static vms_status gen_addrs(vms_ostep *o, vms_err *err)
{
    const vms_ostep_config *c = &o->cfg;
    size_t n = c->addrs ? c->naddrs : (size_t)(c->num > 0 ? c->num : 0);
    o->addrs = vmsi_calloc(o->a, n + 1, sizeof *o->addrs);
    if (!o->addrs)
        return vmsi_err(err, VMS_ERR_NOMEM, "ostep: out of memory");
    for (size_t i = 0; i < n; i++) {
        int64_t va = c->addrs ? c->addrs[i] : (int64_t)((double)c->asize * rnd(o));
        if (va < 0 || va >= c->asize)
            return vmsi_err(err, VMS_ERR_INVAL,
                            "Error: virtual address %lld cannot be generated in an address "
                            "space of size %lld",
                            (long long)va, (long long)c->asize);
        o->addrs[o->naddrs++] = (uint64_t)va;
    }
    return VMS_OK;
}

static unsigned log2_exact(int64_t v)
{
    unsigned b = 0;
    while ((INT64_C(1) << b) < v)
        b++;
    return (INT64_C(1) << b) == v ? b : 64;
}

/* ---- linear ---- */

static vms_status gen_linear(vms_ostep *o, vms_err *err)
{
    const vms_ostep_config *c = &o->cfg;
    vms_status st = check_sizes(c, err);
    if (st != VMS_OK)
        return st;
    if (c->psize >= INT64_C(1) << 30 || c->asize >= INT64_C(1) << 30)
        return bad(err, "must use smaller sizes (less than 1 GB) for this simulation.");
    if (c->pagesize < 1 || c->asize % c->pagesize)
        return bad(err, "address space must be a multiple of the pagesize");
    if (c->psize % c->pagesize)
        return bad(err, "physical memory must be a multiple of the pagesize");
    unsigned vabits = log2_exact(c->asize), pagebits = log2_exact(c->pagesize);
    if (vabits == 64)
        return bad(err, "address space must be a power of 2");
    if (pagebits == 64)
        return bad(err, "page size must be a power of 2");
    uint64_t pages = (uint64_t)(c->psize / c->pagesize),
             vpages = (uint64_t)1 << (vabits - pagebits);
    if (pages > MAX_ENTRIES || vpages > MAX_ENTRIES || pagebits > 30)
        return vmsi_err(err, VMS_ERR_INVAL,
                        "ostep linear: %llu frames and %llu pages: vmsim takes at most 2^24 "
                        "of each (use a larger -P)",
                        (unsigned long long)pages, (unsigned long long)vpages);
    vmsi_teach_format_shape(&vmsi_fmt_ostep_linear, pagebits, vabits, &o->fmt);
    uint64_t ptbr = ((uint64_t)c->psize + VMS_PAGE_MASK) & ~(uint64_t)VMS_PAGE_MASK;
    o->regs.cr3 = ptbr;
    if ((st = make_memory(o, ptbr + 4 * vpages, err)) != VMS_OK ||
        (st = scratch(o, (size_t)pages, err)) != VMS_OK)
        return st;
    double threshold = 100.0 - (double)c->used;
    for (uint64_t v = 0; v < vpages; v++) {
        uint64_t pte = 0;
        for (uint64_t draws = 0;; draws++) {
            if (draws == MAX_DRAWS)
                return vmsi_err(err, VMS_ERR_INVAL, "ostep linear: no free frame found");
            if (rnd(o) * 100.0 > threshold) {
                uint64_t u = (uint64_t)((double)pages * rnd(o));
                if (o->used[u])
                    continue;
                o->used[u] = 1;
                pte = vms_fmt_mk_pte(&o->fmt, u, 1, 0);
            }
            break;
        }
        if (pte && (st = vmsi_teach_write_entry(o->bus, ptbr + 4 * v, 4, pte)) != VMS_OK)
            return vmsi_err(err, st, "ostep linear: %s", vms_status_str(st));
    }
    return gen_addrs(o, err);
}

/* ---- segmentation and relocation ---- */

/* int(asize/4.0 + asize/4.0 * r), the scripts' random limit. */
static int64_t random_len(vms_ostep *o)
{
    double q = (double)o->cfg.asize / 4.0;
    return (int64_t)(q + (q * rnd(o)));
}

/* Build the segment table: the size, then (base, GN | limit) per segment. */
static vms_status write_segments(vms_ostep *o, unsigned nsegs, const uint64_t *base,
                                 const uint64_t *lim, vms_err *err)
{
    uint64_t table = ((uint64_t)o->cfg.psize + VMS_PAGE_MASK) & ~(uint64_t)VMS_PAGE_MASK;
    o->regs.cr3 = table;
    vms_status st = make_memory(o, table + 8 + 16 * nsegs, err);
    if (st == VMS_OK)
        st = vms_bus_write64(o->bus, table, (uint64_t)o->cfg.asize);
    for (unsigned s = 0; st == VMS_OK && s < nsegs; s++) {
        st = vms_bus_write64(o->bus, vmsi_seg_desc_pa(table, s), base[s]);
        if (st == VMS_OK)
            st = vms_bus_write64(o->bus, vmsi_seg_desc_pa(table, s) + 8, lim[s]);
    }
    return st == VMS_OK ? VMS_OK : vmsi_err(err, st, "ostep: %s", vms_status_str(st));
}

/* base = int(psize * r) until base + len < psize (and, with `avoid`, outside it). */
static vms_status place(vms_ostep *o, int64_t len, const int64_t *avoid, int64_t *base,
                        vms_err *err)
{
    int64_t psize = o->cfg.psize;
    for (uint64_t draws = 0; draws < MAX_DRAWS; draws++) {
        int64_t b = (int64_t)((double)psize * rnd(o));
        if (b + len < psize && (!avoid || b > avoid[0] + avoid[1] || b + len < avoid[0])) {
            *base = b;
            return VMS_OK;
        }
    }
    return vmsi_err(err, VMS_ERR_INVAL, "ostep: no room in physical memory for the segments");
}

static vms_status gen_segmentation(vms_ostep *o, vms_err *err)
{
    const vms_ostep_config *c = &o->cfg;
    vms_status st = check_sizes(c, err);
    if (st != VMS_OK)
        return st;
    int64_t len0 = c->len0, len1 = c->len1, base0 = c->base0, base1 = c->base1;
    if (len0 == -1)
        len0 = random_len(o);
    if (len1 == -1)
        len1 = random_len(o);
    if (len0 < 0 || len1 < 0 || base0 < -1 || base1 < -1)
        return vmsi_err(err, VMS_ERR_INVAL, "ostep segmentation: negative base or limit");
    if (base0 == -1 && (st = place(o, len0, NULL, &base0, err)) != VMS_OK)
        return st;
    int64_t seg0[2] = {base0, len0};
    if (base1 == -1) {
        if ((st = place(o, len1, seg0, &base1, err)) != VMS_OK)
            return st;
    } else {
        if (base1 < len1)
            return vmsi_err(err, VMS_ERR_INVAL,
                            "ostep segmentation: -B %lld is below its limit %lld (segment 1 "
                            "grows down from -B)",
                            (long long)base1, (long long)len1);
        base1 -= len1;
    }
    if ((double)len0 > (double)c->asize / 2.0 || (double)len1 > (double)c->asize / 2.0)
        return bad(err, "length register is too large for this address space");
    if (len0 + base0 > base1 && base1 > base0)
        return bad(err, "segments overlap in physical memory");
    uint64_t base[2] = {(uint64_t)base0, (uint64_t)(base1 + len1)};
    uint64_t lim[2] = {(uint64_t)len0, (uint64_t)len1 | VMSI_SEG_GN};
    o->fmt = vmsi_fmt_ostep_segmentation;
    if ((st = write_segments(o, 2, base, lim, err)) != VMS_OK)
        return st;
    return gen_addrs(o, err);
}

static vms_status gen_relocation(vms_ostep *o, vms_err *err)
{
    const vms_ostep_config *c = &o->cfg;
    vms_status st = check_sizes(c, err);
    if (st != VMS_OK)
        return st;
    int64_t limit = c->len0 == -1 ? random_len(o) : c->len0, base = c->base0;
    if (limit < 0 || base < -1)
        return vmsi_err(err, VMS_ERR_INVAL, "ostep relocation: negative base or limit");
    if (base == -1 && (st = place(o, limit, NULL, &base, err)) != VMS_OK)
        return st;
    if (base + limit > c->psize)
        return bad(err, "address space does not fit into physical memory with those "
                        "base/bounds values.");
    uint64_t b = (uint64_t)base, l = (uint64_t)limit;
    o->fmt = vmsi_fmt_ostep_relocation;
    if ((st = write_segments(o, 1, &b, &l, err)) != VMS_OK)
        return st;
    o->cfg.addrs = NULL; /* the script has no -A */
    return gen_addrs(o, err);
}

/* ---- lifecycle and queries ---- */

vms_status vms_ostep_create(const vms_allocator *a, const vms_ostep_config *cfg, vms_ostep **out,
                            vms_err *err)
{
    a = a ? a : vms_allocator_default();
    *out = NULL;
    vms_ostep *o = vmsi_zalloc(a, sizeof *o);
    if (!o)
        return vmsi_err(err, VMS_ERR_NOMEM, "ostep: out of memory");
    o->a = a;
    o->cfg = *cfg;
    vmsi_pyrandom_seed(&o->rnd, cfg->seed);
    vms_status st;
    switch (cfg->kind) {
    case VMS_OSTEP_LINEAR:
        st = gen_linear(o, err);
        break;
    case VMS_OSTEP_MULTILEVEL:
        st = gen_multilevel(o, err);
        break;
    case VMS_OSTEP_SEGMENTATION:
        st = gen_segmentation(o, err);
        break;
    case VMS_OSTEP_RELOCATION:
        st = gen_relocation(o, err);
        break;
    default:
        st = vmsi_err(err, VMS_ERR_INVAL, "ostep: unknown machine %d", (int)cfg->kind);
    }
    o->cfg.addrs = NULL; /* borrowed: copied into o->addrs */
    o->cfg.naddrs = o->naddrs;
    vmsi_free(a, o->used, o->used_len);
    o->used = NULL;
    o->regs.fmt = &o->fmt;
    if (st != VMS_OK) {
        vms_ostep_destroy(o);
        return st;
    }
    *out = o;
    return VMS_OK;
}

void vms_ostep_destroy(vms_ostep *o)
{
    if (!o)
        return;
    vmsi_free(o->a, o->addrs, (o->naddrs + 1) * sizeof *o->addrs);
    vmsi_free(o->a, o->used, o->used_len);
    vms_bus_destroy(o->bus);
    vms_ram_destroy(o->ram);
    vmsi_free(o->a, o, sizeof *o);
}

const vms_ostep_config *vms_ostep_config_of(const vms_ostep *o)
{
    return &o->cfg;
}

const vms_pt_format *vms_ostep_format(const vms_ostep *o)
{
    return &o->fmt;
}

uint64_t vms_ostep_root(const vms_ostep *o)
{
    return o->regs.cr3;
}

size_t vms_ostep_naddrs(const vms_ostep *o)
{
    return o->naddrs;
}

uint64_t vms_ostep_addr(const vms_ostep *o, size_t i)
{
    return i < o->naddrs ? o->addrs[i] : 0;
}

vms_status vms_ostep_read(const vms_ostep *o, uint64_t pa, void *buf, size_t len)
{
    return vms_ram_read(o->ram, pa, buf, len);
}

uint32_t vms_ostep_pte(const vms_ostep *o, uint64_t vpn)
{
    uint64_t v = 0;
    vmsi_teach_read_entry(o->bus, o->regs.cr3 + 4 * vpn, 4, &v);
    return (uint32_t)v;
}

void vms_ostep_segment(const vms_ostep *o, unsigned s, uint64_t *base, uint64_t *limit,
                       bool *grows_negative)
{
    uint64_t d = vmsi_seg_desc_pa(o->regs.cr3, s), lim = 0;
    *base = 0;
    vms_bus_read64(o->bus, d, base);
    vms_bus_read64(o->bus, d + 8, &lim);
    *limit = lim & VMSI_SEG_LIMIT_MASK;
    *grows_negative = (lim & VMSI_SEG_GN) != 0;
}

vms_status vms_ostep_translate(vms_ostep *o, uint64_t va, vms_ostep_xlate *out, vms_err *err)
{
    memset(out, 0, sizeof *out);
    out->va = va;
    out->vpn = va >> o->fmt.page_shift;
    vms_xlate x;
    vms_fault f;
    out->valid = vms_walk(o->bus, NULL, &o->regs, va, VMS_ACC_READ, &x, &f, &o->stats, &out->trace);
    if (o->cfg.kind == VMS_OSTEP_SEGMENTATION || o->cfg.kind == VMS_OSTEP_RELOCATION)
        out->segment = out->trace.nsteps ? out->trace.step[0].index : 0;
    if (!out->valid) {
        if (f.kind == VMS_FAULT_BUS)
            return vmsi_err(err, VMS_ERR_INVAL, "ostep: bus error at 0x%llx",
                            (unsigned long long)f.pa);
        out->fault_kind = f.kind;
        out->fault_level = f.level;
        return VMS_OK;
    }
    out->pa = vmsi_teach_pa(&o->fmt, &x, va);
    if (o->cfg.kind == VMS_OSTEP_MULTILEVEL)
        vms_ram_read(o->ram, out->pa, &out->value, 1);
    return VMS_OK;
}
