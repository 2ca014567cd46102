/*
 * test_web.c — the web visualizer's glue (web/vmsim_web.c), built natively so that it
 * runs under ASan+UBSan: every answer is valid JSON; a scenario stepped and inspected
 * after every command gives exactly the counters `vmsim run` does (vms_scenario_run on
 * the same configuration); the state shows what happened (the page-table tree read
 * from RAM, a fork's copy-on-write sharing and its end, TLB entries, swap slots); explain
 * narrates the entries the tree holds; errors are reported, not crashed on. The page
 * itself is tested in headless Chromium (tests/web/web_test.py).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cli/json.h"
#include "../web/vmsim_web.h"
#include "harness.h"
#include "vmsim/scenario.h"

/* Parse an answer (owned by the caller; NULL and a failed check if it is not JSON). */
static cli_json *parse(const char *text)
{
    size_t where = 0;
    cli_json *j = cli_json_parse(text, &where);
    CHECK(j != NULL);
    if (!j)
        fprintf(stderr, "not JSON at %zu: %.200s\n", where, text + (where > 40 ? where - 40 : 0));
    return j;
}

static bool is_true(const cli_json *j, const char *key)
{
    const cli_json *v = cli_json_get(j, key);
    return v && v->type == CLI_JSON_BOOL && v->num != 0;
}

static const char *str(const cli_json *j, const char *key)
{
    const cli_json *v = cli_json_get(j, key);
    return v && v->type == CLI_JSON_STR ? v->str : "";
}

/* The number at path (an integer counter), or -1 when absent. */
static long long num(const cli_json *j, const char *path)
{
    double d = -1;
    cli_json_num(j, path, &d);
    return (long long)d;
}

/* The counters vms_scenario_run gives text on skylake (as `vmsim run --stats json`:
 * the machine's and kernel's members), into sb. */
static bool reference(const char *text, vms_strbuf *sb)
{
    vms_scenario *sc = NULL;
    vms_err err = {0};
    vms_config cfg;
    vms_machine *m = NULL;
    vms_kernel *k = NULL;
    vms_scenario_result r;
    vms_strbuf_init(sb, NULL);
    bool ok = vms_scenario_parse(NULL, "t.scn", text, &sc, &err) == VMS_OK &&
              vms_config_init(&cfg, NULL, &err) == VMS_OK &&
              vms_scenario_configure(sc, &cfg, &err) == VMS_OK;
    snprintf(cfg.writeback_dir, sizeof cfg.writeback_dir, "/tmp");
    vms_kernel_config kc = vms_config_kernel(&cfg);
    ok = ok && vms_machine_create(NULL, &cfg.machine, &m, &err) == VMS_OK &&
         vms_kernel_create(m, &kc, &k, &err) == VMS_OK &&
         vms_scenario_run(sc, k, NULL, NULL, &r, &err) == VMS_OK;
    if (ok) {
        vms_machine_stats_json_members(m, sb);
        vms_kernel_stats_json_members(k, sb);
    }
    vms_kernel_destroy(k);
    vms_machine_destroy(m);
    vms_scenario_destroy(sc);
    return ok;
}

/* Member `key` of the stats object as JSON text, re-serialised through the reference's
 * own order: compare the glue's members with the reference's byte for byte by finding
 * the reference text inside the glue's answer. */
static void test_counters_match_run(void)
{
    const char *text = "set ram=8M\nset swap=16M\n"
                       "spawn a\n"
                       "mmap a 0x10000000 64K rw as buf\n"
                       "write a buf \"hello\"\n"
                       "fork a b\n"
                       "write b buf \"HELLO\"\n"
                       "read a buf 5 expect \"hello\"\n"
                       "spawn hog\n"
                       "mmap hog auto 12M rw as big\n"
                       "touch hog big 12M write\n"
                       "read hog big 8\n"
                       "show walk a buf\n"
                       "exit b\n";
    vms_strbuf ref;
    REQUIRE_VOID(reference(text, &ref));
    cli_json *j = parse(vw_load("t.scn", text, "", ""));
    REQUIRE_VOID(j && is_true(j, "ok"));
    cli_json_free(j);
    unsigned steps = 0;
    bool done = false;
    while (!done && steps < 100) {
        j = parse(vw_step());
        REQUIRE_VOID(j);
        done = is_true(j, "done");
        cli_json_free(j);
        steps++;
        cli_json *s = parse(vw_state()); /* inspection must not move a counter */
        cli_json_free(s);
        cli_json_free(parse(vw_explain("a", "0x10000000", "write", 0)));
    }
    CHECK_EQ(steps, 14); /* the set lines are steps too (that do nothing) */
    const char *stats = vw_stats();
    CHECK(strstr(stats, vms_strbuf_str(&ref)) != NULL);
    j = parse(stats);
    CHECK(j && is_true(j, "finished"));
    CHECK_EQ(num(j, "scenario.commands"), 12);
    CHECK_EQ(num(j, "scenario.expects_passed"), 1);
    cli_json_free(j);
    vms_strbuf_free(&ref);
}

/* The leaf entry mapping va in process p of a state (NULL if none). */
static const cli_json *leaf(const cli_json *state, const char *p, const char *va)
{
    const cli_json *procs = cli_json_get(state, "procs");
    for (size_t i = 0; procs && i < procs->nkids; i++) {
        const cli_json *pr = &procs->kids[i];
        if (strcmp(str(pr, "name"), p) != 0)
            continue;
        const cli_json *es = cli_json_get(pr, "entries");
        for (size_t e = 0; es && e < es->nkids; e++)
            if (is_true(&es->kids[e], "leaf") && !strcmp(str(&es->kids[e], "va"), va))
                return &es->kids[e];
    }
    return NULL;
}

static void test_state_shows_cow(void)
{
    const char *text = "spawn a\n"
                       "mmap a 0x10000000 16K rw as buf\n"
                       "write a buf \"hello\"\n"
                       "fork a b\n"
                       "write b buf \"HELLO\"\n";
    cli_json *j = parse(vw_load("cow.scn", text, "skylake", "cores=2"));
    REQUIRE_VOID(j && is_true(j, "ok"));
    CHECK_EQ(num(j, "cores"), 2);
    cli_json_free(j);
    for (int i = 0; i < 3; i++) { /* spawn, mmap, write */
        j = parse(vw_step());
        if (i == 2) { /* the write: its access, and the walk path it took (4 levels) */
            const cli_json *acc = cli_json_get(j, "access");
            CHECK(acc != NULL);
            CHECK_STR(str(acc, "va"), "0x10000000");
            CHECK_STR(str(acc, "kind"), "write");
            const cli_json *path = acc ? cli_json_get(acc, "path") : NULL;
            CHECK(path && path->nkids == 4);
            /* The event tap: the walks read those 4 entries (the first walk stopped
             * early), the kernel wrote them (3 new tables and the leaf), L1d and L2
             * filled, one fault resolved by a zero-filled frame. */
            const cli_json *ev = cli_json_get(j, "events");
            const cli_json *rd = ev ? cli_json_get(ev, "read") : NULL;
            const cli_json *wr = ev ? cli_json_get(ev, "written") : NULL;
            CHECK(rd && path && rd->nkids == path->nkids);
            for (size_t k = 0; rd && path && k < rd->nkids && k < path->nkids; k++)
                CHECK_STR(str(&rd->kids[k], "ptep"), path->kids[k].str);
            CHECK(wr && wr->nkids == 4);
            CHECK_EQ(num(ev, "counts.walk"), 2);
            CHECK_EQ(num(ev, "counts.walk_step"), 5);
            CHECK_EQ(num(ev, "counts.tlb_fill"), 2);
            const cli_json *fl = ev ? cli_json_get(ev, "faults") : NULL;
            CHECK(fl && fl->nkids == 2 && !strcmp(str(&fl->kids[0], "type"), "fault") &&
                  !strcmp(str(&fl->kids[1], "type"), "fault_resolved") &&
                  !strcmp(str(&fl->kids[1], "result"), "minor"));
            const cli_json *how = fl && fl->nkids == 2 ? cli_json_get(&fl->kids[1], "how") : NULL;
            bool anon = false, other = false; /* a fresh anonymous page: "anon" (and maybe
                                                 "swapbacked"), no copy or swap-in */
            for (size_t k = 0; how && k < how->nkids; k++) {
                const char *h = how->kids[k].type == CLI_JSON_STR ? how->kids[k].str : "";
                anon |= !strcmp(h, "anon");
                other |= strcmp(h, "anon") && strcmp(h, "swapbacked");
            }
            CHECK(how && anon && !other);
        }
        cli_json_free(j);
    }
    cli_json *s = parse(vw_state());
    REQUIRE_VOID(s);
    CHECK_EQ(num(s, "faults.pgfault"), 1);
    CHECK_EQ(num(s, "faults.anon_alloc"), 1);
    const cli_json *e = leaf(s, "a", "0x10000000");
    CHECK(e && num(e, "mapcount") == 1 && is_true(e, "writable"));
    char pa_a[32] = "";
    if (e)
        snprintf(pa_a, sizeof pa_a, "%s", str(e, "pa"));
    /* The TLB of core 0 holds the page the write filled it with. */
    const cli_json *cores = cli_json_get(s, "cores");
    const cli_json *l1d = cores && cores->nkids ? cli_json_path(&cores->kids[0], "tlbs.l1d") : NULL;
    const cli_json *ents = l1d ? cli_json_get(l1d, "entries") : NULL;
    bool found = false;
    for (size_t i = 0; ents && i < ents->nkids; i++)
        found |= !strcmp(str(&ents->kids[i], "va"), "0x10000000") &&
                 !strcmp(str(&ents->kids[i], "pa"), pa_a);
    CHECK(found);
    cli_json_free(s);

    cli_json_free(parse(vw_step())); /* fork: the page shared, read-only in both */
    s = parse(vw_state());
    const cli_json *ea = leaf(s, "a", "0x10000000"), *eb = leaf(s, "b", "0x10000000");
    CHECK(ea && eb && num(ea, "mapcount") == 2 && !is_true(ea, "writable") &&
          !is_true(eb, "writable") && !strcmp(str(ea, "pa"), str(eb, "pa")));
    cli_json_free(s);
    j = parse(vw_explain("b", "0x10000000", "write", 0));
    const char *t = j ? str(j, "text") : "";
    CHECK(strstr(t, "result: protection fault") != NULL);
    CHECK(strstr(t, "copy-on-write") != NULL);
    cli_json_free(j);

    j = parse(vw_step()); /* b writes: its own copy */
    CHECK(is_true(j, "done"));
    cli_json_free(j);
    s = parse(vw_state());
    ea = leaf(s, "a", "0x10000000");
    eb = leaf(s, "b", "0x10000000");
    CHECK(ea && eb && num(ea, "mapcount") == 1 && num(eb, "mapcount") == 1 &&
          is_true(eb, "writable") && strcmp(str(ea, "pa"), str(eb, "pa")) != 0);
    CHECK_EQ(num(s, "faults.cow"), 1);
    CHECK_EQ(num(s, "faults.cow_copy"), 1);
    /* explain narrates the entry the tree lists, and the frame it maps. */
    j = parse(vw_explain("b", "0x10000004", "read", 0));
    t = j ? str(j, "text") : "";
    char want[96];
    snprintf(want, sizeof want, "= %s", eb ? str(eb, "pte") : "?");
    CHECK(strstr(t, "-> page") != NULL);
    char pte_hex[40];
    snprintf(pte_hex, sizeof pte_hex, "%016llx",
             eb ? (unsigned long long)strtoull(str(eb, "pte"), NULL, 16) : 0ULL);
    CHECK(strstr(t, pte_hex) != NULL);
    snprintf(want, sizeof want, "= page %s", eb ? str(eb, "pa") : "?");
    CHECK(strstr(t, want) != NULL);
    cli_json_free(j);
    cli_json_free(s);
}

static void test_swap_slots(void)
{
    const char *text = "set ram=8M\nset swap=16M\n"
                       "spawn hog\n"
                       "mmap hog 0x20000000 12M rw as big\n"
                       "touch hog big 12M write\n";
    cli_json_free(parse(vw_load("swap.scn", text, NULL, NULL)));
    for (int i = 0; i < 4; i++)
        cli_json_free(parse(vw_step()));
    cli_json *t = parse(vw_step()); /* the touch: thousands of events, kept in part */
    const cli_json *ev = t ? cli_json_get(t, "events") : NULL;
    const cli_json *tl = ev ? cli_json_get(ev, "timeline") : NULL, *sw = NULL;
    CHECK(tl && tl->nkids == 300);
    CHECK(num(ev, "timeline_dropped") + 300 == num(ev, "total"));
    sw = ev ? cli_json_get(ev, "swap") : NULL;
    CHECK(sw && sw->nkids == 128 && num(ev, "swap_dropped") + 128 == num(ev, "counts.swap"));
    cli_json *s = parse(vw_state());
    REQUIRE_VOID(s);
    long long used = num(s, "swap.total") - num(s, "swap.free");
    CHECK(used > 0);
    /* Every swap entry the tree shows names a distinct slot the swap device has in use. */
    const cli_json *procs = cli_json_get(s, "procs");
    const cli_json *es = procs && procs->nkids ? cli_json_get(&procs->kids[0], "entries") : NULL;
    unsigned slots = 0;
    static unsigned char seen[4096];
    memset(seen, 0, sizeof seen);
    bool distinct = true;
    for (size_t i = 0; es && i < es->nkids; i++) {
        long long slot = num(&es->kids[i], "swap_slot");
        if (slot < 0)
            continue;
        slots++;
        distinct &= slot > 0 && slot < 4096 && !seen[(unsigned)slot];
        if (slot > 0 && slot < 4096)
            seen[(unsigned)slot] = 1;
    }
    CHECK(slots > 0);
    CHECK(distinct);
    CHECK(slots <= used);
    CHECK_EQ(num(s, "faults.pswpout"), slots + num(s, "swap.cache"));
    CHECK_EQ(num(s, "faults.pswpout"), num(ev, "counts.swap"));
    cli_json_free(s);
    cli_json_free(t);
}

static void test_errors(void)
{
    cli_json *j = parse(vw_step()); /* nothing loaded after a failed load */
    cli_json_free(j);
    j = parse(vw_load("bad.scn", "spawn\n", "", ""));
    CHECK(j && !is_true(j, "ok"));
    CHECK(strstr(str(j, "error"), "bad.scn:1: expected 'spawn NAME") != NULL);
    cli_json_free(j);
    j = parse(vw_step());
    CHECK(j && !is_true(j, "ok"));
    cli_json_free(j);
    j = parse(vw_load("t.scn", "spawn a\n", "no-such-preset", ""));
    CHECK(j && !is_true(j, "ok"));
    cli_json_free(j);
    j = parse(vw_load("t.scn", "spawn a\n", "", "bogus.key=1"));
    CHECK(j && !is_true(j, "ok") && strstr(str(j, "error"), "bogus.key"));
    cli_json_free(j);
    j = parse(vw_load("t.scn", "spawn a\nmmap a 0x1000 4K rw\n", "", ""));
    CHECK(j && is_true(j, "ok"));
    cli_json_free(j);
    cli_json_free(parse(vw_step()));
    j = parse(vw_explain("nobody", "0x1000", "read", 0));
    CHECK(j && !is_true(j, "ok"));
    cli_json_free(j);
    j = parse(vw_explain("a", "zz", "read", 0));
    CHECK(j && !is_true(j, "ok"));
    cli_json_free(j);
    j = parse(vw_explain("a", "0x1000", "jump", 0));
    CHECK(j && !is_true(j, "ok"));
    cli_json_free(j);
    j = parse(vw_explain("a", "0x1000", "read", 0)); /* mapped, never touched */
    CHECK(j && is_true(j, "ok") && strstr(str(j, "text"), "page fault"));
    cli_json_free(j);
    j = parse(vw_commands());
    CHECK(j && j->type == CLI_JSON_ARR && j->nkids > 10);
    cli_json_free(j);
    j = parse(vw_presets());
    CHECK(j && j->type == CLI_JSON_ARR && j->nkids >= 1);
    cli_json_free(j);
    vw_unload();
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "web");
    test_counters_match_run();
    test_state_shows_cow();
    test_swap_slots();
    test_errors();
    return th_finish();
}
