/*
 * stats.c — the machine's counters as JSON (DESIGN.md principle 8: JSON stats for tools).
 *
 * Totals over all cores come first, then "cores": [...] with the same members per core.
 * Names are a contract for tools (issue #5): "accesses", "cycles", "tlb.l1d.hits",
 * "tlb.l1d.misses", "tlb.l2.hits", "tlb.l2.misses", "walks", "walk.mem_refs".
 */
#include <inttypes.h>
#include <string.h>

#include "arch/mips/mips.h"
#include "hw/core_impl.h"
#include "hw/memside.h"

/* Sums over a set of cores, gathered once so totals and per-core output share code. */
typedef struct totals {
    vms_core_stats st;
    vms_walk_stats ws;
    vms_tlb_stats tlb[VMS_TLB_NLEVELS];
    bool has_tlb[VMS_TLB_NLEVELS];
    vms_pwc_stats pwc;
    uint64_t cycles;
} totals;

static void add_core(totals *t, const vms_core *c)
{
    const uint64_t *src = (const uint64_t *)&c->st;
    uint64_t *dst = (uint64_t *)&t->st;
    for (size_t i = 0; i < sizeof c->st / sizeof(uint64_t); i++)
        dst[i] += src[i];
    src = (const uint64_t *)&c->wstats;
    dst = (uint64_t *)&t->ws;
    for (size_t i = 0; i < sizeof c->wstats / sizeof(uint64_t); i++)
        dst[i] += src[i];
    for (unsigned l = 0; l < VMS_TLB_NLEVELS; l++) {
        if (!c->tlb[l])
            continue;
        t->has_tlb[l] = true;
        src = (const uint64_t *)vms_tlb_get_stats(c->tlb[l]);
        dst = (uint64_t *)&t->tlb[l];
        for (size_t i = 0; i < sizeof(vms_tlb_stats) / sizeof(uint64_t); i++)
            dst[i] += src[i];
    }
    if (c->pwc) {
        src = (const uint64_t *)vms_pwc_get_stats(c->pwc);
        dst = (uint64_t *)&t->pwc;
        for (size_t i = 0; i < sizeof(vms_pwc_stats) / sizeof(uint64_t); i++)
            dst[i] += src[i];
    }
    t->cycles += c->cycles;
}

_Static_assert(sizeof(vms_core_stats) % sizeof(uint64_t) == 0, "core stats are u64 counters");
_Static_assert(sizeof(vms_walk_stats) % sizeof(uint64_t) == 0, "walk stats are u64 counters");
_Static_assert(sizeof(vms_tlb_stats) % sizeof(uint64_t) == 0, "tlb stats are u64 counters");
_Static_assert(sizeof(vms_pwc_stats) % sizeof(uint64_t) == 0, "pwc stats are u64 counters");

static const char *const tlb_names[VMS_TLB_NLEVELS] = {"l1i", "l1d", "l2"};

static void put_tlb(vms_strbuf *sb, const vms_tlb_stats *s)
{
    vms_strbuf_printf(sb,
                      "{\"lookups\":%" PRIu64 ",\"hits\":%" PRIu64 ",\"misses\":%" PRIu64
                      ",\"hits_4k\":%" PRIu64 ",\"hits_2m\":%" PRIu64 ",\"hits_1g\":%" PRIu64
                      ",\"fills\":%" PRIu64 ",\"evictions\":%" PRIu64 ",\"invalidations\":%" PRIu64
                      "}",
                      s->lookups, s->hits, s->misses, s->hits_by_size[0], s->hits_by_size[1],
                      s->hits_by_size[2], s->fills, s->evictions, s->invalidations);
}

static void put_totals(vms_strbuf *sb, const totals *t)
{
    const vms_core_stats *s = &t->st;
    const vms_walk_stats *w = &t->ws;
    vms_strbuf_printf(sb,
                      "\"accesses\":%" PRIu64 ",\"reads\":%" PRIu64 ",\"writes\":%" PRIu64
                      ",\"fetches\":%" PRIu64 ",\"cycles\":%" PRIu64 ",\"tlb\":{",
                      s->accesses, s->by_kind[0], s->by_kind[1], s->by_kind[2], t->cycles);
    bool first = true;
    for (unsigned l = 0; l < VMS_TLB_NLEVELS; l++) {
        if (!t->has_tlb[l])
            continue;
        vms_strbuf_printf(sb, "%s\"%s\":", first ? "" : ",", tlb_names[l]);
        put_tlb(sb, &t->tlb[l]);
        first = false;
    }
    vms_strbuf_printf(
        sb,
        "},\"walks\":%" PRIu64 ",\"walk\":{\"mem_refs\":%" PRIu64 ",\"ad_writes\":%" PRIu64
        ",\"faults\":%" PRIu64 ",\"pwc_hits\":%" PRIu64 ",\"refs_by_level\":{\"pml5\":%" PRIu64
        ",\"pml4\":%" PRIu64 ",\"pdpt\":%" PRIu64 ",\"pd\":%" PRIu64 ",\"pt\":%" PRIu64 "}}",
        w->walks, w->mem_refs, w->ad_writes, w->faults, w->pwc_hits, w->refs_by_level[5],
        w->refs_by_level[4], w->refs_by_level[3], w->refs_by_level[2], w->refs_by_level[1]);
    const vms_pwc_stats *p = &t->pwc;
    vms_strbuf_printf(sb,
                      ",\"pwc\":{\"lookups\":%" PRIu64 ",\"hits_pde\":%" PRIu64
                      ",\"hits_pdpte\":%" PRIu64 ",\"hits_pml4e\":%" PRIu64
                      ",\"hits_pml5e\":%" PRIu64 ",\"misses\":%" PRIu64 ",\"fills\":%" PRIu64
                      ",\"invalidations\":%" PRIu64 "}",
                      p->lookups, p->hits[2], p->hits[3], p->hits[4], p->hits[5], p->misses,
                      p->fills, p->invalidations);
    vms_strbuf_printf(
        sb,
        ",\"exceptions\":{\"page_faults\":%" PRIu64 ",\"gp\":%" PRIu64 ",\"bus\":%" PRIu64
        ",\"tlb_hit_faults\":%" PRIu64 ",\"dirty_rewalks\":%" PRIu64 "}",
        s->faults_pf, s->faults_gp, s->faults_bus, s->tlb_hit_faults, s->dirty_rewalks);
    vms_strbuf_printf(sb,
                      ",\"invalidations\":{\"invlpg\":%" PRIu64 ",\"invpcid\":%" PRIu64
                      ",\"cr3_loads\":%" PRIu64 ",\"cr3_noflush\":%" PRIu64
                      ",\"flushes_all\":%" PRIu64 ",\"invlpgb\":%" PRIu64
                      ",\"invlpgb_received\":%" PRIu64 ",\"tlbsync\":%" PRIu64 "}",
                      s->invlpg, s->invpcid, s->cr3_loads, s->cr3_noflush, s->flushes_all,
                      s->invlpgb, s->invlpgb_received, s->tlbsync);
    vms_strbuf_printf(sb, ",\"interrupts\":%" PRIu64, s->interrupts);
}

vms_status vms_machine_stats_json_members(const vms_machine *m, vms_strbuf *sb)
{
    totals all;
    memset(&all, 0, sizeof all);
    for (unsigned i = 0; i < m->ncores; i++)
        add_core(&all, &m->cores[i]);
    put_totals(sb, &all);
    const vms_bus_stats *b = vms_bus_get_stats(m->bus);
    vms_strbuf_printf(sb,
                      ",\"bus\":{\"ram_reads\":%" PRIu64 ",\"ram_writes\":%" PRIu64
                      ",\"mmio_reads\":%" PRIu64 ",\"mmio_writes\":%" PRIu64 ",\"errors\":%" PRIu64
                      "}",
                      b->ram_reads, b->ram_writes, b->mmio_reads, b->mmio_writes, b->errors);
    if (m->ms)
        vmsi_memside_json(m->ms, sb); /* "cache" {…}, "dram" {…}: only when on */
    vmsi_swtlb_json(m, sb);           /* "swtlb" {…}: only with tlb.mode = software */
    vms_strbuf_printf(sb, ",\"cores\":[");
    for (unsigned i = 0; i < m->ncores; i++) {
        totals one;
        memset(&one, 0, sizeof one);
        add_core(&one, &m->cores[i]);
        vms_strbuf_printf(sb, "%s{\"id\":%u,", i ? "," : "", i);
        put_totals(sb, &one);
        vms_strbuf_printf(sb, "}");
    }
    vms_strbuf_printf(sb, "]");
    return sb->failed ? VMS_ERR_NOMEM : VMS_OK;
}

vms_status vms_machine_stats_json(const vms_machine *m, vms_strbuf *sb)
{
    vms_strbuf_printf(sb, "{");
    vms_machine_stats_json_members(m, sb);
    vms_strbuf_printf(sb, "}\n");
    return sb->failed ? VMS_ERR_NOMEM : VMS_OK;
}

void vms_machine_reset_stats(vms_machine *m)
{
    for (unsigned i = 0; i < m->ncores; i++) {
        vms_core *c = &m->cores[i];
        memset(&c->st, 0, sizeof c->st);
        memset(&c->wstats, 0, sizeof c->wstats);
        c->cycles = 0;
        for (unsigned l = 0; l < VMS_TLB_NLEVELS; l++)
            if (c->tlb[l])
                vms_tlb_reset_stats(c->tlb[l]);
        if (c->swtlb)
            vmsi_swtlb_reset_stats(c->swtlb);
    }
    if (m->ms)
        vmsi_memside_reset_stats(m->ms);
}
