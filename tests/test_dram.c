/*
 * test_dram.c — the DRAM timing model (dram.h) on hand-computed sequences.
 *
 * The machine: DDR4-3200 timings (CL = tRCD = tRP = 22, tRAS 52, tRTP 12, BL8 = 4 clocks
 * of data, tCCD_S/L 4/8, tRRD_S/L 4/8, tFAW 34, tREFI 12480, tRFC 560), one channel, one
 * rank, no XOR hashing, so that with map ro:ra:bg:ba:co:ch a line address is
 *
 *     pa = row << 17 | bank group << 15 | bank << 13 | column << 6
 *
 * Every expected latency below is worked out in the comment beside it.
 */
#include "harness.h"
#include "vmsim/dram.h"

static uint64_t at(unsigned row, unsigned bg, unsigned bank, unsigned col)
{
    return (uint64_t)row << 17 | (uint64_t)bg << 15 | (uint64_t)bank << 13 | (uint64_t)col << 6;
}

static vms_dram *make(bool closed)
{
    vms_dram_config c;
    vms_dram_preset("ddr4-3200", &c, NULL);
    c.ranks = 1;
    c.xor_bank = false;
    c.closed_page = closed;
    vms_dram *d = NULL;
    vms_err err = {0};
    if (vms_dram_create(NULL, &c, &d, &err) != VMS_OK)
        fprintf(stderr, "%s\n", err.msg);
    return d;
}

static void test_decode(void)
{
    vms_dram *d = make(false);
    REQUIRE_VOID(d);
    vms_dram_where w;
    vms_dram_decode(d, at(12345, 2, 3, 77) + 5, &w);
    CHECK_EQ(w.row, 12345);
    CHECK_EQ(w.bankgroup, 2);
    CHECK_EQ(w.bank, 3);
    CHECK_EQ(w.column, 77);
    CHECK_EQ(w.rank, 0);
    CHECK_EQ(w.channel, 0);
    vms_dram_destroy(d);
    /* XOR hashing: bank ^= row bits 1:0, bank group ^= row bits 3:2. */
    vms_dram_config c;
    vms_dram_preset("ddr4-3200", &c, NULL);
    c.ranks = 1;
    REQUIRE_VOID(vms_dram_create(NULL, &c, &d, NULL) == VMS_OK);
    vms_dram_decode(d, at(0x6, 0, 0, 0), &w);
    CHECK_EQ(w.bank, 2);
    CHECK_EQ(w.bankgroup, 1);
    vms_dram_destroy(d);
    /* A different field order: channel bits right above the line offset. */
    vms_dram_preset("ddr5-4800", &c, NULL);
    REQUIRE_VOID(vms_dram_create(NULL, &c, &d, NULL) == VMS_OK);
    vms_dram_decode(d, 64, &w);
    CHECK_EQ(w.channel, 1);
    vms_dram_decode(d, 128, &w);
    CHECK_EQ(w.channel, 0);
    CHECK_EQ(w.column, 1);
    vms_dram_destroy(d);
}

static void test_hit_miss_conflict(void)
{
    vms_dram *d = make(false);
    REQUIRE_VOID(d);
    vms_dram_where w;
    /* Row miss (bank precharged): ACT 0, RD 0+tRCD = 22, data 22+CL = 44 … 48. */
    CHECK_EQ(vms_dram_read(d, 0, at(0, 0, 0, 0), &w), 48);
    CHECK_EQ(w.outcome, VMS_DRAM_ROW_MISS);
    /* Row hit at 100: RD at once, data 122 … 126: 26 clocks. */
    CHECK_EQ(vms_dram_read(d, 100, at(0, 0, 0, 1), &w), 26);
    CHECK_EQ(w.outcome, VMS_DRAM_ROW_HIT);
    /* Conflict at 200: PRE 200 (tRAS from ACT 0 and tRTP from RD 100 are past), ACT 222,
     * RD 244, data 266 … 270: 70 clocks. */
    CHECK_EQ(vms_dram_read(d, 200, at(1, 0, 0, 0), &w), 70);
    CHECK_EQ(w.outcome, VMS_DRAM_ROW_CONFLICT);
    /* Conflict at 250, right after that ACT: PRE waits for ACT 222 + tRAS = 274, ACT 296,
     * RD 318, data 340 … 344: 94 clocks. */
    CHECK_EQ(vms_dram_read(d, 250, at(2, 0, 0, 0), &w), 94);
    CHECK_EQ(w.outcome, VMS_DRAM_ROW_CONFLICT);
    const vms_dram_stats *s = vms_dram_get_stats(d);
    CHECK_EQ(s->row_hits, 1);
    CHECK_EQ(s->row_misses, 1);
    CHECK_EQ(s->row_conflicts, 2);
    CHECK_EQ(s->activates, 3);
    CHECK_EQ(s->precharges, 2);
    CHECK_EQ(s->read_clocks, 48 + 26 + 70 + 94);
    /* Core cycles at 4 GHz: 48 clocks × 0.625 ns = 30 ns = 120 cycles. */
    CHECK_EQ(vms_dram_cycles(d, 48), 120);
    CHECK_EQ(vms_dram_clocks_at(d, 120), 48);
    vms_dram_destroy(d);
}

static void test_refresh(void)
{
    vms_dram *d = make(false);
    REQUIRE_VOID(d);
    vms_dram_where w;
    CHECK_EQ(vms_dram_read(d, 0, at(0, 0, 0, 0), &w), 48);
    /* The rank refreshes over [12480, 13040): a read at 12490 waits for its end, finds the
     * row closed (a miss, not a hit): ACT 13040, RD 13062, data 13084 … 13088. */
    CHECK_EQ(vms_dram_read(d, 12490, at(0, 0, 0, 1), &w), 13088 - 12490);
    CHECK_EQ(w.outcome, VMS_DRAM_ROW_MISS);
    CHECK(w.refresh_wait);
    CHECK_EQ(vms_dram_get_stats(d)->refreshes, 1);
    CHECK_EQ(vms_dram_get_stats(d)->refresh_waits, 1);
    /* After it, a hit again; and ten intervals later ten more refreshes were counted. */
    CHECK_EQ(vms_dram_read(d, 13100, at(0, 0, 0, 2), &w), 26);
    CHECK_EQ(w.outcome, VMS_DRAM_ROW_HIT);
    CHECK(!w.refresh_wait);
    (void)vms_dram_read(d, 12480 * 11 + 600, at(0, 0, 0, 3), &w);
    CHECK_EQ(vms_dram_get_stats(d)->refreshes, 11);
    CHECK_EQ(w.outcome, VMS_DRAM_ROW_MISS); /* refreshes closed it */
    vms_dram_destroy(d);
}

static void test_closed_page(void)
{
    vms_dram *d = make(true);
    REQUIRE_VOID(d);
    vms_dram_where w;
    CHECK_EQ(vms_dram_read(d, 0, at(0, 0, 0, 0), &w), 48);
    /* Auto-precharge at max(ACT 0 + tRAS, RD 22 + tRTP) = 52, ready 74: the same row at
     * 100 is a miss again: ACT 100, RD 122, data 144 … 148. */
    CHECK_EQ(vms_dram_read(d, 100, at(0, 0, 0, 1), &w), 48);
    CHECK_EQ(w.outcome, VMS_DRAM_ROW_MISS);
    /* … and another row of that bank at 60 waits for the precharge: ACT at ready = 74. */
    vms_dram_destroy(d);
    d = make(true);
    REQUIRE_VOID(d);
    CHECK_EQ(vms_dram_read(d, 0, at(0, 0, 0, 0), &w), 48);
    CHECK_EQ(vms_dram_read(d, 60, at(5, 0, 0, 0), &w), 74 + 48 - 60); /* ACT 74 */
    CHECK_EQ(vms_dram_get_stats(d)->row_hits, 0);
    vms_dram_destroy(d);
}

static void test_rrd_faw_ccd(void)
{
    vms_dram *d = make(false);
    REQUIRE_VOID(d);
    /* Five reads at time 0 to five banks (four bank groups, then group 0 again). */
    CHECK_EQ(vms_dram_read(d, 0, at(0, 0, 0, 0), NULL), 48); /* ACT 0, RD 22, data 44..48 */
    CHECK_EQ(vms_dram_read(d, 0, at(0, 1, 0, 0), NULL), 52); /* ACT 4 (tRRD_S), RD 26, 48..52 */
    CHECK_EQ(vms_dram_read(d, 0, at(0, 2, 0, 0), NULL), 56); /* ACT 8, RD 30, data 52..56 */
    CHECK_EQ(vms_dram_read(d, 0, at(0, 3, 0, 0), NULL), 60); /* ACT 12, RD 34, data 56..60 */
    /* The fifth ACT: tRRD_S says 16, tRRD_L (group 0, ACT 0) 8, tFAW (fourth ACT back at
     * 0) 34: ACT 34, RD 56, data 78 … 82. */
    CHECK_EQ(vms_dram_read(d, 0, at(0, 0, 1, 0), NULL), 82);
    /* Two hits in bank group 0 at 100: the first RDs at once (the last RD of the group,
     * at 56, is more than tCCD_L back): data 122 … 126; the second waits tCCD_L after it:
     * RD 108, data 130 … 134. */
    CHECK_EQ(vms_dram_read(d, 100, at(0, 0, 0, 1), NULL), 26);
    CHECK_EQ(vms_dram_read(d, 100, at(0, 0, 0, 2), NULL), 34);
    vms_dram_destroy(d);
}

static void test_write_queue(void)
{
    vms_dram *d = make(false);
    REQUIRE_VOID(d);
    const vms_dram_stats *s = vms_dram_get_stats(d);
    /* 31 posted writes: nothing reaches a bank. */
    for (unsigned i = 0; i < 31; i++)
        vms_dram_write(d, 0, at(i % 2 ? 7 : 3, 0, 0, i));
    CHECK_EQ(s->writes, 31);
    CHECK_EQ(s->row_hits + s->row_misses + s->row_conflicts, 0);
    /* The 32nd reaches wq_high: drain to 16. FR-FCFS: row 3 first (oldest, a miss), then
     * the other row-3 writes as hits, then row 7 (one conflict) and its hits. */
    vms_dram_write(d, 0, at(3, 0, 0, 31));
    CHECK_EQ(s->wq_drains, 1);
    CHECK_EQ(s->row_hits + s->row_misses + s->row_conflicts, 16);
    CHECK_EQ(s->row_misses, 1);
    CHECK_EQ(s->row_conflicts, 0); /* the 16 oldest row-3 writes first */
    CHECK_EQ(s->row_hits, 15);
    vms_dram_destroy(d);
}

static void test_presets_and_errors(void)
{
    vms_dram_config c;
    vms_err err = {0};
    CHECK_EQ(vms_dram_preset("ddr5-4800", &c, NULL), VMS_OK);
    CHECK(c.on && c.t.cl == 40 && c.t.bl == 16 && c.bus_bytes * c.t.bl == 64);
    CHECK_EQ(vms_dram_validate(&c, NULL), VMS_OK);
    CHECK_EQ(vms_dram_preset("ddr3", &c, &err), VMS_ERR_NOTFOUND);
    CHECK(strstr(err.msg, "ddr4-3200") != NULL);
    vms_dram_preset("ddr4-3200", &c, NULL);
    snprintf(c.map, sizeof c.map, "ro:ra:bg:ba:co");
    CHECK_EQ(vms_dram_validate(&c, &err), VMS_ERR_INVAL);
    CHECK(strstr(err.msg, "dram.map") != NULL);
    vms_dram_preset("ddr4-3200", &c, NULL);
    c.banks = 3;
    CHECK_EQ(vms_dram_validate(&c, &err), VMS_ERR_INVAL);
    CHECK(strstr(err.msg, "banks") != NULL);
    CHECK_EQ(vms_dram_preset("off", &c, NULL), VMS_OK);
    CHECK(!c.on);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "dram");
    test_decode();
    test_hit_miss_conflict();
    test_refresh();
    test_closed_page();
    test_rrd_faw_ccd();
    test_write_queue();
    test_presets_and_errors();
    return th_finish();
}
