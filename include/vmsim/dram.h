/*
 * vmsim/dram.h — the memory controller and DRAM (seed 000: the controller "translates it
 * to DRAM commands: row address, column address, read/write strobes. It handles timing,
 * refresh, and bank interleaving"). docs/CACHES.md, "DRAM", has the model and its limits.
 *
 * Organisation: channels × ranks × bank groups × banks × rows × columns. A cache line is
 * one burst (bus_bytes × burst beats = 64 bytes for both presets). A physical address is
 * cut into fields by the mapping string `map`, most significant field first, over the
 * line address (pa / 64):
 *
 *     "ro:ra:bg:ba:co:ch"   row | rank | bank group | bank | column | channel | (offset)
 *
 * Each field takes log2(count) bits (counts are powers of two); the column field counts
 * lines in a row (columns × bus_bytes / 64). Rows wrap: addresses beyond the DRAM's
 * capacity alias lower rows. With xor_bank, bank and bank group are XORed with the low
 * bits of the row (permutation-based interleaving, Zhang, Zhu, Zhang, MICRO 2000), so that
 * rows that conflict in a bank spread over banks.
 *
 * Timing, in DRAM clocks (tCK): a read to the open row (a row hit) issues its column
 * command at once and gets data after CL; to a precharged bank (a row miss) it first
 * activates (tRCD); to a bank with another row open (a row conflict) it precharges
 * (tRP, not before tRAS after that row's activation, nor tRTP after its last read or tWR
 * after its last write data) and activates. Activations respect tRRD_S/tRRD_L between
 * banks of a rank and tFAW (at most four per window); column commands respect tCCD_S/
 * tCCD_L; a burst holds the channel's data bus for BL/2 clocks. Every tREFI each rank
 * refreshes for tRFC: its banks close and nothing reaches the rank in between (ranks
 * are staggered by tREFI / ranks). Open-page keeps rows open; closed-page precharges
 * after every access.
 *
 * Queue: reads are served in arrival order (the simulated cores issue one blocking
 * access at a time, so there is nothing to reorder); writes are posted to a write queue
 * that, at wq_high entries, drains to wq_high / 2 first-ready first-come-first-served:
 * row hits before older misses (Rixner et al., ISCA 2000). Drains delay later reads.
 */
#ifndef VMSIM_DRAM_H
#define VMSIM_DRAM_H

#include "vmsim/common.h"
#include "vmsim/strbuf.h"

#define VMS_DRAM_MAP_MAX 24
#define VMS_DRAM_WQ_MAX  256

/* Timings in DRAM clocks, except tck_ps. */
typedef struct vms_dram_timing {
    uint32_t tck_ps;       /* clock period, picoseconds */
    uint32_t cl, cwl;      /* read / write CAS latency */
    uint32_t rcd, rp, ras; /* activate→column, precharge, activate→precharge */
    uint32_t rtp, wr;      /* read→precharge, write data end→precharge */
    uint32_t rfc, refi;    /* refresh duration, refresh interval */
    uint32_t bl;           /* burst length in beats (data bus busy bl/2 clocks) */
    uint32_t ccd_s, ccd_l; /* column→column, other / same bank group */
    uint32_t rrd_s, rrd_l; /* activate→activate, other / same bank group */
    uint32_t faw;          /* four-activate window */
} vms_dram_timing;

typedef struct vms_dram_config {
    bool on;
    const char *name;                            /* preset name, for display */
    unsigned channels, ranks, bankgroups, banks; /* banks per group; all powers of two */
    unsigned rows, columns;                      /* per bank; powers of two */
    unsigned bus_bytes;                          /* data bus width of a channel, bytes */
    char map[VMS_DRAM_MAP_MAX];                  /* field order, see above */
    bool xor_bank;
    bool closed_page;
    unsigned wq_high; /* write-queue drain watermark, 2 … VMS_DRAM_WQ_MAX */
    uint32_t cpu_mhz; /* core clock, to turn DRAM time into core cycles */
    vms_dram_timing t;
} vms_dram_config;

/* Where one DRAM access went and what it found in its bank. */
typedef enum vms_dram_row {
    VMS_DRAM_ROW_HIT = 0,  /* the row was open */
    VMS_DRAM_ROW_MISS,     /* the bank was precharged: activate */
    VMS_DRAM_ROW_CONFLICT, /* another row was open: precharge, activate */
} vms_dram_row;

typedef struct vms_dram_where {
    unsigned channel, rank, bankgroup, bank;
    uint32_t row, column;
    vms_dram_row outcome;
    bool refresh_wait; /* the access waited for a refresh to finish */
} vms_dram_where;

/* row_hits + row_misses + row_conflicts = reads + writes issued to the banks. */
typedef struct vms_dram_stats {
    uint64_t reads, writes; /* requests (writes: posted to the queue) */
    uint64_t row_hits, row_misses, row_conflicts;
    uint64_t activates, precharges;
    uint64_t refreshes;     /* refresh commands executed (all ranks) */
    uint64_t refresh_waits; /* accesses delayed by a refresh */
    uint64_t wq_drains;     /* write-queue drains */
    uint64_t read_clocks;   /* sum of read latencies, DRAM clocks */
} vms_dram_stats;
_Static_assert(sizeof(vms_dram_stats) % sizeof(uint64_t) == 0, "dram stats are u64 counters");

typedef struct vms_dram vms_dram;

/*
 * Presets: "ddr4-3200" (one channel, 2 ranks of x8 8 Gb devices: 4 bank groups × 4
 * banks, 64K rows, 1K columns; JEDEC JESD79-4 speed bin DDR4-3200AA, 22-22-22) and
 * "ddr5-4800" (two 32-bit subchannels, 1 rank of x8 16 Gb devices: 8 × 4 banks, 64K rows,
 * 1K columns; JESD79-5 speed bin DDR5-4800B, 40-39-39). Figures and rounding in
 * src/hw/dram.c. "off": on = false. VMS_ERR_NOTFOUND lists the names.
 */
vms_status vms_dram_preset(const char *name, vms_dram_config *cfg, vms_err *err);

/* Check counts (powers of two), the map string (each of ro ra bg ba co ch once) and
 * timings; VMS_ERR_INVAL names the problem. */
vms_status vms_dram_validate(const vms_dram_config *cfg, vms_err *err);

vms_status vms_dram_create(const vms_allocator *a, const vms_dram_config *cfg, vms_dram **out,
                           vms_err *err);
void vms_dram_destroy(vms_dram *d); /* NULL accepted */

/* Decode pa into channel, rank, bank group, bank, row, column (outcome unset). */
void vms_dram_decode(const vms_dram *d, uint64_t pa, vms_dram_where *w);

/*
 * A read of pa's line arriving at DRAM clock `now` (clocks never go back: an earlier
 * `now` is taken as the latest seen). Returns the clocks until its data has arrived;
 * *w (may be NULL) says where it went and what it found.
 */
uint64_t vms_dram_read(vms_dram *d, uint64_t now, uint64_t pa, vms_dram_where *w);

/* A write (a write-back) of pa's line at `now`: posted, drained by the queue; costs the
 * writer nothing. */
void vms_dram_write(vms_dram *d, uint64_t now, uint64_t pa);

/* Core cycles <-> DRAM clocks at the configured cpu_mhz (rounded down / up). */
uint64_t vms_dram_clocks_at(const vms_dram *d, uint64_t cycles);
uint64_t vms_dram_cycles(const vms_dram *d, uint64_t clocks);

const vms_dram_stats *vms_dram_get_stats(const vms_dram *d);
void vms_dram_reset_stats(vms_dram *d);
const vms_dram_config *vms_dram_get_config(const vms_dram *d);

#endif
