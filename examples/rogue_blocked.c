/*
 * rogue_blocked.c — the rogue device of rogue_no_iommu.c, on a machine with an IOMMU.
 *
 * The kernel gives the device a domain whose tables map only its own buffer. Its DMA to
 * the process's page-table entry and to the process's data is blocked: the IOMMU finds
 * no mapping, moves no byte and logs a fault (printed below the way Linux's DMAR driver
 * prints them). Memory and the process's translation are unchanged. Public API only.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmsim/dev.h"
#include "vmsim/pt.h"

#define VA       UINT64_C(0x400000)
#define MINE     UINT64_C(0x500000)
#define EVIL     UINT64_C(0x600000)
#define DEV_BUF  UINT64_C(0x700000) /* the one frame the device may use … */
#define DEV_IOVA UINT64_C(0x1000)   /* … at this I/O virtual address */

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

static void check(vms_status st, const char *what, const vms_err *err)
{
    if (st != VMS_OK) {
        fprintf(stderr, "rogue_blocked: %s: %s\n", what, err->msg);
        exit(1);
    }
}

int main(void)
{
    vms_err err = {0};
    vms_machine_config mc;
    vms_machine *m;
    vms_iommu_config ic;
    vms_iommu *io;
    check(vms_machine_preset("tiny", &mc, &err), "preset", &err);
    check(vms_machine_create(NULL, &mc, &m, &err), "machine", &err);
    vms_iommu_config_default(&ic);
    check(vms_iommu_create(m, &ic, &io, &err), "iommu", &err);
    vms_ram *ram = vms_machine_ram(m);
    vms_bus *bus = vms_machine_bus(m);
    vms_core *c = vms_machine_core(m, 0);
    vms_pt_ops ops = {alloc_table, free_table, ram};

    vms_pt pt; /* the process */
    check(vms_pt_init(&pt, bus, 4, &ops, &err), "tables", &err);
    check(vms_pt_map(&pt, VA, MINE, VMS_PG_4K, VMS_PTE_US | VMS_PTE_RW, &err), "map", &err);
    vms_ram_write(ram, MINE, "my secret data", 15);
    vms_core_write_cr3(c, pt.root);
    vms_core_set_user(c, true);
    uint64_t pte = 0, ptep = 0, pa = 0;
    vms_pt_lookup(&pt, VA, &pte, &ptep, NULL);
    printf("1. A process maps va 0x%" PRIx64 " -> pa 0x%" PRIx64 "; its PTE is at pa 0x%" PRIx64
           ".\n",
           VA, MINE, ptep);

    vms_pt dpt; /* the device's I/O address space: one page */
    vms_dev *rogue;
    vms_dev_config dc = {"rogue", vms_bdf_make(0, 9, 0), 0};
    check(vms_pt_init(&dpt, bus, 4, &ops, &err), "iommu tables", &err);
    check(vms_pt_map(&dpt, DEV_IOVA, DEV_BUF, VMS_PG_4K, VMS_PTE_US | VMS_PTE_RW, &err),
          "iommu map", &err);
    vms_iommu_context ctx = {VMS_IOMMU_TRANSLATE, 2, dpt.root, 4};
    check(vms_iommu_set_context(io, dc.bdf, &ctx, &err), "context", &err);
    check(vms_dev_create(m, io, &dc, &rogue, &err), "device", &err);
    printf("2. The IOMMU is on. Device 00:09.0 is in domain 2, which maps only iova 0x%" PRIx64
           " -> pa 0x%" PRIx64 ".\n",
           DEV_IOVA, DEV_BUF);

    const char hello[] = "legit DMA";
    vms_dma_result r =
        vms_dev_dma(rogue, DEV_IOVA, (void *)(uintptr_t)hello, sizeof hello, VMS_ACC_WRITE);
    char seen[16] = {0};
    vms_ram_read(ram, DEV_BUF, seen, sizeof hello);
    printf("3. A DMA to its own buffer: %s (pa 0x%" PRIx64 " now holds \"%s\").\n",
           r.ok ? "allowed" : "blocked", DEV_BUF, seen);

    char stolen[16] = {0};
    vms_dma_result rd = vms_dev_dma(rogue, MINE, stolen, 15, VMS_ACC_READ);
    uint64_t forged = vms_pte_mk(EVIL, VMS_PTE_P | VMS_PTE_US | VMS_PTE_RW);
    vms_dma_result wr = vms_dev_dma(rogue, ptep, &forged, sizeof forged, VMS_ACC_WRITE);
    printf("4. It tries to read 0x%" PRIx64 " (the secret): %s, %zu bytes moved.\n", MINE,
           rd.ok ? "allowed" : "blocked", rd.done);
    printf("5. It tries to write a forged PTE at 0x%" PRIx64 ": %s, %zu bytes moved.\n", ptep,
           wr.ok ? "allowed" : "blocked", wr.done);

    printf("6. The IOMMU's fault log (%u records):\n", vms_iommu_fault_count(io));
    for (unsigned i = 0; i < vms_iommu_fault_count(io); i++) {
        vms_iommu_fault f;
        vms_strbuf sb;
        vms_strbuf_init(&sb, NULL);
        vms_iommu_fault_get(io, i, &f);
        vms_iommu_fault_format(&f, &sb);
        printf("   %s\n", vms_strbuf_str(&sb));
        vms_strbuf_free(&sb);
    }

    uint64_t after = 0;
    vms_fault flt;
    vms_pt_read(&pt, ptep, &after);
    vms_core_write_cr3(c, pt.root);
    bool same = vms_core_translate(c, VA, VMS_ACC_READ, NULL, &pa, &flt, NULL) && pa == MINE;
    printf("7. The PTE is still 0x%016" PRIx64 " (%s); after a TLB flush va 0x%" PRIx64
           " -> pa 0x%" PRIx64 " (%s).\n",
           after, after == pte ? "unchanged" : "CHANGED", VA, pa, same ? "unchanged" : "CHANGED");

    int ok = r.ok && !rd.ok && !wr.ok && rd.done == 0 && wr.done == 0 && after == pte && same &&
             vms_iommu_fault_count(io) == 2 && stolen[0] == 0;
    vms_dev_destroy(rogue);
    vms_iommu_destroy(io);
    vms_machine_destroy(m);
    return ok ? 0 : 1;
}
