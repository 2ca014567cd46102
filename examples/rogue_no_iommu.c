/*
 * rogue_no_iommu.c — without an IOMMU, a device reaches any physical address: a rogue
 * device overwrites a process's page-table entry, and the CPU follows it.
 *
 * Seed 000: "Devices use physical addresses. A device configured with an address can
 * access any physical memory, including kernel data structures and page tables."
 * The same device, with the IOMMU on, is stopped: see rogue_blocked.c. Public API only.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmsim/dev.h"
#include "vmsim/pt.h"

#define VA   UINT64_C(0x400000) /* the process's page */
#define MINE UINT64_C(0x500000) /* its frame */
#define EVIL UINT64_C(0x600000) /* a frame the attacker controls */

static uint64_t next_frame = 0x1000000;

static vms_status alloc_table(void *ud, uint64_t *pa)
{
    *pa = next_frame;
    next_frame += VMS_PAGE_SIZE;
    return vms_ram_fill(ud, *pa, 0, VMS_PAGE_SIZE);
}

static void free_table(void *ud, uint64_t pa)
{
    (void)ud;
    (void)pa;
}

/* What the process sees at VA: the physical address and the first bytes. */
static void show(vms_core *c, const char *when)
{
    uint64_t pa = 0;
    vms_fault flt;
    char data[16] = {0};
    vms_walk_trace tr;
    bool ok = vms_core_translate(c, VA, VMS_ACC_READ, NULL, &pa, &flt, &tr);
    vms_core_access(c, VA, VMS_ACC_READ, data, 15);
    printf("   %s: va 0x%" PRIx64 " -> pa 0x%" PRIx64 " (%s), reads \"%s\"\n", when, VA,
           ok ? pa : 0, tr.nsteps ? "page walk" : "TLB hit", data);
}

int main(void)
{
    vms_err err = {0};
    vms_machine_config mc;
    vms_machine *m;
    if (vms_machine_preset("tiny", &mc, &err) || vms_machine_create(NULL, &mc, &m, &err)) {
        fprintf(stderr, "machine: %s\n", err.msg);
        return 1;
    }
    vms_ram *ram = vms_machine_ram(m);
    vms_core *c = vms_machine_core(m, 0);
    vms_pt_ops ops = {alloc_table, free_table, ram};
    vms_pt pt;
    if (vms_pt_init(&pt, vms_machine_bus(m), 4, &ops, &err) ||
        vms_pt_map(&pt, VA, MINE, VMS_PG_4K, VMS_PTE_US | VMS_PTE_RW, &err)) {
        fprintf(stderr, "tables: %s\n", err.msg);
        return 1;
    }
    vms_ram_write(ram, MINE, "my secret data", 15);
    vms_ram_write(ram, EVIL, "attacker data!", 15);
    vms_core_write_cr3(c, pt.root);
    vms_core_set_user(c, true);

    printf("1. A process maps va 0x%" PRIx64 " to frame 0x%" PRIx64 ". The machine has no "
           "IOMMU.\n",
           VA, MINE);
    show(c, "before");
    uint64_t pte = 0, ptep = 0;
    vms_pt_lookup(&pt, VA, &pte, &ptep, NULL);
    printf("2. Its PTE lives in RAM at pa 0x%" PRIx64 ": 0x%016" PRIx64 ".\n", ptep, pte);

    vms_dev *rogue;
    vms_dev_config dc = {"rogue", vms_bdf_make(0, 9, 0), 0};
    if (vms_dev_create(m, NULL, &dc, &rogue, &err)) {
        fprintf(stderr, "device: %s\n", err.msg);
        return 1;
    }
    char stolen[16] = {0};
    vms_dma_result r = vms_dev_dma(rogue, MINE, stolen, 15, VMS_ACC_READ);
    printf("3. A rogue device (00:09.0) DMA-reads pa 0x%" PRIx64 ": %s, it got \"%s\".\n", MINE,
           r.ok ? "allowed" : "blocked", stolen);
    uint64_t forged = vms_pte_mk(EVIL, VMS_PTE_P | VMS_PTE_US | VMS_PTE_RW);
    r = vms_dev_dma(rogue, ptep, &forged, sizeof forged, VMS_ACC_WRITE);
    vms_pt_read(&pt, ptep, &pte);
    printf("4. It DMA-writes a forged PTE at pa 0x%" PRIx64 ": %s. The PTE is now "
           "0x%016" PRIx64 ".\n",
           ptep, r.ok ? "allowed" : "blocked", pte);
    show(c, "TLB still holds the old entry");
    vms_core_write_cr3(c, pt.root);
    printf("5. A context switch reloads CR3 and flushes the TLB:\n");
    show(c, "after");

    uint64_t pa = 0;
    vms_fault flt;
    bool hijacked = vms_core_translate(c, VA, VMS_ACC_READ, NULL, &pa, &flt, NULL) && pa == EVIL;
    printf("6. %s\n", hijacked ? "The process now reads and writes the attacker's frame. "
                                 "An IOMMU would have stopped both DMAs (rogue_blocked)."
                               : "Unexpected: the translation did not change.");
    vms_dev_destroy(rogue);
    vms_machine_destroy(m);
    return hijacked && strcmp(stolen, "my secret data") == 0 ? 0 : 1;
}
