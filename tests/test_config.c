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
    /* Every key appears in the dump except the two derived ones. */
    unsigned listed = 0;
    for (unsigned i = 0; i < vms_config_nkeys(); i++) {
        char needle[96];
        snprintf(needle, sizeof needle, "\n%s = ", vms_config_key_at(i).name);
        listed += strstr(vms_strbuf_str(&d1), needle) != NULL;
    }
    CHECK_EQ(listed, vms_config_nkeys() - 2);
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

int main(int argc, char **argv)
{
    th_init(argc, argv, "config");
    test_json();
    test_boot();
    test_keys();
    test_errors();
    test_roundtrip();
    return th_finish();
}
