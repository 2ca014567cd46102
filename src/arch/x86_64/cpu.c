/*
 * x86_64/cpu.c — the kernel's MMU operations (format.h vms_mmu_ops) as x86-64
 * instructions, on the control registers and invalidations of src/hw/cpu.c:
 *
 *   boot             MOV CR3 = root (PCID 0), then MOV CR4 with PCIDE = asids
 *   load_root        MOV CR3 = root | PCID, bit 63 (no flush) unless flush
 *   flush_page       INVLPG va (current PCID and globals)
 *   flush_page_asid  INVPCID type 0 (va in one PCID, globals kept)
 *   flush_asid       INVPCID type 1 (every non-global entry of one PCID)
 *   flush_all        INVPCID type 2 (everything, globals included)
 *   has_broadcast    the machine has INVLPGB (invlpgb_max > 0: AMD Zen 3 and later)
 *   flush_broadcast  INVLPGB VA|PCID for up to invlpgb_max pages per instruction, or
 *                    INVLPGB PCID for the whole PCID (AMD APM Vol. 3 "INVLPGB")
 *   sync             TLBSYNC
 */
#include "arch/x86_64/x86_64.h"
#include "hw/core_impl.h"
#include "vmsim/core.h"

static vms_status x86_boot(vms_core *c, uint64_t root, bool asids)
{
    vms_core_write_cr3(c, root);
    uint64_t cr4 = vms_core_regs(c)->cr4;
    cr4 = asids ? (cr4 | VMS_CR4_PCIDE) : (cr4 & ~VMS_CR4_PCIDE);
    return vms_core_write_cr4(c, cr4);
}

static void x86_load_root(vms_core *c, uint64_t root, uint32_t asid, bool flush)
{
    vms_core_write_cr3(c, root | (asid & VMS_CR3_PCID_MASK) | (flush ? 0 : VMS_CR3_NOFLUSH));
}

static void x86_flush_page(vms_core *c, uint64_t va)
{
    vms_core_invlpg(c, va);
}

static void x86_flush_page_asid(vms_core *c, uint32_t asid, uint64_t va)
{
    vms_core_invpcid(c, VMS_INVPCID_ADDR, (uint16_t)asid, va);
}

static void x86_flush_asid(vms_core *c, uint32_t asid)
{
    vms_core_invpcid(c, VMS_INVPCID_CONTEXT, (uint16_t)asid, 0);
}

static void x86_flush_all(vms_core *c)
{
    vms_core_invpcid(c, VMS_INVPCID_ALL_GLOBAL, 0, 0);
}

/* INVLPGB is the machine's, and not a guest's: a hypervisor does not advertise it to a
 * VM (KVM leaves X86_FEATURE_INVLPGB out of the guest's CPUID), so a guest kernel's
 * shootdowns are IPIs to its vCPUs. (Here a guest's INVLPGB would drop host-tagged
 * entries on every core and none of the VM's, which left a multi-vCPU guest's composed
 * entries stale after munmap.) */
static bool x86_has_broadcast(const vms_core *c)
{
    return c->m->cfg.invlpgb_max > 0 && c->vm == 0;
}

/* INVLPGB by (address, PCID), invlpgb_max pages per instruction, or by PCID. */
static unsigned x86_flush_broadcast(vms_core *c, uint32_t asid, uint64_t va, uint64_t npages)
{
    unsigned max = c->m->cfg.invlpgb_max, n = 0;
    uint16_t pcid = (uint16_t)(asid & VMS_CR3_PCID_MASK);
    if (max == 0)
        return 0;
    if (npages == 0) {
        vms_core_invlpgb(c, VMS_INVLPGB_PCID, 0, pcid, 0);
        return 1;
    }
    for (uint64_t left = npages; left; n++) {
        unsigned cnt = left < max ? (unsigned)left : max;
        vms_core_invlpgb(c, VMS_INVLPGB_VA | VMS_INVLPGB_PCID, va, pcid, cnt - 1);
        va += (uint64_t)cnt << VMS_PAGE_SHIFT;
        left -= cnt;
    }
    return n;
}

static uint64_t x86_sync(vms_core *c)
{
    return vms_core_tlbsync(c);
}

const vms_mmu_ops vmsi_x86_mmu_ops = {
    .boot = x86_boot,
    .load_root = x86_load_root,
    .flush_page = x86_flush_page,
    .flush_page_asid = x86_flush_page_asid,
    .flush_asid = x86_flush_asid,
    .flush_all = x86_flush_all,
    .has_broadcast = x86_has_broadcast,
    .flush_broadcast = x86_flush_broadcast,
    .sync = x86_sync,
};
