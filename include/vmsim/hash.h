/*
 * vmsim/hash.h — SHA-256 (FIPS 180-4), for naming inputs in results: every JSON result
 * carries the SHA-256 of the trace or scenario file it came from, the same digest that
 * coreutils' `sha256sum FILE` prints, and `vmsim sweep` keys its results by a SHA-256
 * of (configuration, trace digest, vmsim version).
 */
#ifndef VMSIM_HASH_H
#define VMSIM_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "vmsim/common.h"

typedef struct vms_sha256 {
    uint32_t h[8];   /* the chaining state */
    uint64_t len;    /* bytes hashed so far */
    uint8_t buf[64]; /* a partial block */
    size_t n;        /* bytes in buf */
} vms_sha256;

void vms_sha256_init(vms_sha256 *s);
void vms_sha256_update(vms_sha256 *s, const void *data, size_t len);
/* Finish into out (32 bytes); s must be re-initialised before reuse. */
void vms_sha256_final(vms_sha256 *s, uint8_t out[32]);

/* The digest of data as 64 lowercase hex digits and a NUL, into hex. */
void vms_sha256_hex(const void *data, size_t len, char hex[65]);

/* The digest of a host file's bytes as hex; VMS_ERR_IO (naming the file) if unreadable. */
vms_status vms_sha256_file(const char *path, char hex[65], vms_err *err);

#endif
