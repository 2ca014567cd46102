/*
 * writer.c — producing traces: the writer's lifecycle, string interning, and the text
 * formats (lackey, dinero). The native encoder is in native.c.
 *
 * A writer validates every event before encoding it, so a trace it wrote always reads
 * back; it remembers its first failure and refuses further writes.
 */
#include <errno.h>
#include <stdarg.h>

#include "trace/trace_impl.h"

vms_status vmsi_wfail(vms_trace_writer *w, vms_status st, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (w->err.status == VMS_OK)
        vmsi_err(&w->err, st, "%s: %s", w->name, msg);
    return st;
}

vms_status vmsi_wfile(vms_trace_writer *w, const void *p, size_t n)
{
    if (n && fwrite(p, 1, n, w->f) != n)
        return vmsi_wfail(w, VMS_ERR_IO, "write error: %s", strerror(errno));
    return VMS_OK;
}

/* Copy the writer's failure to err and return its status. */
static vms_status report(const vms_trace_writer *w, vms_err *err)
{
    if (err && w->err.status != VMS_OK)
        *err = w->err;
    return w->err.status;
}

/* Free everything w owns (the file is closed by the caller). */
static void wfree(vms_trace_writer *w)
{
    const vms_allocator *a = w->a;
    if (w->ops->free)
        w->ops->free(w);
    vmsi_strtab_free(&w->strs, a);
    vmsi_free(a, w->hash, w->hcap * sizeof *w->hash);
    vmsi_free(a, w->name, strlen(w->name) + 1);
    vmsi_free(a, w, sizeof *w);
}

/* Allocate the writer and open its file. */
static vms_status wnew(const char *path, vms_trace_format fmt, const vms_allocator *a,
                       vms_trace_writer **out, vms_err *err)
{
    const char *name = strcmp(path, "-") == 0 ? "<stdout>" : path;
    size_t n = strlen(name) + 1;
    vms_trace_writer *w = vmsi_zalloc(a, sizeof *w);
    if (w)
        w->name = vmsi_alloc(a, n);
    if (!w || !w->name) {
        vmsi_free(a, w, sizeof *w);
        return vmsi_err(err, VMS_ERR_NOMEM, "%s: out of memory opening the trace", name);
    }
    memcpy(w->name, name, n);
    w->a = a;
    w->fmt = fmt;
    w->ops = vmsi_trace_fmt_of(fmt)->writer;
    w->own_f = strcmp(path, "-") != 0;
    w->f = w->own_f ? fopen(path, "wb") : stdout;
    *out = w;
    if (!w->f)
        return vmsi_wfail(w, VMS_ERR_IO, "cannot create: %s", strerror(errno));
    return VMS_OK;
}

vms_status vms_trace_writer_open(const char *path, vms_trace_format fmt,
                                 const vms_trace_writer_opts *opts, const vms_allocator *a,
                                 vms_trace_writer **out, vms_err *err)
{
    a = a ? a : vms_allocator_default();
    *out = NULL;
    const vmsi_trace_fmt *f = vmsi_trace_fmt_of(fmt);
    if (!f || !f->writer) {
        char list[128];
        return vmsi_err(err, VMS_ERR_UNSUPPORTED, "%s: cannot write %s traces: expected %s", path,
                        vms_trace_format_name(fmt),
                        vmsi_trace_format_list(list, sizeof list, VMSI_FMT_WRITABLE));
    }
    vms_trace_writer *w = NULL;
    vms_status st = wnew(path, fmt, a, &w, err);
    if (st == VMS_OK && w->ops->open)
        st = w->ops->open(w, opts);
    if (st == VMS_ERR_NOMEM && !w)
        return st;
    if (st != VMS_OK) {
        report(w, err);
        if (w->own_f && w->f) {
            fclose(w->f);
            remove(path);
        }
        wfree(w);
        return st;
    }
    *out = w;
    return VMS_OK;
}

/* FNV-1a of s[0, n). */
static uint32_t hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

/* Double the interning table (slots hold ids, 0 = empty). */
static vms_status rehash(vms_trace_writer *w)
{
    uint32_t cap = w->hcap ? w->hcap * 2 : 64;
    uint32_t *t = vmsi_calloc(w->a, cap, sizeof *t);
    if (!t)
        return VMS_ERR_NOMEM;
    for (uint32_t id = 1; id <= w->strs.n; id++) {
        const char *s = vmsi_strtab_get(&w->strs, id);
        uint32_t i = hash(s, strlen(s)) & (cap - 1);
        while (t[i])
            i = (i + 1) & (cap - 1);
        t[i] = id;
    }
    vmsi_free(w->a, w->hash, w->hcap * sizeof *w->hash);
    w->hash = t;
    w->hcap = cap;
    return VMS_OK;
}

vms_status vms_trace_writer_intern(vms_trace_writer *w, const char *s, uint32_t *id, vms_err *err)
{
    size_t n = strlen(s);
    if (w->err.status == VMS_OK && (w->strs.n + 1) * 2 > w->hcap && rehash(w) != VMS_OK)
        vmsi_wfail(w, VMS_ERR_NOMEM, "out of memory interning a string");
    if (w->err.status != VMS_OK)
        return report(w, err);
    uint32_t i = hash(s, n) & (w->hcap - 1);
    for (; w->hash[i]; i = (i + 1) & (w->hcap - 1))
        if (strcmp(vmsi_strtab_get(&w->strs, w->hash[i]), s) == 0) {
            *id = w->hash[i];
            return VMS_OK;
        }
    vms_status st = vmsi_strtab_add(&w->strs, w->a, s, n);
    if (st != VMS_OK)
        vmsi_wfail(w, st, "%s",
                   st == VMS_ERR_NOMEM ? "out of memory interning a string"
                                       : "too many strings (limit 2^20, 64 MiB)");
    else if (w->ops->string)
        w->ops->string(w, w->strs.n, s, n);
    if (w->err.status != VMS_OK)
        return report(w, err);
    w->hash[i] = w->strs.n;
    *id = w->strs.n;
    return VMS_OK;
}

vms_status vms_trace_writer_write(vms_trace_writer *w, const vms_trace_event *ev, vms_err *err)
{
    char why[64];
    if (w->err.status != VMS_OK)
        return report(w, err);
    if (!vmsi_event_valid(ev, w->strs.n, why, sizeof why)) {
        vmsi_wfail(w, VMS_ERR_INVAL, "event %llu: %s", (unsigned long long)w->nevents, why);
    } else if (w->ops->refs_only && ev->type != VMS_TEV_ACCESS) {
        vmsi_wfail(w, VMS_ERR_UNSUPPORTED,
                   "event %llu: %s traces hold memory references "
                   "only, not %s events",
                   (unsigned long long)w->nevents, vms_trace_format_name(w->fmt),
                   vms_trace_type_name(ev->type));
    } else {
        w->ops->write(w, ev);
    }
    return report(w, err);
}

vms_status vms_trace_writer_close(vms_trace_writer *w, vms_err *err)
{
    if (!w)
        return VMS_OK;
    if (w->err.status == VMS_OK && w->ops->close)
        w->ops->close(w);
    if (w->f && fflush(w->f) != 0)
        vmsi_wfail(w, VMS_ERR_IO, "write error: %s", strerror(errno));
    if (w->own_f && w->f && fclose(w->f) != 0)
        vmsi_wfail(w, VMS_ERR_IO, "close error: %s", strerror(errno));
    vms_status st = report(w, err);
    wfree(w);
    return st;
}

/* ---- text formats ---- */

/* Append "%llx" of v at p (lower case, at least `width` digits); returns the end. */
static char *put_hex(char *p, uint64_t v, int width)
{
    char tmp[16];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    while (n < width)
        tmp[n++] = '0';
    while (n)
        *p++ = tmp[--n];
    return p;
}

/* One lackey line, exactly as valgrind prints it ("I  %08lx,%lu", " L %08lx,%lu", …). */
static size_t lackey_line(const vms_trace_event *ev, char *buf)
{
    static const char *const pre[4] = {" L ", " S ", "I  ", " M "};
    memcpy(buf, pre[ev->access.kind], 3);
    char *p = put_hex(buf + 3, ev->access.va, 8);
    return (size_t)(p - buf) + (size_t)sprintf(p, ",%u\n", ev->access.size);
}

/* Dinero lines: "LABEL ADDRESS"; a modify is a read then a write. */
static size_t dinero_line(const vms_trace_event *ev, char *buf)
{
    static const char labels[4] = {'0', '1', '2', '0'};
    char *p = buf;
    *p++ = labels[ev->access.kind];
    *p++ = ' ';
    p = put_hex(p, ev->access.va, 1);
    *p++ = '\n';
    if (ev->access.kind == VMS_TACC_MODIFY) {
        *p++ = '1';
        *p++ = ' ';
        p = put_hex(p, ev->access.va, 1);
        *p++ = '\n';
    }
    return (size_t)(p - buf);
}

vms_status vmsi_lackey_write(vms_trace_writer *w, const vms_trace_event *ev)
{
    char buf[96];
    size_t n = lackey_line(ev, buf);
    w->nevents++;
    return vmsi_wfile(w, buf, n);
}

vms_status vmsi_dinero_write(vms_trace_writer *w, const vms_trace_event *ev)
{
    char buf[96];
    size_t n = dinero_line(ev, buf);
    w->nevents++;
    return vmsi_wfile(w, buf, n);
}
