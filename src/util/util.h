/*
 * util.h — library-internal helpers (prefix vmsi_): allocation through the allocator
 * hook, error reporting into vms_err, a seeded random generator, and a growable string
 * buffer used for text output (JSON, maps listings, narrations).
 */
#ifndef VMSIM_UTIL_H
#define VMSIM_UTIL_H

#include <stdarg.h>
#include <string.h>

#include "vmsim/common.h"
#include "vmsim/strbuf.h"
#include "vmsim/rng.h"

/* Allocate n bytes through `a`; NULL on failure. */
static inline void *vmsi_alloc(const vms_allocator *a, size_t n)
{
    return a->realloc(a->ud, NULL, 0, n);
}

/* Allocate n zeroed bytes through `a`; NULL on failure. */
static inline void *vmsi_zalloc(const vms_allocator *a, size_t n)
{
    void *p = a->realloc(a->ud, NULL, 0, n);
    if (p)
        memset(p, 0, n);
    return p;
}

/* Allocate count*size zeroed bytes, failing (NULL) on overflow. */
static inline void *vmsi_calloc(const vms_allocator *a, size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        return NULL;
    return vmsi_zalloc(a, count * size);
}

/* Free p (of n bytes) through `a`; p may be NULL. */
static inline void vmsi_free(const vms_allocator *a, void *p, size_t n)
{
    if (p)
        a->realloc(a->ud, p, n, 0);
}

/*
 * Make the array *arr (elements of elem bytes, capacity *cap) able to hold `need`
 * elements: nothing when *cap >= need, else a capacity of `first` (when *cap is 0) or
 * *cap, doubled until it is >= need. False, with *arr and *cap unchanged, when the host
 * allocation fails or the size would overflow: the caller fails cleanly.
 */
bool vmsi_grow_to(const vms_allocator *a, void **arr, size_t *cap, size_t need, size_t elem,
                  size_t first);

/* vmsi_grow_to for element n (n + 1 elements), starting at 16. */
bool vmsi_grow(const vms_allocator *a, void **arr, size_t *cap, size_t n, size_t elem);

/*
 * Record a failure in err (which may be NULL) and return st, so that callers can write
 * `return vmsi_err(err, VMS_ERR_INVAL, "ways must be >= 1, got %u", w);`.
 */
/* Quote up to 40 bytes of s[0, n) for a message, control bytes and backslashes escaped as
 * \xHH, "..." when cut ("I  40a,x" or "\x1b[2J..."), into out[96]: text from a file
 * never reaches a terminal raw. */
void vmsi_quote(const char *s, size_t n, char out[96]);

/* Copy s to out[len] with control bytes other than \n and \t (and DEL) written as \xHH,
 * cut to fit: narration and messages that carry text from a file reach a terminal. */
void vmsi_escape_ctl(const char *s, char *out, size_t len);

vms_status vmsi_err(vms_err *err, vms_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
