/*
 * vmsim/teach.h — the textbook virtual-memory manager (Silberschatz, Galvin, Gagne,
 * "Operating System Concepts", programming project "Designing a Virtual Memory Manager"),
 * built from vmsim's parts in a small teaching configuration.
 *
 * The textbook machine: logical addresses of 2*page_bits bits (8-bit page number, 8-bit
 * offset by default), pages and frames of 2^page_bits bytes, a single-level page table of
 * 2^page_bits entries, a TLB of a few entries, and a backing store file holding every
 * page. vmsim supplies the parts: the page table lives in simulated RAM in the
 * "silberschatz" page-table format (format.h; one 4-byte entry per page: bit 31 valid,
 * bits 30:0 frame number) and a TLB miss is a walk by that format's walker, physical memory is
 * vmsim's sparse RAM, frames come from vmsim's buddy allocator (lowest address first, as the
 * textbook hands them out), the TLB is a modelled vms_tlb (fully associative, any replacement
 * policy), page faults read the page from the real backing-store file, and with fewer frames than
 * pages a vms_page_policy (fifo, lru, …) chooses victims — the textbook's "page
 * replacement" modification.
 *
 * This is a teaching configuration, not the x86-64 machine: the page size and the
 * single-level table are the textbook's, so its answers can be compared line by line with
 * the published expected output (tests/cli/vmm.sh).
 */
#ifndef VMSIM_TEACH_H
#define VMSIM_TEACH_H

#include "vmsim/common.h"

typedef struct vms_teach_config {
    unsigned page_bits;      /* [8] page and offset width: 2^page_bits pages of 2^page_bits bytes */
    unsigned frames;         /* [256] physical frames */
    unsigned tlb_entries;    /* [16] fully associative TLB entries */
    const char *tlb_policy;  /* ["fifo"] TLB replacement (repl.h: lru, plru, fifo, random) */
    const char *page_policy; /* ["fifo"] page replacement when frames < pages (policy.h) */
    const char *backing;     /* the backing-store file: page p at offset p << page_bits */
    uint64_t seed;
} vms_teach_config;

/* Defaults of the textbook project (backing left NULL). */
void vms_teach_config_default(vms_teach_config *c);

typedef struct vms_teach_stats {
    uint64_t translated, page_faults, tlb_hits, evictions, backing_reads;
} vms_teach_stats;

/* Called once per translated address with its physical address and the signed byte there. */
typedef void (*vms_teach_fn)(void *ud, uint64_t logical, uint64_t physical, int value);

/*
 * Translate addrs[0..n) in order, as the project's program does (TLB, then page table,
 * then a page fault that reads the backing store into the next free frame or a victim's).
 * Each address is masked to its 2*page_bits low bits, as the project specifies. Errors:
 * VMS_ERR_INVAL (bad configuration), VMS_ERR_IO (backing store unreadable or too short,
 * naming the file and the page), VMS_ERR_NOTFOUND (unknown policy), VMS_ERR_NOMEM.
 */
vms_status vms_teach_vmm(const vms_allocator *a, const vms_teach_config *cfg, const uint64_t *addrs,
                         size_t n, vms_teach_fn fn, void *ud, vms_teach_stats *out, vms_err *err);

/*
 * CS:APP's small memory system (Bryant and O'Hallaron, "Computer Systems: A Programmer's
 * Perspective", 3rd edition, §9.6.4 "Putting It Together: End-to-End Address
 * Translation"): 14-bit virtual addresses, 12-bit physical addresses, 64-byte pages; a
 * 16-entry 4-way set-associative TLB (4 sets: TLBI = VPN 1:0, TLBT = VPN 7:2) holding
 * Figure 9.20(a)'s entries, and a one-level page table in simulated RAM (the "csapp"
 * format) holding Figure 9.20(b)'s first 16 PTEs; the book prints no other PTE, so VPNs
 * 0x10-0xff are not valid here. The direct-mapped cache of Figure 9.20(c) is not
 * modelled. Each translation starts from the figure's state, as the book's exercises do.
 */
typedef struct vms_csapp_line {
    unsigned tag, ppn;
    bool valid;
} vms_csapp_line;

typedef struct vms_csapp_xlate {
    uint64_t va;
    unsigned vpn, vpo, tlbi, tlbt;
    vms_csapp_line set[4]; /* TLB set tlbi as Figure 9.20(a) lists it */
    bool tlb_hit;          /* the modelled TLB (vms_tlb) held the VPN */
    bool walked;           /* on a miss: the page table was read (vms_walk) */
    uint64_t pte_pa, pte;  /* then: the PTE's physical address and value */
    bool page_fault;       /* the PTE is not valid */
    unsigned ppn;          /* when translated */
    uint64_t pa;
} vms_csapp_xlate;

/* Translate va (< 2^14) on the machine of Figure 9.20. VMS_ERR_INVAL for a wider va
 * (the message says so), VMS_ERR_NOMEM. A page fault is an answer (page_fault). */
vms_status vms_csapp_translate(const vms_allocator *a, uint64_t va, vms_csapp_xlate *out,
                               vms_err *err);

/* Where the machine keeps its page table (vmsim's choice: the book does not say). */
#define VMS_CSAPP_PTBR 0xF00u

#endif
