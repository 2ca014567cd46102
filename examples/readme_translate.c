/* readme_translate.c — the README's "library in twenty lines", kept compiling and
 * checked by ctest: map the seed's page 0x12 -> frame 0x50 and translate 0x12345. */
#include <inttypes.h>
#include <stdio.h>

#include <vmsim/core.h>
#include <vmsim/pt.h>

int main(void)
{
    vms_machine_config cfg;
    vms_machine *m;
    vms_pt pt;
    uint64_t pa = 0;
    vms_machine_preset("skylake", &cfg, NULL); /* Intel Skylake TLBs, 4 GiB RAM */
    vms_machine_create(NULL, &cfg, &m, NULL);
    vms_pt_bump tables = {vms_machine_ram(m), 0x100000, 0, 0, 0}; /* table pages from 1 MiB */
    vms_pt_ops ops = vms_pt_bump_ops(&tables);
    vms_pt_init(&pt, vms_machine_bus(m), 4, &ops, NULL); /* a PML4 in simulated RAM */
    vms_pt_map(&pt, 0x12000, 0x50000, VMS_PG_4K, VMS_PTE_RW | VMS_PTE_US, NULL);
    vms_core *c = vms_machine_core(m, 0);
    vms_core_write_cr3(c, pt.root); /* MOV CR3 */
    vms_core_set_user(c, true);
    vms_fault f;
    vms_core_translate(c, 0x12345, VMS_ACC_READ, NULL, &pa, &f, NULL); /* pa = 0x50345 */
    vms_machine_destroy(m);
    printf("0x12345 -> 0x%" PRIx64 "\n", pa);
    return pa == 0x50345 ? 0 : 1;
}
