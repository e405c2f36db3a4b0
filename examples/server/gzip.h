/* gzip.h - gzip bodies (RFC 1952) for Content-Encoding: gzip, made with the
 * isolated zlib component (zlib.qtn.h). Host code: it only frames what
 * zlib returns. */
#ifndef SRV_GZIP_H
#define SRV_GZIP_H

#include <stddef.h>

/* Compresses n bytes of src as one gzip member into a new buffer (*out,
 * *outlen; free() it). Returns 0, or -1 when compression failed, zlib's
 * domain faulted included: the caller serves the body uncompressed. */
int gz_encode(const void *src, size_t n, int level, void **out, size_t *outlen);

#endif
