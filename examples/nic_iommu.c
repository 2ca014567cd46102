/*
 * nic_iommu.c — a NIC receives a packet into memory by DMA, through the IOMMU.
 *
 * Step by step: the kernel gives the NIC an I/O address space (IOMMU tables in RAM),
 * programs the NIC's registers through an uncached mapping of the device window, a
 * packet arrives, the NIC moves it into RAM by DMA (every access translated by the
 * IOMMU), and the core counts the interrupt. Public API only.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmsim/dev.h"
#include "vmsim/pt.h"

#define RING_PA   UINT64_C(0x200000) /* the descriptor ring's frame */
#define BUF_PA    UINT64_C(0x201000) /* the receive buffer's frame */
#define RING_IOVA UINT64_C(0x10000)  /* … as the NIC sees them */
#define BUF_IOVA  UINT64_C(0x11000)
#define KVA       UINT64_C(0xFFFF800000000000) /* the kernel's mapping of the device window */

static uint64_t next_frame = 0x1000000; /* page-table frames come from here */

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

static void die(const char *what, const vms_err *err)
{
    fprintf(stderr, "nic_iommu: %s: %s\n", what, err ? err->msg : "failed");
    exit(1);
}

/* A 32-bit register store by the kernel, through the MMU and the PCD mapping. */
static void reg_write(vms_core *c, unsigned off, uint32_t v)
{
    if (!vms_core_access(c, KVA + off, VMS_ACC_WRITE, &v, 4).ok)
        die("register write", NULL);
}

static uint32_t reg_read(vms_core *c, unsigned off)
{
    uint32_t v = 0;
    if (!vms_core_access(c, KVA + off, VMS_ACC_READ, &v, 4).ok)
        die("register read", NULL);
    return v;
}

int main(void)
{
    vms_err err = {0};
    vms_machine_config mc;
    vms_machine *m;
    vms_iommu_config ic;
    vms_iommu *io;
    vms_nic_config nc;
    vms_nic *nic;
    if (vms_machine_preset("tiny", &mc, &err) || vms_machine_create(NULL, &mc, &m, &err))
        die("machine", &err);
    vms_iommu_config_default(&ic);
    if (vms_iommu_create(m, &ic, &io, &err))
        die("iommu", &err);
    vms_nic_config_default(&nc);
    if (vms_nic_create(m, io, &nc, &nic, &err))
        die("nic", &err);
    vms_ram *ram = vms_machine_ram(m);
    vms_bus *bus = vms_machine_bus(m);
    vms_core *core = vms_machine_core(m, 0);
    vms_pt_ops ops = {alloc_table, free_table, ram};
    vms_bdf bdf = vms_dev_bdf(vms_nic_dev(nic));

    printf("1. The NIC (requester ID %02x:%02x.%x) sits at 0x%" PRIx64 " on the bus.\n",
           vms_bdf_bus(bdf), vms_bdf_dev(bdf), vms_bdf_fn(bdf), nc.dev.mmio_base);

    /* The kernel's own page tables: the device window mapped PCD|PWT, supervisor only. */
    vms_pt kpt;
    if (vms_pt_init(&kpt, bus, 4, &ops, &err) ||
        vms_pt_map(&kpt, KVA, nc.dev.mmio_base, VMS_PG_4K, VMS_PTE_RW | VMS_PTE_PCD | VMS_PTE_PWT,
                   &err))
        die("kernel mapping", &err);
    vms_core_write_cr3(core, kpt.root);
    printf("2. The kernel maps the window at 0x%" PRIx64 " uncached (PCD|PWT).\n", KVA);

    /* The NIC's I/O address space: two pages, read/write (US = read, RW = write). */
    vms_pt iopt;
    if (vms_pt_init(&iopt, bus, 4, &ops, &err) ||
        vms_pt_map(&iopt, RING_IOVA, RING_PA, VMS_PG_4K, VMS_PTE_US | VMS_PTE_RW, &err) ||
        vms_pt_map(&iopt, BUF_IOVA, BUF_PA, VMS_PG_4K, VMS_PTE_US | VMS_PTE_RW, &err))
        die("iommu tables", &err);
    vms_iommu_context ctx = {VMS_IOMMU_TRANSLATE, 1, iopt.root, 4};
    if (vms_iommu_set_context(io, bdf, &ctx, &err))
        die("context", &err);
    printf("3. IOMMU tables for domain 1 (root 0x%" PRIx64 "): iova 0x%" PRIx64 " -> 0x%" PRIx64
           " (ring), 0x%" PRIx64 " -> 0x%" PRIx64 " (buffer).\n",
           iopt.root, RING_IOVA, RING_PA, BUF_IOVA, BUF_PA);

    /* The driver: one receive descriptor, then the ring registers, then enable. */
    uint8_t raw[VMS_NIC_DESC_LEN];
    vms_nic_desc d = {.addr = BUF_IOVA};
    vms_nic_desc_pack(&d, raw);
    vms_ram_write(ram, RING_PA, raw, sizeof raw);
    reg_write(core, VMS_NIC_RDBAL, (uint32_t)RING_IOVA);
    reg_write(core, VMS_NIC_RDLEN, 4 * VMS_NIC_DESC_LEN);
    reg_write(core, VMS_NIC_RDT, 1); /* descriptor 0 belongs to the NIC */
    reg_write(core, VMS_NIC_IVEC, vms_dev_ivec(0, 0x40));
    reg_write(core, VMS_NIC_IMS, VMS_NIC_ICR_RXT0);
    reg_write(core, VMS_NIC_CTRL, VMS_NIC_CTRL_RXEN);
    printf("4. The driver programs the ring (base iova 0x%" PRIx64 ", 4 descriptors) and "
           "enables receive: STATUS = 0x%x.\n",
           RING_IOVA, reg_read(core, VMS_NIC_STATUS));

    const char *msg = "Hello from the wire, delivered by DMA!";
    if (vms_nic_receive(nic, msg, strlen(msg) + 1, &err))
        die("receive", &err);
    const vms_iommu_stats *is = vms_iommu_get_stats(io);
    printf("5. A %zu-byte packet arrives. The NIC reads descriptor 0, writes the bytes to iova "
           "0x%" PRIx64 ", writes the descriptor back: %" PRIu64 " DMA requests translated, "
           "%" PRIu64 " IOTLB misses (walks reading %" PRIu64 " table entries), %" PRIu64
           " hits, %" PRIu64 " faults.\n",
           strlen(msg) + 1, BUF_IOVA, is->translations, is->walks, is->walk_refs,
           vms_tlb_get_stats(vms_iommu_iotlb(io))->hits, is->faults);

    printf("6. Core 0 has counted %" PRIu64 " interrupt(s); the driver reads ICR = 0x%x "
           "(RXT0).\n",
           vms_core_get_stats(core)->interrupts, reg_read(core, VMS_NIC_ICR));
    vms_ram_read(ram, RING_PA, raw, sizeof raw);
    vms_nic_desc_unpack(raw, &d);
    char buf[64] = {0};
    vms_ram_read(ram, BUF_PA, buf, d.length < sizeof buf ? d.length : sizeof buf - 1);
    printf("7. Descriptor 0: length %u, status 0x%x (DD|EOP). Buffer at pa 0x%" PRIx64 ": \"%s\"\n",
           d.length, d.status, BUF_PA, buf);

    vms_strbuf sb;
    vms_strbuf_init(&sb, NULL);
    vms_strbuf_printf(&sb, "{");
    vms_iommu_stats_json_members(io, &sb);
    vms_strbuf_printf(&sb, "}");
    printf("8. IOMMU stats: %s\n", vms_strbuf_str(&sb));
    vms_strbuf_free(&sb);

    int ok = strcmp(buf, msg) == 0 && d.status == (VMS_NIC_RXD_DD | VMS_NIC_RXD_EOP) &&
             vms_core_get_stats(core)->interrupts == 1 && is->faults == 0;
    vms_nic_destroy(nic);
    vms_iommu_destroy(io);
    vms_machine_destroy(m);
    return ok ? 0 : 1;
}
