/*
 * native.c — vmsim's native trace format, read and written (docs/TRACE_FORMAT.md).
 *
 * A 16-byte plain header, then a payload of records, zstd-compressed unless the header
 * says raw. Each record starts with a tag byte; accesses (the bulk) pack kind and size
 * into the tag and delta-encode the address against the previous address of the same
 * kind, as a zigzag LEB128 varint, so a sequential walk costs 2 bytes a reference
 * before compression. Kernel events carry plain varints. Strings (paths) are defined
 * once by a STRING record and referred to by id. A final END record carries the event
 * count, so truncation is always detected, compressed or not. Since 1.2 a CHECK record
 * (extension tag 0x40: the CRC-32 of the payload bytes since the previous CHECK) closes
 * every block of at most 64 KiB and precedes END, so a flipped bit is an error naming the
 * block's byte offsets; older readers skip CHECK as an unknown extension.
 *
 * Invariants: ids are defined in order (1, 2, …) before use; the reader's memory does
 * not grow with the trace (only with distinct strings, capped by VMSI_MAX_*).
 */
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_createCStream_advanced: our allocator hook */
#include <zlib.h>                /* crc32 of the CHECK records */
#include <zstd.h>

#include "trace/trace_impl.h"

#define HDR_LEN   16u
#define MAJOR     1u
#define MINOR     2u /* 1.1 added EXEC (tag 0x0c); 1.2 CHECK records (tag 0x40) */
#define FLAG_ZSTD 0x1u
#define MAX_REC   96u           /* longest record other than STRING and extensions */
#define MAX_STR   4096u         /* longest string (PATH_MAX) */
#define WBUF      (64u * 1024u) /* also the largest block between CHECK records */
#define CHECK_LEN 6u            /* tag 0x40, varint 4, u32 crc32 (little-endian) */

static const uint8_t magic[8] = {0x89, 'V', 'M', 'S', 'T', 'R', '\r', '\n'};

/* Record tags (the byte every record starts with). */
enum {
    T_END = 0x00,      /* varint event count; the last record */
    T_STRING = 0x01,   /* varint len, len bytes: defines string id n + 1 */
    T_TID = 0x02,      /* varint tid: the thread of the events that follow */
    T_MAP = 0x03,      /* start, len, off, path, u8 prot, u8 flags */
    T_MMAP = 0x04,     /* addr, len, off, ret, path, u8 prot, u8 flags */
    T_MUNMAP = 0x05,   /* addr, len */
    T_MPROTECT = 0x06, /* addr, len, u8 prot */
    T_BRK = 0x07,      /* addr, ret */
    T_MADVISE = 0x08,  /* addr, len, advice */
    T_CLONE = 0x09,    /* child, u8 flags */
    T_EXIT = 0x0a,     /* zigzag status, u8 group */
    T_KWRITE = 0x0b,   /* va, len */
    T_EXEC = 0x0c,     /* path (since 1.1) */
    T_CHECK = 0x40,    /* varint 4, u32 crc32 of the payload since the last CHECK (1.2) */
    T_EXT = 0x41,      /* 0x41..0x7f: varint len, len bytes; readers skip them */
    T_ACCESS = 0x80,   /* 1kksssss: kind k, size s (0: a varint follows the address) */
};

/* ---- varints ---- */

static inline uint64_t zigzag(uint64_t d)
{
    return (d << 1) ^ (uint64_t) - (int64_t)(d >> 63);
}

static inline uint64_t unzigzag(uint64_t z)
{
    return (z >> 1) ^ (uint64_t) - (int64_t)(z & 1);
}

/* A bounded read cursor over the window; `why` is set on the first failure. */
typedef struct cur {
    const uint8_t *p, *e;
    const char *why;
} cur;

/* Decode a LEB128 varint (at most 10 bytes, the 10th 0 or 1). */
static inline uint64_t get_var(cur *c)
{
    uint64_t v = 0;
    for (unsigned sh = 0;; sh += 7) {
        if (c->p == c->e) {
            c->why = c->why ? c->why : "the payload ends inside a record";
            return 0;
        }
        uint8_t b = *c->p++;
        if (sh == 63 && b > 1) {
            c->why = c->why ? c->why : "varint overflows 64 bits";
            return 0;
        }
        v |= (uint64_t)(b & 0x7f) << sh;
        if (!(b & 0x80))
            return v;
    }
}

static inline uint8_t get_u8(cur *c)
{
    if (c->p == c->e) {
        c->why = c->why ? c->why : "the payload ends inside a record";
        return 0;
    }
    return *c->p++;
}

/* A varint that must fit 32 bits. */
static uint32_t get_var32(cur *c, const char *what)
{
    uint64_t v = get_var(c);
    if (v > UINT32_MAX && !c->why)
        c->why = what;
    return (uint32_t)v;
}

/* ---- reading ---- */

/* Fail with "pre why" at the record starting at the window's current byte. */
static bool fail_here(vms_trace_reader *r, const char *pre, const char *why)
{
    return vmsi_fail_byte(r, r->obase + vmsi_in_offset(r->in), VMS_ERR_PARSE, "%s%s", pre, why);
}

/* Fold the taken-but-unhashed window bytes into the block's CRC. Called before the window
 * moves (a fill) and before a CHECK compares: one crc32 call per run of records rather
 * than one per record. */
static void crc_flush(vms_trace_reader *r)
{
    if (r->crc_npend)
        r->crc = (uint32_t)crc32_z(r->crc, r->crc_pend, r->crc_npend);
    r->crc_npend = 0;
}

/* vmsi_in_fill, after hashing what the window is about to drop. */
static vms_status fill(vms_trace_reader *r, size_t need)
{
    crc_flush(r);
    return vmsi_in_fill(r->in, need, &r->err);
}

/* Consume n window bytes, adding them to the running block checksum (1.2 traces; 1.0
 * and 1.1 carry none, so nothing is hashed). A 1.2 trace must close each block with a
 * CHECK record: more than WBUF bytes without one is an error. */
static bool take_checked(vms_trace_reader *r, size_t n)
{
    const uint8_t *p = vmsi_in_ptr(r->in);
    if (r->crc_npend && r->crc_pend + r->crc_npend != p)
        crc_flush(r); /* not contiguous: an unhashed take came between */
    if (!r->crc_npend)
        r->crc_pend = p;
    r->crc_npend += n;
    r->crc_len += n;
    vmsi_in_take(r->in, n);
    if (r->crc_len > WBUF)
        return fail_here(r, "", "no CHECK record closes the block (corrupted trace?)");
    return true;
}

static inline bool take(vms_trace_reader *r, size_t n)
{
    if (r->minor >= 2)
        return take_checked(r, n);
    vmsi_in_take(r->in, n);
    return true;
}

/* A CHECK record (its tag and length parsed up to c): compare the stored CRC-32 with the
 * one of the block, then start a new block. */
static bool get_check(vms_trace_reader *r, cur *c)
{
    uint32_t want = 0;
    for (unsigned i = 0; i < 4; i++)
        want |= (uint32_t)get_u8(c) << (8 * i);
    if (c->why)
        return fail_here(r, "CHECK record: ", c->why);
    crc_flush(r);
    if (want != r->crc) {
        uint64_t at = r->obase + vmsi_in_offset(r->in);
        return vmsi_fail_byte(r, at, VMS_ERR_PARSE,
                              "checksum mismatch: bytes %llu..%llu are corrupted "
                              "(CRC-32 0x%08x stored, 0x%08x computed)",
                              (unsigned long long)(at - r->crc_len), (unsigned long long)(at - 1),
                              (unsigned)want, (unsigned)r->crc);
    }
    vmsi_in_take(r->in, (size_t)(c->p - vmsi_in_ptr(r->in)));
    r->crc = 0;
    r->crc_len = 0;
    return true;
}

/* Decode an access record (tag 1kksssss) into ev. */
static void get_access(vms_trace_reader *r, uint8_t tag, cur *c, vms_trace_event *ev)
{
    unsigned kind = (tag >> 5) & 3u;
    uint64_t va = r->prev[kind] + unzigzag(get_var(c));
    uint64_t size = tag & 31u;
    if (size == 0) {
        size = get_var(c);
        if ((size == 0 || size > UINT32_MAX) && !c->why)
            c->why = "access size must be 1..4294967295";
    }
    r->prev[kind] = va;
    ev->type = VMS_TEV_ACCESS;
    ev->access.va = va;
    ev->access.size = (uint32_t)size;
    ev->access.kind = (uint8_t)kind;
}

/* Decode the kernel event with tag `tag` (T_MAP..T_EXEC) into ev. */
static void get_kernel(uint8_t tag, cur *c, vms_trace_event *ev)
{
    ev->type = (uint8_t)(tag - T_MAP + VMS_TEV_MAP);
    switch (tag) {
    case T_MAP:
        ev->map.start = get_var(c);
        ev->map.end = ev->map.start + get_var(c);
        if (ev->map.end < ev->map.start && !c->why)
            c->why = "map end beyond 2^64";
        ev->map.off = get_var(c);
        ev->map.path = get_var32(c, "path id above 2^32");
        ev->map.prot = get_u8(c);
        ev->map.flags = get_u8(c);
        break;
    case T_MMAP:
        ev->mmap.addr = get_var(c);
        ev->mmap.len = get_var(c);
        ev->mmap.off = get_var(c);
        ev->mmap.ret = get_var(c);
        ev->mmap.path = get_var32(c, "path id above 2^32");
        ev->mmap.prot = get_u8(c);
        ev->mmap.flags = get_u8(c);
        break;
    case T_MPROTECT:
        ev->mprotect.addr = get_var(c);
        ev->mprotect.len = get_var(c);
        ev->mprotect.prot = get_u8(c);
        break;
    case T_MADVISE:
        ev->madvise.addr = get_var(c);
        ev->madvise.len = get_var(c);
        ev->madvise.advice = get_var32(c, "advice above 2^32");
        break;
    case T_CLONE:
        ev->clone.child = get_var32(c, "child id above 2^32");
        ev->clone.flags = get_u8(c);
        break;
    case T_EXEC:
        ev->exec.path = get_var32(c, "path id above 2^32");
        break;
    case T_EXIT: {
        int64_t status = (int64_t)unzigzag(get_var(c));
        if ((status < INT32_MIN || status > INT32_MAX) && !c->why)
            c->why = "exit status outside 32 bits";
        ev->exit.status = (int32_t)status;
        ev->exit.group = get_u8(c);
    } break;
    default: /* T_MUNMAP, T_BRK, T_KWRITE: two varints (munmap, brk, kwrite alike) */
        ev->munmap.addr = get_var(c);
        ev->munmap.len = get_var(c);
    }
}

/* Define the string of a STRING record whose header was parsed up to c. */
static bool get_string(vms_trace_reader *r, cur *c)
{
    uint64_t len = get_var(c);
    if (c->why)
        return fail_here(r, "STRING record: ", c->why);
    if (len > MAX_STR)
        return fail_here(r, "", "STRING record longer than 4096 bytes");
    size_t hdr = (size_t)(c->p - vmsi_in_ptr(r->in));
    if (fill(r, hdr + (size_t)len) != VMS_OK)
        return false;
    if (vmsi_in_avail(r->in) < hdr + len)
        return fail_here(r, "", "the payload ends inside a STRING record");
    const char *s = (const char *)vmsi_in_ptr(r->in) + hdr;
    if (memchr(s, '\0', (size_t)len))
        return fail_here(r, "", "NUL byte inside a STRING record");
    vms_status st = vmsi_strtab_add(&r->strs, r->a, s, (size_t)len);
    if (st != VMS_OK)
        return fail_here(r, "",
                         st == VMS_ERR_NOMEM ? "out of memory for strings"
                                             : "too many strings (limit 2^20, 64 MiB)");
    return take(r, hdr + (size_t)len);
}

/* Skip an extension record (tags 0x40..0x7f) whose header was parsed up to c. */
static bool skip_ext(vms_trace_reader *r, cur *c)
{
    uint64_t len = get_var(c);
    if (c->why)
        return fail_here(r, "extension record: ", c->why);
    if (!take(r, (size_t)(c->p - vmsi_in_ptr(r->in))))
        return false;
    while (len > 0) {
        if (fill(r, VMSI_WIN) != VMS_OK)
            return false;
        size_t n = vmsi_in_avail(r->in);
        if (n == 0)
            return fail_here(r, "", "the payload ends inside an extension record");
        n = n < len ? n : (size_t)len;
        if (!take(r, n))
            return false;
        len -= n;
    }
    return true;
}

/* The END record: check the count and that nothing follows. */
static bool get_end(vms_trace_reader *r, cur *c)
{
    if (r->minor >= 2 && r->crc_len)
        return fail_here(r, "", "END record without a CHECK record before it (corrupted trace?)");
    uint64_t n = get_var(c);
    if (c->why)
        return fail_here(r, "END record: ", c->why);
    if (n != r->count) {
        char msg[96];
        snprintf(msg, sizeof msg, "END record counts %llu events, the trace held %llu",
                 (unsigned long long)n, (unsigned long long)r->count);
        return fail_here(r, "", msg);
    }
    vmsi_in_take(r->in, (size_t)(c->p - vmsi_in_ptr(r->in)));
    if (fill(r, 1) != VMS_OK)
        return false;
    if (vmsi_in_avail(r->in))
        return fail_here(r, "", "data after the END record");
    r->ended = true;
    return false;
}

/* Handle one non-event record (END, STRING, TID, extensions); false stops reading. */
static bool meta_record(vms_trace_reader *r, uint8_t tag, cur *c)
{
    if (tag == T_END)
        return get_end(r, c);
    if (tag == T_STRING)
        return get_string(r, c);
    if (tag == T_CHECK) {
        if (get_var(c) != 4 || c->why)
            return fail_here(r, "", "CHECK record: expected length 4");
        return get_check(r, c);
    }
    if (tag >= T_EXT)
        return skip_ext(r, c);
    if (tag != T_TID) {
        char msg[64];
        snprintf(msg, sizeof msg, "unknown record tag 0x%02x (0x0d..0x3f are reserved)", tag);
        return fail_here(r, "", msg);
    }
    uint32_t tid = get_var32(c, "tid above 2^32");
    if (c->why)
        return fail_here(r, "TID record: ", c->why);
    r->tid = tid;
    return take(r, (size_t)(c->p - vmsi_in_ptr(r->in)));
}

static bool native_next(vms_trace_reader *r, vms_trace_event *ev)
{
    while (!r->ended) {
        if (vmsi_in_avail(r->in) < MAX_REC && fill(r, MAX_REC) != VMS_OK)
            return false;
        size_t n = vmsi_in_avail(r->in);
        if (n == 0)
            return fail_here(r, "", "the trace ends without its END record (truncated?)");
        const uint8_t *p = vmsi_in_ptr(r->in);
        cur c = {p + 1, p + n, NULL};
        uint8_t tag = p[0];
        if (!(tag & T_ACCESS) && (tag < T_MAP || tag > T_EXEC)) {
            if (!meta_record(r, tag, &c))
                return false;
            continue;
        }
        memset(ev, 0, sizeof *ev);
        ev->tid = r->tid;
        if (tag & T_ACCESS)
            get_access(r, tag, &c, ev);
        else
            get_kernel(tag, &c, ev);
        char why[64];
        if (c.why)
            return fail_here(r, "", c.why);
        if (ev->type != VMS_TEV_ACCESS && !vmsi_event_valid(ev, r->strs.n, why, sizeof why))
            return fail_here(r, "", why);
        return take(r, (size_t)(c.p - p));
    }
    return false;
}

/* The longest access record the batch decoder takes: tag, a 10-byte address varint and a
 * 10-byte size varint. */
#define ACC_MAX 21u

/* A varint of at most 9 bytes at *p (the batch decoder's: it leaves the rare longer
 * ones, and their overflow check, to get_var); false, *p unchanged, otherwise. */
static inline __attribute__((always_inline)) bool fast_var(const uint8_t **p, uint64_t *v)
{
    const uint8_t *s = *p;
    uint64_t b = s[0];
    if (!(b & 0x80)) { /* most deltas: one byte */
        *v = b;
        *p = s + 1;
        return true;
    }
    uint64_t x = b & 0x7f;
    for (unsigned i = 1; i < 9; i++) {
        b = s[i];
        x |= (b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *v = x;
            *p = s + i + 1;
            return true;
        }
    }
    return false;
}

/*
 * The batch decoder's tables, by tag byte. A "short" record is the common one: an access
 * of kind read, write or fetch (tags 0x80..0xdf) with its size 1..31 in the tag and an
 * address delta of one varint byte (zigzag 0..127: |delta| <= 64). For its tag:
 *   short_ref[tag]  the vms_ref's len | kind << 32 (vmsi_put_ref's second word), 0 for
 *                   any other tag (not an access, a modify, size 0 in the tag);
 *   short_sum[tag]  what the record adds to the packed sums below;
 * and short_delta[z] is the delta of the one-byte zigzag varint z.
 *
 * The packed sums (one add a record, unpacked once per window pass, which holds at most
 * VMSI_WIN / 2 = 32,768 records): bits 0..20 the bytes (<= 31 a record: < 2^21), bits
 * 21..37 the reads and 38..54 the writes (< 2^17 each); fetches are the rest.
 */
#define SUM_READ_SHIFT         21
#define SUM_WRITE_SHIFT        38
#define SUM_FIELD(v, sh, bits) (((v) >> (sh)) & ((UINT64_C(1) << (bits)) - 1))
_Static_assert(VMSI_WIN / 2 < (1u << 17) && 31u * (VMSI_WIN / 2) < (1u << 21), "packed sums");

#define SHORT_OK(t)  ((t) >= 0x80 && (t) < 0xe0 && ((t)&31) != 0)
#define SHORT_REF(t) (SHORT_OK(t) ? (uint64_t)((t)&31) | (uint64_t)(((t) >> 5) & 3) << 32 : 0)
#define SHORT_SUM(t)                                                                               \
    (SHORT_OK(t) ? (uint64_t)((t)&31) | (uint64_t)((((t) >> 5) & 3) == 0) << SUM_READ_SHIFT |      \
                       (uint64_t)((((t) >> 5) & 3) == 1) << SUM_WRITE_SHIFT                        \
                 : 0)
#define SHORT_DELTA(z) ((z)&1 ? -(int64_t)(((z) >> 1) + 1) : (int64_t)((z) >> 1))
#define T4(F, t)       F(t), F((t) + 1), F((t) + 2), F((t) + 3)
#define T16(F, t)      T4(F, t), T4(F, (t) + 4), T4(F, (t) + 8), T4(F, (t) + 12)
#define T64(F, t)      T16(F, t), T16(F, (t) + 16), T16(F, (t) + 32), T16(F, (t) + 48)
static const struct {
    uint64_t ref[256], sum[256]; /* (one table: one base register in the loop) */
    int64_t delta[128];
} short_tab = {{T64(SHORT_REF, 0), T64(SHORT_REF, 64), T64(SHORT_REF, 128), T64(SHORT_REF, 192)},
               {T64(SHORT_SUM, 0), T64(SHORT_SUM, 64), T64(SHORT_SUM, 128), T64(SHORT_SUM, 192)},
               {T64(SHORT_DELTA, 0), T64(SHORT_DELTA, 64)}};

/* gcc's straight-line vectoriser would pair the two 8-byte stores of a reference through
 * an SSE register (three instructions more a record). */
#if defined(__GNUC__) && !defined(__clang__)
#define NO_SLP __attribute__((optimize("no-tree-slp-vectorize")))
#else
#define NO_SLP
#endif

/*
 * The varint at s if it has at most 8 bytes, without a branch per byte: the first byte
 * without its continuation bit ends it; the 7-bit groups are packed in three steps.
 * Returns its length (1..8) and the value in *v, or 0 for a longer one. s[0, 8) must be
 * readable. Little-endian hosts only (the word's first byte is its lowest).
 */
static inline unsigned long_var(const uint8_t *s, uint64_t *v)
{
    uint64_t w;
    memcpy(&w, s, sizeof w);
    uint64_t stop = ~w & VMSI_B80; /* bit 7 of every byte that ends a varint */
    if (!stop)
        return 0;
    uint64_t last = stop & -stop;                                      /* bit 7 of the first */
    uint64_t x = w & ((last << 1) - 1) & UINT64_C(0x7f7f7f7f7f7f7f7f); /* (8 bytes: all) */
    x = (x & UINT64_C(0x007f007f007f007f)) | (x & UINT64_C(0x7f007f007f007f00)) >> 1;
    x = (x & UINT64_C(0x00003fff00003fff)) | (x & UINT64_C(0x3fff00003fff0000)) >> 2;
    x = (x & UINT64_C(0x000000000fffffff)) | (x & UINT64_C(0x0fffffff00000000)) >> 4;
    *v = x;
    return ((unsigned)__builtin_ctzll(stop) >> 3) + 1;
}

/*
 * vms_trace_read_refs for native traces: decodes access records of kinds read, write
 * and fetch while the thread is tid, straight from the window into refs. Anything else —
 * another record, a modify, a varint of 10 bytes, a size of 0 or above 2^32, a record
 * that starts less than ACC_MAX bytes before the end of the block's CHECK budget (so
 * that none can overrun it), the last ACC_MAX bytes of the payload — stops the run
 * before it, for native_next to decode (and report) as it always does. A short record
 * (the tables above) takes three table loads; the others decode as native_next would.
 */
NO_SLP static size_t native_refs(vms_trace_reader *r, uint32_t tid, vms_ref *refs, size_t max,
                                 vmsi_ref_sums *sum)
{
    if (tid != r->tid || r->ended)
        return 0;
    uint64_t prev[4]; /* in registers: refs cannot alias them */
    memcpy(prev, r->prev, sizeof prev);
    uint64_t bytes = 0, by[3] = {0, 0, 0};
    vms_ref *o = refs, *const oend = refs + max;
    while (o < oend) {
        if (vmsi_in_avail(r->in) < MAX_REC && fill(r, MAX_REC) != VMS_OK)
            break;
        size_t avail = vmsi_in_avail(r->in);
        if (avail < ACC_MAX)
            break; /* the tail: record by record */
        /* Records start at p0[0, room]; a 1.2 block holds at most WBUF bytes between CHECK
         * records, so only those at p0[0, budget - ACC_MAX] surely fit it. */
        const uint8_t *p0 = vmsi_in_ptr(r->in), *p = p0;
        size_t room = avail - ACC_MAX, budget = r->minor >= 2 ? WBUF - r->crc_len : SIZE_MAX;
        bool more = budget >= ACC_MAX && budget - ACC_MAX >= room; /* the window's end is ours */
        size_t nrec = budget < ACC_MAX ? 0 : more ? room + 1 : budget - ACC_MAX + 1;
        const uint8_t *const end = p0 + nrec;
        uint64_t acc = 0; /* the short records' packed sums */
        size_t nlong = 0; /* the other records (counted in by[] directly) */
        vms_ref *const o0 = o;
        while (p < end && o < oend) {
            /* Short records (2 bytes each) first: the next k of them start before end. */
            size_t k = (size_t)(end - p + 1) / 2, left = (size_t)(oend - o);
            vms_ref *ostop = o + (k < left ? k : left);
            while (o < ostop) {
                size_t tag = p[0], z0 = p[1];
                uint64_t lk = short_tab.ref[tag];
                if (!lk)
                    goto other;
                if (z0 < 0x80) {
                    size_t kind = (size_t)(lk >> 32);
                    uint64_t va = prev[kind] + (uint64_t)short_tab.delta[z0];
                    prev[kind] = va;
                    o->va = va;
                    memcpy((unsigned char *)o + 8, &lk, sizeof lk); /* (vmsi_put_ref's layout) */
                    o++;
                    acc += short_tab.sum[tag];
                    p += 2;
                    continue;
                }
                size_t z1 = p[2];
                if (z1 < 0x80) { /* a delta of two varint bytes: one record fewer fits */
                    size_t kind = (size_t)(lk >> 32);
                    uint64_t va = prev[kind] + unzigzag((z0 & 0x7f) | z1 << 7);
                    prev[kind] = va;
                    o->va = va;
                    memcpy((unsigned char *)o + 8, &lk, sizeof lk);
                    o++;
                    acc += short_tab.sum[tag];
                    p += 3;
                    ostop--; /* (still >= o) */
                    continue;
                }
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                /* A delta of 3..8 varint bytes, as one word. The record takes nb - 1 bytes
                 * more than a short one, so nb / 2 fewer records surely start before end
                 * (the next round starts afresh when none would). */
                uint64_t z;
                unsigned nb = long_var(p + 1, &z);
                if (!nb || (size_t)(ostop - o) < nb / 2)
                    goto other;
                ostop -= nb / 2;
                size_t kind = (size_t)(lk >> 32);
                uint64_t va = prev[kind] + unzigzag(z);
                prev[kind] = va;
                o->va = va;
                memcpy((unsigned char *)o + 8, &lk, sizeof lk);
                o++;
                acc += short_tab.sum[tag];
                p += 1 + nb;
#else
                goto other;
#endif
            }
            continue;
        other:
            __asm__ volatile("" ::: "memory"); /* re-read the tag: no copies kept for here */
            unsigned tag = p[0];
            if (tag - T_ACCESS >= 0x60u) /* not an access (below 0x80), or a modify (0xe0..) */
                break;
            unsigned kind = (tag >> 5) & 3u;
            const uint8_t *q = p + 1;
            uint64_t z, size = tag & 31u;
            if (!fast_var(&q, &z))
                break;
            if (size == 0 && (!fast_var(&q, &size) || size == 0 || size > UINT32_MAX))
                break;
            uint64_t va = prev[kind] + unzigzag(z);
            prev[kind] = va;
            vmsi_put_ref(o++, va, (uint32_t)size, kind);
            bytes += size;
            by[kind]++;
            nlong++;
            p = q;
        }
        uint64_t nrd = SUM_FIELD(acc, SUM_READ_SHIFT, 17),
                 nwr = SUM_FIELD(acc, SUM_WRITE_SHIFT, 17);
        bytes += SUM_FIELD(acc, 0, 21);
        by[0] += nrd;
        by[1] += nwr;
        by[2] += (uint64_t)(o - o0) - nlong - nrd - nwr;
        if (p > p0)
            take(r, (size_t)(p - p0)); /* within the budget: cannot fail */
        if (!more || p < end)
            break; /* (or refs is full) */
    }
    memcpy(r->prev, prev, sizeof prev);
    sum->bytes += bytes;
    for (unsigned k = 0; k < 3; k++)
        sum->by_kind[k] += by[k];
    return (size_t)(o - refs);
}

vms_status vmsi_native_start(vms_trace_reader *r)
{
    if (fill(r, HDR_LEN) != VMS_OK)
        return r->err.status;
    const uint8_t *h = vmsi_in_ptr(r->in);
    if (vmsi_in_avail(r->in) < HDR_LEN || memcmp(h, magic, 8) != 0) {
        vmsi_fail_byte(r, 0, VMS_ERR_PARSE,
                       "not a native vmsim trace: expected the 16-byte "
                       "header starting \\x89VMSTR\\r\\n");
        return r->err.status;
    }
    unsigned major = h[8] | (unsigned)h[9] << 8, minor = h[10] | (unsigned)h[11] << 8;
    uint32_t flags = h[12] | (uint32_t)h[13] << 8 | (uint32_t)h[14] << 16 | (uint32_t)h[15] << 24;
    if (major != MAJOR) {
        vmsi_fail_byte(r, 8, VMS_ERR_UNSUPPORTED,
                       "native trace version %u.%u: this vmsim reads version %u.x only%s", major,
                       minor, MAJOR, major > MAJOR ? " (written by a newer vmsim)" : "");
        return r->err.status;
    }
    if (flags & ~FLAG_ZSTD) {
        vmsi_fail_byte(r, 12, VMS_ERR_UNSUPPORTED, "unknown header flags 0x%x", flags);
        return r->err.status;
    }
    vmsi_in_take(r->in, HDR_LEN);
    r->minor = minor;
    if (flags & FLAG_ZSTD) {
        vms_status st = vmsi_in_push(r->in, VMSI_CODEC_ZSTD, &r->payload, &r->err);
        if (st != VMS_OK)
            return st;
        /* Cap the window a hostile header can demand: 2^23 = 8 MiB (zstd -19 uses 2^23). */
        ZSTD_DCtx_setParameter(r->payload->z, ZSTD_d_windowLogMax, 23);
        r->in = r->payload;
        r->obase = HDR_LEN;
    }
    r->next = native_next;
    r->next_refs = native_refs;
    return VMS_OK;
}

/* ---- writing ---- */

static inline uint8_t *put_var(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* Close the block buf[0, len) with a CHECK record (the buffer has CHECK_LEN spare bytes
 * beyond WBUF for it). */
static void put_check(vms_trace_writer *w)
{
    uint32_t crc = (uint32_t)crc32_z(0, w->buf, w->len);
    uint8_t *p = w->buf + w->len;
    *p++ = T_CHECK;
    *p++ = 4;
    for (unsigned i = 0; i < 4; i++)
        *p++ = (uint8_t)(crc >> (8 * i));
    w->len += CHECK_LEN;
}

/* Compress (or copy) buf[0, len) to the file; `end` finishes the zstd frame. */
static vms_status flush(vms_trace_writer *w, bool end)
{
    if (!w->zc) {
        vms_status st = vmsi_wfile(w, w->buf, w->len);
        w->len = 0;
        return st;
    }
    ZSTD_inBuffer in = {w->buf, w->len, 0};
    size_t left;
    do {
        ZSTD_outBuffer out = {w->zbuf, w->zcap, 0};
        left = ZSTD_compressStream2(w->zc, &out, &in, end ? ZSTD_e_end : ZSTD_e_continue);
        if (ZSTD_isError(left))
            return vmsi_wfail(w, VMS_ERR_IO, "zstd: %s", ZSTD_getErrorName(left));
        vms_status st = vmsi_wfile(w, w->zbuf, out.pos);
        if (st != VMS_OK)
            return st;
    } while (in.pos < in.size || (end && left != 0));
    w->len = 0;
    return VMS_OK;
}

/* Make room for n more bytes in buf. */
static vms_status room(vms_trace_writer *w, size_t n)
{
    if (w->len + n <= WBUF)
        return VMS_OK;
    put_check(w);
    return flush(w, false);
}

static void *zs_alloc(void *ud, size_t n)
{
    return vmsi_sized_alloc(ud, n);
}

static void zs_free(void *ud, void *p)
{
    vmsi_sized_free(ud, p);
}

vms_status vmsi_native_wopen(vms_trace_writer *w, const vms_trace_writer_opts *o)
{
    bool raw = o && o->raw;
    int level = o && o->zstd_level ? o->zstd_level : 3;
    uint8_t h[HDR_LEN] = {0};
    memcpy(h, magic, 8);
    h[8] = MAJOR;
    h[10] = MINOR;
    h[12] = (uint8_t)(raw ? 0 : FLAG_ZSTD);
    w->buf = vmsi_alloc(w->a, WBUF + CHECK_LEN);
    if (!w->buf)
        return vmsi_wfail(w, VMS_ERR_NOMEM, "out of memory for the write buffer");
    if (!raw) {
        ZSTD_customMem cm = {zs_alloc, zs_free, (void *)(uintptr_t)w->a};
        w->zc = ZSTD_createCStream_advanced(cm);
        w->zcap = ZSTD_CStreamOutSize();
        w->zbuf = vmsi_alloc(w->a, w->zcap);
        if (!w->zc || !w->zbuf)
            return vmsi_wfail(w, VMS_ERR_NOMEM, "out of memory for the zstd encoder");
        ZSTD_CCtx_setParameter(w->zc, ZSTD_c_checksumFlag, 1); /* zstd's own XXH64 too */
        if (ZSTD_isError(ZSTD_CCtx_setParameter(w->zc, ZSTD_c_compressionLevel, level)))
            return vmsi_wfail(w, VMS_ERR_INVAL, "zstd level %d: expected 1..19", level);
    }
    return vmsi_wfile(w, h, HDR_LEN);
}

vms_status vmsi_native_wstring(vms_trace_writer *w, uint32_t id, const char *s, size_t len)
{
    (void)id; /* ids are implicit: the n-th STRING record defines id n */
    if (len > MAX_STR)
        return vmsi_wfail(w, VMS_ERR_INVAL, "string longer than 4096 bytes");
    vms_status st = room(w, len + 16);
    if (st != VMS_OK)
        return st;
    uint8_t *p = w->buf + w->len;
    *p++ = T_STRING;
    p = put_var(p, len);
    memcpy(p, s, len);
    w->len = (size_t)(p + len - w->buf);
    return VMS_OK;
}

/* Encode an access record at p; returns the end. */
static uint8_t *put_access(vms_trace_writer *w, uint8_t *p, const vms_trace_event *ev)
{
    unsigned kind = ev->access.kind;
    uint32_t size = ev->access.size;
    *p++ = (uint8_t)(T_ACCESS | kind << 5 | (size < 32 ? size : 0));
    p = put_var(p, zigzag(ev->access.va - w->prev[kind]));
    w->prev[kind] = ev->access.va;
    return size < 32 ? p : put_var(p, size);
}

/* Encode a kernel event at p; returns the end. */
static uint8_t *put_kernel(uint8_t *p, const vms_trace_event *ev)
{
    *p++ = (uint8_t)(T_MAP + ev->type - VMS_TEV_MAP);
    switch (ev->type) {
    case VMS_TEV_MAP:
        p = put_var(put_var(p, ev->map.start), ev->map.end - ev->map.start);
        p = put_var(put_var(p, ev->map.off), ev->map.path);
        *p++ = ev->map.prot;
        *p++ = ev->map.flags;
        return p;
    case VMS_TEV_MMAP:
        p = put_var(put_var(p, ev->mmap.addr), ev->mmap.len);
        p = put_var(put_var(p, ev->mmap.off), ev->mmap.ret);
        p = put_var(p, ev->mmap.path);
        *p++ = ev->mmap.prot;
        *p++ = ev->mmap.flags;
        return p;
    case VMS_TEV_MPROTECT:
        p = put_var(put_var(p, ev->mprotect.addr), ev->mprotect.len);
        *p++ = ev->mprotect.prot;
        return p;
    case VMS_TEV_MADVISE:
        return put_var(put_var(put_var(p, ev->madvise.addr), ev->madvise.len), ev->madvise.advice);
    case VMS_TEV_CLONE:
        p = put_var(p, ev->clone.child);
        *p++ = ev->clone.flags;
        return p;
    case VMS_TEV_EXEC:
        return put_var(p, ev->exec.path);
    case VMS_TEV_EXIT:
        p = put_var(p, zigzag((uint64_t)(int64_t)ev->exit.status));
        *p++ = ev->exit.group;
        return p;
    default: /* munmap, brk, kwrite: two u64 in the same place */
        return put_var(put_var(p, ev->munmap.addr), ev->munmap.len);
    }
}

vms_status vmsi_native_write(vms_trace_writer *w, const vms_trace_event *ev)
{
    vms_status st = room(w, MAX_REC + 16);
    if (st != VMS_OK)
        return st;
    uint8_t *p = w->buf + w->len;
    if (ev->tid != w->tid) {
        *p++ = T_TID;
        p = put_var(p, ev->tid);
        w->tid = ev->tid;
    }
    p = ev->type == VMS_TEV_ACCESS ? put_access(w, p, ev) : put_kernel(p, ev);
    w->len = (size_t)(p - w->buf);
    w->nevents++;
    return VMS_OK;
}

vms_status vmsi_native_wclose(vms_trace_writer *w)
{
    vms_status st = room(w, CHECK_LEN + 16);
    if (st != VMS_OK)
        return st;
    put_check(w);
    uint8_t *p = w->buf + w->len;
    *p++ = T_END;
    p = put_var(p, w->nevents);
    w->len = (size_t)(p - w->buf);
    return flush(w, true);
}

void vmsi_native_wfree(vms_trace_writer *w)
{
    ZSTD_freeCStream(w->zc);
    vmsi_free(w->a, w->zbuf, w->zcap);
    vmsi_free(w->a, w->buf, WBUF + CHECK_LEN);
}
