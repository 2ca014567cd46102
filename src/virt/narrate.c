/*
 * virt/narrate.c — a two-dimensional walk told reference by reference (virt.h,
 * "narrating a 2D walk"): the text `vmsim explain --nested` prints and a scenario's
 * `show walk` on a guest process shows, made in one place. For each guest entry the
 * second-stage walk that locates its table comes first (grouped under the GPA it
 * translates), then the entry itself; the final GPA's second-stage walk ends it.
 * Only formatting: nothing here reads memory or changes the model.
 */
#include <inttypes.h>
#include <stdio.h>

#include "vmsim/arch/aarch64.h"
#include "vmsim/virt.h"

void vms_pte_bits_str(uint64_t pte, unsigned level, char *buf, size_t len)
{
    static const struct {
        uint64_t bit;
        const char *name;
    } bits[] = {{VMS_PTE_P, "P"},     {VMS_PTE_RW, "RW"}, {VMS_PTE_US, "US"}, {VMS_PTE_PWT, "PWT"},
                {VMS_PTE_PCD, "PCD"}, {VMS_PTE_A, "A"},   {VMS_PTE_D, "D"},   {VMS_PTE_PS, "PS"},
                {VMS_PTE_G, "G"},     {VMS_PTE_XD, "XD"}};
    size_t n = 0;
    if (!len)
        return;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++) {
        if (!(pte & bits[i].bit))
            continue;
        const char *name = bits[i].name;
        if (bits[i].bit == VMS_PTE_PS && level == VMS_LEVEL_PT)
            name = "PAT";
        if ((bits[i].bit == VMS_PTE_D || bits[i].bit == VMS_PTE_G) && !vms_pte_leaf(pte, level))
            continue; /* ignored in non-leaf entries */
        n += (size_t)snprintf(buf + n, n < len ? len - n : 0, "%s%s", n ? " " : "", name);
    }
    if (vms_pte_pkey(pte) && n < len)
        snprintf(buf + n, len - n, " PKEY=%u", vms_pte_pkey(pte));
    if (!(pte & VMS_PTE_P))
        snprintf(buf, len, "not present");
}

static const char *glevel_name(unsigned l)
{
    static const char *const n[] = {"", "PT", "PD", "PDPT", "PML4", "PML5"};
    return l <= 5 ? n[l] : "?";
}

/* One second-stage reference. */
static void s2_ref(vms_strbuf *sb, const vms_nested_ref *r, const vms_pt_format *f, unsigned no)
{
    char bits[96];
    f->bits_str(r->pte, r->level, bits, sizeof bits);
    vms_strbuf_printf(sb, "  %2u. %-9s entry @0x%09" PRIx64 " = 0x%016" PRIx64 "  [%s]\n", no,
                      f->level_name[r->level], r->ptep, r->pte, bits);
}

/* One guest reference of a guest in format g (an AArch64 guest), in its format's words. */
static void guest_ref_fmt(vms_strbuf *sb, const vms_nested_ref *r, const vms_pt_format *g,
                          unsigned no)
{
    char bits[96];
    vms_pte_info in;
    g->bits_str(r->pte, r->level, bits, sizeof bits);
    vms_fmt_decode(g, r->pte, r->level, &in);
    vms_strbuf_printf(sb,
                      "  %2u. guest %-7s descriptor @IPA 0x%09" PRIx64 " (PA 0x%09" PRIx64
                      ") = 0x%016" PRIx64 "  [%s]",
                      no, g->level_name[r->level], r->gpa, r->ptep, r->pte, bits);
    if (!in.present)
        vms_strbuf_printf(sb, "\n");
    else if (in.leaf)
        vms_strbuf_printf(sb, " -> page at IPA 0x%" PRIx64 "\n", in.pa);
    else
        vms_strbuf_printf(sb, " -> next table IPA 0x%" PRIx64 "\n", in.pa);
}

/* One guest reference of an x86-64 guest. */
static void guest_ref(vms_strbuf *sb, const vms_nested_ref *r, unsigned no)
{
    char bits[96];
    vms_pte_bits_str(r->pte, r->level, bits, sizeof bits);
    vms_strbuf_printf(sb,
                      "  %2u. guest %-4s entry @GPA 0x%09" PRIx64 " (HPA 0x%09" PRIx64
                      ") = 0x%016" PRIx64 "  [%s]",
                      no, glevel_name(r->level), r->gpa, r->ptep, r->pte, bits);
    if (!vms_pte_present(r->pte))
        vms_strbuf_printf(sb, "\n");
    else if (vms_pte_leaf(r->pte, r->level))
        vms_strbuf_printf(sb, " -> page at GPA 0x%" PRIx64 "\n",
                          vms_pte_addr(r->pte) &
                              ~(vms_pgsize_bytes((vms_pgsize)(r->level - 1)) - 1));
    else
        vms_strbuf_printf(sb, " -> next table GPA 0x%" PRIx64 "\n", vms_pte_addr(r->pte));
}

vms_status vms_nested_trace_str(const vms_nested_trace *t, const vms_pt_format *s2f,
                                const vms_pt_format *gf, vms_strbuf *sb)
{
    uint64_t cur = UINT64_MAX;
    for (unsigned i = 0; i < t->nrefs; i++) {
        const vms_nested_ref *r = &t->ref[i];
        if (r->stage == 2 && r->gpa != cur) {
            cur = r->gpa;
            if (r->for_level && gf)
                vms_strbuf_printf(sb, "      %s: where is the guest %s table? IPA 0x%" PRIx64 "\n",
                                  s2f->root_reg, gf->level_name[r->for_level],
                                  r->gpa & ~VMS_PAGE_MASK);
            else if (r->for_level)
                vms_strbuf_printf(sb, "      %s: where is the guest %s table? GPA 0x%" PRIx64 "\n",
                                  s2f->root_reg, glevel_name(r->for_level),
                                  r->gpa & ~VMS_PAGE_MASK);
            else
                vms_strbuf_printf(sb, "      %s: the data's %s 0x%" PRIx64 "\n", s2f->root_reg,
                                  gf ? "intermediate physical address" : "guest-physical address",
                                  r->gpa);
        }
        if (r->stage == 2) {
            s2_ref(sb, r, s2f, i + 1);
        } else {
            cur = UINT64_MAX;
            if (gf)
                guest_ref_fmt(sb, r, gf, i + 1);
            else
                guest_ref(sb, r, i + 1);
        }
    }
    return sb->failed ? VMS_ERR_NOMEM : VMS_OK;
}

vms_status vms_nested_fault_str(const vms_nested *n, const vms_fault *f, vms_strbuf *sb)
{
    if (f->kind == VMS_FAULT_PF && vms_nested_s2(n)->kind == VMS_S2_ARM)
        vms_strbuf_printf(sb,
                          "  result: guest stage 1 abort (taken to the guest's EL1, no exit to "
                          "EL2), FAR_EL1 = 0x%" PRIx64 ", ESR_EL1 = 0x%08x (%s)\n",
                          f->va, f->error_code, vms_a64_fsc_name(vms_a64_esr_fsc(f->error_code)));
    else if (f->kind == VMS_FAULT_PF)
        vms_strbuf_printf(sb,
                          "  result: guest page fault (delivered to the guest, no VM exit), CR2 = "
                          "0x%" PRIx64 ", error code 0x%x\n",
                          f->va, f->error_code);
    else if (f->kind != VMS_FAULT_S2)
        vms_strbuf_printf(sb, "  result: fault kind %d at 0x%" PRIx64 "\n", (int)f->kind, f->va);
    else {
        const vms_s2_fault *e = vms_nested_last_exit(n);
        vms_strbuf_printf(sb,
                          "  result: VM exit, %s at guest-physical 0x%" PRIx64
                          " (%s), qualification 0x%" PRIx64 "\n",
                          vms_s2_fault_name(vms_nested_s2(n), e), e->gpa,
                          e->table ? "a guest paging-structure access" : "the final address",
                          e->qual);
    }
    return sb->failed ? VMS_ERR_NOMEM : VMS_OK;
}
