/*
 * reader.c — opening a trace: the stage chain (file, optional decompression), format
 * detection, the pull loop, and the helpers the parsers share (lines, messages).
 *
 * Detection (VMS_TRACE_AUTO) looks at the first bytes after decompression, trying the
 * rows of formats.c in order:
 *   native magic "\x89VMSTR\r\n"                    → native
 *   a lackey line ("I  ", " L ", " S ", " M ", "==", "#") → lackey
 *   a hex label, blanks, a hex address              → dinero
 *   binary whose first records are plausible ChampSim → champsim (else an error)
 * Text that matches no format is an error asking for an explicit format.
 */
#include <stdarg.h>
#include <stdio.h>

#include "trace/trace_impl.h"

/* Hex digit values (the batch parsers): 0..15, -1 for any other byte. */
const int8_t vmsi_hex_digit[256] = {
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, /* 0x00 */
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, /* 0x10 */
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, /* 0x20 */
    0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  -1, -1, -1, -1, -1, -1, /* 0x30 */
    -1, 10, 11, 12, 13, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1, /* 0x40 */
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, /* 0x50 */
    -1, 10, 11, 12, 13, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1, /* 0x60 */
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, /* 0x70 */
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, /* 0x80 */
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, /* 0x90 */
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, /* 0xa0 */
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, /* 0xb0 */
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, /* 0xc0 */
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, /* 0xd0 */
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, /* 0xe0 */
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, /* 0xf0 */
};

const char *vms_trace_format_name(vms_trace_format f)
{
    const vmsi_trace_fmt *t = vmsi_trace_fmt_of(f);
    return t ? t->name : "?";
}

vms_status vms_trace_format_parse(const char *name, vms_trace_format *out, vms_err *err)
{
    for (unsigned i = 0; i < VMSI_NFORMATS; i++)
        if (strcmp(name, vmsi_trace_formats[i].name) == 0) {
            *out = (vms_trace_format)i;
            return VMS_OK;
        }
    char list[128];
    return vmsi_err(err, VMS_ERR_NOTFOUND, "unknown trace format '%s': expected %s", name,
                    vmsi_trace_format_list(list, sizeof list, VMSI_FMT_ALL));
}

bool vmsi_fail_line(vms_trace_reader *r, vms_status st, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    vmsi_err(&r->err, st, "%s:%llu: %s", r->name, (unsigned long long)r->line, msg);
    return false;
}

bool vmsi_fail_byte(vms_trace_reader *r, uint64_t off, vms_status st, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    vmsi_err(&r->err, st, "%s: byte %llu: %s", r->name, (unsigned long long)off, msg);
    return false;
}

int vmsi_next_line(vms_trace_reader *r, char **line, size_t *len)
{
    vmsi_in *in = r->in;
    size_t scanned = 0;
    for (;;) {
        size_t avail = vmsi_in_avail(in);
        const uint8_t *p = vmsi_in_ptr(in);
        const uint8_t *nl = memchr(p + scanned, '\n', avail - scanned);
        size_t n = nl ? (size_t)(nl - p) : avail;
        if (nl || (in->eof && avail > 0) || n > VMSI_MAX_LINE) {
            r->line++;
            if (n > VMSI_MAX_LINE) {
                vmsi_fail_line(r, VMS_ERR_PARSE, "line longer than %u bytes", VMSI_MAX_LINE);
                return -1;
            }
            if (memchr(p, '\0', n)) {
                vmsi_fail_line(r, VMS_ERR_PARSE,
                               "NUL byte in a text trace (binary data? use "
                               "--from)");
                return -1;
            }
            *line = (char *)(uintptr_t)p;
            *len = n > 0 && p[n - 1] == '\r' ? n - 1 : n;
            if (nl)
                *(uint8_t *)(uintptr_t)nl = '\0'; /* the window is ours */
            vmsi_in_take(in, nl ? n + 1 : n);
            (*line)[*len] = '\0';
            return 1;
        }
        if (in->eof)
            return 0;
        scanned = n;
        if (vmsi_in_fill(in, avail + 1, &r->err) != VMS_OK)
            return -1;
    }
}

/* ---- detection ---- */

/* Whether p[0, n) holds only text bytes (tabs, newlines, printable ASCII or UTF-8). */
static bool is_text(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x20 && p[i] != '\n' && p[i] != '\r' && p[i] != '\t')
            return false;
    return true;
}

static vms_status detect(vms_trace_reader *r, vms_trace_format *fmt, vms_err *err)
{
    vms_status st = vmsi_in_fill(r->in, 256, err);
    if (st != VMS_OK)
        return st;
    const uint8_t *p = vmsi_in_ptr(r->in);
    size_t n = vmsi_in_avail(r->in);
    for (unsigned i = 0; i < VMSI_NFORMATS; i++)
        if (vmsi_trace_formats[i].sniff && vmsi_trace_formats[i].sniff(p, n)) {
            *fmt = (vms_trace_format)i;
            return VMS_OK;
        }
    char list[128];
    if (n > 0 && !is_text(p, n < 64 ? n : 64))
        return vmsi_err(err, VMS_ERR_PARSE,
                        "%s: cannot tell the trace format from the first bytes (binary data "
                        "that is not a plausible ChampSim record: an ip of 0 or beyond 48 "
                        "bits, or a branch flag above 1): name the format (champsim, native, "
                        "lackey or dinero) if it is a trace",
                        r->name);
    return vmsi_err(err, VMS_ERR_PARSE,
                    "%s: cannot tell the trace format from the first bytes (%s): expected %s; "
                    "name it with a format",
                    r->name, n == 0 ? "the file is empty" : "text of no known format",
                    vmsi_trace_format_list(list, sizeof list, VMSI_FMT_DETECTED));
}

/* Build the stage chain over r->raw and start the format's parser. */
static vms_status start(vms_trace_reader *r, vms_trace_format fmt, vms_err *err)
{
    vms_status st = vmsi_in_fill(r->raw, 8, err);
    if (st != VMS_OK)
        return st;
    vmsi_codec c = vmsi_codec_sniff(vmsi_in_ptr(r->raw), vmsi_in_avail(r->raw));
    r->in = r->raw;
    if (c != VMSI_CODEC_NONE) {
        if ((st = vmsi_in_push(r->raw, c, &r->dec, err)) != VMS_OK)
            return st;
        r->in = r->dec;
    }
    if (fmt == VMS_TRACE_AUTO && (st = detect(r, &fmt, err)) != VMS_OK)
        return st;
    r->fmt = fmt;
    const vmsi_trace_fmt *f = vmsi_trace_fmt_of(fmt);
    if (!f || !f->open)
        return vmsi_err(err, VMS_ERR_INVAL, "%s: bad trace format %d", r->name, (int)fmt);
    st = f->open(r);
    if (st != VMS_OK && err)
        *err = r->err;
    return st;
}

/* Allocate a reader named name (copied). */
static vms_status reader_new(const char *name, const vms_allocator *a, vms_trace_reader **out,
                             vms_err *err)
{
    vms_trace_reader *r = vmsi_zalloc(a, sizeof *r);
    size_t n = strlen(name) + 1;
    if (r)
        r->name = vmsi_alloc(a, n);
    if (!r || !r->name) {
        vmsi_free(a, r, sizeof *r);
        return vmsi_err(err, VMS_ERR_NOMEM, "%s: out of memory opening the trace", name);
    }
    memcpy(r->name, name, n);
    r->a = a;
    *out = r;
    return VMS_OK;
}

/* Finish opening: start, or close and clear *out on failure. */
static vms_status finish_open(vms_trace_reader **out, vms_trace_format fmt, vms_status st,
                              vms_err *err)
{
    if (st == VMS_OK)
        st = start(*out, fmt, err);
    if (st != VMS_OK) {
        vms_trace_reader_close(*out);
        *out = NULL;
    }
    return st;
}

vms_status vms_trace_reader_open(const char *path, vms_trace_format fmt, const vms_allocator *a,
                                 vms_trace_reader **out, vms_err *err)
{
    a = a ? a : vms_allocator_default();
    *out = NULL;
    const char *name = strcmp(path, "-") == 0 ? "<stdin>" : path;
    vms_status st = reader_new(name, a, out, err);
    if (st != VMS_OK)
        return st;
    st = vmsi_in_open_file(a, path, (*out)->name, &(*out)->raw, err);
    return finish_open(out, fmt, st, err);
}

vms_status vms_trace_reader_open_mem(const void *data, size_t len, const char *name,
                                     vms_trace_format fmt, const vms_allocator *a,
                                     vms_trace_reader **out, vms_err *err)
{
    a = a ? a : vms_allocator_default();
    *out = NULL;
    vms_status st = reader_new(name ? name : "<memory>", a, out, err);
    if (st != VMS_OK)
        return st;
    st = vmsi_in_open_mem(a, data, len, (*out)->name, &(*out)->raw, err);
    return finish_open(out, fmt, st, err);
}

bool vms_trace_read(vms_trace_reader *r, vms_trace_event *ev, vms_err *err)
{
    bool ok = r->err.status == VMS_OK && r->next(r, ev);
    if (ok)
        r->count++;
    if (err)
        *err = r->err;
    return ok;
}

size_t vmsi_trace_read_refs_sum(vms_trace_reader *r, uint32_t tid, vms_ref *refs, size_t max,
                                vmsi_ref_sums *sum)
{
    if (r->err.status != VMS_OK || !r->next_refs || max == 0)
        return 0;
    size_t n = r->next_refs(r, tid, refs, max, sum);
    r->count += n;
    return n;
}

size_t vms_trace_read_refs(vms_trace_reader *r, uint32_t tid, vms_ref *refs, size_t max)
{
    vmsi_ref_sums sum = {0, {0, 0, 0}};
    return vmsi_trace_read_refs_sum(r, tid, refs, max, &sum);
}

const vms_err *vms_trace_reader_error(const vms_trace_reader *r)
{
    return &r->err;
}

vms_trace_format vms_trace_reader_format(const vms_trace_reader *r)
{
    return r->fmt;
}

const char *vms_trace_reader_path(const vms_trace_reader *r, uint32_t id)
{
    return vmsi_strtab_get(&r->strs, id);
}

uint64_t vms_trace_reader_count(const vms_trace_reader *r)
{
    return r->count;
}

uint64_t vms_trace_reader_file_offset(const vms_trace_reader *r)
{
    return r->pipe ? vmsi_pipe_file_offset(r->pipe) : r->raw ? r->raw->base + r->raw->end : 0;
}

void vms_trace_reader_close(vms_trace_reader *r)
{
    if (!r)
        return;
    const vms_allocator *a = r->a;
    if (r->pipe)
        vmsi_pipe_close(r->pipe, a);
    vmsi_in_free(r->payload);
    vmsi_in_free(r->dec);
    vmsi_in_free(r->raw);
    vmsi_strtab_free(&r->strs, a);
    vmsi_free(a, r->name, strlen(r->name) + 1);
    vmsi_free(a, r, sizeof *r);
}
