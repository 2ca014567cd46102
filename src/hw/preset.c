/*
 * preset.c — named machine configurations.
 *
 * "skylake" (the default) models an Intel Skylake client core. TLB geometry from the
 * Intel 64 and IA-32 Architectures Optimization Reference Manual (order no. 248966),
 * §2.2 "Skylake microarchitecture", table "TLB parameters":
 *   ITLB  4K: 128 entries, 8-way     2M/4M: 8 entries per thread, fully associative
 *   DTLB  4K: 64 entries, 4-way      2M/4M: 32 entries, 4-way     1G: 4 entries, 4-way
 *   STLB  4K+2M/4M: 1536 entries, 12-way                          1G: 16 entries, 4-way
 * Intel does not publish the paging-structure cache sizes; the figures below (PML4E 2,
 * PDPTE 4, PDE 32) are the estimates commonly used in the research literature (e.g.
 * Bhattacharjee, "Large-reach memory management unit caches", MICRO 2013) — change them
 * for your study. The cycle costs are round figures in the ranges the seeds and public
 * measurements give: an L1 TLB hit ~1 cycle and a miss that walks ~100 cycles (seed 000:
 * "A TLB hit completes in roughly one cycle. A TLB miss requires walking the page table
 * in RAM, roughly 100 cycles" — 4 references of 25), an STLB hit ~9 cycles; delivering
 * an interrupt costs about as much as delivering a fault (500).

Broadcast invalidation: Skylake has no INVLPGB (AMD Zen 3 and later do); the preset
offers it anyway, with Zen 3's 8 pages per instruction (CPUID 8000_0008h EDX
InvlpgbCountMax = 7), so that a study can change the shootdown protocol alone (set
invlpgb_max = 0 for a faithful Intel core: the kernel then uses IPIs). AMD publishes no
cycle counts; INVLPGB 100 and TLBSYNC 1500 + 1000 per socket hop are assumptions of
the same order as an IPI's one-way delivery (docs/SMP.md). The AArch64 broadcast forms
(TLBI ... IS 100, DSB ISH 1500 + 1000 per hop) take the same figures, for the same
reason: Arm publishes no cycle counts for them either; they are assumptions too.
 *
 * "tiny" is a teaching machine: 64 MiB of RAM, a 16-entry fully associative data TLB of
 * 4 KiB pages (the TLB of the Silberschatz "virtual memory manager" project), an 8-entry
 * iTLB, no L2 TLB and no page-walk cache, so every miss walks all levels.
 *
 * "sifive-u74" models a SiFive U74-MC core complex (4 U74 application cores, RV64GC,
 * Sv39 only: `arch` riscv64, 3 levels). The public figure used is that of its sibling
 * the U54 (Microchip PolarFire SoC documentation, "MMU": "Both instruction and data
 * address translation caches are fully associative, and have 32 entries. The MMU
 * supports 2 MB megapages and 1 GB gigapages"): L1 iTLB and dTLB of 32 entries, fully
 * associative, holding every page size. ASSUMED, not found in a manual we could check:
 * a unified 512-entry direct-mapped L2 TLB (the U7 series' figure as commonly quoted)
 * and no page-walk cache, so every L2 miss walks the three levels; 8 GiB of RAM (a
 * VisionFive 2 / HiFive Unmatched class board); the cycle costs are skylake's round
 * figures. The U54 document also says its cores do not set A/D in hardware (Svade);
 * vmsim's cores implement Svadu (menvcfg.ADUE), which the kernel turns on.
 *
 * "cortex-a76" models an Arm Cortex-A76 core (an AArch64 machine: src/arch/aarch64).
 * TLB geometry from the Arm Cortex-A76 Core Technical Reference Manual (100798_0300),
 * §A5.2 "TLB organization": instruction L1 TLB 48 entries, fully associative, 4 KB …
 * 2 MB and 32 MB granules (1 GB blocks are broken down); data L1 TLB 48 entries, fully
 * associative, 4 KB … 2 MB and 512 MB (no 1 GB); L2 TLB 1280 entries, 5-way, every
 * block size, "usually three cycles". The TRM keeps walk-cache entries in the L2 TLB
 * without giving their number: the PWC below is the Skylake estimate, an assumption.
 * RAM, cores and the other costs are Skylake's; PA size 40 bits (the A76's). The kernel
 * boots it with FEAT_HAFDBS on (TCR_EL1.HA, HD), as Linux does on this core. No
 * INVLPGB (an AMD instruction): the kernel's shootdowns are TLBI … IS + DSB ISH, as
 * Linux's arm64 port issues them (no FEAT_TLBIRANGE on the A76: one TLBI per page).
 */
#include <string.h>

#include "vmsim/arch/riscv64.h"

#include "util/util.h"
#include "vmsim/machine.h"

#define SZ(s) VMS_TLB_SIZE_BIT(VMS_PG_##s)

static void skylake(vms_machine_config *c)
{
    c->name = "skylake";
    c->ram_bytes = UINT64_C(4) << 30;
    c->ncores = 4;
    c->sockets = 1;
    c->invlpgb_max = 8;
    c->levels = 4;
    c->maxphyaddr = 46;
    c->mmu.l1i = (vms_tlb_config){2, {{SZ(4K), 16, 8, "plru"}, {SZ(2M), 1, 8, "plru"}}};
    c->mmu.l1d = (vms_tlb_config){
        3, {{SZ(4K), 16, 4, "plru"}, {SZ(2M), 8, 4, "plru"}, {SZ(1G), 1, 4, "plru"}}};
    c->mmu.l2 = (vms_tlb_config){2, {{SZ(4K) | SZ(2M), 128, 12, "plru"}, {SZ(1G), 4, 4, "plru"}}};
    c->mmu.pwc.level[2] = (vms_pwc_level_config){32, 4, "lru"};
    c->mmu.pwc.level[3] = (vms_pwc_level_config){4, 4, "lru"};
    c->mmu.pwc.level[4] = (vms_pwc_level_config){2, 2, "lru"};
    c->mmu.pwc.level[5] = (vms_pwc_level_config){2, 2, "lru"};
    c->cost = (vms_cost_config){.l1_hit = 1,
                                .l2_hit = 9,
                                .walk_ref = 25,
                                .pwc_hit = 1,
                                .ad_write = 25,
                                .fault = 500,
                                .mem_access = 0,
                                .invlpg = 200,
                                .cr3_load = 200,
                                .interrupt = 500,
                                .invlpgb = 100,
                                .tlbsync = 1500,
                                .tlbsync_hop = 1000,
                                .tlbi_is = 100,
                                .dsb_ish = 1500,
                                .dsb_ish_hop = 1000};
}

static void tiny(vms_machine_config *c)
{
    skylake(c);
    c->name = "tiny";
    c->ram_bytes = UINT64_C(64) << 20;
    c->ncores = 1;
    c->mmu.l1i = (vms_tlb_config){1, {{SZ(4K), 1, 8, "lru"}}};
    c->mmu.l1d = (vms_tlb_config){1, {{SZ(4K), 1, 16, "lru"}}};
    c->mmu.l2 = (vms_tlb_config){0, {{0, 0, 0, NULL}}};
    memset(&c->mmu.pwc, 0, sizeof c->mmu.pwc);
}

static void sifive_u74(vms_machine_config *c)
{
    skylake(c);
    c->name = "sifive-u74";
    c->ram_bytes = UINT64_C(8) << 30;
    c->ncores = 4;
    c->fmt = vms_format_riscv64(3);
    c->levels = 3;
    c->maxphyaddr = 48;
    c->mmu.l1i = (vms_tlb_config){1, {{VMS_TLB_SIZES_ALL, 1, 32, "lru"}}};
    c->mmu.l1d = (vms_tlb_config){1, {{VMS_TLB_SIZES_ALL, 1, 32, "lru"}}};
    c->mmu.l2 = (vms_tlb_config){1, {{VMS_TLB_SIZES_ALL, 512, 1, "lru"}}};
    memset(&c->mmu.pwc, 0, sizeof c->mmu.pwc);
}

static void cortex_a76(vms_machine_config *c)
{
    skylake(c);
    c->name = "cortex-a76";
    c->fmt = vms_format_find("aarch64");
    c->maxphyaddr = 40;
    c->invlpgb_max = 0; /* no INVLPGB on Arm: its broadcast is TLBI … IS */
    c->mmu.l1i = (vms_tlb_config){1, {{SZ(4K) | SZ(2M), 1, 48, "lru"}}};
    c->mmu.l1d = (vms_tlb_config){1, {{SZ(4K) | SZ(2M), 1, 48, "lru"}}};
    c->mmu.l2 = (vms_tlb_config){1, {{SZ(4K) | SZ(2M) | SZ(1G), 256, 5, "lru"}}};
    c->cost.l2_hit = 3;
}

static const struct {
    const char *name;
    void (*fill)(vms_machine_config *);
} presets[] = {
    {"skylake", skylake},
    {"tiny", tiny},
    {"sifive-u74", sifive_u74},
    {"cortex-a76", cortex_a76},
};

#define NPRESETS (sizeof presets / sizeof presets[0])

unsigned vms_machine_npresets(void)
{
    return (unsigned)NPRESETS;
}

const char *vms_machine_preset_name(unsigned i)
{
    return i < NPRESETS ? presets[i].name : NULL;
}

vms_status vms_machine_preset(const char *name, vms_machine_config *cfg, vms_err *err)
{
    for (unsigned i = 0; i < NPRESETS; i++) {
        if (strcmp(presets[i].name, name) == 0) {
            memset(cfg, 0, sizeof *cfg);
            cfg->seed = 1;
            presets[i].fill(cfg);
            /* Caches and DRAM off (the keys `cache` and `dram` turn them on), with the
             * geometry their sub-keys edit filled in. */
            vms_cache_preset("off", &cfg->cache, NULL);
            vms_dram_preset("off", &cfg->dram, NULL);
            /* A hardware TLB; tlb.mode = software gets a JTLB of the R4000's 48 entries
             * (MIPS R4000 Microprocessor User's Manual, ch. 4: "48 entries, each of which
             * maps a pair of pages") and no wired entries. */
            cfg->mmu.swtlb = (vms_swtlb_config){false, 48, 0};
            return VMS_OK;
        }
    }
    return vmsi_err(err, VMS_ERR_NOTFOUND,
                    "unknown preset '%s' (expected one of: skylake, tiny, sifive-u74, cortex-a76)",
                    name);
}
