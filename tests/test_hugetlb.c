/*
 * test_hugetlb.c — hugetlb (src/os/mm/hugetlb.c; docs/HUGEPAGES.md "hugetlbfs"): the
 * pools as Linux's command line sizes them (hugepages=N, hugepagesz=, default_hugepagesz=),
 * surplus pages of both sizes (nr_overcommit_hugepages per pool) and their sysfs view.
 * Every test writes a pattern over the bytes it maps and checks them afterwards, runs
 * vms_kernel_check after every step, and checks that every frame is free again when its
 * processes are gone. (Anonymous MAP_HUGETLB stories are in test_thp.c.)
 */
#include <stdio.h>

#include "harness.h"
#include "vmsim/core.h"
#include "vmsim/frames.h"
#include "vmsim/machine.h"
#include "vmsim/mman.h"

#define MB     (UINT64_C(1) << 20)
#define GB     (UINT64_C(1) << 30)
#define RW     (VMS_PROT_READ | VMS_PROT_WRITE)
#define HUGEPR (VMS_MAP_PRIVATE | VMS_MAP_ANONYMOUS | VMS_MAP_HUGETLB)

typedef struct rig {
    vms_machine *m;
    vms_kernel *k;
    uint64_t free0;
} rig;

/* A 2-core machine of `ram` bytes, its kernel configuration changed by `tune`. */
static bool rig_up(rig *r, uint64_t ram, void (*tune)(vms_kernel_config *))
{
    vms_machine_config mc;
    if (vms_machine_preset("skylake", &mc, NULL) != VMS_OK)
        return false;
    mc.ram_bytes = ram;
    mc.ncores = 2;
    mc.seed = th_seed;
    if (vms_machine_create(NULL, &mc, &r->m, NULL) != VMS_OK)
        return false;
    vms_kernel_config kc;
    vms_kernel_config_default(&kc);
    kc.seed = th_seed;
    if (tune)
        tune(&kc);
    vms_err err = {0};
    if (vms_kernel_create(r->m, &kc, &r->k, &err) != VMS_OK) {
        fprintf(stderr, "kernel: %s\n", err.msg);
        vms_machine_destroy(r->m);
        return false;
    }
    r->free0 = vms_frames_nfree(vms_kernel_frames(r->k));
    return true;
}

static void rig_check(rig *r)
{
    vms_err err = {0};
    vms_status st = vms_kernel_check(r->k, &err);
    if (st != VMS_OK)
        fprintf(stderr, "check: %s\n", err.msg);
    CHECK_EQ(st, VMS_OK);
}

/* Every frame free again (the processes are gone), then tear down. */
static void rig_down(rig *r)
{
    rig_check(r);
    CHECK_EQ(vms_frames_nfree(vms_kernel_frames(r->k)), r->free0);
    vms_kernel_destroy(r->k);
    vms_machine_destroy(r->m);
}

static uint64_t nfree(rig *r)
{
    return vms_frames_nfree(vms_kernel_frames(r->k));
}

/* The byte the tests write at va for generation gen. */
static uint8_t pat(uint64_t va, unsigned gen)
{
    return (uint8_t)((va >> 12) * 131u + (va & 0xfff) * 7u + gen * 29u + 1u);
}

/* Write the pattern over [va, va + len) from task t, `step` bytes apart (a 4 KiB page at
 * each step). */
static bool fill(rig *r, vms_task *t, uint64_t va, uint64_t len, uint64_t step, unsigned gen)
{
    static uint8_t buf[4096];
    for (uint64_t p = va; p < va + len; p += step) {
        for (unsigned i = 0; i < 4096; i++)
            buf[i] = pat(p + i, gen);
        vms_access_info info;
        if (vms_proc_access(r->k, t, p, VMS_ACC_WRITE, buf, 4096, &info, NULL) != VMS_OK ||
            info.outcome != VMS_ACCESS_OK)
            return false;
    }
    return true;
}

/* Whether the pages fill wrote read back as generation gen (gen < 0: zeros). */
static bool same(rig *r, vms_task *t, uint64_t va, uint64_t len, uint64_t step, int gen)
{
    static uint8_t buf[4096];
    for (uint64_t p = va; p < va + len; p += step) {
        vms_access_info info;
        if (vms_proc_access(r->k, t, p, VMS_ACC_READ, buf, 4096, &info, NULL) != VMS_OK ||
            info.outcome != VMS_ACCESS_OK)
            return false;
        for (unsigned i = 0; i < 4096; i++)
            if (buf[i] != (gen < 0 ? 0 : pat(p + i, (unsigned)gen))) {
                fprintf(stderr, "byte at %llx: %02x\n", (unsigned long long)(p + i), buf[i]);
                return false;
            }
    }
    return true;
}

/* The outcome of a one-byte access. */
static vms_access_outcome poke(rig *r, vms_task *t, uint64_t va, bool write)
{
    vms_access_info info;
    uint8_t b = 0x5a;
    if (vms_proc_access(r->k, t, va, write ? VMS_ACC_WRITE : VMS_ACC_READ, &b, 1, &info, NULL) !=
        VMS_OK)
        return VMS_ACCESS_DEAD;
    return info.outcome;
}

/* Whether meminfo (or the sysfs view with `sysfs`) holds `text`. */
static bool shows(rig *r, bool sysfs, const char *text)
{
    vms_strbuf sb;
    vms_strbuf_init(&sb, NULL);
    if (sysfs)
        vms_kernel_hugepages_show(r->k, &sb);
    else
        vms_kernel_meminfo(r->k, &sb);
    bool found = strstr(vms_strbuf_str(&sb), text) != NULL;
    if (!found)
        fprintf(stderr, "no '%s' in:\n%s", text, vms_strbuf_str(&sb));
    vms_strbuf_free(&sb);
    return found;
}

static vms_hugepages_info pool(rig *r, vms_pgsize size)
{
    vms_hugepages_info hi = {0};
    CHECK_EQ(vms_kernel_hugepages_info(r->k, size, &hi), VMS_OK);
    return hi;
}

/* ---- pools at boot --------------------------------------------------------------------- */

static void dflt_1g(vms_kernel_config *kc)
{
    kc->default_hugepagesz = VMS_PG_1G;
    kc->hugepages = 1;    /* plain hugepages=1: of the default size */
    kc->hugepages_2m = 3; /* hugepagesz=2M hugepages=3 */
}

static void both_pairs(vms_kernel_config *kc)
{
    kc->hugepages = 2;    /* default size (2 MiB): wins over the pair for that size */
    kc->hugepages_2m = 7; /* ... which is ignored, as Linux ignores it */
    kc->hugepages_1g = 1;
}

/* default_hugepagesz=1G: plain hugepages counts 1 GiB pages, meminfo's HugePages_* are
 * the 1 GiB pool's, MAP_HUGETLB without a size flag maps 1 GiB pages; a pair for 2 MiB
 * fills that pool. Without it, hugepages is the 2 MiB pool (the contract). */
static void test_boot_sizes(void)
{
    rig r;
    REQUIRE_VOID(rig_up(&r, 4 * GB, dflt_1g));
    CHECK_EQ(pool(&r, VMS_PG_1G).nr_hugepages, 1);
    CHECK_EQ(pool(&r, VMS_PG_2M).nr_hugepages, 3);
    CHECK_EQ(vms_kernel_default_hugepagesz(r.k), VMS_PG_1G);
    CHECK(shows(&r, false,
                "HugePages_Total:       1\nHugePages_Free:        1\nHugePages_Rsvd:        0\n"
                "HugePages_Surp:        0\nHugepagesize:    1048576 kB\n"
                "Hugetlb:         1054720 kB\n"));
    CHECK(shows(&r, true,
                "hugepages-2048kB nr_hugepages 3 free_hugepages 3 resv_hugepages 0 "
                "surplus_hugepages 0 nr_overcommit_hugepages 0\n"
                "hugepages-1048576kB nr_hugepages 1 free_hugepages 1"));
    vms_task *t;
    uint64_t va;
    REQUIRE_VOID(vms_proc_spawn(r.k, "db", 0, &t, NULL) == VMS_OK);
    CHECK_EQ(vms_sys_mmap(r.k, t, 0, 4096, RW, HUGEPR, NULL, 0, &va, NULL), VMS_OK);
    CHECK_EQ(va & (GB - 1), 0); /* a 1 GiB mapping */
    CHECK(shows(&r, false, "HugePages_Rsvd:        1\n"));
    CHECK(fill(&r, t, va, GB, 256 * MB, 1));
    CHECK(same(&r, t, va, GB, 256 * MB, 1));
    CHECK(shows(&r, false, "HugePages_Free:        0\nHugePages_Rsvd:        0\n"));
    rig_check(&r);
    uint64_t va2;
    CHECK_EQ(vms_sys_mmap(r.k, t, 0, 4 * MB, RW, HUGEPR | VMS_MAP_HUGE_2MB, NULL, 0, &va2, NULL),
             VMS_OK);
    CHECK(fill(&r, t, va2, 4 * MB, MB, 2));
    CHECK_EQ(pool(&r, VMS_PG_2M).free_hugepages, 1);
    vms_proc_exit(r.k, t);
    CHECK_EQ(pool(&r, VMS_PG_2M).free_hugepages, 3);
    CHECK_EQ(pool(&r, VMS_PG_1G).free_hugepages, 1);
    rig_down(&r);

    REQUIRE_VOID(rig_up(&r, 4 * GB, both_pairs));
    CHECK_EQ(pool(&r, VMS_PG_2M).nr_hugepages, 2);
    CHECK_EQ(pool(&r, VMS_PG_1G).nr_hugepages, 1);
    CHECK(shows(&r, false, "HugePages_Total:       2\n"));
    CHECK(shows(&r, false, "Hugepagesize:       2048 kB\nHugetlb:         1052672 kB\n"));
    rig_down(&r);
}

/* ---- surplus pages of both sizes --------------------------------------------------------- */

static void over_1g(vms_kernel_config *kc)
{
    kc->nr_overcommit_hugepages_1g = 2; /* no 1 GiB pool, two surplus pages allowed */
}

/* Surplus 1 GiB pages: with no 1 GiB pool, a reservation takes surplus pages from free
 * memory up to the 1 GiB pool's nr_overcommit_hugepages (HugePages_Surp of that pool),
 * ENOMEM beyond it; they go back to the buddy allocator at munmap. At run time the limit
 * is set per size (the sysfs file); the /proc/sys/vm one sets the default pool's only. */
static void test_surplus_1g(void)
{
    rig r;
    REQUIRE_VOID(rig_up(&r, 4 * GB, over_1g));
    CHECK_EQ(pool(&r, VMS_PG_1G).nr_overcommit_hugepages, 2);
    CHECK_EQ(pool(&r, VMS_PG_2M).nr_overcommit_hugepages, 0);
    vms_task *t;
    uint64_t va, va2;
    REQUIRE_VOID(vms_proc_spawn(r.k, "db", 0, &t, NULL) == VMS_OK);
    uint64_t base = nfree(&r); /* with db's tables */
    unsigned f1g = HUGEPR | VMS_MAP_HUGE_1GB;
    CHECK_EQ(vms_sys_mmap(r.k, t, 0, 3 * GB, RW, f1g, NULL, 0, &va, NULL), VMS_ERR_NOTFOUND);
    CHECK_EQ(pool(&r, VMS_PG_1G).surplus_hugepages, 0); /* nothing kept from the failure */
    CHECK_EQ(nfree(&r), base);
    CHECK_EQ(vms_sys_mmap(r.k, t, 0, 2 * GB, RW, f1g, NULL, 0, &va, NULL), VMS_OK);
    vms_hugepages_info hi = pool(&r, VMS_PG_1G);
    CHECK_EQ(hi.nr_hugepages, 0);
    CHECK_EQ(hi.surplus_hugepages, 2);
    CHECK_EQ(hi.resv_hugepages, 2);
    CHECK_EQ(hi.free_hugepages, 2);
    CHECK(shows(&r, true,
                "hugepages-1048576kB nr_hugepages 0 free_hugepages 2 resv_hugepages 2 "
                "surplus_hugepages 2 nr_overcommit_hugepages 2\n"));
    CHECK(shows(&r, false, "HugePages_Surp:        0\n")); /* meminfo: the 2 MiB pool's */
    CHECK_EQ(nfree(&r), base - 2 * (GB >> 12));
    CHECK(fill(&r, t, va, 2 * GB, 128 * MB, 3));
    rig_check(&r);
    CHECK(same(&r, t, va, 2 * GB, 128 * MB, 3));
    CHECK_EQ(pool(&r, VMS_PG_1G).resv_hugepages, 0);
    /* A third page: over the limit, ENOMEM; a NORESERVE one SIGBUSes at its fault. */
    CHECK_EQ(vms_sys_mmap(r.k, t, 0, GB, RW, f1g, NULL, 0, &va2, NULL), VMS_ERR_NOTFOUND);
    CHECK_EQ(vms_sys_mmap(r.k, t, 0, GB, RW, f1g | VMS_MAP_NORESERVE, NULL, 0, &va2, NULL), VMS_OK);
    CHECK_EQ(poke(&r, t, va2, true), VMS_ACCESS_BUS);
    REQUIRE_VOID(vms_proc_spawn(r.k, "db2", 0, &t, NULL) == VMS_OK);
    /* SIGBUS killed db: its exit gave both surplus pages back to the buddy allocator. */
    CHECK_EQ(pool(&r, VMS_PG_1G).surplus_hugepages, 0);
    CHECK_EQ(nfree(&r), base);
    /* The limit at run time, per size; vm.nr_overcommit_hugepages is the 2 MiB pool's. */
    CHECK_EQ(vms_kernel_set_overcommit_hugepages_size(r.k, VMS_PG_1G, 0), VMS_OK);
    CHECK_EQ(vms_kernel_set_overcommit_hugepages_size(r.k, VMS_PG_4K, 1), VMS_ERR_INVAL);
    CHECK_EQ(vms_sys_mmap(r.k, t, 0, GB, RW, f1g, NULL, 0, &va, NULL), VMS_ERR_NOTFOUND);
    CHECK_EQ(vms_kernel_set_overcommit_hugepages(r.k, 1), VMS_OK);
    CHECK_EQ(pool(&r, VMS_PG_2M).nr_overcommit_hugepages, 1);
    CHECK_EQ(pool(&r, VMS_PG_1G).nr_overcommit_hugepages, 0);
    CHECK_EQ(vms_kernel_set_overcommit_hugepages_size(r.k, VMS_PG_1G, 1), VMS_OK);
    CHECK_EQ(vms_sys_mmap(r.k, t, 0, GB, RW, f1g, NULL, 0, &va, NULL), VMS_OK);
    CHECK(fill(&r, t, va, GB, 256 * MB, 4));
    /* nr_hugepages=1 makes the surplus page in use persistent; 0 makes it surplus again. */
    uint64_t got = 0;
    CHECK_EQ(vms_kernel_set_hugepages(r.k, VMS_PG_1G, 1, &got), VMS_OK);
    CHECK_EQ(got, 1);
    CHECK_EQ(pool(&r, VMS_PG_1G).surplus_hugepages, 0);
    CHECK_EQ(vms_kernel_set_hugepages(r.k, VMS_PG_1G, 0, &got), VMS_OK);
    CHECK_EQ(pool(&r, VMS_PG_1G).surplus_hugepages, 1);
    CHECK(same(&r, t, va, GB, 256 * MB, 4));
    CHECK_EQ(vms_sys_munmap(r.k, t, va, GB, NULL), VMS_OK);
    CHECK_EQ(pool(&r, VMS_PG_1G).surplus_hugepages, 0);
    CHECK_EQ(pool(&r, VMS_PG_1G).free_hugepages, 0);
    vms_proc_exit(r.k, t);
    rig_down(&r);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "hugetlb");
    test_boot_sizes();
    test_surplus_1g();
    return th_finish();
}
