/*
 * machine.c — building and tearing down a machine: validate the configuration, create
 * RAM and the bus with the default physical layout, and the cores with their MMUs.
 *
 * Physical layout (seed 000, "The memory bus routes addresses"): RAM from 0 up to the
 * device window at 0xC0000000 (3 GiB); RAM beyond 3 GiB continues at 4 GiB, above the
 * window, as on PCs. Devices register MMIO regions inside the window.
 */
#include <string.h>

#include "arch/mips/mips.h"
#include "hw/core_impl.h"
#include "hw/memside.h"
#include "util/util.h"
#include "vmsim/repl.h"

static vms_status check_tlb(const vms_tlb_config *t, const char *name, vms_err *err)
{
    for (unsigned i = 0; i < t->nparts && i < VMS_TLB_MAX_PARTS; i++) {
        const vms_tlb_part_config *p = &t->part[i];
        if (p->policy && !vms_repl_find(p->policy))
            return vmsi_err(err, VMS_ERR_INVAL,
                            "tlb %s partition %u: unknown replacement policy '%s'", name, i,
                            p->policy);
    }
    if (t->nparts > VMS_TLB_MAX_PARTS)
        return vmsi_err(err, VMS_ERR_INVAL, "tlb %s: %u partitions (at most %u)", name, t->nparts,
                        VMS_TLB_MAX_PARTS);
    return VMS_OK;
}

vms_status vms_machine_validate(const vms_machine_config *cfg, vms_err *err)
{
    uint64_t ram = cfg->ram_bytes;
    if (ram == 0 || (ram & VMS_PAGE_MASK))
        return vmsi_err(err, VMS_ERR_INVAL,
                        "ram size %llu: expected a non-zero multiple of 4096 bytes",
                        (unsigned long long)ram);
    if (cfg->maxphyaddr < 36 || cfg->maxphyaddr > 52)
        return vmsi_err(err, VMS_ERR_INVAL, "maxphyaddr %u: expected 36 … 52", cfg->maxphyaddr);
    uint64_t top = ram <= VMS_DEVICE_WINDOW_BASE
                       ? ram
                       : ram + (VMS_DEVICE_WINDOW_END - VMS_DEVICE_WINDOW_BASE);
    uint64_t limit = UINT64_C(1) << (cfg->maxphyaddr < 46 ? cfg->maxphyaddr : 46);
    if (top > limit)
        return vmsi_err(err, VMS_ERR_INVAL,
                        "ram size %llu bytes does not fit below 2^%u bytes of physical address "
                        "space",
                        (unsigned long long)ram, cfg->maxphyaddr < 46 ? cfg->maxphyaddr : 46);
    if (cfg->ncores < 1 || cfg->ncores > VMS_MAX_CORES)
        return vmsi_err(err, VMS_ERR_INVAL, "cores %u: expected 1 … %u", cfg->ncores,
                        VMS_MAX_CORES);
    if (cfg->sockets > cfg->ncores)
        return vmsi_err(err, VMS_ERR_INVAL, "sockets %u: expected 1 … %u (the number of cores)",
                        cfg->sockets, cfg->ncores);
    if (cfg->invlpgb_max > 65536)
        return vmsi_err(err, VMS_ERR_INVAL, "invlpgb_max %u: expected 0 … 65536", cfg->invlpgb_max);
    if (!cfg->fmt && cfg->levels != 4 && cfg->levels != 5)
        return vmsi_err(err, VMS_ERR_INVAL, "paging levels %u: expected 4 or 5", cfg->levels);
    if (cfg->design != VMS_DESIGN_RADIX && (cfg->fmt || cfg->design > VMS_DESIGN_INVERTED))
        return vmsi_err(err, VMS_ERR_INVAL, "design %s: only on arch x86_64 (this machine is %s)",
                        vms_design_name(cfg->design), cfg->fmt ? cfg->fmt->arch : "x86_64");
    if (cfg->design != VMS_DESIGN_RADIX && cfg->mmu.swtlb.on)
        return vmsi_err(err, VMS_ERR_INVAL,
                        "design %s: the hardware searches its table; a software-managed TLB "
                        "(tlb.mode=software) has no hardware walker",
                        vms_design_name(cfg->design));
    vms_status st = vms_cache_validate(&cfg->cache, err);
    if (st == VMS_OK)
        st = vms_dram_validate(&cfg->dram, err);
    if (st == VMS_OK)
        st = check_tlb(&cfg->mmu.l1i, "l1i", err);
    if (st == VMS_OK)
        st = check_tlb(&cfg->mmu.l1d, "l1d", err);
    if (st == VMS_OK)
        st = check_tlb(&cfg->mmu.l2, "l2", err);
    if (st == VMS_OK)
        st = vmsi_swtlb_validate(&cfg->mmu.swtlb, cfg->fmt, err);
    return st;
}

/* Route RAM: [0, min(ram, 3 GiB)) and the rest from 4 GiB. */
static vms_status layout(vms_machine *m, vms_err *err)
{
    uint64_t ram = m->cfg.ram_bytes;
    uint64_t low = ram < VMS_DEVICE_WINDOW_BASE ? ram : VMS_DEVICE_WINDOW_BASE;
    vms_status st = vms_bus_add_ram(m->bus, 0, low, err);
    if (st == VMS_OK && ram > low)
        st = vms_bus_add_ram(m->bus, VMS_DEVICE_WINDOW_END, ram - low, err);
    return st;
}

static bool has_pwc(const vms_pwc_config *p)
{
    for (unsigned l = 2; l <= 5; l++)
        if (p->level[l].entries)
            return true;
    return false;
}

/* Create core i's TLBs and PWC and put its registers in their reset state. */
static vms_status core_init(vms_machine *m, unsigned i, vms_err *err)
{
    vms_core *c = &m->cores[i];
    const vms_mmu_config *mc = &m->cfg.mmu;
    const vms_tlb_config *tc[VMS_TLB_NLEVELS] = {&mc->l1i, &mc->l1d, &mc->l2};
    c->m = m;
    c->id = i;
    bool sw = mc->swtlb.on; /* a software-managed TLB: no STLB, no PWC (arch/mips) */
    if (sw && vmsi_swtlb_create(m->alloc, &mc->swtlb, &c->swtlb) != VMS_OK)
        return vmsi_err(err, VMS_ERR_NOMEM, "out of memory creating core %u's JTLB", i);
    for (unsigned l = 0; l < VMS_TLB_NLEVELS; l++) {
        if (tc[l]->nparts == 0 || (sw && l == VMS_TLB_L2))
            continue;
        /* Distinct streams per core and level so "random" policies do not move in step. */
        uint64_t seed = m->cfg.seed * 1000003u + i * 16u + l;
        vms_status st = vms_tlb_create(m->alloc, tc[l], seed, &c->tlb[l], err);
        if (st != VMS_OK)
            return st;
        /* A software-managed TLB's Random reads the clock inside a replay batch, whose
         * plain hits (the repeat memo's) add their cycles at the end: without the memo
         * every hit is counted in order (the same results; mmu.c batch()). */
        if (sw)
            vms_tlb_set_memo(c->tlb[l], false);
        c->utap[l] = (vmsi_unit_tap){&m->tap, c, (vms_tlb_level)l};
        vmsi_tlb_set_tap(c->tlb[l], &c->utap[l]);
    }
    if (has_pwc(&mc->pwc) && !sw) {
        vms_status st = vms_pwc_create(m->alloc, &mc->pwc, vms_machine_format(m)->levels,
                                       m->cfg.seed * 1000003u + i * 16u + 7, &c->pwc, err);
        if (st != VMS_OK)
            return st;
        c->utap[VMS_TLB_NLEVELS] = (vmsi_unit_tap){&m->tap, c, VMS_TLB_L2};
        vmsi_pwc_set_tap(c->pwc, &c->utap[VMS_TLB_NLEVELS]);
    }
    c->regs.cr0 = VMS_CR0_PG | VMS_CR0_WP | 1u /* PE */;
    c->regs.cr4 = VMS_CR4_PAE | VMS_CR4_PGE | (m->cfg.levels == 5 ? VMS_CR4_LA57 : 0);
    c->regs.efer = VMS_EFER_LME | VMS_EFER_LMA | VMS_EFER_NXE;
    c->regs.maxphyaddr = m->cfg.maxphyaddr;
    /* x86-64 is regs.fmt NULL (its mode is CR4.LA57); other formats are named. */
    const vms_pt_format *f = vms_machine_format(m);
    c->regs.fmt = strcmp(f->arch, "x86_64") == 0 ? NULL : f;
    if (m->cfg.design != VMS_DESIGN_RADIX) /* a hashed or inverted table (arch/hashed.h) */
        c->regs.fmt = vms_design_format(m->cfg.design, m->cfg.levels);
    vmsi_core_sync(c);
    return VMS_OK;
}

vms_status vms_machine_create(const vms_allocator *a, const vms_machine_config *cfg,
                              vms_machine **out, vms_err *err)
{
    *out = NULL;
    vms_status st = vms_machine_validate(cfg, err);
    if (st != VMS_OK)
        return st;
    if (!a)
        a = vms_allocator_default();
    vms_machine *m = vmsi_zalloc(a, sizeof *m);
    if (!m)
        return vmsi_err(err, VMS_ERR_NOMEM, "out of memory creating the machine");
    m->alloc = a;
    m->cfg = *cfg;
    m->tap.m = m;
    if (cfg->mmu.swtlb.on)
        m->cfg.invlpgb_max = 0; /* MIPS has no broadcast invalidation: shootdowns are IPIs */
    uint64_t top = cfg->ram_bytes <= VMS_DEVICE_WINDOW_BASE
                       ? VMS_DEVICE_WINDOW_END
                       : cfg->ram_bytes + (VMS_DEVICE_WINDOW_END - VMS_DEVICE_WINDOW_BASE);
    st = vms_ram_create(a, top, &m->ram, err);
    if (st == VMS_OK)
        st = vms_bus_create(a, m->ram, &m->bus, err);
    if (st == VMS_OK) {
        vmsi_bus_set_tap(m->bus, &m->tap);
        st = layout(m, err);
    }
    if (st == VMS_OK) {
        m->cores = vmsi_calloc(a, cfg->ncores, sizeof *m->cores);
        if (!m->cores)
            st = vmsi_err(err, VMS_ERR_NOMEM, "out of memory creating %u cores", cfg->ncores);
        else
            m->ncores = cfg->ncores;
    }
    for (unsigned i = 0; st == VMS_OK && i < m->ncores; i++)
        st = core_init(m, i, err);
    if (st == VMS_OK && (cfg->cache.on || cfg->dram.on))
        st = vmsi_memside_create(a, &cfg->cache, &cfg->dram, cfg->ncores, cfg->seed, m->bus, &m->ms,
                                 err);
    if (st != VMS_OK) {
        vms_machine_destroy(m);
        return st;
    }
    *out = m;
    return VMS_OK;
}

void vms_machine_destroy(vms_machine *m)
{
    if (!m)
        return;
    for (unsigned i = 0; i < m->ncores; i++) {
        for (unsigned l = 0; l < VMS_TLB_NLEVELS; l++)
            vms_tlb_destroy(m->cores[i].tlb[l]);
        vms_pwc_destroy(m->cores[i].pwc);
        vmsi_swtlb_destroy(m->alloc, m->cores[i].swtlb);
    }
    vmsi_free(m->alloc, m->cores, m->ncores * sizeof *m->cores);
    vmsi_memside_destroy(m->ms);
    vms_bus_destroy(m->bus);
    vms_ram_destroy(m->ram);
    vmsi_free(m->alloc, m, sizeof *m);
}

const vms_machine_config *vms_machine_get_config(const vms_machine *m)
{
    return &m->cfg;
}

const vms_pt_format *vms_machine_format(const vms_machine *m)
{
    return m->cfg.fmt ? m->cfg.fmt : vms_format_x86_64(m->cfg.levels);
}

vms_ram *vms_machine_ram(vms_machine *m)
{
    return m->ram;
}

vms_bus *vms_machine_bus(vms_machine *m)
{
    return m->bus;
}

const vms_allocator *vms_machine_allocator(const vms_machine *m)
{
    return m->alloc;
}

unsigned vms_machine_ncores(const vms_machine *m)
{
    return m->ncores;
}

unsigned vms_machine_socket(const vms_machine *m, unsigned c)
{
    unsigned s = m->cfg.sockets ? m->cfg.sockets : 1;
    return (unsigned)((uint64_t)c * s / m->ncores);
}

unsigned vms_machine_hops(const vms_machine *m, unsigned a, unsigned b)
{
    unsigned s = m->cfg.sockets ? m->cfg.sockets : 1;
    unsigned sa = vms_machine_socket(m, a), sb = vms_machine_socket(m, b);
    unsigned d = sa > sb ? sa - sb : sb - sa;
    return d < s - d ? d : s - d;
}

vms_core *vms_machine_core(vms_machine *m, unsigned i)
{
    return i < m->ncores ? &m->cores[i] : NULL;
}
