/*
 * test_ostep.c — the teaching machines of src/arch/teach: CPython's random (pyrandom.c)
 * against python3's own numbers (fixed golden values, and more computed at test time
 * when python3 is installed); the OSTEP machines (ostep.h) against the book's answer
 * and against naive models written here (the multilevel tables re-read byte by byte
 * from RAM for every one of the 32768 addresses; linear entries; the scripts'
 * base-and-bounds arithmetic); CS:APP's small memory system against the book's worked
 * example and practice problems (3e §9.6.4, Problems 9.11-9.13); allocation failure.
 */
#define _POSIX_C_SOURCE 200809L /* popen */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "arch/teach/teach.h"
#include "harness.h"
#include "vmsim/ostep.h"
#include "vmsim/teach.h"

/* python3: random.seed(s); [random.getrandbits(32) for _ in range(3)], random() */
static const struct {
    int64_t seed;
    uint32_t u32[3];
    const char *random;
} golden[] = {
    {0, {3626764237u, 1654615998u, 3255389356u}, "0.890243920837131"},
    {1, {577090037u, 2444712010u, 3639700191u}, "0.8022650611681835"},
    {42, {2746317213u, 478163327u, 107420369u}, "0.7415504997598329"},
    {-7, {1390851128u, 4071050724u, 647892279u}, "0.3948234964231735"},
    {INT64_C(4294967301), {675479763u, 2085189291u, 1213270837u}, "0.8899258643720599"},
    {INT64_MAX, {1359979423u, 2819855560u, 2711238091u}, "0.1326851532128024"},
};

static void test_pyrandom_golden(void)
{
    for (size_t i = 0; i < sizeof golden / sizeof golden[0]; i++) {
        vmsi_pyrandom r;
        vmsi_pyrandom_seed(&r, golden[i].seed);
        for (unsigned k = 0; k < 3; k++)
            CHECK_EQ(vmsi_pyrandom_u32(&r), golden[i].u32[k]);
        double want = strtod(golden[i].random, NULL), got = vmsi_pyrandom_random(&r);
        CHECK(got == want);
    }
}

/* With python3 on the machine: 2000 random() values for seeds drawn from th_seed,
 * printed with repr (exact round trip), compared bit for bit. */
static void test_pyrandom_live(void)
{
    if (system("python3 -c 'pass' >/dev/null 2>&1") != 0) {
        printf("teach: python3 not found; live comparison skipped\n");
        return;
    }
    int64_t seeds[4] = {(int64_t)(th_seed % 100000), -(int64_t)(th_seed % 977) - 1,
                        (int64_t)(th_seed >> 3), 624};
    for (unsigned s = 0; s < 4; s++) {
        char cmd[256];
        snprintf(cmd, sizeof cmd,
                 "python3 -c 'import random; random.seed(%lld); "
                 "print(\"\\n\".join(repr(random.random()) for _ in range(2000)))'",
                 (long long)seeds[s]);
        FILE *p = popen(cmd, "r");
        REQUIRE_VOID(p != NULL);
        vmsi_pyrandom r;
        vmsi_pyrandom_seed(&r, seeds[s]);
        char line[64];
        unsigned n = 0, same = 0;
        while (fgets(line, sizeof line, p)) {
            n++;
            same += strtod(line, NULL) == vmsi_pyrandom_random(&r);
        }
        pclose(p);
        CHECK_EQ(n, 2000);
        CHECK_EQ(same, 2000);
    }
}

static vms_ostep *make(vms_ostep_kind k, int64_t seed)
{
    vms_ostep_config c;
    vms_ostep_config_default(k, &c);
    c.seed = seed;
    vms_ostep *o = NULL;
    vms_err err = {0};
    if (vms_ostep_create(NULL, &c, &o, &err) != VMS_OK)
        fprintf(stderr, "ostep_create: %s\n", err.msg);
    return o;
}

/* The book's answer (vm-smalltables README): seed 0, PDBR 108, 0x611c -> 0x6bc = 0x08. */
static void test_book_answer(void)
{
    vms_ostep *o = make(VMS_OSTEP_MULTILEVEL, 0);
    REQUIRE_VOID(o != NULL);
    CHECK_EQ(vms_ostep_root(o) >> 5, 108);
    CHECK_EQ(vms_ostep_naddrs(o), 10);
    CHECK_EQ(vms_ostep_addr(o, 0), 0x611c);
    vms_ostep_xlate x;
    CHECK_EQ(vms_ostep_translate(o, 0x611c, &x, NULL), VMS_OK);
    CHECK(x.valid);
    CHECK_EQ(x.pa, 0x6bc);
    CHECK_EQ(x.value, 0x08);
    CHECK_EQ(x.trace.nsteps, 2);
    CHECK_EQ(x.trace.step[0].pte, 0xa1); /* pde index 0x18 */
    CHECK_EQ(x.trace.step[1].pte, 0xb5); /* pte index 0x8 */
    vms_ostep_destroy(o);
}

/* Every VA of a multilevel machine against a naive walk over the RAM bytes. */
static void test_multilevel_naive(void)
{
    for (int64_t seed = 0; seed < 4; seed++) {
        vms_ostep *o = make(VMS_OSTEP_MULTILEVEL, seed * 1000 + (int64_t)(th_seed % 1000));
        REQUIRE_VOID(o != NULL);
        uint8_t mem[4096];
        REQUIRE_VOID(vms_ostep_read(o, 0, mem, sizeof mem) == VMS_OK);
        unsigned pd = (unsigned)(vms_ostep_root(o) >> 5), same = 0, ok = 0, pdef = 0;
        for (uint64_t va = 0; va < 32768; va++) {
            vms_ostep_xlate x;
            vms_ostep_translate(o, va, &x, NULL);
            uint8_t pde = mem[pd * 32 + (va >> 10)];
            bool good;
            if (!(pde & 0x80)) {
                good = !x.valid && x.fault_level == 2;
                pdef++;
            } else {
                uint8_t pte = mem[(pde & 0x7f) * 32 + ((va >> 5) & 31)];
                uint64_t pa = (uint64_t)(pte & 0x7f) << 5 | (va & 31);
                if (!(pte & 0x80))
                    good = !x.valid && x.fault_level == 1;
                else
                    good = x.valid && x.pa == pa && x.value == mem[pa] && ++ok;
            }
            same += good;
        }
        CHECK_EQ(same, 32768);
        CHECK_EQ(ok, 64 * 32); /* the 64 allocated pages, and only they */
        CHECK(pdef > 0);
        vms_ostep_destroy(o);
    }
}

/* Linear: the table in RAM holds what the walker answers, for every VA. */
static void test_linear_naive(void)
{
    vms_ostep_config c;
    vms_ostep_config_default(VMS_OSTEP_LINEAR, &c);
    c.seed = (int64_t)(th_seed % 10000);
    c.asize = 32 * 1024;
    c.psize = 1024 * 1024;
    c.pagesize = 1024;
    c.used = 70;
    vms_ostep *o;
    REQUIRE_VOID(vms_ostep_create(NULL, &c, &o, NULL) == VMS_OK);
    unsigned same = 0, valid = 0;
    for (uint64_t va = 0; va < 32 * 1024; va += 7) {
        vms_ostep_xlate x;
        vms_ostep_translate(o, va, &x, NULL);
        uint32_t pte = vms_ostep_pte(o, va >> 10);
        bool v = pte >> 31;
        valid += v;
        same += x.vpn == va >> 10 && x.valid == v &&
                (!v || x.pa == ((uint64_t)(pte & 0x7fffffff) << 10 | (va & 1023)));
    }
    CHECK_EQ(same, (32 * 1024 + 6) / 7);
    CHECK(valid > 0);
    vms_ostep_xlate x;
    vms_ostep_translate(o, 32 * 1024, &x, NULL); /* beyond the address space */
    CHECK(!x.valid && x.fault_kind == VMS_FAULT_GP);
    vms_ostep_destroy(o);
}

/* Segmentation and relocation: the walker against the scripts' arithmetic. */
static void test_segments_naive(void)
{
    for (int64_t seed = 0; seed < 8; seed++) {
        vms_ostep *o = make(VMS_OSTEP_SEGMENTATION, seed);
        REQUIRE_VOID(o != NULL);
        uint64_t b0, l0, b1, l1;
        bool gn0, gn1;
        vms_ostep_segment(o, 0, &b0, &l0, &gn0);
        vms_ostep_segment(o, 1, &b1, &l1, &gn1);
        CHECK(!gn0 && gn1);
        unsigned same = 0;
        for (uint64_t va = 0; va < 1024; va++) {
            vms_ostep_xlate x;
            vms_ostep_translate(o, va, &x, NULL);
            if (va >= 512) /* script: paddr = nbase1 + (vaddr - asize), valid >= base1 */
                same += x.segment == 1 && x.valid == (1024 - va <= l1) &&
                        (!x.valid || x.pa == b1 - (1024 - va));
            else
                same += x.segment == 0 && x.valid == (va < l0) && (!x.valid || x.pa == b0 + va);
        }
        CHECK_EQ(same, 1024);
        vms_ostep_destroy(o);
        o = make(VMS_OSTEP_RELOCATION, seed);
        REQUIRE_VOID(o != NULL);
        vms_ostep_segment(o, 0, &b0, &l0, &gn0);
        same = 0;
        for (uint64_t va = 0; va < 1024; va++) {
            vms_ostep_xlate x;
            vms_ostep_translate(o, va, &x, NULL);
            same += x.valid == (va < l0) && (!x.valid || x.pa == b0 + va);
        }
        CHECK_EQ(same, 1024);
        vms_ostep_destroy(o);
    }
}

/* The scripts' parameter errors, with their messages. */
static void test_errors(void)
{
    vms_ostep_config c;
    vms_ostep *o = NULL;
    vms_err err = {0};
    vms_ostep_config_default(VMS_OSTEP_LINEAR, &c);
    c.psize = c.asize;
    CHECK_EQ(vms_ostep_create(NULL, &c, &o, &err), VMS_ERR_INVAL);
    CHECK(strstr(err.msg, "must be GREATER than address space size") != NULL);
    CHECK(o == NULL);
    vms_ostep_config_default(VMS_OSTEP_LINEAR, &c);
    c.asize = 12 * 1024;
    CHECK_EQ(vms_ostep_create(NULL, &c, &o, &err), VMS_ERR_INVAL);
    CHECK(strstr(err.msg, "address space must be a power of 2") != NULL);
    vms_ostep_config_default(VMS_OSTEP_SEGMENTATION, &c);
    c.len0 = 600;
    CHECK_EQ(vms_ostep_create(NULL, &c, &o, &err), VMS_ERR_INVAL);
    CHECK(strstr(err.msg, "length register is too large") != NULL);
    int64_t bad_va = 1024;
    vms_ostep_config_default(VMS_OSTEP_SEGMENTATION, &c);
    c.addrs = &bad_va;
    c.naddrs = 1;
    CHECK_EQ(vms_ostep_create(NULL, &c, &o, &err), VMS_ERR_INVAL);
    CHECK(strstr(err.msg, "cannot be generated in an address space of size 1024") != NULL);
    vms_ostep_config_default(VMS_OSTEP_MULTILEVEL, &c);
    c.allocated = 120;
    CHECK_EQ(vms_ostep_create(NULL, &c, &o, &err), VMS_ERR_INVAL);
    CHECK(strstr(err.msg, "out of physical pages") != NULL);
    int64_t v;
    CHECK(vms_ostep_parse_size("16k", &v) && v == 16384);
    CHECK(vms_ostep_parse_size("-1", &v) && v == -1);
    CHECK(vms_ostep_parse_size("2G", &v) && v == INT64_C(2) << 30);
    CHECK(!vms_ostep_parse_size("0x10", &v) && !vms_ostep_parse_size("k", &v) &&
          !vms_ostep_parse_size("", &v));
    /* Allocation failures: an error, never a leak. */
    for (vms_ostep_kind k = VMS_OSTEP_LINEAR; k <= VMS_OSTEP_RELOCATION; k++) {
        vms_ostep_config_default(k, &c);
        for (long b = 0; b < 30; b++) {
            th_failalloc fa;
            vms_status s = vms_ostep_create(th_failalloc_init(&fa, b), &c, &o, NULL);
            CHECK(s == VMS_OK || s == VMS_ERR_NOMEM);
            if (s == VMS_OK)
                vms_ostep_destroy(o);
            CHECK_EQ(fa.live_bytes, 0);
        }
    }
}

/* CS:APP 3e §9.6.4: the worked example and Practice Problems 9.11-9.13. */
static void test_csapp(void)
{
    vms_csapp_xlate x;
    CHECK_EQ(vms_csapp_translate(NULL, 0x03d4, &x, NULL), VMS_OK);
    CHECK_EQ(x.vpn, 0x0f);
    CHECK_EQ(x.tlbi, 0x3);
    CHECK_EQ(x.tlbt, 0x03);
    CHECK(x.tlb_hit && !x.walked && !x.page_fault);
    CHECK_EQ(x.ppn, 0x0d);
    CHECK_EQ(x.pa, 0x354);
    CHECK_EQ(vms_csapp_translate(NULL, 0x027c, &x, NULL), VMS_OK); /* 9.11 */
    CHECK(!x.tlb_hit && x.walked && !x.page_fault);
    CHECK_EQ(x.vpn, 0x09);
    CHECK_EQ(x.tlbi, 0x1);
    CHECK_EQ(x.tlbt, 0x02);
    CHECK_EQ(x.pa, 0x5fc);
    CHECK_EQ(x.pte_pa, VMS_CSAPP_PTBR + 9);
    CHECK_EQ(vms_csapp_translate(NULL, 0x03a9, &x, NULL), VMS_OK); /* 9.12 */
    CHECK(!x.tlb_hit && !x.page_fault);
    CHECK_EQ(x.vpn, 0x0e);
    CHECK_EQ(x.pa, 0x469);
    CHECK_EQ(vms_csapp_translate(NULL, 0x0040, &x, NULL), VMS_OK); /* 9.13 */
    CHECK(!x.tlb_hit && x.page_fault);
    CHECK_EQ(x.vpn, 0x01);
    /* Every TLB-valid VPN of Figure 9.20(a) hits; the PPN is the figure's. */
    static const unsigned hits[][2] = {{0x09 << 2 | 0, 0x0d},
                                       {0x07 << 2 | 0, 0x02},
                                       {0x03 << 2 | 1, 0x2d},
                                       {0x03 << 2 | 3, 0x0d},
                                       {0x0a << 2 | 3, 0x34}};
    for (unsigned i = 0; i < 5; i++) {
        vms_csapp_translate(NULL, (uint64_t)hits[i][0] << 6 | 5, &x, NULL);
        CHECK(x.tlb_hit);
        CHECK_EQ(x.pa, hits[i][1] << 6 | 5);
    }
    vms_err err = {0};
    CHECK_EQ(vms_csapp_translate(NULL, 0x4000, &x, &err), VMS_ERR_INVAL);
    CHECK(strstr(err.msg, "14-bit") != NULL);
    for (long b = 0; b < 20; b++) {
        th_failalloc fa;
        vms_status s = vms_csapp_translate(th_failalloc_init(&fa, b), 0x03d4, &x, NULL);
        CHECK(s == VMS_OK || s == VMS_ERR_NOMEM);
        CHECK_EQ(fa.live_bytes, 0);
    }
}

/* The registry knows the teaching formats; their shapes are the books'. */
static void test_formats(void)
{
    const vms_pt_format *f = vms_format_find("ostep-multilevel");
    REQUIRE_VOID(f != NULL);
    CHECK_EQ(f->levels, 2);
    CHECK_EQ(f->page_shift, 5);
    CHECK_EQ(f->index_bits, 5);
    CHECK_EQ(f->entry_shift, 0);
    CHECK_EQ(f->va_bits, 15);
    CHECK(vms_fmt_pte_present(f, 0xa1) && !vms_fmt_pte_present(f, 0x7f));
    CHECK_EQ(vms_fmt_pte_addr(f, 0xa1), 0x21 << 5);
    CHECK(vms_format_find("ostep-linear") && vms_format_find("ostep-segmentation") &&
          vms_format_find("ostep-relocation") && vms_format_find("silberschatz"));
    f = vms_format_find("csapp");
    REQUIRE_VOID(f != NULL);
    CHECK_EQ(f->va_bits, 14);
    CHECK_EQ(f->page_shift, 6);
    CHECK_EQ(vms_fmt_mk_pte(f, 0x0d, 1, 0), 0x8d);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "ostep");
    test_pyrandom_golden();
    test_pyrandom_live();
    test_book_answer();
    test_multilevel_naive();
    test_linear_naive();
    test_segments_naive();
    test_errors();
    test_csapp();
    test_formats();
    return th_finish();
}
