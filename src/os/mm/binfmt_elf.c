/*
 * binfmt_elf.c — execve() of an ELF program image (Linux's fs/binfmt_elf.c, much
 * reduced; seed 002 §13: the program is demand-paged from its file).
 *
 * The host file is parsed with libelf (elfutils) before anything changes: an ELF64 image
 * for the kernel's architecture, ET_EXEC or ET_DYN, PT_LOAD segments whose file offset
 * and address agree modulo the page size, file sizes within the file. Then the process
 * gets a fresh address space (vms_proc_exec) and, as load_elf_binary does:
 *  - each PT_LOAD is a private mapping of the file (prot from p_flags), at its address
 *    (ET_EXEC) or at ELF_ET_DYN_BASE plus it (ET_DYN, a PIE); where p_memsz exceeds
 *    p_filesz, the rest of the last file page is cleared (padzero: a write of zeros, so a
 *    COW copy of that page) and the whole pages beyond are anonymous (the bss);
 *  - the program break starts at the page after the highest segment;
 *  - a PT_INTERP program (the dynamic linker) is loaded the same way, as an ET_DYN image
 *    at an address mmap chooses, and execution starts at its entry;
 *  - the stack gets, from its top down (System V x86-64 ABI §3.4.1; the same layout on
 *    RISC-V and AArch64): the argument and environment strings, the platform string, 16
 *    random bytes (AT_RANDOM, from the kernel's seeded generator), then, 16-byte aligned,
 *    argc, the argv pointers and NULL, the envp pointers and NULL, and the auxiliary
 *    vector (AT_PHDR, AT_PHENT, AT_PHNUM, AT_PAGESZ, AT_BASE, AT_FLAGS, AT_ENTRY, AT_UID,
 *    AT_EUID, AT_GID, AT_EGID, AT_SECURE, AT_RANDOM, AT_EXECFN, AT_PLATFORM, AT_NULL).
 * Nothing is read from the file but its headers: the pages fault in on demand.
 */
#define _POSIX_C_SOURCE 200809L /* open flags */
#include <elf.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <sys/stat.h>
#include <unistd.h>

#include "os/os_impl.h"
#include "os/mm/mm_impl.h"
#include "vmsim/mman.h"
#include "vmsim/rng.h"

#define MAX_LOADS   16    /* PT_LOAD segments taken (real programs have 4 or 5) */
#define MAX_STRINGS 4096u /* bytes of argv + envp strings */

typedef struct image {
    const char *path;
    uint16_t type;  /* ET_EXEC or ET_DYN */
    uint64_t entry; /* e_entry */
    uint64_t phoff; /* e_phoff */
    uint16_t phnum; /* e_phnum */
    uint64_t phdr;  /* p_vaddr of PT_PHDR, or 0 */
    GElf_Phdr load[MAX_LOADS];
    unsigned nload;
    char interp[256]; /* PT_INTERP's path ("" if none) */
    uint64_t lo, hi;  /* page-aligned span of the PT_LOAD segments (before the bias) */
} image;

static uint64_t page_down(uint64_t x)
{
    return x & ~(uint64_t)VMS_PAGE_MASK;
}

static uint64_t page_up(uint64_t x)
{
    return (x + VMS_PAGE_MASK) & ~(uint64_t)VMS_PAGE_MASK;
}

/* The e_machine the kernel's architecture runs. */
static unsigned machine_of(const vms_kernel *k)
{
    const char *arch = k->fmt->arch;
    if (!strcmp(arch, "riscv64"))
        return EM_RISCV;
    if (!strcmp(arch, "aarch64"))
        return EM_AARCH64;
    return EM_X86_64;
}

/* Read the headers of the ELF file at path into *im (nothing else of the file). */
static vms_status parse(const vms_kernel *k, const char *path, image *im, vms_err *err)
{
    memset(im, 0, sizeof *im);
    im->path = path;
    if (elf_version(EV_CURRENT) == EV_NONE)
        return vmsi_err(err, VMS_ERR_UNSUPPORTED, "exec: libelf: %s", elf_errmsg(-1));
    int fd = open(path, O_RDONLY | O_NONBLOCK); /* a FIFO must not block the open */
    if (fd < 0)
        return vmsi_err(err, VMS_ERR_IO, "exec: %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) { /* execve: EACCES */
        close(fd);
        return vmsi_err(err, VMS_ERR_INVAL, "exec: %s: not a regular file", path);
    }
    off_t size = lseek(fd, 0, SEEK_END);
    Elf *e = elf_begin(fd, ELF_C_READ, NULL);
    vms_status st = VMS_OK;
    GElf_Ehdr eh;
    size_t n = 0;
    if (!e || elf_kind(e) != ELF_K_ELF || !gelf_getehdr(e, &eh)) {
        st = vmsi_err(err, VMS_ERR_INVAL, "exec: %s: not an ELF file", path);
    } else if (gelf_getclass(e) != ELFCLASS64 || eh.e_machine != machine_of(k)) {
        st = vmsi_err(err, VMS_ERR_INVAL,
                      "exec: %s: an ELF%s image for machine %u, expected ELF64 for %s (%u)", path,
                      gelf_getclass(e) == ELFCLASS64 ? "64" : "32", (unsigned)eh.e_machine,
                      k->fmt->arch, machine_of(k));
    } else if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN) {
        st = vmsi_err(err, VMS_ERR_INVAL, "exec: %s: ELF type %u is not an executable", path,
                      (unsigned)eh.e_type);
    } else if (elf_getphdrnum(e, &n) != 0) {
        st = vmsi_err(err, VMS_ERR_INVAL, "exec: %s: unreadable program headers", path);
    }
    im->type = eh.e_type;
    im->entry = eh.e_entry;
    im->phoff = eh.e_phoff;
    im->phnum = (uint16_t)n;
    im->lo = UINT64_MAX;
    for (size_t i = 0; st == VMS_OK && i < n; i++) {
        GElf_Phdr ph;
        if (!gelf_getphdr(e, (int)i, &ph)) {
            st = vmsi_err(err, VMS_ERR_INVAL, "exec: %s: program header %zu unreadable", path, i);
        } else if (ph.p_type == PT_PHDR) {
            im->phdr = ph.p_vaddr;
        } else if (ph.p_type == PT_INTERP) {
            if (ph.p_filesz == 0 || ph.p_filesz >= sizeof im->interp ||
                pread(fd, im->interp, ph.p_filesz, (off_t)ph.p_offset) != (ssize_t)ph.p_filesz ||
                im->interp[ph.p_filesz - 1] != '\0')
                st = vmsi_err(err, VMS_ERR_INVAL, "exec: %s: bad PT_INTERP", path);
        } else if (ph.p_type == PT_LOAD && ph.p_memsz > 0) {
            uint64_t task = vmsi_task_size(k);
            if (im->nload == MAX_LOADS)
                st = vmsi_err(err, VMS_ERR_UNSUPPORTED, "exec: %s: more than %u PT_LOAD segments",
                              path, MAX_LOADS);
            else if (((ph.p_vaddr ^ ph.p_offset) & VMS_PAGE_MASK) != 0 ||
                     ph.p_filesz > ph.p_memsz || ph.p_offset > (uint64_t)size ||
                     ph.p_filesz > (uint64_t)size - ph.p_offset || ph.p_vaddr >= task ||
                     ph.p_memsz > task - ph.p_vaddr)
                st = vmsi_err(err, VMS_ERR_INVAL,
                              "exec: %s: PT_LOAD %zu (vaddr 0x%" PRIx64 ", offset 0x%" PRIx64
                              ", filesz 0x%" PRIx64 ", memsz 0x%" PRIx64 ") cannot be mapped",
                              path, i, (uint64_t)ph.p_vaddr, (uint64_t)ph.p_offset,
                              (uint64_t)ph.p_filesz, (uint64_t)ph.p_memsz);
            else
                im->load[im->nload++] = ph;
        }
    }
    if (st == VMS_OK && im->nload == 0)
        st = vmsi_err(err, VMS_ERR_INVAL, "exec: %s: no PT_LOAD segment", path);
    for (unsigned i = 0; st == VMS_OK && i < im->nload; i++) {
        uint64_t lo = page_down(im->load[i].p_vaddr);
        uint64_t hi = page_up(im->load[i].p_vaddr + im->load[i].p_memsz);
        im->lo = lo < im->lo ? lo : im->lo;
        im->hi = hi > im->hi ? hi : im->hi;
    }
    if (e)
        elf_end(e);
    close(fd);
    return st;
}

static unsigned prot_of(uint32_t pf)
{
    return (pf & PF_R ? VMS_PROT_READ : 0) | (pf & PF_W ? VMS_PROT_WRITE : 0) |
           (pf & PF_X ? VMS_PROT_EXEC : 0);
}

/* Write len bytes of buf at va of t's memory, as the kernel's copy_to_user. */
static vms_status put_user(vms_kernel *k, vms_task *t, uint64_t va, const void *buf, size_t len,
                           vms_err *err)
{
    vms_access_info info;
    vms_status st =
        vms_proc_kernel_access(k, t, va, VMS_ACC_WRITE, (void *)(uintptr_t)buf, len, &info, err);
    if (st == VMS_OK && info.outcome != VMS_ACCESS_OK)
        st = vmsi_err(err, VMS_ERR_NOMEM, "exec: writing 0x%" PRIx64 " failed (outcome %d)", va,
                      (int)info.outcome);
    return st;
}

/*
 * Map image im with load bias `bias` (0 for ET_EXEC). ET_DYN images with bias 0 get
 * their bias from mmap: the whole span is reserved first. *biasp receives the bias.
 */
static vms_status map_image(vms_kernel *k, vms_task *t, const image *im, bool pick, uint64_t *biasp,
                            vms_err *err)
{
    vms_file *f = NULL;
    vms_status st = vms_file_open(k, im->path, &f, err);
    if (st != VMS_OK)
        return st;
    uint64_t bias = *biasp;
    if (pick) { /* reserve the span where mmap puts it; segments replace the reservation */
        uint64_t at = 0;
        st = vms_sys_mmap(k, t, 0, im->hi - im->lo, VMS_PROT_NONE,
                          VMS_MAP_PRIVATE | VMS_MAP_ANONYMOUS, NULL, 0, &at, err);
        bias = at - im->lo;
    }
    for (unsigned i = 0; st == VMS_OK && i < im->nload; i++) {
        const GElf_Phdr *ph = &im->load[i];
        unsigned prot = prot_of(ph->p_flags);
        uint64_t va = bias + ph->p_vaddr, start = page_down(va), out = 0;
        uint64_t file_end = va + ph->p_filesz, mem_end = page_up(va + ph->p_memsz);
        uint64_t map_end = ph->p_filesz ? page_up(file_end) : start;
        if (map_end > start)
            st = vms_sys_mmap(k, t, start, map_end - start, prot, VMS_MAP_PRIVATE | VMS_MAP_FIXED,
                              f, page_down(ph->p_offset), &out, err);
        if (st == VMS_OK && ph->p_memsz > ph->p_filesz && (file_end & VMS_PAGE_MASK) &&
            ph->p_filesz) { /* padzero: the file page's tail past p_filesz reads as zeros */
            static const uint8_t zeros[VMS_PAGE_SIZE];
            size_t tail = VMS_PAGE_SIZE - (size_t)(file_end & VMS_PAGE_MASK);
            if (prot & VMS_PROT_WRITE)
                st = put_user(k, t, file_end, zeros, tail, err);
        }
        if (st == VMS_OK && mem_end > map_end) /* the bss beyond the file's pages */
            st = vms_sys_mmap(k, t, map_end, mem_end - map_end, prot,
                              VMS_MAP_PRIVATE | VMS_MAP_ANONYMOUS | VMS_MAP_FIXED, NULL, 0, &out,
                              err);
    }
    vms_file_close(k, f);
    *biasp = bias;
    return st;
}

/* The address of the program headers in memory (for AT_PHDR). */
static uint64_t phdr_addr(const image *im, uint64_t bias)
{
    if (im->phdr)
        return bias + im->phdr;
    for (unsigned i = 0; i < im->nload; i++) /* the segment that maps e_phoff */
        if (im->load[i].p_offset <= im->phoff &&
            im->phoff < im->load[i].p_offset + im->load[i].p_filesz)
            return bias + im->load[i].p_vaddr + (im->phoff - im->load[i].p_offset);
    return 0;
}

/* Build argc, argv, envp and auxv at the top of the stack; *sp receives rsp. */
static vms_status setup_stack(vms_kernel *k, vms_task *t, const char *const *argv,
                              const char *const *envp, const uint64_t *aux, unsigned naux,
                              const char *execfn, uint64_t *sp, vms_err *err)
{
    vmsi_mm *mm = t->proc->mm;
    unsigned argc = 0, envc = 0;
    size_t bytes = strlen(execfn) + 1 + sizeof "x86_64";
    while (argv && argv[argc])
        bytes += strlen(argv[argc++]) + 1;
    while (envp && envp[envc])
        bytes += strlen(envp[envc++]) + 1;
    if (bytes > MAX_STRINGS)
        return vmsi_err(err, VMS_ERR_INVAL, "exec: %zu bytes of arguments, at most %u", bytes,
                        MAX_STRINGS);
    uint64_t p = mm->stack_top;
    uint64_t ptrs[2 * 64 + 2];
    if (argc + envc > 128)
        return vmsi_err(err, VMS_ERR_INVAL, "exec: %u arguments and variables, at most 128",
                        argc + envc);
    vms_status st = VMS_OK;
    /* strings, highest first: execfn, then envp and argv (their pointers below) */
    p -= strlen(execfn) + 1;
    uint64_t execfn_at = p;
    st = put_user(k, t, p, execfn, strlen(execfn) + 1, err);
    for (unsigned i = envc; st == VMS_OK && i-- > 0;) {
        p -= strlen(envp[i]) + 1;
        ptrs[argc + 1 + i] = p;
        st = put_user(k, t, p, envp[i], strlen(envp[i]) + 1, err);
    }
    for (unsigned i = argc; st == VMS_OK && i-- > 0;) {
        p -= strlen(argv[i]) + 1;
        ptrs[i] = p;
        st = put_user(k, t, p, argv[i], strlen(argv[i]) + 1, err);
    }
    const char *platform = !strcmp(k->fmt->arch, "x86_64") ? "x86_64" : k->fmt->arch;
    p -= strlen(platform) + 1;
    uint64_t platform_at = p;
    if (st == VMS_OK)
        st = put_user(k, t, p, platform, strlen(platform) + 1, err);
    uint8_t rnd[16];
    for (unsigned i = 0; i < 16; i++)
        rnd[i] = (uint8_t)vms_rng_next(&k->rng);
    p = (p - 16) & ~UINT64_C(15);
    uint64_t random_at = p;
    if (st == VMS_OK)
        st = put_user(k, t, p, rnd, 16, err);
    /* the table: argc, argv[], NULL, envp[], NULL, auxv (naux pairs + the three that
     * point into the stack + AT_NULL) */
    uint64_t auxv[2 * 24];
    unsigned na = 0;
    for (unsigned i = 0; i < naux; i++)
        auxv[na++] = aux[i];
    uint64_t more[] = {AT_RANDOM,   random_at,   AT_EXECFN, execfn_at,
                       AT_PLATFORM, platform_at, AT_NULL,   0};
    for (unsigned i = 0; i < 8; i++)
        auxv[na++] = more[i];
    size_t words = 1 + argc + 1 + envc + 1 + na;
    p = (p - words * 8) & ~UINT64_C(15);
    uint64_t at = p, w = argc;
    if (st == VMS_OK)
        st = put_user(k, t, at, &w, 8, err);
    at += 8;
    for (unsigned i = 0; st == VMS_OK && i < argc + 1 + envc + 1; i++, at += 8) {
        w = (i == argc || i == argc + 1 + envc) ? 0 : ptrs[i];
        st = put_user(k, t, at, &w, 8, err);
    }
    if (st == VMS_OK)
        st = put_user(k, t, at, auxv, na * 8, err);
    *sp = p;
    return st;
}

/* Whether image im's segments, loaded at bias, lie in the user address space above
 * mmap_min_addr (mm.c's 64 KiB), checked before the old image goes (found by fuzz_elf: a
 * PT_LOAD at 0x1000 failed in mmap, after the point of no return). */
static vms_status check_place(const vms_kernel *k, const image *im, uint64_t bias, vms_err *err)
{
    const uint64_t min = UINT64_C(0x10000), task = vmsi_task_size(k);
    for (unsigned i = 0; i < im->nload; i++) {
        uint64_t lo = bias + page_down(im->load[i].p_vaddr);
        uint64_t hi = bias + page_up(im->load[i].p_vaddr + im->load[i].p_memsz);
        if (lo < min || hi > task)
            return vmsi_err(err, VMS_ERR_INVAL,
                            "exec: %s: PT_LOAD at 0x%" PRIx64 "-0x%" PRIx64
                            " outside the user address space (0x%" PRIx64 "-0x%" PRIx64 ")",
                            im->path, lo, hi, min, task);
    }
    return VMS_OK;
}

/* A failure after the old image went: say so, naming the file. */
static vms_status lost(vms_status st, const char *path, vms_err *err)
{
    char why[sizeof err->msg];
    snprintf(why, sizeof why, "%s", err ? err->msg : "");
    return vmsi_err(err, st, "exec: %s: %s (the old image is gone)", path, why);
}

vms_status vms_proc_exec_elf(vms_kernel *k, vms_task *t, const char *path, const char *const *argv,
                             const char *const *envp, vms_exec_info *info, vms_err *err)
{
    image exe, interp;
    vms_status st = parse(k, path, &exe, err);
    if (st == VMS_OK && exe.interp[0]) {
        st = parse(k, exe.interp, &interp, err);
        if (st == VMS_OK && (interp.type != ET_DYN || interp.interp[0]))
            st = vmsi_err(err, VMS_ERR_INVAL, "exec: %s: interpreter %s is not a shared object",
                          path, exe.interp);
    }
    uint64_t bias = exe.type == ET_DYN ? k->et_dyn_base : 0, ibias = 0;
    if (st == VMS_OK)
        st = check_place(k, &exe, bias, err);
    if (st != VMS_OK)
        return st; /* nothing changed: the old image runs on, as after a failed execve */
    const char *base = strrchr(path, '/');
    st = vms_proc_exec(k, t, base ? base + 1 : path, err);
    if (st != VMS_OK)
        return st;
    /* From here a failure leaves a process without its image: Linux kills it
     * (SIGKILL after the point of no return); the caller sees the error. */
    st = map_image(k, t, &exe, false, &bias, err);
    if (st == VMS_OK && exe.interp[0])
        st = map_image(k, t, &interp, true, &ibias, err);
    if (st != VMS_OK)
        return lost(st, path, err);
    vmsi_mm *mm = t->proc->mm;
    mm->start_brk = mm->brk = bias + exe.hi;
    uint64_t entry = bias + exe.entry;
    const uint64_t aux[] = {AT_PHDR,   phdr_addr(&exe, bias),
                            AT_PHENT,  sizeof(Elf64_Phdr),
                            AT_PHNUM,  exe.phnum,
                            AT_PAGESZ, VMS_PAGE_SIZE,
                            AT_BASE,   exe.interp[0] ? ibias : 0,
                            AT_FLAGS,  0,
                            AT_ENTRY,  entry,
                            AT_UID,    1000,
                            AT_EUID,   1000,
                            AT_GID,    1000,
                            AT_EGID,   1000,
                            AT_SECURE, 0};
    const char *def_argv[] = {path, NULL};
    uint64_t sp = 0;
    st = setup_stack(k, t, argv ? argv : def_argv, envp, aux, sizeof aux / sizeof *aux, path, &sp,
                     err);
    if (st != VMS_OK)
        return lost(st, path, err);
    if (info) {
        memset(info, 0, sizeof *info);
        info->entry = exe.interp[0] ? ibias + interp.entry : entry;
        info->program_entry = entry;
        info->load_bias = bias;
        info->interp_base = exe.interp[0] ? ibias : 0;
        info->sp = sp;
        info->brk = mm->brk;
        info->segments = exe.nload + (exe.interp[0] ? interp.nload : 0);
    }
    return VMS_OK;
}
