/*
 * noelf.c — the web build's vms_proc_exec_elf. The wasm library is built without
 * src/os/mm/binfmt_elf.c: Debian has no libelf for WebAssembly, and a page has no host
 * ELF files to load anyway. A scenario's `exec NAME FILE` then fails with this message
 * (narrated and counted as any failed system call); every other command is the same
 * code as the native library's.
 */
#include "vmsim/proc.h"

#include <stdio.h>

vms_status vms_proc_exec_elf(vms_kernel *k, vms_task *t, const char *path, const char *const *argv,
                             const char *const *envp, vms_exec_info *info, vms_err *err)
{
    (void)k;
    (void)t;
    (void)argv;
    (void)envp;
    (void)info;
    if (err) {
        err->status = VMS_ERR_UNSUPPORTED;
        snprintf(err->msg, sizeof err->msg,
                 "%s: exec of an ELF file is not in the web build (no libelf in WebAssembly)",
                 path);
    }
    return VMS_ERR_UNSUPPORTED;
}
