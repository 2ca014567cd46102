#define _DEFAULT_SOURCE
/*
 * test_scenario.c — the scenario language: every syntax error names the file, the line
 * and what was expected, before anything runs; runs count expectations, unexpected
 * faults and errors exactly; `set` lines configure; output is deterministic. The VM
 * commands' `show walk` narration comes from src/virt/narrate.c (also run by the
 * `explain --nested` goldens of tests/cli/explain.sh).
 */
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "vmsim/scenario.h"

typedef struct capture {
    vms_strbuf out, err;
} capture;

static void cap_fn(void *ud, bool is_error, const char *text)
{
    capture *c = ud;
    vms_strbuf_printf(is_error ? &c->err : &c->out, "%s", text);
}

static void test_syntax_errors(void)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"spawn\n", "t.scn:1: expected 'spawn NAME [core N]'"},
        {"frobnicate a\n", "t.scn:1: unknown command 'frobnicate': expected one of spawn, mmap"},
        {"spawn a\nmmap a 0x1000 4K rwz\n",
         "t.scn:2: expected a protection r, rw, rx, rwx or none, got 'rwz'"},
        {"read b 0x1000 4\n", "t.scn:1: expected the name of a running process, got 'b'"},
        {"spawn a\n\n# c\nwrite a 0x1000 \"abc\n",
         "t.scn:4: expected a closing '\"' in a quoted string"},
        {"spawn a\nwrite a 0x1000 0x123\n",
         "t.scn:2: expected data: \"text\" or hex bytes 0x4142…, got '0x123'"},
        {"spawn a\nwrite a 0x1000 0xzz\n", "t.scn:2: expected hex digits in '0xzz'"},
        {"spawn a\nread a buf 4\n",
         "t.scn:2: expected an address (0x… or a label defined by `mmap … as LABEL`), got 'buf'"},
        {"spawn a\nset ram=16M\n",
         "t.scn:2: expected 'set KEY=VALUE' lines before every other command"},
        {"spawn a\nread a 0x1000 0\n", "t.scn:2: expected a length above 0"},
        {"spawn a\nread a 0x0 400000000000000\n",
         "t.scn:2: expected a length of at most 0x7ffffffff000 (the user address space)"},
        {"spawn a\nread a 0x1000 4 expect \"abc\"\n",
         "t.scn:2: a read of 4 bytes cannot be checked against 3 bytes of data: expected LEN 3"},
        {"spawn a\nmmap a auto 4K rw file=\n", "t.scn:2: expected a path after 'file='"},
        {"spawn a\nwrite a 0x1000 \"x\" expect bogus\n",
         "t.scn:2: expected 'segv' or 'ok' after 'expect', got 'bogus'"},
        {"spawn a\nspawn a\n", "t.scn:2: process 'a' already exists"},
        {"spawn a\nexit a\nread a 0x1000 1\n",
         "t.scn:3: expected the name of a running process, got 'a'"},
        {"spawn a\nmmap a auto 4K rw shm=x private\n", "t.scn:2: expected 'shared' with shm=NAME"},
        {"spawn a\nmunmap a 0x1000\n", "t.scn:2: expected 'munmap NAME ADDR LEN'"},
        {"spawn a\nshow tlb x\n", "t.scn:2: expected a core number from 0 to 255, got 'x'"},
        /* Numbers that would be cut to fit are refused (core 2^32 used to mean core 0). */
        {"spawn p\ncore p 4294967296\n",
         "t.scn:2: expected a core number from 0 to 255, got '4294967296'"},
        {"spawn p core 256\n", "t.scn:1: expected a core number from 0 to 255, got '256'"},
        {"spawn a\nmmap a auto 4K rw as b\nread a b+0xffffffffffffff00 1\n",
         "t.scn:3: offset in 'b+0xffffffffffffff00' beyond the 57-bit address space"},
        {"spawn a\nwrite a 0x1000 \"x\" expect \x1b[2J\n",
         "t.scn:2: expected 'segv' or 'ok' after 'expect', got '\\x1b[2J'"},
        {"spawn a\nwrite a 0x1000 \"\\q\"\n", "t.scn:2: expected an escape"},
        {"spawn a\nwrite a 0x1000 \"\"\n", "t.scn:2: expected data of at least one byte"},
        {"spawn a\nmmap a auto 4K rw as 9lives\n",
         "t.scn:2: expected a new label name after 'as', got '9lives'"},
        {"vm g spawn p\n", "t.scn:1: expected 'create' or the name of a VM (vm create NAME first)"},
        {"vm create g\nvm create g\n", "t.scn:2: VM 'g' already exists"},
        {"vm create g mem 1M\n", "t.scn:1: expected guest memory of 16M to 1T"},
        {"vm create g s2 vmx\n", "t.scn:1: expected s2 ept, npt or arm, got 'vmx'"},
        {"vm create g host-page 3K\n", "t.scn:1: expected host-page 4K, 2M or 1G, got '3K'"},
        {"vm create g\nvm g show tlb\n", "t.scn:2: expected 'vm g show ept|npt|exits', got 'tlb'"},
        {"vm create g bogus 1\n", "t.scn:1: expected mem, host, s2, host-page, levels"},
        {"vm create g mem\n", "t.scn:1: expected a value after 'mem'"},
        {"vm create g\nvm g spawn p\nspawn p\n", "t.scn:3: process 'p' already exists"},
        {"vm create g\nvm g run p\n", "t.scn:2: expected 'vm g spawn PROC [core N]'"},
        {"vm create g host-limit 3K\n",
         "t.scn:1: expected host-limit of 64K to 1T, a multiple of 4K"},
        {"vm create g\nvm g vcpu 1\n", "t.scn:2: expected 'vm g vcpu N core C'"},
        {"vm create g\nvm g vcpu 64 core 0\n", "t.scn:2: expected a vCPU number from 0 to 63"},
        {"vm create g\nvm g hostswap 0\n", "t.scn:2: expected 'vm g hostswap N' with N pages"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vms_scenario *sc = (vms_scenario *)1;
        vms_err err = {0};
        CHECK_EQ(vms_scenario_parse(NULL, "t.scn", cases[i].text, &sc, &err), VMS_ERR_PARSE);
        CHECK(sc == NULL);
        if (!strstr(err.msg, cases[i].want))
            fprintf(stderr, "case %zu: got \"%s\"\n  want \"%s\"\n", i, err.msg, cases[i].want);
        CHECK(strstr(err.msg, cases[i].want) != NULL);
    }
    /* A NUL byte is not text. */
    FILE *f = fopen("/tmp/vmsim_nul.scn", "wb");
    if (f) {
        fwrite("spawn a\n\0\n", 1, 10, f);
        fclose(f);
    }
    vms_scenario *sc;
    vms_err err = {0};
    CHECK_EQ(vms_scenario_load(NULL, "/tmp/vmsim_nul.scn", &sc, &err), VMS_ERR_PARSE);
    CHECK_EQ(vms_scenario_load(NULL, "/nonexistent.scn", &sc, &err), VMS_ERR_IO);
    unlink("/tmp/vmsim_nul.scn");
}

/* Long tokens and a long file name (issue 16.9): the message always names the file (its
 * tail), the line and what was expected, and shows where it cut a token; fail() used to
 * cut the whole message at 200 bytes, so a long token or path hid what was expected. */
static void test_long_errors(void)
{
    static char name[300], text[8000], x[3001], d[3001];
    memset(x, 'x', 3000);
    memset(d, '1', 3000);
    snprintf(name, sizeof name, "/%0200d/t.scn", 0);
    const char *tail = name + strlen(name) - 40;
    static const struct {
        const char *fmt, *want, *end; /* fmt: the long token replaces %s */
    } cases[] = {
        {"spawn a\nmmap a 0x1000 4K rw %s\n", ":2: expected an mmap option (anon, file=PATH", "…'"},
        {"spawn a\nread a b+0xffffffffffffff00%s 1\n", ":2: expected an address (0x…", "…'"},
        {"spawn a\nwrite a 0x1000 \"x\" expect %s\n", ":2: expected 'segv' or 'ok' after 'expect'",
         "…'"},
        {"spawn a\nshow %s\n", ":2: expected maps, smaps", "…'"},
        {"spawn a\nexit %s\n", ":2: expected the name of a running process, got 'x",
         "(spawn or fork it first)"},
        {"%s\n", ":1: unknown command 'xxxxx", NULL},
        {"spawn a\nmmap a auto 4K rw as b\nread a b+%s 1\n", ":3: expected LABEL+OFFSET", "…'"},
        {"spawn a\nmmap a auto 4K rw \x01\x02%s\n", ":2: expected an mmap option", "…'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *at = strstr(cases[i].fmt, "%s"); /* the long token goes there */
        snprintf(text, sizeof text, "%.*s%s%s", (int)(at - cases[i].fmt), cases[i].fmt,
                 strstr(cases[i].fmt, "b+%s") ? d : x, at + 2);
        vms_scenario *sc = NULL;
        vms_err err = {0};
        CHECK_EQ(vms_scenario_parse(NULL, name, text, &sc, &err), VMS_ERR_PARSE);
        size_t n = strlen(err.msg);
        bool ok = !strncmp(err.msg, "…", 3) && strstr(err.msg, tail) &&
                  strstr(err.msg, cases[i].want) && n < sizeof err.msg - 1 &&
                  (!cases[i].end || (n >= strlen(cases[i].end) &&
                                     !strcmp(err.msg + n - strlen(cases[i].end), cases[i].end)));
        if (!ok)
            fprintf(stderr, "long case %zu: got \"%s\"\n", i, err.msg);
        CHECK(ok);
        vms_scenario_destroy(sc);
    }
    /* A short name and token are shown whole. */
    vms_scenario *sc = NULL;
    vms_err err = {0};
    CHECK_EQ(vms_scenario_parse(NULL, "t.scn", "spawn a\nshow abc\n", &sc, &err), VMS_ERR_PARSE);
    CHECK(strstr(err.msg, "t.scn:2: expected") == err.msg && strstr(err.msg, "got 'abc'"));
}

/* Boot a small machine configured by the scenario's set lines and run it. */
/* When set, run_text configures this writeback directory (as --set would). */
static const char *g_wb;

static bool run_text(const char *text, capture *cap, vms_scenario_result *res)
{
    vms_scenario *sc;
    vms_err err = {0};
    vms_config cfg;
    vms_machine *m = NULL;
    vms_kernel *k = NULL;
    vms_strbuf_init(&cap->out, NULL);
    vms_strbuf_init(&cap->err, NULL);
    if (vms_scenario_parse(NULL, "t.scn", text, &sc, &err) != VMS_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return false;
    }
    vms_config_init(&cfg, "skylake", &err);
    cfg.machine.ncores = 2;
    if (g_wb)
        vms_config_set(&cfg, "kernel.writeback_dir", g_wb, "test", &err);
    bool ok = vms_scenario_configure(sc, &cfg, &err) == VMS_OK;
    vms_kernel_config kc = vms_config_kernel(&cfg);
    ok = ok && vms_machine_create(NULL, &cfg.machine, &m, &err) == VMS_OK &&
         vms_kernel_create(m, &kc, &k, &err) == VMS_OK &&
         vms_scenario_run(sc, k, cap_fn, cap, res, &err) == VMS_OK;
    if (!ok)
        fprintf(stderr, "run: %s\n", err.msg);
    vms_kernel_destroy(k);
    vms_machine_destroy(m);
    vms_scenario_destroy(sc);
    return ok;
}

static void cap_free(capture *c)
{
    vms_strbuf_free(&c->out);
    vms_strbuf_free(&c->err);
}

/* An allocator that remembers the largest block it was asked for. */
static void *big_realloc(void *ud, void *ptr, size_t old_size, size_t new_size)
{
    size_t *largest = ud;
    (void)old_size;
    if (new_size > *largest)
        *largest = new_size;
    if (!new_size) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, new_size);
}

/* A long read streams through a bounded buffer (issue 16 #3: it allocated LEN bytes). */
static void test_read_streamed(void)
{
    size_t largest = 0;
    vms_allocator a = {big_realloc, &largest};
    const char *text = "spawn a\nmmap a 0x10000000 8M rw\nwrite a 0x10000000 \"head\"\n"
                       "read a 0x10000000 8M\nread a 0x10000000 4 expect \"head\"\n";
    vms_scenario *sc;
    vms_err err = {0};
    REQUIRE_VOID(vms_scenario_parse(&a, "t.scn", text, &sc, &err) == VMS_OK);
    vms_config cfg;
    vms_config_init(&cfg, "skylake", &err);
    vms_kernel_config kc = vms_config_kernel(&cfg);
    vms_machine *m = NULL;
    vms_kernel *k = NULL;
    capture cap;
    vms_strbuf_init(&cap.out, NULL);
    vms_strbuf_init(&cap.err, NULL);
    vms_scenario_result r;
    CHECK(vms_machine_create(NULL, &cfg.machine, &m, &err) == VMS_OK &&
          vms_kernel_create(m, &kc, &k, &err) == VMS_OK &&
          vms_scenario_run(sc, k, cap_fn, &cap, &r, &err) == VMS_OK);
    CHECK_EQ(r.expects_passed, 1);
    CHECK(largest < (UINT64_C(1) << 20));
    const char *o = vms_strbuf_str(&cap.out);
    CHECK(strstr(o, "read a 0x10000000 8388608 -> 0x6865616400") != NULL);
    CHECK(strstr(o, "(8388608 bytes); 2047 page faults (zero page mapped x2047)") != NULL);
    vms_kernel_destroy(k);
    vms_machine_destroy(m);
    vms_scenario_destroy(sc);
    cap_free(&cap);
}

static void test_run_outcomes(void)
{
    capture cap;
    vms_scenario_result r;
    const char *text = "set ram=16M\n"
                       "spawn a\n"
                       "mmap a 0x10000000 16K rw as buf\n"
                       "write a buf \"hello\"\n"
                       "read a buf 5 expect \"hello\"\n" /* passes */
                       "read a buf 5 expect \"jello\"\n" /* fails */
                       "read a buf+4K 2 expect 0x0000\n" /* zero page: passes */
                       "write a 0x20000000 \"x\"\n"      /* unexpected SIGSEGV */
                       "read a buf 1\n"                  /* process dead: error */
                       "spawn b\n"
                       "mmap b 0x10000000 4K r\n"
                       "write b 0x10000000 \"y\" expect segv\n" /* passes */
                       "spawn c\n"
                       "mmap c 0x10000000 4K rw\n"
                       "mmap c 0x10000000 4K rw\n"              /* EEXIST: error */
                       "mmap c 0x10000000 4K rw expect error\n" /* passes */
                       "exit a\nexit b\nexit c\n";
    REQUIRE_VOID(run_text(text, &cap, &r));
    CHECK_EQ(r.expects_passed, 4);
    CHECK_EQ(r.expects_failed, 1);
    CHECK_EQ(r.unexpected_faults, 1);
    CHECK_EQ(r.errors, 2);
    const char *e = vms_strbuf_str(&cap.err);
    CHECK(strstr(e,
                 "t.scn:6: expect failed: read a 0x10000000 5: expected \"jello\", got \"hello\""));
    CHECK(strstr(e, "t.scn:9: process 'a' is not running"));
    CHECK(strstr(e, "t.scn:15: "));
    const char *o = vms_strbuf_str(&cap.out);
    CHECK(strstr(o, "write a 0x20000000 \"x\" -> SIGSEGV at 0x20000000 (error code 0x6)"));
    CHECK(strstr(o, "1 page fault (anonymous page zero-filled)"));
    CHECK(strstr(o, "1 page fault (zero page mapped)"));
    cap_free(&cap);
}

/* Virtual machines: a guest process's accesses run inside its VM (guest faults, VM
 * exits), its bytes and the host's stay apart, the second stage can be listed, and what
 * the minimal guest kernel cannot do is an error naming the line. */
static void test_vm(void)
{
    capture cap;
    vms_scenario_result r;
    const char *text = "set ram=256M\n"
                       "spawn h\n"
                       "mmap h 0x10000000 4K rw\n"
                       "write h 0x10000000 \"host\"\n"
                       "vm create g mem 1G host 32M guest pager\n"
                       "vm g spawn p\n"
                       "write p 0x10000000 \"guest\"\n"         /* the host's VA */
                       "read p 0x10000000 5 expect \"guest\"\n" /* passes */
                       "read h 0x10000000 4 expect \"host\"\n"  /* passes: isolation */
                       "read p 0x10000000 5 expect \"host!\"\n" /* fails */
                       "touch p 0x20000000 16K write\n"
                       "vm g show exits\n"
                       "vm g show ept\n"
                       "mmap p auto 4K rw\n"                 /* error: 14 */
                       "vm g spawn q\n"                      /* error: 15 */
                       "vm create big host 1T guest pager\n" /* error: 16 */
                       "vm create n s2 npt host 16M host-page 2M guest pager\n"
                       "vm n spawn z\n"
                       "read z 0x10000000 5 expect 0x0000000000\n" /* passes: its own memory */
                       "exit p\n";
    REQUIRE_VOID(run_text(text, &cap, &r));
    CHECK_EQ(r.expects_passed, 3);
    CHECK_EQ(r.expects_failed, 1);
    CHECK_EQ(r.errors, 3);
    CHECK_EQ(r.unexpected_faults, 0);
    const char *e = vms_strbuf_str(&cap.err), *o = vms_strbuf_str(&cap.out);
    CHECK(
        strstr(e, "t.scn:10: expect failed: read p 0x10000000: expected \"host!\", got \"guest\""));
    CHECK(strstr(e, "t.scn:14: mmap p: p is a guest process of vm g"));
    CHECK(strstr(e, "t.scn:15: vm g spawn q: the guest kernel"));
    CHECK(strstr(e, "t.scn:16: vm create big: cannot reserve"));
    /* the first write: a guest fault (no exit), then an EPT violation for the new frame */
    CHECK(strstr(o, "write p 0x10000000 \"guest\" (in vm g, core 0): ok; guest faults +1, VM "
                    "exits +1 (1200 cycles)"));
    CHECK(
        strstr(o, "touch p 0x20000000 16384 (in vm g, core 0): ok; guest faults +4, VM exits +4"));
    CHECK(strstr(o, "exits of vm g: 5 (6000 cycles): 5 second-stage violations"));
    CHECK(strstr(o, "second stage of vm g: Intel EPT, 4-level, EPTP = "));
    CHECK(strstr(o, "[R W X A D MT=6]"));
    CHECK(strstr(o, "vm create n: NPT"));
    cap_free(&cap);
    /* the same scenario twice: the same narration */
    capture cap2;
    vms_scenario_result r2;
    REQUIRE_VOID(run_text(text, &cap, &r));
    REQUIRE_VOID(run_text(text, &cap2, &r2));
    CHECK(!strcmp(vms_strbuf_str(&cap.out), vms_strbuf_str(&cap2.out)));
    cap_free(&cap);
    cap_free(&cap2);
}

/* The kernel model as a VM's guest kernel: the ordinary commands run on it (mmap, fork
 * and copy-on-write inside the guest), with VM exits counted; what a guest process may
 * not do here is an error naming the line. */
static void test_vm_kernel(void)
{
    capture cap;
    vms_scenario_result r;
    const char *text = "set ram=256M\n"
                       "spawn h\n"
                       "mmap h 0x10000000 4K rw\n"
                       "write h 0x10000000 \"host\"\n"
                       "vm create g mem 128M host 32M\n"
                       "vm g spawn p\n"
                       "mmap p 0x10000000 16K rw\n"
                       "write p 0x10000000 \"guest\"\n"
                       "fork p c\n"
                       "write c 0x10000000 \"child\"\n"
                       "read p 0x10000000 5 expect \"guest\"\n" /* COW in the guest */
                       "read c 0x10000000 5 expect \"child\"\n"
                       "read h 0x10000000 4 expect \"host\"\n"
                       "show walk p 0x10000000\n"          /* its 2D walk */
                       "read p 0x20000000 1 expect segv\n" /* unmapped in the guest */
                       "vm g show exits\n"
                       "vm g show ept\n"
                       "exit c\n"
                       "exit p\n";
    REQUIRE_VOID(run_text(text, &cap, &r));
    CHECK_EQ(r.expects_passed, 4);
    CHECK_EQ(r.expects_failed, 0);
    CHECK_EQ(r.errors, 0);
    CHECK_EQ(r.unexpected_faults, 0);
    const char *o = vms_strbuf_str(&cap.out);
    CHECK(strstr(o, "2D walk of 0x10000000 in p (vm g, vCPU 0)"));
    CHECK(strstr(o, "EPTP: where is the guest PML4 table?"));
    CHECK(strstr(o, "24 references (4 guest, 20 second-stage)"));
    CHECK(strstr(o, "vm create g: EPT with 4K host pages; guest memory 128M"));
    CHECK(strstr(o, "guest kernel: the kernel model"));
    CHECK(strstr(o, "vm g spawn p -> pid 1 in the guest, on vCPU 0"));
    CHECK(strstr(o, "VM exit"));
    CHECK(strstr(o, "exits of vm g: "));
    CHECK(strstr(o, "second stage of vm g: Intel EPT, 4-level, EPTP = "));
    CHECK(strstr(o, "4K  EPT PT entry @"));
    cap_free(&cap);
}

/* An Arm VM on an aarch64 machine: an AArch64 guest over Stage 2, the bytes read back. */
static void test_vm_arm(void)
{
    capture cap;
    vms_scenario_result r;
    const char *text = "set ram=256M\n"
                       "set arch=aarch64\n"
                       "vm create a mem 1G host 32M guest pager\n"
                       "vm a spawn p\n"
                       "write p 0x10000000 \"on arm\"\n"
                       "read p 0x10000000 6 expect \"on arm\"\n"
                       "vm a show ept\n"
                       "vm create b s2 ept host 16M\n" /* error: 8 */
                       "vm create s mem 1G host 64M shadow\n"
                       "vm s spawn q\n"
                       "write q 0x10000000 \"shadowed\"\n"
                       "read q 0x10000000 8 expect \"shadowed\"\n"
                       "vm s show exits\n";
    REQUIRE_VOID(run_text(text, &cap, &r));
    CHECK_EQ(r.expects_passed, 2);
    CHECK_EQ(r.expects_failed, 0);
    CHECK_EQ(r.errors, 1);
    const char *e = vms_strbuf_str(&cap.err), *o = vms_strbuf_str(&cap.out);
    CHECK(strstr(o, "vm create a: Stage 2, 4-level guest paging over 4-level Stage 2"));
    CHECK(strstr(o, "second stage of vm a: Arm stage 2"));
    CHECK(strstr(o, "VTTBR_EL2 = 0x1000"));
    CHECK(strstr(o, "guest faults +1, VM exits +1"));
    CHECK(strstr(e, "t.scn:8: vm create b: an aarch64 machine's VMs use Arm Stage 2"));
    /* shadow paging of an AArch64 guest: a shadow miss, the guest's fault reflected, its
     * pager's stores to its write-protected tables trapped */
    CHECK(strstr(o, "vm create s: shadow paging"));
    CHECK(strstr(o, "exits of vm s: "));
    CHECK(strstr(o, "guest page-table writes"));
    cap_free(&cap);
}

/* The kernel model as an AArch64 guest kernel (the default on an aarch64 machine): the
 * ordinary commands inside, Stage 2 shown with VTTBR_EL2 and the VMID, and shadow paging
 * still needing the pager. */
static void test_vm_arm_kernel(void)
{
    capture cap;
    vms_scenario_result r;
    const char *text = "set ram=256M\n"
                       "set arch=aarch64\n"
                       "vm create a mem 64M host 32M\n"
                       "vm a spawn p\n"
                       "mmap p 0x10000000 8K rw\n"
                       "write p 0x10000000 \"arm guest\"\n"
                       "fork p c\n"
                       "write c 0x10000000 \"child\"\n"
                       "read p 0x10000000 9 expect \"arm guest\"\n"
                       "read c 0x10000000 5 expect \"child\"\n"
                       "read p 0x20000000 1 expect segv\n"
                       "vm a show s2\n"
                       "vm a show exits\n"
                       "vm create s shadow host 32M\n" /* error: 14 */
                       "device nic eth1 vm a\n"        /* passthrough through an SMMU */
                       "dma map eth1 c 0x10000000 4K write as rxbuf\n"
                       "nic post eth1 rxbuf\n"
                       "nic receive eth1 \"arm dma\" expect ok\n"
                       "read c 0x10000000 7 expect \"arm dma\"\n"
                       "dma eth1 0x8000000 write \"escape\" expect blocked\n"
                       "show walk c 0x10000000\n";
    REQUIRE_VOID(run_text(text, &cap, &r));
    CHECK_EQ(r.expects_passed, 6);
    CHECK_EQ(r.expects_failed, 0);
    CHECK_EQ(r.errors, 1);
    const char *e = vms_strbuf_str(&cap.err), *o = vms_strbuf_str(&cap.out);
    CHECK(strstr(o, "vm create a: Stage 2 with 4K host pages; guest memory 64M"));
    CHECK(strstr(o, "(VMID 1); guest kernel: the kernel model (AArch64)"));
    CHECK(strstr(o, "1 page fault (COW copy)"));
    CHECK(strstr(o, "second stage of vm a: Arm stage 2"));
    CHECK(strstr(o, "S2 L3 entry @"));
    CHECK(strstr(o, "vCPU 0 (VMID 1, host core 0)"));
    CHECK(strstr(e, "t.scn:14: vm create s:"));
    CHECK(strstr(o, "assigned to vm a: SMMU stage 2 context (Stage 2 shared), S2VMID "));
    CHECK(strstr(o, "device interrupt: 1 external-interrupt VM exit, 1 injected"));
    /* the 2D walk of an AArch64 guest, in its format's words */
    CHECK(strstr(o, "2D walk of 0x10000000 in c (vm a, vCPU 0): 4-level guest paging, TTBR0_EL1 = "
                    "0x"));
    CHECK(strstr(o, "guest level 3 descriptor @IPA"));
    CHECK(strstr(o, "24 references (4 guest, 20 second-stage)"));
    cap_free(&cap);
}

static void test_features_and_determinism(void)
{
    const char *text = "spawn p core 1\n"
                       "mmap p 0x10000000 2M rw as big\n"
                       "touch p big 2M write\n"
                       "touch p big 2M read random=100\n"
                       "fork p q\n"
                       "thread q qt core 0\n"
                       "write qt big \"from the thread\"\n"
                       "read q big 15 expect \"from the thread\"\n"
                       "read p big 8 expect 0x0000001000000000\n"
                       "show walk p big\n"
                       "show tlb 1 l1d\n"
                       "show pagemap p big 2\n"
                       "mprotect p big 4K r\n"
                       "munmap p big+1M 4K\n"
                       "show maps p\n"
                       "mlock p big+8K 8K\n"
                       "madvise q big 4K dontneed\n"
                       "read q big 4 expect 0x00000000\n"
                       "mmap p auto 4K rw shm=seg shared\n"
                       "echo \"done\"\n"
                       "exit q\nexit p\n";
    capture c1, c2;
    vms_scenario_result r1, r2;
    REQUIRE_VOID(run_text(text, &c1, &r1));
    REQUIRE_VOID(run_text(text, &c2, &r2));
    CHECK_STR(vms_strbuf_str(&c1.out), vms_strbuf_str(&c2.out));
    CHECK_EQ(r1.expects_failed, 0);
    CHECK_EQ(r1.errors, 0);
    CHECK_EQ(r1.expects_passed, 3);
    if (r1.expects_failed || r1.errors)
        fprintf(stderr, "%s", vms_strbuf_str(&c1.err));
    const char *o = vms_strbuf_str(&c1.out);
    CHECK(strstr(o, "512 sequential accesses") != NULL);
    CHECK(strstr(o, "100 random accesses") != NULL);
    CHECK(strstr(o, "TLB l1d of core 1:") != NULL);
    CHECK(strstr(o, " present exclusive pfn 0x") != NULL);
    CHECK(strstr(o, "\ndone\n") != NULL);
    cap_free(&c1);
    cap_free(&c2);
}

/* Run text on a fresh 2-core skylake, whole (step = false) or command by command;
 * captures the narration and the machine's and kernel's counters as JSON. When stepping,
 * also checks what vms_scenario_last_access says of each access command. */
static bool run_mode(const char *text, bool stepwise, capture *cap, vms_strbuf *json,
                     vms_scenario_result *res)
{
    vms_scenario *sc;
    vms_err err = {0};
    vms_config cfg;
    vms_machine *m = NULL;
    vms_kernel *k = NULL;
    vms_strbuf_init(&cap->out, NULL);
    vms_strbuf_init(&cap->err, NULL);
    vms_strbuf_init(json, NULL);
    if (vms_scenario_parse(NULL, "t.scn", text, &sc, &err) != VMS_OK)
        return false;
    vms_config_init(&cfg, "skylake", &err);
    cfg.machine.ncores = 2;
    bool ok = vms_scenario_configure(sc, &cfg, &err) == VMS_OK;
    vms_kernel_config kc = vms_config_kernel(&cfg);
    ok = ok && vms_machine_create(NULL, &cfg.machine, &m, &err) == VMS_OK &&
         vms_kernel_create(m, &kc, &k, &err) == VMS_OK;
    if (ok && !stepwise) {
        ok = vms_scenario_run(sc, k, cap_fn, cap, res, &err) == VMS_OK;
    } else if (ok) {
        vms_scenario_exec *ex = NULL;
        ok = vms_scenario_start(sc, k, cap_fn, cap, &ex, &err) == VMS_OK;
        unsigned prev = 0, line = 0, accesses = 0;
        while (ok && !vms_scenario_done(ex)) {
            CHECK_EQ(vms_scenario_next(ex, &line), VMS_OK);
            CHECK(line > prev);
            prev = line;
            vms_scenario_access acc;
            if (vms_scenario_last_access(ex, &acc)) {
                accesses++;
                CHECK_EQ(acc.line, line);
                if (line == 4) { /* write a buf+8 "hello": the label resolved */
                    CHECK_STR(acc.proc, "a");
                    CHECK_EQ(acc.va, 0x10000008);
                    CHECK_EQ(acc.len, 5);
                    CHECK_EQ(acc.kind, VMS_ACC_WRITE);
                    CHECK(acc.task != NULL);
                }
            }
        }
        CHECK_EQ(accesses, 5);
        if (ok)
            *res = *vms_scenario_exec_result(ex);
        ok = ok && vms_scenario_finish(ex, &err) == VMS_OK;
    }
    if (ok) {
        vms_machine_stats_json_members(m, json);
        vms_kernel_stats_json_members(k, json);
    }
    vms_kernel_destroy(k);
    vms_machine_destroy(m);
    vms_scenario_destroy(sc);
    return ok;
}

/* Stepping a scenario (vms_scenario_start/next/finish) narrates and counts exactly what
 * vms_scenario_run does. */
static void test_step(void)
{
    const char *text = "set ram=16M\n"
                       "spawn a\n"
                       "mmap a 0x10000000 64K rw as buf\n"
                       "write a buf+8 \"hello\"\n"
                       "fork a b\n"
                       "write b buf \"x\"\n"
                       "touch a buf 64K write\n"
                       "read b buf 1 expect \"x\"\n"
                       "show tlb 0\n"
                       "fetch a buf expect segv\n"
                       "exit b\n";
    capture c1, c2;
    vms_strbuf j1, j2;
    vms_scenario_result r1, r2;
    REQUIRE_VOID(run_mode(text, false, &c1, &j1, &r1));
    REQUIRE_VOID(run_mode(text, true, &c2, &j2, &r2));
    CHECK_STR(vms_strbuf_str(&c1.out), vms_strbuf_str(&c2.out));
    CHECK_STR(vms_strbuf_str(&c1.err), vms_strbuf_str(&c2.err));
    CHECK_STR(vms_strbuf_str(&j1), vms_strbuf_str(&j2));
    CHECK(memcmp(&r1, &r2, sizeof r1) == 0);
    CHECK_EQ(r1.commands, 10);
    CHECK_EQ(r1.expects_passed, 2);
    cap_free(&c1);
    cap_free(&c2);
    vms_strbuf_free(&j1);
    vms_strbuf_free(&j2);
}

/* A scenario never names a host file vmsim writes: set lines of such keys are refused
 * with the line; a writable disk image needs the caller's permission (same inode). */
static void test_host_writes(void)
{
    static const char *const lines[] = {"set swap.file=/tmp/victim",
                                        "set kernel.writeback_dir=/tmp",
                                        "set kernel.writeback_in_place=on"};
    for (int i = 0; i < 3; i++) {
        char text[128], want[300];
        snprintf(text, sizeof text, "set ram=16M\n%s\nspawn a\n", lines[i]);
        vms_scenario *sc;
        vms_err err = {0};
        REQUIRE_VOID(vms_scenario_parse(NULL, "t.scn", text, &sc, &err) == VMS_OK);
        vms_config cfg;
        vms_config_init(&cfg, NULL, &err);
        CHECK_EQ(vms_scenario_configure(sc, &cfg, &err), VMS_ERR_INVAL);
        const char *key = lines[i] + 4;
        size_t kl = strcspn(key, "=");
        snprintf(want, sizeof want,
                 "t.scn:2: %.*s names a host file vmsim would write: a scenario may not set it; "
                 "give it on the command line (--set %.*s=…) or in a --config file",
                 (int)kl, key, (int)kl, key);
        CHECK_STR(err.msg, want);
        CHECK_STR(cfg.swap_file, "");
        CHECK(!cfg.kernel.writeback_in_place);
        vms_scenario_destroy(sc);
    }
    CHECK(vms_config_key_writes_host("swap.file"));
    CHECK(!vms_config_key_writes_host("swap"));

    char dir[] = "/tmp/vmsim_scn_XXXXXX";
    REQUIRE_VOID(mkdtemp(dir) != NULL);
    char img[128], text[512];
    snprintf(img, sizeof img, "%s/disk.img", dir);
    FILE *f = fopen(img, "wb");
    REQUIRE_VOID(f != NULL);
    static char sector[512];
    memcpy(sector, "original", 8);
    fwrite(sector, 1, sizeof sector, f);
    fclose(f);
    snprintf(text, sizeof text,
             "spawn p\nmmap p 0x1000000 4K rw as buf\nwrite p buf \"EVIL\"\n"
             "device blk d %s writable\ndma map d p buf 4K read as io\nblk write d 0 1 io\n",
             img);
    vms_scenario *sc;
    vms_err err = {0};
    REQUIRE_VOID(vms_scenario_parse(NULL, "t.scn", text, &sc, &err) == VMS_OK);
    CHECK_EQ(vms_scenario_check_writes(sc, &err), VMS_ERR_INVAL);
    CHECK(strncmp(err.msg, "t.scn:4: device blk d: a scenario may not write the host file", 60) ==
          0);
    vms_scenario_destroy(sc);
    capture cap;
    vms_scenario_result r;
    CHECK(run_text(text, &cap, &r)); /* run anyway: the device command fails, nothing written */
    CHECK(r.errors >= 1);
    CHECK(strstr(vms_strbuf_str(&cap.err), "a scenario may not write the host file") != NULL);
    cap_free(&cap);
    char got[9] = {0};
    f = fopen(img, "rb");
    CHECK(f && fread(got, 1, 8, f) == 8);
    if (f)
        fclose(f);
    CHECK_STR(got, "original");
    /* Allowed by the caller (same inode, any spelling of the path): it runs and writes. */
    REQUIRE_VOID(vms_scenario_parse(NULL, "t.scn", text, &sc, &err) == VMS_OK);
    char alias[160];
    snprintf(alias, sizeof alias, "%s/./disk.img", dir);
    CHECK_EQ(vms_scenario_allow_write(sc, alias, &err), VMS_OK);
    CHECK_EQ(vms_scenario_check_writes(sc, &err), VMS_OK);
    CHECK_EQ(vms_scenario_allow_write(sc, "/nonexistent/x", &err), VMS_ERR_IO);
    CHECK_EQ(vms_scenario_allow_write(sc, dir, &err), VMS_ERR_INVAL); /* not a regular file */
    vms_scenario_destroy(sc);
    remove(img);
    rmdir(dir);
}

static void test_file_mapping(void)
{
    char dir[] = "/tmp/vmsim_scn_XXXXXX";
    REQUIRE_VOID(mkdtemp(dir) != NULL);
    char path[128], wb[160];
    snprintf(path, sizeof path, "%s/data.txt", dir);
    FILE *f = fopen(path, "w");
    REQUIRE_VOID(f != NULL);
    fputs("file contents here", f);
    fclose(f);
    wb[0] = '\0';
    char out_dir[160];
    snprintf(out_dir, sizeof out_dir, "%s/out", dir);
    mkdir(out_dir, 0700);
    g_wb = out_dir; /* from the caller: a scenario may not name it (test_host_writes) */
    char text[1024];
    snprintf(text, sizeof text,
             "%sspawn a\n"
             "mmap a auto 4K r file=%s private as f\n"
             "read a f 13 expect \"file contents\"\n"
             "mmap a auto 4K rw file=%s shared as g\n"
             "write a g \"FILE\"\n"
             "msync a g 4K\n"
             "exit a\n",
             wb, path, path);
    capture cap;
    vms_scenario_result r;
    bool ran = run_text(text, &cap, &r);
    g_wb = NULL;
    REQUIRE_VOID(ran);
    CHECK_EQ(r.expects_passed, 1);
    CHECK_EQ(r.errors, 0);
    char copy[200], got[32] = {0};
    snprintf(copy, sizeof copy, "%s/out/data.txt", dir);
    f = fopen(copy, "r");
    CHECK(f != NULL);
    if (f) {
        CHECK(fread(got, 1, 18, f) == 18);
        fclose(f);
        CHECK_STR(got, "FILE contents here");
    }
    f = fopen(path, "r");
    if (f) {
        memset(got, 0, sizeof got);
        CHECK(fread(got, 1, 18, f) == 18);
        fclose(f);
        CHECK_STR(got, "file contents here"); /* the original is untouched */
    }
    unlink(copy);
    unlink(path);
    rmdir(out_dir);
    rmdir(dir);
    cap_free(&cap);
}

/*
 * Allocation failure (issue 16): parse and run a scenario that exercises lazy
 * allocation, COW fork, mprotect, a segfault, threads, munmap and swap, with every
 * allocation after the k-th failing, for every k until one run succeeds. Each run
 * either finishes (every expectation met) or stops with VMS_ERR_NOMEM; nothing crashes,
 * a failure was really injected when the run stopped, and nothing leaks.
 */
static const char failalloc_scn[] = "set ram=4M\n"
                                    "set swap=4M\n"
                                    "spawn a\n"
                                    "mmap a auto 64K rw as heap\n"
                                    "write a heap \"hello\"\n"
                                    "read a heap+4K 8 expect 0x0000000000000000\n"
                                    "fork a b\n"
                                    "write b heap \"HELLO\"\n"
                                    "read a heap 5 expect \"hello\"\n"
                                    "mprotect b heap 4K r\n"
                                    "write b heap \"x\" expect segv\n"
                                    "mmap a auto 6M rw as big\n"
                                    "touch a big 6M write\n"
                                    "read a heap 5 expect \"hello\"\n"
                                    "munmap a big 6M\n"
                                    "show maps a\n"
                                    "show meminfo\n"
                                    "exit a\n";

static void null_out(void *ud, bool is_error, const char *text)
{
    (void)ud;
    (void)is_error;
    (void)text;
}

/* One run with allocations failing after `budget` (-1: never). Returns its status. */
static vms_status failalloc_run(long budget, th_failalloc *fa, vms_scenario_result *res)
{
    const vms_allocator *a = th_failalloc_init(fa, budget);
    vms_scenario *sc = NULL;
    vms_err err = {0};
    vms_config cfg;
    vms_machine *m = NULL;
    vms_kernel *k = NULL;
    memset(res, 0, sizeof *res);
    vms_status st = vms_scenario_parse(a, "f.scn", failalloc_scn, &sc, &err);
    if (st == VMS_OK) {
        vms_config_init(&cfg, "skylake", &err);
        st = vms_scenario_configure(sc, &cfg, &err);
    }
    vms_kernel_config kc;
    if (st == VMS_OK) {
        kc = vms_config_kernel(&cfg);
        st = vms_machine_create(a, &cfg.machine, &m, &err);
    }
    if (st == VMS_OK)
        st = vms_kernel_create(m, &kc, &k, &err);
    if (st == VMS_OK)
        st = vms_scenario_run(sc, k, null_out, NULL, res, &err);
    vms_kernel_destroy(k);
    vms_machine_destroy(m);
    vms_scenario_destroy(sc);
    return st;
}

static void test_failalloc(void)
{
    th_failalloc fa;
    vms_scenario_result res;
    /* The reference run: no failure, every expectation met. */
    REQUIRE_VOID(failalloc_run(-1, &fa, &res) == VMS_OK);
    CHECK_EQ(res.expects_failed, 0);
    CHECK_EQ(res.unexpected_faults, 0);
    CHECK_EQ(res.errors, 0);
    CHECK_EQ(fa.failures, 0);
    CHECK_EQ(fa.live_bytes, 0);
    const unsigned long total = fa.allocs;
    unsigned long stopped = 0, bad = 0, leaks = 0, uninjected = 0, finished = 0;
    /* Every budget below the total must inject a failure; sample them evenly (at most
     * ~400 runs) so the test stays fast, always including the first 64. */
    unsigned long step = total > 400 ? total / 400 : 1;
    for (unsigned long b = 0; b < total; b += b < 64 ? 1 : step) {
        vms_status st = failalloc_run((long)b, &fa, &res);
        if (st == VMS_OK) {
            /* Finishing despite a failed allocation is allowed only when a command said
             * so (its error counted), never silently. */
            finished++;
            bad += fa.failures && res.errors + res.expects_failed == 0;
        } else if (st == VMS_ERR_NOMEM) {
            stopped++;
            uninjected += fa.failures == 0;
        } else {
            bad++;
            fprintf(stderr, "failalloc budget %lu: status %d\n", b, (int)st);
        }
        leaks += fa.live_bytes != 0;
    }
    printf("scenario: failalloc: %lu allocations; %lu runs stopped with ENOMEM, %lu finished\n",
           total, stopped, finished);
    CHECK(stopped > 0);
    CHECK_EQ(bad, 0);
    CHECK_EQ(leaks, 0);
    CHECK_EQ(uninjected, 0);
}

/* Every usage line of the command table (what `vmsim run --help` prints) starts with a
 * word the parser takes as a command: the line alone never gets "unknown command". */
static void test_command_table(void)
{
    const char *u;
    size_t n = 0;
    for (size_t i = 0; (u = vms_scenario_command_usage(i)) != NULL; i++, n++) {
        char line[64];
        size_t w = strcspn(u, " ");
        REQUIRE_VOID(w < sizeof line - 1);
        memcpy(line, u, w);
        line[w] = '\n';
        line[w + 1] = '\0';
        vms_scenario *sc = NULL;
        vms_err err = {0};
        vms_status st = vms_scenario_parse(NULL, "t.scn", line, &sc, &err);
        if (st == VMS_ERR_PARSE && strstr(err.msg, "unknown command"))
            fprintf(stderr, "usage '%s': its name is not a command\n", u);
        CHECK(st == VMS_OK || !strstr(err.msg, "unknown command"));
        vms_scenario_destroy(sc);
    }
    CHECK_EQ(n, 38); /* spawn … kwrite, khugepaged, compact, sysctl, mount, truncate, unlink, vm */
    CHECK(vms_scenario_command_usage(n) == NULL);
}

/* The host-overcommit and vCPU words: host-limit, vm NAME hostswap N, vm NAME vcpu N core
 * C on a kernel guest (every byte back after host swap, the move narrated), and the
 * errors each names for a pager VM, a bad vCPU or core. */
static void test_vm_overcommit(void)
{
    capture cap;
    vms_scenario_result r;
    const char *text = "set ram=256M\n"
                       "set cores=2\n"
                       "vm create k mem 64M vcpus 2 host-limit 256K\n"
                       "vm k spawn p\n"
                       "mmap p auto 1M rw as buf\n"
                       "write p buf \"kept\"\n"
                       "touch p buf+4K 1020K write\n"
                       "read p buf 4 expect \"kept\"\n" /* read back from the host's swap */
                       "vm k hostswap 8\n"
                       "vm k vcpu 1 core 0\n"
                       "thread p t core 1\n"
                       "read t buf 4 expect \"kept\"\n"
                       "vm k vcpu 1 core 5\n"                                    /* error: 13 */
                       "vm k vcpu 2 core 0\n"                                    /* error: 14 */
                       "vm create q mem 1G host 16M guest pager host-limit 1M\n" /* error: 15 */
                       "vm create z mem 1G host 16M guest pager\n"
                       "vm z hostswap 4\n"    /* error: 17 */
                       "vm z vcpu 0 core 1\n" /* error: 18 */
                       "vm k show exits\n";
    REQUIRE_VOID(run_text(text, &cap, &r));
    CHECK_EQ(r.expects_passed, 2);
    CHECK_EQ(r.expects_failed, 0);
    CHECK_EQ(r.errors, 5);
    const char *e = vms_strbuf_str(&cap.err), *o = vms_strbuf_str(&cap.out);
    CHECK(strstr(o, "host limit 256K (64 host frames): beyond it the host swaps guest pages "
                    "out, victims by clock over the EPT accessed flags"));
    CHECK(strstr(o, "; host swap "));
    CHECK(strstr(o, "vm k hostswap 8: the host swapped out 8 guest pages"));
    CHECK(strstr(o, "vm k vcpu 1 core 0: vCPU 1 (VPID 2) leaves host core 1 for host core 0"));
    CHECK(strstr(o, "host core 0 is shared with vm k vCPU 0 (VPID 1)"));
    CHECK(strstr(o, "1 vCPU entry on a new host core, its VPID flushed there first"));
    CHECK(strstr(o, "vCPU migrations 1, VPID flushes at an entry on a new host core 1"));
    CHECK(strstr(e, "t.scn:13: vm k vcpu 1 core 5: the VM has 2 vCPUs, the host 2 cores"));
    CHECK(strstr(e, "t.scn:14: vm k vcpu 2 core 0: the VM has 2 vCPUs"));
    CHECK(strstr(e, "t.scn:15: vm create q: host-limit (host swap of guest pages) needs the "
                    "kernel model"));
    CHECK(strstr(e, "t.scn:17: vm z hostswap: needs the kernel model as guest kernel"));
    CHECK(strstr(e, "t.scn:18: vm z vcpu: needs the kernel model as guest kernel"));
    cap_free(&cap);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "scenario");
    test_command_table();
    test_syntax_errors();
    test_long_errors();
    test_run_outcomes();
    test_vm();
    test_vm_overcommit();
    test_vm_arm();
    test_vm_arm_kernel();
    test_vm_kernel();
    test_read_streamed();
    test_features_and_determinism();
    test_step();
    test_host_writes();
    test_file_mapping();
    test_failalloc();
    return th_finish();
}
