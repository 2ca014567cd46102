/*
 * sha256.c — SHA-256 (FIPS 180-4) over Debian's Nettle (nettle/sha2.h), which computes it
 * with the CPU's SHA extensions where it has them, and hex and file helpers around it.
 * test_util checks the FIPS example vectors and a million-byte message fed in odd
 * pieces; tests/cli/meta.sh compares with coreutils' sha256sum.
 */
#include "vmsim/hash.h"

#include <nettle/sha2.h>

#include <stdio.h>
#include <string.h>

#include "util/util.h"

_Static_assert(sizeof(struct sha256_ctx) <= sizeof(((vms_sha256 *)0)->opaque),
               "vms_sha256 holds a Nettle sha256_ctx");

static struct sha256_ctx *ctx(vms_sha256 *s)
{
    return (struct sha256_ctx *)(void *)s->opaque;
}

void vms_sha256_init(vms_sha256 *s)
{
    sha256_init(ctx(s));
}

void vms_sha256_update(vms_sha256 *s, const void *data, size_t len)
{
    sha256_update(ctx(s), len, data);
}

void vms_sha256_final(vms_sha256 *s, uint8_t out[32])
{
    sha256_digest(ctx(s), SHA256_DIGEST_SIZE, out);
}

static void to_hex(const uint8_t d[32], char hex[65])
{
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < 32; i++) {
        hex[2 * i] = digits[d[i] >> 4];
        hex[2 * i + 1] = digits[d[i] & 15];
    }
    hex[64] = '\0';
}

void vms_sha256_hex(const void *data, size_t len, char hex[65])
{
    vms_sha256 s;
    uint8_t d[32];
    vms_sha256_init(&s);
    vms_sha256_update(&s, data, len);
    vms_sha256_final(&s, d);
    to_hex(d, hex);
}

vms_status vms_sha256_file(const char *path, char hex[65], vms_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return vmsi_err(err, VMS_ERR_IO, "%s: cannot open for reading", path);
    vms_sha256 s;
    uint8_t buf[1 << 16], d[32];
    size_t n;
    vms_sha256_init(&s);
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        vms_sha256_update(&s, buf, n);
    bool failed = ferror(f) != 0;
    fclose(f);
    if (failed)
        return vmsi_err(err, VMS_ERR_IO, "%s: read error", path);
    vms_sha256_final(&s, d);
    to_hex(d, hex);
    return VMS_OK;
}
