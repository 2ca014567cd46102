/*
 * memside.h — the memory side of a machine below the MMU (private to src/hw): the cache
 * hierarchy of cache.h over the DRAM of dram.h, and the DRAM image that only a
 * non-coherent device can see. One per machine, present only when cache.on.
 *
 * The narrow seam for the walker and the MMU is vmsi_memside_access: given a core, its
 * clock, a physical range and a kind, it runs the range through the hierarchy and
 * returns the cycles; mmu.c calls it for every walk reference (from the walk trace) and
 * every data access.
 */
#ifndef VMSIM_HW_MEMSIDE_H
#define VMSIM_HW_MEMSIDE_H

#include "vmsim/bus.h"
#include "vmsim/cache.h"
#include "vmsim/dram.h"
#include "vmsim/machine.h"

typedef struct vmsi_memside vmsi_memside;

/* The private levels of a core and the LLC, as indices. */
enum { VMSI_C_L1I = 0, VMSI_C_L1D, VMSI_C_L2, VMSI_C_LLC, VMSI_C_N };

/* Build the hierarchy for ncores cores (cc->on must be true); dc may be off. bus is
 * borrowed (bytes of the DRAM image are read and written through it). */
vms_status vmsi_memside_create(const vms_allocator *a, const vms_cache_config *cc,
                               const vms_dram_config *dc, unsigned ncores, uint64_t seed,
                               vms_bus *bus, vmsi_memside **out, vms_err *err);
void vmsi_memside_destroy(vmsi_memside *ms);

/*
 * Core `core` accesses [pa, pa+len) at its cycle `now`: loads, stores or fetches
 * (kind), or page-walk loads/stores (walk: they start in L1d, or in L2 with
 * cache.walk = l2, and are counted as walk references). Each line is looked up level by
 * level, filled on the way back (write-allocate), victims written back. Returns the
 * cycles (the lines' latencies added up); *where (may be NULL) gets where the first line
 * was served.
 */
uint64_t vmsi_memside_access(vmsi_memside *ms, unsigned core, uint64_t now, uint64_t pa,
                             uint64_t len, vms_access_kind kind, bool walk, vms_mem_where *where);

/* Before the CPU's bytes for [pa, pa+len) reach RAM: while the DRAM image is tracked,
 * remember what DRAM holds for each line not yet remembered. */
void vmsi_memside_cpu_store(vmsi_memside *ms, uint64_t pa, uint64_t len);

/* A device's DMA of len bytes at pa (RAM), coherent (snooping) or not; moves the bytes
 * through the bus. Fails as vms_bus_read/write. */
vms_status vmsi_memside_dma(vmsi_memside *ms, bool coherent, uint64_t pa, void *buf, size_t len,
                            bool write);

/* A non-coherent device exists: from now on, track the DRAM image. */
void vmsi_memside_track(vmsi_memside *ms);

/* Cache maintenance by physical range (Arm's DC CVAC / DC IVAC over every core):
 * clean writes dirty lines back; invalidate drops lines, dirty or not. Return lines. */
uint64_t vmsi_memside_clean(vmsi_memside *ms, uint64_t pa, uint64_t len);
uint64_t vmsi_memside_invalidate(vmsi_memside *ms, uint64_t pa, uint64_t len);

/* The level cache `which` of core (or the LLC), NULL when absent; the DRAM or NULL. */
vms_cache *vmsi_memside_cache(const vmsi_memside *ms, unsigned core, unsigned which);
vms_dram *vmsi_memside_dram(const vmsi_memside *ms);
const vms_cache_config *vmsi_memside_config(const vmsi_memside *ms);

/* JSON members "cache" {…} and, with DRAM, "dram" {…} (leading comma included). */
void vmsi_memside_json(const vmsi_memside *ms, vms_strbuf *sb);
void vmsi_memside_reset_stats(vmsi_memside *ms);

/* Hierarchy invariants (each level's, inclusion when inclusive, the DRAM image only for
 * resident lines). */
bool vmsi_memside_check(const vmsi_memside *ms);

/* The machine's memory side, or NULL (cache off). */
vmsi_memside *vmsi_machine_memside(const vms_machine *m);

#endif
