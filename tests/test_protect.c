/*
 * test_protect.c — protection as the kernel uses it (x86-64; issue 16 item 14): the
 * kernel turns on CR4.SMEP, CR4.SMAP and CR4.PKE at boot (kernel.smep/smap/pke turn
 * them off), its own user accesses run inside STAC … CLAC while a stray dereference of
 * a user pointer is stopped by SMAP (vms_proc_kernel_deref), and protection keys work
 * as Linux's pkeys(7): pkey_alloc / pkey_free / pkey_mprotect, a PKRU per thread that
 * clone and fork copy, exec resets and every switch loads, WRPKRU.
 */
#include "harness.h"
#include "vmsim/core.h"
#include "vmsim/kernel.h"
#include "vmsim/mman.h"
#include "vmsim/proc.h"
#include "vmsim/pt.h"
#include "vmsim/strbuf.h"

#define RW  (VMS_PROT_READ | VMS_PROT_WRITE)
#define ANP (VMS_MAP_PRIVATE | VMS_MAP_ANONYMOUS)

typedef struct fx {
    vms_machine *m;
    vms_kernel *k;
    vms_task *t;
} fx;

/* kc_edit (may be NULL) changes the default kernel config. */
static bool fx_make(fx *f, unsigned ncores, const char *arch, void (*kc_edit)(vms_kernel_config *))
{
    memset(f, 0, sizeof *f);
    vms_machine_config mc;
    vms_machine_preset("skylake", &mc, NULL);
    mc.ram_bytes = UINT64_C(64) << 20;
    mc.ncores = ncores;
    if (arch) {
        const vms_pt_format *af = vms_format_for(arch, 0);
        mc.fmt = af;
        mc.levels = af->levels;
    }
    vms_kernel_config kc;
    vms_kernel_config_default(&kc);
    kc.seed = th_seed;
    if (kc_edit)
        kc_edit(&kc);
    vms_err err = {0};
    if (vms_machine_create(NULL, &mc, &f->m, &err) != VMS_OK ||
        vms_kernel_create(f->m, &kc, &f->k, &err) != VMS_OK) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return false;
    }
    return vms_proc_spawn(f->k, "p", 0, &f->t, NULL) == VMS_OK;
}

static void fx_done(fx *f)
{
    vms_kernel_destroy(f->k);
    vms_machine_destroy(f->m);
}

static uint64_t map(fx *f, uint64_t pages, unsigned prot)
{
    uint64_t va = 0;
    CHECK_EQ(vms_sys_mmap(f->k, f->t, 0, pages * 4096, prot, ANP, NULL, 0, &va, NULL), VMS_OK);
    return va;
}

static void no_smep(vms_kernel_config *kc)
{
    kc->smep = false;
}
static void no_smap(vms_kernel_config *kc)
{
    kc->smap = false;
}
static void no_pke(vms_kernel_config *kc)
{
    kc->pke = false;
}

static uint64_t cr4_of(fx *f, unsigned core)
{
    return vms_core_regs(vms_machine_core(f->m, core))->cr4;
}

/* Linux turns them on when the CPU has them; each key turns one off. */
static void test_boot_cr4(void)
{
    const uint64_t all = VMS_CR4_SMEP | VMS_CR4_SMAP | VMS_CR4_PKE;
    fx f;
    REQUIRE_VOID(fx_make(&f, 2, NULL, NULL));
    for (unsigned c = 0; c < 2; c++)
        CHECK_EQ(cr4_of(&f, c) & all, all);
    CHECK_EQ(vms_task_pkru(f.t), 0x55555554u); /* init_pkru_value */
    fx_done(&f);
    void (*edits[3])(vms_kernel_config *) = {no_smep, no_smap, no_pke};
    const uint64_t bit[3] = {VMS_CR4_SMEP, VMS_CR4_SMAP, VMS_CR4_PKE};
    for (unsigned i = 0; i < 3; i++) {
        REQUIRE_VOID(fx_make(&f, 1, NULL, edits[i]));
        CHECK_EQ(cr4_of(&f, 0) & all, all & ~bit[i]);
        fx_done(&f);
    }
    REQUIRE_VOID(fx_make(&f, 1, NULL, no_pke));
    CHECK_EQ(vms_task_pkru(f.t), 0u);
    fx_done(&f);
}

/* copy_to_user works under SMAP; a stray dereference does not (and does without SMAP). */
static void test_smap(void)
{
    for (int smap = 1; smap >= 0; smap--) {
        fx f;
        REQUIRE_VOID(fx_make(&f, 1, NULL, smap ? NULL : no_smap));
        uint64_t va = map(&f, 1, RW);
        CHECK_EQ(vms_proc_write(f.k, f.t, va, "hi", 2), VMS_ACCESS_OK);
        vms_access_info ai;
        char b[2] = {0};
        CHECK_EQ(vms_proc_kernel_access(f.k, f.t, va, VMS_ACC_READ, b, 2, &ai, NULL), VMS_OK);
        CHECK_EQ(ai.outcome, VMS_ACCESS_OK);
        CHECK(memcmp(b, "hi", 2) == 0);
        memset(b, 0, 2);
        CHECK_EQ(vms_proc_kernel_deref(f.k, f.t, va, VMS_ACC_READ, b, 2, &ai, NULL), VMS_OK);
        const vms_kernel_stats *s = vms_kernel_get_stats(f.k);
        vms_strbuf sb;
        vms_strbuf_init(&sb, NULL);
        vms_kernel_dmesg(f.k, "SMAP", &sb);
        if (smap) {
            CHECK_EQ(ai.outcome, VMS_ACCESS_EFAULT);
            CHECK_EQ(ai.addr, va);
            CHECK(!(ai.error_code & VMS_PFERR_U) && (ai.error_code & VMS_PFERR_P));
            CHECK_EQ(s->smap_faults, 1);
            CHECK(b[0] == 0); /* nothing moved */
            CHECK(sb.len > 0);
            /* A stray write is stopped too, and the page is untouched. */
            CHECK_EQ(
                vms_proc_kernel_deref(f.k, f.t, va, VMS_ACC_WRITE, (char[]){"XX"}, 2, &ai, NULL),
                VMS_OK);
            CHECK_EQ(ai.outcome, VMS_ACCESS_EFAULT);
            CHECK_EQ(vms_proc_read(f.k, f.t, va, b, 2), VMS_ACCESS_OK);
            CHECK(memcmp(b, "hi", 2) == 0);
        } else {
            CHECK_EQ(ai.outcome, VMS_ACCESS_OK);
            CHECK(memcmp(b, "hi", 2) == 0);
            CHECK_EQ(s->smap_faults, 0);
            CHECK_EQ(sb.len, 0);
        }
        vms_strbuf_free(&sb);
        fx_done(&f);
    }
}

/* SMEP: a supervisor fetch from a user page faults (I set), whatever the page's X. */
static void test_smep(void)
{
    for (int smep = 1; smep >= 0; smep--) {
        fx f;
        REQUIRE_VOID(fx_make(&f, 1, NULL, smep ? NULL : no_smep));
        uint64_t va = map(&f, 1, RW | VMS_PROT_EXEC);
        CHECK_EQ(vms_proc_write(f.k, f.t, va, "\xc3", 1), VMS_ACCESS_OK);
        char b;
        vms_access_info ai;
        CHECK_EQ(vms_proc_access(f.k, f.t, va, VMS_ACC_EXEC, &b, 1, &ai, NULL), VMS_OK);
        CHECK_EQ(ai.outcome, VMS_ACCESS_OK); /* user mode executes it */
        vms_core *c = vms_machine_core(f.m, 0);
        vms_core_set_user(c, false);
        vms_access_result r = vms_core_access(c, va, VMS_ACC_EXEC, &b, 1);
        if (smep) {
            CHECK(!r.ok);
            CHECK(r.fault.error_code & VMS_PFERR_I);
            CHECK(r.fault.error_code & VMS_PFERR_P);
        } else {
            CHECK(r.ok);
        }
        fx_done(&f);
    }
}

/* The key a page's PTE holds (bits 62:59). */
static unsigned pte_key(fx *f, uint64_t va)
{
    vms_task_info ti;
    vms_task_get_info(f->t, &ti);
    vms_pt pt = {vms_machine_bus(f->m), vms_format_x86_64(4), 4, ti.cr3 & ~UINT64_C(0xFFF), {0}};
    uint64_t pte = 0;
    CHECK(vms_pt_lookup(&pt, va, &pte, NULL, NULL));
    return vms_pte_pkey(pte);
}

static void test_pkeys(void)
{
    fx f;
    REQUIRE_VOID(fx_make(&f, 2, NULL, NULL));
    uint64_t va = map(&f, 4, RW);
    CHECK_EQ(vms_proc_write(f.k, f.t, va, "a", 1), VMS_ACCESS_OK);
    int key = -1;
    vms_err err = {0};
    /* Bad requests. */
    CHECK_EQ(vms_sys_pkey_alloc(f.k, f.t, 1, 0, &key, &err), VMS_ERR_INVAL);
    CHECK_EQ(vms_sys_pkey_alloc(f.k, f.t, 0, 4, &key, &err), VMS_ERR_INVAL);
    CHECK_EQ(vms_sys_pkey_mprotect(f.k, f.t, va, 4096, RW, 3, &err), VMS_ERR_INVAL);
    CHECK_EQ(vms_sys_pkey_free(f.k, f.t, 0, &err), VMS_ERR_INVAL);
    /* A write-disabled key on two pages. */
    CHECK_EQ(vms_sys_pkey_alloc(f.k, f.t, 0, VMS_PKEY_DISABLE_WRITE, &key, &err), VMS_OK);
    CHECK_EQ(key, 1);
    CHECK_EQ(vms_task_pkru(f.t), (0x55555554u & ~(3u << 2)) | (2u << 2));
    vms_task *t2; /* a thread made now copies PKRU */
    CHECK_EQ(vms_proc_clone_thread(f.k, f.t, 0, &t2, NULL), VMS_OK);
    CHECK_EQ(vms_task_pkru(t2), vms_task_pkru(f.t));
    CHECK_EQ(vms_sys_pkey_mprotect(f.k, f.t, va, 2 * 4096, RW, key, &err), VMS_OK);
    CHECK_EQ(pte_key(&f, va), 1);
    char b = 0;
    vms_access_info ai;
    CHECK_EQ(vms_proc_read(f.k, f.t, va, &b, 1), VMS_ACCESS_OK);
    CHECK_EQ(b, 'a');
    /* The kernel's own access obeys PKRU too: copy_to_user fails with EFAULT. */
    CHECK_EQ(vms_proc_kernel_access(f.k, f.t, va, VMS_ACC_WRITE, (char[]){"k"}, 1, &ai, NULL),
             VMS_OK);
    CHECK_EQ(ai.outcome, VMS_ACCESS_EFAULT);
    /* WRPKRU by t2 only: t2 may write, f.t (same core, switched back) may not. */
    CHECK_EQ(vms_task_wrpkru(f.k, t2, 0, &err), VMS_OK);
    CHECK_EQ(vms_proc_write(f.k, t2, va, "b", 1), VMS_ACCESS_OK);
    CHECK_EQ(vms_proc_read(f.k, f.t, va, &b, 1), VMS_ACCESS_OK);
    CHECK_EQ(b, 'b');
    /* A page of the key not yet touched: refused before it is brought in. */
    CHECK_EQ(vms_proc_access(f.k, f.t, va + 4096, VMS_ACC_WRITE, (char[]){"c"}, 1, &ai, NULL),
             VMS_OK);
    CHECK_EQ(ai.outcome, VMS_ACCESS_SEGV);
    CHECK_EQ(ai.si_code, VMS_SEGV_PKUERR);
    CHECK_EQ(ai.faults, 1); /* one fault: no page was allocated for a refused access */
    CHECK(!vms_task_alive(f.t));
    fx_done(&f);

    /* Access-disable, fork and exec; keys run out; freed keys. */
    REQUIRE_VOID(fx_make(&f, 1, NULL, NULL));
    va = map(&f, 1, RW);
    CHECK_EQ(vms_proc_write(f.k, f.t, va, "a", 1), VMS_ACCESS_OK);
    CHECK_EQ(vms_sys_pkey_alloc(f.k, f.t, 0, VMS_PKEY_DISABLE_ACCESS, &key, &err), VMS_OK);
    CHECK_EQ(vms_sys_pkey_mprotect(f.k, f.t, va, 4096, RW, key, &err), VMS_OK);
    CHECK_EQ(vms_task_wrpkru(f.k, f.t, 1u << 2, &err), VMS_OK); /* AD for key 1 only */
    vms_task *child;
    CHECK_EQ(vms_proc_fork(f.k, f.t, &child, NULL), VMS_OK);
    CHECK_EQ(vms_task_pkru(child), 1u << 2);
    CHECK_EQ(vms_task_pkru(child), vms_task_pkru(f.t));
    CHECK_EQ(vms_proc_access(f.k, child, va, VMS_ACC_READ, &b, 1, &ai, NULL), VMS_OK);
    CHECK_EQ(ai.outcome, VMS_ACCESS_SEGV); /* the key came along, and so did PKRU */
    CHECK_EQ(ai.si_code, VMS_SEGV_PKUERR);
    CHECK_EQ(vms_sys_pkey_mprotect(f.k, f.t, va, 4096, RW, 0, &err), VMS_OK); /* key 0 */
    CHECK_EQ(vms_proc_read(f.k, f.t, va, &b, 1), VMS_ACCESS_OK);
    CHECK_EQ(pte_key(&f, va), 0);
    CHECK_EQ(vms_sys_pkey_free(f.k, f.t, key, &err), VMS_OK);
    CHECK_EQ(vms_sys_pkey_mprotect(f.k, f.t, va, 4096, RW, key, &err), VMS_ERR_INVAL);
    for (int i = 1; i < VMS_NR_PKEYS; i++) {
        CHECK_EQ(vms_sys_pkey_alloc(f.k, f.t, 0, 0, &key, &err), VMS_OK);
        CHECK_EQ(key, i);
    }
    CHECK_EQ(vms_sys_pkey_alloc(f.k, f.t, 0, 0, &key, &err), VMS_ERR_UNSUPPORTED);
    CHECK_EQ(vms_task_wrpkru(f.k, f.t, 0xFFFFFFFCu, &err), VMS_OK);
    CHECK_EQ(vms_proc_exec(f.k, f.t, "new", NULL), VMS_OK);
    CHECK_EQ(vms_task_pkru(f.t), 0x55555554u);
    fx_done(&f);

    /* Without PKE: no keys, no WRPKRU, and mprotect stays as it was. */
    REQUIRE_VOID(fx_make(&f, 1, NULL, no_pke));
    CHECK_EQ(vms_sys_pkey_alloc(f.k, f.t, 0, 0, &key, &err), VMS_ERR_UNSUPPORTED);
    CHECK_EQ(vms_task_wrpkru(f.k, f.t, 0, &err), VMS_ERR_UNSUPPORTED);
    fx_done(&f);
    /* On AArch64: no PKE (CR4 is x86's), pkey_alloc refused, SMAP keys ignored. */
    REQUIRE_VOID(fx_make(&f, 1, "aarch64", NULL));
    CHECK_EQ(vms_sys_pkey_alloc(f.k, f.t, 0, 0, &key, &err), VMS_ERR_UNSUPPORTED);
    va = map(&f, 1, RW);
    CHECK_EQ(vms_proc_kernel_deref(f.k, f.t, va, VMS_ACC_WRITE, (char[]){"z"}, 1, &ai, NULL),
             VMS_OK);
    CHECK_EQ(ai.outcome, VMS_ACCESS_OK);
    fx_done(&f);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "protect");
    test_boot_cr4();
    test_smap();
    test_smep();
    test_pkeys();
    return th_finish();
}
