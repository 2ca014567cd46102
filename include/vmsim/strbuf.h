/*
 * vmsim/strbuf.h — a growable text buffer. The library never prints: functions that
 * produce text (JSON stats, /proc-style listings, walk narrations) append to a strbuf
 * the caller owns and then prints or compares.
 */
#ifndef VMSIM_STRBUF_H
#define VMSIM_STRBUF_H

#include <stddef.h>

#include "vmsim/common.h"

typedef struct vms_strbuf {
    char *data; /* NUL-terminated when len > 0 or after any append */
    size_t len;
    size_t cap;
    const vms_allocator *alloc; /* NULL means vms_allocator_default() */
    int failed;                 /* set once an append could not allocate */
} vms_strbuf;

/* Initialise an empty buffer using allocator a (NULL: the default). */
void vms_strbuf_init(vms_strbuf *sb, const vms_allocator *a);

/* Free the buffer's memory; sb may be reused after vms_strbuf_init. */
void vms_strbuf_free(vms_strbuf *sb);

/* Append formatted text. On allocation failure sets sb->failed and returns VMS_ERR_NOMEM. */
vms_status vms_strbuf_printf(vms_strbuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Append n bytes of s. */
vms_status vms_strbuf_append(vms_strbuf *sb, const char *s, size_t n);

/* Append s as a JSON string: quoted, with " \\ and control characters escaped (other
 * bytes, UTF-8 included, pass through). */
vms_status vms_strbuf_json_str(vms_strbuf *sb, const char *s);

/* The text so far ("" when empty); valid until the next append or free. */
const char *vms_strbuf_str(const vms_strbuf *sb);

#endif
