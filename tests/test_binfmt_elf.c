/*
 * test_binfmt_elf.c — execve() of host ELF images (src/os/mm/binfmt_elf.c), checked
 * against the host files themselves: the bytes at the entry point and at AT_PHDR are the
 * file's, the stack holds argc/argv/envp/auxv as the ABI lays them out, the tail of the
 * last file page of a segment with a bss reads as zeros, nothing is read before it is
 * touched (demand paging), and bad images are refused with the old image intact.
 * /bin/true and /bin/ls are the programs (every Debian system has them).
 */
#define _POSIX_C_SOURCE 200809L /* pread */
#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "vmsim/config.h"
#include "vmsim/kernel.h"
#include "vmsim/machine.h"
#include "vmsim/mman.h"
#include "vmsim/proc.h"

typedef struct fx {
    vms_machine *m;
    vms_kernel *k;
    vms_task *t;
} fx;

static bool fx_init(fx *f, const char *arch)
{
    vms_err err = {0};
    vms_config c;
    memset(f, 0, sizeof *f);
    vms_config_init(&c, "skylake", &err);
    if (arch && vms_config_set(&c, "arch", arch, "test", &err) != VMS_OK)
        return false;
    vms_kernel_config kc = vms_config_kernel(&c);
    return vms_machine_create(NULL, &c.machine, &f->m, &err) == VMS_OK &&
           vms_kernel_create(f->m, &kc, &f->k, &err) == VMS_OK &&
           vms_proc_spawn(f->k, "sh", 0, &f->t, &err) == VMS_OK;
}

static void fx_fini(fx *f)
{
    vms_kernel_destroy(f->k);
    vms_machine_destroy(f->m);
}

/* Read len bytes of user memory (a user access: faults as the program would take). */
static bool peek(fx *f, uint64_t va, void *buf, size_t len)
{
    vms_access_info info;
    vms_err err = {0};
    return vms_proc_access(f->k, f->t, va, VMS_ACC_READ, buf, len, &info, &err) == VMS_OK &&
           info.outcome == VMS_ACCESS_OK;
}

static uint64_t peek64(fx *f, uint64_t va)
{
    uint64_t v = 0;
    CHECK(peek(f, va, &v, 8));
    return v;
}

/* The program headers of the host file, read with plain pread (not libelf). */
typedef struct hostelf {
    Elf64_Ehdr eh;
    Elf64_Phdr ph[32];
    int fd;
} hostelf;

static bool host_open(const char *path, hostelf *h)
{
    h->fd = open(path, O_RDONLY);
    if (h->fd < 0 || pread(h->fd, &h->eh, sizeof h->eh, 0) != sizeof h->eh || h->eh.e_phnum > 32)
        return false;
    size_t n = h->eh.e_phnum * sizeof(Elf64_Phdr);
    return pread(h->fd, h->ph, n, (off_t)h->eh.e_phoff) == (ssize_t)n;
}

/* The file offset of address va (before the bias) in a PT_LOAD's file part. */
static bool host_off(const hostelf *h, uint64_t va, uint64_t *off)
{
    for (unsigned i = 0; i < h->eh.e_phnum; i++) {
        const Elf64_Phdr *p = &h->ph[i];
        if (p->p_type == PT_LOAD && va >= p->p_vaddr && va < p->p_vaddr + p->p_filesz) {
            *off = p->p_offset + (va - p->p_vaddr);
            return true;
        }
    }
    return false;
}

/* The auxv value of `type` in the vector at va (0 if absent). */
static uint64_t auxv_get(fx *f, uint64_t va, uint64_t type)
{
    for (unsigned i = 0; i < 64; i++, va += 16) {
        uint64_t a = peek64(f, va), v = peek64(f, va + 8);
        if (a == type)
            return v;
        if (a == AT_NULL)
            break;
    }
    return 0;
}

static void test_exec_program(const char *path)
{
    fx f;
    hostelf h;
    REQUIRE_VOID(fx_init(&f, NULL));
    REQUIRE_VOID(host_open(path, &h));
    const char *argv[] = {path, "--version", NULL}, *envp[] = {"LANG=C", NULL};
    vms_exec_info xi;
    vms_err err = {0};
    REQUIRE_VOID(vms_proc_exec_elf(f.k, f.t, path, argv, envp, &xi, &err) == VMS_OK);
    const vms_kernel_stats *ks = vms_kernel_get_stats(f.k);
    uint64_t faults0 = ks->pgfault;
    uint64_t cached0 = vms_kernel_get_stats(f.k)->pgpgin;
    unsigned loads = 0;
    for (unsigned i = 0; i < h.eh.e_phnum; i++)
        loads += h.ph[i].p_type == PT_LOAD;
    CHECK(xi.segments >= loads);
    uint64_t bias = h.eh.e_type == ET_DYN ? xi.load_bias : 0;
    CHECK_EQ(xi.program_entry, bias + h.eh.e_entry);
    /* The bytes at the program's entry are the file's (demand-paged on this read). */
    uint64_t off;
    REQUIRE_VOID(host_off(&h, h.eh.e_entry, &off));
    uint8_t want[64], got[64];
    REQUIRE_VOID(pread(h.fd, want, sizeof want, (off_t)off) == sizeof want);
    CHECK(peek(&f, xi.program_entry, got, sizeof got));
    CHECK(memcmp(want, got, sizeof want) == 0);
    CHECK(ks->pgfault > faults0); /* it was not there before the touch */
    CHECK(vms_kernel_get_stats(f.k)->pgpgin >= cached0);
    /* The stack: argc, argv, NULL, envp, NULL, auxv. */
    uint64_t sp = xi.sp;
    CHECK_EQ(sp & 15, 0);
    CHECK_EQ(peek64(&f, sp), 2);
    char s[64] = {0};
    CHECK(peek(&f, peek64(&f, sp + 8), s, strlen(path) + 1) && !strcmp(s, path));
    CHECK(peek(&f, peek64(&f, sp + 16), s, 10) && !strcmp(s, "--version"));
    CHECK_EQ(peek64(&f, sp + 24), 0);
    CHECK(peek(&f, peek64(&f, sp + 32), s, 7) && !strcmp(s, "LANG=C"));
    CHECK_EQ(peek64(&f, sp + 40), 0);
    uint64_t auxv = sp + 48;
    CHECK_EQ(auxv_get(&f, auxv, AT_ENTRY), xi.program_entry);
    CHECK_EQ(auxv_get(&f, auxv, AT_PHNUM), h.eh.e_phnum);
    CHECK_EQ(auxv_get(&f, auxv, AT_PHENT), sizeof(Elf64_Phdr));
    CHECK_EQ(auxv_get(&f, auxv, AT_PAGESZ), 4096);
    CHECK_EQ(auxv_get(&f, auxv, AT_BASE), xi.interp_base);
    /* AT_PHDR points at the program headers, as the file has them. */
    Elf64_Phdr ph0;
    CHECK(peek(&f, auxv_get(&f, auxv, AT_PHDR), &ph0, sizeof ph0));
    CHECK(memcmp(&ph0, &h.ph[0], sizeof ph0) == 0);
    uint64_t rnd = auxv_get(&f, auxv, AT_RANDOM);
    CHECK(rnd > sp && rnd < sp + 4096);
    CHECK(peek(&f, auxv_get(&f, auxv, AT_EXECFN), s, strlen(path) + 1) && !strcmp(s, path));
    /* The bss: past p_filesz the last file page reads zeros, whatever the file has there,
     * and the pages beyond are anonymous zeros. */
    unsigned tails = 0;
    for (unsigned i = 0; i < h.eh.e_phnum; i++) {
        const Elf64_Phdr *p = &h.ph[i];
        if (p->p_type != PT_LOAD || p->p_memsz <= p->p_filesz)
            continue;
        uint64_t end = bias + p->p_vaddr + p->p_filesz;
        size_t tail = (size_t)(4096 - (end & 4095)) % 4096;
        uint8_t z[4096], zero[4096] = {0};
        if (tail) {
            CHECK(peek(&f, end, z, tail));
            CHECK(memcmp(z, zero, tail) == 0);
            tails++;
        }
        uint64_t mem_end = bias + p->p_vaddr + p->p_memsz;
        CHECK(peek(&f, mem_end - 8, z, 8) && memcmp(z, zero, 8) == 0);
    }
    printf("binfmt_elf: %s: %u segments, entry 0x%" PRIx64 ", %u bss tails checked\n", path,
           xi.segments, xi.entry, tails);
    CHECK(tails > 0);
    /* The program break starts after the image. */
    uint64_t brk = 0;
    CHECK_EQ(vms_sys_brk(f.k, f.t, 0, &brk, &err), VMS_OK);
    CHECK_EQ(brk, xi.brk);
    close(h.fd);
    CHECK_EQ(vms_kernel_check(f.k, &err), VMS_OK);
    fx_fini(&f);
}

/* Bad images: refused with a message naming the file; the old image runs on. */
static void test_refused(void)
{
    fx f;
    REQUIRE_VOID(fx_init(&f, NULL));
    vms_err err = {0};
    uint64_t va = 0;
    REQUIRE_VOID(vms_sys_mmap(f.k, f.t, 0, 4096, VMS_PROT_READ | VMS_PROT_WRITE,
                              VMS_MAP_PRIVATE | VMS_MAP_ANONYMOUS, NULL, 0, &va, &err) == VMS_OK);
    vms_access_info info;
    char word[] = "kept";
    REQUIRE_VOID(vms_proc_access(f.k, f.t, va, VMS_ACC_WRITE, word, 5, &info, &err) == VMS_OK);
    char tmp[] = "/tmp/vmsim-notelf-XXXXXX";
    int fd = mkstemp(tmp);
    REQUIRE_VOID(fd >= 0);
    CHECK(write(fd, "#!/bin/sh\necho hi\n", 18) == 18);
    close(fd);
    CHECK_EQ(vms_proc_exec_elf(f.k, f.t, tmp, NULL, NULL, NULL, &err), VMS_ERR_INVAL);
    CHECK(strstr(err.msg, tmp) && strstr(err.msg, "not an ELF"));
    CHECK_EQ(vms_proc_exec_elf(f.k, f.t, "/nonexistent/prog", NULL, NULL, NULL, &err), VMS_ERR_IO);
    char back[5] = {0};
    CHECK(peek(&f, va, back, 5) && !strcmp(back, "kept")); /* nothing changed */
    unlink(tmp);
    fx_fini(&f);
    /* An x86-64 program on a RISC-V machine. */
    REQUIRE_VOID(fx_init(&f, "riscv64"));
    CHECK_EQ(vms_proc_exec_elf(f.k, f.t, "/bin/true", NULL, NULL, NULL, &err), VMS_ERR_INVAL);
    CHECK(strstr(err.msg, "expected ELF64 for riscv64") != NULL);
    fx_fini(&f);
}

/* A minimal ELF64 x86-64 image of the given type with one PT_LOAD of memsz bytes at vaddr
 * (the file's first page, read-execute), written to path. */
static bool write_image(const char *path, unsigned type, uint64_t vaddr, uint64_t memsz)
{
    struct {
        Elf64_Ehdr eh;
        Elf64_Phdr ph;
        uint8_t code[4096 - sizeof(Elf64_Ehdr) - sizeof(Elf64_Phdr)];
    } im;
    memset(&im, 0, sizeof im);
    memcpy(im.eh.e_ident, ELFMAG, SELFMAG);
    im.eh.e_ident[EI_CLASS] = ELFCLASS64;
    im.eh.e_ident[EI_DATA] = ELFDATA2LSB;
    im.eh.e_ident[EI_VERSION] = EV_CURRENT;
    im.eh.e_type = (uint16_t)type;
    im.eh.e_machine = EM_X86_64;
    im.eh.e_version = EV_CURRENT;
    im.eh.e_entry = vaddr + sizeof im.eh + sizeof im.ph;
    im.eh.e_phoff = sizeof im.eh;
    im.eh.e_ehsize = sizeof im.eh;
    im.eh.e_phentsize = sizeof im.ph;
    im.eh.e_phnum = 1;
    im.ph.p_type = PT_LOAD;
    im.ph.p_flags = PF_R | PF_X;
    im.ph.p_vaddr = vaddr;
    im.ph.p_filesz = sizeof im;
    im.ph.p_memsz = memsz;
    im.ph.p_align = 4096;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    bool ok = fd >= 0 && write(fd, &im, sizeof im) == (ssize_t)sizeof im;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* Segments the kernel cannot place (found by fuzz_elf: a PT_LOAD at 0x1000 passed the header
 * checks, then mmap refused it after the old image was gone, with a message naming neither
 * exec nor the file): refused up front, the old image intact. */
static void test_unplaceable(void)
{
    fx f;
    REQUIRE_VOID(fx_init(&f, NULL));
    vms_err err = {0};
    uint64_t va = 0;
    REQUIRE_VOID(vms_sys_mmap(f.k, f.t, 0, 4096, VMS_PROT_READ | VMS_PROT_WRITE,
                              VMS_MAP_PRIVATE | VMS_MAP_ANONYMOUS, NULL, 0, &va, &err) == VMS_OK);
    vms_access_info info;
    char word[] = "kept";
    REQUIRE_VOID(vms_proc_access(f.k, f.t, va, VMS_ACC_WRITE, word, 5, &info, &err) == VMS_OK);
    char path[] = "/tmp/vmsim-place-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE_VOID(fd >= 0);
    close(fd);
    const uint64_t task = UINT64_C(0x7ffffffff000);
    const struct {
        unsigned type;
        uint64_t vaddr, memsz;
    } bad[] = {
        {ET_EXEC, 0x1000, 4096},          /* below mmap_min_addr */
        {ET_EXEC, 0, 4096},               /* page 0 */
        {ET_DYN, task - 0x10000, 0x8000}, /* fits unbiased; the ET_DYN bias pushes it out */
        {ET_EXEC, task - 0x1000, 0x2000}, /* memsz past the top (the header check) */
    };
    for (unsigned i = 0; i < sizeof bad / sizeof *bad; i++) {
        REQUIRE_VOID(write_image(path, bad[i].type, bad[i].vaddr, bad[i].memsz));
        CHECK_EQ(vms_proc_exec_elf(f.k, f.t, path, NULL, NULL, NULL, &err), VMS_ERR_INVAL);
        CHECK(strstr(err.msg, "exec: ") == err.msg && strstr(err.msg, path));
        char back[5] = {0};
        CHECK(peek(&f, va, back, 5) && !strcmp(back, "kept"));
    }
    /* The same image at a placeable address runs: its entry fetches from the file. */
    REQUIRE_VOID(write_image(path, ET_EXEC, 0x400000, 4096));
    vms_exec_info xi;
    CHECK_EQ(vms_proc_exec_elf(f.k, f.t, path, NULL, NULL, &xi, &err), VMS_OK);
    uint8_t b = 0xff;
    CHECK(vms_proc_access(f.k, f.t, xi.entry, VMS_ACC_EXEC, &b, 1, &info, &err) == VMS_OK &&
          info.outcome == VMS_ACCESS_OK && b == 0);
    CHECK_EQ(vms_kernel_check(f.k, &err), VMS_OK);
    unlink(path);
    fx_fini(&f);
}

/* Copy /bin/true to path with its PT_INTERP string replaced by interp (not longer). */
static bool copy_with_interp(const char *path, const char *interp)
{
    static uint8_t buf[1 << 20];
    int in = open("/bin/true", O_RDONLY);
    ssize_t n = in >= 0 ? read(in, buf, sizeof buf) : -1;
    if (in >= 0)
        close(in);
    const char *old = "/lib64/ld-linux-x86-64.so.2";
    if (strlen(interp) > strlen(old))
        return false;
    for (ssize_t i = 0; n > 0 && i + (ssize_t)strlen(old) < n; i++) {
        if (memcmp(buf + i, old, strlen(old) + 1) != 0)
            continue;
        memset(buf + i, 0, strlen(old));
        memcpy(buf + i, interp, strlen(interp));
        int out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        bool ok = out >= 0 && write(out, buf, (size_t)n) == n;
        if (out >= 0)
            close(out);
        return ok;
    }
    return false;
}

/* Special files (issue 16.4; found by fuzz_elf): a FIFO as the program or as its PT_INTERP
 * blocked the open for ever; a directory or a device was "not an ELF file". Each is now
 * refused as not a regular file, at once, with the old image intact. */
static void test_special_files(void)
{
    char dir[] = "/tmp/vms-XXXXXX"; /* short: the FIFO path replaces ld.so's */
    REQUIRE_VOID(mkdtemp(dir) != NULL);
    char fifo[96], prog[96];
    snprintf(fifo, sizeof fifo, "%s/f", dir);
    snprintf(prog, sizeof prog, "%s/prog", dir);
    REQUIRE_VOID(mkfifo(fifo, 0600) == 0);
    fx f;
    REQUIRE_VOID(fx_init(&f, NULL));
    vms_err err = {0};
    const char *const special[] = {fifo, "/tmp", "/dev/zero"};
    for (unsigned i = 0; i < 3; i++) {
        CHECK_EQ(vms_proc_exec_elf(f.k, f.t, special[i], NULL, NULL, NULL, &err), VMS_ERR_INVAL);
        CHECK(strstr(err.msg, special[i]) && strstr(err.msg, "not a regular file"));
    }
    bool copied = copy_with_interp(prog, fifo);
    CHECK(copied);
    if (copied) {
        CHECK_EQ(vms_proc_exec_elf(f.k, f.t, prog, NULL, NULL, NULL, &err), VMS_ERR_INVAL);
        CHECK(strstr(err.msg, fifo) && strstr(err.msg, "not a regular file"));
    }
    /* A FIFO as a file to map (vms_file_open blocked the same way). */
    vms_file *file = NULL;
    CHECK_EQ(vms_file_open(f.k, fifo, &file, &err), VMS_ERR_INVAL);
    CHECK(strstr(err.msg, "not a regular file (a FIFO)") != NULL);
    CHECK_EQ(vms_kernel_check(f.k, &err), VMS_OK);
    fx_fini(&f);
    unlink(prog);
    unlink(fifo);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "binfmt_elf");
    test_exec_program("/bin/true");
    test_exec_program("/bin/ls");
    test_refused();
    test_special_files();
    test_unplaceable();
    return th_finish();
}
