/*
 * test_dev.c — devices (dev.h): MMIO side effects through the bus and through a
 * kernel-style PCD mapping on a core (TLB-cached too), the NIC's receive and transmit
 * rings by DMA with interrupts counted, packets from a file (and garbage), the block
 * device on a temporary copy of a host file, a rogue device overwriting a page-table
 * entry without an IOMMU and stopped by one, passthrough, re-entrant DMA into a
 * device's own registers, and allocation failures.
 */
#define _POSIX_C_SOURCE 200809L /* mkstemp, write, close */

#include <stdio.h>
#include <unistd.h>

#include "harness.h"
#include "vmsim/dev.h"
#include "vmsim/pt.h"
#include "vmsim/rng.h"

/* REQUIRE for void test functions: count a failure and leave the test. */
#define NEED(cond)                                                                                 \
    do {                                                                                           \
        if (cond) {                                                                                \
            th_passed++;                                                                           \
        } else {                                                                                   \
            th_failed++;                                                                           \
            fprintf(stderr, "%s:%d: NEED failed: %s\n", __FILE__, __LINE__, #cond);                \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/* ---- fixtures ------------------------------------------------------------------------ */

#define NIC      VMS_DEVICE_WINDOW_BASE
#define DISK     (VMS_DEVICE_WINDOW_BASE + 0x100)
#define RING_PA  UINT64_C(0x200000) /* descriptors, then buffers (one page each) */
#define BUF_PA   (RING_PA + 0x1000)
#define IOVA_OFF UINT64_C(0x10000)            /* with an IOMMU, iova = pa - RING_PA + IOVA_OFF */
#define KVA      UINT64_C(0xFFFF800000000000) /* the kernel's mapping of the device window */
#define R        VMS_PTE_US
#define W        VMS_PTE_RW

typedef struct fixture {
    vms_machine *m;
    vms_bus *bus;
    vms_ram *ram;
    vms_core *c;
    vms_iommu *io; /* NULL unless fx_iommu */
    vms_pt_bump b;
    vms_pt pt;     /* the CPU's tables */
    vms_pt iopt;   /* the NIC's IOMMU tables */
    unsigned irqs; /* calls of the interrupt hook */
    uint8_t last_vector;
} fixture;

static bool fx_init(fixture *f, const vms_allocator *a)
{
    vms_machine_config mc;
    memset(f, 0, sizeof *f);
    vms_machine_preset("tiny", &mc, NULL);
    if (vms_machine_create(a, &mc, &f->m, NULL) != VMS_OK)
        return false;
    f->bus = vms_machine_bus(f->m);
    f->ram = vms_machine_ram(f->m);
    f->c = vms_machine_core(f->m, 0);
    f->b = (vms_pt_bump){f->ram, UINT64_C(0x1000000), 0, 0, 0};
    vms_pt_ops ops = vms_pt_bump_ops(&f->b);
    if (vms_pt_init(&f->pt, f->bus, 4, &ops, NULL) != VMS_OK)
        return false;
    vms_core_write_cr3(f->c, f->pt.root);
    return true;
}

/* Add an IOMMU whose domain 1 maps 16 pages at IOVA_OFF to RING_PA read/write. */
static bool fx_iommu(fixture *f)
{
    vms_iommu_config cfg;
    vms_iommu_config_default(&cfg);
    if (vms_iommu_create(f->m, &cfg, &f->io, NULL) != VMS_OK)
        return false;
    vms_pt_ops ops = vms_pt_bump_ops(&f->b);
    if (vms_pt_init(&f->iopt, f->bus, 4, &ops, NULL) != VMS_OK)
        return false;
    for (uint64_t p = 0; p < 16; p++)
        vms_pt_map(&f->iopt, IOVA_OFF + p * 4096, RING_PA + p * 4096, VMS_PG_4K, R | W, NULL);
    return true;
}

static vms_status fx_attach(fixture *f, vms_bdf bdf)
{
    vms_iommu_context c = {VMS_IOMMU_TRANSLATE, 1, f->iopt.root, 4};
    return vms_iommu_set_context(f->io, bdf, &c, NULL);
}

static void fx_fini(fixture *f)
{
    vms_iommu_destroy(f->io);
    vms_machine_destroy(f->m);
}

static void on_irq(void *ud, vms_dev *dev, unsigned core, uint8_t vector)
{
    fixture *f = ud;
    (void)dev;
    (void)core;
    f->irqs++;
    f->last_vector = vector;
}

/* The device address of physical address pa in this fixture. */
static uint64_t dva(const fixture *f, uint64_t pa)
{
    return f->io ? pa - RING_PA + IOVA_OFF : pa;
}

static void wr(fixture *f, uint64_t pa, uint32_t v)
{
    vms_bus_write(f->bus, pa, &v, 4);
}

static uint32_t rd(fixture *f, uint64_t pa)
{
    uint32_t v = 0;
    vms_bus_read(f->bus, pa, &v, 4);
    return v;
}

static vms_nic_desc get_desc(fixture *f, uint64_t ring_pa, unsigned i)
{
    uint8_t raw[16];
    vms_nic_desc d;
    vms_ram_read(f->ram, ring_pa + 16u * i, raw, 16);
    vms_nic_desc_unpack(raw, &d);
    return d;
}

static void put_desc(fixture *f, uint64_t ring_pa, unsigned i, const vms_nic_desc *d)
{
    uint8_t raw[16];
    vms_nic_desc_pack(d, raw);
    vms_ram_write(f->ram, ring_pa + 16u * i, raw, 16);
}

/* What a driver does: an RX ring of n descriptors at RING_PA, buffer i at BUF_PA + i
 * pages, all given to the NIC but one (tail = n - 1), interrupts to core 0 vector 0x40. */
static void nic_rx_setup(fixture *f, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        vms_nic_desc d = {.addr = dva(f, BUF_PA + i * UINT64_C(4096))};
        put_desc(f, RING_PA, i, &d);
    }
    wr(f, NIC + VMS_NIC_RDBAL, (uint32_t)dva(f, RING_PA));
    wr(f, NIC + VMS_NIC_RDBAH, 0);
    wr(f, NIC + VMS_NIC_RDLEN, 16 * n);
    wr(f, NIC + VMS_NIC_RDT, n - 1);
    wr(f, NIC + VMS_NIC_IVEC, vms_dev_ivec(0, 0x40));
    wr(f, NIC + VMS_NIC_IMS, VMS_NIC_ICR_RXT0 | VMS_NIC_ICR_TXDW | VMS_NIC_ICR_DMAE);
    wr(f, NIC + VMS_NIC_CTRL, VMS_NIC_CTRL_RXEN | VMS_NIC_CTRL_TXEN);
}

static vms_nic *mk_nic(fixture *f, unsigned qlen)
{
    vms_nic_config cfg;
    vms_nic_config_default(&cfg);
    cfg.rx_queue_len = qlen;
    vms_nic *nic = NULL;
    if (vms_nic_create(f->m, f->io, &cfg, &nic, NULL) != VMS_OK)
        return NULL;
    vms_dev_set_irq_hook(vms_nic_dev(nic), on_irq, f);
    return nic;
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 31 + seed);
}

/* ---- MMIO ---------------------------------------------------------------------------- */

static void test_mmio_bus(void)
{
    fixture f;
    NEED(fx_init(&f, NULL));
    vms_nic *nic = mk_nic(&f, 0);
    NEED(nic != NULL);
    uint64_t frames = vms_ram_resident_frames(f.ram);
    vms_region r = vms_bus_decode(f.bus, NIC + 8);
    CHECK_EQ(r.kind, VMS_REGION_MMIO);
    CHECK_STR(r.name, "nic");
    /* A read returns status, a write changes the device; nothing reaches RAM. */
    CHECK_EQ(rd(&f, NIC + VMS_NIC_STATUS), VMS_NIC_STATUS_LU);
    wr(&f, NIC + VMS_NIC_CTRL, VMS_NIC_CTRL_RXEN);
    CHECK_EQ(rd(&f, NIC + VMS_NIC_STATUS), VMS_NIC_STATUS_LU | VMS_NIC_STATUS_RXEN);
    wr(&f, NIC + VMS_NIC_STATUS, 0); /* read-only: ignored */
    CHECK_EQ(rd(&f, NIC + VMS_NIC_STATUS), VMS_NIC_STATUS_LU | VMS_NIC_STATUS_RXEN);
    /* No ring and no queue: a packet is dropped and the cause is read-to-clear. */
    uint8_t pkt[60] = {0};
    CHECK_EQ(vms_nic_receive(nic, pkt, sizeof pkt, NULL), VMS_OK);
    CHECK_EQ(rd(&f, NIC + VMS_NIC_MPC), 1);
    CHECK_EQ(rd(&f, NIC + VMS_NIC_ICR), VMS_NIC_ICR_RXO);
    CHECK_EQ(rd(&f, NIC + VMS_NIC_ICR), 0);
    /* An 8-byte write is two registers, low first. */
    uint64_t base = UINT64_C(0x1234567800001230);
    CHECK_EQ(vms_bus_write(f.bus, NIC + VMS_NIC_RDBAL, &base, 8), VMS_OK);
    CHECK_EQ(rd(&f, NIC + VMS_NIC_RDBAH), 0x12345678);
    CHECK_EQ(rd(&f, NIC + VMS_NIC_RDBAL), 0x1230);
    uint64_t back = 0;
    CHECK_EQ(vms_bus_read(f.bus, NIC + VMS_NIC_RDBAL, &back, 8), VMS_OK);
    CHECK_EQ(back, base);
    /* Byte accesses are refused; unknown registers read 0. */
    uint8_t byte = 0;
    CHECK_EQ(vms_bus_read(f.bus, NIC + VMS_NIC_STATUS, &byte, 1), VMS_ERR_BUS);
    CHECK_EQ(vms_bus_write(f.bus, NIC + VMS_NIC_CTRL, &byte, 1), VMS_ERR_BUS);
    CHECK_EQ(rd(&f, NIC + 0xFC), 0);
    CHECK_EQ(vms_ram_resident_frames(f.ram), frames);
    CHECK_EQ(vms_dev_get_stats(vms_nic_dev(nic))->mmio_writes, 4); /* the byte was refused */
    /* Reset. */
    wr(&f, NIC + VMS_NIC_CTRL, VMS_NIC_CTRL_RST);
    CHECK_EQ(rd(&f, NIC + VMS_NIC_RDBAH), 0);
    CHECK_EQ(rd(&f, NIC + VMS_NIC_RBSZ), 2048);
    /* The window is taken; destroying the NIC frees it. */
    vms_nic *two = NULL;
    vms_nic_config cfg;
    vms_nic_config_default(&cfg);
    vms_err err = {0};
    CHECK_EQ(vms_nic_create(f.m, NULL, &cfg, &two, &err), VMS_ERR_EXISTS);
    CHECK(two == NULL);
    cfg.dev.mmio_base = NIC + 4;
    CHECK_EQ(vms_nic_create(f.m, NULL, &cfg, &two, &err), VMS_ERR_INVAL);
    vms_nic_destroy(nic);
    CHECK_EQ(vms_bus_decode(f.bus, NIC).kind, VMS_REGION_NONE);
    CHECK_EQ(vms_bus_read(f.bus, NIC, &back, 4), VMS_ERR_BUS);
    vms_nic_destroy(NULL);
    fx_fini(&f);
}

/* The kernel maps the device window PCD|PWT, supervisor-only, and drives the NIC with
 * ordinary loads and stores through the MMU. */
static void test_mmio_core(void)
{
    fixture f;
    NEED(fx_init(&f, NULL));
    vms_nic *nic = mk_nic(&f, 0);
    NEED(nic != NULL);
    CHECK_EQ(vms_pt_map(&f.pt, KVA, NIC, VMS_PG_4K, W | VMS_PTE_PCD | VMS_PTE_PWT, NULL), VMS_OK);
    vms_core_set_user(f.c, false);
    uint64_t frames = vms_ram_resident_frames(f.ram);
    uint32_t v = VMS_NIC_ICR_RXT0 | VMS_NIC_ICR_DMAE;
    vms_access_result r = vms_core_access(f.c, KVA + VMS_NIC_IMS, VMS_ACC_WRITE, &v, 4);
    CHECK(r.ok);
    CHECK_EQ(r.pa, NIC + VMS_NIC_IMS);
    v = 0;
    r = vms_core_access(f.c, KVA + VMS_NIC_IMS, VMS_ACC_READ, &v, 4);
    CHECK(r.ok);
    CHECK_EQ(v, VMS_NIC_ICR_RXT0 | VMS_NIC_ICR_DMAE);
    vms_xlate x;
    uint64_t pa;
    vms_fault flt;
    CHECK(vms_core_translate(f.c, KVA, VMS_ACC_READ, &x, &pa, &flt, NULL));
    CHECK(x.pcd && x.pwt);
    /* Now the translation is cached: no walk, and the write still reaches the device. */
    uint64_t refs = vms_core_walk_stats(f.c)->mem_refs;
    uint64_t writes = vms_dev_get_stats(vms_nic_dev(nic))->mmio_writes;
    v = VMS_NIC_CTRL_RXEN;
    CHECK(vms_core_access(f.c, KVA + VMS_NIC_CTRL, VMS_ACC_WRITE, &v, 4).ok);
    CHECK_EQ(vms_core_walk_stats(f.c)->mem_refs, refs);
    CHECK_EQ(vms_dev_get_stats(vms_nic_dev(nic))->mmio_writes, writes + 1);
    CHECK_EQ(rd(&f, NIC + VMS_NIC_STATUS) & VMS_NIC_STATUS_RXEN, VMS_NIC_STATUS_RXEN);
    /* An 8-byte store sets a 64-bit register pair; a byte store is a bus fault. */
    uint64_t base = UINT64_C(0xABCD00001000);
    CHECK(vms_core_access(f.c, KVA + VMS_NIC_TDBAL, VMS_ACC_WRITE, &base, 8).ok);
    CHECK_EQ(rd(&f, NIC + VMS_NIC_TDBAH), 0xABCD);
    uint8_t b = 1;
    r = vms_core_access(f.c, KVA + VMS_NIC_CTRL, VMS_ACC_WRITE, &b, 1);
    CHECK(!r.ok);
    CHECK_EQ(r.fault.kind, VMS_FAULT_BUS);
    /* The same page read through the bus shows it is not RAM: nothing was stored. */
    CHECK_EQ(vms_ram_resident_frames(f.ram), frames);
    CHECK(vms_ram_frame(f.ram, NIC >> 12, false) == NULL);
    /* A user process has no mapping of the window: a protection fault, U set. */
    vms_core_set_user(f.c, true);
    r = vms_core_access(f.c, KVA + VMS_NIC_CTRL, VMS_ACC_READ, &v, 4);
    CHECK(!r.ok);
    CHECK_EQ(r.fault.kind, VMS_FAULT_PF);
    CHECK(r.fault.error_code & VMS_PFERR_U);
    vms_nic_destroy(nic);
    fx_fini(&f);
}

/* ---- NIC receive --------------------------------------------------------------------- */

/* Receive into RAM by DMA (with or without an IOMMU), with an interrupt counted. */
static void rx_basic(bool iommu)
{
    fixture f;
    NEED(fx_init(&f, NULL));
    if (iommu)
        NEED(fx_iommu(&f));
    vms_nic *nic = mk_nic(&f, 4);
    NEED(nic != NULL);
    if (iommu)
        CHECK_EQ(fx_attach(&f, vms_dev_bdf(vms_nic_dev(nic))), VMS_OK);
    nic_rx_setup(&f, 8);
    uint8_t pkt[100], got[100];
    fill(pkt, sizeof pkt, 1);
    uint64_t cycles = vms_core_cycles(f.c);
    CHECK_EQ(vms_nic_receive(nic, pkt, sizeof pkt, NULL), VMS_OK);
    vms_ram_read(f.ram, BUF_PA, got, sizeof got);
    CHECK(memcmp(pkt, got, sizeof pkt) == 0);
    vms_nic_desc d = get_desc(&f, RING_PA, 0);
    CHECK_EQ(d.length, 100);
    CHECK_EQ(d.status, VMS_NIC_RXD_DD | VMS_NIC_RXD_EOP);
    CHECK_EQ(d.addr, dva(&f, BUF_PA));
    CHECK_EQ(rd(&f, NIC + VMS_NIC_RDH), 1);
    CHECK_EQ(rd(&f, NIC + VMS_NIC_GPRC), 1);
    CHECK_EQ(vms_core_get_stats(f.c)->interrupts, 1);
    CHECK_EQ(f.irqs, 1);
    CHECK_EQ(f.last_vector, 0x40);
    CHECK_EQ(vms_dev_get_stats(vms_nic_dev(nic))->interrupts, 1);
    CHECK_EQ(rd(&f, NIC + VMS_NIC_ICR), VMS_NIC_ICR_RXT0);
    CHECK_EQ(vms_core_cycles(f.c) - cycles, 500); /* the interrupt's cost, tiny preset */
    vms_strbuf sb;
    vms_strbuf_init(&sb, NULL);
    vms_machine_stats_json(f.m, &sb);
    CHECK(strstr(vms_strbuf_str(&sb), "\"interrupts\":1") != NULL);
    vms_strbuf_free(&sb);
    if (iommu) {
        const vms_iommu_stats *s = vms_iommu_get_stats(f.io);
        CHECK_EQ(s->translations, 3); /* descriptor read, data write, write-back */
        CHECK_EQ(s->walks, 2);        /* the ring page once, the buffer page once */
        CHECK_EQ(s->faults, 0);
    }
    vms_nic_destroy(nic);
    fx_fini(&f);
}

static void test_nic_rx(void)
{
    rx_basic(false);
    rx_basic(true);
}

static void test_nic_rx_rings(void)
{
    fixture f;
    NEED(fx_init(&f, NULL));
    vms_nic *nic = mk_nic(&f, 2);
    NEED(nic != NULL);
    nic_rx_setup(&f, 8); /* 7 descriptors owned by the NIC */
    wr(&f, NIC + VMS_NIC_RBSZ, 256);
    /* 600 bytes take three 256-byte buffers; EOP only on the last. */
    uint8_t pkt[600], got[600];
    fill(pkt, sizeof pkt, 9);
    CHECK_EQ(vms_nic_receive(nic, pkt, sizeof pkt, NULL), VMS_OK);
    for (unsigned i = 0; i < 3; i++) {
        vms_nic_desc d = get_desc(&f, RING_PA, i);
        CHECK_EQ(d.length, i < 2 ? 256 : 88);
        CHECK_EQ(d.status, i < 2 ? VMS_NIC_RXD_DD : VMS_NIC_RXD_DD | VMS_NIC_RXD_EOP);
        vms_ram_read(f.ram, BUF_PA + i * UINT64_C(4096), got + 256 * i, d.length);
    }
    CHECK(memcmp(pkt, got, sizeof pkt) == 0);
    CHECK_EQ(rd(&f, NIC + VMS_NIC_RDH), 3);
    /* 4 descriptors left: a second 600-byte packet fits, a third must wait. */
    CHECK_EQ(vms_nic_receive(nic, pkt, sizeof pkt, NULL), VMS_OK);
    CHECK_EQ(vms_nic_receive(nic, pkt, 300, NULL), VMS_OK);
    CHECK_EQ(vms_nic_rx_queued(nic), 1);
    CHECK_EQ(rd(&f, NIC + VMS_NIC_RDH), 6);
    /* Queue of 2: one more waits, the next is dropped. */
    CHECK_EQ(vms_nic_receive(nic, pkt, 10, NULL), VMS_OK);
    CHECK_EQ(vms_nic_receive(nic, pkt, 10, NULL), VMS_OK);
    CHECK_EQ(vms_nic_rx_queued(nic), 2);
    CHECK_EQ(rd(&f, NIC + VMS_NIC_MPC), 1);
    /* The driver hands the used descriptors back: the queue drains in order. */
    wr(&f, NIC + VMS_NIC_RDT, 5); /* NIC owns 6, 7, 0 … 4 */
    CHECK_EQ(vms_nic_rx_queued(nic), 0);
    CHECK_EQ(rd(&f, NIC + VMS_NIC_RDH), 1); /* 300 bytes in 6, 7; 10 bytes in 0 */
    CHECK_EQ(get_desc(&f, RING_PA, 7).length, 44);
    CHECK_EQ(get_desc(&f, RING_PA, 0).length, 10);
    CHECK_EQ(rd(&f, NIC + VMS_NIC_GPRC), 4);
    /* RX disabled: packets wait; enabling delivers them. */
    wr(&f, NIC + VMS_NIC_CTRL, VMS_NIC_CTRL_TXEN);
    CHECK_EQ(vms_nic_receive(nic, pkt, 20, NULL), VMS_OK);
    CHECK_EQ(vms_nic_rx_queued(nic), 1);
    wr(&f, NIC + VMS_NIC_CTRL, VMS_NIC_CTRL_RXEN);
    CHECK_EQ(vms_nic_rx_queued(nic), 0);
    CHECK_EQ(get_desc(&f, RING_PA, 1).length, 20);
    /* A packet bigger than the whole ring can never fit: dropped at once. */
    CHECK_EQ(vms_nic_receive(nic, pkt, 0, NULL), VMS_ERR_INVAL);
    uint8_t big[VMS_NIC_MAX_PACKET + 1];
    CHECK_EQ(vms_nic_receive(nic, big, sizeof big, NULL), VMS_ERR_INVAL);
    const vms_nic_stats *s = vms_nic_get_stats(nic);
    CHECK_EQ(s->rx_packets, 5);
    CHECK_EQ(s->rx_bytes, 600 + 600 + 300 + 10 + 20);
    CHECK_EQ(s->rx_dropped, 1);
    vms_nic_destroy(nic);
    fx_fini(&f);
}

/* The IOMMU blocks a receive into a buffer the driver unmapped. */
static void test_nic_rx_blocked(void)
{
    fixture f;
    NEED(fx_init(&f, NULL));
    NEED(fx_iommu(&f));
    vms_nic *nic = mk_nic(&f, 4);
    NEED(nic != NULL);
    vms_bdf bdf = vms_dev_bdf(vms_nic_dev(nic));
    CHECK_EQ(fx_attach(&f, bdf), VMS_OK);
    nic_rx_setup(&f, 4);
    uint64_t buf_iova = dva(&f, BUF_PA);
    vms_pt_unmap(&f.iopt, buf_iova, false, NULL);
    vms_iommu_inv_range(f.io, 1, buf_iova, 4096);
    uint8_t before[64], after[64], pkt[64];
    vms_ram_read(f.ram, BUF_PA, before, sizeof before);
    fill(pkt, sizeof pkt, 3);
    CHECK_EQ(vms_nic_receive(nic, pkt, sizeof pkt, NULL), VMS_OK);
    vms_ram_read(f.ram, BUF_PA, after, sizeof after);
    CHECK(memcmp(before, after, sizeof before) == 0);
    CHECK_EQ(rd(&f, NIC + VMS_NIC_RDH), 0); /* not consumed */
    CHECK(rd(&f, NIC + VMS_NIC_STATUS) & VMS_NIC_STATUS_DMAERR);
    CHECK_EQ(rd(&f, NIC + VMS_NIC_ICR), VMS_NIC_ICR_DMAE);
    CHECK_EQ(vms_nic_get_stats(nic)->rx_dma_errors, 1);
    CHECK_EQ(vms_core_get_stats(f.c)->interrupts, 1); /* DMAE is unmasked */
    NEED(vms_iommu_fault_count(f.io) == 1);
    vms_iommu_fault flt;
    vms_iommu_fault_get(f.io, 0, &flt);
    CHECK_EQ(flt.bdf, bdf);
    CHECK_EQ(flt.iova, buf_iova);
    CHECK_EQ(flt.kind, VMS_ACC_WRITE);
    CHECK_EQ(flt.reason, VMS_IOMMU_NOT_PRESENT);
    /* Passthrough: the NIC's addresses are physical again. */
    vms_iommu_context pass = {.mode = VMS_IOMMU_PASSTHROUGH};
    CHECK_EQ(vms_iommu_set_context(f.io, bdf, &pass, NULL), VMS_OK);
    wr(&f, NIC + VMS_NIC_CTRL, VMS_NIC_CTRL_RST);
    vms_iommu *io = f.io;
    f.io = NULL; /* descriptors now hold physical addresses */
    nic_rx_setup(&f, 4);
    f.io = io;
    CHECK_EQ(vms_nic_receive(nic, pkt, sizeof pkt, NULL), VMS_OK);
    vms_ram_read(f.ram, BUF_PA, after, sizeof after);
    CHECK(memcmp(pkt, after, sizeof pkt) == 0);
    CHECK_EQ(vms_iommu_get_stats(f.io)->passthrough, 3);
    vms_nic_destroy(nic);
    fx_fini(&f);
}

/* ---- NIC transmit -------------------------------------------------------------------- */

static void test_nic_tx(void)
{
    fixture f;
    NEED(fx_init(&f, NULL));
    NEED(fx_iommu(&f));
    vms_nic *nic = mk_nic(&f, 4);
    NEED(nic != NULL);
    CHECK_EQ(fx_attach(&f, vms_dev_bdf(vms_nic_dev(nic))), VMS_OK);
    nic_rx_setup(&f, 4);
    wr(&f, NIC + VMS_NIC_CTRL, VMS_NIC_CTRL_RXEN); /* TX off for now */
    uint64_t tring = RING_PA + 0x800;
    uint8_t a[70], b[3000];
    fill(a, sizeof a, 5);
    fill(b, sizeof b, 6);
    vms_ram_write(f.ram, BUF_PA, a, sizeof a);
    vms_ram_write(f.ram, BUF_PA + 0x1000, b, 2000);
    vms_ram_write(f.ram, BUF_PA + 0x2000, b + 2000, 1000);
    vms_nic_desc d0 = {
        .addr = dva(&f, BUF_PA), .length = 70, .cmd = VMS_NIC_TXD_CMD_EOP | VMS_NIC_TXD_CMD_RS};
    vms_nic_desc d1 = {.addr = dva(&f, BUF_PA + 0x1000), .length = 2000};
    vms_nic_desc d2 = {.addr = dva(&f, BUF_PA + 0x2000),
                       .length = 1000,
                       .cmd = VMS_NIC_TXD_CMD_EOP | VMS_NIC_TXD_CMD_RS};
    put_desc(&f, tring, 0, &d0);
    put_desc(&f, tring, 1, &d1);
    put_desc(&f, tring, 2, &d2);
    wr(&f, NIC + VMS_NIC_TDBAL, (uint32_t)dva(&f, tring));
    wr(&f, NIC + VMS_NIC_TDLEN, 16 * 8);
    wr(&f, NIC + VMS_NIC_TDT, 3);
    CHECK_EQ(vms_nic_tx_count(nic), 0); /* TXEN clear */
    wr(&f, NIC + VMS_NIC_CTRL, VMS_NIC_CTRL_RXEN | VMS_NIC_CTRL_TXEN);
    NEED(vms_nic_tx_count(nic) == 2);
    const uint8_t *data;
    size_t len;
    CHECK(vms_nic_tx_packet(nic, 0, &data, &len));
    CHECK(len == 70 && memcmp(data, a, 70) == 0);
    CHECK(vms_nic_tx_packet(nic, 1, &data, &len));
    CHECK(len == 3000 && memcmp(data, b, 3000) == 0);
    CHECK(!vms_nic_tx_packet(nic, 2, &data, &len));
    CHECK_EQ(get_desc(&f, tring, 0).status, VMS_NIC_TXD_STA_DD);
    CHECK_EQ(get_desc(&f, tring, 1).status, 0); /* no RS: no write-back */
    CHECK_EQ(get_desc(&f, tring, 2).status, VMS_NIC_TXD_STA_DD);
    CHECK_EQ(rd(&f, NIC + VMS_NIC_TDH), 3);
    CHECK_EQ(rd(&f, NIC + VMS_NIC_GPTC), 2);
    CHECK_EQ(rd(&f, NIC + VMS_NIC_ICR), VMS_NIC_ICR_TXDW);
    CHECK_EQ(vms_core_get_stats(f.c)->interrupts, 1);
    /* A transmit from an unmapped buffer is blocked: nothing sent, DMAE. */
    vms_nic_desc d3 = {.addr = 0x900000, .length = 10, .cmd = VMS_NIC_TXD_CMD_EOP};
    put_desc(&f, tring, 3, &d3);
    wr(&f, NIC + VMS_NIC_TDT, 4);
    CHECK_EQ(vms_nic_tx_count(nic), 2);
    CHECK_EQ(rd(&f, NIC + VMS_NIC_TDH), 3);
    CHECK_EQ(vms_nic_get_stats(nic)->tx_dma_errors, 1);
    CHECK_EQ(vms_iommu_fault_count(f.io), 1);
    vms_nic_tx_clear(nic);
    CHECK_EQ(vms_nic_tx_count(nic), 0);
    const vms_nic_stats *s = vms_nic_get_stats(nic);
    CHECK_EQ(s->tx_packets, 2);
    CHECK_EQ(s->tx_bytes, 3070);
    vms_nic_destroy(nic);
    fx_fini(&f);
}

/* ---- packets from a file ------------------------------------------------------------- */

/* Write text to a fresh temporary file; returns its path in buf. */
static bool tmp_text(char *buf, size_t n, const char *text, size_t len)
{
    snprintf(buf, n, "/tmp/vmsim_test_dev_XXXXXX");
    int fd = mkstemp(buf);
    if (fd < 0)
        return false;
    bool ok = write(fd, text, len) == (ssize_t)len;
    close(fd);
    return ok;
}

static void test_nic_file(void)
{
    fixture f;
    NEED(fx_init(&f, NULL));
    vms_nic *nic = mk_nic(&f, 8);
    NEED(nic != NULL);
    nic_rx_setup(&f, 8);
    char path[64];
    const char *text = "# three packets\nde ad be ef\n\n00:11:22\t# a comment\r\n0102030405";
    NEED(tmp_text(path, sizeof path, text, strlen(text)));
    unsigned n = 0;
    vms_err err = {0};
    CHECK_EQ(vms_nic_receive_file(nic, path, &n, &err), VMS_OK);
    CHECK_EQ(n, 3);
    uint8_t got[5];
    vms_ram_read(f.ram, BUF_PA, got, 4);
    CHECK(memcmp(got, "\xde\xad\xbe\xef", 4) == 0);
    vms_ram_read(f.ram, BUF_PA + 0x1000, got, 3);
    CHECK(memcmp(got, "\x00\x11\x22", 3) == 0);
    vms_ram_read(f.ram, BUF_PA + 0x2000, got, 5);
    CHECK(memcmp(got, "\x01\x02\x03\x04\x05", 5) == 0);
    remove(path);
    /* Errors name the file and line; packets before the error were received. */
    const char *bad[] = {"ab\nabc\n", "ab\nzz\n", "a b\n"};
    const char *line[] = {":2:", ":2:", ":1:"};
    for (unsigned i = 0; i < 3; i++) {
        NEED(tmp_text(path, sizeof path, bad[i], strlen(bad[i])));
        CHECK_EQ(vms_nic_receive_file(nic, path, &n, &err), VMS_ERR_PARSE);
        CHECK(strstr(err.msg, path) != NULL && strstr(err.msg, line[i]) != NULL);
        CHECK_EQ(n, i < 2 ? 1 : 0);
        remove(path);
    }
    CHECK_EQ(vms_nic_receive_file(nic, "/nonexistent/packets.txt", &n, &err), VMS_ERR_IO);
    /* Garbage never crashes: either packets or a parse error. */
    vms_rng rng;
    vms_rng_seed(&rng, th_seed ^ 0xf11e);
    const char alphabet[] = "0123456789abcdefABCDEF :\t\r\n#xZ\x01\xff";
    unsigned parsed = 0, errors = 0;
    for (int t = 0; t < 200; t++) {
        char junk[300];
        size_t len = (size_t)vms_rng_below(&rng, sizeof junk);
        for (size_t k = 0; k < len; k++)
            junk[k] = alphabet[vms_rng_below(&rng, sizeof alphabet - 1)];
        NEED(tmp_text(path, sizeof path, junk, len));
        vms_status st = vms_nic_receive_file(nic, path, &n, &err);
        CHECK(st == VMS_OK || st == VMS_ERR_PARSE);
        parsed += st == VMS_OK;
        errors += st == VMS_ERR_PARSE;
        remove(path);
        wr(&f, NIC + VMS_NIC_RDT, (rd(&f, NIC + VMS_NIC_RDH) + 7) % 8); /* recycle */
    }
    CHECK(parsed > 0 && errors > 0);
    vms_nic_destroy(nic);
    fx_fini(&f);
}

/* ---- the block device ---------------------------------------------------------------- */

#define NSECT 64

/* Byte j of sector i of the test disk. */
static uint8_t disk_byte(unsigned i, unsigned j)
{
    return (uint8_t)(i * 31 + j * 7 + 1);
}

/* A disk image at orig, and a copy of it at copy for the device to modify. */
static bool mk_disk(char *orig, char *copy, size_t n)
{
    static uint8_t img[NSECT * 512];
    for (unsigned i = 0; i < NSECT; i++)
        for (unsigned j = 0; j < 512; j++)
            img[i * 512 + j] = disk_byte(i, j);
    return tmp_text(orig, n, (const char *)img, sizeof img) &&
           tmp_text(copy, n, (const char *)img, sizeof img);
}

static vms_blk *mk_blk(fixture *f, const char *path, bool ro)
{
    vms_blk_config cfg;
    vms_blk_config_default(&cfg);
    cfg.path = path;
    cfg.read_only = ro;
    vms_blk *b = NULL;
    if (vms_blk_create(f->m, f->io, &cfg, &b, NULL) != VMS_OK)
        return NULL;
    vms_dev_set_irq_hook(vms_blk_dev(b), on_irq, f);
    wr(f, DISK + VMS_BLK_IVEC, vms_dev_ivec(0, 0x41));
    wr(f, DISK + VMS_BLK_IMS, VMS_BLK_ICR_DONE | VMS_BLK_ICR_ERR);
    return b;
}

/* Program and run one command; returns STATUS. */
static uint32_t blk_cmd(fixture *f, uint32_t cmd, uint64_t sector, uint32_t count, uint64_t dma)
{
    wr(f, DISK + VMS_BLK_CMD, cmd);
    wr(f, DISK + VMS_BLK_SECTOR_LO, (uint32_t)sector);
    wr(f, DISK + VMS_BLK_SECTOR_HI, (uint32_t)(sector >> 32));
    wr(f, DISK + VMS_BLK_COUNT, count);
    wr(f, DISK + VMS_BLK_DMA_LO, (uint32_t)dma);
    wr(f, DISK + VMS_BLK_DMA_HI, (uint32_t)(dma >> 32));
    wr(f, DISK + VMS_BLK_DOORBELL, 1);
    return rd(f, DISK + VMS_BLK_STATUS);
}

static bool file_sector(const char *path, unsigned s, uint8_t *out)
{
    FILE *fp = fopen(path, "rb");
    bool ok = fp && fseek(fp, (long)s * 512, SEEK_SET) == 0 && fread(out, 1, 512, fp) == 512;
    if (fp)
        fclose(fp);
    return ok;
}

static void test_blk(void)
{
    fixture f;
    NEED(fx_init(&f, NULL));
    char orig[64], copy[64];
    NEED(mk_disk(orig, copy, sizeof orig));
    vms_blk *b = mk_blk(&f, copy, false);
    NEED(b != NULL);
    CHECK_EQ(vms_blk_sectors(b), NSECT);
    CHECK_EQ(rd(&f, DISK + VMS_BLK_CAP_LO), NSECT);
    CHECK_EQ(rd(&f, DISK + VMS_BLK_CAP_HI), 0);
    /* READ sectors 3-5 to 0x300100 (crossing a page). */
    CHECK_EQ(blk_cmd(&f, VMS_BLK_CMD_READ, 3, 3, 0x300100), VMS_BLK_STATUS_DONE);
    uint8_t got[512], want[512];
    for (unsigned i = 0; i < 3; i++) {
        vms_ram_read(f.ram, 0x300100 + i * 512u, got, 512);
        for (unsigned j = 0; j < 512; j++)
            want[j] = disk_byte(3 + i, j);
        CHECK(memcmp(got, want, 512) == 0);
    }
    CHECK_EQ(vms_core_get_stats(f.c)->interrupts, 1);
    CHECK_EQ(f.last_vector, 0x41);
    CHECK_EQ(rd(&f, DISK + VMS_BLK_ICR), VMS_BLK_ICR_DONE);
    /* WRITE two sectors from RAM to sectors 10-11 of the copy; the original stays. */
    uint8_t src[1024];
    fill(src, sizeof src, 77);
    vms_ram_write(f.ram, 0x400000, src, sizeof src);
    CHECK_EQ(blk_cmd(&f, VMS_BLK_CMD_WRITE, 10, 2, 0x400000), VMS_BLK_STATUS_DONE);
    CHECK(file_sector(copy, 10, got) && memcmp(got, src, 512) == 0);
    CHECK(file_sector(copy, 11, got) && memcmp(got, src + 512, 512) == 0);
    CHECK(file_sector(copy, 12, got) && got[0] == disk_byte(12, 0));
    CHECK(file_sector(orig, 10, got) && got[0] == disk_byte(10, 0));
    /* Errors: range, command; each raises ERR and an interrupt. */
    uint32_t err = VMS_BLK_STATUS_DONE | VMS_BLK_STATUS_ERR;
    CHECK_EQ(blk_cmd(&f, VMS_BLK_CMD_READ, NSECT - 1, 2, 0x300000), err | VMS_BLK_ERANGE << 8);
    CHECK_EQ(blk_cmd(&f, VMS_BLK_CMD_READ, 0, 0, 0x300000), err | VMS_BLK_ERANGE << 8);
    CHECK_EQ(blk_cmd(&f, VMS_BLK_CMD_READ, UINT64_C(1) << 40, 1, 0), err | VMS_BLK_ERANGE << 8);
    CHECK_EQ(blk_cmd(&f, 7, 0, 1, 0x300000), err | VMS_BLK_ECMD << 8);
    /* A DMA to nothing on the bus: EDMA, sectors before it moved. */
    CHECK_EQ(blk_cmd(&f, VMS_BLK_CMD_READ, 0, 1, 0xD0000000), err | VMS_BLK_EDMA << 8);
    const vms_blk_stats *s = vms_blk_get_stats(b);
    CHECK_EQ(s->reads, 1);
    CHECK_EQ(s->writes, 1);
    CHECK_EQ(s->sectors_read, 3);
    CHECK_EQ(s->sectors_written, 2);
    CHECK_EQ(s->errors, 5);
    CHECK_EQ(vms_core_get_stats(f.c)->interrupts, 7);
    vms_blk_destroy(b);
    /* Read-only, and a missing file. */
    b = mk_blk(&f, orig, true);
    NEED(b != NULL);
    CHECK_EQ(blk_cmd(&f, VMS_BLK_CMD_WRITE, 0, 1, 0x400000), err | VMS_BLK_EROFS << 8);
    CHECK(file_sector(orig, 0, got) && got[0] == disk_byte(0, 0));
    vms_blk_destroy(b);
    vms_blk_destroy(NULL);
    vms_blk_config cfg;
    vms_blk_config_default(&cfg);
    cfg.path = "/nonexistent/disk.img";
    vms_err e = {0};
    CHECK_EQ(vms_blk_create(f.m, NULL, &cfg, &b, &e), VMS_ERR_IO);
    CHECK(strstr(e.msg, "/nonexistent/disk.img") != NULL);
    cfg.path = NULL;
    CHECK_EQ(vms_blk_create(f.m, NULL, &cfg, &b, &e), VMS_ERR_INVAL);
    remove(orig);
    remove(copy);
    fx_fini(&f);
}

/* The block device through the IOMMU: a mapped buffer works, an unmapped one is
 * blocked with RAM and the disk unchanged. */
static void test_blk_iommu(void)
{
    fixture f;
    NEED(fx_init(&f, NULL));
    NEED(fx_iommu(&f));
    char orig[64], copy[64];
    NEED(mk_disk(orig, copy, sizeof orig));
    vms_blk *b = mk_blk(&f, copy, false);
    NEED(b != NULL);
    CHECK_EQ(fx_attach(&f, vms_dev_bdf(vms_blk_dev(b))), VMS_OK);
    CHECK_EQ(blk_cmd(&f, VMS_BLK_CMD_READ, 1, 2, dva(&f, BUF_PA) + 0xF00), VMS_BLK_STATUS_DONE);
    uint8_t got[512];
    vms_ram_read(f.ram, BUF_PA + 0xF00 + 512, got, 512);
    CHECK_EQ(got[5], disk_byte(2, 5));
    /* A secret page (not in the disk's domain): READ into it is blocked... */
    uint8_t secret[512], after[512];
    fill(secret, sizeof secret, 200);
    vms_ram_write(f.ram, 0x700000, secret, sizeof secret);
    uint32_t st = blk_cmd(&f, VMS_BLK_CMD_READ, 0, 1, 0x700000);
    CHECK_EQ(st, VMS_BLK_STATUS_DONE | VMS_BLK_STATUS_ERR | VMS_BLK_EDMA << 8);
    vms_ram_read(f.ram, 0x700000, after, sizeof after);
    CHECK(memcmp(secret, after, 512) == 0);
    /* ... and so is a WRITE that would leak it to the disk. */
    st = blk_cmd(&f, VMS_BLK_CMD_WRITE, 0, 1, 0x700000);
    CHECK_EQ(st >> 8, VMS_BLK_EDMA);
    CHECK(file_sector(copy, 0, got) && got[0] == disk_byte(0, 0));
    CHECK_EQ(vms_iommu_fault_count(f.io), 2);
    vms_iommu_fault flt;
    vms_iommu_fault_get(f.io, 1, &flt);
    CHECK_EQ(flt.kind, VMS_ACC_READ); /* the device read memory */
    CHECK_EQ(flt.iova, 0x700000);
    vms_blk_destroy(b);
    remove(orig);
    remove(copy);
    fx_fini(&f);
}

/* ---- a rogue device ------------------------------------------------------------------ */

/* Without an IOMMU a device reaches any physical address: it rewrites a page-table entry
 * and the CPU follows it. With one, the same DMA is blocked, logged, and RAM unchanged. */
static void rogue(bool iommu)
{
    fixture f;
    NEED(fx_init(&f, NULL));
    if (iommu)
        NEED(fx_iommu(&f));
    vms_dev *evil = NULL;
    vms_dev_config dc = {"rogue", vms_bdf_make(0, 9, 0), 0};
    NEED(vms_dev_create(f.m, f.io, &dc, &evil, NULL) == VMS_OK);
    if (iommu) /* it may touch its own buffers only */
        CHECK_EQ(fx_attach(&f, dc.bdf), VMS_OK);
    /* A user page: VA 0x400000 -> frame 0x500000 holding the process's data. */
    CHECK_EQ(vms_pt_map(&f.pt, 0x400000, 0x500000, VMS_PG_4K, R | W, NULL), VMS_OK);
    vms_ram_write(f.ram, 0x500000, "mine", 4);
    vms_ram_write(f.ram, 0x600000, "evil", 4);
    vms_core_set_user(f.c, true);
    uint64_t pa = 0, ptep = 0, pte_before = 0, pte_after = 0;
    vms_fault flt;
    CHECK(vms_core_translate(f.c, 0x400000, VMS_ACC_READ, NULL, &pa, &flt, NULL));
    CHECK_EQ(pa, 0x500000);
    NEED(vms_pt_lookup(&f.pt, 0x400000, &pte_before, &ptep, NULL));
    /* The device writes a forged PTE (pointing at 0x600000) at the PTE's address. */
    uint64_t forged = vms_pte_mk(0x600000, VMS_PTE_P | R | W);
    vms_dma_result r = vms_dev_dma(evil, ptep, &forged, 8, VMS_ACC_WRITE);
    /* And it reads another page it was never given. */
    char stolen[5] = {0};
    vms_dma_result r2 = vms_dev_dma(evil, 0x500000, stolen, 4, VMS_ACC_READ);
    vms_pt_read(&f.pt, ptep, &pte_after);
    vms_core_write_cr3(f.c, f.pt.root); /* a context switch: the TLB forgets */
    char seen[5] = {0};
    CHECK(vms_core_access(f.c, 0x400000, VMS_ACC_READ, seen, 4).ok);
    if (!iommu) {
        CHECK(r.ok && r2.ok);
        CHECK_EQ(vms_pte_addr(pte_after), 0x600000);
        CHECK_STR(seen, "evil"); /* the CPU follows the corrupted entry */
        CHECK_STR(stolen, "mine");
    } else {
        CHECK(!r.ok && !r2.ok);
        CHECK_EQ(r.done, 0);
        CHECK_EQ(r.fault.reason, VMS_IOMMU_NOT_PRESENT);
        CHECK_EQ(pte_after, pte_before); /* memory unchanged */
        CHECK_STR(seen, "mine");
        CHECK_STR(stolen, "");
        NEED(vms_iommu_fault_count(f.io) == 2);
        vms_iommu_fault lf;
        vms_iommu_fault_get(f.io, 0, &lf);
        CHECK_EQ(lf.bdf, dc.bdf);
        CHECK_EQ(lf.iova, ptep);
        CHECK_EQ(lf.kind, VMS_ACC_WRITE);
        /* Without a context at all, the reason says so. */
        vms_iommu_set_context(f.io, dc.bdf, NULL, NULL);
        r = vms_dev_dma(evil, ptep, &forged, 8, VMS_ACC_WRITE);
        CHECK_EQ(r.fault.reason, VMS_IOMMU_NO_CONTEXT);
        /* Switching the IOMMU off opens the door again. */
        vms_iommu_set_enabled(f.io, false);
        CHECK(vms_dev_dma(evil, ptep, &forged, 8, VMS_ACC_WRITE).ok);
        vms_pt_read(&f.pt, ptep, &pte_after);
        CHECK_EQ(vms_pte_addr(pte_after), 0x600000);
    }
    vms_dev_destroy(evil);
    fx_fini(&f);
}

static void test_rogue(void)
{
    rogue(false);
    rogue(true);
}

/* ---- re-entrancy and interrupts ------------------------------------------------------- */

/* A descriptor aimed at the NIC's own registers: the DMA becomes register writes, with
 * no recursion and no hang. */
static void test_dma_into_registers(void)
{
    fixture f;
    NEED(fx_init(&f, NULL));
    vms_nic *nic = mk_nic(&f, 4);
    NEED(nic != NULL);
    nic_rx_setup(&f, 4);
    vms_nic_desc d = {.addr = NIC + VMS_NIC_RDT};
    put_desc(&f, RING_PA, 0, &d);
    uint32_t v = 3; /* "RDT = 3": a write to the NIC's own tail register */
    CHECK_EQ(vms_nic_receive(nic, &v, 4, NULL), VMS_OK);
    CHECK_EQ(rd(&f, NIC + VMS_NIC_RDT), 3);
    CHECK_EQ(rd(&f, NIC + VMS_NIC_RDH), 1);
    /* A 2-byte packet there is refused by the registers: a DMA error. */
    d.addr = NIC + VMS_NIC_IMS;
    put_desc(&f, RING_PA, 1, &d);
    CHECK_EQ(vms_nic_receive(nic, &v, 2, NULL), VMS_OK);
    CHECK(rd(&f, NIC + VMS_NIC_STATUS) & VMS_NIC_STATUS_DMAERR);
    /* A transmit ring whose descriptors point at the doorbell of the disk would be the
     * same story; interrupts unrouted are counted as masked. */
    vms_dev *dev = vms_nic_dev(nic);
    wr(&f, NIC + VMS_NIC_IVEC, 0);
    uint64_t masked = vms_dev_get_stats(dev)->interrupts_masked;
    vms_dev_raise_irq(dev);
    CHECK_EQ(vms_dev_get_stats(dev)->interrupts_masked, masked + 1);
    wr(&f, NIC + VMS_NIC_IVEC, vms_dev_ivec(5, 0x50)); /* no core 5 on this machine */
    CHECK_EQ(rd(&f, NIC + VMS_NIC_IVEC) & VMS_DEV_IVEC_EN, 0);
    CHECK_EQ(vms_dev_set_irq(dev, 5, 0x50), VMS_ERR_INVAL);
    CHECK_EQ(vms_dev_set_irq(dev, 0, 0x51), VMS_OK);
    CHECK_EQ(rd(&f, NIC + VMS_NIC_IVEC), vms_dev_ivec(0, 0x51));
    uint64_t before = vms_core_get_stats(f.c)->interrupts;
    vms_dev_raise_irq(dev);
    CHECK_EQ(vms_core_get_stats(f.c)->interrupts, before + 1);
    CHECK_STR(vms_dev_name(dev), "nic");
    CHECK(vms_dev_iommu(dev) == NULL);
    vms_dev_destroy(dev); /* not a bare device: ignored, the NIC owns it */
    vms_nic_destroy(nic);
    fx_fini(&f);
}

/* ---- allocation failures ------------------------------------------------------------- */

static int build_nic(const vms_allocator *a)
{
    fixture f;
    if (!fx_init(&f, a)) {
        fx_fini(&f);
        return -1;
    }
    int rc = -1;
    vms_nic_config cfg;
    vms_nic_config_default(&cfg);
    vms_nic *nic = NULL;
    if (vms_nic_create(f.m, NULL, &cfg, &nic, NULL) == VMS_OK) {
        uint8_t pkt[32] = {1, 2, 3};
        /* No ring: the packet is queued (a host allocation), then sent back out. */
        if (vms_nic_receive(nic, pkt, sizeof pkt, NULL) == VMS_OK && vms_nic_rx_queued(nic) == 1) {
            vms_nic_desc d = {
                .addr = BUF_PA, .length = 32, .cmd = VMS_NIC_TXD_CMD_EOP | VMS_NIC_TXD_CMD_RS};
            put_desc(&f, RING_PA, 0, &d);
            wr(&f, NIC + VMS_NIC_TDBAL, (uint32_t)RING_PA);
            wr(&f, NIC + VMS_NIC_TDLEN, 64);
            wr(&f, NIC + VMS_NIC_CTRL, VMS_NIC_CTRL_TXEN);
            wr(&f, NIC + VMS_NIC_TDT, 1);
            rc = vms_nic_tx_count(nic) == 1 ? 0 : -1;
        }
    }
    vms_nic_destroy(nic);
    fx_fini(&f);
    return rc;
}

static void test_alloc_failures(void)
{
    int ok_at = -1;
    for (long budget = 0; budget < 200 && ok_at < 0; budget++) {
        th_failalloc fa;
        int rc = build_nic(th_failalloc_init(&fa, budget));
        CHECK_EQ(fa.live_bytes, 0);
        if (rc == 0)
            ok_at = (int)budget;
    }
    CHECK(ok_at > 0);
    /* The block device and a bare device under every budget. */
    char orig[64], copy[64];
    NEED(mk_disk(orig, copy, sizeof orig));
    bool built = false;
    for (long budget = 0; budget < 200 && !built; budget++) {
        th_failalloc fa;
        fixture f;
        if (fx_init(&f, th_failalloc_init(&fa, budget))) {
            vms_blk_config cfg;
            vms_blk_config_default(&cfg);
            cfg.path = copy;
            vms_blk *b = NULL;
            vms_dev *d = NULL;
            vms_dev_config dc = {"d", 1, 0};
            built = vms_blk_create(f.m, NULL, &cfg, &b, NULL) == VMS_OK &&
                    vms_dev_create(f.m, NULL, &dc, &d, NULL) == VMS_OK;
            vms_dev_destroy(d);
            vms_blk_destroy(b);
        }
        fx_fini(&f);
        CHECK_EQ(fa.live_bytes, 0);
    }
    CHECK(built);
    remove(orig);
    remove(copy);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "dev");
    test_mmio_bus();
    test_mmio_core();
    test_nic_rx();
    test_nic_rx_rings();
    test_nic_rx_blocked();
    test_nic_tx();
    test_nic_file();
    test_blk();
    test_blk_iommu();
    test_rogue();
    test_dma_into_registers();
    test_alloc_failures();
    return th_finish();
}
