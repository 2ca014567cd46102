/*
 * explain_design.c — `vmsim explain --design hashed|inverted`: the x86-64 radix tables
 * of the maps are built in simulated RAM as for `vmsim explain` (the kernel's source of
 * truth), then a translation is narrated the design's way: the hash of the address,
 * the kernel's hash_page filling the table from the radix tables (the page's first
 * fault, which the hardware does not see), and the search reference by reference — each
 * group slot (hashed) or the anchor and each chain entry (inverted) read from RAM, the
 * same memory references `--stats json` counts in walk.mem_refs. Then a second access
 * that hits the TLB. An address no map covers is searched in vain: a page fault.
 *
 * The tables: the HPT at 32 MiB, 2048 groups (256 KiB, the smallest Linux makes); the
 * IPT at 32 MiB, one entry per frame of the machine's RAM, its anchors after it. PCID 1.
 */
#include <inttypes.h>
#include <string.h>

#include "cli_explain.h"
#include "vmsim/arch/hashed.h"
#include "vmsim/core.h"
#include "vmsim/pt.h"

#define TABLE UINT64_C(0x2000000)

typedef struct design_rig {
    vms_design d;
    vms_core *c;
    vms_bus *bus;
    vms_hpt hpt;
    vms_ipt ipt;
    uint32_t cursor;
} design_rig;

static const char *pp_name(unsigned pp)
{
    switch (pp) {
    case 0:
        return "supervisor rw, user none";
    case 1:
        return "supervisor rw, user r";
    case 2:
        return "rw";
    case 3:
        return "read-only";
    case 6:
        return "supervisor r, user none";
    }
    return "reserved";
}

/* The kernel's hash_page for the page of va: the radix walk, then the insert. */
static void kernel_fill(design_rig *g, uint64_t va, vms_access_kind kind)
{
    vms_regs r = *vms_core_regs(g->c);
    r.fmt = NULL;
    vms_walk_stats ws = {0};
    vms_xlate x;
    vms_fault f;
    if (!vms_walk(g->bus, NULL, &r, va, kind, &x, &f, &ws, NULL)) {
        printf("  kernel: the radix tables do not allow this %s (x86 error code 0x%x): no entry "
               "is made, the fault is the process's\n",
               vms_access_name(kind), f.error_code);
        return;
    }
    uint64_t pa = vms_xlate_pa(&x, va) & ~UINT64_C(0xfff), ea = va & ~UINT64_C(0xfff);
    unsigned prot = (x.rw && x.dirty ? VMS_PGPROT_W : 0) | (x.us ? VMS_PGPROT_U : 0) |
                    (x.xd ? 0 : VMS_PGPROT_X);
    uint32_t ctx = vms_design_ctx(&r, va);
    printf("  kernel (hash_page, at the page's first fault): the radix tables map it to "
           "0x%" PRIx64 " (%s%s%s; %" PRIu64 " entries read, not counted as walk references)\n",
           pa, x.rw ? (x.dirty ? "rw, dirty" : "rw but clean: entered read-only") : "r",
           x.us ? ", user" : ", kernel", x.xd ? "" : ", x", ws.mem_refs);
    if (g->d == VMS_DESIGN_HASHED) {
        vms_hpt_slot s;
        uint64_t rr = vms_hpt_mk_r(pa, prot, x.pkey, x.pcd, x.pwt);
        if (vms_hpt_insert(g->bus, &g->hpt, ctx, ea, rr, &g->cursor, &s) == VMS_OK)
            printf("          inserts it in the %s group 0x%" PRIx64 ", slot %u%s\n",
                   s.secondary ? "secondary" : "primary", s.group, s.slot,
                   s.evicted ? " (the group was full: that slot's entry was evicted)" : "");
    } else {
        vms_ipt_slot s;
        uint64_t d0 = vms_ipt_mk_d0(&g->ipt, ea, prot, x.pkey, x.pcd, x.pwt);
        if (vms_ipt_insert(g->bus, &g->ipt, ctx, ea, pa >> 12, d0, &s) == VMS_OK)
            printf("          writes frame 0x%" PRIx64 "'s entry and links it first on anchor "
                   "0x%" PRIx64 "'s chain (%u long)%s\n",
                   pa >> 12, s.anchor, s.chain_len,
                   s.displaced ? "; the frame's previous page lost its entry" : "");
        else
            printf("          but 0x%" PRIx64 " is no frame of RAM: no entry can map it\n", pa);
    }
}

static void print_hash(const design_rig *g, uint64_t va)
{
    const vms_regs *r = vms_core_regs(g->c);
    uint32_t ctx = vms_design_ctx(r, va);
    if (g->d == VMS_DESIGN_HASHED) {
        unsigned vb = g->hpt.va_bits;
        uint64_t ea = va & ((UINT64_C(1) << vb) - 1);
        uint64_t proto = (uint64_t)ctx << (vb - 28) | ea >> 28;
        uint64_t vsid = vms_hpt_vsid(ctx, va, vb), h = vms_hpt_hash(vsid, va);
        printf("  segment: ESID 0x%" PRIx64 ", context %u -> proto-VSID 0x%" PRIx64
               " -> VSID 0x%" PRIx64 " (x 12538073 mod 2^49-1)\n",
               ea >> 28, ctx, proto, vsid);
        printf("  hash: VSID ^ page 0x%04" PRIx64 " = 0x%010" PRIx64 "; primary group 0x%03" PRIx64
               " @0x%" PRIx64 ", secondary (~hash) group 0x%03" PRIx64 " @0x%" PRIx64 "\n",
               (ea & 0x0fffffff) >> 12, h, h & g->hpt.mask, vms_hpt_group_pa(&g->hpt, h, false),
               ~h & g->hpt.mask, vms_hpt_group_pa(&g->hpt, h, true));
    } else {
        uint64_t h = vms_ipt_hash(&g->ipt, ctx, va);
        printf("  hash: context %u, VPN 0x%" PRIx64 " -> anchor 0x%" PRIx64 " @0x%" PRIx64
               " (of 2^%u)\n",
               ctx, (va & ((UINT64_C(1) << g->ipt.va_bits) - 1)) >> 12, h,
               g->ipt.hat + h * VMS_IPT_HAT_BYTES, g->ipt.hat_bits);
    }
}

static void print_hpt_step(design_rig *g, const vms_walk_step *s, uint64_t want, unsigned n)
{
    uint64_t v = s->pte, rr = 0;
    vms_bus_read64(g->bus, s->ptep + 8, &rr);
    printf("  ref %2u: %s group 0x%03" PRIx64 " slot %u @0x%" PRIx64 ": v = 0x%016" PRIx64, n,
           s->level == 1 ? "primary  " : "secondary", (s->table_pa - g->hpt.base) / 128, s->index,
           s->ptep, v);
    if (!(v & VMS_HPTE_V_VALID)) {
        printf("  invalid\n");
        return;
    }
    bool match = ((v ^ want) & ~UINT64_C(0x78)) == 0;
    printf("  %s\n", match ? "V, AVA and H match" : "V, another page");
    if (match) {
        unsigned pp = (unsigned)(rr & 3) | ((rr >> 63) ? 4u : 0u);
        printf("          r = 0x%016" PRIx64 ": RPN 0x%" PRIx64 ", PP %u%u%u (%s)%s%s%s\n", rr,
               (rr & VMS_HPTE_R_RPN) >> 12, pp >> 2, (pp >> 1) & 1, pp & 1, pp_name(pp),
               rr & VMS_HPTE_R_N ? ", N (no execute)" : "", rr & VMS_HPTE_R_R ? ", R" : "",
               rr & VMS_HPTE_R_C ? ", C" : "");
    }
}

static void print_ipt_step(design_rig *g, const vms_walk_step *s, unsigned n, uint64_t va)
{
    if (s->level == 1) {
        uint64_t h = s->index, apa = g->ipt.hat + h * VMS_IPT_HAT_BYTES;
        uint32_t link = (uint32_t)(s->pte >> (8 * (apa & 7)));
        printf("  ref %2u: anchor 0x%" PRIx64 " @0x%" PRIx64 " = 0x%x (%s)\n", n, h, apa, link,
               link ? "1 + the first frame of its chain" : "empty");
        if (link)
            printf("          -> frame 0x%x\n", link - 1u);
        return;
    }
    uint64_t d1 = 0;
    vms_bus_read64(g->bus, s->ptep + 8, &d1);
    uint32_t ctx = vms_design_ctx(vms_core_regs(g->c), va);
    bool match =
        (s->pte & VMS_IPTE_V) && (uint32_t)(d1 >> 32) == ctx &&
        (s->pte & VMS_IPTE_VPN) == ((va & ((UINT64_C(1) << g->ipt.va_bits) - 1)) & VMS_IPTE_VPN);
    printf("  ref %2u: frame 0x%x's entry @0x%" PRIx64 ": 0x%016" PRIx64 " 0x%016" PRIx64
           " (VPN 0x%" PRIx64 ", context %u, next %u) %s\n",
           n, s->index, s->ptep, s->pte, d1, (s->pte & VMS_IPTE_VPN) >> 12, (unsigned)(d1 >> 32),
           (unsigned)(uint32_t)d1, match ? "match" : "another page");
    if (match)
        printf("          %s%s%s -> frame 0x%x\n", s->pte & VMS_IPTE_RW ? "rw" : "r",
               s->pte & VMS_IPTE_US ? ", user" : ", kernel", s->pte & VMS_IPTE_XD ? "" : ", x",
               s->index);
}

static void explain_va(design_rig *g, uint64_t va, vms_access_kind kind, bool mapped)
{
    const vms_regs *r = vms_core_regs(g->c);
    printf("\nTranslating 0x%" PRIx64 " (%s, %s mode), %s, PCID %u\n", va, vms_access_name(kind),
           r->user ? "user" : "supervisor", r->fmt->title, vms_regs_pcid(r));
    print_hash(g, va);
    if (mapped)
        kernel_fill(g, va, kind);
    else
        printf("  kernel: no map covers it: the radix tables hold nothing to enter\n");
    vms_walk_trace tr;
    vms_xlate x;
    vms_fault f;
    uint64_t pa;
    const vms_walk_stats *ws = vms_core_walk_stats(g->c);
    uint64_t refs = ws->mem_refs, cyc = vms_core_cycles(g->c);
    bool ok = vms_core_translate(g->c, va, kind, &x, &pa, &f, &tr);
    printf("  TLB miss: the MMU searches the %s\n",
           g->d == VMS_DESIGN_HASHED ? "hashed page table" : "inverted page table");
    uint64_t want = 0;
    if (g->d == VMS_DESIGN_HASHED) {
        uint32_t ctx = vms_design_ctx(r, va);
        want = vms_hpt_mk_v(vms_hpt_vsid(ctx, va, g->hpt.va_bits), va, false);
    }
    for (unsigned i = 0; i < tr.nsteps; i++) {
        if (g->d == VMS_DESIGN_HASHED)
            print_hpt_step(g, &tr.step[i], want | (tr.step[i].level == 2 ? 2u : 0u), i + 1);
        else
            print_ipt_step(g, &tr.step[i], i + 1, va);
    }
    uint64_t dr = ws->mem_refs - refs, dc = vms_core_cycles(g->c) - cyc;
    if (!ok) {
        printf("  result: page fault, CR2 = 0x%" PRIx64 ", error code 0x%x (%s); %" PRIu64
               " memory references\n",
               f.va, f.error_code,
               f.error_code & VMS_PFERR_P ? "P=1: the entry forbids it"
                                          : "P=0: no entry for this page",
               dr);
        return;
    }
    printf("  result: physical 0x%" PRIx64 " = frame 0x%" PRIx64 " + offset 0x%03" PRIx64
           "; %" PRIu64 " memory reference%s, %" PRIu64 " cycles\n",
           pa, x.page_pa >> 12, va & 0xfff, dr, dr == 1 ? "" : "s", dc);
    refs = ws->mem_refs;
    cyc = vms_core_cycles(g->c);
    ok = vms_core_translate(g->c, va, kind, &x, &pa, &f, &tr);
    dr = ws->mem_refs - refs;
    printf("  again: %s -> physical 0x%" PRIx64 ", %" PRIu64 " memory references, %" PRIu64
           " cycles\n",
           tr.nsteps ? "search" : "TLB hit", pa, dr, vms_core_cycles(g->c) - cyc);
}

int explain_design(vms_machine *m, vms_design d, const explain_map *maps, unsigned nmaps,
                   const uint64_t *vas, unsigned nvas, vms_access_kind kind, bool user, bool demo)
{
    vms_bus *bus = vms_machine_bus(m);
    vms_err err = {0};
    vms_pt_bump b = {vms_machine_ram(m), UINT64_C(0x100000), 0, 0, 0};
    vms_pt_ops ops = vms_pt_bump_ops(&b);
    vms_pt pt;
    if (vms_pt_init(&pt, bus, vms_machine_get_config(m)->levels, &ops, &err) != VMS_OK) {
        cli_error("explain", "%s", err.msg);
        return 1;
    }
    printf("Radix tables in simulated RAM, the kernel's source of truth (root at 0x%" PRIx64 "):\n",
           pt.root);
    for (unsigned i = 0; i < nmaps; i++) {
        const explain_map *mp = &maps[i];
        if (mp->size != VMS_PG_4K || mp->pa >= TABLE - UINT64_C(0x100000)) {
            cli_error("explain",
                      "--design: map 4K pages below physical 0x%" PRIx64 " (0x%" PRIx64 " given)",
                      TABLE - UINT64_C(0x100000), mp->pa);
            return 1;
        }
        if (vms_pt_map(&pt, mp->va, mp->pa, mp->size, mp->flags, &err) != VMS_OK) {
            cli_error("explain", "cannot map 0x%" PRIx64 ": %s", mp->va, err.msg);
            return 1;
        }
        printf("  map virtual 0x%" PRIx64 " -> physical 0x%" PRIx64 " (%s%s%s)\n", mp->va, mp->pa,
               mp->flags & VMS_PTE_RW ? "rw" : "r", mp->flags & VMS_PTE_XD ? "" : "x",
               mp->flags & VMS_PTE_US ? ", user" : ", kernel");
    }
    design_rig g = {.d = d, .c = vms_machine_core(m, 0), .bus = bus};
    const vms_machine_config *mc = vms_machine_get_config(m);
    unsigned va_bits = mc->levels == 5 ? 57 : 48;
    if (d == VMS_DESIGN_HASHED) {
        g.hpt = (vms_hpt){TABLE, VMS_HPT_MIN_GROUPS - 1, va_bits};
        vms_core_set_hpt(g.c, &g.hpt);
        printf("Hashed page table at 0x%" PRIx64 ": %u groups of 8 entries of 16 bytes "
               "(%u KiB); the radix tables: %" PRIu64 " KiB\n",
               TABLE, VMS_HPT_MIN_GROUPS, VMS_HPT_MIN_GROUPS * 128u / 1024u,
               vms_pt_count_tables(&pt) * 4u);
    } else {
        uint64_t low =
            mc->ram_bytes < VMS_DEVICE_WINDOW_BASE ? mc->ram_bytes : VMS_DEVICE_WINDOW_BASE;
        uint64_t top = mc->ram_bytes > low ? VMS_DEVICE_WINDOW_END + (mc->ram_bytes - low) : low;
        uint64_t nframes = top >> 12;
        unsigned bits = 0;
        while ((UINT64_C(1) << bits) < nframes)
            bits++;
        g.ipt = (vms_ipt){TABLE, nframes, TABLE + ((nframes * 16 + 4095) & ~UINT64_C(4095)), bits,
                          va_bits};
        vms_core_set_ipt(g.c, &g.ipt);
        printf("Inverted page table at 0x%" PRIx64 ": %" PRIu64 " entries of 16 bytes (one per "
               "frame), anchors at 0x%" PRIx64 ": 2^%u of 4 bytes (%" PRIu64
               " KiB in all); the radix tables: %" PRIu64 " KiB\n",
               TABLE, nframes, g.ipt.hat, bits, (nframes * 16 + (UINT64_C(4) << bits)) / 1024,
               vms_pt_count_tables(&pt) * 4u);
    }
    if (vms_core_mmu_boot(g.c, pt.root, true) != VMS_OK) {
        cli_error("explain", "the core refused to turn on paging");
        return 1;
    }
    vms_core_mmu_load_root(g.c, pt.root, 1, true);
    vms_core_set_user(g.c, user);
    for (unsigned i = 0; i < nvas; i++) {
        vms_access_kind k = kind;
        if (demo && vas[i] == 0x00401234 && kind == VMS_ACC_READ)
            k = VMS_ACC_EXEC;
        bool mapped = false;
        for (unsigned j = 0; j < nmaps; j++)
            mapped |= (vas[i] & ~UINT64_C(0xfff)) == maps[j].va;
        explain_va(&g, vas[i], k, mapped);
    }
    return 0;
}
