/*
 * util.c — the small shared pieces: status names, the default allocator, vms_err
 * formatting, the seeded generator (xoshiro256** / splitmix64) and the string buffer.
 */
#include "util/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

const char *vms_status_str(vms_status st)
{
    switch (st) {
    case VMS_OK:
        return "ok";
    case VMS_ERR_NOMEM:
        return "out of memory";
    case VMS_ERR_INVAL:
        return "invalid argument";
    case VMS_ERR_RANGE:
        return "out of range";
    case VMS_ERR_BUS:
        return "bus error";
    case VMS_ERR_EXISTS:
        return "already exists";
    case VMS_ERR_NOTFOUND:
        return "not found";
    case VMS_ERR_IO:
        return "I/O error";
    case VMS_ERR_PARSE:
        return "parse error";
    case VMS_ERR_UNSUPPORTED:
        return "unsupported";
    case VMS_ERR_PANIC:
        return "kernel panic";
    }
    return "unknown status";
}

const char *vms_pgsize_name(vms_pgsize s)
{
    static const char *const names[VMS_PG_NSIZES] = {"4K", "2M", "1G"};
    return (unsigned)s < VMS_PG_NSIZES ? names[s] : "?";
}

const char *vms_access_name(vms_access_kind k)
{
    static const char *const names[] = {"read", "write", "exec"};
    return (unsigned)k <= VMS_ACC_EXEC ? names[k] : "?";
}

bool vms_parse_u64(const char *s, bool allow_suffix, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s)
        return false;
    unsigned shift = 0;
    if (allow_suffix && *end) {
        const char *units = "KMGT";
        const char *u = strchr(units, toupper((unsigned char)*end));
        if (!u || !*u)
            return false;
        shift = 10u * (unsigned)(u - units + 1);
        end++;
        if (*end == 'i' && end[1] == 'B')
            end += 2;
        else if (*end == 'B')
            end++;
    }
    if (*end || (shift && v > (UINT64_MAX >> shift)))
        return false;
    *out = (uint64_t)v << shift;
    return true;
}

static void *default_realloc(void *ud, void *ptr, size_t old_size, size_t new_size)
{
    (void)ud;
    (void)old_size;
    if (new_size == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, new_size);
}

const vms_allocator *vms_allocator_default(void)
{
    static const vms_allocator def = {default_realloc, NULL};
    return &def;
}

bool vmsi_grow_to(const vms_allocator *a, void **arr, size_t *cap, size_t need, size_t elem,
                  size_t first)
{
    if (need <= *cap)
        return true;
    size_t ncap = *cap ? *cap : first;
    if (ncap > SIZE_MAX / (elem ? elem : 1))
        return false;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2 / (elem ? elem : 1))
            return false;
        ncap *= 2;
    }
    void *p = a->realloc(a->ud, *arr, *cap * elem, ncap * elem);
    if (!p)
        return false;
    *arr = p;
    *cap = ncap;
    return true;
}

bool vmsi_grow(const vms_allocator *a, void **arr, size_t *cap, size_t n, size_t elem)
{
    return n < SIZE_MAX && vmsi_grow_to(a, arr, cap, n + 1, elem, 16);
}

vms_status vmsi_err(vms_err *err, vms_status st, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->status = st;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return st;
}

/* splitmix64: expands one seed into the four words of xoshiro's state. */
static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

void vms_rng_seed(vms_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t vms_rng_next(vms_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t vms_rng_below(vms_rng *r, uint64_t n)
{
    /* Reject the top partial bucket so every value is equally likely. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = vms_rng_next(r);
    while (x >= limit);
    return x % n;
}

void vms_strbuf_init(vms_strbuf *sb, const vms_allocator *a)
{
    sb->data = NULL;
    sb->len = sb->cap = 0;
    sb->alloc = a ? a : vms_allocator_default();
    sb->failed = 0;
}

void vms_strbuf_free(vms_strbuf *sb)
{
    const vms_allocator *a = sb->alloc ? sb->alloc : vms_allocator_default();
    vmsi_free(a, sb->data, sb->cap);
    sb->data = NULL;
    sb->len = sb->cap = 0;
}

/* Make room for `extra` more bytes plus the terminating NUL. */
static vms_status reserve(vms_strbuf *sb, size_t extra)
{
    const vms_allocator *a = sb->alloc ? sb->alloc : vms_allocator_default();
    if (sb->len + extra + 1 <= sb->cap)
        return VMS_OK;
    size_t cap = sb->cap ? sb->cap : 256;
    while (cap < sb->len + extra + 1)
        cap *= 2;
    char *p = a->realloc(a->ud, sb->data, sb->cap, cap);
    if (!p) {
        sb->failed = 1;
        return VMS_ERR_NOMEM;
    }
    sb->data = p;
    sb->cap = cap;
    return VMS_OK;
}

vms_status vms_strbuf_append(vms_strbuf *sb, const char *s, size_t n)
{
    if (reserve(sb, n) != VMS_OK)
        return VMS_ERR_NOMEM;
    memcpy(sb->data + sb->len, s, n);
    sb->len += n;
    sb->data[sb->len] = '\0';
    return VMS_OK;
}

vms_status vms_strbuf_printf(vms_strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || reserve(sb, (size_t)n) != VMS_OK)
        return VMS_ERR_NOMEM;
    va_start(ap, fmt);
    vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
    return VMS_OK;
}

const char *vms_strbuf_str(const vms_strbuf *sb)
{
    return sb->data ? sb->data : "";
}

vms_status vms_strbuf_json_str(vms_strbuf *sb, const char *s)
{
    vms_strbuf_append(sb, "\"", 1);
    for (const char *p = s; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '"' || ch == '\\')
            vms_strbuf_printf(sb, "\\%c", ch);
        else if (ch == '\n')
            vms_strbuf_append(sb, "\\n", 2);
        else if (ch == '\t')
            vms_strbuf_append(sb, "\\t", 2);
        else if (ch < 0x20)
            vms_strbuf_printf(sb, "\\u%04x", ch);
        else
            vms_strbuf_append(sb, p, 1);
    }
    return vms_strbuf_append(sb, "\"", 1);
}

void vmsi_quote(const char *s, size_t n, char out[96])
{
    size_t o = 0, i;
    /* Each byte takes at most 4 characters; stop while "..." and the NUL still fit. */
    for (i = 0; i < n && i < 40 && o + 4 <= 96 - 4 - 1; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, 5, "\\x%02x", c);
    }
    if (i < n)
        o += (size_t)snprintf(out + o, 4, "...");
    out[o] = '\0';
}

void vmsi_escape_ctl(const char *s, char *out, size_t len)
{
    size_t o = 0;
    for (; *s && o + 5 < len; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
            o += (size_t)snprintf(out + o, 5, "\\x%02x", c);
        else
            out[o++] = (char)c;
    }
    out[o] = '\0';
}
