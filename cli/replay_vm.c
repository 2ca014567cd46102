/*
 * replay_vm.c — `vmsim replay --vm TRACE`: replay a trace inside a VM.
 *
 *  - guest kernel (the default on x86-64 over EPT or NPT with 4K or 2M host pages): the
 *    kernel model boots as the VM's guest kernel (virt.h vms_guest) and the trace is
 *    replayed on it exactly as `vmsim replay` replays it on bare metal (vms_replay: the
 *    kernel events — exec, mmap, munmap, mprotect, brk, madvise, fork, clone, exit —
 *    and every reference, from its process's task on its vCPU); the JSON has the
 *    bare-metal replay's names plus "virt" and "vm" (exits, second stage, host swap);
 *  - guest pager (`--guest pager`, and what shadow paging, Arm Stage 2, 1G host pages
 *    and `--s2 none` use): the references only, as one guest process of virt.h's
 *    minimal demand pager (vms_vm); `--s2 none` runs the same pager natively (one
 *    stage: x86-64 tables at CR3, or AArch64 tables at TTBR0_EL1 with --arch aarch64),
 *    for the comparison docs/VIRT.md draws.
 * Every reference is a guest user access through the composed TLB and, on a miss, the
 * two-dimensional walk; second-stage violations are VM exits that back guest memory.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "vmsim/core.h"
#include "vmsim/strbuf.h"
#include "vmsim/trace.h"
#include "vmsim/virt.h"
#include "vmsim/arch/aarch64.h"

static const char usage[] =
    "usage: vmsim replay --vm [options] TRACE\n"
    "\n"
    "Replay TRACE's references as a guest process in a virtual machine: the guest's tables\n"
    "live in guest-physical memory, the hypervisor's EPT (or NPT) in host RAM; a TLB miss\n"
    "is a two-dimensional walk; second-stage violations are VM exits that back guest\n"
    "memory lazily. By default (x86-64, EPT or NPT, 4K or 2M host pages) the guest kernel\n"
    "is the kernel model and the trace's kernel events (exec, mmap, munmap, brk, fork,\n"
    "threads, exit ...) are replayed on it as bare-metal `vmsim replay` does; guest page\n"
    "faults go to it (no exit). With --guest pager (and for --shadow, --arch aarch64,\n"
    "--host-page 1G, --levels 5, --s2 none) only the references are replayed, on a\n"
    "minimal demand pager. docs/VIRT.md.\n"
    "\n"
    "options (each VM flag overrides its vm.* key; docs/CONFIG.md):\n"
    "  --preset NAME          machine preset (default skylake)\n"
    "  --config FILE          load configuration keys from an INI file\n"
    "  --set KEY=VALUE        set one key (repeatable), e.g. vm.nested_tlb=64,\n"
    "                         vm.pwc.pde=none, vm.cost.exit=2000, cache=skylake\n"
    "  --arch aarch64         an Arm machine (preset cortex-a76 unless --preset): an\n"
    "                         AArch64 guest (stage 1 at TTBR0_EL1) over Arm Stage 2\n"
    "  --s2 ept|npt|arm|none  the second stage (vm.s2, default ept on x86-64, arm on\n"
    "                         aarch64); none: the same pager natively\n"
    "  --levels G             guest paging levels 4|5 (vm.levels, default 4; Arm 4)\n"
    "  --host-levels H        second-stage levels 4|5 (vm.host_levels, default 4; Arm 3|4)\n"
    "  --host-page 4K|2M|1G   second-stage page size backing guest memory (vm.host_page,\n"
    "                         default 4K)\n"
    "  --shadow               shadow paging (vm.shadow): the hypervisor keeps GVA -> HPA\n"
    "                         tables the hardware walks in one dimension; every miss of\n"
    "                         them and every guest page-table write is a VM exit (x86-64\n"
    "                         and aarch64 guests)\n"
    "  --nested-tlb N         a fully associative nested TLB (GPA -> HPA) of N entries\n"
    "                         (vm.nested_tlb, default none)\n"
    "  --guest kernel|pager   the guest kernel: the kernel model (kernel events too) or\n"
    "                         the minimal demand pager (references only)\n"
    "  --host-limit SIZE      (guest kernel) the host memory the VM may hold: beyond it\n"
    "                         the host swaps guest pages out (double paging)\n"
    "  --limit N              stop after N references\n"
    "  --pipeline             decode the trace on a thread of its own (vmsim replay\n"
    "                         --help): the same output\n"
    "  --stats json           the counters as JSON: the machine's (and with the guest\n"
    "                         kernel its kernel's and the replay's, as bare-metal replay)\n"
    "                         plus \"virt\" (and \"vm\")\n"
    "  -h, --help             this text\n";

typedef struct vopts {
    const char *path;
    vms_s2_kind kind; /* VMS_S2_NONE: native */
    unsigned glevels, hlevels, ntlb;
    bool ntlb_set; /* --nested-tlb given: it replaces vm.nested_tlb */
    vms_pgsize hpage;
    uint64_t limit;
    uint64_t host_limit; /* --host-limit bytes (0: none) */
    unsigned guest;      /* --guest: 0 the default, 1 pager, 2 kernel */
    bool json, shadow, pipeline;
} vopts;

static int parse(int argc, char **argv, vopts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t n;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return -1;
        } else if (!strcmp(a, "--vm")) {
            continue;
        } else if (!strcmp(a, "--shadow")) {
            o->shadow = true;
        } else if (!strcmp(a, "--pipeline")) {
            o->pipeline = true;
        } else if (cli_vm_config_arg(a) && v) {
            i++; /* cli_vm_config's */
        } else if (!strcmp(a, "--s2") && v) {
            i++;
            if (strcmp(v, "ept") && strcmp(v, "npt") && strcmp(v, "arm") && strcmp(v, "none")) {
                cli_error("replay", "bad --s2 '%s': expected ept, npt, arm or none", v);
                return EXIT_USAGE;
            }
            o->kind = !strcmp(v, "ept")   ? VMS_S2_EPT
                      : !strcmp(v, "npt") ? VMS_S2_NPT
                      : !strcmp(v, "arm") ? VMS_S2_ARM
                                          : VMS_S2_NONE;
        } else if ((!strcmp(a, "--levels") || !strcmp(a, "--host-levels")) && v) {
            i++;
            if (strcmp(v, "3") && strcmp(v, "4") && strcmp(v, "5")) {
                cli_error("replay", "bad %s '%s': expected 4 or 5 (3 for an Arm stage 2)", a, v);
                return EXIT_USAGE;
            }
            *(a[2] == 'l' ? &o->glevels : &o->hlevels) = (unsigned)atoi(v);
        } else if (!strcmp(a, "--host-page") && v) {
            i++;
            o->hpage = !strcmp(v, "4K") ? VMS_PG_4K : !strcmp(v, "2M") ? VMS_PG_2M : VMS_PG_1G;
            if (strcmp(v, "4K") && strcmp(v, "2M") && strcmp(v, "1G")) {
                cli_error("replay", "bad --host-page '%s': expected 4K, 2M or 1G", v);
                return EXIT_USAGE;
            }
        } else if ((!strcmp(a, "--nested-tlb") || !strcmp(a, "--limit")) && v) {
            i++;
            if (!cli_parse_u64(v, false, &n) || (a[2] == 'n' && (n > 4096 || n > 64 * 64))) {
                cli_error("replay", "bad %s '%s': expected a number%s", a, v,
                          a[2] == 'n' ? " up to 4096" : "");
                return EXIT_USAGE;
            }
            if (a[2] == 'n')
                o->ntlb = (unsigned)n, o->ntlb_set = true;
            else
                o->limit = n;
        } else if (!strcmp(a, "--guest") && v) {
            i++;
            if (strcmp(v, "kernel") && strcmp(v, "pager")) {
                cli_error("replay", "bad --guest '%s': expected kernel or pager", v);
                return EXIT_USAGE;
            }
            o->guest = !strcmp(v, "pager") ? 1u : 2u;
        } else if (!strcmp(a, "--host-limit") && v) {
            i++;
            if (!cli_parse_u64(v, true, &n) || n < (UINT64_C(64) << 10) || (n & 4095)) {
                cli_error("replay",
                          "bad --host-limit '%s': expected a size of 64K or more, a "
                          "multiple of 4K",
                          v);
                return EXIT_USAGE;
            }
            o->host_limit = n;
        } else if (!strcmp(a, "--stats") && v) {
            i++;
            if (strcmp(v, "json")) {
                cli_error("replay", "bad --stats '%s': expected json", v);
                return EXIT_USAGE;
            }
            o->json = true;
        } else if ((a[0] != '-' || !strcmp(a, "-")) && !o->path) {
            o->path = a;
        } else {
            cli_error("replay", "unexpected argument '%s' (see vmsim replay --vm --help)", a);
            return EXIT_USAGE;
        }
    }
    if (!o->path) {
        cli_error("replay", "no trace given (see vmsim replay --vm --help)");
        return EXIT_USAGE;
    }
    return 0;
}

/* The native baseline: the same demand pager on the host's own tables (x86-64, or
 * AArch64 with arm: maps made young and dirty as the Arm guest's pager makes them). */
typedef struct native {
    vms_pt pt;
    vms_pt_bump tables;
    uint64_t next, faults;
    bool arm;
} native;

/* Is f a not-present page: x86 #PF with P = 0, or an AArch64 Translation fault? */
static bool native_not_present(const native *nv, const vms_fault *f)
{
    if (f->kind != VMS_FAULT_PF)
        return false;
    return nv->arm ? (vms_a64_esr_fsc(f->error_code) & ~3u) == VMS_A64_FSC_TRANS
                   : !(f->error_code & VMS_PFERR_P);
}

/* Map a fresh frame at va's page. */
static vms_status native_map(native *nv, uint64_t va)
{
    va &= ~VMS_PAGE_MASK;
    if (nv->arm)
        return vms_pt_map_prot(&nv->pt, va, nv->next, VMS_PG_4K,
                               VMS_PGPROT_R | VMS_PGPROT_W | VMS_PGPROT_X | VMS_PGPROT_U |
                                   VMS_PGPROT_A | VMS_PGPROT_D,
                               NULL);
    return vms_pt_map(&nv->pt, va, nv->next, VMS_PG_4K, VMS_PTE_US | VMS_PTE_RW, NULL);
}

static bool native_access(native *nv, vms_core *c, uint64_t va, vms_access_kind k, uint32_t len)
{
    for (unsigned tries = 0; tries < 64; tries++) {
        vms_access_result r = vms_core_access(c, va, k, NULL, len);
        if (r.ok)
            return true;
        va += r.done;
        len -= (uint32_t)r.done;
        if (!native_not_present(nv, &r.fault) || native_map(nv, r.fault.va) != VMS_OK)
            return false;
        nv->next += VMS_PAGE_SIZE;
        nv->faults++;
    }
    return false;
}

/* Run the trace; returns the references replayed, or UINT64_MAX on a reader failure. */
static uint64_t run(const vopts *o, vms_core *c, vms_vm *vm, native *nv, uint64_t *failed)
{
    vms_trace_reader *r;
    vms_err err = {0};
    if (cli_trace_open(o->path, VMS_TRACE_AUTO, o->pipeline, &r, &err) != VMS_OK) {
        cli_error("replay", "%s", err.msg);
        return UINT64_MAX;
    }
    vms_trace_event ev;
    uint64_t n = 0;
    while ((!o->limit || n < o->limit) && vms_trace_read(r, &ev, &err)) {
        if (ev.type != VMS_TEV_ACCESS)
            continue;
        n++;
        unsigned kind = ev.access.kind;
        for (unsigned pass = 0; pass < (kind == VMS_TACC_MODIFY ? 2u : 1u); pass++) {
            vms_access_kind k = kind == VMS_TACC_MODIFY ? (pass ? VMS_ACC_WRITE : VMS_ACC_READ)
                                                        : (vms_access_kind)kind;
            vms_fault f;
            bool ok = vm ? vms_vm_access(vm, c, ev.access.va, k, ev.access.size, &f)
                         : native_access(nv, c, ev.access.va, k, ev.access.size);
            *failed += !ok;
        }
    }
    bool bad = vms_trace_reader_error(r)->status != VMS_OK;
    if (bad)
        cli_error("replay", "%s", vms_trace_reader_error(r)->msg);
    vms_trace_reader_close(r);
    return bad ? UINT64_MAX : n;
}

static void print_json(const vms_config *conf, const char *path, vms_machine *m, vms_vm *vm,
                       uint64_t refs, uint64_t failed, const native *nv, bool shadow)
{
    vms_strbuf sb;
    vms_strbuf_init(&sb, NULL);
    cli_input in;
    cli_input_init(&in, "trace", path);
    vms_strbuf_printf(&sb, "{");
    cli_json_meta(&sb, conf, &in);
    vms_strbuf_printf(&sb, "\"references\":%" PRIu64 ",\"failed\":%" PRIu64 ",", refs, failed);
    vms_machine_stats_json_members(m, &sb);
    if (vm) {
        const vms_vm_stats *s = vms_vm_get_stats(vm);
        const vms_nested_stats *ns = vms_nested_get_stats(vms_vm_nested(vm));
        vms_strbuf_printf(
            &sb,
            ",\"virt\":{\"exits\":%" PRIu64 ",\"exits_s2\":%" PRIu64 ",\"exit_cycles\":%" PRIu64
            ",\"s2_backed\":%" PRIu64 ",\"guest_faults\":%" PRIu64 ",\"walks_2d\":%" PRIu64
            ",\"guest_refs\":%" PRIu64 ",\"s2_refs\":%" PRIu64 ",\"s2_refs_tables\":%" PRIu64
            ",\"s2_walks\":%" PRIu64 ",\"s2_ad_writes\":%" PRIu64 ",\"s2_tlb_lookups\":%" PRIu64
            ",\"s2_tlb_hits\":%" PRIu64 ",\"exits_violation\":%" PRIu64
            ",\"exits_misconfig\":%" PRIu64 ",\"shadow\":%s,\"exits_pf\":%" PRIu64
            ",\"exits_ptwrite\":%" PRIu64 ",\"shadow_fills\":%" PRIu64 ",\"injected\":%" PRIu64
            ",\"sw_walk_refs\":%" PRIu64 ",\"exits_tlbi\":%" PRIu64 "}",
            s->exits, s->exits_s2, s->exit_cycles, s->backed, s->guest_faults, ns->walks,
            ns->guest_refs, ns->s2_refs, ns->s2_refs_tables, ns->s2_walks, ns->s2_ad_writes,
            ns->s2_tlb_lookups, ns->s2_tlb_hits, ns->exits_violation, ns->exits_misconfig,
            shadow ? "true" : "false", s->exits_pf, s->exits_ptwrite, s->shadow_fills, s->injected,
            s->sw_walk_refs, s->exits_tlbi);
    } else {
        vms_strbuf_printf(&sb, ",\"virt\":null,\"pager_faults\":%" PRIu64, nv->faults);
    }
    vms_strbuf_printf(&sb, "}\n");
    fputs(vms_strbuf_str(&sb), stdout);
    vms_strbuf_free(&sb);
}

/* ---- the kernel model as the guest kernel ---- */

/* The 2D-walk counters of every vCPU, summed. */
static vms_nested_stats nested_sum(vms_guest *g, unsigned nvcpus)
{
    vms_nested_stats t = {0};
    for (unsigned i = 0; i < nvcpus; i++) {
        const vms_nested_stats *n = vms_nested_get_stats(vms_guest_nested(g, i));
        t.walks += n->walks;
        t.guest_refs += n->guest_refs;
        t.s2_refs += n->s2_refs;
        t.s2_refs_tables += n->s2_refs_tables;
        t.s2_walks += n->s2_walks;
        t.s2_ad_writes += n->s2_ad_writes;
        t.s2_tlb_lookups += n->s2_tlb_lookups;
        t.s2_tlb_hits += n->s2_tlb_hits;
        t.exits_violation += n->exits_violation;
        t.exits_misconfig += n->exits_misconfig;
    }
    return t;
}

/* The "virt" member with the pager's names, filled from the guest's counters (no
 * shadow paging here), then "vm" (vms_guest_stats_json_members). */
static void guest_json(vms_strbuf *sb, vms_guest *g, unsigned nvcpus)
{
    const vms_guest_stats *s = vms_guest_get_stats(g);
    const vms_kernel_stats *ks = vms_kernel_get_stats(vms_guest_kernel(g));
    vms_nested_stats ns = nested_sum(g, nvcpus);
    vms_strbuf_printf(
        sb,
        ",\"virt\":{\"guest\":\"kernel\",\"exits\":%" PRIu64 ",\"exits_s2\":%" PRIu64
        ",\"exit_cycles\":%" PRIu64 ",\"s2_backed\":%" PRIu64 ",\"guest_faults\":%" PRIu64
        ",\"walks_2d\":%" PRIu64 ",\"guest_refs\":%" PRIu64 ",\"s2_refs\":%" PRIu64
        ",\"s2_refs_tables\":%" PRIu64 ",\"s2_walks\":%" PRIu64 ",\"s2_ad_writes\":%" PRIu64
        ",\"s2_tlb_lookups\":%" PRIu64 ",\"s2_tlb_hits\":%" PRIu64 ",\"exits_violation\":%" PRIu64
        ",\"exits_misconfig\":%" PRIu64 ",\"shadow\":false,\"exits_pf\":0,\"exits_ptwrite\":0,"
        "\"shadow_fills\":0,\"injected\":0,\"sw_walk_refs\":0},",
        s->exits, s->exits, s->exit_cycles, s->backed, ks->pgfault, ns.walks, ns.guest_refs,
        ns.s2_refs, ns.s2_refs_tables, ns.s2_walks, ns.s2_ad_writes, ns.s2_tlb_lookups,
        ns.s2_tlb_hits, ns.exits_violation, ns.exits_misconfig);
    vms_guest_stats_json_members(g, sb);
}

/* The replay's warnings (unknown files, refused calls) on stderr, as bare metal's. */
static void on_log(void *ud, vms_log_level level, const char *msg)
{
    unsigned *n = ud;
    (void)level;
    if ((*n)++ < 20)
        fprintf(stderr, "vmsim replay: %s\n", msg);
}

/*
 * Boot the kernel model in a VM of conf's machine (its cores; vCPU i on host core i)
 * and replay the trace on it with vms_replay, as bare-metal replay does. Returns the
 * exit status.
 */
static int run_kernel(const vopts *o, vms_config *conf)
{
    const vms_config_vm *cv = &conf->vm;
    vms_err err = {0};
    static vms_config shown; /* as configured: the JSON does not name the private directory */
    shown = *conf;
    cli_tmp_writeback(conf); /* the trace's files: copies only in a private directory */
    vms_kernel_config kc = vms_config_kernel(conf);
    vms_machine *m = NULL;
    vms_guest *g = NULL;
    vms_trace_reader *rd = NULL;
    vms_replay *r = NULL;
    unsigned nvcpus = conf->machine.ncores, warnings = 0;
    vms_tlb_config ntlb;
    vms_config_vm_tlb(cv, &ntlb);
    int rc = 1;
    if (vms_machine_create(NULL, &conf->machine, &m, &err) != VMS_OK) {
        cli_error("replay", "%s", err.msg);
        return EXIT_USAGE;
    }
    vms_guest_config gc = {.kind = o->kind,
                           .host_levels = o->hlevels,
                           .host_page = o->hpage,
                           .ad = cv->ad,
                           .guest_mem = cv->mem,
                           .s2_tables_at = UINT64_C(0x100000),
                           .host_at = UINT64_C(4) << 30,
                           .host_end = UINT64_C(16) << 30,
                           .host_frames = o->host_limit >> 12,
                           .vpid = 1,
                           .nvcpus = nvcpus,
                           .exit_cycles = cv->exit_cycles,
                           .s2_tlb = ntlb.nparts ? &ntlb : NULL,
                           .guest_pwc = &cv->guest_pwc,
                           .seed = conf->machine.seed,
                           .kernel = &kc};
    vms_replay_opts ro = {.limit = o->limit, .log = on_log, .ud = &warnings};
    if (vms_guest_create(m, &gc, &g, &err) != VMS_OK ||
        cli_trace_open(o->path, VMS_TRACE_AUTO, o->pipeline, &rd, &err) != VMS_OK ||
        vms_replay_create(vms_guest_kernel(g), &ro, &r, &err) != VMS_OK ||
        vms_replay_run(r, rd, &err) != VMS_OK) {
        cli_error("replay", "%s", err.msg);
        goto out;
    }
    vms_guest_exit_all(g);
    vms_kernel *gk = vms_guest_kernel(g);
    const vms_replay_stats *rs = vms_replay_get_stats(r);
    if (o->json) {
        vms_strbuf sb;
        vms_strbuf_init(&sb, NULL);
        cli_input in;
        cli_input_init(&in, "trace", o->path);
        vms_strbuf_printf(&sb, "{");
        cli_json_meta(&sb, &shown, &in);
        vms_strbuf_printf(&sb, "\"references\":%" PRIu64 ",\"failed\":%" PRIu64 ",", rs->references,
                          rs->segv);
        vms_machine_stats_json_members(m, &sb);
        vms_kernel_stats_json_members(gk, &sb);
        vms_replay_stats_json_members(r, &sb);
        guest_json(&sb, g, nvcpus);
        vms_strbuf_printf(&sb, "}\n");
        fputs(vms_strbuf_str(&sb), stdout);
        vms_strbuf_free(&sb);
    } else {
        uint64_t walks = 0, refs = 0, cycles = 0;
        for (unsigned i = 0; i < nvcpus; i++) {
            vms_core *c = vms_machine_core(m, i);
            walks += vms_core_walk_stats(c)->walks;
            refs += vms_core_walk_stats(c)->mem_refs;
            cycles += vms_core_cycles(c);
        }
        const vms_guest_stats *gs = vms_guest_get_stats(g);
        printf("%" PRIu64 " references (%" PRIu64 " failed), %" PRIu64 " walks, %" PRIu64
               " walk references, %" PRIu64 " cycles\n",
               rs->references, rs->segv, walks, refs, cycles);
        printf("VM exits %" PRIu64 " (%" PRIu64 " cycles), guest page faults %" PRIu64
               " (guest kernel: %" PRIu64 " processes, %" PRIu64 " system calls)\n",
               gs->exits, gs->exit_cycles, vms_kernel_get_stats(gk)->pgfault, rs->processes,
               rs->syscalls);
        if (gs->host_swapouts)
            printf("host swap %" PRIu64 " out, %" PRIu64 " in (%" PRIu64 " double paging)\n",
                   gs->host_swapouts, gs->host_swapins, gs->double_paging);
    }
    rc = 0;
out:
    vms_replay_destroy(r);
    vms_trace_reader_close(rd);
    vms_guest_destroy(g);
    vms_machine_destroy(m);
    cli_tmp_writeback_remove();
    return rc;
}

int cmd_replay_vm(int argc, char **argv)
{
    static vms_config conf; /* large: kept off the stack */
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(usage, stdout);
            return 0;
        }
    int rc = cli_vm_config(argc, argv, "replay", &conf);
    if (rc)
        return rc;
    const vms_config_vm *cv = &conf.vm;
    bool arm = conf.machine.fmt && !strcmp(conf.machine.fmt->arch, "aarch64");
    vopts o = {.kind = cv->s2 ? (vms_s2_kind)cv->s2
                       : arm  ? VMS_S2_ARM
                              : VMS_S2_EPT,
               .glevels = cv->guest_levels,
               .hlevels = cv->host_levels,
               .hpage = (vms_pgsize)cv->host_page,
               .shadow = cv->shadow};
    rc = parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;
    vms_err err = {0};
    if (conf.machine.fmt && !arm) {
        cli_error("replay", "--vm models x86-64 and aarch64 guests, not arch '%s'",
                  conf.machine.fmt->arch);
        return EXIT_USAGE;
    }
    if (arm ? o.kind != VMS_S2_ARM && o.kind != VMS_S2_NONE : o.kind == VMS_S2_ARM) {
        cli_error("replay", "%s",
                  arm ? "an aarch64 guest runs over --s2 arm (Stage 2), or natively with --s2 "
                        "none"
                      : "--s2 arm needs --arch aarch64");
        return EXIT_USAGE;
    }
    if (arm && o.kind == VMS_S2_NONE && (o.glevels != 4 || o.shadow)) {
        cli_error("replay", "--s2 none on aarch64: 4-level AArch64 tables, no --shadow");
        return EXIT_USAGE;
    }
    if (!arm && o.glevels != 4 && o.glevels != 5) {
        cli_error("replay", "--levels %u: an x86-64 guest has 4 or 5 paging levels", o.glevels);
        return EXIT_USAGE;
    }
    /* The guest kernel: the kernel model wherever it runs (x86-64 over EPT or NPT with
     * 4K or 2M host pages), unless --guest pager. */
    bool can = !arm && !o.shadow && o.kind != VMS_S2_NONE && o.glevels != 5 &&
               (o.hpage == VMS_PG_4K || o.hpage == VMS_PG_2M);
    if (o.guest == 2 && !can) {
        cli_error("replay",
                  "--guest kernel runs on x86-64 over EPT or NPT with 4K or 2M host "
                  "pages and 4 guest levels (not with --shadow, --arch aarch64, --s2 none, 1G or "
                  "--levels 5)");
        return EXIT_USAGE;
    }
    if (o.host_limit && !(can && o.guest != 1)) {
        cli_error("replay", "--host-limit needs the kernel model as guest kernel");
        return EXIT_USAGE;
    }
    if (conf.machine.ram_bytes < (UINT64_C(16) << 30))
        conf.machine.ram_bytes = UINT64_C(16) << 30; /* sparse: host memory for guests at 4 GiB */
    conf.vm.s2 = o.kind == VMS_S2_NONE ? conf.vm.s2 : (unsigned)o.kind;
    conf.vm.guest_levels = o.glevels;
    conf.vm.host_levels = o.hlevels;
    conf.vm.host_page = o.hpage;
    if (o.ntlb_set)
        conf.vm.nested_tlb = (vms_pwc_level_config){o.ntlb > 64 ? (o.ntlb + 63) / 64 * 64 : o.ntlb,
                                                    o.ntlb > 64 ? 64 : o.ntlb, NULL};
    if (can && o.guest != 1)
        return run_kernel(&o, &conf);
    /* What the run uses, so that the JSON's "config" says it. */
    conf.machine.ncores = 1;
    if (o.kind == VMS_S2_NONE)
        conf.machine.levels = o.glevels;
    conf.vm.shadow = o.shadow; /* the rest of conf.vm is set above, for both guests */
    vms_machine_config cfg = conf.machine;
    vms_machine *m;
    if (vms_machine_create(NULL, &cfg, &m, &err) != VMS_OK) {
        cli_error("replay", "%s", err.msg);
        return EXIT_USAGE;
    }
    vms_core *c = vms_machine_core(m, 0);
    vms_vm *vm = NULL;
    native nv = {.tables = {vms_machine_ram(m), UINT64_C(0x100000), 0, 0, 0},
                 .next = UINT64_C(4) << 30,
                 .arm = arm};
    vms_tlb_config ntlb;
    vms_config_vm_tlb(cv, &ntlb);
    if (o.ntlb_set) {
        ntlb =
            (vms_tlb_config){o.ntlb ? 1u : 0u, {{VMS_TLB_SIZES_ALL, 1, o.ntlb ? o.ntlb : 1, NULL}}};
        if (o.ntlb > 64) /* past 64 ways: 64-way sets */
            ntlb.part[0] = (vms_tlb_part_config){VMS_TLB_SIZES_ALL, (o.ntlb + 63) / 64, 64, NULL};
    }
    rc = 1;
    if (o.kind != VMS_S2_NONE) {
        vms_vm_config vc = {.kind = o.kind,
                            .host_levels = o.hlevels,
                            .guest_levels = o.glevels,
                            .host_page = o.hpage,
                            .ad = cv->ad,
                            .guest_mem = cv->mem,
                            .exit_cycles = cv->exit_cycles,
                            .s2_tables_at = UINT64_C(0x100000),
                            .host_at = UINT64_C(4) << 30,
                            .host_end = UINT64_C(16) << 30,
                            .vpid = 1,
                            .shadow = o.shadow,
                            .s2_tlb = ntlb.nparts ? &ntlb : NULL,
                            .guest_pwc = &cv->guest_pwc,
                            .seed = cfg.seed};
        if (vms_vm_create(m, &vc, &vm, &err) != VMS_OK || vms_vm_enter(vm, c) != VMS_OK) {
            cli_error("replay", "%s", err.msg);
            goto out;
        }
    } else {
        vms_pt_ops ops = vms_pt_bump_ops(&nv.tables);
        vms_status st =
            arm ? vms_pt_init_format(&nv.pt, vms_machine_bus(m), vms_format_aarch64(), &ops, &err)
                : vms_pt_init(&nv.pt, vms_machine_bus(m), o.glevels, &ops, &err);
        if (st != VMS_OK) {
            cli_error("replay", "%s", err.msg);
            goto out;
        }
        if (arm) { /* EL0 with TTBR0_EL1 at the tables, ASID 0: the Arm guest's registers */
            uint64_t tcr = vms_a64_tcr(48, false, false, false, false);
            if (vms_core_a64_init(c, tcr, VMS_A64_SCTLR_M) != VMS_OK ||
                vms_core_msr_ttbr0_el1(c, nv.pt.root) != VMS_OK) {
                cli_error("replay", "the aarch64 core refused its translation registers");
                goto out;
            }
        } else {
            vms_core_write_cr3(c, nv.pt.root);
        }
        vms_core_set_user(c, true);
    }
    uint64_t failed = 0, refs = run(&o, c, vm, &nv, &failed);
    if (vm) /* also after a reader failure: the core gives the VM's structures back before
             * vms_vm_destroy frees them (else vms_machine_destroy frees its PWC again) */
        vms_vm_leave(vm, c);
    if (refs == UINT64_MAX)
        goto out;
    if (o.json) {
        print_json(&conf, o.path, m, vm, refs, failed, &nv, o.shadow);
    } else {
        const vms_walk_stats *w = vms_core_walk_stats(c);
        printf("%" PRIu64 " references (%" PRIu64 " failed), %" PRIu64 " walks, %" PRIu64
               " walk references, %" PRIu64 " cycles\n",
               refs, failed, w->walks, w->mem_refs, vms_core_cycles(c));
        if (vm)
            printf("VM exits %" PRIu64 " (%" PRIu64 " cycles), guest page faults %" PRIu64 "\n",
                   vms_vm_get_stats(vm)->exits, vms_vm_get_stats(vm)->exit_cycles,
                   vms_vm_get_stats(vm)->guest_faults);
    }
    rc = 0;
out:
    vms_vm_destroy(vm);
    vms_machine_destroy(m);
    return rc;
}
