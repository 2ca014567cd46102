/*
 * vmsim/iommu.h — the IOMMU: translation and protection for DMA (seed 000 "IOMMU",
 * seed 001 "IOMMU: MMU for Devices"), modelled on Intel VT-d second-level translation
 * (Intel Virtualization Technology for Directed I/O, Architecture Specification, rev. 4,
 * ch. 3 "DMA Remapping", §9.3 context entries, §9.8 second-level paging entries).
 *
 *   device ──► requester ID (BDF) ──► context of that BDF ──► domain id + table root
 *                                        │
 *                  IOTLB (tagged by domain id) ──hit──► rights check ──► pa ──► bus
 *                       │miss
 *                       ▼
 *                  walk of the domain's tables in simulated RAM ──► fill IOTLB
 *                       │fails                 (or: blocked, logged, nothing touched)
 *
 * Device identity. A PCIe requester ID is 16 bits, bus:device.function:
 *
 *    15            8 7          3 2      0
 *   +---------------+------------+--------+
 *   |      bus      |   device   |function|
 *   +---------------+------------+--------+
 *
 * Contexts. Each BDF has at most one context: translate (domain id + table root +
 * levels) or passthrough (identity: the IOVA is the physical address). A BDF without a
 * context is blocked: every DMA faults with VMS_IOMMU_NO_CONTEXT. Contexts are held in
 * the IOMMU, in the same two-level shape as VT-d's root table (by bus) and context tables
 * (by devfn); they are not read from simulated RAM and are never cached stale (as if
 * software always invalidated the context cache). Devices that share a domain id share
 * IOTLB entries: software must give them the same tables, as on VT-d (§6.2.1).
 *
 * Tables. A domain's translation tables are x86-64 paging structures in simulated RAM,
 * 4- or 5-level, built with pt.h (vms_pt_map & co.) and read by the IOMMU's own walker
 * one 8-byte entry per level. The bits it honours, in every level's entry:
 *
 *   63     52 51          M M-1          12 11  8  7   6 5  4  3   2   1   0
 *  +---------+-------------+---------------+-----+--+----+----+---+---+---+
 *  | ignored |  reserved   | PFN / table   | ign |PS| ignored  |US |RW | P |
 *  +---------+-------------+---------------+-----+--+----+----+---+---+---+
 *
 *   P   present              (VT-d: an entry with R = W = 0 is not present)
 *   US  READ permission       (VT-d bit 0, R)
 *   RW  WRITE permission      (VT-d bit 1, W)
 *   PS  a 2 MiB leaf at PD level or 1 GiB at PDPT (VT-d bit 7, PS); reserved at PML4/5
 *   bits 51:M (M = the machine's MAXPHYADDR) are reserved and must be 0.
 *
 * Rights are ANDed over the levels (pt.h creates intermediate entries P|RW|US, so the
 * leaf decides). A write needs RW, a read needs US; write permission without read is
 * allowed (VT-d permits W without R). A and D are never set: this models VT-d without
 * second-level A/D (ECAP.SLADS = 0), so translation never writes memory. IOVAs are the
 * lower half of the x86-64 space, [0, 2^47) with 4 levels and [0, 2^56) with 5, so that
 * pt.h's canonical-address rule holds; a larger IOVA faults (VMS_IOMMU_ADDR_WIDTH).
 *
 * IOTLB. A vms_tlb (tlb.h) whose context tag holds the domain id (0 … 65535). Only
 * successful translations are cached. A cached entry is used until invalidated, even
 * after its tables change (VT-d §6.5): software must invalidate after changing a
 * present entry. An IOTLB hit whose cached rights deny the access faults without a
 * walk and drops the entry (as the MMU does, SDM Vol. 3A §4.10.4.1).
 *
 * Faults are data: a blocked access moves no byte, is counted, and is appended to the
 * fault log (VT-d's fault recording registers). The log holds `fault_log_len` records;
 * when full, further faults are counted as overflowed and not recorded, as VT-d sets
 * "primary fault overflow". Software reads and clears it.
 *
 * IOMMU off (vms_iommu_set_enabled(false), VT-d's GCMD.TE = 0): DMA is not translated
 * and reaches any physical address — page tables and other processes' data included.
 */
#ifndef VMSIM_IOMMU_H
#define VMSIM_IOMMU_H

#include "vmsim/format.h"
#include "vmsim/machine.h"
#include "vmsim/strbuf.h"
#include "vmsim/tlb.h"

typedef struct vms_iommu vms_iommu;

/* A requester ID, bus:device.function (field map above). */
typedef uint16_t vms_bdf;

static inline vms_bdf vms_bdf_make(unsigned bus, unsigned dev, unsigned fn)
{
    return (vms_bdf)((bus & 0xFFu) << 8 | (dev & 0x1Fu) << 3 | (fn & 0x7u));
}
static inline unsigned vms_bdf_bus(vms_bdf b)
{
    return b >> 8;
}
static inline unsigned vms_bdf_dev(vms_bdf b)
{
    return (b >> 3) & 0x1Fu;
}
static inline unsigned vms_bdf_fn(vms_bdf b)
{
    return b & 0x7u;
}
_Static_assert(sizeof(vms_bdf) == 2, "a requester ID is 16 bits");

/* Domain ids tag the IOTLB entries (the address-space half of vms_ctx). */
#define VMS_IOMMU_MAX_DID 65535u /* 16 bits, as VT-d CAP.ND = 6 allows */

/* Why a DMA was blocked. */
typedef enum vms_iommu_reason {
    VMS_IOMMU_OK = 0,
    VMS_IOMMU_NOT_PRESENT, /* an entry on the walk has P = 0 */
    VMS_IOMMU_NO_READ,     /* a read, and US (read) is clear at some level */
    VMS_IOMMU_NO_WRITE,    /* a write, and RW (write) is clear at some level */
    VMS_IOMMU_NO_CONTEXT,  /* the requester ID has no context */
    VMS_IOMMU_RSVD,        /* a reserved bit is set in an entry */
    VMS_IOMMU_ADDR_WIDTH,  /* the IOVA is beyond what the tables translate */
    VMS_IOMMU_TABLE_BUS,   /* a table entry's address decodes to nothing */
} vms_iommu_reason;
#define VMS_IOMMU_NREASONS 8

/* "ok", "not present", "no read permission", "no write permission", "no context", … */
const char *vms_iommu_reason_str(vms_iommu_reason r);

/* One blocked access: a fault record. */
typedef struct vms_iommu_fault {
    vms_bdf bdf;
    uint16_t did;         /* the context's domain id (0 for NO_CONTEXT) */
    uint64_t iova;        /* the address the device issued */
    vms_access_kind kind; /* VMS_ACC_READ (DMA from memory) or VMS_ACC_WRITE */
    vms_iommu_reason reason;
    unsigned level; /* table level the walk stopped at (0: IOTLB hit/no walk) */
} vms_iommu_fault;

typedef enum vms_iommu_mode {
    VMS_IOMMU_TRANSLATE = 0, /* walk the domain's tables */
    VMS_IOMMU_PASSTHROUGH,   /* identity: iova is the physical address */
} vms_iommu_mode;

/* A context entry. */
typedef struct vms_iommu_context {
    vms_iommu_mode mode;
    uint16_t did;    /* domain id, <= VMS_IOMMU_MAX_DID (translate mode); SMMU: the VMID */
    uint64_t root;   /* physical address of the PML4/PML5 (translate mode) */
    unsigned levels; /* 4 or 5 (translate mode); SMMU stage 2 (below): 3 or 4 */
} vms_iommu_context;

/*
 * ---- an SMMU-like IOMMU: Arm SMMUv3 stage 2 (Arm IHI 0070, SMMU architecture
 * specification, §5.2 "STE, Stream Table Entry"; §3.17 VMID tagging) ----
 *
 * The same IOMMU answers for an Arm machine's devices: a stream (the requester ID
 * standing in for the StreamID) whose STE selects stage 2 translation walks Arm stage 2
 * tables (Arm ARM DDI 0487 §D8.3: S2AP[0] read, S2AP[1] write; table descriptors carry
 * no rights) at STE.S2TTB and tags its TLB entries with STE.S2VMID. A hypervisor shares
 * its VM's Stage 2 tables with the SMMU (S2TTB = VTTBR_EL2.BADDR, the S2T0SZ/S2SL0/S2PS
 * of VTCR_EL2), so a device reaches exactly what the VM's second stage maps; S2VMID is
 * a VMID of the SMMU driver's own (Linux's arm-smmu-v3 allocates one per stage 2
 * domain), the domain id here, so it never tags another domain's IOTLB entries. The STE fields read
 * and written here (a 64-byte STE as 8 little-endian doublewords; bit n of the STE is bit n % 64 of
 * ste[n / 64]):
 *
 *    bit   0       V        valid
 *    3:1           Config   0b110: stage 1 bypass, stage 2 translate
 *    143:128       S2VMID   the VMID (TLB tag: the context's did)
 *    165:160       S2T0SZ   IPA size 2^(64 - S2T0SZ): 25 (39 bits) or 16 (48 bits)
 *    167:166       S2SL0    starting level, 4 KiB granule: 1 = level 1, 2 = level 0
 *    175:174       S2TG     granule: 0b00 = 4 KiB
 *    178:176       S2PS     output size: 0b101 = 48 bits
 *    179           S2AA64   1: VMSAv8-64 descriptors
 *    181           S2AFFD   1: an AF = 0 descriptor never faults (no HTTU here)
 *    184, 183      S2HA, S2HD  hardware AF / dirty updates: 0 (the walk writes nothing)
 *    186           S2R      record faults (the fault log)
 *    243:196       S2TTB    stage 2 table base, address bits 51:4
 *
 * A blocked access is an SMMU event in the fault log (F_TRANSLATION for an invalid
 * descriptor, F_PERMISSION for S2AP denying it, F_ADDR_SIZE for an IPA beyond
 * 2^(64 - S2T0SZ); §7.3), recorded with the same reasons as VT-d's.
 */
#define VMS_SMMU_STE_DWORDS 8
#define VMS_SMMU_STE_V      (UINT64_C(1) << 0)
#define VMS_SMMU_STE_CFG_S2 (UINT64_C(6) << 1) /* Config = 0b110 */
#define VMS_SMMU_STE_CFG    (UINT64_C(7) << 1)

/* An STE for stage 2 translation with the tables at s2ttb (4 KiB aligned), of levels
 * 3 or 4, tagged vmid: fills ste[0..7]. */
void vms_smmu_ste_s2(uint64_t ste[VMS_SMMU_STE_DWORDS], uint64_t s2ttb, uint16_t vmid,
                     unsigned levels);
/* What an STE describes (stage 2 translate only): a translate context with did =
 * S2VMID, root = S2TTB, levels from S2T0SZ/S2SL0, and *fmt the Arm stage 2 format of its
 * tables. VMS_ERR_INVAL naming the field for an STE that is not valid, not
 * stage-2-only, not VMSAv8-64 with a 4 KiB granule, inconsistent (S2T0SZ against
 * S2SL0), or asks for HTTU or Access flag faults (not modelled). */
vms_status vms_smmu_ste_decode(const uint64_t ste[VMS_SMMU_STE_DWORDS], vms_iommu_context *out,
                               const vms_pt_format **fmt, vms_err *err);
/* Give requester bdf the context its STE describes (vms_smmu_ste_decode; then as
 * vms_iommu_set_context): its DMA walks Arm stage 2 tables, tagged by S2VMID. */
vms_status vms_iommu_set_ste(vms_iommu *io, vms_bdf bdf, const uint64_t ste[VMS_SMMU_STE_DWORDS],
                             vms_err *err);
/* The format of bdf's translation tables: an Arm stage 2 format for an STE's context,
 * NULL for VT-d's (x86-64 entries) or when bdf has no translate context. */
const vms_pt_format *vms_iommu_context_format(const vms_iommu *io, vms_bdf bdf);

/* Cycles the IOMMU charges (to its own clock: a DMA uses no core). */
typedef struct vms_iommu_cost {
    uint32_t iotlb_hit;
    uint32_t walk_ref; /* per table entry read */
    uint32_t fault;    /* recording a fault */
} vms_iommu_cost;

typedef struct vms_iommu_config {
    bool enabled;           /* translation on (GCMD.TE) */
    vms_tlb_config iotlb;   /* nparts 0: no IOTLB, every translation walks */
    unsigned fault_log_len; /* fault records kept (>= 1) */
    vms_iommu_cost cost;
} vms_iommu_config;

typedef struct vms_iommu_stats {
    uint64_t translations; /* page-sized requests presented to the IOMMU while enabled */
    uint64_t passthrough;  /* of which answered by a passthrough context */
    uint64_t bypassed;     /* requests while the IOMMU was off (not translated) */
    uint64_t walks, walk_refs;
    uint64_t faults; /* blocked requests */
    uint64_t faults_by_reason[VMS_IOMMU_NREASONS];
    uint64_t fault_log_overflows; /* faults not recorded because the log was full */
    uint64_t iotlb_hit_faults;    /* faults raised on IOTLB-cached rights */
    uint64_t inv_global, inv_domain, inv_device, inv_range;
    uint64_t cycles;
} vms_iommu_stats;

/*
 * A default configuration: enabled, a 64-entry 4-way IOTLB for 4K pages plus 8 entries
 * each for 2M and 1G (VT-d implementations do not publish sizes; these are modest
 * guesses), a 64-record fault log, and costs of 1 cycle per IOTLB hit, 25 per table
 * entry read (as the MMU's walk_ref) and 0 per fault.
 */
void vms_iommu_config_default(vms_iommu_config *cfg);

/*
 * Create an IOMMU in front of machine m's bus (m is borrowed and must outlive it; host
 * memory comes from m's allocator). cfg is copied. VMS_ERR_INVAL for a bad IOTLB or a
 * zero-length fault log.
 */
vms_status vms_iommu_create(vms_machine *m, const vms_iommu_config *cfg, vms_iommu **out,
                            vms_err *err);
void vms_iommu_destroy(vms_iommu *io); /* NULL accepted */

/* Turn translation on or off (off: DMA reaches physical addresses untranslated). The
 * IOTLB keeps its contents, as VT-d does not define them across TE changes: invalidate. */
void vms_iommu_set_enabled(vms_iommu *io, bool on);
bool vms_iommu_enabled(const vms_iommu *io);

/*
 * Set (ctx non-NULL) or clear (ctx NULL) the context of requester bdf. VMS_ERR_INVAL for
 * levels other than 4/5 or an unaligned root in
 * translate mode; VMS_ERR_NOMEM if a context table could not be allocated (nothing
 * changes then). IOTLB entries of the old domain stay: invalidate them if needed.
 */
vms_status vms_iommu_set_context(vms_iommu *io, vms_bdf bdf, const vms_iommu_context *ctx,
                                 vms_err *err);

/* The context of bdf: true and *out filled when it has one. */
bool vms_iommu_get_context(const vms_iommu *io, vms_bdf bdf, vms_iommu_context *out);

/*
 * Translate one request of requester bdf at iova for an access of kind (VMS_ACC_EXEC is
 * treated as a read). On success returns true, *pa the physical address and *room the
 * bytes from iova to the end of its page (passthrough and IOMMU off: to the end of the
 * 4 KiB page). On a block returns false, fills *fault (may be NULL), counts and logs it.
 * Costs go to the IOMMU's clock. Never allocates.
 */
bool vms_iommu_translate(vms_iommu *io, vms_bdf bdf, uint64_t iova, vms_access_kind kind,
                         uint64_t *pa, uint64_t *room, vms_iommu_fault *fault);

/* Invalidations (VT-d §6.5.1 IOTLB invalidation granularities). Each counts once. */
void vms_iommu_inv_global(vms_iommu *io);
void vms_iommu_inv_domain(vms_iommu *io, uint16_t did);
/* The domain of bdf's context (nothing when it has none or is passthrough). */
void vms_iommu_inv_device(vms_iommu *io, vms_bdf bdf);
/* Every entry of domain did that translates part of [iova, iova + len). */
void vms_iommu_inv_range(vms_iommu *io, uint16_t did, uint64_t iova, uint64_t len);

/* The fault log: number of records, the i-th (oldest first), and clearing it. */
unsigned vms_iommu_fault_count(const vms_iommu *io);
bool vms_iommu_fault_get(const vms_iommu *io, unsigned i, vms_iommu_fault *out);
void vms_iommu_fault_clear(vms_iommu *io);

/* One line describing a fault, e.g. "DMAR: DMA write 00:03.0 iova 0x5000 domain 1: no
 * write permission", the format Linux's dmesg uses in spirit. */
vms_status vms_iommu_fault_format(const vms_iommu_fault *f, vms_strbuf *sb);

/* The IOTLB (for display and tests), counters, and zeroing them. */
vms_tlb *vms_iommu_iotlb(vms_iommu *io);
const vms_iommu_stats *vms_iommu_get_stats(const vms_iommu *io);
void vms_iommu_reset_stats(vms_iommu *io);

/*
 * Append the counters as JSON object members (no braces), like
 * vms_machine_stats_json_members: "enabled", "translations", "passthrough", "bypassed",
 * "iotlb" {…as the TLBs…}, "walks", "walk_refs", "faults", "faults_by_reason" {…},
 * "fault_log_overflows", "iotlb_hit_faults", "invalidations" {…}, "cycles".
 */
vms_status vms_iommu_stats_json_members(const vms_iommu *io, vms_strbuf *sb);

#endif
