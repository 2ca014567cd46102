/*
 * vmsim/common.h — types shared by every part of the public API: status codes, error
 * details, the allocator hook, access kinds and page sizes.
 *
 * Failure model (STYLE.md): a broken invariant asserts; a host failure or bad input
 * returns a vms_status, with a message in a caller-provided vms_err when one is given;
 * a simulated event (page fault, bus error, IOMMU fault) is data in a result struct.
 * The library never prints and never aborts on input.
 */
#ifndef VMSIM_COMMON_H
#define VMSIM_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VMS_PAGE_SHIFT 12
#define VMS_PAGE_SIZE  (UINT64_C(1) << VMS_PAGE_SHIFT)
#define VMS_PAGE_MASK  (VMS_PAGE_SIZE - 1)

/* Status of a library call (never of a simulated event). */
typedef enum vms_status {
    VMS_OK = 0,
    VMS_ERR_NOMEM,       /* the host allocator failed */
    VMS_ERR_INVAL,       /* a bad argument: unaligned, zero, impossible geometry, … */
    VMS_ERR_RANGE,       /* an address or size outside what the object covers */
    VMS_ERR_BUS,         /* a physical address decodes to nothing */
    VMS_ERR_EXISTS,      /* something is already there (overlap, mapped slot) */
    VMS_ERR_NOTFOUND,    /* no such name, mapping or object */
    VMS_ERR_IO,          /* a host file could not be read or written */
    VMS_ERR_PARSE,       /* malformed text input */
    VMS_ERR_UNSUPPORTED, /* a valid request this configuration cannot do */
    VMS_ERR_PANIC,       /* the simulated kernel panicked (vms_kernel_panicked): stop */
} vms_status;

/* Human-readable name of a status ("ok", "out of memory", …); never NULL. */
const char *vms_status_str(vms_status st);

/*
 * Details of a failure. Every function that takes a `vms_err *` (NULL allowed) fills it
 * when it returns a status other than VMS_OK: the status and a one-line message that
 * names what was wrong and what was expected.
 */
typedef struct vms_err {
    vms_status status;
    char msg[256];
} vms_err;

/*
 * The allocator hook (Lua's lua_Alloc): every host allocation of the library goes
 * through it. realloc(ud, NULL, 0, n) allocates, realloc(ud, p, old, 0) frees and returns
 * NULL, otherwise it resizes. Returning NULL for a non-zero size is a host allocation
 * failure, which the library reports as VMS_ERR_NOMEM and survives (tests inject it).
 */
typedef struct vms_allocator {
    void *(*realloc)(void *ud, void *ptr, size_t old_size, size_t new_size);
    void *ud;
} vms_allocator;

/* The default allocator (malloc/realloc/free). */
const vms_allocator *vms_allocator_default(void);

/*
 * A translation context: whose translation a TLB or walk-cache entry holds. Bits 63:32
 * name the virtual machine (Intel VPID, AMD ASID under SVM, Arm VMID; 0 for the host),
 * bits 31:0 the address space inside it (x86 PCID, RISC-V and AArch64 ASIDs, an IOMMU
 * domain id, plus any flag bit a format needs). Global entries match every address
 * space of their own VM and none of another's.
 */
typedef uint64_t vms_ctx;

static inline vms_ctx vms_ctx_make(uint32_t vm, uint32_t space)
{
    return (uint64_t)vm << 32 | space;
}

/* What a memory access does. Instruction fetches go to the iTLB, the others to the dTLB. */
typedef enum vms_access_kind {
    VMS_ACC_READ = 0,
    VMS_ACC_WRITE = 1,
    VMS_ACC_EXEC = 2,
} vms_access_kind;

/*
 * One address-only reference of a batch: len bytes (>= 1) at va, of kind
 * vms_access_kind (read, write or fetch). 16 bytes, no pointers.
 */
typedef struct vms_ref {
    uint64_t va;
    uint32_t len;
    uint8_t kind; /* vms_access_kind */
    uint8_t reserved_[3];
} vms_ref;
_Static_assert(sizeof(vms_ref) == 16, "vms_ref is 16 bytes");

/* Page sizes x86-64 maps: 4 KiB (PT leaf), 2 MiB (PD leaf), 1 GiB (PDPT leaf). */
typedef enum vms_pgsize {
    VMS_PG_4K = 0,
    VMS_PG_2M = 1,
    VMS_PG_1G = 2,
} vms_pgsize;
#define VMS_PG_NSIZES 3

/* log2 of a page size in bytes: 12, 21 or 30. */
static inline unsigned vms_pgsize_shift(vms_pgsize s)
{
    return 12u + 9u * (unsigned)s;
}

/* A page size in bytes. */
static inline uint64_t vms_pgsize_bytes(vms_pgsize s)
{
    return UINT64_C(1) << vms_pgsize_shift(s);
}

/* "4K", "2M", "1G". */
const char *vms_pgsize_name(vms_pgsize s);

/*
 * Parse an unsigned number: decimal, or hex with 0x; with allow_suffix, an optional K, M,
 * G or T (powers of 1024; "KiB"/"KB" spellings accepted). False for anything else
 * (empty, signs, junk, overflow). Used by every text front end (config, scenarios, CLI).
 */
bool vms_parse_u64(const char *s, bool allow_suffix, uint64_t *out);

/* "read", "write", "exec". */
const char *vms_access_name(vms_access_kind k);

#endif
