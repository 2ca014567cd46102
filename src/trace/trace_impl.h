/*
 * trace_impl.h — internals shared by the trace readers and writers (prefix vmsi_).
 *
 * Input is a chain of byte stages, each with a bounded window (VMSI_WIN bytes):
 *
 *   file or memory ──► [gzip | xz | zstd decoder] ──► [native payload zstd decoder]
 *        raw stage         optional, by magic             native format only
 *
 * A format parser reads the last stage's window: vmsi_in_fill() makes `need` bytes
 * available (fewer only at the end), vmsi_in_take() consumes them. Offsets count the
 * stage's own (uncompressed) bytes, which is what error messages report.
 * Memory is constant: windows and codec states are allocated once at open.
 */
#ifndef VMSIM_TRACE_IMPL_H
#define VMSIM_TRACE_IMPL_H

#include <stdio.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "replay/batch.h" /* vmsi_ref_sums */
#include "util/util.h"
#include "vmsim/trace.h"

#define VMSI_WIN          (64u * 1024u) /* window of each input stage */
#define VMSI_MAX_LINE     4096u         /* longest text line a reader accepts */
#define VMSI_MAX_STRINGS  (1u << 20)    /* interned strings per trace */
#define VMSI_MAX_STRBYTES (64u << 20)   /* their total bytes */

typedef enum vmsi_codec {
    VMSI_CODEC_NONE = 0,
    VMSI_CODEC_GZIP,
    VMSI_CODEC_XZ,
    VMSI_CODEC_ZSTD,
} vmsi_codec;

typedef struct vmsi_in vmsi_in;
struct vmsi_in {
    const vms_allocator *a;
    const char *name;   /* borrowed: the reader's file name, for messages */
    vmsi_in *up;        /* decoders: the stage holding the compressed bytes */
    FILE *f;            /* raw stage over a file (NULL: over memory) */
    bool own_f;         /* fclose at free (not stdin) */
    const uint8_t *mem; /* raw stage over memory */
    size_t memlen;
    vmsi_codec codec;
    void *z;      /* the decoder's state */
    size_t zlast; /* zstd: the last ZSTD_decompressStream hint (0: frame done) */
    bool zend;    /* gzip/xz: the decoder reported the end of its stream */
    uint8_t *buf; /* window buf[pos, end), VMSI_WIN bytes */
    size_t pos, end;
    uint64_t base; /* stage offset of buf[0] */
    bool eof;      /* nothing follows buf[end] */
};

/* Open a raw stage over a file ("-": stdin); name (borrowed) is used in messages.
 * On failure *out is NULL and err says why. */
vms_status vmsi_in_open_file(const vms_allocator *a, const char *path, const char *name,
                             vmsi_in **out, vms_err *err);

/* Open a raw stage over borrowed memory. */
vms_status vmsi_in_open_mem(const vms_allocator *a, const void *data, size_t len, const char *name,
                            vmsi_in **out, vms_err *err);

/* Push a decoding stage of codec c (not NONE) over up (borrowed; freed by the caller). */
vms_status vmsi_in_push(vmsi_in *up, vmsi_codec c, vmsi_in **out, vms_err *err);

/* Free a stage (not its upstream); s may be NULL. */
void vmsi_in_free(vmsi_in *s);

/* Make at least `need` (<= VMSI_WIN) bytes available unless the stream ends first. */
vms_status vmsi_in_fill(vmsi_in *s, size_t need, vms_err *err);

/* Bytes available in the window. */
static inline size_t vmsi_in_avail(const vmsi_in *s)
{
    return s->end - s->pos;
}

/* The window's first available byte. */
static inline const uint8_t *vmsi_in_ptr(const vmsi_in *s)
{
    return s->buf + s->pos;
}

/* Consume n available bytes. */
static inline void vmsi_in_take(vmsi_in *s, size_t n)
{
    s->pos += n;
}

/* Stage offset of the next unconsumed byte. */
static inline uint64_t vmsi_in_offset(const vmsi_in *s)
{
    return s->base + s->pos;
}

/* The codec whose magic bytes start p[0, n), or VMSI_CODEC_NONE. */
vmsi_codec vmsi_codec_sniff(const uint8_t *p, size_t n);

/* "gzip", "xz", "zstd", "plain". */
const char *vmsi_codec_name(vmsi_codec c);

/* Allocator bridge for codec libraries whose free() gets no size: a 16-byte header
 * before each block remembers it. */
void *vmsi_sized_alloc(const vms_allocator *a, size_t n);
void vmsi_sized_free(const vms_allocator *a, void *p);

/* ---- strings ---- */

/* Interned strings: one arena of NUL-terminated strings and their offsets; id i >= 1 is
 * offs[i - 1]. Grows with distinct strings only (bounded by VMSI_MAX_*). */
typedef struct vmsi_strtab {
    char *arena;
    size_t len, cap;
    uint32_t *offs;
    uint32_t n, ncap;
} vmsi_strtab;

/* Append s[0, len) as string id n + 1. VMS_ERR_NOMEM, or VMS_ERR_RANGE past the limits. */
vms_status vmsi_strtab_add(vmsi_strtab *t, const vms_allocator *a, const char *s, size_t len);

/* String `id`, or NULL. */
const char *vmsi_strtab_get(const vmsi_strtab *t, uint32_t id);

void vmsi_strtab_free(vmsi_strtab *t, const vms_allocator *a);

/* ---- the reader ---- */

typedef struct vmsi_pipe vmsi_pipe; /* a pipelined reader's thread and ring (pipe.c) */

struct vms_trace_reader {
    const vms_allocator *a;
    char *name;
    vms_trace_format fmt;
    vmsi_in *raw, *dec, *payload; /* stage chain; dec and payload may be NULL */
    vmsi_in *in;                  /* the stage the parser reads */
    bool (*next)(vms_trace_reader *r, vms_trace_event *ev); /* false: end or r->err */
    /* the batch decoder (vms_trace_read_refs): adds what it returns to *sum; NULL when the
     * format has none */
    size_t (*next_refs)(vms_trace_reader *r, uint32_t tid, vms_ref *refs, size_t max,
                        vmsi_ref_sums *sum);
    vms_err err;
    uint64_t count;
    uint64_t line; /* text formats: the current line number */
    /* ChampSim: the events of the current record not yet returned */
    vms_trace_event pend[7];
    unsigned npend, ipend;
    /* native */
    uint64_t prev[4]; /* previous address per access kind (delta base) */
    uint32_t tid;
    uint64_t obase;          /* offset of r->in's byte 0 in the uncompressed trace (messages) */
    unsigned minor;          /* the header's minor version (1.2+: CHECK records required) */
    uint32_t crc;            /* CRC-32 of the block read since the last CHECK record … */
    size_t crc_len;          /* … and its length */
    const uint8_t *crc_pend; /* taken window bytes not yet in crc (valid until a fill) */
    size_t crc_npend;
    bool ended;
    vmsi_strtab strs;
    vmsi_pipe *pipe; /* vms_trace_reader_pipeline's wrapper: its ring; NULL otherwise */
};

/* A pipelined reader's file offset (that of the chunk being read), and its closing: stop
 * and join the thread, free the ring, close the inner reader (pipe.c). */
uint64_t vmsi_pipe_file_offset(const vmsi_pipe *p);
void vmsi_pipe_close(vmsi_pipe *p, const vms_allocator *a);

/* Record a failure "NAME:LINE: msg" in r->err and return false. */
bool vmsi_fail_line(vms_trace_reader *r, vms_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Record a failure "NAME: byte OFF: msg" in r->err and return false. */
bool vmsi_fail_byte(vms_trace_reader *r, uint64_t off, vms_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Text formats: the next line (without "\n" or "\r\n"), NUL-terminated in the window, in
 * *line and *len; bumps r->line. Returns 1 with a line, 0 at the end, -1 on failure (r->err;
 * a line over VMSI_MAX_LINE bytes or a NUL byte is a parse error). The line is valid
 * until the next call.
 */
int vmsi_next_line(vms_trace_reader *r, char **line, size_t *len);

/* The value of hex digit c, or -1. */
static inline int vmsi_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20; /* lower case */
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/*
 * Parse hex digits (leading zeros allowed) at *p into *v and advance *p. Returns 1 on success, 0
 * when no digit is there, -1 when the number does not fit in 64 bits.
 */
static inline int vmsi_parse_hex(const char **p, uint64_t *v)
{
    const char *s = *p;
    uint64_t x = 0;
    int d, n = 0;
    while ((d = vmsi_hexval((unsigned char)*s)) >= 0) {
        if (x >> 60)
            return -1;
        n++;
        x = x << 4 | (uint64_t)d;
        s++;
    }
    *p = s;
    *v = x;
    return n > 0;
}

/* Hex digit values for the batch parsers: 0..15, or -1 for any other byte. */
extern const int8_t vmsi_hex_digit[256];

/* ---- the batch parsers' branch-free hex numbers (SWAR: 8 characters a word) ---- */

/* Bytes of a 64-bit word (little-endian load). */
#define VMSI_B01 UINT64_C(0x0101010101010101)
#define VMSI_B80 UINT64_C(0x8080808080808080)

/* The hex digits of the 8 bytes w holds (first byte lowest): bit 7 of each byte set for
 * '0'..'9', 'a'..'f', 'A'..'F'. Exact per byte: the sums never carry between bytes. */
static inline uint64_t vmsi_swar_hexmask(uint64_t w)
{
    uint64_t d = w & 0x7f * VMSI_B01, t = d | 0x20 * VMSI_B01; /* bit 7 apart; lower case */
    uint64_t ge0 = d + (0x80 - '0') * VMSI_B01, gt9 = d + (0x7f - '9') * VMSI_B01;
    uint64_t gea = t + (0x80 - 'a') * VMSI_B01, gtf = t + (0x7f - 'f') * VMSI_B01;
    return ((ge0 & ~gt9) | (gea & ~gtf)) & ~w & VMSI_B80;
}

/* The nibbles of the 8 characters w holds, packed: the number they spell in hex when all
 * are digits (any value otherwise). */
static inline uint64_t vmsi_swar_hex8(uint64_t w)
{
    uint64_t v = ((w & 0x0f * VMSI_B01) + ((w >> 6) & VMSI_B01) * 9) & 0x0f * VMSI_B01;
    v = ((v << 4) | (v >> 8)) & UINT64_C(0x00ff00ff00ff00ff);
    v = ((v << 8) | (v >> 16)) & UINT64_C(0x0000ffff0000ffff);
    return ((v << 16) | (v >> 32)) & UINT64_C(0xffffffff);
}

/*
 * The hex number at s: its leading digits, at most 16, without a branch per digit (16
 * bytes at s must be readable). *n receives how many digits it took (0..16).
 */
static inline uint64_t vmsi_swar_hex16(const uint8_t *s, unsigned *n)
{
    uint64_t a, b;
    memcpy(&a, s, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    a = __builtin_bswap64(a);
#endif
    uint64_t na = ~vmsi_swar_hexmask(a) & VMSI_B80;
    if (na) { /* fewer than 8 digits: this word holds them all (shifts of 0..32) */
        unsigned d = (unsigned)__builtin_ctzll(na) >> 3;
        *n = d;
        return vmsi_swar_hex8(a) >> (4 * (8 - d));
    }
    memcpy(&b, s + 8, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    b = __builtin_bswap64(b);
#endif
    uint64_t nb = ~vmsi_swar_hexmask(b) & VMSI_B80;
    unsigned d = nb ? (unsigned)__builtin_ctzll(nb) >> 3 : 8;
    *n = 8 + d;
    return vmsi_swar_hex8(a) << (4 * d) | vmsi_swar_hex8(b) >> (4 * (8 - d));
}

/*
 * vmsi_swar_hex16 with SSE2 (every x86-64): the 16 bytes at s classified at once (digit
 * or letter a-f/A-F, by signed compares of biased bytes), the digits counted from the
 * first non-digit's bit, their nibbles paired in 16-bit lanes, packed to 8 bytes and
 * byte-swapped into the number. About 25 instructions for any length, against ~60-100
 * for the word-at-a-time version. Same contract: 16 bytes at s readable; *n receives the
 * digits taken (0..16); returns the value of those digits (any value when there are
 * none).
 */
static inline uint64_t vmsi_hex16(const uint8_t *s, unsigned *n)
{
#if defined(__SSE2__)
    __m128i c = _mm_loadu_si128((const __m128i *)(const void *)s);
    /* c - '0' (biased by -128) below -118: '0'..'9'; (c | 0x20) - 'a' below -122: a..f */
    __m128i dig =
        _mm_cmplt_epi8(_mm_sub_epi8(c, _mm_set1_epi8((char)('0' + 128))), _mm_set1_epi8(-128 + 10));
    __m128i let = _mm_cmplt_epi8(
        _mm_sub_epi8(_mm_or_si128(c, _mm_set1_epi8(0x20)), _mm_set1_epi8((char)('a' + 128))),
        _mm_set1_epi8(-128 + 6));
    unsigned m = (unsigned)_mm_movemask_epi8(_mm_or_si128(dig, let));
    unsigned d = (unsigned)__builtin_ctz(~m); /* (bit 16 of ~m is set: d <= 16) */
    *n = d;
    /* nibbles: c & 15, plus 9 for a letter; lane i = digit 2i << 4 | digit 2i + 1 */
    __m128i v =
        _mm_add_epi8(_mm_and_si128(c, _mm_set1_epi8(0x0f)), _mm_and_si128(let, _mm_set1_epi8(9)));
    __m128i pr = _mm_and_si128(_mm_or_si128(_mm_slli_epi16(v, 4), _mm_srli_epi16(v, 8)),
                               _mm_set1_epi16(0x00ff));
    uint64_t q = (uint64_t)_mm_cvtsi128_si64(_mm_packus_epi16(pr, pr));
    q = __builtin_bswap64(q);        /* the first digit the highest nibble */
    return q >> ((64 - 4 * d) & 63); /* (no digit: any value) */
#else
    return vmsi_swar_hex16(s, n);
#endif
}

/* Store one reference (the batch decoders' output): on little-endian hosts len, kind and
 * the zero reserved bytes are one 8-byte store. */
static inline void vmsi_put_ref(vms_ref *o, uint64_t va, uint32_t len, unsigned kind)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    _Static_assert(offsetof(vms_ref, len) == 8 && offsetof(vms_ref, kind) == 12, "vms_ref");
    uint64_t w = (uint64_t)len | (uint64_t)kind << 32;
    o->va = va;
    memcpy((unsigned char *)o + 8, &w, sizeof w);
#else
    *o = (vms_ref){.va = va, .len = len, .kind = (uint8_t)kind};
#endif
}

/* Parsers: install r->next (and check headers) once r->in is set. */
vms_status vmsi_lackey_start(vms_trace_reader *r);
vms_status vmsi_dinero_start(vms_trace_reader *r);
vms_status vmsi_champsim_start(vms_trace_reader *r);
vms_status vmsi_native_start(vms_trace_reader *r);

/* Whether p[0, n) looks like the start of a lackey / dinero text trace. */
bool vmsi_lackey_sniff(const uint8_t *p, size_t n);
bool vmsi_dinero_sniff(const uint8_t *p, size_t n);
/* Whether the first (up to 4) 64-byte records of p[0, n) look like ChampSim's; false
 * when n < 64. Auto-detection takes binary data for ChampSim only then. */
bool vmsi_champsim_sniff(const uint8_t *p, size_t n);

/* ---- the writer ---- */

/* A format's writer hooks (formats.c); NULL hooks have nothing to do. */
typedef struct vmsi_trace_wops {
    vms_status (*open)(vms_trace_writer *w, const vms_trace_writer_opts *o);
    vms_status (*string)(vms_trace_writer *w, uint32_t id, const char *s, size_t len);
    vms_status (*write)(vms_trace_writer *w, const vms_trace_event *ev);
    vms_status (*close)(vms_trace_writer *w); /* flush the format's own buffers */
    void (*free)(vms_trace_writer *w);
    bool refs_only; /* holds memory references only: other events are refused */
} vmsi_trace_wops;

struct vms_trace_writer {
    const vms_allocator *a;
    char *name;
    vms_trace_format fmt;
    const vmsi_trace_wops *ops; /* the format's hooks (formats.c) */
    FILE *f;
    bool own_f;
    vms_err err;
    void *zc;     /* native: ZSTD_CStream (NULL when raw) */
    uint8_t *buf; /* records not yet compressed/written */
    size_t len;
    uint8_t *zbuf; /* compressed output */
    size_t zcap;
    uint64_t prev[4];
    uint32_t tid;
    uint64_t nevents;
    vmsi_strtab strs; /* interned strings (dedup by linear hash below) */
    uint32_t *hash;   /* open addressing over string ids, hcap slots */
    uint32_t hcap;
};

/* Per-format writer hooks. */
vms_status vmsi_native_wopen(vms_trace_writer *w, const vms_trace_writer_opts *o);
vms_status vmsi_native_wstring(vms_trace_writer *w, uint32_t id, const char *s, size_t len);
vms_status vmsi_native_write(vms_trace_writer *w, const vms_trace_event *ev);
vms_status vmsi_native_wclose(vms_trace_writer *w);
void vmsi_native_wfree(vms_trace_writer *w);
/* The text writers (writer.c): one event as lackey or dinero lines. */
vms_status vmsi_lackey_write(vms_trace_writer *w, const vms_trace_event *ev);
vms_status vmsi_dinero_write(vms_trace_writer *w, const vms_trace_event *ev);

/* Write n bytes to the writer's file (its error on failure). */
vms_status vmsi_wfile(vms_trace_writer *w, const void *p, size_t n);

/* Record a writer failure "NAME: msg" and return st. */
vms_status vmsi_wfail(vms_trace_writer *w, vms_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- the formats (formats.c) ---- */

/*
 * One trace format: its name (vms_trace_format_name), whether the first bytes of an
 * input are its own (NULL: never detected), the start of its parser (vmsi_*_start:
 * installs r->next once r->in is set; NULL: cannot be read), and its writer (NULL: cannot
 * be written). vmsi_trace_formats is indexed by vms_trace_format; detection tries its
 * rows in order.
 */
typedef struct vmsi_trace_fmt {
    const char *name;
    bool (*sniff)(const uint8_t *p, size_t n);
    vms_status (*open)(vms_trace_reader *r);
    const vmsi_trace_wops *writer;
} vmsi_trace_fmt;

#define VMSI_NFORMATS 5u /* rows of vmsi_trace_formats: VMS_TRACE_AUTO … CHAMPSIM */
extern const vmsi_trace_fmt vmsi_trace_formats[];

/* The row of format f, or NULL when f is out of range. */
const vmsi_trace_fmt *vmsi_trace_fmt_of(vms_trace_format f);

/* Which formats vmsi_trace_format_list names. */
typedef enum vmsi_fmt_pick {
    VMSI_FMT_ALL,      /* every name, auto included */
    VMSI_FMT_DETECTED, /* those detection recognises */
    VMSI_FMT_WRITABLE, /* those with a writer */
} vmsi_fmt_pick;

/* The names picked, in table order, as "a, b, c or d" in buf (len bytes); returns buf. */
const char *vmsi_trace_format_list(char *buf, size_t len, vmsi_fmt_pick pick);

/* Whether ev is well-formed (kinds, sizes, flag bits, path ids < npaths + 1). */
bool vmsi_event_valid(const vms_trace_event *ev, uint32_t npaths, char *why, size_t len);

#endif
