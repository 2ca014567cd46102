/*
 * fuzz_elf.c — libFuzzer target: execve() of an arbitrary ELF image (vms_proc_exec_elf,
 * src/os/mm/binfmt_elf.c, headers read through libelf).
 *
 * Each input is written to a file in a private temporary directory and exec'd by a
 * process of a fresh small machine (16 MiB, 2 cores, x86-64). Checks what the library
 * promises on any image: no crash, hang or leak (ASan); a refusal is VMS_ERR_INVAL,
 * VMS_ERR_IO, VMS_ERR_UNSUPPORTED or VMS_ERR_NOMEM with a message that starts "exec:";
 * an accepted image has a stack whose first word is argc = 1 and whose argv[0] is the
 * path, its entry fetches (or faults: a simulated SIGSEGV is data) and its first page
 * reads; the kernel's invariants hold after every step; when the process exits every
 * frame is free again once the page cache is reclaimed. A PT_INTERP may name any host file: it is
 * only read. Violations abort. The committed corpus (fuzz/corpus/elf/) holds small images built
 * from static volatile char bss[5000]; static char data[100] = "data"; void _start(void) { bss[100]
 * = data[0]; data[1] = bss[4000]; for (;;) __asm__ volatile("hlt"); } with F="-Os -nostdlib
 * -fno-asynchronous-unwind-tables -Wl,--build-id=none -Wl,-z,noseparate-code -Wl,-z,norelro -s":
 * `gcc $F -static -no-pie` (static), `gcc $F -static-pie -fpie` (static_pie), `gcc $F -fpie -pie
 * -Wl,--dynamic-linker=/lib64/ld-linux-x86-64.so.2` (interp), and what campaigns found.
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmsim/config.h"
#include "vmsim/frames.h"
#include "vmsim/kernel.h"
#include "vmsim/machine.h"
#include "vmsim/proc.h"
#include "vmsim/swap.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "fuzz_elf: %s: %s\n", what, msg);
    abort();
}

static void check(vms_kernel *k, const char *when)
{
    vms_err err = {0};
    if (vms_kernel_check(k, &err) != VMS_OK)
        die(when, err.msg);
}

/* The path the input is written to (a private directory, made once). */
static const char *image_path(void)
{
    static char dir[] = "/tmp/vmsim-fuzz-elf-XXXXXX";
    static char path[sizeof dir + 8];
    if (!path[0]) {
        if (!mkdtemp(dir))
            die("mkdtemp", "cannot make a private directory");
        snprintf(path, sizeof path, "%s/a.out", dir);
    }
    return path;
}

static void run(const char *path)
{
    vms_config cfg;
    vms_err err = {0};
    vms_machine *m = NULL;
    vms_kernel *k = NULL;
    vms_task *t = NULL;
    vms_config_init(&cfg, "skylake", &err);
    cfg.machine.ram_bytes = UINT64_C(16) << 20;
    cfg.machine.ncores = 2;
    vms_kernel_config kc = vms_config_kernel(&cfg);
    if (vms_machine_create(NULL, &cfg.machine, &m, &err) != VMS_OK ||
        vms_kernel_create(m, &kc, &k, &err) != VMS_OK)
        die("boot", err.msg);
    uint64_t free0 = vms_frames_nfree(vms_kernel_frames(k));
    if (vms_proc_spawn(k, "sh", 0, &t, &err) != VMS_OK)
        die("spawn", err.msg);
    vms_exec_info info;
    vms_status st = vms_proc_exec_elf(k, t, path, NULL, NULL, &info, &err);
    check(k, "after exec");
    if (st != VMS_OK) {
        if ((st != VMS_ERR_INVAL && st != VMS_ERR_IO && st != VMS_ERR_UNSUPPORTED &&
             st != VMS_ERR_NOMEM) ||
            strncmp(err.msg, "exec", 4) != 0)
            die("bad failure report", err.msg);
    } else {
        vms_access_info ai;
        uint64_t argc = 0, argv0 = 0;
        char name[64] = {0};
        if (vms_proc_access(k, t, info.sp, VMS_ACC_READ, &argc, 8, &ai, &err) != VMS_OK ||
            ai.outcome != VMS_ACCESS_OK || argc != 1)
            die("stack", "argc is not 1");
        size_t n = strlen(path) + 1;
        if (vms_proc_access(k, t, info.sp + 8, VMS_ACC_READ, &argv0, 8, &ai, &err) != VMS_OK ||
            ai.outcome != VMS_ACCESS_OK ||
            vms_proc_access(k, t, argv0, VMS_ACC_READ, name, n, &ai, &err) != VMS_OK ||
            ai.outcome != VMS_ACCESS_OK || memcmp(name, path, n) != 0)
            die("stack", "argv[0] is not the path");
        uint8_t b[16];
        uint64_t at[] = {info.entry, info.program_entry, info.brk - 1, info.load_bias};
        for (unsigned i = 0; i < sizeof at / sizeof *at; i++) {
            if (vms_proc_access(k, t, at[i], i == 0 ? VMS_ACC_EXEC : VMS_ACC_READ, b, sizeof b, &ai,
                                &err) != VMS_OK)
                die("access", err.msg);
            check(k, "after an access");
            if (ai.outcome != VMS_ACCESS_OK)
                break; /* the process is gone (SIGSEGV/SIGBUS) */
        }
    }
    vms_proc_exit(k, t); /* also after a SIGSEGV: the task stays until it is reaped */
    check(k, "after exit");
    uint64_t got = 0; /* the image's pages stay in the page cache: reclaim them */
    vms_kernel_reclaim(k, UINT64_C(1) << 20, &got);
    if (vms_frames_nfree(vms_kernel_frames(k)) != free0)
        die("exit", "frames were not all freed");
    vms_kernel_destroy(k);
    vms_machine_destroy(m);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    const char *path = image_path();
    FILE *f = fopen(path, "wb");
    if (!f)
        die("write", path);
    if (fwrite(data, 1, size, f) != size || fclose(f) != 0)
        die("write", path);
    run(path);
    return 0;
}
