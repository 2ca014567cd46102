/* readme_translate.c — the README's "library in twenty lines", kept compiling and
 * checked by ctest: map the seed's page 0x12 -> frame 0x50 and translate 0x12345. */
#include <inttypes.h>
#include <stdio.h>

#include <vmsim/core.h>
#include <vmsim/pt.h>

static vms_status table(void *ud, uint64_t *pa) /* page-table pages: a bump allocator */
{
    uint64_t *next = ud;
    *pa = *next;
    *next += 4096;
    return VMS_OK;
}

static void untable(void *ud, uint64_t pa)
{
    (void)ud;
    (void)pa;
}

int main(void)
{
    vms_machine_config cfg;
    vms_machine *m;
    vms_pt pt;
    uint64_t next = 0x100000, pa = 0;
    vms_machine_preset("skylake", &cfg, NULL); /* Intel Skylake TLBs, 4 GiB  */
    vms_machine_create(NULL, &cfg, &m, NULL);
    vms_pt_ops ops = {table, untable, &next};
    vms_pt_init(&pt, vms_machine_bus(m), 4, &ops, NULL); /* PML4 in simulated RAM      */
    vms_pt_map(&pt, 0x12000, 0x50000, VMS_PG_4K, VMS_PTE_RW | VMS_PTE_US, NULL);
    vms_core *c = vms_machine_core(m, 0);
    vms_core_write_cr3(c, pt.root); /* MOV CR3                    */
    vms_core_set_user(c, true);
    vms_fault f;
    vms_core_translate(c, 0x12345, VMS_ACC_READ, NULL, &pa, &f, NULL); /* pa = 0x50345 */
    vms_machine_destroy(m);
    printf("0x12345 -> 0x%" PRIx64 "\n", pa);
    return pa == 0x50345 ? 0 : 1;
}
