/* test_config.c — configuration keys, INI files, errors and the dump/load round trip. */
#include <stdio.h>
#include <unistd.h>

#include "harness.h"
#include "vmsim/config.h"

static const char *write_tmp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/vmsim_test_config_%d.ini", (int)getpid());
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    return path;
}

static void test_keys(void)
{
    vms_config c;
    vms_err err = {0};
    REQUIRE_VOID(vms_config_init(&c, NULL, &err) == VMS_OK);
    CHECK_EQ(c.machine.ram_bytes, UINT64_C(4) << 30);
    CHECK_EQ(vms_config_set(&c, "ram", "16M", "--set", &err), VMS_OK);
    CHECK_EQ(c.machine.ram_bytes, UINT64_C(16) << 20);
    CHECK_EQ(vms_config_set_arg(&c, "seed=42", &err), VMS_OK);
    CHECK_EQ(c.machine.seed, 42);
    CHECK_EQ(c.kernel.seed, 42);
    CHECK_EQ(vms_config_set_arg(&c, "levels=5", &err), VMS_OK);
    CHECK_EQ(c.machine.levels, 5);
    CHECK_EQ(vms_config_set_arg(&c, "tlb.l2=4K+2M:96x16:fifo, 1G:2x8", &err), VMS_OK);
    CHECK_EQ(c.machine.mmu.l2.nparts, 2);
    CHECK_EQ(c.machine.mmu.l2.part[0].sets, 96);
    CHECK_EQ(c.machine.mmu.l2.part[0].ways, 16);
    CHECK_EQ(c.machine.mmu.l2.part[0].sizes, 3);
    CHECK_STR(c.machine.mmu.l2.part[0].policy, "fifo");
    CHECK_STR(c.machine.mmu.l2.part[1].policy, "lru");
    CHECK_EQ(vms_config_set_arg(&c, "tlb.policy=random", &err), VMS_OK);
    CHECK_STR(c.machine.mmu.l1d.part[2].policy, "random");
    CHECK_EQ(vms_config_set_arg(&c, "pwc.pde=64x4:plru", &err), VMS_OK);
    CHECK_EQ(c.machine.mmu.pwc.level[2].entries, 64);
    CHECK_EQ(vms_config_set_arg(&c, "pwc.pml4e=none", &err), VMS_OK);
    CHECK_EQ(c.machine.mmu.pwc.level[4].entries, 0);
    CHECK_EQ(vms_config_set_arg(&c, "kernel.zero_page=off", &err), VMS_OK);
    CHECK(!c.kernel.zero_page);
    CHECK_EQ(vms_config_set_arg(&c, "kernel.writeback_dir=/tmp/wb", &err), VMS_OK);
    vms_kernel_config kc = vms_config_kernel(&c);
    CHECK_STR(kc.writeback_dir, "/tmp/wb");
    CHECK_EQ(vms_config_set_arg(&c, "tlb.l2=none", &err), VMS_OK);
    CHECK_EQ(c.machine.mmu.l2.nparts, 0);
    /* kernel.pagecache: auto by default; warm, cold, auto; anything else refused. */
    CHECK_EQ(c.kernel.pagecache, VMS_PAGECACHE_AUTO);
    CHECK_EQ(vms_config_set_arg(&c, "kernel.pagecache=warm", &err), VMS_OK);
    CHECK_EQ(c.kernel.pagecache, VMS_PAGECACHE_WARM);
    CHECK_EQ(vms_config_set_arg(&c, "kernel.pagecache=cold", &err), VMS_OK);
    CHECK_EQ(c.kernel.pagecache, VMS_PAGECACHE_COLD);
    CHECK(vms_config_set_arg(&c, "kernel.pagecache=hot", &err) != VMS_OK);
    CHECK_EQ(c.kernel.pagecache, VMS_PAGECACHE_COLD);
    CHECK_EQ(vms_config_set_arg(&c, "kernel.pagecache=auto", &err), VMS_OK);
    CHECK_EQ(c.kernel.pagecache, VMS_PAGECACHE_AUTO);
    /* preset replaces everything. */
    CHECK_EQ(vms_config_set_arg(&c, "preset=tiny", &err), VMS_OK);
    CHECK_EQ(c.machine.ram_bytes, UINT64_C(64) << 20);
    CHECK_EQ(c.machine.levels, 4);
}

static void test_errors(void)
{
    vms_config c, before;
    vms_err err = {0};
    vms_config_init(&c, NULL, &err);
    before = c;
    CHECK_EQ(vms_config_set_arg(&c, "rma=16M", &err), VMS_ERR_NOTFOUND);
    CHECK(strstr(err.msg, "--set") && strstr(err.msg, "unknown key 'rma'"));
    static const char *const bad[] = {"ram=16Q",
                                      "ram=-1",
                                      "ram=4097",
                                      "levels=3",
                                      "cores=0",
                                      "tlb.l1d=4K:0x4",
                                      "tlb.l1d=4K:16x4:mru",
                                      "tlb.l1d=4K:1x4,4K:2x2",
                                      "tlb.l1d=8K:1x4",
                                      "pwc.pde=30x4",
                                      "kernel.pcid=maybe",
                                      "seed=x",
                                      "preset=nonesuch",
                                      "ram",
                                      "=5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        vms_status st = vms_config_set_arg(&c, bad[i], &err);
        CHECK(st == VMS_ERR_INVAL || st == VMS_ERR_NOTFOUND);
        if (st == VMS_OK)
            fprintf(stderr, "accepted bad setting %s\n", bad[i]);
    }
    CHECK(memcmp(&c, &before, sizeof c) == 0); /* errors change nothing */
    CHECK_EQ(vms_config_set_arg(&c, "levels=3", &err), VMS_ERR_INVAL);
    CHECK(strstr(err.msg, "levels") && strstr(err.msg, "4 (48-bit) or 5"));

    /* Files: errors name file and line. */
    const char *path = write_tmp("# a comment\nram = 16M\n\n[tlb]\nl1d = 4K:16x4\nbogus = 1\n");
    CHECK_EQ(vms_config_load(&c, path, &err), VMS_ERR_NOTFOUND);
    char want[128];
    snprintf(want, sizeof want, "%s:6: unknown key 'tlb.bogus'", path);
    CHECK(strstr(err.msg, want) != NULL);
    path = write_tmp("ram = 16M\nthis line is wrong\n");
    CHECK_EQ(vms_config_load(&c, path, &err), VMS_ERR_PARSE);
    snprintf(want, sizeof want, "%s:2: expected 'key = value'", path);
    CHECK(strstr(err.msg, want) != NULL);
    path = write_tmp("ram = 16M\ncores = 999\n");
    CHECK_EQ(vms_config_load(&c, path, &err), VMS_ERR_INVAL);
    snprintf(want, sizeof want, "%s:2: bad value '999' for cores", path);
    CHECK(strstr(err.msg, want) != NULL);
    CHECK_EQ(vms_config_load(&c, "/nonexistent/vmsim.ini", &err), VMS_ERR_IO);
    unlink(path);
}

/* One geometry notation: TLBs SETSxWAYS, caches ENTRIESxWAYS as before, and the explicit
 * ENTRIESeWAYSw for both; the dump spells out entries and sets. */
static void test_geometry(void)
{
    vms_config c;
    vms_err err = {0};
    vms_config_init(&c, NULL, &err);
    CHECK_EQ(vms_config_set_arg(&c, "tlb.l2=4K+2M:1536e12w:lru", &err), VMS_OK);
    CHECK_EQ(c.machine.mmu.l2.part[0].sets, 128);
    CHECK_EQ(c.machine.mmu.l2.part[0].ways, 12);
    CHECK_EQ(vms_config_set_arg(&c, "tlb.l2=4K:1536x12", &err), VMS_OK); /* old form: sets */
    CHECK_EQ(c.machine.mmu.l2.part[0].sets, 1536);
    CHECK_EQ(vms_config_set_arg(&c, "pwc.pde=32e4w", &err), VMS_OK);
    CHECK_EQ(c.machine.mmu.pwc.level[2].entries, 32);
    CHECK_EQ(c.machine.mmu.pwc.level[2].ways, 4);
    CHECK_EQ(vms_config_set_arg(&c, "pwc.pde=16x4:fifo", &err), VMS_OK); /* old form: entries */
    CHECK_EQ(c.machine.mmu.pwc.level[2].entries, 16);
    CHECK_EQ(vms_config_set_arg(&c, "pwc.pde=8", &err), VMS_OK); /* fully associative */
    CHECK_EQ(c.machine.mmu.pwc.level[2].ways, 8);
    static const char *const bad[] = {"tlb.l2=4K:1536e11w",
                                      "tlb.l2=4K:12e0w",
                                      "tlb.l2=4K:12e",
                                      "tlb.l2=4K:e12w",
                                      "pwc.pde=30e4w",
                                      "pwc.pde=4e",
                                      "tlb.l2=4K:99999999999999999999x1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK_EQ(vms_config_set_arg(&c, bad[i], &err), VMS_ERR_INVAL);
    vms_config_set_arg(&c, "tlb.l2=4K:1536x12", &err);
    vms_strbuf sb;
    vms_strbuf_init(&sb, NULL);
    vms_config_dump(&c, &sb);
    CHECK(strstr(vms_strbuf_str(&sb), "tlb.l2 = 4K:1536x12:lru  ; 18432 entries = 1536 sets x 12 "
                                      "ways\n") != NULL);
    CHECK(strstr(vms_strbuf_str(&sb), "pwc.pde = 8x8:lru  ; 8 entries = 1 set x 8 ways\n") != NULL);
    vms_config back;
    vms_config_init(&back, "tiny", &err);
    CHECK_EQ(vms_config_parse(&back, "dump", vms_strbuf_str(&sb), &err), VMS_OK);
    CHECK_EQ(back.machine.mmu.l2.part[0].sets, 1536);
    vms_strbuf_free(&sb);
    /* cost.interrupt, which `vmsim presets` and DEVICES.md name, is a key. */
    CHECK_EQ(vms_config_set_arg(&c, "cost.interrupt=7", &err), VMS_OK);
    CHECK_EQ(c.machine.cost.interrupt, 7);
}

static void test_roundtrip(void)
{
    vms_config a, b;
    vms_err err = {0};
    vms_config_init(&a, "skylake", &err);
    vms_config_set_arg(&a, "ram=12G", &err);
    vms_config_set_arg(&a, "tlb.l1i=4K:10x3:random", &err);
    vms_config_set_arg(&a, "pwc.pdpte=6x3:fifo", &err);
    vms_config_set_arg(&a, "kernel.fault_around=4", &err);
    vms_config_set_arg(&a, "cost.walk_ref=31", &err);
    vms_config_set_arg(&a, "seed=77", &err);
    vms_config_set_arg(&a, "kernel.pagecache=warm", &err);
    /* A software-managed TLB, so that its keys are listed (and round-trip) too. */
    vms_config_set_arg(&a, "tlb.mode=software", &err);
    vms_config_set_arg(&a, "tlb.jtlb=32", &err);
    vms_config_set_arg(&a, "kernel.tlb_refill=tlbwi", &err);
    /* The hugetlb keys listed only when set (hugepagesz, a cursor, never). */
    vms_config_set_arg(&a, "default_hugepagesz=1G", &err);
    vms_config_set_arg(&a, "hugepages_2m=5", &err);
    vms_config_set_arg(&a, "nr_overcommit_hugepages_1g=2", &err);
    vms_strbuf d1, d2;
    vms_strbuf_init(&d1, NULL);
    vms_strbuf_init(&d2, NULL);
    CHECK_EQ(vms_config_dump(&a, &d1), VMS_OK);
    const char *path = write_tmp(vms_strbuf_str(&d1));
    vms_config_init(&b, "tiny", &err);
    CHECK_EQ(vms_config_load(&b, path, &err), VMS_OK);
    if (err.status)
        fprintf(stderr, "%s\n", err.msg);
    vms_config_dump(&b, &d2);
    CHECK_STR(vms_strbuf_str(&d2), vms_strbuf_str(&d1));
    CHECK_EQ(b.machine.ram_bytes, UINT64_C(12) << 30);
    CHECK_EQ(b.machine.mmu.l1i.part[0].sets, 10);
    CHECK_EQ(b.machine.seed, 77);
    CHECK(strstr(vms_strbuf_str(&d1), "ram = 12G\n") != NULL);
    CHECK(strstr(vms_strbuf_str(&d1), "\nkernel.pagecache = warm\n") != NULL);
    CHECK_EQ(b.kernel.pagecache, VMS_PAGECACHE_WARM);
    /* Every key appears in the dump except the two derived ones and hugepagesz. */
    unsigned listed = 0;
    for (unsigned i = 0; i < vms_config_nkeys(); i++) {
        char needle[96];
        snprintf(needle, sizeof needle, "\n%s = ", vms_config_key_at(i).name);
        listed += strstr(vms_strbuf_str(&d1), needle) != NULL;
    }
    CHECK_EQ(listed, vms_config_nkeys() - 3);
    CHECK(vms_config_key_at(vms_config_nkeys()).name == NULL);
    vms_strbuf_free(&d1);
    vms_strbuf_free(&d2);
    unlink(path);
}

/* vms_config_json lists the dump's keys and values in order: setting each member back
 * on a fresh configuration reproduces the dump. Strings are escaped. */
static void test_json(void)
{
    vms_config c, d;
    vms_err err = {0};
    CHECK_EQ(vms_config_init(&c, "tiny", &err), VMS_OK);
    CHECK_EQ(vms_config_set(&c, "tlb.l1d", "4K:8x2:lru, 2M:2x2:fifo", "t", &err), VMS_OK);
    CHECK_EQ(vms_config_set(&c, "kernel.writeback_dir", "/tmp/a \"b\"", "t", &err), VMS_OK);
    vms_strbuf js, a, b;
    vms_strbuf_init(&js, NULL);
    vms_strbuf_init(&a, NULL);
    vms_strbuf_init(&b, NULL);
    CHECK_EQ(vms_config_json(&c, &js), VMS_OK);
    const char *p = vms_strbuf_str(&js);
    CHECK(p[0] == '{' && p[js.len - 1] == '}');
    CHECK(strstr(p, "\"tlb.l1d\":\"4K:8x2:lru, 2M:2x2:fifo\"") != NULL);
    CHECK(strstr(p, "\"kernel.writeback_dir\":\"/tmp/a \\\"b\\\"\"") != NULL);
    /* Walk the members ("key":"value", no escapes but the one above) and set them. */
    CHECK_EQ(vms_config_init(&d, NULL, &err), VMS_OK);
    unsigned n = 0;
    for (const char *q = p + 1; *q == '"';) {
        char key[128], val[1100];
        size_t i = 0, j = 0;
        for (q++; *q != '"' && i + 1 < sizeof key; q++)
            key[i++] = *q;
        key[i] = '\0';
        q += 3; /* ":" */
        for (; *q != '"' && j + 1 < sizeof val; q++) {
            if (*q == '\\')
                q++;
            val[j++] = *q;
        }
        val[j] = '\0';
        q++;
        CHECK_EQ(vms_config_set(&d, key, val, "json", &err), VMS_OK);
        n++;
        if (*q == ',')
            q++;
    }
    CHECK(n > 40);
    vms_config_dump(&c, &a);
    vms_config_dump(&d, &b);
    CHECK_STR(vms_strbuf_str(&a), vms_strbuf_str(&b));
    vms_strbuf_free(&js);
    vms_strbuf_free(&a);
    vms_strbuf_free(&b);
}

/* vms_config_boot builds the machine and kernel the configuration describes. */
static void test_boot(void)
{
    vms_config c;
    vms_machine *m;
    vms_kernel *k;
    vms_err err = {0};
    CHECK_EQ(vms_config_size(), sizeof c);
    vms_config_init(&c, NULL, NULL);
    CHECK_EQ(vms_config_set(&c, "cores", "3", "t", &err), VMS_OK);
    CHECK_EQ(vms_config_boot(&c, &m, &k, &err), VMS_OK);
    CHECK_EQ(vms_machine_ncores(m), 3);
    CHECK(vms_kernel_machine(k) == m);
    vms_kernel_destroy(k);
    vms_machine_destroy(m);
    /* A kernel that cannot start (its swap file cannot be created): nothing is left. */
    CHECK_EQ(vms_config_set(&c, "swap", "1M", "t", &err), VMS_OK);
    CHECK_EQ(vms_config_set(&c, "swap.file", "/nonexistent/dir/swap", "t", &err), VMS_OK);
    vms_status st = vms_config_boot(&c, &m, &k, &err);
    CHECK(st != VMS_OK);
    CHECK(m == NULL && k == NULL && err.msg[0]);
    if (st == VMS_OK) {
        vms_kernel_destroy(k);
        vms_machine_destroy(m);
    }
}

/* Lines longer than inih's 200-byte buffer are read whole (they used to be cut into
 * pieces); NUL bytes, directories and unreadable files are errors; inline comments. */
static void test_file_lines(void)
{
    vms_config c;
    vms_err err = {0};
    char text[2048], want[1600], longpath[700];
    memset(longpath, 'p', sizeof longpath - 1);
    memcpy(longpath, "/tmp/", 5);
    longpath[sizeof longpath - 1] = '\0';
    snprintf(text, sizeof text,
             "ram = 16M\nswap.file = %s\n[kernel]\nwriteback_dir = %s ; c\n"
             "cores = 99\n",
             longpath, longpath);
    vms_config_init(&c, NULL, &err);
    const char *path = write_tmp(text);
    CHECK_EQ(vms_config_load(&c, path, &err), VMS_ERR_NOTFOUND); /* kernel.cores: line 5 */
    snprintf(want, sizeof want, "%s:5: unknown key 'kernel.cores'", path);
    CHECK(strstr(err.msg, want) != NULL);
    CHECK_STR(c.swap_file, longpath);
    CHECK_STR(c.writeback_dir, longpath); /* in its section, comment cut */
    /* A long bad value names its own line and the whole value. */
    snprintf(text, sizeof text, "\n\nram = %s\n", longpath);
    path = write_tmp(text);
    CHECK_EQ(vms_config_load(&c, path, &err), VMS_ERR_INVAL);
    snprintf(want, sizeof want, "%s:3: bad value '%.40s...' for ram", path, longpath);
    CHECK(strncmp(err.msg, want, strlen(want)) == 0);
    /* `vmsim config` output with long paths loads back to the same configuration. */
    vms_config a, b;
    vms_config_init(&a, NULL, &err);
    snprintf(text, sizeof text, "swap.file=%s", longpath);
    CHECK_EQ(vms_config_set_arg(&a, text, &err), VMS_OK);
    vms_strbuf d1, d2;
    vms_strbuf_init(&d1, NULL);
    vms_strbuf_init(&d2, NULL);
    vms_config_dump(&a, &d1);
    path = write_tmp(vms_strbuf_str(&d1));
    vms_config_init(&b, "tiny", &err);
    CHECK_EQ(vms_config_load(&b, path, &err), VMS_OK);
    vms_config_dump(&b, &d2);
    CHECK_STR(vms_strbuf_str(&d2), vms_strbuf_str(&d1));
    vms_strbuf_free(&d1);
    vms_strbuf_free(&d2);
    /* A NUL byte is an error with its line (it used to end the line silently). */
    FILE *f = fopen(path, "wb");
    REQUIRE_VOID(f != NULL);
    fwrite("ram = 16M\ncores = 2\0 junk\n", 1, 27, f);
    fclose(f);
    vms_config_init(&c, NULL, &err);
    CHECK_EQ(vms_config_load(&c, path, &err), VMS_ERR_PARSE);
    snprintf(want, sizeof want, "%s:2: NUL byte in the line", path);
    CHECK_STR(err.msg, want);
    /* A directory is not an empty config file; a line over 8 KiB is refused by number. */
    CHECK_EQ(vms_config_load(&c, "/tmp", &err), VMS_ERR_IO);
    CHECK_STR(err.msg, "/tmp: is a directory, not a config file");
    static char huge[10000];
    memset(huge, 'x', sizeof huge - 2);
    huge[sizeof huge - 2] = '\n';
    CHECK_EQ(vms_config_parse(&c, "h.ini", huge, &err), VMS_ERR_PARSE);
    CHECK_STR(err.msg, "h.ini:1: line longer than 8190 bytes");
    /* Inline comments start with ; or # after whitespace. */
    vms_config_init(&c, NULL, &err);
    CHECK_EQ(vms_config_parse(&c, "i.ini", "ram = 32M   # comment\nseed = 5 ; too\n", &err),
             VMS_OK);
    CHECK_EQ(c.machine.ram_bytes, UINT64_C(32) << 20);
    CHECK_EQ(c.machine.seed, 5);
    unlink(path);
}

/* The example INI of docs/CONFIG.md loads as printed (found from VMS_SOURCE_DIR, or
 * relative to this binary). */
static void test_doc_example(const char *argv0)
{
    char path[1024];
    th_source_path(argv0, "docs/CONFIG.md", path, sizeof path);
    FILE *f = fopen(path, "r");
    REQUIRE_VOID(f != NULL);
    static char doc[65536], ini[4096];
    size_t n = fread(doc, 1, sizeof doc - 1, f);
    fclose(f);
    doc[n] = '\0';
    const char *start = strstr(doc, "```ini\n");
    REQUIRE_VOID(start != NULL);
    start += 7;
    const char *end = strstr(start, "```");
    REQUIRE_VOID(end != NULL && (size_t)(end - start) < sizeof ini);
    memcpy(ini, start, (size_t)(end - start));
    ini[end - start] = '\0';
    vms_config c;
    vms_err err = {0};
    vms_config_init(&c, NULL, &err);
    CHECK_EQ(vms_config_parse(&c, "CONFIG.md", ini, &err), VMS_OK);
    if (err.status)
        fprintf(stderr, "%s\n", err.msg);
    CHECK_EQ(c.machine.ram_bytes, UINT64_C(16) << 20);
    CHECK_EQ(c.machine.mmu.l2.nparts, 0);
}

/* hugepages=, hugepagesz= and default_hugepagesz= read as Linux's command line reads them:
 * hugepages=N counts pages of the last hugepagesz= (or default_hugepagesz=) before it,
 * and before any, of the default size (the contract key: 2 MiB by default). */
static void test_hugepagesz(void)
{
    vms_config c;
    vms_err err = {0};
    REQUIRE_VOID(vms_config_init(&c, NULL, &err) == VMS_OK);
    CHECK_EQ(c.kernel.default_hugepagesz, VMS_PG_2M);
    CHECK_EQ(vms_config_set_arg(&c, "hugepages=3", &err), VMS_OK);
    CHECK_EQ(c.kernel.hugepages, 3);
    CHECK_EQ(vms_config_set_arg(&c, "hugepagesz=1G", &err), VMS_OK);
    CHECK_EQ(vms_config_set_arg(&c, "hugepages=2", &err), VMS_OK);
    CHECK_EQ(c.kernel.hugepages_1g, 2);
    CHECK_EQ(c.kernel.hugepages, 3);
    CHECK_EQ(vms_config_set_arg(&c, "hugepagesz=2M", &err), VMS_OK);
    CHECK_EQ(vms_config_set_arg(&c, "hugepages=9", &err), VMS_OK);
    CHECK_EQ(c.kernel.hugepages_2m, 9);
    CHECK_EQ(c.kernel.hugepages, 3);
    CHECK(vms_config_set_arg(&c, "hugepagesz=4K", &err) != VMS_OK);
    CHECK(strstr(err.msg, "bad value '4K' for hugepagesz") != NULL);
    CHECK(vms_config_set_arg(&c, "default_hugepagesz=3M", &err) != VMS_OK);
    CHECK_EQ(vms_config_set_arg(&c, "default_hugepagesz=1G", &err), VMS_OK);
    CHECK_EQ(c.kernel.default_hugepagesz, VMS_PG_1G);
    CHECK_EQ(vms_config_set_arg(&c, "hugepages=1", &err), VMS_OK); /* follows it: 1G */
    CHECK_EQ(c.kernel.hugepages_1g, 1);
    CHECK(vms_config_set_arg(&c, "hugepages=20000", &err) != VMS_OK); /* > 2^14 1G pages */
    /* An INI file is one command line, in order. */
    vms_config d;
    REQUIRE_VOID(vms_config_init(&d, NULL, &err) == VMS_OK);
    CHECK_EQ(vms_config_parse(&d, "t.ini",
                              "hugepagesz = 1G\nhugepages = 4\nhugepagesz = 2M\nhugepages = 6\n",
                              &err),
             VMS_OK);
    CHECK_EQ(d.kernel.hugepages_1g, 4);
    CHECK_EQ(d.kernel.hugepages_2m, 6);
    CHECK_EQ(d.kernel.hugepages, 0);
    /* The dump names the pools, not the cursor, and loads back to the same pools. */
    vms_strbuf sb;
    vms_strbuf_init(&sb, NULL);
    vms_config_dump(&c, &sb);
    const char *txt = vms_strbuf_str(&sb);
    CHECK(strstr(txt, "\nhugepages = 3\nhugepages_1g = 1\nhugepages_2m = 9\n"
                      "default_hugepagesz = 1G\n") != NULL);
    CHECK(strstr(txt, "hugepagesz = ") == strstr(txt, "default_hugepagesz = ") + 8);
    vms_config back;
    REQUIRE_VOID(vms_config_init(&back, NULL, &err) == VMS_OK);
    CHECK_EQ(vms_config_parse(&back, "dump", txt, &err), VMS_OK);
    CHECK_EQ(back.kernel.hugepages, 3);
    CHECK_EQ(back.kernel.hugepages_1g, 1);
    CHECK_EQ(back.kernel.hugepages_2m, 9);
    CHECK_EQ(back.kernel.default_hugepagesz, VMS_PG_1G);
    vms_strbuf_free(&sb);
    /* A default configuration lists none of the new keys. */
    vms_strbuf_init(&sb, NULL);
    vms_config_dump(&d, &sb);
    CHECK(strstr(vms_strbuf_str(&sb), "default_hugepagesz") == NULL);
    CHECK(strstr(vms_strbuf_str(&sb), "nr_overcommit_hugepages_1g") == NULL);
    vms_strbuf_free(&sb);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "config");
    test_hugepagesz();
    test_json();
    test_boot();
    test_keys();
    test_errors();
    test_roundtrip();
    test_geometry();
    test_file_lines();
    test_doc_example(argv[0]);
    return th_finish();
}
