/*
 * test_hugetlb.c — hugetlb (src/os/mm/hugetlb.c; docs/HUGEPAGES.md "hugetlbfs"): the
 * pools as Linux's command line sizes them (hugepages=N, hugepagesz=, default_hugepagesz=),
 * surplus pages of both sizes (nr_overcommit_hugepages per pool) and their sysfs view;
 * hugetlbfs files: shared mappings between processes and across fork, private mappings
 * of a file (COW copies), reservations at mmap (the file's resv_map for shared mappings,
 * the mapping's own for private ones), ENOMEM and SIGBUS, truncate and unlink, and shared
 * anonymous MAP_HUGETLB memory.
 * Every test writes a pattern over the bytes it maps and checks them afterwards, runs
 * vms_kernel_check after every step, and checks that every frame is free again when its
 * processes are gone. (Anonymous MAP_HUGETLB stories are in test_thp.c.)
 */
#include <stdio.h>

#include "harness.h"
#include "kernel_rig.h"
#include "vmsim/core.h"
#include "vmsim/frames.h"
#include "vmsim/machine.h"
#include "vmsim/mman.h"

#define MB     (UINT64_C(1) << 20)
#define GB     (UINT64_C(1) << 30)
#define RW     (VMS_PROT_READ | VMS_PROT_WRITE)
#define HUGEPR (VMS_MAP_PRIVATE | VMS_MAP_ANONYMOUS | VMS_MAP_HUGETLB)

/* A 2-core skylake machine of `ram` bytes (no swap), its kernel changed by `tune`. */
static bool rig_up(rig *r, uint64_t ram, void (*tune)(vms_kernel_config *))
{
    return rig_boot(r, "skylake", ram, 0, tune);
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
    uint64_t base = rig_nfree(&r); /* with db's tables */
    unsigned f1g = HUGEPR | VMS_MAP_HUGE_1GB;
    CHECK_EQ(vms_sys_mmap(r.k, t, 0, 3 * GB, RW, f1g, NULL, 0, &va, NULL), VMS_ERR_NOTFOUND);
    CHECK_EQ(pool(&r, VMS_PG_1G).surplus_hugepages, 0); /* nothing kept from the failure */
    CHECK_EQ(rig_nfree(&r), base);
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
    CHECK_EQ(rig_nfree(&r), base - 2 * (GB >> 12));
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
    CHECK_EQ(rig_nfree(&r), base);
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

/* ---- hugetlbfs files ------------------------------------------------------------------ */

static void pool4(vms_kernel_config *kc)
{
    kc->hugepages = 4;
}

static vms_hugepages_info p2(rig *r)
{
    return pool(r, VMS_PG_2M);
}

/* A shared mapping of [0, len) of the file at path in t, at *va. */
static vms_status map_file(rig *r, vms_task *t, const char *path, uint64_t len, unsigned prot,
                           unsigned flags, uint64_t *va)
{
    vms_file *f;
    vms_err err = {0};
    vms_status st = vms_hugetlbfs_open(r->k, path, true, &f, &err);
    if (st != VMS_OK)
        return st;
    st = vms_sys_mmap(r->k, t, 0, len, prot, flags, f, 0, va, &err);
    vms_file_close(r->k, f);
    return st;
}

#define SH (VMS_MAP_SHARED)
#define PR (VMS_MAP_PRIVATE)

/* Shared hugetlbfs pages between processes and across fork: every byte one writes the
 * others read; reservations are the file's (made once, consumed by the first fault,
 * kept across munmap); a private mapping of the same file reads the file's pages and
 * copies one on write (with its own reservation); truncate unmaps and frees the pages
 * beyond the new size everywhere (an access there is SIGBUS); unlink frees the file with
 * its last mapping. */
static void test_hugetlbfs_shared(void)
{
    rig r;
    REQUIRE_VOID(rig_up(&r, 64 * MB, pool4));
    vms_err err = {0};
    CHECK_EQ(vms_hugetlbfs_mount(r.k, "/mnt/huge", VMS_PG_4K, &err), VMS_OK);
    CHECK_EQ(vms_hugetlbfs_mount(r.k, "/mnt/huge", VMS_PG_2M, &err), VMS_ERR_EXISTS);
    CHECK_EQ(vms_hugetlbfs_mount(r.k, "mnt", VMS_PG_2M, &err), VMS_ERR_INVAL);
    CHECK(vms_hugetlbfs_is(r.k, "/mnt/huge/db"));
    CHECK(!vms_hugetlbfs_is(r.k, "/mnt/huge"));
    CHECK(!vms_hugetlbfs_is(r.k, "/mnt/huge/a/b"));
    vms_task *a, *child, *b;
    uint64_t va, vb, vp;
    REQUIRE_VOID(vms_proc_spawn(r.k, "a", 0, &a, NULL) == VMS_OK);
    CHECK_EQ(map_file(&r, a, "/mnt/huge/db", 4 * MB, RW, SH, &va), VMS_OK);
    CHECK_EQ(va & (2 * MB - 1), 0);
    CHECK_EQ(p2(&r).resv_hugepages, 2);
    CHECK_EQ(p2(&r).free_hugepages, 4);
    vms_file *f;
    REQUIRE_VOID(vms_hugetlbfs_open(r.k, "/mnt/huge/db", false, &f, &err) == VMS_OK);
    CHECK_EQ(vms_file_size(f), 4 * MB); /* a writable mapping extends the file */
    vms_file_close(r.k, f);
    CHECK(fill(&r, a, va, 4 * MB, 4096, 1));
    CHECK_EQ(p2(&r).resv_hugepages, 0);
    CHECK_EQ(p2(&r).free_hugepages, 2);
    CHECK(shows(&r, false, "HugePages_Free:        2\nHugePages_Rsvd:        0\n"));
    CHECK(shows(&r, false, "Cached:                0 kB\n")); /* hugetlbfs: HugePages_* only */
    CHECK(shows(&r, false, "ShmemHugePages:        0 kB\nFileHugePages:         0 kB\n"));
    rig_check(&r);
    /* fork: the child maps the same pages; a write by either is seen by the other. */
    REQUIRE_VOID(vms_proc_fork(r.k, a, &child, NULL) == VMS_OK);
    CHECK(same(&r, child, va, 4 * MB, 4096, 1));
    CHECK(fill(&r, child, va + 2 * MB, 2 * MB, 4096, 2));
    CHECK(same(&r, a, va + 2 * MB, 2 * MB, 4096, 2));
    CHECK_EQ(p2(&r).free_hugepages, 2);
    rig_check(&r);
    /* An unrelated process opens the file: the same pages, no new reservation. */
    REQUIRE_VOID(vms_proc_spawn(r.k, "b", 0, &b, NULL) == VMS_OK);
    CHECK_EQ(map_file(&r, b, "/mnt/huge/db", 4 * MB, VMS_PROT_READ, SH, &vb), VMS_OK);
    CHECK_EQ(p2(&r).resv_hugepages, 0);
    CHECK(same(&r, b, vb, 2 * MB, 4096, 1));
    CHECK(same(&r, b, vb + 2 * MB, 2 * MB, 4096, 2));
    /* A private mapping: reserves its two pages, reads the file's, copies one on write. */
    CHECK_EQ(map_file(&r, b, "/mnt/huge/db", 4 * MB, RW, PR, &vp), VMS_OK);
    CHECK_EQ(p2(&r).resv_hugepages, 2);
    CHECK(same(&r, b, vp + 2 * MB, 2 * MB, 4096, 2));
    CHECK_EQ(p2(&r).free_hugepages, 2); /* read: the file's page, nothing taken */
    CHECK(fill(&r, b, vp, 2 * MB, 4096, 3));
    CHECK_EQ(p2(&r).free_hugepages, 1);
    CHECK_EQ(p2(&r).resv_hugepages, 1);      /* the copy used the mapping's reservation */
    CHECK(same(&r, a, va, 2 * MB, 4096, 1)); /* the file's page is untouched */
    CHECK(same(&r, b, vp, 2 * MB, 4096, 3));
    rig_check(&r);
    CHECK_EQ(vms_sys_munmap(r.k, b, vp, 4 * MB, NULL), VMS_OK);
    CHECK_EQ(p2(&r).resv_hugepages, 0);
    CHECK_EQ(p2(&r).free_hugepages, 2);
    /* A mapping refused after its reservation (the address is taken) keeps nothing. */
    REQUIRE_VOID(vms_hugetlbfs_open(r.k, "/mnt/huge/other", true, &f, &err) == VMS_OK);
    CHECK_EQ(vms_sys_mmap(r.k, b, vb, 2 * MB, RW, SH | VMS_MAP_FIXED_NOREPLACE, f, 0, &vp, &err),
             VMS_ERR_EXISTS);
    CHECK_EQ(p2(&r).resv_hugepages, 0);
    CHECK_EQ(vms_sys_unlink(r.k, "/mnt/huge/other", &err), VMS_OK);
    vms_file_close(r.k, f);
    /* truncate: EINVAL unaligned; to 2 MiB unmaps and frees the second page everywhere. */
    CHECK_EQ(vms_sys_truncate(r.k, "/mnt/huge/db", 3 * MB, &err), VMS_ERR_INVAL);
    CHECK_EQ(vms_sys_truncate(r.k, "/tmp/db", 2 * MB, &err), VMS_ERR_UNSUPPORTED);
    CHECK_EQ(vms_sys_truncate(r.k, "/mnt/huge/nope", 2 * MB, &err), VMS_ERR_NOTFOUND);
    CHECK_EQ(vms_sys_truncate(r.k, "/mnt/huge/db", 2 * MB, &err), VMS_OK);
    CHECK_EQ(p2(&r).free_hugepages, 3);
    rig_check(&r);
    CHECK(same(&r, child, va, 2 * MB, 4096, 1));
    CHECK_EQ(poke(&r, b, vb + 2 * MB, false), VMS_ACCESS_BUS); /* beyond the size */
    /* Growing again: the page reads as zeros, a new one. */
    CHECK_EQ(vms_sys_truncate(r.k, "/mnt/huge/db", 4 * MB, &err), VMS_OK);
    CHECK(same(&r, a, va + 2 * MB, 2 * MB, 4096, -1));
    CHECK_EQ(p2(&r).free_hugepages, 2);
    /* unlink: the name goes, the pages stay while mapped. */
    CHECK_EQ(vms_sys_unlink(r.k, "/mnt/huge/db", &err), VMS_OK);
    CHECK_EQ(vms_hugetlbfs_open(r.k, "/mnt/huge/db", false, &f, &err), VMS_ERR_NOTFOUND);
    CHECK_EQ(vms_sys_unlink(r.k, "/mnt/huge/db", &err), VMS_ERR_NOTFOUND);
    CHECK(same(&r, child, va, 2 * MB, 4096, 1));
    vms_proc_exit(r.k, a);
    CHECK_EQ(p2(&r).free_hugepages, 2);
    vms_proc_exit(r.k, child); /* the last mapping: the file and its pages go */
    CHECK_EQ(p2(&r).free_hugepages, 4);
    CHECK_EQ(p2(&r).resv_hugepages, 0);
    rig_down(&r);
}

static void pool2(vms_kernel_config *kc)
{
    kc->hugepages = 2;
}

/* Reservations of shared mappings, as Linux's resv_map: ENOMEM at mmap when the pool
 * cannot reserve the pages the file lacks (nothing kept); a second mapping of reserved
 * pages reserves nothing more; the reservations outlive munmap and go with truncate or the
 * file; MAP_NORESERVE reserves nothing and SIGBUSes at the fault the pool cannot serve. */
static void test_hugetlbfs_reserve(void)
{
    rig r;
    REQUIRE_VOID(rig_up(&r, 64 * MB, pool2));
    vms_err err = {0};
    REQUIRE_VOID(vms_hugetlbfs_mount(r.k, "/dev/hugepages", VMS_PG_2M, &err) == VMS_OK);
    vms_task *t;
    uint64_t v1, v2, v3;
    REQUIRE_VOID(vms_proc_spawn(r.k, "db", 0, &t, NULL) == VMS_OK);
    CHECK_EQ(map_file(&r, t, "/dev/hugepages/big", 6 * MB, RW, SH, &v1), VMS_ERR_NOTFOUND);
    CHECK_EQ(p2(&r).resv_hugepages, 0);
    CHECK_EQ(map_file(&r, t, "/dev/hugepages/f", 4 * MB, RW, SH, &v1), VMS_OK);
    CHECK_EQ(p2(&r).resv_hugepages, 2);
    CHECK_EQ(map_file(&r, t, "/dev/hugepages/f", 4 * MB, RW, SH, &v2), VMS_OK); /* no more */
    CHECK_EQ(p2(&r).resv_hugepages, 2);
    CHECK_EQ(map_file(&r, t, "/dev/hugepages/g", 2 * MB, RW, SH, &v3), VMS_ERR_NOTFOUND);
    vms_file *f;
    REQUIRE_VOID(vms_hugetlbfs_open(r.k, "/dev/hugepages/h", true, &f, &err) == VMS_OK);
    CHECK_EQ(vms_sys_mmap(r.k, t, 0, 2 * MB, RW, SH, f, 1 << 20, &v3, &err), VMS_ERR_INVAL);
    vms_file_close(r.k, f);
    CHECK_EQ(p2(&r).resv_hugepages, 2);
    rig_check(&r);
    CHECK(fill(&r, t, v1, 2 * MB, 4096, 5));
    CHECK(same(&r, t, v2, 2 * MB, 4096, 5)); /* two mappings of one page */
    CHECK_EQ(p2(&r).resv_hugepages, 1);
    CHECK_EQ(vms_sys_munmap(r.k, t, v1, 4 * MB, NULL), VMS_OK);
    CHECK_EQ(vms_sys_munmap(r.k, t, v2, 4 * MB, NULL), VMS_OK);
    CHECK_EQ(p2(&r).resv_hugepages, 1); /* the file's, not the mappings' */
    CHECK_EQ(p2(&r).free_hugepages, 1);
    /* The page stays in the file: mapped again, its bytes are there. */
    CHECK_EQ(map_file(&r, t, "/dev/hugepages/f", 4 * MB, VMS_PROT_READ, SH, &v1), VMS_OK);
    CHECK(same(&r, t, v1, 2 * MB, 4096, 5));
    CHECK_EQ(vms_sys_munmap(r.k, t, v1, 4 * MB, NULL), VMS_OK);
    CHECK_EQ(vms_sys_truncate(r.k, "/dev/hugepages/f", 2 * MB, &err), VMS_OK);
    CHECK_EQ(p2(&r).resv_hugepages, 0);
    CHECK_EQ(vms_sys_unlink(r.k, "/dev/hugepages/f", &err), VMS_OK); /* no mapping: freed */
    CHECK_EQ(p2(&r).free_hugepages, 2);
    CHECK_EQ(vms_sys_unlink(r.k, "/dev/hugepages/h", &err), VMS_OK);
    rig_check(&r);
    /* NORESERVE: three pages mapped over a pool of two; the third fault is SIGBUS. */
    uint64_t sig0 = vms_kernel_get_stats(r.k)->hugetlb_sigbus;
    CHECK_EQ(map_file(&r, t, "/dev/hugepages/n", 6 * MB, RW, SH | VMS_MAP_NORESERVE, &v1), VMS_OK);
    CHECK_EQ(p2(&r).resv_hugepages, 0);
    CHECK(fill(&r, t, v1, 4 * MB, MB, 6));
    CHECK_EQ(poke(&r, t, v1 + 4 * MB, true), VMS_ACCESS_BUS);
    CHECK_EQ(vms_kernel_get_stats(r.k)->hugetlb_sigbus, sig0 + 1);
    rig_check(&r);
    CHECK_EQ(vms_sys_unlink(r.k, "/dev/hugepages/n", &err), VMS_OK);
    CHECK_EQ(p2(&r).free_hugepages, 2); /* db died of SIGBUS: its mapping went with it */
    rig_down(&r);
}

/* MAP_SHARED|MAP_ANONYMOUS|MAP_HUGETLB: an unnamed hugetlbfs file shared across fork
 * (maps: /anon_hugepage (deleted)), freed with the last mapping. */
static void test_shared_anon(void)
{
    rig r;
    REQUIRE_VOID(rig_up(&r, 64 * MB, pool4));
    vms_task *a, *b;
    uint64_t va;
    REQUIRE_VOID(vms_proc_spawn(r.k, "a", 0, &a, NULL) == VMS_OK);
    unsigned fl = VMS_MAP_SHARED | VMS_MAP_ANONYMOUS | VMS_MAP_HUGETLB;
    CHECK_EQ(vms_sys_mmap(r.k, a, 0, 3 * MB, RW, fl, NULL, 0, &va, NULL), VMS_OK);
    CHECK_EQ(p2(&r).resv_hugepages, 2);
    REQUIRE_VOID(vms_proc_fork(r.k, a, &b, NULL) == VMS_OK);
    CHECK(fill(&r, b, va, 4 * MB, 4096, 7)); /* the child writes, the parent reads */
    CHECK(same(&r, a, va, 4 * MB, 4096, 7));
    CHECK_EQ(p2(&r).free_hugepages, 2);
    CHECK_EQ(p2(&r).resv_hugepages, 0);
    vms_strbuf sb;
    vms_strbuf_init(&sb, NULL);
    vms_proc_maps(r.k, a, &sb);
    CHECK(strstr(vms_strbuf_str(&sb), " rw-s 00000000 00:01 ") != NULL);
    CHECK(strstr(vms_strbuf_str(&sb), "/anon_hugepage (deleted)\n") != NULL);
    vms_strbuf_free(&sb);
    rig_check(&r);
    vms_proc_exit(r.k, a);
    CHECK(same(&r, b, va, 4 * MB, 4096, 7));
    vms_proc_exit(r.k, b);
    CHECK_EQ(p2(&r).free_hugepages, 4);
    rig_down(&r);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "hugetlb");
    test_boot_sizes();
    test_surplus_1g();
    test_hugetlbfs_shared();
    test_hugetlbfs_reserve();
    test_shared_anon();
    return th_finish();
}
