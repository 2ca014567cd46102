/*
 * dram.c — the memory controller and DRAM timing model (dram.h): address mapping, bank
 * state machines (open row, activation time, when a precharge is allowed), the rank-
 * and channel-wide constraints (tRRD, tFAW, tCCD, the data bus), refresh per rank, and a
 * write queue drained first-ready first-come-first-served.
 *
 * Time is counted in DRAM clocks from 0 and never goes back: a request that arrives
 * "earlier" than one already seen (another core's clock lags) is taken as arriving at
 * the latest time seen. All times are int64_t so that "never" can be a large negative.
 *
 * Invariants: a bank's open row is valid only while `open`; after a refresh every bank
 * of the rank is closed; row_hits + row_misses + row_conflicts counts every request that
 * reached a bank.
 */
#include "vmsim/dram.h"

#include <assert.h>
#include <string.h>
#include <strings.h>

#include "util/util.h"

#define NEVER (INT64_MIN / 4)
#define MAXBG 16

enum field { F_RO, F_RA, F_BG, F_BA, F_CO, F_CH, F_N };
static const char *const field_names[F_N] = {"ro", "ra", "bg", "ba", "co", "ch"};

typedef struct bank {
    bool open;
    uint32_t row;
    int64_t act_at; /* last ACT */
    int64_t pre_ok; /* earliest PRE (tRAS, tRTP, tWR) */
    int64_t ready;  /* earliest ACT (after PRE + tRP, or a refresh) */
} bank;

typedef struct rank {
    int64_t next_ref, ref_end;
    int64_t acts[4]; /* the last four ACTs, for tFAW (ring) */
    unsigned act_pos;
    int64_t last_act;
    int64_t last_act_bg[MAXBG], last_cas_bg[MAXBG];
} rank;

typedef struct chan {
    int64_t bus_free, last_cas;
} chan;

typedef struct wreq {
    uint64_t pa;
    vms_dram_where w;
} wreq;

struct vms_dram {
    const vms_allocator *a;
    vms_dram_config cfg;
    unsigned order[F_N]; /* fields from least to most significant */
    unsigned bits[F_N];
    unsigned line_shift;
    bank *banks; /* channels × ranks × bankgroups × banks */
    rank *ranks; /* channels × ranks */
    chan *chans;
    wreq wq[VMS_DRAM_WQ_MAX];
    unsigned nwq;
    int64_t now;
    vms_dram_stats st;
};

static bool pow2(uint64_t v)
{
    return v && !(v & (v - 1));
}

static unsigned log2u(uint64_t v)
{
    unsigned n = 0;
    while ((UINT64_C(1) << n) < v)
        n++;
    return n;
}

/* ---- presets -------------------------------------------------------------------------- */

/*
 * DDR4-3200AA (22-22-22), JEDEC JESD79-4C: tCK 0.625 ns; tAA = tRCD = tRP = 13.75 ns
 * (22 nCK); tRAS 32 ns (52); CWL 16; tRTP max(4 nCK, 7.5 ns) = 12; tWR 15 ns = 24;
 * tRFC1 for 8 Gb 350 ns = 560; tREFI 7.8 µs = 12480; BL8; tCCD_S 4, tCCD_L max(5 nCK,
 * 5 ns) = 8; 1 KiB page (x8): tRRD_S max(4 nCK, 2.5 ns) = 4, tRRD_L max(4 nCK, 4.9 ns) =
 * 8, tFAW 21 ns = 34. Nanoseconds are turned into clocks rounding up.
 * Organisation: x8 8 Gb devices: 4 bank groups × 4 banks, 64K rows, 1K columns; a 64-bit
 * channel, 2 ranks (16 GiB). Core clock 4000 MHz.
 */
static void ddr4_3200(vms_dram_config *c)
{
    *c = (vms_dram_config){.on = true,
                           .name = "ddr4-3200",
                           .channels = 1,
                           .ranks = 2,
                           .bankgroups = 4,
                           .banks = 4,
                           .rows = 65536,
                           .columns = 1024,
                           .bus_bytes = 8,
                           .map = "ro:ra:bg:ba:co:ch",
                           .xor_bank = true,
                           .closed_page = false,
                           .wq_high = 32,
                           .cpu_mhz = 4000,
                           .t = {.tck_ps = 625,
                                 .cl = 22,
                                 .cwl = 16,
                                 .rcd = 22,
                                 .rp = 22,
                                 .ras = 52,
                                 .rtp = 12,
                                 .wr = 24,
                                 .rfc = 560,
                                 .refi = 12480,
                                 .bl = 8,
                                 .ccd_s = 4,
                                 .ccd_l = 8,
                                 .rrd_s = 4,
                                 .rrd_l = 8,
                                 .faw = 34}};
}

/*
 * DDR5-4800B (40-39-39), JEDEC JESD79-5: tCK 0.416 ns; CL 40; tRCD = tRP = 16 ns (39);
 * tRAS 32 ns (77); CWL = CL - 2 = 38; tRTP max(12 nCK, 7.5 ns) = 18; tWR 30 ns = 72;
 * tRFC1 for 16 Gb 295 ns = 708; tREFI1 3.9 µs = 9360; BL16 on a 32-bit subchannel (one
 * 64-byte line per burst, 8 clocks); tCCD_S 8, tCCD_L max(8 nCK, 5 ns) = 12; tRRD_S 8,
 * tRRD_L max(8 nCK, 5 ns) = 12; tFAW (x8, 1 KiB page) max(32 nCK, 13.333 ns) = 32.
 * Organisation: x8 16 Gb devices: 8 bank groups × 4 banks, 64K rows, 1K columns; a DIMM's
 * two 32-bit subchannels are two channels here, one rank. Core clock 4000 MHz.
 */
static void ddr5_4800(vms_dram_config *c)
{
    *c = (vms_dram_config){.on = true,
                           .name = "ddr5-4800",
                           .channels = 2,
                           .ranks = 1,
                           .bankgroups = 8,
                           .banks = 4,
                           .rows = 65536,
                           .columns = 1024,
                           .bus_bytes = 4,
                           .map = "ro:ra:bg:ba:co:ch",
                           .xor_bank = true,
                           .closed_page = false,
                           .wq_high = 32,
                           .cpu_mhz = 4000,
                           .t = {.tck_ps = 416,
                                 .cl = 40,
                                 .cwl = 38,
                                 .rcd = 39,
                                 .rp = 39,
                                 .ras = 77,
                                 .rtp = 18,
                                 .wr = 72,
                                 .rfc = 708,
                                 .refi = 9360,
                                 .bl = 16,
                                 .ccd_s = 8,
                                 .ccd_l = 12,
                                 .rrd_s = 8,
                                 .rrd_l = 12,
                                 .faw = 32}};
}

vms_status vms_dram_preset(const char *name, vms_dram_config *cfg, vms_err *err)
{
    if (!strcasecmp(name, "off")) {
        ddr4_3200(cfg);
        cfg->on = false;
        cfg->name = "off";
        return VMS_OK;
    }
    if (!strcasecmp(name, "ddr4-3200")) {
        ddr4_3200(cfg);
        return VMS_OK;
    }
    if (!strcasecmp(name, "ddr5-4800")) {
        ddr5_4800(cfg);
        return VMS_OK;
    }
    return vmsi_err(err, VMS_ERR_NOTFOUND,
                    "unknown DRAM '%s' (expected off, ddr4-3200 or ddr5-4800)", name);
}

/* Parse cfg->map into order[] (least significant first); false on a bad string. */
static bool parse_map(const char *map, unsigned order[F_N])
{
    unsigned seen = 0, n = 0, tmp[F_N];
    const char *p = map;
    while (*p) {
        unsigned f;
        for (f = 0; f < F_N; f++)
            if (!strncmp(p, field_names[f], 2))
                break;
        if (f == F_N || (seen & (1u << f)) || n == F_N)
            return false;
        seen |= 1u << f;
        tmp[n++] = f;
        p += 2;
        if (*p == ':')
            p++;
        else if (*p)
            return false;
    }
    if (n != F_N)
        return false;
    for (unsigned i = 0; i < F_N; i++)
        order[i] = tmp[F_N - 1 - i];
    return true;
}

vms_status vms_dram_validate(const vms_dram_config *c, vms_err *err)
{
    if (!c->on)
        return VMS_OK;
    const struct {
        unsigned v;
        const char *name;
        unsigned max;
    } n[] = {{c->channels, "channels", 16},         {c->ranks, "ranks", 8},
             {c->bankgroups, "bank groups", MAXBG}, {c->banks, "banks per group", 16},
             {c->rows, "rows", 1u << 20},           {c->columns, "columns", 1u << 16}};
    for (unsigned i = 0; i < sizeof n / sizeof n[0]; i++)
        if (!pow2(n[i].v) || n[i].v > n[i].max)
            return vmsi_err(err, VMS_ERR_INVAL, "dram %s %u: expected a power of two 1 … %u",
                            n[i].name, n[i].v, n[i].max);
    if (!pow2(c->bus_bytes) || c->bus_bytes > 64 || !pow2(c->t.bl) || c->bus_bytes * c->t.bl < 16 ||
        (uint64_t)c->columns * c->bus_bytes < c->bus_bytes * c->t.bl)
        return vmsi_err(err, VMS_ERR_INVAL,
                        "dram: bus %u bytes × burst %u: expected powers of two, a burst of at "
                        "least 16 bytes and no larger than a row",
                        c->bus_bytes, c->t.bl);
    unsigned order[F_N];
    if (!parse_map(c->map, order))
        return vmsi_err(err, VMS_ERR_INVAL,
                        "dram.map '%s': expected the fields ro ra bg ba co ch, each once, "
                        "most significant first, joined by ':' (e.g. ro:ra:bg:ba:co:ch)",
                        c->map);
    if (c->wq_high < 2 || c->wq_high > VMS_DRAM_WQ_MAX)
        return vmsi_err(err, VMS_ERR_INVAL, "dram write queue %u: expected 2 … %u", c->wq_high,
                        VMS_DRAM_WQ_MAX);
    if (c->t.tck_ps == 0 || c->cpu_mhz == 0 || c->t.refi <= c->t.rfc)
        return vmsi_err(err, VMS_ERR_INVAL,
                        "dram timings: tCK and the core clock must be > 0 and tREFI > tRFC");
    return VMS_OK;
}

/* ---- life cycle ----------------------------------------------------------------------- */

static size_t nbanks(const vms_dram_config *c)
{
    return (size_t)c->channels * c->ranks * c->bankgroups * c->banks;
}

static void reset_state(vms_dram *d)
{
    const vms_dram_config *c = &d->cfg;
    for (size_t i = 0; i < nbanks(c); i++)
        d->banks[i] = (bank){false, 0, NEVER, NEVER, NEVER};
    for (unsigned i = 0; i < c->channels * c->ranks; i++) {
        rank *r = &d->ranks[i];
        memset(r, 0, sizeof *r);
        /* Ranks refresh staggered: rank k first at tREFI + k·tREFI/ranks. */
        r->next_ref = (int64_t)c->t.refi + (int64_t)(i % c->ranks) * (c->t.refi / c->ranks);
        r->ref_end = NEVER;
        r->last_act = NEVER;
        for (unsigned k = 0; k < 4; k++)
            r->acts[k] = NEVER;
        for (unsigned g = 0; g < MAXBG; g++)
            r->last_act_bg[g] = r->last_cas_bg[g] = NEVER;
    }
    for (unsigned i = 0; i < c->channels; i++)
        d->chans[i] = (chan){NEVER, NEVER};
    d->nwq = 0;
    d->now = 0;
}

vms_status vms_dram_create(const vms_allocator *a, const vms_dram_config *cfg, vms_dram **out,
                           vms_err *err)
{
    *out = NULL;
    vms_status st = vms_dram_validate(cfg, err);
    if (st != VMS_OK)
        return st;
    a = a ? a : vms_allocator_default();
    vms_dram *d = vmsi_zalloc(a, sizeof *d);
    if (!d)
        return vmsi_err(err, VMS_ERR_NOMEM, "no host memory for the DRAM model");
    d->a = a;
    d->cfg = *cfg;
    parse_map(cfg->map, d->order);
    d->bits[F_RO] = log2u(cfg->rows);
    d->bits[F_RA] = log2u(cfg->ranks);
    d->bits[F_BG] = log2u(cfg->bankgroups);
    d->bits[F_BA] = log2u(cfg->banks);
    d->bits[F_CH] = log2u(cfg->channels);
    d->line_shift = log2u((uint64_t)cfg->bus_bytes * cfg->t.bl);
    d->bits[F_CO] = log2u((uint64_t)cfg->columns * cfg->bus_bytes) - d->line_shift;
    d->banks = vmsi_calloc(a, nbanks(cfg), sizeof *d->banks);
    d->ranks = vmsi_calloc(a, (size_t)cfg->channels * cfg->ranks, sizeof *d->ranks);
    d->chans = vmsi_calloc(a, cfg->channels, sizeof *d->chans);
    if (!d->banks || !d->ranks || !d->chans) {
        vms_dram_destroy(d);
        return vmsi_err(err, VMS_ERR_NOMEM, "no host memory for the DRAM model");
    }
    reset_state(d);
    *out = d;
    return VMS_OK;
}

void vms_dram_destroy(vms_dram *d)
{
    if (!d)
        return;
    vmsi_free(d->a, d->banks, nbanks(&d->cfg) * sizeof *d->banks);
    vmsi_free(d->a, d->ranks, (size_t)d->cfg.channels * d->cfg.ranks * sizeof *d->ranks);
    vmsi_free(d->a, d->chans, d->cfg.channels * sizeof *d->chans);
    vmsi_free(d->a, d, sizeof *d);
}

/* ---- mapping -------------------------------------------------------------------------- */

void vms_dram_decode(const vms_dram *d, uint64_t pa, vms_dram_where *w)
{
    uint64_t x = pa >> d->line_shift, v[F_N];
    for (unsigned i = 0; i < F_N; i++) {
        unsigned f = d->order[i];
        v[f] = x & ((UINT64_C(1) << d->bits[f]) - 1);
        x >>= d->bits[f];
    }
    if (d->cfg.xor_bank) {
        v[F_BA] ^= v[F_RO] & (d->cfg.banks - 1);
        v[F_BG] ^= (v[F_RO] >> d->bits[F_BA]) & (d->cfg.bankgroups - 1);
    }
    *w = (vms_dram_where){.channel = (unsigned)v[F_CH],
                          .rank = (unsigned)v[F_RA],
                          .bankgroup = (unsigned)v[F_BG],
                          .bank = (unsigned)v[F_BA],
                          .row = (uint32_t)v[F_RO],
                          .column = (uint32_t)v[F_CO]};
}

static rank *rank_of(vms_dram *d, const vms_dram_where *w)
{
    return &d->ranks[w->channel * d->cfg.ranks + w->rank];
}

static bank *bank_of(vms_dram *d, const vms_dram_where *w)
{
    size_t i = (((size_t)w->channel * d->cfg.ranks + w->rank) * d->cfg.bankgroups + w->bankgroup) *
                   d->cfg.banks +
               w->bank;
    return &d->banks[i];
}

/* ---- timing --------------------------------------------------------------------------- */

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

/* Run every refresh of every rank that starts at or before t: it closes the rank's
 * banks and keeps them from activating until it ends. */
static void refresh_until(vms_dram *d, int64_t t)
{
    const vms_dram_config *c = &d->cfg;
    for (unsigned i = 0; i < c->channels * c->ranks; i++) {
        rank *r = &d->ranks[i];
        while (r->next_ref <= t) {
            int64_t end = r->next_ref + c->t.rfc;
            size_t first = (size_t)i * c->bankgroups * c->banks;
            for (size_t b = first; b < first + (size_t)c->bankgroups * c->banks; b++) {
                d->banks[b].open = false;
                d->banks[b].ready = max64(d->banks[b].ready, end);
            }
            r->ref_end = end;
            r->next_ref += c->t.refi;
            d->st.refreshes++;
        }
    }
}

/* The earliest ACT at or after t in rank r, bank group g (tRRD_S/L, tFAW, the bank). */
static int64_t act_time(const vms_dram *d, const rank *r, const bank *b, unsigned g, int64_t t)
{
    const vms_dram_timing *tm = &d->cfg.t;
    t = max64(t, b->ready);
    t = max64(t, r->last_act + tm->rrd_s);
    t = max64(t, r->last_act_bg[g] + tm->rrd_l);
    return max64(t, r->acts[r->act_pos] + tm->faw); /* the fourth ACT back */
}

static void record_act(vms_dram *d, rank *r, bank *b, unsigned g, int64_t act, uint32_t row)
{
    r->acts[r->act_pos] = act;
    r->act_pos = (r->act_pos + 1) % 4;
    r->last_act = act;
    r->last_act_bg[g] = act;
    b->act_at = act;
    b->open = true;
    b->row = row;
    d->st.activates++;
}

/* Issue one request (already decoded into w) arriving at t; returns when its data has
 * finished moving. Counts the row outcome. */
static int64_t issue(vms_dram *d, vms_dram_where *w, bool write, int64_t t)
{
    const vms_dram_timing *tm = &d->cfg.t;
    refresh_until(d, t);
    rank *r = rank_of(d, w);
    bank *b = bank_of(d, w);
    chan *ch = &d->chans[w->channel];
    unsigned g = w->bankgroup;
    w->refresh_wait = t < r->ref_end;
    if (w->refresh_wait) {
        t = r->ref_end;
        d->st.refresh_waits++;
    }
    int64_t cas;
    if (b->open && b->row == w->row) {
        w->outcome = VMS_DRAM_ROW_HIT;
        d->st.row_hits++;
        cas = t;
    } else {
        int64_t from = t;
        if (b->open) {
            w->outcome = VMS_DRAM_ROW_CONFLICT;
            d->st.row_conflicts++;
            from = max64(t, b->pre_ok) + tm->rp; /* PRE, then tRP */
            d->st.precharges++;
        } else {
            w->outcome = VMS_DRAM_ROW_MISS;
            d->st.row_misses++;
        }
        int64_t act = act_time(d, r, b, g, from);
        record_act(d, r, b, g, act, w->row);
        cas = act + tm->rcd;
    }
    cas = max64(cas, ch->last_cas + tm->ccd_s);
    cas = max64(cas, r->last_cas_bg[g] + tm->ccd_l);
    int64_t lat = write ? tm->cwl : tm->cl;
    int64_t data = max64(cas + lat, ch->bus_free); /* the data bus must be free */
    cas = data - lat;
    int64_t end = data + tm->bl / 2;
    ch->bus_free = end;
    ch->last_cas = cas;
    r->last_cas_bg[g] = cas;
    b->pre_ok = max64(b->act_at + tm->ras, write ? end + tm->wr : cas + tm->rtp);
    if (d->cfg.closed_page) {
        b->open = false;
        b->ready = b->pre_ok + tm->rp;
        d->st.precharges++;
    }
    return end;
}

/* Drain the write queue down to wq_high / 2 at time t: among queued writes, the oldest
 * row hit first, else the oldest (FR-FCFS). */
static void drain(vms_dram *d, int64_t t)
{
    d->st.wq_drains++;
    while (d->nwq > d->cfg.wq_high / 2) {
        unsigned pick = 0;
        for (unsigned i = 0; i < d->nwq; i++) {
            const bank *b = bank_of(d, &d->wq[i].w);
            if (b->open && b->row == d->wq[i].w.row) {
                pick = i;
                break;
            }
        }
        issue(d, &d->wq[pick].w, true, t);
        memmove(&d->wq[pick], &d->wq[pick + 1], (d->nwq - pick - 1) * sizeof d->wq[0]);
        d->nwq--;
    }
}

uint64_t vms_dram_read(vms_dram *d, uint64_t now, uint64_t pa, vms_dram_where *out)
{
    int64_t t = max64((int64_t)now, d->now);
    d->now = t;
    vms_dram_where w;
    vms_dram_decode(d, pa, &w);
    int64_t end = issue(d, &w, false, t);
    d->st.reads++;
    d->st.read_clocks += (uint64_t)(end - t);
    if (out)
        *out = w;
    return (uint64_t)(end - t);
}

void vms_dram_write(vms_dram *d, uint64_t now, uint64_t pa)
{
    int64_t t = max64((int64_t)now, d->now);
    d->now = t;
    d->st.writes++;
    wreq *q = &d->wq[d->nwq++];
    q->pa = pa;
    vms_dram_decode(d, pa, &q->w);
    if (d->nwq >= d->cfg.wq_high)
        drain(d, t);
}

uint64_t vms_dram_clocks_at(const vms_dram *d, uint64_t cycles)
{
    /* picoseconds = cycles * 10^6 / MHz, split so that nothing overflows */
    uint64_t mhz = d->cfg.cpu_mhz;
    uint64_t ps = cycles / mhz * 1000000u + cycles % mhz * 1000000u / mhz;
    return ps / d->cfg.t.tck_ps;
}

uint64_t vms_dram_cycles(const vms_dram *d, uint64_t clocks)
{
    uint64_t ps = clocks * d->cfg.t.tck_ps; /* < 2^64 for any latency we produce */
    uint64_t mhz = d->cfg.cpu_mhz;
    return ps / 1000000u * mhz + (ps % 1000000u * mhz + 999999u) / 1000000u;
}

const vms_dram_stats *vms_dram_get_stats(const vms_dram *d)
{
    return &d->st;
}

void vms_dram_reset_stats(vms_dram *d)
{
    memset(&d->st, 0, sizeof d->st);
}

const vms_dram_config *vms_dram_get_config(const vms_dram *d)
{
    return &d->cfg;
}
