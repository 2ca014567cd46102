/*
 * registry.c — every page-table format the library knows, by name (format.h). Adding
 * an architecture or design is a folder under src/arch/ and one line here.
 */
#include <string.h>

#include "arch/riscv64/riscv64.h"
#include "arch/aarch64/aarch64.h"
#include "arch/teach/teach.h"
#include "arch/x86_64/x86_64.h"

static const vms_pt_format *const formats[] = {
    &vmsi_fmt_x86_64,
    &vmsi_fmt_x86_64_la57,
    &vmsi_fmt_sv39, /* RISC-V (src/arch/riscv64) */
    &vmsi_fmt_sv48,
    &vmsi_fmt_sv57,
    &vmsi_fmt_aarch64,
    &vmsi_fmt_ostep_linear,
    &vmsi_fmt_ostep_multilevel,
    &vmsi_fmt_ostep_segmentation,
    &vmsi_fmt_ostep_relocation,
    &vmsi_fmt_silberschatz,
    &vmsi_fmt_csapp,
};

unsigned vms_format_count(void)
{
    return (unsigned)(sizeof formats / sizeof formats[0]);
}

const vms_pt_format *vms_format_at(unsigned i)
{
    return i < vms_format_count() ? formats[i] : NULL;
}

const vms_pt_format *vms_format_for(const char *arch, unsigned levels)
{
    for (unsigned i = 0; arch && i < vms_format_count(); i++)
        if (strcmp(formats[i]->arch, arch) == 0 && (!levels || formats[i]->levels == levels))
            return formats[i];
    return NULL;
}

const vms_pt_format *vms_format_find(const char *name)
{
    for (unsigned i = 0; name && i < vms_format_count(); i++)
        if (strcmp(formats[i]->name, name) == 0)
            return formats[i];
    return NULL;
}
