/*
 * stream.c — byte stages under the trace readers: a raw stage over a file or memory,
 * and decoding stages for gzip (zlib), xz (liblzma) and zstd (libzstd), each with a
 * fixed VMSI_WIN-byte window, so reading any trace takes constant memory.
 *
 * Compression is recognised by magic bytes (RFC 1952 gzip 1f 8b; xz FD '7zXZ' 00;
 * RFC 8878 zstd frame 28 B5 2F FD), never by the file name. Concatenated gzip members,
 * xz streams and zstd frames decode as one stream, as gzip -d, xz -d and zstd -d do.
 * A compressed stream that stops before its end is an error, not a short trace.
 */
#include <errno.h>
#include <lzma.h>
#include <zlib.h>
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_createDStream_advanced: our allocator hook */
#include <zstd.h>

#include "trace/trace_impl.h"

/* ---- allocator bridge ---- */

#define HDR 16 /* keeps the block 16-byte aligned */

void *vmsi_sized_alloc(const vms_allocator *a, size_t n)
{
    if (n > SIZE_MAX - HDR)
        return NULL;
    uint8_t *p = vmsi_alloc(a, n + HDR);
    if (!p)
        return NULL;
    memcpy(p, &n, sizeof n);
    return p + HDR;
}

void vmsi_sized_free(const vms_allocator *a, void *p)
{
    if (!p)
        return;
    uint8_t *b = (uint8_t *)p - HDR;
    size_t n;
    memcpy(&n, b, sizeof n);
    vmsi_free(a, b, n + HDR);
}

static voidpf z_alloc(voidpf ud, uInt items, uInt size)
{
    return vmsi_sized_alloc(ud, (size_t)items * size);
}

static void z_free(voidpf ud, voidpf p)
{
    vmsi_sized_free(ud, p);
}

static void *lz_alloc(void *ud, size_t nmemb, size_t size)
{
    if (size && nmemb > SIZE_MAX / size)
        return NULL;
    return vmsi_sized_alloc(ud, nmemb * size);
}

static void lz_free(void *ud, void *p)
{
    vmsi_sized_free(ud, p);
}

static void *zs_alloc(void *ud, size_t n)
{
    return vmsi_sized_alloc(ud, n);
}

static void zs_free(void *ud, void *p)
{
    vmsi_sized_free(ud, p);
}

/* ---- codecs ---- */

vmsi_codec vmsi_codec_sniff(const uint8_t *p, size_t n)
{
    static const uint8_t xz[6] = {0xfd, '7', 'z', 'X', 'Z', 0};
    if (n >= 2 && p[0] == 0x1f && p[1] == 0x8b)
        return VMSI_CODEC_GZIP;
    if (n >= 6 && memcmp(p, xz, 6) == 0)
        return VMSI_CODEC_XZ;
    if (n >= 4 && p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd)
        return VMSI_CODEC_ZSTD;
    return VMSI_CODEC_NONE;
}

const char *vmsi_codec_name(vmsi_codec c)
{
    static const char *const names[] = {"plain", "gzip", "xz", "zstd"};
    return (unsigned)c < 4 ? names[c] : "?";
}

/* Allocate a stage and its window. */
static vms_status stage_new(const vms_allocator *a, const char *name, vmsi_in **out, vms_err *err)
{
    vmsi_in *s = vmsi_zalloc(a, sizeof *s);
    if (s)
        s->buf = vmsi_alloc(a, VMSI_WIN + 1); /* + 1: room for a text line's NUL */
    if (!s || !s->buf) {
        vmsi_free(a, s, sizeof *s);
        *out = NULL;
        return vmsi_err(err, VMS_ERR_NOMEM, "%s: out of memory for the input buffer", name);
    }
    s->a = a;
    s->name = name;
    *out = s;
    return VMS_OK;
}

vms_status vmsi_in_open_file(const vms_allocator *a, const char *path, const char *name,
                             vmsi_in **out, vms_err *err)
{
    bool use_stdin = strcmp(path, "-") == 0;
    FILE *f = use_stdin ? stdin : fopen(path, "rb");
    if (!f) {
        *out = NULL;
        return vmsi_err(err, VMS_ERR_IO, "%s: cannot open: %s", name, strerror(errno));
    }
    vms_status st = stage_new(a, name, out, err);
    if (st != VMS_OK) {
        if (!use_stdin)
            fclose(f);
        return st;
    }
    (*out)->f = f;
    (*out)->own_f = !use_stdin;
    return VMS_OK;
}

vms_status vmsi_in_open_mem(const vms_allocator *a, const void *data, size_t len, const char *name,
                            vmsi_in **out, vms_err *err)
{
    vms_status st = stage_new(a, name, out, err);
    if (st == VMS_OK) {
        (*out)->mem = data;
        (*out)->memlen = len;
    }
    return st;
}

/* Create the decoder state of s->codec. */
static vms_status codec_init(vmsi_in *s, vms_err *err)
{
    const vms_allocator *a = s->a;
    if (s->codec == VMSI_CODEC_GZIP) {
        z_stream *z = vmsi_zalloc(a, sizeof *z);
        if (!z)
            goto nomem;
        z->zalloc = z_alloc;
        z->zfree = z_free;
        z->opaque = (voidpf)(uintptr_t)a;
        s->z = z;
        if (inflateInit2(z, 16 + MAX_WBITS) != Z_OK) /* 16: gzip wrapper only */
            goto nomem;
    } else if (s->codec == VMSI_CODEC_XZ) {
        lzma_stream *x = vmsi_zalloc(a, sizeof *x + sizeof(lzma_allocator));
        if (!x)
            goto nomem;
        lzma_allocator *la = (lzma_allocator *)(x + 1);
        *la = (lzma_allocator){lz_alloc, lz_free, (void *)(uintptr_t)a};
        x->allocator = la;
        s->z = x;
        if (lzma_stream_decoder(x, UINT64_MAX, LZMA_CONCATENATED) != LZMA_OK)
            goto nomem;
    } else {
        ZSTD_customMem cm = {zs_alloc, zs_free, (void *)(uintptr_t)a};
        s->z = ZSTD_createDStream_advanced(cm);
        if (!s->z)
            goto nomem;
        s->zlast = 1;
    }
    return VMS_OK;
nomem:
    return vmsi_err(err, VMS_ERR_NOMEM, "%s: out of memory for the %s decoder", s->name,
                    vmsi_codec_name(s->codec));
}

vms_status vmsi_in_push(vmsi_in *up, vmsi_codec c, vmsi_in **out, vms_err *err)
{
    vms_status st = stage_new(up->a, up->name, out, err);
    if (st != VMS_OK)
        return st;
    (*out)->up = up;
    (*out)->codec = c;
    st = codec_init(*out, err);
    if (st != VMS_OK) {
        vmsi_in_free(*out);
        *out = NULL;
    }
    return st;
}

void vmsi_in_free(vmsi_in *s)
{
    if (!s)
        return;
    if (s->z && s->codec == VMSI_CODEC_GZIP) {
        inflateEnd(s->z);
        vmsi_free(s->a, s->z, sizeof(z_stream));
    } else if (s->z && s->codec == VMSI_CODEC_XZ) {
        lzma_end(s->z);
        vmsi_free(s->a, s->z, sizeof(lzma_stream) + sizeof(lzma_allocator));
    } else if (s->z) {
        ZSTD_freeDStream(s->z);
    }
    if (s->own_f)
        fclose(s->f);
    vmsi_free(s->a, s->buf, VMSI_WIN + 1);
    vmsi_free(s->a, s, sizeof *s);
}

/* Raw stage: read more bytes from the file or memory into buf[end, VMSI_WIN). */
static vms_status raw_more(vmsi_in *s, vms_err *err)
{
    size_t room = VMSI_WIN - s->end, n;
    if (s->f) {
        n = fread(s->buf + s->end, 1, room, s->f);
        if (n < room && ferror(s->f))
            return vmsi_err(err, VMS_ERR_IO, "%s: read error at byte %llu: %s", s->name,
                            (unsigned long long)(s->base + s->end), strerror(errno));
    } else {
        n = s->memlen < room ? s->memlen : room;
        memcpy(s->buf + s->end, s->mem, n);
        s->mem += n;
        s->memlen -= n;
    }
    s->end += n;
    if (n == 0)
        s->eof = true;
    return VMS_OK;
}

/* A decoder's error: "NAME: corrupt xz data at compressed byte N (detail)". */
static vms_status zfail(vmsi_in *s, vms_err *err, const char *what, const char *detail)
{
    return vmsi_err(err, VMS_ERR_PARSE, "%s: %s %s data at compressed byte %llu (%s)", s->name,
                    what, vmsi_codec_name(s->codec), (unsigned long long)vmsi_in_offset(s->up),
                    detail);
}

/* Run the decoder once over up's window into buf[end, VMSI_WIN); zend at stream end. */
static vms_status decode_step(vmsi_in *s, vms_err *err)
{
    vmsi_in *up = s->up;
    size_t in_n = vmsi_in_avail(up), out_n = VMSI_WIN - s->end;
    const uint8_t *in_p = vmsi_in_ptr(up);
    uint8_t *out_p = s->buf + s->end;
    size_t used, made;
    if (s->codec == VMSI_CODEC_GZIP) {
        z_stream *z = s->z;
        if (s->zend) { /* another gzip member follows the last one */
            if (inflateReset(z) != Z_OK)
                return zfail(s, err, "corrupt", "reset");
            s->zend = false;
        }
        z->next_in = (Bytef *)(uintptr_t)in_p;
        z->avail_in = (uInt)in_n;
        z->next_out = out_p;
        z->avail_out = (uInt)out_n;
        int rc = inflate(z, Z_NO_FLUSH);
        if (rc == Z_STREAM_END)
            s->zend = true;
        else if (rc != Z_OK && rc != Z_BUF_ERROR)
            return zfail(s, err, "corrupt", z->msg ? z->msg : "inflate failed");
        used = in_n - z->avail_in;
        made = out_n - z->avail_out;
    } else if (s->codec == VMSI_CODEC_XZ) {
        lzma_stream *x = s->z;
        x->next_in = in_p;
        x->avail_in = in_n;
        x->next_out = out_p;
        x->avail_out = out_n;
        lzma_ret rc = lzma_code(x, up->eof && in_n == 0 ? LZMA_FINISH : LZMA_RUN);
        if (rc == LZMA_STREAM_END)
            s->zend = true;
        else if (rc == LZMA_MEM_ERROR)
            return vmsi_err(err, VMS_ERR_NOMEM, "%s: out of memory in the xz decoder", s->name);
        else if (rc == LZMA_BUF_ERROR && up->eof && in_n == 0)
            return zfail(s, err, "truncated", "the xz stream ends early");
        else if (rc != LZMA_OK && rc != LZMA_BUF_ERROR)
            return zfail(s, err, "corrupt", "lzma_code failed");
        used = in_n - x->avail_in;
        made = out_n - x->avail_out;
    } else {
        ZSTD_inBuffer zi = {in_p, in_n, 0};
        ZSTD_outBuffer zo = {out_p, out_n, 0};
        size_t rc = ZSTD_decompressStream(s->z, &zo, &zi);
        if (ZSTD_isError(rc))
            return zfail(s, err, "corrupt", ZSTD_getErrorName(rc));
        s->zlast = rc;
        used = zi.pos;
        made = zo.pos;
    }
    vmsi_in_take(up, used);
    s->end += made;
    return VMS_OK;
}

/* Decoding stage: produce more bytes; sets eof at a clean end of the compressed input. */
static vms_status decode_more(vmsi_in *s, vms_err *err)
{
    size_t before = s->end;
    while (s->end == before && !s->eof) {
        vms_status st = vmsi_in_fill(s->up, 1, err);
        if (st != VMS_OK)
            return st;
        size_t had = vmsi_in_avail(s->up);
        bool up_done = had == 0 && s->up->eof;
        if (up_done && s->codec == VMSI_CODEC_GZIP && !s->zend)
            return zfail(s, err, "truncated", "the gzip stream ends early");
        if (up_done && s->codec == VMSI_CODEC_ZSTD && s->zlast != 0)
            return zfail(s, err, "truncated", "the zstd frame ends early");
        if (up_done && (s->codec != VMSI_CODEC_XZ || s->zend)) {
            s->eof = true;
            break;
        }
        st = decode_step(s, err); /* xz at up_done: LZMA_FINISH */
        if (st != VMS_OK)
            return st;
        if (s->end == before && vmsi_in_avail(s->up) == had && !up_done && !s->zend)
            return zfail(s, err, "corrupt", "the decoder made no progress");
    }
    return VMS_OK;
}

vms_status vmsi_in_fill(vmsi_in *s, size_t need, vms_err *err)
{
    if (need > VMSI_WIN)
        need = VMSI_WIN;
    while (vmsi_in_avail(s) < need && !s->eof) {
        if (s->pos > 0) { /* slide the unread bytes to the front */
            size_t n = vmsi_in_avail(s);
            memmove(s->buf, s->buf + s->pos, n);
            s->base += s->pos;
            s->pos = 0;
            s->end = n;
        }
        vms_status st = s->up ? decode_more(s, err) : raw_more(s, err);
        if (st != VMS_OK)
            return st;
    }
    return VMS_OK;
}

/* ---- strings ---- */

vms_status vmsi_strtab_add(vmsi_strtab *t, const vms_allocator *a, const char *s, size_t len)
{
    if (t->n >= VMSI_MAX_STRINGS || len >= VMSI_MAX_STRBYTES - t->len)
        return VMS_ERR_RANGE;
    if (!vmsi_grow_to(a, (void **)&t->arena, &t->cap, t->len + len + 1, 1, 256))
        return VMS_ERR_NOMEM;
    size_t ncap = t->ncap; /* uint32_t: bounded by VMSI_MAX_STRINGS */
    if (!vmsi_grow_to(a, (void **)&t->offs, &ncap, (size_t)t->n + 1, sizeof *t->offs, 16))
        return VMS_ERR_NOMEM;
    t->ncap = (uint32_t)ncap;
    memcpy(t->arena + t->len, s, len);
    t->arena[t->len + len] = '\0';
    t->offs[t->n++] = (uint32_t)t->len;
    t->len += len + 1;
    return VMS_OK;
}

const char *vmsi_strtab_get(const vmsi_strtab *t, uint32_t id)
{
    if (id == 0 || id > t->n)
        return NULL;
    return t->arena + t->offs[id - 1];
}

void vmsi_strtab_free(vmsi_strtab *t, const vms_allocator *a)
{
    vmsi_free(a, t->arena, t->cap);
    vmsi_free(a, t->offs, t->ncap * sizeof *t->offs);
    memset(t, 0, sizeof *t);
}
