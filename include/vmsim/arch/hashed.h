/*
 * vmsim/arch/hashed.h — two translation designs other than the radix tree, on an
 * x86-64 core and kernel (seed 002 §08): a hashed page table of PTE groups, as the
 * 64-bit PowerPC (Power ISA Book III, "Hashed Page Table" and "Hashed Page Table
 * Search"), and a classic inverted page table with a hash anchor table (IBM RT PC /
 * System/38 style: one entry per physical frame). docs/arch/hashed.md and
 * docs/arch/inverted.md tell the story and draw the layouts.
 *
 * In both designs the kernel keeps its x86-64 radix tables as the source of truth (as
 * Linux on ppc64 keeps its Linux page tables) and the hardware never reads them: on a
 * TLB miss the walker searches the hash table (every entry it reads is one memory
 * reference, through the bus and the caches exactly like a radix walk); a miss there
 * is a page fault, and the kernel's hash_page (src/os/hashfill.c) fills the table from
 * the radix tables, or, when they do not allow the access, handles a real fault. The
 * kernel removes an entry whenever the radix PTE it came from changes (munmap,
 * mprotect, COW, reclaim, swap-out), so no stale entry outlives it.
 *
 * The table's place is in core registers (regs.h, "designs"): the HPT's origin and
 * group mask (SDR1's HTABORG and HTABSIZE; PTCR's table on POWER9), the IPT's entry
 * array, frame count and anchor table. The context (Power's VSID source, the IPT's
 * process id) is the core's PCID for the lower half of the address space, 0 for the
 * kernel half (shared by every process, as ppc64's kernel VSIDs are); kernel.pcid must
 * be on, since the tables are shared by every core and must tell processes apart.
 */
#ifndef VMSIM_ARCH_HASHED_H
#define VMSIM_ARCH_HASHED_H

#include "vmsim/common.h"
#include "vmsim/format.h"

typedef struct vms_bus vms_bus;
typedef struct vms_core vms_core;

/* The translation design of a machine (machine.h cfg.design; config key `design`). */
typedef enum vms_design {
    VMS_DESIGN_RADIX = 0, /* the architecture's radix tree (the default) */
    VMS_DESIGN_HASHED,    /* PowerPC-style hashed page table of PTE groups */
    VMS_DESIGN_INVERTED,  /* classic inverted page table with a hash anchor table */
} vms_design;

/* "radix", "hashed", "inverted". */
const char *vms_design_name(vms_design d);
/* Parse a design name; false for anything else. */
bool vms_design_parse(const char *s, vms_design *out);
/* The format a core's regs.fmt holds under design d on an x86-64 machine of `levels`
 * levels (its walker searches the design's table); NULL for radix. */
const vms_pt_format *vms_design_format(vms_design d, unsigned levels);
/* The design of a format in force (regs.fmt): radix unless it is one of the above. */
vms_design vms_design_of(const vms_pt_format *f);

/*
 * ---- the hashed page table (HPT) ----
 *
 * A PTE group (PTEG) is 8 entries of 16 bytes, 128 bytes aligned; the table is 2^n
 * groups (n >= 11, so that the hash supplies VA bits 22:12 that the entry omits).
 * An entry (Power ISA v2.07 layout, Linux's HPTE_V_* / HPTE_R_* names):
 *
 *  dword 0 (v)
 *   63 62 61                                                    7 6   3  2   1   0
 *  +-----+------------------------------------------------------+------+---+---+---+
 *  |  B  |  AVA: abbreviated virtual address = VA[77:23]        |  SW  | L | H | V |
 *  +-----+------------------------------------------------------+------+---+---+---+
 *  dword 1 (r)
 *   63  62  61:60  59                                        12 11:9  8   7  6 5 4 3  2  1:0
 *  +---+----+------+--------------------------------------------+-----+---+---+-------+---+----+
 *  |PP0| TS |KEY_HI|  RPN: real page number (physical 59:12)   |KEY_LO| R | C |W I M G| N | PP |
 *  +---+----+------+--------------------------------------------+-----+---+---+-------+---+----+
 *
 * B = 0 (256 MB segments), L = 0 (4 KiB pages), H = the hash that placed it (0 primary,
 * 1 secondary), V = valid. R and C are set by the search (referenced; changed on a
 * store). PP0:PP are the page-protection bits under Linux's keys (Ks = 0, Kp = 1):
 * 000 supervisor read/write, user none; 010 both read/write; 011 both read-only;
 * 110 supervisor read-only, user none. N = no-execute, I = cache-inhibited (x86 PCD),
 * W = write-through (PWT), KEY = the x86 protection key (PKRU still applies).
 *
 * The search (Power ISA "Hashed Page Table Search", Linux hpt_hash):
 *   VA      = VSID << 28 | EA[27:0]        (EA: the x86 linear address)
 *   hash    = (VSID ^ EA[27:12]) & 0x7fffffffff        primary
 *   hash'   = ~hash                                      secondary
 *   PTEG    = HTABORG + (hash & htab_mask) * 128
 * reading the 8 entries of the primary group, then of the secondary, until one has
 * V = 1, H = the hash used and AVA = VA[77:23].
 *
 * The VSID (the segment table, an SLB, is not modelled: the kernel's segments are
 * computed): proto-VSID = context << (va_bits - 28) | EA[va_bits-1:28], scrambled as
 * Linux's vsid_scramble: VSID = proto * 12538073 mod (2^49 - 1) (a prime multiplier
 * coprime with the modulus: a 1:1 mapping). vmsim's VSIDs are 49 bits (Linux's 40:
 * its contexts are 19 bits of a 68-bit VA; here a 12-bit PCID of a 57-bit one needs 41).
 */
#define VMS_HPT_GROUP_ENTRIES 8u
#define VMS_HPT_ENTRY_BYTES   16u
#define VMS_HPT_GROUP_BYTES   128u
#define VMS_HPT_MIN_GROUPS    2048u /* 2^11: the hash supplies VA bits 22:12 */
#define VMS_HPT_SID_SHIFT     28u   /* 256 MB segments */
#define VMS_HPT_VSID_BITS     49u
#define VMS_HPT_VSID_MULT     UINT64_C(12538073)
#define VMS_HPT_HASH_MASK     UINT64_C(0x7fffffffff)

#define VMS_HPTE_V_VALID      UINT64_C(0x1)
#define VMS_HPTE_V_SECONDARY  UINT64_C(0x2)
#define VMS_HPTE_V_LARGE      UINT64_C(0x4)
#define VMS_HPTE_V_BOLTED     UINT64_C(0x10) /* SW: never evicted (Linux HPTE_V_BOLTED) */
#define VMS_HPTE_V_AVPN       UINT64_C(0x3fffffffffffff80)
#define VMS_HPTE_V_AVPN_SHIFT 7

#define VMS_HPTE_R_PP0    (UINT64_C(1) << 63)
#define VMS_HPTE_R_KEY_HI UINT64_C(0x3000000000000000)
#define VMS_HPTE_R_RPN    UINT64_C(0x0ffffffffffff000)
#define VMS_HPTE_R_KEY_LO UINT64_C(0x0000000000000e00)
#define VMS_HPTE_R_R      UINT64_C(0x100)
#define VMS_HPTE_R_C      UINT64_C(0x080)
#define VMS_HPTE_R_W      UINT64_C(0x040)
#define VMS_HPTE_R_I      UINT64_C(0x020)
#define VMS_HPTE_R_M      UINT64_C(0x010)
#define VMS_HPTE_R_G      UINT64_C(0x008)
#define VMS_HPTE_R_N      UINT64_C(0x004)
#define VMS_HPTE_R_PP     UINT64_C(0x003)

/* An HPT's place: HTABORG (128-byte aligned) and the group-index mask (2^n - 1). */
typedef struct vms_hpt {
    uint64_t base;
    uint64_t mask;
    unsigned va_bits; /* of the EA: 48 or 57 */
} vms_hpt;

/* The VSID of ea's segment in context ctx (0: the kernel half's). */
uint64_t vms_hpt_vsid(uint32_t ctx, uint64_t ea, unsigned va_bits);
/* The primary hash of ea in segment vsid (the secondary is its complement). */
uint64_t vms_hpt_hash(uint64_t vsid, uint64_t ea);
/* Physical address of the group the primary (secondary = false) or secondary hash picks. */
uint64_t vms_hpt_group_pa(const vms_hpt *t, uint64_t hash, bool secondary);
/* dword 0 of a valid entry for ea in vsid, placed by hash `secondary`. */
uint64_t vms_hpt_mk_v(uint64_t vsid, uint64_t ea, bool secondary);
/* dword 1 for the 4 KiB frame at pa with rights (VMS_PGPROT_W/U/X), pkey, PCD/PWT. */
uint64_t vms_hpt_mk_r(uint64_t pa, unsigned prot, unsigned pkey, bool pcd, bool pwt);
/* The context and EA (canonical, page-aligned) of a valid entry read at group g. */
void vms_hpt_entry_va(const vms_hpt *t, uint64_t g, uint64_t v, uint32_t *ctx, uint64_t *ea);

/* Where an insert put the entry and what it evicted. */
typedef struct vms_hpt_slot {
    uint64_t group; /* group index */
    unsigned slot;  /* 0 … 7 in it */
    bool secondary; /* placed by the secondary hash */
    bool evicted;   /* a valid entry of another page was removed to make room */
    uint32_t evicted_ctx;
    uint64_t evicted_ea;
    bool replaced; /* an entry for the same page was there (its rights are updated) */
} vms_hpt_slot;

/*
 * The kernel's hpte_insert (Linux native_hpte_insert / hpte_remove), on the table in
 * RAM through bus: an existing entry for (ctx, ea) is removed first; then the first
 * invalid slot of the primary group, else of the secondary group; when both are full,
 * the primary group's slot `*cursor & 7` is evicted and *cursor advances (Linux takes
 * the slot from the timebase, a pseudo-random choice; a cursor keeps runs repeatable).
 * r is dword 1 (vms_hpt_mk_r). VMS_ERR_BUS if the table is not RAM.
 */
vms_status vms_hpt_insert(vms_bus *bus, const vms_hpt *t, uint32_t ctx, uint64_t ea, uint64_t r,
                          uint32_t *cursor, vms_hpt_slot *out);
/* The same with dword 0's software flags vflags: VMS_HPTE_V_BOLTED makes an entry the
 * kernel's own (htab_bolt_mapping: ioremap), which eviction passes by and a scan of every
 * context (`all`) keeps; VMS_ERR_EXISTS when both groups hold bolted entries only. */
vms_status vms_hpt_insert_v(vms_bus *bus, const vms_hpt *t, uint32_t ctx, uint64_t ea, uint64_t r,
                            uint64_t vflags, uint32_t *cursor, vms_hpt_slot *out);
/* Remove the entry for (ctx, ea) if there is one (flush_hash_page); returns how many. */
unsigned vms_hpt_invalidate(vms_bus *bus, const vms_hpt *t, uint32_t ctx, uint64_t ea);
/* Remove every entry of context ctx (any context but bolted entries when all) with
 * start <= EA < end; returns how many. A scan of the whole table. */
uint64_t vms_hpt_invalidate_range(vms_bus *bus, const vms_hpt *t, uint32_t ctx, bool all,
                                  uint64_t start, uint64_t end);

/*
 * ---- the inverted page table (IPT) ----
 *
 * One 16-byte entry per physical frame, indexed by frame number; a hash anchor table
 * (HAT) of 2^k 4-byte entries, each 0 (empty) or 1 + the frame number of the first
 * entry of its collision chain:
 *
 *  dword 0
 *   63 62       57 56                                    12 11 10    7 6   5   4 3 2  1  0
 *  +---+----------+-----------------------------------------+--+------+---+---+---+-+--+--+--+
 *  | V | reserved |  VPN: virtual page (EA[56:12])          |  | PKEY |PWT|PCD| C |R|XD|US|RW|
 *  +---+----------+-----------------------------------------+--+------+---+---+---+-+--+--+--+
 *  dword 1
 *   63                         32 31                                   0
 *  +-----------------------------+--------------------------------------+
 *  |  context (PCID; 0 kernel)    |  next: 1 + frame of the next entry   |
 *  +-----------------------------+--------------------------------------+
 *
 * The search: h = hash(context, VPN); read HAT[h]; follow the chain, reading one
 * entry per frame, until V = 1 and (context, VPN) match: the frame is the entry's
 * index. A frame maps one virtual page at a time (the design's limit: a page shared by
 * two processes is mapped for the last one that touched it; the other refaults). The
 * kernel keeps chains at most VMS_IPT_MAX_CHAIN long, so a search reads at most 16
 * entries, as an HPT search does; the walker stops there.
 * hash(ctx, vpn) = ((vpn ^ ctx << 45) * 0x9E3779B97F4A7C15) >> (64 - k) (Knuth's
 * multiplicative hashing on the 64-bit golden ratio).
 */
#define VMS_IPT_ENTRY_BYTES 16u
#define VMS_IPT_HAT_BYTES   4u
#define VMS_IPT_MAX_CHAIN   15u

#define VMS_IPTE_V          (UINT64_C(1) << 63)
#define VMS_IPTE_VPN        UINT64_C(0x01fffffffffff000)
#define VMS_IPTE_RW         UINT64_C(0x001)
#define VMS_IPTE_US         UINT64_C(0x002)
#define VMS_IPTE_XD         UINT64_C(0x004)
#define VMS_IPTE_R          UINT64_C(0x008)
#define VMS_IPTE_C          UINT64_C(0x010)
#define VMS_IPTE_PCD        UINT64_C(0x020)
#define VMS_IPTE_PWT        UINT64_C(0x040)
#define VMS_IPTE_PKEY_SHIFT 7
#define VMS_IPTE_PKEY       UINT64_C(0x780)

typedef struct vms_ipt {
    uint64_t base;     /* entry array: frame f's entry at base + 16 f */
    uint64_t nframes;  /* entries (frames 0 … nframes - 1) */
    uint64_t hat;      /* anchor table */
    unsigned hat_bits; /* 2^hat_bits anchors */
    unsigned va_bits;
} vms_ipt;

/* The anchor index of (ctx, ea). */
uint64_t vms_ipt_hash(const vms_ipt *t, uint32_t ctx, uint64_t ea);
/* dword 0 of a valid entry for ea with rights prot (VMS_PGPROT_W/U/X), pkey, PCD/PWT. */
uint64_t vms_ipt_mk_d0(const vms_ipt *t, uint64_t ea, unsigned prot, unsigned pkey, bool pcd,
                       bool pwt);

typedef struct vms_ipt_slot {
    uint64_t anchor; /* HAT index */
    bool displaced;  /* the frame mapped another page (an alias), now unmapped */
    uint32_t displaced_ctx;
    uint64_t displaced_ea;
    bool chain_evicted; /* the chain was full: its last entry was unlinked */
    unsigned chain_len; /* entries in the chain after the insert */
} vms_ipt_slot;

/* Make frame `frame`'s entry map (ctx, ea) with dword 0 d0: unlink what the frame
 * mapped and any other entry of (ctx, ea), then insert at the head of the chain
 * (dropping the chain's tail when it already holds VMS_IPT_MAX_CHAIN entries).
 * VMS_ERR_RANGE when the frame is outside the table (a device's memory). */
vms_status vms_ipt_insert(vms_bus *bus, const vms_ipt *t, uint32_t ctx, uint64_t ea, uint64_t frame,
                          uint64_t d0, vms_ipt_slot *out);
/* Unlink the entry of (ctx, ea) if there is one; returns how many. */
unsigned vms_ipt_invalidate(vms_bus *bus, const vms_ipt *t, uint32_t ctx, uint64_t ea);
/* Unlink every entry of ctx (any when all) with start <= EA < end: a scan of the table. */
uint64_t vms_ipt_invalidate_range(vms_bus *bus, const vms_ipt *t, uint32_t ctx, bool all,
                                  uint64_t start, uint64_t end);

/* ---- the core's registers for the designs ---- */

/* Point core c at its design's table (the kernel at boot; SDR1 / the IPT's base). */
void vms_core_set_hpt(vms_core *c, const vms_hpt *t);
void vms_core_set_ipt(vms_core *c, const vms_ipt *t);
/* The table c's registers point at. */
void vms_core_get_hpt(const vms_core *c, vms_hpt *t);
void vms_core_get_ipt(const vms_core *c, vms_ipt *t);

/* The context of ea under the registers of a core (PCID, or 0 for the kernel half). */
uint32_t vms_design_ctx(const vms_regs *regs, uint64_t ea);

#endif
