/*
 * test_teach.c — the textbook virtual-memory manager (teach.h) against a naive model of the
 * project written here: a page table as a plain array, a FIFO/LRU TLB as a list, frames
 * handed out lowest first, FIFO page replacement — on a synthetic backing store.
 */
#include <stdio.h>
#include <unistd.h>

#include "harness.h"
#include "vmsim/rng.h"
#include "vmsim/teach.h"

#define NADDR 3000

typedef struct line {
    uint64_t la, pa;
    int value;
} line;

typedef struct lines {
    line l[NADDR];
    size_t n;
} lines;

static void collect(void *ud, uint64_t la, uint64_t pa, int value)
{
    lines *ls = ud;
    if (ls->n < NADDR)
        ls->l[ls->n++] = (line){la, pa, value};
}

/* The naive model: FIFO TLB of tlb_n entries, FIFO page replacement over nframes. */
static void model(const uint64_t *addrs, size_t n, unsigned nframes, unsigned tlb_n,
                  const uint8_t *store, lines *out, uint64_t *faults, uint64_t *hits)
{
    int pt[256], frame_page[256];
    uint64_t tlb_page[64], tlb_frame[64], tlb_born[64] = {0}, tlb_clock = 0;
    unsigned next_frame = 0, fifo_head = 0;
    unsigned order[256]; /* frames in load order for FIFO */
    for (int i = 0; i < 256; i++)
        pt[i] = frame_page[i] = -1;
    for (unsigned t = 0; t < 64; t++)
        tlb_page[t] = UINT64_MAX; /* invalid */
    *faults = *hits = 0;
    out->n = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t la = addrs[i] & 0xFFFF, page = la >> 8, off = la & 0xFF;
        int frame = -1;
        for (unsigned t = 0; t < tlb_n; t++)
            if (tlb_page[t] == page)
                frame = (int)tlb_frame[t];
        if (frame >= 0) {
            (*hits)++;
        } else {
            frame = pt[page];
            if (frame < 0) {
                (*faults)++;
                if (next_frame < nframes) {
                    frame = (int)next_frame;
                    order[next_frame++] = (unsigned)frame;
                } else {
                    frame = (int)order[fifo_head];
                    fifo_head = (fifo_head + 1) % nframes;
                    pt[frame_page[frame]] = -1;
                    for (unsigned t = 0; t < tlb_n; t++)
                        if (tlb_page[t] == (uint64_t)frame_page[frame])
                            tlb_page[t] = UINT64_MAX;
                }
                pt[page] = frame;
                frame_page[frame] = (int)page;
            }
            /* A FIFO TLB: the lowest invalid way first, else the entry filled first
             * (insertion order, whatever invalidations emptied ways in between). */
            unsigned slot = 0;
            for (unsigned t = 1; t < tlb_n; t++)
                if (tlb_born[t] < tlb_born[slot])
                    slot = t;
            for (unsigned t = 0; t < tlb_n; t++)
                if (tlb_page[t] == UINT64_MAX) {
                    slot = t;
                    break;
                }
            tlb_born[slot] = ++tlb_clock;
            tlb_page[slot] = page;
            tlb_frame[slot] = (uint64_t)frame;
        }
        uint64_t pa = (uint64_t)frame * 256 + off;
        out->l[out->n++] = (line){la, pa, (int)(int8_t)store[page * 256 + off]};
    }
}

static void test_against_model(void)
{
    static uint8_t store[65536];
    static uint64_t addrs[NADDR];
    static lines got, want;
    vms_rng rng;
    vms_rng_seed(&rng, th_seed);
    for (size_t i = 0; i < sizeof store; i++)
        store[i] = (uint8_t)(vms_rng_next(&rng) >> 56);
    char path[64];
    snprintf(path, sizeof path, "/tmp/vmsim_backing_%d.bin", (int)getpid());
    FILE *f = fopen(path, "wb");
    REQUIRE_VOID(f && fwrite(store, 1, sizeof store, f) == sizeof store);
    fclose(f);
    /* Locality: runs within a few pages, with jumps; addresses above 16 bits are masked. */
    uint64_t page = 0;
    for (size_t i = 0; i < NADDR; i++) {
        if (vms_rng_below(&rng, 4) == 0)
            page = vms_rng_below(&rng, 256);
        addrs[i] = (page << 8 | vms_rng_below(&rng, 256)) | (vms_rng_below(&rng, 2) << 20);
    }
    static const unsigned frames[] = {256, 128, 32, 1};
    for (size_t k = 0; k < sizeof frames / sizeof frames[0]; k++) {
        vms_teach_config cfg;
        vms_teach_config_default(&cfg);
        cfg.backing = path;
        cfg.frames = frames[k];
        vms_teach_stats st;
        uint64_t faults, hits;
        got.n = 0;
        CHECK_EQ(vms_teach_vmm(NULL, &cfg, addrs, NADDR, collect, &got, &st, NULL), VMS_OK);
        model(addrs, NADDR, frames[k], 16, store, &want, &faults, &hits);
        CHECK_EQ(got.n, NADDR);
        unsigned same = 0;
        for (size_t i = 0; i < NADDR; i++)
            same += got.l[i].la == want.l[i].la && got.l[i].pa == want.l[i].pa &&
                    got.l[i].value == want.l[i].value;
        CHECK_EQ(same, NADDR);
        CHECK_EQ(st.page_faults, faults);
        CHECK_EQ(st.tlb_hits, hits);
        CHECK_EQ(st.translated, NADDR);
        if (frames[k] == 256)
            CHECK_EQ(st.evictions, 0);
        else
            CHECK_EQ(st.evictions, st.page_faults - frames[k]);
    }
    /* Errors: a short backing store names the page; bad geometry; unknown policy. */
    vms_teach_config cfg;
    vms_teach_config_default(&cfg);
    cfg.backing = path;
    f = fopen(path, "wb");
    fwrite(store, 1, 1000, f);
    fclose(f);
    vms_err err = {0};
    vms_teach_stats st;
    uint64_t far = 0xFF00;
    CHECK_EQ(vms_teach_vmm(NULL, &cfg, &far, 1, NULL, NULL, &st, &err), VMS_ERR_IO);
    CHECK(strstr(err.msg, "cannot read page 255") != NULL);
    cfg.frames = 0;
    CHECK_EQ(vms_teach_vmm(NULL, &cfg, &far, 1, NULL, NULL, &st, &err), VMS_ERR_INVAL);
    cfg.frames = 8;
    cfg.page_policy = "nonesuch";
    CHECK_EQ(vms_teach_vmm(NULL, &cfg, &far, 1, NULL, NULL, &st, &err), VMS_ERR_NOTFOUND);
    /* Host allocation failures: errors, never leaks. */
    cfg.page_policy = "lru";
    /* Fail allocation 0, 1, 2, … until a run needs no more: every run that had a failure
     * injected must report VMS_ERR_NOMEM, and the last one must succeed. */
    unsigned long injected = 0;
    bool completed = false;
    for (long b = 0; b < 100000 && !completed; b++) {
        th_failalloc fa;
        vms_status s =
            vms_teach_vmm(th_failalloc_init(&fa, b), &cfg, &far, 0, NULL, NULL, &st, &err);
        if (fa.failures) {
            injected++;
            CHECK_EQ(s, VMS_ERR_NOMEM);
        } else {
            CHECK_EQ(s, VMS_OK);
            completed = true;
        }
        CHECK_EQ(fa.live_bytes, 0);
    }
    CHECK(injected > 0);
    CHECK(completed);
    unlink(path);
}

int main(int argc, char **argv)
{
    th_init(argc, argv, "teach");
    test_against_model();
    return th_finish();
}
