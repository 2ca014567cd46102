/*
 * vmsim/events.h — the event tap: an optional observer that the library tells of what
 * the hardware and the kernel do, one event at a time, for narration, visualizers and
 * tests (docs/EVENTS.md lists every type and field).
 *
 * One callback takes a tagged event (vms_event: its type, the core it happened on, that
 * core's cycle clock, and the type's fields) and the user pointer given with it. It is
 * installed on a machine (vms_machine_set_observer) or, equivalently, on the kernel that
 * runs on it (vms_kernel_set_observer), so a replay or a scenario reaches it through its
 * kernel. With no observer nothing is built and the translation path pays one predictable
 * branch; with one, replay batches take the plain reference-by-reference path (every
 * lookup is reported) and every counter stays what it is without an observer
 * (tests/test_events.c checks both, and rebuilds the counters from the events alone).
 *
 * The events are reports, never requests: the callback must not call back into the
 * machine or the kernel that emitted it (it may read their counters). Event pointers are
 * valid during the call only.
 *
 * What each counter of the stats is rebuilt from (docs/EVENTS.md has the table):
 * accesses and reads/writes/fetches from "access"; per TLB level lookups/hits/misses/
 * hits by size from "tlb_lookup", fills and evictions from "tlb_fill", invalidations
 * from "tlb_invalidate"; walks, walk references, A/D writes, walk faults and PWC hits
 * from "walk" (and its "walk_step"s); the PWC's from "pwc_lookup", "pwc_fill" and
 * "pwc_invalidate"; exceptions from "fault"; INVLPG & co. from "tlb_op"; kernel faults
 * by kind from "fault_resolved"; shootdowns from "shootdown" and "ipi"; swap ins and
 * outs from "swap"; DMA and IOMMU decisions from "dma" and "iommu".
 */
#ifndef VMSIM_EVENTS_H
#define VMSIM_EVENTS_H

#include <stdbool.h>
#include <stdint.h>

#include "vmsim/common.h"
#include "vmsim/core.h"
#include "vmsim/machine.h"
#include "vmsim/strbuf.h"
#include "vmsim/walk.h"

typedef enum vms_event_type {
    VMS_EV_ACCESS = 0,      /* "access": a translation begins (each page piece) */
    VMS_EV_TLB_LOOKUP,      /* "tlb_lookup": one TLB level looked up */
    VMS_EV_TLB_FILL,        /* "tlb_fill": an entry written into a TLB level */
    VMS_EV_TLB_INVALIDATE,  /* "tlb_invalidate": entries dropped from a TLB level */
    VMS_EV_PWC_LOOKUP,      /* "pwc_lookup": a walk asked the page-walk caches */
    VMS_EV_PWC_FILL,        /* "pwc_fill": a PWC entry written */
    VMS_EV_PWC_INVALIDATE,  /* "pwc_invalidate": PWC entries dropped */
    VMS_EV_WALK_STEP,       /* "walk_step": one paging-structure entry read by a walk */
    VMS_EV_WALK,            /* "walk": a walk ended (after its steps) */
    VMS_EV_FAULT,           /* "fault": the hardware raised a fault */
    VMS_EV_FAULT_RESOLVED,  /* "fault_resolved": how the kernel ended a page fault */
    VMS_EV_PTE_WRITE,       /* "pte_write": the kernel wrote a paging-structure entry */
    VMS_EV_TLB_OP,          /* "tlb_op": an invalidating instruction (INVLPG, CR3 load, …) */
    VMS_EV_SHOOTDOWN,       /* "shootdown": the kernel flushed a range of an address space
                               from the TLBs that may hold it (its own core's and others') */
    VMS_EV_IPI,             /* "ipi": an inter-processor interrupt handled by a target */
    VMS_EV_SWAP,            /* "swap": a page written to or read from swap */
    VMS_EV_DMA,             /* "dma": a device's DMA through the IOMMU */
    VMS_EV_IOMMU,           /* "iommu": the IOMMU translated (or refused) an IOVA */
    VMS_EV_INTERRUPT,       /* "interrupt": an external interrupt delivered to a core */
    VMS_EV_RECLAIM,         /* "reclaim": reclaim freed a frame (swapped out or dropped) */
    VMS_EV_OOM_KILL,        /* "oom_kill": the OOM killer chose a process */
    VMS_EV_DIRTY_REWALK,    /* "dirty_rewalk": a write hit a clean TLB entry: walk again to
                               set D (the walk, if the format's MMU walks, follows) */
    VMS_EV_GUEST_PTE_WRITE, /* "guest_pte_write": a guest's page-table write as the
                               hypervisor sees it (trapped under shadow paging) */
    VMS_EV_NTYPES
} vms_event_type;

/* How a "tlb_invalidate" / "pwc_invalidate" selected what it dropped. */
typedef enum vms_ev_flush {
    VMS_EV_FLUSH_VA = 0, /* "va": one address's entries (of a context, or any context) */
    VMS_EV_FLUSH_CTX,    /* "ctx": the non-global entries of a context (PCID/ASID) */
    VMS_EV_FLUSH_VM,     /* "vm": the entries of a virtual machine */
    VMS_EV_FLUSH_ALL,    /* "all": every entry (globals kept when "keep_global") */
} vms_ev_flush;

/* Why a walk ran ("walk" reason). */
typedef enum vms_ev_walk_reason {
    VMS_EV_WALK_MISS = 0, /* "miss": every TLB level missed */
    VMS_EV_WALK_DIRTY,    /* "dirty": a write hit a clean entry: walk again to set D */
    VMS_EV_WALK_RANGE,    /* "range": an address outside the format's range (fault only) */
} vms_ev_walk_reason;

/* How the kernel ended a page fault ("fault_resolved" result): exactly one of these, as
 * the kernel's counters count it (kernel.h vms_kernel_stats: minor, pgmajfault, segv,
 * sigbus). */
typedef enum vms_ev_fault_result {
    VMS_EV_FAULT_MINOR = 0, /* "minor": resolved without I/O */
    VMS_EV_FAULT_MAJOR,     /* "major": resolved with I/O (a file read, a swap-in) */
    VMS_EV_FAULT_SEGV,      /* "segv": SIGSEGV (EFAULT for a kernel access) */
    VMS_EV_FAULT_SIGBUS,    /* "sigbus": SIGBUS */
} vms_ev_fault_result;

/* What the handler did on the way ("fault_resolved" how: a set, JSON a list of names);
 * each bit is one of the kernel's breakdown counters moving during this fault. */
enum {
    VMS_EV_HOW_ZERO_PAGE = 1u << 0,    /* "zero_page": mapped the shared zero page */
    VMS_EV_HOW_ANON = 1u << 1,         /* "anon": allocated and zeroed a frame */
    VMS_EV_HOW_COW_COPY = 1u << 2,     /* "cow_copy": copy-on-write, copied the page */
    VMS_EV_HOW_COW_REUSE = 1u << 3,    /* "cow_reuse": copy-on-write, sole owner: reused */
    VMS_EV_HOW_PRIVATE_COPY = 1u << 4, /* "private_copy": first write to a private file page */
    VMS_EV_HOW_FILE = 1u << 5,         /* "file": read a file page into the page cache */
    VMS_EV_HOW_SWAP_IN = 1u << 6,      /* "swap_in": read the page back from swap */
    VMS_EV_HOW_SWAPCACHE = 1u << 7,    /* "swapcache": found it in the swap cache (no I/O) */
    VMS_EV_HOW_SPURIOUS = 1u << 8,     /* "spurious": the PTE already allowed the access */
    VMS_EV_HOW_STACK = 1u << 9,        /* "stack_expand": grew a stack VMA */
    VMS_EV_HOW_THP = 1u << 10,         /* "thp": mapped a huge page */
    VMS_EV_HOW_OOM = 1u << 11,         /* "oom_kill": the OOM killer ran */
    VMS_EV_HOW_SWAPBACKED = 1u << 12,  /* "swapbacked": the fault added swap-backed frames
                                          (anonymous or shared memory) */
};
#define VMS_EV_NHOW 13

/* The kind of a "tlb_op" (core.h has the instructions). */
typedef enum vms_ev_tlb_op {
    VMS_EV_OP_INVLPG = 0, /* "invlpg": INVLPG (and the other architectures' one-page forms) */
    VMS_EV_OP_INVPCID,    /* "invpcid": INVPCID (type in "pcid"/"va" as it applies) */
    VMS_EV_OP_CR3,        /* "cr3_load": a MOV to CR3 (flush: whether it flushed) */
    VMS_EV_OP_FLUSH_ALL,  /* "flush_all": a full flush (CR4.PGE toggle and the like) */
    VMS_EV_OP_INVLPGB,    /* "invlpgb": a broadcast invalidation issued */
    VMS_EV_OP_INVLPGB_RX, /* "invlpgb_received": a broadcast applied to this core */
    VMS_EV_OP_TLBSYNC,    /* "tlbsync": TLBSYNC (or DSB ISH) waited for broadcasts */
} vms_ev_tlb_op;

/* How a shootdown reached the other cores. */
typedef enum vms_ev_shootdown_via {
    VMS_EV_VIA_IPI = 0,   /* "ipi": interrupts to each target core */
    VMS_EV_VIA_BROADCAST, /* "broadcast": INVLPGB + TLBSYNC, TLBI … IS + DSB ISH */
    VMS_EV_VIA_SBI,       /* "sbi": RISC-V SBI remote fence */
} vms_ev_shootdown_via;

/* What the IOMMU did with a request ("iommu" mode). */
typedef enum vms_ev_iommu_mode {
    VMS_EV_IOMMU_OFF = 0,     /* "off": the IOMMU is disabled: the IOVA is the address */
    VMS_EV_IOMMU_PASSTHROUGH, /* "passthrough": the device's context passes it through */
    VMS_EV_IOMMU_TRANSLATE,   /* "translate": the IOTLB or a walk of the domain's tables */
    VMS_EV_IOMMU_NO_CONTEXT,  /* "no_context": the device has no context: blocked */
} vms_ev_iommu_mode;

#define VMS_EV_NO_CORE (-1) /* event.core of an event no core made */

/*
 * One event. type selects the member of the union; core is the core it happened on
 * (VMS_EV_NO_CORE for the kernel's work outside any core) and cycle that core's clock
 * when the event was reported. Field meanings are
 * those of the structures named beside them; docs/EVENTS.md gives their JSON names.
 */
typedef struct vms_event {
    vms_event_type type;
    int core;
    uint64_t cycle;
    union {
        struct {
            uint64_t va;
            vms_access_kind kind;
            bool user; /* made in user mode */
        } access;
        struct {
            vms_tlb_level level;
            uint64_t va;
            vms_ctx ctx;
            bool hit;
            vms_pgsize size;  /* hit: the cached entry's size */
            uint64_t page_pa; /* hit: physical base of the cached piece */
        } tlb_lookup;
        struct {
            vms_tlb_level level;
            uint64_t va;
            vms_ctx ctx;
            vms_pgsize size; /* the size it is cached as */
            uint64_t page_pa;
            bool global;
            bool evicted;           /* a valid entry was replaced */
            uint64_t victim_va;     /* evicted: the virtual base it cached */
            vms_pgsize victim_size; /* evicted: its cached size */
        } tlb_fill;
        struct {
            vms_tlb_level level;
            vms_ev_flush how;
            uint64_t va; /* how == VA */
            vms_ctx ctx; /* how == VA (unless any context) or CTX; VM << 32 for VM */
            bool keep_global;
            unsigned count; /* entries dropped (events are emitted only when > 0) */
        } tlb_invalidate;
        struct {
            uint64_t va;
            vms_ctx ctx;
            unsigned level;    /* the level of the entry found; 0: a miss */
            uint64_t table_pa; /* hit: the table the walk continues in */
        } pwc_lookup;
        struct {
            uint64_t va;
            vms_ctx ctx;
            unsigned level;
            uint64_t table_pa;
        } pwc_fill;
        struct {
            vms_ev_flush how; /* CTX or ALL */
            vms_ctx ctx;
            unsigned count; /* entries dropped (emitted only when > 0) */
        } pwc_invalidate;
        struct {
            uint64_t va;
            unsigned level; /* walk.h vms_walk_step */
            uint64_t table_pa;
            unsigned index;
            uint64_t ptep;
            uint64_t pte; /* as read */
            uint64_t set; /* bits the walk wrote into it (A, D) when it ended */
        } walk_step;
        struct {
            uint64_t va;
            vms_access_kind kind;
            vms_ev_walk_reason reason;
            bool ok;
            unsigned refs;        /* entries read from memory (the steps before) */
            unsigned ad_writes;   /* entries written back to set A/D */
            unsigned pwc_level;   /* 0: from the root; L: a PWC gave the level-L entry */
            vms_pgsize size;      /* ok: the page size found */
            uint64_t page_pa;     /* ok: its physical base */
            unsigned fault_level; /* !ok: where it stopped */
        } walk;
        struct {
            vms_fault_kind kind;
            uint64_t va;
            uint32_t error_code;
            uint32_t flags; /* VMS_FAULTF_* */
            unsigned level;
            uint64_t pa;  /* kind BUS: the address that failed */
            bool tlb_hit; /* raised on TLB-cached rights (no walk) */
        } fault;
        struct {
            int pid;
            uint64_t va;
            uint32_t flags; /* VMS_FAULTF_* of the fault */
            vms_ev_fault_result result;
            uint32_t how;          /* VMS_EV_HOW_* */
            unsigned fault_around; /* pages mapped around the faulting one */
        } fault_resolved;
        struct {
            uint64_t ptep;
            uint64_t old; /* the entry before (read without cost) */
            uint64_t pte; /* the entry written */
        } pte_write;
        struct {
            vms_ev_tlb_op op;
            uint64_t va;
            uint32_t pcid;
            bool flush; /* cr3_load: it flushed the PCID (no NOFLUSH bit) */
        } tlb_op;
        struct {
            int pid; /* the address space's process (-1: several, a deferred flush) */
            uint64_t va;
            uint64_t npages; /* pages of the range [va, va + npages * 4K) */
            vms_ev_shootdown_via via;
            bool full;             /* flushed whole PCIDs rather than the pages */
            bool deferred;         /* reclaim's batched flush (try_to_unmap_flush) */
            unsigned targets;      /* other cores interrupted (IPIs, SBI fences) */
            unsigned lazy_skipped; /* lazy cores left out (they catch up on switch) */
            unsigned instructions; /* broadcast: INVLPGB / TLBI … IS issued */
            uint64_t local_pages;  /* pages the initiator invalidated one by one */
            bool local_all;        /* the initiator flushed its whole PCID */
            uint64_t cycles;       /* cycles of cores' work for other cores (0: local only) */
        } shootdown;
        struct {
            int from; /* the sending core */
            uint8_t vector;
        } ipi;
        struct {
            bool out; /* true: written to swap; false: read back */
            uint64_t slot;
            uint64_t pfn;
            bool error; /* the I/O failed */
        } swap;
        struct {
            uint32_t rid; /* requester ID (bus:dev.fn) */
            uint64_t iova;
            uint64_t len;  /* bytes asked for */
            uint64_t done; /* bytes moved before a block or a bus error */
            bool write;    /* the device writes memory */
            bool ok;
            uint32_t vm; /* the VM the device is assigned to (its context's vm; 0: none),
                            whose guest-physical addresses iova then are */
        } dma;
        struct {
            uint8_t vector;
        } interrupt;
        struct {
            uint64_t pfn;
            bool anon;   /* swap-backed (anonymous or shared memory): it went to swap;
                            false: a file page, dropped or written back first */
            bool kswapd; /* by kswapd (false: direct reclaim by an allocation) */
        } reclaim;
        struct {
            int pid; /* the victim */
        } oom_kill;
        struct {
            uint64_t va;
        } dirty_rewalk;
        struct {
            uint32_t rid;
            uint64_t iova;
            bool write;
            vms_ev_iommu_mode mode;
            bool hit;          /* translate: the IOTLB answered (no walk) */
            bool walked;       /* translate: the domain's tables were walked */
            unsigned refs;     /* … entries the walk read */
            bool ok;           /* false: blocked and logged (reason) */
            unsigned reason;   /* vms_iommu_reason (iommu.h) when blocked */
            uint64_t pa;       /* ok: the physical address */
            uint32_t vm;       /* the VM the device is assigned to (0: none): iova is then a
                                  guest-physical address and pa a host-physical one */
            bool page_request; /* the walk met a not-present entry and asked software
                                  (vms_iommu_set_page_request) … */
            bool served;       /* … which mapped it: the walk ran again (refs has both) */
        } iommu;
        struct {
            uint32_t vm;  /* the VM (vms_guest_vm_id, vms_vm_config.vpid) */
            uint64_t gpa; /* the entry's guest-physical address */
            uint64_t hpa; /* where it is in host RAM (the second stage's translation) */
            uint64_t old; /* the entry before (read without cost) */
            uint64_t pte; /* the entry written */
            bool trapped; /* shadow paging: the guest's tables are write-protected, the
                             store was a VM exit the hypervisor emulated */
        } guest_pte_write;
    };
} vms_event;

/* The observer: fn(user, event) for every event. */
typedef void (*vms_event_fn)(void *user, const vms_event *ev);

typedef struct vms_kernel vms_kernel;

/*
 * Install fn (with its user pointer) as m's observer, replacing any; fn NULL removes it.
 * Every core, the bus and a kernel on m report to it from the next event on.
 */
void vms_machine_set_observer(vms_machine *m, vms_event_fn fn, void *user);

/* The observer installed on m now (*fn NULL: none), so that a second one can chain to it
 * (the scenario narration does: an observer given by the caller still hears everything). */
void vms_machine_get_observer(const vms_machine *m, vms_event_fn *fn, void **user);

/* The same, on the machine kernel k runs on (replays and scenarios reach it this way). */
void vms_kernel_set_observer(vms_kernel *k, vms_event_fn fn, void *user);

/* The JSON name of a type ("tlb_lookup"), or "?" */
const char *vms_event_type_name(vms_event_type t);

/*
 * Append ev to sb as one JSON object (no newline): {"type":…,"cycle":…,"core":…, the
 * type's fields}. Addresses, entry values and contexts are hex strings ("0x1000"), so
 * that 64-bit values survive JavaScript; counts and cycles are numbers.
 */
vms_status vms_event_json(const vms_event *ev, vms_strbuf *sb);

#endif
